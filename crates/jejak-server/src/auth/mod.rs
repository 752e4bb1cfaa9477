//! Authentication and authorisation, in one place.
//!
//! [`AuthLayer`] wraps every route the server has (gRPC services, health,
//! reflection, plain HTTP): it reads the bearer token, checks it against the
//! token table (blake3 of the presented string against the stored hash),
//! applies the per-token (or, without a token, per-address) rate limit,
//! checks what the route needs ([`need`]) and hands the handler a [`Caller`]
//! in the request's extensions. Handlers then check what depends on the
//! request itself: the facility a command is for, the lots a caller may see
//! in full (`jejak_read::View`, through [`Caller::view`]).
//!
//! Failed authentication is logged with the caller's address and the reason,
//! never with the token.

mod layer;
pub(crate) mod limiter;
mod policy;
mod tokens;

pub use layer::{Auth, AuthLayer};
pub use limiter::RateLimits;
pub use policy::{need, Caller, Need, Principal};
pub use tokens::{bootstrap_admin, issue_command, issue_command_proto, new_token};
