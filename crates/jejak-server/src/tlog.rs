//! The transparency log as a server runs it: the log's signing key, the
//! publisher that signs a checkpoint after the tree grows and gathers the
//! witnesses' cosignatures (c2sp.org/tlog-witness), the start-up check
//! that trusts only checkpoints signed by the key, and the C2SP tiles under
//! `/log/` (public: leaves are commitments that reveal nothing).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full};
use jejak_log::tlog::{Published, Transparency, TreeStore};
use jejak_verify::checkpoint::Checkpoint;
use jejak_verify::note::{self, Note, Signer, Verifier, COSIGNATURE_V1, ED25519};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The path prefix of the tiles, checkpoint and key.
pub const PREFIX: &str = "/log/";

/// Reads the log's signing key from `path`, or creates it there (owner-only)
/// when the file does not exist: a new Ed25519 key from the OS's random
/// source, named `origin` (or a name of its own).
pub fn load_or_create_key(path: &Path, origin: Option<&str>) -> anyhow::Result<Signer> {
    load_or_create_signer(path, ED25519, origin, "jejak.local/log", "the transparency log's key")
}

/// Reads a signing key of signature type `kind` from `path`, or creates one
/// there (owner-only) from the OS's random source, named `name` or
/// `<prefix>/<8 random hex digits>`.
pub fn load_or_create_signer(
    path: &Path,
    kind: u8,
    name: Option<&str>,
    prefix: &str,
    what: &str,
) -> anyhow::Result<Signer> {
    let random =
        |buf: &mut [u8]| getrandom::fill(buf).map_err(|e| anyhow::anyhow!("the OS's random source failed: {e}"));
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let signer = Signer::parse(&text).with_context(|| format!("read {what} {}", path.display()))?;
            if signer.verifier().kind() != kind {
                bail!("{} is not {what} (signature type 0x{kind:02x})", path.display());
            }
            Ok(signer)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            random(&mut seed)?;
            let name = match name {
                Some(n) => n.to_string(),
                None => {
                    let mut tag = [0u8; 4];
                    random(&mut tag)?;
                    format!("{prefix}/{}", hex::encode(tag))
                }
            };
            let signer = Signer::from_seed(&name, kind, seed).with_context(|| format!("make {what}"))?;
            write_secret(path, &signer.to_text())?;
            tracing::info!(path = %path.display(), vkey = %signer.verifier().vkey(), "created {what}");
            Ok(signer)
        }
        Err(e) => Err(e).with_context(|| format!("read {what} {}", path.display())),
    }
}

/// `jejak log-key`: the verifier key of the log key in `data_dir` (or at
/// `key`), created when missing.
pub fn log_key(data_dir: &Path, key: Option<std::path::PathBuf>, origin: Option<&str>) -> anyhow::Result<Verifier> {
    crate::files::owner_only_from_now_on();
    let config = TlogConfig {
        key,
        ..Default::default()
    };
    Ok(load_or_create_key(&config.key_path(data_dir), origin)?.verifier())
}

/// `jejak log-key`: prints the verifier key.
pub fn print_log_key(
    data_dir: &Path,
    key: Option<std::path::PathBuf>,
    origin: Option<&str>,
    vkey_out: Option<&Path>,
) -> anyhow::Result<()> {
    let vkey = log_key(data_dir, key, origin)?.vkey();
    if let Some(path) = vkey_out {
        // Public: readable by the projectors that follow, unlike the key.
        std::fs::write(path, format!("{vkey}\n")).with_context(|| format!("write {}", path.display()))?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .with_context(|| format!("make {} readable", path.display()))?;
    }
    println!("{vkey}");
    Ok(())
}

/// Writes a new owner-only file (never over an existing one).
pub fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("write {}", path.display()))
}

/// A witness the log submits its checkpoints to: `URL=VKEY`.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    pub url: String,
    pub key: Verifier,
}

impl std::str::FromStr for WitnessConfig {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (url, vkey) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: a witness is URL=VKEY"))?;
        if !url.starts_with("http://") {
            return Err(format!(
                "{url:?}: witnesses are reached over http:// (everything exchanged is signed)"
            ));
        }
        let key = Verifier::parse(vkey).map_err(|e| format!("witness {url}: {e}"))?;
        if key.kind() != COSIGNATURE_V1 {
            return Err(format!("witness {url}: its key must be a cosignature key (type 0x04)"));
        }
        Ok(WitnessConfig {
            url: url.trim_end_matches('/').to_string(),
            key,
        })
    }
}

