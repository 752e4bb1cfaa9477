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
    /// URL of a running jejak server (https:// when it has TLS).
    #[arg(long, env = "JEJAK_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Access token (label lookups and the public view of a lot need none).
    #[arg(long, env = "JEJAK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of the certificate authority that signed an https:// server's certificate.
    #[arg(long, env = "JEJAK_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Print the reply as canonical proto3 JSON.
    #[arg(long)]
    json: bool,
}

impl ServerArg {
    fn target(&self) -> client::Target {
        client::Target {
            url: self.server.clone(),
            token: self.token.clone(),
            ca_file: self.ca_file.clone(),
        }
    }
}

/// How the server meets its callers: TLS, rate limits, the administrator token file.
#[derive(clap::Args, Clone)]
struct AccessArgs {
    /// PEM certificate chain for TLS on gRPC and HTTP (with --tls-key).
    #[arg(long, env = "JEJAK_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "JEJAK_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Requests per second allowed per token (a second's worth may come at once); 0: no limit.
    #[arg(long, env = "JEJAK_RATE_LIMIT", default_value_t = 2000.0)]
    rate_limit: f64,
    /// Requests per second allowed per client address without a token; 0: no limit.
    #[arg(long, env = "JEJAK_PUBLIC_RATE_LIMIT", default_value_t = 100.0)]
    public_rate_limit: f64,
    /// Where an administrator token is written when none is active
    /// (default for `serve` on the embedded store: <data-dir>/admin.token).
    #[arg(long, env = "JEJAK_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Scheme, host and optional path prefix of label URIs (the QR codes'
    /// GS1 Digital Links), e.g. https://id.koperasi.example; without it,
    /// the host each request came to.
    #[arg(long, env = "JEJAK_PUBLIC_BASE", value_parser = parse_public_base)]
    public_base: Option<String>,
}

fn parse_public_base(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or("give an http:// or https:// URL, e.g. https://id.koperasi.example")?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || rest.contains(['?', '#']) || rest.split('/').any(|s| s == "01") {
        return Err("give a scheme and host, optionally a path prefix, without query, fragment or /01/".into());
    }
    Ok(text.trim_end_matches('/').to_string())
}

