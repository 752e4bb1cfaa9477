//! The provenance page as a person sees it: headless Chromium (driven by
//! ChromeDriver over the W3C WebDriver protocol) opens a demo rice bag's
//! page at a phone's width, reads the visible text and saves a screenshot.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::resolver::RICE_BAG;
use crate::support::Demo;

pub(crate) const INSTALL: &str =
    "install them with `apt-get install chromium chromium-driver` (the test command .ci/test does this)";

/// A ChromeDriver process on a port of its choosing, killed on drop.
pub(crate) struct Driver {
    child: Child,
    authority: String,
    pub(crate) _profile: tempfile::TempDir,
}

impl Drop for Driver {
    /// Stops ChromeDriver and the browser it started (its process group),
    /// also when an assertion failed before the session was closed.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn find(names: &[&str]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/lib/chromium".into()])
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

impl Driver {
    pub(crate) fn start() -> anyhow::Result<Driver> {
        let driver = find(&["chromedriver"]).with_context(|| format!("chromedriver is missing: {INSTALL}"))?;
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(driver)
            .arg("--port=0")
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("start chromedriver")?;
        let stdout = child.stdout.take().context("chromedriver's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .strip_prefix("ChromeDriver was started successfully on port ")
                    .map(|p| p.trim_end_matches('.').to_string())
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                bail!("chromedriver did not say which port it listens on within 30 s");
            }
        };
        Ok(Driver {
            child,
            authority: format!("127.0.0.1:{port}"),
            _profile: tempfile::tempdir().context("a browser profile directory")?,
        })
    }

    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let reply = jejak_testkit::http_request(
            &self.authority,
            method,
            path,
            &[("Content-Type", "application/json; charset=utf-8")],
            body.as_bytes(),
        )
        .await
        .with_context(|| format!("webdriver {method} {path}"))?;
        let v = reply.json()?;
        if reply.status != 200 {
            bail!("webdriver {method} {path}: {} {}", reply.status, v["value"]["message"]);
        }
        Ok(v["value"].clone())
    }
}

/// Decodes standard base64 (WebDriver's screenshots).
pub(crate) fn base64(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => bail!("not base64: {:?}", c as char),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_a_rice_bag_page_naming_its_ukm_and_verdicts() {
    if find(&["chromium", "chromium-browser"]).is_none() {
        panic!("chromium is missing: {INSTALL}");
    }
    let demo = Demo::start().await;
    let driver = Driver::start().expect("start chromedriver");
    let binary = find(&["chromium", "chromium-browser"]).expect("chromium");
    let session = driver
        .call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": binary,
                    // A phone set to Bahasa Indonesia.
                    "prefs": {"intl.accept_languages": "id-ID,id"},
                    // A cheap phone's screen: 360 CSS pixels wide.
                    "mobileEmulation": {"deviceMetrics": {"width": 360, "height": 800, "pixelRatio": 2.0}},
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                        format!("--user-data-dir={}", driver._profile.path().display()),
                        "--lang=id-ID",
                    ],
                },
            }}})),
        )
        .await
        .expect("a browser session");
    let id = session["sessionId"].as_str().expect("session id").to_string();
    let s = format!("/session/{id}");

    let url = format!("{}{RICE_BAG}", demo.server.url);
    driver
        .call("POST", &format!("{s}/url"), Some(json!({ "url": url })))
        .await
        .expect("open the page");
    let body = driver
        .call(
            "POST",
            &format!("{s}/element"),
            Some(json!({"using": "css selector", "value": "body"})),
        )
        .await
        .expect("the page's body");
    let element = body["element-6066-11e4-a52e-4f735466cecf"]
        .as_str()
        .expect("element reference");
    let text = driver
        .call("GET", &format!("{s}/element/{element}/text"), None)
        .await
        .expect("visible text");
    let text = text.as_str().expect("text").to_string();

    // What the page must say, from the JSON view of the same label.
    let doc = demo
        .server
        .http_get(RICE_BAG, &[("Accept", "application/json")])
        .await
        .expect("json")
        .json()
        .expect("json");
    for ukm in doc["ukmShares"].as_array().expect("ukm shares") {
        let name = ukm["name"].as_str().expect("name");
        assert!(text.contains(name), "the visible text names UKM {name}:\n{text}");
    }
    let mut verdicts = 0;
    for input in doc["inputs"].as_array().expect("inputs") {
        for i in input["inspections"].as_array().into_iter().flatten() {
            let phrase = match i["verdict"].as_str() {
                Some("conformant") => "memenuhi syarat",
                Some("non_conformant") => "tidak memenuhi syarat",
                _ => continue,
            };
            let line = format!("{} — {phrase}", i["standard"].as_str().expect("standard"));
            assert!(text.contains(&line), "the visible text shows {line:?}:\n{text}");
            verdicts += 1;
        }
    }
    assert!(verdicts >= 2, "the rice bag's inputs were inspected");
    assert!(text.contains("SNI 6128:2020 Premium — memenuhi syarat"), "{text}");
    assert!(text.contains("Beras Premium Sentra Demak 5 kg"));

    // Readable at 360 px: the page does not scroll sideways.
    let layout = driver
        .call(
            "POST",
            &format!("{s}/execute/sync"),
            Some(json!({
                "script": "return [document.documentElement.lang, document.documentElement.scrollWidth, window.innerWidth, document.title];",
                "args": [],
            })),
        )
        .await
        .expect("layout");
    assert_eq!(layout[0], "id");
    let (scroll, inner) = (layout[1].as_f64().unwrap_or(0.0), layout[2].as_f64().unwrap_or(0.0));
    assert_eq!(inner, 360.0, "a phone-sized viewport");
    assert!(scroll <= inner, "nothing wider than the screen: {scroll} > {inner}");

    let shot = driver
        .call("GET", &format!("{s}/screenshot"), None)
        .await
        .expect("screenshot");
    let png = base64(shot.as_str().expect("base64 screenshot")).expect("decode the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let file = dir.join("rice-bag-360px.png");
    // 360 CSS pixels at a pixel ratio of 2.
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    assert_eq!(width, 720, "the screenshot is of the phone's screen");
    std::fs::write(&file, &png).expect("save the screenshot");
    println!("screenshot saved to {}", file.display());
    let _ = driver.call("DELETE", &s, None).await;
}
