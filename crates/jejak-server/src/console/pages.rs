//! The console's pages, as maud templates: every value is escaped by the
//! template engine; nothing is written as raw HTML.

use jejak_domain::read::{LotHistory, LotView, OriginShares, Trace};
use maud::{html, Markup, DOCTYPE};

use super::session::Session;
use super::text::{voided_earlier, Lang, Shown};
use crate::auth::Caller;

/// What the forms offer to pick from.
pub(super) struct Choices {
    pub(super) facilities: Vec<(String, String)>,
    pub(super) products: Vec<(String, String)>,
    pub(super) owners: Vec<(String, String)>,
    pub(super) suppliers: Vec<(String, String)>,
    /// Lots that can be used, with what is left of each.
    pub(super) open_lots: Vec<(String, String)>,
    /// Who may receive a shipment: customers and other facilities' operators.
    pub(super) customers: Vec<(String, String)>,
    pub(super) standards: Vec<jejak_domain::QualityStandard>,
    /// Products with a GTIN: (GTIN, name).
    pub(super) gtins: Vec<(String, String)>,
}

fn layout(lang: Lang, title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · jejak" }
                link rel="stylesheet" href="/console/style.css";
                script src="/console/app.js" defer {}
            }
            body {
                header {
                    a.brand href="/console" { "jejak" }
                    @if let Some(s) = session {
                        form.search method="get" action="/console/cari" {
                            input type="search" name="q" id="q"
                                placeholder=(lang.pick("Cari lot atau pindai label", "Find a lot or scan a label"))
                                aria-label=(lang.pick("Cari", "Search"));
                            button type="button" id="scan" hidden { (lang.pick("Pindai", "Scan")) }
                            button type="submit" { (lang.pick("Cari", "Find")) }
                        }
                        form.inline method="post" action="/console/bahasa" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            input type="hidden" name="lang" value=(if lang == Lang::Id { "en" } else { "id" });
                            button type="submit" { (if lang == Lang::Id { "English" } else { "Bahasa Indonesia" }) }
                        }
                        form.inline method="post" action="/console/keluar" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { (lang.pick("Keluar", "Sign out")) }
                        }
                    }
                }
                div #pending hidden {
                    h2 { (lang.pick("Menunggu jaringan", "Waiting for the network")) }
                    ul #pending-list {}
                }
                main { (body) }
            }
        }
    }
}

pub(super) fn message(lang: Lang, title: &str, text: &str) -> Markup {
    layout(
        lang,
        title,
        None,
        html! {
            h1 { (title) }
            p.refusal { (text) }
            p { a href="/console" { (lang.pick("Kembali", "Back")) } }
        },
    )
}

