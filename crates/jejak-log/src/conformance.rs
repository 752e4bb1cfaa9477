//! One conformance suite for every `ChainLog`: the sled log and the
//! JetStream log (against a real nats-server) must behave the same.

use std::future::Future;
use std::sync::Arc;

use jejak_proto::v1 as p;

use crate::jetstream::{chain_from_token, chain_token};
use crate::{
    hash, verify_link, ChainHead, ChainLog, Draft, JetStreamConfig, JetStreamLog, LogError, SledLog, ZERO_HASH,
};

/// A small event for `chain` with id `id`, for the log's tests.
pub(crate) fn draft(chain: &str, id: &str) -> Draft {
    Draft {
        chain: chain.into(),
        event_id: id.into(),
        actor: "conformance".into(),
        command_hash: hash(id.as_bytes()),
        recorded_at: prost_types::Timestamp {
            seconds: 1_790_000_000,
            nanos: 0,
        },
        event: p::Event {
            kind: Some(p::event::Kind::LotStatusChanged(p::LotStatusChanged {
                facility_id: chain.into(),
                lot_id: format!("L-{id}"),
                status: p::LotStatus::OnHold as i32,
                reason: "conformance".into(),
                occurred_at: None,
            })),
        },
    }
}

/// Runs every check against logs made by `open` (called again to reopen the
/// same log, to check what survives); `at(n)` is the position of the n-th
/// event appended (one per message on JetStream).
async fn suite<L, F, Fut>(open: F, at: fn(u64) -> u64)
where
    L: ChainLog,
    F: Fn() -> Fut,
    Fut: Future<Output = L>,
{
    let log = open().await;
    // Empty.
    assert_eq!(log.last_position().await.unwrap(), 0);
    assert_eq!(log.head("fac-a").await.unwrap(), ChainHead::default());
    assert!(log.read_range(1, 10).await.unwrap().is_empty());

    // Chains and the global order.
    let a1 = log
        .append_after(draft("fac-a", "a1"), ChainHead::default())
        .await
        .unwrap();
    assert_eq!((a1.position, a1.sequence, a1.duplicate), (at(1), 1, false));
    let head_a = log.head("fac-a").await.unwrap();
    assert_eq!(
        head_a,
        ChainHead {
            sequence: 1,
            hash: a1.hash,
            position: at(1)
        }
    );
    let a2 = log.append_after(draft("fac-a", "a2"), head_a).await.unwrap();
    let b1 = log
        .append_after(draft("fac.b_1", "b1"), ChainHead::default())
        .await
        .unwrap();
    assert_eq!((a2.position, a2.sequence), (at(2), 2));
    assert_eq!((b1.position, b1.sequence, b1.chain.as_str()), (at(3), 1, "fac.b_1"));
    assert_eq!(log.last_position().await.unwrap(), at(3));

    // A stale head is a conflict and writes nothing; so is a new chain that exists.
    let stale = log.append_after(draft("fac-a", "a3"), head_a).await;
    assert!(matches!(stale, Err(LogError::Conflict { .. })), "{stale:?}");
    let again = log
        .append_after(draft("fac-b", "x"), ChainHead::default())
        .await
        .unwrap();
    assert_eq!(again.position, at(4));
    let exists = log.append_after(draft("fac-b", "y"), ChainHead::default()).await;
    assert!(matches!(exists, Err(LogError::Conflict { .. })), "{exists:?}");
    assert_eq!(log.last_position().await.unwrap(), at(4));

    // The same event id again: nothing written, the stored copy described.
    let dup = log
        .append_after(draft("fac-a", "a2"), log.head("fac-a").await.unwrap())
        .await
        .unwrap();
    assert!(dup.duplicate);
    assert_eq!(
        (dup.position, dup.sequence, dup.hash),
        (a2.position, a2.sequence, a2.hash)
    );
    assert_eq!(log.last_position().await.unwrap(), at(4));

    // Reading: exact bytes, in order, chains linked.
    let all = log.read_range(1, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=4).map(at).collect::<Vec<_>>()
    );
    assert_eq!(all[1].hash, a2.hash);
    assert_eq!(all[1].envelope.prev_hash, a1.hash.to_vec());
    assert_eq!(all[0].envelope.prev_hash, ZERO_HASH.to_vec());
    verify_link(None, &all[0]).unwrap();
    verify_link(Some(&all[0]), &all[1]).unwrap();
    assert_eq!(
        log.read_range(at(2), 2)
            .await
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect::<Vec<_>>(),
        vec![at(2), at(3)]
    );
    assert!(log.read_range(at(4) + 1, 10).await.unwrap().is_empty());

    // Racing writers on one head: exactly one wins.
    let log = Arc::new(log);
    let head = log.head("fac-a").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append_after(draft("fac-a", &format!("race-{i}")), head).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(a) => {
                assert_eq!(a.sequence, head.sequence + 1);
                won += 1;
            }
            Err(LogError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(log.last_position().await.unwrap(), at(5));
    drop(log);

    // Everything survives reopening.
    let log = open().await;
    assert_eq!(log.last_position().await.unwrap(), at(5));
    let head = log.head("fac-a").await.unwrap();
    assert_eq!((head.sequence, head.position), (3, at(5)));
    let all = log.read_range(1, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[4].hash, head.hash);
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn sled_log_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    rt().block_on(suite(
        || {
            let path = path.clone();
            async move { SledLog::open(&path).unwrap() }
        },
        |n| n,
    ));
}

