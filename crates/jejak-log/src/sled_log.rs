//! The embedded event log on sled. Appends are staged in memory in order;
//! the flusher writes every staged envelope since the last flush as one
//! block (one sled key: the block's first position; the value: the
//! envelopes' exact bytes, each length-prefixed), then flushes. A block is one
//! atomic sled insert, and flushes cover every earlier block, so after a crash
//! the log is always a prefix of what was staged, and everything acknowledged
//! is in it. Concurrent appends share one block and one flush (group commit).
//!
//! The event-id index is stored in the same tree by a thread of its own,
//! with the ids since its last write in memory (`index`). The hash chains
//! are checked on open from the last verified point on (`checkpoint`), not
//! from the start, and the chain heads are taken from there; the open
//! reads only the blocks after the older of the two points.

mod checkpoint;
mod index;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use jejak_proto::v1 as p;
use prost::Message;
use tokio::sync::watch;

use crate::envelope::{hash, Draft, StoredEvent, ENVELOPE_VERSION, ZERO_HASH};
use crate::{Appended, ChainHead, ChainLog, EventLog, LogError};
pub use checkpoint::StartCheck;

const BLOCK: u8 = b'b';
/// Most envelopes written in one block.
const MAX_BLOCK_EVENTS: usize = 256;
/// Staged envelopes that wake the flusher even when nobody waits.
const FLUSH_EAGERLY_AT: usize = 1024;

/// Opens the sled database, waiting (up to ten seconds) for a handle that
/// was just dropped to release the directory's lock.
pub(crate) fn open_db(dir: &Path) -> Result<sled::Db, LogError> {
    open_db_flushing(dir, Some(500))
}

/// `open_db` with sled's background flush every `every_ms` (None: only when asked).
pub(crate) fn open_db_flushing(dir: &Path, every_ms: Option<u64>) -> Result<sled::Db, LogError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(2 * 1024 * 1024)
            .flush_every_ms(every_ms)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(e) if e.to_string().contains("lock") && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Stored events from position `from` up to `until`, at most `limit` of
/// them, appended to `out`; whether the limit cut the reading short.
fn read_blocks(
    tree: &sled::Tree,
    from: u64,
    until: u64,
    limit: usize,
    out: &mut Vec<StoredEvent>,
) -> Result<bool, LogError> {
    // The block holding `from` starts at or before it.
    let start = tree
        .range(block_key(0)..=block_key(from))
        .next_back()
        .transpose()?
        .map(|(k, _)| k);
    let Some(start) = start else {
        return Ok(false);
    };
    for item in tree.range(start.as_ref()..=&block_key(until)[..]) {
        let (k, v) = item?;
        let first = be_u64(&k[1..]).unwrap_or(0);
        for (position, bytes) in split_block(first, &v)? {
            if position < from || position > until {
                continue;
            }
            if out.len() >= limit {
                return Ok(true);
            }
            out.push(StoredEvent::decode(position, bytes.to_vec())?);
        }
    }
    Ok(false)
}

/// Envelopes a walk of the whole log reads at a time.
const WALK_BATCH: usize = 4096;

/// What a walk of every chain found.
struct Walked {
    envelopes: u64,
    /// The first broken link, or a chain whose head is not its last envelope.
    broken: Option<LogError>,
}

impl Walked {
    fn verdict(self) -> Result<u64, LogError> {
        match self.broken {
            Some(e) => Err(e),
            None => Ok(self.envelopes),
        }
    }
}

/// Every link of every chain from position 1 on, `read(from)` giving the
/// next envelopes in order (none at the end), each handed to `each`; then
/// each chain's last envelope against `heads` (chain, sequence, hash). A
/// broken link is kept and the walk goes on; an envelope that cannot be
/// read ends it with the error.
fn walk(
    mut read: impl FnMut(u64) -> Result<Vec<StoredEvent>, LogError>,
    heads: Vec<(String, u64, [u8; 32])>,
    each: &mut dyn FnMut(&StoredEvent),
) -> Result<Walked, LogError> {
    let mut last: HashMap<String, StoredEvent> = HashMap::new();
    let (mut envelopes, mut broken, mut from) = (0, None, 1);
    loop {
        let batch = read(from)?;
        if batch.is_empty() {
            break;
        }
        for e in batch {
            from = e.position + 1;
            if let Err(why) = crate::verify_link(last.get(&e.envelope.chain), &e) {
                broken.get_or_insert(why);
            }
            each(&e);
            envelopes += 1;
            last.insert(e.envelope.chain.clone(), e);
        }
    }
    // A chain the log holds envelopes of but keeps no head for would start
    // again at sequence 1 with its next append.
    if broken.is_none() {
        if let Some(e) = last
            .values()
            .filter(|e| !heads.iter().any(|(c, ..)| *c == e.envelope.chain))
            .min_by_key(|e| e.position)
        {
            broken = Some(LogError::Corrupt {
                position: e.position,
                reason: format!(
                    "chain {:?} has envelopes but the log keeps no head for it",
                    e.envelope.chain
                ),
            });
        }
    }
    for (chain, sequence, hash) in heads {
        let at = last.get(&chain);
        if broken.is_none() && at.map(|e| (e.envelope.sequence, e.hash)) != Some((sequence, hash)) {
            broken = Some(LogError::Corrupt {
                position: at.map_or(0, |e| e.position),
                reason: format!("chain {chain:?} head does not match its last envelope"),
            });
        }
    }
    Ok(Walked { envelopes, broken })
}

