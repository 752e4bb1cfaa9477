//! C2SP tlog-checkpoint bodies and c2sp.org/tlog-proof@v1 offline proofs.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::merkle::{self, Hash, ProofError};
use crate::note::{Note, NoteError, Verified, Verifier, COSIGNATURE_V1, ED25519};

/// The first line of a tlog-proof.
pub const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Most hashes in an inclusion or consistency proof (a tree of 2^63 leaves).
pub const MAX_PROOF_HASHES: usize = 63;

/// A decimal without leading zeroes (`0` itself allowed) that fits 64
/// bits, as sizes and indexes are written in checkpoints, proofs and
/// witness requests.
pub fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty() && (text.len() == 1 || !text.starts_with('0'));
    (canonical && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Proof lines, one base64 SHA-256 hash each (numbered for errors), at
/// most [`MAX_PROOF_HASHES`].
pub fn parse_hashes<'a>(lines: impl Iterator<Item = (usize, &'a str)>) -> Result<Vec<Hash>, String> {
    let mut out = Vec::new();
    for (n, line) in lines {
        if out.len() == MAX_PROOF_HASHES {
            return Err(format!("line {n}: more than {MAX_PROOF_HASHES} proof hashes"));
        }
        let h = B64
            .decode(line)
            .ok()
            .and_then(|h| Hash::try_from(h).ok())
            .ok_or(format!("line {n}: not a base64 SHA-256 hash"))?;
        out.push(h);
    }
    Ok(out)
}

/// The body of a checkpoint: origin, tree size, root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Extension lines, if any.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text (each line newline-terminated).
    pub fn text(&self) -> String {
        let mut out = format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root));
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }

    /// Parses a checkpoint's note text.
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = |why: String| NoteError::Malformed(format!("checkpoint: {why}"));
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("does not end in a newline".into()))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line".into()))?;
        let size = lines.next().ok_or_else(|| bad("no tree size line".into()))?;
        let size = parse_decimal(size).ok_or_else(|| {
            bad(format!(
                "tree size {size:?} is not a 64-bit decimal without leading zeroes"
            ))
        })?;
        let root = lines.next().ok_or_else(|| bad("no root hash line".into()))?;
        let root = B64
            .decode(root)
            .ok()
            .and_then(|r| Hash::try_from(r).ok())
            .ok_or_else(|| bad(format!("root hash {root:?} is not 32 bytes of base64")))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an empty extension line".into()));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }
}

/// A checkpoint note whose signatures were checked against a policy: the
/// log's key and `quorum` of the witness keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    pub checkpoint: Checkpoint,
    /// The witnesses whose cosignatures verified, with their timestamps.
    pub cosigners: Vec<(String, u64)>,
}

/// Why a checkpoint is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("the checkpoint's origin is {got:?}, the log key's is {want:?}")]
    Origin { got: String, want: String },
    #[error("the checkpoint is not signed by the log key {0}")]
    NotByLog(String),
    #[error("{got} of the required {want} witnesses cosigned the checkpoint{}", if .names.is_empty() { String::new() } else { format!(" ({})", .names.join(", ")) })]
    Quorum {
        got: usize,
        want: usize,
        names: Vec<String>,
    },
}

/// Checks a signed checkpoint: signed by `log` (whose name is the origin),
/// and cosigned by at least `quorum` of `witnesses`.
pub fn verify_checkpoint(
    note: &str,
    log: &Verifier,
    witnesses: &[Verifier],
    quorum: usize,
) -> Result<Trusted, CheckpointError> {
    let parsed = Note::parse(note)?;
    let checkpoint = Checkpoint::parse(&parsed.text)?;
    if checkpoint.origin != log.name() {
        return Err(CheckpointError::Origin {
            got: checkpoint.origin,
            want: log.name().to_string(),
        });
    }
    let mut trusted = vec![log.clone()];
    trusted.extend(witnesses.iter().filter(|w| w.kind() == COSIGNATURE_V1).cloned());
    let verified = parsed.verify(&trusted)?;
    if !verified.iter().any(|v| v.kind == ED25519 && v.name == log.name()) {
        return Err(CheckpointError::NotByLog(log.vkey()));
    }
    let cosigners: Vec<(String, u64)> = verified
        .into_iter()
        .filter_map(|Verified { name, kind, timestamp }| (kind == COSIGNATURE_V1).then_some((name, timestamp?)))
        .collect();
    if cosigners.len() < quorum {
        return Err(CheckpointError::Quorum {
            got: cosigners.len(),
            want: quorum,
            names: cosigners.into_iter().map(|c| c.0).collect(),
        });
    }
    Ok(Trusted { checkpoint, cosigners })
}

