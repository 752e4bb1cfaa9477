//! The idle-connection attack: `idle_connections` connections that never
//! send a byte, opened at once; then health checks on a fresh connection
//! are timed, and the server's CPU use measured while the idle ones sit.

use std::time::{Duration, Instant};

use jejak_client::Target;

use crate::bench::{micros, percentile, start_server, stop, BenchOptions, HealthCheckRequest};

/// CPU seconds the process has used (user and system).
fn cpu_seconds(pid: u32) -> Option<f64> {
    crate::bench::cpu_time(pid).map(|d| d.as_secs_f64())
}

pub(crate) async fn connections(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let dir = opts.dir.join("connections");
    let _ = std::fs::remove_dir_all(&dir);
    // The server keeps the descriptor limit it was started with; this
    // process raises its own afterwards, to open the connections.
    let server = start_server(&dir, false).await?;
    jejak_server::files::raise_descriptor_limit();
    let pid = server.pid();
    let mut idle = Vec::with_capacity(opts.idle_connections);
    let mut refused = 0;
    // The attacker on an address of its own (127.0.0.2); the health checks
    // come from 127.0.0.1.
    let to: std::net::SocketAddr = server.authority().parse()?;
    for _ in 0..opts.idle_connections {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind("127.0.0.2:0".parse()?)?;
        match tokio::time::timeout(Duration::from_secs(2), socket.connect(to)).await {
            Ok(Ok(c)) => idle.push(c),
            _ => refused += 1,
        }
    }
    let cpu_before = pid.and_then(cpu_seconds);
    let watched = Instant::now();
    // Health checks on a fresh connection while the idle ones sit.
    let mut lat = Vec::new();
    let mut failed = 0;
    for _ in 0..opts.page_requests.min(200) {
        let t = Instant::now();
        let answered = tokio::time::timeout(Duration::from_secs(5), async {
            let mut c = crate::bench::LoadClient::connect(&Target::new(server.url.clone())).await?;
            c.unary(
                "/grpc.health.v1.Health/Check",
                &HealthCheckRequest { service: String::new() },
            )
            .await
        })
        .await;
        match answered {
            Ok(Ok(_)) => lat.push(t.elapsed()),
            _ => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = match (cpu_before, pid.and_then(cpu_seconds)) {
        (Some(a), Some(b)) => format!("{:.0} %", (b - a) / watched.elapsed().as_secs_f64() * 100.0),
        _ => "unknown".into(),
    };
    // Which of the idle connections the server has closed by now.
    let closed = idle
        .iter()
        .filter(|c| {
            let mut buf = [0u8; 1];
            match c.try_read(&mut buf) {
                Ok(0) => true,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                Ok(_) => false,
            }
        })
        .count();
    drop(idle);
    stop(server).await;
    lat.sort();
    Ok(vec![
        (
            format!("{} idle connections opened", opts.idle_connections),
            format!(
                "{} connected, {refused} not within 2 s",
                opts.idle_connections - refused
            ),
        ),
        (
            "health checks on a fresh connection meanwhile, p50 / p99".into(),
            format!(
                "{} / {} ({} answered, {failed} not within 5 s)",
                micros(percentile(&lat, 0.5)),
                micros(percentile(&lat, 0.99)),
                lat.len()
            ),
        ),
        ("server CPU while they sit".into(), cpu),
        (
            "idle connections the server had closed by the end".into(),
            closed.to_string(),
        ),
    ])
}
