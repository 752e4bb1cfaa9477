//! The client side of the `jejak` binary: connects to a server (plain or
//! TLS, with a token), prints traces as trees, shares and histories as
//! tables, or any reply as JSON, imports JSON Lines, and draws label sheets.
//!
//! **Invariant:** a client of the public gRPC API only: it names no server,
//! engine or store crate, so what it can do is what any other client can.

pub mod alerts;
pub mod backup;
pub mod cli;
pub mod epcis;
pub mod export;
pub mod filings;
pub mod import;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use anyhow::Context;
use jejak_proto::v1 as p;
use jejak_proto::v1::trace_service_client::TraceServiceClient;
use tonic::transport::Channel;

/// A connection that authenticates every call.
pub type Conn = jejak_proto::Authenticated<Channel>;

/// Where a server is and how to talk to it.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `http://host:port`, or `https://host:port` for a server with TLS.
    pub url: String,
    /// The access token, if any (public calls need none).
    pub token: Option<String>,
    /// PEM file of the certificate authority that signed the server's
    /// certificate (https:// only; the system roots are not used).
    pub ca_file: Option<std::path::PathBuf>,
}

impl Target {
    pub fn new(url: impl Into<String>) -> Target {
        Target {
            url: url.into(),
            ..Target::default()
        }
    }
}

/// Connects to a server URL such as `http://127.0.0.1:50051`.
/// How often a connection with requests on it is pinged, and how long a
/// ping may go unanswered before the connection is closed.
const KEEP_ALIVE: (std::time::Duration, std::time::Duration) =
    (std::time::Duration::from_secs(10), std::time::Duration::from_secs(10));

pub async fn connect(target: &Target) -> anyhow::Result<Conn> {
    let url = &target.url;
    let mut endpoint = tonic::transport::Endpoint::from_shared(url.to_string())
        .with_context(|| format!("{url:?} is not a server URL (e.g. http://127.0.0.1:50051)"))?;
    if url.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new();
        match &target.ca_file {
            Some(ca) => {
                let pem = std::fs::read(ca).with_context(|| format!("read the CA file {}", ca.display()))?;
                tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            None => anyhow::bail!("{url} uses TLS: give the certificate authority's PEM file with --ca-file"),
        }
        endpoint = endpoint.tls_config(tls).context("set up TLS")?;
    } else if target.ca_file.is_some() {
        anyhow::bail!("--ca-file is for https:// servers; {url} is plain text");
    }
    // A connection that goes silent with a request on it (a proxy or NAT
    // that dropped it without a word) is noticed by its unanswered pings
    // and closed: the request fails as broken and is asked again on a new
    // connection, rather than wait for ever.
    let channel = endpoint
        .http2_keep_alive_interval(KEEP_ALIVE.0)
        .keep_alive_timeout(KEEP_ALIVE.1)
        .connect()
        .await
        .with_context(|| format!("connect to the jejak server at {url}"))?;
    Ok(tonic::service::interceptor::InterceptedService::new(
        channel,
        jejak_proto::Bearer::new(target.token.as_deref()).map_err(anyhow::Error::msg)?,
    ))
}

pub async fn trace_client(target: &Target) -> anyhow::Result<TraceServiceClient<Conn>> {
    Ok(TraceServiceClient::new(connect(target).await?))
}

/// A target from what the user typed: a Digital Link (contains "/01/"), a
/// serial (`--serial`), or a lot id.
pub fn target(what: &str, serial: bool) -> p::Target {
    let kind = if serial {
        p::target::Kind::Serial(what.to_string())
    } else if what.contains("/01/") {
        p::target::Kind::Label(what.to_string())
    } else {
        p::target::Kind::LotId(what.to_string())
    };
    p::Target { kind: Some(kind) }
}

