//! The transparency log: building its tree from a large log, inclusion
//! proofs on it, extending it at open by the new events only, and the demo
//! rice bag's public provenance bundle (size, build time over HTTP, offline
//! verification time).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use jejak_domain::{Event, MaterialReceived, Quantity, Unit};
use jejak_log::tlog::TreeStore;
use jejak_log::{Draft, EventLog, SledLog};
use jejak_verify::bundle::{self, Policy};
use jejak_verify::merkle;
use jejak_verify::note::Verifier;

use crate::bench::{micros, percentile, start_server, stop, BenchOptions};

/// A receipt appended straight to the log (the tree does not decide); its position.
fn receipt(log: &SledLog, i: u64) -> anyhow::Result<u64> {
    let event = Event::MaterialReceived(MaterialReceived {
        lot_id: format!("NEW{i}"),
        facility_id: "fac".into(),
        product_id: "raw".into(),
        quantity: Quantity::from_parts(100.into(), Unit::Kg),
        owner_id: "ukm0".into(),
        supplier_id: "sup".into(),
        origin: Default::default(),
        documents: Vec::new(),
        source_lot_id: None,
        occurred_at: None,
    });
    let appended = log.append(Draft {
        chain: "fac".into(),
        event_id: format!("new-{i}"),
        actor: "bench".into(),
        command_hash: [0; 32],
        recorded_at: jejak_proto::time_to_proto(jejak_domain::Time::now()),
        event: jejak_proto::event_to_proto(&event),
    })?;
    Ok(appended.position)
}

pub(crate) async fn tlog(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let mut rows = Vec::new();
    let dir = opts.dir.join("tlog");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    // A log of about `lots` events, and its tree built from scratch.
    let log = SledLog::open(&dir.join("log"))?;
    let started = Instant::now();
    let (events, _, _) = crate::bench::generate(&log, opts.lots)?;
    let last = crate::bench::all_durable(&log, events).await?;
    eprintln!("tlog: {events} events generated in {:.1?}", started.elapsed());
    // Closed and opened again, as after a server's clean stop: the event-id
    // index is stored by then, not written in the background during what
    // is timed below.
    log.close().await?;
    drop(log);
    let log = SledLog::open(&dir.join("log"))?;
    let tree_dir = dir.join("tree");
    let built = {
        let (log, tree_dir) = (log.clone(), tree_dir.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, Duration)> {
            let tree = TreeStore::open(&tree_dir)?;
            let started = Instant::now();
            let size = jejak_engine::tlog::catch_up(&log, &tree, last)?;
            tree.flush()?;
            Ok((size, started.elapsed()))
        })
        .await??
    };
    rows.push((
        format!("tlog: tree of {} events built from the log", built.0),
        format!(
            "{:.1} s ({:.0} events/s)",
            built.1.as_secs_f64(),
            built.0 as f64 / built.1.as_secs_f64()
        ),
    ));

    // Inclusion proofs against the whole tree.
    let tree = Arc::new(TreeStore::open(&tree_dir)?);
    let size = tree.size();
    let root = tree.root(size)?;
    let proofs = opts.queries.max(1000);
    let (latencies, verified) = {
        let tree = tree.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<Duration>, usize)> {
            let mut x = 0x2545_F491_4F6C_DD1Du64;
            let mut out = Vec::with_capacity(proofs);
            let mut verified = 0;
            for k in 0..proofs {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let index = x % size;
                let started = Instant::now();
                let proof = tree.inclusion_proof(index, size)?;
                out.push(started.elapsed());
                if k % 100 == 0 {
                    let (_, leaf) = tree.entry(index)?;
                    merkle::verify_inclusion(index, size, &merkle::leaf_hash(&leaf), &proof, &root)
                        .map_err(|e| anyhow::anyhow!("proof of {index}: {e}"))?;
                    verified += 1;
                }
            }
            out.sort();
            Ok((out, verified))
        })
        .await??
    };
    rows.push((
        format!("tlog: inclusion proof in {size} leaves ({proofs} random, {verified} checked)"),
        format!(
            "p50 {} · p99 {}",
            micros(percentile(&latencies, 0.50)),
            micros(percentile(&latencies, 0.99))
        ),
    ));
    drop(tree);

    // Opening the store again after 1,000 more events: only those are added.
    let mut upto = 0;
    for i in 0..1000 {
        upto = receipt(&log, i)?;
    }
    log.wait_durable(upto).await?;
    let (added, took) = {
        let log = log.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, Duration)> {
            let started = Instant::now();
            let tree = TreeStore::open(&tree_dir)?;
            let before = tree.size();
            anyhow::ensure!(
                jejak_engine::tlog::check_tree(&log, &tree)?.is_none(),
                "the tree was rebuilt"
            );
            let after = jejak_engine::tlog::catch_up(&log, &tree, upto)?;
            Ok((after - before, started.elapsed()))
        })
        .await??
    };
    rows.push((
        format!("tlog: open the tree after 1,000 new events (of {})", size + added),
        format!("{added} leaves added in {:.1} ms", took.as_secs_f64() * 1e3),
    ));
    drop(log);

    // The demo rice bag's public bundle, through the resolver, and its offline check.
    let server = start_server(&dir.join("demo"), true).await?;
    let authority = server.authority().to_string();
    let key = jejak_testkit::http_request(&authority, "GET", "/log/key", &[], b"")
        .await?
        .text();
    let policy = Policy {
        log: Verifier::parse(key.trim()).context("the log key")?,
        witnesses: Vec::new(),
        quorum: 0,
    };
    let path = format!(
        "/01/{}/10/{}/21/{}?linkType=jejak:provenanceBundle",
        jejak_server::demo::ids::PREMIUM_RICE_GTIN,
        jejak_server::demo::ids::RICE_BAG_LOT,
        jejak_server::demo::ids::RICE_BAG_SERIAL
    );
    // Timed once the tree has caught up with the demo and a checkpoint covers it.
    jejak_testkit::wait_until(Instant::now() + Duration::from_secs(60), || async {
        let reply = jejak_testkit::http_request(&authority, "GET", &path, &[], b"").await?;
        Ok((reply.status == 200).then_some(()))
    })
    .await
    .context("no checkpoint covered the demo within a minute")?;
    let mut built = Vec::new();
    let mut body = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let reply = jejak_testkit::http_request(&authority, "GET", &path, &[], b"").await?;
        built.push(started.elapsed());
        anyhow::ensure!(reply.status == 200, "the bundle: {}", reply.text());
        body = reply.body;
    }
    built.sort();
    let text = String::from_utf8(body)?;
    let mut checked = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        bundle::verify(&text, &policy).map_err(|e| anyhow::anyhow!("the bundle does not verify: {e}"))?;
        checked.push(started.elapsed());
    }
    checked.sort();
    let entries = bundle::parse(&text).map(|b| b.entries.len()).unwrap_or(0);
    rows.push((
        "tlog: demo rice bag public bundle".into(),
        format!("{} KB, {entries} events", text.len().div_ceil(1024)),
    ));
    rows.push((
        "tlog: bundle built and served (HTTP, 200 requests)".into(),
        format!(
            "p50 {} · p99 {}",
            micros(percentile(&built, 0.50)),
            micros(percentile(&built, 0.99))
        ),
    ));
    rows.push((
        "tlog: bundle verified offline (200 times)".into(),
        format!(
            "p50 {} · p99 {}",
            micros(percentile(&checked, 0.50)),
            micros(percentile(&checked, 0.99))
        ),
    ));
    stop(server).await;
    Ok(rows)
}
