//! The pre-hash string of one event: the event as a tree of named values
//! (the shape its XML form has), its standard fields in the canonical
//! property order, then everything else sorted.
//!
//! The steps, as in the reference algorithm:
//!
//! 1. JSON to tree. An object is a node whose children are its members (the
//!    members of an array value become siblings of the same name); keys
//!    `prefix:name` with a known prefix become `{namespace}name`; string
//!    values that are bare CBV terms become their Web URI and `prefix:name`
//!    values their full IRI; comments (`rdfs:comment`, `comment`) go.
//! 2. JSON to XML shape. `xList` members become `x` children of one `xList`
//!    node (`inputEPCList` → `epc`, `quantityList` → `quantityElement`, …),
//!    `childEPCs` likewise; each `bizTransaction`, `source` and
//!    `destination` becomes its type followed by its id.
//! 3. Ordered part. [`EVENT`] lists the standard fields; each present field
//!    gives `name=value` (or its name and its children's text), same-named
//!    fields sorted, then the user extensions (`{namespace}name`) of that
//!    node sorted. A field that has been written in full leaves the tree.
//! 4. The rest. What is left (ILMD, user extensions at event level,
//!    business transactions, sources and destinations, anything not
//!    written in full) is written as `name=value` plus children, each level
//!    sorted as text, except that a type stays before its id. So
//!    `destinationList` comes before `sourceList`.
//!
//! **Invariant:** the text depends on the event's content only, never on
//! the order of object members or of list entries.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Number, Value};

use super::value::{self, Problem};
use super::vocabulary::{self, MAX_DEPTH};
use super::HashError;

/// A named value with children: an event, a field, a list entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Node {
    name: String,
    value: String,
    children: Vec<Item>,
}

/// A child of a node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Node(Node),
    /// A business transaction, source or destination: its type (if given)
    /// and its id, always in that order.
    Typed {
        kind: Option<Node>,
        id: Node,
    },
}

impl Item {
    fn node(&self) -> Option<&Node> {
        match self {
            Item::Node(n) => Some(n),
            Item::Typed { .. } => None,
        }
    }
}

/// Which children of a field the ordered part writes, in order.
enum Order {
    Leaf,
    Children(&'static [(&'static str, Order)]),
}

use Order::{Children, Leaf};

const EPCS: &[(&str, Order)] = &[("epc", Leaf)];
const QUANTITIES: &[(&str, Order)] = &[(
    "quantityElement",
    Children(&[("epcClass", Leaf), ("quantity", Leaf), ("uom", Leaf)]),
)];
const ID: &[(&str, Order)] = &[("id", Leaf)];
const SENSOR_METADATA: &[(&str, Order)] = &[
    ("time", Leaf),
    ("startTime", Leaf),
    ("endTime", Leaf),
    ("deviceID", Leaf),
    ("deviceMetadata", Leaf),
    ("rawData", Leaf),
    ("dataProcessingMethod", Leaf),
    ("bizRules", Leaf),
];
const SENSOR_REPORT: &[(&str, Order)] = &[
    ("type", Leaf),
    ("exception", Leaf),
    ("deviceID", Leaf),
    ("deviceMetadata", Leaf),
    ("rawData", Leaf),
    ("dataProcessingMethod", Leaf),
    ("time", Leaf),
    ("microorganism", Leaf),
    ("chemicalSubstance", Leaf),
    ("value", Leaf),
    ("component", Leaf),
    ("stringValue", Leaf),
    ("booleanValue", Leaf),
    ("hexBinaryValue", Leaf),
    ("uriValue", Leaf),
    ("minValue", Leaf),
    ("maxValue", Leaf),
    ("meanValue", Leaf),
    ("sDev", Leaf),
    ("percRank", Leaf),
    ("percValue", Leaf),
    ("uom", Leaf),
    ("coordinateReferenceSystem", Leaf),
];

