//! Trace queries over the in-memory genealogy: backward and forward traces,
//! origin shares, lot details and label lookups, answered as the domain's read models.

use std::collections::{HashMap, HashSet, VecDeque};

use jejak_domain::gs1::DigitalLink;
use jejak_domain::read::{
    self, Inspection, LabelLookup, LotView, Making, Named, OriginShares, PackageView, ShipmentView, Trace, TraceEdge,
    TraceNode, Truncation,
};

use jejak_domain::{Decimal, Quantity, Target};

use crate::graph::{Genealogy, Ix, LotNode, Made, PackageRec, NO_SUPPLIER};
use crate::shares::{ShareInput, ShareLot};
use crate::GenealogyError;

/// A lot's facility, owner and (for receipts) supplier ids.
pub type LotParties<'a> = (&'a str, &'a str, Option<&'a str>);

/// Bounds on the size of one trace answer.
#[derive(Debug, Clone, Copy)]
pub struct TraceLimits {
    /// Deepest level followed; deeper lots are cut and the reply marked truncated.
    pub max_depth: u32,
    /// Most lots in one reply.
    pub max_nodes: usize,
}

impl TraceLimits {
    /// The limits of one request asking for at most `max_nodes` lots: never
    /// more than the server's maximum; 0 asks for the maximum.
    pub fn with_max_nodes(self, max_nodes: u32) -> TraceLimits {
        let max_nodes = match usize::try_from(max_nodes) {
            Ok(0) | Err(_) => self.max_nodes,
            Ok(n) => n.min(self.max_nodes),
        };
        TraceLimits { max_nodes, ..self }
    }
}

impl Default for TraceLimits {
    fn default() -> Self {
        TraceLimits {
            max_depth: 64,
            max_nodes: 20_000,
        }
    }
}

fn qty(base: Decimal, unit: jejak_domain::Unit) -> Quantity {
    read::in_unit(base, unit)
}

impl Genealogy {
    fn party(&self, id: &str) -> Named {
        Named::new(id, self.parties.get(id).map(|p| p.name.clone()).unwrap_or_default())
    }

    fn package_view(&self, n: &LotNode, pk: &PackageRec) -> PackageView {
        let gtin = self.names.get(pk.gtin).to_string();
        let label = jejak_domain::gs1::Gtin::parse(&gtin)
            .ok()
            .and_then(|g| DigitalLink::new(g, n.id.to_string(), Some(pk.serial.to_string())).ok())
            .map(|dl| dl.path())
            .unwrap_or_default();
        PackageView {
            serial: pk.serial.to_string(),
            gtin,
            quantity: Some(qty(pk.quantity, n.unit)),
            label,
            shipped: pk.shipped,
            event_id: Some(pk.event_id.to_string()),
        }
    }

    fn shipments_of(&self, n: &LotNode) -> Vec<ShipmentView> {
        n.detail()
            .shipments
            .iter()
            .filter(|s| !s.voided)
            .map(|s| ShipmentView {
                event_id: s.event_id.to_string(),
                lot_id: n.id.to_string(),
                consignee: self.party(self.names.get(s.consignee)),
                quantity: s.quantity.map(|q| qty(q, n.unit)),
                serials: s.serials.iter().map(|x| x.to_string()).collect(),
                document: s.document.clone(),
                facility_id: self.names.get(n.facility).to_string(),
                at: s.at,
                dds_reference: s.dds_reference.clone(),
            })
            .collect()
    }

    /// A lot as the genealogy knows it; `with_detail` adds measurements,
    /// documents, packages and shipments (a trace lists lots without them).
    pub(crate) fn lot_view(&self, ix: Ix, with_detail: bool) -> LotView {
        self.lot_view_with(ix, with_detail, with_detail)
    }

