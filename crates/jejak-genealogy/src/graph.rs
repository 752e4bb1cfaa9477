//! The in-memory genealogy: lots indexed by a dense integer, edges up (inputs)
//! and down (outputs) as adjacency lists, master data, and the event index
//! needed for corrections. Applying an event is deterministic and marks what
//! changed, so the store can persist exactly that.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use jejak_domain::state::{standing, Mark, MarkKind, Standing};
use jejak_domain::TokenTable;
use jejak_domain::{
    Decimal, Document, Event, Facility, Measurement, Origin, Party, Product, QualityStandard, Time, Unit, Verdict,
};

pub(crate) type Ix = u32;

/// The genealogy's indexes by id: seeded per process like std's maps (ids
/// come from clients), with a hash that costs far less per key than SipHash.
pub(crate) type IdMap<K, V> = HashMap<K, V, foldhash::quality::RandomState>;

/// Interned strings (facility, product, party, standard ids, steps).
#[derive(Default)]
pub(crate) struct Interner {
    strings: Vec<Arc<str>>,
    index: IdMap<Arc<str>, u32>,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let a: Arc<str> = Arc::from(s);
        let i = self.strings.len() as u32;
        self.strings.push(a.clone());
        self.index.insert(a, i);
        i
    }

    pub(crate) fn get(&self, i: u32) -> &str {
        self.strings.get(i as usize).map_or("", |s| s)
    }

    /// The number of a string already interned.
    pub(crate) fn lookup(&self, s: &str) -> Option<u32> {
        self.index.get(s).copied()
    }
}

/// One input → output link of a transformation (or a transfer between facilities).
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    /// The other lot: the input for `parents`, the output for `children`.
    pub(crate) lot: Ix,
    /// Quantity of the input consumed by the transformation, in the input's base unit.
    pub(crate) quantity: Decimal,
    pub(crate) position: u64,
    /// Process step, or "transfer".
    pub(crate) step: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct InspectionRec {
    pub(crate) event_id: Box<str>,
    pub(crate) standard: u32,
    pub(crate) verdict: Verdict,
    pub(crate) measurements: Vec<Measurement>,
    pub(crate) findings: Vec<String>,
    pub(crate) at: Time,
    pub(crate) voided: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct PackageRec {
    pub(crate) serial: Box<str>,
    pub(crate) gtin: u32,
    pub(crate) quantity: Decimal,
    pub(crate) event_id: Box<str>,
    pub(crate) shipped: bool,
    pub(crate) voided: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct ShipmentRec {
    pub(crate) event_id: Box<str>,
    pub(crate) consignee: u32,
    pub(crate) quantity: Option<Decimal>,
    pub(crate) serials: Vec<Box<str>>,
    pub(crate) document: String,
    pub(crate) dds_reference: String,
    pub(crate) at: Time,
    pub(crate) voided: bool,
}

/// Rarely-large details of a lot, kept out of line so the hot node stays small.
#[derive(Debug, Clone, Default)]
pub(crate) struct LotDetail {
    pub(crate) origin: Origin,
    pub(crate) documents: Vec<Document>,
    pub(crate) marks: Vec<Mark>,
    pub(crate) inspections: Vec<InspectionRec>,
    pub(crate) packages: Vec<PackageRec>,
    pub(crate) shipments: Vec<ShipmentRec>,
}

#[derive(Debug, Clone)]
pub(crate) struct LotNode {
    pub(crate) id: Box<str>,
    pub(crate) product: u32,
    pub(crate) facility: u32,
    pub(crate) owner: u32,
    /// Interned supplier id; `u32::MAX` when produced in-house.
    pub(crate) supplier: u32,
    pub(crate) unit: Unit,
    pub(crate) quantity: Decimal,
    pub(crate) balance: Decimal,
    pub(crate) in_transit: Decimal,
    pub(crate) created_by: Box<str>,
    /// How the lot came to be.
    pub(crate) made: Made,
    pub(crate) created_at: Time,
    pub(crate) source_lot: Option<Ix>,
    pub(crate) voided: bool,
    pub(crate) standing: Standing,
    pub(crate) parents: Vec<Edge>,
    /// Output lots, ordered by (creating position, lot id); the consumed
    /// quantity is on the output's edge in `parents`.
    pub(crate) children: Vec<Ix>,
    /// Log positions of every event that touched the lot.
    pub(crate) history: Vec<u64>,
    /// Absent for the many lots with nothing beyond quantities and edges.
    pub(crate) detail: Option<Box<LotDetail>>,
}

/// How a lot came to be: received, or made by a process step (its name
/// interned). A type, so that a step that happens to be named "received"
/// is still a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Made {
    Received,
    Step(u32),
}

static NO_DETAIL: LotDetail = LotDetail {
    origin: Origin {
        place: String::new(),
        plot_id: String::new(),
        plot: None,
        area_ha: None,
        geometry: None,
        producer_country: String::new(),
    },
    documents: Vec::new(),
    marks: Vec::new(),
    inspections: Vec::new(),
    packages: Vec::new(),
    shipments: Vec::new(),
};

impl LotNode {
    pub(crate) fn detail(&self) -> &LotDetail {
        self.detail.as_deref().unwrap_or(&NO_DETAIL)
    }

    pub(crate) fn detail_mut(&mut self) -> &mut LotDetail {
        self.detail.get_or_insert_with(Box::default)
    }

    /// The log position that created the lot (and every edge into it).
    pub(crate) fn created_position(&self) -> u64 {
        self.history.first().copied().unwrap_or(0)
    }
}

pub(crate) const NO_SUPPLIER: u32 = u32::MAX;

/// What kind of event an `EventRef` is, for corrections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    MasterData = 1,
    Receipt = 2,
    Mark = 3,
    Process = 4,
    Pack = 5,
    Ship = 6,
    Void = 7,
    Observation = 8,
}

