//! The write model: what the rules need to know about the current state, how
//! a command is decided into an event, and how an event changes the state.
//!
//! `decide` never changes anything; `apply` never fails. Replaying the same
//! events in the same order always yields the same state.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::error::DomainError;
use crate::model::*;
use crate::quantity::{Quantity, Unit};

/// What the write side keeps of a lot.
#[derive(Debug, Clone, PartialEq)]
pub struct LotState {
    pub facility_id: Arc<str>,
    pub product_id: Arc<str>,
    pub owner_id: Arc<str>,
    pub unit: Unit,
    /// What was received or produced, in the base unit of `unit`'s dimension.
    pub quantity: Decimal,
    /// What is left, in the base unit.
    pub balance: Decimal,
    /// Shipped in bulk and not yet received at another facility, in the base unit.
    pub in_transit: Decimal,
    /// Bulk shipped (and not voided) to each consignee, in the base unit.
    shipped_to: Vec<(Arc<str>, Decimal)>,
    /// Lots received elsewhere as transfers of this one.
    transfers: Vec<Arc<str>>,
    /// Inspections and status changes in order, for the effective status.
    marks: Vec<Mark>,
    /// Events that consumed, packed or shipped from the lot and are not voided.
    uses: u32,
    pub created_by: Arc<str>,
    pub voided: bool,
}

/// An inspection verdict or a status change, in the order they happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    Inspected(Verdict),
    Status(LotStatus),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub event_id: Arc<str>,
    pub kind: MarkKind,
    pub voided: bool,
}

/// The standing of a lot after its marks (voided ones skipped).
pub fn standing(marks: &[Mark]) -> Standing {
    let mut s = Standing {
        status: LotStatus::Active,
        verdict: None,
        hold_released: false,
    };
    for m in marks.iter().filter(|m| !m.voided) {
        match m.kind {
            MarkKind::Inspected(v) => {
                s.verdict = Some(v);
                s.hold_released = false;
            }
            MarkKind::Status(st) => {
                s.status = st;
                if st == LotStatus::Released {
                    s.hold_released = true;
                }
            }
        }
    }
    s
}

impl Standing {
    /// Whether a lot in this standing may be processed, packed or shipped.
    pub fn usable(&self) -> bool {
        matches!(self.status, LotStatus::Active | LotStatus::Released)
            && self.verdict != Some(Verdict::NonConformant)
            && (self.verdict != Some(Verdict::Hold) || self.hold_released)
    }
}

/// The quality and status of a lot after its inspections and status changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub status: LotStatus,
    pub verdict: Option<Verdict>,
    /// A hold verdict released by the operator after the inspection.
    pub hold_released: bool,
}

impl LotState {
    pub fn standing(&self) -> Standing {
        standing(&self.marks)
    }

    /// Why the lot may not be processed, packed or shipped, if it may not.
    pub fn unusable_reason(&self) -> Option<String> {
        crate::decide::unusable_reason(self.voided, self.standing())
    }
}

#[derive(Debug, Clone, PartialEq)]
struct SerialState {
    lot_id: Arc<str>,
    base: Decimal,
    shipped: bool,
    voided: bool,
}

/// What undoing an event needs to know.
#[derive(Debug, Clone, PartialEq)]
enum Undo {
    MasterData,
    Void,
    Receipt {
        lot: Arc<str>,
        source: Option<(Arc<str>, Decimal)>,
    },
    Mark {
        lot: Arc<str>,
    },
    Process {
        inputs: Vec<(Arc<str>, Decimal)>,
        outputs: Vec<Arc<str>>,
    },
    Pack {
        lot: Arc<str>,
        serials: Vec<Arc<str>>,
        total: Decimal,
    },
    Ship {
        lot: Arc<str>,
        consignee: Arc<str>,
        bulk: Decimal,
        serials: Vec<Arc<str>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct EventRecord {
    chain: Arc<str>,
    voided: bool,
    undo: Undo,
}

/// The state the write side decides commands against.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct State {
    parties: HashMap<String, Party>,
    facilities: HashMap<String, Facility>,
    products: HashMap<String, Product>,
    standards: HashMap<String, QualityStandard>,
    // Values are boxed: the maps' tables grow in powers of two, so at a
    // million entries half the slots are empty, and an empty slot should
    // cost a pointer, not a whole record.
    lots: HashMap<Arc<str>, Box<LotState>>,
    serials: HashMap<Arc<str>, SerialState>,
    events: HashMap<Arc<str>, Box<EventRecord>>,
    /// Interned ids, so 1,000,000 lots share a few dozen facility/product/owner strings.
    names: HashSet<Arc<str>>,
    /// Access tokens (the state keeps no recording times: issued at zero).
    tokens: HashMap<String, crate::access::TokenRecord>,
}

fn intern(names: &mut HashSet<Arc<str>>, s: &str) -> Arc<str> {
    if let Some(a) = names.get(s) {
        return a.clone();
    }
    let a: Arc<str> = Arc::from(s);
    names.insert(a.clone());
    a
}

impl State {
    /// The lots map's own key for a lot id, so undo records share it.
    fn lot_key(&self, id: &str) -> Arc<str> {
        match self.lots.get_key_value(id) {
            Some((k, _)) => k.clone(),
            None => Arc::from(id),
        }
    }

