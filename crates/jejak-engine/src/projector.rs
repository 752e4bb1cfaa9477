//! The projector: applies the log's events to the genealogy projection in
//! batches, from the position the stored projection reflects. The embedded
//! server uses it to bring the projection up to the log at start (after a
//! crash, whatever was only in memory); `jejak rebuild` to recreate it.

use anyhow::Context;
use jejak_domain::Time;
use jejak_genealogy::{AppliedEvent, Projection};
use jejak_log::{EventLog, StoredEvent};

/// Events per projection batch (one sled batch, one write lock).
pub const BATCH: usize = 2048;

pub fn decode(e: &StoredEvent) -> anyhow::Result<(String, Time, jejak_domain::Event)> {
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

/// An event decoded for the projection: position, event id, recording
/// time, event, envelope hash.
pub type Decoded = (u64, String, Time, jejak_domain::Event, [u8; 32]);

/// Decodes stored events for the projection.
pub fn decode_all(events: &[StoredEvent]) -> anyhow::Result<Vec<Decoded>> {
    events
        .iter()
        .map(|e| decode(e).map(|(id, at, ev)| (e.position, id, at, ev, e.hash)))
        .collect()
}

/// The decoded events as the projection applies them.
pub fn applied(batch: &[Decoded]) -> Vec<AppliedEvent<'_>> {
    batch
        .iter()
        .map(|(position, id, at, ev, hash)| AppliedEvent {
            position: *position,
            event_id: id,
            recorded_at: *at,
            event: ev,
            hash: *hash,
        })
        .collect()
}

/// Applies every event after the projection's position up to `upto`;
/// returns the new position. `progress` is told how many events were applied.
pub fn catch_up<L: EventLog>(
    log: &L,
    projection: &Projection,
    upto: u64,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<u64> {
    // Reading and decoding the next batch overlaps with applying this one.
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<anyhow::Result<Vec<Decoded>>>(2);
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
                            .map(|e| decode(e).map(|(id, at, ev)| (e.position, id, at, ev, e.hash)))
                            .collect::<anyhow::Result<Vec<Decoded>>>()
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
            let applied = applied(&batch);
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
