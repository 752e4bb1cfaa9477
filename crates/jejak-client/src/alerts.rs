//! `jejak webhook` (register, list and delete the endpoints alerts are
//! POSTed to) and `jejak alerts` (follow the alerts as they are raised).

use anyhow::Context;
use jejak_proto::v1 as p;
use jejak_proto::v1::admin_service_client::AdminServiceClient;

use crate::{connect, Target};

/// What a webhook is sent: one party's, one facility's or one lot's alerts
/// (none: every alert).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub party: Option<String>,
    pub facility: Option<String>,
    pub lot: Option<String>,
}

/// Registers a webhook; prints its id and its secret (shown only now).
pub async fn create(target: &Target, url: &str, filter: Filter) -> anyhow::Result<p::CreateWebhookReply> {
    let mut c = AdminServiceClient::new(connect(target).await?);
    let reply = c
        .create_webhook(p::CreateWebhookRequest {
            url: url.to_string(),
            party_id: filter.party.unwrap_or_default(),
            facility_id: filter.facility.unwrap_or_default(),
            lot_id: filter.lot.unwrap_or_default(),
        })
        .await
        .context("register the webhook")?
        .into_inner();
    Ok(reply)
}

pub async fn list(target: &Target) -> anyhow::Result<Vec<p::Webhook>> {
    let mut c = AdminServiceClient::new(connect(target).await?);
    Ok(c.list_webhooks(p::ListWebhooksRequest {})
        .await
        .context("list the webhooks")?
        .into_inner()
        .webhooks)
}

pub async fn delete(target: &Target, id: &str) -> anyhow::Result<()> {
    let mut c = AdminServiceClient::new(connect(target).await?);
    c.delete_webhook(p::DeleteWebhookRequest {
        webhook_id: id.to_string(),
    })
    .await
    .context("delete the webhook")?;
    Ok(())
}

/// The webhooks as a table.
pub fn render(hooks: &[p::Webhook]) -> String {
    let mut out = String::from("id                   delivered  pending  failed  for                         url\n");
    for h in hooks {
        let what = match (h.party_id.as_str(), h.facility_id.as_str(), h.lot_id.as_str()) {
            (p, _, _) if !p.is_empty() => format!("party {p}"),
            (_, f, _) if !f.is_empty() => format!("facility {f}"),
            (_, _, l) if !l.is_empty() => format!("lot {l}"),
            _ => "every alert".to_string(),
        };
        out += &format!(
            "{:<20} {:>9} {:>8} {:>7}  {:<27} {}\n",
            h.webhook_id, h.delivered, h.pending, h.failed, what, h.url
        );
    }
    out
}

/// Prints each alert that concerns the caller as a JSON line, from after
/// `after` on, until interrupted.
pub async fn watch(target: &Target, after: u64) -> anyhow::Result<()> {
    let mut c = crate::trace_client(target).await?;
    let mut stream = c
        .watch_alerts(p::WatchAlertsRequest { after_position: after })
        .await
        .context("watch the alerts")?
        .into_inner();
    while let Some(a) = stream.message().await.context("read an alert")? {
        println!("{}", a.json);
    }
    Ok(())
}
