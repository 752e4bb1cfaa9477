//! The EPCIS 2.0 query interface over plain HTTP on the server's port:
//! one lot's events by its class, filters, pages with `Link` headers,
//! CBV 2.0 event hash ids, refusals as problem+json, and what each role
//! receives.

use std::time::Duration;

use jejak_proto::v1 as p;
use jejak_server::demo::ids::{
    DRIED_PADDY_LOT, PADDY_LOT, PREMIUM_RICE_GTIN, RICE_BAG_LOT, RICE_BAG_SERIAL, UKM_BERKAH, UKM_SRIREJEKI,
};
use serde_json::Value;

use crate::support::Demo;

const DOMAIN: &str = "https://id.jejak.example";

fn rice_bag_class() -> String {
    format!("https://id.gs1.org/01/{PREMIUM_RICE_GTIN}/10/{RICE_BAG_LOT}")
}

/// GET `path` with an optional bearer token; the reply and its JSON body.
async fn get(demo: &Demo, path: &str, token: Option<&str>) -> (jejak_testkit::HttpReply, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let reply = demo
        .server
        .http_get(path, &headers)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e:#}"));
    let body: Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {}", String::from_utf8_lossy(&reply.body)));
    (reply, body)
}

fn events(body: &Value) -> Vec<Value> {
    body.pointer("/epcisBody/queryResults/resultsBody/eventList")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| panic!("no event list in {body}"))
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    format!("/epcis/events?{}", s.finish())
}

