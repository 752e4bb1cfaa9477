//! Real `nats-server -js` processes for the tests: one node, or a cluster
//! of three, on random loopback ports with temporary stores, killed on drop.
//! They run the configuration files in `deploy/nats/`, so the tests exercise
//! what is deployed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::workspace_root;

/// How to get nats-server when it is missing.
const INSTALL_HINT: &str = "nats-server is not installed: install it with `sudo apt-get install nats-server` \
     (Debian/Ubuntu), or run .ci/test, which installs it when missing";

/// The `nats-server` executable: `$NATS_SERVER`, or the one on `PATH`.
pub fn nats_server_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")]) {
        let candidate = dir.join("nats-server");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("{INSTALL_HINT}")
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(l.local_addr()?.port())
}

/// `GET path` on a monitoring port; the body of a `200 OK`.
fn http_body(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_string())
}

/// `GET path` on the node's monitoring port; true on `200 OK`.
fn http_ok(port: u16, path: &str) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200")
}

/// Starts what `start` starts, again with other ports when a port found
/// free was taken (by another test) before nats-server could bind it.
fn on_free_ports<T>(mut start: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let mut attempts = 0;
    loop {
        match start() {
            Err(e) if attempts < 5 && format!("{e:#}").contains("address already in use") => attempts += 1,
            other => return other,
        }
    }
}

/// One nats-server process with JetStream.
pub struct NatsNode {
    child: Option<Child>,
    pub name: String,
    pub port: u16,
    pub monitor_port: u16,
    pub cluster_port: Option<u16>,
    store: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
}

impl NatsNode {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The directory of its JetStream store.
    pub fn store_dir(&self) -> &Path {
        &self.store
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.store.join("nats-server.log"))
            .context("open the nats-server log")?;
        let mut cmd = Command::new(nats_server_bin()?);
        cmd.arg("-c")
            .arg(&self.config)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .env("NATS_STORE_DIR", &self.store)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(cp) = self.cluster_port {
            cmd.args(["--cluster", &format!("nats://127.0.0.1:{cp}")]);
        }
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!("{INSTALL_HINT}")
            } else {
                anyhow::anyhow!("start nats-server: {e}")
            }
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the node answers its health check (JetStream included).
    pub fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if http_ok(self.monitor_port, "/healthz") {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    let log = std::fs::read_to_string(self.store.join("nats-server.log")).unwrap_or_default();
                    bail!("nats-server {} exited ({status}):\n{log}", self.name);
                }
            }
            if Instant::now() > deadline {
                bail!("nats-server {} not healthy within {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGKILL: the process ends at once, with whatever it had not written.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill().context("kill nats-server")?;
            c.wait().context("reap nats-server")?;
        }
        Ok(())
    }

    /// SIGSTOP: the node stays connected but answers nothing (a stalled
    /// disk, a paused VM) until `resume`.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let Some(c) = self.child.as_ref() else {
            bail!("nats-server {} is not running", self.name)
        };
        let status = Command::new("kill")
            .args([signal, &c.id().to_string()])
            .status()
            .with_context(|| format!("send {signal} to nats-server"))?;
        anyhow::ensure!(status.success(), "kill {signal} nats-server {}: {status}", self.name);
        Ok(())
    }

    /// Stops the node the way an operator would (SIGINT: it closes its
    /// store and connections) and waits for it to exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut c) = self.child.take() else { return Ok(()) };
        Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status()
            .context("send SIGINT to nats-server")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while c.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = c.kill();
                bail!("nats-server {} did not stop within 30 s of SIGINT", self.name);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Stops the node and starts it again on the same ports and store.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// Starts a node that was stopped or killed.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.is_none() {
            self.spawn()?;
        }
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The node's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for NatsNode {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// A single JetStream node using `deploy/nats/jetstream.conf`.
pub struct Nats {
    pub node: NatsNode,
    _temp: tempfile::TempDir,
}

