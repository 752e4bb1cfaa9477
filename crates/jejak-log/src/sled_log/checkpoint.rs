//! The start-up check of the embedded log: walks the hash chains from the
//! last verified point to the end of the log, so a start costs what was
//! written since the last start, not the whole log.
//!
//! The checkpoint lives in the log's own sled tree: `v` holds the verified
//! position, `h<chain>` each chain's head (sequence, hash, position) at that
//! position. Its invariant: **every envelope at or before the verified
//! position was read back from sled by a start-up walk (this one or an
//! earlier one) and its link checked, and the heads are those the walk
//! reached.** Only the walk writes it, after an `fdatasync` of what it read,
//! never the append path: appends are not read back, so claiming them
//! verified would be a lie. A checkpoint is thus never ahead of the stored
//! log; a log that ends before it has lost envelopes, and is refused.
//!
//! Envelopes before the checkpoint are not walked again at start. The head
//! of each chain is: its stored bytes must still hash to the checkpointed
//! hash, which every later link was checked against, so changing the last
//! verified envelope of a chain is caught too. `SledLog::verify` (`jejak
//! verify`) still walks everything on demand.
//!
//! The event-id index is not part of the checkpoint: it has a stored
//! position of its own (`index`). The open reads the blocks after the older
//! of the two positions only: between the index's position and the
//! checkpoint it decodes each envelope's event id alone (no hash, no full
//! decode); after the checkpoint, the walk that checks the links fills in
//! the ids after the index's position.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{be_u64, block_key, split_block, Head, BLOCK, EMPTY_HEAD};
use crate::envelope::{hash, EventIdOnly, Link};
use crate::LogError;

/// Key of the verified position.
const VERIFIED: u8 = b'v';
/// Prefix of the checkpointed chain heads (`h` + chain id).
const HEAD: u8 = b'h';
fn head_key(chain: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + chain.len());
    k.push(HEAD);
    k.extend_from_slice(chain.as_bytes());
    k
}

fn encode_head(h: &Head) -> [u8; 48] {
    let mut v = [0u8; 48];
    v[..8].copy_from_slice(&h.sequence.to_be_bytes());
    v[8..40].copy_from_slice(&h.hash);
    v[40..].copy_from_slice(&h.position.to_be_bytes());
    v
}

fn decode_head(chain: &str, v: &[u8]) -> Result<Head, LogError> {
    let malformed = || {
        LogError::Storage(format!(
            "the log's start-up checkpoint of chain {chain:?} is malformed ({} bytes, not 48)",
            v.len()
        ))
    };
    if v.len() != 48 {
        return Err(malformed());
    }
    Ok(Head {
        sequence: be_u64(&v[..8]).ok_or_else(malformed)?,
        hash: v[8..40].try_into().map_err(|_| malformed())?,
        position: be_u64(&v[40..]).ok_or_else(malformed)?,
    })
}

/// What a start-up check walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartCheck {
    /// The first position walked (one past the previous checkpoint).
    pub from: u64,
    /// Envelopes walked and linked.
    pub envelopes: u64,
    /// Checkpointed chain heads whose stored bytes were hashed again.
    pub heads: usize,
    /// Envelopes whose event id the open put in the in-memory index: those
    /// after the stored index's position (only the event id is decoded of
    /// those at or before the checkpoint).
    pub indexed: u64,
}

/// The state of the log after the start-up check.
pub(super) struct Checked {
    pub(super) last: u64,
    pub(super) heads: HashMap<String, Head>,
    /// The in-memory part of the event-id index: event id → position.
    pub(super) ids: HashMap<Box<str>, u64>,
    pub(super) check: StartCheck,
}

/// A stored checkpoint: the verified position and every chain's head there.
#[derive(Default)]
struct Checkpoint {
    verified: u64,
    heads: HashMap<String, Head>,
}

