//! Every question the read side answers, narrowed for the caller by its
//! [`View`]: traces, origin shares, lot histories, lots, label lookups,
//! exports of the log, and the provenance of a label. Each answer is given
//! only once what it was read from is durable: the embedded write path
//! applies events to the genealogy before the log's flush, and nobody may
//! see an event a crash could still take back.

use std::sync::Arc;

use jejak_domain::read::{HistoryEntry, LabelLookup, LotHistory, LotView, OriginShares, Trace, VoidedBy};
use jejak_domain::{ExportQuery, HistoryQuery, LabelQuery, Target, Time, TraceQuery};
use std::sync::atomic::{AtomicBool, Ordering};

use jejak_genealogy::{Genealogy, Projection, TraceLimits};
use jejak_log::{ReadLog, StoredEvent};
use jejak_proto::v1 as p;

use crate::provenance::{self, Provenance};
use crate::{ReadError, View};

/// Most entries one export batch reads from the log.
const EXPORT_BATCH: usize = 256;

/// The log as stored, read in batches as the client takes them.
pub type LogStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<p::StoredEnvelope, ReadError>> + Send + 'static>>;

/// The log as a stream of history entries, read in batches as the client takes them.
pub type ExportStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<p::HistoryEntry, ReadError>> + Send + 'static>>;

/// The read side over one projection and the log it follows.
pub struct Reader<L> {
    projection: Arc<Projection>,
    log: L,
    limits: TraceLimits,
    /// Queries that walk the genealogy (traces, shares, pages) run at most
    /// this many at once, one core fewer than the machine has: however many
    /// callers ask for large traces, a core stays for captures and health
    /// checks. A waiting query is dropped at its deadline.
    walkers: Arc<tokio::sync::Semaphore>,
    /// The transparency log, for provenance bundles.
    transparency: Option<jejak_log::tlog::Transparency>,
}

impl<L: Clone> Clone for Reader<L> {
    fn clone(&self) -> Reader<L> {
        Reader {
            projection: self.projection.clone(),
            log: self.log.clone(),
            limits: self.limits,
            walkers: self.walkers.clone(),
            transparency: self.transparency.clone(),
        }
    }
}

/// Sets its flag when dropped: the request that started a query is gone.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How many genealogy walks may run at once: all cores but one (at least one).
fn walkers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

fn recorded_at(e: &StoredEvent) -> Option<Time> {
    // Stored by the server itself: out of range only for a corrupt record.
    jejak_proto::time_from_proto(e.envelope.recorded_at, "recorded_at")
        .ok()
        .flatten()
}

/// What a label names, for drawing it: product name, GTIN, lot, serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelText {
    pub product_name: String,
    pub gtin: String,
    pub lot_id: String,
    pub serial: Option<String>,
}

impl<L: ReadLog> Reader<L> {
    pub fn new(projection: Arc<Projection>, log: L, limits: TraceLimits) -> Reader<L> {
        Reader {
            projection,
            log,
            limits,
            walkers: Arc::new(tokio::sync::Semaphore::new(walkers())),
            transparency: None,
        }
    }

    /// This reader with the transparency log its bundles prove against.
    pub fn with_transparency(mut self, t: jejak_log::tlog::Transparency) -> Reader<L> {
        self.transparency = Some(t);
        self
    }

    pub fn transparency(&self) -> Option<&jejak_log::tlog::Transparency> {
        self.transparency.as_ref()
    }

    pub(crate) fn limits(&self) -> TraceLimits {
        self.limits
    }

