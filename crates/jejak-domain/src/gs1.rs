//! GS1 identifiers printed on jejak labels: GTINs, batch/lot and serial values, and GS1 Digital Link URIs.
//!
//! Labels are scanned by phones and cheap scanners in the field, so parsing is
//! lenient where GS1 allows it (short GTINs, any path prefix, query strings,
//! scheme case) and strict where a mistake would point at the wrong lot (check
//! digits, character set, unknown path segments). Output is always canonical:
//! GTIN-14 and the `/01/{gtin}/10/{lot}[/21/{serial}]` path.

use std::fmt;
use std::str::FromStr;

/// Longest value GS1 allows for AI (10) batch/lot and AI (21) serial.
const MAX_AI_VALUE_LEN: usize = 20;

/// Inputs quoted in error messages are cut to this many characters, because
/// the input may be an arbitrary string from a scanner or an HTTP request.
const MAX_QUOTED_CHARS: usize = 64;

/// Why a GTIN, an AI value or a GS1 Digital Link was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Gs1Error {
    /// The GTIN does not have 8, 12, 13 or 14 digits.
    #[error("gtin {} has {len} digits, expected 8, 12, 13 or 14", crate::quote(.gtin))]
    GtinLength {
        /// The GTIN as given (shortened if very long).
        gtin: String,
        /// Number of characters given.
        len: usize,
    },
    /// The GTIN contains something other than ASCII digits.
    #[error("gtin {} contains {ch:?}, only digits 0-9 are allowed", crate::quote(.gtin))]
    GtinCharacter {
        /// The GTIN as given (shortened if very long).
        gtin: String,
        /// The first character that is not a digit.
        ch: char,
    },
    /// The last digit does not match the GS1 mod-10 check digit.
    #[error("gtin {gtin} has check digit {found}, expected {expected}")]
    GtinCheckDigit {
        /// The GTIN as given.
        gtin: String,
        /// The check digit found in the GTIN.
        found: u8,
        /// The check digit computed from the other digits.
        expected: u8,
    },
    /// An AI value is empty.
    #[error("ai ({ai}) value is empty, it must have 1 to 20 characters")]
    AiValueEmpty {
        /// The application identifier, e.g. `10`.
        ai: String,
    },
    /// An AI value is longer than GS1 allows.
    #[error("ai ({ai}) value has {len} characters, at most {max} are allowed")]
    AiValueTooLong {
        /// The application identifier, e.g. `10`.
        ai: String,
        /// Number of characters given.
        len: usize,
        /// Maximum number of characters for this AI.
        max: usize,
    },
    /// An AI value contains a character outside GS1 character set 82.
    #[error(
        "ai ({ai}) value {} has {ch:?} at position {position}, \
         which is not in gs1 character set 82",
        crate::quote(.value)
    )]
    AiValueCharacter {
        /// The application identifier, e.g. `10`.
        ai: String,
        /// The value as given (shortened if very long).
        value: String,
        /// The first offending character.
        ch: char,
        /// Its 1-based character position in the value.
        position: usize,
    },
    /// An application identifier that jejak labels do not carry.
    #[error("ai ({ai}) is not supported here, expected (10) batch/lot or (21) serial")]
    UnsupportedAi {
        /// The application identifier as given.
        ai: String,
    },
    /// A Digital Link without `/10/{lot}`; every jejak label names its lot.
    #[error("digital link for gtin {gtin} has no lot, add /10/{{lot}} after the gtin")]
    MissingLot {
        /// The GTIN-14 the link was for.
        gtin: String,
    },
    /// A path segment after the GTIN that is not a supported key/value pair.
    #[error("unexpected segment {} in digital link path: {reason}", crate::quote(.segment))]
    UnexpectedSegment {
        /// The segment as decoded (shortened if very long).
        segment: String,
        /// What was expected instead.
        reason: &'static str,
    },
    /// A path segment with a broken `%XX` escape or non-UTF-8 bytes.
    #[error("bad percent-encoding in segment {}: {reason}", crate::quote(.segment))]
    PercentEncoding {
        /// The raw segment (shortened if very long).
        segment: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The input is not shaped like a GS1 Digital Link at all.
    #[error("{} is not a gs1 digital link: {reason}", crate::quote(.input))]
    NotDigitalLink {
        /// The input (shortened if very long).
        input: String,
        /// What is missing or wrong.
        reason: &'static str,
    },
}

/// Shortens `s` for quoting in an error message.
fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED_CHARS) {
        // `char_indices` only yields char boundaries, so `get` always succeeds;
        // the fallback keeps this panic-free regardless.
        Some((end, _)) => format!("{}…", s.get(..end).unwrap_or(s)),
        None => s.to_owned(),
    }
}

