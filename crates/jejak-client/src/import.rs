//! `jejak import`: sends capture commands, JSON Lines in the proto's
//! canonical JSON mapping, to a running server.

use jejak_proto::v1 as p;
use jejak_proto::v1::capture_service_client::CaptureServiceClient;

/// Sends one command to the RPC for its kind.
pub async fn send(
    client: &mut CaptureServiceClient<crate::Conn>,
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
        Kind::ObserveEpcis(_) => {
            return Err(tonic::Status::invalid_argument(
                "EPCIS observations come in EPCIS documents: use `jejak epcis capture`",
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
pub async fn import(client: &mut CaptureServiceClient<crate::Conn>, text: &str) -> ImportReport {
    let mut report = ImportReport::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("//") {
            continue;
        }
        let kind = match jejak_proto::json::parse_command(trimmed) {
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
