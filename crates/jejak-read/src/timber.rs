//! A facility's timber balance sheet for a period, as Indonesia's timber
//! legality system (SVLK/SILK) asks of wood-processing businesses: per
//! timber product (raw timber, `Product::is_timber`, and every intermediate
//! and finished product of the furniture sector), raw timber received and used, processed
//! timber produced and shipped, and the stock at the start and end of the
//! period, each in the product's own unit (m³ for logs and sawn timber,
//! pieces for furniture).
//!
//! Computed from the log, not the projection: every event of the facility up
//! to the end of the period, in log order, except those voided since.
//! Receipts (and transfers in) add to `received`, a processing's inputs to
//! `used` and its outputs to `produced`, shipments (bulk, or their packages'
//! quantities) to `shipped`.

use std::collections::{HashMap, HashSet};

use jejak_domain::{Decimal, Event, Facts, Product, ProductKind, Quantity, Sector, Time};

use jejak_log::ReadLog;

use crate::epcis::decode;
use crate::reader::Reader;
use crate::{ReadError, View};

/// One product's line of the balance sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimberRow {
    pub product_id: String,
    pub product_name: String,
    /// "raw" (logs) or "processed" (sawn timber, components, furniture).
    pub kind: &'static str,
    /// "m3", "pcs", ...
    pub unit: &'static str,
    pub opening: Decimal,
    pub received: Decimal,
    pub used: Decimal,
    pub produced: Decimal,
    pub shipped: Decimal,
    pub closing: Decimal,
}

#[derive(Default, Clone, Copy)]
struct Flows {
    opening: Decimal,
    received: Decimal,
    used: Decimal,
    produced: Decimal,
    shipped: Decimal,
}

/// A product's totals beyond what a decimal holds (about 7.9e28 in its
/// unit): said, not wrapped or panicked on.
fn too_large(product: &str) -> ReadError {
    ReadError::Incomplete(format!(
        "the quantities of product {product:?} at this facility add up beyond what the report can \
         write (about 7.9e28 in its unit); void the events that recorded implausible quantities"
    ))
}

