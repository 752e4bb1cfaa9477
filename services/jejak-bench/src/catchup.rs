//! A projector catching up with a big stream: a genealogy of about `--lots`
//! events is generated into a log, its envelopes published as they are
//! (exact bytes, on their chains' subjects, message id = event id) to a
//! one-node nats-server, and then `jejak projector` is started on the
//! stream and timed until it has applied the whole of it; then `jejak
//! serve --nats` is started on the projector's data directory and timed
//! until it serves capture.

use std::time::{Duration, Instant};

use anyhow::Context;

use futures_util::StreamExt;
use jejak_log::{ChainLog, EventLog, JetStreamConfig, JetStreamLog, SledLog};
use jejak_testkit::{Nats, Role, Server, ServerOptions};

use crate::bench::{stop, BenchOptions};

/// Acknowledgements the publisher keeps in flight.
const WINDOW: usize = 512;

/// Publishes `run` (consecutive envelopes of one chain) as one message on
/// its chain's subject, as the capture would.
async fn publish(
    js: &async_nats::jetstream::Context,
    stream: &JetStreamLog,
    run: Vec<jejak_log::StoredEvent>,
) -> anyhow::Result<async_nats::jetstream::context::PublishAckFuture> {
    let ids: Vec<&str> = run.iter().map(|e| e.envelope.event_id.as_str()).collect();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", jejak_log::jetstream::batch_id(&ids).as_str());
    let envelopes: Vec<bytes::Bytes> = run.iter().map(|e| bytes::Bytes::from(e.bytes.clone())).collect();
    let first = run.first().context("an empty message")?;
    let subject = stream.subject(&first.envelope.chain);
    Ok(js
        .publish_with_headers(subject, headers, jejak_log::jetstream::batch_payload(&envelopes))
        .await?)
}

/// `jejak` in `role` on the stream of `nats`, with `data` as its directory.
async fn start_on(role: Role, nats: &Nats, data: &std::path::Path) -> anyhow::Result<Server> {
    let (url, data) = (nats.url(), data.to_path_buf());
    tokio::task::spawn_blocking(move || {
        Server::start(ServerOptions {
            role,
            nats: Some(url),
            data_dir: Some(data),
            start_timeout: Some(Duration::from_secs(600)),
            ..Default::default()
        })
    })
    .await?
}

pub(crate) async fn catchup(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let dir = opts.dir.join("catchup");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let log = SledLog::open(&dir.join("log"))?;
    let (events, _, _) = crate::bench::generate(&log, opts.lots)?;
    let total = crate::bench::all_durable(&log, events).await?;
    eprintln!("catchup: {events} events generated");

    let nats = Nats::start()?;
    let stream = JetStreamLog::connect(JetStreamConfig::new(nats.url()), Duration::from_secs(30)).await?;
    let js = async_nats::jetstream::new(stream.client().clone());
    let started = Instant::now();
    let mut acks = futures_util::stream::FuturesOrdered::new();
    let most = opts.message_events.clamp(1, jejak_log::jetstream::MAX_BATCH);
    let mut messages = 0u64;
    let mut from = 1;
    // Consecutive envelopes of one chain, up to `most`, go as one message.
    let mut run: Vec<jejak_log::StoredEvent> = Vec::new();
    while from <= total {
        for e in log.read_durable(from, 4096)? {
            from = e.position + 1;
            if run.first().is_some_and(|f| f.envelope.chain != e.envelope.chain) || run.len() >= most {
                acks.push_back(std::future::IntoFuture::into_future(
                    publish(&js, &stream, std::mem::take(&mut run)).await?,
                ));
                messages += 1;
            }
            run.push(e);
            while acks.len() >= WINDOW {
                if let Some(a) = acks.next().await {
                    a?;
                }
            }
        }
    }
    if !run.is_empty() {
        acks.push_back(std::future::IntoFuture::into_future(publish(&js, &stream, run).await?));
        messages += 1;
    }
    while let Some(a) = acks.next().await {
        a?;
    }
    let published = started.elapsed();
    drop(log);
    eprintln!("catchup: {total} envelopes published in {messages} messages in {published:.1?}");
    let end = stream.last_position().await?;

    let data = dir.join("projector");
    let started = Instant::now();
    let projector = start_on(Role::Projector, &nats, &data).await?;
    loop {
        let s = projector.status().await?;
        if s.applied_position >= end {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "the projector did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    // Then until the process is idle (its CPU time grows by less than 20 ms
    // in half a second): what it still does after the projection (its tree,
    // its alert follower) counted too.
    let pid = projector.pid().context("the projector's process id")?;
    let used = crate::bench::wait_idle(pid, Duration::from_secs(900)).await?;
    let idle = started.elapsed().saturating_sub(Duration::from_millis(500));
    stop(projector).await;

    // `serve --nats` started on that data directory (projection and tree
    // stored, nothing new on the stream): until it serves capture, which
    // it does once its cache knows every chain head.
    let started = Instant::now();
    let served = start_on(Role::Serve, &nats, &data).await?;
    let ready = started.elapsed();
    let status = served.status().await?;
    anyhow::ensure!(
        status.applied_position >= end,
        "serve --nats started at {} of {total}",
        status.applied_position
    );
    stop(served).await;
    Ok(vec![
        (
            format!(
                "catchup: {total} envelopes published to JetStream (R1) in {messages} messages, {WINDOW} acks in flight"
            ),
            format!(
                "{:.1} s ({:.0} events/s)",
                published.as_secs_f64(),
                total as f64 / published.as_secs_f64()
            ),
        ),
        (
            format!("catchup: jejak projector from start until it applied all {total}"),
            format!(
                "{:.1} s ({:.0} events/s)",
                took.as_secs_f64(),
                total as f64 / took.as_secs_f64()
            ),
        ),
        (
            "catchup: jejak projector busy until (projection, tree, alerts)".into(),
            format!(
                "{:.1} s ({:.0} events/s), {:.1} CPU-seconds",
                idle.as_secs_f64(),
                total as f64 / idle.as_secs_f64(),
                used.as_secs_f64()
            ),
        ),
        (
            "catchup: then serve --nats on its data directory, until it serves capture".into(),
            format!("{:.1} s", ready.as_secs_f64()),
        ),
    ])
}