impl EventKind {
    pub(crate) fn of(e: &Event) -> EventKind {
        match e {
            Event::PartyRegistered(_)
            | Event::FacilityRegistered(_)
            | Event::ProductRegistered(_)
            | Event::StandardRegistered(_)
            | Event::TokenIssued(_)
            | Event::TokenRevoked(_) => EventKind::MasterData,
            Event::MaterialReceived(_) => EventKind::Receipt,
            Event::LotInspected(_) | Event::LotStatusChanged(_) => EventKind::Mark,
            Event::LotProcessed(_) => EventKind::Process,
            Event::LotPacked(_) => EventKind::Pack,
            Event::LotShipped(_) => EventKind::Ship,
            Event::EventVoided(_) => EventKind::Void,
            Event::EpcisObserved(_) => EventKind::Observation,
        }
    }

    pub(crate) fn from_code(code: u32) -> Option<EventKind> {
        Some(match code {
            1 => EventKind::MasterData,
            2 => EventKind::Receipt,
            3 => EventKind::Mark,
            4 => EventKind::Process,
            5 => EventKind::Pack,
            6 => EventKind::Ship,
            7 => EventKind::Void,
            8 => EventKind::Observation,
            _ => return None,
        })
    }
}

/// What the projection keeps of an event: where it is and which lots it made
/// or touched, so a later correction can be applied.
#[derive(Debug, Clone)]
pub(crate) struct EventRef {
    pub(crate) position: u64,
    pub(crate) lots: Vec<Ix>,
    /// The void that corrected it, and why: boxed, as few events are voided.
    pub(crate) voided_by: Option<Box<(Box<str>, String)>>,
    pub(crate) kind: EventKind,
    /// Interned chain (facility or registry) the event was appended to.
    pub(crate) chain: u32,
}

