//! The one privacy boundary: canary values put into every field the public
//! view drops (quantities and balances, documents, the creating event, the
//! source lot, other units' serials and what a unit holds, event ids,
//! shipments with their consignee and document) never reach a caller who
//! may not see them, on any path: without a token (gRPC `GetLot` and
//! `LookupLabel`, the resolver's HTML, JSON, JSON-LD and linkset), as a
//! member of another UKM whose own lot was milled together with the
//! canaries, or as an operator of another facility (every trace RPC, on
//! every lot). All of them narrow through `jejak-read`'s `View`, so a field
//! added to a lot is dropped on every path at once.

use std::time::Duration;

use jejak_proto::v1 as p;
use jejak_server::demo::ids::{
    DEMAK, DRIED_PADDY, FARMERS_SUMBERREJEKI, PREMIUM_RICE_5KG, PREMIUM_RICE_GTIN, RICE_BUYER, TEGAL, UKM_BERKAH,
    UKM_SRIREJEKI,
};

use crate::support::{qty, Demo};

/// Values no public answer may contain, each in a field the public view drops.
const CANARIES: &[&str] = &[
    // Quantities received, milled, packed and shipped, and what is left.
    "4321.987",
    "2718.281",
    "7.77",
    "111.5",
    // A document's kind, reference and hash.
    "canary-kind",
    "CANARY-DOC-0451",
    "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00",
    // Command (event) ids of the lots' making: `created_by`.
    "canary-receipt-cmd",
    "canary-mill-cmd",
    // The second unit's serial, not the one the label names.
    "CNRY-0002",
    // The shipment's document and consignee.
    "CANARY-SJ-9907",
    RICE_BUYER,
    // The packing and inspection events' ids.
    "canary-pack",
    "canary-insp",
    // The inspection's measurement and finding (with more digits than a
    // time of day the page shows, "13.37 WIB", can have).
    "13.3791",
];

/// Receives, mills, packs two units, and ships one, with canaries in every
/// private field; returns the label of the first unit.
async fn lot_full_of_canaries(demo: &mut Demo) -> String {
    let c = &mut demo.capture;
    c.receive_material(p::ReceiveMaterialRequest {
        command_id: "canary-receipt-cmd".into(),
        facility_id: DEMAK.into(),
        lot_id: "CNRY-GKG-1".into(),
        product_id: DRIED_PADDY.into(),
        quantity: qty("4321.987", p::Unit::Kg),
        owner_id: UKM_SRIREJEKI.into(),
        supplier_id: FARMERS_SUMBERREJEKI.into(),
        documents: vec![p::Document {
            kind: "canary-kind".into(),
            reference: "CANARY-DOC-0451".into(),
            blake3: "c0ffee00".repeat(8),
            issuer: String::new(),
            valid_from: None,
            valid_until: None,
        }],
        ..Default::default()
    })
    .await
    .expect("receive");
    c.receive_material(p::ReceiveMaterialRequest {
        command_id: "berkah-receipt".into(),
        facility_id: DEMAK.into(),
        lot_id: "BRKH-GKG-1".into(),
        product_id: DRIED_PADDY.into(),
        quantity: qty("50", p::Unit::Kg),
        owner_id: UKM_BERKAH.into(),
        supplier_id: FARMERS_SUMBERREJEKI.into(),
        ..Default::default()
    })
    .await
    .expect("receive Berkah's paddy");
    c.process_lots(p::ProcessLotsRequest {
        command_id: "canary-mill-cmd".into(),
        facility_id: DEMAK.into(),
        process_step: "penggilingan".into(),
        inputs: vec![
            p::LotInput {
                lot_id: "CNRY-GKG-1".into(),
                quantity: qty("4321.987", p::Unit::Kg),
            },
            p::LotInput {
                lot_id: "BRKH-GKG-1".into(),
                quantity: qty("50", p::Unit::Kg),
            },
        ],
        outputs: vec![
            p::LotOutput {
                lot_id: "CNRY-BP-1".into(),
                product_id: PREMIUM_RICE_5KG.into(),
                quantity: qty("2718.281", p::Unit::Kg),
                owner_id: UKM_SRIREJEKI.into(),
            },
            p::LotOutput {
                lot_id: "BRKH-BP-1".into(),
                product_id: PREMIUM_RICE_5KG.into(),
                quantity: qty("30", p::Unit::Kg),
                owner_id: UKM_BERKAH.into(),
            },
        ],
        ..Default::default()
    })
    .await
    .expect("mill");
    c.inspect_lot(p::InspectLotRequest {
        command_id: "canary-insp".into(),
        facility_id: DEMAK.into(),
        lot_id: "CNRY-GKG-1".into(),
        standard_id: "std-gkg-mutu-giling".into(),
        measurements: vec![
            p::Measurement {
                parameter: "kadar_air".into(),
                value: "13.3791".into(),
                unit: "%".into(),
            },
            p::Measurement {
                parameter: "hampa_kotoran".into(),
                value: "1.5".into(),
                unit: "%".into(),
            },
        ],
        ..Default::default()
    })
    .await
    .expect("inspect");
    c.pack_lot(p::PackLotRequest {
        command_id: "canary-pack".into(),
        facility_id: DEMAK.into(),
        lot_id: "CNRY-BP-1".into(),
        gtin: PREMIUM_RICE_GTIN.into(),
        packages: vec![
            p::Package {
                serial: "CNRY-0001".into(),
                quantity: qty("7.77", p::Unit::Kg),
            },
            p::Package {
                serial: "CNRY-0002".into(),
                quantity: qty("7.77", p::Unit::Kg),
            },
        ],
        occurred_at: None,
    })
    .await
    .expect("pack");
    c.ship_lot(p::ShipLotRequest {
        command_id: "canary-ship".into(),
        facility_id: DEMAK.into(),
        lot_id: "CNRY-BP-1".into(),
        quantity: qty("111.5", p::Unit::Kg),
        package_serials: Vec::new(),
        consignee_id: RICE_BUYER.into(),
        document: "CANARY-SJ-9907".into(),
        occurred_at: None,
        dds_reference: String::new(),
    })
    .await
    .expect("ship");
    format!("/01/{PREMIUM_RICE_GTIN}/10/CNRY-BP-1/21/CNRY-0001")
}

