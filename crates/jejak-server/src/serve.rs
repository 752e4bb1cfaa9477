//! One `run` for every role a server process has: the embedded default
//! (`jejak serve`: the sled log and projection in a data directory), or on
//! NATS JetStream a capture instance, a projector, or both. Each serves the
//! capture, trace and admin APIs it has, gRPC health and reflection, the
//! label resolver and `/metrics`, all behind the authentication layer.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use jejak_domain::TokenTable;
use jejak_genealogy::TraceLimits;
use jejak_log::{EventLog, ReadLog, SledLog};
use jejak_proto::v1::admin_service_server::AdminServiceServer;
use jejak_proto::v1::capture_service_server::CaptureServiceServer;
use jejak_proto::v1::trace_service_server::TraceServiceServer;
use jejak_read::Reader;
use jejak_resolver::Resolver;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::AdminApi;
use crate::auth::{AuthLayer, RateLimits};
use crate::capture::CaptureApi;
use crate::limits::LimitsLayer;
use crate::trace::TraceApi;

/// Validated configuration of a server process.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub backend: Backend,
    pub limits: TraceLimits,
    pub access: Access,
    /// The transparency log's key and witnesses.
    pub tlog: crate::tlog::TlogConfig,
}

/// Where a server keeps its events, and which services it runs.
#[derive(Debug, Clone)]
pub enum Backend {
    /// One process: the sled log and projection in `data_dir`.
    Embedded {
        data_dir: PathBuf,
        /// Load the demo data when the store is empty.
        demo: bool,
    },
    /// On NATS JetStream: a capture instance, a projector, or both.
    Nats(NatsBackend),
}

/// Serves until `shutdown` resolves, whatever the role; a clean shutdown
/// loses no acknowledged event.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    crate::files::owner_only_from_now_on();
    if let Some(limit) = crate::files::raise_descriptor_limit() {
        tracing::debug!(limit, "open descriptors allowed");
    }
    // Streams without an end (WatchAlerts) end when shutdown begins, so a
    // graceful shutdown does not wait for their clients.
    let streams = CancellationToken::new();
    let shutdown = {
        let streams = streams.clone();
        async move {
            shutdown.await;
            streams.cancel();
        }
    };
    match config.backend {
        Backend::Embedded { data_dir, demo } => {
            run_embedded(
                data_dir,
                demo,
                config.limits,
                (config.access, streams),
                config.tlog,
                listener,
                shutdown,
            )
            .await
        }
        Backend::Nats(nats) => {
            run_nats(
                nats,
                config.limits,
                (config.access, streams),
                config.tlog,
                listener,
                shutdown,
            )
            .await
        }
    }
}

/// Records each resolver answer in the process's metrics.
fn observer() -> jejak_resolver::Observer {
    std::sync::Arc::new(|route, started, status| crate::metrics::metrics().http(route, started, status))
}

/// Reports what the start's walk of every hash chain found. Opening checks
/// what was appended since the last checkpoint; the walk covers the rest,
/// so an envelope changed on disk before the checkpoint is found too. On a
/// mismatch the server reports NOT_SERVING (health), the
/// `jejak_log_verified` metric is 0 and the log names the chain and
/// sequence.
async fn report_verification(audit: &jejak_engine::offline::LogAudit, health: &tonic_health::server::HealthReporter) {
    match &audit.verified {
        Ok(envelopes) => {
            crate::metrics::metrics().log_verified.set(1);
            tracing::info!(envelopes, elapsed = ?audit.took, "every hash chain of the log verified");
        }
        Err(e) => {
            crate::metrics::metrics().log_verified.set(0);
            tracing::error!(error = %e, "the event log failed verification: reporting NOT_SERVING; restore it from a backup");
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            health
                .set_not_serving::<CaptureServiceServer<CaptureApi<SledLog>>>()
                .await;
            health.set_not_serving::<TraceServiceServer<TraceApi<SledLog>>>().await;
        }
    }
}

/// Requests one HTTP/2 connection may have in flight at once.
const MAX_STREAMS_PER_CONNECTION: u32 = 128;

