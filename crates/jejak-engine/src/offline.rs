//! A data directory as the embedded engine keeps it (`log/`, `genealogy/`):
//! opening it for serving, and the tools that work on a stopped server,
//! `rebuild`, `verify` and `restore`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use jejak_domain::SharedClock;
use jejak_genealogy::Projection;
use jejak_log::{EventLog, LogError, SledLog};

use crate::Writer;

/// Opens (and loads) the projection stored in `dir`, its records grouped
/// as `chunking` says (by position for the embedded log, whose positions
/// count its events; by order for a stream's).
pub async fn open_projection(dir: &Path, chunking: jejak_genealogy::Chunking) -> anyhow::Result<Arc<Projection>> {
    let open_dir = dir.to_path_buf();
    let projection = tokio::task::spawn_blocking(move || Projection::open_chunked(&open_dir, chunking))
        .await
        .context("projection open task")?
        .with_context(|| format!("open the projection in {}", dir.display()))?;
    Ok(Arc::new(projection))
}

/// Opens the log (checking the chains from the last verified point on, and
/// walking all of it for `LogAudit` and `also`) and, meanwhile, the
/// projection; brings the projection up to the log, and returns the writer
/// over both.
pub async fn open_writer<W: Walker>(
    data_dir: &Path,
    clock: SharedClock,
    mut also: W,
) -> anyhow::Result<(Arc<Writer<SledLog>>, LogAudit, W)> {
    let log_dir = data_dir.join("log");
    let dir = log_dir.clone();
    let proj_dir = data_dir.join("genealogy");
    // The log is walked whole on a handle of its own (see
    // `SledLog::open_walked`) while the projection loads.
    let opening = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut tokens = LogTokens::default();
        SledLog::open_walked(&dir, &mut |e| {
            tokens.see(e);
            also.see(e);
        })
        .map(|(log, verified)| (log, verified, tokens, also, started.elapsed()))
    });
    let (opened, projection) = tokio::join!(
        opening,
        open_projection(&proj_dir, jejak_genealogy::Chunking::Positions)
    );
    let (log, verified, mut tokens, also, took) = opened
        .context("open the event log task")?
        .map_err(|e| open_log_error(e, data_dir))?;
    tokens.close(&log.chain_heads());
    if let Some(why) = tokens.broken() {
        tracing::error!(
            problem = why,
            "the access chain of the event log is broken: only the tokens recorded before the break are honoured; restore the log from a backup"
        );
    }
    let audit = LogAudit {
        tokens: tokens.finish()?,
        verified,
        took,
    };
    let mut projection = projection?;
    let check = log.start_check();
    tracing::info!(
        from = check.from,
        envelopes = check.envelopes,
        heads = check.heads,
        indexed = check.indexed,
        "event log chains checked from the last verified point, event-id index read from its stored point"
    );
    let durable = log.durable_position();
    if let Some(why) = disagreement(&log, &projection, durable).await? {
        // The projection is derived state: when it does not follow from
        // this log, it is made again from the log.
        tracing::error!(problem = %why, dir = %proj_dir.display(), "the projection does not match the event log; rebuilding it from the log");
        drop(projection);
        rebuild_with(&log, data_dir, durable, Box::new(|_| {})).await?;
        projection = open_projection(&proj_dir, jejak_genealogy::Chunking::Positions).await?;
    }
    let (catch_log, catch_projection) = (log.clone(), projection.clone());
    tokio::task::spawn_blocking(move || {
        crate::projector::catch_up(&catch_log, &catch_projection, durable, &mut |_| {})
    })
    .await
    .context("projection catch-up task")??;
    Ok((Arc::new(Writer::new(log, projection, clock)), audit, also))
}

/// Why the log in `data_dir` cannot be served. A changed or missing
/// envelope is a refusal naming the chain, sequence and position, with what
/// the operator can do about it.
fn open_log_error(e: LogError, data_dir: &Path) -> anyhow::Error {
    let log_dir = data_dir.join("log");
    match e {
        LogError::Corrupt { .. } => anyhow::anyhow!(
            "refusing to serve the event log in {}: {e}; restore the data directory from a backup (`jejak verify --data-dir {}` walks every chain)",
            log_dir.display(),
            data_dir.display()
        ),
        e => anyhow::Error::new(e).context(format!("open the event log in {}", log_dir.display())),
    }
}

