//! What regulators and exporters file: the EUDR geolocation of a lot, plot
//! geometry checked at capture, timber legality documents (SVLK), the due
//! diligence statement's reference on a shipment, and the timber balance
//! sheet.

use std::collections::HashSet;
use std::time::Duration;

use jejak_proto::v1 as p;
use jejak_server::demo::ids::{KLATEN, TEAK_CHAIR_LOT};
use serde_json::Value;
use tonic::Code;

use crate::support::{qty, refused, Demo};

const LOG_JATI: &str = "prd-klt-log-jati";
const OWNER: &str = "ukm-klt-jatimanunggal";
const SUPPLIER: &str = "sup-klt-kth-argolestari";

/// A teak log receipt at the Klaten workshop with valid legality documents.
fn log_receipt(lot: &str, origin: Option<p::Origin>) -> p::ReceiveMaterialRequest {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64;
    let doc = |kind: &str, reference: &str| p::Document {
        kind: kind.into(),
        reference: reference.into(),
        blake3: "ab".repeat(32),
        issuer: "KTH Argo Lestari Eromoko".into(),
        valid_from: Some(prost_types::Timestamp {
            seconds: now - 86_400,
            nanos: 0,
        }),
        valid_until: Some(prost_types::Timestamp {
            seconds: now + 86_400,
            nanos: 0,
        }),
    };
    p::ReceiveMaterialRequest {
        command_id: format!("rcv-{lot}"),
        facility_id: KLATEN.into(),
        lot_id: lot.into(),
        product_id: LOG_JATI.into(),
        quantity: qty("1.5", p::Unit::M3),
        owner_id: OWNER.into(),
        supplier_id: SUPPLIER.into(),
        origin,
        documents: vec![doc("dkp", "DKP-TEST-01"), doc("nota-angkutan", "NA-TEST-01")],
        ..Default::default()
    }
}

fn origin(geometry: &str, area_ha: &str) -> Option<p::Origin> {
    Some(p::Origin {
        place: "Desa Ngandong, Kec. Eromoko, Kab. Wonogiri".into(),
        plot_id: "WNG-TEST".into(),
        geometry: geometry.into(),
        producer_country: "ID".into(),
        area_ha: area_ha.into(),
        ..Default::default()
    })
}

/// The field a refusal names (google.rpc.BadRequest).
fn field_of(status: &tonic::Status) -> String {
    let details = tonic_types::StatusExt::get_error_details(status);
    details
        .bad_request()
        .and_then(|b| b.field_violations.first())
        .map(|v| v.field.clone())
        .unwrap_or_default()
}

/// The fields of one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

async fn get(demo: &Demo, path: &str, token: Option<&str>) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let reply = jejak_testkit::http_request(demo.server.authority(), "GET", path, &headers, b"")
        .await
        .expect("GET");
    (reply.status, serde_json::from_slice(&reply.body).unwrap_or(Value::Null))
}