/// Checks the stored checkpoint at start: it must be signed by `key`, and
/// the tree (extended with the log's events) must have its root at its
/// size. A data directory altered without the key fails here.
pub fn check_at_start(tree: &TreeStore, t: &Transparency) -> anyhow::Result<Option<Published>> {
    let Some((note, at)) = tree.checkpoint().context("read the stored checkpoint")? else {
        return Ok(None);
    };
    let published = t.parse_published(note, at).map_err(|e| {
        anyhow::anyhow!(
            "{e}; the data directory's checkpoint is not signed by the log key {} (another key, or an altered directory)",
            t.log_key.vkey()
        )
    })?;
    let cp = &published.checkpoint;
    if tree.size() < cp.size {
        bail!(
            "the event log has {} events, but the checkpoint signed by this log's key covers {}: events were removed",
            tree.size(),
            cp.size
        );
    }
    let root = tree.root(cp.size).context("compute the tree's root")?;
    if root != cp.root {
        bail!(
            "the event log no longer matches the checkpoint its key signed at tree size {}: events at or before it were changed",
            cp.size
        );
    }
    Ok(Some(published))
}

type Client = hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// One witness as the publisher talks to it.
struct Witness {
    config: WitnessConfig,
    /// The size of the last checkpoint it cosigned, as far as known.
    cosigned: AtomicU64,
}

/// How long a witness has to answer.
const WITNESS_TIMEOUT: Duration = Duration::from_secs(10);

impl Witness {
    /// Submits a checkpoint; the witness's cosignature lines.
    async fn cosign(
        &self,
        client: &Client,
        tree: &TreeStore,
        text: &str,
        note: &str,
        size: u64,
    ) -> Result<String, String> {
        let mut old = self.cosigned.load(Ordering::Relaxed);
        for _ in 0..3 {
            if old > size {
                return Err(format!(
                    "it has cosigned tree size {old}, larger than this log's {size}: the log was rolled back"
                ));
            }
            let proof = tree.consistency_proof(old, size).map_err(|e| e.to_string())?;
            let mut body = format!("old {old}\n");
            for h in &proof {
                body.push_str(&base64_encode(h));
                body.push('\n');
            }
            body.push('\n');
            body.push_str(note);
            let request = http::Request::post(format!("{}/add-checkpoint", self.config.url))
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| e.to_string())?;
            let response = tokio::time::timeout(WITNESS_TIMEOUT, client.request(request))
                .await
                .map_err(|_| format!("no answer within {WITNESS_TIMEOUT:?}"))?
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let bytes = tokio::time::timeout(WITNESS_TIMEOUT, response.into_body().collect())
                .await
                .map_err(|_| "the answer did not arrive in time".to_string())?
                .map_err(|e| e.to_string())?
                .to_bytes();
            let body = String::from_utf8_lossy(&bytes);
            match status {
                StatusCode::OK => {
                    let sigs = note::parse_signatures(&body).map_err(|e| e.to_string())?;
                    let mine: Vec<_> = sigs.into_iter().filter(|s| s.name == self.config.key.name()).collect();
                    let lines: String = mine.iter().map(|s| s.line()).collect();
                    Note {
                        text: text.to_string(),
                        signatures: mine,
                    }
                    .verify(std::slice::from_ref(&self.config.key))
                    .map_err(|e| format!("its cosignature: {e}"))?;
                    self.cosigned.store(size, Ordering::Relaxed);
                    return Ok(lines);
                }
                StatusCode::CONFLICT => {
                    old = body
                        .trim()
                        .parse()
                        .map_err(|_| format!("409 without a tree size: {body:?}"))?;
                }
                other => return Err(format!("{other}: {}", body.trim())),
            }
        }
        Err("its tree size kept changing".into())
    }
}

fn base64_encode(h: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h)
}

/// The shortest time between two checkpoints: an append is covered by a
/// signed checkpoint within this (plus the witnesses' answers).
pub const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// Signs and publishes checkpoints as the tree grows.
pub struct Publisher {
    pub tree: Arc<TreeStore>,
    pub signer: Signer,
    pub witnesses: Vec<WitnessConfig>,
    pub quorum: usize,
    pub published: watch::Sender<Option<Arc<Published>>>,
    pub clock: jejak_domain::SharedClock,
    /// On NATS: where the other projectors read the checkpoints from.
    pub relay: Option<jejak_log::JetStreamLog>,
}

