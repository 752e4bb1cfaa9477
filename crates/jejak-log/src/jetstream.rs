//! The distributed event log on NATS JetStream: one stream, one subject per
//! chain (facility). A message holds one envelope, or several consecutive
//! envelopes of one chain (a batch, see `batch_payload`); an event's
//! position is its message's stream sequence and its place in that
//! message (`position`), so positions grow with the stream but are not
//! consecutive: every message ends at `end_of(sequence)`.
//!
//! An append publishes the envelope with `Nats-Msg-Id` set to the event id
//! (a retry within the stream's duplicate window is answered with the first
//! copy) and `Nats-Expected-Last-Subject-Sequence` set to the position of the
//! chain's head the caller decided against, so two writers can never both
//! extend a chain from the same head: the second gets `LogError::Conflict`.
//!
//! nats-server 2.9 silently drops settings it does not know; `connect`
//! compares every stream setting it asked for with what the server echoes
//! back and refuses to run when one differs.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use jejak_proto::v1 as p;
use prost::Message;

use crate::envelope::{hash, Draft, StoredEvent, ENVELOPE_VERSION};
use crate::{Appended, ChainHead, ChainLog, LogError};

/// Where and how the stream lives.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// Server URLs, comma-separated.
    pub urls: String,
    /// A NATS credentials (`.creds`) file.
    pub creds: Option<std::path::PathBuf>,
    /// The stream's name; its subjects are `<name in lower case>.events.<chain>`.
    pub stream: String,
    /// 1, or 3 for a deployment that keeps its data (see the README).
    pub replicas: usize,
    /// How long the server remembers a message id to drop a retried publish.
    pub duplicate_window: Duration,
    /// Whether `replicas` and `duplicate_window` were asked for: an existing
    /// stream is changed to each only then, and otherwise keeps its own (a
    /// process started without them, say a bootstrap step, must not turn an
    /// R3 stream into R1). A new stream is made with them either way.
    pub set_replicas: bool,
    pub set_duplicate_window: bool,
    /// How long an append waits for the server's acknowledgement before it
    /// publishes again with the same message id.
    pub ack_timeout: Duration,
    /// The connection's name, as the server's monitoring shows it.
    pub client_name: String,
}

impl JetStreamConfig {
    pub fn new(urls: impl Into<String>) -> JetStreamConfig {
        JetStreamConfig {
            urls: urls.into(),
            creds: None,
            stream: "JEJAK".into(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            set_replicas: true,
            set_duplicate_window: true,
            ack_timeout: Duration::from_secs(1),
            client_name: "jejak".into(),
        }
    }
}

/// The low bits of a position that number an event within its message.
pub const EVENT_BITS: u32 = 12;

/// The most events one message may hold.
pub const MAX_BATCH: usize = 1 << EVENT_BITS;

const EVENT_MASK: u64 = (1 << EVENT_BITS) - 1;

/// The position of event `index` of the `count` a message at stream
/// sequence `sequence` holds. A message's last event is always at
/// `end_of(sequence)`, whatever it holds, so "every event up to the end of
/// message s" is one position, known from the stream's sequence alone.
pub fn position(sequence: u64, count: usize, index: usize) -> u64 {
    (sequence << EVENT_BITS) | (MAX_BATCH - count + index) as u64
}

/// The position of the last event of the message at `sequence` (0 for none).
pub fn end_of(sequence: u64) -> u64 {
    match sequence {
        0 => 0,
        s => position(s, 1, 0),
    }
}

/// The stream sequence of the message a position is in.
pub fn message_of(position: u64) -> u64 {
    position >> EVENT_BITS
}

/// Whether the event at `next` directly follows the one at `position`: the
/// next in the same message, or, when `next` opens its message (`first`),
/// the first of the message after the one `position` ends.
pub fn follows(position: u64, next: u64, first: bool) -> bool {
    match first {
        true => (position == 0 || position & EVENT_MASK == EVENT_MASK) && message_of(next) == message_of(position) + 1,
        false => next == position + 1,
    }
}

/// The first byte of a batch's payload: a protobuf message never starts with
/// a zero byte (field number 0 does not exist), so a bare envelope and a
/// batch are told apart by it.
const BATCH_MARK: u8 = 0;

/// The payload of a message holding `envelopes`: a bare envelope for one;
/// for several, `BATCH_MARK`, their count and each one length-prefixed (as
/// protobuf varints), in order.
pub fn batch_payload(envelopes: &[bytes::Bytes]) -> bytes::Bytes {
    if let [one] = envelopes {
        return one.clone();
    }
    let mut out = Vec::with_capacity(envelopes.iter().map(|e| e.len() + 3).sum::<usize>() + 4);
    out.push(BATCH_MARK);
    prost::encoding::encode_varint(envelopes.len() as u64, &mut out);
    for e in envelopes {
        prost::encoding::encode_varint(e.len() as u64, &mut out);
        out.extend_from_slice(e);
    }
    bytes::Bytes::from(out)
}

/// The events of the message at stream sequence `sequence`, in order, with
/// their positions.
pub fn decode_message(sequence: u64, payload: &[u8]) -> Result<Vec<StoredEvent>, LogError> {
    if payload.first() != Some(&BATCH_MARK) {
        return Ok(vec![StoredEvent::decode(end_of(sequence), payload.to_vec())?]);
    }
    let corrupt = |reason: String| LogError::Corrupt {
        position: end_of(sequence),
        reason,
    };
    let mut rest = &payload[1..];
    let count = prost::encoding::decode_varint(&mut rest).map_err(|e| corrupt(format!("batch count: {e}")))?;
    let count = usize::try_from(count)
        .ok()
        .filter(|n| (2..=MAX_BATCH).contains(n))
        .ok_or_else(|| corrupt(format!("a batch of {count} events (2 to {MAX_BATCH} allowed)")))?;
    let mut out = Vec::with_capacity(count);
    for index in 0..count {
        let len =
            prost::encoding::decode_varint(&mut rest).map_err(|e| corrupt(format!("batch entry {index}: {e}")))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= rest.len())
            .ok_or_else(|| corrupt(format!("batch entry {index} runs past the message")))?;
        let (bytes, after) = rest.split_at(len);
        out.push(StoredEvent::decode(position(sequence, count, index), bytes.to_vec())?);
        rest = after;
    }
    if !rest.is_empty() {
        return Err(corrupt(format!("{} bytes after the batch's last entry", rest.len())));
    }
    Ok(out)
}

