//! `jejak serve` on the embedded default: opens the sled log and projection
//! in the data directory, rebuilds the write model, runs the projector, and
//! serves the capture and trace APIs with gRPC health and reflection.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use jejak_genealogy::{Projection, TraceLimits};
use jejak_log::{EventLog, SledLog};
use jejak_proto::v1::capture_service_server::CaptureServiceServer;
use jejak_proto::v1::trace_service_server::TraceServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::trace::TraceApi;
use crate::writer::{CaptureApi, Writer};

/// Validated configuration of the embedded server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// Load the demo data when the store is empty.
    pub demo: bool,
    pub limits: TraceLimits,
}

/// Opens the log, and rebuilds the write model from it.
/// Opens the log (checking every chain) and the projection, brings the
/// projection up to the log, and returns the writer over both.
pub async fn open_writer(data_dir: &std::path::Path) -> anyhow::Result<Arc<Writer<SledLog>>> {
    let log_dir = data_dir.join("log");
    let dir = log_dir.clone();
    let log = tokio::task::spawn_blocking(move || SledLog::open(&dir))
        .await
        .context("open the event log task")?
        .with_context(|| format!("open the event log in {}", log_dir.display()))?;
    let proj_dir = data_dir.join("genealogy");
    let dir = proj_dir.clone();
    let projection = Arc::new(
        tokio::task::spawn_blocking(move || Projection::open(&dir))
            .await
            .context("projection open task")?
            .with_context(|| format!("open the projection in {}", proj_dir.display()))?,
    );
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
        let n = crate::demo::load(&writer).await.context("load the demo data")?;
        tracing::info!(commands = n, "demo data loaded");
    }

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<CaptureServiceServer<CaptureApi<SledLog>>>()
        .await;
    health_reporter
        .set_serving::<TraceServiceServer<TraceApi<SledLog>>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(jejak_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("build the reflection service")?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(jejak_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("build the reflection service")?;

    let addr = listener.local_addr().context("read the listen address")?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "jejak serving");
    // On stdout for people and for harnesses that bind port 0.
    println!("jejak listening on http://{addr}");
    let result = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(CaptureServiceServer::new(CaptureApi::new(writer.clone())))
        .add_service(TraceServiceServer::new(TraceApi::new(
            projection.clone(),
            log.clone(),
            config.limits,
        )))
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
    let log = open_log_offline(data_dir)?;
    let proj_dir = data_dir.join("genealogy");
    let (checked, position, digest) = tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, u64, [u8; 32])> {
        let checked = log.verify().context("verify the hash chains")?;
        let projection =
            Projection::open(&proj_dir).with_context(|| format!("open the projection in {}", proj_dir.display()))?;
        Ok((checked, projection.position(), projection.digest()?))
    })
    .await
    .context("verify task")??;
    println!("chains: {checked} events verified");
    println!("projection position: {position}");
    println!("projection digest: {}", hex::encode(digest));
    Ok(())
}
