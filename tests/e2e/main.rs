//! End-to-end tests: the real `jejak` binary over real gRPC on loopback, with
//! real files. One test binary for all of them.

mod auth;
mod cli;
mod crash;
mod discovery;
mod integrity;
mod nats;
mod queries;
mod rules;
mod support;
