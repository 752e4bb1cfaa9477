//! The jejak server: the gRPC capture, trace and admin services, the
//! authentication layer in front of every route, `/metrics`, and one
//! [`run`] for every role a server process has (embedded, capture,
//! projector, both), which tests call in-process.
//!
//! **Invariant:** this crate is the only one that names tonic's server side
//! and the only one that knows who the caller is. It decides nothing itself:
//! commands go to `jejak-engine`, questions to `jejak-read` with the
//! caller's view, label URIs to `jejak-resolver`; errors become statuses
//! through the one error table in `jejak-proto`.

pub mod admin;
pub mod auth;
pub mod capture;
pub mod demo;
pub mod error;
pub mod limits;
pub mod metrics;
mod serve;
pub mod trace;

pub use serve::{run, Access, Backend, NatsBackend, ServerConfig};