/// The canonical property order of every event type. `bizTransactionList`,
/// `sourceList` and `destinationList` are not in it: the reference writes
/// them with the rest (step 4).
const EVENT: &[(&str, Order)] = &[
    ("eventTime", Leaf),
    ("eventTimeZoneOffset", Leaf),
    ("certificationInfo", Leaf),
    ("parentID", Leaf),
    ("epcList", Children(EPCS)),
    ("inputEPCList", Children(EPCS)),
    ("childEPCs", Children(EPCS)),
    ("quantityList", Children(QUANTITIES)),
    ("childQuantityList", Children(QUANTITIES)),
    ("inputQuantityList", Children(QUANTITIES)),
    ("outputEPCList", Children(EPCS)),
    ("outputQuantityList", Children(QUANTITIES)),
    ("action", Leaf),
    ("transformationID", Leaf),
    ("bizStep", Leaf),
    ("disposition", Leaf),
    ("persistentDisposition", Children(&[("set", Leaf), ("unset", Leaf)])),
    ("readPoint", Children(ID)),
    ("bizLocation", Children(ID)),
    (
        "sensorElementList",
        Children(&[(
            "sensorElement",
            Children(&[
                ("sensorMetadata", Children(SENSOR_METADATA)),
                ("sensorReport", Children(SENSOR_REPORT)),
            ]),
        )]),
    ),
];

/// Event fields the hash leaves out.
const NOT_HASHED: [&str; 4] = ["recordTime", "eventID", "type", "errorDeclaration"];

/// Members no level of an event contributes.
const COMMENTS: [&str; 3] = ["#text", "rdfs:comment", "comment"];

/// What turns JSON names and strings into the tree's.
pub(super) struct Names<'a> {
    pub(super) namespaces: &'a BTreeMap<String, String>,
    pub(super) vocabulary: &'a BTreeSet<String>,
}

impl<'a> Names<'a> {
    /// A member name, `{namespace}name` if its prefix is declared.
    fn key(&self, key: &str) -> String {
        match key
            .split_once(':')
            .and_then(|(p, rest)| Some((self.namespaces.get(p)?, rest)))
        {
            Some((namespace, rest)) => format!("{{{namespace}}}{rest}"),
            None => key.to_string(),
        }
    }

    /// A bare CBV term as its URI, anything else as it is.
    fn bare<'t>(&self, text: &'t str) -> &'t str
    where
        'a: 't,
    {
        vocabulary::expand_bare(text, self.vocabulary).unwrap_or(text)
    }

    /// A string value: a bare CBV term as its URI, else a compact IRI with a
    /// declared prefix in full.
    fn string(&self, text: &str) -> String {
        let text = self.bare(text);
        match text
            .split_once(':')
            .and_then(|(p, rest)| Some((self.namespaces.get(p)?, rest)))
        {
            Some((namespace, rest)) => format!("{}{rest}", namespace.replace(['{', '}'], "")),
            None => text.to_string(),
        }
    }
}

/// The pre-hash string of an event (a JSON object), leaving out the
/// top-level members named in `ignored`.
pub(super) fn prehash(
    event: &Map<String, Value>,
    names: &Names,
    ignored: &BTreeSet<String>,
) -> Result<String, HashError> {
    let event_type = match event.get("type") {
        Some(Value::String(t)) => names.bare(t).to_string(),
        Some(_) => return Err(HashError::NotAnEvent("its type is not a string".into())),
        None => return Err(HashError::NotAnEvent("it has no type".into())),
    };
    let mut tree = correct(object(event, names, 0, ignored)?)?;
    let ordered = ordered(&mut tree.children, EVENT)?;
    let rest: Vec<Item> = tree
        .children
        .into_iter()
        .filter(|c| c.node().is_none_or(|n| !NOT_HASHED.contains(&n.name.as_str())))
        .collect();
    Ok(format!("eventType={event_type}{ordered}{}", rest_text(&rest)?))
}

/// Step 1 for the value of member `key`.
fn node(key: &str, value: &Value, names: &Names, depth: usize) -> Result<Node, HashError> {
    if depth > MAX_DEPTH {
        return Err(HashError::Field {
            field: key.to_string(),
            reason: format!("nests more than {MAX_DEPTH} levels deep"),
        });
    }
    let leaf = |value: String| Node {
        name: String::new(),
        value,
        children: Vec::new(),
    };
    Ok(match value {
        Value::Object(fields) => object(fields, names, depth, &BTreeSet::new())?,
        Value::Array(items) => {
            let mut children = Vec::with_capacity(items.len());
            for item in items {
                children.push(Item::Node(node(key, item, names, depth + 1)?));
            }
            children.sort();
            Node {
                name: String::new(),
                value: String::new(),
                children,
            }
        }
        Value::String(s) => leaf(names.string(s)),
        Value::Number(n) => leaf(number(n)),
        Value::Bool(true) => leaf("True".into()),
        Value::Bool(false) => leaf("False".into()),
        Value::Null => leaf("None".into()),
    })
}

