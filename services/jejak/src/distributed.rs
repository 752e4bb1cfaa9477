//! jejak on NATS JetStream: a capture service that keeps nothing but a
//! cache, and projectors that each keep their own sled genealogy and serve
//! the trace API. Both follow the stream in order.
//!
//! Capture decides a command against its cache, then appends after the
//! chain head the cache holds. If another writer got there first the append
//! is a conflict: the cache catches up with the stream, the command is
//! decided again, and only after `MAX_ATTEMPTS` conflicts does the caller get
//! ABORTED. Commands for one chain are taken one at a time per instance, so
//! an instance never conflicts with itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use jejak_domain::{Command, DomainError, Event};
use jejak_genealogy::{AppliedEvent, Genealogy, Projection};
use jejak_log::{ChainHead, ChainLog, Draft, JetStreamLog, LogError, StoredEvent};
use jejak_proto::v1 as p;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::status;
use crate::trace::TraceLog;
use crate::writer::{reply_from, Submit};

/// Conflicts a command may meet before the caller is told to retry.
const MAX_ATTEMPTS: usize = 8;
/// Events read from the stream per batch.
const BATCH: usize = 2048;
/// How long a capture waits for its cache to reach a position.
const CACHE_WAIT: Duration = Duration::from_secs(10);

type Decoded = (u64, String, jejak_domain::Time, Event);

fn decode_all(events: &[StoredEvent]) -> anyhow::Result<Vec<Decoded>> {
    events
        .iter()
        .map(|e| crate::projector::decode(e).map(|(id, at, ev)| (e.position, id, at, ev)))
        .collect()
}

/// Counters of one service, for status and metrics.
#[derive(Default)]
pub struct CaptureCounters {
    pub accepted: AtomicU64,
    pub replayed: AtomicU64,
    pub conflicts: AtomicU64,
    pub aborted: AtomicU64,
}

struct CacheState {
    genealogy: Genealogy,
    heads: HashMap<String, ChainHead>,
}

/// What a capture instance knows: the genealogy and every chain's head, as
/// of the stream position it has applied.
pub struct Cache {
    state: RwLock<CacheState>,
    applied: watch::Sender<u64>,
}

impl Cache {
    fn new() -> Cache {
        Cache {
            state: RwLock::new(CacheState {
                genealogy: Genealogy::new(),
                heads: HashMap::new(),
            }),
            applied: watch::channel(0).0,
        }
    }

    pub fn position(&self) -> u64 {
        *self.applied.borrow()
    }

    fn apply(&self, events: &[StoredEvent]) -> anyhow::Result<()> {
        let decoded = decode_all(events)?;
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        for (e, (position, id, at, ev)) in events.iter().zip(&decoded) {
            st.genealogy.apply(AppliedEvent {
                position: *position,
                event_id: id,
                recorded_at: *at,
                event: ev,
            });
            st.heads.insert(
                e.envelope.chain.clone(),
                ChainHead {
                    sequence: e.envelope.sequence,
                    hash: e.hash,
                    position: e.position,
                },
            );
        }
        st.genealogy.forget_changes();
        let last = st.genealogy.position();
        drop(st);
        self.applied.send_if_modified(|a| {
            let moved = last > *a;
            *a = (*a).max(last);
            moved
        });
        Ok(())
    }

    async fn wait_applied(&self, position: u64) -> Result<(), Status> {
        let mut rx = self.applied.subscribe();
        let reached = tokio::time::timeout(CACHE_WAIT, rx.wait_for(|a| *a >= position)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Status::unavailable(format!(
                "this capture instance has not caught up with the stream to position {position} within \
                 {CACHE_WAIT:?} (it is at {}); is NATS reachable? Retry with the same command id",
                self.position()
            ))),
        }
    }
}

