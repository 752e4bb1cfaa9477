//! C2SP signed notes with Ed25519 keys: the log's signatures on its
//! checkpoints (type 0x01) and witnesses' timestamped cosignatures
//! (c2sp.org/tlog-cosignature, type 0x04), verifier keys (vkeys) and the
//! private key text they are made from.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Ed25519 signatures over the note text.
pub const ED25519: u8 = 0x01;
/// Timestamped Ed25519 checkpoint cosignatures.
pub const COSIGNATURE_V1: u8 = 0x04;

/// Most signature lines a note may carry (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 64;
/// Largest note accepted, in bytes.
pub const MAX_NOTE: usize = 64 * 1024;

/// Why a note, key or signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(String),
    #[error("malformed key: {0}")]
    Key(String),
    #[error("the signature of {name} does not verify")]
    BadSignature { name: String },
    #[error("no signature by a trusted key ({trusted})")]
    Unsigned { trusted: String },
}

fn key_id(name: &str, kind: u8, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([kind]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control()) {
        return Err(NoteError::Key(format!(
            "key name {name:?} must be non-empty, without spaces or '+'"
        )));
    }
    Ok(())
}

fn check_kind(kind: u8) -> Result<(), NoteError> {
    match kind {
        ED25519 | COSIGNATURE_V1 => Ok(()),
        other => Err(NoteError::Key(format!(
            "signature type 0x{other:02x} is not supported (0x01 Ed25519, 0x04 Ed25519 cosignature)"
        ))),
    }
}

/// The parts of `name+keyid+base64(type ‖ 32 bytes)`: names have no '+',
/// base64 may.
fn key_parts<'a>(text: &'a str, what: &str) -> Result<(&'a str, &'a str, u8, [u8; 32]), String> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{text:?} has not three parts"));
    };
    let bytes = B64
        .decode(material)
        .map_err(|e| format!("{what} of {name} is not base64: {e}"))?;
    let (&kind, key) = bytes
        .split_first()
        .ok_or_else(|| format!("{what} of {name} is empty"))?;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| format!("{what} of {name} is not 32 bytes"))?;
    Ok((name, id, kind, key))
}

/// The message a timestamped cosignature signs.
fn cosigned_message(text: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{text}").into_bytes()
}

/// A public key that checks signatures of one name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    id: u32,
    kind: u8,
    key: VerifyingKey,
}

impl Verifier {
    /// Parses a vkey: `<name>+<hex key id>+<base64(type ‖ public key)>`.
    pub fn parse(vkey: &str) -> Result<Verifier, NoteError> {
        let (name, id, kind, public) = key_parts(vkey.trim(), "the key")
            .map_err(|e| NoteError::Key(format!("{e} (a verifier key is name+keyid+base64key)")))?;
        check_name(name)?;
        check_kind(kind)?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| NoteError::Key(format!("the key of {name} is not an Ed25519 point")))?;
        let want = key_id(name, kind, &public);
        let given = (id.len() == 8)
            .then(|| u32::from_str_radix(id, 16).ok())
            .flatten()
            .ok_or_else(|| NoteError::Key(format!("the key id {id:?} of {name} is not 8 hex digits")))?;
        if given != want {
            return Err(NoteError::Key(format!(
                "the key id of {name} is {given:08x}, but its key hashes to {want:08x}"
            )));
        }
        Ok(Verifier {
            name: name.to_string(),
            id: want,
            kind,
            key,
        })
    }

    /// The vkey text.
    pub fn vkey(&self) -> String {
        let mut material = vec![self.kind];
        material.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, B64.encode(material))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// Checks one signature's bytes (after the key id) over `text`; the
    /// cosignature's timestamp when it holds.
    fn check(&self, text: &str, sig: &[u8]) -> Option<Option<u64>> {
        match self.kind {
            ED25519 => {
                let sig = ed25519_dalek::Signature::from_slice(sig).ok()?;
                self.key.verify_strict(text.as_bytes(), &sig).ok()?;
                Some(None)
            }
            _ => {
                let (ts, sig) = sig.split_at_checked(8)?;
                let timestamp = u64::from_be_bytes(ts.try_into().ok()?);
                if timestamp > i64::MAX as u64 {
                    return None;
                }
                let sig = ed25519_dalek::Signature::from_slice(sig).ok()?;
                self.key.verify_strict(&cosigned_message(text, timestamp), &sig).ok()?;
                Some(Some(timestamp))
            }
        }
    }
}

