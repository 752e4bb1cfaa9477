//! The event log: envelopes chained by blake3 per chain (facility), a global
//! order for projectors, and the embedded implementation on sled with
//! group-committed durable appends.

mod envelope;
mod sled_log;

pub use envelope::{hash, verify_link, Draft, StoredEvent, ENVELOPE_VERSION, ZERO_HASH};
pub use sled_log::SledLog;

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

    /// The event stored at a position.
    fn read(&self, position: u64) -> Result<Option<StoredEvent>, LogError>;

    /// The position of an event id, if it is in the log.
    fn position_of(&self, event_id: &str) -> Result<Option<u64>, LogError>;

    /// The last durable position (0 when empty).
    fn durable_position(&self) -> u64;

    /// A watch on the last durable position, for projectors.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;
}
