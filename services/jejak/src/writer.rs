//! The write side: the capture service decides each command against the
//! genealogy the server holds, appends the event, applies it, and
//! acknowledges once the log says it is durable. Decide-append-apply runs
//! under the genealogy's write lock, so concurrent commands can never both
//! spend the same balance.

use std::sync::Arc;

use crate::auth::{Caller, Need};
use jejak_genealogy::{AppliedEvent, Projection};
use jejak_log::{Draft, EventLog, StoredEvent};
use jejak_proto::v1 as p;
use jejak_proto::v1::capture_service_server::CaptureService;
use tonic::{Request, Response, Status};

use crate::status;

/// The genealogy commands are decided against, and the log they append to.
pub struct Writer<L> {
    log: L,
    projection: Arc<Projection>,
    persist_wanted: tokio::sync::Notify,
}

pub(crate) fn reply_from(e: &StoredEvent, replayed: bool) -> p::CaptureReply {
    let (verdict, findings) = match e.envelope.event.as_ref().and_then(|ev| ev.kind.as_ref()) {
        Some(p::event::Kind::LotInspected(i)) => (i.verdict, i.findings.clone()),
        _ => (0, Vec::new()),
    };
    p::CaptureReply {
        event_id: e.envelope.event_id.clone(),
        chain: e.envelope.chain.clone(),
        sequence: e.envelope.sequence,
        position: e.position,
        hash: hex::encode(e.hash),
        recorded_at: e.envelope.recorded_at,
        replayed,
        verdict,
        findings,
    }
}

impl<L: EventLog> Writer<L> {
    pub fn new(log: L, projection: Arc<Projection>) -> Writer<L> {
        Writer {
            log,
            projection,
            persist_wanted: tokio::sync::Notify::new(),
        }
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    pub fn projection(&self) -> &Arc<Projection> {
        &self.projection
    }

    /// Decides, appends and acknowledges one command.
    pub async fn submit(&self, kind: p::command::Kind, actor: &str) -> Result<p::CaptureReply, Status> {
        let command_hash = command_hash(&kind);
        let (id, command) = jejak_proto::command_from_proto(kind).map_err(status::domain)?;
        let outcome = self
            .projection
            .capture(|g| -> Result<Result<p::CaptureReply, u64>, Status> {
                if let Some(position) = self.log.position_of(&id).map_err(status::log)? {
                    return Ok(Err(position));
                }
                let now = crate::now();
                let event = jejak_domain::decide(&*g, &id, command, now).map_err(status::domain)?;
                let draft = Draft {
                    chain: event.chain().to_string(),
                    event_id: id.clone(),
                    actor: actor.to_string(),
                    command_hash,
                    recorded_at: jejak_proto::time_to_proto(now),
                    event: jejak_proto::event_to_proto(&event),
                };
                let appended = self.log.append(draft).map_err(status::log)?;
                g.apply(AppliedEvent {
                    position: appended.position,
                    event_id: &id,
                    recorded_at: now,
                    event: &event,
                });
                let (verdict, findings) = match &event {
                    jejak_domain::Event::LotInspected(i) => {
                        (jejak_proto::verdict_to_proto(i.verdict) as i32, i.findings.clone())
                    }
                    _ => (0, Vec::new()),
                };
                Ok(Ok(p::CaptureReply {
                    event_id: id.clone(),
                    chain: appended.chain,
                    sequence: appended.sequence,
                    position: appended.position,
                    hash: hex::encode(appended.hash),
                    recorded_at: Some(jejak_proto::time_to_proto(now)),
                    replayed: false,
                    verdict,
                    findings,
                }))
            });
        let reply = match outcome? {
            Ok(reply) => reply,
            Err(position) => return self.replayed(position, &id, command_hash).await,
        };
        self.log.wait_durable(reply.position).await.map_err(status::log)?;
        if self.projection.unpersisted() >= jejak_genealogy::PERSIST_EVERY {
            self.persist_wanted.notify_one();
        }
        Ok(reply)
    }

    /// Writes the in-memory genealogy to sled, never ahead of the log: the
    /// changes are encoded under the genealogy's lock (captures wait only
    /// for that), and written once the log has made everything in them
    /// durable.
    pub async fn persist(&self) -> anyhow::Result<()> {
        if self.projection.unpersisted() == 0 {
            return Ok(());
        }
        let projection = self.projection.clone();
        let Some(snapshot) = tokio::task::spawn_blocking(move || projection.snapshot()).await?? else {
            return Ok(());
        };
        self.log.wait_durable(snapshot.position()).await?;
        let projection = self.projection.clone();
        tokio::task::spawn_blocking(move || projection.write(snapshot)).await??;
        Ok(())
    }

    /// Persists every `PERSIST_EVERY` events and after a second without captures.
    pub async fn run_persister(&self, cancel: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.persist_wanted.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
            self.persist().await?;
        }
        self.persist().await
    }

