//! The provenance page and the resolver's error pages: server-rendered HTML
//! with inline CSS and SVG and no external resource (it must work offline
//! on a factory intranet), mobile-first, readable at 360 px.

use std::fmt::Write;

use super::text::{Lang, Words};
use jejak_read::provenance::{Alert, InspectionOut, Plot, Provenance, Status, StepKind, VerdictOut};

/// Dark text on white and badges whose colours pass WCAG AA (4.5:1) for
/// normal text; the badge words carry the meaning, not the colour alone.
const CSS: &str = "\
*{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans',sans-serif;color:#1b1b1b;background:#f4f4f1}\
header,main,footer{max-width:42rem;margin:0 auto;padding:0 1rem}\
header{padding-top:.75rem;padding-bottom:.5rem}\
.brand{font-weight:700;color:#14532d;letter-spacing:.02em}\
.tag{margin:0;color:#444;font-size:.875rem}\
h1{font-size:1.5rem;line-height:1.25;margin:.25rem 0 .5rem}\
h2{font-size:1.125rem;margin:0 0 .5rem}\
section{background:#fff;border-radius:.5rem;padding:1rem;margin:0 0 1rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}\
dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem .75rem;margin:0}\
dt{color:#444}dd{margin:0;overflow-wrap:anywhere}\
.note{color:#444;font-size:.875rem;margin:.25rem 0 .75rem}\
ul,ol{margin:0;padding:0;list-style:none}\
.card{border-top:1px solid #e2e2dc;padding:.75rem 0}.card:first-child{border-top:0;padding-top:0}\
.card h3{font-size:1rem;margin:0}\
.meta{color:#444;font-size:.875rem;margin:.125rem 0;overflow-wrap:anywhere}\
.badge{display:inline-block;border-radius:.25rem;padding:0 .375rem;font-size:.875rem;font-weight:600}\
.ok{background:#dcfce7;color:#14532d}.bad{background:#fee2e2;color:#7f1d1d}.wait{background:#fef3c7;color:#713f12}\
.ok:before{content:'\\2713\\00a0'}.bad:before{content:'\\2717\\00a0'}.wait:before{content:'!\\00a0'}\
.void{text-decoration:line-through;color:#555}\
.share{display:flex;justify-content:space-between;gap:.5rem}\
.bar{height:.375rem;background:#e2e2dc;border-radius:.25rem;margin:.125rem 0 .5rem}\
.bar span{display:block;height:100%;background:#15803d;border-radius:.25rem}\
.alert{background:#7f1d1d;color:#fff;border-radius:.5rem;padding:1rem;margin:0 0 1rem}\
.alert h2{color:#fff}.alert p{margin:.25rem 0}\
.alert.warn{background:#713f12}\
.tl li{position:relative;padding:0 0 .75rem 1.25rem;border-left:2px solid #d6d6cf;margin-left:.375rem}\
.tl li:before{content:'';position:absolute;left:-.4rem;top:.35rem;width:.7rem;height:.7rem;border-radius:50%;background:#15803d}\
.tl time{display:block;color:#444;font-size:.875rem}\
.map svg{width:100%;height:auto;background:#eef5ee;border-radius:.25rem}\
footer{padding-bottom:2rem;font-size:.875rem;color:#444}\
a{color:#14532d}\
code{font-size:.8125rem;overflow-wrap:anywhere}\
";

/// The page stays small (under 100 KB) whatever the genealogy: beyond these,
/// a line says how many more there are and links to the full JSON.
const MAX_INPUT_CARDS: usize = 60;
const MAX_STEPS: usize = 80;
/// Where each section stops adding entries, in bytes of the page so far
/// (the timeline: of its own): the sum stays under 100 KB whatever the
/// lengths of the names and reasons in the records.
const INPUTS_UNTIL: usize = 48 * 1024;
const STEPS_BUDGET: usize = 20 * 1024;
const CORRECTIONS_UNTIL: usize = 80 * 1024;
const MAP_UNTIL: usize = 82 * 1024;
const PLOTS_UNTIL: usize = 94 * 1024;
const MAX_ALERTS: usize = 8;
const MAX_PLOTS: usize = 40;
const MAX_CORRECTIONS: usize = 20;
/// Inspections shown per lot: the latest ones.
const MAX_INSPECTIONS: usize = 4;