    pub fn new() -> State {
        State::default()
    }

    pub fn lot(&self, id: &str) -> Option<&LotState> {
        self.lots.get(id).map(|l| &**l)
    }

    pub fn party(&self, id: &str) -> Option<&Party> {
        self.parties.get(id)
    }

    pub fn has_event(&self, id: &str) -> bool {
        self.events.contains_key(id)
    }

    pub fn lot_count(&self) -> usize {
        self.lots.len()
    }

    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// Decides a command into the event it becomes, or the rule it breaks.
    /// `id` is the command id (it becomes the event id); `now` the recording time.
    pub fn decide(&self, id: &str, command: Command, now: Time) -> Result<Event, DomainError> {
        crate::decide::decide(self, id, command, now)
    }

    /// Applies an event that `decide` produced (or that the log holds).
    /// Never fails: references the state does not know are skipped, so a log
    /// always replays.
    pub fn apply(&mut self, event_id: &str, event: &Event) {
        // Event and lot ids are unique: sharing the lots map's key (or a
        // fresh Arc) avoids keeping a second copy in the interner.
        let id: Arc<str> = Arc::from(event_id);
        let chain = intern(&mut self.names, event.chain());
        let undo = match event {
            Event::PartyRegistered(p) => {
                self.parties.insert(p.id.clone(), p.clone());
                Undo::MasterData
            }
            Event::FacilityRegistered(f) => {
                self.facilities.insert(f.id.clone(), f.clone());
                Undo::MasterData
            }
            Event::ProductRegistered(p) => {
                self.products.insert(p.id.clone(), p.clone());
                Undo::MasterData
            }
            Event::StandardRegistered(s) => {
                self.standards.insert(s.id.clone(), s.clone());
                Undo::MasterData
            }
            Event::TokenIssued(t) => {
                self.tokens
                    .entry(t.token_id.clone())
                    .or_insert_with(|| crate::access::TokenRecord {
                        issued: t.clone(),
                        event_id: event_id.to_string(),
                        issued_at: crate::model::Time(0),
                        revoked: None,
                    });
                Undo::MasterData
            }
            Event::TokenRevoked(r) => {
                if let Some(t) = self.tokens.get_mut(&r.token_id) {
                    t.revoked.get_or_insert((crate::model::Time(0), r.reason.clone()));
                }
                Undo::MasterData
            }
            // Kept as received: nothing the rules look at changes.
            Event::EpcisObserved(_) => Undo::MasterData,
            Event::MaterialReceived(e) => {
                let lot: Arc<str> = Arc::from(e.lot_id.as_str());
                let base = e.quantity.to_base();
                let mut source = None;
                if let Some(src) = &e.source_lot_id {
                    if let Some(s) = self.lots.get_mut(src.as_str()) {
                        s.in_transit -= base.min(s.in_transit);
                        s.transfers.push(lot.clone());
                        source = Some((self.lot_key(src), base));
                    }
                }
                let state = LotState {
                    facility_id: intern(&mut self.names, &e.facility_id),
                    product_id: intern(&mut self.names, &e.product_id),
                    owner_id: intern(&mut self.names, &e.owner_id),
                    unit: e.quantity.unit(),
                    quantity: base,
                    balance: base,
                    in_transit: Decimal::ZERO,
                    shipped_to: Vec::new(),
                    transfers: Vec::new(),
                    marks: Vec::new(),
                    uses: 0,
                    created_by: id.clone(),
                    voided: false,
                };
                self.lots.insert(lot.clone(), Box::new(state));
                Undo::Receipt { lot, source }
            }
            Event::LotInspected(e) => self.mark(&id, &e.lot_id, MarkKind::Inspected(e.verdict)),
            Event::LotStatusChanged(e) => self.mark(&id, &e.lot_id, MarkKind::Status(e.status)),
            Event::LotProcessed(e) => {
                let mut inputs = Vec::with_capacity(e.inputs.len());
                for input in &e.inputs {
                    if let Some(lot) = self.lots.get_mut(input.lot_id.as_str()) {
                        let base = input.quantity.to_base();
                        lot.balance -= base;
                        lot.uses += 1;
                        inputs.push((self.lot_key(&input.lot_id), base));
                    }
                }
                let mut outputs = Vec::with_capacity(e.outputs.len());
                for out in &e.outputs {
                    let lot: Arc<str> = Arc::from(out.lot_id.as_str());
                    let base = out.quantity.to_base();
                    let state = LotState {
                        facility_id: chain.clone(),
                        product_id: intern(&mut self.names, &out.product_id),
                        owner_id: intern(&mut self.names, &out.owner_id),
                        unit: out.quantity.unit(),
                        quantity: base,
                        balance: base,
                        in_transit: Decimal::ZERO,
                        shipped_to: Vec::new(),
                        transfers: Vec::new(),
                        marks: Vec::new(),
                        uses: 0,
                        created_by: id.clone(),
                        voided: false,
                    };
                    self.lots.insert(lot.clone(), Box::new(state));
                    outputs.push(lot);
                }
                Undo::Process { inputs, outputs }
            }
            Event::LotPacked(e) => {
                let lot = self.lot_key(&e.lot_id);
                let mut total = Decimal::ZERO;
                let mut serials = Vec::with_capacity(e.packages.len());
                for p in &e.packages {
                    let base = p.quantity.to_base();
                    total += base;
                    let serial: Arc<str> = Arc::from(p.serial.as_str());
                    self.serials.insert(
                        serial.clone(),
                        SerialState {
                            lot_id: lot.clone(),
                            base,
                            shipped: false,
                            voided: false,
                        },
                    );
                    serials.push(serial);
                }
                if let Some(l) = self.lots.get_mut(&lot) {
                    l.balance -= total;
                    l.uses += 1;
                }
                Undo::Pack { lot, serials, total }
            }
            Event::LotShipped(e) => {
                let lot = self.lot_key(&e.lot_id);
                let bulk = e.quantity.as_ref().map_or(Decimal::ZERO, Quantity::to_base);
                let mut serials = Vec::new();
                for s in &e.package_serials {
                    if let Some((key, st)) = self.serials.get_key_value(s.as_str()) {
                        let key = key.clone();
                        let _ = st;
                        if let Some(st) = self.serials.get_mut(&key) {
                            st.shipped = true;
                        }
                        serials.push(key);
                    }
                }
                let consignee = intern(&mut self.names, &e.consignee_id);
                if let Some(l) = self.lots.get_mut(&lot) {
                    l.balance -= bulk;
                    l.in_transit += bulk;
                    l.uses += 1;
                    if bulk > Decimal::ZERO {
                        match l.shipped_to.iter_mut().find(|(c, _)| *c == consignee) {
                            Some((_, q)) => *q += bulk,
                            None => l.shipped_to.push((consignee.clone(), bulk)),
                        }
                    }
                }
                Undo::Ship {
                    lot,
                    consignee,
                    bulk,
                    serials,
                }
            }
            Event::EventVoided(e) => {
                self.undo(&e.voided_event_id);
                Undo::Void
            }
        };
        self.events.insert(
            id,
            Box::new(EventRecord {
                chain,
                voided: false,
                undo,
            }),
        );
    }