fn admin(demo: &Demo) -> Option<&str> {
    demo.server.admin_token.as_deref()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lots_events_come_as_epcis_with_hash_ids_filters_and_pages() {
    let demo = Demo::start().await;
    let class = rice_bag_class();
    let (reply, body) = get(&demo, &query(&[("MATCH_epcClass", &class)]), admin(&demo)).await;
    assert_eq!(reply.status, 200, "{body}");
    assert_eq!(reply.header("gs1-epcis-version"), Some("2.0.0"));
    assert_eq!(reply.header("gs1-cbv-version"), Some("2.0.0"));
    assert!(reply
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/ld+json")));
    assert_eq!(body["type"], "EPCISQueryDocument");
    let all = events(&body);
    let steps: Vec<&str> = all.iter().filter_map(|e| e["bizStep"].as_str()).collect();
    // Made by milling (a transformation), inspected, packed into bags, shipped.
    assert!(all.iter().any(|e| e["type"] == "TransformationEvent"), "{steps:?}");
    assert!(steps.contains(&"packing"), "{steps:?}");
    let packing = all.iter().find(|e| e["bizStep"] == "packing").expect("a packing event");
    assert_eq!(packing["type"], "AggregationEvent");
    assert_eq!(packing["parentID"], class.as_str());
    let bag = format!("https://id.gs1.org/01/{PREMIUM_RICE_GTIN}/21/{RICE_BAG_SERIAL}");
    assert!(
        packing["childEPCs"]
            .as_array()
            .is_some_and(|c| c.iter().any(|x| x == bag.as_str())),
        "{packing}"
    );
    let made = all
        .iter()
        .find(|e| e["type"] == "TransformationEvent")
        .expect("milling");
    let output = made["outputQuantityList"]
        .as_array()
        .and_then(|l| l.iter().find(|q| q["epcClass"] == class.as_str()))
        .expect("the lot is an output");
    assert_eq!(output["uom"], "KGM");
    assert!(output["quantity"].as_f64().is_some_and(|q| q > 0.0), "{output}");
    // Every event is named by its CBV 2.0 hash, and names differ.
    let ids: Vec<&str> = all.iter().filter_map(|e| e["eventID"].as_str()).collect();
    assert_eq!(ids.len(), all.len());
    for id in &ids {
        assert!(id.starts_with("ni:///sha-256;") && id.ends_with("?ver=CBV2.0"), "{id}");
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
    // The same query twice gives the same ids (the mapping is a function).
    let (_, again) = get(&demo, &query(&[("MATCH_epcClass", &class)]), admin(&demo)).await;
    let again: Vec<String> = events(&again).iter().map(|e| e["eventID"].to_string()).collect();
    assert_eq!(again, all.iter().map(|e| e["eventID"].to_string()).collect::<Vec<_>>());

    // Filters narrow; pages of two follow their Link headers to the same events.
    let (_, packed) = get(
        &demo,
        &query(&[("MATCH_epcClass", &class), ("EQ_bizStep", "packing")]),
        admin(&demo),
    )
    .await;
    assert_eq!(events(&packed).len(), 1);
    let (_, typed) = get(
        &demo,
        &query(&[("MATCH_epcClass", &class), ("eventType", "AggregationEvent")]),
        admin(&demo),
    )
    .await;
    assert_eq!(events(&typed).len(), 1);
    let (_, none) = get(
        &demo,
        &query(&[("MATCH_epcClass", &class), ("LT_eventTime", "2001-01-01T00:00:00Z")]),
        admin(&demo),
    )
    .await;
    assert!(events(&none).is_empty());
    let mut paged = Vec::new();
    let mut path = query(&[("MATCH_epcClass", &class), ("perPage", "2")]);
    for _ in 0..all.len() + 1 {
        let (reply, body) = get(&demo, &path, admin(&demo)).await;
        let page = events(&body);
        assert!(page.len() <= 2);
        paged.extend(page.iter().map(|e| e["eventID"].to_string()));
        match reply.header("link") {
            Some(link) => {
                let target = link
                    .strip_prefix('<')
                    .and_then(|l| l.split_once('>'))
                    .map(|(t, rest)| {
                        assert!(rest.contains("rel=\"next\""), "{link}");
                        t.to_string()
                    })
                    .expect("a Link header with a target");
                path = target;
            }
            None => break,
        }
    }
    assert_eq!(paged, all.iter().map(|e| e["eventID"].to_string()).collect::<Vec<_>>());

    // A scan of the whole log finds the receipts of the paddy, by location.
    let (_, receipts) = get(
        &demo,
        &query(&[
            ("EQ_bizStep", "receiving"),
            ("EQ_bizLocation", &format!("{DOMAIN}/loc/fac-demak")),
            ("perPage", "1000"),
        ]),
        admin(&demo),
    )
    .await;
    let receipts = events(&receipts);
    assert!(
        receipts
            .iter()
            .any(|e| e["quantityList"][0]["epcClass"] == format!("{DOMAIN}/lot/prd-dmk-gkp/{PADDY_LOT}").as_str()),
        "{receipts:?}"
    );
    assert!(receipts.iter().all(|e| e["bizStep"] == "receiving"));

    // A voided inspection comes again with its error declaration.
    let dried = format!("{DOMAIN}/lot/prd-dmk-gkg/{DRIED_PADDY_LOT}");
    let (_, dried) = get(&demo, &query(&[("MATCH_epcClass", &dried)]), admin(&demo)).await;
    let dried = events(&dried);
    let declared = dried
        .iter()
        .find(|e| e.get("errorDeclaration").is_some())
        .expect("the voided inspection re-issued with an error declaration");
    assert_eq!(declared["errorDeclaration"]["reason"], "incorrect_data");
    let original = dried
        .iter()
        .find(|e| e.get("errorDeclaration").is_none() && e["eventID"] == declared["eventID"])
        .expect("the same event id as the event it declares wrong (errorDeclaration is not hashed)");
    assert_eq!(original["bizStep"], "inspecting");

    // One event by its id: the event, and its declaration when it was declared wrong.
    let by_id = |id: &str| {
        format!(
            "/epcis/events/{}",
            form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        )
    };
    let id = original["eventID"].as_str().expect("an id");
    let (reply, body) = get(&demo, &by_id(id), admin(&demo)).await;
    assert_eq!(reply.status, 200, "{body}");
    let both = events(&body);
    assert_eq!(both.len(), 2, "{body}");
    assert!(both.iter().all(|e| e["eventID"] == id));
    assert_eq!(both.iter().filter(|e| e.get("errorDeclaration").is_some()).count(), 1);
    let one = ids[0];
    let (_, body) = get(&demo, &by_id(one), admin(&demo)).await;
    assert_eq!(events(&body).len(), 1);
    assert_eq!(events(&body)[0]["eventID"], one);
    // Not to a caller who sees the event only in part, and not an id that names nothing.
    let (reply, _) = get(&demo, &by_id(one), None).await;
    assert_eq!(reply.status, 404);
    // That caller finds it by the id it was given: its public view's.
    let (reply, body) = get(&demo, &query(&[("MATCH_epcClass", &class)]), None).await;
    assert_eq!(reply.status, 200, "{body}");
    let seen = events(&body);
    let public = seen
        .iter()
        .find(|e| e["eventID"].as_str().is_some_and(|i| !ids.contains(&i)))
        .unwrap_or_else(|| panic!("an event whose public view has an id of its own: {body}"));
    let public_id = public["eventID"].as_str().expect("an id");
    let (reply, body) = get(&demo, &by_id(public_id), None).await;
    assert_eq!(reply.status, 200, "{body}");
    assert!(events(&body).iter().any(|e| e == public), "{body}");
    let (reply, body) = get(&demo, &by_id("ni:///sha-256;00?ver=CBV2.0"), admin(&demo)).await;
    assert_eq!(reply.status, 404, "{body}");
    assert_eq!(body["type"], "epcisException:NoSuchResourceException", "{body}");

    // The event types, and refusals that name the parameter.
    let (reply, types) = get(&demo, "/epcis/eventTypes", None).await;
    assert_eq!(reply.status, 200);
    assert!(types
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x == "TransformationEvent")));
    for (path, names) in [
        (query(&[("perPage", "0")]), "perPage"),
        (query(&[("GE_eventTime", "yesterday")]), "GE_eventTime"),
        (query(&[("EQ_bizstep", "receiving")]), "EQ_bizstep"),
        (query(&[("eventType", "ThingEvent")]), "eventType"),
    ] {
        let (reply, body) = get(&demo, &path, admin(&demo)).await;
        assert_eq!(reply.status, 400, "{path}: {body}");
        assert!(reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/problem+json")));
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains(names)),
            "{path}: {body}"
        );
        assert_eq!(body["type"], "epcisException:QueryParameterException", "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_receives_what_its_view_discloses() {
    let demo = Demo::start().await;
    let paddy = format!("{DOMAIN}/lot/prd-dmk-gkp/{PADDY_LOT}");
    let year = Duration::from_secs(365 * 86_400);
    // Who owns the paddy lot decides who sees its quantities.
    let owner = {
        let (_, body) = get(&demo, &query(&[("MATCH_epcClass", &paddy)]), admin(&demo)).await;
        let receipt = events(&body)
            .into_iter()
            .find(|e| e["bizStep"] == "receiving")
            .expect("the paddy's receipt");
        let owner = receipt["destinationList"][0]["destination"]
            .as_str()
            .and_then(|d| d.strip_prefix(&format!("{DOMAIN}/party/")))
            .expect("the owner as destination")
            .to_string();
        assert!(receipt["quantityList"][0]["quantity"].is_number(), "{receipt}");
        assert!(receipt["jejak:eventId"].is_string(), "{receipt}");
        owner
    };
    let other = if owner == UKM_BERKAH { UKM_SRIREJEKI } else { UKM_BERKAH };
    let own = demo
        .server
        .issue_token(p::AccessRole::Member, &[], &owner, year)
        .await
        .expect("a token of the owner");
    let stranger = demo
        .server
        .issue_token(p::AccessRole::Member, &[], other, year)
        .await
        .expect("a token of another UKM");
    for (who, token, full) in [
        ("the owner", Some(own.as_str()), true),
        ("another UKM", Some(stranger.as_str()), false),
        ("a caller without a token", None, false),
    ] {
        let (reply, body) = get(&demo, &query(&[("MATCH_epcClass", &paddy)]), token).await;
        assert_eq!(reply.status, 200, "{who}: {body}");
        let got = events(&body);
        let receipt = got
            .iter()
            .find(|e| e["bizStep"] == "receiving")
            .unwrap_or_else(|| panic!("{who} sees the receipt's public parts"));
        assert_eq!(receipt["quantityList"][0]["epcClass"], paddy.as_str(), "{who}");
        assert_eq!(
            receipt["quantityList"][0]["quantity"].is_number(),
            full,
            "{who}: {receipt}"
        );
        assert_eq!(receipt["jejak:eventId"].is_string(), full, "{who}: {receipt}");
        let inspection = got
            .iter()
            .find(|e| e["bizStep"] == "inspecting")
            .expect("an inspection");
        assert!(inspection["disposition"].is_string(), "{who}: verdicts are public");
        assert_eq!(
            inspection.get("sensorElementList").is_some(),
            full,
            "{who}: {inspection}"
        );
        // What a caller cannot see, it cannot filter on either.
        let text = body.to_string();
        if !full {
            assert!(!text.contains("\"uom\":\"KGM\""), "{who}: {text}");
        }
    }
    // Why a lot was held or recalled is private, as in a provenance bundle:
    // the status is public, the reason is not.
    let holding = query(&[("EQ_bizStep", "holding")]);
    let (_, body) = get(&demo, &holding, admin(&demo)).await;
    assert!(events(&body).iter().any(|e| e["jejak:reason"].is_string()), "{body}");
    let (_, body) = get(&demo, &holding, None).await;
    let public = events(&body);
    assert!(
        !public.is_empty()
            && public
                .iter()
                .all(|e| e.get("jejak:reason").is_none() && e["jejak:status"].is_string()),
        "{body}"
    );
}

/// The conformance data beside the project.
fn conformance(dir: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/openepcis")
        .join(dir)
}

fn json_files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(conformance(dir))
        .unwrap_or_else(|e| panic!("read {}: {e}", conformance(dir).display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no documents in {dir}");
    files
}

/// POSTs a document to /epcis/capture as the administrator.
pub(crate) async fn post(
    server: &jejak_testkit::Server,
    body: &[u8],
    behaviour: &str,
) -> (jejak_testkit::HttpReply, Value) {
    let auth = format!("Bearer {}", server.admin_token.as_deref().expect("an admin token"));
    let reply = jejak_testkit::http_request(
        server.authority(),
        "POST",
        "/epcis/capture",
        &[
            ("authorization", &auth),
            ("content-type", "application/ld+json"),
            ("GS1-Capture-Error-Behaviour", behaviour),
        ],
        body,
    )
    .await
    .expect("POST /epcis/capture");
    let json = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply, json)
}

/// Follows a capture job until it ends.
pub(crate) async fn finished(server: &jejak_testkit::Server, job: &Value) -> Value {
    let id = job["captureID"]
        .as_str()
        .unwrap_or_else(|| panic!("no captureID in {job}"));
    let auth = format!("Bearer {}", server.admin_token.as_deref().expect("an admin token"));
    let path = format!("/epcis/capture/{id}");
    jejak_testkit::wait_until(std::time::Instant::now() + crate::support::WAIT, || async {
        let reply = server.http_get(&path, &[("authorization", &auth)]).await?;
        let job: Value = serde_json::from_slice(&reply.body)?;
        Ok((job["running"] == false).then_some(job))
    })
    .await
    .unwrap_or_else(|e| panic!("capture job {id}: {e:#}"))
}

/// Every event the store answers to an administrator, by scanning the log.
async fn all_events(server: &jejak_testkit::Server) -> Vec<Value> {
    let auth = format!("Bearer {}", server.admin_token.as_deref().expect("an admin token"));
    let mut out = Vec::new();
    let mut path = "/epcis/events?perPage=1000".to_string();
    loop {
        let reply = server
            .http_get(&path, &[("authorization", &auth)])
            .await
            .expect("GET /epcis/events");
        let body: Value = serde_json::from_slice(&reply.body).expect("a query document");
        out.extend(events(&body));
        match reply
            .header("link")
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.split_once('>'))
        {
            Some((next, _)) => path = next.to_string(),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openepcis_documents_are_captured_and_queried_back_and_invalid_ones_write_nothing() {
    let server = jejak_testkit::Server::start(jejak_testkit::ServerOptions::default()).expect("an empty server");
    let mut expected = Vec::new();
    for dir in ["Capture/Documents", "Capture/Events"] {
        for file in json_files(dir) {
            let body = std::fs::read(&file).expect("read the document");
            let doc: Value = serde_json::from_slice(&body).expect("the document is JSON");
            // The reference's ids of its events, computed over the whole document.
            let hashes =
                jejak_epcis::hash::document_hashes(&doc).unwrap_or_else(|e| panic!("{}: hashes: {e}", file.display()));
            let (reply, job) = post(&server, &body, "rollback").await;
            assert_eq!(reply.status, 202, "{}: {job}", file.display());
            assert!(reply
                .header("location")
                .is_some_and(|l| l.starts_with("/epcis/capture/")));
            let job = finished(&server, &job).await;
            assert_eq!(job["success"], true, "{}: {job}", file.display());
            assert_eq!(
                job["recorded"].as_u64(),
                Some(hashes.len() as u64),
                "{}: {job}",
                file.display()
            );
            expected.extend(hashes);
        }
    }
    let stored = all_events(&server).await;
    let ids: std::collections::HashSet<&str> = stored.iter().filter_map(|e| e["eventID"].as_str()).collect();
    for h in &expected {
        assert!(ids.contains(h.as_str()), "event {h} is not answered by /epcis/events");
    }
    // Their extensions keep their meaning: each comes with its document's context.
    let extended = stored
        .iter()
        .find(|e| e.get("example:myField").is_some())
        .expect("an event with an example: extension");
    assert!(extended.get("@context").is_some(), "{extended}");

    let before = server.status().await.expect("status").log_position;
    for file in json_files("Capture/Invalid") {
        let body = std::fs::read(&file).expect("read the document");
        let (reply, problem) = post(&server, &body, "rollback").await;
        assert_eq!(reply.status, 400, "{}: {problem}", file.display());
        assert_eq!(problem["type"], "epcisException:ValidationException", "{problem}");
        assert!(reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/problem+json")));
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(':') && detail.len() > 10,
            "{}: {problem}",
            file.display()
        );
    }
    // Named: the field and, in a document of several events, the event.
    let second = std::fs::read(
        conformance("Capture/Invalid").join("ObjectEvent_with_non_standard_bizStep_in_second_event.json"),
    )
    .expect("read");
    let (_, problem) = post(&server, &second, "rollback").await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("event 1") && d.contains("bizStep")),
        "{problem}"
    );
    assert_eq!(
        server.status().await.expect("status").log_position,
        before,
        "a refused document wrote nothing"
    );

    // More than 10,000 events is refused with the limit named.
    let event = serde_json::json!({
        "type": "ObjectEvent", "eventTime": "2026-07-22T06:45:00+02:00", "eventTimeZoneOffset": "+02:00",
        "action": "OBSERVE", "epcList": ["https://id.gs1.org/01/09521141012345/21/2017"],
    });
    let many = serde_json::json!({
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-07-22T06:45:00+02:00",
        "epcisBody": { "eventList": vec![event; 10_001] },
    });
    let (reply, problem) = post(&server, &serde_json::to_vec(&many).expect("encode"), "rollback").await;
    assert_eq!(reply.status, 413, "{problem}");
    assert_eq!(
        problem["type"], "epcisException:CaptureLimitExceededException",
        "{problem}"
    );
    assert!(
        problem["detail"].as_str().is_some_and(|d| d.contains("10000")),
        "{problem}"
    );
    assert_eq!(server.status().await.expect("status").log_position, before);

    // A document larger than a capture takes is 413 before it is read.
    let head = too_large(&server).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(
        head.contains("application/problem+json") && head.contains("split it"),
        "{head}"
    );
    assert_eq!(server.status().await.expect("status").log_position, before);
}

/// Announces a 100 MiB capture, sends a little of it, and returns what the
/// server answers.
async fn too_large(server: &jejak_testkit::Server) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(server.authority())
        .await
        .expect("connect");
    let token = server.admin_token.as_deref().expect("an admin token");
    let head = format!(
        "POST /epcis/capture HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/ld+json\r\nContent-Length: {}\r\n\r\n{{",
        server.authority(),
        100 * 1024 * 1024
    );
    tcp.write_all(head.as_bytes()).await.expect("send the head");
    let mut reply = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut reply))
        .await
        .expect("an answer before the body")
        .expect("read the answer");
    String::from_utf8_lossy(&reply[..n]).into_owned()
}