#[test]
fn jetstream_log_conforms() {
    let nats = jejak_testkit::Nats::start().unwrap();
    let url = nats.url();
    rt().block_on(suite(
        || {
            let url = url.clone();
            async move {
                JetStreamLog::connect(JetStreamConfig::new(url), std::time::Duration::from_secs(10))
                    .await
                    .unwrap()
            }
        },
        crate::jetstream::end_of,
    ));
}

/// A JetStream log on `nats`' stream.
async fn connected(nats: &jejak_testkit::Nats) -> JetStreamLog {
    JetStreamLog::connect(JetStreamConfig::new(nats.url()), std::time::Duration::from_secs(10))
        .await
        .unwrap()
}

/// A setting a process was not given leaves the existing stream's as it
/// is (a bootstrap step started without `--replicas` must not make an R3
/// stream R1); one it was given changes the stream. The duplicate window
/// stands for both (one node cannot hold three replicas).
#[test]
fn jetstream_changes_only_the_stream_settings_it_was_given() {
    let nats = jejak_testkit::Nats::start().unwrap();
    rt().block_on(async {
        let wait = std::time::Duration::from_secs(10);
        let window = |log: &JetStreamLog| log.config().duplicate_window;
        let mut first = JetStreamConfig::new(nats.url());
        first.duplicate_window = std::time::Duration::from_secs(300);
        assert_eq!(
            window(&JetStreamLog::connect(first, wait).await.unwrap()),
            std::time::Duration::from_secs(300)
        );
        // Not given: the default is not pressed on the stream.
        let mut unset = JetStreamConfig::new(nats.url());
        unset.set_duplicate_window = false;
        unset.set_replicas = false;
        let log = JetStreamLog::connect(unset, wait).await.unwrap();
        assert_eq!(window(&log), std::time::Duration::from_secs(300));
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let stored = |js: async_nats::jetstream::Context| async move {
            js.get_stream("JEJAK")
                .await
                .unwrap()
                .info()
                .await
                .unwrap()
                .config
                .duplicate_window
        };
        assert_eq!(stored(js.clone()).await, std::time::Duration::from_secs(300));
        // Given: changed.
        let mut given = JetStreamConfig::new(nats.url());
        given.duplicate_window = std::time::Duration::from_secs(180);
        JetStreamLog::connect(given, wait).await.unwrap();
        assert_eq!(stored(js).await, std::time::Duration::from_secs(180));
    });
}

/// `chain_heads` gives every chain's head as `head` does, for chains whose
/// names need escaping in a subject too, and none for an empty stream.
#[test]
fn jetstream_chain_heads_are_every_chains_head() {
    let nats = jejak_testkit::Nats::start().unwrap();
    rt().block_on(async {
        let log = connected(&nats).await;
        assert!(log.chain_heads().await.unwrap().is_empty());
        let chains = ["fac-a", "fac b/Klaten", "access", "fac.c"];
        let mut heads = Vec::new();
        for round in 0..3 {
            for (i, chain) in chains.iter().enumerate().skip(round) {
                let head = log.head(chain).await.unwrap();
                log.append_after(draft(chain, &format!("{i}-{round}")), head)
                    .await
                    .unwrap();
            }
        }
        for chain in chains {
            heads.push((chain.to_string(), log.head(chain).await.unwrap()));
        }
        let mut listed = log.chain_heads().await.unwrap();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        heads.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(listed, heads);
        assert!(heads.iter().all(|(_, h)| h.position > 0), "{heads:?}");
    });
}

