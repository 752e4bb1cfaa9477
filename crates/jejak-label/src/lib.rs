//! Label rendering: the GS1 Digital Link QR code of a finished good, with its product name and
//! human-readable interpretation, as SVG, PNG, or A4 sheets in SVG and PDF. No I/O lives here:
//! every function returns bytes or text for the caller to write or serve.
//!
//! **Invariant:** depends on no other workspace crate: it takes a URI and
//! text, and knows nothing of lots.

mod font;
mod layout;
mod pdf;
mod png;
mod qr;
mod sheet;
mod svg;

pub use crate::pdf::sheet_pdf;
pub use crate::png::{png, qr_png};
pub use crate::qr::{qr, QrMatrix, QR_M_MAX_BYTES, QUIET_ZONE};
pub use crate::sheet::{sheet_svg, LABELS_PER_SHEET, SHEET_COLUMNS, SHEET_MARGIN_MM, SHEET_ROWS};
pub use crate::svg::svg;

/// The most lines of human-readable interpretation a label has room for.
pub const MAX_HRI_LINES: usize = 4;

/// The longest HRI line a label has room for, in characters: "(8004) " plus a 30-character
/// GIAI is 37, the longest element string a finished good is likely to carry.
pub const MAX_HRI_CHARS: usize = 40;

/// What one label shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The GS1 Digital Link URI the QR code encodes.
    pub uri: String,
    /// Product name, printed above the human-readable text.
    pub title: String,
    /// GS1 human-readable interpretation, one AI per line: "(01) 08997001001018",
    /// "(10) DMK-BP-260911", "(21) DMK5P-000001".
    pub hri: Vec<String>,
}

impl Label {
    /// Builds the HRI lines from the element strings, in the order GS1 prints them: GTIN, lot,
    /// then serial.
    pub fn new(uri: impl Into<String>, title: impl Into<String>, gtin: &str, lot: &str, serial: Option<&str>) -> Label {
        let mut hri = vec![format!("(01) {gtin}"), format!("(10) {lot}")];
        if let Some(serial) = serial {
            hri.push(format!("(21) {serial}"));
        }
        Label {
            uri: uri.into(),
            title: title.into(),
            hri,
        }
    }

    /// Checks what every renderer relies on: something to scan and HRI that fits.
    fn check(&self) -> Result<(), LabelError> {
        if self.hri.len() > MAX_HRI_LINES {
            return Err(LabelError::TooManyHriLines {
                count: self.hri.len(),
                max: MAX_HRI_LINES,
            });
        }
        for (index, line) in self.hri.iter().enumerate() {
            let chars = line.chars().count();
            if chars > MAX_HRI_CHARS {
                return Err(LabelError::HriLineTooLong {
                    index,
                    chars,
                    max: MAX_HRI_CHARS,
                });
            }
        }
        Ok(())
    }
}

/// Why a label could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("uri is empty, a label needs something to scan")]
    EmptyUri,
    #[error("uri is {len} bytes, more than a QR code at error correction level M holds ({max} bytes)")]
    UriTooLong { len: usize, max: usize },
    #[error("encode qr code")]
    Qr(#[source] qrcode::types::QrError),
    #[error("{count} hri lines, more than the {max} a label has room for")]
    TooManyHriLines { count: usize, max: usize },
    #[error("hri line {index} is {chars} characters, more than the {max} a label has room for")]
    HriLineTooLong { index: usize, chars: usize, max: usize },
    #[error("nothing to print: no labels given")]
    NothingToPrint,
    /// One label of a sheet failed; `index` counts from 0 over all the labels given.
    #[error("label {index} of the sheet: {cause}")]
    InSheet { index: usize, cause: Box<LabelError> },
    #[error("encode png")]
    Png(#[source] ::png::EncodingError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_builds_hri_in_gs1_order() {
        let label = Label::new(
            "https://x/01/1",
            "Dodol",
            "08997001001018",
            "DMK-BP-260911",
            Some("DMK5P-000001"),
        );
        assert_eq!(
            label.hri,
            ["(01) 08997001001018", "(10) DMK-BP-260911", "(21) DMK5P-000001"]
        );
        let lot_only = Label::new("https://x/01/1", "Dodol", "08997001001018", "L1", None);
        assert_eq!(lot_only.hri, ["(01) 08997001001018", "(10) L1"]);
    }

    #[test]
    fn check_bounds_the_hri() {
        let mut label = Label::new("u", "t", "1", "2", Some("3"));
        assert!(label.check().is_ok());
        label.hri.push("x".repeat(MAX_HRI_CHARS + 1));
        assert!(matches!(
            label.check(),
            Err(LabelError::HriLineTooLong { index: 3, .. })
        ));
        label.hri = vec![String::new(); MAX_HRI_LINES + 1];
        assert!(matches!(label.check(), Err(LabelError::TooManyHriLines { .. })));
    }
}