fn block_key(first: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = BLOCK;
    k[1..].copy_from_slice(&first.to_be_bytes());
    k
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    bytes.get(..8)?.try_into().ok().map(u64::from_be_bytes)
}

/// Splits a block value into its envelopes' bytes.
fn split_block(first: u64, value: &[u8]) -> Result<Vec<(u64, &[u8])>, LogError> {
    let mut out = Vec::new();
    let mut rest = value;
    let mut position = first;
    while !rest.is_empty() {
        let len = prost::encoding::decode_varint(&mut rest).map_err(|e| LogError::Corrupt {
            position,
            reason: format!("block length prefix: {e}"),
        })?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > rest.len() {
            return Err(LogError::Corrupt {
                position,
                reason: "block is truncated".into(),
            });
        }
        let (bytes, tail) = rest.split_at(len);
        out.push((position, bytes));
        rest = tail;
        position += 1;
    }
    Ok(out)
}

/// The bytes of the envelope at `position` in a block starting at `first`,
/// skipping the ones before it without collecting them.
fn find_in_block(first: u64, value: &[u8], position: u64) -> Result<Option<&[u8]>, LogError> {
    let mut rest = value;
    let mut at = first;
    while !rest.is_empty() && at <= position {
        let len = prost::encoding::decode_varint(&mut rest).map_err(|e| LogError::Corrupt {
            position: at,
            reason: format!("block length prefix: {e}"),
        })?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > rest.len() {
            return Err(LogError::Corrupt {
                position: at,
                reason: "block is truncated".into(),
            });
        }
        let (bytes, tail) = rest.split_at(len);
        if at == position {
            return Ok(Some(bytes));
        }
        rest = tail;
        at += 1;
    }
    Ok(None)
}

#[derive(Debug, Clone, Copy)]
struct Head {
    sequence: u64,
    hash: [u8; 32],
    position: u64,
}

const EMPTY_HEAD: Head = Head {
    sequence: 0,
    hash: ZERO_HASH,
    position: 0,
};

struct Writer {
    next_position: u64,
    heads: HashMap<String, Head>,
    /// Ids of events after the stored index's position (see `index`).
    ids: index::Ids,
    /// Ids being written to the stored index, still found here until they are.
    sealed: Arc<index::Ids>,
    /// Staged, not yet written: (position, exact envelope bytes).
    pending: Vec<(u64, Arc<[u8]>)>,
}

struct Inner {
    db: sled::Db,
    /// sled's data file. sled's flush ends with `sync_file_range`, which
    /// neither writes the file's metadata nor flushes the disk's write cache;
    /// an `fdatasync` on it after each flush makes an acknowledged append
    /// survive a power cut, not only a crash of the process.
    data_file: std::fs::File,
    tree: sled::Tree,
    writer: Mutex<Writer>,
    /// Highest staged position.
    staged: AtomicU64,
    durable: watch::Sender<u64>,
    /// Held while staged envelopes are written to sled: one writer at a time.
    writing: Mutex<()>,
    /// Set when a write or flush failed: nothing more is acknowledged.
    failure: Mutex<Option<String>>,
    /// The flusher thread, woken when appends wait (see `flusher`).
    flusher: OnceLock<std::thread::Thread>,
    /// The indexer thread, woken by the flusher (see `index`).
    indexer: OnceLock<std::thread::Thread>,
    /// Held while the index is stored: one writer at a time.
    indexing: Mutex<()>,
    closed: AtomicBool,
    /// What the start-up check walked.
    start_check: StartCheck,
}

impl Inner {
    fn want_flush(&self) {
        if let Some(t) = self.flusher.get() {
            t.unpark();
        }
    }

    fn want_index(&self) {
        if let Some(t) = self.indexer.get() {
            t.unpark();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The threads hold the log weakly: wake them so they see it is gone.
        self.want_flush();
        self.want_index();
    }
}

/// The embedded, sled-backed event log. Cheap to clone.
#[derive(Clone)]
pub struct SledLog {
    inner: Arc<Inner>,
}

impl SledLog {
    /// Appends to `out` the stored envelopes from position `from` to
    /// `until`, at most `limit` in all; whether `limit` was reached.
    fn read_blocks(&self, from: u64, until: u64, limit: usize, out: &mut Vec<StoredEvent>) -> Result<bool, LogError> {
        read_blocks(&self.inner.tree, from, until, limit, out)
    }

