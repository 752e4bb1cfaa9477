//! EPCIS 2.0 capture: a document (or a single event) checked as EPCIS says
//! it must be, then each event turned into what jejak records:
//!
//! - an event of jejak's shape (see `export`) at one of jejak's facilities
//!   becomes the command it was exported from (receipt, inspection,
//!   processing, packing, shipment, status change; a re-issued event with
//!   an `errorDeclaration` becomes a void), decided by the same rules as
//!   gRPC capture;
//! - any other valid event (an AssociationEvent, a TransactionEvent, an
//!   SSCC observed, an event at another company's location) is kept as an
//!   EPCIS observation, as received;
//! - the header's vocabularies of jejak's namespace register the parties,
//!   facilities, products and standards they describe, first.
//!
//! **Invariant:** checking a document writes nothing; a problem names the
//! event's index and the field.

use jejak_domain::{
    Command, Decimal, Document, EpcisObserved, EventVoided, Facility, GeoPoint, InspectLot, LotInput, LotOutput,
    LotPacked, LotProcessed, LotShipped, LotStatus, LotStatusChanged, MaterialReceived, Measurement, Origin, Package,
    Parameter, Party, PartyRole, Product, ProductKind, QualityStandard, Quantity, Sector, Time,
};
use serde_json::{Map, Value};

use crate::export::{Ids, NAMESPACE, PREFIX};
use crate::query::{cbv_word, parse_time, EVENT_TYPES};

/// The most events one document may hold.
pub const MAX_EVENTS: usize = 10_000;

/// What is wrong with a document or one of its events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {reason}", .index.map(|i| format!("event {i}: ")).unwrap_or_default())]
pub struct Problem {
    /// The event's index in the document's event list.
    pub index: Option<usize>,
    pub field: String,
    pub reason: String,
}

fn problem(index: Option<usize>, field: impl Into<String>, reason: impl Into<String>) -> Problem {
    Problem {
        index,
        field: field.into(),
        reason: reason.into(),
    }
}

/// A document's events and header, checked.
#[derive(Debug, Clone)]
pub struct Checked {
    pub events: Vec<Value>,
    /// The header's vocabularies (`epcisHeader.epcisMasterData`), if any.
    pub master: Option<Value>,
    /// The document's `@context` (what the events' prefixes mean).
    pub context: Value,
}

const EVENT_FIELDS: &[&str] = &[
    "@context",
    "type",
    "eventTime",
    "eventTimeZoneOffset",
    "recordTime",
    "eventID",
    "errorDeclaration",
    "certificationInfo",
    "action",
    "bizStep",
    "disposition",
    "persistentDisposition",
    "readPoint",
    "bizLocation",
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "sensorElementList",
    "ilmd",
    "epcList",
    "quantityList",
    "parentID",
    "childEPCs",
    "childQuantityList",
    "inputEPCList",
    "inputQuantityList",
    "outputEPCList",
    "outputQuantityList",
    "transformationID",
];

/// A CBV word from `words`, or a URI or a prefixed name of one's own
/// vocabulary; otherwise the problem says the value is `expected`.
fn word(index: usize, field: String, value: &Value, words: &[&str], expected: &str) -> Result<(), Problem> {
    let s = value.as_str().unwrap_or_default();
    if words.contains(&cbv_word(s)) || s.contains(':') {
        Ok(())
    } else {
        Err(problem(Some(index), field, format!("{s:?} is {expected}")))
    }
}

fn check_time(index: usize, field: &str, v: Option<&Value>) -> Result<(), Problem> {
    match v.and_then(Value::as_str) {
        Some(t) => parse_time(field, t)
            .map(|_| ())
            .map_err(|e| problem(Some(index), field, e.reason)),
        None => Err(problem(
            Some(index),
            field,
            "is required: a date and time with an offset",
        )),
    }
}

fn check_offset(index: usize, v: Option<&Value>) -> Result<(), Problem> {
    let field = "eventTimeZoneOffset";
    let Some(o) = v.and_then(Value::as_str) else {
        return Err(problem(Some(index), field, "is required, like +07:00"));
    };
    let b = o.as_bytes();
    let ok = b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[1..3].iter().all(u8::is_ascii_digit)
        && b[3] == b':'
        && b[4..6].iter().all(u8::is_ascii_digit);
    if ok {
        Ok(())
    } else {
        Err(problem(
            Some(index),
            field,
            format!("{o:?} is not an offset like +07:00"),
        ))
    }
}

fn check_quantity_list(index: usize, field: &str, v: &Value) -> Result<(), Problem> {
    let Some(items) = v.as_array() else {
        return Err(problem(Some(index), field, "is not a list"));
    };
    for (i, q) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Some(q) = q.as_object() else {
            return Err(problem(Some(index), at, "is not an object"));
        };
        for key in q.keys() {
            if !matches!(key.as_str(), "epcClass" | "quantity" | "uom") {
                return Err(problem(
                    Some(index),
                    format!("{at}.{key}"),
                    "is not a field of a quantity element (epcClass, quantity, uom)",
                ));
            }
        }
        if !q.get("epcClass").is_some_and(Value::is_string) {
            return Err(problem(
                Some(index),
                format!("{at}.epcClass"),
                "is required: a class id",
            ));
        }
        if q.get("quantity").is_some_and(|n| !n.is_number()) {
            return Err(problem(Some(index), format!("{at}.quantity"), "is not a number"));
        }
        if q.get("uom").is_some_and(|u| !u.is_string()) {
            return Err(problem(Some(index), format!("{at}.uom"), "is not a unit code"));
        }
    }
    Ok(())
}

