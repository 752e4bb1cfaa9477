//! `jejak epcis export` and `jejak epcis capture`: the server's EPCIS 2.0
//! REST interface over the same connection as gRPC calls (plain HTTP on
//! HTTP/2, TLS and token included). An export is fetched page after page
//! and written as one EPCISDocument; a capture is posted and its job
//! followed until it ends.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::{connect, Conn, Target};

/// GETs `path_and_query` on the server; the status and the JSON body. A
/// GET lost with a broken connection is asked again on a new one (up to
/// `LOST_LOOKS` in a row): an export's page, a capture job, a filing.
pub(crate) async fn get_json(
    conn: &mut Conn,
    url: &str,
    path_and_query: &str,
) -> anyhow::Result<(http::StatusCode, Value)> {
    let mut lost = 0u32;
    loop {
        match request_json(conn, url, http::Method::GET, path_and_query, Vec::new(), &[]).await {
            Err(e) if e.downcast_ref::<ConnectionBroken>().is_some() && lost < LOST_LOOKS => {
                lost += 1;
                tokio::time::sleep(SLOW_DOWN.0 * lost).await;
            }
            answered => return answered,
        }
    }
}

/// The connection broke before a reply came back whole: the request may
/// or may not have reached the server. The channel connects again for the
/// next request.
#[derive(Debug)]
struct ConnectionBroken(String);

impl std::fmt::Display for ConnectionBroken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectionBroken {}

fn broken(what: String) -> anyhow::Error {
    anyhow::Error::new(ConnectionBroken(what))
}

