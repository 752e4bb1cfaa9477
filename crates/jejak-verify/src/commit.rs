//! Leaf commitments: what the transparency log holds for each event.
//!
//! An event is flattened into named fields (`lot`, `inputs.0.quantity`, …).
//! Each field gets its own 128-bit salt, taken in order from a BLAKE3
//! output stream keyed by the event's 256-bit secret (drawn from the OS's
//! random source at capture and stored only in the private envelope), and
//! is committed to as
//! `SHA-256("jejak-field/v1" 0x00 ‖ salt ‖ len(path) ‖ path ‖ value)`.
//! The leaf is `"jejak-leaf/v1\n" ‖ SHA-256(d1 ‖ d2 ‖ …)` over the field
//! digests sorted bytewise: the leaf reveals nothing of the event, and any
//! subset of fields can later be disclosed (path, value, salt) and checked
//! against it without revealing the others (or their salts).

use jejak_domain::{Event, LotStatus, Quantity, Time, Verdict};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The first bytes of every leaf.
pub const LEAF_PREFIX: &[u8] = b"jejak-leaf/v1\n";

/// Who may see a field when they do not see its lot in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// What the public view of a lot shows: ids, product, parties, origin,
    /// status, verdicts, process steps and times.
    Public,
    /// Quantities: what mass balance and exact shares are computed from.
    Quantity,
    /// Everything else (documents, measurements, who recorded it, ids of events).
    Private,
}

/// One named value of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub path: String,
    pub value: String,
    pub class: Class,
    /// The lot the field is about, when it is about one.
    pub lot: Option<String>,
}

/// What the envelope adds to the event.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub event_id: &'a str,
    pub chain: &'a str,
    pub sequence: u64,
    pub recorded_at: Time,
    pub actor: &'a str,
    /// blake3 of the stored envelope: ties the leaf to the facility's chain.
    pub envelope: &'a [u8; 32],
}

pub fn time(t: Time) -> String {
    t.0.to_string()
}

pub fn quantity(q: &Quantity) -> String {
    q.to_string()
}

pub fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Conformant => "conformant",
        Verdict::NonConformant => "non-conformant",
        Verdict::Hold => "hold",
    }
}

pub fn status(s: LotStatus) -> &'static str {
    s.label()
}

struct Fields {
    out: Vec<Field>,
    lot: Option<String>,
}

impl Fields {
    fn about(&mut self, lot: &str) -> &mut Self {
        self.lot = Some(lot.to_string());
        self
    }

    fn put(&mut self, path: impl Into<String>, value: impl Into<String>, class: Class) -> &mut Self {
        let value = value.into();
        if !value.is_empty() {
            self.out.push(Field {
                path: path.into(),
                value,
                class,
                lot: self.lot.clone(),
            });
        }
        self
    }

    fn at(&mut self, at: Option<Time>) -> &mut Self {
        if let Some(t) = at {
            self.put("occurred_at", time(t), Class::Public);
        }
        self
    }
}

