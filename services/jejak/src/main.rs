//! The `jejak` binary: parses the command line, sets up logging, and hands
//! over to the library (server, client commands, rebuild).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use jejak::client;
use jejak_proto::v1 as p;

/// mimalloc: the write path and the projector allocate many small buffers
/// per event; the system allocator spent over a tenth of the server's time there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "jejak",
    version,
    about = "Traceability for shared factories: where every lot came from, verifiably"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "JEJAK_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct ServerArg {
    /// URL of a running jejak server.
    #[arg(long, env = "JEJAK_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Print the reply as canonical proto3 JSON.
    #[arg(long)]
    json: bool,
}

/// Where the NATS JetStream event log is, and how its stream is set up.
#[derive(clap::Args, Clone)]
struct NatsArgs {
    /// NATS server URLs, comma-separated.
    #[arg(long = "nats", env = "JEJAK_NATS_URL")]
    url: Option<String>,
    /// NATS credentials file (.creds).
    #[arg(long, env = "JEJAK_NATS_CREDS")]
    nats_creds: Option<PathBuf>,
    /// Name of the JetStream stream holding the events.
    #[arg(long, env = "JEJAK_STREAM", default_value = "JEJAK")]
    stream: String,
    /// Stream replicas: 1, or 3 for a deployment that keeps its data.
    #[arg(long, env = "JEJAK_STREAM_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    replicas: u8,
    /// How long the server drops a republished command id (e.g. 90s, 2m, 1h).
    #[arg(long, env = "JEJAK_DUPLICATE_WINDOW", default_value = "2m", value_parser = parse_duration)]
    duplicate_window: std::time::Duration,
    /// How long to keep trying to reach NATS at start.
    #[arg(long, env = "JEJAK_NATS_CONNECT_WAIT", default_value = "30s", value_parser = parse_duration)]
    nats_connect_wait: std::time::Duration,
}

impl NatsArgs {
    fn config(&self, url: String, name: &str) -> jejak_log::JetStreamConfig {
        let mut c = jejak_log::JetStreamConfig::new(url);
        c.creds = self.nats_creds.clone();
        c.stream = self.stream.clone();
        c.replicas = usize::from(self.replicas);
        c.duplicate_window = self.duplicate_window;
        c.client_name = name.to_string();
        c
    }

    fn require_url(&self) -> anyhow::Result<String> {
        self.url
            .clone()
            .context("give the NATS server URLs with --nats or JEJAK_NATS_URL (e.g. nats://127.0.0.1:4222)")
    }
}

/// `90s`, `2m`, `1h` or plain seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 2m or 1h"))?;
    let seconds = match unit {
        "ms" => return Ok(std::time::Duration::from_millis(n)),
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    Ok(std::time::Duration::from_secs(seconds))
}

/// A request timeout: a duration other than zero.
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("the request timeout must be longer than zero".into()),
        d => Ok(d),
    }
}

#[derive(clap::Args, Clone, Copy)]
struct RequestArgs {
    /// Longest a request may take before it is answered CANCELLED (e.g. 30s,
    /// 500ms); a shorter deadline from the client (grpc-timeout) wins.
    #[arg(long, env = "JEJAK_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    request_timeout: std::time::Duration,
}

#[derive(clap::Args, Clone, Copy)]
struct TraceLimitArgs {
    /// Deepest level a trace follows.
    #[arg(long, env = "JEJAK_MAX_TRACE_DEPTH", default_value_t = 64)]
    max_trace_depth: u32,
    /// Most lots in one trace reply.
    #[arg(long, env = "JEJAK_MAX_TRACE_NODES", default_value_t = 20_000)]
    max_trace_nodes: usize,
}

