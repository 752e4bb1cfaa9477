//! `jejak import`: sends capture commands to a running server, from JSON
//! Lines in the proto's canonical JSON mapping or from a CSV file of one
//! command type (`jejak_proto::csv`).

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

/// The facility a command is recorded at, to void it there.
fn facility_of(kind: &p::command::Kind) -> Option<&str> {
    use p::command::Kind;
    Some(match kind {
        Kind::ReceiveMaterial(r) => &r.facility_id,
        Kind::ShipLot(r) => &r.facility_id,
        Kind::ChangeLotStatus(r) => &r.facility_id,
        Kind::ProcessLots(r) => &r.facility_id,
        _ => return None,
    })
}

/// What a CSV import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CsvReport {
    pub recorded: usize,
    pub already_recorded: usize,
    /// (line, reason) of the rows refused.
    pub failed: Vec<(usize, String)>,
    /// Rows this import recorded and then voided again, because a later
    /// row was refused (without `proceed`).
    pub voided: usize,
}

/// Imports a CSV file: every row is checked first, and a file with a bad
/// row writes nothing; then the rows are sent in order. Without `proceed`,
/// a row the server refuses stops the import, and the rows it recorded
/// are voided again, newest first (the log keeps them, voided); with it,
/// the good rows are kept and each refused one is reported.
pub async fn import_csv(
    client: &mut CaptureServiceClient<crate::Conn>,
    text: &str,
    proceed: bool,
) -> Result<CsvReport, jejak_proto::csv::Problems> {
    let (_, rows) = jejak_proto::csv::parse(text)?;
    let mut report = CsvReport::default();
    let mut written: Vec<(String, String)> = Vec::new();
    let mut first_refused = None;
    for row in rows {
        let facility = facility_of(&row.kind).unwrap_or_default().to_string();
        match send(client, row.kind).await {
            Ok(r) if r.replayed => report.already_recorded += 1,
            Ok(r) => {
                report.recorded += 1;
                written.push((r.event_id, facility));
            }
            Err(s) => {
                report
                    .failed
                    .push((row.line, format!("{:?}: {}", s.code(), s.message())));
                if !proceed {
                    first_refused = Some(row.line);
                    break;
                }
            }
        }
    }
    if let Some(line) = first_refused {
        for (n, (event_id, facility)) in written.into_iter().rev().enumerate() {
            let void = p::command::Kind::VoidEvent(p::VoidEventRequest {
                command_id: format!("{event_id}-undo-{n}"),
                facility_id: facility,
                event_id: event_id.clone(),
                reason: format!("CSV import stopped: line {line} was refused"),
                ..Default::default()
            });
            match send(client, void).await {
                Ok(_) => report.voided += 1,
                Err(s) => report
                    .failed
                    .push((0, format!("{event_id} could not be voided: {}", s.message()))),
            }
        }
        report.recorded = 0;
    }
    Ok(report)
}
