//! Webhook deliveries as Standard Webhooks (standardwebhooks.com) defines
//! them: a POST of the JSON payload with `webhook-id`, `webhook-timestamp`
//! and `webhook-signature` (`v1,` and the base64 HMAC-SHA256, keyed with the
//! secret's bytes, of `id.timestamp.body`); secrets are shown as `whsec_`
//! and base64. One request per connection, HTTPS with the system's roots
//! (plain HTTP only to a loopback receiver), a deadline on the whole
//! exchange, redirects not followed, and the reply's body never read.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use sha2::{Digest, Sha256};

/// The whole exchange with a receiver, connection to status line.
pub const DEADLINE: Duration = Duration::from_secs(10);

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// A new signing secret: 24 bytes from the OS, as stored (base64).
pub fn new_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the OS's random source failed: {e}"))?;
    Ok(B64.encode(bytes))
}

/// A stored secret as shown to its owner.
pub fn shown_secret(stored: &str) -> String {
    format!("whsec_{stored}")
}

/// The `webhook-signature` header's value.
pub fn signature(secret_b64: &str, id: &str, timestamp: i64, body: &[u8]) -> anyhow::Result<String> {
    let key = B64
        .decode(secret_b64)
        .map_err(|e| anyhow::anyhow!("a stored webhook secret is not base64: {e}"))?;
    let mut message = format!("{id}.{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    Ok(format!("v1,{}", B64.encode(hmac_sha256(&key, &message))))
}

/// Why a URL cannot receive webhooks, if it cannot: it must be `https://`
/// (or `http://` to a loopback address), with a host.
pub fn check_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{} is not a URL: {e}", jejak_domain::quote(url)))?;
    let host = uri.host().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{} has no host", jejak_domain::quote(url)));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(format!(
            "{} is plain HTTP: webhooks are sent over https:// (plain http:// only to a loopback receiver)",
            jejak_domain::quote(url)
        )),
        _ => Err(format!("{} is not an https:// URL", jejak_domain::quote(url))),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn tls() -> &'static tokio_rustls::TlsConnector {
    static TLS: std::sync::OnceLock<tokio_rustls::TlsConnector> = std::sync::OnceLock::new();
    TLS.get_or_init(|| {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
            .unwrap_or_else(|_| {
                tokio_rustls::rustls::ClientConfig::builder()
                    .with_root_certificates(tokio_rustls::rustls::RootCertStore::empty())
                    .with_no_client_auth()
            });
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
    })
}

/// POSTs `body` to `url` with `headers`; the reply's status, or why there
/// was none. Never follows a redirect and never reads the reply's body.
pub async fn post(url: &str, headers: &[(&str, String)], body: Bytes) -> Result<u16, String> {
    tokio::time::timeout(DEADLINE, exchange(url, headers, body))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", DEADLINE.as_secs())))
}

async fn exchange(url: &str, headers: &[(&str, String)], body: Bytes) -> Result<u16, String> {
    let uri = check_url(url)?;
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let mut request = http::Request::post(path)
        .header(
            http::header::HOST,
            uri.authority().map_or(host.clone(), |a| a.to_string()),
        )
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, concat!("jejak/", env!("CARGO_PKG_VERSION")));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| format!("build the request: {e}"))?;
    let status = if https {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("{host} is not a server name: {e}"))?;
        let stream = tls()
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        send(hyper_util::rt::TokioIo::new(stream), request).await?
    } else {
        send(hyper_util::rt::TokioIo::new(tcp), request).await?
    };
    Ok(status)
}

async fn send<IO>(io: IO, request: http::Request<Full<Bytes>>) -> Result<u16, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let driver = tokio::spawn(connection);
    let result = sender.send_request(request).await;
    // The body is not read: dropping the reply and the connection ends it.
    driver.abort();
    result.map(|r| r.status().as_u16()).map_err(|e| format!("HTTP: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        // Test case 1.
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2: a short key.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = signature(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn only_https_or_loopback_http_receives_webhooks() {
        assert!(check_url("https://buyer.example/hooks").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://[::1]:8080/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(check_url("http://buyer.example/hooks")
            .unwrap_err()
            .contains("plain HTTP"));
        assert!(check_url("ftp://buyer.example/").is_err());
        assert!(check_url("not a url").is_err());
    }
}