/// The stored checkpoint, or None for a new log or one written before
/// checkpoints existed.
fn load(tree: &sled::Tree) -> Result<Option<Checkpoint>, LogError> {
    let mut heads = HashMap::new();
    for item in tree.scan_prefix([HEAD]) {
        let (k, v) = item?;
        let chain = String::from_utf8_lossy(&k[1..]).into_owned();
        let head = decode_head(&chain, &v)?;
        heads.insert(chain, head);
    }
    let Some(v) = tree.get([VERIFIED])? else {
        if let Some(chain) = heads.keys().next() {
            return Err(LogError::Storage(format!(
                "the log's start-up checkpoint has a head for chain {chain:?} but no verified position"
            )));
        }
        return Ok(None);
    };
    let position = be_u64(&v).filter(|_| v.len() == 8).ok_or_else(|| {
        LogError::Storage(format!(
            "the log's verified position is malformed ({} bytes, not 8)",
            v.len()
        ))
    })?;
    Ok(Some(Checkpoint {
        verified: position,
        heads,
    }))
}

/// The key of the block holding `position`, if any block starts at or before it.
fn block_at(tree: &sled::Tree, position: u64) -> Result<Option<sled::IVec>, LogError> {
    Ok(tree
        .range(block_key(0)..=block_key(position))
        .next_back()
        .transpose()?
        .map(|(k, _)| k))
}

/// The last position stored (0 for an empty log).
fn stored_end(tree: &sled::Tree) -> Result<u64, LogError> {
    let Some((k, v)) = tree.scan_prefix([BLOCK]).next_back().transpose()? else {
        return Ok(0);
    };
    let first = be_u64(&k[1..]).ok_or_else(|| LogError::Storage("block key is truncated".into()))?;
    Ok(split_block(first, &v)?
        .last()
        .map_or(first.saturating_sub(1), |(p, _)| *p))
}

/// Hashes the stored bytes at each checkpointed head again: links after
/// the checkpoint were checked against these hashes, so a changed head
/// would otherwise go unnoticed.
fn recheck_heads(tree: &sled::Tree, heads: &HashMap<String, Head>) -> Result<(), LogError> {
    let mut by_position: Vec<(&String, &Head)> = heads.iter().collect();
    by_position.sort_by_key(|(_, h)| h.position);
    let mut block: Option<(sled::IVec, sled::IVec)> = None;
    for (chain, head) in by_position {
        let missing = || LogError::Corrupt {
            position: head.position,
            reason: format!(
                "chain {chain:?} is broken at sequence {}: the envelope, verified at an earlier start, is missing",
                head.sequence
            ),
        };
        let key = block_at(tree, head.position)?.ok_or_else(missing)?;
        if block.as_ref().is_none_or(|(k, _)| *k != key) {
            let value = tree.get(&key)?.ok_or_else(missing)?;
            block = Some((key, value));
        }
        let Some((key, value)) = &block else {
            return Err(missing());
        };
        let first = be_u64(&key[1..]).ok_or_else(|| LogError::Storage("block key is truncated".into()))?;
        let stored = split_block(first, value)?
            .into_iter()
            .find(|(p, _)| *p == head.position)
            .ok_or_else(missing)?;
        if hash(stored.1) != head.hash {
            return Err(LogError::Corrupt {
                position: head.position,
                reason: format!(
                    "chain {chain:?} is broken at sequence {}: the stored envelope no longer matches its hash (checkpointed at an earlier start)",
                    head.sequence
                ),
            });
        }
        // The envelope is the one checkpointed; the checkpoint's own record
        // of it (chain, sequence) must say so too, or appends would follow
        // a head that is not there.
        let link = Link::decode_at(head.position, stored.1)?;
        if link.chain != *chain || link.sequence != head.sequence {
            return Err(LogError::Corrupt {
                position: head.position,
                reason: format!(
                    "the start-up checkpoint names chain {chain:?} sequence {} at this position, where the envelope is chain {:?} sequence {}",
                    head.sequence, link.chain, link.sequence
                ),
            });
        }
    }
    Ok(())
}

