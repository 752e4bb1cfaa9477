//! Labels as 8-bit greyscale PNG: for screens, and for label printers that take bitmaps.

use ::png::{BitDepth, ColorType, Encoder};

use crate::font::{inked, GLYPH_HEIGHT, GLYPH_WIDTH};
use crate::layout::title_lines;
use crate::qr::{qr, QrMatrix, QUIET_ZONE};
use crate::{Label, LabelError};

const BLACK: u8 = 0;
const WHITE: u8 = 255;

/// Pixels per module are clamped to this range: below 1 there is no image, and above 32 a
/// version 40 code alone is several thousand pixels wide.
const MODULE_PX_MAX: u32 = 32;

/// Font pixels from one glyph's left edge to the next: the glyph and a blank column.
const CHAR_ADVANCE: usize = GLYPH_WIDTH + 1;
/// Font pixels from one line's top to the next: the glyph, descender included, and two blank
/// rows.
const LINE_ADVANCE: usize = GLYPH_HEIGHT + 2;
/// The text is scaled so a line advance is about 1/8 of the QR code's side, quiet zone
/// included: close to the proportions of the printed label, and legible at any module size.
const QR_SIDES_PER_LINE: usize = 8;

/// Renders the QR code of `uri` alone, with its quiet zone, `module_px` pixels a module
/// (clamped to 1..=32): for embedding in a page that prints its own text.
pub fn qr_png(uri: &str, module_px: u32) -> Result<Vec<u8>, LabelError> {
    let matrix = qr(uri)?;
    let module = clamp(module_px);
    let side = qr_side(&matrix, module);
    let mut canvas = Canvas::new(side, side);
    canvas.draw_qr(&matrix, module);
    canvas.encode()
}

/// Renders a whole label: the QR code with its quiet zone, `module_px` pixels a module (clamped
/// to 1..=32), and right of it the title and the HRI in a bitmap font scaled to the code.
pub fn png(label: &Label, module_px: u32) -> Result<Vec<u8>, LabelError> {
    label.check()?;
    let matrix = qr(&label.uri)?;
    let module = clamp(module_px);
    let side = qr_side(&matrix, module);

    // Integer scaling keeps the bitmap glyphs crisp; rounding to nearest keeps the proportion.
    let scale = ((side + LINE_ADVANCE * QR_SIDES_PER_LINE / 2) / (LINE_ADVANCE * QR_SIDES_PER_LINE)).max(1);
    let title = title_lines(&label.title);
    let gap = if title.is_empty() || label.hri.is_empty() {
        0
    } else {
        LINE_ADVANCE * scale / 2
    };
    let lines = title.len() + label.hri.len();
    let widest = title
        .iter()
        .chain(&label.hri)
        .map(|line| line.chars().count())
        .max()
        .unwrap_or(0);
    // The last line and column need no trailing blank space.
    let text_width = (widest * CHAR_ADVANCE).saturating_sub(1) * scale;
    let text_height = (lines * LINE_ADVANCE).saturating_sub(LINE_ADVANCE - GLYPH_HEIGHT) * scale + gap;

    // Text starts after the QR code's right quiet zone, never inside it, and is centred on the
    // code; a margin as wide as the quiet zone closes the image on the right and at the bottom.
    let margin = QUIET_ZONE * module;
    let text_top = side.saturating_sub(text_height) / 2;
    let width = if lines == 0 { side } else { side + text_width + margin };
    let height = side.max(text_top + text_height + margin);

    let mut canvas = Canvas::new(width, height);
    canvas.draw_qr(&matrix, module);
    let mut top = text_top;
    for line in &title {
        canvas.draw_text(line, side, top, scale);
        top += LINE_ADVANCE * scale;
    }
    top += gap;
    for line in &label.hri {
        canvas.draw_text(line, side, top, scale);
        top += LINE_ADVANCE * scale;
    }
    canvas.encode()
}

fn clamp(module_px: u32) -> usize {
    module_px.clamp(1, MODULE_PX_MAX) as usize
}

/// Side of the QR code with its quiet zone, in pixels.
fn qr_side(matrix: &QrMatrix, module: usize) -> usize {
    (matrix.width() + 2 * QUIET_ZONE) * module
}