    async fn replayed(&self, position: u64, id: &str, command_hash: [u8; 32]) -> Result<p::CaptureReply, Status> {
        self.log.wait_durable(position).await.map_err(status::log)?;
        let stored = self
            .log
            .read(position)
            .map_err(status::log)?
            .ok_or_else(|| Status::internal("indexed event is missing from the log"))?;
        if stored.envelope.command_hash != command_hash {
            return Err(Status::already_exists(format!(
                "command id {id:?} was already used for a different command; choose a new id"
            )));
        }
        Ok(reply_from(&stored, true))
    }
}

/// What identifies a command's content for retries: the blake3 of prost's
/// re-encoding (the same whatever encoder the client used) of `Command
/// { kind }`, without what the server chose itself (a token's secret hash,
/// new on every attempt).
pub fn command_hash(kind: &p::command::Kind) -> [u8; 32] {
    let mut buf = Vec::with_capacity(kind.encoded_len());
    match kind {
        p::command::Kind::IssueToken(c) if !c.secret_hash.is_empty() => {
            p::command::Kind::IssueToken(p::IssueTokenCommand {
                secret_hash: Vec::new(),
                ..c.clone()
            })
            .encode(&mut buf);
        }
        _ => kind.encode(&mut buf),
    }
    *blake3::hash(&buf).as_bytes()
}

/// What records commands: the embedded writer, or the distributed one on
/// JetStream. Both decide against the current state, append, and answer
/// once the event is durable, with the first result for a repeated id.
pub trait Submit: Send + Sync + 'static {
    fn submit(
        &self,
        kind: p::command::Kind,
        actor: &str,
    ) -> impl std::future::Future<Output = Result<p::CaptureReply, Status>> + Send;
}

impl<L: EventLog> Submit for Writer<L> {
    async fn submit(&self, kind: p::command::Kind, actor: &str) -> Result<p::CaptureReply, Status> {
        Writer::submit(self, kind, actor).await
    }
}

/// The gRPC capture service over a shared writer.
pub struct CaptureApi<S> {
    writer: std::sync::Arc<S>,
}

impl<S> CaptureApi<S> {
    pub fn new(writer: std::sync::Arc<S>) -> CaptureApi<S> {
        CaptureApi { writer }
    }
}

/// The RPC (and command) name of a command.
pub fn kind_name(kind: &p::command::Kind) -> &'static str {
    match kind {
        p::command::Kind::ChangeLotStatus(_) => "ChangeLotStatus",
        p::command::Kind::InspectLot(_) => "InspectLot",
        p::command::Kind::PackLot(_) => "PackLot",
        p::command::Kind::ProcessLots(_) => "ProcessLots",
        p::command::Kind::ReceiveMaterial(_) => "ReceiveMaterial",
        p::command::Kind::RegisterFacility(_) => "RegisterFacility",
        p::command::Kind::RegisterParty(_) => "RegisterParty",
        p::command::Kind::RegisterProduct(_) => "RegisterProduct",
        p::command::Kind::RegisterQualityStandard(_) => "RegisterQualityStandard",
        p::command::Kind::ShipLot(_) => "ShipLot",
        p::command::Kind::VoidEvent(_) => "VoidEvent",
        p::command::Kind::IssueToken(_) => "IssueToken",
        p::command::Kind::RevokeToken(_) => "RevokeToken",
    }
}