/// Checks that the envelope at `position` follows its chain's head.
fn check_link(heads: &HashMap<String, Head>, link: &Link, position: u64) -> Result<(), LogError> {
    let chain = &link.chain;
    let head = heads.get(chain).copied().unwrap_or(EMPTY_HEAD);
    if Some(link.sequence) != head.sequence.checked_add(1) {
        return Err(LogError::Corrupt {
            position,
            reason: format!(
                "chain {chain:?} is broken at sequence {}: the chain's previous envelope is sequence {}, so {} was expected",
                link.sequence,
                head.sequence,
                head.sequence.saturating_add(1)
            ),
        });
    }
    if link.prev_hash.as_slice() != head.hash {
        if head.sequence == 0 {
            return Err(LogError::Corrupt {
                position,
                reason: format!(
                    "chain {chain:?} is broken at sequence 1: the first envelope of the chain names a previous hash"
                ),
            });
        }
        return Err(LogError::Corrupt {
            position: head.position,
            reason: format!(
                "chain {chain:?} is broken at sequence {}: the stored envelope no longer matches its hash, which sequence {} at log position {position} records",
                head.sequence, link.sequence
            ),
        });
    }
    Ok(())
}

/// Makes what the walk read durable, so the checkpoint written after it
/// can never survive a power cut that the envelopes it covers do not.
fn sync(dir: &Path) -> Result<(), LogError> {
    let path = dir.join("db");
    std::fs::File::open(&path)
        .and_then(|f| f.sync_data())
        .map_err(|e| LogError::Storage(format!("sync {}: {e}", path.display())))
}

/// Reads the log after the stored index and the checkpoint to rebuild the
/// in-memory part of the event-id index, checks the chains
/// from the checkpoint to the end, and moves the checkpoint to the end.
/// Envelopes at or before the checkpoint have only their event id decoded;
/// those after it are hashed and linked. A log without a checkpoint (new, or
/// written before checkpoints existed) is checked from the start.
pub(super) fn check_on_open(db: &sled::Db, tree: &sled::Tree, dir: &Path) -> Result<Checked, LogError> {
    let Checkpoint { verified, mut heads } = load(tree)?.unwrap_or_default();
    let end = stored_end(tree)?;
    if end < verified {
        return Err(LogError::Corrupt {
            position: end + 1,
            reason: format!(
                "the log ends at position {end} but was verified up to position {verified} at an earlier start: envelopes were removed"
            ),
        });
    }
    let indexed = super::index::indexed(tree)?;
    if end < indexed {
        return Err(LogError::Corrupt {
            position: end + 1,
            reason: format!(
                "the log ends at position {end} but its stored event-id index reaches position {indexed}: envelopes were removed"
            ),
        });
    }
    recheck_heads(tree, &heads)?;
    let rechecked = heads.len();
    let mut changed: HashSet<String> = HashSet::new();
    let mut ids: HashMap<Box<str>, u64> = HashMap::new();
    // Everything up to here is both linked (by an earlier start) and in the
    // stored index: its blocks are not read at all.
    let from = verified.min(indexed) + 1;
    let start = block_at(tree, from)?.map_or_else(|| block_key(0).to_vec(), |k| k.to_vec());
    let mut last = be_u64(&start[1..]).map_or(0, |first| first.saturating_sub(1));
    for item in tree.range(start..) {
        let (k, v) = item?;
        if k.first() != Some(&BLOCK) {
            break;
        }
        let first = be_u64(&k[1..]).ok_or_else(|| LogError::Storage("block key is truncated".into()))?;
        if first != last + 1 {
            return Err(LogError::Corrupt {
                position: last + 1,
                reason: format!("the log jumps from position {last} to {first}"),
            });
        }
        for (position, bytes) in split_block(first, &v)? {
            last = position;
            if position < from {
                continue;
            }
            if position <= verified {
                // Linked at an earlier start: the index needs its id only.
                let event_id = EventIdOnly::decode_at(position, bytes)?;
                ids.insert(event_id.into_boxed_str(), position);
                continue;
            }
            let link = Link::decode_at(position, bytes)?;
            check_link(&heads, &link, position)?;
            let head = Head {
                sequence: link.sequence,
                hash: hash(bytes),
                position,
            };
            if position > indexed {
                ids.insert(link.event_id.into_boxed_str(), position);
            }
            heads.insert(link.chain.clone(), head);
            changed.insert(link.chain);
        }
    }
    if last > verified {
        sync(dir)?;
        let mut batch = sled::Batch::default();
        for (chain, head) in heads.iter().filter(|(c, _)| changed.contains(*c)) {
            batch.insert(head_key(chain), &encode_head(head)[..]);
        }
        batch.insert(&[VERIFIED], &last.to_be_bytes());
        tree.apply_batch(batch)?;
        db.flush()?;
        sync(dir)?;
    }
    Ok(Checked {
        last,
        check: StartCheck {
            from: verified + 1,
            envelopes: last.saturating_sub(verified),
            heads: rechecked,
            indexed: ids.len() as u64,
        },
        heads,
        ids,
    })
}

