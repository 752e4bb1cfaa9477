//! Commands and API messages in the proto's canonical JSON mapping: the
//! JSON Lines of `jejak import` and the demo data, and `--json` output.

use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};

use crate::v1 as p;

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(crate::descriptor_pool)
}

/// Parses one line: a `jejak.v1.Command` in canonical proto3 JSON.
pub fn parse_command(line: &str) -> Result<p::command::Kind, String> {
    let desc = pool()
        .get_message_by_name("jejak.v1.Command")
        .ok_or("the API descriptor has no jejak.v1.Command")?;
    let mut de = serde_json::Deserializer::from_str(line);
    let msg = DynamicMessage::deserialize(desc, &mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    let cmd = p::Command::decode(msg.encode_to_vec().as_slice()).map_err(|e| e.to_string())?;
    cmd.kind
        .ok_or_else(|| "the line holds no command; expected e.g. {\"receiveMaterial\": {...}}".to_string())
}

/// Canonical proto3 JSON of any API message, for `--json` output.
pub fn to_json<M: Message>(full_name: &str, msg: &M) -> Result<serde_json::Value, String> {
    let desc = pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| format!("unknown message {full_name}"))?;
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice()).map_err(|e| e.to_string())?;
    serde_json::to_value(&dynamic).map_err(|e| e.to_string())
}

/// A plot geometry from its GeoJSON text (`{"type": "Polygon",
/// "coordinates": [...]}`), checked; errors name `field` and the place in it.
pub fn geometry(text: &str, field: &str) -> Result<jejak_domain::geo::Geometry, jejak_domain::DomainError> {
    use jejak_domain::DomainError;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| DomainError::invalid(field, format!("is not GeoJSON: {e}")))?;
    let kind = value
        .get("type")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| DomainError::invalid(format!("{field}.type"), "is required (Point, Polygon or MultiPolygon)"))?;
    let coordinates = value
        .get("coordinates")
        .ok_or_else(|| DomainError::invalid(format!("{field}.coordinates"), "is required"))?;
    jejak_domain::geo::Geometry::from_geojson(kind, &coords(coordinates), field)
}

/// GeoJSON coordinates as the domain reads them.
pub fn coords(v: &serde_json::Value) -> jejak_domain::geo::Coords {
    use jejak_domain::geo::Coords;
    match v {
        serde_json::Value::Number(n) => Coords::Number(n.to_string()),
        serde_json::Value::Array(items) => Coords::List(items.iter().map(coords).collect()),
        serde_json::Value::String(_) => Coords::Other("a string"),
        serde_json::Value::Object(_) => Coords::Other("an object"),
        serde_json::Value::Bool(_) => Coords::Other("true or false"),
        serde_json::Value::Null => Coords::Other("null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canonical_json() {
        let k = parse_command(r#"{"receiveMaterial": {"commandId": "c1", "lotId": "L1", "quantity": {"value": "12.5", "unit": "UNIT_KG"}, "occurredAt": "2026-10-01T07:30:00+07:00"}}"#).unwrap();
        match k {
            p::command::Kind::ReceiveMaterial(r) => {
                assert_eq!(r.lot_id, "L1");
                assert_eq!(r.quantity.unwrap().value, "12.5");
                // 2026-10-01T00:30:00Z
                assert_eq!(r.occurred_at.unwrap().seconds, 1_790_814_600);
            }
            other => panic!("wrong kind {other:?}"),
        }
    }

    #[test]
    fn reports_what_is_wrong() {
        assert!(parse_command("{").is_err());
        assert!(parse_command("{}").unwrap_err().contains("no command"));
        let e = parse_command(r#"{"receiveMaterial": {"lotIdd": "x"}}"#).unwrap_err();
        assert!(e.contains("lotIdd"), "{e}");
    }
}
