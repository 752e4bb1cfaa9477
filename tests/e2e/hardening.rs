//! Regression tests for the attacks the server once failed: each reproduces
//! what was done and shows it refused or bounded.

use std::time::Duration;

use jejak_proto::v1 as p;
use jejak_proto::v1::capture_service_client::CaptureServiceClient;
use tonic::Code;

use crate::support::{assert_mentions, qty, refused, Demo};

/// Demak's rice bran, shipped in bulk to a feed customer (not to Rembang).
const BRAN_LOT: &str = "DMK-BKT-260908";
const BRAN: &str = "prd-dmk-bekatul";
const BRAN_SHIPMENT: &str = "demo-dmk-0032";
const REMBANG: &str = "fac-rembang";
const REMBANG_OPERATOR: &str = "op-rbg-kopkonveksi";

/// Finding 1: an operator of Rembang "received" Demak's bran as a transfer
/// at Rembang, as Demak's premium rice, and the new lot showed Demak's
/// inputs and UKM as its own story; Demak could then not void its shipment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_of_a_lot_shipped_elsewhere_is_refused_and_the_shipment_stays_voidable() {
    let demo = Demo::start().await;
    let token = demo
        .server
        .issue_token(p::AccessRole::Operator, &[REMBANG], "", Duration::from_secs(86_400))
        .await
        .expect("a Rembang operator's token");
    let mut rembang = CaptureServiceClient::new(demo.server.conn(Some(&token)).await.expect("connect"));
    let forged = |cmd: &str, product: &str| p::ReceiveMaterialRequest {
        command_id: cmd.into(),
        facility_id: REMBANG.into(),
        lot_id: "RBG-FORGED-1".into(),
        product_id: product.into(),
        quantity: qty("1330", p::Unit::Kg),
        owner_id: "ukm-rbg-sekarjagad".into(),
        supplier_id: REMBANG_OPERATOR.into(),
        source_lot_id: BRAN_LOT.into(),
        ..Default::default()
    };
    // As Demak's premium rice: not the product that was shipped.
    let s = refused(
        &demo.server,
        rembang.receive_material(forged("forge-1", "prd-dmk-beras-premium-5kg")),
        Code::FailedPrecondition,
        Some("product-mismatch"),
    )
    .await;
    assert_mentions(&s, &[BRAN_LOT, BRAN]);
    // As bran: it was shipped to a feed customer, not to Rembang's operator.
    let s = refused(
        &demo.server,
        rembang.receive_material(forged("forge-2", BRAN)),
        Code::FailedPrecondition,
        Some("not-in-transit"),
    )
    .await;
    assert_mentions(&s, &[BRAN_LOT, REMBANG_OPERATOR, "0 kg"]);
    let mut demo = demo;
    assert_eq!(demo.lot_error("RBG-FORGED-1").await.code(), Code::NotFound);
    // Demak can still correct its own shipment.
    demo.capture
        .void_event(p::VoidEventRequest {
            command_id: "void-bran-shipment".into(),
            facility_id: "fac-demak".into(),
            event_id: BRAN_SHIPMENT.into(),
            reason: "wrong consignee".into(),
            ..Default::default()
        })
        .await
        .expect("Demak voids its shipment");
    let bran = demo.lot(BRAN_LOT).await;
    assert!(bran.shipments.is_empty(), "{:?}", bran.shipments);
}
