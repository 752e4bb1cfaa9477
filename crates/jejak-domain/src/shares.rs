//! Exact origin shares: fractions of a lot attributable to each origin, and
//! their rounding for display by the largest-remainder method, so the shown
//! percentages always add up to exactly 100.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

pub type Fraction = BigRational;

/// `num / den` as an exact fraction; `den` must not be zero.
pub fn fraction(num: i128, den: i128) -> Option<Fraction> {
    (den != 0).then(|| BigRational::new(BigInt::from(num), BigInt::from(den)))
}

/// An exact fraction from a decimal (e.g. a quantity in base units).
pub fn from_decimal(d: rust_decimal::Decimal) -> Fraction {
    let scale = d.scale();
    let mantissa = d.mantissa();
    BigRational::new(BigInt::from(mantissa), BigInt::from(10u8).pow(scale))
}

/// "3/8", or "1" for a whole.
pub fn format_fraction(f: &Fraction) -> String {
    if f.denom().is_one() {
        f.numer().to_string()
    } else {
        format!("{}/{}", f.numer(), f.denom())
    }
}

/// Rounds fractions that sum to one into percentages with `decimals`
/// places whose sum is exactly 100: every share is floored to the display
/// precision, and the units left over go to the largest remainders (earlier
/// entries win ties, so the result is deterministic).
pub fn largest_remainder(shares: &[Fraction], decimals: u32) -> Vec<String> {
    if shares.is_empty() {
        return Vec::new();
    }
    let units = BigInt::from(100) * BigInt::from(10).pow(decimals);
    let total: Fraction = shares.iter().cloned().sum();
    let scaled: Vec<Fraction> = shares
        .iter()
        .map(|s| {
            if total.is_zero() {
                Fraction::zero()
            } else {
                s / &total * Fraction::from_integer(units.clone())
            }
        })
        .collect();
    let mut floors: Vec<BigInt> = scaled.iter().map(|s| s.floor().to_integer()).collect();
    let assigned: BigInt = floors.iter().sum();
    let mut left = (&units - assigned).to_usize().unwrap_or(0);
    if !total.is_zero() {
        let mut order: Vec<usize> = (0..shares.len()).collect();
        order.sort_by(|&a, &b| {
            let ra = scaled[a].fract();
            let rb = scaled[b].fract();
            rb.cmp(&ra).then(a.cmp(&b))
        });
        for i in order {
            if left == 0 {
                break;
            }
            floors[i] += 1;
            left -= 1;
        }
    }
    floors.into_iter().map(|u| format_units(&u, decimals)).collect()
}

/// Rounds approximate shares into whole percentages that sum to exactly
/// 100 by the same largest-remainder rule (earlier entries win ties); for
/// those who may not see exact shares, at the cost of one float pass.
pub fn whole_percentages(shares: &[f64]) -> Vec<String> {
    let total: f64 = shares.iter().filter(|s| s.is_finite() && **s > 0.0).sum();
    if shares.is_empty() || total <= 0.0 {
        return shares.iter().map(|_| "0".to_string()).collect();
    }
    let scaled: Vec<f64> = shares
        .iter()
        .map(|s| {
            if s.is_finite() && *s > 0.0 {
                s / total * 100.0
            } else {
                0.0
            }
        })
        .collect();
    let mut whole: Vec<u32> = scaled.iter().map(|s| s.floor() as u32).collect();
    let mut left = 100u32.saturating_sub(whole.iter().sum());
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (scaled[a] - scaled[a].floor(), scaled[b] - scaled[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for i in order {
        if left == 0 {
            break;
        }
        whole[i] += 1;
        left -= 1;
    }
    whole.into_iter().map(|w| w.to_string()).collect()
}

fn format_units(units: &BigInt, decimals: u32) -> String {
    let neg = units.is_negative();
    let digits = units.abs().to_string();
    let d = decimals as usize;
    let body = if d == 0 {
        digits
    } else if digits.len() <= d {
        format!("0.{}{}", "0".repeat(d - digits.len()), digits)
    } else {
        let (i, f) = digits.split_at(digits.len() - d);
        format!("{i}.{f}")
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_percentages_sum_to_100_and_earlier_entries_win_ties() {
        let third = 1.0 / 3.0;
        assert_eq!(whole_percentages(&[third, third, third]), ["34", "33", "33"]);
        assert_eq!(whole_percentages(&[0.5, 0.25, 0.25]), ["50", "25", "25"]);
        assert_eq!(whole_percentages(&[0.996, 0.004]), ["100", "0"]);
        assert_eq!(whole_percentages(&[0.0, 0.0]), ["0", "0"]);
        assert!(whole_percentages(&[]).is_empty());
    }

    proptest! {
        #[test]
        fn whole_percentages_always_sum_to_100(shares in proptest::collection::vec(0.0f64..1.0, 1..40)) {
            prop_assume!(shares.iter().sum::<f64>() > 0.0);
            let sum: u32 = whole_percentages(&shares).iter().map(|p| p.parse::<u32>().unwrap_or(1000)).sum();
            prop_assert_eq!(sum, 100);
        }
    }

    fn f(n: i128, d: i128) -> Fraction {
        fraction(n, d).unwrap()
    }

    #[test]
    fn thirds_sum_to_100() {
        let p = largest_remainder(&[f(1, 3), f(1, 3), f(1, 3)], 2);
        assert_eq!(p, ["33.34", "33.33", "33.33"]);
    }

    #[test]
    fn exact_shares_are_kept() {
        let p = largest_remainder(&[f(3, 8), f(5, 8)], 2);
        assert_eq!(p, ["37.50", "62.50"]);
        assert_eq!(format_fraction(&f(6, 16)), "3/8");
        assert_eq!(format_fraction(&f(4, 4)), "1");
        assert_eq!(largest_remainder(&[f(1, 1)], 2), ["100.00"]);
    }

    proptest! {
        #[test]
        fn always_sums_to_exactly_100(weights in proptest::collection::vec(1i128..1_000_000, 1..30)) {
            let total: i128 = weights.iter().sum();
            let shares: Vec<Fraction> = weights.iter().map(|w| f(*w, total)).collect();
            let p = largest_remainder(&shares, 2);
            let sum: i64 = p.iter().map(|s| s.replace('.', "").parse::<i64>().unwrap()).sum();
            prop_assert_eq!(sum, 10_000);
            // No share moves by more than one display unit.
            for (s, shown) in shares.iter().zip(&p) {
                let shown = f(shown.replace('.', "").parse::<i128>().unwrap(), 10_000);
                let diff = (s - shown).abs();
                prop_assert!(diff < f(1, 10_000));
            }
        }
    }
}
