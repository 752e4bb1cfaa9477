//! `jejak witness`: a C2SP tlog-witness. It cosigns a log's checkpoint only
//! when it is signed by the log's key and is a consistent extension of the
//! last checkpoint it cosigned for that log, so a log that rewrites or forks
//! its history cannot gather cosignatures for it. A cooperatives office, a
//! buyers' association and a bank can each run one.
//!
//! `POST /add-checkpoint` (c2sp.org/tlog-witness) and
//! `GET /<hex sha256 of origin>/checkpoint`. The last cosigned checkpoint of
//! each log is kept in a state file, replaced atomically before the answer
//! (check and update under one lock).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use http::StatusCode;
use jejak_verify::checkpoint::{self, Checkpoint};
use jejak_verify::merkle::{self, Hash};
use jejak_verify::note::{Note, NoteError, Signer, Verifier, COSIGNATURE_V1, ED25519};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// Largest add-checkpoint request accepted.
pub const MAX_REQUEST: usize = 64 * 1024;

/// How a witness runs.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    /// Its cosigning key (created when missing, named `name`).
    pub key: PathBuf,
    pub name: Option<String>,
    /// The logs it witnesses: their verifier keys (the name is the origin).
    pub logs: Vec<Verifier>,
    /// Where the last cosigned checkpoints are kept.
    pub state: PathBuf,
    pub clock: jejak_domain::SharedClock,
}

impl WitnessConfig {
    /// The configuration `jejak witness` flags give: log keys as vkeys, the
    /// state beside the key unless given.
    pub fn from_flags(
        key: PathBuf,
        name: Option<String>,
        log_keys: &[String],
        state: Option<PathBuf>,
    ) -> anyhow::Result<WitnessConfig> {
        let logs = log_keys
            .iter()
            .map(|k| Verifier::parse(k).map_err(|e| anyhow::anyhow!("--log-key {k}: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(WitnessConfig {
            state: state.unwrap_or_else(|| key.with_extension("state")),
            key,
            name,
            logs,
            clock: jejak_domain::system_clock(),
        })
    }
}

/// `jejak witness`: listens on `listen` and serves until the process is asked to stop.
pub async fn serve(
    key: PathBuf,
    name: Option<String>,
    log_keys: &[String],
    state: Option<PathBuf>,
    listen: &str,
) -> anyhow::Result<()> {
    let config = WitnessConfig::from_flags(key, name, log_keys, state)?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    run(config, listener, crate::shutdown_signal()).await
}

/// The last cosigned checkpoint of one log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Latest {
    size: u64,
    root: String,
    /// The log's checkpoint with this witness's cosignature.
    note: String,
}

struct Witness {
    signer: Signer,
    logs: Vec<Verifier>,
    state_file: PathBuf,
    state: tokio::sync::Mutex<BTreeMap<String, Latest>>,
    clock: jejak_domain::SharedClock,
}

/// Reads the witness's key, or creates a cosignature key there.
pub fn load_or_create_key(path: &Path, name: Option<&str>) -> anyhow::Result<Signer> {
    crate::tlog::load_or_create_signer(path, COSIGNATURE_V1, name, "jejak.local/witness", "the witness's key")
}

fn load_state(path: &Path) -> anyhow::Result<BTreeMap<String, Latest>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("{} is not a witness state file", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// Replaces the state file: a new file synced, renamed over the old, and
/// the directory synced.
fn store_state(path: &Path, state: &BTreeMap<String, Latest>) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Serves the witness until `shutdown`; prints its verifier key.
pub async fn run(
    config: WitnessConfig,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    crate::files::owner_only_from_now_on();
    anyhow::ensure!(!config.logs.is_empty(), "give the log keys to witness with --log-key");
    for l in &config.logs {
        anyhow::ensure!(
            l.kind() == ED25519,
            "log key {} is not an Ed25519 key (type 0x01)",
            l.vkey()
        );
    }
    let signer = load_or_create_key(&config.key, config.name.as_deref())?;
    let state = load_state(&config.state)?;
    let vkey = signer.verifier().vkey();
    let witness = Arc::new(Witness {
        signer,
        logs: config.logs,
        state_file: config.state,
        state: tokio::sync::Mutex::new(state),
        clock: config.clock,
    });
    let router = axum::Router::new()
        .route("/add-checkpoint", axum::routing::post(add_checkpoint))
        .route("/{origin}/checkpoint", axum::routing::get(latest))
        .with_state(witness);
    let addr = listener.local_addr()?;
    println!("jejak witness {vkey} listening on http://{addr}");
    tracing::info!(%addr, vkey, "witness serving");
    tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(tonic::service::Routes::from(router))
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), shutdown)
        .await
        .context("serve the witness")
}

/// A witness's answers are about its state now: never cached.
fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> http::Response<Body> {
    crate::tlog::answer(status, content_type, crate::tlog::NO_STORE, body)
}

fn refuse(status: StatusCode, why: impl std::fmt::Display) -> http::Response<Body> {
    reply(status, "text/plain; charset=utf-8", format!("{why}\n"))
}

/// An add-checkpoint request: old size, consistency proof, checkpoint note.
#[derive(Debug)]
struct Request {
    old: u64,
    proof: Vec<Hash>,
    note: String,
}

