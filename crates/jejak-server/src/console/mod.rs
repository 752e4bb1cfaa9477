//! The operator console at `/console`: server-rendered pages (maud:
//! compile-time templates that escape every value), mobile first, in Bahasa
//! Indonesia by default and English, with no resource from elsewhere. A
//! token is entered (or scanned from `jejak token create --qr`) once; the
//! console then holds a server-side session (`session.rs`) in an HttpOnly,
//! SameSite=Strict cookie (Secure over TLS), and every form carries the
//! session's CSRF token: a post without it is 403 and writes nothing.
//! What a session may see and do is its token's: the same view and the
//! same capture checks as the API, and commands go through the same engine.

mod pages;
pub mod session;
pub mod text;

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use jejak_engine::{Engine, Submission};
use jejak_log::ReadLog;
use jejak_proto::v1 as p;
use jejak_proto::{ErrorCode, ServiceError};
use jejak_read::Reader;
use maud::Markup;

use crate::auth::{Caller, Need};
use session::{Session, Sessions};
use text::{Lang, Shown};

/// The path prefix of the console.
pub const PREFIX: &str = "/console";

/// Every page allows nothing from elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; manifest-src 'self'; worker-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

pub struct Console<L, S> {
    reader: Reader<L>,
    writer: Option<Arc<S>>,
    sessions: Sessions,
    /// Served over TLS: the cookie is Secure.
    secure: bool,
    /// Where label URIs point (`--public-base`); the request's host without.
    public_base: Option<String>,
}

type Shared<L, S> = Arc<Console<L, S>>;
type Reply = http::Response<axum::body::Body>;

pub fn routes<L: ReadLog, S: Engine>(
    reader: Reader<L>,
    writer: Option<Arc<S>>,
    tokens: Arc<jejak_domain::TokenTable>,
    clock: jejak_domain::SharedClock,
    (secure, public_base): (bool, Option<String>),
) -> axum::Router {
    let state = Arc::new(Console {
        reader,
        writer,
        sessions: Sessions::new(tokens, clock),
        secure,
        public_base,
    });
    axum::Router::new()
        .route("/console", axum::routing::get(home::<L, S>))
        .route("/console/masuk", axum::routing::post(sign_in::<L, S>))
        .route("/console/keluar", axum::routing::post(sign_out::<L, S>))
        .route("/console/bahasa", axum::routing::post(language::<L, S>))
        .route(
            "/console/terima",
            axum::routing::get(receive_form::<L, S>).post(receive::<L, S>),
        )
        .route(
            "/console/status",
            axum::routing::get(status_form::<L, S>).post(change_status::<L, S>),
        )
        .route(
            "/console/olah",
            axum::routing::get(process_form::<L, S>).post(process::<L, S>),
        )
        .route(
            "/console/periksa",
            axum::routing::get(inspect_form::<L, S>).post(inspect::<L, S>),
        )
        .route(
            "/console/kirim",
            axum::routing::get(ship_form::<L, S>).post(ship::<L, S>),
        )
        .route(
            "/console/kemas",
            axum::routing::get(pack_form::<L, S>).post(pack::<L, S>),
        )
        .route(
            "/console/batal",
            axum::routing::get(void_form::<L, S>).post(void::<L, S>),
        )
        .route(
            "/console/impor",
            axum::routing::get(import_form::<L, S>).post(import::<L, S>),
        )
        .route("/console/lot/{id}/label.pdf", axum::routing::get(label_sheet::<L, S>))
        .route("/console/lot/{id}", axum::routing::get(lot::<L, S>))
        .route("/console/cari", axum::routing::get(search::<L, S>))
        .route("/console/style.css", axum::routing::get(style))
        .route("/console/app.js", axum::routing::get(script))
        .route("/console/sw.js", axum::routing::get(worker))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(state)
}

/// The largest form a console page posts (documents' photos included).
const MAX_FORM_BYTES: usize = 8 * 1024 * 1024;

/// Document slots on the receive form.
pub(crate) const DOCUMENT_SLOTS: usize = 2;

