//! Test harnesses: the real `jejak` binary on a random loopback port with a
//! temporary data directory (killed on drop), gRPC clients for it, and
//! polling with a deadline instead of sleeping.
//!
//! **Invariant:** used by tests and the benchmark binary only, never by the
//! product; it starts real processes and real servers, and mocks nothing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use jejak_proto::v1 as p;
use jejak_proto::v1::capture_service_client::CaptureServiceClient;
use jejak_proto::v1::trace_service_client::TraceServiceClient;
use tonic::transport::Channel;

/// A connection whose calls carry a token (or none).
pub type Conn = jejak_proto::Authenticated<Channel>;

/// The interceptor for a test token (tests use well-formed tokens).
fn bearer(token: Option<&str>) -> jejak_proto::Bearer {
    jejak_proto::Bearer::new(token).unwrap_or_default()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `jejak` binary, built once per test process (a no-op when fresh).
pub fn jejak_bin() -> anyhow::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("JEJAK_BIN") {
            return Ok(PathBuf::from(p));
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--locked", "-p", "jejak", "--bin", "jejak"])
            .current_dir(workspace_root())
            .status()
            .map_err(|e| format!("run cargo build for the jejak binary: {e}"))?;
        if !status.success() {
            return Err(format!("cargo build of the jejak binary failed: {status}"));
        }
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        // target/<profile>/deps/<test> → target/<profile>/jejak
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or("unexpected test binary location")?;
        let bin = dir.join("jejak");
        if bin.exists() {
            Ok(bin)
        } else {
            Err(format!("{} was not built", bin.display()))
        }
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// Which `jejak` service to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// `jejak serve`: embedded, or capture and projector in one process with `nats`.
    #[default]
    Serve,
    /// `jejak capture` (needs `nats`).
    Capture,
    /// `jejak projector` (needs `nats`).
    Projector,
}

/// Options for a server under test.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    pub role: Role,
    /// NATS server URLs: run on JetStream instead of the embedded store.
    pub nats: Option<String>,
    pub demo: bool,
    /// Reuse this data directory (e.g. after a kill); a temporary one otherwise.
    pub data_dir: Option<PathBuf>,
    pub extra_args: Vec<String>,
    /// Requests per second per token and per address without one; none
    /// (the default) turns rate limiting off.
    pub rate_limits: Option<(f64, f64)>,
    /// Write the server's log (stderr) to this file instead of the test's.
    pub log_file: Option<PathBuf>,
    /// The CA that signed the server's TLS certificate (with `--tls-cert`
    /// in `extra_args`): the clients trust it.
    pub ca_file: Option<PathBuf>,
    /// How long the server may take to start listening (default 120 s);
    /// a large store takes longer to open.
    pub start_timeout: Option<Duration>,
    /// Run `jejak_server::run` in this process (on a thread and runtime of
    /// its own) with this clock, instead of the binary: time then moves
    /// only when the test says. The embedded store only, no `extra_args`.
    pub clock: Option<std::sync::Arc<jejak_domain::ManualClock>>,
}

/// A server run in this process.
struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl InProcess {
    fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow::anyhow!("the in-process server panicked"))?,
            None => Ok(()),
        }
    }
}

