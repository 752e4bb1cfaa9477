//! The QR code of a label as a plain module matrix, which every renderer draws in its own way.

use qrcode::types::QrError;
use qrcode::{Color, EcLevel, QrCode};

use crate::LabelError;

/// The light margin around the symbol, in modules; ISO/IEC 18004 requires 4, and scanners
/// fail on labels printed without it.
pub const QUIET_ZONE: usize = 4;

/// The most bytes a QR code at error correction level M holds (version 40, byte mode). Digits
/// and upper-case runs pack tighter, so this is the limit for arbitrary URIs.
pub const QR_M_MAX_BYTES: usize = 2331;

/// A QR symbol without its quiet zone: `width` × `width` modules, dark or light.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrMatrix {
    width: usize,
    /// Row-major, `true` for dark.
    dark: Vec<bool>,
}

impl QrMatrix {
    /// Modules per side, without the quiet zone.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the module at column `x`, row `y` is dark; anything outside the symbol is the
    /// quiet zone and so light.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }

    /// Horizontal runs of dark modules as `(x, y, len)`, row by row: vector output draws one
    /// shape per run instead of per module, which keeps files small and avoids hairline seams.
    pub(crate) fn runs(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (0..self.width).flat_map(move |y| {
            let row = &self.dark[y * self.width..(y + 1) * self.width];
            let mut runs = Vec::new();
            let mut x = 0;
            while x < row.len() {
                if row[x] {
                    let start = x;
                    while x < row.len() && row[x] {
                        x += 1;
                    }
                    runs.push((start, y, x - start));
                } else {
                    x += 1;
                }
            }
            runs
        })
    }
}

/// Encodes `uri` at error correction level M, the least GS1 Digital Link guidance allows for
/// printed labels, in the smallest version that fits.
pub fn qr(uri: &str) -> Result<QrMatrix, LabelError> {
    if uri.is_empty() {
        return Err(LabelError::EmptyUri);
    }
    let code = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M).map_err(|error| match error {
        QrError::DataTooLong => LabelError::UriTooLong {
            len: uri.len(),
            max: QR_M_MAX_BYTES,
        },
        other => LabelError::Qr(other),
    })?;
    let width = code.width();
    let dark = code
        .into_colors()
        .into_iter()
        .map(|color| color == Color::Dark)
        .collect();
    Ok(QrMatrix { width, dark })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The URI of the example label in the project's documentation.
    pub(crate) const URI: &str = "https://id.jejak.example/01/08997001001018/10/DMK-BP-260911/21/DMK5P-000001";

    /// Decodes every QR code in a greyscale image; returns (ECC strength L=0 M=1 Q=2 H=3, text).
    pub(crate) fn decode_grey(width: usize, height: usize, pixels: &[u8]) -> Vec<(u16, String)> {
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
        image
            .detect_grids()
            .into_iter()
            .map(|grid| {
                let (meta, text) = grid.decode().expect("a rendered code decodes");
                // The format bits order levels M, L, H, Q (ISO/IEC 18004 table 12).
                let strength = [1, 0, 3, 2][usize::from(meta.ecc_level)];
                (strength, text)
            })
            .collect()
    }

    /// Decodes a PNG made by this crate.
    pub(crate) fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let decoder = ::png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("png header");
        let mut pixels = vec![0; reader.output_buffer_size().expect("size fits")];
        let info = reader.next_frame(&mut pixels).expect("png frame");
        assert_eq!(info.color_type, ::png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, ::png::BitDepth::Eight);
        pixels.truncate(info.buffer_size());
        (info.width as usize, info.height as usize, pixels)
    }

    fn round_trip(uri: &str) {
        let png = crate::qr_png(uri, 3).expect("qr png");
        let (width, height, pixels) = decode_png(&png);
        let decoded = decode_grey(width, height, &pixels);
        assert_eq!(decoded.len(), 1, "one code in the image of {uri}");
        let (strength, text) = &decoded[0];
        assert_eq!(text, uri);
        assert!(*strength >= 1, "ecc level M or higher, got strength {strength}");
    }

    #[test]
    fn the_example_uri_round_trips_at_level_m() {
        round_trip(URI);
    }

    #[test]
    fn percent_escapes_and_a_long_serial_round_trip() {
        let serial = "A%2FB%25C-".repeat(6);
        round_trip(&format!(
            "https://id.jejak.example/01/08997001001018/10/LOT%20%2F7/21/{serial}"
        ));
    }

    #[test]
    fn the_smallest_version_is_chosen() {
        for uri in [URI, "https://x/01/1", &format!("{URI}/{}", "a".repeat(300))] {
            let width = qr(uri).expect("encodes").width();
            let version = (width - 17) / 4;
            let smaller = qrcode::Version::Normal(version as i16 - 1);
            if version > 1 {
                assert!(
                    QrCode::with_version(uri, smaller, EcLevel::M).is_err(),
                    "{uri} fits {smaller:?}"
                );
            }
        }
        // Digit runs go in numeric mode: the 76-byte example fits version 4 (33 modules).
        assert_eq!(qr(URI).expect("encodes").width(), 33);
        assert_eq!(qr("https://x/01/1").expect("encodes").width(), 21);
    }

    #[test]
    fn too_long_and_empty_uris_are_refused() {
        let long = format!("https://id.jejak.example/21/{}", "x".repeat(QR_M_MAX_BYTES));
        match qr(&long) {
            Err(LabelError::UriTooLong { len, max }) => {
                assert_eq!(len, long.len());
                assert_eq!(max, QR_M_MAX_BYTES);
            }
            other => panic!("expected UriTooLong, got {other:?}"),
        }
        assert!(matches!(qr(""), Err(LabelError::EmptyUri)));
        // The limit is the real one: the longest arbitrary byte string still encodes.
        assert_eq!(qr(&"x".repeat(QR_M_MAX_BYTES)).expect("fits version 40-M").width(), 177);
    }

    #[test]
    fn runs_cover_exactly_the_dark_modules() {
        let matrix = qr(URI).expect("encodes");
        let mut seen = vec![false; matrix.width() * matrix.width()];
        for (x, y, len) in matrix.runs() {
            assert!(len > 0);
            for x in x..x + len {
                assert!(matrix.is_dark(x, y));
                seen[y * matrix.width() + x] = true;
            }
            // Runs are maximal: the modules either side are light.
            assert!(x == 0 || !matrix.is_dark(x - 1, y));
            assert!(!matrix.is_dark(x + len, y));
        }
        for y in 0..matrix.width() {
            for x in 0..matrix.width() {
                assert_eq!(seen[y * matrix.width() + x], matrix.is_dark(x, y));
            }
        }
        assert!(!matrix.is_dark(matrix.width(), 0), "outside the symbol is light");
    }

    #[test]
    fn generated_uris_round_trip() {
        // A fixed linear congruential sequence: varied lengths and characters, same every run.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%";
        let mut state: u64 = 0x5eed;
        for n in 0..10 {
            let len = 1 + n * 23;
            let serial: String = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    char::from(alphabet[(state >> 33) as usize % alphabet.len()])
                })
                .collect();
            round_trip(&format!("https://id.jejak.example/01/08997001001018/21/{serial}"));
        }
    }
}
