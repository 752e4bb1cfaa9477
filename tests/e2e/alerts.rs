//! Alerts that reach people: the demo's chair recall delivered to a real
//! HTTP receiver on loopback as a signed Standard Webhook, a receiver that
//! was down getting it once back (across a kill -9 of the server), the
//! same alert over `WatchAlerts`, and on NATS on `jejak.alerts.<party>`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use jejak_proto::v1 as p;
use jejak_server::demo::ids::RECALLED_CHAIR_LOT;
use jejak_testkit::{wait_until, Server, ServerOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The consignee of the recalled chairs.
const BUYER: &str = "cus-klt-homeliving";

use jejak_testkit::receiver::{Received, Receiver};

/// Waits for the delivery of the recall of `lot`.
async fn recall_of(receiver: &Receiver, lot: &str) -> Received {
    wait_until(Instant::now() + Duration::from_secs(60), || {
        let found = receiver.received().into_iter().find(|r| {
            serde_json::from_slice::<Value>(&r.body)
                .is_ok_and(|b| b["type"] == "lot.recalled" && b["data"]["lot"] == lot)
        });
        async move { Ok(found) }
    })
    .await
    .expect("a delivery arrives")
}

fn free_port() -> u16 {
    jejak_testkit::nats::free_port().expect("a free port")
}

/// Checks the Standard Webhooks headers and signature of a delivery.
fn assert_signed(r: &Received, secret: &str) -> String {
    let id = r.headers.get("webhook-id").expect("webhook-id").clone();
    let timestamp: i64 = r.headers["webhook-timestamp"].parse().expect("a timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock")
        .as_secs() as i64;
    assert!((now - timestamp).abs() < 600, "timestamp {timestamp} is now");
    let key = secret.strip_prefix("whsec_").expect("a whsec_ secret");
    let expected = jejak_server::webhook::signature(key, &id, timestamp, &r.body).expect("a signature");
    let signatures = &r.headers["webhook-signature"];
    assert!(
        signatures.split(' ').any(|s| s == expected),
        "{signatures} does not include {expected}"
    );
    id
}

async fn create_hook(server: &Server, url: &str, party: &str) -> p::CreateWebhookReply {
    server
        .admin()
        .await
        .expect("an admin client")
        .create_webhook(p::CreateWebhookRequest {
            url: url.into(),
            party_id: party.into(),
            ..Default::default()
        })
        .await
        .expect("a webhook")
        .into_inner()
}

async fn hooks(server: &Server) -> Vec<p::Webhook> {
    server
        .admin()
        .await
        .expect("an admin client")
        .list_webhooks(p::ListWebhooksRequest {})
        .await
        .expect("the webhooks")
        .into_inner()
        .webhooks
}

/// Loads the demo's commands (those `keep` keeps) through `jejak import`.
fn import_demo(server: &Server, dir: &std::path::Path, keep: fn(&str) -> bool) {
    let file = dir.join("demo.jsonl");
    let lines: Vec<&str> = jejak_server::demo::DEMO.lines().filter(|l| keep(l)).collect();
    std::fs::write(&file, lines.join("\n")).expect("write the demo commands");
    let token = server.admin_token.clone().expect("an admin token");
    let (status, _, err) = jejak_testkit::run_cli(&[
        "import",
        file.to_str().expect("utf-8"),
        "--server",
        &server.url,
        "--token",
        &token,
    ])
    .expect("run jejak import");
    assert!(status.success(), "{err}");
}

fn options(data_dir: Option<std::path::PathBuf>) -> ServerOptions {
    ServerOptions {
        data_dir,
        extra_args: vec!["--webhook-retry".into(), "100ms".into()],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recall_reaches_receivers_signed_even_one_down_through_a_kill_and_streams_to_watchers() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(options(None)).expect("start a server");
    // The parties first, so webhooks can name them.
    import_demo(&server, dir.path(), |l| l.starts_with("{\"register"));
    let up_port = free_port();
    let up = Receiver::start(up_port).await.expect("a receiver");
    let up_url = format!("http://127.0.0.1:{up_port}/hooks/jejak");
    let down_port = free_port();
    let up_hook = create_hook(&server, &up_url, BUYER).await;
    assert!(up_hook.secret.starts_with("whsec_"), "{}", up_hook.secret);
    let down_hook = create_hook(&server, &format!("http://127.0.0.1:{down_port}/hook"), BUYER).await;

    // Bad webhooks are refused, naming the field.
    let mut admin = server.admin().await.expect("an admin client");
    let refused = admin
        .create_webhook(p::CreateWebhookRequest {
            url: "http://buyer.example/hook".into(),
            ..Default::default()
        })
        .await
        .expect_err("plain HTTP to another host");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("https"), "{refused:?}");
    let refused = admin
        .create_webhook(p::CreateWebhookRequest {
            url: "https://buyer.example/hook".into(),
            party_id: "no-such-party".into(),
            ..Default::default()
        })
        .await
        .expect_err("an unknown party");
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");

    import_demo(&server, dir.path(), |_| true);

    // The receiver that is up gets the recall, signed.
    let delivery = recall_of(&up, RECALLED_CHAIR_LOT).await;
    let id = assert_signed(&delivery, &up_hook.secret);
    let body: Value = serde_json::from_slice(&delivery.body).expect("JSON");
    assert_eq!(body["type"], "lot.recalled", "{body}");
    assert_eq!(body["data"]["lot"], RECALLED_CHAIR_LOT);
    assert_eq!(body["data"]["alertId"], id.as_str());
    assert!(
        body["data"]["parties"]
            .as_array()
            .expect("parties")
            .iter()
            .any(|p| p == BUYER),
        "{body}"
    );
    assert!(
        body["data"]["shipments"]
            .as_array()
            .expect("shipments")
            .iter()
            .any(|s| s["consignee"] == BUYER),
        "{body}"
    );
    assert_eq!(delivery.headers["content-type"], "application/json");

    // The one that is down has its failed attempts recorded.
    let deadline = Instant::now() + Duration::from_secs(30);
    wait_until(deadline, || {
        let server = &server;
        let id = down_hook.webhook_id.clone();
        async move {
            let h = hooks(server).await;
            Ok(h.into_iter()
                .find(|h| h.webhook_id == id && h.pending > 0 && !h.last_attempt.is_empty())
                .map(|_| ()))
        }
    })
    .await
    .expect("a failed attempt is recorded");

    // Killed between the recall and the delivery, the server loses nothing:
    // started again, it delivers once the receiver is back.
    let token = server.admin_token.clone();
    let (data_dir, _keep) = server.into_data_dir();
    let server = Server::start(options(Some(data_dir)))
        .expect("the server starts again")
        .with_token(token);
    let back = Receiver::start(down_port).await.expect("a receiver");
    let late = recall_of(&back, RECALLED_CHAIR_LOT).await;
    assert_eq!(
        assert_signed(&late, &down_hook.secret),
        id,
        "the same alert, the same id"
    );
    wait_until(Instant::now() + Duration::from_secs(30), || {
        let server = &server;
        async move {
            let h = hooks(server).await;
            Ok(h.iter().all(|h| h.delivered >= 1).then_some(h))
        }
    })
    .await
    .expect("both deliveries are recorded as delivered");

    // The same alert over WatchAlerts, from the start; after its position, not again.
    let mut stream = watch(&server, 0).await;
    let mut recall = None;
    while let Some(a) = stream.message().await.expect("an alert") {
        if a.alert_id == id {
            recall = Some(a);
            break;
        }
    }
    let recall = recall.expect("the recall is streamed");
    assert_eq!(recall.r#type, "lot.recalled");
    // Resumed just before it, the recall is the first alert streamed ...
    let mut before = watch(&server, recall.position - 1).await;
    let first = tokio::time::timeout(Duration::from_secs(10), before.message())
        .await
        .expect("an alert within 10 s")
        .expect("an alert")
        .expect("the stream goes on");
    assert_eq!(
        (first.alert_id.as_str(), first.position),
        (id.as_str(), recall.position)
    );
    drop(before);
    // ... and resumed at it, anything streamed comes after it.
    let mut stream = watch(&server, recall.position).await;
    let next = tokio::time::timeout(Duration::from_millis(500), stream.message()).await;
    if let Ok(Ok(Some(a))) = next {
        assert!(a.position > recall.position, "resumed after {}: {a:?}", recall.position);
    }
    // Without a token: refused.
    let mut public = p::trace_service_client::TraceServiceClient::new(server.conn(None).await.expect("a connection"));
    let refused = public
        .watch_alerts(p::WatchAlertsRequest { after_position: 0 })
        .await
        .expect_err("a token is needed");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    // A watcher still connected does not hold the server's shutdown.
    let mut server = server;
    let status = server.stop().expect("the server stops with a watcher connected");
    assert!(status.success(), "{status:?}");
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats_alerts_are_published_for_each_party_they_concern() {
    use tokio_stream::StreamExt;
    let nats = jejak_testkit::Nats::start().expect("start nats-server");
    let client = async_nats::connect(nats.url()).await.expect("connect to NATS");
    let mut subscription = client.subscribe("jejak.alerts.>").await.expect("subscribe");
    client.flush().await.expect("flush");
    let server = Server::start(ServerOptions {
        demo: true,
        nats: Some(nats.url()),
        ..Default::default()
    })
    .expect("a demo server on NATS");
    // The parties the recall concerns, as an administrator sees it.
    let seen = alerts_through_the_recall(&server).await;
    let (_, recall_id, _, recall) = seen.last().expect("the recall");
    let parties: HashSet<String> = recall["data"]["parties"]
        .as_array()
        .expect("parties")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    assert!(
        parties.len() >= 2 && parties.contains(BUYER),
        "the recall concerns its buyer and more: {parties:?}"
    );
    // Each of them gets it on its own subject, narrowed to itself; no one
    // else gets it.
    let mut published: HashMap<String, Value> = HashMap::new();
    let collected = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(m) = subscription.next().await {
            let body: Value = serde_json::from_slice(&m.payload).expect("JSON");
            if body["data"]["alertId"] != recall_id.as_str() {
                continue;
            }
            let party = m.subject.as_str().trim_start_matches("jejak.alerts.").to_string();
            assert!(parties.contains(&party), "published to {party}, not concerned: {body}");
            assert_eq!(body["data"]["parties"], serde_json::json!([party.clone()]), "{body}");
            assert!(published.insert(party, body).is_none(), "published twice");
            if published.len() == parties.len() {
                return;
            }
        }
    })
    .await;
    assert!(
        collected.is_ok(),
        "every concerned party gets the recall: {:?} of {parties:?}",
        published.keys().collect::<Vec<_>>()
    );
    assert!(published.values().all(|b| b["type"] == "lot.recalled"));
}

/// The server's alerts after `after`, then as they are raised.
async fn watch(server: &Server, after: u64) -> tonic::Streaming<p::AlertMessage> {
    let mut trace = server.trace().await.expect("a trace client");
    trace
        .watch_alerts(p::WatchAlertsRequest { after_position: after })
        .await
        .expect("watch")
        .into_inner()
}

/// The alerts a server streams from the first up to the demo's recall.
async fn alerts_through_the_recall(server: &Server) -> Vec<(u64, String, String, Value)> {
    let mut stream = watch(server, 0).await;
    let mut seen = Vec::new();
    let recall = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(a) = stream.message().await.expect("an alert") {
            let body: Value = serde_json::from_str(&a.json).expect("JSON");
            let done = a.r#type == "lot.recalled" && body["data"]["lot"] == RECALLED_CHAIR_LOT;
            seen.push((a.position, a.alert_id, a.r#type, body));
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(recall, Ok(true), "the recall is raised: {seen:?}");
    seen
}

/// A demo server on `data_dir` (on NATS at `nats`, or embedded) raises its
/// alerts; stopped, its alert store removed and started again, it derives
/// the same alerts again.
async fn lost_alerts_are_derived_again(nats: Option<String>) {
    let dir = tempfile::tempdir().expect("a data directory");
    let mut server = Server::start(ServerOptions {
        demo: true,
        nats: nats.clone(),
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .expect("a demo server");
    let live = alerts_through_the_recall(&server).await;
    assert!(live.len() >= 2, "the demo raises more than the recall: {live:?}");
    let status = server.stop().expect("the server stops");
    assert!(status.success(), "{status:?}");

    std::fs::remove_dir_all(dir.path().join("alerts")).expect("remove the alert store");
    let server = Server::start(ServerOptions {
        nats,
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .expect("the server again, without its alerts");
    let again = alerts_through_the_recall(&server).await;
    assert_eq!(again, live);
}

/// A projector takes the events it just applied from its own batches and
/// anything older from the stream: one whose alert store was lost derives
/// every alert again from the stream, the same as it derived them live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats_a_projector_that_lost_its_alerts_derives_the_same_again_from_the_stream() {
    let nats = jejak_testkit::Nats::start().expect("start nats-server");
    lost_alerts_are_derived_again(Some(nats.url())).await;
}

/// An embedded server whose alert store was lost derives every alert again
/// at its next start, from what the start's walk of the log kept for its
/// follower, the same as it derived them live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_server_that_lost_its_alerts_derives_the_same_again_at_start() {
    lost_alerts_are_derived_again(None).await;
}

/// An embedded server whose alert store followed past its log's end (an
/// alert of an event a crash took back before it was durable, as an older
/// release raised them) drops what came after the end at its next start,
/// and raises the alerts of the events written at those positions since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_alert_store_ahead_of_its_log_is_brought_back_to_the_logs_end() {
    use jejak_server::demo::ids::{DEMAK, RICE_BAG_LOT};
    let dir = tempfile::tempdir().expect("a data directory");
    let mut server = Server::start(ServerOptions {
        demo: true,
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .expect("a demo server");
    let live = alerts_through_the_recall(&server).await;
    let end = server.status().await.expect("the status").log_position;
    assert!(server.stop().expect("the server stops").success());
    {
        let store = jejak_log::alerts::AlertStore::open(&dir.path().join("alerts")).expect("the alert store");
        let lost = jejak_log::alerts::Followed {
            position: end + 1,
            alert: Some((
                br#"{"type":"lot.recalled","data":{"lot":"LOST-IN-A-CRASH"}}"#.to_vec(),
                Vec::new(),
            )),
        };
        store.follow(&[lost], end + 10, 0).expect("follow past the end");
    }
    let server = Server::start(ServerOptions {
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .expect("the server again");
    assert_eq!(alerts_through_the_recall(&server).await, live);
    let held = server
        .capture()
        .await
        .expect("a capture client")
        .change_lot_status(p::ChangeLotStatusRequest {
            command_id: "hold-after-a-crash".into(),
            facility_id: DEMAK.into(),
            lot_id: RICE_BAG_LOT.into(),
            status: p::LotStatus::OnHold as i32,
            reason: "uji ulang".into(),
            ..Default::default()
        })
        .await
        .expect("hold the rice bags")
        .into_inner();
    assert!(
        held.position <= end + 10,
        "written where the store had followed: {held:?}"
    );
    let last = live.last().map_or(0, |a| a.0);
    let mut stream = watch(&server, last).await;
    let next = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("an alert within 30 s")
        .expect("an alert")
        .expect("the stream goes on");
    let body: Value = serde_json::from_str(&next.json).expect("JSON");
    assert_eq!(
        (next.position, body["type"].as_str(), body["data"]["lot"].as_str()),
        (held.position, Some("lot.held"), Some(RICE_BAG_LOT)),
        "{body}"
    );
}

/// A receiver that misbehaves in one way for every connection.
async fn misbehaving(port: u16, reply: &'static [u8], hang: bool) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the receiver");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 65536];
                let _ = conn.read(&mut buf).await;
                if hang {
                    // Never answers; the connection stays open.
                    let _ = conn.read(&mut buf).await;
                    return;
                }
                let _ = conn.write_all(reply).await;
                // Then a body without end.
                let chunk = vec![b'x'; 65536];
                while conn.write_all(&chunk).await.is_ok() {}
            });
        }
    })
}

/// A receiver that never answers holds a few of the deliverer's slots, not
/// all of them: with more alerts for it than there are slots, another
/// subscription's deliveries all arrive while every attempt to the silent
/// one is still waiting for its answer (none has been given up yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_receiver_holds_up_no_other_subscriptions_deliveries() {
    use jejak_server::demo::ids::{DEMAK, RICE_BAG_LOT};
    const HOLDS: usize = 80;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(options(None)).expect("start a server");
    import_demo(&server, dir.path(), |_| true);
    // The demo's alerts followed first: the hooks are for the holds below.
    alerts_through_the_recall(&server).await;
    let silent = free_port();
    let _silent = misbehaving(silent, b"", true).await;
    let good = Receiver::start(0).await.expect("a receiver");
    let silent_hook = create_hook(&server, &format!("http://127.0.0.1:{silent}/hook"), "").await;
    create_hook(&server, &format!("http://127.0.0.1:{}/hook", good.port), "").await;
    let mut capture = server.capture().await.expect("a capture client");
    for i in 0..HOLDS {
        for (status, what) in [(p::LotStatus::OnHold, "hold"), (p::LotStatus::Released, "release")] {
            capture
                .change_lot_status(p::ChangeLotStatusRequest {
                    command_id: format!("silent-{what}-{i}"),
                    facility_id: DEMAK.into(),
                    lot_id: RICE_BAG_LOT.into(),
                    status: status as i32,
                    reason: "uji ulang".into(),
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|e| panic!("{what} {i}: {e}"));
        }
    }
    wait_until(Instant::now() + Duration::from_secs(60), || async {
        Ok((good.count() >= HOLDS).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("the good receiver got {} of {HOLDS}: {e}", good.count()));
    let silent = hooks(&server)
        .await
        .into_iter()
        .find(|h| h.webhook_id == silent_hook.webhook_id)
        .expect("the silent hook");
    assert!(
        silent.last_attempt.is_empty() && silent.delivered == 0,
        "every delivery arrived before an attempt to the silent receiver ended: {silent:?}"
    );
    assert_eq!(good.count(), HOLDS, "each alert once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_redirecting_or_flooding_receivers_are_retried_and_never_hold_capture() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(options(None)).expect("start a server");
    import_demo(&server, dir.path(), |l| l.starts_with("{\"register"));
    let (slow, redirect, flood) = (free_port(), free_port(), free_port());
    let _slow = misbehaving(slow, b"", true).await;
    let _redirect = misbehaving(
        redirect,
        b"HTTP/1.1 302 Found\r\nlocation: https://elsewhere.example/\r\ncontent-length: 0\r\n\r\n",
        false,
    )
    .await;
    let _flood = misbehaving(
        flood,
        b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000000\r\n\r\n",
        false,
    )
    .await;
    let mut ids = HashMap::new();
    for (name, port) in [("slow", slow), ("redirect", redirect), ("flood", flood)] {
        let hook = create_hook(&server, &format!("http://127.0.0.1:{port}/hook"), BUYER).await;
        ids.insert(hook.webhook_id, name);
    }
    let started = Instant::now();
    import_demo(&server, dir.path(), |_| true);
    let imported = started.elapsed();

    // Capture goes on while the slow receiver holds its delivery.
    let mut capture = server.capture().await.expect("a capture client");
    let before = Instant::now();
    capture
        .register_party(p::RegisterPartyRequest {
            command_id: "party-during-deliveries".into(),
            party: Some(p::Party {
                id: "cus-late".into(),
                name: "Pembeli Baru".into(),
                roles: vec![p::PartyRole::Customer as i32],
                ..Default::default()
            }),
        })
        .await
        .expect("capture answers");
    assert!(
        before.elapsed() < jejak_server::webhook::DEADLINE / 2,
        "capture waited {:?} on a receiver (the import took {imported:?})",
        before.elapsed()
    );

    // Each outcome is recorded: the flood delivered without its body read,
    // the redirect not followed, the slow one given up after its deadline.
    let outcome = wait_until(Instant::now() + Duration::from_secs(60), || {
        let server = &server;
        let ids = ids.clone();
        async move {
            let mut by_name = HashMap::new();
            for h in hooks(server).await {
                by_name.insert(ids[&h.webhook_id], h);
            }
            let done = by_name["flood"].delivered >= 1
                && by_name["redirect"].last_attempt.contains("redirects are not followed")
                && by_name["slow"].last_attempt.contains("no answer within");
            Ok(done.then_some(by_name))
        }
    })
    .await
    .expect("every outcome recorded");
    assert!(
        outcome["redirect"].pending >= 1,
        "a redirect is retried: {:?}",
        outcome["redirect"]
    );
    assert!(
        outcome["slow"].pending >= 1,
        "a timeout is retried: {:?}",
        outcome["slow"]
    );
}
