//! The operator console over HTTP as a browser speaks to it: sign-in by
//! token, a session cookie, CSRF tokens on every form, the security
//! headers, captures through the same checks as the API, refusals next to
//! their field with what was typed kept, and sessions that end with their
//! token.

use std::time::Duration;

use jejak_proto::v1 as p;
use jejak_server::demo::ids::{
    DEMAK, DRIED_PADDY, FARMERS_TANIMAJU, PADDY, PADDY_INTAKE_STANDARD, PREMIUM_RICE_5KG, PREMIUM_RICE_GTIN,
    RICE_BUYER, UKM_BERKAH,
};
use jejak_testkit::{http_request, HttpReply, Server};

use crate::support::Demo;

/// A browser's side of one console session.
struct Browser<'a> {
    server: &'a Server,
    cookie: Option<String>,
}

fn form_body(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

/// The value of a hidden input named `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in the page:\n{page}"))
        + marker.len();
    page[start..].split('"').next().unwrap_or_default().to_string()
}

impl Browser<'_> {
    fn headers(&self) -> Vec<(&str, String)> {
        let mut h = Vec::new();
        if let Some(c) = &self.cookie {
            h.push(("cookie", format!("jejak_console={c}")));
        }
        h
    }

    async fn get(&self, path: &str) -> HttpReply {
        let h = self.headers();
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http_request(self.server.authority(), "GET", path, &h, b"")
            .await
            .expect("GET")
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> HttpReply {
        let mut h = self.headers();
        h.push(("content-type", "application/x-www-form-urlencoded".into()));
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http_request(self.server.authority(), "POST", path, &h, &form_body(fields))
            .await
            .expect("POST")
    }

    /// `post` as the offline queue sends it, asking for JSON.
    async fn post_json(&self, path: &str, fields: &[(&str, &str)]) -> HttpReply {
        let mut h = self.headers();
        h.push(("content-type", "application/x-www-form-urlencoded".into()));
        h.push(("accept", "application/json".into()));
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http_request(self.server.authority(), "POST", path, &h, &form_body(fields))
            .await
            .expect("POST")
    }

    async fn sign_in(&mut self, token: &str) -> HttpReply {
        let r = self.post("/console/masuk", &[("token", token), ("lang", "id")]).await;
        if let Some(set) = r.header("set-cookie") {
            let value = set
                .trim_start_matches("jejak_console=")
                .split(';')
                .next()
                .unwrap_or_default();
            self.cookie = Some(value.to_string());
        }
        r
    }
}