/// GS1 mod-10 over digit values (0..=9), weights 3,1,3,... from the right.
fn mod10(digits: impl DoubleEndedIterator<Item = u8>) -> u8 {
    let sum: u32 = digits
        .rev()
        .zip([3u32, 1].into_iter().cycle())
        .map(|(d, w)| u32::from(d) * w)
        .sum();
    // `sum % 10` is below 10, so the result fits in a u8.
    ((10 - sum % 10) % 10) as u8
}

/// Computes the GS1 mod-10 check digit for `digits_without_check`.
///
/// Works for any GS1 key (GTIN, GLN, SSCC), so any non-empty digit string is
/// accepted. Returns `None` if the input is empty or has a non-digit.
pub fn check_digit(digits_without_check: &str) -> Option<u8> {
    let bytes = digits_without_check.as_bytes();
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(mod10(bytes.iter().map(|b| b - b'0')))
}

/// A Global Location Number: 13 digits with a valid check digit. Names a
/// location (SGLN, `https://id.gs1.org/414/{gln}`) or a party (PGLN,
/// `https://id.gs1.org/417/{gln}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gln(String);

impl Gln {
    /// Parses a GLN; the message says what is wrong with it.
    pub fn parse(s: &str) -> Result<Gln, String> {
        if s.len() != 13 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{} is not a GLN: a GLN has 13 digits", crate::quote(s)));
        }
        let (body, last) = s.split_at(12);
        let expected = check_digit(body).unwrap_or(10);
        if last.as_bytes()[0] - b'0' != expected {
            return Err(format!("GLN {s} has check digit {last}, expected {expected}"));
        }
        Ok(Gln(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gln {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Global Trade Item Number, always held as 14 digits with a valid check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gtin(String);

impl Gtin {
    /// Parses a GTIN-8, -12, -13 or -14 and normalises it to GTIN-14.
    ///
    /// Shorter GTINs are left-padded with zeros: GS1 defines them as the same
    /// number as the padded GTIN-14, and Digital Link URIs carry 14 digits.
    pub fn parse(s: &str) -> Result<Gtin, Gs1Error> {
        // Characters first: "12a4" is better reported as a typo than as a length.
        if let Some(ch) = s.chars().find(|c| !c.is_ascii_digit()) {
            return Err(Gs1Error::GtinCharacter { gtin: clip(s), ch });
        }
        if !matches!(s.len(), 8 | 12 | 13 | 14) {
            return Err(Gs1Error::GtinLength {
                gtin: clip(s),
                len: s.len(),
            });
        }
        let padded = format!("{s:0>14}");
        let digits: Vec<u8> = padded.bytes().map(|b| b - b'0').collect();
        let (found, body) = match digits.split_last() {
            Some((last, body)) => (*last, body),
            None => {
                return Err(Gs1Error::GtinLength {
                    gtin: clip(s),
                    len: s.len(),
                })
            }
        };
        let expected = mod10(body.iter().copied());
        if found != expected {
            return Err(Gs1Error::GtinCheckDigit {
                gtin: s.to_owned(),
                found,
                expected,
            });
        }
        Ok(Gtin(padded))
    }

    /// The 14 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Gtin {
    type Err = Gs1Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Gtin::parse(s)
    }
}

/// Whether `c` is in GS1 "AI encodable character set 82".
fn is_cset82(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '!' | '"'
                | '%'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | '-'
                | '.'
                | '/'
                | ':'
                | ';'
                | '<'
                | '='
                | '>'
                | '?'
                | '_'
        )
}

/// Validates the value of AI (10) batch/lot or AI (21) serial.
///
/// Both are 1 to 20 characters from GS1 character set 82. Other AIs are
/// rejected with [`Gs1Error::UnsupportedAi`] because jejak labels do not carry them.
pub fn validate_ai_value(ai: &str, value: &str) -> Result<(), Gs1Error> {
    if !matches!(ai, "10" | "21") {
        return Err(Gs1Error::UnsupportedAi { ai: clip(ai) });
    }
    if value.is_empty() {
        return Err(Gs1Error::AiValueEmpty { ai: ai.to_owned() });
    }
    let len = value.chars().count();
    if len > MAX_AI_VALUE_LEN {
        return Err(Gs1Error::AiValueTooLong {
            ai: ai.to_owned(),
            len,
            max: MAX_AI_VALUE_LEN,
        });
    }
    if let Some((i, ch)) = value.chars().enumerate().find(|(_, c)| !is_cset82(*c)) {
        return Err(Gs1Error::AiValueCharacter {
            ai: ai.to_owned(),
            value: clip(value),
            ch,
            position: i + 1,
        });
    }
    Ok(())
}

/// The identifiers carried by a jejak label's GS1 Digital Link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DigitalLink {
    /// AI (01), normalised to GTIN-14.
    pub gtin: Gtin,
    /// AI (10) batch/lot; always present on jejak labels.
    pub lot: String,
    /// AI (21) serial of a single package, if the label is per package.
    pub serial: Option<String>,
}

impl DigitalLink {
    /// Builds a link after checking the lot and serial against GS1 rules, so
    /// that [`DigitalLink::path`] yields something that parses back.
    pub fn new(gtin: Gtin, lot: String, serial: Option<String>) -> Result<Self, Gs1Error> {
        validate_ai_value("10", &lot)?;
        if let Some(serial) = &serial {
            validate_ai_value("21", serial)?;
        }
        Ok(DigitalLink { gtin, lot, serial })
    }

