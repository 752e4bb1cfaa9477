//! The EPCIS 2.0 REST interface on the server's port:
//! `GET /epcis/events` (EPCIS query parameters, `perPage` and
//! `nextPageToken` with a `Link` header to the next page),
//! `GET /epcis/eventTypes`, `GET /epcis/export` (whole documents), and
//! `POST /epcis/capture` with its jobs at `GET /epcis/capture/{id}`. Every reply carries the `GS1-EPCIS-Version` and
//! `GS1-CBV-Version` headers. What a caller receives is decided by its view
//! in `jejak_read` (a member sees its own lots' events in full, a
//! regulator everything, anyone else the public parts).

use std::sync::Arc;

use axum::extract::{Extension, Path, RawQuery, State};
use axum::response::IntoResponse;
use http::{header, HeaderValue, StatusCode};
use jejak_engine::Engine;
use jejak_epcis::export::Ids;
use jejak_epcis::query::{Query, EVENT_TYPES};
use jejak_log::ReadLog;
use jejak_proto::{ErrorCode, Refusal, ServiceError};
use jejak_read::Reader;
use serde_json::{json, Value};

use crate::auth::Caller;

/// Where the EPCIS routes live.
pub const PREFIX: &str = "/epcis/";
/// The private Digital-Link-style domain of ids without a GS1 key, unless
/// `--epcis-domain` names another.
pub const DEFAULT_DOMAIN: &str = "https://id.jejak.example";

/// Where documents are captured.
pub const CAPTURE: &str = "/epcis/capture";

/// Whole EPCIS documents of the log, master data in their header
/// (administrators and regulators: `lot`, `from`, `to`, `perPage` up to
/// 10,000 and `nextPageToken`).
pub const EXPORT: &str = "/epcis/export";
/// Events per export page unless asked otherwise.
pub const EXPORT_PAGE: usize = 10_000;

const EPCIS_VERSION: &str = "2.0.0";
const CBV_VERSION: &str = "2.0.0";

struct Epcis<L, S> {
    reader: Reader<L>,
    ids: Ids,
    /// Where captures are recorded (none: this process only reads).
    writer: Option<Arc<S>>,
    jobs: crate::epcis_capture::Jobs,
    index: jejak_read::epcis::IdIndex,
    /// Places for documents being read and checked (`READ_AT_ONCE`).
    reading: Arc<tokio::sync::Semaphore>,
}

type Shared<L, S> = Arc<Epcis<L, S>>;

/// Captured documents read and checked at once: each of up to 64 MiB is
/// held whole and parsed into about ten times that, so more at once would
/// only grow memory; another is told to slow down (429, which
/// `jejak epcis capture` waits on and sends again).
const READ_AT_ONCE: usize = 2;

/// The EPCIS routes over `reader` (and `writer`, for capture), ids under `domain`.
pub fn routes<L: ReadLog, S: Engine>(reader: Reader<L>, writer: Option<Arc<S>>, domain: &str) -> axum::Router {
    let state = Arc::new(Epcis {
        reader,
        ids: Ids::new(domain),
        writer,
        jobs: crate::epcis_capture::Jobs::default(),
        index: jejak_read::epcis::IdIndex::default(),
        reading: Arc::new(tokio::sync::Semaphore::new(READ_AT_ONCE)),
    });
    axum::Router::new()
        .route("/epcis/events", axum::routing::get(events::<L, S>))
        .route("/epcis/events/{id}", axum::routing::get(event::<L, S>))
        .route("/epcis/eventTypes", axum::routing::get(event_types))
        .route(EXPORT, axum::routing::get(export::<L, S>))
        .route(CAPTURE, axum::routing::post(capture::<L, S>))
        .route("/epcis/capture/{id}", axum::routing::get(job::<L, S>))
        .with_state(state)
}

