//! Provenance bundles as the read side builds them: every event behind a
//! lot (the events of every lot of its backward trace, and the voids of
//! those events), each with its inclusion proof against one published
//! checkpoint, the fields the caller's view discloses, and the claimed
//! trace and origin shares, narrowed by the same view.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jejak_domain::read::{OriginShares, Share, Trace};
use jejak_domain::shares::format_fraction;
use jejak_domain::Target;
use jejak_log::tlog::{self as commit_log, commitment, Published};
use jejak_log::{ReadLog, StoredEvent};
use jejak_verify::bundle::{
    Bundle, ClaimedEdge, ClaimedLot, ClaimedShare, ClaimedShares, Claims, Disclosed, Entry, FORMAT,
};
use jejak_verify::checkpoint::TlogProof;
use jejak_verify::commit;

use crate::{ReadError, Reader, View};

/// How long a bundle waits for a checkpoint that covers the lot's latest events.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(3);

impl<L: ReadLog> Reader<L> {
    /// The provenance bundle of a lot or label, as `view` may see it.
    pub async fn bundle(&self, view: &View, target: &Target, name: &str) -> Result<Bundle, ReadError> {
        let t = self.tlog()?.clone();
        let (target, limits, v) = (target.clone(), self.limits(), view.clone());
        let (found, position) = self
            .off_workers(move |projection, gone| {
                let g = projection.read();
                let trace = g.backward_trace(&target, limits.max_depth, limits)?;
                if let Some(t) = &trace.truncated {
                    return Err(ReadError::Transparency(format!(
                        "the trace of lot {} is larger than one bundle may hold ({t:?}); ask for one of its inputs",
                        trace.root
                    )));
                }
                let mut positions = BTreeSet::new();
                let mut seen = HashSet::new();
                for n in &trace.nodes {
                    positions.extend(g.history_positions(&n.lot.lot_id)?);
                    if v.sees(&n.lot) {
                        seen.insert(n.lot.lot_id.clone());
                    }
                }
                let input = g.share_input(&target, limits)?;
                let position = g.position();
                drop(g);
                let exact = v.sees_all(&mut input.parties());
                let shares = input.shares(exact, gone)?;
                Ok::<_, ReadError>(((v.trace(trace), shares, positions, seen), position))
            })
            .await??;
        let (trace, shares, mut positions, seen) = found;
        self.visible(position).await?;
        let mut stored: BTreeMap<u64, StoredEvent> = BTreeMap::new();
        let mut pace = crate::reader::Pacer::default();
        for &pos in &positions {
            pace.step().await;
            stored.insert(pos, self.log().read(pos).await?.ok_or(ReadError::Missing(pos))?);
        }
        // The voids of those events.
        let voids: Vec<u64> = {
            let g = self.projection().read();
            stored
                .values()
                .filter_map(|e| g.voided_by(&e.envelope.event_id))
                .filter_map(|(id, _)| g.event_position(&id))
                .collect()
        };
        for pos in voids {
            pace.step().await;
            if positions.insert(pos) {
                stored.insert(pos, self.log().read(pos).await?.ok_or(ReadError::Missing(pos))?);
            }
        }
        // One checkpoint covering every one of them.
        let mut indexes = BTreeMap::new();
        for &pos in stored.keys() {
            pace.step().await;
            let index = t.tree.index_of(pos)?;
            indexes.insert(pos, index);
        }
        let needed = indexes
            .values()
            .map(|i| i.map_or(u64::MAX, |i| i + 1))
            .max()
            .unwrap_or(0);
        let published = self.covering(&t, needed).await?;
        let checkpoint = &published.checkpoint;
        let mut commitments: Vec<(u64, commit_log::Commitment)> = Vec::with_capacity(stored.len());
        for (pos, e) in &stored {
            pace.step().await;
            commitments.push((*pos, commitment(e)?));
        }
        // The lots each event is about; a void is about the lots of the event it voids.
        let lots_of =
            |c: &commit_log::Commitment| -> Vec<String> { c.fields.iter().filter_map(|f| f.lot.clone()).collect() };
        let by_id: std::collections::HashMap<String, Vec<String>> = commitments
            .iter()
            .filter_map(|(_, c)| {
                let id = c.fields.iter().find(|f| f.path == "event_id")?.value.clone();
                Some((id, lots_of(c)))
            })
            .collect();
        let mut entries = Vec::with_capacity(stored.len());
        for (pos, c) in &commitments {
            pace.step().await;
            let index = indexes
                .get(pos)
                .copied()
                .flatten()
                .ok_or_else(|| ReadError::Transparency(format!("log position {pos} is not in the tree yet")))?;
            let mut event_lots = lots_of(c);
            if let Some(voided) = c.fields.iter().find(|f| f.path == "voided_event") {
                event_lots.extend(by_id.get(&voided.value).cloned().unwrap_or_default());
            }
            // A field of no lot goes to whoever sees every lot of its event (none: nobody but the full view).
            let sees_event = !event_lots.is_empty() && event_lots.iter().all(|l| seen.contains(l));
            let salts = commit::salts(&c.secret, c.fields.len());
            let disclosed = c
                .fields
                .iter()
                .zip(salts)
                .filter(|(f, _)| view.discloses(f, &|l| seen.contains(l), sees_event))
                .map(|(f, salt)| {
                    (
                        f.path.clone(),
                        Disclosed {
                            value: f.value.clone(),
                            salt: B64.encode(salt),
                        },
                    )
                })
                .collect();
            let proof = TlogProof {
                extra: None,
                index,
                path: t.tree.inclusion_proof(index, checkpoint.size)?,
                checkpoint: published.note.clone(),
            };
            entries.push(Entry {
                leaf: B64.encode(&c.leaf),
                proof: proof.format(),
                digests: c.digests.iter().map(|d| B64.encode(d)).collect(),
                disclosed,
            });
        }
        Ok(Bundle {
            format: FORMAT.into(),
            target: name.to_string(),
            checkpoint: published.note.clone(),
            entries,
            claims: claims(&trace, &shares),
        })
    }

