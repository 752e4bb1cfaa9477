//! Library errors as gRPC statuses: through the one error table
//! (`jejak_proto::ErrorCode`), with the rich error details. A fault of the
//! server is logged here, once, where it becomes INTERNAL.

use jejak_proto::{ErrorCode, Refusal, ServiceError};
use tonic::Status;

/// The status a caller gets for `e`.
pub fn status(e: &(impl ServiceError + ?Sized)) -> Status {
    if matches!(e.error_code(), ErrorCode::Internal) {
        tracing::error!(error = %e, reason = e.reason(), "server fault");
    }
    jejak_proto::to_status(e)
}

/// Whether a request is a gRPC call (by its content type).
pub(crate) fn is_grpc<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// A refusal made before a request reached its handler (authentication,
/// rate limits, deadlines, sizes): a gRPC status for gRPC callers,
/// `application/problem+json` otherwise.
pub(crate) fn refusal_response(refusal: &Refusal, grpc: bool) -> http::Response<tonic::body::Body> {
    if grpc {
        return jejak_proto::to_status(refusal).into_http();
    }
    let code = refusal.error_code().http();
    let body = jejak_proto::problem_json(refusal).to_string() + "\n";
    let mut r = http::Response::new(tonic::body::Body::new(http_body_util::Full::new(bytes::Bytes::from(
        body,
    ))));
    *r.status_mut() = code;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    if code == http::StatusCode::UNAUTHORIZED {
        h.insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
    }
    if let Some(wait) = refusal.retry_after {
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(wait.as_secs().max(1)),
        );
    }
    r
}