fn assert_no_canary(path: &str, answer: &str) {
    assert_none_of(CANARIES, "a caller without a token", path, answer);
}

fn assert_none_of(canaries: &[&str], who: &str, path: &str, answer: &str) {
    for canary in canaries {
        assert!(
            !answer.contains(canary),
            "{path} shows the private value {canary:?} to {who}: {answer}"
        );
    }
}

/// Every trace RPC on every lot of the canary story, answered or refused,
/// as the given caller sees it: (what was asked, the answer or refusal).
async fn every_answer(
    client: &mut p::trace_service_client::TraceServiceClient<jejak_testkit::Conn>,
    label: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn show<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> String {
        match r {
            Ok(reply) => format!("{:?}", reply.into_inner()),
            Err(s) => format!("{:?} {}", s.code(), s.message()),
        }
    }
    let target = |lot: &str| {
        Some(p::Target {
            kind: Some(p::target::Kind::LotId(lot.into())),
        })
    };
    for lot in ["CNRY-GKG-1", "CNRY-BP-1", "BRKH-GKG-1", "BRKH-BP-1"] {
        let trace = |target| p::TraceRequest {
            target,
            ..Default::default()
        };
        out.push((
            format!("GetLot {lot}"),
            show(client.get_lot(p::GetLotRequest { lot_id: lot.into() }).await),
        ));
        out.push((
            format!("BackwardTrace {lot}"),
            show(client.backward_trace(trace(target(lot))).await),
        ));
        out.push((
            format!("ForwardTrace {lot}"),
            show(client.forward_trace(trace(target(lot))).await),
        ));
        out.push((
            format!("OriginShares {lot}"),
            show(
                client
                    .origin_shares(p::OriginSharesRequest { target: target(lot) })
                    .await,
            ),
        ));
        out.push((
            format!("LotHistory {lot}"),
            show(
                client
                    .lot_history(p::LotHistoryRequest {
                        lot_id: lot.into(),
                        as_of: None,
                    })
                    .await,
            ),
        ));
    }
    out.push((
        "LookupLabel".into(),
        show(
            client
                .lookup_label(p::LookupLabelRequest {
                    uri: format!("https://id.example{label}"),
                })
                .await,
        ),
    ));
    out.push((
        "BackwardTrace by serial".into(),
        show(
            client
                .backward_trace(p::TraceRequest {
                    target: Some(p::Target {
                        kind: Some(p::target::Kind::Serial("CNRY-0001".into())),
                    }),
                    ..Default::default()
                })
                .await,
        ),
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_private_field_reaches_another_member_or_operator_on_any_rpc() {
    let mut demo = Demo::start().await;
    let label = lot_full_of_canaries(&mut demo).await;
    let year = Duration::from_secs(365 * 86_400);
    let member = demo
        .server
        .issue_token(p::AccessRole::Member, &[], UKM_BERKAH, year)
        .await
        .expect("a member token for Berkah");
    let operator = demo
        .server
        .issue_token(p::AccessRole::Operator, &[TEGAL], "", year)
        .await
        .expect("an operator token for Tegal");
    let public: Vec<&str> = CANARIES.to_vec();
    // Berkah's own lot was made by the mill, so that event is its to see.
    let to_member: Vec<&str> = CANARIES.iter().copied().filter(|c| *c != "canary-mill-cmd").collect();
    for (who, token, canaries) in [
        ("a member of another UKM", Some(member.clone()), &to_member),
        ("an operator of another facility", Some(operator), &public),
        ("a caller without a token", None, &public),
    ] {
        let conn = demo.server.conn(token.as_deref()).await.expect("connect");
        let mut client = p::trace_service_client::TraceServiceClient::new(conn);
        let answers = every_answer(&mut client, &label).await;
        for (asked, answer) in &answers {
            assert_none_of(canaries, who, asked, answer);
        }
        // The sweep reached real answers, not only refusals.
        let answered = answers
            .iter()
            .filter(|(_, a)| !a.starts_with("Unauthenticated") && !a.starts_with("PermissionDenied"))
            .count();
        assert!(answered >= 5, "{who}: only {answered} answers: {answers:?}");
    }
    // Berkah sees its own story: its lot's history holds the mill event,
    // narrowed to its own input and output.
    let conn = demo.server.conn(Some(&member)).await.expect("connect");
    let history = p::trace_service_client::TraceServiceClient::new(conn)
        .lot_history(p::LotHistoryRequest {
            lot_id: "BRKH-BP-1".into(),
            as_of: None,
        })
        .await
        .expect("Berkah's history of its own lot")
        .into_inner();
    let mill = history
        .entries
        .iter()
        .find(|e| e.event_id == "canary-mill-cmd")
        .and_then(|e| e.event.as_ref()?.kind.as_ref());
    let Some(p::event::Kind::LotProcessed(mill)) = mill else {
        panic!("no mill event in {history:?}");
    };
    let ids = |l: Vec<&str>| l.into_iter().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        ids(mill.inputs.iter().map(|i| i.lot_id.as_str()).collect()),
        ["BRKH-GKG-1"]
    );
    assert_eq!(
        ids(mill.outputs.iter().map(|o| o.lot_id.as_str()).collect()),
        ["BRKH-BP-1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_private_field_reaches_the_public_on_any_path() {
    let mut demo = Demo::start().await;
    let label = lot_full_of_canaries(&mut demo).await;

    // The canaries are there for a caller who may see them: the test
    // checks real fields, not values that were never stored.
    let full = demo
        .trace
        .get_lot(p::GetLotRequest {
            lot_id: "CNRY-GKG-1".into(),
        })
        .await
        .expect("the administrator's view")
        .into_inner();
    let shown = format!("{full:?}");
    for canary in ["4321.987", "CANARY-DOC-0451", "canary-receipt-cmd"] {
        assert!(shown.contains(canary), "the full view lacks {canary}");
    }
    let bag = demo
        .trace
        .get_lot(p::GetLotRequest {
            lot_id: "CNRY-BP-1".into(),
        })
        .await
        .expect("the administrator's view")
        .into_inner();
    let shown = format!("{bag:?}");
    for canary in ["CNRY-0002", "CANARY-SJ-9907", RICE_BUYER, "2718.281"] {
        assert!(shown.contains(canary), "the full view lacks {canary}");
    }

    // gRPC without a token.
    let conn = demo.server.conn(None).await.expect("a connection without a token");
    let mut public = p::trace_service_client::TraceServiceClient::new(conn);
    for lot in ["CNRY-GKG-1", "CNRY-BP-1"] {
        let l = public
            .get_lot(p::GetLotRequest { lot_id: lot.into() })
            .await
            .expect("the public view of a lot")
            .into_inner();
        assert_eq!(l.lot_id, lot);
        assert_no_canary(&format!("GetLot {lot}"), &format!("{l:?}"));
    }
    let looked_up = public
        .lookup_label(p::LookupLabelRequest {
            uri: format!("https://id.example{label}"),
        })
        .await
        .expect("a public label lookup")
        .into_inner();
    assert_eq!(looked_up.lot_id, "CNRY-BP-1");
    assert_no_canary("LookupLabel", &format!("{:?}", looked_up.lot));

    // The resolver, in every form it answers.
    let forms: &[(&str, &[(&str, &str)])] = &[
        ("", &[("Accept", "text/html")]),
        ("?lang=en", &[("Accept", "text/html")]),
        ("", &[("Accept", "application/json")]),
        ("", &[("Accept", "application/ld+json")]),
        ("?linkType=linkset", &[]),
        ("?linkType=gs1:certificationInfo", &[]),
        ("?linkType=gs1:recallStatus", &[]),
    ];
    for (query, headers) in forms {
        let path = format!("{label}{query}");
        let reply = demo
            .server
            .http_get(&path, headers)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e:#}"));
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        let text = reply.text();
        assert!(text.contains("CNRY-BP-1"), "{path} is about the lot");
        assert_no_canary(&format!("GET {path} {headers:?}"), &text);
    }
}
