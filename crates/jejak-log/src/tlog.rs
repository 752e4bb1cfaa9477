//! The transparency log's tree, stored: an RFC 6962 Merkle tree over one
//! leaf per event in log order (the event's salted field commitment, see
//! `jejak_verify::commit`), kept beside the event log in its own sled
//! database, from which checkpoints, proofs and C2SP tiles are answered.
//!
//! Keys: `n` ‖ level ‖ index → the hash of every complete subtree (level 0
//! holds the leaf hashes); `e` ‖ index → the event's log position and the
//! leaf data; `q` ‖ position → index; `s` → the tree size; `c` → the last
//! published checkpoint (a signed note). One batch per append: the size
//! never runs ahead of the hashes.
//!
//! The tree is derived from the log: built by one writer from the log's
//! order, it can always be rebuilt from the envelopes (their commitment
//! secrets are in them), and a rebuilt tree of an unchanged log has the
//! same root.

use std::path::Path;
use std::sync::{Arc, Mutex};

use jejak_verify::checkpoint::{self, Checkpoint};
use jejak_verify::commit::{self, Field, Meta};
use jejak_verify::merkle::{self, Hash, Nodes};
use jejak_verify::note::Verifier;
use tokio::sync::watch;

use crate::{LogError, StoredEvent};

/// Hashes in a full tile, and its height.
pub const TILE_WIDTH: u64 = 256;
const TILE_HEIGHT: u32 = 8;

/// An event's commitment: its fields, the secret their salts come from,
/// and the leaf.
#[derive(Debug, Clone)]
pub struct Commitment {
    pub fields: Vec<Field>,
    pub secret: Vec<u8>,
    /// The field digests, sorted.
    pub digests: Vec<Hash>,
    pub leaf: Vec<u8>,
}

/// The commitment of a stored event.
pub fn commitment(e: &StoredEvent) -> Result<Commitment, LogError> {
    let opened = Opened::of(e.position, e.envelope.clone())?;
    let fields = commit::fields(&opened.meta(&e.hash), &opened.event);
    let digests = commit::digests(&opened.secret, &fields);
    let leaf = commit::leaf(&digests);
    Ok(Commitment {
        fields,
        secret: opened.secret,
        digests,
        leaf,
    })
}

/// The leaf of a stored event, taking it (no copy of its event, and no
/// field kept: what the tree needs).
pub fn leaf_of(e: StoredEvent) -> Result<Vec<u8>, LogError> {
    let opened = Opened::of(e.position, e.envelope)?;
    Ok(commit::leaf_of(&opened.meta(&e.hash), &opened.event, &opened.secret))
}

/// The leaf of a stored event whose event a follower has decoded already.
pub fn leaf_of_decoded(e: &StoredEvent, event: &jejak_domain::Event) -> Vec<u8> {
    let env = &e.envelope;
    let meta = Meta {
        event_id: &env.event_id,
        chain: &env.chain,
        sequence: env.sequence,
        recorded_at: recorded_at(env.recorded_at),
        actor: &env.actor,
        envelope: &e.hash,
    };
    commit::leaf_of(&meta, event, &env.secret)
}

/// When the envelope says it was recorded (the epoch when it does not).
fn recorded_at(t: Option<prost_types::Timestamp>) -> jejak_domain::Time {
    t.and_then(|t| jejak_domain::Time::from_unix(t.seconds, t.nanos))
        .unwrap_or_default()
}

/// An envelope taken apart for its commitment.
struct Opened {
    chain: String,
    sequence: u64,
    event_id: String,
    recorded_at: jejak_domain::Time,
    actor: String,
    secret: Vec<u8>,
    event: jejak_domain::Event,
}

impl Opened {
    fn of(position: u64, env: jejak_proto::v1::Envelope) -> Result<Opened, LogError> {
        let corrupt = |reason: String| LogError::Corrupt { position, reason };
        let jejak_proto::v1::Envelope {
            chain,
            sequence,
            event_id,
            recorded_at,
            actor,
            event,
            secret,
            ..
        } = env;
        let event = event.ok_or_else(|| corrupt("the envelope has no event".into()))?;
        let event =
            jejak_proto::decode_event(event).map_err(|err| corrupt(format!("the event does not decode: {err}")))?;
        let recorded_at = self::recorded_at(recorded_at);
        Ok(Opened {
            chain,
            sequence,
            event_id,
            recorded_at,
            actor,
            secret,
            event,
        })
    }

