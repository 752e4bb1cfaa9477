//! The benchmarks behind BENCHMARKS.md, on the embedded
//! default over loopback gRPC: capture throughput with concurrent clients,
//! projector throughput, and trace latency and memory on a large generated
//! genealogy. Results are printed as a table.

use jejak_server::demo::ids::PREMIUM_RICE_GTIN;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use jejak_client::Target;
use jejak_domain::{Command, LotInput, LotOutput, MaterialReceived, Quantity, State, Unit};
use jejak_genealogy::{Projection, TraceLimits};
use jejak_log::{Draft, EventLog, SledLog};
use jejak_proto::v1 as p;
use jejak_testkit::{Server, ServerOptions};
use prost::Message;

/// What to run and how big.
#[derive(Debug, Clone)]
pub(crate) struct BenchOptions {
    pub(crate) dir: PathBuf,
    pub(crate) clients: usize,
    /// Connections the clients share (each client has its own when equal).
    pub(crate) connections: usize,
    pub(crate) capture_events: u64,
    pub(crate) lots: u64,
    /// Lots in the resolver benchmark's labelled store.
    pub(crate) label_lots: u64,
    /// How long each measured wrk run lasts.
    pub(crate) wrk_seconds: u64,
    pub(crate) queries: usize,
    /// Steps of the blending chain.
    pub(crate) blend_steps: usize,
    /// Requests each blending measurement times.
    pub(crate) page_requests: usize,
    /// Idle connections of the connections benchmark.
    pub(crate) idle_connections: usize,
    /// Receipts in the bulk benchmark's stream.
    pub(crate) bulk_events: u64,
    /// The most events of one chain per message the catch-up publishes.
    pub(crate) message_events: usize,
    /// Alternating pairs (embedded, then NATS) the bulk benchmark runs.
    pub(crate) pairs: usize,
    /// Measure capture against this running server instead of starting one.
    pub(crate) server: Option<String>,
    /// Access token for `server` (a server the bench starts makes its own).
    pub(crate) token: Option<String>,
}

/// A minimal gRPC client straight on HTTP/2 (the `h2` crate): the load
/// generator shares the two cores with the server, so it spends as little of
/// them as it can. Each call is a real gRPC unary call on its own stream;
/// the reply's `grpc-status` is checked.
#[derive(Clone)]
pub(crate) struct LoadClient {
    send: h2::client::SendRequest<bytes::Bytes>,
    authority: String,
    authorization: Option<http::HeaderValue>,
}

impl LoadClient {
    pub(crate) async fn connect(target: &Target) -> anyhow::Result<LoadClient> {
        let url = &target.url;
        let authorization = match &target.token {
            Some(t) => Some(http::HeaderValue::from_str(&format!("Bearer {t}"))?),
            None => None,
        };
        let authority = url
            .strip_prefix("http://")
            .with_context(|| format!("{url:?}: the load generator speaks plain http:// only"))?
            .trim_end_matches('/')
            .to_string();
        let tcp = tokio::net::TcpStream::connect(&authority)
            .await
            .with_context(|| format!("connect to {authority}"))?;
        tcp.set_nodelay(true)?;
        let (send, connection) = h2::client::handshake(tcp).await.context("HTTP/2 handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(LoadClient {
            send,
            authority,
            authorization,
        })
    }

    /// Calls `path` with `message`; returns the reply's payload.
    pub(crate) async fn unary(&mut self, path: &str, message: &impl prost::Message) -> anyhow::Result<bytes::Bytes> {
        use bytes::BufMut;
        let mut request = http::Request::post(format!("http://{}{path}", self.authority))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        if let Some(a) = &self.authorization {
            request.headers_mut().insert(http::header::AUTHORIZATION, a.clone());
        }
        let len = message.encoded_len();
        let mut body = bytes::BytesMut::with_capacity(5 + len);
        body.put_u8(0);
        body.put_u32(u32::try_from(len)?);
        message.encode(&mut body)?;
        let send = std::future::poll_fn(|cx| self.send.poll_ready(cx));
        send.await?;
        let (response, mut stream) = self.send.send_request(request, false)?;
        stream.send_data(body.freeze(), true)?;
        let response = response.await?;
        let status = |h: &http::HeaderMap| {
            h.get("grpc-status")
                .map(|v| (v.clone(), h.get("grpc-message").cloned()))
        };
        if let Some((code, message)) = status(response.headers()) {
            anyhow::bail!("{path}: grpc-status {code:?} {message:?}");
        }
        let mut recv = response.into_body();
        let mut payload = bytes::BytesMut::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            payload.extend_from_slice(&chunk);
        }
        let trailers = recv.trailers().await?.unwrap_or_default();
        match status(&trailers) {
            Some((code, _)) if code == "0" => {}
            other => anyhow::bail!("{path}: grpc-status {other:?}"),
        }
        anyhow::ensure!(payload.len() >= 5, "{path}: reply has no gRPC message");
        Ok(payload.freeze().slice(5..))
    }
}