/// A timestamp to the millisecond (EPCIS times are kept to the millisecond).
fn millis(t: &mut Option<prost_types::Timestamp>) {
    if let Some(t) = t {
        t.nanos -= t.nanos % 1_000_000;
    }
}

/// A lot as both servers must show it: everything, times to the millisecond.
fn comparable(mut lot: p::Lot) -> p::Lot {
    millis(&mut lot.created_at);
    for i in &mut lot.inspections {
        millis(&mut i.occurred_at);
    }
    for s in &mut lot.shipments {
        millis(&mut s.occurred_at);
    }
    lot
}

async fn story(
    server: &jejak_testkit::Server,
    label: &str,
) -> (Vec<p::Lot>, Vec<(String, String, String)>, p::OriginSharesReply) {
    let mut trace = server.trace().await.expect("a trace client");
    let target = || p::Target {
        kind: Some(p::target::Kind::Label(label.to_string())),
    };
    let t = trace
        .backward_trace(p::TraceRequest {
            target: Some(target()),
            max_depth: 0,
            max_nodes: 0,
        })
        .await
        .unwrap_or_else(|e| panic!("trace {label}: {e}"))
        .into_inner();
    let mut lots: Vec<p::Lot> = t.nodes.into_iter().filter_map(|n| n.lot).map(comparable).collect();
    lots.sort_by(|a, b| a.lot_id.cmp(&b.lot_id));
    let mut edges: Vec<(String, String, String)> = t
        .edges
        .into_iter()
        .map(|e| (e.input_lot_id, e.output_lot_id, format!("{:?}", e.quantity)))
        .collect();
    edges.sort();
    let shares = trace
        .origin_shares(p::OriginSharesRequest { target: Some(target()) })
        .await
        .unwrap_or_else(|e| panic!("shares of {label}: {e}"))
        .into_inner();
    (lots, edges, shares)
}

