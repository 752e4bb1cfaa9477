//! Write-side rules over real gRPC: every broken rule is refused with its
//! exact status code (and `jejak-rule` metadata) and nothing is written.
//!
//! Each test starts its own demo server and works on lots it receives itself
//! at the Demak rice facility, using the demo's master data.

use jejak_server::demo::ids::{
    DEMAK, DRIED_PADDY, FARMERS_SUMBERREJEKI, PADDY, PADDY_INTAKE_STANDARD, PADDY_LOT, PREMIUM_RICE_GTIN, RICE_BAG_LOT,
    RICE_BUYER, TEGAL, UKM_SIDOMAKMUR,
};
use std::marker::PhantomData;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jejak_proto::v1 as p;
use jejak_testkit::{Server, ServerOptions};
use prost::bytes::BufMut as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Response, Status};

use crate::support::{assert_mentions, on_both_engines, qty, refused, rule_of, Demo};

on_both_engines!(
    concurrent_retries_of_one_command_write_it_once,
    concurrent_consumption_never_overdraws_a_lot,
    unknown_references_are_not_found,
    consuming_more_than_is_left_is_refused_and_names_the_lot,
    units_convert_exactly_within_a_dimension_and_never_across,
    a_lot_on_hold_is_unusable_until_released,
    a_non_conformant_lot_is_unusable,
    a_missing_required_parameter_puts_the_lot_on_hold,
    a_lot_id_cannot_be_reused,
    floor_times_in_the_future_or_before_2000_are_refused,
    a_retry_returns_the_first_result_and_writes_nothing,
    the_same_command_id_with_other_content_is_already_exists,
    a_lot_is_used_only_at_its_facility,
    voiding_an_inspection_reverts_the_verdict,
    a_used_receipt_cannot_be_voided,
);

/// A valid GTIN-14 no demo product uses.
const TEST_GTIN: &str = "08997001009991";

pub(crate) fn receipt(cmd: &str, lot: &str, value: &str, unit: p::Unit) -> p::ReceiveMaterialRequest {
    p::ReceiveMaterialRequest {
        command_id: cmd.into(),
        facility_id: DEMAK.into(),
        lot_id: lot.into(),
        product_id: PADDY.into(),
        quantity: qty(value, unit),
        owner_id: UKM_SIDOMAKMUR.into(),
        supplier_id: FARMERS_SUMBERREJEKI.into(),
        ..Default::default()
    }
}

/// Drying `value unit` of `input` into a new DRIED_PADDY lot `output` of 10 kg.
pub(crate) fn drying(cmd: &str, input: &str, value: &str, unit: p::Unit, output: &str) -> p::ProcessLotsRequest {
    p::ProcessLotsRequest {
        command_id: cmd.into(),
        facility_id: DEMAK.into(),
        process_step: "pengeringan".into(),
        line: "dryer-test".into(),
        inputs: vec![p::LotInput {
            lot_id: input.into(),
            quantity: qty(value, unit),
        }],
        outputs: vec![p::LotOutput {
            lot_id: output.into(),
            product_id: DRIED_PADDY.into(),
            quantity: qty("10", p::Unit::Kg),
            owner_id: String::new(),
        }],
        occurred_at: None,
    }
}

/// Packs `lot` into packages of the given quantities.
fn pack(cmd: &str, lot: &str, packages: &[(&str, &str, p::Unit)]) -> p::PackLotRequest {
    p::PackLotRequest {
        command_id: cmd.into(),
        facility_id: DEMAK.into(),
        lot_id: lot.into(),
        gtin: TEST_GTIN.into(),
        packages: packages
            .iter()
            .map(|(serial, v, u)| p::Package {
                serial: (*serial).into(),
                quantity: qty(v, *u),
            })
            .collect(),
        occurred_at: None,
    }
}

fn ship(cmd: &str, lot: &str, value: &str, unit: p::Unit) -> p::ShipLotRequest {
    p::ShipLotRequest {
        command_id: cmd.into(),
        facility_id: DEMAK.into(),
        lot_id: lot.into(),
        quantity: qty(value, unit),
        package_serials: Vec::new(),
        consignee_id: RICE_BUYER.into(),
        document: "SJ-TEST".into(),
        occurred_at: None,
        dds_reference: String::new(),
    }
}

fn inspect(cmd: &str, lot: &str, measurements: &[(&str, &str)]) -> p::InspectLotRequest {
    p::InspectLotRequest {
        command_id: cmd.into(),
        facility_id: DEMAK.into(),
        lot_id: lot.into(),
        standard_id: PADDY_INTAKE_STANDARD.into(),
        measurements: measurements
            .iter()
            .map(|(param, v)| p::Measurement {
                parameter: (*param).into(),
                value: (*v).into(),
                unit: "%".into(),
            })
            .collect(),
        inspector: "e2e".into(),
        occurred_at: None,
    }
}

fn status_change(cmd: &str, lot: &str, status: p::LotStatus, reason: &str) -> p::ChangeLotStatusRequest {
    p::ChangeLotStatusRequest {
        command_id: cmd.into(),
        facility_id: DEMAK.into(),
        lot_id: lot.into(),
        status: status as i32,
        reason: reason.into(),
        occurred_at: None,
    }
}

fn void(cmd: &str, event: &str, reason: &str) -> p::VoidEventRequest {
    p::VoidEventRequest {
        command_id: cmd.into(),
        facility_id: DEMAK.into(),
        event_id: event.into(),
        reason: reason.into(),
        replacement_event_id: String::new(),
        occurred_at: None,
    }
}

fn value_of(q: &Option<p::Quantity>) -> (String, i32) {
    let q = q.as_ref().expect("quantity is set");
    (q.value.clone(), q.unit)
}

fn kg(v: &str) -> (String, i32) {
    (v.to_string(), p::Unit::Kg as i32)
}

fn now_plus(seconds: i64) -> Option<prost_types::Timestamp> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    Some(prost_types::Timestamp {
        seconds: i64::try_from(now).expect("seconds fit") + seconds,
        nanos: 0,
    })
}