/// "… and 12 more", linked to the full data.
fn more(out: &mut String, t: &Words, hidden: usize, self_path: &str) {
    if hidden > 0 {
        let _ = write!(
            out,
            "<p class=\"note\"><a href=\"{}?linkType=gs1:traceability\" type=\"application/json\">{}</a></p>",
            Esc(self_path),
            t.more.replace("{n}", &hidden.to_string())
        );
    }
}

/// Text HTML-escaped for element content and quoted attributes, written
/// straight into the page (no intermediate string).
pub struct Esc<'a>(pub &'a str);

impl std::fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

fn head(out: &mut String, lang: Lang, title: &str) {
    let t = lang.t();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light\"><title>{} · {}</title><style>{CSS}</style></head><body>\
         <header><div class=\"brand\">{}</div><p class=\"tag\">{}</p></header><main>",
        lang.code(),
        Esc(title),
        t.site,
        t.site,
        t.tagline
    );
}

/// The verdict in words; the mark before it is drawn by CSS, so the text
/// reads "SNI 6128:2020 Premium — memenuhi syarat" to people and to screen readers.
fn verdict_badge(t: &Words, v: Option<VerdictOut>) -> String {
    let class = match v {
        Some(VerdictOut::Conformant) => "ok",
        Some(VerdictOut::NonConformant) => "bad",
        _ => "wait",
    };
    format!("<span class=\"badge {class}\">{}</span>", t.verdict(v))
}

/// "SNI 6128:2020 Premium — memenuhi syarat", with the date.
fn inspection_line(out: &mut String, t: &Words, i: &InspectionOut) {
    let class = if i.voided { " class=\"void\"" } else { "" };
    let _ = write!(
        out,
        "<p class=\"meta\"><span{class}>{} — {}</span> <time datetime=\"{}\">{}</time>{}</p>",
        Esc(&i.standard),
        verdict_badge(t, i.verdict),
        i.at.rfc3339(),
        t.date(i.at),
        if i.voided {
            format!(" ({})", t.voided)
        } else {
            String::new()
        }
    );
}

fn alerts(out: &mut String, t: &Words, page: &Provenance, self_path: &str) {
    if page.alerts.is_empty() {
        return;
    }
    let severe = page.alerts.iter().any(|a| match a {
        Alert::Status { status, .. } => *status == Status::Recalled,
        Alert::Verdict { verdict, .. } => *verdict == VerdictOut::NonConformant,
        Alert::Input { verdict, status, .. } => {
            *verdict == Some(VerdictOut::NonConformant) || *status == Status::Recalled
        }
        Alert::Voided { .. } => true,
        Alert::Unchecked => false,
    });
    let _ = write!(
        out,
        "<section class=\"alert{}\" role=\"alert\"><h2>{}</h2>",
        if severe { "" } else { " warn" },
        t.alert_title
    );
    for a in page.alerts.iter().take(MAX_ALERTS) {
        match a {
            Alert::Status { status, reason, since } => {
                let _ = write!(out, "<p><strong>{}</strong>", t.status(*status));
                if let Some(at) = since {
                    let _ = write!(out, " — {} {}", t.since, t.date(*at));
                }
                out.push_str("</p>");
                if !reason.is_empty() {
                    let _ = write!(out, "<p>{}</p>", Esc(reason));
                }
            }
            Alert::Verdict { verdict, standard } => {
                let _ = write!(
                    out,
                    "<p><strong>{}:</strong> {} — {}</p>",
                    t.alert_verdict,
                    Esc(standard),
                    t.verdict(Some(*verdict))
                );
            }
            Alert::Input {
                lot_id,
                product,
                verdict,
                status,
            } => {
                let state = match verdict {
                    Some(v @ (VerdictOut::NonConformant | VerdictOut::Hold)) => t.verdict(Some(*v)),
                    _ => t.status(*status),
                };
                let _ = write!(
                    out,
                    "<p><strong>{}:</strong> {} ({} {}) — {}</p>",
                    t.alert_input,
                    Esc(product),
                    t.lot,
                    Esc(lot_id),
                    state
                );
            }
            Alert::Voided { reason } => {
                let _ = write!(out, "<p><strong>{}</strong>", t.alert_voided);
                if !reason.is_empty() {
                    let _ = write!(out, ": {}", Esc(reason));
                }
                out.push_str("</p>");
            }
            Alert::Unchecked => {
                let _ = write!(out, "<p>{}</p>", t.alert_unchecked);
            }
        }
    }
    more(out, t, page.alerts.len().saturating_sub(MAX_ALERTS), self_path);
    out.push_str("</section>");
}