/// A white greyscale image to draw on.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![WHITE; width * height],
        }
    }

    fn fill(&mut self, left: usize, top: usize, width: usize, height: usize) {
        for y in top..top + height {
            self.pixels[y * self.width + left..y * self.width + left + width].fill(BLACK);
        }
    }

    /// The code at the top-left corner; the quiet zone is the white around it.
    fn draw_qr(&mut self, matrix: &QrMatrix, module: usize) {
        let offset = QUIET_ZONE * module;
        for (x, y, len) in matrix.runs() {
            self.fill(offset + x * module, offset + y * module, len * module, module);
        }
    }

    fn draw_text(&mut self, text: &str, left: usize, top: usize, scale: usize) {
        for (i, c) in text.chars().enumerate() {
            let glyph_left = left + i * CHAR_ADVANCE * scale;
            for y in 0..GLYPH_HEIGHT {
                for x in 0..GLYPH_WIDTH {
                    if inked(c, x, y) {
                        self.fill(glyph_left + x * scale, top + y * scale, scale, scale);
                    }
                }
            }
        }
    }

    fn encode(self) -> Result<Vec<u8>, LabelError> {
        let mut out = Vec::new();
        // Dimensions are bounded: at most 185 modules of 32 pixels high, and text capped by
        // the HRI and title limits.
        let width = u32::try_from(self.width).expect("label width fits u32");
        let height = u32::try_from(self.height).expect("label height fits u32");
        let mut encoder = Encoder::new(&mut out, width, height);
        encoder.set_color(ColorType::Grayscale);
        encoder.set_depth(BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(LabelError::Png)?;
        writer.write_image_data(&self.pixels).map_err(LabelError::Png)?;
        writer.finish().map_err(LabelError::Png)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qr::tests::{decode_grey, decode_png, URI};

    fn example() -> Label {
        Label::new(
            URI,
            "Dodol Ketan Pandan Manis 250 g",
            "08997001001018",
            "DMK-BP-260911",
            Some("DMK5P-000001"),
        )
    }

    /// Asserts the quiet zone around a code drawn at the top-left corner is all white.
    fn assert_quiet_zone(width: usize, pixels: &[u8], symbol: usize, module: usize) {
        let quiet = QUIET_ZONE * module;
        let side = symbol * module + 2 * quiet;
        for y in 0..side {
            for x in 0..side {
                let in_symbol = (quiet..side - quiet).contains(&x) && (quiet..side - quiet).contains(&y);
                if !in_symbol {
                    assert_eq!(pixels[y * width + x], WHITE, "quiet zone pixel ({x}, {y})");
                }
            }
        }
        // And the symbol reaches its edge: the finder pattern's corner is dark.
        assert_eq!(pixels[quiet * width + quiet], BLACK);
    }

    #[test]
    fn qr_png_keeps_the_quiet_zone_and_decodes() {
        let matrix = qr(URI).expect("encodes");
        for module in [1, 2, 5] {
            let (width, height, pixels) = decode_png(&qr_png(URI, module).expect("renders"));
            let side = (matrix.width() + 2 * QUIET_ZONE) * module as usize;
            assert_eq!((width, height), (side, side));
            assert_quiet_zone(width, &pixels, matrix.width(), module as usize);
            // Only black and white: no grey edges to confuse a thresholding scanner.
            assert!(pixels.iter().all(|&p| p == BLACK || p == WHITE));
        }
        let (width, height, pixels) = decode_png(&qr_png(URI, 4).expect("renders"));
        assert_eq!(decode_grey(width, height, &pixels), [(1, URI.to_owned())]);
    }

    #[test]
    fn module_size_is_clamped() {
        let width = qr(URI).expect("encodes").width() + 2 * QUIET_ZONE;
        assert_eq!(decode_png(&qr_png(URI, 0).expect("renders")).0, width);
        assert_eq!(decode_png(&qr_png(URI, 1000).expect("renders")).0, width * 32);
    }

    #[test]
    fn a_full_label_keeps_the_quiet_zone_and_still_decodes() {
        let label = example();
        let matrix = qr(URI).expect("encodes");
        for module in [2, 3, 4, 8] {
            let (width, height, pixels) = decode_png(&png(&label, module).expect("renders"));
            let side = (matrix.width() + 2 * QUIET_ZONE) * module as usize;
            assert!(width > side + 20 * module as usize, "text beside the code");
            assert!(height >= side);
            assert_quiet_zone(width, &pixels, matrix.width(), module as usize);
            // Below the code, if the text made the image taller, stays white too.
            assert!((side..height).all(|y| (0..side).all(|x| pixels[y * width + x] == WHITE)));
            // Text is drawn right of the quiet zone.
            assert!((0..height).any(|y| (side..width).any(|x| pixels[y * width + x] == BLACK)));
            assert_eq!(
                decode_grey(width, height, &pixels),
                [(1, URI.to_owned())],
                "module {module}"
            );
        }
    }

    #[test]
    fn text_is_drawn_with_the_font_at_its_scale() {
        // A label whose only text is one HRI line: the text's ink is exactly the glyphs'.
        let label = Label {
            uri: URI.to_owned(),
            title: String::new(),
            hri: vec!["(01) 0".to_owned()],
        };
        let module = 4;
        let (width, height, pixels) = decode_png(&png(&label, module as u32).expect("renders"));
        let side = (qr(URI).expect("encodes").width() + 2 * QUIET_ZONE) * module;
        let scale = ((side + 40) / 80).max(1);
        assert_eq!(scale, 2);
        let ink: usize = (0..height)
            .map(|y| (side..width).filter(|&x| pixels[y * width + x] == BLACK).count())
            .sum();
        let glyph_ink: usize = "(01) 0"
            .chars()
            .map(|c| {
                (0..GLYPH_WIDTH)
                    .flat_map(|x| (0..GLYPH_HEIGHT).map(move |y| (x, y)))
                    .filter(|&(x, y)| inked(c, x, y))
                    .count()
            })
            .sum();
        assert_eq!(ink, glyph_ink * scale * scale);
        assert_eq!(width, side + (6 * CHAR_ADVANCE - 1) * scale + QUIET_ZONE * module);
    }

    #[test]
    fn non_ascii_text_renders_as_question_marks() {
        let with = |title: &str| {
            let label = Label {
                uri: URI.to_owned(),
                title: title.to_owned(),
                hri: Vec::new(),
            };
            png(&label, 2).expect("renders")
        };
        assert_eq!(with("Jenang 糯"), with("Jenang ?"));
        assert_ne!(with("Jenang A"), with("Jenang ?"));
    }

    #[test]
    fn bad_labels_are_refused() {
        let mut label = example();
        label.hri = vec!["x".repeat(crate::MAX_HRI_CHARS + 1)];
        assert!(matches!(png(&label, 4), Err(LabelError::HriLineTooLong { .. })));
        assert!(matches!(qr_png("", 4), Err(LabelError::EmptyUri)));
    }
}
