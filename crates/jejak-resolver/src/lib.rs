//! The GS1 Digital Link resolver over HTTP, on the same port as gRPC:
//! `[/prefix]/01/{gtin}/10/{lot}[/21/{serial}]` answers with the provenance
//! page, JSON, JSON-LD or an RFC 9264 linkset by content negotiation;
//! `/labels/...` draws a label's QR code; `/.well-known/gs1resolver`
//! describes the resolver. Every answer is the public view.

//!
//! **Invariant:** HTTP only. It reads through `jejak-read`'s [`Reader`]
//! (the story of a label and what a label prints), never a lot or the
//! genealogy itself, so it can show nothing the public view does not; its
//! refusals come from the one error table (`jejak_proto::ErrorCode`).

pub mod links;
pub mod page;
pub mod text;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use jejak_domain::gs1::DigitalLink;
use jejak_log::ReadLog;
use jejak_proto::{ErrorCode, Refusal, ServiceError};
use jejak_read::provenance::{self, Provenance};
use jejak_read::Reader;
use text::Lang;

/// The public path of the resolver's description.
pub const WELL_KNOWN: &str = "/.well-known/gs1resolver";
/// Where label images are served: `/labels` + a Digital Link path.
pub const LABELS: &str = "/labels";

/// Whether `path` is one of the resolver's public routes (a Digital Link
/// under any prefix, a label image, the description). gRPC paths
/// (`/package.Service/Method`) never have a `01` segment.
pub fn is_public_path(path: &str) -> bool {
    if path == WELL_KNOWN || path.starts_with("/labels/") {
        return true;
    }
    let segments = path.split('/').skip(1);
    // A gRPC path starts with a package-qualified service name.
    if segments.clone().next().is_none_or(|first| first.contains('.')) {
        return false;
    }
    has_gtin_segment(path)
}

/// Whether the path has a `/01/` followed by something: a Digital Link
/// under some prefix, well-formed or not.
fn has_gtin_segment(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    segments.windows(2).any(|w| w[0] == "01" && !w[1].is_empty())
}

/// Told of every answer: the route, how long it took, its status.
pub type Observer = Arc<dyn Fn(&'static str, std::time::Instant, StatusCode) + Send + Sync>;

/// What the resolver serves from.
pub struct Resolver<L> {
    reader: Reader<L>,
    observe: Observer,
    /// Scheme and host of label URIs, e.g. `https://id.jejak.example`;
    /// without one, the host the request came to.
    base: Option<String>,
    tls: bool,
}

impl<L: ReadLog> Resolver<L> {
    pub fn new(reader: Reader<L>, base: Option<String>, tls: bool, observe: Observer) -> Resolver<L> {
        Resolver {
            reader,
            observe,
            base: base.map(|b| b.trim_end_matches('/').to_string()),
            tls,
        }
    }

    /// The resolver's routes, to merge with the gRPC services.
    pub fn routes(self) -> axum::Router {
        let state = Arc::new(self);
        axum::Router::new()
            .route(WELL_KNOWN, axum::routing::get(well_known::<L>))
            .route("/labels/{*path}", axum::routing::get(label::<L>))
            .fallback(resolve::<L>)
            .with_state(state)
    }

    fn base(&self, headers: &HeaderMap, uri: &http::Uri) -> String {
        if let Some(b) = &self.base {
            return b.clone();
        }
        let host = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| {
                headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .filter(|h| {
                !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .unwrap_or_else(|| "localhost".to_string());
        format!("{}://{host}", if self.tls { "https" } else { "http" })
    }
}

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Json,
    JsonLd,
    Linkset,
    Certification,
    Recall,
    /// The provenance bundle (`jejak:provenanceBundle`).
    Bundle,
}

/// The query parameters the resolver reads.
#[derive(Debug, Default)]
struct Query {
    link_type: Option<String>,
    lang: Option<String>,
    format: Option<String>,
    size: Option<String>,
}

impl Query {
    fn parse(q: Option<&str>) -> Query {
        let mut out = Query::default();
        for pair in q.unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k {
                "linkType" => out.link_type = Some(v),
                "lang" => out.lang = Some(v),
                "format" => out.format = Some(v),
                "size" => out.size = Some(v),
                _ => {}
            }
        }
        out
    }
}

/// Decodes `%XX` escapes and `+`; invalid escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                match hex
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The media types (or language tags) of an Accept-style header with their
/// q-values, in the order given; malformed weights count as 0.
pub fn weighted(header: &str) -> impl Iterator<Item = (String, f32)> + '_ {
    header.split(',').filter_map(|part| {
        let mut fields = part.split(';');
        let item = fields.next()?.trim().to_ascii_lowercase();
        if item.is_empty() {
            return None;
        }
        let q = fields
            .filter_map(|f| {
                let (k, v) = f.split_once('=')?;
                k.trim().eq_ignore_ascii_case("q").then(|| v.trim())
            })
            .next()
            .map_or(1.0, |v| {
                v.parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0)
            });
        Some((item, q))
    })
}