    fn meta<'a>(&'a self, hash: &'a [u8; 32]) -> Meta<'a> {
        Meta {
            event_id: &self.event_id,
            chain: &self.chain,
            sequence: self.sequence,
            recorded_at: self.recorded_at,
            actor: &self.actor,
            envelope: hash,
        }
    }
}

/// `t` ‖ tile level ‖ tile index: a tile's hashes (up to 256 × 32 bytes).
fn tile_key(level: u8, index: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = b't';
    k[1] = level;
    k[2..].copy_from_slice(&index.to_be_bytes());
    k
}

/// `e` ‖ tile index: the entries of 256 leaves, each its log position
/// (u64), its length (u16) and the leaf data.
fn entries_key(index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'e';
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    bytes.get(..8)?.try_into().ok().map(u64::from_be_bytes)
}

const SIZE: &[u8] = b"s";
const CHECKPOINT: &[u8] = b"c";
/// Tile levels kept: tree levels 0, 8, …, 56 (2^64 leaves).
const TILE_LEVELS: usize = 8;

/// What the single writer keeps in memory: the size, the last (partial)
/// tile of each tile level and of the entries, and the log position of the
/// last leaf.
struct Frontier {
    size: u64,
    tiles: Vec<Vec<u8>>,
    entries: Vec<u8>,
    last_position: u64,
}

/// The stored tree, kept as C2SP tiles: the leaf hashes in tiles of 256,
/// and above them the roots of full tiles, tile level by tile level; inner
/// nodes within a tile are hashed again when asked for. Readers answer
/// from any size up to the current one.
pub struct TreeStore {
    db: sled::Db,
    writer: Mutex<Frontier>,
    size: std::sync::atomic::AtomicU64,
}

impl Nodes for TreeStore {
    type Error = LogError;
    fn node(&self, level: u8, index: u64) -> Result<Hash, LogError> {
        let (tile_level, within) = (level / TILE_HEIGHT as u8, u32::from(level) % TILE_HEIGHT);
        // The node covers 2^within consecutive hashes of its tile level.
        let first = index << within;
        let tile = self
            .db
            .get(tile_key(tile_level, first / TILE_WIDTH))?
            .ok_or_else(|| LogError::Storage(format!("the tree has no tile for level {level}, index {index}")))?;
        let at = ((first % TILE_WIDTH) * 32) as usize;
        let span = 32usize << within;
        let hashes: Vec<Hash> = tile
            .get(at..at + span)
            .ok_or_else(|| {
                LogError::Storage(format!(
                    "the tree's tile lacks the node at level {level}, index {index}"
                ))
            })?
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(merkle::root(&hashes))
    }
}

fn lost(what: &str) -> LogError {
    LogError::Storage(format!("the transparency log's tree is missing {what}"))
}

