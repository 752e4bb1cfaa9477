//! `jejak-bench`: the benchmarks behind BENCHMARKS.md, against the release
//! `jejak` binary built beside it (`cargo build --release -p jejak -p
//! jejak-bench`), started through the test kit's server handle.

mod alerts;
mod bench;
mod blending;
mod bulk;
mod catchup;
mod connections;
mod epcis;
mod failover;
mod open;
mod tlog;
mod treecost;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Benchmarks of jejak: capture, genealogy, label and resolver load.
#[derive(Parser)]
#[command(name = "jejak-bench")]
struct Args {
    /// Which benchmark: all, capture, genealogy, label, blending, connections, resolver, tlog, tree-cost, epcis, alerts, bulk, catchup, open, failover or memory.
    #[arg(default_value = "all")]
    what: String,
    /// Scratch directory for the benchmark stores (deleted and recreated).
    #[arg(long, default_value = "jejak-bench")]
    dir: PathBuf,
    /// Concurrent capture clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Connections the capture clients share (default: one each).
    #[arg(long)]
    connections: Option<usize>,
    /// Events captured in the capture benchmark.
    #[arg(long, default_value_t = 100_000)]
    capture_events: u64,
    /// Lots in the generated genealogy.
    #[arg(long, default_value_t = 1_000_000)]
    lots: u64,
    /// Trace queries per measurement.
    #[arg(long, default_value_t = 10_000)]
    queries: usize,
    /// Lots in the resolver benchmark's store of labelled rice lots.
    #[arg(long, default_value_t = 105_000)]
    label_lots: u64,
    /// Seconds each measured wrk run of the resolver benchmark lasts.
    #[arg(long, default_value_t = 15)]
    wrk_seconds: u64,
    /// Steps of the blending benchmark's chain.
    #[arg(long, default_value_t = 1_000)]
    blend_steps: usize,
    /// Page requests (and health checks and captures under load) the
    /// blending benchmark times.
    #[arg(long, default_value_t = 500)]
    page_requests: usize,
    /// Idle connections the connections benchmark opens.
    #[arg(long, default_value_t = 1_100)]
    idle_connections: usize,
    /// Receipts in the bulk benchmark's one stream.
    #[arg(long, default_value_t = 200_000)]
    bulk_events: u64,
    /// The most events of one facility the catch-up benchmark publishes in
    /// one message (1: one message per event, as unary capture writes them;
    /// 256: as a bulk capture of one facility writes them).
    #[arg(long, default_value_t = 1)]
    message_events: usize,
    /// Alternating pairs of the bulk benchmark (embedded, then NATS) and of
    /// the tree-cost benchmark (tree held, then following); runs of the
    /// failover benchmark.
    #[arg(long, default_value_t = 3)]
    pairs: usize,
    /// Run the capture benchmark against this running server.
    #[arg(long)]
    server: Option<String>,
    /// Access token for --server (operator of facility `fac`, or admin).
    #[arg(long, env = "JEJAK_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    // The servers under test are the `jejak` built with this binary.
    if std::env::var_os("JEJAK_BIN").is_none() {
        let exe = std::env::current_exe().context("find the jejak-bench binary")?;
        let jejak = exe.with_file_name("jejak");
        if !jejak.exists() {
            anyhow::bail!(
                "{} is missing: build both with `cargo build --release -p jejak -p jejak-bench`",
                jejak.display()
            );
        }
        std::env::set_var("JEJAK_BIN", jejak);
    }
    bench::run(
        bench::BenchOptions {
            dir: args.dir,
            clients: args.clients,
            connections: args.connections.unwrap_or(args.clients),
            capture_events: args.capture_events,
            lots: args.lots,
            label_lots: args.label_lots,
            wrk_seconds: args.wrk_seconds,
            queries: args.queries,
            blend_steps: args.blend_steps,
            page_requests: args.page_requests,
            idle_connections: args.idle_connections,
            bulk_events: args.bulk_events,
            message_events: args.message_events,
            pairs: args.pairs,
            server: args.server,
            token: args.token,
        },
        &args.what,
    )
    .await
}
