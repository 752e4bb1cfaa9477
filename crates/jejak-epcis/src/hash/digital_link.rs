//! GS1 identifiers in one form for the event hash: EPC URIs (`urn:epc:id:…`),
//! EPC class URIs (`urn:epc:class:lgtin:…`), EPC pattern URIs
//! (`urn:epc:idpat:…`) and GS1 Digital Link URIs on any domain all become
//! the constrained canonical Digital Link URI on `https://id.gs1.org`: the
//! finest level of identification only (no lot beside a serial, no CPV), no
//! query string.
//!
//! **Invariant:** [`normalise`] returns `None` for anything it does not
//! recognise (the hash then keeps the value as it is), and every URI it
//! returns passes the final syntax check of the reference algorithm or comes
//! straight from a well-formed EPC URI.

use std::sync::LazyLock;

use regex::Regex;

/// The canonical form of a GS1 identifier URI, or `None` if `uri` is none.
pub(crate) fn normalise(uri: &str) -> Option<String> {
    // Every URI the algorithm recognises has a dot (in the company prefix's
    // partition or in the domain name); the reference gives up on any other.
    if !uri.contains('.') {
        return None;
    }
    if let Some(rest) = uri.strip_prefix("urn:epc:") {
        return epc_uri(rest);
    }
    digital_link(uri)
}

/// The GS1 check digit of a key's digits (the rightmost weighted 3).
pub(super) fn check_digit(digits: &str) -> char {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b.wrapping_sub(b'0')) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    char::from(b'0' + ((10 - sum % 10) % 10) as u8)
}

/// Characters Digital Link requires percent-encoded that EPC URIs may hold
/// as they are.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '!' => out.push_str("%21"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '*' => out.push_str("%2A"),
            '+' => out.push_str("%2B"),
            ',' => out.push_str("%2C"),
            ':' => out.push_str("%3A"),
            _ => out.push(c),
        }
    }
    out
}

/// Which escapes and characters an EPC URI component may hold.
#[derive(Clone, Copy)]
enum Charset {
    /// GS1 AI encodable character set 82 as the Tag Data Standard escapes it.
    Gs1,
    /// The component/part reference of a CPI (digits, capitals, `-`, `#`, `/`).
    Cpi,
}

impl Charset {
    fn plain(self, b: u8) -> bool {
        match self {
            Charset::Gs1 => b.is_ascii_alphanumeric() || b"!')(*+,.:;=_-".contains(&b),
            Charset::Cpi => b.is_ascii_digit() || b.is_ascii_uppercase() || b == b'-',
        }
    }

    fn escape(self, hi: u8, lo: u8) -> bool {
        let hex = lo.is_ascii_hexdigit();
        match (self, hi) {
            (Charset::Gs1, b'2') => hex && !matches!(lo, b'0' | b'3' | b'4'),
            (Charset::Gs1, b'3') => hex,
            (Charset::Gs1, b'4') | (Charset::Gs1, b'6') => hex && lo != b'0',
            (Charset::Gs1, b'5') => lo.is_ascii_digit() || matches!(lo, b'A' | b'a' | b'F' | b'f'),
            (Charset::Gs1, b'7') => lo.is_ascii_digit() || matches!(lo, b'A' | b'a'),
            (Charset::Cpi, b'2') => matches!(lo, b'3' | b'd' | b'f' | b'D' | b'F'),
            (Charset::Cpi, b'3') => lo.is_ascii_digit(),
            (Charset::Cpi, b'4') => hex && lo != b'0',
            (Charset::Cpi, b'5') => lo.is_ascii_digit() || matches!(lo, b'A' | b'a'),
            _ => false,
        }
    }

    /// Whether `s` is `min..=max` characters of this set, a `%xx` escape
    /// counting as one.
    fn holds(self, s: &str, min: usize, max: usize) -> bool {
        let b = s.as_bytes();
        let (mut i, mut count) = (0, 0);
        while i < b.len() {
            if b[i] == b'%' {
                match (b.get(i + 1), b.get(i + 2)) {
                    (Some(&hi), Some(&lo)) if self.escape(hi, lo) => i += 3,
                    _ => return false,
                }
            } else if self.plain(b[i]) {
                i += 1;
            } else {
                return false;
            }
            count += 1;
        }
        (min..=max).contains(&count)
    }
}

