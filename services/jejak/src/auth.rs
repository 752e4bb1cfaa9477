//! Authentication and authorisation, in one place.
//!
//! [`AuthLayer`] wraps every route the server has (gRPC services, health,
//! reflection, plain HTTP): it reads the bearer token, checks it against the
//! token table (blake3 of the presented string against the stored hash),
//! applies the per-token (or, without a token, per-address) rate limit,
//! checks what the route needs ([`need`]) and hands the handler a [`Caller`]
//! in the request's extensions. Handlers then check what depends on the
//! request itself: the facility a command is for, the lots a caller may see
//! in full ([`crate::view`]).
//!
//! Failed authentication is logged with the caller's address and the reason,
//! never with the token.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use jejak_domain::{Role, Time, TokenTable};
use tonic::{Request, Status};

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone, token or not: label lookup, the public view of a lot, health.
    Public,
    /// Any valid token; the handler narrows what the caller sees.
    Token,
    /// A token that may write: administrators and operators (the handler
    /// checks the facility).
    Capture,
    /// Administrators and regulators: exports of the whole log.
    Regulator,
    /// Administrators only.
    Admin,
}

/// What each route needs. Every RPC of the API is listed; anything else
/// (an unknown path) needs an administrator, so a route added without a
/// line here is closed, not open.
pub fn need(path: &str) -> Need {
    // Label URIs, label images and the resolver's description: for anyone
    // who scans a product.
    if crate::resolver::is_public_path(path) {
        return Need::Public;
    }
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Need::Admin;
    };
    match (service, method) {
        ("grpc.health.v1.Health", _)
        | ("grpc.reflection.v1.ServerReflection", _)
        | ("grpc.reflection.v1alpha.ServerReflection", _) => Need::Public,
        ("jejak.v1.TraceService", "LookupLabel" | "GetLot" | "GetStatus") => Need::Public,
        ("jejak.v1.TraceService", "BackwardTrace" | "ForwardTrace" | "OriginShares" | "LotHistory") => Need::Token,
        ("jejak.v1.TraceService", "ExportEvents") => Need::Regulator,
        (
            "jejak.v1.CaptureService",
            "RegisterParty" | "RegisterProduct" | "ReceiveMaterial" | "InspectLot" | "ProcessLots" | "PackLot"
            | "ShipLot" | "ChangeLotStatus" | "VoidEvent",
        ) => Need::Capture,
        ("jejak.v1.CaptureService", "RegisterFacility" | "RegisterQualityStandard") => Need::Admin,
        ("jejak.v1.AdminService", _) => Need::Admin,
        _ => Need::Admin,
    }
}

/// Who is calling, as the authentication layer established it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub peer: Option<SocketAddr>,
    pub principal: Principal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No token.
    Public,
    Token {
        id: String,
        role: Role,
        /// Operators: where they may capture.
        facilities: Arc<[String]>,
        /// Members: the party they speak for.
        party: Option<String>,
    },
}

impl Caller {
    /// The caller of a request that passed the layer; public when the
    /// layer did not run (it always does in a server).
    pub fn of<T>(request: &Request<T>) -> Caller {
        request.extensions().get::<Caller>().cloned().unwrap_or(Caller {
            peer: request.remote_addr(),
            principal: Principal::Public,
        })
    }

    pub fn role(&self) -> Option<Role> {
        match &self.principal {
            Principal::Public => None,
            Principal::Token { role, .. } => Some(*role),
        }
    }

    /// What every event this caller causes records as its actor.
    pub fn actor(&self) -> String {
        match &self.principal {
            Principal::Public => "public".into(),
            Principal::Token { id, role, .. } => format!("token:{id} ({role})"),
        }
    }

    fn describe(&self) -> String {
        match &self.principal {
            Principal::Public => "a caller without a token".into(),
            Principal::Token { id, role, .. } => format!("token {id} ({role})"),
        }
    }

    /// Whether this caller passes `need` (the facility-level check of
    /// capture is the handler's).
    pub fn allows(&self, need: Need) -> bool {
        match (need, self.role()) {
            (Need::Public, _) => true,
            (_, None) => false,
            (Need::Token, Some(_)) => true,
            (Need::Capture, Some(r)) => matches!(r, Role::Admin | Role::Operator),
            (Need::Regulator, Some(r)) => matches!(r, Role::Admin | Role::Regulator),
            (Need::Admin, Some(r)) => r == Role::Admin,
        }
    }

    /// UNAUTHENTICATED without a token, PERMISSION_DENIED with one that
    /// does not reach.
    pub fn require(&self, need: Need, what: &str) -> Result<(), Status> {
        if self.allows(need) {
            return Ok(());
        }
        Err(match self.principal {
            Principal::Public => Status::unauthenticated(format!(
                "{what} needs an access token: send `authorization: Bearer <token>`"
            )),
            _ => Status::permission_denied(format!("{} may not {what}", self.describe())),
        })
    }