#[test]
fn the_settings_check_names_each_setting_echoed_differently_with_the_server_version() {
    let nats = jejak_testkit::Nats::start().unwrap();
    rt().block_on(async {
        let log = connected(&nats).await;
        // A setting the server echoes differently is named, with the version.
        let mut asked = async_nats::jetstream::stream::Config {
            name: "JEJAK".into(),
            max_messages_per_subject: 7,
            ..Default::default()
        };
        let echoed = async_nats::jetstream::stream::Config {
            name: "JEJAK".into(),
            ..Default::default()
        };
        let err = crate::jetstream::check_echo("stream", &asked, &echoed, &log.server_version()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("max_msgs_per_subject") && text.contains("2.9"), "{text}");
        asked.max_messages_per_subject = 0;
        crate::jetstream::check_echo("stream", &asked, &echoed, "2.9.10").unwrap();
    });
}

proptest::proptest! {
    #[test]
    fn chain_tokens_are_subject_safe_and_reversible(chain in "[A-Za-z0-9._:@-]{1,64}") {
        let token = chain_token(&chain);
        proptest::prop_assert!(!token.contains(['.', '*', '>', ' ']));
        proptest::prop_assert_eq!(chain_from_token(&token), Some(chain));
    }
}

#[test]
fn jetstream_refuses_to_run_when_the_server_drops_or_differs_from_a_setting() {
    let nats = jejak_testkit::Nats::start().unwrap();
    rt().block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        // A stream of that name made by someone else, on other subjects.
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "JEJAK".into(),
            subjects: vec!["elsewhere.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        let err = JetStreamLog::connect(JetStreamConfig::new(nats.url()), std::time::Duration::from_secs(5))
            .await
            .err()
            .expect("a stream on other subjects is refused");
        let text = err.to_string();
        assert!(text.contains("`subjects`") && text.contains("2.9"), "{text}");

        // A consumer setting nats-server does not know is dropped without a
        // word; the echo shows it. (async-nats sends `memory_storage` under
        // a key the server ignores.)
        let stream = js.get_stream("JEJAK").await.unwrap();
        let asked = async_nats::jetstream::consumer::pull::Config {
            memory_storage: true,
            ..Default::default()
        };
        let c = stream.create_consumer(asked.clone()).await.unwrap();
        let err = crate::jetstream::check_echo("consumer", &asked, &c.cached_info().config, "2.9.10").unwrap_err();
        assert!(err.to_string().contains("`memory_storage`"), "{err}");
    });
}

