//! The read side: what each caller may see, and the answers built from it.
//!
//! **Invariant:** this crate is the one privacy boundary. Every answer that
//! leaves jejak about a lot (gRPC replies, the provenance page and its
//! JSON, JSON-LD and linkset, and any later export) is narrowed here, by
//! [`View`], and nowhere else; transports render what [`Reader`] returns
//! and never read the genealogy themselves. It names no tonic and no HTTP,
//! and writes nothing.
//!
//! - [`view`]: who sees which lot in full, and the public view of the rest;
//! - [`reader`]: traces, shares, histories, lots, labels and exports, each
//!   answered only once what it was read from is durable;
//! - [`epcis`]: EPCIS 2.0 events, part by part as the view discloses them;
//! - [`provenance`]: the story of one label, which the resolver renders as
//!   HTML, JSON, JSON-LD and a linkset.

pub mod alerts;
pub mod bundle;
pub mod epcis;
pub mod eudr;
pub mod provenance;
pub mod reader;
pub mod timber;
pub mod view;

pub use reader::{ExportStream, Reader};
pub use view::View;

use jejak_domain::quote;
use jejak_genealogy::GenealogyError;
use jejak_log::LogError;
use jejak_proto::{ErrorCode, ServiceError};

/// Why a question was not answered.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The caller has no token and the answer is not public.
    #[error("the {what} of lot {} needs an access token", quote(.lot))]
    NeedsToken { what: &'static str, lot: String },
    /// The caller's token does not reach this lot.
    #[error(
        "{who} may not see the {what} of lot {}: it is neither at one of its facilities nor owned or supplied by its party",
        quote(.lot)
    )]
    Hidden {
        who: String,
        what: &'static str,
        lot: String,
    },
    /// A malformed question.
    #[error(transparent)]
    Invalid(#[from] jejak_domain::DomainError),
    #[error(transparent)]
    Genealogy(#[from] GenealogyError),
    #[error(transparent)]
    Log(#[from] LogError),
    /// The log lost an event the projection indexed: a fault of the server.
    #[error("log position {0} is missing")]
    Missing(u64),
    /// A query's worker ended without an answer (the server is shutting down).
    #[error("the query was interrupted: {0}")]
    Interrupted(String),
    /// The transparency log cannot answer (yet).
    #[error("{0}")]
    Transparency(String),
    /// A stored event the server cannot read back: a fault of the server.
    #[error("the event at log position {position} cannot be read: {problem}")]
    Unreadable { position: u64, problem: String },
    /// What the records hold is not enough for the answer asked for.
    #[error("{0}")]
    Incomplete(String),
}

impl ServiceError for ReadError {
    fn error_code(&self) -> ErrorCode {
        match self {
            ReadError::NeedsToken { .. } => ErrorCode::Unauthenticated,
            ReadError::Hidden { .. } => ErrorCode::PermissionDenied,
            ReadError::Invalid(e) => e.error_code(),
            ReadError::Genealogy(e) => e.error_code(),
            ReadError::Log(e) => e.error_code(),
            ReadError::Missing(_) | ReadError::Unreadable { .. } => ErrorCode::Internal,
            ReadError::Interrupted(_) | ReadError::Transparency(_) => ErrorCode::Unavailable,
            ReadError::Incomplete(_) => ErrorCode::RuleBroken,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ReadError::NeedsToken { .. } => "TOKEN_REQUIRED",
            ReadError::Hidden { .. } => "LOT_NOT_VISIBLE",
            ReadError::Invalid(e) => e.reason(),
            ReadError::Genealogy(e) => e.reason(),
            ReadError::Log(e) => e.reason(),
            ReadError::Missing(_) => "LOG_POSITION_MISSING",
            ReadError::Unreadable { .. } => "EVENT_UNREADABLE",
            ReadError::Interrupted(_) => "QUERY_INTERRUPTED",
            ReadError::Transparency(_) => "TRANSPARENCY_UNAVAILABLE",
            ReadError::Incomplete(_) => "RECORDS_INCOMPLETE",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ReadError::Invalid(e) => e.field(),
            _ => None,
        }
    }

    fn rule(&self) -> Option<&'static str> {
        match self {
            ReadError::Invalid(e) => e.rule(),
            _ => None,
        }
    }
}
