//! Helpers shared by the end-to-end tests: a demo server with its clients,
//! request building blocks, and the check that a refused command wrote nothing.

use std::future::Future;
use std::time::Duration;

use jejak_proto::v1 as p;
use jejak_proto::v1::capture_service_client::CaptureServiceClient;
use jejak_proto::v1::trace_service_client::TraceServiceClient;
use jejak_testkit::{Nats, Server, ServerOptions};
use tonic::{Code, Response, Status};

/// How long the projection may take to catch up with the log.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A quantity as the API takes it.
pub(crate) fn qty(value: &str, unit: p::Unit) -> Option<p::Quantity> {
    Some(p::Quantity {
        value: value.into(),
        unit: unit as i32,
    })
}

/// A server started with `--demo` (fully projected) and clients for it.
pub(crate) struct Demo {
    pub(crate) server: Server,
    pub(crate) capture: CaptureServiceClient<jejak_testkit::Conn>,
    pub(crate) trace: TraceServiceClient<jejak_testkit::Conn>,
    /// The nats-server of `serve --nats`, stopped after the server.
    _nats: Option<Nats>,
}

impl Demo {
    pub(crate) async fn start() -> Demo {
        let server = Server::start(ServerOptions {
            demo: true,
            ..Default::default()
        })
        .expect("start a demo server");
        Demo::attach(server).await
    }

    /// `jejak serve --nats --demo`: the distributed engine (capture and a
    /// projector in one process) on a nats-server of its own.
    pub(crate) async fn start_nats() -> Demo {
        let nats = Nats::start().expect("start nats-server");
        let server = Server::start(ServerOptions {
            demo: true,
            nats: Some(nats.url()),
            ..Default::default()
        })
        .expect("start a demo server on NATS");
        let mut demo = Demo::attach(server).await;
        demo._nats = Some(nats);
        demo
    }

    /// Clients for an already started server; waits until it is projected.
    pub(crate) async fn attach(server: Server) -> Demo {
        server.wait_projected(WAIT).await.expect("demo data projected");
        let capture = server.capture().await.expect("capture client");
        let trace = server.trace().await.expect("trace client");
        Demo {
            server,
            capture,
            trace,
            _nats: None,
        }
    }

    /// How many events the log holds (once the projection has applied all
    /// of it; positions count events only in the embedded log).
    pub(crate) async fn position(&self) -> u64 {
        self.server
            .wait_projected(WAIT)
            .await
            .expect("projection catches up")
            .events
    }

    /// Waits until the projection holds at least `events` events.
    pub(crate) async fn wait_position(&self, events: u64) {
        jejak_testkit::wait_until(std::time::Instant::now() + WAIT, || async {
            Ok((self.server.status().await?.events >= events).then_some(()))
        })
        .await
        .unwrap_or_else(|e| panic!("the log did not reach {events} events: {e}"));
    }

    /// A lot as the projection shows it, once everything written is projected.
    pub(crate) async fn lot(&mut self, id: &str) -> p::Lot {
        self.server.wait_projected(WAIT).await.expect("projection catches up");
        self.trace
            .get_lot(p::GetLotRequest { lot_id: id.into() })
            .await
            .unwrap_or_else(|s| panic!("get lot {id}: {s:?}"))
            .into_inner()
    }

    /// The status GetLot answers for a lot that should not exist.
    pub(crate) async fn lot_error(&mut self, id: &str) -> Status {
        self.server.wait_projected(WAIT).await.expect("projection catches up");
        match self.trace.get_lot(p::GetLotRequest { lot_id: id.into() }).await {
            Ok(l) => panic!("lot {id} exists: {:?}", l.into_inner()),
            Err(s) => s,
        }
    }
}