/// Checks that the events of a message are of the chain its subject names
/// (the subject's last token, `chain_token`): the capture path finds a
/// chain's head by its subject, so an event of one chain on another's
/// subject would be missed there and its sequence given out again.
pub fn on_its_subject(subject: &str, events: &[StoredEvent]) -> Result<(), LogError> {
    let token = subject.rsplit('.').next().unwrap_or_default();
    let mut checked: Option<&str> = None;
    for e in events {
        let chain = e.envelope.chain.as_str();
        if checked == Some(chain) {
            continue;
        }
        if chain_token(chain) != token {
            return Err(LogError::Corrupt {
                position: e.position,
                reason: format!(
                    "event {} of chain {chain:?} is in a message on subject {subject:?}, which is another chain's",
                    e.envelope.event_id
                ),
            });
        }
        checked = Some(chain);
    }
    Ok(())
}

/// The message id of a batch: a digest of its events' ids, so that the
/// same batch sent again is dropped as a duplicate, and a batch of other
/// events never is.
pub fn batch_id(ids: &[&str]) -> String {
    if let [one] = ids {
        return (*one).to_string();
    }
    let mut h = blake3::Hasher::new();
    for id in ids {
        h.update(&(id.len() as u64).to_le_bytes());
        h.update(id.as_bytes());
    }
    format!("batch:{}", h.finalize().to_hex())
}

/// Publishes that time out are repeated (same message id) this many times.
const PUBLISH_ATTEMPTS: usize = 10;