/// A JSON number as the reference reads it before canonicalising.
fn number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        n.as_f64().map(value::float_repr).unwrap_or_else(|| n.to_string())
    }
}

/// Step 1 for an object, leaving out the members named in `ignored`.
fn object(
    fields: &Map<String, Value>,
    names: &Names,
    depth: usize,
    ignored: &BTreeSet<String>,
) -> Result<Node, HashError> {
    let bare = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(|s| names.bare(s).to_string())
            .unwrap_or_default()
    };
    let mut children = Vec::with_capacity(fields.len());
    for (key, v) in fields {
        let skipped = COMMENTS.contains(&key.as_str()) || key == "@context" || key.starts_with("@xmlns");
        if skipped || ignored.contains(key) {
            continue;
        }
        let child = node(key, v, names, depth + 1)?;
        let name = names.key(key);
        if v.is_array() {
            for item in child.children {
                if let Item::Node(n) = item {
                    children.push(Item::Node(Node {
                        name: name.clone(),
                        value: n.value,
                        children: n.children,
                    }));
                }
            }
        } else {
            children.push(Item::Node(Node {
                name,
                value: child.value,
                children: child.children,
            }));
        }
    }
    // The reference keeps these objects in member order so that a type
    // stays before its id; typed entries are rebuilt by name in step 2.
    let keeps_order = ["bizTransaction", "source", "destination"]
        .iter()
        .any(|k| fields.contains_key(*k));
    if !keeps_order {
        children.sort();
    }
    Ok(Node {
        name: bare(fields.get("type")),
        value: bare(fields.get("#text")),
        children,
    })
}

/// Lists whose entries are a type and an id.
fn typed_entry(list: &str) -> Option<&'static str> {
    match list {
        "bizTransactionList" => Some("bizTransaction"),
        "sourceList" => Some("source"),
        "destinationList" => Some("destination"),
        _ => None,
    }
}

/// One `bizTransaction`, `source` or `destination` as its type and id.
fn typed(list: &str, id_name: &str, entry: Node) -> Result<Item, HashError> {
    let shape = || HashError::Field {
        field: list.to_string(),
        reason: format!("each entry must be an object with `{id_name}` and an optional `type`, both strings"),
    };
    if !entry.value.is_empty() {
        return Err(shape());
    }
    let (mut kind, mut id) = (None, None);
    for child in entry.children {
        match child {
            Item::Node(n) if n.children.is_empty() && n.name == "type" && kind.is_none() => kind = Some(n),
            Item::Node(n) if n.children.is_empty() && n.name == id_name && id.is_none() => id = Some(n),
            Item::Node(n) if n.name == "type" || n.name == id_name => return Err(shape()),
            Item::Node(n) => {
                return Err(HashError::Field {
                    field: list.to_string(),
                    reason: format!("an entry has `{}`, which is not a field of {id_name}", n.name),
                })
            }
            Item::Typed { .. } => return Err(shape()),
        }
    }
    let id = id.ok_or_else(shape)?;
    Ok(Item::Typed { kind, id })
}

/// Step 2: the JSON tree in the shape of the XML one.
fn correct(node: Node) -> Result<Node, HashError> {
    let Node { name, value, children } = node;
    let mut kept = Vec::with_capacity(children.len());
    let mut lists: Vec<(String, Vec<Node>)> = Vec::new();
    for child in children {
        match child {
            Item::Node(n) if n.name.ends_with("List") => {
                let entry = Node {
                    name: n.name[..n.name.len() - 4].to_string(),
                    value: n.value,
                    children: n.children,
                };
                match lists.iter_mut().find(|(list, _)| *list == n.name) {
                    Some((_, entries)) => entries.push(entry),
                    None => lists.push((n.name, vec![entry])),
                }
            }
            other => kept.push(other),
        }
    }
    for (list, entries) in lists {
        let children = match typed_entry(&list) {
            Some(id_name) => entries
                .into_iter()
                .map(|e| typed(&list, id_name, e))
                .collect::<Result<_, _>>()?,
            None => entries.into_iter().map(Item::Node).collect(),
        };
        kept.push(Item::Node(Node {
            name: list,
            value: String::new(),
            children,
        }));
    }
    let (epcs, mut kept): (Vec<Item>, Vec<Item>) = kept
        .into_iter()
        .partition(|c| c.node().is_some_and(|n| n.name == "childEPCs"));
    if !epcs.is_empty() {
        let children = epcs
            .into_iter()
            .filter_map(|c| match c {
                Item::Node(n) => Some(Item::Node(Node {
                    name: "epc".into(),
                    value: n.value,
                    children: Vec::new(),
                })),
                Item::Typed { .. } => None,
            })
            .collect();
        kept.push(Item::Node(Node {
            name: "childEPCs".into(),
            value: String::new(),
            children,
        }));
    }
    let mut children = Vec::with_capacity(kept.len());
    for child in kept {
        children.push(match child {
            Item::Node(n) if typed_entry(&n.name).is_none() => Item::Node(correct(n)?),
            other => other,
        });
    }
    let name = match name.as_str() {
        "inputEPC" | "outputEPC" => "epc".to_string(),
        "inputQuantity" | "outputQuantity" | "childQuantity" => "quantityElement".to_string(),
        "quantity" if !children.is_empty() => "quantityElement".to_string(),
        _ => name,
    };
    Ok(Node { name, value, children })
}

