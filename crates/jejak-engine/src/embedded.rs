//! The embedded engine: decides each command against the
//! genealogy the server holds, appends the event, applies it, and
//! acknowledges once the log says it is durable. Decide-append-apply runs
//! under the genealogy's write lock, so concurrent commands can never both
//! spend the same balance.

use std::sync::Arc;

use jejak_domain::SharedClock;
use jejak_genealogy::{AppliedEvent, Projection};
use jejak_log::{Draft, EventLog};

use crate::{Engine, EngineError, Receipt, Submission};

/// Commands of a bulk stream recorded before their answers wait for one
/// flush: the stream's group commit.
const STREAM_CHUNK: usize = 512;

/// A bulk stream's command after recording, before its answer.
enum Recorded {
    Done(Result<Receipt, EngineError>),
    /// Its id was recorded before: answered from the stored copy.
    Replay(u64, String, [u8; 32]),
    /// Refused by the transport; answered `None`.
    Skip,
}

/// The genealogy commands are decided against, and the log they append to.
pub struct Writer<L> {
    log: L,
    projection: Arc<Projection>,
    persist_wanted: tokio::sync::Notify,
    clock: SharedClock,
}

impl<L: EventLog> Writer<L> {
    /// A writer that records events at the times `clock` tells.
    pub fn new(log: L, projection: Arc<Projection>, clock: SharedClock) -> Writer<L> {
        Writer {
            log,
            projection,
            persist_wanted: tokio::sync::Notify::new(),
            clock,
        }
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    pub fn projection(&self) -> &Arc<Projection> {
        &self.projection
    }

    /// Decides, appends and acknowledges one command.
    pub async fn submit(&self, submission: Submission, actor: &str) -> Result<Receipt, EngineError> {
        let (id, content_hash) = (submission.id.clone(), submission.content_hash);
        let receipt = match self.record(submission, actor)? {
            Ok(receipt) => receipt,
            Err(position) => return self.replayed(position, &id, content_hash).await,
        };
        self.log.wait_durable(receipt.position).await?;
        self.persist_if_due();
        Ok(receipt)
    }

    /// Decides, appends and applies commands one after the other, and
    /// acknowledges them together once the last is durable (one wait for
    /// the whole batch instead of one per command). With `stop_on_error`,
    /// nothing after the first refusal is tried.
    pub async fn submit_many(
        &self,
        submissions: Vec<Submission>,
        actor: &str,
        stop_on_error: bool,
    ) -> Vec<Result<Receipt, EngineError>> {
        let mut out = Vec::with_capacity(submissions.len());
        let mut last = 0;
        for submission in submissions {
            let (id, content_hash) = (submission.id.clone(), submission.content_hash);
            let result = match self.record(submission, actor) {
                Ok(Ok(receipt)) => {
                    last = last.max(receipt.position);
                    Ok(receipt)
                }
                Ok(Err(position)) => self.replayed(position, &id, content_hash).await,
                Err(e) => Err(e),
            };
            let failed = result.is_err();
            out.push(result);
            if failed && stop_on_error {
                break;
            }
        }
        if last > 0 {
            if let Err(e) = self.log.wait_durable(last).await {
                let why = e.to_string();
                return out
                    .into_iter()
                    .map(|r| r.and_then(|_| Err(EngineError::Log(jejak_log::LogError::Unavailable(why.clone())))))
                    .collect();
            }
            self.persist_if_due();
        }
        out
    }

    /// A bulk stream: commands are recorded in chunks of what has arrived
    /// (up to `STREAM_CHUNK`), each chunk under the genealogy's lock one
    /// command at a time, while the chunk before waits for its flush and
    /// is answered: recording and flushing overlap. At most
    /// `STREAM_WINDOW` commands are recorded and not yet answered; beyond
    /// that the stream is not read, so a slow disk slows the sender.
    pub async fn submit_stream(
        self: Arc<Self>,
        mut commands: tokio::sync::mpsc::Receiver<Option<Submission>>,
        actor: String,
        answers: tokio::sync::mpsc::Sender<Option<Result<Receipt, EngineError>>>,
    ) {
        let (ready, mut recorded) =
            tokio::sync::mpsc::channel::<(Vec<Recorded>, u64)>((crate::STREAM_WINDOW / STREAM_CHUNK).max(1));
        let me = self.clone();
        let acknowledge = async move {
            while let Some((chunk, last)) = recorded.recv().await {
                let durable = match last {
                    0 => Ok(()),
                    _ => me.log.wait_durable(last).await.map_err(|e| e.to_string()),
                };
                if last > 0 {
                    me.persist_if_due();
                }
                for r in chunk {
                    let answer = match r {
                        Recorded::Skip => None,
                        Recorded::Done(Ok(receipt)) => Some(match &durable {
                            Ok(()) => Ok(receipt),
                            Err(why) => Err(EngineError::Log(jejak_log::LogError::Unavailable(why.clone()))),
                        }),
                        Recorded::Done(Err(e)) => Some(Err(e)),
                        Recorded::Replay(position, id, hash) => Some(me.replayed(position, &id, hash).await),
                    };
                    if answers.send(answer).await.is_err() {
                        return;
                    }
                }
            }
        };
        let record = async move {
            while let Some(first) = commands.recv().await {
                let mut batch = vec![first];
                while batch.len() < STREAM_CHUNK {
                    match commands.try_recv() {
                        Ok(c) => batch.push(c),
                        Err(_) => break,
                    }
                }
                let mut last = 0;
                let chunk: Vec<Recorded> = batch
                    .into_iter()
                    .map(|c| {
                        let Some(submission) = c else {
                            return Recorded::Skip;
                        };
                        let (id, hash) = (submission.id.clone(), submission.content_hash);
                        match self.record(submission, &actor) {
                            Ok(Ok(receipt)) => {
                                last = last.max(receipt.position);
                                Recorded::Done(Ok(receipt))
                            }
                            Ok(Err(position)) => Recorded::Replay(position, id, hash),
                            Err(e) => Recorded::Done(Err(e)),
                        }
                    })
                    .collect();
                if ready.send((chunk, last)).await.is_err() {
                    return;
                }
            }
        };
        tokio::join!(record, acknowledge);
    }

    fn persist_if_due(&self) {
        if self.projection.unpersisted() >= jejak_genealogy::PERSIST_EVERY {
            self.persist_wanted.notify_one();
        }
    }

    /// Decides, appends and applies one command under the genealogy's lock:
    /// its receipt (not yet durable), or the position of the event its id
    /// already named.
    fn record(&self, submission: Submission, actor: &str) -> Result<Result<Receipt, u64>, EngineError> {
        let Submission {
            id,
            command,
            content_hash,
            ..
        } = submission;
        self.projection
            .capture(|g| -> Result<Result<Receipt, u64>, EngineError> {
                if let Some(position) = self.log.position_of(&id)? {
                    return Ok(Err(position));
                }
                let now = self.clock.now();
                let event = jejak_domain::decide(&*g, &id, command, now)?;
                let draft = Draft {
                    chain: event.chain().to_string(),
                    event_id: id.clone(),
                    actor: actor.to_string(),
                    command_hash: content_hash,
                    recorded_at: jejak_proto::time_to_proto(now),
                    event: jejak_proto::event_to_proto(&event),
                };
                let appended = self.log.append(draft)?;
                g.apply(AppliedEvent {
                    position: appended.position,
                    event_id: &id,
                    recorded_at: now,
                    event: &event,
                    hash: appended.hash,
                });
                Ok(Ok(Receipt::new(id.clone(), &event, appended, now)))
            })
    }

    /// Writes the in-memory genealogy to sled, never ahead of the log: the
    /// changes are encoded under the genealogy's lock (captures wait only
    /// for that), and written once the log has made everything in them
    /// durable.
    pub async fn persist(&self) -> anyhow::Result<()> {
        if self.projection.unpersisted() == 0 {
            return Ok(());
        }
        let projection = self.projection.clone();
        let Some(snapshot) = tokio::task::spawn_blocking(move || projection.snapshot()).await?? else {
            return Ok(());
        };
        self.log.wait_durable(snapshot.position()).await?;
        let projection = self.projection.clone();
        tokio::task::spawn_blocking(move || projection.write(snapshot)).await??;
        Ok(())
    }

    /// Persists every `PERSIST_EVERY` events and after a second without captures.
    pub async fn run_persister(&self, cancel: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.persist_wanted.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
            self.persist().await?;
        }
        self.persist().await
    }