pub fn quantity(q: &Option<p::Quantity>) -> String {
    match q {
        None => "-".into(),
        Some(q) => {
            let unit = match p::Unit::try_from(q.unit) {
                Ok(p::Unit::Kg) => "kg",
                Ok(p::Unit::G) => "g",
                Ok(p::Unit::T) => "t",
                Ok(p::Unit::Pcs) => "pcs",
                Ok(p::Unit::M) => "m",
                Ok(p::Unit::M2) => "m²",
                Ok(p::Unit::M3) => "m³",
                Ok(p::Unit::L) => "l",
                _ => "?",
            };
            format!("{} {unit}", q.value)
        }
    }
}

pub fn verdict(v: i32) -> &'static str {
    match p::Verdict::try_from(v) {
        Ok(p::Verdict::Conformant) => "conformant",
        Ok(p::Verdict::NonConformant) => "NON-CONFORMANT",
        Ok(p::Verdict::Hold) => "HOLD",
        _ => "not inspected",
    }
}

pub fn status(s: i32) -> &'static str {
    match p::LotStatus::try_from(s) {
        Ok(p::LotStatus::Active) => "active",
        Ok(p::LotStatus::OnHold) => "ON HOLD",
        Ok(p::LotStatus::Released) => "released",
        Ok(p::LotStatus::Recalled) => "RECALLED",
        Ok(p::LotStatus::Disposed) => "disposed",
        _ => "?",
    }
}

fn date(t: &Option<prost_types::Timestamp>) -> String {
    let Some(t) = t else { return "-".into() };
    match time::OffsetDateTime::from_unix_timestamp(t.seconds) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute()
        ),
        Err(_) => format!("{}s", t.seconds),
    }
}

/// One line describing a lot.
pub fn lot_line(l: &p::Lot) -> String {
    let mut s = format!(
        "{}  {} {}",
        l.lot_id,
        quantity(&l.quantity),
        if l.product_name.is_empty() {
            &l.product_id
        } else {
            &l.product_name
        }
    );
    let _ = write!(
        s,
        "  owner {}",
        if l.owner_name.is_empty() {
            &l.owner_id
        } else {
            &l.owner_name
        }
    );
    if !l.supplier_id.is_empty() {
        let _ = write!(
            s,
            "  from {}",
            if l.supplier_name.is_empty() {
                &l.supplier_id
            } else {
                &l.supplier_name
            }
        );
    }
    let _ = write!(s, "  @{}  {}", l.facility_id, date(&l.created_at));
    let insp: Vec<String> = l
        .inspections
        .iter()
        .filter(|i| !i.voided)
        .map(|i| {
            format!(
                "{}: {}",
                if i.standard_name.is_empty() {
                    &i.standard_id
                } else {
                    &i.standard_name
                },
                verdict(i.verdict)
            )
        })
        .collect();
    if !insp.is_empty() {
        let _ = write!(s, "  [{}]", insp.join("; "));
    }
    let st = status(l.status);
    if st != "active" {
        let _ = write!(s, "  {st}");
    }
    if l.voided {
        s.push_str("  VOIDED");
    }
    s
}