/// The provenance page of a label.
pub fn provenance(page: &Provenance, lang: Lang, self_path: &str) -> String {
    let t = lang.t();
    let mut out = String::with_capacity(16 * 1024);
    head(
        &mut out,
        lang,
        &format!("{} — {} {}", page.product.name, t.lot, page.lot_id),
    );
    alerts(&mut out, t, page, self_path);

    // The product and lot.
    let _ = write!(
        out,
        "<section aria-labelledby=\"p\"><h1 id=\"p\">{}</h1><dl><dt>{}</dt><dd>{}</dd>",
        Esc(&page.product.name),
        t.lot,
        Esc(&page.lot_id)
    );
    if let Some(serial) = &page.serial {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", t.serial, Esc(serial));
    }
    let _ = write!(
        out,
        "<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd><time datetime=\"{}\">{}</time></dd>\
         <dt>{}</dt><dd>{}</dd></dl>",
        t.gtin,
        Esc(&page.gtin),
        t.facility,
        Esc(&page.facility.name),
        t.made,
        page.made_at.rfc3339(),
        t.date(page.made_at),
        t.status,
        t.status(page.status)
    );
    if !page.inspections.is_empty() {
        let _ = write!(out, "<h2 style=\"margin-top:.75rem\">{}</h2>", t.final_check);
        for i in latest(&page.inspections) {
            inspection_line(&mut out, t, i);
        }
    }
    out.push_str("</section>");

    // Who made it.
    let _ = write!(
        out,
        "<section aria-labelledby=\"u\"><h2 id=\"u\">{}</h2><p class=\"note\">{}</p><ul>",
        t.produced_by, t.produced_by_note
    );
    shares(&mut out, &page.ukm_shares);
    out.push_str("</ul>");
    if !page.supplier_shares.is_empty() {
        let _ = write!(out, "<h2 style=\"margin-top:.75rem\">{}</h2><ul>", t.suppliers);
        shares(&mut out, &page.supplier_shares);
        out.push_str("</ul>");
    }
    out.push_str("</section>");

    // From what.
    if !page.inputs.is_empty() {
        let _ = write!(
            out,
            "<section aria-labelledby=\"i\"><h2 id=\"i\">{}</h2><p class=\"note\">{}</p><ul>",
            t.inputs, t.inputs_note
        );
        let mut shown = 0;
        for l in page.inputs.iter().take(MAX_INPUT_CARDS) {
            if out.len() > INPUTS_UNTIL {
                break;
            }
            shown += 1;
            let _ = write!(
                out,
                "<li class=\"card\"><h3><span{}>{}</span> <span class=\"meta\">· {} {}</span>{}</h3>",
                if l.voided { " class=\"void\"" } else { "" },
                Esc(&l.product),
                t.lot,
                Esc(&l.lot_id),
                if l.voided {
                    format!(" <em>({})</em>", t.voided)
                } else {
                    String::new()
                }
            );
            if l.received {
                let _ = write!(
                    out,
                    "<p class=\"meta\">{} {}, {}</p>",
                    t.received_from,
                    Esc(&l.supplier),
                    t.date(l.made_at)
                );
            } else {
                let _ = write!(
                    out,
                    "<p class=\"meta\">{} {} · {}, {}</p>",
                    t.made_by_step,
                    Esc(&l.made_as),
                    Esc(&l.facility),
                    t.date(l.made_at)
                );
            }
            let _ = write!(out, "<p class=\"meta\">{} {}", t.owner, Esc(&l.owner));
            if !l.place.is_empty() {
                let _ = write!(out, " · {} {}", t.origin, Esc(&l.place));
            }
            out.push_str("</p>");
            if matches!(l.status, Status::OnHold | Status::Recalled | Status::Disposed) {
                let _ = write!(
                    out,
                    "<p class=\"meta\"><span class=\"badge bad\">{}</span></p>",
                    t.status(l.status)
                );
            }
            if l.inspections.is_empty() {
                let _ = write!(out, "<p class=\"meta\">{}</p>", t.no_inspection);
            }
            for i in latest(&l.inspections) {
                inspection_line(&mut out, t, i);
            }
            out.push_str("</li>");
        }
        out.push_str("</ul>");
        more(&mut out, t, page.inputs.len() - shown, self_path);
        if !page.complete {
            let _ = write!(out, "<p class=\"note\">{}</p>", t.incomplete);
        }
        out.push_str("</section>");
    }

    // The journey.
    let _ = write!(
        out,
        "<section aria-labelledby=\"j\"><h2 id=\"j\">{}</h2><ol class=\"tl\">",
        t.journey
    );
    // The latest steps, nearest the product in hand, as many as fit.
    let mut items: Vec<String> = Vec::new();
    let mut used = 0;
    for s in page.timeline.iter().rev().take(MAX_STEPS) {
        let item = step_item(t, s);
        used += item.len();
        if used > STEPS_BUDGET {
            break;
        }
        items.push(item);
    }
    more(&mut out, t, page.timeline.len() - items.len(), self_path);
    for item in items.iter().rev() {
        out.push_str(item);
    }
    out.push_str("</ol></section>");

    // Corrections.
    let _ = write!(
        out,
        "<section aria-labelledby=\"c\"><h2 id=\"c\">{}</h2>",
        t.corrections
    );
    if page.corrections.is_empty() {
        let _ = write!(out, "<p class=\"meta\">{}</p>", t.corrections_none);
    } else {
        out.push_str("<ul>");
        let mut shown = 0;
        for c in page.corrections.iter().take(MAX_CORRECTIONS) {
            if out.len() > CORRECTIONS_UNTIL {
                break;
            }
            shown += 1;
            let _ = write!(
                out,
                "<li class=\"card\"><p class=\"meta\"><strong>{}</strong> · {} {}",
                t.voided_what(&c.what),
                t.lot,
                Esc(&c.lot_id)
            );
            if let Some(at) = c.at {
                let _ = write!(out, " · {}", t.date(at));
            }
            let _ = write!(out, "</p><p>{}</p></li>", Esc(&c.reason));
        }
        out.push_str("</ul>");
        more(&mut out, t, page.corrections.len() - shown, self_path);
    }
    out.push_str("</section>");

    if !page.plots.is_empty() && out.len() < MAP_UNTIL {
        let _ = write!(
            out,
            "<section class=\"map\" aria-labelledby=\"m\"><h2 id=\"m\">{}</h2><p class=\"note\">{}</p>",
            t.plots, t.plots_note
        );
        let plots = &page.plots[..page.plots.len().min(MAX_PLOTS)];
        map(&mut out, t, plots);
        out.push_str("<ul>");
        let mut shown = 0;
        for (n, pl) in plots.iter().enumerate() {
            if out.len() > PLOTS_UNTIL {
                break;
            }
            shown += 1;
            let _ = write!(
                out,
                "<li class=\"meta\"><strong>{}</strong> {} — {} ({}, {})</li>",
                n + 1,
                Esc(&pl.plot_id),
                Esc(&pl.place),
                coord(pl.latitude, 'S', 'N'),
                coord(pl.longitude, 'W', 'E')
            );
        }
        out.push_str("</ul>");
        more(&mut out, t, page.plots.len() - shown, self_path);
        out.push_str("</section>");
    }

    if let Some(v) = &page.verifiable {
        let p = Esc(self_path);
        let _ = write!(
            out,
            "<section aria-labelledby=\"v\"><h2 id=\"v\">{}</h2><p class=\"note\">{}</p><dl>\
             <dt>{}</dt><dd>{} · <time datetime=\"{}\">{}</time></dd><dt>{}</dt><dd>{} {}</dd></dl>\
             <p><a href=\"{p}?linkType=jejak:provenanceBundle\" type=\"application/json\" download>{}</a> · \
             <a href=\"/log/key\"><code>{}</code></a></p></section>",
            t.verifiable,
            t.verifiable_note,
            t.checkpoint,
            v.tree_size,
            v.signed_at.rfc3339(),
            t.date(v.signed_at),
            t.witnesses_title,
            v.witnesses,
            t.witnesses,
            t.bundle,
            Esc(&v.log_key),
        );
    }
    out.push_str("</main><footer>");
    if let Some(r) = &page.last_record {
        let _ = write!(
            out,
            "<p>{}: {} #{} · blake3 <code>{}</code></p>",
            t.record,
            Esc(&r.chain),
            r.sequence,
            Esc(&r.hash)
        );
    }
    let other = match lang {
        Lang::Id => "en",
        Lang::En => "id",
    };
    let p = Esc(self_path);
    let _ = write!(
        out,
        "<p>{}: <a href=\"{p}?linkType=gs1:traceability\" type=\"application/json\">JSON</a> · \
         <a href=\"{p}?linkType=linkset\" type=\"application/linkset+json\">linkset</a> · \
         <a href=\"/labels{p}?format=svg\">QR</a></p>\
         <p><a href=\"{p}?lang={other}\" hreflang=\"{other}\" lang=\"{other}\">{}</a></p></footer></body></html>",
        t.data_links, t.other_lang
    );
    out
}

