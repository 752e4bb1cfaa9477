//! GS1 EPCIS 2.0 with the Core Business Vocabulary 2.0: what jejak's events
//! are as EPCIS events (and EPCIS events as jejak's), and the CBV 2.0 event
//! hash that names every exported event.
//!
//! **Invariant:** no I/O here; documents come in and go out as JSON values.

pub mod capture;
pub mod export;
pub mod hash;
pub mod query;
