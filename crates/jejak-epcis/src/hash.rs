//! CBV 2.0 event hash ids: the canonical pre-hash string of an EPCIS 2.0
//! event (JSON-LD) and its id `ni:///sha-256;<hex>?ver=CBV2.0`, as the GS1
//! Core Business Vocabulary 2.0 specifies and its reference implementation
//! (`epcis-event-hash-generator`) computes them.
//!
//! The pre-hash string is `eventType=…` followed by the event's fields in
//! the canonical property order, each `name=value` without separators,
//! with values normalised: time stamps in UTC with millisecond precision,
//! numbers without trailing zeros, EPC URIs and Digital Link URIs as
//! constrained canonical `https://id.gs1.org/…` URIs, bare CBV terms
//! (`shipping`) and old CBV URNs as their Web URIs, compact IRIs in full,
//! user extensions as `{namespace}name` sorted. `eventID`, `recordTime`,
//! `errorDeclaration`, `@context` and comments are not part of it (the
//! `tree` submodule describes the steps).
//!
//! What an event's names mean depends on the document it comes in: the
//! namespaces its `@context` declares, the fields a repository asks to
//! leave out, and (in the reference algorithm) which CBV terms the
//! document uses anywhere. [`Context`] carries that.
//!
//! **Invariants:** the hash of an event does not depend on the order of
//! object members or list entries; hashing never panics, bad input is a
//! [`HashError`] naming the field; no I/O (remote `@context` documents
//! are never fetched: the standard EPCIS context is built in).

mod digital_link;
mod tree;
mod value;
mod vocabulary;

pub(crate) use digital_link::normalise as canonical_uri;
pub(crate) use vocabulary::{biz_steps, biz_transaction_types, dispositions, source_destination_types};

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sha2::{Digest, Sha256};

use vocabulary::MAX_DEPTH;

/// The namespace of the reference's "fields to ignore" declaration: a
/// document member `<prefix>:ignoreFields` (at the top, or in
/// `epcisBody.queryResults`) whose prefix is this namespace lists event
/// members the hash leaves out.
pub const IGNORE_FIELDS_NAMESPACE: &str = "https://repository-x.example.com/";

/// Why an event or document has no hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The `@context` cannot be used: it is not a URL, an object or an
    /// array of them; or
    /// the document's `ignoreFields` is not an array of member names.
    #[error("@context: {0}")]
    Context(String),
    /// The document holds no events where EPCIS puts them.
    #[error("not an EPCIS document: {0}")]
    Document(String),
    /// The value given as an event is not one.
    #[error("not an EPCIS event: {0}")]
    NotAnEvent(String),
    /// A field's value has no canonical form (a time stamp that is not one
    /// or has no time zone, an infinite number).
    #[error("{field} {value:?}: {reason}")]
    Value {
        field: String,
        value: String,
        reason: String,
    },
    /// A field's shape is not one EPCIS allows (a `bizTransaction` without
    /// its id, nesting without end).
    #[error("{field}: {reason}")]
    Field { field: String, reason: String },
    /// An event of a document has no hash.
    #[error("event {index} of the document: {error}")]
    Event { index: usize, error: Box<HashError> },
}

/// The document an event comes in, as far as its hash is concerned: the
/// namespace prefixes declared (the standard context's `epcis`, `cbv`,
/// `gs1`, `cbvmda`, … and those of the document's `@context`), the event
/// members to leave out, and the CBV vocabulary the document uses.
///
/// [`Context::default`] is the standard EPCIS/CBV context only: right for
/// an event that declares its own `@context` or has no user extensions
/// with prefixes. An event from a document with prefixes of its own
/// (`{"example": "http://ns.example.com/epcis/"}`) needs
/// [`Context::from_document`] of that document, or `example:myField` is
/// hashed under that literal name rather than
/// `{http://ns.example.com/epcis/}myField`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    namespaces: BTreeMap<String, String>,
    ignored_fields: BTreeSet<String>,
    vocabulary: BTreeSet<String>,
    problem: Option<HashError>,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            namespaces: vocabulary::STANDARD_PREFIXES
                .iter()
                .map(|(prefix, iri)| (prefix.to_string(), iri.to_string()))
                .collect(),
            ignored_fields: BTreeSet::new(),
            vocabulary: BTreeSet::new(),
            problem: None,
        }
    }
}

