//! One scenario builder for the tests of every layer: the domain decides
//! its commands, the genealogy projects its events, and the end-to-end
//! tests capture it over gRPC, so each layer is checked against the same
//! story. Events are built by hand with their ids; [`Command::from`] turns
//! each into the command a client would send.
//!
//! Compiled for tests and with the `scenario` feature only.

use crate::gs1::Gtin;
use crate::{
    Decimal, Document, Event, EventVoided, Facility, GeoPoint, LotInput, LotInspected, LotOutput, LotPacked,
    LotProcessed, LotShipped, LotStatus, LotStatusChanged, MaterialReceived, Measurement, Origin, Package, Parameter,
    Party, PartyRole, Product, ProductKind, QualityStandard, Quantity, Sector, Time, Unit, Verdict,
};

/// The GTIN of the rice in [`rice_mill`]'s bags, and one no product has.
pub const BERAS_GTIN: &str = "08991234567891";
pub const OTHER_GTIN: &str = "04006381333931";
/// 2025-06-01T00:00:00Z; event `i` happens `i` hours later.
pub const T0: i64 = 1_748_736_000;

pub fn q(value: &str, unit: Unit) -> Quantity {
    Quantity::parse("quantity", value, unit).expect("valid test quantity")
}

pub fn dec(s: &str) -> Decimal {
    s.parse().expect("valid test decimal")
}

pub fn gtin(s: &str) -> Gtin {
    Gtin::parse(s).expect("valid test gtin")
}

/// The events of a scenario, in log order, with their ids (the ids of the
/// commands that record them).
#[derive(Debug, Default, Clone)]
pub struct Scenario {
    pub events: Vec<(String, Event)>,
}

impl Scenario {
    /// When the `i`-th event (0-based) happened on the floor.
    pub fn at(i: usize) -> Time {
        Time::from_unix(T0 + 3600 * i as i64, 0).expect("in range")
    }

    pub fn next_at(&self) -> Option<Time> {
        Some(Self::at(self.events.len()))
    }

    pub fn push(&mut self, id: &str, event: Event) -> &mut Self {
        self.events.push((id.into(), event));
        self
    }

    pub fn position(&self, id: &str) -> u64 {
        self.events
            .iter()
            .position(|(e, _)| e == id)
            .map(|i| i as u64 + 1)
            .unwrap_or_else(|| panic!("no event {id:?}"))
    }

    pub fn party(&mut self, id: &str, name: &str, roles: &[PartyRole]) -> &mut Self {
        self.push(
            &format!("reg-{id}"),
            Event::PartyRegistered(Party {
                id: id.into(),
                name: name.into(),
                roles: roles.to_vec(),
                district: "Demak".into(),
                contact: "+62 291 000".into(),
                gln: None,
            }),
        )
    }

    pub fn facility(&mut self, id: &str, name: &str, operator: &str) -> &mut Self {
        self.push(
            &format!("reg-{id}"),
            Event::FacilityRegistered(Facility {
                id: id.into(),
                name: name.into(),
                sector: Sector::Rice,
                district: "Demak".into(),
                operator_id: operator.into(),
                location: None,
                gln: None,
                requires_legality: false,
            }),
        )
    }

    pub fn product(&mut self, id: &str, name: &str, unit: Unit, gtin_digits: Option<&str>) -> &mut Self {
        self.push(
            &format!("reg-{id}"),
            Event::ProductRegistered(Product {
                id: id.into(),
                name: name.into(),
                sector: Sector::Rice,
                kind: ProductKind::Raw,
                unit,
                gtin: gtin_digits.map(gtin),
            }),
        )
    }

    /// A receipt of `lot`, as event `rcv-{lot in lower case}`.
    pub fn receive(
        &mut self,
        facility: &str,
        lot: &str,
        product: &str,
        qty: Quantity,
        owner: &str,
        supplier: &str,
    ) -> &mut Self {
        let at = self.next_at();
        self.push(
            &format!("rcv-{}", lot.to_lowercase()),
            Event::MaterialReceived(MaterialReceived {
                lot_id: lot.into(),
                facility_id: facility.into(),
                product_id: product.into(),
                quantity: qty,
                owner_id: owner.into(),
                supplier_id: supplier.into(),
                origin: Origin {
                    place: format!("Desa {lot}"),
                    plot_id: String::new(),
                    plot: None,
                    area_ha: None,
                    geometry: None,
                    producer_country: String::new(),
                },
                documents: Vec::new(),
                source_lot_id: None,
                occurred_at: at,
            }),
        )
    }

