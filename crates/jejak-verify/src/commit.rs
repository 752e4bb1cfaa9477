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

use std::fmt::Write;

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

/// Where the walk over an event's fields sends each field.
trait Sink {
    fn field(&mut self, path: &str, value: &str, class: Class, lot: Option<&str>);
}

/// Collects the fields, for disclosure.
struct Collect(Vec<Field>);

impl Sink for Collect {
    fn field(&mut self, path: &str, value: &str, class: Class, lot: Option<&str>) {
        self.0.push(Field {
            path: path.to_owned(),
            value: value.to_owned(),
            class,
            lot: lot.map(str::to_owned),
        });
    }
}

/// Commits to the fields as the walk meets them: salts drawn in order,
/// digests gathered (a leaf needs no field kept).
struct Commit {
    salts: Salts,
    digests: Vec<Hash>,
}

impl Sink for Commit {
    fn field(&mut self, path: &str, value: &str, _: Class, _: Option<&str>) {
        let salt = self.salts.next_salt();
        self.digests.push(digest(&salt, path, value));
    }
}

/// The walk: takes each path and value as text (formatting into buffers it
/// keeps only what is not text already), leaves out empty values, and hands
/// the rest to its sink.
struct Fields<'e, S> {
    sink: S,
    lot: Option<&'e str>,
    path: String,
    value: String,
}

/// A field's path or value as the text committed to: borrowed where it is
/// text already, written into the walk's buffer otherwise (integers without
/// the formatting machinery: every event has several).
trait Text {
    fn text<'a>(&'a self, buf: &'a mut String) -> &'a str;
}

impl Text for str {
    fn text<'a>(&'a self, _: &'a mut String) -> &'a str {
        self
    }
}

impl Text for String {
    fn text<'a>(&'a self, _: &'a mut String) -> &'a str {
        self
    }
}

impl<T: Text + ?Sized> Text for &T {
    fn text<'a>(&'a self, buf: &'a mut String) -> &'a str {
        (**self).text(buf)
    }
}

macro_rules! integer_text {
    ($($t:ty),*) => {$(
        impl Text for $t {
            fn text<'a>(&'a self, buf: &'a mut String) -> &'a str {
                buf.clear();
                buf.push_str(itoa::Buffer::new().format(*self));
                buf
            }
        }
    )*};
}
integer_text!(i64, u64);

/// A path made of parts (`inputs.{i}.quantity`), written out.
impl Text for std::fmt::Arguments<'_> {
    fn text<'a>(&'a self, buf: &'a mut String) -> &'a str {
        buf.clear();
        // Writing into a String cannot fail.
        let _ = buf.write_fmt(*self);
        buf
    }
}

/// As `Display` writes them (`jejak_domain::quantity::push_decimal`).
impl Text for jejak_domain::Decimal {
    fn text<'a>(&'a self, buf: &'a mut String) -> &'a str {
        buf.clear();
        jejak_domain::quantity::push_decimal(buf, *self);
        buf
    }
}

/// As `Display` writes it (`jejak_domain::quantity::push_quantity`).
impl Text for Quantity {
    fn text<'a>(&'a self, buf: &'a mut String) -> &'a str {
        buf.clear();
        jejak_domain::quantity::push_quantity(buf, self);
        buf
    }
}

impl Text for jejak_domain::geo::Geometry {
    fn text<'a>(&'a self, buf: &'a mut String) -> &'a str {
        buf.clear();
        self.write_geojson(buf);
        buf
    }
}

impl Text for Hex<'_> {
    fn text<'a>(&'a self, buf: &'a mut String) -> &'a str {
        buf.clear();
        self.push_to(buf);
        buf
    }
}

impl<'e, S: Sink> Fields<'e, S> {
    fn new(sink: S) -> Self {
        Fields {
            sink,
            lot: None,
            path: String::with_capacity(32),
            value: String::with_capacity(64),
        }
    }