impl Context {
    /// The context of an EPCIS document (or of a single event with its own
    /// `@context`). A document whose `@context` cannot be used gives a
    /// context every hash in which fails with that [`HashError`].
    pub fn from_document(document: &Value) -> Context {
        let mut context = Context::default();
        if let Err(problem) = context.read(document) {
            context.problem = Some(problem);
        }
        context
    }

    fn read(&mut self, document: &Value) -> Result<(), HashError> {
        if let Some(declared) = document.get("@context") {
            self.declare(declared)?;
        }
        let prefixes: Vec<String> = self
            .namespaces
            .iter()
            .filter(|(_, iri)| *iri == IGNORE_FIELDS_NAMESPACE)
            .map(|(prefix, _)| prefix.clone())
            .collect();
        let places = [Some(document), document.pointer("/epcisBody/queryResults")];
        for prefix in prefixes {
            let key = format!("{prefix}:ignoreFields");
            for fields in places.iter().flatten().filter_map(|p| p.get(&key)) {
                let names = fields
                    .as_array()
                    .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>());
                let names =
                    names.ok_or_else(|| HashError::Context(format!("{key} must be an array of member names")))?;
                self.ignored_fields.extend(names.into_iter().map(str::to_string));
            }
        }
        vocabulary::collect(document, &self.namespaces, &mut self.vocabulary).map_err(too_deep)
    }

    /// Adds the prefixes a `@context` value declares.
    fn declare(&mut self, declared: &Value) -> Result<(), HashError> {
        match declared {
            // Remote contexts: the standard one is built in, others are not
            // read (the reference reads no prefixes from them either).
            Value::Null | Value::String(_) => Ok(()),
            Value::Array(items) => items.iter().try_for_each(|item| match item {
                Value::Array(_) => Err(HashError::Context("an array in an array".into())),
                item => self.declare(item),
            }),
            Value::Object(terms) => {
                for (term, definition) in terms.iter().filter(|(t, _)| !t.starts_with('@')) {
                    let iri = match definition {
                        Value::String(iri) => Some(iri.as_str()),
                        Value::Object(d) => d.get("@id").and_then(Value::as_str),
                        _ => None,
                    };
                    // The EPCIS context protects its prefixes and terms: a
                    // document that declares one again (OpenEPCIS accepts
                    // such documents) keeps the standard meaning.
                    if vocabulary::standard_prefix(term).is_some() || vocabulary::is_standard_term(term) {
                        continue;
                    }
                    if let Some(iri) = iri {
                        self.namespaces.insert(term.clone(), iri.to_string());
                    }
                }
                Ok(())
            }
            _ => Err(HashError::Context(
                "must be a URL, an object or an array of them".into(),
            )),
        }
    }
}

fn too_deep(path: String) -> HashError {
    HashError::Field {
        field: if path.is_empty() { "document".into() } else { path },
        reason: format!("nests more than {MAX_DEPTH} levels deep"),
    }
}

/// The canonical pre-hash string of one EPCIS 2.0 JSON-LD event (an entry
/// of `epcisBody.eventList`, or a single event with its own `@context`)
/// in `context`.
pub fn prehash(event: &Value, context: &Context) -> Result<String, HashError> {
    if let Some(problem) = &context.problem {
        return Err(problem.clone());
    }
    let Value::Object(fields) = event else {
        return Err(HashError::NotAnEvent("it is not a JSON object".into()));
    };
    let local;
    let context = match fields.get("@context") {
        Some(declared) => {
            let mut own = context.clone();
            own.declare(declared)?;
            local = own;
            &local
        }
        None => context,
    };
    let mut used = BTreeSet::new();
    vocabulary::collect(event, &context.namespaces, &mut used).map_err(too_deep)?;
    let vocabulary = match used.is_subset(&context.vocabulary) {
        true => Cow::Borrowed(&context.vocabulary),
        false => Cow::Owned(context.vocabulary.union(&used).cloned().collect()),
    };
    let names = tree::Names {
        namespaces: &context.namespaces,
        vocabulary: &vocabulary,
    };
    tree::prehash(fields, &names, &context.ignored_fields)
}

