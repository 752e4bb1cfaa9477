//! `jejak export` and `jejak verify --export`: the log's envelopes exactly
//! as stored, written as JSON Lines (one envelope a line: position, chain,
//! sequence, previous hash and hash in hex, the stored bytes in base64),
//! and every chain in such a file checked again offline, without the
//! server: each envelope's bytes hash to its hash, decode to the chain and
//! sequence the line claims, and carry the hash of the chain's envelope
//! before it.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use jejak_proto::v1 as p;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::Target;

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Line {
    position: u64,
    chain: String,
    sequence: u64,
    prev_hash: String,
    hash: String,
    envelope: String,
}

/// Writes the log from `from` (1 when 0) to `out`; returns how many
/// envelopes it holds.
pub async fn export(target: &Target, from: u64, out: &Path) -> anyhow::Result<u64> {
    write_log(target, from, 0, out).await
}

/// Writes `limit` envelopes (all when 0) of the log from `from` on to
/// `out`, through a `.partial` file renamed once complete and synced.
pub(crate) async fn write_log(target: &Target, from: u64, limit: u64, out: &Path) -> anyhow::Result<u64> {
    let mut client = crate::trace_client(target).await?;
    let mut stream = client
        .export_log(p::ExportEventsRequest {
            from_position: from,
            limit,
        })
        .await
        .context("export the log")?
        .into_inner();
    let tmp = out.with_extension("partial");
    let file = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} envelopes exported ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut n = 0u64;
    while let Some(e) = stream.message().await.context("read the export")? {
        let line = Line {
            position: e.position,
            chain: e.chain,
            sequence: e.sequence,
            prev_hash: jejak_verify::commit::hex(&e.prev_hash),
            hash: jejak_verify::commit::hex(&e.hash),
            envelope: b64.encode(&e.envelope),
        };
        serde_json::to_writer(&mut w, &line)?;
        w.write_all(b"\n")?;
        n += 1;
        if n % 1000 == 0 {
            bar.set_position(n);
        }
    }
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("write {}: {e}", tmp.display()))?
        .sync_all()?;
    std::fs::rename(&tmp, out).with_context(|| format!("move {} to {}", tmp.display(), out.display()))?;
    bar.finish_and_clear();
    Ok(n)
}

/// The position and stored bytes of every envelope of an export file, in
/// order (the file checked first with `verify_export`).
pub(crate) fn envelopes(file: &Path) -> anyhow::Result<impl Iterator<Item = anyhow::Result<(u64, Vec<u8>)>> + Send> {
    let reader =
        std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?);
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(reader
        .lines()
        .enumerate()
        .filter(|(_, text)| text.as_ref().map_or(true, |t| !t.trim().is_empty()))
        .map(move |(i, text)| {
            let number = i + 1;
            let text = text.with_context(|| format!("line {number}: read"))?;
            let line: Line =
                serde_json::from_str(&text).with_context(|| format!("line {number}: not an exported envelope"))?;
            let bytes = b64
                .decode(&line.envelope)
                .map_err(|e| anyhow::anyhow!("line {number}: the envelope is not base64: {e}"))?;
            Ok((line.position, bytes))
        }))
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What an export's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub envelopes: u64,
    pub chains: usize,
    /// Chains whose first envelope in the file is not their first (an
    /// export from a later position): their start is taken as given.
    pub continued: usize,
}

/// Checks every chain of an export file; the first problem names the line,
/// the chain and the sequence.
pub fn verify_export(file: &Path) -> anyhow::Result<Checked> {
    let reader =
        std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut heads: HashMap<String, (u64, Vec<u8>)> = HashMap::new();
    let mut continued = 0;
    let mut last_position = None;
    let mut n = 0u64;
    for (i, text) in reader.lines().enumerate() {
        let number = i + 1;
        let text = text.with_context(|| format!("line {number}: read"))?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line =
            serde_json::from_str(&text).with_context(|| format!("line {number}: not an exported envelope"))?;
        let at = format!("line {number}: chain {:?} sequence {}", line.chain, line.sequence);
        if let Some(last) = last_position {
            anyhow::ensure!(
                line.position == last + 1,
                "{at}: position {} follows position {last}; an envelope is missing or out of order",
                line.position
            );
        }
        last_position = Some(line.position);
        let bytes = b64
            .decode(&line.envelope)
            .map_err(|e| anyhow::anyhow!("{at}: the envelope is not base64: {e}"))?;
        let hash = unhex(&line.hash).with_context(|| format!("{at}: the hash is not hex"))?;
        anyhow::ensure!(
            blake3::hash(&bytes).as_bytes()[..] == hash[..],
            "{at}: the envelope's bytes do not hash to its hash (it was changed)"
        );
        let envelope = p::Envelope::decode(bytes.as_slice())
            .map_err(|e| anyhow::anyhow!("{at}: the envelope does not decode: {e}"))?;
        let prev = unhex(&line.prev_hash).with_context(|| format!("{at}: the previous hash is not hex"))?;
        anyhow::ensure!(
            envelope.chain == line.chain && envelope.sequence == line.sequence && envelope.prev_hash == prev,
            "{at}: the envelope itself says chain {:?} sequence {} (the line was changed)",
            envelope.chain,
            envelope.sequence
        );
        match heads.get(&line.chain) {
            Some((sequence, head)) => {
                anyhow::ensure!(
                    line.sequence == sequence + 1,
                    "{at}: follows sequence {sequence} of its chain; an envelope is missing"
                );
                anyhow::ensure!(
                    &prev == head,
                    "{at}: does not carry the hash of sequence {sequence} of its chain"
                );
            }
            None if line.sequence == 1 => {
                anyhow::ensure!(
                    prev.iter().all(|b| *b == 0),
                    "{at}: the first envelope of a chain carries a previous hash"
                );
            }
            None => continued += 1,
        }
        heads.insert(line.chain, (line.sequence, hash));
        n += 1;
    }
    Ok(Checked {
        envelopes: n,
        chains: heads.len(),
        continued,
    })
}
