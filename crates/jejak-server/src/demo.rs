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
        crate::capture::submit(writer, kind, "demo")
            .await
            .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))
            .with_context(|| format!("demo line {}", i + 1))?;
        n += 1;
    }
    Ok(n)
}

/// Demo lots worth opening first, and what each shows.
pub const SHOWCASE: &[(&str, &str)] = &[
    (
        "DMK-BP-260911",
        "5 kg bag of premium rice: SNI 6128:2020, a corrected inspection",
    ),
    (
        "KLT-FJT-260929",
        "teak chair, with the forest plots of its timber on a map",
    ),
    ("KLT-FJT-261001", "teak chair from a recalled lot"),
    ("RBG-KSP-260911-PT", "shirt from a lot held and then released"),
    ("TGL-BF20-260909", "flange bush machined from S45C steel bar"),
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
    fn demo_data_parses() {
        for (i, line) in DEMO.lines().enumerate() {
            if !line.trim().is_empty() {
                jejak_proto::json::parse_command(line).unwrap_or_else(|e| panic!("demo line {}: {e}", i + 1));
            }
        }
    }
}
