//! The transparency log end to end: tiles that reveal nothing, witnesses
//! that cosign (and refuse a rewritten log), provenance bundles of every
//! demo label that verify offline, and tampered bundles that do not.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use jejak_proto::v1 as p;
use jejak_testkit::{http_request, run_cli, wait_until, Server, ServerOptions};
use jejak_verify::bundle::{self, BundleError, Policy};
use jejak_verify::checkpoint::{verify_checkpoint, Checkpoint};
use jejak_verify::merkle;
use jejak_verify::note::Verifier;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A `jejak witness` process, killed on drop.
struct Witness {
    child: Child,
    authority: String,
    vkey: String,
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Witness {
    fn start(dir: &Path, name: &str, log_vkey: &str) -> Witness {
        let mut child = Command::new(jejak_testkit::jejak_bin().expect("the jejak binary"))
            .args(["witness", "--key"])
            .arg(dir.join(format!("{name}.key")))
            .args(["--name", name, "--log-key", log_vkey, "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start jejak witness");
        let stdout = child.stdout.take().expect("the witness's stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the witness's first line");
        // "jejak witness <vkey> listening on http://<addr>"
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(words.len() == 6 && words[4] == "on", "unexpected first line {line:?}");
        Witness {
            child,
            authority: words[5].trim_start_matches("http://").to_string(),
            vkey: words[2].to_string(),
        }
    }

    fn flag(&self) -> String {
        format!("http://{}={}", self.authority, self.vkey)
    }

    async fn post(&self, body: &[u8]) -> jejak_testkit::HttpReply {
        http_request(&self.authority, "POST", "/add-checkpoint", &[], body)
            .await
            .expect("a witness answer")
    }

    async fn latest(&self, origin: &str) -> jejak_testkit::HttpReply {
        use sha2::Digest;
        let hash: String = sha2::Sha256::digest(origin.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        http_request(&self.authority, "GET", &format!("/{hash}/checkpoint"), &[], b"")
            .await
            .expect("a witness answer")
    }
}

/// Creates the log key of `data_dir` (as a first start would) and returns its vkey.
fn log_key(data_dir: &Path, extra: &[&str]) -> String {
    let dir = data_dir.to_str().expect("a UTF-8 path");
    let mut args = vec!["log-key", "--data-dir", dir];
    args.extend_from_slice(extra);
    let (status, out, err) = run_cli(&args).expect("run jejak log-key");
    assert!(status.success(), "jejak log-key: {err}");
    out.trim().to_string()
}

/// A demo server whose checkpoints go to `witnesses`.
fn serve(data_dir: &Path, witnesses: &[&Witness], extra: &[&str]) -> Server {
    let mut extra_args: Vec<String> = witnesses
        .iter()
        .flat_map(|w| ["--witness".to_string(), w.flag()])
        .collect();
    extra_args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(ServerOptions {
        demo: true,
        data_dir: Some(data_dir.to_path_buf()),
        extra_args,
        ..Default::default()
    })
    .expect("start a demo server")
}

/// The published checkpoint once it covers the whole log and carries `cosigned` cosignatures.
async fn settled_checkpoint(server: &Server, cosigned: usize) -> String {
    let status = server.wait_projected(Duration::from_secs(60)).await.expect("projected");
    // The tree holds a leaf per event.
    let want = status.events;
    wait_until(Instant::now() + Duration::from_secs(60), || async {
        let reply = server.http_get("/log/checkpoint", &[]).await?;
        let note = reply.text();
        let size: Option<u64> = note.lines().nth(1).and_then(|s| s.parse().ok());
        let sigs = note.lines().filter(|l| l.starts_with('\u{2014}')).count();
        Ok((reply.status == 200 && size == Some(want) && sigs == 1 + cosigned).then_some(note))
    })
    .await
    .expect("a checkpoint of the whole log with its cosignatures")
}

/// The label URIs the demo server printed.
fn demo_labels(server: &Server) -> Vec<String> {
    server
        .stdout_lines()
        .iter()
        .skip_while(|l| !l.starts_with("demo labels"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|u| u.contains("/01/"))
        .collect()
}

/// Every lot id, party id and quantity the demo records.
fn demo_secrets() -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for line in jejak_server::demo::DEMO.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("a demo command");
        let mut stack = vec![("", &v)];
        while let Some((key, v)) = stack.pop() {
            match v {
                serde_json::Value::Object(m) => stack.extend(m.iter().map(|(k, v)| (k.as_str(), v))),
                serde_json::Value::Array(a) => stack.extend(a.iter().map(|v| (key, v))),
                serde_json::Value::String(s) => {
                    let k = key.to_ascii_lowercase();
                    let id = (k.ends_with("id") || k.ends_with("ids") || k == "id") && s.len() >= 6;
                    // Short numbers occur by chance in any run of hashes.
                    let amount = k == "value" && s.len() >= 4 && s.chars().any(|c| c.is_ascii_digit());
                    if id || amount {
                        out.insert(s.clone());
                    }
                }
                _ => {}
            }
        }
    }
    out.into_iter().collect()
}

/// The leaf hashes of an entry bundle (u16-length-prefixed leaves).
fn leaf_hashes(bundle: &[u8]) -> Vec<merkle::Hash> {
    let mut out = Vec::new();
    let mut rest = bundle;
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let Some(leaf) = rest.get(2..2 + len) else { break };
        out.push(merkle::leaf_hash(leaf));
        rest = &rest[2 + len..];
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_tiles_hold_no_lot_party_or_quantity_and_match_the_checkpoint() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let vkey = log_key(dir.path(), &[]);
    let server = serve(dir.path(), &[], &[]);
    let note = settled_checkpoint(&server, 0).await;
    let log = Verifier::parse(&vkey).expect("a vkey");
    let trusted = verify_checkpoint(&note, &log, &[], 0).expect("the checkpoint verifies with the log key");
    let key = server.http_get("/log/key", &[]).await.expect("the key").text();
    assert_eq!(key.trim(), vkey);

    // Every level-0 hash and every entry, as a monitor would fetch them.
    let size = trusted.checkpoint.size;
    let (full, partial) = (size / 256, size % 256);
    let mut paths = Vec::new();
    for n in 0..full {
        paths.push(format!("0/{n:03}"));
        paths.push(format!("entries/{n:03}"));
    }
    if partial > 0 {
        paths.push(format!("0/{full:03}.p/{partial}"));
        paths.push(format!("entries/{full:03}.p/{partial}"));
    }
    let mut leaves = Vec::new();
    let mut everything = Vec::new();
    for path in &paths {
        let reply = server
            .http_get(&format!("/log/tile/{path}"), &[])
            .await
            .expect("a tile");
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert!(
            reply.header("cache-control").is_some_and(|c| c.contains("immutable")),
            "{path}"
        );
        if path.starts_with("entries/") {
            leaves.extend(leaf_hashes(&reply.body));
        }
        everything.extend_from_slice(&reply.body);
    }
    assert_eq!(leaves.len() as u64, size);
    assert_eq!(
        merkle::root(&leaves),
        trusted.checkpoint.root,
        "the entries hash to the signed root"
    );
    assert_eq!(everything.len() as u64, size * 32 + size * (2 + 46));
    let secrets = demo_secrets();
    assert!(secrets.len() > 50, "the demo's ids and quantities: {secrets:?}");
    for s in &secrets {
        assert!(!contains(&everything, s.as_bytes()), "a tile reveals {s:?}");
    }
    // A tile the tree does not have yet, and paths that are not tiles.
    for path in [format!("0/{:03}.p/{}", full, partial + 1), "0/1".into(), "x/000".into()] {
        let reply = server
            .http_get(&format!("/log/tile/{path}"), &[])
            .await
            .expect("an answer");
        assert_eq!(reply.status, 404, "{path}");
    }
}

/// Runs `jejak verify-bundle`; (exit code, stdout, stderr).
fn verify_cli(file: &Path, log: &str, witnesses: &[&Witness], quorum: usize) -> (i32, String, String) {
    let mut args = vec![
        "verify-bundle".to_string(),
        file.display().to_string(),
        "--log-key".into(),
        log.into(),
    ];
    for w in witnesses {
        args.extend(["--witness".to_string(), w.vkey.clone()]);
    }
    args.extend(["--quorum".to_string(), quorum.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, out, err) = run_cli(&args).expect("run jejak verify-bundle");
    (status.code().unwrap_or(-1), out, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_witnesses_cosign_and_the_bundle_of_every_demo_label_verifies_offline() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let vkey = log_key(&data, &[]);
    let witnesses: Vec<Witness> = ["w1.example", "w2.example", "w3.example"]
        .iter()
        .map(|n| Witness::start(dir.path(), n, &vkey))
        .collect();
    let refs: Vec<&Witness> = witnesses.iter().collect();
    let server = serve(&data, &refs, &["--witness-quorum", "3"]);
    let note = settled_checkpoint(&server, 3).await;
    let policy = Policy {
        log: Verifier::parse(&vkey).expect("a vkey"),
        witnesses: witnesses
            .iter()
            .map(|w| Verifier::parse(&w.vkey).expect("a vkey"))
            .collect(),
        quorum: 3,
    };
    verify_checkpoint(&note, &policy.log, &policy.witnesses, 3).expect("cosigned by all three");
    // Each witness keeps the checkpoint it cosigned, with its cosignature.
    for w in &witnesses {
        let latest = w.latest(policy.log.name()).await;
        assert_eq!(latest.status, 200);
        let size = Checkpoint::parse(&jejak_verify::note::Note::parse(&latest.text()).expect("a note").text)
            .expect("a checkpoint")
            .size;
        assert_eq!(size.to_string(), note.lines().nth(1).unwrap_or_default());
    }

    let admin = server.admin_token.clone().expect("an administrator token");
    let labels = demo_labels(&server);
    assert!(labels.len() >= 5, "{labels:?}");
    for (i, uri) in labels.iter().enumerate() {
        let path = &uri[uri.find("/01/").expect("a Digital Link")..];
        // The public bundle, as the page links it.
        let reply = server
            .http_get(&format!("{path}?linkType=jejak:provenanceBundle"), &[])
            .await
            .expect("a bundle");
        assert_eq!(reply.status, 200, "{uri}: {}", reply.text());
        let public = dir.path().join(format!("public-{i}.json"));
        std::fs::write(&public, &reply.body).expect("write the bundle");
        let (code, out, err) = verify_cli(&public, &vkey, &refs, 3);
        assert_eq!(code, 0, "{uri}: {out}{err}");
        assert!(
            out.contains("cosigned by 3 witnesses") && out.contains("withheld: quantities"),
            "{out}"
        );
        let b: bundle::Bundle = serde_json::from_slice(&reply.body).expect("a bundle");
        let disclosed: Vec<&String> = b.entries.iter().flat_map(|e| e.disclosed.keys()).collect();
        assert!(
            !disclosed
                .iter()
                .any(|k| k.ends_with("quantity") || k.starts_with("documents") || *k == "actor"),
            "the public view discloses no quantity, document or recorder: {disclosed:?}"
        );
        if path.contains(jejak_server::demo::ids::RICE_BAG_SERIAL) {
            assert!(
                reply.body.len() <= 256 * 1024,
                "the rice bag's public bundle is {} bytes",
                reply.body.len()
            );
        }
        // The administrator's bundle, through the command line: quantities too.
        let full = dir.path().join(format!("full-{i}.json"));
        let (status, _, err) = run_cli(&[
            "bundle",
            uri,
            "-o",
            full.to_str().expect("a UTF-8 path"),
            "--server",
            &server.url,
            "--token",
            &admin,
        ])
        .expect("run jejak bundle");
        assert!(status.success(), "jejak bundle {uri}: {err}");
        let (code, out, err) = verify_cli(&full, &vkey, &refs, 3);
        assert_eq!(code, 0, "{uri}: {out}{err}");
        assert!(
            out.contains("mass balance") && out.contains("exact origin shares recomputed"),
            "{uri}: {out}"
        );
    }
    // A quorum of one that no cosigner meets (a witness the server never
    // asked); asking for none, the log's own signature is enough.
    let stranger = Witness::start(dir.path(), "w4.example", &vkey);
    let (code, out, err) = verify_cli(&dir.path().join("public-0.json"), &vkey, &[&stranger], 1);
    assert_eq!(code, 1, "a quorum of one without a cosigner: {out}{err}");
    assert!(err.contains("0 of the required 1 witnesses cosigned"), "{err}");
    let (code, _, err) = verify_cli(&dir.path().join("public-0.json"), &vkey, &[], 0);
    assert_eq!(code, 0, "{err}");
    let other = log_key(&dir.path().join("other"), &[]);
    let (code, out, err) = verify_cli(&dir.path().join("public-0.json"), &other, &[], 0);
    assert_eq!(code, 1, "another log's key: {out}{err}");
    assert!(err.contains("checkpoint"), "{err}");

    // One changed byte anywhere the bundle proves something: never verifies, and the place is named.
    let text = std::fs::read_to_string(dir.path().join("full-0.json")).expect("the bundle");
    tampered_copies_fail(&text, &policy);
}

/// Changes one character in each proven string of a bundle in turn.
fn tampered_copies_fail(text: &str, policy: &Policy) {
    bundle::verify(text, policy).expect("the original verifies");
    let original: serde_json::Value = serde_json::from_str(text).expect("JSON");
    // (JSON pointer, what the error must name)
    let mut targets: Vec<(String, String)> = vec![("/checkpoint".into(), "checkpoint".into())];
    let entries = original["entries"].as_array().expect("entries");
    for (i, e) in entries.iter().enumerate().step_by(5) {
        targets.push((format!("/entries/{i}/leaf"), format!("entries[{i}]")));
        targets.push((format!("/entries/{i}/proof"), format!("entries[{i}]")));
        targets.push((format!("/entries/{i}/digests/0"), format!("entries[{i}]")));
        for (k, _) in e["disclosed"].as_object().expect("disclosed").iter().take(4) {
            let k = k.replace('~', "~0").replace('/', "~1");
            targets.push((format!("/entries/{i}/disclosed/{k}/value"), format!("entries[{i}]")));
            targets.push((format!("/entries/{i}/disclosed/{k}/salt"), format!("entries[{i}]")));
        }
    }
    for (k, _) in original["claims"]["lots"].as_array().expect("lots").iter().enumerate() {
        for f in ["lot", "product", "owner"] {
            targets.push((format!("/claims/lots/{k}/{f}"), "claims".into()));
        }
    }
    for (k, _) in original["claims"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .enumerate()
    {
        for f in ["input", "output", "event"] {
            targets.push((format!("/claims/edges/{k}/{f}"), "claims".into()));
        }
    }
    for what in ["by_ukm", "by_supplier", "by_receipt"] {
        targets.push((format!("/claims/shares/{what}/0/id"), "claims".into()));
        targets.push((format!("/claims/shares/{what}/0/fraction"), "claims".into()));
    }
    targets.push(("/claims/lot".into(), "claims".into()));
    let mut checked = 0;
    for (pointer, place) in targets {
        let Some(s) = original.pointer(&pointer).and_then(|v| v.as_str()) else {
            continue;
        };
        // A character in the middle, changed to another of its kind.
        let mut chars: Vec<char> = s.chars().collect();
        let at = chars.len() / 2;
        chars[at] = match chars[at] {
            'A' => 'B',
            '0' => '1',
            '9' => '8',
            c if c.is_ascii_alphanumeric() => {
                if c == 'z' || c == 'Z' {
                    'a'
                } else {
                    (c as u8 + 1) as char
                }
            }
            _ => 'x',
        };
        let mut changed = original.clone();
        *changed.pointer_mut(&pointer).expect("the pointer") = serde_json::Value::String(chars.into_iter().collect());
        let changed = serde_json::to_string(&changed).expect("JSON");
        match bundle::verify(&changed, policy) {
            Ok(_) => panic!("a changed {pointer} still verifies"),
            Err(BundleError::Failed { at, why }) => {
                assert!(
                    at.contains(&place) || at.starts_with("lot "),
                    "{pointer}: named {at}: {why}"
                )
            }
            // A changed base64 character can make the field undecodable: malformed, also refused.
            Err(BundleError::Malformed { at, .. }) => assert!(at.contains(&place), "{pointer}: named {at}"),
        }
        checked += 1;
    }
    assert!(checked > 40, "only {checked} places were changed");
    // Not JSON at all: malformed, with its line.
    let broken = text.replacen('{', "[", 1);
    assert!(
        matches!(bundle::verify(&broken, policy), Err(BundleError::Malformed { at, .. }) if at.starts_with("line "))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_refuses_a_rewritten_log_and_bad_requests_leave_it_unchanged() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // The log key kept outside the data directory, as an operator would.
    let key = dir.path().join("log.key");
    let key_arg = key.to_str().expect("a UTF-8 path");
    let data = dir.path().join("data");
    let vkey = log_key(&data, &["--log-key", key_arg]);
    let w = Witness::start(dir.path(), "w.example", &vkey);
    let origin = vkey.split('+').next().expect("a name").to_string();
    let note = {
        let mut server = serve(&data, &[&w], &["--log-key", key_arg]);
        let note = settled_checkpoint(&server, 1).await;
        server.stop().expect("stop");
        note
    };
    let cosigned = w.latest(&origin).await.text();
    let size: u64 = note.lines().nth(1).and_then(|s| s.parse().ok()).expect("a size");

    // Bad requests: each refused with its status, the witness's state unchanged.
    let log_note = {
        // The checkpoint as the log signed it (its own signature only).
        let lines: Vec<&str> = note.lines().collect();
        format!("{}\n{}\n{}\n\n{}\n", lines[0], lines[1], lines[2], lines[4])
    };
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"not a request".to_vec(), 400),
        (
            format!("old 0\n\n{}", log_note.replace('\u{2014}', "-")).into_bytes(),
            400,
        ),
        (vec![b'x'; 70 * 1024], 413),
        (format!("old 0\n\n{log_note}").into_bytes(), 409),
        (format!("old {}\n\n{log_note}", size + 1).into_bytes(), 400),
        (
            format!("old 0\n\n{}", log_note.replacen(&origin, "other.example/log", 1)).into_bytes(),
            404,
        ),
        (
            {
                // The log's signature over another root: forged.
                let mut lines: Vec<String> = log_note.lines().map(str::to_string).collect();
                lines[2] = B64.encode([9u8; 32]);
                format!("old {size}\n\n{}\n", lines.join("\n")).into_bytes()
            },
            403,
        ),
    ];
    for (body, want) in cases {
        let reply = w.post(&body).await;
        assert_eq!(
            reply.status,
            want,
            "{}: {}",
            String::from_utf8_lossy(&body[..body.len().min(60)]),
            reply.text()
        );
        if want == 409 {
            assert_eq!(reply.text(), format!("{size}\n"));
            assert_eq!(reply.header("content-type"), Some("text/x.tlog.size"));
        }
        assert_eq!(
            w.latest(&origin).await.text(),
            cosigned,
            "the witness's state is unchanged"
        );
    }

    // The data directory rewritten (the same key, another history): the
    // witness cosigns nothing of it.
    std::fs::remove_dir_all(&data).expect("remove the data directory");
    let server = serve(&data, &[&w], &["--log-key", key_arg]);
    let rewritten = settled_checkpoint(&server, 0).await;
    assert_eq!(rewritten.lines().nth(1), note.lines().nth(1), "the same size");
    assert_ne!(rewritten.lines().nth(2), note.lines().nth(2), "another root");
    assert_eq!(
        w.latest(&origin).await.text(),
        cosigned,
        "the witness kept the first log's checkpoint"
    );
    // Submitted by hand from the size it cosigned: 422, not a consistent extension.
    let own: Vec<&str> = rewritten.lines().collect();
    let body = format!("old {size}\n\n{}\n{}\n{}\n\n{}\n", own[0], own[1], own[2], own[4]);
    assert_eq!(w.post(body.as_bytes()).await.status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_trusts_only_checkpoints_signed_by_the_log_key() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data: PathBuf = dir.path().join("data");
    let mut server = serve(&data, &[], &[]);
    settled_checkpoint(&server, 0).await;
    server.stop().expect("stop");
    // Another key in the data directory: the stored checkpoint is not its.
    std::fs::remove_file(data.join("log.key")).expect("remove the key");
    log_key(&data, &[]);
    let log = dir.path().join("server.log");
    let mut refused = Server::start(ServerOptions {
        data_dir: Some(data.clone()),
        log_file: Some(log.clone()),
        start_timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    });
    if let Ok(s) = &mut refused {
        let _ = s.wait_exit(Duration::from_secs(30));
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(refused.is_err(), "a server started with another key: {text}");
    assert!(text.contains("not signed by the log key"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_gives_checkpoints_and_proofs_that_verify() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let vkey = log_key(dir.path(), &[]);
    let server = serve(dir.path(), &[], &[]);
    let note = settled_checkpoint(&server, 0).await;
    let log = Verifier::parse(&vkey).expect("a vkey");
    let cp = verify_checkpoint(&note, &log, &[], 0).expect("verifies").checkpoint;
    let mut trace = server.trace().await.expect("a trace client");
    let reply = trace
        .get_checkpoint(p::GetCheckpointRequest {})
        .await
        .expect("a checkpoint")
        .into_inner();
    assert_eq!(
        (reply.note.as_str(), reply.tree_size, reply.log_key.as_str()),
        (note.as_str(), cp.size, vkey.as_str())
    );

    // The inclusion of a demo event, by its id: the proof leads to the signed root.
    let history = trace
        .lot_history(p::LotHistoryRequest {
            lot_id: jejak_server::demo::ids::RICE_BAG_LOT.into(),
            as_of: None,
        })
        .await
        .expect("a history")
        .into_inner();
    let event_id = history.entries.first().expect("an event").event_id.clone();
    let proof = trace
        .prove_inclusion(p::ProveInclusionRequest {
            event_id: event_id.clone(),
            tree_size: 0,
        })
        .await
        .expect("an inclusion proof")
        .into_inner();
    let path: Vec<merkle::Hash> = proof
        .hashes
        .iter()
        .map(|h| h.as_slice().try_into().expect("32 bytes"))
        .collect();
    merkle::verify_inclusion(
        proof.leaf_index,
        cp.size,
        &merkle::leaf_hash(&proof.leaf),
        &path,
        &cp.root,
    )
    .expect("the inclusion proof verifies");
    let tlog = jejak_verify::checkpoint::TlogProof::parse(&proof.tlog_proof).expect("a tlog-proof");
    tlog.verify_leaf(&proof.leaf, &cp).expect("the tlog-proof verifies");
    // Consistency of an early size with the checkpoint.
    let early = cp.size / 3;
    let consistency = trace
        .prove_consistency(p::ProveConsistencyRequest {
            first_size: early,
            second_size: 0,
        })
        .await
        .expect("a consistency proof")
        .into_inner();
    let early_root = {
        // The first `early` leaves, from the entry tiles.
        let mut leaves = Vec::new();
        for n in 0..=(early / 256) {
            let width = if n < early / 256 { 256 } else { early % 256 };
            if width == 0 {
                continue;
            }
            let path = if width == 256 {
                format!("/log/tile/entries/{n:03}")
            } else {
                format!("/log/tile/entries/{n:03}.p/{width}")
            };
            let body = server.http_get(&path, &[]).await.expect("entries").body;
            leaves.extend(leaf_hashes(&body));
        }
        merkle::root(&leaves)
    };
    let path: Vec<merkle::Hash> = consistency
        .hashes
        .iter()
        .map(|h| h.as_slice().try_into().expect("32 bytes"))
        .collect();
    merkle::verify_consistency(early, cp.size, &path, &early_root, &cp.root).expect("consistent");
    // Bad questions: a size beyond the log, an unknown event; inclusion needs a token.
    let too_big = trace
        .prove_consistency(p::ProveConsistencyRequest {
            first_size: 1,
            second_size: cp.size + 1000,
        })
        .await
        .expect_err("beyond the log");
    assert_eq!(too_big.code(), tonic::Code::InvalidArgument, "{too_big:?}");
    let unknown = trace
        .prove_inclusion(p::ProveInclusionRequest {
            event_id: "no-such-event".into(),
            tree_size: 0,
        })
        .await
        .expect_err("an unknown event");
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
    // A tree too small to hold the event is the caller's mistake, not a
    // server that cannot answer (a client would retry UNAVAILABLE forever).
    assert!(proof.leaf_index > 0, "the demo's master data comes first");
    let small = trace
        .prove_inclusion(p::ProveInclusionRequest {
            event_id: event_id.clone(),
            tree_size: proof.leaf_index,
        })
        .await
        .expect_err("a tree without the event");
    assert_eq!(small.code(), tonic::Code::InvalidArgument, "{small:?}");
    assert!(small.message().contains("larger tree"), "{small:?}");
    let mut public =
        jejak_proto::v1::trace_service_client::TraceServiceClient::new(server.conn(None).await.expect("a connection"));
    let refused = public
        .prove_inclusion(p::ProveInclusionRequest { event_id, tree_size: 0 })
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats_a_following_projector_builds_the_same_tree_and_its_bundles_verify() {
    let nats = jejak_testkit::Nats::start().expect("start nats-server");
    let signer = Server::start(ServerOptions {
        demo: true,
        nats: Some(nats.url()),
        ..Default::default()
    })
    .expect("start jejak serve --nats");
    let note = settled_checkpoint(&signer, 0).await;
    let vkey = signer
        .http_get("/log/key", &[])
        .await
        .expect("the key")
        .text()
        .trim()
        .to_string();
    let follower = Server::start(ServerOptions {
        role: jejak_testkit::Role::Projector,
        nats: Some(nats.url()),
        extra_args: vec!["--log-vkey".into(), vkey.clone()],
        ..Default::default()
    })
    .expect("start a following projector");
    // The follower serves the signer's checkpoint, which its own tree matches.
    let followed = settled_checkpoint(&follower, 0).await;
    assert_eq!(followed, note);
    let size: u64 = note.lines().nth(1).and_then(|s| s.parse().ok()).expect("a size");
    let last = format!("/log/tile/0/{:03}.p/{}", size / 256, size % 256);
    let (a, b) = (
        signer.http_get(&last, &[]).await.expect("a tile"),
        follower.http_get(&last, &[]).await.expect("a tile"),
    );
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(a.body, b.body, "both trees hold the same leaves");
    let path = format!(
        "/01/{}/10/{}/21/{}?linkType=jejak:provenanceBundle",
        jejak_server::demo::ids::PREMIUM_RICE_GTIN,
        jejak_server::demo::ids::RICE_BAG_LOT,
        jejak_server::demo::ids::RICE_BAG_SERIAL
    );
    let reply = follower.http_get(&path, &[]).await.expect("a bundle");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let policy = Policy {
        log: Verifier::parse(&vkey).expect("a vkey"),
        witnesses: Vec::new(),
        quorum: 0,
    };
    let report = bundle::verify(&reply.text(), &policy).expect("the follower's bundle verifies");
    assert!(
        report.proven.iter().any(|l| l.contains("match the claims")),
        "{report:?}"
    );
}
