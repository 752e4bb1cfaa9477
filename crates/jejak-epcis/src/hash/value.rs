//! One value of an event in its canonical text for the pre-hash string:
//! trimmed, old CBV URNs as Web URIs, numbers without trailing zeros,
//! GS1 identifiers as canonical Digital Link URIs, and time stamps in UTC
//! with millisecond precision.
//!
//! Numbers follow the reference algorithm, which reads any value that parses
//! as a floating-point number as one and prints it back in the shortest form
//! that reads the same (`1.50` → `1.5`, `+3` → `3`, `1e-5` → `1e-05`,
//! integral values as exact integers).
//!
//! **Invariant:** nothing here panics on any text; a value that has no
//! canonical form is an error naming the reason, never a guess.

use super::digital_link;

/// Why a value has no canonical form.
pub(super) type Problem = &'static str;

/// `text` without leading and trailing whitespace (Unicode white space and
/// the ASCII separators U+001C..U+001F, as the reference trims).
pub(super) fn trim(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Whether a field of this name holds a time stamp (`eventTime`, `time`,
/// `startTime`, …, but not `eventTimeZoneOffset`).
pub(super) fn is_time(name: &str) -> bool {
    let name = name.to_lowercase();
    name.contains("time") && !name.contains("offset")
}

/// The canonical text of a (trimmed) value that is not a time stamp.
pub(super) fn canonical(text: &str) -> Result<String, Problem> {
    let text = web_vocabulary(text);
    let text = match number(&text)? {
        Some(n) => n,
        None => text,
    };
    Ok(digital_link::normalise(&text).unwrap_or(text))
}

/// Old CBV 1.x URNs as CBV 2.0 Web URIs.
fn web_vocabulary(text: &str) -> String {
    const URNS: [(&str, &str); 5] = [
        ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"),
        ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
        ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
        ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
        ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
    ];
    URNS.iter().fold(text.to_string(), |t, (urn, uri)| t.replace(urn, uri))
}

/// The canonical text of a number, `None` if `text` is not one (NaN counts
/// as not a number: it stays as written).
fn number(text: &str) -> Result<Option<String>, Problem> {
    let Some(x) = parse_float(text) else {
        return Ok(None);
    };
    if x.is_nan() {
        Ok(None)
    } else if x.is_infinite() {
        Err("an infinite number has no canonical form")
    } else if x.fract() == 0.0 {
        Ok(Some(integer(x)))
    } else {
        Ok(Some(float_repr(x)))
    }
}

/// `text` as a floating-point number if it is one in the grammar the
/// reference reads (decimal with optional sign, fraction, exponent and `_`
/// between digits; `inf`, `infinity` and `nan` in any case).
fn parse_float(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if ["inf", "infinity", "nan"]
        .iter()
        .any(|w| unsigned.eq_ignore_ascii_case(w))
    {
        return text.parse().ok();
    }
    let b = unsigned.as_bytes();
    let mut i = 0;
    // Digits with single underscores between them; returns how many digits.
    let digits = |i: &mut usize| {
        let start = *i;
        let mut count = 0;
        while *i < b.len() {
            if b[*i].is_ascii_digit() {
                count += 1;
                *i += 1;
            } else if b[*i] == b'_' && *i > start && b.get(*i + 1).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            } else {
                break;
            }
        }
        count
    };
    let whole = digits(&mut i);
    let mut fraction = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        fraction = digits(&mut i);
    }
    if whole + fraction == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    text.replace('_', "").parse().ok()
}

