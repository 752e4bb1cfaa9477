//! The command line of `jejak`: every flag and environment variable, and
//! what they turn into (the server's typed configuration, a client target).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "jejak",
    version,
    about = "Traceability for shared factories: where every lot came from, verifiably"
)]
pub(crate) struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "JEJAK_LOG_FORMAT", value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
pub(crate) struct ServerArg {
    /// URL of a running jejak server (https:// when it has TLS).
    #[arg(long, env = "JEJAK_SERVER", default_value = "http://127.0.0.1:50051")]
    pub(crate) server: String,
    /// Access token (label lookups and the public view of a lot need none).
    #[arg(long, env = "JEJAK_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// PEM file of the certificate authority that signed an https:// server's certificate.
    #[arg(long, env = "JEJAK_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Print the reply as canonical proto3 JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

impl ServerArg {
    pub(crate) fn target(&self) -> jejak_client::Target {
        jejak_client::Target {
            url: self.server.clone(),
            token: self.token.clone(),
            ca_file: self.ca_file.clone(),
        }
    }
}

/// How the server meets its callers: TLS, rate limits, the administrator token file.
#[derive(clap::Args, Clone)]
pub(crate) struct AccessArgs {
    /// PEM certificate chain for TLS on gRPC and HTTP (with --tls-key).
    #[arg(long, env = "JEJAK_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "JEJAK_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Requests per second allowed per token (a second's worth may come at once); 0: no limit.
    #[arg(long, env = "JEJAK_RATE_LIMIT", default_value_t = 2000.0)]
    pub(crate) rate_limit: f64,
    /// Requests per second allowed per client address without a token; 0: no limit.
    #[arg(long, env = "JEJAK_PUBLIC_RATE_LIMIT", default_value_t = 100.0)]
    pub(crate) public_rate_limit: f64,
    /// Where an administrator token is written when none is active
    /// (default for `serve`, embedded or on NATS: <data-dir>/admin.token;
    /// a projector issues none).
    #[arg(long, env = "JEJAK_ADMIN_TOKEN_FILE")]
    pub(crate) admin_token_file: Option<PathBuf>,
    /// Scheme, host and optional path prefix of label URIs (the QR codes'
    /// GS1 Digital Links), e.g. https://id.koperasi.example; without it,
    /// the host each request came to.
    #[arg(long, env = "JEJAK_PUBLIC_BASE", value_parser = parse_public_base)]
    pub(crate) public_base: Option<String>,
    /// The private Digital-Link-style domain of EPCIS ids for lots,
    /// facilities and parties without a GS1 key, e.g.
    /// https://id.koperasi.example (default https://id.jejak.example);
    /// servers that exchange EPCIS documents should share it.
    #[arg(long, env = "JEJAK_EPCIS_DOMAIN", value_parser = parse_public_base)]
    pub(crate) epcis_domain: Option<String>,
    /// Connections held at once; beyond it, callers wait to be accepted.
    #[arg(long, env = "JEJAK_MAX_CONNECTIONS", default_value_t = 4096)]
    pub(crate) max_connections: usize,
    /// Connections one client address (an IPv6 client's /64) may hold at once.
    #[arg(long, env = "JEJAK_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256)]
    pub(crate) max_connections_per_address: usize,
    /// How long a connection may stay without a request in flight (e.g. 60s).
    #[arg(long, env = "JEJAK_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_timeout)]
    pub(crate) idle_timeout: std::time::Duration,
    /// The delay before a failed webhook delivery is first retried; later
    /// retries wait 60, 360, 1440, 3600, 7200 and 7200 times as long
    /// (5 s: 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
    #[arg(long, env = "JEJAK_WEBHOOK_RETRY", default_value = "5s", value_parser = parse_timeout)]
    pub(crate) webhook_retry: std::time::Duration,
    /// A reverse proxy (an address or CIDR) whose X-Forwarded-For names
    /// the client; repeatable. Public rate limits then key on the client
    /// (an IPv6 client by its /64), not on the proxy.
    #[arg(long = "trusted-proxy", env = "JEJAK_TRUSTED_PROXIES", value_delimiter = ',', value_parser = jejak_server::proxy::parse_cidr)]
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    /// Also serve /metrics, /healthz and grpc.health.v1, without a token
    /// and in plain text, on this address (keep it private: for Prometheus
    /// and probes).
    #[arg(long, env = "JEJAK_METRICS_LISTEN")]
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,
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
    pub(crate) fn access(&self, request_timeout: std::time::Duration) -> jejak_server::Access {
        jejak_server::Access {
            tls: self.tls_cert.clone().zip(self.tls_key.clone()),
            rates: jejak_server::auth::RateLimits {
                per_token: self.rate_limit.max(0.0),
                per_address: self.public_rate_limit.max(0.0),
            },
            admin_token_file: self.admin_token_file.clone(),
            request_timeout,
            public_base: self.public_base.clone(),
            epcis_domain: self.epcis_domain.clone(),
            clock: jejak_domain::system_clock(),
            connections: jejak_server::conn::ConnLimits {
                max: self.max_connections.max(1),
                per_address: self.max_connections_per_address.max(1),
                idle: self.idle_timeout,
            },
            webhook_retry: self.webhook_retry,
            trusted_proxies: jejak_server::proxy::TrustedProxies::new(self.trusted_proxies.clone()),
            metrics_listen: self.metrics_listen,
        }
    }
}

/// The transparency log's signing key and its witnesses.
#[derive(clap::Args, Clone)]
pub(crate) struct TlogArgs {
    /// The transparency log's Ed25519 signing key (C2SP note private key);
    /// created there at first start when missing (`serve`: default
    /// <data-dir>/log.key; a `projector` signs only when given one).
    #[arg(long, env = "JEJAK_LOG_KEY")]
    pub(crate) log_key: Option<PathBuf>,
    /// The origin line (and key name) of a log key created at first start,
    /// e.g. id.koperasi.example/log.
    #[arg(long, env = "JEJAK_LOG_ORIGIN")]
    pub(crate) log_origin: Option<String>,
    /// A witness that cosigns checkpoints: URL=VKEY (repeatable).
    #[arg(long = "witness", env = "JEJAK_WITNESSES", value_delimiter = ',')]
    pub(crate) witnesses: Vec<jejak_server::tlog::WitnessConfig>,
    /// Cosignatures a checkpoint should gather (default: every witness's).
    #[arg(long, env = "JEJAK_WITNESS_QUORUM")]
    pub(crate) witness_quorum: Option<usize>,
    /// On NATS: follow the checkpoints another projector signs, checked with
    /// this verifier key, instead of signing (`jejak projector` without --log-key).
    #[arg(long, env = "JEJAK_LOG_VKEY", conflicts_with = "log_key")]
    pub(crate) log_vkey: Option<String>,
    /// `--log-vkey`, read from a file (as `jejak log-key --vkey-out` writes it).
    #[arg(long, env = "JEJAK_LOG_VKEY_FILE", conflicts_with_all = ["log_key", "log_vkey"])]
    pub(crate) log_vkey_file: Option<PathBuf>,
    /// Do not extend the transparency log's tree while serving (it catches
    /// up at the next start): only to measure what the tree costs captures.
    #[arg(long, hide = true)]
    pub(crate) hold_tree: bool,
}

impl TlogArgs {
    pub(crate) fn config(&self) -> anyhow::Result<jejak_server::tlog::TlogConfig> {
        if let Some(q) = self.witness_quorum {
            anyhow::ensure!(
                q <= self.witnesses.len(),
                "--witness-quorum {q} is more than the {} witnesses given with --witness",
                self.witnesses.len()
            );
        }
        let from_file = match &self.log_vkey_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("--log-vkey-file {}: {e}", path.display()))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let follow = self
            .log_vkey
            .clone()
            .or(from_file)
            .map(|v| jejak_verify::note::Verifier::parse(&v).map_err(|e| anyhow::anyhow!("--log-vkey: {e}")))
            .transpose()?;
        Ok(jejak_server::tlog::TlogConfig {
            key: self.log_key.clone(),
            origin: self.log_origin.clone(),
            witnesses: self.witnesses.clone(),
            quorum: self.witness_quorum,
            sign: follow.is_none(),
            follow,
            hold: self.hold_tree,
        })
    }
}