fn assert_secured(r: &HttpReply) {
    let csp = r.header("content-security-policy").expect("a content security policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
}

fn receipt<'a>(csrf: &'a str, command: &'a str, lot: &'a str, quantity: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("command_id", command),
        ("facility_id", DEMAK),
        ("lot_id", lot),
        ("product_id", PADDY),
        ("quantity", quantity),
        ("unit", "UNIT_KG"),
        ("owner_id", UKM_BERKAH),
        ("supplier_id", FARMERS_TANIMAJU),
        ("origin.place", "Desa Wonosalam <b>"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_receives_paddy_and_is_refused_next_to_the_field() {
    let demo = Demo::start().await;
    let operator = demo
        .server
        .issue_token(p::AccessRole::Operator, &[DEMAK], "", Duration::from_secs(3600))
        .await
        .expect("an operator token");
    let mut browser = Browser {
        server: &demo.server,
        cookie: None,
    };

    // Signed out: the sign-in page, in Bahasa Indonesia, secured, small.
    let page = browser.get("/console").await;
    assert_eq!(page.status, 200);
    assert_secured(&page);
    assert!(page.text().contains("Token akses"), "{}", page.text());
    assert!(page.body.len() < 50 * 1024);
    // A wrong token: refused, no session.
    let r = browser.sign_in("tk0000000000000000.notasecret").await;
    assert_eq!(r.status, 401);
    assert!(browser.cookie.is_none());

    let r = browser.sign_in(&operator).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = r.header("set-cookie").expect("a session cookie").to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let form = browser.get("/console/terima").await;
    assert_eq!(form.status, 200, "{}", form.text());
    assert_secured(&form);
    assert!(form.body.len() < 50 * 1024, "{} bytes", form.body.len());
    let page = form.text();
    let csrf = hidden(&page, "csrf");
    let command = hidden(&page, "command_id");

    // A post without the session's CSRF token: 403, nothing written.
    let before = demo.position().await;
    let r = browser
        .post("/console/terima", &receipt("forged", &command, "CNS-GKP-01", "1200"))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(demo.position().await, before, "a forged post writes nothing");

    // A receipt the rules refuse: the form again, the refusal next to its
    // field in Bahasa Indonesia, what was typed kept (and escaped).
    let r = browser
        .post("/console/terima", &receipt(&csrf, &command, "CNS-GKP-01", "-5"))
        .await;
    assert_eq!(r.status, 422);
    let page = r.text();
    assert!(page.contains("Isian ini tidak benar"), "{page}");
    assert!(page.contains("aria-invalid=\"true\""), "{page}");
    assert!(page.contains("value=\"-5\""), "what was typed is kept: {page}");
    assert!(page.contains("Desa Wonosalam &lt;b&gt;"), "escaped: {page}");
    assert!(!page.contains("Desa Wonosalam <b>"));
    assert_eq!(demo.position().await, before, "a refused receipt writes nothing");

    // Recorded: the lot's page. The same form posted again is a replay.
    let r = browser
        .post("/console/terima", &receipt(&csrf, &command, "CNS-GKP-01", "1200"))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let to = r.header("location").expect("to the lot").to_string();
    assert!(to.starts_with("/console/lot/CNS-GKP-01"), "{to}");
    let lot = browser.get(&to).await;
    assert!(lot.text().contains("Tercatat"), "{}", lot.text());
    assert!(lot.text().contains("1200 kg"), "{}", lot.text());
    let after = demo.position().await;
    assert_eq!(after, before + 1);
    let r = browser
        .post("/console/terima", &receipt(&csrf, &command, "CNS-GKP-01", "1200"))
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(demo.position().await, after, "the same command id is recorded once");
    let mut trace = demo.server.trace().await.expect("a trace client");
    let lot = trace
        .get_lot(p::GetLotRequest {
            lot_id: "CNS-GKP-01".into(),
        })
        .await
        .expect("the lot")
        .into_inner();
    assert_eq!(lot.quantity.expect("a quantity").value, "1200");

    // Milling two lots into one; more than a lot has left is refused next
    // to that input, in the clerk's words.
    let r = browser
        .post("/console/terima", &receipt(&csrf, "cns-second", "CNS-GKP-02", "800"))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let form = browser.get("/console/olah").await;
    assert_eq!(form.status, 200);
    assert!(
        form.text().contains("CNS-GKP-01 — prd-dmk-gkp, sisa 1200 kg"),
        "{}",
        form.text()
    );
    let milling = |first: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("command_id", format!("cns-mill-{first}")),
            ("facility_id", DEMAK.to_string()),
            ("process_step", "pengeringan".to_string()),
            ("line", "dryer-1".to_string()),
            ("inputs[0].lot_id", "CNS-GKP-01".to_string()),
            ("inputs[0].quantity", first.to_string()),
            ("inputs[0].unit", "UNIT_KG".to_string()),
            ("inputs[1].lot_id", "CNS-GKP-02".to_string()),
            ("inputs[1].quantity", "800".to_string()),
            ("inputs[1].unit", "UNIT_KG".to_string()),
            ("outputs[0].lot_id", "CNS-GKG-01".to_string()),
            ("outputs[0].product_id", DRIED_PADDY.to_string()),
            ("outputs[0].quantity", "1500".to_string()),
            ("outputs[0].unit", "UNIT_KG".to_string()),
            // A by-product of its own.
            ("outputs[1].lot_id", "CNS-BKT-01".to_string()),
            ("outputs[1].product_id", "prd-dmk-bekatul".to_string()),
            ("outputs[1].quantity", "200".to_string()),
            ("outputs[1].unit", "UNIT_KG".to_string()),
        ]
    };
    let too_much = milling("1500");
    let too_much: Vec<(&str, &str)> = too_much.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let before_mill = demo.position().await;
    let r = browser.post("/console/olah", &too_much).await;
    assert_eq!(r.status, 422);
    let page = r.text();
    assert!(
        page.contains("Lot CNS-GKP-01 tinggal 1200 kg; tidak bisa memakai 1500 kg"),
        "{page}"
    );
    let quantity_field = page.split("<div class=\"field refused\">").nth(1).unwrap_or_default();
    assert!(
        quantity_field.contains("name=\"inputs[0].quantity\""),
        "next to the first input: {page}"
    );
    assert_eq!(demo.position().await, before_mill, "a refused milling writes nothing");
    let right = milling("1000");
    let right: Vec<(&str, &str)> = right.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = browser.post("/console/olah", &right).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/console/lot/CNS-GKG-01?dicatat=1"));
    let page = browser.get("/console/lot/CNS-GKG-01").await.text();
    for part in [
        "Dibuat dari",
        "/console/lot/CNS-GKP-01",
        "/console/lot/CNS-GKP-02",
        "Asal-usul (UKM)",
    ] {
        assert!(page.contains(part), "the lot page shows {part}: {page}");
    }
    assert!(!page.contains("style="), "no inline style (the CSP allows none)");
    let bran = browser.get("/console/lot/CNS-BKT-01").await.text();
    assert!(
        bran.contains("Dibuat dari") && bran.contains("/console/lot/CNS-GKP-02"),
        "{bran}"
    );

    // Inspecting: the standard's parameters with their limits; the verdict
    // on the lot's page as soon as it is recorded.
    let form = browser
        .get(&format!("/console/periksa?standard_id={PADDY_INTAKE_STANDARD}"))
        .await;
    assert!(form.text().contains("Kadar air (≤ 25 %)"), "{}", form.text());
    let r = browser
        .post(
            "/console/periksa",
            &[
                ("csrf", &csrf),
                ("command_id", "cns-inspect"),
                ("standard_id", PADDY_INTAKE_STANDARD),
                ("facility_id", DEMAK),
                ("lot_id", "CNS-GKP-01"),
                ("m.kadar_air", "27.5"),
                ("m.hampa_kotoran", "4"),
                ("inspector", "Bu Siti"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let lot = browser.get("/console/lot/CNS-GKP-01").await;
    assert!(lot.text().contains("tidak memenuhi syarat"), "{}", lot.text());

    // Shipping the dried paddy with its due diligence statement.
    let r = browser
        .post(
            "/console/kirim",
            &[
                ("csrf", &csrf),
                ("command_id", "cns-ship"),
                ("facility_id", DEMAK),
                ("lot_id", "CNS-GKG-01"),
                ("quantity", "300"),
                ("unit", "UNIT_KG"),
                ("consignee_id", RICE_BUYER),
                ("document", "SJ-CNS-01"),
                ("dds_reference", "26IDCNS0001"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let shipped = trace
        .get_lot(p::GetLotRequest {
            lot_id: "CNS-GKG-01".into(),
        })
        .await
        .expect("the lot")
        .into_inner();
    assert_eq!(shipped.shipments[0].dds_reference, "26IDCNS0001");

    // Packing: serials made from a prefix, and the label sheet as a PDF.
    let mut rice = receipt(&csrf, "cns-rice", "CNS-BP-01", "100");
    rice[4] = ("product_id", PREMIUM_RICE_5KG);
    let r = browser.post("/console/terima", &rice).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = browser
        .post(
            "/console/kemas",
            &[
                ("csrf", &csrf),
                ("command_id", "cns-pack"),
                ("facility_id", DEMAK),
                ("lot_id", "CNS-BP-01"),
                ("gtin", PREMIUM_RICE_GTIN),
                ("count", "4"),
                ("quantity", "5"),
                ("unit", "UNIT_KG"),
                ("serial_prefix", "CNS5P-"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let page = browser.get("/console/lot/CNS-BP-01").await;
    assert!(
        page.text().contains("/console/lot/CNS-BP-01/label.pdf"),
        "{}",
        page.text()
    );
    let packed = trace
        .get_lot(p::GetLotRequest {
            lot_id: "CNS-BP-01".into(),
        })
        .await
        .expect("the lot")
        .into_inner();
    let serials: Vec<&str> = packed.packages.iter().map(|pk| pk.serial.as_str()).collect();
    assert_eq!(
        serials,
        ["CNS5P-000001", "CNS5P-000002", "CNS5P-000003", "CNS5P-000004"]
    );
    let r = browser.get("/console/cari?q=CNS5P-000003").await;
    assert_eq!(
        r.header("location"),
        Some("/console/lot/CNS-BP-01"),
        "found by a package's serial"
    );
    let pdf = browser.get("/console/lot/CNS-BP-01/label.pdf").await;
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    assert!(pdf.body.starts_with(b"%PDF-"), "a PDF");

    // Voiding the inspection with a reason: the lot's history shows it voided.
    let r = browser
        .post(
            "/console/batal",
            &[
                ("csrf", &csrf),
                ("command_id", "cns-void"),
                ("facility_id", DEMAK),
                ("lot_id", "CNS-GKP-01"),
                ("event_id", "cns-inspect"),
                ("reason", "alat ukur kadar air belum dikalibrasi"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let page = browser.get("/console/lot/CNS-GKP-01").await.text();
    assert!(page.contains("cns-inspect · dibatalkan"), "{page}");

    // A spreadsheet uploaded: a bad row writes nothing and is named by
    // line; a good file is recorded.
    let header = "command_id,facility_id,lot_id,product_id,quantity,unit,owner_id,supplier_id\n";
    let bad = format!(
        "{header}cns-csv-1,{DEMAK},CNS-CSV-1,{PADDY},100,kg,{UKM_BERKAH},{FARMERS_TANIMAJU}\ncns-csv-2,{DEMAK},CNS-CSV-2,{PADDY},sacks,kg,{UKM_BERKAH},{FARMERS_TANIMAJU}\n"
    );
    let before_csv = demo.position().await;
    let r = browser.post("/console/impor", &[("csrf", &csrf), ("csv", &bad)]).await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("Baris 3"), "{}", r.text());
    assert!(r.text().contains("Tidak ada yang dicatat"), "{}", r.text());
    assert_eq!(demo.position().await, before_csv);
    let good = bad.replace("sacks", "200");
    let r = browser.post("/console/impor", &[("csrf", &csrf), ("csv", &good)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("2 baris tercatat"), "{}", r.text());
    assert_eq!(demo.position().await, before_csv + 2);
    // One of its rows voided, the same file again: that row is named as
    // recorded before and voided since (it does not stand), not counted
    // among the rows recorded before; nothing is written.
    let r = browser
        .post(
            "/console/batal",
            &[
                ("csrf", &csrf),
                ("command_id", "cns-csv-1-void"),
                ("facility_id", DEMAK),
                ("lot_id", "CNS-CSV-1"),
                ("event_id", "cns-csv-1"),
                ("reason", "salah ketik"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let after_void = demo.position().await;
    let r = browser.post("/console/impor", &[("csrf", &csrf), ("csv", &good)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let page = r.text();
    assert!(
        page.contains("Baris 2: cns-csv-1 sudah tercatat sebelumnya lalu dibatalkan oleh cns-csv-1-void"),
        "{page}"
    );
    assert!(page.contains("0 baris tercatat, 1 sudah tercatat sebelumnya"), "{page}");
    assert_eq!(demo.position().await, after_void);
    // A form sent again after its record was voided: not "recorded" but
    // said not to stand, naming the void; nothing written.
    let again = receipt(&csrf, "cns-again", "CNS-AGAIN-01", "10");
    let r = browser.post("/console/terima", &again).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = browser
        .post(
            "/console/batal",
            &[
                ("csrf", &csrf),
                ("command_id", "cns-again-void"),
                ("facility_id", DEMAK),
                ("lot_id", "CNS-AGAIN-01"),
                ("event_id", "cns-again"),
                ("reason", "timbangan salah"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let after_void = demo.position().await;
    let r = browser.post("/console/terima", &again).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let to = r.header("location").expect("to the lot").to_string();
    assert_eq!(to, "/console/lot/CNS-AGAIN-01?dibatalkan=cns-again-void");
    let page = browser.get(&to).await.text();
    assert!(
        page.contains("sudah tercatat sebelumnya lalu dibatalkan oleh cns-again-void, jadi tidak berlaku"),
        "{page}"
    );
    assert!(!page.contains("Tercatat."), "{page}");
    // The same, as the offline queue asks: recorded, naming the void, with
    // the sentence the tablet lists it with.
    let r = browser.post_json("/console/terima", &again).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json().expect("a JSON answer");
    assert_eq!(
        (&answer["recorded"], &answer["replayed"], &answer["voidedBy"]),
        (
            &serde_json::json!(true),
            &serde_json::json!(true),
            &serde_json::json!("cns-again-void")
        ),
        "{answer}"
    );
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("dibatalkan oleh cns-again-void, jadi tidak berlaku")),
        "{answer}"
    );
    assert_eq!(demo.position().await, after_void);

    // At a facility of another operator: refused next to the facility.
    let mut other = receipt(&csrf, "cns-other", "CNS-TGL-01", "10");
    other[2] = ("facility_id", "fac-tegal");
    let r = browser.post("/console/terima", &other).await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("aria-invalid=\"true\""), "{}", r.text());

    // A receipt with its delivery note's photo: the record keeps the
    // photo's blake3; a document without one is refused next to it.
    let photo = b"\x89PNG delivery note NT-CNS-9 photographed";
    let photo_b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(photo)
    };
    let mut with_doc = receipt(&csrf, "cns-doc", "CNS-DOC-01", "50");
    with_doc.extend([
        ("doc0.kind", "delivery-note"),
        ("doc0.reference", "NT-CNS-9"),
        ("doc0.issuer", "Gapoktan Tani Maju"),
        ("doc0.valid_until", "2027-01-31"),
    ]);
    let r = browser.post("/console/terima", &with_doc).await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("Lampirkan foto"), "{}", r.text());
    with_doc.push(("doc0.file", &photo_b64));
    let r = browser.post("/console/terima", &with_doc).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let doc_lot = trace
        .get_lot(p::GetLotRequest {
            lot_id: "CNS-DOC-01".into(),
        })
        .await
        .expect("the lot")
        .into_inner();
    assert_eq!(doc_lot.documents.len(), 1);
    assert_eq!(doc_lot.documents[0].blake3, blake3::hash(photo).to_hex().to_string());
    assert_eq!(doc_lot.documents[0].issuer, "Gapoktan Tani Maju");

    // A rule's refusal goes next to the field it concerns, in Bahasa
    // Indonesia: a farmer group cannot own a lot.
    let mut wrong_owner = receipt(&csrf, "cns-owner", "CNS-OWN-01", "10");
    wrong_owner[7] = ("owner_id", FARMERS_TANIMAJU);
    let r = browser.post("/console/terima", &wrong_owner).await;
    assert_eq!(r.status, 422);
    let page = r.text();
    let owner_field = page.split("<div class=\"field refused\">").nth(1).unwrap_or_default();
    assert!(
        owner_field.contains("name=\"owner_id\"")
            && owner_field.contains("Pihak ini tidak punya peran yang diperlukan."),
        "{page}"
    );

    // Search finds the lot; a label's Digital Link finds its lot too.
    let r = browser.get("/console/cari?q=CNS-GKP-01").await;
    assert_eq!(r.header("location"), Some("/console/lot/CNS-GKP-01"));

    // English on request.
    let r = browser
        .post("/console/bahasa", &[("csrf", &csrf), ("lang", "en")])
        .await;
    assert_eq!(r.status, 303);
    assert!(browser.get("/console").await.text().contains("Receive material"));

    // Signing out ends the session.
    let r = browser.post("/console/keluar", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    assert!(browser.get("/console/terima").await.header("location") == Some("/console"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_reads_but_may_not_capture_and_a_revoked_token_ends_its_session() {
    let demo = Demo::start().await;
    let member = demo
        .server
        .issue_token(p::AccessRole::Member, &[], UKM_BERKAH, Duration::from_secs(3600))
        .await
        .expect("a member token");
    let mut browser = Browser {
        server: &demo.server,
        cookie: None,
    };
    assert_eq!(browser.sign_in(&member).await.status, 303);
    let home = browser.get("/console").await;
    assert!(
        !home.text().contains("/console/terima"),
        "no capture station: {}",
        home.text()
    );
    let r = browser.get("/console/terima").await;
    assert_eq!(r.status, 403, "{}", r.text());
    let csrf = hidden(&home.text(), "csrf");
    let before = demo.position().await;
    let r = browser
        .post("/console/terima", &receipt(&csrf, "member-receipt", "CNS-M-01", "10"))
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(demo.position().await, before, "a member's capture writes nothing");

    // Revoked: the session ends with its token.
    let id = jejak_domain::access::claimed_id(&member)
        .expect("a token id")
        .to_string();
    demo.server
        .admin()
        .await
        .expect("an admin client")
        .revoke_token(p::RevokeTokenRequest {
            command_id: "revoke-member".into(),
            token_id: id,
            reason: "test".into(),
        })
        .await
        .expect("revoked");
    let r = browser.get("/console").await;
    assert!(r.text().contains("Token akses"), "signed out: {}", r.text());
}

/// The QR code `jejak token create --qr` prints, read back from its block
/// characters (each cell: an upper and a lower module; light is a block).
fn decode_terminal_qr(text: &str) -> String {
    let rows: Vec<Vec<char>> = text
        .lines()
        .filter(|l| !l.is_empty() && l.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' ')))
        .map(|l| l.chars().collect())
        .collect();
    assert!(!rows.is_empty(), "no QR code in:\n{text}");
    let (scale, w, h) = (6usize, rows[0].len(), rows.len() * 2);
    let dark = |x: usize, y: usize| -> bool {
        let c = rows[y / 2][x];
        matches!((c, y % 2), (' ', _) | ('▄', 0) | ('▀', 1))
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w * scale, h * scale, |x, y| {
        if dark(x / scale, y / scale) {
            0
        } else {
            255
        }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().expect("decode the QR code").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_printed_as_a_qr_code_signs_in_to_the_console() {
    let demo = Demo::start().await;
    let admin = demo.server.admin_token.clone().expect("an admin token");
    let (status, out, err) = jejak_testkit::run_cli(&[
        "token",
        "create",
        "--role",
        "operator",
        "--facility",
        DEMAK,
        "--qr",
        "--server",
        &demo.server.url,
        "--token",
        &admin,
    ])
    .expect("run jejak token create");
    assert!(status.success(), "{err}");
    let token = out.lines().next().expect("the token").trim().to_string();
    assert_eq!(decode_terminal_qr(&out), token, "the QR code is the token");
    let mut browser = Browser {
        server: &demo.server,
        cookie: None,
    };
    assert_eq!(browser.sign_in(&token).await.status, 303);
    assert!(browser.get("/console").await.text().contains("Terima bahan"));
}
