//! The gRPC trace service: each RPC asks the read side (`jejak-read`) with
//! the caller's view and renders its answer; it reads nothing itself.

use jejak_domain::{HistoryQuery, LabelQuery, LotQuery, Target, TraceQuery};
use jejak_log::ReadLog;
use jejak_proto::v1 as p;
use jejak_proto::v1::trace_service_server::TraceService;
use jejak_read::{ReadError, Reader};
use tonic::{Request, Response, Status};

use crate::auth::{Caller, Need};
use crate::error::status;

pub struct TraceApi<L> {
    reader: Reader<L>,
}

impl<L> TraceApi<L> {
    pub fn new(reader: Reader<L>) -> TraceApi<L> {
        TraceApi { reader }
    }
}

type ExportStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<p::HistoryEntry, Status>> + Send + 'static>>;

/// Times an RPC and records its outcome; the reply is built from the read
/// side's answer (a domain read model).
async fn timed<M, T: From<M>>(
    rpc: &'static str,
    answer: impl std::future::Future<Output = Result<M, ReadError>>,
) -> Result<Response<T>, Status> {
    let started = std::time::Instant::now();
    let result = answer.await.map(|m| Response::new(T::from(m))).map_err(|e| status(&e));
    crate::metrics::metrics().rpc(rpc, started, &result);
    result
}

#[tonic::async_trait]
impl<L: ReadLog> TraceService for TraceApi<L> {
    type ExportEventsStream = ExportStream;

    async fn export_events(&self, request: Request<p::ExportEventsRequest>) -> Result<Response<ExportStream>, Status> {
        let started = std::time::Instant::now();
        let result = match Caller::of(&request).require(Need::Regulator, "export the log") {
            Err(s) => Err(s),
            Ok(()) => match self.reader.export(request.into_inner().into()).await {
                Ok(stream) => {
                    use futures_util::StreamExt;
                    let stream: ExportStream = Box::pin(stream.map(|item| item.map_err(|e| status(&e))));
                    Ok(Response::new(stream))
                }
                Err(e) => Err(status(&e)),
            },
        };
        crate::metrics::metrics().rpc("ExportEvents", started, &result);
        result
    }

    async fn backward_trace(&self, request: Request<p::TraceRequest>) -> Result<Response<p::TraceReply>, Status> {
        let view = Caller::of(&request).view();
        timed("BackwardTrace", async {
            let q = TraceQuery::try_from(request.into_inner())?;
            self.reader.backward_trace(&view, &q).await
        })
        .await
    }

    async fn forward_trace(&self, request: Request<p::TraceRequest>) -> Result<Response<p::TraceReply>, Status> {
        let view = Caller::of(&request).view();
        timed("ForwardTrace", async {
            let q = TraceQuery::try_from(request.into_inner())?;
            self.reader.forward_trace(&view, &q).await
        })
        .await
    }

    async fn origin_shares(
        &self,
        request: Request<p::OriginSharesRequest>,
    ) -> Result<Response<p::OriginSharesReply>, Status> {
        let view = Caller::of(&request).view();
        timed("OriginShares", async {
            let target = Target::try_from(request.into_inner())?;
            self.reader.origin_shares(&view, &target).await
        })
        .await
    }

    async fn lot_history(
        &self,
        request: Request<p::LotHistoryRequest>,
    ) -> Result<Response<p::LotHistoryReply>, Status> {
        let view = Caller::of(&request).view();
        timed("LotHistory", async {
            let q = HistoryQuery::try_from(request.into_inner())?;
            self.reader.lot_history(&view, q).await
        })
        .await
    }

    async fn get_lot(&self, request: Request<p::GetLotRequest>) -> Result<Response<p::Lot>, Status> {
        let view = Caller::of(&request).view();
        timed("GetLot", async {
            let q = LotQuery::try_from(request.into_inner())?;
            self.reader.lot(&view, &q.lot_id).await
        })
        .await
    }

    async fn lookup_label(
        &self,
        request: Request<p::LookupLabelRequest>,
    ) -> Result<Response<p::LookupLabelReply>, Status> {
        let view = Caller::of(&request).view();
        timed("LookupLabel", async {
            let q = LabelQuery::try_from(request.into_inner())?;
            self.reader.lookup_label(&view, &q).await
        })
        .await
    }

    async fn get_status(&self, _request: Request<p::GetStatusRequest>) -> Result<Response<p::StatusReply>, Status> {
        timed("GetStatus", self.reader.status()).await
    }
}
