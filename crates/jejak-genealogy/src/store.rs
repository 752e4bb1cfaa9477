//! The projection's sled store. Events are applied to memory at once and
//! written to sled in one atomic batch together with the position they reach,
//! every `PERSIST_EVERY` events or when the projector goes idle, so after a
//! crash the store is exactly the state at some position, and the projector
//! re-applies the log from there.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use prost::Message;

use crate::graph::{AppliedEvent, Genealogy, Ix};
use crate::master::{self, Master};
use crate::records::{self, EventRecord, LotRecord};
use crate::GenealogyError;

const POSITION_KEY: &[u8] = b"_position";
/// The envelope hash (32 bytes) and id of the event at the stored position
/// (see `Genealogy::anchor`).
const ANCHOR_KEY: &[u8] = b"_anchor";
/// The stored records' format, written with every batch: 2 since lots
/// record how they were made (`made_by`). A store without it is format 1,
/// which this version still reads; a newer format is refused rather than
/// misread.
pub(crate) const FORMAT_KEY: &[u8] = b"_format";
pub(crate) const FORMAT: u32 = 2;
/// Lot records in chunks by the log position that created them: one key per
/// chunk of positions (`CHUNK_SIZES`), so a write touches a few keys, not one per lot
/// (sled's cost is per key), and the stored bytes depend only on the state.
pub(crate) const LOT: &[u8] = b"l/";
/// Event records in chunks of `EVENT_CHUNK` log positions: one key per
/// chunk rather than per event keeps the projector's sled writes few, and
/// fixed position ranges keep the stored bytes independent of batching.
const EVENT_CHUNK: &[u8] = b"x/";
/// Records a chunk of a new store holds (lots, events). Small enough that a
/// sled leaf node (up to 16 keys before it splits) stays under sled's blob
/// threshold (a quarter of its 512 KiB segments): a node over it is written
/// to a file of its own each time sled rewrites it, values and all, and with
/// chunks of 1,024 records (about 160 KiB of lots) every rewrite was.
const CHUNK_SIZES: (u64, u64) = (32, 32);
/// What a store written before `CHUNKS_KEY` existed holds a chunk.
pub(crate) const FIRST_CHUNK_SIZES: (u64, u64) = (1024, 1024);
/// The store's chunk sizes (lots, events), two big-endian u64s: kept with
/// the store, since a record's key depends on them.
pub(crate) const CHUNKS_KEY: &[u8] = b"_chunks";
/// Void marks of events, by event id (rare, so one key each).
const VOIDED: &[u8] = b"v/";
const PARTY: &[u8] = b"m/p/";
const FACILITY: &[u8] = b"m/f/";
const PRODUCT: &[u8] = b"m/r/";
const STANDARD: &[u8] = b"m/s/";
const TOKEN: &[u8] = b"m/t/";

fn key(prefix: &[u8], id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + id.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(id.as_bytes());
    k
}

/// Counters of the projection, for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub position: u64,
    pub lots: u64,
    pub events: u64,
}

/// How a store groups lot and event records into keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// By the log position that created them, a chunk of positions
    /// (`CHUNK_SIZES`) a key: for a log whose positions count
    /// its events (the embedded log).
    Positions,
    /// By the order they were applied in, as many records a key: for a log
    /// whose positions do not count its events (a stream's positions leave
    /// room for the events of a batch after each message).
    Ordinals,
}

/// The genealogy store: in-memory index plus its sled mirror.
pub struct Projection {
    db: sled::Db,
    chunking: Chunking,
    /// Records a chunk holds: (lots, events).
    chunks: (u64, u64),
    tree: sled::Tree,
    graph: RwLock<Genealogy>,
    /// The stored bytes of the last event chunk, to append to.
    chunk: std::sync::Mutex<(u64, Vec<u8>)>,
    /// Events applied in memory since the last persist.
    unpersisted: std::sync::Mutex<u64>,
    /// The position of the last snapshot taken, and how many events the
    /// genealogy had applied then.
    snapshotted: std::sync::Mutex<(u64, u64)>,
    persisted: Arc<AtomicU64>,
    /// The projector's snapshot being written on a thread of its own (at
    /// most one: the next waits for it, so they are written in order).
    writing: std::sync::Mutex<Option<std::thread::JoinHandle<Result<(), GenealogyError>>>>,
}

/// Changes to the store encoded under the genealogy's lock, to be written
/// after it is released (see `Projection::snapshot`).
pub struct Snapshot {
    batch: sled::Batch,
    position: u64,
}

