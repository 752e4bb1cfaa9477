//! The event log: envelopes chained by blake3 per chain (facility), a global
//! order for projectors, and the embedded implementation on sled with
//! group-committed durable appends.
//!
//! **Invariant:** the only crate that names async-nats or the log's sled
//! tree; an append is acknowledged only once durable, and every envelope
//! carries the hash of its chain predecessor's exact stored bytes.

pub mod alerts;
#[cfg(test)]
mod conformance;
mod envelope;
pub mod jetstream;
pub mod tlog;
pub use jejak_verify::merkle;
mod sled_log;

pub use envelope::{hash, verify_link, Draft, StoredEvent, ENVELOPE_VERSION, ZERO_HASH};
pub use jetstream::{JetStreamConfig, JetStreamLog};
pub use sled_log::{SledLog, StartCheck};

use std::future::Future;

/// What can go wrong with the log; callers tell these apart.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log storage: {0}")]
    Storage(String),
    /// A stored envelope does not decode or does not match its chain.
    #[error("event log corrupt at position {position}: {reason}")]
    Corrupt { position: u64, reason: String },
    /// An earlier flush failed; the log accepts nothing more until restarted.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    #[error("event log is shutting down")]
    Closed,
    /// Another writer extended the chain since the head the caller built on.
    #[error("chain {chain:?} changed meanwhile: {reason}")]
    Conflict { chain: String, reason: String },
    /// The log's backend is not set up as asked.
    #[error("event log configuration: {0}")]
    Config(String),
}

impl From<sled::Error> for LogError {
    fn from(e: sled::Error) -> Self {
        LogError::Storage(e.to_string())
    }
}

/// Where an appended event landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub position: u64,
    pub chain: String,
    pub sequence: u64,
    pub hash: [u8; 32],
    /// The event id was already in the log: this describes the stored copy.
    pub duplicate: bool,
}

/// The last envelope of a chain: its chain sequence, the hash of its stored
/// bytes and its position. `ChainHead::default()` is the head of an empty chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChainHead {
    pub sequence: u64,
    pub hash: [u8; 32],
    pub position: u64,
}

/// The contract every event log keeps, embedded or distributed; one
/// conformance suite checks it against each implementation.
pub trait ChainLog: Send + Sync + 'static {
    /// Appends `draft` after `expected`, the head of its chain the caller
    /// decided against: the new envelope has the next sequence and links to
    /// that head's hash. If the chain has moved on, nothing is written and
    /// the answer is `LogError::Conflict`. If the event id is already in
    /// the log, nothing is written and the stored copy is described
    /// (`duplicate`). Resolves once the append is durable.
    fn append_after(
        &self,
        draft: Draft,
        expected: ChainHead,
    ) -> impl Future<Output = Result<Appended, LogError>> + Send;

    /// Up to `limit` events from position `from` on, in order.
    fn read_range(&self, from: u64, limit: usize) -> impl Future<Output = Result<Vec<StoredEvent>, LogError>> + Send;

    /// The position of the last durable event (0 when empty).
    fn last_position(&self) -> impl Future<Output = Result<u64, LogError>> + Send;

    /// The head of a chain (the default head when it has no event yet).
    fn head(&self, chain: &str) -> impl Future<Output = Result<ChainHead, LogError>> + Send;
}