    /// A lot's view with its measurements (`with_detail`) and, apart, its
    /// documents, packages and shipments (`dealings`): a view for a
    /// caller who does not see the lot in full keeps the measurements and
    /// drops the rest, which need not be built (a pack names up to 10,000
    /// packages, each a Digital Link).
    fn lot_view_with(&self, ix: Ix, with_detail: bool, dealings: bool) -> LotView {
        let n = self.node(ix);
        let product = self.names.get(n.product);
        let facility = self.names.get(n.facility);
        let inspections = n
            .detail()
            .inspections
            .iter()
            .map(|i| {
                let standard = self.names.get(i.standard);
                Inspection {
                    event_id: Some(i.event_id.to_string()),
                    standard: Named::new(
                        standard,
                        self.standards.get(standard).map(|s| s.name.clone()).unwrap_or_default(),
                    ),
                    verdict: i.verdict,
                    measurements: if with_detail {
                        i.measurements.clone()
                    } else {
                        Vec::new()
                    },
                    findings: i.findings.clone(),
                    at: i.at,
                    voided: i.voided,
                }
            })
            .collect();
        LotView {
            lot_id: n.id.to_string(),
            product: Named::new(
                product,
                self.products.get(product).map(|x| x.name.clone()).unwrap_or_default(),
            ),
            facility: Named::new(
                facility,
                self.facilities
                    .get(facility)
                    .map(|x| x.name.clone())
                    .unwrap_or_default(),
            ),
            owner: self.party(self.names.get(n.owner)),
            supplier: (n.supplier != NO_SUPPLIER).then(|| self.party(self.names.get(n.supplier))),
            quantity: Some(qty(n.quantity, n.unit)),
            balance: Some(qty(n.balance, n.unit)),
            status: n.standing.status,
            verdict: n.standing.verdict,
            hold_released: n.standing.hold_released,
            inspections,
            origin: n.detail().origin.clone(),
            documents: if dealings {
                n.detail().documents.clone()
            } else {
                Vec::new()
            },
            created_by: Some(n.created_by.to_string()),
            made: match n.made {
                Made::Received => Making::Received,
                Made::Step(step) => Making::Step(self.names.get(step).to_string()),
            },
            created_at: n.created_at,
            source_lot: n.source_lot.map(|s| self.node(s).id.to_string()),
            packages: if dealings {
                n.detail()
                    .packages
                    .iter()
                    .filter(|pk| !pk.voided)
                    .map(|pk| self.package_view(n, pk))
                    .collect()
            } else {
                Vec::new()
            },
            shipments: if dealings { self.shipments_of(n) } else { Vec::new() },
            voided: n.voided,
        }
    }

    fn lot_ix_or_404(&self, id: &str) -> Result<Ix, GenealogyError> {
        self.lot_ix(id).ok_or_else(|| GenealogyError::NotFound {
            what: "lot",
            id: id.to_string(),
        })
    }

    /// The lot a Digital Link names and, with a serial, its package.
    fn resolve_link(&self, dl: &DigitalLink) -> Result<(Ix, Option<PackageView>), GenealogyError> {
        let not_found = || GenealogyError::NotFound {
            what: "label",
            id: dl.path(),
        };
        let ix = self.lot_ix(&dl.lot).ok_or_else(not_found)?;
        let n = self.node(ix);
        let gtin = dl.gtin.as_str();
        let product_gtin = self
            .products
            .get(self.names.get(n.product))
            .and_then(|p| p.gtin.as_ref());
        let gtin_matches = product_gtin.is_some_and(|g| g.as_str() == gtin)
            || n.detail()
                .packages
                .iter()
                .any(|pk| !pk.voided && self.names.get(pk.gtin) == gtin);
        if !gtin_matches {
            return Err(not_found());
        }
        let package = match &dl.serial {
            None => None,
            Some(serial) => {
                let pk = n
                    .detail()
                    .packages
                    .iter()
                    .find(|pk| !pk.voided && *pk.serial == **serial && self.names.get(pk.gtin) == gtin)
                    .ok_or_else(not_found)?;
                Some(self.package_view(n, pk))
            }
        };
        Ok((ix, package))
    }

    fn resolve_target(&self, target: &Target) -> Result<(Ix, Option<PackageView>), GenealogyError> {
        match target {
            Target::Lot(id) => Ok((self.lot_ix_or_404(id)?, None)),
            Target::Serial(serial) => {
                let ix = *self
                    .serials
                    .get(serial.as_str())
                    .ok_or_else(|| GenealogyError::NotFound {
                        what: "package serial",
                        id: serial.clone(),
                    })?;
                let n = self.node(ix);
                // A voided packing leaves its serials unusable but no longer a package.
                let pk = n
                    .detail()
                    .packages
                    .iter()
                    .find(|pk| !pk.voided && *pk.serial == **serial)
                    .map(|pk| self.package_view(n, pk))
                    .ok_or_else(|| GenealogyError::NotFound {
                        what: "package serial",
                        id: serial.clone(),
                    })?;
                Ok((ix, Some(pk)))
            }
            Target::Label(link) => self.resolve_link(link),
        }
    }

    /// Every input lot down to the receipts, with the consumptions between them.
    pub fn backward_trace(
        &self,
        target: &Target,
        max_depth: u32,
        limits: TraceLimits,
    ) -> Result<Trace, GenealogyError> {
        let (root, package) = self.resolve_target(target)?;
        self.walk(root, package, max_depth, limits, true)
    }

