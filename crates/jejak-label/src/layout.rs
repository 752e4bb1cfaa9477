//! Where things sit on one printed label, in millimetres from its top-left corner; shared by the
//! SVG and PDF output so a label looks the same in both.

use crate::qr::{qr, QrMatrix, QUIET_ZONE};
use crate::{Label, LabelError};

/// Label width: three across fit inside A4 with 10 mm margins.
pub(crate) const LABEL_WIDTH_MM: f64 = 63.0;
/// Label height: eight down fit inside A4 with 10 mm margins.
pub(crate) const LABEL_HEIGHT_MM: f64 = 34.0;
/// The QR code including its quiet zone: about 0.5 mm modules for a typical Digital Link URI
/// (version 5), large enough for phone cameras at arm's length.
pub(crate) const QR_SIZE_MM: f64 = 22.0;
/// Space left of the QR code; the quiet zone is already white margin, so little is needed.
const QR_LEFT_MM: f64 = 1.0;
/// Space right of the text column, so text never touches the label's edge.
const TEXT_RIGHT_PAD_MM: f64 = 1.5;
/// Where the text column starts: right of the QR code's quiet zone, never inside it.
pub(crate) const TEXT_LEFT_MM: f64 = QR_LEFT_MM + QR_SIZE_MM + 0.5;
/// Width of the text column.
const TEXT_WIDTH_MM: f64 = LABEL_WIDTH_MM - TEXT_LEFT_MM - TEXT_RIGHT_PAD_MM;

/// Title font size (em, in mm) and line pitch.
const TITLE_FONT_MM: f64 = 2.4;
const TITLE_LINE_MM: f64 = 3.0;
/// The title wraps at word boundaries into at most this many lines of at most this many
/// characters; the rest is cut with "...". Helvetica Bold averages under 0.7 em a character,
/// so 22 characters fit the text column.
pub(crate) const TITLE_LINES: usize = 2;
pub(crate) const TITLE_LINE_CHARS: usize = 22;
/// HRI font size when the lines fit; longer lines shrink it so nothing is ever cut.
const HRI_FONT_MM: f64 = 2.6;
/// HRI line pitch relative to the font size.
const HRI_LINE_EM: f64 = 1.25;
/// Advance of every glyph in a monospace font (Courier's is exactly 0.6 em).
pub(crate) const MONO_ADVANCE_EM: f64 = 0.6;
/// Space between the title and the HRI.
const TITLE_GAP_MM: f64 = 1.0;
/// Capital height relative to the font size, used to centre lines in their pitch.
const CAP_HEIGHT_EM: f64 = 0.72;

/// Which face a line of text is set in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Face {
    /// The product name: a bold sans serif.
    Title,
    /// GS1 human-readable interpretation: monospace, so digits line up.
    Hri,
}

/// One line of text, placed by its left end on the baseline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TextLine {
    pub(crate) x: f64,
    pub(crate) baseline: f64,
    pub(crate) size: f64,
    pub(crate) face: Face,
    pub(crate) text: String,
}

/// A label ready to draw.
#[derive(Debug, Clone)]
pub(crate) struct LabelLayout {
    pub(crate) matrix: QrMatrix,
    /// Top-left of the symbol itself, inside the quiet zone.
    pub(crate) symbol_x: f64,
    pub(crate) symbol_y: f64,
    /// Side of one module.
    pub(crate) module: f64,
    pub(crate) lines: Vec<TextLine>,
}

impl LabelLayout {
    pub(crate) fn new(label: &Label) -> Result<LabelLayout, LabelError> {
        label.check()?;
        let matrix = qr(&label.uri)?;
        let module = QR_SIZE_MM / (matrix.width() + 2 * QUIET_ZONE) as f64;
        let qr_top = (LABEL_HEIGHT_MM - QR_SIZE_MM) / 2.0;
        let quiet = QUIET_ZONE as f64 * module;

        let title = title_lines(&label.title);
        let widest_hri = label.hri.iter().map(|line| line.chars().count()).max().unwrap_or(0);
        let hri_size = if widest_hri == 0 {
            HRI_FONT_MM
        } else {
            HRI_FONT_MM.min(TEXT_WIDTH_MM / (widest_hri as f64 * MONO_ADVANCE_EM))
        };
        let hri_pitch = hri_size * HRI_LINE_EM;
        let gap = if title.is_empty() || label.hri.is_empty() {
            0.0
        } else {
            TITLE_GAP_MM
        };
        let block = title.len() as f64 * TITLE_LINE_MM + gap + label.hri.len() as f64 * hri_pitch;

        // The text block is centred on the QR code, the two read as one unit.
        let mut top = (LABEL_HEIGHT_MM - block) / 2.0;
        let mut lines = Vec::with_capacity(title.len() + label.hri.len());
        for text in title {
            let baseline = top + (TITLE_LINE_MM + CAP_HEIGHT_EM * TITLE_FONT_MM) / 2.0;
            lines.push(TextLine {
                x: TEXT_LEFT_MM,
                baseline,
                size: TITLE_FONT_MM,
                face: Face::Title,
                text,
            });
            top += TITLE_LINE_MM;
        }
        top += gap;
        for text in &label.hri {
            let baseline = top + (hri_pitch + CAP_HEIGHT_EM * hri_size) / 2.0;
            lines.push(TextLine {
                x: TEXT_LEFT_MM,
                baseline,
                size: hri_size,
                face: Face::Hri,
                text: text.clone(),
            });
            top += hri_pitch;
        }
        Ok(LabelLayout {
            matrix,
            symbol_x: QR_LEFT_MM + quiet,
            symbol_y: qr_top + quiet,
            module,
            lines,
        })
    }
}