/// One step of the journey as a list item.
fn step_item(t: &Words, s: &jejak_read::provenance::Step) -> String {
    let mut item = String::with_capacity(256);
    let _ = write!(
        item,
        "<li><time datetime=\"{}\">{}</time><strong>{}</strong>",
        s.at.rfc3339(),
        t.date_time(s.at),
        t.step(s.kind)
    );
    let what = match s.kind {
        StepKind::Status => s.status.map(|st| t.status(st).to_string()).unwrap_or_default(),
        _ => s.what.clone(),
    };
    let class = if s.voided { " class=\"void\"" } else { "" };
    let _ = write!(item, "<span{class}>");
    if !what.is_empty() {
        let _ = write!(item, ": {}", Esc(&what));
    }
    match s.kind {
        StepKind::Inspection => {
            let _ = write!(item, " — {}", t.verdict(s.verdict));
        }
        StepKind::Receipt | StepKind::Processing if !s.detail.is_empty() => {
            let _ = write!(item, " · {}", Esc(&s.detail));
        }
        _ => {}
    }
    let _ = write!(
        item,
        "</span> <span class=\"meta\">({} {})</span>",
        t.lot,
        Esc(&s.lot_id)
    );
    if s.voided {
        let _ = write!(item, " <em>{}</em>", t.voided);
    }
    if matches!(s.kind, StepKind::Status | StepKind::Correction) && !s.detail.is_empty() {
        let _ = write!(item, "<p class=\"meta\">{}</p>", Esc(&s.detail));
    }
    item.push_str("</li>");
    item
}