fn event_ids(doc: &Value) -> Vec<String> {
    doc.pointer("/epcisBody/eventList")
        .and_then(Value::as_array)
        .expect("an event list")
        .iter()
        .map(|e| e["eventID"].as_str().expect("an eventID").to_string())
        .collect()
}

/// `jejak epcis capture` told to slow down (a token allowed one request a
/// second: the document's POST, then each look at its job) waits and asks
/// again instead of giving up while the job goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epcis_capture_told_to_slow_down_waits_and_follows_its_job_to_the_end() {
    let server = jejak_testkit::Server::start(jejak_testkit::ServerOptions {
        demo: true,
        rate_limits: Some((1.0, 100.0)),
        ..Default::default()
    })
    .expect("a demo server with a tight rate limit");
    server.wait_projected(crate::support::WAIT).await.expect("projected");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("two.jsonld");
    std::fs::write(
        &file,
        document(vec![
            receipt("SLOW-EPCIS-1", "ukm-dmk-berkah"),
            receipt("SLOW-EPCIS-2", "ukm-dmk-berkah"),
        ]),
    )
    .expect("write the document");
    let job = cli(&server, &["epcis", "capture", file.to_str().expect("utf-8")]);
    let job: Value = serde_json::from_str(&job).unwrap_or_else(|e| panic!("the job as JSON ({e}): {job}"));
    assert_eq!(job["success"], true, "{job}");
    assert_eq!(job["recorded"], 2, "{job}");
}