/// The documents of a receive form: each named by its kind and reference,
/// with the photo or scan of it (read into the form by the page's script)
/// whose blake3 hash the receipt records.
fn documents(fields: &[(String, String)], lang: Lang) -> Result<Vec<p::Document>, Shown> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for i in 0..DOCUMENT_SLOTS {
        let f = |name: &str| field(fields, &format!("doc{i}.{name}")).trim().to_string();
        if f("reference").is_empty() {
            continue;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(f("file"))
            .unwrap_or_default();
        if bytes.is_empty() {
            return Err(Shown {
                field: Some(format!("doc{i}.reference")),
                message: lang
                    .pick(
                        "Lampirkan foto atau pindaian dokumennya: catatan menyimpan sidik (blake3) berkasnya",
                        "Attach the document's photo or scan: the record keeps its fingerprint (blake3)",
                    )
                    .into(),
                rule: None,
                detail: String::new(),
            });
        }
        // A day's validity ends at its last second in Western Indonesia Time.
        let until = f("valid_until");
        let valid_until = match until.as_str() {
            "" => None,
            day => match jejak_epcis::query::parse_time("valid_until", &format!("{day}T23:59:59+07:00")) {
                Ok(t) => Some(jejak_proto::time_to_proto(t)),
                Err(_) => {
                    return Err(Shown {
                        field: Some(format!("doc{i}.valid_until")),
                        message: lang.pick("Tanggal tidak benar", "Not a date").into(),
                        rule: None,
                        detail: String::new(),
                    })
                }
            },
        };
        out.push(p::Document {
            kind: f("kind"),
            reference: f("reference"),
            blake3: blake3::hash(&bytes).to_hex().to_string(),
            issuer: f("issuer"),
            valid_from: None,
            valid_until,
        });
    }
    Ok(out)
}

/// A reply with the console's security headers.
fn secured(mut r: Reply) -> Reply {
    let h = r.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

fn html(status: StatusCode, page: Markup) -> Reply {
    let mut r = (status, page.into_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secured(r)
}

fn redirect(to: &str) -> Reply {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secured(r)
}

fn asset(content_type: &'static str, body: &'static str) -> Reply {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secured(r)
}

async fn style() -> Reply {
    asset("text/css; charset=utf-8", include_str!("assets/style.css"))
}

async fn script() -> Reply {
    asset("text/javascript; charset=utf-8", include_str!("assets/app.js"))
}

async fn worker() -> Reply {
    let mut r = asset("text/javascript; charset=utf-8", include_str!("assets/sw.js"));
    r.headers_mut()
        .insert("service-worker-allowed", HeaderValue::from_static("/console"));
    r
}

/// A form's fields.
fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// Whether the client asked for JSON (the offline queue does).
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn json(status: StatusCode, body: serde_json::Value) -> Reply {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    secured(r)
}

/// A signed-in request: its session key, session and caller.
struct Signed {
    key: String,
    session: Session,
    caller: Caller,
}

impl<L: ReadLog, S: Engine> Console<L, S> {
    fn signed(&self, headers: &HeaderMap) -> Option<Signed> {
        let key = session::cookie(headers)?;
        let (session, caller) = self.sessions.get(&key)?;
        Some(Signed { key, session, caller })
    }

    /// A post of a signed-in session with its CSRF token; otherwise the
    /// reply that refuses it (sign-in page, or 403).
    fn posted(&self, headers: &HeaderMap, fields: &[(String, String)]) -> Result<Signed, Box<Reply>> {
        let Some(s) = self.signed(headers) else {
            return Err(Box::new(redirect(PREFIX)));
        };
        if !session::csrf_ok(&s.session, field(fields, "csrf")) {
            return Err(Box::new(html(
                StatusCode::FORBIDDEN,
                pages::message(
                    s.session.lang,
                    s.session.lang.pick("Ditolak", "Refused"),
                    s.session.lang.pick(
                        "Formulir ini tidak membawa token keamanan sesi ini; muat ulang halaman dan coba lagi.",
                        "This form does not carry this session's security token; reload the page and try again.",
                    ),
                ),
            )));
        }
        Ok(s)
    }

    /// Records a command for a session; the refusal as the console shows it.
    async fn submit(&self, caller: &Caller, lang: Lang, kind: p::command::Kind) -> Result<p::CaptureReply, Shown> {
        let Some(writer) = &self.writer else {
            return Err(text::refusal(
                lang,
                ErrorCode::Unavailable,
                None,
                None,
                "this server does not capture",
            ));
        };
        let submission = Submission::try_from(kind).map_err(|e| shown(lang, &e))?;
        writer
            .submit(submission, &caller.actor())
            .await
            .map(crate::capture::reply)
            .map_err(|e| shown(lang, &e))
    }
}

fn shown(lang: Lang, e: &(impl ServiceError + ?Sized)) -> Shown {
    text::refusal(lang, e.error_code(), e.rule(), e.field(), &e.to_string())
}

/// The capture check of the API for a facility, as the console shows it.
fn may_capture(caller: &Caller, lang: Lang, facility: &str) -> Result<(), Shown> {
    match caller.capture_refusal(facility) {
        None => Ok(()),
        Some(r) => Err(Shown {
            field: Some("facility_id".into()),
            message: text::refusal(lang, r.code, None, None, &r.message).message,
            rule: None,
            detail: String::new(),
        }),
    }
}

async fn home<L: ReadLog, S: Engine>(State(c): State<Shared<L, S>>, headers: HeaderMap) -> Reply {
    match c.signed(&headers) {
        Some(s) => html(StatusCode::OK, pages::home(&s.session, &s.caller)),
        None => html(StatusCode::OK, pages::sign_in(Lang::Id, None)),
    }
}

async fn sign_in<L: ReadLog, S: Engine>(State(c): State<Shared<L, S>>, body: axum::body::Bytes) -> Reply {
    let fields = form(&body);
    let lang = Lang::parse(field(&fields, "lang"));
    let caller = match c.sessions.caller_of_token(field(&fields, "token")) {
        Ok(caller) => caller,
        Err(why) => {
            tracing::warn!(reason = why, "a console sign-in was refused");
            let message = match (lang, why) {
                (Lang::Id, "revoked") => "Token ini sudah dicabut.",
                (Lang::Id, "expired") => "Token ini sudah kedaluwarsa.",
                (Lang::Id, _) => "Token tidak dikenal. Periksa lagi, atau pindai kode QR-nya.",
                (Lang::En, "revoked") => "This token was revoked.",
                (Lang::En, "expired") => "This token has expired.",
                (Lang::En, _) => "Unknown token. Check it, or scan its QR code.",
            };
            return html(StatusCode::UNAUTHORIZED, pages::sign_in(lang, Some(message)));
        }
    };
    match c.sessions.open(&caller, lang) {
        Ok((key, _)) => {
            tracing::info!(who = %caller.actor(), "console session opened");
            let mut r = redirect(PREFIX);
            if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&key, c.secure)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::message(lang, "Error", &e.to_string()),
        ),
    }
}

async fn sign_out<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let fields = form(&body);
    let s = match c.posted(&headers, &fields) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    c.sessions.close(&s.key);
    let mut r = redirect(PREFIX);
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie("", c.secure)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn language<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let fields = form(&body);
    let s = match c.posted(&headers, &fields) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    c.sessions.set_lang(&s.key, Lang::parse(field(&fields, "lang")));
    redirect(PREFIX)
}