async fn unknown_references_are_not_found(mut d: Demo) {
    let c = &mut d.capture;
    c.receive_material(receipt("rcv-u", "U-1", "1000", p::Unit::Kg))
        .await
        .expect("receive U-1");

    // Receipts: facility, product, owner, supplier, source lot.
    let mut r = receipt("rcv-u-fac", "U-2", "10", p::Unit::Kg);
    r.facility_id = "fac-nowhere".into();
    let s = refused(&d.server, c.receive_material(r), Code::NotFound, None).await;
    assert_mentions(&s, &["facility", "fac-nowhere"]);
    let mut r = receipt("rcv-u-prd", "U-2", "10", p::Unit::Kg);
    r.product_id = "prd-nowhere".into();
    let s = refused(&d.server, c.receive_material(r), Code::NotFound, None).await;
    assert_mentions(&s, &["product", "prd-nowhere"]);
    let mut r = receipt("rcv-u-own", "U-2", "10", p::Unit::Kg);
    r.owner_id = "ukm-nowhere".into();
    let s = refused(&d.server, c.receive_material(r), Code::NotFound, None).await;
    assert_mentions(&s, &["party", "ukm-nowhere"]);
    let mut r = receipt("rcv-u-sup", "U-2", "10", p::Unit::Kg);
    r.supplier_id = "sup-nowhere".into();
    let s = refused(&d.server, c.receive_material(r), Code::NotFound, None).await;
    assert_mentions(&s, &["party", "sup-nowhere"]);
    let mut r = receipt("rcv-u-src", "U-2", "10", p::Unit::Kg);
    r.source_lot_id = "NO-SUCH-LOT".into();
    let s = refused(&d.server, c.receive_material(r), Code::NotFound, None).await;
    assert_mentions(&s, &["NO-SUCH-LOT"]);
    // A party with the wrong role is a rule, not a missing reference.
    let mut r = receipt("rcv-u-role", "U-2", "10", p::Unit::Kg);
    r.owner_id = FARMERS_SUMBERREJEKI.into();
    let s = refused(
        &d.server,
        c.receive_material(r),
        Code::FailedPrecondition,
        Some("party-role"),
    )
    .await;
    assert_mentions(&s, &["owner_id", FARMERS_SUMBERREJEKI]);

    // Transformations: an unknown input lot, an unknown output product.
    let s = refused(
        &d.server,
        c.process_lots(drying("proc-u-in", "NO-SUCH-LOT", "1", p::Unit::Kg, "U-OUT")),
        Code::NotFound,
        None,
    )
    .await;
    assert_mentions(&s, &["lot", "NO-SUCH-LOT"]);
    let mut pr = drying("proc-u-prd", "U-1", "1", p::Unit::Kg, "U-OUT");
    pr.outputs[0].product_id = "prd-nowhere".into();
    let s = refused(&d.server, c.process_lots(pr), Code::NotFound, None).await;
    assert_mentions(&s, &["product", "prd-nowhere"]);
    let mut pr = drying("proc-u-fac", "U-1", "1", p::Unit::Kg, "U-OUT");
    pr.facility_id = "fac-nowhere".into();
    refused(&d.server, c.process_lots(pr), Code::NotFound, None).await;

    // Inspections: an unknown standard, an unknown parameter, an unknown lot.
    let mut i = inspect("insp-u-std", "U-1", &[("kadar_air", "20"), ("hampa_kotoran", "5")]);
    i.standard_id = "std-nowhere".into();
    let s = refused(&d.server, c.inspect_lot(i), Code::NotFound, None).await;
    assert_mentions(&s, &["standard", "std-nowhere"]);
    let i = inspect("insp-u-par", "U-1", &[("kadar_air", "20"), ("warna", "5")]);
    let s = refused(&d.server, c.inspect_lot(i), Code::InvalidArgument, None).await;
    assert_mentions(&s, &["measurements[1].parameter", "\"warna\"", "kadar_air"]);
    let i = inspect("insp-u-lot", "NO-SUCH-LOT", &[("kadar_air", "20")]);
    refused(&d.server, c.inspect_lot(i), Code::NotFound, None).await;

    // Packing and shipping: an unknown lot, an unknown consignee.
    let pk = pack("pack-u", "NO-SUCH-LOT", &[("U-S1", "5", p::Unit::Kg)]);
    refused(&d.server, c.pack_lot(pk), Code::NotFound, None).await;
    let mut sh = ship("ship-u", "U-1", "5", p::Unit::Kg);
    sh.consignee_id = "cus-nowhere".into();
    let s = refused(&d.server, c.ship_lot(sh), Code::NotFound, None).await;
    assert_mentions(&s, &["party", "cus-nowhere"]);

    // Status changes and voids of things that do not exist.
    let st = status_change("st-u", "NO-SUCH-LOT", p::LotStatus::OnHold, "test");
    refused(&d.server, c.change_lot_status(st), Code::NotFound, None).await;
    let s = refused(
        &d.server,
        c.void_event(void("void-u", "no-such-event", "test")),
        Code::NotFound,
        None,
    )
    .await;
    assert_mentions(&s, &["no-such-event"]);

    // Master data naming an unknown operator.
    let f = p::RegisterFacilityRequest {
        command_id: "reg-u-fac".into(),
        facility: Some(p::Facility {
            id: "fac-baru".into(),
            name: "Sentra Baru".into(),
            sector: p::Sector::Rice as i32,
            district: "Demak".into(),
            operator_id: "op-nowhere".into(),
            location: None,
            gln: String::new(),
            requires_timber_legality: false,
        }),
    };
    let s = refused(&d.server, c.register_facility(f), Code::NotFound, None).await;
    assert_mentions(&s, &["op-nowhere"]);

    // Nothing of it reached the projection.
    assert_eq!(d.lot_error("U-2").await.code(), Code::NotFound);
    assert_eq!(d.lot_error("U-OUT").await.code(), Code::NotFound);
    let u1 = d.lot("U-1").await;
    assert_eq!(value_of(&u1.balance), kg("1000"));
    assert!(u1.inspections.is_empty(), "{:?}", u1.inspections);
    assert!(u1.packages.is_empty() && u1.shipments.is_empty());
}

async fn consuming_more_than_is_left_is_refused_and_names_the_lot(mut d: Demo) {
    let c = &mut d.capture;
    c.receive_material(receipt("rcv-o", "O-1", "1000", p::Unit::Kg))
        .await
        .expect("receive O-1");

    let s = refused(
        &d.server,
        c.process_lots(drying("proc-o-1", "O-1", "1000.5", p::Unit::Kg, "O-OUT-1")),
        Code::FailedPrecondition,
        Some("mass-balance"),
    )
    .await;
    assert_mentions(&s, &["\"O-1\"", "1000 kg left"]);
    // The same amount in tonnes and grams is refused just the same.
    let s = refused(
        &d.server,
        c.process_lots(drying("proc-o-2", "O-1", "1.0000001", p::Unit::T, "O-OUT-1")),
        Code::FailedPrecondition,
        Some("mass-balance"),
    )
    .await;
    assert_mentions(&s, &["\"O-1\"", "1000 kg left"]);
    let pk = pack(
        "pack-o-1",
        "O-1",
        &[("O-S1", "600", p::Unit::Kg), ("O-S2", "400001", p::Unit::G)],
    );
    let s = refused(
        &d.server,
        c.pack_lot(pk),
        Code::FailedPrecondition,
        Some("mass-balance"),
    )
    .await;
    assert_mentions(&s, &["\"O-1\"", "1000 kg left"]);
    let s = refused(
        &d.server,
        c.ship_lot(ship("ship-o-1", "O-1", "1000.001", p::Unit::Kg)),
        Code::FailedPrecondition,
        Some("mass-balance"),
    )
    .await;
    assert_mentions(&s, &["\"O-1\"", "1000 kg left"]);
    assert_eq!(value_of(&d.lot("O-1").await.balance), kg("1000"));

    // Spend 400 kg, then every use of more than the 600 kg left is refused.
    let c = &mut d.capture;
    c.process_lots(drying("proc-o-3", "O-1", "400", p::Unit::Kg, "O-OUT-3"))
        .await
        .expect("consume 400 kg");
    let s = refused(
        &d.server,
        c.process_lots(drying("proc-o-4", "O-1", "600.001", p::Unit::Kg, "O-OUT-4")),
        Code::FailedPrecondition,
        Some("mass-balance"),
    )
    .await;
    assert_mentions(&s, &["\"O-1\"", "600 kg left"]);
    let pk = pack(
        "pack-o-2",
        "O-1",
        &[("O-S1", "300", p::Unit::Kg), ("O-S2", "301", p::Unit::Kg)],
    );
    let s = refused(
        &d.server,
        c.pack_lot(pk),
        Code::FailedPrecondition,
        Some("mass-balance"),
    )
    .await;
    assert_mentions(&s, &["\"O-1\"", "600 kg left", "601 kg"]);
    let s = refused(
        &d.server,
        c.ship_lot(ship("ship-o-2", "O-1", "0.601", p::Unit::T)),
        Code::FailedPrecondition,
        Some("mass-balance"),
    )
    .await;
    assert_mentions(&s, &["\"O-1\"", "600 kg left"]);
    assert_eq!(value_of(&d.lot("O-1").await.balance), kg("600"));

    // Exactly what is left can go; after that nothing more.
    let c = &mut d.capture;
    let pk = pack(
        "pack-o-3",
        "O-1",
        &[("O-S3", "50", p::Unit::Kg), ("O-S4", "50", p::Unit::Kg)],
    );
    c.pack_lot(pk).await.expect("pack 100 kg");
    c.ship_lot(ship("ship-o-3", "O-1", "0.5", p::Unit::T))
        .await
        .expect("ship the 500 kg left");
    let s = refused(
        &d.server,
        c.process_lots(drying("proc-o-5", "O-1", "0.001", p::Unit::Kg, "O-OUT-5")),
        Code::FailedPrecondition,
        Some("mass-balance"),
    )
    .await;
    assert_mentions(&s, &["\"O-1\"", "0 kg left"]);
    let o = d.lot("O-1").await;
    assert_eq!(value_of(&o.balance), kg("0"));
    assert_eq!(o.packages.len(), 2);
    assert_eq!(d.lot_error("O-OUT-1").await.code(), Code::NotFound);
    assert_eq!(d.lot_error("O-OUT-4").await.code(), Code::NotFound);
}

