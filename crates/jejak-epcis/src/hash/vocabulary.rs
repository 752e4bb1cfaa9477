//! What the standard EPCIS 2.0 JSON-LD context says that the hash needs: its
//! prefixes, its protected terms, and the CBV and GS1 vocabulary that bare
//! strings (`"bizStep": "shipping"`) stand for.
//!
//! Bare strings are expanded as the reference algorithm does: the document
//! is expanded as JSON-LD would expand it, every resulting value under
//! `https://ref.gs1.org/cbv` or `https://gs1.org/voc` is collected, and then
//! any string value anywhere that exactly one collected value ends with
//! (after a `-` or `/`) is replaced by it. So `"shipping"` becomes
//! `https://ref.gs1.org/cbv/BizStep-shipping` wherever it appears, as long as
//! the document uses it as a business step somewhere.
//!
//! **Invariant:** the tables here are those of the published context
//! (`https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld`); the
//! expansion reads no network and no file.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Nesting this deep is refused: EPCIS events are shallow, and recursion
/// over JSON nested without bound would exhaust the stack.
pub(super) const MAX_DEPTH: usize = 128;

/// The prefixes the standard context declares.
pub(super) const STANDARD_PREFIXES: [(&str, &str); 8] = [
    ("epcis", "https://ref.gs1.org/epcis/"),
    ("cbv", "https://ref.gs1.org/cbv/"),
    ("cbvmda", "urn:epcglobal:cbv:mda:"),
    ("gs1", "https://gs1.org/voc/"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("owl", "http://www.w3.org/2002/07/owl#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("dcterms", "http://purl.org/dc/terms/"),
];

/// The other terms the standard context defines (in any of its scopes);
/// it is protected, so a definition of one in a document is not used.
const TERMS: &[&str] = &[
    "AggregationEvent",
    "AssociationEvent",
    "Collection",
    "EPCISDocument",
    "EPCISQueryDocument",
    "ObjectEvent",
    "TransactionEvent",
    "TransformationEvent",
    "action",
    "baseURL",
    "bizLocation",
    "bizRules",
    "bizStep",
    "bizTransaction",
    "bizTransactionList",
    "booleanValue",
    "certificationInfo",
    "chemicalSubstance",
    "childEPCs",
    "childQuantityList",
    "children",
    "component",
    "coordinateReferenceSystem",
    "correctiveEventIDs",
    "creationDate",
    "dataProcessingMethod",
    "declarationTime",
    "destination",
    "destinationList",
    "deviceID",
    "deviceMetadata",
    "disposition",
    "endTime",
    "epcClass",
    "epcList",
    "epcisBody",
    "epcisHeader",
    "errorDeclaration",
    "eventID",
    "eventList",
    "eventTime",
    "eventTimeZoneOffset",
    "exception",
    "hexBinaryValue",
    "id",
    "ilmd",
    "inputEPCList",
    "inputQuantityList",
    "instanceIdentifier",
    "masterData",
    "maxValue",
    "meanValue",
    "member",
    "microorganism",
    "minValue",
    "outputEPCList",
    "outputQuantityList",
    "parentID",
    "percRank",
    "percValue",
    "persistentDisposition",
    "quantity",
    "quantityList",
    "queryName",
    "queryResults",
    "rawData",
    "readPoint",
    "reason",
    "receiver",
    "recordTime",
    "resultsBody",
    "sDev",
    "schemaVersion",
    "sender",
    "sensorElementList",
    "sensorMetadata",
    "sensorReport",
    "set",
    "source",
    "sourceList",
    "startTime",
    "stringValue",
    "subscriptionID",
    "time",
    "transformationID",
    "type",
    "unset",
    "uom",
    "uriValue",
    "value",
    "vocabularyList",
];

/// Terms whose values are IRIs (`"@type": "@id"`, or aliases of `@id`).
const IRI_VALUED: &[&str] = &[
    "id",
    "eventID",
    "epcList",
    "parentID",
    "childEPCs",
    "inputEPCList",
    "outputEPCList",
    "epcClass",
    "transformationID",
    "certificationInfo",
    "member",
    "children",
    "readPoint",
    "bizLocation",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "bizRules",
    "coordinateReferenceSystem",
    "microorganism",
    "chemicalSubstance",
    "uriValue",
    "correctiveEventIDs",
    "bizTransaction",
    "source",
    "destination",
];

/// A vocabulary whose terms are `iri` + the term.
struct Terms {
    iri: &'static str,
    names: &'static [&'static str],
}

impl Terms {
    fn expand(&self, term: &str) -> Option<String> {
        self.names.contains(&term).then(|| format!("{}{term}", self.iri))
    }
}

/// The CBV's business steps, as documents may write them bare.
pub(crate) fn biz_steps() -> &'static [&'static str] {
    BIZ_STEPS.names
}

