//! Provenance bundles: one JSON file with everything needed to check a
//! product's story offline, and the check itself.
//!
//! ```json
//! {"format": "jejak-bundle/v1",
//!  "target": "https://id.example/01/…/10/…",
//!  "checkpoint": "<signed note, with cosignatures>",
//!  "entries": [{"leaf": "<base64 leaf data>",
//!               "proof": "c2sp.org/tlog-proof@v1\nindex …\n…\n\n<checkpoint>",
//!               "digests": ["<base64 field digest>", …],
//!               "disclosed": {"lot": {"value": "…", "salt": "<base64>"}, …}}],
//!  "claims": {"lot": "…", "lots": [...], "edges": [...], "shares": {...}}}
//! ```
//!
//! The verifier checks the checkpoint (log key, witness quorum), every
//! inclusion proof against it, every leaf against its digests and every
//! disclosed field against a digest; then rebuilds the genealogy's edges
//! and lots from the disclosed events alone and compares them with the
//! claims, and, when quantities are disclosed, checks mass balance and
//! recomputes the exact origin shares.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jejak_domain::shares::{format_fraction, from_decimal, Fraction};
use jejak_domain::{Quantity, Unit};
use num_traits::{One, Zero};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{verify_checkpoint, Checkpoint, TlogProof};
use crate::commit;
use crate::merkle::Hash;
use crate::note::Verifier;

/// The format line of a bundle.
pub const FORMAT: &str = "jejak-bundle/v1";
/// Largest bundle the verifier reads.
pub const MAX_BUNDLE: usize = 64 * 1024 * 1024;

/// One disclosed field: its value and its salt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosed {
    pub value: String,
    pub salt: String,
}

/// One event behind the product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub leaf: String,
    pub proof: String,
    pub digests: Vec<String>,
    pub disclosed: BTreeMap<String, Disclosed>,
}

/// A lot as the claims name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedLot {
    pub lot: String,
    pub product: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub supplier: String,
}

/// A consumption as the claims name it: `input` went into `output` by `event`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClaimedEdge {
    pub input: String,
    pub output: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<String>,
}

/// One origin share as claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedShare {
    pub id: String,
    pub name: String,
    pub percent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedShares {
    pub by_ukm: Vec<ClaimedShare>,
    pub by_supplier: Vec<ClaimedShare>,
    pub by_receipt: Vec<ClaimedShare>,
}

/// What the server says of the product: its trace and origin shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub lot: String,
    pub lots: Vec<ClaimedLot>,
    pub edges: Vec<ClaimedEdge>,
    pub shares: ClaimedShares,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub format: String,
    pub target: String,
    pub checkpoint: String,
    pub entries: Vec<Entry>,
    pub claims: Claims,
}

/// Who the verifier trusts.
#[derive(Debug, Clone)]
pub struct Policy {
    pub log: Verifier,
    pub witnesses: Vec<Verifier>,
    pub quorum: usize,
}

/// Why a bundle is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The file is not a bundle (exit status 2).
    #[error("malformed bundle at {at}: {why}")]
    Malformed { at: String, why: String },
    /// The bundle does not verify (exit status 1).
    #[error("does not verify at {at}: {why}")]
    Failed { at: String, why: String },
}

fn malformed(at: impl Into<String>, why: impl Into<String>) -> BundleError {
    BundleError::Malformed {
        at: at.into(),
        why: why.into(),
    }
}

fn failed(at: impl Into<String>, why: impl Into<String>) -> BundleError {
    BundleError::Failed {
        at: at.into(),
        why: why.into(),
    }
}

/// What a bundle proves, and what it withholds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub proven: Vec<String>,
    pub withheld: Vec<String>,
}

/// One verified event: its disclosed fields by path.
struct Event<'a> {
    at: String,
    fields: &'a BTreeMap<String, Disclosed>,
}

