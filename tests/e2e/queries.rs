//! Trace queries over gRPC on the demo chains: backward and forward traces
//! (across facilities too), exact origin shares, lot histories with
//! corrections, lot details and label lookups.

use jejak_server::demo::ids::{
    DEMAK, DRIED_PADDY_LOT, FARMERS_SUMBERREJEKI, FARMERS_TANIMAJU, HELD_SHIRT_LOT, KLATEN, PADDY,
    PADDY_INTAKE_STANDARD, PADDY_LOT, PREMIUM_RICE_5KG, PREMIUM_RICE_GTIN, RECALLED_CHAIR_LOT, RICE_BAG_LOT,
    RICE_BAG_SERIAL, RICE_BUYER, SRAGEN, TEAK_CHAIR_LOT, TEGAL, UKM_BERKAH, UKM_SIDOMAKMUR,
};
use std::collections::{BTreeMap, BTreeSet};

use jejak_proto::v1 as p;
use tonic::Code;

use crate::support::Demo;

const BAG_LABEL: &str = "https://id.example.org/01/08997001001018/10/DMK-BP-260911/21/DMK5P-000001";

fn lot_target(id: &str) -> Option<p::Target> {
    Some(p::Target {
        kind: Some(p::target::Kind::LotId(id.into())),
    })
}

fn serial_target(serial: &str) -> Option<p::Target> {
    Some(p::Target {
        kind: Some(p::target::Kind::Serial(serial.into())),
    })
}

fn label_target(uri: &str) -> Option<p::Target> {
    Some(p::Target {
        kind: Some(p::target::Kind::Label(uri.into())),
    })
}

async fn backward(d: &mut Demo, target: Option<p::Target>, max_depth: u32) -> p::TraceReply {
    d.trace
        .backward_trace(p::TraceRequest {
            target,
            max_depth,
            max_nodes: 0,
        })
        .await
        .expect("backward trace")
        .into_inner()
}

async fn forward(d: &mut Demo, target: Option<p::Target>, max_depth: u32) -> p::TraceReply {
    d.trace
        .forward_trace(p::TraceRequest {
            target,
            max_depth,
            max_nodes: 0,
        })
        .await
        .expect("forward trace")
        .into_inner()
}

/// Every lot of a trace by id.
fn lots(t: &p::TraceReply) -> BTreeMap<String, (u32, p::Lot)> {
    t.nodes
        .iter()
        .map(|n| {
            let l = n.lot.clone().expect("trace node has a lot");
            (l.lot_id.clone(), (n.depth, l))
        })
        .collect()
}

/// The raw material receipts a trace reached: lots with no inputs of their own.
fn receipts(t: &p::TraceReply) -> BTreeMap<String, p::Lot> {
    let produced: BTreeSet<&str> = t.edges.iter().map(|e| e.output_lot_id.as_str()).collect();
    t.nodes
        .iter()
        .filter_map(|n| n.lot.clone())
        .filter(|l| !produced.contains(l.lot_id.as_str()))
        .map(|l| (l.lot_id.clone(), l))
        .collect()
}

fn ids<'a>(it: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    it.into_iter().map(str::to_string).collect()
}

fn quantity(q: &Option<p::Quantity>) -> (String, i32) {
    let q = q.as_ref().expect("quantity is set");
    (q.value.clone(), q.unit)
}

fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A fraction as the API prints it: "p/q" in lowest terms, or "1".
fn parse_fraction(s: &str) -> (u128, u128) {
    let (n, d) = match s.split_once('/') {
        Some((n, d)) => (n.parse().expect("numerator"), d.parse().expect("denominator")),
        None => (s.parse().expect("whole number"), 1),
    };
    assert!(d > 0 && n > 0, "{s:?} is not a positive fraction");
    assert_eq!(gcd(n, d), 1, "{s:?} is not reduced");
    (n, d)
}

fn add(a: (u128, u128), b: (u128, u128)) -> (u128, u128) {
    let n = a.0 * b.1 + b.0 * a.1;
    let d = a.1 * b.1;
    let g = gcd(n, d);
    (n / g, d / g)
}

/// A percentage with exactly two decimals, in hundredths.
fn hundredths(s: &str) -> u64 {
    let (i, f) = s.split_once('.').unwrap_or_else(|| panic!("{s:?} has no decimals"));
    assert_eq!(f.len(), 2, "{s:?} does not have two decimals");
    i.parse::<u64>().expect("integer part") * 100 + f.parse::<u64>().expect("decimals")
}

