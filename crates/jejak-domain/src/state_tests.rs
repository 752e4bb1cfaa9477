//! Tests of the write model: each rule `State::decide` enforces, and properties
//! of decide → apply over random command sequences (mass balance, replay).

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::error::{DomainError, Rule};
use crate::gs1::Gtin;
use crate::model::*;
use crate::quantity::{Quantity, Unit};
use crate::state::{LotState, State};

const FAC: &str = "fac-demak";
const FAC2: &str = "fac-kudus";
const UKM: &str = "ukm-sri";
const UKM2: &str = "ukm-maju";
const SUP: &str = "sup-tani";
const OP: &str = "op-demak";
const OP2: &str = "op-kudus";
const CUST: &str = "cust-pangan";
const GABAH: &str = "gabah";
const BERAS: &str = "beras";
const KARUNG: &str = "karung";
const STD: &str = "sni-6128";
const BERAS_GTIN: &str = "08991234567891";

/// 2025-06-15T15:06:40Z, the recording time of every command.
const NOW: Time = Time(1_750_000_000 * Time::NANOS_PER_SEC);

// ---------------------------------------------------------------------------
// Master data and command builders.

fn q(value: &str, unit: Unit) -> Quantity {
    Quantity::parse("quantity", value, unit).expect("valid test quantity")
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("valid test decimal")
}

fn gtin(s: &str) -> Gtin {
    Gtin::parse(s).expect("valid test gtin")
}

fn party(id: &str, name: &str, roles: &[PartyRole]) -> Party {
    Party {
        id: id.into(),
        name: name.into(),
        roles: roles.to_vec(),
        district: "Demak".into(),
        contact: String::new(),
        gln: None,
    }
}

fn facility(id: &str, operator: &str) -> Facility {
    Facility {
        id: id.into(),
        name: format!("Shared factory {id}"),
        sector: Sector::Rice,
        district: "Demak".into(),
        operator_id: operator.into(),
        location: None,
        gln: None,
        requires_legality: false,
    }
}

fn product(id: &str, unit: Unit, gtin_digits: Option<&str>) -> Product {
    Product {
        id: id.into(),
        name: id.into(),
        sector: Sector::Rice,
        kind: ProductKind::Raw,
        unit,
        gtin: gtin_digits.map(gtin),
    }
}

/// Moisture and broken kernels, both required: measuring only one gives a hold.
fn standard() -> QualityStandard {
    let param = |code: &str, max: &str| Parameter {
        code: code.into(),
        name: code.into(),
        unit: "%".into(),
        min: None,
        max: Some(dec(max)),
        required: true,
    };
    QualityStandard {
        id: STD.into(),
        name: "SNI 6128:2020 Premium".into(),
        reference: "SNI 6128:2020".into(),
        parameters: vec![param("moisture", "14"), param("broken", "14.5")],
    }
}

/// The master data every test starts from, as registration commands.
fn master_data() -> Vec<Command> {
    vec![
        Command::RegisterParty(party(UKM, "UKM Sri Rejeki", &[PartyRole::Ukm])),
        Command::RegisterParty(party(UKM2, "UKM Maju Jaya", &[PartyRole::Ukm])),
        Command::RegisterParty(party(SUP, "Kelompok Tani Makmur", &[PartyRole::Supplier])),
        Command::RegisterParty(party(OP, "Koperasi Demak", &[PartyRole::Operator])),
        Command::RegisterParty(party(OP2, "Koperasi Kudus", &[PartyRole::Operator])),
        Command::RegisterParty(party(CUST, "PT Pangan Ekspor", &[PartyRole::Customer])),
        Command::RegisterFacility(facility(FAC, OP)),
        Command::RegisterFacility(facility(FAC2, OP2)),
        Command::RegisterProduct(product(GABAH, Unit::Kg, None)),
        Command::RegisterProduct(product(BERAS, Unit::Kg, Some(BERAS_GTIN))),
        Command::RegisterProduct(product(KARUNG, Unit::Pcs, None)),
        Command::RegisterStandard(standard()),
    ]
}

fn receipt(lot: &str, product: &str, quantity: Quantity) -> MaterialReceived {
    MaterialReceived {
        lot_id: lot.into(),
        facility_id: FAC.into(),
        product_id: product.into(),
        quantity,
        owner_id: UKM.into(),
        supplier_id: SUP.into(),
        origin: Origin {
            place: "Desa Karanganyar".into(),
            ..Origin::default()
        },
        documents: Vec::new(),
        source_lot_id: None,
        occurred_at: None,
    }
}

fn receive(lot: &str, product: &str, quantity: Quantity) -> Command {
    Command::ReceiveMaterial(receipt(lot, product, quantity))
}

fn processing(inputs: &[(&str, Quantity)], outputs: &[(&str, &str, Quantity)]) -> LotProcessed {
    LotProcessed {
        facility_id: FAC.into(),
        process_step: "milling".into(),
        line: "line-1".into(),
        inputs: inputs
            .iter()
            .map(|(lot, quantity)| LotInput {
                lot_id: (*lot).into(),
                quantity: *quantity,
            })
            .collect(),
        outputs: outputs
            .iter()
            .map(|(lot, product, quantity)| LotOutput {
                lot_id: (*lot).into(),
                product_id: (*product).into(),
                quantity: *quantity,
                owner_id: String::new(),
            })
            .collect(),
        occurred_at: None,
    }
}

fn process(inputs: &[(&str, Quantity)], outputs: &[(&str, &str, Quantity)]) -> Command {
    Command::ProcessLots(processing(inputs, outputs))
}

/// Consumes `quantity` of `lot` into a fresh output lot of rice.
fn consume(lot: &str, quantity: Quantity, output: &str) -> Command {
    process(&[(lot, quantity)], &[(output, BERAS, q("1", Unit::Kg))])
}

fn pack(lot: &str, packages: &[(&str, Quantity)]) -> Command {
    Command::PackLot(LotPacked {
        facility_id: FAC.into(),
        lot_id: lot.into(),
        gtin: gtin(BERAS_GTIN),
        packages: packages
            .iter()
            .map(|(serial, quantity)| Package {
                serial: (*serial).into(),
                quantity: *quantity,
            })
            .collect(),
        occurred_at: None,
    })
}

fn shipment(lot: &str, bulk: Option<Quantity>, serials: &[&str]) -> LotShipped {
    LotShipped {
        facility_id: FAC.into(),
        lot_id: lot.into(),
        quantity: bulk,
        package_serials: serials.iter().map(|s| (*s).into()).collect(),
        consignee_id: CUST.into(),
        document: "SJ-001".into(),
        occurred_at: None,
        dds_reference: String::new(),
    }
}

fn ship(lot: &str, bulk: Option<Quantity>, serials: &[&str]) -> Command {
    Command::ShipLot(shipment(lot, bulk, serials))
}

fn status(lot: &str, status: LotStatus) -> Command {
    Command::ChangeLotStatus(LotStatusChanged {
        facility_id: FAC.into(),
        lot_id: lot.into(),
        status,
        reason: "quality check".into(),
        occurred_at: None,
    })
}

/// An inspection against the standard; `broken: None` leaves a required
/// parameter unmeasured, which gives a hold verdict.
fn inspect(lot: &str, moisture: &str, broken: Option<&str>) -> Command {
    let m = |parameter: &str, value: &str| Measurement {
        parameter: parameter.into(),
        value: dec(value),
        unit: "%".into(),
    };
    let mut measurements = vec![m("moisture", moisture)];
    measurements.extend(broken.map(|b| m("broken", b)));
    Command::InspectLot(InspectLot {
        lot_id: lot.into(),
        facility_id: FAC.into(),
        standard_id: STD.into(),
        measurements,
        inspector: "Budi".into(),
        occurred_at: None,
    })
}

fn conformant(lot: &str) -> Command {
    inspect(lot, "13.5", Some("10"))
}

fn non_conformant(lot: &str) -> Command {
    inspect(lot, "15.2", Some("10"))
}

fn void_at(facility: &str, event_id: &str) -> Command {
    Command::VoidEvent(EventVoided {
        facility_id: facility.into(),
        voided_event_id: event_id.into(),
        reason: "entered by mistake".into(),
        replacement_event_id: None,
        occurred_at: None,
    })
}

fn void(event_id: &str) -> Command {
    void_at(FAC, event_id)
}

/// A state with the master data registered, and the commands run against it.
struct World {
    state: State,
    next: u32,
    accepted: Vec<(String, Event)>,
}

