//! Demo data for all four sectors (rice in Demak, metal in Tegal, garments in
//! Rembang, furniture in Klaten and Sragen), loaded through the same write
//! path as any capture when `jejak serve --demo` starts on an empty store.

use anyhow::Context;

use crate::writer::Submit;

/// The demo commands, one canonical-JSON `jejak.v1.Command` per line.
pub const DEMO: &str = include_str!("../demo/demo.jsonl");

/// Records every demo command in order; returns how many were recorded.
pub async fn load<S: Submit>(writer: &S) -> anyhow::Result<usize> {
    let mut n = 0;
    for (i, line) in DEMO.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let kind = crate::import::parse_command(line).map_err(|e| anyhow::anyhow!("demo line {}: {e}", i + 1))?;
        writer
            .submit(kind, "demo")
            .await
            .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))
            .with_context(|| format!("demo line {}", i + 1))?;
        n += 1;
    }
    Ok(n)
}