    pub fn process(
        &mut self,
        id: &str,
        step: &str,
        inputs: &[(&str, Quantity)],
        outputs: &[(&str, &str, Quantity, &str)],
    ) -> &mut Self {
        let at = self.next_at();
        self.push(
            id,
            Event::LotProcessed(LotProcessed {
                facility_id: DEMAK.into(),
                process_step: step.into(),
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
                    .map(|(lot, product, quantity, owner)| LotOutput {
                        lot_id: (*lot).into(),
                        product_id: (*product).into(),
                        quantity: *quantity,
                        owner_id: (*owner).into(),
                    })
                    .collect(),
                occurred_at: at,
            }),
        )
    }

    pub fn pack(&mut self, id: &str, lot: &str, packages: &[(&str, Quantity)]) -> &mut Self {
        let at = self.next_at();
        self.push(
            id,
            Event::LotPacked(LotPacked {
                facility_id: DEMAK.into(),
                lot_id: lot.into(),
                gtin: gtin(BERAS_GTIN),
                packages: packages
                    .iter()
                    .map(|(serial, quantity)| Package {
                        serial: (*serial).into(),
                        quantity: *quantity,
                    })
                    .collect(),
                occurred_at: at,
            }),
        )
    }

    pub fn ship(
        &mut self,
        id: &str,
        lot: &str,
        bulk: Option<Quantity>,
        serials: &[&str],
        consignee: &str,
        doc: &str,
    ) -> &mut Self {
        let at = self.next_at();
        self.push(
            id,
            Event::LotShipped(LotShipped {
                facility_id: DEMAK.into(),
                lot_id: lot.into(),
                quantity: bulk,
                package_serials: serials.iter().map(|s| (*s).into()).collect(),
                consignee_id: consignee.into(),
                document: doc.into(),
                occurred_at: at,
                dds_reference: String::new(),
            }),
        )
    }

    pub fn inspect(
        &mut self,
        id: &str,
        facility: &str,
        lot: &str,
        moisture: &str,
        verdict: Verdict,
        findings: &[&str],
    ) -> &mut Self {
        let at = self.next_at();
        let m = |parameter: &str, value: &str| Measurement {
            parameter: parameter.into(),
            value: dec(value),
            unit: "%".into(),
        };
        self.push(
            id,
            Event::LotInspected(LotInspected {
                lot_id: lot.into(),
                facility_id: facility.into(),
                standard_id: STD.into(),
                measurements: vec![m("moisture", moisture), m("broken", "10")],
                verdict,
                findings: findings.iter().map(|f| (*f).into()).collect(),
                inspector: "Budi".into(),
                occurred_at: at,
            }),
        )
    }

    pub fn status(&mut self, id: &str, lot: &str, status: LotStatus, reason: &str) -> &mut Self {
        let at = self.next_at();
        self.push(
            id,
            Event::LotStatusChanged(LotStatusChanged {
                facility_id: DEMAK.into(),
                lot_id: lot.into(),
                status,
                reason: reason.into(),
                occurred_at: at,
            }),
        )
    }

    pub fn void(&mut self, id: &str, facility: &str, voided: &str, reason: &str) -> &mut Self {
        let at = self.next_at();
        self.push(
            id,
            Event::EventVoided(EventVoided {
                facility_id: facility.into(),
                voided_event_id: voided.into(),
                reason: reason.into(),
                replacement_event_id: None,
                occurred_at: at,
            }),
        )
    }

    /// The commands that record the events, with their ids.
    pub fn commands(&self) -> Vec<(String, crate::Command)> {
        self.events
            .iter()
            .map(|(id, e)| (id.clone(), crate::Command::from(e.clone())))
            .collect()
    }
}

/// The facilities and the standard of [`rice_mill`].
pub const DEMAK: &str = "fac-demak";
pub const KUDUS: &str = "fac-kudus";
pub const STD: &str = "sni-6128";

