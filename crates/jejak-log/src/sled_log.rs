//! The embedded event log on sled. One tree holds, per append and in one
//! atomic batch: the envelope under its global position, its place in its
//! chain, its event id, and the chain's new head. An append is acknowledged
//! after a flush covers it; concurrent appends share one flush (group commit).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jejak_proto::v1 as p;
use prost::Message;
use tokio::sync::{watch, Notify};

use crate::envelope::{hash, Draft, StoredEvent, ENVELOPE_VERSION, ZERO_HASH};
use crate::{Appended, EventLog, LogError};

const ENVELOPE: u8 = b'e';
const CHAIN: u8 = b'c';
const EVENT_ID: u8 = b'i';
const HEAD: u8 = b'h';

fn envelope_key(position: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = ENVELOPE;
    k[1..].copy_from_slice(&position.to_be_bytes());
    k
}

fn chain_key(chain: &str, sequence: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(chain.len() + 10);
    k.push(CHAIN);
    k.extend_from_slice(chain.as_bytes());
    k.push(0);
    k.extend_from_slice(&sequence.to_be_bytes());
    k
}

fn prefixed(tag: u8, s: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(s.len() + 1);
    k.push(tag);
    k.extend_from_slice(s.as_bytes());
    k
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    bytes.get(..8)?.try_into().ok().map(u64::from_be_bytes)
}

#[derive(Debug, Clone, Copy)]
struct Head {
    sequence: u64,
    hash: [u8; 32],
}

struct Writer {
    next_position: u64,
    heads: HashMap<String, Head>,
}

struct Inner {
    db: sled::Db,
    tree: sled::Tree,
    writer: Mutex<Writer>,
    /// Highest staged position.
    staged: AtomicU64,
    durable: watch::Sender<u64>,
    /// Set when a flush failed: nothing more is acknowledged.
    failure: Mutex<Option<String>>,
    flush_wanted: Arc<Notify>,
    closed: AtomicU64,
}

/// The embedded, sled-backed event log. Cheap to clone.
#[derive(Clone)]
pub struct SledLog {
    inner: Arc<Inner>,
}

