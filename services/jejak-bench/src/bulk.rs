//! Bulk capture and unary capture on both engines, in alternating pairs:
//! an embedded server, then `serve --nats` on a one-node nats-server (R1
//! stream), each started fresh on this machine. Per engine and pair: one
//! `CaptureStream` of `--bulk-events` receipts (the path `jejak import`
//! takes), then `--capture-events` unary receipts from `--clients`
//! closed-loop clients, all to one facility. Beside each rate, the CPU
//! time per event of the jejak server and of nats-server (what the path
//! costs, measured where the two cores are shared with the clients).

use std::time::{Duration, Instant};

use jejak_proto::v1 as p;
use jejak_testkit::{Nats, Server, ServerOptions};

use crate::bench::{cpu_time, register_master, stop, target_of, BenchOptions};

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

/// Microseconds of CPU per event: the jejak server's, nats-server's.
type Cost = (f64, f64);

/// One phase of one engine's run in a pair: its rate and its CPU per event.
struct Phase {
    rate: f64,
    cost: Cost,
}

/// Which phase of a run.
type PhaseOf = fn(&Run) -> &Phase;

/// One engine's run in one pair: the bulk stream, then the unary load, and
/// the server's resident memory after both.
struct Run {
    engine: Engine,
    stream: Phase,
    unary: Phase,
    resident: u64,
}

/// CPU time the server and nats-server (if any) have used so far.
fn cpu_of(server: &Server, nats: Option<&Nats>) -> (Duration, Duration) {
    let of = |pid: Option<u32>| pid.and_then(cpu_time).unwrap_or_default();
    (of(server.pid()), of(nats.and_then(|n| n.node.pid())))
}

/// Microseconds of CPU per event between two readings of `cpu_of`.
fn per_event(before: (Duration, Duration), after: (Duration, Duration), events: u64) -> Cost {
    let us = |a: Duration, b: Duration| b.saturating_sub(a).as_secs_f64() * 1e6 / events.max(1) as f64;
    (us(before.0, after.0), us(before.1, after.1))
}

pub(crate) async fn bulk(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let mut rows = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    for pair in 0..opts.pairs {
        for engine in [Engine::Embedded, Engine::Nats] {
            let dir = opts.dir.join(format!("bulk-{engine:?}-{pair}"));
            let _ = std::fs::remove_dir_all(&dir);
            let (server, nats) = start(&dir, engine).await?;
            let target = target_of(&server);
            register_master(&target).await?;
            let before = cpu_of(&server, nats.as_ref());
            let streamed = one_stream(&server, &format!("b{pair}"), opts.bulk_events).await?;
            let between = cpu_of(&server, nats.as_ref());
            let run = jejak_domain::Time::now().0;
            let (elapsed, _) = crate::bench::load_on(&target, opts.clients, opts.clients, opts.capture_events, run)?;
            let unary = opts.capture_events as f64 / elapsed.as_secs_f64();
            let after = cpu_of(&server, nats.as_ref());
            let stream_cost = per_event(before, between, opts.bulk_events);
            let unary_cost = per_event(between, after, opts.capture_events);
            let resident = crate::bench::rss_bytes(&server).unwrap_or_default();
            eprintln!(
                "bulk: pair {pair}, {engine:?}: stream {streamed:.0} events/s, unary {unary:.0} events/s; CPU per \
                 event (server + nats-server): stream {:.0} + {:.0} µs, unary {:.0} + {:.0} µs; resident {} MiB",
                stream_cost.0,
                stream_cost.1,
                unary_cost.0,
                unary_cost.1,
                resident >> 20
            );
            runs.push(Run {
                engine,
                stream: Phase {
                    rate: streamed,
                    cost: stream_cost,
                },
                unary: Phase {
                    rate: unary,
                    cost: unary_cost,
                },
                resident,
            });
            stop(server).await;
            drop(nats);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let stream_of: PhaseOf = |r| &r.stream;
    let unary_of: PhaseOf = |r| &r.unary;
    let phases = [
        (
            "stream",
            format!("one CaptureStream of {} receipts", opts.bulk_events),
            stream_of,
        ),
        (
            "unary",
            format!("unary, {} clients, one facility", opts.clients),
            unary_of,
        ),
    ];
    let of = |engine: Engine, show: &dyn Fn(&Run) -> String| {
        runs.iter()
            .filter(|r| r.engine == engine)
            .map(show)
            .collect::<Vec<_>>()
            .join(" / ")
    };
    for (_, what, phase) in &phases {
        rows.push((
            format!("bulk: {what}, embedded"),
            format!(
                "{} events/s",
                of(Engine::Embedded, &|r| format!("{:.0}", phase(r).rate))
            ),
        ));
        rows.push((
            format!("bulk: {what}, serve --nats (R1)"),
            format!("{} events/s", of(Engine::Nats, &|r| format!("{:.0}", phase(r).rate))),
        ));
    }
    for (what, _, phase) in &phases {
        rows.push((
            format!("bulk: CPU µs per event, {what}, embedded"),
            of(Engine::Embedded, &|r| format!("{:.0}", phase(r).cost.0)),
        ));
        rows.push((
            format!("bulk: CPU µs per event, {what}, serve --nats + nats-server"),
            of(Engine::Nats, &|r| {
                let (server, nats) = phase(r).cost;
                format!("{server:.0} + {nats:.0}")
            }),
        ));
    }
    for (engine, name) in [(Engine::Embedded, "embedded"), (Engine::Nats, "serve --nats")] {
        rows.push((
            format!("bulk: server resident memory after the runs, {name}"),
            format!("{} MiB", of(engine, &|r| format!("{}", r.resident >> 20))),
        ));
    }
    let ratios: Vec<String> = runs
        .chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| format!("{:.2}", p[1].unary.rate / p[0].unary.rate))
        .collect();
    rows.push((
        "bulk: unary serve --nats / embedded, per pair".into(),
        ratios.join(" / "),
    ));
    Ok(rows)
}