#[cfg(test)]
mod tests {
    use jejak_proto::v1 as p;
    use prost::Message;

    use super::*;
    use crate::conformance::draft;
    use crate::sled_log::tests::rt;
    use crate::{EventLog, SledLog};

    /// Opens the log in `dir`, appends one event per chain named (ids
    /// `{tag}-{i}`), closes it, and says what the open walked.
    fn session(dir: &Path, tag: &str, chains: &[&str]) -> StartCheck {
        rt().block_on(async {
            let log = SledLog::open(dir).unwrap();
            let check = log.start_check();
            let mut last = 0;
            for (i, chain) in chains.iter().enumerate() {
                last = log.append(draft(chain, &format!("{tag}-{i}"))).unwrap().position;
            }
            log.wait_durable(last).await.unwrap();
            log.close().await.unwrap();
            check
        })
    }

    /// The log's tree, opened directly as a stopped server's would be.
    fn with_tree<T>(dir: &Path, f: impl FnOnce(&sled::Tree) -> T) -> T {
        let db = super::super::open_db(dir).unwrap();
        let tree = db.open_tree("log").unwrap();
        let out = f(&tree);
        db.flush().unwrap();
        out
    }

    /// Rewrites the block holding `position` so that envelope's actor
    /// differs, keeping the block well-formed; returns the envelope's chain
    /// and sequence.
    fn tamper(dir: &Path, position: u64) -> (String, u64) {
        with_tree(dir, |tree| {
            let key = block_at(tree, position).unwrap().unwrap();
            let first = be_u64(&key[1..]).unwrap();
            let block = tree.get(&key).unwrap().unwrap();
            let mut value = Vec::new();
            let mut changed = None;
            for (at, bytes) in split_block(first, &block).unwrap() {
                let mut e = p::Envelope::decode(bytes).unwrap();
                if at == position {
                    e.actor = "mallory".into();
                    changed = Some((e.chain.clone(), e.sequence));
                }
                let bytes = e.encode_to_vec();
                prost::encoding::encode_varint(bytes.len() as u64, &mut value);
                value.extend_from_slice(&bytes);
            }
            tree.insert(key, value).unwrap();
            changed.unwrap()
        })
    }

    fn refused(dir: &Path) -> LogError {
        SledLog::open(dir).err().expect("the log is refused on open")
    }