    /// Every lot, package and consignee a lot reached.
    pub fn forward_trace(&self, target: &Target, max_depth: u32, limits: TraceLimits) -> Result<Trace, GenealogyError> {
        let (root, package) = self.resolve_target(target)?;
        self.walk(root, package, max_depth, limits, false)
    }

    fn walk(
        &self,
        root: Ix,
        package: Option<PackageView>,
        max_depth: u32,
        limits: TraceLimits,
        up: bool,
    ) -> Result<Trace, GenealogyError> {
        let depth_limit = if max_depth == 0 {
            limits.max_depth
        } else {
            max_depth.min(limits.max_depth)
        };
        // The root is always listed.
        let node_limit = limits.max_nodes.max(1);
        let mut depth: HashMap<Ix, u32> = HashMap::with_capacity(256);
        let mut order: Vec<Ix> = Vec::with_capacity(256);
        let mut queue = VecDeque::with_capacity(256);
        let mut edges = Vec::with_capacity(256);
        let (mut cut_by_depth, mut cut_by_nodes) = (false, false);
        depth.insert(root, 0);
        order.push(root);
        queue.push_back(root);
        while let Some(ix) = queue.pop_front() {
            let d = depth[&ix];
            let n = self.node(ix);
            let has_links = if up {
                !n.parents.is_empty()
            } else {
                !n.children.is_empty()
            };
            if !has_links {
                continue;
            }
            if d >= depth_limit {
                cut_by_depth = true;
                continue;
            }
            // (the other lot, the edge between them: always the output's input edge)
            let links: Vec<(Ix, &crate::graph::Edge)> = if up {
                n.parents.iter().map(|e| (e.lot, e)).collect()
            } else {
                n.children
                    .iter()
                    .filter_map(|c| self.node(*c).parents.iter().find(|e| e.lot == ix).map(|e| (*c, e)))
                    .collect()
            };
            for (other, e) in links {
                if !depth.contains_key(&other) {
                    if depth.len() >= node_limit {
                        // Cut: no edge to a lot the reply does not list.
                        cut_by_nodes = true;
                        continue;
                    }
                    depth.insert(other, d + 1);
                    order.push(other);
                    queue.push_back(other);
                }
                let (input, output) = if up { (other, ix) } else { (ix, other) };
                let input_node = self.node(input);
                let output_node = self.node(output);
                edges.push(TraceEdge {
                    input: input_node.id.to_string(),
                    output: output_node.id.to_string(),
                    quantity: Some(qty(e.quantity, input_node.unit)),
                    event_id: output_node.created_by.to_string(),
                    step: self.names.get(e.step).to_string(),
                });
            }
        }
        let mut nodes: Vec<TraceNode> = order
            .iter()
            .map(|ix| TraceNode {
                lot: self.lot_view(*ix, false),
                depth: depth[ix],
            })
            .collect();
        nodes.sort_by(|a, b| a.depth.cmp(&b.depth).then_with(|| a.lot.lot_id.cmp(&b.lot.lot_id)));
        edges.sort_by(|a, b| (&a.output, &a.input).cmp(&(&b.output, &b.input)));
        let (mut packages, mut shipments) = (Vec::new(), Vec::new());
        if !up {
            for ix in &order {
                let n = self.node(*ix);
                packages.extend(
                    n.detail()
                        .packages
                        .iter()
                        .filter(|pk| !pk.voided)
                        .map(|pk| self.package_view(n, pk)),
                );
                shipments.extend(self.shipments_of(n));
            }
            packages.sort_by(|a, b| a.serial.cmp(&b.serial));
            shipments.sort_by(|a, b| (a.at, &a.event_id).cmp(&(b.at, &b.event_id)));
        }
        Ok(Trace {
            root: self.node(root).id.to_string(),
            package,
            nodes,
            edges,
            packages,
            shipments,
            truncated: if cut_by_nodes {
                Some(Truncation::MaxNodes)
            } else if cut_by_depth {
                Some(Truncation::MaxDepth)
            } else {
                None
            },
        })
    }

    /// The lots `root` was made from, `root` first and every lot before
    /// its inputs (a reversed post-order of the ancestry); `None` when there
    /// are more than `limit`.
    fn ancestry(&self, root: Ix, limit: usize) -> Option<Vec<Ix>> {
        let mut seen: HashSet<Ix> = HashSet::with_capacity(64);
        let mut post = Vec::with_capacity(64);
        // (lot, inputs already pushed)
        let mut stack = vec![(root, false)];
        seen.insert(root);
        while let Some((ix, expanded)) = stack.pop() {
            if expanded {
                post.push(ix);
                continue;
            }
            stack.push((ix, true));
            for e in &self.node(ix).parents {
                if seen.insert(e.lot) {
                    if seen.len() > limit {
                        return None;
                    }
                    stack.push((e.lot, false));
                }
            }
        }
        post.reverse();
        Some(post)
    }

