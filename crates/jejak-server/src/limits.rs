//! The limits every request meets, answered with the codes gRPC clients'
//! retry policies key on: a request past its deadline (the server's
//! `--request-timeout`, or the client's shorter `grpc-timeout`) is
//! DEADLINE_EXCEEDED, and a request larger than the server reads is
//! RESOURCE_EXHAUSTED (tonic itself would answer CANCELLED and OUT_OF_RANGE).
//! Plain HTTP callers get 504 and 413 as `application/problem+json`.

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
    let refusal = Refusal::new(
        ErrorCode::TooLarge,
        format!(
            "the request is larger than the {} bytes this server reads; split the command (see the limits in the README)",
            jejak_proto::MAX_MESSAGE_SIZE
        ),
    );
    refusal_response(&refusal, true)
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
        let answer = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(response)) => Ok(match in_flight {
                    Some(guard) => retold_too_large(response).map(|body| Body::new(Guarded { body, _guard: guard })),
                    None => retold_too_large(response),
                }),
                Ok(Err(e)) => Err(e),
                Err(_) => {
                    let refusal = Refusal::new(
                        ErrorCode::DeadlineExceeded,
                        format!("the request was not answered within its deadline of {timeout:?}"),
                    );
                    Ok(refusal_response(&refusal, grpc))
                }
            }
        })
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

/// A response body that keeps its request counted as in flight.
struct Guarded {
    body: Body,
    _guard: InFlight,
}

impl http_body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
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
