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
        let Submission {
            id,
            command,
            content_hash,
        } = submission;
        let outcome = self
            .projection
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
            });
        let receipt = match outcome? {
            Ok(receipt) => receipt,
            Err(position) => return self.replayed(position, &id, content_hash).await,
        };
        self.log.wait_durable(receipt.position).await?;
        if self.projection.unpersisted() >= jejak_genealogy::PERSIST_EVERY {
            self.persist_wanted.notify_one();
        }
        Ok(receipt)
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
        if stored.envelope.command_hash != content_hash {
            return Err(EngineError::IdReused { id: id.to_string() });
        }
        Ok(Receipt::replayed(&stored))
    }
}

impl<L: EventLog> Engine for Writer<L> {
    async fn submit(&self, submission: Submission, actor: &str) -> Result<Receipt, EngineError> {
        Writer::submit(self, submission, actor).await
    }
}
