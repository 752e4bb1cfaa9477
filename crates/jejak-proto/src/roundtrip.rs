//! Property tests: every domain event survives its trip through the proto
//! message the log stores and back (`event_to_proto`, `decode_event`), every
//! command through the request that carries it, every query through its
//! request; so a field added on one side and forgotten on the other fails
//! here.

use jejak_domain as d;
use jejak_domain::gs1::Gtin;
use proptest::prelude::*;

use crate::v1 as p;
use crate::{decode_event, event_to_proto};

fn id() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9:_.-]{0,23}"
}

fn lot() -> impl Strategy<Value = String> {
    "[A-Z][A-Z0-9._-]{0,19}"
}

fn text() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9 ,.()-]{0,39}"
}

fn time() -> impl Strategy<Value = d::Time> {
    (946_684_800i64..4_102_444_800, 0i32..1_000_000_000).prop_map(|(s, n)| d::Time::from_unix(s, n).expect("in range"))
}

fn decimal() -> impl Strategy<Value = d::Decimal> {
    (0i64..10_000_000_000, 0u32..7).prop_map(|(m, scale)| d::Decimal::new(m, scale))
}

fn unit() -> impl Strategy<Value = d::Unit> {
    proptest::sample::select(d::Unit::ALL.to_vec())
}

fn quantity() -> impl Strategy<Value = d::Quantity> {
    (decimal(), unit()).prop_map(|(v, u)| d::Quantity::parse("q", &v.to_string(), u).expect("a quantity"))
}

fn gtin() -> impl Strategy<Value = Gtin> {
    proptest::sample::select(vec!["08997001001018", "08997001009991", "4006381333931", "96385074"])
        .prop_map(|g| Gtin::parse(g).expect("a valid GTIN"))
}

fn gln() -> impl Strategy<Value = jejak_domain::gs1::Gln> {
    proptest::sample::select(vec!["8997001000011", "8997001000028", "0614141000012"])
        .prop_map(|g| jejak_domain::gs1::Gln::parse(g).expect("a valid GLN"))
}

fn geo() -> impl Strategy<Value = d::GeoPoint> {
    (-90.0f64..=90.0, -180.0f64..=180.0).prop_map(|(latitude, longitude)| d::GeoPoint { latitude, longitude })
}

fn sector() -> impl Strategy<Value = d::Sector> {
    proptest::sample::select(vec![
        d::Sector::Rice,
        d::Sector::Metal,
        d::Sector::Garment,
        d::Sector::Furniture,
    ])
}

fn origin() -> impl Strategy<Value = d::Origin> {
    (text(), proptest::option::of(id()), proptest::option::of(geo())).prop_map(|(place, plot_id, plot)| d::Origin {
        place,
        plot_id: plot_id.unwrap_or_default(),
        plot,
        area_ha: None,
        geometry: None,
        producer_country: String::new(),
    })
}

fn document() -> impl Strategy<Value = d::Document> {
    (id(), text(), any::<[u8; 32]>()).prop_map(|(kind, reference, blake3)| d::Document {
        kind,
        reference,
        blake3,
        issuer: String::new(),
        valid_from: None,
        valid_until: None,
    })
}

fn measurement() -> impl Strategy<Value = d::Measurement> {
    (id(), decimal(), "[a-z%]{1,4}").prop_map(|(parameter, value, unit)| d::Measurement { parameter, value, unit })
}

fn parameter() -> impl Strategy<Value = d::Parameter> {
    (
        id(),
        text(),
        "[a-z%]{1,4}",
        proptest::option::of(decimal()),
        proptest::option::of(decimal()),
        any::<bool>(),
    )
        .prop_map(|(code, name, unit, min, max, required)| d::Parameter {
            code,
            name,
            unit,
            min,
            max,
            required,
        })
}

