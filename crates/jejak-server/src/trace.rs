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
    alerts: Option<std::sync::Arc<dyn crate::alerts::AlertApi>>,
}

impl<L> TraceApi<L> {
    pub fn new(reader: Reader<L>) -> TraceApi<L> {
        TraceApi { reader, alerts: None }
    }

    /// This service streaming alerts.
    pub fn with_alerts(mut self, alerts: std::sync::Arc<dyn crate::alerts::AlertApi>) -> TraceApi<L> {
        self.alerts = Some(alerts);
        self
    }
}

type AlertStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<p::AlertMessage, Status>> + Send + 'static>>;

type ExportStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<p::HistoryEntry, Status>> + Send + 'static>>;
type LogStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<p::StoredEnvelope, Status>> + Send + 'static>>;

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

    type ExportLogStream = LogStream;

    type WatchAlertsStream = AlertStream;

    async fn watch_alerts(&self, request: Request<p::WatchAlertsRequest>) -> Result<Response<AlertStream>, Status> {
        let caller = Caller::of(&request);
        caller.require(Need::Token, "watch alerts")?;
        let Some(alerts) = self.alerts.clone() else {
            return Err(crate::error::status(&jejak_proto::Refusal::new(
                jejak_proto::ErrorCode::RuleBroken,
                "this process keeps no alerts".to_string(),
            )));
        };
        let rx = alerts.watch(caller.view(), request.into_inner().after_position);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|m| (m.map_err(Status::unavailable), rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn export_log(&self, request: Request<p::ExportEventsRequest>) -> Result<Response<LogStream>, Status> {
        let started = std::time::Instant::now();
        let result = match Caller::of(&request).require(Need::Regulator, "export the log") {
            Err(s) => Err(s),
            Ok(()) => match self.reader.export_log(request.into_inner().into()).await {
                Ok(stream) => {
                    use futures_util::StreamExt;
                    let stream: LogStream = Box::pin(stream.map(|item| item.map_err(|e| status(&e))));
                    Ok(Response::new(stream))
                }
                Err(e) => Err(status(&e)),
            },
        };
        crate::metrics::metrics().rpc("ExportLog", started, &result);
        result
    }

    async fn get_bundle(&self, request: Request<p::GetBundleRequest>) -> Result<Response<p::BundleReply>, Status> {
        let view = Caller::of(&request).view();
        timed("GetBundle", async {
            let p::GetBundleRequest { target } = request.into_inner();
            let name = match target.as_ref().and_then(|t| t.kind.as_ref()) {
                Some(p::target::Kind::LotId(s) | p::target::Kind::Serial(s) | p::target::Kind::Label(s)) => s.clone(),
                None => String::new(),
            };
            let target = Target::try_from(p::OriginSharesRequest { target })?;
            let bundle = self.reader.bundle(&view, &target, &name).await?;
            let json = serde_json::to_string_pretty(&bundle)
                .map_err(|e| ReadError::Transparency(format!("the bundle does not serialize: {e}")))?;
            Ok(p::BundleReply { json })
        })
        .await
    }

    async fn get_checkpoint(
        &self,
        _request: Request<p::GetCheckpointRequest>,
    ) -> Result<Response<p::CheckpointReply>, Status> {
        timed("GetCheckpoint", async {
            let published = self.reader.checkpoint()?;
            let key = self.reader.transparency().map(|t| t.log_key.vkey()).unwrap_or_default();
            Ok(p::CheckpointReply {
                note: published.note.clone(),
                tree_size: published.checkpoint.size,
                root_hash: published.checkpoint.root.to_vec(),
                log_key: key,
                signed_at: Some(prost_types::Timestamp {
                    seconds: published.signed_at,
                    nanos: 0,
                }),
                cosigners: published.cosigners.clone(),
            })
        })
        .await
    }

    async fn prove_inclusion(
        &self,
        request: Request<p::ProveInclusionRequest>,
    ) -> Result<Response<p::InclusionProofReply>, Status> {
        timed("ProveInclusion", async {
            let p::ProveInclusionRequest { event_id, tree_size } = request.into_inner();
            let i = self.reader.prove_inclusion(&event_id, tree_size).await?;
            Ok(p::InclusionProofReply {
                leaf_index: i.index,
                tree_size: i.size,
                leaf: i.leaf,
                hashes: i.path.iter().map(|h| h.to_vec()).collect(),
                tlog_proof: i.tlog_proof.unwrap_or_default(),
            })
        })
        .await
    }

    async fn prove_consistency(
        &self,
        request: Request<p::ProveConsistencyRequest>,
    ) -> Result<Response<p::ConsistencyProofReply>, Status> {
        timed("ProveConsistency", async {
            let p::ProveConsistencyRequest {
                first_size,
                second_size,
            } = request.into_inner();
            let (second_size, proof) = self.reader.prove_consistency(first_size, second_size)?;
            Ok(p::ConsistencyProofReply {
                first_size,
                second_size,
                hashes: proof.iter().map(|h| h.to_vec()).collect(),
            })
        })
        .await
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

    async fn recall_report(&self, request: Request<p::TraceRequest>) -> Result<Response<p::RecallReportReply>, Status> {
        let view = Caller::of(&request).view();
        timed("RecallReport", async {
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
