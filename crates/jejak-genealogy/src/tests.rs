//! Tests of the genealogy projection: "these events → this projection" for the
//! trace queries, persistence across reopening, and replay determinism.

use std::sync::OnceLock;

use jejak_domain::{Command, Decimal, Event, State, Target, Time, Unit};
use jejak_proto::v1 as p;
use proptest::prelude::*;

use crate::{AppliedEvent, Genealogy, GenealogyError, Projection, TraceLimits};

use jejak_domain::scenario::{dec, q, rice_mill, Scenario as Log, BERAS_GTIN, DEMAK, KUDUS, OTHER_GTIN};

// ---------------------------------------------------------------------------
// Building events by hand.

fn scenario() -> Log {
    rice_mill()
}

/// The scenario as the projector sees it.
trait Projected {
    /// The events as the projector sees them: position `i + 1`, recorded a
    /// minute after they happened.
    fn applied(&self) -> Vec<AppliedEvent<'_>>;

    /// The in-memory genealogy after every event, applied one at a time.
    fn project(&self) -> Genealogy;
}

impl Projected for Log {
    /// The events as the projector sees them: position `i + 1`, recorded a
    /// minute after they happened.
    fn applied(&self) -> Vec<AppliedEvent<'_>> {
        self.events
            .iter()
            .enumerate()
            .map(|(i, (id, event))| AppliedEvent {
                position: i as u64 + 1,
                event_id: id,
                recorded_at: Time(Log::at(i).0 + 60 * Time::NANOS_PER_SEC),
                event,
                hash: *blake3::hash(id.as_bytes()).as_bytes(),
            })
            .collect()
    }

    /// The in-memory genealogy after every event, applied one at a time.
    fn project(&self) -> Genealogy {
        let mut g = Genealogy::new();
        for e in self.applied() {
            g.apply(e);
        }
        g
    }
}

/// The command a client would have sent for an event.
fn as_command(event: &Event) -> Command {
    Command::from(event.clone())
}

/// Hand-built events must be ones the write side would have written.
#[track_caller]
fn assert_write_side_accepts(log: &Log) {
    use jejak_domain::Facts;
    let mut state = State::new();
    let mut g = Genealogy::new();
    for a in log.applied() {
        let decided = state.decide(a.event_id, as_command(a.event), a.recorded_at);
        assert_eq!(decided.as_ref(), Ok(a.event), "event {}", a.event_id);
        // The genealogy, as Facts, decides exactly as the write model does.
        let via_genealogy = jejak_domain::decide(&g, a.event_id, as_command(a.event), a.recorded_at);
        assert_eq!(
            via_genealogy, decided,
            "event {} decided against the genealogy",
            a.event_id
        );
        state.apply(a.event_id, a.event);
        g.apply(a);
        for lot in a.event.lots() {
            assert_eq!(
                Facts::lot(&g, lot),
                Facts::lot(&state, lot),
                "lot {lot} after {}",
                a.event_id
            );
        }
    }
    // Voiding any event is decided alike (voidability follows the same facts).
    for a in log.applied() {
        let facility = a.event.chain().to_string();
        let void = Command::VoidEvent(jejak_domain::EventVoided {
            facility_id: facility,
            voided_event_id: a.event_id.to_string(),
            reason: "probe".into(),
            replacement_event_id: None,
            occurred_at: None,
        });
        let now = log.next_at().unwrap_or_default();
        assert_eq!(
            jejak_domain::decide(&g, "probe-void", void.clone(), now),
            state.decide("probe-void", void, now),
            "voiding {}",
            a.event_id
        );
    }
}

fn lot_target(id: &str) -> Target {
    Target::Lot(id.into())
}

fn serial_target(serial: &str) -> Target {
    Target::Serial(serial.into())
}

fn label_target(uri: &str) -> Target {
    Target::Label(jejak_domain::gs1::DigitalLink::parse(uri).expect("a well-formed label"))
}

fn pq(value: &str, unit: p::Unit) -> Option<p::Quantity> {
    Some(p::Quantity {
        value: value.into(),
        unit: unit as i32,
    })
}

fn backward(g: &Genealogy, target: Target) -> p::TraceReply {
    g.backward_trace(&target, 0, TraceLimits::default())
        .map(p::TraceReply::from)
        .expect("backward trace")
}

fn forward(g: &Genealogy, target: Target) -> p::TraceReply {
    g.forward_trace(&target, 0, TraceLimits::default())
        .map(p::TraceReply::from)
        .expect("forward trace")
}

fn shares(g: &Genealogy, lot: &str) -> p::OriginSharesReply {
    g.origin_shares(&lot_target(lot), &|_| true, TraceLimits::default())
        .map(p::OriginSharesReply::from)
        .expect("origin shares")
}

/// (depth, lot id) of every node.
fn nodes(reply: &p::TraceReply) -> Vec<(u32, String)> {
    reply
        .nodes
        .iter()
        .map(|n| (n.depth, n.lot.as_ref().expect("node has a lot").lot_id.clone()))
        .collect()
}

fn owned(v: &[(u32, &str)]) -> Vec<(u32, String)> {
    v.iter().map(|(d, l)| (*d, (*l).to_string())).collect()
}

/// What the store keeps of a lot's bulk shipments not yet received elsewhere
/// (no query shows it, but the write side's rules depend on it).
fn in_transit(g: &Genealogy, lot: &str) -> Decimal {
    let ix = g.lot_ix(lot).unwrap_or_else(|| panic!("no lot {lot}"));
    g.node(ix).in_transit
}

/// A reply cut short still links only lots it lists.
#[track_caller]
fn assert_edges_within_nodes(reply: &p::TraceReply) {
    let listed: Vec<String> = nodes(reply).into_iter().map(|(_, id)| id).collect();
    for e in &reply.edges {
        assert!(
            listed.contains(&e.input_lot_id) && listed.contains(&e.output_lot_id),
            "edge {} -> {} links a lot not in the reply {listed:?}",
            e.input_lot_id,
            e.output_lot_id
        );
    }
}

/// (input, output, quantity, unit, event, step) of every edge.
fn edges(reply: &p::TraceReply) -> Vec<(String, String, String, i32, String, String)> {
    reply
        .edges
        .iter()
        .map(|e| {
            let qty = e.quantity.clone().expect("edge quantity");
            (
                e.input_lot_id.clone(),
                e.output_lot_id.clone(),
                qty.value,
                qty.unit,
                e.event_id.clone(),
                e.step.clone(),
            )
        })
        .collect()
}

fn edge(
    input: &str,
    output: &str,
    value: &str,
    unit: p::Unit,
    event: &str,
    step: &str,
) -> (String, String, String, i32, String, String) {
    (
        input.into(),
        output.into(),
        value.into(),
        unit as i32,
        event.into(),
        step.into(),
    )
}

/// (party id, fraction, percent) of every share.
fn share_list(s: &[p::Share]) -> Vec<(String, String, String)> {
    s.iter()
        .map(|s| (s.party_id.clone(), s.fraction.clone(), s.percent.clone()))
        .collect()
}

fn share(id: &str, fraction: &str, percent: &str) -> (String, String, String) {
    (id.into(), fraction.into(), percent.into())
}

// ---------------------------------------------------------------------------
// These events → this projection.

#[test]
fn the_scenario_is_one_the_write_side_accepts() {
    assert_write_side_accepts(&scenario());
    assert_write_side_accepts(&with_corrections());
}