    async fn replayed(&self, position: u64, id: &str, content_hash: [u8; 32]) -> Result<Receipt, EngineError> {
        self.log.wait_durable(position).await?;
        let stored = self.log.read(position)?.ok_or(EngineError::Missing(position))?;
        let mut receipt = Receipt::replay_of(&stored, id, content_hash)?;
        let void = {
            let g = self.projection.read();
            g.voided_by(id)
                .and_then(|(void, _)| Some((g.event_position(&void)?, void)))
        };
        if let Some((at, void)) = void {
            // Applied before it is durable: said only once it is, since a
            // client told so sends the command anew.
            self.log.wait_durable(at).await?;
            receipt.voided_by = Some(void);
        }
        Ok(receipt)
    }
}

impl<L: EventLog> Engine for Writer<L> {
    async fn submit(&self, submission: Submission, actor: &str) -> Result<Receipt, EngineError> {
        Writer::submit(self, submission, actor).await
    }

    async fn submit_many(
        &self,
        submissions: Vec<Submission>,
        actor: &str,
        stop_on_error: bool,
    ) -> Vec<Result<Receipt, EngineError>> {
        Writer::submit_many(self, submissions, actor, stop_on_error).await
    }

    async fn submit_stream(
        self: Arc<Self>,
        commands: tokio::sync::mpsc::Receiver<Option<Submission>>,
        actor: String,
        answers: tokio::sync::mpsc::Sender<Option<Result<Receipt, EngineError>>>,
    ) {
        Writer::submit_stream(self, commands, actor, answers).await
    }
}