fn nonempty(e: &Map<String, Value>, key: &str) -> bool {
    e.get(key).and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

/// Checks one event as EPCIS 2.0 and CBV 2.0 require.
pub fn check_event(index: usize, event: &Value) -> Result<(), Problem> {
    let Some(e) = event.as_object() else {
        return Err(problem(Some(index), "event", "is not a JSON object"));
    };
    let kind = e.get("type").and_then(Value::as_str).unwrap_or_default();
    if !EVENT_TYPES.contains(&kind) {
        return Err(problem(
            Some(index),
            "type",
            format!("{kind:?} is not an EPCIS event type ({})", EVENT_TYPES.join(", ")),
        ));
    }
    check_time(index, "eventTime", e.get("eventTime"))?;
    check_offset(index, e.get("eventTimeZoneOffset"))?;
    if let Some(r) = e.get("recordTime") {
        check_time(index, "recordTime", Some(r))?;
    }
    for key in e.keys() {
        if !EVENT_FIELDS.contains(&key.as_str()) && !key.contains(':') {
            return Err(problem(
                Some(index),
                key.clone(),
                "is neither an EPCIS field nor an extension with a namespace prefix",
            ));
        }
    }
    if kind != "TransformationEvent" {
        match e.get("action").and_then(Value::as_str) {
            Some("ADD" | "OBSERVE" | "DELETE") => {}
            Some(a) => {
                return Err(problem(
                    Some(index),
                    "action",
                    format!("{a:?} is not ADD, OBSERVE or DELETE"),
                ))
            }
            None => return Err(problem(Some(index), "action", "is required: ADD, OBSERVE or DELETE")),
        }
    }
    let identified = match kind {
        // A sensor report may list no instance, but names the list.
        "ObjectEvent" => e.get("epcList").is_some_and(Value::is_array) || nonempty(e, "quantityList"),
        "AggregationEvent" | "AssociationEvent" => {
            e.contains_key("parentID") || e.contains_key("childEPCs") || nonempty(e, "childQuantityList")
        }
        "TransactionEvent" => nonempty(e, "bizTransactionList"),
        _ => [
            "inputEPCList",
            "inputQuantityList",
            "outputEPCList",
            "outputQuantityList",
        ]
        .iter()
        .any(|k| nonempty(e, k)),
    };
    if !identified {
        return Err(problem(
            Some(index),
            "epcList",
            format!("a {kind} must name what it is about (instance or quantity lists, or a parent)"),
        ));
    }
    let step = crate::hash::biz_steps();
    let disposition = crate::hash::dispositions();
    if let Some(v) = e.get("bizStep") {
        word(
            index,
            "bizStep".into(),
            v,
            step,
            "neither a CBV business step nor a URI",
        )?;
    }
    if let Some(v) = e.get("disposition") {
        word(
            index,
            "disposition".into(),
            v,
            disposition,
            "neither a CBV disposition nor a URI",
        )?;
    }
    if let Some(p) = e.get("persistentDisposition") {
        for key in ["set", "unset"] {
            for v in p.get(key).and_then(Value::as_array).into_iter().flatten() {
                let field = format!("persistentDisposition.{key}");
                word(index, field, v, disposition, "neither a CBV disposition nor a URI")?;
            }
        }
    }
    for (list, key) in [("sourceList", "source"), ("destinationList", "destination")] {
        for (i, s) in e.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
            let t = s.get("type").unwrap_or(&Value::Null);
            let types = crate::hash::source_destination_types();
            let expected = "not owning_party, possessing_party, location or a URI";
            word(index, format!("{list}[{i}].type"), t, types, expected)?;
            if !s.get(key).is_some_and(Value::is_string) {
                return Err(problem(Some(index), format!("{list}[{i}].{key}"), "is required"));
            }
        }
    }
    let transactions = e.get("bizTransactionList").and_then(Value::as_array);
    for (i, b) in transactions.into_iter().flatten().enumerate() {
        if let Some(t) = b.get("type") {
            let types = crate::hash::biz_transaction_types();
            let expected = "neither a CBV business transaction type nor a URI";
            word(index, format!("bizTransactionList[{i}].type"), t, types, expected)?;
        }
    }
    for key in [
        "quantityList",
        "childQuantityList",
        "inputQuantityList",
        "outputQuantityList",
    ] {
        if let Some(v) = e.get(key) {
            check_quantity_list(index, key, v)?;
        }
    }
    if let Some(ilmd) = e.get("ilmd") {
        let Some(ilmd) = ilmd.as_object() else {
            return Err(problem(Some(index), "ilmd", "is not an object"));
        };
        for key in ilmd.keys() {
            if !key.contains(':') && key != "@context" {
                return Err(problem(
                    Some(index),
                    format!("ilmd.{key}"),
                    "needs a namespace prefix (ILMD holds extensions only)",
                ));
            }
        }
    }
    match e.get("certificationInfo") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
        Some(_) => {
            return Err(problem(
                Some(index),
                "certificationInfo",
                "is neither a certificate URI nor a list of them",
            ))
        }
    }
    for (i, s) in e
        .get("sensorElementList")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(t) = s.pointer("/sensorMetadata/time") {
            check_time(index, &format!("sensorElementList[{i}].sensorMetadata.time"), Some(t))?;
        }
    }
    if let Some(d) = e.get("errorDeclaration") {
        check_time(index, "errorDeclaration.declarationTime", d.get("declarationTime"))?;
    }
    Ok(())
}

/// Checks a capture document: an EPCISDocument (at most [`MAX_EVENTS`]
/// events) or a single event with its `@context`.
pub fn check_document(doc: &Value) -> Result<Checked, Problem> {
    let Some(d) = doc.as_object() else {
        return Err(problem(None, "document", "is not a JSON object"));
    };
    let Some(context) = d.get("@context").cloned() else {
        return Err(problem(
            None,
            "@context",
            "is required: an EPCIS 2.0 document names its JSON-LD context",
        ));
    };
    let kind = d.get("type").and_then(Value::as_str).unwrap_or_default();
    let (events, master) = if kind == "EPCISDocument" {
        if d.get("schemaVersion").and_then(Value::as_str).is_none() {
            return Err(problem(None, "schemaVersion", "is required (\"2.0\")"));
        }
        check_time(0, "creationDate", d.get("creationDate")).map_err(|p| problem(None, p.field, p.reason))?;
        let Some(list) = doc.pointer("/epcisBody/eventList").and_then(Value::as_array) else {
            return Err(problem(None, "epcisBody.eventList", "is required: the list of events"));
        };
        if list.len() > MAX_EVENTS {
            return Err(problem(
                None,
                "epcisBody.eventList",
                format!(
                    "holds {} events; one document may hold at most {MAX_EVENTS}",
                    list.len()
                ),
            ));
        }
        (list.clone(), doc.pointer("/epcisHeader/epcisMasterData").cloned())
    } else if EVENT_TYPES.contains(&kind) {
        let mut e = d.clone();
        e.remove("@context");
        (vec![Value::Object(e)], None)
    } else {
        return Err(problem(
            None,
            "type",
            format!("{kind:?} is neither EPCISDocument nor an EPCIS event type"),
        ));
    };
    for (i, e) in events.iter().enumerate() {
        check_event(i, e)?;
    }
    Ok(Checked {
        events,
        master,
        context,
    })
}

