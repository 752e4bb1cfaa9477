//! Bulk capture (`CaptureStream`) on both engines: many commands on one
//! stream, each answered as its unary RPC would be, in order; a refused
//! command in the middle writes nothing and does not end the stream; a
//! retried stream writes nothing twice; a client that goes away halfway
//! leaves every command recorded once or not at all.

use jejak_server::demo::ids::TEGAL;

use jejak_proto::v1 as p;
use tonic::Code;

use crate::support::{on_both_engines, Demo, WAIT};

on_both_engines!(
    each_command_is_answered_in_order_and_a_refusal_in_the_middle_writes_nothing,
    a_client_that_goes_away_halfway_leaves_each_command_recorded_once_or_not_at_all,
    a_stream_broken_by_a_message_too_large_answers_every_command_before_it,
);

/// The rule tests' receipt and drying, in kilograms, as bulk commands.
fn receipt(cmd: &str, lot: &str, kg: &str) -> p::command::Kind {
    p::command::Kind::ReceiveMaterial(crate::rules::receipt(cmd, lot, kg, p::Unit::Kg))
}

fn drying(cmd: &str, input: &str, kg: &str, output: &str) -> p::command::Kind {
    p::command::Kind::ProcessLots(crate::rules::drying(cmd, input, kg, p::Unit::Kg, output))
}

/// Sends `commands` on one stream and collects every answer.
async fn stream(d: &mut Demo, commands: Vec<Option<p::command::Kind>>) -> Vec<p::CaptureStreamReply> {
    let outbound = tokio_stream::iter(commands.into_iter().map(|kind| p::Command { kind }));
    let mut replies = d
        .capture
        .capture_stream(outbound)
        .await
        .expect("open a bulk stream")
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = replies.message().await.expect("read an answer") {
        out.push(r);
    }
    out
}

fn recorded(r: &p::CaptureStreamReply) -> &p::CaptureReply {
    match &r.outcome {
        Some(p::capture_stream_reply::Outcome::Recorded(reply)) => reply,
        other => panic!("answer {} is not a recording: {other:?}", r.index),
    }
}

fn refusal(r: &p::CaptureStreamReply) -> &p::CommandRefused {
    match &r.outcome {
        Some(p::capture_stream_reply::Outcome::Refused(refused)) => refused,
        other => panic!("answer {} is not a refusal: {other:?}", r.index),
    }
}

/// A message the server will not read (larger than its limit) ends the
/// stream, but only after every command sent before it was answered: the
/// client learns the fate of each, and then why the stream ended.
async fn a_stream_broken_by_a_message_too_large_answers_every_command_before_it(mut d: Demo) {
    const N: usize = 300;
    let before = d.position().await;
    let mut commands: Vec<p::Command> = (0..N)
        .map(|i| p::Command {
            kind: Some(receipt(&format!("brk-rcv-{i}"), &format!("BRK-{i}"), "10")),
        })
        .collect();
    commands.push(p::Command {
        kind: Some(receipt(
            "brk-rcv-big",
            &"X".repeat(jejak_proto::MAX_MESSAGE_SIZE + 1),
            "10",
        )),
    });
    let mut replies = d
        .capture
        .capture_stream(tokio_stream::iter(commands))
        .await
        .expect("open a bulk stream")
        .into_inner();
    let mut answers = Vec::new();
    let ended = loop {
        match replies.message().await {
            Ok(Some(r)) => answers.push(r),
            Ok(None) => break None,
            Err(status) => break Some(status),
        }
    };
    let ended = ended.expect("the stream ends with the reason it broke");
    // As for a unary request: the limit named.
    assert_eq!(ended.code(), Code::ResourceExhausted, "{ended:?}");
    assert!(
        ended.message().contains(&jejak_proto::MAX_MESSAGE_SIZE.to_string()),
        "{ended:?}"
    );
    assert_eq!(answers.len(), N, "every command before the large one is answered");
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.index, i as u64);
        assert!(!recorded(a).replayed);
    }
    assert_eq!(d.position().await - before, N as u64, "nothing of the large one");
}

