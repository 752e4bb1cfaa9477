//! Demo data for all four sectors (rice in Demak, metal in Tegal, garments in
//! Rembang, furniture in Klaten and Sragen), loaded through the same write
//! path as any capture when `jejak serve --demo` starts on an empty store.

use anyhow::Context;

use jejak_engine::Engine;

/// The demo commands, one canonical-JSON `jejak.v1.Command` per line.
pub const DEMO: &str = include_str!("../demo/demo.jsonl");

/// Records every demo command in order; returns how many were recorded.
pub async fn load<S: Engine>(writer: &S) -> anyhow::Result<usize> {
    let mut n = 0;
    for (i, line) in DEMO.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let kind = jejak_proto::json::parse_command(line).map_err(|e| anyhow::anyhow!("demo line {}: {e}", i + 1))?;
        crate::capture::submit(writer, kind, "demo", None)
            .await
            .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))
            .with_context(|| format!("demo line {}", i + 1))?;
        n += 1;
    }
    Ok(n)
}

/// The demo's ids that tests, benchmarks and documents refer to, named
/// in one place (the commands in `demo.jsonl` use these values).
pub mod ids {
    /// The Demak shared rice mill.
    pub const DEMAK: &str = "fac-demak";
    /// The Tegal shared metal works.
    pub const TEGAL: &str = "fac-tegal";
    /// The Klaten shared furniture workshop.
    pub const KLATEN: &str = "fac-klaten";
    /// The Sragen sawmill.
    pub const SRAGEN: &str = "fac-sragen";
    /// Paddy as harvested (gabah kering panen).
    pub const PADDY: &str = "prd-dmk-gkp";
    /// Dried paddy (gabah kering giling).
    pub const DRIED_PADDY: &str = "prd-dmk-gkg";
    /// Premium rice in 5 kg bags.
    pub const PREMIUM_RICE_5KG: &str = "prd-dmk-beras-premium-5kg";
    /// The GTIN of the 5 kg bag of premium rice.
    pub const PREMIUM_RICE_GTIN: &str = "08997001001018";
    /// The paddy intake standard (moisture, empty grain and dirt).
    pub const PADDY_INTAKE_STANDARD: &str = "std-gkp-penerimaan";
    /// A rice UKM of Demak.
    pub const UKM_SIDOMAKMUR: &str = "ukm-dmk-sidomakmur";
    /// A rice UKM of Demak.
    pub const UKM_BERKAH: &str = "ukm-dmk-berkah";
    /// A rice UKM of Demak.
    pub const UKM_SRIREJEKI: &str = "ukm-dmk-srirejeki";
    /// A farmer group (gapoktan) supplying paddy.
    pub const FARMERS_SUMBERREJEKI: &str = "sup-dmk-gpk-sumberrejeki";
    /// A farmer group (gapoktan) supplying paddy.
    pub const FARMERS_TANIMAJU: &str = "sup-dmk-gpk-tanimaju";
    /// A customer buying Demak rice.
    pub const RICE_BUYER: &str = "cus-dmk-panganlestari";
    /// The lot of premium rice the showcase bag is from.
    pub const RICE_BAG_LOT: &str = "DMK-BP-260911";
    /// The first 5 kg bag of that lot.
    pub const RICE_BAG_SERIAL: &str = "DMK5P-000001";
    /// A paddy receipt that went into the rice bag.
    pub const PADDY_LOT: &str = "DMK-GKP-260901-01";
    /// Dried paddy with a voided (corrected) inspection.
    pub const DRIED_PADDY_LOT: &str = "DMK-GKG-260903-01";
    /// Teak chairs, with the forest plots of their timber.
    pub const TEAK_CHAIR_LOT: &str = "KLT-FJT-260929";
    /// A recalled batch of teak chairs.
    pub const RECALLED_CHAIR_LOT: &str = "KLT-FJT-261001";
    /// Shirts from a lot held and then released.
    pub const HELD_SHIRT_LOT: &str = "RBG-KSP-260911-PT";
    /// Flange bushes machined from S45C steel bar.
    pub const FLANGE_LOT: &str = "TGL-BF20-260909";
}

/// Demo lots worth opening first, and what each shows.
pub const SHOWCASE: &[(&str, &str)] = &[
    (
        ids::RICE_BAG_LOT,
        "5 kg bag of premium rice: SNI 6128:2020, a corrected inspection",
    ),
    (
        ids::TEAK_CHAIR_LOT,
        "teak chair, with the forest plots of its timber on a map",
    ),
    (ids::RECALLED_CHAIR_LOT, "teak chair from a recalled lot"),
    (ids::HELD_SHIRT_LOT, "shirt from a lot held and then released"),
    (ids::FLANGE_LOT, "flange bush machined from S45C steel bar"),
];

/// The label URI of the first packed unit of each showcase lot, under `base`.
pub fn showcase_uris(g: &jejak_genealogy::Genealogy, base: &str) -> Vec<(String, &'static str)> {
    SHOWCASE
        .iter()
        .filter_map(|(lot, what)| {
            let lot = g.get_lot(lot).ok()?;
            let label = &lot.packages.iter().find(|p| !p.label.is_empty())?.label;
            Some((format!("{}{label}", base.trim_end_matches('/')), *what))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_id_is_in_the_demo_data() {
        for id in [
            ids::DEMAK,
            ids::TEGAL,
            ids::KLATEN,
            ids::SRAGEN,
            ids::PADDY,
            ids::DRIED_PADDY,
            ids::PREMIUM_RICE_5KG,
            ids::PREMIUM_RICE_GTIN,
            ids::PADDY_INTAKE_STANDARD,
            ids::UKM_SIDOMAKMUR,
            ids::UKM_BERKAH,
            ids::UKM_SRIREJEKI,
            ids::FARMERS_SUMBERREJEKI,
            ids::FARMERS_TANIMAJU,
            ids::RICE_BUYER,
            ids::RICE_BAG_LOT,
            ids::RICE_BAG_SERIAL,
            ids::PADDY_LOT,
            ids::DRIED_PADDY_LOT,
            ids::TEAK_CHAIR_LOT,
            ids::RECALLED_CHAIR_LOT,
            ids::HELD_SHIRT_LOT,
            ids::FLANGE_LOT,
        ] {
            assert!(DEMO.contains(&format!("\"{id}\"")), "{id} is not in demo.jsonl");
        }
    }

    #[test]
    fn demo_data_parses() {
        for (i, line) in DEMO.lines().enumerate() {
            if !line.trim().is_empty() {
                jejak_proto::json::parse_command(line).unwrap_or_else(|e| panic!("demo line {}: {e}", i + 1));
            }
        }
    }
}
