//! The label sheets as one multi-page A4 PDF: vector QR codes and text in the standard fonts,
//! so it prints sharp at any resolution and needs no embedded font.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::layout::{Face, LabelLayout};
use crate::sheet::{pages, slot_origin, PAGE_HEIGHT_MM, PAGE_WIDTH_MM};
use crate::{Label, LabelError};

/// PDF user space is in points, 72 to the inch.
const PT_PER_MM: f64 = 72.0 / 25.4;

/// Resource names of the two fonts, the same on every page.
const TITLE_FONT: Name<'static> = Name(b"F1");
const HRI_FONT: Name<'static> = Name(b"F2");

/// Renders the labels on A4 pages, [`crate::LABELS_PER_SHEET`] to a page, in the same grid as
/// [`crate::sheet_svg`]. Content streams stay uncompressed: they are small and stay readable.
/// Refuses an empty list: there is nothing to print.
pub fn sheet_pdf(labels: &[Label]) -> Result<Vec<u8>, LabelError> {
    let pages = pages(labels)?;

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let title_font = Ref::new(3);
    let hri_font = Ref::new(4);
    let info = Ref::new(5);
    // Then a page and its content stream for every page.
    let page_ref = |page: usize| Ref::new(6 + 2 * page as i32);
    let content_ref = |page: usize| Ref::new(7 + 2 * page as i32);

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids((0..pages.len()).map(page_ref))
        .count(pages.len() as i32);
    // Helvetica and Courier are among the 14 fonts every PDF reader has, so none is embedded;
    // WinAnsiEncoding matches Latin-1 for every character we let through.
    pdf.type1_font(title_font)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(hri_font)
        .base_font(Name(b"Courier"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info).title(TextStr("Labels"));

    let media = Rect::new(0.0, 0.0, pt(PAGE_WIDTH_MM), pt(PAGE_HEIGHT_MM));
    for (page, layouts) in pages.iter().enumerate() {
        let mut writer = pdf.page(page_ref(page));
        writer.parent(tree).media_box(media).contents(content_ref(page));
        writer
            .resources()
            .fonts()
            .pair(TITLE_FONT, title_font)
            .pair(HRI_FONT, hri_font);
        writer.finish();

        let mut content = Content::new();
        for (slot, layout) in layouts.iter().enumerate() {
            draw_label(&mut content, layout, slot_origin(slot));
        }
        pdf.stream(content_ref(page), &content.finish());
    }
    Ok(pdf.finish())
}

/// Draws one label whose top-left corner is at `origin` mm from the page's top-left.
fn draw_label(content: &mut Content, layout: &LabelLayout, (left, top): (f64, f64)) {
    // PDF's origin is the bottom-left corner with y going up; the layout's is top-left.
    let x = |mm: f64| pt(left + mm);
    let y = |mm: f64| pt(PAGE_HEIGHT_MM - top - mm);

    // All runs in one path and one fill, so abutting rows leave no seams between them.
    content.set_fill_gray(0.0);
    let module = layout.module;
    for (run_x, run_y, len) in layout.matrix.runs() {
        let left_mm = layout.symbol_x + run_x as f64 * module;
        let bottom_mm = layout.symbol_y + (run_y + 1) as f64 * module;
        content.rect(x(left_mm), y(bottom_mm), pt(len as f64 * module), pt(module));
    }
    content.fill_nonzero();

    content.begin_text();
    for line in &layout.lines {
        let font = match line.face {
            Face::Title => TITLE_FONT,
            Face::Hri => HRI_FONT,
        };
        content.set_font(font, pt(line.size));
        content.set_text_matrix([1.0, 0.0, 0.0, 1.0, x(line.x), y(line.baseline)]);
        content.show(Str(&latin1(&line.text)));
    }
    content.end_text();
}

fn pt(mm: f64) -> f32 {
    (mm * PT_PER_MM) as f32
}

/// The bytes the standard fonts can show: Latin-1 as is, anything else as '?'. Latin-1's
/// control characters have no glyph either.
fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            // Both ranges are below 0x100, so the cast keeps every bit.
            ' '..='~' | '\u{a0}'..='\u{ff}' => c as u8,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sheet::tests::labels;
    use crate::LABELS_PER_SHEET;

    /// The content streams of a PDF, in file order.
    fn streams(pdf: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut rest = pdf;
        while let Some(start) = find(rest, b"stream\n") {
            let body = &rest[start + b"stream\n".len()..];
            let end = find(body, b"\nendstream").expect("stream ends");
            out.push(&body[..end]);
            rest = &body[end + b"\nendstream".len()..];
        }
        out
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|window| window == needle)
    }

    /// The strings shown in a content stream, literal `(..)` or hex `<..>`, unescaped.
    fn shown(stream: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < stream.len() {
            match stream[i] {
                b'(' => {
                    let mut text = Vec::new();
                    let mut depth = 1;
                    i += 1;
                    while depth > 0 {
                        match stream[i] {
                            b'\\' => {
                                i += 1;
                                text.push(match stream[i] {
                                    b'n' => b'\n',
                                    b'r' => b'\r',
                                    b't' => b'\t',
                                    other => other,
                                });
                            }
                            b'(' => {
                                depth += 1;
                                text.push(b'(');
                            }
                            b')' => {
                                depth -= 1;
                                if depth > 0 {
                                    text.push(b')');
                                }
                            }
                            other => text.push(other),
                        }
                        i += 1;
                    }
                    out.push(text);
                }
                b'<' => {
                    let end = i + stream[i..].iter().position(|&b| b == b'>').expect("hex string ends");
                    let hex = std::str::from_utf8(&stream[i + 1..end]).expect("hex is ascii");
                    let bytes = (0..hex.len())
                        .step_by(2)
                        .map(|j| u8::from_str_radix(&hex[j..j + 2], 16).expect("hex"));
                    out.push(bytes.collect());
                    i = end + 1;
                }
                _ => i += 1,
            }
        }
        out
    }

    fn page_objects(pdf: &str) -> usize {
        pdf.match_indices("/Type /Page")
            .filter(|(at, _)| !pdf[at + "/Type /Page".len()..].starts_with('s'))
            .count()
    }

    #[test]
    fn one_page_per_sheet_each_with_its_labels() {
        for n in [1, LABELS_PER_SHEET, LABELS_PER_SHEET + 1, 2 * LABELS_PER_SHEET + 7] {
            let labels = labels(n);
            let pdf = sheet_pdf(&labels).expect("renders");
            assert!(pdf.starts_with(b"%PDF-"));
            let text = String::from_utf8_lossy(&pdf);
            let sheets = n.div_ceil(LABELS_PER_SHEET);
            assert_eq!(page_objects(&text), sheets, "{n} labels");
            assert!(text.contains(&format!("/Count {sheets}")));
            assert!(text.trim_end().ends_with("%%EOF"));
            let streams = streams(&pdf);
            assert_eq!(streams.len(), sheets, "uncompressed content streams, one a page");
            for (page, stream) in streams.iter().enumerate() {
                let start = page * LABELS_PER_SHEET;
                let end = (start + LABELS_PER_SHEET).min(n);
                let expected: Vec<Vec<u8>> = labels[start..end]
                    .iter()
                    .flat_map(|label| std::iter::once(label.title.clone()).chain(label.hri.clone()))
                    .map(String::into_bytes)
                    .collect();
                assert_eq!(shown(stream), expected, "page {page} of {n} labels");
            }
        }
    }

    #[test]
    fn modules_are_vector_rectangles() {
        let labels = labels(1);
        let pdf = sheet_pdf(&labels).expect("renders");
        let stream = String::from_utf8_lossy(streams(&pdf)[0]).into_owned();
        let matrix = crate::qr(&labels[0].uri).expect("encodes");
        assert_eq!(stream.matches(" re").count(), matrix.runs().count());
        assert_eq!(stream.matches("\nf").count(), 1, "one fill for the whole symbol");
        assert!(stream.contains("/F1 ") && stream.contains("/F2 "));
    }

    #[test]
    fn text_outside_latin1_becomes_a_question_mark() {
        assert_eq!(latin1("Dodol Kudus é ü"), b"Dodol Kudus \xe9 \xfc");
        assert_eq!(latin1("Jenang 糯米 €\u{7}"), b"Jenang ?? ??");
        let mut labels = labels(1);
        labels[0].title = "Jenang Kudus €".to_owned();
        let pdf = sheet_pdf(&labels).expect("renders");
        assert!(shown(streams(&pdf)[0]).contains(&b"Jenang Kudus ?".to_vec()));
    }

    #[test]
    fn nothing_to_print_is_an_error() {
        let error = sheet_pdf(&[]).expect_err("nothing to print");
        assert!(matches!(error, LabelError::NothingToPrint));
        assert!(error.to_string().contains("nothing to print"));
    }
}