async fn each_command_is_answered_in_order_and_a_refusal_in_the_middle_writes_nothing(mut d: Demo) {
    let before = d.position().await;
    let commands = vec![
        Some(receipt("bulk-rcv-a", "BULK-A", "1000")),
        Some(drying("bulk-dry-1", "BULK-A", "600", "BULK-A-D1")),
        // Only 400 kg are left: refused, and the stream goes on.
        Some(drying("bulk-dry-2", "BULK-A", "600", "BULK-A-D2")),
        // An unknown product, an empty command, a facility not the caller's
        // business to name wrongly: each refused as its unary RPC would be.
        Some(p::command::Kind::ReceiveMaterial(p::ReceiveMaterialRequest {
            product_id: "no-such-product".into(),
            ..match receipt("bulk-rcv-x", "BULK-X", "5") {
                p::command::Kind::ReceiveMaterial(r) => r,
                _ => unreachable!(),
            }
        })),
        None,
        Some(receipt("bulk-rcv-b", "BULK-B", "50")),
        // The first command again, in the same stream: its first result.
        Some(receipt("bulk-rcv-a", "BULK-A", "1000")),
        // Its id with other content.
        Some(receipt("bulk-rcv-a", "BULK-A", "999")),
        Some(drying("bulk-dry-3", "BULK-A", "400", "BULK-A-D3")),
    ];
    let answers = stream(&mut d, commands.clone()).await;
    assert_eq!(
        answers.iter().map(|r| r.index).collect::<Vec<_>>(),
        (0..9).collect::<Vec<u64>>(),
        "one answer per command, in order"
    );
    let first = recorded(&answers[0]).clone();
    assert!(!first.replayed);
    assert!(!recorded(&answers[1]).replayed);
    let mass = refusal(&answers[2]);
    assert_eq!(Code::from_i32(mass.code), Code::FailedPrecondition, "{mass:?}");
    assert_eq!(mass.rule, "mass-balance");
    assert_eq!(mass.reason, "MASS_BALANCE");
    assert!(mass.message.contains("\"BULK-A\""), "{mass:?}");
    let unknown = refusal(&answers[3]);
    assert_eq!(Code::from_i32(unknown.code), Code::NotFound, "{unknown:?}");
    assert!(unknown.message.contains("no-such-product"), "{unknown:?}");
    let empty = refusal(&answers[4]);
    assert_eq!(Code::from_i32(empty.code), Code::InvalidArgument, "{empty:?}");
    assert!(!recorded(&answers[5]).replayed);
    let again = recorded(&answers[6]);
    assert!(again.replayed);
    assert_eq!((again.position, &again.hash), (first.position, &first.hash));
    let reused = refusal(&answers[7]);
    assert_eq!(Code::from_i32(reused.code), Code::AlreadyExists, "{reused:?}");
    // Decided after everything before it: exactly what was left.
    assert!(!recorded(&answers[8]).replayed);
    let after = d.position().await;
    assert_eq!(after - before, 4, "four events recorded, nothing for the refusals");
    assert_eq!(d.lot("BULK-A").await.balance.map(|q| q.value), Some("0".into()));

    // The same stream again: nothing is written twice, and every refusal
    // is the same.
    let retried = stream(&mut d, commands).await;
    assert_eq!(retried.len(), 9);
    for i in [0, 1, 5, 6, 8] {
        let r = recorded(&retried[i]);
        assert!(r.replayed, "answer {i}: {r:?}");
        assert_eq!(r.position, recorded(&answers[i]).position, "answer {i}");
    }
    for i in [2, 3, 4, 7] {
        assert_eq!(refusal(&retried[i]).code, refusal(&answers[i]).code, "answer {i}");
    }
    assert_eq!(d.position().await, after);

    // An operator of another facility: its commands at Demak are refused
    // one by one, the stream itself is not.
    let token = d
        .server
        .issue_token(
            p::AccessRole::Operator,
            &[TEGAL],
            "",
            std::time::Duration::from_secs(600),
        )
        .await
        .expect("an operator token for Tegal");
    let after = d.position().await; // the token's own event
    let mut other = p::capture_service_client::CaptureServiceClient::new(
        d.server
            .conn(Some(&token))
            .await
            .expect("a connection with the Tegal token"),
    );
    let outbound = tokio_stream::iter([p::Command {
        kind: Some(receipt("bulk-rcv-tegal", "BULK-T", "5")),
    }]);
    let mut replies = other.capture_stream(outbound).await.expect("open").into_inner();
    let denied = replies.message().await.expect("an answer").expect("one answer");
    assert_eq!(
        Code::from_i32(refusal(&denied).code),
        Code::PermissionDenied,
        "{denied:?}"
    );
    assert!(replies.message().await.expect("the end").is_none());
    assert_eq!(d.position().await, after);
}

