//! Maps every library error to a gRPC status, in one place, with a small
//! deliberate set of codes and messages a person can act on.

use jejak_domain::{DomainError, Rule};
use jejak_genealogy::GenealogyError;
use jejak_log::LogError;
use tonic::{Code, Status};

pub fn domain(e: DomainError) -> Status {
    let code = match &e {
        DomainError::Invalid { .. } => Code::InvalidArgument,
        DomainError::NotFound { .. } => Code::NotFound,
        DomainError::AlreadyExists { .. } => Code::AlreadyExists,
        DomainError::Rule { .. } => Code::FailedPrecondition,
    };
    let mut status = Status::new(code, e.to_string());
    if let Some(rule) = e.broken_rule() {
        let name = match rule {
            Rule::MassBalance => "mass-balance",
            Rule::UnitMismatch => "unit-mismatch",
            Rule::LotNotUsable => "lot-not-usable",
            Rule::WrongFacility => "wrong-facility",
            Rule::PartyRole => "party-role",
            Rule::ProductMismatch => "product-mismatch",
            Rule::NotVoidable => "not-voidable",
            Rule::StatusTransition => "status-transition",
            Rule::TokenRevoked => "token-revoked",
        };
        if let Ok(v) = name.parse() {
            status.metadata_mut().insert("jejak-rule", v);
        }
    }
    status
}

pub fn log(e: LogError) -> Status {
    match e {
        LogError::Unavailable(_) | LogError::Closed => Status::unavailable(e.to_string()),
        LogError::Conflict { .. } => Status::aborted(format!("{e}; retry the command")),
        LogError::Storage(_) | LogError::Corrupt { .. } | LogError::Config(_) => {
            tracing::error!(error = %e, "event log failure");
            Status::internal(e.to_string())
        }
    }
}

pub fn genealogy(e: GenealogyError) -> Status {
    match e {
        GenealogyError::NotFound { .. } => Status::not_found(e.to_string()),
        GenealogyError::InvalidArgument(_) => Status::invalid_argument(e.to_string()),
        GenealogyError::Storage(_) | GenealogyError::Corrupt { .. } => {
            tracing::error!(error = %e, "projection failure");
            Status::internal(e.to_string())
        }
    }
}
