//! EPCIS 2.0: capturing a 10,000-event document of the rice sector (paddy
//! receipts at the Demak mill, each inspected against the intake standard)
//! into the demo server, and `GET /epcis/events` for one lot's events on a
//! store of about `--lots` lots.

use std::time::{Duration, Instant};

use anyhow::Context;
use jejak_log::SledLog;
use serde_json::{json, Value};

use crate::bench::{micros, percentile, start_server, stop, BenchOptions};

const DOMAIN: &str = "https://id.jejak.example";

/// `n` paddy receipts at the Demak mill and an inspection of each.
fn rice_document(n: usize) -> Value {
    let ukm = ["ukm-dmk-sidomakmur", "ukm-dmk-berkah", "ukm-dmk-srirejeki"];
    let farmers = ["sup-dmk-gpk-sumberrejeki", "sup-dmk-gpk-tanimaju"];
    let mut events = Vec::with_capacity(2 * n);
    let place = json!({ "id": format!("{DOMAIN}/loc/fac-demak") });
    for i in 0..n {
        let class = format!("{DOMAIN}/lot/prd-dmk-gkp/EPB-{i:06}");
        let at = |minutes: usize| {
            let t = time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_790_000_000 + 60 * minutes as i64);
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:00Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        };
        events.push(json!({
            "type": "ObjectEvent", "action": "ADD", "bizStep": "receiving", "disposition": "in_progress",
            "eventTime": at(2 * i), "eventTimeZoneOffset": "+07:00",
            "epcList": [],
            "quantityList": [{ "epcClass": class, "quantity": 2000 + (i % 50) * 10, "uom": "KGM" }],
            "readPoint": place, "bizLocation": place,
            "sourceList": [{ "type": "owning_party", "source": format!("{DOMAIN}/party/{}", farmers[i % 2]) }],
            "destinationList": [{ "type": "owning_party", "destination": format!("{DOMAIN}/party/{}", ukm[i % 3]) }],
            "ilmd": { "jejak:originPlace": "Desa Wonoketingal, Kec. Karanganyar, Kab. Demak" },
        }));
        events.push(json!({
            "type": "ObjectEvent", "action": "OBSERVE", "bizStep": "inspecting", "disposition": "conformant",
            "eventTime": at(2 * i + 1), "eventTimeZoneOffset": "+07:00",
            "epcList": [],
            "quantityList": [{ "epcClass": class }],
            "readPoint": place, "bizLocation": place,
            "jejak:eventId": format!("epb-inspection-{i}"),
            "jejak:standard": format!("{DOMAIN}/standard/std-gkp-penerimaan"),
            "sensorElementList": [{ "sensorMetadata": { "time": at(2 * i + 1) }, "sensorReport": [
                { "type": "jejak:measurement/kadar_air", "value": 20 + (i % 5), "uom": "P1", "jejak:parameter": "kadar_air", "jejak:unit": "%" },
                { "type": "jejak:measurement/hampa_kotoran", "value": 5, "uom": "P1", "jejak:parameter": "hampa_kotoran", "jejak:unit": "%" },
            ]}],
        }));
    }
    json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", { "jejak": "https://ns.jejak.id/epcis/" }],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-10-01T00:00:00Z",
        "epcisBody": { "eventList": events },
    })
}