    /// Opens (or creates) the log in `dir`, rebuilds the event-id index,
    /// checks the chains from the last verified point on (see `checkpoint`),
    /// and starts its flusher thread. A changed or missing envelope is
    /// `LogError::Corrupt` naming the chain, the sequence and the position.
    pub fn open(dir: &Path) -> Result<SledLog, LogError> {
        Ok(SledLog::open_inner(dir, None)?.0)
    }

    /// Opens the log as `open` does, after walking all of it on the
    /// checking handle: every link of every chain, as `verify` checks them,
    /// with each envelope handed to `each` in log order. A server walks the
    /// log at start this way rather than through the handle it serves from,
    /// which would keep what the walk read resident. The walk's verdict is
    /// the second value: the envelopes checked, or the first broken link
    /// (the walk goes on past it, so `each` still sees every envelope).
    pub fn open_walked(
        dir: &Path,
        each: &mut dyn FnMut(&StoredEvent),
    ) -> Result<(SledLog, Result<u64, LogError>), LogError> {
        let (log, walked) = SledLog::open_inner(dir, Some(each))?;
        let verdict = walked.map_or(Ok(0), Walked::verdict);
        Ok((log, verdict))
    }

    fn open_inner(
        dir: &Path,
        each: Option<&mut dyn FnMut(&StoredEvent)>,
    ) -> Result<(SledLog, Option<Walked>), LogError> {
        // sled keeps what a scan read resident for as long as the database is
        // open, whatever its cache size: check (and walk) with one handle,
        // drop it, and serve from a fresh one.
        let (checked, walked) = {
            let db = open_db(dir)?;
            let tree = db.open_tree("log")?;
            let checked = checkpoint::check_on_open(&db, &tree, dir)?;
            let walked = match each {
                Some(each) => {
                    let heads = checked
                        .heads
                        .iter()
                        .map(|(c, h)| (c.clone(), h.sequence, h.hash))
                        .collect();
                    let read = |from| {
                        let mut out = Vec::new();
                        read_blocks(&tree, from, u64::MAX, WALK_BATCH, &mut out).map(|_| out)
                    };
                    Some(walk(read, heads, each)?)
                }
                None => None,
            };
            (checked, walked)
        };
        let last = checked.last;
        let db = open_db(dir)?;
        let tree = db.open_tree("log")?;
        let data_path = dir.join("db");
        let data_file = std::fs::File::open(&data_path)
            .map_err(|e| LogError::Storage(format!("open {} to sync it: {e}", data_path.display())))?;
        let (durable, _) = watch::channel(last);
        let inner = Arc::new(Inner {
            db,
            data_file,
            tree,
            writer: Mutex::new(Writer {
                next_position: last + 1,
                heads: checked.heads,
                ids: checked.ids,
                sealed: Arc::default(),
                pending: Vec::new(),
            }),
            staged: AtomicU64::new(last),
            durable,
            writing: Mutex::new(()),
            failure: Mutex::new(None),
            flusher: OnceLock::new(),
            indexer: OnceLock::new(),
            indexing: Mutex::new(()),
            closed: AtomicBool::new(false),
            start_check: checked.check,
        });
        let weak = Arc::downgrade(&inner);
        let thread = std::thread::Builder::new()
            .name("log flusher".into())
            .spawn(move || flusher(weak))
            .map_err(|e| LogError::Storage(format!("start the log's flusher thread: {e}")))?;
        let _ = inner.flusher.set(thread.thread().clone());
        let weak = Arc::downgrade(&inner);
        let thread = std::thread::Builder::new()
            .name("log indexer".into())
            .spawn(move || index::indexer(weak))
            .map_err(|e| LogError::Storage(format!("start the log's indexer thread: {e}")))?;
        let _ = inner.indexer.set(thread.thread().clone());
        // An open that scanned many ids (a log whose index was never
        // stored) stores them now.
        if inner.writer.lock().unwrap_or_else(|e| e.into_inner()).ids.len() >= index::STORE_AT {
            inner.want_index();
        }
        Ok((SledLog { inner }, walked))
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.inner.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a log into `dir`, which must hold none, from `envelopes`:
    /// each one's position and exact stored bytes, from position 1 on and in
    /// order (a backup being restored). Every link of every chain is checked
    /// as it is written, and everything is flushed before this returns the
    /// last position; `open` then checks the chains again from the start.
    pub fn restore(
        dir: &Path,
        envelopes: impl Iterator<Item = Result<(u64, Vec<u8>), LogError>>,
    ) -> Result<u64, LogError> {
        let db = open_db_flushing(dir, None)?;
        let tree = db.open_tree("log")?;
        if !tree.is_empty() {
            return Err(LogError::Storage(format!(
                "{} already holds an event log; restore into an empty directory",
                dir.display()
            )));
        }
        let mut heads: HashMap<String, StoredEvent> = HashMap::new();
        let (mut last, mut first, mut value) = (0u64, 1u64, Vec::new());
        let mut in_block = 0usize;
        for item in envelopes {
            let (position, bytes) = item?;
            if position != last + 1 {
                return Err(LogError::Corrupt {
                    position,
                    reason: format!("follows position {last}: an envelope is missing or out of order"),
                });
            }
            let e = StoredEvent::decode(position, bytes)?;
            crate::verify_link(heads.get(&e.envelope.chain), &e)?;
            prost::encoding::encode_varint(e.bytes.len() as u64, &mut value);
            value.extend_from_slice(&e.bytes);
            in_block += 1;
            last = position;
            heads.insert(e.envelope.chain.clone(), e);
            if in_block == MAX_BLOCK_EVENTS {
                tree.insert(block_key(first), std::mem::take(&mut value))?;
                (first, in_block) = (last + 1, 0);
            }
        }
        if in_block > 0 {
            tree.insert(block_key(first), value)?;
        }
        db.flush()?;
        let data_path = dir.join("db");
        std::fs::File::open(&data_path)
            .and_then(|f| f.sync_all())
            .map_err(|e| LogError::Storage(format!("sync {}: {e}", data_path.display())))?;
        Ok(last)
    }

    /// What the start-up check of this open walked.
    pub fn start_check(&self) -> StartCheck {
        self.inner.start_check
    }

    /// The head (last sequence and hash) of every chain.
    pub fn chain_heads(&self) -> Vec<(String, u64, [u8; 32])> {
        let w = self.writer();
        let mut v: Vec<_> = w.heads.iter().map(|(c, h)| (c.clone(), h.sequence, h.hash)).collect();
        v.sort();
        v
    }

    /// Walks the whole log in order and checks every link of every chain:
    /// the on-demand full check (`jejak verify`), where opening checks only
    /// what is new.
    pub fn verify(&self) -> Result<u64, LogError> {
        walk(|from| self.read_from(from, WALK_BATCH), self.chain_heads(), &mut |_| {})?.verdict()
    }

    /// Every stored event in log order, handed to `f` one by one.
    pub fn scan(&self, mut f: impl FnMut(&StoredEvent)) -> Result<u64, LogError> {
        let (mut from, mut seen) = (1, 0);
        loop {
            let batch = self.read_from(from, 4096)?;
            if batch.is_empty() {
                return Ok(seen);
            }
            for e in &batch {
                from = e.position + 1;
                seen += 1;
                f(e);
            }
        }
    }

    /// Bytes the log occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64, LogError> {
        Ok(self.inner.db.size_on_disk()?)
    }