/// `grpc.health.v1.HealthCheckRequest`, without a dependency for one field.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub(crate) service: String,
}

/// A small deterministic PRNG (xorshift64*), so runs are repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// CPU time a process has used (user and system), from /proc.
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Waits until the process `pid` is idle (its CPU time grows by less than
/// 20 ms in half a second), up to `limit`; returns its CPU time then.
pub(crate) async fn wait_idle(pid: u32, limit: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut before = cpu_time(pid).context("the process's CPU time")?;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = cpu_time(pid).context("the process's CPU time")?;
        if now.saturating_sub(before) < Duration::from_millis(20) {
            return Ok(now);
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "the process never went idle within {limit:?}"
        );
        before = now;
    }
}

pub(crate) fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// `jejak serve` from the test kit on a random port, with the limits on
/// but never reached: their cost is part of the figures.
pub(crate) async fn start_server(data_dir: &Path, demo: bool) -> anyhow::Result<Server> {
    let opts = ServerOptions {
        data_dir: Some(data_dir.to_path_buf()),
        demo,
        rate_limits: Some((1_000_000.0, 1_000_000.0)),
        start_timeout: Some(Duration::from_secs(600)),
        ..ServerOptions::default()
    };
    tokio::task::spawn_blocking(move || Server::start(opts))
        .await
        .context("server start task")?
}

pub(crate) fn target_of(server: &Server) -> Target {
    Target {
        url: server.url.clone(),
        token: server.admin_token.clone(),
        ca_file: None,
    }
}

pub(crate) fn rss_bytes(server: &Server) -> Option<u64> {
    let pid = server.pid()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub(crate) async fn stop(mut server: Server) {
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || server.stop()).await {
        eprintln!("stopping the server: {e:#}");
    }
}

fn q(v: &str, unit: Unit) -> Quantity {
    Quantity::parse("q", v, unit).expect("benchmark quantities are valid")
}

pub(crate) fn pq(v: &str) -> Option<p::Quantity> {
    Some(p::Quantity {
        value: v.into(),
        unit: p::Unit::Kg as i32,
    })
}

pub(crate) async fn register_master(target: &Target) -> anyhow::Result<()> {
    let mut c = p::capture_service_client::CaptureServiceClient::new(jejak_client::connect(target).await?);
    for line in master_data_lines() {
        let kind = jejak_proto::json::parse_command(&line).map_err(anyhow::Error::msg)?;
        jejak_client::import::send(&mut c, kind).await?;
    }
    Ok(())
}