impl AccessArgs {
    fn access(&self, request_timeout: std::time::Duration) -> jejak::server::Access {
        jejak::server::Access {
            tls: self.tls_cert.clone().zip(self.tls_key.clone()),
            rates: jejak::auth::RateLimits {
                per_token: self.rate_limit.max(0.0),
                per_address: self.public_rate_limit.max(0.0),
            },
            admin_token_file: self.admin_token_file.clone(),
            request_timeout,
            public_base: self.public_base.clone(),
        }
    }
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
        "d" => n * 86_400,
        _ => return Err(format!("{text:?}: the unit must be ms, s, m, h or d")),
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
        #[command(flatten)]
        access: AccessArgs,
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
        #[command(flatten)]
        access: AccessArgs,
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
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Issue, list and revoke access tokens (administrators).
    Token {
        #[command(subcommand)]
        action: TokenAction,
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
    /// Write a printable sheet with one label (QR code and GS1 text) per
    /// packed unit of a lot: PDF, or SVG (one file per A4 page).
    Labels {
        lot: String,
        /// The sheet to write; its extension (.pdf or .svg) picks the format.
        #[arg(long, short)]
        out: PathBuf,
        /// Scheme, host and optional path prefix of the label URIs (default: the server's URL).
        #[arg(long, env = "JEJAK_PUBLIC_BASE", value_parser = parse_public_base)]
        public_base: Option<String>,
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
        /// Which benchmark: all, capture, genealogy, label, resolver or memory.
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
        /// Run the capture benchmark against this running server.
        #[arg(long)]
        server: Option<String>,
        /// Access token for --server (operator of facility `fac`, or admin).
        #[arg(long, env = "JEJAK_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Recreate the projection from the event log (server stopped).
    Rebuild {
        #[arg(long, env = "JEJAK_DATA_DIR", default_value = "jejak-data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Issue a token and print it (the only time it is shown).
    Create {
        /// admin, operator, member or regulator.
        #[arg(long)]
        role: String,
        /// Operators: a facility where the token may capture (repeat for more).
        #[arg(long = "facility")]
        facilities: Vec<String>,
        /// Members: the party the token speaks for.
        #[arg(long)]
        party: Option<String>,
        /// How long the token lives (e.g. 90d, 12h).
        #[arg(long, default_value = "90d", value_parser = parse_duration)]
        expires_in: std::time::Duration,
        /// Who or what the token is for.
        #[arg(long, default_value = "")]
        label: String,
        /// Command id (default: a new one); a retry with the same id does not issue a second token.
        #[arg(long)]
        command_id: Option<String>,
        #[command(flatten)]
        server: ServerArg,
    },
    /// List tokens (never their secrets).
    List {
        /// Include revoked and expired tokens.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Revoke a token at once.
    Revoke {
        token_id: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        server: ServerArg,
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

/// `jejak token create|list|revoke` through the admin API.
async fn token(action: TokenAction) -> anyhow::Result<()> {
    use p::admin_service_client::AdminServiceClient;
    match action {
        TokenAction::Create {
            role,
            facilities,
            party,
            expires_in,
            label,
            command_id,
            server,
        } => {
            let role = jejak_domain::Role::parse(&role)
                .with_context(|| format!("--role {role:?}: use admin, operator, member or regulator"))?;
            let now = jejak::now();
            let expires_at = jejak_domain::Time(
                now.0
                    .saturating_add(i64::try_from(expires_in.as_nanos()).context("--expires-in is too long")?),
            );
            let command_id = command_id.unwrap_or_else(|| format!("token-{}", now.0));
            let mut c = AdminServiceClient::new(client::connect(&server.target()).await?);
            let reply = c
                .create_token(p::CreateTokenRequest {
                    command_id,
                    role: jejak_proto::access_role_to_proto(role) as i32,
                    facility_ids: facilities,
                    party_id: party.unwrap_or_default(),
                    expires_at: Some(jejak_proto::time_to_proto(expires_at)),
                    label,
                })
                .await?
                .into_inner();
            print(server.json, "jejak.v1.CreateTokenReply", &reply, |r| {
                if r.token.is_empty() {
                    format!(
                        "token {} was already issued by this command id; its secret cannot be shown again\n",
                        r.token_id
                    )
                } else {
                    format!("{}\n", r.token)
                }
            })
        }
        TokenAction::List { all, server } => {
            let mut c = AdminServiceClient::new(client::connect(&server.target()).await?);
            let reply = c
                .list_tokens(p::ListTokensRequest { include_inactive: all })
                .await?
                .into_inner();
            print(server.json, "jejak.v1.ListTokensReply", &reply, client::render_tokens)
        }
        TokenAction::Revoke {
            token_id,
            reason,
            server,
        } => {
            let mut c = AdminServiceClient::new(client::connect(&server.target()).await?);
            let now = jejak::now();
            let reply = c
                .revoke_token(p::RevokeTokenRequest {
                    command_id: format!("revoke-{token_id}-{}", now.0),
                    token_id,
                    reason,
                })
                .await?
                .into_inner();
            print(server.json, "jejak.v1.CaptureReply", &reply, |r| {
                format!("revoked (event {} at log position {})\n", r.event_id, r.position)
            })
        }
    }
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
            access,
        } => {
            let listener = bind(&listen).await?;
            let mut access = access.access(requests.request_timeout);
            access
                .admin_token_file
                .get_or_insert_with(|| data_dir.join("admin.token"));
            match nats.url.clone() {
                None => {
                    let config = jejak::ServeConfig {
                        data_dir,
                        demo,
                        limits: limits.limits(),
                        access,
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
                        access,
                    };
                    jejak::run_nats(config, listener, shutdown_signal()).await
                }
            }
        }
        Command::Capture {
            listen,
            requests,
            nats,
            access,
        } => {
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
                access: access.access(requests.request_timeout),
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
            access,
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
                access: access.access(requests.request_timeout),
            };
            jejak::run_nats(config, listener, shutdown_signal()).await
        }
        Command::Token { action } => token(action).await,
        Command::Import { file, server } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
            let mut c = p::capture_service_client::CaptureServiceClient::new(client::connect(&server.target()).await?);
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
            let mut c = client::trace_client(&server.target()).await?;
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
            let mut c = client::trace_client(&server.target()).await?;
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
            let mut c = client::trace_client(&server.target()).await?;
            let reply = c
                .lot_history(p::LotHistoryRequest { lot_id: lot, as_of })
                .await?
                .into_inner();
            print(server.json, "jejak.v1.LotHistoryReply", &reply, client::render_history)
        }
        Command::Lot { lot, server } => {
            let mut c = client::trace_client(&server.target()).await?;
            let reply = c.get_lot(p::GetLotRequest { lot_id: lot }).await?.into_inner();
            print(server.json, "jejak.v1.Lot", &reply, client::render_lot)
        }
        Command::Labels {
            lot,
            out,
            public_base,
            server,
        } => {
            let target = server.target();
            let mut c = client::trace_client(&target).await?;
            let reply = c.get_lot(p::GetLotRequest { lot_id: lot }).await?.into_inner();
            let base = public_base.unwrap_or_else(|| {
                eprintln!(
                    "note: the labels point at {}; give --public-base (JEJAK_PUBLIC_BASE) for labels that outlive this address",
                    target.url
                );
                target.url.clone()
            });
            println!("{}", client::write_label_sheet(&reply, &base, &out)?);
            Ok(())
        }
        Command::Lookup { uri, server } => {
            let mut c = client::trace_client(&server.target()).await?;
            let reply = c.lookup_label(p::LookupLabelRequest { uri }).await?.into_inner();
            print(server.json, "jejak.v1.LookupLabelReply", &reply, client::render_lookup)
        }
        Command::Status { server } => {
            let mut c = client::trace_client(&server.target()).await?;
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
            label_lots,
            wrk_seconds,
            queries,
            server,
            token,
        } => {
            jejak::bench::run(
                jejak::bench::BenchOptions {
                    dir,
                    clients,
                    connections: connections.unwrap_or(clients),
                    capture_events,
                    lots,
                    label_lots,
                    wrk_seconds,
                    queries,
                    server,
                    token,
                },
                &what,
            )
            .await
        }
        Command::Verify { data_dir } => jejak::server::verify(&data_dir).await,
    }
}
