//! jejak on NATS JetStream: a capture service that keeps nothing but a
//! cache, and projectors that each keep their own sled genealogy and serve
//! the trace API. Both follow the stream in order.
//!
//! Capture decides a command against its cache, then appends after the
//! chain head the cache holds. If another writer got there first the append
//! is a conflict: the cache catches up with the stream and the command is
//! decided again, until the caller's deadline; only then does the caller
//! get ABORTED. Commands touching the same lots are taken one at a time per
//! instance, so an instance never conflicts with itself.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use jejak_domain::{Command, DomainError, Event, SharedClock};
use jejak_genealogy::{Genealogy, Projection};
use jejak_log::jetstream::{follows, Settled};
use jejak_log::{ChainHead, ChainLog, Draft, JetStreamLog, LogError, ReadLog, StoredEvent};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{Engine, EngineError, Receipt, Submission};

/// The most a conflicted command waits before it is decided again (the
/// wait grows with the attempts, jittered, so that instances contending
/// for one chain stop meeting in lockstep).
const MAX_BACKOFF: Duration = Duration::from_millis(50);
/// Events read from the stream per batch.
const BATCH: usize = 2048;
/// How long a capture waits for its cache to reach a position.
const CACHE_WAIT: Duration = Duration::from_secs(10);

use crate::projector::{applied, decode_all};

/// Counters of one service, for status and metrics.
#[derive(Default)]
pub struct CaptureCounters {
    pub accepted: AtomicU64,
    pub replayed: AtomicU64,
    pub conflicts: AtomicU64,
    pub aborted: AtomicU64,
    /// Appends sent while others were in flight.
    pub pipelined: AtomicU64,
    /// Messages published (each one event, or a batch of one chain's).
    pub messages: AtomicU64,
}

struct CacheState {
    /// The stream position the cache holds everything up to.
    position: u64,
    heads: HashMap<String, ChainHead>,
    /// Events this instance stored beyond what the cache has applied (an
    /// acknowledgement that overtook an earlier one): applied once every
    /// position before theirs is.
    ahead: std::collections::BTreeMap<u64, Own>,
}

/// One of this instance's own events, as acknowledged by the stream.
struct Own {
    chain: String,
    head: ChainHead,
    /// Whether it is the first event of its message.
    first: bool,
    decoded: crate::projector::Decoded,
}

impl CacheState {
    /// Applies one event after the cache's position; chain heads only move
    /// forward. The genealogy skips what it holds already (a shared
    /// projection stored further than its tree: the follower reads those
    /// events again for the tree).
    fn apply_one(&mut self, g: &mut Genealogy, chain: &str, head: ChainHead, decoded: &crate::projector::Decoded) {
        if head.position <= self.position {
            return;
        }
        self.position = head.position;
        if let Some(a) = applied(std::slice::from_ref(decoded)).pop() {
            g.apply(a);
        }
        self.set_head(chain, head);
    }

    fn set_head(&mut self, chain: &str, head: ChainHead) {
        match self.heads.get_mut(chain) {
            Some(h) => *h = head,
            None => {
                self.heads.insert(chain.to_string(), head);
            }
        }
    }

    /// Whether an own event waits that now follows the cache's position.
    fn drainable(&self) -> bool {
        self.ahead
            .first_key_value()
            .is_some_and(|(p, own)| *p <= self.position || follows(self.position, *p, own.first))
    }

    /// Applies this instance's own events that now follow the cache's
    /// position directly; drops those the stream delivered first.
    fn drain_ahead(&mut self, g: &mut Genealogy) {
        loop {
            let position = self.position;
            let Some(first) = self.ahead.first_entry() else {
                return;
            };
            if *first.key() <= position {
                first.remove();
                continue;
            }
            if !follows(position, *first.key(), first.get().first) {
                return;
            }
            let own = first.remove();
            self.apply_one(g, &own.chain, own.head, &own.decoded);
        }
    }
}

/// The genealogy a capture decides against: its own, held in memory only
/// (a capture service that projects nothing), or the projection of the
/// projector it feeds in the same process (`serve --nats` capturing and
/// projecting). Shared, the process holds one genealogy, applies each
/// event to it once, and the projector persists what the cache applied.
enum Graph {
    Own(Box<RwLock<Genealogy>>),
    Shared(Arc<Projection>),
}

impl Graph {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Genealogy> {
        match self {
            Graph::Own(g) => g.read().unwrap_or_else(|e| e.into_inner()),
            Graph::Shared(p) => p.read(),
        }
    }

    fn write<T>(&self, f: impl FnOnce(&mut Genealogy) -> T) -> T {
        match self {
            Graph::Own(g) => {
                let mut g = g.write().unwrap_or_else(|e| e.into_inner());
                let out = f(&mut g);
                // Never written to a store: what changed need not be kept.
                g.forget_changes();
                out
            }
            // Counted toward the projector's next persist (`Projection::apply`).
            Graph::Shared(p) => p.capture(f),
        }
    }
}

/// What a capture instance knows: the genealogy and every chain's head, as
/// of the stream position it has applied.
///
/// Two things feed it, in the stream's order: the follower, with every
/// event the stream holds (this instance's and other writers'), and the
/// capture itself, with each of its own events once the stream acknowledged
/// it, so that the next command on those lots is decided on top of it
/// without waiting for the follower to read it back. An acknowledged event
/// is the stream's message at that position byte for byte, so either source
/// applies the same thing; whichever comes second is skipped.
///
/// Locks are taken in one order: the state, then the genealogy.
pub struct Cache {
    state: RwLock<CacheState>,
    graph: Graph,
    applied: watch::Sender<u64>,
}

impl Cache {
    fn new(graph: Graph) -> Cache {
        Cache {
            state: RwLock::new(CacheState {
                position: 0,
                heads: HashMap::new(),
                ahead: std::collections::BTreeMap::new(),
            }),
            graph,
            applied: watch::channel(0).0,
        }
    }

    pub fn position(&self) -> u64 {
        *self.applied.borrow()
    }

    fn apply(&self, (events, decoded): &Batch) -> anyhow::Result<()> {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        self.graph.write(|g| {
            for (e, d) in events.iter().zip(decoded) {
                let head = ChainHead {
                    sequence: e.envelope.sequence,
                    hash: e.hash,
                    position: e.position,
                };
                st.apply_one(g, &e.envelope.chain, head, d);
            }
            st.drain_ahead(g);
        });
        self.moved(st);
        Ok(())
    }

    /// Starts a cache on a genealogy stored up to `position` (a shared
    /// projection opened again) with every chain's head as the stream held
    /// it since (`JetStreamLog::chain_heads`): the follower then reads on
    /// from after `position`, and the heads of chains it meets move on
    /// with it, in order, to where the stream ends.
    fn seed(&self, position: u64, heads: Vec<(String, ChainHead)>) {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        st.position = st.position.max(position);
        st.heads.extend(heads);
        self.moved(st);
    }

    /// Applies an event this instance stored at `head.position` (`first`
    /// of its message or not), now if every event before it is applied,
    /// else once they are.
    fn apply_own(&self, chain: String, head: ChainHead, first: bool, decoded: crate::projector::Decoded) {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        if head.position <= st.position {
            return;
        }
        st.ahead.insert(
            head.position,
            Own {
                chain,
                head,
                first,
                decoded,
            },
        );
        if st.drainable() {
            self.graph.write(|g| st.drain_ahead(g));
        }
        self.moved(st);
    }

    fn moved(&self, st: std::sync::RwLockWriteGuard<'_, CacheState>) {
        let last = st.position;
        drop(st);
        self.applied.send_if_modified(|a| {
            let moved = last > *a;
            *a = (*a).max(last);
            moved
        });
    }

    async fn wait_applied(&self, position: u64) -> Result<(), EngineError> {
        let mut rx = self.applied.subscribe();
        let reached = tokio::time::timeout(CACHE_WAIT, rx.wait_for(|a| *a >= position)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(EngineError::Behind {
                position,
                at: self.position(),
            }),
        }
    }
}

/// Empty batches (of half a second) after which a follower asks the stream
/// where it ends.
const STALL_CHECK: u32 = 2;

/// Batches read ahead of the one being applied.
const READ_AHEAD: usize = 2;

/// A follower that has caught up gathers what arrives for up to `GATHER`
/// before it hands on a batch of fewer than `GATHER_BELOW` events. Under
/// unary capture the stream delivers events one or two at a time, and each
/// batch costs its applier about as much as a hundred events do (a decode
/// on a blocking thread, the projection's lock, a sled batch for the tree,
/// a hand-on to the alert follower). What waits is the projection's and
/// the tree's view of the stream, and a cache's view of other services'
/// events; a capture's acknowledgement waits only after a sequence the
/// stream skipped (the capture applies its own events when the stream
/// acknowledges them).
const GATHER: Duration = Duration::from_millis(5);
const GATHER_BELOW: usize = 128;

/// What a follower's applier holds already, so that its reader need not
/// decode it.
enum Skip {
    /// Nothing: every event is decoded and applied.
    Nothing,
    /// A capture-only cache's own events: those at or below the watched
    /// position are left out before decoding.
    Applied(watch::Receiver<u64>),
}