    /// Parses a GS1 Digital Link URI (`http(s)://host[:port]/prefix/01/...`)
    /// or a bare path (`[/prefix]/01/{gtin}/10/{lot}[/21/{serial}]`).
    ///
    /// Query string and fragment are ignored: they carry link types and data
    /// attributes, which do not identify the lot.
    pub fn parse(s: &str) -> Result<DigitalLink, Gs1Error> {
        let input = s.trim();
        let not_dl = |reason| Gs1Error::NotDigitalLink {
            input: clip(input),
            reason,
        };

        let rest = if input.starts_with('/') {
            input
        } else {
            let after_scheme = strip_prefix_ignore_case(input, "https://")
                .or_else(|| strip_prefix_ignore_case(input, "http://"))
                .ok_or_else(|| not_dl("expected an http(s) uri or a path starting with /"))?;
            let authority_end = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
            let (authority, rest) = after_scheme.split_at(authority_end);
            check_authority(authority).map_err(not_dl)?;
            rest
        };

        // Query and fragment end the path; a literal '?' or '#' in a lot is
        // percent-encoded, so cutting here cannot split a value.
        let path = rest.find(['?', '#']).map_or(rest, |end| rest.split_at(end).0);
        let path = path.strip_prefix('/').unwrap_or(path);
        // One trailing slash is tolerated: some label printers append it.
        let path = path.strip_suffix('/').unwrap_or(path);
        if path.is_empty() {
            return Err(not_dl("the path is empty, expected /01/{gtin}/10/{lot}"));
        }
        let segments: Vec<&str> = path.split('/').collect();

        let anchor = find_anchor(&segments).ok_or_else(|| not_dl("no /01/{gtin} in the path"))?;
        let after_anchor = segments.get(anchor + 1..).unwrap_or_default();
        let (gtin_segment, pairs) = match after_anchor.split_first() {
            Some(split) => split,
            None => return Err(not_dl("no /01/{gtin} in the path")),
        };
        let gtin = Gtin::parse(&percent_decode(gtin_segment)?)?;

        let mut lot: Option<String> = None;
        let mut serial: Option<String> = None;
        for pair in pairs.chunks(2) {
            let (key, value) = match pair {
                [key, value] => (percent_decode(key)?, Some(percent_decode(value)?)),
                [key] => (percent_decode(key)?, None),
                _ => continue,
            };
            match key.as_str() {
                "10" => {
                    if lot.is_some() {
                        return Err(unexpected(&key, "lot (10) appears twice"));
                    }
                    if serial.is_some() {
                        return Err(unexpected(&key, "lot (10) must come before serial (21)"));
                    }
                    let value = value.unwrap_or_default();
                    validate_ai_value("10", &value)?;
                    lot = Some(value);
                }
                "21" => {
                    if serial.is_some() {
                        return Err(unexpected(&key, "serial (21) appears twice"));
                    }
                    let value = value.unwrap_or_default();
                    validate_ai_value("21", &value)?;
                    serial = Some(value);
                }
                "01" => return Err(unexpected(&key, "gtin (01) appears twice")),
                _ if looks_like_ai(&key) => return Err(Gs1Error::UnsupportedAi { ai: key }),
                _ => return Err(unexpected(&key, "expected /10/{lot} or /21/{serial} after the gtin")),
            }
        }

        match lot {
            Some(lot) => Ok(DigitalLink { gtin, lot, serial }),
            None => Err(Gs1Error::MissingLot { gtin: gtin.to_string() }),
        }
    }

    /// The canonical path: `/01/{gtin14}/10/{lot}[/21/{serial}]`, with lot and
    /// serial percent-encoded outside the URI unreserved characters.
    pub fn path(&self) -> String {
        let mut path = format!("/01/{}/10/{}", self.gtin, percent_encode(&self.lot));
        if let Some(serial) = &self.serial {
            path.push_str("/21/");
            path.push_str(&percent_encode(serial));
        }
        path
    }

    /// The full URI under `base`, e.g. `https://id.jejak.example`; a trailing
    /// slash on `base` is dropped so the result never has `//01/`.
    pub fn uri(&self, base: &str) -> String {
        format!("{}{}", base.trim_end_matches('/'), self.path())
    }
}

impl fmt::Display for DigitalLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

impl FromStr for DigitalLink {
    type Err = Gs1Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DigitalLink::parse(s)
    }
}