/// How a server meets its callers.
#[derive(Debug, Clone)]
pub struct Access {
    /// PEM certificate chain and private key; plain text without.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub rates: RateLimits,
    /// Where an administrator token made at start is written (when no
    /// active one exists).
    pub admin_token_file: Option<PathBuf>,
    /// Longest a request may take; a shorter `grpc-timeout` from the client wins.
    pub request_timeout: std::time::Duration,
    /// Scheme and host of the label URIs the resolver prints and draws
    /// (`https://id.example`); the request's own host without one.
    pub public_base: Option<String>,
    /// The private Digital-Link-style domain of EPCIS ids for things
    /// without a GS1 key (`epcis::DEFAULT_DOMAIN` without one).
    pub epcis_domain: Option<String>,
    /// What token expiry is checked against: the system's clock, or a
    /// test's.
    pub clock: jejak_domain::SharedClock,
    /// How many connections, from whom, for how long.
    pub connections: crate::conn::ConnLimits,
    /// The delay before a failed webhook delivery's first retry; the later
    /// ones are multiples of it (`alerts::SCHEDULE`).
    pub webhook_retry: std::time::Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: crate::proxy::TrustedProxies,
    /// A second, private listener for `/metrics` and `/healthz` without a
    /// token (for Prometheus and probes; never exposed publicly).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Access {
    /// Where EPCIS ids of things without a GS1 key live.
    pub fn epcis_domain(&self) -> &str {
        self.epcis_domain.as_deref().unwrap_or(crate::epcis::DEFAULT_DOMAIN)
    }
}

impl Default for Access {
    fn default() -> Access {
        Access {
            tls: None,
            rates: RateLimits::default(),
            admin_token_file: None,
            request_timeout: std::time::Duration::from_secs(30),
            public_base: None,
            epcis_domain: None,
            clock: jejak_domain::system_clock(),
            connections: crate::conn::ConnLimits::default(),
            webhook_retry: crate::alerts::AlertConfig::default().retry_unit,
            trusted_proxies: crate::proxy::TrustedProxies::default(),
            metrics_listen: None,
        }
    }
}

impl Access {
    /// A server builder with TLS (if configured) and the authentication
    /// layer over every route.
    fn builder(
        &self,
        addr: std::net::SocketAddr,
        tokens: Arc<TokenTable>,
    ) -> anyhow::Result<
        tonic::transport::Server<tower_layer::Stack<AuthLayer, tower_layer::Stack<LimitsLayer, tower_layer::Identity>>>,
    > {
        // Deadlines are the limits layer's (DEADLINE_EXCEEDED), not tonic's.
        let mut b = tonic::transport::Server::builder()
            .accept_http1(true)
            // Dead peers are found by pings; live but idle ones by the
            // connection's idle timeout (`conn`).
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .http2_max_pending_accept_reset_streams(Some(64));
        match &self.tls {
            Some((cert, key)) => {
                let cert =
                    std::fs::read(cert).with_context(|| format!("read the TLS certificate {}", cert.display()))?;
                let key = std::fs::read(key).with_context(|| format!("read the TLS key {}", key.display()))?;
                b = b
                    .tls_config(
                        tonic::transport::ServerTlsConfig::new()
                            .identity(tonic::transport::Identity::from_pem(cert, key)),
                    )
                    .context("set up TLS with --tls-cert and --tls-key")?;
            }
            None if !addr.ip().is_loopback() => tracing::warn!(
                %addr,
                "serving without TLS on an address other than loopback: tokens and data cross the network \
                 in clear text; pass --tls-cert and --tls-key"
            ),
            None => {}
        }
        Ok(b.layer(LimitsLayer {
            request_timeout: self.request_timeout,
        })
        .layer(AuthLayer::new(
            tokens,
            self.rates,
            self.clock.clone(),
            self.trusted_proxies.clone(),
        )))
    }

    /// The URL callers use.
    fn url(&self, addr: std::net::SocketAddr) -> String {
        match self.tls {
            Some(_) => format!("https://{addr}"),
            None => format!("http://{addr}"),
        }
    }
}

/// Server reflection, v1 and v1alpha, describing the jejak API and health.
fn reflection() -> anyhow::Result<(
    tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
    tonic_reflection::server::v1alpha::ServerReflectionServer<impl tonic_reflection::server::v1alpha::ServerReflection>,
)> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(jejak_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok((
        builder().build_v1().context("build the reflection service")?,
        builder().build_v1alpha().context("build the reflection service")?,
    ))
}

