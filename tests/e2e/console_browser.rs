//! The console as an operator uses it, in headless Chromium at a tablet's
//! width: sign in by token, receive paddy by filling the form and pressing
//! its button, see a refusal next to its field, then lose the network,
//! record two receipts, get it back and see both recorded once. A
//! screenshot of each step goes to `target/tmp/screenshots/`.

use std::time::{Duration, Instant};

use jejak_proto::v1 as p;
use jejak_server::demo::ids::{
    DEMAK, FARMERS_TANIMAJU, PADDY, PADDY_INTAKE_STANDARD, PREMIUM_RICE_5KG, PREMIUM_RICE_GTIN, UKM_BERKAH,
};
use serde_json::{json, Value};

use crate::browser::{base64, find, Driver, INSTALL};
use crate::support::Demo;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Tab<'a> {
    driver: &'a Driver,
    session: String,
}

impl Tab<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.driver
            .call(method, &format!("{}{path}", self.session), body)
            .await
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e:#}"))
    }

    async fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url }))).await;
    }

    async fn element(&self, css: &str) -> String {
        let e = self
            .call("POST", "/element", Some(json!({"using": "css selector", "value": css})))
            .await;
        e[ELEMENT].as_str().expect("an element reference").to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.call("POST", &format!("/element/{e}/clear"), Some(json!({}))).await;
        self.call("POST", &format!("/element/{e}/value"), Some(json!({ "text": text })))
            .await;
    }

    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.call("POST", &format!("/element/{e}/click"), Some(json!({}))).await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", Some(json!({ "script": script, "args": [] })))
            .await
    }

    async fn text(&self) -> String {
        self.script("return document.body.innerText;")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until `script` returns true or a value other than false and
    /// null (a page after a click that navigates, the offline queue).
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        jejak_testkit::wait_until(Instant::now() + Duration::from_secs(30), || async {
            let v = self.script(script).await;
            Ok((v.as_bool() == Some(true) || (!v.is_null() && v.as_bool().is_none())).then_some(v))
        })
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:#}"))
    }

    async fn screenshot(&self, name: &str) {
        let shot = self.call("GET", "/screenshot", None).await;
        let png = base64(shot.as_str().expect("base64 screenshot")).expect("decode the screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        std::fs::write(dir.join(format!("console-{name}.png")), &png).expect("save the screenshot");
    }

    /// Fills the receive form for `lot` (of paddy from the Tani Maju farmers).
    async fn fill_receipt(&self, lot: &str, quantity: &str) {
        self.type_into("#lot_id", lot).await;
        self.click(&format!("#product_id option[value='{PADDY}']")).await;
        self.type_into("#quantity", quantity).await;
        self.click(&format!("#supplier_id option[value='{FARMERS_TANIMAJU}']"))
            .await;
        self.type_into("[id='origin.place']", "Desa Kendaldoyong").await;
    }
}

#[test]
fn an_operator_captures_on_a_tablet_online_and_offline() {
    // The whole walk is one large future, whose unoptimised poll needs
    // more stack than a default worker thread has.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(32 << 20)
        .enable_all()
        .build()
        .expect("a runtime");
    let walk = runtime.spawn(operator_walk());
    runtime.block_on(walk).expect("the walk");
}

