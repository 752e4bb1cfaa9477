//! Keeping the transparency log's tree up with the event log: one leaf per
//! event, in log order, appended after the event is durable. The tree is
//! derived: a tree whose last leaf is not the commitment of the envelope at
//! its position (another log, or a log rewritten underneath it) is rebuilt
//! from the envelopes, and a rewritten log then no longer matches the
//! checkpoints it signed.

use std::sync::Arc;

use anyhow::Context;
use jejak_log::tlog::{commitment, TreeStore};
use jejak_log::{EventLog, StoredEvent};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Events per tree batch.
pub const BATCH: usize = 2048;

/// The leaves of stored events, in order.
pub fn leaves(events: &[StoredEvent]) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
    events.iter().map(|e| Ok((e.position, commitment(e)?.leaf))).collect()
}

/// Whether the tree's last leaf is the commitment of the log's envelope at
/// its position; when not, the tree is emptied (to be rebuilt) and the
/// reason returned.
pub fn check_tree<L: EventLog>(log: &L, tree: &TreeStore) -> anyhow::Result<Option<String>> {
    if tree.size() == 0 {
        return Ok(None);
    }
    let (position, data) = tree.entry(tree.size() - 1)?;
    let why = match log.read(position)? {
        None => Some(format!(
            "the tree's last leaf is of log position {position}, which the log does not have"
        )),
        Some(e) if commitment(&e)?.leaf != data => Some(format!(
            "the tree's last leaf is not the commitment of the envelope at log position {position}"
        )),
        Some(_) => None,
    };
    if why.is_some() {
        tree.clear().context("empty the transparency log's tree")?;
    }
    Ok(why)
}

/// Appends the leaves of every event after the tree's last one up to
/// `upto`; returns the tree size.
pub fn catch_up<L: EventLog>(log: &L, tree: &TreeStore, upto: u64) -> anyhow::Result<u64> {
    let mut from = tree.last_position() + 1;
    while from <= upto {
        let stored = log.read_from(from, BATCH).context("read the event log")?;
        let stored: Vec<StoredEvent> = stored.into_iter().take_while(|e| e.position <= upto).collect();
        let Some(last) = stored.last().map(|e| e.position) else {
            break;
        };
        tree.append(&leaves(&stored)?)
            .context("extend the transparency log's tree")?;
        from = last + 1;
    }
    Ok(tree.size())
}

/// Extends the tree as the log's durable position moves, and tells
/// `grown` the tree's size after each extension.
pub async fn keep<L: EventLog + Clone>(
    log: L,
    tree: Arc<TreeStore>,
    grown: watch::Sender<u64>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut durable = log.subscribe();
    loop {
        let upto = *durable.borrow_and_update();
        let size = {
            let (log, tree) = (log.clone(), tree.clone());
            tokio::task::spawn_blocking(move || catch_up(&log, &tree, upto))
                .await
                .context("transparency log task")??
        };
        grown.send_if_modified(|s| std::mem::replace(s, size) != size);
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            changed = durable.changed() => if changed.is_err() { return Ok(()) },
        }
    }
}
