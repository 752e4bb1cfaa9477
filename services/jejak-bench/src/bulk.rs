//! Bulk capture and unary capture on both engines, in alternating pairs:
//! an embedded server, then `serve --nats` on a one-node nats-server (R1
//! stream), each started fresh on this machine. Per engine and pair: one
//! `CaptureStream` of `--bulk-events` receipts (the path `jejak import`
//! takes), then `--capture-events` unary receipts from `--clients`
//! closed-loop clients, all to one facility.

use std::time::{Duration, Instant};

use jejak_proto::v1 as p;
use jejak_testkit::{Nats, Server, ServerOptions};

use crate::bench::{register_master, stop, target_of, BenchOptions};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    Embedded,
    Nats,
}

async fn start(dir: &std::path::Path, engine: Engine) -> anyhow::Result<(Server, Option<Nats>)> {
    let nats = match engine {
        Engine::Embedded => None,
        Engine::Nats => Some(Nats::start()?),
    };
    let opts = ServerOptions {
        data_dir: Some(dir.to_path_buf()),
        nats: nats.as_ref().map(Nats::url),
        rate_limits: Some((1_000_000.0, 1_000_000.0)),
        start_timeout: Some(Duration::from_secs(600)),
        ..ServerOptions::default()
    };
    let server = tokio::task::spawn_blocking(move || Server::start(opts)).await??;
    Ok((server, nats))
}

fn receipt(run: &str, i: u64) -> p::command::Kind {
    p::command::Kind::ReceiveMaterial(crate::bench::receipt(format!("{run}-{i}"), format!("{run}-L{i}"), i))
}

/// One stream of `n` receipts: events per second.
async fn one_stream(server: &Server, run: &str, n: u64) -> anyhow::Result<f64> {
    let target = target_of(server);
    let mut c = p::capture_service_client::CaptureServiceClient::new(jejak_client::connect(&target).await?);
    let commands: Vec<p::command::Kind> = (0..n).map(|i| receipt(run, i)).collect();
    let started = Instant::now();
    let answers = jejak_client::import::capture_all(&mut c, commands, &indicatif::ProgressBar::hidden()).await;
    let took = started.elapsed();
    let refused = answers.iter().filter(|a| a.is_err()).count();
    anyhow::ensure!(refused == 0, "{refused} of the bulk stream's receipts were refused");
    Ok(n as f64 / took.as_secs_f64())
}

pub(crate) async fn bulk(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let mut rows = Vec::new();
    let mut rates: Vec<(Engine, f64, f64)> = Vec::new();
    for pair in 0..opts.pairs {
        for engine in [Engine::Embedded, Engine::Nats] {
            let dir = opts.dir.join(format!("bulk-{engine:?}-{pair}"));
            let _ = std::fs::remove_dir_all(&dir);
            let (server, nats) = start(&dir, engine).await?;
            let target = target_of(&server);
            register_master(&target).await?;
            let streamed = one_stream(&server, &format!("b{pair}"), opts.bulk_events).await?;
            let run = jejak_domain::Time::now().0;
            let (elapsed, _) = crate::bench::load_on(&target, opts.clients, opts.clients, opts.capture_events, run)?;
            let unary = opts.capture_events as f64 / elapsed.as_secs_f64();
            eprintln!("bulk: pair {pair}, {engine:?}: stream {streamed:.0} events/s, unary {unary:.0} events/s");
            rates.push((engine, streamed, unary));
            stop(server).await;
            drop(nats);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let list = |engine: Engine, f: fn(&(Engine, f64, f64)) -> f64| {
        rates
            .iter()
            .filter(|r| r.0 == engine)
            .map(|r| format!("{:.0}", f(r)))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    rows.push((
        format!("bulk: one CaptureStream of {} receipts, embedded", opts.bulk_events),
        format!("{} events/s", list(Engine::Embedded, |r| r.1)),
    ));
    rows.push((
        format!(
            "bulk: one CaptureStream of {} receipts, serve --nats (R1)",
            opts.bulk_events
        ),
        format!("{} events/s", list(Engine::Nats, |r| r.1)),
    ));
    rows.push((
        format!("bulk: unary, {} clients, one facility, embedded", opts.clients),
        format!("{} events/s", list(Engine::Embedded, |r| r.2)),
    ));
    rows.push((
        format!("bulk: unary, {} clients, one facility, serve --nats (R1)", opts.clients),
        format!("{} events/s", list(Engine::Nats, |r| r.2)),
    ));
    let ratios: Vec<String> = rates
        .chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| format!("{:.2}", p[1].2 / p[0].2))
        .collect();
    rows.push((
        "bulk: unary serve --nats / embedded, per pair".into(),
        ratios.join(" / "),
    ));
    Ok(rows)
}
