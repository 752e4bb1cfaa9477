//! Shape checks for ids and text fields, shared by every way a command enters.

use crate::error::{quote, DomainError};
use crate::model::Command;

/// Longest id accepted for parties, facilities, products, standards and commands.
pub const MAX_ID_LEN: usize = 64;
/// Lot ids and package serials go into GS1 AI (10) and AI (21): at most 20 characters.
pub const MAX_LOT_ID_LEN: usize = 20;
/// Longest free-text field (names, reasons, places).
pub const MAX_TEXT_LEN: usize = 512;

// How many items one command may list. Each bounds the work and the size of
// one event; together they keep the largest command (a pack of
// `MAX_PACKAGES` packages, about 0.6 MB) well under the server's 4 MiB
// message limit. More than this is split into several commands.

/// Input lots of one transformation.
pub const MAX_INPUTS: usize = 1_000;
/// Output lots of one transformation.
pub const MAX_OUTPUTS: usize = 1_000;
/// Packages of one pack command.
pub const MAX_PACKAGES: usize = 10_000;
/// Package serials of one shipment (as many as one pack command makes).
pub const MAX_SHIPPED_SERIALS: usize = MAX_PACKAGES;
/// Measurements of one inspection.
pub const MAX_MEASUREMENTS: usize = 200;
/// Documents of one receipt.
pub const MAX_DOCUMENTS: usize = 100;
/// Parameters of one quality standard.
pub const MAX_PARAMETERS: usize = 200;

fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

fn lot_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// The command id of the void that takes back event `event_id` (a
/// rollback of an import): the same for the same event, so a rollback run
/// again is answered "already recorded" instead of voiding twice, and an
/// id however long the event's is (`<id>-undo`, or a digest of it past 64
/// bytes).
pub fn undo_id(event_id: &str) -> String {
    let readable = format!("{event_id}-undo");
    if readable.len() <= MAX_ID_LEN {
        return readable;
    }
    format!("undo-{}", &blake3::hash(event_id.as_bytes()).to_hex()[..40])
}

/// An id of master data or a command: 1–64 characters of `[A-Za-z0-9._:-]`.
pub fn id(field: &str, value: &str) -> Result<(), DomainError> {
    if value.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(DomainError::invalid(
            field,
            format!("{} is longer than {MAX_ID_LEN} bytes", quote(value)),
        ));
    }
    if let Some(c) = value.chars().find(|c| !id_char(*c)) {
        return Err(DomainError::invalid(
            field,
            format!("{} contains {c:?}; use only letters, digits and . _ : -", quote(value)),
        ));
    }
    Ok(())
}

/// A lot id or package serial: 1–20 characters of `[A-Za-z0-9._-]`, so it can
/// be printed in a GS1 Digital Link as AI (10) or AI (21).
pub fn lot_id(field: &str, value: &str) -> Result<(), DomainError> {
    if value.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    if value.len() > MAX_LOT_ID_LEN {
        return Err(DomainError::invalid(
            field,
            format!(
                "{} is longer than {MAX_LOT_ID_LEN} bytes, the most GS1 AI (10) and (21) hold for lot ids and serials",
                quote(value)
            ),
        ));
    }
    if let Some(c) = value.chars().find(|c| !lot_char(*c)) {
        return Err(DomainError::invalid(
            field,
            format!("{} contains {c:?}; use only letters, digits and . _ -", quote(value)),
        ));
    }
    Ok(())
}

