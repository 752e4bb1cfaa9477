//! The GS1 Digital Link resolver over plain HTTP on the gRPC port: the
//! provenance page, JSON, JSON-LD and linkset by negotiation, refusals,
//! recalls and holds shown at the top, the timber map, and the demo's
//! printed label URIs.

use jejak_proto::v1 as p;
use jejak_server::demo::ids::{
    DEMAK, DRIED_PADDY, DRIED_PADDY_LOT, FARMERS_SUMBERREJEKI, PREMIUM_RICE_5KG, PREMIUM_RICE_GTIN, RECALLED_CHAIR_LOT,
    RICE_BAG_LOT, RICE_BAG_SERIAL, TEAK_CHAIR_LOT, UKM_SRIREJEKI,
};
use jejak_testkit::HttpReply;

use crate::support::{qty, Demo, WAIT};

pub(crate) const RICE_BAG: &str = "/01/08997001001018/10/DMK-BP-260911/21/DMK5P-000001";
const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn get(demo: &Demo, path: &str, headers: &[(&str, &str)]) -> HttpReply {
    demo.server
        .http_get(path, headers)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e:#}"))
}

/// The verdict phrases the page must show for every inspection still in
/// force of the lots a trace reaches, from the gRPC API (as an administrator).
async fn verdict_phrases(demo: &mut Demo, lot: &str, lang_id: bool) -> Vec<String> {
    let trace = demo
        .trace
        .backward_trace(p::TraceRequest {
            target: Some(p::Target {
                kind: Some(p::target::Kind::LotId(lot.into())),
            }),
            max_depth: 0,
            max_nodes: 0,
        })
        .await
        .expect("backward trace")
        .into_inner();
    let mut phrases = Vec::new();
    for l in trace.nodes.iter().filter_map(|n| n.lot.as_ref()) {
        for i in l.inspections.iter().filter(|i| !i.voided) {
            let word = match (p::Verdict::try_from(i.verdict), lang_id) {
                (Ok(p::Verdict::Conformant), true) => "memenuhi syarat",
                (Ok(p::Verdict::NonConformant), true) => "tidak memenuhi syarat",
                (Ok(p::Verdict::Conformant), false) => "conforms",
                (Ok(p::Verdict::NonConformant), false) => "does not conform",
                _ => continue,
            };
            phrases.push(format!("{} — {word}", i.standard_name));
        }
    }
    assert!(!phrases.is_empty(), "lot {lot} has inspections to show");
    phrases
}

async fn ukm_names(demo: &mut Demo, lot: &str) -> Vec<String> {
    let shares = demo
        .trace
        .origin_shares(p::OriginSharesRequest {
            target: Some(p::Target {
                kind: Some(p::target::Kind::LotId(lot.into())),
            }),
        })
        .await
        .expect("origin shares")
        .into_inner();
    assert!(!shares.by_ukm.is_empty());
    shares.by_ukm.into_iter().map(|s| s.party_name).collect()
}