/// The fractions of a share list are exact and add up to 1; the percentages
/// add up to exactly 100.00.
fn assert_adds_up(list: &[p::Share], what: &str) {
    assert!(!list.is_empty(), "{what} is empty");
    let total = list.iter().fold((0, 1), |acc, s| add(acc, parse_fraction(&s.fraction)));
    assert_eq!(total, (1, 1), "{what} fractions add up to {total:?}: {list:?}");
    let percent: u64 = list.iter().map(|s| hundredths(&s.percent)).sum();
    assert_eq!(percent, 10_000, "{what} percentages add up to {percent}: {list:?}");
}

fn shares(list: &[p::Share]) -> BTreeMap<String, (String, String)> {
    list.iter()
        .map(|s| (s.party_id.clone(), (s.fraction.clone(), s.percent.clone())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backward_traces_from_serial_lot_and_label_reach_the_paddy_receipts() {
    let mut d = Demo::start().await;
    let by_serial = backward(&mut d, serial_target(RICE_BAG_SERIAL), 0).await;
    let by_lot = backward(&mut d, lot_target(RICE_BAG_LOT), 0).await;
    let by_label = backward(&mut d, label_target(BAG_LABEL), 0).await;

    for (what, t) in [("serial", &by_serial), ("lot", &by_lot), ("label", &by_label)] {
        assert_eq!(t.root_lot_id, RICE_BAG_LOT, "{what}");
        assert!(!t.truncated, "{what}");
        assert_eq!(t.nodes, by_lot.nodes, "{what}: other lots than from the lot id");
        assert_eq!(t.edges, by_lot.edges, "{what}: other edges than from the lot id");
    }
    assert_eq!(by_lot.package, None);
    for (what, t) in [("serial", &by_serial), ("label", &by_label)] {
        let pk = t.package.as_ref().unwrap_or_else(|| panic!("{what}: no package"));
        assert_eq!(pk.serial, RICE_BAG_SERIAL);
        assert_eq!(pk.gtin, PREMIUM_RICE_GTIN);
        assert_eq!(pk.label, "/01/08997001001018/10/DMK-BP-260911/21/DMK5P-000001");
        assert_eq!(quantity(&pk.quantity), ("5".into(), p::Unit::Kg as i32));
        assert!(pk.shipped, "{what}: the bag was shipped");
    }

    // bag lot ← sorted rice ← four dried lots ← four paddy receipts.
    let all = lots(&by_lot);
    let depth = |id: &str| all.get(id).unwrap_or_else(|| panic!("{id} not reached")).0;
    assert_eq!(depth(RICE_BAG_LOT), 0);
    assert_eq!(depth("DMK-BRS-260908"), 1);
    for gkg in [
        "DMK-GKG-260902-01",
        "DMK-GKG-260902-02",
        DRIED_PADDY_LOT,
        "DMK-GKG-260903-02",
    ] {
        assert_eq!(depth(gkg), 2, "{gkg}");
    }
    assert_eq!(all.len(), 10, "{:?}", all.keys());
    let expected: [(&str, &str, &str, &str); 4] = [
        (
            PADDY_LOT,
            "UKM Beras Sido Makmur",
            FARMERS_SUMBERREJEKI,
            "Gapoktan Sumber Rejeki Karanganyar",
        ),
        (
            "DMK-GKP-260901-02",
            "KUB Tani Rukun",
            "sup-dmk-pkt-ngudimakmur",
            "Kelompok Tani Ngudi Makmur Mijen",
        ),
        (
            "DMK-GKP-260902-01",
            "UKM Beras Berkah Wonosalam",
            FARMERS_TANIMAJU,
            "Gapoktan Tani Maju Wonosalam",
        ),
        (
            "DMK-GKP-260902-02",
            "UD Padi Mulya",
            "sup-dmk-pkt-sidodadi",
            "Kelompok Tani Sido Dadi Dempet",
        ),
    ];
    let found = receipts(&by_lot);
    assert_eq!(
        found.keys().cloned().collect::<BTreeSet<_>>(),
        ids(expected.iter().map(|e| e.0))
    );
    for (lot, owner, supplier, supplier_name) in expected {
        let l = &found[lot];
        assert_eq!(depth(lot), 3, "{lot}");
        assert_eq!(l.created_as, "received", "{lot}");
        assert_eq!(l.facility_id, DEMAK, "{lot}");
        assert_eq!(l.product_id, PADDY, "{lot}");
        assert_eq!(l.owner_name, owner, "{lot}");
        assert_eq!(l.supplier_id, supplier, "{lot}");
        assert_eq!(l.supplier_name, supplier_name, "{lot}");
        assert!(
            l.origin.as_ref().is_some_and(|o| !o.place.is_empty()),
            "{lot}: no origin"
        );
        assert_eq!(l.inspections.len(), 1, "{lot}: {:?}", l.inspections);
        let i = &l.inspections[0];
        assert_eq!(i.standard_id, PADDY_INTAKE_STANDARD, "{lot}");
        assert!(!i.standard_name.is_empty(), "{lot}");
        assert_eq!(i.verdict, p::Verdict::Conformant as i32, "{lot}");
    }

    // Consumptions: what each dried lot gave to the milling, in its own unit.
    let edge = |input: &str, output: &str| {
        by_lot
            .edges
            .iter()
            .find(|e| e.input_lot_id == input && e.output_lot_id == output)
            .unwrap_or_else(|| panic!("no edge {input} → {output}"))
    };
    assert_eq!(by_lot.edges.len(), 9, "{:?}", by_lot.edges);
    let milling = edge("DMK-GKG-260903-02", "DMK-BRS-260908");
    assert_eq!(quantity(&milling.quantity), ("3340".into(), p::Unit::Kg as i32));
    assert_eq!(milling.step, "penggilingan");
    assert_eq!(milling.event_id, "demo-dmk-0027");
    assert_eq!(
        quantity(&edge(DRIED_PADDY_LOT, "DMK-BRS-260908").quantity),
        ("2000".into(), p::Unit::Kg as i32)
    );
    // A lot counted in tonnes shows its consumption in tonnes.
    assert_eq!(
        quantity(&edge("DMK-GKP-260901-02", "DMK-GKG-260902-02").quantity),
        ("4.85".into(), p::Unit::T as i32)
    );

    // The corrected inspection of a dried lot shows as voided, and the verdict
    // is that of the replacement.
    let gkg = &all[DRIED_PADDY_LOT].1;
    let voided: Vec<_> = gkg
        .inspections
        .iter()
        .filter(|i| i.voided)
        .map(|i| &i.event_id)
        .collect();
    assert_eq!(voided, ["demo-dmk-0014"]);
    assert_eq!(gkg.verdict, p::Verdict::Conformant as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_trace_from_a_paddy_receipt_reaches_bags_and_consignees() {
    let mut d = Demo::start().await;
    let t = forward(&mut d, lot_target(PADDY_LOT), 0).await;
    assert_eq!(t.root_lot_id, PADDY_LOT);
    assert!(!t.truncated);
    assert_eq!(t.package, None);
    let reached = lots(&t);
    assert_eq!(
        reached.keys().cloned().collect::<BTreeSet<_>>(),
        ids([
            PADDY_LOT,
            "DMK-GKG-260902-01",
            "DMK-BRS-260908",
            "DMK-BKT-260908",
            RICE_BAG_LOT,
            "DMK-BM-260911",
            "DMK-MNR-260911",
        ])
    );
    assert_eq!(reached[RICE_BAG_LOT].0, 3);
    assert_eq!(reached[RICE_BAG_LOT].1.owner_name, "UKM Beras Sido Makmur");

    // 60 premium bags and 40 medium bags, every one of them shipped.
    let serials: BTreeSet<&str> = t.packages.iter().map(|pk| pk.serial.as_str()).collect();
    assert_eq!(t.packages.len(), 100);
    assert_eq!(serials.len(), 100);
    assert!(serials.contains(RICE_BAG_SERIAL) && serials.contains("DMK5P-000060"));
    assert!(serials.contains("DMK5M-000001") && serials.contains("DMK5M-000040"));
    assert!(!serials.contains("DMK5M-000041"), "bags of another milling");
    assert!(t.packages.iter().all(|pk| pk.shipped), "unshipped bags");
    let bag = t
        .packages
        .iter()
        .find(|pk| pk.serial == RICE_BAG_SERIAL)
        .expect("the bag");
    assert_eq!(bag.label, "/01/08997001001018/10/DMK-BP-260911/21/DMK5P-000001");

    // Every shipment of those lots, with the consignee's name.
    let shipped: BTreeSet<(String, String, String, String)> = t
        .shipments
        .iter()
        .map(|s| {
            (
                s.event_id.clone(),
                s.lot_id.clone(),
                s.consignee_id.clone(),
                s.consignee_name.clone(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String, String)> = [
        (
            "demo-dmk-0032",
            "DMK-BKT-260908",
            "cus-dmk-pakanmakmur",
            "UD Pakan Ternak Makmur Kudus",
        ),
        (
            "demo-dmk-0043",
            RICE_BAG_LOT,
            "cus-dmk-sumberpangan",
            "Toko Beras Sumber Pangan Demak",
        ),
        (
            "demo-dmk-0044",
            "DMK-MNR-260911",
            "cus-dmk-tepungsari",
            "UD Tepung Beras Sari Rasa",
        ),
        (
            "demo-dmk-0046",
            RICE_BAG_LOT,
            RICE_BUYER,
            "CV Pangan Lestari (distributor beras)",
        ),
        (
            "demo-dmk-0047",
            "DMK-BM-260911",
            RICE_BUYER,
            "CV Pangan Lestari (distributor beras)",
        ),
        (
            "demo-dmk-0051",
            RICE_BAG_LOT,
            "cus-dmk-sumberpangan",
            "Toko Beras Sumber Pangan Demak",
        ),
    ]
    .iter()
    .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
    .collect();
    assert_eq!(shipped, expected);
    let medium = t
        .shipments
        .iter()
        .find(|s| s.event_id == "demo-dmk-0047")
        .expect("medium shipment");
    assert_eq!(quantity(&medium.quantity), ("2500".into(), p::Unit::Kg as i32));
    assert_eq!(medium.package_serials.len(), 40);
    assert_eq!(medium.facility_id, DEMAK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_cross_facilities_through_transfers() {
    let mut d = Demo::start().await;
    // A Klaten dining chair lot is held together by bolts made in Tegal.
    let back = backward(&mut d, lot_target(TEAK_CHAIR_LOT), 0).await;
    let all = lots(&back);
    let transfer = back
        .edges
        .iter()
        .find(|e| e.output_lot_id == "KLT-BK8-260916")
        .expect("the bolts' receipt at Klaten has an input");
    assert_eq!(transfer.input_lot_id, "TGL-BK8-260910");
    assert_eq!(transfer.step, "transfer");
    assert_eq!(transfer.event_id, "demo-klt-0010");
    assert_eq!(quantity(&transfer.quantity), ("800".into(), p::Unit::Pcs as i32));
    let received = &all["KLT-BK8-260916"].1;
    assert_eq!(received.facility_id, KLATEN);
    assert_eq!(received.source_lot_id, "TGL-BK8-260910");
    let bolts = &all["TGL-BK8-260910"].1;
    assert_eq!(bolts.facility_id, TEGAL);
    assert_eq!(bolts.owner_name, "UD Sinar Teknik Pegirikan");
    assert_eq!(bolts.verdict, p::Verdict::Conformant as i32);

    let found = receipts(&back);
    let tegal: BTreeSet<String> = found
        .values()
        .filter(|l| l.facility_id == TEGAL)
        .map(|l| l.lot_id.clone())
        .collect();
    // The voided receipt TGL-B16-260903-03 was replaced by -04 and never used.
    assert_eq!(
        tegal,
        ids(["TGL-B16-260903-01", "TGL-B16-260903-02", "TGL-B16-260903-04"])
    );
    for l in found.values().filter(|l| l.facility_id == TEGAL) {
        assert_eq!(l.created_as, "received", "{}", l.lot_id);
        assert!(!l.supplier_name.is_empty(), "{}", l.lot_id);
        assert!(!l.inspections.is_empty(), "{}: not inspected", l.lot_id);
    }
    assert!(
        found.contains_key("KLT-LJT-260902-01"),
        "the teak logs: {:?}",
        found.keys()
    );

    // Mahogany boards dried in Sragen reach the Klaten terrace chairs.
    let back = backward(&mut d, lot_target("KLT-FMH-260930"), 0).await;
    let all = lots(&back);
    assert_eq!(all["SRG-KMH-260917"].1.facility_id, SRAGEN);
    let sragen: BTreeSet<String> = receipts(&back)
        .values()
        .filter(|l| l.facility_id == SRAGEN)
        .map(|l| l.lot_id.clone())
        .collect();
    assert_eq!(sragen, ids(["SRG-LMH-260903-01", "SRG-LMH-260903-02"]));

    // And forward: from the Tegal bolts to every Klaten lot made with them.
    let fwd = forward(&mut d, lot_target("TGL-BK8-260910"), 0).await;
    let reached: BTreeSet<String> = lots(&fwd).into_keys().collect();
    assert_eq!(
        reached,
        ids([
            "TGL-BK8-260910",
            "KLT-BK8-260916",
            "KLT-RJT-260923",
            "KLT-RJT-260925",
            "KLT-RMH-260926",
            TEAK_CHAIR_LOT,
            "KLT-FMH-260930",
            RECALLED_CHAIR_LOT,
        ])
    );
    let consignees: BTreeSet<&str> = fwd.shipments.iter().map(|s| s.consignee_id.as_str()).collect();
    assert_eq!(
        consignees,
        [
            "op-klt-kopmebel",
            "cus-tgl-perkakas",
            "cus-klt-furnindo",
            "cus-klt-homeliving"
        ]
        .into_iter()
        .collect::<BTreeSet<&str>>()
    );
    assert!(fwd.shipments.iter().all(|s| !s.consignee_name.is_empty()));
    assert!(fwd.packages.iter().any(|pk| pk.serial == "KLTKJ-000046"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_shares_are_exact_and_add_up() {
    let mut d = Demo::start().await;
    let reply = d
        .trace
        .origin_shares(p::OriginSharesRequest {
            target: lot_target(RICE_BAG_LOT),
        })
        .await
        .expect("origin shares")
        .into_inner();
    assert_eq!(reply.lot_id, RICE_BAG_LOT);
    assert_adds_up(&reply.by_ukm, "by_ukm");
    assert_adds_up(&reply.by_supplier, "by_supplier");
    assert_adds_up(&reply.by_receipt, "by_receipt");

    // By hand from demo.jsonl: DMK-BP-260911 is one of the outputs of sorting
    // DMK-BRS-260908 (its only input, so it inherits that lot's composition).
    // DMK-BRS-260908 was milled (demo-dmk-0027) from 5300 kg DMK-GKG-260902-01,
    // 4120 kg DMK-GKG-260902-02, 3.34 t = 3340 kg DMK-GKG-260903-02 and
    // 2000 kg DMK-GKG-260903-01: 14760 kg in all. Each dried lot has a single
    // paddy receipt as input, so the receipt shares are
    //   DMK-GKP-260901-01 (UKM Sido Makmur, Gapoktan Sumber Rejeki) 5300/14760 = 265/738
    //   DMK-GKP-260901-02 (KUB Tani Rukun, KT Ngudi Makmur)         4120/14760 = 103/369
    //   DMK-GKP-260902-02 (UD Padi Mulya, KT Sido Dadi)             3340/14760 = 167/738
    //   DMK-GKP-260902-01 (UKM Berkah, Gapoktan Tani Maju)          2000/14760 =  50/369
    // In percent 35.9078…, 27.9133…, 22.6287…, 13.5501…: the floors 35.90 +
    // 27.91 + 22.62 + 13.55 = 99.98 leave two hundredths, which go to the
    // largest remainders (22.62|87… and 35.90|78…).
    let s = |f: &str, pct: &str| (f.to_string(), pct.to_string());
    let by_ukm: BTreeMap<String, (String, String)> = [
        (UKM_SIDOMAKMUR, s("265/738", "35.91")),
        ("ukm-dmk-tanirukun", s("103/369", "27.91")),
        ("ukm-dmk-padimulya", s("167/738", "22.63")),
        (UKM_BERKAH, s("50/369", "13.55")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(shares(&reply.by_ukm), by_ukm);
    let by_supplier: BTreeMap<String, (String, String)> = [
        (FARMERS_SUMBERREJEKI, s("265/738", "35.91")),
        ("sup-dmk-pkt-ngudimakmur", s("103/369", "27.91")),
        ("sup-dmk-pkt-sidodadi", s("167/738", "22.63")),
        (FARMERS_TANIMAJU, s("50/369", "13.55")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(shares(&reply.by_supplier), by_supplier);
    let by_receipt: BTreeMap<String, (String, String)> = [
        (PADDY_LOT, s("265/738", "35.91")),
        ("DMK-GKP-260901-02", s("103/369", "27.91")),
        ("DMK-GKP-260902-02", s("167/738", "22.63")),
        ("DMK-GKP-260902-01", s("50/369", "13.55")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(shares(&reply.by_receipt), by_receipt);
    // Largest share first, names filled in.
    assert_eq!(reply.by_ukm[0].party_id, UKM_SIDOMAKMUR);
    assert_eq!(reply.by_ukm[0].party_name, "UKM Beras Sido Makmur");
    assert!(reply.by_supplier.iter().all(|s| !s.party_name.is_empty()));

    // The bag and its label answer for the lot they belong to.
    for target in [serial_target(RICE_BAG_SERIAL), label_target(BAG_LABEL)] {
        let same = d
            .trace
            .origin_shares(p::OriginSharesRequest { target })
            .await
            .expect("origin shares of the bag")
            .into_inner();
        assert_eq!(same, reply);
    }

    // Every share list of other demo lots adds up too, across facilities.
    for lot in [
        "DMK-BM-260914-R",
        TEAK_CHAIR_LOT,
        "KLT-FMH-260930",
        RECALLED_CHAIR_LOT,
        "TGL-BK8-260910",
        HELD_SHIRT_LOT,
        PADDY_LOT,
    ] {
        let r = d
            .trace
            .origin_shares(p::OriginSharesRequest {
                target: lot_target(lot),
            })
            .await
            .unwrap_or_else(|s| panic!("origin shares of {lot}: {s:?}"))
            .into_inner();
        assert_adds_up(&r.by_ukm, &format!("{lot} by_ukm"));
        assert_adds_up(&r.by_supplier, &format!("{lot} by_supplier"));
        assert_adds_up(&r.by_receipt, &format!("{lot} by_receipt"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lot_history_marks_corrections_as_of_any_time() {
    let mut d = Demo::start().await;
    let lot = DRIED_PADDY_LOT;
    let history = d
        .trace
        .lot_history(p::LotHistoryRequest {
            lot_id: lot.into(),
            as_of: None,
        })
        .await
        .expect("history")
        .into_inner();
    assert_eq!(history.lot_id, lot);
    let order: Vec<&str> = history.entries.iter().map(|e| e.event_id.as_str()).collect();
    // Dried, inspected (voided), re-inspected, the void, milled twice.
    assert_eq!(
        order,
        [
            "demo-dmk-0013",
            "demo-dmk-0014",
            "demo-dmk-0017",
            "demo-dmk-0018",
            "demo-dmk-0027",
            "demo-dmk-0028"
        ]
    );
    assert!(history.entries.windows(2).all(|w| w[0].position < w[1].position));
    for e in &history.entries {
        assert_eq!(e.chain, DEMAK);
        assert_eq!(e.hash.len(), 64, "{}", e.event_id);
        assert!(e.event.is_some(), "{}", e.event_id);
    }
    let entry = |id: &str| history.entries.iter().find(|e| e.event_id == id).expect("entry");
    let voided = entry("demo-dmk-0014");
    assert!(voided.voided);
    assert_eq!(voided.voided_by, "demo-dmk-0018");
    assert!(
        voided.void_reason.starts_with("Sampel tertukar"),
        "{:?}",
        voided.void_reason
    );
    assert!(matches!(
        voided.event.as_ref().and_then(|e| e.kind.as_ref()),
        Some(p::event::Kind::LotInspected(_))
    ));
    let replacement = entry("demo-dmk-0017");
    assert!(!replacement.voided && replacement.voided_by.is_empty());
    match entry("demo-dmk-0018").event.as_ref().and_then(|e| e.kind.as_ref()) {
        Some(p::event::Kind::EventVoided(v)) => {
            assert_eq!(v.voided_event_id, "demo-dmk-0014");
            assert_eq!(v.replacement_event_id, "demo-dmk-0017");
        }
        other => panic!("the void entry holds {other:?}"),
    }

    // As of the re-inspection, before the void was recorded: not voided yet.
    let at = entry("demo-dmk-0017").recorded_at.expect("recorded_at");
    let void_at = entry("demo-dmk-0018").recorded_at.expect("recorded_at");
    assert!(
        (void_at.seconds, void_at.nanos) > (at.seconds, at.nanos),
        "the void must be recorded after the re-inspection"
    );
    let earlier = d
        .trace
        .lot_history(p::LotHistoryRequest {
            lot_id: lot.into(),
            as_of: Some(at),
        })
        .await
        .expect("history as of")
        .into_inner();
    let order: Vec<&str> = earlier.entries.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(order, ["demo-dmk-0013", "demo-dmk-0014", "demo-dmk-0017"]);
    let then = &earlier.entries[1];
    assert!(!then.voided, "voided before the void was recorded: {then:?}");
    assert!(then.voided_by.is_empty() && then.void_reason.is_empty());
    assert_eq!(then.hash, voided.hash);

    // The voided receipt's own history: the receipt, marked, and its void.
    let receipt = d
        .trace
        .lot_history(p::LotHistoryRequest {
            lot_id: "TGL-B16-260903-03".into(),
            as_of: None,
        })
        .await
        .expect("history of the voided receipt")
        .into_inner();
    let order: Vec<(&str, bool)> = receipt
        .entries
        .iter()
        .map(|e| (e.event_id.as_str(), e.voided))
        .collect();
    assert_eq!(order, [("demo-tgl-0007", true), ("demo-tgl-0009", false)]);
    assert_eq!(receipt.entries[0].voided_by, "demo-tgl-0009");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_lot_shows_recalls_holds_failures_and_voids() {
    let mut d = Demo::start().await;
    let recalled = d.lot(RECALLED_CHAIR_LOT).await;
    assert_eq!(recalled.status, p::LotStatus::Recalled as i32);
    assert_eq!(recalled.facility_id, KLATEN);
    assert_eq!(recalled.packages.len(), 40);
    assert_eq!(recalled.packages.iter().filter(|pk| pk.shipped).count(), 24);
    assert_eq!(recalled.shipments.len(), 1);
    assert_eq!(recalled.shipments[0].consignee_id, "cus-klt-homeliving");

    let released = d.lot(HELD_SHIRT_LOT).await;
    assert_eq!(released.status, p::LotStatus::Released as i32);
    let disposed = d.lot("KLT-PRN-260926-02").await;
    assert_eq!(disposed.status, p::LotStatus::Disposed as i32);

    // The premium lot failed SNI 6128 premium and was regraded as medium.
    let failed = d.lot("DMK-BP-260913").await;
    let premium = failed
        .inspections
        .iter()
        .find(|i| i.standard_id == "std-sni6128-premium")
        .expect("premium inspection");
    assert_eq!(premium.verdict, p::Verdict::NonConformant as i32);
    assert!(
        premium.findings.iter().any(|f| f.contains("Butir kepala")),
        "{:?}",
        premium.findings
    );
    assert_eq!(quantity(&failed.balance), ("0".into(), p::Unit::Kg as i32));
    let regraded = d.lot("DMK-BM-260914-R").await;
    assert_eq!(regraded.created_as, "reklasifikasi-mutu");
    assert_eq!(regraded.verdict, p::Verdict::Conformant as i32);

    let voided = d.lot("TGL-B16-260903-03").await;
    assert!(voided.voided);
    assert_eq!(quantity(&voided.balance), ("0".into(), p::Unit::Kg as i32));

    // Balances after packing and shipping, in the lot's unit.
    let bags = d.lot(RICE_BAG_LOT).await;
    assert_eq!(quantity(&bags.quantity), ("5900".into(), p::Unit::Kg as i32));
    assert_eq!(quantity(&bags.balance), ("100".into(), p::Unit::Kg as i32));
    assert_eq!(bags.packages.len(), 60);
    assert_eq!(bags.status, p::LotStatus::Active as i32);
    assert_eq!(bags.verdict, p::Verdict::Conformant as i32);

    let missing = d.lot_error("NO-SUCH-LOT").await;
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_label_resolves_and_refuses() {
    let mut d = Demo::start().await;
    let reply = d
        .trace
        .lookup_label(p::LookupLabelRequest { uri: BAG_LABEL.into() })
        .await
        .expect("lookup")
        .into_inner();
    assert_eq!(reply.gtin, PREMIUM_RICE_GTIN);
    assert_eq!(reply.lot_id, RICE_BAG_LOT);
    assert_eq!(reply.serial, RICE_BAG_SERIAL);
    let lot = reply.lot.as_ref().expect("lot");
    assert_eq!(lot.product_id, PREMIUM_RICE_5KG);
    assert_eq!(lot.owner_name, "UKM Beras Sido Makmur");
    assert_eq!(
        reply.package.as_ref().map(|pk| pk.serial.as_str()),
        Some(RICE_BAG_SERIAL)
    );

    // The same GTIN-13 written with 13 digits, as a bare path, without serial.
    for uri in [
        "https://id.example.org/01/8997001001018/10/DMK-BP-260911/21/DMK5P-000001",
        "/01/08997001001018/10/DMK-BP-260911/21/DMK5P-000001",
    ] {
        let same = d
            .trace
            .lookup_label(p::LookupLabelRequest { uri: uri.into() })
            .await
            .unwrap_or_else(|s| panic!("lookup {uri}: {s:?}"))
            .into_inner();
        assert_eq!(same, reply, "{uri}");
    }
    let lot_only = d
        .trace
        .lookup_label(p::LookupLabelRequest {
            uri: "https://id.example.org/01/08997001001018/10/DMK-BP-260911".into(),
        })
        .await
        .expect("lookup without serial")
        .into_inner();
    assert_eq!(lot_only.serial, "");
    assert_eq!(lot_only.package, None);
    assert_eq!(lot_only.lot, reply.lot);

    let refused = |uri: &str| p::LookupLabelRequest { uri: uri.into() };
    for (uri, code) in [
        // Check digit 9 instead of 8.
        (
            "https://id.example.org/01/08997001001019/10/DMK-BP-260911/21/DMK5P-000001",
            Code::InvalidArgument,
        ),
        ("https://id.example.org/10/DMK-BP-260911", Code::InvalidArgument),
        ("not a label", Code::InvalidArgument),
        (
            "https://id.example.org/01/08997001001018/10/NO-SUCH-LOT",
            Code::NotFound,
        ),
        (
            "https://id.example.org/01/08997001001018/10/DMK-BP-260911/21/NO-SUCH-BAG",
            Code::NotFound,
        ),
        // A medium bag's serial under the premium lot, and the medium GTIN on it.
        (
            "https://id.example.org/01/08997001001018/10/DMK-BP-260911/21/DMK5M-000001",
            Code::NotFound,
        ),
        (
            "https://id.example.org/01/08997001001025/10/DMK-BP-260911",
            Code::NotFound,
        ),
    ] {
        match d.trace.lookup_label(refused(uri)).await {
            Ok(r) => panic!("{uri} resolved: {:?}", r.into_inner()),
            Err(s) => assert_eq!(s.code(), code, "{uri}: {s:?}"),
        }
    }
    let bad = d
        .trace
        .lookup_label(refused("https://id.example.org/01/08997001001019/10/DMK-BP-260911"))
        .await
        .expect_err("bad check digit");
    assert!(bad.message().contains("check digit"), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_depth_cuts_a_trace_and_says_so() {
    let mut d = Demo::start().await;
    let cut = backward(&mut d, lot_target(RICE_BAG_LOT), 1).await;
    assert!(cut.truncated);
    assert_eq!(cut.truncated_reason(), p::TraceTruncation::MaxDepth);
    assert_eq!(
        lots(&cut).into_keys().collect::<BTreeSet<_>>(),
        ids([RICE_BAG_LOT, "DMK-BRS-260908"])
    );
    assert!(cut.nodes.iter().all(|n| n.depth <= 1));
    assert_eq!(cut.edges.len(), 1);

    let two = backward(&mut d, lot_target(RICE_BAG_LOT), 2).await;
    assert!(two.truncated);
    assert_eq!(two.nodes.len(), 6);
    // Deep enough to reach the receipts: not truncated.
    let full = backward(&mut d, lot_target(RICE_BAG_LOT), 3).await;
    assert!(!full.truncated);
    assert_eq!(full.truncated_reason(), p::TraceTruncation::Unspecified);
    assert_eq!(full.nodes.len(), 10);
    let unlimited = backward(&mut d, lot_target(RICE_BAG_LOT), 0).await;
    assert_eq!(unlimited, full);

    let fwd = forward(&mut d, lot_target(PADDY_LOT), 1).await;
    assert!(fwd.truncated);
    assert_eq!(
        lots(&fwd).into_keys().collect::<BTreeSet<_>>(),
        ids([PADDY_LOT, "DMK-GKG-260902-01"])
    );
    // A receipt has nothing behind it: nothing to cut.
    let leaf = backward(&mut d, lot_target(PADDY_LOT), 1).await;
    assert!(!leaf.truncated);
    assert_eq!(leaf.nodes.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_of_unknown_or_missing_targets_are_refused() {
    let mut d = Demo::start().await;
    for (target, code) in [
        (lot_target("NO-SUCH-LOT"), Code::NotFound),
        (serial_target("NO-SUCH-BAG"), Code::NotFound),
        (
            label_target("https://id.example.org/01/08997001001018/10/NO-SUCH-LOT"),
            Code::NotFound,
        ),
        (
            label_target("https://id.example.org/01/08997001001019/10/DMK-BP-260911"),
            Code::InvalidArgument,
        ),
        (None, Code::InvalidArgument),
        (Some(p::Target { kind: None }), Code::InvalidArgument),
    ] {
        let req = p::TraceRequest {
            target: target.clone(),
            max_depth: 0,
            max_nodes: 0,
        };
        let s = d.trace.backward_trace(req.clone()).await.expect_err("backward");
        assert_eq!(s.code(), code, "backward {target:?}: {s:?}");
        let s = d.trace.forward_trace(req).await.expect_err("forward");
        assert_eq!(s.code(), code, "forward {target:?}: {s:?}");
        let s = d
            .trace
            .origin_shares(p::OriginSharesRequest { target: target.clone() })
            .await
            .expect_err("origin shares");
        assert_eq!(s.code(), code, "origin {target:?}: {s:?}");
    }
    let s = d
        .trace
        .lot_history(p::LotHistoryRequest {
            lot_id: "NO-SUCH-LOT".into(),
            as_of: None,
        })
        .await
        .expect_err("history of an unknown lot");
    assert_eq!(s.code(), Code::NotFound);
}