/// Opens the log of a stopped server, for the offline tools.
fn open_log_offline(data_dir: &Path) -> anyhow::Result<SledLog> {
    let log_dir = data_dir.join("log");
    if !log_dir.exists() {
        anyhow::bail!("no event log in {}; is --data-dir right?", log_dir.display());
    }
    SledLog::open(&log_dir).with_context(|| {
        format!(
            "open the event log in {} (is a server still running on it?)",
            log_dir.display()
        )
    })
}

/// The last durable position of the log of a stopped server.
pub fn log_end(data_dir: &Path) -> anyhow::Result<u64> {
    Ok(open_log_offline(data_dir)?.durable_position())
}

/// Recreates the projection from the log; `progress` is told how many
/// events were applied. The server must be stopped (sled holds a lock on
/// both stores). Returns the position reached.
pub async fn rebuild(data_dir: &Path, progress: Box<dyn FnMut(u64) + Send>) -> anyhow::Result<u64> {
    let log = open_log_offline(data_dir)?;
    let upto = log.durable_position();
    rebuild_with(&log, data_dir, upto, progress).await
}

/// Why the projection cannot be the one this log makes, if it cannot: it
/// is ahead of the log, or the envelope at its position (id and blake3
/// hash) is not the one it applied there.
async fn disagreement(log: &SledLog, projection: &Projection, durable: u64) -> anyhow::Result<Option<String>> {
    let (position, event, hash) = anchor(projection);
    if position == 0 {
        return Ok(None);
    }
    if position > durable {
        return Ok(Some(format!(
            "it is at log position {position} but the log ends at {durable}"
        )));
    }
    let at = jejak_log::ReadLog::read(log, position).await?;
    Ok(differs(position, &event, hash, at))
}

/// The projection's anchor: the position, event id and envelope hash of the
/// last event it applied.
pub(crate) fn anchor(projection: &Projection) -> (u64, String, [u8; 32]) {
    let g = projection.read();
    let (position, event, hash) = g.anchor();
    (position, event.to_string(), hash)
}

/// Why the projection does not follow from a log whose envelope at its
/// anchor's position is `at`, if it does not.
pub(crate) fn differs(
    position: u64,
    event: &str,
    hash: [u8; 32],
    at: Option<jejak_log::StoredEvent>,
) -> Option<String> {
    match at {
        Some(e) if e.envelope.event_id == event && e.hash == hash => None,
        Some(e) if e.envelope.event_id == event => Some(format!(
            "the envelope at log position {position} is not the one it applied (its hash differs)"
        )),
        Some(e) => Some(format!(
            "it applied event {} at log position {position}, where the log holds {}",
            jejak_domain::quote(event),
            jejak_domain::quote(&e.envelope.event_id)
        )),
        None => Some(format!("the log holds nothing at its position {position}")),
    }
}

/// Makes the projection again from `log` into a fresh directory and swaps
/// it in once complete.
async fn rebuild_with(
    log: &SledLog,
    data_dir: &Path,
    upto: u64,
    progress: Box<dyn FnMut(u64) + Send>,
) -> anyhow::Result<u64> {
    let log = log.clone();
    let proj_dir = data_dir.join("genealogy");
    let fresh = data_dir.join("genealogy.rebuild");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).with_context(|| format!("remove {}", fresh.display()))?;
    }
    let fresh_dir = fresh.clone();
    let mut progress = progress;
    let position = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let projection = Projection::open(&fresh_dir)?;
        let pos = crate::projector::catch_up(&log, &projection, upto, &mut *progress)?;
        projection.flush()?;
        Ok(pos)
    })
    .await
    .context("rebuild task")??;
    // Swap in the rebuilt projection only once it is complete.
    if proj_dir.exists() {
        std::fs::remove_dir_all(&proj_dir)
            .with_context(|| format!("remove the old projection {}", proj_dir.display()))?;
    }
    std::fs::rename(&fresh, &proj_dir)
        .with_context(|| format!("move the rebuilt projection to {}", proj_dir.display()))?;
    Ok(position)
}

/// What `restore` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The last log position: the projection was made up to it.
    pub position: u64,
    /// The tree size of the backup's checkpoint, whose root the restored
    /// log's commitments reproduce; `None` for a backup without one.
    pub checkpoint_size: Option<u64>,
}