pub(super) fn sign_in(lang: Lang, error: Option<&str>) -> Markup {
    layout(
        lang,
        lang.pick("Masuk", "Sign in"),
        None,
        html! {
            h1 { (lang.pick("Masuk ke konsol", "Sign in to the console")) }
            form method="post" action="/console/masuk" {
                label for="token" { (lang.pick("Token akses", "Access token")) }
                input #token type="password" name="token" autocomplete="off" required
                    aria-describedby=[error.map(|_| "token-error")];
                @if let Some(e) = error { p.refusal #token-error { (e) } }
                p.hint { (lang.pick(
                    "Ketik sekali, atau pindai kode QR dari `jejak token create --qr`.",
                    "Type it once, or scan the QR code of `jejak token create --qr`."
                )) }
                button type="button" id="scan-token" hidden { (lang.pick("Pindai kode QR", "Scan the QR code")) }
                input type="hidden" name="lang" value=(lang.code());
                button type="submit" { (lang.pick("Masuk", "Sign in")) }
            }
        },
    )
}

pub(super) fn home(session: &Session, caller: &Caller) -> Markup {
    let lang = session.lang;
    let captures = caller.allows(crate::auth::Need::Capture);
    layout(
        lang,
        lang.pick("Konsol", "Console"),
        Some(session),
        html! {
            h1 { (lang.pick("Stasiun kerja", "Stations")) }
            p.who { (caller.actor()) }
            @if captures {
                nav.stations {
                    a href="/console/terima" { (lang.pick("Terima bahan", "Receive material")) }
                    a href="/console/periksa" { (lang.pick("Periksa mutu", "Inspect")) }
                    a href="/console/olah" { (lang.pick("Olah (giling, potong, rakit)", "Process (mill, cut, assemble)")) }
                    a href="/console/kemas" { (lang.pick("Kemas dan cetak label", "Pack and print labels")) }
                    a href="/console/kirim" { (lang.pick("Kirim", "Ship")) }
                    a href="/console/batal" { (lang.pick("Batalkan catatan", "Void a record")) }
                    a href="/console/impor" { (lang.pick("Impor dari spreadsheet (CSV)", "Import a spreadsheet (CSV)")) }
                    a href="/console/status" { (lang.pick("Tahan, lepas, tarik", "Hold, release, recall")) }
                }
            } @else {
                p { (lang.pick(
                    "Token ini hanya boleh membaca: cari lot untuk melihat riwayat dan asal-usulnya.",
                    "This token may only read: find a lot to see its history and origin."
                )) }
            }
        },
    )
}

/// A text input with its label and, when refused, the refusal next to it.
fn input(name: &str, label: &str, value: &str, shown: Option<&Shown>, kind: &str) -> Markup {
    let error = shown.filter(|s| s.field.as_deref() == Some(name));
    html! {
        div.field.refused[error.is_some()] {
            label for=(name) { (label) }
            input id=(name) name=(name) type=(kind) value=(value)
                aria-invalid=[error.map(|_| "true")];
            @if let Some(e) = error { p.refusal role="alert" { (e.message) } }
        }
    }
}

fn select(name: &str, label: &str, options: &[(String, String)], value: &str, shown: Option<&Shown>) -> Markup {
    let error = shown.filter(|s| s.field.as_deref() == Some(name));
    html! {
        div.field.refused[error.is_some()] {
            label for=(name) { (label) }
            select id=(name) name=(name) aria-invalid=[error.map(|_| "true")] {
                @for (id, text) in options {
                    option value=(id) selected[id == value] {
                        (text)
                        @if !id.is_empty() && !text.starts_with(id.as_str()) { " (" (id) ")" }
                    }
                }
            }
            @if let Some(e) = error { p.refusal role="alert" { (e.message) } }
        }
    }
}

fn value<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    super::field(fields, name)
}

/// A refusal that concerns no field of the form, shown above it.
fn general(shown: Option<&Shown>, fields: &[&str]) -> Markup {
    html! {
        @if let Some(s) = shown.filter(|s| s.field.as_deref().is_none_or(|f| !fields.contains(&f))) {
            p.refusal role="alert" { (s.message) }
        }
    }
}

const UNITS: [(&str, &str); 8] = [
    ("UNIT_KG", "kg"),
    ("UNIT_T", "t"),
    ("UNIT_G", "g"),
    ("UNIT_PCS", "pcs"),
    ("UNIT_M", "m"),
    ("UNIT_M2", "m²"),
    ("UNIT_M3", "m³"),
    ("UNIT_L", "l"),
];

