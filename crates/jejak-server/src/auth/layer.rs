//! The layer every route goes through: reads the bearer token, checks it
//! against the token table, applies the rate limit, checks the route's need
//! and hands the handler a [`Caller`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use jejak_domain::{SharedClock, TokenTable};
use jejak_proto::{ErrorCode, Refusal};

use super::limiter::{BucketKey, Limiter, RateLimits};
use super::policy::{need, Caller, Principal};
use crate::conn::ConnInfo;
use crate::error::{is_grpc, refusal_response};

struct AuthState {
    tokens: Arc<TokenTable>,
    limiter: Limiter,
    clock: SharedClock,
    failures: FailureLog,
    /// Whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    proxies: crate::proxy::TrustedProxies,
}

impl AuthState {
    /// Authenticates, rate-limits and checks the route's need.
    fn admit<B>(&self, request: &http::Request<B>) -> Result<Caller, Refusal> {
        // The client: the connection's address, or behind a trusted proxy
        // the one it forwards for (its limits, its failures, its session).
        let peer = peer_of(request).map(|p| self.proxies.client(p, request.headers()));
        let path = request.uri().path();
        let caller = self.authenticate(request, peer).map_err(|reason| {
            // A failure costs the caller's address as a public request
            // would, so guessing tokens is as slow as the public limit.
            let limited = peer.is_some_and(|p| !self.limiter.admit(BucketKey::address(p.ip())));
            self.failures.record(peer, path, reason);
            match limited {
                true => too_many("this address"),
                false => Refusal::new(
                    ErrorCode::Unauthenticated,
                    format!("{reason}; ask an administrator for a valid token"),
                )
                .with_reason("TOKEN_INVALID"),
            }
        })?;
        let key = match &caller.principal {
            Principal::Token { id, .. } => Some(BucketKey::Token(id.clone())),
            Principal::Public => peer.map(|p| BucketKey::address(p.ip())),
        };
        if let Some(key) = key {
            if !self.limiter.admit(key) {
                return Err(too_many(&caller.describe()));
            }
        }
        let need = need(path);
        if !caller.allows(need) {
            let what = path.trim_start_matches('/');
            let what = jejak_domain::quote(what);
            return Err(match caller.principal {
                Principal::Public => Refusal::new(
                    ErrorCode::Unauthenticated,
                    format!("{what} needs an access token: send `authorization: Bearer <token>`"),
                ),
                _ => Refusal::new(
                    ErrorCode::PermissionDenied,
                    format!("{} may not call {what}", caller.describe()),
                ),
            });
        }
        Ok(caller)
    }

    /// The caller a request's `authorization` header names; the reason
    /// (never the token) when it names none that is valid.
    fn authenticate<B>(&self, request: &http::Request<B>, peer: Option<SocketAddr>) -> Result<Caller, &'static str> {
        let Some(value) = request.headers().get(http::header::AUTHORIZATION) else {
            return Ok(Caller {
                peer,
                principal: Principal::Public,
            });
        };
        let value = value.to_str().map_err(|_| "the authorization header is not text")?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or("the authorization header is not `Bearer <token>`")?
            .trim();
        let id = jejak_domain::access::claimed_id(token).ok_or("the token is malformed")?;
        let presented = blake3::hash(token.as_bytes());
        let now = self.clock.now();
        self.tokens.with(id, |record| {
            let record = record.ok_or("the token is unknown")?;
            // blake3::Hash compares in constant time.
            if presented != blake3::Hash::from(record.issued.secret_hash) {
                return Err("the token is unknown");
            }
            if record.revoked.is_some() {
                return Err("the token was revoked");
            }
            if now >= record.issued.expires_at {
                return Err("the token has expired");
            }
            Ok(Caller {
                peer,
                principal: Principal::Token {
                    id: record.issued.token_id.clone(),
                    role: record.issued.role,
                    facilities: Arc::from(record.issued.facility_ids.clone()),
                    party: record.issued.party_id.clone(),
                },
            })
        })
    }
}

fn too_many(who: &str) -> Refusal {
    Refusal::new(
        ErrorCode::RateLimited,
        format!("too many requests from {who}; slow down and retry"),
    )
    .with_retry_after(std::time::Duration::from_secs(1))
}

/// How long one address's failures are told in one line.
const FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);
/// Addresses whose failures are being counted, before the oldest are told.
const MAX_FAILING: usize = 10_000;

/// Logs authentication failures: the first from an address in full (its
/// path quoted, at most 64 bytes of it), the rest of the next ten seconds
/// as one line with their number, so a flood of bad tokens cannot flood
/// the log.
#[derive(Default)]
struct FailureLog {
    by_address: std::sync::Mutex<std::collections::HashMap<Option<std::net::IpAddr>, (std::time::Instant, u64)>>,
}

impl FailureLog {
    fn record(&self, peer: Option<SocketAddr>, path: &str, reason: &str) {
        let now = std::time::Instant::now();
        let network = peer.map(|p| super::limiter::network_of(p.ip()));
        let mut map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_FAILING && !map.contains_key(&network) {
            for (addr, (_, more)) in map.drain().filter(|(_, (_, more))| *more > 0) {
                tracing::warn!(peer = ?addr, failures = more, "more authentication failures");
            }
        }
        match map.get_mut(&network) {
            Some((since, more)) if now.duration_since(*since) < FAILURE_WINDOW => *more += 1,
            Some((since, more)) => {
                if *more > 0 {
                    tracing::warn!(peer = ?network, failures = *more, window_s = FAILURE_WINDOW.as_secs(), "more authentication failures");
                }
                *since = now;
                *more = 0;
                tracing::warn!(peer = ?peer, path = %jejak_domain::quote(path), reason, "authentication failed");
            }
            None => {
                map.insert(network, (now, 0));
                tracing::warn!(peer = ?peer, path = %jejak_domain::quote(path), reason, "authentication failed");
            }
        }
    }
}

fn peer_of<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    use tonic::transport::server::TlsConnectInfo;
    let ext = request.extensions();
    ext.get::<ConnInfo>()
        .and_then(|i| i.remote)
        .or_else(|| ext.get::<TlsConnectInfo<ConnInfo>>().and_then(|i| i.get_ref().remote))
}

/// The layer every server route goes through.
#[derive(Clone)]
pub struct AuthLayer {
    state: Arc<AuthState>,
}

impl AuthLayer {
    /// Checks tokens against `tokens`, their expiry by `clock`; believes
    /// forwarding headers from `proxies` only.
    pub fn new(
        tokens: Arc<TokenTable>,
        limits: RateLimits,
        clock: SharedClock,
        proxies: crate::proxy::TrustedProxies,
    ) -> AuthLayer {
        AuthLayer {
            state: Arc::new(AuthState {
                tokens,
                limiter: Limiter::new(limits),
                clock,
                failures: FailureLog::default(),
                proxies,
            }),
        }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    state: Arc<AuthState>,
}

impl<S, B> tower_service::Service<http::Request<B>> for Auth<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = futures_util::future::Either<S::Future, std::future::Ready<Result<Self::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match self.state.admit(&request) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                futures_util::future::Either::Left(self.inner.call(request))
            }
            Err(refusal) => {
                let grpc = is_grpc(&request);
                futures_util::future::Either::Right(std::future::ready(Ok(refusal_response(&refusal, grpc))))
            }
        }
    }
}