impl<L: ReadLog> Reader<L> {
    /// The timber balance sheet of `facility` for `from` ≤ time < `to`;
    /// for regulators, administrators and the facility's operators.
    pub async fn timber_report(
        &self,
        view: &View,
        facility: &str,
        from: Time,
        to: Time,
    ) -> Result<Vec<TimberRow>, ReadError> {
        if !matches!(view, View::Full)
            && !matches!(view, View::Scoped { facilities, .. } if facilities.iter().any(|f| f == facility))
        {
            return Err(match view {
                View::Public => ReadError::NeedsToken {
                    what: "timber report",
                    lot: facility.to_string(),
                },
                _ => ReadError::Hidden {
                    who: "this token".into(),
                    what: "timber report",
                    lot: facility.to_string(),
                },
            });
        }
        if to <= from {
            return Err(ReadError::Invalid(jejak_domain::DomainError::invalid(
                "to",
                "is not after from",
            )));
        }
        let products: HashMap<String, Product> = {
            let id = facility.to_string();
            let (found, _) = self
                .query(move |g| {
                    let known = g.facility(&id).is_some();
                    let products = g
                        .master_data()
                        .products
                        .into_iter()
                        .filter(|p| p.sector == Sector::Furniture && (p.kind != ProductKind::Raw || p.is_timber()))
                        .map(|p| (p.id.clone(), p.clone()))
                        .collect::<HashMap<_, _>>();
                    (known, products)
                })
                .await?;
            if !found.0 {
                return Err(ReadError::Invalid(jejak_domain::DomainError::not_found(
                    "facility", facility,
                )));
            }
            found.1
        };
        let end = self.log().current_position().await?;
        let mut events = Vec::new();
        let mut voided = HashSet::new();
        let mut pace = crate::reader::Pacer::default();
        for position in 1..=end {
            pace.step().await;
            let Some(stored) = self.log().read(position).await? else {
                return Err(ReadError::Missing(position));
            };
            match decode(&stored)? {
                Event::EventVoided(v) => {
                    voided.insert(v.voided_event_id);
                }
                e if e.facility_id() == Some(facility) => events.push((stored.envelope.event_id, e)),
                _ => {}
            }
        }
        let mut lots: HashMap<String, String> = HashMap::new();
        let mut packages: HashMap<(String, String), Quantity> = HashMap::new();
        let mut flows: HashMap<String, Flows> = HashMap::new();
        for (id, e) in events {
            if voided.contains(&id) {
                continue;
            }
            let Some(at) = e.occurred_at() else { continue };
            if at >= to {
                continue;
            }
            let before = at < from;
            let mut add = |product: &str, q: &Quantity, pick: fn(&mut Flows) -> &mut Decimal, sign: bool| {
                let Some(p) = products.get(product) else {
                    return Ok(());
                };
                let Ok(q) = q.convert(p.unit) else {
                    return Ok(());
                };
                let f = flows.entry(product.to_string()).or_default();
                let slot = if before { &mut f.opening } else { pick(f) };
                let change = if before && !sign { -q.value() } else { q.value() };
                *slot = slot.checked_add(change).ok_or_else(|| too_large(product))?;
                Ok::<(), ReadError>(())
            };
            match &e {
                Event::MaterialReceived(r) => {
                    lots.insert(r.lot_id.clone(), r.product_id.clone());
                    add(&r.product_id, &r.quantity, |f| &mut f.received, true)?;
                }
                Event::LotProcessed(x) => {
                    for i in &x.inputs {
                        if let Some(product) = lots.get(&i.lot_id).cloned() {
                            add(&product, &i.quantity, |f| &mut f.used, false)?;
                        }
                    }
                    for o in &x.outputs {
                        lots.insert(o.lot_id.clone(), o.product_id.clone());
                        add(&o.product_id, &o.quantity, |f| &mut f.produced, true)?;
                    }
                }
                Event::LotPacked(x) => {
                    for pk in &x.packages {
                        packages.insert((x.lot_id.clone(), pk.serial.clone()), pk.quantity);
                    }
                }
                Event::LotShipped(x) => {
                    let Some(product) = lots.get(&x.lot_id).cloned() else {
                        continue;
                    };
                    if let Some(q) = &x.quantity {
                        add(&product, q, |f| &mut f.shipped, false)?;
                    }
                    for s in &x.package_serials {
                        if let Some(q) = packages.get(&(x.lot_id.clone(), s.clone())).copied() {
                            add(&product, &q, |f| &mut f.shipped, false)?;
                        }
                    }
                }
                _ => {}
            }
        }
        let mut rows: Vec<TimberRow> = Vec::with_capacity(flows.len());
        for (id, f) in flows {
            let Some(p) = products.get(&id) else { continue };
            let closing = f
                .opening
                .checked_add(f.received)
                .and_then(|v| v.checked_add(f.produced))
                .and_then(|v| v.checked_sub(f.used))
                .and_then(|v| v.checked_sub(f.shipped))
                .ok_or_else(|| too_large(&id))?;
            rows.push(TimberRow {
                product_name: p.name.clone(),
                kind: if p.kind == ProductKind::Raw { "raw" } else { "processed" },
                unit: p.unit.symbol(),
                opening: f.opening.normalize(),
                received: f.received.normalize(),
                used: f.used.normalize(),
                produced: f.produced.normalize(),
                shipped: f.shipped.normalize(),
                closing: closing.normalize(),
                product_id: id,
            });
        }
        // Raw timber first, then what is made of it.
        rows.sort_by(|a, b| (a.kind != "raw", &a.product_id).cmp(&(b.kind != "raw", &b.product_id)));
        Ok(rows)
    }
}