impl TreeStore {
    /// Opens (or creates) the tree in `dir`.
    pub fn open(dir: &Path) -> Result<TreeStore, LogError> {
        let db = crate::sled_log::open_db_flushing(dir, None)?;
        let damaged = |what: String| LogError::Storage(format!("the transparency log's tree is damaged: {what}"));
        let size = match db.get(SIZE)? {
            None => 0,
            // Read as 0, a damaged size would rebuild the tree while its
            // published checkpoint names more leaves.
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| damaged(format!("its size is {} bytes, not 8", v.len())))?,
        };
        let mut tiles = Vec::with_capacity(TILE_LEVELS);
        for level in 0..TILE_LEVELS as u32 {
            let count = size >> (level * TILE_HEIGHT);
            let partial = count % TILE_WIDTH;
            tiles.push(match partial {
                0 => Vec::new(),
                _ => {
                    let tile = db
                        .get(tile_key(level as u8, count / TILE_WIDTH))?
                        .ok_or_else(|| lost("a partial tile"))?
                        .to_vec();
                    // Extended in place, a tile of another width would give
                    // wrong roots from then on.
                    if tile.len() as u64 != partial * 32 {
                        return Err(damaged(format!(
                            "its partial tile at level {level} holds {} bytes, not {} hashes",
                            tile.len(),
                            partial
                        )));
                    }
                    tile
                }
            });
        }
        let entries = match size % TILE_WIDTH {
            0 => Vec::new(),
            _ => db
                .get(entries_key(size / TILE_WIDTH))?
                .ok_or_else(|| lost("its last entries"))?
                .to_vec(),
        };
        let store = TreeStore {
            db,
            writer: Mutex::new(Frontier {
                size,
                tiles,
                entries,
                last_position: 0,
            }),
            size: std::sync::atomic::AtomicU64::new(size),
        };
        let last_position = match size {
            0 => 0,
            n => store.entry(n - 1)?.0,
        };
        store.lock().last_position = last_position;
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Frontier> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many leaves the tree has.
    pub fn size(&self) -> u64 {
        self.size.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The log position of the last leaf (0 for an empty tree).
    pub fn last_position(&self) -> u64 {
        self.lock().last_position
    }

    /// Appends one leaf per event, in log order, as one batch; returns the
    /// new size. Only the tiles it touched are written.
    pub fn append(&self, leaves: &[(u64, Vec<u8>)]) -> Result<u64, LogError> {
        let mut w = self.lock();
        let (mut size, mut tiles, mut entries, mut last) =
            (w.size, w.tiles.clone(), w.entries.clone(), w.last_position);
        let mut batch = sled::Batch::default();
        // Touched tiles: (tile level, index); entry tiles by index.
        let mut touched: Vec<(u8, u64)> = Vec::new();
        let mut touched_entries: Vec<u64> = Vec::new();
        for (position, data) in leaves {
            if *position <= last {
                return Err(LogError::Storage(format!(
                    "tree leaves must follow the log: position {position} after {last}"
                )));
            }
            let len = u16::try_from(data.len()).map_err(|_| {
                LogError::Storage(format!("a leaf of {} bytes is longer than a tile entry", data.len()))
            })?;
            entries.extend_from_slice(&position.to_be_bytes());
            entries.extend_from_slice(&len.to_be_bytes());
            entries.extend_from_slice(data);
            let entry_tile = size / TILE_WIDTH;
            if size % TILE_WIDTH == TILE_WIDTH - 1 {
                batch.insert(&entries_key(entry_tile), std::mem::take(&mut entries));
                touched_entries.retain(|t| *t != entry_tile);
            } else if !touched_entries.contains(&entry_tile) {
                touched_entries.push(entry_tile);
            }
            // The leaf hash goes into its level-0 tile; a full tile's root
            // goes into the tile above, and so on.
            let mut hash = merkle::leaf_hash(data);
            let mut count = size;
            for (level, tile) in tiles.iter_mut().enumerate() {
                tile.extend_from_slice(&hash);
                let index = count / TILE_WIDTH;
                if tile.len() as u64 == TILE_WIDTH * 32 {
                    let full = std::mem::take(tile);
                    hash = merkle::root(
                        &full
                            .chunks_exact(32)
                            .map(|c| {
                                let mut h = [0u8; 32];
                                h.copy_from_slice(c);
                                h
                            })
                            .collect::<Vec<_>>(),
                    );
                    batch.insert(&tile_key(level as u8, index), full);
                    touched.retain(|t| *t != (level as u8, index));
                    count /= TILE_WIDTH;
                } else {
                    if !touched.contains(&(level as u8, index)) {
                        touched.push((level as u8, index));
                    }
                    break;
                }
            }
            size += 1;
            last = *position;
        }
        for (level, index) in touched {
            batch.insert(&tile_key(level, index), tiles[level as usize].as_slice());
        }
        for index in touched_entries {
            batch.insert(&entries_key(index), entries.as_slice());
        }
        batch.insert(SIZE, &size.to_be_bytes());
        self.db.apply_batch(batch)?;
        w.size = size;
        w.tiles = tiles;
        w.entries = entries;
        w.last_position = last;
        self.size.store(size, std::sync::atomic::Ordering::Release);
        Ok(size)
    }

    /// Empties the tree (before a rebuild).
    pub fn clear(&self) -> Result<(), LogError> {
        let mut w = self.lock();
        self.db.clear()?;
        self.db.flush()?;
        *w = Frontier {
            size: 0,
            tiles: vec![Vec::new(); TILE_LEVELS],
            entries: Vec::new(),
            last_position: 0,
        };
        self.size.store(0, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Makes what was appended durable.
    pub fn flush(&self) -> Result<(), LogError> {
        self.db.flush()?;
        Ok(())
    }

    fn check_size(&self, size: u64) -> Result<(), LogError> {
        if size > self.size() {
            return Err(LogError::Storage(format!(
                "the tree has {} leaves, not {size}",
                self.size()
            )));
        }
        Ok(())
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, LogError> {
        self.check_size(size)?;
        merkle::range_root(self, 0, size)
    }

    /// The inclusion proof of leaf `index` in the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(size)?;
        merkle::stored_inclusion_proof(self, index, size)
    }

    /// The consistency proof from `size1` to `size2` leaves.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(size2)?;
        merkle::stored_consistency_proof(self, size1, size2)
    }

    /// The entries of one entry tile: (position, leaf data), in order.
    fn entry_tile(&self, tile: u64) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let bytes = self.db.get(entries_key(tile))?.ok_or_else(|| lost("an entry tile"))?;
        let mut rest = bytes.as_ref();
        let mut out = Vec::new();
        while !rest.is_empty() {
            let position = be_u64(rest).ok_or_else(|| lost("an entry's position"))?;
            let len = rest
                .get(8..10)
                .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
                .ok_or_else(|| lost("an entry's length"))?;
            let data = rest.get(10..10 + len).ok_or_else(|| lost("an entry's data"))?;
            out.push((position, data.to_vec()));
            rest = &rest[10 + len..];
        }
        Ok(out)
    }

    /// The log position and leaf data of leaf `index`.
    pub fn entry(&self, index: u64) -> Result<(u64, Vec<u8>), LogError> {
        if index >= self.size() {
            return Err(LogError::Storage(format!("the tree has no leaf {index}")));
        }
        self.entry_tile(index / TILE_WIDTH)?
            .into_iter()
            .nth((index % TILE_WIDTH) as usize)
            .ok_or_else(|| lost("a leaf"))
    }

    /// The leaf index of the event at a log position (positions increase
    /// with the index; a log without gaps has index = position − 1).
    pub fn index_of(&self, position: u64) -> Result<Option<u64>, LogError> {
        let size = self.size();
        if position == 0 || size == 0 {
            return Ok(None);
        }
        if position - 1 < size && self.entry(position - 1)?.0 == position {
            return Ok(Some(position - 1));
        }
        let (mut lo, mut hi) = (0u64, size);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry(mid)?.0.cmp(&position) {
                std::cmp::Ordering::Equal => return Ok(Some(mid)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// A C2SP tile: `width` hashes of tile `index` at tile level `level`
    /// (tree level 8·level), or None when the tree does not have them yet.
    pub fn tile(&self, level: u8, index: u64, width: u64) -> Result<Option<Vec<u8>>, LogError> {
        if width == 0 || width > TILE_WIDTH || usize::from(level) >= TILE_LEVELS {
            return Ok(None);
        }
        let Some(first) = index.checked_mul(TILE_WIDTH) else {
            return Ok(None);
        };
        // Nodes at this level that are complete.
        let complete = self.size() >> (u32::from(level) * TILE_HEIGHT);
        if first.saturating_add(width) > complete {
            return Ok(None);
        }
        let tile = self.db.get(tile_key(level, index))?.ok_or_else(|| lost("a tile"))?;
        Ok(tile.get(..(width * 32) as usize).map(<[u8]>::to_vec))
    }

    /// A C2SP entry bundle: the leaf data of `width` leaves of tile `index`,
    /// each prefixed by its big-endian u16 length.
    pub fn entries(&self, index: u64, width: u64) -> Result<Option<Vec<u8>>, LogError> {
        if width == 0 || width > TILE_WIDTH {
            return Ok(None);
        }
        let Some(first) = index.checked_mul(TILE_WIDTH) else {
            return Ok(None);
        };
        if first.saturating_add(width) > self.size() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for (_, data) in self.entry_tile(index)?.into_iter().take(width as usize) {
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(&data);
        }
        Ok(Some(out))
    }

    /// The last published checkpoint: its note and when it was signed
    /// (seconds since the epoch).
    pub fn checkpoint(&self) -> Result<Option<(String, i64)>, LogError> {
        let Some(v) = self.db.get(CHECKPOINT)? else {
            return Ok(None);
        };
        let at = be_u64(&v).ok_or_else(|| LogError::Storage("the stored checkpoint is malformed".into()))?;
        let note = String::from_utf8(v[8..].to_vec())
            .map_err(|_| LogError::Storage("the stored checkpoint is not UTF-8".into()))?;
        Ok(Some((note, at as i64)))
    }

    /// Publishes a checkpoint note signed at `at` (durably: it is what
    /// start-up trusts).
    pub fn set_checkpoint(&self, note: &str, at: i64) -> Result<(), LogError> {
        let mut v = (at.max(0) as u64).to_be_bytes().to_vec();
        v.extend_from_slice(note.as_bytes());
        self.db.insert(CHECKPOINT, v)?;
        // Durable with every leaf before it: start-up trusts what is here.
        self.db.flush()?;
        Ok(())
    }
}

/// A checkpoint as published: the signed note with the cosignatures it
/// gathered, what it says, and when it was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub note: String,
    pub checkpoint: Checkpoint,
    /// The witnesses that cosigned it.
    pub cosigners: Vec<String>,
    /// Seconds since the epoch.
    pub signed_at: i64,
}

/// What readers of the transparency log share: the tree, the log's and
/// the witnesses' keys, and the last published checkpoint.
#[derive(Clone)]
pub struct Transparency {
    pub tree: Arc<TreeStore>,
    pub log_key: Verifier,
    pub witnesses: Vec<Verifier>,
    pub quorum: usize,
    pub published: watch::Receiver<Option<Arc<Published>>>,
}

impl Transparency {
    /// The last published checkpoint, if any.
    pub fn published(&self) -> Option<Arc<Published>> {
        self.published.borrow().clone()
    }

    /// Reads a checkpoint note as published (trusting the log's and the
    /// configured witnesses' keys).
    pub fn parse_published(&self, note: String, signed_at: i64) -> Result<Published, LogError> {
        let trusted =
            checkpoint::verify_checkpoint(&note, &self.log_key, &self.witnesses, 0).map_err(|e| LogError::Corrupt {
                position: 0,
                reason: format!("the transparency log's checkpoint does not verify: {e}"),
            })?;
        Ok(Published {
            note,
            checkpoint: trusted.checkpoint,
            cosigners: trusted.cosigners.into_iter().map(|c| c.0).collect(),
            signed_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(from: u64, n: u64) -> Vec<(u64, Vec<u8>)> {
        (from..from + n)
            .map(|p| (p, format!("leaf {p}").into_bytes()))
            .collect()
    }

    #[test]
    fn a_stored_tree_answers_as_the_tree_of_its_leaves_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let all: Vec<Hash> = leaves(1, 700).iter().map(|(_, d)| merkle::leaf_hash(d)).collect();
        {
            let t = TreeStore::open(dir.path()).unwrap();
            t.append(&leaves(1, 300)).unwrap();
            assert_eq!(t.root(300).unwrap(), merkle::root(&all[..300]));
        }
        let t = TreeStore::open(dir.path()).unwrap();
        assert_eq!((t.size(), t.last_position()), (300, 300));
        for chunk in leaves(301, 400).chunks(37) {
            t.append(chunk).unwrap();
        }
        assert_eq!(t.size(), 700);
        for size in [1u64, 2, 255, 256, 257, 511, 512, 699, 700] {
            assert_eq!(t.root(size).unwrap(), merkle::root(&all[..size as usize]), "{size}");
        }
        for (i, size) in [(0u64, 700u64), (299, 700), (511, 512), (699, 700)] {
            let proof = t.inclusion_proof(i, size).unwrap();
            assert_eq!(proof, merkle::inclusion_proof(i as usize, &all[..size as usize]));
        }
        assert_eq!(
            t.consistency_proof(300, 700).unwrap(),
            merkle::consistency_proof(300, &all)
        );
        assert_eq!(t.index_of(42).unwrap(), Some(41));
        assert_eq!(t.entry(41).unwrap(), (42, b"leaf 42".to_vec()));
        // Tiles: two full level-0 tiles, a partial one of 188, and level 1 of width 2.
        let tile = t.tile(0, 1, 256).unwrap().unwrap();
        assert_eq!(&tile[..32], &all[256]);
        assert_eq!(t.tile(0, 2, 188).unwrap().map(|t| t.len()), Some(188 * 32));
        assert_eq!(t.tile(0, 2, 189).unwrap(), None);
        let up = t.tile(1, 0, 2).unwrap().unwrap();
        assert_eq!(&up[32..], &merkle::root(&all[256..512]));
        let bundle = t.entries(0, 2).unwrap().unwrap();
        assert_eq!(&bundle[..2], &6u16.to_be_bytes());
        assert_eq!(&bundle[2..8], b"leaf 1");
        assert!(t.append(&leaves(5, 1)).is_err(), "leaves follow the log");
    }

    #[test]
    fn a_damaged_size_or_partial_tile_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let t = TreeStore::open(dir.path()).unwrap();
            t.append(&leaves(1, 300)).unwrap();
            t.db.flush().unwrap();
        }
        let raw = |f: &dyn Fn(&sled::Db)| {
            let db = crate::sled_log::open_db_flushing(dir.path(), None).unwrap();
            f(&db);
            db.flush().unwrap();
        };
        // The level-0 tile of 300 leaves holds 44 hashes; one byte more.
        raw(&|db| {
            let mut tile = db.get(tile_key(0, 1)).unwrap().unwrap().to_vec();
            assert_eq!(tile.len(), 44 * 32);
            tile.push(0);
            db.insert(tile_key(0, 1), tile).unwrap();
        });
        let err = TreeStore::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("1409 bytes, not 44 hashes"), "{err}");
        raw(&|db| {
            let tile = db.get(tile_key(0, 1)).unwrap().unwrap();
            db.insert(tile_key(0, 1), &tile[..44 * 32]).unwrap();
            db.insert(SIZE, &[1, 2, 3][..]).unwrap();
        });
        let err = TreeStore::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("size is 3 bytes"), "{err}");
        raw(&|db| {
            db.insert(SIZE, &300u64.to_be_bytes()[..]).unwrap();
        });
        assert_eq!(TreeStore::open(dir.path()).unwrap().size(), 300);
    }

    #[test]
    fn a_tree_of_three_tile_levels_has_the_roots_and_proofs_of_its_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let n = 70_000u64;
        // Positions with gaps, as a stream may have them.
        let all: Vec<(u64, Vec<u8>)> = (0..n).map(|i| (i * 2 + 1, i.to_be_bytes().to_vec())).collect();
        let hashes: Vec<Hash> = all.iter().map(|(_, d)| merkle::leaf_hash(d)).collect();
        {
            let t = TreeStore::open(dir.path()).unwrap();
            for chunk in all.chunks(2048) {
                t.append(chunk).unwrap();
            }
        }
        let t = TreeStore::open(dir.path()).unwrap();
        assert_eq!(t.size(), n);
        for size in [65_535u64, 65_536, 65_537, n] {
            assert_eq!(t.root(size).unwrap(), merkle::root(&hashes[..size as usize]), "{size}");
        }
        for i in [0u64, 255, 256, 65_535, 65_536, n - 1] {
            assert_eq!(
                t.inclusion_proof(i, n).unwrap(),
                merkle::inclusion_proof(i as usize, &hashes),
                "{i}"
            );
        }
        assert_eq!(
            t.consistency_proof(65_536, n).unwrap(),
            merkle::consistency_proof(65_536, &hashes)
        );
        assert_eq!(t.index_of(2 * 12_345 + 1).unwrap(), Some(12_345));
        assert_eq!(t.index_of(2 * 12_345).unwrap(), None);
        // Level 2 holds one partial tile of width 1 (70,000 / 65,536).
        assert_eq!(t.tile(2, 0, 1).unwrap().map(|h| h.len()), Some(32));
        assert_eq!(t.tile(1, 1, 17).unwrap().map(|h| h.len()), Some(17 * 32));
    }
}
