//! What the transparency log's tree costs captures: alternating pairs of
//! whole capture runs (`--capture-events` unary receipts from `--clients`
//! closed-loop clients, durable acknowledgements) against a fresh embedded
//! server, first with its tree held (`jejak serve --hold-tree`: nothing
//! extends it while it serves), then following the log as it always does.
//! Envelopes carry their commitment secrets either way. For the following
//! run it also times how long after the last acknowledgement a signed
//! checkpoint covers every event: the tree's work is done, not put off.

use std::time::{Duration, Instant};

use jejak_testkit::{Server, ServerOptions};

use crate::bench::{load_on, register_master, stop, target_of, BenchOptions};

async fn start(dir: &std::path::Path, hold: bool) -> anyhow::Result<Server> {
    let opts = ServerOptions {
        data_dir: Some(dir.to_path_buf()),
        rate_limits: Some((1_000_000.0, 1_000_000.0)),
        extra_args: if hold { vec!["--hold-tree".into()] } else { Vec::new() },
        ..ServerOptions::default()
    };
    tokio::task::spawn_blocking(move || Server::start(opts)).await?
}

/// The size of the server's latest signed checkpoint (0 before the first).
async fn checkpoint_size(server: &Server) -> anyhow::Result<u64> {
    let reply = jejak_testkit::http_request(server.authority(), "GET", "/log/checkpoint", &[], b"").await?;
    if reply.status == 404 {
        return Ok(0);
    }
    anyhow::ensure!(reply.status == 200, "GET /log/checkpoint: {}", reply.text());
    let checkpoint = jejak_verify::note::Note::parse(&reply.text())
        .and_then(|note| jejak_verify::checkpoint::Checkpoint::parse(&note.text))
        .map_err(|e| anyhow::anyhow!("the checkpoint does not parse: {e}"))?;
    Ok(checkpoint.size)
}

/// One capture run: events per second and, when the tree follows, how long
/// after the run a checkpoint covered the whole log.
async fn run(opts: &BenchOptions, dir: &std::path::Path, hold: bool) -> anyhow::Result<(f64, Option<Duration>)> {
    let _ = std::fs::remove_dir_all(dir);
    let server = start(dir, hold).await?;
    let target = target_of(&server);
    register_master(&target).await?;
    let total = opts.capture_events;
    let connections = opts.connections.clamp(1, opts.clients.max(1));
    let (elapsed, _) = load_on(&target, opts.clients, connections, total, jejak_domain::Time::now().0)?;
    let ended = Instant::now();
    let covered = if hold {
        None
    } else {
        // At least the master data and the receipts (the log also holds
        // what the server recorded at its start: checked below).
        let least = total + crate::bench::master_data_lines().len() as u64;
        let size = jejak_testkit::wait_until(ended + Duration::from_secs(60), || async {
            let size = checkpoint_size(&server).await?;
            Ok((size >= least).then_some(size))
        })
        .await?;
        Some((ended.elapsed(), size))
    };
    stop(server).await;
    if let Some((_, size)) = covered {
        let log = jejak_log::SledLog::open(&dir.join("log"))?;
        let last = jejak_log::EventLog::durable_position(&log);
        anyhow::ensure!(
            size == last,
            "the checkpoint waited for covers {size} events, the log holds {last}"
        );
    }
    let covered = covered.map(|(took, _)| took);
    Ok((total as f64 / elapsed.as_secs_f64(), covered))
}

pub(crate) async fn tree_cost(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    let (mut held, mut following, mut covered) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..opts.pairs.max(1) {
        let (a, _) = run(opts, &opts.dir.join("tree-cost-held"), true).await?;
        let (b, c) = run(opts, &opts.dir.join("tree-cost-following"), false).await?;
        let c = c.unwrap_or_default();
        eprintln!(
            "tree-cost pair {}: held {a:.0} events/s, following {b:.0} events/s ({:.3}), checkpoint covered the log {:.0} ms after the run",
            pair + 1,
            b / a,
            c.as_secs_f64() * 1e3
        );
        ratios.push(b / a);
        held.push(a);
        following.push(b);
        covered.push(c);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let pairs = ratios.len();
    let list = ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" ");
    rows.push((
        format!("tree-cost: capture, tree held vs following, median of {pairs} pairs"),
        format!("{:.0} vs {:.0} events/s", median(&mut held), median(&mut following)),
    ));
    rows.push((
        "tree-cost: following / held, median of the pairs".into(),
        format!("{:.3} ({list})", median(&mut ratios)),
    ));
    covered.sort();
    rows.push((
        "tree-cost: a checkpoint covers the log, after the run (median, max)".into(),
        format!(
            "{:.0} ms, {:.0} ms",
            covered[covered.len() / 2].as_secs_f64() * 1e3,
            covered[covered.len() - 1].as_secs_f64() * 1e3
        ),
    ));
    Ok(rows)
}