async fn capture(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let dir = opts.dir.join("epcis-capture");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let server = start_server(&dir, true).await?;
    server.wait_projected(Duration::from_secs(60)).await?;
    let body = serde_json::to_vec(&rice_document(5_000))?;
    let auth = format!("Bearer {}", server.admin_token.as_deref().context("an admin token")?);
    let started = Instant::now();
    let reply = jejak_testkit::http_request(
        server.authority(),
        "POST",
        "/epcis/capture",
        &[("authorization", &auth), ("content-type", "application/ld+json")],
        &body,
    )
    .await?;
    anyhow::ensure!(reply.status == 202, "capture refused: {}", reply.text());
    let job: Value = reply.json()?;
    let id = job["captureID"].as_str().context("a capture id")?.to_string();
    let job = loop {
        let r = server
            .http_get(&format!("/epcis/capture/{id}"), &[("authorization", &auth)])
            .await?;
        let job: Value = r.json()?;
        if job["running"] == false {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let took = started.elapsed();
    anyhow::ensure!(job["success"] == true, "the capture failed: {job}");
    let n = job["recorded"].as_u64().unwrap_or(0);
    stop(server).await;
    Ok(vec![(
        format!(
            "epcis: capture of a {} KB document of {n} rice events (receipts, inspections)",
            body.len() / 1024
        ),
        format!("{:.0} events/s ({took:.2?})", n as f64 / took.as_secs_f64()),
    )])
}

async fn query(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let dir = opts.dir.join("epcis-query");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (events, raws, fins) = {
        let log = SledLog::open(&dir.join("log"))?;
        let lots = opts.lots;
        let generated = {
            let log = log.clone();
            tokio::task::spawn_blocking(move || crate::bench::generate(&log, lots)).await??
        };
        crate::bench::all_durable(&log, generated.0).await?;
        generated
    };
    let server = start_server(&dir, false).await?;
    server.wait_projected(Duration::from_secs(1800)).await?;
    let auth = format!("Bearer {}", server.admin_token.as_deref().context("an admin token")?);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut latencies = Vec::with_capacity(opts.queries);
    let mut found = 0usize;
    for _ in 0..opts.queries.max(100) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let lot = &fins[(x % fins.len().max(1) as u64) as usize];
        let path = format!("/epcis/events?MATCH_epcClass={DOMAIN}/lot/fin/{lot}");
        let t = Instant::now();
        let r = server.http_get(&path, &[("authorization", &auth)]).await?;
        latencies.push(t.elapsed());
        anyhow::ensure!(r.status == 200, "{path}: {}", r.text());
        let body: Value = r.json()?;
        found += body
            .pointer("/epcisBody/queryResults/resultsBody/eventList")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
    }
    latencies.sort();
    let n = latencies.len();
    let mut rows = vec![(
        format!("epcis: GET /epcis/events for one lot's events, {events} events in the store ({n} lots, {found} events answered)"),
        format!(
            "p50 {} · p99 {}",
            micros(percentile(&latencies, 0.50)),
            micros(percentile(&latencies, 0.99))
        ),
    )];
    rows.push(recall(&server, &raws, &fins, opts.queries.clamp(10, 200)).await?);
    rows.push(eudr(&server, &fins, opts.queries.clamp(10, 200)).await?);
    stop(server).await;
    Ok(rows)
}

/// Every finished lot shipped (1 kg each, to the one customer), then the
/// recall report of random harvested lots: each reaches the finished lots
/// made from it and their shipments.
async fn recall(
    server: &jejak_testkit::Server,
    raws: &[String],
    fins: &[String],
    reports: usize,
) -> anyhow::Result<(String, String)> {
    use jejak_proto::v1 as p;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for part in fins.chunks(fins.len().div_ceil(8).max(1)) {
        let part = part.to_vec();
        let mut c = server.capture().await?;
        tasks.push(tokio::spawn(async move {
            for lot in part {
                c.ship_lot(p::ShipLotRequest {
                    command_id: format!("ship-{lot}"),
                    facility_id: "fac".into(),
                    lot_id: lot.clone(),
                    quantity: crate::bench::pq("1"),
                    consignee_id: "cus".into(),
                    document: format!("SJ-{lot}"),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("ship {lot}"))?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let shipped = started.elapsed();
    server.wait_projected(Duration::from_secs(300)).await?;
    let mut trace = server.trace().await?;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut latencies = Vec::with_capacity(reports);
    let mut found = 0usize;
    for _ in 0..reports {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let lot = &raws[(x % raws.len().max(1) as u64) as usize];
        let t = Instant::now();
        let r = trace
            .recall_report(p::TraceRequest {
                target: Some(p::Target {
                    kind: Some(p::target::Kind::LotId(lot.clone())),
                }),
                max_depth: 0,
                max_nodes: 0,
            })
            .await
            .with_context(|| format!("recall report of {lot}"))?
            .into_inner();
        latencies.push(t.elapsed());
        found += r.rows.len();
    }
    latencies.sort();
    Ok((
        format!(
            "recall report of a harvested lot over gRPC ({} finished lots shipped in {shipped:.1?}; {reports} reports, {} shipments each on average)",
            fins.len(),
            found / reports.max(1)
        ),
        format!(
            "p50 {} · p99 {}",
            micros(percentile(&latencies, 0.50)),
            micros(percentile(&latencies, 0.99))
        ),
    ))
}

/// The EUDR geolocation of random finished lots: every plot behind each.
async fn eudr(server: &jejak_testkit::Server, fins: &[String], n: usize) -> anyhow::Result<(String, String)> {
    let auth = format!("Bearer {}", server.admin_token.as_deref().context("an admin token")?);
    let mut x = 0x1234_5678_9ABC_DEF1u64;
    let mut latencies = Vec::with_capacity(n);
    let mut plots = 0usize;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let lot = &fins[(x % fins.len().max(1) as u64) as usize];
        let path = format!("/regulator/eudr/{lot}");
        let t = Instant::now();
        let r = server.http_get(&path, &[("authorization", &auth)]).await?;
        latencies.push(t.elapsed());
        anyhow::ensure!(r.status == 200, "{path}: {}", r.text());
        plots += r.json()?["features"].as_array().map_or(0, Vec::len);
    }
    latencies.sort();
    Ok((
        format!(
            "EUDR geolocation of a finished lot (GET /regulator/eudr; {n} lots, {} plots each on average)",
            plots / n.max(1)
        ),
        format!(
            "p50 {} · p99 {}",
            micros(percentile(&latencies, 0.50)),
            micros(percentile(&latencies, 0.99))
        ),
    ))
}

pub(crate) async fn epcis(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let mut rows = capture(opts).await?;
    rows.extend(query(opts).await?);
    Ok(rows)
}
