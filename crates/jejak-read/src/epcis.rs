//! EPCIS 2.0 events as a caller may see them: the log's events mapped by
//! `jejak_epcis::export`, each part disclosed or not by [`View::discloses_class`]
//! (the same decision as for provenance bundles), named by the CBV 2.0 hash
//! of what the caller receives, and filtered by the query on that.
//!
//! A query that names lots (`MATCH_epcClass`, `MATCH_anyEPC` or `MATCH_epc`
//! with lot class ids and no wildcard) reads those lots' histories only;
//! any other reads the log in order, at most [`SCAN_LIMIT`] events per page
//! (a page may then hold fewer results than asked for, with a token for the
//! rest).

use std::collections::HashSet;

use jejak_domain::{Event, Time};
use jejak_epcis::export::{self, Correction, Ids, Record};
use jejak_epcis::query::Query;
use jejak_log::{ReadLog, StoredEvent};
use jejak_verify::commit::Class;
use serde_json::Value;

use crate::reader::Reader;
use crate::{ReadError, View};

/// Events a page reads from the log at most when the query names no lot.
pub const SCAN_LIMIT: u64 = 20_000;

/// One page of events, and where the next starts.
#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<Value>,
    pub next: Option<u64>,
}

/// The lot a lot class id names: an LGTIN (`…/01/{gtin}/10/{lot}`) or a
/// private class (`{domain}/lot/{product}/{lot}`).
fn lot_of_class<'a>(ids: &Ids, class: &'a str) -> Option<&'a str> {
    if class.ends_with('*') {
        return None;
    }
    if let Some(rest) = class.strip_prefix("https://id.gs1.org/01/") {
        let (_, lot) = rest.split_once("/10/")?;
        return (!lot.contains('/')).then_some(lot);
    }
    let rest = class.strip_prefix(ids.domain())?.strip_prefix("/lot/")?;
    let (_, lot) = rest.split_once('/')?;
    (!lot.contains('/')).then_some(lot)
}

fn recorded_at(e: &StoredEvent) -> Option<Time> {
    e.envelope
        .recorded_at
        .as_ref()
        .and_then(|t| Time::from_unix(t.seconds, t.nanos))
}

pub(crate) fn decode(e: &StoredEvent) -> Result<Event, ReadError> {
    let proto = e.envelope.event.clone().ok_or(ReadError::Missing(e.position))?;
    jejak_proto::decode_event(proto).map_err(|err| {
        ReadError::Log(jejak_log::LogError::Corrupt {
            position: e.position,
            reason: format!("the event does not decode: {err}"),
        })
    })
}

/// The context the hashes of exported events are computed in (jejak's
/// namespace declared as in every document it writes).
pub fn hash_context() -> jejak_epcis::hash::Context {
    jejak_epcis::hash::Context::from_document(&export::document(Vec::new(), None, Time(0)))
}

/// An event with its `eventID` (the CBV 2.0 hash of the event as given).
pub fn with_event_id(mut event: Value, context: &jejak_epcis::hash::Context) -> Result<Value, ReadError> {
    let id = jejak_epcis::hash::event_hash(&event, context)
        .map_err(|e| ReadError::Interrupted(format!("an exported event could not be hashed: {e}")))?;
    if let Value::Object(m) = &mut event {
        m.insert("eventID".into(), Value::String(id));
    }
    Ok(event)
}

impl<L: ReadLog> Reader<L> {
    /// The registered master data as EPCIS vocabularies (for exports).
    pub fn epcis_master_data(&self, ids: &Ids) -> Value {
        let g = self.projection().read();
        let m = g.master_data();
        export::master_data(ids, &m.parties, &m.facilities, &m.products, &m.standards)
    }

    /// The EPCIS events of `q` as `view` may see them, oldest first.
    pub async fn epcis_events(&self, view: &View, ids: &Ids, q: &Query) -> Result<Page, ReadError> {
        let named: Option<Vec<u64>> = {
            let names = q.named_ids();
            let lots: Option<Vec<&str>> = if names.is_empty() && q.lots.is_empty() {
                None
            } else {
                names
                    .iter()
                    .map(|c| lot_of_class(ids, c))
                    .chain(q.lots.iter().map(|l| Some(l.as_str())))
                    .collect()
            };
            match lots {
                Some(lots) => {
                    let g = self.projection().read();
                    let mut positions: Vec<u64> = lots
                        .iter()
                        .filter_map(|l| g.history_positions(l).ok())
                        .flatten()
                        .filter(|p| *p > q.after)
                        .collect();
                    positions.sort_unstable();
                    positions.dedup();
                    Some(positions)
                }
                None => None,
            }
        };
        let end = self.log().current_position().await?;
        self.visible(end).await?;
        let context = hash_context();
        let mut events = Vec::new();
        let mut next = None;
        let scanning = named.is_none();
        let candidates: Box<dyn Iterator<Item = u64> + Send> = match named {
            Some(p) => Box::new(p.into_iter()),
            None => Box::new(q.after.saturating_add(1)..=end.min(q.after.saturating_add(SCAN_LIMIT))),
        };
        let mut last = q.after;
        let mut pace = crate::reader::Pacer::default();
        for position in candidates {
            pace.step().await;
            if events.len() >= q.per_page {
                next = Some(last);
                break;
            }
            last = position;
            let Some(stored) = self.log().read(position).await? else {
                continue;
            };
            if let Some(e) = self.epcis_event(view, ids, &stored, &context).await? {
                if q.matches(&e) {
                    events.push(e);
                }
            }
        }
        // A scan that stopped at its limit before the log's end goes on from there.
        if next.is_none() && scanning && last < end {
            next = Some(last);
        }
        Ok(Page { events, next })
    }

