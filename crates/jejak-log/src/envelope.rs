//! Envelopes: the stored form of an event, and the blake3 chain over their
//! exact stored bytes (never a re-encoding: protobuf encoding is not canonical).

use jejak_proto::v1 as p;
use prost::Message;

use crate::LogError;

pub const ENVELOPE_VERSION: u32 = 1;
pub const ZERO_HASH: [u8; 32] = [0; 32];

/// An event ready to be appended: everything but its place in the log.
#[derive(Debug, Clone)]
pub struct Draft {
    pub chain: String,
    pub event_id: String,
    pub actor: String,
    pub command_hash: [u8; 32],
    pub recorded_at: prost_types::Timestamp,
    pub event: p::Event,
}

/// An event as stored: its position, exact bytes, their hash, and the decoded envelope.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub position: u64,
    pub bytes: Vec<u8>,
    pub hash: [u8; 32],
    pub envelope: p::Envelope,
}

impl StoredEvent {
    /// Decodes stored bytes; the hash is computed over exactly these bytes.
    pub fn decode(position: u64, bytes: Vec<u8>) -> Result<StoredEvent, LogError> {
        let envelope = p::Envelope::decode(bytes.as_slice()).map_err(|e| LogError::Corrupt {
            position,
            reason: format!("envelope does not decode: {e}"),
        })?;
        Ok(StoredEvent {
            position,
            hash: hash(&bytes),
            bytes,
            envelope,
        })
    }
}

/// The fields of an envelope that place it in its chain, decoded without
/// the event: the start-up walk needs only these, and skipping the event
/// (prost skips fields a message does not name) keeps the walk cheap. The
/// tags are those of `jejak.v1.Envelope`; a test holds them together.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Link {
    #[prost(string, tag = "2")]
    pub(crate) chain: String,
    #[prost(uint64, tag = "3")]
    pub(crate) sequence: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) prev_hash: Vec<u8>,
    #[prost(string, tag = "5")]
    pub(crate) event_id: String,
}

impl Link {
    /// Decodes the link fields of stored envelope bytes.
    pub(crate) fn decode_at(position: u64, bytes: &[u8]) -> Result<Link, LogError> {
        Link::decode(bytes).map_err(|e| LogError::Corrupt {
            position,
            reason: format!("envelope does not decode: {e}"),
        })
    }
}

/// The event id of an envelope and nothing else: what the light scan that
/// rebuilds the event-id index at open decodes for every envelope at or
/// before the checkpoint. prost skips the fields a message does not name by
/// their wire type and length, without decoding them, so the event and the
/// other fields cost a length read each. Tag 5 of `jejak.v1.Envelope`; a
/// test holds them together.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EventIdOnly {
    #[prost(string, tag = "5")]
    pub(crate) event_id: String,
}

impl EventIdOnly {
    /// Decodes the event id of stored envelope bytes.
    pub(crate) fn decode_at(position: u64, bytes: &[u8]) -> Result<String, LogError> {
        EventIdOnly::decode(bytes)
            .map(|e| e.event_id)
            .map_err(|e| LogError::Corrupt {
                position,
                reason: format!("envelope does not decode: {e}"),
            })
    }
}

/// Secrets drawn from the OS's random source at a time (one system call
/// for this many envelopes; each secret is handed out once).
const SECRETS_PER_DRAW: usize = 256;

/// A new envelope's commitment secret: 32 bytes from the OS's random
/// source, drawn in bulk.
pub(crate) fn fresh_secret() -> Result<Vec<u8>, LogError> {
    static POOL: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    if pool.len() < 32 {
        let mut fresh = vec![0u8; 32 * SECRETS_PER_DRAW];
        getrandom::fill(&mut fresh)
            .map_err(|e| LogError::Unavailable(format!("the operating system's random source failed: {e}")))?;
        *pool = fresh;
    }
    let at = pool.len() - 32;
    let secret = pool[at..].to_vec();
    // Handed out once: wiped from the pool as it leaves.
    pool.truncate(at);
    Ok(secret)
}

pub fn hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// Checks that `next` follows `prev` (or starts its chain when `prev` is None).
pub fn verify_link(prev: Option<&StoredEvent>, next: &StoredEvent) -> Result<(), LogError> {
    let corrupt = |reason: String| {
        Err(LogError::Corrupt {
            position: next.position,
            reason,
        })
    };
    let (want_seq, want_hash) = match prev {
        Some(p) => match p.envelope.sequence.checked_add(1) {
            Some(s) => (s, p.hash),
            None => return corrupt(format!("chain {:?} has a sequence past the last", p.envelope.chain)),
        },
        None => (1, ZERO_HASH),
    };
    if next.envelope.sequence != want_seq {
        return corrupt(format!(
            "chain {:?} has sequence {} where {want_seq} was expected",
            next.envelope.chain, next.envelope.sequence
        ));
    }
    if next.envelope.prev_hash.as_slice() != want_hash {
        return corrupt(format!(
            "chain {:?} sequence {}: previous hash does not match the stored previous envelope",
            next.envelope.chain, next.envelope.sequence
        ));
    }
    Ok(())
}