impl<S: Submit> CaptureApi<S> {
    /// Submits, and counts the outcome and the time it took.
    async fn record(&self, kind: p::command::Kind, actor: &str) -> Result<p::CaptureReply, Status> {
        let name = kind_name(&kind);
        let started = std::time::Instant::now();
        let result = self.writer.submit(kind, actor).await;
        let m = crate::metrics::metrics();
        m.command(name, &result);
        m.rpc(name, started, &result);
        result
    }
}

/// The caller, after checking that it may capture at `facility` (master
/// data: `None`, any capturing token).
fn capturer<T>(req: &Request<T>, facility: Option<&str>) -> Result<String, Status> {
    let caller = Caller::of(req);
    match facility {
        Some(f) => caller.may_capture_at(f)?,
        None => caller.require(Need::Capture, "register master data")?,
    }
    Ok(caller.actor())
}

impl<S: Submit> CaptureApi<S> {
    /// Checks the caller against the command's facility (`None`: master
    /// data), then records the command.
    async fn capture<T>(
        &self,
        request: Request<T>,
        facility: fn(&T) -> Option<&str>,
        kind: fn(T) -> p::command::Kind,
    ) -> Result<Response<p::CaptureReply>, Status> {
        let actor = capturer(&request, facility(request.get_ref()))?;
        self.record(kind(request.into_inner()), &actor).await.map(Response::new)
    }
}

type Reply = Result<Response<p::CaptureReply>, Status>;

#[tonic::async_trait]
impl<S: Submit> CaptureService for CaptureApi<S> {
    async fn register_party(&self, request: Request<p::RegisterPartyRequest>) -> Reply {
        self.capture(request, |_| None, p::command::Kind::RegisterParty).await
    }

    // Facilities and standards need an administrator (the layer checks).
    async fn register_facility(&self, request: Request<p::RegisterFacilityRequest>) -> Reply {
        self.capture(request, |_| None, p::command::Kind::RegisterFacility)
            .await
    }

    async fn register_product(&self, request: Request<p::RegisterProductRequest>) -> Reply {
        self.capture(request, |_| None, p::command::Kind::RegisterProduct).await
    }

    async fn register_quality_standard(&self, request: Request<p::RegisterQualityStandardRequest>) -> Reply {
        self.capture(request, |_| None, p::command::Kind::RegisterQualityStandard)
            .await
    }

    async fn receive_material(&self, request: Request<p::ReceiveMaterialRequest>) -> Reply {
        self.capture(request, |r| Some(&r.facility_id), p::command::Kind::ReceiveMaterial)
            .await
    }

    async fn inspect_lot(&self, request: Request<p::InspectLotRequest>) -> Reply {
        self.capture(request, |r| Some(&r.facility_id), p::command::Kind::InspectLot)
            .await
    }

    async fn process_lots(&self, request: Request<p::ProcessLotsRequest>) -> Reply {
        self.capture(request, |r| Some(&r.facility_id), p::command::Kind::ProcessLots)
            .await
    }

    async fn pack_lot(&self, request: Request<p::PackLotRequest>) -> Reply {
        self.capture(request, |r| Some(&r.facility_id), p::command::Kind::PackLot)
            .await
    }

    async fn ship_lot(&self, request: Request<p::ShipLotRequest>) -> Reply {
        self.capture(request, |r| Some(&r.facility_id), p::command::Kind::ShipLot)
            .await
    }

    async fn change_lot_status(&self, request: Request<p::ChangeLotStatusRequest>) -> Reply {
        self.capture(request, |r| Some(&r.facility_id), p::command::Kind::ChangeLotStatus)
            .await
    }

    async fn void_event(&self, request: Request<p::VoidEventRequest>) -> Reply {
        self.capture(request, |r| Some(&r.facility_id), p::command::Kind::VoidEvent)
            .await
    }
}
