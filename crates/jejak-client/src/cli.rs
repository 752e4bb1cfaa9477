//! The client commands of the `jejak` binary, one function each: they ask
//! a running server and print its answer as text or canonical JSON.

use std::path::Path;

use anyhow::Context;
use jejak_domain::Time;
use jejak_proto::v1 as p;
use jejak_proto::v1::admin_service_client::AdminServiceClient;

use crate::{connect, trace_client, Target};

/// Prints a reply as canonical proto3 JSON (`json`) or as text.
pub fn print<M: prost::Message>(
    json: bool,
    name: &str,
    msg: &M,
    text: impl FnOnce(&M) -> String,
) -> anyhow::Result<()> {
    if json {
        let value = jejak_proto::json::to_json(name, msg).map_err(anyhow::Error::msg)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", text(msg));
    }
    Ok(())
}

/// "1 row was refused", "3 lines were refused".
fn refused_count(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what} was refused"),
        n => format!("{n} {what}s were refused"),
    }
}

/// Where the server's log ends (`GetStatus`), if it says within ten seconds.
async fn log_end(target: &Target) -> Option<u64> {
    let mut t = p::trace_service_client::TraceServiceClient::new(connect(target).await.ok()?);
    let mut request = tonic::Request::new(p::GetStatusRequest {});
    request.set_timeout(std::time::Duration::from_secs(10));
    t.get_status(request).await.ok().map(|r| r.into_inner().log_position)
}

/// `jejak import`: sends every line of a JSON Lines file.
pub async fn import(target: &Target, file: &Path, proceed: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let csv = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    // Where the log ends before a CSV import, asked on a connection of its
    // own before the import's (a capture service on NATS without queries
    // does not say): what the import's rows are answered at beyond it, the
    // import recorded; at or before it, an earlier run did.
    let log_end = match csv {
        true => log_end(target).await,
        false => None,
    };
    let mut c = p::capture_service_client::CaptureServiceClient::new(connect(target).await?);
    if csv {
        let report = match crate::import::import_csv(&mut c, &text, proceed, log_end).await {
            Ok(r) => r,
            Err(problems) => {
                for (line, reason) in &problems {
                    eprintln!("{}:{line}: {reason}", file.display());
                }
                anyhow::bail!(
                    "{} has {} {}; nothing was written",
                    file.display(),
                    problems.len(),
                    if problems.len() == 1 { "problem" } else { "problems" }
                );
            }
        };
        for (line, reason) in &report.failed {
            eprintln!("{}:{line}: {reason}", file.display());
        }
        print_voided_earlier(file, &report.voided_earlier, "change its command_id");
        for (line, event_id) in &report.kept {
            eprintln!(
                "{}:{line}: recorded as {event_id} by this import or an earlier run (the connection broke before \
                 its answer), so left as it is: void it (a VoidEvent command) if this import recorded it",
                file.display()
            );
        }
        println!(
            "{} recorded, {} already recorded, {}{} refused{}",
            report.recorded,
            report.already_recorded,
            voided_earlier_count(report.voided_earlier.len()),
            report.failed.len(),
            if report.voided > 0 {
                format!(
                    ", {} voided again (the file is all or nothing; --proceed keeps the good rows)",
                    report.voided
                )
            } else {
                String::new()
            }
        );
        return import_outcome(report.failed.len(), report.voided_earlier.len(), "row");
    }
    let report = crate::import::import(&mut c, &text).await;
    for (line, reason) in &report.failed {
        eprintln!("{}:{line}: {reason}", file.display());
    }
    print_voided_earlier(file, &report.voided_earlier, "send it with a new command_id");
    println!(
        "{} recorded, {} already recorded, {}{} refused",
        report.recorded,
        report.already_recorded,
        voided_earlier_count(report.voided_earlier.len()),
        report.failed.len()
    );
    import_outcome(report.failed.len(), report.voided_earlier.len(), "line")
}

/// Tells of each line answered "already recorded" whose event has since
/// been voided: the file says it happened, the log no longer does.
fn print_voided_earlier(file: &std::path::Path, lines: &[(usize, String, String)], remedy: &str) {
    for (line, event_id, void) in lines {
        eprintln!(
            "{}:{line}: {event_id} was recorded before and has since been voided by {void}, so it does not stand \
             (sending it again changes nothing): {remedy} to record it anew",
            file.display()
        );
    }
}

