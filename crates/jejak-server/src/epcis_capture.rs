//! EPCIS capture jobs: a checked document's master data and events turned
//! into commands (`jejak_epcis::capture`), then recorded one by one through
//! the engine, by the same rules and the same facility checks as gRPC
//! capture.
//!
//! `rollback` (the default): an event that cannot be mapped fails the job
//! before anything is written; a command the rules refuse fails it, and
//! the events the job had recorded are voided again in reverse order (the
//! log is append-only: what was written stays, corrected), so that none of
//! them counts. Registrations and observations cannot be voided and are
//! named in the job when that happens. `proceed`: refused events are
//! reported and the others recorded.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use jejak_domain::{Command, EventVoided};
use jejak_engine::{Engine, Submission};
use jejak_epcis::capture::{Checked, Known, Mapped, Problem};
use jejak_epcis::export::Ids;
use jejak_genealogy::Genealogy;
use jejak_log::ReadLog;
use jejak_proto::ServiceError;
use jejak_read::Reader;
use serde_json::{json, Value};

use crate::auth::{Caller, Need};

/// The largest document one capture takes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;
/// Commands recorded between two progress updates (and durability waits).
const SUBMIT_CHUNK: usize = 500;
/// Jobs kept for `GET /epcis/capture/{id}`.
const JOBS_KEPT: usize = 1000;
/// Errors a job lists at most (each message cut to 900 bytes); the rest
/// are counted (`errorsNotListed`).
const ERRORS_LISTED: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Rollback,
    Proceed,
}

impl Behaviour {
    fn name(self) -> &'static str {
        match self {
            Behaviour::Rollback => "rollback",
            Behaviour::Proceed => "proceed",
        }
    }
}

/// The EPCIS field a command's field was mapped from.
fn epcis_field(field: &str) -> String {
    let (head, rest) = match field.find(['.', '[']) {
        Some(i) => field.split_at(i),
        None => (field, ""),
    };
    let mapped = match head {
        "owner_id" | "consignee_id" => "destinationList",
        "supplier_id" => "sourceList",
        "lot_id" | "quantity" | "product_id" => "quantityList",
        "inputs" => "inputQuantityList",
        "outputs" => "outputQuantityList",
        "facility_id" => "bizLocation",
        "standard_id" => "jejak:standard",
        "measurements" => "sensorElementList",
        "packages" => "jejak:contents",
        "package_serials" => "epcList",
        "occurred_at" => "eventTime",
        "source_lot_id" => "ilmd.jejak:sourceLot",
        "documents" => "ilmd.jejak:documents",
        "event_id" => "errorDeclaration",
        other => other,
    };
    format!("{mapped}{rest}")
}

/// What went wrong with one event (or the header's master data).
#[derive(Debug, Clone)]
struct JobError {
    index: Option<usize>,
    field: Option<String>,
    rule: Option<String>,
    reason: String,
    message: String,
}

impl JobError {
    fn of_problem(p: &Problem) -> JobError {
        JobError {
            index: p.index,
            field: Some(p.field.clone()),
            rule: None,
            reason: "EPCIS_EVENT_NOT_MAPPED".into(),
            message: jejak_proto::error::bounded(p.to_string()),
        }
    }

    fn of_service(index: Option<usize>, e: &(impl ServiceError + ?Sized)) -> JobError {
        let message = e.to_string();
        // The command's field (named by the error, or by its message's
        // first word, as rules name it), as the EPCIS field it came from.
        let field = e.field().map(str::to_string).or_else(|| {
            let (first, _) = message.split_once(": ")?;
            first
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c))
                .then(|| first.to_string())
        });
        JobError {
            index,
            field: field.map(|f| epcis_field(&f)),
            rule: e.rule().map(str::to_string),
            reason: e.reason().to_string(),
            message: jejak_proto::error::bounded(message),
        }
    }

    fn json(&self) -> Value {
        json!({
            "eventIndex": self.index,
            "field": self.field,
            "rule": self.rule,
            "reason": self.reason,
            "detail": self.message,
        })
    }
}

