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
pub mod alerts;
pub mod auth;
pub mod capture;
pub mod conn;
pub mod console;
pub mod demo;
pub mod epcis;
pub mod epcis_capture;
pub mod error;
pub mod files;
pub mod limits;
pub mod metrics;
pub mod proxy;
pub mod regulator;
mod serve;
mod shares;
pub mod tlog;
pub mod trace;
pub mod webhook;
pub mod witness;

pub use serve::{bootstrap_token, run, Access, Backend, NatsBackend, ServerConfig};

/// Resolves when the process is asked to stop (SIGINT or SIGTERM): the
/// `shutdown` a binary gives [`run`].
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