#[test]
fn backward_trace_from_a_label_reaches_every_receipt_with_quantities() {
    let g = scenario().project();
    let reply = backward(&g, label_target(&format!("/01/{BERAS_GTIN}/10/B2/21/P-0001")));
    assert_eq!(reply.root_lot_id, "B2");
    let package = reply.package.as_ref().expect("the label names a package");
    assert_eq!(package.serial, "P-0001");
    assert_eq!(package.label, format!("/01/{BERAS_GTIN}/10/B2/21/P-0001"));
    assert_eq!(package.quantity, pq("5", p::Unit::Kg));
    assert!(package.shipped);
    assert_eq!(
        nodes(&reply),
        owned(&[(0, "B2"), (1, "B1"), (1, "G3"), (2, "G1"), (2, "G2"), (2, "K1")])
    );
    // Quantities are in each input lot's own unit.
    assert_eq!(
        edges(&reply),
        vec![
            edge("G1", "B1", "3", p::Unit::T, "mill", "milling"),
            edge("G2", "B1", "1", p::Unit::T, "mill", "milling"),
            edge("K1", "B1", "100", p::Unit::Pcs, "mill", "milling"),
            edge("B1", "B2", "2000", p::Unit::Kg, "grade", "grading"),
            edge("G3", "B2", "2000", p::Unit::Kg, "grade", "grading"),
        ]
    );
    assert!(!reply.truncated);
    assert!(
        reply.packages.is_empty() && reply.shipments.is_empty(),
        "only forward traces list them"
    );
    let g1 = reply.nodes[3].lot.as_ref().expect("G1");
    assert_eq!(
        (
            g1.owner_name.as_str(),
            g1.supplier_name.as_str(),
            g1.created_as.as_str()
        ),
        ("UKM Sri Rejeki", "Kelompok Tani Makmur", "received")
    );
    assert_eq!(g1.verdict, p::Verdict::Conformant as i32);

    // The same trace by lot id and by serial, without the package for a lot id.
    let by_lot = backward(&g, lot_target("B2"));
    assert_eq!(
        (by_lot.nodes.clone(), by_lot.edges.clone()),
        (reply.nodes.clone(), reply.edges.clone())
    );
    assert_eq!(by_lot.package, None);
    assert_eq!(backward(&g, serial_target("P-0001")), reply);
}

#[test]
fn backward_trace_follows_transfers_and_stops_at_max_depth() {
    let g = scenario().project();
    let reply = backward(&g, lot_target("KB2"));
    assert_eq!(
        nodes(&reply),
        owned(&[
            (0, "KB2"),
            (1, "B2"),
            (2, "B1"),
            (2, "G3"),
            (3, "G1"),
            (3, "G2"),
            (3, "K1")
        ])
    );
    assert!(edges(&reply).contains(&edge("B2", "KB2", "1000", p::Unit::Kg, "rcv-kb2", "transfer")));
    assert_eq!(reply.edges.len(), 6);
    let kb2 = &reply.nodes[0].lot.as_ref().expect("KB2");
    assert_eq!((kb2.facility_id.as_str(), kb2.source_lot_id.as_str()), (KUDUS, "B2"));
    assert_eq!(kb2.supplier_name, "Koperasi Pangan Demak");

    let cut = g
        .backward_trace(&lot_target("B2"), 1, TraceLimits::default())
        .map(p::TraceReply::from)
        .expect("trace");
    assert_eq!(nodes(&cut), owned(&[(0, "B2"), (1, "B1"), (1, "G3")]));
    assert_eq!(cut.edges.len(), 2);
    assert!(cut.truncated, "B1 has inputs beyond the depth limit");
    let limited = g
        .backward_trace(
            &lot_target("B2"),
            0,
            TraceLimits {
                max_depth: 64,
                max_nodes: 2,
            },
        )
        .map(p::TraceReply::from)
        .expect("trace");
    assert_eq!(limited.nodes.len(), 2);
    assert!(limited.truncated);
    assert_edges_within_nodes(&limited);
    assert_edges_within_nodes(&cut);
    // A receipt traces back to itself.
    let g1 = backward(&g, lot_target("G1"));
    assert_eq!(
        (nodes(&g1), g1.edges.len(), g1.truncated),
        (owned(&[(0, "G1")]), 0, false)
    );
}

