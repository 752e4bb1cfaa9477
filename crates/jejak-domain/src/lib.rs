//! The jejak domain: ids, exact quantities, master data, events, commands, and
//! the rules that decide commands into events. No I/O lives here.

pub mod access;
pub mod clock;
pub mod decide;
pub mod error;
pub mod gs1;
pub mod model;
pub mod quantity;
pub mod query;
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