impl Event<'_> {
    fn get(&self, path: &str) -> Option<&str> {
        self.fields.get(path).map(|d| d.value.as_str())
    }

    /// `prefix.N.name` for N = 0, 1, … while present (the list's items in order).
    fn list(&self, prefix: &str, name: &str) -> Vec<(usize, &str)> {
        let mut out = Vec::new();
        for (path, d) in self.fields.range(format!("{prefix}.")..) {
            let Some(rest) = path.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
                break;
            };
            if let Some((n, field)) = rest.split_once('.') {
                if field == name {
                    if let Ok(n) = n.parse::<usize>() {
                        out.push((n, d.value.as_str()));
                    }
                }
            }
        }
        out.sort_by_key(|(n, _)| *n);
        out
    }

    fn item(&self, prefix: &str, n: usize, name: &str) -> Option<&str> {
        self.get(&format!("{prefix}.{n}.{name}"))
    }
}

fn hash_of(at: &str, text: &str) -> Result<Hash, BundleError> {
    B64.decode(text)
        .ok()
        .and_then(|h| Hash::try_from(h).ok())
        .ok_or_else(|| malformed(at, "not a base64 SHA-256 hash"))
}

/// Parses a bundle; a malformed one names the line and column, or the field.
pub fn parse(text: &str) -> Result<Bundle, BundleError> {
    if text.len() > MAX_BUNDLE {
        return Err(malformed("the file", format!("larger than {MAX_BUNDLE} bytes")));
    }
    let bundle: Bundle = serde_json::from_str(text)
        .map_err(|e| malformed(format!("line {} column {}", e.line(), e.column()), e.to_string()))?;
    if bundle.format != FORMAT {
        return Err(malformed("format", format!("{:?} is not {FORMAT:?}", bundle.format)));
    }
    Ok(bundle)
}

fn quantity(at: &str, text: &str) -> Result<Quantity, BundleError> {
    let (value, unit) = text
        .split_once(' ')
        .ok_or_else(|| malformed(at, format!("{text:?} is not a quantity (\"12.5 kg\")")))?;
    let unit: Unit = unit.parse().map_err(|e| malformed(at, format!("{e}")))?;
    Quantity::parse(at, value, unit).map_err(|e| malformed(at, format!("{e}")))
}

/// Checks a bundle against a policy; what it proves, or where it fails.
pub fn verify(text: &str, policy: &Policy) -> Result<Report, BundleError> {
    let bundle = parse(text)?;
    let mut report = Report::default();
    let trusted = verify_checkpoint(&bundle.checkpoint, &policy.log, &policy.witnesses, policy.quorum)
        .map_err(|e| failed("checkpoint", e.to_string()))?;
    let cp: &Checkpoint = &trusted.checkpoint;
    let cosigners: Vec<&str> = trusted.cosigners.iter().map(|(n, _)| n.as_str()).collect();
    report.proven.push(format!(
        "checkpoint of {} at tree size {}, signed by the log's key{}",
        cp.origin,
        cp.size,
        match cosigners.len() {
            0 => String::from(" (no witness cosignature checked)"),
            n => format!(
                " and cosigned by {n} witness{} ({})",
                if n == 1 { "" } else { "es" },
                cosigners.join(", ")
            ),
        }
    ));

    let mut events = Vec::with_capacity(bundle.entries.len());
    let mut indexes = BTreeSet::new();
    let (mut shown, mut hidden) = (0usize, 0usize);
    for (i, entry) in bundle.entries.iter().enumerate() {
        let at = format!("entries[{i}]");
        let leaf = B64
            .decode(&entry.leaf)
            .map_err(|_| malformed(format!("{at}.leaf"), "not base64"))?;
        let digests = entry
            .digests
            .iter()
            .enumerate()
            .map(|(k, d)| hash_of(&format!("{at}.digests[{k}]"), d))
            .collect::<Result<Vec<Hash>, _>>()?;
        if !digests.windows(2).all(|w| w[0] < w[1]) {
            return Err(failed(
                format!("{at}.digests"),
                "the digests are not sorted and distinct",
            ));
        }
        if commit::leaf(&digests) != leaf {
            return Err(failed(
                format!("{at}.leaf"),
                "the leaf does not commit to these field digests",
            ));
        }
        let proof = TlogProof::parse(&entry.proof).map_err(|e| malformed(format!("{at}.proof"), e))?;
        // Byte for byte: every signature in it is the bundle's, checked above.
        if proof.checkpoint != bundle.checkpoint {
            return Err(failed(
                format!("{at}.proof"),
                "its checkpoint is not the bundle's checkpoint",
            ));
        }
        proof.verify_leaf(&leaf, cp).map_err(|e| {
            failed(
                format!("{at}.proof"),
                format!("leaf {} is not in the tree: {e}", proof.index),
            )
        })?;
        if !indexes.insert(proof.index) {
            return Err(failed(
                format!("{at}.proof"),
                format!("leaf {} appears twice", proof.index),
            ));
        }
        for (path, d) in &entry.disclosed {
            let fat = format!("{at}.disclosed.{path}");
            let salt: [u8; 16] = B64
                .decode(&d.salt)
                .ok()
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| malformed(format!("{fat}.salt"), "not 16 bytes of base64"))?;
            if digests.binary_search(&commit::digest(&salt, path, &d.value)).is_err() {
                return Err(failed(
                    fat,
                    format!("the value {:?} does not match any committed digest", d.value),
                ));
            }
        }
        shown += entry.disclosed.len();
        hidden += digests.len().saturating_sub(entry.disclosed.len());
        events.push(Event {
            at,
            fields: &entry.disclosed,
        });
    }
    report.proven.push(format!(
        "{} events are in the log under this checkpoint; {shown} of their fields are disclosed and match their commitments",
        events.len()
    ));
    if hidden > 0 {
        report.withheld.push(format!(
            "{hidden} fields stay commitments (not disclosed to this caller)"
        ));
    }
    check_claims(&bundle.claims, &events, &mut report)?;
    Ok(report)
}