    /// Writes and flushes everything staged and stores the event-id index,
    /// then stops accepting appends; used on clean shutdown, so that the
    /// next open reads nothing the index or the checkpoint covers.
    pub async fn close(&self) -> Result<(), LogError> {
        self.inner.closed.store(true, Ordering::SeqCst);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let last = write_pending(&inner)?;
            inner.db.flush()?;
            inner
                .data_file
                .sync_data()
                .map_err(|e| LogError::Storage(format!("sync the log's data file: {e}")))?;
            inner.durable.send_if_modified(|d| {
                let moved = last > *d;
                *d = (*d).max(last);
                moved
            });
            index::store_sealed(&inner, 1)?;
            inner.db.flush()?;
            Ok::<(), LogError>(())
        })
        .await
        .map_err(|e| LogError::Storage(e.to_string()))??;
        Ok(())
    }

    /// An envelope staged but not yet written to sled.
    fn pending(&self, position: u64) -> Option<StoredEvent> {
        let w = self.writer();
        let first = w.pending.first()?.0;
        let (_, bytes) = w.pending.get(usize::try_from(position.checked_sub(first)?).ok()?)?;
        StoredEvent::decode(position, bytes.to_vec()).ok()
    }
}

/// Writes every staged envelope to sled as blocks; returns the last position
/// written. Envelopes leave the staging area only once their block is in
/// sled, so a reader always finds each one in one place or the other.
fn write_pending(inner: &Inner) -> Result<u64, LogError> {
    let _one_writer = inner.writing.lock().unwrap_or_else(|e| e.into_inner());
    let pending = inner.writer.lock().unwrap_or_else(|e| e.into_inner()).pending.clone();
    let Some(&(last, _)) = pending.last() else {
        return Ok(*inner.durable.borrow());
    };
    for chunk in pending.chunks(MAX_BLOCK_EVENTS) {
        let first = chunk[0].0;
        let mut value = Vec::with_capacity(chunk.iter().map(|(_, b)| b.len() + 3).sum());
        for (_, bytes) in chunk {
            prost::encoding::encode_varint(bytes.len() as u64, &mut value);
            value.extend_from_slice(bytes);
        }
        inner.tree.insert(block_key(first), value)?;
    }
    let mut w = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
    w.pending.drain(..pending.len());
    let index_due = w.ids.len() >= index::STORE_AT && w.sealed.is_empty();
    drop(w);
    if index_due {
        inner.want_index();
    }
    Ok(last)
}