    /// What origin shares are computed from, copied out of the genealogy
    /// (so that exact shares, which can take long, are computed without
    /// holding its lock): the ancestry of `target`, of at most
    /// `limits.max_nodes` lots, with each lot's inputs and parties.
    pub fn share_input(&self, target: &Target, limits: TraceLimits) -> Result<ShareInput, GenealogyError> {
        let (root, _) = self.resolve_target(target)?;
        let order = self
            .ancestry(root, limits.max_nodes)
            .ok_or_else(|| GenealogyError::TooLarge {
                lot: self.node(root).id.to_string(),
                limit: limits.max_nodes,
            })?;
        let at: HashMap<Ix, usize> = order.iter().enumerate().map(|(i, ix)| (*ix, i)).collect();
        let lots = order
            .iter()
            .map(|&ix| {
                let n = self.node(ix);
                // Only inputs of the first input's dimension carry a share
                // (thread, glue or screws do not dilute the main material).
                let dim = n.parents.first().map(|e| self.node(e.lot).unit.dimension());
                let owner = self.party(self.names.get(n.owner));
                ShareLot {
                    inputs: n
                        .parents
                        .iter()
                        .filter(|e| Some(self.node(e.lot).unit.dimension()) == dim)
                        .filter_map(|e| Some((*at.get(&e.lot)?, e.quantity)))
                        .collect(),
                    facility: self.names.get(n.facility).to_string(),
                    receipt: Named::new(
                        n.id.to_string(),
                        format!(
                            "{} ({})",
                            self.products
                                .get(self.names.get(n.product))
                                .map(|p| p.name.as_str())
                                .unwrap_or(""),
                            owner.name
                        ),
                    ),
                    owner,
                    supplier: (n.supplier != NO_SUPPLIER).then(|| self.party(self.names.get(n.supplier))),
                }
            })
            .collect();
        Ok(ShareInput {
            lot_id: self.node(root).id.to_string(),
            lots,
        })
    }

    /// Origin shares of a lot by UKM, by supplier and by receipt: exact when
    /// `exact` holds for the parties of every lot of its ancestry, whole
    /// percentages otherwise (see [`ShareInput::shares`]).
    pub fn origin_shares(
        &self,
        target: &Target,
        exact: &dyn Fn(&mut dyn Iterator<Item = LotParties<'_>>) -> bool,
        limits: TraceLimits,
    ) -> Result<OriginShares, GenealogyError> {
        let input = self.share_input(target, limits)?;
        let exact = exact(&mut input.parties());
        input.shares(exact, &|| false)
    }

    /// A lot's facility, owner and supplier ids, for deciding who sees it.
    pub fn lot_parties(&self, id: &str) -> Option<LotParties<'_>> {
        let n = self.node(self.lot_ix(id)?);
        Some((
            self.names.get(n.facility),
            self.names.get(n.owner),
            (n.supplier != NO_SUPPLIER).then(|| self.names.get(n.supplier)),
        ))
    }

    /// A lot with all its details.
    pub fn get_lot(&self, id: &str) -> Result<LotView, GenealogyError> {
        Ok(self.lot_view(self.lot_ix_or_404(id)?, true))
    }

    /// A lot with its documents, packages and shipments only if `sees`
    /// (given its facility, owner and supplier) says the caller sees it in
    /// full; its other details in any case.
    pub fn get_lot_for(
        &self,
        id: &str,
        sees: &dyn Fn(&str, &str, Option<&str>) -> bool,
    ) -> Result<LotView, GenealogyError> {
        let ix = self.lot_ix_or_404(id)?;
        Ok(self.lot_view_with(ix, true, self.seen(ix, sees)))
    }

    fn seen(&self, ix: Ix, sees: &dyn Fn(&str, &str, Option<&str>) -> bool) -> bool {
        let n = self.node(ix);
        sees(
            self.names.get(n.facility),
            self.names.get(n.owner),
            (n.supplier != NO_SUPPLIER).then(|| self.names.get(n.supplier)),
        )
    }

    /// Resolves a label to its lot and package.
    pub fn lookup_label(&self, uri: &str) -> Result<LabelLookup, GenealogyError> {
        self.lookup_label_for(uri, &|_, _, _| true)
    }