fn parse_request(body: &str) -> Result<Request, String> {
    let (head, note) = body.split_once("\n\n").ok_or("no blank line before the checkpoint")?;
    let mut lines = head.split('\n').enumerate().map(|(i, l)| (i + 1, l));
    let old = lines
        .next()
        .and_then(|(_, l)| l.strip_prefix("old "))
        .and_then(checkpoint::parse_decimal)
        .ok_or("the first line is not \"old <size>\"")?;
    let proof = checkpoint::parse_hashes(lines)?;
    Ok(Request {
        old,
        proof,
        note: note.to_string(),
    })
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> http::Response<Body> {
    if body.len() > MAX_REQUEST {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("larger than {MAX_REQUEST} bytes"),
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "not UTF-8");
    };
    let req = match parse_request(text) {
        Ok(r) => r,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let note = match Note::parse(&req.note) {
        Ok(n) => n,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let cp = match Checkpoint::parse(&note.text) {
        Ok(c) => c,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let keys: Vec<Verifier> = w.logs.iter().filter(|l| l.name() == cp.origin).cloned().collect();
    if keys.is_empty() {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("this witness does not witness the log {:?}", cp.origin),
        );
    }
    match note.verify(&keys) {
        Ok(_) => {}
        Err(e @ (NoteError::BadSignature { .. } | NoteError::Unsigned { .. })) => {
            return refuse(StatusCode::FORBIDDEN, e)
        }
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    }
    if req.old > cp.size {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("old size {} is larger than the checkpoint's {}", req.old, cp.size),
        );
    }
    // Check and update under one lock: no two requests interleave.
    let mut state = w.state.lock().await;
    let latest = state.get(&cp.origin);
    let latest_size = latest.map_or(0, |l| l.size);
    if req.old != latest_size {
        return reply(StatusCode::CONFLICT, "text/x.tlog.size", format!("{latest_size}\n"));
    }
    let unprocessable = |why: String| refuse(StatusCode::UNPROCESSABLE_ENTITY, why);
    if cp.size == 0 && cp.root != merkle::root(&[]) {
        return unprocessable("a checkpoint of size 0 must have the empty tree's root".into());
    }
    match latest {
        None => {
            if !req.proof.is_empty() {
                return unprocessable("a proof from size 0 must be empty".into());
            }
        }
        Some(l) => {
            let old_root = B64.decode(&l.root).unwrap_or_default();
            if req.old == cp.size {
                if old_root != cp.root || !req.proof.is_empty() {
                    return unprocessable(format!(
                        "tree size {} was cosigned with another root: the log forked",
                        cp.size
                    ));
                }
            } else if let Err(e) = merkle::verify_consistency(req.old, cp.size, &req.proof, &old_root, &cp.root) {
                tracing::warn!(origin = %cp.origin, old = req.old, size = cp.size, error = %e, "an inconsistent checkpoint: the log was rewritten or forked");
                return unprocessable(format!(
                    "not a consistent extension of tree size {} (the log was rewritten or forked): {e}",
                    req.old
                ));
            }
        }
    }
    let now = w.clock.now().seconds().max(1) as u64;
    let line = w.signer.sign(&note.text, now);
    // Kept: the log's signatures and this cosignature.
    let mut kept = note.text.clone();
    kept.push('\n');
    for s in note
        .signatures
        .iter()
        .filter(|s| keys.iter().any(|k| k.name() == s.name))
    {
        kept.push_str(&s.line());
    }
    kept.push_str(&line);
    let mut next = state.clone();
    next.insert(
        cp.origin.clone(),
        Latest {
            size: cp.size,
            root: B64.encode(cp.root),
            note: kept,
        },
    );
    let (path, to_store) = (w.state_file.clone(), next.clone());
    match tokio::task::spawn_blocking(move || store_state(&path, &to_store)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the witness state could not be written");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "the witness cannot keep its state now");
        }
        Err(_) => return refuse(StatusCode::SERVICE_UNAVAILABLE, "the witness cannot keep its state now"),
    }
    *state = next;
    tracing::info!(origin = %cp.origin, size = cp.size, "cosigned");
    reply(StatusCode::OK, "text/plain; charset=utf-8", line)
}

async fn latest(State(w): State<Arc<Witness>>, UrlPath(origin_hash): UrlPath<String>) -> http::Response<Body> {
    let state = w.state.lock().await;
    let found = state
        .iter()
        .find(|(origin, _)| hex::encode(Sha256::digest(origin.as_bytes())) == origin_hash);
    match found {
        Some((_, l)) => reply(StatusCode::OK, "text/plain; charset=utf-8", l.note.clone()),
        None => refuse(
            StatusCode::NOT_FOUND,
            "this witness has cosigned no checkpoint of that log",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_as_the_protocol_writes_them() {
        let r = parse_request("old 0\n\norigin\n1\nAAAA\n\n\u{2014} a b\n").unwrap();
        assert_eq!((r.old, r.proof.len()), (0, 0));
        assert!(r.note.starts_with("origin\n"));
        let h = B64.encode([7u8; 32]);
        let r = parse_request(&format!("old 5\n{h}\n{h}\n\nnote")).unwrap();
        assert_eq!((r.old, r.proof.len()), (5, 2));
        for bad in [
            "old 05\n\nx",
            "old\n\nx",
            "new 1\n\nx",
            "old 1\nnot-base64\n\nx",
            "old 1",
        ] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
        let too_long = format!("old 1\n{}\nnote", format!("{h}\n").repeat(64));
        assert!(parse_request(&too_long).unwrap_err().contains("63"));
    }
}