impl Publisher {
    pub fn new(
        config: &TlogConfig,
        tree: Arc<TreeStore>,
        signer: Signer,
        published: watch::Sender<Option<Arc<Published>>>,
        clock: jejak_domain::SharedClock,
        relay: Option<jejak_log::JetStreamLog>,
    ) -> Publisher {
        Publisher {
            tree,
            signer,
            witnesses: config.witnesses.clone(),
            quorum: config.quorum(),
            published,
            clock,
            relay,
        }
    }

    /// Runs [`Publisher::run`] on a task of its own.
    pub fn spawn(self, grown: watch::Receiver<u64>, cancel: CancellationToken) {
        tokio::spawn(async move {
            if let Err(e) = self.run(grown, cancel).await {
                tracing::error!(error = %format!("{e:#}"), "the checkpoint publisher stopped");
            }
        });
    }

    /// Publishes a checkpoint for every size `grown` reports beyond the
    /// last published one, until cancelled.
    pub async fn run(self, mut grown: watch::Receiver<u64>, cancel: CancellationToken) -> anyhow::Result<()> {
        let client: Client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let witnesses: Vec<Witness> = self
            .witnesses
            .iter()
            .map(|c| Witness {
                config: c.clone(),
                cosigned: AtomicU64::new(0),
            })
            .collect();
        let mut last_signed: Option<tokio::time::Instant> = None;
        loop {
            // Under load, one checkpoint per interval covers every append
            // since the last: none waits longer than the interval.
            if let Some(at) = last_signed {
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep_until(at + MIN_CHECKPOINT_INTERVAL) => {}
                }
            }
            let size = *grown.borrow_and_update();
            let last = self.published.borrow().as_ref().map(|p| p.checkpoint.size);
            if size > 0 && last.is_none_or(|l| size > l) {
                last_signed = Some(tokio::time::Instant::now());
                if let Err(e) = self.publish(&client, &witnesses, size).await {
                    tracing::error!(error = %format!("{e:#}"), size, "publishing a checkpoint failed");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                changed = grown.changed() => if changed.is_err() { return Ok(()) },
            }
        }
    }

    async fn publish(&self, client: &Client, witnesses: &[Witness], size: u64) -> anyhow::Result<()> {
        let tree = self.tree.clone();
        let root = tokio::task::spawn_blocking(move || tree.root(size)).await??;
        let text = Checkpoint {
            origin: self.signer.name().to_string(),
            size,
            root,
            extensions: Vec::new(),
        }
        .text();
        let signed_at = self.clock.now().seconds();
        let note = format!("{text}\n{}", self.signer.sign(&text, 0));
        let answers = futures_util::future::join_all(
            witnesses
                .iter()
                .map(|w| w.cosign(client, &self.tree, &text, &note, size)),
        )
        .await;
        let mut full = note.clone();
        let mut cosigners = Vec::new();
        for (w, answer) in witnesses.iter().zip(answers) {
            match answer {
                Ok(lines) => {
                    full.push_str(&lines);
                    cosigners.push(w.config.key.name().to_string());
                }
                Err(e) => tracing::warn!(witness = %w.config.url, size, error = %e, "a witness did not cosign"),
            }
        }
        if cosigners.len() < self.quorum {
            tracing::warn!(
                size,
                cosigned = cosigners.len(),
                quorum = self.quorum,
                "the checkpoint has fewer cosignatures than the quorum; published without it"
            );
        }
        let (tree, stored) = (self.tree.clone(), full.clone());
        tokio::task::spawn_blocking(move || tree.set_checkpoint(&stored, signed_at)).await??;
        if let Some(relay) = &self.relay {
            if let Err(e) = relay.publish_checkpoint(&full).await {
                tracing::warn!(error = %e, size, "the checkpoint could not be published on NATS");
            }
        }
        self.published.send_replace(Some(Arc::new(Published {
            note: full,
            checkpoint: Checkpoint::parse(&text)?,
            cosigners,
            signed_at,
        })));
        crate::metrics::metrics()
            .checkpoint_size
            .set(i64::try_from(size).unwrap_or(i64::MAX));
        Ok(())
    }
}

