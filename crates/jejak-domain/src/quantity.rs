//! Exact quantities with units: decimal amounts (never floats), units grouped
//! into dimensions, and exact conversions within a dimension.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::error::DomainError;

/// What a unit measures; only units of one dimension convert into each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Mass,
    Count,
    Length,
    Area,
    Volume,
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dimension::Mass => "mass",
            Dimension::Count => "count",
            Dimension::Length => "length",
            Dimension::Area => "area",
            Dimension::Volume => "volume",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    Kg,
    G,
    T,
    Pcs,
    M,
    M2,
    M3,
    L,
}

impl Unit {
    pub const ALL: [Unit; 8] = [
        Unit::Kg,
        Unit::G,
        Unit::T,
        Unit::Pcs,
        Unit::M,
        Unit::M2,
        Unit::M3,
        Unit::L,
    ];

    pub fn dimension(self) -> Dimension {
        match self {
            Unit::Kg | Unit::G | Unit::T => Dimension::Mass,
            Unit::Pcs => Dimension::Count,
            Unit::M => Dimension::Length,
            Unit::M2 => Dimension::Area,
            Unit::M3 | Unit::L => Dimension::Volume,
        }
    }

    /// How many base units (kg, pcs, m, m², m³) one of this unit is; exact.
    fn to_base_factor(self) -> Decimal {
        match self {
            Unit::Kg | Unit::Pcs | Unit::M | Unit::M2 | Unit::M3 => Decimal::ONE,
            Unit::G | Unit::L => Decimal::new(1, 3),
            Unit::T => Decimal::new(1000, 0),
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Kg => "kg",
            Unit::G => "g",
            Unit::T => "t",
            Unit::Pcs => "pcs",
            Unit::M => "m",
            Unit::M2 => "m²",
            Unit::M3 => "m³",
            Unit::L => "l",
        }
    }

    /// The base unit of this unit's dimension.
    pub fn base(self) -> Unit {
        match self.dimension() {
            Dimension::Mass => Unit::Kg,
            Dimension::Count => Unit::Pcs,
            Dimension::Length => Unit::M,
            Dimension::Area => Unit::M2,
            Dimension::Volume => Unit::M3,
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl FromStr for Unit {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "kg" => Unit::Kg,
            "g" => Unit::G,
            "t" => Unit::T,
            "pcs" | "pc" => Unit::Pcs,
            "m" => Unit::M,
            "m2" | "m²" => Unit::M2,
            "m3" | "m³" => Unit::M3,
            "l" => Unit::L,
            other => {
                return Err(DomainError::invalid(
                    "unit",
                    format!(
                        "unknown unit {}; use kg, g, t, pcs, m, m2, m3 or l",
                        crate::quote(other)
                    ),
                ))
            }
        })
    }
}

/// Largest number of decimal places accepted in a quantity.
pub const MAX_SCALE: u32 = 9;

/// A strictly positive or zero exact amount in a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quantity {
    value: Decimal,
    unit: Unit,
}

impl Quantity {
    /// A quantity from a decimal string such as "1250" or "4.75"; `field`
    /// names the request field in errors. Zero and negative amounts are refused.
    pub fn parse(field: &str, value: &str, unit: Unit) -> Result<Quantity, DomainError> {
        let value = parse_decimal(field, value)?;
        Quantity::new(field, value, unit)
    }

    pub fn new(field: &str, value: Decimal, unit: Unit) -> Result<Quantity, DomainError> {
        if value <= Decimal::ZERO {
            return Err(DomainError::invalid(
                field,
                format!("quantity must be greater than zero, got {value}"),
            ));
        }
        if value.scale() > MAX_SCALE {
            return Err(DomainError::invalid(
                field,
                format!("quantity {value} has more than {MAX_SCALE} decimal places"),
            ));
        }
        // Base-unit amounts must stay representable (t → kg multiplies by 1000).
        if value.checked_mul(Decimal::new(1000, 0)).is_none() {
            return Err(DomainError::invalid(field, "quantity is too large"));
        }
        Ok(Quantity {
            value: value.normalize(),
            unit,
        })
    }