    /// The published checkpoint, once it covers `size` leaves.
    async fn covering(
        &self,
        t: &jejak_log::tlog::Transparency,
        size: u64,
    ) -> Result<std::sync::Arc<Published>, ReadError> {
        let mut rx = t.published.clone();
        let found = tokio::time::timeout(CHECKPOINT_WAIT, async {
            rx.wait_for(|p| p.as_ref().is_some_and(|p| p.checkpoint.size >= size))
                .await
                .ok()
                .and_then(|p| p.clone())
        })
        .await;
        match found {
            Ok(Some(p)) => Ok(p),
            _ => Err(ReadError::Transparency(
                "the transparency log has not yet signed a checkpoint that covers this lot's latest events; ask again in a few seconds"
                    .into(),
            )),
        }
    }
}

fn claimed_shares(list: &[Share]) -> Vec<ClaimedShare> {
    list.iter()
        .map(|s| ClaimedShare {
            id: s.id.clone(),
            name: s.name.clone(),
            percent: s.percent.clone(),
            fraction: s.fraction.as_ref().map(format_fraction),
        })
        .collect()
}

fn claims(trace: &Trace, shares: &OriginShares) -> Claims {
    Claims {
        lot: trace.root.clone(),
        lots: trace
            .nodes
            .iter()
            .map(|n| ClaimedLot {
                lot: n.lot.lot_id.clone(),
                product: n.lot.product.id.clone(),
                owner: n.lot.owner.id.clone(),
                supplier: n.lot.supplier.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
            })
            .collect(),
        edges: trace
            .edges
            .iter()
            .map(|e| ClaimedEdge {
                input: e.input.clone(),
                output: e.output.clone(),
                event: e.event_id.clone(),
                quantity: e.quantity.map(|q| commit::quantity(&q)),
            })
            .collect(),
        shares: ClaimedShares {
            by_ukm: claimed_shares(&shares.by_ukm),
            by_supplier: claimed_shares(&shares.by_supplier),
            by_receipt: claimed_shares(&shares.by_receipt),
        },
    }
}