impl SledLog {
    /// Opens (or creates) the log in `dir` and starts its flusher on the
    /// current tokio runtime.
    pub fn open(dir: &Path) -> Result<SledLog, LogError> {
        let db = sled::Config::new().path(dir).cache_capacity(256 * 1024 * 1024).open()?;
        let tree = db.open_tree("log")?;
        let mut heads = HashMap::new();
        for item in tree.scan_prefix([HEAD]) {
            let (k, v) = item?;
            let chain = String::from_utf8(k[1..].to_vec())
                .map_err(|_| LogError::Storage("chain head key is not UTF-8".into()))?;
            let sequence =
                be_u64(&v).ok_or_else(|| LogError::Storage(format!("chain head of {chain:?} is truncated")))?;
            let hash: [u8; 32] = v
                .get(16..48)
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| LogError::Storage(format!("chain head of {chain:?} is truncated")))?;
            heads.insert(chain, Head { sequence, hash });
        }
        let last = match tree.scan_prefix([ENVELOPE]).next_back() {
            Some(item) => be_u64(&item?.0[1..]).unwrap_or(0),
            None => 0,
        };
        let (durable, _) = watch::channel(last);
        let inner = Arc::new(Inner {
            db,
            tree,
            writer: Mutex::new(Writer {
                next_position: last + 1,
                heads,
            }),
            staged: AtomicU64::new(last),
            durable,
            failure: Mutex::new(None),
            flush_wanted: Arc::new(Notify::new()),
            closed: AtomicU64::new(0),
        });
        tokio::spawn(flusher(Arc::downgrade(&inner), inner.flush_wanted.clone()));
        Ok(SledLog { inner })
    }

    /// The head (last sequence and hash) of every chain.
    pub fn chain_heads(&self) -> Vec<(String, u64, [u8; 32])> {
        let w = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = w.heads.iter().map(|(c, h)| (c.clone(), h.sequence, h.hash)).collect();
        v.sort();
        v
    }

    /// The events of one chain in order, from `from_sequence` on.
    pub fn read_chain(&self, chain: &str, from_sequence: u64, limit: usize) -> Result<Vec<StoredEvent>, LogError> {
        let start = chain_key(chain, from_sequence);
        let end = chain_key(chain, u64::MAX);
        let mut out = Vec::new();
        for item in self.inner.tree.range(start..=end).take(limit) {
            let (_, v) = item?;
            let position = be_u64(&v).ok_or_else(|| LogError::Storage("chain index entry is truncated".into()))?;
            match self.read(position)? {
                Some(e) => out.push(e),
                None => {
                    return Err(LogError::Corrupt {
                        position,
                        reason: format!("chain {chain:?} points at a missing envelope"),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Walks every chain from its first envelope and checks each link.
    pub fn verify(&self) -> Result<u64, LogError> {
        let mut checked = 0;
        for (chain, _, head_hash) in self.chain_heads() {
            let mut prev: Option<StoredEvent> = None;
            let mut from = 1;
            loop {
                let batch = self.read_chain(&chain, from, 1024)?;
                if batch.is_empty() {
                    break;
                }
                for e in batch {
                    crate::verify_link(prev.as_ref(), &e)?;
                    from = e.envelope.sequence + 1;
                    prev = Some(e);
                    checked += 1;
                }
            }
            if let Some(last) = &prev {
                if last.hash != head_hash {
                    return Err(LogError::Corrupt {
                        position: last.position,
                        reason: format!("chain {chain:?} head hash does not match its last envelope"),
                    });
                }
            }
        }
        Ok(checked)
    }

    /// Bytes the log occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64, LogError> {
        Ok(self.inner.db.size_on_disk()?)
    }

    /// Flushes and stops acknowledging; used on clean shutdown.
    pub async fn close(&self) -> Result<(), LogError> {
        self.inner.closed.store(1, Ordering::SeqCst);
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| LogError::Storage(e.to_string()))??;
        Ok(())
    }
}

/// Flushes whenever appends are waiting; every append staged before a flush
/// starts is acknowledged by it. Holds the log only weakly, so dropping the
/// last handle ends the task.
async fn flusher(inner: std::sync::Weak<Inner>, wanted: Arc<Notify>) {
    loop {
        let notified = wanted.notified();
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let staged = strong.staged.load(Ordering::Acquire);
        if staged <= *strong.durable.borrow() {
            drop(strong);
            notified.await;
            continue;
        }
        drop(notified);
        let db = strong.db.clone();
        let before = *strong.durable.borrow();
        let t = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || db.flush()).await;
        tracing::debug!(
            events = staged - before,
            micros = t.elapsed().as_micros() as u64,
            "flush"
        );
        match result {
            Ok(Ok(_)) => {
                strong.durable.send_if_modified(|d| {
                    if staged > *d {
                        *d = staged;
                        true
                    } else {
                        false
                    }
                });
            }
            Ok(Err(e)) => fail(&strong, format!("flush failed: {e}")),
            Err(e) => fail(&strong, format!("flush task failed: {e}")),
        }
    }
}

fn fail(inner: &Inner, reason: String) {
    tracing::error!(%reason, "event log stops acknowledging appends");
    *inner.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    // Wake every waiter so it sees the failure.
    inner.durable.send_modify(|_| {});
}

impl EventLog for SledLog {
    fn append(&self, draft: Draft) -> Result<Appended, LogError> {
        if let Some(reason) = self.inner.failure.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Err(LogError::Unavailable(reason));
        }
        if self.inner.closed.load(Ordering::SeqCst) != 0 {
            return Err(LogError::Closed);
        }
        let mut w = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let head = w.heads.get(&draft.chain).copied().unwrap_or(Head {
            sequence: 0,
            hash: ZERO_HASH,
        });
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
        };
        let bytes = envelope.encode_to_vec();
        let h = hash(&bytes);
        let mut head_value = Vec::with_capacity(48);
        head_value.extend_from_slice(&sequence.to_be_bytes());
        head_value.extend_from_slice(&position.to_be_bytes());
        head_value.extend_from_slice(&h);
        let mut batch = sled::Batch::default();
        batch.insert(&envelope_key(position), bytes);
        batch.insert(chain_key(&draft.chain, sequence), &position.to_be_bytes());
        batch.insert(prefixed(EVENT_ID, &draft.event_id), &position.to_be_bytes());
        batch.insert(prefixed(HEAD, &draft.chain), head_value);
        self.inner.tree.apply_batch(batch)?;
        w.next_position = position + 1;
        w.heads.insert(draft.chain.clone(), Head { sequence, hash: h });
        self.inner.staged.store(position, Ordering::Release);
        Ok(Appended {
            position,
            chain: draft.chain,
            sequence,
            hash: h,
        })
    }

    async fn wait_durable(&self, position: u64) -> Result<(), LogError> {
        let mut rx = self.inner.durable.subscribe();
        if *rx.borrow() >= position {
            return Ok(());
        }
        self.inner.flush_wanted.notify_one();
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

    fn read_from(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, LogError> {
        let mut out = Vec::with_capacity(limit.min(4096));
        let start = envelope_key(from.max(1));
        let end = envelope_key(u64::MAX);
        for item in self.inner.tree.range(start..=end).take(limit) {
            let (k, v) = item?;
            let position = be_u64(&k[1..]).unwrap_or(0);
            out.push(StoredEvent::decode(position, v.to_vec())?);
        }
        Ok(out)
    }

    fn read(&self, position: u64) -> Result<Option<StoredEvent>, LogError> {
        match self.inner.tree.get(envelope_key(position))? {
            Some(v) => Ok(Some(StoredEvent::decode(position, v.to_vec())?)),
            None => Ok(None),
        }
    }

    fn position_of(&self, event_id: &str) -> Result<Option<u64>, LogError> {
        Ok(self
            .inner
            .tree
            .get(prefixed(EVENT_ID, event_id))?
            .and_then(|v| be_u64(&v)))
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

    fn draft(chain: &str, id: &str) -> Draft {
        Draft {
            chain: chain.into(),
            event_id: id.into(),
            actor: "test".into(),
            command_hash: hash(id.as_bytes()),
            recorded_at: prost_types::Timestamp {
                seconds: 1_790_000_000,
                nanos: 0,
            },
            event: p::Event {
                kind: Some(p::event::Kind::LotStatusChanged(p::LotStatusChanged {
                    facility_id: chain.into(),
                    lot_id: format!("L-{id}"),
                    status: p::LotStatus::OnHold as i32,
                    reason: "test".into(),
                    occurred_at: None,
                })),
            },
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
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
    fn verify_detects_a_changed_envelope() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let log = SledLog::open(dir.path()).unwrap();
            for i in 0..3 {
                log.append(draft("fac-a", &i.to_string())).unwrap();
            }
            // Rewrite the middle envelope with different content.
            let mut e = log.read(2).unwrap().unwrap().envelope;
            e.actor = "mallory".into();
            log.inner.tree.insert(envelope_key(2), e.encode_to_vec()).unwrap();
            let err = log.verify().unwrap_err();
            assert!(matches!(err, LogError::Corrupt { position: 3, .. }), "{err}");
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
                // Every stored envelope hashes to what the next one in its chain names.
                let all = log.read_from(1, usize::MAX).unwrap();
                for e in &all {
                    prop_assert_eq!(e.hash, hash(&e.bytes));
                }
                Ok(())
            })?;
        }
    }
}
