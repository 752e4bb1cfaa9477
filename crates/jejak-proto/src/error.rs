//! The one error table: every kind of refusal maps here, once, to a gRPC
//! code and an HTTP status, and travels as the standard rich error model
//! (`google.rpc.ErrorInfo` with the reason and domain `jejak`, `BadRequest`
//! naming the field, `RetryInfo` when the caller should wait) or as
//! `application/problem+json` with the same reason.

use std::time::Duration;

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every refusal jejak makes.
pub const ERROR_DOMAIN: &str = "jejak";

/// The kinds of refusal callers tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Malformed input; the field is named.
    InvalidArgument,
    NotFound,
    AlreadyExists,
    /// A write-side rule broken by a well-formed command.
    RuleBroken,
    /// Another writer got there first; retrying with the same id is safe.
    Conflict,
    Unauthenticated,
    PermissionDenied,
    /// Too many requests: wait and retry.
    RateLimited,
    /// A request larger than the server reads.
    TooLarge,
    /// The request's deadline passed before it was answered.
    DeadlineExceeded,
    /// The server cannot answer now (a store shutting down, NATS away).
    Unavailable,
    /// A fault of the server.
    Internal,
}

impl ErrorCode {
    /// The gRPC code (the codes clients' retry policies key on).
    pub fn grpc(self) -> Code {
        match self {
            ErrorCode::InvalidArgument => Code::InvalidArgument,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::AlreadyExists => Code::AlreadyExists,
            ErrorCode::RuleBroken => Code::FailedPrecondition,
            ErrorCode::Conflict => Code::Aborted,
            ErrorCode::Unauthenticated => Code::Unauthenticated,
            ErrorCode::PermissionDenied => Code::PermissionDenied,
            ErrorCode::RateLimited | ErrorCode::TooLarge => Code::ResourceExhausted,
            ErrorCode::DeadlineExceeded => Code::DeadlineExceeded,
            ErrorCode::Unavailable => Code::Unavailable,
            ErrorCode::Internal => Code::Internal,
        }
    }

