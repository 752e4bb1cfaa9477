//! Quantities and units from arbitrary text: never panic; an accepted amount
//! is positive, prints back to itself, and converts within its dimension
//! without loss of its base amount.
#![no_main]

use jejak_domain::{Quantity, Unit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let _ = text.parse::<Unit>();
    let unit = Unit::ALL[usize::from(selector) % Unit::ALL.len()];
    let Ok(q) = Quantity::parse("quantity", text, unit) else {
        return;
    };
    assert!(q.value() > jejak_domain::Decimal::ZERO);
    let again = Quantity::parse("quantity", &q.value().to_string(), unit).expect("prints back");
    assert_eq!(again, q);
    for to in Unit::ALL {
        if let Ok(c) = q.convert(to) {
            assert_eq!(c.dimension(), q.dimension());
            assert_eq!(c.to_base(), q.to_base(), "{q:?} -> {to:?}");
        }
    }
});