    fn about(&mut self, lot: &'e str) -> &mut Self {
        self.lot = Some(lot);
        self
    }

    fn put(&mut self, path: impl Text, value: impl Text, class: Class) -> &mut Self {
        let value = value.text(&mut self.value);
        if !value.is_empty() {
            let path = path.text(&mut self.path);
            self.sink.field(path, value, class, self.lot);
        }
        self
    }

    fn at(&mut self, at: Option<Time>) -> &mut Self {
        if let Some(t) = at {
            self.put("occurred_at", t.0, Class::Public);
        }
        self
    }
}

/// The fields of an event, in a fixed order. Absent and empty values are
/// left out. Paths are unique within an event.
pub fn fields(meta: &Meta<'_>, event: &Event) -> Vec<Field> {
    walk(meta, event, Collect(Vec::new())).0
}

/// The leaf of an event: `leaf(&digests(secret, &fields(meta, event)))`,
/// computed as the fields are walked, without keeping them.
pub fn leaf_of(meta: &Meta<'_>, event: &Event, secret: &[u8]) -> Vec<u8> {
    let mut commit = walk(
        meta,
        event,
        Commit {
            salts: Salts::new(secret),
            digests: Vec::with_capacity(24),
        },
    );
    commit.digests.sort_unstable_by(bytewise);
    leaf(&commit.digests)
}

