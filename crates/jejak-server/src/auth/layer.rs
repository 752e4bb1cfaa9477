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
use crate::error::{is_grpc, refusal_response};

struct AuthState {
    tokens: Arc<TokenTable>,
    limiter: Limiter,
    clock: SharedClock,
}

impl AuthState {
    /// Authenticates, rate-limits and checks the route's need.
    fn admit<B>(&self, request: &http::Request<B>) -> Result<Caller, Refusal> {
        let peer = peer_of(request);
        let path = request.uri().path();
        let caller = self.authenticate(request, peer).map_err(|reason| {
            tracing::warn!(peer = ?peer, path = %jejak_domain::quote(path), reason, "authentication failed");
            Refusal::new(
                ErrorCode::Unauthenticated,
                format!("{reason}; ask an administrator for a valid token"),
            )
            .with_reason("TOKEN_INVALID")
        })?;
        let key = match &caller.principal {
            Principal::Token { id, .. } => Some(BucketKey::Token(id.clone())),
            Principal::Public => peer.map(|p| BucketKey::Address(p.ip())),
        };
        if let Some(key) = key {
            if !self.limiter.admit(key) {
                return Err(Refusal::new(
                    ErrorCode::RateLimited,
                    format!("too many requests from {}; slow down and retry", caller.describe()),
                )
                .with_retry_after(std::time::Duration::from_secs(1)));
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

fn peer_of<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let ext = request.extensions();
    ext.get::<TcpConnectInfo>().and_then(|i| i.remote_addr()).or_else(|| {
        ext.get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|i| i.get_ref().remote_addr())
    })
}

/// The layer every server route goes through.
#[derive(Clone)]
pub struct AuthLayer {
    state: Arc<AuthState>,
}

impl AuthLayer {
    /// Checks tokens against `tokens`, their expiry by `clock`.
    pub fn new(tokens: Arc<TokenTable>, limits: RateLimits, clock: SharedClock) -> AuthLayer {
        AuthLayer {
            state: Arc::new(AuthState {
                tokens,
                limiter: Limiter::new(limits),
                clock,
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
