//! Deciding a command into an event: every write-side rule, checked against
//! `Facts` — whatever holds the current state (the write model, or the
//! genealogy projection in the embedded server). Deciding never changes
//! anything.

use std::collections::HashSet;

use rust_decimal::Decimal;

use crate::error::{quote, DomainError, Rule};
use crate::model::*;
use crate::quantity::{from_base, Quantity, Unit};
use crate::state::Standing;

/// What the rules need to know about a lot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LotFacts<'a> {
    pub facility_id: &'a str,
    pub product_id: &'a str,
    pub owner_id: &'a str,
    pub unit: Unit,
    /// Received or produced, in the base unit of `unit`'s dimension.
    pub quantity: Decimal,
    /// What is left, in the base unit.
    pub balance: Decimal,
    /// Shipped in bulk and not yet received at another facility, in the
    /// base unit, whoever it was shipped to.
    pub in_transit: Decimal,
    pub standing: Standing,
    pub voided: bool,
    /// Consumed, packed or shipped from by an event that is not voided.
    pub used: bool,
}

impl LotFacts<'_> {
    pub fn standing(&self) -> Standing {
        self.standing
    }

    /// Why the lot may not be processed, packed or shipped, if it may not.
    pub fn unusable_reason(&self) -> Option<String> {
        unusable_reason(self.voided, self.standing)
    }

    pub fn display(&self, base: Decimal) -> String {
        format!("{} {}", from_base(base, self.unit), self.unit)
    }
}

/// Why a lot may not be processed, packed or shipped, if it may not.
pub fn unusable_reason(voided: bool, s: Standing) -> Option<String> {
    if voided {
        return Some("was voided".into());
    }
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

/// What the rules need to know about a package serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialFacts<'a> {
    pub lot_id: &'a str,
    pub shipped: bool,
    pub voided: bool,
}

/// What voiding an event would have to undo.
#[derive(Debug, Clone)]
pub enum UndoFacts<'a> {
    MasterData,
    Void,
    Mark,
    Receipt {
        lot: &'a str,
    },
    Process {
        outputs: Vec<&'a str>,
    },
    Pack {
        serials: Vec<&'a str>,
    },
    Ship {
        lot: &'a str,
        consignee: &'a str,
        bulk: Decimal,
    },
}

/// What the rules need to know about an earlier event.
#[derive(Debug, Clone)]
pub struct EventFacts<'a> {
    /// The chain (facility or registry) it was appended to.
    pub chain: &'a str,
    pub voided: bool,
    pub undo: UndoFacts<'a>,
}

/// The current state, as the rules see it.
pub trait Facts {
    fn has_event(&self, id: &str) -> bool;
    fn party(&self, id: &str) -> Option<&Party>;
    fn facility(&self, id: &str) -> Option<&Facility>;
    fn product(&self, id: &str) -> Option<&Product>;
    fn standard(&self, id: &str) -> Option<&QualityStandard>;
    fn lot(&self, id: &str) -> Option<LotFacts<'_>>;
    /// What of `lot` was shipped in bulk to `consignee` and has not been
    /// received since at a facility `consignee` operates, in the lot's base
    /// unit. A shipment is in transit only to its consignee: a transfer
    /// receipt draws on the receiving facility's operator's share.
    fn in_transit_to(&self, lot: &str, consignee: &str) -> Decimal;
    /// A package serial, voided ones included (a serial is never reused).
    fn serial(&self, serial: &str) -> Option<SerialFacts<'_>>;
    fn event(&self, id: &str) -> Option<EventFacts<'_>>;
    fn token(&self, id: &str) -> Option<crate::access::TokenRecord>;
}

/// Decides a command into the event it becomes, or the rule it breaks.
/// `id` is the command id (it becomes the event id); `now` the recording time.
pub fn decide<F: Facts + ?Sized>(facts: &F, id: &str, command: Command, now: Time) -> Result<Event, DomainError> {
    Decider { f: facts }.decide(id, command, now)
}

struct Decider<'f, F: ?Sized> {
    f: &'f F,
}