fn walk<S: Sink>(meta: &Meta<'_>, event: &Event, sink: S) -> S {
    use Class::*;
    let mut f = Fields::new(sink);
    f.put("kind", event.kind(), Public)
        .put("chain", meta.chain, Public)
        .put("sequence", meta.sequence, Private)
        // As traces show them: a trace's edges name the events behind them.
        .put("event_id", meta.event_id, Public)
        .put("recorded_at", meta.recorded_at.0, Public)
        .put("actor", meta.actor, Private)
        .put("envelope", Hex(meta.envelope), Private);
    match event {
        Event::MaterialReceived(e) => {
            f.about(&e.lot_id)
                .put("lot", &e.lot_id, Public)
                .put("facility", &e.facility_id, Public)
                .put("product", &e.product_id, Public)
                .put("quantity", e.quantity, Quantity)
                .put("owner", &e.owner_id, Public)
                .put("supplier", &e.supplier_id, Public)
                .put("origin.place", &e.origin.place, Public)
                .put("origin.plot_id", &e.origin.plot_id, Public);
            if let Some(p) = &e.origin.plot {
                f.put("origin.plot", format_args!("{},{}", p.latitude, p.longitude), Public);
            }
            // Fields added later are committed only when present, so the
            // commitments of events without them never change.
            if let Some(g) = &e.origin.geometry {
                f.put("origin.geometry", g, Public);
            }
            if !e.origin.producer_country.is_empty() {
                f.put("origin.producer_country", &e.origin.producer_country, Public);
            }
            if let Some(a) = e.origin.area_ha {
                f.put("origin.area_ha", a, Public);
            }
            for (i, d) in e.documents.iter().enumerate() {
                f.put(format_args!("documents.{i}.kind"), &d.kind, Private)
                    .put(format_args!("documents.{i}.reference"), &d.reference, Private)
                    .put(format_args!("documents.{i}.blake3"), Hex(&d.blake3), Private);
                if !d.issuer.is_empty() {
                    f.put(format_args!("documents.{i}.issuer"), &d.issuer, Private);
                }
                if let Some(t) = d.valid_from {
                    f.put(format_args!("documents.{i}.valid_from"), t.0, Private);
                }
                if let Some(t) = d.valid_until {
                    f.put(format_args!("documents.{i}.valid_until"), t.0, Private);
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
                f.put(format_args!("measurements.{i}.parameter"), &m.parameter, Private)
                    .put(format_args!("measurements.{i}.value"), m.value, Private)
                    .put(format_args!("measurements.{i}.unit"), &m.unit, Private);
            }
            for (i, finding) in e.findings.iter().enumerate() {
                f.put(format_args!("findings.{i}"), finding, Private);
            }
            f.at(e.occurred_at);
        }
        Event::LotProcessed(e) => {
            f.put("facility", &e.facility_id, Public)
                .put("process_step", &e.process_step, Public)
                .put("line", &e.line, Public);
            for (i, input) in e.inputs.iter().enumerate() {
                f.about(&input.lot_id)
                    .put(format_args!("inputs.{i}.lot"), &input.lot_id, Public)
                    .put(format_args!("inputs.{i}.quantity"), input.quantity, Quantity)
                    // Whether an input carries a share (the first input's
                    // kind of measure does) is public; its amount is not.
                    .put(format_args!("inputs.{i}.unit"), input.quantity.unit().symbol(), Public);
            }
            for (i, o) in e.outputs.iter().enumerate() {
                f.about(&o.lot_id)
                    .put(format_args!("outputs.{i}.lot"), &o.lot_id, Public)
                    .put(format_args!("outputs.{i}.product"), &o.product_id, Public)
                    .put(format_args!("outputs.{i}.quantity"), o.quantity, Quantity)
                    .put(format_args!("outputs.{i}.owner"), &o.owner_id, Public);
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
                f.put(format_args!("packages.{i}.serial"), &p.serial, Private).put(
                    format_args!("packages.{i}.quantity"),
                    p.quantity,
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
                f.put("quantity", q, Quantity);
            }
            for (i, s) in e.package_serials.iter().enumerate() {
                f.put(format_args!("packages.{i}"), s, Private);
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
                f.put(format_args!("lots.{i}"), l, Public);
            }
            // About every lot it names: only whoever sees them all sees it.
            f.put("epcis", &e.event_json, Private).at(e.occurred_at);
        }
        // Tokens: the envelope hash commits to everything; nothing else is ever disclosed.
        Event::TokenIssued(_) | Event::TokenRevoked(_) => {}
    }
    f.sink
}

/// Bytes as lower-case hex, written as they are formatted.
struct Hex<'a>(&'a [u8]);

impl Hex<'_> {
    fn push_to(&self, out: &mut String) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        out.reserve(self.0.len() * 2);
        for b in self.0 {
            out.push(DIGITS[usize::from(b >> 4)] as char);
            out.push(DIGITS[usize::from(b & 15)] as char);
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    Hex(bytes).push_to(&mut out);
    out
}

/// The salts of an event's fields, in the order of its fields: 16 bytes
/// each from one BLAKE3 output stream keyed by the event's secret (an
/// envelope recorded before secrets existed has none: the zero key).
pub fn salts(secret: &[u8], count: usize) -> Vec<[u8; 16]> {
    let mut salts = Salts::new(secret);
    (0..count).map(|_| salts.next_salt()).collect()
}

/// The salt stream, read a 64-byte block (four salts) at a time: each
/// block of the stream is computed once.
struct Salts {
    stream: blake3::OutputReader,
    block: [u8; 64],
    used: usize,
}

impl Salts {
    fn new(secret: &[u8]) -> Salts {
        let key = <[u8; 32]>::try_from(secret).unwrap_or([0u8; 32]);
        let mut stream = blake3::Hasher::new_keyed(&key);
        stream.update(b"jejak-salts/v1");
        Salts {
            stream: stream.finalize_xof(),
            block: [0; 64],
            used: 64,
        }
    }

    fn next_salt(&mut self) -> [u8; 16] {
        if self.used == self.block.len() {
            self.stream.fill(&mut self.block);
            self.used = 0;
        }
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&self.block[self.used..self.used + 16]);
        self.used += 16;
        salt
    }
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
    out.sort_unstable_by(bytewise);
    out
}

