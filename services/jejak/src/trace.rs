//! The gRPC trace service: genealogy queries from the projection, lot
//! histories from the log.

use std::sync::Arc;

use jejak_genealogy::{Projection, TraceLimits};
use jejak_log::{EventLog, LogError, SledLog, StoredEvent};
use jejak_proto::v1 as p;
use jejak_proto::v1::trace_service_server::TraceService;
use tonic::{Request, Response, Status};

use crate::auth::Caller;
use crate::status;
use crate::view::View;

/// Most entries one ExportEvents call sends.
const EXPORT_BATCH: usize = 256;

/// What the trace service needs of the log: the stored envelopes (for lot
/// histories), and when what the projection holds is durable.
pub trait TraceLog: Clone + Send + Sync + 'static {
    /// Resolves once every event up to `position` is durable.
    fn wait_durable(&self, position: u64) -> impl std::future::Future<Output = Result<(), LogError>> + Send;
    fn read(&self, position: u64) -> impl std::future::Future<Output = Result<Option<StoredEvent>, LogError>> + Send;
    /// The last position of the log, as far as this process knows.
    fn log_position(&self) -> u64;

    /// The last position of the log, asked of the log itself.
    fn current_position(&self) -> impl std::future::Future<Output = Result<u64, LogError>> + Send;
}

impl TraceLog for SledLog {
    async fn wait_durable(&self, position: u64) -> Result<(), LogError> {
        EventLog::wait_durable(self, position).await
    }

    async fn read(&self, position: u64) -> Result<Option<StoredEvent>, LogError> {
        EventLog::read(self, position)
    }

    fn log_position(&self) -> u64 {
        self.durable_position()
    }

    async fn current_position(&self) -> Result<u64, LogError> {
        Ok(self.durable_position())
    }
}

pub struct TraceApi<L> {
    projection: Arc<Projection>,
    log: L,
    limits: TraceLimits,
}

impl<L: TraceLog> TraceApi<L> {
    /// Answers only once everything the answer was read from is durable: the
    /// embedded write path applies events to the genealogy before the log's
    /// flush, and nobody may see an event a crash could still take back.
    async fn visible(&self, position: u64) -> Result<(), Status> {
        self.log.wait_durable(position).await.map_err(status::log)
    }
}

impl<L> TraceApi<L> {
    pub fn new(projection: Arc<Projection>, log: L, limits: TraceLimits) -> TraceApi<L> {
        TraceApi {
            projection,
            log,
            limits,
        }
    }
}

fn ts_key(t: Option<prost_types::Timestamp>) -> (i64, i32) {
    t.map_or((0, 0), |t| (t.seconds, t.nanos))
}

impl<L: TraceLog> TraceApi<L> {
    /// The root lot of a trace must be one the caller sees in full; the
    /// rest of the trace is narrowed to what the caller may see.
    fn narrow_trace(view: &View, reply: p::TraceReply, what: &str) -> Result<p::TraceReply, Status> {
        if let Some(root) = reply
            .nodes
            .iter()
            .filter_map(|n| n.lot.as_ref())
            .find(|l| l.lot_id == reply.root_lot_id)
        {
            view.require(root, what)?;
        }
        Ok(view.trace(reply))
    }

    async fn backward_trace_inner(&self, request: Request<p::TraceRequest>) -> Result<Response<p::TraceReply>, Status> {
        let view = View::of(&Caller::of(&request));
        let r = request.into_inner();
        let (reply, position) = {
            let g = self.projection.read();
            (
                g.backward_trace(r.target.as_ref(), r.max_depth, self.limits.with_max_nodes(r.max_nodes)),
                g.position(),
            )
        };
        self.visible(position).await?;
        let reply = reply.map_err(status::genealogy)?;
        Self::narrow_trace(&view, reply, "backward trace").map(Response::new)
    }

    async fn forward_trace_inner(&self, request: Request<p::TraceRequest>) -> Result<Response<p::TraceReply>, Status> {
        let view = View::of(&Caller::of(&request));
        let r = request.into_inner();
        let (reply, position) = {
            let g = self.projection.read();
            (
                g.forward_trace(r.target.as_ref(), r.max_depth, self.limits.with_max_nodes(r.max_nodes)),
                g.position(),
            )
        };
        self.visible(position).await?;
        let reply = reply.map_err(status::genealogy)?;
        Self::narrow_trace(&view, reply, "forward trace").map(Response::new)
    }

