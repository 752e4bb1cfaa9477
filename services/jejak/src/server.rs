//! `jejak serve` on the embedded default: opens the sled log and projection
//! in the data directory, rebuilds the write model, runs the projector, and
//! serves the capture and trace APIs with gRPC health and reflection.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use jejak_genealogy::{Projection, TraceLimits};
use jejak_log::{EventLog, LogError, SledLog};
use jejak_proto::v1::capture_service_server::CaptureServiceServer;
use jejak_proto::v1::trace_service_server::TraceServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::AdminApi;
use crate::auth::{AuthLayer, RateLimits};
use crate::resolver::Resolver;
use crate::trace::TraceApi;
use crate::writer::{CaptureApi, Writer};
use jejak_domain::TokenTable;
use jejak_proto::v1::admin_service_server::AdminServiceServer;

/// Validated configuration of the embedded server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// Load the demo data when the store is empty.
    pub demo: bool,
    pub limits: TraceLimits,
    pub access: Access,
}

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
}

impl Default for Access {
    fn default() -> Access {
        Access {
            tls: None,
            rates: RateLimits::default(),
            admin_token_file: None,
            request_timeout: std::time::Duration::from_secs(30),
            public_base: None,
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
    ) -> anyhow::Result<tonic::transport::Server<tower_layer::Stack<AuthLayer, tower_layer::Identity>>> {
        let mut b = tonic::transport::Server::builder()
            .timeout(self.request_timeout)
            .accept_http1(true);
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
        Ok(b.layer(AuthLayer::new(tokens, self.rates)))
    }

    /// The URL callers use.
    fn url(&self, addr: std::net::SocketAddr) -> String {
        match self.tls {
            Some(_) => format!("https://{addr}"),
            None => format!("http://{addr}"),
        }
    }
}

/// Opens (and loads) the projection stored in `dir`.
async fn open_projection(dir: &std::path::Path) -> anyhow::Result<Arc<Projection>> {
    let open_dir = dir.to_path_buf();
    let projection = tokio::task::spawn_blocking(move || Projection::open(&open_dir))
        .await
        .context("projection open task")?
        .with_context(|| format!("open the projection in {}", dir.display()))?;
    Ok(Arc::new(projection))
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

/// Opens the log (checking the chains from the last verified point on) and
/// the projection, brings the projection up to the log, and returns the
/// writer over both.
pub async fn open_writer(data_dir: &std::path::Path) -> anyhow::Result<Arc<Writer<SledLog>>> {
    let log_dir = data_dir.join("log");
    let dir = log_dir.clone();
    let log = tokio::task::spawn_blocking(move || SledLog::open(&dir))
        .await
        .context("open the event log task")?
        .map_err(|e| open_log_error(e, data_dir))?;
    let check = log.start_check();
    tracing::info!(
        from = check.from,
        envelopes = check.envelopes,
        heads = check.heads,
        indexed = check.indexed,
        "event log chains checked from the last verified point, event-id index rebuilt"
    );
    let proj_dir = data_dir.join("genealogy");
    let projection = open_projection(&proj_dir).await?;
    let durable = log.durable_position();
    if projection.position() > durable {
        anyhow::bail!(
            "the projection in {} is at log position {} but the log ends at {durable}; run `jejak rebuild` to recreate it from the log",
            proj_dir.display(),
            projection.position(),
        );
    }
    let (catch_log, catch_projection) = (log.clone(), projection.clone());
    tokio::task::spawn_blocking(move || {
        crate::projector::catch_up(&catch_log, &catch_projection, durable, &mut |_| {})
    })
    .await
    .context("projection catch-up task")??;
    Ok(Arc::new(Writer::new(log, projection)))
}

/// Why the log in `data_dir` cannot be served. A changed or missing
/// envelope is a refusal naming the chain, sequence and position, with what
/// the operator can do about it.
fn open_log_error(e: LogError, data_dir: &std::path::Path) -> anyhow::Error {
    let log_dir = data_dir.join("log");
    match e {
        LogError::Corrupt { .. } => anyhow::anyhow!(
            "refusing to serve the event log in {}: {e}; restore the data directory from a backup (`jejak verify --data-dir {}` walks every chain)",
            log_dir.display(),
            data_dir.display()
        ),
        e => anyhow::Error::new(e).context(format!("open the event log in {}", log_dir.display())),
    }
}

/// Serves until `shutdown` resolves; a clean shutdown flushes the log and
/// the projection.
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("create the data directory {}", config.data_dir.display()))?;
    let writer = open_writer(&config.data_dir).await?;
    let log = writer.log().clone();
    let projection = writer.projection().clone();
    let status = projection.status();
    tracing::info!(
        lots = status.lots,
        events = status.events,
        position = status.position,
        "genealogy ready"
    );

    let cancel = CancellationToken::new();
    let persister = {
        let (writer, cancel) = (writer.clone(), cancel.clone());
        tokio::spawn(async move { writer.run_persister(cancel).await })
    };