fn voided_earlier_count(n: usize) -> String {
    match n {
        0 => String::new(),
        n => format!("{n} recorded before and since voided, "),
    }
}

/// An import fails when a line was refused or does not stand.
fn import_outcome(refused: usize, voided_earlier: usize, what: &str) -> anyhow::Result<()> {
    match (refused, voided_earlier) {
        (0, 0) => Ok(()),
        (0, n) => anyhow::bail!(
            "{n} {what}{} recorded before and since voided: {} not stand",
            if n == 1 { " was" } else { "s were" },
            if n == 1 { "it does" } else { "they do" }
        ),
        (n, _) => anyhow::bail!("{}", refused_count(n, what)),
    }
}

/// `jejak trace back|forward`.
pub async fn trace(
    target: &Target,
    json: bool,
    what: &str,
    serial: bool,
    max_depth: u32,
    backward: bool,
) -> anyhow::Result<()> {
    let mut c = trace_client(target).await?;
    let req = p::TraceRequest {
        target: Some(crate::target(what, serial)),
        max_depth,
        max_nodes: 0,
    };
    let reply = if backward {
        c.backward_trace(req).await
    } else {
        c.forward_trace(req).await
    }?
    .into_inner();
    print(json, "jejak.v1.TraceReply", &reply, |r| {
        crate::render_trace(r, backward)
    })
}

/// The columns of a recall report: the shipping event of FDA FSMA 204's
/// sortable spreadsheet, and the serials and event jejak adds.
const RECALL_COLUMNS: [&str; 13] = [
    "Traceability Lot Code",
    "Product Description",
    "Quantity",
    "Unit of Measure",
    "Location Description of Immediate Subsequent Recipient",
    "Immediate Subsequent Recipient ID",
    "Location Description from Which Food Was Shipped",
    "Shipped From Location ID",
    "Ship Date",
    "Reference Document Type",
    "Reference Document Number",
    "Serial Numbers",
    "Event ID",
];

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A recall report as CSV, a header line and a row per shipment.
pub fn recall_csv(r: &p::RecallReportReply) -> String {
    let mut out = RECALL_COLUMNS.join(",") + "\r\n";
    for row in &r.rows {
        let (quantity, unit) = row.quantity.as_ref().map_or((String::new(), String::new()), |q| {
            (
                q.value.clone(),
                crate::quantity(&Some(q.clone()))
                    .rsplit(' ')
                    .next()
                    .unwrap_or("")
                    .to_string(),
            )
        });
        let date = row
            .shipped_at
            .as_ref()
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
            .map(|t| t.to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC)))
            .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
            .unwrap_or_default();
        let fields = [
            row.lot_id.clone(),
            row.product_name.clone(),
            quantity,
            unit,
            row.consignee_name.clone(),
            row.consignee_id.clone(),
            row.facility_name.clone(),
            row.facility_id.clone(),
            date,
            if row.document.is_empty() {
                String::new()
            } else {
                "Delivery note".into()
            },
            row.document.clone(),
            row.package_serials.join(" "),
            row.event_id.clone(),
        ];
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