/// The CBV's dispositions.
pub(crate) fn dispositions() -> &'static [&'static str] {
    DISPOSITIONS.names
}

/// The CBV's business transaction types.
pub(crate) fn biz_transaction_types() -> &'static [&'static str] {
    BIZ_TRANSACTION_TYPES.names
}

/// The CBV's source and destination types.
pub(crate) fn source_destination_types() -> &'static [&'static str] {
    SOURCE_DESTINATION_TYPES.names
}

const BIZ_STEPS: Terms = Terms {
    iri: "https://ref.gs1.org/cbv/BizStep-",
    names: &[
        "accepting",
        "arriving",
        "assembling",
        "collecting",
        "commissioning",
        "consigning",
        "creating_class_instance",
        "cycle_counting",
        "decommissioning",
        "departing",
        "destroying",
        "disassembling",
        "dispensing",
        "encoding",
        "entering_exiting",
        "holding",
        "inspecting",
        "installing",
        "killing",
        "loading",
        "other",
        "packing",
        "picking",
        "receiving",
        "removing",
        "repackaging",
        "repairing",
        "replacing",
        "reserving",
        "retail_selling",
        "sampling",
        "sensor_reporting",
        "shipping",
        "staging_outbound",
        "stock_taking",
        "stocking",
        "storing",
        "transporting",
        "unloading",
        "unpacking",
        "void_shipping",
    ],
};

const DISPOSITIONS: Terms = Terms {
    iri: "https://ref.gs1.org/cbv/Disp-",
    names: &[
        "active",
        "available",
        "completeness_verified",
        "completeness_inferred",
        "conformant",
        "container_closed",
        "container_open",
        "damaged",
        "destroyed",
        "dispensed",
        "disposed",
        "encoded",
        "expired",
        "in_progress",
        "in_transit",
        "inactive",
        "mismatch_instance",
        "mismatch_class",
        "mismatch_quantity",
        "needs_replacement",
        "no_pedigree_match",
        "non_conformant",
        "non_sellable_other",
        "partially_dispensed",
        "recalled",
        "reserved",
        "retail_sold",
        "returned",
        "sellable_accessible",
        "sellable_not_accessible",
        "stolen",
        "unavailable",
        "unknown",
    ],
};

const BIZ_TRANSACTION_TYPES: Terms = Terms {
    iri: "https://ref.gs1.org/cbv/BTT-",
    names: &[
        "bol",
        "cert",
        "desadv",
        "inv",
        "pedigree",
        "po",
        "poc",
        "prodorder",
        "recadv",
        "rma",
        "testprd",
        "testres",
        "upevt",
    ],
};

const SOURCE_DESTINATION_TYPES: Terms = Terms {
    iri: "https://ref.gs1.org/cbv/SDT-",
    names: &["owning_party", "possessing_party", "location"],
};

const MEASUREMENT_TYPES: Terms = Terms {
    iri: "https://gs1.org/voc/",
    names: &[
        "AbsoluteHumidity",
        "AbsorbedDose",
        "AbsorbedDoseRate",
        "Acceleration",
        "Radioactivity",
        "Altitude",
        "AmountOfSubstance",
        "AmountOfSubstancePerUnitVolume",
        "Angle",
        "AngularAcceleration",
        "AngularMomentum",
        "AngularVelocity",
        "Area",
        "Capacitance",
        "Conductance",
        "Conductivity",
        "Count",
        "Density",
        "Dimensionless",
        "DoseEquivalent",
        "DoseEquivalentRate",
        "DynamicViscosity",
        "ElectricCharge",
        "ElectricCurrent",
        "ElectricCurrentDensity",
        "ElectricFieldStrength",
        "Energy",
        "Exposure",
        "Force",
        "Frequency",
        "Illuminance",
        "Inductance",
        "Irradiance",
        "KinematicViscosity",
        "Length",
        "LinearMomentum",
        "Luminance",
        "LuminousFlux",
        "LuminousIntensity",
        "MagneticFlux",
        "MagneticFluxDensity",
        "MagneticVectorPotential",
        "Mass",
        "MassConcentration",
        "MassFlowRate",
        "MassPerAreaTime",
        "MemoryCapacity",
        "MolalityOfSolute",
        "MolarEnergy",
        "MolarMass",
        "MolarVolume",
        "Power",
        "Pressure",
        "RadiantFlux",
        "RadiantIntensity",
        "RelativeHumidity",
        "Resistance",
        "Resistivity",
        "SolidAngle",
        "SpecificVolume",
        "Speed",
        "SurfaceDensity",
        "SurfaceTension",
        "Temperature",
        "Time",
        "Torque",
        "Voltage",
        "Volume",
        "VolumeFlowRate",
        "VolumeFraction",
        "VolumetricFlux",
        "Wavenumber",
    ],
};