impl TraceLimitArgs {
    fn limits(self) -> jejak_genealogy::TraceLimits {
        jejak_genealogy::TraceLimits {
            max_depth: self.max_trace_depth,
            max_nodes: self.max_trace_nodes,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: on the embedded store (event log and projection in
    /// sled) by default, or capture and a projector in one process on NATS
    /// JetStream with --nats.
    Serve {
        /// Directory holding the event log and the projection (with --nats: the projection).
        #[arg(long, env = "JEJAK_DATA_DIR", default_value = "jejak-data")]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "JEJAK_LISTEN", default_value = "127.0.0.1:50051")]
        listen: String,
        /// Load demo data for all four sectors when the store is empty.
        #[arg(long, env = "JEJAK_DEMO")]
        demo: bool,
        #[command(flatten)]
        limits: TraceLimitArgs,
        #[command(flatten)]
        requests: RequestArgs,
        #[command(flatten)]
        nats: NatsArgs,
        /// With --nats: health turns NOT_SERVING when the projector is further behind the stream.
        #[arg(long, env = "JEJAK_MAX_LAG", default_value_t = 10_000)]
        max_lag: u64,
    },
    /// Run the capture service on NATS JetStream (stateless but for its cache; run as many as you like).
    Capture {
        /// Address to listen on.
        #[arg(long, env = "JEJAK_LISTEN", default_value = "127.0.0.1:50051")]
        listen: String,
        #[command(flatten)]
        requests: RequestArgs,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Run a projector on NATS JetStream: follows the stream into its own store and serves the trace API.
    Projector {
        /// Directory holding this projector's genealogy store.
        #[arg(long, env = "JEJAK_DATA_DIR", default_value = "jejak-projector")]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "JEJAK_LISTEN", default_value = "127.0.0.1:50052")]
        listen: String,
        #[command(flatten)]
        limits: TraceLimitArgs,
        #[command(flatten)]
        requests: RequestArgs,
        #[command(flatten)]
        nats: NatsArgs,
        /// Health turns NOT_SERVING when the projector is further behind the stream.
        #[arg(long, env = "JEJAK_MAX_LAG", default_value_t = 10_000)]
        max_lag: u64,
    },
    /// Send capture commands from a JSON Lines file to a running server.
    Import {
        file: PathBuf,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Trace a lot, package or label backward (inputs) or forward (recall).
    Trace {
        #[command(subcommand)]
        direction: Direction,
    },
    /// Origin shares of a lot by UKM, supplier and receipt.
    Origin {
        /// Lot id, GS1 Digital Link URI, or serial with --serial.
        target: String,
        #[arg(long)]
        serial: bool,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Every event that touched a lot, corrections included.
    History {
        lot: String,
        /// Only what was recorded by this time (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
        #[command(flatten)]
        server: ServerArg,
    },
    /// One lot in detail.
    Lot {
        lot: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Resolve a GS1 Digital Link URI from a label.
    Lookup {
        uri: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Log and projection positions of a running server.
    Status {
        #[command(flatten)]
        server: ServerArg,
    },
    /// Check every hash chain of the log and print the projection's digest (server stopped).
    Verify {
        #[arg(long, env = "JEJAK_DATA_DIR", default_value = "jejak-data")]
        data_dir: PathBuf,
    },
    /// Run the benchmarks (capture, projector, traces on a generated genealogy).
    Bench {
        /// Which benchmark: all, capture, genealogy, label or memory.
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
        /// Run the capture benchmark against this running server.
        #[arg(long)]
        server: Option<String>,
    },
    /// Recreate the projection from the event log (server stopped).
    Rebuild {
        #[arg(long, env = "JEJAK_DATA_DIR", default_value = "jejak-data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum Direction {
    /// Down to the raw material receipts.
    Back {
        target: String,
        #[arg(long)]
        serial: bool,
        #[arg(long, default_value_t = 0)]
        max_depth: u32,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Up to every lot, package and consignee reached.
    Forward {
        target: String,
        #[arg(long)]
        serial: bool,
        #[arg(long, default_value_t = 0)]
        max_depth: u32,
        #[command(flatten)]
        server: ServerArg,
    },
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn print<M: prost::Message>(json: bool, name: &str, msg: &M, text: impl FnOnce(&M) -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&jejak::import::to_json(name, msg)?)?);
    } else {
        print!("{}", text(msg));
    }
    Ok(())
}

async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A refusal from the server reads as its code and message.
            match e.downcast_ref::<tonic::Status>() {
                Some(s) => eprintln!("error: {:?}: {}", s.code(), s.message()),
                None => eprintln!("error: {e:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            data_dir,
            listen,
            demo,
            limits,
            requests,
            nats,
            max_lag,
        } => {
            let listener = bind(&listen).await?;
            match nats.url.clone() {
                None => {
                    let config = jejak::ServeConfig {
                        data_dir,
                        demo,
                        limits: limits.limits(),
                        request_timeout: requests.request_timeout,
                    };
                    jejak::run(config, listener, shutdown_signal()).await
                }
                Some(url) => {
                    let config = jejak::NatsServeConfig {
                        nats: nats.config(url, "jejak serve"),
                        connect_wait: nats.nats_connect_wait,
                        capture: true,
                        projector: Some(data_dir),
                        demo,
                        limits: limits.limits(),
                        max_lag,
                        request_timeout: requests.request_timeout,
                    };
                    jejak::run_nats(config, listener, shutdown_signal()).await
                }
            }
        }
        Command::Capture { listen, requests, nats } => {
            let url = nats.require_url()?;
            let listener = bind(&listen).await?;
            let config = jejak::NatsServeConfig {
                nats: nats.config(url, "jejak capture"),
                connect_wait: nats.nats_connect_wait,
                capture: true,
                projector: None,
                demo: false,
                limits: jejak_genealogy::TraceLimits::default(),
                max_lag: 0,
                request_timeout: requests.request_timeout,
            };
            jejak::run_nats(config, listener, shutdown_signal()).await
        }
        Command::Projector {
            data_dir,
            listen,
            limits,
            requests,
            nats,
            max_lag,
        } => {
            let url = nats.require_url()?;
            let listener = bind(&listen).await?;
            let config = jejak::NatsServeConfig {
                nats: nats.config(url, "jejak projector"),
                connect_wait: nats.nats_connect_wait,
                capture: false,
                projector: Some(data_dir),
                demo: false,
                limits: limits.limits(),
                max_lag,
                request_timeout: requests.request_timeout,
            };
            jejak::run_nats(config, listener, shutdown_signal()).await
        }
        Command::Import { file, server } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
            let mut c = p::capture_service_client::CaptureServiceClient::new(client::connect(&server.server).await?);
            let report = jejak::import::import(&mut c, &text).await;
            for (line, reason) in &report.failed {
                eprintln!("{}:{line}: {reason}", file.display());
            }
            println!(
                "{} recorded, {} already recorded, {} refused",
                report.recorded,
                report.already_recorded,
                report.failed.len()
            );
            if report.failed.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("{} lines were refused", report.failed.len())
            }
        }
        Command::Trace { direction } => {
            let (target, serial, max_depth, server, backward) = match direction {
                Direction::Back {
                    target,
                    serial,
                    max_depth,
                    server,
                } => (target, serial, max_depth, server, true),
                Direction::Forward {
                    target,
                    serial,
                    max_depth,
                    server,
                } => (target, serial, max_depth, server, false),
            };
            let mut c = client::trace_client(&server.server).await?;
            let req = p::TraceRequest {
                target: Some(client::target(&target, serial)),
                max_depth,
                max_nodes: 0,
            };
            let reply = if backward {
                c.backward_trace(req).await
            } else {
                c.forward_trace(req).await
            }?
            .into_inner();
            print(server.json, "jejak.v1.TraceReply", &reply, |r| {
                client::render_trace(r, backward)
            })
        }
        Command::Origin { target, serial, server } => {
            let mut c = client::trace_client(&server.server).await?;
            let reply = c
                .origin_shares(p::OriginSharesRequest {
                    target: Some(client::target(&target, serial)),
                })
                .await?
                .into_inner();
            print(server.json, "jejak.v1.OriginSharesReply", &reply, client::render_shares)
        }
        Command::History { lot, as_of, server } => {
            let as_of = match as_of {
                Some(s) => Some(
                    s.parse::<prost_types::Timestamp>()
                        .map_err(|e| anyhow::anyhow!("--as-of {s:?} is not an RFC 3339 time: {e}"))?,
                ),
                None => None,
            };
            let mut c = client::trace_client(&server.server).await?;
            let reply = c
                .lot_history(p::LotHistoryRequest { lot_id: lot, as_of })
                .await?
                .into_inner();
            print(server.json, "jejak.v1.LotHistoryReply", &reply, client::render_history)
        }
        Command::Lot { lot, server } => {
            let mut c = client::trace_client(&server.server).await?;
            let reply = c.get_lot(p::GetLotRequest { lot_id: lot }).await?.into_inner();
            print(server.json, "jejak.v1.Lot", &reply, client::render_lot)
        }
        Command::Lookup { uri, server } => {
            let mut c = client::trace_client(&server.server).await?;
            let reply = c.lookup_label(p::LookupLabelRequest { uri }).await?.into_inner();
            print(server.json, "jejak.v1.LookupLabelReply", &reply, client::render_lookup)
        }
        Command::Status { server } => {
            let mut c = client::trace_client(&server.server).await?;
            let reply = c.get_status(p::GetStatusRequest {}).await?.into_inner();
            print(server.json, "jejak.v1.StatusReply", &reply, |s| {
                format!(
                    "log position {}\napplied position {}\nlag {}\nlots {}\nevents {}\n",
                    s.log_position, s.applied_position, s.lag, s.lots, s.events
                )
            })
        }
        Command::Rebuild { data_dir } => jejak::server::rebuild(&data_dir).await,
        Command::Bench {
            what,
            dir,
            clients,
            connections,
            capture_events,
            lots,
            queries,
            server,
        } => {
            jejak::bench::run(
                jejak::bench::BenchOptions {
                    dir,
                    clients,
                    connections: connections.unwrap_or(clients),
                    capture_events,
                    lots,
                    queries,
                    server,
                },
                &what,
            )
            .await
        }
        Command::Verify { data_dir } => jejak::server::verify(&data_dir).await,
    }
}