/// A running `jejak serve`, killed on drop.
pub struct Server {
    child: Option<Child>,
    in_process: Option<InProcess>,
    pub url: String,
    pub data_dir: PathBuf,
    /// The administrator token the server wrote at start (capture and
    /// serve), which the clients below carry.
    pub admin_token: Option<String>,
    ca_file: Option<PathBuf>,
    /// Every line the server printed on stdout so far.
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts the server on 127.0.0.1 with a random port and waits until it listens.
    pub fn start(opts: ServerOptions) -> anyhow::Result<Server> {
        let (data_dir, temp) = match opts.data_dir.clone() {
            Some(d) => (d, None),
            None => {
                let t = tempfile::tempdir().context("create a temporary data directory")?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        if let Some(clock) = opts.clock.clone() {
            return Server::start_in_process(opts, clock, data_dir, temp);
        }
        let mut cmd = Command::new(jejak_bin()?);
        cmd.arg(match opts.role {
            Role::Serve => "serve",
            Role::Capture => "capture",
            Role::Projector => "projector",
        });
        if opts.role != Role::Capture {
            cmd.arg("--data-dir").arg(&data_dir);
        }
        let token_file = data_dir.join("admin.token");
        if opts.role != Role::Projector {
            cmd.arg("--admin-token-file").arg(&token_file);
        }
        let (per_token, per_address) = opts.rate_limits.unwrap_or((0.0, 0.0));
        cmd.args(["--rate-limit", &per_token.to_string()])
            .args(["--public-rate-limit", &per_address.to_string()]);
        if let Some(nats) = &opts.nats {
            cmd.args(["--nats", nats]);
        }
        if !opts.extra_args.iter().any(|a| a == "--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(&opts.extra_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(match &opts.log_file {
                Some(f) => Stdio::from(std::fs::File::create(f).context("create the server's log file")?),
                None => Stdio::inherit(),
            });
        if opts.demo {
            cmd.arg("--demo");
        }
        let (child, url, lines) = spawn_listening(cmd, opts.start_timeout)?;
        let admin_token = std::fs::read_to_string(&token_file).ok().map(|t| t.trim().to_string());
        Ok(Server {
            child: Some(child),
            in_process: None,
            url,
            data_dir,
            admin_token,
            ca_file: opts.ca_file,
            stdout: lines,
            _temp: temp,
        })
    }

    /// Runs `jejak` with exactly `args` and `env` (a deployment file's
    /// command and environment, addresses rewritten to loopback), and waits
    /// until it says where it listens.
    pub fn spawn(
        args: &[String],
        env: &[(String, String)],
        data_dir: PathBuf,
        ca_file: Option<PathBuf>,
    ) -> anyhow::Result<Server> {
        let mut cmd = Command::new(jejak_bin()?);
        cmd.args(args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let (child, url, lines) = spawn_listening(cmd, None)?;
        Ok(Server {
            child: Some(child),
            in_process: None,
            url,
            data_dir,
            admin_token: None,
            ca_file,
            stdout: lines,
            _temp: None,
        })
    }

    fn start_in_process(
        opts: ServerOptions,
        clock: std::sync::Arc<jejak_domain::ManualClock>,
        data_dir: PathBuf,
        temp: Option<tempfile::TempDir>,
    ) -> anyhow::Result<Server> {
        anyhow::ensure!(
            opts.nats.is_none() && opts.extra_args.is_empty() && opts.role == Role::Serve,
            "an in-process server runs the embedded store with default flags only"
        );
        let token_file = data_dir.join("admin.token");
        let (per_token, per_address) = opts.rate_limits.unwrap_or((0.0, 0.0));
        let config = jejak_server::ServerConfig {
            backend: jejak_server::Backend::Embedded {
                data_dir: data_dir.clone(),
                demo: opts.demo,
            },
            limits: jejak_genealogy::TraceLimits::default(),
            access: jejak_server::Access {
                rates: jejak_server::auth::RateLimits { per_token, per_address },
                admin_token_file: Some(token_file.clone()),
                clock,
                ..jejak_server::Access::default()
            },
            tlog: jejak_server::tlog::TlogConfig {
                sign: true,
                ..Default::default()
            },
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                jejak_server::run(config, listener, async move {
                    let _ = stopped.await;
                })
                .await
            })
        });
        let mut running = InProcess {
            stop: Some(stop),
            thread: Some(thread),
        };
        // The administrator token is written once the store is open and
        // the demo loaded, just before serving.
        let deadline = Instant::now() + opts.start_timeout.unwrap_or(Duration::from_secs(120));
        let admin_token = loop {
            // Written whole, newline last.
            match std::fs::read_to_string(&token_file) {
                Ok(t) if t.ends_with('\n') => break Some(t.trim().to_string()),
                _ => {}
            }
            if running.thread.as_ref().is_some_and(|t| t.is_finished()) {
                running.stop()?;
                bail!("the in-process server stopped before it served");
            }
            if Instant::now() > deadline {
                running.stop()?;
                bail!("the in-process server did not start");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ok(Server {
            child: None,
            in_process: Some(running),
            url,
            data_dir,
            admin_token,
            ca_file: opts.ca_file,
            stdout: std::sync::Arc::default(),
            _temp: temp,
        })
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The lines the server has printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// `host:port` of the server.
    pub fn authority(&self) -> &str {
        self.url
            .strip_prefix("http://")
            .or_else(|| self.url.strip_prefix("https://"))
            .unwrap_or(&self.url)
    }

    /// A plain HTTP/1.1 GET of `path` with extra `headers`.
    pub async fn http_get(&self, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<HttpReply> {
        http_request(self.authority(), "GET", path, headers, b"").await
    }

    pub async fn channel(&self) -> anyhow::Result<Channel> {
        let mut endpoint = tonic::transport::Endpoint::from_shared(self.url.clone())?;
        if let Some(ca) = &self.ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("read {}", ca.display()))?;
            endpoint = endpoint.tls_config(
                tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(pem)),
            )?;
        }
        Ok(endpoint.connect().await?)
    }

