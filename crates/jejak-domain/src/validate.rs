//! Shape checks for ids and text fields, shared by every way a command enters.

use crate::error::DomainError;

/// Longest id accepted for parties, facilities, products, standards and commands.
pub const MAX_ID_LEN: usize = 64;
/// Lot ids and package serials go into GS1 AI (10) and AI (21): at most 20 characters.
pub const MAX_LOT_ID_LEN: usize = 20;
/// Longest free-text field (names, reasons, places).
pub const MAX_TEXT_LEN: usize = 512;

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
            format!("is {} characters long; the limit is {MAX_ID_LEN}", value.len()),
        ));
    }
    if let Some(c) = value.chars().find(|c| !id_char(*c)) {
        return Err(DomainError::invalid(
            field,
            format!("{value:?} contains {c:?}; use only letters, digits and . _ : -"),
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
                "{value:?} is {} characters long; lot ids and serials are at most {MAX_LOT_ID_LEN} (GS1 AI 10/21)",
                value.len()
            ),
        ));
    }
    if let Some(c) = value.chars().find(|c| !lot_char(*c)) {
        return Err(DomainError::invalid(
            field,
            format!("{value:?} contains {c:?}; use only letters, digits and . _ -"),
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
}