/// An inclusion proof of one event.
#[derive(Debug, Clone)]
pub struct Inclusion {
    pub index: u64,
    pub size: u64,
    pub leaf: Vec<u8>,
    pub path: Vec<jejak_verify::merkle::Hash>,
    /// As a tlog-proof, when against the published checkpoint.
    pub tlog_proof: Option<String>,
}

impl<L: ReadLog> Reader<L> {
    fn tlog(&self) -> Result<&jejak_log::tlog::Transparency, ReadError> {
        self.transparency()
            .ok_or_else(|| ReadError::Transparency("this server keeps no transparency log".into()))
    }

    /// The last published checkpoint.
    pub fn checkpoint(&self) -> Result<std::sync::Arc<Published>, ReadError> {
        self.tlog()?
            .published()
            .ok_or_else(|| ReadError::Transparency("no checkpoint has been published yet".into()))
    }

    fn size_or_published(&self, size: u64) -> Result<u64, ReadError> {
        let t = self.tlog()?;
        let size = match size {
            0 => self.checkpoint()?.checkpoint.size,
            n => n,
        };
        if size > t.tree.size() {
            return Err(ReadError::Invalid(jejak_domain::DomainError::invalid(
                "tree_size",
                format!("the log has {} leaves, not {size}", t.tree.size()),
            )));
        }
        Ok(size)
    }

    /// The inclusion proof of an event, against `size` leaves (0: the
    /// published checkpoint).
    pub async fn prove_inclusion(&self, event_id: &str, size: u64) -> Result<Inclusion, ReadError> {
        let t = self.tlog()?.clone();
        let size = self.size_or_published(size)?;
        let position = self
            .projection()
            .read()
            .event_position(event_id)
            .ok_or_else(|| ReadError::Invalid(jejak_domain::DomainError::not_found("event", event_id)))?;
        let index = match t.tree.index_of(position)? {
            Some(i) if i < size => i,
            // The caller asked about a tree too small to hold it: its mistake.
            Some(i) => {
                return Err(ReadError::Invalid(jejak_domain::DomainError::invalid(
                    "tree_size",
                    format!("event {event_id} is leaf {i}, beyond a tree of {size} leaves; ask for a larger tree"),
                )))
            }
            // The tree has not reached it yet: ask again shortly.
            None => {
                return Err(ReadError::Transparency(format!(
                    "event {event_id} is not in the transparency log yet"
                )))
            }
        };
        let (_, leaf) = t.tree.entry(index)?;
        let path = t.tree.inclusion_proof(index, size)?;
        let tlog_proof = t.published().filter(|p| p.checkpoint.size == size).map(|p| {
            TlogProof {
                extra: None,
                index,
                path: path.clone(),
                checkpoint: p.note.clone(),
            }
            .format()
        });
        Ok(Inclusion {
            index,
            size,
            leaf,
            path,
            tlog_proof,
        })
    }

    /// The consistency proof from `first` to `second` leaves (0: the published checkpoint's).
    pub fn prove_consistency(
        &self,
        first: u64,
        second: u64,
    ) -> Result<(u64, Vec<jejak_verify::merkle::Hash>), ReadError> {
        let t = self.tlog()?;
        let second = self.size_or_published(second)?;
        if first > second {
            return Err(ReadError::Invalid(jejak_domain::DomainError::invalid(
                "first_size",
                format!("{first} is larger than the second size {second}"),
            )));
        }
        Ok((second, t.tree.consistency_proof(first, second)?))
    }
}