/// `jejak epcis export` whose connection breaks in the middle of a reply
/// asks for that page again on a new connection: the document it writes
/// is the one an unbroken export writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epcis_export_whose_connection_breaks_mid_reply_writes_the_whole_document() {
    let d = Demo::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (whole, broken) = (dir.path().join("whole.jsonld"), dir.path().join("broken.jsonld"));
    cli(&d.server, &["epcis", "export", "-o", whole.to_str().expect("utf-8")]);
    let whole: Value = serde_json::from_slice(&std::fs::read(&whole).expect("read")).expect("JSON");
    // The first connection closes after 16 KiB of the server's bytes.
    let relay = crate::support::Relay::start(&d.server.url, crate::support::First::CutAfter(16 * 1024)).await;
    let token = d.server.admin_token.clone().expect("an admin token");
    let (status, out, err) = jejak_testkit::run_cli(&[
        "epcis",
        "export",
        "-o",
        broken.to_str().expect("utf-8"),
        "--server",
        &relay.url,
        "--token",
        &token,
    ])
    .expect("run jejak");
    assert!(status.success(), "{err}\n{out}");
    assert!(relay.connections() >= 2, "the export connected again");
    let broken: Value = serde_json::from_slice(&std::fs::read(&broken).expect("read")).expect("JSON");
    assert_eq!(event_ids(&broken), event_ids(&whole));
    // The same document but for when it was made.
    let made_now = |mut doc: Value| {
        doc.as_object_mut().map(|m| m.remove("creationDate"));
        doc
    };
    assert!(made_now(broken) == made_now(whole), "the documents differ");
}

/// `jejak epcis export` whose connection goes silent with a request on it
/// (the server answers, nothing comes back, nothing closes: a proxy that
/// lost it) notices by its unanswered pings, closes it, and asks again on
/// a new connection, instead of waiting for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epcis_export_whose_connection_goes_silent_asks_again_on_a_new_one() {
    let d = Demo::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out_file = dir.path().join("silent.jsonld");
    // The first connection carries the client's bytes only, and is never cut.
    let relay = crate::support::Relay::start(&d.server.url, crate::support::First::OneWay).await;
    let token = d.server.admin_token.clone().expect("an admin token");
    let args = [
        "epcis".to_string(),
        "export".into(),
        "-o".into(),
        out_file.to_str().expect("utf-8").into(),
        "--server".into(),
        relay.url.clone(),
        "--token".into(),
        token,
    ];
    let export = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        jejak_testkit::run_cli(&args).expect("run jejak")
    });
    let (status, out, err) = tokio::time::timeout(Duration::from_secs(90), export)
        .await
        .expect("the export ends within 90 s")
        .expect("the export ran");
    assert!(status.success(), "{err}\n{out}");
    assert!(relay.connections() >= 2, "the export connected again");
    let doc: Value = serde_json::from_slice(&std::fs::read(&out_file).expect("read")).expect("JSON");
    assert!(event_ids(&doc).len() > 50, "the whole demo exported");
}

/// Two documents still arriving hold the server's places for reading and
/// checking documents: a third is told to slow down (429, Retry-After,
/// nothing read), and once they are gone it is read (and refused here, as
/// it is not JSON: that it was read is what counts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_beyond_the_documents_read_at_once_is_told_to_slow_down() {
    use tokio::io::AsyncWriteExt;
    let d = Demo::start().await;
    let token = d.server.admin_token.clone().expect("an admin token");
    let mut arriving = Vec::new();
    for _ in 0..2 {
        let mut tcp = tokio::net::TcpStream::connect(d.server.authority())
            .await
            .expect("connect");
        let head = format!(
            "POST /epcis/capture HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/ld+json\r\nContent-Length: 100000\r\n\r\n{{",
            d.server.authority(),
        );
        tcp.write_all(head.as_bytes()).await.expect("send the head");
        arriving.push(tcp);
    }
    let busy = jejak_testkit::wait_until(std::time::Instant::now() + Duration::from_secs(30), || async {
        let (reply, problem) = post(&d.server, b"{", "rollback").await;
        Ok((reply.status == 429).then_some((reply, problem)))
    })
    .await
    .expect("told to slow down while two documents arrive");
    let (reply, problem) = busy;
    assert_eq!(reply.header("retry-after"), Some("1"), "{problem}");
    assert_eq!(problem["reason"], "EPCIS_CAPTURE_BUSY", "{problem}");
    drop(arriving);
    let (reply, problem) = jejak_testkit::wait_until(std::time::Instant::now() + Duration::from_secs(30), || async {
        let (reply, problem) = post(&d.server, b"{", "rollback").await;
        Ok((reply.status != 429).then_some((reply, problem)))
    })
    .await
    .expect("read once the others are gone");
    assert_eq!(reply.status, 400, "{problem}");
    assert!(
        problem["detail"].as_str().is_some_and(|t| t.contains("not JSON")),
        "{problem}"
    );
}

