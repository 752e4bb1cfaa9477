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
//! | each inspection's standard, verdict, date and whether it was voided | measurements and findings, every event id |
//! | how the lot was made (received, or the process step) and when | documents, delivery notes, consignees (shipments) |
//! | the origin: place (village, district), plot id and coordinates | packages other than the one a label names (and what that one holds), source lot, creating event |
//!
//! The same narrowing holds on every other path: a trace shows what went
//! into a lot only to whoever sees the input lot, exact origin shares go only
//! to whoever sees every lot of the ancestry, and a lot's history leaves out
//! the events of lots the caller does not see and, of a transformation, the
//! inputs and outputs it does not see.
//!
//! Plot coordinates are public on purpose: where timber grew is what a
//! buyer checks for legality (SVLK, EU deforestation rules) and what the
//! provenance page draws on its map. The page (see `resolver`) also shows,
//! for the labelled lot, when it was packed and shipped (not to whom) and
//! the reasons given for its status changes; for every lot on the page, the
//! reasons given for corrections; and the chain, sequence and hash of the
//! labelled lot's latest event, so that a buyer can check the record.

use jejak_verify::commit::{Class, Field};
use std::collections::HashSet;
use std::sync::Arc;

use jejak_domain::read::{HistoryEntry, Inspection, LabelLookup, LotView, PackageView, Trace};
use jejak_domain::Event;

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
    pub fn sees(&self, lot: &LotView) -> bool {
        self.sees_ids(
            &lot.facility.id,
            &lot.owner.id,
            lot.supplier.as_ref().map(|s| s.id.as_str()),
        )
    }

    /// Whether the caller sees in full a lot of `facility`, owned by
    /// `owner` and delivered by `supplier`.
    pub fn sees_ids(&self, facility: &str, owner: &str, supplier: Option<&str>) -> bool {
        match self {
            View::Full => true,
            View::Public => false,
            View::Scoped { facilities, party, .. } => {
                facilities.iter().any(|f| f == facility)
                    || party.as_deref().is_some_and(|p| p == owner || supplier == Some(p))
            }
        }
    }

    /// Whether the caller sees every one of these lots (facility, owner,
    /// supplier) in full: only then are exact origin shares its to see,
    /// since with its own quantities they would reveal the others'.
    pub fn sees_all<'a>(&self, lots: &mut dyn Iterator<Item = (&'a str, &'a str, Option<&'a str>)>) -> bool {
        match self {
            View::Full => true,
            View::Public => false,
            View::Scoped { .. } => {
                for (facility, owner, supplier) in lots {
                    if !self.sees_ids(facility, owner, supplier) {
                        return false;
                    }
                }
                true
            }
        }
    }

    /// The lot as the caller may see it.
    pub fn lot(&self, lot: LotView) -> LotView {
        if self.sees(&lot) {
            lot
        } else {
            public_lot(lot)
        }
    }

    /// Refuses queries (traces from, shares and history of) a lot the
    /// caller does not see in full.
    pub fn require(&self, lot: &LotView, what: &'static str) -> Result<(), ReadError> {
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
    pub fn trace(&self, mut t: Trace) -> Trace {
        if matches!(self, View::Full) {
            return t;
        }
        let mut full = HashSet::new();
        t.nodes = std::mem::take(&mut t.nodes)
            .into_iter()
            .map(|mut n| {
                if self.sees(&n.lot) {
                    full.insert(n.lot.lot_id.clone());
                } else {
                    n.lot = public_lot(n.lot);
                }
                n
            })
            .collect();
        // What went into a lot is the input lot's quantity: shown only to
        // whoever sees that lot, as in its history.
        for e in &mut t.edges {
            if !full.contains(&e.input) {
                e.quantity = None;
            }
        }
        t.packages
            .retain(|pk| label_lot(&pk.label).is_some_and(|l| full.contains(&l)));
        t.shipments.retain(|s| full.contains(&s.lot_id));
        t
    }

    /// A label lookup with its lot, and the unit it names, as the caller
    /// may see them: what a unit holds and the packing event are private.
    pub fn label(&self, l: LabelLookup) -> LabelLookup {
        let LabelLookup { link, lot, package } = l;
        let sees = self.sees(&lot);
        LabelLookup {
            link,
            lot: self.lot(lot),
            package: package.map(|pk| if sees { pk } else { public_package(pk) }),
        }
    }

    /// A lot's history as the caller may see it: `sees` tells whether the
    /// caller sees a lot in full. An event about a lot the caller does not
    /// see is left out; a transformation keeps only the inputs and outputs
    /// the caller sees (other UKM's quantities and lots are theirs).
    pub fn history(&self, entries: Vec<HistoryEntry>, sees: &dyn Fn(&str) -> bool) -> Vec<HistoryEntry> {
        if matches!(self, View::Full) {
            return entries;
        }
        entries
            .into_iter()
            .filter_map(|mut entry| {
                match &mut entry.event {
                    Event::LotProcessed(e) => {
                        e.inputs.retain(|i| sees(&i.lot_id));
                        e.outputs.retain(|o| sees(&o.lot_id));
                        if e.inputs.is_empty() && e.outputs.is_empty() {
                            return None;
                        }
                    }
                    Event::MaterialReceived(e) => {
                        if !sees(&e.lot_id) {
                            return None;
                        }
                        // The source lot's own story is its facility's.
                        if e.source_lot_id.as_deref().is_some_and(|s| !sees(s)) {
                            e.source_lot_id = None;
                        }
                    }
                    Event::LotInspected(e) if !sees(&e.lot_id) => return None,
                    Event::LotPacked(e) if !sees(&e.lot_id) => return None,
                    Event::LotShipped(e) if !sees(&e.lot_id) => return None,
                    Event::LotStatusChanged(e) if !sees(&e.lot_id) => return None,
                    // Someone else's record, kept as received: whole, to
                    // whoever sees every lot it names.
                    Event::EpcisObserved(e) if !e.lot_ids.iter().all(|l| sees(l)) => return None,
                    // Master data and tokens are never in a lot's history.
                    Event::PartyRegistered(_)
                    | Event::FacilityRegistered(_)
                    | Event::ProductRegistered(_)
                    | Event::StandardRegistered(_)
                    | Event::TokenIssued(_)
                    | Event::TokenRevoked(_) => return None,
                    _ => {}
                }
                Some(entry)
            })
            .collect()
    }
}