    pub fn projection(&self) -> &Arc<Projection> {
        &self.projection
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    /// Runs `f` on the blocking pool, never on the async workers, so a
    /// large trace cannot stall health checks and captures; at most
    /// `walkers` at once. `f` is told whether its request still waits: once
    /// the request's future is dropped (its deadline passed, or the client
    /// left), long work stops.
    pub(crate) async fn off_workers<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Projection, &dyn Fn() -> bool) -> T + Send + 'static,
    ) -> Result<T, ReadError> {
        let permit = self
            .walkers
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ReadError::Interrupted(e.to_string()))?;
        let gone = Arc::new(AtomicBool::new(false));
        let _on_drop = SetOnDrop(gone.clone());
        let projection = self.projection.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&projection, &|| gone.load(Ordering::Relaxed))
        })
        .await
        .map_err(|e| ReadError::Interrupted(e.to_string()))
    }

    /// A query answered under the genealogy's read lock, off the async
    /// workers; with the position it was read at.
    pub(crate) async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Genealogy) -> T + Send + 'static,
    ) -> Result<(T, u64), ReadError> {
        self.off_workers(move |projection, _| {
            let g = projection.read();
            (f(&g), g.position())
        })
        .await
    }

    pub(crate) async fn visible(&self, position: u64) -> Result<(), ReadError> {
        Ok(self.log.wait_durable(position).await?)
    }

    /// The root lot of a trace must be one the caller sees in full; the
    /// rest of the trace is narrowed to what the caller may see.
    fn narrow_trace(view: &View, reply: Trace, what: &'static str) -> Result<Trace, ReadError> {
        if let Some(root) = reply.nodes.iter().map(|n| &n.lot).find(|l| l.lot_id == reply.root) {
            view.require(root, what)?;
        }
        Ok(view.trace(reply))
    }

    /// Every input lot of `target`, down to the receipts.
    pub async fn backward_trace(&self, view: &View, q: &TraceQuery) -> Result<Trace, ReadError> {
        self.trace(view, q, true).await
    }

    /// Every lot, package and consignee `target` reached.
    pub async fn forward_trace(&self, view: &View, q: &TraceQuery) -> Result<Trace, ReadError> {
        self.trace(view, q, false).await
    }

    async fn trace(&self, view: &View, q: &TraceQuery, backward: bool) -> Result<Trace, ReadError> {
        let (q, limits, view) = (q.clone(), self.limits.with_max_nodes(q.max_nodes), view.clone());
        let (reply, position) = self
            .query(move |g| {
                let (trace, what) = match backward {
                    true => (g.backward_trace(&q.target, q.max_depth, limits)?, "backward trace"),
                    false => (g.forward_trace(&q.target, q.max_depth, limits)?, "forward trace"),
                };
                Self::narrow_trace(&view, trace, what)
            })
            .await?;
        self.visible(position).await?;
        reply
    }

    /// Which UKM and suppliers a lot comes from, in exact proportions.
    pub async fn origin_shares(&self, view: &View, target: &Target) -> Result<OriginShares, ReadError> {
        let (target, limits, view) = (target.clone(), self.limits, view.clone());
        let (shares, position) = self
            .off_workers(move |projection, gone| {
                // Copied out under the lock; computed (exact shares of a long
                // chain take long) without it.
                let (input, position) = {
                    let g = projection.read();
                    let input = g.share_input(&target, limits)?;
                    view.require(&g.get_lot_for(input.lot_id(), &|_, _, _| false)?, "origin shares")?;
                    (input, g.position())
                };
                let exact = view.sees_all(&mut input.parties());
                Ok::<_, ReadError>((input.shares(exact, gone)?, position))
            })
            .await??;
        self.visible(position).await?;
        Ok(shares)
    }

    /// Every event that touched a lot, corrections marked, as of a time.
    pub async fn lot_history(&self, view: &View, q: HistoryQuery) -> Result<LotHistory, ReadError> {
        let HistoryQuery { lot_id, as_of } = q;
        let (positions, position) = {
            let g = self.projection.read();
            let positions = g.history_positions(&lot_id)?;
            view.require(&g.get_lot_for(&lot_id, &|_, _, _| false)?, "history")?;
            (positions, g.position())
        };
        self.visible(position).await?;
        let mut entries = Vec::with_capacity(positions.len());
        let mut pace = Pacer::default();
        for pos in positions {
            pace.step().await;
            let e = self.log.read(pos).await?.ok_or(ReadError::Missing(pos))?;
            if as_of.is_some_and(|a| recorded_at(&e) > Some(a)) {
                continue;
            }
            let (voided_by, reason, void_pos) = {
                let g = self.projection.read();
                match g.voided_by(&e.envelope.event_id) {
                    Some((id, reason)) => {
                        let pos = g.event_position(&id);
                        (id, reason, pos)
                    }
                    None => (String::new(), String::new(), None),
                }
            };
            // A correction recorded after `as_of` was not yet known then.
            let mut voided = !voided_by.is_empty();
            if let (true, Some(a), Some(vp)) = (voided, as_of, void_pos) {
                let void_time = self.log.read(vp).await?.map(|v| recorded_at(&v));
                if void_time.is_some_and(|t| t > Some(a)) {
                    voided = false;
                }
            }
            let voided_by = voided.then_some(VoidedBy {
                event_id: voided_by,
                reason,
            });
            entries.push(history_entry(e, voided_by)?);
        }
        let entries = if matches!(view, View::Full) {
            entries
        } else {
            let lots: std::collections::HashSet<&str> = entries.iter().flat_map(|e| e.event.lots()).collect();
            let seen: std::collections::HashSet<String> = {
                let g = self.projection.read();
                lots.into_iter()
                    .filter(|l| g.lot_parties(l).is_some_and(|(f, o, s)| view.sees_ids(f, o, s)))
                    .map(str::to_string)
                    .collect()
            };
            view.history(entries, &|lot| seen.contains(lot))
        };
        Ok(LotHistory { lot_id, entries })
    }

    /// One lot, as the caller may see it.
    pub async fn lot(&self, view: &View, lot_id: &str) -> Result<LotView, ReadError> {
        let (reply, position) = {
            let g = self.projection.read();
            (g.get_lot_for(lot_id, &|f, o, s| view.sees_ids(f, o, s)), g.position())
        };
        self.visible(position).await?;
        Ok(view.lot(reply?))
    }

    /// What a label URI names, its lot as the caller may see it.
    pub async fn lookup_label(&self, view: &View, q: &LabelQuery) -> Result<LabelLookup, ReadError> {
        let (reply, position) = {
            let g = self.projection.read();
            (
                g.lookup_link_for(&q.link, &|f, o, s| view.sees_ids(f, o, s)),
                g.position(),
            )
        };
        self.visible(position).await?;
        Ok(view.label(reply?))
    }

    /// Log and applied positions, lots and events.
    pub async fn status(&self) -> Result<p::StatusReply, ReadError> {
        // The log's end first: an applied position read after it is never
        // reported ahead of it, and a lag of 0 means caught up with the log.
        let log_position = self.log.current_position().await?;
        let s = self.projection.status();
        // Applied and durable: the embedded genealogy may hold a few events
        // the log is still flushing.
        let applied_position = s.position.min(log_position);
        Ok(p::StatusReply {
            log_position,
            applied_position,
            lots: s.lots,
            events: s.events,
            lag: self.log.lag(applied_position, log_position),
        })
    }

    /// The log from `from_position` on (at most `limit` entries, 0: all),
    /// read in batches as the client takes them. Only callers that see
    /// everything may export (checked by the caller's need).
    pub async fn export(&self, q: ExportQuery) -> Result<ExportStream, ReadError> {
        self.export_as(q, export_entry).await
    }

    /// The log's envelopes exactly as stored, in the same batches.
    pub async fn export_log(&self, q: ExportQuery) -> Result<LogStream, ReadError> {
        self.export_as(q, stored_entry).await
    }

    async fn export_as<T: Send + 'static>(
        &self,
        q: ExportQuery,
        entry: fn(StoredEvent) -> T,
    ) -> Result<std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, ReadError>> + Send + 'static>>, ReadError>
    {
        let ExportQuery { from_position, limit } = q;
        let end = self.log.current_position().await?;
        let from = from_position.max(1);
        let last = match limit {
            0 => end,
            n => end.min(from.saturating_add(n - 1)),
        };
        let log = self.log.clone();
        let stream = futures_util::stream::unfold(from, move |next| {
            let log = log.clone();
            async move {
                if next > last {
                    return None;
                }
                let upto = last.min(next + EXPORT_BATCH as u64 - 1);
                let mut batch = Vec::with_capacity((upto - next + 1) as usize);
                for pos in next..=upto {
                    match log.read(pos).await {
                        Ok(Some(e)) => batch.push(Ok(entry(e))),
                        Ok(None) => {
                            batch.push(Err(ReadError::Missing(pos)));
                            return Some((futures_util::stream::iter(batch), u64::MAX));
                        }
                        Err(e) => {
                            batch.push(Err(ReadError::Log(e)));
                            return Some((futures_util::stream::iter(batch), u64::MAX));
                        }
                    }
                }
                Some((futures_util::stream::iter(batch), upto + 1))
            }
        });
        use futures_util::StreamExt;
        Ok(Box::pin(stream.flatten()))
    }

    /// The public story of a label (a Digital Link path under any prefix):
    /// drafted from the genealogy under its read lock, completed from the
    /// labelled lot's events in the log, answered only once all of it is
    /// durable. Label URIs in it are under `base`.
    pub async fn provenance(&self, path: &str, base: &str) -> Result<Provenance, ReadError> {
        let (path, base) = (path.to_string(), base.to_string());
        let (draft, position) = self.query(move |g| provenance::draft(g, &path, &base)).await?;
        self.visible(position).await?;
        let draft = draft?;
        let mut events = Vec::with_capacity(draft.history.len());
        for &pos in &draft.history {
            events.push(self.log.read(pos).await?.ok_or(ReadError::Missing(pos))?);
        }
        let mut page = provenance::finish(draft, &events);
        if let Some(t) = &self.transparency {
            page.verifiable = t.published().map(|p| provenance::Verifiable {
                tree_size: p.checkpoint.size,
                signed_at: provenance::Stamp(p.signed_at.saturating_mul(1_000_000_000)),
                witnesses: p.cosigners.len(),
                log_key: t.log_key.vkey(),
            });
        }
        Ok(page)
    }

    /// What a label shows in print: public for any existing lot or package.
    pub async fn label_text(&self, path: &str) -> Result<LabelText, ReadError> {
        let (found, position) = {
            let g = self.projection.read();
            (g.lookup_label_for(path, &|_, _, _| false), g.position())
        };
        self.visible(position).await?;
        let l = found?;
        Ok(LabelText {
            product_name: l.lot.product.name,
            gtin: l.link.gtin.as_str().to_string(),
            lot_id: l.link.lot,
            serial: l.link.serial,
        })
    }
}