#[derive(Debug, Clone)]
struct Job {
    created: jejak_domain::Time,
    finished: Option<jejak_domain::Time>,
    behaviour: Behaviour,
    events: usize,
    recorded: usize,
    replayed: usize,
    /// (event id, void id) of replayed events that stand voided.
    replayed_voided: Vec<(String, String)>,
    observations: usize,
    errors: Vec<JobError>,
    /// Errors past `ERRORS_LISTED`, counted only.
    errors_not_listed: usize,
    voided: Vec<String>,
    not_voided: Vec<String>,
}

impl Job {
    fn error(&mut self, e: JobError) {
        match self.errors.len() < ERRORS_LISTED {
            true => self.errors.push(e),
            false => self.errors_not_listed += 1,
        }
    }
}

/// The capture jobs of this process, the last [`JOBS_KEPT`] of them.
#[derive(Default)]
pub struct Jobs {
    inner: Mutex<(HashMap<String, Job>, VecDeque<String>)>,
}

impl Jobs {
    fn with<T>(&self, f: impl FnOnce(&mut (HashMap<String, Job>, VecDeque<String>)) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// A new running job; its id.
    pub fn start(&self, behaviour: Behaviour, events: usize) -> String {
        let mut random = [0u8; 12];
        if getrandom::fill(&mut random).is_err() {
            random[..8].copy_from_slice(&jejak_domain::Time::now().0.to_be_bytes());
        }
        let id = format!("cap-{}", hex::encode(random));
        let job = Job {
            created: jejak_domain::Time::now(),
            finished: None,
            behaviour,
            events,
            recorded: 0,
            replayed: 0,
            replayed_voided: Vec::new(),
            observations: 0,
            errors: Vec::new(),
            errors_not_listed: 0,
            voided: Vec::new(),
            not_voided: Vec::new(),
        };
        self.with(|(map, order)| {
            map.insert(id.clone(), job);
            order.push_back(id.clone());
            while order.len() > JOBS_KEPT {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        });
        id
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Job)) {
        self.with(|(map, _)| {
            if let Some(j) = map.get_mut(id) {
                f(j);
            }
        });
    }

    /// A job as EPCIS capture job JSON.
    pub fn json(&self, id: &str) -> Option<Value> {
        let job = self.with(|(map, _)| map.get(id).cloned())?;
        let success = job.finished.is_some() && job.errors.is_empty();
        Some(json!({
            "captureID": id,
            "createdAt": jejak_epcis::export::time(job.created),
            "finishedAt": job.finished.map(jejak_epcis::export::time),
            "running": job.finished.is_none(),
            "success": success,
            "captureErrorBehaviour": job.behaviour.name(),
            "events": job.events,
            "recorded": job.recorded,
            "replayed": job.replayed,
            "replayedVoided": job
                .replayed_voided
                .iter()
                .map(|(event, void)| json!({ "eventID": event, "voidedBy": void }))
                .collect::<Vec<_>>(),
            "observations": job.observations,
            "errors": job.errors.iter().map(JobError::json).collect::<Vec<_>>(),
            "errorsNotListed": job.errors_not_listed,
            "voided": job.voided,
            "notVoided": job.not_voided,
        }))
    }
}

/// The store as capture mapping asks about it.
struct Store<'g>(&'g Genealogy);

impl Known for Store<'_> {
    fn facility(&self, id: &str) -> bool {
        jejak_domain::Facts::facility(self.0, id).is_some()
    }

    fn facility_of_gln(&self, gln: &str) -> Option<String> {
        self.0
            .master_data()
            .facilities
            .iter()
            .find(|f| f.gln.as_ref().is_some_and(|g| g.as_str() == gln))
            .map(|f| f.id.clone())
    }

    fn party_of_gln(&self, gln: &str) -> Option<String> {
        self.0
            .master_data()
            .parties
            .iter()
            .find(|p| p.gln.as_ref().is_some_and(|g| g.as_str() == gln))
            .map(|p| p.id.clone())
    }

    fn product_of_gtin(&self, gtin: &str) -> Option<String> {
        let gtin = jejak_domain::gs1::Gtin::parse(gtin).ok()?;
        self.0
            .master_data()
            .products
            .iter()
            .find(|p| p.gtin.as_ref() == Some(&gtin))
            .map(|p| p.id.clone())
    }

    fn lot(&self, id: &str) -> bool {
        jejak_domain::Facts::lot(self.0, id).is_some()
    }

    fn party(&self, id: &str) -> bool {
        jejak_domain::Facts::party(self.0, id).is_some()
    }

    fn product(&self, id: &str) -> bool {
        jejak_domain::Facts::product(self.0, id).is_some()
    }

    fn standard(&self, id: &str) -> bool {
        jejak_domain::Facts::standard(self.0, id).is_some()
    }
}

