//! The story of one label, as the provenance page, the JSON document and the
//! JSON-LD tell it: built from the genealogy (the trace down to the receipts,
//! the origin shares, inspections and corrections) and from the labelled
//! lot's own events in the log (packing, shipments, status changes with
//! their reasons). Only the public view goes in: no quantities, prices,
//! documents, measurements, consignees or contact details.

use jejak_domain::read::{Inspection, LabelLookup, LotView, Share, TraceNode};
use jejak_domain::{shares, LotStatus, Time, Verdict};
use jejak_genealogy::{Genealogy, GenealogyError, TraceLimits};
use jejak_log::StoredEvent;
use jejak_proto::v1 as p;
use serde::Serialize;

use crate::View;

/// Most lots a page describes; a deeper genealogy says it was cut short.
const PAGE_MAX_NODES: u32 = 400;
/// Most of the labelled lot's own events read from the log per request.
const MAX_OWN_EVENTS: usize = 400;

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
    /// Whether the lot was received rather than made by a step (which
    /// may itself be named "received").
    pub received: bool,
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
    /// The transparency log's last checkpoint: the story can be checked
    /// offline with the provenance bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verifiable: Option<Verifiable>,
}

/// What the page says of the transparency log.
#[derive(Debug, Clone, Serialize)]
pub struct Verifiable {
    pub tree_size: u64,
    pub signed_at: Stamp,
    /// How many witnesses cosigned the checkpoint.
    pub witnesses: usize,
    /// The log's verifier key.
    pub log_key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Named {
    pub id: String,
    pub name: String,
}

impl From<&jejak_domain::read::Named> for Named {
    fn from(n: &jejak_domain::read::Named) -> Named {
        Named {
            id: n.id.clone(),
            name: n.name.clone(),
        }
    }
}

/// A time, in UTC nanoseconds; serialised as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(pub i64);

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

/// Western Indonesian Time is UTC+7 all year.
const WIB: time::UtcOffset = match time::UtcOffset::from_hms(7, 0, 0) {
    Ok(o) => o,
    Err(_) => time::UtcOffset::UTC,
};

impl Stamp {
    fn utc(self) -> time::OffsetDateTime {
        // Out of `time`'s range (beyond year ±9999) only for a corrupt
        // record; shown as the epoch rather than refused.
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }

    /// RFC 3339 in UTC, to the second: "2026-09-11T07:00:00Z".
    pub fn rfc3339(self) -> String {
        let t = self.utc();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    /// (year, month 1..=12, day, hour, minute) in WIB.
    pub fn wib(self) -> (i32, u8, u8, u8, u8) {
        let t = self.utc().to_offset(WIB);
        (t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
    }

    fn at(t: Time) -> Stamp {
        Stamp(t.0)
    }

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

impl From<LotStatus> for Status {
    fn from(s: LotStatus) -> Status {
        match s {
            LotStatus::Active => Status::Active,
            LotStatus::OnHold => Status::OnHold,
            LotStatus::Released => Status::Released,
            LotStatus::Recalled => Status::Recalled,
            LotStatus::Disposed => Status::Disposed,
        }
    }
}

impl From<Verdict> for VerdictOut {
    fn from(v: Verdict) -> VerdictOut {
        match v {
            Verdict::Conformant => VerdictOut::Conformant,
            Verdict::NonConformant => VerdictOut::NonConformant,
            Verdict::Hold => VerdictOut::Hold,
        }
    }
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

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "kind")]
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
    /// The genealogy goes further back than the server follows: problems
    /// there are not checked.
    Unchecked,
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
    /// Exact fraction, e.g. "3/8"; never on the public page.
    #[serde(skip_serializing_if = "String::is_empty")]
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
    /// Whether the lot was received rather than made by a step.
    pub received: bool,
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

impl Correction {
    /// A voided inspection of `lot_id`, told without its date (for pages
    /// built by hand, as the renderers' tests do).
    pub fn inspection(lot_id: &str, reason: &str) -> Correction {
        Correction {
            event_id: String::new(),
            lot_id: lot_id.into(),
            what: "inspection".into(),
            reason: reason.into(),
            at: None,
        }
    }
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
///
/// Every lot goes through the public view (`View::Public`) before anything
/// is taken from it, the same narrowing gRPC applies, so the story can tell
/// nothing the public view drops. Only the event ids of the lots' making
/// are kept aside, to find the corrections of receipts and processing.
pub fn draft(g: &Genealogy, path: &str, base: &str) -> Result<Draft, GenealogyError> {
    // The public view drops the lot's dealings: not built.
    let LabelLookup { link, lot, .. } = g.lookup_label_for(path, &|_, _, _| false)?;
    let lot_made_by = lot.created_by.clone().unwrap_or_default();
    let lot = View::Public.lot(lot);
    let target = jejak_domain::Target::Lot(lot.lot_id.clone());
    let trace = g.backward_trace(&target, 0, TraceLimits::default().with_max_nodes(PAGE_MAX_NODES))?;
    let made_by: std::collections::HashMap<String, String> = trace
        .nodes
        .iter()
        .map(|n| (n.lot.lot_id.clone(), n.lot.created_by.clone().unwrap_or_default()))
        .collect();
    // The ids of voided inspections, to find their corrections (the public
    // view drops every event id).
    let voided_inspections: std::collections::HashMap<String, Vec<String>> = trace
        .nodes
        .iter()
        .map(|n| {
            let ids = n.lot.inspections.iter().filter(|i| i.voided);
            (n.lot.lot_id.clone(), ids.filter_map(|i| i.event_id.clone()).collect())
        })
        .collect();
    let trace = View::Public.trace(trace);
    // Whole percentages, as the public sees them; an ancestry too large to
    // share out is told as incomplete rather than refused.
    let public = |_: &mut dyn Iterator<Item = jejak_genealogy::LotParties<'_>>| false;
    let shares = match g.origin_shares(&target, &public, TraceLimits::default()) {
        Err(GenealogyError::TooLarge { .. }) => None,
        other => Some(other?),
    };
    let mut history = g.history_positions(&lot.lot_id)?;
    // A lot with a long life (thousands of shipments) is told from its
    // first events and its latest ones.
    if history.len() > MAX_OWN_EVENTS {
        let tail = history.split_off(history.len() - MAX_OWN_EVENTS / 2);
        history.truncate(MAX_OWN_EVENTS / 2);
        history.extend(tail);
    }

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
    let mut nodes: Vec<&TraceNode> = trace.nodes.iter().collect();
    nodes.sort_by(|a, b| a.depth.cmp(&b.depth).then_with(|| a.lot.lot_id.cmp(&b.lot.lot_id)));
    for node in nodes {
        let l = &node.lot;
        let inspections = inspections(&l.inspections);
        for id in voided_inspections.get(&l.lot_id).into_iter().flatten() {
            note_void(&l.lot_id, id, "inspection");
        }
        for out in &inspections {
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
            let what = if l.made.is_received() { "receipt" } else { "processing" };
            note_void(&l.lot_id, made_by.get(&l.lot_id).map_or("", String::as_str), what);
        }
        // The labelled lot's own making comes from its events below.
        if node.depth == 0 {
            continue;
        }
        let received = l.made.is_received();
        timeline.push(Step {
            at: Stamp::at(l.created_at),
            kind: if received {
                StepKind::Receipt
            } else {
                StepKind::Processing
            },
            lot_id: l.lot_id.clone(),
            what: if received {
                l.product.name.clone()
            } else {
                l.made.label().to_string()
            },
            detail: if received {
                supplier_name(l)
            } else {
                l.product.name.clone()
            },
            verdict: None,
            status: None,
            voided: l.voided,
        });
        let status = Status::from(l.status);
        let verdict = l.verdict.map(VerdictOut::from);
        if let Some((verdict, status)) = troubled(l) {
            alerts.push(Alert::Input {
                lot_id: l.lot_id.clone(),
                product: l.product.name.clone(),
                verdict,
                status,
            });
        }
        let origin = l.origin.clone();
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
            product: l.product.name.clone(),
            facility: l.facility.name.clone(),
            owner: l.owner.name.clone(),
            supplier: supplier_name(l),
            made_as: l.made.label().to_string(),
            received,
            made_at: Stamp::at(l.created_at),
            place: origin.place,
            status,
            verdict,
            inspections,
            voided: l.voided,
        });
    }

    // Problems further back than the page goes are still announced: the
    // whole ancestry (to the server's trace limits) is checked for them.
    let mut complete = trace.truncated.is_none();
    if !complete {
        let full = View::Public.trace(g.backward_trace(&target, 0, TraceLimits::default())?);
        complete = full.truncated.is_none();
        let shown: std::collections::HashSet<&str> = inputs.iter().map(|i| i.lot_id.as_str()).collect();
        for l in full.nodes.iter().filter(|n| n.depth > 0).map(|n| &n.lot) {
            if shown.contains(l.lot_id.as_str()) {
                continue;
            }
            if let Some((verdict, status)) = troubled(l) {
                alerts.push(Alert::Input {
                    lot_id: l.lot_id.clone(),
                    product: l.product.name.clone(),
                    verdict,
                    status,
                });
            }
        }
        if !complete {
            alerts.push(Alert::Unchecked);
        }
    }
    let status = Status::from(lot.status);
    let verdict = lot.verdict.map(VerdictOut::from);
    let root_inspections = inspections(&lot.inspections);
    let held = verdict == Some(VerdictOut::Hold) && !lot.hold_released;
    if let Some(v) = verdict.filter(|v| *v == VerdictOut::NonConformant || held) {
        let standard = root_inspections
            .iter()
            .rev()
            .find(|i| !i.voided)
            .map(|i| i.standard.clone())
            .unwrap_or_default();
        alerts.insert(0, Alert::Verdict { verdict: v, standard });
    }
    if lot.voided {
        let reason = g.voided_by(&lot_made_by).map(|(_, r)| r).unwrap_or_default();
        alerts.insert(0, Alert::Voided { reason });
    }
    let share = |s: &Share| ShareOut {
        id: s.id.clone(),
        name: s.name.clone(),
        fraction: s.fraction.as_ref().map(shares::format_fraction).unwrap_or_default(),
        percent: s.percent.clone(),
    };
    let page = Provenance {
        uri: link.uri(base),
        gtin: link.gtin.as_str().to_string(),
        lot_id: lot.lot_id.clone(),
        serial: link.serial.clone(),
        product: Named::from(&lot.product),
        facility: Named::from(&lot.facility),
        owner: Named::from(&lot.owner),
        status,
        verdict,
        made_as: lot.made.label().to_string(),
        received: lot.made.is_received(),
        made_at: Stamp::at(lot.created_at),
        alerts,
        inspections: root_inspections,
        ukm_shares: shares.iter().flat_map(|s| &s.by_ukm).map(share).collect(),
        supplier_shares: shares
            .iter()
            .flat_map(|s| &s.by_supplier)
            .filter(|s| !s.id.is_empty())
            .map(share)
            .collect(),
        inputs,
        timeline,
        corrections,
        plots,
        complete: complete && shares.is_some(),
        last_record: None,
        verifiable: None,
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

/// Whether a lot is a problem for what is made from it: non-conformant,
/// held (and not released), or held or recalled by its status.
fn troubled(l: &LotView) -> Option<(Option<VerdictOut>, Status)> {
    let status = Status::from(l.status);
    let verdict = l.verdict.map(VerdictOut::from);
    let bad_verdict = match verdict {
        Some(VerdictOut::NonConformant) => true,
        Some(VerdictOut::Hold) => !l.hold_released,
        _ => false,
    };
    (!l.voided && (bad_verdict || matches!(status, Status::OnHold | Status::Recalled))).then_some((verdict, status))
}

fn supplier_name(l: &LotView) -> String {
    l.supplier.as_ref().map(|s| s.name.clone()).unwrap_or_default()
}

fn inspections(list: &[Inspection]) -> Vec<InspectionOut> {
    list.iter()
        .map(|i| InspectionOut {
            standard: if i.standard.name.is_empty() {
                i.standard.id.clone()
            } else {
                i.standard.name.clone()
            },
            verdict: Some(VerdictOut::from(i.verdict)),
            at: Stamp::at(i.at),
            voided: i.voided,
        })
        .collect()
}

/// Completes the story with the labelled lot's own events, read from the
/// log at `draft.history` (oldest first), and the corrections' events.
pub fn finish(draft: Draft, events: &[StoredEvent]) -> Provenance {
    use p::event::Kind;
    let Draft {
        mut page,
        voids,
        last: draft_last,
        ..
    } = draft;
    let lot_id = page.lot_id.clone();
    let step = |at: Stamp, kind: StepKind, what: String, detail: String| Step {
        at,
        kind,
        lot_id: lot_id.clone(),
        what,
        detail,
        verdict: None,
        status: None,
        voided: false,
    };
    // The labelled lot's own events become steps, each remembered with what
    // it was (for its correction) and where its step is; whether a later
    // event voided one is known only once all are read.
    let mut own: std::collections::HashMap<&str, (&'static str, Option<usize>)> = std::collections::HashMap::new();
    let mut changes: Vec<(&str, Stamp, &str)> = Vec::new();
    let mut void_events: Vec<&p::EventVoided> = Vec::new();
    for e in events {
        let env = &e.envelope;
        let Some(kind) = env.event.as_ref().and_then(|ev| ev.kind.as_ref()) else {
            continue;
        };
        let (what, new_step) = match kind {
            Kind::EventVoided(v) => {
                void_events.push(v);
                continue;
            }
            Kind::MaterialReceived(r) if r.lot_id == lot_id => (
                "receipt",
                Some(step(
                    Stamp::of(r.occurred_at.as_ref()),
                    StepKind::Receipt,
                    page.product.name.clone(),
                    String::new(),
                )),
            ),
            Kind::LotProcessed(pr) if pr.outputs.iter().any(|o| o.lot_id == lot_id) => (
                "processing",
                Some(step(
                    Stamp::of(pr.occurred_at.as_ref()),
                    StepKind::Processing,
                    pr.process_step.clone(),
                    page.product.name.clone(),
                )),
            ),
            // Its step comes from the genealogy, with the verdict.
            Kind::LotInspected(i) if i.lot_id == lot_id => ("inspection", None),
            Kind::LotPacked(pk) if pk.lot_id == lot_id => (
                "packing",
                Some(step(
                    Stamp::of(pk.occurred_at.as_ref()),
                    StepKind::Packing,
                    page.product.name.clone(),
                    String::new(),
                )),
            ),
            // Only that it left, and when: the consignee is not public. A
            // serial's page shows only the shipments that took its unit (a
            // shipment without serials took unpacked stock).
            Kind::LotShipped(sh) if sh.lot_id == lot_id => {
                let took_it = page
                    .serial
                    .as_ref()
                    .is_none_or(|serial| sh.package_serials.contains(serial));
                let at = Stamp::of(sh.occurred_at.as_ref());
                (
                    "shipment",
                    took_it.then(|| step(at, StepKind::Shipment, String::new(), String::new())),
                )
            }
            Kind::LotStatusChanged(c) if c.lot_id == lot_id => {
                let at = Stamp::of(c.occurred_at.as_ref());
                changes.push((&env.event_id, at, &c.reason));
                let mut s = step(at, StepKind::Status, String::new(), c.reason.clone());
                s.status = Some(Status::of(c.status));
                ("status", Some(s))
            }
            _ => continue,
        };
        let index = new_step.map(|s| {
            page.timeline.push(s);
            page.timeline.len() - 1
        });
        own.insert(&env.event_id, (what, index));
    }
    let voided: std::collections::HashSet<&str> = voids
        .keys()
        .map(String::as_str)
        .chain(void_events.iter().map(|v| v.voided_event_id.as_str()))
        .collect();
    for (id, (_, index)) in &own {
        if let (true, Some(i)) = (voided.contains(id), index) {
            page.timeline[*i].voided = true;
        }
    }
    let status_since = changes
        .iter()
        .rev()
        .find(|(id, ..)| !voided.contains(id))
        .map(|(_, at, reason)| (*at, reason.to_string()));
    for v in void_events {
        let at = Stamp::of(v.occurred_at.as_ref());
        // The correction of an input shown on the page, or of the labelled
        // lot's own event; a correction of something made later from this
        // lot belongs to that lot's page.
        let on = match page.corrections.iter_mut().find(|c| c.event_id == v.voided_event_id) {
            Some(c) => {
                c.at = Some(at);
                c.lot_id.clone()
            }
            None => match own.get(v.voided_event_id.as_str()) {
                Some((what, _)) => {
                    page.corrections.push(Correction {
                        event_id: v.voided_event_id.clone(),
                        lot_id: lot_id.clone(),
                        what: (*what).to_string(),
                        reason: v.reason.clone(),
                        at: Some(at),
                    });
                    lot_id.clone()
                }
                None => continue,
            },
        };
        let mut s = step(at, StepKind::Correction, String::new(), v.reason.clone());
        s.lot_id = on;
        page.timeline.push(s);
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

#[cfg(test)]
mod stamp_tests {
    use super::Stamp;

    #[test]
    fn stamps_read_in_utc_and_in_western_indonesian_time() {
        // 2026-09-11T07:30:00Z is 14.30 WIB.
        let t = Stamp(1_789_111_800 * 1_000_000_000);
        assert_eq!(t.rfc3339(), "2026-09-11T07:30:00Z");
        assert_eq!(t.wib(), (2026, 9, 11, 14, 30));
        // 20:00Z on the last day of a leap February is already 1 March in WIB.
        let t = Stamp(1_709_236_800 * 1_000_000_000);
        assert_eq!(t.rfc3339(), "2024-02-29T20:00:00Z");
        assert_eq!(t.wib(), (2024, 3, 1, 3, 0));
        assert_eq!(Stamp(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Stamp(-1).rfc3339(), "1969-12-31T23:59:59Z");
    }
}