    async fn origin_shares_inner(
        &self,
        request: Request<p::OriginSharesRequest>,
    ) -> Result<Response<p::OriginSharesReply>, Status> {
        let view = View::of(&Caller::of(&request));
        let r = request.into_inner();
        let (reply, position) = {
            let g = self.projection.read();
            let reply = g.origin_shares(r.target.as_ref());
            if let Ok(shares) = &reply {
                let lot = g.get_lot(&shares.lot_id).map_err(status::genealogy)?;
                view.require(&lot, "origin shares")?;
            }
            (reply, g.position())
        };
        self.visible(position).await?;
        reply.map(Response::new).map_err(status::genealogy)
    }

    async fn lot_history_inner(
        &self,
        request: Request<p::LotHistoryRequest>,
    ) -> Result<Response<p::LotHistoryReply>, Status> {
        let view = View::of(&Caller::of(&request));
        let p::LotHistoryRequest { lot_id, as_of } = request.into_inner();
        let (positions, position) = {
            let g = self.projection.read();
            let positions = g.history_positions(&lot_id).map_err(status::genealogy)?;
            view.require(&g.get_lot(&lot_id).map_err(status::genealogy)?, "history")?;
            (positions, g.position())
        };
        self.visible(position).await?;
        let as_of = as_of.map(|t| (t.seconds, t.nanos));
        let mut entries = Vec::with_capacity(positions.len());
        for pos in positions {
            let Some(e) = self.log.read(pos).await.map_err(status::log)? else {
                return Err(Status::internal(format!("log position {pos} is missing")));
            };
            if as_of.is_some_and(|a| ts_key(e.envelope.recorded_at) > a) {
                continue;
            }
            let (voided_by, reason, void_pos) = {
                let g = self.projection.read();
                match g.voided_by(&e.envelope.event_id) {
                    Some((id, reason)) => {
                        let pos = g.event_position(&id);
                        (id, reason, pos)
                    }
                    None => (String::new(), String::new(), None),
                }
            };
            // A correction recorded after `as_of` was not yet known then.
            let mut voided = !voided_by.is_empty();
            if let (true, Some(a), Some(vp)) = (voided, as_of, void_pos) {
                let void_time = self
                    .log
                    .read(vp)
                    .await
                    .map_err(status::log)?
                    .map(|v| ts_key(v.envelope.recorded_at));
                if void_time.is_some_and(|t| t > a) {
                    voided = false;
                }
            }
            let mut entry = history_entry(e);
            entry.voided = voided;
            if voided {
                entry.voided_by = voided_by;
                entry.void_reason = reason;
            }
            entries.push(entry);
        }
        Ok(Response::new(p::LotHistoryReply { lot_id, entries }))
    }

    async fn get_lot_inner(&self, request: Request<p::GetLotRequest>) -> Result<Response<p::Lot>, Status> {
        let view = View::of(&Caller::of(&request));
        let r = request.into_inner();
        let (reply, position) = {
            let g = self.projection.read();
            (g.get_lot(&r.lot_id), g.position())
        };
        self.visible(position).await?;
        reply.map(|l| Response::new(view.lot(l))).map_err(status::genealogy)
    }

    async fn lookup_label_inner(
        &self,
        request: Request<p::LookupLabelRequest>,
    ) -> Result<Response<p::LookupLabelReply>, Status> {
        let view = View::of(&Caller::of(&request));
        let r = request.into_inner();
        let (reply, position) = {
            let g = self.projection.read();
            (g.lookup_label(&r.uri), g.position())
        };
        self.visible(position).await?;
        let mut reply = reply.map_err(status::genealogy)?;
        reply.lot = reply.lot.map(|l| view.lot(l));
        Ok(Response::new(reply))
    }

    async fn get_status_inner(
        &self,
        _request: Request<p::GetStatusRequest>,
    ) -> Result<Response<p::StatusReply>, Status> {
        // The log's end first: an applied position read after it is never
        // reported ahead of it, and a lag of 0 means caught up with the log.
        let log_position = self.log.current_position().await.map_err(status::log)?;
        let s = self.projection.status();
        // Applied and durable: the embedded genealogy may hold a few events
        // the log is still flushing.
        let applied_position = s.position.min(log_position);
        Ok(Response::new(p::StatusReply {
            log_position,
            applied_position,
            lots: s.lots,
            events: s.events,
            lag: log_position - applied_position,
        }))
    }
}