/// What capture needs to know of the store to map an event.
pub trait Known {
    fn facility(&self, id: &str) -> bool;
    /// The facility with this GLN.
    fn facility_of_gln(&self, gln: &str) -> Option<String>;
    /// The party with this GLN.
    fn party_of_gln(&self, gln: &str) -> Option<String>;
    /// The product of a GTIN.
    fn product_of_gtin(&self, gtin: &str) -> Option<String>;
    /// Whether a lot exists.
    fn lot(&self, id: &str) -> bool;
    fn party(&self, id: &str) -> bool;
    fn product(&self, id: &str) -> bool;
    fn standard(&self, id: &str) -> bool;
}

/// What one event (or vocabulary element) becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// The command id (jejak's event id).
    pub id: String,
    pub command: Command,
}

fn ext(name: &str) -> String {
    format!("{PREFIX}:{name}")
}

/// An extension of jejak's namespace, written with the prefix or in full.
fn jejak<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    m.get(&ext(name)).or_else(|| m.get(&format!("{NAMESPACE}{name}")))
}

/// A plot geometry from a GeoJSON geometry object.
fn geometry(v: &Value) -> Result<jejak_domain::geo::Geometry, jejak_domain::DomainError> {
    use jejak_domain::geo::{Coords, Geometry};
    fn coords(v: &Value) -> Coords {
        match v {
            Value::Number(n) => Coords::Number(n.to_string()),
            Value::Array(items) => Coords::List(items.iter().map(coords).collect()),
            _ => Coords::Other("not a number or an array"),
        }
    }
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
    Geometry::from_geojson(kind, &coords(v.get("coordinates").unwrap_or(&Value::Null)), "geometry")
}

fn str_of<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    jejak(m, name).and_then(Value::as_str)
}

/// Reads an event of jejak's shape; every missing piece is a problem
/// naming the field.
struct Shape<'a> {
    index: usize,
    e: &'a Map<String, Value>,
    ids: &'a Ids,
    known: &'a dyn Known,
}

impl<'a> Shape<'a> {
    fn fail(&self, field: impl Into<String>, reason: impl Into<String>) -> Problem {
        problem(Some(self.index), field, reason)
    }

    fn time(&self) -> Result<Time, Problem> {
        let t = self.e.get("eventTime").and_then(Value::as_str).unwrap_or_default();
        parse_time("eventTime", t).map_err(|e| self.fail("eventTime", e.reason))
    }

    fn under<'v>(&self, field: &str, value: &'v str, kind: &str) -> Result<&'v str, Problem> {
        value
            .strip_prefix(self.ids.domain())
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.strip_prefix(kind))
            .and_then(|r| r.strip_prefix('/'))
            .filter(|r| !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| {
                self.fail(
                    field,
                    format!("{value:?} is not a {kind} id under {}", self.ids.domain()),
                )
            })
    }

    fn party(&self, list: &str, key: &str) -> Result<String, Problem> {
        let found = self
            .e
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|s| s.get("type").and_then(Value::as_str).map(cbv_word) == Some("owning_party"))
            .and_then(|s| s.get(key))
            .and_then(Value::as_str)
            .ok_or_else(|| self.fail(list, format!("names no owning_party {key}")))?;
        self.party_id(list, found)
    }

    /// A party's id from its PGLN or its id under the domain.
    fn party_id(&self, field: &str, value: &str) -> Result<String, Problem> {
        if let Some(gln) = value.strip_prefix("https://id.gs1.org/417/") {
            return self
                .known
                .party_of_gln(gln)
                .ok_or_else(|| self.fail(field, format!("no party has the GLN {gln}")));
        }
        Ok(self.under(field, value, "party")?.to_string())
    }

    /// A lot class: (product, lot).
    fn class(&self, field: &str, class: &str) -> Result<(String, String), Problem> {
        if let Some(rest) = class.strip_prefix("https://id.gs1.org/01/") {
            if let Some((gtin, lot)) = rest.split_once("/10/") {
                let product = self
                    .known
                    .product_of_gtin(gtin)
                    .ok_or_else(|| self.fail(field, format!("no product has the GTIN {gtin}")))?;
                return Ok((product, lot.to_string()));
            }
        }
        let rest = class
            .strip_prefix(self.ids.domain())
            .and_then(|r| r.strip_prefix("/lot/"))
            .ok_or_else(|| {
                self.fail(
                    field,
                    format!("{class:?} is not a lot class (an LGTIN or {}/lot/…)", self.ids.domain()),
                )
            })?;
        let (product, lot) = rest
            .split_once('/')
            .ok_or_else(|| self.fail(field, format!("{class:?} names no product and lot")))?;
        Ok((product.to_string(), lot.to_string()))
    }

    /// The one lot class of an event about one lot (an inspection, a
    /// shipment, a status change): a second would otherwise go unrecorded
    /// without a word.
    fn one_class(&self, what: &str) -> Result<(String, String, Option<Quantity>), Problem> {
        let mut classes = self.quantities("quantityList")?;
        match classes.len() {
            1 => Ok(classes.remove(0)),
            0 => Err(self.fail("quantityList", format!("{what} names the lot class it concerns"))),
            n => Err(self.fail(
                "quantityList",
                format!("{what} concerns one lot class, and this one names {n}: send an event for each lot"),
            )),
        }
    }

    /// A package's SGTIN, as a Digital Link URI on any domain or an EPC URI
    /// (`urn:epc:id:sgtin:…`): its GTIN-14 and serial.
    fn sgtin(&self, field: &str, uri: &Value) -> Result<(String, String), Problem> {
        let text = uri.as_str().ok_or_else(|| self.fail(field, "is not a URI"))?;
        crate::hash::canonical_uri(text)
            .as_deref()
            .and_then(|c| c.strip_prefix("https://id.gs1.org/01/"))
            .and_then(|r| r.split_once("/21/"))
            .map(|(gtin, serial)| (gtin.to_string(), serial.to_string()))
            .ok_or_else(|| {
                self.fail(
                    field,
                    format!("{text:?} is not a package's SGTIN (https://id.gs1.org/01/…/21/… or urn:epc:id:sgtin:…)"),
                )
            })
    }

    fn quantities(&self, list: &str) -> Result<Vec<(String, String, Option<Quantity>)>, Problem> {
        let mut out = Vec::new();
        for (i, q) in self
            .e
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("{list}[{i}]");
            let class = q.get("epcClass").and_then(Value::as_str).unwrap_or_default();
            let (product, lot) = self.class(&format!("{field}.epcClass"), class)?;
            let quantity = match (q.get("quantity"), q.get("uom").and_then(Value::as_str)) {
                (Some(n), Some(u)) => {
                    let unit = crate::export::unit_of_uom(u).ok_or_else(|| {
                        self.fail(
                            format!("{field}.uom"),
                            format!("{u:?} is not a unit jejak keeps (KGM, GRM, TNE, H87, MTR, MTK, MTQ, LTR)"),
                        )
                    })?;
                    let value = decimal(&self.fail(format!("{field}.quantity"), "is not a decimal number"), n)?;
                    Some(
                        Quantity::new(&format!("{field}.quantity"), value, unit)
                            .map_err(|e| self.fail(format!("{field}.quantity"), e.to_string()))?,
                    )
                }
                (Some(_), None) => return Err(self.fail(format!("{field}.uom"), "is required with a quantity")),
                _ => None,
            };
            out.push((product, lot, quantity));
        }
        Ok(out)
    }
}