impl View {
    /// Whether a provenance bundle discloses a field of an event: every
    /// field to whoever sees the field's lot in full (or, for a field of no
    /// lot, every lot of the event), and to others only what a lot's public
    /// view shows (ids, products, parties, origin, status, verdicts, steps
    /// and times; never a quantity, document, measurement or recorder).
    pub fn discloses(&self, field: &Field, sees: &dyn Fn(&str) -> bool, sees_event: bool) -> bool {
        self.discloses_class(field.class, field.lot.as_deref(), sees, sees_event)
    }

    /// The same decision for a part of an event of `class` about `lot`
    /// (EPCIS events are disclosed part by part like bundles).
    pub fn discloses_class(
        &self,
        class: Class,
        lot: Option<&str>,
        sees: &dyn Fn(&str) -> bool,
        sees_event: bool,
    ) -> bool {
        matches!(self, View::Full) || class == Class::Public || lot.map_or(sees_event, sees)
    }
}

fn label_lot(label: &str) -> Option<String> {
    jejak_domain::gs1::DigitalLink::parse(label).ok().map(|d| d.lot)
}

/// The public view of a lot (see the module's table).
pub fn public_lot(l: LotView) -> LotView {
    let LotView {
        lot_id,
        product,
        facility,
        owner,
        supplier,
        quantity: _,
        balance: _,
        status,
        verdict,
        hold_released,
        inspections,
        origin,
        documents: _,
        created_by: _,
        made,
        created_at,
        source_lot: _,
        packages: _,
        shipments: _,
        voided,
    } = l;
    LotView {
        lot_id,
        product,
        facility,
        owner,
        supplier,
        quantity: None,
        balance: None,
        status,
        verdict,
        hold_released,
        inspections: inspections.into_iter().map(public_inspection).collect(),
        origin,
        documents: Vec::new(),
        created_by: None,
        made,
        created_at,
        source_lot: None,
        packages: Vec::new(),
        shipments: Vec::new(),
        voided,
    }
}

fn public_package(pk: PackageView) -> PackageView {
    let PackageView {
        serial,
        gtin,
        quantity: _,
        label,
        shipped,
        event_id: _,
    } = pk;
    PackageView {
        serial,
        gtin,
        quantity: None,
        label,
        shipped,
        event_id: None,
    }
}

fn public_inspection(i: Inspection) -> Inspection {
    let Inspection {
        event_id: _,
        standard,
        verdict,
        measurements: _,
        findings: _,
        at,
        voided,
    } = i;
    Inspection {
        event_id: None,
        standard,
        verdict,
        measurements: Vec::new(),
        findings: Vec::new(),
        at,
        voided,
    }
}

#[cfg(test)]
mod tests {
    use jejak_domain::read::{Making, Named, ShipmentView};
    use jejak_domain::{Document, GeoPoint, LotStatus, Origin, Quantity, Time, Unit};

    use super::*;

    fn lot() -> LotView {
        LotView {
            lot_id: "L1".into(),
            product: Named::new("prd-a", "Beras"),
            facility: Named::new("fac-a", "Demak"),
            owner: Named::new("ukm-1", "UKM Satu"),
            supplier: Some(Named::new("sup-1", "Tani Makmur")),
            quantity: Some(Quantity::from_parts(10.into(), Unit::Kg)),
            balance: Some(Quantity::from_parts(4.into(), Unit::Kg)),
            status: LotStatus::Active,
            verdict: None,
            hold_released: false,
            inspections: Vec::new(),
            origin: Origin {
                place: "Desa Wonokerto".into(),
                plot_id: "P-17".into(),
                plot: Some(GeoPoint {
                    latitude: -7.5,
                    longitude: 110.8,
                }),
                area_ha: None,
                geometry: None,
                producer_country: String::new(),
            },
            documents: vec![Document {
                kind: "delivery note".into(),
                reference: "DN-1".into(),
                blake3: [7; 32],
                issuer: String::new(),
                valid_from: None,
                valid_until: None,
            }],
            created_by: Some("ev-1".into()),
            made: Making::Received,
            created_at: Time(1),
            source_lot: Some("S0".into()),
            packages: Vec::new(),
            shipments: vec![ShipmentView {
                event_id: "ev-2".into(),
                lot_id: "L1".into(),
                consignee: Named::new("buyer-1", "Buyer"),
                quantity: None,
                serials: Vec::new(),
                document: String::new(),
                facility_id: "fac-a".into(),
                at: Time(2),
                dds_reference: String::new(),
            }],
            voided: false,
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
        assert_eq!(l.owner.id, "ukm-1");
        assert_eq!((l.quantity, l.balance), (None, None));
        assert!(l.documents.is_empty() && l.shipments.is_empty());
        assert_eq!((l.created_by, l.source_lot), (None, None));
        let o = l.origin;
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