/// The embedded server; a clean shutdown flushes the log and the projection.
async fn run_embedded(
    data_dir: PathBuf,
    demo: bool,
    limits: TraceLimits,
    (access, streams): (Access, CancellationToken),
    tlog: crate::tlog::TlogConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&data_dir).with_context(|| format!("create the data directory {}", data_dir.display()))?;
    crate::files::make_owner_only(&data_dir)
        .with_context(|| format!("make the data directory {} owner-only", data_dir.display()))?;
    // The transparency log's tree catches up in the start's walk of the
    // log, and the walk keeps what the alert follower has yet to follow.
    let tree = crate::tlog::open_tree(&data_dir)?;
    let alert_store = crate::alerts::open_store(&data_dir.join("alerts"))?;
    let walk = (
        jejak_engine::tlog::TreeWalk::new(tree.clone())?,
        crate::alerts::AlertWalk::new(&alert_store)?,
    );
    let (writer, audit, (walk, alert_walk)) =
        jejak_engine::offline::open_writer(&data_dir, access.clock.clone(), walk).await?;
    let walked = tokio::task::spawn_blocking(move || walk.finish())
        .await
        .context("transparency log task")??;
    tracing::debug!(size = walked, "transparency log tree extended in the start's walk");
    let log = writer.log().clone();
    let projection = writer.projection().clone();
    let status = projection.status();
    tracing::info!(
        lots = status.lots,
        events = status.events,
        position = status.position,
        "genealogy ready"
    );
    let tokens = projection.read().tokens();
    // Who may do what is the log's to say, not the projection's: the table
    // the start's walk of the log replayed.
    let from_log = &audit.tokens;
    if from_log.all() != tokens.all() {
        tracing::error!(
            in_log = from_log.all().len(),
            in_projection = tokens.all().len(),
            "the projection's tokens differ from the event log's; serving the log's (run `jejak rebuild` to repair the projection)"
        );
        tokens.replace_with(from_log);
    }

    let cancel = CancellationToken::new();
    let persister = {
        let (writer, cancel) = (writer.clone(), cancel.clone());
        tokio::spawn(async move { writer.run_persister(cancel).await })
    };

    let transparency =
        crate::tlog::start_embedded(&data_dir, &tlog, (&log, tree), access.clock.clone(), &cancel).await?;
    if demo && status.events == 0 {
        let n = crate::demo::load(&*writer).await.context("load the demo data")?;
        tracing::info!(commands = n, "demo data loaded");
    }
    let token_file = access
        .admin_token_file
        .clone()
        .unwrap_or_else(|| data_dir.join("admin.token"));
    crate::auth::bootstrap_admin(&*writer, &tokens, Some(&token_file), &*access.clock).await?;

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<CaptureServiceServer<CaptureApi<SledLog>>>()
        .await;
    health_reporter
        .set_serving::<TraceServiceServer<TraceApi<SledLog>>>()
        .await;
    let (reflection_v1, reflection_v1alpha) = reflection()?;
    report_verification(&audit, &health_reporter).await;

    let addr = listener.local_addr().context("read the listen address")?;
    tracing::info!(%addr, data_dir = %data_dir.display(), "jejak serving");
    // On stdout for people and for harnesses that bind port 0.
    println!("jejak listening on {}", access.url(addr));
    if let Some(private) = access.metrics_listen {
        let routes = tonic::service::Routes::from(crate::metrics::private_routes()).add_service(health.clone());
        crate::metrics::serve_private(private, routes, cancel.clone()).await?;
    }
    if demo {
        // Listening on every address: loopback is the one to open here.
        let mut local = addr;
        if local.ip().is_unspecified() {
            local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let base = access.public_base.clone().unwrap_or_else(|| access.url(local));
        println!("demo labels to open in a browser:");
        for (uri, what) in crate::demo::showcase_uris(&projection.read(), &base) {
            println!("  {uri}  ({what})");
        }
    }
    {
        // Positions for /metrics.
        let (log, projection, cancel) = (log.clone(), projection.clone(), cancel.clone());
        tokio::spawn(async move {
            let m = crate::metrics::metrics();
            loop {
                let durable = log.durable_position();
                let applied = projection.position().min(durable);
                m.stream_position.set(i64::try_from(durable).unwrap_or(i64::MAX));
                m.projector_position.set(i64::try_from(applied).unwrap_or(i64::MAX));
                m.projector_stored_position
                    .set(i64::try_from(projection.persisted_position()).unwrap_or(i64::MAX));
                m.projector_lag
                    .set(i64::try_from(durable - applied).unwrap_or(i64::MAX));
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                }
            }
        });
    }
    let reader = Reader::new(projection.clone(), log.clone(), limits).with_transparency(transparency.clone());
    // Alerts of events a crash took back before they were durable (raised
    // by an older release, which did not wait) go; the start's walk, kept
    // from a position the log no longer reaches, is not used then.
    let end = jejak_log::EventLog::durable_position(&log);
    let truncated = alert_store
        .truncate_after(end)
        .map_err(|e| anyhow::anyhow!("bring the alert store back to the log's end {end}: {e}"))?;
    if truncated {
        tracing::warn!(
            end,
            "the alert store had followed past the log's end; alerts after it were dropped"
        );
    }
    let alerts: Arc<dyn crate::alerts::AlertApi> = crate::alerts::Alerts::start_on(
        alert_store,
        (!truncated).then_some(alert_walk),
        reader.clone(),
        crate::alerts::AlertConfig {
            retry_unit: access.webhook_retry,
        },
        None,
        (&cancel, &streams),
    )?;
    let result = access
        .builder(addr, tokens.clone())?
        .add_routes(tonic::service::Routes::from(
            crate::metrics::http_routes()
                .merge(crate::tlog::routes(transparency.clone()))
                .merge(crate::epcis::routes(
                    reader.clone(),
                    Some(writer.clone()),
                    access.epcis_domain(),
                ))
                .merge(crate::regulator::routes(reader.clone()))
                .merge(crate::console::routes(
                    reader.clone(),
                    Some(writer.clone()),
                    tokens.clone(),
                    access.clock.clone(),
                    (access.tls.is_some(), access.public_base.clone()),
                ))
                .merge(
                    Resolver::new(
                        reader.clone(),
                        access.public_base.clone(),
                        access.tls.is_some(),
                        observer(),
                    )
                    .routes(),
                ),
        ))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(AdminServiceServer::new(
            AdminApi::new(writer.clone(), tokens, access.clock.clone())
                .with_backup(crate::admin::BackupSource {
                    reader: reader.clone(),
                    key_path: tlog.key_path(&data_dir),
                })
                .with_alerts(alerts.clone()),
        ))
        .add_service(
            CaptureServiceServer::new(CaptureApi::new(writer.clone()))
                .max_decoding_message_size(jejak_proto::MAX_MESSAGE_SIZE),
        )
        .add_service(
            TraceServiceServer::new(TraceApi::new(reader).with_alerts(alerts))
                .max_decoding_message_size(jejak_proto::MAX_MESSAGE_SIZE),
        )
        .serve_with_incoming_shutdown(
            crate::conn::incoming(listener, access.connections, access.trusted_proxies.clone()),
            shutdown,
        )
        .await
        .context("serve gRPC");

    cancel.cancel();
    match persister.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "writing the projection failed"),
        Err(e) => tracing::error!(error = %e, "projection writer task failed"),
    }
    log.close().await.context("close the event log")?;
    let flush = projection.clone();
    tokio::task::spawn_blocking(move || flush.flush())
        .await
        .context("projection flush task")?
        .context("flush the projection")?;
    tracing::info!("jejak stopped");
    result
}