/// The store and what the document records before the event at hand
/// (its master data, the lots its earlier events make).
struct Overlay<'g> {
    store: Store<'g>,
    /// Facilities and parties the document registers, with their GLNs.
    facilities: HashMap<String, Option<String>>,
    parties: HashMap<String, Option<String>>,
    products: HashMap<String, Option<String>>,
    standards: std::collections::HashSet<String>,
    lots: std::collections::HashSet<String>,
}

impl Overlay<'_> {
    fn add(&mut self, c: &Command) {
        match c {
            Command::RegisterFacility(f) => {
                self.facilities
                    .insert(f.id.clone(), f.gln.as_ref().map(|g| g.to_string()));
            }
            Command::RegisterParty(p) => {
                self.parties.insert(p.id.clone(), p.gln.as_ref().map(|g| g.to_string()));
            }
            Command::RegisterProduct(p) => {
                self.products
                    .insert(p.id.clone(), p.gtin.as_ref().map(|g| g.as_str().to_string()));
            }
            Command::RegisterStandard(s) => {
                self.standards.insert(s.id.clone());
            }
            Command::ReceiveMaterial(e) => {
                self.lots.insert(e.lot_id.clone());
            }
            Command::ProcessLots(e) => self.lots.extend(e.outputs.iter().map(|o| o.lot_id.clone())),
            _ => {}
        }
    }
}

/// The id registered with `gln` in `registered`.
fn with_gln(registered: &HashMap<String, Option<String>>, gln: &str) -> Option<String> {
    registered
        .iter()
        .find(|(_, g)| g.as_deref() == Some(gln))
        .map(|(id, _)| id.clone())
}

impl Known for Overlay<'_> {
    fn facility(&self, id: &str) -> bool {
        self.facilities.contains_key(id) || self.store.facility(id)
    }

    fn facility_of_gln(&self, gln: &str) -> Option<String> {
        with_gln(&self.facilities, gln).or_else(|| self.store.facility_of_gln(gln))
    }

    fn party_of_gln(&self, gln: &str) -> Option<String> {
        with_gln(&self.parties, gln).or_else(|| self.store.party_of_gln(gln))
    }

    fn product_of_gtin(&self, gtin: &str) -> Option<String> {
        let normal = jejak_domain::gs1::Gtin::parse(gtin).ok()?;
        self.products
            .iter()
            .find(|(_, g)| g.as_deref() == Some(normal.as_str()))
            .map(|(id, _)| id.clone())
            .or_else(|| self.store.product_of_gtin(gtin))
    }

    fn lot(&self, id: &str) -> bool {
        self.lots.contains(id) || self.store.lot(id)
    }

    fn party(&self, id: &str) -> bool {
        self.parties.contains_key(id) || self.store.party(id)
    }

    fn product(&self, id: &str) -> bool {
        self.products.contains_key(id) || self.store.product(id)
    }

    fn standard(&self, id: &str) -> bool {
        self.standards.contains(id) || self.store.standard(id)
    }
}

/// What a job will record, in order: (the event's index, or none for
/// master data; the command, or why the event maps onto nothing).
pub struct Plan {
    items: Vec<(Option<usize>, Result<Mapped, Problem>)>,
}

/// Maps a checked document onto commands. A header whose vocabularies
/// cannot be read, or an event that cannot be hashed, is a problem of
/// the whole document.
pub fn plan<L: ReadLog>(reader: &Reader<L>, ids: &Ids, document: &Value, checked: &Checked) -> Result<Plan, Problem> {
    // The whole document: a short CBV name means its URI in every event
    // once one event of the document uses it (as the reference computes it).
    let context = jejak_epcis::hash::Context::from_document(document);
    let mut hashes = Vec::with_capacity(checked.events.len());
    for (i, e) in checked.events.iter().enumerate() {
        let h = jejak_epcis::hash::event_hash(e, &context).map_err(|err| Problem {
            index: Some(i),
            field: "event".into(),
            reason: format!("its CBV 2.0 event hash cannot be computed: {err}"),
        })?;
        hashes.push(h);
    }
    let g = reader.projection().read();
    let mut known = Overlay {
        store: Store(&g),
        facilities: Default::default(),
        parties: Default::default(),
        products: Default::default(),
        standards: Default::default(),
        lots: Default::default(),
    };
    let mut items = Vec::new();
    if let Some(master) = &checked.master {
        for m in jejak_epcis::capture::map_master_data(master, ids, &known)? {
            known.add(&m.command);
            items.push((None, Ok(m)));
        }
    }
    for (i, (e, h)) in checked.events.iter().zip(&hashes).enumerate() {
        let mapped = jejak_epcis::capture::map_event(i, e, h, &checked.context, ids, &known);
        if let Ok(m) = &mapped {
            known.add(&m.command);
        }
        items.push((Some(i), mapped));
    }
    Ok(Plan { items })
}