/// Checks a GeoJSON geometry as RFC 7946 and the EU system require.
fn assert_geojson_geometry(g: &Value) {
    let in_range = |pos: &Value| {
        let (lon, lat) = (
            pos[0].as_f64().expect("a longitude"),
            pos[1].as_f64().expect("a latitude"),
        );
        assert!(
            (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat),
            "{pos}"
        );
    };
    match g["type"].as_str() {
        Some("Point") => in_range(&g["coordinates"]),
        Some("Polygon") => {
            for ring in g["coordinates"].as_array().expect("rings") {
                let ring = ring.as_array().expect("a ring");
                assert!(ring.len() >= 4, "a ring of {} positions", ring.len());
                assert_eq!(ring.first(), ring.last(), "a closed ring");
                ring.iter().for_each(in_range);
            }
        }
        other => panic!("not a plot geometry: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_chair_has_an_eudr_geolocation_with_every_plot_of_its_timber() {
    let mut demo = Demo::start().await;
    let admin = demo.server.admin_token.clone().expect("an admin token");
    let (status, collection) = get(&demo, &format!("/regulator/eudr/{TEAK_CHAIR_LOT}"), Some(&admin)).await;
    assert_eq!(status, 200, "{collection}");
    assert_eq!(collection["type"], "FeatureCollection");
    let features = collection["features"].as_array().expect("features");
    for f in features {
        assert_eq!(f["type"], "Feature");
        assert_geojson_geometry(&f["geometry"]);
        let props = f["properties"].as_object().expect("properties");
        let keys: HashSet<&str> = props.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            HashSet::from(["ProducerName", "ProducerCountry", "ProductionPlace", "Area"]),
            "{f}"
        );
        assert_eq!(props["ProducerCountry"], "ID");
        assert!(props["Area"].as_f64().is_some_and(|a| a > 0.0), "{f}");
    }

    // Every timber receipt behind the chair is one of its plots.
    let trace = demo
        .trace
        .backward_trace(p::TraceRequest {
            target: Some(p::Target {
                kind: Some(p::target::Kind::LotId(TEAK_CHAIR_LOT.into())),
            }),
            ..Default::default()
        })
        .await
        .expect("a backward trace")
        .into_inner();
    let plots: HashSet<String> = trace
        .nodes
        .iter()
        .filter_map(|n| n.lot.as_ref())
        .filter(|l| l.product_id.starts_with("prd-klt-log"))
        .map(|l| {
            let g = &l.origin.as_ref().expect("an origin").geometry;
            serde_json::from_str::<Value>(g).expect("GeoJSON").to_string()
        })
        .collect();
    assert!(plots.len() >= 2, "the chair's timber comes from several plots");
    let exported: HashSet<String> = features.iter().map(|f| f["geometry"].to_string()).collect();
    assert_eq!(exported, plots, "one feature per plot of the chair's timber");
    // Six decimals as captured.
    let text = collection.to_string();
    assert!(text.contains("110.837445") || text.contains("110.836424"), "{text}");

    // The same through the CLI.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("chair.geojson");
    let (st, out, err) = jejak_testkit::run_cli(&[
        "eudr",
        TEAK_CHAIR_LOT,
        "-o",
        file.to_str().expect("utf-8"),
        "--server",
        &demo.server.url,
        "--token",
        &admin,
    ])
    .expect("run jejak eudr");
    assert!(st.success(), "{err}");
    assert!(out.contains(&format!("wrote {} plots", features.len())), "{out}");
    let written: Value = serde_json::from_slice(&std::fs::read(&file).expect("the file")).expect("JSON");
    assert_eq!(written, collection);

    // A token is needed, and one that sees the lot.
    assert_eq!(
        get(&demo, &format!("/regulator/eudr/{TEAK_CHAIR_LOT}"), None).await.0,
        401
    );
    let stranger = demo
        .server
        .issue_token(p::AccessRole::Member, &[], "ukm-dmk-berkah", Duration::from_secs(3600))
        .await
        .expect("a member token");
    assert_eq!(
        get(&demo, &format!("/regulator/eudr/{TEAK_CHAIR_LOT}"), Some(&stranger))
            .await
            .0,
        403
    );

    // Timber received without a plot: a statement cannot be made, and the
    // refusal names the receipt.
    demo.capture
        .receive_material(log_receipt("KLT-LJT-NOPLOT", None))
        .await
        .expect("a receipt without geometry is recorded");
    demo.capture
        .process_lots(p::ProcessLotsRequest {
            command_id: "saw-noplot".into(),
            facility_id: KLATEN.into(),
            process_step: "penggergajian".into(),
            inputs: vec![p::LotInput {
                lot_id: "KLT-LJT-NOPLOT".into(),
                quantity: qty("1.5", p::Unit::M3),
            }],
            outputs: vec![p::LotOutput {
                lot_id: "KLT-PJT-NOPLOT".into(),
                product_id: "prd-klt-papan-jati-basah".into(),
                quantity: qty("0.9", p::Unit::M3),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("sawn");
    demo.server
        .wait_projected(crate::support::WAIT)
        .await
        .expect("projected");
    let (status, problem) = get(&demo, "/regulator/eudr/KLT-PJT-NOPLOT", Some(&admin)).await;
    assert_eq!(status, 422, "{problem}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("KLT-LJT-NOPLOT") && detail.contains("rcv-KLT-LJT-NOPLOT"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plot_geometry_and_legality_documents_are_checked_at_capture() {
    let mut demo = Demo::start().await;
    let polygon = r#"{"type":"Polygon","coordinates":[[[110.836424,-7.948658],[110.838154,-7.948771],[110.838463,-7.947525],[110.836424,-7.948658]]]}"#;
    let mut c = demo.capture.clone();
    c.receive_material(log_receipt("KLT-LJT-POLY", origin(polygon, "")))
        .await
        .expect("a polygon plot is recorded");
    let lot = demo.lot("KLT-LJT-POLY").await;
    let stored = lot.origin.expect("an origin");
    assert_eq!(
        serde_json::from_str::<Value>(&stored.geometry).expect("GeoJSON"),
        serde_json::from_str::<Value>(polygon).expect("GeoJSON"),
        "kept as given, six decimals"
    );

    let cases = [
        (
            r#"{"type":"Polygon","coordinates":[[[110.83,-7.94],[110.84,-7.95],[110.84,-7.94],[110.83,-7.95],[110.83,-7.94]]]}"#,
            "",
            "origin.geometry.coordinates[0][",
        ),
        (
            r#"{"type":"Polygon","coordinates":[[[110.83,-7.94],[110.84,-7.95],[110.84,-7.94]]]}"#,
            "",
            "origin.geometry.coordinates[0]",
        ),
        (
            r#"{"type":"Point","coordinates":[-7.94,210.83]}"#,
            "1",
            "origin.geometry.coordinates",
        ),
        (
            r#"{"type":"Point","coordinates":[110.83,-7.94]}"#,
            "4.5",
            "origin.area_ha",
        ),
        (r#"{"type":"Point","coordinates":[110.83,-7.94]}"#, "", "origin.area_ha"),
        (r#"{"type":"LineString","coordinates":[]}"#, "", "origin.geometry.type"),
        (r#"not json"#, "", "origin.geometry"),
        // Two plots of a MultiPolygon overlapping: the second is named.
        (
            r#"{"type":"MultiPolygon","coordinates":[[[[110.83,-7.95],[110.84,-7.95],[110.84,-7.94],[110.83,-7.94],[110.83,-7.95]]],[[[110.835,-7.945],[110.845,-7.945],[110.845,-7.935],[110.835,-7.935],[110.835,-7.945]]]]}"#,
            "",
            "origin.geometry.coordinates[1]",
        ),
    ];
    for (i, (geometry, area, field)) in cases.into_iter().enumerate() {
        let status = refused(
            &demo.server,
            c.receive_material(log_receipt(&format!("KLT-LJT-BAD{i}"), origin(geometry, area))),
            Code::InvalidArgument,
            None,
        )
        .await;
        assert!(field_of(&status).starts_with(field), "{geometry}: {status:?}");
    }
    let status = refused(
        &demo.server,
        c.receive_material(log_receipt(
            "KLT-LJT-BIG",
            origin(r#"{"type":"Point","coordinates":[110.83,-7.94]}"#, "4.5"),
        )),
        Code::InvalidArgument,
        None,
    )
    .await;
    assert!(status.message().contains("over 4 ha"), "{status:?}");

    // Timber legality at a facility that requires it.
    let mut bare = log_receipt("KLT-LJT-NODOC", None);
    bare.documents.clear();
    let status = refused(
        &demo.server,
        c.receive_material(bare),
        Code::FailedPrecondition,
        Some("timber-legality"),
    )
    .await;
    crate::support::assert_mentions(&status, &["svlk-certificate or dkp", "skshh or nota-angkutan"]);
    let mut expired = log_receipt("KLT-LJT-EXPIRED", None);
    expired.documents[0].valid_until = Some(prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 0,
    });
    expired.documents[0].valid_from = None;
    let status = refused(
        &demo.server,
        c.receive_material(expired),
        Code::FailedPrecondition,
        Some("timber-legality"),
    )
    .await;
    crate::support::assert_mentions(&status, &["DKP-TEST-01", "not valid then"]);
    let mut unsigned = log_receipt("KLT-LJT-NOISSUER", None);
    unsigned.documents[1].issuer.clear();
    let status = refused(&demo.server, c.receive_material(unsigned), Code::InvalidArgument, None).await;
    assert_eq!(field_of(&status), "documents[1].issuer");

    // The due diligence statement's reference on a shipment, shown on the lot.
    let lot = demo.lot(TEAK_CHAIR_LOT).await;
    assert!(
        lot.shipments.iter().any(|s| s.dds_reference == "26IDK7Q4M2X9PL5W"),
        "{:?}",
        lot.shipments
    );
    let status = refused(
        &demo.server,
        c.ship_lot(p::ShipLotRequest {
            command_id: "ship-bad-dds".into(),
            facility_id: KLATEN.into(),
            lot_id: "KLT-LJT-POLY".into(),
            quantity: qty("0.5", p::Unit::M3),
            consignee_id: "op-srg-kopkayu".into(),
            dds_reference: "not a reference!".into(),
            ..Default::default()
        }),
        Code::InvalidArgument,
        None,
    )
    .await;
    assert_eq!(field_of(&status), "dds_reference");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timber_balance_sheet_of_a_facility_adds_up_and_is_written_as_csv() {
    let mut demo = Demo::start().await;
    let admin = demo.server.admin_token.clone().expect("an admin token");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("timber.csv");
    let (st, _, err) = jejak_testkit::run_cli(&[
        "report",
        "timber",
        "--facility",
        KLATEN,
        "--from",
        "2026-09-01",
        "--to",
        "2026-11-01",
        "-o",
        file.to_str().expect("utf-8"),
        "--server",
        &demo.server.url,
        "--token",
        &admin,
    ])
    .expect("run jejak report timber");
    assert!(st.success(), "{err}");
    let csv = std::fs::read_to_string(&file).expect("the CSV");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("product,product_name,kind,unit,opening_stock,received,used,produced,shipped,closing_stock")
    );
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    let dec = |s: &str| s.parse::<jejak_domain::Decimal>().expect("a number");
    for r in &rows {
        assert_eq!(r.len(), 10, "{r:?}");
        assert_eq!(
            dec(&r[4]) + dec(&r[5]) + dec(&r[7]) - dec(&r[6]) - dec(&r[8]),
            dec(&r[9]),
            "closing = opening + received + produced - used - shipped: {r:?}"
        );
    }
    // Teak logs received at Klaten: the demo's three receipts.
    let mut received = jejak_domain::Decimal::ZERO;
    for lot in ["KLT-LJT-260902-01", "KLT-LJT-260902-02", "KLT-LJT-260903-01"] {
        let q = demo.lot(lot).await.quantity.expect("a quantity");
        received += dec(&q.value);
    }
    let logs = rows.iter().find(|r| r[0] == LOG_JATI).expect("a row of teak logs");
    assert_eq!((logs[2].as_str(), logs[3].as_str()), ("raw", "m³"));
    assert_eq!(dec(&logs[5]), received);
    assert!(dec(&logs[6]) > jejak_domain::Decimal::ZERO, "logs were sawn");
    let chairs = rows
        .iter()
        .find(|r| r[0] == "prd-klt-kursi-makan-jati")
        .expect("a row of teak chairs");
    assert_eq!((chairs[2].as_str(), chairs[3].as_str()), ("processed", "pcs"));
    assert!(dec(&chairs[8]) > jejak_domain::Decimal::ZERO, "chairs were shipped");
    assert!(rows.iter().all(|r| r[0] != "prd-klt-lem-pvac"), "glue is not timber");

    // Before the period: everything is opening stock, nothing flows.
    let (status, before) = get(
        &demo,
        &format!("/regulator/timber?facility={KLATEN}&from=2026-12-01&to=2027-01-01"),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200, "{before}");
    let before = before["rows"].as_array().expect("rows");
    assert!(
        before.iter().any(|r| r["product"] == LOG_JATI),
        "the teak logs are opening stock: {before:?}"
    );
    for r in before {
        for flow in ["received", "used", "produced", "shipped"] {
            assert_eq!(r[flow], "0", "{flow}: {r}");
        }
        assert_eq!(r["opening"], r["closing"], "{r}");
    }

    // Only regulators, administrators and the facility's operators.
    let other = demo
        .server
        .issue_token(p::AccessRole::Operator, &["fac-demak"], "", Duration::from_secs(3600))
        .await
        .expect("an operator token");
    let path = format!("/regulator/timber?facility={KLATEN}&from=2026-09-01&to=2026-11-01");
    assert_eq!(get(&demo, &path, Some(&other)).await.0, 403);
    assert_eq!(get(&demo, &path, None).await.0, 401);
    let (status, problem) = get(
        &demo,
        &format!("/regulator/timber?facility={KLATEN}&from=yesterday&to=2026-11-01"),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap_or_default().contains("from"),
        "{problem}"
    );
}

/// Totals beyond what a decimal holds (about 7.9e28) are refused with a
/// reason, not wrapped, and the server goes on answering: a component
/// counted in grams, received 800 times at the largest quantity a command
/// takes (twenty digits, in tonnes), adds up to 8e28 g.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timber_balance_whose_totals_outgrow_a_decimal_is_refused_with_a_reason() {
    let mut demo = Demo::start().await;
    let admin = demo.server.admin_token.clone().expect("an admin token");
    demo.capture
        .register_product(p::RegisterProductRequest {
            command_id: "reg-klt-paku".into(),
            product: Some(p::Product {
                id: "prd-klt-paku".into(),
                name: "Paku kayu".into(),
                sector: p::Sector::Furniture as i32,
                kind: p::ProductKind::Intermediate as i32,
                unit: p::Unit::G as i32,
                gtin: String::new(),
            }),
        })
        .await
        .expect("register a component counted in grams");
    let receipts = (0..800).map(|i| p::Command {
        kind: Some(p::command::Kind::ReceiveMaterial(p::ReceiveMaterialRequest {
            command_id: format!("rcv-paku-{i}"),
            facility_id: KLATEN.into(),
            lot_id: format!("KLT-PAKU-{i}"),
            product_id: "prd-klt-paku".into(),
            quantity: qty("99999999999999999999", p::Unit::T),
            owner_id: OWNER.into(),
            supplier_id: SUPPLIER.into(),
            ..Default::default()
        })),
    });
    let mut replies = demo
        .capture
        .capture_stream(tokio_stream::iter(receipts))
        .await
        .expect("open a bulk stream")
        .into_inner();
    let mut recorded = 0;
    while let Some(r) = replies.message().await.expect("read an answer") {
        match r.outcome {
            Some(p::capture_stream_reply::Outcome::Recorded(_)) => recorded += 1,
            other => panic!("receipt {} not recorded: {other:?}", r.index),
        }
    }
    assert_eq!(recorded, 800);
    demo.server
        .wait_projected(crate::support::WAIT)
        .await
        .expect("projected");

    let path = format!("/regulator/timber?facility={KLATEN}&from=2026-01-01&to=2100-01-01");
    let (status, problem) = get(&demo, &path, Some(&admin)).await;
    assert_eq!(status, 422, "{problem}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("prd-klt-paku") && detail.contains("add up beyond"),
        "{problem}"
    );
    // A period that ends before the receipts still adds up.
    let (status, rows) = get(
        &demo,
        &format!("/regulator/timber?facility={KLATEN}&from=2026-09-01&to=2026-11-01"),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200, "{rows}");
    assert!(!rows["rows"].as_array().expect("rows").is_empty(), "{rows}");
}
