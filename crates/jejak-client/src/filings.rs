//! `jejak eudr` and `jejak report timber`: what exporters and regulators
//! file, read from the server's `/regulator/` routes.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use crate::cli::csv_field;
use crate::epcis::get_json;
use crate::{connect, Target};

/// Why the server refused, from its problem+json.
fn refused(what: &str, status: http::StatusCode, body: &Value) -> anyhow::Error {
    let detail = body["detail"].as_str().unwrap_or("no detail given");
    anyhow::anyhow!("{what} refused ({status}): {detail}")
}

/// Writes `bytes` to `out` through a `.partial` file renamed once complete.
fn write(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = out.with_extension("partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("move {} to {}", tmp.display(), out.display()))
}

/// Writes the EUDR geolocation (GeoJSON FeatureCollection) of `lot` to
/// `out`; returns how many plots it holds.
pub async fn eudr(target: &Target, lot: &str, out: &Path) -> anyhow::Result<usize> {
    let mut conn = connect(target).await?;
    let path = format!(
        "/regulator/eudr/{}",
        form_urlencoded::byte_serialize(lot.as_bytes()).collect::<String>()
    );
    let (status, body) = get_json(&mut conn, &target.url, &path).await?;
    if !status.is_success() {
        return Err(refused("the due diligence geolocation", status, &body));
    }
    let plots = body["features"].as_array().map_or(0, Vec::len);
    write(out, (serde_json::to_string_pretty(&body)? + "\n").as_bytes())?;
    Ok(plots)
}

/// The columns of the timber balance sheet.
const TIMBER_COLUMNS: [&str; 10] = [
    "product",
    "product_name",
    "kind",
    "unit",
    "opening_stock",
    "received",
    "used",
    "produced",
    "shipped",
    "closing_stock",
];

/// A facility's timber balance sheet for a period as CSV (to `out`, or
/// returned for printing).
pub async fn timber(target: &Target, facility: &str, from: &str, to: &str) -> anyhow::Result<String> {
    let mut conn = connect(target).await?;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("facility", facility)
        .append_pair("from", from)
        .append_pair("to", to)
        .finish();
    let (status, body) = get_json(&mut conn, &target.url, &format!("/regulator/timber?{query}")).await?;
    if !status.is_success() {
        return Err(refused("the timber report", status, &body));
    }
    let keys = [
        "product",
        "productName",
        "kind",
        "unit",
        "opening",
        "received",
        "used",
        "produced",
        "shipped",
        "closing",
    ];
    let mut csv = TIMBER_COLUMNS.join(",") + "\r\n";
    for row in body["rows"].as_array().into_iter().flatten() {
        let fields: Vec<String> = keys
            .iter()
            .map(|k| csv_field(row[*k].as_str().unwrap_or_default()))
            .collect();
        csv += &(fields.join(",") + "\r\n");
    }
    Ok(csv)
}

/// Writes the CSV to `out`, or prints it.
pub fn save_or_print(csv: &str, out: Option<&Path>) -> anyhow::Result<()> {
    match out {
        Some(path) => write(path, csv.as_bytes()),
        None => {
            print!("{csv}");
            Ok(())
        }
    }
}