/// Master data for the forms, narrowed to what the caller may use.
fn choices<L: ReadLog>(reader: &Reader<L>, caller: &Caller) -> pages::Choices {
    let g = reader.projection().read();
    let md = g.master_data();
    let facilities = md
        .facilities
        .iter()
        .filter(|f| caller.capture_refusal(&f.id).is_none())
        .map(|f| (f.id.clone(), f.name.clone()))
        .collect();
    let products = md.products.iter().map(|x| (x.id.clone(), x.name.clone())).collect();
    let parties = |role: jejak_domain::PartyRole| {
        md.parties
            .iter()
            .filter(|x| x.roles.contains(&role))
            .map(|x| (x.id.clone(), x.name.clone()))
            .collect()
    };
    let usable: Vec<&str> = md
        .facilities
        .iter()
        .filter(|f| caller.capture_refusal(&f.id).is_none())
        .map(|f| f.id.as_str())
        .collect();
    let open_lots = g
        .open_lots_at(&usable, OPEN_LOTS)
        .into_iter()
        .map(|(lot, product, left)| (lot.clone(), format!("{lot} — {product}, sisa {left}")))
        .collect();
    pages::Choices {
        facilities,
        products,
        owners: parties(jejak_domain::PartyRole::Ukm),
        suppliers: parties(jejak_domain::PartyRole::Supplier),
        customers: {
            let mut c: Vec<(String, String)> = parties(jejak_domain::PartyRole::Customer);
            c.extend(parties(jejak_domain::PartyRole::Operator));
            c
        },
        open_lots,
        standards: md.standards.iter().map(|x| (*x).clone()).collect(),
        gtins: md
            .products
            .iter()
            .filter_map(|x| x.gtin.as_ref().map(|g| (g.to_string(), x.name.clone())))
            .collect(),
    }
}

async fn inspect_form<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Reply {
    station_form(&c, &headers, raw.as_deref(), pages::inspect)
}