/// Free text: at most `MAX_TEXT_LEN` bytes, no control characters.
pub fn text(field: &str, value: &str) -> Result<(), DomainError> {
    if value.len() > MAX_TEXT_LEN {
        return Err(DomainError::invalid(
            field,
            format!("is {} bytes long; the limit is {MAX_TEXT_LEN}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Free text that must not be empty.
pub fn required_text(field: &str, value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    text(field, value)
}

/// A document: a timber legality document (`Legality`) names its
/// reference, issuer and the end of its validity, which is not before its
/// start. `field` names the document ("documents[0]").
pub fn document(d: &crate::model::Document, field: &str) -> Result<(), DomainError> {
    if let Some(l) = d.legality() {
        for (name, value) in [("reference", &d.reference), ("issuer", &d.issuer)] {
            if value.trim().is_empty() {
                return Err(DomainError::invalid(
                    format!("{field}.{name}"),
                    format!("is required for a legality document ({})", l.kind()),
                ));
            }
        }
        if d.valid_until.is_none() {
            return Err(DomainError::invalid(
                format!("{field}.valid_until"),
                format!("is required for a legality document ({}): when it expires", l.kind()),
            ));
        }
    }
    if let (Some(from), Some(until)) = (d.valid_from, d.valid_until) {
        if until < from {
            return Err(DomainError::invalid(
                format!("{field}.valid_until"),
                "is before valid_from",
            ));
        }
    }
    Ok(())
}

/// A receipt's origin as the EU deforestation regulation requires it: a
/// geometry (checked when read) goes with the producer's country; a point
/// with its declared area, at most 4 ha (a larger plot must be a polygon);
/// a polygon's area is computed, never declared. `field` names the origin.
pub fn origin(o: &crate::model::Origin, field: &str) -> Result<(), DomainError> {
    use crate::geo::{Geometry, POINT_LIMIT_HA};
    let country = &o.producer_country;
    let alpha2 = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
    if !country.is_empty() && !alpha2 {
        return Err(DomainError::invalid(
            format!("{field}.producer_country"),
            format!(
                "{} is not an ISO 3166-1 alpha-2 country code (e.g. \"ID\")",
                quote(country)
            ),
        ));
    }
    let area = format!("{field}.area_ha");
    if let Some(a) = o.area_ha {
        if a <= rust_decimal::Decimal::ZERO {
            return Err(DomainError::invalid(
                &area,
                format!("{a} is not a plot's area; it must be above 0"),
            ));
        }
    }
    match (&o.geometry, o.area_ha) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(DomainError::invalid(
            &area,
            "goes with a Point geometry (origin.geometry)",
        )),
        (Some(_), _) if country.is_empty() => Err(DomainError::invalid(
            format!("{field}.producer_country"),
            "is required with a plot geometry (ISO 3166-1 alpha-2, e.g. \"ID\")",
        )),
        (Some(Geometry::Point(_)), None) => Err(DomainError::invalid(
            &area,
            "is required with a Point: the plot's area in hectares (a plot over 4 ha must be given as a polygon)",
        )),
        (Some(Geometry::Point(_)), Some(a)) if a > POINT_LIMIT_HA => Err(DomainError::invalid(
            &area,
            format!("a plot of {a} ha is over 4 ha: EUDR requires its polygon, not a single point (origin.geometry)"),
        )),
        (Some(Geometry::Point(_)), Some(_)) => Ok(()),
        (Some(_), Some(_)) => Err(DomainError::invalid(
            &area,
            "is computed from a polygon: leave it empty (it is for a Point)",
        )),
        (Some(_), None) => Ok(()),
    }
}

/// An EUDR due diligence statement's reference number: empty, or letters,
/// digits and dashes, at most 64.
pub fn dds_reference(value: String, field: &str) -> Result<String, DomainError> {
    let v = value.trim().to_string();
    if v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(DomainError::invalid(
            field,
            format!(
                "{} is not a due diligence statement reference (letters, digits and dashes, at most 64)",
                quote(&v)
            ),
        ));
    }
    Ok(v)
}

/// A list of at most `max` items; the error names the field, the count and the limit.
pub fn count(field: &str, len: usize, max: usize) -> Result<(), DomainError> {
    if len > max {
        return Err(DomainError::invalid(
            field,
            format!("lists {len} items; the limit is {max} per command, split it into several commands"),
        ));
    }
    Ok(())
}

/// Every list of a command within its limit.
/// The largest EPCIS observation kept, in bytes of JSON.
pub const MAX_OBSERVATION_BYTES: usize = 64 * 1024;

pub fn counts(command: &Command) -> Result<(), DomainError> {
    match command {
        Command::RegisterStandard(s) => count("standard.parameters", s.parameters.len(), MAX_PARAMETERS),
        Command::ReceiveMaterial(e) => count("documents", e.documents.len(), MAX_DOCUMENTS),
        Command::InspectLot(c) => count("measurements", c.measurements.len(), MAX_MEASUREMENTS),
        Command::ProcessLots(e) => {
            count("inputs", e.inputs.len(), MAX_INPUTS)?;
            count("outputs", e.outputs.len(), MAX_OUTPUTS)
        }
        Command::PackLot(e) => count("packages", e.packages.len(), MAX_PACKAGES),
        Command::ShipLot(e) => count("package_serials", e.package_serials.len(), MAX_SHIPPED_SERIALS),
        Command::ObserveEpcis(e) => {
            count("lot_ids", e.lot_ids.len(), MAX_INPUTS)?;
            count("event_json (bytes)", e.event_json.len(), MAX_OBSERVATION_BYTES)
        }
        // The other commands list nothing unbounded.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(id("id", "fac-demak").is_ok());
        assert!(id("id", "urn:uuid:1234").is_ok());
        assert!(id("id", "").is_err());
        assert!(id("id", "a b").is_err());
        assert!(id("id", "a\u{0}").is_err());
        assert!(id("id", &"x".repeat(65)).is_err());
        assert!(lot_id("lot", "DMK-GKP-0001").is_ok());
        assert!(lot_id("lot", "a:b").is_err());
        assert!(lot_id("lot", &"x".repeat(21)).is_err());
        assert!(text("t", "Kelompok Tani Sri Rejeki").is_ok());
        assert!(text("t", "bad\nline").is_err());
        assert!(required_text("t", "  ").is_err());
    }

    #[test]
    fn an_undo_id_is_a_valid_id_for_any_valid_event_id_and_the_same_each_time() {
        assert_eq!(undo_id("rcv-1"), "rcv-1-undo");
        for n in [59, 60, 64] {
            let event = "r".repeat(n - 1) + &n.to_string()[..1];
            let undo = undo_id(&event);
            assert!(id("command_id", &undo).is_ok(), "{n}: {undo}");
            assert_eq!(undo, undo_id(&event));
        }
        assert_eq!(undo_id(&"a".repeat(59)), format!("{}-undo", "a".repeat(59)));
        assert_ne!(undo_id(&"a".repeat(64)), undo_id(&format!("{}b", "a".repeat(63))));
    }

    #[test]
    fn counts_name_the_field_and_the_limit() {
        assert!(count("packages", MAX_PACKAGES, MAX_PACKAGES).is_ok());
        let err = count("packages", MAX_PACKAGES + 1, MAX_PACKAGES).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("packages"), "{text}");
        assert!(text.contains("10001") && text.contains("10000"), "{text}");
    }
}

#[cfg(test)]
mod eudr_tests {
    use super::*;
    use crate::geo::{Geometry, Position};
    use crate::model::Origin;
    use rust_decimal::Decimal;

    fn point() -> Geometry {
        Geometry::Point(Position {
            lon: Decimal::new(110_837_214, 6),
            lat: Decimal::new(-7_947_803, 6),
        })
    }

    fn field_of(r: Result<(), DomainError>) -> (String, String) {
        match r {
            Err(DomainError::Invalid { field, reason }) => (field, reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_origin_with_a_geometry_names_its_country_and_a_point_its_area_of_at_most_4_ha() {
        let mut o = Origin {
            geometry: Some(point()),
            producer_country: "ID".into(),
            area_ha: Some(Decimal::new(35, 1)),
            ..Origin::default()
        };
        assert_eq!(origin(&o, "origin"), Ok(()));
        o.area_ha = Some(Decimal::new(45, 1));
        let (field, reason) = field_of(origin(&o, "origin"));
        assert_eq!(field, "origin.area_ha");
        assert!(reason.contains("over 4 ha") && reason.contains("polygon"), "{reason}");
        o.area_ha = None;
        assert_eq!(field_of(origin(&o, "origin")).0, "origin.area_ha");
        o.area_ha = Some(Decimal::ONE);
        o.producer_country = "Indonesia".into();
        assert_eq!(field_of(origin(&o, "origin")).0, "origin.producer_country");
        o.producer_country = String::new();
        assert_eq!(field_of(origin(&o, "origin")).0, "origin.producer_country");
        let no_geometry = Origin {
            area_ha: Some(Decimal::ONE),
            ..Origin::default()
        };
        assert_eq!(field_of(origin(&no_geometry, "origin")).0, "origin.area_ha");
    }

    #[test]
    fn a_legality_document_names_its_issuer_and_expiry() {
        let mut d = crate::model::Document {
            kind: "dkp".into(),
            reference: "DKP-1".into(),
            blake3: [0; 32],
            issuer: String::new(),
            valid_from: None,
            valid_until: None,
        };
        assert_eq!(field_of(document(&d, "documents[0]")).0, "documents[0].issuer");
        d.issuer = "KTH Argo Lestari".into();
        assert_eq!(field_of(document(&d, "documents[0]")).0, "documents[0].valid_until");
        d.valid_until = Some(crate::model::Time(5));
        assert_eq!(document(&d, "documents[0]"), Ok(()));
        d.valid_from = Some(crate::model::Time(6));
        assert_eq!(field_of(document(&d, "documents[0]")).0, "documents[0].valid_until");
        d.kind = "delivery-note".into();
        d.valid_from = None;
        d.issuer = String::new();
        assert_eq!(
            document(&d, "documents[0]"),
            Ok(()),
            "other documents need nothing more"
        );
        assert!(dds_reference("26IDK5F3GH7L9QX2".into(), "dds_reference").is_ok());
        assert!(dds_reference("26 IDK".into(), "dds_reference").is_err());
    }
}
