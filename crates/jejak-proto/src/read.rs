//! The API's replies, built `From` the domain's read models (see
//! `jejak_domain::read`). Each conversion destructures its model, so a
//! field added to a read model does not compile until its reply carries it
//! (or says why not). A value a view hid is absent on the wire.

use jejak_domain::read as r;
use jejak_domain::shares;

use crate::convert::{
    documents_to_proto, event_to_proto, measurements_to_proto, origin_to_proto, quantity_to_proto, status_to_proto,
    time_to_proto, verdict_to_proto,
};
use crate::v1 as p;

impl From<r::Inspection> for p::Inspection {
    fn from(i: r::Inspection) -> p::Inspection {
        let r::Inspection {
            event_id,
            standard,
            verdict,
            measurements,
            findings,
            at,
            voided,
        } = i;
        p::Inspection {
            event_id: event_id.unwrap_or_default(),
            standard_id: standard.id,
            standard_name: standard.name,
            verdict: verdict_to_proto(verdict) as i32,
            measurements: measurements_to_proto(&measurements),
            findings,
            occurred_at: Some(time_to_proto(at)),
            voided,
        }
    }
}

impl From<r::PackageView> for p::PackageInfo {
    fn from(pk: r::PackageView) -> p::PackageInfo {
        let r::PackageView {
            serial,
            gtin,
            quantity,
            label,
            shipped,
            event_id,
        } = pk;
        p::PackageInfo {
            serial,
            gtin,
            quantity: quantity.as_ref().map(quantity_to_proto),
            label,
            shipped,
            event_id: event_id.unwrap_or_default(),
        }
    }
}

impl From<r::ShipmentView> for p::Shipment {
    fn from(s: r::ShipmentView) -> p::Shipment {
        let r::ShipmentView {
            event_id,
            lot_id,
            consignee,
            quantity,
            serials,
            document,
            dds_reference,
            facility_id,
            at,
        } = s;
        p::Shipment {
            event_id,
            lot_id,
            consignee_id: consignee.id,
            consignee_name: consignee.name,
            quantity: quantity.as_ref().map(quantity_to_proto),
            package_serials: serials,
            document,
            dds_reference,
            facility_id,
            occurred_at: Some(time_to_proto(at)),
        }
    }
}

fn list<T, U: From<T>>(v: Vec<T>) -> Vec<U> {
    v.into_iter().map(U::from).collect()
}

impl From<r::LotView> for p::Lot {
    fn from(l: r::LotView) -> p::Lot {
        let r::LotView {
            lot_id,
            product,
            facility,
            owner,
            supplier,
            quantity,
            balance,
            status,
            verdict,
            hold_released,
            inspections,
            origin,
            documents,
            created_by,
            made,
            created_at,
            source_lot,
            packages,
            shipments,
            voided,
        } = l;
        let supplier = supplier.unwrap_or_default();
        p::Lot {
            lot_id,
            product_id: product.id,
            product_name: product.name,
            facility_id: facility.id,
            facility_name: facility.name,
            owner_id: owner.id,
            owner_name: owner.name,
            supplier_id: supplier.id,
            supplier_name: supplier.name,
            quantity: quantity.as_ref().map(quantity_to_proto),
            balance: balance.as_ref().map(quantity_to_proto),
            status: status_to_proto(status) as i32,
            verdict: verdict.map_or(0, |v| verdict_to_proto(v) as i32),
            hold_released,
            inspections: list(inspections),
            origin: origin_to_proto(&origin),
            documents: documents_to_proto(&documents),
            created_by: created_by.unwrap_or_default(),
            created_as: made.label().to_string(),
            made_by: match made {
                r::Making::Received => p::Making::Received,
                r::Making::Step(_) => p::Making::Processed,
            } as i32,
            created_at: Some(time_to_proto(created_at)),
            source_lot_id: source_lot.unwrap_or_default(),
            packages: list(packages),
            shipments: list(shipments),
            voided,
        }
    }
}