/// A consumption: input lot, output lot, event.
type EdgeKey = (String, String, String);
/// Consumptions and what each consumed, when disclosed.
type Edges = BTreeMap<EdgeKey, Option<Quantity>>;

/// A lot as the disclosed events make it.
#[derive(Default)]
struct Made {
    product: Option<String>,
    owner: Option<String>,
    supplier: Option<String>,
    quantity: Option<Quantity>,
    at: String,
}

fn check_claims(claims: &Claims, events: &[Event<'_>], report: &mut Report) -> Result<(), BundleError> {
    // Voided events, by the voids among the disclosed events.
    let voided: BTreeSet<&str> = events
        .iter()
        .filter(|e| e.get("kind") == Some("EventVoided"))
        .filter_map(|e| e.get("voided_event"))
        .collect();
    let mut made: HashMap<String, Made> = HashMap::new();
    // input → output: (event, quantity consumed, where); None when withheld.
    let mut edges: Edges = BTreeMap::new();
    // Edges of inputs of another kind of measure than the event's first
    // input (thread, glue, screws): they carry no origin share.
    let mut no_share: BTreeSet<EdgeKey> = BTreeSet::new();
    let mut withheld_ids = 0usize;
    for e in events {
        let Some(kind) = e.get("kind") else {
            continue;
        };
        let id = e.get("event_id");
        if id.is_some_and(|id| voided.contains(id)) {
            continue;
        }
        match kind {
            "MaterialReceived" => {
                let Some(lot) = e.get("lot") else { continue };
                let q = e
                    .get("quantity")
                    .map(|q| quantity(&format!("{}.disclosed.quantity", e.at), q))
                    .transpose()?;
                made.insert(
                    lot.to_string(),
                    Made {
                        product: e.get("product").map(str::to_string),
                        owner: e.get("owner").map(str::to_string),
                        supplier: e.get("supplier").map(str::to_string),
                        quantity: q,
                        at: e.at.clone(),
                    },
                );
                if let Some(source) = e.get("source_lot") {
                    let Some(id) = id else {
                        withheld_ids += 1;
                        continue;
                    };
                    edges.insert((source.to_string(), lot.to_string(), id.to_string()), q);
                }
            }
            "LotProcessed" => {
                let outputs = e.list("outputs", "lot");
                for &(n, lot) in &outputs {
                    let q = e
                        .item("outputs", n, "quantity")
                        .map(|q| quantity(&format!("{}.disclosed.outputs.{n}.quantity", e.at), q))
                        .transpose()?;
                    made.insert(
                        lot.to_string(),
                        Made {
                            product: e.item("outputs", n, "product").map(str::to_string),
                            owner: e.item("outputs", n, "owner").map(str::to_string),
                            supplier: None,
                            quantity: q,
                            at: e.at.clone(),
                        },
                    );
                }
                let Some(id) = id else {
                    withheld_ids += 1;
                    continue;
                };
                let mut first_dimension = None;
                for (k, (n, input)) in e.list("inputs", "lot").into_iter().enumerate() {
                    let q = e
                        .item("inputs", n, "quantity")
                        .map(|q| quantity(&format!("{}.disclosed.inputs.{n}.quantity", e.at), q))
                        .transpose()?;
                    let unit = match e.item("inputs", n, "unit") {
                        Some(u) => Some(u.parse::<Unit>().map_err(|err| {
                            malformed(format!("{}.disclosed.inputs.{n}.unit", e.at), err.to_string())
                        })?),
                        None => q.map(|q| q.unit()),
                    };
                    let dimension = unit.map(|u| u.dimension());
                    if k == 0 {
                        first_dimension = dimension;
                    }
                    let carries = match (first_dimension, dimension) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    };
                    for &(_, output) in &outputs {
                        let key = (input.to_string(), output.to_string(), id.to_string());
                        if !carries {
                            no_share.insert(key.clone());
                        }
                        edges.insert(key, q);
                    }
                }
            }
            _ => {}
        }
    }
    if withheld_ids > 0 {
        report.withheld.push(format!(
            "{withheld_ids} transformations or transfers without a disclosed event id"
        ));
    }

    // The claimed edges are exactly those the disclosed events make, among the claimed lots.
    let lots: BTreeSet<&str> = claims.lots.iter().map(|l| l.lot.as_str()).collect();
    let rebuilt: BTreeSet<(&str, &str, &str)> = edges
        .keys()
        .filter(|(i, o, _)| lots.contains(i.as_str()) && lots.contains(o.as_str()))
        .map(|(i, o, e)| (i.as_str(), o.as_str(), e.as_str()))
        .collect();
    let claimed: BTreeSet<(&str, &str, &str)> = claims
        .edges
        .iter()
        .map(|e| (e.input.as_str(), e.output.as_str(), e.event.as_str()))
        .collect();
    if let Some((i, o, ev)) = claimed.difference(&rebuilt).next() {
        let k = claims
            .edges
            .iter()
            .position(|e| (e.input.as_str(), e.output.as_str(), e.event.as_str()) == (*i, *o, *ev));
        return Err(failed(
            format!("claims.edges[{}]", k.unwrap_or(0)),
            format!("no disclosed, unvoided event {ev} turns lot {i} into lot {o}"),
        ));
    }
    if let Some((i, o, ev)) = rebuilt.difference(&claimed).next() {
        return Err(failed(
            "claims.edges",
            format!("the disclosed event {ev} turns lot {i} into lot {o}, which the claims leave out"),
        ));
    }
    for (k, l) in claims.lots.iter().enumerate() {
        let at = format!("claims.lots[{k}]");
        let m = made
            .get(&l.lot)
            .ok_or_else(|| failed(&at, format!("no disclosed, unvoided event makes lot {}", l.lot)))?;
        for (what, claimed, disclosed) in [
            ("product", &l.product, &m.product),
            ("owner", &l.owner, &m.owner),
            ("supplier", &l.supplier, &m.supplier),
        ] {
            if let Some(d) = disclosed {
                if d != claimed {
                    return Err(failed(
                        format!("{at}.{what}"),
                        format!("claimed {claimed:?}, but {} says {d:?}", m.at),
                    ));
                }
            }
        }
    }
    if !lots.contains(claims.lot.as_str()) {
        return Err(failed(
            "claims.lot",
            format!("lot {} is not among the claimed lots", claims.lot),
        ));
    }
    report.proven.push(format!(
        "the trace of lot {}: {} lots and {} consumptions, rebuilt from the disclosed events, match the claims",
        claims.lot,
        lots.len(),
        claimed.len()
    ));

    check_share_parties(claims, &edges, &no_share, &made)?;
    report
        .proven
        .push("the origin shares name exactly the UKM, suppliers and receipts the disclosed events lead to".into());

    // Quantities: mass balance and exact shares, when every one is disclosed.
    let all_quantities =
        edges.values().all(Option::is_some) && lots.iter().all(|l| made.get(*l).is_some_and(|m| m.quantity.is_some()));
    if !all_quantities {
        report
            .withheld
            .push("quantities: mass balance and exact origin shares cannot be recomputed".into());
        return Ok(());
    }
    // One consumption per input and event, however many lots the event made.
    let mut consumptions: BTreeMap<(&str, &str), Quantity> = BTreeMap::new();
    for ((input, _, event), q) in &edges {
        if let (Some(q), true) = (q, lots.contains(input.as_str())) {
            consumptions.insert((input.as_str(), event.as_str()), *q);
        }
    }
    let mut consumed: HashMap<&str, Fraction> = HashMap::new();
    for ((input, _), q) in &consumptions {
        *consumed.entry(input).or_insert_with(Fraction::zero) += from_decimal(q.to_base());
    }
    for (lot, used) in &consumed {
        let Some(made_q) = made.get(*lot).and_then(|m| m.quantity) else {
            continue;
        };
        if *used > from_decimal(made_q.to_base()) {
            return Err(failed(
                format!("lot {lot}"),
                format!(
                    "mass balance: {} {} consumed of {} made",
                    format_fraction(used),
                    made_q.unit().base(),
                    made_q
                ),
            ));
        }
    }
    report.proven.push(format!(
        "mass balance: no lot of the trace gave more than was made of it ({} lots consumed)",
        consumed.len()
    ));
    check_shares(claims, &edges, &no_share, &made, report)
}