/// A stored envelope as the API shows it (not voided: the caller marks that).
fn history_entry(e: StoredEvent) -> p::HistoryEntry {
    p::HistoryEntry {
        position: e.position,
        hash: hex::encode(e.hash),
        event_id: e.envelope.event_id,
        chain: e.envelope.chain,
        sequence: e.envelope.sequence,
        recorded_at: e.envelope.recorded_at,
        actor: e.envelope.actor,
        event: e.envelope.event,
        voided: false,
        voided_by: String::new(),
        void_reason: String::new(),
    }
}

impl<L: TraceLog> TraceApi<L> {
    /// The log from `from_position` on, read in batches as the client takes them.
    async fn export_events_inner(
        &self,
        request: Request<p::ExportEventsRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        Caller::of(&request).require(crate::auth::Need::Regulator, "export the log")?;
        let r = request.into_inner();
        let end = self.log.current_position().await.map_err(status::log)?;
        let from = r.from_position.max(1);
        let last = match r.limit {
            0 => end,
            n => end.min(from.saturating_add(n - 1)),
        };
        let log = self.log.clone();
        let stream = futures_util::stream::unfold(from, move |next| {
            let log = log.clone();
            async move {
                if next > last {
                    return None;
                }
                let upto = last.min(next + EXPORT_BATCH as u64 - 1);
                let mut batch = Vec::with_capacity((upto - next + 1) as usize);
                for pos in next..=upto {
                    match log.read(pos).await {
                        Ok(Some(e)) => batch.push(Ok(history_entry(e))),
                        Ok(None) => {
                            batch.push(Err(Status::internal(format!("log position {pos} is missing"))));
                            return Some((futures_util::stream::iter(batch), u64::MAX));
                        }
                        Err(e) => {
                            batch.push(Err(status::log(e)));
                            return Some((futures_util::stream::iter(batch), u64::MAX));
                        }
                    }
                }
                Some((futures_util::stream::iter(batch), upto + 1))
            }
        });
        use futures_util::StreamExt;
        Ok(Response::new(Box::pin(stream.flatten())))
    }
}

type ExportStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<p::HistoryEntry, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl<L: TraceLog> TraceService for TraceApi<L> {
    type ExportEventsStream = ExportStream;

    async fn export_events(&self, request: Request<p::ExportEventsRequest>) -> Result<Response<ExportStream>, Status> {
        let started = std::time::Instant::now();
        let result = self.export_events_inner(request).await;
        crate::metrics::metrics().rpc("ExportEvents", started, &result);
        result
    }

    async fn backward_trace(&self, request: Request<p::TraceRequest>) -> Result<Response<p::TraceReply>, Status> {
        let started = std::time::Instant::now();
        let result = self.backward_trace_inner(request).await;
        crate::metrics::metrics().rpc("BackwardTrace", started, &result);
        result
    }

    async fn forward_trace(&self, request: Request<p::TraceRequest>) -> Result<Response<p::TraceReply>, Status> {
        let started = std::time::Instant::now();
        let result = self.forward_trace_inner(request).await;
        crate::metrics::metrics().rpc("ForwardTrace", started, &result);
        result
    }

    async fn origin_shares(
        &self,
        request: Request<p::OriginSharesRequest>,
    ) -> Result<Response<p::OriginSharesReply>, Status> {
        let started = std::time::Instant::now();
        let result = self.origin_shares_inner(request).await;
        crate::metrics::metrics().rpc("OriginShares", started, &result);
        result
    }

    async fn lot_history(
        &self,
        request: Request<p::LotHistoryRequest>,
    ) -> Result<Response<p::LotHistoryReply>, Status> {
        let started = std::time::Instant::now();
        let result = self.lot_history_inner(request).await;
        crate::metrics::metrics().rpc("LotHistory", started, &result);
        result
    }

    async fn get_lot(&self, request: Request<p::GetLotRequest>) -> Result<Response<p::Lot>, Status> {
        let started = std::time::Instant::now();
        let result = self.get_lot_inner(request).await;
        crate::metrics::metrics().rpc("GetLot", started, &result);
        result
    }

    async fn lookup_label(
        &self,
        request: Request<p::LookupLabelRequest>,
    ) -> Result<Response<p::LookupLabelReply>, Status> {
        let started = std::time::Instant::now();
        let result = self.lookup_label_inner(request).await;
        crate::metrics::metrics().rpc("LookupLabel", started, &result);
        result
    }

    async fn get_status(&self, request: Request<p::GetStatusRequest>) -> Result<Response<p::StatusReply>, Status> {
        let started = std::time::Instant::now();
        let result = self.get_status_inner(request).await;
        crate::metrics::metrics().rpc("GetStatus", started, &result);
        result
    }
}