/// Follows the stream into `apply` from `from` on, until cancelled; read
/// errors (NATS away, a leader changing) are retried without skipping.
async fn follow<F>(
    log: JetStreamLog,
    from: u64,
    cancel: CancellationToken,
    what: &'static str,
    mut apply: F,
) -> anyhow::Result<()>
where
    F: FnMut(Vec<StoredEvent>) -> futures_util::future::BoxFuture<'static, anyhow::Result<()>>,
{
    let mut reader = log.reader(from);
    loop {
        let batch = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            b = reader.next_batch(BATCH, Duration::from_millis(500)) => b,
        };
        match batch {
            Ok(events) => {
                if let Err(e) = apply(events).await {
                    tracing::error!(error = %e, what, "applying the stream failed; stopping");
                    return Err(e.context(format!("{what}: apply the stream")));
                }
            }
            // A message that is not an envelope, or a gap: never skipped.
            Err(e @ LogError::Corrupt { .. }) => {
                return Err(
                    anyhow::Error::new(e).context(format!("{what}: the stream at position {}", reader.position()))
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, what, position = reader.position(), "reading the stream failed; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Why a service stopped on its own, if it did.
#[derive(Clone, Default)]
pub struct Fatal(Arc<Mutex<Option<String>>>);

impl Fatal {
    /// Records the reason and cancels the service.
    pub fn stop(&self, cancel: &CancellationToken, e: anyhow::Error) {
        tracing::error!(error = format!("{e:#}"), "stopping");
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| format!("{e:#}"));
        cancel.cancel();
    }

    pub fn reason(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

enum Decided {
    Replay(u64),
    Event(Box<Event>, ChainHead),
}

/// The capture service on JetStream.
pub struct DistributedWriter {
    log: JetStreamLog,
    cache: Arc<Cache>,
    chain_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub counters: CaptureCounters,
}

impl DistributedWriter {
    /// Fills the cache from the stream and keeps it following. If the
    /// cache cannot apply the stream, `fatal` is told why and `cancel` is
    /// cancelled: the service stops rather than decide on stale state.
    pub async fn start(
        log: JetStreamLog,
        cancel: CancellationToken,
        fatal: Fatal,
    ) -> anyhow::Result<Arc<DistributedWriter>> {
        let cache = Arc::new(Cache::new());
        let feed = cache.clone();
        let following = follow(log.clone(), 1, cancel.clone(), "capture cache", move |events| {
            let feed = feed.clone();
            Box::pin(async move {
                if events.is_empty() {
                    return Ok(());
                }
                tokio::task::spawn_blocking(move || feed.apply(&events)).await?
            })
        });
        tokio::spawn(async move {
            if let Err(e) = following.await {
                fatal.stop(&cancel, e);
            }
        });
        let writer = Arc::new(DistributedWriter {
            log,
            cache,
            chain_locks: Mutex::new(HashMap::new()),
            counters: CaptureCounters::default(),
        });
        let last = writer.log.last_position().await.context("read the stream's end")?;
        let mut rx = writer.cache.applied.subscribe();
        rx.wait_for(|a| *a >= last).await.context("fill the capture cache")?;
        Ok(writer)
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    fn chain_lock(&self, chain: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.chain_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(chain.to_string()).or_default().clone()
    }

    fn decide(&self, id: &str, command: &Command) -> Result<Decided, DomainError> {
        let st = self.cache.state.read().unwrap_or_else(|e| e.into_inner());
        if let Some(position) = st.genealogy.event_position(id) {
            return Ok(Decided::Replay(position));
        }
        let event = jejak_domain::decide(&st.genealogy, id, command.clone(), crate::now())?;
        let head = st.heads.get(event.chain()).copied().unwrap_or_default();
        Ok(Decided::Event(Box::new(event), head))
    }

    /// Brings the cache up to the end of the stream as it is now.
    async fn catch_up(&self) -> Result<(), Status> {
        let last = self.log.last_position().await.map_err(status::log)?;
        self.cache.wait_applied(last).await
    }

    async fn replayed(&self, position: u64, id: &str, command_hash: [u8; 32]) -> Result<p::CaptureReply, Status> {
        let stored = self
            .log
            .read(position)
            .await
            .map_err(status::log)?
            .ok_or_else(|| Status::internal(format!("stream position {position} is missing")))?;
        if stored.envelope.command_hash != command_hash {
            return Err(Status::already_exists(format!(
                "command id {id:?} was already used for a different command; choose a new id"
            )));
        }
        self.counters.replayed.fetch_add(1, Ordering::Relaxed);
        Ok(reply_from(&stored, true))
    }
}

impl Submit for DistributedWriter {
    async fn submit(&self, kind: p::command::Kind, actor: &str) -> Result<p::CaptureReply, Status> {
        let command_hash = {
            let mut buf = Vec::with_capacity(kind.encoded_len());
            kind.encode(&mut buf);
            *blake3::hash(&buf).as_bytes()
        };
        let (id, command) = jejak_proto::command_from_proto(kind).map_err(status::domain)?;
        let mut caught_up = false;
        for _ in 0..MAX_ATTEMPTS {
            // Decide once to learn the chain, then again under its lock.
            let chain = match self.decide(&id, &command) {
                Ok(Decided::Replay(position)) => return self.replayed(position, &id, command_hash).await,
                Ok(Decided::Event(event, _)) => event.chain().to_string(),
                // The cache may not have seen a party, lot or event that
                // another instance recorded a moment ago.
                Err(DomainError::NotFound { .. }) if !caught_up => {
                    self.catch_up().await?;
                    caught_up = true;
                    continue;
                }
                Err(e) => return Err(status::domain(e)),
            };
            let lock = self.chain_lock(&chain);
            let _one_at_a_time = lock.lock().await;
            let (event, head) = match self.decide(&id, &command) {
                Ok(Decided::Replay(position)) => return self.replayed(position, &id, command_hash).await,
                Ok(Decided::Event(event, head)) => (event, head),
                Err(e) => return Err(status::domain(e)),
            };
            let now = crate::now();
            let draft = Draft {
                chain: event.chain().to_string(),
                event_id: id.clone(),
                actor: actor.to_string(),
                command_hash,
                recorded_at: jejak_proto::time_to_proto(now),
                event: jejak_proto::event_to_proto(&event),
            };
            match self.log.append_after(draft, head).await {
                Ok(appended) if appended.duplicate => {
                    return self.replayed(appended.position, &id, command_hash).await;
                }
                Ok(appended) => {
                    // The next command on this chain decides on top of this one.
                    self.cache.wait_applied(appended.position).await?;
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    let (verdict, findings) = match &*event {
                        Event::LotInspected(i) => (jejak_proto::verdict_to_proto(i.verdict) as i32, i.findings.clone()),
                        _ => (0, Vec::new()),
                    };
                    return Ok(p::CaptureReply {
                        event_id: id,
                        chain: appended.chain,
                        sequence: appended.sequence,
                        position: appended.position,
                        hash: hex::encode(appended.hash),
                        recorded_at: Some(jejak_proto::time_to_proto(now)),
                        replayed: false,
                        verdict,
                        findings,
                    });
                }
                Err(LogError::Conflict { .. }) => {
                    self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::metrics().append_conflicts.inc();
                    self.catch_up().await?;
                    caught_up = true;
                }
                Err(e) => return Err(status::log(e)),
            }
        }
        self.counters.aborted.fetch_add(1, Ordering::Relaxed);
        Err(Status::aborted(format!(
            "other writers kept changing the same facility; {MAX_ATTEMPTS} attempts conflicted. Retry the \
             command with the same id"
        )))
    }
}

/// The trace service's view of the stream, for a projector: what it
/// applied came from the stream, so it is durable already.
#[derive(Clone)]
pub struct StreamView {
    log: JetStreamLog,
    last: Arc<AtomicU64>,
}

impl StreamView {
    pub fn new(log: JetStreamLog) -> StreamView {
        StreamView {
            log,
            last: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl TraceLog for StreamView {
    async fn wait_durable(&self, _position: u64) -> Result<(), LogError> {
        Ok(())
    }

    async fn read(&self, position: u64) -> Result<Option<StoredEvent>, LogError> {
        self.log.read(position).await
    }

    fn log_position(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    async fn current_position(&self) -> Result<u64, LogError> {
        let end = self.log.last_position().await?;
        self.last.fetch_max(end, Ordering::Relaxed);
        Ok(end)
    }
}

/// Applies the stream to the projection from its stored position on, and
/// keeps `view` told of the stream's end (for the lag). The projection
/// stores the position it reached in the same sled batch as the changes, so
/// after a crash it resumes exactly there; what it re-reads, it skips.
pub async fn run_projector(
    log: JetStreamLog,
    projection: Arc<Projection>,
    view: StreamView,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let last = view.last.clone();
    let end_log = log.clone();
    let end_cancel = cancel.clone();
    let end_last = last.clone();
    // The stream's end, twice a second.
    tokio::spawn(async move {
        loop {
            match end_log.last_position().await {
                Ok(p) => {
                    end_last.fetch_max(p, Ordering::Relaxed);
                }
                Err(e) => tracing::debug!(error = %e, "read the stream's end"),
            }
            tokio::select! {
                _ = end_cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    });
    let target = projection.clone();
    let from = projection.position() + 1;
    follow(log, from, cancel.clone(), "projector", move |events| {
        let projection = target.clone();
        let last = last.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                if events.is_empty() {
                    // Idle: write what is only in memory.
                    if projection.unpersisted() > 0 {
                        projection.persist()?;
                    }
                    return Ok(());
                }
                let decoded = decode_all(&events)?;
                let applied: Vec<AppliedEvent<'_>> = decoded
                    .iter()
                    .map(|(position, id, at, ev)| AppliedEvent {
                        position: *position,
                        event_id: id,
                        recorded_at: *at,
                        event: ev,
                    })
                    .collect();
                projection.apply(&applied)?;
                if let Some(e) = events.last() {
                    last.fetch_max(e.position, Ordering::Relaxed);
                }
                Ok(())
            })
            .await?
        })
    })
    .await?;
    let projection = projection.clone();
    tokio::task::spawn_blocking(move || projection.flush())
        .await
        .context("projection flush task")?
        .context("flush the projection")?;
    Ok(())
}
