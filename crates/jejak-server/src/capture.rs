//! The gRPC capture service: each RPC checks that the caller may capture
//! at the command's facility, turns the request into a domain command once
//! (`Submission::try_from`), and hands it to the engine.

use std::sync::Arc;

use jejak_engine::{Engine, Receipt, Submission};
use jejak_proto::v1 as p;
use jejak_proto::v1::capture_service_server::CaptureService;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Caller, Need};
use crate::error::status;
use crate::limits::Deadline;

/// The reply to a recorded command.
pub fn reply(r: Receipt) -> p::CaptureReply {
    let (verdict, findings) = match r.inspection {
        Some((v, findings)) => (jejak_proto::verdict_to_proto(v) as i32, findings),
        None => (0, Vec::new()),
    };
    p::CaptureReply {
        event_id: r.event_id,
        chain: r.chain,
        sequence: r.sequence,
        position: r.position,
        hash: hex::encode(r.hash),
        recorded_at: Some(jejak_proto::time_to_proto(r.recorded_at)),
        replayed: r.replayed,
        voided_by: r.voided_by.unwrap_or_default(),
        verdict,
        findings,
    }
}

/// Submits a command from the API to an engine, retrying conflicts inside
/// until `deadline` (the request's, if known).
pub async fn submit<S: Engine + ?Sized>(
    engine: &S,
    kind: p::command::Kind,
    actor: &str,
    deadline: Option<tokio::time::Instant>,
) -> Result<p::CaptureReply, Status> {
    let mut submission = Submission::try_from(kind).map_err(|e| status(&e))?;
    submission.deadline = deadline;
    engine
        .submit(submission, actor)
        .await
        .map(reply)
        .map_err(|e| status(&e))
}

/// The gRPC capture service over a shared writer.
pub struct CaptureApi<S> {
    writer: Arc<S>,
}

impl<S> CaptureApi<S> {
    pub fn new(writer: Arc<S>) -> CaptureApi<S> {
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
        p::command::Kind::ObserveEpcis(_) => "ObserveEpcis",
    }
}