fn digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// `company.reference` at the start of `s`: a 6 to 12 digit company prefix,
/// a dot, and the digits after it, `total` digits in all. Returns both and
/// what follows the reference.
fn keyed(s: &str, total: usize) -> Option<(&str, &str, &str)> {
    let (company, rest) = s.split_once('.')?;
    let end = rest.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(rest.len());
    let (reference, tail) = rest.split_at(end);
    let ok = (6..=12).contains(&company.len()) && digits(company) && company.len() + reference.len() == total;
    ok.then_some((company, reference, tail))
}

/// `company.reference` filling all of `s`.
fn keyed_exactly(s: &str, total: usize) -> Option<(&str, &str)> {
    match keyed(s, total)? {
        (company, reference, "") => Some((company, reference)),
        _ => None,
    }
}

/// A 6 to 12 digit company prefix, a dot, and up to `30 - prefix` characters
/// of `charset` (GIAI, GINC, CPI: keys of at most 30 characters).
fn company_and_text(s: &str, charset: Charset) -> Option<(&str, &str)> {
    let (company, text) = s.split_once('.')?;
    let ok = (6..=12).contains(&company.len()) && digits(company) && charset.holds(text, 1, 30 - company.len());
    ok.then_some((company, text))
}

/// The GTIN-14 of an SGTIN-style `company.indicator+item` pair.
fn gtin(company: &str, reference: &str) -> String {
    let (indicator, item) = reference.split_at(1);
    let mut key = format!("{indicator}{company}{item}");
    key.push(check_digit(&key));
    key
}

/// A key of `company` and `reference` with its check digit.
fn with_check_digit(company: &str, reference: &str) -> String {
    let mut key = format!("{company}{reference}");
    key.push(check_digit(&key));
    key
}

/// The text after a leading dot, `min..=max` characters of `charset`.
fn dotted(tail: &str, charset: Charset, min: usize, max: usize) -> Option<&str> {
    let text = tail.strip_prefix('.')?;
    charset.holds(text, min, max).then_some(text)
}

fn two_digits(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_prefix('.')?;
    let (group, rest) = (s.get(..2)?, s.get(2..)?);
    digits(group).then_some((group, rest))
}

const ID: &str = "https://id.gs1.org";