/// A trace as an indented tree from the root lot.
pub fn render_trace(t: &p::TraceReply, backward: bool) -> String {
    let lots: HashMap<&str, &p::Lot> = t
        .nodes
        .iter()
        .filter_map(|n| n.lot.as_ref())
        .map(|l| (l.lot_id.as_str(), l))
        .collect();
    let mut links: HashMap<&str, Vec<&p::TraceEdge>> = HashMap::new();
    for e in &t.edges {
        let from = if backward {
            e.output_lot_id.as_str()
        } else {
            e.input_lot_id.as_str()
        };
        links.entry(from).or_default().push(e);
    }
    let mut out = String::new();
    if let Some(pk) = &t.package {
        let _ = writeln!(
            out,
            "package {} ({}), label {}",
            pk.serial,
            quantity(&pk.quantity),
            pk.label
        );
    }
    match lots.get(t.root_lot_id.as_str()) {
        Some(l) => {
            let _ = writeln!(out, "{}", lot_line(l));
        }
        None => {
            let _ = writeln!(out, "{}", t.root_lot_id);
        }
    }
    let mut seen = HashSet::new();
    seen.insert(t.root_lot_id.as_str());
    fn walk<'a>(
        out: &mut String,
        id: &'a str,
        prefix: &str,
        links: &HashMap<&'a str, Vec<&'a p::TraceEdge>>,
        lots: &HashMap<&'a str, &'a p::Lot>,
        seen: &mut HashSet<&'a str>,
        backward: bool,
    ) {
        let Some(children) = links.get(id) else {
            return;
        };
        for (i, e) in children.iter().enumerate() {
            let last = i + 1 == children.len();
            let next = if backward {
                e.input_lot_id.as_str()
            } else {
                e.output_lot_id.as_str()
            };
            let branch = if last { "└─ " } else { "├─ " };
            let desc = lots.get(next).map_or_else(|| next.to_string(), |l| lot_line(l));
            let repeated = !seen.insert(next);
            let _ = writeln!(
                out,
                "{prefix}{branch}{} {} ({}): {desc}{}",
                if backward { "used" } else { "into" },
                quantity(&e.quantity),
                e.step,
                if repeated { "  (shown above)" } else { "" }
            );
            if !repeated {
                let deeper = format!("{prefix}{}", if last { "   " } else { "│  " });
                walk(out, next, &deeper, links, lots, seen, backward);
            }
        }
    }
    walk(&mut out, &t.root_lot_id, "", &links, &lots, &mut seen, backward);
    if !backward {
        if !t.packages.is_empty() {
            let shipped = t.packages.iter().filter(|p| p.shipped).count();
            let _ = writeln!(out, "\npackages: {} ({} shipped)", t.packages.len(), shipped);
        }
        if !t.shipments.is_empty() {
            let _ = writeln!(out, "\nshipments:");
            for s in &t.shipments {
                let what = match (&s.quantity, s.package_serials.len()) {
                    (Some(_), 0) => quantity(&s.quantity),
                    (None, n) => format!("{n} packages"),
                    (Some(_), n) => format!("{} + {n} packages", quantity(&s.quantity)),
                };
                let _ = writeln!(
                    out,
                    "  {}  {} of {} to {} ({})  {}",
                    date(&s.occurred_at),
                    what,
                    s.lot_id,
                    if s.consignee_name.is_empty() {
                        &s.consignee_id
                    } else {
                        &s.consignee_name
                    },
                    s.consignee_id,
                    s.document
                );
            }
        }
    }
    if t.truncated {
        let why = match p::TraceTruncation::try_from(t.truncated_reason) {
            Ok(p::TraceTruncation::MaxNodes) => "the trace reached the node limit; lower --max-depth",
            _ => "the trace goes deeper than the depth limit",
        };
        let _ = writeln!(out, "\n(truncated: {why})");
    }
    out
}

pub fn render_shares(r: &p::OriginSharesReply) -> String {
    let mut out = format!("origin of lot {}\n", r.lot_id);
    for (title, list) in [
        ("by UKM", &r.by_ukm),
        ("by supplier", &r.by_supplier),
        ("by receipt lot", &r.by_receipt),
    ] {
        let _ = writeln!(out, "\n{title}:");
        for s in list {
            let _ = writeln!(
                out,
                "  {:>7} %  {:<24} {}  ({})",
                s.percent, s.party_id, s.party_name, s.fraction
            );
        }
    }
    out
}