impl World {
    fn new() -> World {
        let mut w = World {
            state: State::new(),
            next: 0,
            accepted: Vec::new(),
        };
        for cmd in master_data() {
            w.ok(cmd);
        }
        w
    }

    /// Decides and, if accepted, applies a command under a fresh id. A refused
    /// command must leave the state exactly as it was.
    fn run(&mut self, cmd: Command) -> Result<String, DomainError> {
        self.next += 1;
        let id = format!("cmd-{}", self.next);
        self.run_as(&id, cmd).map(|()| id)
    }

    fn run_as(&mut self, id: &str, cmd: Command) -> Result<(), DomainError> {
        let before = self.state.clone();
        match self.state.decide(id, cmd, NOW) {
            Ok(event) => {
                self.state.apply(id, &event);
                assert!(self.state.balances_hold(), "balances broken after {event:?}");
                self.accepted.push((id.to_string(), event));
                Ok(())
            }
            Err(e) => {
                assert!(self.state == before, "refused command changed the state: {e}");
                Err(e)
            }
        }
    }

    #[track_caller]
    fn ok(&mut self, cmd: Command) -> String {
        let shown = format!("{cmd:?}");
        match self.run(cmd) {
            Ok(id) => id,
            Err(e) => panic!("refused: {e}\ncommand: {shown}"),
        }
    }

    #[track_caller]
    fn err(&mut self, cmd: Command) -> DomainError {
        let shown = format!("{cmd:?}");
        match self.run(cmd) {
            Ok(id) => panic!("accepted as {id}, expected a refusal\ncommand: {shown}"),
            Err(e) => e,
        }
    }

    /// The event the last accepted command became.
    fn last_event(&self) -> &Event {
        &self.accepted.last().expect("an accepted command").1
    }

    #[track_caller]
    fn lot(&self, id: &str) -> &LotState {
        self.state.lot(id).unwrap_or_else(|| panic!("lot {id:?} not in state"))
    }

    fn balance(&self, id: &str) -> Decimal {
        self.lot(id).balance
    }

    fn usable(&self, id: &str) -> bool {
        self.lot(id).unusable_reason().is_none()
    }
}

#[track_caller]
fn assert_rule(err: &DomainError, rule: Rule, needle: &str) {
    assert_eq!(err.broken_rule(), Some(rule), "{err:?}");
    assert!(err.to_string().contains(needle), "{err:?} does not mention {needle:?}");
}