/// Bytewise order, comparing the first eight bytes as one number first
/// (digests almost never share them).
fn bytewise(a: &Hash, b: &Hash) -> std::cmp::Ordering {
    let head = |h: &Hash| u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    head(a).cmp(&head(b)).then_with(|| a.cmp(b))
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

    /// A receipt with every optional field, and an inspection.
    fn rich() -> Vec<Event> {
        use jejak_domain::{
            quantity::parse_decimal, Document, GeoPoint, LotInspected, MaterialReceived, Measurement, Origin, Unit,
        };
        let d = |s: &str| parse_decimal("x", s).unwrap();
        vec![
            Event::MaterialReceived(MaterialReceived {
                lot_id: "lot-gabah-1".into(),
                facility_id: "fac-demak".into(),
                product_id: "gabah".into(),
                quantity: Quantity::from_parts(d("1250.5"), Unit::Kg),
                owner_id: "ukm-1".into(),
                supplier_id: "tani-1".into(),
                origin: Origin {
                    place: "Demak".into(),
                    plot_id: "plot-7".into(),
                    plot: Some(GeoPoint {
                        latitude: -6.8945,
                        longitude: 110.6389,
                    }),
                    geometry: None,
                    producer_country: "ID".into(),
                    area_ha: Some(d("1.25")),
                },
                documents: vec![Document {
                    kind: "delivery-note".into(),
                    reference: "DN-1".into(),
                    blake3: [9; 32],
                    issuer: "Koperasi".into(),
                    valid_from: Some(Time(1_600_000_000_000_000_000)),
                    valid_until: None,
                }],
                source_lot_id: Some("lot-0".into()),
                occurred_at: Some(Time(1_700_000_000_000_000_001)),
            }),
            Event::LotInspected(LotInspected {
                lot_id: "lot-gabah-1".into(),
                facility_id: "fac-demak".into(),
                standard_id: "std-gkp".into(),
                measurements: vec![Measurement {
                    parameter: "moisture".into(),
                    value: d("13.5"),
                    unit: "%".into(),
                }],
                verdict: Verdict::Conformant,
                findings: vec!["clean".into()],
                inspector: "ana".into(),
                occurred_at: None,
            }),
            processed(),
        ]
    }

    #[test]
    fn a_leaf_walked_without_keeping_fields_is_the_leaf_of_the_fields() {
        let secret = [5u8; 32];
        let mut got = Vec::new();
        for event in rich() {
            let m = meta(&[1; 32]);
            let want = leaf(&digests(&secret, &fields(&m, &event)));
            assert_eq!(leaf_of(&m, &event, &secret), want, "{}", event.kind());
            got.push(hex(&want[LEAF_PREFIX.len()..]));
        }
        // The leaves as the first commitment code made them: the fields,
        // their formatting and their order are part of the log's format.
        assert_eq!(got, GOLDEN);
    }

    const GOLDEN: [&str; 3] = [
        "4ab9d207099fab4d1fc92af644a6ffe0db3645d7b49c2da24cdb4b5a99a11954",
        "e875ba7c248c3293caebf88e5c1a7f2d534dab91ab942bcb85ed78dc3d57072e",
        "d63ad74fc850a00152018f7b8f067a208dfcdd7af2b7523367eb5a9476f6cd9f",
    ];

    /// The other kinds of event, a geometry and a shipment's optional
    /// fields among them: each kind's fields are formatted as its own code
    /// path does, so each is pinned here too.
    fn other_kinds() -> Vec<Event> {
        use jejak_domain::geo::{Geometry, Position};
        use jejak_domain::gs1::Gtin;
        use jejak_domain::{
            quantity::parse_decimal, EpcisObserved, EventVoided, LotPacked, LotShipped, LotStatusChanged,
            MaterialReceived, Origin, Package, Unit,
        };
        let d = |s: &str| parse_decimal("x", s).unwrap();
        let at = |lon: &str, lat: &str| Position {
            lon: d(lon),
            lat: d(lat),
        };
        let kg = |s: &str| Quantity::from_parts(d(s), Unit::Kg);
        vec![
            Event::MaterialReceived(MaterialReceived {
                lot_id: "lot-kayu-1".into(),
                facility_id: "fac-klaten".into(),
                product_id: "jati".into(),
                quantity: Quantity::from_parts(d("3.750"), Unit::M3),
                owner_id: "ukm-2".into(),
                supplier_id: "tani-2".into(),
                origin: Origin {
                    geometry: Some(Geometry::Polygon(vec![vec![
                        at("110.6000000", "-7.7000"),
                        at("110.6010", "-7.7000"),
                        at("110.6010", "-7.7010"),
                        at("110.6000000", "-7.7000"),
                    ]])),
                    ..Default::default()
                },
                documents: Vec::new(),
                source_lot_id: None,
                occurred_at: None,
            }),
            Event::LotPacked(LotPacked {
                facility_id: "fac-demak".into(),
                lot_id: "lot-beras-1".into(),
                gtin: Gtin::parse("09506000134352").unwrap(),
                packages: vec![
                    Package {
                        serial: "P-1".into(),
                        quantity: kg("5"),
                    },
                    Package {
                        serial: "P-2".into(),
                        quantity: kg("2.5"),
                    },
                ],
                occurred_at: Some(Time(-5)),
            }),
            Event::LotShipped(LotShipped {
                facility_id: "fac-demak".into(),
                lot_id: "lot-beras-1".into(),
                quantity: Some(kg("7.5")),
                package_serials: vec!["P-1".into(), "P-2".into()],
                consignee_id: "buyer-1".into(),
                document: "SJ-9".into(),
                dds_reference: "DDS-2026-1".into(),
                occurred_at: Some(Time(u64::MAX as i64)),
            }),
            Event::LotStatusChanged(LotStatusChanged {
                facility_id: "fac-demak".into(),
                lot_id: "lot-beras-1".into(),
                status: LotStatus::Recalled,
                reason: "aflatoxin".into(),
                occurred_at: None,
            }),
            Event::EventVoided(EventVoided {
                facility_id: "fac-demak".into(),
                voided_event_id: "e-0".into(),
                reason: "typo".into(),
                replacement_event_id: Some("e-2".into()),
                occurred_at: None,
            }),
            Event::EpcisObserved(EpcisObserved {
                facility_id: String::new(),
                event_type: "ObjectEvent".into(),
                event_json: "{\"type\":\"ObjectEvent\"}".into(),
                lot_ids: vec!["lot-a".into(), "lot-b".into()],
                occurred_at: Some(Time(0)),
            }),
        ]
    }

    #[test]
    fn the_leaves_of_every_other_kind_of_event_are_as_they_were() {
        let secret = [7u8; 32];
        let got: Vec<String> = other_kinds()
            .iter()
            .map(|event| hex(&leaf_of(&meta(&[2; 32]), event, &secret)[LEAF_PREFIX.len()..]))
            .collect();
        assert_eq!(got, OTHER_GOLDEN);
    }

    /// As the walk formatted them before it took text as it is (`d6bae52`).
    const OTHER_GOLDEN: [&str; 6] = [
        "494c31e727b6111cd188f331fec6121658bf1cf5e5951500cde591c3b9469af5",
        "87f0ba34a17f1223124baeed810423453a2e9d39f84a1a9e67bde60f30e797ea",
        "de36c49b8dd685434be55f93edca6f38f6a7336f768f22e56be96c116882d48e",
        "c263768cd700e0872f3e211d02bd1fed26c778746a29027b537026b13a212b8d",
        "d2233696cfde4bb4687d2a0359bc86f14345eca2a6e0db6756a02cc2e18f116f",
        "7665d742b65930bee62f0d0a7381036a5cb98205f1d2b0724d52be68701949a8",
    ];

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