/// The facility a command is recorded at, if any.
fn facility(c: &Command) -> Option<&str> {
    Some(match c {
        Command::ReceiveMaterial(e) => &e.facility_id,
        Command::InspectLot(e) => &e.facility_id,
        Command::ProcessLots(e) => &e.facility_id,
        Command::PackLot(e) => &e.facility_id,
        Command::ShipLot(e) => &e.facility_id,
        Command::ChangeLotStatus(e) => &e.facility_id,
        Command::VoidEvent(e) => &e.facility_id,
        Command::ObserveEpcis(e) if !e.facility_id.is_empty() => &e.facility_id,
        _ => return None,
    })
}

/// Why `caller` may not record `c`, as the gRPC API decides it.
fn refusal(caller: &Caller, c: &Command) -> Option<jejak_proto::Refusal> {
    match (c, facility(c)) {
        (_, Some(f)) => caller.capture_refusal(f),
        (Command::RegisterFacility(_) | Command::RegisterStandard(_), None) => {
            caller.refusal(Need::Admin, "register facilities and quality standards")
        }
        _ => caller.refusal(Need::Capture, "capture EPCIS events"),
    }
}

async fn submit<S: Engine>(
    writer: &S,
    caller: &Caller,
    m: &Mapped,
    index: Option<usize>,
) -> Result<jejak_engine::Receipt, JobError> {
    if let Some(r) = refusal(caller, &m.command) {
        return Err(JobError::of_service(index, &r));
    }
    let kind = jejak_proto::command_to_proto(&m.id, &m.command);
    let submission = Submission::try_from(kind).map_err(|e| JobError::of_service(index, &e))?;
    writer
        .submit(submission, &caller.actor())
        .await
        .map_err(|e| JobError::of_service(index, &e))
}