fn decimal(err: &Problem, n: &Value) -> Result<Decimal, Problem> {
    let text = match n {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(err.clone()),
    };
    jejak_domain::quantity::parse_decimal("quantity", &text)
        .or_else(|_| {
            text.parse::<f64>()
                .ok()
                .and_then(Decimal::from_f64_retain)
                .map(|d| d.normalize())
                .ok_or(())
        })
        .map_err(|_| err.clone())
}

/// The facility an event happened at, when it is one of jejak's.
fn facility_of(e: &Map<String, Value>, ids: &Ids, known: &dyn Known) -> Option<String> {
    let location = e
        .get("bizLocation")
        .or_else(|| e.get("readPoint"))
        .and_then(|l| l.get("id"))
        .and_then(Value::as_str)?;
    if let Some(gln) = location.strip_prefix("https://id.gs1.org/414/") {
        return known.facility_of_gln(gln);
    }
    let id = location.strip_prefix(ids.domain())?.strip_prefix("/loc/")?;
    known.facility(id).then(|| id.to_string())
}

/// The lots of this store an event names (for an observation).
fn lots_named(e: &Map<String, Value>, ids: &Ids, known: &dyn Known) -> Vec<String> {
    let mut classes: Vec<&str> = Vec::new();
    for key in [
        "quantityList",
        "childQuantityList",
        "inputQuantityList",
        "outputQuantityList",
    ] {
        for q in e.get(key).and_then(Value::as_array).into_iter().flatten() {
            classes.extend(q.get("epcClass").and_then(Value::as_str));
        }
    }
    classes.extend(e.get("parentID").and_then(Value::as_str));
    let mut lots: Vec<String> = Vec::new();
    for c in classes {
        let lot = if let Some(rest) = c.strip_prefix("https://id.gs1.org/01/") {
            rest.split_once("/10/").map(|(_, l)| l)
        } else {
            c.strip_prefix(ids.domain())
                .and_then(|r| r.strip_prefix("/lot/"))
                .and_then(|r| r.split_once('/'))
                .map(|(_, l)| l)
        };
        if let Some(l) = lot.filter(|l| known.lot(l)) {
            if !lots.iter().any(|x| x == l) {
                lots.push(l.to_string());
            }
        }
    }
    lots
}

/// The command id of an event: jejak's own id when the event carries one,
/// else one derived from its CBV 2.0 hash (capturing it again is a retry).
fn command_id(e: &Map<String, Value>, hash: &str) -> String {
    match str_of(e, "eventId") {
        Some(id) => id.to_string(),
        None => {
            let hex = hash
                .strip_prefix("ni:///sha-256;")
                .map(|h| h.split('?').next().unwrap_or(h))
                .unwrap_or(hash);
            format!("epcis-{}", &hex[..hex.len().min(40)])
        }
    }
}