fn unexpected(segment: &str, reason: &'static str) -> Gs1Error {
    Gs1Error::UnexpectedSegment {
        segment: clip(segment),
        reason,
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // `get` returns None instead of panicking when the cut is not on a char boundary.
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Checks `host[:port]` loosely: the host is not used, but an empty or
/// malformed authority means the input is not a URI we printed.
fn check_authority(authority: &str) -> Result<(), &'static str> {
    let port = if let Some(inner) = authority.strip_prefix('[') {
        // IPv6 literal, e.g. [::1]:8080.
        let (literal, after) = inner.split_once(']').ok_or("unclosed [ in the uri host")?;
        if literal.is_empty() || !literal.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err("the uri host is not a valid ip address");
        }
        match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or("unexpected text after the uri host")?),
        }
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("the uri has no host");
        }
        // '@' (user info) is rejected too: jejak never prints it, and it is a
        // classic way to disguise the real host.
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
        {
            return Err("the uri host has characters not allowed in a host name");
        }
        port
    };
    // RFC 3986 allows an empty port ("host:"), meaning the default.
    match port {
        Some(port) if !port.is_empty() => {
            if port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok() {
                Ok(())
            } else {
                Err("the uri port is not a number from 0 to 65535")
            }
        }
        _ => Ok(()),
    }
}

fn looks_like_gtin(segment: &str) -> bool {
    matches!(segment.len(), 8 | 12 | 13 | 14) && segment.bytes().all(|b| b.is_ascii_digit())
}

/// AIs are 2 to 4 digits; a segment like that is a real but unsupported AI
/// rather than garbage, which gives a better error.
fn looks_like_ai(segment: &str) -> bool {
    (2..=4).contains(&segment.len()) && segment.bytes().all(|b| b.is_ascii_digit())
}

/// Finds the index of the `01` segment that starts the GS1 part of the path.
///
/// The last `01` followed by a GTIN-looking segment wins, because the prefix
/// may itself contain `01` (e.g. `/2024/01/...`). Within a valid link no later
/// match is possible: the segment after a lot or serial is `21` or nothing.
/// If there is none, fall back to a `01` whose GTIN is malformed so the caller
/// reports what is wrong with the GTIN instead of "not a digital link".
fn find_anchor(segments: &[&str]) -> Option<usize> {
    let is_key = |w: &[&str], gtin_ok: fn(&str) -> bool| matches!(w, [k, g] if *k == "01" && gtin_ok(g));
    segments
        .windows(2)
        .rposition(|w| is_key(w, looks_like_gtin))
        .or_else(|| {
            // GTIN followed by whole key/value pairs leaves an odd number of
            // segments after the anchor; prefer such a `01`.
            segments
                .windows(2)
                .enumerate()
                .rev()
                .find(|(i, w)| is_key(w, |_| true) && (segments.len() - i - 1) % 2 == 1)
                .map(|(i, _)| i)
        })
        .or_else(|| segments.windows(2).rposition(|w| is_key(w, |_| true)))
}

