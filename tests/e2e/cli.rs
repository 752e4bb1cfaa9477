//! The `jejak` command line against a running demo server: traces as trees
//! and JSON, origin shares, histories, label lookups, status, `jejak import`
//! of a JSON Lines file, and `jejak rebuild` of a stopped server's data.

use jejak_server::demo::ids::{
    DRIED_PADDY_LOT, HELD_SHIRT_LOT, PADDY_LOT, RECALLED_CHAIR_LOT, RICE_BAG_LOT, RICE_BAG_SERIAL, UKM_SIDOMAKMUR,
};
use std::io::Write as _;
use std::process::ExitStatus;

use jejak_proto::v1 as p;
use jejak_testkit::{run_cli, Server, ServerOptions};

use crate::support::{Demo, WAIT};

const BAG_LABEL: &str = "https://id.example.org/01/08997001001018/10/DMK-BP-260911/21/DMK5P-000001";

fn jejak(args: &[&str]) -> (ExitStatus, String, String) {
    run_cli(args).expect("run the jejak binary")
}

/// A server's URL and the administrator token its client commands carry.
struct At {
    url: String,
    token: String,
}

impl At {
    fn of(server: &Server) -> At {
        At {
            url: server.url.clone(),
            token: server
                .admin_token
                .clone()
                .expect("the server wrote an administrator token"),
        }
    }

    /// Runs a client command against the server, with the token.
    fn run(&self, args: &[&str]) -> (ExitStatus, String, String) {
        let mut all = args.to_vec();
        all.extend(["--server", &self.url, "--token", &self.token]);
        jejak(&all)
    }
}

/// Runs a client command against `url` and expects it to succeed.
fn ok(url: &At, args: &[&str]) -> String {
    let (status, out, err) = url.run(args);
    assert!(status.success(), "jejak {args:?} failed ({status}): {err}");
    out
}

fn json(url: &At, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ok(url, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("jejak {all:?} --json is not JSON ({e}): {out}"))
}