/// Where the NATS JetStream event log is, and how its stream is set up.
#[derive(clap::Args, Clone)]
pub(crate) struct NatsArgs {
    /// NATS server URLs, comma-separated.
    #[arg(long = "nats", env = "JEJAK_NATS_URL")]
    pub(crate) url: Option<String>,
    /// NATS credentials file (.creds).
    #[arg(long, env = "JEJAK_NATS_CREDS")]
    pub(crate) nats_creds: Option<PathBuf>,
    /// Name of the JetStream stream holding the events.
    #[arg(long, env = "JEJAK_STREAM", default_value = "JEJAK")]
    pub(crate) stream: String,
    /// Stream replicas: 1, or 3 for a deployment that keeps its data. A new
    /// stream gets 1 when not given; an existing stream is changed to what
    /// is given, and keeps its own otherwise.
    #[arg(long, env = "JEJAK_STREAM_REPLICAS", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub(crate) replicas: Option<u8>,
    /// How long the server drops a republished command id (e.g. 90s, 2m, 1h).
    /// A new stream gets 2m when not given; an existing one keeps its own.
    #[arg(long, env = "JEJAK_DUPLICATE_WINDOW", value_parser = parse_duration)]
    pub(crate) duplicate_window: Option<std::time::Duration>,
    /// How long to keep trying to reach NATS at start.
    #[arg(long, env = "JEJAK_NATS_CONNECT_WAIT", default_value = "30s", value_parser = parse_duration)]
    pub(crate) nats_connect_wait: std::time::Duration,
}