/// The latest inspections of a lot (the list is oldest first).
fn latest(list: &[InspectionOut]) -> &[InspectionOut] {
    &list[list.len().saturating_sub(MAX_INSPECTIONS)..]
}

fn shares(out: &mut String, list: &[jejak_read::provenance::ShareOut]) {
    for s in list {
        // Percent strings are "37.50": the bar needs no more precision.
        let width = s.percent.parse::<f64>().unwrap_or(0.0).clamp(0.0, 100.0);
        let _ = write!(
            out,
            "<li><div class=\"share\"><span>{}</span><strong>{}%</strong></div>\
             <div class=\"bar\" aria-hidden=\"true\"><span style=\"width:{width:.1}%\"></span></div></li>",
            Esc(&s.name),
            Esc(&s.percent)
        );
    }
}

fn coord(v: f64, neg: char, pos: char) -> String {
    format!("{:.4}° {}", v.abs(), if v < 0.0 { neg } else { pos })
}

fn coord_label(v: f64, decimals: usize, neg: char, pos: char) -> String {
    // Rounding first keeps -0.0 and 7.0000001 from showing.
    let r = (v * 100.0).round() / 100.0;
    format!("{:.decimals$}°{}", r.abs(), if r < 0.0 { neg } else { pos })
}

/// The plots on a small map: an equirectangular frame around them with a
/// graticule and numbered points (no tiles: nothing is fetched).
fn map(out: &mut String, t: &Words, plots: &[Plot]) {
    const W: f64 = 320.0;
    const H: f64 = 200.0;
    const PAD: f64 = 24.0;
    let (mut lat0, mut lat1, mut lon0, mut lon1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in plots {
        lat0 = lat0.min(p.latitude);
        lat1 = lat1.max(p.latitude);
        lon0 = lon0.min(p.longitude);
        lon1 = lon1.max(p.longitude);
    }
    // At least ~0.05° across, so one plot (or close ones) is not a blow-up.
    let widen = |lo: &mut f64, hi: &mut f64| {
        let span = (*hi - *lo).max(0.05) * 1.15;
        let mid = (*lo + *hi) / 2.0;
        *lo = mid - span / 2.0;
        *hi = mid + span / 2.0;
    };
    widen(&mut lat0, &mut lat1);
    widen(&mut lon0, &mut lon1);
    // Same scale on both axes (near the equator a degree is a degree).
    let scale = ((W - 2.0 * PAD) / (lon1 - lon0)).min((H - 2.0 * PAD) / (lat1 - lat0));
    let (cx, cy) = ((lon0 + lon1) / 2.0, (lat0 + lat1) / 2.0);
    let x = |lon: f64| W / 2.0 + (lon - cx) * scale;
    let y = |lat: f64| H / 2.0 - (lat - cy) * scale;
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"mt\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"mt\">{}</title><g stroke=\"#b9cdb9\" stroke-width=\"1\" fill=\"none\">",
        Esc(t.plots)
    );
    // A graticule over the whole visible area, at a round step giving at
    // most six lines across the longer side.
    let (vlon0, vlon1) = (cx - W / 2.0 / scale, cx + W / 2.0 / scale);
    let (vlat0, vlat1) = (cy - H / 2.0 / scale, cy + H / 2.0 / scale);
    let longest = (vlon1 - vlon0).max(vlat1 - vlat0);
    let step = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]
        .into_iter()
        .find(|s| longest / s <= 6.0)
        .unwrap_or(10.0);
    let decimals = if step < 0.1 { 2 } else { 1 };
    let mut labels = String::new();
    let mut g = (vlon0 / step).ceil() * step;
    while g <= vlon1 {
        let gx = x(g);
        let _ = write!(out, "<line x1=\"{gx:.1}\" y1=\"0\" x2=\"{gx:.1}\" y2=\"{H}\"/>");
        let _ = write!(
            labels,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            gx + 2.0,
            H - 4.0,
            coord_label(g, decimals, 'W', 'E')
        );
        g += step;
    }
    let mut g = (vlat0 / step).ceil() * step;
    while g <= vlat1 {
        let gy = y(g);
        let _ = write!(out, "<line x1=\"0\" y1=\"{gy:.1}\" x2=\"{W}\" y2=\"{gy:.1}\"/>");
        let _ = write!(
            labels,
            "<text x=\"2\" y=\"{:.1}\">{}</text>",
            gy - 2.0,
            coord_label(g, decimals, 'S', 'N')
        );
        g += step;
    }
    let _ = write!(
        out,
        "</g><g font-size=\"9\" fill=\"#3f4f3f\" font-family=\"sans-serif\">{labels}</g>\
         <g font-size=\"11\" font-family=\"sans-serif\" font-weight=\"700\">"
    );
    for (n, p) in plots.iter().enumerate() {
        let (px, py) = (x(p.longitude), y(p.latitude));
        let _ = write!(
            out,
            "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"7\" fill=\"#15803d\" stroke=\"#fff\" stroke-width=\"1.5\">\
             <title>{} — {}</title></circle>\
             <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#fff\">{}</text>",
            Esc(&p.plot_id),
            Esc(&p.place),
            py + 4.0,
            n + 1
        );
    }
    out.push_str("</g></svg>");
}

