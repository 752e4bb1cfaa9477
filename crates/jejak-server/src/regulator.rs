//! What regulators and exporters file, over HTTP beside the API:
//!
//! - `GET /regulator/eudr/{lot}`: the GeoJSON `FeatureCollection` of an
//!   EUDR due diligence statement (every production plot in the lot's
//!   ancestry), for callers who see the lot in full;
//! - `GET /regulator/timber?facility=F&from=DATE&to=DATE`: a facility's
//!   timber balance sheet for a period (SVLK), as JSON rows (`jejak report
//!   timber` writes them as CSV), for regulators, administrators and the
//!   facility's operators.
//!
//! Both need a token (the route policy); the reader decides the rest.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use axum::Extension;
use http::{header, HeaderValue, StatusCode};
use jejak_domain::DomainError;
use jejak_log::ReadLog;
use jejak_proto::{ErrorCode, Refusal, ServiceError};
use jejak_read::Reader;
use serde_json::{json, Value};

use crate::auth::Caller;

/// The path prefix of these routes.
pub const PREFIX: &str = "/regulator/";

type Shared<L> = Arc<Reader<L>>;

pub fn routes<L: ReadLog>(reader: Reader<L>) -> axum::Router {
    axum::Router::new()
        .route("/regulator/eudr/{lot}", axum::routing::get(eudr::<L>))
        .route("/regulator/timber", axum::routing::get(timber::<L>))
        .with_state(Arc::new(reader))
}

fn reply(content_type: &'static str, body: &Value) -> http::Response<axum::body::Body> {
    let mut r = (StatusCode::OK, body.to_string() + "\n").into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn problem(e: &(impl ServiceError + ?Sized)) -> http::Response<axum::body::Body> {
    let code = e.error_code();
    let mut body = jejak_proto::problem_json(e);
    if code == ErrorCode::Internal {
        tracing::error!(error = %e, reason = e.reason(), "a regulator's report failed");
        body["detail"] = Value::from("the report could not be made; try again later");
    }
    let mut r = (code.http(), body.to_string() + "\n").into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

async fn eudr<L: ReadLog>(
    State(reader): State<Shared<L>>,
    caller: Option<Extension<Caller>>,
    Path(lot): Path<String>,
) -> http::Response<axum::body::Body> {
    let view = caller.map_or(jejak_read::View::Public, |Extension(c)| c.view());
    match reader.eudr(&view, &lot).await {
        Ok(collection) => reply("application/geo+json", &collection),
        Err(e) => problem(&e),
    }
}

/// A day (`2026-09-01`, from its start in Western Indonesia Time, UTC+7,
/// where the factories are) or an instant with its offset.
fn instant(name: &str, text: &str) -> Result<jejak_domain::Time, DomainError> {
    let full = match text.len() {
        10 => format!("{text}T00:00:00+07:00"),
        _ => text.to_string(),
    };
    jejak_epcis::query::parse_time(name, &full).map_err(|_| {
        DomainError::invalid(
            name,
            format!(
                "{} is not a day (2026-09-01) or a time with its offset (2026-09-01T08:00:00+07:00)",
                jejak_domain::quote(text)
            ),
        )
    })
}

async fn timber<L: ReadLog>(
    State(reader): State<Shared<L>>,
    caller: Option<Extension<Caller>>,
    RawQuery(raw): RawQuery,
) -> http::Response<axum::body::Body> {
    let view = caller.map_or(jejak_read::View::Public, |Extension(c)| c.view());
    let (mut facility, mut from, mut to) = (None, None, None);
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "facility" => facility = Some(v.into_owned()),
            "from" => from = Some(v.into_owned()),
            "to" => to = Some(v.into_owned()),
            other => {
                return problem(&DomainError::invalid(
                    other,
                    "is not a parameter of this report (facility, from, to)",
                ))
            }
        }
    }
    let (Some(facility), Some(from), Some(to)) = (facility, from, to) else {
        return problem(&Refusal::new(
            ErrorCode::InvalidArgument,
            "facility, from and to are required, e.g. ?facility=fac-klaten&from=2026-09-01&to=2026-10-01",
        ));
    };
    let (from, to) = match (instant("from", &from), instant("to", &to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return problem(&e),
    };
    match reader.timber_report(&view, &facility, from, to).await {
        Ok(rows) => {
            let rows: Vec<Value> = rows
                .into_iter()
                .map(|r| {
                    json!({
                        "product": r.product_id,
                        "productName": r.product_name,
                        "kind": r.kind,
                        "unit": r.unit,
                        "opening": r.opening.to_string(),
                        "received": r.received.to_string(),
                        "used": r.used.to_string(),
                        "produced": r.produced.to_string(),
                        "shipped": r.shipped.to_string(),
                        "closing": r.closing.to_string(),
                    })
                })
                .collect();
            reply(
                "application/json",
                &json!({ "facility": facility, "from": jejak_epcis::export::time(from), "to": jejak_epcis::export::time(to), "rows": rows }),
            )
        }
        Err(e) => problem(&e),
    }
}