#[test]
fn forward_trace_reaches_packages_shipments_and_consignees() {
    let g = scenario().project();
    let reply = forward(&g, lot_target("G1"));
    assert_eq!(
        nodes(&reply),
        owned(&[(0, "G1"), (1, "B1"), (1, "DK1"), (2, "B2"), (3, "KB2")])
    );
    assert_eq!(
        edges(&reply),
        vec![
            edge("G1", "B1", "3", p::Unit::T, "mill", "milling"),
            edge("B1", "B2", "2000", p::Unit::Kg, "grade", "grading"),
            edge("G1", "DK1", "3", p::Unit::T, "mill", "milling"),
            edge("B2", "KB2", "1000", p::Unit::Kg, "rcv-kb2", "transfer"),
        ]
    );
    let packages: Vec<(&str, bool, &str)> = reply
        .packages
        .iter()
        .map(|p| (p.serial.as_str(), p.shipped, p.event_id.as_str()))
        .collect();
    assert_eq!(
        packages,
        [
            ("P-0001", true, "pack-b2"),
            ("P-0002", true, "pack-b2"),
            ("P-0003", false, "pack-b2")
        ]
    );
    assert_eq!(
        reply.packages[1].quantity,
        pq("5", p::Unit::Kg),
        "5000 g shown in the lot's kg"
    );
    assert_eq!(reply.packages[2].label, format!("/01/{BERAS_GTIN}/10/B2/21/P-0003"));
    let shipments: Vec<(&str, &str, &str, Vec<&str>)> = reply
        .shipments
        .iter()
        .map(|s| {
            (
                s.event_id.as_str(),
                s.consignee_id.as_str(),
                s.consignee_name.as_str(),
                s.package_serials.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        shipments,
        [
            ("ship-pk", "cust-pangan", "PT Pangan Ekspor", vec!["P-0001", "P-0002"]),
            ("ship-bulk", "op-kudus", "Koperasi Pangan Kudus", vec![]),
        ]
    );
    assert_eq!(reply.shipments[0].quantity, None);
    assert_eq!(reply.shipments[1].quantity, pq("1000", p::Unit::Kg));
    assert_eq!(reply.shipments[1].lot_id, "B2");
    assert_eq!(reply.shipments[1].document, "SJ-002");

    // From the sacks, the recall reaches the same rice.
    let k1 = forward(&g, lot_target("K1"));
    assert_eq!(
        nodes(&k1),
        owned(&[(0, "K1"), (1, "B1"), (1, "DK1"), (2, "B2"), (3, "KB2")])
    );
    assert_eq!(k1.shipments.len(), 2);
    // Nothing was made from the bran.
    let dk1 = forward(&g, lot_target("DK1"));
    assert_eq!(
        (nodes(&dk1), dk1.packages.len(), dk1.shipments.len()),
        (owned(&[(0, "DK1")]), 0, 0)
    );
}

#[test]
fn origin_shares_are_exact_through_blends() {
    let g = scenario().project();
    // 3 t and 1 t blended; the 100 sacks (pcs) carry no share.
    let b1 = shares(&g, "B1");
    assert_eq!(b1.lot_id, "B1");
    assert_eq!(
        share_list(&b1.by_ukm),
        [share("ukm-sri", "3/4", "75.00"), share("ukm-maju", "1/4", "25.00")]
    );
    assert_eq!(b1.by_ukm[0].party_name, "UKM Sri Rejeki");
    assert_eq!(
        share_list(&b1.by_supplier),
        [share("sup-tani", "3/4", "75.00"), share("sup-lestari", "1/4", "25.00")]
    );
    assert_eq!(
        share_list(&b1.by_receipt),
        [share("G1", "3/4", "75.00"), share("G2", "1/4", "25.00")]
    );
    assert_eq!(b1.by_receipt[0].party_name, "Gabah kering panen (UKM Sri Rejeki)");
    // The bran from the same milling has the same origins.
    let dk1 = shares(&g, "DK1");
    assert_eq!((dk1.by_ukm, dk1.by_receipt), (b1.by_ukm.clone(), b1.by_receipt.clone()));

    // Half B1 (3/4 · 1/2 = 3/8, 1/4 · 1/2 = 1/8), half G3.
    let b2 = shares(&g, "B2");
    assert_eq!(
        share_list(&b2.by_ukm),
        [
            share("ukm-tiga", "1/2", "50.00"),
            share("ukm-sri", "3/8", "37.50"),
            share("ukm-maju", "1/8", "12.50"),
        ]
    );
    assert_eq!(
        share_list(&b2.by_supplier),
        [share("sup-tani", "7/8", "87.50"), share("sup-lestari", "1/8", "12.50")]
    );
    assert_eq!(
        share_list(&b2.by_receipt),
        [
            share("G3", "1/2", "50.00"),
            share("G1", "3/8", "37.50"),
            share("G2", "1/8", "12.50")
        ]
    );
    // A transfer passes the composition on unchanged; a package is its lot's.
    let kb2 = shares(&g, "KB2");
    assert_eq!(kb2.lot_id, "KB2");
    assert_eq!(
        (&kb2.by_ukm, &kb2.by_supplier, &kb2.by_receipt),
        (&b2.by_ukm, &b2.by_supplier, &b2.by_receipt)
    );
    let by_serial = g
        .origin_shares(&serial_target("P-0002"), &|_| true, TraceLimits::default())
        .map(p::OriginSharesReply::from)
        .expect("shares");
    assert_eq!(by_serial, b2);
    // A receipt is all its own.
    let g1 = shares(&g, "G1");
    assert_eq!(share_list(&g1.by_ukm), [share("ukm-sri", "1", "100.00")]);
    assert_eq!(share_list(&g1.by_receipt), [share("G1", "1", "100.00")]);
}

#[test]
fn origin_shares_round_to_exactly_100_percent() {
    // Three equal UKM lots: 1/3 each, shown as 33.34 + 33.33 + 33.33.
    let mut log = scenario();
    log.receive(DEMAK, "X1", "gabah", q("1", Unit::Kg), "ukm-sri", "sup-tani")
        .receive(DEMAK, "X2", "gabah", q("1000", Unit::G), "ukm-maju", "sup-tani")
        .receive(DEMAK, "X3", "gabah", q("0.001", Unit::T), "ukm-tiga", "sup-tani")
        .process(
            "mix",
            "blending",
            &[
                ("X1", q("1", Unit::Kg)),
                ("X2", q("1", Unit::Kg)),
                ("X3", q("1", Unit::Kg)),
            ],
            &[("XB", "beras", q("3", Unit::Kg), "ukm-sri")],
        );
    assert_write_side_accepts(&log);
    let xb = shares(&log.project(), "XB");
    assert_eq!(
        share_list(&xb.by_ukm),
        [
            share("ukm-maju", "1/3", "33.34"),
            share("ukm-sri", "1/3", "33.33"),
            share("ukm-tiga", "1/3", "33.33"),
        ]
    );
    assert_eq!(share_list(&xb.by_supplier), [share("sup-tani", "1", "100.00")]);
}

#[test]
fn label_lookup_by_digital_link() {
    let g = scenario().project();
    let lot_label = g
        .lookup_label(&format!("/01/{BERAS_GTIN}/10/B2"))
        .map(p::LookupLabelReply::from)
        .expect("lot label");
    assert_eq!(
        (
            lot_label.gtin.as_str(),
            lot_label.lot_id.as_str(),
            lot_label.serial.as_str()
        ),
        (BERAS_GTIN, "B2", "")
    );
    assert_eq!(lot_label.package, None);
    let lot = lot_label.lot.as_ref().expect("the lot");
    assert_eq!(
        (lot.lot_id.as_str(), lot.product_name.as_str()),
        ("B2", "Beras premium")
    );
    assert_eq!(lot.packages.len(), 3);

    let bag = g
        .lookup_label(&format!(
            "https://id.jejak.example/01/{BERAS_GTIN}/10/B2/21/P-0002?linkType=all"
        ))
        .map(p::LookupLabelReply::from)
        .expect("package label");
    assert_eq!((bag.lot_id.as_str(), bag.serial.as_str()), ("B2", "P-0002"));
    let pkg = bag.package.as_ref().expect("the package");
    assert_eq!(
        (pkg.serial.as_str(), pkg.gtin.as_str(), pkg.shipped),
        ("P-0002", BERAS_GTIN, true)
    );
    // A GTIN-13 is the same number as its GTIN-14.
    let short = g
        .lookup_label("/01/8991234567891/10/B2/21/P-0003")
        .map(p::LookupLabelReply::from)
        .expect("gtin-13");
    assert_eq!(short.package.as_ref().map(|p| p.shipped), Some(false));
    // A lot of a product with a GTIN resolves before anything is packed.
    assert_eq!(
        g.lookup_label(&format!("/01/{BERAS_GTIN}/10/B1"))
            .map(p::LookupLabelReply::from)
            .expect("B1")
            .lot_id,
        "B1"
    );

    for wrong in [
        format!("/01/{OTHER_GTIN}/10/B2"),
        format!("/01/{OTHER_GTIN}/10/B2/21/P-0001"),
        format!("/01/{BERAS_GTIN}/10/B2/21/P-9999"),
        format!("/01/{BERAS_GTIN}/10/NOPE"),
        // Paddy has no GTIN and was never packed.
        format!("/01/{BERAS_GTIN}/10/G1"),
    ] {
        match g.lookup_label(&wrong).map(p::LookupLabelReply::from) {
            Err(GenealogyError::NotFound { what: "label", .. }) => {}
            other => panic!("{wrong}: expected a label not found, got {other:?}"),
        }
    }
    assert!(matches!(
        g.lookup_label("not a link").map(p::LookupLabelReply::from),
        Err(GenealogyError::InvalidArgument(_))
    ));
    assert!(matches!(
        g.backward_trace(
            &label_target(&format!("/01/{OTHER_GTIN}/10/B2")),
            0,
            TraceLimits::default()
        )
        .map(p::TraceReply::from),
        Err(GenealogyError::NotFound { .. })
    ));
}

#[test]
fn get_lot_shows_balances_status_and_details() {
    let log = scenario();
    let g = log.project();
    let g1 = g.get_lot("G1").map(p::Lot::from).expect("G1");
    assert_eq!(
        (g1.quantity.clone(), g1.balance.clone()),
        (pq("3", p::Unit::T), pq("0", p::Unit::T))
    );
    assert_eq!(g1.inspections.len(), 1);
    assert_eq!(g1.inspections[0].standard_name, "SNI 6128:2020 Premium");
    assert_eq!(g1.inspections[0].measurements.len(), 2);
    assert_eq!(g1.documents.len(), 1);
    assert_eq!(g1.documents[0].blake3, blake3::hash(b"DN-0001").to_hex().as_str());
    let origin = g1.origin.as_ref().expect("origin");
    assert_eq!((origin.place.as_str(), origin.plot_id.as_str()), ("Desa G1", "plot-7"));
    assert_eq!(g1.created_by, "rcv-g1");
    assert_eq!(
        g1.created_at,
        Some(jejak_proto::time_to_proto(Log::at(log.position("rcv-g1") as usize - 1)))
    );
    assert_eq!(g1.facility_name, "Pabrik Bersama Demak");

    let b1 = g.get_lot("B1").map(p::Lot::from).expect("B1");
    assert_eq!(b1.balance, pq("600", p::Unit::Kg));
    assert_eq!(b1.status, p::LotStatus::OnHold as i32);
    assert_eq!(
        (b1.owner_id.as_str(), b1.created_as.as_str(), b1.supplier_id.as_str()),
        ("ukm-sri", "milling", "")
    );
    let k1 = g.get_lot("K1").map(p::Lot::from).expect("K1");
    assert_eq!(k1.balance, pq("100", p::Unit::Pcs));

    let b2 = g.get_lot("B2").map(p::Lot::from).expect("B2");
    // 4000 kg − 15 kg packed − 1000 kg shipped in bulk.
    assert_eq!(b2.balance, pq("2985", p::Unit::Kg));
    assert_eq!(b2.packages.len(), 3);
    assert_eq!(b2.shipments.len(), 2);
    // The 1000 kg shipped in bulk were received at Kudus: nothing in transit.
    assert_eq!(in_transit(&g, "B2"), Decimal::ZERO);
    let kb2 = g.get_lot("KB2").map(p::Lot::from).expect("KB2");
    assert_eq!(kb2.verdict, p::Verdict::NonConformant as i32);
    assert_eq!(
        kb2.inspections[0].findings,
        ["moisture 15.2 % is above the maximum 14 %"]
    );
    assert!(!kb2.voided);
    assert!(matches!(
        g.get_lot("NOPE").map(p::Lot::from),
        Err(GenealogyError::NotFound { what: "lot", .. })
    ));
}

#[test]
fn voiding_a_processing_voids_its_outputs_and_restores_its_inputs() {
    let log = scenario();
    let before_void = Log {
        events: log.events[..log.position("void-dry") as usize - 1].to_vec(),
    };
    let g = before_void.project();
    assert_eq!(
        g.get_lot("G4").map(p::Lot::from).expect("G4").balance,
        pq("200", p::Unit::Kg)
    );
    assert!(!g.get_lot("D1").map(p::Lot::from).expect("D1").voided);
    assert_eq!(g.voided_by("dry"), None);

    let g = log.project();
    assert_eq!(
        g.get_lot("G4").map(p::Lot::from).expect("G4").balance,
        pq("500", p::Unit::Kg)
    );
    let d1 = g.get_lot("D1").map(p::Lot::from).expect("D1 is kept, marked voided");
    assert!(d1.voided);
    assert_eq!(d1.balance, pq("0", p::Unit::Kg));
    assert_eq!(g.voided_by("dry"), Some(("void-dry".into(), "wrong scale".into())));
    assert_eq!(g.voided_by("mill"), None);
    assert_eq!(g.event_position("void-dry"), Some(log.position("void-dry")));
    // The recall view still shows the voided output, marked as such.
    let fwd = forward(&g, lot_target("G4"));
    assert_eq!(nodes(&fwd), owned(&[(0, "G4"), (1, "D1")]));
    assert!(fwd.nodes[1].lot.as_ref().is_some_and(|l| l.voided));
}

#[test]
fn history_lists_every_event_that_touched_a_lot() {
    let log = scenario();
    let g = log.project();
    let at = |ids: &[&str]| ids.iter().map(|id| log.position(id)).collect::<Vec<_>>();
    assert_eq!(
        g.history_positions("G1").expect("G1"),
        at(&["rcv-g1", "insp-g1", "mill"])
    );
    assert_eq!(
        g.history_positions("B2").expect("B2"),
        at(&["grade", "pack-b2", "ship-pk", "ship-bulk", "rcv-kb2"])
    );
    assert_eq!(
        g.history_positions("B1").expect("B1"),
        at(&["mill", "grade", "hold-b1"])
    );
    assert_eq!(
        g.history_positions("G4").expect("G4"),
        at(&["rcv-g4", "dry", "void-dry"])
    );
    assert_eq!(g.history_positions("D1").expect("D1"), at(&["dry", "void-dry"]));
    assert_eq!(g.history_positions("KB2").expect("KB2"), at(&["rcv-kb2", "insp-kb2"]));
    assert!(g.history_positions("NOPE").is_err());
    assert_eq!(g.position(), log.events.len() as u64);
    assert_eq!(g.lot_count(), 10);
}

/// The scenario followed by a second pack and shipment of B2, both voided,
/// the voiding of the Kudus inspection, of a new receipt, and of the
/// transfer receipt at Kudus.
fn with_corrections() -> Log {
    let mut log = scenario();
    log.pack("pack-b2b", "B2", &[("P-0004", q("10", Unit::Kg))])
        .ship(
            "ship-b2b",
            "B2",
            Some(q("5", Unit::Kg)),
            &["P-0004"],
            "cust-pangan",
            "SJ-003",
        )
        .void("void-ship-b2b", DEMAK, "ship-b2b", "wrong truck")
        .void("void-pack-b2b", DEMAK, "pack-b2b", "wrong bag size")
        .void("void-insp-kb2", KUDUS, "insp-kb2", "sensor not calibrated")
        .receive(DEMAK, "G5", "gabah", q("750", Unit::Kg), "ukm-sri", "sup-tani")
        .void("void-rcv-g5", DEMAK, "rcv-g5", "duplicate delivery note")
        .void("void-rcv-kb2", KUDUS, "rcv-kb2", "received twice");
    log
}

#[test]
fn voiding_packs_shipments_and_inspections_undoes_them() {
    let log = with_corrections();
    let upto = |id: &str| Log {
        events: log.events[..log.position(id) as usize].to_vec(),
    };
    let g = upto("ship-b2b").project();
    let b2 = g.get_lot("B2").map(p::Lot::from).expect("B2");
    assert_eq!(b2.balance, pq("2970", p::Unit::Kg));
    assert_eq!((b2.packages.len(), b2.shipments.len()), (4, 3));
    assert!(b2.packages.iter().any(|p| p.serial == "P-0004" && p.shipped));

    assert_eq!(in_transit(&g, "B2"), dec("5"));

    let g = upto("void-ship-b2b").project();
    assert_eq!(in_transit(&g, "B2"), Decimal::ZERO);
    let b2 = g.get_lot("B2").map(p::Lot::from).expect("B2");
    assert_eq!(
        b2.balance,
        pq("2975", p::Unit::Kg),
        "the bulk 5 kg is back, the bag still packed"
    );
    assert_eq!(b2.shipments.len(), 2, "a voided shipment is not listed");
    assert!(b2.packages.iter().any(|p| p.serial == "P-0004" && !p.shipped));

    let g = log.project();
    let b2 = g.get_lot("B2").map(p::Lot::from).expect("B2");
    assert_eq!(b2.balance, pq("2985", p::Unit::Kg));
    assert_eq!(b2.packages.len(), 3);
    assert!(matches!(
        g.lookup_label(&format!("/01/{BERAS_GTIN}/10/B2/21/P-0004"))
            .map(p::LookupLabelReply::from),
        Err(GenealogyError::NotFound { .. })
    ));
    assert!(matches!(
        g.backward_trace(&serial_target("P-0004"), 0, TraceLimits::default())
            .map(p::TraceReply::from),
        Err(GenealogyError::NotFound { .. })
    ));
    assert_eq!(forward(&g, lot_target("B2")).packages.len(), 3);
    // The failed inspection no longer counts, but stays in the record.
    let kb2 = g.get_lot("KB2").map(p::Lot::from).expect("KB2");
    assert_eq!(kb2.verdict, p::Verdict::Unspecified as i32);
    assert!(kb2.inspections[0].voided);
    assert_eq!(
        g.voided_by("insp-kb2"),
        Some(("void-insp-kb2".into(), "sensor not calibrated".into()))
    );
    // Voided receipts: the lots stay, voided and empty.
    for lot in ["G5", "KB2"] {
        let l = g.get_lot(lot).map(p::Lot::from).expect("voided lot");
        assert!(l.voided, "{lot}");
        assert_eq!(l.balance, pq("0", p::Unit::Kg), "{lot}");
    }
    assert_eq!(
        g.history_positions("G5").expect("G5"),
        [log.position("rcv-g5"), log.position("void-rcv-g5")]
    );
    // Voiding the transfer puts its quantity back in transit, and touches the source.
    assert_eq!(in_transit(&g, "B2"), dec("1000"));
    // In transit to Kudus's operator, the consignee, and to nobody else.
    use jejak_domain::Facts;
    assert_eq!(g.in_transit_to("B2", "op-kudus"), dec("1000"));
    assert_eq!(g.in_transit_to("B2", "cust-pangan"), Decimal::ZERO);
    let received = upto("insp-kb2").project();
    assert_eq!(received.in_transit_to("B2", "op-kudus"), Decimal::ZERO);
    assert_eq!(
        g.history_positions("B2").expect("B2").last(),
        Some(&log.position("void-rcv-kb2"))
    );
}

#[test]
fn redelivered_and_duplicate_events_change_nothing() {
    let log = scenario();
    let mut g = log.project();
    let before = (
        backward(&g, lot_target("KB2")),
        forward(&g, lot_target("G1")),
        shares(&g, "B2"),
    );
    for e in log.applied() {
        g.apply(e);
    }
    // A later position carrying an event id already applied is ignored too.
    let (id, event) = &log.events[log.position("ship-bulk") as usize - 1];
    g.apply(AppliedEvent {
        position: log.events.len() as u64 + 1,
        event_id: id,
        recorded_at: Log::at(99),
        event,
        hash: *blake3::hash(id.as_bytes()).as_bytes(),
    });
    assert_eq!(g.position(), log.events.len() as u64 + 1);
    let after = (
        backward(&g, lot_target("KB2")),
        forward(&g, lot_target("G1")),
        shares(&g, "B2"),
    );
    assert_eq!(before, after);
    assert_eq!(
        g.get_lot("B2").map(p::Lot::from).expect("B2").balance,
        pq("2985", p::Unit::Kg)
    );
}

// ---------------------------------------------------------------------------
// Persistence and replay determinism.

/// Everything the queries answer about a log, for comparing projections.
fn answers(g: &Genealogy, log: &Log) -> Vec<String> {
    let mut out = Vec::new();
    let mut lots: Vec<String> = Vec::new();
    for (_, e) in &log.events {
        match e {
            Event::MaterialReceived(r) => lots.push(r.lot_id.clone()),
            Event::LotProcessed(p) => lots.extend(p.outputs.iter().map(|o| o.lot_id.clone())),
            _ => {}
        }
    }
    for lot in &lots {
        out.push(format!("{:?}", g.get_lot(lot).map(p::Lot::from)));
        out.push(format!("{:?}", backward(g, lot_target(lot))));
        out.push(format!("{:?}", forward(g, lot_target(lot))));
        out.push(format!("{:?}", shares(g, lot)));
        out.push(format!("{:?}", g.history_positions(lot)));
    }
    for (id, _) in &log.events {
        out.push(format!("{id}: {:?} {:?}", g.voided_by(id), g.event_position(id)));
    }
    out.push(format!(
        "{:?}",
        g.lookup_label(&format!("/01/{BERAS_GTIN}/10/B2/21/P-0001"))
            .map(p::LookupLabelReply::from)
    ));
    out.push(format!(
        "{:?}",
        g.lookup_label(&format!("/01/{BERAS_GTIN}/10/B2"))
            .map(p::LookupLabelReply::from)
    ));
    out
}

/// Opens the store again after a `Projection` was dropped (`Projection::open`
/// itself waits for sled to release the directory's lock).
fn reopen(dir: &std::path::Path) -> Projection {
    Projection::open(dir).expect("reopen projection")
}

/// Applies the log to a fresh projection in `batches` (lengths summing to
/// the log's), returning the projection.
fn persist(dir: &std::path::Path, log: &Log, batches: &[usize]) -> Projection {
    let proj = Projection::open(dir).expect("open projection");
    let applied = log.applied();
    let mut start = 0;
    for len in batches {
        proj.apply(&applied[start..start + len]).expect("apply batch");
        start += len;
    }
    assert_eq!(start, applied.len(), "batches cover the log");
    proj
}

#[test]
fn a_reopened_projection_answers_as_before() {
    let log = with_corrections();
    let dir = tempfile::tempdir().expect("temp dir");
    let n = log.events.len();
    let proj = persist(dir.path(), &log, &[10, 7, n - 17]);
    let digest = proj.digest().expect("digest");
    let status = proj.status();
    assert_eq!(status.position, n as u64);
    assert_eq!(status.lots, 11);
    let live = answers(&proj.read(), &log);
    // The store's answers are those of the plain in-memory genealogy.
    assert_eq!(live, answers(&log.project(), &log));
    proj.flush().expect("flush");
    drop(proj);

    let reopened = reopen(dir.path());
    assert_eq!(reopened.digest().expect("digest"), digest);
    assert_eq!(reopened.status(), status);
    let again = answers(&reopened.read(), &log);
    assert_eq!(again.len(), live.len());
    for (a, b) in live.iter().zip(&again) {
        assert_eq!(a, b);
    }
    // Trace replies are equal as messages, not only as text.
    assert_eq!(
        backward(&reopened.read(), lot_target("KB2")),
        backward(&log.project(), lot_target("KB2"))
    );
}

#[test]
fn a_trace_says_which_limit_cut_it() {
    let g = scenario().project();
    let reason = |r: &p::TraceReply| p::TraceTruncation::try_from(r.truncated_reason).expect("known reason");
    // KB2 reaches 7 lots over 3 levels.
    let whole = backward(&g, lot_target("KB2"));
    assert_eq!(
        (whole.nodes.len(), whole.truncated, reason(&whole)),
        (7, false, p::TraceTruncation::Unspecified)
    );
    let by_depth = g
        .backward_trace(&lot_target("KB2"), 1, TraceLimits::default())
        .map(p::TraceReply::from)
        .expect("trace");
    assert_eq!(
        (nodes(&by_depth), by_depth.truncated, reason(&by_depth)),
        (owned(&[(0, "KB2"), (1, "B2")]), true, p::TraceTruncation::MaxDepth)
    );
    // A request asks for fewer lots than the server allows.
    let limits = TraceLimits::default().with_max_nodes(3);
    assert_eq!(limits.max_nodes, 3);
    let by_nodes = g
        .backward_trace(&lot_target("KB2"), 0, limits)
        .map(p::TraceReply::from)
        .expect("trace");
    assert_eq!(
        (by_nodes.nodes.len(), by_nodes.truncated, reason(&by_nodes)),
        (3, true, p::TraceTruncation::MaxNodes)
    );
    assert_edges_within_nodes(&by_nodes);
    // Both limits cut: the node limit is the one to name.
    let both = g
        .backward_trace(&lot_target("KB2"), 2, TraceLimits::default().with_max_nodes(2))
        .map(p::TraceReply::from)
        .expect("trace");
    assert_eq!((both.nodes.len(), reason(&both)), (2, p::TraceTruncation::MaxNodes));
    // Exactly as many lots as the trace has is not a cut.
    let exact = g
        .backward_trace(&lot_target("KB2"), 0, TraceLimits::default().with_max_nodes(7))
        .map(p::TraceReply::from)
        .expect("trace");
    assert_eq!((exact.nodes.len(), exact.truncated), (7, false));
    // 0 asks for the server's maximum; more than it is lowered to it.
    let server = TraceLimits {
        max_depth: 64,
        max_nodes: 4,
    };
    assert_eq!(server.with_max_nodes(0).max_nodes, 4);
    assert_eq!(server.with_max_nodes(u32::MAX).max_nodes, 4);
    let capped = g
        .backward_trace(&lot_target("KB2"), 0, server.with_max_nodes(1_000))
        .map(p::TraceReply::from)
        .expect("trace");
    assert_eq!((capped.nodes.len(), reason(&capped)), (4, p::TraceTruncation::MaxNodes));
}

#[test]
fn truncated_traces_are_the_same_after_reopening() {
    let log = scenario();
    let dir = tempfile::tempdir().expect("temp dir");
    let proj = persist(dir.path(), &log, &[log.events.len()]);
    // The milling made DK1 and B1 (listed in that order): a trace cut after
    // two lots must keep the same one whether or not the store was reloaded.
    let limits = TraceLimits {
        max_depth: 64,
        max_nodes: 2,
    };
    let cut = |g: &Genealogy| {
        (
            g.forward_trace(&lot_target("G1"), 0, limits)
                .map(p::TraceReply::from)
                .expect("trace"),
            g.forward_trace(&lot_target("G2"), 0, limits)
                .map(p::TraceReply::from)
                .expect("trace"),
        )
    };
    let live = cut(&proj.read());
    // Children are taken in (position, lot id) order.
    assert_eq!(nodes(&live.0), owned(&[(0, "G1"), (1, "B1")]));
    assert!(live.0.truncated);
    assert_edges_within_nodes(&live.0);
    proj.flush().expect("flush");
    drop(proj);
    let reopened = reopen(dir.path());
    assert_eq!(cut(&reopened.read()), live);
    assert_eq!(cut(&log.project()), live);
}

#[test]
fn a_reopened_projection_continues_where_it_stopped() {
    let log = with_corrections();
    let applied = log.applied();
    let whole = tempfile::tempdir().expect("temp dir");
    let reference = persist(whole.path(), &log, &[applied.len()]);

    // Stop after the drying, before its correction and the packing.
    let split = log.position("dry") as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Projection::open(dir.path()).expect("open");
    first.apply(&applied[..split]).expect("first half");
    first.flush().expect("flush");
    drop(first);
    let second = reopen(dir.path());
    assert_eq!(second.position(), split as u64);
    // Redelivery from the start, as a projector catching up would do.
    second.apply(&applied).expect("the rest");
    assert_eq!(second.digest().expect("digest"), reference.digest().expect("digest"));
    assert_eq!(answers(&second.read(), &log), answers(&reference.read(), &log));
    assert_eq!(
        second.read().get_lot("G4").map(p::Lot::from).expect("G4").balance,
        pq("500", p::Unit::Kg)
    );
}

/// The digest of the log applied one event per batch, computed once.
fn one_at_a_time_digest() -> [u8; 32] {
    static DIGEST: OnceLock<[u8; 32]> = OnceLock::new();
    *DIGEST.get_or_init(|| {
        let log = with_corrections();
        let dir = tempfile::tempdir().expect("temp dir");
        let proj = persist(dir.path(), &log, &vec![1; log.events.len()]);
        proj.digest().expect("digest")
    })
}

#[test]
fn one_batch_and_one_event_per_batch_give_the_same_store() {
    let log = with_corrections();
    let dir = tempfile::tempdir().expect("temp dir");
    let proj = persist(dir.path(), &log, &[log.events.len()]);
    assert_eq!(proj.digest().expect("digest"), one_at_a_time_digest());
    // And a different log gives a different store.
    let other = tempfile::tempdir().expect("temp dir");
    let scenario = scenario();
    let proj = persist(other.path(), &scenario, &[scenario.events.len()]);
    assert_ne!(proj.digest().expect("digest"), one_at_a_time_digest());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The same events in any batch split give the same store; redelivering
    /// a batch already applied changes nothing.
    #[test]
    fn batching_and_redelivery_do_not_change_the_projection(
        cuts in proptest::collection::vec(any::<bool>(), with_corrections().events.len() - 1),
        redeliver in proptest::collection::vec(proptest::option::weighted(0.3, (any::<usize>(), any::<usize>())), with_corrections().events.len()),
    ) {
        let log = with_corrections();
        let applied = log.applied();
        let dir = tempfile::tempdir().expect("temp dir");
        let proj = Projection::open(dir.path()).expect("open projection");
        let mut start = 0;
        for end in 1..=applied.len() {
            if end < applied.len() && !cuts[end - 1] {
                continue;
            }
            proj.apply(&applied[start..end]).expect("apply batch");
            start = end;
            if let Some((a, b)) = redeliver[end - 1] {
                let before = proj.digest().expect("digest");
                let (a, b) = (a % end, b % end);
                let (a, b) = (a.min(b), a.max(b) + 1);
                proj.apply(&applied[a..b]).expect("redelivery");
                prop_assert_eq!(proj.digest().expect("digest"), before, "redelivering {}..{}", a, b);
                prop_assert_eq!(proj.position(), end as u64);
            }
        }
        prop_assert_eq!(proj.digest().expect("digest"), one_at_a_time_digest());
        prop_assert_eq!(answers(&proj.read(), &log), answers(&log.project(), &log));
    }
}

#[test]
fn a_step_named_received_is_still_a_step_and_a_receipt_stays_a_receipt() {
    let mut log = scenario();
    log.process(
        "proc-named-received",
        "received",
        &[("B2", q("100", Unit::Kg))],
        &[("R-STEP", "beras", q("100", Unit::Kg), "ukm-sri")],
    );
    assert_write_side_accepts(&log);
    let check = |g: &Genealogy| {
        let made = g.get_lot("R-STEP").map(p::Lot::from).expect("the step's output");
        assert_eq!(made.created_as, "received", "the step's name is kept as text");
        assert_eq!(made.made_by, p::Making::Processed as i32);
        let received = g.get_lot("G1").map(p::Lot::from).expect("a receipt");
        assert_eq!(received.created_as, "received");
        assert_eq!(received.made_by, p::Making::Received as i32);
    };
    check(&log.project());
    // And the same from the stored records.
    let dir = tempfile::tempdir().expect("temp dir");
    let n = log.events.len();
    let proj = persist(dir.path(), &log, &[n]);
    proj.flush().expect("flush");
    drop(proj);
    check(&reopen(dir.path()).read());
}

/// Lots are held in creation order (the snapshot finds a chunk's lots by
/// it). A store whose lots are out of that order (each chunk's records
/// reversed by hand here) loads through the sorted path: in order, and
/// answering as the live genealogy does.
#[test]
fn lots_stored_out_of_order_load_in_creation_order_and_answer_the_same() {
    use prost::Message;
    let in_order = |g: &Genealogy| {
        g.lots
            .windows(2)
            .all(|w| (w[0].created_position(), &w[0].id) < (w[1].created_position(), &w[1].id))
    };
    let log = with_corrections();
    let dir = tempfile::tempdir().expect("temp dir");
    let proj = persist(dir.path(), &log, &[log.events.len()]);
    proj.flush().expect("flush");
    drop(proj);
    let live = answers(&log.project(), &log);
    {
        let proj = reopen(dir.path());
        assert!(in_order(&proj.read()));
        assert_eq!(answers(&proj.read(), &log), live);
    }
    {
        let db = raw_store(dir.path());
        let tree = db.open_tree("genealogy").expect("the tree");
        let mut records = 0;
        for item in tree.scan_prefix(crate::store::LOT) {
            let (k, v) = item.expect("read");
            let mut rest = v.as_ref();
            let mut chunk = Vec::new();
            while !rest.is_empty() {
                chunk.push(crate::records::LotRecord::decode_length_delimited(&mut rest).expect("a lot record"));
            }
            records += chunk.len();
            let mut reversed = Vec::new();
            for r in chunk.iter().rev() {
                r.encode_length_delimited(&mut reversed).expect("encode");
            }
            tree.insert(k, reversed).expect("write");
        }
        assert!(records > 2, "{records}");
        db.flush().expect("flush");
    }
    let proj = reopen(dir.path());
    assert!(in_order(&proj.read()), "the lots are in creation order again");
    assert_eq!(answers(&proj.read(), &log), live);
}

#[test]
fn a_store_says_its_format_and_a_newer_one_is_refused_not_misread() {
    let log = scenario();
    let dir = tempfile::tempdir().expect("temp dir");
    let n = log.events.len();
    let proj = persist(dir.path(), &log, &[n]);
    proj.flush().expect("flush");
    drop(proj);
    {
        let db = raw_store(dir.path());
        let tree = db.open_tree("genealogy").expect("the tree");
        let format = tree.get(crate::store::FORMAT_KEY).expect("read").expect("a format");
        assert_eq!(format.as_ref(), crate::store::FORMAT.to_be_bytes());
        tree.insert(crate::store::FORMAT_KEY, &(crate::store::FORMAT + 1).to_be_bytes())
            .expect("write");
        db.flush().expect("flush");
    }
    match Projection::open(dir.path()) {
        Err(GenealogyError::Corrupt { reason, .. }) => {
            assert!(reason.contains("newer"), "{reason}");
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a store of a newer format was opened"),
    }
}

/// Shares as the public sees them: no fraction, whole percentages.
fn public_shares(g: &Genealogy, lot: &str) -> p::OriginSharesReply {
    g.origin_shares(&lot_target(lot), &|_| false, TraceLimits::default())
        .map(p::OriginSharesReply::from)
        .expect("origin shares")
}

#[test]
fn public_shares_are_whole_percentages_without_fractions() {
    let g = scenario().project();
    for lot in ["B2", "KB2", "G1"] {
        let exact = shares(&g, lot);
        let public = public_shares(&g, lot);
        for (list, exact_list) in [
            (&public.by_ukm, &exact.by_ukm),
            (&public.by_supplier, &exact.by_supplier),
            (&public.by_receipt, &exact.by_receipt),
        ] {
            let ids = |l: &[p::Share]| l.iter().map(|s| s.party_id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(list), ids(exact_list), "{lot}: the same parties, in the same order");
            assert!(list.iter().all(|s| s.fraction.is_empty()), "{lot}: {list:?}");
            let whole: Vec<u32> = list
                .iter()
                .map(|s| {
                    s.percent
                        .parse()
                        .unwrap_or_else(|_| panic!("{lot}: {:?} is whole", s.percent))
                })
                .collect();
            assert_eq!(whole.iter().sum::<u32>(), 100, "{lot}: {list:?}");
            // Each is its exact share rounded down or up.
            for (w, e) in whole.iter().zip(exact_list) {
                let e: f64 = e.percent.parse().expect("exact percent");
                assert!((f64::from(*w) - e).abs() < 1.0, "{lot}: {w} for {e}");
            }
        }
    }
}

/// A silo blended `steps` times: each step mixes the previous blend with a
/// new receipt of its own UKM.
fn blending_chain(steps: usize) -> Log {
    let mut log = scenario();
    for i in 0..=steps {
        let owner = if i % 2 == 0 { "ukm-sri" } else { "ukm-maju" };
        log.receive(
            DEMAK,
            &format!("R{i}"),
            "gabah",
            q(&(100 + i % 7).to_string(), Unit::Kg),
            owner,
            "sup-tani",
        );
    }
    let mut prev = "R0".to_string();
    for i in 1..=steps {
        let out = format!("BL{i}");
        log.process(
            &format!("blend-{i}"),
            "blending",
            &[
                (prev.as_str(), q("100", Unit::Kg)),
                (&format!("R{i}"), q("100", Unit::Kg)),
            ],
            &[(&out, "gabah", q("200", Unit::Kg), "ukm-sri")],
        );
        prev = out;
    }
    log
}

#[test]
fn shares_of_a_long_blending_chain_are_exact_and_bounded_by_the_lot_limit() {
    let steps = 300;
    let g = blending_chain(steps).project();
    let last = format!("BL{steps}");
    let exact = shares(&g, &last);
    assert_eq!(exact.by_receipt.len(), steps + 1);
    // The fractions are exact: they add up to one.
    let total: jejak_domain::shares::Fraction = exact
        .by_receipt
        .iter()
        .map(|s| {
            let (n, d) = s.fraction.split_once('/').unwrap_or((s.fraction.as_str(), "1"));
            jejak_domain::shares::Fraction::new(n.parse().expect("numerator"), d.parse().expect("denominator"))
        })
        .sum();
    assert_eq!(jejak_domain::shares::format_fraction(&total), "1");
    // The last receipt went in once at half; the first was halved at every step.
    let of = |id: &str| {
        exact
            .by_receipt
            .iter()
            .find(|s| s.party_id == id)
            .map(|s| s.fraction.clone())
    };
    assert_eq!(of(&format!("R{steps}")).as_deref(), Some("1/2"));
    assert_eq!(
        of("R0"),
        Some(format!("1/{}", num_bigint::BigInt::from(2).pow(steps as u32)))
    );
    let public = public_shares(&g, &last);
    assert_eq!(
        public.by_ukm.iter().map(|s| s.percent.as_str()).collect::<Vec<_>>(),
        ["67", "33"],
        "{public:?}"
    );
    // An ancestry beyond the server's lot limit is refused, not walked.
    let small = TraceLimits {
        max_nodes: 100,
        ..TraceLimits::default()
    };
    assert!(matches!(
        g.origin_shares(&lot_target(&last), &|_| false, small),
        Err(GenealogyError::TooLarge { limit: 100, .. })
    ));
}

#[test]
fn shares_stop_when_nobody_waits_for_them() {
    let g = blending_chain(200).project();
    let input = g
        .share_input(&lot_target("BL200"), TraceLimits::default())
        .expect("input");
    assert!(matches!(input.shares(true, &|| true), Err(GenealogyError::Cancelled)));
    assert!(input.shares(true, &|| false).is_ok());
}

/// What `capture` applied (a capture cache sharing the projection, on NATS)
/// is persisted by the projector's next `apply` once enough is unpersisted,
/// although that apply skips every event it is given (the cache applied
/// them already); and a reopened store holds each event once.
#[test]
fn what_capture_applied_is_persisted_by_an_apply_that_skips_it() {
    let parties: Vec<(String, Event)> = (0..crate::PERSIST_EVERY)
        .map(|i| {
            let id = format!("P{i}");
            let party = jejak_domain::Party {
                id: id.clone(),
                name: format!("UKM {i}"),
                roles: vec![jejak_domain::PartyRole::Ukm],
                district: "Demak".into(),
                contact: String::new(),
                gln: None,
            };
            (format!("ev-{id}"), Event::PartyRegistered(party))
        })
        .collect();
    let applied: Vec<AppliedEvent<'_>> = parties
        .iter()
        .enumerate()
        .map(|(i, (id, event))| AppliedEvent {
            position: i as u64 + 1,
            event_id: id,
            recorded_at: Log::at(i),
            event,
            hash: *blake3::hash(id.as_bytes()).as_bytes(),
        })
        .collect();
    let n = applied.len() as u64;
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let proj = Projection::open(dir.path()).expect("open projection");
        let (head, last) = applied.split_at(applied.len() - 1);
        proj.capture(|g| head.iter().for_each(|e| g.apply(*e)));
        // Below the threshold: the projector's apply of what the cache has
        // writes nothing yet.
        proj.apply(&applied[..10]).expect("apply");
        assert_eq!((proj.position(), proj.persisted_position()), (n - 1, 0));
        proj.capture(|g| g.apply(last[0]));
        proj.apply(&applied).expect("apply");
        proj.written().expect("the snapshot written");
        assert_eq!(proj.persisted_position(), n, "the threshold was reached");
        assert_eq!(proj.unpersisted(), 0);
    }
    let proj = reopen(dir.path());
    let status = proj.status();
    assert_eq!((status.position, status.events), (n, n));
}

/// The persist writes lot records without building prost's types
/// (`LotWriter`); what it writes must be prost's encoding of the record,
/// byte for byte, for every kind of lot: with an origin (plot, geometry,
/// area, country), documents, marks, inspections, packages, shipments,
/// a source lot, voided, and made by a step.
#[test]
fn lot_records_written_directly_are_prosts_encoding_of_the_record() {
    use jejak_domain::geo::{Geometry, Position};
    use prost::Message;
    let mut log = with_corrections();
    log.receive(DEMAK, "G6", "gabah", q("40", Unit::Kg), "ukm-sri", "sup-tani");
    if let Some((_, Event::MaterialReceived(r))) = log.events.iter_mut().find(|(id, _)| id == "rcv-g6") {
        let at = |lon: i64, lat: i64| Position {
            lon: Decimal::new(lon, 6),
            lat: Decimal::new(lat, 6),
        };
        let ring = vec![
            at(110_640_000, -6_890_000),
            at(110_641_000, -6_890_000),
            at(110_641_000, -6_891_000),
            at(110_640_000, -6_890_000),
        ];
        r.origin.geometry = Some(Geometry::Polygon(vec![ring]));
        r.origin.area_ha = Some(Decimal::new(125, 2));
        r.origin.producer_country = "ID".into();
        r.origin.place = "Desa Karanganyar".into();
    }
    let g = log.project();
    let mut writer = crate::records::LotWriter::default();
    let mut seen = [0usize; 10];
    for n in &g.lots {
        let record = crate::records::lot_to_record(&g, n);
        let mut written = Vec::new();
        writer.write(&g, n, &mut written);
        assert_eq!(written, record.encode_length_delimited_to_vec(), "lot {}", n.id);
        let d = n.detail();
        for (i, has) in [
            d.origin.plot.is_some(),
            d.origin.geometry.is_some() && d.origin.area_ha.is_some(),
            !d.documents.is_empty(),
            !d.marks.is_empty(),
            !d.inspections.is_empty(),
            !d.packages.is_empty(),
            !d.shipments.is_empty(),
            n.source_lot.is_some(),
            n.voided,
            matches!(n.made, crate::graph::Made::Step(_)) && !n.parents.is_empty(),
        ]
        .into_iter()
        .enumerate()
        {
            seen[i] += usize::from(has);
        }
    }
    assert!(seen.iter().all(|n| *n > 0), "every kind of lot is checked: {seen:?}");
}

/// A million events each keep one of these in memory: a void, which few
/// events have, is boxed rather than carried inline (80 bytes before).
#[test]
fn an_events_record_stays_small() {
    assert!(
        std::mem::size_of::<crate::graph::EventRef>() <= 48,
        "{}",
        std::mem::size_of::<crate::graph::EventRef>()
    );
}

/// A store of a stream's events (positions 4,096 apart, as single messages
/// give them) grouped by order keeps its lots and events in a few keys,
/// as a store of consecutive positions does, and answers as before when
/// opened again.
#[test]
fn a_store_chunked_by_order_keeps_sparse_positions_in_few_keys() {
    use crate::store::Chunking;
    let log = with_corrections();
    let sparse: Vec<AppliedEvent<'_>> = log
        .applied()
        .into_iter()
        .map(|e| AppliedEvent {
            position: (e.position << 12) | 4095,
            ..e
        })
        .collect();
    let n = sparse.len() as u64;
    let keys = |dir: &std::path::Path, prefix: &[u8]| {
        let db = raw_store(dir);
        let tree = db.open_tree("genealogy").expect("the tree");
        tree.scan_prefix(prefix).count()
    };
    for (chunking, events) in [(Chunking::Positions, &log.applied()), (Chunking::Ordinals, &sparse)] {
        let mut g = Genealogy::new();
        for e in events {
            g.apply(*e);
        }
        let live = answers(&g, &log);
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let proj = Projection::open_chunked(dir.path(), chunking).expect("open");
            proj.apply(&events[..7]).expect("apply");
            proj.persist().expect("persist");
            proj.apply(&events[7..]).expect("apply");
            proj.persist().expect("persist");
            proj.flush().expect("flush");
            assert_eq!(proj.status().events, n);
        }
        // 39 events, chunks of 32 records, however sparse the positions:
        // two chunks of events; the lots in two chunks of their creating
        // positions, or one of their order.
        let lot_chunks = match chunking {
            Chunking::Positions => 2,
            Chunking::Ordinals => 1,
        };
        assert_eq!(
            (keys(dir.path(), crate::store::LOT), keys(dir.path(), b"x/")),
            (lot_chunks, 2),
            "{chunking:?}"
        );
        let proj = Projection::open_chunked(dir.path(), chunking).expect("reopen");
        assert_eq!(proj.status().position, events[events.len() - 1].position);
        assert_eq!(answers(&proj.read(), &log), live, "{chunking:?}");
    }
}

/// A new store keeps its records in chunks small enough for sled to keep
/// its nodes inline, and says so; a store written before it said anything
/// (chunks of 1,024) is read and extended in its own chunks, never mixed.
#[test]
fn a_store_keeps_the_chunk_sizes_it_was_written_with() {
    use crate::store::{Chunking, CHUNKS_KEY, FIRST_CHUNK_SIZES};
    let log = with_corrections();
    let events = log.applied();
    let mut g = Genealogy::new();
    for e in &events {
        g.apply(*e);
    }
    let live = answers(&g, &log);
    let keys = |dir: &std::path::Path, prefix: &[u8]| {
        let db = raw_store(dir);
        let tree = db.open_tree("genealogy").expect("the tree");
        tree.scan_prefix(prefix).count()
    };
    let half = events.len() / 2;
    // An old store: written in chunks of 1,024, without the sizes.
    let old = tempfile::tempdir().expect("temp dir");
    {
        let proj = Projection::open_sized(old.path(), Chunking::Positions, FIRST_CHUNK_SIZES).expect("open");
        proj.apply(&events[..half]).expect("apply");
        proj.persist().expect("persist");
        proj.flush().expect("flush");
    }
    {
        let db = raw_store(old.path());
        let tree = db.open_tree("genealogy").expect("the tree");
        tree.remove(CHUNKS_KEY).expect("remove the sizes");
        db.flush().expect("flush");
    }
    // A new one, all through the current version.
    let new = tempfile::tempdir().expect("temp dir");
    for dir in [old.path(), new.path()] {
        {
            let proj = Projection::open_chunked(dir, Chunking::Positions).expect("open");
            proj.apply(&events).expect("apply");
            proj.persist().expect("persist");
            proj.flush().expect("flush");
        }
        let proj = Projection::open_chunked(dir, Chunking::Positions).expect("reopen");
        assert_eq!(proj.status().events, events.len() as u64);
        assert_eq!(answers(&proj.read(), &log), live);
    }
    let last = events[events.len() - 1].position;
    assert!(last > 32, "the log spans several small chunks ({last} positions)");
    assert_eq!(
        keys(old.path(), b"x/"),
        1,
        "the old store's events stay in one chunk of 1,024"
    );
    assert_eq!(
        keys(new.path(), b"x/") as u64,
        events
            .iter()
            .map(|e| e.position / 32)
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64,
        "the new store's events in chunks of 32 positions"
    );
}

/// The store's sled database, opened raw once the projection that had it
/// open has let go of its lock (sled releases it from a thread of its own).
fn raw_store(dir: &std::path::Path) -> sled::Db {
    crate::store::open_db(dir).expect("open the store")
}

#[test]
fn open_lots_are_the_newest_usable_of_each_facility_as_a_full_sort_gives_them() {
    let g = scenario().project();
    let facilities: Vec<String> = g.master_data().facilities.iter().map(|f| f.id.clone()).collect();
    let ids: Vec<&str> = facilities.iter().map(String::as_str).collect();
    // Every open lot of each facility, sorted newest first, then cut.
    let sorted = |limit: usize| -> Vec<String> {
        ids.iter()
            .flat_map(|f| {
                let at = g.names.lookup(f);
                let mut open: Vec<&crate::graph::LotNode> = g
                    .lots
                    .iter()
                    .filter(|n| Some(n.facility) == at && !n.voided && n.standing.usable() && n.balance > Decimal::ZERO)
                    .collect();
                open.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
                open.into_iter()
                    .take(limit)
                    .map(|n| n.id.to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert!(sorted(usize::MAX).len() >= 3, "the scenario has open lots to order");
    for limit in [0, 1, 2, 3, 100] {
        let got: Vec<String> = g.open_lots_at(&ids, limit).into_iter().map(|(id, _, _)| id).collect();
        assert_eq!(got, sorted(limit), "limit {limit}");
    }
    // A facility not known, or not asked for, adds nothing.
    assert!(g.open_lots_at(&["fac-nowhere"], 100).is_empty());
    assert!(g.open_lots_at(&[], 100).is_empty());
}

#[test]
fn a_lot_for_a_caller_who_does_not_see_it_leaves_out_only_its_dealings() {
    let g = scenario().project();
    let mut with_dealings = 0;
    for n in &g.lots {
        let full = g.get_lot(&n.id).expect("a lot");
        with_dealings += usize::from(!full.packages.is_empty() || !full.shipments.is_empty());
        let seen = g.get_lot_for(&n.id, &|_, _, _| true).expect("a lot");
        assert_eq!(seen, full);
        let unseen = g.get_lot_for(&n.id, &|_, _, _| false).expect("a lot");
        let expected = jejak_domain::read::LotView {
            documents: Vec::new(),
            packages: Vec::new(),
            shipments: Vec::new(),
            ..full
        };
        assert_eq!(unseen, expected);
    }
    assert!(with_dealings > 0, "the scenario packs or ships some lot");
    // The caller is asked about the lot's own parties.
    let lot = &g.lots[0];
    let asked = std::cell::RefCell::new(None);
    g.get_lot_for(&lot.id, &|f, o, s| {
        *asked.borrow_mut() = Some((f.to_string(), o.to_string(), s.map(str::to_string)));
        false
    })
    .expect("a lot");
    let (f, o, s) = g.lot_parties(&lot.id).expect("its parties");
    assert_eq!(
        asked.into_inner(),
        Some((f.to_string(), o.to_string(), s.map(str::to_string)))
    );
}