async fn operator_walk() {
    let binary = find(&["chromium", "chromium-browser"]).unwrap_or_else(|| panic!("chromium is missing: {INSTALL}"));
    let demo = Demo::start().await;
    let token = demo
        .server
        .issue_token(p::AccessRole::Operator, &[DEMAK], "", Duration::from_secs(3600))
        .await
        .expect("an operator token");
    let driver = Driver::start().expect("start chromedriver");
    let session = driver
        .call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": binary,
                    // A tablet's screen: 800 CSS pixels wide.
                    "args": [
                        "--window-size=800,1280",
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                        format!("--user-data-dir={}", driver._profile.path().display()),
                    ],
                },
            }}})),
        )
        .await
        .expect("a browser session");
    let tab = Tab {
        driver: &driver,
        session: format!("/session/{}", session["sessionId"].as_str().expect("session id")),
    };
    let base = &demo.server.url;

    // Sign in by token.
    tab.open(&format!("{base}/console")).await;
    tab.wait_for("the sign-in page", "return document.getElementById('token') !== null;")
        .await;
    tab.screenshot("01-sign-in").await;
    tab.type_into("#token", &token).await;
    tab.click("form[action='/console/masuk'] button[type=submit]").await;
    tab.wait_for("signed in", "return document.querySelector('nav.stations') !== null;")
        .await;
    assert!(tab.text().await.contains("Terima bahan"), "{}", tab.text().await);
    tab.screenshot("02-stations").await;

    // Receive paddy by filling the form.
    tab.click("a[href='/console/terima']").await;
    tab.wait_for("the form", "return document.getElementById('lot_id') !== null;")
        .await;
    tab.fill_receipt("TAB-GKP-01", "1500").await;
    tab.click("form.capture button[type=submit]").await;
    tab.wait_for("recorded", "return document.querySelector('p.recorded') !== null;")
        .await;
    let text = tab.text().await;
    assert!(text.contains("Tercatat") && text.contains("TAB-GKP-01"), "{text}");
    tab.screenshot("03-received").await;

    // A second receipt, its inspection, and the two milled into one.
    tab.open(&format!("{base}/console/terima")).await;
    tab.wait_for("the form", "return document.getElementById('lot_id') !== null;")
        .await;
    tab.fill_receipt("TAB-GKP-05", "800").await;
    tab.click("form.capture button[type=submit]").await;
    tab.wait_for("recorded", "return document.querySelector('p.recorded') !== null;")
        .await;
    tab.open(&format!("{base}/console/periksa")).await;
    tab.click(&format!("#standard_id option[value='{PADDY_INTAKE_STANDARD}']"))
        .await;
    tab.click("form[action='/console/periksa'] button[type=submit]").await;
    tab.wait_for(
        "the parameters",
        "return document.getElementById('m.kadar_air') !== null;",
    )
    .await;
    tab.click("#lot_id option[value='TAB-GKP-01']").await;
    tab.type_into("[id='m.kadar_air']", "22.5").await;
    tab.type_into("[id='m.hampa_kotoran']", "6").await;
    tab.type_into("#inspector", "Bu Siti").await;
    tab.click("form.capture button[type=submit]").await;
    tab.wait_for("the verdict", "return document.querySelector('dd.verdict') !== null;")
        .await;
    // Both readings within the standard's limits: conformant (a page that
    // said "tidak memenuhi syarat" contains the words too).
    let verdict = tab
        .script("return document.querySelector('dd.verdict').innerText.trim();")
        .await;
    assert_eq!(verdict.as_str(), Some("memenuhi syarat"), "{}", tab.text().await);
    tab.screenshot("03b-inspected").await;

    let mill = |first: &'static str| {
        let tab = &tab;
        let base = base.clone();
        async move {
            tab.open(&format!("{base}/console/olah")).await;
            tab.wait_for("the form", "return document.getElementById('process_step') !== null;")
                .await;
            tab.type_into("#process_step", "giling").await;
            tab.click("[id='inputs[0].lot_id'] option[value='TAB-GKP-01']").await;
            tab.type_into("[id='inputs[0].quantity']", first).await;
            tab.click("[id='inputs[1].lot_id'] option[value='TAB-GKP-05']").await;
            tab.type_into("[id='inputs[1].quantity']", "800").await;
            tab.type_into("[id='outputs[0].lot_id']", "TAB-BP-01").await;
            tab.click(&format!(
                "[id='outputs[0].product_id'] option[value='{PREMIUM_RICE_5KG}']"
            ))
            .await;
            tab.type_into("[id='outputs[0].quantity']", "1400").await;
            tab.click(&format!("[id='outputs[0].owner_id'] option[value='{UKM_BERKAH}']"))
                .await;
            tab.click("form.capture button[type=submit]").await;
        }
    };
    Box::pin(mill("2000")).await;
    tab.wait_for("refused", "return document.querySelector('.field.refused') !== null;")
        .await;
    let next_to = tab
        .script("const e = document.querySelector('.field.refused'); return e ? e.innerText : null;")
        .await;
    assert!(
        next_to
            .as_str()
            .is_some_and(|t| t.contains("Lot TAB-GKP-01 tinggal 1500 kg; tidak bisa memakai 2000 kg")),
        "{next_to}"
    );
    tab.screenshot("03c-mass-balance").await;
    Box::pin(mill("1500")).await;
    tab.wait_for("milled", "return document.querySelector('p.recorded') !== null;")
        .await;

    // Packed into 5 kg bags, and the label sheet downloaded.
    tab.open(&format!("{base}/console/kemas")).await;
    tab.wait_for("the form", "return document.getElementById('count') !== null;")
        .await;
    tab.click("#lot_id option[value='TAB-BP-01']").await;
    tab.click(&format!("#gtin option[value='{PREMIUM_RICE_GTIN}']")).await;
    tab.type_into("#count", "10").await;
    tab.type_into("#quantity", "5").await;
    tab.type_into("#serial_prefix", "TAB5P-").await;
    tab.click("form.capture button[type=submit]").await;
    tab.wait_for("packed", "return document.querySelector('a.button') !== null;")
        .await;
    tab.screenshot("03d-packed").await;
    let pdf = tab
        .call(
            "POST",
            "/execute/async",
            Some(json!({
                "script": "const done = arguments[arguments.length - 1]; fetch(document.querySelector('a.button').href).then(r => r.arrayBuffer()).then(b => { const a = new Uint8Array(b); done([a.length, String.fromCharCode(...a.slice(0, 5))]); }).catch(e => done(String(e)));",
                "args": [],
            })),
        )
        .await;
    assert_eq!(pdf[1], "%PDF-", "{pdf}");
    assert!(pdf[0].as_u64().is_some_and(|n| n > 1000), "{pdf}");

    // A post without the session's CSRF token is refused and writes nothing.
    let before_forged = demo.position().await;
    let forged = tab
        .call(
            "POST",
            "/execute/async",
            Some(json!({
                "script": "const done = arguments[arguments.length - 1]; fetch('/console/status', {method: 'POST', body: new URLSearchParams({facility_id: 'fac-demak', lot_id: 'TAB-BP-01', status: 'LOT_STATUS_RECALLED', reason: 'x', command_id: 'forged'})}).then(r => done(r.status)).catch(e => done(String(e)));",
                "args": [],
            })),
        )
        .await;
    assert_eq!(forged, 403);
    assert_eq!(demo.position().await, before_forged);

    // A refusal is shown next to its field, with what was typed kept.
    tab.open(&format!("{base}/console/terima")).await;
    tab.wait_for("the form", "return document.getElementById('lot_id') !== null;")
        .await;
    tab.fill_receipt("TAB-GKP-02", "0").await;
    tab.click("form.capture button[type=submit]").await;
    tab.wait_for("refused", "return document.querySelector('.field.refused') !== null;")
        .await;
    let next_to = tab
        .script("const e = document.querySelector('.field.refused'); return e ? e.innerText : null;")
        .await;
    assert!(
        next_to
            .as_str()
            .is_some_and(|t| t.contains("Jumlah") && t.contains("Isian ini tidak benar")),
        "{next_to}: {}",
        tab.script("return document.querySelector('main').innerHTML;").await
    );
    let kept = tab.script("return document.getElementById('lot_id').value;").await;
    assert_eq!(kept, "TAB-GKP-02");
    tab.screenshot("04-refused").await;

    // Offline: two receipts wait in the browser, then are sent once each.
    tab.open(&format!("{base}/console/terima")).await;
    tab.wait_for("the form", "return document.getElementById('lot_id') !== null;")
        .await;
    tab.wait_for(
        "the service worker controls the page",
        "return navigator.serviceWorker && navigator.serviceWorker.controller !== null;",
    )
    .await;
    let before = demo.position().await;
    tab.call(
        "POST",
        "/chromium/network_conditions",
        Some(json!({"network_conditions": {"offline": true, "latency": 0, "download_throughput": -1, "upload_throughput": -1}})),
    )
    .await;
    tab.wait_for("the page knows it is offline", "return navigator.onLine === false;")
        .await;
    for (lot, quantity) in [("TAB-GKP-03", "700"), ("TAB-GKP-04", "700"), ("TAB-GKP-06", "0")] {
        tab.fill_receipt(lot, quantity).await;
        tab.click("form.capture button[type=submit]").await;
    }
    let pending = tab
        .wait_for(
            "three captures pending",
            "const l = document.querySelectorAll('#pending-list li'); return l.length === 3 ? l.length : false;",
        )
        .await;
    assert_eq!(pending, 3);
    assert!(tab.text().await.contains("Menunggu jaringan"));
    assert_eq!(
        demo.position().await,
        before,
        "nothing reached the server while offline"
    );
    tab.screenshot("05-offline-pending").await;

    tab.call(
        "POST",
        "/chromium/network_conditions",
        Some(json!({"network_conditions": {"offline": false, "latency": 0, "download_throughput": -1, "upload_throughput": -1}})),
    )
    .await;
    tab.script("window.dispatchEvent(new Event('online')); return true;")
        .await;
    // The two good ones are sent and leave the list; the bad one stays,
    // with the reason it was refused.
    let refused = tab
        .wait_for(
            "only the refused capture is left",
            "const l = document.querySelectorAll('#pending-list li'); return l.length === 1 && l[0].classList.contains('refused') ? l[0].innerText : false;",
        )
        .await;
    assert!(
        refused
            .as_str()
            .is_some_and(|t| t.contains("TAB-GKP-06") && t.contains("Isian ini tidak benar")),
        "{refused}"
    );
    tab.screenshot("06-back-online").await;
    let mut trace = demo.server.trace().await.expect("a trace client");
    for lot in ["TAB-GKP-03", "TAB-GKP-04"] {
        let l = trace
            .get_lot(p::GetLotRequest { lot_id: lot.into() })
            .await
            .unwrap_or_else(|e| panic!("{lot} was recorded: {e}"))
            .into_inner();
        assert_eq!(l.quantity.expect("a quantity").value, "700");
    }
    assert_eq!(demo.position().await, before + 2, "each recorded once");

    // A capture whose answer was lost stays queued; voided meanwhile, it is
    // answered naming its void when sent again, and stays listed with that
    // instead of leaving the list as recorded.
    tab.open(&format!("{base}/console/terima")).await;
    tab.wait_for("the form", "return document.getElementById('lot_id') !== null;")
        .await;
    tab.fill_receipt("TAB-GKP-07", "700").await;
    tab.script(
        "const f = document.querySelector('form.capture'); \
         f.querySelector('input[name=command_id]').value = 'tab-lost-07'; \
         localStorage.setItem('tab-lost-07', new URLSearchParams(new FormData(f)).toString()); return true;",
    )
    .await;
    tab.click("form.capture button[type=submit]").await;
    tab.wait_for("recorded", "return document.querySelector('p.recorded') !== null;")
        .await;
    demo.server
        .capture()
        .await
        .expect("a capture client")
        .void_event(p::VoidEventRequest {
            command_id: "tab-lost-07-void".into(),
            facility_id: DEMAK.into(),
            event_id: "tab-lost-07".into(),
            reason: "timbangan salah".into(),
            ..Default::default()
        })
        .await
        .expect("void the receipt");
    let after_void = demo.position().await;
    tab.open(&format!("{base}/console/terima")).await;
    tab.wait_for("the form", "return document.getElementById('lot_id') !== null;")
        .await;
    tab.script(
        "localStorage.setItem('jejak-console-queue', JSON.stringify([{ id: 'tab-lost-07', \
         action: location.origin + '/console/terima', body: localStorage.getItem('tab-lost-07'), \
         label: 'Terima TAB-GKP-07' }])); window.dispatchEvent(new Event('online')); return true;",
    )
    .await;
    let voided = tab
        .wait_for(
            "the voided capture listed with its void",
            "const li = document.querySelector('#pending-list li[data-command-id=\"tab-lost-07\"].refused'); return li ? li.innerText : false;",
        )
        .await;
    assert!(
        voided
            .as_str()
            .is_some_and(|t| t.contains("TAB-GKP-07") && t.contains("dibatalkan oleh tab-lost-07-void")),
        "{voided}"
    );
    assert_eq!(demo.position().await, after_void, "nothing written by the retry");

    // A member's session reads but cannot open a capture form.
    let member = demo
        .server
        .issue_token(p::AccessRole::Member, &[], UKM_BERKAH, Duration::from_secs(3600))
        .await
        .expect("a member token");
    tab.click("form[action='/console/keluar'] button[type=submit]").await;
    tab.wait_for("signed out", "return document.getElementById('token') !== null;")
        .await;
    tab.type_into("#token", &member).await;
    tab.click("form[action='/console/masuk'] button[type=submit]").await;
    tab.wait_for("signed in", "return document.querySelector('p.who') !== null;")
        .await;
    assert!(
        tab.script("return document.querySelector('nav.stations') === null;")
            .await
            == true,
        "no capture station for a member"
    );
    tab.open(&format!("{base}/console/terima")).await;
    tab.wait_for("refused", "return document.querySelector('p.refusal') !== null;")
        .await;
    assert!(tab.text().await.contains("hanya boleh membaca"), "{}", tab.text().await);
    assert!(
        tab.script("return document.getElementById('lot_id') === null;").await == true,
        "no capture form for a member"
    );
    tab.screenshot("07-member").await;
    let _ = driver.call("DELETE", &tab.session, None).await;
}