/// Follows the stream into `apply` from `from` on, until cancelled; read
/// errors (NATS away, a leader changing) are retried without skipping.
/// A task of its own reads the next batches, and each is decoded on a
/// blocking thread, while `apply` works on this one; an empty batch means
/// the stream was idle for half a second. What `skip` says the applier
/// holds is not decoded.
async fn follow<F>(
    log: JetStreamLog,
    from: u64,
    skip: Skip,
    cancel: CancellationToken,
    what: &'static str,
    mut apply: F,
) -> anyhow::Result<()>
where
    F: FnMut(Arc<Batch>) -> futures_util::future::BoxFuture<'static, anyhow::Result<()>>,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    let reading = cancel.child_token();
    let reader = tokio::spawn(read_ahead(log, from, skip, reading.clone(), what, tx));
    // The reader stops with this function, however it ends.
    let _stop_reading = reading.drop_guard();
    loop {
        let batch = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            b = rx.recv() => b,
        };
        match batch {
            Some(Ok(decoding)) => {
                let batch = match decoding.await {
                    Ok(Ok(batch)) => batch,
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, what, "decoding the stream failed; stopping");
                        return Err(e.context(format!("{what}: decode the stream")));
                    }
                    Err(e) => anyhow::bail!("{what}: the decoding task failed: {e}"),
                };
                stop_unless_applied(apply(Arc::new(batch)).await, what)?;
            }
            Some(Err(e)) => return Err(e),
            // The reader ended without saying why: it was cancelled or panicked.
            None => {
                if cancel.is_cancelled() {
                    return Ok(());
                }
                let why = match reader.await {
                    Err(e) => format!("{e}"),
                    Ok(()) => "it stopped".into(),
                };
                anyhow::bail!("{what}: the stream's reader ended: {why}");
            }
        }
    }
}

/// A batch's apply that failed stops its follower (`follow`, `fed`): said
/// in the log, and returned with what was following.
fn stop_unless_applied(applied: anyhow::Result<()>, what: &'static str) -> anyhow::Result<()> {
    applied.map_err(|e| {
        tracing::error!(error = %e, what, "applying the stream failed; stopping");
        e.context(format!("{what}: apply the stream"))
    })
}

/// `follow`'s reader: sends batches in order (empty ones when the stream
/// is idle), and a corrupt stream as an error, after which it stops.
async fn read_ahead(
    log: JetStreamLog,
    from: u64,
    skip: Skip,
    cancel: CancellationToken,
    what: &'static str,
    tx: tokio::sync::mpsc::Sender<anyhow::Result<Decoding>>,
) {
    let decoding = |mut events: Vec<StoredEvent>| -> Decoding {
        match &skip {
            Skip::Nothing => {}
            Skip::Applied(known) => {
                let known = *known.borrow();
                events.retain(|e| e.position > known);
            }
        }
        tokio::task::spawn_blocking(move || decode_all(&events).map(|d| (events, d)))
    };
    let mut reader = log.reader(from);
    let mut idle = 0u32;
    // What was read while the applier was busy: sent as one batch when it
    // takes the next (the stream delivers a few hundred messages at a time;
    // applying them in batches of up to `BATCH` costs less per event).
    let mut pending: Vec<StoredEvent> = Vec::new();
    // When the first of `pending` was read.
    let mut gathering = tokio::time::Instant::now();
    loop {
        let gathered = gathering.elapsed();
        let wait = match pending.len() {
            0 => Duration::from_millis(500),
            n if n < GATHER_BELOW && gathered < GATHER => GATHER - gathered,
            _ => Duration::ZERO,
        };
        let batch = tokio::select! {
            _ = cancel.cancelled() => return,
            b = reader.next_batch(BATCH.saturating_sub(pending.len()), wait) => b,
        };
        let send = match batch {
            Ok(events) if events.is_empty() && !pending.is_empty() => Ok(decoding(std::mem::take(&mut pending))),
            Ok(events) => {
                if events.is_empty() {
                    idle += 1;
                    // Idle for a while: make sure the stream has not moved on
                    // without this reader.
                    if idle % STALL_CHECK == 0 {
                        match log.last_position().await {
                            Ok(last) if last >= reader.position() => {
                                tracing::warn!(
                                    what,
                                    position = reader.position(),
                                    stream_end = last,
                                    "the reader stalled behind the stream; starting it again"
                                );
                                reader.restart();
                            }
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, what, "asking the stream for its end failed"),
                        }
                    }
                } else {
                    idle = 0;
                }
                if pending.is_empty() {
                    gathering = tokio::time::Instant::now();
                }
                pending.extend(events);
                let small = pending.len() < GATHER_BELOW && gathering.elapsed() < GATHER;
                if pending.len() < BATCH && idle == 0 && (tx.capacity() == 0 || small) {
                    // The applier is busy and has batches waiting, or the
                    // batch is small and young: read on.
                    continue;
                }
                Ok(decoding(std::mem::take(&mut pending)))
            }
            // A message that is not an envelope, or a gap: never skipped
            // (what was read before it is applied first).
            Err(e @ LogError::Corrupt { .. }) => {
                if !pending.is_empty() && tx.send(Ok(decoding(std::mem::take(&mut pending)))).await.is_err() {
                    return;
                }
                Err(anyhow::Error::new(e).context(format!("{what}: the stream at position {}", reader.position())))
            }
            Err(e) => {
                if !pending.is_empty() && tx.send(Ok(decoding(std::mem::take(&mut pending)))).await.is_err() {
                    return;
                }
                tracing::warn!(error = %e, what, position = reader.position(), "reading the stream failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                continue;
            }
        };
        let corrupt = send.is_err();
        if tx.send(send).await.is_err() || corrupt {
            return;
        }
    }
}

/// A batch being decoded on a blocking thread.
type Decoding = tokio::task::JoinHandle<anyhow::Result<Batch>>;

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

/// The most events one message gathers, and the size at which it is sent
/// (the stream takes messages of up to 1 MiB).
const MESSAGE_EVENTS: usize = 256;
const MESSAGE_BYTES: usize = 256 * 1024;

/// Messages this instance keeps waiting for their acknowledgement before it
/// gathers commands into the next (group commit: an idle instance sends each
/// command at once; a busy one sends what came while it waited, together).
const MESSAGES_IN_FLIGHT: usize = 1;

/// A message being gathered: consecutive commands to one chain, sent as one
/// message (`jejak_log::jetstream::batch_payload`) at once when no message
/// of this instance waits for its acknowledgement, else when that
/// acknowledgement comes, when a command to another chain comes, when it is
/// full, or when a command waits for one of its keys. One publish, one
/// acknowledgement and one delivery to every reader carry all of them.
struct Open {
    /// The stream sequence it is predicted to get.
    sequence: u64,
    chain: String,
    /// The chain head its first envelope follows.
    after: u64,
    /// The previous message this instance sent, while the pipeline is not empty.
    after_id: Option<String>,
    envelopes: Vec<bytes::Bytes>,
    ids: Vec<String>,
    size: usize,
    /// Told how the publish ended, and how many events the message held.
    settled: watch::Sender<Option<(Settled, usize)>>,
}

/// A command's place in a message: its outcome, once sent, and its index.
struct Slot {
    settled: watch::Receiver<Option<(Settled, usize)>>,
    index: usize,
}

/// What this instance has published and not yet seen in its cache.
///
/// Commands that touch none of the same lots, serials or event ids as the
/// ones in flight are published without waiting for those to be
/// acknowledged, even on the same chain, and consecutive ones to one chain
/// go as one message (`Open`): each message names the chain head it
/// follows by its predicted stream sequence, and the previous message this
/// instance sent as the stream's last (`Nats-Expected-Last-Msg-Id`). A
/// foreign write anywhere makes the next of them a conflict; the pipeline
/// then drains, the cache catches up, and the refused commands are decided
/// again. Master data and voids go alone.
#[derive(Default)]
struct Pipeline {
    in_flight: usize,
    exclusive: bool,
    keys: HashSet<String>,
    /// Per chain: the head after the last message in flight, and how many are in flight.
    tails: HashMap<String, (ChainHead, usize)>,
    /// The id of the last message sent since the pipeline was last empty.
    last_id: Option<String>,
    /// The stream sequence the next message is predicted to get.
    next_sequence: u64,
    /// The message being gathered, not sent yet.
    open: Option<Open>,
    /// Messages sent and not yet acknowledged (or refused).
    unacknowledged: usize,
    /// A prediction failed: send nothing until the pipeline has drained and
    /// the cache caught up.
    broken: bool,
    /// Tickets of the messages in flight, in the order they were sent, and
    /// the next ticket: a command refused while others were in flight is
    /// decided again once those have reached the cache, since one of them
    /// may be what it needed (a bulk stream's void before its use).
    tickets: std::collections::BTreeSet<u64>,
    next_ticket: u64,
    /// The keys of each command being decided again (after a conflict or
    /// an unacknowledged publish), and whether it goes alone, by its held
    /// ticket: a command after it that touches one of them, or any command
    /// after one that goes alone, waits until it is answered, as it would
    /// for a command in flight, so that the two are decided in the order
    /// they were sent (two consumptions of one lot: the first is recorded).
    held: std::collections::BTreeMap<u64, (Vec<String>, bool)>,
}

