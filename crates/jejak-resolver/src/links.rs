//! What the resolver says about a label to machines: the RFC 9264 linkset
//! of the link types it offers, the JSON-LD description in schema.org and
//! GS1 Web Vocabulary terms, and the `/.well-known/gs1resolver` document.

use serde_json::{json, Value};

use jejak_read::provenance::{Provenance, Status, VerdictOut};

/// The GS1 Web Vocabulary namespace link types are named in.
pub const GS1_VOC: &str = "https://ref.gs1.org/voc/";

/// The link types this resolver answers for every label, with what each
/// returns. The default (`gs1:pip`) is the provenance page.
pub const LINK_TYPES: &[(&str, &str)] = &[
    ("pip", "text/html"),
    ("traceability", "application/json"),
    ("certificationInfo", "application/json"),
    ("recallStatus", "application/json"),
];

/// jejak's own link type: the provenance bundle (offline-verifiable proofs).
pub const BUNDLE_LINK_TYPE: &str = "jejak:provenanceBundle";

/// The RFC 9264 linkset (`application/linkset+json`) for a label at `uri`
/// (its path under the public base), with titles in both languages.
pub fn linkset(uri: &str, title: &str) -> Value {
    let q = |extra: &str| format!("{uri}?{extra}");
    let html = |lang: &str, t: &str| json!({"href": q(&format!("lang={lang}")), "title": t, "type": "text/html", "hreflang": [lang]});
    let pip = json!([
        html("id", &format!("Asal-usul {title}")),
        html("en", &format!("Provenance of {title}")),
    ]);
    let mut context = serde_json::Map::new();
    context.insert("anchor".into(), Value::String(uri.to_string()));
    context.insert(
        format!("{GS1_VOC}defaultLink"),
        json!([html("id", &format!("Asal-usul {title}"))]),
    );
    context.insert(format!("{GS1_VOC}pip"), pip);
    context.insert(
        format!("{GS1_VOC}traceability"),
        json!([
            {"href": q("linkType=gs1:traceability"), "title": format!("Genealogy of {title}"), "type": "application/json"},
            {"href": uri, "title": format!("Genealogy of {title} (JSON-LD)"), "type": "application/ld+json"},
        ]),
    );
    context.insert(
        format!("{GS1_VOC}certificationInfo"),
        json!([{"href": q("linkType=gs1:certificationInfo"), "title": format!("Inspections of {title} and its inputs"), "type": "application/json"}]),
    );
    context.insert(
        format!("{GS1_VOC}recallStatus"),
        json!([{"href": q("linkType=gs1:recallStatus"), "title": format!("Recall status of {title}"), "type": "application/json"}]),
    );
    context.insert(
        BUNDLE_LINK_TYPE.into(),
        json!([{"href": q(&format!("linkType={BUNDLE_LINK_TYPE}")), "title": format!("Provenance bundle of {title}: every record with its transparency log proof, checkable offline"), "type": "application/json"}]),
    );
    json!({ "linkset": [Value::Object(context)] })
}

/// The RFC 8288 `Link` header pointing at the linkset, as GS1 resolvers send.
pub fn link_header(uri: &str) -> String {
    format!("<{uri}?linkType=linkset>; rel=\"linkset\"; type=\"application/linkset+json\"")
}

fn verdict_term(v: Option<VerdictOut>) -> &'static str {
    match v {
        Some(VerdictOut::Conformant) => "conformant",
        Some(VerdictOut::NonConformant) => "non_conformant",
        Some(VerdictOut::Hold) => "hold",
        None => "none",
    }
}