impl<'f, F: Facts + ?Sized> Decider<'f, F> {
    /// Decides a command into the event it becomes, or the rule it breaks.
    /// `id` is the command id (it becomes the event id); `now` the recording time.
    fn decide(&self, id: &str, command: Command, now: Time) -> Result<Event, DomainError> {
        crate::validate::id("command_id", id)?;
        crate::validate::counts(&command)?;
        if self.f.has_event(id) {
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
        let command_time = command.occurred_at().unwrap_or(now);
        let at = Some(command_time);
        match command {
            Command::RegisterParty(p) => {
                if self.f.party(&p.id).is_some() {
                    return Err(DomainError::exists("party", p.id));
                }
                Ok(Event::PartyRegistered(p))
            }
            Command::RegisterFacility(f) => {
                if self.f.facility(&f.id).is_some() {
                    return Err(DomainError::exists("facility", f.id));
                }
                self.party_with_role(&f.operator_id, PartyRole::Operator, "operator_id")?;
                Ok(Event::FacilityRegistered(f))
            }
            Command::RegisterProduct(p) => {
                if self.f.product(&p.id).is_some() {
                    return Err(DomainError::exists("product", p.id));
                }
                Ok(Event::ProductRegistered(p))
            }
            Command::RegisterStandard(s) => {
                if self.f.standard(&s.id).is_some() {
                    return Err(DomainError::exists("quality standard", s.id));
                }
                s.check()?;
                Ok(Event::StandardRegistered(s))
            }
            Command::ReceiveMaterial(mut e) => {
                self.decide_receipt(&e)?;
                self.decide_legality(&e, command_time)?;
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
            Command::IssueToken(t) => {
                crate::access::check_issue(
                    &t,
                    now,
                    self.f.token(&t.token_id).as_ref(),
                    |f| self.f.facility(f).is_some(),
                    |p| self.f.party(p).is_some(),
                )?;
                Ok(Event::TokenIssued(t))
            }
            Command::RevokeToken(r) => {
                crate::access::check_revoke(&r, self.f.token(&r.token_id).as_ref())?;
                Ok(Event::TokenRevoked(r))
            }
            Command::VoidEvent(mut e) => {
                self.decide_void(&e)?;
                e.occurred_at = at;
                Ok(Event::EventVoided(e))
            }
            Command::ObserveEpcis(mut e) => {
                if !e.facility_id.is_empty() {
                    self.facility(&e.facility_id)?;
                }
                if !e.event_json.starts_with('{') {
                    return Err(DomainError::invalid("event_json", "is not a JSON object"));
                }
                crate::validate::required_text("event_type", &e.event_type)?;
                for (i, lot) in e.lot_ids.iter().enumerate() {
                    if self.f.lot(lot).is_none() {
                        return Err(DomainError::invalid(
                            format!("lot_ids[{i}]"),
                            format!("lot {} not found", crate::error::quote(lot)),
                        ));
                    }
                }
                e.occurred_at = at;
                Ok(Event::EpcisObserved(e))
            }
        }
    }

    fn facility(&self, id: &str) -> Result<&'f Facility, DomainError> {
        self.f
            .facility(id)
            .ok_or_else(|| DomainError::not_found("facility", id))
    }

    fn product(&self, id: &str) -> Result<&'f Product, DomainError> {
        self.f.product(id).ok_or_else(|| DomainError::not_found("product", id))
    }