/// What one event becomes: the command of jejak's shape at one of its
/// facilities, or an observation (kept with the document's `context`, so
/// that its prefixes keep their meaning). `hash` is the event's CBV 2.0 hash.
pub fn map_event(
    index: usize,
    event: &Value,
    hash: &str,
    context: &Value,
    ids: &Ids,
    known: &dyn Known,
) -> Result<Mapped, Problem> {
    let Some(e) = event.as_object() else {
        return Err(problem(Some(index), "event", "is not a JSON object"));
    };
    let kind = e.get("type").and_then(Value::as_str).unwrap_or_default();
    let step = e
        .get("bizStep")
        .and_then(Value::as_str)
        .map(cbv_word)
        .unwrap_or_default();
    let action = e.get("action").and_then(Value::as_str).unwrap_or_default();
    let mut id = command_id(e, hash);
    if e.contains_key("errorDeclaration") && str_of(e, "eventId").is_none() {
        // Another system's declaration that an event was wrong: an
        // observation of its own beside the event it declares wrong.
        id.push_str("-error");
    }
    let s = Shape { index, e, ids, known };
    let observation = || {
        let facility_id = facility_of(e, ids, known).unwrap_or_default();
        let mut kept = e.clone();
        kept.insert("eventID".into(), Value::String(hash.to_string()));
        kept.entry("@context").or_insert_with(|| context.clone());
        Ok(Mapped {
            id: id.clone(),
            command: Command::ObserveEpcis(EpcisObserved {
                facility_id,
                event_type: kind.to_string(),
                event_json: Value::Object(kept).to_string(),
                lot_ids: lots_named(e, ids, known),
                occurred_at: s.time().ok(),
            }),
        })
    };
    let Some(facility_id) = facility_of(e, ids, known) else {
        return observation();
    };
    let ours = str_of(e, "eventId").is_some();
    if let Some(decl) = e.get("errorDeclaration").and_then(Value::as_object) {
        if !ours {
            return observation();
        }
        let voided = str_of(e, "eventId").unwrap_or_default().to_string();
        let void_id = str_of(decl, "voidEventId")
            .map(str::to_string)
            .unwrap_or_else(|| format!("void-{voided}"));
        let at = decl
            .get("declarationTime")
            .and_then(Value::as_str)
            .and_then(|t| parse_time("declarationTime", t).ok());
        return Ok(Mapped {
            id: void_id,
            command: Command::VoidEvent(EventVoided {
                facility_id,
                voided_event_id: voided,
                reason: str_of(decl, "reason")
                    .or_else(|| decl.get("reason").and_then(Value::as_str))
                    .unwrap_or("incorrect_data")
                    .to_string(),
                replacement_event_id: str_of(decl, "replacementEventId").map(str::to_string),
                occurred_at: at,
            }),
        });
    }
    let at = Some(s.time()?);
    let command = match (kind, action, step) {
        ("ObjectEvent", "ADD", "receiving") => {
            let mut q = s.quantities("quantityList")?;
            if q.len() != 1 {
                return Err(s.fail(
                    "quantityList",
                    "a receipt names exactly one lot class with its quantity",
                ));
            }
            let (product_id, lot_id, quantity) = q.remove(0);
            let quantity =
                quantity.ok_or_else(|| s.fail("quantityList[0].quantity", "a receipt says how much arrived"))?;
            let ilmd = e.get("ilmd").and_then(Value::as_object).cloned().unwrap_or_default();
            let plot = match str_of(&ilmd, "plot") {
                Some(g) => Some(geo(&s, g)?),
                None => None,
            };
            let source_lot_id = match str_of(&ilmd, "sourceLot") {
                Some(c) => Some(s.class("ilmd.jejak:sourceLot", c)?.1),
                None => None,
            };
            let mut documents = Vec::new();
            for (i, d) in jejak(&ilmd, "documents")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let Some(d) = d.as_object() else {
                    return Err(s.fail(format!("ilmd.jejak:documents[{i}]"), "is not an object"));
                };
                let hex = str_of(d, "blake3").unwrap_or_default();
                let blake3 = parse_hash(hex).ok_or_else(|| {
                    s.fail(
                        format!("ilmd.jejak:documents[{i}].jejak:blake3"),
                        "is not 64 hex digits",
                    )
                })?;
                let when = |name: &str| match str_of(d, name) {
                    None => Ok(None),
                    Some(t) => parse_time(name, t)
                        .map(Some)
                        .map_err(|e| s.fail(format!("ilmd.jejak:documents[{i}].jejak:{name}"), e.reason)),
                };
                documents.push(Document {
                    kind: str_of(d, "kind").unwrap_or_default().to_string(),
                    reference: str_of(d, "reference").unwrap_or_default().to_string(),
                    blake3,
                    issuer: str_of(d, "issuer").unwrap_or_default().to_string(),
                    valid_from: when("validFrom")?,
                    valid_until: when("validUntil")?,
                });
            }
            Command::ReceiveMaterial(MaterialReceived {
                lot_id,
                facility_id,
                product_id,
                quantity,
                owner_id: s.party("destinationList", "destination")?,
                supplier_id: s.party("sourceList", "source")?,
                origin: Origin {
                    place: str_of(&ilmd, "originPlace").unwrap_or_default().to_string(),
                    plot_id: str_of(&ilmd, "plotId").unwrap_or_default().to_string(),
                    plot,
                    geometry: match jejak(&ilmd, "geometry") {
                        Some(g) => Some(geometry(g).map_err(|e| s.fail("ilmd.jejak:geometry", e.to_string()))?),
                        None => None,
                    },
                    producer_country: str_of(&ilmd, "producerCountry").unwrap_or_default().to_string(),
                    area_ha: match str_of(&ilmd, "areaHa") {
                        Some(a) => {
                            Some(a.parse().map_err(|_| {
                                s.fail("ilmd.jejak:areaHa", format!("{a:?} is not a number of hectares"))
                            })?)
                        }
                        None => None,
                    },
                },
                documents,
                source_lot_id,
                occurred_at: at,
            })
        }
        ("ObjectEvent", "OBSERVE", "inspecting") if jejak(e, "standard").is_some() => {
            let (_, lot_id, _) = s.one_class("an inspection")?;
            let standard = str_of(e, "standard").unwrap_or_default();
            let standard_id = s.under("jejak:standard", standard, "standard")?.to_string();
            let mut measurements = Vec::new();
            for (i, r) in e
                .get("sensorElementList")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|el| el.get("sensorReport").and_then(Value::as_array).into_iter().flatten())
                .enumerate()
            {
                let Some(r) = r.as_object() else {
                    return Err(s.fail(format!("sensorReport[{i}]"), "is not an object"));
                };
                let parameter = str_of(r, "parameter")
                    .map(str::to_string)
                    .or_else(|| {
                        r.get("type")
                            .and_then(Value::as_str)
                            .map(|t| t.rsplit(['/', ':']).next().unwrap_or(t).to_lowercase())
                    })
                    .ok_or_else(|| s.fail(format!("sensorReport[{i}].type"), "names no measured parameter"))?;
                let value = decimal(
                    &s.fail(format!("sensorReport[{i}].value"), "is not a number"),
                    jejak(r, "value").or_else(|| r.get("value")).unwrap_or(&Value::Null),
                )?;
                measurements.push(Measurement {
                    parameter,
                    value,
                    unit: str_of(r, "unit").unwrap_or_default().to_string(),
                });
            }
            Command::InspectLot(InspectLot {
                lot_id,
                facility_id,
                standard_id,
                measurements,
                inspector: str_of(e, "inspector").unwrap_or_default().to_string(),
                occurred_at: at,
            })
        }
        ("TransformationEvent", _, _) if ours => {
            let inputs = s
                .quantities("inputQuantityList")?
                .into_iter()
                .enumerate()
                .map(|(i, (_, lot_id, q))| {
                    q.map(|quantity| LotInput { lot_id, quantity }).ok_or_else(|| {
                        s.fail(
                            format!("inputQuantityList[{i}].quantity"),
                            "an input says how much was used",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let owners: Vec<(String, String)> = jejak(
                e.get("ilmd").and_then(Value::as_object).unwrap_or(&Map::new()),
                "outputs",
            )
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| {
                let o = o.as_object()?;
                Some((str_of(o, "lot")?.to_string(), str_of(o, "owner")?.to_string()))
            })
            .collect();
            let mut outputs = Vec::new();
            for (i, (product_id, lot_id, q)) in s.quantities("outputQuantityList")?.into_iter().enumerate() {
                let quantity = q.ok_or_else(|| {
                    s.fail(
                        format!("outputQuantityList[{i}].quantity"),
                        "an output says how much was made",
                    )
                })?;
                let owner = owners
                    .iter()
                    .find(|(l, _)| *l == lot_id)
                    .map(|(_, o)| s.party_id("ilmd.jejak:outputs", o))
                    .transpose()?
                    .unwrap_or_default();
                outputs.push(LotOutput {
                    lot_id,
                    product_id,
                    quantity,
                    owner_id: owner,
                });
            }
            let step_uri = e.get("bizStep").and_then(Value::as_str).unwrap_or_default();
            let process_step = step_uri
                .strip_prefix(&format!("{NAMESPACE}step/"))
                .unwrap_or(step_uri)
                .to_string();
            Command::ProcessLots(LotProcessed {
                facility_id,
                process_step,
                line: str_of(e, "line").unwrap_or_default().to_string(),
                inputs,
                outputs,
                occurred_at: at,
            })
        }
        ("AggregationEvent", "ADD", "packing") if ours => {
            let parent = e.get("parentID").and_then(Value::as_str).unwrap_or_default();
            let (_, lot_id) = s.class("parentID", parent)?;
            let mut packages = Vec::new();
            let mut gtin = None;
            for (i, c) in jejak(e, "contents")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let field = format!("jejak:contents[{i}]");
                let (g, serial) = s.sgtin(&format!("{field}.epcClass"), c.get("epcClass").unwrap_or(&Value::Null))?;
                let first = gtin.get_or_insert_with(|| g.clone());
                if *first != g {
                    return Err(s.fail(
                        format!("{field}.epcClass"),
                        format!("a packing puts up units of one GTIN: this one is {g}, the first {first}"),
                    ));
                }
                let n = c.get("quantity").unwrap_or(&Value::Null);
                let value = decimal(&s.fail(format!("{field}.quantity"), "is not a number"), n)?;
                let u = c.get("uom").and_then(Value::as_str).unwrap_or_default();
                let unit = crate::export::unit_of_uom(u)
                    .ok_or_else(|| s.fail(format!("{field}.uom"), format!("{u:?} is not a unit jejak keeps")))?;
                packages.push(Package {
                    serial: serial.to_string(),
                    quantity: Quantity::from_parts(value, unit),
                });
            }
            let gtin =
                gtin.ok_or_else(|| s.fail("jejak:contents", "a packing lists its units with what each holds"))?;
            Command::PackLot(LotPacked {
                facility_id,
                lot_id,
                gtin: jejak_domain::gs1::Gtin::parse(&gtin).map_err(|e| s.fail("jejak:contents", e.to_string()))?,
                packages,
                occurred_at: at,
            })
        }
        ("ObjectEvent", "OBSERVE", "shipping") if ours => {
            let (_, lot_id, quantity) = s.one_class("a shipment")?;
            let mut package_serials = Vec::new();
            for (i, u) in e
                .get("epcList")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                package_serials.push(s.sgtin(&format!("epcList[{i}]"), u)?.1);
            }
            for (i, serial) in jejak(e, "packages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let serial = serial
                    .as_str()
                    .ok_or_else(|| s.fail(format!("jejak:packages[{i}]"), "is not a package serial"))?;
                package_serials.push(serial.to_string());
            }
            let document = e
                .get("bizTransactionList")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|b| b.get("bizTransaction").and_then(Value::as_str))
                .find_map(|b| b.strip_prefix(&format!("{}/doc/", ids.domain())))
                .unwrap_or_default()
                .to_string();
            Command::ShipLot(LotShipped {
                facility_id,
                lot_id,
                quantity,
                package_serials,
                consignee_id: s.party("destinationList", "destination")?,
                document,
                occurred_at: at,
                dds_reference: str_of(e, "ddsReference").unwrap_or_default().to_string(),
            })
        }
        ("ObjectEvent", "OBSERVE", _) if ours && jejak(e, "status").is_some() => {
            let (_, lot_id, _) = s.one_class("a status change")?;
            let status = match str_of(e, "status").unwrap_or_default() {
                "active" => LotStatus::Active,
                "on_hold" => LotStatus::OnHold,
                "released" => LotStatus::Released,
                "recalled" => LotStatus::Recalled,
                "disposed" => LotStatus::Disposed,
                other => return Err(s.fail("jejak:status", format!("{other:?} is not a lot status"))),
            };
            Command::ChangeLotStatus(LotStatusChanged {
                facility_id,
                lot_id,
                status,
                reason: str_of(e, "reason").unwrap_or_default().to_string(),
                occurred_at: at,
            })
        }
        _ => return observation(),
    };
    Ok(Mapped { id, command })
}