fn reply(status: StatusCode, content_type: &'static str, body: &Value) -> http::Response<axum::body::Body> {
    let mut r = (status, body.to_string() + "\n").into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("GS1-EPCIS-Version", HeaderValue::from_static(EPCIS_VERSION));
    h.insert("GS1-CBV-Version", HeaderValue::from_static(CBV_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn problem(e: &(impl ServiceError + ?Sized)) -> http::Response<axum::body::Body> {
    problem_of(e, false)
}

/// `problem`, for the capture of a document.
fn capture_problem(e: &(impl ServiceError + ?Sized)) -> http::Response<axum::body::Body> {
    problem_of(e, true)
}

/// A refusal as problem+json whose `type` is the EPCIS 2.0 exception it is
/// (`epcisException:…`, which EPCIS clients branch on), jejak's own reason
/// beside it in `reason`.
fn problem_of(e: &(impl ServiceError + ?Sized), capturing: bool) -> http::Response<axum::body::Body> {
    let code = e.error_code();
    let mut body = jejak_proto::problem_json(e);
    if let Some(kind) = epcis_exception(code, capturing) {
        body["type"] = Value::from(format!("epcisException:{kind}"));
    }
    if code == ErrorCode::Internal {
        tracing::error!(error = %e, reason = e.reason(), "an EPCIS request failed");
        body["detail"] = Value::from(match capturing {
            true => "the document could not be captured; try again later",
            false => "the events could not be read; try again later",
        });
    }
    reply(code.http(), "application/problem+json", &body)
}

/// The EPCIS 2.0 exception of a refusal, where there is one.
fn epcis_exception(code: ErrorCode, capturing: bool) -> Option<&'static str> {
    Some(match code {
        ErrorCode::InvalidArgument if capturing => "ValidationException",
        ErrorCode::InvalidArgument => "QueryParameterException",
        ErrorCode::NotFound => "NoSuchResourceException",
        ErrorCode::TooLarge if capturing => "CaptureLimitExceededException",
        ErrorCode::TooLarge => "QueryTooLargeException",
        ErrorCode::Unauthenticated | ErrorCode::PermissionDenied => "SecurityException",
        ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::DeadlineExceeded => "ImplementationException",
        _ => return None,
    })
}

/// The query string's pairs, decoded.
fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn events<L: ReadLog, S: Engine>(
    State(s): State<Shared<L, S>>,
    caller: Option<Extension<Caller>>,
    RawQuery(raw): RawQuery,
) -> http::Response<axum::body::Body> {
    let q = match Query::parse(&pairs(raw.as_deref())) {
        Ok(q) => q,
        Err(e) => {
            return problem(&Refusal::new(ErrorCode::InvalidArgument, e.to_string()).with_reason("EPCIS_QUERY_INVALID"))
        }
    };
    let view = caller.map_or(jejak_read::View::Public, |Extension(c)| c.view());
    let page = match s.reader.epcis_events(&view, &s.ids, &q).await {
        Ok(p) => p,
        Err(e) => return problem(&e),
    };
    let created = jejak_domain::Time::now();
    let mut doc = json!({
        "@context": jejak_epcis::export::context(),
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": jejak_epcis::export::time(created),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": { "eventList": page.events },
            }
        }
    });
    if let Some(next) = page.next {
        doc["nextPageToken"] = Value::from(next.to_string());
    }
    let mut r = reply(StatusCode::OK, "application/ld+json", &doc);
    if let Some(next) = page.next {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in q.filters() {
            query.append_pair(name, &value);
        }
        query.append_pair("nextPageToken", &next.to_string());
        let link = format!("</epcis/events?{}>; rel=\"next\"", query.finish());
        if let Ok(v) = HeaderValue::from_str(&link) {
            r.headers_mut().insert(header::LINK, v);
        }
    }
    r
}

