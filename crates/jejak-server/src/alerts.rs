//! Alerts as a server runs them: a follower derives each alert from the log
//! (`Reader::alert_of`) once the projection has applied its event, and
//! writes it with a delivery per matching webhook and the position followed
//! in one batch (`AlertStore`), so a killed server loses none and makes
//! none twice; a deliverer POSTs what is due (Standard Webhooks, `webhook`)
//! and retries on the schedule Standard Webhooks recommends, 0, 5 s, 5 min,
//! 30 min, 2 h, 5 h, 10 h and 10 h (27 h and more in all), recording each
//! attempt; `WatchAlerts` streams the stored alerts and then the new ones;
//! on NATS each alert is also published on `jejak.alerts.<party>`. Neither
//! task is on capture's path: a slow receiver delays only its own deliveries.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jejak_domain::Facts;
use jejak_log::alerts::{AlertStore, Followed, Hook, State};
use jejak_log::Tail as _;
use jejak_log::{ReadLog, StoredEvent};
use jejak_proto::v1 as p;
use jejak_read::{Reader, View};
use serde_json::Value;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

/// The delays between attempts, in units of the first retry's delay (5 s
/// by default): 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const SCHEDULE: [u32; 8] = [0, 1, 60, 360, 1440, 3600, 7200, 7200];

/// Deliveries in flight at once.
const IN_FLIGHT: usize = 64;
/// Deliveries in flight at once to one subscription: a receiver that
/// answers slowly (or not at all, until the deadline) holds at most these
/// of the slots, and the others' deliveries go on beside it.
const IN_FLIGHT_PER_HOOK: usize = 4;
/// How soon a delivery put back because its subscription had
/// `IN_FLIGHT_PER_HOOK` in flight is looked at again.
const HOOK_BUSY_WAIT_MS: i64 = 100;
/// Events the follower reads at once (at most 2,048 of them from a
/// stream's consumer of its own; see `StreamTail`).
const FOLLOW_BATCH: usize = 8192;
/// How long the follower waits, when it has followed all the projection
/// applied, for the log to say it grew (`ReadLog::grown`) before it looks
/// again anyway.
const FOLLOW_IDLE: Duration = Duration::from_secs(1);
/// The least time between two of the follower's rounds once woken: a log
/// that grows by a few events at a time (unary captures) is followed in
/// rounds of what came meanwhile, not a round (and a store write) each.
const FOLLOW_EVERY: Duration = Duration::from_millis(20);
/// Events the start's walk of the log keeps for the follower at most
/// (`AlertWalk`); past them, the follower reads the log.
const WALK_KEEP: usize = 32_768;
/// The follower's waits after a failure: doubling from the first to the
/// last, so that a lasting one is retried (and logged) every few seconds.
const FOLLOW_RETRY: (Duration, Duration) = (Duration::from_millis(20), Duration::from_secs(5));

#[derive(Debug, Clone, Copy)]
pub struct AlertConfig {
    /// The delay before the first retry; the later ones are multiples of it.
    pub retry_unit: Duration,
}

impl Default for AlertConfig {
    fn default() -> AlertConfig {
        AlertConfig {
            retry_unit: Duration::from_secs(5),
        }
    }
}

/// An alert as stored and streamed, with what it concerns indexed.
#[derive(Debug, Clone)]
pub struct Alert {
    pub position: u64,
    pub payload: Value,
    parties: HashSet<String>,
    facilities: HashSet<String>,
    lots: HashSet<String>,
    index: Index,
}

/// Where each party's, facility's and lot's entries are in the payload's
/// lists, so that a copy narrowed to one of 10,000 consignees costs its own
/// entries, not the whole alert.
#[derive(Debug, Clone, Default)]
struct Index {
    lots_by_owner: HashMap<String, Vec<usize>>,
    lots_by_facility: HashMap<String, Vec<usize>>,
    shipments_by_consignee: HashMap<String, Vec<usize>>,
    shipments_by_lot: HashMap<String, Vec<usize>>,
}