async fn inspect<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let fields = form(&body);
    let s = match c.posted(&headers, &fields) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let lang = s.session.lang;
    let f = |name: &str| field(&fields, name).trim().to_string();
    let choices = choices(&c.reader, &s.caller);
    let standard = choices.standards.iter().find(|x| x.id == f("standard_id"));
    let measurements = standard
        .map(|st| {
            st.parameters
                .iter()
                .filter(|prm| !f(&format!("m.{}", prm.code)).is_empty())
                .map(|prm| p::Measurement {
                    parameter: prm.code.clone(),
                    value: f(&format!("m.{}", prm.code)),
                    unit: prm.unit.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let kind = p::command::Kind::InspectLot(p::InspectLotRequest {
        command_id: f("command_id"),
        facility_id: f("facility_id"),
        lot_id: f("lot_id"),
        standard_id: f("standard_id"),
        measurements,
        inspector: f("inspector"),
        ..Default::default()
    });
    let outcome = match may_capture(&s.caller, lang, &f("facility_id")) {
        Ok(()) => c.submit(&s.caller, lang, kind).await,
        Err(e) => Err(e),
    };
    let lot = f("lot_id");
    answered((&headers, &fields, lang), outcome, &lot, |shown| {
        pages::inspect(&s.session, &choices, &fields, Some(shown))
    })
}

async fn ship_form<L: ReadLog, S: Engine>(State(c): State<Shared<L, S>>, headers: HeaderMap) -> Reply {
    station_form(&c, &headers, None, pages::ship)
}

async fn ship<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let fields = form(&body);
    let s = match c.posted(&headers, &fields) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let lang = s.session.lang;
    let f = |name: &str| field(&fields, name).trim().to_string();
    let unit = p::Unit::from_str_name(&f("unit")).unwrap_or(p::Unit::Unspecified);
    let quantity = (!f("quantity").is_empty()).then(|| p::Quantity {
        value: f("quantity"),
        unit: unit as i32,
    });
    let serials: Vec<String> = f("package_serials")
        .split(|ch: char| ch == ',' || ch.is_whitespace())
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect();
    let kind = p::command::Kind::ShipLot(p::ShipLotRequest {
        command_id: f("command_id"),
        facility_id: f("facility_id"),
        lot_id: f("lot_id"),
        quantity,
        package_serials: serials,
        consignee_id: f("consignee_id"),
        document: f("document"),
        dds_reference: f("dds_reference"),
        ..Default::default()
    });
    let outcome = match may_capture(&s.caller, lang, &f("facility_id")) {
        Ok(()) => c.submit(&s.caller, lang, kind).await,
        Err(e) => Err(e),
    };
    let lot = f("lot_id");
    let choices = choices(&c.reader, &s.caller);
    answered((&headers, &fields, lang), outcome, &lot, |shown| {
        pages::ship(&s.session, &choices, &fields, Some(shown))
    })
}

/// Usable lots a picker offers per facility, newest first: three pickers of
/// them keep a processing page under 50 KB.
const OPEN_LOTS: usize = 100;

/// Output rows of a processing form.
pub(crate) const OUTPUT_ROWS: usize = 2;

/// Rows of a processing form.
pub(crate) const INPUT_ROWS: usize = 3;

/// The input a mass-balance refusal concerns, told as a clerk says it:
/// "Lot DMK-GKG-260902-01 tinggal 10 kg; tidak bisa memakai 15 kg".
async fn too_little<L: ReadLog>(
    reader: &Reader<L>,
    caller: &Caller,
    lang: Lang,
    inputs: &[(String, String, p::Unit)],
) -> Option<Shown> {
    for (i, (lot, value, unit)) in inputs.iter().enumerate() {
        let Ok(l) = reader.lot(&caller.view(), lot).await else {
            continue;
        };
        let Some(left) = l.balance else { continue };
        let Some(unit) = jejak_domain::Unit::ALL
            .into_iter()
            .find(|u| jejak_proto::unit_to_proto(*u) == *unit)
        else {
            continue;
        };
        let Ok(wanted) = jejak_domain::Quantity::parse("quantity", value, unit) else {
            continue;
        };
        let Ok(in_lot_unit) = wanted.convert(left.unit()) else {
            continue;
        };
        if in_lot_unit.value() > left.value() {
            return Some(Shown {
                field: Some(format!("inputs[{i}].quantity")),
                message: text::too_little(lang, lot, &left.to_string(), &wanted.to_string()),
                rule: Some("mass-balance".into()),
                detail: String::new(),
            });
        }
    }
    None
}

async fn process_form<L: ReadLog, S: Engine>(State(c): State<Shared<L, S>>, headers: HeaderMap) -> Reply {
    station_form(&c, &headers, None, pages::process)
}

async fn process<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let fields = form(&body);
    let s = match c.posted(&headers, &fields) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let lang = s.session.lang;
    let f = |name: &str| field(&fields, name).trim().to_string();
    let unit = |name: &str| p::Unit::from_str_name(&f(name)).unwrap_or(p::Unit::Unspecified);
    let rows: Vec<(String, String, p::Unit)> = (0..INPUT_ROWS)
        .map(|i| {
            (
                f(&format!("inputs[{i}].lot_id")),
                f(&format!("inputs[{i}].quantity")),
                unit(&format!("inputs[{i}].unit")),
            )
        })
        .filter(|(lot, _, _)| !lot.is_empty())
        .collect();
    let kind = p::command::Kind::ProcessLots(p::ProcessLotsRequest {
        command_id: f("command_id"),
        facility_id: f("facility_id"),
        process_step: f("process_step"),
        line: f("line"),
        inputs: rows
            .iter()
            .map(|(lot, value, unit)| p::LotInput {
                lot_id: lot.clone(),
                quantity: Some(p::Quantity {
                    value: value.clone(),
                    unit: *unit as i32,
                }),
            })
            .collect(),
        // Every output row with a lot number (the main product and its
        // by-products: rice and bran).
        outputs: (0..OUTPUT_ROWS)
            .filter(|i| !f(&format!("outputs[{i}].lot_id")).is_empty())
            .map(|i| p::LotOutput {
                lot_id: f(&format!("outputs[{i}].lot_id")),
                product_id: f(&format!("outputs[{i}].product_id")),
                quantity: Some(p::Quantity {
                    value: f(&format!("outputs[{i}].quantity")),
                    unit: unit(&format!("outputs[{i}].unit")) as i32,
                }),
                owner_id: f(&format!("outputs[{i}].owner_id")),
            })
            .collect(),
        ..Default::default()
    });
    let outcome = match may_capture(&s.caller, lang, &f("facility_id")) {
        Ok(()) => c.submit(&s.caller, lang, kind).await,
        Err(e) => Err(e),
    };
    let outcome = match outcome {
        Err(shown) if shown.rule.as_deref() == Some("mass-balance") => {
            // A mass-balance refusal: said of the input it concerns.
            match too_little(&c.reader, &s.caller, lang, &rows).await {
                Some(better) => Err(better),
                None => Err(shown),
            }
        }
        other => other,
    };
    let lot = f("outputs[0].lot_id");
    let choices = choices(&c.reader, &s.caller);
    answered((&headers, &fields, lang), outcome, &lot, |shown| {
        pages::process(&s.session, &choices, &fields, Some(shown))
    })
}

/// How a station's page is drawn: its form, what was typed, a refusal.
type Page = fn(&Session, &pages::Choices, &[(String, String)], Option<&Shown>) -> Markup;

/// A station's form, empty but for a fresh command id and what the
/// query string gives.
fn station_form<L: ReadLog, S: Engine>(
    c: &Console<L, S>,
    headers: &HeaderMap,
    query: Option<&str>,
    page: Page,
) -> Reply {
    let s = match station(c, headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let mut fields = vec![("command_id".to_string(), session::random_id().unwrap_or_default())];
    fields.extend(form(query.unwrap_or_default().as_bytes()));
    html(
        StatusCode::OK,
        page(&s.session, &choices(&c.reader, &s.caller), &fields, None),
    )
}

/// A page for a capture station, or the sign-in page / a refusal for a
/// session that may not capture.
fn station<L: ReadLog, S: Engine>(c: &Console<L, S>, headers: &HeaderMap) -> Result<Signed, Box<Reply>> {
    let Some(s) = c.signed(headers) else {
        return Err(Box::new(redirect(PREFIX)));
    };
    if !s.caller.allows(Need::Capture) {
        let lang = s.session.lang;
        return Err(Box::new(html(
            StatusCode::FORBIDDEN,
            pages::message(
                lang,
                lang.pick("Tidak berwenang", "Not allowed"),
                lang.pick(
                    "Token ini hanya boleh membaca; pencatatan dilakukan oleh operator fasilitas.",
                    "This token may only read; the facility's operators record.",
                ),
            ),
        )));
    }
    Ok(s)
}

async fn receive_form<L: ReadLog, S: Engine>(State(c): State<Shared<L, S>>, headers: HeaderMap) -> Reply {
    station_form(&c, &headers, None, pages::receive)
}

/// What a post answers: the lot page (or JSON for the offline queue) when
/// recorded; the form again with what was typed and the refusal next to
/// its field when not.
fn answered(
    (headers, fields, lang): (&HeaderMap, &[(String, String)], Lang),
    outcome: Result<p::CaptureReply, Shown>,
    lot: &str,
    again: impl FnOnce(&Shown) -> Markup,
) -> Reply {
    let outcome = outcome.map_err(|shown| text::place(lang, shown, fields));
    match (outcome, wants_json(headers)) {
        (Ok(reply), true) => json(
            StatusCode::OK,
            serde_json::json!({
                "recorded": true,
                "replayed": reply.replayed,
                "voidedBy": (!reply.voided_by.is_empty()).then_some(&reply.voided_by),
                "message": (!reply.voided_by.is_empty()).then(|| text::voided_earlier(lang, &reply.voided_by)),
                "eventId": reply.event_id,
                "lot": lot,
            }),
        ),
        // Sent again after it was voided: recorded before, but not standing.
        (Ok(reply), false) if !reply.voided_by.is_empty() => redirect(&format!(
            "{PREFIX}/lot/{}?dibatalkan={}",
            form_urlencoded::byte_serialize(lot.as_bytes()).collect::<String>(),
            form_urlencoded::byte_serialize(reply.voided_by.as_bytes()).collect::<String>()
        )),
        (Ok(_), false) => redirect(&format!(
            "{PREFIX}/lot/{}?dicatat=1",
            form_urlencoded::byte_serialize(lot.as_bytes()).collect::<String>()
        )),
        (Err(shown), true) => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({ "recorded": false, "field": shown.field, "message": shown.message }),
        ),
        (Err(shown), false) => html(StatusCode::UNPROCESSABLE_ENTITY, again(&shown)),
    }
}

async fn receive<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let fields = form(&body);
    let s = match c.posted(&headers, &fields) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let lang = s.session.lang;
    let f = |name: &str| field(&fields, name).trim().to_string();
    let unit = p::Unit::from_str_name(&f("unit")).unwrap_or(p::Unit::Unspecified);
    let origin = (!f("origin.place").is_empty() || !f("origin.plot_id").is_empty()).then(|| p::Origin {
        place: f("origin.place"),
        plot_id: f("origin.plot_id"),
        ..Default::default()
    });
    let documents = match documents(&fields, lang) {
        Ok(d) => d,
        Err(shown) => {
            let choices = choices(&c.reader, &s.caller);
            return answered((&headers, &fields, lang), Err(shown), &f("lot_id"), |shown| {
                pages::receive(&s.session, &choices, &fields, Some(shown))
            });
        }
    };
    let kind = p::command::Kind::ReceiveMaterial(p::ReceiveMaterialRequest {
        command_id: f("command_id"),
        facility_id: f("facility_id"),
        lot_id: f("lot_id"),
        product_id: f("product_id"),
        quantity: Some(p::Quantity {
            value: f("quantity"),
            unit: unit as i32,
        }),
        owner_id: f("owner_id"),
        supplier_id: f("supplier_id"),
        origin,
        documents,
        ..Default::default()
    });
    let outcome = match may_capture(&s.caller, lang, &f("facility_id")) {
        Ok(()) => c.submit(&s.caller, lang, kind).await,
        Err(e) => Err(e),
    };
    let lot = f("lot_id");
    let choices = choices(&c.reader, &s.caller);
    answered((&headers, &fields, lang), outcome, &lot, |shown| {
        pages::receive(&s.session, &choices, &fields, Some(shown))
    })
}

