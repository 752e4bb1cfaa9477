//! The write engines and the projector loops, behind one
//! `submit(Submission, actor) -> Result<Receipt, EngineError>`.
//!
//! **Invariant:** this crate owns deciding, appending and applying events;
//! it names no tonic and no HTTP (transports map [`EngineError`] through
//! the error table in `jejak-proto`), and it never reads a caller's
//! identity beyond the actor string it records.
//!
//! - [`embedded`]: the sled log and the in-memory genealogy in one process;
//! - [`distributed`]: capture on NATS JetStream with a cache, and projectors;
//! - [`projector`]: applying a log to a projection (start-up, rebuild);
//! - [`offline`]: opening a data directory, `rebuild` and `verify`.

pub mod distributed;
pub mod embedded;
pub mod offline;
pub mod projector;
pub mod tlog;

use jejak_domain::{Command, DomainError, Event, Time, Verdict};
use jejak_log::{LogError, StoredEvent};
use jejak_proto::v1 as p;
use jejak_proto::ErrorCode;

pub use embedded::Writer;

/// A command as it enters an engine: its client-chosen id, the command,
/// and the hash of its content that tells a retry from a reuse of the id.
#[derive(Debug, Clone)]
pub struct Submission {
    pub id: String,
    pub command: Command,
    pub content_hash: [u8; 32],
    /// Until when an engine may keep retrying a command that met other
    /// writers (the caller's deadline); `None`: `DEFAULT_RETRY_FOR` from now.
    pub deadline: Option<tokio::time::Instant>,
}

/// How long a command that keeps meeting other writers is retried when
/// its caller named no deadline.
pub const DEFAULT_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(25);

/// Commands of one bulk stream (`Engine::submit_stream`) an engine reads
/// ahead of their answers: the bound on what a stream holds in memory.
pub const STREAM_WINDOW: usize = 1024;

impl TryFrom<p::command::Kind> for Submission {
    type Error = DomainError;

    fn try_from(kind: p::command::Kind) -> Result<Submission, DomainError> {
        let content_hash = content_hash(&kind);
        let (id, command) = jejak_proto::command_from_proto(kind)?;
        // A rule for new captures (a geometry stored before it is still
        // read), checked here, before an engine takes any lock: it depends
        // on the command alone, and may take a while.
        if let Command::ReceiveMaterial(e) = &command {
            if let Some(g) = &e.origin.geometry {
                g.check_polygons_apart("origin.geometry")?;
            }
        }
        Ok(Submission {
            id,
            command,
            content_hash,
            deadline: None,
        })
    }
}

/// What identifies a command's content for retries: the blake3 of prost's
/// re-encoding (the same whatever encoder the client used) of `Command
/// { kind }`, without what the server chose itself (a token's secret hash,
/// new on every attempt).
pub fn content_hash(kind: &p::command::Kind) -> [u8; 32] {
    let mut buf = Vec::with_capacity(kind.encoded_len());
    match kind {
        p::command::Kind::IssueToken(c) if !c.secret_hash.is_empty() => {
            p::command::Kind::IssueToken(p::IssueTokenCommand {
                secret_hash: Vec::new(),
                ..c.clone()
            })
            .encode(&mut buf);
        }
        _ => kind.encode(&mut buf),
    }
    *blake3::hash(&buf).as_bytes()
}

/// Where a recorded command landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub event_id: String,
    pub chain: String,
    pub sequence: u64,
    pub position: u64,
    pub hash: [u8; 32],
    pub recorded_at: Time,
    /// The id was already recorded with this content: the first result.
    pub replayed: bool,
    /// For a replay: the void that has since corrected the event (as far
    /// as this writer has followed the log), so the event no longer stands.
    pub voided_by: Option<String>,
    /// An inspection's computed verdict and findings.
    pub inspection: Option<(Verdict, Vec<String>)>,
}

impl Receipt {
    fn new(event_id: String, event: &Event, appended: jejak_log::Appended, recorded_at: Time) -> Receipt {
        Receipt {
            event_id,
            chain: appended.chain,
            sequence: appended.sequence,
            position: appended.position,
            hash: appended.hash,
            recorded_at,
            replayed: false,
            voided_by: None,
            inspection: inspection_of(event),
        }
    }

    /// The receipt answered to a retry of command `id` (content
    /// `content_hash`), from the stored event its id was found at: that
    /// event must be the command's (else what placed the id there is
    /// damaged) and of the same content (else the id is reused).
    fn replay_of(stored: &StoredEvent, id: &str, content_hash: [u8; 32]) -> Result<Receipt, EngineError> {
        if stored.envelope.event_id != id {
            return Err(EngineError::Log(jejak_log::LogError::Corrupt {
                position: stored.position,
                reason: format!(
                    "the index of event ids places {id:?} where {:?} is",
                    stored.envelope.event_id
                ),
            }));
        }
        if stored.envelope.command_hash != content_hash {
            return Err(EngineError::IdReused { id: id.to_string() });
        }
        Ok(Receipt::replayed(stored))
    }

    /// The receipt of a stored event, answered to a retry.
    fn replayed(e: &StoredEvent) -> Receipt {
        let event = e
            .envelope
            .event
            .clone()
            .and_then(|ev| jejak_proto::decode_event(ev).ok());
        Receipt {
            event_id: e.envelope.event_id.clone(),
            chain: e.envelope.chain.clone(),
            sequence: e.envelope.sequence,
            position: e.position,
            hash: e.hash,
            recorded_at: e
                .envelope
                .recorded_at
                .and_then(|t| Time::from_unix(t.seconds, t.nanos))
                .unwrap_or_default(),
            replayed: true,
            voided_by: None,
            inspection: event.as_ref().and_then(inspection_of),
        }
    }
}