impl Alert {
    pub fn new(position: u64, payload: Value) -> Alert {
        let data = &payload["data"];
        let strings = |list: &str, key: &str| -> HashSet<String> {
            data[list]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| if key.is_empty() { v.as_str() } else { v[key].as_str() })
                .map(str::to_string)
                .collect()
        };
        let mut facilities = strings("affectedLots", "facility");
        facilities.extend(data["facility"].as_str().map(str::to_string));
        let mut index = Index::default();
        let positions = |list: &str, key: &str, into: &mut HashMap<String, Vec<usize>>| {
            for (i, v) in data[list].as_array().into_iter().flatten().enumerate() {
                if let Some(k) = v[key].as_str() {
                    into.entry(k.to_string()).or_default().push(i);
                }
            }
        };
        positions("affectedLots", "owner", &mut index.lots_by_owner);
        positions("affectedLots", "facility", &mut index.lots_by_facility);
        positions("shipments", "consignee", &mut index.shipments_by_consignee);
        positions("shipments", "lot", &mut index.shipments_by_lot);
        Alert {
            position,
            parties: strings("parties", ""),
            lots: strings("affectedLots", "lot"),
            facilities,
            index,
            payload,
        }
    }

    fn id(&self) -> &str {
        self.payload["data"]["alertId"].as_str().unwrap_or_default()
    }

    fn kind(&self) -> &str {
        self.payload["type"].as_str().unwrap_or_default()
    }

    /// Whether the alert concerns the caller of `view`: every alert for
    /// regulators and administrators; for others, alerts naming their
    /// party or reaching their facilities.
    pub fn concerns(&self, view: &View) -> bool {
        match view {
            View::Full => true,
            View::Public => false,
            View::Scoped { facilities, party, .. } => {
                party.as_ref().is_some_and(|p| self.parties.contains(p))
                    || facilities.iter().any(|f| self.facilities.contains(f))
            }
        }
    }

    fn reaches(&self, hook: &Hook) -> bool {
        hook.after < self.position
            && match (&hook.party, &hook.facility, &hook.lot) {
                (Some(party), _, _) => self.parties.contains(party),
                (_, Some(facility), _) => self.facilities.contains(facility),
                (_, _, Some(lot)) => self.lots.contains(lot),
                (None, None, None) => true,
            }
    }

    /// The payload as a party or facilities may see it: the lot, its
    /// reason, and of the lots and shipments downstream only theirs (the
    /// other consignees and owners are not theirs to know). `None`: all.
    pub fn narrowed(&self, party: Option<&str>, facilities: &[String]) -> Value {
        let empty = Vec::new();
        let data = &self.payload["data"];
        let all_lots = data["affectedLots"].as_array().unwrap_or(&empty);
        let all_shipments = data["shipments"].as_array().unwrap_or(&empty);
        let mut lots: Vec<usize> = party
            .and_then(|p| self.index.lots_by_owner.get(p))
            .cloned()
            .unwrap_or_default();
        for f in facilities {
            lots.extend(self.index.lots_by_facility.get(f).into_iter().flatten());
        }
        lots.sort_unstable();
        lots.dedup();
        let mut shipments: Vec<usize> = party
            .and_then(|p| self.index.shipments_by_consignee.get(p))
            .cloned()
            .unwrap_or_default();
        for &l in &lots {
            let lot = all_lots.get(l).and_then(|x| x["lot"].as_str()).unwrap_or_default();
            shipments.extend(self.index.shipments_by_lot.get(lot).into_iter().flatten());
        }
        shipments.sort_unstable();
        shipments.dedup();
        let mut narrowed = serde_json::Map::new();
        if let Some(fields) = data.as_object() {
            for (k, v) in fields {
                if !matches!(k.as_str(), "affectedLots" | "shipments" | "parties") {
                    narrowed.insert(k.clone(), v.clone());
                }
            }
        }
        narrowed.insert(
            "affectedLots".into(),
            lots.iter().filter_map(|&i| all_lots.get(i).cloned()).collect(),
        );
        narrowed.insert(
            "shipments".into(),
            shipments
                .iter()
                .filter_map(|&i| all_shipments.get(i).cloned())
                .collect(),
        );
        narrowed.insert("parties".into(), party.map(Value::from).into_iter().collect());
        let mut payload = serde_json::Map::new();
        if let Some(top) = self.payload.as_object() {
            for (k, v) in top {
                if k != "data" {
                    payload.insert(k.clone(), v.clone());
                }
            }
        }
        payload.insert("data".into(), Value::Object(narrowed));
        Value::Object(payload)
    }

    /// What a caller of `view` receives of it.
    pub fn for_view(&self, view: &View) -> Value {
        match view {
            View::Scoped { facilities, party, .. } => self.narrowed(party.as_deref(), facilities),
            _ => self.payload.clone(),
        }
    }

    /// What a webhook receives of it: a party's or a facility's part, or
    /// everything for a lot's or every alert's (administrators' own).
    fn for_hook(&self, hook: &Hook) -> Value {
        match (&hook.party, &hook.facility) {
            (Some(p), _) => self.narrowed(Some(p), &[]),
            (_, Some(f)) => self.narrowed(None, std::slice::from_ref(f)),
            _ => self.payload.clone(),
        }
    }

    pub fn message(&self, view: &View) -> p::AlertMessage {
        p::AlertMessage {
            position: self.position,
            alert_id: self.id().to_string(),
            r#type: self.kind().to_string(),
            json: self.for_view(view).to_string(),
        }
    }
}