/// A backup's log and checkpoint, written into a new data directory.
pub struct Backup {
    /// Position and exact stored bytes of every envelope, from position 1 on.
    pub envelopes: Box<dyn Iterator<Item = anyhow::Result<(u64, Vec<u8>)>> + Send>,
    /// The last checkpoint the server published, as a signed note, and the
    /// key it must be signed with.
    pub checkpoint: Option<(String, jejak_verify::note::Verifier)>,
}

/// Writes a backup into `data_dir` (which must hold no log or projection):
/// the log, checked link by link as it is written; the checkpoint, checked
/// against its key and against the root of the restored log's first
/// commitments; and the projection, made again from the log (it is derived
/// state, and a rebuild is byte-identical). A failed check leaves no log
/// behind to be served by mistake.
pub async fn restore(data_dir: &Path, backup: Backup) -> anyhow::Result<Restored> {
    for part in ["log", "genealogy"] {
        let dir = data_dir.join(part);
        anyhow::ensure!(
            !dir.exists(),
            "{} exists: restore into a new data directory (or move that one away first)",
            dir.display()
        );
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let log_dir = data_dir.join("log");
    let result = restore_into(data_dir, backup).await;
    if result.is_err() {
        // Nothing half-restored may look like a data directory.
        for part in [log_dir, data_dir.join("genealogy"), data_dir.join("genealogy.rebuild")] {
            let _ = std::fs::remove_dir_all(part);
        }
    }
    result
}

async fn restore_into(data_dir: &Path, backup: Backup) -> anyhow::Result<Restored> {
    let Backup { envelopes, checkpoint } = backup;
    let log_dir = data_dir.join("log");
    let dir = log_dir.clone();
    let position = tokio::task::spawn_blocking(move || {
        let mut unreadable = None;
        let envelopes = envelopes.map_while(|item| match item {
            Ok(x) => Some(Ok(x)),
            Err(e) => {
                unreadable = Some(e);
                None
            }
        });
        let written = SledLog::restore(&dir, envelopes);
        match unreadable {
            Some(e) => Err(e.context("read the backup")),
            None => written.context("write the event log"),
        }
    })
    .await
    .context("restore task")??;
    let log = SledLog::open(&log_dir).map_err(|e| open_log_error(e, data_dir))?;
    let checkpoint_size = match checkpoint {
        None => None,
        Some((note, key)) => Some(check_checkpoint(&log, &note, &key, position).await?),
    };
    rebuild_with(&log, data_dir, position, Box::new(|_| {})).await?;
    log.close().await?;
    Ok(Restored {
        position,
        checkpoint_size,
    })
}

/// Checks a backup's checkpoint: signed with `key`, of a tree no larger
/// than the restored log, and with the root of the commitments of the
/// log's first envelopes. Returns its size.
async fn check_checkpoint(
    log: &SledLog,
    note: &str,
    key: &jejak_verify::note::Verifier,
    position: u64,
) -> anyhow::Result<u64> {
    let trusted = jejak_verify::checkpoint::verify_checkpoint(note, key, &[], 0)
        .map_err(|e| anyhow::anyhow!("the backup's checkpoint is not the log key's: {e}"))?;
    let checkpoint = trusted.checkpoint;
    anyhow::ensure!(
        checkpoint.size <= position,
        "the backup's checkpoint is of {} events but its log holds {position}: the backup is incomplete",
        checkpoint.size
    );
    let log = log.clone();
    let size = checkpoint.size;
    let root = tokio::task::spawn_blocking(move || -> anyhow::Result<jejak_log::merkle::Hash> {
        let mut leaves = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        let mut from = 1;
        while from <= size {
            let batch = jejak_log::EventLog::read_from(&log, from, 4096)?;
            anyhow::ensure!(!batch.is_empty(), "the restored log ends before position {from}");
            for e in batch.into_iter().take_while(|e| e.position <= size) {
                from = e.position + 1;
                leaves.push(jejak_log::merkle::leaf_hash(&jejak_log::tlog::leaf_of(e)?));
            }
        }
        Ok(jejak_log::merkle::root(&leaves))
    })
    .await
    .context("checkpoint check task")??;
    anyhow::ensure!(
        root == checkpoint.root,
        "the backup's log does not have the root its checkpoint signs at size {size}: the log was changed"
    );
    Ok(size)
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Events whose chains were walked; `None` for a projector's store
    /// (the stream holds its log).
    pub chained: Option<u64>,
    pub position: u64,
    /// Equal digests: equal projections.
    pub digest: [u8; 32],
}

/// Walks every hash chain of the log and digests the projection.
pub async fn verify(data_dir: &Path) -> anyhow::Result<Verified> {
    let proj_dir = data_dir.join("genealogy");
    // A projector on NATS keeps only its projection; the stream holds the log.
    let log = match data_dir.join("log").exists() || !proj_dir.exists() {
        true => Some(open_log_offline(data_dir)?),
        false => None,
    };
    tokio::task::spawn_blocking(move || -> anyhow::Result<Verified> {
        let chained = match log {
            Some(log) => Some(log.verify().context("verify the hash chains")?),
            None => None,
        };
        let projection =
            Projection::open(&proj_dir).with_context(|| format!("open the projection in {}", proj_dir.display()))?;
        Ok(Verified {
            chained,
            position: projection.position(),
            digest: projection.digest()?,
        })
    })
    .await
    .context("verify task")?
}

/// What else the start's walk of the whole log hands each envelope to, in
/// log order.
pub trait Walker: Send + 'static {
    fn see(&mut self, e: &jejak_log::StoredEvent);
}

