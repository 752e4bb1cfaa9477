//! The embedded projector: follows the log's durable position and applies
//! new events to the genealogy projection in batches. The projection stores
//! its position in the same batch as the changes, so the projector resumes
//! where the store says after any crash.

use std::sync::Arc;

use anyhow::Context;
use jejak_domain::Time;
use jejak_genealogy::{AppliedEvent, Projection};
use jejak_log::{EventLog, StoredEvent};
use tokio_util::sync::CancellationToken;

/// Events per projection batch (one sled batch, one write lock).
pub const BATCH: usize = 2048;
/// How long the projector must be idle before it writes the projection.
const IDLE_PERSIST: std::time::Duration = std::time::Duration::from_secs(1);
/// Below this many new events the projector waits `COALESCE_WAIT` for more.
const COALESCE_EVENTS: usize = 1024;
/// The most a capture waits, beyond its own flush, to become visible to traces.
const COALESCE_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

fn decode(e: &StoredEvent) -> anyhow::Result<(String, Time, jejak_domain::Event)> {
    let event = e
        .envelope
        .event
        .clone()
        .with_context(|| format!("log position {} has no event", e.position))?;
    let event =
        jejak_proto::decode_event(event).with_context(|| format!("decode the event at log position {}", e.position))?;
    let recorded = e
        .envelope
        .recorded_at
        .and_then(|t| Time::from_unix(t.seconds, t.nanos))
        .unwrap_or_default();
    Ok((e.envelope.event_id.clone(), recorded, event))
}

/// Applies every event after the projection's position up to `upto`;
/// returns the new position. `progress` is told how many events were applied.
pub fn catch_up<L: EventLog>(
    log: &L,
    projection: &Projection,
    upto: u64,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<u64> {
    type Decoded = Vec<(u64, String, Time, jejak_domain::Event)>;
    // Reading and decoding the next batch overlaps with applying this one.
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<anyhow::Result<Decoded>>(2);
        let start = projection.position() + 1;
        let reader = scope.spawn(move || {
            let mut from = start;
            while from <= upto {
                let batch = log
                    .read_from(from, BATCH)
                    .context("read the event log")
                    .and_then(|stored| {
                        stored
                            .iter()
                            .take_while(|e| e.position <= upto)
                            .map(|e| decode(e).map(|(id, at, ev)| (e.position, id, at, ev)))
                            .collect::<anyhow::Result<Decoded>>()
                    });
                let last = match &batch {
                    Ok(b) if b.is_empty() => return,
                    Ok(b) => b.last().map_or(from, |e| e.0),
                    Err(_) => upto,
                };
                if tx.send(batch).is_err() {
                    return;
                }
                from = last + 1;
            }
        });
        let mut result = Ok(projection.position());
        for batch in rx {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let applied: Vec<AppliedEvent<'_>> = batch
                .iter()
                .map(|(position, id, at, ev)| AppliedEvent {
                    position: *position,
                    event_id: id,
                    recorded_at: *at,
                    event: ev,
                })
                .collect();
            if let Err(e) = projection.apply(&applied).context("apply events to the projection") {
                result = Err(e);
                break;
            }
            progress(applied.len() as u64);
            result = Ok(projection.position());
        }
        // Dropping the receiver (end of the loop) stops the reader.
        let _ = reader.join();
        result
    })
}

/// Runs until cancelled, applying durable events as they arrive.
pub async fn run<L: EventLog + Clone>(
    log: L,
    projection: Arc<Projection>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut durable = log.subscribe();
    loop {
        let mut upto = *durable.borrow_and_update();
        let behind = upto.saturating_sub(projection.position());
        if behind > 0 && behind < COALESCE_EVENTS as u64 {
            // A trickle of events: wait a moment so they are applied in one
            // batch (one sled batch, one write lock) instead of one by one.
            let _ = tokio::time::timeout(COALESCE_WAIT, cancel.cancelled()).await;
            upto = *durable.borrow_and_update();
        }
        if projection.position() < upto {
            let (log, proj) = (log.clone(), projection.clone());
            tokio::task::spawn_blocking(move || catch_up(&log, &proj, upto, &mut |_| {}))
                .await
                .context("projector task")??;
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = durable.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(IDLE_PERSIST) => {
                // Idle: write what is only in memory, so a restart replays little.
                let proj = projection.clone();
                tokio::task::spawn_blocking(move || proj.persist()).await.context("projector persist task")??;
            }
        }
    }
    let proj = projection.clone();
    tokio::task::spawn_blocking(move || proj.flush())
        .await
        .context("projector flush task")??;
    Ok(())
}
