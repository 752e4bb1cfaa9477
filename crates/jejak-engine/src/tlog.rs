//! Keeping the transparency log's tree up with the event log: one leaf per
//! event, in log order, appended after the event is durable. The tree is
//! derived: a tree whose last leaf is not the commitment of the envelope at
//! its position (another log, or a log rewritten underneath it) is rebuilt
//! from the envelopes, and a rewritten log then no longer matches the
//! checkpoints it signed.

use anyhow::Context;
use jejak_log::tlog::{leaf_of, TreeStore};
use jejak_log::{EventLog, StoredEvent};
use tokio::sync::watch;

/// Events per tree batch.
pub const BATCH: usize = 2048;
/// How long the tree lets appends gather before it takes them: fewer,
/// larger batches rewrite the last tiles less often (the checkpoint that
/// covers an append is signed within this and the publisher's interval).
pub const GATHER: std::time::Duration = std::time::Duration::from_millis(200);

/// The leaves of stored events, in order (taking them: no copy of their events).
pub fn leaves(events: Vec<StoredEvent>) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
    events.into_iter().map(|e| Ok((e.position, leaf_of(e)?))).collect()
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
        Some(e) => (leaf_of(e)? != data)
            .then(|| format!("the tree's last leaf is not the commitment of the envelope at log position {position}")),
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
        let stored = log.read_durable(from, BATCH).context("read the event log")?;
        let stored: Vec<StoredEvent> = stored.into_iter().take_while(|e| e.position <= upto).collect();
        let Some(last) = stored.last().map(|e| e.position) else {
            break;
        };
        tree.append(&leaves(stored)?)
            .context("extend the transparency log's tree")?;
        from = last + 1;
    }
    Ok(tree.size())
}

/// Extends the tree as the log's durable position moves, on the calling
/// thread (the server runs it on a thread of its own, at a lower priority:
/// captures come first, and the tree catches up when they pause), and tells
/// `grown` the tree's size after each extension. Returns once `cancelled`.
pub fn keep<L: EventLog>(
    log: &L,
    tree: &TreeStore,
    grown: &watch::Sender<u64>,
    cancelled: &dyn Fn() -> bool,
) -> anyhow::Result<()> {
    while !cancelled() {
        let upto = log.durable_position();
        if upto > tree.last_position() {
            let size = catch_up(log, tree, upto)?;
            grown.send_if_modified(|s| std::mem::replace(s, size) != size);
        }
        std::thread::sleep(GATHER);
    }
    Ok(())
}