const SENSOR_EXCEPTIONS: Terms = Terms {
    iri: "https://gs1.org/voc/",
    names: &["ALARM_CONDITION", "ERROR_CONDITION"],
};

const COMPONENTS: Terms = Terms {
    iri: "https://ref.gs1.org/cbv/Comp-",
    names: &[
        "x",
        "y",
        "z",
        "axial_distance",
        "azimuth",
        "height",
        "spherical_radius",
        "polar_angle",
        "elevation_angle",
        "easting",
        "northing",
        "latitude",
        "longitude",
        "altitude",
    ],
};

const ERROR_REASONS: Terms = Terms {
    iri: "https://ref.gs1.org/cbv/ER-",
    names: &["did_not_occur", "incorrect_data"],
};

/// The standard namespace of a prefix the standard context declares.
pub(super) fn standard_prefix(prefix: &str) -> Option<&'static str> {
    STANDARD_PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, iri)| *iri)
}

/// Whether the standard context defines `term` (other than as a prefix).
pub(super) fn is_standard_term(term: &str) -> bool {
    TERMS.contains(&term)
}

/// Which property-scoped context of the standard context is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Top,
    BizTransactions,
    SourcesDestinations,
    PersistentDisposition,
    SensorElements,
    SensorReport,
    ErrorDeclaration,
}

