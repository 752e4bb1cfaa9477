//! The blending benchmark: a silo blended `steps` times (each step mixes the
//! previous blend with a new receipt, as silo blending does), its last lot
//! packed and labelled; then the public provenance page of that label, alone
//! and under load from eight clients fetching it continuously, while health
//! checks and captures are timed beside them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jejak_client::Target;
use jejak_proto::v1 as p;
use jejak_server::demo::ids::PREMIUM_RICE_GTIN;

use crate::bench::{
    labelled_master_lines, micros, percentile, pq, start_server, stop, target_of, BenchOptions, HealthCheckRequest,
};

/// Captures the chain over gRPC; returns the label path of its last lot.
async fn build_chain(target: &Target, steps: usize) -> anyhow::Result<String> {
    let mut c = p::capture_service_client::CaptureServiceClient::new(jejak_client::connect(target).await?);
    for line in labelled_master_lines() {
        let kind = jejak_proto::json::parse_command(&line).map_err(anyhow::Error::msg)?;
        jejak_client::import::send(&mut c, kind).await?;
    }
    let receive = |i: usize| p::ReceiveMaterialRequest {
        command_id: format!("blend-r{i}"),
        facility_id: "fac".into(),
        lot_id: format!("R{i}"),
        product_id: "raw".into(),
        // The first receipt starts the silo as a blend would.
        quantity: pq(if i == 0 { "200" } else { "100" }),
        owner_id: format!("ukm{}", i % 3),
        supplier_id: "sup".into(),
        ..Default::default()
    };
    c.receive_material(receive(0)).await?;
    let mut prev = "R0".to_string();
    for i in 1..=steps {
        c.receive_material(receive(i)).await?;
        let out = format!("BL{i}");
        c.process_lots(p::ProcessLotsRequest {
            command_id: format!("blend-{i}"),
            facility_id: "fac".into(),
            process_step: "pencampuran".into(),
            // Quantities that differ from step to step, as real blends do:
            // exact shares then have denominators that grow with the chain.
            inputs: vec![
                p::LotInput {
                    lot_id: prev.clone(),
                    quantity: pq(&(187 + i % 13).to_string()),
                },
                p::LotInput {
                    lot_id: format!("R{i}"),
                    quantity: pq(&(89 + i % 11).to_string()),
                },
            ],
            outputs: vec![p::LotOutput {
                lot_id: out.clone(),
                product_id: if i == steps { "bag" } else { "raw" }.into(),
                quantity: pq("200"),
                owner_id: "ukm0".into(),
            }],
            ..Default::default()
        })
        .await?;
        prev = out;
    }
    c.pack_lot(p::PackLotRequest {
        command_id: "blend-pack".into(),
        facility_id: "fac".into(),
        lot_id: prev.clone(),
        gtin: PREMIUM_RICE_GTIN.into(),
        packages: vec![p::Package {
            serial: "BLEND-0001".into(),
            quantity: pq("5"),
        }],
        ..Default::default()
    })
    .await?;
    Ok(format!("/01/{PREMIUM_RICE_GTIN}/10/{prev}/21/BLEND-0001"))
}

async fn page(authority: &str, path: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let reply = jejak_testkit::http_request(authority, "GET", path, &[("accept", "text/html")], b"").await?;
    anyhow::ensure!(reply.status == 200, "{path}: HTTP {}", reply.status);
    Ok(t.elapsed())
}

fn p50_p99(mut lat: Vec<Duration>) -> String {
    lat.sort();
    format!(
        "{} / {} ({} requests)",
        micros(percentile(&lat, 0.5)),
        micros(percentile(&lat, 0.99)),
        lat.len()
    )
}

pub(crate) async fn blending(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let dir = opts.dir.join("blending");
    let _ = std::fs::remove_dir_all(&dir);
    let server = start_server(&dir, false).await?;
    let target = target_of(&server);
    let steps = opts.blend_steps;
    let started = Instant::now();
    let path = build_chain(&target, steps).await?;
    let built = started.elapsed();
    let authority = server.authority().to_string();
    // The page alone, one request at a time (the first one warms nothing:
    // nothing is cached between requests).
    let mut alone = Vec::with_capacity(opts.page_requests);
    for _ in 0..opts.page_requests {
        alone.push(page(&authority, &path).await?);
    }
    // Exact shares, for an administrator: every fraction over the chain.
    let mut admin = crate::bench::LoadClient::connect(&target).await?;
    let last = format!("BL{steps}");
    let mut exact = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        admin
            .unary(
                "/jejak.v1.TraceService/OriginShares",
                &p::OriginSharesRequest {
                    target: Some(p::Target {
                        kind: Some(p::target::Kind::LotId(last.clone())),
                    }),
                },
            )
            .await?;
        exact.push(t.elapsed());
    }
    // Eight clients fetching it continuously; health checks and captures
    // timed meanwhile, each on a connection of its own.
    let stop_load = Arc::new(AtomicBool::new(false));
    let mut loaders = tokio::task::JoinSet::new();
    // Timing starts once every loader has had its first page.
    let (started_tx, mut started_rx) = tokio::sync::mpsc::channel::<()>(8);
    for _ in 0..8 {
        let (authority, path, stop_load) = (authority.clone(), path.clone(), stop_load.clone());
        let started = started_tx.clone();
        loaders.spawn(async move {
            let mut lat = vec![page(&authority, &path).await?];
            let _ = started.send(()).await;
            while !stop_load.load(Ordering::Relaxed) {
                lat.push(page(&authority, &path).await?);
            }
            anyhow::Ok(lat)
        });
    }
    drop(started_tx);
    for _ in 0..8 {
        anyhow::ensure!(
            started_rx.recv().await.is_some(),
            "a page loader failed before its first page"
        );
    }
    let mut health = crate::bench::LoadClient::connect(&Target::new(server.url.clone())).await?;
    let mut capture = crate::bench::LoadClient::connect(&target).await?;
    let (mut health_lat, mut capture_lat) = (Vec::new(), Vec::new());
    for i in 0..opts.page_requests {
        let t = Instant::now();
        health
            .unary(
                "/grpc.health.v1.Health/Check",
                &HealthCheckRequest { service: String::new() },
            )
            .await?;
        health_lat.push(t.elapsed());
        let t = Instant::now();
        capture
            .unary(
                "/jejak.v1.CaptureService/ReceiveMaterial",
                &p::ReceiveMaterialRequest {
                    command_id: format!("blend-load-{i}"),
                    facility_id: "fac".into(),
                    lot_id: format!("LOAD-{i}"),
                    product_id: "raw".into(),
                    quantity: pq("10"),
                    owner_id: "ukm1".into(),
                    supplier_id: "sup".into(),
                    ..Default::default()
                },
            )
            .await?;
        capture_lat.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop_load.store(true, Ordering::Relaxed);
    let mut loaded = Vec::new();
    while let Some(done) = loaders.join_next().await {
        loaded.extend(done??);
    }
    stop(server).await;
    Ok(vec![
        (
            format!("blending chain of {steps} steps captured ({} commands)", 2 * steps + 2),
            format!("{built:.2?}"),
        ),
        ("its public page, one client, p50 / p99".into(), p50_p99(alone)),
        (
            "exact origin shares of its last lot (administrator), p50 / p99".into(),
            p50_p99(exact),
        ),
        (
            "its public page, 8 clients continuously, p50 / p99".into(),
            p50_p99(loaded),
        ),
        ("health check during that load, p50 / p99".into(), p50_p99(health_lat)),
        ("capture during that load, p50 / p99".into(), p50_p99(capture_lat)),
    ])
}