    /// Resolves a label to its lot (its dealings as [`Genealogy::get_lot_for`])
    /// and package.
    pub fn lookup_label_for(
        &self,
        uri: &str,
        sees: &dyn Fn(&str, &str, Option<&str>) -> bool,
    ) -> Result<LabelLookup, GenealogyError> {
        let dl = DigitalLink::parse(uri).map_err(|e| GenealogyError::InvalidArgument(format!("label: {e}")))?;
        self.lookup_link_for(&dl, sees)
    }

    /// What a Digital Link names: its lot (its dealings as
    /// [`Genealogy::get_lot_for`]) and, with a serial, its package.
    pub fn lookup_link_for(
        &self,
        dl: &DigitalLink,
        sees: &dyn Fn(&str, &str, Option<&str>) -> bool,
    ) -> Result<LabelLookup, GenealogyError> {
        let (ix, package) = self.resolve_link(dl)?;
        Ok(LabelLookup {
            link: dl.clone(),
            lot: self.lot_view_with(ix, true, self.seen(ix, sees)),
            package,
        })
    }

    /// Log positions of the events that touched a lot, oldest first.
    pub fn history_positions(&self, id: &str) -> Result<Vec<u64>, GenealogyError> {
        Ok(self.node(self.lot_ix_or_404(id)?).history.clone())
    }

    /// The correction that voided an event, if any: (void event id, reason).
    pub fn voided_by(&self, event_id: &str) -> Option<(String, String)> {
        self.events
            .get(event_id)
            .and_then(|e| e.voided_by.as_deref())
            .map(|(id, r)| (id.to_string(), r.clone()))
    }

    /// Every party, facility, product and quality standard registered,
    /// each list sorted by id (for exports of master data).
    pub fn master_data(&self) -> MasterData<'_> {
        fn sorted<T>(map: &std::collections::HashMap<String, T>) -> Vec<&T> {
            let mut v: Vec<(&String, &T)> = map.iter().collect();
            v.sort_by(|a, b| a.0.cmp(b.0));
            v.into_iter().map(|(_, t)| t).collect()
        }
        MasterData {
            parties: sorted(&self.parties),
            facilities: sorted(&self.facilities),
            products: sorted(&self.products),
            standards: sorted(&self.standards),
        }
    }

    /// Lots at each of `facilities` that can still be used (not voided,
    /// usable standing, something left), at most `limit` each, newest
    /// first (by occurrence, then lot id), a facility's after the one
    /// before it: (lot id, product id, what is left). For the console's
    /// pickers: one walk over the lots for all of them, with no list of
    /// every open lot built and sorted.
    pub fn open_lots_at(&self, facilities: &[&str], limit: usize) -> Vec<(String, String, jejak_domain::Quantity)> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        // Newest first: the greater (created_at, Reverse(id)) the better.
        // One pass over the lots, each facility's `limit` best kept in a
        // heap whose top is the worst kept.
        type Kept<'a> = BinaryHeap<Reverse<(jejak_domain::Time, Reverse<&'a str>, usize)>>;
        let wanted: Vec<Option<u32>> = facilities.iter().map(|f| self.names.lookup(f)).collect();
        let mut kept: Vec<Kept<'_>> = facilities.iter().map(|_| BinaryHeap::new()).collect();
        if limit == 0 {
            return Vec::new();
        }
        for (i, n) in self.lots.iter().enumerate() {
            if n.voided || !n.standing.usable() || n.balance <= Decimal::ZERO {
                continue;
            }
            let Some(slot) = wanted.iter().position(|w| *w == Some(n.facility)) else {
                continue;
            };
            let heap = &mut kept[slot];
            heap.push(Reverse((n.created_at, Reverse(&*n.id), i)));
            if heap.len() > limit {
                heap.pop();
            }
        }
        kept.into_iter()
            .flat_map(|heap| heap.into_sorted_vec())
            .map(|Reverse((_, _, i))| {
                let n = &self.lots[i];
                (
                    n.id.to_string(),
                    self.names.get(n.product).to_string(),
                    qty(n.balance, n.unit),
                )
            })
            .collect()
    }

    /// The log position of an event, if the projection has applied it.
    pub fn event_position(&self, event_id: &str) -> Option<u64> {
        self.events.get(event_id).map(|e| e.position)
    }
}

/// The registered master data, sorted by id.
#[derive(Debug, Clone)]
pub struct MasterData<'a> {
    pub parties: Vec<&'a jejak_domain::Party>,
    pub facilities: Vec<&'a jejak_domain::Facility>,
    pub products: Vec<&'a jejak_domain::Product>,
    pub standards: Vec<&'a jejak_domain::QualityStandard>,
}
