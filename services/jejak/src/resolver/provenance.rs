//! The story of one label, as the provenance page, the JSON document and the
//! JSON-LD tell it: built from the genealogy (the trace down to the receipts,
//! the origin shares, inspections and corrections) and from the labelled
//! lot's own events in the log (packing, shipments, status changes with
//! their reasons). Only the public view goes in: no quantities, prices,
//! documents, measurements, consignees or contact details.

use jejak_domain::gs1::DigitalLink;
use jejak_genealogy::{Genealogy, GenealogyError, TraceLimits};
use jejak_log::StoredEvent;
use jejak_proto::v1 as p;
use serde::Serialize;

/// Most lots a page follows; a deeper genealogy says it was cut short.
const PAGE_MAX_NODES: u32 = 400;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// The label's GS1 Digital Link under the configured base.
    pub uri: String,
    pub gtin: String,
    pub lot_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    pub product: Named,
    pub facility: Named,
    /// The UKM that owns the labelled lot.
    pub owner: Named,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<VerdictOut>,
    /// "received", or the process step that made the lot.
    pub made_as: String,
    pub made_at: Stamp,
    /// What a buyer must know first: recalls, holds, non-conformant inputs.
    pub alerts: Vec<Alert>,
    /// Inspections of the labelled lot itself.
    pub inspections: Vec<InspectionOut>,
    pub ukm_shares: Vec<ShareOut>,
    pub supplier_shares: Vec<ShareOut>,
    /// Every lot the labelled one was made from, nearest first.
    pub inputs: Vec<InputLot>,
    pub timeline: Vec<Step>,
    pub corrections: Vec<Correction>,
    /// Origin plots with coordinates (timber), for the map.
    pub plots: Vec<Plot>,
    /// False when the genealogy was deeper than a page follows.
    pub complete: bool,
    /// The labelled lot's latest event: where to check the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_record: Option<Record>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Named {
    pub id: String,
    pub name: String,
}

/// A time, in UTC nanoseconds; serialised as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(pub i64);

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::text::rfc3339(*self))
    }
}