/// The `jejak-rule` metadata of a refusal, if any.
pub(crate) fn rule_of(status: &Status) -> Option<String> {
    status
        .metadata()
        .get("jejak-rule")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Runs `call`, asserts it is refused with `code` (and the `jejak-rule`
/// metadata `rule`, or none), and that the log did not grow.
pub(crate) async fn refused<T: std::fmt::Debug>(
    server: &Server,
    call: impl Future<Output = Result<Response<T>, Status>>,
    code: Code,
    rule: Option<&str>,
) -> Status {
    let before = server.status().await.expect("status before").log_position;
    let result = call.await;
    let after = server.status().await.expect("status after").log_position;
    let status = match result {
        Ok(reply) => panic!(
            "expected {code:?}, but the command was accepted: {:?}",
            reply.into_inner()
        ),
        Err(s) => s,
    };
    assert_eq!(status.code(), code, "wrong code: {status:?}");
    assert_eq!(
        rule_of(&status).as_deref(),
        rule,
        "wrong jejak-rule metadata: {status:?}"
    );
    assert_eq!(
        before, after,
        "a refused command moved the log from {before} to {after}: {status:?}"
    );
    // Every refusal carries the standard rich error model: an ErrorInfo in
    // the jejak domain whose reason is the broken rule, if one was.
    let details = tonic_types::StatusExt::get_error_details(&status);
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no google.rpc.ErrorInfo in {status:?}"));
    assert_eq!(info.domain, "jejak", "{status:?}");
    if let Some(rule) = rule {
        assert_eq!(info.reason, rule.to_uppercase().replace('-', "_"), "{status:?}");
    }
    status
}

/// Asserts the message of a refusal mentions every one of `parts`.
pub(crate) fn assert_mentions(status: &Status, parts: &[&str]) {
    for part in parts {
        assert!(
            status.message().contains(part),
            "message {:?} does not mention {part:?}",
            status.message()
        );
    }
}

/// Runs each write-side rule test against both engines: the embedded one
/// (`serve`) and the distributed one (`serve --nats`, on a real
/// nats-server), as the log conformance suite does for both logs.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Demo::start().await).await
                }
            )*
        }

        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Demo::start_nats().await).await
                }
            )*
        }
    };
}

pub(crate) use on_both_engines;

/// What a `Relay` does to one connection it takes (the first, or the `nth`).
#[derive(Clone, Copy)]
pub(crate) enum First {
    /// Relays it like the others.
    Relayed,
    /// Carries only what the client sends (the server's bytes are dropped)
    /// until it is cut: the server reads and answers requests whose
    /// answers never arrive.
    OneWay,
    /// Closes it once it has carried that many bytes from the server: a
    /// reply broken off in the middle.
    CutAfter(u64),
}

/// A TCP relay in front of a server, to break its connections from outside.
pub(crate) struct Relay {
    pub(crate) url: String,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    /// Relays both ways, the first connection as `first` says.
    pub(crate) async fn start(server_url: &str, first: First) -> Relay {
        Relay::start_nth(server_url, 0, first).await
    }

    /// Relays both ways, connection `nth` (from 0) as `first` says.
    pub(crate) async fn start_nth(server_url: &str, nth: usize, first: First) -> Relay {
        let server = server_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let url = format!("http://{}", listener.local_addr().expect("the relay's address"));
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&server).await else {
                    continue;
                };
                let how = match counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                    n if n == nth => first,
                    _ => First::Relayed,
                };
                let one_way = matches!(how, First::OneWay);
                let mut cuts = cuts.clone();
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let relay = async {
                        use tokio::io::AsyncReadExt;
                        if let First::Relayed = how {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            return;
                        }
                        let (mut from_client, mut to_client) = client.split();
                        let (mut from_server, mut to_server) = upstream.split();
                        match how {
                            First::OneWay => {
                                let mut sink = tokio::io::sink();
                                let _ = tokio::join!(
                                    tokio::io::copy(&mut from_client, &mut to_server),
                                    tokio::io::copy(&mut from_server, &mut sink)
                                );
                            }
                            First::CutAfter(bytes) => {
                                let mut limited = (&mut from_server).take(bytes);
                                tokio::select! {
                                    _ = tokio::io::copy(&mut from_client, &mut to_server) => {}
                                    _ = tokio::io::copy(&mut limited, &mut to_client) => {}
                                }
                            }
                            First::Relayed => {}
                        }
                    };
                    let cut = tokio::select! {
                        _ = relay => false,
                        _ = cuts.changed() => true,
                    };
                    // A connection relaying both ways is cut as the client
                    // sends its next request, which is lost with it: the
                    // client learns of the break from that request.
                    if cut && !one_way {
                        use tokio::io::AsyncReadExt;
                        let _ = client.read(&mut [0u8; 1]).await;
                    }
                    // Both ends are closed when this ends.
                });
            }
        });
        Relay { url, connections, cut }
    }

    /// Cuts every connection open now: one relaying the client's bytes only
    /// at once, one relaying both ways when the client next sends on it.
    /// New connections are relayed.
    pub(crate) fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// How many connections the relay has taken.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}