impl From<r::Trace> for p::TraceReply {
    fn from(t: r::Trace) -> p::TraceReply {
        let r::Trace {
            root,
            package,
            nodes,
            edges,
            packages,
            shipments,
            truncated,
        } = t;
        p::TraceReply {
            root_lot_id: root,
            package: package.map(Into::into),
            nodes: nodes
                .into_iter()
                .map(|r::TraceNode { lot, depth }| p::TraceNode {
                    lot: Some(lot.into()),
                    depth,
                })
                .collect(),
            edges: edges
                .into_iter()
                .map(
                    |r::TraceEdge {
                         input,
                         output,
                         quantity,
                         event_id,
                         step,
                     }| p::TraceEdge {
                        input_lot_id: input,
                        output_lot_id: output,
                        quantity: quantity.as_ref().map(quantity_to_proto),
                        event_id,
                        step,
                    },
                )
                .collect(),
            packages: list(packages),
            shipments: list(shipments),
            truncated: truncated.is_some(),
            truncated_reason: match truncated {
                None => p::TraceTruncation::Unspecified,
                Some(r::Truncation::MaxDepth) => p::TraceTruncation::MaxDepth,
                Some(r::Truncation::MaxNodes) => p::TraceTruncation::MaxNodes,
            } as i32,
        }
    }
}

/// A forward trace as a recall report: one row per shipment it reached,
/// with the shipped lot's product and the facility it left from.
impl From<r::Trace> for p::RecallReportReply {
    fn from(t: r::Trace) -> p::RecallReportReply {
        let lots: std::collections::HashMap<&str, &r::LotView> =
            t.nodes.iter().map(|n| (n.lot.lot_id.as_str(), &n.lot)).collect();
        let rows = t
            .shipments
            .iter()
            .map(|s| {
                let lot = lots.get(s.lot_id.as_str());
                p::RecallRow {
                    lot_id: s.lot_id.clone(),
                    product_id: lot.map(|l| l.product.id.clone()).unwrap_or_default(),
                    product_name: lot.map(|l| l.product.name.clone()).unwrap_or_default(),
                    quantity: s.quantity.as_ref().map(quantity_to_proto),
                    package_serials: s.serials.clone(),
                    consignee_id: s.consignee.id.clone(),
                    consignee_name: s.consignee.name.clone(),
                    facility_id: s.facility_id.clone(),
                    facility_name: lot
                        .filter(|l| l.facility.id == s.facility_id)
                        .map(|l| l.facility.name.clone())
                        .unwrap_or_default(),
                    shipped_at: Some(time_to_proto(s.at)),
                    document: s.document.clone(),
                    event_id: s.event_id.clone(),
                }
            })
            .collect();
        p::RecallReportReply {
            lot_id: t.root,
            rows,
            truncated: t.truncated.is_some(),
        }
    }
}

impl From<r::Share> for p::Share {
    fn from(s: r::Share) -> p::Share {
        let r::Share {
            id,
            name,
            fraction,
            percent,
        } = s;
        p::Share {
            party_id: id,
            party_name: name,
            fraction: fraction.as_ref().map(shares::format_fraction).unwrap_or_default(),
            percent,
        }
    }
}

impl From<r::OriginShares> for p::OriginSharesReply {
    fn from(s: r::OriginShares) -> p::OriginSharesReply {
        let r::OriginShares {
            lot_id,
            by_ukm,
            by_supplier,
            by_receipt,
        } = s;
        p::OriginSharesReply {
            lot_id,
            by_ukm: list(by_ukm),
            by_supplier: list(by_supplier),
            by_receipt: list(by_receipt),
        }
    }
}

impl From<r::LabelLookup> for p::LookupLabelReply {
    fn from(l: r::LabelLookup) -> p::LookupLabelReply {
        let r::LabelLookup { link, lot, package } = l;
        p::LookupLabelReply {
            gtin: link.gtin.as_str().to_string(),
            lot_id: link.lot,
            serial: link.serial.unwrap_or_default(),
            lot: Some(lot.into()),
            package: package.map(Into::into),
        }
    }
}

impl From<r::HistoryEntry> for p::HistoryEntry {
    fn from(e: r::HistoryEntry) -> p::HistoryEntry {
        let r::HistoryEntry {
            position,
            event_id,
            chain,
            sequence,
            recorded_at,
            actor,
            event,
            voided_by,
            hash,
        } = e;
        let (voided_by, void_reason) = voided_by.map_or((String::new(), String::new()), |v| (v.event_id, v.reason));
        p::HistoryEntry {
            position,
            event_id,
            chain,
            sequence,
            recorded_at: recorded_at.map(time_to_proto),
            actor,
            event: Some(event_to_proto(&event)),
            voided: !voided_by.is_empty(),
            voided_by,
            void_reason,
            hash: hex::encode(hash),
        }
    }
}

