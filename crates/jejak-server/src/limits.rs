//! The limits every request meets, answered with the codes gRPC clients'
//! retry policies key on: a request past its deadline (the server's
//! `--request-timeout`, or the client's shorter `grpc-timeout`) is
//! DEADLINE_EXCEEDED, and a request larger than the server reads is
//! RESOURCE_EXHAUSTED (tonic itself would answer CANCELLED and OUT_OF_RANGE).
//! Plain HTTP callers get 504 and 413 as `application/problem+json`.
//!
//! It also names every request: an id (the caller's `x-request-id` when it
//! is a plain token, else a new one) returned in the `x-request-id`
//! response header, and a tracing span `request` with the id, method and
//! route, in which the request is logged once its response (a stream's
//! last message) is done, with the HTTP status, the gRPC status and how
//! long it took.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use jejak_proto::{ErrorCode, Refusal};
use tonic::body::Body;

use crate::conn::{ConnInfo, InFlight};
use crate::error::{is_grpc, refusal_response};

/// How much sooner than the client's own `grpc-timeout` this layer answers,
/// so that its refusal, not tonic's, is the one sent.
const CLIENT_DEADLINE_MARGIN: Duration = Duration::from_millis(1);

/// The start of tonic's refusal of an oversized message.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";

/// A `grpc-timeout` header: up to eight digits and a unit.
fn grpc_timeout(value: &http::HeaderValue) -> Option<Duration> {
    let s = value.to_str().ok()?;
    if s.len() < 2 || s.len() > 9 {
        return None;
    }
    let (digits, unit) = s.split_at(s.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// tonic's refusal of an oversized request, told as RESOURCE_EXHAUSTED.
fn retold_too_large(response: http::Response<Body>) -> http::Response<Body> {
    let h = response.headers();
    let too_large = h.get("grpc-status").is_some_and(|v| v == "11")
        && h.get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| m.starts_with(TONIC_TOO_LARGE) || m.starts_with(&TONIC_TOO_LARGE.replace(' ', "%20")));
    if !too_large {
        return response;
    }
    refusal_response(&too_large_refusal(), true)
}

/// The refusal of a request larger than the server reads.
fn too_large_refusal() -> Refusal {
    Refusal::new(
        ErrorCode::TooLarge,
        format!(
            "the request is larger than the {} bytes this server reads; split the command (see the limits in the README)",
            jejak_proto::MAX_MESSAGE_SIZE
        ),
    )
}

/// The error a client's stream broke with, as this server tells it: a
/// message larger than it reads is RESOURCE_EXHAUSTED naming the limit, as
/// for a unary request (tonic says OUT_OF_RANGE, in the stream's trailers,
/// where `retold_too_large` does not see it).
pub fn retold_stream_error(e: tonic::Status) -> tonic::Status {
    if e.code() == tonic::Code::OutOfRange && e.message().starts_with(TONIC_TOO_LARGE) {
        crate::error::status(&too_large_refusal())
    } else {
        e
    }
}

/// When a request is cut off with DEADLINE_EXCEEDED: a handler that
/// retries inside (capture meeting other writers) gives up a little before.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub tokio::time::Instant);

impl Deadline {
    /// What a handler's own retries may use of the request's time: all but
    /// a margin to answer in.
    pub fn for_retries(self) -> tokio::time::Instant {
        self.0.checked_sub(Duration::from_millis(100)).unwrap_or(self.0)
    }
}

/// Deadlines and size refusals for every route.
#[derive(Debug, Clone, Copy)]
pub struct LimitsLayer {
    pub request_timeout: Duration,
}

impl<S> tower_layer::Layer<S> for LimitsLayer {
    type Service = Limits<S>;

    fn layer(&self, inner: S) -> Limits<S> {
        Limits {
            inner,
            request_timeout: self.request_timeout,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Limits<S> {
    inner: S,
    request_timeout: Duration,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B> tower_service::Service<http::Request<B>> for Limits<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let grpc = is_grpc(&request);
        let id = request_id(request.headers());
        let span = tracing::info_span!(
            "request",
            id = %id,
            method = %request.method(),
            route = %jejak_domain::quote(request.uri().path()),
        );
        let started = std::time::Instant::now();
        // The request counts as its connection's activity until its
        // response body (a stream's last message) is done.
        let in_flight = conn_info(&request).map(|c| c.activity.begin());
        let client = request
            .headers()
            .get("grpc-timeout")
            .and_then(grpc_timeout)
            .map(|t| t.saturating_sub(CLIENT_DEADLINE_MARGIN));
        let timeout = client.map_or(self.request_timeout, |c| c.min(self.request_timeout));
        request
            .extensions_mut()
            .insert(Deadline(tokio::time::Instant::now() + timeout));
        let answer = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let in_span = span.clone();
        Box::pin(tracing::Instrument::instrument(
            async move {
                let response = match tokio::time::timeout(timeout, answer).await {
                    Ok(Ok(response)) => retold_too_large(response),
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        let refusal = Refusal::new(
                            ErrorCode::DeadlineExceeded,
                            format!("the request was not answered within its deadline of {timeout:?}"),
                        );
                        refusal_response(&refusal, grpc)
                    }
                };
                let (mut parts, body) = response.into_parts();
                if let Ok(v) = http::HeaderValue::from_str(&id) {
                    parts.headers.insert("x-request-id", v);
                }
                let done = Done {
                    span,
                    started,
                    status: parts.status.as_u16(),
                    grpc_status: parts
                        .headers
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok()),
                };
                Ok(http::Response::from_parts(
                    parts,
                    Body::new(Tracked {
                        body,
                        _guard: in_flight,
                        done,
                    }),
                ))
            },
            in_span,
        ))
    }
}

/// The connection a request came on, over TLS or not.
fn conn_info<B>(request: &http::Request<B>) -> Option<&ConnInfo> {
    let ext = request.extensions();
    ext.get::<ConnInfo>().or_else(|| {
        ext.get::<tonic::transport::server::TlsConnectInfo<ConnInfo>>()
            .map(|t| t.get_ref())
    })
}

/// A request's id: the caller's `x-request-id` when it is 1-64 characters
/// of `[A-Za-z0-9._:-]` (a proxy's or a client's, to follow one request
/// across services), else a new one unique to this process.
fn request_id(headers: &http::HeaderMap) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let given = headers.get("x-request-id").and_then(|v| v.to_str().ok()).filter(|v| {
        (1..=64).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    });
    if let Some(id) = given {
        return id.to_string();
    }
    let prefix = *PREFIX.get_or_init(|| {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).map_or(std::process::id(), |()| u32::from_le_bytes(b))
    });
    format!("{prefix:08x}{:08x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// What is logged of a request once its response is done.
struct Done {
    span: tracing::Span,
    started: std::time::Instant,
    status: u16,
    /// From the response's headers, or its trailers when they come.
    grpc_status: Option<i32>,
}

impl Drop for Done {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        tracing::info!(
            parent: &self.span,
            status = self.status,
            grpc_status = self.grpc_status,
            duration_ms = took.as_secs_f64() * 1e3,
            "request done"
        );
    }
}

/// A response body that keeps its request counted as in flight, and logs
/// the request when it is done (or dropped: a client gone away).
struct Tracked {
    body: Body,
    _guard: Option<InFlight>,
    done: Done,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(code) = frame
                .trailers_ref()
                .and_then(|t| t.get("grpc-status"))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
            {
                self.done.grpc_status = Some(code);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_refuse_nonsense() {
        let t = |s: &'static str| grpc_timeout(&http::HeaderValue::from_static(s));
        assert_eq!(t("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(t("2M"), Some(Duration::from_secs(120)));
        assert_eq!(t("3S"), Some(Duration::from_secs(3)));
        assert_eq!(t("250m"), Some(Duration::from_millis(250)));
        assert_eq!(t("7u"), Some(Duration::from_micros(7)));
        assert_eq!(t("9n"), Some(Duration::from_nanos(9)));
        assert_eq!(t("123456789S"), None, "more than eight digits");
        assert_eq!(t("5x"), None);
        assert_eq!(t("S"), None);
        assert_eq!(t("-1S"), None);
    }
}
