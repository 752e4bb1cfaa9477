//! The A4 sheet grid shared by the SVG and PDF sheets, and the SVG sheets themselves.

use crate::layout::{LabelLayout, LABEL_HEIGHT_MM, LABEL_WIDTH_MM};
use crate::svg::{body, escape, num, open_document};
use crate::{Label, LabelError};

/// A4 portrait, the paper every office printer in the factories takes.
pub(crate) const PAGE_WIDTH_MM: f64 = 210.0;
pub(crate) const PAGE_HEIGHT_MM: f64 = 297.0;
/// White margin around the grid: printers cannot reach the edge of the paper.
pub const SHEET_MARGIN_MM: f64 = 10.0;
/// Labels across a sheet.
pub const SHEET_COLUMNS: usize = 3;
/// Labels down a sheet.
pub const SHEET_ROWS: usize = 8;
/// Labels on one sheet.
pub const LABELS_PER_SHEET: usize = SHEET_COLUMNS * SHEET_ROWS;

/// Lays out every label, so a bad one fails the whole job before anything is drawn, and groups
/// them into pages.
pub(crate) fn pages(labels: &[Label]) -> Result<Vec<Vec<LabelLayout>>, LabelError> {
    if labels.is_empty() {
        return Err(LabelError::NothingToPrint);
    }
    let layouts = labels
        .iter()
        .enumerate()
        .map(|(index, label)| {
            LabelLayout::new(label).map_err(|cause| LabelError::InSheet {
                index,
                cause: Box::new(cause),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(layouts.chunks(LABELS_PER_SHEET).map(<[_]>::to_vec).collect())
}

/// Top-left corner, in mm from the page's top-left, of the label in `slot` (0-based, across
/// then down). Each label is centred in an equal share of the area inside the margins.
pub(crate) fn slot_origin(slot: usize) -> (f64, f64) {
    let pitch_x = (PAGE_WIDTH_MM - 2.0 * SHEET_MARGIN_MM) / SHEET_COLUMNS as f64;
    let pitch_y = (PAGE_HEIGHT_MM - 2.0 * SHEET_MARGIN_MM) / SHEET_ROWS as f64;
    let (column, row) = (slot % SHEET_COLUMNS, slot / SHEET_COLUMNS);
    (
        SHEET_MARGIN_MM + column as f64 * pitch_x + (pitch_x - LABEL_WIDTH_MM) / 2.0,
        SHEET_MARGIN_MM + row as f64 * pitch_y + (pitch_y - LABEL_HEIGHT_MM) / 2.0,
    )
}

/// Renders the labels on A4 sheets, [`LABELS_PER_SHEET`] to a page, one SVG document per page.
/// Refuses an empty list: there is nothing to print.
pub fn sheet_svg(labels: &[Label]) -> Result<Vec<String>, LabelError> {
    let pages = pages(labels)?;
    let count = pages.len();
    Ok(pages
        .iter()
        .zip(labels.chunks(LABELS_PER_SHEET))
        .enumerate()
        .map(|(page, (layouts, chunk))| {
            let mut out = String::new();
            let title = format!("Labels, page {} of {count}", page + 1);
            open_document(&mut out, PAGE_WIDTH_MM, PAGE_HEIGHT_MM, &title);
            for (slot, (layout, label)) in layouts.iter().zip(chunk).enumerate() {
                let (x, y) = slot_origin(slot);
                // On screen, a label links to the page its code opens.
                out.push_str(&format!(
                    "<a href=\"{}\"><g transform=\"translate({} {})\">\n",
                    escape(&label.uri),
                    num(x),
                    num(y)
                ));
                body(&mut out, layout);
                out.push_str("</g></a>\n");
            }
            out.push_str("</svg>\n");
            out
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::svg::tests::texts;

    /// `n` labels with distinct, equally long serials, so no HRI line contains another.
    pub(crate) fn labels(n: usize) -> Vec<Label> {
        (0..n)
            .map(|i| {
                let serial = format!("DMK5P-{i:06}");
                let uri = format!("https://id.jejak.example/01/08997001001018/10/DMK-BP-260911/21/{serial}");
                Label::new(uri, "Dodol Ketan", "08997001001018", "DMK-BP-260911", Some(&serial))
            })
            .collect()
    }

    #[test]
    fn the_grid_fits_the_page_without_overlap() {
        let slots: Vec<_> = (0..LABELS_PER_SHEET).map(slot_origin).collect();
        for &(x, y) in &slots {
            assert!(x >= SHEET_MARGIN_MM && x + LABEL_WIDTH_MM <= PAGE_WIDTH_MM - SHEET_MARGIN_MM + 1e-9);
            assert!(y >= SHEET_MARGIN_MM && y + LABEL_HEIGHT_MM <= PAGE_HEIGHT_MM - SHEET_MARGIN_MM + 1e-9);
        }
        for (i, a) in slots.iter().enumerate() {
            for b in &slots[i + 1..] {
                let apart_x = (a.0 - b.0).abs() >= LABEL_WIDTH_MM;
                let apart_y = (a.1 - b.1).abs() >= LABEL_HEIGHT_MM;
                assert!(apart_x || apart_y, "{a:?} overlaps {b:?}");
            }
        }
        // Across, then down.
        assert!(slots[1].0 > slots[0].0 && slots[1].1 == slots[0].1);
        assert!(slots[SHEET_COLUMNS].1 > slots[0].1);
    }

    #[test]
    fn each_page_holds_exactly_its_labels() {
        for n in [
            1,
            LABELS_PER_SHEET - 1,
            LABELS_PER_SHEET,
            LABELS_PER_SHEET + 1,
            3 * LABELS_PER_SHEET + 5,
        ] {
            let labels = labels(n);
            let pages = sheet_svg(&labels).expect("renders");
            assert_eq!(pages.len(), n.div_ceil(LABELS_PER_SHEET), "{n} labels");
            for (page, svg) in pages.iter().enumerate() {
                let start = page * LABELS_PER_SHEET;
                let end = (start + LABELS_PER_SHEET).min(n);
                let expected: Vec<String> = labels[start..end].iter().flat_map(|label| label.hri.clone()).collect();
                assert_eq!(
                    texts(svg, "font-family=\"monospace\""),
                    expected,
                    "page {page} of {n} labels"
                );
                assert_eq!(svg.matches("<path").count(), end - start);
                let links: Vec<String> = labels[start..end]
                    .iter()
                    .map(|label| format!("<a href=\"{}\">", label.uri))
                    .collect();
                assert_eq!(svg.matches("<a href=").count(), links.len());
                assert!(
                    links.iter().all(|l| svg.contains(l.as_str())),
                    "each label links to its page"
                );
                assert!(svg.contains("width=\"210mm\" height=\"297mm\" viewBox=\"0 0 210 297\""));
            }
        }
    }

    #[test]
    fn nothing_to_print_and_bad_labels_are_refused() {
        assert!(matches!(sheet_svg(&[]), Err(LabelError::NothingToPrint)));
        let mut labels = labels(3);
        labels[2].uri.clear();
        match sheet_svg(&labels) {
            Err(error @ LabelError::InSheet { index: 2, .. }) => {
                assert_eq!(
                    error.to_string(),
                    "label 2 of the sheet: uri is empty, a label needs something to scan"
                );
            }
            other => panic!("expected InSheet, got {other:?}"),
        }
    }
}
