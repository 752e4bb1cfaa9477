//! `jejak backup DIR`: a consistent snapshot of a running embedded server,
//! taken over its API while capture goes on, and the reading side of
//! `jejak restore`.
//!
//! The log is append-only, so its first N envelopes never change: a backup
//! is the log up to the position the server names when the backup starts
//! (`log.jsonl`, the format of `jejak export`), the last checkpoint the
//! server signed (`checkpoint`), the transparency log's signing key
//! (`log.key`, owner-only) and, written last, `manifest.json` with the
//! position, the count and the blake3 hash of `log.jsonl`. A backup
//! interrupted at any point has no manifest and is refused by `restore`.
//! The projection is not copied: it is derived from the log, and `restore`
//! makes it again (a rebuild is byte-identical).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use jejak_proto::v1 as p;
use jejak_proto::v1::admin_service_client::AdminServiceClient;
use serde::{Deserialize, Serialize};

use crate::{connect, Target};

pub const FORMAT: &str = "jejak-backup/v1";
const MANIFEST: &str = "manifest.json";
const LOG: &str = "log.jsonl";
const CHECKPOINT: &str = "checkpoint";
const KEY: &str = "log.key";

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// Every envelope from position 1 to this one is in `log.jsonl`.
    pub position: u64,
    /// When the server named the position (RFC 3339).
    pub taken_at: String,
    /// blake3 of `log.jsonl`, hex.
    pub log_blake3: String,
    /// The tree size of `checkpoint`, if the server had published one.
    pub checkpoint_size: Option<u64>,
    pub chains: usize,
    pub server: String,
}

/// Takes a backup of the server at `target` into `dir` (new or empty).
pub async fn backup(target: &Target, dir: &Path) -> anyhow::Result<Manifest> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))?;
        anyhow::ensure!(
            entries.next().is_none(),
            "{} is not empty: back up into a new directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let reply = AdminServiceClient::new(connect(target).await?)
        .backup(p::BackupRequest {})
        .await
        .context("start the backup")?
        .into_inner();
    let p::BackupReply {
        position,
        checkpoint,
        log_key,
        taken_at,
    } = reply;
    let log = dir.join(LOG);
    let written = if position == 0 {
        std::fs::write(&log, b"").with_context(|| format!("write {}", log.display()))?;
        0
    } else {
        crate::export::write_log(target, 1, position, &log).await?
    };
    anyhow::ensure!(
        written == position,
        "the server sent {written} envelopes of the {position} the backup covers"
    );
    let checked = crate::export::verify_export(&log)?;
    write_secret(&dir.join(KEY), &log_key)?;
    let checkpoint_size = match checkpoint.is_empty() {
        true => None,
        false => {
            write_synced(&dir.join(CHECKPOINT), checkpoint.as_bytes())?;
            Some(checkpoint_size(&checkpoint)?)
        }
    };
    let taken_at = taken_at
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    let manifest = Manifest {
        format: FORMAT.into(),
        position,
        taken_at,
        log_blake3: file_blake3(&log)?,
        checkpoint_size,
        chains: checked.chains,
        server: target.url.clone(),
    };
    let text = serde_json::to_vec_pretty(&manifest)?;
    let tmp = dir.join("manifest.partial");
    write_synced(&tmp, &text)?;
    std::fs::rename(&tmp, dir.join(MANIFEST)).context("move the manifest into place")?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("sync {}", dir.display()))?;
    Ok(manifest)
}

fn checkpoint_size(note: &str) -> anyhow::Result<u64> {
    let note = jejak_verify::note::Note::parse(note).context("the server's checkpoint is not a signed note")?;
    Ok(jejak_verify::checkpoint::Checkpoint::parse(&note.text)
        .context("the server's checkpoint does not parse")?
        .size)
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("write {}", path.display()))
}

fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("write {}", path.display()))
}

fn file_blake3(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_hex().to_string())
}

/// Position and stored bytes of each envelope of a backup, in order.
pub type Envelopes = Box<dyn Iterator<Item = anyhow::Result<(u64, Vec<u8>)>> + Send>;

/// A complete backup, checked: its manifest, its log file's hash, and every
/// chain in the log.
#[derive(Debug)]
pub struct Opened {
    pub manifest: Manifest,
    pub log_key: String,
    pub checkpoint: Option<String>,
    log: PathBuf,
}

/// Opens the backup in `dir` for a restore; refuses an incomplete or
/// changed one, saying which.
pub fn open(dir: &Path) -> anyhow::Result<Opened> {
    let manifest_path = dir.join(MANIFEST);
    let text = match std::fs::read(&manifest_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "{} has no {MANIFEST}: it is not a backup, or the backup was interrupted; take it again",
            dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("read {}", manifest_path.display())),
    };
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a backup manifest", manifest_path.display()))?;
    anyhow::ensure!(
        manifest.format == FORMAT,
        "{} is of format {:?}; this jejak restores {FORMAT}",
        manifest_path.display(),
        manifest.format
    );
    let log = dir.join(LOG);
    anyhow::ensure!(
        file_blake3(&log)? == manifest.log_blake3,
        "{} is not the file the backup wrote (its blake3 hash differs from the manifest's)",
        log.display()
    );
    let checked = crate::export::verify_export(&log).with_context(|| format!("check {}", log.display()))?;
    anyhow::ensure!(
        checked.envelopes == manifest.position && checked.continued == 0,
        "{} holds {} envelopes, the manifest says {}",
        log.display(),
        checked.envelopes,
        manifest.position
    );
    let log_key =
        std::fs::read_to_string(dir.join(KEY)).with_context(|| format!("read {}", dir.join(KEY).display()))?;
    let checkpoint = match manifest.checkpoint_size {
        None => None,
        Some(_) => Some(
            std::fs::read_to_string(dir.join(CHECKPOINT))
                .with_context(|| format!("read {}", dir.join(CHECKPOINT).display()))?,
        ),
    };
    Ok(Opened {
        manifest,
        log_key,
        checkpoint,
        log,
    })
}

impl Opened {
    /// The position and stored bytes of every envelope, in order.
    pub fn envelopes(&self) -> anyhow::Result<Envelopes> {
        Ok(Box::new(crate::export::envelopes(&self.log)?))
    }
}