/// An integral finite `x` as the exact integer it is.
fn integer(x: f64) -> String {
    if x.abs() < 9.0e18 {
        return format!("{}", x as i64);
    }
    // x = mantissa * 2^exponent exactly, with exponent > 0 here.
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1075;
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    // Base 10^9 limbs, least significant first.
    const BASE: u64 = 1_000_000_000;
    let mut limbs = vec![mantissa % BASE, mantissa / BASE % BASE, mantissa / BASE / BASE];
    let mut left = exponent;
    while left > 0 {
        let shift = left.min(32);
        let mut carry = 0u64;
        for limb in &mut limbs {
            let v = (*limb << shift) + carry;
            *limb = v % BASE;
            carry = v / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
        left -= shift;
    }
    while limbs.len() > 1 && limbs.last() == Some(&0) {
        limbs.pop();
    }
    let mut out = String::from(if x < 0.0 { "-" } else { "" });
    let mut rest = limbs.iter().rev();
    if let Some(first) = rest.next() {
        out.push_str(&first.to_string());
    }
    for limb in rest {
        out.push_str(&format!("{limb:09}"));
    }
    out
}

/// A finite `x` as the reference prints a floating-point number: the
/// shortest digits that read back as `x`, positional from 1e-4 up to 1e16
/// (always with a fraction, `26.0`), scientific outside (`1e-05`, `1e+16`).
pub(super) fn float_repr(x: f64) -> String {
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x == 0.0 {
        return format!("{sign}0.0");
    }
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..16).contains(&exponent) {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exp_sign}{:02}", exponent.unsigned_abs());
    }
    // The number of digits before the decimal point.
    let point = exponent + 1;
    if point <= 0 {
        let zeros = "0".repeat(point.unsigned_abs() as usize);
        format!("{sign}0.{zeros}{digits}")
    } else {
        let point = point as usize;
        if point >= digits.len() {
            format!("{sign}{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..point], &digits[point..])
        }
    }
}

