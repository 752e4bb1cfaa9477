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

use crate::offline::Walker;

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

/// A tree brought up to the log by the start's walk of the whole log
/// (`offline::open_writer`), not by reads through the handle the log serves
/// from, which would keep what they read resident: the leaves of the events
/// after its last one, appended in batches as they are walked. A tree whose
/// last leaf is not the commitment of the walked envelope at its position
/// is left as it is, for `check_tree` to empty and `catch_up` to rebuild.
pub struct TreeWalk {
    tree: std::sync::Arc<TreeStore>,
    /// The tree's last leaf: its log position and data.
    last: Option<(u64, Vec<u8>)>,
    leaves: Vec<(u64, Vec<u8>)>,
    stopped: bool,
    failed: Option<anyhow::Error>,
}

impl TreeWalk {
    pub fn new(tree: std::sync::Arc<TreeStore>) -> anyhow::Result<TreeWalk> {
        let last = match tree.size() {
            0 => None,
            n => Some(tree.entry(n - 1).context("read the tree's last leaf")?),
        };
        Ok(TreeWalk {
            tree,
            last,
            leaves: Vec::new(),
            stopped: false,
            failed: None,
        })
    }

    fn append(&mut self) {
        if let Err(e) = self.tree.append(&std::mem::take(&mut self.leaves)) {
            self.failed = Some(anyhow::Error::new(e).context("extend the transparency log's tree"));
            self.stopped = true;
        }
    }

    /// Appends what the walk left; the tree's size.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        if !self.stopped && !self.leaves.is_empty() {
            self.append();
        }
        match self.failed {
            Some(e) => Err(e),
            None => Ok(self.tree.size()),
        }
    }
}

impl Walker for TreeWalk {
    fn see(&mut self, e: &StoredEvent) {
        let after = self.last.as_ref().map_or(0, |(position, _)| *position);
        if self.stopped || e.position < after {
            return;
        }
        let leaf = leaf_of(e.clone());
        if e.position == after {
            // Another log's tree, or a log rewritten underneath it: left to
            // `check_tree`.
            self.stopped = !matches!((&leaf, &self.last), (Ok(l), Some((_, data))) if l == data);
            return;
        }
        match leaf {
            Ok(leaf) => self.leaves.push((e.position, leaf)),
            // Left for `catch_up` to report as it reads the log.
            Err(_) => self.stopped = true,
        }
        if !self.stopped && self.leaves.len() >= BATCH {
            self.append();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jejak_log::{Draft, SledLog};
    use jejak_proto::v1 as p;
    use std::sync::Arc;

    fn receipt(i: usize) -> Draft {
        let chain = if i % 3 == 0 { "fac-b" } else { "fac-a" };
        Draft {
            chain: chain.into(),
            event_id: format!("ev-{i}"),
            actor: "test".into(),
            command_hash: jejak_log::hash(format!("ev-{i}").as_bytes()),
            recorded_at: jejak_proto::time_to_proto(
                jejak_domain::Time::from_unix(1_790_000_000 + i as i64, 0).unwrap(),
            ),
            event: p::Event {
                kind: Some(p::event::Kind::LotStatusChanged(p::LotStatusChanged {
                    facility_id: chain.into(),
                    lot_id: format!("L-{i}"),
                    status: p::LotStatus::OnHold as i32,
                    reason: "test".into(),
                    occurred_at: Some(jejak_proto::time_to_proto(
                        jejak_domain::Time::from_unix(1_790_000_000, 0).unwrap(),
                    )),
                })),
            },
        }
    }

    /// A log of `n` events in `dir`, closed.
    fn log_of(dir: &std::path::Path, n: usize) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let log = SledLog::open(dir).unwrap();
            let mut last = 0;
            for i in 0..n {
                last = log.append(receipt(i)).unwrap().position;
            }
            log.wait_durable(last).await.unwrap();
            log.close().await.unwrap();
        });
    }

    #[test]
    fn a_tree_extended_by_the_walk_is_the_tree_read_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("log");
        log_of(&log_dir, 3 * BATCH + 17);
        // A tree that has the first 1,000 leaves, then walked.
        let walked = Arc::new(TreeStore::open(&dir.path().join("walked")).unwrap());
        {
            let log = SledLog::open(&log_dir).unwrap();
            assert_eq!(catch_up(&log, &walked, 1000).unwrap(), 1000);
        }
        let mut walk = TreeWalk::new(walked.clone()).unwrap();
        let (log, verdict) = SledLog::open_walked(&log_dir, &mut |e| walk.see(e)).unwrap();
        assert_eq!(verdict.unwrap(), 3 * BATCH as u64 + 17);
        assert_eq!(walk.finish().unwrap(), 3 * BATCH as u64 + 17);
        // The same as the tree made by reading the log.
        let read = TreeStore::open(&dir.path().join("read")).unwrap();
        let size = catch_up(&log, &read, log.durable_position()).unwrap();
        assert_eq!(size, walked.size());
        assert_eq!(read.root(size).unwrap(), walked.root(size).unwrap());
        assert_eq!(read.entry(size - 1).unwrap(), walked.entry(size - 1).unwrap());
        assert_eq!(check_tree(&log, &walked).unwrap(), None);
    }

    #[test]
    fn a_tree_of_another_log_is_left_for_the_check_to_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let (ours, other) = (dir.path().join("ours"), dir.path().join("other"));
        log_of(&ours, 40);
        log_of(&other, 30);
        let tree = Arc::new(TreeStore::open(&dir.path().join("tree")).unwrap());
        {
            // The other log's first 20 events differ from ours only in
            // their secrets: the leaves are not the same.
            let log = SledLog::open(&other).unwrap();
            catch_up(&log, &tree, 20).unwrap();
        }
        let mut walk = TreeWalk::new(tree.clone()).unwrap();
        let (log, verdict) = SledLog::open_walked(&ours, &mut |e| walk.see(e)).unwrap();
        verdict.unwrap();
        assert_eq!(walk.finish().unwrap(), 20, "nothing appended to another log's tree");
        assert!(check_tree(&log, &tree).unwrap().is_some());
        assert_eq!(catch_up(&log, &tree, 40).unwrap(), 40);
    }
}