/// How a server runs its transparency log.
#[derive(Debug, Clone, Default)]
pub struct TlogConfig {
    /// The log's signing key; default `<data dir>/log.key`, created at first start.
    pub key: Option<std::path::PathBuf>,
    /// The origin (key name) a key created at first start gets.
    pub origin: Option<String>,
    pub witnesses: Vec<WitnessConfig>,
    /// Cosignatures a checkpoint should gather (default: every witness's).
    pub quorum: Option<usize>,
    /// On NATS: this projector follows the checkpoints another one signs
    /// (it has no key of its own) and checks them with this key.
    pub follow: Option<Verifier>,
    /// On NATS: this process signs checkpoints (`jejak serve --nats`, or a
    /// projector given `--log-key`). The embedded server always does.
    pub sign: bool,
    /// The embedded server does not extend the tree while it serves (it
    /// catches up at the next start): only to measure what following the
    /// log costs captures (`jejak-bench tree-cost`).
    pub hold: bool,
}

impl TlogConfig {
    pub fn key_path(&self, data_dir: &Path) -> std::path::PathBuf {
        self.key.clone().unwrap_or_else(|| data_dir.join("log.key"))
    }

    pub fn quorum(&self) -> usize {
        self.quorum.unwrap_or(self.witnesses.len())
    }
}

/// Opens the embedded server's transparency log tree (`tlog/` in the data
/// directory).
pub fn open_tree(data_dir: &Path) -> anyhow::Result<Arc<TreeStore>> {
    let tree_dir = data_dir.join("tlog");
    let tree =
        TreeStore::open(&tree_dir).with_context(|| format!("open the transparency log in {}", tree_dir.display()))?;
    Ok(Arc::new(tree))
}

/// Opens the embedded server's transparency log: the key, the tree
/// (checked against the log, extended by the events it lacks), the stored
/// checkpoint (checked against the key and the tree); then keeps the tree
/// up with the log and publishes checkpoints until `cancel`.
pub async fn start_embedded<L: jejak_log::EventLog + Clone>(
    data_dir: &Path,
    config: &TlogConfig,
    (log, tree): (&L, Arc<TreeStore>),
    clock: jejak_domain::SharedClock,
    cancel: &CancellationToken,
) -> anyhow::Result<Transparency> {
    let signer = load_or_create_key(&config.key_path(data_dir), config.origin.as_deref())?;
    {
        let (log, tree) = (log.clone(), tree.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            if let Some(why) = jejak_engine::tlog::check_tree(&log, &tree)? {
                tracing::warn!(reason = %why, "rebuilding the transparency log's tree from the event log");
            }
            let before = tree.size();
            let size = jejak_engine::tlog::catch_up(&log, &tree, log.durable_position())?;
            tracing::info!(size, added = size - before, "transparency log tree ready");
            Ok(())
        })
        .await
        .context("transparency log task")??
    };
    let (published_tx, published) = watch::channel(None);
    let transparency = Transparency {
        tree: tree.clone(),
        log_key: signer.verifier(),
        witnesses: config.witnesses.iter().map(|w| w.key.clone()).collect(),
        quorum: config.quorum(),
        published,
    };
    if let Some(p) = check_at_start(&tree, &transparency)? {
        published_tx.send_replace(Some(Arc::new(p)));
    }
    let (grown_tx, grown) = watch::channel(tree.size());
    if config.hold {
        tracing::warn!("the transparency log's tree is held: it is not extended until the next start");
    } else {
        let (log, tree, cancel) = (log.clone(), tree.clone(), cancel.clone());
        std::thread::Builder::new()
            .name("transparency log".into())
            .spawn(move || {
                // Captures come first: this thread yields the cores to them
                // and catches up when they pause.
                crate::files::lower_priority();
                if let Err(e) = jejak_engine::tlog::keep(&log, &tree, &grown_tx, &|| cancel.is_cancelled()) {
                    tracing::error!(error = %format!("{e:#}"), "the transparency log stopped following the event log");
                }
            })
            .context("start the transparency log's thread")?;
    }
    Publisher::new(config, tree, signer, published_tx, clock, None).spawn(grown, cancel.clone());
    Ok(transparency)
}

