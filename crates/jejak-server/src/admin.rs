//! The admin service: issuing, listing and revoking access tokens (each
//! issue and revocation is an event in the log, recorded through the same
//! writer as every capture), and what a backup needs besides the log.

use std::sync::Arc;

use jejak_domain::{SharedClock, Time, TokenRecord, TokenTable};
use jejak_proto::v1 as p;
use jejak_proto::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

use crate::auth::{Caller, Need};
use jejak_engine::Engine;

use crate::capture::submit;

pub struct AdminApi<S> {
    writer: Arc<S>,
    tokens: Arc<TokenTable>,
    /// What "active" (not yet expired) is measured against.
    clock: SharedClock,
    /// The embedded server's log and transparency log; none on NATS.
    backup: Option<BackupSource>,
    /// Webhooks; none where no projector keeps alerts.
    alerts: Option<Arc<dyn crate::alerts::AlertApi>>,
}

/// What `Backup` reads in the embedded server.
pub struct BackupSource {
    pub reader: jejak_read::Reader<jejak_log::SledLog>,
    /// The transparency log's signing key file.
    pub key_path: std::path::PathBuf,
}

impl<S> AdminApi<S> {
    pub fn new(writer: Arc<S>, tokens: Arc<TokenTable>, clock: SharedClock) -> AdminApi<S> {
        AdminApi {
            writer,
            tokens,
            clock,
            backup: None,
            alerts: None,
        }
    }

    /// This service answering the webhook RPCs.
    pub fn with_alerts(mut self, alerts: Arc<dyn crate::alerts::AlertApi>) -> AdminApi<S> {
        self.alerts = Some(alerts);
        self
    }

    fn alerts(&self) -> Result<&Arc<dyn crate::alerts::AlertApi>, Status> {
        self.alerts.as_ref().ok_or_else(|| {
            crate::error::status(&jejak_proto::Refusal::new(
                jejak_proto::ErrorCode::RuleBroken,
                "this process keeps no alerts: register webhooks with a server that runs a projector (`jejak serve`)"
                    .to_string(),
            ))
        })
    }

    /// This service answering `Backup` from the embedded server's stores.
    pub fn with_backup(mut self, source: BackupSource) -> AdminApi<S> {
        self.backup = Some(source);
        self
    }
}

impl BackupSource {
    /// The checkpoint is read before the position, so the checkpoint's tree
    /// (which follows the log) is never larger than the backup's log.
    async fn reply(&self, now: Time) -> Result<p::BackupReply, Status> {
        let checkpoint = self
            .reader
            .transparency()
            .and_then(|t| t.published())
            .map(|p| p.note.clone())
            .unwrap_or_default();
        let position = jejak_log::ReadLog::current_position(self.reader.log())
            .await
            .map_err(|e| internal(format!("read the log's position: {e}")))?;
        let log_key = std::fs::read_to_string(&self.key_path)
            .map_err(|e| internal(format!("read the log's key {}: {e}", self.key_path.display())))?;
        Ok(p::BackupReply {
            position,
            checkpoint,
            log_key,
            taken_at: Some(jejak_proto::time_to_proto(now)),
        })
    }
}

fn internal(message: String) -> Status {
    crate::error::status(&jejak_proto::Refusal::new(jejak_proto::ErrorCode::Internal, message))
}

/// A token as the admin API lists it: never its secret or hash.
pub fn token_info(t: &TokenRecord, now: Time) -> p::TokenInfo {
    p::TokenInfo {
        token_id: t.issued.token_id.clone(),
        role: jejak_proto::access_role_to_proto(t.issued.role) as i32,
        facility_ids: t.issued.facility_ids.clone(),
        party_id: t.issued.party_id.clone().unwrap_or_default(),
        label: t.issued.label.clone(),
        event_id: t.event_id.clone(),
        issued_at: Some(jejak_proto::time_to_proto(t.issued_at)),
        expires_at: Some(jejak_proto::time_to_proto(t.issued.expires_at)),
        revoked: t.revoked.is_some(),
        revoked_at: t.revoked.as_ref().map(|r| jejak_proto::time_to_proto(r.0)),
        revoke_reason: t.revoked.as_ref().map(|r| r.1.clone()).unwrap_or_default(),
        active: t.is_active(now),
    }
}