async fn units_convert_exactly_within_a_dimension_and_never_across(mut d: Demo) {
    let c = &mut d.capture;
    c.receive_material(receipt("rcv-m", "M-1", "1000", p::Unit::Kg))
        .await
        .expect("receive M-1");

    let s = refused(
        &d.server,
        c.process_lots(drying("proc-m-1", "M-1", "5", p::Unit::Pcs, "M-OUT-1")),
        Code::FailedPrecondition,
        Some("unit-mismatch"),
    )
    .await;
    assert_mentions(&s, &["\"M-1\"", "pcs"]);
    let s = refused(
        &d.server,
        c.ship_lot(ship("ship-m-1", "M-1", "2", p::Unit::L)),
        Code::FailedPrecondition,
        Some("unit-mismatch"),
    )
    .await;
    assert_mentions(&s, &["\"M-1\""]);
    let pk = pack("pack-m-1", "M-1", &[("M-S1", "1", p::Unit::M)]);
    refused(
        &d.server,
        c.pack_lot(pk),
        Code::FailedPrecondition,
        Some("unit-mismatch"),
    )
    .await;
    // A receipt or an output in a unit its product cannot be counted in.
    let s = refused(
        &d.server,
        c.receive_material(receipt("rcv-m-pcs", "M-2", "40", p::Unit::Pcs)),
        Code::FailedPrecondition,
        Some("unit-mismatch"),
    )
    .await;
    assert_mentions(&s, &[PADDY, "pcs"]);
    let mut pr = drying("proc-m-2", "M-1", "10", p::Unit::Kg, "M-OUT-2");
    pr.outputs[0].quantity = qty("1", p::Unit::M3);
    refused(
        &d.server,
        c.process_lots(pr),
        Code::FailedPrecondition,
        Some("unit-mismatch"),
    )
    .await;
    assert_eq!(value_of(&d.lot("M-1").await.balance), kg("1000"));

    // t → kg → g: exact, down to the last gram.
    let c = &mut d.capture;
    c.receive_material(receipt("rcv-t", "T-1", "2.5", p::Unit::T))
        .await
        .expect("receive 2.5 t");
    let t = d.lot("T-1").await;
    assert_eq!(value_of(&t.quantity), ("2.5".into(), p::Unit::T as i32));
    let c = &mut d.capture;
    c.process_lots(drying("proc-t-1", "T-1", "1250.5", p::Unit::Kg, "T-OUT-1"))
        .await
        .expect("consume 1250.5 kg of a lot counted in t");
    assert_eq!(
        value_of(&d.lot("T-1").await.balance),
        ("1.2495".into(), p::Unit::T as i32)
    );
    let c = &mut d.capture;
    c.ship_lot(ship("ship-t-1", "T-1", "1249499", p::Unit::G))
        .await
        .expect("ship 1249499 g");
    assert_eq!(
        value_of(&d.lot("T-1").await.balance),
        ("0.000001".into(), p::Unit::T as i32)
    );
    let c = &mut d.capture;
    let s = refused(
        &d.server,
        c.ship_lot(ship("ship-t-2", "T-1", "1.001", p::Unit::G)),
        Code::FailedPrecondition,
        Some("mass-balance"),
    )
    .await;
    assert_mentions(&s, &["\"T-1\""]);
    c.ship_lot(ship("ship-t-3", "T-1", "1", p::Unit::G))
        .await
        .expect("ship the last gram");
    assert_eq!(value_of(&d.lot("T-1").await.balance), ("0".into(), p::Unit::T as i32));
}

async fn a_lot_on_hold_is_unusable_until_released(mut d: Demo) {
    let c = &mut d.capture;
    c.receive_material(receipt("rcv-h", "H-1", "1000", p::Unit::Kg))
        .await
        .expect("receive H-1");
    c.change_lot_status(status_change("hold-h", "H-1", p::LotStatus::OnHold, "karung basah"))
        .await
        .expect("put H-1 on hold");
    assert_eq!(d.lot("H-1").await.status, p::LotStatus::OnHold as i32);

    let c = &mut d.capture;
    let s = refused(
        &d.server,
        c.process_lots(drying("proc-h-1", "H-1", "100", p::Unit::Kg, "H-OUT-1")),
        Code::FailedPrecondition,
        Some("lot-not-usable"),
    )
    .await;
    assert_mentions(&s, &["\"H-1\"", "on hold"]);
    let pk = pack("pack-h-1", "H-1", &[("H-S1", "5", p::Unit::Kg)]);
    refused(
        &d.server,
        c.pack_lot(pk),
        Code::FailedPrecondition,
        Some("lot-not-usable"),
    )
    .await;
    refused(
        &d.server,
        c.ship_lot(ship("ship-h-1", "H-1", "5", p::Unit::Kg)),
        Code::FailedPrecondition,
        Some("lot-not-usable"),
    )
    .await;
    refused(
        &d.server,
        c.change_lot_status(status_change("hold-h-2", "H-1", p::LotStatus::OnHold, "lagi")),
        Code::FailedPrecondition,
        Some("status-transition"),
    )
    .await;
    let h = d.lot("H-1").await;
    assert_eq!(value_of(&h.balance), kg("1000"));
    assert_eq!(h.status, p::LotStatus::OnHold as i32);

    let c = &mut d.capture;
    c.change_lot_status(status_change(
        "release-h",
        "H-1",
        p::LotStatus::Released,
        "dikeringkan ulang",
    ))
    .await
    .expect("release H-1");
    c.process_lots(drying("proc-h-2", "H-1", "100", p::Unit::Kg, "H-OUT-2"))
        .await
        .expect("a released lot is usable");
    let h = d.lot("H-1").await;
    assert_eq!(h.status, p::LotStatus::Released as i32);
    assert_eq!(value_of(&h.balance), kg("900"));
}

async fn a_non_conformant_lot_is_unusable(mut d: Demo) {
    let c = &mut d.capture;
    c.receive_material(receipt("rcv-n", "N-1", "1000", p::Unit::Kg))
        .await
        .expect("receive N-1");
    let reply = c
        .inspect_lot(inspect(
            "insp-n",
            "N-1",
            &[("kadar_air", "27.5"), ("hampa_kotoran", "4")],
        ))
        .await
        .expect("inspect N-1")
        .into_inner();
    assert_eq!(reply.verdict, p::Verdict::NonConformant as i32, "{reply:?}");
    assert_eq!(reply.findings.len(), 1, "{reply:?}");
    assert!(
        reply.findings[0].contains("Kadar air") && reply.findings[0].contains("27.5"),
        "{:?}",
        reply.findings
    );

    let s = refused(
        &d.server,
        c.process_lots(drying("proc-n", "N-1", "100", p::Unit::Kg, "N-OUT")),
        Code::FailedPrecondition,
        Some("lot-not-usable"),
    )
    .await;
    assert_mentions(&s, &["\"N-1\"", "non-conformant"]);
    refused(
        &d.server,
        c.ship_lot(ship("ship-n", "N-1", "100", p::Unit::Kg)),
        Code::FailedPrecondition,
        Some("lot-not-usable"),
    )
    .await;
    let n = d.lot("N-1").await;
    assert_eq!(n.verdict, p::Verdict::NonConformant as i32);
    assert_eq!(value_of(&n.balance), kg("1000"));
}

async fn a_missing_required_parameter_puts_the_lot_on_hold(mut d: Demo) {
    let c = &mut d.capture;
    c.receive_material(receipt("rcv-q", "Q-1", "1000", p::Unit::Kg))
        .await
        .expect("receive Q-1");
    let reply = c
        .inspect_lot(inspect("insp-q-1", "Q-1", &[("kadar_air", "21")]))
        .await
        .expect("inspect Q-1 without hampa_kotoran")
        .into_inner();
    assert_eq!(reply.verdict, p::Verdict::Hold as i32, "{reply:?}");
    assert!(
        reply.findings.iter().any(|f| f.contains("Kadar hampa/kotoran")),
        "findings do not name the missing parameter: {:?}",
        reply.findings
    );
    // The optional parameter (butir_hijau_mengapur) is not a finding.
    assert_eq!(reply.findings.len(), 1, "{:?}", reply.findings);

    let s = refused(
        &d.server,
        c.process_lots(drying("proc-q-1", "Q-1", "100", p::Unit::Kg, "Q-OUT-1")),
        Code::FailedPrecondition,
        Some("lot-not-usable"),
    )
    .await;
    assert_mentions(&s, &["\"Q-1\"", "on hold"]);
    assert_eq!(d.lot("Q-1").await.verdict, p::Verdict::Hold as i32);

    // Completing the inspection makes the lot usable.
    let c = &mut d.capture;
    let reply = c
        .inspect_lot(inspect(
            "insp-q-2",
            "Q-1",
            &[("kadar_air", "21"), ("hampa_kotoran", "6")],
        ))
        .await
        .expect("complete the inspection")
        .into_inner();
    assert_eq!(reply.verdict, p::Verdict::Conformant as i32, "{reply:?}");
    assert!(reply.findings.is_empty(), "{:?}", reply.findings);
    c.process_lots(drying("proc-q-2", "Q-1", "100", p::Unit::Kg, "Q-OUT-2"))
        .await
        .expect("a conformant lot is usable");
    assert_eq!(value_of(&d.lot("Q-1").await.balance), kg("900"));
}

