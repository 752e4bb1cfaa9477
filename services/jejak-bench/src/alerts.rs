//! Alert fan-out: a lot shipped to 10,000 consignees, each with a webhook
//! of its own to a receiver on loopback, is recalled; timed are the alert
//! (first on `WatchAlerts`) and the delivery of all 10,000 webhooks.

use std::time::{Duration, Instant};

use anyhow::Context;
use jejak_proto::v1 as p;
use jejak_testkit::{Server, ServerOptions};

use crate::bench::{pq, stop, BenchOptions};

const CONSIGNEES: usize = 10_000;

/// Runs `each(i)` for i in 0..n on 32 tasks.
async fn in_parallel<F, Fut>(n: usize, each: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let mut tasks = Vec::new();
    for t in 0..32 {
        let each = each.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..n).step_by(32) {
                each(i).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

pub(crate) async fn alerts(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let dir = opts.dir.join("alerts");
    let _ = std::fs::remove_dir_all(&dir);
    let server = {
        let opts = ServerOptions {
            data_dir: Some(dir.clone()),
            rate_limits: Some((1_000_000.0, 1_000_000.0)),
            start_timeout: Some(Duration::from_secs(600)),
            ..ServerOptions::default()
        };
        tokio::task::spawn_blocking(move || Server::start(opts)).await??
    };
    let mut capture = server.capture().await?;
    let report = jejak_client::import::import(&mut capture, &crate::bench::master_data_lines().join("\n")).await;
    anyhow::ensure!(report.failed.is_empty(), "master data: {:?}", report.failed);
    let c = capture.clone();
    in_parallel(CONSIGNEES, move |i| {
        let mut c = c.clone();
        async move {
            c.register_party(p::RegisterPartyRequest {
                command_id: format!("cus-{i}"),
                party: Some(p::Party {
                    id: format!("cus-{i}"),
                    name: format!("Pembeli {i}"),
                    roles: vec![p::PartyRole::Customer as i32],
                    ..Default::default()
                }),
            })
            .await?;
            Ok(())
        }
    })
    .await?;
    capture
        .receive_material(p::ReceiveMaterialRequest {
            command_id: "rc".into(),
            facility_id: "fac".into(),
            lot_id: "RC".into(),
            product_id: "raw".into(),
            quantity: pq("20000"),
            owner_id: "ukm0".into(),
            supplier_id: "sup".into(),
            ..Default::default()
        })
        .await?;
    let c = capture.clone();
    in_parallel(CONSIGNEES, move |i| {
        let mut c = c.clone();
        async move {
            c.ship_lot(p::ShipLotRequest {
                command_id: format!("ship-{i}"),
                facility_id: "fac".into(),
                lot_id: "RC".into(),
                quantity: pq("1"),
                consignee_id: format!("cus-{i}"),
                document: format!("SJ-{i}"),
                ..Default::default()
            })
            .await?;
            Ok(())
        }
    })
    .await?;
    let receiver = jejak_testkit::receiver::Receiver::start(0).await?;
    let port = receiver.port;
    let started = Instant::now();
    let admin = server.admin().await?;
    in_parallel(CONSIGNEES, move |i| {
        let mut admin = admin.clone();
        async move {
            admin
                .create_webhook(p::CreateWebhookRequest {
                    url: format!("http://127.0.0.1:{port}/hooks/{i}"),
                    party_id: format!("cus-{i}"),
                    ..Default::default()
                })
                .await?;
            Ok(())
        }
    })
    .await?;
    let registered = started.elapsed();
    let position = server.status().await?.log_position;
    let mut watch = server
        .trace()
        .await?
        .watch_alerts(p::WatchAlertsRequest {
            after_position: position,
        })
        .await?
        .into_inner();
    let recalled = Instant::now();
    capture
        .change_lot_status(p::ChangeLotStatusRequest {
            command_id: "recall-rc".into(),
            facility_id: "fac".into(),
            lot_id: "RC".into(),
            status: p::LotStatus::Recalled as i32,
            reason: "bench recall".into(),
            ..Default::default()
        })
        .await?;
    let alert = watch.message().await?.context("the recall's alert")?;
    let raised = recalled.elapsed();
    let shipments = serde_json::from_str::<serde_json::Value>(&alert.json)?["data"]["shipments"]
        .as_array()
        .map_or(0, Vec::len);
    jejak_testkit::wait_until(Instant::now() + Duration::from_secs(1800), || {
        let done = receiver.count() >= CONSIGNEES;
        async move { Ok(done.then_some(())) }
    })
    .await?;
    let all = recalled.elapsed();
    stop(server).await;
    Ok(vec![
        (
            format!(
                "alert fan-out: a recall reaching {shipments} shipments to {CONSIGNEES} consignees, from capture to the alert on WatchAlerts"
            ),
            format!("{:.1} ms", raised.as_secs_f64() * 1000.0),
        ),
        (
            format!(
                "alert fan-out: the same recall delivered to all {CONSIGNEES} consignees' webhooks (signed, one connection each; {CONSIGNEES} webhooks registered in {registered:.1?})"
            ),
            format!(
                "{all:.2?} ({:.0} deliveries/s)",
                CONSIGNEES as f64 / all.as_secs_f64()
            ),
        ),
    ])
}
