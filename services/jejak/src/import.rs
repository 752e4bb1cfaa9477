//! Capture commands as JSON Lines in the proto's canonical JSON mapping:
//! parsing (shared with the demo data) and `jejak import`, which sends each
//! line to a running server.

use std::sync::OnceLock;

use jejak_proto::v1 as p;
use jejak_proto::v1::capture_service_client::CaptureServiceClient;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(jejak_proto::descriptor_pool)
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
pub fn to_json<M: Message>(full_name: &str, msg: &M) -> anyhow::Result<serde_json::Value> {
    let desc = pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| anyhow::anyhow!("unknown message {full_name}"))?;
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())?;
    Ok(serde_json::to_value(&dynamic)?)
}

/// Sends one command to the RPC for its kind.
pub async fn send(
    client: &mut CaptureServiceClient<crate::client::Conn>,
    kind: p::command::Kind,
) -> Result<p::CaptureReply, tonic::Status> {
    use p::command::Kind;
    let reply = match kind {
        Kind::RegisterParty(r) => client.register_party(r).await,
        Kind::RegisterFacility(r) => client.register_facility(r).await,
        Kind::RegisterProduct(r) => client.register_product(r).await,
        Kind::RegisterQualityStandard(r) => client.register_quality_standard(r).await,
        Kind::ReceiveMaterial(r) => client.receive_material(r).await,
        Kind::InspectLot(r) => client.inspect_lot(r).await,
        Kind::ProcessLots(r) => client.process_lots(r).await,
        Kind::PackLot(r) => client.pack_lot(r).await,
        Kind::ShipLot(r) => client.ship_lot(r).await,
        Kind::ChangeLotStatus(r) => client.change_lot_status(r).await,
        Kind::VoidEvent(r) => client.void_event(r).await,
        Kind::IssueToken(_) | Kind::RevokeToken(_) => {
            return Err(tonic::Status::invalid_argument(
                "tokens are issued and revoked with `jejak token`, not imported",
            ))
        }
    }?;
    Ok(reply.into_inner())
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub recorded: usize,
    pub already_recorded: usize,
    /// (line number, reason) of every line that was refused.
    pub failed: Vec<(usize, String)>,
}

/// Sends every line of `text` in order; blank lines and lines starting with
/// `#` or `//` are skipped.
pub async fn import(client: &mut CaptureServiceClient<crate::client::Conn>, text: &str) -> ImportReport {
    let mut report = ImportReport::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("//") {
            continue;
        }
        let kind = match parse_command(trimmed) {
            Ok(k) => k,
            Err(e) => {
                report.failed.push((n, format!("not a valid command: {e}")));
                continue;
            }
        };
        match send(client, kind).await {
            Ok(r) if r.replayed => report.already_recorded += 1,
            Ok(_) => report.recorded += 1,
            Err(s) => report.failed.push((n, format!("{:?}: {}", s.code(), s.message()))),
        }
    }
    report
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

    #[test]
    fn demo_data_parses() {
        for (i, line) in crate::demo::DEMO.lines().enumerate() {
            if !line.trim().is_empty() {
                parse_command(line).unwrap_or_else(|e| panic!("demo line {}: {e}", i + 1));
            }
        }
    }
}