/// Opens a NATS projector's transparency log: the tree (in `dir`), checked
/// against the stream and returned for the projector to extend as it reads
/// the stream (`TreeFeed`); then either signs and publishes checkpoints
/// (with a key: the one signer) or follows the signer's checkpoints from
/// the stream, accepting each only when it verifies with the log's key and
/// this projector's own tree has its root.
pub async fn start_nats(
    dir: &Path,
    config: &TlogConfig,
    log: &jejak_log::JetStreamLog,
    clock: jejak_domain::SharedClock,
    cancel: &CancellationToken,
) -> anyhow::Result<(Option<Transparency>, jejak_engine::distributed::TreeFeed)> {
    let tree_dir = dir.join("tlog");
    let tree = tokio::task::spawn_blocking(move || TreeStore::open(&tree_dir))
        .await
        .context("transparency log task")??;
    let tree = Arc::new(tree);
    jejak_engine::distributed::check_tree(log, &tree).await?;
    let (grown_tx, grown) = watch::channel(tree.size());
    let feed = jejak_engine::distributed::TreeFeed {
        tree: tree.clone(),
        grown: grown_tx,
    };
    let (published_tx, published) = watch::channel(None);
    let witnesses: Vec<Verifier> = config.witnesses.iter().map(|w| w.key.clone()).collect();
    if let Some(log_key) = config.follow.clone() {
        let transparency = Transparency {
            tree: tree.clone(),
            log_key: log_key.clone(),
            witnesses,
            quorum: config.quorum(),
            published,
        };
        let (log, t, cancel) = (log.clone(), transparency.clone(), cancel.clone());
        tokio::spawn(follow_checkpoints(log, t, published_tx, grown, cancel));
        return Ok((Some(transparency), feed));
    }
    if !config.sign {
        tracing::info!(
            "no --log-key or --log-vkey: this projector builds the transparency log's tree but serves no checkpoint"
        );
        return Ok((None, feed));
    }
    let signer = load_or_create_key(&config.key_path(dir), config.origin.as_deref())?;
    let transparency = Transparency {
        tree: tree.clone(),
        log_key: signer.verifier(),
        witnesses,
        quorum: config.quorum(),
        published,
    };
    if let Some((note, at)) = tree.checkpoint()? {
        published_tx.send_replace(Some(Arc::new(transparency.parse_published(note, at)?)));
    }
    Publisher::new(config, tree, signer, published_tx, clock, Some(log.clone())).spawn(grown, cancel.clone());
    Ok((Some(transparency), feed))
}

