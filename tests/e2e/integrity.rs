//! Storage integrity on start: a server whose stored log was changed
//! refuses to serve, naming the facility and the sequence.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jejak_proto::v1 as p;
use jejak_testkit::{jejak_bin, Server, ServerOptions};
use prost::Message;

use crate::crash::{master_data, receipt};

/// The sled key of the log block starting at `first` (`b` + big-endian position).
fn block_key(first: u64) -> [u8; 9] {
    let mut k = [b'b'; 9];
    k[1..].copy_from_slice(&first.to_be_bytes());
    k
}

/// Changes the actor of the envelope stored at `position`, directly in the
/// log's sled tree of a stopped server, keeping its block well-formed: the
/// other envelopes keep their exact bytes.
pub(crate) fn change_envelope(log_dir: &Path, position: u64) -> anyhow::Result<()> {
    let db = sled::open(log_dir)?;
    let tree = db.open_tree("log")?;
    let (key, block) = tree
        .range(block_key(0)..=block_key(position))
        .next_back()
        .ok_or_else(|| anyhow::anyhow!("no block holds position {position}"))??;
    let first = u64::from_be_bytes(key[1..].try_into()?);
    let (mut rest, mut value, mut at) = (&block[..], Vec::new(), first);
    while !rest.is_empty() {
        let len = usize::try_from(prost::encoding::decode_varint(&mut rest)?)?;
        let (bytes, tail) = rest.split_at(len);
        let bytes = if at == position {
            let mut e = p::Envelope::decode(bytes)?;
            e.actor.push('!');
            e.encode_to_vec()
        } else {
            bytes.to_vec()
        };
        prost::encoding::encode_varint(bytes.len() as u64, &mut value);
        value.extend_from_slice(&bytes);
        (rest, at) = (tail, at + 1);
    }
    anyhow::ensure!(at > position, "the block at {first} ends before position {position}");
    tree.insert(key, value)?;
    db.flush()?;
    Ok(())
}