#[track_caller]
fn assert_not_found(err: &DomainError, what: &str, id: &str) {
    match err {
        DomainError::NotFound { what: w, id: i } => assert_eq!((*w, i.as_str()), (what, id), "{err:?}"),
        other => panic!("expected {what} {id:?} not found, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid(err: &DomainError, field: &str) {
    match err {
        DomainError::Invalid { field: f, .. } => assert_eq!(f, field, "{err:?}"),
        other => panic!("expected Invalid {{ field: {field:?} }}, got {other:?}"),
    }
}

/// A world with one 1000 kg lot of paddy, "G1", owned by UKM Sri Rejeki.
fn world_with_g1() -> World {
    let mut w = World::new();
    w.ok(receive("G1", GABAH, q("1000", Unit::Kg)));
    w
}

// ---------------------------------------------------------------------------
// Unknown references.

#[test]
fn unknown_references_are_not_found() {
    let mut w = world_with_g1();
    let kg = q("1", Unit::Kg);

    let e = w.err(Command::ReceiveMaterial(MaterialReceived {
        facility_id: "fac-nowhere".into(),
        ..receipt("N1", GABAH, kg)
    }));
    assert_not_found(&e, "facility", "fac-nowhere");
    let e = w.err(receive("N1", "jagung", kg));
    assert_not_found(&e, "product", "jagung");
    let e = w.err(Command::ReceiveMaterial(MaterialReceived {
        owner_id: "ukm-ghost".into(),
        ..receipt("N1", GABAH, kg)
    }));
    assert_not_found(&e, "party", "ukm-ghost");
    let e = w.err(Command::ReceiveMaterial(MaterialReceived {
        supplier_id: "sup-ghost".into(),
        ..receipt("N1", GABAH, kg)
    }));
    assert_not_found(&e, "party", "sup-ghost");
    let e = w.err(Command::ReceiveMaterial(MaterialReceived {
        facility_id: FAC2.into(),
        supplier_id: OP.into(),
        source_lot_id: Some("G-ghost".into()),
        ..receipt("N1", GABAH, kg)
    }));
    assert_not_found(&e, "source lot", "G-ghost");

    let e = w.err(consume("G-ghost", kg, "B1"));
    assert_not_found(&e, "lot", "G-ghost");
    let e = w.err(process(&[("G1", kg)], &[("B1", "tepung", kg)]));
    assert_not_found(&e, "product", "tepung");
    let e = w.err(Command::ProcessLots(LotProcessed {
        facility_id: "fac-nowhere".into(),
        ..processing(&[("G1", kg)], &[("B1", BERAS, kg)])
    }));
    assert_not_found(&e, "facility", "fac-nowhere");
    let mut out_owner = processing(&[("G1", kg)], &[("B1", BERAS, kg)]);
    out_owner.outputs[0].owner_id = "ukm-ghost".into();
    let e = w.err(Command::ProcessLots(out_owner));
    assert_not_found(&e, "party", "ukm-ghost");

    let e = w.err(pack("G-ghost", &[("S1", kg)]));
    assert_not_found(&e, "lot", "G-ghost");
    let e = w.err(ship("G-ghost", Some(kg), &[]));
    assert_not_found(&e, "lot", "G-ghost");
    let e = w.err(Command::ShipLot(LotShipped {
        consignee_id: "cust-ghost".into(),
        ..shipment("G1", Some(kg), &[])
    }));
    assert_not_found(&e, "party", "cust-ghost");
    let e = w.err(ship("G1", None, &["S-ghost"]));
    assert_not_found(&e, "package serial", "S-ghost");

    let e = w.err(conformant("G-ghost"));
    assert_not_found(&e, "lot", "G-ghost");
    let Command::InspectLot(mut other_standard) = conformant("G1") else {
        unreachable!("conformant builds an inspection")
    };
    other_standard.standard_id = "sni-ghost".into();
    let e = w.err(Command::InspectLot(other_standard));
    assert_not_found(&e, "quality standard", "sni-ghost");
    let e = w.err(status("G-ghost", LotStatus::OnHold));
    assert_not_found(&e, "lot", "G-ghost");

    let e = w.err(void("cmd-ghost"));
    assert_not_found(&e, "event", "cmd-ghost");
    let g1 = w.accepted.last().expect("the receipt").0.clone();
    let e = w.err(Command::VoidEvent(EventVoided {
        replacement_event_id: Some("cmd-ghost".into()),
        ..match void(&g1) {
            Command::VoidEvent(v) => v,
            _ => unreachable!("void builds a void"),
        }
    }));
    assert_not_found(&e, "replacement event", "cmd-ghost");

    let e = w.err(Command::RegisterFacility(facility("fac-baru", "op-ghost")));
    assert_not_found(&e, "party", "op-ghost");

    // Nothing refused left a trace.
    assert_eq!(w.state.lot_count(), 1);
    assert!(w.state.lot("N1").is_none());
    assert!(w.state.lot("B1").is_none());
}

#[test]
fn parties_need_the_role_the_command_names() {
    let mut w = World::new();
    let e = w.err(Command::ReceiveMaterial(MaterialReceived {
        owner_id: SUP.into(),
        ..receipt("G1", GABAH, q("1", Unit::Kg))
    }));
    assert_rule(&e, Rule::PartyRole, "owner_id");
    // An operator supplies only lots transferred from its facility.
    let e = w.err(Command::ReceiveMaterial(MaterialReceived {
        supplier_id: OP.into(),
        ..receipt("G1", GABAH, q("1", Unit::Kg))
    }));
    assert_rule(&e, Rule::PartyRole, "supplier_id");
    let e = w.err(Command::RegisterFacility(facility("fac-baru", UKM)));
    assert_rule(&e, Rule::PartyRole, "operator");
}

#[test]
fn master_data_ids_are_unique() {
    let mut w = World::new();
    let e = w.err(Command::RegisterParty(party(UKM, "again", &[PartyRole::Ukm])));
    assert_eq!(
        e,
        DomainError::AlreadyExists {
            what: "party",
            id: UKM.into()
        }
    );
    let e = w.err(Command::RegisterProduct(product(GABAH, Unit::T, None)));
    assert!(matches!(e, DomainError::AlreadyExists { what: "product", .. }), "{e:?}");
    let e = w.err(Command::RegisterFacility(facility(FAC, OP)));
    assert!(
        matches!(e, DomainError::AlreadyExists { what: "facility", .. }),
        "{e:?}"
    );
    let e = w.err(Command::RegisterStandard(standard()));
    assert!(
        matches!(
            e,
            DomainError::AlreadyExists {
                what: "quality standard",
                ..
            }
        ),
        "{e:?}"
    );
}

// ---------------------------------------------------------------------------
// Mass balance and units.

#[test]
fn consuming_more_than_is_left_is_refused() {
    let mut w = world_with_g1();
    let e = w.err(consume("G1", q("1000.001", Unit::Kg), "B1"));
    assert_rule(&e, Rule::MassBalance, "has 1000 kg left");
    assert_rule(&e, Rule::MassBalance, "cannot consume 1000.001 kg");

    w.ok(consume("G1", q("600", Unit::Kg), "B1"));
    assert_eq!(w.balance("G1"), dec("400"));
    let e = w.err(consume("G1", q("401", Unit::Kg), "B2"));
    assert_rule(&e, Rule::MassBalance, "\"G1\" has 400 kg left");

    // Exactly what is left is fine, and leaves nothing.
    w.ok(consume("G1", q("400", Unit::Kg), "B2"));
    assert_eq!(w.balance("G1"), Decimal::ZERO);
    let e = w.err(consume("G1", q("0.001", Unit::Kg), "B3"));
    assert_rule(&e, Rule::MassBalance, "has 0 kg left");
}

#[test]
fn packing_and_shipping_more_than_is_left_is_refused() {
    let mut w = World::new();
    w.ok(receive("B1", BERAS, q("12", Unit::Kg)));
    // Each package fits, together they do not.
    let e = w.err(pack(
        "B1",
        &[
            ("S1", q("5", Unit::Kg)),
            ("S2", q("5", Unit::Kg)),
            ("S3", q("5", Unit::Kg)),
        ],
    ));
    assert_rule(&e, Rule::MassBalance, "has 12 kg left; cannot pack 15 kg");
    w.ok(pack("B1", &[("S1", q("5", Unit::Kg)), ("S2", q("5", Unit::Kg))]));
    assert_eq!(w.balance("B1"), dec("2"));
    assert_eq!(w.state.package_base("S1"), Some(dec("5")));

    let e = w.err(ship("B1", Some(q("2.5", Unit::Kg)), &[]));
    assert_rule(&e, Rule::MassBalance, "has 2 kg left; cannot ship 2.5 kg");
    // Shipping packed units takes nothing more from the balance.
    w.ok(ship("B1", Some(q("2", Unit::Kg)), &["S1", "S2"]));
    assert_eq!(w.balance("B1"), Decimal::ZERO);
    assert_eq!(w.lot("B1").in_transit, dec("2"));
    let e = w.err(ship("B1", None, &["S1"]));
    assert_rule(&e, Rule::MassBalance, "already been shipped");
}

#[test]
fn units_of_another_dimension_are_refused() {
    let mut w = world_with_g1();
    let e = w.err(consume("G1", q("5", Unit::Pcs), "B1"));
    assert_rule(
        &e,
        Rule::UnitMismatch,
        "\"G1\" is counted in kg (mass); 5 pcs cannot be converted",
    );
    let e = w.err(process(&[("G1", q("5", Unit::Kg))], &[("B1", BERAS, q("2", Unit::L))]));
    assert_rule(&e, Rule::UnitMismatch, "outputs[0].quantity");
    let e = w.err(receive("K1", KARUNG, q("10", Unit::Kg)));
    assert_rule(&e, Rule::UnitMismatch, "product \"karung\" is counted in pcs (count)");
    let e = w.err(ship("G1", Some(q("1", Unit::M)), &[]));
    assert_eq!(e.broken_rule(), Some(Rule::UnitMismatch));
    let e = w.err(pack("G1", &[("S1", q("3", Unit::Pcs))]));
    assert_eq!(e.broken_rule(), Some(Rule::UnitMismatch));
    assert_eq!(w.balance("G1"), dec("1000"));
}

#[test]
fn mass_converts_exactly_between_t_kg_and_g() {
    let mut w = World::new();
    w.ok(receive("G1", GABAH, q("2", Unit::T)));
    assert_eq!(w.lot("G1").quantity, dec("2000"), "kept in kg");
    assert_eq!(w.lot("G1").unit, Unit::T);
    w.ok(consume("G1", q("1500", Unit::Kg), "B1"));
    assert_eq!(w.balance("G1"), dec("500"));
    w.ok(consume("G1", q("499999", Unit::G), "B2"));
    assert_eq!(w.balance("G1"), dec("0.001"));
    // One gram over is refused, in the lot's own unit.
    let e = w.err(consume("G1", q("2", Unit::G), "B3"));
    assert_rule(&e, Rule::MassBalance, "has 0.000001 t left");
    w.ok(consume("G1", q("0.000001", Unit::T), "B3"));
    assert_eq!(w.balance("G1"), Decimal::ZERO);
    // Outputs may be given in any unit of their product's dimension.
    w.ok(process(
        &[("B1", q("0.5", Unit::Kg))],
        &[("B4", BERAS, q("250", Unit::G))],
    ));
    assert_eq!(w.lot("B4").quantity, dec("0.25"));
}

// ---------------------------------------------------------------------------
// Usability: status and inspections.

/// Every way of using a lot: processing, packing, bulk shipping.
#[track_caller]
fn assert_not_usable(w: &mut World, lot: &str, reason: &str) {
    assert!(!w.usable(lot));
    let kg = q("1", Unit::Kg);
    for cmd in [
        consume(lot, kg, "X-OUT"),
        pack(lot, &[("X-S", kg)]),
        ship(lot, Some(kg), &[]),
    ] {
        let e = w.err(cmd);
        assert_rule(&e, Rule::LotNotUsable, reason);
    }
}

#[track_caller]
fn assert_usable(w: &mut World, lot: &str) {
    assert!(w.usable(lot), "{:?}", w.lot(lot).unusable_reason());
    // Decided only: the lot stays as it is for the rest of the test.
    let kg = q("1", Unit::Kg);
    for cmd in [
        consume(lot, kg, "X-OUT"),
        pack(lot, &[("X-S", kg)]),
        ship(lot, Some(kg), &[]),
    ] {
        if let Err(e) = w.state.decide("probe", cmd, NOW) {
            panic!("lot {lot:?} should be usable: {e}");
        }
    }
}

#[test]
fn a_lot_on_hold_is_not_usable_until_released() {
    let mut w = world_with_g1();
    w.ok(status("G1", LotStatus::OnHold));
    assert_not_usable(&mut w, "G1", "is on hold");
    let e = w.err(status("G1", LotStatus::OnHold));
    assert_eq!(e.broken_rule(), Some(Rule::StatusTransition));
    w.ok(status("G1", LotStatus::Released));
    assert_usable(&mut w, "G1");
    // Nothing left to release.
    let e = w.err(status("G1", LotStatus::Released));
    assert_rule(&e, Rule::StatusTransition, "not on hold");
    let e = w.err(status("G1", LotStatus::Active));
    assert_eq!(e.broken_rule(), Some(Rule::StatusTransition));
}

#[test]
fn recalled_and_disposed_lots_are_not_usable() {
    let mut w = world_with_g1();
    w.ok(receive("G2", GABAH, q("10", Unit::Kg)));
    w.ok(status("G1", LotStatus::Recalled));
    assert_not_usable(&mut w, "G1", "is recalled");
    let e = w.err(status("G1", LotStatus::Released));
    assert_eq!(e.broken_rule(), Some(Rule::StatusTransition));
    let e = w.err(status("G1", LotStatus::OnHold));
    assert_eq!(e.broken_rule(), Some(Rule::StatusTransition));
    w.ok(status("G2", LotStatus::Disposed));
    assert_not_usable(&mut w, "G2", "is disposed");
    let e = w.err(status("G2", LotStatus::Released));
    assert_rule(&e, Rule::StatusTransition, "disposed");
}

#[test]
fn a_recall_cannot_be_lifted_by_releasing_a_hold_verdict() {
    let mut w = world_with_g1();
    w.ok(inspect("G1", "13", None));
    w.ok(status("G1", LotStatus::Recalled));
    // Releasing the pending hold verdict must not put a recalled lot back to use.
    let e = w.err(status("G1", LotStatus::Released));
    assert_eq!(e.broken_rule(), Some(Rule::StatusTransition), "{e}");
    assert_not_usable(&mut w, "G1", "is recalled");
    // Voiding the recall lifts it; the hold verdict is still there to release.
    let recall = w.accepted.last().expect("the recall").0.clone();
    w.ok(void(&recall));
    assert_not_usable(&mut w, "G1", "incomplete inspection");
    w.ok(status("G1", LotStatus::Released));
    assert_usable(&mut w, "G1");
}

#[test]
fn a_non_conformant_lot_is_usable_again_after_a_conformant_reinspection() {
    let mut w = world_with_g1();
    w.ok(non_conformant("G1"));
    match w.last_event() {
        Event::LotInspected(i) => {
            assert_eq!(i.verdict, Verdict::NonConformant);
            assert!(i.findings[0].contains("above the maximum 14"), "{:?}", i.findings);
        }
        other => panic!("{other:?}"),
    }
    assert_not_usable(&mut w, "G1", "is non-conformant");
    // Releasing does not override a failed inspection.
    let e = w.err(status("G1", LotStatus::Released));
    assert_eq!(e.broken_rule(), Some(Rule::StatusTransition));
    w.ok(conformant("G1"));
    assert_usable(&mut w, "G1");
}

#[test]
fn a_hold_verdict_blocks_use_until_released_or_completed() {
    let mut w = world_with_g1();
    w.ok(receive("G2", GABAH, q("10", Unit::Kg)));
    w.ok(inspect("G1", "13", None));
    match w.last_event() {
        Event::LotInspected(i) => assert_eq!(i.verdict, Verdict::Hold),
        other => panic!("{other:?}"),
    }
    assert_not_usable(&mut w, "G1", "incomplete inspection");
    w.ok(status("G1", LotStatus::Released));
    assert_usable(&mut w, "G1");
    // A new incomplete inspection holds it again.
    w.ok(inspect("G1", "13", None));
    assert_not_usable(&mut w, "G1", "incomplete inspection");

    // Completing the inspection is the other way out.
    w.ok(inspect("G2", "13", None));
    assert_not_usable(&mut w, "G2", "incomplete inspection");
    w.ok(conformant("G2"));
    assert_usable(&mut w, "G2");
}

#[test]
fn voiding_an_inspection_reverts_its_verdict() {
    let mut w = world_with_g1();
    let bad = w.ok(non_conformant("G1"));
    assert_not_usable(&mut w, "G1", "non-conformant");
    w.ok(void(&bad));
    assert_usable(&mut w, "G1");
    assert_eq!(w.lot("G1").standing().verdict, None);

    w.ok(non_conformant("G1"));
    let good = w.ok(conformant("G1"));
    assert_usable(&mut w, "G1");
    // Voiding the later conformant one brings the earlier verdict back.
    w.ok(void(&good));
    assert_eq!(w.lot("G1").standing().verdict, Some(Verdict::NonConformant));
    assert_not_usable(&mut w, "G1", "non-conformant");

    // A voided hold is lifted too.
    let hold = w.ok(status("G1", LotStatus::OnHold));
    w.ok(conformant("G1"));
    assert_not_usable(&mut w, "G1", "on hold");
    w.ok(void(&hold));
    assert_usable(&mut w, "G1");
}

// ---------------------------------------------------------------------------
// Lot ids, owners, facilities, times.

#[test]
fn lot_and_command_ids_cannot_be_reused() {
    let mut w = world_with_g1();
    let e = w.err(receive("G1", GABAH, q("5", Unit::Kg)));
    assert_eq!(
        e,
        DomainError::AlreadyExists {
            what: "lot",
            id: "G1".into()
        }
    );
    let e = w.err(consume("G1", q("5", Unit::Kg), "G1"));
    assert_invalid(&e, "outputs[0].lot_id");
    w.ok(receive("G2", GABAH, q("5", Unit::Kg)));
    let e = w.err(consume("G1", q("5", Unit::Kg), "G2"));
    assert!(
        matches!(&e, DomainError::AlreadyExists { what: "lot", id } if id == "G2"),
        "{e:?}"
    );
    let e = w.err(process(
        &[("G1", q("5", Unit::Kg))],
        &[("B1", BERAS, q("1", Unit::Kg)), ("B1", BERAS, q("1", Unit::Kg))],
    ));
    assert_invalid(&e, "outputs[1].lot_id");
    let e = w.err(process(
        &[("G1", q("5", Unit::Kg)), ("G1", q("1", Unit::Kg))],
        &[("B1", BERAS, q("1", Unit::Kg))],
    ));
    assert_invalid(&e, "inputs[1].lot_id");

    // A voided lot keeps its id.
    let g3 = w.ok(receive("G3", GABAH, q("5", Unit::Kg)));
    w.ok(void(&g3));
    let e = w.err(receive("G3", GABAH, q("5", Unit::Kg)));
    assert!(matches!(e, DomainError::AlreadyExists { what: "lot", .. }), "{e:?}");

    // A command id is used once.
    let e = w
        .run_as(&g3, receive("G4", GABAH, q("5", Unit::Kg)))
        .expect_err("reused command id");
    assert!(
        matches!(&e, DomainError::AlreadyExists { what: "event", id } if *id == g3),
        "{e:?}"
    );
    let e = w
        .run_as("bad id", receive("G4", GABAH, q("5", Unit::Kg)))
        .expect_err("malformed id");
    assert_invalid(&e, "command_id");
}

#[test]
fn outputs_without_owner_belong_to_the_first_inputs_owner() {
    let mut w = world_with_g1();
    w.ok(Command::ReceiveMaterial(MaterialReceived {
        owner_id: UKM2.into(),
        ..receipt("G2", GABAH, q("100", Unit::Kg))
    }));
    let mut cmd = processing(
        &[("G2", q("10", Unit::Kg)), ("G1", q("30", Unit::Kg))],
        &[("B1", BERAS, q("25", Unit::Kg)), ("B2", BERAS, q("10", Unit::Kg))],
    );
    cmd.outputs[1].owner_id = UKM.into();
    w.ok(Command::ProcessLots(cmd));
    match w.last_event() {
        Event::LotProcessed(p) => {
            assert_eq!(p.outputs[0].owner_id, UKM2, "defaulted to the first input's owner");
            assert_eq!(p.outputs[1].owner_id, UKM, "an explicit owner is kept");
            assert_eq!(p.occurred_at, Some(NOW));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(&*w.lot("B1").owner_id, UKM2);
    assert_eq!(&*w.lot("B2").owner_id, UKM);
    assert_eq!(&*w.lot("B1").facility_id, FAC);

    // An explicit owner must be a UKM.
    let mut cmd = processing(&[("G1", q("1", Unit::Kg))], &[("B3", BERAS, q("1", Unit::Kg))]);
    cmd.outputs[0].owner_id = SUP.into();
    let e = w.err(Command::ProcessLots(cmd));
    assert_rule(&e, Rule::PartyRole, "outputs[0].owner_id");
}

#[test]
fn lots_are_used_only_at_their_facility() {
    let mut w = world_with_g1();
    let e = w.err(Command::ProcessLots(LotProcessed {
        facility_id: FAC2.into(),
        ..processing(&[("G1", q("1", Unit::Kg))], &[("B1", BERAS, q("1", Unit::Kg))])
    }));
    assert_rule(
        &e,
        Rule::WrongFacility,
        "lot \"G1\" is at facility \"fac-demak\", not \"fac-kudus\"",
    );
    let e = w.err(Command::ShipLot(LotShipped {
        facility_id: FAC2.into(),
        ..shipment("G1", Some(q("1", Unit::Kg)), &[])
    }));
    assert_eq!(e.broken_rule(), Some(Rule::WrongFacility));
    let e = w.err(Command::ChangeLotStatus(LotStatusChanged {
        facility_id: FAC2.into(),
        lot_id: "G1".into(),
        status: LotStatus::OnHold,
        reason: "x".into(),
        occurred_at: None,
    }));
    assert_eq!(e.broken_rule(), Some(Rule::WrongFacility));
    let g1 = w.accepted.last().expect("the receipt").0.clone();
    let e = w.err(void_at(FAC2, &g1));
    assert_rule(&e, Rule::WrongFacility, "belongs to \"fac-demak\"");
    assert_eq!(w.balance("G1"), dec("1000"));
}

#[test]
fn occurred_at_must_be_plausible() {
    let mut w = World::new();
    let at = |t: Time| {
        Command::ReceiveMaterial(MaterialReceived {
            occurred_at: Some(t),
            ..receipt("G1", GABAH, q("1", Unit::Kg))
        })
    };
    let e = w.err(at(Time(NOW.0 + MAX_FUTURE_SKEW + 1)));
    assert_invalid(&e, "occurred_at");
    assert!(e.to_string().contains("future"), "{e}");
    let e = w.err(at(Time(EARLIEST.0 - 1)));
    assert_invalid(&e, "occurred_at");
    assert!(e.to_string().contains("2000"), "{e}");
    let e = w.err(Command::ChangeLotStatus(LotStatusChanged {
        facility_id: FAC.into(),
        lot_id: "G1".into(),
        status: LotStatus::OnHold,
        reason: "x".into(),
        occurred_at: Some(Time(0)),
    }));
    assert_invalid(&e, "occurred_at");

    // Both bounds are inclusive, and the time given is kept.
    w.ok(at(Time(NOW.0 + MAX_FUTURE_SKEW)));
    assert_eq!(w.last_event().occurred_at(), Some(Time(NOW.0 + MAX_FUTURE_SKEW)));
    w.ok(Command::ReceiveMaterial(MaterialReceived {
        occurred_at: Some(EARLIEST),
        ..receipt("G2", GABAH, q("1", Unit::Kg))
    }));
    assert_eq!(w.last_event().occurred_at(), Some(EARLIEST));
    // Without one, the recording time is the floor time.
    w.ok(receive("G3", GABAH, q("1", Unit::Kg)));
    assert_eq!(w.last_event().occurred_at(), Some(NOW));
}

// ---------------------------------------------------------------------------
// Corrections.

#[test]
fn a_receipt_is_voidable_only_while_its_lot_is_unused() {
    let mut w = World::new();
    let g1 = w.ok(receive("G1", GABAH, q("100", Unit::Kg)));
    let g2 = w.ok(receive("G2", GABAH, q("100", Unit::Kg)));
    let milled = w.ok(consume("G1", q("1", Unit::Kg), "B1"));
    let e = w.err(void(&g1));
    assert_rule(&e, Rule::NotVoidable, "\"G1\" has been used since");

    w.ok(void(&g2));
    assert!(w.lot("G2").voided);
    assert_eq!(w.balance("G2"), Decimal::ZERO);
    assert_not_usable(&mut w, "G2", "was voided");
    let e = w.err(status("G2", LotStatus::OnHold));
    assert_eq!(e.broken_rule(), Some(Rule::StatusTransition));

    // Once what used it is voided, the receipt can be voided as well.
    w.ok(void(&milled));
    w.ok(void(&g1));
    assert!(w.lot("G1").voided);
}

#[test]
fn voiding_a_processing_restores_inputs_and_voids_outputs() {
    let mut w = world_with_g1();
    w.ok(receive("G2", GABAH, q("3", Unit::T)));
    let milled = w.ok(process(
        &[("G1", q("400", Unit::Kg)), ("G2", q("1.5", Unit::T))],
        &[("B1", BERAS, q("1200", Unit::Kg)), ("B2", BERAS, q("300", Unit::Kg))],
    ));
    assert_eq!((w.balance("G1"), w.balance("G2")), (dec("600"), dec("1500")));
    let state_after_milling = w.state.clone();

    w.ok(pack("B1", &[("S1", q("5", Unit::Kg))]));
    let e = w.err(void(&milled));
    assert_rule(&e, Rule::NotVoidable, "\"B1\" has been used since");
    let pack_id = w.accepted.last().expect("the pack").0.clone();
    w.ok(void(&pack_id));

    w.ok(void(&milled));
    assert_eq!((w.balance("G1"), w.balance("G2")), (dec("1000"), dec("3000")));
    for out in ["B1", "B2"] {
        assert!(w.lot(out).voided);
        assert_eq!(w.balance(out), Decimal::ZERO);
        assert_not_usable(&mut w, out, "was voided");
    }
    assert_ne!(w.state, state_after_milling);
    // The inputs can be used in full again; the outputs' ids stay taken.
    w.ok(consume("G1", q("1000", Unit::Kg), "B3"));
    let e = w.err(consume("G2", q("1", Unit::Kg), "B1"));
    assert!(matches!(e, DomainError::AlreadyExists { what: "lot", .. }), "{e:?}");
}

fn assert_invalid_void_reason(w: &mut World, event: &str) {
    let e = w.err(Command::VoidEvent(EventVoided {
        facility_id: FAC.into(),
        voided_event_id: event.into(),
        reason: "  ".into(),
        replacement_event_id: None,
        occurred_at: None,
    }));
    assert_invalid(&e, "reason");
}

#[test]
fn voiding_a_pack_or_a_shipment_restores_the_balance() {
    let mut w = World::new();
    w.ok(receive("B1", BERAS, q("100", Unit::Kg)));
    let packed = w.ok(pack("B1", &[("S1", q("5", Unit::Kg)), ("S2", q("5000", Unit::G))]));
    assert_eq!(w.balance("B1"), dec("90"));
    let bulk = w.ok(ship("B1", Some(q("20", Unit::Kg)), &[]));
    assert_eq!((w.balance("B1"), w.lot("B1").in_transit), (dec("70"), dec("20")));

    assert_invalid_void_reason(&mut w, &bulk);
    w.ok(void(&bulk));
    assert_eq!((w.balance("B1"), w.lot("B1").in_transit), (dec("90"), Decimal::ZERO));

    let shipped = w.ok(ship("B1", None, &["S1"]));
    let e = w.err(void(&packed));
    assert_rule(&e, Rule::NotVoidable, "package \"S1\" has been shipped");
    w.ok(void(&shipped));
    // The package can be shipped again once its shipment is voided.
    w.ok(ship("B1", None, &["S1"]));
    let reshipped = w.accepted.last().expect("the shipment").0.clone();
    w.ok(void(&reshipped));

    w.ok(void(&packed));
    assert_eq!(w.balance("B1"), dec("100"));
    assert_eq!(w.lot("B1").quantity, dec("100"));
    let e = w.err(ship("B1", None, &["S2"]));
    assert_not_found(&e, "package serial", "S2");
    // Serials of a voided pack are not handed out again.
    let e = w.err(pack("B1", &[("S2", q("1", Unit::Kg))]));
    assert!(
        matches!(
            e,
            DomainError::AlreadyExists {
                what: "package serial",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn an_event_is_voided_at_most_once_and_corrections_stay() {
    let mut w = world_with_g1();
    let hold = w.ok(status("G1", LotStatus::OnHold));
    let correction = w.ok(void(&hold));
    let e = w.err(void(&hold));
    assert_rule(&e, Rule::NotVoidable, "already voided");
    let e = w.err(void(&correction));
    assert_rule(&e, Rule::NotVoidable, "a correction cannot itself be voided");
    // Master data is corrected by registering again, never voided: the
    // facility's own registration (cmd-7, on the facility's chain) ...
    let e = w.err(void("cmd-7"));
    assert_rule(
        &e,
        Rule::NotVoidable,
        "master data is corrected by registering a new record",
    );
    // ... and a party's (cmd-1), which is on the registry's chain, not the facility's.
    let e = w.err(void("cmd-1"));
    assert_rule(&e, Rule::WrongFacility, "belongs to");
    // A void names a replacement that exists and is not itself.
    let replacement = w.ok(status("G1", LotStatus::OnHold));
    let Command::VoidEvent(mut v) = void(&replacement) else {
        unreachable!("void builds a void")
    };
    v.replacement_event_id = Some(replacement.clone());
    let e = w.err(Command::VoidEvent(v));
    assert_invalid(&e, "replacement_event_id");
}

// ---------------------------------------------------------------------------
// Transfers between facilities.

/// A receipt at the second facility of `quantity` shipped from `source`.
fn transfer(lot: &str, source: &str, quantity: Quantity) -> Command {
    Command::ReceiveMaterial(MaterialReceived {
        facility_id: FAC2.into(),
        supplier_id: OP.into(),
        source_lot_id: Some(source.into()),
        ..receipt(lot, GABAH, quantity)
    })
}

#[test]
fn a_transfer_receives_at_most_what_was_shipped_and_not_yet_received() {
    let mut w = world_with_g1();
    let e = w.err(transfer("K1", "G1", q("1", Unit::Kg)));
    assert_rule(
        &e,
        Rule::NotInTransit,
        "has 0 kg shipped to \"op-kudus\" (the operator of facility \"fac-kudus\") and not yet received",
    );

    let shipped = w.ok(Command::ShipLot(LotShipped {
        consignee_id: OP2.into(),
        ..shipment("G1", Some(q("600", Unit::Kg)), &[])
    }));
    assert_eq!((w.balance("G1"), w.lot("G1").in_transit), (dec("400"), dec("600")));
    let e = w.err(transfer("K1", "G1", q("0.7", Unit::T)));
    assert_rule(
        &e,
        Rule::NotInTransit,
        "\"G1\" has 600 kg shipped to \"op-kudus\" (the operator of facility \"fac-kudus\") and not yet received; cannot receive 0.7 t",
    );
    // A transfer links two facilities.
    let e = w.err(Command::ReceiveMaterial(MaterialReceived {
        source_lot_id: Some("G1".into()),
        supplier_id: OP.into(),
        ..receipt("K1", GABAH, q("1", Unit::Kg))
    }));
    assert_eq!(e.broken_rule(), Some(Rule::WrongFacility));
    let e = w.err(transfer("K1", "G1", q("1", Unit::Pcs)));
    assert_eq!(e.broken_rule(), Some(Rule::UnitMismatch));

    let first = w.ok(transfer("K1", "G1", q("400", Unit::Kg)));
    assert_eq!(w.lot("G1").in_transit, dec("200"));
    assert_eq!(&*w.lot("K1").facility_id, FAC2);
    assert_eq!(w.balance("K1"), dec("400"));
    let e = w.err(transfer("K2", "G1", q("250", Unit::Kg)));
    assert_rule(&e, Rule::NotInTransit, "has 200 kg shipped");
    w.ok(transfer("K2", "G1", q("200000", Unit::G)));
    assert_eq!(w.lot("G1").in_transit, Decimal::ZERO);

    // The shipment was received, so it cannot be voided; nor can the source
    // lot's receipt, since the lot was shipped from.
    let e = w.err(void(&shipped));
    assert_rule(&e, Rule::NotVoidable, "received at another facility");
    // Voiding a transfer receipt puts its quantity back in transit.
    w.ok(void_at(FAC2, &first));
    assert_eq!(w.lot("G1").in_transit, dec("400"));
    assert!(w.lot("K1").voided);
    w.ok(transfer("K3", "G1", q("400", Unit::Kg)));
    assert_eq!(w.lot("G1").in_transit, Decimal::ZERO);
    assert_eq!(w.balance("G1"), dec("400"));
}

#[test]
fn only_a_shipment_to_the_receiving_facility_can_be_received_there_as_the_same_product() {
    let mut w = world_with_g1();
    // Shipped to a customer: on its way to no facility.
    let to_customer = w.ok(Command::ShipLot(LotShipped {
        consignee_id: CUST.into(),
        ..shipment("G1", Some(q("300", Unit::Kg)), &[])
    }));
    assert_eq!(w.lot("G1").in_transit, dec("300"));
    let e = w.err(transfer("K1", "G1", q("1", Unit::Kg)));
    assert_rule(&e, Rule::NotInTransit, "has 0 kg shipped to \"op-kudus\"");
    // Shipped to Kudus: received there, but only as the product it is.
    w.ok(Command::ShipLot(LotShipped {
        consignee_id: OP2.into(),
        ..shipment("G1", Some(q("100", Unit::Kg)), &[])
    }));
    let e = w.err(Command::ReceiveMaterial(MaterialReceived {
        facility_id: FAC2.into(),
        supplier_id: OP.into(),
        source_lot_id: Some("G1".into()),
        ..receipt("K1", BERAS, q("100", Unit::Kg))
    }));
    assert_rule(&e, Rule::ProductMismatch, "the same product, not \"beras\"");
    assert!(w.err(transfer("K1", "G1", q("101", Unit::Kg))).broken_rule() == Some(Rule::NotInTransit));
    w.ok(transfer("K1", "G1", q("100", Unit::Kg)));
    // Nothing forged was received, so the customer's shipment stays voidable.
    w.ok(void(&to_customer));
    assert_eq!((w.balance("G1"), w.lot("G1").in_transit), (dec("900"), Decimal::ZERO));
}

// ---------------------------------------------------------------------------
// Properties over random command sequences.

/// A unit for a quantity of something counted in `natural`: usually one of
/// its dimension (kg, g or t for mass), one pick in eight of another dimension.
fn unit_for(natural: Unit, pick: usize) -> Unit {
    const MASS: [Unit; 7] = [Unit::Kg, Unit::Kg, Unit::Kg, Unit::G, Unit::T, Unit::Kg, Unit::G];
    match (pick % 8, natural.dimension()) {
        (7, crate::quantity::Dimension::Mass) if pick % 16 == 7 => Unit::Pcs,
        (7, crate::quantity::Dimension::Mass) => Unit::L,
        (7, _) => Unit::Kg,
        (i, crate::quantity::Dimension::Mass) => MASS[i],
        _ => natural,
    }
}

/// `hundredths / 100` base units, written in `unit` (so g and t quantities
/// are of the same size as kg ones, and mass balance is hit in every unit).
fn amount(hundredths: u32, unit: Unit) -> Quantity {
    let value = match unit {
        Unit::G => Decimal::new(i64::from(hundredths) * 10, 0),
        Unit::T => Decimal::new(i64::from(hundredths), 5),
        _ => Decimal::new(i64::from(hundredths), 2),
    };
    Quantity::new("quantity", value, unit).expect("positive amount")
}

/// A random operation; `usize` fields pick among what exists when it runs
/// (lots, serials, events, units), so most commands name real things.
#[derive(Debug, Clone)]
enum Op {
    Receive {
        counted: bool,
        hundredths: u32,
        unit: usize,
        second_facility: bool,
        other_owner: bool,
    },
    /// A receipt of a lot in transit from the other facility.
    Transfer {
        source: usize,
        hundredths: u32,
        unit: usize,
    },
    Process {
        inputs: Vec<(usize, u32, usize)>,
        outputs: Vec<(usize, u32, usize)>,
        other_facility: bool,
        reuse_lot: Option<usize>,
    },
    Pack {
        lot: usize,
        packages: Vec<(u32, usize)>,
        reuse_serial: Option<usize>,
    },
    Ship {
        lot: usize,
        bulk: Option<(u32, usize)>,
        serials: Vec<usize>,
        any_serial: bool,
    },
    Status {
        lot: usize,
        status: usize,
    },
    Inspect {
        lot: usize,
        verdict: usize,
    },
    Void {
        event: usize,
        master_data: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let pick = any::<usize>();
    prop_oneof![
        3 => (any::<bool>(), 100u32..10_000, pick, proptest::bool::weighted(0.3), any::<bool>()).prop_map(
            |(counted, hundredths, unit, second_facility, other_owner)| Op::Receive {
                counted,
                hundredths,
                unit,
                second_facility,
                other_owner
            }
        ),
        2 => (pick, 1u32..6_000, pick)
            .prop_map(|(source, hundredths, unit)| Op::Transfer { source, hundredths, unit }),
        5 => (
            proptest::collection::vec((pick, 1u32..6_000, pick), 1..4),
            proptest::collection::vec((0usize..3, 1u32..6_000, pick), 1..3),
            proptest::bool::weighted(0.05),
            proptest::option::weighted(0.05, pick),
        )
            .prop_map(|(inputs, outputs, other_facility, reuse_lot)| Op::Process {
                inputs,
                outputs,
                other_facility,
                reuse_lot
            }),
        2 => (
            pick,
            proptest::collection::vec((1u32..3_000, pick), 1..4),
            proptest::option::weighted(0.05, pick)
        )
            .prop_map(|(lot, packages, reuse_serial)| Op::Pack { lot, packages, reuse_serial }),
        2 => (
            pick,
            proptest::option::weighted(0.7, (1u32..6_000, pick)),
            proptest::collection::vec(pick, 0..3),
            proptest::bool::weighted(0.1),
        )
            .prop_map(|(lot, bulk, serials, any_serial)| Op::Ship { lot, bulk, serials, any_serial }),
        1 => (pick, 0usize..5).prop_map(|(lot, status)| Op::Status { lot, status }),
        1 => (pick, 0usize..3).prop_map(|(lot, verdict)| Op::Inspect { lot, verdict }),
        2 => (pick, proptest::bool::weighted(0.05)).prop_map(|(event, master_data)| Op::Void { event, master_data }),
    ]
}

/// Runs random operations as commands, keeping what the generator needs to
/// name existing lots, serials and events.
struct Run {
    world: World,
    lots: Vec<String>,
    /// Serials with the lot they were packed from.
    serials: Vec<(String, String)>,
    counter: u32,
}

impl Run {
    /// Starts with a lot of paddy and one of sacks, so early operations have
    /// something to work on.
    fn new() -> Run {
        let mut world = World::new();
        world.ok(receive("R-gabah", GABAH, q("50", Unit::Kg)));
        world.ok(receive("R-karung", KARUNG, q("100", Unit::Pcs)));
        Run {
            world,
            lots: vec!["R-gabah".into(), "R-karung".into()],
            serials: Vec::new(),
            counter: 0,
        }
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{}", self.counter)
    }

    fn pick<T: Clone>(list: &[T], i: usize) -> Option<T> {
        (!list.is_empty()).then(|| list[i % list.len()].clone())
    }

    /// Whether a lot can still be used, so picks can favour it.
    fn live(&self, lot: &str) -> bool {
        self.world
            .state
            .lot(lot)
            .is_some_and(|l| l.unusable_reason().is_none() && l.balance > Decimal::ZERO)
    }

    /// Three picks in four name a usable lot (if any), the rest any lot.
    fn lot_pick(&self, i: usize) -> String {
        let live: Vec<String> = self.lots.iter().filter(|l| self.live(l)).cloned().collect();
        let from = if i % 4 == 0 || live.is_empty() {
            &self.lots
        } else {
            &live
        };
        Self::pick(from, i / 4).unwrap_or_else(|| "L-none".into())
    }

    /// A usable lot at `facility`, or any lot if there is none there.
    fn lot_pick_at(&self, i: usize, facility: &str) -> String {
        let here: Vec<String> = self
            .lots
            .iter()
            .filter(|l| self.live(l) && self.lot_facility(l) == facility)
            .cloned()
            .collect();
        Self::pick(&here, i).unwrap_or_else(|| self.lot_pick(i))
    }

    fn lot_facility(&self, lot: &str) -> String {
        self.world
            .state
            .lot(lot)
            .map_or_else(|| FAC.to_string(), |l| l.facility_id.to_string())
    }

    fn lot_unit(&self, lot: &str) -> Unit {
        self.world.state.lot(lot).map_or(Unit::Kg, |l| l.unit)
    }

    fn command(&mut self, op: &Op) -> Command {
        match op.clone() {
            Op::Receive {
                counted,
                hundredths,
                unit,
                second_facility,
                other_owner,
            } => {
                let product = if counted { KARUNG } else { GABAH };
                let unit = unit_for(if counted { Unit::Pcs } else { Unit::Kg }, unit);
                let lot = self.fresh("R");
                Command::ReceiveMaterial(MaterialReceived {
                    facility_id: if second_facility { FAC2 } else { FAC }.into(),
                    owner_id: if other_owner { UKM2 } else { UKM }.into(),
                    ..receipt(&lot, product, amount(hundredths, unit))
                })
            }
            Op::Transfer {
                source,
                hundredths,
                unit,
            } => {
                // Mostly from a lot with something in transit.
                let moving: Vec<String> = self
                    .lots
                    .iter()
                    .filter(|l| self.world.state.lot(l).is_some_and(|l| l.in_transit > Decimal::ZERO))
                    .cloned()
                    .collect();
                let source = Self::pick(&moving, source).unwrap_or_else(|| self.lot_pick(source));
                let from = self.lot_facility(&source);
                let (to, operator) = if from == FAC { (FAC2, OP) } else { (FAC, OP2) };
                let product = self
                    .world
                    .state
                    .lot(&source)
                    .map_or_else(|| GABAH.to_string(), |l| l.product_id.to_string());
                let unit = unit_for(self.lot_unit(&source), unit);
                let lot = self.fresh("T");
                Command::ReceiveMaterial(MaterialReceived {
                    facility_id: to.into(),
                    supplier_id: operator.into(),
                    source_lot_id: Some(source),
                    ..receipt(&lot, &product, amount(hundredths, unit))
                })
            }
            Op::Process {
                inputs,
                outputs,
                other_facility,
                reuse_lot,
            } => {
                let first = self.lot_pick(inputs[0].0);
                let facility = self.lot_facility(&first);
                let mut lots: Vec<(String, Quantity)> = Vec::new();
                for (i, (pick, h, u)) in inputs.iter().enumerate() {
                    let lot = if i == 0 {
                        first.clone()
                    } else {
                        self.lot_pick_at(*pick, &facility)
                    };
                    if lots.iter().any(|(l, _)| *l == lot) {
                        continue;
                    }
                    let unit = unit_for(self.lot_unit(&lot), *u);
                    lots.push((lot, amount(*h, unit)));
                }
                let mut outs: Vec<(String, &str, Quantity)> = Vec::new();
                for (product, h, u) in &outputs {
                    let (product, natural) = [(GABAH, Unit::Kg), (BERAS, Unit::Kg), (KARUNG, Unit::Pcs)][*product];
                    outs.push((self.fresh("P"), product, amount(*h, unit_for(natural, *u))));
                }
                if let Some(i) = reuse_lot {
                    outs[0].0 = self.lot_pick(i);
                }
                let facility = match (other_facility, facility == FAC) {
                    (false, _) => facility,
                    (true, true) => FAC2.to_string(),
                    (true, false) => FAC.to_string(),
                };
                let inputs: Vec<(&str, Quantity)> = lots.iter().map(|(l, q)| (l.as_str(), *q)).collect();
                let outputs: Vec<(&str, &str, Quantity)> = outs.iter().map(|(l, p, q)| (l.as_str(), *p, *q)).collect();
                Command::ProcessLots(LotProcessed {
                    facility_id: facility,
                    ..processing(&inputs, &outputs)
                })
            }
            Op::Pack {
                lot,
                packages,
                reuse_serial,
            } => {
                let lot = self.lot_pick(lot);
                let natural = self.lot_unit(&lot);
                let mut packages: Vec<(String, Quantity)> = packages
                    .iter()
                    .map(|(h, u)| (self.fresh("S"), amount(*h, unit_for(natural, *u))))
                    .collect();
                if let Some((serial, _)) = reuse_serial.and_then(|i| Self::pick(&self.serials, i)) {
                    packages[0].0 = serial;
                }
                let facility = self.lot_facility(&lot);
                let packages: Vec<(&str, Quantity)> = packages.iter().map(|(s, q)| (s.as_str(), *q)).collect();
                match pack(&lot, &packages) {
                    Command::PackLot(p) => Command::PackLot(LotPacked {
                        facility_id: facility,
                        ..p
                    }),
                    _ => unreachable!("pack builds a pack"),
                }
            }
            Op::Ship {
                lot,
                bulk,
                serials,
                any_serial,
            } => {
                let lot = self.lot_pick(lot);
                // Mostly serials packed from the lot shipped.
                let own: Vec<String> = self
                    .serials
                    .iter()
                    .filter(|(_, l)| any_serial || *l == lot)
                    .map(|(s, _)| s.clone())
                    .collect();
                let serials: Vec<String> = serials.iter().filter_map(|i| Self::pick(&own, *i)).collect();
                let serials: Vec<&str> = serials.iter().map(String::as_str).collect();
                let natural = self.lot_unit(&lot);
                // Name something to ship, packages or bulk.
                let bulk = bulk.or_else(|| serials.is_empty().then_some((100, 0)));
                Command::ShipLot(LotShipped {
                    facility_id: self.lot_facility(&lot),
                    ..shipment(&lot, bulk.map(|(h, u)| amount(h, unit_for(natural, u))), &serials)
                })
            }
            Op::Status { lot, status: s } => {
                let lot = self.lot_pick(lot);
                let s = [
                    LotStatus::OnHold,
                    LotStatus::Released,
                    LotStatus::Recalled,
                    LotStatus::Disposed,
                    LotStatus::Active,
                ][s];
                match status(&lot, s) {
                    Command::ChangeLotStatus(c) => Command::ChangeLotStatus(LotStatusChanged {
                        facility_id: self.lot_facility(&lot),
                        ..c
                    }),
                    _ => unreachable!("status builds a status change"),
                }
            }
            Op::Inspect { lot, verdict } => {
                let lot = self.lot_pick(lot);
                let cmd = match verdict {
                    0 => conformant(&lot),
                    1 => non_conformant(&lot),
                    _ => inspect(&lot, "13", None),
                };
                match cmd {
                    Command::InspectLot(c) => Command::InspectLot(InspectLot {
                        facility_id: self.lot_facility(&lot),
                        ..c
                    }),
                    _ => unreachable!("inspect builds an inspection"),
                }
            }
            Op::Void {
                event,
                master_data: any,
            } => {
                let accepted = &self.world.accepted;
                let registered = master_data().len();
                let (id, ev) = if any || accepted.len() == registered {
                    &accepted[event % accepted.len()]
                } else {
                    &accepted[registered + event % (accepted.len() - registered)]
                };
                let facility = match ev.chain() {
                    REGISTRY_CHAIN => FAC.to_string(),
                    chain => chain.to_string(),
                };
                void_at(&facility, id)
            }
        }
    }

    /// Runs one operation; returns whether it was accepted.
    fn step(&mut self, op: &Op) -> bool {
        let cmd = self.command(op);
        if self.world.run(cmd).is_err() {
            return false;
        }
        match self.world.last_event() {
            Event::MaterialReceived(r) => self.lots.push(r.lot_id.clone()),
            Event::LotProcessed(p) => self.lots.extend(p.outputs.iter().map(|o| o.lot_id.clone())),
            Event::LotPacked(p) => {
                let lot = p.lot_id.clone();
                self.serials
                    .extend(p.packages.iter().map(|p| (p.serial.clone(), lot.clone())));
            }
            _ => {}
        }
        true
    }
}

/// Balances and quantities in transit computed directly from the accepted
/// events: each lot starts with what it was received or produced with, and
/// every use not voided takes its share. Lots made by voided events have nothing.
fn expected_balances(events: &[(String, Event)]) -> HashMap<String, (Decimal, Decimal)> {
    let voided: HashSet<&str> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::EventVoided(v) => Some(v.voided_event_id.as_str()),
            _ => None,
        })
        .collect();
    let mut lots: HashMap<String, (Decimal, Decimal)> = HashMap::new();
    for (id, event) in events {
        let live = !voided.contains(id.as_str());
        match event {
            Event::MaterialReceived(r) => {
                let base = r.quantity.to_base();
                lots.insert(
                    r.lot_id.clone(),
                    (if live { base } else { Decimal::ZERO }, Decimal::ZERO),
                );
                if let (true, Some(src)) = (live, &r.source_lot_id) {
                    lots.get_mut(src).expect("source lot").1 -= base;
                }
            }
            Event::LotProcessed(p) => {
                for input in p.inputs.iter().filter(|_| live) {
                    lots.get_mut(&input.lot_id).expect("input lot").0 -= input.quantity.to_base();
                }
                for out in &p.outputs {
                    let base = if live { out.quantity.to_base() } else { Decimal::ZERO };
                    lots.insert(out.lot_id.clone(), (base, Decimal::ZERO));
                }
            }
            Event::LotPacked(p) if live => {
                let total: Decimal = p.packages.iter().map(|p| p.quantity.to_base()).sum();
                lots.get_mut(&p.lot_id).expect("packed lot").0 -= total;
            }
            Event::LotShipped(s) if live => {
                let bulk = s.quantity.map_or(Decimal::ZERO, |q| q.to_base());
                let lot = lots.get_mut(&s.lot_id).expect("shipped lot");
                lot.0 -= bulk;
                lot.1 += bulk;
            }
            _ => {}
        }
    }
    lots
}

fn check_balances(run: &Run) -> Result<(), TestCaseError> {
    let state = &run.world.state;
    prop_assert!(state.balances_hold());
    let expected = expected_balances(&run.world.accepted);
    prop_assert_eq!(expected.len(), state.lot_count());
    for (id, (balance, in_transit)) in &expected {
        let lot = state.lot(id).expect("every lot of an event is in the state");
        prop_assert_eq!(lot.balance, *balance, "balance of {}", id);
        prop_assert_eq!(lot.in_transit, *in_transit, "in transit of {}", id);
        prop_assert!(lot.balance >= Decimal::ZERO && lot.balance <= lot.quantity);
        prop_assert!(lot.in_transit >= Decimal::ZERO);
        prop_assert!(
            lot.balance + lot.in_transit <= lot.quantity,
            "{} ships more than it has",
            id
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn mass_balance_never_goes_negative(ops in proptest::collection::vec(op(), 1..60)) {
        let mut run = Run::new();
        for op in &ops {
            // `World::run` checks a refused command left the state as it was.
            run.step(op);
            check_balances(&run)?;
        }
    }

    #[test]
    fn replaying_accepted_events_rebuilds_the_live_state(ops in proptest::collection::vec(op(), 1..60)) {
        let mut run = Run::new();
        let accepted = ops.iter().filter(|op| run.step(op)).count();
        prop_assert_eq!(run.world.accepted.len(), accepted + master_data().len() + 2);
        let mut replayed = State::new();
        for (id, event) in &run.world.accepted {
            replayed.apply(id, event);
        }
        prop_assert!(replayed == run.world.state, "replayed state differs from the live one");
        prop_assert_eq!(replayed.event_count(), run.world.accepted.len());
        // A state replayed from the log decides the next command the same way.
        let probe = Op::Process {
            inputs: vec![(ops.len(), 100, 0)],
            outputs: vec![(1, 100, 0)],
            other_facility: false,
            reuse_lot: None,
        };
        let cmd = run.command(&probe);
        prop_assert_eq!(replayed.decide("probe", cmd.clone(), NOW), run.world.state.decide("probe", cmd, NOW));
    }
}

#[test]
fn the_shared_scenario_is_what_the_write_model_decides() {
    // The scenario the genealogy and end-to-end tests use: each of its
    // events is exactly what deciding its command gives, in order.
    let scenario = crate::scenario::rice_mill();
    let mut state = State::new();
    for (i, (id, event)) in scenario.events.iter().enumerate() {
        let now = Time(crate::scenario::Scenario::at(i).0 + 60 * Time::NANOS_PER_SEC);
        let decided = state
            .decide(id, Command::from(event.clone()), now)
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(&decided, event, "{id}");
        state.apply(id, &decided);
    }
    assert_eq!(scenario.commands().len(), scenario.events.len());
}

// ---------------------------------------------------------------------------
// Timber legality (SVLK).

fn legality_doc(kind: &str, reference: &str, until: Time) -> Document {
    Document {
        kind: kind.into(),
        reference: reference.into(),
        blake3: *blake3::hash(reference.as_bytes()).as_bytes(),
        issuer: "Dinas LHK Jawa Tengah".into(),
        valid_from: None,
        valid_until: Some(until),
    }
}

#[test]
fn timber_needs_valid_legality_and_transport_documents_where_the_facility_requires_them() {
    let mut w = World::new();
    let mut workshop = facility("fac-klaten", OP);
    workshop.sector = Sector::Furniture;
    workshop.requires_legality = true;
    w.ok(Command::RegisterFacility(workshop));
    let mut log = product("log-jati", Unit::M3, None);
    log.sector = Sector::Furniture;
    w.ok(Command::RegisterProduct(log));
    let day = Time(86_400 * Time::NANOS_PER_SEC);
    let timber = |lot: &str, documents: Vec<Document>| {
        let mut r = receipt(lot, "log-jati", q("4.8", Unit::M3));
        r.facility_id = "fac-klaten".into();
        r.documents = documents;
        Command::ReceiveMaterial(r)
    };
    let later = Time(NOW.0 + day.0);
    let earlier = Time(NOW.0 - day.0);

    let e = w.err(timber("T1", Vec::new()));
    assert_rule(
        &e,
        Rule::TimberLegality,
        "a legality document (svlk-certificate or dkp) and a transport document",
    );
    let e = w.err(timber("T1", vec![legality_doc("dkp", "DKP-1", later)]));
    assert_rule(
        &e,
        Rule::TimberLegality,
        "a transport document (skshh or nota-angkutan)",
    );
    let e = w.err(timber(
        "T1",
        vec![
            legality_doc("dkp", "DKP-1", earlier),
            legality_doc("nota-angkutan", "NA-1", later),
        ],
    ));
    assert_rule(&e, Rule::TimberLegality, "dkp \"DKP-1\" is not valid then");
    w.ok(timber(
        "T1",
        vec![
            legality_doc("svlk-certificate", "S-LK-1", later),
            legality_doc("nota-angkutan", "NA-1", later),
        ],
    ));
    // A facility that does not require them, or a product that is not raw timber: no rule.
    w.ok(receive("G9", GABAH, q("10", Unit::Kg)));
}