    if config.demo && status.events == 0 {
        let n = crate::demo::load(&*writer).await.context("load the demo data")?;
        tracing::info!(commands = n, "demo data loaded");
    }
    let tokens = projection.read().tokens();
    let token_file = config
        .access
        .admin_token_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("admin.token"));
    crate::auth::bootstrap_admin(&*writer, &tokens, Some(&token_file)).await?;

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<CaptureServiceServer<CaptureApi<SledLog>>>()
        .await;
    health_reporter
        .set_serving::<TraceServiceServer<TraceApi<SledLog>>>()
        .await;
    let (reflection_v1, reflection_v1alpha) = reflection()?;

    let addr = listener.local_addr().context("read the listen address")?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "jejak serving");
    // On stdout for people and for harnesses that bind port 0.
    println!("jejak listening on {}", config.access.url(addr));
    if config.demo {
        // Listening on every address: loopback is the one to open here.
        let mut local = addr;
        if local.ip().is_unspecified() {
            local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let base = config
            .access
            .public_base
            .clone()
            .unwrap_or_else(|| config.access.url(local));
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
                m.projector_lag
                    .set(i64::try_from(durable - applied).unwrap_or(i64::MAX));
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                }
            }
        });
    }
    let result = config
        .access
        .builder(addr, tokens.clone())?
        .add_routes(tonic::service::Routes::from(
            crate::metrics::http_routes().merge(
                Resolver::new(
                    projection.clone(),
                    log.clone(),
                    config.access.public_base.clone(),
                    config.access.tls.is_some(),
                )
                .routes(),
            ),
        ))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(AdminServiceServer::new(AdminApi::new(writer.clone(), tokens)))
        .add_service(
            CaptureServiceServer::new(CaptureApi::new(writer.clone()))
                .max_decoding_message_size(jejak_proto::MAX_MESSAGE_SIZE),
        )
        .add_service(
            TraceServiceServer::new(TraceApi::new(projection.clone(), log.clone(), config.limits))
                .max_decoding_message_size(jejak_proto::MAX_MESSAGE_SIZE),
        )
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
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

/// Opens the log of a stopped server, for the offline tools.
fn open_log_offline(data_dir: &std::path::Path) -> anyhow::Result<SledLog> {
    let log_dir = data_dir.join("log");
    if !log_dir.exists() {
        anyhow::bail!("no event log in {}; is --data-dir right?", log_dir.display());
    }
    SledLog::open(&log_dir).with_context(|| {
        format!(
            "open the event log in {} (is a server still running on it?)",
            log_dir.display()
        )
    })
}

/// `jejak rebuild`: recreates the projection from the log, with a progress
/// bar. The server must be stopped (sled holds a lock on both stores).
pub async fn rebuild(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let log = open_log_offline(data_dir)?;
    let proj_dir = data_dir.join("genealogy");
    let fresh = data_dir.join("genealogy.rebuild");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).with_context(|| format!("remove {}", fresh.display()))?;
    }
    let upto = log.durable_position();
    let bar = indicatif::ProgressBar::new(upto);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} rebuilding [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let b = bar.clone();
    let fresh_dir = fresh.clone();
    let started = std::time::Instant::now();
    let position = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let projection = Projection::open(&fresh_dir)?;
        let pos = crate::projector::catch_up(&log, &projection, upto, &mut |n| b.inc(n))?;
        projection.flush()?;
        Ok(pos)
    })
    .await
    .context("rebuild task")??;
    bar.finish();
    // Swap in the rebuilt projection only once it is complete.
    if proj_dir.exists() {
        std::fs::remove_dir_all(&proj_dir)
            .with_context(|| format!("remove the old projection {}", proj_dir.display()))?;
    }
    std::fs::rename(&fresh, &proj_dir)
        .with_context(|| format!("move the rebuilt projection to {}", proj_dir.display()))?;
    println!(
        "projection rebuilt to log position {position} in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

/// `jejak verify`: walks every hash chain of the log and prints the
/// projection's position and digest (equal digests: equal projections).
pub async fn verify(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let proj_dir = data_dir.join("genealogy");
    // A projector on NATS keeps only its projection; the stream holds the log.
    let log = match data_dir.join("log").exists() || !proj_dir.exists() {
        true => Some(open_log_offline(data_dir)?),
        false => None,
    };
    let (checked, position, digest) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Option<u64>, u64, [u8; 32])> {
            let checked = match log {
                Some(log) => Some(log.verify().context("verify the hash chains")?),
                None => None,
            };
            let projection = Projection::open(&proj_dir)
                .with_context(|| format!("open the projection in {}", proj_dir.display()))?;
            Ok((checked, projection.position(), projection.digest()?))
        })
        .await
        .context("verify task")??;
    match checked {
        Some(n) => println!("chains: {n} events verified"),
        None => println!("chains: no event log here (a projector's store; the stream holds the log)"),
    }
    println!("projection position: {position}");
    println!("projection digest: {}", hex::encode(digest));
    Ok(())
}