/// An event with its place in the log, as the projector applies it.
#[derive(Debug, Clone, Copy)]
pub struct AppliedEvent<'a> {
    pub position: u64,
    pub event_id: &'a str,
    pub recorded_at: Time,
    pub event: &'a Event,
    /// blake3 of the stored envelope.
    pub hash: [u8; 32],
}

/// What an applied batch changed, for persistence.
#[derive(Default)]
pub(crate) struct Dirty {
    pub(crate) lots: BTreeSet<Ix>,
    /// Events applied in this batch, in log order.
    pub(crate) new_events: Vec<Box<str>>,
    /// Earlier events voided in this batch.
    pub(crate) voided: BTreeSet<Box<str>>,
    pub(crate) parties: BTreeSet<String>,
    pub(crate) facilities: BTreeSet<String>,
    pub(crate) products: BTreeSet<String>,
    pub(crate) standards: BTreeSet<String>,
    pub(crate) tokens: BTreeSet<String>,
}

/// The in-memory genealogy.
#[derive(Default)]
pub struct Genealogy {
    pub(crate) names: Interner,
    pub(crate) lots: Vec<LotNode>,
    pub(crate) by_id: IdMap<Box<str>, Ix>,
    pub(crate) serials: IdMap<Box<str>, Ix>,
    /// Boxed values: a half-empty table at a million events costs pointers, not records.
    pub(crate) events: IdMap<Box<str>, Box<EventRef>>,
    pub(crate) parties: HashMap<String, Party>,
    pub(crate) facilities: HashMap<String, Facility>,
    pub(crate) products: HashMap<String, Product>,
    pub(crate) standards: HashMap<String, QualityStandard>,
    /// Access tokens, shared with the layer that authenticates requests.
    pub(crate) tokens: Arc<TokenTable>,
    /// Last applied log position.
    pub(crate) position: u64,
    /// The id and envelope hash of the event at `position`: what ties the
    /// projection to the log it was made from.
    pub(crate) last_event: Box<str>,
    pub(crate) last_hash: [u8; 32],
    pub(crate) dirty: Dirty,
    /// Events applied since this genealogy was made or loaded (a log's
    /// positions need not count them: a stream's do not).
    pub(crate) applied: u64,
}

impl Genealogy {
    pub fn new() -> Genealogy {
        Genealogy::default()
    }

    pub fn position(&self) -> u64 {
        self.position
    }

    /// How many events were applied since it was made or loaded.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The log position applied last, and the id and envelope hash of the
    /// event there.
    pub fn anchor(&self) -> (u64, &str, [u8; 32]) {
        (self.position, &self.last_event, self.last_hash)
    }

    /// The access tokens, as a table that outlives a lock on the genealogy.
    pub fn tokens(&self) -> Arc<TokenTable> {
        self.tokens.clone()
    }

    pub fn lot_count(&self) -> usize {
        self.lots.len()
    }

    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn lot_ix(&self, id: &str) -> Option<Ix> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn node(&self, ix: Ix) -> &LotNode {
        &self.lots[ix as usize]
    }

    fn node_mut(&mut self, ix: Ix) -> &mut LotNode {
        self.dirty.lots.insert(ix);
        &mut self.lots[ix as usize]
    }

    /// Adds a lot node (also used when loading from the store).
    pub(crate) fn insert_node(&mut self, node: LotNode) -> Ix {
        let ix = self.lots.len() as Ix;
        self.by_id.insert(node.id.clone(), ix);
        for p in &node.detail().packages {
            self.serials.insert(p.serial.clone(), ix);
        }
        self.lots.push(node);
        ix
    }

