//! What a caller may see of the genealogy.
//!
//! Administrators and regulators see everything. Operators see the lots of
//! their facilities in full, members the lots their party owns or supplied;
//! every other lot (and every lot, for callers without a token) is shown in
//! the **public view**, which keeps what a consumer scanning a label needs
//! and drops what a competitor should not learn:
//!
//! | kept | dropped |
//! |---|---|
//! | lot id, product, facility, owner (UKM) and supplier names, status, verdict (and whether a hold was released) | quantities and balances |
//! | each inspection's standard, verdict, date and whether it was voided | measurements and findings |
//! | how the lot was made (received, or the process step) and when | documents, delivery notes, consignees (shipments) |
//! | the origin: place (village, district), plot id and coordinates | packages other than the one a label names, source lot, creating event |
//!
//! Plot coordinates are public on purpose: where timber grew is what a
//! buyer checks for legality (SVLK, EU deforestation rules) and what the
//! provenance page draws on its map. The page (see `resolver`) also shows,
//! for the labelled lot, when it was packed and shipped (not to whom) and
//! the reasons given for its status changes; for every lot on the page, the
//! reasons given for corrections; and the chain, sequence and hash of the
//! labelled lot's latest event, so that a buyer can check the record.

use std::sync::Arc;

use jejak_proto::v1 as p;

use crate::ReadError;

/// How much of each lot a caller sees.
#[derive(Debug, Clone)]
pub enum View {
    Full,
    /// Lots of these facilities or of this party in full, the rest public.
    Scoped {
        who: String,
        facilities: Arc<[String]>,
        party: Option<String>,
    },
    Public,
}

impl View {
    /// Whether the caller sees `lot` in full.
    pub fn sees(&self, lot: &p::Lot) -> bool {
        match self {
            View::Full => true,
            View::Public => false,
            View::Scoped { facilities, party, .. } => {
                facilities.contains(&lot.facility_id)
                    || party
                        .as_deref()
                        .is_some_and(|p| p == lot.owner_id || p == lot.supplier_id)
            }
        }
    }

    /// The lot as the caller may see it.
    pub fn lot(&self, lot: p::Lot) -> p::Lot {
        if self.sees(&lot) {
            lot
        } else {
            public_lot(lot)
        }
    }

    /// Refuses queries (traces from, shares and history of) a lot the
    /// caller does not see in full.
    pub fn require(&self, lot: &p::Lot, what: &'static str) -> Result<(), ReadError> {
        match self {
            _ if self.sees(lot) => Ok(()),
            View::Public => Err(ReadError::NeedsToken {
                what,
                lot: lot.lot_id.clone(),
            }),
            View::Scoped { who, .. } => Err(ReadError::Hidden {
                who: who.clone(),
                what,
                lot: lot.lot_id.clone(),
            }),
            View::Full => Ok(()),
        }
    }

    /// A trace with every lot the caller does not see in full in its
    /// public view, and the quantities, packages and shipments of those lots
    /// left out. The root itself must be visible (checked by the caller).
    pub fn trace(&self, mut t: p::TraceReply) -> p::TraceReply {
        if matches!(self, View::Full) {
            return t;
        }
        let mut full = std::collections::HashSet::new();
        for n in &mut t.nodes {
            if let Some(lot) = n.lot.take() {
                if self.sees(&lot) {
                    full.insert(lot.lot_id.clone());
                }
                n.lot = Some(self.lot(lot));
            }
        }
        for e in &mut t.edges {
            if !full.contains(&e.input_lot_id) && !full.contains(&e.output_lot_id) {
                e.quantity = None;
            }
        }
        t.packages
            .retain(|pk| label_lot(&pk.label).is_some_and(|l| full.contains(&l)));
        t.shipments.retain(|s| full.contains(&s.lot_id));
        t
    }
}

fn label_lot(label: &str) -> Option<String> {
    jejak_domain::gs1::DigitalLink::parse(label).ok().map(|d| d.lot)
}

/// The public view of a lot (see the module's table).
pub fn public_lot(l: p::Lot) -> p::Lot {
    let p::Lot {
        lot_id,
        product_id,
        product_name,
        facility_id,
        facility_name,
        owner_id,
        owner_name,
        supplier_id,
        supplier_name,
        quantity: _,
        balance: _,
        status,
        verdict,
        inspections,
        origin,
        documents: _,
        created_by: _,
        created_as,
        created_at,
        source_lot_id: _,
        packages: _,
        shipments: _,
        voided,
        hold_released,
        made_by,
    } = l;
    p::Lot {
        lot_id,
        product_id,
        product_name,
        facility_id,
        facility_name,
        owner_id,
        owner_name,
        supplier_id,
        supplier_name,
        status,
        verdict,
        inspections: inspections
            .into_iter()
            .map(|i| p::Inspection {
                measurements: Vec::new(),
                findings: Vec::new(),
                ..i
            })
            .collect(),
        origin,
        created_as,
        created_at,
        voided,
        hold_released,
        made_by,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lot() -> p::Lot {
        p::Lot {
            lot_id: "L1".into(),
            facility_id: "fac-a".into(),
            owner_id: "ukm-1".into(),
            supplier_id: "sup-1".into(),
            quantity: Some(p::Quantity {
                value: "10".into(),
                unit: p::Unit::Kg as i32,
            }),
            origin: Some(p::Origin {
                place: "Desa Wonokerto".into(),
                plot_id: "P-17".into(),
                plot: Some(p::GeoPoint {
                    latitude: -7.5,
                    longitude: 110.8,
                }),
            }),
            documents: vec![p::Document::default()],
            shipments: vec![p::Shipment::default()],
            ..Default::default()
        }
    }

    fn scoped(facilities: &[&str], party: Option<&str>) -> View {
        View::Scoped {
            who: "t".into(),
            facilities: facilities.iter().map(|s| s.to_string()).collect(),
            party: party.map(str::to_string),
        }
    }

    #[test]
    fn the_public_view_drops_private_fields() {
        let l = public_lot(lot());
        assert_eq!(l.lot_id, "L1");
        assert_eq!(l.owner_id, "ukm-1");
        assert_eq!(l.quantity, None);
        assert!(l.documents.is_empty() && l.shipments.is_empty());
        let o = l.origin.expect("the origin stays");
        assert_eq!((o.place.as_str(), o.plot_id.as_str()), ("Desa Wonokerto", "P-17"));
        assert_eq!(o.plot.map(|p| (p.latitude, p.longitude)), Some((-7.5, 110.8)));
    }

    #[test]
    fn operators_see_their_facilities_and_members_their_party() {
        assert!(scoped(&["fac-a"], None).sees(&lot()));
        assert!(!scoped(&["fac-b"], None).sees(&lot()));
        assert!(scoped(&[], Some("ukm-1")).sees(&lot()));
        assert!(scoped(&[], Some("sup-1")).sees(&lot()));
        assert!(!scoped(&[], Some("ukm-2")).sees(&lot()));
        assert!(!View::Public.sees(&lot()));
        assert!(View::Full.sees(&lot()));
        assert_eq!(scoped(&[], Some("ukm-2")).lot(lot()).quantity, None);
    }
}