/// What a process runs against NATS JetStream: the capture service, a
/// projector (with its data directory), or both (`jejak serve --nats`).
#[derive(Debug, Clone)]
pub struct NatsBackend {
    pub nats: jejak_log::JetStreamConfig,
    /// How long to keep trying to reach NATS at start.
    pub connect_wait: std::time::Duration,
    pub capture: bool,
    /// The projector's data directory, when this process runs one.
    pub projector: Option<PathBuf>,
    pub demo: bool,
    /// Health turns NOT_SERVING when the projector is further behind.
    pub max_lag: u64,
}

/// The first administrator token of a deployment on JetStream, made by a
/// one-shot step (a Kubernetes Job, a compose service run once) instead
/// of a capture replica: follows the stream's tokens and, when no active
/// administrator token exists, issues one and writes it to `out` (`-`:
/// standard output, to be read once from the step's own output).
/// Whether one was issued; running it again issues none.
pub async fn bootstrap_token(
    nats: jejak_log::JetStreamConfig,
    connect_wait: std::time::Duration,
    out: &std::path::Path,
    clock: jejak_domain::SharedClock,
) -> anyhow::Result<bool> {
    use jejak_engine::distributed::{DistributedWriter, Fatal};
    let log = jejak_log::JetStreamLog::connect(nats, connect_wait)
        .await
        .context("set up the JetStream event log")?;
    let cancel = CancellationToken::new();
    let writer = DistributedWriter::start(log, cancel.clone(), Fatal::default(), clock.clone(), None).await?;
    let tokens = writer.tokens();
    let issued = !tokens.has_active_admin(clock.now());
    let made = crate::auth::bootstrap_admin(&*writer, &tokens, Some(out), &*clock).await;
    cancel.cancel();
    made.map(|()| issued)
}