/// A c2sp.org/tlog-proof@v1: an entry's index, its inclusion proof and the
/// signed checkpoint it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub path: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

impl TlogProof {
    pub fn format(&self) -> String {
        let mut out = format!("{PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", B64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.path {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses a proof; the error names the line.
    pub fn parse(text: &str) -> Result<TlogProof, String> {
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or("no blank line between the inclusion proof and the checkpoint")?;
        let mut lines = head.split('\n').enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, PROOF_HEADER)) => {}
            _ => return Err(format!("line 1 is not {PROOF_HEADER}")),
        }
        let mut extra = None;
        let mut next = lines.next();
        if let Some((n, l)) = next {
            if let Some(e) = l.strip_prefix("extra ") {
                extra = Some(
                    B64.decode(e)
                        .map_err(|_| format!("line {n}: extra data is not base64"))?,
                );
                next = lines.next();
            }
        }
        let (n, index_line) = next.ok_or("no index line")?;
        let index = index_line
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or(format!("line {n}: not an index line"))?;
        let path = parse_hashes(lines)?;
        Ok(TlogProof {
            extra,
            index,
            path,
            checkpoint: checkpoint.to_string(),
        })
    }

    /// Checks that `leaf` (its data) is at this proof's index under the
    /// checkpoint's root; the checkpoint itself is checked by the caller.
    pub fn verify_leaf(&self, leaf: &[u8], checkpoint: &Checkpoint) -> Result<(), ProofError> {
        merkle::verify_inclusion(
            self.index,
            checkpoint.size,
            &merkle::leaf_hash(leaf),
            &self.path,
            &checkpoint.root,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::Signer;

    fn log() -> Signer {
        Signer::from_seed("jejak.example/log", ED25519, [3; 32]).unwrap()
    }

    fn signed(size: u64, root: Hash, witnesses: &[&Signer]) -> String {
        let text = Checkpoint {
            origin: "jejak.example/log".into(),
            size,
            root,
            extensions: vec![],
        }
        .text();
        let mut note = format!("{text}\n{}", log().sign(&text, 0));
        for w in witnesses {
            note.push_str(&w.sign(&text, 1_800_000_000));
        }
        note
    }

    #[test]
    fn a_proof_round_trips_and_verifies_against_a_quorum() {
        let leaves: Vec<Hash> = (0..5u8).map(|i| merkle::leaf_hash(&[i])).collect();
        let root = merkle::root(&leaves);
        let w1 = Signer::from_seed("w1.example", COSIGNATURE_V1, [4; 32]).unwrap();
        let w2 = Signer::from_seed("w2.example", COSIGNATURE_V1, [5; 32]).unwrap();
        let note = signed(5, root, &[&w1]);
        let proof = TlogProof {
            extra: Some(b"x".to_vec()),
            index: 3,
            path: merkle::inclusion_proof(3, &leaves),
            checkpoint: note.clone(),
        };
        let parsed = TlogProof::parse(&proof.format()).unwrap();
        assert_eq!(parsed, proof);
        let witnesses = [w1.verifier(), w2.verifier()];
        let trusted = verify_checkpoint(&parsed.checkpoint, &log().verifier(), &witnesses, 1).unwrap();
        assert_eq!(trusted.cosigners, vec![("w1.example".to_string(), 1_800_000_000)]);
        assert_eq!(parsed.verify_leaf(&[3], &trusted.checkpoint), Ok(()));
        assert!(parsed.verify_leaf(&[4], &trusted.checkpoint).is_err());
        assert!(matches!(
            verify_checkpoint(&note, &log().verifier(), &witnesses, 2),
            Err(CheckpointError::Quorum { got: 1, want: 2, .. })
        ));
    }

    #[test]
    fn malformed_checkpoints_and_proofs_name_what_is_wrong() {
        assert!(Checkpoint::parse("o\n01\nAAAA\n").is_err());
        assert!(Checkpoint::parse("o\n1\nAAAA\n").is_err());
        assert!(Checkpoint::parse("o\n1\n").is_err());
        let e = TlogProof::parse("c2sp.org/tlog-proof@v1\nindex 1\nnot-a-hash\n\nx").unwrap_err();
        assert!(e.starts_with("line 3"), "{e}");
        let e = TlogProof::parse("c2sp.org/tlog-proof@v1\nindex 01\n\nx").unwrap_err();
        assert!(e.starts_with("line 2"), "{e}");
    }
}