    /// Rebuilds the downward edges from the upward ones (after loading).
    pub(crate) fn link_children(&mut self) {
        let mut down: Vec<(Ix, Ix)> = Vec::new();
        for (ix, node) in self.lots.iter().enumerate() {
            for e in &node.parents {
                down.push((e.lot, ix as Ix));
            }
        }
        // The order `add_edge` keeps: by creating position, then by the
        // output's id (dense indexes differ between a live and a reloaded genealogy).
        let lots = &self.lots;
        down.sort_by(|(pa, a), (pb, b)| {
            let (a, b) = (&lots[*a as usize], &lots[*b as usize]);
            (*pa, a.created_position(), &a.id).cmp(&(*pb, b.created_position(), &b.id))
        });
        down.dedup();
        // Each lot's outputs at once, into a vector of their number: grown
        // one by one, a million small vectors would leave the memory of
        // their earlier sizes scattered between the lots'.
        for run in down.chunk_by(|a, b| a.0 == b.0) {
            if let Some(n) = run.first().and_then(|(p, _)| self.lots.get_mut(*p as usize)) {
                n.children.reserve_exact(run.len());
                n.children.extend(run.iter().map(|(_, c)| *c));
            }
        }
    }

    fn record_event(&mut self, id: &str, position: u64, lots: Vec<Ix>, event: &Event) {
        let kind = EventKind::of(event);
        let chain = self.names.intern(event.chain());
        self.dirty.new_events.push(id.into());
        self.events.insert(
            id.into(),
            Box::new(EventRef {
                position,
                lots,
                voided_by: None,
                kind,
                chain,
            }),
        );
    }

    fn touch(&mut self, ix: Ix, position: u64) {
        let n = self.node_mut(ix);
        if n.history.last() != Some(&position) {
            n.history.push(position);
        }
    }

    #[allow(clippy::too_many_arguments)] // one argument per field of a new lot; a struct would only rename them
    fn new_node(
        &mut self,
        id: &str,
        product: &str,
        facility: &str,
        owner: &str,
        unit: Unit,
        quantity: Decimal,
        created_by: &str,
        made: Made,
        at: Time,
    ) -> LotNode {
        LotNode {
            id: id.into(),
            product: self.names.intern(product),
            facility: self.names.intern(facility),
            owner: self.names.intern(owner),
            supplier: NO_SUPPLIER,
            unit,
            quantity,
            balance: quantity,
            in_transit: Decimal::ZERO,
            created_by: created_by.into(),
            made,
            created_at: at,
            source_lot: None,
            voided: false,
            standing: standing(&[]),
            parents: Vec::new(),
            children: Vec::new(),
            history: Vec::new(),
            detail: None,
        }
    }

    fn add_edge(&mut self, input: Ix, output: Ix, quantity: Decimal, position: u64, step: u32) {
        self.node_mut(output).parents.push(Edge {
            lot: input,
            quantity,
            position,
            step,
        });
        // Children are ordered by (position, output lot id), not by insertion,
        // so traces cut short by a node limit keep the same lots after the
        // genealogy is reloaded from the store (see `link_children`).
        let at = {
            let lots = &self.lots;
            let key = (position, &lots[output as usize].id);
            let children = &lots[input as usize].children;
            if children.contains(&output) {
                return;
            }
            children.partition_point(|c| {
                let c = &lots[*c as usize];
                (c.created_position(), &c.id) <= key
            })
        };
        self.lots[input as usize].children.insert(at, output);
    }

    fn push_mark(&mut self, ix: Ix, event_id: &str, kind: MarkKind) {
        let n = self.node_mut(ix);
        n.detail_mut().marks.push(Mark {
            event_id: Arc::from(event_id),
            kind,
            voided: false,
        });
        n.standing = standing(&n.detail().marks);
    }

