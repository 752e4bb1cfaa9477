//! The geolocation an EU due diligence statement (EUDR) needs for a lot:
//! one GeoJSON feature per production plot in the lot's whole ancestry, in
//! the form the EU information system takes (`FeatureCollection`; each
//! feature's properties `ProducerName`, `ProducerCountry`, `ProductionPlace`
//! and `Area` in hectares). Timber in the ancestry without a plot geometry
//! makes the statement impossible: the answer names those receipts.

use std::collections::HashSet;

use jejak_domain::{Facts, Product, Target};
use jejak_log::ReadLog;
use serde_json::{json, Value};

use crate::reader::Reader;
use crate::{ReadError, View};

/// What the lots of an ancestry tell the statement.
struct Plots {
    features: Vec<Value>,
    /// Timber receipts without geometry: (lot, event).
    missing: Vec<(String, String)>,
    lots: usize,
}

impl<L: ReadLog> Reader<L> {
    /// The EUDR geolocation of `lot_id` for a caller who sees it in full
    /// (its UKM, the facility's operator, a regulator, an administrator).
    pub async fn eudr(&self, view: &View, lot_id: &str) -> Result<Value, ReadError> {
        let (view, lot, limits) = (view.clone(), lot_id.to_string(), self.limits());
        let (plots, position) = self
            .query(move |g| -> Result<Plots, ReadError> {
                let trace = g.backward_trace(&Target::Lot(lot.clone()), 0, limits)?;
                if let Some(root) = trace.nodes.iter().map(|n| &n.lot).find(|l| l.lot_id == trace.root) {
                    view.require(root, "due diligence geolocation")?;
                }
                if trace.truncated.is_some() {
                    return Err(ReadError::Incomplete(format!(
                        "the ancestry of lot {} is larger than this server's trace limits; its plots cannot all be listed",
                        jejak_domain::quote(&lot)
                    )));
                }
                let mut plots = Plots {
                    features: Vec::new(),
                    missing: Vec::new(),
                    lots: trace.nodes.len(),
                };
                let mut seen = HashSet::new();
                for l in trace.nodes.iter().map(|n| &n.lot) {
                    let Some(supplier) = &l.supplier else { continue };
                    if l.source_lot.is_some() || l.voided {
                        continue;
                    }
                    let timber = g.product(&l.product.id).is_some_and(Product::is_timber);
                    let Some(geometry) = &l.origin.geometry else {
                        if timber {
                            plots
                                .missing
                                .push((l.lot_id.clone(), l.created_by.clone().unwrap_or_default()));
                        }
                        continue;
                    };
                    let text = geometry.to_geojson();
                    if !seen.insert((text.clone(), supplier.id.clone())) {
                        continue;
                    }
                    let mut properties = json!({
                        "ProducerName": supplier.name,
                        "ProducerCountry": l.origin.producer_country,
                        "ProductionPlace": l.origin.place,
                    });
                    if let Some(area) = l.origin.plot_area_ha() {
                        properties["Area"] = serde_json::from_str::<Value>(&area.to_string()).unwrap_or(Value::Null);
                    }
                    plots.features.push(json!({
                        "type": "Feature",
                        "geometry": serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
                        "properties": properties,
                    }));
                }
                Ok(plots)
            })
            .await?;
        self.visible(position).await?;
        let plots = plots?;
        if !plots.missing.is_empty() {
            let named: Vec<String> = plots
                .missing
                .iter()
                .map(|(lot, event)| {
                    format!(
                        "lot {} (receipt {})",
                        jejak_domain::quote(lot),
                        jejak_domain::quote(event)
                    )
                })
                .collect();
            return Err(ReadError::Incomplete(format!(
                "timber in the ancestry of lot {} was received without plot geometry: {}; record the plots (origin.geometry) before filing a due diligence statement",
                jejak_domain::quote(lot_id),
                named.join(", ")
            )));
        }
        if plots.features.is_empty() {
            return Err(ReadError::Incomplete(format!(
                "none of the {} lots behind lot {} was received with a plot geometry",
                plots.lots,
                jejak_domain::quote(lot_id)
            )));
        }
        Ok(json!({ "type": "FeatureCollection", "features": plots.features }))
    }
}
