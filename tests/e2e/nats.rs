//! jejak on NATS JetStream, against real nats-server processes: the same
//! commands, rules and queries as the embedded server; separate capture and
//! projector services; and what happens when processes die.

use jejak_server::demo::ids::RICE_BAG_LOT;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jejak_log::jetstream::message_of;
use jejak_proto::v1 as p;
use jejak_testkit::{wait_until, Nats, Role, Server, ServerOptions};
use tonic::Code;

use crate::crash::{digest, drying, master_data, receipt, times_recorded};

const DEMO: &str = include_str!("../../crates/jejak-server/demo/demo.jsonl");

fn on(nats: &Nats, role: Role) -> ServerOptions {
    ServerOptions {
        role,
        nats: Some(nats.url()),
        ..Default::default()
    }
}

/// How many events the stream holds (a message holds one, or a batch),
/// each event id once.
async fn stream_events(nats: &Nats) -> anyhow::Result<u64> {
    stream_events_on(nats.url(), 1).await
}

/// `stream_events` of a stream of `replicas` on the servers at `urls`;
/// asked again while the stream is unavailable (a cluster that lost a node
/// settling its consumers), for up to a minute.
async fn stream_events_on(urls: String, replicas: usize) -> anyhow::Result<u64> {
    let mut config = jejak_log::JetStreamConfig::new(urls);
    config.replicas = replicas;
    let log = jejak_log::JetStreamLog::connect(config, Duration::from_secs(10)).await?;
    let events = wait_until(Instant::now() + Duration::from_secs(60), || async {
        match jejak_log::ChainLog::read_range(&log, 1, usize::MAX).await {
            Ok(events) => Ok(Some(events)),
            Err(jejak_log::LogError::Unavailable(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let ids: HashSet<&str> = events.iter().map(|e| e.envelope.event_id.as_str()).collect();
    anyhow::ensure!(ids.len() == events.len(), "the stream holds an event id twice");
    Ok(events.len() as u64)
}

fn qty(v: &str, unit: p::Unit) -> Option<p::Quantity> {
    Some(p::Quantity {
        value: v.into(),
        unit: unit as i32,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_nats_keeps_the_rules_and_answers_the_queries() -> anyhow::Result<()> {
    let nats = Nats::start()?;
    let server = Server::start(ServerOptions {
        demo: true,
        ..on(&nats, Role::Serve)
    })?;
    let status = server.wait_projected(Duration::from_secs(60)).await?;
    // The demo, then the administrator token issued at start.
    let demo_commands = DEMO.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    assert_eq!(status.events, demo_commands + 1, "{status:?}");
    assert_eq!(status.lag, 0, "{status:?}");
    assert_eq!(stream_events(&nats).await?, demo_commands + 1);

    // A demo trace crosses facilities exactly as on the embedded store.
    let mut t = server.trace().await?;
    let last_lot = DEMO
        .lines()
        .filter_map(|l| l.split("\"lotId\":\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .next_back()
        .expect("the demo has lots")
        .to_string();
    let trace = t
        .backward_trace(p::TraceRequest {
            target: Some(p::Target {
                kind: Some(p::target::Kind::LotId(last_lot.clone())),
            }),
            max_depth: 0,
            max_nodes: 0,
        })
        .await?
        .into_inner();
    assert!(trace.nodes.len() > 1, "{last_lot}: {trace:?}");

    // The projector's genealogy answers label URIs over HTTP too.
    let page = server
        .http_get(crate::resolver::RICE_BAG, &[("Accept", "application/json")])
        .await?;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.json()?["lotId"], RICE_BAG_LOT);

    // Rules: over-consumption is refused and writes nothing.
    master_data(&server).await?;
    let mut c = server.capture().await?;
    let first = c.receive_material(receipt(0, 0)).await?.into_inner();
    assert!(!first.replayed);
    // The process holds one genealogy: what it captured, it answers for at
    // once, without waiting for its projector to read the event back.
    let lot = t
        .get_lot(p::GetLotRequest { lot_id: "L0-0".into() })
        .await
        .map_err(|e| anyhow::anyhow!("the lot just received is not found: {e:?}"))?
        .into_inner();
    assert_eq!((lot.lot_id.as_str(), lot.facility_id.as_str()), ("L0-0", "fac"));
    let before = server.wait_projected(Duration::from_secs(30)).await?.log_position;
    let mut greedy = drying(0, 0);
    greedy.command_id = "greedy".into();
    greedy.inputs[0].quantity = qty("1500", p::Unit::Kg);
    let err = c
        .process_lots(greedy)
        .await
        .expect_err("over-consumption must be refused");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("L0-0"), "{}", err.message());
    // An unknown product is NOT_FOUND, after the capture cache caught up.
    let mut unknown = receipt(0, 1);
    unknown.product_id = "no-such-product".into();
    let err = c.receive_material(unknown).await.expect_err("unknown product");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(
        server.wait_projected(Duration::from_secs(30)).await?.log_position,
        before
    );

    // Idempotency: the same id and content gives the first result; other content is refused.
    let again = c.receive_material(receipt(0, 0)).await?.into_inner();
    assert!(again.replayed);
    assert_eq!(
        (again.position, again.hash.as_str()),
        (first.position, first.hash.as_str())
    );
    let mut other = receipt(0, 0);
    other.quantity = qty("999", p::Unit::Kg);
    let err = c.receive_material(other).await.expect_err("same id, other content");
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(
        server.wait_projected(Duration::from_secs(30)).await?.log_position,
        before
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projector_killed_ten_times_during_capture_ends_equal_to_a_clean_rebuild() -> anyhow::Result<()> {
    let nats = Nats::start()?;
    let capture = Server::start(on(&nats, Role::Capture))?;
    let first = Server::start(on(&nats, Role::Projector))?;
    master_data(&capture).await?;

    // At least 10,000 pairs = 20,000 events, captured until the projector
    // has been killed with SIGKILL ten times and restarted on its store.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (capture_url, token) = (capture.url.clone(), capture.admin_token.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            let capture = CaptureHandle(capture_url, token);
            capture.pairs_until(8, 1250, stop).await
        })
    };
    let started = Instant::now();
    // Ten kills, each once the restarted projector has applied something
    // since the last one (or has nothing left to apply): the kills are
    // counted by what the projector did, whatever the speed of the load.
    let (mut data_dir, mut keep) = first.into_data_dir();
    let (mut kills, mut during_load, mut applied) = (0, 0, 0);
    while kills < 10 {
        let p = Server::start(ServerOptions {
            data_dir: Some(data_dir.clone()),
            ..on(&nats, Role::Projector)
        })?;
        let load_done = || load.is_finished();
        applied = wait_until(Instant::now() + Duration::from_secs(60), || async {
            let s = p.status().await?;
            let progressed = s.applied_position > applied;
            let nothing_left = load_done() && s.applied_position >= s.log_position;
            Ok((progressed || nothing_left).then_some(s.applied_position))
        })
        .await?;
        during_load += usize::from(!load.is_finished());
        let (d, k) = p.into_data_dir(); // SIGKILL
        kills += 1;
        data_dir = d;
        keep = keep.or(k);
    }
    stop.store(true, Ordering::Relaxed);
    let acked = load.await??;
    assert!(acked.len() >= 20_000, "{}", acked.len());
    eprintln!(
        "{} events captured in {:.1?}; the projector was killed {kills} times after applying more, {during_load} of them during the capture",
        acked.len(),
        started.elapsed()
    );
    assert_eq!(during_load, 10, "every kill lands while the capture runs");
    // Appends to the one facility were pipelined, not one round trip each.
    let pipelined = counter(&capture, "jejak_append_pipelined_total")?;
    assert!(pipelined > 1000, "only {pipelined} appends were pipelined");
    let projector = Server::start(ServerOptions {
        data_dir: Some(data_dir.clone()),
        ..on(&nats, Role::Projector)
    })?
    .with_token(capture.admin_token.clone());
    let status = projector.wait_projected(Duration::from_secs(120)).await?;
    // Every event applied once: the master data plus every acknowledged command.
    assert_eq!(status.events, stream_events(&nats).await?, "{status:?}");
    let mut t = projector.trace().await?;
    for w in 0..8 {
        let l = t
            .get_lot(p::GetLotRequest {
                lot_id: format!("L{w}-1249"),
            })
            .await?
            .into_inner();
        assert_eq!(l.balance.expect("balance is set").value, "0");
    }

    // A clean projector, from the first event of the stream, ends identical.
    let clean = Server::start(on(&nats, Role::Projector))?;
    let clean_status = clean.wait_projected(Duration::from_secs(120)).await?;
    assert_eq!(clean_status.log_position, status.log_position);
    let mut projector = projector;
    let mut clean = clean;
    assert!(projector.stop()?.success());
    assert!(clean.stop()?.success());
    assert_eq!(digest(&projector.data_dir)?, digest(&clean.data_dir)?);
    drop(keep);
    Ok(())
}

/// The size of the transparency log's published checkpoint.
async fn checkpoint_size(server: &Server) -> anyhow::Result<Option<u64>> {
    let reply = server.http_get("/log/checkpoint", &[]).await?;
    Ok(match reply.status {
        200 => reply.text().lines().nth(1).and_then(|s| s.parse().ok()),
        _ => None,
    })
}

/// `serve --nats` reads the stream once, its capture cache feeding its
/// projector from the stream's start: killed and started again on its data
/// directory, it fills the cache from the start while the projection and
/// the tree resume where they stopped, and nothing is applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_nats_started_again_on_its_data_directory_resumes_and_applies_nothing_twice() -> anyhow::Result<()> {
    let nats = Nats::start()?;
    let data = tempfile::tempdir()?;
    let opts = || ServerOptions {
        data_dir: Some(data.path().to_path_buf()),
        ..on(&nats, Role::Serve)
    };
    let mut first = Server::start(opts())?;
    master_data(&first).await?;
    let mut c = first.capture().await?;
    let mut recorded = Vec::new();
    for i in 0..40 {
        recorded.push(c.receive_material(receipt(0, i)).await?.into_inner());
    }
    let before = first.wait_projected(Duration::from_secs(60)).await?;
    assert_eq!(before.lag, 0, "{before:?}");
    let end = before.log_position;
    wait_until(Instant::now() + Duration::from_secs(60), || async {
        Ok((checkpoint_size(&first).await? == Some(before.events)).then_some(()))
    })
    .await?;
    first.kill9()?;

    let second = Server::start(opts())?.with_token(first.admin_token.clone());
    let status = second.wait_projected(Duration::from_secs(60)).await?;
    assert_eq!(
        (status.events, status.log_position, status.lag),
        (before.events, end, 0),
        "{status:?}"
    );
    // The cache holds what was captured before: a command sent again is
    // answered with its first result.
    let mut c = second.capture().await?;
    let again = c.receive_material(receipt(0, 7)).await?.into_inner();
    assert!(again.replayed, "{again:?}");
    assert_eq!(
        (again.position, again.hash.as_str()),
        (recorded[7].position, recorded[7].hash.as_str())
    );
    // A new one goes after them, and is projected once.
    let new = c.receive_material(receipt(0, 40)).await?.into_inner();
    assert!(!new.replayed, "{new:?}");
    assert_eq!(message_of(new.position), message_of(end) + 1);
    let status = second.wait_projected(Duration::from_secs(60)).await?;
    assert_eq!(
        (status.events, status.log_position),
        (before.events + 1, new.position),
        "{status:?}"
    );
    let mut t = second.trace().await?;
    assert_eq!(times_recorded(&mut t, "L0-40", "rcv-0-40").await?, 1);
    assert_eq!(times_recorded(&mut t, "L0-7", "rcv-0-7").await?, 1);
    // The tree holds each event once: its checkpoint reaches the log's end
    // and no further.
    wait_until(Instant::now() + Duration::from_secs(60), || async {
        Ok((checkpoint_size(&second).await? == Some(before.events + 1)).then_some(()))
    })
    .await?;
    Ok(())
}

/// A projector stores what it applied once the stream goes idle (not only
/// every so many thousand events): killed then, it has lost nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_projector_stores_what_it_applied_and_a_kill_then_loses_none_of_it() -> anyhow::Result<()> {
    let nats = Nats::start()?;
    let capture = Server::start(on(&nats, Role::Capture))?;
    let projector = Server::start(on(&nats, Role::Projector))?.with_token(capture.admin_token.clone());
    master_data(&capture).await?;
    CaptureHandle(capture.url.clone(), capture.admin_token.clone())
        .pairs(2, 50)
        .await?;
    let status = projector.wait_projected(Duration::from_secs(60)).await?;
    // Far fewer events than the projection stores at once while busy.
    let want = format!("jejak_projector_stored_position {}", status.log_position);
    wait_until(Instant::now() + Duration::from_secs(30), || async {
        Ok(http_get(&projector, "/metrics")?
            .lines()
            .any(|l| l == want)
            .then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("the idle projector never stored position {}: {e}", status.log_position))?;
    let (dir, _keep) = projector.into_data_dir(); // SIGKILL
    let stored = jejak_genealogy::Projection::open(&dir.join("genealogy"))?;
    assert_eq!(stored.position(), status.log_position);
    Ok(())
}

/// A capture service by URL, for tasks that outlive a `Server` borrow.
struct CaptureHandle(String, Option<String>);

impl CaptureHandle {
    async fn pairs(&self, workers: usize, pairs: usize) -> anyhow::Result<Vec<String>> {
        self.pairs_until(workers, pairs, Arc::new(AtomicBool::new(true))).await
    }

    /// `workers` clients, each capturing at least `pairs` receipt and
    /// drying pairs, and going on until `stop` is set.
    async fn pairs_until(&self, workers: usize, pairs: usize, stop: Arc<AtomicBool>) -> anyhow::Result<Vec<String>> {
        let acked: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut tasks = Vec::new();
        for w in 0..workers {
            let mut client = jejak_testkit::capture_client(&self.0, self.1.as_deref()).await?;
            let acked = acked.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                for i in (0..).take_while(|&i| i < pairs || !stop.load(Ordering::Relaxed)) {
                    client.receive_material(receipt(w, i)).await?;
                    acked
                        .lock()
                        .expect("no panics while locked")
                        .push(format!("rcv-{w}-{i}"));
                    client.process_lots(drying(w, i)).await?;
                    acked
                        .lock()
                        .expect("no panics while locked")
                        .push(format!("dry-{w}-{i}"));
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        let acked = std::mem::take(&mut *acked.lock().expect("no panics while locked"));
        Ok(acked)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_capture_instances_racing_on_one_facility_never_overdraw_a_lot() -> anyhow::Result<()> {
    let nats = Nats::start()?;
    let a = Server::start(on(&nats, Role::Capture))?;
    let b = Server::start(on(&nats, Role::Capture))?;
    let projector = Server::start(on(&nats, Role::Projector))?.with_token(a.admin_token.clone());
    master_data(&a).await?;
    // Ten receipts of 1000 kg; then 40 consumers split over both instances
    // each try to take 300 kg of one of them, four per lot: three win and
    // the fourth finds 100 kg left, whatever order the race settles in.
    let mut c = a.capture().await?;
    for i in 0..10 {
        c.receive_material(receipt(9, i)).await?;
    }
    let mut tasks = Vec::new();
    for k in 0..40usize {
        let (url, token) = if k % 2 == 0 {
            (a.url.clone(), a.admin_token.clone())
        } else {
            (b.url.clone(), a.admin_token.clone())
        };
        tasks.push(tokio::spawn(async move {
            let mut c = jejak_testkit::capture_client(&url, token.as_deref()).await?;
            let lot = k % 10;
            let mut take = drying(9, lot);
            take.command_id = format!("take-{k}");
            take.inputs[0].quantity = qty("300", p::Unit::Kg);
            take.outputs[0].lot_id = format!("T{k}");
            take.outputs[0].quantity = qty("250", p::Unit::Kg);
            anyhow::Ok((k, c.process_lots(take).await))
        }));
    }
    let mut accepted = HashSet::new();
    let mut per_lot: HashMap<usize, usize> = HashMap::new();
    for t in tasks {
        let (k, result) = t.await??;
        match result {
            Ok(reply) => {
                assert!(!reply.get_ref().replayed);
                accepted.insert(k);
                *per_lot.entry(k % 10).or_default() += 1;
            }
            // Refused with the rule named; a conflict between the instances
            // is retried inside them, never answered (within the deadline).
            Err(s) if s.code() == Code::FailedPrecondition => {
                assert!(s.message().contains(&format!("L9-{}", k % 10)), "{}", s.message());
            }
            Err(s) => panic!("take-{k}: unexpected {s:?}"),
        }
    }
    assert_eq!(per_lot.len(), 10, "{per_lot:?}");
    assert!(per_lot.values().all(|n| *n == 3), "{per_lot:?}");
    assert_eq!(accepted.len(), 30);
    let status = projector.wait_projected(Duration::from_secs(60)).await?;
    let mut t = projector.trace().await?;
    for lot in 0..10 {
        let l = t
            .get_lot(p::GetLotRequest {
                lot_id: format!("L9-{lot}"),
            })
            .await?
            .into_inner();
        let won = per_lot.get(&lot).copied().unwrap_or(0);
        let expected = 1000 - 300 * won;
        assert_eq!(
            l.balance.expect("balance is set").value,
            expected.to_string(),
            "L9-{lot}"
        );
    }
    // Every accepted command is in the log once: its output lot exists, with
    // one creating event; refused ones left nothing.
    for k in 0..40 {
        let found = t
            .get_lot(p::GetLotRequest {
                lot_id: format!("T{k}"),
            })
            .await;
        assert_eq!(found.is_ok(), accepted.contains(&k), "T{k}");
    }
    assert_eq!(status.events, stream_events(&nats).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_with_commands_in_flight_leaves_no_duplicates() -> anyhow::Result<()> {
    let mut nats = Nats::start()?;
    let server = Server::start(on(&nats, Role::Serve))?;
    master_data(&server).await?;
    // Clients send receipts and retry each (same command id) until it is
    // acknowledged, while nats-server is killed and restarted under them.
    let (url, token) = (server.url.clone(), server.admin_token.clone());
    let load = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for w in 0..4usize {
            let (url, token) = (url.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let mut c = jejak_testkit::capture_client(&url, token.as_deref()).await?;
                let mut retries = 0;
                for i in 0..150 {
                    retries += receive_until_acknowledged(&mut c, w, i).await?;
                }
                anyhow::Ok(retries)
            }));
        }
        let mut retries = 0;
        for t in tasks {
            retries += t.await??;
        }
        anyhow::Ok(retries)
    });
    // Restart while receipts are flowing, twice: each time once more have
    // been recorded since the last look.
    for _ in 0..2 {
        let from = server.status().await?.events;
        wait_for_log(&server, from + 40).await?;
        nats.restart()?;
    }
    let retries = load.await??;
    let status = server.wait_projected(Duration::from_secs(60)).await?;
    let mut t = server.trace().await?;
    for w in 0..4 {
        for i in 0..150 {
            let n = times_recorded(&mut t, &format!("L{w}-{i}"), &format!("rcv-{w}-{i}")).await?;
            assert_eq!(n, 1, "rcv-{w}-{i} recorded {n} times (after {retries} retries)");
        }
    }
    // Nothing else: master data plus 600 receipts, each once.
    assert_eq!(status.events, stream_events(&nats).await?);
    Ok(())
}

/// Sends receipt (w, i), retrying with the same command id while the
/// service answers that it is unavailable or conflicted, for up to a
/// minute; returns how many retries it took.
async fn receive_until_acknowledged(
    c: &mut p::capture_service_client::CaptureServiceClient<jejak_testkit::Conn>,
    w: usize,
    i: usize,
) -> anyhow::Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut retries = 0;
    loop {
        match c.receive_material(receipt(w, i)).await {
            Ok(_) => return Ok(retries),
            Err(s) if Instant::now() < deadline => {
                // Safe to retry with the same id; never a fault of the server.
                assert!(matches!(s.code(), Code::Unavailable | Code::Aborted), "{s:?}");
                retries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(s) => anyhow::bail!("rcv-{w}-{i} never acknowledged: {s:?}"),
        }
    }
}

/// Waits until the server's projection holds `events` (a minute at most).
async fn wait_for_log(server: &Server, events: u64) -> anyhow::Result<()> {
    wait_until(Instant::now() + Duration::from_secs(60), || async {
        Ok((server.status().await?.events >= events).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("the projection never held {events} events: {e}"))
}

/// `GET path` over plain HTTP/1.1 on the server's gRPC port.
/// A counter's value in a server's metrics (0 when it is not there yet).
fn counter(server: &Server, name: &str) -> anyhow::Result<u64> {
    let prefix = format!("{name} ");
    Ok(http_get(server, "/metrics")?
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

pub(crate) fn http_get(server: &Server, path: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let addr = server.url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let token = server.admin_token.as_deref().unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}

async fn overall_health(server: &Server) -> anyhow::Result<i32> {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let mut health = HealthClient::new(server.channel().await?);
    let r = health
        .check(HealthCheckRequest { service: String::new() })
        .await?
        .into_inner();
    Ok(r.status)
}

async fn wait_health(
    server: &Server,
    want: tonic_health::pb::health_check_response::ServingStatus,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    wait_until(started + Duration::from_secs(30), || async {
        Ok((overall_health(server).await? == want as i32).then(|| started.elapsed()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("health never became {want:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_outcomes_and_health_follows_nats() -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    let mut nats = Nats::start()?;
    let server = Server::start(on(&nats, Role::Serve))?;
    master_data(&server).await?;
    let mut c = server.capture().await?;
    c.receive_material(receipt(0, 0)).await?;
    c.receive_material(receipt(0, 0)).await?; // replayed
    let mut greedy = drying(0, 0);
    greedy.inputs[0].quantity = qty("5000", p::Unit::Kg);
    assert!(c.process_lots(greedy).await.is_err());
    server.wait_projected(Duration::from_secs(30)).await?;

    let reply = http_get(&server, "/metrics")?;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    for line in [
        r#"jejak_commands_total{kind="ReceiveMaterial",outcome="accepted",reason=""} 1"#,
        r#"jejak_commands_total{kind="ReceiveMaterial",outcome="replayed",reason=""} 1"#,
        r#"jejak_commands_total{kind="ProcessLots",outcome="rejected",reason="mass-balance"} 1"#,
        "jejak_projector_lag_events 0",
        "jejak_nats_connected 1",
        r#"jejak_rpc_duration_seconds_count{rpc="GetStatus",code="ok"}"#,
    ] {
        assert!(reply.contains(line), "no {line:?} in\n{reply}");
    }

    // NATS away: NOT_SERVING; back: SERVING again, and capture works.
    assert_eq!(overall_health(&server).await?, ServingStatus::Serving as i32);
    nats.node.stop()?;
    wait_health(&server, ServingStatus::NotServing).await?;
    nats.node.start_again()?;
    let back = wait_health(&server, ServingStatus::Serving).await?;
    eprintln!("health SERVING again {back:?} after nats-server restarted");
    c.receive_material(receipt(0, 1)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r3_stream_keeps_every_acknowledged_event_when_its_leader_is_killed() -> anyhow::Result<()> {
    let mut cluster = jejak_testkit::NatsCluster::start()?;
    let server = Server::start(ServerOptions {
        nats: Some(cluster.urls()),
        extra_args: vec!["--replicas".into(), "3".into()],
        ..Default::default()
    })?;
    master_data(&server).await?;
    // Four clients capture receipts, retrying each (same id) until acknowledged.
    let acks: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let (url, token) = (server.url.clone(), server.admin_token.clone());
        let acks = acks.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = jejak_testkit::capture_client(&url, token.as_deref()).await?;
            for i in 0..400 {
                receive_until_acknowledged(&mut c, w, i).await?;
                acks.lock()
                    .expect("no panics while locked")
                    .push((Instant::now(), format!("rcv-{w}-{i}")));
            }
            anyhow::Ok(())
        }));
    }
    wait_until(Instant::now() + Duration::from_secs(60), || async {
        Ok((acks.lock().expect("no panics while locked").len() >= 300).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("capture too slow on the cluster: {e}"))?;
    let leader = cluster.stream_leader("JEJAK")?.expect("the stream has a leader");
    let killed_at = Instant::now();
    cluster.node_mut(&leader).expect("the leader is a node").kill9()?;
    // When the surviving nodes name a new stream leader: the part of the
    // pause that is NATS's own election.
    let elected = loop {
        match cluster.stream_leader("JEJAK")? {
            Some(l) if l != leader => break killed_at.elapsed(),
            _ if killed_at.elapsed() > Duration::from_secs(60) => anyhow::bail!("no new stream leader within a minute"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    for t in tasks {
        t.await??;
    }
    let acks = std::mem::take(&mut *acks.lock().expect("no panics while locked"));
    assert_eq!(acks.len(), 1600);
    let longest_pause = acks
        .windows(2)
        .filter(|w| w[1].0 > killed_at)
        .map(|w| w[1].0.saturating_duration_since(w[0].0))
        .max()
        .unwrap_or_default();
    eprintln!(
        "stream leader {leader} killed: a new leader after {elected:.1?}; the longest pause between acknowledgements afterwards was {longest_pause:.1?}"
    );
    assert_ne!(cluster.stream_leader("JEJAK")?.as_deref(), Some(leader.as_str()));

    let status = server.wait_projected(Duration::from_secs(60)).await?;
    assert_eq!(status.events, stream_events_on(cluster.urls(), 3).await?);
    let mut t = server.trace().await?;
    for (_, id) in &acks {
        let n = times_recorded(&mut t, &format!("L{}", &id[4..]), id).await?;
        assert_eq!(n, 1, "{id} recorded {n} times");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_beyond_the_duplicate_window_changes_nothing_and_garbage_stops_the_projector() -> anyhow::Result<()> {
    let nats = Nats::start()?;
    let mut projector = Server::start(on(&nats, Role::Projector))?;
    let capture = Server::start(on(&nats, Role::Capture))?;
    master_data(&capture).await?;
    let mut c = capture.capture().await?;
    let first = c.receive_material(receipt(0, 0)).await?.into_inner();
    let before = projector.wait_projected(Duration::from_secs(30)).await?;
    assert_eq!(before.events, stream_events(&nats).await?);

    // The stored envelope, published again under another message id (as a
    // retry after the duplicate window would be): one more stream message,
    // no change to the projection, and capture still answers from the first.
    let client = async_nats::connect(nats.url()).await?;
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream("JEJAK").await?;
    let stored = stream.direct_get(message_of(first.position)).await?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "a-later-retry");
    js.publish_with_headers(stored.subject.to_string(), headers, stored.payload.clone())
        .await?
        .await?;
    let after = projector.wait_projected(Duration::from_secs(30)).await?;
    assert_eq!(message_of(after.log_position), message_of(before.log_position) + 1);
    assert_eq!((after.events, after.lots), (before.events, before.lots), "{after:?}");
    let again = c.receive_material(receipt(0, 0)).await?.into_inner();
    assert!(again.replayed);
    assert_eq!(again.position, first.position);

    // Something that is not an envelope: the projector stops (and says
    // where) instead of serving a projection that no longer follows the log.
    js.publish("jejak.events.fac", "not an envelope".into()).await?.await?;
    let status = projector.wait_exit(Duration::from_secs(30))?;
    assert!(!status.success());
    Ok(())
}

#[test]
fn unreachable_nats_is_a_clear_error_and_logs_are_json_on_request() -> anyhow::Result<()> {
    let port = jejak_testkit::nats::free_port()?;
    let url = format!("nats://127.0.0.1:{port}");
    let (status, _out, err) = jejak_testkit::run_cli(&[
        "--log-format",
        "json",
        "projector",
        "--nats",
        &url,
        "--nats-connect-wait",
        "1s",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &std::env::temp_dir()
            .join(format!("jejak-unreachable-{port}"))
            .to_string_lossy(),
    ])?;
    assert!(!status.success());
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains("cannot reach NATS") && last.contains(&url),
        "{err}"
    );
    let logged: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert!(
        logged
            .iter()
            .any(|l| l["level"] == "WARN" && l["fields"]["message"].as_str().is_some()),
        "{err}"
    );
    Ok(())
}

/// Bootstrap steps that run at once on a stream without an administrator
/// token (a Job retried, two instances started together) issue one token
/// between them: each decides on the same state and names its command
/// after it, so the later one is refused, saying why, and prints nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_steps_run_at_once_issue_one_administrator_token() {
    let nats = Nats::start().expect("start nats-server");
    let bin = jejak_testkit::jejak_bin().expect("the jejak binary");
    let steps: Vec<std::process::Child> = (0..3)
        .map(|_| {
            std::process::Command::new(&bin)
                .args(["bootstrap-token", "--out", "-", "--nats", &nats.url()])
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a bootstrap step")
        })
        .collect();
    let outputs: Vec<std::process::Output> = steps
        .into_iter()
        .map(|c| c.wait_with_output().expect("a bootstrap step ends"))
        .collect();
    let tokens: Vec<String> = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(tokens.len(), 1, "one token among the three: {outputs:?}");
    assert!(tokens[0].starts_with("jejak_"), "{tokens:?}");
    for o in outputs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("another instance issued"), "{err}");
    }
}

/// A bulk stream of receipts each followed by two dryings of its lot that
/// together need more than it holds, on one capture instance, while another
/// instance keeps writing receipts to the same facility. In the order sent,
/// the first drying of each lot is recorded and the second refused for mass
/// balance; a conflict that makes the first be decided again must not let
/// the second, sent after it, take the lot first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_stream_beside_another_instance_consumes_each_lot_in_the_order_sent() -> anyhow::Result<()> {
    const LOTS: usize = 150;
    let nats = Nats::start()?;
    let a = Server::start(on(&nats, Role::Capture))?;
    let b = Server::start(on(&nats, Role::Capture))?;
    master_data(&a).await?;
    // The other instance writes from before the stream starts until it ends.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (started, mut writing) = tokio::sync::mpsc::channel(1);
    let others: Vec<_> = (8..12)
        .map(|worker| {
            let (url, token, done, started) = (b.url.clone(), a.admin_token.clone(), done.clone(), started.clone());
            tokio::spawn(async move {
                let mut c = jejak_testkit::capture_client(&url, token.as_deref()).await?;
                let mut i = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    c.receive_material(receipt(worker, i)).await?;
                    if i == 10 {
                        // Only the first is awaited.
                        let _ = started.try_send(());
                    }
                    i += 1;
                }
                anyhow::Ok(i)
            })
        })
        .collect();
    drop(started);
    tokio::time::timeout(Duration::from_secs(60), writing.recv())
        .await
        .map_err(|_| anyhow::anyhow!("the other instance recorded no 10 receipts in a minute"))?;
    // 1,000 kg received, then 600 kg dried twice.
    let part = |i: usize, which: &str| {
        let mut d = drying(7, i);
        d.command_id = format!("dry-7-{i}-{which}");
        d.inputs[0].quantity = qty("600", p::Unit::Kg);
        d.outputs[0].lot_id = format!("D7-{i}-{which}");
        p::Command {
            kind: Some(p::command::Kind::ProcessLots(d)),
        }
    };
    // The receipts first: each first drying then goes out while the
    // second drying of the lot before is in flight. Conflicts with the
    // other instance depend on timing: streams of new lots until one met
    // some (five at most), each checked alike.
    let mut rounds = 0;
    let conflicted = loop {
        let lots = rounds * LOTS..(rounds + 1) * LOTS;
        rounds += 1;
        let commands: Vec<p::Command> = lots
            .clone()
            .map(|i| p::Command {
                kind: Some(p::command::Kind::ReceiveMaterial(receipt(7, i))),
            })
            .chain(lots.flat_map(|i| [part(i, "a"), part(i, "b")]))
            .collect();
        let mut c = a.capture().await?;
        let mut replies = c.capture_stream(tokio_stream::iter(commands)).await?.into_inner();
        let mut refused = Vec::new();
        let mut answered = 0;
        let answering = async {
            while let Some(r) = replies.message().await? {
                answered += 1;
                if let Some(p::capture_stream_reply::Outcome::Refused(why)) = r.outcome {
                    refused.push((r.index, why));
                }
            }
            anyhow::Ok(())
        };
        let ended = tokio::time::timeout(Duration::from_secs(180), answering).await;
        if ended.is_err() {
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        ended.map_err(|_| anyhow::anyhow!("the stream was not answered in 3 minutes"))??;
        assert_eq!(answered, 3 * LOTS);
        let second = |index: u64| index >= LOTS as u64 && (index - LOTS as u64) % 2 == 1;
        let out_of_order: Vec<_> = refused.iter().filter(|(index, _)| !second(*index)).collect();
        assert!(
            out_of_order.is_empty(),
            "round {rounds}: refused out of the order sent: {out_of_order:?}"
        );
        assert_eq!(
            refused.len(),
            LOTS,
            "round {rounds}: each lot's second drying refused: {refused:?}"
        );
        for (index, why) in &refused {
            assert_eq!(why.rule, "mass-balance", "round {rounds}, answer {index}: {why:?}");
        }
        let conflicts = counter(&a, "jejak_append_conflicts_total")?;
        if conflicts > 0 || rounds == 5 {
            break conflicts;
        }
    };
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for other in others {
        let written = other.await??;
        assert!(written > 10, "the other instance wrote {written} receipts");
    }
    // The instances did conflict: the stream's commands were decided again.
    assert!(conflicted > 0, "no append conflicted in {rounds} rounds");
    Ok(())
}

/// A bulk stream of receipts each followed by the drying of its lot, on one
/// capture instance, while another instance keeps writing receipts to the
/// same facility: conflicts between them make receipts be decided again,
/// and each drying, sent after its receipt, is still decided after it
/// (refused meanwhile, it waits for the receipt), so none is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_stream_beside_another_instance_keeps_its_order_through_conflicts() -> anyhow::Result<()> {
    const PAIRS: usize = 200;
    let nats = Nats::start()?;
    let a = Server::start(on(&nats, Role::Capture))?;
    let b = Server::start(on(&nats, Role::Capture))?;
    master_data(&a).await?;
    // Conflicts depend on timing: streams of new lots, each beside new
    // receipts of the other instance, until one met some (five at most),
    // each checked alike.
    let mut rounds = 0;
    let conflicted = loop {
        let lots = rounds * PAIRS..(rounds + 1) * PAIRS;
        rounds += 1;
        let other = {
            let (url, token) = (b.url.clone(), a.admin_token.clone());
            let theirs = 2 * lots.start..2 * lots.end;
            tokio::spawn(async move {
                let mut c = jejak_testkit::capture_client(&url, token.as_deref()).await?;
                for i in theirs {
                    c.receive_material(receipt(8, i)).await?;
                }
                anyhow::Ok(())
            })
        };
        let commands: Vec<p::Command> = lots
            .flat_map(|i| {
                [
                    p::Command {
                        kind: Some(p::command::Kind::ReceiveMaterial(receipt(7, i))),
                    },
                    p::Command {
                        kind: Some(p::command::Kind::ProcessLots(drying(7, i))),
                    },
                ]
            })
            .collect();
        let mut c = a.capture().await?;
        let mut replies = c.capture_stream(tokio_stream::iter(commands)).await?.into_inner();
        let mut refused = Vec::new();
        let mut answered = 0;
        while let Some(r) = replies.message().await? {
            answered += 1;
            if let Some(p::capture_stream_reply::Outcome::Refused(why)) = r.outcome {
                refused.push((r.index, why));
            }
        }
        other.await??;
        assert_eq!(answered, 2 * PAIRS, "round {rounds}");
        assert!(refused.is_empty(), "round {rounds}: refused: {refused:?}");
        let conflicts = counter(&a, "jejak_append_conflicts_total")?;
        if conflicts > 0 || rounds == 5 {
            break conflicts;
        }
    };
    // The instances did conflict: receipts were decided again, and each
    // drying still after its own.
    assert!(conflicted > 0, "no append conflicted in {rounds} rounds");
    Ok(())
}

/// A bulk stream to one facility goes many events to a message: the
/// stream holds fewer messages than events, each answer's position names
/// the message that holds its event, a projector of its own applies each
/// event once, and the same stream sent again records nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_stream_goes_many_events_to_a_message_and_every_reader_applies_each_once() -> anyhow::Result<()> {
    const N: usize = 3000;
    let nats = Nats::start()?;
    let server = Server::start(on(&nats, Role::Serve))?;
    let projector = Server::start(on(&nats, Role::Projector))?.with_token(server.admin_token.clone());
    master_data(&server).await?;
    let before = stream_events(&nats).await?;
    let commands = || {
        (0..N).map(|i| p::Command {
            kind: Some(p::command::Kind::ReceiveMaterial(receipt(5, i))),
        })
    };
    let answers = |replies: Vec<p::CaptureStreamReply>| -> anyhow::Result<Vec<p::CaptureReply>> {
        replies
            .into_iter()
            .map(|r| match r.outcome {
                Some(p::capture_stream_reply::Outcome::Recorded(reply)) => Ok(reply),
                other => anyhow::bail!("answer {} is not a recording: {other:?}", r.index),
            })
            .collect()
    };
    let mut c = server.capture().await?;
    let mut replies = c.capture_stream(tokio_stream::iter(commands())).await?.into_inner();
    let mut got = Vec::new();
    while let Some(r) = replies.message().await? {
        got.push(r);
    }
    let first = answers(got)?;
    assert_eq!(first.len(), N);
    assert!(first.iter().all(|r| !r.replayed));
    // In the order sent, each at a position of its own.
    assert!(first.windows(2).all(|w| w[0].position < w[1].position));

    let events = stream_events(&nats).await?;
    assert_eq!(events, before + N as u64);
    let client = async_nats::connect(nats.url()).await?;
    let mut stream = async_nats::jetstream::new(client).get_stream("JEJAK").await?;
    let messages = stream.info().await?.state.messages;
    assert!(
        messages * 4 < events,
        "{events} events in {messages} messages: the bulk stream was not gathered into messages"
    );
    let log =
        jejak_log::JetStreamLog::connect(jejak_log::JetStreamConfig::new(nats.url()), Duration::from_secs(10)).await?;
    let shared = first
        .windows(2)
        .filter(|w| message_of(w[0].position) == message_of(w[1].position))
        .count();
    assert!(shared > N / 2, "only {shared} answers share a message with the next");
    // The service counts the messages it published: fewer than the events.
    let published = wait_until(Instant::now() + Duration::from_secs(10), || async {
        let n = counter(&server, "jejak_append_messages_total")?;
        Ok((n > 0).then_some(n))
    })
    .await?;
    assert!(
        published <= messages && published * 4 < N as u64,
        "{published} messages published"
    );
    for r in first.iter().step_by(97) {
        let stored = log
            .read(r.position)
            .await?
            .expect("the answer's position holds an event");
        assert_eq!(stored.envelope.event_id, r.event_id);
        assert_eq!(stored.envelope.sequence, r.sequence);
    }

    // A projector of its own applies each once.
    let status = projector.wait_projected(Duration::from_secs(60)).await?;
    assert_eq!(status.events, events, "{status:?}");
    let mut t = projector.trace().await?;
    assert_eq!(times_recorded(&mut t, "L5-2999", "rcv-5-2999").await?, 1);

    // The same stream again: every command answered with its first result.
    let mut replies = c.capture_stream(tokio_stream::iter(commands())).await?.into_inner();
    let mut got = Vec::new();
    while let Some(r) = replies.message().await? {
        got.push(r);
    }
    let again = answers(got)?;
    assert!(again.iter().all(|r| r.replayed));
    assert!(first
        .iter()
        .zip(&again)
        .all(|(a, b)| (a.position, &a.hash) == (b.position, &b.hash)));
    assert_eq!(stream_events(&nats).await?, events);
    Ok(())
}

/// A command that must wait for an earlier one of the same capture service
/// (here master data, which goes alone, behind a receipt that nats-server
/// does not acknowledge while it is paused) keeps to its own deadline: it
/// is answered UNAVAILABLE by then, not sent, and recorded once when sent
/// again with the same command id after nats-server answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_waiting_behind_an_unacknowledged_one_keeps_to_its_own_deadline() -> anyhow::Result<()> {
    let nats = Nats::start()?;
    let server = Server::start(on(&nats, Role::Serve))?;
    master_data(&server).await?;
    let before = server.status().await?.events;
    nats.node.pause()?;
    let (url, token) = (server.url.clone(), server.admin_token.clone());
    let first = tokio::spawn(async move {
        let mut c = jejak_testkit::capture_client(&url, token.as_deref()).await?;
        let mut request = tonic::Request::new(receipt(0, 0));
        request.set_timeout(Duration::from_secs(20));
        anyhow::Ok(c.receive_material(request).await)
    });
    // The receipt is sent (and waits for its acknowledgement) first.
    let published = counter(&server, "jejak_append_messages_total")?;
    wait_until(Instant::now() + Duration::from_secs(10), || async {
        Ok((counter(&server, "jejak_append_messages_total")? > published).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("the receipt was never published: {e}"))?;
    let party = || p::RegisterPartyRequest {
        command_id: "party-behind".into(),
        party: Some(p::Party {
            id: "ukm-behind".into(),
            name: "UKM Di Belakang".into(),
            roles: vec![p::PartyRole::Ukm as i32],
            ..Default::default()
        }),
    };
    let mut c = server.capture().await?;
    let mut request = tonic::Request::new(party());
    request.set_timeout(Duration::from_secs(2));
    let asked = Instant::now();
    let answer = c.register_party(request).await;
    let waited = asked.elapsed();
    nats.node.resume()?;
    let refusal = answer.expect_err("nothing is acknowledged while nats-server is paused");
    assert_eq!(refusal.code(), Code::Unavailable, "{refusal:?}");
    assert!(
        refusal.message().contains("retry") && refusal.message().contains("same command id"),
        "{refusal:?}"
    );
    assert!(waited < Duration::from_millis(2500), "answered after {waited:?}");
    // Once nats-server answers: the receipt is recorded (or retried), and
    // the party, sent again, is recorded once.
    if let Err(s) = first.await?? {
        assert_eq!(s.code(), Code::Unavailable, "{s:?}");
        receive_until_acknowledged(&mut c, 0, 0).await?;
    }
    let recorded = c.register_party(party()).await?.into_inner();
    assert!(!recorded.replayed, "the party was not sent before its deadline");
    let status = server.wait_projected(Duration::from_secs(60)).await?;
    assert_eq!(status.events, before + 2);
    assert_eq!(stream_events(&nats).await?, status.events);
    Ok(())
}

/// A hold of `lot` (at facility `fac`), which raises an alert.
fn hold(lot: &str) -> p::ChangeLotStatusRequest {
    p::ChangeLotStatusRequest {
        command_id: format!("hold-{lot}"),
        facility_id: "fac".into(),
        lot_id: lot.into(),
        status: p::LotStatus::OnHold as i32,
        reason: "uji ulang".into(),
        ..Default::default()
    }
}

/// A projector's store that does not follow from the stream it is started
/// on (the stream made again, here on another nats-server) is made again
/// from that stream, not served: the lots of the first stream are gone and
/// those of the second are there, and so are their alerts, derived again
/// from the second stream although the first was followed further.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_started_on_another_stream_makes_its_projection_again() -> anyhow::Result<()> {
    use anyhow::Context as _;
    let first = Nats::start()?;
    let capture = Server::start(on(&first, Role::Capture)).context("the first capture service")?;
    master_data(&capture).await.context("master data on the first stream")?;
    let mut c = capture.capture().await?;
    for i in 0..5 {
        c.receive_material(receipt(1, i))
            .await
            .context("a first-stream receipt")?;
    }
    c.change_lot_status(hold("L1-0")).await.context("a first-stream hold")?;
    let mut projector = Server::start(on(&first, Role::Projector))
        .context("the first projector")?
        .with_token(capture.admin_token.clone());
    let followed = projector
        .wait_projected(Duration::from_secs(60))
        .await
        .context("the first projector catches up")?;
    let raised = alerts_streamed(&projector).await.context("the first stream's alerts")?;
    let lots: Vec<String> = raised.iter().map(alert_lot).collect::<anyhow::Result<_>>()?;
    assert_eq!(lots, ["L1-0"]);
    // Stopped, so that it stores what it applied.
    let stopped = projector.stop()?;
    assert!(stopped.success(), "the first projector stops cleanly: {stopped:?}");
    let (data_dir, keep) = projector.into_data_dir();

    let second = Nats::start()?;
    let capture = Server::start(on(&second, Role::Capture)).context("the second capture service")?;
    master_data(&capture)
        .await
        .context("master data on the second stream")?;
    let mut c = capture.capture().await?;
    c.receive_material(receipt(2, 0))
        .await
        .context("a second-stream receipt")?;
    let held = c
        .change_lot_status(hold("L2-0"))
        .await
        .context("a second-stream hold")?;
    let held = held.into_inner().position;
    assert!(
        held <= followed.applied_position,
        "the hold at {held} is within what the first projector followed ({followed:?})"
    );
    let projector = Server::start(ServerOptions {
        data_dir: Some(data_dir),
        ..on(&second, Role::Projector)
    })
    .context("the projector on the second stream")?
    .with_token(capture.admin_token.clone());
    let status = projector
        .wait_projected(Duration::from_secs(60))
        .await
        .context("the projector catches up with the second stream")?;
    assert_eq!(status.events, stream_events(&second).await?, "{status:?}");
    let mut t = projector.trace().await?;
    t.get_lot(p::GetLotRequest { lot_id: "L2-0".into() })
        .await
        .context("a lot of the second stream")?;
    let gone = t
        .get_lot(p::GetLotRequest { lot_id: "L1-0".into() })
        .await
        .expect_err("a lot of the first stream");
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    // The alerts: the second stream's hold, and nothing of the first.
    let alerts = alerts_streamed(&projector)
        .await
        .context("the second stream's alerts")?;
    let seen: Vec<(u64, String)> = alerts
        .iter()
        .map(|a| Ok((a.position, alert_lot(a)?)))
        .collect::<anyhow::Result<_>>()?;
    assert_eq!(seen, [(held, "L2-0".to_string())]);
    drop(keep);
    Ok(())
}

/// The alerts a server streams from the start: the first waited for up to
/// 30 s, the others as long as each follows within a second (those stored
/// are streamed at once).
async fn alerts_streamed(server: &Server) -> anyhow::Result<Vec<p::AlertMessage>> {
    let mut t = server.trace().await?;
    let mut stream = t
        .watch_alerts(p::WatchAlertsRequest { after_position: 0 })
        .await?
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .map_err(|_| anyhow::anyhow!("no alert within 30 s"))??
        .ok_or_else(|| anyhow::anyhow!("the alert stream ended"))?;
    let mut alerts = vec![first];
    while let Ok(next) = tokio::time::timeout(Duration::from_secs(1), stream.message()).await {
        match next? {
            Some(a) => alerts.push(a),
            None => break,
        }
    }
    Ok(alerts)
}

/// The lot an alert is about.
fn alert_lot(a: &p::AlertMessage) -> anyhow::Result<String> {
    let v: serde_json::Value = serde_json::from_str(&a.json)?;
    v["data"]["lot"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("an alert without a lot: {}", a.json))
}