/// A stored envelope as a lot's history tells it.
fn history_entry(e: StoredEvent, voided_by: Option<VoidedBy>) -> Result<HistoryEntry, ReadError> {
    let position = e.position;
    let recorded_at = recorded_at(&e);
    let env = e.envelope;
    let event = env
        .event
        .ok_or(ReadError::Unreadable {
            position,
            problem: "the envelope has no event".into(),
        })
        .and_then(|ev| {
            jejak_proto::decode_event(ev).map_err(|err| ReadError::Unreadable {
                position,
                problem: err.to_string(),
            })
        })?;
    Ok(HistoryEntry {
        position,
        event_id: env.event_id,
        chain: env.chain,
        sequence: env.sequence,
        recorded_at,
        actor: env.actor,
        event,
        voided_by,
        hash: e.hash,
    })
}

/// A stored envelope with its exact bytes and chain link.
fn stored_entry(e: StoredEvent) -> p::StoredEnvelope {
    p::StoredEnvelope {
        position: e.position,
        chain: e.envelope.chain,
        sequence: e.envelope.sequence,
        prev_hash: e.envelope.prev_hash,
        envelope: e.bytes,
        hash: e.hash.to_vec(),
    }
}

/// A stored envelope exported as it is (corrections are not marked: the
/// export is the log itself, voids included).
fn export_entry(e: StoredEvent) -> p::HistoryEntry {
    p::HistoryEntry {
        position: e.position,
        hash: hex::encode(e.hash),
        event_id: e.envelope.event_id,
        chain: e.envelope.chain,
        sequence: e.envelope.sequence,
        recorded_at: e.envelope.recorded_at,
        actor: e.envelope.actor,
        event: e.envelope.event,
        voided: false,
        voided_by: String::new(),
        void_reason: String::new(),
    }
}