/// Runs `jejak serve` on `data_dir` expecting it to refuse to start; returns
/// its exit status and stderr.
fn serve_refused(data_dir: &Path) -> anyhow::Result<(std::process::ExitStatus, String)> {
    let mut child = Command::new(jejak_bin()?)
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("jejak serve still runs on a changed log after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr)?;
    }
    Ok((status, stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_envelope_stops_the_server_naming_facility_and_sequence() -> anyhow::Result<()> {
    let mut server = Server::start(ServerOptions::default())?;
    master_data(&server).await?;
    let mut c = server.capture().await?;
    let mut last = None;
    for i in 0..3 {
        last = Some(c.receive_material(receipt(0, i)).await?.into_inner());
    }
    let head = last.expect("three receipts were captured");
    assert!(server.stop()?.success());
    let (data_dir, _keep) = server.into_data_dir();

    // The second start walks the first run's envelopes and checkpoints
    // them: the last receipt is now facility "fac"'s verified head, and the
    // receipts of this run link to it.
    let mut server = Server::start(ServerOptions {
        data_dir: Some(data_dir.clone()),
        ..Default::default()
    })?;
    let mut c = server.capture().await?;
    for i in 3..5 {
        c.receive_material(receipt(0, i)).await?;
    }
    assert!(server.stop()?.success());
    drop(server);

    change_envelope(&data_dir.join("log"), head.position)?;
    let (status, stderr) = serve_refused(&data_dir)?;
    assert!(!status.success(), "served a changed log: {stderr}");
    for part in [
        "\"fac\"".to_string(),
        format!("sequence {}", head.sequence),
        format!("position {}", head.position),
        "no longer matches its hash".to_string(),
    ] {
        assert!(stderr.contains(&part), "stderr {stderr:?} does not mention {part:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_the_log_is_verified_offline_and_a_changed_byte_names_its_chain() {
    use base64::Engine as _;
    let demo = crate::support::Demo::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("log.jsonl");
    let file_arg = file.to_str().expect("utf-8").to_string();
    let token = demo.server.admin_token.clone().expect("an admin token");
    let run = |args: &[&str]| jejak_testkit::run_cli(args).expect("run jejak");
    let (status, out, err) = run(&[
        "export",
        "-o",
        &file_arg,
        "--server",
        &demo.server.url,
        "--token",
        &token,
    ]);
    assert!(status.success(), "export: {err}");
    let n = demo.position().await;
    assert!(out.contains(&format!("wrote {n} envelopes")), "{out}");
    let (status, out, err) = run(&["verify", "--export", &file_arg]);
    assert!(status.success(), "verify: {err}");
    assert!(out.contains(&format!("{n} envelopes")), "{out}");

    // One byte of one envelope changed: the check names the line, chain and sequence.
    let text = std::fs::read_to_string(&file).expect("read the export");
    let mut lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("a line")).collect();
    let b64 = base64::engine::general_purpose::STANDARD;
    let target = &mut lines[99];
    let mut bytes = b64
        .decode(target["envelope"].as_str().expect("base64"))
        .expect("decode");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    target["envelope"] = b64.encode(&bytes).into();
    let (chain, sequence) = (
        target["chain"].as_str().expect("chain").to_string(),
        target["sequence"].clone(),
    );
    let changed: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, changed).expect("write the changed export");
    let (status, _, err) = run(&["verify", "--export", &file_arg]);
    assert!(!status.success(), "a changed envelope must not verify");
    assert!(
        err.contains("line 100") && err.contains(&format!("chain {chain:?} sequence {sequence}")),
        "{err}"
    );

    // An envelope left out (the changed one put back as it was): named too.
    let mut lines = lines;
    lines[99]["envelope"] = b64
        .encode({
            let mut b = bytes.clone();
            b[last] ^= 1;
            b
        })
        .into();
    lines.remove(49);
    let gap: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, gap).expect("write the export without an envelope");
    let (status, _, err) = run(&["verify", "--export", &file_arg]);
    assert!(!status.success(), "an export with an envelope missing must not verify");
    assert!(err.contains("line 50") && err.contains("missing"), "{err}");

    // Only administrators and regulators export the log.
    let (status, _, err) = run(&["export", "-o", &file_arg, "--server", &demo.server.url]);
    assert!(!status.success());
    assert!(err.contains("token"), "{err}");
}

/// Receipts at the Demak mill, one after another, until `stop` is set;
/// returns how many were recorded.
async fn receive_until(
    mut capture: jejak_proto::v1::capture_service_client::CaptureServiceClient<jejak_testkit::Conn>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    recorded: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> anyhow::Result<()> {
    use jejak_server::demo::ids::{DEMAK, FARMERS_TANIMAJU, PADDY, UKM_BERKAH};
    use std::sync::atomic::Ordering;
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        capture
            .receive_material(p::ReceiveMaterialRequest {
                command_id: format!("during-backup-{n}"),
                facility_id: DEMAK.into(),
                lot_id: format!("DURING-{n}"),
                product_id: PADDY.into(),
                quantity: crate::support::qty("100", p::Unit::Kg),
                owner_id: UKM_BERKAH.into(),
                supplier_id: FARMERS_TANIMAJU.into(),
                ..Default::default()
            })
            .await?;
        recorded.store(n, Ordering::SeqCst);
    }
    Ok(())
}

/// A backup's story of each showcase lot: its backward trace and origin shares.
async fn showcase_stories(server: &Server) -> Vec<(p::TraceReply, p::OriginSharesReply)> {
    let mut trace = server.trace().await.expect("a trace client");
    let mut out = Vec::new();
    for (lot, _) in jejak_server::demo::SHOWCASE {
        let target = Some(p::Target {
            kind: Some(p::target::Kind::LotId(lot.to_string())),
        });
        let t = trace
            .backward_trace(p::TraceRequest {
                target: target.clone(),
                ..Default::default()
            })
            .await
            .expect("a backward trace")
            .into_inner();
        let s = trace
            .origin_shares(p::OriginSharesRequest { target })
            .await
            .expect("origin shares")
            .into_inner();
        out.push((t, s));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_survives_a_kill_during_it_and_restores_to_a_server_telling_the_same_stories() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let demo = crate::support::Demo::start().await;
    // Ten thousand receipts, so that a backup takes a moment.
    let doc = crate::epcis::document(
        (0..10_000)
            .map(|i| crate::epcis::receipt(&format!("BKP-{i}"), jejak_server::demo::ids::UKM_BERKAH))
            .collect(),
    );
    let (reply, job) = crate::epcis::post(&demo.server, &doc, "rollback").await;
    assert_eq!(reply.status, 202, "{job}");
    let job = crate::epcis::finished(&demo.server, &job).await;
    assert_eq!(job["success"], true, "{job}");

    let token = demo.server.admin_token.clone().expect("an admin token");
    let root = tempfile::tempdir().expect("a temporary directory");
    let path = |name: &str| root.path().join(name).to_str().expect("utf-8").to_string();
    let backup = |dir: &str, url: &str| {
        Command::new(jejak_bin().expect("the jejak binary"))
            .args(["backup", dir, "--server", url, "--token", &token])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start jejak backup")
    };

    // The server killed with SIGKILL while a backup streams its log.
    let partial = path("partial");
    let mut child = backup(&partial, &demo.server.url);
    let started = root.path().join("partial/log.partial");
    let manifest = root.path().join("partial/manifest.json");
    jejak_testkit::wait_until(Instant::now() + Duration::from_secs(30), || {
        let ready = std::fs::metadata(&started).is_ok_and(|m| m.len() > 0) || manifest.exists();
        async move { Ok(ready.then_some(())) }
    })
    .await
    .expect("the backup starts writing the log");
    // Paused while the server dies, the backup cannot have read the rest
    // of the log first (only what flow control let the server send ahead).
    let signal = |sig: &str| {
        let sent = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill {sig}");
    };
    signal("-STOP");
    let (data_dir, _keep) = demo.server.into_data_dir();
    signal("-CONT");
    let status = child.wait().expect("the backup ends");
    if manifest.exists() {
        // It had everything before the kill: a complete backup.
        eprintln!("the backup was complete before the kill");
        assert!(status.success());
    } else {
        assert!(!status.success(), "a backup cut off by the server's death fails");
        let (status, _, err) = jejak_testkit::run_cli(&["restore", &partial, "--data-dir", &path("from-partial")])
            .expect("run jejak restore");
        assert!(!status.success(), "an interrupted backup is not restored");
        assert!(err.contains("interrupted"), "{err}");
        assert!(!root.path().join("from-partial/log").exists(), "nothing restored");
    }

    // The server comes back; a backup is taken while receipts keep arriving.
    let server = Server::start(ServerOptions {
        data_dir: Some(data_dir),
        ..Default::default()
    })
    .expect("the server starts again after the kill")
    .with_token(Some(token.clone()));
    let (stop, recorded) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let capturing = tokio::spawn(receive_until(
        server.capture().await.expect("a capture client"),
        stop.clone(),
        recorded.clone(),
    ));
    let at_least = |n: u64| {
        let recorded = recorded.clone();
        async move {
            jejak_testkit::wait_until(Instant::now() + Duration::from_secs(60), || {
                let done = recorded.load(Ordering::SeqCst) >= n;
                async move { Ok(done.then_some(())) }
            })
            .await
            .expect("receipts are recorded");
        }
    };
    at_least(20).await;
    let full = path("full");
    let out = backup(&full, &server.url).wait_with_output().expect("the backup ends");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = recorded.load(Ordering::SeqCst);
    at_least(before + 20).await;
    stop.store(true, Ordering::SeqCst);
    capturing
        .await
        .expect("the capture task")
        .expect("every receipt recorded");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.path().join("full/manifest.json")).expect("a manifest"))
            .expect("JSON");
    let position = manifest["position"].as_u64().expect("a position");
    assert!(
        server.status().await.expect("status").log_position > position,
        "capture went on during and after the backup"
    );
    let key = std::fs::metadata(root.path().join("full/log.key")).expect("the log key");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600,
        "owner-only"
    );

    // Restored into a new data directory, it serves the same stories.
    let restored_dir = root.path().join("restored");
    let (status, out, err) =
        jejak_testkit::run_cli(&["restore", &full, "--data-dir", &path("restored")]).expect("run jejak restore");
    assert!(status.success(), "restore: {err}");
    assert!(out.contains("root reproduced"), "{out}");
    let (status, _, err) =
        jejak_testkit::run_cli(&["restore", &full, "--data-dir", &path("restored")]).expect("run jejak restore");
    assert!(!status.success(), "a restore over a data directory is refused");
    assert!(err.contains("new data directory"), "{err}");
    let restored = Server::start(ServerOptions {
        data_dir: Some(restored_dir),
        ..Default::default()
    })
    .expect("a server on the restored data directory")
    .with_token(Some(token));
    assert_eq!(restored.status().await.expect("status").log_position, position);
    assert_eq!(showcase_stories(&restored).await, showcase_stories(&server).await);
    let key_of = |s: &Server| {
        let s = s.authority().to_string();
        async move {
            jejak_testkit::http_request(&s, "GET", "/log/key", &[], b"")
                .await
                .expect("GET /log/key")
                .text()
        }
    };
    assert_eq!(key_of(&restored).await, key_of(&server).await, "the same log key");
    // What was captured after the backup's position is not in it.
    let last = format!("DURING-{}", recorded.load(Ordering::SeqCst));
    let mut trace = restored.trace().await.expect("a trace client");
    let missing = trace.get_lot(p::GetLotRequest { lot_id: last.clone() }).await;
    assert_eq!(missing.map(|_| ()).unwrap_err().code(), tonic::Code::NotFound, "{last}");
}