    #[test]
    fn reopening_walks_only_what_was_appended_since_the_last_start() {
        let dir = tempfile::tempdir().unwrap();
        let empty = session(dir.path(), "a", &["fac-a", "fac-b", "fac-a", "fac-a"]);
        assert_eq!(
            empty,
            StartCheck {
                from: 1,
                envelopes: 0,
                heads: 0,
                indexed: 0
            }
        );
        let first = session(dir.path(), "b", &["fac-b", "fac-c"]);
        assert_eq!(
            first,
            StartCheck {
                from: 1,
                envelopes: 4,
                heads: 0,
                indexed: 0
            }
        );
        let second = session(dir.path(), "c", &[]);
        assert_eq!(
            second,
            StartCheck {
                from: 5,
                envelopes: 2,
                heads: 2,
                indexed: 0
            }
        );
        rt().block_on(async {
            let log = SledLog::open(dir.path()).unwrap();
            assert_eq!(
                log.start_check(),
                StartCheck {
                    from: 7,
                    envelopes: 0,
                    heads: 3,
                    indexed: 0
                }
            );
            // The chains continue where they were, and the index stored at
            // each close finds events of every earlier session.
            let next = log.append(draft("fac-a", "d-0")).unwrap();
            assert_eq!((next.position, next.sequence), (7, 4));
            assert_eq!(log.position_of("a-3").unwrap(), Some(4));
            assert_eq!(log.position_of("b-1").unwrap(), Some(6));
            assert_eq!(log.position_of("d-0").unwrap(), Some(7));
            assert_eq!(log.position_of("nope").unwrap(), None);
            log.wait_durable(7).await.unwrap();
            assert_eq!(log.position_of("d-0").unwrap(), Some(7));
            assert_eq!(log.verify().unwrap(), 7);
        });
    }

