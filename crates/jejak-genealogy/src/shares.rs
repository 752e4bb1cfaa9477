//! Origin shares, computed from a copy of a lot's ancestry ([`ShareInput`])
//! rather than under the genealogy's lock: exact shares of a long blending
//! chain take long (their denominators grow with every step), and nobody
//! else should wait for them.
//!
//! One pass from the lot down its ancestry: each transformation passes its
//! share on to its inputs in proportion to the quantities it consumed, so
//! the cost is one multiplication and one addition per input edge whatever
//! the genealogy's shape.

use std::collections::HashMap;

use jejak_domain::read::{Named, OriginShares, Share};
use jejak_domain::shares::{self, Fraction};
use jejak_domain::Decimal;
use num_traits::One;

use crate::query::LotParties;
use crate::GenealogyError;

/// One lot of an ancestry, as shares need it.
#[derive(Debug, Clone)]
pub(crate) struct ShareLot {
    /// Inputs that carry a share (index in the ancestry, quantity consumed).
    pub(crate) inputs: Vec<(usize, Decimal)>,
    pub(crate) facility: String,
    pub(crate) owner: Named,
    pub(crate) supplier: Option<Named>,
    /// The lot itself, named "product (owner)".
    pub(crate) receipt: Named,
}

/// A lot's ancestry, the lot first and every lot before its inputs.
#[derive(Debug, Clone)]
pub struct ShareInput {
    pub(crate) lot_id: String,
    pub(crate) lots: Vec<ShareLot>,
}

/// How often a long computation checks whether it is still wanted.
const CHECK_EVERY: usize = 64;

impl ShareInput {
    /// The lot whose shares these are.
    pub fn lot_id(&self) -> &str {
        &self.lot_id
    }

    /// Each lot's facility, owner and supplier, to decide whether a caller
    /// sees the whole ancestry (and so may have exact shares).
    pub fn parties(&self) -> impl Iterator<Item = LotParties<'_>> + '_ {
        self.lots.iter().map(|l| {
            (
                l.facility.as_str(),
                l.owner.id.as_str(),
                l.supplier.as_ref().map(|s| s.id.as_str()),
            )
        })
    }

    /// The shares by UKM, supplier and receipt lot: exact fractions with
    /// two-decimal percentages, or (not `exact`) whole percentages from one
    /// floating-point pass, which reveal no quantity exactly. Stops with
    /// [`GenealogyError::Cancelled`] once `cancelled` says nobody waits.
    pub fn shares(&self, exact: bool, cancelled: &dyn Fn() -> bool) -> Result<OriginShares, GenealogyError> {
        if exact {
            self.shares_as::<Fraction>(cancelled)
        } else {
            self.shares_as::<f64>(cancelled)
        }
    }

    /// The receipt lots' weights (lots without inputs).
    fn composition<W: Weight>(&self, cancelled: &dyn Fn() -> bool) -> Result<Vec<(usize, W)>, GenealogyError> {
        let mut weight: Vec<Option<W>> = vec![None; self.lots.len()];
        if let Some(first) = weight.first_mut() {
            *first = Some(W::one());
        }
        let mut leaves = Vec::new();
        for (i, lot) in self.lots.iter().enumerate() {
            if i % CHECK_EVERY == 0 && cancelled() {
                return Err(GenealogyError::Cancelled);
            }
            let Some(w) = weight[i].take() else {
                continue;
            };
            if lot.inputs.is_empty() {
                leaves.push((i, w));
                continue;
            }
            let total: Decimal = lot.inputs.iter().map(|(_, q)| *q).sum();
            if total.is_zero() {
                continue;
            }
            for &(input, q) in &lot.inputs {
                let part = w.times(q, total);
                match &mut weight[input] {
                    Some(acc) => acc.add(&part),
                    slot @ None => *slot = Some(part),
                }
            }
        }
        Ok(leaves)
    }

    fn shares_as<W: Weight>(&self, cancelled: &dyn Fn() -> bool) -> Result<OriginShares, GenealogyError> {
        let comp = self.composition::<W>(cancelled)?;
        let group = |key: &dyn Fn(&ShareLot) -> Named| {
            let mut m: HashMap<String, (String, W)> = HashMap::new();
            for (i, w) in &comp {
                let Named { id, name } = key(&self.lots[*i]);
                match m.get_mut(&id) {
                    Some((_, acc)) => acc.add(w),
                    None => {
                        m.insert(id, (name, w.clone()));
                    }
                }
            }
            let mut v: Vec<(String, (String, W))> = m.into_iter().collect();
            v.sort_by(|a, b| b.1 .1.order(&a.1 .1).then_with(|| a.0.cmp(&b.0)));
            let weights: Vec<W> = v.iter().map(|(_, (_, w))| w.clone()).collect();
            v.into_iter()
                .zip(W::percents(&weights))
                .map(|((id, (name, w)), percent)| Share {
                    id,
                    name,
                    fraction: w.exact(),
                    percent,
                })
                .collect::<Vec<_>>()
        };
        Ok(OriginShares {
            lot_id: self.lot_id.clone(),
            by_ukm: group(&|l| l.owner.clone()),
            by_supplier: group(&|l| l.supplier.clone().unwrap_or_default()),
            by_receipt: group(&|l| l.receipt.clone()),
        })
    }
}

/// A share as the composition passes it down: exact, or a float.
trait Weight: Sized + Clone {
    fn one() -> Self;
    /// This weight times `part / total`.
    fn times(&self, part: Decimal, total: Decimal) -> Self;
    fn add(&mut self, other: &Self);
    fn order(&self, other: &Self) -> std::cmp::Ordering;
    /// The percentages shown for a list of weights.
    fn percents(list: &[Self]) -> Vec<String>;
    /// The weight as an exact fraction, if it is one.
    fn exact(self) -> Option<Fraction>;
}

impl Weight for Fraction {
    fn one() -> Self {
        <Fraction as One>::one()
    }

    fn times(&self, part: Decimal, total: Decimal) -> Self {
        self * shares::from_decimal(part) / shares::from_decimal(total)
    }

    fn add(&mut self, other: &Self) {
        *self += other;
    }

    fn order(&self, other: &Self) -> std::cmp::Ordering {
        self.cmp(other)
    }

    /// Two decimals, exactly.
    fn percents(list: &[Self]) -> Vec<String> {
        shares::largest_remainder(list, 2)
    }

    fn exact(self) -> Option<Fraction> {
        Some(self)
    }
}

impl Weight for f64 {
    fn one() -> Self {
        1.0
    }

    fn times(&self, part: Decimal, total: Decimal) -> Self {
        use num_traits::ToPrimitive;
        self * part.to_f64().unwrap_or(0.0) / total.to_f64().unwrap_or(1.0)
    }

    fn add(&mut self, other: &Self) {
        *self += other;
    }

    fn order(&self, other: &Self) -> std::cmp::Ordering {
        self.total_cmp(other)
    }

    /// Whole percentages: all that those who may not see exact shares get.
    fn percents(list: &[Self]) -> Vec<String> {
        shares::whole_percentages(list)
    }

    fn exact(self) -> Option<Fraction> {
        None
    }
}