/// Flushes whenever appends are waiting; every append staged before a flush
/// starts is acknowledged by it. A thread of its own, parked while there is
/// nothing to flush: appends wake it without a syscall when it is busy, and
/// each flush wakes its waiters directly. Holds the log only weakly, so
/// dropping the last handle ends the thread.
fn flusher(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let staged = strong.staged.load(Ordering::Acquire);
        if staged <= *strong.durable.borrow() || strong.failure.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            drop(strong);
            std::thread::park();
            continue;
        }
        let flushed = write_pending(&strong).and_then(|last| {
            strong.db.flush()?;
            strong
                .data_file
                .sync_data()
                .map_err(|e| LogError::Storage(format!("sync the log's data file: {e}")))?;
            Ok(last)
        });
        match flushed {
            Ok(last) => {
                strong.durable.send_if_modified(|d| {
                    if last > *d {
                        *d = last;
                        true
                    } else {
                        false
                    }
                });
            }
            Err(e) => fail(&strong, format!("write or flush failed: {e}")),
        }
    }
}

fn fail(inner: &Inner, reason: String) {
    tracing::error!(%reason, "event log stops acknowledging appends");
    *inner.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    // Wake every waiter so it sees the failure.
    inner.durable.send_modify(|_| {});
}

impl SledLog {
    /// Stages `draft` at the end of its chain; with `expected`, only if the
    /// chain's head is still that one, and not at all if the event id is
    /// already in the log (the stored copy is described instead).
    fn stage(&self, draft: Draft, expected: Option<ChainHead>) -> Result<Appended, LogError> {
        if let Some(reason) = self.inner.failure.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Err(LogError::Unavailable(reason));
        }
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(LogError::Closed);
        }
        let mut w = self.writer();
        if let Some(expected) = expected {
            if let Some(position) = index::lookup(&self.inner.tree, &w, &draft.event_id)? {
                drop(w);
                let stored = self
                    .read(position)?
                    .ok_or_else(|| LogError::Storage(format!("indexed position {position} is missing")))?;
                return Ok(Appended {
                    position,
                    chain: stored.envelope.chain.clone(),
                    sequence: stored.envelope.sequence,
                    hash: stored.hash,
                    duplicate: true,
                });
            }
            let head = w.heads.get(&draft.chain).copied().unwrap_or(EMPTY_HEAD);
            if (head.sequence, head.hash, head.position) != (expected.sequence, expected.hash, expected.position) {
                return Err(LogError::Conflict {
                    chain: draft.chain,
                    reason: format!(
                        "its head is sequence {} at position {}, not sequence {} at position {}",
                        head.sequence, head.position, expected.sequence, expected.position
                    ),
                });
            }
        }
        let head = w.heads.get(&draft.chain).copied().unwrap_or(EMPTY_HEAD);
        let position = w.next_position;
        let sequence = head.sequence + 1;
        let envelope = p::Envelope {
            version: ENVELOPE_VERSION,
            chain: draft.chain.clone(),
            sequence,
            prev_hash: head.hash.to_vec(),
            event_id: draft.event_id.clone(),
            recorded_at: Some(draft.recorded_at),
            actor: draft.actor,
            command_hash: draft.command_hash.to_vec(),
            event: Some(draft.event),
            secret: crate::envelope::fresh_secret()?,
        };
        let bytes: Arc<[u8]> = envelope.encode_to_vec().into();
        let h = hash(&bytes);
        w.pending.push((position, bytes));
        w.next_position = position + 1;
        w.ids.insert(draft.event_id.into_boxed_str(), position);
        let eager = w.pending.len() >= FLUSH_EAGERLY_AT;
        w.heads.insert(
            draft.chain.clone(),
            Head {
                sequence,
                hash: h,
                position,
            },
        );
        self.inner.staged.store(position, Ordering::Release);
        drop(w);
        if eager {
            self.inner.want_flush();
        }
        Ok(Appended {
            position,
            chain: draft.chain,
            sequence,
            hash: h,
            duplicate: false,
        })
    }
}

impl ChainLog for SledLog {
    async fn append_after(&self, draft: Draft, expected: ChainHead) -> Result<Appended, LogError> {
        let appended = self.stage(draft, Some(expected))?;
        self.wait_durable(appended.position).await?;
        Ok(appended)
    }

    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, LogError> {
        let durable = self.durable_position();
        let mut events = self.read_from(from, limit)?;
        events.retain(|e| e.position <= durable);
        Ok(events)
    }