/// The CBV 2.0 event hash id of one event: `ni:///sha-256;` + the lowercase
/// hex SHA-256 of its [`prehash`] + `?ver=CBV2.0`.
pub fn event_hash(event: &Value, context: &Context) -> Result<String, HashError> {
    let digest = Sha256::digest(prehash(event, context)?.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("ni:///sha-256;{hex}?ver=CBV2.0"))
}

/// The events of an EPCIS document: `epcisBody.eventList`,
/// `epcisBody.queryResults.resultsBody.eventList`, `epcisBody.event`, or
/// the document itself if it is a single event.
fn events(document: &Value) -> Result<Vec<&Value>, HashError> {
    fn list<'v>(v: &'v Value, at: &str) -> Result<Vec<&'v Value>, HashError> {
        match v {
            Value::Array(events) => Ok(events.iter().collect()),
            _ => Err(HashError::Document(format!("{at} is not an array"))),
        }
    }
    let Value::Object(fields) = document else {
        return Err(HashError::Document("it is not a JSON object".into()));
    };
    if let Some(body) = fields.get("epcisBody") {
        if let Some(events) = body.get("eventList") {
            return list(events, "epcisBody.eventList");
        }
        if let Some(results) = body.pointer("/queryResults/resultsBody") {
            return match results.get("eventList") {
                Some(events) => list(events, "epcisBody.queryResults.resultsBody.eventList"),
                None => Ok(Vec::new()),
            };
        }
        if let Some(event) = body.get("event") {
            return Ok(vec![event]);
        }
        return Err(HashError::Document(
            "epcisBody has no eventList, queryResults.resultsBody or event".into(),
        ));
    }
    match fields.get("type").and_then(Value::as_str) {
        Some("EPCISDocument" | "EPCISQueryDocument") | None => Err(HashError::Document(
            "it has no epcisBody and is not a single event".into(),
        )),
        Some(_) => Ok(vec![document]),
    }
}