    /// May this caller record events at `facility`?
    pub fn may_capture_at(&self, facility: &str) -> Result<(), Status> {
        self.require(Need::Capture, "capture events")?;
        match &self.principal {
            Principal::Token {
                role: Role::Operator,
                facilities,
                id,
                ..
            } if !facilities.iter().any(|f| f == facility) => Err(Status::permission_denied(format!(
                "token {id} (operator of {}) may not capture at facility {facility:?}",
                facilities.join(", ")
            ))),
            _ => Ok(()),
        }
    }
}

/// Why a request was refused before it reached its handler.
#[derive(Debug)]
enum Denied {
    Unauthenticated(String),
    Forbidden(String),
    RateLimited(String),
}

impl Denied {
    fn status(self) -> Status {
        match self {
            Denied::Unauthenticated(m) => Status::unauthenticated(m),
            Denied::Forbidden(m) => Status::permission_denied(m),
            Denied::RateLimited(m) => Status::resource_exhausted(m),
        }
    }

    /// A gRPC status for gRPC callers, a plain HTTP status otherwise.
    fn response(self, grpc: bool) -> http::Response<tonic::body::Body> {
        if grpc {
            return self.status().into_http();
        }
        let (code, message) = match self {
            Denied::Unauthenticated(m) => (http::StatusCode::UNAUTHORIZED, m),
            Denied::Forbidden(m) => (http::StatusCode::FORBIDDEN, m),
            Denied::RateLimited(m) => (http::StatusCode::TOO_MANY_REQUESTS, m),
        };
        let mut r = http::Response::new(tonic::body::Body::new(http_body_util::Full::new(bytes::Bytes::from(
            message + "\n",
        ))));
        *r.status_mut() = code;
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if code == http::StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// Requests per second allowed, and the burst.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Per token; 0 turns the limit off.
    pub per_token: f64,
    /// Per client address for calls without a token; 0 turns it off.
    pub per_address: f64,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            per_token: 2000.0,
            per_address: 100.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BucketKey {
    Token(String),
    Address(IpAddr),
}

/// Token buckets, one per token or address; a second's worth of requests
/// may come at once.
struct Limiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<BucketKey, (f64, Instant)>>,
}

/// Buckets kept before full (idle) ones are dropped.
const MAX_BUCKETS: usize = 100_000;

impl Limiter {
    fn admit(&self, key: BucketKey) -> bool {
        self.admit_at(key, Instant::now())
    }

    fn admit_at(&self, key: BucketKey, now: Instant) -> bool {
        let rate = match key {
            BucketKey::Token(_) => self.limits.per_token,
            BucketKey::Address(_) => self.limits.per_address,
        };
        if rate <= 0.0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, (level, at)| *level + now.duration_since(*at).as_secs_f64() * rate < rate);
        }
        let (level, at) = buckets.entry(key).or_insert((rate, now));
        *level = (*level + now.duration_since(*at).as_secs_f64() * rate).min(rate);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            true
        } else {
            false
        }
    }
}

struct AuthState {
    tokens: Arc<TokenTable>,
    limiter: Limiter,
}