fn event_kind(e: &Option<p::Event>) -> &'static str {
    use p::event::Kind;
    match e.as_ref().and_then(|e| e.kind.as_ref()) {
        Some(Kind::PartyRegistered(_)) => "PartyRegistered",
        Some(Kind::FacilityRegistered(_)) => "FacilityRegistered",
        Some(Kind::ProductRegistered(_)) => "ProductRegistered",
        Some(Kind::QualityStandardRegistered(_)) => "QualityStandardRegistered",
        Some(Kind::MaterialReceived(_)) => "MaterialReceived",
        Some(Kind::LotInspected(_)) => "LotInspected",
        Some(Kind::LotProcessed(_)) => "LotProcessed",
        Some(Kind::LotPacked(_)) => "LotPacked",
        Some(Kind::LotShipped(_)) => "LotShipped",
        Some(Kind::LotStatusChanged(_)) => "LotStatusChanged",
        Some(Kind::TokenIssued(_)) => "TokenIssued",
        Some(Kind::TokenRevoked(_)) => "TokenRevoked",
        Some(Kind::EventVoided(_)) => "EventVoided",
        Some(Kind::EpcisObserved(_)) => "EpcisObserved",
        None => "?",
    }
}

pub fn render_history(h: &p::LotHistoryReply) -> String {
    let mut out = format!("history of lot {}\n", h.lot_id);
    for e in &h.entries {
        let _ = write!(
            out,
            "  #{:<6} {}  {:<18} {:<24} {}:{}",
            e.position,
            date(&e.recorded_at),
            event_kind(&e.event),
            e.event_id,
            e.chain,
            e.sequence
        );
        if let Some(p::event::Kind::LotInspected(i)) = e.event.as_ref().and_then(|x| x.kind.as_ref()) {
            let _ = write!(out, "  {} {}", i.standard_id, verdict(i.verdict));
        }
        if let Some(p::event::Kind::LotStatusChanged(s)) = e.event.as_ref().and_then(|x| x.kind.as_ref()) {
            let _ = write!(out, "  → {} ({})", status(s.status), s.reason);
        }
        if let Some(p::event::Kind::EventVoided(v)) = e.event.as_ref().and_then(|x| x.kind.as_ref()) {
            let _ = write!(out, "  voids {} ({})", v.voided_event_id, v.reason);
        }
        if e.voided {
            let _ = write!(out, "  VOIDED by {} ({})", e.voided_by, e.void_reason);
        }
        out.push('\n');
    }
    out
}

pub fn render_lot(l: &p::Lot) -> String {
    let mut out = format!("{}\n", lot_line(l));
    let _ = writeln!(
        out,
        "  balance {}  status {}  verdict {}",
        quantity(&l.balance),
        status(l.status),
        verdict(l.verdict)
    );
    let _ = writeln!(out, "  created by {} ({})", l.created_by, l.created_as);
    if let Some(o) = &l.origin {
        let _ = writeln!(out, "  origin {} {}", o.place, o.plot_id);
        if !o.geometry.is_empty() {
            let area = match o.area_ha.as_str() {
                "" => String::new(),
                a => format!(", {a} ha"),
            };
            let _ = writeln!(out, "  plot ({}{area}) {}", o.producer_country, o.geometry);
        }
    }
    for d in &l.documents {
        let valid = match &d.valid_until {
            Some(t) => format!(", valid until {}", date(&Some(*t))),
            None => String::new(),
        };
        let issuer = match d.issuer.as_str() {
            "" => String::new(),
            i => format!(" by {i}"),
        };
        let _ = writeln!(out, "  document {} {}{issuer}{valid}", d.kind, d.reference);
    }
    for i in &l.inspections {
        let _ = writeln!(
            out,
            "  inspection {} {}: {}{}{}",
            i.event_id,
            i.standard_name,
            verdict(i.verdict),
            if i.findings.is_empty() {
                String::new()
            } else {
                format!(" — {}", i.findings.join("; "))
            },
            if i.voided { " (voided)" } else { "" }
        );
    }
    if !l.packages.is_empty() {
        let _ = writeln!(out, "  {} packages, e.g. {}", l.packages.len(), l.packages[0].label);
    }
    for s in &l.shipments {
        let dds = match s.dds_reference.as_str() {
            "" => String::new(),
            r => format!("  EUDR due diligence statement {r}"),
        };
        let _ = writeln!(
            out,
            "  shipped {} to {} ({}){dds}",
            date(&s.occurred_at),
            s.consignee_id,
            s.document
        );
    }
    out
}