fn now_ms() -> i64 {
    jejak_domain::Time::now().0 / 1_000_000
}

/// Deliveries waiting: (due, hook, alert), soonest first. The store's
/// records are the truth; this is rebuilt from them at start.
type Queue = std::collections::BTreeSet<(i64, String, u64)>;

/// Alerts of one server: its store, the follower and the deliverer.
pub struct Alerts<L: ReadLog> {
    store: AlertStore,
    reader: Reader<L>,
    config: AlertConfig,
    live: broadcast::Sender<Arc<Alert>>,
    wake: Notify,
    nats: Option<jejak_log::JetStreamLog>,
    hooks: Mutex<HashMap<String, Hook>>,
    queue: Mutex<Queue>,
    /// Cancelled when the server begins to shut down: watchers end.
    streams: CancellationToken,
    /// The follower's reader of the log, kept from one batch to the next.
    tail: tokio::sync::Mutex<Option<L::Tail>>,
    /// What the start's walk of the log kept for the follower, until it
    /// is followed.
    walked: Mutex<Option<AlertWalk>>,
}

/// What the start's walk of the whole log (`jejak_engine::offline::open_writer`)
/// keeps for the alert follower: every event after the alert store's
/// cursor that may raise an alert, and the position through which that is
/// all of them. A follower far behind (a new alert store on a big log) then
/// does not read those events again through the handle the log serves
/// from, which keeps what it reads resident (sled evicts little of a log's
/// few, large pages). At most `WALK_KEEP` are kept; the follower reads the
/// log for the rest.
pub struct AlertWalk {
    after: u64,
    through: u64,
    kept: VecDeque<StoredEvent>,
    keep: usize,
    full: bool,
}

impl AlertWalk {
    /// A walk for the follower of `store`, from its cursor on.
    pub fn new(store: &AlertStore) -> anyhow::Result<AlertWalk> {
        Ok(AlertWalk::keeping(store.cursor()?, WALK_KEEP))
    }

    fn keeping(after: u64, keep: usize) -> AlertWalk {
        AlertWalk {
            after,
            through: after,
            kept: VecDeque::new(),
            keep,
            full: false,
        }
    }

    /// Up to `max` of the kept events after `cursor`, none after `upto`,
    /// and the position through which they are every event that may raise
    /// an alert; `None` once the walk holds nothing after `cursor`.
    fn take(&mut self, cursor: u64, upto: u64, max: usize) -> Option<(Vec<StoredEvent>, u64)> {
        if self.through <= cursor {
            return None;
        }
        while self.kept.front().is_some_and(|e| e.position <= cursor) {
            self.kept.pop_front();
        }
        let upto = upto.min(self.through);
        let mut events = Vec::new();
        while events.len() < max.max(1) && self.kept.front().is_some_and(|e| e.position <= upto) {
            events.extend(self.kept.pop_front());
        }
        let more = self.kept.front().is_some_and(|e| e.position <= upto);
        let through = match events.last() {
            Some(last) if more => last.position,
            _ => upto.max(cursor),
        };
        Some((events, through))
    }
}

impl jejak_engine::offline::Walker for AlertWalk {
    fn see(&mut self, e: &StoredEvent) {
        if self.full || e.position <= self.after {
            return;
        }
        if jejak_read::alerts::may_raise(e) {
            if self.kept.len() >= self.keep {
                // The rest is the follower's to read.
                self.full = true;
                return;
            }
            self.kept.push_back(e.clone());
        }
        self.through = e.position;
    }
}

/// Opens the alert store in `dir`.
pub fn open_store(dir: &std::path::Path) -> anyhow::Result<AlertStore> {
    AlertStore::open(dir).map_err(|e| anyhow::anyhow!("open the alert store in {}: {e}", dir.display()))
}