fn geo(s: &Shape<'_>, text: &str) -> Result<GeoPoint, Problem> {
    let bad = || s.fail("ilmd.jejak:plot", format!("{text:?} is not a geo:LAT,LON URI"));
    let (lat, lon) = text
        .strip_prefix("geo:")
        .and_then(|r| r.split_once(','))
        .ok_or_else(bad)?;
    let (lat, lon) = (
        lat.parse::<f64>().map_err(|_| bad())?,
        lon.parse::<f64>().map_err(|_| bad())?,
    );
    GeoPoint::new("ilmd.jejak:plot", lat, lon).map_err(|e| s.fail("ilmd.jejak:plot", e.to_string()))
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

fn attributes(element: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for a in element
        .get("attributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(id), Some(v)) = (a.get("id").and_then(Value::as_str), a.get("attribute")) {
            out.insert(id.to_string(), v.clone());
        }
    }
    out
}

fn sector(s: &str) -> Option<Sector> {
    Some(match s {
        "rice" => Sector::Rice,
        "metal" => Sector::Metal,
        "garment" => Sector::Garment,
        "furniture" => Sector::Furniture,
        _ => return None,
    })
}

/// The registrations of the header's vocabularies of jejak's namespace
/// that the store does not have yet, in the order they can be decided
/// (parties, facilities, products, standards). Other vocabularies are
/// left alone.
pub fn map_master_data(master: &Value, ids: &Ids, known: &dyn Known) -> Result<Vec<Mapped>, Problem> {
    let name_key = "urn:epcglobal:cbv:mda#name";
    let mut parties = Vec::new();
    let mut facilities = Vec::new();
    let mut products = Vec::new();
    let mut standards = Vec::new();
    let fail = |field: String, reason: String| problem(None, field, reason);
    // Parties of this document by GLN (a facility's operator may name one).
    let mut party_glns: Vec<(String, String)> = Vec::new();
    for (v, vocabulary) in master
        .get("vocabularyList")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let vtype = vocabulary.get("type").and_then(Value::as_str).unwrap_or_default();
        for (k, element) in vocabulary
            .get("vocabularyElementList")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("epcisHeader.epcisMasterData.vocabularyList[{v}].vocabularyElementList[{k}]");
            let id = element.get("id").and_then(Value::as_str).unwrap_or_default();
            let a = attributes(element);
            let text = |name: &str| jejak(&a, name).and_then(Value::as_str).unwrap_or_default().to_string();
            let name = a.get(name_key).and_then(Value::as_str).unwrap_or_default().to_string();
            // jejak's own id when the element carries it, else from the id.
            let local = |kind: &str| {
                jejak(&a, "id").and_then(Value::as_str).map(str::to_string).or_else(|| {
                    id.strip_prefix(ids.domain())
                        .and_then(|r| r.strip_prefix('/'))
                        .and_then(|r| r.strip_prefix(kind))
                        .and_then(|r| r.strip_prefix('/'))
                        .map(str::to_string)
                })
            };
            let gln_of = |prefix: &str| -> Result<Option<jejak_domain::gs1::Gln>, Problem> {
                match id.strip_prefix(prefix) {
                    Some(g) => jejak_domain::gs1::Gln::parse(g)
                        .map(Some)
                        .map_err(|e| fail(format!("{field}.id"), e)),
                    None => Ok(None),
                }
            };
            match vtype {
                "urn:epcglobal:epcis:vtype:Party" => {
                    let Some(pid) = local("party") else { continue };
                    let gln = gln_of("https://id.gs1.org/417/")?;
                    if let Some(g) = &gln {
                        party_glns.push((g.to_string(), pid.clone()));
                    }
                    if known.party(&pid) {
                        continue;
                    }
                    let roles = jejak(&a, "roles")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(|r| match r {
                            "ukm" => Ok(PartyRole::Ukm),
                            "supplier" => Ok(PartyRole::Supplier),
                            "customer" => Ok(PartyRole::Customer),
                            "operator" => Ok(PartyRole::Operator),
                            other => Err(fail(
                                format!("{field}.jejak:roles"),
                                format!("{other:?} is not a party role"),
                            )),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    parties.push(Mapped {
                        id: format!("register-party-{pid}"),
                        command: Command::RegisterParty(Party {
                            id: pid,
                            name,
                            roles,
                            district: text("district"),
                            contact: text("contact"),
                            gln,
                        }),
                    });
                }
                "urn:epcglobal:epcis:vtype:BusinessLocation" => {
                    let Some(fid) = local("loc") else { continue };
                    let gln = gln_of("https://id.gs1.org/414/")?;
                    if known.facility(&fid) {
                        continue;
                    }
                    let operator = text("operator");
                    let operator_id = match operator.strip_prefix("https://id.gs1.org/417/") {
                        Some(g) => party_glns
                            .iter()
                            .find(|(x, _)| x == g)
                            .map(|(_, p)| p.clone())
                            .or_else(|| known.party_of_gln(g))
                            .ok_or_else(|| {
                                fail(format!("{field}.jejak:operator"), format!("no party has the GLN {g}"))
                            })?,
                        None => operator
                            .strip_prefix(ids.domain())
                            .and_then(|r| r.strip_prefix("/party/"))
                            .unwrap_or(&operator)
                            .to_string(),
                    };
                    let coordinate = |k: &str| {
                        a.get(&format!("urn:epcglobal:cbv:mda#{k}"))
                            .and_then(Value::as_str)
                            .and_then(|v| v.parse::<f64>().ok())
                    };
                    let location = match (coordinate("latitude"), coordinate("longitude")) {
                        (Some(lat), Some(lon)) => {
                            Some(GeoPoint::new(&field, lat, lon).map_err(|e| fail(field.clone(), e.to_string()))?)
                        }
                        _ => None,
                    };
                    facilities.push(Mapped {
                        id: format!("register-facility-{fid}"),
                        command: Command::RegisterFacility(Facility {
                            id: fid,
                            name,
                            sector: sector(&text("sector")).ok_or_else(|| {
                                fail(
                                    format!("{field}.jejak:sector"),
                                    "is not rice, metal, garment or furniture".into(),
                                )
                            })?,
                            district: text("district"),
                            operator_id,
                            location,
                            gln,
                            requires_legality: text("requiresTimberLegality") == "true",
                        }),
                    });
                }
                "urn:epcglobal:epcis:vtype:EPCClass" => {
                    let pid = text("product");
                    if pid.is_empty() || known.product(&pid) {
                        continue;
                    }
                    let gtin = match id.strip_prefix("https://id.gs1.org/01/") {
                        Some(g) => Some(
                            jejak_domain::gs1::Gtin::parse(g)
                                .map_err(|e| fail(format!("{field}.id"), e.to_string()))?,
                        ),
                        None => None,
                    };
                    let kind = match text("kind").as_str() {
                        "raw" => ProductKind::Raw,
                        "intermediate" => ProductKind::Intermediate,
                        "finished" => ProductKind::Finished,
                        other => {
                            return Err(fail(
                                format!("{field}.jejak:kind"),
                                format!("{other:?} is not raw, intermediate or finished"),
                            ))
                        }
                    };
                    let unit = crate::export::unit_of_uom(&text("unit"))
                        .ok_or_else(|| fail(format!("{field}.jejak:unit"), "is not a unit jejak keeps".into()))?;
                    products.push(Mapped {
                        id: format!("register-product-{pid}"),
                        command: Command::RegisterProduct(Product {
                            id: pid,
                            name: a
                                .get("urn:epcglobal:cbv:mda#descriptionShort")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                            sector: sector(&text("sector")).ok_or_else(|| {
                                fail(
                                    format!("{field}.jejak:sector"),
                                    "is not rice, metal, garment or furniture".into(),
                                )
                            })?,
                            kind,
                            unit,
                            gtin,
                        }),
                    });
                }
                t if t == format!("{NAMESPACE}vtype/QualityStandard") => {
                    let Some(sid) = local("standard") else { continue };
                    if known.standard(&sid) {
                        continue;
                    }
                    let mut parameters = Vec::new();
                    for (i, p) in jejak(&a, "parameters")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        let pf = format!("{field}.jejak:parameters[{i}]");
                        let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                        let bound = |k: &str| -> Result<Option<Decimal>, Problem> {
                            match p.get(k).and_then(Value::as_str) {
                                Some(v) => jejak_domain::quantity::parse_decimal(k, v)
                                    .map(Some)
                                    .map_err(|e| fail(format!("{pf}.{k}"), e.to_string())),
                                None => Ok(None),
                            }
                        };
                        parameters.push(Parameter {
                            code: s("code"),
                            name: s("name"),
                            unit: s("unit"),
                            min: bound("min")?,
                            max: bound("max")?,
                            required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
                        });
                    }
                    standards.push(Mapped {
                        id: format!("register-standard-{sid}"),
                        command: Command::RegisterStandard(QualityStandard {
                            id: sid,
                            name,
                            reference: text("reference"),
                            parameters,
                        }),
                    });
                }
                _ => {}
            }
        }
    }
    Ok(parties
        .into_iter()
        .chain(facilities)
        .chain(products)
        .chain(standards)
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DOMAIN: &str = "https://id.test.example";

    /// A store with one facility, party, product and lots L1 and L2.
    struct Store;

    impl Known for Store {
        fn facility(&self, id: &str) -> bool {
            id == "fac-1"
        }
        fn facility_of_gln(&self, _: &str) -> Option<String> {
            None
        }
        fn party_of_gln(&self, _: &str) -> Option<String> {
            None
        }
        fn product_of_gtin(&self, _: &str) -> Option<String> {
            None
        }
        fn lot(&self, id: &str) -> bool {
            id == "L1" || id == "L2"
        }
        fn party(&self, id: &str) -> bool {
            id == "buyer"
        }
        fn product(&self, id: &str) -> bool {
            id == "prd"
        }
        fn standard(&self, id: &str) -> bool {
            id == "std"
        }
    }

    /// An event of jejak's shape at fac-1, with `fields` added.
    fn event(kind: &str, action: &str, step: &str, fields: Value) -> Value {
        let mut e = json!({
            "type": kind,
            "action": action,
            "bizStep": step,
            "eventTime": "2026-11-02T03:00:00Z",
            "eventTimeZoneOffset": "+07:00",
            "bizLocation": { "id": format!("{DOMAIN}/loc/fac-1") },
            "jejak:eventId": "cmd-1",
        });
        if let (Some(e), Some(more)) = (e.as_object_mut(), fields.as_object()) {
            e.extend(more.clone());
        }
        e
    }

    fn class(lot: &str) -> Value {
        json!({ "epcClass": format!("{DOMAIN}/lot/prd/{lot}"), "quantity": 5, "uom": "KGM" })
    }

    fn map(e: &Value) -> Result<Command, Problem> {
        map_event(
            0,
            e,
            "ni:///sha-256;00?ver=CBV2.0",
            &json!([]),
            &Ids::new(DOMAIN),
            &Store,
        )
        .map(|m| m.command)
    }

    fn refused(e: &Value, field: &str, says: &str) {
        match map(e) {
            Err(p) => {
                assert_eq!(p.field, field, "{p:?}");
                assert!(p.reason.contains(says), "{p:?} does not say {says:?}");
            }
            Ok(c) => panic!("mapped to {c:?}"),
        }
    }

    #[test]
    fn an_event_about_one_lot_that_names_two_is_refused_not_cut_to_the_first() {
        let two = json!({ "quantityList": [class("L1"), class("L2")] });
        let mut status = event("ObjectEvent", "OBSERVE", "inspecting", two.clone());
        status["jejak:status"] = json!("recalled");
        refused(&status, "quantityList", "names 2");
        let mut inspection = event("ObjectEvent", "OBSERVE", "inspecting", two.clone());
        inspection["jejak:standard"] = json!(format!("{DOMAIN}/standard/std"));
        refused(&inspection, "quantityList", "names 2");
        let mut shipment = event("ObjectEvent", "OBSERVE", "shipping", two);
        shipment["destinationList"] =
            json!([{ "type": "owning_party", "destination": format!("{DOMAIN}/party/buyer") }]);
        refused(&shipment, "quantityList", "names 2");

        // With one lot each maps as before.
        status["quantityList"] = json!([class("L2")]);
        match map(&status) {
            Ok(Command::ChangeLotStatus(c)) => assert_eq!((c.lot_id.as_str(), c.status), ("L2", LotStatus::Recalled)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_shipments_packages_are_read_in_either_sgtin_form_and_any_other_is_refused() {
        let mut shipment = event(
            "ObjectEvent",
            "OBSERVE",
            "shipping",
            json!({
                "quantityList": [{ "epcClass": format!("{DOMAIN}/lot/prd/L1") }],
                "destinationList": [{ "type": "owning_party", "destination": format!("{DOMAIN}/party/buyer") }],
                "epcList": [
                    "https://id.gs1.org/01/09521141012345/21/S-1",
                    "urn:epc:id:sgtin:0614141.107346.2017",
                    format!("{DOMAIN}/01/09521141012345/21/S-3"),
                ],
            }),
        );
        match map(&shipment) {
            Ok(Command::ShipLot(s)) => assert_eq!(s.package_serials, ["S-1", "2017", "S-3"]),
            other => panic!("{other:?}"),
        }
        shipment["epcList"] = json!([
            "https://id.gs1.org/01/09521141012345/21/S-1",
            "urn:epc:id:sscc:0614141.1234567890"
        ]);
        refused(&shipment, "epcList[1]", "is not a package's SGTIN");
        shipment["epcList"] = json!([]);
        shipment["jejak:packages"] = json!(["S-1", 7]);
        refused(&shipment, "jejak:packages[1]", "is not a package serial");
    }

    #[test]
    fn a_packing_of_units_of_two_gtins_is_refused() {
        let unit = |gtin: &str, serial: &str| json!({ "epcClass": format!("https://id.gs1.org/01/{gtin}/21/{serial}"), "quantity": 5, "uom": "KGM" });
        let mut packing = event(
            "AggregationEvent",
            "ADD",
            "packing",
            json!({
                "parentID": format!("{DOMAIN}/lot/prd/L1"),
                "jejak:contents": [unit("09521141012345", "P-1"), unit("09521141012345", "P-2")],
            }),
        );
        match map(&packing) {
            Ok(Command::PackLot(p)) => {
                assert_eq!(p.gtin.as_str(), "09521141012345");
                assert_eq!(p.packages.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        packing["jejak:contents"] = json!([unit("09521141012345", "P-1"), unit("08997001001018", "P-2")]);
        refused(&packing, "jejak:contents[1].epcClass", "units of one GTIN");
    }
}
