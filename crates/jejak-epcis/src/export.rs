//! jejak's events as EPCIS 2.0 JSON-LD events (the table in the README):
//!
//! | jejak | EPCIS 2.0 |
//! |---|---|
//! | receipt | ObjectEvent ADD, bizStep `receiving`, disposition `in_progress`, the lot's class in `quantityList`, the supplier as source and the owner as destination (`owning_party`), origin and documents as ILMD |
//! | inspection | ObjectEvent OBSERVE, bizStep `inspecting`, disposition `conformant` or `non_conformant` (`non_sellable_other` for a hold verdict), the measurements as one sensor report each |
//! | processing | TransformationEvent: inputs and outputs as quantity lists, the step as a bizStep URI, each output's owner as ILMD |
//! | packing | AggregationEvent ADD: the lot's class as the parent, its units as SGTINs |
//! | shipment | ObjectEvent OBSERVE, bizStep `shipping`, disposition `in_transit`, the consignee as destination, the delivery note as a `desadv` business transaction |
//! | hold / release / recall / disposal | ObjectEvent OBSERVE with the disposition (`non_sellable_other`, `active`, `recalled`, `disposed`), persistent where CBV says so |
//! | void | the voided event again, with an `errorDeclaration` naming the correcting event |
//! | master data | the document header's vocabularies (locations, parties, product classes, standards) |
//!
//! Identifiers: a product with a GTIN has LGTIN lot classes
//! (`https://id.gs1.org/01/{gtin}/10/{lot}`) and SGTIN units; everything
//! else gets a stable id under the configured private Digital-Link-style
//! domain (`{domain}/lot/{product}/{lot}`, `{domain}/loc/{facility}`,
//! `{domain}/party/{party}`). What EPCIS has no field for is kept as user
//! extensions in jejak's namespace, so that capturing an export gives back
//! the same events.
//!
//! **Invariant:** the mapping is a pure function of the event, its record
//! and the master data: the same event always gives the same JSON and so the
//! same CBV 2.0 event hash.

use jejak_domain::gs1::Gln;
use jejak_domain::{
    Event, Facts, GeoPoint, LotStatus, Measurement, Party, PartyRole, Product, ProductKind, Quantity, Sector, Time,
    Unit, Verdict,
};
use jejak_verify::commit::Class;
use serde_json::{json, Map, Value};

/// The EPCIS 2.0 JSON-LD context.
pub const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";
/// jejak's namespace for what EPCIS has no field for (prefix `jejak:`).
pub const NAMESPACE: &str = "https://ns.jejak.id/epcis/";
/// The prefix of jejak's namespace in documents it writes.
pub const PREFIX: &str = "jejak";
/// Central Java keeps Western Indonesian Time (UTC+7) all year.
pub const TIME_ZONE_OFFSET: &str = "+07:00";

/// The document `@context`: EPCIS's, and jejak's namespace.
pub fn context() -> Value {
    json!([EPCIS_CONTEXT, { PREFIX: NAMESPACE }])
}

/// Where ids of things without a GS1 key live.
#[derive(Debug, Clone)]
pub struct Ids {
    domain: String,
}