    #[test]
    fn a_walked_open_hands_on_every_envelope_and_finds_a_change_before_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        session(dir.path(), "a", &["fac-a", "fac-b", "fac-a"]);
        session(dir.path(), "b", &["fac-a", "fac-b"]); // checkpoint at 3
        let walked = |dir: &Path| {
            let mut seen = Vec::new();
            let (log, verdict) =
                SledLog::open_walked(dir, &mut |e| seen.push((e.position, e.envelope.event_id.clone()))).unwrap();
            (log, verdict, seen)
        };
        let every = vec![
            (1, "a-0".to_string()),
            (2, "a-1".to_string()),
            (3, "a-2".to_string()),
            (4, "b-0".to_string()),
            (5, "b-1".to_string()),
        ];
        let (log, verdict, seen) = walked(dir.path());
        assert_eq!(verdict.unwrap(), 5);
        assert_eq!(seen, every);
        // The walk was on a handle of its own: the log serves as `open`'s does.
        rt().block_on(async {
            let next = log.append(draft("fac-b", "c-0")).unwrap();
            assert_eq!((next.position, next.sequence), (6, 3));
            log.wait_durable(6).await.unwrap();
            log.close().await.unwrap();
        });
        drop(log);
        // Position 2 is fac-b's first envelope, before the checkpoint: the
        // open's own check does not reach it, the walk does, and still hands
        // on every envelope after it.
        assert_eq!(tamper(dir.path(), 2), ("fac-b".to_string(), 1));
        let (log, verdict, seen) = walked(dir.path());
        let err = verdict.expect_err("the walk finds the changed envelope");
        assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("\"fac-b\""), "{err}");
        assert_eq!(seen.len(), 6);
        assert_eq!(seen.last(), Some(&(6, "c-0".to_string())));
        assert!(log.verify().is_err());
    }

    #[test]
    fn a_changed_envelope_after_the_checkpoint_is_refused_naming_chain_and_sequence() {
        let dir = tempfile::tempdir().unwrap();
        session(dir.path(), "a", &["fac-a", "fac-b", "fac-a"]);
        session(dir.path(), "b", &["fac-a", "fac-b", "fac-a"]); // checkpoint at 3
                                                                // Position 4 is fac-a's third envelope; position 6 links to it.
        assert_eq!(tamper(dir.path(), 4), ("fac-a".to_string(), 3));
        let err = refused(dir.path());
        assert!(matches!(err, LogError::Corrupt { position: 4, .. }), "{err}");
        let message = err.to_string();
        for part in ["\"fac-a\"", "sequence 3", "position 4", "no longer matches its hash"] {
            assert!(message.contains(part), "{message:?} does not mention {part:?}");
        }
    }

    #[test]
    fn a_changed_checkpointed_head_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        session(dir.path(), "a", &["fac-a", "fac-b", "fac-a", "fac-b"]);
        session(dir.path(), "b", &["fac-b"]); // checkpoint at 4: fac-a's head is position 3
                                              // Nothing after the checkpoint links to fac-a's head: only its
                                              // checkpointed hash can tell it changed.
        assert_eq!(tamper(dir.path(), 3), ("fac-a".to_string(), 2));
        let err = refused(dir.path());
        assert!(matches!(err, LogError::Corrupt { position: 3, .. }), "{err}");
        let message = err.to_string();
        for part in ["\"fac-a\"", "sequence 2", "position 3", "no longer matches its hash"] {
            assert!(message.contains(part), "{message:?} does not mention {part:?}");
        }
    }

    #[test]
    fn a_checkpoint_head_whose_sequence_was_changed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        session(dir.path(), "a", &["fac-a", "fac-b", "fac-a", "fac-b"]);
        session(dir.path(), "b", &["fac-b"]); // checkpoint at 4: fac-a's head is sequence 2 at position 3
        with_tree(dir.path(), |tree| {
            let key = [&[HEAD][..], b"fac-a"].concat();
            let mut head = decode_head("fac-a", &tree.get(&key).unwrap().unwrap()).unwrap();
            assert_eq!((head.sequence, head.position), (2, 3));
            head.sequence = 9;
            tree.insert(key, &encode_head(&head)[..]).unwrap();
        });
        let err = refused(dir.path());
        assert!(matches!(err, LogError::Corrupt { position: 3, .. }), "{err}");
        assert!(
            err.to_string().contains("sequence 9") && err.to_string().contains("sequence 2"),
            "{err}"
        );
    }

    #[test]
    fn a_chain_without_its_checkpoint_head_fails_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        session(dir.path(), "a", &["fac-a", "fac-b", "fac-a"]);
        session(dir.path(), "b", &["fac-b"]); // checkpoint at 3
        with_tree(dir.path(), |tree| {
            tree.remove([&[HEAD][..], b"fac-a"].concat())
                .unwrap()
                .expect("fac-a's head");
        });
        let (log, verdict) = SledLog::open_walked(dir.path(), &mut |_| {}).unwrap();
        let err = verdict.expect_err("fac-a has envelopes and no head");
        assert!(
            err.to_string()
                .contains("\"fac-a\" has envelopes but the log keeps no head"),
            "{err}"
        );
        assert!(log.verify().is_err());
    }

    #[test]
    fn the_checkpoint_never_covers_more_than_the_stored_log() {
        let dir = tempfile::tempdir().unwrap();
        session(dir.path(), "a", &["fac-a"; 3]);
        let verified = |tree: &sled::Tree| load(tree).unwrap().map(|c| c.verified);
        rt().block_on(async {
            let log = SledLog::open(dir.path()).unwrap(); // checkpoint at 3
            for i in 0..600 {
                log.append(draft("fac-a", &format!("b-{i}"))).unwrap();
            }
            // Appends are never checkpointed: what is durable, and what is
            // only staged, stays beyond the checkpoint until a start walks it.
            assert_eq!(verified(&log.inner.tree), Some(3));
            log.wait_durable(603).await.unwrap();
            assert_eq!(verified(&log.inner.tree), Some(3));
            // Dropped without `close`, as a crash would leave it.
        });
        let reopened = SledLog::open(dir.path()).unwrap();
        let end = reopened.durable_position();
        assert_eq!(reopened.start_check().envelopes, end - 3);
        drop(reopened);
        with_tree(dir.path(), |tree| {
            assert_eq!(verified(tree), Some(end));
            assert_eq!(stored_end(tree).unwrap(), end);
            // A log that lost its last block now ends before its checkpoint.
            let (last_block, _) = tree.scan_prefix([BLOCK]).next_back().unwrap().unwrap();
            tree.remove(last_block).unwrap();
        });
        let err = refused(dir.path());
        assert!(err.to_string().contains("envelopes were removed"), "{err}");
    }

    #[test]
    fn a_log_written_before_checkpoints_is_walked_whole() {
        let dir = tempfile::tempdir().unwrap();
        session(dir.path(), "a", &["fac-a", "fac-b", "fac-a"]);
        session(dir.path(), "b", &["fac-b"]);
        with_tree(dir.path(), |tree| {
            for prefix in [VERIFIED, HEAD, b'i', b'x'] {
                for item in tree.scan_prefix([prefix]) {
                    tree.remove(item.unwrap().0).unwrap();
                }
            }
        });
        let log = SledLog::open(dir.path()).unwrap();
        assert_eq!(
            log.start_check(),
            StartCheck {
                from: 1,
                envelopes: 4,
                heads: 0,
                indexed: 4
            }
        );
        assert_eq!(log.position_of("a-2").unwrap(), Some(3));
        assert_eq!(log.position_of("b-0").unwrap(), Some(4));
        assert_eq!(log.verify().unwrap(), 4);
    }

    #[test]
    fn the_link_view_reads_the_envelope_fields_it_names() {
        let dir = tempfile::tempdir().unwrap();
        session(dir.path(), "a", &["fac-a", "fac-a"]);
        let log = SledLog::open(dir.path()).unwrap();
        let stored = log.read(2).unwrap().unwrap();
        let link = Link::decode_at(2, &stored.bytes).unwrap();
        let e = stored.envelope;
        assert_eq!(EventIdOnly::decode_at(2, &stored.bytes).unwrap(), e.event_id);
        assert_eq!(
            (link.chain, link.sequence, link.prev_hash, link.event_id),
            (e.chain, e.sequence, e.prev_hash, e.event_id)
        );
    }

    #[test]
    fn an_envelope_before_the_checkpoint_that_does_not_decode_is_refused_by_verify_or_an_index_scan() {
        let dir = tempfile::tempdir().unwrap();
        session(dir.path(), "a", &["fac-a", "fac-b", "fac-a"]);
        session(dir.path(), "b", &["fac-b"]); // checkpoint at 3
        with_tree(dir.path(), |tree| {
            let key = block_at(tree, 1).unwrap().unwrap();
            let first = be_u64(&key[1..]).unwrap();
            let block = tree.get(&key).unwrap().unwrap();
            let mut value = Vec::new();
            for (at, bytes) in split_block(first, &block).unwrap() {
                // Position 1: field 5 (the event id) claims more bytes than there are.
                let bytes = if at == 1 { &[0x2a, 0x7f, b'x'][..] } else { bytes };
                prost::encoding::encode_varint(bytes.len() as u64, &mut value);
                value.extend_from_slice(bytes);
            }
            tree.insert(key, value).unwrap();
        });
        // Linked at an earlier start and in the stored index: the open
        // reads nothing before position 4, and the full walk finds it.
        {
            let log = SledLog::open(dir.path()).unwrap();
            assert_eq!((log.start_check().from, log.start_check().envelopes), (4, 1));
            let err = log.verify().expect_err("verify refuses it");
            assert!(matches!(err, LogError::Corrupt { position: 1, .. }), "{err}");
        }
        // Without a stored index, the open's scan reads its event id.
        with_tree(dir.path(), |tree| {
            for prefix in [b'i', b'x'] {
                for item in tree.scan_prefix([prefix]) {
                    tree.remove(item.unwrap().0).unwrap();
                }
            }
        });
        let err = refused(dir.path());
        assert!(matches!(err, LogError::Corrupt { position: 1, .. }), "{err}");
        assert!(err.to_string().contains("does not decode"), "{err}");
    }
}