/// An EPC URI (the part after `urn:epc:`) as a Digital Link URI.
fn epc_uri(uri: &str) -> Option<String> {
    let (kind, body) = uri.split_once(':')?;
    let (scheme, body) = body.split_once(':')?;
    match (kind, scheme) {
        ("id", "sgtin") => {
            let (company, reference, tail) = keyed(body, 13)?;
            let serial = dotted(tail, Charset::Gs1, 1, 20)?;
            Some(format!(
                "{ID}/01/{}/21/{}",
                gtin(company, reference),
                percent_encode(serial)
            ))
        }
        ("id", "sscc") => {
            let (company, reference) = keyed_exactly(body, 17)?;
            let (extension, serial) = reference.split_at(1);
            let mut key = format!("{extension}{company}{serial}");
            key.push(check_digit(&key));
            Some(format!("{ID}/00/{key}"))
        }
        ("id", "sgln") => {
            let (company, reference, tail) = keyed(body, 12)?;
            let extension = dotted(tail, Charset::Gs1, 1, 20)?;
            let gln = with_check_digit(company, reference);
            match extension {
                "0" => Some(format!("{ID}/414/{gln}")),
                _ => Some(format!("{ID}/414/{gln}/254/{}", percent_encode(extension))),
            }
        }
        ("id", "grai") => {
            let (company, reference, tail) = keyed(body, 12)?;
            let serial = dotted(tail, Charset::Gs1, 1, 16)?;
            let key = with_check_digit(&format!("0{company}"), reference);
            Some(format!("{ID}/8003/{key}{}", percent_encode(serial)))
        }
        ("id", "giai") => {
            let (company, asset) = company_and_text(body, Charset::Gs1)?;
            Some(format!("{ID}/8004/{company}{}", percent_encode(asset)))
        }
        ("id", "gsrn") => {
            let (company, reference) = keyed_exactly(body, 17)?;
            Some(format!("{ID}/8018/{}", with_check_digit(company, reference)))
        }
        ("id", "gsrnp") => {
            let (company, reference) = keyed_exactly(body, 17)?;
            Some(format!("{ID}/8017/{}", with_check_digit(company, reference)))
        }
        ("id", "gdti") => {
            let (company, reference, tail) = keyed(body, 12)?;
            // A 12-digit company prefix leaves the document type empty; the
            // reference algorithm then wants at least one serial character.
            let serial = if reference.is_empty() {
                dotted(tail, Charset::Gs1, 1, 20)?
            } else {
                dotted(tail, Charset::Gs1, 0, 19)?
            };
            let key = with_check_digit(company, reference);
            Some(format!("{ID}/253/{key}{}", percent_encode(serial)))
        }
        ("id", "cpi") => {
            let (key, serial) = body.rsplit_once('.')?;
            let (company, part) = company_and_text(key, Charset::Cpi)?;
            let ok = (1..=12).contains(&serial.len()) && digits(serial);
            ok.then(|| {
                format!(
                    "{ID}/8010/{}/8011/{serial}",
                    percent_encode(&format!("{company}{part}"))
                )
            })
        }
        ("id", "sgcn") => {
            let (company, reference, tail) = keyed(body, 12)?;
            let serial = tail.strip_prefix('.')?;
            let ok = (1..=12).contains(&serial.len()) && digits(serial);
            ok.then(|| format!("{ID}/255/{}{serial}", with_check_digit(company, reference)))
        }
        ("id", "ginc") => {
            let (company, consignment) = company_and_text(body, Charset::Gs1)?;
            Some(format!("{ID}/401/{company}{}", percent_encode(consignment)))
        }
        ("id", "gsin") => {
            let (company, reference) = keyed_exactly(body, 16)?;
            Some(format!("{ID}/402/{}", with_check_digit(company, reference)))
        }
        ("id", "itip") => {
            let (company, reference, tail) = keyed(body, 13)?;
            let (piece, tail) = two_digits(tail)?;
            let (total, tail) = two_digits(tail)?;
            let serial = dotted(tail, Charset::Gs1, 1, 20)?;
            let key = gtin(company, reference);
            Some(format!("{ID}/8006/{key}{piece}{total}/21/{}", percent_encode(serial)))
        }
        ("id", "upui") => {
            let (company, reference, tail) = keyed(body, 13)?;
            let serial = dotted(tail, Charset::Gs1, 1, 28)?;
            Some(format!(
                "{ID}/01/{}/235/{}",
                gtin(company, reference),
                percent_encode(serial)
            ))
        }
        ("id", "pgln") => {
            let (company, reference) = keyed_exactly(body, 12)?;
            Some(format!("{ID}/417/{}", with_check_digit(company, reference)))
        }
        ("class", "lgtin") => {
            let (company, reference, tail) = keyed(body, 13)?;
            let lot = dotted(tail, Charset::Gs1, 1, 20)?;
            Some(format!(
                "{ID}/01/{}/10/{}",
                gtin(company, reference),
                percent_encode(lot)
            ))
        }
        ("idpat", "sgtin") | ("idpat", "upui") => {
            let (company, reference, tail) = keyed(body, 13)?;
            (tail == ".*").then(|| format!("{ID}/01/{}", gtin(company, reference)))
        }
        ("idpat", "grai") => {
            let (company, reference, tail) = keyed(body, 12)?;
            let key = with_check_digit(&format!("0{company}"), reference);
            (tail == ".*").then(|| format!("{ID}/8003/{key}"))
        }
        ("idpat", "gdti") => {
            let (company, reference, tail) = keyed(body, 12)?;
            (tail == ".*").then(|| format!("{ID}/253/{}", with_check_digit(company, reference)))
        }
        ("idpat", "sgcn") => {
            let (company, reference, tail) = keyed(body, 12)?;
            (tail == ".*").then(|| format!("{ID}/255/{}", with_check_digit(company, reference)))
        }
        ("idpat", "cpi") => {
            let key = body.strip_suffix(".*")?;
            let (company, part) = company_and_text(key, Charset::Cpi)?;
            Some(format!("{ID}/8010/{}", percent_encode(&format!("{company}{part}"))))
        }
        ("idpat", "itip") => {
            let (company, reference, tail) = keyed(body, 13)?;
            let (piece, tail) = two_digits(tail)?;
            let (total, tail) = two_digits(tail)?;
            (tail == ".*").then(|| format!("{ID}/8006/{}{piece}{total}", gtin(company, reference)))
        }
        _ => None,
    }
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the Digital Link patterns are fixed and tested")
}