/// `jejak epcis capture` whose connection breaks while it follows its job
/// (the job goes on on the server) follows it on a new connection to the
/// end, and reports what the job did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epcis_capture_whose_connection_breaks_follows_its_job_on_a_new_one() {
    const N: usize = 4000;
    let d = Demo::start().await;
    let relay = crate::support::Relay::start(&d.server.url, crate::support::First::Relayed).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("many.jsonld");
    let events = (0..N)
        .map(|i| receipt(&format!("CUT-EPCIS-{i}"), "ukm-dmk-berkah"))
        .collect();
    std::fs::write(&file, document(events)).expect("write the document");
    let before = d.position().await;
    let token = d.server.admin_token.clone().expect("an admin token");
    let url = relay.url.clone();
    let capture = tokio::task::spawn_blocking(move || {
        jejak_testkit::run_cli(&[
            "epcis",
            "capture",
            file.to_str().expect("utf-8"),
            "--server",
            &url,
            "--token",
            &token,
        ])
        .expect("run jejak")
    });
    // Once the job has recorded some of the document, the connection the
    // client follows it on breaks.
    // (Looked at every 10 ms: the job is over within a second or two.)
    let started = std::time::Instant::now();
    while d.position().await < before + 50 {
        assert!(started.elapsed() < crate::support::WAIT, "the job did not start");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        d.position().await < before + N as u64,
        "the job was still running when cut"
    );
    relay.cut();
    let (status, out, err) = capture.await.expect("the capture ran");
    assert!(status.success(), "{err}\n{out}");
    let job: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("the job as JSON ({e}): {out}"));
    assert_eq!(job["success"], true, "{job}");
    assert_eq!(job["recorded"], N, "{job}");
    assert!(relay.connections() >= 2, "the client connected again");
    assert_eq!(d.position().await, before + N as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_exported_and_captured_into_an_empty_server_tells_the_same_stories() {
    let demo = Demo::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let first = dir.path().join("demo.jsonld");
    let again = dir.path().join("again.jsonld");
    let out = cli(&demo.server, &["epcis", "export", "-o", first.to_str().expect("utf-8")]);
    assert!(out.contains("EPCIS events"), "{out}");
    let exported: Value = serde_json::from_slice(&std::fs::read(&first).expect("read")).expect("JSON");
    assert_eq!(exported["type"], "EPCISDocument");
    let ids = event_ids(&exported);
    assert!(ids.len() > 50, "the demo has more events than {}", ids.len());
    // The Tegal works has a GLN (events there are at its SGLN), and so
    // has a rice buyer (shipments to it name its PGLN).
    let text = exported.to_string();
    assert!(text.contains("\"https://id.gs1.org/414/8997001000028\""), "an SGLN");
    assert!(text.contains("\"https://id.gs1.org/417/8997001001001\""), "a PGLN");

    let empty = jejak_testkit::Server::start(jejak_testkit::ServerOptions::default()).expect("an empty server");
    let job = cli(&empty, &["epcis", "capture", first.to_str().expect("utf-8")]);
    let job: Value = serde_json::from_str(&job).unwrap_or_else(|e| panic!("the job as JSON ({e}): {job}"));
    assert_eq!(job["success"], true, "{job}");
    assert_eq!(job["observations"], 0, "every demo event maps onto a command: {job}");
    empty.wait_projected(crate::support::WAIT).await.expect("projected");
    cli(&empty, &["epcis", "export", "-o", again.to_str().expect("utf-8")]);
    let reexported: Value = serde_json::from_slice(&std::fs::read(&again).expect("read")).expect("JSON");
    let again_ids = event_ids(&reexported);
    assert_eq!(again_ids.len(), ids.len(), "as many events");
    if let Some(i) = (0..ids.len()).find(|i| ids[*i] != again_ids[*i]) {
        panic!(
            "event {i} differs after the round trip:\n{}\n{}",
            exported["epcisBody"]["eventList"][i], reexported["epcisBody"]["eventList"][i]
        );
    }

    // Capturing the same document again changes nothing: every event is a replay.
    let job = cli(&empty, &["epcis", "capture", first.to_str().expect("utf-8")]);
    let job: Value = serde_json::from_str(&job).expect("JSON");
    assert_eq!(job["replayed"], job["recorded"], "{job}");

    let base = "https://id.example.org";
    let labels: Vec<String> = jejak_server::demo::SHOWCASE
        .iter()
        .map(|(lot, _)| *lot)
        .filter_map(|lot| {
            let l = exported["epcisBody"]["eventList"].as_array()?.iter().find(|e| {
                e["bizStep"] == "packing"
                    && e["parentID"]
                        .as_str()
                        .is_some_and(|p| p.ends_with(&format!("/10/{lot}")))
            })?;
            let unit = l["childEPCs"][0].as_str()?;
            let (gtin, serial) = unit.strip_prefix("https://id.gs1.org/01/")?.split_once("/21/")?;
            Some(format!("{base}/01/{gtin}/10/{lot}/21/{serial}"))
        })
        .collect();
    assert_eq!(
        labels.len(),
        jejak_server::demo::SHOWCASE.len(),
        "every showcase lot was packed"
    );
    for label in &labels {
        let (lots_a, edges_a, shares_a) = story(&demo.server, label).await;
        let (lots_b, edges_b, shares_b) = story(&empty, label).await;
        assert_eq!(edges_a, edges_b, "{label}: the same edges");
        assert_eq!(lots_a, lots_b, "{label}: the same lots");
        assert_eq!(shares_a, shares_b, "{label}: the same origin shares");
    }
}

/// Runs a client command against `server` as its administrator and
/// expects it to succeed; its standard output.
fn cli(server: &jejak_testkit::Server, args: &[&str]) -> String {
    let token = server.admin_token.clone().expect("an admin token");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--server", &server.url, "--token", &token]);
    let (status, out, err) = jejak_testkit::run_cli(&all).expect("run jejak");
    assert!(status.success(), "jejak {args:?}: {status}: {err}\n{out}");
    out
}

/// A receipt of jejak's shape at the Demak mill, owned by `owner`.
pub(crate) fn receipt(lot: &str, owner: &str) -> Value {
    serde_json::json!({
        "type": "ObjectEvent", "action": "ADD", "bizStep": "receiving", "disposition": "in_progress",
        "eventTime": "2026-11-01T01:00:00.000Z", "eventTimeZoneOffset": "+07:00",
        "epcList": [],
        "quantityList": [{ "epcClass": format!("{DOMAIN}/lot/prd-dmk-gkp/{lot}"), "quantity": 500, "uom": "KGM" }],
        "bizLocation": { "id": format!("{DOMAIN}/loc/fac-demak") },
        "readPoint": { "id": format!("{DOMAIN}/loc/fac-demak") },
        "sourceList": [{ "type": "owning_party", "source": format!("{DOMAIN}/party/sup-dmk-gpk-sumberrejeki") }],
        "destinationList": [{ "type": "owning_party", "destination": format!("{DOMAIN}/party/{owner}") }],
        "ilmd": { "jejak:originPlace": "Desa Karangawen" },
    })
}

pub(crate) fn document(events: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld", { "jejak": "https://ns.jejak.id/epcis/" }],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-11-01T01:00:00Z",
        "epcisBody": { "eventList": events },
    }))
    .expect("encode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_rolls_back_the_document_or_is_skipped_with_proceed() {
    let mut demo = Demo::start().await;
    // The second receipt's owner is a farmer group, not a UKM: the rules refuse it.
    let doc = document(vec![
        receipt("EPX-1", UKM_BERKAH),
        receipt("EPX-2", "sup-dmk-gpk-sumberrejeki"),
    ]);
    let (reply, job) = post(&demo.server, &doc, "rollback").await;
    assert_eq!(reply.status, 202, "{job}");
    let job = finished(&demo.server, &job).await;
    assert_eq!(job["success"], false, "{job}");
    let error = &job["errors"][0];
    assert_eq!(error["eventIndex"], 1, "{job}");
    assert_eq!(error["reason"], "PARTY_ROLE", "{job}");
    assert_eq!(error["rule"], "party-role", "{job}");
    assert_eq!(error["field"], "destinationList", "{job}");
    assert!(error["detail"].as_str().is_some_and(|d| d.contains("UKM")), "{job}");
    assert_eq!(
        job["voided"].as_array().map(Vec::len),
        Some(1),
        "the first receipt is voided again: {job}"
    );
    assert!(demo.lot("EPX-1").await.voided, "rolled back");
    // The same document again: its first receipt is answered as recorded
    // before, and the job says that it stands voided (and by which void).
    let before = demo.position().await;
    let (_, again) = post(&demo.server, &doc, "rollback").await;
    let again = finished(&demo.server, &again).await;
    assert_eq!(again["success"], false, "the second receipt is refused again: {again}");
    assert_eq!(again["replayed"], 1, "{again}");
    let stands_voided = &again["replayedVoided"];
    assert_eq!(stands_voided.as_array().map(Vec::len), Some(1), "{again}");
    assert_eq!(stands_voided[0]["eventID"], job["voided"][0], "{again}");
    assert!(
        stands_voided[0]["voidedBy"].as_str().is_some_and(|v| !v.is_empty()),
        "{again}"
    );
    assert_eq!(
        again["voided"],
        serde_json::json!([]),
        "a replay is not voided again: {again}"
    );
    assert_eq!(demo.position().await, before, "nothing written");
    assert!(demo.lot("EPX-1").await.voided, "still voided");

    let doc = document(vec![
        receipt("EPX-3", UKM_BERKAH),
        receipt("EPX-4", "sup-dmk-gpk-sumberrejeki"),
    ]);
    let (_, job) = post(&demo.server, &doc, "proceed").await;
    let job = finished(&demo.server, &job).await;
    assert_eq!(job["success"], false, "{job}");
    assert_eq!(job["recorded"], 1, "{job}");
    assert_eq!(job["errors"][0]["eventIndex"], 1, "{job}");
    assert!(!demo.lot("EPX-3").await.voided, "proceed keeps what the rules accept");

    // An operator of another facility captures nothing at Demak.
    let tegal = demo
        .server
        .issue_token(p::AccessRole::Operator, &["fac-tegal"], "", Duration::from_secs(3600))
        .await
        .expect("an operator token for Tegal");
    let before = demo.position().await;
    let reply = jejak_testkit::http_request(
        demo.server.authority(),
        "POST",
        "/epcis/capture",
        &[("authorization", &format!("Bearer {tegal}"))],
        &document(vec![receipt("EPX-5", UKM_BERKAH)]),
    )
    .await
    .expect("POST");
    let job: Value = serde_json::from_slice(&reply.body).expect("a job");
    let job = finished(&demo.server, &job).await;
    assert_eq!(job["errors"][0]["reason"], "WRONG_FACILITY", "{job}");
    assert_eq!(demo.position().await, before, "nothing written");

    // A valid event that maps onto no command and names a lot: kept as an
    // observation, and in the lot's history.
    let observed = serde_json::json!({
        "type": "TransactionEvent", "action": "ADD",
        "eventTime": "2026-11-02T01:00:00Z", "eventTimeZoneOffset": "+07:00",
        "bizTransactionList": [{ "type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:0614141000012:PO-77" }],
        "epcList": [],
        "quantityList": [{ "epcClass": rice_bag_class(), "quantity": 40, "uom": "H87" }],
        "bizLocation": { "id": "https://id.gs1.org/414/0614141000012" },
    });
    let (_, job) = post(&demo.server, &document(vec![observed]), "rollback").await;
    let job = finished(&demo.server, &job).await;
    assert_eq!(
        (job["success"].clone(), job["observations"].clone()),
        (Value::from(true), Value::from(1)),
        "{job}"
    );
    demo.server
        .wait_projected(crate::support::WAIT)
        .await
        .expect("projected");
    let history = demo
        .trace
        .lot_history(p::LotHistoryRequest {
            lot_id: RICE_BAG_LOT.into(),
            as_of: None,
        })
        .await
        .expect("the rice bag lot's history")
        .into_inner();
    assert!(
        history.entries.iter().any(|e| matches!(
            e.event.as_ref().and_then(|e| e.kind.as_ref()),
            Some(p::event::Kind::EpcisObserved(_))
        )),
        "{history:?}"
    );
}

