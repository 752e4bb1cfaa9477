//! What the deployment files rely on: metrics and health for Prometheus and
//! probes on a private listener without a token, the client's address
//! behind a trusted reverse proxy, and a request id on every answer.

use std::time::Duration;

use jejak_testkit::{http_request, Server, ServerOptions};

/// The address the server printed for its private metrics listener.
fn metrics_address(server: &Server) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = server
            .stdout_lines()
            .into_iter()
            .find(|l| l.starts_with("jejak metrics on http://"))
        {
            return line
                .trim_start_matches("jejak metrics on http://")
                .trim_end_matches("/metrics")
                .to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no metrics address printed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_need_no_token_on_the_private_listener_and_one_on_the_public_port() {
    let server = Server::start(ServerOptions {
        demo: true,
        extra_args: vec!["--metrics-listen".into(), "127.0.0.1:0".into()],
        ..Default::default()
    })
    .expect("start a server with a metrics listener");
    let private = metrics_address(&server);
    let scraped = http_request(&private, "GET", "/metrics", &[], b"")
        .await
        .expect("scrape");
    assert_eq!(scraped.status, 200, "{}", scraped.text());
    assert!(
        scraped
            .header("content-type")
            .is_some_and(|t| t.contains("openmetrics")),
        "{:?}",
        scraped.headers
    );
    for metric in ["jejak_log_verified", "jejak_checkpoint_tree_size"] {
        assert!(scraped.text().contains(metric), "{metric} missing from the scrape");
    }
    let health = http_request(&private, "GET", "/healthz", &[], b"")
        .await
        .expect("health");
    assert_eq!((health.status, health.text().trim()), (200, "ok"));
    // Nothing else is served there: the API stays on the public port.
    let other = http_request(&private, "GET", "/01/08997001001018", &[], b"")
        .await
        .expect("GET");
    assert_eq!(other.status, 404);
    // The public port still wants an administrator for its own /metrics.
    let public = http_request(server.authority(), "GET", "/metrics", &[], b"")
        .await
        .expect("GET");
    assert_eq!(public.status, 401, "{}", public.text());
}

async fn public_statuses(server: &Server, forwarded_for: impl Fn(usize) -> String, n: usize) -> (usize, usize) {
    let (mut ok, mut limited) = (0, 0);
    for i in 0..n {
        let xff = forwarded_for(i);
        let reply = http_request(
            server.authority(),
            "GET",
            "/.well-known/gs1resolver",
            &[("X-Forwarded-For", &xff)],
            b"",
        )
        .await
        .expect("GET");
        match reply.status {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("HTTP {other}: {}", reply.text()),
        }
    }
    (ok, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_public_limit_keys_on_the_forwarded_client() {
    let start = |trusted: bool| {
        let mut extra_args = Vec::new();
        if trusted {
            extra_args = vec!["--trusted-proxy".into(), "127.0.0.0/8".into()];
        }
        Server::start(ServerOptions {
            demo: true,
            rate_limits: Some((2000.0, 5.0)),
            extra_args,
            ..Default::default()
        })
        .expect("start a server")
    };
    let behind = start(true);
    // Forty clients (IPv4, and IPv6 in different /64s) behind the proxy on
    // loopback: each has a bucket of its own.
    let (ok, limited) = public_statuses(
        &behind,
        |i| match i % 2 {
            0 => format!("198.51.100.{i}"),
            _ => format!("2001:db8:{i:x}::1"),
        },
        40,
    )
    .await;
    assert_eq!((ok, limited), (40, 0));
    // One client forwarded forty times, with a spoofed hop to its left and
    // addresses in one IPv6 /64: its bucket runs out.
    let (_, limited) = public_statuses(&behind, |_| "6.6.6.6, 203.0.113.7".into(), 40).await;
    assert!(limited >= 20, "one forwarded client is limited: {limited} of 40");
    let (_, limited) = public_statuses(&behind, |i| format!("2001:db8:77::{i:x}"), 40).await;
    assert!(limited >= 20, "one IPv6 /64 is one client: {limited} of 40");
    // Without --trusted-proxy the header is not believed: every request
    // is loopback's, whatever it claims.
    let direct = start(false);
    let (_, limited) = public_statuses(&direct, |i| format!("198.51.100.{i}"), 40).await;
    assert!(limited >= 20, "a forged header buys nothing: {limited} of 40");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id_and_a_callers_own_is_kept() {
    let server = Server::start(ServerOptions {
        demo: true,
        ..Default::default()
    })
    .expect("start a server");
    let mut ids = std::collections::HashSet::new();
    for path in ["/.well-known/gs1resolver", "/metrics", "/no/such/path"] {
        let reply = http_request(server.authority(), "GET", path, &[], b"")
            .await
            .expect("GET");
        let id = reply
            .header("x-request-id")
            .unwrap_or_else(|| panic!("{path}: no x-request-id"));
        assert!(ids.insert(id.to_string()), "{path}: id {id} given twice");
    }
    let reply = http_request(
        server.authority(),
        "GET",
        "/.well-known/gs1resolver",
        &[("X-Request-Id", "lb-7f3a.42")],
        b"",
    )
    .await
    .expect("GET");
    assert_eq!(reply.header("x-request-id"), Some("lb-7f3a.42"));
    // Something that is not a plain token is replaced.
    let reply = http_request(
        server.authority(),
        "GET",
        "/.well-known/gs1resolver",
        &[("X-Request-Id", "a b<script>")],
        b"",
    )
    .await
    .expect("GET");
    assert_ne!(reply.header("x-request-id"), Some("a b<script>"));
    // gRPC answers carry it too.
    let mut trace = server.trace().await.expect("trace client");
    let status = trace
        .get_status(jejak_proto::v1::GetStatusRequest::default())
        .await
        .expect("status");
    assert!(status.metadata().get("x-request-id").is_some());
}