/// The hash ids of all events of an EPCIS document (or of a single event
/// with its own `@context`), in document order, each in the document's
/// [`Context`].
pub fn document_hashes(document: &Value) -> Result<Vec<String>, HashError> {
    let context = Context::from_document(document);
    if let Some(problem) = &context.problem {
        return Err(problem.clone());
    }
    events(document)?
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            event_hash(event, &context).map_err(|error| HashError::Event {
                index,
                error: Box::new(error),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn vectors() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/epcis-event-hash")
    }

    /// `.prehashes` lines upstream left behind when the algorithm changed:
    /// they do not hash to the `.hashes` line beside them, so only the hash
    /// of those events is checked.
    const STALE_PREHASHES: [(&str, usize, &str); 3] = [
        (
            "epcisDocWithAllGS1Keys",
            0,
            "garbled: pieces of the line are interleaved",
        ),
        (
            "epcisDocWithCustomSchemaInContext",
            1,
            "the first event again, from an older algorithm",
        ),
        ("epcisDocWithDefaultSchemaInContext", 1, "cut off mid-value"),
    ];

    fn sha256_id(prehash: &str) -> String {
        let hex: String = Sha256::digest(prehash.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("ni:///sha-256;{hex}?ver=CBV2.0")
    }

    /// Where two pre-hash strings part, with some text around it.
    fn difference(expected: &str, got: &str) -> String {
        let at = expected
            .char_indices()
            .zip(got.chars())
            .find(|((_, a), b)| a != b)
            .map(|((i, _), _)| i)
            .unwrap_or(expected.len().min(got.len()));
        let from = expected[..at].char_indices().rev().nth(40).map_or(0, |(i, _)| i);
        let tail = |s: &str| s.get(at..).unwrap_or("").chars().take(120).collect::<String>();
        format!(
            "    first difference at byte {at}, after …{}\n    expected: {}\n    got:      {}",
            &expected[from..at],
            tail(expected),
            tail(got),
        )
    }

    #[test]
    fn every_conformance_vector_hashes_as_expected() {
        let dir = vectors();
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "reading {}: {e}; the conformance data is shared/ beside the project root",
                dir.display()
            )
        });
        let mut documents: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonld"))
            .collect();
        documents.sort();
        assert!(
            documents.len() >= 22,
            "only {} .jsonld vectors in {}",
            documents.len(),
            dir.display()
        );

        let (mut failures, mut stale) = (Vec::new(), Vec::new());
        let (mut events_checked, mut prehashes_checked) = (0, 0);
        for path in &documents {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let read = |ext: &str| fs::read_to_string(path.with_extension(ext));
            let document: Value = match read("jsonld").map(|t| serde_json::from_str(&t)) {
                Ok(Ok(d)) => d,
                other => {
                    failures.push(format!("{name}: unreadable: {other:?}"));
                    continue;
                }
            };
            let Ok(expected) = read("hashes") else {
                failures.push(format!("{name}: no .hashes beside the .jsonld"));
                continue;
            };
            let expected: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
            let hashes = match document_hashes(&document) {
                Ok(h) => h,
                Err(e) => {
                    failures.push(format!("{name}: {e}"));
                    continue;
                }
            };
            if hashes.len() != expected.len() {
                failures.push(format!(
                    "{name}: {} events hashed, {} expected",
                    hashes.len(),
                    expected.len()
                ));
            }
            let context = Context::from_document(&document);
            let events = events(&document).unwrap_or_default();
            let prehashes: Vec<String> = events
                .iter()
                .map(|e| prehash(e, &context).unwrap_or_default())
                .collect();
            for (i, (want, got)) in expected.iter().zip(&hashes).enumerate() {
                events_checked += 1;
                if want != got {
                    failures.push(format!(
                        "{name} event {i}:\n    expected {want}\n    got      {got}\n    from     {}",
                        prehashes[i]
                    ));
                }
                if event_hash(events[i], &context).as_ref() != Ok(got) {
                    failures.push(format!("{name} event {i}: event_hash differs from document_hashes"));
                }
            }
            let Ok(expected_prehashes) = read("prehashes") else {
                continue;
            };
            let lines: Vec<&str> = expected_prehashes.lines().collect();
            if lines.len() != events.len() {
                failures.push(format!(
                    "{name}: {} events, {} .prehashes lines",
                    events.len(),
                    lines.len()
                ));
            }
            for (i, (want, got)) in lines.iter().zip(&prehashes).enumerate() {
                if expected.get(i).copied() != Some(sha256_id(want).as_str()) {
                    stale.push((name.clone(), i));
                    continue;
                }
                prehashes_checked += 1;
                if want != got {
                    failures.push(format!(
                        "{name} event {i}: pre-hash string differs\n{}",
                        difference(want, got)
                    ));
                }
            }
        }
        let known: Vec<(String, usize)> = STALE_PREHASHES.iter().map(|(f, i, _)| (f.to_string(), *i)).collect();
        if stale != known {
            failures.push(format!(
                "stale .prehashes lines (not hashing to the expected id) are {stale:?}, expected {known:?}"
            ));
        }
        assert!(
            failures.is_empty(),
            "{} problem(s) in {}:\n{}",
            failures.len(),
            dir.display(),
            failures.join("\n")
        );
        eprintln!(
            "{} documents, {events_checked} event hashes and {prehashes_checked} pre-hash strings as expected",
            documents.len()
        );
    }

    fn event() -> Value {
        json!({
            "type": "ObjectEvent",
            "eventTime": "2022-02-16T20:33:31.116000-06:00",
            "eventTimeZoneOffset": "-06:00",
            "epcList": ["urn:epc:id:sgtin:0614141.107346.2018", "urn:epc:id:sgtin:0614141.107346.2017"],
            "action": "OBSERVE",
            "bizStep": "shipping",
            "disposition": "in_transit",
            "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
            "bizTransactionList": [{"type": "po", "bizTransaction": "http://transaction.acme.com/po/12345678"}],
        })
    }

    const EVENT_PREHASH: &str = "eventType=ObjectEventeventTime=2022-02-17T02:33:31.116ZeventTimeZoneOffset=-06:00\
        epcListepc=https://id.gs1.org/01/10614141073464/21/2017epc=https://id.gs1.org/01/10614141073464/21/2018\
        action=OBSERVEbizStep=https://ref.gs1.org/cbv/BizStep-shippingdisposition=https://ref.gs1.org/cbv/Disp-in_transit\
        readPointid=https://id.gs1.org/414/0614141073467/254/1234\
        bizTransactionListtype=https://ref.gs1.org/cbv/BTT-pobizTransaction=http://transaction.acme.com/po/12345678";

    #[test]
    fn a_single_event_needs_no_document() {
        assert_eq!(prehash(&event(), &Context::default()).as_deref(), Ok(EVENT_PREHASH));
        assert_eq!(
            event_hash(&event(), &Context::default()).as_deref(),
            Ok("ni:///sha-256;ffa491b16867e34a7791a8d5389d826afc24e63a121026b6a4004ace38631b4b?ver=CBV2.0")
        );
        let mut bare = event();
        bare["@context"] = json!(["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"]);
        assert_eq!(
            document_hashes(&bare),
            Ok(vec![event_hash(&event(), &Context::default()).unwrap()])
        );
    }

    #[test]
    fn what_is_not_hashed_does_not_change_the_hash() {
        let mut e = event();
        e["eventID"] = json!("urn:uuid:374d95fc-9457-4a51-bd6a-0bba133845a8");
        e["recordTime"] = json!("2023-06-02T07:03:16.073Z");
        e["errorDeclaration"] = json!({"declarationTime": "2023-06-02T07:03:16.073Z", "reason": "incorrect_data"});
        e["rdfs:comment"] = json!("a comment");
        e["@context"] = json!([{"ex": "https://ns.example.com/"}]);
        assert_eq!(prehash(&e, &Context::default()).as_deref(), Ok(EVENT_PREHASH));
    }

    #[test]
    fn old_urns_and_web_uris_hash_alike() {
        let mut e = event();
        e["bizStep"] = json!("urn:epcglobal:cbv:bizstep:shipping");
        e["disposition"] = json!("https://ref.gs1.org/cbv/Disp-in_transit");
        e["bizTransactionList"][0]["type"] = json!("urn:epcglobal:cbv:btt:po");
        e["epcList"][0] = json!("https://example.com/01/10614141073464/21/2018?x=1");
        assert_eq!(prehash(&e, &Context::default()).as_deref(), Ok(EVENT_PREHASH));
    }

    #[test]
    fn extensions_are_named_by_their_namespace() {
        let mut e = event();
        e["example:myField"] = json!({"example:sub": "2", "example:other": 1.50});
        let plain = prehash(&e, &Context::default()).unwrap();
        assert!(
            plain.ends_with("example:myFieldexample:other=1.5example:sub=2"),
            "{plain}"
        );

        let document = json!({"@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld", {"example": "http://ns.example.com/epcis/"}]});
        let declared = prehash(&e, &Context::from_document(&document)).unwrap();
        let ns = "{http://ns.example.com/epcis/}";
        assert!(
            declared.ends_with(&format!("{ns}myField{ns}other=1.5{ns}sub=2")),
            "{declared}"
        );

        e["@context"] = json!({"example": "http://ns.example.com/epcis/"});
        assert_eq!(prehash(&e, &Context::default()).as_deref(), Ok(declared.as_str()));
    }

    #[test]
    fn ignored_fields_are_left_out() {
        let document = json!({
            "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld", {"repo": IGNORE_FIELDS_NAMESPACE}],
            "type": "EPCISDocument",
            "repo:ignoreFields": ["repo:hash"],
            "epcisBody": {"eventList": [event()]},
        });
        let mut with_hash = document.clone();
        with_hash["epcisBody"]["eventList"][0]["repo:hash"] = json!("ni:///sha-256;00?ver=CBV2.0");
        assert_eq!(document_hashes(&with_hash), document_hashes(&document));
        let mut wrong = document;
        wrong["repo:ignoreFields"] = json!("repo:hash");
        assert!(matches!(document_hashes(&wrong), Err(HashError::Context(_))));
    }

    #[test]
    fn bad_input_is_an_error_naming_the_field() {
        let ctx = Context::default();
        assert!(matches!(prehash(&json!([1]), &ctx), Err(HashError::NotAnEvent(_))));
        assert!(matches!(
            prehash(&json!({"action": "ADD"}), &ctx),
            Err(HashError::NotAnEvent(_))
        ));

        let mut e = event();
        e["eventTime"] = json!("2022-02-16T20:33:31");
        let err = prehash(&e, &ctx).unwrap_err();
        assert!(
            matches!(&err, HashError::Value { field, .. } if field == "eventTime"),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("eventTime \"2022-02-16T20:33:31\": no time zone"),
            "{err}"
        );

        let mut e = event();
        e["bizTransactionList"] = json!([{"type": "po"}]);
        let err = prehash(&e, &ctx).unwrap_err();
        assert!(
            matches!(&err, HashError::Field { field, .. } if field == "bizTransactionList"),
            "{err}"
        );

        let mut e = event();
        e["example:x"] = json!("inf");
        assert!(matches!(prehash(&e, &ctx), Err(HashError::Value { .. })));

        // A standard prefix declared again keeps its standard meaning.
        let redefining = json!({"@context": [{"gs1": "https://example.com/"}], "epcisBody": {"eventList": [event()]}});
        let standard = json!({"epcisBody": {"eventList": [event()]}});
        assert_eq!(
            document_hashes(&redefining).expect("hashes"),
            document_hashes(&standard).expect("hashes")
        );
        let broken = json!({"@context": 7, "epcisBody": {"eventList": [event()]}});
        assert!(matches!(document_hashes(&broken), Err(HashError::Context(_))));

        let mut deep = json!("bottom");
        for _ in 0..200 {
            deep = json!([deep]);
        }
        let mut e = event();
        e["example:deep"] = deep;
        assert!(matches!(prehash(&e, &ctx), Err(HashError::Field { .. })));

        let not_a_document = json!({"type": "EPCISDocument", "epcisBody": {}});
        assert!(matches!(document_hashes(&not_a_document), Err(HashError::Document(_))));
        let failing = json!({"epcisBody": {"eventList": [event(), {"type": "ObjectEvent", "eventTime": "x"}]}});
        assert!(matches!(
            document_hashes(&failing),
            Err(HashError::Event { index: 1, .. })
        ));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::String),
            prop::sample::select(vec![
                "shipping",
                "po",
                "2020-01-01T00:00:00Z",
                "urn:epc:id:sgtin:0614141.107346.2017",
                "inf",
                "nan",
                "https://id.gs1.org/01/09506000134352",
                "x",
                "Temperature",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let key = prop::sample::select(vec![
                "type",
                "eventTime",
                "epcList",
                "bizTransactionList",
                "sourceList",
                "quantityList",
                "readPoint",
                "id",
                "bizStep",
                "sensorElementList",
                "sensorReport",
                "time",
                "example:x",
                "ilmd",
                "childEPCs",
                "#text",
                "bizTransaction",
                "source",
                "value",
                "quantity",
                "fooList",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(key, inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn hashing_never_panics(event in json_value()) {
            let _ = prehash(&event, &Context::default());
            let _ = document_hashes(&json!({"epcisBody": {"eventList": [event]}}));
        }

        #[test]
        fn list_order_does_not_matter(rotation in 0usize..8) {
            let mut e = event();
            e["epcList"] = json!([
                "urn:epc:id:sgtin:0614141.107346.1", "urn:epc:id:sgtin:0614141.107346.2",
                "urn:epc:id:sgtin:0614141.107346.3", "urn:epc:id:sgtin:0614141.107346.4",
            ]);
            e["bizTransactionList"] = json!([{"type": "po", "bizTransaction": "urn:a"}, {"bizTransaction": "urn:b", "type": "inv"}]);
            let before = prehash(&e, &Context::default());
            if let Some(list) = e["epcList"].as_array_mut() {
                let n = rotation % list.len();
                list.rotate_left(n);
            }
            if let Some(list) = e["bizTransactionList"].as_array_mut() {
                list.reverse();
            }
            prop_assert_eq!(prehash(&e, &Context::default()), before);
        }
    }
}