/// GS1's reference event hash generator from PyPI, in a virtual
/// environment under the build directory (installed on first use).
fn reference_generator() -> std::path::PathBuf {
    const VERSION: &str = "1.9.3";
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/epcis-event-hash-generator")
        .join(VERSION);
    let python = dir.join("bin/python");
    let ready = std::process::Command::new(&python)
        .args(["-c", "import epcis_event_hash_generator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ready {
        return python;
    }
    let run = |program: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}\ninstall Python 3 with venv and pip (Debian: apt-get install python3-venv python3-pip), or run .ci/test",
            program.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        std::path::Path::new("python3"),
        &["-m", "venv", dir.to_str().expect("utf-8")],
    );
    run(
        &python,
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            &format!("epcis-event-hash-generator=={VERSION}"),
        ],
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gs1s_reference_generator_computes_the_same_event_ids_for_the_demo_export() {
    let demo = Demo::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("demo.jsonld");
    let token = demo.server.admin_token.clone().expect("an admin token");
    let (status, _, err) = jejak_testkit::run_cli(&[
        "epcis",
        "export",
        "-o",
        file.to_str().expect("utf-8"),
        "--server",
        &demo.server.url,
        "--token",
        &token,
    ])
    .expect("run jejak");
    assert!(status.success(), "export: {err}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("JSON");
    let ours = event_ids(&doc);

    let python = tokio::task::spawn_blocking(reference_generator)
        .await
        .expect("install the generator");
    let out = std::process::Command::new(&python)
        .args(["-m", "epcis_event_hash_generator", "-p", file.to_str().expect("utf-8")])
        .current_dir(dir.path())
        .output()
        .expect("run the reference generator");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (hashes, prehashes) = text
        .split_once("Pre-hash strings:")
        .expect("hashes and pre-hash strings");
    let theirs: Vec<&str> = hashes.lines().filter(|l| l.starts_with("ni:///sha-256;")).collect();
    assert_eq!(theirs.len(), ours.len(), "{text}");
    let prehashes: Vec<&str> = prehashes.trim().split("\n---\n").collect();
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            a,
            b,
            "event {i}: {}\nthe reference's pre-hash string: {}\nours: {}",
            doc["epcisBody"]["eventList"][i],
            prehashes.get(i).unwrap_or(&"?"),
            jejak_epcis::hash::prehash(
                &doc["epcisBody"]["eventList"][i],
                &jejak_epcis::hash::Context::from_document(&doc)
            )
            .unwrap_or_else(|e| e.to_string())
        );
    }
}