/// A refusal of a webhook request.
pub enum HookError {
    Invalid(&'static str, String),
    NotFound(&'static str, String),
    Store(String),
}

impl<L: ReadLog> Alerts<L> {
    /// Opens the store in `dir` and starts following the log and delivering
    /// until `cancel`; watchers end at `streams`.
    pub fn start(
        dir: &std::path::Path,
        reader: Reader<L>,
        config: AlertConfig,
        nats: Option<jejak_log::JetStreamLog>,
        cancels: (&CancellationToken, &CancellationToken),
    ) -> anyhow::Result<Arc<Alerts<L>>> {
        Alerts::start_on(open_store(dir)?, None, reader, config, nats, cancels)
    }

    /// Starts on an opened store; the follower first takes what `walked`
    /// kept of the log.
    pub fn start_on(
        store: AlertStore,
        walked: Option<AlertWalk>,
        reader: Reader<L>,
        config: AlertConfig,
        nats: Option<jejak_log::JetStreamLog>,
        (cancel, streams): (&CancellationToken, &CancellationToken),
    ) -> anyhow::Result<Arc<Alerts<L>>> {
        let hooks = store.hooks()?.into_iter().map(|h| (h.id.clone(), h)).collect();
        let queue = store
            .pending()?
            .into_iter()
            .map(|d| (d.due_ms, d.hook, d.alert))
            .collect();
        let alerts = Arc::new(Alerts {
            store,
            reader,
            config,
            live: broadcast::channel(1024).0,
            wake: Notify::new(),
            nats,
            hooks: Mutex::new(hooks),
            queue: Mutex::new(queue),
            streams: streams.clone(),
            tail: tokio::sync::Mutex::new(None),
            walked: Mutex::new(walked),
        });
        tokio::spawn(alerts.clone().follow(cancel.clone()));
        tokio::spawn(alerts.clone().deliver(cancel.clone()));
        Ok(alerts)
    }

    fn hooks(&self) -> std::sync::MutexGuard<'_, HashMap<String, Hook>> {
        self.hooks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows the projection's position: each event's alert, with its
    /// deliveries, written with the position in one batch.
    async fn follow(self: Arc<Self>, cancel: CancellationToken) {
        let mut grown = self.reader.log().grown();
        let mut retry = FOLLOW_RETRY.0;
        loop {
            // Marked seen first: growth from here on wakes the wait below.
            grown.borrow_and_update();
            let round = tokio::time::Instant::now();
            let wait = match self.follow_some().await {
                Ok(true) => {
                    retry = FOLLOW_RETRY.0;
                    continue;
                }
                Ok(false) => {
                    retry = FOLLOW_RETRY.0;
                    None
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in_ms = retry.as_millis() as u64, "the alert follower failed");
                    let wait = retry;
                    retry = (retry * 2).min(FOLLOW_RETRY.1);
                    Some(wait)
                }
            };
            match wait {
                Some(wait) => tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                },
                None => {
                    // A log whose watch is gone (it never is while the log
                    // lives) is looked at every `FOLLOW_IDLE` only.
                    let changed = async {
                        if grown.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    };
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = changed => {}
                        _ = tokio::time::sleep(FOLLOW_IDLE) => {}
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep_until(round + FOLLOW_EVERY) => {}
                    }
                }
            }
        }
    }

    /// Follows up to `FOLLOW_BATCH` events, read in order by the follower's
    /// tail (which returns only those that may raise an alert); whether
    /// there may be more.
    async fn follow_some(&self) -> anyhow::Result<bool> {
        let cursor = self.store.cursor()?;
        let applied = self.reader.projection().position();
        if applied <= cursor {
            return Ok(false);
        }
        // The embedded engine applies an event before the log has made it
        // durable: an alert (sent to receivers, and a position followed)
        // never comes from an event a crash could still take back.
        self.reader.log().wait_durable(applied).await?;
        let (mut followed, mut raised, mut queued) = (Vec::new(), Vec::new(), Vec::new());
        let from_walk = {
            let mut walked = self.walked.lock().unwrap_or_else(|e| e.into_inner());
            let taken = walked.as_mut().and_then(|w| w.take(cursor, applied, FOLLOW_BATCH));
            if taken.is_none() {
                *walked = None;
            }
            taken
        };
        let (events, through) = if let Some(taken) = from_walk {
            taken
        } else {
            let mut tail = self.tail.lock().await;
            let tail = match tail.take() {
                Some(t) if t.position() == cursor + 1 => tail.insert(t),
                _ => tail.insert(self.reader.log().tail(cursor + 1, jejak_read::alerts::may_raise)),
            };
            let events = tail.next_upto(applied, FOLLOW_BATCH).await?;
            (events, tail.position().saturating_sub(1).min(applied))
        };
        if through <= cursor {
            return Ok(false);
        }
        for e in &events {
            let position = e.position;
            // An alert that could not be derived is tried again (the
            // follower's retry, with backoff), never skipped: a recall is
            // not dropped for a read that failed once.
            let alert = self
                .reader
                .alert_of(e)
                .await
                .map_err(|err| anyhow::anyhow!("derive the alert of the event at position {position}: {err}"))?
                .map(|r| Alert::new(position, r.payload));
            followed.push(Followed {
                position,
                alert: match &alert {
                    Some(a) => {
                        let reached: Vec<String> = self
                            .hooks()
                            .values()
                            .filter(|h| a.reaches(h))
                            .map(|h| h.id.clone())
                            .collect();
                        queued.extend(reached.iter().map(|h| (h.clone(), position)));
                        Some((serde_json::to_vec(&a.payload)?, reached))
                    }
                    None => None,
                },
            });
            raised.extend(alert);
        }
        let store = self.store.clone();
        let now = now_ms();
        tokio::task::spawn_blocking(move || store.follow(&followed, through, now)).await??;
        self.queue()
            .extend(queued.into_iter().map(|(hook, position)| (now, hook, position)));
        for alert in raised {
            tracing::info!(position = alert.position, kind = alert.kind(), lot = %alert.payload["data"]["lot"], "alert raised");
            if let Some(nats) = &self.nats {
                for party in &alert.parties {
                    let body = alert.narrowed(Some(party), &[]).to_string().into_bytes();
                    if let Err(e) = nats.publish_alert(party, body).await {
                        tracing::warn!(error = %e, party, "an alert could not be published on NATS");
                    }
                }
            }
            let _ = self.live.send(Arc::new(alert));
        }
        self.wake.notify_one();
        Ok(through < applied)
    }

    /// Sends what is due, each delivery on its own task.
    async fn deliver(self: Arc<Self>, cancel: CancellationToken) {
        let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        // Each subscription's deliveries in flight.
        let busy = crate::shares::Shares::<String>::default();
        let mut cache: Option<(u64, Arc<Alert>)> = None;
        loop {
            let now = now_ms();
            let due: Vec<(i64, String, u64)> = {
                let mut queue = self.queue();
                let mut due = Vec::new();
                while queue.first().is_some_and(|d| d.0 <= now) && due.len() < 4096 {
                    due.extend(queue.pop_first());
                }
                due
            };
            for (_, hook_id, position) in due {
                let Some(hook) = self.hooks().get(&hook_id).cloned() else {
                    continue;
                };
                let Ok(in_flight) = busy.take(hook_id.clone(), IN_FLIGHT_PER_HOOK) else {
                    // Not an attempt: looked at again once one ends.
                    self.queue().insert((now + HOOK_BUSY_WAIT_MS, hook_id, position));
                    continue;
                };
                let alert = match &cache {
                    Some((p, a)) if *p == position => a.clone(),
                    _ => match self.store.alert(position) {
                        Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                            Ok(payload) => {
                                let a = Arc::new(Alert::new(position, payload));
                                cache = Some((position, a.clone()));
                                a
                            }
                            Err(e) => {
                                tracing::error!(position, error = %e, "a stored alert does not parse");
                                continue;
                            }
                        },
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::error!(position, error = %e, "a stored alert cannot be read");
                            continue;
                        }
                    },
                };
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = me.attempt(&alert, &hook).await {
                        tracing::error!(error = %e, hook = %hook.id, "a webhook delivery could not be recorded");
                    }
                    drop(in_flight);
                    me.wake.notify_one();
                });
            }
            let next = self.queue().first().map_or(1000, |d| (d.0 - now_ms()).clamp(1, 1000));
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(u64::try_from(next).unwrap_or(1000))) => {}
            }
        }
    }

    /// One attempt, recorded: delivered on a 2xx, else queued again after
    /// the schedule's next delay, or failed after its last.
    async fn attempt(&self, alert: &Alert, hook: &Hook) -> anyhow::Result<()> {
        let Some(mut d) = self.store.delivery(&hook.id, alert.position)? else {
            return Ok(());
        };
        if d.state != State::Pending {
            return Ok(());
        }
        let body = alert.for_hook(hook).to_string().into_bytes();
        let id = alert.id().to_string();
        let timestamp = jejak_domain::Time::now().0 / 1_000_000_000;
        let signature = crate::webhook::signature(&hook.secret, &id, timestamp, &body)?;
        let headers = [
            ("webhook-id", id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        let outcome = crate::webhook::post(&hook.url, &headers, body.into()).await;
        d.attempts += 1;
        let now = now_ms();
        match outcome {
            Ok(status) if (200..300).contains(&status) => {
                d.state = State::Delivered;
                d.delivered_ms = Some(now);
                d.last = status.to_string();
            }
            other => {
                d.last = match other {
                    Ok(status) if (300..400).contains(&status) => format!("{status} (redirects are not followed)"),
                    Ok(status) => status.to_string(),
                    Err(why) => why,
                };
                match SCHEDULE.get(d.attempts as usize) {
                    Some(units) => {
                        let delay = self.config.retry_unit.saturating_mul(*units);
                        d.due_ms = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                    }
                    None => d.state = State::Failed,
                }
                tracing::warn!(hook = %hook.id, alert = d.alert, attempts = d.attempts, last = %d.last, "a webhook delivery failed");
            }
        }
        let store = self.store.clone();
        let record = d.clone();
        tokio::task::spawn_blocking(move || store.record(&record)).await??;
        if d.state == State::Pending {
            self.queue().insert((d.due_ms, d.hook, d.alert));
            self.wake.notify_one();
        }
        Ok(())
    }
}

/// What the admin and trace services ask of a server's alerts.
pub trait AlertApi: Send + Sync {
    /// Registers a webhook; its stored form and the secret as shown once.
    fn create_hook(&self, r: p::CreateWebhookRequest) -> Result<(Hook, String), HookError>;
    fn list_hooks(&self) -> Result<Vec<p::Webhook>, HookError>;
    fn delete_hook(&self, id: &str) -> Result<(), HookError>;
    /// The alerts that concern `view` after `after`: the stored ones, then
    /// each new one as it is raised, until the receiver goes away; an error
    /// ends the stream (the watcher asks again from the last it received).
    fn watch(self: Arc<Self>, view: View, after: u64) -> tokio::sync::mpsc::Receiver<Result<p::AlertMessage, String>>;
}

impl<L: ReadLog> AlertApi for Alerts<L> {
    fn create_hook(&self, r: p::CreateWebhookRequest) -> Result<(Hook, String), HookError> {
        let p::CreateWebhookRequest {
            url,
            party_id,
            facility_id,
            lot_id,
        } = r;
        crate::webhook::check_url(&url).map_err(|why| HookError::Invalid("url", why))?;
        let given = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let (party, facility, lot) = (given(party_id), given(facility_id), given(lot_id));
        if [&party, &facility, &lot].iter().filter(|x| x.is_some()).count() > 1 {
            return Err(HookError::Invalid(
                "party_id",
                "give at most one of party_id, facility_id and lot_id".into(),
            ));
        }
        {
            let g = self.reader.projection().read();
            if let Some(x) = party.as_ref().filter(|x| g.party(x).is_none()) {
                return Err(HookError::NotFound("party", x.clone()));
            }
            if let Some(x) = facility.as_ref().filter(|x| g.facility(x).is_none()) {
                return Err(HookError::NotFound("facility", x.clone()));
            }
            if let Some(x) = lot.as_ref().filter(|x| g.lot(x).is_none()) {
                return Err(HookError::NotFound("lot", x.clone()));
            }
        }
        let secret = crate::webhook::new_secret().map_err(|e| HookError::Store(e.to_string()))?;
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag).map_err(|e| HookError::Store(e.to_string()))?;
        let hook = Hook {
            id: format!("wh-{}", hex::encode(tag)),
            url,
            party,
            facility,
            lot,
            secret,
            after: self.store.cursor().map_err(|e| HookError::Store(e.to_string()))?,
            created_at: jejak_domain::Time::now().0 / 1_000_000_000,
        };
        self.store
            .add_hook(&hook)
            .map_err(|e| HookError::Store(e.to_string()))?;
        self.hooks().insert(hook.id.clone(), hook.clone());
        let shown = crate::webhook::shown_secret(&hook.secret);
        Ok((hook, shown))
    }

    fn list_hooks(&self) -> Result<Vec<p::Webhook>, HookError> {
        let store = |e: jejak_log::LogError| HookError::Store(e.to_string());
        let mut out = Vec::new();
        for h in self.store.hooks().map_err(store)? {
            let deliveries = self.store.deliveries(Some(&h.id)).map_err(store)?;
            let count = |s: State| deliveries.iter().filter(|d| d.state == s).count() as u64;
            let last = deliveries
                .iter()
                .filter(|d| d.attempts > 0)
                .max_by_key(|d| (d.alert, d.attempts))
                .map(|d| d.last.clone())
                .unwrap_or_default();
            out.push(p::Webhook {
                webhook_id: h.id.clone(),
                url: h.url.clone(),
                party_id: h.party.clone().unwrap_or_default(),
                facility_id: h.facility.clone().unwrap_or_default(),
                lot_id: h.lot.clone().unwrap_or_default(),
                created_at: Some(prost_types::Timestamp {
                    seconds: h.created_at,
                    nanos: 0,
                }),
                delivered: count(State::Delivered),
                pending: count(State::Pending),
                failed: count(State::Failed),
                last_attempt: last,
            });
        }
        Ok(out)
    }

    fn delete_hook(&self, id: &str) -> Result<(), HookError> {
        self.hooks().remove(id);
        self.queue().retain(|d| d.1 != id);
        match self.store.remove_hook(id) {
            Ok(true) => Ok(()),
            Ok(false) => Err(HookError::NotFound("webhook", id.to_string())),
            Err(e) => Err(HookError::Store(e.to_string())),
        }
    }

    fn watch(self: Arc<Self>, view: View, after: u64) -> tokio::sync::mpsc::Receiver<Result<p::AlertMessage, String>> {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let me = self;
        tokio::spawn(async move {
            let mut live = me.live.subscribe();
            let mut last = after;
            loop {
                // What is stored after the last one sent.
                let page = match me.store.alerts_after(last, 512) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "stored alerts could not be read");
                        let _ = tx
                            .send(Err(format!(
                                "the stored alerts after position {last} could not be read ({e}); watch again from there"
                            )))
                            .await;
                        return;
                    }
                };
                let more = page.len() == 512;
                // A watcher that left is noticed between pages, not only on
                // a send (a scoped token may be sent nothing for many).
                if tx.is_closed() {
                    return;
                }
                for (position, bytes) in page {
                    last = position;
                    let Ok(payload) = serde_json::from_slice(&bytes) else {
                        continue;
                    };
                    let alert = Alert::new(position, payload);
                    if alert.concerns(&view) && tx.send(Ok(alert.message(&view))).await.is_err() {
                        return;
                    }
                }
                if more {
                    tokio::task::yield_now().await;
                    continue;
                }
                // Then the new ones; a receiver that fell behind reads the store again.
                loop {
                    let next = tokio::select! {
                        _ = me.streams.cancelled() => return,
                        next = live.recv() => next,
                    };
                    match next {
                        Ok(alert) if alert.position <= last => {}
                        Ok(alert) => {
                            last = alert.position;
                            if alert.concerns(&view) && tx.send(Ok(alert.message(&view))).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert() -> Alert {
        Alert::new(
            9,
            json!({
                "type": "lot.recalled",
                "data": {
                    "alertId": "rc-1", "lot": "L1", "facility": "fac-a",
                    "affectedLots": [
                        { "lot": "L1", "owner": "ukm-1", "facility": "fac-a" },
                        { "lot": "L2", "owner": "ukm-2", "facility": "fac-b" },
                    ],
                    "shipments": [
                        { "lot": "L2", "consignee": "cus-1" },
                        { "lot": "L2", "consignee": "cus-2" },
                    ],
                    "parties": ["cus-1", "cus-2", "ukm-1", "ukm-2"],
                }
            }),
        )
    }

    /// An event at `position`: a status change (which may raise an alert)
    /// or a receipt (which never does).
    fn stored(position: u64, raises: bool) -> StoredEvent {
        use p::event::Kind;
        let kind = if raises {
            Kind::LotStatusChanged(p::LotStatusChanged::default())
        } else {
            Kind::MaterialReceived(p::MaterialReceived::default())
        };
        StoredEvent {
            position,
            bytes: Vec::new(),
            hash: [0; 32],
            envelope: p::Envelope {
                event: Some(p::Event { kind: Some(kind) }),
                ..Default::default()
            },
        }
    }

    fn positions(taken: Option<(Vec<StoredEvent>, u64)>) -> Option<(Vec<u64>, u64)> {
        taken.map(|(events, through)| (events.iter().map(|e| e.position).collect(), through))
    }

    /// The walk keeps what may raise after the cursor, and hands it out in
    /// batches that each say through where they account for everything;
    /// once full it stops where what it kept is still complete, and the
    /// follower reads the log from there.
    #[test]
    fn the_walk_keeps_what_may_raise_after_the_cursor_and_says_through_where() {
        use jejak_engine::offline::Walker;
        let mut walk = AlertWalk::keeping(3, 3);
        for position in 1..=20 {
            walk.see(&stored(position, position % 4 == 0));
        }
        // Kept 4, 8, 12; 16 found it full, so it is complete through 15.
        assert_eq!(walk.through, 15);
        assert_eq!(positions(walk.take(3, 20, 2)), Some((vec![4, 8], 8)));
        // Not past what the projection applied.
        assert_eq!(positions(walk.take(8, 10, 2)), Some((vec![], 10)));
        assert_eq!(positions(walk.take(10, 20, 2)), Some((vec![12], 15)));
        assert_eq!(positions(walk.take(15, 20, 2)), None);

        // A cursor at the log's end: nothing kept, nothing to take.
        let mut walk = AlertWalk::keeping(20, 3);
        for position in 1..=20 {
            walk.see(&stored(position, true));
        }
        assert_eq!(positions(walk.take(20, 20, 8)), None);

        // Nothing that may raise: the whole walk in one round.
        let mut walk = AlertWalk::keeping(0, 3);
        for position in 1..=20 {
            walk.see(&stored(position, false));
        }
        assert_eq!(positions(walk.take(0, 20, 8)), Some((vec![], 20)));
        assert_eq!(positions(walk.take(20, 20, 8)), None);
    }

    fn hook(party: Option<&str>, facility: Option<&str>, after: u64) -> Hook {
        Hook {
            id: "wh".into(),
            url: "https://x.example/".into(),
            party: party.map(Into::into),
            facility: facility.map(Into::into),
            lot: None,
            secret: String::new(),
            after,
            created_at: 0,
        }
    }

    #[test]
    fn a_party_or_facility_receives_only_its_part_of_an_alert() {
        let a = alert();
        let buyer = a.for_hook(&hook(Some("cus-1"), None, 0));
        assert_eq!(
            buyer["data"]["shipments"],
            json!([{ "lot": "L2", "consignee": "cus-1" }])
        );
        assert_eq!(buyer["data"]["affectedLots"], json!([]));
        assert_eq!(buyer["data"]["parties"], json!(["cus-1"]));
        assert_eq!(
            buyer["data"]["lot"], "L1",
            "what was recalled is every recipient's to know"
        );
        let plant = a.for_hook(&hook(None, Some("fac-b"), 0));
        assert_eq!(plant["data"]["affectedLots"].as_array().map(Vec::len), Some(1));
        assert_eq!(plant["data"]["shipments"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            a.for_hook(&hook(None, None, 0)),
            a.payload,
            "an administrator's hook: all of it"
        );
    }

    #[test]
    fn a_hook_is_reached_by_alerts_after_it_and_about_its_party_or_facility() {
        let a = alert();
        assert!(a.reaches(&hook(Some("cus-2"), None, 0)));
        assert!(!a.reaches(&hook(Some("cus-3"), None, 0)));
        assert!(a.reaches(&hook(None, Some("fac-b"), 0)));
        assert!(!a.reaches(&hook(None, Some("fac-c"), 0)));
        assert!(!a.reaches(&hook(None, None, 9)), "registered after the alert's event");
        let member = View::Scoped {
            who: "member".into(),
            facilities: Arc::from(Vec::<String>::new()),
            party: Some("ukm-2".into()),
        };
        assert!(a.concerns(&member));
        assert_eq!(
            a.for_view(&member)["data"]["affectedLots"].as_array().map(Vec::len),
            Some(1)
        );
        assert!(!a.concerns(&View::Public));
    }

    #[test]
    fn a_subscription_has_at_most_its_share_in_flight_and_gets_it_back_as_each_ends() {
        let busy = crate::shares::Shares::default();
        let take = |hook: &str| busy.take(hook.to_string(), IN_FLIGHT_PER_HOOK).ok();
        let mut held: Vec<_> = (0..IN_FLIGHT_PER_HOOK)
            .map(|_| take("wh-slow").expect("a place"))
            .collect();
        assert!(take("wh-slow").is_none(), "no more than its share");
        let other = take("wh-good").expect("another subscription goes on");
        held.pop();
        held.push(take("wh-slow").expect("a place once one ended"));
        assert!(take("wh-slow").is_none(), "its share again");
        drop((held, other));
        assert!(busy.is_empty(), "nothing in flight");
    }
}