/// What a process runs against NATS JetStream: the capture service, a
/// projector (with its data directory), or both (`jejak serve --nats`).
#[derive(Debug, Clone)]
pub struct NatsServeConfig {
    pub nats: jejak_log::JetStreamConfig,
    /// How long to keep trying to reach NATS at start.
    pub connect_wait: std::time::Duration,
    pub capture: bool,
    /// The projector's data directory, when this process runs one.
    pub projector: Option<PathBuf>,
    pub demo: bool,
    pub limits: TraceLimits,
    /// Health turns NOT_SERVING when the projector is further behind.
    pub max_lag: u64,
    pub access: Access,
}

/// Serves the capture and/or trace APIs over JetStream until `shutdown`.
pub async fn run_nats(
    config: NatsServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use crate::distributed::{run_projector, DistributedWriter, StreamView};
    use jejak_log::{ChainLog, JetStreamLog};

    let log = JetStreamLog::connect(config.nats.clone(), config.connect_wait)
        .await
        .context("set up the JetStream event log")?;
    tracing::info!(
        server = %log.server_version(),
        stream = %config.nats.stream,
        replicas = config.nats.replicas,
        "JetStream stream ready"
    );
    let cancel = CancellationToken::new();
    let fatal = crate::distributed::Fatal::default();
    let writer = match config.capture {
        true => Some(DistributedWriter::start(log.clone(), cancel.clone(), fatal.clone()).await?),
        false => None,
    };
    let mut projector = None;
    if let Some(dir) = &config.projector {
        std::fs::create_dir_all(dir).with_context(|| format!("create the data directory {}", dir.display()))?;
        let projection = open_projection(&dir.join("genealogy")).await?;
        tracing::info!(
            position = projection.position(),
            "projection opened; following the stream"
        );
        let view = StreamView::new(log.clone());
        let running = run_projector(log.clone(), projection.clone(), view.clone(), cancel.clone());
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
    }
    if config.demo {
        if let Some(w) = &writer {
            if log.last_position().await? == 0 {
                let n = crate::demo::load(&**w).await.context("load the demo data")?;
                tracing::info!(commands = n, "demo data loaded");
            }
        }
    }

    let (health_reporter, health) = tonic_health::server::health_reporter();
    {
        // NOT_SERVING while NATS is unreachable or the projector lags too far.
        let client = log.client().clone();
        let lagging = projector.as_ref().map(|(p, v, _)| (p.clone(), v.clone()));
        let (capture, max_lag, cancel) = (writer.is_some(), config.max_lag, cancel.clone());
        let reporter = health_reporter.clone();
        let retries_log = log.clone();
        tokio::spawn(async move {
            let m = crate::metrics::metrics();
            let mut retries_seen = 0;
            loop {
                let connected = client.connection_state() == async_nats::connection::State::Connected;
                m.nats_connected.set(i64::from(connected));
                let retries = retries_log.publish_retries();
                m.append_retries.inc_by(retries.saturating_sub(retries_seen));
                retries_seen = retries;
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
                    let end = crate::trace::TraceLog::log_position(view);
                    let lag = end.saturating_sub(projection.position());
                    m.stream_position.set(i64::try_from(end).unwrap_or(i64::MAX));
                    m.projector_position
                        .set(i64::try_from(projection.position()).unwrap_or(i64::MAX));
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
        crate::auth::bootstrap_admin(&**w, &tokens, config.access.admin_token_file.as_deref()).await?;
    }
    let (reflection_v1, reflection_v1alpha) = reflection()?;
    let addr = listener.local_addr().context("read the listen address")?;
    tracing::info!(%addr, capture = config.capture, projector = projector.is_some(), "jejak serving on NATS");
    println!("jejak listening on {}", config.access.url(addr));
    let admin_api = writer
        .clone()
        .map(|w| AdminServiceServer::new(AdminApi::new(w, tokens.clone())));
    let capture_api = writer.clone().map(|w| {
        CaptureServiceServer::new(CaptureApi::new(w)).max_decoding_message_size(jejak_proto::MAX_MESSAGE_SIZE)
    });
    let trace_api = projector.as_ref().map(|(p, v, _)| {
        TraceServiceServer::new(TraceApi::new(p.clone(), v.clone(), config.limits))
            .max_decoding_message_size(jejak_proto::MAX_MESSAGE_SIZE)
    });
    let mut http = crate::metrics::http_routes();
    if let Some((p, v, _)) = &projector {
        http = http.merge(
            Resolver::new(
                p.clone(),
                v.clone(),
                config.access.public_base.clone(),
                config.access.tls.is_some(),
            )
            .routes(),
        );
    }
    let result = config
        .access
        .builder(addr, tokens)?
        .add_routes(tonic::service::Routes::from(http))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_optional_service(admin_api)
        .add_optional_service(capture_api)
        .add_optional_service(trace_api)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
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