/// The demo's export captured with `--proceed` into an empty server on NATS
/// JetStream, where the capture service pipelines a document's commands
/// (each admitted after the one before, those touching the same lots
/// waiting for it): every event is recorded in an order that keeps the
/// rules, and the showcase labels tell the same stories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_captured_with_proceed_on_nats_tells_the_same_stories() {
    let demo = Demo::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("demo.jsonld");
    cli(&demo.server, &["epcis", "export", "-o", file.to_str().expect("utf-8")]);
    let nats = jejak_testkit::Nats::start().expect("start nats-server");
    let empty = jejak_testkit::Server::start(jejak_testkit::ServerOptions {
        nats: Some(nats.url()),
        ..Default::default()
    })
    .expect("an empty server on NATS");
    let job = cli(
        &empty,
        &["epcis", "capture", "--proceed", file.to_str().expect("utf-8")],
    );
    let job: Value = serde_json::from_str(&job).unwrap_or_else(|e| panic!("the job as JSON ({e}): {job}"));
    assert_eq!(job["success"], true, "{job}");
    assert_eq!(job["errors"].as_array().map_or(0, Vec::len), 0, "{job}");
    empty.wait_projected(crate::support::WAIT).await.expect("projected");
    let base = "https://id.example.org";
    let exported: Value = serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("JSON");
    for (lot, _) in jejak_server::demo::SHOWCASE {
        let Some(unit) = exported["epcisBody"]["eventList"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| {
                e["bizStep"] == "packing"
                    && e["parentID"]
                        .as_str()
                        .is_some_and(|p| p.ends_with(&format!("/10/{lot}")))
            })
            .and_then(|e| e["childEPCs"][0].as_str())
        else {
            panic!("{lot} was not packed in the export");
        };
        let (gtin, serial) = unit
            .strip_prefix("https://id.gs1.org/01/")
            .and_then(|u| u.split_once("/21/"))
            .expect("a GS1 unit id");
        let label = format!("{base}/01/{gtin}/10/{lot}/21/{serial}");
        assert_eq!(
            story(&demo.server, &label).await,
            story(&empty, &label).await,
            "{label}"
        );
    }
}
