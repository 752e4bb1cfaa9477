//! The lot-genealogy projection: an in-memory index of lots and their
//! input/output edges, kept in step with a sled store that records the same
//! state together with the log position it reflects, and the trace queries
//! answered from it.
//!
//! **Invariant:** the only crate that names the projection's sled tree; what
//! it stores is its own record types, written with the log position in one
//! batch and depending only on the state, so a rebuild is byte-identical.
//! It answers in full; narrowing for a caller is `jejak-read`'s.

mod facts;
mod graph;
mod master;
mod query;
mod records;
mod shares;
mod store;
#[cfg(test)]
mod tests;

pub use graph::{AppliedEvent, Genealogy};
pub use query::{LotParties, MasterData, TraceLimits};
pub use shares::ShareInput;
pub use store::{Chunking, Projection, ProjectionStatus, Snapshot, PERSIST_EVERY};

/// What can go wrong in the projection; callers tell these apart.
#[derive(Debug, thiserror::Error)]
pub enum GenealogyError {
    #[error("projection storage: {0}")]
    Storage(String),
    #[error("projection record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("{what} {} not found", jejak_domain::quote(.id))]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    InvalidArgument(String),
    /// An answer would cover more lots than the server's limit.
    #[error("the ancestry of lot {} has more than {limit} lots; its origin shares are not computed", jejak_domain::quote(.lot))]
    TooLarge { lot: String, limit: usize },
    /// Nobody waits for the answer any more (its request ended).
    #[error("the query was cancelled: its request ended")]
    Cancelled,
}

impl jejak_proto::ServiceError for GenealogyError {
    fn error_code(&self) -> jejak_proto::ErrorCode {
        use jejak_proto::ErrorCode;
        match self {
            GenealogyError::NotFound { .. } => ErrorCode::NotFound,
            GenealogyError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            GenealogyError::TooLarge { .. } => ErrorCode::TooLarge,
            GenealogyError::Cancelled => ErrorCode::DeadlineExceeded,
            GenealogyError::Storage(_) | GenealogyError::Corrupt { .. } => ErrorCode::Internal,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            GenealogyError::NotFound { .. } => "NOT_FOUND",
            GenealogyError::InvalidArgument(_) => "INVALID_ARGUMENT",
            GenealogyError::TooLarge { .. } => "ANCESTRY_TOO_LARGE",
            GenealogyError::Cancelled => "QUERY_CANCELLED",
            GenealogyError::Storage(_) => "PROJECTION_STORAGE",
            GenealogyError::Corrupt { .. } => "PROJECTION_CORRUPT",
        }
    }
}

impl From<sled::Error> for GenealogyError {
    fn from(e: sled::Error) -> Self {
        GenealogyError::Storage(e.to_string())
    }
}