impl Ids {
    /// `domain` is an `https://` URI prefix, e.g. `https://id.koperasi.jatengprov.go.id`.
    pub fn new(domain: &str) -> Ids {
        Ids {
            domain: domain.trim_end_matches('/').to_string(),
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// A lot's class: an LGTIN when its product has a GTIN.
    pub fn lot_class(&self, product: Option<&Product>, product_id: &str, lot: &str) -> String {
        match product.and_then(|p| p.gtin.as_ref()) {
            Some(gtin) => format!("https://id.gs1.org/01/{gtin}/10/{lot}"),
            None => format!("{}/lot/{product_id}/{lot}", self.domain),
        }
    }

    /// A product's class (master data): its GTIN, or a private id.
    pub fn product_class(&self, product: &Product) -> String {
        match &product.gtin {
            Some(gtin) => format!("https://id.gs1.org/01/{gtin}"),
            None => format!("{}/product/{}", self.domain, product.id),
        }
    }

    /// One unit of a packed lot: an SGTIN.
    pub fn unit(gtin: &impl std::fmt::Display, serial: &str) -> String {
        format!("https://id.gs1.org/01/{gtin}/21/{serial}")
    }

    /// A facility (read point and business location): its SGLN when it
    /// has a GLN.
    pub fn location(&self, facility: &str, gln: Option<&Gln>) -> String {
        match gln {
            Some(g) => format!("https://id.gs1.org/414/{g}"),
            None => format!("{}/loc/{facility}", self.domain),
        }
    }

    /// A party (source or destination owner): its PGLN when it has a GLN.
    pub fn party(&self, party: &str, gln: Option<&Gln>) -> String {
        match gln {
            Some(g) => format!("https://id.gs1.org/417/{g}"),
            None => format!("{}/party/{party}", self.domain),
        }
    }

    /// A quality standard.
    pub fn standard(&self, standard: &str) -> String {
        format!("{}/standard/{standard}", self.domain)
    }

    /// A process step as a bizStep URI (CBV has no milling or sawing).
    pub fn step(&self, step: &str) -> String {
        format!("{NAMESPACE}step/{step}")
    }
}

/// UN/CEFACT Recommendation 20 codes of jejak's units.
pub fn uom(unit: Unit) -> &'static str {
    match unit {
        Unit::Kg => "KGM",
        Unit::G => "GRM",
        Unit::T => "TNE",
        Unit::Pcs => "H87",
        Unit::M => "MTR",
        Unit::M2 => "MTK",
        Unit::M3 => "MTQ",
        Unit::L => "LTR",
    }
}

/// The unit of a UN/CEFACT code.
pub fn unit_of_uom(code: &str) -> Option<Unit> {
    Unit::ALL.into_iter().find(|u| uom(*u) == code)
}

/// An instant as `xsd:dateTime` in UTC, to the millisecond.
pub fn time(t: Time) -> String {
    let at =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (y, mo, d) = (at.year(), u8::from(at.month()), at.day());
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// A stored event as the export needs it.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub event_id: &'a str,
    pub recorded_at: Option<Time>,
    pub event: &'a Event,
}

/// A void of an exported event: when, why, and the EPCIS id of the event
/// that corrects it (if one does).
#[derive(Debug, Clone)]
pub struct Correction {
    pub declared_at: Time,
    pub reason: String,
    pub corrective_event_ids: Vec<String>,
    /// jejak's ids of the void and of the replacing event (private).
    pub void_event_id: String,
    pub replacement_event_id: Option<String>,
}

fn ext(name: &str) -> String {
    format!("{PREFIX}:{name}")
}

fn quantity_element(class: String, q: &Quantity) -> Value {
    json!({
        "epcClass": class,
        "quantity": decimal_number(q.value()),
        "uom": uom(q.unit()),
    })
}

/// A decimal as a JSON number, exactly as written (no float rounding).
fn decimal_number(d: jejak_domain::Decimal) -> Value {
    let text = d.normalize().to_string();
    serde_json::from_str::<serde_json::Number>(&text)
        .map(Value::Number)
        .unwrap_or(Value::String(text))
}

fn geo(p: &GeoPoint) -> String {
    format!("geo:{},{}", p.latitude, p.longitude)
}

fn source(kind: &str, id: String) -> Value {
    json!({ "type": kind, "source": id })
}

fn destination(kind: &str, id: String) -> Value {
    json!({ "type": kind, "destination": id })
}

/// The parts every event has.
fn base(kind: &str, record: &Record<'_>, at: Option<Time>, action: Option<&str>, private: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), kind.into());
    let when = at.or(record.recorded_at).unwrap_or_default();
    m.insert("eventTime".into(), time(when).into());
    m.insert("eventTimeZoneOffset".into(), TIME_ZONE_OFFSET.into());
    if let Some(r) = record.recorded_at {
        m.insert("recordTime".into(), time(r).into());
    }
    if let Some(a) = action {
        m.insert("action".into(), a.into());
    }
    if private {
        m.insert(ext("eventId"), record.event_id.into());
    }
    m
}

fn place(m: &mut Map<String, Value>, location: String) {
    m.insert("readPoint".into(), json!({ "id": location }));
    m.insert("bizLocation".into(), json!({ "id": location }));
}

/// What a caller may see of an event's parts: the class of a part and the
/// lot it is about (see `jejak_read::View::discloses`, the one decision).
pub type Disclose<'a> = &'a dyn Fn(Class, Option<&str>) -> bool;

/// Everything, for whoever sees every lot.
pub fn everything(_: Class, _: Option<&str>) -> bool {
    true
}

/// The EPCIS event of a jejak event as `disclose` lets the caller see it,
/// or `None` for what is not an EPCIS event (master data, tokens, voids: a
/// void is exported as the voided event with its `correction`). Quantities
/// are of the `Quantity` class, documents, measurements, findings,
/// recorders, consignees and jejak's event ids `Private`, the rest
/// (lots, products, places, parties, steps, verdicts, statuses, times)
/// `Public`.
pub fn event<F: Facts + ?Sized>(
    record: &Record<'_>,
    correction: Option<&Correction>,
    ids: &Ids,
    facts: &F,
    disclose: Disclose<'_>,
) -> Option<Value> {
    let quantity_element = |class: String, q: &Quantity, lot: &str| {
        if disclose(Class::Quantity, Some(lot)) {
            quantity_element(class, q)
        } else {
            json!({ "epcClass": class })
        }
    };
    let private = |lot: &str| disclose(Class::Private, Some(lot));
    let location = |f: &str| ids.location(f, facts.facility(f).and_then(|x| x.gln.as_ref()));
    let party = |p: &str| ids.party(p, facts.party(p).and_then(|x| x.gln.as_ref()));
    let class = |product_id: &str, lot: &str| ids.lot_class(facts.product(product_id), product_id, lot);
    let lot_class = |lot: &str| {
        let product = facts.lot(lot).map(|l| l.product_id.to_string()).unwrap_or_default();
        class(&product, lot)
    };
    let mut m = match record.event {
        Event::MaterialReceived(e) => {
            let mut m = base("ObjectEvent", record, e.occurred_at, Some("ADD"), private(&e.lot_id));
            m.insert("epcList".into(), json!([]));
            m.insert(
                "quantityList".into(),
                json!([quantity_element(
                    class(&e.product_id, &e.lot_id),
                    &e.quantity,
                    &e.lot_id
                )]),
            );
            m.insert("bizStep".into(), "receiving".into());
            m.insert("disposition".into(), "in_progress".into());
            place(&mut m, location(&e.facility_id));
            m.insert(
                "sourceList".into(),
                json!([source("owning_party", party(&e.supplier_id))]),
            );
            m.insert(
                "destinationList".into(),
                json!([destination("owning_party", party(&e.owner_id))]),
            );
            let mut ilmd = Map::new();
            ilmd.insert(ext("product"), e.product_id.clone().into());
            if !e.origin.place.is_empty() {
                ilmd.insert(ext("originPlace"), e.origin.place.clone().into());
            }
            if !e.origin.plot_id.is_empty() {
                ilmd.insert(ext("plotId"), e.origin.plot_id.clone().into());
            }
            if let Some(p) = &e.origin.plot {
                ilmd.insert(ext("plot"), geo(p).into());
            }
            if let Some(g) = &e.origin.geometry {
                // The geometry's own GeoJSON text, read back as JSON.
                let geometry = serde_json::from_str::<Value>(&g.to_geojson()).unwrap_or(Value::Null);
                ilmd.insert(ext("geometry"), geometry);
            }
            if !e.origin.producer_country.is_empty() {
                ilmd.insert(ext("producerCountry"), e.origin.producer_country.clone().into());
            }
            if let Some(a) = e.origin.area_ha {
                ilmd.insert(ext("areaHa"), a.to_string().into());
            }
            if let Some(src) = &e.source_lot_id {
                ilmd.insert(ext("sourceLot"), lot_class(src).into());
            }
            if !e.documents.is_empty() && private(&e.lot_id) {
                let docs: Vec<Value> = e
                    .documents
                    .iter()
                    .map(|d| {
                        let mut doc = json!({
                            ext("kind"): d.kind,
                            ext("reference"): d.reference,
                            ext("blake3"): jejak_verify::commit::hex(&d.blake3),
                        });
                        if !d.issuer.is_empty() {
                            doc[ext("issuer")] = d.issuer.clone().into();
                        }
                        if let Some(t) = d.valid_from {
                            doc[ext("validFrom")] = time(t).into();
                        }
                        if let Some(t) = d.valid_until {
                            doc[ext("validUntil")] = time(t).into();
                        }
                        doc
                    })
                    .collect();
                ilmd.insert(ext("documents"), docs.into());
            }
            m.insert("ilmd".into(), ilmd.into());
            m
        }
        Event::LotInspected(e) => {
            let seen = private(&e.lot_id);
            let mut m = base("ObjectEvent", record, e.occurred_at, Some("OBSERVE"), seen);
            m.insert("epcList".into(), json!([]));
            m.insert("quantityList".into(), json!([{ "epcClass": lot_class(&e.lot_id) }]));
            m.insert("bizStep".into(), "inspecting".into());
            let disposition = match e.verdict {
                Verdict::Conformant => "conformant",
                Verdict::NonConformant => "non_conformant",
                Verdict::Hold => "non_sellable_other",
            };
            m.insert("disposition".into(), disposition.into());
            place(&mut m, location(&e.facility_id));
            if !e.measurements.is_empty() && seen {
                let at = e.occurred_at.or(record.recorded_at).unwrap_or_default();
                let reports: Vec<Value> = e.measurements.iter().map(sensor_report).collect();
                m.insert(
                    "sensorElementList".into(),
                    json!([{ "sensorMetadata": { "time": time(at) }, "sensorReport": reports }]),
                );
            }
            m.insert(ext("standard"), ids.standard(&e.standard_id).into());
            m.insert(ext("verdict"), verdict_name(e.verdict).into());
            if !e.findings.is_empty() && seen {
                m.insert(ext("findings"), e.findings.clone().into());
            }
            if !e.inspector.is_empty() && seen {
                m.insert(ext("inspector"), e.inspector.clone().into());
            }
            m
        }
        Event::LotProcessed(e) => {
            let all = e
                .inputs
                .iter()
                .map(|i| &i.lot_id)
                .chain(e.outputs.iter().map(|o| &o.lot_id))
                .all(|l| private(l));
            let mut m = base("TransformationEvent", record, e.occurred_at, None, all);
            let inputs: Vec<Value> = e
                .inputs
                .iter()
                .map(|i| quantity_element(lot_class(&i.lot_id), &i.quantity, &i.lot_id))
                .collect();
            let outputs: Vec<Value> = e
                .outputs
                .iter()
                .map(|o| quantity_element(class(&o.product_id, &o.lot_id), &o.quantity, &o.lot_id))
                .collect();
            m.insert("inputEPCList".into(), json!([]));
            m.insert("inputQuantityList".into(), inputs.into());
            m.insert("outputEPCList".into(), json!([]));
            m.insert("outputQuantityList".into(), outputs.into());
            m.insert("bizStep".into(), ids.step(&e.process_step).into());
            m.insert("disposition".into(), "in_progress".into());
            place(&mut m, location(&e.facility_id));
            let outputs: Vec<Value> = e
                .outputs
                .iter()
                .map(|o| {
                    json!({
                        ext("lot"): o.lot_id,
                        ext("product"): o.product_id,
                        ext("owner"): party(&o.owner_id),
                    })
                })
                .collect();
            let mut ilmd = Map::new();
            ilmd.insert(ext("outputs"), outputs.into());
            m.insert("ilmd".into(), ilmd.into());
            if !e.line.is_empty() && all {
                m.insert(ext("line"), e.line.clone().into());
            }
            m
        }
        Event::LotPacked(e) => {
            let seen = private(&e.lot_id);
            let mut m = base("AggregationEvent", record, e.occurred_at, Some("ADD"), seen);
            m.insert("parentID".into(), lot_class(&e.lot_id).into());
            // Which units a lot became is the lot's own business.
            let children: Vec<Value> = if seen {
                e.packages
                    .iter()
                    .map(|p| Ids::unit(&e.gtin, &p.serial).into())
                    .collect()
            } else {
                Vec::new()
            };
            m.insert("childEPCs".into(), children.into());
            m.insert("bizStep".into(), "packing".into());
            m.insert("disposition".into(), "in_progress".into());
            place(&mut m, location(&e.facility_id));
            if seen {
                let contents: Vec<Value> = e
                    .packages
                    .iter()
                    .map(|p| quantity_element(Ids::unit(&e.gtin, &p.serial), &p.quantity, &e.lot_id))
                    .collect();
                m.insert(ext("contents"), contents.into());
            }
            m
        }
        Event::LotShipped(e) => {
            let seen = private(&e.lot_id);
            let mut m = base("ObjectEvent", record, e.occurred_at, Some("OBSERVE"), seen);
            let gtin = facts
                .lot(&e.lot_id)
                .and_then(|l| facts.product(l.product_id))
                .and_then(|p| p.gtin.clone());
            let units: Vec<Value> = match &gtin {
                Some(g) if seen => e.package_serials.iter().map(|s| Ids::unit(g, s).into()).collect(),
                _ => Vec::new(),
            };
            m.insert("epcList".into(), units.into());
            let mut q = json!({ "epcClass": lot_class(&e.lot_id) });
            if let Some(quantity) = &e.quantity {
                q = quantity_element(lot_class(&e.lot_id), quantity, &e.lot_id);
            }
            m.insert("quantityList".into(), json!([q]));
            m.insert("bizStep".into(), "shipping".into());
            m.insert("disposition".into(), "in_transit".into());
            place(&mut m, location(&e.facility_id));
            if !e.document.is_empty() && seen {
                m.insert(
                    "bizTransactionList".into(),
                    json!([{ "type": "desadv", "bizTransaction": format!("{}/doc/{}", ids.domain(), e.document) }]),
                );
            }
            if seen {
                m.insert(
                    "destinationList".into(),
                    json!([destination("owning_party", party(&e.consignee_id))]),
                );
            }
            if gtin.is_none() && !e.package_serials.is_empty() && seen {
                m.insert(ext("packages"), e.package_serials.clone().into());
            }
            if !e.dds_reference.is_empty() && seen {
                m.insert(ext("ddsReference"), e.dds_reference.clone().into());
            }
            m
        }
        Event::LotStatusChanged(e) => {
            let mut m = base(
                "ObjectEvent",
                record,
                e.occurred_at,
                Some("OBSERVE"),
                private(&e.lot_id),
            );
            m.insert("epcList".into(), json!([]));
            m.insert("quantityList".into(), json!([{ "epcClass": lot_class(&e.lot_id) }]));
            let (step, disposition, persistent) = match e.status {
                LotStatus::OnHold => (
                    "holding",
                    "non_sellable_other",
                    json!({ "set": ["non_sellable_other"] }),
                ),
                LotStatus::Released | LotStatus::Active => {
                    ("inspecting", "active", json!({ "unset": ["non_sellable_other"] }))
                }
                LotStatus::Recalled => ("holding", "recalled", json!({ "set": ["recalled"] })),
                LotStatus::Disposed => ("destroying", "disposed", json!({ "set": ["disposed"] })),
            };
            m.insert("bizStep".into(), step.into());
            m.insert("disposition".into(), disposition.into());
            m.insert("persistentDisposition".into(), persistent);
            place(&mut m, location(&e.facility_id));
            m.insert(ext("status"), status_name(e.status).into());
            // A private field, as in a provenance bundle: the public view
            // keeps the status, not why (the provenance page shows the
            // reason for the labelled lot only).
            if !e.reason.is_empty() && private(&e.lot_id) {
                m.insert(ext("reason"), e.reason.clone().into());
            }
            m
        }
        // Someone else's event, kept as received: to whoever sees every lot
        // it names (with none, to whoever sees everything).
        Event::EpcisObserved(o) => {
            let seen = match o.lot_ids.is_empty() {
                true => disclose(Class::Private, None),
                false => o.lot_ids.iter().all(|l| private(l)),
            };
            if !seen {
                return None;
            }
            return match serde_json::from_str::<Value>(&o.event_json) {
                Ok(Value::Object(mut m)) => {
                    if let Some(r) = record.recorded_at {
                        m.insert("recordTime".into(), time(r).into());
                    }
                    Some(Value::Object(m))
                }
                _ => None,
            };
        }
        Event::PartyRegistered(_)
        | Event::FacilityRegistered(_)
        | Event::ProductRegistered(_)
        | Event::StandardRegistered(_)
        | Event::EventVoided(_)
        | Event::TokenIssued(_)
        | Event::TokenRevoked(_) => return None,
    };
    if let Some(c) = correction {
        let mut d = Map::new();
        d.insert("declarationTime".into(), time(c.declared_at).into());
        d.insert("reason".into(), "incorrect_data".into());
        if !c.corrective_event_ids.is_empty() {
            d.insert("correctiveEventIDs".into(), c.corrective_event_ids.clone().into());
        }
        let about = record.event.lots();
        if about.iter().all(|l| private(l)) {
            if !c.reason.is_empty() {
                d.insert(ext("reason"), c.reason.clone().into());
            }
            d.insert(ext("voidEventId"), c.void_event_id.clone().into());
            if let Some(r) = &c.replacement_event_id {
                d.insert(ext("replacementEventId"), r.clone().into());
            }
        }
        m.insert("errorDeclaration".into(), d.into());
    }
    Some(m.into())
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Conformant => "conformant",
        Verdict::NonConformant => "non-conformant",
        Verdict::Hold => "hold",
    }
}