async fn a_client_that_goes_away_halfway_leaves_each_command_recorded_once_or_not_at_all(mut d: Demo) {
    const N: usize = 3000;
    let before = d.position().await;
    let commands: Vec<p::command::Kind> = (0..N)
        .map(|i| receipt(&format!("bulk-gone-{i}"), &format!("BULK-G-{i}"), "1"))
        .collect();
    {
        let outbound = tokio_stream::iter(commands.clone().into_iter().map(|k| p::Command { kind: Some(k) }));
        let mut replies = d.capture.capture_stream(outbound).await.expect("open").into_inner();
        for _ in 0..100 {
            let r = replies.message().await.expect("an answer").expect("more answers");
            assert!(!recorded(&r).replayed);
        }
        // Dropped here: the client goes away with most answers unread.
    }
    // Every command once: what the first stream recorded is replayed, the
    // rest is recorded now, and nothing is recorded twice.
    let outbound = tokio_stream::iter(commands.into_iter().map(|k| p::Command { kind: Some(k) }));
    let mut replies = d
        .capture
        .capture_stream(outbound)
        .await
        .expect("open again")
        .into_inner();
    let (mut replayed, mut fresh) = (0, 0);
    let mut positions = std::collections::HashSet::new();
    while let Some(r) = replies.message().await.expect("an answer") {
        let reply = recorded(&r);
        assert!(
            positions.insert(reply.position),
            "position {} answered twice",
            reply.position
        );
        if reply.replayed {
            replayed += 1;
        } else {
            fresh += 1;
        }
    }
    assert_eq!(replayed + fresh, N);
    assert!(replayed >= 100, "the first 100 answered were recorded: {replayed}");
    d.server.wait_projected(WAIT).await.expect("projected");
    assert_eq!(
        d.position().await - before,
        N as u64,
        "each command recorded exactly once"
    );
}

/// Unary callers that give up while their publish is in flight (deadlines
/// of a fraction of a millisecond, cut off by the server) leave nothing
/// behind in the NATS capture service's pipeline: master data, which goes
/// alone once nothing is in flight, is recorded at once afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_give_up_mid_publish_leave_the_nats_pipeline_free() {
    let mut d = Demo::start_nats().await;
    let mut cut = 0;
    for i in 0..300u64 {
        let p::command::Kind::ReceiveMaterial(r) = receipt(&format!("gone-{i}"), &format!("GONE-{i}"), "1") else {
            unreachable!()
        };
        let mut request = tonic::Request::new(r);
        request.set_timeout(std::time::Duration::from_micros(200 + 15 * i));
        if d.capture.receive_material(request).await.is_err() {
            cut += 1;
        }
    }
    assert!(cut > 0, "some callers gave up");
    let started = std::time::Instant::now();
    d.capture
        .register_party(p::RegisterPartyRequest {
            command_id: "after-the-gone".into(),
            party: Some(p::Party {
                id: "ukm-after".into(),
                name: "UKM Sesudah".into(),
                roles: vec![p::PartyRole::Ukm as i32],
                ..Default::default()
            }),
        })
        .await
        .expect("master data is recorded");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "master data waited {:?} for the pipeline",
        started.elapsed()
    );
}

/// A bulk client on NATS that stops reading its answers holds up only
/// itself: the commands it has in flight still settle, so master data
/// (which goes alone, once nothing of this instance is in flight) from
/// another caller is recorded meanwhile; the answers are all there when
/// the client reads on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats_a_bulk_client_that_stops_reading_holds_up_nobody_else() {
    const N: usize = 30_000;
    let d = Demo::start_nats().await;
    let before = d.position().await;
    let outbound = tokio_stream::iter((0..N).map(|i| p::Command {
        kind: Some(receipt(&format!("unread-{i}"), &format!("UNREAD-{i}"), "1")),
    }));
    let mut replies = d
        .capture
        .clone()
        .capture_stream(outbound)
        .await
        .expect("open a bulk stream")
        .into_inner();
    // Nothing read: wait until the log stops growing (the answers' buffers
    // are full and the stream waits for its reader) or holds everything.
    let mut last = d.position().await;
    let bound = std::time::Duration::from_secs(120);
    let give_up = tokio::time::Instant::now() + bound;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let now = d.position().await;
        if now == last || now - before >= N as u64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "the log still grows after {bound:?}"
        );
        last = now;
    }
    // On a connection of its own (the unread stream's answers fill its
    // connection's flow-control window).
    let mut other = d.server.capture().await.expect("another capture client");
    let party = other.register_party(p::RegisterPartyRequest {
        command_id: "beside-the-unread".into(),
        party: Some(p::Party {
            id: "ukm-beside".into(),
            name: "UKM Sebelah".into(),
            roles: vec![p::PartyRole::Ukm as i32],
            ..Default::default()
        }),
    });
    let party = tokio::time::timeout(std::time::Duration::from_secs(20), party).await;
    assert!(
        matches!(party, Ok(Ok(_))),
        "master data beside a stream nobody reads: {party:?}"
    );
    let mut answered = 0;
    while let Some(r) = replies.message().await.expect("an answer") {
        assert_eq!(r.index, answered as u64);
        assert!(!recorded(&r).replayed);
        answered += 1;
    }
    assert_eq!(answered, N);
    assert_eq!(d.position().await - before, N as u64 + 1);
}