/// `GET /epcis/events/{eventID}`: the event with that id (and, when it was
/// declared wrong, its error declaration), as the caller receives it.
async fn event<L: ReadLog, S: Engine>(
    State(s): State<Shared<L, S>>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> http::Response<axum::body::Body> {
    let view = caller.map_or(jejak_read::View::Public, |Extension(c)| c.view());
    let found = match s.reader.epcis_events_by_id(&view, &s.ids, &s.index, &id).await {
        Ok(f) => f,
        Err(e) => return problem(&e),
    };
    if found.is_empty() {
        return problem(&Refusal::new(
            ErrorCode::NotFound,
            format!("no event {} that this caller may see", jejak_domain::quote(&id)),
        ));
    }
    let doc = json!({
        "@context": jejak_epcis::export::context(),
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": jejak_epcis::export::time(jejak_domain::Time::now()),
        "epcisBody": { "queryResults": { "queryName": "SimpleEventQuery", "resultsBody": { "eventList": found } } },
    });
    reply(StatusCode::OK, "application/ld+json", &doc)
}

async fn event_types() -> http::Response<axum::body::Body> {
    reply(StatusCode::OK, "application/json", &json!(EVENT_TYPES))
}

fn invalid(message: impl Into<String>) -> http::Response<axum::body::Body> {
    problem(&Refusal::new(ErrorCode::InvalidArgument, message).with_reason("EPCIS_QUERY_INVALID"))
}

/// A document that does not conform: 400, an EPCIS `ValidationException`.
fn invalid_document(message: impl Into<String>) -> http::Response<axum::body::Body> {
    capture_problem(&Refusal::new(ErrorCode::InvalidArgument, message).with_reason("EPCIS_DOCUMENT_INVALID"))
}

/// `GET /epcis/export`: an EPCISDocument of the log's events in log order
/// (one lot's with `lot`, those with an event time from `from` and before
/// `to`), the master data in its header, and where the next page starts.
async fn export<L: ReadLog, S: Engine>(
    State(s): State<Shared<L, S>>,
    caller: Option<Extension<Caller>>,
    RawQuery(raw): RawQuery,
) -> http::Response<axum::body::Body> {
    let view = caller.map_or(jejak_read::View::Public, |Extension(c)| c.view());
    let mut q = Query {
        per_page: EXPORT_PAGE,
        ..Query::default()
    };
    for (name, value) in pairs(raw.as_deref()) {
        match name.as_str() {
            "lot" => q.lots.push(value),
            "from" => match jejak_epcis::query::parse_time("from", &value) {
                Ok(t) => q.ge_event_time = Some(t),
                Err(e) => return invalid(e.to_string()),
            },
            "to" => match jejak_epcis::query::parse_time("to", &value) {
                Ok(t) => q.lt_event_time = Some(t),
                Err(e) => return invalid(e.to_string()),
            },
            "perPage" => match value.parse::<usize>().ok().filter(|n| (1..=EXPORT_PAGE).contains(n)) {
                Some(n) => q.per_page = n,
                None => return invalid(format!("perPage: {value:?} is not a number from 1 to {EXPORT_PAGE}")),
            },
            "nextPageToken" => match value.parse::<u64>() {
                Ok(p) => q.after = p,
                Err(_) => return invalid(format!("nextPageToken: {value:?} is not a page token this server gave")),
            },
            other => {
                return invalid(format!(
                    "{other}: is not an export parameter (lot, from, to, perPage, nextPageToken)"
                ))
            }
        }
    }
    for lot in &q.lots {
        if let Err(e) = s.reader.lot(&view, lot).await {
            return problem(&e);
        }
    }
    let page = match s.reader.epcis_events(&view, &s.ids, &q).await {
        Ok(p) => p,
        Err(e) => return problem(&e),
    };
    let master = s.reader.epcis_master_data(&s.ids);
    let mut doc = jejak_epcis::export::document(page.events, Some(master), jejak_domain::Time::now());
    if let Some(next) = page.next {
        doc["nextPageToken"] = Value::from(next.to_string());
    }
    reply(StatusCode::OK, "application/ld+json", &doc)
}

/// `POST /epcis/capture`: a document checked at once (400 naming what is
/// wrong, nothing written), then recorded by a job (202, `Location` of the
/// job). `GS1-Capture-Error-Behaviour: rollback` (the default) or `proceed`.
async fn capture<L: ReadLog, S: Engine>(
    State(s): State<Shared<L, S>>,
    caller: Option<Extension<Caller>>,
    headers: http::HeaderMap,
    body: axum::body::Body,
) -> http::Response<axum::body::Body> {
    let Some(writer) = s.writer.clone() else {
        return capture_problem(&Refusal::new(
            ErrorCode::Unavailable,
            "this process does not capture EPCIS documents: send them to `jejak serve` (embedded or --nats)",
        ));
    };
    let caller = match caller {
        Some(Extension(c)) => c,
        None => {
            return capture_problem(&Refusal::new(
                ErrorCode::Unauthenticated,
                "capture needs an access token",
            ))
        }
    };
    let too_large = || {
        capture_problem(
            &Refusal::new(
                ErrorCode::TooLarge,
                format!(
                    "the document is larger than the {} bytes one capture takes; split it",
                    crate::epcis_capture::MAX_DOCUMENT_BYTES
                ),
            )
            .with_reason("EPCIS_DOCUMENT_TOO_LARGE"),
        )
    };
    // Refused on what it announces, before any of it is read.
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > crate::epcis_capture::MAX_DOCUMENT_BYTES as u64) {
        return too_large();
    }
    // Held until the document is read, parsed and planned.
    let Ok(_reading) = s.reading.clone().try_acquire_owned() else {
        let mut r = capture_problem(
            &Refusal::new(
                ErrorCode::RateLimited,
                format!("{READ_AT_ONCE} documents are being read and checked already; send this one again in a moment"),
            )
            .with_reason("EPCIS_CAPTURE_BUSY"),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let body = match axum::body::to_bytes(body, crate::epcis_capture::MAX_DOCUMENT_BYTES).await {
        Ok(b) => b,
        Err(e) if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) => {
            return too_large()
        }
        Err(e) => return invalid_document(format!("the request body could not be read: {e}")),
    };
    let behaviour = match headers
        .get("GS1-Capture-Error-Behaviour")
        .map(|v| v.to_str().unwrap_or(""))
    {
        None | Some("rollback") => crate::epcis_capture::Behaviour::Rollback,
        Some("proceed") => crate::epcis_capture::Behaviour::Proceed,
        Some(other) => {
            return invalid_document(format!(
                "GS1-Capture-Error-Behaviour: {other:?} is neither rollback nor proceed"
            ))
        }
    };
    // Parsing and checking a document of up to 64 MiB is work for a
    // blocking thread, not for the runtime's, which serve every request.
    let state = s.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        let doc: Value = match serde_json::from_slice(&body) {
            Ok(d) => d,
            Err(e) => return Err(Box::new(invalid_document(format!("the document is not JSON: {e}")))),
        };
        let checked = match jejak_epcis::capture::check_document(&doc) {
            Ok(c) => c,
            Err(p) if p.index.is_none() && p.field == "epcisBody.eventList" && p.reason.contains("at most") => {
                return Err(Box::new(capture_problem(
                    &Refusal::new(ErrorCode::TooLarge, p.to_string()).with_reason("EPCIS_TOO_MANY_EVENTS"),
                )))
            }
            Err(p) => return Err(Box::new(invalid_document(p.to_string()))),
        };
        match crate::epcis_capture::plan(&state.reader, &state.ids, &doc, &checked) {
            Ok(plan) => Ok((checked.events.len(), plan)),
            Err(p) => Err(Box::new(invalid_document(p.to_string()))),
        }
    })
    .await;
    let (events, plan) = match parsed {
        Ok(Ok(done)) => done,
        Ok(Err(refused)) => return *refused,
        Err(e) => {
            return capture_problem(&Refusal::new(
                ErrorCode::Internal,
                format!("checking the document failed: {e}"),
            ))
        }
    };
    let id = s.jobs.start(behaviour, events);
    let state = s.clone();
    let job_id = id.clone();
    tokio::spawn(async move {
        crate::epcis_capture::run(&state.jobs, &job_id, &*writer, &caller, plan, behaviour).await;
    });
    let mut r = reply(
        StatusCode::ACCEPTED,
        "application/json",
        &s.jobs.json(&id).unwrap_or(Value::Null),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{CAPTURE}/{id}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// `GET /epcis/capture/{id}`: a capture job, to whoever may capture.
async fn job<L: ReadLog, S: Engine>(
    State(s): State<Shared<L, S>>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> http::Response<axum::body::Body> {
    if !caller.is_some_and(|Extension(c)| c.allows(crate::auth::Need::Capture)) {
        return problem(&Refusal::new(
            ErrorCode::PermissionDenied,
            "capture jobs are for callers who may capture",
        ));
    }
    match s.jobs.json(&id) {
        Some(j) => reply(StatusCode::OK, "application/json", &j),
        None => problem(&Refusal::new(
            ErrorCode::NotFound,
            format!(
                "no capture job {} (jobs are kept for the last 1,000 captures)",
                jejak_domain::quote(&id)
            ),
        )),
    }
}