pub(super) fn receive(
    session: &Session,
    choices: &Choices,
    fields: &[(String, String)],
    shown: Option<&Shown>,
) -> Markup {
    let lang = session.lang;
    let units: Vec<(String, String)> = UNITS.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let names = [
        "facility_id",
        "lot_id",
        "product_id",
        "quantity",
        "owner_id",
        "supplier_id",
        "origin.place",
        "origin.plot_id",
    ];
    layout(
        lang,
        lang.pick("Terima bahan", "Receive material"),
        Some(session),
        html! {
            h1 { (lang.pick("Terima bahan", "Receive material")) }
            (general(shown, &names))
            form.capture method="post" action="/console/terima" data-offline="receive" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="command_id" value=(value(fields, "command_id"));
                (select("facility_id", lang.pick("Fasilitas", "Facility"), &choices.facilities, value(fields, "facility_id"), shown))
                (input("lot_id", lang.pick("Nomor lot", "Lot number"), value(fields, "lot_id"), shown, "text"))
                (select("product_id", lang.pick("Produk", "Product"), &choices.products, value(fields, "product_id"), shown))
                div.pair {
                    (input("quantity", lang.pick("Jumlah", "Quantity"), value(fields, "quantity"), shown, "text"))
                    (select("unit", lang.pick("Satuan", "Unit"), &units, value(fields, "unit"), shown))
                }
                (select("owner_id", lang.pick("Pemilik (UKM)", "Owner (UKM)"), &choices.owners, value(fields, "owner_id"), shown))
                (select("supplier_id", lang.pick("Pemasok", "Supplier"), &choices.suppliers, value(fields, "supplier_id"), shown))
                (input("origin.place", lang.pick("Asal (desa, kecamatan)", "Origin (village, district)"), value(fields, "origin.place"), shown, "text"))
                (input("origin.plot_id", lang.pick("Petak / lahan", "Plot"), value(fields, "origin.plot_id"), shown, "text"))
                @for i in 0..super::DOCUMENT_SLOTS {
                    fieldset.document {
                        legend { (lang.pick("Dokumen ", "Document ")) (i + 1) }
                        (select(&format!("doc{i}.kind"), lang.pick("Jenis", "Kind"), &document_kinds(lang), value(fields, &format!("doc{i}.kind")), shown))
                        (input(&format!("doc{i}.reference"), lang.pick("Nomor dokumen", "Reference"), value(fields, &format!("doc{i}.reference")), shown, "text"))
                        (input(&format!("doc{i}.issuer"), lang.pick("Penerbit", "Issuer"), value(fields, &format!("doc{i}.issuer")), shown, "text"))
                        (input(&format!("doc{i}.valid_until"), lang.pick("Berlaku sampai", "Valid until"), value(fields, &format!("doc{i}.valid_until")), shown, "date"))
                        label for=(format!("doc{i}.photo")) { (lang.pick("Foto atau pindaian", "Photo or scan")) }
                        input.document-file id=(format!("doc{i}.photo")) type="file" accept="image/*,application/pdf" capture="environment" data-into=(format!("doc{i}.file"));
                        input type="hidden" id=(format!("doc{i}.file")) name=(format!("doc{i}.file")) value=(value(fields, &format!("doc{i}.file")));
                    }
                }
                button type="submit" { (lang.pick("Catat penerimaan", "Record the receipt")) }
            }
        },
    )
}

pub(super) fn status(
    session: &Session,
    choices: &Choices,
    fields: &[(String, String)],
    shown: Option<&Shown>,
) -> Markup {
    let lang = session.lang;
    let statuses: Vec<(String, String)> = [
        ("LOT_STATUS_ON_HOLD", lang.pick("Tahan", "Hold")),
        ("LOT_STATUS_RELEASED", lang.pick("Lepas", "Release")),
        ("LOT_STATUS_RECALLED", lang.pick("Tarik (recall)", "Recall")),
        ("LOT_STATUS_DISPOSED", lang.pick("Musnahkan", "Dispose")),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let names = ["facility_id", "lot_id", "status", "reason"];
    layout(
        lang,
        lang.pick("Status lot", "Lot status"),
        Some(session),
        html! {
            h1 { (lang.pick("Tahan, lepas, tarik", "Hold, release, recall")) }
            (general(shown, &names))
            form.capture method="post" action="/console/status" data-offline="status" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="command_id" value=(value(fields, "command_id"));
                (select("facility_id", lang.pick("Fasilitas", "Facility"), &choices.facilities, value(fields, "facility_id"), shown))
                (input("lot_id", lang.pick("Nomor lot", "Lot number"), value(fields, "lot_id"), shown, "text"))
                (select("status", lang.pick("Tindakan", "Action"), &statuses, value(fields, "status"), shown))
                (input("reason", lang.pick("Alasan", "Reason"), value(fields, "reason"), shown, "text"))
                button type="submit" { (lang.pick("Catat", "Record")) }
            }
        },
    )
}