    /// Applies one event. Events at or below the applied position are
    /// skipped, so redelivery changes nothing.
    pub fn apply(&mut self, e: AppliedEvent<'_>) {
        if e.position <= self.position {
            return;
        }
        self.applied += 1;
        self.position = e.position;
        self.last_event = e.event_id.into();
        self.last_hash = e.hash;
        if self.events.contains_key(e.event_id) {
            // The same event id twice in the log cannot come from the write
            // side; the first one wins.
            return;
        }
        let at = e.event.occurred_at().unwrap_or(e.recorded_at);
        let pos = e.position;
        match e.event {
            Event::PartyRegistered(p) => {
                self.dirty.parties.insert(p.id.clone());
                self.parties.insert(p.id.clone(), p.clone());
                self.record_event(e.event_id, pos, Vec::new(), e.event);
            }
            Event::FacilityRegistered(f) => {
                self.dirty.facilities.insert(f.id.clone());
                self.facilities.insert(f.id.clone(), f.clone());
                self.record_event(e.event_id, pos, Vec::new(), e.event);
            }
            Event::ProductRegistered(p) => {
                self.dirty.products.insert(p.id.clone());
                self.products.insert(p.id.clone(), p.clone());
                self.record_event(e.event_id, pos, Vec::new(), e.event);
            }
            Event::StandardRegistered(s) => {
                self.dirty.standards.insert(s.id.clone());
                self.standards.insert(s.id.clone(), s.clone());
                self.record_event(e.event_id, pos, Vec::new(), e.event);
            }
            Event::TokenIssued(t) => {
                self.dirty.tokens.insert(t.token_id.clone());
                self.tokens.issue(e.event_id, e.recorded_at, t);
                self.record_event(e.event_id, pos, Vec::new(), e.event);
            }
            Event::TokenRevoked(r) => {
                self.dirty.tokens.insert(r.token_id.clone());
                self.tokens.revoke(e.recorded_at, r);
                self.record_event(e.event_id, pos, Vec::new(), e.event);
            }
            Event::MaterialReceived(r) => {
                if self.by_id.contains_key(r.lot_id.as_str()) {
                    return;
                }
                let base = r.quantity.to_base();
                let mut node = self.new_node(
                    &r.lot_id,
                    &r.product_id,
                    &r.facility_id,
                    &r.owner_id,
                    r.quantity.unit(),
                    base,
                    e.event_id,
                    Made::Received,
                    at,
                );
                node.supplier = self.names.intern(&r.supplier_id);
                if r.origin != Origin::default() || !r.documents.is_empty() {
                    let d = node.detail_mut();
                    d.origin = r.origin.clone();
                    d.documents = r.documents.clone();
                }
                let source = r.source_lot_id.as_deref().and_then(|s| self.lot_ix(s));
                node.source_lot = source;
                let ix = self.insert_node(node);
                self.touch(ix, pos);
                let mut lots = vec![ix];
                if let Some(src) = source {
                    let step = self.names.intern("transfer");
                    self.add_edge(src, ix, base, pos, step);
                    let s = self.node_mut(src);
                    s.in_transit -= base.min(s.in_transit);
                    self.touch(src, pos);
                    lots.push(src);
                }
                self.record_event(e.event_id, pos, lots, e.event);
            }
            Event::LotInspected(i) => {
                let Some(ix) = self.lot_ix(&i.lot_id) else {
                    return;
                };
                let standard = self.names.intern(&i.standard_id);
                self.node_mut(ix).detail_mut().inspections.push(InspectionRec {
                    event_id: e.event_id.into(),
                    standard,
                    verdict: i.verdict,
                    measurements: i.measurements.clone(),
                    findings: i.findings.clone(),
                    at,
                    voided: false,
                });
                self.push_mark(ix, e.event_id, MarkKind::Inspected(i.verdict));
                self.touch(ix, pos);
                self.record_event(e.event_id, pos, vec![ix], e.event);
            }
            Event::LotStatusChanged(s) => {
                let Some(ix) = self.lot_ix(&s.lot_id) else {
                    return;
                };
                self.push_mark(ix, e.event_id, MarkKind::Status(s.status));
                self.touch(ix, pos);
                self.record_event(e.event_id, pos, vec![ix], e.event);
            }
            Event::LotProcessed(p) => {
                let step = self.names.intern(&p.process_step);
                let mut inputs = Vec::with_capacity(p.inputs.len());
                for input in &p.inputs {
                    if let Some(ix) = self.lot_ix(&input.lot_id) {
                        let base = input.quantity.to_base();
                        self.node_mut(ix).balance -= base;
                        self.touch(ix, pos);
                        inputs.push((ix, base));
                    }
                }
                let mut lots: Vec<Ix> = Vec::with_capacity(p.outputs.len() + inputs.len());
                for out in &p.outputs {
                    if self.by_id.contains_key(out.lot_id.as_str()) {
                        continue;
                    }
                    let made = Made::Step(self.names.intern(&p.process_step));
                    let node = self.new_node(
                        &out.lot_id,
                        &out.product_id,
                        &p.facility_id,
                        &out.owner_id,
                        out.quantity.unit(),
                        out.quantity.to_base(),
                        e.event_id,
                        made,
                        at,
                    );
                    let ix = self.insert_node(node);
                    self.touch(ix, pos);
                    for (input, base) in &inputs {
                        self.add_edge(*input, ix, *base, pos, step);
                    }
                    lots.push(ix);
                }
                lots.extend(inputs.iter().map(|(ix, _)| *ix));
                self.record_event(e.event_id, pos, lots, e.event);
            }
            Event::LotPacked(pk) => {
                let Some(ix) = self.lot_ix(&pk.lot_id) else {
                    return;
                };
                let gtin = self.names.intern(pk.gtin.as_str());
                let mut total = Decimal::ZERO;
                for p in &pk.packages {
                    let base = p.quantity.to_base();
                    total += base;
                    self.serials.insert(p.serial.as_str().into(), ix);
                    self.node_mut(ix).detail_mut().packages.push(PackageRec {
                        serial: p.serial.as_str().into(),
                        gtin,
                        quantity: base,
                        event_id: e.event_id.into(),
                        shipped: false,
                        voided: false,
                    });
                }
                self.node_mut(ix).balance -= total;
                self.touch(ix, pos);
                self.record_event(e.event_id, pos, vec![ix], e.event);
            }
            Event::LotShipped(s) => {
                let Some(ix) = self.lot_ix(&s.lot_id) else {
                    return;
                };
                let consignee = self.names.intern(&s.consignee_id);
                let bulk = s.quantity.as_ref().map(jejak_domain::Quantity::to_base);
                let n = self.node_mut(ix);
                for p in n.detail_mut().packages.iter_mut() {
                    if !p.voided && s.package_serials.iter().any(|x| *x == *p.serial) {
                        p.shipped = true;
                    }
                }
                if let Some(b) = bulk {
                    n.balance -= b;
                    n.in_transit += b;
                }
                n.detail_mut().shipments.push(ShipmentRec {
                    event_id: e.event_id.into(),
                    consignee,
                    quantity: bulk,
                    serials: s.package_serials.iter().map(|x| x.as_str().into()).collect(),
                    document: s.document.clone(),
                    dds_reference: s.dds_reference.clone(),
                    at,
                    voided: false,
                });
                self.touch(ix, pos);
                self.record_event(e.event_id, pos, vec![ix], e.event);
            }
            Event::EpcisObserved(o) => {
                // In the histories of the lots it names; it changes none.
                let mut lots = Vec::new();
                for l in &o.lot_ids {
                    if let Some(ix) = self.lot_ix(l) {
                        self.touch(ix, pos);
                        lots.push(ix);
                    }
                }
                self.record_event(e.event_id, pos, lots, e.event);
            }
            Event::EventVoided(v) => {
                let mut lots = Vec::new();
                if let Some(target) = self.events.get(v.voided_event_id.as_str()).cloned() {
                    if target.voided_by.is_none() {
                        self.undo(&v.voided_event_id, &target);
                        if let Some(t) = self.events.get_mut(v.voided_event_id.as_str()) {
                            t.voided_by = Some(Box::new((e.event_id.into(), v.reason.clone())));
                        }
                        self.dirty.voided.insert(v.voided_event_id.as_str().into());
                        for ix in &target.lots {
                            self.touch(*ix, pos);
                        }
                        lots = target.lots.clone();
                    }
                }
                self.record_event(e.event_id, pos, lots, e.event);
            }
        }
    }

