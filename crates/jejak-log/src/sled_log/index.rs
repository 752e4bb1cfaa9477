//! The event-id index (event id → log position, for idempotent retries),
//! in two parts. Ids of events up to the *indexed position* are stored in
//! the log's own tree (`i` + event id → position, and `x` → the indexed
//! position, written in one batch, so the position never claims an id that
//! is not there). Ids after it are in memory: appends add them as they are
//! staged, and an open rebuilds them by scanning from the indexed position
//! on, so an open costs what was written since the index was last stored,
//! not the whole log.
//!
//! The indexer (a thread of its own, off the write path) stores the
//! in-memory ids once there are `STORE_AT` of them: it seals them (moves
//! the map aside, O(1) under the writer's lock), waits until the log is
//! durable past every sealed position (an id is never stored for an
//! envelope a crash could lose), writes them in batches in position order,
//! and drops the sealed map. A lookup reads the live map, then the sealed
//! one, then the tree; the sealed map is dropped only after its ids are in
//! the tree, so an id is always found in one of the three. `close` stores
//! what is left.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{be_u64, Inner, Writer};
use crate::LogError;

/// Prefix of a stored id's key.
const ID: u8 = b'i';
/// Key of the indexed position.
const INDEXED: u8 = b'x';
/// In-memory ids that wake the indexer.
pub(super) const STORE_AT: usize = 16_384;
/// Ids per stored batch.
const BATCH: usize = 16_384;

fn id_key(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(ID);
    k.extend_from_slice(id.as_bytes());
    k
}

/// The indexed position stored in `tree` (0: nothing stored).
pub(super) fn indexed(tree: &sled::Tree) -> Result<u64, LogError> {
    let Some(v) = tree.get([INDEXED])? else {
        return Ok(0);
    };
    be_u64(&v).filter(|_| v.len() == 8).ok_or_else(|| {
        LogError::Storage(format!(
            "the log's indexed position is malformed ({} bytes, not 8)",
            v.len()
        ))
    })
}

/// The position of `id`: in memory (live or sealed), else in the tree.
pub(super) fn lookup(tree: &sled::Tree, w: &Writer, id: &str) -> Result<Option<u64>, LogError> {
    if let Some(&p) = w.ids.get(id).or_else(|| w.sealed.get(id)) {
        return Ok(Some(p));
    }
    match tree.get(id_key(id))? {
        None => Ok(None),
        Some(v) => be_u64(&v).filter(|_| v.len() == 8).map(Some).ok_or_else(|| {
            LogError::Storage(format!(
                "the stored index entry of event {id:?} is malformed ({} bytes, not 8)",
                v.len()
            ))
        }),
    }
}

/// Writes `ids` (every id after the indexed position up to and including
/// `through`, all durable) to the tree in position order, moving the
/// indexed position with each batch.
fn store(tree: &sled::Tree, ids: &Ids, through: u64) -> Result<(), LogError> {
    let mut sorted: Vec<(&str, u64)> = ids.iter().map(|(k, p)| (&**k, *p)).collect();
    sorted.sort_unstable_by_key(|(_, p)| *p);
    for chunk in sorted.chunks(BATCH) {
        let mut batch = sled::Batch::default();
        for (id, position) in chunk {
            batch.insert(id_key(id), &position.to_be_bytes()[..]);
        }
        let last = chunk.last().map_or(through, |(_, p)| *p);
        batch.insert(&[INDEXED], &last.to_be_bytes()[..]);
        tree.apply_batch(batch)?;
    }
    if sorted.is_empty() {
        tree.insert([INDEXED], &through.to_be_bytes()[..])?;
    }
    Ok(())
}

/// Event ids and their positions, in memory.
pub(super) type Ids = HashMap<Box<str>, u64>;

/// Seals the in-memory ids when there are at least `at` of them; returns
/// them with the last position they reach.
fn seal(inner: &Inner, at: usize) -> Option<(Arc<Ids>, u64)> {
    let mut w = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
    if w.ids.len() < at.max(1) || !w.sealed.is_empty() {
        return None;
    }
    let sealed = Arc::new(std::mem::take(&mut w.ids));
    w.sealed = sealed.clone();
    Some((sealed, w.next_position - 1))
}

fn unseal(inner: &Inner) {
    inner.writer.lock().unwrap_or_else(|e| e.into_inner()).sealed = Arc::default();
}

/// Stores the in-memory ids if there are at least `at` of them, once the
/// log is durable past them. Used by the indexer and by `close` (`at` 1,
/// everything already durable). Whether there was nothing to do.
pub(super) fn store_sealed(inner: &Inner, at: usize) -> Result<bool, LogError> {
    let _one = inner.indexing.lock().unwrap_or_else(|e| e.into_inner());
    let Some((sealed, through)) = seal(inner, at) else {
        return Ok(true);
    };
    while *inner.durable.borrow() < through {
        if inner.failure.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            unseal_back(inner, &sealed);
            return Err(LogError::Unavailable(
                "the log stopped before the index was stored".into(),
            ));
        }
        inner.want_flush();
        std::thread::park_timeout(std::time::Duration::from_millis(2));
    }
    let stored = store(&inner.tree, &sealed, through);
    match stored {
        Ok(()) => unseal(inner),
        Err(_) => unseal_back(inner, &sealed),
    }
    stored.map(|()| false)
}