    fn mark(&mut self, id: &Arc<str>, lot: &str, kind: MarkKind) -> Undo {
        let lot = self.lot_key(lot);
        if let Some(l) = self.lots.get_mut(&lot) {
            l.marks.push(Mark {
                event_id: id.clone(),
                kind,
                voided: false,
            });
        }
        Undo::Mark { lot }
    }

    fn undo(&mut self, event_id: &str) {
        let Some(rec) = self.events.get_mut(event_id) else {
            return;
        };
        if rec.voided {
            return;
        }
        rec.voided = true;
        let undo = rec.undo.clone();
        match undo {
            Undo::MasterData | Undo::Void => {}
            Undo::Receipt { lot, source } => {
                if let Some(l) = self.lots.get_mut(&lot) {
                    l.voided = true;
                    l.balance = Decimal::ZERO;
                }
                if let Some((src, base)) = source {
                    if let Some(s) = self.lots.get_mut(&src) {
                        s.in_transit += base;
                    }
                }
            }
            Undo::Mark { lot } => {
                if let Some(l) = self.lots.get_mut(&lot) {
                    for m in l.marks.iter_mut().filter(|m| &*m.event_id == event_id) {
                        m.voided = true;
                    }
                }
            }
            Undo::Process { inputs, outputs } => {
                for (lot, base) in inputs {
                    if let Some(l) = self.lots.get_mut(&lot) {
                        l.balance += base;
                        l.uses = l.uses.saturating_sub(1);
                    }
                }
                for lot in outputs {
                    if let Some(l) = self.lots.get_mut(&lot) {
                        l.voided = true;
                        l.balance = Decimal::ZERO;
                    }
                }
            }
            Undo::Pack { lot, serials, total } => {
                for s in serials {
                    if let Some(st) = self.serials.get_mut(&s) {
                        st.voided = true;
                    }
                }
                if let Some(l) = self.lots.get_mut(&lot) {
                    l.balance += total;
                    l.uses = l.uses.saturating_sub(1);
                }
            }
            Undo::Ship {
                lot,
                consignee,
                bulk,
                serials,
            } => {
                for s in serials {
                    if let Some(st) = self.serials.get_mut(&s) {
                        st.shipped = false;
                    }
                }
                if let Some(l) = self.lots.get_mut(&lot) {
                    l.balance += bulk;
                    l.in_transit -= bulk.min(l.in_transit);
                    l.uses = l.uses.saturating_sub(1);
                    if let Some((_, q)) = l.shipped_to.iter_mut().find(|(c, _)| *c == consignee) {
                        *q -= bulk.min(*q);
                    }
                }
            }
        }
    }

