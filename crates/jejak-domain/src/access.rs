//! Who may use the API: access tokens and their roles, as events.
//!
//! A token is a long random secret of which only the blake3 hash is stored;
//! issuing and revoking one are events in the `@access` chain, so the audit
//! trail of who could do what, when, is in the log like everything else.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::error::{DomainError, Rule};
use crate::model::Time;

/// The chain that holds token events.
pub const ACCESS_CHAIN: &str = "@access";

/// Longest a token may live: five years.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 5 * 366 * 24 * 3600;

/// Most facilities one operator token may be bound to.
pub const MAX_TOKEN_FACILITIES: usize = 64;

/// What a token's holder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages tokens and master data; may do everything.
    Admin,
    /// Runs one or more shared factories: captures there only.
    Operator,
    /// A UKM (or supplier): full view of the lots that party owns or supplied.
    Member,
    /// Reads everything, exports the log; writes nothing.
    Regulator,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Member => "member",
            Role::Regulator => "regulator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "admin" => Role::Admin,
            "operator" => Role::Operator,
            "member" => Role::Member,
            "regulator" => Role::Regulator,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A token issued: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIssued {
    /// Public id, part of the token string and of every event's actor.
    pub token_id: String,
    /// blake3 of the whole token string.
    pub secret_hash: [u8; 32],
    pub role: Role,
    /// For operators: where they may capture.
    pub facility_ids: Vec<String>,
    /// For members: the party whose lots they see in full.
    pub party_id: Option<String>,
    pub expires_at: Time,
    /// Who or what the token is for, e.g. "Demak intake tablet 2".
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRevoked {
    pub token_id: String,
    pub reason: String,
}

/// A token as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub issued: TokenIssued,
    /// The event that issued it, and when.
    pub event_id: String,
    pub issued_at: Time,
    /// When and why it was revoked.
    pub revoked: Option<(Time, String)>,
}

impl TokenRecord {
    /// Neither revoked nor expired at `now`.
    pub fn is_active(&self, now: Time) -> bool {
        self.revoked.is_none() && now < self.issued.expires_at
    }
}

/// Every token, shared between the state that applies token events and the
/// layer that authenticates requests (which takes only this table's lock,
/// never the genealogy's).
#[derive(Debug, Default)]
pub struct TokenTable {
    tokens: RwLock<HashMap<String, TokenRecord>>,
}

impl TokenTable {
    pub fn new() -> Arc<TokenTable> {
        Arc::default()
    }

    pub fn get(&self, token_id: &str) -> Option<TokenRecord> {
        self.read().get(token_id).cloned()
    }

    /// Runs `f` on the token without cloning it.
    pub fn with<T>(&self, token_id: &str, f: impl FnOnce(Option<&TokenRecord>) -> T) -> T {
        f(self.read().get(token_id))
    }

    /// Every token, ordered by when it was issued.
    pub fn all(&self) -> Vec<TokenRecord> {
        let mut v: Vec<TokenRecord> = self.read().values().cloned().collect();
        v.sort_by(|a, b| (a.issued_at, &a.issued.token_id).cmp(&(b.issued_at, &b.issued.token_id)));
        v
    }

    /// How many tokens were ever issued (revoked and expired ones too).
    pub fn issued(&self) -> usize {
        self.read().len()
    }

    /// Whether some administrator token is active at `now`.
    pub fn has_active_admin(&self, now: Time) -> bool {
        self.read()
            .values()
            .any(|t| t.issued.role == Role::Admin && t.is_active(now))
    }

    /// Applies an issue; a token id seen before keeps its first record.
    pub fn issue(&self, event_id: &str, at: Time, t: &TokenIssued) {
        self.write().entry(t.token_id.clone()).or_insert_with(|| TokenRecord {
            issued: t.clone(),
            event_id: event_id.to_string(),
            issued_at: at,
            revoked: None,
        });
    }

    /// Applies a revocation; the first one wins.
    pub fn revoke(&self, at: Time, r: &TokenRevoked) {
        if let Some(t) = self.write().get_mut(&r.token_id) {
            t.revoked.get_or_insert((at, r.reason.clone()));
        }
    }

    /// Makes this table hold exactly `other`'s tokens.
    pub fn replace_with(&self, other: &TokenTable) {
        let fresh = other.read().clone();
        *self.write() = fresh;
    }