fn unescape(html: &str) -> String {
    html.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rice_bag_page_names_its_ukm_and_verdicts_in_both_languages() {
    let mut demo = Demo::start().await;
    let before = demo.position().await;
    let page = get(&demo, RICE_BAG, &[("Accept", BROWSER)]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.header("content-language"), Some("id"));
    assert!(page.header("vary").is_some_and(|v| v.contains("Accept-Language")));
    assert!(page.header("link").is_some_and(|l| l.contains("rel=\"linkset\"")));
    let html = page.text();
    assert!(html.starts_with("<!doctype html><html lang=\"id\">"), "{}", &html[..80]);
    assert!(html.len() < 100 * 1024, "the page is {} bytes", html.len());
    // Nothing is fetched from elsewhere: no scripts, stylesheets, images or fonts by URL.
    for outside in ["<script", "<link", "src=", "url(", "@import", "href=\"http"] {
        assert!(
            !html.contains(outside),
            "the page refers to an outside resource: {outside}"
        );
    }
    assert!(html.contains("name=\"viewport\""));
    let text = unescape(&html);
    for name in ukm_names(&mut demo, RICE_BAG_LOT).await {
        assert!(text.contains(&name), "the page names UKM {name}");
    }
    for phrase in verdict_phrases(&mut demo, RICE_BAG_LOT, true).await {
        assert!(text.contains(&phrase), "the page shows {phrase:?}");
    }
    assert!(text.contains("SNI 6128:2020 Premium — memenuhi syarat"));
    assert!(text.contains(RICE_BAG_SERIAL) && text.contains(PREMIUM_RICE_GTIN));
    assert!(text.contains("Sentra Penggilingan Padi Bersama Demak"));
    for step in ["Penerimaan", "Pemeriksaan", "Pengolahan", "Pengemasan"] {
        assert!(text.contains(step), "the timeline has a {step} step");
    }
    // The public view only: no contact details, quantities or documents.
    for private in ["telp.", "Jl. Sultan Fatah", "delivery-note", "kadar_air"] {
        assert!(!text.contains(private), "the page leaks {private:?}");
    }

    // English by query and by Accept-Language.
    let en = get(&demo, &format!("{RICE_BAG}?lang=en"), &[("Accept", BROWSER)]).await;
    let en_text = unescape(&en.text());
    assert!(en_text.starts_with("<!doctype html><html lang=\"en\">"));
    for phrase in verdict_phrases(&mut demo, RICE_BAG_LOT, false).await {
        assert!(en_text.contains(&phrase), "the English page shows {phrase:?}");
    }
    let en2 = get(
        &demo,
        RICE_BAG,
        &[("Accept", BROWSER), ("Accept-Language", "en-GB,en;q=0.9")],
    )
    .await;
    assert_eq!(en2.header("content-language"), Some("en"));
    let id2 = get(&demo, RICE_BAG, &[("Accept-Language", "en;q=0.4, id;q=0.9")]).await;
    assert_eq!(id2.header("content-language"), Some("id"));
    let en3 = get(&demo, RICE_BAG, &[("Accept-Language", "id;q=0.2, en-US;q=0.8")]).await;
    assert_eq!(en3.header("content-language"), Some("en"));
    // HEAD answers the headers alone.
    let head = jejak_testkit::http_request(demo.server.authority(), "HEAD", RICE_BAG, &[], b"")
        .await
        .expect("head");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(head.body.is_empty());

    assert_eq!(demo.position().await, before, "reading labels writes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_resolve_to_json_json_ld_and_linksets() {
    let mut demo = Demo::start().await;
    let base = demo.server.url.clone();

    let json = get(&demo, RICE_BAG, &[("Accept", "application/json")]).await;
    assert_eq!(json.status, 200);
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.header("access-control-allow-origin"), Some("*"));
    // q-values decide: JSON weighed above HTML, JSON-LD above JSON.
    for (accept, expected) in [
        ("text/html;q=0.5, application/json;q=0.9", "application/json"),
        ("application/json;q=0.5, application/ld+json", "application/ld+json"),
        ("application/json;q=0, text/html", "text/html; charset=utf-8"),
    ] {
        let r = get(&demo, RICE_BAG, &[("Accept", accept)]).await;
        assert_eq!(r.header("content-type"), Some(expected), "Accept: {accept}");
    }
    let doc = json.json().expect("json");
    assert_eq!(doc["uri"], format!("{base}{RICE_BAG}"));
    assert_eq!(doc["lotId"], RICE_BAG_LOT);
    assert_eq!(doc["serial"], RICE_BAG_SERIAL);
    assert_eq!(doc["gtin"], PREMIUM_RICE_GTIN);
    let names: Vec<String> = doc["ukmShares"]
        .as_array()
        .expect("ukm shares")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ukm_names(&mut demo, RICE_BAG_LOT).await);
    let percent: f64 = doc["ukmShares"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["percent"].as_str().unwrap_or("0").parse::<f64>().unwrap_or(0.0))
        .sum();
    assert!((percent - 100.0).abs() < 1e-9, "shares add up to 100, not {percent}");
    assert!(doc["inputs"].as_array().is_some_and(|i| !i.is_empty()));
    let raw = json.text();
    for private in ["quantity", "balance", "consignee", "documents", "measurements", "telp."] {
        assert!(!raw.contains(private), "the JSON leaks {private:?}");
    }
    // The bag left once; its lot left three times (twice in bags, once in bulk).
    let shipments = |doc: &serde_json::Value| {
        doc["timeline"]
            .as_array()
            .map_or(0, |t| t.iter().filter(|s| s["kind"] == "shipment").count())
    };
    assert_eq!(shipments(&doc), 1, "{}", doc["timeline"]);
    let lot_doc = get(
        &demo,
        "/01/08997001001018/10/DMK-BP-260911",
        &[("Accept", "application/json")],
    )
    .await
    .json()
    .expect("json");
    assert_eq!(shipments(&lot_doc), 3);
    assert!(lot_doc.get("serial").is_none());
    // linkType=gs1:traceability is the same document whatever Accept says.
    let tr = get(
        &demo,
        &format!("{RICE_BAG}?linkType=gs1:traceability"),
        &[("Accept", BROWSER)],
    )
    .await;
    assert_eq!(tr.json().expect("json")["lotId"], RICE_BAG_LOT);

    let ld = get(&demo, RICE_BAG, &[("Accept", "application/ld+json")]).await;
    assert_eq!(ld.header("content-type"), Some("application/ld+json"));
    let ld = ld.json().expect("json-ld");
    assert_eq!(ld["@context"]["schema"], "https://schema.org/");
    assert_eq!(ld["@context"]["gs1"], "https://ref.gs1.org/voc/");
    assert_eq!(ld["@id"], format!("{base}{RICE_BAG}"));
    assert_eq!(ld["gs1:hasBatchLotNumber"], RICE_BAG_LOT);
    assert_eq!(ld["gs1:hasSerialNumber"], RICE_BAG_SERIAL);
    assert_eq!(ld["@type"][0], "schema:IndividualProduct");
    assert!(ld["schema:material"].as_array().is_some_and(|m| !m.is_empty()));

    for link_type in ["linkset", "all"] {
        let ls = get(
            &demo,
            &format!("{RICE_BAG}?linkType={link_type}"),
            &[("Accept", BROWSER)],
        )
        .await;
        assert_eq!(ls.status, 200);
        assert_eq!(ls.header("content-type"), Some("application/linkset+json"));
        let ls = ls.json().expect("linkset");
        let set = &ls["linkset"][0];
        assert_eq!(set["anchor"], format!("{base}{RICE_BAG}"));
        for rel in [
            "pip",
            "traceability",
            "certificationInfo",
            "recallStatus",
            "defaultLink",
        ] {
            let links = set[format!("https://ref.gs1.org/voc/{rel}")]
                .as_array()
                .unwrap_or_else(|| panic!("the linkset offers gs1:{rel}"));
            for link in links {
                let href = link["href"].as_str().expect("href");
                let path = href.strip_prefix(&base).expect("links stay on this resolver");
                let accept = link["type"].as_str().expect("type");
                let followed = get(&demo, path, &[("Accept", accept)]).await;
                assert_eq!(followed.status, 200, "{href} answers");
                assert!(followed.header("content-type").is_some_and(|c| c.starts_with(accept)));
            }
        }
    }

    let cert = get(&demo, &format!("{RICE_BAG}?linkType=gs1:certificationInfo"), &[]).await;
    assert!(cert.json().expect("json")["inputs"]
        .as_array()
        .is_some_and(|i| !i.is_empty()));
    let recall = get(&demo, &format!("{RICE_BAG}?linkType=gs1:recallStatus"), &[]).await;
    assert_eq!(recall.json().expect("json")["recalled"], false);

    let wk = get(&demo, "/.well-known/gs1resolver", &[]).await;
    assert_eq!(wk.status, 200);
    let wk = wk.json().expect("resolver description");
    assert_eq!(wk["supportedPrimaryKeys"][0], "01");
    assert_eq!(wk["resolverRoot"], base);
    assert!(wk["supportedLinkType"]
        .as_array()
        .is_some_and(|l| l.iter().any(|t| t["linkType"] == "gs1:pip")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_labels_are_400_and_unknown_ones_404_with_a_friendly_page() {
    let demo = Demo::start().await;
    let before = demo.position().await;
    // GTIN-13 written as 14 digits, and a custom path prefix, resolve too.
    for same in [
        "/01/8997001001018/10/DMK-BP-260911/21/DMK5P-000001",
        "/produk/beras/01/08997001001018/10/DMK-BP-260911/21/DMK5P-000001",
        "/01/08997001001018/10/DMK-BP-260911/21/DMK5P-000001/",
    ] {
        let r = get(&demo, same, &[("Accept", "application/json")]).await;
        assert_eq!(r.status, 200, "{same}: {}", r.text());
        assert_eq!(r.json().expect("json")["serial"], RICE_BAG_SERIAL);
    }
    let cases = [
        // Check digit wrong (…018 is right).
        ("/01/08997001001019/10/DMK-BP-260911", 400),
        ("/01/0899700100101/10/DMK-BP-260911", 400),
        // A GTIN alone is a Digital Link, but names no lot.
        ("/01/08997001001018", 404),
        ("/01/08997001001018/10/DMK-BP-260911/99/x", 400),
        ("/01/08997001001018/10/%FF%FE", 400),
        ("/01/08997001001018/10/NO-SUCH-LOT", 404),
        ("/01/08997001001018/10/DMK-BP-260911/21/NO-SUCH-SERIAL", 404),
        // A real lot under another product's GTIN.
        ("/01/08997002002014/10/DMK-BP-260911", 404),
    ];
    for (path, status) in cases {
        let page = get(&demo, path, &[("Accept", BROWSER)]).await;
        assert_eq!(page.status, status, "{path}: {}", page.text());
        assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
        let html = page.text();
        assert!(html.starts_with("<!doctype html><html lang=\"id\">"));
        let title = if status == 404 {
            "Label tidak dikenal"
        } else {
            "Alamat label tidak sah"
        };
        assert!(html.contains(title), "{path}: {html}");
        let json = get(&demo, path, &[("Accept", "application/json")]).await;
        assert_eq!(json.status, status);
        assert_eq!(json.header("content-type"), Some("application/problem+json"));
        assert_eq!(json.json().expect("problem")["status"], status);
    }
    // Paths that are no label stay closed to callers without a token.
    assert_eq!(get(&demo, "/nothing/here", &[]).await.status, 401);
    let en = get(
        &demo,
        "/01/08997001001018/10/NO-SUCH-LOT?lang=en",
        &[("Accept", BROWSER)],
    )
    .await;
    assert!(en.text().contains("Unknown label"));
    let post = jejak_testkit::http_request(demo.server.authority(), "POST", RICE_BAG, &[], b"x")
        .await
        .expect("post");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(demo.position().await, before, "refused requests write nothing");
}

/// Receives `{prefix}-GKG-1` (1000 kg of dry paddy) at the Demak facility,
/// mills it into `{prefix}-BP-1` (premium rice) and packs one 5 kg bag,
/// serial `{prefix}-0001`; returns the bag's label path.
async fn packed_rice_bag(demo: &mut Demo, prefix: &str) -> String {
    let (fac, id) = (DEMAK, prefix.to_ascii_lowercase());
    let c = &mut demo.capture;
    c.receive_material(p::ReceiveMaterialRequest {
        command_id: format!("{id}-recv"),
        facility_id: fac.into(),
        lot_id: format!("{prefix}-GKG-1"),
        product_id: DRIED_PADDY.into(),
        quantity: qty("1000", p::Unit::Kg),
        owner_id: UKM_SRIREJEKI.into(),
        supplier_id: FARMERS_SUMBERREJEKI.into(),
        ..Default::default()
    })
    .await
    .expect("receive");
    c.process_lots(p::ProcessLotsRequest {
        command_id: format!("{id}-mill"),
        facility_id: fac.into(),
        process_step: "penggilingan".into(),
        inputs: vec![p::LotInput {
            lot_id: format!("{prefix}-GKG-1"),
            quantity: qty("1000", p::Unit::Kg),
        }],
        outputs: vec![p::LotOutput {
            lot_id: format!("{prefix}-BP-1"),
            product_id: PREMIUM_RICE_5KG.into(),
            quantity: qty("600", p::Unit::Kg),
            owner_id: String::new(),
        }],
        ..Default::default()
    })
    .await
    .expect("mill");
    c.pack_lot(p::PackLotRequest {
        command_id: format!("{id}-pack"),
        facility_id: fac.into(),
        lot_id: format!("{prefix}-BP-1"),
        gtin: PREMIUM_RICE_GTIN.into(),
        packages: vec![p::Package {
            serial: format!("{prefix}-0001"),
            quantity: qty("5", p::Unit::Kg),
        }],
        occurred_at: None,
    })
    .await
    .expect("pack");
    format!("/01/08997001001018/10/{prefix}-BP-1/21/{prefix}-0001")
}

fn alert_before_title(html: &str) -> &str {
    let alert = html.find("role=\"alert\"").expect("an alert on the page");
    let h1 = html.find("<h1").expect("a title");
    assert!(alert < h1, "the alert comes before the product's title");
    &html[alert..h1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recalled_held_and_non_conformant_lots_say_so_at_the_top() {
    let mut demo = Demo::start().await;
    // The demo's recalled chairs.
    let chair = demo.lot(RECALLED_CHAIR_LOT).await;
    let label = chair.packages.first().expect("packed chairs").label.clone();
    let page = get(&demo, &label, &[("Accept", BROWSER)]).await;
    let html = unescape(&page.text());
    let top = alert_before_title(&html);
    assert!(top.contains("DITARIK DARI PEREDARAN"), "{top}");
    assert!(
        top.contains("Pernis bets PRN-2609-B"),
        "the recall's reason is shown: {top}"
    );
    let status = get(&demo, &format!("{label}?linkType=gs1:recallStatus"), &[]).await;
    let status = status.json().expect("json");
    assert_eq!(status["recalled"], true);
    assert_eq!(status["status"], "recalled");

    // The rice bag page has no alert.
    let ok = get(&demo, RICE_BAG, &[("Accept", BROWSER)]).await.text();
    assert!(!ok.contains("role=\"alert\""));

    // A lot made from an input later found non-conformant, then held.
    let fac = DEMAK;
    let path = packed_rice_bag(&mut demo, "RS").await;
    demo.capture
        .inspect_lot(p::InspectLotRequest {
            command_id: "rs-inspect".into(),
            facility_id: fac.into(),
            lot_id: "RS-GKG-1".into(),
            standard_id: "std-gkg-mutu-giling".into(),
            // Above the 14 % the standard allows.
            measurements: vec![
                p::Measurement {
                    parameter: "kadar_air".into(),
                    // Not a clock time: the page shows times (17.55 at five to six).
                    value: "16.97".into(),
                    unit: "%".into(),
                },
                p::Measurement {
                    parameter: "hampa_kotoran".into(),
                    value: "2.0".into(),
                    unit: "%".into(),
                },
            ],
            inspector: "e2e".into(),
            occurred_at: None,
        })
        .await
        .expect("inspect the input");
    demo.server.wait_projected(WAIT).await.expect("projected");
    let html = unescape(&get(&demo, &path, &[("Accept", BROWSER)]).await.text());
    let top = alert_before_title(&html);
    assert!(
        top.contains("Bahan baku bermasalah") && top.contains("RS-GKG-1"),
        "{top}"
    );
    assert!(top.contains("tidak memenuhi syarat"), "{top}");
    assert!(!html.contains("16.97"), "measurements are not in the public view");

    demo.capture
        .change_lot_status(p::ChangeLotStatusRequest {
            command_id: "rs-hold".into(),
            facility_id: fac.into(),
            lot_id: "RS-BP-1".into(),
            status: p::LotStatus::OnHold as i32,
            reason: "Menunggu uji ulang kadar air bahan".into(),
            ..Default::default()
        })
        .await
        .expect("hold");
    demo.server.wait_projected(WAIT).await.expect("projected");
    let en = unescape(
        &get(&demo, &format!("{path}?lang=en"), &[("Accept", BROWSER)])
            .await
            .text(),
    );
    let top = alert_before_title(&en);
    assert!(
        top.contains("ON HOLD") && top.contains("Menunggu uji ulang kadar air bahan"),
        "{top}"
    );
    assert!(top.contains("Problem with a raw material"), "{top}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chair_page_maps_the_forest_plots_of_its_timber() {
    let mut demo = Demo::start().await;
    let chair = demo.lot(TEAK_CHAIR_LOT).await;
    let label = chair.packages.first().expect("packed chairs").label.clone();
    let json = get(&demo, &label, &[("Accept", "application/json")])
        .await
        .json()
        .expect("json");
    let plots = json["plots"].as_array().expect("plots").clone();
    assert!(!plots.is_empty(), "teak chairs come from mapped plots");
    let html = unescape(&get(&demo, &label, &[("Accept", BROWSER)]).await.text());
    let map = &html[html.find("<svg").expect("an inline map")..html.find("</svg>").expect("map end")];
    assert_eq!(map.matches("<circle").count(), plots.len(), "one point per plot");
    for plot in &plots {
        let id = plot["plotId"].as_str().expect("plot id");
        assert!(map.contains(id), "the map names plot {id}");
        let lat = plot["latitude"].as_f64().expect("latitude");
        assert!((-11.0..=6.0).contains(&lat), "an Indonesian latitude");
    }
    // The rice bag's genealogy holds an inspection voided for a sample mix-up.
    let html = unescape(&get(&demo, RICE_BAG, &[("Accept", BROWSER)]).await.text());
    let corrections = &html[html.find("Koreksi catatan").expect("corrections section")..];
    assert!(
        corrections.contains("Sampel tertukar"),
        "the correction's reason is shown"
    );
    assert!(corrections.contains(DRIED_PADDY_LOT) && corrections.contains("pemeriksaan"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_prints_label_uris_that_open() {
    let demo = Demo::start().await;
    let lines = demo.server.stdout_lines();
    let uris: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.starts_with("demo labels"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|u| u.starts_with("http://"))
        .collect();
    assert!(uris.len() >= 3, "a few demo labels are printed: {lines:?}");
    for uri in uris {
        let path = uri.strip_prefix(&demo.server.url).expect("on this server");
        let page = get(&demo, path, &[("Accept", BROWSER)]).await;
        assert_eq!(page.status, 200, "{uri}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_holds_voided_recalls_and_later_corrections_are_told_truthfully() {
    let mut demo = Demo::start().await;
    let fac = DEMAK;
    let path = packed_rice_bag(&mut demo, "TR").await;
    let c = &mut demo.capture;
    let status = |id: &str, st: p::LotStatus, reason: &str| p::ChangeLotStatusRequest {
        command_id: id.into(),
        facility_id: fac.into(),
        lot_id: "TR-BP-1".into(),
        status: st as i32,
        reason: reason.into(),
        occurred_at: None,
    };
    c.change_lot_status(status("tr-hold", p::LotStatus::OnHold, "Karung basah di gudang"))
        .await
        .expect("hold");
    c.change_lot_status(status(
        "tr-release",
        p::LotStatus::Released,
        "Karung diganti, isi kering",
    ))
    .await
    .expect("release");
    c.change_lot_status(status("tr-recall", p::LotStatus::Recalled, "Penarikan keliru"))
        .await
        .expect("recall");
    let void = |id: &str, event: &str, reason: &str| p::VoidEventRequest {
        command_id: id.into(),
        facility_id: fac.into(),
        event_id: event.into(),
        reason: reason.into(),
        replacement_event_id: String::new(),
        occurred_at: None,
    };
    c.void_event(void(
        "tr-void-recall",
        "tr-recall",
        "Penarikan dicatat untuk lot yang salah",
    ))
    .await
    .expect("void the recall");
    // Something made later from the bag's lot, then voided: that
    // correction belongs to the later lot's page, not this one.
    c.process_lots(p::ProcessLotsRequest {
        command_id: "tr-repack".into(),
        facility_id: fac.into(),
        process_step: "pengemasan-ulang".into(),
        inputs: vec![p::LotInput {
            lot_id: "TR-BP-1".into(),
            quantity: qty("100", p::Unit::Kg),
        }],
        outputs: vec![p::LotOutput {
            lot_id: "TR-BP-2".into(),
            product_id: PREMIUM_RICE_5KG.into(),
            quantity: qty("100", p::Unit::Kg),
            owner_id: String::new(),
        }],
        ..Default::default()
    })
    .await
    .expect("repack");
    c.void_event(void("tr-void-repack", "tr-repack", "Jalur kemas ulang salah dipilih"))
        .await
        .expect("void the repack");
    demo.server.wait_projected(WAIT).await.expect("projected");

    let json = get(&demo, &path, &[("Accept", "application/json")])
        .await
        .json()
        .expect("json");
    assert_eq!(json["status"], "released", "{json}");
    assert_eq!(
        json["alerts"],
        serde_json::json!([]),
        "a released hold and a voided recall raise nothing"
    );
    let corrections = json["corrections"].as_array().expect("corrections");
    assert_eq!(corrections.len(), 1, "{corrections:?}");
    assert_eq!(corrections[0]["what"], "status");
    assert_eq!(corrections[0]["lotId"], "TR-BP-1");
    assert_eq!(corrections[0]["reason"], "Penarikan dicatat untuk lot yang salah");
    let steps = json["timeline"].as_array().expect("timeline");
    let recall = steps
        .iter()
        .find(|s| s["kind"] == "status" && s["status"] == "recalled")
        .expect("the recall stays in the journey");
    assert_eq!(recall["voided"], true);
    let release = steps
        .iter()
        .find(|s| s["kind"] == "status" && s["status"] == "released")
        .expect("the release");
    assert_eq!(release["voided"], false);

    let html = unescape(&get(&demo, &path, &[("Accept", BROWSER)]).await.text());
    assert!(!html.contains("role=\"alert\""), "no alert on a released lot");
    assert!(html.contains("dilepas setelah ditahan"));
    assert!(
        !html.contains("Jalur kemas ulang salah dipilih"),
        "a later lot's correction is not this lot's"
    );
    assert!(html.contains("Penarikan dicatat untuk lot yang salah"));
}
