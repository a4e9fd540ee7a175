//! Replies on chat tickets: POSTed to the chat subchannel's `callbackUrl`, signed like every
//! outgoing call of Switchyard (`X-Switchyard-Signature: sha256=<hex>` over
//! `<timestamp>.<body>` with the subchannel's `signingSecret`).

use std::time::Duration;

use serde_json::json;
use switchyard_domain::signing::sign;
use switchyard_store::outbound::Outgoing;

use crate::SendError;

/// Where a chat reply goes.
#[derive(Clone)]
pub struct ChatTarget {
    pub url: String,
    pub secret: Option<String>,
    pub channel_id: String,
}

/// The JSON the chat system receives.
pub fn body(m: &Outgoing, channel_id: &str) -> String {
    json!({
        "ticketId": m.ticket_id,
        "channelId": channel_id,
        "messageId": m.id,
        "replyId": m.mail_message_id,
        "text": m.body,
        "automated": m.is_automated(),
    })
    .to_string()
}

/// Delivers the reply; `Ok` on a 2xx answer. Connection trouble, 429 and 5xx are transient,
/// other answers permanent.
pub async fn post(
    http: &reqwest::Client,
    target: &ChatTarget,
    m: &Outgoing,
    timeout: Duration,
) -> Result<(), SendError> {
    let body = body(m, &target.channel_id);
    let ts = chrono::Utc::now().timestamp();
    let idempotency = m
        .mail_message_id
        .clone()
        .unwrap_or_else(|| format!("outbound:{}", m.id));
    let mut req = http
        .post(&target.url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header("idempotency-key", idempotency)
        .header("x-switchyard-timestamp", ts.to_string());
    if let Some(secret) = target.secret.as_deref().filter(|s| !s.is_empty()) {
        req = req.header("x-switchyard-signature", sign(secret, ts, body.as_bytes()));
    }
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| SendError::Transient(format!("chat callback: {}", e.without_url())))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else if status.is_server_error() || status.as_u16() == 429 {
        Err(SendError::Transient(format!(
            "chat callback answered {status}"
        )))
    } else {
        Err(SendError::Permanent(format!(
            "chat callback answered {status}"
        )))
    }
}