/// The master data of the labelled store: the capture benchmark's, the
/// bagged rice product and its standard.
pub(crate) fn labelled_master_lines() -> Vec<String> {
    let mut master = master_data_lines();
    master.push(r#"{"registerProduct":{"commandId":"b-bag","product":{"id":"bag","name":"Beras Premium 5 kg","sector":"SECTOR_RICE","kind":"PRODUCT_KIND_FINISHED","unit":"UNIT_KG","gtin":"08997001001018"}}}"#.into());
    master.push(r#"{"registerQualityStandard":{"commandId":"b-sni","standard":{"id":"sni","name":"SNI 6128:2020 Premium","reference":"SNI 6128:2020 Beras","parameters":[{"code":"kadar_air","name":"Kadar air","unit":"%","max":"14"}]}}}"#.into());
    master
}

pub(crate) fn master_data_lines() -> Vec<String> {
    vec![
        r#"{"registerParty":{"commandId":"b-op","party":{"id":"op","name":"Koperasi Sentra","roles":["PARTY_ROLE_OPERATOR"]}}}"#.into(),
        r#"{"registerParty":{"commandId":"b-sup","party":{"id":"sup","name":"Gapoktan","roles":["PARTY_ROLE_SUPPLIER"]}}}"#.into(),
        r#"{"registerParty":{"commandId":"b-cus","party":{"id":"cus","name":"Toko","roles":["PARTY_ROLE_CUSTOMER"]}}}"#.into(),
        r#"{"registerParty":{"commandId":"b-ukm0","party":{"id":"ukm0","name":"UKM 0","roles":["PARTY_ROLE_UKM"]}}}"#.into(),
        r#"{"registerParty":{"commandId":"b-ukm1","party":{"id":"ukm1","name":"UKM 1","roles":["PARTY_ROLE_UKM"]}}}"#.into(),
        r#"{"registerParty":{"commandId":"b-ukm2","party":{"id":"ukm2","name":"UKM 2","roles":["PARTY_ROLE_UKM"]}}}"#.into(),
        r#"{"registerFacility":{"commandId":"b-fac","facility":{"id":"fac","name":"Sentra","sector":"SECTOR_RICE","operatorId":"op"}}}"#.into(),
        r#"{"registerProduct":{"commandId":"b-raw","product":{"id":"raw","name":"Gabah","sector":"SECTOR_RICE","kind":"PRODUCT_KIND_RAW","unit":"UNIT_KG"}}}"#.into(),
        r#"{"registerProduct":{"commandId":"b-mid","product":{"id":"mid","name":"Beras","sector":"SECTOR_RICE","kind":"PRODUCT_KIND_INTERMEDIATE","unit":"UNIT_KG"}}}"#.into(),
        r#"{"registerProduct":{"commandId":"b-fin","product":{"id":"fin","name":"Beras 5 kg","sector":"SECTOR_RICE","kind":"PRODUCT_KIND_FINISHED","unit":"UNIT_KG"}}}"#.into(),
    ]
}

/// Capture throughput: `clients` concurrent gRPC clients, each waiting for
/// its durable acknowledgement before sending the next receipt.
async fn capture(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let dir = opts.dir.join("capture");
    let _ = std::fs::remove_dir_all(&dir);
    let server = match &opts.server {
        Some(_) => None,
        None => Some(start_server(&dir, false).await?),
    };
    let target = match (&opts.server, &server) {
        (Some(u), _) => Target {
            url: u.clone(),
            token: opts.token.clone(),
            ca_file: None,
        },
        (None, Some(s)) => target_of(s),
        (None, None) => unreachable!("a server was started above"),
    };
    let run = jejak_domain::Time::now().0;
    register_master(&target).await?;
    let total = opts.capture_events;
    let (clients, connections, target) = (
        opts.clients,
        opts.connections.clamp(1, opts.clients.max(1)),
        target.clone(),
    );
    // The load runs on a single thread of its own, so that it takes as little
    // of the two cores from the server as it can.
    let (elapsed, mut lat) = load_on(&target, clients, connections, total, run)?;
    lat.sort();
    let rate = total as f64 / elapsed.as_secs_f64();
    let mut rows = vec![
        (
            format!(
                "capture, {} clients on {} connections, durable acks",
                clients, connections
            ),
            format!("{rate:.0} events/s ({total} events in {elapsed:.2?})"),
        ),
        (
            "capture latency p50 / p99".into(),
            format!("{} / {}", micros(percentile(&lat, 0.5)), micros(percentile(&lat, 0.99))),
        ),
    ];
    let Some(server) = server else { return Ok(rows) };
    stop(server).await;
    // The first open hashes and links what the run appended, the second
    // reads nothing (the index was stored at the server's clean stop).
    for what in ["event log open after the run", "event log open again"] {
        let started = Instant::now();
        let log = SledLog::open(&dir.join("log"))?;
        let check = log.start_check();
        rows.push((
            what.into(),
            format!(
                "{:.1?} ({} envelopes indexed, {} hashed and linked from position {}, {} chain heads rechecked)",
                started.elapsed(),
                check.indexed,
                check.envelopes,
                check.from,
                check.heads
            ),
        ));
    }
    let log = SledLog::open(&dir.join("log"))?;
    let size = log.size_on_disk()?;
    rows.push((
        "event log bytes on disk per event (capture run)".into(),
        format!("{:.0}", size as f64 / total as f64),
    ));
    Ok(rows)
}

/// The load generators' receipt: 1250.5 kg of paddy at `fac`, owned by
/// one of three UKM in turn.
pub(crate) fn receipt(command_id: String, lot_id: String, i: u64) -> p::ReceiveMaterialRequest {
    p::ReceiveMaterialRequest {
        command_id,
        facility_id: "fac".into(),
        lot_id,
        product_id: "raw".into(),
        quantity: pq("1250.5"),
        owner_id: format!("ukm{}", i % 3),
        supplier_id: "sup".into(),
        origin: Some(p::Origin {
            place: "Desa Wonokerto, Demak".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `load` on a single thread of its own, so that it takes as little of the
/// two cores from the server as it can.
pub(crate) fn load_on(
    target: &Target,
    clients: usize,
    connections: usize,
    total: u64,
    run: i64,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let target = target.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(load(&target, clients, connections, total, run))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the load generator panicked"))?
}

/// `clients` concurrent callers, each sending the next receipt as soon as the
/// last one is acknowledged, until `total` are; returns the wall time and
/// every call's latency.
async fn load(
    target: &Target,
    clients: usize,
    connections: usize,
    total: u64,
    run: i64,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(LoadClient::connect(target).await?);
    }
    for client in 0..clients {
        let mut c = channels[client % channels.len()].clone();
        let next = next.clone();
        tasks.push(tokio::task::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let t = Instant::now();
                let request = receipt(format!("c{run}-{i}"), format!("R{}-{i}", run % 1_000_000), i);
                let reply = c.unary("/jejak.v1.CaptureService/ReceiveMaterial", &request).await?;
                p::CaptureReply::decode(reply)?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    Ok((started.elapsed(), lat))
}

/// Decides `cmd` against `state` and appends its event straight to the log,
/// as the generators do (no server, no network).
fn append_decided(
    log: &SledLog,
    state: &mut State,
    now: jejak_domain::Time,
    id: String,
    cmd: Command,
) -> anyhow::Result<()> {
    let event = state.decide(&id, cmd, now).map_err(|e| anyhow::anyhow!("{id}: {e}"))?;
    log.append(Draft {
        chain: event.chain().to_string(),
        event_id: id.clone(),
        actor: "bench".into(),
        command_hash: [0; 32],
        recorded_at: jejak_proto::time_to_proto(now),
        event: jejak_proto::event_to_proto(&event),
    })?;
    state.apply(&id, &event);
    Ok(())
}

/// Appends the master data given as canonical-JSON command lines.
fn append_master(
    append: &mut dyn FnMut(String, Command) -> anyhow::Result<()>,
    lines: Vec<String>,
) -> anyhow::Result<()> {
    for line in lines {
        let kind = jejak_proto::json::parse_command(&line).map_err(anyhow::Error::msg)?;
        let (id, cmd) = jejak_proto::command_from_proto(kind)?;
        append(id, cmd)?;
    }
    Ok(())
}

/// Generates a genealogy of `lots` lots straight into the log through the
/// domain's decide/apply: 40 % raw receipts, intermediates with 2–5 inputs
/// on levels 1–7, finished units with 1–3 inputs on level 8. Inputs are
/// drawn from a window of the level below, so ancestries overlap as they do
/// when lots of one shift are blended.
pub(crate) fn generate(log: &SledLog, lots: u64) -> anyhow::Result<(u64, Vec<String>, Vec<String>)> {
    let mut state = State::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let now = jejak_domain::Time::now();
    let append = |state: &mut State, id: String, cmd: Command| append_decided(log, state, now, id, cmd);
    append_master(&mut |id, cmd| append(&mut state, id, cmd), master_data_lines())?;
    let raw = lots * 40 / 100;
    let finished = lots / 10;
    let per_mid_level = (lots - raw - finished) / 7;
    let mut levels: Vec<Vec<String>> = Vec::new();
    let mut level0 = Vec::with_capacity(raw as usize);
    for i in 0..raw {
        let id = format!("R{i}");
        append(
            &mut state,
            format!("r{i}"),
            Command::ReceiveMaterial(MaterialReceived {
                lot_id: id.clone(),
                facility_id: "fac".into(),
                product_id: "raw".into(),
                quantity: q("100000", Unit::Kg),
                owner_id: format!("ukm{}", i % 3),
                supplier_id: "sup".into(),
                // A plot for each receipt: what an EUDR geolocation lists.
                origin: jejak_domain::Origin {
                    place: format!("Desa {}", i % 500),
                    geometry: Some(jejak_domain::geo::Geometry::Point(jejak_domain::geo::Position {
                        lon: jejak_domain::Decimal::new(110_400_000 + (i % 400_000) as i64, 6),
                        lat: jejak_domain::Decimal::new(-7_000_000 - (i % 900_000) as i64, 6),
                    })),
                    producer_country: "ID".into(),
                    area_ha: Some(jejak_domain::Decimal::new(15, 1)),
                    ..Default::default()
                },
                documents: Vec::new(),
                source_lot_id: None,
                occurred_at: None,
            }),
        )?;
        level0.push(id);
    }
    levels.push(level0);
    let mut n = 0u64;
    for level in 1..=8 {
        let size = if level == 8 { finished } else { per_mid_level };
        let below = levels.last().map(Vec::len).unwrap_or(0) as u64;
        let mut this = Vec::with_capacity(size as usize);
        for j in 0..size {
            let (lo, hi) = if level == 8 { (1, 3) } else { (2, 5) };
            let fan = lo + rng.below(hi - lo + 1);
            let center = j * below / size.max(1);
            let mut inputs: Vec<u64> = Vec::new();
            while (inputs.len() as u64) < fan.min(below) {
                let k = (center + below + rng.below(5) - 2) % below;
                if !inputs.contains(&k) {
                    inputs.push(k);
                }
            }
            let id = format!("{}{}", if level == 8 { "F" } else { "M" }, n);
            n += 1;
            let below_ids = &levels[level - 1];
            append(
                &mut state,
                format!("p{id}"),
                Command::ProcessLots(jejak_domain::LotProcessed {
                    facility_id: "fac".into(),
                    process_step: if level == 8 {
                        "packing".into()
                    } else {
                        format!("step-{level}")
                    },
                    line: String::new(),
                    inputs: inputs
                        .iter()
                        .map(|k| LotInput {
                            lot_id: below_ids[*k as usize].clone(),
                            quantity: q("1", Unit::Kg),
                        })
                        .collect(),
                    outputs: vec![LotOutput {
                        lot_id: id.clone(),
                        product_id: if level == 8 { "fin".into() } else { "mid".into() },
                        quantity: q(if level == 8 { "5" } else { "100" }, Unit::Kg),
                        owner_id: String::new(),
                    }],
                    occurred_at: None,
                }),
            )?;
            this.push(id);
        }
        levels.push(this);
    }
    let events = log.durable_position().max(state.event_count() as u64);
    let raws = levels.first().cloned().unwrap_or_default();
    let fins = levels.last().cloned().unwrap_or_default();
    Ok((events, raws, fins))
}

/// Waits until the `events` the generator appended to a fresh log are all
/// durable (its writer flushes in the background, so right after the
/// generator returns the durable position can still be short of them).
pub(crate) async fn all_durable(log: &SledLog, events: u64) -> anyhow::Result<u64> {
    log.wait_durable(events.max(1)).await?;
    let last = log.durable_position();
    anyhow::ensure!(
        last >= events,
        "the log holds {last} durable events, the generator appended {events}"
    );
    Ok(last)
}

/// Projector throughput, trace latency in-process and over gRPC, and memory.
async fn genealogy(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let dir = opts.dir.join("genealogy");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    let log = SledLog::open(&dir.join("log"))?;
    let started = Instant::now();
    let (events, raws, fins) = {
        let log = log.clone();
        let lots = opts.lots;
        tokio::task::spawn_blocking(move || generate(&log, lots)).await??
    };
    let staged = log
        .read_from(1, usize::MAX)
        .map(|v| v.last().map_or(0, |e| e.position))?;
    log.wait_durable(staged).await?;
    rows.push((
        "genealogy generated".into(),
        format!("{} lots, {staged} events in {:.1?}", opts.lots, started.elapsed()),
    ));
    let _ = events;

    let proj_dir = dir.join("genealogy");
    let (elapsed, projection) = {
        let log = log.clone();
        let proj_dir = proj_dir.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Duration, Projection)> {
            let projection = Projection::open(&proj_dir)?;
            let t = Instant::now();
            jejak_engine::projector::catch_up(&log, &projection, staged, &mut |_| {})?;
            let e = t.elapsed();
            projection.flush()?;
            Ok((e, projection))
        })
        .await??
    };
    rows.push((
        "projector (decode + apply + sled batch)".into(),
        format!(
            "{:.0} events/s ({staged} events in {elapsed:.2?})",
            staged as f64 / elapsed.as_secs_f64()
        ),
    ));
    rows.push((
        "event log bytes on disk per event (genealogy)".into(),
        format!("{:.0}", log.size_on_disk()? as f64 / staged as f64),
    ));
    rows.push((
        "projection bytes on disk per lot".into(),
        format!("{:.0}", projection.size_on_disk()? as f64 / opts.lots as f64),
    ));

    // In-process traces over random finished units and used raw receipts.
    let mut rng = Rng(42);
    let limits = TraceLimits::default();
    let mut back = Vec::with_capacity(opts.queries);
    let mut ancestors = Vec::with_capacity(opts.queries);
    let mut fwd = Vec::with_capacity(opts.queries);
    let mut reached = Vec::with_capacity(opts.queries);
    {
        let g = projection.read();
        for _ in 0..opts.queries {
            let lot = &fins[rng.below(fins.len() as u64) as usize];
            let target = jejak_domain::Target::Lot(lot.clone());
            let t = Instant::now();
            let r = g.backward_trace(&target, 0, limits)?;
            back.push(t.elapsed());
            ancestors.push(r.nodes.len().saturating_sub(1));
            let lot = &raws[rng.below(raws.len() as u64) as usize];
            let target = jejak_domain::Target::Lot(lot.clone());
            let t = Instant::now();
            let r = g.forward_trace(&target, 0, limits)?;
            fwd.push(t.elapsed());
            reached.push(r.nodes.len().saturating_sub(1));
        }
    }
    back.sort();
    fwd.sort();
    ancestors.sort();
    reached.sort();
    rows.push((
        "ancestors of a finished unit, median / p99".into(),
        format!(
            "{} / {}",
            ancestors[ancestors.len() / 2],
            ancestors[ancestors.len() * 99 / 100]
        ),
    ));
    rows.push((
        "backward trace with lot details, in process, p50 / p99".into(),
        format!(
            "{} / {}",
            micros(percentile(&back, 0.5)),
            micros(percentile(&back, 0.99))
        ),
    ));
    rows.push((
        "lots reached forward from a receipt, median / p99".into(),
        format!("{} / {}", reached[reached.len() / 2], reached[reached.len() * 99 / 100]),
    ));
    rows.push((
        "forward trace with lot details, in process, p50 / p99".into(),
        format!("{} / {}", micros(percentile(&fwd, 0.5)), micros(percentile(&fwd, 0.99))),
    ));
    drop(projection);
    drop(log);

    // The same over gRPC against a server process holding the genealogy.
    let t = Instant::now();
    let server = start_server(&dir, false).await?;
    rows.push((
        "server start on this store (replay + load)".into(),
        format!("{:.1?}", t.elapsed()),
    ));
    // A server started on a log it has no tree or alerts for builds them in
    // the background (the tree's leaves for every event): the figures below
    // are those of a server that has settled.
    let pid = server.pid().context("the server's process id")?;
    wait_idle(pid, Duration::from_secs(900)).await?;
    rows.push((
        "server start until idle (tree and alert follower caught up)".into(),
        format!("{:.1?}", t.elapsed()),
    ));
    let mut c = jejak_client::trace_client(&target_of(&server)).await?;
    let mut back = Vec::with_capacity(opts.queries);
    let mut fwd = Vec::with_capacity(opts.queries);
    for _ in 0..opts.queries {
        let lot = &fins[rng.below(fins.len() as u64) as usize];
        let req = p::TraceRequest {
            target: Some(p::Target {
                kind: Some(p::target::Kind::LotId(lot.clone())),
            }),
            max_depth: 0,
            max_nodes: 0,
        };
        let t = Instant::now();
        c.backward_trace(req).await?;
        back.push(t.elapsed());
        let lot = &raws[rng.below(raws.len() as u64) as usize];
        let req = p::TraceRequest {
            target: Some(p::Target {
                kind: Some(p::target::Kind::LotId(lot.clone())),
            }),
            max_depth: 0,
            max_nodes: 0,
        };
        let t = Instant::now();
        c.forward_trace(req).await?;
        fwd.push(t.elapsed());
    }
    back.sort();
    fwd.sort();
    rows.push((
        "backward trace over gRPC, p50 / p99".into(),
        format!(
            "{} / {}",
            micros(percentile(&back, 0.5)),
            micros(percentile(&back, 0.99))
        ),
    ));
    rows.push((
        "forward trace over gRPC, p50 / p99".into(),
        format!("{} / {}", micros(percentile(&fwd, 0.5)), micros(percentile(&fwd, 0.99))),
    ));
    if let Some(rss) = rss_bytes(&server) {
        rows.push((
            "server resident memory holding the genealogy".into(),
            format!("{:.0} MiB", rss as f64 / 1048576.0),
        ));
    }
    stop(server).await;
    Ok(rows)
}

/// Label lookups (what a consumer's QR scan costs) against a demo server:
/// one caller for latency, then `clients` callers for throughput.
async fn label(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let dir = opts.dir.join("label");
    let _ = std::fs::remove_dir_all(&dir);
    let server = start_server(&dir, true).await?;
    let mut labels = Vec::new();
    for line in jejak_server::demo::DEMO.lines().filter(|l| !l.trim().is_empty()) {
        if let p::command::Kind::PackLot(r) = jejak_proto::json::parse_command(line).map_err(anyhow::Error::msg)? {
            for pkg in &r.packages {
                labels.push(format!(
                    "https://id.jejak.example/01/{}/10/{}/21/{}",
                    r.gtin, r.lot_id, pkg.serial
                ));
            }
        }
    }
    anyhow::ensure!(!labels.is_empty(), "the demo data packs nothing");
    // Consumers scanning a label carry no token: the public path.
    let target = Target::new(server.url.clone());
    let (queries, clients) = (opts.queries, opts.clients);
    let rows = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async move {
                const PATH: &str = "/jejak.v1.TraceService/LookupLabel";
                let mut c = LoadClient::connect(&target).await?;
                let mut rng = Rng(7);
                let mut lat = Vec::with_capacity(queries);
                for _ in 0..queries {
                    let uri = labels[rng.below(labels.len() as u64) as usize].clone();
                    let t = Instant::now();
                    c.unary(PATH, &p::LookupLabelRequest { uri }).await?;
                    lat.push(t.elapsed());
                }
                lat.sort();
                let started = Instant::now();
                let mut tasks = tokio::task::JoinSet::new();
                for k in 0..clients {
                    let mut c = LoadClient::connect(&target).await?;
                    let labels = labels.clone();
                    tasks.spawn(async move {
                        let mut rng = Rng(11 + k as u64);
                        for _ in 0..queries / clients.max(1) {
                            let uri = labels[rng.below(labels.len() as u64) as usize].clone();
                            c.unary(PATH, &p::LookupLabelRequest { uri }).await?;
                        }
                        anyhow::Ok(())
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done??;
                }
                let rate = (queries / clients.max(1) * clients) as f64 / started.elapsed().as_secs_f64();
                anyhow::Ok(vec![
                    (
                        "label lookup over gRPC, one caller, p50 / p99".to_string(),
                        format!("{} / {}", micros(percentile(&lat, 0.5)), micros(percentile(&lat, 0.99))),
                    ),
                    (
                        format!("label lookups, {clients} callers on their own connections"),
                        format!("{rate:.0} lookups/s"),
                    ),
                ])
            })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the load generator panicked"))??;
    stop(server).await;
    Ok(rows)
}

/// Generates a store of about `lots` lots shaped like the rice sector's:
/// per batch four inspected receipts from different UKM, dried together,
/// milled, polished into a finished lot that is inspected and packed in ten
/// labelled 5 kg bags. Returns the label paths.
fn generate_labelled(log: &SledLog, lots: u64) -> anyhow::Result<Vec<String>> {
    use jejak_domain::{InspectLot, LotPacked, Measurement, Package};
    let mut state = State::new();
    let now = jejak_domain::Time::now();
    let append = |state: &mut State, id: String, cmd: Command| append_decided(log, state, now, id, cmd);
    append_master(&mut |id, cmd| append(&mut state, id, cmd), labelled_master_lines())?;
    let gtin = jejak_domain::gs1::Gtin::parse(PREMIUM_RICE_GTIN)?;
    let inspect = |state: &mut State, lot: &str| -> anyhow::Result<()> {
        append(
            state,
            format!("i-{lot}"),
            Command::InspectLot(InspectLot {
                lot_id: lot.into(),
                facility_id: "fac".into(),
                standard_id: "sni".into(),
                measurements: vec![Measurement {
                    parameter: "kadar_air".into(),
                    value: jejak_domain::Decimal::new(135, 1),
                    unit: "%".into(),
                }],
                inspector: String::new(),
                occurred_at: None,
            }),
        )
    };
    let process = |state: &mut State, step: &str, inputs: Vec<(String, &str)>, out: &str, product: &str, qty: &str| {
        append(
            state,
            format!("p-{out}"),
            Command::ProcessLots(jejak_domain::LotProcessed {
                facility_id: "fac".into(),
                process_step: step.into(),
                line: String::new(),
                inputs: inputs
                    .into_iter()
                    .map(|(lot_id, v)| LotInput {
                        lot_id,
                        quantity: q(v, Unit::Kg),
                    })
                    .collect(),
                outputs: vec![LotOutput {
                    lot_id: out.into(),
                    product_id: product.into(),
                    quantity: q(qty, Unit::Kg),
                    owner_id: String::new(),
                }],
                occurred_at: None,
            }),
        )
    };
    let mut labels = Vec::new();
    for b in 0..lots.div_ceil(7) {
        let mut received = Vec::new();
        for k in 0..4 {
            let id = format!("B{b}-R{k}");
            append(
                &mut state,
                format!("r-{id}"),
                Command::ReceiveMaterial(MaterialReceived {
                    lot_id: id.clone(),
                    facility_id: "fac".into(),
                    product_id: "raw".into(),
                    quantity: q("1000", Unit::Kg),
                    owner_id: format!("ukm{}", (b + k) % 3),
                    supplier_id: "sup".into(),
                    origin: Default::default(),
                    documents: Vec::new(),
                    source_lot_id: None,
                    occurred_at: None,
                }),
            )?;
            inspect(&mut state, &id)?;
            received.push((id, "1000"));
        }
        let dried = format!("B{b}-D");
        process(&mut state, "pengeringan", received, &dried, "mid", "3400")?;
        let milled = format!("B{b}-M");
        process(
            &mut state,
            "penggilingan",
            vec![(dried, "3400")],
            &milled,
            "mid",
            "2100",
        )?;
        let fin = format!("B{b}-F");
        process(&mut state, "penyosohan", vec![(milled, "2100")], &fin, "bag", "2000")?;
        inspect(&mut state, &fin)?;
        let packages: Vec<Package> = (0..10)
            .map(|k| Package {
                serial: format!("B{b}-{k:02}"),
                quantity: q("5", Unit::Kg),
            })
            .collect();
        for pk in &packages {
            labels.push(format!("/01/{gtin}/10/{fin}/21/{}", pk.serial));
        }
        append(
            &mut state,
            format!("k-{fin}"),
            Command::PackLot(LotPacked {
                facility_id: "fac".into(),
                lot_id: fin.clone(),
                gtin: gtin.clone(),
                packages,
                occurred_at: None,
            }),
        )?;
    }
    Ok(labels)
}

/// The resolver under `wrk` (an HTTP load generator, Debian package `wrk`):
/// label resolutions as JSON and as the HTML page, against one server on a
/// store of `lots` labelled lots, each request a random one of 20,000 labels.
async fn resolver(opts: &BenchOptions) -> anyhow::Result<Vec<(String, String)>> {
    let wrk = ["/usr/bin/wrk", "/usr/local/bin/wrk"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .context("wrk is missing: install it with `apt-get install wrk`")?;
    let dir = opts.dir.join("resolver");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    let labels = {
        let log = SledLog::open(&dir.join("log"))?;
        let gen_log = log.clone();
        let lots = opts.label_lots;
        let labels = tokio::task::spawn_blocking(move || generate_labelled(&gen_log, lots)).await??;
        let end = log
            .read_from(1, usize::MAX)
            .map(|v| v.last().map_or(0, |e| e.position))?;
        log.wait_durable(end).await?;
        log.close().await?;
        labels
    };
    let mut rows = vec![(
        "resolver store generated".to_string(),
        format!(
            "{} lots, {} labels in {:.1?}",
            opts.label_lots,
            labels.len(),
            started.elapsed()
        ),
    )];
    let server = start_server(&dir, false).await?;
    let mut rng = Rng(23);
    let sample: Vec<&String> = (0..20_000)
        .map(|_| &labels[rng.below(labels.len() as u64) as usize])
        .collect();
    let list = dir.join("labels.txt");
    std::fs::write(&list, sample.iter().map(|l| format!("{l}\n")).collect::<String>())?;
    let authority = server.url.trim_start_matches("http://").to_string();
    for (what, accept) in [
        ("JSON", "application/json"),
        ("HTML page", "text/html,application/xhtml+xml,*/*;q=0.8"),
    ] {
        // Each wrk thread reads the label list and asks for random ones.
        let script = dir.join("labels.lua");
        std::fs::write(
            &script,
            format!(
                "local paths = {{}}\nfor line in io.lines(\"{}\") do paths[#paths + 1] = line end\n\
                 wrk.headers[\"Accept\"] = \"{accept}\"\n\
                 request = function() return wrk.format(\"GET\", paths[math.random(#paths)]) end\n",
                list.display()
            ),
        )?;
        // Warm up, then measure.
        for (secs, measured) in [(3, false), (opts.wrk_seconds, true)] {
            let out = tokio::process::Command::new(wrk)
                .args(["-t1", "-c32", &format!("-d{secs}s"), "--latency", "-s"])
                .arg(&script)
                .arg(format!("http://{authority}"))
                .output()
                .await
                .context("run wrk")?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            anyhow::ensure!(
                out.status.success(),
                "wrk failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if !measured {
                continue;
            }
            let field = |prefix: &str| {
                text.lines()
                    .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
                    .unwrap_or_else(|| "?".into())
            };
            anyhow::ensure!(!text.contains("Non-2xx"), "some resolutions failed:\n{text}");
            rows.push((
                format!("resolver {what}, wrk 1 thread 32 connections, req/s"),
                field("Requests/sec:"),
            ));
            rows.push((
                format!("resolver {what}, latency p50 / p99"),
                format!("{} / {}", field("50%"), field("99%")),
            ));
        }
    }
    if let Some(rss) = rss_bytes(&server) {
        rows.push(("resolver server resident memory".into(), format!("{} MiB", rss >> 20)));
    }
    stop(server).await;
    Ok(rows)
}

fn own_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Where a server's memory goes: resident memory after opening the log
/// (start-up check, chain heads, event-id index) and after loading the
/// projection.
async fn memory(data_dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / 1048576.0);
    let start = own_rss();
    let log = SledLog::open(&data_dir.join("log"))?;
    let after_log = own_rss();
    let dir = data_dir.join("genealogy");
    let projection = tokio::task::spawn_blocking(move || Projection::open(&dir)).await??;
    let after_projection = own_rss();
    let lots = projection.status().lots;
    let rows = vec![
        (
            "memory: event log (start-up check, chain heads, event-id index, sled)".into(),
            mib(after_log.saturating_sub(start)),
        ),
        (
            format!("memory: genealogy ({lots} lots)"),
            mib(after_projection.saturating_sub(after_log)),
        ),
    ];
    drop(projection);
    drop(log);
    Ok(rows)
}

/// Runs every benchmark and prints a table.
pub(crate) async fn run(opts: BenchOptions, what: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.dir)?;
    let mut rows = Vec::new();
    if what == "all" || what == "capture" {
        rows.extend(capture(&opts).await?);
    }
    if what == "all" || what == "genealogy" {
        rows.extend(genealogy(&opts).await?);
    }
    if what == "all" || what == "label" {
        rows.extend(label(&opts).await?);
    }
    if what == "all" || what == "connections" {
        rows.extend(crate::connections::connections(&opts).await?);
    }
    if what == "all" || what == "blending" {
        rows.extend(crate::blending::blending(&opts).await?);
    }
    if what == "all" || what == "resolver" {
        rows.extend(resolver(&opts).await?);
    }
    if what == "all" || what == "tlog" {
        rows.extend(crate::tlog::tlog(&opts).await?);
    }
    if what == "all" || what == "epcis" {
        rows.extend(crate::epcis::epcis(&opts).await?);
    }
    if what == "all" || what == "alerts" {
        rows.extend(crate::alerts::alerts(&opts).await?);
    }
    if what == "all" || what == "tree-cost" {
        rows.extend(crate::treecost::tree_cost(&opts).await?);
    }
    if what == "all" || what == "bulk" {
        rows.extend(crate::bulk::bulk(&opts).await?);
    }
    if what == "all" || what == "catchup" {
        rows.extend(crate::catchup::catchup(&opts).await?);
    }
    if what == "failover" {
        rows.extend(crate::failover::failover(&opts).await?);
    }
    if what == "all" || what == "open" {
        rows.extend(crate::open::open(&opts).await?);
    }
    if what == "all" || what == "memory" {
        // In its own process, so earlier benchmarks' freed memory does not hide growth.
        let out = tokio::process::Command::new(std::env::current_exe()?)
            .args(["memory-inner", "--dir"])
            .arg(&opts.dir)
            .output()
            .await?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    if what == "memory-inner" {
        rows.extend(memory(&opts.dir.join("genealogy")).await?);
    }
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<width$}  {v}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command line the benchmarks register is one the server
    /// reads, and the bag product carries the GTIN its labels use.
    #[test]
    fn the_benchmarks_master_data_parses() {
        for line in labelled_master_lines() {
            jejak_proto::json::parse_command(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
        assert!(labelled_master_lines().iter().any(|l| l.contains(PREMIUM_RICE_GTIN)));
    }
}