/// Two walkers in one walk: each envelope to the first, then the second.
impl<A: Walker, B: Walker> Walker for (A, B) {
    fn see(&mut self, e: &jejak_log::StoredEvent) {
        self.0.see(e);
        self.1.see(e);
    }
}

/// What opening the log found in a walk of all of it: who may do what as
/// the log tells it, whether every chain is intact, and how long the walk
/// (with the log's open) took.
pub struct LogAudit {
    pub tokens: Arc<jejak_domain::TokenTable>,
    /// The envelopes checked, or the first broken link.
    pub verified: Result<u64, LogError>,
    pub took: std::time::Duration,
}

/// The token table as the log tells it: every issue and revocation on the
/// access chain, applied in log order as the projection applies them. The
/// projection's own table is derived state, which anyone who can write the
/// data directory could change; this one is checked against the log's
/// hash chains.
#[derive(Default)]
pub struct LogTokens {
    table: Arc<jejak_domain::TokenTable>,
    unreadable: Option<String>,
    /// The access chain's last envelope, applied only once the next one
    /// links to it (or, the last of all, once it is the chain's stored
    /// head): an envelope changed in place still links to the one before
    /// it, and only the next one's link shows the change.
    pending: Option<jejak_log::StoredEvent>,
    /// Where the access chain's links broke: nothing from there is applied.
    broken: Option<String>,
}

impl LogTokens {
    /// Takes in the next stored event, in log order.
    pub fn see(&mut self, e: &jejak_log::StoredEvent) {
        if e.envelope.chain != jejak_domain::ACCESS_CHAIN || self.unreadable.is_some() || self.broken.is_some() {
            return;
        }
        if let Err(why) = jejak_log::verify_link(self.pending.as_ref(), e) {
            self.broken = Some(why.to_string());
            self.pending = None;
            return;
        }
        if let Some(proven) = self.pending.replace(e.clone()) {
            self.apply(&proven);
        }
    }

    fn apply(&mut self, e: &jejak_log::StoredEvent) {
        let at = jejak_proto::time_from_proto(e.envelope.recorded_at, "recorded_at")
            .ok()
            .flatten()
            .unwrap_or(jejak_domain::Time(0));
        match e.envelope.event.clone().map(jejak_proto::decode_event) {
            Some(Ok(jejak_domain::Event::TokenIssued(t))) => self.table.issue(&e.envelope.event_id, at, &t),
            Some(Ok(jejak_domain::Event::TokenRevoked(r))) => self.table.revoke(at, &r),
            Some(Ok(_)) => {}
            Some(Err(err)) => self.unreadable = Some(format!("position {}: {err}", e.position)),
            None => self.unreadable = Some(format!("position {}: no event", e.position)),
        }
    }

    /// Applies the access chain's last envelope if it is the chain's stored
    /// head (`heads`: each chain's sequence and hash, as the log keeps them).
    pub fn close(&mut self, heads: &[(String, u64, [u8; 32])]) {
        let Some(last) = self.pending.take() else {
            return;
        };
        let head = heads.iter().find(|(c, ..)| c == jejak_domain::ACCESS_CHAIN);
        if head.is_some_and(|(_, sequence, hash)| (*sequence, *hash) == (last.envelope.sequence, last.hash)) {
            self.apply(&last);
        } else {
            self.broken = Some(format!(
                "the access chain's last envelope (position {}) is not the chain's stored head",
                last.position
            ));
        }
    }