/// The status's name in exports (`on_hold`, `released`, …).
pub fn status_name(s: LotStatus) -> &'static str {
    match s {
        LotStatus::Active => "active",
        LotStatus::OnHold => "on_hold",
        LotStatus::Released => "released",
        LotStatus::Recalled => "recalled",
        LotStatus::Disposed => "disposed",
    }
}

/// A measurement as a sensor report: GS1's measurement type where it has
/// one, a user-defined type in jejak's namespace otherwise (grain
/// moisture, broken kernels, …), the value exactly and the unit as given.
fn sensor_report(m: &Measurement) -> Value {
    let mut r = Map::new();
    r.insert("type".into(), measurement_type(&m.parameter).into());
    r.insert("value".into(), decimal_number(m.value));
    if let Some(code) = measurement_uom(&m.unit) {
        r.insert("uom".into(), code.into());
    }
    r.insert(ext("parameter"), m.parameter.clone().into());
    // As measured, to the digit (0.90 is not 0.9 on a certificate).
    r.insert(ext("value"), m.value.to_string().into());
    if !m.unit.is_empty() {
        r.insert(ext("unit"), m.unit.clone().into());
    }
    r.into()
}

/// GS1's measurement type (`gs1:Temperature`, …) of a parameter code,
/// or jejak's own.
pub fn measurement_type(parameter: &str) -> String {
    let gs1 = match parameter {
        "temperature" => Some("Temperature"),
        "humidity" | "relative_humidity" => Some("Humidity"),
        "length" => Some("Length"),
        "mass" | "weight" => Some("Mass"),
        "ph" => Some("pH"),
        _ => None,
    };
    match gs1 {
        Some(t) => format!("gs1:{t}"),
        None => format!("{PREFIX}:measurement/{parameter}"),
    }
}