/// Steps of a long loop of log reads between two yields to the runtime.
pub(crate) const PACE: u32 = 64;

/// Paces a loop of log reads on an async worker: a read of the embedded
/// log is synchronous under its async signature, so a loop of thousands of
/// them (a bundle, a scan, a lot's history, a filing) would hold its worker
/// until it ended. Every [`PACE`] steps it lets the worker's other tasks run,
/// and a request dropped meanwhile (its deadline passed, its client left)
/// stops there.
#[derive(Default)]
pub(crate) struct Pacer(u32);

impl Pacer {
    pub(crate) async fn step(&mut self) {
        self.0 = self.0.wrapping_add(1);
        if self.0 % PACE == 0 {
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod pacer_tests {
    use super::{Pacer, PACE};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test(flavor = "current_thread")]
    async fn a_paced_loop_lets_the_other_tasks_of_its_thread_run() {
        let ran = Arc::new(AtomicBool::new(false));
        let other = ran.clone();
        tokio::spawn(async move { other.store(true, Ordering::Relaxed) });
        let mut pace = Pacer::default();
        for _ in 1..PACE {
            pace.step().await;
        }
        assert!(!ran.load(Ordering::Relaxed), "no yield before {PACE} steps");
        pace.step().await;
        assert!(ran.load(Ordering::Relaxed), "the other task ran at step {PACE}");
    }
}