    /// Where the access chain's links broke, if they did: the table holds
    /// the tokens before that point only.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// The table, or which access event could not be read.
    pub fn finish(self) -> anyhow::Result<Arc<jejak_domain::TokenTable>> {
        match self.unreadable {
            Some(why) => anyhow::bail!("an access event in the log cannot be read: {why}"),
            None => Ok(self.table),
        }
    }
}

#[cfg(test)]
mod tests {
    use jejak_domain::access::{Role, TokenIssued};
    use jejak_log::{Draft, StoredEvent};
    use prost::Message;

    use super::*;

    fn token(id: &str, role: Role) -> jejak_domain::Event {
        jejak_domain::Event::TokenIssued(TokenIssued {
            token_id: id.into(),
            secret_hash: [7; 32],
            role,
            facility_ids: Vec::new(),
            party_id: None,
            expires_at: jejak_domain::Time(4_000_000_000_000_000_000),
            label: format!("token {id}"),
        })
    }

    /// Each chain's sequence and hash, as the log keeps them.
    type Heads = Vec<(String, u64, [u8; 32])>;

    /// Two tokens on the access chain, as stored, and the log's heads.
    fn stored() -> (Vec<StoredEvent>, Heads, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = SledLog::open(dir.path()).expect("open a log");
        for (id, role) in [("tk1", Role::Member), ("tk2", Role::Operator)] {
            log.append(Draft {
                chain: jejak_domain::ACCESS_CHAIN.into(),
                event_id: format!("issue-{id}"),
                actor: "test".into(),
                command_hash: [0; 32],
                recorded_at: jejak_proto::time_to_proto(jejak_domain::Time(1_800_000_000_000_000_000)),
                event: jejak_proto::event_to_proto(&token(id, role)),
            })
            .expect("append");
        }
        let events = log.read_from(1, 10).expect("read");
        (events, log.chain_heads(), dir)
    }

    /// The envelope with its token made an administrator's: the bytes (and
    /// so the hash) change, its link to the envelope before it does not.
    fn escalated(e: &StoredEvent) -> StoredEvent {
        let mut envelope = e.envelope.clone();
        envelope.event = Some(jejak_proto::event_to_proto(&token("tk1", Role::Admin)));
        StoredEvent::decode(e.position, envelope.encode_to_vec()).expect("decode")
    }

    fn role(table: &jejak_domain::TokenTable, id: &str) -> Option<Role> {
        table.get(id).map(|r| r.issued.role)
    }

    #[test]
    fn the_log_s_tokens_are_those_its_links_prove() {
        let (events, heads, _dir) = stored();
        let mut tokens = LogTokens::default();
        events.iter().for_each(|e| tokens.see(e));
        tokens.close(&heads);
        assert_eq!(tokens.broken(), None);
        let table = tokens.finish().expect("a table");
        assert_eq!(role(&table, "tk1"), Some(Role::Member));
        assert_eq!(role(&table, "tk2"), Some(Role::Operator));
    }

    #[test]
    fn an_access_envelope_changed_in_place_is_not_honoured_nor_anything_after_it() {
        let (events, heads, _dir) = stored();
        // The first changed: the second's link shows it.
        let mut tokens = LogTokens::default();
        tokens.see(&escalated(&events[0]));
        tokens.see(&events[1]);
        tokens.close(&heads);
        assert!(
            tokens.broken().is_some_and(|why| why.contains("previous hash")),
            "{:?}",
            tokens.broken()
        );
        let table = tokens.finish().expect("a table");
        assert_eq!(role(&table, "tk1"), None, "the escalated token is not honoured");
        assert_eq!(role(&table, "tk2"), None, "nor what follows the break");

        // The last changed: it is not the chain's stored head.
        let mut last = escalated(&events[1]);
        last.envelope.event = Some(jejak_proto::event_to_proto(&token("tk2", Role::Admin)));
        let last = StoredEvent::decode(last.position, last.envelope.encode_to_vec()).expect("decode");
        let mut tokens = LogTokens::default();
        tokens.see(&events[0]);
        tokens.see(&last);
        tokens.close(&heads);
        assert!(
            tokens.broken().is_some_and(|why| why.contains("stored head")),
            "{:?}",
            tokens.broken()
        );
        let table = tokens.finish().expect("a table");
        assert_eq!(role(&table, "tk1"), Some(Role::Member));
        assert_eq!(role(&table, "tk2"), None);
    }
}