/// Takes the signer's checkpoints from the stream: each must verify with
/// the log's key, and this projector's tree must have its root at its size
/// (once the tree has grown that far).
async fn follow_checkpoints(
    log: jejak_log::JetStreamLog,
    t: Transparency,
    published: watch::Sender<Option<Arc<Published>>>,
    mut grown: watch::Receiver<u64>,
    cancel: CancellationToken,
) {
    let mut last = String::new();
    loop {
        match log.last_checkpoint().await {
            Ok(Some(note)) if note != last => match t.parse_published(note.clone(), 0) {
                Ok(p) => {
                    let size = p.checkpoint.size;
                    let reached = tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = grown.wait_for(|s| *s >= size) => r.is_ok(),
                    };
                    match reached.then(|| t.tree.root(size)) {
                        Some(Ok(root)) if root == p.checkpoint.root => {
                            published.send_replace(Some(Arc::new(Published {
                                signed_at: jejak_domain::Time::now().seconds(),
                                ..p
                            })));
                            last = note;
                        }
                        Some(Ok(_)) => {
                            tracing::error!(
                                size,
                                "the signer's checkpoint has another root than this projector's tree"
                            );
                            last = note;
                        }
                        _ => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "a checkpoint on the stream does not verify with the log's key");
                    last = note;
                }
            },
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "read the last checkpoint"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// `/log/checkpoint`, `/log/key` and `/log/tile/…`.
pub fn routes(t: Transparency) -> axum::Router {
    axum::Router::new()
        .route("/log/checkpoint", axum::routing::get(checkpoint))
        .route("/log/key", axum::routing::get(key))
        .route("/log/tile/{*tile}", axum::routing::get(tile))
        .with_state(t)
}

pub(crate) fn answer(
    status: StatusCode,
    content_type: &'static str,
    cache: &'static str,
    body: impl Into<Body>,
) -> http::Response<Body> {
    let mut r = http::Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

const TEXT: &str = "text/plain; charset=utf-8";
pub(crate) const NO_STORE: &str = "no-store";

fn not_found(what: String) -> http::Response<Body> {
    answer(StatusCode::NOT_FOUND, TEXT, NO_STORE, format!("{what}\n"))
}

async fn checkpoint(State(t): State<Transparency>) -> http::Response<Body> {
    match t.published() {
        Some(p) => answer(StatusCode::OK, TEXT, "public, max-age=2", p.note.clone()),
        None => not_found("no checkpoint has been published yet".into()),
    }
}

async fn key(State(t): State<Transparency>) -> http::Response<Body> {
    answer(
        StatusCode::OK,
        TEXT,
        "public, max-age=300",
        format!("{}\n", t.log_key.vkey()),
    )
}

/// A tile path after `/log/tile/`: `entries` or a level, the index in
/// 3-digit elements (`x001/x234/067`), and `.p/W` for a partial tile.
#[derive(Debug, PartialEq, Eq)]
pub struct TilePath {
    /// None for an entry bundle.
    pub level: Option<u8>,
    pub index: u64,
    pub width: u64,
}

/// Parses a tile path; None when it is not one.
pub fn parse_tile(path: &str) -> Option<TilePath> {
    let mut segments: Vec<&str> = path.split('/').collect();
    let level = match segments.first()? {
        &"entries" => None,
        l if (l.len() == 1 || !l.starts_with('0')) && l.bytes().all(|b| b.is_ascii_digit()) => {
            Some(l.parse::<u8>().ok().filter(|l| *l <= 63)?)
        }
        _ => return None,
    };
    segments.remove(0);
    let mut width = 256;
    if segments.len() >= 2 && segments[segments.len() - 2].ends_with(".p") {
        let w = segments.pop()?;
        if w.is_empty() || w.starts_with('0') || !w.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        width = w.parse::<u64>().ok().filter(|w| (1..=255).contains(w))?;
        let last = segments.len() - 1;
        segments[last] = segments[last].strip_suffix(".p")?;
    }
    let (last, rest) = segments.split_last()?;
    let mut index: u64 = 0;
    for (i, s) in rest.iter().chain(std::iter::once(last)).enumerate() {
        let digits = if i < rest.len() { s.strip_prefix('x')? } else { s };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits.parse::<u64>().ok()?)?;
    }
    Some(TilePath { level, index, width })
}

async fn tile(State(t): State<Transparency>, UrlPath(path): UrlPath<String>) -> http::Response<Body> {
    let Some(tp) = parse_tile(&path) else {
        return not_found(format!(
            "{path:?} is not a tile path (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])"
        ));
    };
    let tree = t.tree.clone();
    let found = tokio::task::spawn_blocking(move || match tp.level {
        Some(level) => tree.tile(level, tp.index, tp.width),
        None => tree.entries(tp.index, tp.width),
    })
    .await;
    match found {
        Ok(Ok(Some(bytes))) => answer(
            StatusCode::OK,
            "application/octet-stream",
            "public, max-age=31536000, immutable",
            bytes,
        ),
        Ok(Ok(None)) => not_found(format!("the log has no tile {path}")),
        Ok(Err(e)) => {
            tracing::error!(error = %e, path, "reading a tile failed");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                NO_STORE,
                "the tile could not be read\n",
            )
        }
        Err(_) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            TEXT,
            NO_STORE,
            "the tile could not be read\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_parse_as_c2sp_writes_them() {
        let t = |level, index, width| Some(TilePath { level, index, width });
        assert_eq!(parse_tile("0/000"), t(Some(0), 0, 256));
        assert_eq!(parse_tile("1/x001/x234/067"), t(Some(1), 1_234_067, 256));
        assert_eq!(parse_tile("0/001.p/17"), t(Some(0), 1, 17));
        assert_eq!(parse_tile("entries/x001/002.p/255"), t(None, 1002, 255));
        for bad in [
            "",
            "0",
            "00/000",
            "64/000",
            "0/1",
            "0/x001",
            "0/001/002",
            "0/001.p/0",
            "0/001.p/256",
            "0/001.p/07",
            "a/000",
        ] {
            assert_eq!(parse_tile(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn witness_flags_need_an_http_url_and_a_cosignature_key() {
        let w = Signer::from_seed("w.example", COSIGNATURE_V1, [1; 32])
            .unwrap()
            .verifier()
            .vkey();
        let log = Signer::from_seed("l.example", ED25519, [1; 32])
            .unwrap()
            .verifier()
            .vkey();
        assert!(format!("http://127.0.0.1:9/={w}").parse::<WitnessConfig>().is_ok());
        assert!(format!("https://w.example={w}").parse::<WitnessConfig>().is_err());
        assert!(format!("http://w.example={log}").parse::<WitnessConfig>().is_err());
        assert!("http://w.example".parse::<WitnessConfig>().is_err());
    }
}
