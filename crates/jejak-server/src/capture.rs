//! The gRPC capture service: each RPC checks that the caller may capture
//! at the command's facility, turns the request into a domain command once
//! (`Submission::try_from`), and hands it to the engine.

use std::sync::Arc;

use jejak_engine::{Engine, Receipt, Submission};
use jejak_proto::v1 as p;
use jejak_proto::v1::capture_service_server::CaptureService;
use tonic::{Request, Response, Status};

use crate::auth::{Caller, Need};
use crate::error::status;

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
        verdict,
        findings,
    }
}

/// Submits a command from the API to an engine.
pub async fn submit<S: Engine + ?Sized>(
    engine: &S,
    kind: p::command::Kind,
    actor: &str,
) -> Result<p::CaptureReply, Status> {
    let submission = Submission::try_from(kind).map_err(|e| status(&e))?;
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
    async fn record(&self, kind: p::command::Kind, actor: &str) -> Result<p::CaptureReply, Status> {
        let name = kind_name(&kind);
        let started = std::time::Instant::now();
        let result = submit(&*self.writer, kind, actor).await;
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
        self.record(kind(request.into_inner()), &actor).await.map(Response::new)
    }
}

type Reply = Result<Response<p::CaptureReply>, Status>;

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
}