/// `linkType` first, then the Accept header; the provenance page for
/// browsers, for anything unspecific (`*/*`) and for link types this
/// resolver does not have (GS1: answer with the default link).
fn choose_format(query: &Query, accept: Option<&str>) -> Format {
    if let Some(lt) = query.link_type.as_deref() {
        let lt = lt
            .strip_prefix("gs1:")
            .or_else(|| lt.strip_prefix(links::GS1_VOC))
            .unwrap_or(lt);
        match lt {
            "linkset" | "all" => return Format::Linkset,
            "traceability" => return Format::Json,
            "certificationInfo" => return Format::Certification,
            "recallStatus" => return Format::Recall,
            "pip" | "defaultLink" => return Format::Html,
            _ if lt == links::BUNDLE_LINK_TYPE => return Format::Bundle,
            _ => {}
        }
    }
    let mut best = (0.0f32, Format::Html);
    for (media, q) in weighted(accept.unwrap_or("")) {
        let format = match media.as_str() {
            "text/html" | "application/xhtml+xml" => Format::Html,
            "application/json" => Format::Json,
            "application/ld+json" => Format::JsonLd,
            "application/linkset+json" => Format::Linkset,
            _ => continue,
        };
        // Higher q wins; on a tie, the type listed first.
        if q > best.0 {
            best = (q, format);
        }
    }
    best.1
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every answer of the resolver is public: web apps on any origin may read it.
fn response(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> http::Response<Body> {
    let mut r = http::Response::new(body.into());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

fn json_response(
    status: StatusCode,
    content_type: &'static str,
    value: &impl serde::Serialize,
) -> http::Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => response(status, content_type, bytes),
        Err(e) => response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            format!("encode the reply: {e}\n"),
        ),
    }
}

/// A refusal in the form the client asked for: the friendly page for
/// people, `application/problem+json` (with the reason gRPC callers get in
/// `ErrorInfo`) for programs. A fault of the server is logged and told
/// without its details.
fn problem(e: &(impl ServiceError + ?Sized), format: Format, lang: Lang) -> http::Response<Body> {
    let code = e.error_code();
    let status = code.http();
    let internal = code == ErrorCode::Internal;
    if internal {
        tracing::error!(error = %e, reason = e.reason(), "resolving a label failed");
    }
    let detail = match internal {
        true => "the record could not be read; try again later".to_string(),
        false => e.to_string(),
    };
    let mut r = match format {
        Format::Html => response(
            status,
            "text/html; charset=utf-8",
            page::problem(lang, status == StatusCode::NOT_FOUND, &detail),
        ),
        _ => {
            let mut body = jejak_proto::problem_json(e);
            body["detail"] = serde_json::Value::from(detail);
            json_response(status, "application/problem+json", &body)
        }
    };
    let h = r.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Language"));
    if let Some(wait) = e.retry_after() {
        h.insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
    }
    r
}

fn refuse(code: ErrorCode, format: Format, lang: Lang, detail: impl Into<String>) -> http::Response<Body> {
    problem(&Refusal::new(code, detail), format, lang)
}

