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
