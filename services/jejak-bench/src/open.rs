//! Opening a big embedded log: generated straight into the log (about
//! `--lots` events), closed, then opened again and again; then 10,000
//! more appended and the log dropped without `close`, as a crash leaves
//! it. Each open is timed with what it read (envelopes linked, ids put in
//! the in-memory index).

use std::time::Instant;

use jejak_log::{Draft, EventLog, SledLog};
use jejak_proto::v1 as p;

use crate::bench::BenchOptions;

fn opened(what: &str, dir: &std::path::Path) -> anyhow::Result<((String, String), SledLog)> {
    let started = Instant::now();
    let log = SledLog::open(dir)?;
    let took = started.elapsed();
    let check = log.start_check();
    let row = (
        format!("open: {what}"),
        format!(
            "{took:.1?} ({} envelopes hashed and linked from position {}, {} ids scanned into memory, {} chain heads rechecked; log of {} events)",
            check.envelopes,
            check.from,
            check.indexed,
            check.heads,
            log.durable_position()
        ),
    );
    eprintln!("{}: {}", row.0, row.1);
    Ok((row, log))
}

pub(crate) async fn open(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let dir = opts.dir.join("open");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    {
        let log = SledLog::open(&dir)?;
        let started = Instant::now();
        let (events, _, _) = crate::bench::generate(&log, opts.lots)?;
        log.close().await?;
        eprintln!("open: {events} events generated in {:.1?}", started.elapsed());
    }
    // The first open links everything the generator appended.
    let (row, log) = opened("first, linking every envelope", &dir)?;
    rows.push(row);
    drop(log);
    for i in 1..=3 {
        let (row, log) = opened(&format!("again after a clean stop, nothing new ({i})"), &dir)?;
        rows.push(row);
        drop(log);
    }
    let (_, log) = opened("before the crash", &dir)?;
    let mut last = 0;
    for i in 0..10_000u32 {
        let chain = format!("fac-{}", i % 20);
        last = log
            .append(Draft {
                chain: chain.clone(),
                event_id: format!("crash-{i}"),
                actor: "bench".into(),
                command_hash: [0; 32],
                recorded_at: jejak_proto::time_to_proto(jejak_domain::Time::now()),
                event: p::Event {
                    kind: Some(p::event::Kind::LotStatusChanged(p::LotStatusChanged {
                        facility_id: chain,
                        lot_id: format!("L{i}"),
                        status: p::LotStatus::OnHold as i32,
                        reason: "bench".into(),
                        occurred_at: None,
                    })),
                },
            })?
            .position;
    }
    log.wait_durable(last).await?;
    drop(log); // no `close`: what a crash leaves
    let (row, log) = opened("after a crash, 10,000 events new", &dir)?;
    rows.push(row);
    drop(log);
    let (row, _) = opened("again after that, nothing new", &dir)?;
    rows.push(row);
    Ok(rows)
}