impl Stamp {
    fn of(t: Option<&prost_types::Timestamp>) -> Stamp {
        t.map_or(Stamp(0), |t| {
            Stamp(
                t.seconds
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(t.nanos)),
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    OnHold,
    Released,
    Recalled,
    Disposed,
}

impl Status {
    fn of(code: i32) -> Status {
        match p::LotStatus::try_from(code) {
            Ok(p::LotStatus::OnHold) => Status::OnHold,
            Ok(p::LotStatus::Released) => Status::Released,
            Ok(p::LotStatus::Recalled) => Status::Recalled,
            Ok(p::LotStatus::Disposed) => Status::Disposed,
            _ => Status::Active,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictOut {
    Conformant,
    NonConformant,
    Hold,
}

impl VerdictOut {
    fn of(code: i32) -> Option<VerdictOut> {
        match p::Verdict::try_from(code) {
            Ok(p::Verdict::Conformant) => Some(VerdictOut::Conformant),
            Ok(p::Verdict::NonConformant) => Some(VerdictOut::NonConformant),
            Ok(p::Verdict::Hold) => Some(VerdictOut::Hold),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Alert {
    /// The labelled lot itself is recalled, on hold or disposed.
    Status {
        status: Status,
        #[serde(skip_serializing_if = "String::is_empty")]
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<Stamp>,
    },
    /// The labelled lot failed (or awaits) its own inspection.
    Verdict { verdict: VerdictOut, standard: String },
    /// An input lot is non-conformant, on hold or recalled.
    Input {
        lot_id: String,
        product: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        verdict: Option<VerdictOut>,
        status: Status,
    },
    /// The event that made the labelled lot was voided.
    Voided { reason: String },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectionOut {
    pub standard: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<VerdictOut>,
    pub at: Stamp,
    /// Voided by a correction: shown struck through, not counted.
    pub voided: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareOut {
    pub id: String,
    pub name: String,
    /// Exact fraction, e.g. "3/8".
    pub fraction: String,
    /// Rounded so that one list adds up to exactly 100.00.
    pub percent: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputLot {
    pub lot_id: String,
    /// Steps away from the labelled lot.
    pub depth: u32,
    pub product: String,
    pub facility: String,
    pub owner: String,
    /// Who delivered it, for received lots.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub supplier: String,
    pub made_as: String,
    pub made_at: Stamp,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub place: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<VerdictOut>,
    pub inspections: Vec<InspectionOut>,
    pub voided: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Receipt,
    Inspection,
    Processing,
    Packing,
    Shipment,
    Status,
    Correction,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub at: Stamp,
    pub kind: StepKind,
    pub lot_id: String,
    /// Product, process step, standard or new status, by kind.
    pub what: String,
    /// Supplier (receipt), verdict (inspection) or reason (status, correction).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<VerdictOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    pub voided: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Correction {
    /// The voided event.
    #[serde(skip)]
    event_id: String,
    pub lot_id: String,
    /// What was voided: "inspection", "receipt", "processing", "packing", ...
    pub what: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Stamp>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plot {
    pub lot_id: String,
    pub plot_id: String,
    pub place: String,
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub chain: String,
    pub sequence: u64,
    /// blake3 of the stored envelope, hex.
    pub hash: String,
}

/// What the genealogy gives, before the labelled lot's events are read.
pub struct Draft {
    page: Provenance,
    /// Log positions of the labelled lot's events and of the corrections
    /// of every lot on the page, oldest first.
    pub history: Vec<u64>,
    /// Event ids the genealogy knows as voided: id -> reason.
    voids: std::collections::HashMap<String, String>,
    /// Position of the labelled lot's latest event.
    last: Option<u64>,
}

/// Resolves `path` and gathers its public story from the genealogy. Runs
/// under the projection's read lock: no I/O.
pub fn draft(g: &Genealogy, path: &str, base: &str) -> Result<Draft, GenealogyError> {
    let lookup = g.lookup_label(path)?;
    let link = DigitalLink::new(
        jejak_domain::gs1::Gtin::parse(&lookup.gtin).map_err(|e| GenealogyError::InvalidArgument(e.to_string()))?,
        lookup.lot_id.clone(),
        (!lookup.serial.is_empty()).then(|| lookup.serial.clone()),
    )
    .map_err(|e| GenealogyError::InvalidArgument(e.to_string()))?;
    let lot = lookup.lot.unwrap_or_default();
    let target = p::Target {
        kind: Some(p::target::Kind::LotId(lot.lot_id.clone())),
    };
    let trace = g.backward_trace(Some(&target), 0, TraceLimits::default().with_max_nodes(PAGE_MAX_NODES))?;
    let shares = g.origin_shares(Some(&target))?;
    let mut history = g.history_positions(&lot.lot_id)?;

    let mut voids = std::collections::HashMap::new();
    let mut corrections = Vec::new();
    let mut void_positions = Vec::new();
    let mut note_void = |lot_id: &str, event_id: &str, what: &str| {
        if let Some((void_id, reason)) = g.voided_by(event_id) {
            voids.insert(event_id.to_string(), reason.clone());
            void_positions.extend(g.event_position(&void_id));
            corrections.push(Correction {
                event_id: event_id.to_string(),
                lot_id: lot_id.to_string(),
                what: what.to_string(),
                reason,
                at: None,
            });
        }
    };

    let mut inputs = Vec::new();
    let mut plots = Vec::new();
    let mut timeline = Vec::new();
    let mut alerts = Vec::new();
    let mut nodes: Vec<&p::TraceNode> = trace.nodes.iter().collect();
    nodes.sort_by(|a, b| {
        a.depth
            .cmp(&b.depth)
            .then_with(|| lot_of(a).lot_id.cmp(&lot_of(b).lot_id))
    });
    for node in nodes {
        let l = lot_of(node);
        let inspections = inspections(&l.inspections);
        for (i, out) in l.inspections.iter().zip(&inspections) {
            if i.voided {
                note_void(&l.lot_id, &i.event_id, "inspection");
            }
            timeline.push(Step {
                at: out.at,
                kind: StepKind::Inspection,
                lot_id: l.lot_id.clone(),
                what: out.standard.clone(),
                detail: String::new(),
                verdict: out.verdict,
                status: None,
                voided: out.voided,
            });
        }
        if l.voided {
            let what = if l.created_as == "received" {
                "receipt"
            } else {
                "processing"
            };
            note_void(&l.lot_id, &l.created_by, what);
        }
        // The labelled lot's own making comes from its events below.
        if node.depth == 0 {
            continue;
        }
        let received = l.created_as == "received";
        timeline.push(Step {
            at: Stamp::of(l.created_at.as_ref()),
            kind: if received {
                StepKind::Receipt
            } else {
                StepKind::Processing
            },
            lot_id: l.lot_id.clone(),
            what: if received {
                l.product_name.clone()
            } else {
                l.created_as.clone()
            },
            detail: if received {
                l.supplier_name.clone()
            } else {
                l.product_name.clone()
            },
            verdict: None,
            status: None,
            voided: l.voided,
        });
        let status = Status::of(l.status);
        let verdict = VerdictOut::of(l.verdict);
        if !l.voided
            && (matches!(verdict, Some(VerdictOut::NonConformant | VerdictOut::Hold))
                || matches!(status, Status::OnHold | Status::Recalled))
        {
            alerts.push(Alert::Input {
                lot_id: l.lot_id.clone(),
                product: l.product_name.clone(),
                verdict,
                status,
            });
        }
        let origin = l.origin.clone().unwrap_or_default();
        if let Some(pt) = origin
            .plot
            .filter(|pt| pt.latitude.is_finite() && pt.longitude.is_finite())
        {
            plots.push(Plot {
                lot_id: l.lot_id.clone(),
                plot_id: origin.plot_id.clone(),
                place: origin.place.clone(),
                latitude: pt.latitude,
                longitude: pt.longitude,
            });
        }
        inputs.push(InputLot {
            lot_id: l.lot_id.clone(),
            depth: node.depth,
            product: l.product_name.clone(),
            facility: l.facility_name.clone(),
            owner: l.owner_name.clone(),
            supplier: l.supplier_name.clone(),
            made_as: l.created_as.clone(),
            made_at: Stamp::of(l.created_at.as_ref()),
            place: origin.place,
            status,
            verdict,
            inspections,
            voided: l.voided,
        });
    }

    let status = Status::of(lot.status);
    let verdict = VerdictOut::of(lot.verdict);
    let root_inspections = inspections(&lot.inspections);
    if let Some(v @ (VerdictOut::NonConformant | VerdictOut::Hold)) = verdict {
        let standard = root_inspections
            .iter()
            .rev()
            .find(|i| !i.voided)
            .map(|i| i.standard.clone())
            .unwrap_or_default();
        alerts.insert(0, Alert::Verdict { verdict: v, standard });
    }
    if lot.voided {
        let reason = g.voided_by(&lot.created_by).map(|(_, r)| r).unwrap_or_default();
        alerts.insert(0, Alert::Voided { reason });
    }
    let share = |s: &p::Share| ShareOut {
        id: s.party_id.clone(),
        name: s.party_name.clone(),
        fraction: s.fraction.clone(),
        percent: s.percent.clone(),
    };
    let page = Provenance {
        uri: link.uri(base),
        gtin: link.gtin.as_str().to_string(),
        lot_id: lot.lot_id.clone(),
        serial: link.serial.clone(),
        product: Named {
            id: lot.product_id.clone(),
            name: lot.product_name.clone(),
        },
        facility: Named {
            id: lot.facility_id.clone(),
            name: lot.facility_name.clone(),
        },
        owner: Named {
            id: lot.owner_id.clone(),
            name: lot.owner_name.clone(),
        },
        status,
        verdict,
        made_as: lot.created_as.clone(),
        made_at: Stamp::of(lot.created_at.as_ref()),
        alerts,
        inspections: root_inspections,
        ukm_shares: shares.by_ukm.iter().map(share).collect(),
        supplier_shares: shares
            .by_supplier
            .iter()
            .filter(|s| !s.party_id.is_empty())
            .map(share)
            .collect(),
        inputs,
        timeline,
        corrections,
        plots,
        complete: !trace.truncated,
        last_record: None,
    };
    let last = history.last().copied();
    // The corrections' own events, for when they were made.
    history.extend(void_positions);
    history.sort_unstable();
    history.dedup();
    Ok(Draft {
        page,
        history,
        voids,
        last,
    })
}

fn lot_of(n: &p::TraceNode) -> &p::Lot {
    static EMPTY: std::sync::OnceLock<p::Lot> = std::sync::OnceLock::new();
    n.lot.as_ref().unwrap_or_else(|| EMPTY.get_or_init(p::Lot::default))
}

fn inspections(list: &[p::Inspection]) -> Vec<InspectionOut> {
    list.iter()
        .map(|i| InspectionOut {
            standard: if i.standard_name.is_empty() {
                i.standard_id.clone()
            } else {
                i.standard_name.clone()
            },
            verdict: VerdictOut::of(i.verdict),
            at: Stamp::of(i.occurred_at.as_ref()),
            voided: i.voided,
        })
        .collect()
}

/// Completes the story with the labelled lot's own events, read from the
/// log at `draft.history` (oldest first).
pub fn finish(draft: Draft, events: &[StoredEvent]) -> Provenance {
    use p::event::Kind;
    let Draft {
        mut page,
        voids,
        last: draft_last,
        ..
    } = draft;
    let lot_id = page.lot_id.clone();
    let mut status_since: Option<(Stamp, String)> = None;
    let step = |at: Stamp, kind: StepKind, what: String, detail: String, voided: bool| Step {
        at,
        kind,
        lot_id: lot_id.clone(),
        what,
        detail,
        verdict: None,
        status: None,
        voided,
    };
    for e in events {
        let env = &e.envelope;
        let voided = voids.contains_key(&env.event_id);
        let Some(kind) = env.event.as_ref().and_then(|ev| ev.kind.as_ref()) else {
            continue;
        };
        match kind {
            Kind::MaterialReceived(r) if r.lot_id == lot_id => {
                page.timeline.push(step(
                    Stamp::of(r.occurred_at.as_ref()),
                    StepKind::Receipt,
                    page.product.name.clone(),
                    String::new(),
                    voided,
                ));
            }
            Kind::LotProcessed(pr) if pr.outputs.iter().any(|o| o.lot_id == lot_id) => {
                page.timeline.push(step(
                    Stamp::of(pr.occurred_at.as_ref()),
                    StepKind::Processing,
                    pr.process_step.clone(),
                    page.product.name.clone(),
                    voided,
                ));
            }
            Kind::LotPacked(pk) if pk.lot_id == lot_id => {
                page.timeline.push(step(
                    Stamp::of(pk.occurred_at.as_ref()),
                    StepKind::Packing,
                    page.product.name.clone(),
                    String::new(),
                    voided,
                ));
            }
            // Only that it left, and when: the consignee is not public.
            Kind::LotShipped(s) if s.lot_id == lot_id => {
                page.timeline.push(step(
                    Stamp::of(s.occurred_at.as_ref()),
                    StepKind::Shipment,
                    String::new(),
                    String::new(),
                    voided,
                ));
            }
            Kind::LotStatusChanged(c) if c.lot_id == lot_id => {
                let at = Stamp::of(c.occurred_at.as_ref());
                let status = Status::of(c.status);
                let mut s = step(at, StepKind::Status, String::new(), c.reason.clone(), voided);
                s.status = Some(status);
                page.timeline.push(s);
                if !voided {
                    status_since = Some((at, c.reason.clone()));
                }
            }
            Kind::EventVoided(v) => {
                let at = Stamp::of(v.occurred_at.as_ref());
                let mut on = lot_id.clone();
                match page.corrections.iter_mut().find(|c| c.event_id == v.voided_event_id) {
                    Some(c) => {
                        c.at = Some(at);
                        on = c.lot_id.clone();
                    }
                    None => page.corrections.push(Correction {
                        event_id: v.voided_event_id.clone(),
                        lot_id: lot_id.clone(),
                        what: "event".into(),
                        reason: v.reason.clone(),
                        at: Some(at),
                    }),
                }
                let mut s = step(at, StepKind::Correction, String::new(), v.reason.clone(), false);
                s.lot_id = on;
                page.timeline.push(s);
            }
            _ => {}
        }
    }
    if let Some(last) = events.iter().rev().find(|e| Some(e.position) == draft_last) {
        page.last_record = Some(Record {
            chain: last.envelope.chain.clone(),
            sequence: last.envelope.sequence,
            hash: hex::encode(last.hash),
        });
    }
    if matches!(page.status, Status::Recalled | Status::OnHold | Status::Disposed) {
        let (since, reason) = status_since.map_or((None, String::new()), |(at, r)| (Some(at), r));
        page.alerts.insert(
            0,
            Alert::Status {
                status: page.status,
                reason,
                since,
            },
        );
    }
    page.timeline
        .sort_by(|a, b| a.at.cmp(&b.at).then_with(|| rank(a.kind).cmp(&rank(b.kind))));
    page
}

/// Order of steps recorded at the same instant.
fn rank(k: StepKind) -> u8 {
    match k {
        StepKind::Receipt => 0,
        StepKind::Inspection => 1,
        StepKind::Processing => 2,
        StepKind::Packing => 3,
        StepKind::Shipment => 4,
        StepKind::Status => 5,
        StepKind::Correction => 6,
    }
}