/// A batch sent as one message reads back, through every way of reading
/// the stream, as its events in order at their own positions, after and
/// before single messages; sent again, it is a duplicate.
#[test]
fn jetstream_reads_a_batch_as_its_events() {
    let nats = jejak_testkit::Nats::start().unwrap();
    rt().block_on(async {
        let log = connected(&nats).await;
        let a1 = log
            .append_after(draft("fac-a", "a1"), ChainHead::default())
            .await
            .unwrap();
        let mut head = log.head("fac-a").await.unwrap();
        let mut envelopes = Vec::new();
        let mut ids = Vec::new();
        for i in 0..4 {
            let id = format!("batch-{i}");
            let prepared = crate::jetstream::prepare(&draft("fac-a", &id), head).unwrap();
            head = ChainHead {
                sequence: prepared.sequence,
                hash: prepared.hash,
                position: head.position,
            };
            envelopes.push(prepared.bytes);
            ids.push(id);
        }
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let message_id = crate::jetstream::batch_id(&id_refs);
        let payload = crate::jetstream::batch_payload(&envelopes);
        let send = || log.send("fac-a", payload.clone(), &message_id, a1.position, None);
        let sent = match send().await.outcome().await {
            crate::jetstream::PublishOutcome::Stored(ack) => ack,
            other => panic!("{other:?}"),
        };
        assert!(!sent.duplicate);
        let again = match send().await.outcome().await {
            crate::jetstream::PublishOutcome::Stored(ack) => ack,
            other => panic!("{other:?}"),
        };
        assert!(again.duplicate && again.sequence == sent.sequence);
        let b1 = log
            .append_after(draft("fac-b", "b1"), ChainHead::default())
            .await
            .unwrap();

        let end = crate::jetstream::end_of(sent.sequence);
        let all = log.read_range(1, 100).await.unwrap();
        let read: Vec<(u64, &str)> = all.iter().map(|e| (e.position, e.envelope.event_id.as_str())).collect();
        let mut want = vec![(a1.position, "a1")];
        want.extend((0..4).map(|i| (crate::jetstream::position(sent.sequence, 4, i), id_refs[i])));
        want.push((b1.position, "b1"));
        assert_eq!(read, want);
        assert_eq!(want[4].0, end);
        assert_eq!(log.last_position().await.unwrap(), b1.position);
        for w in all[..5].windows(2) {
            verify_link(Some(&w[0]), &w[1]).unwrap();
        }
        // The chain's head is the batch's last event.
        let head = log.head("fac-a").await.unwrap();
        assert_eq!((head.sequence, head.position, head.hash), (5, end, all[4].hash));
        // One event by its position; a position inside the message that
        // holds no event is nothing.
        assert_eq!(log.read(want[2].0).await.unwrap().unwrap().envelope.event_id, "batch-1");
        assert!(log
            .read(crate::jetstream::position(sent.sequence, 5, 0))
            .await
            .unwrap()
            .is_none());
        // From the middle of the message on.
        let from = log.read_range(want[3].0, 10).await.unwrap();
        assert_eq!(from.len(), 3);
        assert_eq!(from[0].envelope.event_id, "batch-2");
    });
}

/// Asked where the stream ends while nats-server answers nothing (paused),
/// `last_position` says UNAVAILABLE after its short timeout, and
/// `end_at_start` asks again until the server answers.
#[test]
fn a_process_starting_asks_again_where_the_stream_ends_until_nats_answers() {
    let nats = jejak_testkit::Nats::start().unwrap();
    rt().block_on(async {
        let log = connected(&nats).await;
        nats.node.pause().unwrap();
        let err = log.last_position().await.unwrap_err();
        assert!(matches!(err, LogError::Unavailable(_)), "{err}");
        let asking = tokio::spawn({
            let log = log.clone();
            async move { log.end_at_start().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        assert!(!asking.is_finished(), "still asking while nats-server is paused");
        nats.node.resume().unwrap();
        assert_eq!(asking.await.unwrap().unwrap(), 0, "an empty stream");
    });
}

/// An event stored on another chain's subject (a publisher other than
/// jejak, or one misconfigured) is refused as corrupt by every read, which
/// names the subject, rather than applied where the capture path, finding
/// heads by subject, would miss it.
#[test]
fn an_event_on_another_chains_subject_is_refused_as_corrupt() {
    let nats = jejak_testkit::Nats::start().unwrap();
    rt().block_on(async {
        let log = connected(&nats).await;
        let first = log
            .append_after(draft("fac-a", "a1"), ChainHead::default())
            .await
            .unwrap();
        let stored = log.read(first.position).await.unwrap().unwrap();
        async_nats::jetstream::new(log.client().clone())
            .publish(log.subject("fac-b"), stored.bytes.clone().into())
            .await
            .unwrap()
            .await
            .unwrap();
        let moved = crate::jetstream::end_of(2);
        let refused = |r: Result<_, LogError>, what: &str| match r {
            Err(LogError::Corrupt { position, reason }) => {
                assert_eq!(position, moved, "{what}");
                assert!(
                    reason.contains("\"fac-a\"") && reason.contains("jejak.events.fac-b"),
                    "{what}: {reason}"
                );
            }
            other => panic!("{what}: {other:?}"),
        };
        refused(log.read(moved).await.map(|_| ()), "a direct read");
        refused(log.read_from_leader(moved).await.map(|_| ()), "a read from the leader");
        refused(log.read_range(1, 10).await.map(|_| ()), "an ordered read");
        // The event on its own subject still reads.
        assert_eq!(log.read(first.position).await.unwrap().unwrap().hash, stored.hash);
    });
}