    /// The HTTP status.
    pub fn http(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            ErrorCode::InvalidArgument => S::BAD_REQUEST,
            ErrorCode::NotFound => S::NOT_FOUND,
            ErrorCode::AlreadyExists | ErrorCode::Conflict => S::CONFLICT,
            ErrorCode::RuleBroken => S::UNPROCESSABLE_ENTITY,
            ErrorCode::Unauthenticated => S::UNAUTHORIZED,
            ErrorCode::PermissionDenied => S::FORBIDDEN,
            ErrorCode::RateLimited => S::TOO_MANY_REQUESTS,
            ErrorCode::TooLarge => S::PAYLOAD_TOO_LARGE,
            ErrorCode::DeadlineExceeded => S::GATEWAY_TIMEOUT,
            ErrorCode::Unavailable => S::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// The reason of a refusal that has no more specific one.
    pub fn default_reason(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::RuleBroken => "RULE_BROKEN",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::TooLarge => "REQUEST_TOO_LARGE",
            ErrorCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

/// An error a service answers with: its kind, a machine-readable reason
/// (`MASS_BALANCE`, `NOT_FOUND`, …) and, for invalid input, the field.
pub trait ServiceError: std::fmt::Display {
    fn error_code(&self) -> ErrorCode;

    fn reason(&self) -> &'static str {
        self.error_code().default_reason()
    }

    /// The request field that is wrong (`lot_id`, `inputs[2].quantity`).
    fn field(&self) -> Option<&str> {
        None
    }

    /// How long the caller should wait before trying again.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// The write-side rule broken, as the `jejak-rule` metadata names it.
    fn rule(&self) -> Option<&'static str> {
        None
    }
}

/// A refusal made by a transport itself (the authentication layer, the
/// resolver, the server's limits) rather than by a library.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: ErrorCode,
    pub reason: &'static str,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: code.default_reason(),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn with_reason(mut self, reason: &'static str) -> Refusal {
        self.reason = reason;
        self
    }

    pub fn with_retry_after(mut self, wait: Duration) -> Refusal {
        self.retry_after = Some(wait);
        self
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ServiceError for Refusal {
    fn error_code(&self) -> ErrorCode {
        self.code
    }

    fn reason(&self) -> &'static str {
        self.reason
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// The longest message a refusal carries: gRPC clients refuse headers of
/// more than a few KiB, and no value is quoted at more than 64 bytes.
const MAX_MESSAGE: usize = 900;

/// A message cut to `MAX_MESSAGE` bytes (at a character), marked `…` when cut:
/// a refusal repeats what it was sent, which may be large.
pub fn bounded(message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// The gRPC status of an error, with the rich error details and the
/// `jejak-rule` metadata older clients read.
pub fn to_status(e: &(impl ServiceError + ?Sized)) -> tonic::Status {
    let code = e.error_code();
    let mut details = ErrorDetails::new();
    let mut metadata = std::collections::HashMap::new();
    if let Some(rule) = e.rule() {
        metadata.insert("rule".to_string(), rule.to_string());
    }
    details.set_error_info(e.reason(), ERROR_DOMAIN, metadata);
    if let Some(field) = e.field() {
        details.add_bad_request_violation(field, bounded(e.to_string()));
    }
    if let Some(wait) = e.retry_after() {
        details.set_retry_info(Some(wait));
    }
    let mut status = tonic::Status::with_error_details(code.grpc(), bounded(e.to_string()), details);
    if let Some(rule) = e.rule() {
        if let Ok(v) = rule.parse() {
            status.metadata_mut().insert("jejak-rule", v);
        }
    }
    status
}

/// An `application/problem+json` body (RFC 9457) for an error, with the
/// same reason the gRPC refusal carries.
pub fn problem_json(e: &(impl ServiceError + ?Sized)) -> serde_json::Value {
    let code = e.error_code();
    let status = code.http();
    let mut body = serde_json::json!({
        "type": format!("https://jejak.dev/problems/{}", e.reason().to_ascii_lowercase().replace('_', "-")),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": bounded(e.to_string()),
        "reason": e.reason(),
        "domain": ERROR_DOMAIN,
    });
    if let Some(field) = e.field() {
        body["field"] = serde_json::Value::from(field);
    }
    if let Some(rule) = e.rule() {
        body["rule"] = serde_json::Value::from(rule);
    }
    body
}

impl ServiceError for jejak_domain::DomainError {
    fn error_code(&self) -> ErrorCode {
        use jejak_domain::DomainError as D;
        match self {
            D::Invalid { .. } => ErrorCode::InvalidArgument,
            D::NotFound { .. } => ErrorCode::NotFound,
            D::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            D::Rule { .. } => ErrorCode::RuleBroken,
        }
    }

    fn reason(&self) -> &'static str {
        match self.broken_rule() {
            Some(rule) => rule_names(rule).0,
            None => self.error_code().default_reason(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            jejak_domain::DomainError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    fn rule(&self) -> Option<&'static str> {
        self.broken_rule().map(|rule| rule_names(rule).1)
    }
}

/// A rule's names, once: the `ErrorInfo` reason and the `jejak-rule`
/// metadata older clients read.
fn rule_names(rule: jejak_domain::Rule) -> (&'static str, &'static str) {
    use jejak_domain::Rule;
    match rule {
        Rule::MassBalance => ("MASS_BALANCE", "mass-balance"),
        Rule::UnitMismatch => ("UNIT_MISMATCH", "unit-mismatch"),
        Rule::LotNotUsable => ("LOT_NOT_USABLE", "lot-not-usable"),
        Rule::WrongFacility => ("WRONG_FACILITY", "wrong-facility"),
        Rule::PartyRole => ("PARTY_ROLE", "party-role"),
        Rule::ProductMismatch => ("PRODUCT_MISMATCH", "product-mismatch"),
        Rule::NotVoidable => ("NOT_VOIDABLE", "not-voidable"),
        Rule::StatusTransition => ("STATUS_TRANSITION", "status-transition"),
        Rule::TokenRevoked => ("TOKEN_REVOKED", "token-revoked"),
        Rule::NotInTransit => ("NOT_IN_TRANSIT", "not-in-transit"),
        Rule::TimberLegality => ("TIMBER_LEGALITY", "timber-legality"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jejak_domain::{DomainError, Rule};

    #[test]
    fn every_code_has_one_grpc_code_and_one_http_status() {
        let all = [
            ErrorCode::InvalidArgument,
            ErrorCode::NotFound,
            ErrorCode::AlreadyExists,
            ErrorCode::RuleBroken,
            ErrorCode::Conflict,
            ErrorCode::Unauthenticated,
            ErrorCode::PermissionDenied,
            ErrorCode::RateLimited,
            ErrorCode::TooLarge,
            ErrorCode::DeadlineExceeded,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ];
        let table: Vec<_> = all.iter().map(|c| (c.grpc(), c.http().as_u16())).collect();
        assert_eq!(
            table,
            vec![
                (Code::InvalidArgument, 400),
                (Code::NotFound, 404),
                (Code::AlreadyExists, 409),
                (Code::FailedPrecondition, 422),
                (Code::Aborted, 409),
                (Code::Unauthenticated, 401),
                (Code::PermissionDenied, 403),
                (Code::ResourceExhausted, 429),
                (Code::ResourceExhausted, 413),
                (Code::DeadlineExceeded, 504),
                (Code::Unavailable, 503),
                (Code::Internal, 500),
            ]
        );
    }

    #[test]
    fn a_broken_rule_carries_error_info_and_the_rule_metadata() {
        let e = DomainError::rule(Rule::MassBalance, "lot L1 has 5 kg left");
        let status = to_status(&e);
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status.metadata().get("jejak-rule").and_then(|v| v.to_str().ok()),
            Some("mass-balance")
        );
        let details = status.get_error_details();
        let info = details.error_info().expect("an ErrorInfo");
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("MASS_BALANCE", "jejak"));
        assert!(details.bad_request().is_none());
        assert_eq!(problem_json(&e)["reason"], "MASS_BALANCE");
        assert_eq!(problem_json(&e)["status"], 422);
    }

    #[test]
    fn invalid_input_names_its_field_in_a_bad_request() {
        let e = DomainError::invalid("inputs[2].lot_id", "is required");
        let status = to_status(&e);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = &details.bad_request().expect("a BadRequest").field_violations;
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "inputs[2].lot_id");
    }

    #[test]
    fn a_rate_limit_tells_how_long_to_wait() {
        let e = Refusal::new(ErrorCode::RateLimited, "slow down").with_retry_after(Duration::from_secs(1));
        let details = to_status(&e).get_error_details();
        let retry = details.retry_info().expect("a RetryInfo");
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(1)));
    }

    #[test]
    fn a_message_never_grows_past_its_bound() {
        let e = Refusal::new(ErrorCode::Internal, "x".repeat(10_000));
        assert!(to_status(&e).message().len() < 1024);
    }
}