fn lot_ids(nodes: &serde_json::Value) -> Vec<String> {
    nodes
        .as_array()
        .expect("nodes is an array")
        .iter()
        .map(|n| n["lot"]["lotId"].as_str().expect("lotId").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_prints_a_tree_of_the_chain() {
    let d = Demo::start().await;
    let url = At::of(&d.server);

    let out = ok(&url, &["trace", "back", RICE_BAG_LOT]);
    let first = out.lines().next().expect("a first line");
    assert!(first.starts_with(RICE_BAG_LOT), "{out}");
    for part in [
        "DMK-BRS-260908",
        PADDY_LOT,
        "DMK-GKP-260902-02",
        "UKM Beras Sido Makmur",
        "Gapoktan Sumber Rejeki Karanganyar",
        "used 3340 kg (penggilingan)",
        "└─ ",
    ] {
        assert!(out.contains(part), "no {part:?} in:\n{out}");
    }
    // The tree nests: a receipt is indented below the lot it went into.
    let receipt = out.lines().find(|l| l.contains(PADDY_LOT)).expect("receipt line");
    let milled = out
        .lines()
        .find(|l| l.contains(": DMK-BRS-260908"))
        .expect("milled line");
    let indent = |l: &str| l.chars().take_while(|c| !c.is_alphanumeric()).count();
    assert!(indent(receipt) > indent(milled), "not nested:\n{out}");

    let out = ok(&url, &["trace", "back", "--serial", RICE_BAG_SERIAL]);
    assert!(out.starts_with("package DMK5P-000001"), "{out}");
    assert!(out.contains("DMK-GKP-260902-01"), "{out}");

    let out = ok(&url, &["trace", "forward", PADDY_LOT]);
    for part in [
        RICE_BAG_LOT,
        "packages: 100 (100 shipped)",
        "shipments:",
        "Toko Beras Sumber Pangan Demak",
    ] {
        assert!(out.contains(part), "no {part:?} in:\n{out}");
    }
    let out = ok(&url, &["trace", "back", RICE_BAG_LOT, "--max-depth", "1"]);
    assert!(out.contains("truncated"), "{out}");
    assert!(!out.contains("DMK-GKP-"), "{out}");

    let (status, _, err) = url.run(&["trace", "back", "NO-SUCH-LOT"]);
    assert!(!status.success());
    assert!(err.contains("NO-SUCH-LOT"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_parses_and_matches_the_grpc_reply() {
    let mut d = Demo::start().await;
    let url = At::of(&d.server);
    let grpc = d
        .trace
        .backward_trace(p::TraceRequest {
            target: Some(p::Target {
                kind: Some(p::target::Kind::LotId(RICE_BAG_LOT.into())),
            }),
            max_depth: 0,
            max_nodes: 0,
        })
        .await
        .expect("backward trace")
        .into_inner();

    let v = json(&url, &["trace", "back", RICE_BAG_LOT]);
    assert_eq!(v["rootLotId"], RICE_BAG_LOT);
    let expected: Vec<String> = grpc
        .nodes
        .iter()
        .map(|n| n.lot.as_ref().expect("lot").lot_id.clone())
        .collect();
    assert_eq!(lot_ids(&v["nodes"]), expected);
    assert_eq!(v["edges"].as_array().map(Vec::len), Some(grpc.edges.len()));
    let receipt = v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["lot"]["lotId"] == PADDY_LOT)
        .expect("receipt node");
    assert_eq!(receipt["lot"]["ownerName"], "UKM Beras Sido Makmur");
    assert_eq!(receipt["lot"]["quantity"]["unit"], "UNIT_KG");

    let v = json(&url, &["origin", RICE_BAG_LOT]);
    assert_eq!(v["byUkm"][0]["partyId"], UKM_SIDOMAKMUR);
    assert_eq!(v["byUkm"][0]["fraction"], "265/738");
    assert_eq!(v["byUkm"][0]["percent"], "35.91");

    let v = json(&url, &["status"]);
    let status = d.server.status().await.expect("status");
    assert_eq!(v["logPosition"], status.log_position.to_string());

    let v = json(&url, &["lot", RECALLED_CHAIR_LOT]);
    assert_eq!(v["status"], "LOT_STATUS_RECALLED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_history_lookup_lot_and_status_print_what_matters() {
    let mut d = Demo::start().await;
    let url = At::of(&d.server);

    let out = ok(&url, &["origin", RICE_BAG_LOT]);
    for part in [
        "origin of lot DMK-BP-260911",
        "by UKM:",
        "by supplier:",
        "by receipt lot:",
        "35.91 %  ukm-dmk-sidomakmur",
        "UKM Beras Sido Makmur",
        "(265/738)",
        "13.55 %  sup-dmk-gpk-tanimaju",
    ] {
        assert!(out.contains(part), "no {part:?} in:\n{out}");
    }
    assert_eq!(ok(&url, &["origin", "--serial", RICE_BAG_SERIAL]), out);
    assert_eq!(ok(&url, &["origin", BAG_LABEL]), out);

    let out = ok(&url, &["history", DRIED_PADDY_LOT]);
    let voided = out.lines().find(|l| l.contains("demo-dmk-0014")).expect("voided entry");
    assert!(voided.contains("VOIDED by demo-dmk-0018"), "{out}");
    assert!(out.contains("voids demo-dmk-0014"), "{out}");
    assert!(!out
        .lines()
        .find(|l| l.contains("demo-dmk-0017"))
        .expect("re-inspection")
        .contains("VOIDED"));

    // As of the re-inspection the void had not been recorded yet.
    let history = d
        .trace
        .lot_history(p::LotHistoryRequest {
            lot_id: DRIED_PADDY_LOT.into(),
            as_of: None,
        })
        .await
        .expect("history")
        .into_inner();
    let at = history
        .entries
        .iter()
        .find(|e| e.event_id == "demo-dmk-0017")
        .and_then(|e| e.recorded_at)
        .expect("recorded_at");
    let as_of = at.to_string();
    let out = ok(&url, &["history", DRIED_PADDY_LOT, "--as-of", &as_of]);
    assert!(out.contains("demo-dmk-0014") && out.contains("demo-dmk-0017"), "{out}");
    assert!(
        !out.contains("VOIDED") && !out.contains("demo-dmk-0018"),
        "as of {as_of}:\n{out}"
    );
    let (status, _, err) = url.run(&["history", DRIED_PADDY_LOT, "--as-of", "yesterday"]);
    assert!(!status.success());
    assert!(err.contains("--as-of"), "{err}");

    let out = ok(&url, &["lookup", BAG_LABEL]);
    assert!(
        out.starts_with("GTIN 08997001001018  lot DMK-BP-260911  serial DMK5P-000001"),
        "{out}"
    );
    assert!(out.contains("Beras Premium Sentra Demak 5 kg"), "{out}");
    let (status, _, err) = url.run(&["lookup", "https://id.example.org/01/08997001001019/10/DMK-BP-260911"]);
    assert!(!status.success(), "a bad check digit resolved");
    assert!(err.contains("check digit"), "{err}");

    let out = ok(&url, &["lot", RECALLED_CHAIR_LOT]);
    assert!(out.contains("RECALLED"), "{out}");

    let status = d.server.status().await.expect("status");
    let out = ok(&url, &["status"]);
    assert!(
        out.contains(&format!("log position {}\n", status.log_position)),
        "{out}"
    );
    assert!(
        out.contains(&format!("applied position {}\n", status.applied_position)),
        "{out}"
    );
    assert!(out.contains(&format!("lots {}\n", status.lots)), "{out}");
    assert_eq!(
        status.log_position, 255,
        "the demo holds 254 commands, then the administrator token made at start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reports_the_bad_line_and_records_nothing_twice() {
    let mut d = Demo::start().await;
    let url = At::of(&d.server);
    let lines = [
        "# three good commands and one bad one",
        r#"{"receiveMaterial": {"commandId": "imp-1", "facilityId": "fac-demak", "lotId": "IMP-1", "productId": "prd-dmk-gkp", "quantity": {"value": "1000", "unit": "UNIT_KG"}, "ownerId": "ukm-dmk-berkah", "supplierId": "sup-dmk-gpk-tanimaju"}}"#,
        r#"{"inspectLot": {"commandId": "imp-2", "facilityId": "fac-demak", "lotId": "IMP-1", "standardId": "std-gkp-penerimaan", "measurements": [{"parameter": "kadar_air", "value": "22.5", "unit": "%"}, {"parameter": "hampa_kotoran", "value": "4", "unit": "%"}]}}"#,
        r#"{"receiveMaterial": {"commandId": "imp-3", "facilityId": "fac-demak", "lotId": "IMP-2", "productId": "prd-dmk-gkp", "quantity": {"value": "1e3", "unit": "UNIT_KG"}, "ownerId": "ukm-dmk-berkah", "supplierId": "sup-dmk-gpk-tanimaju"}}"#,
        "",
        r#"{"processLots": {"commandId": "imp-4", "facilityId": "fac-demak", "processStep": "pengeringan", "inputs": [{"lotId": "IMP-1", "quantity": {"value": "300", "unit": "UNIT_KG"}}], "outputs": [{"lotId": "IMP-OUT", "productId": "prd-dmk-gkg", "quantity": {"value": "255", "unit": "UNIT_KG"}}]}}"#,
    ];
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(file, "{}", lines.join("\n")).expect("write the import file");
    let path = file.path().to_str().expect("utf-8 path").to_string();
    let before = d.position().await;

    let (status, out, err) = url.run(&["import", &path]);
    assert!(!status.success(), "a refused line must fail the import");
    assert!(out.contains("3 recorded, 0 already recorded, 1 refused"), "{out}");
    assert!(err.contains(&format!("{path}:4: InvalidArgument")), "{err}");
    assert!(err.contains("quantity.value"), "{err}");
    assert_eq!(err.matches(&path).count(), 1, "only line 4 is refused: {err}");
    assert_eq!(d.position().await, before + 3);
    let lot = d.lot("IMP-1").await;
    assert_eq!(lot.balance.as_ref().map(|q| q.value.as_str()), Some("700"));
    assert_eq!(lot.verdict, p::Verdict::Conformant as i32);
    assert_eq!(d.lot_error("IMP-2").await.code(), tonic::Code::NotFound);

    // The same file again: every good line is a retry, nothing new is written.
    let (status, out, err) = url.run(&["import", &path]);
    assert!(!status.success());
    assert!(out.contains("0 recorded, 3 already recorded, 1 refused"), "{out}");
    assert!(err.contains(&format!("{path}:4:")), "{err}");
    assert_eq!(d.position().await, before + 3);
    assert_eq!(d.lot("IMP-1").await, lot);

    // A line that is not a command at all.
    let mut bad = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(bad, "{{\"receiveMaterial\": {{\"lotIdd\": \"x\"}}}}").expect("write");
    let bad_path = bad.path().to_str().expect("utf-8 path").to_string();
    let (status, out, err) = url.run(&["import", &bad_path]);
    assert!(!status.success());
    assert!(out.contains("0 recorded, 0 already recorded, 1 refused"), "{out}");
    assert!(
        err.contains(&format!("{bad_path}:1:")) && err.contains("lotIdd"),
        "{err}"
    );
    assert_eq!(d.position().await, before + 3);

    // A file holding a receipt and the void of it (an exported log does):
    // imported again, both are plainly already recorded.
    let receipt = r#"{"receiveMaterial": {"commandId": "imp-5", "facilityId": "fac-demak", "lotId": "IMP-5", "productId": "prd-dmk-gkp", "quantity": {"value": "10", "unit": "UNIT_KG"}, "ownerId": "ukm-dmk-berkah", "supplierId": "sup-dmk-gpk-tanimaju"}}"#;
    let void = r#"{"voidEvent": {"commandId": "imp-5-void", "facilityId": "fac-demak", "eventId": "imp-5", "reason": "entered twice"}}"#;
    let mut both = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(both, "{receipt}\n{void}").expect("write");
    let both_path = both.path().to_str().expect("utf-8 path").to_string();
    let (status, out, err) = url.run(&["import", &both_path]);
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("2 recorded, 0 already recorded, 0 refused"), "{out}");
    let (status, out, err) = url.run(&["import", &both_path]);
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("0 recorded, 2 already recorded, 0 refused"), "{out}");
    // The receipt alone: it does not stand, and the import says so and fails.
    let mut alone = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(alone, "{receipt}").expect("write");
    let alone_path = alone.path().to_str().expect("utf-8 path").to_string();
    let (status, out, err) = url.run(&["import", &alone_path]);
    assert!(!status.success(), "{out}");
    assert!(
        out.contains("0 recorded, 0 already recorded, 1 recorded before and since voided, 0 refused"),
        "{out}"
    );
    assert!(
        err.contains(&format!(
            "{alone_path}:1: imp-5 was recorded before and has since been voided by imp-5-void"
        )) && err.contains("send it with a new command_id"),
        "{err}"
    );
    assert!(err.contains("1 line was recorded before and since voided"), "{err}");
    assert_eq!(d.position().await, before + 5);
    assert!(d.lot("IMP-5").await.voided);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_of_a_stopped_server_gives_the_same_answers() {
    let dir = tempfile::tempdir().expect("data dir");
    let data_dir = dir.path().to_str().expect("utf-8 path").to_string();
    let server = Server::start(ServerOptions {
        demo: true,
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .expect("start the demo server");
    let mut d = Demo::attach(server).await;
    let answers = snapshot(&mut d).await;

    // sled holds the store while the server runs: rebuild refuses.
    let (status, _, err) = jejak(&["rebuild", "--data-dir", &data_dir]);
    assert!(!status.success(), "rebuild ran next to a live server");
    assert!(err.contains("still running"), "{err}");

    let exit = d.server.stop().expect("stop the server");
    assert!(exit.success(), "unclean exit: {exit}");
    drop(d);
    // The projection as the server left it, by its digest; then gone, so
    // that only the rebuild can make it again.
    let digest = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("projection digest: "))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no digest in {out}"))
    };
    let (status, out, err) = jejak(&["verify", "--data-dir", &data_dir]);
    assert!(status.success(), "verify: {err}");
    let served = digest(&out);
    std::fs::remove_dir_all(dir.path().join("genealogy")).expect("remove the projection");
    let (status, out, err) = jejak(&["rebuild", "--data-dir", &data_dir]);
    assert!(status.success(), "rebuild failed: {err}");
    assert!(out.contains("projection rebuilt to log position 255"), "{out}");
    let (status, out, err) = jejak(&["verify", "--data-dir", &data_dir]);
    assert!(status.success(), "verify: {err}");
    assert!(out.contains("projection position: 255"), "{out}");
    assert_eq!(
        digest(&out),
        served,
        "the rebuilt projection is byte for byte the one served"
    );

    let server = Server::start(ServerOptions {
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .expect("restart on the same data");
    let mut d = Demo::attach(server).await;
    let again = snapshot(&mut d).await;
    assert_eq!(again.status.log_position, 255);
    assert_eq!(again.status, answers.status);
    assert_eq!(again.back, answers.back);
    assert_eq!(again.forward, answers.forward);
    assert_eq!(again.shares, answers.shares);
    assert_eq!(again.lots, answers.lots);
    assert_eq!(again.history, answers.history);
    d.server.wait_projected(WAIT).await.expect("still projected");
}

/// Answers that must not change when the projection is rebuilt.
struct Snapshot {
    status: p::StatusReply,
    back: p::TraceReply,
    forward: p::TraceReply,
    shares: p::OriginSharesReply,
    lots: Vec<p::Lot>,
    history: p::LotHistoryReply,
}

async fn snapshot(d: &mut Demo) -> Snapshot {
    let target = |kind: p::target::Kind| Some(p::Target { kind: Some(kind) });
    let status = d.server.wait_projected(WAIT).await.expect("projected");
    let back = d
        .trace
        .backward_trace(p::TraceRequest {
            target: target(p::target::Kind::Serial(RICE_BAG_SERIAL.into())),
            max_depth: 0,
            max_nodes: 0,
        })
        .await
        .expect("backward trace")
        .into_inner();
    assert!(back.nodes.len() > 1, "an empty trace proves nothing");
    let forward = d
        .trace
        .forward_trace(p::TraceRequest {
            target: target(p::target::Kind::LotId("TGL-BK8-260910".into())),
            max_depth: 0,
            max_nodes: 0,
        })
        .await
        .expect("forward trace")
        .into_inner();
    let shares = d
        .trace
        .origin_shares(p::OriginSharesRequest {
            target: target(p::target::Kind::Label(BAG_LABEL.into())),
        })
        .await
        .expect("origin shares")
        .into_inner();
    let mut lots = Vec::new();
    for id in [
        RECALLED_CHAIR_LOT,
        DRIED_PADDY_LOT,
        "TGL-B16-260903-03",
        HELD_SHIRT_LOT,
        RICE_BAG_LOT,
    ] {
        lots.push(d.lot(id).await);
    }
    let history = d
        .trace
        .lot_history(p::LotHistoryRequest {
            lot_id: DRIED_PADDY_LOT.into(),
            as_of: None,
        })
        .await
        .expect("history")
        .into_inner();
    Snapshot {
        status,
        back,
        forward,
        shares,
        lots,
        history,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recall_report_lists_every_shipment_the_material_reached() {
    let demo = Demo::start().await;
    let at = At::of(&demo.server);
    // Harvested paddy: milled, packed in bags, shipped to rice buyers.
    let csv = ok(&at, &["recall-report", PADDY_LOT]);
    let mut lines = csv.lines();
    let header = lines.next().expect("a header line");
    assert!(
        header.starts_with("Traceability Lot Code,Product Description,Quantity,Unit of Measure,"),
        "{header}"
    );
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty(), "the paddy reached shipments: {csv}");
    assert!(
        csv.contains("CV Pangan Lestari"),
        "the rice buyer is a recipient: {csv}"
    );
    let report = json(&at, &["recall-report", PADDY_LOT]);
    let json_rows = report["rows"].as_array().expect("rows");
    assert_eq!(json_rows.len(), rows.len(), "the same shipments as CSV and JSON");
    assert!(json_rows
        .iter()
        .all(|r| r["consigneeId"].is_string() && r["shippedAt"].is_string()));
    assert!(
        json_rows.iter().any(|r| r["lotId"] == RICE_BAG_LOT),
        "the rice bags' lot was shipped: {report}"
    );
    // Recipients are private: a caller without a token gets none.
    let (status, _, err) = jejak(&["recall-report", PADDY_LOT, "--server", &at.url]);
    assert!(!status.success());
    assert!(err.contains("token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_of_receipts_is_imported_all_or_nothing_naming_the_line_of_a_bad_row() {
    use jejak_server::demo::ids::{DEMAK, FARMERS_TANIMAJU, PADDY, UKM_BERKAH};
    let mut demo = crate::support::Demo::start().await;
    let token = demo.server.admin_token.clone().expect("an admin token");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = demo.server.url.clone();
    let import = |name: &str, text: String, extra: &[&str]| {
        let file = dir.path().join(name);
        std::fs::write(&file, text).expect("write the CSV");
        let path = file.to_str().expect("utf-8").to_string();
        let mut args = vec![
            "import".to_string(),
            path,
            "--server".into(),
            url.clone(),
            "--token".into(),
            token.clone(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        jejak_testkit::run_cli(&args).expect("run jejak import")
    };
    let header = "command_id,facility_id,lot_id,product_id,quantity,unit,owner_id,supplier_id,origin_place\n";
    let row = |id: &str, lot: &str, qty: &str, owner: &str| {
        format!("{id},{DEMAK},{lot},{PADDY},{qty},kg,{owner},{FARMERS_TANIMAJU},\"Desa Kendaldoyong, Wonosalam\"\n")
    };

    // A malformed row: nothing is written, the line and column named.
    let before = demo.position().await;
    let text = format!(
        "{header}{}{}",
        row("csv-1", "CSV-1", "100", UKM_BERKAH),
        row("csv-2", "CSV-2", "lots", UKM_BERKAH)
    );
    let (status, _, err) = import("bad.csv", text, &[]);
    assert!(!status.success());
    assert!(err.contains("bad.csv:3:") && err.contains("quantity"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(demo.position().await, before);

    // A row the rules refuse (the owner is a farmer group, not a UKM): the
    // rows recorded before it are voided again.
    let text = format!(
        "{header}{}{}{}",
        row("csv-3", "CSV-3", "100", UKM_BERKAH),
        row("csv-4", "CSV-4", "200", UKM_BERKAH),
        row("csv-5", "CSV-5", "300", FARMERS_TANIMAJU)
    );
    let (status, out, err) = import("refused.csv", text.clone(), &[]);
    assert!(!status.success());
    assert!(
        err.contains("refused.csv:4:") && err.contains("FailedPrecondition"),
        "{err}"
    );
    assert!(out.contains("2 voided again"), "{out}");
    assert!(demo.lot("CSV-3").await.voided && demo.lot("CSV-4").await.voided);
    // The same file again, its bad row mended: the rows the rollback voided
    // are not counted "already recorded" (they no longer stand) but named,
    // with what to do; the mended row is recorded, and the import fails.
    let mended = format!(
        "{header}{}{}{}",
        row("csv-3", "CSV-3", "100", UKM_BERKAH),
        row("csv-4", "CSV-4", "200", UKM_BERKAH),
        row("csv-5", "CSV-5", "300", UKM_BERKAH)
    );
    let (status, out, err) = import("refused.csv", mended, &[]);
    assert!(!status.success(), "{out}");
    for line in ["refused.csv:2: csv-3", "refused.csv:3: csv-4"] {
        assert!(err.contains(line), "{line}: {err}");
    }
    assert!(
        err.contains("has since been voided by") && err.contains("change its command_id"),
        "{err}"
    );
    assert!(
        out.contains("1 recorded, 0 already recorded, 2 recorded before and since voided, 0 refused"),
        "{out}"
    );
    assert!(demo.lot("CSV-3").await.voided, "still voided");
    assert!(!demo.lot("CSV-5").await.voided, "the mended row stands");

    // With --proceed the good rows are kept (new ids: the others are voided).
    let text = format!(
        "{header}{}{}",
        row("csv-6", "CSV-6", "100", UKM_BERKAH),
        row("csv-7", "CSV-7", "300", FARMERS_TANIMAJU)
    );
    let (status, out, err) = import("proceed.csv", text.clone(), &["--proceed"]);
    assert!(!status.success(), "a refused row is still reported");
    assert!(err.contains("proceed.csv:3:"), "{err}");
    assert!(out.starts_with("1 recorded"), "{out}");
    let lot = demo.lot("CSV-6").await;
    assert!(!lot.voided);
    assert_eq!(lot.origin.expect("an origin").place, "Desa Kendaldoyong, Wonosalam");
    // The same file again: already recorded, nothing twice.
    let (_, out, _) = import("proceed.csv", text, &["--proceed"]);
    assert!(out.starts_with("0 recorded, 1 already recorded"), "{out}");
}

/// A JSON Lines file of `n` receipts at the Demak mill, command ids
/// `<prefix>-imp-<i>` and lots `<PREFIX>-IMP-<i>`; `place(i)`, when given,
/// is the receipt's place of origin.
fn receipts_file(prefix: &str, n: usize, place: impl Fn(usize) -> Option<String>) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    let upper = prefix.to_uppercase();
    for i in 0..n {
        let origin = place(i).map_or(String::new(), |p| format!(r#", "origin": {{"place": "{p}"}}"#));
        writeln!(
            file,
            r#"{{"receiveMaterial": {{"commandId": "{prefix}-imp-{i}", "facilityId": "fac-demak", "lotId": "{upper}-IMP-{i}", "productId": "prd-dmk-gkp", "quantity": {{"value": "10", "unit": "UNIT_KG"}}, "ownerId": "ukm-dmk-berkah", "supplierId": "sup-dmk-gpk-tanimaju"{origin}}}}}"#
        )
        .expect("write a line");
    }
    file
}

/// A line too large for the server to read ends the stream it was sent
/// on; the import reports that line, naming the limit, and records the
/// lines before and after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_reports_a_line_too_large_to_read_and_records_the_others() {
    let d = Demo::start().await;
    let url = At::of(&d.server);
    let file = receipts_file("big", 5, |i| {
        (i == 2).then(|| "x".repeat(jejak_proto::MAX_MESSAGE_SIZE + 1))
    });
    let path = file.path().to_str().expect("utf-8 path").to_string();
    let before = d.position().await;
    let (status, out, err) = tokio::task::spawn_blocking(move || url.run(&["import", &path]))
        .await
        .expect("the import ran");
    assert!(!status.success(), "a refused line fails the import: {out}{err}");
    assert!(out.contains("4 recorded, 0 already recorded, 1 refused"), "{out}{err}");
    let line = err
        .lines()
        .find(|l| l.contains(":3: "))
        .unwrap_or_else(|| panic!("line 3 reported: {err}"));
    assert!(line.contains("ResourceExhausted"), "{line}");
    assert!(line.contains(&jejak_proto::MAX_MESSAGE_SIZE.to_string()), "{line}");
    assert_eq!(d.position().await, before + 4);
}

/// Told to slow down for longer than it waits for anything else (another
/// client spending the same token's bucket all the while), an import waits
/// on and records every line: a rate limit never makes a line refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_kept_waiting_by_the_rate_limit_waits_on_and_records_every_line() {
    let server = jejak_testkit::Server::start(jejak_testkit::ServerOptions {
        demo: true,
        rate_limits: Some((1.0, 100.0)),
        ..Default::default()
    })
    .expect("start a demo server");
    let d = Demo::attach(server).await;
    let url = At::of(&d.server);
    const N: usize = 50;
    let file = receipts_file("slow", N, |_| None);
    let path = file.path().to_str().expect("utf-8 path").to_string();
    // Another client of the same token takes every request the bucket
    // allows, for longer than eight rounds of waiting.
    let mut trace = d.trace.clone();
    let hog = tokio::spawn(async move {
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(14);
        let mut limited = 0u32;
        while tokio::time::Instant::now() < until {
            let r = trace
                .get_lot(p::GetLotRequest {
                    lot_id: "DMK-BP-260913".into(),
                })
                .await;
            limited += u32::from(r.is_err_and(|s| s.code() == tonic::Code::ResourceExhausted));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        limited
    });
    let before = d.position().await;
    let (status, out, err) = tokio::task::spawn_blocking(move || url.run(&["import", &path]))
        .await
        .expect("the import ran");
    let limited = hog.await.expect("the other client ran");
    assert!(limited > 0, "the other client was told to slow down too");
    assert!(status.success(), "{out}{err}");
    assert!(
        out.contains(&format!("{N} recorded, 0 already recorded, 0 refused")),
        "{out}{err}"
    );
    assert_eq!(d.position().await, before + N as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_is_never_refused_by_the_rate_limit_and_a_rerun_records_nothing_twice() {
    let server = jejak_testkit::Server::start(jejak_testkit::ServerOptions {
        demo: true,
        // A token may open one request a second: every import after the
        // first is told to slow down at first.
        rate_limits: Some((1.0, 100.0)),
        ..Default::default()
    })
    .expect("start a demo server");
    let mut d = Demo::attach(server).await;
    let url = At::of(&d.server);
    const N: usize = 3000;
    let file = receipts_file("bulk", N, |_| None);
    let path = file.path().to_str().expect("utf-8 path").to_string();
    let before = d.position().await;
    let (status, out, err) = url.run(&["import", &path]);
    assert!(status.success(), "{out}{err}");
    assert!(
        out.contains(&format!("{N} recorded, 0 already recorded, 0 refused")),
        "{out}"
    );
    // Again, with the token's bucket emptied first: the client is told to
    // slow down, waits and opens the stream again.
    let mut limited = false;
    for _ in 0..3 {
        let spent = d
            .trace
            .get_lot(p::GetLotRequest {
                lot_id: "BULK-IMP-1".into(),
            })
            .await;
        limited |= spent.is_err_and(|s| s.code() == tonic::Code::ResourceExhausted);
    }
    assert!(limited, "the token's bucket is empty");
    let (status, out, err) = url.run(&["import", &path]);
    assert!(status.success(), "{out}{err}");
    assert!(
        out.contains(&format!("0 recorded, {N} already recorded, 0 refused")),
        "{out}"
    );
    // (Status is public: it does not spend the token's bucket.)
    assert_eq!(d.position().await, before + N as u64);
}

/// How many commands the server answered "already recorded" (its metrics).
fn replayed(server: &jejak_testkit::Server) -> anyhow::Result<u64> {
    Ok(crate::nats::http_get(server, "/metrics")?
        .lines()
        .filter(|l| l.starts_with("jejak_commands_total{") && l.contains("outcome=\"replayed\""))
        .filter_map(|l| l.rsplit(' ').next()?.trim().parse::<u64>().ok())
        .sum())
}

/// `<name>.csv` in `dir`: receipts `<name>-0` … `<name>-4` of lots
/// `<NAME>-0` …, then a sixth whose owner is a farmer group, not a UKM
/// (refused); returns its path.
fn five_receipts_and_a_refused_one(dir: &std::path::Path, name: &str) -> String {
    use jejak_server::demo::ids::{DEMAK, FARMERS_TANIMAJU, PADDY, UKM_BERKAH};
    let lot = name.to_uppercase();
    let row =
        |i: usize, owner: &str| format!("{name}-{i},{DEMAK},{lot}-{i},{PADDY},100,kg,{owner},{FARMERS_TANIMAJU}\n");
    let mut text = "command_id,facility_id,lot_id,product_id,quantity,unit,owner_id,supplier_id\n".to_string();
    for i in 0..5 {
        text.push_str(&row(i, UKM_BERKAH));
    }
    text.push_str(&row(5, FARMERS_TANIMAJU));
    let file = dir.join(format!("{name}.csv"));
    std::fs::write(&file, text).expect("write the CSV");
    file.to_str().expect("utf-8").to_string()
}

/// A CSV import whose first stream reaches the server but whose answers
/// are lost (the connection cut before any came back), and whose last row
/// is refused: the rows that stream recorded are sent again, answered as
/// already recorded past where the log ended before the import (which the
/// import asks first, on a connection of its own), counted as this
/// import's own, and voided again with the others, so the file stays all
/// or nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_import_whose_answers_were_lost_still_voids_every_row_it_recorded() {
    let mut demo = Demo::start().await;
    let token = demo.server.admin_token.clone().expect("an admin token");
    let relay = crate::support::Relay::start_nth(&demo.server.url, 1, crate::support::First::OneWay).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = five_receipts_and_a_refused_one(dir.path(), "lost");
    let before = demo.position().await;
    let url = relay.url.clone();
    let import = tokio::task::spawn_blocking(move || jejak(&["import", &path, "--server", &url, "--token", &token]));
    // The connection is cut once the server has recorded the five rows
    // (and refused the sixth), none of whose answers came back.
    demo.wait_position(before + 5).await;
    relay.cut();
    let (status, out, err) = import.await.expect("the import ran");
    assert!(!status.success(), "the refused row fails the import: {out}{err}");
    assert!(err.contains("lost.csv:7:"), "{err}");
    assert!(out.contains("5 voided again"), "{out}{err}");
    for i in 0..5 {
        assert!(
            demo.lot(&format!("LOST-{i}")).await.voided,
            "LOST-{i} is voided: {out}{err}"
        );
    }
    // Each row recorded once and voided once.
    assert_eq!(demo.position().await, before + 10, "{out}{err}");
    assert!(relay.connections() >= 3, "the import connected again");
}

/// The rows an earlier run recorded are never this import's to void: a
/// CSV file imported with `--proceed` (its good rows kept, its last row
/// refused), then again without it through a connection whose answers are
/// lost until it is cut, answers its good rows "already recorded" at
/// positions before where the log ended when it began, and leaves them
/// recorded although its last row is refused again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_import_whose_answers_were_lost_leaves_what_an_earlier_run_recorded() {
    let mut demo = Demo::start().await;
    let token = demo.server.admin_token.clone().expect("an admin token");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = five_receipts_and_a_refused_one(dir.path(), "kept");
    let before = demo.position().await;
    let (status, out, err) = jejak(&[
        "import",
        &path,
        "--proceed",
        "--server",
        &demo.server.url,
        "--token",
        &token,
    ]);
    assert!(!status.success(), "the refused row fails the import: {out}{err}");
    assert!(out.contains("5 recorded"), "{out}{err}");
    assert_eq!(demo.position().await, before + 5);
    // Again, all or nothing, the import's stream (its second connection,
    // after the one that asks where the log ends) losing every answer.
    let relay = crate::support::Relay::start_nth(&demo.server.url, 1, crate::support::First::OneWay).await;
    let url = relay.url.clone();
    let import = tokio::task::spawn_blocking(move || jejak(&["import", &path, "--server", &url, "--token", &token]));
    jejak_testkit::wait_until(
        std::time::Instant::now() + std::time::Duration::from_secs(30),
        || async { Ok((relay.connections() >= 2).then_some(())) },
    )
    .await
    .expect("the import opens its stream");
    // The server reads the stream and answers into the void: cut once it
    // has answered the five "already recorded".
    jejak_testkit::wait_until(
        std::time::Instant::now() + std::time::Duration::from_secs(30),
        || async { Ok((replayed(&demo.server)? >= 5).then_some(())) },
    )
    .await
    .expect("the server answers the five rows as already recorded");
    relay.cut();
    let (status, out, err) = import.await.expect("the import ran");
    assert!(!status.success(), "the refused row fails the import again: {out}{err}");
    assert!(err.contains("kept.csv:7:"), "{err}");
    assert!(out.contains("5 already recorded"), "{out}{err}");
    assert!(!out.contains("voided again"), "{out}{err}");
    for i in 0..5 {
        assert!(
            !demo.lot(&format!("KEPT-{i}")).await.voided,
            "KEPT-{i}, recorded by the earlier run, stays recorded: {out}{err}"
        );
    }
    assert_eq!(demo.position().await, before + 5, "nothing written: {out}{err}");
    assert!(relay.connections() >= 3, "the import connected again");
}