fn master_data() -> impl Strategy<Value = d::Event> {
    let roles = proptest::sample::subsequence(
        vec![
            d::PartyRole::Ukm,
            d::PartyRole::Supplier,
            d::PartyRole::Customer,
            d::PartyRole::Operator,
        ],
        1..=4,
    );
    prop_oneof![
        (id(), text(), roles, text(), text(), proptest::option::of(gln())).prop_map(
            |(id, name, roles, district, contact, gln)| {
                d::Event::PartyRegistered(d::Party {
                    id,
                    name,
                    roles,
                    district,
                    contact,
                    gln,
                })
            }
        ),
        (id(), text(), sector(), text(), id(), proptest::option::of(geo())).prop_map(
            |(id, name, sector, district, operator_id, location)| {
                d::Event::FacilityRegistered(d::Facility {
                    id,
                    name,
                    sector,
                    district,
                    operator_id,
                    location,
                    gln: None,
                    requires_legality: false,
                })
            }
        ),
        (
            id(),
            text(),
            sector(),
            proptest::sample::select(vec![
                d::ProductKind::Raw,
                d::ProductKind::Intermediate,
                d::ProductKind::Finished
            ]),
            unit(),
            proptest::option::of(gtin())
        )
            .prop_map(|(id, name, sector, kind, unit, gtin)| {
                d::Event::ProductRegistered(d::Product {
                    id,
                    name,
                    sector,
                    kind,
                    unit,
                    gtin,
                })
            }),
        (id(), text(), text(), proptest::collection::vec(parameter(), 0..4)).prop_map(
            |(id, name, reference, parameters)| {
                d::Event::StandardRegistered(d::QualityStandard {
                    id,
                    name,
                    reference,
                    parameters,
                })
            }
        ),
    ]
}

fn lot_events() -> impl Strategy<Value = d::Event> {
    let when = || proptest::option::of(time());
    prop_oneof![
        (
            (lot(), id(), id(), quantity(), id(), id()),
            (
                origin(),
                proptest::collection::vec(document(), 0..3),
                proptest::option::of(lot()),
                when()
            )
        )
            .prop_map(
                |(
                    (lot_id, facility_id, product_id, quantity, owner_id, supplier_id),
                    (origin, documents, source_lot_id, occurred_at),
                )| {
                    d::Event::MaterialReceived(d::MaterialReceived {
                        lot_id,
                        facility_id,
                        product_id,
                        quantity,
                        owner_id,
                        supplier_id,
                        origin,
                        documents,
                        source_lot_id,
                        occurred_at,
                    })
                }
            ),
        (
            (lot(), id(), id(), proptest::collection::vec(measurement(), 0..4)),
            (
                proptest::sample::select(vec![
                    d::Verdict::Conformant,
                    d::Verdict::NonConformant,
                    d::Verdict::Hold
                ]),
                proptest::collection::vec(text(), 0..3),
                text(),
                when()
            )
        )
            .prop_map(
                |((lot_id, facility_id, standard_id, measurements), (verdict, findings, inspector, occurred_at))| {
                    d::Event::LotInspected(d::LotInspected {
                        lot_id,
                        facility_id,
                        standard_id,
                        measurements,
                        verdict,
                        findings,
                        inspector,
                        occurred_at,
                    })
                }
            ),
        (
            id(),
            text(),
            text(),
            proptest::collection::vec((lot(), quantity()), 1..4),
            proptest::collection::vec((lot(), id(), quantity(), proptest::option::of(id())), 1..4),
            when()
        )
            .prop_map(|(facility_id, process_step, line, inputs, outputs, occurred_at)| {
                d::Event::LotProcessed(d::LotProcessed {
                    facility_id,
                    process_step,
                    line,
                    inputs: inputs
                        .into_iter()
                        .map(|(lot_id, quantity)| d::LotInput { lot_id, quantity })
                        .collect(),
                    outputs: outputs
                        .into_iter()
                        .map(|(lot_id, product_id, quantity, owner)| d::LotOutput {
                            lot_id,
                            product_id,
                            quantity,
                            owner_id: owner.unwrap_or_default(),
                        })
                        .collect(),
                    occurred_at,
                })
            }),
        (
            id(),
            lot(),
            gtin(),
            proptest::collection::vec((lot(), quantity()), 1..4),
            when()
        )
            .prop_map(|(facility_id, lot_id, gtin, packages, occurred_at)| {
                d::Event::LotPacked(d::LotPacked {
                    facility_id,
                    lot_id,
                    gtin,
                    packages: packages
                        .into_iter()
                        .map(|(serial, quantity)| d::Package { serial, quantity })
                        .collect(),
                    occurred_at,
                })
            }),
        (
            id(),
            lot(),
            proptest::option::of(quantity()),
            proptest::collection::vec(lot(), 0..3),
            id(),
            text(),
            when()
        )
            .prop_map(
                |(facility_id, lot_id, quantity, package_serials, consignee_id, document, occurred_at)| {
                    d::Event::LotShipped(d::LotShipped {
                        facility_id,
                        lot_id,
                        quantity,
                        package_serials,
                        consignee_id,
                        document,
                        occurred_at,
                        dds_reference: String::new(),
                    })
                }
            ),
        (
            id(),
            lot(),
            proptest::sample::select(vec![
                d::LotStatus::Active,
                d::LotStatus::OnHold,
                d::LotStatus::Released,
                d::LotStatus::Recalled,
                d::LotStatus::Disposed
            ]),
            text(),
            when()
        )
            .prop_map(|(facility_id, lot_id, status, reason, occurred_at)| {
                d::Event::LotStatusChanged(d::LotStatusChanged {
                    facility_id,
                    lot_id,
                    status,
                    reason,
                    occurred_at,
                })
            }),
        (id(), id(), text(), proptest::option::of(id()), when()).prop_map(
            |(facility_id, voided_event_id, reason, replacement_event_id, occurred_at)| {
                d::Event::EventVoided(d::EventVoided {
                    facility_id,
                    voided_event_id,
                    reason,
                    replacement_event_id,
                    occurred_at,
                })
            }
        ),
    ]
}