/// The fields of an event, in a fixed order. Absent and empty values are
/// left out. Paths are unique within an event.
pub fn fields(meta: &Meta<'_>, event: &Event) -> Vec<Field> {
    use Class::*;
    let mut f = Fields {
        out: Vec::new(),
        lot: None,
    };
    f.put("kind", event.kind(), Public)
        .put("chain", meta.chain, Public)
        .put("sequence", meta.sequence.to_string(), Private)
        // As traces show them: a trace's edges name the events behind them.
        .put("event_id", meta.event_id, Public)
        .put("recorded_at", time(meta.recorded_at), Public)
        .put("actor", meta.actor, Private)
        .put("envelope", hex(meta.envelope), Private);
    match event {
        Event::MaterialReceived(e) => {
            f.about(&e.lot_id)
                .put("lot", &e.lot_id, Public)
                .put("facility", &e.facility_id, Public)
                .put("product", &e.product_id, Public)
                .put("quantity", quantity(&e.quantity), Quantity)
                .put("owner", &e.owner_id, Public)
                .put("supplier", &e.supplier_id, Public)
                .put("origin.place", &e.origin.place, Public)
                .put("origin.plot_id", &e.origin.plot_id, Public);
            if let Some(p) = &e.origin.plot {
                f.put("origin.plot", format!("{},{}", p.latitude, p.longitude), Public);
            }
            // Fields added later are committed only when present, so the
            // commitments of events without them never change.
            if let Some(g) = &e.origin.geometry {
                f.put("origin.geometry", g.to_geojson(), Public);
            }
            if !e.origin.producer_country.is_empty() {
                f.put("origin.producer_country", &e.origin.producer_country, Public);
            }
            if let Some(a) = e.origin.area_ha {
                f.put("origin.area_ha", a.to_string(), Public);
            }
            for (i, d) in e.documents.iter().enumerate() {
                f.put(format!("documents.{i}.kind"), &d.kind, Private)
                    .put(format!("documents.{i}.reference"), &d.reference, Private)
                    .put(format!("documents.{i}.blake3"), hex(&d.blake3), Private);
                if !d.issuer.is_empty() {
                    f.put(format!("documents.{i}.issuer"), &d.issuer, Private);
                }
                if let Some(t) = d.valid_from {
                    f.put(format!("documents.{i}.valid_from"), time(t), Private);
                }
                if let Some(t) = d.valid_until {
                    f.put(format!("documents.{i}.valid_until"), time(t), Private);
                }
            }
            if let Some(s) = &e.source_lot_id {
                // A trace shows the transfer's edge from the source lot.
                f.put("source_lot", s, Public);
            }
            f.at(e.occurred_at);
        }
        Event::LotInspected(e) => {
            f.about(&e.lot_id)
                .put("lot", &e.lot_id, Public)
                .put("facility", &e.facility_id, Public)
                .put("standard", &e.standard_id, Public)
                .put("verdict", verdict(e.verdict), Public)
                .put("inspector", &e.inspector, Private);
            for (i, m) in e.measurements.iter().enumerate() {
                f.put(format!("measurements.{i}.parameter"), &m.parameter, Private)
                    .put(format!("measurements.{i}.value"), m.value.to_string(), Private)
                    .put(format!("measurements.{i}.unit"), &m.unit, Private);
            }
            for (i, finding) in e.findings.iter().enumerate() {
                f.put(format!("findings.{i}"), finding, Private);
            }
            f.at(e.occurred_at);
        }
        Event::LotProcessed(e) => {
            f.put("facility", &e.facility_id, Public)
                .put("process_step", &e.process_step, Public)
                .put("line", &e.line, Public);
            for (i, input) in e.inputs.iter().enumerate() {
                f.about(&input.lot_id)
                    .put(format!("inputs.{i}.lot"), &input.lot_id, Public)
                    .put(format!("inputs.{i}.quantity"), quantity(&input.quantity), Quantity)
                    // Whether an input carries a share (the first input's
                    // kind of measure does) is public; its amount is not.
                    .put(format!("inputs.{i}.unit"), input.quantity.unit().symbol(), Public);
            }
            for (i, o) in e.outputs.iter().enumerate() {
                f.about(&o.lot_id)
                    .put(format!("outputs.{i}.lot"), &o.lot_id, Public)
                    .put(format!("outputs.{i}.product"), &o.product_id, Public)
                    .put(format!("outputs.{i}.quantity"), quantity(&o.quantity), Quantity)
                    .put(format!("outputs.{i}.owner"), &o.owner_id, Public);
            }
            f.lot = None;
            f.at(e.occurred_at);
        }
        Event::LotPacked(e) => {
            f.about(&e.lot_id)
                .put("lot", &e.lot_id, Public)
                .put("facility", &e.facility_id, Public)
                .put("gtin", e.gtin.as_str(), Public);
            for (i, p) in e.packages.iter().enumerate() {
                f.put(format!("packages.{i}.serial"), &p.serial, Private).put(
                    format!("packages.{i}.quantity"),
                    quantity(&p.quantity),
                    Quantity,
                );
            }
            f.at(e.occurred_at);
        }
        Event::LotShipped(e) => {
            f.about(&e.lot_id)
                .put("lot", &e.lot_id, Public)
                .put("facility", &e.facility_id, Public)
                .put("consignee", &e.consignee_id, Private)
                .put("document", &e.document, Private);
            if let Some(q) = &e.quantity {
                f.put("quantity", quantity(q), Quantity);
            }
            for (i, s) in e.package_serials.iter().enumerate() {
                f.put(format!("packages.{i}"), s, Private);
            }
            if !e.dds_reference.is_empty() {
                f.put("dds_reference", &e.dds_reference, Private);
            }
            f.at(e.occurred_at);
        }
        Event::LotStatusChanged(e) => {
            f.about(&e.lot_id)
                .put("lot", &e.lot_id, Public)
                .put("facility", &e.facility_id, Public)
                .put("status", status(e.status), Public)
                .put("reason", &e.reason, Private)
                .at(e.occurred_at);
        }
        Event::EventVoided(e) => {
            f.put("facility", &e.facility_id, Public)
                .put("voided_event", &e.voided_event_id, Public)
                .put("reason", &e.reason, Private);
            if let Some(r) = &e.replacement_event_id {
                f.put("replacement_event", r, Public);
            }
            f.at(e.occurred_at);
        }
        Event::PartyRegistered(p) => {
            f.put("party", &p.id, Public).put("name", &p.name, Public);
        }
        Event::FacilityRegistered(x) => {
            f.put("facility", &x.id, Public).put("name", &x.name, Public);
        }
        Event::ProductRegistered(x) => {
            f.put("product", &x.id, Public).put("name", &x.name, Public);
        }
        Event::StandardRegistered(x) => {
            f.put("standard", &x.id, Public).put("name", &x.name, Public);
        }
        Event::EpcisObserved(e) => {
            f.put("facility", &e.facility_id, Public)
                .put("event_type", &e.event_type, Public);
            for (i, l) in e.lot_ids.iter().enumerate() {
                f.put(format!("lots.{i}"), l, Public);
            }
            // About every lot it names: only whoever sees them all sees it.
            f.put("epcis", &e.event_json, Private).at(e.occurred_at);
        }
        // Tokens: the envelope hash commits to everything; nothing else is ever disclosed.
        Event::TokenIssued(_) | Event::TokenRevoked(_) => {}
    }
    f.out
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// The salts of an event's fields, in the order of its fields: 16 bytes
/// each from one BLAKE3 output stream keyed by the event's secret (an
/// envelope recorded before secrets existed has none: the zero key).
pub fn salts(secret: &[u8], count: usize) -> Vec<[u8; 16]> {
    let mut key = [0u8; 32];
    if let Ok(k) = <[u8; 32]>::try_from(secret) {
        key = k;
    }
    let mut stream = blake3::Hasher::new_keyed(&key);
    stream.update(b"jejak-salts/v1");
    // One fill for all of them: the stream computes each 64-byte block
    // once (four salts), where a fill per salt would compute it four times.
    let mut bytes = vec![0u8; count * 16];
    stream.finalize_xof().fill(&mut bytes);
    bytes
        .chunks_exact(16)
        .map(|c| {
            let mut s = [0u8; 16];
            s.copy_from_slice(c);
            s
        })
        .collect()
}

/// The digest of one salted field.
pub fn digest(salt: &[u8; 16], path: &str, value: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(b"jejak-field/v1\0");
    h.update(salt);
    h.update((path.len() as u32).to_be_bytes());
    h.update(path.as_bytes());
    h.update(value.as_bytes());
    h.finalize().into()
}

/// The field digests of an event, sorted (the order says nothing of the fields).
pub fn digests(secret: &[u8], fields: &[Field]) -> Vec<Hash> {
    let mut out: Vec<Hash> = fields
        .iter()
        .zip(salts(secret, fields.len()))
        .map(|(f, salt)| digest(&salt, &f.path, &f.value))
        .collect();
    out.sort_unstable();
    out
}

/// The leaf data over sorted field digests: the prefix and the SHA-256 of
/// the digests one after another.
pub fn leaf(sorted_digests: &[Hash]) -> Vec<u8> {
    let mut h = Sha256::new();
    for d in sorted_digests {
        h.update(d);
    }
    let mut out = LEAF_PREFIX.to_vec();
    out.extend_from_slice(&h.finalize());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jejak_domain::{LotInput, LotOutput, LotProcessed, Unit};

    fn processed() -> Event {
        let q = |v: i64| Quantity::from_parts(v.into(), Unit::Kg);
        Event::LotProcessed(LotProcessed {
            facility_id: "fac-demak".into(),
            process_step: "milling".into(),
            line: String::new(),
            inputs: vec![
                LotInput {
                    lot_id: "lot-a".into(),
                    quantity: q(600),
                },
                LotInput {
                    lot_id: "lot-b".into(),
                    quantity: q(400),
                },
            ],
            outputs: vec![LotOutput {
                lot_id: "lot-c".into(),
                product_id: "beras".into(),
                quantity: q(650),
                owner_id: "ukm-1".into(),
            }],
            occurred_at: None,
        })
    }

    fn meta(envelope: &[u8; 32]) -> Meta<'_> {
        Meta {
            event_id: "e-1",
            chain: "fac-demak",
            sequence: 4,
            recorded_at: Time(1_700_000_000_000_000_000),
            actor: "operator",
            envelope,
        }
    }

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn fields_name_lots_and_quantities_and_leave_out_empty_values() {
        let fields = fields(&meta(&[1; 32]), &processed());
        let get = |p: &str| {
            fields
                .iter()
                .find(|f| f.path == p)
                .map(|f| (f.value.as_str(), f.class, f.lot.as_deref()))
        };
        assert_eq!(
            get("inputs.1.quantity"),
            Some(("400 kg", Class::Quantity, Some("lot-b")))
        );
        assert_eq!(get("outputs.0.lot"), Some(("lot-c", Class::Public, Some("lot-c"))));
        assert_eq!(get("line"), None);
        assert_eq!(get("kind"), Some(("LotProcessed", Class::Public, None)));
        let mut paths: Vec<_> = fields.iter().map(|f| &f.path).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), fields.len(), "paths are unique");
    }

    #[test]
    fn a_disclosed_field_checks_against_the_leaf_and_a_changed_value_does_not() {
        let secret = [42u8; 32];
        let fields = fields(&meta(&[1; 32]), &processed());
        let sorted = digests(&secret, &fields);
        let leaf = leaf(&sorted);
        let at = fields.iter().position(|f| f.path == "inputs.0.quantity").unwrap();
        let (f, s) = (&fields[at], salts(&secret, fields.len())[at]);
        assert!(sorted.binary_search(&digest(&s, &f.path, "600 kg")).is_ok());
        assert!(sorted.binary_search(&digest(&s, &f.path, "601 kg")).is_err());
        // Another secret, another leaf: the leaf cannot be guessed from the event.
        assert_ne!(leaf, super::leaf(&digests(&[43u8; 32], &fields)));
        assert!(leaf.starts_with(LEAF_PREFIX) && leaf.len() == LEAF_PREFIX.len() + 32);
    }

    #[test]
    fn salts_are_the_keyed_stream_cut_in_sixteen_byte_pieces() {
        let secret = [7u8; 32];
        let mut stream = blake3::Hasher::new_keyed(&secret);
        stream.update(b"jejak-salts/v1");
        let mut reader = stream.finalize_xof();
        let salts = salts(&secret, 9);
        assert_eq!(salts.len(), 9);
        for (i, salt) in salts.iter().enumerate() {
            let mut want = [0u8; 16];
            reader.fill(&mut want);
            assert_eq!(salt, &want, "salt {i}");
        }
        // A prefix of a longer draw: adding a field keeps the others' salts.
        assert_eq!(super::salts(&secret, 4)[..], salts[..4]);
        assert!(super::salts(&secret, 0).is_empty());
    }
}