async fn a_lot_id_cannot_be_reused(mut d: Demo) {
    let before = d.lot(PADDY_LOT).await;
    let c = &mut d.capture;
    let s = refused(
        &d.server,
        c.receive_material(receipt("rcv-r-1", PADDY_LOT, "10", p::Unit::Kg)),
        Code::AlreadyExists,
        None,
    )
    .await;
    assert_mentions(&s, &[PADDY_LOT]);
    c.receive_material(receipt("rcv-r-2", "R-1", "1000", p::Unit::Kg))
        .await
        .expect("receive R-1");
    let s = refused(
        &d.server,
        c.process_lots(drying("proc-r", "R-1", "100", p::Unit::Kg, RICE_BAG_LOT)),
        Code::AlreadyExists,
        None,
    )
    .await;
    assert_mentions(&s, &[RICE_BAG_LOT]);
    // Even the id of a voided receipt stays taken.
    let tegal = p::ReceiveMaterialRequest {
        command_id: "rcv-r-3".into(),
        facility_id: TEGAL.into(),
        lot_id: "TGL-B16-260903-03".into(),
        product_id: "prd-tgl-s45c-16".into(),
        quantity: qty("120", p::Unit::Kg),
        owner_id: "ukm-tgl-putralogam".into(),
        supplier_id: "sup-tgl-mitrabaja".into(),
        ..Default::default()
    };
    refused(&d.server, c.receive_material(tegal), Code::AlreadyExists, None).await;

    assert_eq!(d.lot(PADDY_LOT).await, before);
    assert_eq!(value_of(&d.lot("R-1").await.balance), kg("1000"));
    assert_eq!(value_of(&d.lot(RICE_BAG_LOT).await.quantity), kg("5900"));
    assert!(d.lot("TGL-B16-260903-03").await.voided);
}