async fn status_form<L: ReadLog, S: Engine>(State(c): State<Shared<L, S>>, headers: HeaderMap) -> Reply {
    station_form(&c, &headers, None, pages::status)
}

async fn change_status<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let fields = form(&body);
    let s = match c.posted(&headers, &fields) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let lang = s.session.lang;
    let f = |name: &str| field(&fields, name).trim().to_string();
    let status = p::LotStatus::from_str_name(&f("status")).unwrap_or(p::LotStatus::Unspecified);
    let kind = p::command::Kind::ChangeLotStatus(p::ChangeLotStatusRequest {
        command_id: f("command_id"),
        facility_id: f("facility_id"),
        lot_id: f("lot_id"),
        status: status as i32,
        reason: f("reason"),
        ..Default::default()
    });
    let outcome = match may_capture(&s.caller, lang, &f("facility_id")) {
        Ok(()) => c.submit(&s.caller, lang, kind).await,
        Err(e) => Err(e),
    };
    let lot = f("lot_id");
    let choices = choices(&c.reader, &s.caller);
    answered((&headers, &fields, lang), outcome, &lot, |shown| {
        pages::status(&s.session, &choices, &fields, Some(shown))
    })
}

async fn lot<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let Some(s) = c.signed(&headers) else {
        return redirect(PREFIX);
    };
    let lang = s.session.lang;
    let view = s.caller.view();
    let lot = match c.reader.lot(&view, &id).await {
        Ok(l) => l,
        Err(e) => {
            let shown = shown(lang, &e);
            return html(
                StatusCode::from_u16(e.error_code().http().as_u16()).unwrap_or(StatusCode::NOT_FOUND),
                pages::message(lang, lang.pick("Lot", "Lot"), &shown.message),
            );
        }
    };
    let history = c
        .reader
        .lot_history(
            &view,
            jejak_domain::HistoryQuery {
                lot_id: id.clone(),
                as_of: None,
            },
        )
        .await
        .ok();
    let shares = c
        .reader
        .origin_shares(&view, &jejak_domain::Target::Lot(id.clone()))
        .await
        .ok();
    let trace = c
        .reader
        .backward_trace(
            &view,
            &jejak_domain::TraceQuery {
                target: jejak_domain::Target::Lot(id.clone()),
                max_depth: 0,
                max_nodes: 200,
            },
        )
        .await
        .ok();
    let notice =
        form_urlencoded::parse(raw.as_deref().unwrap_or_default().as_bytes()).find_map(|(k, v)| match k.as_ref() {
            "dicatat" => Some(pages::Notice::Recorded),
            "dibatalkan" => Some(pages::Notice::VoidedEarlier(v.into_owned())),
            _ => None,
        });
    html(
        StatusCode::OK,
        pages::lot(
            &s.session,
            &lot,
            (history.as_ref(), trace.as_ref(), shares.as_ref()),
            notice,
        ),
    )
}