    fn party_with_role(&self, id: &str, role: PartyRole, field: &str) -> Result<&'f Party, DomainError> {
        let party = self.f.party(id).ok_or_else(|| DomainError::not_found("party", id))?;
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
    fn lot_at(&self, id: &str, facility: &str) -> Result<LotFacts<'f>, DomainError> {
        let lot = self.f.lot(id).ok_or_else(|| DomainError::not_found("lot", id))?;
        if lot.facility_id != facility {
            return Err(DomainError::rule(
                Rule::WrongFacility,
                format!("lot {id:?} is at facility {:?}, not {facility:?}", lot.facility_id),
            ));
        }
        Ok(lot)
    }

    fn usable_lot_at(&self, id: &str, facility: &str) -> Result<LotFacts<'f>, DomainError> {
        let lot = self.lot_at(id, facility)?;
        if let Some(reason) = lot.unusable_reason() {
            return Err(DomainError::rule(Rule::LotNotUsable, format!("lot {id:?} {reason}")));
        }
        Ok(lot)
    }

    /// `q` in the lot's base unit, or a unit-mismatch error.
    fn in_lot_units(lot_id: &str, lot: &LotFacts<'_>, q: &Quantity) -> Result<Decimal, DomainError> {
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
        if self.f.lot(id).is_some() {
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
                .f
                .lot(src.as_str())
                .ok_or_else(|| DomainError::not_found("source lot", src))?;
            if source.facility_id == e.facility_id {
                return Err(DomainError::rule(
                    Rule::WrongFacility,
                    format!(
                        "source lot {src:?} is already at facility {:?}; a transfer links lots of two facilities",
                        e.facility_id
                    ),
                ));
            }
            if source.product_id != e.product_id {
                return Err(DomainError::rule(
                    Rule::ProductMismatch,
                    format!(
                        "source lot {src:?} is product {:?}; a transfer receives it as the same product, not {:?}",
                        source.product_id, e.product_id
                    ),
                ));
            }
            let wanted = Self::in_lot_units(src, &source, &e.quantity)?;
            // Only what was shipped to this facility's operator is on its way here.
            let operator = self.facility(&e.facility_id)?.operator_id.as_str();
            let coming = self.f.in_transit_to(src, operator);
            if wanted > coming {
                return Err(DomainError::rule(
                    Rule::NotInTransit,
                    format!(
                        "source lot {src:?} has {} shipped to {operator:?} (the operator of facility {:?}) and not yet received; cannot receive {}",
                        source.display(coming),
                        e.facility_id,
                        e.quantity
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Timber received (not transferred) at a facility that requires it
    /// carries a legality document of its source (SVLK certificate or DKP)
    /// and a transport document (SKSHH or nota angkutan), each valid on the
    /// day of the receipt.
    fn decide_legality(&self, e: &MaterialReceived, at: Time) -> Result<(), DomainError> {
        let facility = self.facility(&e.facility_id)?;
        let product = self.product(&e.product_id)?;
        if !facility.requires_legality || !product.is_timber() || e.source_lot_id.is_some() {
            return Ok(());
        }
        let valid = |source: bool| {
            e.documents
                .iter()
                .any(|d| d.legality().is_some_and(|l| l.is_source() == source) && d.valid_at(at))
        };
        let mut missing = Vec::new();
        if !valid(true) {
            missing.push("a legality document (svlk-certificate or dkp)");
        }
        if !valid(false) {
            missing.push("a transport document (skshh or nota-angkutan)");
        }
        if missing.is_empty() {
            return Ok(());
        }
        let expired: Vec<String> = e
            .documents
            .iter()
            .filter(|d| d.legality().is_some() && !d.valid_at(at))
            .map(|d| format!("{} {} is not valid then", d.kind, quote(&d.reference)))
            .collect();
        Err(DomainError::rule(
            Rule::TimberLegality,
            format!(
                "timber received at facility {} needs {} valid on the day of the receipt{}",
                quote(&e.facility_id),
                missing.join(" and "),
                if expired.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", expired.join("; "))
                }
            ),
        ))
    }

    fn decide_inspection(&self, c: InspectLot, at: Option<Time>) -> Result<Event, DomainError> {
        self.lot_at(&c.lot_id, &c.facility_id)?;
        let standard = self
            .f
            .standard(&c.standard_id)
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
            let wanted = Self::in_lot_units(&input.lot_id, &lot, &input.quantity)?;
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
            first_owner.get_or_insert_with(|| lot.owner_id.to_string());
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
        let product = self.product(lot.product_id)?;
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
            if self.f.serial(p.serial.as_str()).is_some() {
                return Err(DomainError::exists("package serial", &p.serial));
            }
            total += Self::in_lot_units(&e.lot_id, &lot, &p.quantity)?;
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
        if self.f.party(&e.consignee_id).is_none() {
            return Err(DomainError::not_found("party", &e.consignee_id));
        }
        if e.quantity.is_none() && e.package_serials.is_empty() {
            return Err(DomainError::invalid(
                "quantity",
                "name a bulk quantity, package serials, or both",
            ));
        }
        if let Some(q) = &e.quantity {
            let wanted = Self::in_lot_units(&e.lot_id, &lot, q)?;
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
                .f
                .serial(serial.as_str())
                .filter(|s| !s.voided)
                .ok_or_else(|| DomainError::not_found("package serial", serial))?;
            if s.lot_id != e.lot_id {
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
            .f
            .event(e.voided_event_id.as_str())
            .ok_or_else(|| DomainError::not_found("event", &e.voided_event_id))?;
        if e.reason.trim().is_empty() {
            return Err(DomainError::invalid("reason", "say why the event is voided"));
        }
        if let Some(r) = &e.replacement_event_id {
            if !self.f.has_event(r.as_str()) {
                return Err(DomainError::not_found("replacement event", r));
            }
            if r == &e.voided_event_id {
                return Err(DomainError::invalid(
                    "replacement_event_id",
                    "an event cannot replace itself",
                ));
            }
        }
        if rec.chain != e.facility_id {
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
        let unused = |lot: &str| match self.f.lot(lot) {
            Some(l) if l.used || l.in_transit > Decimal::ZERO => {
                Err(format!("lot {lot:?} has been used since; void those events first"))
            }
            _ => Ok(()),
        };
        match &rec.undo {
            UndoFacts::MasterData => refuse("master data is corrected by registering a new record".into()),
            UndoFacts::Void => refuse("a correction cannot itself be voided; record the event again".into()),
            UndoFacts::Receipt { lot, .. } => match unused(lot) {
                Ok(()) => Ok(()),
                Err(why) => refuse(why),
            },
            UndoFacts::Process { outputs, .. } => {
                for out in outputs {
                    if let Err(why) = unused(out) {
                        return refuse(why);
                    }
                }
                Ok(())
            }
            UndoFacts::Pack { serials, .. } => {
                if let Some(s) = serials.iter().find(|s| self.f.serial(s).is_some_and(|p| p.shipped)) {
                    return refuse(format!("package {s:?} has been shipped"));
                }
                Ok(())
            }
            UndoFacts::Ship { lot, consignee, bulk } => {
                if *bulk > self.f.in_transit_to(lot, consignee) {
                    return refuse("the shipment has been received at another facility".into());
                }
                Ok(())
            }
            UndoFacts::Mark { .. } => Ok(()),
        }
    }
}
