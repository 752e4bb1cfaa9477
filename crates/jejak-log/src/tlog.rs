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
    let corrupt = |reason: String| LogError::Corrupt {
        position: e.position,
        reason,
    };
    let env = &e.envelope;
    let event = env
        .event
        .clone()
        .ok_or_else(|| corrupt("the envelope has no event".into()))?;
    let event = jejak_proto::decode_event(event).map_err(|err| corrupt(format!("the event does not decode: {err}")))?;
    let recorded_at = env
        .recorded_at
        .and_then(|t| jejak_domain::Time::from_unix(t.seconds, t.nanos))
        .unwrap_or_default();
    let fields = commit::fields(
        &Meta {
            event_id: &env.event_id,
            chain: &env.chain,
            sequence: env.sequence,
            recorded_at,
            actor: &env.actor,
            envelope: &e.hash,
        },
        &event,
    );
    let digests = commit::digests(&env.secret, &fields);
    let leaf = commit::leaf(&digests);
    Ok(Commitment {
        fields,
        secret: env.secret.clone(),
        digests,
        leaf,
    })
}

fn node_key(level: u8, index: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = b'n';
    k[1] = level;
    k[2..].copy_from_slice(&index.to_be_bytes());
    k
}

fn keyed(prefix: u8, n: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    bytes.get(..8)?.try_into().ok().map(u64::from_be_bytes)
}

const SIZE: &[u8] = b"s";
const CHECKPOINT: &[u8] = b"c";

/// What the single writer keeps: the size, and at each level the last
/// complete node still waiting for its right sibling.
struct Frontier {
    size: u64,
    pending: Vec<Option<Hash>>,
    last_position: u64,
}

/// The stored tree. Readers answer from any size up to the current one.
pub struct TreeStore {
    db: sled::Db,
    writer: Mutex<Frontier>,
    size: std::sync::atomic::AtomicU64,
}

impl Nodes for TreeStore {
    type Error = LogError;
    fn node(&self, level: u8, index: u64) -> Result<Hash, LogError> {
        let v = self
            .db
            .get(node_key(level, index))?
            .ok_or_else(|| LogError::Storage(format!("the tree has no node at level {level}, index {index}")))?;
        Hash::try_from(v.as_ref()).map_err(|_| {
            LogError::Storage(format!(
                "the tree's node at level {level}, index {index} is not 32 bytes"
            ))
        })
    }
}

impl TreeStore {
    /// Opens (or creates) the tree in `dir`.
    pub fn open(dir: &Path) -> Result<TreeStore, LogError> {
        let db = crate::sled_log::open_db(dir)?;
        let size = db.get(SIZE)?.and_then(|v| be_u64(&v)).unwrap_or(0);
        let store = TreeStore {
            db,
            writer: Mutex::new(Frontier {
                size,
                pending: Vec::new(),
                last_position: 0,
            }),
            size: std::sync::atomic::AtomicU64::new(size),
        };
        let mut pending = vec![None; 64];
        for (level, slot) in pending.iter_mut().enumerate() {
            let count = size >> level;
            if count & 1 == 1 {
                *slot = Some(store.node(level as u8, count - 1)?);
            }
        }
        let last_position = match size {
            0 => 0,
            n => store.entry(n - 1)?.0,
        };
        {
            let mut w = store.lock();
            w.pending = pending;
            w.last_position = last_position;
        }
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

    /// Appends one leaf per event, in log order, as one batch; returns the new size.
    pub fn append(&self, leaves: &[(u64, Vec<u8>)]) -> Result<u64, LogError> {
        let mut w = self.lock();
        let mut batch = sled::Batch::default();
        let (mut size, mut pending, mut last) = (w.size, w.pending.clone(), w.last_position);
        for (position, data) in leaves {
            if *position <= last {
                return Err(LogError::Storage(format!(
                    "tree leaves must follow the log: position {position} after {last}"
                )));
            }
            let mut h = merkle::leaf_hash(data);
            let mut entry = position.to_be_bytes().to_vec();
            entry.extend_from_slice(data);
            batch.insert(&keyed(b'e', size), entry);
            batch.insert(&keyed(b'q', *position), &size.to_be_bytes());
            batch.insert(&node_key(0, size), &h);
            let (mut level, mut index) = (0usize, size);
            while index & 1 == 1 {
                let left = pending[level]
                    .take()
                    .ok_or_else(|| LogError::Storage(format!("the tree lost its pending node at level {level}")))?;
                h = merkle::node_hash(&left, &h);
                level += 1;
                index >>= 1;
                batch.insert(&node_key(level as u8, index), &h);
            }
            pending[level] = Some(h);
            size += 1;
            last = *position;
        }
        batch.insert(SIZE, &size.to_be_bytes());
        self.db.apply_batch(batch)?;
        w.size = size;
        w.pending = pending;
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
            pending: vec![None; 64],
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

    /// The leaf index of the event at a log position.
    pub fn index_of(&self, position: u64) -> Result<Option<u64>, LogError> {
        Ok(self.db.get(keyed(b'q', position))?.and_then(|v| be_u64(&v)))
    }

    /// The log position and leaf data of leaf `index`.
    pub fn entry(&self, index: u64) -> Result<(u64, Vec<u8>), LogError> {
        let v = self
            .db
            .get(keyed(b'e', index))?
            .ok_or_else(|| LogError::Storage(format!("the tree has no leaf {index}")))?;
        let position = be_u64(&v).ok_or_else(|| LogError::Storage(format!("leaf {index} is malformed")))?;
        Ok((position, v[8..].to_vec()))
    }

    /// A C2SP tile: `width` hashes of tile `index` at tile level `level`
    /// (tree level 8·level), or None when the tree does not have them yet.
    pub fn tile(&self, level: u8, index: u64, width: u64) -> Result<Option<Vec<u8>>, LogError> {
        if width == 0 || width > TILE_WIDTH || u32::from(level) * TILE_HEIGHT >= 64 {
            return Ok(None);
        }
        let tree_level = u32::from(level) * TILE_HEIGHT;
        let Some(first) = index.checked_mul(TILE_WIDTH) else {
            return Ok(None);
        };
        // Nodes at this level that are complete.
        let complete = self.size() >> tree_level;
        if first.saturating_add(width) > complete {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(width as usize * 32);
        for i in first..first + width {
            out.extend_from_slice(&self.node(tree_level as u8, i)?);
        }
        Ok(Some(out))
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
        for i in first..first + width {
            let (_, data) = self.entry(i)?;
            let len = u16::try_from(data.len())
                .map_err(|_| LogError::Storage(format!("leaf {i} is longer than an entry bundle allows")))?;
            out.extend_from_slice(&len.to_be_bytes());
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
}