/// The receipts the claimed lot comes from (lots of its ancestry without
/// inputs), by the disclosed events alone.
fn receipts<'a>(root: &'a str, edges: &'a Edges, no_share: &BTreeSet<EdgeKey>) -> BTreeSet<&'a str> {
    let mut inputs: HashMap<&str, Vec<&str>> = HashMap::new();
    for key @ (input, output, _) in edges.keys() {
        if !no_share.contains(key) {
            inputs.entry(output.as_str()).or_default().push(input.as_str());
        }
    }
    let (mut seen, mut out, mut stack) = (BTreeSet::new(), BTreeSet::new(), vec![root]);
    while let Some(lot) = stack.pop() {
        if !seen.insert(lot) {
            continue;
        }
        match inputs.get(lot) {
            Some(list) => stack.extend(list.iter().copied()),
            None => {
                out.insert(lot);
            }
        }
    }
    out
}

/// The parties and receipts the shares name are those the disclosed
/// events lead to (whether or not the quantities are disclosed).
fn check_share_parties(
    claims: &Claims,
    edges: &Edges,
    no_share: &BTreeSet<EdgeKey>,
    made: &HashMap<String, Made>,
) -> Result<(), BundleError> {
    let leaves = receipts(&claims.lot, edges, no_share);
    let of = |key: &dyn Fn(&Made, &str) -> Option<String>| -> Option<BTreeSet<String>> {
        leaves.iter().map(|l| made.get(*l).and_then(|m| key(m, l))).collect()
    };
    let checks = [
        ("by_ukm", &claims.shares.by_ukm, of(&|m, _| m.owner.clone())),
        (
            "by_supplier",
            &claims.shares.by_supplier,
            of(&|m, _| Some(m.supplier.clone().unwrap_or_default())),
        ),
        ("by_receipt", &claims.shares.by_receipt, of(&|_, l| Some(l.to_string()))),
    ];
    for (what, claimed, derived) in checks {
        // Withheld parties: nothing to compare.
        let Some(derived) = derived else { continue };
        let claimed_ids: BTreeSet<String> = claimed.iter().map(|s| s.id.clone()).collect();
        if let Some(extra) = claimed_ids.difference(&derived).next() {
            return Err(failed(
                format!("claims.shares.{what}"),
                format!(
                    "{extra:?} is claimed, but no disclosed receipt of lot {} is theirs",
                    claims.lot
                ),
            ));
        }
        if let Some(missing) = derived.difference(&claimed_ids).next() {
            return Err(failed(
                format!("claims.shares.{what}"),
                format!(
                    "{missing:?} has a receipt in lot {}'s ancestry, but no claimed share",
                    claims.lot
                ),
            ));
        }
    }
    Ok(())
}