/// Records a plan, updating the job as it goes.
pub async fn run<S: Engine>(jobs: &Jobs, id: &str, writer: &S, caller: &Caller, plan: Plan, behaviour: Behaviour) {
    // Everything that can be checked without writing, first: the mapping,
    // who may record each command, and each command's fields.
    let mut errors = Vec::new();
    let mut ready: Vec<(Option<usize>, Command, Submission)> = Vec::new();
    for (index, item) in plan.items {
        let m = match item {
            Ok(m) => m,
            Err(p) => {
                errors.push(JobError::of_problem(&p));
                continue;
            }
        };
        if let Some(r) = refusal(caller, &m.command) {
            errors.push(JobError::of_service(index, &r));
            continue;
        }
        match Submission::try_from(jejak_proto::command_to_proto(&m.id, &m.command)) {
            Ok(s) => ready.push((index, m.command, s)),
            Err(e) => errors.push(JobError::of_service(index, &e)),
        }
    }
    let failed_early = !errors.is_empty();
    jobs.update(id, |j| errors.into_iter().for_each(|e| j.error(e)));
    if behaviour == Behaviour::Rollback && failed_early {
        jobs.update(id, |j| j.finished = Some(jejak_domain::Time::now()));
        return;
    }
    // Voids this document holds itself (an export holds the voids of its
    // events): an event one of them voids is no news to the document.
    let voids_here: std::collections::HashSet<String> = ready
        .iter()
        .filter(|(_, command, _)| matches!(command, Command::VoidEvent(_)))
        .map(|(_, _, s)| s.id.clone())
        .collect();
    // What this job wrote itself (not replays), to void on a rollback.
    let mut written: Vec<(String, Command)> = Vec::new();
    let actor = caller.actor();
    let mut items = ready.into_iter().peekable();
    let mut pending: Vec<(Option<usize>, Command, Submission)> = Vec::new();
    loop {
        if pending.is_empty() {
            pending = items.by_ref().take(SUBMIT_CHUNK).collect();
            if pending.is_empty() {
                break;
            }
        }
        let submissions: Vec<Submission> = pending.iter().map(|(_, _, s)| s.clone()).collect();
        let results = writer
            .submit_many(submissions, &actor, behaviour == Behaviour::Rollback)
            .await;
        let taken = results.len();
        let mut refused = None;
        for ((index, command, _), result) in pending.drain(..taken).zip(results) {
            let observation = matches!(command, Command::ObserveEpcis(_));
            match result {
                Ok(receipt) => {
                    jobs.update(id, |j| {
                        j.recorded += 1;
                        j.replayed += usize::from(receipt.replayed);
                        j.observations += usize::from(observation);
                        if let Some(void) = receipt.voided_by.as_ref().filter(|v| !voids_here.contains(*v)) {
                            j.replayed_voided.push((receipt.event_id.clone(), void.clone()));
                        }
                    });
                    if !receipt.replayed {
                        written.push((receipt.event_id, command));
                    }
                }
                // The same eventID is the same event (the CBV hash leaves
                // out the record time, the id and the context): captured
                // before. The engine stopped there; the rest go on.
                Err(jejak_engine::EngineError::IdReused { .. }) if observation => {
                    jobs.update(id, |j| {
                        j.recorded += 1;
                        j.replayed += 1;
                        j.observations += 1;
                    });
                }
                Err(e) => {
                    jobs.update(id, |j| j.error(JobError::of_service(index, &e)));
                    refused.get_or_insert(index);
                }
            }
        }
        if let (Some(index), Behaviour::Rollback) = (refused, behaviour) {
            roll_back(jobs, id, writer, caller, written, index).await;
            break;
        }
    }
    jobs.update(id, |j| j.finished = Some(jejak_domain::Time::now()));
}

/// Voids what a failed job recorded, newest first.
async fn roll_back<S: Engine>(
    jobs: &Jobs,
    id: &str,
    writer: &S,
    caller: &Caller,
    written: Vec<(String, Command)>,
    failed: Option<usize>,
) {
    let why = match failed {
        Some(i) => format!("EPCIS capture {id} rolled back: event {i} was refused"),
        None => format!("EPCIS capture {id} rolled back: its master data was refused"),
    };
    for (n, (event_id, command)) in written.into_iter().rev().enumerate() {
        let voidable = !matches!(
            command,
            Command::ObserveEpcis(_)
                | Command::RegisterParty(_)
                | Command::RegisterFacility(_)
                | Command::RegisterProduct(_)
                | Command::RegisterStandard(_)
        );
        let Some(f) = facility(&command).filter(|_| voidable) else {
            jobs.update(id, |j| j.not_voided.push(event_id.clone()));
            continue;
        };
        let void = Mapped {
            id: format!("{id}-undo-{n}"),
            command: Command::VoidEvent(EventVoided {
                facility_id: f.to_string(),
                voided_event_id: event_id.clone(),
                reason: why.clone(),
                replacement_event_id: None,
                occurred_at: None,
            }),
        };
        match submit(writer, caller, &void, None).await {
            Ok(_) => jobs.update(id, |j| j.voided.push(event_id.clone())),
            Err(e) => jobs.update(id, |j| {
                j.not_voided.push(event_id.clone());
                j.error(e);
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_lists_its_first_errors_cut_short_and_counts_the_rest() {
        let jobs = Jobs::default();
        let id = jobs.start(Behaviour::Proceed, 2_000);
        let long = jejak_proto::Refusal::new(jejak_proto::ErrorCode::InvalidArgument, "x".repeat(100_000));
        for i in 0..ERRORS_LISTED + 5 {
            jobs.update(&id, |j| j.error(JobError::of_service(Some(i), &long)));
        }
        let job = jobs.json(&id).expect("the job");
        let errors = job["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), ERRORS_LISTED);
        assert_eq!(job["errorsNotListed"], 5);
        assert!(errors
            .iter()
            .all(|e| e["detail"].as_str().is_some_and(|d| d.len() < 1_000)));
    }
}