async fn floor_times_in_the_future_or_before_2000_are_refused(mut d: Demo) {
    let c = &mut d.capture;

    let mut r = receipt("rcv-time-1", "TM-1", "10", p::Unit::Kg);
    r.occurred_at = now_plus(86_400);
    let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
    assert_mentions(&s, &["occurred_at", "future"]);
    let mut r = receipt("rcv-time-2", "TM-1", "10", p::Unit::Kg);
    r.occurred_at = Some(prost_types::Timestamp {
        seconds: 946_684_799, // 1999-12-31T23:59:59Z
        nanos: 0,
    });
    let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
    assert_mentions(&s, &["occurred_at", "2000"]);
    let mut r = receipt("rcv-time-3", "TM-1", "10", p::Unit::Kg);
    r.occurred_at = Some(prost_types::Timestamp {
        seconds: 1_790_000_000,
        nanos: -1,
    });
    let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
    assert_mentions(&s, &["occurred_at"]);
    assert_eq!(d.lot_error("TM-1").await.code(), Code::NotFound);

    // Other commands check their floor time too.
    let c = &mut d.capture;
    c.receive_material(receipt("rcv-time-4", "TM-2", "10", p::Unit::Kg))
        .await
        .expect("receive TM-2");
    let mut pr = drying("proc-time", "TM-2", "1", p::Unit::Kg, "TM-OUT");
    pr.occurred_at = now_plus(86_400);
    let s = refused(&d.server, c.process_lots(pr), Code::InvalidArgument, None).await;
    assert_mentions(&s, &["occurred_at"]);
    let mut sh = ship("ship-time", "TM-2", "1", p::Unit::Kg);
    sh.occurred_at = now_plus(86_400);
    refused(&d.server, c.ship_lot(sh), Code::InvalidArgument, None).await;

    // A device clock a minute ahead is within the allowed skew.
    let mut r = receipt("rcv-time-5", "TM-3", "10", p::Unit::Kg);
    r.occurred_at = now_plus(60);
    c.receive_material(r).await.expect("a minute of clock skew is accepted");
    assert_eq!(value_of(&d.lot("TM-2").await.balance), kg("10"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_quantities_ids_and_gtins_name_the_field() {
    let mut d = Demo::start().await;
    let c = &mut d.capture;
    c.receive_material(receipt("rcv-x", "X-1", "100", p::Unit::Kg))
        .await
        .expect("receive X-1");

    for (i, bad) in ["-5", "0", "0.000", "NaN", "1e3", "", "1,5", " 1", "inf", "0x10"]
        .iter()
        .enumerate()
    {
        let r = receipt(&format!("rcv-x-q{i}"), "X-2", bad, p::Unit::Kg);
        let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
        assert_mentions(&s, &["quantity.value"]);
        let pr = drying(&format!("proc-x-q{i}"), "X-1", bad, p::Unit::Kg, "X-OUT");
        let s = refused(&d.server, c.process_lots(pr), Code::InvalidArgument, None).await;
        assert_mentions(&s, &["inputs[0].quantity.value"]);
    }
    let r = receipt("rcv-x-unit", "X-2", "10", p::Unit::Unspecified);
    let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
    assert_mentions(&s, &["quantity.unit"]);
    let mut r = receipt("rcv-x-noq", "X-2", "10", p::Unit::Kg);
    r.quantity = None;
    let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
    assert_mentions(&s, &["quantity"]);
    let mut pr = drying("proc-x-unit", "X-1", "1", p::Unit::Kg, "X-OUT");
    pr.outputs[0].quantity = qty("1", p::Unit::Unspecified);
    let s = refused(&d.server, c.process_lots(pr), Code::InvalidArgument, None).await;
    assert_mentions(&s, &["outputs[0].quantity.unit"]);

    // Ids with characters outside their alphabet, or too long for a label.
    for (cmd, lot, field) in [
        ("rcv-x-id1", "X 2", "lot_id"),
        ("rcv-x-id2", "X/2", "lot_id"),
        ("rcv-x-id3", "X:2", "lot_id"),
        ("rcv-x-id4", "X-123456789012345678901", "lot_id"),
        ("rcv x id5", "X-2", "command_id"),
        ("rcv-x-id6#", "X-2", "command_id"),
    ] {
        let r = receipt(cmd, lot, "10", p::Unit::Kg);
        let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
        assert!(s.message().starts_with(field), "{field}: {s:?}");
    }
    let mut r = receipt("rcv-x-fac", "X-2", "10", p::Unit::Kg);
    r.facility_id = "fac demak".into();
    let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
    assert!(s.message().starts_with("facility_id"), "{s:?}");
    let r = receipt("", "X-2", "10", p::Unit::Kg);
    let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
    assert!(s.message().starts_with("command_id"), "{s:?}");

    // GTINs: a wrong check digit, a wrong length, a letter.
    for bad in ["08997001009992", "0899700100999", "0899700100999X"] {
        let mut pk = pack(&format!("pack-x-{bad}"), "X-1", &[("X-S1", "5", p::Unit::Kg)]);
        pk.gtin = bad.into();
        let s = refused(&d.server, c.pack_lot(pk), Code::InvalidArgument, None).await;
        assert!(s.message().starts_with("gtin"), "{bad}: {s:?}");
    }
    let mut pk = pack("pack-x-check", "X-1", &[("X-S1", "5", p::Unit::Kg)]);
    pk.gtin = "08997001009992".into();
    let s = refused(&d.server, c.pack_lot(pk), Code::InvalidArgument, None).await;
    assert_mentions(&s, &["check digit"]);
    let product = p::RegisterProductRequest {
        command_id: "reg-x-prd".into(),
        product: Some(p::Product {
            id: "prd-x".into(),
            name: "Beras uji".into(),
            sector: p::Sector::Rice as i32,
            kind: p::ProductKind::Finished as i32,
            unit: p::Unit::Kg as i32,
            gtin: "08997001001019".into(),
        }),
    };
    let s = refused(&d.server, c.register_product(product), Code::InvalidArgument, None).await;
    assert!(s.message().starts_with("product.gtin"), "{s:?}");

    assert_eq!(d.lot_error("X-2").await.code(), Code::NotFound);
    let x = d.lot("X-1").await;
    assert_eq!(value_of(&x.balance), kg("100"));
    assert!(x.packages.is_empty());
}

async fn a_retry_returns_the_first_result_and_writes_nothing(mut d: Demo) {
    let c = &mut d.capture;
    let req = receipt("rcv-i", "I-1", "1000", p::Unit::Kg);
    let first = c.receive_material(req.clone()).await.expect("receive I-1").into_inner();
    assert!(!first.replayed);
    assert_eq!(first.event_id, "rcv-i");
    assert_eq!(first.chain, DEMAK);
    assert_eq!(first.hash.len(), 64, "{first:?}");
    let position = d.position().await;
    let status = d.server.status().await.expect("status");
    assert_eq!(first.position, status.log_position);

    let c = &mut d.capture;
    let again = c.receive_material(req).await.expect("retry").into_inner();
    assert!(again.replayed, "{again:?}");
    assert_eq!(
        (
            &again.event_id,
            &again.chain,
            again.sequence,
            again.position,
            &again.hash,
            again.recorded_at
        ),
        (
            &first.event_id,
            &first.chain,
            first.sequence,
            first.position,
            &first.hash,
            first.recorded_at
        )
    );
    assert_eq!(d.position().await, position, "a retry wrote to the log");

    // A retry still returns the first result when the command could not be
    // decided again (the lot is now empty), and an inspection keeps its verdict.
    let c = &mut d.capture;
    let insp = inspect("insp-i", "I-1", &[("kadar_air", "22"), ("hampa_kotoran", "5")]);
    let verdict = c.inspect_lot(insp.clone()).await.expect("inspect").into_inner();
    assert_eq!(verdict.verdict, p::Verdict::Conformant as i32);
    let all = drying("proc-i", "I-1", "1000", p::Unit::Kg, "I-OUT");
    let used = c.process_lots(all.clone()).await.expect("consume all").into_inner();
    let position = d.position().await;
    let c = &mut d.capture;
    let used_again = c
        .process_lots(all.clone())
        .await
        .expect("retry of a spent lot")
        .into_inner();
    assert!(used_again.replayed);
    assert_eq!((used_again.position, &used_again.hash), (used.position, &used.hash));
    assert_eq!(used_again.voided_by, "", "not voided: {used_again:?}");
    let verdict_again = c.inspect_lot(insp).await.expect("retry inspection").into_inner();
    assert!(verdict_again.replayed);
    assert_eq!(
        (verdict_again.position, verdict_again.verdict, &verdict_again.findings),
        (verdict.position, verdict.verdict, &verdict.findings)
    );
    assert_eq!(d.position().await, position, "retries wrote to the log");
    assert_eq!(value_of(&d.lot("I-1").await.balance), kg("0"));
    assert_eq!(value_of(&d.lot("I-OUT").await.quantity), kg("10"));

    // Once its event is voided, a retry is still the first result and
    // writes nothing, but says which void corrected it: it no longer stands.
    let c = &mut d.capture;
    c.void_event(void("void-proc-i", "proc-i", "entered by mistake"))
        .await
        .expect("void the drying");
    let position = d.position().await;
    let c = &mut d.capture;
    let after_void = c.process_lots(all).await.expect("retry after the void").into_inner();
    assert!(after_void.replayed, "{after_void:?}");
    assert_eq!(
        (after_void.position, &after_void.hash, after_void.voided_by.as_str()),
        (used.position, &used.hash, "void-proc-i")
    );
    assert_eq!(d.position().await, position, "a retry after the void wrote to the log");
    assert_eq!(
        value_of(&d.lot("I-1").await.balance),
        kg("1000"),
        "the void restored the input"
    );
}

async fn the_same_command_id_with_other_content_is_already_exists(mut d: Demo) {
    let c = &mut d.capture;
    let first = c
        .receive_material(receipt("rcv-k", "K-1", "1000", p::Unit::Kg))
        .await
        .expect("receive K-1")
        .into_inner();

    // Other quantity, other lot, other command kind, a demo event's id.
    let s = refused(
        &d.server,
        c.receive_material(receipt("rcv-k", "K-1", "999", p::Unit::Kg)),
        Code::AlreadyExists,
        None,
    )
    .await;
    assert_mentions(&s, &["rcv-k"]);
    refused(
        &d.server,
        c.receive_material(receipt("rcv-k", "K-2", "1000", p::Unit::Kg)),
        Code::AlreadyExists,
        None,
    )
    .await;
    refused(
        &d.server,
        c.ship_lot(ship("rcv-k", "K-1", "1", p::Unit::Kg)),
        Code::AlreadyExists,
        None,
    )
    .await;
    refused(
        &d.server,
        c.receive_material(receipt("demo-dmk-0001", "K-3", "1", p::Unit::Kg)),
        Code::AlreadyExists,
        None,
    )
    .await;

    let k = d.lot("K-1").await;
    assert_eq!(value_of(&k.quantity), kg("1000"));
    assert_eq!(value_of(&k.balance), kg("1000"));
    assert_eq!(k.created_by, first.event_id);
    assert!(k.shipments.is_empty());
    assert_eq!(d.lot_error("K-2").await.code(), Code::NotFound);
    assert_eq!(d.lot_error("K-3").await.code(), Code::NotFound);
}

async fn concurrent_consumption_never_overdraws_a_lot(mut d: Demo) {
    d.capture
        .receive_material(receipt("rcv-c", "C-1", "1000", p::Unit::Kg))
        .await
        .expect("receive C-1");
    let before = d.position().await;

    // 32 writers each take a tenth of the lot, half of them in tonnes.
    let mut tasks = Vec::new();
    for i in 0..32 {
        let mut c = d.capture.clone();
        let (value, unit) = if i % 2 == 0 {
            ("100", p::Unit::Kg)
        } else {
            ("0.1", p::Unit::T)
        };
        let req = drying(&format!("proc-c-{i}"), "C-1", value, unit, &format!("C-OUT-{i}"));
        tasks.push(tokio::spawn(async move { (i, c.process_lots(req).await) }));
    }
    let (mut accepted, mut refused_ids) = (Vec::new(), Vec::new());
    for t in tasks {
        let (i, result) = t.await.expect("writer task");
        match result {
            Ok(_) => accepted.push(i),
            Err(s) => {
                assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
                assert_eq!(rule_of(&s).as_deref(), Some("mass-balance"), "{s:?}");
                refused_ids.push(i);
            }
        }
    }
    assert_eq!(accepted.len(), 10, "accepted: {accepted:?}");
    assert_eq!(refused_ids.len(), 22);
    assert_eq!(d.position().await, before + 10);

    let lot = d.lot("C-1").await;
    assert_eq!(value_of(&lot.balance), kg("0"));
    for i in accepted {
        assert_eq!(d.lot(&format!("C-OUT-{i}")).await.lot_id, format!("C-OUT-{i}"));
    }
    for i in refused_ids {
        assert_eq!(d.lot_error(&format!("C-OUT-{i}")).await.code(), Code::NotFound);
    }
    let trace = d
        .trace
        .forward_trace(p::TraceRequest {
            target: Some(p::Target {
                kind: Some(p::target::Kind::LotId("C-1".into())),
            }),
            max_depth: 0,
            max_nodes: 0,
        })
        .await
        .expect("forward trace")
        .into_inner();
    assert_eq!(trace.edges.len(), 10, "{:?}", trace.edges);
}

async fn a_lot_is_used_only_at_its_facility(mut d: Demo) {
    let lot = RICE_BAG_LOT;
    let before = d.lot(lot).await;
    assert_eq!(before.facility_id, DEMAK);
    assert_eq!(value_of(&before.balance), kg("100"));
    let c = &mut d.capture;

    let mut pr = drying("proc-w", lot, "10", p::Unit::Kg, "W-OUT");
    pr.facility_id = TEGAL.into();
    pr.outputs[0].product_id = "prd-tgl-blank-16x70".into();
    pr.outputs[0].quantity = qty("10", p::Unit::Pcs);
    pr.outputs[0].owner_id = "ukm-tgl-sinarteknik".into();
    let s = refused(
        &d.server,
        c.process_lots(pr),
        Code::FailedPrecondition,
        Some("wrong-facility"),
    )
    .await;
    assert_mentions(&s, &[lot, DEMAK, TEGAL]);
    let mut sh = ship("ship-w", lot, "10", p::Unit::Kg);
    sh.facility_id = TEGAL.into();
    refused(
        &d.server,
        c.ship_lot(sh),
        Code::FailedPrecondition,
        Some("wrong-facility"),
    )
    .await;
    let mut pk = pack("pack-w", lot, &[("W-S1", "5", p::Unit::Kg)]);
    pk.facility_id = TEGAL.into();
    pk.gtin = PREMIUM_RICE_GTIN.into();
    refused(
        &d.server,
        c.pack_lot(pk),
        Code::FailedPrecondition,
        Some("wrong-facility"),
    )
    .await;
    let mut i = inspect("insp-w", lot, &[("kadar_air", "20"), ("hampa_kotoran", "2")]);
    i.facility_id = TEGAL.into();
    refused(
        &d.server,
        c.inspect_lot(i),
        Code::FailedPrecondition,
        Some("wrong-facility"),
    )
    .await;
    let mut st = status_change("hold-w", lot, p::LotStatus::OnHold, "test");
    st.facility_id = TEGAL.into();
    refused(
        &d.server,
        c.change_lot_status(st),
        Code::FailedPrecondition,
        Some("wrong-facility"),
    )
    .await;
    let mut v = void("void-w", "demo-dmk-0030", "test");
    v.facility_id = TEGAL.into();
    let s = refused(
        &d.server,
        c.void_event(v),
        Code::FailedPrecondition,
        Some("wrong-facility"),
    )
    .await;
    assert_mentions(&s, &["demo-dmk-0030"]);
    // A transfer must come from another facility.
    let mut r = receipt("rcv-w", "W-2", "10", p::Unit::Kg);
    r.source_lot_id = PADDY_LOT.into();
    refused(
        &d.server,
        c.receive_material(r),
        Code::FailedPrecondition,
        Some("wrong-facility"),
    )
    .await;

    assert_eq!(d.lot(lot).await, before);
    assert_eq!(d.lot_error("W-OUT").await.code(), Code::NotFound);
}

async fn voiding_an_inspection_reverts_the_verdict(mut d: Demo) {
    let c = &mut d.capture;
    c.receive_material(receipt("rcv-v", "V-1", "1000", p::Unit::Kg))
        .await
        .expect("receive V-1");
    let good = c
        .inspect_lot(inspect(
            "insp-v-1",
            "V-1",
            &[("kadar_air", "22"), ("hampa_kotoran", "5")],
        ))
        .await
        .expect("first inspection")
        .into_inner();
    assert_eq!(good.verdict, p::Verdict::Conformant as i32);
    let bad = c
        .inspect_lot(inspect(
            "insp-v-2",
            "V-1",
            &[("kadar_air", "22"), ("hampa_kotoran", "12")],
        ))
        .await
        .expect("second inspection")
        .into_inner();
    assert_eq!(bad.verdict, p::Verdict::NonConformant as i32);
    assert_eq!(d.lot("V-1").await.verdict, p::Verdict::NonConformant as i32);
    let c = &mut d.capture;
    refused(
        &d.server,
        c.process_lots(drying("proc-v-1", "V-1", "100", p::Unit::Kg, "V-OUT-1")),
        Code::FailedPrecondition,
        Some("lot-not-usable"),
    )
    .await;

    let s = refused(
        &d.server,
        c.void_event(void("void-v-0", "insp-v-2", " ")),
        Code::InvalidArgument,
        None,
    )
    .await;
    assert_mentions(&s, &["reason"]);
    c.void_event(void("void-v-1", "insp-v-2", "sampel tertukar"))
        .await
        .expect("void the second inspection");
    let v = d.lot("V-1").await;
    assert_eq!(
        v.verdict,
        p::Verdict::Conformant as i32,
        "verdict did not revert: {v:?}"
    );
    let by_id = |id: &str| {
        v.inspections
            .iter()
            .find(|i| i.event_id == id)
            .unwrap_or_else(|| panic!("inspection {id} missing: {:?}", v.inspections))
    };
    assert!(by_id("insp-v-2").voided);
    assert!(!by_id("insp-v-1").voided);

    let c = &mut d.capture;
    let s = refused(
        &d.server,
        c.void_event(void("void-v-2", "insp-v-2", "lagi")),
        Code::FailedPrecondition,
        Some("not-voidable"),
    )
    .await;
    assert_mentions(&s, &["insp-v-2", "already voided"]);
    refused(
        &d.server,
        c.void_event(void("void-v-3", "void-v-1", "batal")),
        Code::FailedPrecondition,
        Some("not-voidable"),
    )
    .await;
    c.process_lots(drying("proc-v-2", "V-1", "100", p::Unit::Kg, "V-OUT-2"))
        .await
        .expect("usable again once the failing inspection is voided");

    let history = d
        .trace
        .lot_history(p::LotHistoryRequest {
            lot_id: "V-1".into(),
            as_of: None,
        })
        .await
        .expect("history")
        .into_inner();
    let entry = history
        .entries
        .iter()
        .find(|e| e.event_id == "insp-v-2")
        .expect("voided inspection in the history");
    assert!(entry.voided);
    assert_eq!(entry.voided_by, "void-v-1");
    assert_eq!(entry.void_reason, "sampel tertukar");
    assert!(history.entries.iter().any(|e| e.event_id == "void-v-1"));

    // Voiding the only inspection leaves the lot uninspected.
    let c = &mut d.capture;
    c.receive_material(receipt("rcv-v2", "V-2", "100", p::Unit::Kg))
        .await
        .expect("receive V-2");
    c.inspect_lot(inspect(
        "insp-v2",
        "V-2",
        &[("kadar_air", "30"), ("hampa_kotoran", "5")],
    ))
    .await
    .expect("failing inspection");
    c.void_event(void("void-v2", "insp-v2", "alat ukur belum dikalibrasi"))
        .await
        .expect("void it");
    assert_eq!(d.lot("V-2").await.verdict, p::Verdict::Unspecified as i32);
}

async fn a_used_receipt_cannot_be_voided(mut d: Demo) {
    let c = &mut d.capture;
    // The demo's first paddy receipt was dried long ago.
    let s = refused(
        &d.server,
        c.void_event(void("void-demo", "demo-dmk-0001", "test")),
        Code::FailedPrecondition,
        Some("not-voidable"),
    )
    .await;
    assert_mentions(&s, &["demo-dmk-0001", PADDY_LOT]);
    // Master data is corrected by a new record, never voided.
    refused(
        &d.server,
        c.void_event(void("void-reg", "demo-reg-0006", "test")),
        Code::FailedPrecondition,
        Some("not-voidable"),
    )
    .await;

    c.receive_material(receipt("rcv-z", "Z-1", "1000", p::Unit::Kg))
        .await
        .expect("receive Z-1");
    c.process_lots(drying("proc-z", "Z-1", "400", p::Unit::Kg, "Z-OUT"))
        .await
        .expect("use Z-1");
    let s = refused(
        &d.server,
        c.void_event(void("void-z-1", "rcv-z", "salah timbang")),
        Code::FailedPrecondition,
        Some("not-voidable"),
    )
    .await;
    assert_mentions(&s, &["rcv-z", "Z-1"]);
    let z = d.lot("Z-1").await;
    assert!(!z.voided);
    assert_eq!(value_of(&z.balance), kg("600"));

    // Undo the use first, then the receipt may go.
    let c = &mut d.capture;
    c.void_event(void("void-z-2", "proc-z", "salah input"))
        .await
        .expect("void the drying");
    let z = d.lot("Z-1").await;
    assert_eq!(value_of(&z.balance), kg("1000"));
    assert!(d.lot("Z-OUT").await.voided);
    let c = &mut d.capture;
    c.void_event(void("void-z-3", "rcv-z", "salah timbang"))
        .await
        .expect("void the unused receipt");
    let z = d.lot("Z-1").await;
    assert!(z.voided);
    assert_eq!(value_of(&z.balance), kg("0"));
    let c = &mut d.capture;
    let s = refused(
        &d.server,
        c.process_lots(drying("proc-z-2", "Z-1", "1", p::Unit::Kg, "Z-OUT-2")),
        Code::FailedPrecondition,
        Some("lot-not-usable"),
    )
    .await;
    assert_mentions(&s, &["\"Z-1\"", "voided"]);
}

async fn concurrent_retries_of_one_command_write_it_once(mut d: Demo) {
    d.capture
        .receive_material(receipt("rcv-cr", "CR-1", "1000", p::Unit::Kg))
        .await
        .expect("receive CR-1");
    let before = d.position().await;

    // A flaky network: the same drying is sent 16 times at once.
    let req = drying("proc-cr", "CR-1", "250", p::Unit::Kg, "CR-OUT");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let mut c = d.capture.clone();
        let req = req.clone();
        tasks.push(tokio::spawn(async move { c.process_lots(req).await }));
    }
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(
            t.await
                .expect("sender task")
                .expect("every retry succeeds")
                .into_inner(),
        );
    }
    assert_eq!(replies.iter().filter(|r| !r.replayed).count(), 1, "{replies:?}");
    let first = replies.iter().find(|r| !r.replayed).expect("the first");
    for r in &replies {
        assert_eq!(
            (r.position, &r.hash, r.sequence),
            (first.position, &first.hash, first.sequence)
        );
    }
    assert_eq!(d.position().await, before + 1);
    assert_eq!(value_of(&d.lot("CR-1").await.balance), kg("750"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_control_characters_and_unknown_enum_values_name_the_field() {
    let mut d = Demo::start().await;
    let c = &mut d.capture;
    // Beyond what an exact decimal holds, or more places than a quantity keeps.
    for (i, bad) in ["79228162514264337593543950336", "1e400", "0.0000000001"]
        .iter()
        .enumerate()
    {
        let r = receipt(&format!("rcv-ov-{i}"), "OV-1", bad, p::Unit::Kg);
        let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
        assert_mentions(&s, &["quantity.value"]);
    }
    // The largest amount in tonnes would overflow in kilograms.
    let r = receipt("rcv-ov-t", "OV-1", "79228162514264337593543950", p::Unit::T);
    let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
    assert_mentions(&s, &["quantity"]);
    // Control characters in ids.
    for (i, lot) in ["OV\u{7}1", "OV\n1", "OV\u{0}1", "OV\u{202e}1"].iter().enumerate() {
        let r = receipt(&format!("rcv-ctl-{i}"), lot, "10", p::Unit::Kg);
        let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
        assert!(s.message().starts_with("lot_id"), "{lot:?}: {s:?}");
    }
    // An enum value this server does not know.
    let mut r = receipt("rcv-enum", "OV-1", "10", p::Unit::Kg);
    r.quantity = Some(p::Quantity {
        value: "10".into(),
        unit: 999,
    });
    let s = refused(&d.server, c.receive_material(r), Code::InvalidArgument, None).await;
    assert_mentions(&s, &["quantity.unit"]);
    let mut st = p::ChangeLotStatusRequest {
        command_id: "status-enum".into(),
        facility_id: DEMAK.into(),
        lot_id: RICE_BAG_LOT.into(),
        status: 42,
        reason: "unknown".into(),
        occurred_at: None,
    };
    let s = refused(&d.server, c.change_lot_status(st.clone()), Code::InvalidArgument, None).await;
    assert_mentions(&s, &["status"]);
    st.status = p::LotStatus::Unspecified as i32;
    refused(&d.server, c.change_lot_status(st), Code::InvalidArgument, None).await;
    assert_eq!(d.lot_error("OV-1").await.code(), Code::NotFound);
}

/// Sends request bytes as they are and decodes the reply as `R`: for requests
/// no generated client would send.
struct RawCodec<R>(PhantomData<R>);

impl<R: prost::Message + Default + Send + 'static> Codec for RawCodec<R> {
    type Encode = Vec<u8>;
    type Decode = R;
    type Encoder = RawEncoder;
    type Decoder = ReplyDecoder<R>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ReplyDecoder<R> {
        ReplyDecoder(PhantomData)
    }
}

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

struct ReplyDecoder<R>(PhantomData<R>);

impl<R: prost::Message + Default> Decoder for ReplyDecoder<R> {
    type Item = R;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        R::decode(buf)
            .map(Some)
            .map_err(|e| Status::internal(format!("decode the reply: {e}")))
    }
}

/// Calls `path` with `body` as the encoded request.
async fn send_raw<R: prost::Message + Default + Send + 'static>(
    server: &Server,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Response<R>, Status> {
    let mut grpc = tonic::client::Grpc::new(server.conn(server.admin_token.as_deref()).await.expect("channel"));
    grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(body), path, RawCodec(PhantomData)).await
}

/// `message` encoded, with the bytes of `text` (a string field's value) replaced by `bad`.
fn patched<M: prost::Message>(message: &M, text: &str, bad: &[u8]) -> Vec<u8> {
    assert_eq!(text.len(), bad.len(), "the patch keeps the length");
    let mut bytes = message.encode_to_vec();
    let at = bytes
        .windows(text.len())
        .position(|w| w == text.as_bytes())
        .unwrap_or_else(|| panic!("{text:?} is in the encoding"));
    bytes[at..at + bad.len()].copy_from_slice(bad);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_string_that_is_not_utf8_is_invalid_argument_naming_the_field() {
    let mut d = Demo::start().await;
    // "UTF8-LOT" with a lone continuation byte and a truncated sequence.
    let receipt_bytes = patched(
        &receipt("rcv-utf8", "UTF8-LOT", "10", p::Unit::Kg),
        "UTF8-LOT",
        b"UTF8-\x80\xc3(",
    );
    let s = refused(
        &d.server,
        send_raw::<p::CaptureReply>(&d.server, "/jejak.v1.CaptureService/ReceiveMaterial", receipt_bytes),
        Code::InvalidArgument,
        None,
    )
    .await;
    assert_mentions(&s, &["ReceiveMaterialRequest.lot_id", "UTF-8"]);
    // In a nested message: the path down to the field.
    let mut nested = receipt("rcv-utf8-nested", "UTF8-LOT", "10", p::Unit::Kg);
    nested.origin = Some(p::Origin {
        place: "Desa Karanganyar".into(),
        ..Default::default()
    });
    let nested_bytes = patched(&nested, "Karanganyar", b"Karang\xffnyar");
    let s = refused(
        &d.server,
        send_raw::<p::CaptureReply>(&d.server, "/jejak.v1.CaptureService/ReceiveMaterial", nested_bytes),
        Code::InvalidArgument,
        None,
    )
    .await;
    assert_mentions(&s, &["ReceiveMaterialRequest.origin", "Origin.place", "UTF-8"]);
    // The trace service too.
    let trace = p::TraceRequest {
        target: Some(p::Target {
            kind: Some(p::target::Kind::LotId(RICE_BAG_LOT.into())),
        }),
        max_depth: 0,
        max_nodes: 0,
    };
    let trace_bytes = patched(&trace, "DMK-BP", b"DMK\xfe\xfeP");
    let s = send_raw::<p::TraceReply>(&d.server, "/jejak.v1.TraceService/BackwardTrace", trace_bytes)
        .await
        .expect_err("refused");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert_mentions(&s, &["TraceRequest.target", "UTF-8"]);
    // The same bytes as valid UTF-8 are accepted: only the encoding was wrong.
    let valid = patched(
        &receipt("rcv-utf8", "UTF8-LOT", "10", p::Unit::Kg),
        "UTF8-LOT",
        b"UTF8-LOT",
    );
    send_raw::<p::CaptureReply>(&d.server, "/jejak.v1.CaptureService/ReceiveMaterial", valid)
        .await
        .expect("a valid receipt");
    assert_eq!(d.lot("UTF8-LOT").await.lot_id, "UTF8-LOT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_longer_than_their_limit_are_refused_naming_the_field_and_the_limit() {
    let mut d = Demo::start().await;
    let c = &mut d.capture;
    c.receive_material(receipt("rcv-many", "MANY-1", "20000", p::Unit::Kg))
        .await
        .expect("receipt");
    let packages = |n: usize| -> Vec<p::Package> {
        (0..n)
            .map(|i| p::Package {
                serial: format!("MANY-{i:05}"),
                quantity: qty("1", p::Unit::Kg),
            })
            .collect()
    };
    let mut too_many = pack("pack-many", "MANY-1", &[]);
    too_many.packages = packages(10_001);
    let s = refused(&d.server, c.pack_lot(too_many), Code::InvalidArgument, None).await;
    assert!(s.message().starts_with("packages"), "{s:?}");
    assert_mentions(&s, &["10001", "the limit is 10000"]);
    // The largest pack allowed goes through, in one request.
    let mut largest = pack("pack-largest", "MANY-1", &[]);
    largest.packages = packages(10_000);
    c.pack_lot(largest).await.expect("a pack of 10,000 packages");
    assert_eq!(d.lot("MANY-1").await.packages.len(), 10_000);
    let c = &mut d.capture;

    let mut shipment = ship("ship-many", "MANY-1", "1", p::Unit::Kg);
    shipment.quantity = None;
    shipment.package_serials = (0..10_001).map(|i| format!("MANY-{i:05}")).collect();
    let s = refused(&d.server, c.ship_lot(shipment), Code::InvalidArgument, None).await;
    assert!(s.message().starts_with("package_serials"), "{s:?}");
    assert_mentions(&s, &["the limit is 10000"]);

    let mut inputs = drying("proc-many-in", "MANY-1", "1", p::Unit::Kg, "MANY-OUT");
    inputs.inputs = (0..1_001)
        .map(|i| p::LotInput {
            lot_id: format!("IN-{i}"),
            quantity: qty("1", p::Unit::Kg),
        })
        .collect();
    let s = refused(&d.server, c.process_lots(inputs), Code::InvalidArgument, None).await;
    assert!(s.message().starts_with("inputs"), "{s:?}");
    assert_mentions(&s, &["1001", "the limit is 1000"]);
    let mut outputs = drying("proc-many-out", "MANY-1", "1", p::Unit::Kg, "MANY-OUT");
    outputs.outputs = (0..1_001)
        .map(|i| p::LotOutput {
            lot_id: format!("OUT-{i}"),
            product_id: DRIED_PADDY.into(),
            quantity: qty("1", p::Unit::Kg),
            owner_id: String::new(),
        })
        .collect();
    let s = refused(&d.server, c.process_lots(outputs), Code::InvalidArgument, None).await;
    assert!(s.message().starts_with("outputs"), "{s:?}");
    assert_mentions(&s, &["the limit is 1000"]);

    let mut inspection = inspect("insp-many", "MANY-1", &[]);
    inspection.measurements = vec![p::Measurement::default(); 201];
    let s = refused(&d.server, c.inspect_lot(inspection), Code::InvalidArgument, None).await;
    assert!(s.message().starts_with("measurements"), "{s:?}");
    assert_mentions(&s, &["the limit is 200"]);

    let mut documents = receipt("rcv-many-docs", "MANY-2", "10", p::Unit::Kg);
    documents.documents = vec![p::Document::default(); 101];
    let s = refused(&d.server, c.receive_material(documents), Code::InvalidArgument, None).await;
    assert!(s.message().starts_with("documents"), "{s:?}");
    assert_mentions(&s, &["the limit is 100"]);

    let standard = p::RegisterQualityStandardRequest {
        command_id: "std-many".into(),
        standard: Some(p::QualityStandard {
            id: "std-many".into(),
            name: "Too many parameters".into(),
            reference: String::new(),
            parameters: vec![p::Parameter::default(); 201],
        }),
    };
    let s = refused(
        &d.server,
        c.register_quality_standard(standard),
        Code::InvalidArgument,
        None,
    )
    .await;
    assert!(s.message().starts_with("standard.parameters"), "{s:?}");
    assert_mentions(&s, &["the limit is 200"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_lot_id_is_invalid_argument_naming_the_field_in_under_a_kib() {
    let mut d = Demo::start().await;
    let long = "L".repeat(1 << 20);
    let s = refused(
        &d.server,
        d.capture
            .receive_material(receipt("rcv-long-id", &long, "10", p::Unit::Kg)),
        Code::InvalidArgument,
        None,
    )
    .await;
    assert!(
        s.message().starts_with("lot_id: "),
        "{:?}",
        &s.message()[..80.min(s.message().len())]
    );
    assert!(s.message().len() < 1024, "a {} byte message", s.message().len());
    assert_mentions(&s, &["LLLL…\" (1048576 bytes) is longer than 20 bytes"]);
    let details = tonic_types::StatusExt::get_error_details(&s);
    let bad = details.bad_request().expect("a google.rpc.BadRequest");
    assert_eq!(bad.field_violations.len(), 1);
    assert_eq!(bad.field_violations[0].field, "lot_id");
    assert!(bad.field_violations[0].description.len() < 1024);
    let info = details.error_info().expect("a google.rpc.ErrorInfo");
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("INVALID_ARGUMENT", "jejak")
    );
    // Queries quote it as briefly.
    let s = d
        .trace
        .get_lot(p::GetLotRequest { lot_id: long })
        .await
        .expect_err("no such lot");
    assert!(s.message().len() < 1024, "a {} byte message", s.message().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_message_size_limit_is_resource_exhausted() {
    let mut d = Demo::start().await;
    let with_place = |bytes: usize| {
        let mut r = receipt("rcv-huge", "HUGE-1", "10", p::Unit::Kg);
        r.origin = Some(p::Origin {
            place: "x".repeat(bytes),
            ..Default::default()
        });
        r
    };
    // A request over the decoding limit is refused before it is read with
    // RESOURCE_EXHAUSTED (what gRPC clients expect), saying what the limit is.
    let s = refused(
        &d.server,
        d.capture.receive_material(with_place(5 << 20)),
        Code::ResourceExhausted,
        None,
    )
    .await;
    assert_mentions(&s, &["larger than the 4194304 bytes"]);
    // Just under 4 MiB is decoded, and refused for the field's length.
    let s = refused(
        &d.server,
        d.capture.receive_material(with_place((4 << 20) - 1024)),
        Code::InvalidArgument,
        None,
    )
    .await;
    assert!(s.message().starts_with("origin.place"), "{s:?}");
    assert_mentions(&s, &["the limit is 512"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_reply_is_cut_at_the_node_limit_and_says_so() {
    let server = Server::start(ServerOptions {
        demo: true,
        extra_args: vec!["--max-trace-nodes".into(), "3".into()],
        ..Default::default()
    })
    .expect("start a demo server");
    let mut d = Demo::attach(server).await;
    let trace = |max_nodes: u32| p::TraceRequest {
        target: Some(p::Target {
            kind: Some(p::target::Kind::LotId(RICE_BAG_LOT.into())),
        }),
        max_depth: 0,
        max_nodes,
    };
    // 0 asks for the server's maximum; more than it is lowered to it.
    for asked in [0, 1_000] {
        let r = d.trace.backward_trace(trace(asked)).await.expect("trace").into_inner();
        assert_eq!(r.nodes.len(), 3, "max_nodes {asked}: {r:?}");
        assert!(r.truncated);
        assert_eq!(r.truncated_reason(), p::TraceTruncation::MaxNodes);
        for e in &r.edges {
            for lot in [&e.input_lot_id, &e.output_lot_id] {
                assert!(
                    r.nodes.iter().any(|n| n.lot.as_ref().is_some_and(|l| &l.lot_id == lot)),
                    "edge to {lot}, which the reply does not list"
                );
            }
        }
    }
    // A request may ask for fewer, forward too.
    let r = d.trace.backward_trace(trace(2)).await.expect("trace").into_inner();
    assert_eq!((r.nodes.len(), r.truncated_reason()), (2, p::TraceTruncation::MaxNodes));
    let mut forward = trace(2);
    forward.target = Some(p::Target {
        kind: Some(p::target::Kind::LotId(PADDY_LOT.into())),
    });
    let r = d.trace.forward_trace(forward).await.expect("trace").into_inner();
    assert_eq!((r.nodes.len(), r.truncated_reason()), (2, p::TraceTruncation::MaxNodes));
    // A trace within the limit is complete.
    d.capture
        .receive_material(receipt("rcv-small", "SMALL-1", "10", p::Unit::Kg))
        .await
        .expect("receipt");
    d.server.wait_projected(crate::support::WAIT).await.expect("projected");
    let mut small = trace(0);
    small.target = Some(p::Target {
        kind: Some(p::target::Kind::LotId("SMALL-1".into())),
    });
    let r = d.trace.backward_trace(small).await.expect("trace").into_inner();
    assert_eq!(
        (r.nodes.len(), r.truncated, r.truncated_reason()),
        (1, false, p::TraceTruncation::Unspecified)
    );
}

/// Starts a capture request on a connection of its own and never sends its
/// body; returns the grpc-status and grpc-message the server answers with,
/// and after how long. h2 directly: it keeps no deadline of its own, so the
/// answer is the server's.
async fn stalled_request(server: &Server, grpc_timeout: Option<&str>) -> (String, String, Duration) {
    use tonic::codegen::http;
    let addr = server.url.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("HTTP/2 ready");
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("{}/jejak.v1.CaptureService/ReceiveMaterial", server.url))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header(
            "authorization",
            format!(
                "Bearer {}",
                server.admin_token.as_deref().expect("an administrator token")
            ),
        );
    if let Some(t) = grpc_timeout {
        request = request.header("grpc-timeout", t);
    }
    let started = Instant::now();
    // Kept, unused, so the request stays open.
    let (response, _body) = client
        .send_request(request.body(()).expect("request"), false)
        .expect("send the headers");
    let response = tokio::time::timeout(Duration::from_secs(60), response)
        .await
        .expect("an answer within a minute")
        .expect("a response");
    let elapsed = started.elapsed();
    let (parts, mut body) = response.into_parts();
    // Trailers-only (the status in the headers), or trailers after a body.
    let headers = match parts.headers.contains_key("grpc-status") {
        true => parts.headers,
        false => body.trailers().await.expect("trailers").expect("trailers sent"),
    };
    let get = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    (get("grpc-status"), get("grpc-message"), elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_is_deadline_exceeded_and_writes_nothing() {
    let server = Server::start(ServerOptions {
        demo: true,
        extra_args: vec!["--request-timeout".into(), "3s".into()],
        ..Default::default()
    })
    .expect("start a demo server");
    let d = Demo::attach(server).await;
    let before = d.position().await;
    // The client's deadline, shorter than the server's, wins: DEADLINE_EXCEEDED
    // (4), as the gRPC spec has it, a millisecond before the client's own
    // deadline so that the refusal sent is the server's.
    let (code, message, elapsed) = stalled_request(&d.server, Some("300m")).await;
    assert_eq!(code, "4", "{message}");
    assert!(message.contains("deadline"), "{message}");
    assert!(
        elapsed >= Duration::from_millis(290) && elapsed < Duration::from_secs(3),
        "answered after {elapsed:?}, not at the client's 300 ms deadline"
    );
    // Without a deadline from the client, the server's own applies.
    let (code, message, elapsed) = stalled_request(&d.server, None).await;
    assert_eq!(code, "4", "{message}");
    assert!(
        elapsed >= Duration::from_secs(3),
        "answered after {elapsed:?}, before the server's 3 s timeout"
    );
    assert_eq!(
        d.position().await,
        before,
        "a request past its deadline wrote something"
    );
}