fn method_allowed(method: &Method) -> Option<http::Response<Body>> {
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    let mut r = response(
        StatusCode::METHOD_NOT_ALLOWED,
        "text/plain; charset=utf-8",
        "the resolver answers GET and HEAD only\n",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    Some(r)
}

/// A Digital Link path (any prefix), or nothing this server knows.
async fn resolve<L: ReadLog>(State(r): State<Arc<Resolver<L>>>, request: Request) -> http::Response<Body> {
    let started = std::time::Instant::now();
    let (parts, _) = request.into_parts();
    // A gRPC call to a method no service has.
    if header_str(&parts.headers, header::CONTENT_TYPE).is_some_and(|c| c.starts_with("application/grpc")) {
        return grpc_unimplemented(parts.uri.path());
    }
    let query = Query::parse(parts.uri.query());
    let lang = Lang::choose(
        query.lang.as_deref(),
        header_str(&parts.headers, header::ACCEPT_LANGUAGE),
    );
    let format = choose_format(&query, header_str(&parts.headers, header::ACCEPT));
    if let Some(refusal) = method_allowed(&parts.method) {
        return refusal;
    }
    let path = parts.uri.path();
    if !safe_path(path) {
        return refuse(
            ErrorCode::NotFound,
            format,
            lang,
            "nothing is served at a path with empty, \".\" or \"..\" segments; labels look like /01/{gtin}/10/{lot}",
        );
    }
    if !has_gtin_segment(path) {
        return refuse(
            ErrorCode::NotFound,
            format,
            lang,
            format!(
                "nothing is served at {}; labels look like /01/{{gtin}}/10/{{lot}}",
                jejak_domain::quote(path)
            ),
        );
    }
    // A GTIN alone is a well-formed Digital Link, but jejak answers lots.
    if let Err(e @ jejak_domain::gs1::Gs1Error::MissingLot { .. }) = DigitalLink::parse(path) {
        return refuse(
            ErrorCode::NotFound,
            format,
            lang,
            format!("{e}: jejak labels name a lot"),
        );
    }
    let base = r.base(&parts.headers, &parts.uri);
    // Links back to this page use the label's own path, never the path as
    // the request spelled it.
    let canonical = DigitalLink::parse(path).map(|d| d.path()).unwrap_or_default();
    if format == Format::Bundle {
        let reply = bundle(&r, path, &format!("{base}{canonical}"), lang).await;
        (r.observe)("bundle", started, reply.status());
        return reply;
    }
    let reply = match r.reader.provenance(path, &base).await {
        Ok(page) => render(&page, format, lang, &canonical),
        Err(e) => problem(&e, format, lang),
    };
    (r.observe)("resolve", started, reply.status());
    reply
}

/// The public provenance bundle of a label, as a download.
async fn bundle<L: ReadLog>(r: &Resolver<L>, path: &str, uri: &str, lang: Lang) -> http::Response<Body> {
    let link = match DigitalLink::parse(path) {
        Ok(l) => l,
        Err(e) => return refuse(ErrorCode::InvalidArgument, Format::Json, lang, e.to_string()),
    };
    let file = format!("{}.jejak-bundle.json", link.serial.as_deref().unwrap_or(&link.lot));
    let target = jejak_domain::Target::Label(link);
    match r.reader.bundle(&jejak_read::View::Public, &target, uri).await {
        Ok(b) => {
            let mut reply = json_response(StatusCode::OK, "application/json", &b);
            let disposition = format!(
                "attachment; filename=\"{}\"",
                file.replace(
                    |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.' && c != '_',
                    "_"
                )
            );
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                reply.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            reply
        }
        Err(e) => problem(&e, Format::Json, lang),
    }
}

/// Whether a request path is one links may be built from: no empty
/// segment (`//evil.example/…` would read as another host; one trailing
/// slash is allowed), no `.` or `..` segment (however it is
/// percent-encoded), no backslash.
fn safe_path(path: &str) -> bool {
    let rest = path.strip_prefix('/').unwrap_or(path);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    rest.is_empty()
        || !path.contains('\\')
            && rest.split('/').all(|segment| {
                let decoded = percent_decode(segment);
                !segment.is_empty()
                    && decoded != "."
                    && decoded != ".."
                    && !decoded.contains('/')
                    && !decoded.contains('\\')
            })
}

/// A gRPC call to a method no service has: UNIMPLEMENTED, as a
/// trailers-only gRPC response.
fn grpc_unimplemented(path: &str) -> http::Response<Body> {
    let mut r = http::Response::new(Body::empty());
    let message = format!("no such method {}", jejak_domain::quote(path));
    // grpc-message is percent-encoded; a URI path is printable ASCII.
    let message = message.replace('%', "%25");
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from_static("12"));
    if let Ok(v) = HeaderValue::from_str(&message) {
        h.insert("grpc-message", v);
    }
    r
}