fn inspection_of(event: &Event) -> Option<(Verdict, Vec<String>)> {
    match event {
        Event::LotInspected(i) => Some((i.verdict, i.findings.clone())),
        _ => None,
    }
}

/// Why an engine did not record a command. Nothing was written for any of them.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Malformed, unknown, duplicate, or against a rule.
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Log(#[from] LogError),
    /// The command id was recorded before with other content.
    #[error("command id {} was already used for a different command; choose a new id", jejak_domain::quote(.id))]
    IdReused { id: String },
    /// Other writers kept extending the chain the command was decided on
    /// until the caller's deadline.
    #[error(
        "other writers kept changing the same facility until the request's deadline; {attempts} attempts conflicted. Retry the command with the same id"
    )]
    Contended { attempts: usize },
    /// A capture instance could not follow the stream in time.
    #[error(
        "this capture instance has not caught up with the stream to position {position} (it is at {at}); is NATS reachable? Retry with the same command id"
    )]
    Behind { position: u64, at: u64 },
    /// Earlier commands of this capture instance that the command must
    /// follow (to the same facility, or one that goes alone) were still
    /// waiting for the log's acknowledgement at the caller's deadline: it
    /// was not sent.
    #[error(
        "earlier commands of this capture instance that this one must follow were still waiting for the event log to acknowledge them at the request's deadline, so it was not sent; retry it with the same command id"
    )]
    Queued,
    /// The log lost an event it indexed: a fault of the server.
    #[error("log position {0} is missing")]
    Missing(u64),
}

impl jejak_proto::ServiceError for EngineError {
    fn error_code(&self) -> ErrorCode {
        match self {
            EngineError::Domain(e) => e.error_code(),
            EngineError::Log(e) => e.error_code(),
            EngineError::IdReused { .. } => ErrorCode::AlreadyExists,
            EngineError::Contended { .. } => ErrorCode::Conflict,
            EngineError::Behind { .. } | EngineError::Queued => ErrorCode::Unavailable,
            EngineError::Missing(_) => ErrorCode::Internal,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            EngineError::Domain(e) => e.reason(),
            EngineError::Log(e) => e.reason(),
            EngineError::IdReused { .. } => "COMMAND_ID_REUSED",
            EngineError::Contended { .. } => "CHAIN_CONTENDED",
            EngineError::Behind { .. } => "CAPTURE_BEHIND",
            EngineError::Queued => "CAPTURE_QUEUED",
            EngineError::Missing(_) => "LOG_POSITION_MISSING",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            EngineError::Domain(e) => e.field(),
            _ => None,
        }
    }

    fn rule(&self) -> Option<&'static str> {
        match self {
            EngineError::Domain(e) => e.rule(),
            _ => None,
        }
    }
}

/// Submits commands one after the other; with `stop_on_error`, nothing
/// after the first refusal is tried.
pub async fn one_by_one<E: Engine + ?Sized>(
    engine: &E,
    submissions: Vec<Submission>,
    actor: &str,
    stop_on_error: bool,
) -> Vec<Result<Receipt, EngineError>> {
    let mut out = Vec::with_capacity(submissions.len());
    for s in submissions {
        let r = engine.submit(s, actor).await;
        let failed = r.is_err();
        out.push(r);
        if failed && stop_on_error {
            break;
        }
    }
    out
}

/// What records commands: the embedded writer, or the distributed one on
/// JetStream. Both decide against the current state, append, and answer
/// once the event is durable, with the first result for a repeated id.
pub trait Engine: Send + Sync + 'static {
    fn submit(
        &self,
        submission: Submission,
        actor: &str,
    ) -> impl std::future::Future<Output = Result<Receipt, EngineError>> + Send;

    /// Records commands in order (each decided after the one before is
    /// applied); with `stop_on_error`, nothing after the first refusal is
    /// tried. One after the other unless an engine can do better.
    fn submit_many(
        &self,
        submissions: Vec<Submission>,
        actor: &str,
        stop_on_error: bool,
    ) -> impl std::future::Future<Output = Vec<Result<Receipt, EngineError>>> + Send {
        one_by_one(self, submissions, actor, stop_on_error)
    }

    /// Records the commands of one bulk stream in the order they come
    /// (each decided after those before it), and sends each one's answer
    /// on `answers` in the same order, once it is durable. A `None` (a
    /// command the transport refused itself) is answered `None` in its
    /// place. Ends when `commands` ends and everything is answered, or when
    /// `answers` is closed (the caller went away): then every command read
    /// so far is recorded or not, and nothing more is read. One after the
    /// other unless an engine can do better.
    fn submit_stream(
        self: std::sync::Arc<Self>,
        mut commands: tokio::sync::mpsc::Receiver<Option<Submission>>,
        actor: String,
        answers: tokio::sync::mpsc::Sender<Option<Result<Receipt, EngineError>>>,
    ) -> impl std::future::Future<Output = ()> + Send
    where
        Self: Sized,
    {
        async move {
            while let Some(c) = commands.recv().await {
                let answer = match c {
                    Some(s) => Some(self.submit(s, &actor).await),
                    None => None,
                };
                if answers.send(answer).await.is_err() {
                    return;
                }
            }
        }
    }
}
