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
    fn counts_name_the_field_and_the_limit() {
        assert!(count("packages", MAX_PACKAGES, MAX_PACKAGES).is_ok());
        let err = count("packages", MAX_PACKAGES + 1, MAX_PACKAGES).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("packages"), "{text}");
        assert!(text.contains("10001") && text.contains("10000"), "{text}");
    }
}
