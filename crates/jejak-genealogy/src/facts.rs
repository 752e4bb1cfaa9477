//! The genealogy answers what the write-side rules ask (`jejak_domain::Facts`),
//! so the embedded server decides commands against the lots it already holds
//! instead of a second copy of them.

use jejak_domain::{
    Decimal, EventFacts, Facility, Facts, LotFacts, Party, Product, QualityStandard, SerialFacts, UndoFacts,
};

use crate::graph::{EventKind, Genealogy, LotNode};

impl Genealogy {
    fn lot_facts<'a>(&'a self, ix: u32, n: &'a LotNode) -> LotFacts<'a> {
        // Used, as the write model counts it: consumed by a transformation,
        // packed or shipped, by an event not voided. A receipt of the lot at
        // another facility is not a use (its shipment is).
        let consumed = n.children.iter().any(|c| {
            let child = self.node(*c);
            !child.voided && child.source_lot != Some(ix)
        });
        let d = n.detail();
        let used = consumed || d.packages.iter().any(|p| !p.voided) || d.shipments.iter().any(|s| !s.voided);
        LotFacts {
            facility_id: self.names.get(n.facility),
            product_id: self.names.get(n.product),
            owner_id: self.names.get(n.owner),
            unit: n.unit,
            quantity: n.quantity,
            balance: n.balance,
            in_transit: n.in_transit,
            standing: n.standing,
            voided: n.voided,
            used,
        }
    }
}

impl Facts for Genealogy {
    fn has_event(&self, id: &str) -> bool {
        self.events.contains_key(id)
    }

    fn party(&self, id: &str) -> Option<&Party> {
        self.parties.get(id)
    }

    fn facility(&self, id: &str) -> Option<&Facility> {
        self.facilities.get(id)
    }

    fn product(&self, id: &str) -> Option<&Product> {
        self.products.get(id)
    }

    fn standard(&self, id: &str) -> Option<&QualityStandard> {
        self.standards.get(id)
    }

    fn token(&self, id: &str) -> Option<jejak_domain::TokenRecord> {
        self.tokens.get(id)
    }

    fn lot(&self, id: &str) -> Option<LotFacts<'_>> {
        let ix = self.lot_ix(id)?;
        Some(self.lot_facts(ix, self.node(ix)))
    }

    fn in_transit_to(&self, lot: &str, consignee: &str) -> Decimal {
        let Some(ix) = self.lot_ix(lot) else {
            return Decimal::ZERO;
        };
        let n = self.node(ix);
        let shipped: Decimal = n
            .detail()
            .shipments
            .iter()
            .filter(|s| !s.voided && self.names.get(s.consignee) == consignee)
            .filter_map(|s| s.quantity)
            .sum();
        let received: Decimal = n
            .children
            .iter()
            .map(|c| self.node(*c))
            .filter(|c| {
                c.source_lot == Some(ix)
                    && !c.voided
                    && self
                        .facilities
                        .get(self.names.get(c.facility))
                        .is_some_and(|f| f.operator_id == consignee)
            })
            .map(|c| c.quantity)
            .sum();
        (shipped - received).max(Decimal::ZERO)
    }

    fn serial(&self, serial: &str) -> Option<SerialFacts<'_>> {
        let ix = *self.serials.get(serial)?;
        let n = self.node(ix);
        // The latest package under that serial decides (a voided one stays voided).
        let p = n.detail().packages.iter().rev().find(|p| *p.serial == *serial)?;
        Some(SerialFacts {
            lot_id: &n.id,
            shipped: p.shipped,
            voided: p.voided,
        })
    }

    fn event(&self, id: &str) -> Option<EventFacts<'_>> {
        let e = self.events.get(id)?;
        let first = e.lots.first().map(|ix| self.node(*ix));
        let undo = match e.kind {
            // Observations are kept as received, like master data: not voided.
            EventKind::MasterData | EventKind::Observation => UndoFacts::MasterData,
            EventKind::Void => UndoFacts::Void,
            EventKind::Mark => UndoFacts::Mark,
            EventKind::Receipt => UndoFacts::Receipt {
                lot: first.map_or("", |n| &n.id),
            },
            EventKind::Process => UndoFacts::Process {
                outputs: e
                    .lots
                    .iter()
                    .map(|ix| self.node(*ix))
                    .filter(|n| &*n.created_by == id)
                    .map(|n| &*n.id)
                    .collect(),
            },
            EventKind::Pack => UndoFacts::Pack {
                serials: first
                    .map(|n| {
                        n.detail()
                            .packages
                            .iter()
                            .filter(|p| &*p.event_id == id)
                            .map(|p| &*p.serial)
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            EventKind::Ship => {
                let shipment = first.and_then(|n| n.detail().shipments.iter().find(|s| &*s.event_id == id));
                UndoFacts::Ship {
                    lot: first.map_or("", |n| &n.id),
                    consignee: shipment.map_or("", |s| self.names.get(s.consignee)),
                    bulk: shipment.and_then(|s| s.quantity).unwrap_or(Decimal::ZERO),
                }
            }
        };
        Some(EventFacts {
            chain: self.names.get(e.chain),
            voided: e.voided_by.is_some(),
            undo,
        })
    }
}
