//! Prometheus metrics of the process: commands accepted and rejected by
//! reason, append conflicts and retries, the projector's lag, and RPC
//! latency histograms. Served at `GET /metrics` on the gRPC port to
//! administrators, and without a token on the private listener
//! (`--metrics-listen`, with `/healthz`), which is never exposed publicly.

use std::sync::OnceLock;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tonic::Status;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub kind: String,
    /// accepted, replayed or rejected.
    pub outcome: String,
    /// For a rejection: the rule broken, or the gRPC code.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// resolve or label.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub rpc: String,
    pub code: String,
}

fn latency() -> Histogram {
    // 50 µs to ~3.3 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    pub commands: Family<CommandLabels, Counter>,
    pub rpc_seconds: Family<RpcLabels, Histogram, fn() -> Histogram>,
    pub http_seconds: Family<HttpLabels, Histogram, fn() -> Histogram>,
    pub append_conflicts: Counter,
    pub append_retries: Counter,
    pub append_pipelined: Counter,
    pub append_messages: Counter,
    pub projector_lag: Gauge,
    pub projector_position: Gauge,
    /// What the stored projection reflects: where a restart resumes.
    pub projector_stored_position: Gauge,
    pub stream_position: Gauge,
    pub nats_connected: Gauge,
    /// 1 once the background check found every hash chain intact, 0 when
    /// it found one broken (the server then reports NOT_SERVING), -1 before.
    pub log_verified: Gauge,
    /// Tree size of the last published transparency log checkpoint.
    pub checkpoint_size: Gauge,
}

/// The process's metrics, registered on first use.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::with_prefix("jejak");
        let commands = Family::<CommandLabels, Counter>::default();
        let rpc_seconds = Family::<RpcLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let http_seconds = Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let (append_conflicts, append_retries) = (Counter::default(), Counter::default());
        let (append_pipelined, append_messages) = (Counter::default(), Counter::default());
        let (projector_lag, projector_position) = (Gauge::default(), Gauge::default());
        let (stream_position, nats_connected) = (Gauge::default(), Gauge::default());
        let projector_stored_position = Gauge::default();
        let log_verified = Gauge::default();
        log_verified.set(-1);
        let checkpoint_size = Gauge::default();
        registry.register(
            "checkpoint_tree_size",
            "Tree size of the last checkpoint the transparency log published",
            checkpoint_size.clone(),
        );
        registry.register(
            "log_verified",
            "Whether the background check of every hash chain since start found the log intact (1), broken (0), or has not finished (-1)",
            log_verified.clone(),
        );
        registry.register(
            "commands",
            "Capture commands by kind and outcome (accepted, replayed, rejected with its reason)",
            commands.clone(),
        );
        registry.register(
            "rpc_duration_seconds",
            "Time to answer each gRPC call, by method and status code",
            rpc_seconds.clone(),
        );
        registry.register(
            "http_duration_seconds",
            "Time to answer each label resolution and label image, by route and HTTP status",
            http_seconds.clone(),
        );
        registry.register(
            "append_conflicts",
            "Appends refused because another writer extended the chain first (then decided again)",
            append_conflicts.clone(),
        );
        registry.register(
            "append_retries",
            "Publishes repeated with the same message id after no acknowledgement came",
            append_retries.clone(),
        );
        registry.register(
            "append_pipelined",
            "Appends published while earlier ones of this instance were still awaiting acknowledgement",
            append_pipelined.clone(),
        );
        registry.register(
            "append_messages",
            "Messages this instance published to the stream: each holds one event, or a batch of one facility's \
             (the appends that were not duplicates, over this, is how many each carried)",
            append_messages.clone(),
        );
        registry.register(
            "projector_lag_events",
            "How far the projection is behind the log: events in the embedded log, the stream's messages on NATS",
            projector_lag.clone(),
        );
        registry.register(
            "projector_position",
            "Last log position the projection applied",
            projector_position.clone(),
        );
        registry.register(
            "projector_stored_position",
            "Last log position the stored projection reflects (a restart re-applies what follows it)",
            projector_stored_position.clone(),
        );
        registry.register(
            "log_position",
            "Last position of the event log as this process knows it",
            stream_position.clone(),
        );
        registry.register(
            "nats_connected",
            "1 while the NATS connection is up (always 0 on the embedded store)",
            nats_connected.clone(),
        );
        Metrics {
            registry,
            commands,
            rpc_seconds,
            http_seconds,
            append_conflicts,
            append_retries,
            append_pipelined,
            append_messages,
            projector_lag,
            projector_position,
            projector_stored_position,
            stream_position,
            nats_connected,
            log_verified,
            checkpoint_size,
        }
    })
}

impl Metrics {
    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encode the metrics");
        }
        out
    }

    /// Counts a capture command's outcome.
    pub fn command(&self, kind: &str, result: &Result<jejak_proto::v1::CaptureReply, Status>) {
        let (outcome, reason) = match result {
            Ok(r) if r.replayed => ("replayed", String::new()),
            Ok(_) => ("accepted", String::new()),
            Err(s) => (
                "rejected",
                s.metadata()
                    .get("jejak-rule")
                    .and_then(|v| v.to_str().ok())
                    .map_or_else(|| format!("{:?}", s.code()).to_lowercase(), str::to_string),
            ),
        };
        self.commands
            .get_or_create(&CommandLabels {
                kind: kind.to_string(),
                outcome: outcome.into(),
                reason,
            })
            .inc();
    }

    /// Records how long an RPC took and how it ended.
    pub fn rpc<T>(&self, rpc: &str, started: Instant, result: &Result<T, Status>) {
        let code = match result {
            Ok(_) => "ok".to_string(),
            Err(s) => format!("{:?}", s.code()).to_lowercase(),
        };
        self.rpc_seconds
            .get_or_create(&RpcLabels {
                rpc: rpc.to_string(),
                code,
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

impl Metrics {
    /// Records how long an HTTP request of the resolver took.
    pub fn http(&self, route: &str, started: Instant, status: http::StatusCode) {
        self.http_seconds
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                status: status.as_u16(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The HTTP routes served beside gRPC on the same port.
pub fn http_routes() -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                metrics().render(),
            )
        }),
    )
}

/// What the private listener serves over HTTP: `/metrics`, and `/healthz`
/// (the process answers).
pub fn private_routes() -> axum::Router {
    http_routes().route("/healthz", axum::routing::get(|| async { "ok\n" }))
}

/// Serves `routes` (`private_routes` and grpc.health.v1) without a token
/// and without TLS on a listener of its own (`--metrics-listen`), until
/// `cancel`: what Prometheus scrapes and probes ask (a Kubernetes gRPC
/// probe speaks no TLS), on an address kept off the public network.
pub async fn serve_private(
    addr: std::net::SocketAddr,
    routes: tonic::service::Routes,
    cancel: tokio_util::sync::CancellationToken,
) -> anyhow::Result<std::net::SocketAddr> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listen for metrics on {addr} (--metrics-listen)"))?;
    let local = listener.local_addr().context("read the metrics address")?;
    tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                cancel.cancelled_owned(),
            )
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    println!("jejak metrics on http://{local}/metrics");
    Ok(local)
}