async fn search<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Reply {
    let Some(s) = c.signed(&headers) else {
        return redirect(PREFIX);
    };
    let q = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    // A scanned label names its lot; anything else is a lot id or a
    // package's serial.
    let mut lot = match jejak_domain::gs1::DigitalLink::parse(&q) {
        Ok(link) => link.lot,
        Err(_) => q.clone(),
    };
    if lot.is_empty() {
        return redirect(PREFIX);
    }
    let view = s.caller.view();
    if c.reader.lot(&view, &lot).await.is_err() {
        let by_serial = jejak_domain::TraceQuery {
            target: jejak_domain::Target::Serial(q.clone()),
            max_depth: 1,
            max_nodes: 1,
        };
        if let Ok(t) = c.reader.backward_trace(&view, &by_serial).await {
            lot = t.root;
        }
    }
    match c.reader.lot(&view, &lot).await {
        Ok(_) => redirect(&format!(
            "{PREFIX}/lot/{}",
            form_urlencoded::byte_serialize(lot.as_bytes()).collect::<String>()
        )),
        Err(e) => {
            let lang = s.session.lang;
            html(
                StatusCode::NOT_FOUND,
                pages::message(
                    lang,
                    lang.pick("Tidak ditemukan", "Not found"),
                    &shown(lang, &e).message,
                ),
            )
        }
    }
}