/// A day at the Demak rice factory and a transfer to Kudus:
///
/// - G1 (3 t, UKM Sri Rejeki) and G2 (1 t, UKM Maju Jaya) are milled with 100
///   sacks of K1 (UKM Tiga Saudara) into bran DK1 and rice B1;
/// - 2000 kg of B1 and 2000 kg of G3 (UKM Tiga Saudara) are graded into B2;
/// - B2 is packed into three 5 kg bags, two are shipped to a buyer, and
///   1000 kg go in bulk to Kudus, where they are received as KB2 and fail an
///   inspection;
/// - G4 is dried into D1, and the drying is voided.
pub fn rice_mill() -> Scenario {
    let mut log = Scenario::default();
    log.party("ukm-sri", "UKM Sri Rejeki", &[PartyRole::Ukm])
        .party("ukm-maju", "UKM Maju Jaya", &[PartyRole::Ukm])
        .party("ukm-tiga", "UKM Tiga Saudara", &[PartyRole::Ukm])
        .party("sup-tani", "Kelompok Tani Makmur", &[PartyRole::Supplier])
        .party("sup-lestari", "Kelompok Tani Lestari", &[PartyRole::Supplier])
        .party("op-demak", "Koperasi Pangan Demak", &[PartyRole::Operator])
        .party(
            "op-kudus",
            "Koperasi Pangan Kudus",
            &[PartyRole::Operator, PartyRole::Customer],
        )
        .party("cust-pangan", "PT Pangan Ekspor", &[PartyRole::Customer])
        .facility(DEMAK, "Pabrik Bersama Demak", "op-demak")
        .facility(KUDUS, "Pabrik Bersama Kudus", "op-kudus")
        .product("gabah", "Gabah kering panen", Unit::Kg, None)
        .product("beras", "Beras premium", Unit::Kg, Some(BERAS_GTIN))
        .product("karung", "Karung 50 kg", Unit::Pcs, None)
        .product("dedak", "Dedak", Unit::Kg, None);
    let param = |code: &str, max: &str| Parameter {
        code: code.into(),
        name: code.into(),
        unit: "%".into(),
        min: None,
        max: Some(dec(max)),
        required: true,
    };
    log.push(
        "reg-sni",
        Event::StandardRegistered(QualityStandard {
            id: STD.into(),
            name: "SNI 6128:2020 Premium".into(),
            reference: "SNI 6128:2020".into(),
            parameters: vec![param("moisture", "14"), param("broken", "14.5")],
        }),
    );
    log.receive(DEMAK, "G1", "gabah", q("3", Unit::T), "ukm-sri", "sup-tani")
        .receive(DEMAK, "G2", "gabah", q("1", Unit::T), "ukm-maju", "sup-lestari")
        .receive(DEMAK, "K1", "karung", q("200", Unit::Pcs), "ukm-tiga", "sup-tani")
        .receive(DEMAK, "G3", "gabah", q("2000", Unit::Kg), "ukm-tiga", "sup-tani")
        .receive(DEMAK, "G4", "gabah", q("500", Unit::Kg), "ukm-maju", "sup-lestari");
    // G1 carries a plot and a delivery note.
    if let Some((_, Event::MaterialReceived(r))) = log.events.iter_mut().find(|(id, _)| id == "rcv-g1") {
        r.origin.plot_id = "plot-7".into();
        r.origin.plot = Some(GeoPoint::new("plot", -6.89, 110.64).expect("a point in Demak"));
        r.documents.push(Document {
            kind: "delivery note".into(),
            reference: "DN-0001".into(),
            blake3: *blake3::hash(b"DN-0001").as_bytes(),
            issuer: String::new(),
            valid_from: None,
            valid_until: None,
        });
    }
    log.inspect("insp-g1", DEMAK, "G1", "13.5", Verdict::Conformant, &[])
        // Outputs listed out of id order, so a reloaded store indexes them differently.
        .process(
            "mill",
            "milling",
            &[
                ("G1", q("3", Unit::T)),
                ("G2", q("1000", Unit::Kg)),
                ("K1", q("100", Unit::Pcs)),
            ],
            &[
                ("DK1", "dedak", q("900", Unit::Kg), "ukm-sri"),
                ("B1", "beras", q("2600", Unit::Kg), "ukm-sri"),
            ],
        )
        .process(
            "grade",
            "grading",
            &[("B1", q("2000", Unit::Kg)), ("G3", q("2", Unit::T))],
            &[("B2", "beras", q("4000", Unit::Kg), "ukm-sri")],
        )
        .process(
            "dry",
            "drying",
            &[("G4", q("300", Unit::Kg))],
            &[("D1", "gabah", q("280", Unit::Kg), "ukm-maju")],
        )
        .void("void-dry", DEMAK, "dry", "wrong scale")
        .pack(
            "pack-b2",
            "B2",
            &[
                ("P-0001", q("5", Unit::Kg)),
                ("P-0002", q("5000", Unit::G)),
                ("P-0003", q("5", Unit::Kg)),
            ],
        )
        .ship("ship-pk", "B2", None, &["P-0001", "P-0002"], "cust-pangan", "SJ-001")
        .ship("ship-bulk", "B2", Some(q("1", Unit::T)), &[], "op-kudus", "SJ-002")
        .status("hold-b1", "B1", LotStatus::OnHold, "sample retained")
        .receive(KUDUS, "KB2", "beras", q("1000", Unit::Kg), "ukm-sri", "op-demak");
    if let Some((_, Event::MaterialReceived(r))) = log.events.last_mut() {
        r.source_lot_id = Some("B2".into());
    }
    log.inspect(
        "insp-kb2",
        KUDUS,
        "KB2",
        "15.2",
        Verdict::NonConformant,
        &["moisture 15.2 % is above the maximum 14 %"],
    );
    log
}