impl<S: Engine> AdminApi<S> {
    async fn create_token_inner(
        &self,
        request: Request<p::CreateTokenRequest>,
    ) -> Result<Response<p::CreateTokenReply>, Status> {
        let caller = Caller::of(&request);
        caller.require(Need::Admin, "issue tokens")?;
        let p::CreateTokenRequest {
            command_id,
            role,
            facility_ids,
            party_id,
            expires_at,
            label,
        } = request.into_inner();
        let (kind, token_id, token) =
            crate::auth::issue_command_proto(&command_id, role, facility_ids, party_id, expires_at, label).map_err(
                |e| {
                    crate::error::status(&jejak_proto::Refusal::new(
                        jejak_proto::ErrorCode::Internal,
                        format!("{e:#}"),
                    ))
                },
            )?;
        let recorded = submit(&*self.writer, kind, &caller.actor(), None).await?;
        Ok(Response::new(p::CreateTokenReply {
            token_id,
            // A retry found the first issue: its secret is gone.
            token: if recorded.replayed { String::new() } else { token },
            recorded: Some(recorded),
        }))
    }
}

#[tonic::async_trait]
impl<S: Engine> AdminService for AdminApi<S> {
    async fn create_token(
        &self,
        request: Request<p::CreateTokenRequest>,
    ) -> Result<Response<p::CreateTokenReply>, Status> {
        let started = std::time::Instant::now();
        let result = self.create_token_inner(request).await;
        crate::metrics::metrics().rpc("CreateToken", started, &result);
        result
    }

    async fn list_tokens(
        &self,
        request: Request<p::ListTokensRequest>,
    ) -> Result<Response<p::ListTokensReply>, Status> {
        Caller::of(&request).require(Need::Admin, "list tokens")?;
        let all = request.into_inner().include_inactive;
        let now = self.clock.now();
        let tokens = self
            .tokens
            .all()
            .iter()
            .filter(|t| all || t.is_active(now))
            .map(|t| token_info(t, now))
            .collect();
        Ok(Response::new(p::ListTokensReply { tokens }))
    }

    async fn revoke_token(&self, request: Request<p::RevokeTokenRequest>) -> Result<Response<p::CaptureReply>, Status> {
        let caller = Caller::of(&request);
        caller.require(Need::Admin, "revoke tokens")?;
        let started = std::time::Instant::now();
        let result = submit(
            &*self.writer,
            p::command::Kind::RevokeToken(request.into_inner()),
            &caller.actor(),
            None,
        )
        .await
        .map(Response::new);
        crate::metrics::metrics().rpc("RevokeToken", started, &result);
        result
    }

    async fn backup(&self, request: Request<p::BackupRequest>) -> Result<Response<p::BackupReply>, Status> {
        Caller::of(&request).require(Need::Admin, "take backups")?;
        let started = std::time::Instant::now();
        let result = match &self.backup {
            Some(source) => source.reply(self.clock.now()).await.map(Response::new),
            None => Err(crate::error::status(&jejak_proto::Refusal::new(
                jejak_proto::ErrorCode::RuleBroken,
                "this server keeps its log in NATS JetStream: back up the stream with `nats stream backup` (and each projector's data directory with `jejak rebuild` after a restore)".to_string(),
            ))),
        };
        crate::metrics::metrics().rpc("Backup", started, &result);
        result
    }

    async fn create_webhook(
        &self,
        request: Request<p::CreateWebhookRequest>,
    ) -> Result<Response<p::CreateWebhookReply>, Status> {
        Caller::of(&request).require(Need::Admin, "register webhooks")?;
        let (hook, secret) = self
            .alerts()?
            .create_hook(request.into_inner())
            .map_err(|e| hook_status(&e))?;
        tracing::info!(webhook = %hook.id, url = %hook.url, "webhook registered");
        Ok(Response::new(p::CreateWebhookReply {
            webhook_id: hook.id,
            secret,
        }))
    }

    async fn list_webhooks(
        &self,
        request: Request<p::ListWebhooksRequest>,
    ) -> Result<Response<p::ListWebhooksReply>, Status> {
        Caller::of(&request).require(Need::Admin, "list webhooks")?;
        let webhooks = self.alerts()?.list_hooks().map_err(|e| hook_status(&e))?;
        Ok(Response::new(p::ListWebhooksReply { webhooks }))
    }

    async fn delete_webhook(
        &self,
        request: Request<p::DeleteWebhookRequest>,
    ) -> Result<Response<p::DeleteWebhookReply>, Status> {
        Caller::of(&request).require(Need::Admin, "delete webhooks")?;
        self.alerts()?
            .delete_hook(&request.into_inner().webhook_id)
            .map_err(|e| hook_status(&e))?;
        Ok(Response::new(p::DeleteWebhookReply {}))
    }
}

fn hook_status(e: &crate::alerts::HookError) -> Status {
    use crate::alerts::HookError;
    match e {
        HookError::Invalid(field, why) => {
            crate::error::status(&jejak_domain::DomainError::invalid(*field, why.clone()))
        }
        HookError::NotFound(what, id) => crate::error::status(&jejak_domain::DomainError::not_found(what, id.clone())),
        HookError::Store(why) => internal(format!("the alert store: {why}")),
    }
}