    async fn last_position(&self) -> Result<u64, LogError> {
        Ok(self.durable_position())
    }

    async fn head(&self, chain: &str) -> Result<ChainHead, LogError> {
        let h = self.writer().heads.get(chain).copied().unwrap_or(EMPTY_HEAD);
        Ok(ChainHead {
            sequence: h.sequence,
            hash: h.hash,
            position: h.position,
        })
    }
}

impl EventLog for SledLog {
    fn append(&self, draft: Draft) -> Result<Appended, LogError> {
        self.stage(draft, None)
    }

    async fn wait_durable(&self, position: u64) -> Result<(), LogError> {
        let mut rx = self.inner.durable.subscribe();
        if *rx.borrow() >= position {
            return Ok(());
        }
        self.inner.want_flush();
        loop {
            if let Some(reason) = self.inner.failure.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                return Err(LogError::Unavailable(reason));
            }
            if *rx.borrow_and_update() >= position {
                return Ok(());
            }
            if rx.changed().await.is_err() {
                return Err(LogError::Closed);
            }
        }
    }

    fn read_durable(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, LogError> {
        let mut out = Vec::new();
        self.read_blocks(from.max(1), self.durable_position(), limit, &mut out)?;
        Ok(out)
    }

    fn read_from(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, LogError> {
        let from = from.max(1);
        // What is staged, taken before reading sled: an envelope leaves the
        // staging area only after its block is in sled, so each one up to
        // the end of this copy is found in one place or the other.
        let staged = self.writer().pending.clone();
        let mut out: Vec<StoredEvent> = Vec::new();
        if self.read_blocks(from, u64::MAX, limit, &mut out)? {
            return Ok(out);
        }
        // Then what was staged and not yet in sled.
        let mut next = out.last().map_or(from, |e| e.position + 1);
        for (position, bytes) in staged.iter() {
            if out.len() >= limit || *position > next {
                break;
            }
            if *position == next {
                out.push(StoredEvent::decode(*position, bytes.to_vec())?);
                next += 1;
            }
        }
        Ok(out)
    }

    fn read(&self, position: u64) -> Result<Option<StoredEvent>, LogError> {
        if position == 0 {
            return Ok(None);
        }
        if let Some(e) = self.pending(position) {
            return Ok(Some(e));
        }
        let Some(item) = self.inner.tree.range(block_key(0)..=block_key(position)).next_back() else {
            return Ok(None);
        };
        let (k, v) = item?;
        let first = be_u64(&k[1..]).unwrap_or(0);
        if let Some(bytes) = find_in_block(first, &v, position)? {
            return Ok(Some(StoredEvent::decode(position, bytes.to_vec())?));
        }
        // Written between the pending check and the sled read: look again.
        Ok(self.pending(position))
    }

    fn position_of(&self, event_id: &str) -> Result<Option<u64>, LogError> {
        index::lookup(&self.inner.tree, &self.writer(), event_id)
    }

    fn durable_position(&self) -> u64 {
        *self.inner.durable.borrow()
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.durable.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::conformance::draft;

    pub(super) fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_tail_reads_in_order_up_to_where_it_is_told_and_goes_on_from_there() {
        use crate::Tail;
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let log = SledLog::open(dir.path()).unwrap();
            for i in 1..=10 {
                log.append(draft("fac-a", &i.to_string())).unwrap();
            }
            log.wait_durable(10).await.unwrap();
            let mut tail = crate::ReadLog::tail(&log, 3, |_| true);
            let positions = |v: Vec<StoredEvent>| v.iter().map(|e| e.position).collect::<Vec<_>>();
            assert_eq!(positions(tail.next_upto(6, 100).await.unwrap()), [3, 4, 5, 6]);
            assert_eq!(tail.position(), 7);
            assert_eq!(positions(tail.next_upto(10, 2).await.unwrap()), [7, 8]);
            assert_eq!(positions(tail.next_upto(10, 100).await.unwrap()), [9, 10]);
            assert!(tail.next_upto(10, 100).await.unwrap().is_empty());
            assert!(tail.next_upto(5, 100).await.unwrap().is_empty());
            // A filter: what it passes over still moves the tail on.
            let mut tail = crate::ReadLog::tail(&log, 1, |e| e.envelope.event_id.ends_with('0'));
            assert!(tail.next_upto(9, 100).await.unwrap().is_empty());
            assert_eq!(tail.position(), 10);
            assert_eq!(positions(tail.next_upto(10, 100).await.unwrap()), [10]);
            assert_eq!(tail.position(), 11);
        });
    }

    #[test]
    fn appends_chain_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let log = SledLog::open(dir.path()).unwrap();
            let a = log.append(draft("fac-a", "1")).unwrap();
            let b = log.append(draft("fac-b", "2")).unwrap();
            let c = log.append(draft("fac-a", "3")).unwrap();
            assert_eq!((a.position, a.sequence), (1, 1));
            assert_eq!((b.position, b.sequence), (2, 1));
            assert_eq!((c.position, c.sequence), (3, 2));
            log.wait_durable(3).await.unwrap();
            let stored = log.read(3).unwrap().unwrap();
            assert_eq!(stored.envelope.prev_hash, a.hash.to_vec());
            assert_eq!(log.position_of("2").unwrap(), Some(2));
            assert_eq!(log.verify().unwrap(), 3);
            log.close().await.unwrap();
        });
        rt().block_on(async {
            let log = SledLog::open(dir.path()).unwrap();
            assert_eq!(log.durable_position(), 3);
            let d = log.append(draft("fac-a", "4")).unwrap();
            assert_eq!((d.position, d.sequence), (4, 3));
            assert_eq!(log.read_from(2, 10).unwrap().len(), 3);
            assert_eq!(log.verify().unwrap(), 4);
        });
    }

    #[test]
    fn one_envelope_is_found_in_a_block_without_splitting_it() {
        let mut block = Vec::new();
        for body in [&b"one"[..], b"", b"three"] {
            prost::encoding::encode_varint(body.len() as u64, &mut block);
            block.extend_from_slice(body);
        }
        assert_eq!(find_in_block(10, &block, 10).unwrap(), Some(&b"one"[..]));
        assert_eq!(find_in_block(10, &block, 11).unwrap(), Some(&b""[..]));
        assert_eq!(find_in_block(10, &block, 12).unwrap(), Some(&b"three"[..]));
        assert_eq!(find_in_block(10, &block, 13).unwrap(), None);
        assert_eq!(find_in_block(10, &block, 9).unwrap(), None);
        let truncated = &block[..block.len() - 1];
        assert!(matches!(
            find_in_block(10, truncated, 12),
            Err(LogError::Corrupt { position: 12, .. })
        ));
        // What comes after the one asked for is not read.
        assert_eq!(find_in_block(10, truncated, 11).unwrap(), Some(&b""[..]));
    }

    #[test]
    fn a_restored_log_is_the_same_log_and_a_broken_link_writes_nothing_usable() {
        let (from, to, broken) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        rt().block_on(async {
            let log = SledLog::open(from.path()).unwrap();
            for i in 0..600 {
                let chain = if i % 3 == 0 { "fac-a" } else { "fac-b" };
                log.append(draft(chain, &format!("e{i}"))).unwrap();
            }
            log.wait_durable(600).await.unwrap();
            let stored: Vec<(u64, Vec<u8>)> = log
                .read_from(1, 1000)
                .unwrap()
                .into_iter()
                .map(|e| (e.position, e.bytes))
                .collect();
            let heads = log.chain_heads();
            log.close().await.unwrap();
            drop(log);

            assert_eq!(
                SledLog::restore(to.path(), stored.clone().into_iter().map(Ok)).unwrap(),
                600
            );
            let restored = SledLog::open(to.path()).unwrap();
            assert_eq!(restored.chain_heads(), heads);
            assert_eq!(restored.verify().unwrap(), 600);
            let again: Vec<(u64, Vec<u8>)> = restored
                .read_from(1, 1000)
                .unwrap()
                .into_iter()
                .map(|e| (e.position, e.bytes))
                .collect();
            assert_eq!(again, stored);
            restored.close().await.unwrap();
            drop(restored);
            // Into a directory that holds a log: refused.
            let err = SledLog::restore(to.path(), stored.clone().into_iter().map(Ok)).unwrap_err();
            assert!(err.to_string().contains("already holds an event log"), "{err}");

            // An envelope left out: the next one is refused, naming its position.
            let gap = stored
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 10)
                .map(|(_, x)| Ok(x.clone()));
            let err = SledLog::restore(broken.path(), gap).unwrap_err();
            assert!(matches!(err, LogError::Corrupt { position: 12, .. }), "{err}");
        });
    }

    #[test]
    fn a_changed_envelope_is_found_by_verify_and_on_open() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let log = SledLog::open(dir.path()).unwrap();
            for i in 0..3 {
                log.append(draft("fac-a", &i.to_string())).unwrap();
            }
            log.wait_durable(3).await.unwrap();
            // Rewrite the middle envelope with different content, keeping the
            // block (whichever flush wrote it) well-formed.
            let (key, block) = log
                .inner
                .tree
                .range(block_key(0)..=block_key(2))
                .next_back()
                .unwrap()
                .unwrap();
            let first = be_u64(&key[1..]).unwrap();
            let mut value = Vec::new();
            for (position, bytes) in split_block(first, &block).unwrap() {
                let mut e = p::Envelope::decode(bytes).unwrap();
                if position == 2 {
                    e.actor = "mallory".into();
                }
                let bytes = e.encode_to_vec();
                prost::encoding::encode_varint(bytes.len() as u64, &mut value);
                value.extend_from_slice(&bytes);
            }
            log.inner.tree.insert(key, value).unwrap();
            let err = log.verify().unwrap_err();
            assert!(matches!(err, LogError::Corrupt { position: 3, .. }), "{err}");
            log.close().await.unwrap();
        });
        rt().block_on(async {
            let err = SledLog::open(dir.path())
                .err()
                .expect("a broken chain is refused on open");
            // Open names the changed envelope, whose hash its successor records.
            assert!(matches!(err, LogError::Corrupt { position: 2, .. }), "{err}");
            assert!(err.to_string().contains("sequence 2"), "{err}");
            assert!(err.to_string().contains("fac-a"), "{err}");
        });
    }

    #[test]
    fn reads_staged_and_written_events_alike() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let log = SledLog::open(dir.path()).unwrap();
            for i in 0..10 {
                log.append(draft("fac-a", &i.to_string())).unwrap();
            }
            // Staged only: readable, not yet durable.
            assert_eq!(log.read(7).unwrap().unwrap().envelope.event_id, "6");
            log.wait_durable(5).await.unwrap();
            // At least what was waited for; the flusher may have taken a
            // first block before the tenth append (a thread may wake from
            // `park` on its own), so all ten are not promised here.
            assert!(log.durable_position() >= 5, "{}", log.durable_position());
            log.wait_durable(10).await.unwrap();
            assert_eq!(log.durable_position(), 10);
            for i in 11..=20 {
                log.append(draft("fac-b", &i.to_string())).unwrap();
            }
            log.wait_durable(20).await.unwrap();
            let all = log.read_from(1, usize::MAX).unwrap();
            assert_eq!(
                all.iter().map(|e| e.position).collect::<Vec<_>>(),
                (1..=20).collect::<Vec<_>>()
            );
            assert_eq!(
                log.read_from(9, 3)
                    .unwrap()
                    .iter()
                    .map(|e| e.position)
                    .collect::<Vec<_>>(),
                vec![9, 10, 11]
            );
            assert_eq!(log.read(15).unwrap().unwrap().envelope.event_id, "15");
            assert!(log.read(21).unwrap().is_none());
        });
    }

    #[test]
    fn readers_see_every_appended_envelope_while_the_flusher_writes() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let log = SledLog::open(dir.path()).unwrap();
            let reader = log.clone();
            let stop = Arc::new(AtomicBool::new(false));
            let done = stop.clone();
            let checker = std::thread::spawn(move || {
                let mut checks = 0u64;
                while !done.load(Ordering::SeqCst) {
                    let staged = reader.inner.staged.load(Ordering::Acquire);
                    let all = reader.read_from(1, usize::MAX).unwrap();
                    assert!(all.len() as u64 >= staged, "read {} of {staged} staged", all.len());
                    assert!(all.iter().enumerate().all(|(i, e)| e.position == i as u64 + 1));
                    checks += 1;
                }
                checks
            });
            for i in 1..=3000u64 {
                let a = log.append(draft("fac", &i.to_string())).unwrap();
                if i % 7 == 0 {
                    log.wait_durable(a.position).await.unwrap();
                }
            }
            log.wait_durable(3000).await.unwrap();
            stop.store(true, Ordering::SeqCst);
            assert!(checker.join().unwrap() > 0);
            assert_eq!(log.verify().unwrap(), 3000);
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn any_interleaving_of_chains_links_up(chains in proptest::collection::vec(0u8..4, 1..60)) {
            let dir = tempfile::tempdir().unwrap();
            rt().block_on(async {
                let log = SledLog::open(dir.path()).unwrap();
                let mut counts = HashMap::new();
                for (i, c) in chains.iter().enumerate() {
                    let chain = format!("fac-{c}");
                    let a = log.append(draft(&chain, &i.to_string())).unwrap();
                    let n = counts.entry(chain).or_insert(0u64);
                    *n += 1;
                    prop_assert_eq!(a.sequence, *n);
                    prop_assert_eq!(a.position, i as u64 + 1);
                }
                prop_assert_eq!(log.verify().unwrap(), chains.len() as u64);
                // Every stored envelope names the hash of the one before it in
                // its chain (the first, zeros), and its sequence follows on.
                let all = log.read_from(1, usize::MAX).unwrap();
                prop_assert_eq!(all.len(), chains.len());
                let mut last: HashMap<String, (u64, [u8; 32])> = HashMap::new();
                for e in &all {
                    let (sequence, prev) = last.get(&e.envelope.chain).copied().unwrap_or((0, ZERO_HASH));
                    prop_assert_eq!(e.envelope.sequence, sequence + 1);
                    prop_assert_eq!(e.envelope.prev_hash.as_slice(), prev.as_slice());
                    last.insert(e.envelope.chain.clone(), (e.envelope.sequence, hash(&e.bytes)));
                }
                Ok(())
            })?;
        }
    }
}
