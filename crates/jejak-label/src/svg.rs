//! One label as a standalone SVG document, and the label body that sheets place on a page.

use std::fmt::Write as _;

use crate::layout::{Face, LabelLayout, LABEL_HEIGHT_MM, LABEL_WIDTH_MM};
use crate::{Label, LabelError};

/// Renders one label as an SVG document sized in millimetres, for screens and for printers
/// that take one label at a time.
pub fn svg(label: &Label) -> Result<String, LabelError> {
    let layout = LabelLayout::new(label)?;
    let mut out = String::new();
    open_document(&mut out, LABEL_WIDTH_MM, LABEL_HEIGHT_MM, &accessible_name(label));
    body(&mut out, &layout);
    out.push_str("</svg>\n");
    Ok(out)
}

/// What a screen reader says for a label: its title and HRI, since the QR code itself says
/// nothing to a person.
pub(crate) fn accessible_name(label: &Label) -> String {
    let mut name = format!("Label: {}", label.title.trim());
    for line in &label.hri {
        name.push_str(", ");
        name.push_str(line);
    }
    name
}

/// The XML prolog and the root element of a document `width` × `height` mm, with its title.
pub(crate) fn open_document(out: &mut String, width: f64, height: f64, title: &str) {
    let (w, h) = (num(width), num(height));
    // Writing to a String cannot fail, hence the ignored fmt::Result here and below.
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w}mm\" height=\"{h}mm\" \
         viewBox=\"0 0 {w} {h}\">\n<title>{}</title>\n",
        escape(title)
    );
}

/// The label's elements in its own millimetre coordinates: a white background that keeps the
/// quiet zone white on any page, the dark modules as one path, and the text.
pub(crate) fn body(out: &mut String, layout: &LabelLayout) {
    let _ = writeln!(
        out,
        "<rect width=\"{}\" height=\"{}\" fill=\"#fff\"/>",
        num(LABEL_WIDTH_MM),
        num(LABEL_HEIGHT_MM)
    );
    // The path is in module units, scaled once: short, and exact for any module size.
    let _ = write!(
        out,
        "<path transform=\"translate({} {}) scale({})\" fill=\"#000\" shape-rendering=\"crispEdges\" d=\"",
        num(layout.symbol_x),
        num(layout.symbol_y),
        num(layout.module)
    );
    for (x, y, len) in layout.matrix.runs() {
        let _ = write!(out, "M{x} {y}h{len}v1h-{len}z");
    }
    out.push_str("\"/>\n");
    for line in &layout.lines {
        let face = match line.face {
            Face::Title => "font-family=\"Helvetica, Arial, sans-serif\" font-weight=\"bold\"",
            Face::Hri => "font-family=\"monospace\"",
        };
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" {face} fill=\"#000\">{}</text>",
            num(line.x),
            num(line.baseline),
            num(line.size),
            escape(&line.text)
        );
    }
}

/// A length in millimetres with at most three decimals (a micrometre), without trailing zeros.
pub(crate) fn num(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "-0" => "0".to_owned(),
        _ => text.to_owned(),
    }
}

/// Escapes text for XML content and attributes; control characters, which XML 1.0 forbids,
/// become '?'.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::qr::{qr, tests::URI};

    /// The inverse of [`escape`] for the five entities it writes.
    pub(crate) fn unescape(text: &str) -> String {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    }

    /// The contents of every `<text>` element whose attributes contain `attribute`, unescaped.
    pub(crate) fn texts(svg: &str, attribute: &str) -> Vec<String> {
        svg.split("<text ")
            .skip(1)
            .filter_map(|element| {
                let (attributes, rest) = element.split_once('>')?;
                let (content, _) = rest.split_once("</text>")?;
                attributes.contains(attribute).then(|| unescape(content))
            })
            .collect()
    }

    /// Reads back the `d` of a path written by [`body`]: the set of dark modules.
    fn dark_modules(d: &str) -> Vec<(usize, usize)> {
        let mut dark = Vec::new();
        for run in d.split('M').skip(1) {
            let (start, rest) = run.split_once('h').expect("run has h");
            let (x, y) = start.split_once(' ').expect("run starts at x y");
            let (len, tail) = rest.split_once("v1h-").expect("run is one module high");
            assert_eq!(tail, format!("{len}z"), "run closes back to its start");
            let (x, y, len): (usize, usize, usize) =
                (x.parse().expect("x"), y.parse().expect("y"), len.parse().expect("len"));
            dark.extend((x..x + len).map(|x| (x, y)));
        }
        dark
    }

    fn example() -> Label {
        Label::new(
            URI,
            "Dodol & <Ketan>",
            "08997001001018",
            "DMK-BP-260911",
            Some("DMK5P-000001"),
        )
    }

    #[test]
    fn one_path_with_exactly_the_dark_modules() {
        let svg = svg(&example()).expect("renders");
        assert_eq!(svg.matches("<path").count(), 1);
        let d = svg
            .split(" d=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("path has d");
        let dark = dark_modules(d);
        let matrix = qr(URI).expect("encodes");
        let mut expected = Vec::new();
        for y in 0..matrix.width() {
            for x in 0..matrix.width() {
                if matrix.is_dark(x, y) {
                    expected.push((x, y));
                }
            }
        }
        assert_eq!(dark.len(), expected.len());
        assert_eq!(dark, expected);
        assert!(svg.contains("shape-rendering=\"crispEdges\""));
    }

    #[test]
    fn a_standalone_document_with_escaped_text() {
        let label = example();
        let svg = svg(&label).expect("renders");
        assert!(svg.starts_with("<?xml"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("width=\"63mm\" height=\"34mm\" viewBox=\"0 0 63 34\""));
        assert!(svg.contains("<rect width=\"63\" height=\"34\" fill=\"#fff\"/>"));
        assert!(svg.contains("Dodol &amp; &lt;Ketan&gt;"));
        assert!(!svg.contains("<Ketan>"));
        assert!(svg.contains("<title>Label: Dodol &amp; &lt;Ketan&gt;, (01) 08997001001018,"));
        assert_eq!(texts(&svg, "font-weight=\"bold\""), ["Dodol & <Ketan>"]);
        assert_eq!(texts(&svg, "font-family=\"monospace\""), label.hri);
        // Every element opened is closed: the text elements balance and nothing else nests.
        assert_eq!(svg.matches("<text ").count(), svg.matches("</text>").count());
        assert_eq!(svg.matches("<svg ").count(), 1);
    }

    #[test]
    fn escape_handles_markup_quotes_and_controls() {
        assert_eq!(escape("a&b<c>\"d'\u{7}é"), "a&amp;b&lt;c&gt;&quot;d&apos;?é");
        assert_eq!(unescape(&escape("x &amp; y")), "x &amp; y");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(63.0), "63");
        assert_eq!(num(0.48888), "0.489");
        assert_eq!(num(10.5), "10.5");
        assert_eq!(num(-0.0001), "0");
    }

    #[test]
    fn bad_labels_are_refused() {
        let mut label = example();
        label.uri.clear();
        assert!(matches!(svg(&label), Err(LabelError::EmptyUri)));
    }
}