/// Encodes a chain id as one subject token, reversibly: letters, digits, `-`
/// and `:` stay, every other byte becomes `_` and two hex digits.
pub fn chain_token(chain: &str) -> String {
    let mut out = String::with_capacity(chain.len());
    for b in chain.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b':' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

/// The chain id a subject token stands for.
pub fn chain_from_token(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A NATS error as a log error: no answer in time, no responders or a lost
/// connection (a cluster electing a stream leader, a server restarting)
/// is `Unavailable`, safe to retry; anything else is a fault of storage.
/// How long a request to NATS (stream information, a JetStream API call)
/// waits for its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How long asking where the stream ends may take.
const STREAM_END_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a process starting asks again where the stream ends while NATS
/// does not say (`JetStreamLog::end_at_start`).
pub const START_WAIT: Duration = Duration::from_secs(30);

fn storage(e: impl std::fmt::Display) -> LogError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let transient = [
        "timed out",
        "timeout",
        "no responders",
        "broken pipe",
        "disconnected",
        "connection",
    ];
    if transient.iter().any(|t| lower.contains(t)) {
        LogError::Unavailable(format!("NATS did not answer: {text}; retry with the same command id"))
    } else {
        LogError::Storage(text)
    }
}

/// The JetStream event log. Cheap to clone.
#[derive(Clone)]
pub struct JetStreamLog {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    prefix: String,
    config: JetStreamConfig,
    retries: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl JetStreamLog {
    /// Connects (retrying for up to `wait`), creates or updates the stream,
    /// and checks that the server kept every setting.
    pub async fn connect(mut config: JetStreamConfig, wait: Duration) -> Result<JetStreamLog, LogError> {
        let urls: Vec<async_nats::ServerAddr> = config
            .urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                u.parse()
                    .map_err(|e| LogError::Config(format!("{u:?} is not a NATS server URL: {e}")))
            })
            .collect::<Result<_, _>>()?;
        if urls.is_empty() {
            return Err(LogError::Config("no NATS server URL given".into()));
        }
        let deadline = tokio::time::Instant::now() + wait;
        let client = loop {
            let mut options = async_nats::ConnectOptions::new()
                .name(&config.client_name)
                .max_reconnects(None)
                .connection_timeout(Duration::from_secs(2))
                // A request sent to a node that died is never answered: it
                // ends at this timeout and is asked again on the connection
                // to a live node, so this bounds what a failover costs.
                .request_timeout(Some(REQUEST_TIMEOUT))
                .event_callback(|event| async move {
                    match event {
                        async_nats::Event::Disconnected => tracing::warn!("NATS connection lost; reconnecting"),
                        async_nats::Event::Connected => tracing::info!("NATS connected"),
                        other => tracing::debug!(event = %other, "NATS"),
                    }
                });
            if let Some(creds) = &config.creds {
                options = options.credentials_file(creds).await.map_err(|e| {
                    LogError::Config(format!("read the NATS credentials file {}: {e}", creds.display()))
                })?;
            }
            match options.connect(urls.clone()).await {
                Ok(c) => break c,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, urls = %config.urls, "NATS not reachable yet; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    return Err(LogError::Unavailable(format!(
                        "cannot reach NATS at {} within {wait:?}: {e}",
                        config.urls
                    )))
                }
            }
        };
        let mut js = jetstream::new(client.clone());
        js.set_timeout(REQUEST_TIMEOUT);
        let prefix = format!("{}.events", config.stream.to_lowercase());
        let mut wanted = stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{prefix}.>")],
            storage: stream::StorageType::File,
            num_replicas: config.replicas,
            duplicate_window: config.duplicate_window,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::New,
            // The log is immutable: no message is deleted or purged, ever.
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            max_message_size: 1024 * 1024,
            // No limits: -1 is how the server spells "unlimited".
            max_bytes: -1,
            max_messages: -1,
            max_messages_per_subject: -1,
            max_consumers: -1,
            ..Default::default()
        };
        let version = client.server_info().version;
        let info = loop {
            let attempt = match js.get_stream(&config.stream).await {
                Ok(mut s) => {
                    let current = s.info().await.map_err(storage)?.config.clone();
                    // What was not asked for the stream keeps, and so does
                    // what this process makes beside it.
                    if !config.set_replicas {
                        wanted.num_replicas = current.num_replicas;
                        config.replicas = current.num_replicas;
                    }
                    if !config.set_duplicate_window {
                        wanted.duplicate_window = current.duplicate_window;
                        config.duplicate_window = current.duplicate_window;
                    }
                    if current.num_replicas != wanted.num_replicas
                        || current.duplicate_window != wanted.duplicate_window
                    {
                        tracing::warn!(
                            stream = %config.stream,
                            replicas = format!("{} -> {}", current.num_replicas, wanted.num_replicas),
                            duplicate_window = format!("{:?} -> {:?}", current.duplicate_window, wanted.duplicate_window),
                            "changing the stream's settings to those asked for"
                        );
                        js.update_stream(wanted.clone()).await.map_err(storage)
                    } else {
                        Ok(s.info().await.map_err(storage)?.clone())
                    }
                }
                Err(e)
                    if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref j)
                        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
                {
                    js.create_stream(wanted.clone())
                        .await
                        .map(|s| s.cached_info().clone())
                        .map_err(storage)
                }
                Err(e) => Err(storage(e)),
            };
            match attempt {
                Ok(info) => break info,
                // A cluster that has just started may not have elected its
                // JetStream leader yet.
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, "JetStream not ready; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    return Err(LogError::Unavailable(format!(
                        "set up the stream {}: {e}",
                        config.stream
                    )))
                }
            }
        };
        check_echo("stream", &wanted, &info.config, &version)?;
        let stream = js.get_stream(&config.stream).await.map_err(storage)?;
        Ok(JetStreamLog {
            client,
            js,
            stream,
            prefix,
            config,
            retries: Default::default(),
        })
    }

    /// The subject of the transparency log's signed checkpoints.
    fn checkpoint_subject(&self) -> String {
        format!("{}.checkpoint", self.config.stream.to_lowercase())
    }

    /// The stream that keeps the last signed checkpoint (`<stream>_CHECKPOINTS`).
    async fn checkpoint_stream(&self) -> Result<stream::Stream, LogError> {
        self.js
            .get_or_create_stream(stream::Config {
                name: format!("{}_CHECKPOINTS", self.config.stream),
                subjects: vec![self.checkpoint_subject()],
                storage: stream::StorageType::File,
                num_replicas: self.config.replicas,
                max_messages_per_subject: 1,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(storage)
    }

    /// Publishes a signed checkpoint for the other projectors.
    pub async fn publish_checkpoint(&self, note: &str) -> Result<(), LogError> {
        self.checkpoint_stream().await?;
        self.js
            .publish(self.checkpoint_subject(), note.to_owned().into())
            .await
            .map_err(storage)?
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// Publishes an alert for one party on `jejak.alerts.<party>` (core
    /// NATS: subscribers listening now receive it; webhooks and
    /// `WatchAlerts` are the durable paths).
    pub async fn publish_alert(&self, party: &str, payload: Vec<u8>) -> Result<(), LogError> {
        self.client
            .publish(format!("jejak.alerts.{}", chain_token(party)), payload.into())
            .await
            .map_err(storage)
    }

    /// The last signed checkpoint published, if any.
    pub async fn last_checkpoint(&self) -> Result<Option<String>, LogError> {
        let stream = self.checkpoint_stream().await?;
        match stream.direct_get_last_for_subject(self.checkpoint_subject()).await {
            Ok(m) => Ok(Some(String::from_utf8_lossy(&m.payload).into_owned())),
            Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(storage(e)),
        }
    }

    pub fn subject(&self, chain: &str) -> String {
        format!("{}.{}", self.prefix, chain_token(chain))
    }

    /// The server's version, as it announced itself.
    pub fn server_version(&self) -> String {
        self.client.server_info().version
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Whether the connection to NATS is up right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    pub fn config(&self) -> &JetStreamConfig {
        &self.config
    }

    /// Publishes repeated (same message id) because no acknowledgement came.
    pub fn publish_retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The events of the message at a stream sequence (`None`: the stream
    /// holds no message there).
    pub async fn message(&self, sequence: u64) -> Result<Option<Vec<StoredEvent>>, LogError> {
        if sequence == 0 {
            return Ok(None);
        }
        match self.stream.direct_get(sequence).await {
            Ok(m) => {
                let events = decode_message(sequence, &m.payload)?;
                on_its_subject(&m.subject, &events)?;
                Ok(Some(events))
            }
            Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(storage(e)),
        }
    }

    /// `message`, asked of the stream's leader: a direct get may be answered
    /// by a replica still behind it, which holds nothing at a sequence the
    /// stream does hold. Where "nothing there" decides something (that a
    /// sequence was skipped, that a tree belongs to another stream), the
    /// leader says.
    pub async fn message_from_leader(&self, sequence: u64) -> Result<Option<Vec<StoredEvent>>, LogError> {
        if sequence == 0 {
            return Ok(None);
        }
        match self.stream.get_raw_message(sequence).await {
            Ok(m) => {
                let events = decode_message(sequence, &m.payload)?;
                on_its_subject(&m.subject, &events)?;
                Ok(Some(events))
            }
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(storage(e)),
        }
    }

    /// Where the stream ends, asked again while NATS does not say (a
    /// leader being elected, a loaded server slow to answer) for up to
    /// `START_WAIT`: a process starting waits for that rather than stop.
    pub async fn end_at_start(&self) -> Result<u64, LogError> {
        let deadline = tokio::time::Instant::now() + START_WAIT;
        loop {
            match ChainLog::last_position(self).await {
                Err(LogError::Unavailable(why)) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %why, "asking the stream for its end again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    /// `read`, asked of the stream's leader (see `message_from_leader`).
    pub async fn read_from_leader(&self, position: u64) -> Result<Option<StoredEvent>, LogError> {
        Ok(self
            .message_from_leader(message_of(position))
            .await?
            .and_then(|events| events.into_iter().find(|e| e.position == position)))
    }

    /// The event stored at a position.
    pub async fn read(&self, position: u64) -> Result<Option<StoredEvent>, LogError> {
        Ok(self
            .message(message_of(position))
            .await?
            .and_then(|events| events.into_iter().find(|e| e.position == position)))
    }

    /// A reader of the stream in order from `from` on.
    pub fn reader(&self, from: u64) -> Reader {
        Reader {
            log: self.clone(),
            next: from.max(1),
            messages: None,
        }
    }

    /// Sends a message (`batch_payload`: one envelope or a batch of one
    /// chain's) to its chain's subject with `Nats-Msg-Id` = `message_id`
    /// (`batch_id`) and `Nats-Expected-Last-Subject-Sequence` = the message
    /// of `after` (the chain's head the first envelope follows), and, when
    /// given, `Nats-Expected-Last-Msg-Id` = `after_id` (the stream's last
    /// message must be that one). Returns once it is on its way; publishes
    /// sent one after another reach the stream in that order.
    pub async fn send(
        &self,
        chain: &str,
        payload: bytes::Bytes,
        message_id: &str,
        after: u64,
        after_id: Option<&str>,
    ) -> InFlight {
        let mut publish = jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(message_id)
            .expected_last_subject_sequence(message_of(after));
        if let Some(id) = after_id {
            publish = publish.expected_last_message_id(id);
        }
        match self.js.send_publish(self.subject(chain), publish).await {
            Ok(ack) => InFlight {
                ack: Some(ack),
                error: None,
                timeout: self.config.ack_timeout,
            },
            Err(e) => InFlight {
                ack: None,
                error: Some(e.to_string()),
                timeout: self.config.ack_timeout,
            },
        }
    }

    /// Every chain's head as the stream holds it now: the stream's subjects
    /// (a request per page of them), then the last message of each (a
    /// direct get per chain, a few at once). What a capture needs, beside
    /// a genealogy stored at some position, instead of reading the whole
    /// stream for the heads; the cost grows with the chains, not the events.
    pub async fn chain_heads(&self) -> Result<Vec<(String, ChainHead)>, LogError> {
        let prefix = format!("{}.", self.prefix);
        let mut subjects = self
            .stream
            .info_with_subjects(format!("{prefix}>"))
            .await
            .map_err(storage)?;
        let mut chains = Vec::new();
        while let Some(listed) = subjects.next().await {
            let (subject, _) = listed.map_err(storage)?;
            let chain = subject
                .strip_prefix(&prefix)
                .and_then(chain_from_token)
                .ok_or_else(|| LogError::Storage(format!("the stream holds a subject of no chain: {subject}")))?;
            chains.push(chain);
        }
        futures_util::stream::iter(chains)
            .map(|chain| async move { self.head(&chain).await.map(|head| (chain, head)) })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// Counts a publish repeated for want of an acknowledgement.
    pub fn count_retry(&self) {
        self.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How one publish ended.
#[derive(Debug)]
pub enum PublishOutcome {
    Stored(jetstream::publish::PublishAck),
    /// An expectation failed: the chain (or the stream) moved on.
    Conflict,
    /// No answer, or a transient refusal: it may or may not be stored.
    Retry(String),
    Failed(String),
}

/// How a message's publish ended, for each event it held (`PublishOutcome`
/// without the acknowledgement's body, to share).
#[derive(Debug, Clone)]
pub enum Settled {
    Stored { sequence: u64, duplicate: bool },
    Conflict,
    Retry(String),
    Failed(String),
}

impl From<PublishOutcome> for Settled {
    fn from(outcome: PublishOutcome) -> Settled {
        match outcome {
            PublishOutcome::Stored(ack) => Settled::Stored {
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            },
            PublishOutcome::Conflict => Settled::Conflict,
            PublishOutcome::Retry(e) => Settled::Retry(e),
            PublishOutcome::Failed(e) => Settled::Failed(e),
        }
    }
}

fn outcome(result: Result<jetstream::publish::PublishAck, jetstream::context::PublishError>) -> PublishOutcome {
    match result {
        Ok(ack) => PublishOutcome::Stored(ack),
        Err(e) => match e.kind() {
            jetstream::context::PublishErrorKind::WrongLastSequence
            | jetstream::context::PublishErrorKind::WrongLastMessageId => PublishOutcome::Conflict,
            // No stream answers while a cluster elects the stream's new
            // leader: as transient as a timeout.
            jetstream::context::PublishErrorKind::TimedOut
            | jetstream::context::PublishErrorKind::BrokenPipe
            | jetstream::context::PublishErrorKind::StreamNotFound => PublishOutcome::Retry(e.to_string()),
            _ => PublishOutcome::Failed(e.to_string()),
        },
    }
}

/// An envelope ready to publish after a given chain head.
pub struct Prepared {
    pub bytes: bytes::Bytes,
    pub hash: [u8; 32],
    pub sequence: u64,
}

/// Encodes `draft` as the envelope that follows `head` in its chain, with
/// a new commitment secret.
pub fn prepare(draft: &Draft, head: ChainHead) -> Result<Prepared, LogError> {
    let secret = crate::envelope::fresh_secret()?;
    let envelope = p::Envelope {
        version: ENVELOPE_VERSION,
        chain: draft.chain.clone(),
        sequence: head.sequence + 1,
        prev_hash: head.hash.to_vec(),
        event_id: draft.event_id.clone(),
        recorded_at: Some(draft.recorded_at),
        actor: draft.actor.clone(),
        command_hash: draft.command_hash.to_vec(),
        event: Some(draft.event.clone()),
        secret,
    };
    let bytes = bytes::Bytes::from(envelope.encode_to_vec());
    Ok(Prepared {
        hash: hash(&bytes),
        bytes,
        sequence: head.sequence + 1,
    })
}

/// A publish on its way; `outcome` waits for the server's answer.
pub struct InFlight {
    ack: Option<jetstream::context::PublishAckFuture>,
    error: Option<String>,
    timeout: Duration,
}

impl InFlight {
    pub async fn outcome(self) -> PublishOutcome {
        let Some(ack) = self.ack else {
            return PublishOutcome::Retry(self.error.unwrap_or_default());
        };
        match tokio::time::timeout(self.timeout, ack).await {
            Err(_) => PublishOutcome::Retry(format!("no acknowledgement within {:?}", self.timeout)),
            Ok(result) => outcome(result),
        }
    }
}

/// Compares the settings asked for with those the server echoed: every field
/// present in the request must come back unchanged.
pub fn check_echo(
    what: &str,
    asked: &impl serde::Serialize,
    echoed: &impl serde::Serialize,
    version: &str,
) -> Result<(), LogError> {
    let asked = serde_json::to_value(asked).map_err(storage)?;
    let echoed = serde_json::to_value(echoed).map_err(storage)?;
    let (Some(asked), Some(echoed)) = (asked.as_object(), echoed.as_object()) else {
        return Err(LogError::Config(format!("{what} settings are not an object")));
    };
    let differing: Vec<String> = asked
        .iter()
        .filter(|(key, value)| echoed.get(*key) != Some(*value))
        .map(|(key, value)| {
            let back = echoed.get(key).map_or_else(|| "nothing".to_string(), |v| v.to_string());
            format!("`{key}` (asked for {value}, the server has {back})")
        })
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    Err(LogError::Config(format!(
        "nats-server {version} did not keep the {what} settings {}; this server version does not \
         support them, or the {what} was created with other settings",
        differing.join(", ")
    )))
}

impl ChainLog for JetStreamLog {
    async fn append_after(&self, draft: Draft, expected: ChainHead) -> Result<Appended, LogError> {
        let prepared = prepare(&draft, expected)?;
        let subject = self.subject(&draft.chain);
        let mut last_error = String::new();
        for attempt in 0..PUBLISH_ATTEMPTS {
            let sent = self
                .send(
                    &draft.chain,
                    prepared.bytes.clone(),
                    &draft.event_id,
                    expected.position,
                    None,
                )
                .await;
            match sent.outcome().await {
                PublishOutcome::Stored(ack) if !ack.duplicate => {
                    return Ok(Appended {
                        position: end_of(ack.sequence),
                        chain: draft.chain,
                        sequence: prepared.sequence,
                        hash: prepared.hash,
                        duplicate: false,
                    })
                }
                PublishOutcome::Stored(ack) => {
                    // Stored before (an earlier attempt whose acknowledgement
                    // was lost, or another writer with the same event id):
                    // report what is stored.
                    let stored = self
                        .message_from_leader(ack.sequence)
                        .await?
                        .and_then(|events| events.into_iter().find(|e| e.envelope.event_id == draft.event_id))
                        .ok_or_else(|| {
                            LogError::Storage(format!(
                                "the duplicate of {} at stream sequence {} is not readable",
                                draft.event_id, ack.sequence
                            ))
                        })?;
                    return Ok(Appended {
                        position: stored.position,
                        chain: stored.envelope.chain.clone(),
                        sequence: stored.envelope.sequence,
                        hash: stored.hash,
                        duplicate: true,
                    });
                }
                PublishOutcome::Conflict => {
                    return Err(LogError::Conflict {
                        chain: draft.chain,
                        reason: format!(
                            "the chain has moved past position {} (another writer appended)",
                            expected.position
                        ),
                    })
                }
                PublishOutcome::Failed(e) => return Err(LogError::Storage(format!("publish to {subject}: {e}"))),
                PublishOutcome::Retry(e) => {
                    tracing::warn!(attempt, error = %e, event_id = %draft.event_id, "publish not acknowledged; retrying with the same message id");
                    last_error = e;
                    self.count_retry();
                    tokio::time::sleep(Duration::from_millis(100 * (attempt as u64 + 1).min(5))).await;
                }
            }
        }
        Err(LogError::Unavailable(format!(
            "no acknowledgement for {} after {PUBLISH_ATTEMPTS} attempts ({last_error}); it may have been \
             stored: retry with the same command id",
            draft.event_id
        )))
    }

    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, LogError> {
        let last = self.last_position().await?;
        let mut out = Vec::new();
        if from.max(1) > last || limit == 0 {
            return Ok(out);
        }
        let mut reader = self.reader(from);
        while out.len() < limit && reader.next <= last {
            let batch = reader
                .next_batch((limit - out.len()).min(1024), Duration::from_millis(500))
                .await?;
            if batch.is_empty() {
                break;
            }
            out.extend(batch.into_iter().filter(|e| e.position <= last));
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn last_position(&self) -> Result<u64, LogError> {
        // Answered by the stream's leader: while a cluster elects one,
        // nobody answers, and the caller is better told so soon and asks
        // again than kept for the whole request timeout.
        let info = tokio::time::timeout(STREAM_END_TIMEOUT, self.stream.get_info())
            .await
            .map_err(|_| {
                LogError::Unavailable(format!(
                    "NATS did not say where the stream ends within {STREAM_END_TIMEOUT:?} (is a leader being elected?); retry with the same command id"
                ))
            })?
            .map_err(storage)?;
        Ok(end_of(info.state.last_sequence))
    }

    async fn head(&self, chain: &str) -> Result<ChainHead, LogError> {
        match self.stream.direct_get_last_for_subject(self.subject(chain)).await {
            Ok(m) => {
                let e = decode_message(m.sequence, &m.payload)?
                    .pop()
                    .ok_or_else(|| LogError::Storage(format!("the message at {} holds no event", m.sequence)))?;
                Ok(ChainHead {
                    sequence: e.envelope.sequence,
                    hash: e.hash,
                    position: e.position,
                })
            }
            Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => Ok(ChainHead::default()),
            Err(e) => Err(storage(e)),
        }
    }
}

/// The most sequences a stream may skip at once before the gap is taken for
/// a hole: skips come one per refused publish.
const MAX_SKIPPED: u64 = 4096;

/// Reads the stream in order through an ephemeral pull consumer that
/// starts where the reader is and keeps pulling; any error drops it and the
/// next batch makes a new one from the same place, so a reader survives
/// server restarts and leader changes without skipping or repeating.
pub struct Reader {
    log: JetStreamLog,
    /// The lowest position still to return.
    next: u64,
    messages: Option<consumer::pull::Stream>,
}

impl Reader {
    /// The lowest position this reader will return next.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The stream sequence of the next message this reader takes.
    fn next_message(&self) -> u64 {
        message_of(self.next).max(1)
    }

    /// Drops the consumer; the next batch makes a new one from the same
    /// place. For a consumer that keeps sending heartbeats but no messages
    /// although the stream has moved on (seen after a stream leader was
    /// killed: the consumer stayed on a replica that stopped following).
    pub fn restart(&mut self) {
        self.messages = None;
    }

    async fn open(&mut self) -> Result<consumer::pull::Stream, LogError> {
        if let Some(m) = self.messages.take() {
            return Ok(m);
        }
        {
            let wanted = consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: self.next_message(),
                },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(60),
                num_replicas: 1,
                // Not `memory_storage`: async-nats sends it as a key the
                // server does not know, and the echo check refuses that.
                ..Default::default()
            };
            let c = self
                .log
                .stream
                .create_consumer(wanted.clone())
                .await
                .map_err(|e| LogError::Unavailable(format!("create a reader on the stream: {e}")))?;
            check_echo("consumer", &wanted, &c.cached_info().config, &self.log.server_version())?;
            let messages = c
                .stream()
                .max_messages_per_batch(1024)
                // Short heartbeats: a reader notices a lost server within
                // seconds and starts over from where it is.
                .heartbeat(Duration::from_secs(1))
                .expires(Duration::from_secs(10))
                .messages()
                .await
                .map_err(|e| LogError::Unavailable(format!("read the stream: {e}")))?;
            Ok(messages)
        }
    }

    /// Events from the reader's position on, up to `max` unless a message
    /// holds more: waits up to `wait` for the first message, then takes what
    /// has already arrived. Empty when nothing arrived in that time.
    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredEvent>, LogError> {
        // On an error the consumer is dropped; the next call makes a new one.
        let mut messages = self.open().await?;
        let mut next = self.next;
        let (mut out, gap) = Self::take(&mut messages, &mut next, max, wait).await?;
        if let Some((sequence, events)) = gap {
            // A clustered stream skips the sequence of a publish that failed
            // its precondition at the leader (the replicas stay in step):
            // the skipped sequences hold nothing. A sequence the stream does
            // hold was lost by this reader (a consumer that missed deliveries
            // while the stream's leader changed): it reads again from there.
            // A long run of empty sequences is a hole in the stream.
            let missing = message_of(next).max(1)..sequence;
            let mut lost = None;
            for skipped in missing.clone().take(MAX_SKIPPED as usize + 1) {
                if self.log.message_from_leader(skipped).await?.is_some() {
                    lost = Some(skipped);
                    break;
                }
            }
            if let Some(skipped) = lost {
                tracing::warn!(
                    sequence = skipped,
                    "the stream's reader skipped messages the stream holds; reading again from there"
                );
                self.messages = None;
                self.next = next;
                return Ok(out);
            }
            if missing.end - missing.start > MAX_SKIPPED {
                return Err(LogError::Corrupt {
                    position: next,
                    reason: format!(
                        "the stream jumps from sequence {} to {sequence}",
                        missing.start.saturating_sub(1)
                    ),
                });
            }
            next = end_of(sequence) + 1;
            out.extend(events);
        }
        self.next = next;
        self.messages = Some(messages);
        Ok(out)
    }

    /// Events in order from `next` on; stops before a gap in the stream's
    /// sequence, returning the message after it for the caller to check.
    async fn take(
        messages: &mut consumer::pull::Stream,
        next: &mut u64,
        max: usize,
        wait: Duration,
    ) -> Result<(Vec<StoredEvent>, Option<(u64, Vec<StoredEvent>)>), LogError> {
        use futures_util::FutureExt;
        let mut out = Vec::new();
        let first = match tokio::time::timeout(wait, messages.next()).await {
            Err(_) => return Ok((out, None)),
            Ok(m) => m,
        };
        let mut item = first;
        loop {
            let m = match item {
                None => return Err(LogError::Unavailable("the stream's reader ended".into())),
                Some(m) => m.map_err(|e| LogError::Unavailable(format!("read the stream: {e}")))?,
            };
            let sequence = m
                .info()
                .map_err(|e| LogError::Storage(format!("message without stream metadata: {e}")))?
                .stream_sequence;
            let expected = message_of(*next).max(1);
            if sequence >= expected {
                let mut events = decode_message(sequence, &m.payload)?;
                on_its_subject(&m.subject, &events)?;
                events.retain(|e| e.position >= *next);
                if sequence != expected {
                    return Ok((out, Some((sequence, events))));
                }
                out.extend(events);
                *next = end_of(sequence) + 1;
            }
            if out.len() >= max.max(1) {
                return Ok((out, None));
            }
            // Whatever has already arrived, without waiting.
            match messages.next().now_or_never() {
                Some(more) => item = more,
                None => return Ok((out, None)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(i: u8) -> bytes::Bytes {
        let draft = crate::conformance::draft("fac-a", &format!("e{i}"));
        let head = ChainHead {
            sequence: u64::from(i),
            ..ChainHead::default()
        };
        prepare(&draft, head).expect("prepare").bytes
    }

    #[test]
    fn a_batch_decodes_to_its_envelopes_at_positions_that_end_at_the_message_end() {
        let envelopes: Vec<bytes::Bytes> = (0..5).map(envelope).collect();
        let payload = batch_payload(&envelopes);
        assert_eq!(payload.first(), Some(&BATCH_MARK));
        let events = decode_message(7, &payload).expect("decode");
        assert_eq!(events.len(), 5);
        for (i, (e, bytes)) in events.iter().zip(&envelopes).enumerate() {
            assert_eq!(e.bytes, bytes.to_vec(), "envelope {i} byte for byte");
            assert_eq!(e.position, position(7, 5, i));
            assert_eq!(message_of(e.position), 7);
        }
        assert_eq!(events[4].position, end_of(7));
        assert!(events.windows(2).all(|w| follows(w[0].position, w[1].position, false)));
        assert!(follows(end_of(6), events[0].position, true));
        assert!(!follows(end_of(6), events[1].position, false));
        assert!(!follows(end_of(5), events[0].position, true));
        assert!(follows(0, position(1, 3, 0), true));

        // One envelope is stored bare, as before batches.
        let one = batch_payload(&envelopes[..1]);
        assert_eq!(one, envelopes[0]);
        let single = decode_message(9, &one).expect("decode");
        assert_eq!(single[0].position, end_of(9));

        // A batch id names exactly its events.
        assert_eq!(batch_id(&["e0"]), "e0");
        assert_ne!(batch_id(&["e0", "e1"]), batch_id(&["e0", "e1", "e2"]));
        assert_ne!(batch_id(&["e0", "e1"]), batch_id(&["e0e", "1"]));
        // Computed apart: blake3 over each id's length (eight bytes, little
        // endian) and bytes, in order.
        let mut h = blake3::Hasher::new();
        h.update(&[2, 0, 0, 0, 0, 0, 0, 0]);
        h.update(b"e0");
        h.update(&[2, 0, 0, 0, 0, 0, 0, 0]);
        h.update(b"e1");
        assert_eq!(batch_id(&["e0", "e1"]), format!("batch:{}", h.finalize().to_hex()));
        assert_ne!(batch_id(&["e0", "e1"]), batch_id(&["e1", "e0"]));
    }

    #[test]
    fn a_damaged_batch_is_refused_as_corrupt_not_read_short() {
        let envelopes: Vec<bytes::Bytes> = (0..3).map(envelope).collect();
        let payload = batch_payload(&envelopes).to_vec();
        let corrupt = |p: &[u8]| matches!(decode_message(3, p), Err(LogError::Corrupt { .. }));
        assert!(corrupt(&payload[..payload.len() - 1]), "cut short");
        let mut longer = payload.clone();
        longer.push(0);
        assert!(corrupt(&longer), "bytes after the last entry");
        let mut one = payload.clone();
        one[1] = 1;
        assert!(corrupt(&one), "a batch of one");
        assert!(corrupt(&[BATCH_MARK]), "no count");
        let mut huge = vec![BATCH_MARK];
        prost::encoding::encode_varint(MAX_BATCH as u64 + 1, &mut huge);
        assert!(corrupt(&huge), "more than a message may hold");
        assert!(corrupt(b"not an envelope"));
    }
}
