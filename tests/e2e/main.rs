//! End-to-end tests: the real `jejak` binary over real gRPC on loopback, with
//! real files. One test binary for all of them.

mod alerts;
mod auth;
mod browser;
mod bulk;
mod cli;
mod clock;
mod console;
mod console_browser;
mod crash;
mod deploy;
mod discovery;
mod epcis;
mod filings;
mod hardening;
mod integrity;
mod labels;
mod nats;
mod privacy;
mod queries;
mod resolver;
mod rules;
mod scenario;
mod support;
mod transparency;