    /// A quantity known to be valid (a balance, a sum of valid quantities).
    pub fn from_parts(value: Decimal, unit: Unit) -> Quantity {
        Quantity {
            value: value.normalize(),
            unit,
        }
    }

    pub fn value(&self) -> Decimal {
        self.value
    }

    pub fn unit(&self) -> Unit {
        self.unit
    }

    pub fn dimension(&self) -> Dimension {
        self.unit.dimension()
    }

    /// The amount in the base unit of the dimension; exact.
    pub fn to_base(&self) -> Decimal {
        (self.value * self.unit.to_base_factor()).normalize()
    }

    /// The same amount in another unit of the same dimension, exactly, or an
    /// error naming both units when no conversion is defined.
    pub fn convert(&self, to: Unit) -> Result<Quantity, DomainError> {
        if self.unit.dimension() != to.dimension() {
            return Err(DomainError::unit_mismatch(self.unit, to));
        }
        let base = self.to_base();
        let value = base
            .checked_div(to.to_base_factor())
            .ok_or_else(|| DomainError::invalid("quantity", "quantity is too large"))?;
        Ok(Quantity::from_parts(value, to))
    }
}

/// Converts an amount in a unit's base unit back into that unit; exact for
/// every unit jejak knows.
pub fn from_base(base: Decimal, unit: Unit) -> Decimal {
    (base / unit.to_base_factor()).normalize()
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.value, self.unit)
    }
}

/// Appends `d` as its `Display` writes it (sign, digits, and as many
/// fraction digits as its scale), without the formatting machinery: the
/// projection writes several for every lot it stores, and every event's
/// commitment one for each quantity.
pub fn push_decimal(out: &mut String, d: Decimal) {
    if d.is_sign_negative() {
        out.push('-');
    }
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(d.mantissa().unsigned_abs());
    let scale = d.scale() as usize;
    match digits.len().checked_sub(scale) {
        Some(0) | None => {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', scale - digits.len()));
            out.push_str(digits);
        }
        Some(whole) => {
            out.push_str(&digits[..whole]);
            if scale > 0 {
                out.push('.');
                out.push_str(&digits[whole..]);
            }
        }
    }
}

/// Appends `q` as its `Display` writes it (`12.5 kg`), without the
/// formatting machinery.
pub fn push_quantity(out: &mut String, q: &Quantity) {
    push_decimal(out, q.value);
    out.push(' ');
    out.push_str(q.unit.symbol());
}