impl From<r::LotHistory> for p::LotHistoryReply {
    fn from(h: r::LotHistory) -> p::LotHistoryReply {
        let r::LotHistory { lot_id, entries } = h;
        p::LotHistoryReply {
            lot_id,
            entries: list(entries),
        }
    }
}

#[cfg(test)]
mod tests {
    use jejak_domain::{LotStatus, Origin, Quantity, Time, Unit, Verdict};

    use super::*;

    fn lot(made: r::Making) -> r::LotView {
        r::LotView {
            lot_id: "L1".into(),
            product: r::Named::new("prd-a", "Beras"),
            facility: r::Named::new("fac-a", "Demak"),
            owner: r::Named::new("ukm-1", "UKM Satu"),
            supplier: None,
            quantity: Some(Quantity::parse("quantity", "12.5", Unit::Kg).expect("quantity")),
            balance: None,
            status: LotStatus::OnHold,
            verdict: Some(Verdict::Hold),
            hold_released: false,
            inspections: Vec::new(),
            origin: Origin::default(),
            documents: Vec::new(),
            created_by: None,
            made,
            created_at: Time(1_000_000_123),
            source_lot: Some("S1".into()),
            packages: Vec::new(),
            shipments: Vec::new(),
            voided: true,
        }
    }

    #[test]
    fn a_lot_keeps_each_field_and_leaves_hidden_ones_empty() {
        let l = p::Lot::from(lot(r::Making::Step("received".into())));
        assert_eq!((l.lot_id.as_str(), l.product_name.as_str()), ("L1", "Beras"));
        assert_eq!(l.quantity.map(|q| q.value), Some("12.5".to_string()));
        assert_eq!(l.balance, None);
        assert_eq!((l.supplier_id.as_str(), l.created_by.as_str()), ("", ""));
        assert_eq!(l.status, p::LotStatus::OnHold as i32);
        assert_eq!(l.verdict, p::Verdict::Hold as i32);
        assert_eq!(l.origin, None, "an empty origin is absent");
        assert_eq!(l.source_lot_id, "S1");
        assert!(l.voided);
        // A step that happens to be named "received" is still a step.
        assert_eq!(
            (l.created_as.as_str(), l.made_by),
            ("received", p::Making::Processed as i32)
        );
        let received = p::Lot::from(lot(r::Making::Received));
        assert_eq!(received.made_by, p::Making::Received as i32);
        assert_eq!(received.created_at.map(|t| (t.seconds, t.nanos)), Some((1, 123)));
    }

    #[test]
    fn a_trace_says_why_it_was_cut() {
        let trace = |truncated| r::Trace {
            root: "L1".into(),
            package: None,
            nodes: vec![r::TraceNode {
                lot: lot(r::Making::Received),
                depth: 0,
            }],
            edges: Vec::new(),
            packages: Vec::new(),
            shipments: Vec::new(),
            truncated,
        };
        let whole = p::TraceReply::from(trace(None));
        assert!(!whole.truncated);
        assert_eq!(whole.truncated_reason, p::TraceTruncation::Unspecified as i32);
        let cut = p::TraceReply::from(trace(Some(r::Truncation::MaxNodes)));
        assert!(cut.truncated);
        assert_eq!(cut.truncated_reason, p::TraceTruncation::MaxNodes as i32);
        assert_eq!(cut.nodes[0].lot.as_ref().map(|l| l.lot_id.as_str()), Some("L1"));
    }

    #[test]
    fn a_hidden_fraction_is_absent_and_a_known_one_reduced() {
        let share = |fraction| r::Share {
            id: "ukm-1".into(),
            name: "UKM Satu".into(),
            fraction,
            percent: "37.50".into(),
        };
        assert_eq!(p::Share::from(share(shares::fraction(6, 16))).fraction, "3/8");
        assert_eq!(p::Share::from(share(None)).fraction, "");
    }
}
