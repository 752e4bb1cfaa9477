//! Alerts: what a recall, a hold or a failed inspection of a lot means for
//! everyone downstream. Each is derived from one event of the log and the
//! genealogy's forward trace of its lot: every lot made from it (with their
//! owners and facilities) and every shipment its material reached (with the
//! consignees). The payload is the Standard Webhooks form (`type`,
//! `timestamp`, `data`); its id is the event's, so a receiver drops
//! duplicates by it.

use jejak_domain::{Event, LotStatus, Target, Time, Verdict};
use jejak_log::StoredEvent;
use serde_json::{json, Value};

use crate::epcis::decode;
use crate::reader::Reader;
use crate::ReadError;

/// An alert as raised: its payload and whom it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    /// The log position of the event that raised it.
    pub position: u64,
    pub id: String,
    pub payload: Value,
    /// The owners of the lots made from the lot, and the consignees of
    /// the shipments it reached.
    pub parties: Vec<String>,
    /// The facilities of the lot and of the lots made from it.
    pub facilities: Vec<String>,
    /// The lot and every lot made from it.
    pub lots: Vec<String>,
}

/// The alert type an event raises, with its lot, facility and reason.
fn trigger(e: &Event) -> Option<(&'static str, &str, &str, String)> {
    match e {
        Event::LotStatusChanged(s) if s.status == LotStatus::Recalled => {
            Some(("lot.recalled", &s.lot_id, &s.facility_id, s.reason.clone()))
        }
        Event::LotStatusChanged(s) if s.status == LotStatus::OnHold => {
            Some(("lot.held", &s.lot_id, &s.facility_id, s.reason.clone()))
        }
        Event::LotInspected(i) if i.verdict == Verdict::NonConformant => Some((
            "lot.inspection_failed",
            &i.lot_id,
            &i.facility_id,
            i.findings.join("; "),
        )),
        Event::LotInspected(i) if i.verdict == Verdict::Hold => {
            Some(("lot.held", &i.lot_id, &i.facility_id, i.findings.join("; ")))
        }
        _ => None,
    }
}

/// Whether the stored event may raise an alert, judged by its kind alone
/// (without converting it): only a status change or an inspection can. An
/// envelope without an event is kept, for `alert_of` to report.
pub fn may_raise(e: &StoredEvent) -> bool {
    use jejak_proto::v1::event::Kind;
    match e.envelope.event.as_ref().and_then(|x| x.kind.as_ref()) {
        Some(Kind::LotStatusChanged(_) | Kind::LotInspected(_)) | None => true,
        Some(_) => false,
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

impl<L: jejak_log::ReadLog> Reader<L> {
    /// The alert the event at `e` raises, if it raises one, computed from
    /// the genealogy as it stands (which has applied `e`).
    pub async fn alert_of(&self, e: &StoredEvent) -> Result<Option<Raised>, ReadError> {
        if !may_raise(e) {
            return Ok(None);
        }
        let event = decode(e)?;
        let Some((kind, lot, facility, reason)) = trigger(&event) else {
            return Ok(None);
        };
        let (lot, facility) = (lot.to_string(), facility.to_string());
        let at = event.occurred_at().unwrap_or(Time(0));
        let limits = self.limits();
        let target = Target::Lot(lot.clone());
        let (trace, _) = self.query(move |g| g.forward_trace(&target, 0, limits)).await?;
        let trace = trace?;
        let mut parties = Vec::new();
        let mut facilities = vec![facility.clone()];
        let lots: Vec<Value> = trace
            .nodes
            .iter()
            .map(|n| {
                let l = &n.lot;
                parties.push(l.owner.id.clone());
                facilities.push(l.facility.id.clone());
                json!({
                    "lot": l.lot_id,
                    "product": l.product.id,
                    "productName": l.product.name,
                    "owner": l.owner.id,
                    "facility": l.facility.id,
                    "depth": n.depth,
                })
            })
            .collect();
        let shipments: Vec<Value> = trace
            .shipments
            .iter()
            .filter(|s| !s.consignee.id.is_empty())
            .map(|s| {
                parties.push(s.consignee.id.clone());
                json!({
                    "eventId": s.event_id,
                    "lot": s.lot_id,
                    "consignee": s.consignee.id,
                    "consigneeName": s.consignee.name,
                    "quantity": s.quantity.as_ref().map(ToString::to_string),
                    "serials": s.serials,
                    "document": s.document,
                    "shippedAt": jejak_epcis::export::time(s.at),
                })
            })
            .collect();
        let parties = sorted(parties);
        let payload = json!({
            "type": kind,
            "timestamp": jejak_epcis::export::time(at),
            "data": {
                "alertId": e.envelope.event_id,
                "position": e.position,
                "lot": lot,
                "facility": facility,
                "reason": reason,
                "occurredAt": jejak_epcis::export::time(at),
                "affectedLots": lots,
                "shipments": shipments,
                "parties": parties,
                "complete": trace.truncated.is_none(),
            },
        });
        Ok(Some(Raised {
            position: e.position,
            id: e.envelope.event_id.clone(),
            payload,
            lots: sorted(trace.nodes.iter().map(|n| n.lot.lot_id.clone()).collect()),
            facilities: sorted(facilities),
            parties,
        }))
    }
}
