//! Failover on a three-node R3 stream: `serve --nats --replicas 3`, four
//! clients capturing receipts (each retried with its command id until
//! acknowledged), the stream leader SIGKILLed once 300 are in; measured per
//! run: when the surviving nodes name a new leader, and the longest pause
//! between acknowledgements after the kill. `--pairs` runs (default 5).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jejak_proto::v1 as p;
use jejak_testkit::{NatsCluster, Server, ServerOptions};

use crate::bench::{pq, register_master, stop, target_of, BenchOptions};

async fn one_run(run: usize) -> anyhow::Result<(Duration, Duration)> {
    let mut cluster = NatsCluster::start()?;
    let urls = cluster.urls();
    let server = tokio::task::spawn_blocking(move || {
        Server::start(ServerOptions {
            nats: Some(urls),
            extra_args: vec!["--replicas".into(), "3".into()],
            ..Default::default()
        })
    })
    .await??;
    let target = target_of(&server);
    register_master(&target).await?;
    let acks: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let (target, acks) = (target.clone(), acks.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = p::capture_service_client::CaptureServiceClient::new(jejak_client::connect(&target).await?);
            for i in 0..400 {
                let request = p::ReceiveMaterialRequest {
                    command_id: format!("f{run}-{w}-{i}"),
                    facility_id: "fac".into(),
                    lot_id: format!("F{run}-{w}-{i}"),
                    product_id: "raw".into(),
                    quantity: pq("10"),
                    owner_id: "ukm0".into(),
                    supplier_id: "sup".into(),
                    ..Default::default()
                };
                loop {
                    match c.receive_material(request.clone()).await {
                        Ok(_) => break,
                        Err(s) if matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Aborted) => {
                            tokio::time::sleep(Duration::from_millis(50)).await
                        }
                        Err(s) => anyhow::bail!("receipt {w}-{i}: {s:?}"),
                    }
                }
                acks.lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .push(Instant::now());
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    while acks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.len() < 300 {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(120), "capture too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leader = cluster
        .stream_leader("JEJAK")?
        .ok_or_else(|| anyhow::anyhow!("no stream leader"))?;
    let killed_at = Instant::now();
    cluster
        .node_mut(&leader)
        .ok_or_else(|| anyhow::anyhow!("the leader {leader} is not a node"))?
        .kill9()?;
    let elected = loop {
        match cluster.stream_leader("JEJAK")? {
            Some(l) if l != leader => break killed_at.elapsed(),
            _ if killed_at.elapsed() > Duration::from_secs(60) => anyhow::bail!("no new leader within a minute"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    for t in tasks {
        t.await??;
    }
    let acks = std::mem::take(&mut *acks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let pause = acks
        .windows(2)
        .filter(|w| w[1] > killed_at)
        .map(|w| w[1].saturating_duration_since(w[0]))
        .max()
        .unwrap_or_default();
    eprintln!("failover run {run}: new leader after {elected:.1?}, longest pause {pause:.1?}");
    stop(server).await;
    drop(cluster);
    Ok((elected, pause))
}

pub(crate) async fn failover(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let mut runs = Vec::new();
    for run in 0..opts.pairs.max(1) {
        runs.push(one_run(run).await?);
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let list = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.1}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let elected: Vec<Duration> = runs.iter().map(|r| r.0).collect();
    let pauses: Vec<Duration> = runs.iter().map(|r| r.1).collect();
    Ok(vec![
        (
            "failover: new stream leader after SIGKILL (s)".into(),
            format!(
                "{} (median {:.1})",
                list(&elected),
                median(elected.clone()).as_secs_f64()
            ),
        ),
        (
            "failover: longest pause in acknowledgements (s)".into(),
            format!("{} (median {:.1})", list(&pauses), median(pauses.clone()).as_secs_f64()),
        ),
    ])
}