/// How the strings under one key expand.
#[derive(Clone, Copy)]
enum Kind {
    /// Plain values: as they are.
    Literal,
    /// IRIs: compact IRIs expand, relative ones are not collected.
    Iri,
    /// Vocabulary terms (`"@type": "@vocab"`), then as IRIs.
    Vocabulary(Option<&'static Terms>),
}

/// How the value of `key` expands in `scope`, and the scope under it;
/// `None` for keys JSON-LD expansion drops (no term, no IRI).
fn rule(scope: Scope, key: &str) -> Option<(Kind, Scope)> {
    use Kind::*;
    let kind = match (scope, key) {
        (Scope::BizTransactions, "type") => Vocabulary(Some(&BIZ_TRANSACTION_TYPES)),
        (Scope::SourcesDestinations, "type") => Vocabulary(Some(&SOURCE_DESTINATION_TYPES)),
        (Scope::SensorReport, "type") => Vocabulary(Some(&MEASUREMENT_TYPES)),
        (Scope::SensorReport, "exception") => Vocabulary(Some(&SENSOR_EXCEPTIONS)),
        (Scope::SensorReport, "component") => Vocabulary(Some(&COMPONENTS)),
        (Scope::PersistentDisposition, "set" | "unset") => Vocabulary(Some(&DISPOSITIONS)),
        (Scope::ErrorDeclaration, "reason") => Vocabulary(Some(&ERROR_REASONS)),
        (_, "type") => Vocabulary(None),
        (_, "bizStep") => Vocabulary(Some(&BIZ_STEPS)),
        (_, "disposition") => Vocabulary(Some(&DISPOSITIONS)),
        _ if IRI_VALUED.contains(&key) => Iri,
        _ if TERMS.contains(&key) || key.contains(':') => Literal,
        _ => return None,
    };
    let inner = match key {
        "bizTransactionList" => Scope::BizTransactions,
        "sourceList" | "destinationList" => Scope::SourcesDestinations,
        "persistentDisposition" => Scope::PersistentDisposition,
        "sensorElementList" => Scope::SensorElements,
        "sensorReport" => Scope::SensorReport,
        "errorDeclaration" => Scope::ErrorDeclaration,
        _ => scope,
    };
    Some((kind, inner))
}

/// A compact IRI (`gs1:Temperature`) expanded with `prefixes`; anything
/// else as it is.
fn expand_iri(text: &str, prefixes: &BTreeMap<String, String>) -> String {
    match text.split_once(':') {
        Some((prefix, rest)) if !rest.starts_with("//") => match prefixes.get(prefix) {
            Some(iri) => format!("{iri}{rest}"),
            None => text.to_string(),
        },
        _ => text.to_string(),
    }
}

fn is_vocabulary(iri: &str) -> bool {
    iri.starts_with("https://ref.gs1.org/cbv") || iri.starts_with("https://gs1.org/voc")
}

/// Adds to `out` the CBV and GS1 vocabulary IRIs that `document` expands
/// to. `Err` names a key nested deeper than [`MAX_DEPTH`].
pub(super) fn collect(
    document: &Value,
    prefixes: &BTreeMap<String, String>,
    out: &mut BTreeSet<String>,
) -> Result<(), String> {
    walk(document, Kind::Literal, Scope::Top, prefixes, out, 0)
}

fn walk(
    value: &Value,
    kind: Kind,
    scope: Scope,
    prefixes: &BTreeMap<String, String>,
    out: &mut BTreeSet<String>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(String::new());
    }
    match value {
        Value::String(s) => {
            let expanded = match kind {
                Kind::Literal => Some(s.clone()),
                Kind::Vocabulary(terms) => terms
                    .and_then(|t| t.expand(s))
                    .or_else(|| s.contains(':').then(|| expand_iri(s, prefixes))),
                Kind::Iri => s.contains(':').then(|| expand_iri(s, prefixes)),
            };
            out.extend(expanded.filter(|iri| is_vocabulary(iri)));
        }
        Value::Array(items) => {
            for item in items {
                walk(item, kind, scope, prefixes, out, depth + 1)?;
            }
        }
        Value::Object(fields) => {
            for (key, v) in fields {
                if key == "@context" {
                    continue;
                }
                if let Some((kind, scope)) = rule(scope, key) {
                    walk(v, kind, scope, prefixes, out, depth + 1).map_err(|path| match path.is_empty() {
                        true => key.clone(),
                        false => format!("{key}.{path}"),
                    })?;
                }
            }
        }
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
    Ok(())
}

/// The one vocabulary IRI that `text` is a bare form of (the IRI ends with
/// `-text` or `/text`), if exactly one does.
pub(super) fn expand_bare<'v>(text: &str, vocabulary: &'v BTreeSet<String>) -> Option<&'v str> {
    let mut found = vocabulary.iter().filter(|iri| {
        iri.len() > text.len()
            && iri.ends_with(text)
            && matches!(iri.as_bytes().get(iri.len() - text.len() - 1), Some(b'-' | b'/'))
    });
    match (found.next(), found.next()) {
        (Some(iri), None) => Some(iri),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vocabulary_of(document: Value) -> BTreeSet<String> {
        let prefixes = STANDARD_PREFIXES
            .iter()
            .map(|(p, i)| (p.to_string(), i.to_string()))
            .collect();
        let mut out = BTreeSet::new();
        collect(&document, &prefixes, &mut out).unwrap();
        out
    }

    #[test]
    fn bare_strings_expand_in_their_scope_only() {
        let v = vocabulary_of(json!({
            "bizStep": "shipping",
            "disposition": "in_transit",
            "bizTransactionList": [{"type": "po", "bizTransaction": "urn:x"}],
            "sourceList": [{"type": "owning_party", "source": "urn:y"}],
            "persistentDisposition": {"set": ["recalled"]},
            "sensorElementList": [{"sensorReport": [{"type": "Temperature", "exception": "ALARM_CONDITION", "component": "gs1:odd"}]}],
            "readPoint": {"id": "cbv:SomethingElse"},
            "unknownKey": "https://gs1.org/voc/Dropped",
            "ex:field": "https://gs1.org/voc/Kept",
            "type": "shipping",
        }));
        let expected: BTreeSet<String> = [
            "https://ref.gs1.org/cbv/BizStep-shipping",
            "https://ref.gs1.org/cbv/Disp-in_transit",
            "https://ref.gs1.org/cbv/BTT-po",
            "https://ref.gs1.org/cbv/SDT-owning_party",
            "https://ref.gs1.org/cbv/Disp-recalled",
            "https://gs1.org/voc/Temperature",
            "https://gs1.org/voc/ALARM_CONDITION",
            "https://gs1.org/voc/odd",
            "https://ref.gs1.org/cbv/SomethingElse",
            "https://gs1.org/voc/Kept",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(v, expected);
    }

    #[test]
    fn a_bare_string_expands_only_when_one_iri_fits() {
        let v: BTreeSet<String> = [
            "https://ref.gs1.org/cbv/BizStep-shipping",
            "https://ref.gs1.org/cbv/Comp-x",
            "https://gs1.org/voc/x",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(
            expand_bare("shipping", &v),
            Some("https://ref.gs1.org/cbv/BizStep-shipping")
        );
        assert_eq!(
            expand_bare("BizStep-shipping", &v),
            Some("https://ref.gs1.org/cbv/BizStep-shipping")
        );
        assert_eq!(expand_bare("x", &v), None);
        assert_eq!(expand_bare("hipping", &v), None);
        assert_eq!(expand_bare("https://ref.gs1.org/cbv/BizStep-shipping", &v), None);
    }
}