impl NatsArgs {
    pub(crate) fn config(&self, url: String, name: &str) -> jejak_log::JetStreamConfig {
        let mut c = jejak_log::JetStreamConfig::new(url);
        c.creds = self.nats_creds.clone();
        c.stream = self.stream.clone();
        if let Some(r) = self.replicas {
            c.replicas = usize::from(r);
        }
        if let Some(w) = self.duplicate_window {
            c.duplicate_window = w;
        }
        c.set_replicas = self.replicas.is_some();
        c.set_duplicate_window = self.duplicate_window.is_some();
        c.client_name = name.to_string();
        c
    }

    pub(crate) fn require_url(&self) -> anyhow::Result<String> {
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

/// A lot or label, and where to write what is made of it.
#[derive(clap::Args, Clone)]
pub(crate) struct TargetOut {
    /// Lot id, GS1 Digital Link URI, or serial with --serial.
    pub(crate) target: String,
    #[arg(long)]
    pub(crate) serial: bool,
    /// Where to write it (standard output without).
    #[arg(short, long)]
    pub(crate) out: Option<PathBuf>,
}

#[derive(clap::Args, Clone, Copy)]
pub(crate) struct RequestArgs {
    /// Longest a request may take before it is answered DEADLINE_EXCEEDED (e.g. 30s,
    /// 500ms); a shorter deadline from the client (grpc-timeout) wins.
    #[arg(long, env = "JEJAK_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    pub(crate) request_timeout: std::time::Duration,
}

#[derive(clap::Args, Clone, Copy)]
pub(crate) struct TraceLimitArgs {
    /// Deepest level a trace follows.
    #[arg(long, env = "JEJAK_MAX_TRACE_DEPTH", default_value_t = 64)]
    pub(crate) max_trace_depth: u32,
    /// Most lots in one trace reply.
    #[arg(long, env = "JEJAK_MAX_TRACE_NODES", default_value_t = 20_000)]
    pub(crate) max_trace_nodes: usize,
}

impl TraceLimitArgs {
    pub(crate) fn limits(self) -> jejak_genealogy::TraceLimits {
        jejak_genealogy::TraceLimits {
            max_depth: self.max_trace_depth,
            max_nodes: self.max_trace_nodes,
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
        /// With --nats: health turns NOT_SERVING when the projector is more than this many of the stream's messages behind.
        #[arg(long, env = "JEJAK_MAX_LAG", default_value_t = 10_000)]
        max_lag: u64,
        #[command(flatten)]
        access: AccessArgs,
        #[command(flatten)]
        tlog: TlogArgs,
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
    /// Make the first administrator token of a deployment on NATS
    /// JetStream, once: when the stream holds no active one, issue one and
    /// write it to --out (`-`: print it, to be read once from this step's
    /// output). Run as a Kubernetes Job or a compose service run once;
    /// running it again issues nothing.
    BootstrapToken {
        /// Where the token goes: a file made readable by its owner only, or `-`.
        #[arg(long, env = "JEJAK_BOOTSTRAP_OUT")]
        out: PathBuf,
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
        #[command(flatten)]
        access: AccessArgs,
        #[command(flatten)]
        tlog: TlogArgs,
    },
    /// Issue, list and revoke access tokens (administrators).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Send capture commands from a JSON Lines or CSV file to a running server, on one stream.
    Import {
        /// JSON Lines of commands, or a CSV file of one command type.
        file: PathBuf,
        /// CSV: keep the rows the server accepts when others are refused
        /// (without it, a refused row voids what the file recorded).
        #[arg(long)]
        proceed: bool,
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
    /// EPCIS 2.0 documents of the log's events.
    Epcis {
        #[command(subcommand)]
        what: EpcisCommand,
    },
    /// Every shipment a lot's material reached, for a recall: CSV with the
    /// shipping columns of FDA FSMA 204's sortable spreadsheet, or JSON.
    RecallReport {
        #[command(flatten)]
        what: TargetOut,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Write the geolocation of an EU due diligence statement (EUDR) for a
    /// lot: a GeoJSON FeatureCollection of every production plot behind it.
    Eudr {
        /// The lot.
        lot: String,
        /// Where to write the GeoJSON.
        #[arg(short, long)]
        out: PathBuf,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Webhooks: the HTTPS endpoints alerts (recalls, holds, failed
    /// inspections) are POSTed to as Standard Webhooks (administrators).
    Webhook {
        #[command(subcommand)]
        action: WebhookAction,
    },
    /// Print the alerts that concern this token as JSON lines as they are
    /// raised, after the given log position (to resume).
    Alerts {
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Reports for regulators.
    Report {
        #[command(subcommand)]
        what: ReportCommand,
    },
    /// Write the provenance bundle of a lot or label: every event behind it
    /// with its transparency log proof, checkable offline with verify-bundle.
    Bundle {
        #[command(flatten)]
        what: TargetOut,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Check a provenance bundle offline: signatures, proofs, disclosed
    /// fields, the claimed trace and shares. Exits 0 when it verifies, 1 when
    /// it does not, 2 when the file is not a bundle.
    VerifyBundle {
        /// The bundle (JSON).
        file: PathBuf,
        /// The log's verifier key (what `jejak log-key` prints, or /log/key).
        #[arg(long, env = "JEJAK_VERIFY_LOG_KEY")]
        log_key: String,
        /// A witness's verifier key (repeatable).
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// Witness cosignatures required (default: every --witness).
        #[arg(long)]
        quorum: Option<usize>,
    },
    /// Run a witness (C2SP tlog-witness): cosign a log's checkpoints only
    /// when each consistently extends the last one cosigned.
    Witness {
        /// The witness's cosigning key; created there when missing.
        #[arg(long, env = "JEJAK_WITNESS_KEY")]
        key: PathBuf,
        /// The name a key created now gets (e.g. witness.koperasi.example).
        #[arg(long)]
        name: Option<String>,
        /// A log to witness: its verifier key (repeatable).
        #[arg(long = "log-key", required = true)]
        log_keys: Vec<String>,
        /// Address to listen on.
        #[arg(long, env = "JEJAK_LISTEN", default_value = "127.0.0.1:50060")]
        listen: String,
        /// Where the last cosigned checkpoints are kept (default: beside the key, .state).
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Print the transparency log's verifier key (creating the key when missing).
    LogKey {
        #[arg(long, env = "JEJAK_DATA_DIR", default_value = "jejak-data")]
        data_dir: PathBuf,
        /// The signing key file (default <data-dir>/log.key).
        #[arg(long, env = "JEJAK_LOG_KEY")]
        log_key: Option<PathBuf>,
        /// The origin a key created now gets.
        #[arg(long, env = "JEJAK_LOG_ORIGIN")]
        log_origin: Option<String>,
        /// Also write the verifier key to this file (for the projectors
        /// that follow the signer: `--log-vkey-file`).
        #[arg(long)]
        vkey_out: Option<PathBuf>,
    },
    /// Check every hash chain of the log and print the projection's digest
    /// (server stopped); with --export, every chain of an export file.
    Verify {
        #[arg(long, env = "JEJAK_DATA_DIR", default_value = "jejak-data")]
        data_dir: PathBuf,
        /// An export file (`jejak export`) to check instead, offline.
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// Write the log's envelopes exactly as stored, with their chain links
    /// (JSON Lines), for `jejak verify --export` (administrators and regulators).
    Export {
        /// Where to write the export.
        #[arg(short, long)]
        out: PathBuf,
        /// The first log position to export.
        #[arg(long, default_value_t = 1)]
        from: u64,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Take a consistent backup of a running embedded server into a new
    /// directory while capture goes on (administrators).
    Backup {
        /// The directory to write (new or empty).
        dir: PathBuf,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Bring a backup back into a new data directory, checking every chain
    /// and the signed checkpoint, and make the projection from the log.
    Restore {
        /// The backup's directory.
        dir: PathBuf,
        #[arg(long, env = "JEJAK_DATA_DIR", default_value = "jejak-data")]
        data_dir: PathBuf,
    },
    /// Recreate the projection from the event log (server stopped).
    Rebuild {
        #[arg(long, env = "JEJAK_DATA_DIR", default_value = "jejak-data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum WebhookAction {
    /// Register an endpoint; prints its id and signing secret (shown once).
    Create {
        /// https:// (http:// only to a loopback address).
        #[arg(long)]
        url: String,
        /// Only alerts concerning this party (an owner downstream or a consignee).
        #[arg(long, conflicts_with_all = ["facility", "lot"])]
        party: Option<String>,
        /// Only alerts reaching this facility.
        #[arg(long, conflicts_with = "lot")]
        facility: Option<String>,
        /// Only alerts about this lot or lots made from it.
        #[arg(long)]
        lot: Option<String>,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Every webhook with its deliveries.
    List {
        #[command(flatten)]
        server: ServerArg,
    },
    Delete {
        id: String,
        #[command(flatten)]
        server: ServerArg,
    },
}

impl WebhookAction {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        use jejak_client::alerts;
        match self {
            WebhookAction::Create {
                url,
                party,
                facility,
                lot,
                server,
            } => {
                let filter = alerts::Filter { party, facility, lot };
                let r = alerts::create(&server.target(), &url, filter).await?;
                println!("webhook {}", r.webhook_id);
                println!("signing secret (shown only now): {}", r.secret);
                Ok(())
            }
            WebhookAction::List { server } => {
                let hooks = alerts::list(&server.target()).await?;
                print!("{}", alerts::render(&hooks));
                Ok(())
            }
            WebhookAction::Delete { id, server } => {
                alerts::delete(&server.target(), &id).await?;
                println!("webhook {id} deleted");
                Ok(())
            }
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum ReportCommand {
    /// A facility's timber balance sheet for a period (SVLK): raw timber
    /// received and used, processed timber produced and shipped, stock; CSV.
    Timber {
        #[arg(long)]
        facility: String,
        /// First day (2026-09-01, from 00:00 WIB) or a time with its offset.
        #[arg(long)]
        from: String,
        /// The day after the last (or a time with its offset).
        #[arg(long)]
        to: String,
        /// Where to write the CSV (default: print it).
        #[arg(short, long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArg,
    },
}

impl ReportCommand {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self {
            ReportCommand::Timber {
                facility,
                from,
                to,
                out,
                server,
            } => {
                let csv = jejak_client::filings::timber(&server.target(), &facility, &from, &to).await?;
                jejak_client::filings::save_or_print(&csv, out.as_deref())
            }
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum TokenAction {
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
        /// Also print the token as a QR code, for the console's sign-in to scan.
        #[arg(long)]
        qr: bool,
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
pub(crate) enum EpcisCommand {
    /// Write the events of one lot, or of a time range, or all of them, as
    /// one EPCIS 2.0 document with the master data in its header
    /// (administrators and regulators).
    Export {
        /// Only this lot's events.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        lot: Option<String>,
        /// Events from this time on (e.g. 2026-09-01T00:00:00+07:00).
        #[arg(long)]
        from: Option<String>,
        /// Events before this time.
        #[arg(long)]
        to: Option<String>,
        /// Where to write the document.
        #[arg(short, long)]
        out: PathBuf,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Capture an EPCIS 2.0 document (JSON-LD): events of jejak's kinds
    /// at its facilities go through the same rules as every capture,
    /// other valid events are kept as observations. All or nothing unless
    /// --proceed. Prints the capture job; exits 1 when it failed.
    Capture {
        /// The EPCISDocument, or one event with its @context.
        file: PathBuf,
        /// Record the events the rules accept and report the others.
        #[arg(long)]
        proceed: bool,
        #[command(flatten)]
        server: ServerArg,
    },
}

impl EpcisCommand {
    /// Exit status 1 when a capture failed (the job is printed either way).
    fn report(c: &jejak_client::epcis::Captured) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(&c.job)?);
        anyhow::ensure!(c.success(), "the capture failed: see its errors above");
        Ok(())
    }

    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self {
            EpcisCommand::Export {
                lot,
                from,
                to,
                out,
                server,
            } => {
                let what = jejak_client::epcis::Export { lot, from, to };
                let n = jejak_client::epcis::export(&server.target(), &what, &out).await?;
                println!("wrote {n} EPCIS events to {}", out.display());
                Ok(())
            }
            EpcisCommand::Capture { file, proceed, server } => {
                let captured = jejak_client::epcis::capture(&server.target(), &file, proceed).await?;
                EpcisCommand::report(&captured)
            }
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum Direction {
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