/// A schema.org / GS1 Web Vocabulary description of the labelled product:
/// `schema:SomeProducts` for a lot, `schema:IndividualProduct` for a
/// serialised unit, its maker (UKM), inspections as
/// `gs1:CertificationDetails` and its input lots as `schema:material`.
pub fn json_ld(page: &Provenance) -> Value {
    let kind = if page.serial.is_some() {
        "schema:IndividualProduct"
    } else {
        "schema:SomeProducts"
    };
    let certification = |standard: &str, verdict: Option<VerdictOut>, at: &str| {
        json!({
            "@type": "gs1:CertificationDetails",
            "gs1:certificationStandard": standard,
            "gs1:certificationStatus": verdict_term(verdict),
            "gs1:certificationAuditDate": at,
        })
    };
    let materials: Vec<Value> = page
        .inputs
        .iter()
        .filter(|l| !l.voided)
        .map(|l| {
            let mut m = json!({
                "@type": "schema:SomeProducts",
                "schema:name": l.product,
                "gs1:hasBatchLotNumber": l.lot_id,
                "schema:manufacturer": {"@type": "schema:Organization", "schema:name": l.owner},
                "gs1:certification": l.inspections.iter().filter(|i| !i.voided)
                    .map(|i| certification(&i.standard, i.verdict, &i.at.rfc3339()))
                    .collect::<Vec<_>>(),
            });
            if !l.place.is_empty() {
                m["schema:countryOfOrigin"] = json!({"@type": "schema:Place", "schema:name": l.place});
            }
            m
        })
        .collect();
    let mut doc = json!({
        "@context": {
            "schema": "https://schema.org/",
            "gs1": GS1_VOC,
        },
        "@id": page.uri,
        "@type": [kind, "gs1:Product"],
        "schema:name": page.product.name,
        "gs1:productName": page.product.name,
        "gs1:gtin": page.gtin,
        "schema:gtin14": page.gtin,
        "gs1:hasBatchLotNumber": page.lot_id,
        "schema:hasGS1DigitalLink": page.uri,
        "schema:productionDate": page.made_at.rfc3339(),
        "schema:manufacturer": page.ukm_shares.iter().map(|s| json!({
            "@type": "schema:Organization",
            "@id": format!("#party-{}", s.id),
            "schema:name": s.name,
        })).chain(std::iter::once(json!({
            "namespace": "jejak:",
            "prefix": "jejak:",
            "linkType": BUNDLE_LINK_TYPE,
            "type": "application/json",
        }))).collect::<Vec<_>>(),
        "gs1:manufacturingPlant": {"@type": "schema:Place", "schema:name": page.facility.name},
        "gs1:certification": page.inspections.iter().filter(|i| !i.voided)
            .map(|i| certification(&i.standard, i.verdict, &i.at.rfc3339()))
            .collect::<Vec<_>>(),
        "schema:material": materials,
        "schema:additionalProperty": [
            {"@type": "schema:PropertyValue", "schema:propertyID": "lotStatus", "schema:value": status_term(page.status)},
            {"@type": "schema:PropertyValue", "schema:propertyID": "alerts", "schema:value": page.alerts.len()},
        ],
    });
    if let Some(serial) = &page.serial {
        doc["gs1:hasSerialNumber"] = json!(serial);
        doc["schema:serialNumber"] = json!(serial);
    }
    doc
}

pub fn status_term(s: Status) -> &'static str {
    match s {
        Status::Active => "active",
        Status::OnHold => "on_hold",
        Status::Released => "released",
        Status::Recalled => "recalled",
        Status::Disposed => "disposed",
    }
}

/// `/.well-known/gs1resolver`: what this resolver is and can do, in the
/// shape the GS1-Conformant Resolver standard describes.
pub fn resolver_description(base: &str) -> Value {
    json!({
        "name": "jejak — provenance of products from Central Java's shared factories",
        "resolverRoot": base.trim_end_matches('/'),
        "supportedPrimaryKeys": ["01"],
        "supportedQualifiers": {"01": ["10", "21"]},
        "linkTypeDefaultCanBeLinkset": false,
        "supportedLinkType": LINK_TYPES.iter().map(|(t, ty)| json!({
            "namespace": GS1_VOC,
            "prefix": "gs1:",
            "linkType": format!("gs1:{t}"),
            "type": ty,
        })).chain(std::iter::once(json!({
            "namespace": "jejak:",
            "prefix": "jejak:",
            "linkType": BUNDLE_LINK_TYPE,
            "type": "application/json",
        }))).collect::<Vec<_>>(),
        "supportedContentTypes": ["text/html", "application/json", "application/ld+json", "application/linkset+json"],
        "supportedLanguages": ["id", "en"],
        "customPathPrefixAllowed": true,
        "labels": format!("{}/labels/01/{{gtin}}/10/{{lot}}[/21/{{serial}}]?format=svg|png", base.trim_end_matches('/')),
    })
}