/// Decodes `%XX` escapes in a path segment; the result must be UTF-8.
fn percent_decode(segment: &str) -> Result<String, Gs1Error> {
    if !segment.contains('%') {
        return Ok(segment.to_owned());
    }
    let bad = |reason| Gs1Error::PercentEncoding {
        segment: clip(segment),
        reason,
    };
    let mut bytes = Vec::with_capacity(segment.len());
    let mut iter = segment.bytes();
    while let Some(b) = iter.next() {
        if b != b'%' {
            bytes.push(b);
            continue;
        }
        let hi = iter.next().and_then(hex_value);
        let lo = iter.next().and_then(hex_value);
        match (hi, lo) {
            (Some(hi), Some(lo)) => bytes.push((hi << 4) | lo),
            _ => return Err(bad("'%' must be followed by two hex digits")),
        }
    }
    String::from_utf8(bytes).map_err(|_| bad("the decoded bytes are not valid utf-8"))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Encodes every byte outside the URI unreserved set `A-Za-z0-9-._~`.
///
/// GS1 Digital Link permits some sub-delims unencoded, but encoding them
/// keeps the printed URI unambiguous for every resolver and QR encoder.
fn percent_encode(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gtin(s: &str) -> Gtin {
        Gtin::parse(s).expect("test gtin is valid")
    }

    fn dl(s: &str) -> DigitalLink {
        DigitalLink::parse(s).expect("test link is valid")
    }

    #[test]
    fn check_digit_examples() {
        assert_eq!(check_digit("400638133393"), Some(1));
        assert_eq!(check_digit("9638507"), Some(4));
        assert_eq!(check_digit("03600029145"), Some(2));
        assert_eq!(check_digit("0899123456789"), Some(1));
        assert_eq!(check_digit(""), None);
        assert_eq!(check_digit("12a"), None);
        assert_eq!(check_digit("١٢٣"), None);
    }

    #[test]
    fn valid_gtins_normalise_to_14_digits() {
        assert_eq!(gtin("4006381333931").as_str(), "04006381333931");
        assert_eq!(gtin("96385074").as_str(), "00000096385074");
        assert_eq!(gtin("036000291452").as_str(), "00036000291452");
        assert_eq!(gtin("08991234567891").as_str(), "08991234567891");
        assert_eq!(gtin("04006381333931"), gtin("4006381333931"));
        assert_eq!(gtin("00000096385074"), gtin("96385074"));
        assert_eq!(gtin("10012345678902").to_string(), "10012345678902");
        assert_eq!("96385074".parse::<Gtin>(), Ok(gtin("96385074")));
    }

    #[test]
    fn bad_check_digit_names_expected_digit() {
        let err = Gtin::parse("08991234567895").unwrap_err();
        assert_eq!(
            err,
            Gs1Error::GtinCheckDigit {
                gtin: "08991234567895".into(),
                found: 5,
                expected: 1
            }
        );
        assert_eq!(err.to_string(), "gtin 08991234567895 has check digit 5, expected 1");
        assert!(matches!(
            Gtin::parse("4006381333932"),
            Err(Gs1Error::GtinCheckDigit {
                found: 2,
                expected: 1,
                ..
            })
        ));
    }

    #[test]
    fn bad_gtin_length_and_characters() {
        for s in ["", "1234567", "123456789", "12345678901", "123456789012345"] {
            assert!(
                matches!(Gtin::parse(s), Err(Gs1Error::GtinLength { len, .. }) if len == s.len()),
                "{s:?}"
            );
        }
        assert_eq!(
            Gtin::parse("4006381 33931"),
            Err(Gs1Error::GtinCharacter {
                gtin: "4006381 33931".into(),
                ch: ' '
            })
        );
        assert!(matches!(
            Gtin::parse("４００６３８１３３３９３１"),
            Err(Gs1Error::GtinCharacter { ch: '４', .. })
        ));
        assert!(matches!(
            Gtin::parse("-4006381333931"),
            Err(Gs1Error::GtinCharacter { ch: '-', .. })
        ));
    }

    #[test]
    fn ai_values() {
        assert_eq!(validate_ai_value("10", "LOT-2024/07.a"), Ok(()));
        assert_eq!(validate_ai_value("21", "!\"%&'()*+,-./:;<=>?_"), Ok(()));
        assert_eq!(validate_ai_value("10", &"A".repeat(20)), Ok(()));
        assert_eq!(
            validate_ai_value("10", ""),
            Err(Gs1Error::AiValueEmpty { ai: "10".into() })
        );
        assert_eq!(
            validate_ai_value("21", &"9".repeat(21)),
            Err(Gs1Error::AiValueTooLong {
                ai: "21".into(),
                len: 21,
                max: 20
            })
        );
        assert_eq!(
            validate_ai_value("10", "LOT#1"),
            Err(Gs1Error::AiValueCharacter {
                ai: "10".into(),
                value: "LOT#1".into(),
                ch: '#',
                position: 4
            })
        );
        for bad in [" ", "é", "a b", "x\n", "[", "^", "@", "$", "`", "{", "|", "~", "\\"] {
            assert!(
                matches!(validate_ai_value("10", bad), Err(Gs1Error::AiValueCharacter { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            validate_ai_value("17", "240101"),
            Err(Gs1Error::UnsupportedAi { ai: "17".into() })
        );
        let msg = validate_ai_value("10", "LOT#1").unwrap_err().to_string();
        assert_eq!(
            msg,
            "ai (10) value \"LOT#1\" has '#' at position 4, which is not in gs1 character set 82"
        );
    }

    #[test]
    fn parses_bare_paths() {
        let link = dl("/01/08991234567891/10/LOT1");
        assert_eq!(link.gtin, gtin("08991234567891"));
        assert_eq!(link.lot, "LOT1");
        assert_eq!(link.serial, None);

        let link = dl("/01/08991234567891/10/LOT1/21/0001");
        assert_eq!(link.serial.as_deref(), Some("0001"));
        assert_eq!(link.path(), "/01/08991234567891/10/LOT1/21/0001");
        assert_eq!(link.to_string(), link.path());
    }

    #[test]
    fn normalises_short_gtins() {
        let link = dl("/01/4006381333931/10/A");
        assert_eq!(link.gtin.as_str(), "04006381333931");
        assert_eq!(link.path(), "/01/04006381333931/10/A");
        assert_eq!(dl("/01/96385074/10/A").gtin.as_str(), "00000096385074");
        assert_eq!(dl("/01/036000291452/10/A").gtin.as_str(), "00036000291452");
    }

    #[test]
    fn parses_prefixes_ports_queries_and_fragments() {
        let want = DigitalLink {
            gtin: gtin("08991234567891"),
            lot: "LOT1".into(),
            serial: Some("0001".into()),
        };
        for uri in [
            "/dl/01/08991234567891/10/LOT1/21/0001",
            "/jejak/id/01/08991234567891/10/LOT1/21/0001",
            "https://id.example.org/01/08991234567891/10/LOT1/21/0001",
            "https://id.example.org/prefix/01/08991234567891/10/LOT1/21/0001",
            "http://id.example.org:8080/a/b/01/08991234567891/10/LOT1/21/0001",
            "HTTPS://ID.EXAMPLE.ORG/01/08991234567891/10/LOT1/21/0001",
            "https://127.0.0.1:443/01/08991234567891/10/LOT1/21/0001",
            "https://[::1]:8443/01/08991234567891/10/LOT1/21/0001",
            "https://id.example.org/01/08991234567891/10/LOT1/21/0001?linkType=gs1:pip",
            "https://id.example.org/01/08991234567891/10/LOT1/21/0001?17=250101&linkType=all#x",
            "https://id.example.org/01/08991234567891/10/LOT1/21/0001#section",
            "https://id.example.org/01/08991234567891/10/LOT1/21/0001/",
            "  https://id.example.org/01/08991234567891/10/LOT1/21/0001\n",
            // Prefixes containing 01 and even a GTIN-looking pair must not win.
            "/2024/01/15/01/08991234567891/10/LOT1/21/0001",
            "/01/01/01/08991234567891/10/LOT1/21/0001",
            "/01/04006381333931/01/08991234567891/10/LOT1/21/0001",
        ] {
            assert_eq!(DigitalLink::parse(uri), Ok(want.clone()), "{uri}");
        }
    }

    #[test]
    fn values_that_look_like_keys_stay_values() {
        let link = dl("/01/08991234567891/10/01/21/12345678");
        assert_eq!(link.lot, "01");
        assert_eq!(link.serial.as_deref(), Some("12345678"));
        let link = dl("/01/08991234567891/10/21/21/01");
        assert_eq!(link.lot, "21");
        assert_eq!(link.serial.as_deref(), Some("01"));
    }

    #[test]
    fn percent_decoding_and_encoding() {
        // %20 decodes to a space, which is outside character set 82.
        let err = DigitalLink::parse("/01/08991234567891/10/A%20B").unwrap_err();
        assert!(matches!(err, Gs1Error::AiValueCharacter { ch: ' ', .. }));

        let link = dl("/01/08991234567891/10/A%2FB/21/S%3f1%3B");
        assert_eq!(link.lot, "A/B");
        assert_eq!(link.serial.as_deref(), Some("S?1;"));
        assert_eq!(link.path(), "/01/08991234567891/10/A%2FB/21/S%3F1%3B");

        // Sub-delims may arrive raw; they come out encoded.
        let link = dl("/01/08991234567891/10/L(1)+2,3");
        assert_eq!(link.lot, "L(1)+2,3");
        assert_eq!(link.path(), "/01/08991234567891/10/L%281%29%2B2%2C3");
        assert_eq!(DigitalLink::parse(&link.path()), Ok(link));

        let link = DigitalLink::new(gtin("96385074"), "50%\"".into(), None).expect("valid");
        assert_eq!(link.path(), "/01/00000096385074/10/50%25%22");
        assert_eq!(DigitalLink::parse(&link.path()), Ok(link));
    }

    #[test]
    fn bad_percent_encoding() {
        for bad in [
            "/01/08991234567891/10/A%2",
            "/01/08991234567891/10/A%",
            "/01/08991234567891/10/A%G1",
            "/01/08991234567891/10/A%%41",
        ] {
            assert!(
                matches!(DigitalLink::parse(bad), Err(Gs1Error::PercentEncoding { .. })),
                "{bad}"
            );
        }
        let err = DigitalLink::parse("/01/08991234567891/10/A%FF").unwrap_err();
        assert_eq!(
            err,
            Gs1Error::PercentEncoding {
                segment: "A%FF".into(),
                reason: "the decoded bytes are not valid utf-8"
            }
        );
        // Valid UTF-8 that decodes fine is then rejected by the character set.
        assert!(matches!(
            DigitalLink::parse("/01/08991234567891/10/%C3%A9"),
            Err(Gs1Error::AiValueCharacter { ch: 'é', .. })
        ));
    }

    #[test]
    fn uri_joins_base() {
        let link = dl("/01/08991234567891/10/LOT1/21/0001");
        let want = "https://id.jejak.example/01/08991234567891/10/LOT1/21/0001";
        assert_eq!(link.uri("https://id.jejak.example"), want);
        assert_eq!(link.uri("https://id.jejak.example/"), want);
        assert_eq!(
            link.uri("https://id.jejak.example/dl/"),
            "https://id.jejak.example/dl/01/08991234567891/10/LOT1/21/0001"
        );
    }

    #[test]
    fn new_validates() {
        assert!(DigitalLink::new(gtin("96385074"), "L".into(), Some("S".into())).is_ok());
        assert_eq!(
            DigitalLink::new(gtin("96385074"), String::new(), None),
            Err(Gs1Error::AiValueEmpty { ai: "10".into() })
        );
        assert!(matches!(
            DigitalLink::new(gtin("96385074"), "L".into(), Some("S S".into())),
            Err(Gs1Error::AiValueCharacter { ai, .. }) if ai == "21"
        ));
    }

    #[test]
    fn link_errors() {
        use Gs1Error as E;
        let g = "08991234567891";
        type Expect = fn(&Gs1Error) -> bool;
        let cases: Vec<(String, Expect)> = vec![
            (
                format!("/01/{g}"),
                |e| matches!(e, E::MissingLot { gtin } if gtin == "08991234567891"),
            ),
            (format!("/01/{g}/21/S"), |e| matches!(e, E::MissingLot { .. })),
            (
                format!("/01/{g}/10"),
                |e| matches!(e, E::AiValueEmpty { ai } if ai == "10"),
            ),
            (
                format!("/01/{g}/10/"),
                |e| matches!(e, E::AiValueEmpty { ai } if ai == "10"),
            ),
            (
                format!("/01/{g}/10//21/S"),
                |e| matches!(e, E::AiValueEmpty { ai } if ai == "10"),
            ),
            (
                format!("/01/{g}/10/L/21"),
                |e| matches!(e, E::AiValueEmpty { ai } if ai == "21"),
            ),
            (
                format!("/01/{g}/10/{}", "L".repeat(21)),
                |e| matches!(e, E::AiValueTooLong { ai, len: 21, .. } if ai == "10"),
            ),
            (
                format!("/01/{g}/22/V/10/L"),
                |e| matches!(e, E::UnsupportedAi { ai } if ai == "22"),
            ),
            (
                format!("/01/{g}/10/L/17/250101"),
                |e| matches!(e, E::UnsupportedAi { ai } if ai == "17"),
            ),
            (
                format!("/01/{g}/10/L/extra"),
                |e| matches!(e, E::UnexpectedSegment { segment, .. } if segment == "extra"),
            ),
            (
                format!("/01/{g}/10/L/foo/bar"),
                |e| matches!(e, E::UnexpectedSegment { segment, .. } if segment == "foo"),
            ),
            (
                format!("/01/{g}/10/L/10/M"),
                |e| matches!(e, E::UnexpectedSegment { segment, .. } if segment == "10"),
            ),
            (
                format!("/01/{g}/21/S/10/L"),
                |e| matches!(e, E::UnexpectedSegment { segment, reason } if segment == "10" && reason.contains("before")),
            ),
            (
                format!("/01/{g}/10/L/21/S/21/T"),
                |e| matches!(e, E::UnexpectedSegment { segment, .. } if segment == "21"),
            ),
            (
                format!("/01/{g}/10/L/01/x"),
                |e| matches!(e, E::UnexpectedSegment { segment, .. } if segment == "01"),
            ),
            ("/01/08991234567895/10/L".into(), |e| {
                matches!(
                    e,
                    E::GtinCheckDigit {
                        found: 5,
                        expected: 1,
                        ..
                    }
                )
            }),
            ("/01/12345/10/L".into(), |e| matches!(e, E::GtinLength { len: 5, .. })),
            ("/01/ABC/10/L".into(), |e| matches!(e, E::GtinCharacter { ch: 'A', .. })),
            // A malformed GTIN is reported even when the lot is "01".
            ("/01/123/10/01/21/S".into(), |e| {
                matches!(e, E::GtinLength { len: 3, .. })
            }),
            ("".into(), |e| matches!(e, E::NotDigitalLink { .. })),
            ("/".into(), |e| matches!(e, E::NotDigitalLink { .. })),
            ("01/08991234567891/10/L".into(), |e| {
                matches!(e, E::NotDigitalLink { .. })
            }),
            ("ftp://x.example/01/08991234567891/10/L".into(), |e| {
                matches!(e, E::NotDigitalLink { .. })
            }),
            ("https:///01/08991234567891/10/L".into(), |e| {
                matches!(e, E::NotDigitalLink { .. })
            }),
            ("https://x.example".into(), |e| matches!(e, E::NotDigitalLink { .. })),
            ("https://x.example:99999/01/08991234567891/10/L".into(), |e| {
                matches!(e, E::NotDigitalLink { .. })
            }),
            ("https://x.example:8o/01/08991234567891/10/L".into(), |e| {
                matches!(e, E::NotDigitalLink { .. })
            }),
            ("https://u@x.example/01/08991234567891/10/L".into(), |e| {
                matches!(e, E::NotDigitalLink { .. })
            }),
            ("https://[::1/01/08991234567891/10/L".into(), |e| {
                matches!(e, E::NotDigitalLink { .. })
            }),
            ("https://x.example/gtin/08991234567891".into(), |e| {
                matches!(e, E::NotDigitalLink { .. })
            }),
            ("/10/LOT1/21/S".into(), |e| matches!(e, E::NotDigitalLink { .. })),
            ("/x/01".into(), |e| matches!(e, E::NotDigitalLink { .. })),
        ];
        for (input, ok) in cases {
            let result = DigitalLink::parse(&input);
            match &result {
                Err(e) if ok(e) => {}
                other => panic!("{input:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn error_messages_are_actionable() {
        let msg = |s: &str| DigitalLink::parse(s).unwrap_err().to_string();
        assert_eq!(
            msg("/01/08991234567891"),
            "digital link for gtin 08991234567891 has no lot, add /10/{lot} after the gtin"
        );
        assert_eq!(
            msg("/01/08991234567891/10/L/22/X"),
            "ai (22) is not supported here, expected (10) batch/lot or (21) serial"
        );
        assert_eq!(
            msg("/01/08991234567891/10/L/extra"),
            "unexpected segment \"extra\" in digital link path: \
             expected /10/{lot} or /21/{serial} after the gtin"
        );
        assert_eq!(
            msg("mailto:x"),
            "\"mailto:x\" is not a gs1 digital link: expected an http(s) uri or a path starting with /"
        );
        let long = msg(&"x".repeat(10_000));
        assert!(long.len() < 200, "{long}");
        for m in [
            msg("/01/1/10/L"),
            msg("/01/08991234567891/10/%zz"),
            msg("https://x.example/nothing"),
        ] {
            assert!(!m.ends_with('.'), "{m}");
            assert!(m.starts_with(|c: char| c.is_ascii_lowercase() || c == '"'), "{m}");
        }
    }

    fn gtin14() -> impl Strategy<Value = Gtin> {
        proptest::collection::vec(0u8..10, 13).prop_map(|body| {
            let mut s: String = body.iter().map(|d| char::from(b'0' + d)).collect();
            let check = mod10(body.iter().copied());
            s.push(char::from(b'0' + check));
            Gtin::parse(&s).expect("generated gtin has a valid check digit")
        })
    }

    const CSET82: &str = "[0-9A-Za-z!\"%&'()*+,\\-./:;<=>?_]{1,20}";

    proptest! {
        #[test]
        fn uri_round_trips(
            gtin in gtin14(),
            lot in CSET82,
            serial in proptest::option::of(CSET82),
        ) {
            let link = DigitalLink::new(gtin, lot, serial).expect("generated values are valid");
            prop_assert_eq!(DigitalLink::parse(&link.uri("https://x.example/p")), Ok(link.clone()));
            prop_assert_eq!(DigitalLink::parse(&link.path()), Ok(link.clone()));
            prop_assert_eq!(DigitalLink::parse(&link.uri("http://x.example:8080/01/01/")), Ok(link));
        }

        #[test]
        fn short_gtins_pad_to_the_same_gtin14(
            body in prop_oneof![Just(7usize), Just(11), Just(12)]
                .prop_flat_map(|n| proptest::collection::vec(0u8..10, n)),
        ) {
            // GTIN-8, GTIN-12 and GTIN-13, each with its check digit.
            let mut s: String = body.iter().map(|d| char::from(b'0' + d)).collect();
            s.push(char::from(b'0' + mod10(body.iter().copied())));
            let padded = format!("{s:0>14}");
            prop_assert_eq!(Gtin::parse(&s)?, Gtin::parse(&padded)?);
        }

        #[test]
        fn a_gtin_of_no_gs1_length_is_refused(body in proptest::collection::vec(0u8..10, 8..=10)) {
            // Nine to eleven digits, the last a valid check digit: no GTIN has that length.
            let mut s: String = body.iter().map(|d| char::from(b'0' + d)).collect();
            s.push(char::from(b'0' + mod10(body.iter().copied())));
            prop_assert!(Gtin::parse(&s).is_err(), "{} accepted", s);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = DigitalLink::parse(&s);
            let _ = Gtin::parse(&s);
            let _ = check_digit(&s);
            let _ = validate_ai_value("10", &s);
        }

        #[test]
        fn parse_never_panics_on_link_like_input(
            s in "(https?://[a-z0-9.:\\[\\]@]{0,12})?(/(01|10|21|22|[0-9]{0,14}|[A-Za-z%0-9?#é]{0,6})){0,9}[?#]?",
        ) {
            if let Ok(link) = DigitalLink::parse(&s) {
                // Whatever parses must round-trip through its canonical form.
                prop_assert_eq!(DigitalLink::parse(&link.path()), Ok(link));
            }
        }
    }

    #[test]
    fn glns_have_13_digits_and_a_valid_check_digit() {
        assert_eq!(
            Gln::parse("8997001000028").map(|g| g.to_string()),
            Ok("8997001000028".into())
        );
        assert!(Gln::parse("8997001000029")
            .unwrap_err()
            .contains("check digit 9, expected 8"));
        assert!(Gln::parse("899700100002").unwrap_err().contains("13 digits"));
        assert!(Gln::parse("89970010000a8").is_err());
    }
}