    /// Puts back a stored record (loading a persisted projection).
    pub fn restore(&self, record: TokenRecord) {
        self.write().insert(record.issued.token_id.clone(), record);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, TokenRecord>> {
        self.tokens.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, TokenRecord>> {
        self.tokens.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The token id a command id issues: the same on every retry of the
/// command, so a replayed reply names the token it created.
pub fn token_id_for(command_id: &str) -> String {
    let h = blake3::hash(format!("jejak token id\0{command_id}").as_bytes());
    let mut id = String::from("tk");
    for b in &h.as_bytes()[..8] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The token string for an id and 32 random bytes:
/// `jejak_<token id>_<64 hex digits>`.
pub fn token_string(token_id: &str, secret: &[u8; 32]) -> String {
    let mut s = format!("jejak_{token_id}_");
    for b in secret {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The token id a presented token claims, if it has the token shape.
pub fn claimed_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix("jejak_")?;
    let (id, secret) = rest.split_once('_')?;
    let ok =
        id.len() == 18 && id.starts_with("tk") && secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(id)
}

/// blake3 of a token string, as stored.
pub fn secret_hash(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

/// Checks a token issue against the known facilities and parties.
pub(crate) fn check_issue(
    t: &TokenIssued,
    now: Time,
    existing: Option<&TokenRecord>,
    facility_exists: impl Fn(&str) -> bool,
    party_exists: impl Fn(&str) -> bool,
) -> Result<(), DomainError> {
    crate::validate::id("token_id", &t.token_id)?;
    if existing.is_some() {
        return Err(DomainError::exists("token", &t.token_id));
    }
    crate::validate::text("label", &t.label)?;
    if t.expires_at <= now {
        return Err(DomainError::invalid(
            "expires_at",
            "is not in the future; a token must expire after it is issued",
        ));
    }
    if t.expires_at.0.saturating_sub(now.0) > MAX_TOKEN_LIFETIME_SECS.saturating_mul(Time::NANOS_PER_SEC) {
        return Err(DomainError::invalid(
            "expires_at",
            "is more than five years away; issue a shorter-lived token and renew it",
        ));
    }
    match t.role {
        Role::Operator => {
            if t.facility_ids.is_empty() {
                return Err(DomainError::invalid(
                    "facility_ids",
                    "an operator token needs at least one facility",
                ));
            }
            if t.facility_ids.len() > MAX_TOKEN_FACILITIES {
                return Err(DomainError::invalid(
                    "facility_ids",
                    format!(
                        "has {} facilities; the limit is {MAX_TOKEN_FACILITIES}",
                        t.facility_ids.len()
                    ),
                ));
            }
            for (i, f) in t.facility_ids.iter().enumerate() {
                crate::validate::id(&format!("facility_ids[{i}]"), f)?;
                if !facility_exists(f) {
                    return Err(DomainError::not_found("facility", f));
                }
            }
        }
        _ if !t.facility_ids.is_empty() => {
            return Err(DomainError::invalid(
                "facility_ids",
                format!("only operator tokens are bound to facilities, not {} tokens", t.role),
            ));
        }
        _ => {}
    }
    match (t.role, &t.party_id) {
        (Role::Member, None) => Err(DomainError::invalid(
            "party_id",
            "a member token needs the party it speaks for",
        )),
        (Role::Member, Some(p)) => {
            crate::validate::id("party_id", p)?;
            if party_exists(p) {
                Ok(())
            } else {
                Err(DomainError::not_found("party", p))
            }
        }
        (role, Some(_)) => Err(DomainError::invalid(
            "party_id",
            format!("only member tokens speak for a party, not {role} tokens"),
        )),
        (_, None) => Ok(()),
    }
}

/// Checks a revocation against the token it names.
pub(crate) fn check_revoke(r: &TokenRevoked, existing: Option<&TokenRecord>) -> Result<(), DomainError> {
    crate::validate::id("token_id", &r.token_id)?;
    crate::validate::text("reason", &r.reason)?;
    match existing {
        None => Err(DomainError::not_found("token", &r.token_id)),
        Some(t) if t.revoked.is_some() => Err(DomainError::rule(
            Rule::TokenRevoked,
            format!("token {} is already revoked", r.token_id),
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_strings_carry_their_id_and_nothing_else_passes() {
        let id = token_id_for("cmd-1");
        assert_eq!(id, token_id_for("cmd-1"));
        assert_ne!(id, token_id_for("cmd-2"));
        let t = token_string(&id, &[0xab; 32]);
        assert_eq!(claimed_id(&t), Some(id.as_str()));
        for bad in [
            "",
            "Bearer x",
            &t[..t.len() - 1],
            &t.replace("jejak_", "jejek_"),
            &format!("{t}0"),
            &t.replace('a', "g"),
        ] {
            assert_eq!(claimed_id(bad), None, "{bad:?}");
        }
        assert_ne!(secret_hash(&t), secret_hash(&token_string(&id, &[0xac; 32])));
    }

    #[test]
    fn revocation_and_expiry_end_a_token() {
        let table = TokenTable::new();
        let issued = TokenIssued {
            token_id: token_id_for("c"),
            secret_hash: [1; 32],
            role: Role::Admin,
            facility_ids: vec![],
            party_id: None,
            expires_at: Time(100),
            label: String::new(),
        };
        table.issue("c", Time(10), &issued);
        assert!(table.has_active_admin(Time(99)));
        assert!(!table.has_active_admin(Time(100)), "expired at its expiry time");
        table.revoke(
            Time(20),
            &TokenRevoked {
                token_id: issued.token_id.clone(),
                reason: "lost".into(),
            },
        );
        table.revoke(
            Time(30),
            &TokenRevoked {
                token_id: issued.token_id.clone(),
                reason: "again".into(),
            },
        );
        let t = table.get(&issued.token_id).expect("issued");
        assert_eq!(t.revoked, Some((Time(20), "lost".to_string())));
        assert!(!table.has_active_admin(Time(50)));
    }
}