impl Nats {
    pub fn start() -> anyhow::Result<Nats> {
        on_free_ports(|| {
            let temp = tempfile::tempdir().context("create a temporary JetStream store")?;
            let mut node = NatsNode {
                child: None,
                name: "jejak-nats".into(),
                port: free_port()?,
                monitor_port: free_port()?,
                cluster_port: None,
                store: temp.path().to_path_buf(),
                config: workspace_root().join("deploy/nats/jetstream.conf"),
                env: Vec::new(),
            };
            node.spawn()?;
            node.wait_healthy(Duration::from_secs(30))?;
            Ok(Nats { node, _temp: temp })
        })
    }

    pub fn url(&self) -> String {
        self.node.url()
    }

    /// Stops the server and starts it again on the same port and store,
    /// waiting until it is healthy.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.node.restart()?;
        self.node.wait_healthy(Duration::from_secs(30))
    }
}

/// Three JetStream nodes in one cluster, using `deploy/nats/cluster.conf`.
pub struct NatsCluster {
    pub nodes: Vec<NatsNode>,
    _temp: tempfile::TempDir,
}

impl NatsCluster {
    pub fn start() -> anyhow::Result<NatsCluster> {
        on_free_ports(Self::start_once)
    }

    fn start_once() -> anyhow::Result<NatsCluster> {
        let temp = tempfile::tempdir().context("create temporary JetStream stores")?;
        let cluster_ports = [free_port()?, free_port()?, free_port()?];
        let routes: Vec<(String, String)> = cluster_ports
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("NATS_ROUTE_{}", i + 1), format!("nats://127.0.0.1:{p}")))
            .collect();
        let mut nodes = Vec::new();
        for (i, cp) in cluster_ports.iter().enumerate() {
            let name = format!("nats-{}", i + 1);
            let store = temp.path().join(&name);
            std::fs::create_dir_all(&store)?;
            let mut env = routes.clone();
            env.push(("NATS_SERVER_NAME".into(), name.clone()));
            let mut node = NatsNode {
                child: None,
                name,
                port: free_port()?,
                monitor_port: free_port()?,
                cluster_port: Some(*cp),
                store,
                config: workspace_root().join("deploy/nats/cluster.conf"),
                env,
            };
            node.spawn()?;
            nodes.push(node);
        }
        for n in &mut nodes {
            n.wait_healthy(Duration::from_secs(60))?;
        }
        Ok(NatsCluster { nodes, _temp: temp })
    }

    /// Every node's client URL, comma-separated (as `--nats` takes them).
    pub fn urls(&self) -> String {
        self.nodes.iter().map(NatsNode::url).collect::<Vec<_>>().join(",")
    }

    /// The name of the node leading `stream`, asked of any running node's
    /// monitoring endpoint (`/jsz`).
    pub fn stream_leader(&self, stream: &str) -> anyhow::Result<Option<String>> {
        for n in self.nodes.iter().filter(|n| n.is_running()) {
            let Some(body) = http_body(n.monitor_port, "/jsz?accounts=true&streams=true") else {
                continue;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else {
                continue;
            };
            let leader = json["account_details"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
                .find(|s| s["name"] == stream)
                .and_then(|s| s["cluster"]["leader"].as_str())
                .map(str::to_string);
            if leader.is_some() {
                return Ok(leader);
            }
        }
        Ok(None)
    }

    /// The node of this name (the server names a stream's leader by it).
    pub fn node_mut(&mut self, name: &str) -> Option<&mut NatsNode> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_taken_in_between_is_tried_again_and_other_failures_are_not() {
        let mut calls = 0;
        let started = on_free_ports(|| {
            calls += 1;
            match calls {
                1 | 2 => bail!("nats-server exited: listen tcp 127.0.0.1:4222: bind: address already in use"),
                _ => Ok(calls),
            }
        });
        assert_eq!(started.ok(), Some(3));

        // How many times a start that always fails with `error` is made.
        let attempts = |error: &'static str| {
            let mut calls = 0;
            let result = on_free_ports(|| -> anyhow::Result<()> {
                calls += 1;
                bail!(error)
            });
            assert!(result.is_err());
            calls
        };
        assert_eq!(
            attempts("nats-server is not installed"),
            1,
            "only a port clash is tried again"
        );
        assert_eq!(
            attempts("bind: address already in use"),
            6,
            "five more attempts, then the error"
        );
    }
}