fn render(p: &Provenance, format: Format, lang: Lang, path: &str) -> http::Response<Body> {
    let mut r = match format {
        Format::Html => {
            let mut r = response(
                StatusCode::OK,
                "text/html; charset=utf-8",
                page::provenance(p, lang, path),
            );
            r.headers_mut()
                .insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.code()));
            r
        }
        Format::Json => json_response(StatusCode::OK, "application/json", p),
        Format::JsonLd => json_response(StatusCode::OK, "application/ld+json", &links::json_ld(p)),
        Format::Linkset => json_response(
            StatusCode::OK,
            "application/linkset+json",
            &links::linkset(&p.uri, &p.product.name),
        ),
        Format::Certification => json_response(
            StatusCode::OK,
            "application/json",
            &serde_json::json!({
                "uri": p.uri,
                "lotId": p.lot_id,
                "inspections": p.inspections,
                "inputs": p.inputs.iter().map(|l| serde_json::json!({
                    "lotId": l.lot_id, "product": l.product, "inspections": l.inspections,
                })).collect::<Vec<_>>(),
            }),
        ),
        Format::Recall => json_response(
            StatusCode::OK,
            "application/json",
            &serde_json::json!({
                "uri": p.uri,
                "lotId": p.lot_id,
                "status": links::status_term(p.status),
                "recalled": p.status == provenance::Status::Recalled,
                "alerts": p.alerts,
            }),
        ),
        // Answered before the page is drafted (see `resolve`); the JSON page otherwise.
        Format::Bundle => json_response(StatusCode::OK, "application/json", p),
    };
    let h = r.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Language"));
    // A recall must reach people within a minute.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    if let Ok(v) = HeaderValue::from_str(&links::link_header(&p.uri)) {
        h.insert(header::LINK, v);
    }
    r
}

async fn well_known<L: ReadLog>(State(r): State<Arc<Resolver<L>>>, request: Request) -> http::Response<Body> {
    let (parts, _) = request.into_parts();
    let base = r.base(&parts.headers, &parts.uri);
    json_response(StatusCode::OK, "application/json", &links::resolver_description(&base))
}