impl<S: Engine> CaptureApi<S> {
    /// Submits, and counts the outcome and the time it took.
    async fn record(
        &self,
        kind: p::command::Kind,
        actor: &str,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<p::CaptureReply, Status> {
        let name = kind_name(&kind);
        let started = std::time::Instant::now();
        let result = submit(&*self.writer, kind, actor, deadline).await;
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

impl<S: Engine> CaptureApi<S> {
    /// Checks the caller against the command's facility (`None`: master
    /// data), then records the command.
    async fn capture<T>(
        &self,
        request: Request<T>,
        facility: fn(&T) -> Option<&str>,
        kind: fn(T) -> p::command::Kind,
    ) -> Result<Response<p::CaptureReply>, Status> {
        let actor = capturer(&request, facility(request.get_ref()))?;
        let deadline = request.extensions().get::<Deadline>().map(|d| d.for_retries());
        self.record(kind(request.into_inner()), &actor, deadline)
            .await
            .map(Response::new)
    }
}

type Reply = Result<Response<p::CaptureReply>, Status>;

/// A refused command of a bulk stream, as its unary RPC's status says it.
pub fn refused(s: &Status) -> p::CommandRefused {
    use tonic_types::StatusExt;
    let details = s.get_error_details();
    p::CommandRefused {
        code: s.code() as i32,
        message: s.message().to_string(),
        rule: s
            .metadata()
            .get("jejak-rule")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        reason: details.error_info().map(|i| i.reason.clone()).unwrap_or_default(),
        field: details
            .bad_request()
            .and_then(|b| b.field_violations.first())
            .map(|v| v.field.clone())
            .unwrap_or_default(),
    }
}

/// Checks a bulk stream's command as its unary RPC's route would (who may
/// record it, at which facility) and converts it; the refusal otherwise.
fn admit(caller: &Caller, kind: Option<p::command::Kind>) -> Result<Submission, Status> {
    use p::command::Kind;
    let kind = kind.ok_or_else(|| Status::invalid_argument("the command is empty: set one of its fields"))?;
    match &kind {
        Kind::RegisterFacility(_) | Kind::RegisterQualityStandard(_) => {
            caller.require(Need::Admin, "register facilities and quality standards")?
        }
        Kind::RegisterParty(_) | Kind::RegisterProduct(_) => caller.require(Need::Capture, "register master data")?,
        Kind::ReceiveMaterial(r) => caller.may_capture_at(&r.facility_id)?,
        Kind::InspectLot(r) => caller.may_capture_at(&r.facility_id)?,
        Kind::ProcessLots(r) => caller.may_capture_at(&r.facility_id)?,
        Kind::PackLot(r) => caller.may_capture_at(&r.facility_id)?,
        Kind::ShipLot(r) => caller.may_capture_at(&r.facility_id)?,
        Kind::ChangeLotStatus(r) => caller.may_capture_at(&r.facility_id)?,
        Kind::VoidEvent(r) => caller.may_capture_at(&r.facility_id)?,
        Kind::IssueToken(_) | Kind::RevokeToken(_) => {
            return Err(Status::invalid_argument(
                "tokens are issued and revoked through AdminService, not captured",
            ))
        }
        Kind::ObserveEpcis(_) => {
            return Err(Status::invalid_argument(
                "EPCIS observations come in EPCIS documents: POST them to /epcis/capture",
            ))
        }
    }
    Submission::try_from(kind).map_err(|e| status(&e))
}

type StreamReply = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<p::CaptureStreamReply, Status>> + Send>>;

impl<S: Engine> CaptureApi<S> {
    /// A bulk stream: a reader checks and converts each command and hands
    /// it to the engine (a refused one as a gap, answered here in its
    /// place); the engine records in order and answers in order. Both
    /// channels are bounded, so nothing grows when the disk or the client
    /// is slow; when the client goes away, the engine stops reading.
    fn bulk(&self, request: Request<Streaming<p::Command>>) -> StreamReply {
        let caller = Caller::of(&request);
        let actor = caller.actor();
        let mut inbound = request.into_inner();
        let window = jejak_engine::STREAM_WINDOW;
        let (to_engine, commands) = tokio::sync::mpsc::channel(window);
        let (answers, mut from_engine) = tokio::sync::mpsc::channel(window);
        // Each command's name, and the reader's refusal for the answers'
        // gaps, in order (at most what the engine holds, plus one).
        let (names_tx, mut names) = tokio::sync::mpsc::unbounded_channel::<(&'static str, Option<Status>)>();
        let (out, replies) = tokio::sync::mpsc::channel::<Result<p::CaptureStreamReply, Status>>(64);
        // Why the client's stream broke, said after the last answer: a
        // stream's first error ends it, so it must not overtake the answers
        // of what was read before it.
        let (broke, broken) = tokio::sync::oneshot::channel::<Status>();
        tokio::spawn(async move {
            let mut broke = Some(broke);
            loop {
                let message = match inbound.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(e) => {
                        // The stream broke (a message that is not a command
                        // or too large, a client gone): what came before is
                        // recorded and answered, then this is said.
                        if let Some(broke) = broke.take() {
                            let _ = broke.send(e);
                        }
                        break;
                    }
                };
                let name = message.kind.as_ref().map_or("Empty", kind_name);
                let slot = match admit(&caller, message.kind) {
                    Ok(submission) => {
                        let _ = names_tx.send((name, None));
                        Some(submission)
                    }
                    Err(refusal) => {
                        let _ = names_tx.send((name, Some(refusal)));
                        None
                    }
                };
                if to_engine.send(slot).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(self.writer.clone().submit_stream(commands, actor, answers));
        tokio::spawn(async move {
            let m = crate::metrics::metrics();
            let mut index = 0u64;
            while let Some(answer) = from_engine.recv().await {
                let (name, gap) = names.recv().await.unwrap_or(("Empty", None));
                let result = match answer {
                    Some(r) => r.map(reply).map_err(|e| status(&e)),
                    None => Err(gap.unwrap_or_else(|| Status::internal("a refused command's reason was lost"))),
                };
                m.command(name, &result);
                let outcome = match result {
                    Ok(r) => p::capture_stream_reply::Outcome::Recorded(r),
                    Err(s) => p::capture_stream_reply::Outcome::Refused(refused(&s)),
                };
                let r = p::CaptureStreamReply {
                    index,
                    outcome: Some(outcome),
                };
                index += 1;
                if out.send(Ok(r)).await.is_err() {
                    return;
                }
            }
            // Every command read was answered; the reader has ended.
            if let Ok(e) = broken.await {
                let _ = out.send(Err(crate::limits::retold_stream_error(e))).await;
            }
        });
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(replies))
    }
}

#[tonic::async_trait]
impl<S: Engine> CaptureService for CaptureApi<S> {
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

    type CaptureStreamStream = StreamReply;

    async fn capture_stream(
        &self,
        request: Request<Streaming<p::Command>>,
    ) -> Result<Response<Self::CaptureStreamStream>, Status> {
        Ok(Response::new(self.bulk(request)))
    }
}
