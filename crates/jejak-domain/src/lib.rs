//! The jejak domain: ids, exact quantities, master data, events, commands, and
//! the rules that decide commands into events. No I/O lives here.
//!
//! **Invariant:** names no tokio, tonic, prost, sled or async-nats and does
//! no I/O; `decide` never changes state and is given the time, `apply`
//! never fails. Every other crate speaks of lots, quantities and rules in
//! these types.

pub mod access;
pub mod clock;
pub mod decide;
pub mod error;
pub mod geo;
pub mod gs1;
pub mod model;
pub mod quantity;
pub mod query;
pub mod read;
#[cfg(any(test, feature = "scenario"))]
pub mod scenario;
pub mod shares;
pub mod standard;
pub mod state;
#[cfg(test)]
mod state_tests;
pub mod validate;

pub use access::{Role, TokenIssued, TokenRecord, TokenRevoked, TokenTable, ACCESS_CHAIN};
pub use clock::{system_clock, Clock, ManualClock, SharedClock, SystemClock};
pub use decide::{decide, EventFacts, Facts, LotFacts, SerialFacts, UndoFacts};
pub use error::{quote, DomainError, Rule, QUOTE_LIMIT};
pub use model::*;
pub use quantity::{Dimension, Quantity, Unit};
pub use query::{ExportQuery, HistoryQuery, LabelQuery, LotQuery, Target, TraceQuery};
pub use rust_decimal::Decimal;
pub use state::State;