/// What a lot page says first, after a form was sent.
pub(super) enum Notice {
    Recorded,
    /// The form's command was recorded before and voided since (by this
    /// void): it does not stand.
    VoidedEarlier(String),
}

pub(super) fn lot(
    session: &Session,
    l: &LotView,
    (history, trace, shares): (Option<&LotHistory>, Option<&Trace>, Option<&OriginShares>),
    notice: Option<Notice>,
) -> Markup {
    let lang = session.lang;
    layout(
        lang,
        &l.lot_id,
        Some(session),
        html! {
            @match &notice {
                Some(Notice::Recorded) => p.recorded role="status" { (lang.pick("Tercatat.", "Recorded.")) },
                Some(Notice::VoidedEarlier(void)) => p.refusal role="alert" {
                    (voided_earlier(lang, void))
                },
                None => {},
            }
            @if !l.packages.is_empty() {
                p { a.button href=(format!("/console/lot/{}/label.pdf", l.lot_id)) { (lang.pick("Cetak lembar label (PDF)", "Print the label sheet (PDF)")) } }
            }
            h1 { (lang.pick("Lot ", "Lot ")) (l.lot_id) }
            dl {
                dt { (lang.pick("Produk", "Product")) } dd { (l.product.name) " (" (l.product.id) ")" }
                dt { (lang.pick("Fasilitas", "Facility")) } dd { (l.facility.name) }
                dt { (lang.pick("Pemilik", "Owner")) } dd { (l.owner.name) }
                @if let Some(s) = &l.supplier { dt { (lang.pick("Pemasok", "Supplier")) } dd { (s.name) } }
                @if let Some(q) = &l.quantity { dt { (lang.pick("Jumlah", "Quantity")) } dd { (q) } }
                @if let Some(b) = &l.balance { dt { (lang.pick("Sisa", "Left")) } dd { (b) } }
                dt { (lang.pick("Status", "Status")) } dd { (l.status.label()) }
                @if let Some(v) = l.verdict {
                    dt { (lang.pick("Hasil uji", "Verdict")) }
                    dd.verdict {
                        (match (v, lang) {
                            (jejak_domain::Verdict::Conformant, Lang::Id) => "memenuhi syarat",
                            (jejak_domain::Verdict::NonConformant, Lang::Id) => "tidak memenuhi syarat",
                            (jejak_domain::Verdict::Hold, Lang::Id) => "ditahan untuk diperiksa",
                            (jejak_domain::Verdict::Conformant, Lang::En) => "conformant",
                            (jejak_domain::Verdict::NonConformant, Lang::En) => "non-conformant",
                            (jejak_domain::Verdict::Hold, Lang::En) => "on hold for review",
                        })
                    }
                }
                @if !l.origin.place.is_empty() { dt { (lang.pick("Asal", "Origin")) } dd { (l.origin.place) } }
            }
            @if let Some(t) = trace.filter(|t| t.nodes.len() > 1) {
                h2 { (lang.pick("Dibuat dari", "Made from")) }
                ul.trace {
                    @for n in t.nodes.iter().filter(|n| n.depth > 0) {
                        // No inline style: the CSP allows none; a class per depth.
                        li class=(format!("depth-{}", n.depth.min(8))) {
                            a href=(format!("/console/lot/{}", n.lot.lot_id)) { (n.lot.lot_id) }
                            " — " (n.lot.product.name) " · " (n.lot.owner.name)
                        }
                    }
                }
                @if t.truncated.is_some() { p.hint { (lang.pick("(terpotong)", "(cut short)")) } }
            }
            @if let Some(s) = shares {
                h2 { (lang.pick("Asal-usul (UKM)", "Origin (UKM)")) }
                ul { @for x in &s.by_ukm { li { (x.name) ": " (x.percent) "%" } } }
            }
            @if let Some(h) = history {
                h2 { (lang.pick("Riwayat", "History")) }
                ol.history {
                    @for e in &h.entries {
                        li.voided[e.voided_by.is_some()] {
                            (e.event.kind()) " · " (e.event_id)
                            @if e.voided_by.is_some() { " · " (lang.pick("dibatalkan", "voided")) }
                            @else if let Some(f) = e.event.facility_id() {
                                " · "
                                a href=(format!("/console/batal?event_id={}&facility_id={}&lot_id={}", e.event_id, f, l.lot_id)) {
                                    (lang.pick("batalkan", "void"))
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub(super) fn process(
    session: &Session,
    choices: &Choices,
    fields: &[(String, String)],
    shown: Option<&Shown>,
) -> Markup {
    let lang = session.lang;
    let units: Vec<(String, String)> = UNITS.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let mut lots = vec![(String::new(), lang.pick("— pilih lot —", "— pick a lot —").to_string())];
    lots.extend(choices.open_lots.iter().cloned());
    let mut owners = vec![(
        String::new(),
        lang.pick("pemilik masukan pertama", "owner of the first input")
            .to_string(),
    )];
    owners.extend(choices.owners.iter().cloned());
    let rows = super::INPUT_ROWS;
    let mut names: Vec<String> = ["facility_id", "process_step", "line"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for i in 0..rows {
        names.push(format!("inputs[{i}].lot_id"));
        names.push(format!("inputs[{i}].quantity"));
    }
    for i in 0..super::OUTPUT_ROWS {
        for n in ["lot_id", "product_id", "quantity", "owner_id"] {
            names.push(format!("outputs[{i}].{n}"));
        }
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    layout(
        lang,
        lang.pick("Olah", "Process"),
        Some(session),
        html! {
            h1 { (lang.pick("Olah: masukan menjadi keluaran", "Process: inputs into an output")) }
            (general(shown, &names))
            form.capture method="post" action="/console/olah" data-offline="process" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="command_id" value=(value(fields, "command_id"));
                (select("facility_id", lang.pick("Fasilitas", "Facility"), &choices.facilities, value(fields, "facility_id"), shown))
                (input("process_step", lang.pick("Tahap (mis. giling)", "Step (e.g. milling)"), value(fields, "process_step"), shown, "text"))
                (input("line", lang.pick("Lini / mesin", "Line / machine"), value(fields, "line"), shown, "text"))
                h2 { (lang.pick("Masukan", "Inputs")) }
                @for i in 0..rows {
                    @let lot = format!("inputs[{i}].lot_id");
                    @let quantity = format!("inputs[{i}].quantity");
                    @let unit = format!("inputs[{i}].unit");
                    (select(&lot, lang.pick("Lot", "Lot"), &lots, value(fields, &lot), shown))
                    div.pair {
                        (input(&quantity, lang.pick("Jumlah dipakai", "Quantity used"), value(fields, &quantity), shown, "text"))
                        (select(&unit, lang.pick("Satuan", "Unit"), &units, value(fields, &unit), shown))
                    }
                }
                h2 { (lang.pick("Keluaran (hasil utama, lalu hasil samping bila ada)", "Outputs (the main product, then a by-product if any)")) }
                @for i in 0..super::OUTPUT_ROWS {
                    @let lot = format!("outputs[{i}].lot_id");
                    @let product = format!("outputs[{i}].product_id");
                    @let quantity = format!("outputs[{i}].quantity");
                    @let unit = format!("outputs[{i}].unit");
                    @let owner = format!("outputs[{i}].owner_id");
                    (input(&lot, lang.pick("Nomor lot baru", "New lot number"), value(fields, &lot), shown, "text"))
                    (select(&product, lang.pick("Produk", "Product"), &choices.products, value(fields, &product), shown))
                    div.pair {
                        (input(&quantity, lang.pick("Jumlah", "Quantity"), value(fields, &quantity), shown, "text"))
                        (select(&unit, lang.pick("Satuan", "Unit"), &units, value(fields, &unit), shown))
                    }
                    (select(&owner, lang.pick("Pemilik", "Owner"), &owners, value(fields, &owner), shown))
                }
                button type="submit" { (lang.pick("Catat pengolahan", "Record the processing")) }
            }
        },
    )
}

pub(super) fn inspect(
    session: &Session,
    choices: &Choices,
    fields: &[(String, String)],
    shown: Option<&Shown>,
) -> Markup {
    let lang = session.lang;
    let standards: Vec<(String, String)> = choices
        .standards
        .iter()
        .map(|s| (s.id.clone(), s.name.clone()))
        .collect();
    let chosen = choices.standards.iter().find(|s| s.id == value(fields, "standard_id"));
    let mut lots = vec![(String::new(), lang.pick("— pilih lot —", "— pick a lot —").to_string())];
    lots.extend(choices.open_lots.iter().cloned());
    let names = ["facility_id", "lot_id", "standard_id", "inspector", "measurements"];
    layout(
        lang,
        lang.pick("Periksa mutu", "Inspect"),
        Some(session),
        html! {
            h1 { (lang.pick("Periksa mutu", "Inspect")) }
            (general(shown, &names))
            @match chosen {
                None => {
                    form method="get" action="/console/periksa" {
                        (select("standard_id", lang.pick("Standar mutu", "Quality standard"), &standards, "", None))
                        button type="submit" { (lang.pick("Lanjut", "Next")) }
                    }
                }
                Some(standard) => {
                    form.capture method="post" action="/console/periksa" data-offline="inspect" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="command_id" value=(value(fields, "command_id"));
                        input type="hidden" name="standard_id" value=(standard.id);
                        p { strong { (standard.name) } " · " (standard.reference) }
                        (select("facility_id", lang.pick("Fasilitas", "Facility"), &choices.facilities, value(fields, "facility_id"), shown))
                        (select("lot_id", lang.pick("Lot", "Lot"), &lots, value(fields, "lot_id"), shown))
                        @for prm in &standard.parameters {
                            @let name = format!("m.{}", prm.code);
                            @let limits = match (&prm.min, &prm.max) {
                                (Some(a), Some(b)) => format!(" ({a}–{b} {})", prm.unit),
                                (Some(a), None) => format!(" (≥ {a} {})", prm.unit),
                                (None, Some(b)) => format!(" (≤ {b} {})", prm.unit),
                                (None, None) => format!(" ({})", prm.unit),
                            };
                            (input(&name, &format!("{}{limits}", prm.name), value(fields, &name), shown, "text"))
                        }
                        (input("inspector", lang.pick("Pemeriksa", "Inspector"), value(fields, "inspector"), shown, "text"))
                        button type="submit" { (lang.pick("Catat pemeriksaan", "Record the inspection")) }
                    }
                }
            }
        },
    )
}

pub(super) fn ship(session: &Session, choices: &Choices, fields: &[(String, String)], shown: Option<&Shown>) -> Markup {
    let lang = session.lang;
    let units: Vec<(String, String)> = UNITS.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let mut lots = vec![(String::new(), lang.pick("— pilih lot —", "— pick a lot —").to_string())];
    lots.extend(choices.open_lots.iter().cloned());
    let names = [
        "facility_id",
        "lot_id",
        "quantity",
        "package_serials",
        "consignee_id",
        "document",
        "dds_reference",
    ];
    layout(
        lang,
        lang.pick("Kirim", "Ship"),
        Some(session),
        html! {
            h1 { (lang.pick("Kirim", "Ship")) }
            (general(shown, &names))
            form.capture method="post" action="/console/kirim" data-offline="ship" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="command_id" value=(value(fields, "command_id"));
                (select("facility_id", lang.pick("Fasilitas", "Facility"), &choices.facilities, value(fields, "facility_id"), shown))
                (select("lot_id", lang.pick("Lot", "Lot"), &lots, value(fields, "lot_id"), shown))
                div.pair {
                    (input("quantity", lang.pick("Jumlah curah", "Bulk quantity"), value(fields, "quantity"), shown, "text"))
                    (select("unit", lang.pick("Satuan", "Unit"), &units, value(fields, "unit"), shown))
                }
                (input("package_serials", lang.pick("Nomor seri kemasan (pisahkan dengan koma)", "Package serials (comma-separated)"), value(fields, "package_serials"), shown, "text"))
                (select("consignee_id", lang.pick("Penerima", "Consignee"), &choices.customers, value(fields, "consignee_id"), shown))
                (input("document", lang.pick("Surat jalan / faktur", "Delivery note / invoice"), value(fields, "document"), shown, "text"))
                (input("dds_reference", lang.pick("Nomor DDS EUDR (jika ada)", "EUDR DDS reference (if any)"), value(fields, "dds_reference"), shown, "text"))
                button type="submit" { (lang.pick("Catat pengiriman", "Record the shipment")) }
            }
        },
    )
}

pub(super) fn pack(session: &Session, choices: &Choices, fields: &[(String, String)], shown: Option<&Shown>) -> Markup {
    let lang = session.lang;
    let units: Vec<(String, String)> = UNITS.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let mut lots = vec![(String::new(), lang.pick("— pilih lot —", "— pick a lot —").to_string())];
    lots.extend(choices.open_lots.iter().cloned());
    let gtins: Vec<(String, String)> = choices
        .gtins
        .iter()
        .map(|(g, name)| (g.clone(), name.clone()))
        .collect();
    let names = [
        "facility_id",
        "lot_id",
        "gtin",
        "count",
        "quantity",
        "serial_prefix",
        "packages",
    ];
    layout(
        lang,
        lang.pick("Kemas", "Pack"),
        Some(session),
        html! {
            h1 { (lang.pick("Kemas dan cetak label", "Pack and print labels")) }
            (general(shown, &names))
            form.capture method="post" action="/console/kemas" data-offline="pack" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="command_id" value=(value(fields, "command_id"));
                (select("facility_id", lang.pick("Fasilitas", "Facility"), &choices.facilities, value(fields, "facility_id"), shown))
                (select("lot_id", lang.pick("Lot", "Lot"), &lots, value(fields, "lot_id"), shown))
                (select("gtin", lang.pick("Produk kemasan (GTIN)", "Packed product (GTIN)"), &gtins, value(fields, "gtin"), shown))
                (input("count", lang.pick("Jumlah kemasan", "Number of units"), value(fields, "count"), shown, "number"))
                div.pair {
                    (input("quantity", lang.pick("Isi per kemasan", "Per unit"), value(fields, "quantity"), shown, "text"))
                    (select("unit", lang.pick("Satuan", "Unit"), &units, value(fields, "unit"), shown))
                }
                (input("serial_prefix", lang.pick("Awalan nomor seri (mis. DMK5P-)", "Serial prefix (e.g. DMK5P-)"), value(fields, "serial_prefix"), shown, "text"))
                button type="submit" { (lang.pick("Catat pengemasan", "Record the packing")) }
            }
        },
    )
}

pub(super) fn void(session: &Session, choices: &Choices, fields: &[(String, String)], shown: Option<&Shown>) -> Markup {
    let lang = session.lang;
    let names = ["facility_id", "event_id", "reason", "replacement_event_id"];
    layout(
        lang,
        lang.pick("Batalkan catatan", "Void a record"),
        Some(session),
        html! {
            h1 { (lang.pick("Batalkan catatan", "Void a record")) }
            p.hint { (lang.pick(
                "Catatan tidak dihapus: pembatalan dicatat dengan alasannya, dan catatan pengganti bisa disebut.",
                "Nothing is erased: the void is recorded with its reason, and a replacing record may be named."
            )) }
            (general(shown, &names))
            form.capture method="post" action="/console/batal" data-offline="void" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="command_id" value=(value(fields, "command_id"));
                input type="hidden" name="lot_id" value=(value(fields, "lot_id"));
                (select("facility_id", lang.pick("Fasilitas", "Facility"), &choices.facilities, value(fields, "facility_id"), shown))
                (input("event_id", lang.pick("Catatan yang dibatalkan", "Record to void"), value(fields, "event_id"), shown, "text"))
                (input("reason", lang.pick("Alasan", "Reason"), value(fields, "reason"), shown, "text"))
                (input("replacement_event_id", lang.pick("Catatan pengganti (jika ada)", "Replacing record (if any)"), value(fields, "replacement_event_id"), shown, "text"))
                button type="submit" { (lang.pick("Batalkan", "Void")) }
            }
        },
    )
}

pub(super) fn import(
    session: &Session,
    text: &str,
    problems: &[(usize, String)],
    voided_earlier: &[(usize, String, String)],
    done: Option<(usize, usize, usize)>,
) -> Markup {
    let lang = session.lang;
    layout(
        lang,
        lang.pick("Impor CSV", "Import CSV"),
        Some(session),
        html! {
            h1 { (lang.pick("Impor dari spreadsheet (CSV)", "Import a spreadsheet (CSV)")) }
            @if let Some((recorded, replayed, voided)) = done {
                p.recorded role="status" {
                    (recorded) (lang.pick(" baris tercatat, ", " rows recorded, "))
                    (replayed) (lang.pick(" sudah tercatat sebelumnya", " recorded before"))
                    @if voided > 0 { ", " (voided) (lang.pick(" dibatalkan lagi", " voided again")) }
                }
            }
            @if !voided_earlier.is_empty() {
                ul.refusal role="alert" {
                    @for (line, event, void) in voided_earlier {
                        li {
                            (lang.pick("Baris ", "Line ")) (line) ": " (event)
                            (lang.pick(" sudah tercatat sebelumnya lalu dibatalkan oleh ", " was recorded before and since voided by "))
                            (void)
                            (lang.pick(
                                ", jadi tidak berlaku; mengirimnya lagi tidak mengubah apa pun. Ganti command_id-nya untuk mencatatnya lagi.",
                                ", so it does not stand; sending it again changes nothing. Change its command_id to record it anew."
                            ))
                        }
                    }
                }
            }
            @if !problems.is_empty() {
                ul.refusal role="alert" {
                    @for (line, why) in problems { li { (lang.pick("Baris ", "Line ")) (line) ": " (why) } }
                }
                @if done.is_none() { p.refusal { (lang.pick("Tidak ada yang dicatat.", "Nothing was recorded.")) } }
            }
            p.hint { (lang.pick(
                "Satu jenis catatan per berkas: penerimaan, pengiriman, perubahan status, atau pengolahan; kolomnya seperti di petunjuk. Berkas dengan baris yang salah tidak mencatat apa pun.",
                "One type of record per file: receipts, shipments, status changes or processing, with the documented columns. A file with a bad row records nothing."
            )) }
            form method="post" action="/console/impor" {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="csv-file" { (lang.pick("Berkas CSV", "CSV file")) }
                input #csv-file type="file" accept=".csv,text/csv";
                label for="csv" { (lang.pick("Isi berkas", "The file's contents")) }
                textarea #csv name="csv" rows="8" { (text) }
                label { input type="checkbox" name="proceed"; " " (lang.pick("Catat baris yang benar walau ada yang ditolak", "Keep the good rows when some are refused")) }
                button type="submit" { (lang.pick("Impor", "Import")) }
            }
        },
    )
}

fn document_kinds(lang: Lang) -> Vec<(String, String)> {
    [
        ("delivery-note", lang.pick("Surat jalan / nota", "Delivery note")),
        (
            "svlk-certificate",
            lang.pick("Sertifikat SVLK (S-LK / V-Legal)", "SVLK certificate (S-LK / V-Legal)"),
        ),
        (
            "dkp",
            lang.pick("Deklarasi Kesesuaian Pemasok (DKP)", "Supplier's declaration (DKP)"),
        ),
        ("skshh", "SKSHH"),
        ("nota-angkutan", lang.pick("Nota angkutan", "Transport note")),
        (
            "mill-certificate",
            lang.pick("Sertifikat pabrik (mill certificate)", "Mill certificate"),
        ),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}