/// `/labels/{digital link path}?format=svg|png&size=N`: the label of an
/// existing lot or package, its QR code encoding the URI under the base.
async fn label<L: ReadLog>(State(r): State<Arc<Resolver<L>>>, request: Request) -> http::Response<Body> {
    let started = std::time::Instant::now();
    let (parts, _) = request.into_parts();
    let query = Query::parse(parts.uri.query());
    let lang = Lang::choose(
        query.lang.as_deref(),
        header_str(&parts.headers, header::ACCEPT_LANGUAGE),
    );
    let path = parts.uri.path().strip_prefix(LABELS).unwrap_or("");
    if !safe_path(path) {
        return refuse(
            ErrorCode::NotFound,
            Format::Html,
            lang,
            "nothing is served at a path with empty, \".\" or \"..\" segments",
        );
    }
    let png = match query.format.as_deref() {
        Some("png") => true,
        Some("svg") | None => {
            query.format.is_none()
                && header_str(&parts.headers, header::ACCEPT)
                    .is_some_and(|a| a.contains("image/png") && !a.contains("image/svg+xml"))
        }
        Some(other) => {
            return refuse(
                ErrorCode::InvalidArgument,
                Format::Html,
                lang,
                format!(
                    "format {} is not served; use format=svg or format=png",
                    jejak_domain::quote(other)
                ),
            )
        }
    };
    let module_px = match query.size.as_deref().map(str::parse::<u32>) {
        None => 8,
        Some(Ok(n)) if (1..=32).contains(&n) => n,
        Some(_) => {
            return refuse(
                ErrorCode::InvalidArgument,
                Format::Html,
                lang,
                "size is the pixels per QR module, from 1 to 32",
            )
        }
    };
    let base = r.base(&parts.headers, &parts.uri);
    let reply = match r.reader.label_text(path).await {
        Err(e) => problem(&e, Format::Html, lang),
        Ok(text) => match DigitalLink::parse(path) {
            Err(e) => refuse(ErrorCode::InvalidArgument, Format::Html, lang, e.to_string()),
            Ok(dl) => {
                let label = jejak_label::Label::new(
                    dl.uri(&base),
                    text.product_name,
                    &text.gtin,
                    &text.lot_id,
                    text.serial.as_deref(),
                );
                let drawn = if png {
                    jejak_label::png(&label, module_px).map(|b| response(StatusCode::OK, "image/png", b))
                } else {
                    jejak_label::svg(&label).map(|s| response(StatusCode::OK, "image/svg+xml", s))
                };
                match drawn {
                    Ok(mut resp) => {
                        resp.headers_mut()
                            .insert(header::VARY, HeaderValue::from_static("Accept"));
                        resp
                    }
                    Err(e) => refuse(
                        ErrorCode::Internal,
                        Format::Html,
                        lang,
                        format!("drawing a label failed: {e}"),
                    ),
                }
            }
        },
    };
    (r.observe)("label", started, reply.status());
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_link_type_then_accept() {
        let q = |lt: &str| Query {
            link_type: Some(lt.into()),
            ..Query::default()
        };
        let none = Query::default();
        assert_eq!(choose_format(&q("linkset"), Some("text/html")), Format::Linkset);
        assert_eq!(choose_format(&q("all"), None), Format::Linkset);
        assert_eq!(choose_format(&q("gs1:traceability"), None), Format::Json);
        assert_eq!(
            choose_format(&q("https://ref.gs1.org/voc/recallStatus"), None),
            Format::Recall
        );
        assert_eq!(choose_format(&q("gs1:epil"), Some("application/json")), Format::Json);
        assert_eq!(choose_format(&q("gs1:epil"), None), Format::Html);
        assert_eq!(choose_format(&q("gs1:pip"), Some("application/json")), Format::Html);
        assert_eq!(
            choose_format(&none, Some("application/json;Q=0.9, text/html;q=0.5")),
            Format::Json
        );
        assert_eq!(
            choose_format(&none, Some("application/json;q=NaN, text/html;q=0.1")),
            Format::Html
        );
        assert_eq!(
            choose_format(&none, Some("application/json;q=7, text/html;q=0.1")),
            Format::Html
        );
        assert_eq!(
            choose_format(&none, Some("application/json, application/ld+json")),
            Format::Json
        );
        assert_eq!(
            choose_format(
                &none,
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
            ),
            Format::Html
        );
        assert_eq!(choose_format(&none, Some("application/json")), Format::Json);
        assert_eq!(
            choose_format(&none, Some("application/ld+json, application/json;q=0.5")),
            Format::JsonLd
        );
        assert_eq!(
            choose_format(&none, Some("application/json;q=0.4, text/html;q=0.9")),
            Format::Html
        );
        assert_eq!(choose_format(&none, Some("*/*")), Format::Html);
        assert_eq!(choose_format(&none, None), Format::Html);
        assert_eq!(choose_format(&none, Some("application/linkset+json")), Format::Linkset);
    }

    #[test]
    fn paths_that_could_point_elsewhere_are_not_served() {
        assert!(safe_path("/01/08997001001018/10/DMK-BP-260911/21/DMK5P-000001"));
        assert!(safe_path("/"));
        assert!(safe_path("/01/08997001001018/10/DMK-BP-260911/"), "one trailing slash");
        for bad in [
            "//evil.example/01/08997001001018/10/L1",
            "/01//08997001001018/10/L1",
            "/01/08997001001018/10/../10/L1",
            "/01/08997001001018/10/%2e%2E/L1",
            "/01/08997001001018/10/./L1",
            "/01/08997001001018/10/a%2Fb",
            "/01/08997001001018/10/a%5Cb",
            "/01/08997001001018/10/L1//",
        ] {
            assert!(!safe_path(bad), "{bad}");
        }
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let q = Query::parse(Some("linkType=gs1%3Atraceability&lang=en&x=%zz"));
        assert_eq!(q.link_type.as_deref(), Some("gs1:traceability"));
        assert_eq!(q.lang.as_deref(), Some("en"));
        assert_eq!(percent_decode("a%2Fb+c%"), "a/b c%");
        assert_eq!(percent_decode("%e2%9c%93"), "✓");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn public_paths_are_the_resolvers() {
        assert!(is_public_path("/01/08997001001018/10/L1"));
        assert!(is_public_path("/p/q/01/08997001001018/10/L1/21/S"));
        assert!(is_public_path("/labels/01/08997001001018/10/L1"));
        assert!(is_public_path(WELL_KNOWN));
        assert!(!is_public_path("/jejak.v1.AdminService/CreateToken"));
        assert!(!is_public_path("/metrics"));
        assert!(!is_public_path("/x01/"));
        assert!(!is_public_path("/jejak.v1.AdminService/CreateToken/01/x"));
        assert!(!is_public_path("/grpc.health.v1.Health/01/1"));
        assert!(!is_public_path("/01/"));
    }
}
