//! The one privacy boundary: canary values put into every field the public
//! view drops (quantities and balances, documents, the creating event, the
//! source lot, other units' serials, shipments with their consignee and
//! document) never reach a caller without a token, on any public path:
//! gRPC `GetLot` and `LookupLabel`, and the resolver's HTML, JSON, JSON-LD
//! and linkset. All of them narrow lots through `jejak-read`'s `View`, so a
//! field added to a lot is dropped on every path at once.

use jejak_proto::v1 as p;
use jejak_server::demo::ids::{
    DEMAK, DRIED_PADDY, FARMERS_SUMBERREJEKI, PREMIUM_RICE_5KG, PREMIUM_RICE_GTIN, RICE_BUYER, UKM_SRIREJEKI,
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
        }],
        ..Default::default()
    })
    .await
    .expect("receive");
    c.process_lots(p::ProcessLotsRequest {
        command_id: "canary-mill-cmd".into(),
        facility_id: DEMAK.into(),
        process_step: "penggilingan".into(),
        inputs: vec![p::LotInput {
            lot_id: "CNRY-GKG-1".into(),
            quantity: qty("4321.987", p::Unit::Kg),
        }],
        outputs: vec![p::LotOutput {
            lot_id: "CNRY-BP-1".into(),
            product_id: PREMIUM_RICE_5KG.into(),
            quantity: qty("2718.281", p::Unit::Kg),
            owner_id: String::new(),
        }],
        ..Default::default()
    })
    .await
    .expect("mill");
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
    })
    .await
    .expect("ship");
    format!("/01/{PREMIUM_RICE_GTIN}/10/CNRY-BP-1/21/CNRY-0001")
}

fn assert_no_canary(path: &str, answer: &str) {
    for canary in CANARIES {
        assert!(
            !answer.contains(canary),
            "{path} shows the private value {canary:?} to a caller without a token"
        );
    }
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