/// Primary keys (and their short names) a Digital Link URI may start its
/// path with.
const KEYS: &str = "01|gtin|8006|itip|8010|cpid|414|gln|417|party|8017|gsrnp|8018|gsrn|255|gcn|00|sscc|253|gdti|401|ginc|402|gsin|8003|grai|8004|giai";

/// Characters the reference allows in alphanumeric key qualifiers.
const QUALIFIER: &str = r#"[\x22\x27\x2D\x2E0-9\x3B-\x3FA-Z_a-z]"#;

/// Short names of keys and key qualifiers, and the application identifiers
/// that replace them.
const SHORT_NAMES: [(&str, &str); 17] = [
    ("/gtin/", "/01/"),
    ("/itip/", "/8006/"),
    ("/cpid/", "/8010/"),
    ("/gln/", "/414/"),
    ("/party/", "/417/"),
    ("/gsrnp/", "/8017/"),
    ("/gsrn/", "/8018/"),
    ("/gcn/", "/255/"),
    ("/sscc/", "/00/"),
    ("/gdti/", "/253/"),
    ("/ginc/", "/401/"),
    ("/gsin/", "/402/"),
    ("/grai/", "/8003/"),
    ("/giai/", "/8004/"),
    ("/cpv/", "/22/"),
    ("/lot/", "/10/"),
    ("/ser/", "/21/"),
];

/// Keys a path on another domain is cut at, in this order of preference.
const PRIMARY: [&str; 14] = [
    "/00/", "/01/", "/253/", "/255/", "/401/", "/402/", "/414/", "/417/", "/8003/", "/8004/", "/8006/", "/8010/",
    "/8017/", "/8018/",
];

/// A Digital Link URI: a key's path segment, then at least five characters.
static CANDIDATE: LazyLock<Regex> = LazyLock::new(|| regex(&format!(r"^https?:[^?#]*/({KEYS})/\d{{4}}[^/]")));

static CANONICAL: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"^https://id\.gs1\.org/(01|8006|8010|414|417|8017|8018|255|00|253|401|402|8003|8004)/\d{4}[^/]")
});

static GTIN_14: LazyLock<Regex> = LazyLock::new(|| regex(r"^https://id\.gs1\.org/01/\d{14}"));
static GTIN_13: LazyLock<Regex> = LazyLock::new(|| regex(r"^https://id\.gs1\.org/01/\d{13}"));
static GTIN_12: LazyLock<Regex> = LazyLock::new(|| regex(r"^https://id\.gs1\.org/01/\d{12}"));
static GTIN_8: LazyLock<Regex> = LazyLock::new(|| regex(r"^https://id\.gs1\.org/01/\d{8}"));

/// A GTIN (or ITIP) with a CPV as the URI's last qualifier.
static LAST_CPV: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"^https://id\.gs1\.org/(8006/\d{{18}}|01/\d{{14}})/22/{QUALIFIER}{{0,20}}$"
    ))
});

/// A GTIN (or ITIP) with a CPV followed by further qualifiers.
static INNER_CPV: LazyLock<Regex> = LazyLock::new(|| {
    regex(r#"^https://id\.gs1\.org/(8006/\d{18}|01/\d{14})/22/[\x22\x27\x2D-\x2F0-9\x3B-\x3FA-Z_a-z]{0,20}$"#)
});

/// A GTIN (or ITIP) with both a lot and a serial.
static LOT_AND_SERIAL: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"^https://id\.gs1\.org/(8006/\d{{18}}|01/\d{{14}})/10/{QUALIFIER}{{0,20}}/21/{QUALIFIER}{{0,20}}$"
    ))
});