impl Pipeline {
    /// Whether a command whose place is `place` (its held ticket, or the
    /// next one) must wait for one held before it: one that touches its
    /// keys, or any at all when either goes alone.
    fn behind_held(&self, place: u64, keys: &[String], exclusive: bool) -> bool {
        self.held
            .range(..place)
            .any(|(_, (held, alone))| exclusive || *alone || held.iter().any(|k| keys.contains(k)))
    }
}

/// The keys a decided event touches, and whether it must go alone.
fn keys_of(id: &str, event: &Event) -> (Vec<String>, bool) {
    let exclusive = matches!(
        event,
        Event::PartyRegistered(_)
            | Event::FacilityRegistered(_)
            | Event::ProductRegistered(_)
            | Event::StandardRegistered(_)
            | Event::EventVoided(_)
    );
    let mut keys = vec![format!("e:{id}")];
    keys.extend(event.lots().into_iter().map(|l| format!("l:{l}")));
    match event {
        Event::LotPacked(p) => keys.extend(p.packages.iter().map(|k| format!("s:{}", k.serial))),
        Event::LotShipped(s) => keys.extend(s.package_serials.iter().map(|k| format!("s:{k}"))),
        _ => {}
    }
    (keys, exclusive)
}

/// The capture service on JetStream.
pub struct DistributedWriter {
    log: JetStreamLog,
    cache: Arc<Cache>,
    pipeline: tokio::sync::Mutex<Pipeline>,
    drained: tokio::sync::Notify,
    pub counters: CaptureCounters,
    clock: SharedClock,
    /// This writer, for the task that releases a message whose caller went
    /// away (`Owed`).
    me: std::sync::Weak<DistributedWriter>,
}

impl DistributedWriter {
    /// The access tokens, as the cache follows them from the stream.
    pub fn tokens(&self) -> Arc<jejak_domain::TokenTable> {
        self.cache.graph.read().tokens()
    }

    /// Fills the cache from the stream and keeps it following. If the
    /// cache cannot apply the stream, `fatal` is told why and `cancel` is
    /// cancelled: the service stops rather than decide on stale state.
    /// With `forward`, every batch the cache's follower read and decoded
    /// (from the stream's start) goes on to a projector of this process
    /// (`run_projector` with the `Feed`), which then reads nothing itself;
    /// the follower waits for it, so that projector must be running.
    pub async fn start(
        log: JetStreamLog,
        cancel: CancellationToken,
        fatal: Fatal,
        clock: SharedClock,
        forward: Option<Forward>,
    ) -> anyhow::Result<Arc<DistributedWriter>> {
        let graph = match &forward {
            Some(f) => Graph::Shared(f.projection.clone()),
            None => Graph::Own(Box::default()),
        };
        let cache = Arc::new(Cache::new(graph));
        let feed = cache.clone();
        // What the cache holds already (its own events) it needs no decoding
        // of, unless a projector takes every event from it.
        let (from, skip) = match &forward {
            None => (1, Skip::Applied(cache.applied.subscribe())),
            // What the shared projection and the projector's tree both hold
            // needs reading for the chain heads only: those come from the
            // stream's subjects instead, and the stream is read after it.
            Some(f) if f.stored > 0 => {
                let heads = log
                    .chain_heads()
                    .await
                    .context("read every chain's head from the stream")?;
                tracing::info!(
                    chains = heads.len(),
                    from = f.stored + 1,
                    "capture cache follows the stream"
                );
                cache.seed(f.stored, heads);
                (f.stored + 1, Skip::Nothing)
            }
            Some(_) => (1, Skip::Nothing),
        };
        let forward = forward.map(|f| f.tx);
        let following = follow(log.clone(), from, skip, cancel.clone(), "capture cache", move |batch| {
            let (feed, forward) = (feed.clone(), forward.clone());
            Box::pin(async move {
                if !batch.0.is_empty() {
                    let applying = batch.clone();
                    tokio::task::spawn_blocking(move || feed.apply(&applying)).await??;
                }
                if let Some(tx) = forward {
                    // A projector that went away stopped the process.
                    let _ = tx.send(batch).await;
                }
                Ok(())
            })
        });
        let (stopped, why) = (cancel.clone(), fatal.clone());
        tokio::spawn(async move {
            if let Err(e) = following.await {
                fatal.stop(&cancel, e);
            }
        });
        let writer = Arc::new_cyclic(|me| DistributedWriter {
            log,
            cache,
            pipeline: tokio::sync::Mutex::new(Pipeline::default()),
            drained: tokio::sync::Notify::new(),
            counters: CaptureCounters::default(),
            clock,
            me: me.clone(),
        });
        let last = writer.log.end_at_start().await.context("read the stream's end")?;
        let mut rx = writer.cache.applied.subscribe();
        tokio::select! {
            filled = rx.wait_for(|a| *a >= last) => {
                filled.context("fill the capture cache")?;
            }
            _ = stopped.cancelled() => anyhow::bail!(
                "stopped before the capture cache was filled: {}",
                why.reason().unwrap_or_else(|| "cancelled".into())
            ),
        }
        Ok(writer)
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    fn decide(&self, id: &str, command: &Command) -> Result<Decided, DomainError> {
        let st = self.cache.state.read().unwrap_or_else(|e| e.into_inner());
        let g = self.cache.graph.read();
        if let Some(position) = g.event_position(id) {
            return Ok(Decided::Replay(position));
        }
        let event = jejak_domain::decide(&*g, id, command.clone(), self.clock.now())?;
        let head = st.heads.get(event.chain()).copied().unwrap_or_default();
        Ok(Decided::Event(Box::new(event), head))
    }

    /// Brings the cache up to the end of the stream as it is now.
    async fn catch_up(&self) -> Result<(), EngineError> {
        let last = self.log.last_position().await?;
        self.cache.wait_applied(last).await
    }

    /// `catch_up`, given up at a command's deadline.
    async fn catch_up_by(&self, deadline: tokio::time::Instant) -> Result<(), EngineError> {
        tokio::time::timeout_at(deadline, self.catch_up())
            .await
            .unwrap_or_else(|_| {
                Err(EngineError::Log(LogError::Unavailable(
                    "this capture service could not follow the stream to its end before the request's deadline \
                     (is NATS reachable?)"
                        .into(),
                )))
            })
    }

    async fn replayed(&self, position: u64, id: &str, content_hash: [u8; 32]) -> Result<Receipt, EngineError> {
        let stored = self.log.read(position).await?.ok_or(EngineError::Missing(position))?;
        let mut receipt = Receipt::replay_of(&stored, id, content_hash)?;
        receipt.voided_by = self.cache.graph.read().voided_by(id).map(|(void, _)| void);
        self.counters.replayed.fetch_add(1, Ordering::Relaxed);
        Ok(receipt)
    }
}

/// A message in the pipeline whose release is still owed. If the future
/// that would make it is dropped first (its caller went away, the message
/// maybe stored), a task makes it as for a message whose outcome is
/// unknown: the pipeline drains, the cache catches up with the stream, and
/// the chains' expectations refuse anything decided without it.
struct Owed {
    writer: std::sync::Weak<DistributedWriter>,
    release: Option<(u64, Vec<String>, String, bool)>,
}

impl Owed {
    fn paid(&mut self) {
        self.release = None;
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        let (Some((ticket, keys, chain, exclusive)), Some(writer)) = (self.release.take(), self.writer.upgrade())
        else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { writer.release(ticket, &keys, &chain, exclusive, true, None).await });
        }
    }
}

/// The ticket of a command being decided again after a conflict or an
/// unacknowledged publish: held in the pipeline until the command is
/// answered (this is dropped), so that a command sent after it and refused
/// meanwhile is decided again once it is, as if they had gone in order
/// (a bulk stream's process of the lot its receipt, conflicted, is still
/// to record).
struct Held {
    writer: std::sync::Weak<DistributedWriter>,
    ticket: Option<u64>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let (Some(ticket), Some(writer)) = (self.ticket.take(), self.writer.upgrade()) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut pl = writer.pipeline.lock().await;
                pl.tickets.remove(&ticket);
                pl.held.remove(&ticket);
                drop(pl);
                writer.drained.notify_waiters();
            });
        }
    }
}

/// How a command left the pipeline.
enum Sent {
    Stored {
        position: u64,
        sequence: u64,
        hash: [u8; 32],
        chain: String,
    },
    Duplicate(u64),
    /// Another writer moved the chain on: decide again.
    Conflicted,
    /// No acknowledgement (maybe stored): decide again after the resync.
    Unacknowledged(String),
}