async fn pack_form<L: ReadLog, S: Engine>(State(c): State<Shared<L, S>>, headers: HeaderMap) -> Reply {
    station_form(&c, &headers, None, pages::pack)
}

/// Most units one packing form makes.
const MAX_UNITS: u32 = 10_000;

async fn pack<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let fields = form(&body);
    let s = match c.posted(&headers, &fields) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let lang = s.session.lang;
    let f = |name: &str| field(&fields, name).trim().to_string();
    let lot = f("lot_id");
    let choices = choices(&c.reader, &s.caller);
    let count = match f("count").parse::<u32>() {
        Ok(n) if (1..=MAX_UNITS).contains(&n) => n,
        _ => {
            let shown = Shown {
                field: Some("count".into()),
                message: lang
                    .pick(
                        "Jumlah kemasan harus 1 sampai 10.000",
                        "The number of units must be 1 to 10,000",
                    )
                    .into(),
                rule: None,
                detail: String::new(),
            };
            return answered((&headers, &fields, lang), Err(shown), &lot, |shown| {
                pages::pack(&s.session, &choices, &fields, Some(shown))
            });
        }
    };
    // Serials go on from the lot's packages: prefix and a six-digit number.
    let already = c
        .reader
        .lot(&s.caller.view(), &lot)
        .await
        .map_or(0, |l| l.packages.len() as u32);
    let unit = p::Unit::from_str_name(&f("unit")).unwrap_or(p::Unit::Unspecified);
    let packages = (already + 1..=already + count)
        .map(|n| p::Package {
            serial: format!("{}{n:06}", f("serial_prefix")),
            quantity: Some(p::Quantity {
                value: f("quantity"),
                unit: unit as i32,
            }),
        })
        .collect();
    let kind = p::command::Kind::PackLot(p::PackLotRequest {
        command_id: f("command_id"),
        facility_id: f("facility_id"),
        lot_id: lot.clone(),
        gtin: f("gtin"),
        packages,
        ..Default::default()
    });
    let outcome = match may_capture(&s.caller, lang, &f("facility_id")) {
        Ok(()) => c.submit(&s.caller, lang, kind).await,
        Err(e) => Err(e),
    };
    answered((&headers, &fields, lang), outcome, &lot, |shown| {
        pages::pack(&s.session, &choices, &fields, Some(shown))
    })
}

/// The lot's label sheet: A4 pages of 3 × 8 labels, each with the QR code
/// of its unit's GS1 Digital Link.
async fn label_sheet<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let Some(s) = c.signed(&headers) else {
        return redirect(PREFIX);
    };
    let lang = s.session.lang;
    let lot = match c.reader.lot(&s.caller.view(), &id).await {
        Ok(l) => l,
        Err(e) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::message(lang, "Label", &shown(lang, &e).message),
            )
        }
    };
    let base = match &c.public_base {
        Some(b) => b.clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("{}://{host}", if c.secure { "https" } else { "http" })
        }
    };
    let labels: Vec<jejak_label::Label> = lot
        .packages
        .iter()
        .filter(|pk| pk.label.starts_with("/01/"))
        .map(|pk| {
            jejak_label::Label::new(
                format!("{}{}", base.trim_end_matches('/'), pk.label),
                lot.product.name.clone(),
                &pk.gtin,
                &lot.lot_id,
                Some(&pk.serial),
            )
        })
        .collect();
    if labels.is_empty() {
        return html(
            StatusCode::NOT_FOUND,
            pages::message(
                lang,
                "Label",
                lang.pick("Lot ini belum dikemas.", "This lot has no packed units."),
            ),
        );
    }
    // Up to one QR code per package (10,000 a lot): drawn on a blocking
    // thread, not on the worker that serves other requests.
    let drawn = tokio::task::spawn_blocking(move || jejak_label::sheet_pdf(&labels)).await;
    match drawn
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        Ok(pdf) => {
            let mut r = pdf.into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
            if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"label-{}.pdf\"", lot.lot_id)) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            secured(r)
        }
        Err(e) => html(StatusCode::INTERNAL_SERVER_ERROR, pages::message(lang, "Label", &e)),
    }
}

