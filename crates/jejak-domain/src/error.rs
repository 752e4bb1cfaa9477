//! The errors a command can be refused with; each maps to one gRPC status in
//! the service layer, and none of them means anything was written.

use crate::quantity::Unit;

/// Which write-side rule a command broke; callers tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Consuming, packing or shipping more than a lot has left.
    MassBalance,
    /// A quantity in a unit with no defined conversion to the lot's unit.
    UnitMismatch,
    /// The lot is on hold, recalled, disposed, non-conformant or voided.
    LotNotUsable,
    /// The lot, or the command, belongs to another facility.
    WrongFacility,
    /// A party lacks the role the command needs (owner must be a UKM, …).
    PartyRole,
    /// The product of a lot does not fit (GTIN differs, unit of another dimension).
    ProductMismatch,
    /// The event cannot be voided (already voided, or its effects were built on).
    NotVoidable,
    /// Status change not allowed from the lot's current status.
    StatusTransition,
    /// The token is already revoked.
    TokenRevoked,
    /// A transfer names a source lot that was not shipped to the receiving
    /// facility's operator (or not as much of it as is received).
    NotInTransit,
    /// Timber received at a facility that requires legality documents
    /// without valid ones (an SVLK certificate or DKP, and an SKSHH or nota
    /// angkutan).
    TimberLegality,
}

/// The most bytes of a client's value an error message or log line quotes.
pub const QUOTE_LIMIT: usize = 64;

/// A value as messages and logs quote it: escaped and in full up to
/// [`QUOTE_LIMIT`] bytes; longer, its first 64 bytes, an ellipsis and its
/// length: `"LLLL…" (1048576 bytes)`. A refusal never echoes a megabyte.
pub fn quote(value: &str) -> String {
    if value.len() <= QUOTE_LIMIT {
        return format!("{value:?}");
    }
    let mut end = QUOTE_LIMIT;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("\"{}…\" ({} bytes)", value[..end].escape_debug(), value.len())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Malformed input: the field and what is wrong with it.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{what} {} not found", quote(.id))]
    NotFound { what: &'static str, id: String },
    #[error("{what} {} already exists", quote(.id))]
    AlreadyExists { what: &'static str, id: String },
    /// A write-side rule broken by an otherwise well-formed command.
    #[error("{message}")]
    Rule { rule: Rule, message: String },
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> DomainError {
        DomainError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The error of a field checked on its own, named where it sits: an
    /// invalid field `f` becomes `prefix.f` (as if checked under `prefix`);
    /// other errors are unchanged. Decoding checks fields by their own
    /// names and builds the full path only for the one refused.
    pub fn under(self, prefix: &str) -> DomainError {
        match self {
            DomainError::Invalid { field, reason } if !prefix.is_empty() => DomainError::Invalid {
                field: format!("{prefix}.{field}"),
                reason,
            },
            other => other,
        }
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> DomainError {
        DomainError::NotFound { what, id: id.into() }
    }

    pub fn exists(what: &'static str, id: impl Into<String>) -> DomainError {
        DomainError::AlreadyExists { what, id: id.into() }
    }

    pub fn rule(rule: Rule, message: impl Into<String>) -> DomainError {
        DomainError::Rule {
            rule,
            message: message.into(),
        }
    }

    pub fn unit_mismatch(from: Unit, to: Unit) -> DomainError {
        DomainError::rule(
            Rule::UnitMismatch,
            format!(
                "cannot convert {from} ({}) to {to} ({}): no conversion between these units",
                from.dimension(),
                to.dimension()
            ),
        )
    }

    /// The rule broken, if this is a rule violation.
    pub fn broken_rule(&self) -> Option<Rule> {
        match self {
            DomainError::Rule { rule, .. } => Some(*rule),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole_and_long_ones_cut_with_their_length() {
        assert_eq!(quote("DMK-1"), "\"DMK-1\"");
        let long = "L".repeat(1 << 20);
        let q = quote(&long);
        assert_eq!(q, format!("\"{}…\" (1048576 bytes)", "L".repeat(64)));
        // A cut never splits a character.
        let wide = "é".repeat(100);
        assert!(quote(&wide).starts_with(&format!("\"{}…", "é".repeat(32))));
        let e = DomainError::not_found("lot", long);
        assert!(e.to_string().len() < 120, "{e}");
    }
}