/// The UN/CEFACT code of a measurement's unit, where it has one.
pub fn measurement_uom(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "%" | "percent" => "P1",
        "°C" | "C" | "celsius" => "CEL",
        "kg" => "KGM",
        "g" => "GRM",
        "mm" => "MMT",
        "cm" => "CMT",
        "m" => "MTR",
        "g/l" | "g/L" => "GL",
        "ppm" => "59",
        _ => return None,
    })
}

fn sector_name(s: Sector) -> &'static str {
    match s {
        Sector::Rice => "rice",
        Sector::Metal => "metal",
        Sector::Garment => "garment",
        Sector::Furniture => "furniture",
    }
}

fn kind_name(k: ProductKind) -> &'static str {
    match k {
        ProductKind::Raw => "raw",
        ProductKind::Intermediate => "intermediate",
        ProductKind::Finished => "finished",
    }
}

fn role_name(r: PartyRole) -> &'static str {
    match r {
        PartyRole::Ukm => "ukm",
        PartyRole::Supplier => "supplier",
        PartyRole::Customer => "customer",
        PartyRole::Operator => "operator",
    }
}

fn attribute(id: &str, value: impl Into<Value>) -> Value {
    json!({ "id": id, "attribute": value.into() })
}

/// The master data of the events exported, as the header's vocabularies:
/// capturing the document into an empty jejak registers them first.
pub fn master_data(
    ids: &Ids,
    parties: &[&Party],
    facilities: &[&jejak_domain::Facility],
    products: &[&Product],
    standards: &[&jejak_domain::QualityStandard],
) -> Value {
    let party_elements: Vec<Value> = parties
        .iter()
        .map(|p| {
            let roles: Vec<&str> = p.roles.iter().map(|r| role_name(*r)).collect();
            json!({
                "id": ids.party(&p.id, p.gln.as_ref()),
                "attributes": [
                    attribute(&ext("id"), p.id.clone()),
                    attribute("urn:epcglobal:cbv:mda#name", p.name.clone()),
                    attribute(&ext("roles"), roles),
                    attribute(&ext("district"), p.district.clone()),
                    attribute(&ext("contact"), p.contact.clone()),
                ],
            })
        })
        .collect();
    let location_elements: Vec<Value> = facilities
        .iter()
        .map(|f| {
            let operator_gln = parties
                .iter()
                .find(|p| p.id == f.operator_id)
                .and_then(|p| p.gln.as_ref());
            let mut attributes = vec![
                attribute(&ext("id"), f.id.clone()),
                attribute("urn:epcglobal:cbv:mda#name", f.name.clone()),
                attribute(&ext("sector"), sector_name(f.sector)),
                attribute(&ext("district"), f.district.clone()),
                attribute(&ext("operator"), ids.party(&f.operator_id, operator_gln)),
            ];
            if f.requires_legality {
                attributes.push(attribute(&ext("requiresTimberLegality"), "true".to_string()));
            }
            if let Some(p) = &f.location {
                attributes.push(attribute("urn:epcglobal:cbv:mda#latitude", p.latitude.to_string()));
                attributes.push(attribute("urn:epcglobal:cbv:mda#longitude", p.longitude.to_string()));
            }
            json!({ "id": ids.location(&f.id, f.gln.as_ref()), "attributes": attributes })
        })
        .collect();
    let class_elements: Vec<Value> = products
        .iter()
        .map(|p| {
            json!({
                "id": ids.product_class(p),
                "attributes": [
                    attribute(&ext("product"), p.id.clone()),
                    attribute("urn:epcglobal:cbv:mda#descriptionShort", p.name.clone()),
                    attribute(&ext("sector"), sector_name(p.sector)),
                    attribute(&ext("kind"), kind_name(p.kind)),
                    attribute(&ext("unit"), uom(p.unit)),
                ],
            })
        })
        .collect();
    let standard_elements: Vec<Value> = standards
        .iter()
        .map(|s| {
            let parameters: Vec<Value> = s
                .parameters
                .iter()
                .map(|p| {
                    json!({
                        "code": p.code,
                        "name": p.name,
                        "unit": p.unit,
                        "min": p.min.map(|d| d.to_string()),
                        "max": p.max.map(|d| d.to_string()),
                        "required": p.required,
                    })
                })
                .collect();
            json!({
                "id": ids.standard(&s.id),
                "attributes": [
                    attribute("urn:epcglobal:cbv:mda#name", s.name.clone()),
                    attribute(&ext("reference"), s.reference.clone()),
                    attribute(&ext("parameters"), parameters),
                ],
            })
        })
        .collect();
    json!({
        "vocabularyList": [
            { "type": "urn:epcglobal:epcis:vtype:Party", "vocabularyElementList": party_elements },
            { "type": "urn:epcglobal:epcis:vtype:BusinessLocation", "vocabularyElementList": location_elements },
            { "type": "urn:epcglobal:epcis:vtype:EPCClass", "vocabularyElementList": class_elements },
            { "type": format!("{NAMESPACE}vtype/QualityStandard"), "vocabularyElementList": standard_elements },
        ]
    })
}

/// An EPCIS 2.0 document of `events`, with `master` data in its header
/// when given. `created` is the document's creation time.
pub fn document(events: Vec<Value>, master: Option<Value>, created: Time) -> Value {
    let mut doc = Map::new();
    doc.insert("@context".into(), context());
    doc.insert("type".into(), "EPCISDocument".into());
    doc.insert("schemaVersion".into(), "2.0".into());
    doc.insert("creationDate".into(), time(created).into());
    if let Some(m) = master {
        doc.insert("epcisHeader".into(), json!({ "epcisMasterData": m }));
    }
    doc.insert("epcisBody".into(), json!({ "eventList": events }));
    doc.into()
}