/// Puts sealed ids that could not be stored back into the live map.
fn unseal_back(inner: &Inner, sealed: &Ids) {
    let mut w = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
    w.ids.extend(sealed.iter().map(|(k, p)| (k.clone(), *p)));
    w.sealed = Arc::default();
}

/// The indexer thread: parked until the flusher sees `STORE_AT` ids in
/// memory. Holds the log weakly, like the flusher.
pub(super) fn indexer(inner: std::sync::Weak<Inner>) {
    loop {
        std::thread::park();
        let Some(strong) = inner.upgrade() else { return };
        if strong.closed.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = store_sealed(&strong, STORE_AT) {
            // The ids stay in memory and are found there; the next open
            // scans from the last stored position.
            tracing::warn!(error = %e, "storing the event-id index failed; it stays in memory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::draft;
    use crate::sled_log::tests::rt;
    use crate::{EventLog, SledLog};

    #[test]
    fn ids_are_stored_in_the_background_and_an_open_after_a_crash_scans_only_what_came_after() {
        let dir = tempfile::tempdir().unwrap();
        let total = STORE_AT as u64 + 300;
        let stored = rt().block_on(async {
            let log = SledLog::open(dir.path()).unwrap();
            for i in 0..total {
                log.append(draft("fac-a", &format!("e-{i}"))).unwrap();
            }
            log.wait_durable(total).await.unwrap();
            // The flusher wakes the indexer once STORE_AT ids are in memory.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let done = || indexed(&log.inner.tree).unwrap() > 0 && log.writer().sealed.is_empty();
            while !done() {
                assert!(std::time::Instant::now() < deadline, "the indexer never stored the ids");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let stored = indexed(&log.inner.tree).unwrap();
            assert!(stored <= log.durable_position(), "an id is stored only once durable");
            // Ids are found wherever they are: stored, or still in memory.
            assert_eq!(log.position_of("e-0").unwrap(), Some(1));
            assert_eq!(log.position_of(&format!("e-{}", total - 1)).unwrap(), Some(total));
            assert_eq!(log.position_of("e-x").unwrap(), None);
            stored
            // Dropped without `close`, as a crash would leave it.
        });
        assert!(stored >= STORE_AT as u64, "{stored}");
        let log = SledLog::open(dir.path()).unwrap();
        let check = log.start_check();
        assert_eq!(
            check.indexed,
            total - stored,
            "only the ids after the stored ones are scanned"
        );
        for i in [0, STORE_AT as u64 - 1, total - 1] {
            assert_eq!(log.position_of(&format!("e-{i}")).unwrap(), Some(i + 1));
        }
        // A retry of a stored id is still a duplicate on the chain path.
        let again = rt().block_on(async {
            let head = crate::ChainLog::head(&log, "fac-a").await.unwrap();
            crate::ChainLog::append_after(&log, draft("fac-a", "e-7"), head)
                .await
                .unwrap()
        });
        assert!(again.duplicate);
        assert_eq!(again.position, 8);
    }

    #[test]
    fn a_clean_close_stores_every_id_and_the_next_open_reads_no_block() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let log = SledLog::open(dir.path()).unwrap();
            for i in 0..10 {
                log.append(draft(if i % 2 == 0 { "fac-a" } else { "fac-b" }, &format!("c-{i}")))
                    .unwrap();
            }
            log.close().await.unwrap();
            assert_eq!(indexed(&log.inner.tree).unwrap(), 10);
        });
        // The first open after the run links the ten; the second reads nothing.
        drop(SledLog::open(dir.path()).unwrap());
        let log = SledLog::open(dir.path()).unwrap();
        let check = log.start_check();
        assert_eq!((check.envelopes, check.indexed, check.from), (0, 0, 11));
        assert_eq!(log.position_of("c-9").unwrap(), Some(10));
        assert_eq!(log.verify().unwrap(), 10);
    }

    #[test]
    fn an_index_reaching_past_the_stored_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let log = SledLog::open(dir.path()).unwrap();
            log.append(draft("fac-a", "only")).unwrap();
            log.close().await.unwrap();
        });
        {
            let db = crate::sled_log::open_db(dir.path()).unwrap();
            let tree = db.open_tree("log").unwrap();
            tree.insert([INDEXED], &5u64.to_be_bytes()[..]).unwrap();
            db.flush().unwrap();
        }
        let err = SledLog::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("index reaches position 5"), "{err}");
    }
}