impl DistributedWriter {
    /// Sends the message being gathered, if any. Called with the pipeline
    /// locked, so messages reach the stream in the order they were opened.
    async fn flush(&self, pl: &mut Pipeline) {
        let Some(open) = pl.open.take() else {
            return;
        };
        let ids: Vec<&str> = open.ids.iter().map(String::as_str).collect();
        let message_id = jejak_log::jetstream::batch_id(&ids);
        let count = open.envelopes.len();
        let inflight = self
            .log
            .send(
                &open.chain,
                jejak_log::jetstream::batch_payload(&open.envelopes),
                &message_id,
                open.after,
                open.after_id.as_deref(),
            )
            .await;
        pl.last_id = Some(message_id);
        pl.unacknowledged += 1;
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        let (settled, writer) = (open.settled, self.me.clone());
        tokio::spawn(async move {
            let outcome = Settled::from(inflight.outcome().await);
            settled.send_replace(Some((outcome, count)));
            // The message gathered meanwhile goes now.
            if let Some(writer) = writer.upgrade() {
                let mut pl = writer.pipeline.lock().await;
                pl.unacknowledged -= 1;
                if pl.unacknowledged < MESSAGES_IN_FLIGHT {
                    writer.flush_next(&mut pl).await;
                }
            }
        });
    }