/// A friendly page for an unknown (404) or malformed (400) label.
pub fn problem(lang: Lang, not_found: bool, detail: &str) -> String {
    let t = lang.t();
    let (title, body) = if not_found {
        (t.not_found_title, t.not_found_body)
    } else {
        (t.bad_title, t.bad_body)
    };
    let mut out = String::with_capacity(4096);
    head(&mut out, lang, title);
    let _ = write!(
        out,
        "<section><h1>{title}</h1><p>{body}</p><p class=\"meta\"><code>{}</code></p></section></main></body></html>",
        Esc(detail)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jejak_read::provenance::{InputLot, Named, ShareOut, Stamp};

    const HOSTILE: &str = "<script>alert('x')</script> & \"quoted\"";

    fn page(plots: Vec<Plot>) -> Provenance {
        let named = |s: &str| Named {
            id: s.into(),
            name: s.into(),
        };
        Provenance {
            uri: "https://id.example/01/08997001001018/10/L1".into(),
            gtin: "08997001001018".into(),
            lot_id: "L1".into(),
            serial: None,
            product: named(HOSTILE),
            facility: named("Sentra"),
            owner: named("UKM"),
            status: Status::Recalled,
            verdict: Some(VerdictOut::Conformant),
            made_as: "penyosohan".into(),
            received: false,
            made_at: Stamp(1_789_111_800_000_000_000),
            alerts: vec![Alert::Status {
                status: Status::Recalled,
                reason: HOSTILE.into(),
                since: None,
            }],
            inspections: Vec::new(),
            ukm_shares: vec![ShareOut {
                id: "u".into(),
                name: HOSTILE.into(),
                fraction: "1/1".into(),
                percent: "100.00".into(),
            }],
            supplier_shares: Vec::new(),
            inputs: vec![InputLot {
                lot_id: "R1".into(),
                depth: 1,
                product: "Gabah".into(),
                facility: "Sentra".into(),
                owner: "UKM".into(),
                supplier: HOSTILE.into(),
                made_as: "received".into(),
                received: true,
                made_at: Stamp(0),
                place: String::new(),
                status: Status::Active,
                verdict: None,
                inspections: vec![InspectionOut {
                    standard: "SNI 6128:2020 Premium".into(),
                    verdict: Some(VerdictOut::NonConformant),
                    at: Stamp(0),
                    voided: false,
                }],
                voided: false,
            }],
            timeline: Vec::new(),
            corrections: Vec::new(),
            plots,
            complete: true,
            last_record: None,
            verifiable: Some(jejak_read::provenance::Verifiable {
                tree_size: 255,
                signed_at: Stamp(1_700_000_000_000_000_000),
                witnesses: 3,
                log_key: "jejak.example/log+00000000+<&>".into(),
            }),
        }
    }

    fn luminance(hex: &str) -> f64 {
        let hex = hex.trim_start_matches('#');
        let full: String = match hex.len() {
            3 => hex.chars().flat_map(|c| [c, c]).collect(),
            _ => hex.to_string(),
        };
        let channel = |i: usize| {
            let v = f64::from(u8::from_str_radix(&full[i..i + 2], 16).expect("hex colour")) / 255.0;
            if v <= 0.039_28 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
    }

    fn contrast(a: &str, b: &str) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    /// WCAG 2 AA for normal text (4.5:1), for every rule of the page's CSS
    /// that sets a text colour: against its own background, or the alert's,
    /// or the cards' and the page's.
    #[test]
    fn every_text_colour_meets_wcag_aa_contrast() {
        let mut checked = 0;
        for rule in CSS.split('}') {
            let Some((selector, decls)) = rule.split_once('{') else {
                continue;
            };
            let value = |name: &str| {
                decls
                    .split(';')
                    .find_map(|d| d.trim().strip_prefix(name))
                    .map(str::trim)
                    .filter(|v| v.starts_with('#'))
            };
            let Some(fg) = value("color:") else { continue };
            let backgrounds: Vec<&str> = match value("background:") {
                Some(bg) => vec![bg],
                None if selector.contains(".alert") => vec!["#7f1d1d", "#713f12"],
                None => vec!["#fff", "#f4f4f1"],
            };
            for bg in backgrounds {
                let ratio = contrast(fg, bg);
                assert!(ratio >= 4.5, "{selector}: {fg} on {bg} is {ratio:.2}:1");
                checked += 1;
            }
        }
        assert!(checked >= 12, "the CSS's colours were found: {checked}");
    }

    #[test]
    fn text_from_the_records_is_escaped_everywhere() {
        let html = provenance(&page(Vec::new()), Lang::Id, "/01/08997001001018/10/L1?\"><b>");
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"));
        assert!(html.starts_with("<!doctype html><html lang=\"id\">"));
        assert!(html.contains("SNI 6128:2020 Premium — <span class=\"badge bad\">tidak memenuhi syarat</span>"));
        // The recall comes first, as an alert.
        assert!(html.find("role=\"alert\"") < html.find("<h1"));
        let en = problem(Lang::En, true, HOSTILE);
        assert!(en.contains("lang=\"en\"") && en.contains("Unknown label") && !en.contains("<script>"));
        // The transparency log's section: its key escaped, the bundle linked.
        assert!(html.contains("jejak.example/log+00000000+&lt;&amp;&gt;"), "{html}");
        assert!(html.contains("?linkType=jejak:provenanceBundle\""));
        assert!(html.contains("<dd>3 saksi ikut menandatangani</dd>"));
    }

    #[test]
    fn a_huge_genealogy_still_makes_a_small_page() {
        let mut p = page(
            (0..400)
                .map(|i| Plot {
                    lot_id: format!("R{i}"),
                    plot_id: format!("PLOT-{i:04}-{HOSTILE}"),
                    place: "Desa Ngandong, Kec. Eromoko, Kab. Wonogiri (hutan rakyat)".into(),
                    latitude: -7.0 - f64::from(i) / 400.0,
                    longitude: 110.0 + f64::from(i) / 400.0,
                })
                .collect(),
        );
        let mut input = p.inputs[0].clone();
        input.inspections = (0..50).map(|_| input.inspections[0].clone()).collect();
        p.inspections = input.inspections.clone();
        p.inputs = (0..400).map(|_| input.clone()).collect();
        p.corrections = (0..400)
            .map(|i| jejak_read::provenance::Correction::inspection(&format!("R{i}"), &"x".repeat(512)))
            .collect();
        p.alerts = (0..400).map(|_| p.alerts[0].clone()).collect();
        p.timeline = (0..1200)
            .map(|i| jejak_read::provenance::Step {
                at: Stamp(i),
                kind: StepKind::Inspection,
                lot_id: format!("R{i}"),
                what: "SNI 6128:2020 Premium".into(),
                detail: String::new(),
                verdict: Some(VerdictOut::Conformant),
                status: None,
                voided: false,
            })
            .collect();
        let html = provenance(&p, Lang::Id, "/01/08997001001018/10/L1");
        assert!(html.len() < 100 * 1024, "{} bytes", html.len());
        // Every entry is either shown or counted in the "… and N more" line
        // of its section.
        let hidden: Vec<usize> = html
            .split("… dan ")
            .skip(1)
            .filter_map(|rest| rest.split(' ').next()?.parse().ok())
            .collect();
        let section = |from: &str, to: &str| {
            let a = html.find(from).expect("section start");
            let b = html[a..].find(to).map_or(html.len(), |b| a + b);
            html[a..b].to_string()
        };
        let inputs = section("id=\"i\"", "id=\"j\"");
        let cards = inputs.matches("<li class=\"card\">").count();
        assert!(cards >= 20, "a useful number of input cards: {cards}");
        assert!(
            hidden.contains(&(400 - cards)),
            "{hidden:?} counts the {} hidden inputs",
            400 - cards
        );
        let journey = section("id=\"j\"", "id=\"c\"");
        let steps = journey.matches("<li>").count();
        assert!(hidden.contains(&(1200 - steps)), "{hidden:?} counts the hidden steps");
        // The latest step is shown, the earliest hidden.
        assert!(journey.contains("(Lot R1199)") && !journey.contains("(Lot R0)"));
        let corrections = section("id=\"c\"", "id=\"m\"");
        let shown = corrections.matches("<li class=\"card\">").count();
        assert!(
            hidden.contains(&(400 - shown)),
            "{hidden:?} counts the hidden corrections"
        );
    }

    #[test]
    fn the_map_draws_every_plot_inside_its_frame() {
        let plot = |id: &str, lat: f64, lon: f64| Plot {
            lot_id: "R".into(),
            plot_id: id.into(),
            place: "Desa".into(),
            latitude: lat,
            longitude: lon,
        };
        for plots in [
            vec![plot("A", -7.9478, 110.8372)],
            vec![
                plot("A", -7.9478, 110.8372),
                plot("B", -7.7763, 110.6719),
                plot("C", -7.2458, 110.7185),
            ],
            // Both ends of the archipelago.
            vec![plot("A", 5.5, 95.3), plot("B", -8.5, 140.4)],
        ] {
            let mut out = String::new();
            map(&mut out, Lang::Id.t(), &plots);
            assert_eq!(out.matches("<circle").count(), plots.len());
            for c in out.split("<circle cx=\"").skip(1) {
                let mut nums = c.split('"').filter_map(|v| v.parse::<f64>().ok());
                let (x, y) = (nums.next().expect("cx"), nums.next().expect("cy"));
                assert!(
                    (0.0..=320.0).contains(&x) && (0.0..=200.0).contains(&y),
                    "({x}, {y}) in {out}"
                );
            }
            let lines = out.matches("<line").count();
            assert!((2..=16).contains(&lines), "{lines} graticule lines");
        }
    }
}