    /// The EPCIS event of one stored event as `view` may see it (a void:
    /// the voided event again, with its error declaration), with its
    /// `eventID`; `None` for what is not an EPCIS event.
    pub async fn epcis_event(
        &self,
        view: &View,
        ids: &Ids,
        stored: &StoredEvent,
        context: &jejak_epcis::hash::Context,
    ) -> Result<Option<Value>, ReadError> {
        let event = decode(stored)?;
        let (subject, correction) = match &event {
            Event::EventVoided(v) => {
                let (voided, replacement) = {
                    let g = self.projection().read();
                    (
                        g.event_position(&v.voided_event_id),
                        v.replacement_event_id.as_deref().and_then(|r| g.event_position(r)),
                    )
                };
                let Some(voided) = voided else {
                    return Ok(None);
                };
                let Some(voided) = self.log().read(voided).await? else {
                    return Err(ReadError::Missing(voided));
                };
                let mut corrective = Vec::new();
                if let Some(r) = replacement {
                    let Some(r) = self.log().read(r).await? else {
                        return Err(ReadError::Missing(r));
                    };
                    if let Some(e) = Box::pin(self.epcis_event(view, ids, &r, context)).await? {
                        corrective.extend(e.get("eventID").and_then(Value::as_str).map(str::to_string));
                    }
                }
                let declared_at = v.occurred_at.or(recorded_at(stored)).unwrap_or_default();
                (
                    voided,
                    Some(Correction {
                        declared_at,
                        reason: v.reason.clone(),
                        corrective_event_ids: corrective,
                        void_event_id: stored.envelope.event_id.clone(),
                        replacement_event_id: v.replacement_event_id.clone(),
                    }),
                )
            }
            _ => (stored.clone(), None),
        };
        let subject_event = match &correction {
            Some(_) => decode(&subject)?,
            None => event,
        };
        let mapped = {
            let g = self.projection().read();
            let seen: HashSet<&str> = subject_event
                .lots()
                .into_iter()
                .filter(|l| g.lot_parties(l).is_some_and(|(f, o, s)| view.sees_ids(f, o, s)))
                .collect();
            let disclose = |class: Class, lot: Option<&str>| {
                view.discloses_class(class, lot, &|l| seen.contains(l), lot.is_none() && !seen.is_empty())
            };
            export::event(
                &Record {
                    event_id: &subject.envelope.event_id,
                    recorded_at: recorded_at(&subject),
                    event: &subject_event,
                },
                correction.as_ref(),
                ids,
                &*g,
                &disclose,
            )
        };
        match mapped {
            // Kept as received, named by the hash taken at capture (in its
            // own document's context).
            Some(e) if matches!(subject_event, Event::EpcisObserved(_)) && e.get("eventID").is_some() => Ok(Some(e)),
            Some(e) => Ok(Some(with_event_id(e, context)?)),
            None => Ok(None),
        }
    }
}

/// Where each event id is in the log, for the event in full and for its
/// public view (the id a caller without a token receives, quantities and
/// private fields left out): each filled the first time an id is asked
/// for in that view (the public one only for callers who do not see
/// everything) and extended with the events appended since on each later
/// lookup. A voided event's id is at its own position and at its void's
/// (the event again, declared wrong).
#[derive(Default)]
pub struct IdIndex {
    full: IdPositions,
    public: IdPositions,
}

/// How far an index is built, and each id's positions.
type IdPositions = tokio::sync::Mutex<(u64, std::collections::HashMap<String, Vec<u64>>)>;

impl<L: ReadLog> Reader<L> {
    /// The events named `id`, as `view` may see them: those whose id, as
    /// the caller receives them, is `id`. An event a caller sees in full is
    /// found by its full id, one it sees in its public view by that view's
    /// id (an event of several lots a member sees some of, in a view of its
    /// own, has an id found by neither).
    pub async fn epcis_events_by_id(
        &self,
        view: &View,
        ids: &Ids,
        index: &IdIndex,
        id: &str,
    ) -> Result<Vec<Value>, ReadError> {
        let end = self.log().current_position().await?;
        self.visible(end).await?;
        let context = hash_context();
        let mut positions = self
            .id_positions(&index.full, &View::Full, ids, &context, end, id)
            .await?;
        if !matches!(view, View::Full) {
            positions.extend(
                self.id_positions(&index.public, &View::Public, ids, &context, end, id)
                    .await?,
            );
            positions.sort_unstable();
            positions.dedup();
        }
        let mut out = Vec::new();
        for position in positions {
            let Some(stored) = self.log().read(position).await? else {
                return Err(ReadError::Missing(position));
            };
            if let Some(e) = self.epcis_event(view, ids, &stored, &context).await? {
                if e.get("eventID").and_then(Value::as_str) == Some(id) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// The positions of the events whose id in `as_seen` is `id`, from
    /// `index` (brought up to `end` first).
    async fn id_positions(
        &self,
        index: &IdPositions,
        as_seen: &View,
        ids: &Ids,
        context: &jejak_epcis::hash::Context,
        end: u64,
        id: &str,
    ) -> Result<Vec<u64>, ReadError> {
        let mut guard = index.lock().await;
        let (upto, map) = &mut *guard;
        let mut pace = crate::reader::Pacer::default();
        for position in (*upto + 1)..=end {
            // Dropped here, the request leaves the index built so far.
            pace.step().await;
            if let Some(stored) = self.log().read(position).await? {
                if let Some(e) = self.epcis_event(as_seen, ids, &stored, context).await? {
                    if let Some(h) = e.get("eventID").and_then(Value::as_str) {
                        map.entry(h.to_string()).or_default().push(position);
                    }
                }
            }
            *upto = position;
        }
        Ok(map.get(id).cloned().unwrap_or_default())
    }
}
