//! Crash tests: `kill -9` the server during concurrent captures, restart it
//! on the same data, and check that every acknowledged event is there
//! exactly once and that the projection equals a clean rebuild.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jejak_proto::v1 as p;
use jejak_testkit::{run_cli, Server, ServerOptions};

fn qty(v: &str, unit: p::Unit) -> Option<p::Quantity> {
    Some(p::Quantity {
        value: v.into(),
        unit: unit as i32,
    })
}

pub(crate) async fn master_data(server: &Server) -> anyhow::Result<()> {
    let mut c = server.capture().await?;
    let party = |id: &str, role: p::PartyRole| p::RegisterPartyRequest {
        command_id: format!("reg-{id}"),
        party: Some(p::Party {
            id: id.into(),
            name: format!("Party {id}"),
            roles: vec![role as i32],
            district: "Demak".into(),
            contact: String::new(),
            gln: String::new(),
        }),
    };
    c.register_party(party("op", p::PartyRole::Operator)).await?;
    c.register_party(party("ukm", p::PartyRole::Ukm)).await?;
    c.register_party(party("sup", p::PartyRole::Supplier)).await?;
    c.register_facility(p::RegisterFacilityRequest {
        command_id: "reg-fac".into(),
        facility: Some(p::Facility {
            id: "fac".into(),
            name: "Sentra Uji".into(),
            sector: p::Sector::Rice as i32,
            district: "Demak".into(),
            operator_id: "op".into(),
            location: None,
            gln: String::new(),
            requires_timber_legality: false,
        }),
    })
    .await?;
    for (id, kind) in [("gkp", p::ProductKind::Raw), ("gkg", p::ProductKind::Intermediate)] {
        c.register_product(p::RegisterProductRequest {
            command_id: format!("reg-{id}"),
            product: Some(p::Product {
                id: id.into(),
                name: id.into(),
                sector: p::Sector::Rice as i32,
                kind: kind as i32,
                unit: p::Unit::Kg as i32,
                gtin: String::new(),
            }),
        })
        .await?;
    }
    Ok(())
}

pub(crate) fn receipt(worker: usize, i: usize) -> p::ReceiveMaterialRequest {
    p::ReceiveMaterialRequest {
        command_id: format!("rcv-{worker}-{i}"),
        facility_id: "fac".into(),
        lot_id: format!("L{worker}-{i}"),
        product_id: "gkp".into(),
        quantity: qty("1000", p::Unit::Kg),
        owner_id: "ukm".into(),
        supplier_id: "sup".into(),
        ..Default::default()
    }
}

pub(crate) fn drying(worker: usize, i: usize) -> p::ProcessLotsRequest {
    p::ProcessLotsRequest {
        command_id: format!("dry-{worker}-{i}"),
        facility_id: "fac".into(),
        process_step: "drying".into(),
        line: "dryer-1".into(),
        inputs: vec![p::LotInput {
            lot_id: format!("L{worker}-{i}"),
            quantity: qty("1000", p::Unit::Kg),
        }],
        outputs: vec![p::LotOutput {
            lot_id: format!("D{worker}-{i}"),
            product_id: "gkg".into(),
            quantity: qty("850", p::Unit::Kg),
            owner_id: String::new(),
        }],
        occurred_at: None,
    }
}

/// How many times event `id` appears in the history of `lot`.
pub(crate) async fn times_recorded(
    t: &mut p::trace_service_client::TraceServiceClient<jejak_testkit::Conn>,
    lot: &str,
    id: &str,
) -> anyhow::Result<usize> {
    let history = t
        .lot_history(p::LotHistoryRequest {
            lot_id: lot.to_string(),
            as_of: None,
        })
        .await?
        .into_inner();
    Ok(history.entries.iter().filter(|e| e.event_id == id).count())
}

pub(crate) fn digest(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let dir = data_dir.to_str().expect("temporary paths are UTF-8");
    let (status, out, err) = run_cli(&["verify", "--data-dir", dir])?;
    anyhow::ensure!(status.success(), "jejak verify failed: {err}");
    out.lines()
        .find_map(|l| l.strip_prefix("projection digest: "))
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no digest in {out:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_captures_loses_no_acknowledged_event() -> anyhow::Result<()> {
    let server = Server::start(ServerOptions::default())?;
    master_data(&server).await?;
    let master_events = server.status().await?.log_position;

    // 16 clients capture receipts and dryings as fast as they can; each
    // remembers what the server acknowledged.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..16 {
        let mut client = server.capture().await?;
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                if client.receive_material(receipt(w, i)).await.is_err() {
                    return;
                }
                acked
                    .lock()
                    .expect("no panics while locked")
                    .push(format!("rcv-{w}-{i}"));
                if client.process_lots(drying(w, i)).await.is_err() {
                    return;
                }
                acked
                    .lock()
                    .expect("no panics while locked")
                    .push(format!("dry-{w}-{i}"));
            }
        }));
    }
    jejak_testkit::wait_until(Instant::now() + Duration::from_secs(60), || async {
        Ok((acked.lock().expect("no panics while locked").len() >= 1500).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("captures too slow: {e}"))?;
    let (data_dir, _keep) = server.into_data_dir(); // kill -9 with requests in flight
    for t in tasks {
        let _ = t.await;
    }
    let acked: Vec<String> = std::mem::take(&mut *acked.lock().expect("no panics while locked"));

    let server = Server::start(ServerOptions {
        data_dir: Some(data_dir.clone()),
        ..Default::default()
    })?;
    let status = server.wait_projected(Duration::from_secs(60)).await?;
    // Every event in the log is distinct, and projected.
    assert_eq!(status.events, status.log_position, "{status:?}");
    // Every acknowledged command is recorded: a retry finds it (replayed) and
    // writes nothing new.
    let mut c = server.capture().await?;
    let mut t = server.trace().await?;
    for id in &acked {
        let (w, i) = id[4..].split_once('-').expect("ids are kind-w-i");
        let (w, i): (usize, usize) = (w.parse()?, i.parse()?);
        let reply = if id.starts_with("rcv") {
            c.receive_material(receipt(w, i)).await?.into_inner()
        } else {
            c.process_lots(drying(w, i)).await?.into_inner()
        };
        assert!(reply.replayed, "{id} was acknowledged but not found after the crash");
        let lot = if id.starts_with("rcv") {
            format!("L{w}-{i}")
        } else {
            format!("D{w}-{i}")
        };
        let creations = times_recorded(&mut t, &lot, id).await?;
        assert_eq!(creations, 1, "{id} appears {creations} times in the history of {lot}");
    }
    let after = server.status().await?;
    assert_eq!(after.log_position, status.log_position, "replays wrote new events");
    assert!(after.log_position >= master_events + acked.len() as u64);
    // No lot's balance went negative: every drying consumed a whole receipt.
    for id in acked.iter().filter(|id| id.starts_with("dry")) {
        let lot = format!("L{}", &id[4..]);
        let l = t.get_lot(p::GetLotRequest { lot_id: lot }).await?.into_inner();
        assert_eq!(l.balance.expect("balance is always set").value, "0");
    }

    // The projection that survived the crash equals a clean rebuild.
    let mut server = server;
    assert!(server.stop()?.success());
    let live = digest(&data_dir)?;
    let dir = data_dir.to_str().expect("temporary paths are UTF-8");
    let (status, _, err) = run_cli(&["rebuild", "--data-dir", dir])?;
    assert!(status.success(), "rebuild failed: {err}");
    assert_eq!(digest(&data_dir)?, live, "rebuilt projection differs from the live one");
    Ok(())
}
