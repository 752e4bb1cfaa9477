//! The questions the read side answers, as domain values: a request is
//! turned into one of these once, at the boundary, with the field named
//! when it does not fit, and queries never see the wire format.

use crate::gs1::DigitalLink;
use crate::model::Time;

/// What a trace or an origin-share query starts from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A lot, by its id.
    Lot(String),
    /// A packed unit, by its serial.
    Serial(String),
    /// A label's GS1 Digital Link: its lot, or the unit it names.
    Label(DigitalLink),
}

/// A backward or forward trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceQuery {
    pub target: Target,
    /// Deepest level to follow; 0: the server's limit.
    pub max_depth: u32,
    /// Most lots in the reply; 0: the server's limit.
    pub max_nodes: u32,
}

/// Every event that touched a lot, as known at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    pub lot_id: String,
    /// Only what was recorded by then; `None`: everything.
    pub as_of: Option<Time>,
}

/// One lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotQuery {
    pub lot_id: String,
}

/// What a label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelQuery {
    pub link: DigitalLink,
}

/// A stretch of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportQuery {
    /// First position (1 when 0).
    pub from_position: u64,
    /// Most entries; 0: to the end.
    pub limit: u64,
}