    /// Serial's quantity in its lot's base unit, for tests and invariants.
    pub fn package_base(&self, serial: &str) -> Option<Decimal> {
        self.serials.get(serial).map(|s| s.base)
    }

    /// Every lot's balance is between zero and what it started with.
    pub fn balances_hold(&self) -> bool {
        self.lots
            .values()
            .all(|l| l.balance >= Decimal::ZERO && l.balance <= l.quantity)
    }
}

impl crate::decide::Facts for State {
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

    fn lot(&self, id: &str) -> Option<crate::decide::LotFacts<'_>> {
        self.lots.get(id).map(|l| crate::decide::LotFacts {
            facility_id: &l.facility_id,
            product_id: &l.product_id,
            owner_id: &l.owner_id,
            unit: l.unit,
            quantity: l.quantity,
            balance: l.balance,
            in_transit: l.in_transit,
            standing: l.standing(),
            voided: l.voided,
            used: l.uses > 0,
        })
    }

    fn in_transit_to(&self, lot: &str, consignee: &str) -> Decimal {
        let Some(l) = self.lots.get(lot) else {
            return Decimal::ZERO;
        };
        let shipped = l
            .shipped_to
            .iter()
            .find(|(c, _)| &**c == consignee)
            .map_or(Decimal::ZERO, |(_, q)| *q);
        let received: Decimal = l
            .transfers
            .iter()
            .filter_map(|t| self.lots.get(t))
            .filter(|t| {
                !t.voided
                    && self
                        .facilities
                        .get(&*t.facility_id)
                        .is_some_and(|f| f.operator_id == consignee)
            })
            .map(|t| t.quantity)
            .sum();
        (shipped - received).max(Decimal::ZERO)
    }

    fn serial(&self, serial: &str) -> Option<crate::decide::SerialFacts<'_>> {
        self.serials.get(serial).map(|s| crate::decide::SerialFacts {
            lot_id: &s.lot_id,
            shipped: s.shipped,
            voided: s.voided,
        })
    }

    fn token(&self, id: &str) -> Option<crate::access::TokenRecord> {
        self.tokens.get(id).cloned()
    }

    fn event(&self, id: &str) -> Option<crate::decide::EventFacts<'_>> {
        use crate::decide::UndoFacts;
        self.events.get(id).map(|r| crate::decide::EventFacts {
            chain: &r.chain,
            voided: r.voided,
            undo: match &r.undo {
                Undo::MasterData => UndoFacts::MasterData,
                Undo::Void => UndoFacts::Void,
                Undo::Mark { .. } => UndoFacts::Mark,
                Undo::Receipt { lot, .. } => UndoFacts::Receipt { lot },
                Undo::Process { outputs, .. } => UndoFacts::Process {
                    outputs: outputs.iter().map(|o| &**o).collect(),
                },
                Undo::Pack { serials, .. } => UndoFacts::Pack {
                    serials: serials.iter().map(|s| &**s).collect(),
                },
                Undo::Ship {
                    lot, consignee, bulk, ..
                } => UndoFacts::Ship {
                    lot,
                    consignee,
                    bulk: *bulk,
                },
            },
        })
    }
}