/// Serves the capture and/or trace APIs over JetStream until `shutdown`.
async fn run_nats(
    config: NatsBackend,
    limits: TraceLimits,
    (access, streams): (Access, CancellationToken),
    tlog: crate::tlog::TlogConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use jejak_engine::distributed::{feed, run_projector, DistributedWriter, Fatal, StreamView};
    use jejak_log::JetStreamLog;

    let log = JetStreamLog::connect(config.nats.clone(), config.connect_wait)
        .await
        .context("set up the JetStream event log")?;
    tracing::info!(
        server = %log.server_version(),
        stream = %config.nats.stream,
        replicas = log.config().replicas,
        "JetStream stream ready"
    );
    let cancel = CancellationToken::new();
    let fatal = Fatal::default();
    let mut forward = None;
    let mut projector = None;
    let mut transparency = None;
    let mut alert_store = None;
    if let Some(dir) = &config.projector {
        std::fs::create_dir_all(dir).with_context(|| format!("create the data directory {}", dir.display()))?;
        crate::files::make_owner_only(dir)
            .with_context(|| format!("make the data directory {} owner-only", dir.display()))?;
        remove_aside(&dir.join("genealogy"));
        let mut projection =
            jejak_engine::offline::open_projection(&dir.join("genealogy"), jejak_genealogy::Chunking::Ordinals).await?;
        let store = crate::alerts::open_store(&dir.join("alerts"))?;
        if let Some(why) = jejak_engine::distributed::projection_disagreement(&log, &projection).await? {
            // Derived state that does not follow from this stream is made
            // again from it, not served: the alerts first, so that a crash
            // in between finds the old projection and starts over again.
            tracing::error!(problem = %why, dir = %dir.display(), "the projection does not follow from the stream; making it again from the stream's start");
            let end = log.end_at_start().await?;
            store
                .start_over(end)
                .map_err(|e| anyhow::anyhow!("start the alert store in {} over: {e}", dir.display()))?;
            drop(projection);
            discard_dir(&dir.join("genealogy"))?;
            projection =
                jejak_engine::offline::open_projection(&dir.join("genealogy"), jejak_genealogy::Chunking::Ordinals)
                    .await?;
        }
        tracing::info!(
            position = projection.position(),
            "projection opened; following the stream"
        );
        let (opened, tree) = crate::tlog::start_nats(dir, &tlog, &log, access.clock.clone(), &cancel).await?;
        transparency = opened;
        let view = StreamView::new(log.clone());
        // A process that captures and projects reads the stream once and
        // holds one genealogy: the capture cache's follower hands its
        // batches on to the projector, and the cache applies every event to
        // the projector's projection, which the projector persists.
        let fed = match config.capture {
            true => {
                // What the projection and the tree both hold, the cache's
                // follower does not read again: it takes the chain heads
                // from the stream's subjects.
                let stored = projection.position().min(tree.tree.last_position());
                let (to, fed) = feed(projection.clone(), stored);
                forward = Some(to);
                Some(fed)
            }
            false => None,
        };
        let running = run_projector(
            log.clone(),
            projection.clone(),
            view.clone(),
            Some(tree),
            fed,
            cancel.clone(),
        );
        let (fatal, cancel) = (fatal.clone(), cancel.clone());
        // A projector that cannot apply the stream stops the process rather
        // than serve a projection that no longer follows it.
        let task = tokio::spawn(async move {
            let result = running.await;
            if let Err(e) = &result {
                fatal.stop(&cancel, anyhow::anyhow!("{e:#}"));
            }
            result
        });
        projector = Some((projection, view, task));
        alert_store = Some(store);
    }
    // After the projector it may feed, which it waits for.
    let writer = match config.capture {
        true => Some(
            DistributedWriter::start(
                log.clone(),
                cancel.clone(),
                fatal.clone(),
                access.clock.clone(),
                forward,
            )
            .await?,
        ),
        false => None,
    };
    if config.demo {
        if let Some(w) = &writer {
            if log.end_at_start().await? == 0 {
                let n = crate::demo::load(&**w).await.context("load the demo data")?;
                tracing::info!(commands = n, "demo data loaded");
            }
        }
    }

    let (health_reporter, health) = tonic_health::server::health_reporter();
    {
        // NOT_SERVING while NATS is unreachable or the projector lags too far.
        let lagging = projector.as_ref().map(|(p, v, _)| (p.clone(), v.clone()));
        let (capture, max_lag, cancel) = (writer.is_some(), config.max_lag, cancel.clone());
        let reporter = health_reporter.clone();
        let retries_log = log.clone();
        let counted = writer.clone();
        tokio::spawn(async move {
            let m = crate::metrics::metrics();
            let (mut retries_seen, mut pipelined_seen, mut conflicts_seen, mut messages_seen) = (0, 0, 0, 0);
            loop {
                let connected = retries_log.is_connected();
                m.nats_connected.set(i64::from(connected));
                let retries = retries_log.publish_retries();
                m.append_retries.inc_by(retries.saturating_sub(retries_seen));
                retries_seen = retries;
                if let Some(w) = &counted {
                    use std::sync::atomic::Ordering::Relaxed;
                    let (pipelined, conflicts, messages) = (
                        w.counters.pipelined.load(Relaxed),
                        w.counters.conflicts.load(Relaxed),
                        w.counters.messages.load(Relaxed),
                    );
                    m.append_pipelined.inc_by(pipelined.saturating_sub(pipelined_seen));
                    m.append_conflicts.inc_by(conflicts.saturating_sub(conflicts_seen));
                    m.append_messages.inc_by(messages.saturating_sub(messages_seen));
                    (pipelined_seen, conflicts_seen, messages_seen) = (pipelined, conflicts, messages);
                }
                let serving = |ok: bool| match ok {
                    true => tonic_health::ServingStatus::Serving,
                    false => tonic_health::ServingStatus::NotServing,
                };
                if capture {
                    reporter
                        .set_service_status(
                            <CaptureServiceServer<CaptureApi<DistributedWriter>> as tonic::server::NamedService>::NAME,
                            serving(connected),
                        )
                        .await;
                }
                let mut all = connected;
                if let Some((projection, view)) = &lagging {
                    let end = ReadLog::log_position(view);
                    let lag = view.lag(projection.position(), end);
                    m.stream_position.set(i64::try_from(end).unwrap_or(i64::MAX));
                    m.projector_position
                        .set(i64::try_from(projection.position()).unwrap_or(i64::MAX));
                    m.projector_stored_position
                        .set(i64::try_from(projection.persisted_position()).unwrap_or(i64::MAX));
                    m.projector_lag.set(i64::try_from(lag).unwrap_or(i64::MAX));
                    let ok = connected && lag <= max_lag;
                    all &= ok;
                    reporter
                        .set_service_status(
                            <TraceServiceServer<TraceApi<StreamView>> as tonic::server::NamedService>::NAME,
                            serving(ok),
                        )
                        .await;
                }
                reporter.set_service_status("", serving(all)).await;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                }
            }
        });
    }
    // Capture instances follow the tokens in their cache, projectors in
    // their projection: both from the stream.
    let tokens = match (&writer, &projector) {
        (Some(w), _) => w.tokens(),
        (None, Some((p, _, _))) => p.read().tokens(),
        (None, None) => TokenTable::new(),
    };
    if let Some(w) = &writer {
        crate::auth::bootstrap_admin(&**w, &tokens, access.admin_token_file.as_deref(), &*access.clock).await?;
    }
    let (reflection_v1, reflection_v1alpha) = reflection()?;
    let addr = listener.local_addr().context("read the listen address")?;
    tracing::info!(%addr, capture = config.capture, projector = projector.is_some(), "jejak serving on NATS");
    println!("jejak listening on {}", access.url(addr));
    if let Some(private) = access.metrics_listen {
        let routes = tonic::service::Routes::from(crate::metrics::private_routes()).add_service(health.clone());
        crate::metrics::serve_private(private, routes, cancel.clone()).await?;
    }
    let capture_api = writer.clone().map(|w| {
        CaptureServiceServer::new(CaptureApi::new(w)).max_decoding_message_size(jejak_proto::MAX_MESSAGE_SIZE)
    });
    let reader = projector.as_ref().map(|(p, v, _)| {
        let r = Reader::new(p.clone(), v.clone(), limits);
        match &transparency {
            Some(t) => r.with_transparency(t.clone()),
            None => r,
        }
    });
    // A projector keeps the alerts, beside its projection.
    let alerts: Option<Arc<dyn crate::alerts::AlertApi>> = match (&reader, alert_store) {
        (Some(r), Some(store)) => Some(crate::alerts::Alerts::start_on(
            store,
            None,
            r.clone(),
            crate::alerts::AlertConfig {
                retry_unit: access.webhook_retry,
            },
            Some(log.clone()),
            (&cancel, &streams),
        )?),
        _ => None,
    };
    let admin_api = writer.clone().map(|w| {
        let api = AdminApi::new(w, tokens.clone(), access.clock.clone());
        AdminServiceServer::new(match &alerts {
            Some(a) => api.with_alerts(a.clone()),
            None => api,
        })
    });
    let trace_api = reader.clone().map(|r| {
        let api = TraceApi::new(r);
        let api = match &alerts {
            Some(a) => api.with_alerts(a.clone()),
            None => api,
        };
        TraceServiceServer::new(api).max_decoding_message_size(jejak_proto::MAX_MESSAGE_SIZE)
    });
    let mut http = crate::metrics::http_routes();
    if let Some(t) = &transparency {
        http = http.merge(crate::tlog::routes(t.clone()));
    }
    if let Some(r) = reader {
        http = http.merge(crate::epcis::routes(r.clone(), writer.clone(), access.epcis_domain()));
        http = http.merge(crate::regulator::routes(r.clone()));
        http = http.merge(crate::console::routes(
            r.clone(),
            writer.clone(),
            tokens.clone(),
            access.clock.clone(),
            (access.tls.is_some(), access.public_base.clone()),
        ));
        http = http.merge(Resolver::new(r, access.public_base.clone(), access.tls.is_some(), observer()).routes());
    }
    let result = access
        .builder(addr, tokens)?
        .add_routes(tonic::service::Routes::from(http))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_optional_service(admin_api)
        .add_optional_service(capture_api)
        .add_optional_service(trace_api)
        .serve_with_incoming_shutdown(
            crate::conn::incoming(listener, access.connections, access.trusted_proxies.clone()),
            {
                let cancel = cancel.clone();
                async move {
                    tokio::select! {
                        _ = shutdown => {}
                        _ = cancel.cancelled() => {}
                    }
                }
            },
        )
        .await
        .context("serve gRPC");
    cancel.cancel();
    if let Some((_, _, task)) = projector {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "projector failed"),
            Err(e) => tracing::error!(error = %e, "projector task failed"),
        }
    }
    if let Some(reason) = fatal.reason() {
        anyhow::bail!("stopped: {reason}");
    }
    tracing::info!("jejak stopped");
    result
}

/// Where `discard_dir` moves a directory before removing it.
fn aside(dir: &std::path::Path) -> std::path::PathBuf {
    let mut aside = dir.as_os_str().to_owned();
    aside.push(".discarded");
    aside.into()
}

/// Removes what an earlier `discard_dir` left aside, if anything.
fn remove_aside(dir: &std::path::Path) {
    let aside = aside(dir);
    if aside.exists() {
        if let Err(e) = std::fs::remove_dir_all(&aside) {
            tracing::warn!(dir = %aside.display(), error = %e, "could not remove a discarded directory");
        }
    }
}

/// Removes a directory of derived state, first moved aside (a rename,
/// atomic) so that a store opened again at its path starts empty even if
/// the removal fails or a closed handle's threads still write into it; a
/// directory left aside is removed at the next start (`remove_aside`).
fn discard_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let aside = aside(dir);
    if aside.exists() {
        std::fs::remove_dir_all(&aside).with_context(|| format!("remove {}", aside.display()))?;
    }
    if dir.exists() {
        std::fs::rename(dir, &aside).with_context(|| format!("move {} aside", dir.display()))?;
    }
    remove_aside(dir);
    Ok(())
}