/// An append-only, hash-chained event log. Appends are staged in order by
/// the single writer that holds the write model, and acknowledged only once
/// `wait_durable` returns for their position.
pub trait EventLog: Send + Sync + 'static {
    /// Stages an envelope at the end of its chain and of the global order.
    /// Must be fast: it runs under the write model's lock.
    fn append(&self, draft: Draft) -> Result<Appended, LogError>;

    /// Resolves when every event up to `position` survives a crash.
    fn wait_durable(&self, position: u64) -> impl Future<Output = Result<(), LogError>> + Send;

    /// Up to `limit` durable-or-staged events from `from` (inclusive) on, in order.
    fn read_from(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, LogError>;

    /// Up to `limit` durable events from `from` on, in order, read without
    /// touching what is staged (so without waiting on the writer).
    fn read_durable(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, LogError> {
        self.read_from(from, limit).map(|v| {
            v.into_iter()
                .take_while(|e| e.position <= self.durable_position())
                .collect()
        })
    }

    /// The event stored at a position.
    fn read(&self, position: u64) -> Result<Option<StoredEvent>, LogError>;

    /// The position of an event id, if it is in the log.
    fn position_of(&self, event_id: &str) -> Result<Option<u64>, LogError>;

    /// The last durable position (0 when empty).
    fn durable_position(&self) -> u64;

    /// A watch on the last durable position, for projectors.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// What the read side needs of a log, embedded or a projector's view of the
/// stream: stored envelopes (for histories and pages), and when what the
/// projection holds is durable.
pub trait ReadLog: Clone + Send + Sync + 'static {
    /// Resolves once every event up to `position` is durable.
    fn wait_durable(&self, position: u64) -> impl Future<Output = Result<(), LogError>> + Send;
    /// The envelope stored at `position`.
    fn read(&self, position: u64) -> impl Future<Output = Result<Option<StoredEvent>, LogError>> + Send;
    /// The last position of the log, as far as this process knows.
    fn log_position(&self) -> u64;
    /// The last position of the log, asked of the log itself.
    fn current_position(&self) -> impl Future<Output = Result<u64, LogError>> + Send;
    /// How far a reader at `applied` is behind `end`: events in a log whose
    /// positions count them; on a stream, messages (each one event, or a
    /// batch of one chain's).
    fn lag(&self, applied: u64, end: u64) -> u64 {
        end.saturating_sub(applied)
    }
    /// A watch that moves when a follower's tail may find more to read
    /// (embedded: the durable position; a projector's view of the stream:
    /// the last position its projector handed on).
    fn grown(&self) -> tokio::sync::watch::Receiver<u64>;
    /// How a follower reads this log in order, kept from one batch to the next.
    type Tail: Tail;
    /// A reader of the log in order from `from` on that returns the events
    /// `wanted` keeps and passes over the rest.
    fn tail(&self, from: u64, wanted: fn(&StoredEvent) -> bool) -> Self::Tail;
}

/// A follower's reader of the log in order: one reading for many events
/// (on a stream, one consumer), not a request for each.
pub trait Tail: Send + 'static {
    /// The position of the next event to read (or of the one after it,
    /// past a sequence a stream skipped): every event before it was read.
    fn position(&self) -> u64;
    /// Reads on, at most `max` events and none after `upto`, and returns
    /// those the tail's filter wants; empty, and `position` unmoved, when
    /// none up to `upto` came in a while.
    fn next_upto(&mut self, upto: u64, max: usize) -> impl Future<Output = Result<Vec<StoredEvent>, LogError>> + Send;
}

/// The embedded log's `Tail`: reads of the stored log.
pub struct SledTail {
    log: SledLog,
    next: u64,
    wanted: fn(&StoredEvent) -> bool,
}

impl Tail for SledTail {
    fn position(&self) -> u64 {
        self.next
    }

    async fn next_upto(&mut self, upto: u64, max: usize) -> Result<Vec<StoredEvent>, LogError> {
        if upto < self.next || max == 0 {
            return Ok(Vec::new());
        }
        let room = usize::try_from(upto - self.next + 1).unwrap_or(usize::MAX).min(max);
        let mut events = EventLog::read_from(&self.log, self.next, room)?;
        events.retain(|e| e.position <= upto);
        if let Some(e) = events.last() {
            self.next = e.position + 1;
        }
        events.retain(self.wanted);
        Ok(events)
    }
}

impl ReadLog for SledLog {
    async fn wait_durable(&self, position: u64) -> Result<(), LogError> {
        EventLog::wait_durable(self, position).await
    }

    async fn read(&self, position: u64) -> Result<Option<StoredEvent>, LogError> {
        EventLog::read(self, position)
    }

    fn log_position(&self) -> u64 {
        self.durable_position()
    }

    async fn current_position(&self) -> Result<u64, LogError> {
        Ok(self.durable_position())
    }

    fn grown(&self) -> tokio::sync::watch::Receiver<u64> {
        EventLog::subscribe(self)
    }

    type Tail = SledTail;

    fn tail(&self, from: u64, wanted: fn(&StoredEvent) -> bool) -> SledTail {
        SledTail {
            log: self.clone(),
            next: from.max(1),
            wanted,
        }
    }
}

impl jejak_proto::ServiceError for LogError {
    fn error_code(&self) -> jejak_proto::ErrorCode {
        use jejak_proto::ErrorCode;
        match self {
            LogError::Unavailable(_) | LogError::Closed => ErrorCode::Unavailable,
            LogError::Conflict { .. } => ErrorCode::Conflict,
            LogError::Storage(_) | LogError::Corrupt { .. } | LogError::Config(_) => ErrorCode::Internal,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            LogError::Storage(_) => "LOG_STORAGE",
            LogError::Corrupt { .. } => "LOG_CORRUPT",
            LogError::Unavailable(_) => "LOG_UNAVAILABLE",
            LogError::Closed => "LOG_CLOSED",
            LogError::Conflict { .. } => "CHAIN_CONFLICT",
            LogError::Config(_) => "LOG_CONFIG",
        }
    }
}
