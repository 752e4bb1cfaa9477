//! The read models: what the read side answers, as domain values. The
//! genealogy builds them, the read crate's `View` narrows them for the
//! caller, and the API's replies are converted `From` them at the boundary,
//! so a change to the wire format cannot change what a view keeps or drops.
//!
//! Whatever a view may hide is an `Option` (or a list it may empty): a
//! hidden value is absent, never a zero that reads as a fact.

use crate::gs1::DigitalLink;
use crate::model::{Document, Measurement, Origin, Time, Verdict};
use crate::quantity::Quantity;
use crate::shares::Fraction;
use crate::{LotStatus, Unit};

/// An id with the name master data gives it (empty when unregistered).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Named {
    pub id: String,
    pub name: String,
}

impl Named {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Named {
        Named {
            id: id.into(),
            name: name.into(),
        }
    }
}

/// How a lot came to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Making {
    /// Received from a supplier, or transferred from another facility.
    Received,
    /// Produced by the named process step (which may itself be called "received").
    Step(String),
}

impl Making {
    /// "received", or the step's name.
    pub fn label(&self) -> &str {
        match self {
            Making::Received => "received",
            Making::Step(s) => s,
        }
    }

    pub fn is_received(&self) -> bool {
        matches!(self, Making::Received)
    }
}

/// One inspection of a lot.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The inspection event; `None` in the public view.
    pub event_id: Option<String>,
    pub standard: Named,
    pub verdict: Verdict,
    pub measurements: Vec<Measurement>,
    pub findings: Vec<String>,
    pub at: Time,
    /// Voided by a correction: shown, not counted.
    pub voided: bool,
}

/// A packed unit of a lot.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageView {
    pub serial: String,
    pub gtin: String,
    /// What the unit holds; `None` in the public view.
    pub quantity: Option<Quantity>,
    /// GS1 Digital Link path of its label (empty when the GTIN does not parse).
    pub label: String,
    pub shipped: bool,
    /// The packing event; `None` in the public view.
    pub event_id: Option<String>,
}

/// A shipment of (part of) a lot.
#[derive(Debug, Clone, PartialEq)]
pub struct ShipmentView {
    pub event_id: String,
    pub lot_id: String,
    pub consignee: Named,
    pub quantity: Option<Quantity>,
    pub serials: Vec<String>,
    pub document: String,
    /// The EUDR due diligence statement's reference number, if one was filed.
    pub dds_reference: String,
    pub facility_id: String,
    pub at: Time,
}

/// A lot as the genealogy knows it, narrowed by a view before it is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct LotView {
    pub lot_id: String,
    pub product: Named,
    pub facility: Named,
    pub owner: Named,
    /// Who delivered it, for received lots.
    pub supplier: Option<Named>,
    /// Received or produced quantity, and what is left of it.
    pub quantity: Option<Quantity>,
    pub balance: Option<Quantity>,
    pub status: LotStatus,
    /// Verdict of the latest inspection still in force.
    pub verdict: Option<Verdict>,
    /// A HOLD verdict released by a status change since.
    pub hold_released: bool,
    pub inspections: Vec<Inspection>,
    pub origin: Origin,
    pub documents: Vec<Document>,
    /// The event that created the lot.
    pub created_by: Option<String>,
    pub made: Making,
    pub created_at: Time,
    /// For a transfer: the lot shipped from another facility.
    pub source_lot: Option<String>,
    pub packages: Vec<PackageView>,
    pub shipments: Vec<ShipmentView>,
    /// The creating event was voided.
    pub voided: bool,
}

/// One lot of a trace, at its distance from the target.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceNode {
    pub lot: LotView,
    pub depth: u32,
}

/// One consumption: `input` went into `output`.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEdge {
    pub input: String,
    pub output: String,
    /// `None` when the caller sees neither lot in full.
    pub quantity: Option<Quantity>,
    /// The event that made `output`.
    pub event_id: String,
    /// Process step, or "transfer".
    pub step: String,
}

/// Why a trace is incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Lots go deeper than the depth followed.
    MaxDepth,
    /// The trace reached its most lots (whether or not the depth cut it too).
    MaxNodes,
}

/// A backward or forward trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub root: String,
    /// The package the target named, if any.
    pub package: Option<PackageView>,
    /// Lots by depth, then id.
    pub nodes: Vec<TraceNode>,
    pub edges: Vec<TraceEdge>,
    /// Forward traces: packages made from the reached lots, and their shipments.
    pub packages: Vec<PackageView>,
    pub shipments: Vec<ShipmentView>,
    pub truncated: Option<Truncation>,
}

/// One party's (or receipt lot's) part of a lot.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub id: String,
    pub name: String,
    /// Exact, as a reduced fraction; `None` in the public view.
    pub fraction: Option<Fraction>,
    /// Rounded by largest remainder so that one list adds up to exactly 100.
    pub percent: String,
}

/// Which UKM, suppliers and receipt lots a lot comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginShares {
    pub lot_id: String,
    pub by_ukm: Vec<Share>,
    pub by_supplier: Vec<Share>,
    pub by_receipt: Vec<Share>,
}

/// What a label names: its lot and, with a serial, its package.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelLookup {
    pub link: DigitalLink,
    pub lot: LotView,
    pub package: Option<PackageView>,
}

/// A quantity of `unit` given in the unit's base (kg, m, ...).
pub fn in_unit(base: rust_decimal::Decimal, unit: Unit) -> Quantity {
    Quantity::from_parts(crate::quantity::from_base(base, unit), unit)
}

/// The correction that voided an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidedBy {
    pub event_id: String,
    pub reason: String,
}

/// One event of a lot's history (or of an export), as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub position: u64,
    pub event_id: String,
    pub chain: String,
    pub sequence: u64,
    pub recorded_at: Option<Time>,
    pub actor: String,
    pub event: crate::model::Event,
    /// Set when a later event (known by the time asked about) voided this one.
    pub voided_by: Option<VoidedBy>,
    /// blake3 of the stored envelope.
    pub hash: [u8; 32],
}

/// Every event that touched a lot, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct LotHistory {
    pub lot_id: String,
    pub entries: Vec<HistoryEntry>,
}