impl Snapshot {
    /// The log position the store reaches once this is written.
    pub fn position(&self) -> u64 {
        self.position
    }
}

/// Events applied in memory between two writes of the store: a lot consumed
/// by many transformations in that span is written once, not once each.
pub const PERSIST_EVERY: u64 = 16_384;

/// Opens the sled database, waiting (up to ten seconds) for a handle that
/// was just dropped to release the directory's lock.
pub(crate) fn open_db(dir: &Path) -> Result<sled::Db, GenealogyError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::Config::new().path(dir).cache_capacity(16 * 1024 * 1024).open() {
            Ok(db) => return Ok(db),
            Err(e) if e.to_string().contains("lock") && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn chunk_key(index: u64) -> Vec<u8> {
    chunk_key_of(EVENT_CHUNK, index)
}

fn chunk_key_of(prefix: &[u8], index: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&index.to_be_bytes());
    k
}

impl Projection {
    /// Opens the store in `dir` and loads it into memory.
    pub fn open(dir: &Path) -> Result<Projection, GenealogyError> {
        Projection::open_chunked(dir, Chunking::Positions)
    }

    /// `open`, with records grouped into keys as `chunking` says. A store
    /// is to be written with one chunking only.
    pub fn open_chunked(dir: &Path, chunking: Chunking) -> Result<Projection, GenealogyError> {
        Projection::open_sized(dir, chunking, CHUNK_SIZES)
    }

    /// `open_chunked`, a new store with chunks of `new` records.
    pub(crate) fn open_sized(dir: &Path, chunking: Chunking, new: (u64, u64)) -> Result<Projection, GenealogyError> {
        // sled keeps what a scan read resident for as long as the database
        // is open: load with one handle, drop it, and write through a fresh one.
        let (graph, chunk, chunks) = {
            let db = open_db(dir)?;
            let tree = db.open_tree("genealogy")?;
            let chunks = chunk_sizes(&tree, new)?;
            let (graph, chunk) = load(&tree)?;
            (graph, chunk, chunks)
        };
        let db = open_db(dir)?;
        let tree = db.open_tree("genealogy")?;
        let (position, applied) = (graph.position(), graph.applied());
        Ok(Projection {
            db,
            chunking,
            chunks,
            tree,
            graph: RwLock::new(graph),
            chunk: std::sync::Mutex::new(chunk),
            unpersisted: std::sync::Mutex::new(0),
            snapshotted: std::sync::Mutex::new((position, applied)),
            persisted: Arc::new(AtomicU64::new(position)),
            writing: std::sync::Mutex::new(None),
        })
    }

    /// Read access to the in-memory genealogy.
    pub fn read(&self) -> RwLockReadGuard<'_, Genealogy> {
        self.graph.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn status(&self) -> ProjectionStatus {
        let g = self.read();
        ProjectionStatus {
            position: g.position(),
            lots: g.lot_count() as u64,
            events: g.event_count() as u64,
        }
    }

    pub fn position(&self) -> u64 {
        self.read().position()
    }

    /// Applies events in order and persists the result with the new position
    /// in one sled batch. Events at or below the current position are skipped.
    pub fn apply(&self, events: &[AppliedEvent<'_>]) -> Result<(), GenealogyError> {
        let mut g = self.graph.write().unwrap_or_else(|e| e.into_inner());
        let before = g.applied();
        for e in events {
            g.apply(*e);
        }
        let applied = g.applied() - before;
        // Also when these were applied already, through `capture` (a
        // capture cache sharing this projection): those count too.
        let due = {
            let mut unpersisted = self.unpersisted.lock().unwrap_or_else(|e| e.into_inner());
            *unpersisted += applied;
            *unpersisted >= PERSIST_EVERY
        };
        if due {
            let snapshot = self.snapshot_locked(&mut g)?;
            drop(g);
            if let Some(snapshot) = snapshot {
                self.write_behind(snapshot)?;
            }
        }
        Ok(())
    }

    /// Writes a snapshot on a thread of its own, once the one before it is
    /// written: the projector applies its next batches meanwhile. A failed
    /// write is reported by the next call that waits for it.
    fn write_behind(&self, snapshot: Snapshot) -> Result<(), GenealogyError> {
        let mut writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        Self::wait(&mut writing)?;
        let (tree, persisted) = (self.tree.clone(), self.persisted.clone());
        let handle = std::thread::Builder::new()
            .name("projection-write".into())
            .spawn(move || {
                tree.apply_batch(snapshot.batch)?;
                tree.flush()?;
                persisted.store(snapshot.position, Ordering::Release);
                Ok(())
            })
            .map_err(|e| GenealogyError::Storage(format!("start the projection's writer: {e}")))?;
        *writing = Some(handle);
        Ok(())
    }

    fn wait(writing: &mut Option<std::thread::JoinHandle<Result<(), GenealogyError>>>) -> Result<(), GenealogyError> {
        match writing.take() {
            None => Ok(()),
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(GenealogyError::Storage("the projection's writer stopped".into()))),
        }
    }