async fn void_form<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Reply {
    station_form(&c, &headers, raw.as_deref(), pages::void)
}

async fn void<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let fields = form(&body);
    let s = match c.posted(&headers, &fields) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let lang = s.session.lang;
    let f = |name: &str| field(&fields, name).trim().to_string();
    let kind = p::command::Kind::VoidEvent(p::VoidEventRequest {
        command_id: f("command_id"),
        facility_id: f("facility_id"),
        event_id: f("event_id"),
        reason: f("reason"),
        replacement_event_id: f("replacement_event_id"),
        ..Default::default()
    });
    let outcome = match may_capture(&s.caller, lang, &f("facility_id")) {
        Ok(()) => c.submit(&s.caller, lang, kind).await,
        Err(e) => Err(e),
    };
    let lot = f("lot_id");
    let choices = choices(&c.reader, &s.caller);
    answered((&headers, &fields, lang), outcome, &lot, |shown| {
        pages::void(&s.session, &choices, &fields, Some(shown))
    })
}

async fn import_form<L: ReadLog, S: Engine>(State(c): State<Shared<L, S>>, headers: HeaderMap) -> Reply {
    let s = match station(&c, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    html(StatusCode::OK, pages::import(&s.session, "", &[], &[], None))
}

/// The facility a command of a spreadsheet is recorded at.
fn facility_of(kind: &p::command::Kind) -> &str {
    match kind {
        p::command::Kind::ReceiveMaterial(r) => &r.facility_id,
        p::command::Kind::ShipLot(r) => &r.facility_id,
        p::command::Kind::ChangeLotStatus(r) => &r.facility_id,
        p::command::Kind::ProcessLots(r) => &r.facility_id,
        _ => "",
    }
}

/// A spreadsheet uploaded in the console: as `jejak import FILE.csv`, every
/// row checked first (a bad one writes nothing), then recorded in order; a
/// refused row voids what the file recorded unless `proceed` is ticked.
async fn import<L: ReadLog, S: Engine>(
    State(c): State<Shared<L, S>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let fields = form(&body);
    let s = match c.posted(&headers, &fields) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let lang = s.session.lang;
    let text = field(&fields, "csv");
    let proceed = field(&fields, "proceed") == "on";
    let rows = match jejak_proto::csv::parse(text) {
        Ok((_, rows)) => rows,
        Err(problems) => {
            return html(
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::import(&s.session, text, &problems, &[], None),
            )
        }
    };
    let (mut recorded, mut replayed, mut refused) = (0usize, 0usize, Vec::new());
    // Rows recorded before and voided since (an earlier upload's rollback):
    // they do not stand, and sending them again changes nothing.
    let mut voided_earlier = Vec::new();
    let mut written: Vec<(String, String)> = Vec::new();
    for row in rows {
        let facility = facility_of(&row.kind).to_string();
        let outcome = match may_capture(&s.caller, lang, &facility) {
            Ok(()) => c.submit(&s.caller, lang, row.kind).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(r) if !r.voided_by.is_empty() => voided_earlier.push((row.line, r.event_id, r.voided_by)),
            Ok(r) if r.replayed => replayed += 1,
            Ok(r) => {
                recorded += 1;
                written.push((r.event_id, facility));
            }
            Err(shown) => {
                refused.push((row.line, shown.message));
                if !proceed {
                    break;
                }
            }
        }
    }
    let mut voided = 0;
    if !proceed && !refused.is_empty() {
        let line = refused[0].0;
        for (event_id, facility) in written.into_iter().rev() {
            let void = p::command::Kind::VoidEvent(p::VoidEventRequest {
                command_id: jejak_domain::validate::undo_id(&event_id),
                facility_id: facility,
                event_id,
                reason: format!("spreadsheet import stopped: line {line} was refused"),
                ..Default::default()
            });
            if c.submit(&s.caller, lang, void).await.is_ok() {
                voided += 1;
            }
        }
        recorded = 0;
    }
    let status = if refused.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html(
        status,
        pages::import(
            &s.session,
            text,
            &refused,
            &voided_earlier,
            Some((recorded, replayed, voided)),
        ),
    )
}
