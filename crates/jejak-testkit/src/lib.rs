//! Test harnesses: the real `jejak` binary on a random loopback port with a
//! temporary data directory (killed on drop), gRPC clients for it, and
//! polling with a deadline instead of sleeping.

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
            .args(["build", "--quiet", "-p", "jejak", "--bin", "jejak"])
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
}

/// A running `jejak serve`, killed on drop.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts the server on 127.0.0.1 with a random port and waits until it listens.
    pub fn start(opts: ServerOptions) -> anyhow::Result<Server> {
        let (data_dir, temp) = match opts.data_dir {
            Some(d) => (d, None),
            None => {
                let t = tempfile::tempdir().context("create a temporary data directory")?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let mut cmd = Command::new(jejak_bin()?);
        cmd.arg(match opts.role {
            Role::Serve => "serve",
            Role::Capture => "capture",
            Role::Projector => "projector",
        });
        if opts.role != Role::Capture {
            cmd.arg("--data-dir").arg(&data_dir);
        }
        if let Some(nats) = &opts.nats {
            cmd.args(["--nats", nats]);
        }
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(&opts.extra_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if opts.demo {
            cmd.arg("--demo");
        }
        let mut child = cmd.spawn().context("start jejak")?;
        let stdout = child.stdout.take().context("capture the server's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(url) = line.strip_prefix("jejak listening on ") {
                        let _ = tx.send(url.trim().to_string());
                        sent = true;
                    }
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                bail!("jejak serve did not start listening within 120 s (exit status {status:?})");
            }
        };
        Ok(Server {
            child: Some(child),
            url,
            data_dir,
            _temp: temp,
        })
    }

    pub async fn channel(&self) -> anyhow::Result<Channel> {
        let endpoint = tonic::transport::Endpoint::from_shared(self.url.clone())?;
        Ok(endpoint.connect().await?)
    }

    pub async fn capture(&self) -> anyhow::Result<CaptureServiceClient<Channel>> {
        Ok(CaptureServiceClient::new(self.channel().await?))
    }

    pub async fn trace(&self) -> anyhow::Result<TraceServiceClient<Channel>> {
        Ok(TraceServiceClient::new(self.channel().await?))
    }

    /// The server's log and projection positions.
    pub async fn status(&self) -> anyhow::Result<p::StatusReply> {
        Ok(self
            .trace()
            .await?
            .get_status(p::GetStatusRequest {})
            .await?
            .into_inner())
    }

    /// Waits until the projection has applied everything in the log.
    pub async fn wait_projected(&self, timeout: Duration) -> anyhow::Result<p::StatusReply> {
        let deadline = Instant::now() + timeout;
        let mut client = self.trace().await?;
        loop {
            let s = client.get_status(p::GetStatusRequest {}).await?.into_inner();
            if s.applied_position >= s.log_position {
                return Ok(s);
            }
            if Instant::now() > deadline {
                bail!(
                    "projection stuck at {} of {} after {timeout:?}",
                    s.applied_position,
                    s.log_position
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
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

    /// Takes the data directory (and its cleanup) out, so a new server can reuse it.
    pub fn into_data_dir(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        let _ = self.kill9();
        (self.data_dir.clone(), self._temp.take())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
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

pub mod nats;
pub use nats::{Nats, NatsCluster, NatsNode};