    /// Reverses the effects of an event that a correction voids.
    fn undo(&mut self, event_id: &str, target: &EventRef) {
        let tpos = target.position;
        for &ix in &target.lots {
            let created_here = &*self.lots[ix as usize].created_by == event_id;
            if created_here {
                // A lot this event created: it no longer exists; what it
                // consumed goes back to its inputs.
                let parents: Vec<Edge> = self.lots[ix as usize]
                    .parents
                    .iter()
                    .filter(|e| e.position == tpos)
                    .cloned()
                    .collect();
                let n = self.node_mut(ix);
                n.voided = true;
                n.balance = Decimal::ZERO;
                for p in parents {
                    let is_transfer = self.lots[ix as usize].source_lot == Some(p.lot);
                    let input = self.node_mut(p.lot);
                    if is_transfer {
                        input.in_transit += p.quantity;
                    }
                }
                continue;
            }
            let n = self.node_mut(ix);
            let mut changed_marks = false;
            for m in n.detail_mut().marks.iter_mut().filter(|m| &*m.event_id == event_id) {
                m.voided = true;
                changed_marks = true;
            }
            if changed_marks {
                n.standing = standing(&n.detail().marks);
            }
            for i in n
                .detail_mut()
                .inspections
                .iter_mut()
                .filter(|i| &*i.event_id == event_id)
            {
                i.voided = true;
            }
            let mut restored = Decimal::ZERO;
            for p in n
                .detail_mut()
                .packages
                .iter_mut()
                .filter(|p| &*p.event_id == event_id && !p.voided)
            {
                p.voided = true;
                restored += p.quantity;
            }
            let mut unshipped: Vec<Box<str>> = Vec::new();
            let mut bulk_back = Decimal::ZERO;
            for s in n
                .detail_mut()
                .shipments
                .iter_mut()
                .filter(|s| &*s.event_id == event_id && !s.voided)
            {
                s.voided = true;
                if let Some(b) = s.quantity {
                    bulk_back += b;
                }
                unshipped.extend(s.serials.iter().cloned());
            }
            restored += bulk_back;
            n.in_transit -= bulk_back.min(n.in_transit);
            for p in n.detail_mut().packages.iter_mut() {
                if unshipped.contains(&p.serial) {
                    p.shipped = false;
                }
            }
            n.balance += restored;
        }
        // Inputs consumed by a voided transformation get their quantity back,
        // once per input (every output carries the same input edges).
        let mut restored_inputs: Vec<Ix> = Vec::new();
        for &ix in &target.lots {
            if &*self.lots[ix as usize].created_by != event_id {
                continue;
            }
            let edges: Vec<Edge> = self.lots[ix as usize]
                .parents
                .iter()
                .filter(|e| e.position == tpos)
                .cloned()
                .collect();
            for p in edges {
                if self.lots[ix as usize].source_lot == Some(p.lot) || restored_inputs.contains(&p.lot) {
                    continue;
                }
                restored_inputs.push(p.lot);
                self.node_mut(p.lot).balance += p.quantity;
            }
        }
        // Voided serials stay in the index: a serial is never reused.
    }

    pub(crate) fn take_dirty(&mut self) -> Dirty {
        std::mem::take(&mut self.dirty)
    }

    /// Forgets which records changed: for a genealogy held in memory only
    /// (a capture service's cache), which is never written to a store.
    pub fn forget_changes(&mut self) {
        self.dirty = Dirty::default();
    }
}