/// `jejak recall-report`: every shipment a lot's material reached, as CSV
/// (to `out`, or standard output) or, with `json`, as the reply's JSON.
pub async fn recall_report(
    target: &Target,
    json: bool,
    what: &str,
    serial: bool,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let mut c = trace_client(target).await?;
    let reply = c
        .recall_report(p::TraceRequest {
            target: Some(crate::target(what, serial)),
            max_depth: 0,
            max_nodes: 0,
        })
        .await?
        .into_inner();
    if reply.truncated {
        eprintln!("warning: the trace was cut short by the server's limits; shipments beyond them are missing");
    }
    let text = if json {
        let value = jejak_proto::json::to_json("jejak.v1.RecallReportReply", &reply).map_err(anyhow::Error::msg)?;
        serde_json::to_string_pretty(&value)? + "\n"
    } else {
        recall_csv(&reply)
    };
    match out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// `jejak origin`.
pub async fn origin(target: &Target, json: bool, what: &str, serial: bool) -> anyhow::Result<()> {
    let mut c = trace_client(target).await?;
    let reply = c
        .origin_shares(p::OriginSharesRequest {
            target: Some(crate::target(what, serial)),
        })
        .await?
        .into_inner();
    print(json, "jejak.v1.OriginSharesReply", &reply, crate::render_shares)
}

/// `jejak bundle`: the provenance bundle of a lot or label, to `out` or standard output.
pub async fn bundle(target: &Target, what: &str, serial: bool, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let mut c = trace_client(target).await?;
    let reply = c
        .get_bundle(p::GetBundleRequest {
            target: Some(crate::target(what, serial)),
        })
        .await?
        .into_inner();
    match out {
        Some(path) => {
            std::fs::write(path, format!("{}\n", reply.json)).with_context(|| format!("write {}", path.display()))?;
            eprintln!(
                "wrote the provenance bundle of {what} to {} ({} bytes)",
                path.display(),
                reply.json.len()
            );
        }
        None => println!("{}", reply.json),
    }
    Ok(())
}

/// `jejak history`, optionally as of an RFC 3339 time.
pub async fn history(target: &Target, json: bool, lot: String, as_of: Option<&str>) -> anyhow::Result<()> {
    let as_of = match as_of {
        Some(s) => Some(
            s.parse::<prost_types::Timestamp>()
                .map_err(|e| anyhow::anyhow!("--as-of {s:?} is not an RFC 3339 time: {e}"))?,
        ),
        None => None,
    };
    let mut c = trace_client(target).await?;
    let reply = c
        .lot_history(p::LotHistoryRequest { lot_id: lot, as_of })
        .await?
        .into_inner();
    print(json, "jejak.v1.LotHistoryReply", &reply, crate::render_history)
}

/// `jejak lot`.
pub async fn lot(target: &Target, json: bool, lot: String) -> anyhow::Result<()> {
    let mut c = trace_client(target).await?;
    let reply = c.get_lot(p::GetLotRequest { lot_id: lot }).await?.into_inner();
    print(json, "jejak.v1.Lot", &reply, crate::render_lot)
}

/// `jejak labels`: a printable sheet of a lot's labels.
pub async fn labels(target: &Target, lot: String, out: &Path, public_base: Option<String>) -> anyhow::Result<()> {
    let mut c = trace_client(target).await?;
    let reply = c.get_lot(p::GetLotRequest { lot_id: lot }).await?.into_inner();
    let base = public_base.unwrap_or_else(|| {
        eprintln!(
            "note: the labels point at {}; give --public-base (JEJAK_PUBLIC_BASE) for labels that outlive this address",
            target.url
        );
        target.url.clone()
    });
    println!("{}", crate::write_label_sheet(&reply, &base, out)?);
    Ok(())
}

/// `jejak lookup`.
pub async fn lookup(target: &Target, json: bool, uri: String) -> anyhow::Result<()> {
    let mut c = trace_client(target).await?;
    let reply = c.lookup_label(p::LookupLabelRequest { uri }).await?.into_inner();
    print(json, "jejak.v1.LookupLabelReply", &reply, crate::render_lookup)
}

/// `jejak status`.
pub async fn status(target: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = trace_client(target).await?;
    let reply = c.get_status(p::GetStatusRequest {}).await?.into_inner();
    print(json, "jejak.v1.StatusReply", &reply, |s| {
        format!(
            "log position {}\napplied position {}\nlag {}\nlots {}\nevents {}\n",
            s.log_position, s.applied_position, s.lag, s.lots, s.events
        )
    })
}

/// What `jejak token create` asks for.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub role: String,
    pub facilities: Vec<String>,
    pub party: Option<String>,
    pub expires_in: std::time::Duration,
    pub label: String,
    pub command_id: Option<String>,
    /// Print the token as a QR code too.
    pub qr: bool,
}

/// A QR code of `text` for a terminal: two modules per character cell
/// (upper and lower half blocks), dark on light, with its quiet zone.
pub fn terminal_qr(text: &str) -> anyhow::Result<String> {
    let m = jejak_label::qr(text).map_err(|e| anyhow::anyhow!("make the QR code: {e}"))?;
    let (quiet, w) = (jejak_label::QUIET_ZONE, m.width());
    let dark = |x: usize, y: usize| {
        x >= quiet && y >= quiet && x < quiet + w && y < quiet + w && m.is_dark(x - quiet, y - quiet)
    };
    let side = w + 2 * quiet;
    let mut out = String::new();
    for y in (0..side).step_by(2) {
        for x in 0..side {
            out.push(match (dark(x, y), dark(x, y + 1)) {
                (false, false) => '█',
                (true, false) => '▄',
                (false, true) => '▀',
                (true, true) => ' ',
            });
        }
        out.push('\n');
    }
    Ok(out)
}