/// Sends a request; the status and the JSON body of the reply.
async fn request_json(
    conn: &mut Conn,
    url: &str,
    method: http::Method,
    path_and_query: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> anyhow::Result<(http::StatusCode, Value)> {
    use tower_service::Service;
    let what = format!("{method} {path_and_query}");
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("{}{path_and_query}", url.trim_end_matches('/')))
        .header(http::header::ACCEPT, "application/ld+json, application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(tonic::body::Body::new(http_body_util::Full::new(bytes::Bytes::from(
            body,
        ))))
        .context("build the request")?;
    std::future::poll_fn(|cx| conn.poll_ready(cx))
        .await
        .map_err(|e| broken(format!("the connection to {url} is not ready: {e}")))?;
    let response = conn.call(request).await.map_err(|e| broken(format!("{what}: {e}")))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| broken(format!("read the reply to {what}: {e}")))?
        .to_bytes();
    let json = serde_json::from_slice(&body).with_context(|| {
        format!(
            "the reply to {what} ({status}) is not JSON: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })?;
    Ok((status, json))
}

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct Export {
    pub lot: Option<String>,
    /// Event times from (inclusive) and to (exclusive), `xsd:dateTime`.
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Writes the export to `out` (one EPCISDocument, master data in its
/// header); returns how many events it holds.
pub async fn export(target: &Target, what: &Export, out: &Path) -> anyhow::Result<u64> {
    let mut conn = connect(target).await?;
    let mut params = form_urlencoded::Serializer::new(String::new());
    if let Some(l) = &what.lot {
        params.append_pair("lot", l);
    }
    if let Some(f) = &what.from {
        params.append_pair("from", f);
    }
    if let Some(t) = &what.to {
        params.append_pair("to", t);
    }
    let base = params.finish();
    let tmp = out.with_extension("partial");
    let file = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} events exported ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let mut written = 0u64;
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("/epcis/export?{base}");
        if let Some(t) = &token {
            path.push_str(&format!("{}nextPageToken={t}", if base.is_empty() { "" } else { "&" }));
        }
        let (status, mut doc) = get_json(&mut conn, &target.url, &path).await?;
        if !status.is_success() {
            let detail = doc["detail"].as_str().unwrap_or("no detail given").to_string();
            anyhow::bail!("the server refused the export ({status}): {detail}");
        }
        let events = match doc.pointer_mut("/epcisBody/eventList") {
            Some(Value::Array(list)) => std::mem::take(list),
            _ => anyhow::bail!("the server's export has no epcisBody.eventList"),
        };
        if token.is_none() {
            // The document around the events, from the first page.
            let mut head = doc.clone();
            if let Value::Object(m) = &mut head {
                m.remove("nextPageToken");
                m.remove("epcisBody");
            }
            let head = serde_json::to_string(&head)?;
            let head = head.strip_suffix('}').context("the export is not a JSON object")?;
            write!(w, "{head},\"epcisBody\":{{\"eventList\":[")?;
        }
        for e in &events {
            if written > 0 {
                w.write_all(b",\n")?;
            } else {
                w.write_all(b"\n")?;
            }
            serde_json::to_writer(&mut w, e)?;
            written += 1;
        }
        bar.set_position(written);
        match doc["nextPageToken"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    w.write_all(b"\n]}}\n")?;
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("write {}: {e}", tmp.display()))?
        .sync_all()?;
    std::fs::rename(&tmp, out).with_context(|| format!("move {} to {}", tmp.display(), out.display()))?;
    bar.finish_and_clear();
    Ok(written)
}

/// How a capture ended.
#[derive(Debug, Clone)]
pub struct Captured {
    pub job: Value,
}

impl Captured {
    pub fn success(&self) -> bool {
        self.job["success"].as_bool() == Some(true)
    }
}

/// GETs a broken connection may lose in a row before the client gives up
/// (waiting 0.5 s more each time: about 27 s in all).
const LOST_LOOKS: u32 = 10;

/// The waits after being told to slow down: doubling from the first to the
/// last.
const SLOW_DOWN: (std::time::Duration, std::time::Duration) = (
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(10),
);

/// Posts an EPCIS document to the server and follows its job until it
/// ends (`proceed`: refused events are reported and the rest recorded;
/// otherwise all or nothing).
pub async fn capture(target: &Target, file: &Path, proceed: bool) -> anyhow::Result<Captured> {
    let body = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let mut conn = connect(target).await?;
    let behaviour = if proceed { "proceed" } else { "rollback" };
    // Told to slow down (the server's rate limit), it waits and asks again:
    // a refused request created no job.
    let mut slow = SLOW_DOWN.0;
    let (status, job) = loop {
        let (status, job) = request_json(
            &mut conn,
            &target.url,
            http::Method::POST,
            "/epcis/capture",
            body.clone(),
            &[
                ("content-type", "application/ld+json"),
                ("GS1-Capture-Error-Behaviour", behaviour),
            ],
        )
        .await?;
        if status != http::StatusCode::TOO_MANY_REQUESTS {
            break (status, job);
        }
        tokio::time::sleep(slow).await;
        slow = (slow * 2).min(SLOW_DOWN.1);
    };
    if status != http::StatusCode::ACCEPTED {
        let detail = job["detail"].as_str().unwrap_or("no detail given").to_string();
        anyhow::bail!("the server refused the document ({status}): {detail}");
    }
    let id = job["captureID"]
        .as_str()
        .context("the server's capture job has no captureID")?
        .to_string();
    let total = job["events"].as_u64().unwrap_or(0);
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events recorded ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut wait = std::time::Duration::from_millis(20);
    let mut slow = SLOW_DOWN.0;
    loop {
        // The job runs on whatever happens to this connection (a look lost
        // with it is taken again on a new one: `get_json`).
        let (status, job) = match get_json(&mut conn, &target.url, &format!("/epcis/capture/{id}")).await {
            Ok(reply) => reply,
            Err(e) => {
                bar.finish_and_clear();
                return Err(e.context(format!(
                    "capture job {id} goes on on the server: follow it with `GET /epcis/capture/{id}`"
                )));
            }
        };
        if status == http::StatusCode::TOO_MANY_REQUESTS {
            tokio::time::sleep(slow).await;
            slow = (slow * 2).min(SLOW_DOWN.1);
            continue;
        }
        slow = SLOW_DOWN.0;
        if !status.is_success() {
            let detail = job["detail"].as_str().unwrap_or("no detail given").to_string();
            anyhow::bail!("capture job {id} could not be read ({status}): {detail}");
        }
        bar.set_position(job["recorded"].as_u64().unwrap_or(0));
        if job["running"].as_bool() != Some(true) {
            bar.finish_and_clear();
            return Ok(Captured { job });
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_millis(500));
    }
}