fn canonical(field: &str, text: &str, how: fn(&str) -> Result<String, Problem>) -> Result<String, HashError> {
    how(text).map_err(|reason| HashError::Value {
        field: field.to_string(),
        value: text.to_string(),
        reason: reason.to_string(),
    })
}

/// Step 3 for the children of one node: the fields of `order` written and
/// removed, then this level's user extensions.
fn ordered(children: &mut Vec<Item>, order: &[(&str, Order)]) -> Result<String, HashError> {
    let extensions = take_extensions(children);
    let mut out = String::new();
    for (name, sub) in order {
        let mut texts = Vec::new();
        let mut i = 0;
        while i < children.len() {
            let Item::Node(field) = &mut children[i] else {
                i += 1;
                continue;
            };
            if field.name != *name {
                i += 1;
                continue;
            }
            let inner = match sub {
                Children(sub) => ordered(&mut field.children, sub)?,
                Leaf => String::new(),
            };
            let mut text = String::new();
            if !field.value.is_empty() {
                let v = value::trim(&field.value);
                let v = if value::is_time(&field.name) {
                    if v.is_empty() {
                        String::new()
                    } else {
                        canonical(&field.name, v, value::utc_millis)?
                    }
                } else {
                    canonical(&field.name, v, value::canonical)?
                };
                if !v.is_empty() {
                    text = format!("={v}");
                }
            }
            if !text.is_empty() || !inner.is_empty() {
                texts.push(format!("{}{text}{inner}", field.name));
            }
            if field.children.is_empty() {
                children.remove(i);
            } else {
                i += 1;
            }
        }
        texts.sort();
        out.extend(texts);
    }
    if !extensions.is_empty() {
        out.push_str(&rest_text(&extensions)?);
    }
    Ok(out)
}

/// The user extensions (`{namespace/}name`) among `children`, taken out; at
/// event level (a child `eventTime` or `action`) or alone there are none:
/// they are then written with the rest.
fn take_extensions(children: &mut Vec<Item>) -> Vec<Item> {
    let at_event_level = children
        .iter()
        .filter_map(Item::node)
        .any(|n| n.name.contains("eventTime") || n.name.contains("action"));
    if children.len() <= 1 || at_event_level {
        return Vec::new();
    }
    let is_extension = |c: &Item| c.node().is_some_and(|n| n.name.contains('{') && n.name.contains("/}"));
    let (extensions, rest) = std::mem::take(children).into_iter().partition(is_extension);
    *children = rest;
    extensions
}

/// Step 4: `name=value` and the children's text for each item, sorted unless
/// a type and its id are among them.
fn rest_text(items: &[Item]) -> Result<String, HashError> {
    let mut texts = Vec::with_capacity(items.len());
    for item in items {
        texts.push(match item {
            Item::Node(n) => node_text(n)?,
            Item::Typed { kind, id } => {
                let kind = kind.as_ref().map(node_text).transpose()?.unwrap_or_default();
                format!("{kind}{}", node_text(id)?)
            }
        });
    }
    let keeps_order = items
        .iter()
        .filter_map(Item::node)
        .any(|n| matches!(n.name.as_str(), "bizTransaction" | "source" | "destination"));
    if items.len() > 1 && !keeps_order {
        texts.sort();
    }
    Ok(texts.concat())
}

fn node_text(n: &Node) -> Result<String, HashError> {
    let v = value::trim(&n.value);
    let text = if v.is_empty() {
        String::new()
    } else {
        format!("={}", canonical(&n.name, v, value::canonical)?)
    };
    Ok(format!("{}{text}{}", n.name, rest_text(&n.children)?))
}