/// The constrained canonical Digital Link URIs the hash accepts.
static CONSTRAINED: LazyLock<Regex> = LazyLock::new(|| {
    let q = QUALIFIER;
    let cpi = r"[#\-/0-9A-Z]";
    regex(&format!(
        "^https://id\\.gs1\\.org/(?:\
         00/\\d{{18}}\
         |01/\\d{{14}}(?:/21/{q}{{0,20}}|/10/{q}{{0,20}}|/235/{q}{{0,28}})?\
         |253/\\d{{13}}{q}{{0,17}}\
         |255/\\d{{13}}\\d{{0,12}}\
         |401/{q}{{0,30}}\
         |402/\\d{{17}}\
         |414/\\d{{13}}(?:/254/{q}{{0,20}})?\
         |417/\\d{{13}}\
         |8003/\\d{{14}}{q}{{0,16}}\
         |8004/{q}{{0,30}}\
         |8006/\\d{{18}}(?:/21/{q}{{0,20}}|/10/{q}{{0,20}})?\
         |8010/{cpi}{{0,30}}(?:/8011/\\d{{0,12}})?\
         |8017/\\d{{18}}\
         |8018/\\d{{18}}\
         )$"
    ))
});

/// A Digital Link URI as a constrained canonical one.
fn digital_link(uri: &str) -> Option<String> {
    if !CANDIDATE.is_match(uri) {
        return None;
    }
    let mut uri = uri.split('?').next().unwrap_or_default().to_string();
    for (short, ai) in SHORT_NAMES {
        uri = uri.replace(short, ai);
    }
    if !CANONICAL.is_match(&uri) {
        if let Some(at) = PRIMARY.iter().find_map(|key| uri.find(key)) {
            uri = format!("{ID}{}", &uri[at..]);
        }
    }
    if !GTIN_14.is_match(&uri) {
        let padding = if GTIN_13.is_match(&uri) {
            "0"
        } else if GTIN_12.is_match(&uri) {
            "00"
        } else if GTIN_8.is_match(&uri) {
            "000000"
        } else {
            ""
        };
        if !padding.is_empty() {
            uri = uri.replace("/01/", &format!("/01/{padding}"));
        }
    }
    if let Some(cpv) = uri.find("/22/") {
        let after = &uri[cpv + 4..];
        if LAST_CPV.is_match(&uri) {
            uri.truncate(cpv);
        } else if INNER_CPV.is_match(&uri) {
            if let Some(slash) = after.find('/') {
                uri = format!("{}{}", &uri[..cpv], &after[slash..]);
            }
        }
    }
    if LOT_AND_SERIAL.is_match(&uri) {
        if let Some(lot) = uri.find("/10/") {
            if let Some(slash) = uri[lot + 4..].find('/') {
                uri.replace_range(lot..lot + 4 + slash, "");
            }
        }
    }
    CONSTRAINED.is_match(&uri).then_some(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dl(uri: &str) -> Option<String> {
        normalise(uri)
    }

    #[test]
    fn check_digits_follow_gs1() {
        assert_eq!(check_digit("0950600013435"), '2');
        assert_eq!(check_digit("401234500000"), '9');
        assert_eq!(check_digit("1061414107346"), '4');
    }

    #[test]
    fn epc_uris_become_digital_link() {
        let cases = [
            (
                "urn:epc:id:sgtin:0614141.107346.2017",
                "https://id.gs1.org/01/10614141073464/21/2017",
            ),
            (
                "urn:epc:id:sgtin:415056789012.0.987654",
                "https://id.gs1.org/01/04150567890128/21/987654",
            ),
            (
                "urn:epc:id:sgtin:0614141.812345.6789%2F%26%25%22!%3F()",
                "https://id.gs1.org/01/80614141123458/21/6789%2F%26%25%22%21%3F%28%29",
            ),
            (
                "urn:epc:id:sscc:4012345.0000000333",
                "https://id.gs1.org/00/040123450000003338",
            ),
            (
                "urn:epc:id:sgln:4012345.00011.987",
                "https://id.gs1.org/414/4012345000115/254/987",
            ),
            (
                "urn:epc:id:sgln:4012345.00005.0",
                "https://id.gs1.org/414/4012345000054",
            ),
            (
                "urn:epc:id:sgln:012345678901..7",
                "https://id.gs1.org/414/0123456789012/254/7",
            ),
            (
                "urn:epc:id:grai:4012345.00022.334455",
                "https://id.gs1.org/8003/04012345000221334455",
            ),
            ("urn:epc:id:giai:4000001.111", "https://id.gs1.org/8004/4000001111"),
            (
                "urn:epc:id:gdti:4012345.00009.PO-4711",
                "https://id.gs1.org/253/4012345000092PO-4711",
            ),
            (
                "urn:epc:id:gdti:987659999999..9",
                "https://id.gs1.org/253/98765999999929",
            ),
            ("urn:epc:id:pgln:999999999999.", "https://id.gs1.org/417/9999999999994"),
            (
                "urn:epc:id:cpi:0614141.11111111111111-A%23%2F.1234",
                "https://id.gs1.org/8010/061414111111111111111-A%23%2F/8011/1234",
            ),
            (
                "urn:epc:id:itip:4012345.011111.01.02.987",
                "https://id.gs1.org/8006/040123451111180102/21/987",
            ),
            (
                "urn:epc:class:lgtin:4054739.099914.20160711",
                "https://id.gs1.org/01/04054739999148/10/20160711",
            ),
            (
                "urn:epc:idpat:sgtin:4012345.066666.*",
                "https://id.gs1.org/01/04012345666663",
            ),
            (
                "urn:epc:idpat:itip:4012345.012345.01.02.*",
                "https://id.gs1.org/8006/040123451234560102",
            ),
        ];
        for (urn, expected) in cases {
            assert_eq!(dl(urn).as_deref(), Some(expected), "{urn}");
        }
    }

    #[test]
    fn malformed_epc_uris_stay_as_they_are() {
        for urn in [
            "urn:epc:id:sgtin:0614141.10734.2017",        // 12 digits, not 13
            "urn:epc:id:sgtin:0614141.107346.",           // no serial
            "urn:epc:id:sgtin:0614141.107346.a%20b",      // %20 is no GS1 character
            "urn:epc:id:sgtin:0614141.107346.a%2",        // a cut escape
            "urn:epc:id:sscc:4012345.000000033",          // 16 digits, not 17
            "urn:epc:id:sgln:12345.1234567.0",            // 5-digit company prefix
            "urn:epc:id:unknown:4012345.00011.987",       // no such scheme
            "urn:epc:idpat:sgtin:4012345.066666.12",      // a pattern needs `*`
            "urn:epc:id:itip:4012345.011111.1.02.987",    // piece of one digit
            "urn:epc:id:sgtin:0614141.107346.2017\u{e9}", // non-ASCII
        ] {
            assert_eq!(dl(urn), None, "{urn}");
        }
    }

    #[test]
    fn digital_links_become_constrained_canonical() {
        let cases = [
            (
                "https://example.com/gtin/09780345418913/21/765tz?abc=211121",
                "https://id.gs1.org/01/09780345418913/21/765tz",
            ),
            (
                "https://id.gs1.org/gtin/09780345418913",
                "https://id.gs1.org/01/09780345418913",
            ),
            (
                "https://id.gs1.de/414/4012345000115",
                "https://id.gs1.org/414/4012345000115",
            ),
            (
                "http://id.example.com/8003/040123450007718765",
                "https://id.gs1.org/8003/040123450007718765",
            ),
            (
                "https://id.gs1.org/01/9780345418913",
                "https://id.gs1.org/01/09780345418913",
            ),
            (
                "https://id.gs1.org/01/09780345418913/10/LOT1/21/S1",
                "https://id.gs1.org/01/09780345418913/21/S1",
            ),
            (
                "https://id.gs1.org/01/09780345418913/22/CPV",
                "https://id.gs1.org/01/09780345418913",
            ),
            (
                "https://id.gs1.org/01/09780345418913/22/CPV/21/S1",
                "https://id.gs1.org/01/09780345418913/21/S1",
            ),
            (
                "https://brand.example/a/b/00/340123451111111111",
                "https://id.gs1.org/00/340123451111111111",
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(dl(uri).as_deref(), Some(expected), "{uri}");
        }
    }

    #[test]
    fn other_uris_have_no_canonical_form() {
        for uri in [
            "http://transaction.acme.com/po/12345678",
            "https://id.gs1.org/01/97803454189", // 11 digits: padded as a GTIN-8 to 17
            "https://id.gs1.org/01/09780345418913/21/a%2F", // % is outside the qualifier characters
            "geo:47.506694,11.104301",
            "https://ref.gs1.org/cbv/BizStep-shipping",
            "https://id.gs1.org/ABCDEFGHIJ",
            "",
            "https://id.gs1.org/01/0978\u{e9}034541891",
        ] {
            assert_eq!(dl(uri), None, "{uri}");
        }
    }
}