/// A private key that signs notes (the log) or cosigns checkpoints (a witness).
pub struct Signer {
    name: String,
    id: u32,
    kind: u8,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Signer {
    /// A signer from a 32-byte secret seed (from the OS's random source).
    pub fn from_seed(name: &str, kind: u8, seed: [u8; 32]) -> Result<Signer, NoteError> {
        check_name(name)?;
        check_kind(kind)?;
        let key = SigningKey::from_bytes(&seed);
        Ok(Signer {
            name: name.to_string(),
            id: key_id(name, kind, key.verifying_key().as_bytes()),
            kind,
            key,
        })
    }

    /// Parses the private key text `PRIVATE+KEY+<name>+<hex id>+<base64(type ‖ seed)>`.
    pub fn parse(text: &str) -> Result<Signer, NoteError> {
        let text = text.trim();
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| NoteError::Key("a private key starts with PRIVATE+KEY+".into()))?;
        let (name, id, kind, seed) = key_parts(rest, "the private key")
            .map_err(|e| NoteError::Key(format!("{e} (a private key is PRIVATE+KEY+name+keyid+base64key)")))?;
        let signer = Signer::from_seed(name, kind, seed)?;
        if id != format!("{:08x}", signer.id) {
            return Err(NoteError::Key(format!(
                "the private key of {name} says key id {id}, but it hashes to {:08x}",
                signer.id
            )));
        }
        Ok(signer)
    }

    /// The private key text (keep it owner-only).
    pub fn to_text(&self) -> String {
        let mut material = vec![self.kind];
        material.extend_from_slice(&self.key.to_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.id, B64.encode(material))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            id: self.id,
            kind: self.kind,
            key: self.key.verifying_key(),
        }
    }

    /// The signature line (`— name base64…\n`) over `text`; a cosigner
    /// stamps it with `timestamp` (seconds since the epoch).
    pub fn sign(&self, text: &str, timestamp: u64) -> String {
        let mut sig = self.id.to_be_bytes().to_vec();
        match self.kind {
            ED25519 => sig.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes()),
            _ => {
                sig.extend_from_slice(&timestamp.to_be_bytes());
                sig.extend_from_slice(&self.key.sign(&cosigned_message(text, timestamp)).to_bytes());
            }
        }
        format!("\u{2014} {} {}\n", self.name, B64.encode(sig))
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub id: u32,
    /// What follows the key id.
    pub bytes: Vec<u8>,
}

impl Signature {
    pub fn line(&self) -> String {
        let mut sig = self.id.to_be_bytes().to_vec();
        sig.extend_from_slice(&self.bytes);
        format!("\u{2014} {} {}\n", self.name, B64.encode(sig))
    }
}

/// A signature that verified: whose, and a cosignature's timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub name: String,
    pub kind: u8,
    pub timestamp: Option<u64>,
}

/// A parsed signed note: its text (with its final newline) and signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<Signature>,
}

/// Parses signature lines (`— name base64\n` each).
pub fn parse_signatures(lines: &str) -> Result<Vec<Signature>, NoteError> {
    let mut out = Vec::new();
    for (i, line) in lines.split_terminator('\n').enumerate() {
        let malformed = |why: &str| NoteError::Malformed(format!("signature line {}: {why}", i + 1));
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or_else(|| malformed("does not start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("has no space between key name and signature"))?;
        check_name(name).map_err(|_| malformed("has an invalid key name"))?;
        let bytes = B64.decode(b64).map_err(|_| malformed("signature is not base64"))?;
        if bytes.len() < 5 {
            return Err(malformed("signature is shorter than a key id"));
        }
        out.push(Signature {
            name: name.to_string(),
            id: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            bytes: bytes[4..].to_vec(),
        });
        if out.len() > MAX_SIGNATURES {
            return Err(NoteError::Malformed(format!("more than {MAX_SIGNATURES} signatures")));
        }
    }
    if !lines.is_empty() && !lines.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the last signature line does not end in a newline".into(),
        ));
    }
    Ok(out)
}

impl Note {
    /// Parses a signed note: text, a blank line, signature lines.
    pub fn parse(note: &str) -> Result<Note, NoteError> {
        if note.len() > MAX_NOTE {
            return Err(NoteError::Malformed(format!("larger than {MAX_NOTE} bytes")));
        }
        if let Some(c) = note.chars().find(|&c| c.is_ascii_control() && c != '\n') {
            return Err(NoteError::Malformed(format!("contains the control character {c:?}")));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
        let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
        let signatures = parse_signatures(sigs)?;
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signature lines".into()));
        }
        Ok(Note {
            text: text.to_string(),
            signatures,
        })
    }

    /// The note as text.
    pub fn format(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }

    /// Checks every signature by a trusted key (others are ignored): any
    /// that fails rejects the note, and at least one must hold.
    pub fn verify(&self, trusted: &[Verifier]) -> Result<Vec<Verified>, NoteError> {
        let mut ok = Vec::new();
        for sig in &self.signatures {
            let Some(v) = trusted.iter().find(|v| v.name == sig.name && v.id == sig.id) else {
                continue;
            };
            match v.check(&self.text, &sig.bytes) {
                Some(timestamp) => ok.push(Verified {
                    name: v.name.clone(),
                    kind: v.kind,
                    timestamp,
                }),
                None => return Err(NoteError::BadSignature { name: sig.name.clone() }),
            }
        }
        if ok.is_empty() {
            let trusted = trusted.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(NoteError::Unsigned { trusted });
        }
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of c2sp.org/signed-note (`../shared/conformance/c2sp/signed-note.md`).
    const EXAMPLE_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";

    fn example_note() -> String {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/c2sp/signed-note.md");
        let spec = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; the conformance data lives in ../shared/conformance beside the checkout",
                path.display()
            )
        });
        // The fenced block right after the example's verifier key.
        let after = &spec[spec.find(EXAMPLE_VKEY).expect("the example vkey is in the spec")..];
        let start = after.find("```\n").expect("a fenced note") + 4;
        let end = after[start..].find("```").expect("the fence closes") + start;
        after[start..end].to_string()
    }

    #[test]
    fn the_signed_note_worked_example_verifies() {
        let v = Verifier::parse(EXAMPLE_VKEY).unwrap();
        assert_eq!(v.vkey(), EXAMPLE_VKEY);
        let note = Note::parse(&example_note()).unwrap();
        assert_eq!(note.text, "This is an example message.\n");
        let ok = note.verify(std::slice::from_ref(&v)).unwrap();
        assert_eq!(
            ok,
            vec![Verified {
                name: "example.com/foo".into(),
                kind: ED25519,
                timestamp: None
            }]
        );
        assert_eq!(note.format(), example_note());
    }

    #[test]
    fn a_changed_example_does_not_verify() {
        let v = Verifier::parse(EXAMPLE_VKEY).unwrap();
        let changed = example_note().replace("example message", "example massage");
        let note = Note::parse(&changed).unwrap();
        assert_eq!(
            note.verify(&[v]),
            Err(NoteError::BadSignature {
                name: "example.com/foo".into()
            })
        );
    }

    #[test]
    fn a_vkey_with_a_wrong_id_or_type_is_refused() {
        let wrong_id = EXAMPLE_VKEY.replace("530d903a", "530d903b");
        assert!(matches!(Verifier::parse(&wrong_id), Err(NoteError::Key(m)) if m.contains("hashes to 530d903a")));
        assert!(Verifier::parse("no-plus-signs").is_err());
        assert!(Verifier::parse("a b+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").is_err());
    }

    #[test]
    fn signing_and_cosigning_round_trip_and_unknown_keys_are_ignored() {
        let log = Signer::from_seed("jejak.example/log", ED25519, [7; 32]).unwrap();
        let witness = Signer::from_seed("witness.example/w1", COSIGNATURE_V1, [9; 32]).unwrap();
        let stranger = Signer::from_seed("stranger.example", ED25519, [1; 32]).unwrap();
        let text = "jejak.example/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let note = format!(
            "{text}\n{}{}{}",
            log.sign(text, 0),
            witness.sign(text, 1_700_000_000),
            stranger.sign(text, 0)
        );
        let parsed = Note::parse(&note).unwrap();
        let ok = parsed.verify(&[log.verifier(), witness.verifier()]).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].timestamp, Some(1_700_000_000));
        assert_eq!(Signer::parse(&log.to_text()).unwrap().verifier(), log.verifier());
        // Base64 with '+' in it (names never have one).
        for seed in 0..64u8 {
            let s = Signer::from_seed("a.example/log", ED25519, [seed; 32]).unwrap();
            assert_eq!(Signer::parse(&s.to_text()).unwrap().verifier(), s.verifier());
            assert_eq!(Verifier::parse(&s.verifier().vkey()).unwrap(), s.verifier());
        }
        assert_eq!(Verifier::parse(&witness.verifier().vkey()).unwrap(), witness.verifier());
        // Only a stranger's signature: nothing trusted verified it.
        assert!(matches!(
            Note::parse(&format!("{text}\n{}", stranger.sign(text, 0)))
                .unwrap()
                .verify(&[log.verifier()]),
            Err(NoteError::Unsigned { .. })
        ));
    }

    #[test]
    fn malformed_notes_are_refused_with_a_reason() {
        for (note, why) in [
            ("no blank line\n\u{2014} a AAAAAAAA\n", "blank line"),
            ("text\n\n", "no signature"),
            ("text\n\n- a AAAAAAAA\n", "em dash"),
            ("text\n\n\u{2014} a AAAAAAAA", "newline"),
            ("te\rxt\n\n\u{2014} a AAAAAAAA\n", "control"),
        ] {
            match Note::parse(note) {
                Err(NoteError::Malformed(m)) => assert!(m.contains(why), "{note:?}: {m}"),
                other => panic!("{note:?}: {other:?}"),
            }
        }
    }
}
