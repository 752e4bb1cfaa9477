//! The jejak server and command-line client: gRPC capture and trace services
//! over the embedded sled log and genealogy projection, the projector that
//! keeps them in step, and the client commands of the `jejak` binary.

pub mod admin;
pub mod auth;
pub mod bench;
pub mod client;
pub mod demo;
pub mod distributed;
pub mod import;
pub mod metrics;
pub mod projector;
pub mod resolver;
pub mod server;
pub mod status;
pub mod trace;
pub mod view;
pub mod writer;

pub use server::{run, run_nats, NatsServeConfig, ServeConfig};

/// The current time as the domain counts it.
pub fn now() -> jejak_domain::Time {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    jejak_domain::Time(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
