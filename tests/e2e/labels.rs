//! Label images and sheets: the QR code served at `/labels/...` decodes
//! back to the label's URI, which resolves; `jejak labels` writes a sheet
//! with one label per packed unit.

use jejak_server::demo::ids::{RICE_BAG_LOT, RICE_BAG_SERIAL};
use jejak_testkit::{Server, ServerOptions};

use crate::resolver::RICE_BAG;
use crate::support::Demo;

/// Decodes the single QR code in a PNG image.
fn decode_qr(png_bytes: &[u8]) -> String {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let luma = |x: usize, y: usize| -> u8 {
        let i = (y * w + x) * channels;
        match channels {
            1 | 2 => buf[i],
            _ => ((u32::from(buf[i]) * 299 + u32::from(buf[i + 1]) * 587 + u32::from(buf[i + 2]) * 114) / 1000) as u8,
        }
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, luma);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    let (meta, content) = grids[0].decode().expect("decode the QR code");
    // Level M or better survives a scuffed label. The format bits number
    // the levels L=1, M=0, Q=3, H=2.
    assert!(
        matches!(meta.ecc_level, 0 | 2 | 3),
        "error correction M, Q or H, not {}",
        meta.ecc_level
    );
    content
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_png_decodes_to_its_uri_which_resolves() {
    let demo = Demo::start().await;
    let png = demo
        .server
        .http_get(&format!("/labels{RICE_BAG}?format=png&size=4"), &[])
        .await
        .expect("label png");
    assert_eq!(png.status, 200, "{}", png.text());
    assert_eq!(png.header("content-type"), Some("image/png"));
    let uri = decode_qr(&png.body);
    assert_eq!(uri, format!("{}{RICE_BAG}", demo.server.url));
    let path = uri.strip_prefix(&demo.server.url).expect("on this server");
    let page = demo
        .server
        .http_get(path, &[("Accept", "application/json")])
        .await
        .expect("resolve");
    assert_eq!(page.status, 200);
    assert_eq!(page.json().expect("json")["serial"], RICE_BAG_SERIAL);

    // Accept: image/png picks PNG too; SVG by default, with the GS1 text.
    let by_accept = demo
        .server
        .http_get(&format!("/labels{RICE_BAG}"), &[("Accept", "image/png")])
        .await
        .expect("png by accept");
    assert_eq!(by_accept.header("content-type"), Some("image/png"));
    let refused_png = demo
        .server
        .http_get(
            &format!("/labels{RICE_BAG}"),
            &[("Accept", "image/png;q=0, image/svg+xml")],
        )
        .await
        .expect("svg by accept");
    assert_eq!(refused_png.header("content-type"), Some("image/svg+xml"));
    let svg = demo
        .server
        .http_get(&format!("/labels{RICE_BAG}"), &[])
        .await
        .expect("label svg");
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    let svg = svg.text();
    for hri in ["(01) 08997001001018", "(10) DMK-BP-260911", "(21) DMK5P-000001"] {
        assert!(svg.contains(hri), "the label reads {hri}");
    }
    assert!(svg.contains("Beras Premium Sentra Demak 5 kg"));

    for (path, status) in [
        ("/labels/01/08997001001018/10/NO-SUCH-LOT?format=png", 404),
        ("/labels/01/08997001001019/10/DMK-BP-260911", 400),
        ("/labels/01/08997001001018/10/DMK-BP-260911?format=gif", 400),
        ("/labels/01/08997001001018/10/DMK-BP-260911?format=png&size=999", 400),
    ] {
        let r = demo.server.http_get(path, &[]).await.expect("label");
        assert_eq!(r.status, status, "{path}: {}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_carry_the_configured_base_and_its_path_prefix_resolves() {
    const BASE: &str = "https://id.koperasi.example/jejak";
    let server = Server::start(ServerOptions {
        demo: true,
        extra_args: vec!["--public-base".into(), BASE.into()],
        ..Default::default()
    })
    .expect("start a server with a public base");
    let demo = Demo::attach(server).await;
    let png = demo
        .server
        .http_get(&format!("/labels{RICE_BAG}?format=png&size=3"), &[])
        .await
        .expect("label png");
    let uri = decode_qr(&png.body);
    assert_eq!(uri, format!("{BASE}{RICE_BAG}"));
    // Behind the domain's proxy the path keeps its prefix; it resolves as is.
    let path = uri
        .strip_prefix("https://id.koperasi.example")
        .expect("the base's host");
    let page = demo
        .server
        .http_get(path, &[("Accept", "application/ld+json")])
        .await
        .expect("resolve");
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.json().expect("json-ld")["@id"], uri);
    let lines = demo.server.stdout_lines();
    assert!(
        lines.iter().any(|l| l.trim_start().starts_with(&format!("{BASE}/01/"))),
        "the demo's label URIs use the base: {lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jejak_labels_writes_one_label_per_packed_unit() {
    let mut demo = Demo::start().await;
    let lot = demo.lot(RICE_BAG_LOT).await;
    let units = lot.packages.len();
    assert!(units > 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let token = demo.server.admin_token.clone().expect("admin token");
    let labels_to = |out: &std::path::Path| {
        jejak_testkit::run_cli(&[
            "labels",
            RICE_BAG_LOT,
            "--out",
            &out.display().to_string(),
            "--public-base",
            "https://id.koperasi.example/jejak",
            "--server",
            &demo.server.url,
            "--token",
            &token,
        ])
        .expect("run jejak labels")
    };
    let pdf = dir.path().join("beras.pdf");
    let (status, out, err) = labels_to(&pdf);
    assert!(status.success(), "{err}");
    assert!(out.contains(&format!("{units} labels")), "{out}");
    let bytes = std::fs::read(&pdf).expect("the sheet");
    assert!(bytes.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&bytes);
    for pk in &lot.packages {
        assert!(
            text.contains(&format!("(21) {}", pk.serial)),
            "a label for {}",
            pk.serial
        );
    }

    let svg = dir.path().join("beras.svg");
    let svg_arg = svg.display().to_string();
    let (status, out, err) = labels_to(&svg);
    assert!(status.success(), "{err}");
    let (mut seen, mut linked) = (0, 0);
    for entry in std::fs::read_dir(dir.path()).expect("list") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "svg") {
            let page = std::fs::read_to_string(&path).expect("svg");
            seen += page.matches("(21) DMK5P-").count();
            linked += page
                .matches("<a href=\"https://id.koperasi.example/jejak/01/08997001001018/10/DMK-BP-260911/21/DMK5P-")
                .count();
        }
    }
    assert_eq!(seen, units, "every unit has one label across the pages: {out}");
    assert_eq!(linked, units, "every label carries a URI under the configured base");

    // Without a token the packages are not visible, and the refusal says why.
    let (status, _, err) =
        jejak_testkit::run_cli(&["labels", RICE_BAG_LOT, "-o", &svg_arg, "--server", &demo.server.url])
            .expect("run jejak labels");
    assert!(!status.success());
    assert!(err.contains("no packed units this token may see"), "{err}");
}