/// Parses a plain decimal string: optional sign, digits, optional fraction.
/// Exponents, NaN, infinities, spaces and thousands separators are refused.
pub fn parse_decimal(field: &str, s: &str) -> Result<Decimal, DomainError> {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits_ok(int) || frac.is_some_and(|f| f.is_empty() || !digits_ok(f)) {
        return Err(DomainError::invalid(
            field,
            format!(
                "{} is not a decimal number (use digits with an optional '.' fraction, e.g. \"12.5\")",
                crate::quote(s)
            ),
        ));
    }
    if frac.map_or(0, str::len) > 18 || int.trim_start_matches('0').len() > 20 {
        return Err(DomainError::invalid(
            field,
            format!("{} has too many digits", crate::quote(s)),
        ));
    }
    Decimal::from_str_exact(s)
        .map_err(|e| DomainError::invalid(field, format!("{} is not a valid decimal: {e}", crate::quote(s))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(v: &str, u: Unit) -> Quantity {
        Quantity::parse("q", v, u).expect("valid quantity")
    }

    fn pushed(d: Decimal) -> String {
        let mut out = String::from("x");
        push_decimal(&mut out, d);
        out.split_off(1)
    }

    #[test]
    fn a_pushed_decimal_is_its_display_at_the_edges() {
        for (m, scale) in [
            (0i128, 0u32),
            (0, 2),
            (5, 2),
            (7, 1),
            (150, 2),
            (-150, 2),
            (-5, 3),
            (1, 28),
            (-1, 28),
            (79_228_162_514_264_337_593_543_950_335, 0),
            (-79_228_162_514_264_337_593_543_950_335, 28),
        ] {
            let d = Decimal::from_i128_with_scale(m, scale);
            assert_eq!(pushed(d), d.to_string(), "{m}e-{scale}");
        }
        // Negative zero, as arithmetic can leave it.
        let z = Decimal::from_i128_with_scale(-5, 2) + Decimal::from_i128_with_scale(5, 2);
        assert_eq!(pushed(z), z.to_string());
        let mut neg_zero = Decimal::from_i128_with_scale(0, 3);
        neg_zero.set_sign_negative(true);
        assert_eq!(pushed(neg_zero), neg_zero.to_string());
    }

    proptest! {
        #[test]
        fn a_pushed_decimal_is_its_display(
            m in -79_228_162_514_264_337_593_543_950_335i128..=79_228_162_514_264_337_593_543_950_335i128,
            scale in 0u32..=28,
        ) {
            let d = Decimal::from_i128_with_scale(m, scale);
            prop_assert_eq!(pushed(d), d.to_string());
        }

        #[test]
        fn a_pushed_small_decimal_is_its_display(m in -100_000i128..100_000, scale in 0u32..=8) {
            let d = Decimal::from_i128_with_scale(m, scale);
            prop_assert_eq!(pushed(d), d.to_string());
        }
    }

    #[test]
    fn a_pushed_quantity_is_its_display() {
        for (v, u) in [("12.5", Unit::Kg), ("0.003", Unit::T), ("7", Unit::Pcs)] {
            let q = q(v, u);
            let mut out = String::new();
            push_quantity(&mut out, &q);
            assert_eq!(out, q.to_string());
        }
    }

    #[test]
    fn converts_within_dimension_exactly() {
        assert_eq!(q("3.2", Unit::T).convert(Unit::Kg).unwrap(), q("3200", Unit::Kg));
        assert_eq!(
            q("1", Unit::G).convert(Unit::T).unwrap().value().to_string(),
            "0.000001"
        );
        assert_eq!(q("1500", Unit::L).to_base().to_string(), "1.5");
        assert_eq!(q("1", Unit::M3).convert(Unit::L).unwrap(), q("1000", Unit::L));
    }

    #[test]
    fn refuses_conversion_across_dimensions() {
        let err = q("5", Unit::Kg).convert(Unit::Pcs).unwrap_err();
        assert!(err.to_string().contains("kg"), "{err}");
        assert!(err.to_string().contains("pcs"), "{err}");
    }

    #[test]
    fn refuses_bad_amounts() {
        for bad in [
            "",
            "-1",
            "0",
            "0.0",
            "NaN",
            "inf",
            "1e3",
            "1,5",
            " 1",
            "1.",
            ".5",
            "1.0000000001",
        ] {
            assert!(Quantity::parse("quantity", bad, Unit::Kg).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn parses_units() {
        for u in Unit::ALL {
            let parsed: Unit = u.symbol().parse().unwrap();
            assert_eq!(parsed, u);
        }
        assert!("kgs".parse::<Unit>().is_err());
    }

    proptest! {
        #[test]
        fn conversion_round_trips(mantissa in 1i64..1_000_000_000_000, scale in 0u32..6, from in 0usize..8, to in 0usize..8) {
            let (from, to) = (Unit::ALL[from], Unit::ALL[to]);
            let qty = Quantity::new("q", Decimal::new(mantissa, scale), from).unwrap();
            match qty.convert(to) {
                Ok(c) => {
                    prop_assert_eq!(from.dimension(), to.dimension());
                    prop_assert_eq!(c.to_base(), qty.to_base());
                    prop_assert_eq!(c.convert(from).unwrap(), qty);
                }
                Err(_) => prop_assert_ne!(from.dimension(), to.dimension()),
            }
        }

        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = Quantity::parse("q", &s, Unit::Kg);
        }
    }
}