pub fn render_lookup(r: &p::LookupLabelReply) -> String {
    let mut out = format!(
        "GTIN {}  lot {}{}\n",
        r.gtin,
        r.lot_id,
        if r.serial.is_empty() {
            String::new()
        } else {
            format!("  serial {}", r.serial)
        }
    );
    if let Some(l) = &r.lot {
        out.push_str(&render_lot(l));
    }
    out
}

/// Tokens as a table: id, role, scope, expiry, state, label.
pub fn render_tokens(r: &p::ListTokensReply) -> String {
    let mut out = String::new();
    let day = |t: &Option<prost_types::Timestamp>| {
        t.as_ref()
            .map(|t| t.to_string().chars().take(10).collect::<String>())
            .unwrap_or_default()
    };
    for t in &r.tokens {
        let role = p::AccessRole::try_from(t.role)
            .map(|r| r.as_str_name().trim_start_matches("ACCESS_ROLE_").to_lowercase())
            .unwrap_or_else(|_| "?".into());
        let scope = match (t.facility_ids.is_empty(), t.party_id.is_empty()) {
            (false, _) => t.facility_ids.join(","),
            (true, false) => t.party_id.clone(),
            (true, true) => "-".into(),
        };
        let state = if t.revoked {
            "revoked"
        } else if t.active {
            "active"
        } else {
            "expired"
        };
        let _ = writeln!(
            out,
            "{:<20} {:<10} {:<24} expires {}  {:<8} {}",
            t.token_id,
            role,
            scope,
            day(&t.expires_at),
            state,
            t.label
        );
    }
    if r.tokens.is_empty() {
        out.push_str("no tokens\n");
    }
    out
}

/// Writes the label sheet of `lot` (one label per packed unit) to `out`,
/// PDF or SVG by its extension; returns what was written, for people.
pub fn write_label_sheet(lot: &p::Lot, base: &str, out: &std::path::Path) -> anyhow::Result<String> {
    let mut labels = Vec::with_capacity(lot.packages.len());
    for pk in &lot.packages {
        if !pk.label.starts_with("/01/") {
            anyhow::bail!(
                "package {} of lot {} has no label path from the server; nothing was written",
                pk.serial,
                lot.lot_id
            );
        }
        labels.push(jejak_label::Label::new(
            format!("{}{}", base.trim_end_matches('/'), pk.label),
            lot.product_name.clone(),
            &pk.gtin,
            &lot.lot_id,
            Some(&pk.serial),
        ));
    }
    if labels.is_empty() {
        anyhow::bail!(
            "lot {} has no packed units this token may see: labels are printed for packed lots, by an operator of its facility or an administrator (--token)",
            lot.lot_id
        );
    }
    let ext = out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("pdf") => {
            let pdf = jejak_label::sheet_pdf(&labels).context("lay out the label sheet")?;
            std::fs::write(out, pdf).with_context(|| format!("write {}", out.display()))?;
            Ok(format!("{} labels written to {}", labels.len(), out.display()))
        }
        Some("svg") => {
            let pages = jejak_label::sheet_svg(&labels).context("lay out the label sheet")?;
            let mut written = Vec::with_capacity(pages.len());
            for (n, page) in pages.iter().enumerate() {
                // One SVG is one page: page 2 onwards go next to the first.
                let file = match n {
                    0 => out.to_path_buf(),
                    n => {
                        let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("labels");
                        out.with_file_name(format!("{stem}-{}.svg", n + 1))
                    }
                };
                std::fs::write(&file, page).with_context(|| format!("write {}", file.display()))?;
                written.push(file.display().to_string());
            }
            Ok(format!(
                "{} labels on {} pages written to {}",
                labels.len(),
                pages.len(),
                written.join(", ")
            ))
        }
        _ => anyhow::bail!("give --out a .pdf or .svg file name, not {}", out.display()),
    }
}