fn access_events() -> impl Strategy<Value = d::Event> {
    prop_oneof![
        (
            id(),
            any::<[u8; 32]>(),
            proptest::sample::select(vec![
                d::Role::Admin,
                d::Role::Operator,
                d::Role::Member,
                d::Role::Regulator
            ]),
            proptest::collection::vec(id(), 0..3),
            proptest::option::of(id()),
            time(),
            text()
        )
            .prop_map(
                |(token_id, secret_hash, role, facility_ids, party_id, expires_at, label)| {
                    d::Event::TokenIssued(d::TokenIssued {
                        token_id,
                        secret_hash,
                        role,
                        facility_ids,
                        party_id,
                        expires_at,
                        label,
                    })
                }
            ),
        (id(), text()).prop_map(|(token_id, reason)| d::Event::TokenRevoked(d::TokenRevoked { token_id, reason })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_event_survives_the_proto_it_is_stored_as(
        event in prop_oneof![master_data(), lot_events(), access_events()]
    ) {
        let back = decode_event(event_to_proto(&event));
        prop_assert_eq!(back, Ok(event));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_command_survives_the_request_that_carries_it(
        command_id in id(),
        event in prop_oneof![master_data(), lot_events(), access_events()]
    ) {
        let command = d::Command::from(event);
        let back = crate::command_from_proto(crate::command_to_proto(&command_id, &command));
        prop_assert_eq!(back, Ok((command_id, command)));
    }
}

fn target() -> impl Strategy<Value = d::Target> {
    prop_oneof![
        lot().prop_map(d::Target::Lot),
        lot().prop_map(d::Target::Serial),
        (gtin(), lot(), proptest::option::of(lot()))
            .prop_map(|(g, l, s)| { d::Target::Label(d::gs1::DigitalLink::new(g, l, s).expect("GS1 characters")) }),
    ]
}

proptest! {
    #[test]
    fn trace_queries_round_trip(target in target(), max_depth: u32, max_nodes: u32) {
        let q = d::TraceQuery { target, max_depth, max_nodes };
        prop_assert_eq!(d::TraceQuery::try_from(p::TraceRequest::from(&q)), Ok(q));
    }

    #[test]
    fn history_queries_round_trip(lot_id in lot(), at in proptest::option::of(time())) {
        let q = d::HistoryQuery { lot_id, as_of: at };
        prop_assert_eq!(d::HistoryQuery::try_from(p::LotHistoryRequest::from(&q)), Ok(q));
    }
}

#[test]
fn a_query_without_a_target_names_the_field() {
    let e = d::TraceQuery::try_from(p::TraceRequest::default()).expect_err("no target");
    assert_eq!(e.to_string(), "target: give a lot id, a package serial or a label");
    let e = d::Target::try_from(p::OriginSharesRequest {
        target: Some(p::Target { kind: None }),
    })
    .expect_err("no kind");
    assert!(e.to_string().starts_with("target: "), "{e}");
    let e = d::LotQuery::try_from(p::GetLotRequest {
        lot_id: "L".repeat(1 << 20),
    })
    .expect_err("too long");
    assert!(e.to_string().starts_with("lot_id: \"LLLL"), "{e}");
    assert!(e.to_string().len() < 200, "{e}");
    let e = d::LabelQuery::try_from(p::LookupLabelRequest { uri: "/01/123".into() }).expect_err("malformed");
    assert!(e.to_string().starts_with("uri: "), "{e}");
}

/// A refused field deep in an event is named by its whole path, built only
/// for the one refused.
#[test]
fn a_refused_field_inside_a_list_or_origin_is_named_by_its_whole_path() {
    let q = |value: &str, unit: p::Unit| {
        Some(p::Quantity {
            value: value.into(),
            unit: unit as i32,
        })
    };
    let field_of = |event: p::event::Kind| match decode_event(p::Event { kind: Some(event) }) {
        Err(d::DomainError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    };
    let processed = |inputs: Vec<p::LotInput>, outputs: Vec<p::LotOutput>| {
        p::event::Kind::LotProcessed(p::LotProcessed {
            facility_id: "fac".into(),
            process_step: "milling".into(),
            inputs,
            outputs,
            ..Default::default()
        })
    };
    let input = |lot: &str, quantity| p::LotInput {
        lot_id: lot.into(),
        quantity,
    };
    let output = p::LotOutput {
        lot_id: "OUT".into(),
        product_id: "rice".into(),
        quantity: q("5", p::Unit::Kg),
        owner_id: String::new(),
    };
    let good = input("A", q("1", p::Unit::Kg));
    assert_eq!(
        field_of(processed(
            vec![good.clone(), input("B", q("x", p::Unit::Kg))],
            vec![output.clone()]
        )),
        "inputs[1].quantity.value"
    );
    assert_eq!(
        field_of(processed(vec![good.clone(), input("B", None)], vec![output.clone()])),
        "inputs[1].quantity"
    );
    assert_eq!(
        field_of(processed(vec![input("", q("1", p::Unit::Kg))], vec![output.clone()])),
        "inputs[0].lot_id"
    );
    let unitless = p::LotOutput {
        quantity: q("5", p::Unit::Unspecified),
        ..output.clone()
    };
    assert_eq!(
        field_of(processed(vec![good.clone()], vec![output.clone(), unitless])),
        "outputs[1].quantity.unit"
    );
    let ownerless = p::LotOutput {
        owner_id: "bad owner".into(),
        ..output
    };
    assert_eq!(field_of(processed(vec![good], vec![ownerless])), "outputs[0].owner_id");
    let packed = p::event::Kind::LotPacked(p::LotPacked {
        lot_id: "L".into(),
        facility_id: "fac".into(),
        gtin: "09506000134352".into(),
        packages: vec![p::Package {
            serial: "S1".into(),
            quantity: q("0", p::Unit::Kg),
        }],
        ..Default::default()
    });
    assert_eq!(field_of(packed), "packages[0].quantity.value");
    let received = |origin: p::Origin| {
        p::event::Kind::MaterialReceived(p::MaterialReceived {
            lot_id: "R".into(),
            facility_id: "fac".into(),
            product_id: "rice".into(),
            quantity: q("1", p::Unit::Kg),
            owner_id: "ukm".into(),
            supplier_id: "sup".into(),
            origin: Some(origin),
            ..Default::default()
        })
    };
    assert_eq!(
        field_of(received(p::Origin {
            place: "Desa\u{7}".into(),
            ..Default::default()
        })),
        "origin.place"
    );
    assert_eq!(
        field_of(received(p::Origin {
            plot: Some(p::GeoPoint {
                latitude: 95.0,
                longitude: 110.0
            }),
            ..Default::default()
        })),
        "origin.plot"
    );
}