/// An ISO 8601 date-time with a time zone as `YYYY-MM-DDTHH:MM:SS.sssZ` in
/// UTC. Fractions beyond milliseconds round half up on the fourth decimal
/// (`.1415` → `.142`, `.9996` carries into the next second).
pub(super) fn utc_millis(text: &str) -> Result<String, Problem> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = b.get(from..from + len)?;
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    const SHAPE: Problem = "not an ISO 8601 date-time (YYYY-MM-DDThh:mm:ss with a time zone)";
    let (Some(year), Some(month), Some(day)) = (num(0, 4), num(5, 2), num(8, 2)) else {
        return Err(SHAPE);
    };
    let (Some(hour), Some(minute), Some(second)) = (num(11, 2), num(14, 2), num(17, 2)) else {
        return Err(SHAPE);
    };
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return Err(SHAPE);
    }
    let mut i = 19;
    let mut millis = 0;
    if at(i, b".,") {
        i += 1;
        let start = i;
        while at(i, b"0123456789") {
            i += 1;
        }
        let fraction = &b[start..i];
        if fraction.is_empty() {
            return Err(SHAPE);
        }
        for k in 0..3 {
            millis = millis * 10 + fraction.get(k).map_or(0, |d| i64::from(d - b'0'));
        }
        if fraction.get(3).is_some_and(|d| *d >= b'5') {
            millis += 1;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let zone = &text[i + 1..];
            let (h, m) = match zone.len() {
                2 => (num(i + 1, 2), Some(0)),
                4 => (num(i + 1, 2), num(i + 3, 2)),
                5 if at(i + 3, b":") => (num(i + 1, 2), num(i + 4, 2)),
                _ => return Err(SHAPE),
            };
            let (Some(h), Some(m)) = (h, m) else {
                return Err(SHAPE);
            };
            if h > 23 || m > 59 {
                return Err("time zone offset out of range");
            }
            let minutes = h * 60 + m;
            if sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        None => return Err("no time zone (an EPCIS time stamp needs Z or an offset)"),
        _ => return Err(SHAPE),
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("no such date");
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err("no such time of day");
    }
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let utc_millis = (local - offset * 60) * 1000 + millis;
    let (days, ms_of_day) = (utc_millis.div_euclid(86_400_000), utc_millis.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    if !(1..=9999).contains(&year) {
        return Err("outside the years 0001 to 9999 in UTC");
    }
    let (s, ms) = (ms_of_day / 1000, ms_of_day % 1000);
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    ))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_stamps_become_utc_milliseconds() {
        let cases = [
            ("2022-02-16T20:33:31.116000-06:00", "2022-02-17T02:33:31.116Z"),
            ("2019-10-21T14:45:00Z", "2019-10-21T14:45:00.000Z"),
            ("2020-03-04T11:00:30+01:00", "2020-03-04T10:00:30.000Z"),
            ("2020-01-01T00:30:00+01:00", "2019-12-31T23:30:00.000Z"),
            ("2019-12-31T23:30:00-01:30", "2020-01-01T01:00:00.000Z"),
            ("2024-02-29T23:00:00-02:00", "2024-03-01T01:00:00.000Z"),
            ("2023-03-01T00:15:00+0100", "2023-02-28T23:15:00.000Z"),
            ("2023-03-01T00:15:00+01", "2023-02-28T23:15:00.000Z"),
            ("2023-01-18T11:04:03.1415Z", "2023-01-18T11:04:03.142Z"),
            ("2023-01-18T11:04:03.1414Z", "2023-01-18T11:04:03.141Z"),
            ("2023-01-18T11:04:03.1Z", "2023-01-18T11:04:03.100Z"),
            ("2023-12-31T23:59:59.9996Z", "2024-01-01T00:00:00.000Z"),
            ("2023-01-18t11:04:03z", "2023-01-18T11:04:03.000Z"),
        ];
        for (given, expected) in cases {
            assert_eq!(utc_millis(given).as_deref(), Ok(expected), "{given}");
        }
    }

    #[test]
    fn time_stamps_without_zone_or_date_are_refused() {
        for text in [
            "2019-10-21T14:45:00",
            "2019-10-21",
            "2019-02-29T00:00:00Z",
            "2019-10-21T24:00:00Z",
            "2019-10-21T14:45:00+25:00",
            "2019-10-21T14:45:00.Z",
            "2019-10-21T14:45:00Z junk",
            "0001-01-01T00:00:00+01:00",
            "",
            "2019-10-21T14:45:00+01:0\u{e9}",
        ] {
            assert!(utc_millis(text).is_err(), "{text}");
        }
    }

    #[test]
    fn numbers_lose_trailing_zeros() {
        let cases = [
            ("1.0", "1"),
            ("1.50", "1.5"),
            ("+3", "3"),
            ("-0.0", "0"),
            ("452.0", "452"),
            ("0.3434000", "0.3434"),
            ("1e-5", "1e-05"),
            ("0.0001", "0.0001"),
            ("1_000", "1000"),
            ("1e16", "10000000000000000"),
            ("12345678901234567890", "12345678901234567168"),
            ("1e300", "1000000000000000052504760255204420248704468581108159154915854115511802457988908195786371375080447864043704443832883878176942523235360430575644792184786706982848387200926575803737830233794788090059368953234970799945081119038967640880074652742780142494579258788820056842838115669472196386865459400540160"),
            ("42.698334", "42.698334"),
            (".5", "0.5"),
            ("5.", "5"),
        ];
        for (given, expected) in cases {
            assert_eq!(canonical(given).as_deref(), Ok(expected), "{given}");
        }
        for text in [
            "nan",
            "NaN",
            "1_",
            "_1",
            "1__0",
            "1e",
            "e5",
            ".",
            "0x10",
            "1.2.3",
            "2019-10-21",
            "A93",
        ] {
            assert_eq!(canonical(text).as_deref(), Ok(text), "{text}");
        }
        assert!(canonical("inf").is_err());
        assert!(canonical("-Infinity").is_err());
        assert!(canonical("1e400").is_err());
    }

    #[test]
    fn floats_print_as_the_reference_prints_them() {
        let cases = [
            (26.0, "26.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (0.00001, "1e-05"),
            (1.234e-7, "1.234e-07"),
            (1e100, "1e+100"),
            (-0.0, "-0.0"),
        ];
        for (x, expected) in cases {
            assert_eq!(float_repr(x), expected, "{x}");
        }
    }

    #[test]
    fn old_cbv_urns_become_web_uris() {
        assert_eq!(
            canonical("urn:epcglobal:cbv:bizstep:receiving").as_deref(),
            Ok("https://ref.gs1.org/cbv/BizStep-receiving")
        );
        assert_eq!(
            canonical("urn:epcglobal:cbv:disp:in_transit").as_deref(),
            Ok("https://ref.gs1.org/cbv/Disp-in_transit")
        );
        assert_eq!(
            canonical("urn:epcglobal:cbv:bt:0614141073467:1152").as_deref(),
            Ok("urn:epcglobal:cbv:bt:0614141073467:1152")
        );
    }

    #[test]
    fn trimming_matches_the_reference() {
        assert_eq!(trim(" \t\u{a0}x y\u{1f}\n"), "x y");
    }
}
