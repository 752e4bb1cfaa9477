//! The write model: what the rules need to know about the current state, how
//! a command is decided into an event, and how an event changes the state.
//!
//! `decide` never changes anything; `apply` never fails. Replaying the same
//! events in the same order always yields the same state.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::error::{DomainError, Rule};
use crate::model::*;
use crate::quantity::{from_base, Quantity, Unit};

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
        if self.voided {
            return Some("was voided".into());
        }
        let s = self.standing();
        match s.status {
            LotStatus::OnHold => return Some("is on hold; release it first".into()),
            LotStatus::Recalled => return Some("is recalled".into()),
            LotStatus::Disposed => return Some("is disposed".into()),
            LotStatus::Active | LotStatus::Released => {}
        }
        match s.verdict {
            Some(Verdict::NonConformant) => {
                Some("is non-conformant; re-inspect it or void the inspection before using it".into())
            }
            Some(Verdict::Hold) if !s.hold_released => {
                Some("is on hold after an incomplete inspection; complete the inspection or release it".into())
            }
            _ => None,
        }
    }

    fn display(&self, base: Decimal) -> String {
        format!("{} {}", from_base(base, self.unit), self.unit)
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
        crate::validate::id("command_id", id)?;
        if self.events.contains_key(id) {
            return Err(DomainError::exists("event", id));
        }
        if let Some(at) = command.occurred_at() {
            if at < EARLIEST {
                return Err(DomainError::invalid(
                    "occurred_at",
                    "is before 2000-01-01; check the device clock",
                ));
            }
            if at.0 > now.0.saturating_add(MAX_FUTURE_SKEW) {
                return Err(DomainError::invalid(
                    "occurred_at",
                    "is more than 5 minutes in the future; check the device clock",
                ));
            }
        }
        let at = Some(command.occurred_at().unwrap_or(now));
        match command {
            Command::RegisterParty(p) => {
                if self.parties.contains_key(&p.id) {
                    return Err(DomainError::exists("party", p.id));
                }
                Ok(Event::PartyRegistered(p))
            }
            Command::RegisterFacility(f) => {
                if self.facilities.contains_key(&f.id) {
                    return Err(DomainError::exists("facility", f.id));
                }
                self.party_with_role(&f.operator_id, PartyRole::Operator, "operator_id")?;
                Ok(Event::FacilityRegistered(f))
            }
            Command::RegisterProduct(p) => {
                if self.products.contains_key(&p.id) {
                    return Err(DomainError::exists("product", p.id));
                }
                Ok(Event::ProductRegistered(p))
            }
            Command::RegisterStandard(s) => {
                if self.standards.contains_key(&s.id) {
                    return Err(DomainError::exists("quality standard", s.id));
                }
                s.check()?;
                Ok(Event::StandardRegistered(s))
            }
            Command::ReceiveMaterial(mut e) => {
                self.decide_receipt(&e)?;
                e.occurred_at = at;
                Ok(Event::MaterialReceived(e))
            }
            Command::InspectLot(c) => self.decide_inspection(c, at),
            Command::ProcessLots(mut e) => {
                self.decide_process(&mut e)?;
                e.occurred_at = at;
                Ok(Event::LotProcessed(e))
            }
            Command::PackLot(mut e) => {
                self.decide_pack(&e)?;
                e.occurred_at = at;
                Ok(Event::LotPacked(e))
            }
            Command::ShipLot(mut e) => {
                self.decide_ship(&e)?;
                e.occurred_at = at;
                Ok(Event::LotShipped(e))
            }
            Command::ChangeLotStatus(mut e) => {
                self.decide_status(&e)?;
                e.occurred_at = at;
                Ok(Event::LotStatusChanged(e))
            }
            Command::VoidEvent(mut e) => {
                self.decide_void(&e)?;
                e.occurred_at = at;
                Ok(Event::EventVoided(e))
            }
        }
    }

    fn facility(&self, id: &str) -> Result<&Facility, DomainError> {
        self.facilities
            .get(id)
            .ok_or_else(|| DomainError::not_found("facility", id))
    }

    fn product(&self, id: &str) -> Result<&Product, DomainError> {
        self.products
            .get(id)
            .ok_or_else(|| DomainError::not_found("product", id))
    }

    fn party_with_role(&self, id: &str, role: PartyRole, field: &str) -> Result<&Party, DomainError> {
        let party = self
            .parties
            .get(id)
            .ok_or_else(|| DomainError::not_found("party", id))?;
        if !party.roles.contains(&role) {
            return Err(DomainError::rule(
                Rule::PartyRole,
                format!(
                    "{field}: party {id:?} ({}) is not registered as a {}",
                    party.name,
                    role.label()
                ),
            ));
        }
        Ok(party)
    }

    /// A lot that exists at `facility`, without checking it is usable.
    fn lot_at(&self, id: &str, facility: &str) -> Result<&LotState, DomainError> {
        let lot = self.lots.get(id).ok_or_else(|| DomainError::not_found("lot", id))?;
        if &*lot.facility_id != facility {
            return Err(DomainError::rule(
                Rule::WrongFacility,
                format!("lot {id:?} is at facility {:?}, not {facility:?}", lot.facility_id),
            ));
        }
        Ok(lot)
    }

    fn usable_lot_at(&self, id: &str, facility: &str) -> Result<&LotState, DomainError> {
        let lot = self.lot_at(id, facility)?;
        if let Some(reason) = lot.unusable_reason() {
            return Err(DomainError::rule(Rule::LotNotUsable, format!("lot {id:?} {reason}")));
        }
        Ok(lot)
    }

    /// `q` in the lot's base unit, or a unit-mismatch error.
    fn in_lot_units(lot_id: &str, lot: &LotState, q: &Quantity) -> Result<Decimal, DomainError> {
        if q.dimension() != lot.unit.dimension() {
            return Err(DomainError::rule(
                Rule::UnitMismatch,
                format!(
                    "lot {lot_id:?} is counted in {} ({}); {q} cannot be converted to it",
                    lot.unit,
                    lot.unit.dimension()
                ),
            ));
        }
        Ok(q.to_base())
    }

    fn check_product_unit(product: &Product, q: &Quantity, field: &str) -> Result<(), DomainError> {
        if q.dimension() != product.unit.dimension() {
            return Err(DomainError::rule(
                Rule::UnitMismatch,
                format!(
                    "{field}: product {:?} is counted in {} ({}); {q} cannot be converted to it",
                    product.id,
                    product.unit,
                    product.unit.dimension()
                ),
            ));
        }
        Ok(())
    }

    fn new_lot_id(&self, id: &str) -> Result<(), DomainError> {
        if self.lots.contains_key(id) {
            return Err(DomainError::exists("lot", id));
        }
        Ok(())
    }

    fn decide_receipt(&self, e: &MaterialReceived) -> Result<(), DomainError> {
        self.facility(&e.facility_id)?;
        let product = self.product(&e.product_id)?;
        self.new_lot_id(&e.lot_id)?;
        self.party_with_role(&e.owner_id, PartyRole::Ukm, "owner_id")?;
        self.party_with_role(&e.supplier_id, PartyRole::Supplier, "supplier_id")
            .or_else(|err| {
                // A lot shipped from another facility is supplied by that
                // facility's operator.
                if e.source_lot_id.is_some() {
                    self.party_with_role(&e.supplier_id, PartyRole::Operator, "supplier_id")
                } else {
                    Err(err)
                }
            })?;
        Self::check_product_unit(product, &e.quantity, "quantity")?;
        if let Some(src) = &e.source_lot_id {
            let source = self
                .lots
                .get(src.as_str())
                .ok_or_else(|| DomainError::not_found("source lot", src))?;
            if *source.facility_id == *e.facility_id {
                return Err(DomainError::rule(
                    Rule::WrongFacility,
                    format!(
                        "source lot {src:?} is already at facility {:?}; a transfer links lots of two facilities",
                        e.facility_id
                    ),
                ));
            }
            let wanted = Self::in_lot_units(src, source, &e.quantity)?;
            if wanted > source.in_transit {
                return Err(DomainError::rule(
                    Rule::MassBalance,
                    format!(
                        "source lot {src:?} has {} shipped and not yet received; cannot receive {}",
                        source.display(source.in_transit),
                        e.quantity
                    ),
                ));
            }
        }
        Ok(())
    }

    fn decide_inspection(&self, c: InspectLot, at: Option<Time>) -> Result<Event, DomainError> {
        self.lot_at(&c.lot_id, &c.facility_id)?;
        let standard = self
            .standards
            .get(&c.standard_id)
            .ok_or_else(|| DomainError::not_found("quality standard", &c.standard_id))?;
        let (verdict, findings) = standard.evaluate(&c.measurements)?;
        Ok(Event::LotInspected(LotInspected {
            lot_id: c.lot_id,
            facility_id: c.facility_id,
            standard_id: c.standard_id,
            measurements: c.measurements,
            verdict,
            findings,
            inspector: c.inspector,
            occurred_at: at,
        }))
    }

    fn decide_process(&self, e: &mut LotProcessed) -> Result<(), DomainError> {
        self.facility(&e.facility_id)?;
        if e.inputs.is_empty() {
            return Err(DomainError::invalid(
                "inputs",
                "a transformation needs at least one input lot",
            ));
        }
        if e.outputs.is_empty() {
            return Err(DomainError::invalid(
                "outputs",
                "a transformation needs at least one output lot",
            ));
        }
        let mut first_owner = None;
        let mut seen = HashSet::new();
        for (i, input) in e.inputs.iter().enumerate() {
            if !seen.insert(input.lot_id.as_str()) {
                return Err(DomainError::invalid(
                    format!("inputs[{i}].lot_id"),
                    format!("lot {:?} is listed twice; add the quantities up", input.lot_id),
                ));
            }
            let lot = self.usable_lot_at(&input.lot_id, &e.facility_id)?;
            let wanted = Self::in_lot_units(&input.lot_id, lot, &input.quantity)?;
            if wanted > lot.balance {
                return Err(DomainError::rule(
                    Rule::MassBalance,
                    format!(
                        "lot {:?} has {} left; cannot consume {}",
                        input.lot_id,
                        lot.display(lot.balance),
                        input.quantity
                    ),
                ));
            }
            first_owner.get_or_insert_with(|| lot.owner_id.clone());
        }
        for (i, output) in e.outputs.iter_mut().enumerate() {
            if seen.contains(output.lot_id.as_str()) {
                return Err(DomainError::invalid(
                    format!("outputs[{i}].lot_id"),
                    format!("lot {:?} appears twice in this transformation", output.lot_id),
                ));
            }
            self.new_lot_id(&output.lot_id)?;
            let product = self.product(&output.product_id)?;
            Self::check_product_unit(product, &output.quantity, &format!("outputs[{i}].quantity"))?;
            if output.owner_id.is_empty() {
                if let Some(owner) = &first_owner {
                    output.owner_id = owner.to_string();
                }
            }
            self.party_with_role(&output.owner_id, PartyRole::Ukm, &format!("outputs[{i}].owner_id"))?;
        }
        // Output ids must also be unique among themselves.
        let mut outs = HashSet::new();
        for (i, output) in e.outputs.iter().enumerate() {
            if !outs.insert(output.lot_id.as_str()) {
                return Err(DomainError::invalid(
                    format!("outputs[{i}].lot_id"),
                    format!("lot {:?} appears twice in this transformation", output.lot_id),
                ));
            }
        }
        Ok(())
    }

    fn decide_pack(&self, e: &LotPacked) -> Result<(), DomainError> {
        self.facility(&e.facility_id)?;
        let lot = self.usable_lot_at(&e.lot_id, &e.facility_id)?;
        let product = self.product(&lot.product_id)?;
        if let Some(gtin) = &product.gtin {
            if gtin != &e.gtin {
                return Err(DomainError::rule(
                    Rule::ProductMismatch,
                    format!("gtin {} is not the GTIN of product {:?} ({gtin})", e.gtin, product.id),
                ));
            }
        }
        if e.packages.is_empty() {
            return Err(DomainError::invalid("packages", "name at least one package"));
        }
        let mut total = Decimal::ZERO;
        let mut seen = HashSet::new();
        for (i, p) in e.packages.iter().enumerate() {
            if !seen.insert(p.serial.as_str()) {
                return Err(DomainError::invalid(
                    format!("packages[{i}].serial"),
                    format!("serial {:?} is listed twice", p.serial),
                ));
            }
            if self.serials.contains_key(p.serial.as_str()) {
                return Err(DomainError::exists("package serial", &p.serial));
            }
            total += Self::in_lot_units(&e.lot_id, lot, &p.quantity)?;
        }
        if total > lot.balance {
            return Err(DomainError::rule(
                Rule::MassBalance,
                format!(
                    "lot {:?} has {} left; cannot pack {}",
                    e.lot_id,
                    lot.display(lot.balance),
                    lot.display(total)
                ),
            ));
        }
        Ok(())
    }

    fn decide_ship(&self, e: &LotShipped) -> Result<(), DomainError> {
        self.facility(&e.facility_id)?;
        let lot = self.usable_lot_at(&e.lot_id, &e.facility_id)?;
        if !self.parties.contains_key(&e.consignee_id) {
            return Err(DomainError::not_found("party", &e.consignee_id));
        }
        if e.quantity.is_none() && e.package_serials.is_empty() {
            return Err(DomainError::invalid(
                "quantity",
                "name a bulk quantity, package serials, or both",
            ));
        }
        if let Some(q) = &e.quantity {
            let wanted = Self::in_lot_units(&e.lot_id, lot, q)?;
            if wanted > lot.balance {
                return Err(DomainError::rule(
                    Rule::MassBalance,
                    format!(
                        "lot {:?} has {} left; cannot ship {q}",
                        e.lot_id,
                        lot.display(lot.balance)
                    ),
                ));
            }
        }
        let mut seen = HashSet::new();
        for (i, serial) in e.package_serials.iter().enumerate() {
            if !seen.insert(serial.as_str()) {
                return Err(DomainError::invalid(
                    format!("package_serials[{i}]"),
                    format!("serial {serial:?} is listed twice"),
                ));
            }
            let s = self
                .serials
                .get(serial.as_str())
                .filter(|s| !s.voided)
                .ok_or_else(|| DomainError::not_found("package serial", serial))?;
            if *s.lot_id != *e.lot_id {
                return Err(DomainError::rule(
                    Rule::ProductMismatch,
                    format!("package {serial:?} belongs to lot {:?}, not {:?}", s.lot_id, e.lot_id),
                ));
            }
            if s.shipped {
                return Err(DomainError::rule(
                    Rule::MassBalance,
                    format!("package {serial:?} has already been shipped"),
                ));
            }
        }
        Ok(())
    }

    fn decide_status(&self, e: &LotStatusChanged) -> Result<(), DomainError> {
        let lot = self.lot_at(&e.lot_id, &e.facility_id)?;
        if lot.voided {
            return Err(DomainError::rule(
                Rule::StatusTransition,
                format!("lot {:?} was voided", e.lot_id),
            ));
        }
        if e.reason.trim().is_empty() {
            return Err(DomainError::invalid("reason", "say why the status changes"));
        }
        let s = lot.standing();
        let refuse = |msg: String| Err(DomainError::rule(Rule::StatusTransition, msg));
        if s.status == LotStatus::Disposed {
            return refuse(format!(
                "lot {:?} is disposed; its status can no longer change",
                e.lot_id
            ));
        }
        match e.status {
            LotStatus::Active => refuse("set a lot back to use with status RELEASED".into()),
            LotStatus::OnHold if s.status == LotStatus::OnHold => {
                refuse(format!("lot {:?} is already on hold", e.lot_id))
            }
            LotStatus::OnHold if s.status == LotStatus::Recalled => refuse(format!("lot {:?} is recalled", e.lot_id)),
            LotStatus::Released => {
                // A recall is lifted by voiding it, never by releasing a
                // pending hold verdict: that would put the lot back to use.
                if s.status == LotStatus::Recalled {
                    return refuse(format!("lot {:?} is recalled; void the recall to lift it", e.lot_id));
                }
                let held = s.status == LotStatus::OnHold || (s.verdict == Some(Verdict::Hold) && !s.hold_released);
                if !held {
                    return refuse(format!("lot {:?} is not on hold; nothing to release", e.lot_id));
                }
                Ok(())
            }
            LotStatus::Recalled if s.status == LotStatus::Recalled => {
                refuse(format!("lot {:?} is already recalled", e.lot_id))
            }
            _ => Ok(()),
        }
    }

    fn decide_void(&self, e: &EventVoided) -> Result<(), DomainError> {
        self.facility(&e.facility_id)?;
        let rec = self
            .events
            .get(e.voided_event_id.as_str())
            .ok_or_else(|| DomainError::not_found("event", &e.voided_event_id))?;
        if e.reason.trim().is_empty() {
            return Err(DomainError::invalid("reason", "say why the event is voided"));
        }
        if let Some(r) = &e.replacement_event_id {
            if !self.events.contains_key(r.as_str()) {
                return Err(DomainError::not_found("replacement event", r));
            }
            if r == &e.voided_event_id {
                return Err(DomainError::invalid(
                    "replacement_event_id",
                    "an event cannot replace itself",
                ));
            }
        }
        if *rec.chain != *e.facility_id {
            return Err(DomainError::rule(
                Rule::WrongFacility,
                format!(
                    "event {:?} belongs to {:?}, not {:?}",
                    e.voided_event_id, rec.chain, e.facility_id
                ),
            ));
        }
        let refuse = |why: String| {
            Err(DomainError::rule(
                Rule::NotVoidable,
                format!("event {:?} cannot be voided: {why}", e.voided_event_id),
            ))
        };
        if rec.voided {
            return refuse("it is already voided".into());
        }
        let unused = |lot: &str| match self.lots.get(lot) {
            Some(l) if l.uses > 0 || l.in_transit > Decimal::ZERO => {
                Err(format!("lot {lot:?} has been used since; void those events first"))
            }
            _ => Ok(()),
        };
        match &rec.undo {
            Undo::MasterData => refuse("master data is corrected by registering a new record".into()),
            Undo::Void => refuse("a correction cannot itself be voided; record the event again".into()),
            Undo::Receipt { lot, .. } => match unused(lot) {
                Ok(()) => Ok(()),
                Err(why) => refuse(why),
            },
            Undo::Process { outputs, .. } => {
                for out in outputs {
                    if let Err(why) = unused(out) {
                        return refuse(why);
                    }
                }
                Ok(())
            }
            Undo::Pack { serials, .. } => {
                if let Some(s) = serials
                    .iter()
                    .find(|s| self.serials.get(&**s).is_some_and(|p| p.shipped))
                {
                    return refuse(format!("package {s:?} has been shipped"));
                }
                Ok(())
            }
            Undo::Ship { lot, bulk, .. } => {
                let in_transit = self.lots.get(lot).map_or(Decimal::ZERO, |l| l.in_transit);
                if *bulk > in_transit {
                    return refuse("the shipment has been received at another facility".into());
                }
                Ok(())
            }
            Undo::Mark { .. } => Ok(()),
        }
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
            Event::MaterialReceived(e) => {
                let lot: Arc<str> = Arc::from(e.lot_id.as_str());
                let base = e.quantity.to_base();
                let mut source = None;
                if let Some(src) = &e.source_lot_id {
                    if let Some(s) = self.lots.get_mut(src.as_str()) {
                        s.in_transit -= base.min(s.in_transit);
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
                if let Some(l) = self.lots.get_mut(&lot) {
                    l.balance -= bulk;
                    l.in_transit += bulk;
                    l.uses += 1;
                }
                Undo::Ship { lot, bulk, serials }
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
            Undo::Ship { lot, bulk, serials } => {
                for s in serials {
                    if let Some(st) = self.serials.get_mut(&s) {
                        st.shipped = false;
                    }
                }
                if let Some(l) = self.lots.get_mut(&lot) {
                    l.balance += bulk;
                    l.in_transit -= bulk.min(l.in_transit);
                    l.uses = l.uses.saturating_sub(1);
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