    /// A connection carrying `token` (none: a public caller).
    pub async fn conn(&self, token: Option<&str>) -> anyhow::Result<Conn> {
        Ok(tonic::service::interceptor::InterceptedService::new(
            self.channel().await?,
            bearer(token),
        ))
    }

    /// The capture client, as the administrator.
    pub async fn capture(&self) -> anyhow::Result<CaptureServiceClient<Conn>> {
        Ok(CaptureServiceClient::new(self.conn(self.admin_token.as_deref()).await?))
    }

    /// The trace client, as the administrator.
    pub async fn trace(&self) -> anyhow::Result<TraceServiceClient<Conn>> {
        Ok(TraceServiceClient::new(self.conn(self.admin_token.as_deref()).await?))
    }

    /// The admin client, as the administrator.
    pub async fn admin(&self) -> anyhow::Result<p::admin_service_client::AdminServiceClient<Conn>> {
        Ok(p::admin_service_client::AdminServiceClient::new(
            self.conn(self.admin_token.as_deref()).await?,
        ))
    }

    /// Issues a token through the admin API and returns it.
    pub async fn issue_token(
        &self,
        role: p::AccessRole,
        facility_ids: &[&str],
        party_id: &str,
        lifetime: Duration,
    ) -> anyhow::Result<String> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        let expires = now + lifetime;
        let reply = self
            .admin()
            .await?
            .create_token(p::CreateTokenRequest {
                command_id: format!("test-token-{}-{n}", now.as_nanos()),
                role: role as i32,
                facility_ids: facility_ids.iter().map(|s| s.to_string()).collect(),
                party_id: party_id.to_string(),
                expires_at: Some(prost_types::Timestamp {
                    seconds: i64::try_from(expires.as_secs())?,
                    nanos: i32::try_from(expires.subsec_nanos())?,
                }),
                label: format!("test {role:?}"),
            })
            .await?
            .into_inner();
        anyhow::ensure!(!reply.token.is_empty(), "no token in {reply:?}");
        Ok(reply.token)
    }

    /// The server's log and projection positions (public: a lagging
    /// projector may not know the newest tokens yet).
    pub async fn status(&self) -> anyhow::Result<p::StatusReply> {
        Ok(TraceServiceClient::new(self.conn(None).await?)
            .get_status(p::GetStatusRequest {})
            .await?
            .into_inner())
    }

    /// Waits until the projection has applied everything in the log (a
    /// status refused UNAVAILABLE, NATS slow to say where the stream ends,
    /// is asked again).
    pub async fn wait_projected(&self, timeout: Duration) -> anyhow::Result<p::StatusReply> {
        let client = TraceServiceClient::new(self.conn(None).await?);
        let last = std::sync::Mutex::new(String::new());
        let waited = wait_until(Instant::now() + timeout, || {
            let mut client = client.clone();
            let last = &last;
            async move {
                let (seen, s) = match client.get_status(p::GetStatusRequest {}).await {
                    Ok(s) => {
                        let s = s.into_inner();
                        (
                            format!("projection stuck at {} of {}", s.applied_position, s.log_position),
                            Some(s),
                        )
                    }
                    Err(e) if e.code() == tonic::Code::Unavailable => {
                        (format!("status unavailable: {}", e.message()), None)
                    }
                    Err(e) => return Err(e.into()),
                };
                if let Ok(mut l) = last.lock() {
                    *l = seen;
                }
                Ok(s.filter(|s| s.applied_position >= s.log_position))
            }
        })
        .await;
        let last = last.lock().map(|l| l.clone()).unwrap_or_default();
        waited.map_err(|e| match last.is_empty() {
            false => anyhow::anyhow!("{last}: {e}"),
            true => e,
        })
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.in_process.is_none(),
            "an in-process server cannot be killed; stop it"
        );
        if let Some(mut c) = self.child.take() {
            c.kill().context("kill the server")?;
            c.wait().context("reap the server")?;
        }
        Ok(())
    }

    /// Waits for the server to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let Some(c) = self.child.as_mut() else {
            bail!("server already stopped")
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = c.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("server still running after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        if let Some(mut running) = self.in_process.take() {
            running.stop()?;
            #[cfg(unix)]
            return Ok(std::os::unix::process::ExitStatusExt::from_raw(0));
        }
        let Some(mut c) = self.child.take() else {
            bail!("server already stopped")
        };
        let pid = c.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("send SIGTERM")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = c.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                bail!("server did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The clients carry `token` (e.g. a projector's, which makes none).
    pub fn with_token(mut self, token: Option<String>) -> Server {
        self.admin_token = token;
        self
    }

    /// Takes the data directory (and its cleanup) out, so a new server can reuse it.
    pub fn into_data_dir(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        let _ = self.kill9();
        (self.data_dir.clone(), self._temp.take())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut running) = self.in_process.take() {
            let _ = running.stop();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The shared test scenario (`jejak_domain::scenario`), which the domain,
/// genealogy and end-to-end tests all use.
pub use jejak_domain::scenario;

/// Records every command of `scenario` through `server`'s gRPC capture API,
/// as its administrator, in order; each must be accepted.
pub async fn capture_scenario(server: &Server, scenario: &scenario::Scenario) -> anyhow::Result<()> {
    let mut c = server.capture().await?;
    for (id, command) in scenario.commands() {
        let kind = jejak_proto::command_to_proto(&id, &command);
        jejak_client::import::send(&mut c, kind)
            .await
            .map_err(|s| anyhow::anyhow!("{id}: {:?}: {}", s.code(), s.message()))?;
    }
    Ok(())
}

/// Polls `probe` until it answers `Some`, or fails once `deadline` has
/// passed (or the probe fails): the one way tests wait for something, never
/// a fixed sleep. Polls every 10 ms, then backs off to 100 ms.
pub async fn wait_until<T, F, Fut>(deadline: Instant, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(found) = probe().await? {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            bail!("still not so after {:?}", started.elapsed());
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A capture client for `url` carrying `token`, for tasks that outlive a
/// `Server` borrow.
pub async fn capture_client(url: &str, token: Option<&str>) -> anyhow::Result<CaptureServiceClient<Conn>> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())?
        .connect()
        .await?;
    Ok(CaptureServiceClient::new(
        tonic::service::interceptor::InterceptedService::new(channel, bearer(token)),
    ))
}

/// Starts `cmd` (stdout piped) and waits for its "jejak listening on URL"
/// line; stdout's lines are kept as they come.
#[allow(clippy::type_complexity)]
fn spawn_listening(
    mut cmd: Command,
    timeout: Option<Duration>,
) -> anyhow::Result<(
    std::process::Child,
    String,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
)> {
    let mut child = cmd.spawn().context("start jejak")?;
    let stdout = child.stdout.take().context("capture the server's stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = lines.clone();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut kept) = keep.lock() {
                kept.push(line.clone());
            }
            if !sent {
                if let Some(url) = line.strip_prefix("jejak listening on ") {
                    let _ = tx.send(url.trim().to_string());
                    sent = true;
                }
            }
        }
    });
    let start_timeout = timeout.unwrap_or(Duration::from_secs(120));
    match rx.recv_timeout(start_timeout) {
        Ok(url) => Ok((child, url, lines)),
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().ok();
            bail!("jejak did not start listening within {start_timeout:?} (exit status {status:?})");
        }
    }
}