/// `jejak token create`: prints the token, the only time it is shown.
pub async fn token_create(target: &Target, json: bool, t: NewToken) -> anyhow::Result<()> {
    let role = jejak_domain::Role::parse(&t.role)
        .with_context(|| format!("--role {:?}: use admin, operator, member or regulator", t.role))?;
    let now = Time::now();
    let expires_at = Time(
        now.0
            .saturating_add(i64::try_from(t.expires_in.as_nanos()).context("--expires-in is too long")?),
    );
    let command_id = t.command_id.unwrap_or_else(|| format!("token-{}", now.0));
    let mut c = AdminServiceClient::new(connect(target).await?);
    let reply = c
        .create_token(p::CreateTokenRequest {
            command_id,
            role: jejak_proto::access_role_to_proto(role) as i32,
            facility_ids: t.facilities,
            party_id: t.party.unwrap_or_default(),
            expires_at: Some(jejak_proto::time_to_proto(expires_at)),
            label: t.label,
        })
        .await?
        .into_inner();
    print(json, "jejak.v1.CreateTokenReply", &reply, |r| {
        if r.token.is_empty() {
            format!(
                "token {} was already issued by this command id; its secret cannot be shown again\n",
                r.token_id
            )
        } else if t.qr {
            let code = terminal_qr(&r.token).unwrap_or_else(|e| format!("({e})\n"));
            format!("{}\n\n{code}", r.token)
        } else {
            format!("{}\n", r.token)
        }
    })
}

/// `jejak token list`.
pub async fn token_list(target: &Target, json: bool, all: bool) -> anyhow::Result<()> {
    let mut c = AdminServiceClient::new(connect(target).await?);
    let reply = c
        .list_tokens(p::ListTokensRequest { include_inactive: all })
        .await?
        .into_inner();
    print(json, "jejak.v1.ListTokensReply", &reply, crate::render_tokens)
}

/// `jejak token revoke`.
pub async fn token_revoke(target: &Target, json: bool, token_id: String, reason: String) -> anyhow::Result<()> {
    let mut c = AdminServiceClient::new(connect(target).await?);
    let reply = c
        .revoke_token(p::RevokeTokenRequest {
            command_id: format!("revoke-{token_id}-{}", Time::now().0),
            token_id,
            reason,
        })
        .await?
        .into_inner();
    print(json, "jejak.v1.CaptureReply", &reply, |r| {
        format!("revoked (event {} at log position {})\n", r.event_id, r.position)
    })
}

/// `jejak verify-bundle`: 0 verified, 1 does not verify, 2 not a bundle.
pub fn verify_bundle(
    file: &std::path::Path,
    log_key: &str,
    witnesses: &[String],
    quorum: Option<usize>,
) -> std::process::ExitCode {
    use jejak_verify::bundle::{self, BundleError, Policy};
    use jejak_verify::note::Verifier;
    let usage = |why: String| {
        eprintln!("error: {why}");
        std::process::ExitCode::from(2)
    };
    let log = match Verifier::parse(log_key) {
        Ok(v) => v,
        Err(e) => return usage(format!("--log-key: {e}")),
    };
    let mut keys = Vec::new();
    for w in witnesses {
        match Verifier::parse(w) {
            Ok(v) => keys.push(v),
            Err(e) => return usage(format!("--witness {w}: {e}")),
        }
    }
    let quorum = quorum.unwrap_or(keys.len());
    if quorum > keys.len() {
        return usage(format!(
            "--quorum {quorum} is more than the {} witness keys given",
            keys.len()
        ));
    }
    let text = match std::fs::read(file) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return usage(format!("{}: not UTF-8 text", file.display())),
        },
        Err(e) => return usage(format!("read {}: {e}", file.display())),
    };
    let policy = Policy {
        log,
        witnesses: keys,
        quorum,
    };
    match bundle::verify(&text, &policy) {
        Ok(report) => {
            println!("{}: verifies", file.display());
            for line in &report.proven {
                println!("  proven: {line}");
            }
            for line in &report.withheld {
                println!("  withheld: {line}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e @ BundleError::Failed { .. }) => {
            println!("{}: does NOT verify", file.display());
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
        Err(e @ BundleError::Malformed { .. }) => usage(format!("{}: {e}", file.display())),
    }
}