impl AuthState {
    /// Authenticates, rate-limits and checks the route's need.
    fn admit<B>(&self, request: &http::Request<B>) -> Result<Caller, Denied> {
        let peer = peer_of(request);
        let path = request.uri().path();
        let caller = self.authenticate(request, peer).map_err(|reason| {
            tracing::warn!(peer = ?peer, path, reason, "authentication failed");
            Denied::Unauthenticated(format!("{reason}; ask an administrator for a valid token"))
        })?;
        let key = match &caller.principal {
            Principal::Token { id, .. } => Some(BucketKey::Token(id.clone())),
            Principal::Public => peer.map(|p| BucketKey::Address(p.ip())),
        };
        if let Some(key) = key {
            if !self.limiter.admit(key) {
                return Err(Denied::RateLimited(format!(
                    "too many requests from {}; slow down and retry",
                    caller.describe()
                )));
            }
        }
        let need = need(path);
        if !caller.allows(need) {
            let what = path.trim_start_matches('/');
            return Err(match caller.principal {
                Principal::Public => Denied::Unauthenticated(format!(
                    "{what} needs an access token: send `authorization: Bearer <token>`"
                )),
                _ => Denied::Forbidden(format!("{} may not call {what}", caller.describe())),
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
        let now = crate::now();
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
    pub fn new(tokens: Arc<TokenTable>, limits: RateLimits) -> AuthLayer {
        AuthLayer {
            state: Arc::new(AuthState {
                tokens,
                limiter: Limiter {
                    limits,
                    buckets: Mutex::default(),
                },
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
            Err(denied) => {
                let grpc = request
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
                futures_util::future::Either::Right(std::future::ready(Ok(denied.response(grpc))))
            }
        }
    }
}

/// A new token for the command `command_id`: its id, the token string (to
/// show once) and the hash to store.
pub fn new_token(command_id: &str) -> anyhow::Result<(String, String, [u8; 32])> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("the system's random source failed: {e}"))?;
    let id = jejak_domain::access::token_id_for(command_id);
    let token = jejak_domain::access::token_string(&id, &secret);
    let hash = jejak_domain::access::secret_hash(&token);
    Ok((id, token, hash))
}

/// The command that issues a token, from the admin API's fields; the
/// domain checks them when the command is decided.
pub fn issue_command_proto(
    command_id: &str,
    role: i32,
    facility_ids: Vec<String>,
    party_id: String,
    expires_at: Option<prost_types::Timestamp>,
    label: String,
) -> anyhow::Result<(jejak_proto::v1::command::Kind, String, String)> {
    let (token_id, token, hash) = new_token(command_id)?;
    let kind = jejak_proto::v1::command::Kind::IssueToken(jejak_proto::v1::IssueTokenCommand {
        command_id: command_id.to_string(),
        token_id: token_id.clone(),
        secret_hash: hash.to_vec(),
        role,
        facility_ids,
        party_id,
        expires_at,
        label,
    });
    Ok((kind, token_id, token))
}

/// The same from domain values.
pub fn issue_command(
    command_id: &str,
    role: Role,
    facility_ids: Vec<String>,
    party_id: Option<String>,
    expires_at: Time,
    label: String,
) -> anyhow::Result<(jejak_proto::v1::command::Kind, String, String)> {
    issue_command_proto(
        command_id,
        jejak_proto::access_role_to_proto(role) as i32,
        facility_ids,
        party_id.unwrap_or_default(),
        Some(jejak_proto::time_to_proto(expires_at)),
        label,
    )
}

/// How long the administrator token made at start lives.
const BOOTSTRAP_TOKEN_DAYS: i64 = 90;

/// With no active administrator token in the log, issues one (an event
/// like any other, actor `system:bootstrap`) and writes it to `file`,
/// readable by the owner only: the one place it is ever shown.
pub async fn bootstrap_admin<S: crate::writer::Submit>(
    writer: &S,
    tokens: &TokenTable,
    file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let now = crate::now();
    if tokens.has_active_admin(now) {
        return Ok(());
    }
    let Some(file) = file else {
        tracing::warn!(
            "no active administrator token and no --admin-token-file: nobody can manage tokens on this service; \
             start one instance with --admin-token-file to create one"
        );
        return Ok(());
    };
    let command_id = format!("bootstrap-admin-{}", now.0 / Time::NANOS_PER_SEC);
    let expires_at = Time(
        now.0
            .saturating_add(BOOTSTRAP_TOKEN_DAYS * 24 * 3600 * Time::NANOS_PER_SEC),
    );
    let (kind, token_id, token) = issue_command(
        &command_id,
        Role::Admin,
        Vec::new(),
        None,
        expires_at,
        "administrator token made at start".into(),
    )?;
    let reply = writer
        .submit(kind, "system:bootstrap")
        .await
        .map_err(|s| anyhow::anyhow!("issue the administrator token: {}", s.message()))?;
    if reply.replayed {
        anyhow::bail!("the bootstrap command {command_id} was already recorded; start again in a second");
    }
    write_secret(file, &token).with_context(|| format!("write the administrator token to {}", file.display()))?;
    tracing::warn!(
        token_id,
        file = %file.display(),
        "no active administrator token existed: issued one and wrote it to the file (owner-only); \
         use it to create tokens with `jejak token create`"
    );
    Ok(())
}

/// Writes `secret` to a new file only its owner can read.
fn write_secret(file: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(file);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(file)?;
    writeln!(f, "{secret}")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_has_its_need_and_unknown_routes_are_closed() {
        assert_eq!(need("/jejak.v1.TraceService/LookupLabel"), Need::Public);
        assert_eq!(need("/jejak.v1.TraceService/BackwardTrace"), Need::Token);
        assert_eq!(need("/jejak.v1.CaptureService/ReceiveMaterial"), Need::Capture);
        assert_eq!(need("/jejak.v1.CaptureService/RegisterFacility"), Need::Admin);
        assert_eq!(need("/jejak.v1.TraceService/ExportEvents"), Need::Regulator);
        assert_eq!(need("/grpc.health.v1.Health/Check"), Need::Public);
        assert_eq!(need("/metrics"), Need::Admin);
        assert_eq!(need("/jejak.v1.CaptureService/Unknown"), Need::Admin);
        assert_eq!(need("/"), Need::Admin);
    }

    #[test]
    fn the_bucket_refills_at_its_rate() {
        let l = Limiter {
            limits: RateLimits {
                per_token: 5.0,
                per_address: 0.0,
            },
            buckets: Mutex::default(),
        };
        let k = || BucketKey::Token("t".into());
        let start = Instant::now();
        let admitted = (0..20).filter(|_| l.admit_at(k(), start)).count();
        assert_eq!(admitted, 5, "a burst of one second's worth");
        let later = start + std::time::Duration::from_millis(150);
        assert!(
            !l.admit_at(k(), later),
            "less than one request refilled after 0.15 s at 5/s"
        );
        let later = start + std::time::Duration::from_millis(450);
        assert!(l.admit_at(k(), later), "refilled after 0.45 s at 5/s");
        assert!(l.admit(BucketKey::Address("127.0.0.1".parse().expect("an address"))));
    }
}