    /// Waits until the snapshot being written, if any, is written.
    pub fn written(&self) -> Result<(), GenealogyError> {
        Self::wait(&mut self.writing.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs `f` with the genealogy under the write lock: the embedded write
    /// path decides against it and applies what it appended, and on NATS a
    /// capture cache sharing the projection applies what the stream
    /// acknowledged. What `f` applies is counted toward the next persist but
    /// never persisted here: the caller persists once the log has made it
    /// durable (`persist`), or the projector's next `apply` when due.
    pub fn capture<T>(&self, f: impl FnOnce(&mut Genealogy) -> T) -> T {
        let mut g = self.graph.write().unwrap_or_else(|e| e.into_inner());
        let before = g.applied();
        let out = f(&mut g);
        let applied = g.applied() - before;
        if applied > 0 {
            *self.unpersisted.lock().unwrap_or_else(|e| e.into_inner()) += applied;
        }
        out
    }

    /// Events applied in memory and not yet written to sled.
    pub fn unpersisted(&self) -> u64 {
        *self.unpersisted.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes everything applied since the last write, with the position it
    /// reaches, in one atomic sled batch. Until then the changes live in
    /// memory only: a crash loses them, and the projector re-applies them
    /// from the log.
    pub fn persist(&self) -> Result<(), GenealogyError> {
        match self.snapshot()? {
            Some(snapshot) => self.write(snapshot),
            None => self.written(),
        }
    }

    /// Encodes everything applied since the last snapshot, under the lock
    /// but without writing: the caller can release the genealogy, wait until
    /// the log has made `Snapshot::position` durable, and then `write` it.
    /// Snapshots must be written in the order they were taken.
    pub fn snapshot(&self) -> Result<Option<Snapshot>, GenealogyError> {
        let mut g = self.graph.write().unwrap_or_else(|e| e.into_inner());
        self.snapshot_locked(&mut g)
    }

    /// Writes a snapshot, with the position it reaches, in one atomic batch,
    /// and flushes it to disk.
    pub fn write(&self, snapshot: Snapshot) -> Result<(), GenealogyError> {
        let mut writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        Self::wait(&mut writing)?;
        self.tree.apply_batch(snapshot.batch)?;
        self.tree.flush()?;
        self.persisted.store(snapshot.position, Ordering::Release);
        Ok(())
    }

    /// The position the stored (not just the in-memory) projection reflects,
    /// on disk: a snapshot counts once sled has flushed it, so a process
    /// killed after this says `n` opens again at `n` at least.
    pub fn persisted_position(&self) -> u64 {
        self.persisted.load(Ordering::Acquire)
    }

    fn snapshot_locked(&self, g: &mut Genealogy) -> Result<Option<Snapshot>, GenealogyError> {
        let mut snapshotted = self.snapshotted.lock().unwrap_or_else(|e| e.into_inner());
        if g.position() == snapshotted.0 {
            return Ok(None);
        }
        let dirty = g.take_dirty();
        let mut batch = sled::Batch::default();
        let mut writer = records::LotWriter::default();
        let chunks: std::collections::BTreeSet<u64> = dirty
            .lots
            .iter()
            .map(|ix| match self.chunking {
                Chunking::Positions => g.node(*ix).created_position() / self.chunks.0,
                Chunking::Ordinals => u64::from(*ix) / self.chunks.0,
            })
            .collect();
        for c in chunks {
            // Lots are held in creation order, so a chunk is a contiguous range.
            let (lo, hi) = match self.chunking {
                Chunking::Positions => (
                    g.lots.partition_point(|n| n.created_position() < c * self.chunks.0),
                    g.lots
                        .partition_point(|n| n.created_position() < (c + 1) * self.chunks.0),
                ),
                Chunking::Ordinals => {
                    let at = |i: u64| usize::try_from(i).unwrap_or(usize::MAX).min(g.lots.len());
                    (at(c * self.chunks.0), at((c + 1) * self.chunks.0))
                }
            };
            let mut members: Vec<&crate::graph::LotNode> = g.lots[lo..hi].iter().collect();
            members.sort_by(|a, b| (a.created_position(), &a.id).cmp(&(b.created_position(), &b.id)));
            let mut value = Vec::with_capacity(members.len() * 160);
            for n in members {
                writer.write(g, n, &mut value);
            }
            batch.insert(chunk_key_of(LOT, c), value);
        }
        {
            let mut chunk = self.chunk.lock().unwrap_or_else(|e| e.into_inner());
            let mut touched = false;
            // The events new since the last snapshot are the last ones applied.
            let first = g.event_count().saturating_sub(dirty.new_events.len()) as u64;
            for (ordinal, id) in (first..).zip(&dirty.new_events) {
                let Some(e) = g.events.get(id) else { continue };
                let index = match self.chunking {
                    Chunking::Positions => e.position / self.chunks.1,
                    Chunking::Ordinals => ordinal / self.chunks.1,
                };
                if index != chunk.0 {
                    if touched {
                        batch.insert(chunk_key(chunk.0), chunk.1.clone());
                    }
                    *chunk = (index, Vec::new());
                }
                let mut r = records::event_to_record(g, id, e);
                r.voided_by.clear();
                r.void_reason.clear();
                r.encode_length_delimited(&mut chunk.1)
                    .map_err(|e| GenealogyError::Storage(e.to_string()))?;
                touched = true;
            }
            if touched {
                batch.insert(chunk_key(chunk.0), chunk.1.clone());
            }
        }
        for id in &dirty.voided {
            if let Some(e) = g.events.get(id) {
                let r = records::event_to_record(g, id, e);
                batch.insert(key(VOIDED, id), r.encode_to_vec());
            }
        }
        let master = |batch: &mut sled::Batch, prefix: &[u8], id: &str, m: Master| {
            batch.insert(key(prefix, id), master::master_to_record(&m).encode_to_vec());
        };
        for id in &dirty.parties {
            if let Some(p) = g.parties.get(id) {
                master(&mut batch, PARTY, id, Master::Party(p.clone()));
            }
        }
        for id in &dirty.facilities {
            if let Some(f) = g.facilities.get(id) {
                master(&mut batch, FACILITY, id, Master::Facility(f.clone()));
            }
        }
        for id in &dirty.products {
            if let Some(p) = g.products.get(id) {
                master(&mut batch, PRODUCT, id, Master::Product(p.clone()));
            }
        }
        for id in &dirty.standards {
            if let Some(s) = g.standards.get(id) {
                master(&mut batch, STANDARD, id, Master::Standard(s.clone()));
            }
        }
        for id in &dirty.tokens {
            if let Some(t) = g.tokens.get(id) {
                batch.insert(key(TOKEN, id), records::token_to_record(&t).encode_to_vec());
            }
        }
        batch.insert(POSITION_KEY, &g.position().to_be_bytes());
        let (_, event, hash) = g.anchor();
        let mut anchor = hash.to_vec();
        anchor.extend_from_slice(event.as_bytes());
        batch.insert(ANCHOR_KEY, anchor);
        batch.insert(FORMAT_KEY, &FORMAT.to_be_bytes());
        let mut chunks = [0u8; 16];
        chunks[..8].copy_from_slice(&self.chunks.0.to_be_bytes());
        chunks[8..].copy_from_slice(&self.chunks.1.to_be_bytes());
        batch.insert(CHUNKS_KEY, &chunks);
        let mut unpersisted = self.unpersisted.lock().unwrap_or_else(|e| e.into_inner());
        *unpersisted = unpersisted.saturating_sub(g.applied() - snapshotted.1);
        *snapshotted = (g.position(), g.applied());
        Ok(Some(Snapshot {
            batch,
            position: g.position(),
        }))
    }

    /// Makes everything applied so far durable.
    pub fn flush(&self) -> Result<(), GenealogyError> {
        self.persist()?;
        self.db.flush()?;
        Ok(())
    }

    /// blake3 over every stored key and value in key order: equal digests
    /// mean equal projections.
    pub fn digest(&self) -> Result<[u8; 32], GenealogyError> {
        self.persist()?;
        let mut h = blake3::Hasher::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            h.update(&(k.len() as u64).to_le_bytes());
            h.update(&k);
            h.update(&(v.len() as u64).to_le_bytes());
            h.update(&v);
        }
        Ok(*h.finalize().as_bytes())
    }

    pub fn size_on_disk(&self) -> Result<u64, GenealogyError> {
        Ok(self.db.size_on_disk()?)
    }
}

impl Drop for Projection {
    /// A snapshot still being written is finished first; one that failed
    /// leaves the stored projection behind, and the projector re-applies
    /// those events from the log when it next starts.
    fn drop(&mut self) {
        if let Err(e) = self.written() {
            tracing::error!(error = %e, "the projection's last snapshot was not written");
        }
    }
}

/// Lots are held in creation order (by the position of the event that
/// created them, then by id), so dense indexes are the same as in the live
/// projection. The store writes them in that order (chunks keyed by the
/// creating position, each sorted), so each lot is inserted as it is read,
/// and its inputs, created before it, are there already: nothing read is
/// held until the end, which would leave the memory it took scattered
/// between the lots' own. False, with `g` partly filled, if a lot comes out
/// of that order; then `load_lots_sorted` loads them.
fn load_lots_in_order(tree: &sled::Tree, g: &mut Genealogy) -> Result<bool, GenealogyError> {
    let mut unresolved = Vec::new();
    let mut last: Option<(u64, Ix)> = None;
    let in_order = each_lot(tree, g, |g, created, (node, parents, source)| {
        if let Some((at, ix)) = last {
            if (at, &*g.node(ix).id) >= (created, &*node.id) {
                return Ok(false);
            }
        }
        let ix = g.insert_node(node);
        last = Some((created, ix));
        let ready =
            parents.iter().all(|p| g.lot_ix(&p.lot).is_some()) && (source.is_empty() || g.lot_ix(&source).is_some());
        if ready {
            records::resolve_parents(g, ix, parents, &source)?;
        } else {
            unresolved.push((ix, parents, source));
        }
        Ok(true)
    })?;
    if !in_order {
        return Ok(false);
    }
    for (ix, parents, source) in unresolved {
        records::resolve_parents(g, ix, parents, &source)?;
    }
    Ok(true)
}

/// A stored lot, decoded: its node, its inputs as stored, its source lot's id.
type ReadLot = (crate::graph::LotNode, Vec<records::EdgeRecord>, String);

/// Decodes the stored lots in the store's order and hands each, with the
/// position that created it, to `f` until it returns false; whether every
/// lot was handed on.
fn each_lot(
    tree: &sled::Tree,
    g: &mut Genealogy,
    mut f: impl FnMut(&mut Genealogy, u64, ReadLot) -> Result<bool, GenealogyError>,
) -> Result<bool, GenealogyError> {
    for item in tree.scan_prefix(LOT) {
        let (k, v) = item?;
        let mut rest = v.as_ref();
        while !rest.is_empty() {
            let r = LotRecord::decode_length_delimited(&mut rest).map_err(|e| corrupt_key(&k, e.to_string()))?;
            let lot = records::record_to_node(g, r)?;
            let created = lot.0.history.first().copied().unwrap_or(0);
            if !f(g, created, lot)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Every lot read and held, sorted into creation order, then inserted and
/// linked: for a store whose lots are not in that order.
fn load_lots_sorted(tree: &sled::Tree, g: &mut Genealogy) -> Result<(), GenealogyError> {
    let mut pending = Vec::new();
    each_lot(tree, g, |_, created, (node, parents, source)| {
        pending.push((created, node, parents, source));
        Ok(true)
    })?;
    pending.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let mut to_resolve = Vec::with_capacity(pending.len());
    for (_, node, parents, source) in pending {
        let ix = g.insert_node(node);
        to_resolve.push((ix, parents, source));
    }
    for (ix, parents, source) in to_resolve {
        records::resolve_parents(g, ix, parents, &source)?;
    }
    Ok(())
}

/// A stored key whose value does not read.
fn corrupt_key(k: &[u8], reason: String) -> GenealogyError {
    GenealogyError::Corrupt {
        key: String::from_utf8_lossy(k).into_owned(),
        reason,
    }
}

/// The chunk sizes of a store: as it says; a store that says nothing but
/// holds records was written with `FIRST_CHUNK_SIZES`; a new one gets
/// `new`.
fn chunk_sizes(tree: &sled::Tree, new: (u64, u64)) -> Result<(u64, u64), GenealogyError> {
    if let Some(v) = tree.get(CHUNKS_KEY)? {
        let size = |at: usize| {
            v.get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .filter(|n| *n > 0)
                .ok_or_else(|| corrupt_key(CHUNKS_KEY, "chunk sizes are not two non-zero 8-byte numbers".into()))
        };
        if v.len() != 16 {
            return Err(corrupt_key(
                CHUNKS_KEY,
                format!("{} bytes where 16 were expected", v.len()),
            ));
        }
        return Ok((size(0)?, size(8)?));
    }
    let holds_records = tree.scan_prefix(LOT).next().transpose()?.is_some()
        || tree.scan_prefix(EVENT_CHUNK).next().transpose()?.is_some();
    Ok(if holds_records { FIRST_CHUNK_SIZES } else { new })
}
fn load(tree: &sled::Tree) -> Result<(Genealogy, (u64, Vec<u8>)), GenealogyError> {
    let mut g = Genealogy::new();
    if let Some(v) = tree.get(FORMAT_KEY)? {
        let bytes: [u8; 4] = v
            .as_ref()
            .try_into()
            .map_err(|_| corrupt_key(FORMAT_KEY, "format is not 4 bytes".into()))?;
        let format = u32::from_be_bytes(bytes);
        if format > FORMAT {
            return Err(corrupt_key(
                FORMAT_KEY,
                format!(
                    "the projection is in format {format}, newer than the {FORMAT} this version reads; run this version's `jejak rebuild`, or a newer jejak"
                ),
            ));
        }
    }
    if let Some(v) = tree.get(POSITION_KEY)? {
        let bytes: [u8; 8] = v
            .as_ref()
            .try_into()
            .map_err(|_| corrupt_key(POSITION_KEY, "position is not 8 bytes".into()))?;
        g.position = u64::from_be_bytes(bytes);
    }
    if let Some(v) = tree.get(ANCHOR_KEY)? {
        if v.len() < 32 {
            return Err(corrupt_key(ANCHOR_KEY, "anchor is shorter than its hash".into()));
        }
        g.last_hash.copy_from_slice(&v[..32]);
        g.last_event = String::from_utf8_lossy(&v[32..]).into();
    }
    for prefix in [PARTY, FACILITY, PRODUCT, STANDARD] {
        for item in tree.scan_prefix(prefix) {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            let r = master::MasterRecord::decode(v.as_ref()).map_err(|e| corrupt_key(&k, e.to_string()))?;
            match master::master_from_record(&key, r)? {
                Master::Party(p) => {
                    g.parties.insert(p.id.clone(), p);
                }
                Master::Facility(f) => {
                    g.facilities.insert(f.id.clone(), f);
                }
                Master::Product(p) => {
                    g.products.insert(p.id.clone(), p);
                }
                Master::Standard(s) => {
                    g.standards.insert(s.id.clone(), s);
                }
            }
        }
    }
    for item in tree.scan_prefix(TOKEN) {
        let (k, v) = item?;
        let r = records::TokenRecordProto::decode(v.as_ref()).map_err(|e| corrupt_key(&k, e.to_string()))?;
        let key = String::from_utf8_lossy(&k).into_owned();
        g.tokens.restore(records::token_from_record(&key, r)?);
    }
    if !load_lots_in_order(tree, &mut g)? {
        g.lots.clear();
        g.by_id.clear();
        g.serials.clear();
        load_lots_sorted(tree, &mut g)?;
    }
    g.link_children();
    let mut last_chunk = (0, Vec::new());
    for item in tree.scan_prefix(EVENT_CHUNK) {
        let (k, v) = item?;
        let index = k
            .get(EVENT_CHUNK.len()..)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| corrupt_key(&k, "chunk key is truncated".into()))?;
        let mut rest = v.as_ref();
        while !rest.is_empty() {
            let r = EventRecord::decode_length_delimited(&mut rest).map_err(|e| corrupt_key(&k, e.to_string()))?;
            let id = r.id.clone();
            let e = records::record_to_event(&mut g, &id, r)?;
            g.events.insert(id.into(), Box::new(e));
        }
        last_chunk = (index, v.to_vec());
    }
    for item in tree.scan_prefix(VOIDED) {
        let (k, v) = item?;
        let r = EventRecord::decode(v.as_ref()).map_err(|e| corrupt_key(&k, e.to_string()))?;
        if let Some(e) = g.events.get_mut(r.id.as_str()) {
            if !r.voided_by.is_empty() {
                e.voided_by = Some(Box::new((r.voided_by.into(), r.void_reason)));
            }
        }
    }
    Ok((g, last_chunk))
}