    /// `flush`, from the task that settles the message before (a future of
    /// a named type: `flush` spawns that task).
    fn flush_next<'a>(&'a self, pl: &'a mut Pipeline) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(self.flush(pl))
    }

    /// Takes a command's keys out of the pipeline once its fate is known,
    /// and its ticket. A command to be decided again (`again`: its place,
    /// the ticket it was first sent with) keeps that ticket and holds its
    /// keys there until it is answered: see `Held`.
    #[allow(clippy::too_many_arguments)]
    async fn release(
        &self,
        ticket: u64,
        keys: &[String],
        chain: &str,
        exclusive: bool,
        broken: bool,
        again: Option<u64>,
    ) {
        let mut pl = self.pipeline.lock().await;
        if again != Some(ticket) {
            pl.tickets.remove(&ticket);
        }
        for k in keys {
            pl.keys.remove(k);
        }
        if let Some(place) = again {
            pl.held.insert(place, (keys.to_vec(), exclusive));
        }
        pl.in_flight -= 1;
        if exclusive {
            pl.exclusive = false;
        }
        if let Some((_, n)) = pl.tails.get_mut(chain) {
            *n -= 1;
            if *n == 0 {
                pl.tails.remove(chain);
            }
        }
        pl.broken |= broken;
        if pl.in_flight == 0 {
            pl.last_id = None;
        }
        drop(pl);
        self.drained.notify_waiters();
    }

    /// Waits for the outcome of the message a command went in, and for the
    /// cache to hold what it stored, then takes its keys out of the
    /// pipeline (to be held at its place, `held` or else this ticket, when
    /// it is to be decided again: `held` is set to the place before the keys
    /// are held there, so that whoever drops this future leaves `Held` to
    /// release them).
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        held: &mut Option<u64>,
        mut slot: Slot,
        keys: Vec<String>,
        chain: String,
        exclusive: bool,
        predicted: u64,
        ticket: u64,
        stored_as: (u64, [u8; 32]),
        id: &str,
        own: (String, jejak_domain::Time, Event),
        owed: &mut Owed,
    ) -> Result<Sent, EngineError> {
        let outcome = match slot.settled.wait_for(Option::is_some).await {
            Ok(settled) => settled.clone(),
            Err(_) => None,
        };
        let (outcome, count) = outcome.unwrap_or((Settled::Retry("the message was never sent".into()), 1));
        let position = |sequence| jejak_log::jetstream::position(sequence, count, slot.index);
        Ok(match outcome {
            Settled::Stored {
                sequence,
                duplicate: false,
            } => {
                let position = position(sequence);
                // The cache applies it (once it holds every position before
                // it), so that what is decided next on these keys sees it.
                let head = ChainHead {
                    sequence: stored_as.0,
                    hash: stored_as.1,
                    position,
                };
                let (id, at, event) = own;
                self.cache.apply_own(
                    chain.clone(),
                    head,
                    slot.index == 0,
                    (position, id, at, event, stored_as.1),
                );
                let applied = self.cache.wait_applied(position).await;
                let mispredicted = sequence != predicted;
                self.release(ticket, &keys, &chain, exclusive, mispredicted, None).await;
                owed.paid();
                applied?;
                Sent::Stored {
                    position,
                    sequence: stored_as.0,
                    hash: stored_as.1,
                    chain,
                }
            }
            Settled::Stored { sequence, .. } => {
                let position = position(sequence);
                let followers = self.pipeline.lock().await.tails.get(&chain).map_or(0, |(_, n)| *n);
                if followers > 1 {
                    tracing::warn!(
                        event_id = %id,
                        chain = %chain,
                        position,
                        "a pipelined append was a duplicate while other appends of its chain were in flight; \
                         check that chain's links after this position"
                    );
                }
                self.release(ticket, &keys, &chain, exclusive, true, None).await;
                owed.paid();
                Sent::Duplicate(position)
            }
            Settled::Conflict => {
                self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                let place = *held.get_or_insert(ticket);
                self.release(ticket, &keys, &chain, exclusive, true, Some(place)).await;
                owed.paid();
                Sent::Conflicted
            }
            Settled::Retry(e) => {
                // Maybe stored: after the resync the cache knows, and the
                // same message id finds it otherwise.
                tracing::warn!(error = %e, event_id = %id, "publish not acknowledged; deciding again");
                self.log.count_retry();
                let place = *held.get_or_insert(ticket);
                self.release(ticket, &keys, &chain, exclusive, true, Some(place)).await;
                owed.paid();
                tokio::time::sleep(Duration::from_millis(100)).await;
                Sent::Unacknowledged(e)
            }
            Settled::Failed(e) => {
                self.release(ticket, &keys, &chain, exclusive, true, None).await;
                owed.paid();
                return Err(LogError::Storage(format!("publish: {e}")).into());
            }
        })
    }

    /// Decides and sends one command when the pipeline admits it; then
    /// waits for the outcome and for the cache to hold the event.
    #[allow(clippy::too_many_arguments)]
    async fn send_one(
        &self,
        id: &str,
        command: &Command,
        command_hash: [u8; 32],
        actor: &str,
        caught_up: &mut bool,
        admitted: &mut Option<tokio::sync::oneshot::Sender<()>>,
        held: &mut Option<u64>,
        deadline: tokio::time::Instant,
    ) -> Result<Result<(Sent, Box<Event>, jejak_domain::Time), u64>, EngineError> {
        // Waiting for what was sent before it to be settled, a command
        // keeps to its deadline: past it, it is not sent.
        let settled_before = |drained| async move {
            tokio::time::timeout_at(deadline, drained)
                .await
                .map_err(|_| EngineError::Queued)
        };
        let mut barrier: Option<u64> = None;
        let (slot, keys, chain, exclusive, predicted, event, now, stored_as, ticket, own) = loop {
            let drained = self.drained.notified();
            let mut pl = self.pipeline.lock().await;
            if pl.broken {
                if pl.in_flight > 0 {
                    self.flush(&mut pl).await;
                    drop(pl);
                    settled_before(drained).await?;
                    continue;
                }
                // Drained after a failed prediction: start again from the stream.
                drop(pl);
                self.catch_up_by(deadline).await?;
                let mut pl = self.pipeline.lock().await;
                if pl.in_flight == 0 {
                    pl.broken = false;
                    pl.tails.clear();
                    pl.last_id = None;
                }
                continue;
            }
            let decided = self.decide(id, command);
            let (event, cache_head) = match decided {
                Ok(Decided::Replay(position)) => return Ok(Err(position)),
                Ok(Decided::Event(event, head)) => (event, head),
                // Refused while messages sent before it are in flight: one
                // of them may change the answer. Decide again once every
                // one sent before this refusal has reached the cache.
                // (A command decided again waits only for those sent before
                // it was first: its own held ticket marks the place.)
                Err(_) if barrier.is_none() && pl.tickets.range(..held.unwrap_or(pl.next_ticket)).next().is_some() => {
                    barrier = Some(held.unwrap_or(pl.next_ticket));
                    self.flush(&mut pl).await;
                    drop(pl);
                    settled_before(drained).await?;
                    continue;
                }
                Err(_) if barrier.is_some_and(|b| pl.tickets.range(..b).next().is_some()) => {
                    self.flush(&mut pl).await;
                    drop(pl);
                    settled_before(drained).await?;
                    continue;
                }
                // The cache may not have seen a party, lot or event that
                // another instance recorded a moment ago.
                Err(DomainError::NotFound { .. }) if !*caught_up => {
                    drop(pl);
                    self.catch_up_by(deadline).await?;
                    *caught_up = true;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let (keys, exclusive) = keys_of(id, &event);
            let place = held.unwrap_or(pl.next_ticket);
            let busy = pl.exclusive
                || (exclusive && pl.in_flight > 0)
                || keys.iter().any(|k| pl.keys.contains(k))
                || pl.behind_held(place, &keys, exclusive);
            if busy {
                // What it waits for may be in the message being gathered,
                // which this command cannot join: send it now.
                self.flush(&mut pl).await;
                drop(pl);
                settled_before(drained).await?;
                continue;
            }
            let chain = event.chain().to_string();
            // A command joins the message being gathered when it goes to the
            // same chain and there is room; otherwise that one is sent first.
            let joins = pl.open.as_ref().is_some_and(|o| {
                o.chain == chain && !exclusive && o.ids.len() < MESSAGE_EVENTS && o.size < MESSAGE_BYTES
            });
            if !joins {
                self.flush(&mut pl).await;
            }
            let head = match pl.tails.get(&chain) {
                Some((tail, _)) => *tail,
                None => cache_head,
            };
            if pl.in_flight == 0 {
                pl.next_sequence = jejak_log::jetstream::message_of(self.cache.position()) + 1;
            }
            let now = self.clock.now();
            let draft = Draft {
                chain: chain.clone(),
                event_id: id.to_string(),
                actor: actor.to_string(),
                command_hash,
                recorded_at: jejak_proto::time_to_proto(now),
                event: jejak_proto::event_to_proto(&event),
            };
            let prepared = jejak_log::jetstream::prepare(&draft, head)?;
            let recorded_at = draft.recorded_at;
            if pl.in_flight > 0 {
                self.counters.pipelined.fetch_add(1, Ordering::Relaxed);
            }
            if pl.open.is_none() {
                let (settled, _) = watch::channel(None);
                let after_id = pl.last_id.clone();
                pl.open = Some(Open {
                    sequence: pl.next_sequence,
                    chain: chain.clone(),
                    after: head.position,
                    after_id,
                    envelopes: Vec::new(),
                    ids: Vec::new(),
                    size: 0,
                    settled,
                });
                pl.next_sequence += 1;
            }
            let Some(open) = pl.open.as_mut() else {
                return Err(EngineError::Log(LogError::Storage(
                    "no message is being gathered".into(),
                )));
            };
            let predicted = open.sequence;
            let slot = Slot {
                settled: open.settled.subscribe(),
                index: open.ids.len(),
            };
            open.size += prepared.bytes.len();
            open.envelopes.push(prepared.bytes);
            open.ids.push(id.to_string());
            let full = open.ids.len() >= MESSAGE_EVENTS || open.size >= MESSAGE_BYTES;
            let tail = ChainHead {
                sequence: prepared.sequence,
                hash: prepared.hash,
                position: jejak_log::jetstream::end_of(predicted),
            };
            let count = pl.tails.get(&chain).map_or(0, |(_, n)| *n);
            pl.tails.insert(chain.clone(), (tail, count + 1));
            pl.keys.extend(keys.iter().cloned());
            pl.in_flight += 1;
            pl.exclusive |= exclusive;
            let ticket = pl.next_ticket;
            pl.next_ticket += 1;
            pl.tickets.insert(ticket);
            let stored_as = (tail.sequence, prepared.hash);
            // Sent now unless a message sent before is still waiting for
            // its acknowledgement: then it gathers the commands that come
            // meanwhile, and goes when that acknowledgement comes.
            if exclusive || full || pl.unacknowledged < MESSAGES_IN_FLIGHT {
                self.flush(&mut pl).await;
            }
            if let Some(tx) = admitted.take() {
                let _ = tx.send(());
            }
            break (
                slot,
                keys,
                chain,
                exclusive,
                predicted,
                event,
                now,
                stored_as,
                ticket,
                recorded_at,
            );
        };
        // The event as the stream's readers decode it, for the cache to
        // apply once acknowledged: the decided one, which its proto gives
        // back unchanged (`jejak-proto`'s round-trip property), and the
        // recording time as the envelope carries it.
        let own = (
            id.to_string(),
            jejak_domain::Time::from_unix(own.seconds, own.nanos).unwrap_or_default(),
            (*event).clone(),
        );
        // If this command's caller goes away (its future dropped) before the
        // message is settled, the release is still made (`Owed`).
        let mut owed = Owed {
            writer: self.me.clone(),
            release: Some((ticket, keys.clone(), chain.clone(), exclusive)),
        };
        let sent = self
            .settle(
                held, slot, keys, chain, exclusive, predicted, ticket, stored_as, id, own, &mut owed,
            )
            .await?;
        Ok(Ok((sent, event, now)))
    }
}

impl DistributedWriter {
    /// Decides, sends and acknowledges one command, retrying conflicts and
    /// unacknowledged publishes until its deadline. `admitted` is told once
    /// the command is first sent (or answered without sending), so that a
    /// bulk stream admits its next command only after this one.
    async fn submit_admitted(
        &self,
        submission: Submission,
        actor: &str,
        mut admitted: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<Receipt, EngineError> {
        let Submission {
            id,
            command,
            content_hash,
            deadline,
        } = submission;
        let deadline = deadline.unwrap_or_else(|| tokio::time::Instant::now() + crate::DEFAULT_RETRY_FOR);
        let mut caught_up = false;
        let mut attempts = 0usize;
        let mut held = Held {
            writer: self.me.clone(),
            ticket: None,
        };
        // Why an earlier attempt's publish went unacknowledged: it may have
        // been stored, whatever a later attempt meets.
        let mut unanswered: Option<String> = None;
        let unacknowledged = loop {
            attempts += 1;
            let (sent, event, now) = match self
                .send_one(
                    &id,
                    &command,
                    content_hash,
                    actor,
                    &mut caught_up,
                    &mut admitted,
                    &mut held.ticket,
                    deadline,
                )
                .await
            {
                Ok(Err(position)) => return self.replayed(position, &id, content_hash).await,
                Ok(Ok(done)) => done,
                // Past the deadline behind earlier commands, after an
                // attempt of its own that may have been stored: say that.
                Err(EngineError::Queued) if unanswered.is_some() => break unanswered,
                // No leader to answer (an election): ask again until the
                // deadline, then say so.
                Err(EngineError::Log(LogError::Unavailable(why))) => {
                    let wait = backoff(attempts).max(Duration::from_millis(50));
                    if tokio::time::Instant::now() + wait >= deadline {
                        break Some(why);
                    }
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Sent::Unacknowledged(why) = &sent {
                unanswered = Some(why.clone());
            }
            match sent {
                Sent::Conflicted | Sent::Unacknowledged(_) => {
                    let wait = backoff(attempts);
                    if tokio::time::Instant::now() + wait >= deadline {
                        break match sent {
                            Sent::Unacknowledged(why) => Some(why),
                            _ => None,
                        };
                    }
                    tokio::time::sleep(wait).await;
                }
                Sent::Duplicate(position) => return self.replayed(position, &id, content_hash).await,
                Sent::Stored {
                    position,
                    sequence,
                    hash,
                    chain,
                } => {
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    let appended = jejak_log::Appended {
                        position,
                        chain,
                        sequence,
                        hash,
                        duplicate: false,
                    };
                    return Ok(Receipt::new(id, &event, appended, now));
                }
            }
        };
        if let Some(why) = unacknowledged {
            return Err(EngineError::Log(LogError::Unavailable(format!(
                "NATS did not acknowledge the event before the request's deadline ({why}); it may have been \
                 stored: retry with the same command id"
            ))));
        }
        self.counters.aborted.fetch_add(1, Ordering::Relaxed);
        Err(EngineError::Contended { attempts })
    }
}

/// The wait before a conflicted command's next attempt: growing with the
/// attempts up to `MAX_BACKOFF`, with jitter.
fn backoff(attempts: usize) -> Duration {
    let ceiling = MAX_BACKOFF.min(Duration::from_millis(1 << attempts.min(6)));
    let jitter = f64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() % 1000),
    ) / 1000.0;
    ceiling.mul_f64(0.5 + jitter / 2.0)
}

impl Engine for DistributedWriter {
    async fn submit(&self, submission: Submission, actor: &str) -> Result<Receipt, EngineError> {
        self.submit_admitted(submission, actor, None).await
    }

    /// Without `stop_on_error` (an EPCIS document captured with
    /// "proceed"), the commands go as one bulk stream (`submit_stream`):
    /// admitted in order and pipelined; with it, one after the other.
    async fn submit_many(
        &self,
        submissions: Vec<Submission>,
        actor: &str,
        stop_on_error: bool,
    ) -> Vec<Result<Receipt, EngineError>> {
        let me = match (stop_on_error, self.me.upgrade()) {
            (false, Some(me)) => me,
            _ => return crate::one_by_one(self, submissions, actor, stop_on_error).await,
        };
        let n = submissions.len();
        let (commands, taken) = tokio::sync::mpsc::channel(crate::STREAM_WINDOW);
        let (answered, mut answers) = tokio::sync::mpsc::channel(crate::STREAM_WINDOW);
        let send = async move {
            for s in submissions {
                if commands.send(Some(s)).await.is_err() {
                    return;
                }
            }
        };
        let collect = async move {
            let mut out = Vec::with_capacity(n);
            while let Some(answer) = answers.recv().await {
                out.extend(answer);
            }
            out
        };
        let ((), (), out) = tokio::join!(send, me.submit_stream(taken, actor.to_string(), answered), collect);
        out
    }

    /// The commands run side by side in this one task, admitted in order:
    /// the next is taken only once this one is sent (so one touching the
    /// same lots waits for it to be in the cache, and independent ones are
    /// pipelined); answers go out in order. At most `STREAM_WINDOW`
    /// commands are in flight. Once `answers` is closed, nothing more is
    /// read and what was read is still settled (recorded or not), unanswered.
    async fn submit_stream(
        self: Arc<Self>,
        mut commands: tokio::sync::mpsc::Receiver<Option<Submission>>,
        actor: String,
        answers: tokio::sync::mpsc::Sender<Option<Result<Receipt, EngineError>>>,
    ) {
        use futures_util::stream::{FuturesOrdered, StreamExt};
        type Answer = Option<Result<Receipt, EngineError>>;
        let mut running: FuturesOrdered<futures_util::future::BoxFuture<'static, Answer>> = FuturesOrdered::new();
        // Settled, waiting for room in `answers`: the commands in flight
        // go on settling (and releasing what other writers of this
        // instance wait for) however slowly the client reads.
        let mut ready: std::collections::VecDeque<Answer> = std::collections::VecDeque::new();
        // The newest command's admission: told once it is sent (or answered
        // without sending).
        let mut admission: Option<tokio::sync::oneshot::Receiver<()>> = None;
        let mut reading = true;
        let mut answering = true;
        loop {
            let take = reading && admission.is_none() && running.len() + ready.len() < crate::STREAM_WINDOW;
            tokio::select! {
                biased;
                room = answers.reserve(), if !ready.is_empty() => match room {
                    Ok(room) => {
                        if let Some(answer) = ready.pop_front() {
                            room.send(answer);
                        }
                    }
                    Err(_) => {
                        answering = false;
                        reading = false;
                        ready.clear();
                    }
                },
                Some(answer) = running.next(), if !running.is_empty() => {
                    if answering {
                        ready.push_back(answer);
                    }
                }
                _ = async {
                    if let Some(rx) = admission.as_mut() {
                        let _ = rx.await;
                    }
                }, if admission.is_some() => {
                    admission = None;
                }
                c = commands.recv(), if take => match c {
                    None => reading = false,
                    Some(None) => running.push_back(Box::pin(async { None })),
                    Some(Some(submission)) => {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        let (me, actor) = (self.clone(), actor.clone());
                        running.push_back(Box::pin(async move {
                            Some(me.submit_admitted(submission, &actor, Some(tx)).await)
                        }));
                        admission = Some(rx);
                    }
                },
                else => return,
            }
        }
    }
}

/// The trace service's view of the stream, for a projector: what it
/// applied came from the stream, so it is durable already. The batches
/// the projector of this process applied last are kept for its followers
/// (the alert follower's tail), which then read them instead of the stream.
#[derive(Clone)]
pub struct StreamView {
    log: JetStreamLog,
    last: Arc<AtomicU64>,
    recent: Arc<Recent>,
}

impl StreamView {
    pub fn new(log: JetStreamLog) -> StreamView {
        StreamView {
            log,
            last: Arc::new(AtomicU64::new(0)),
            recent: Arc::default(),
        }
    }
}

/// A batch as the projector read and decoded it.
type Batch = (Vec<StoredEvent>, Vec<crate::projector::Decoded>);

/// Events a projector keeps for the followers of its process (in the
/// batches it applied them in; the last batch is kept whatever its size).
const RECENT_EVENTS: usize = 8192;

/// The batches the projector applied last, each with the first position it
/// accounts for (the one after the previous batch's last: a sequence the
/// stream skipped between two batches belongs to the later one).
struct Recent {
    batches: Mutex<std::collections::VecDeque<(u64, Arc<Batch>)>>,
    /// The last position handed on, for followers waiting for more.
    handed: watch::Sender<u64>,
}

impl Default for Recent {
    fn default() -> Recent {
        Recent {
            batches: Mutex::default(),
            handed: watch::channel(0).0,
        }
    }
}

impl Recent {
    fn push(&self, batch: Arc<Batch>) {
        let (Some(first), Some(last)) = (batch.0.first(), batch.0.last()) else {
            return;
        };
        let (first, last) = (first.position, last.position);
        self.keep(first, last, batch);
        self.handed.send_replace(last);
    }

    fn keep(&self, first: u64, last: u64, batch: Arc<Batch>) {
        let mut recent = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        let from = match recent.back() {
            Some((_, b)) => match b.0.last() {
                Some(e) if e.position < first => e.position + 1,
                // Not after the previous batch: the projector started over.
                _ => {
                    recent.clear();
                    first
                }
            },
            None => first,
        };
        if last < from {
            return;
        }
        recent.push_back((from, batch));
        let mut kept: usize = recent.iter().map(|(_, b)| b.0.len()).sum();
        while recent.len() > 1 && kept.saturating_sub(recent.front().map_or(0, |(_, b)| b.0.len())) >= RECENT_EVENTS {
            kept -= recent.pop_front().map_or(0, |(_, b)| b.0.len());
        }
    }

    /// The last position of the batches kept, if any.
    fn newest(&self) -> Option<u64> {
        let recent = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        recent.back().and_then(|(_, b)| b.0.last()).map(|e| e.position)
    }

    /// The kept batch that accounts for `position`.
    fn covering(&self, position: u64) -> Option<Arc<Batch>> {
        let recent = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        recent
            .iter()
            .find(|(from, b)| *from <= position && b.0.last().is_some_and(|e| position <= e.position))
            .map(|(_, b)| b.clone())
    }
}

impl ReadLog for StreamView {
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

    fn lag(&self, applied: u64, end: u64) -> u64 {
        jejak_log::jetstream::message_of(end).saturating_sub(jejak_log::jetstream::message_of(applied))
    }

    /// Moves when the projector of this process hands a batch on.
    fn grown(&self) -> watch::Receiver<u64> {
        self.recent.handed.subscribe()
    }

    type Tail = StreamTail;

    fn tail(&self, from: u64, wanted: fn(&StoredEvent) -> bool) -> StreamTail {
        StreamTail {
            log: self.log.clone(),
            recent: self.recent.clone(),
            wanted,
            next: from.max(1),
            reader: None,
            held: std::collections::VecDeque::new(),
        }
    }
}

/// The stream's `Tail`. What the projector of its process applied last it
/// takes from those batches; anything older it reads with one consumer of
/// its own, a batch at a time, holding what that delivers beyond what the
/// follower may take yet for the next call.
pub struct StreamTail {
    log: JetStreamLog,
    recent: Arc<Recent>,
    wanted: fn(&StoredEvent) -> bool,
    next: u64,
    reader: Option<jejak_log::jetstream::Reader>,
    held: std::collections::VecDeque<StoredEvent>,
}

impl jejak_log::Tail for StreamTail {
    fn position(&self) -> u64 {
        self.next
    }

    async fn next_upto(&mut self, upto: u64, max: usize) -> Result<Vec<StoredEvent>, LogError> {
        let mut out = Vec::new();
        let mut read = 0;
        // From the projector's batches while they reach this far back.
        while read < max && self.next <= upto {
            let Some(batch) = self.recent.covering(self.next) else {
                break;
            };
            // What the consumer, if any, delivered or will is not needed.
            self.held.clear();
            self.reader = None;
            let from = self.next;
            let events = batch.0.iter().filter(|e| e.position >= from);
            for e in events.take_while(|e| e.position <= upto).take(max - read) {
                read += 1;
                self.next = e.position + 1;
                if (self.wanted)(e) {
                    out.push(e.clone());
                }
            }
            if self.next == from {
                // Only skipped sequences up to `upto`: nothing to move over.
                break;
            }
        }
        if read > 0 || upto < self.next || max == 0 {
            return Ok(out);
        }
        // Applied to the projection (by the capture cache sharing it, or
        // just before the projector kept its batch) but not yet handed on
        // by the projector: it will be, so wait for that rather than read
        // the stream again.
        if self.recent.newest().is_some_and(|newest| newest < self.next) {
            return Ok(out);
        }
        // Older than any of them: from the stream.
        if self.held.is_empty() {
            let next = self.next;
            let reader = match &mut self.reader {
                Some(r) if r.position() == next => r,
                slot => slot.insert(self.log.reader(next)),
            };
            let mut wait = Duration::from_millis(500);
            while self.held.len() < max.min(BATCH) && reader.position() <= upto {
                let batch = reader.next_batch(max.min(BATCH) - self.held.len(), wait).await?;
                if batch.is_empty() {
                    if self.held.is_empty() {
                        // The stream holds events up to `upto` (the caller
                        // saw them applied): a consumer that delivers none
                        // has stalled.
                        reader.restart();
                    }
                    break;
                }
                self.held.extend(batch);
                // Then what has arrived already.
                wait = Duration::ZERO;
            }
        }
        while read < max && self.held.front().is_some_and(|e| e.position <= upto) {
            if let Some(e) = self.held.pop_front() {
                read += 1;
                self.next = e.position + 1;
                if (self.wanted)(&e) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }
}

/// The batches a capture service's cache follower hands on to the
/// projector of its process (`DistributedWriter::start`), and that
/// projector's end of them (`run_projector`): one reading and decoding
/// of the stream for both, and one genealogy, the projector's projection,
/// which the cache applies each event to and the projector persists.
pub struct Forward {
    tx: tokio::sync::mpsc::Sender<Arc<Batch>>,
    projection: Arc<Projection>,
    /// What the projection and the projector's tree both hold already.
    stored: u64,
}

/// The projector's end of a `Forward`.
pub struct Feed(tokio::sync::mpsc::Receiver<Arc<Batch>>);

/// Batches a cache follower may be ahead of the projector it feeds.
const FEED_AHEAD: usize = 4;

/// A cache follower's batches for a projector of the same process, which
/// projects into `projection` and, with its tree, holds every position up
/// to `stored`: the follower reads from the first after them (the cache
/// takes the chain heads from the stream's subjects).
pub fn feed(projection: Arc<Projection>, stored: u64) -> (Forward, Feed) {
    let (tx, rx) = tokio::sync::mpsc::channel(FEED_AHEAD);
    (Forward { tx, projection, stored }, Feed(rx))
}

/// Applies the batches of `feed` until cancelled, as `follow` applies
/// those it reads.
async fn fed<F>(mut feed: Feed, cancel: CancellationToken, what: &'static str, mut apply: F) -> anyhow::Result<()>
where
    F: FnMut(Arc<Batch>) -> futures_util::future::BoxFuture<'static, anyhow::Result<()>>,
{
    loop {
        let batch = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            b = feed.0.recv() => b,
        };
        match batch {
            Some(batch) => {
                stop_unless_applied(apply(batch).await, what)?;
            }
            None if cancel.is_cancelled() => return Ok(()),
            None => anyhow::bail!("{what}: the capture cache's follower that fed it ended"),
        }
    }
}

/// The transparency log's tree a projector builds beside its projection,
/// from the same reading of the stream, and whom to tell its size.
pub struct TreeFeed {
    pub tree: Arc<jejak_log::tlog::TreeStore>,
    pub grown: watch::Sender<u64>,
}

/// Applies the stream to the projection from its stored position on, and
/// keeps `view` told of the stream's end (for the lag). The projection
/// stores the position it reached in the same sled batch as the changes, so
/// after a crash it resumes exactly there; what it re-reads, it skips.
/// With `tree`, each batch read and decoded once also extends the tree (in
/// the stream's order, from the tree's last leaf on: every projector builds
/// the same tree), beside the projection's apply. With `feed`, the batches
/// come from the capture cache of this process instead (from the stream's
/// start: what the projection and the tree have, they skip).
pub async fn run_projector(
    log: JetStreamLog,
    projection: Arc<Projection>,
    view: StreamView,
    tree: Option<TreeFeed>,
    feed: Option<Feed>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let last = view.last.clone();
    let recent = view.recent.clone();
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
    let tree = tree.map(Arc::new);
    // From the earlier of the two: each skips what it has.
    let from = projection
        .position()
        .min(tree.as_ref().map_or(u64::MAX, |t| t.tree.last_position()))
        + 1;
    // The tree is extended in a task of its own, in the stream's order, at
    // most `TREE_BEHIND` batches behind the projection: the two take turns
    // being the slower (the projection when it persists), and neither waits
    // for the other batch by batch.
    let (tree_tx, tree_task) = match tree {
        Some(t) => {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Arc<Batch>>(TREE_BEHIND);
            let task = tokio::spawn(async move {
                while let Some(batch) = rx.recv().await {
                    let t = t.clone();
                    let size = tokio::task::spawn_blocking(move || extend_tree(&t, &batch)).await??;
                    tracing::trace!(size, "transparency log tree extended");
                }
                anyhow::Ok(())
            });
            (Some(tx), Some(task))
        }
        None => (None, None),
    };
    let tree_task = Arc::new(tokio::sync::Mutex::new(tree_task));
    let tree_failed = tree_task.clone();
    let step = move |batch: Arc<Batch>| -> futures_util::future::BoxFuture<'static, anyhow::Result<()>> {
        let (projection, tree_tx, last, recent) = (target.clone(), tree_tx.clone(), last.clone(), recent.clone());
        let tree_failed = tree_failed.clone();
        Box::pin(async move {
            if batch.0.is_empty() {
                // Idle: write what is only in memory.
                return tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    if projection.unpersisted() > 0 {
                        projection.persist()?;
                    }
                    Ok(())
                })
                .await?;
            }
            let end = batch.0.last().map_or(0, |e| e.position);
            if let Some(tx) = tree_tx {
                if tx.send(batch.clone()).await.is_err() {
                    // The tree's task ended, so it failed: stop with its reason.
                    return Err(tree_ended(&tree_failed).await);
                }
            }
            let applying = batch.clone();
            tokio::task::spawn_blocking(move || projection.apply(&applied(&applying.1))).await??;
            last.fetch_max(end, Ordering::Relaxed);
            recent.push(batch);
            Ok(())
        })
    };
    let followed = match feed {
        None => follow(log, from, Skip::Nothing, cancel.clone(), "projector", step).await,
        Some(feed) => fed(feed, cancel.clone(), "projector", step).await,
    };
    // The tree finishes what it was given (the sender went with `follow`).
    let tree_done = tree_outcome(&tree_task).await;
    followed?;
    tree_done?;
    let projection = projection.clone();
    tokio::task::spawn_blocking(move || projection.flush())
        .await
        .context("projection flush task")?
        .context("flush the projection")?;
    Ok(())
}

/// Batches the projector's tree may be behind its projection.
const TREE_BEHIND: usize = 4;

/// Extends the tree with the batch's events after its last leaf; its size.
fn extend_tree(t: &TreeFeed, batch: &Batch) -> anyhow::Result<u64> {
    let after = t.tree.last_position();
    let leaves: Vec<(u64, Vec<u8>)> = batch
        .0
        .iter()
        .zip(&batch.1)
        .filter(|(e, _)| e.position > after)
        .map(|(e, d)| (e.position, jejak_log::tlog::leaf_of_decoded(e, &d.3)))
        .collect();
    let size = match leaves.is_empty() {
        true => t.tree.size(),
        false => t.tree.append(&leaves)?,
    };
    t.grown.send_replace(size);
    Ok(size)
}

type TreeTask = tokio::sync::Mutex<Option<tokio::task::JoinHandle<anyhow::Result<()>>>>;

/// How the tree's task ended, once it has (`Ok` too when there is none).
async fn tree_outcome(task: &TreeTask) -> anyhow::Result<()> {
    match task.lock().await.take() {
        Some(task) => match task.await {
            Ok(r) => r.context("extend the transparency log's tree"),
            Err(e) => Err(anyhow::anyhow!("the transparency log's tree task failed: {e}")),
        },
        None => Ok(()),
    }
}

/// Why the tree's task ended before the projection.
async fn tree_ended(task: &TreeTask) -> anyhow::Error {
    match tree_outcome(task).await {
        Err(e) => e,
        Ok(()) => anyhow::anyhow!("the transparency log's tree stopped"),
    }
}

/// Why a projector's projection does not follow from this stream, if it
/// does not (another stream of the same name, or one made again): the
/// event it applied last, by id and envelope hash, must be at the same
/// position of the stream, as its leader says.
pub async fn projection_disagreement(log: &JetStreamLog, projection: &Projection) -> anyhow::Result<Option<String>> {
    let (position, event, hash) = crate::offline::anchor(projection);
    if position == 0 {
        return Ok(None);
    }
    let at = log.read_from_leader(position).await?;
    Ok(crate::offline::differs(position, &event, hash, at))
}

/// Checks a projector's tree against the stream before it follows: a tree
/// whose last leaf is not the commitment of the stream's message at its
/// position (another stream) is emptied, to be built again from the start.
pub async fn check_tree(log: &JetStreamLog, tree: &Arc<jejak_log::tlog::TreeStore>) -> anyhow::Result<()> {
    if tree.size() == 0 {
        return Ok(());
    }
    let (position, data) = tree.entry(tree.size() - 1)?;
    let same = match log.read_from_leader(position).await? {
        Some(e) => jejak_log::tlog::leaf_of(e)? == data,
        None => false,
    };
    if !same {
        tracing::warn!(
            position,
            "the transparency log's tree does not end in the stream's event there; rebuilding it"
        );
        let t = tree.clone();
        tokio::task::spawn_blocking(move || t.clear()).await??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(positions: &[u64]) -> Arc<Batch> {
        let events = positions
            .iter()
            .map(|&position| StoredEvent {
                position,
                bytes: Vec::new(),
                hash: [0; 32],
                envelope: Default::default(),
            })
            .collect();
        Arc::new((events, Vec::new()))
    }

    fn first_of(b: Option<Arc<Batch>>) -> Option<u64> {
        b.and_then(|b| b.0.first().map(|e| e.position))
    }

    #[test]
    fn recent_batches_account_for_skipped_sequences_and_keep_only_the_last_few() {
        let recent = Recent::default();
        let mut handed = recent.handed.subscribe();
        assert_eq!(first_of(recent.covering(1)), None);
        assert_eq!(recent.newest(), None);
        recent.push(batch(&[1, 2, 3]));
        // Followers waiting for more are woken, and told how far it goes.
        assert!(handed.has_changed().unwrap_or(false));
        assert_eq!(*handed.borrow_and_update(), 3);
        assert_eq!(recent.newest(), Some(3));
        // 4 and 5 were skipped by the stream: the next batch accounts for them.
        recent.push(batch(&[6, 7]));
        assert_eq!((*handed.borrow_and_update(), recent.newest()), (7, Some(7)));
        assert_eq!(first_of(recent.covering(2)), Some(1));
        assert_eq!(first_of(recent.covering(4)), Some(6));
        assert_eq!(first_of(recent.covering(7)), Some(6));
        assert_eq!(first_of(recent.covering(8)), None);
        recent.push(batch(&[]));
        assert!(!handed.has_changed().unwrap_or(true), "an empty batch hands nothing on");
        for p in 8..=10 {
            recent.push(batch(&[p]));
        }
        assert_eq!(first_of(recent.covering(10)), Some(10));
        assert_eq!(first_of(recent.covering(2)), Some(1));
        // Batches are kept while those after them hold fewer than
        // `RECENT_EVENTS` events.
        let big: Vec<u64> = (11..11 + RECENT_EVENTS as u64 - 1).collect();
        recent.push(batch(&big));
        assert_eq!(first_of(recent.covering(10)), Some(10));
        assert_eq!(first_of(recent.covering(9)), None);
        assert_eq!(first_of(recent.covering(2)), None);
        assert_eq!(first_of(recent.covering(11)), Some(11));
        recent.push(batch(&[RECENT_EVENTS as u64 + 10]));
        assert_eq!(first_of(recent.covering(10)), None);
        assert_eq!(first_of(recent.covering(11)), Some(11));
        // A projector that starts over from earlier: what came before goes.
        recent.push(batch(&[3, 4]));
        assert_eq!(first_of(recent.covering(4)), Some(3));
        assert_eq!(first_of(recent.covering(9)), None);
    }

    /// The scenario's events as the stream would hold them, in messages of
    /// one, two and three events in turn (stream sequences 1..): each with
    /// its chain, chain sequence and a distinct hash.
    fn stream() -> Vec<(StoredEvent, crate::projector::Decoded)> {
        let mut sequences: HashMap<String, u64> = HashMap::new();
        let events = jejak_domain::scenario::rice_mill().events;
        let mut places = Vec::new();
        let mut message = 1u64;
        while places.len() < events.len() {
            let count = (message as usize - 1) % 3 + 1;
            places.extend((0..count).map(|index| jejak_log::jetstream::position(message, count, index)));
            message += 1;
        }
        events
            .into_iter()
            .zip(places)
            .enumerate()
            .map(|(i, ((id, event), position))| {
                let sequence = sequences.entry(event.chain().to_string()).or_default();
                *sequence += 1;
                let hash = *blake3::hash(id.as_bytes()).as_bytes();
                let stored = StoredEvent {
                    position,
                    bytes: Vec::new(),
                    hash,
                    envelope: jejak_proto::v1::Envelope {
                        chain: event.chain().to_string(),
                        sequence: *sequence,
                        ..Default::default()
                    },
                };
                let at = jejak_domain::Time::from_unix(1_700_000_000 + i as i64, 0).unwrap_or_default();
                (stored, (position, id, at, event, hash))
            })
            .collect()
    }

    fn delivered(events: &[(StoredEvent, crate::projector::Decoded)]) -> Batch {
        events.iter().cloned().unzip()
    }

    /// Event `i` of `events` applied as the capture's own.
    fn own(cache: &Cache, events: &[(StoredEvent, crate::projector::Decoded)], i: usize) {
        let (stored, decoded) = &events[i];
        let head = ChainHead {
            sequence: stored.envelope.sequence,
            hash: stored.hash,
            position: stored.position,
        };
        let message = jejak_log::jetstream::message_of;
        let first = i == 0 || message(events[i - 1].0.position) != message(stored.position);
        cache.apply_own(stored.envelope.chain.clone(), head, first, decoded.clone());
    }

    fn at(events: &[(StoredEvent, crate::projector::Decoded)], i: usize) -> u64 {
        events[i].0.position
    }

    /// What a cache holds, to compare two: its position, every chain head,
    /// and where it finds each event id.
    fn held(cache: &Cache, events: &[(StoredEvent, crate::projector::Decoded)]) -> impl PartialEq + std::fmt::Debug {
        let st = cache.state.read().unwrap_or_else(|e| e.into_inner());
        let mut heads: Vec<(String, ChainHead)> = st.heads.iter().map(|(c, h)| (c.clone(), *h)).collect();
        heads.sort_by(|a, b| a.0.cmp(&b.0));
        let g = cache.graph.read();
        let found: Vec<Option<u64>> = events.iter().map(|(_, d)| g.event_position(&d.1)).collect();
        (cache.position(), heads, found, st.ahead.len())
    }

    #[test]
    fn a_capture_cache_fed_its_own_events_out_of_order_and_the_stream_twice_holds_what_the_stream_alone_gives() {
        let events = stream();
        let n = events.len();
        assert!(n >= 10, "the scenario has {n} events");
        let expected = Cache::new(Graph::Own(Box::default()));
        expected.apply(&delivered(&events)).unwrap();
        assert_eq!(expected.position(), at(&events, n - 1));

        let cache = Cache::new(Graph::Own(Box::default()));
        // The acknowledgement of the third event (the second of message 2)
        // overtakes those of the first two: it waits until they are
        // applied; so does the first of message 2, the last of its message,
        // until message 1 is.
        own(&cache, &events, 2);
        assert_eq!(cache.position(), 0);
        own(&cache, &events, 0);
        assert_eq!(cache.position(), at(&events, 0));
        own(&cache, &events, 1);
        assert_eq!(cache.position(), at(&events, 2));
        // The follower then delivers the first five: what the cache has is
        // skipped, the 4th and 5th are applied, and an own 6th (the last
        // of their message) that was waiting too.
        own(&cache, &events, 5);
        cache.apply(&delivered(&events[..5])).unwrap();
        assert_eq!(cache.position(), at(&events, 5));
        // Own events beyond a gap the follower has not passed yet wait for
        // it (the second of message 5, and message 6's first, which follows
        // only the whole of message 5): once the stream delivers what comes
        // before them, they are applied.
        own(&cache, &events, 8);
        own(&cache, &events, 9);
        assert_eq!(cache.position(), at(&events, 5));
        cache.apply(&delivered(&events[6..8])).unwrap();
        assert_eq!(cache.position(), at(&events, 9));
        for i in 10..n {
            own(&cache, &events, i);
        }
        assert_eq!(held(&cache, &events), held(&expected, &events));
        // A late delivery of what is applied moves no chain head back.
        cache.apply(&delivered(&events[..n - 1])).unwrap();
        own(&cache, &events, 4);
        assert_eq!(held(&cache, &events), held(&expected, &events));
    }

    /// Shared with a projection opened at a stored position (a restart of
    /// `serve --nats`), the cache starts there with the stream's chain
    /// heads: it ends holding what a cache of its own would, the projection
    /// applies each event once, and what the cache applied is the
    /// projector's to persist.
    #[test]
    fn a_capture_cache_sharing_a_projection_opened_partway_holds_what_a_cache_of_its_own_would() {
        let events = stream();
        let n = events.len();
        let k = n / 2;
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let first = Projection::open(dir.path()).expect("open projection");
            first.apply(&applied(&delivered(&events[..k]).1)).expect("apply");
            first.persist().expect("persist");
            first.flush().expect("flush");
        }
        let projection = Arc::new(Projection::open(dir.path()).expect("reopen projection"));
        assert_eq!(projection.position(), at(&events, k - 1));
        let expected = Cache::new(Graph::Own(Box::default()));
        expected.apply(&delivered(&events)).expect("apply");

        let cache = Cache::new(Graph::Shared(projection.clone()));
        // Seeded with the chain heads as the stream held them a little
        // later (the stream moved on since the projection was stored), the
        // follower from after the projection's position, then the
        // capture's own events, one overtaking another.
        let mut heads: HashMap<String, ChainHead> = HashMap::new();
        for (e, _) in &events[..n - 5] {
            let head = ChainHead {
                sequence: e.envelope.sequence,
                hash: e.hash,
                position: e.position,
            };
            heads.insert(e.envelope.chain.clone(), head);
        }
        cache.seed(at(&events, k - 1), heads.into_iter().collect());
        assert_eq!(cache.position(), at(&events, k - 1));
        cache.apply(&delivered(&events[k..n - 3])).expect("apply");
        own(&cache, &events, n - 1);
        own(&cache, &events, n - 3);
        own(&cache, &events, n - 2);
        assert_eq!(held(&cache, &events), held(&expected, &events));
        let status = projection.status();
        assert_eq!((status.position, status.events), (at(&events, n - 1), n as u64));
        assert_eq!(projection.unpersisted(), (n - k) as u64);
        // The projector, fed the same batches, applies nothing twice.
        projection.apply(&applied(&delivered(&events).1)).expect("apply");
        projection.persist().expect("persist");
        assert_eq!(projection.persisted_position(), at(&events, n - 1));
        let status = projection.status();
        assert_eq!((status.position, status.events), (at(&events, n - 1), n as u64));
    }
}
