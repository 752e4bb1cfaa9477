//! Console sessions: random ids kept server-side (in memory: a restart
//! signs everyone out), each bound to the access token it was opened with
//! and checked against the token table on every request, so revoking or
//! expiring the token ends the session. Each session has a CSRF token that
//! every form carries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use jejak_domain::{SharedClock, Time, TokenTable};

use crate::auth::{Caller, Principal};

/// How long a session lasts without being used.
pub const IDLE: i64 = 12 * 3600;
/// Sessions kept at most; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

/// The cookie that names a session.
pub const COOKIE: &str = "jejak_console";

#[derive(Debug, Clone)]
pub struct Session {
    pub token_id: String,
    pub csrf: String,
    pub lang: super::text::Lang,
    /// Seconds since the epoch after which it is over.
    pub expires: i64,
}

pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    tokens: Arc<TokenTable>,
    clock: SharedClock,
}

/// 32 random bytes, URL-safe base64.
pub fn random_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the OS's random source failed: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn seconds(t: Time) -> i64 {
    t.0 / 1_000_000_000
}

impl Sessions {
    pub fn new(tokens: Arc<TokenTable>, clock: SharedClock) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            tokens,
            clock,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The caller a token string names, checked as the API checks a bearer
    /// token; why not, when it names none.
    pub fn caller_of_token(&self, token: &str) -> Result<Caller, &'static str> {
        let id = jejak_domain::access::claimed_id(token.trim()).ok_or("malformed")?;
        let presented = blake3::hash(token.trim().as_bytes());
        let matches = self.tokens.with(id, |r| {
            r.is_some_and(|r| presented == blake3::Hash::from(r.issued.secret_hash))
        });
        if !matches {
            return Err("unknown");
        }
        self.caller_of_id(id)
    }

    /// The caller of a token id, if the token is still active.
    fn caller_of_id(&self, id: &str) -> Result<Caller, &'static str> {
        let now = self.clock.now();
        self.tokens.with(id, |record| {
            let record = record.ok_or("unknown")?;
            if record.revoked.is_some() {
                return Err("revoked");
            }
            if now >= record.issued.expires_at {
                return Err("expired");
            }
            Ok(Caller {
                peer: None,
                principal: Principal::Token {
                    id: record.issued.token_id.clone(),
                    role: record.issued.role,
                    facilities: Arc::from(record.issued.facility_ids.clone()),
                    party: record.issued.party_id.clone(),
                },
            })
        })
    }

    /// Opens a session for a caller; its id (the cookie's value).
    pub fn open(&self, caller: &Caller, lang: super::text::Lang) -> anyhow::Result<(String, Session)> {
        let Principal::Token { id, .. } = &caller.principal else {
            anyhow::bail!("a session needs a token");
        };
        let session = Session {
            token_id: id.clone(),
            csrf: random_id()?,
            lang,
            expires: seconds(self.clock.now()) + IDLE,
        };
        let key = random_id()?;
        let mut map = self.map();
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(key.clone(), session.clone());
        Ok((key, session))
    }

    /// The session and its caller, when the session exists, has not
    /// expired and its token is still active; its life is extended.
    pub fn get(&self, key: &str) -> Option<(Session, Caller)> {
        let now = seconds(self.clock.now());
        let mut map = self.map();
        let session = map.get_mut(key)?;
        if session.expires <= now {
            map.remove(key);
            return None;
        }
        let caller = match self.caller_of_id(&session.token_id) {
            Ok(c) => c,
            Err(_) => {
                map.remove(key);
                return None;
            }
        };
        session.expires = now + IDLE;
        Some((session.clone(), caller))
    }

    pub fn set_lang(&self, key: &str, lang: super::text::Lang) {
        if let Some(s) = self.map().get_mut(key) {
            s.lang = lang;
        }
    }

    pub fn close(&self, key: &str) {
        self.map().remove(key);
    }
}

/// The session cookie's value in a request, if any.
pub fn cookie(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The `Set-Cookie` value for a session (empty value and max-age 0: gone).
pub fn set_cookie(value: &str, secure: bool) -> String {
    let age = if value.is_empty() { 0 } else { IDLE };
    format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Compares a form's CSRF token with the session's in constant time.
pub fn csrf_ok(session: &Session, presented: &str) -> bool {
    let (a, b) = (session.csrf.as_bytes(), presented.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