/// Recomputes the exact origin shares from the disclosed quantities: each
/// lot passes its share to its inputs in proportion to what it consumed
/// (only inputs of the first input's dimension carry a share).
fn check_shares(
    claims: &Claims,
    edges: &Edges,
    no_share: &BTreeSet<EdgeKey>,
    made: &HashMap<String, Made>,
    report: &mut Report,
) -> Result<(), BundleError> {
    let mut inputs: HashMap<&str, Vec<(&str, Quantity)>> = HashMap::new();
    for (key @ (input, output, _), q) in edges {
        if let (Some(q), false) = (q, no_share.contains(key)) {
            inputs.entry(output.as_str()).or_default().push((input.as_str(), *q));
        }
    }
    // Lots reachable from the claimed lot, and how many consumers each has among them.
    let mut reach: BTreeSet<&str> = BTreeSet::new();
    let mut stack = vec![claims.lot.as_str()];
    while let Some(lot) = stack.pop() {
        if reach.insert(lot) {
            stack.extend(inputs.get(lot).into_iter().flatten().map(|(i, _)| *i));
        }
    }
    let mut consumers: HashMap<&str, usize> = HashMap::new();
    for lot in &reach {
        for (input, _) in inputs.get(lot).into_iter().flatten() {
            *consumers.entry(input).or_default() += 1;
        }
    }
    // Each lot passes its weight on once all its consumers have passed theirs.
    let mut weight: HashMap<&str, Fraction> = HashMap::new();
    weight.insert(claims.lot.as_str(), Fraction::one());
    let mut ready = vec![claims.lot.as_str()];
    let mut leaves: Vec<(&str, Fraction)> = Vec::new();
    while let Some(lot) = ready.pop() {
        let w = weight.remove(lot).unwrap_or_else(Fraction::zero);
        let list = inputs.get(lot).map(Vec::as_slice).unwrap_or_default();
        if list.is_empty() {
            leaves.push((lot, w));
            continue;
        }
        let dim = list.first().map(|(_, q)| q.dimension());
        let carrying: Vec<_> = list.iter().filter(|(_, q)| Some(q.dimension()) == dim).collect();
        let total: Fraction = carrying.iter().map(|(_, q)| from_decimal(q.to_base())).sum();
        for (input, q) in list {
            if !total.is_zero() && Some(q.dimension()) == dim {
                *weight.entry(input).or_insert_with(Fraction::zero) += &w * from_decimal(q.to_base()) / &total;
            }
            let left = consumers.entry(input).or_default();
            *left = left.saturating_sub(1);
            if *left == 0 {
                ready.push(input);
            }
        }
    }
    let group = |key: &dyn Fn(&Made, &str) -> String| {
        let mut m: BTreeMap<String, Fraction> = BTreeMap::new();
        for (lot, w) in &leaves {
            let k = made.get(*lot).map(|mm| key(mm, lot)).unwrap_or_default();
            *m.entry(k).or_insert_with(Fraction::zero) += w;
        }
        m
    };
    let checks = [
        (
            "by_ukm",
            &claims.shares.by_ukm,
            group(&|m, _| m.owner.clone().unwrap_or_default()),
        ),
        (
            "by_supplier",
            &claims.shares.by_supplier,
            group(&|m, _| m.supplier.clone().unwrap_or_default()),
        ),
        (
            "by_receipt",
            &claims.shares.by_receipt,
            group(&|_, lot| lot.to_string()),
        ),
    ];
    for (what, claimed, computed) in checks {
        let claimed_map: BTreeMap<&str, Option<&str>> =
            claimed.iter().map(|s| (s.id.as_str(), s.fraction.as_deref())).collect();
        for (id, f) in &computed {
            match claimed_map.get(id.as_str()) {
                None => {
                    return Err(failed(
                        format!("claims.shares.{what}"),
                        format!(
                            "{id} has a share of {} by the disclosed quantities, but is not claimed",
                            format_fraction(f)
                        ),
                    ))
                }
                Some(Some(c)) if *c != format_fraction(f) => {
                    return Err(failed(
                        format!("claims.shares.{what}.{id}"),
                        format!("claimed {c}, the disclosed quantities give {}", format_fraction(f)),
                    ))
                }
                _ => {}
            }
        }
        if let Some(extra) = claimed_map.keys().find(|id| !computed.contains_key(**id)) {
            return Err(failed(
                format!("claims.shares.{what}.{extra}"),
                "claimed, but no disclosed receipt gives it a share",
            ));
        }
    }
    report.proven.push(format!(
        "exact origin shares recomputed from the disclosed quantities match the claims ({} receipts)",
        leaves.len()
    ));
    Ok(())
}