/// Runs the `jejak` binary with arguments and returns (status, stdout, stderr).
pub fn run_cli(args: &[&str]) -> anyhow::Result<(std::process::ExitStatus, String, String)> {
    let out = Command::new(jejak_bin()?)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .context("run jejak")?;
    Ok((
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A plain HTTP reply.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| format!("parse the reply as JSON: {}", self.text()))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), as a
/// browser or a scanner app would send it; chunked replies are decoded.
pub async fn http_request(
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<HttpReply> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("connect to {authority}"))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.context("send the request")?;
    // Read until the body is complete (by Content-Length or the last chunk)
    // or the peer closes: not every server closes after `Connection: close`.
    let mut raw = Vec::new();
    let read = async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = stream.read(&mut buf).await.context("read the reply")?;
            if n == 0 {
                return anyhow::Ok(());
            }
            raw.extend_from_slice(&buf[..n]);
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
                let body = raw.len() - split - 4;
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                match length {
                    Some(len) if body >= len => return Ok(()),
                    // Complete when the chunks parse through the last one.
                    None if head.contains("transfer-encoding: chunked") && dechunk(&raw[split + 4..]).is_ok() => {
                        return Ok(())
                    }
                    _ => {}
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(90), read)
        .await
        .context("the reply took longer than 90 s")??;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers in the reply")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body)?;
    }
    Ok(HttpReply { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk size line without its end")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).context("a chunk shorter than its size")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).context("a chunk without its end")?;
    }
}

pub mod nats;
pub mod receiver;
pub use nats::{Nats, NatsCluster, NatsNode};