/// Wraps a title at word boundaries into at most [`TITLE_LINES`] lines of at most
/// [`TITLE_LINE_CHARS`] characters; a word longer than a line is broken, and what does not fit
/// ends in "...".
pub(crate) fn title_lines(title: &str) -> Vec<String> {
    let mut lines: Vec<Vec<char>> = Vec::new();
    let mut current: Vec<char> = Vec::new();
    for word in title.split_whitespace() {
        let word: Vec<char> = word.chars().collect();
        if !current.is_empty() && current.len() + 1 + word.len() <= TITLE_LINE_CHARS {
            current.push(' ');
            current.extend(&word);
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        let mut rest = &word[..];
        while rest.len() > TITLE_LINE_CHARS {
            lines.push(rest[..TITLE_LINE_CHARS].to_vec());
            rest = &rest[TITLE_LINE_CHARS..];
        }
        current = rest.to_vec();
    }
    if !current.is_empty() {
        lines.push(current);
    }
    if lines.len() > TITLE_LINES {
        lines.truncate(TITLE_LINES);
        let last = &mut lines[TITLE_LINES - 1];
        let keep = TITLE_LINE_CHARS - 3;
        if last.len() > keep {
            // Cut at the last word boundary when there is one, so no word is left half-printed.
            let cut = match last[keep] {
                ' ' => keep,
                _ => last[..keep].iter().rposition(|&c| c == ' ').unwrap_or(keep),
            };
            last.truncate(cut);
        }
        while last.last() == Some(&' ') {
            last.pop();
        }
        last.extend("...".chars());
    }
    lines.into_iter().map(|line| line.into_iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qr::tests::URI;

    #[test]
    fn titles_wrap_at_words_and_are_cut_with_an_ellipsis() {
        assert!(title_lines("").is_empty());
        assert_eq!(title_lines("  Dodol   Ketan "), ["Dodol Ketan"]);
        assert_eq!(
            title_lines("Dodol Ketan Pandan Manis 250 g"),
            ["Dodol Ketan Pandan", "Manis 250 g"]
        );
        let long = title_lines("Dodol Ketan Pandan Manis Legit Asli Kudus Kemasan Besar");
        assert_eq!(long, ["Dodol Ketan Pandan", "Manis Legit Asli..."]);
        let word = "x".repeat(30);
        assert_eq!(title_lines(&word), ["x".repeat(22), "x".repeat(8)]);
        for line in long.iter().chain(&title_lines(&"y".repeat(100))) {
            assert!(line.chars().count() <= TITLE_LINE_CHARS, "{line:?}");
        }
    }

    #[test]
    fn everything_stays_on_the_label_and_text_stays_out_of_the_quiet_zone() {
        let hri_long = format!("(21) {}", "W".repeat(crate::MAX_HRI_CHARS - 5));
        let mut label = Label::new(
            URI,
            "Dodol Ketan Pandan Manis 250 g",
            "08997001001018",
            "DMK-BP-260911",
            None,
        );
        label.hri.push(hri_long);
        label.hri.push("(11) 260911".to_owned());
        let layout = LabelLayout::new(&label).expect("lays out");
        let quiet = QUIET_ZONE as f64 * layout.module;
        let qr_right = layout.symbol_x + layout.matrix.width() as f64 * layout.module + quiet;
        assert!((qr_right - (QR_LEFT_MM + QR_SIZE_MM)).abs() < 1e-9);
        assert!(layout.symbol_y - quiet >= 0.0 && layout.symbol_y + (qr_right - layout.symbol_x) <= LABEL_HEIGHT_MM);
        assert_eq!(layout.lines.len(), 2 + label.hri.len());
        for line in &layout.lines {
            assert!(line.x >= qr_right, "text starts right of the quiet zone");
            let advance = match line.face {
                Face::Hri => MONO_ADVANCE_EM,
                Face::Title => 0.7,
            };
            let right = line.x + line.text.chars().count() as f64 * advance * line.size;
            assert!(
                right <= LABEL_WIDTH_MM - TEXT_RIGHT_PAD_MM + 1e-9,
                "{line:?} ends at {right}"
            );
            assert!(
                line.baseline - line.size >= 0.0 && line.baseline <= LABEL_HEIGHT_MM,
                "{line:?}"
            );
        }
        // Lines go down the label in order without overlapping.
        for pair in layout.lines.windows(2) {
            assert!(pair[1].baseline - pair[0].baseline >= pair[1].size, "{pair:?}");
        }
    }
}
