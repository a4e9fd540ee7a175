//! The chat endpoint of a chat subchannel: a chat widget or bot posts each customer message here,
//! signed with the subchannel's signing secret (HMAC-SHA256 of the raw body, hex, in
//! `X-Switchyard-Signature: sha256=<hex>`). Messages of one conversation (`channelId`) become one
//! ticket. The message travels through ingest like every other channel (`inbound.chat`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchyard_domain::{Channel, InboundEnvelope, InboundTicket, ENVELOPE_VERSION};
use switchyard_store::subchannels;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::ApiState;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(chat_message))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChatMessage {
    /// The conversation: all its messages belong to one ticket.
    channel_id: String,
    /// The sender's id in the chat (e-mail address if known).
    from: String,
    from_name: Option<String>,
    text: String,
    /// The chat system's id of this message; makes a re-sent message a no-op.
    message_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct Accepted {
    success: bool,
    /// The inbound key ingest de-duplicates on.
    key: String,
}

/// A customer's chat message for a chat subchannel
#[utoipa::path(post, path = "/api/mind/chat/{subchannelId}/message", tag = "chat", security(()),
    params(("subchannelId" = i64, Path), ("X-Switchyard-Signature" = String, Header, description = "sha256=<hex HMAC-SHA256 of the body with the subchannel's signing secret>")),
    request_body = ChatMessage,
    responses((status = 202, body = Accepted), (status = 400, body = crate::Problem), (status = 401, body = crate::Problem)))]
async fn chat_message(
    State(state): State<ApiState>,
    Path(subchannel): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(axum::http::StatusCode, Json<Accepted>)> {
    let subchannel = crate::path_id("subchannelId", &subchannel)?;
    let secret = {
        let mut conn = state.store.pool().acquire().await?;
        subchannels::chat_signing_secret(&mut conn, subchannel).await?
    };
    // Unknown subchannel, no secret or a wrong signature: the same 401, nothing to probe.
    let signature = headers
        .get("x-switchyard-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|h| hex::decode(h).ok());
    let (Some(secret), Some(signature)) = (secret, signature) else {
        return Err(ApiError::Unauthorized);
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| ApiError::Internal(e.into()))?;
    mac.update(&body);
    mac.verify_slice(&signature)
        .map_err(|_| ApiError::Unauthorized)?;

    let msg: ChatMessage = crate::extract::parse_json(&body)?;
    for (field, v) in [
        ("channelId", &msg.channel_id),
        ("from", &msg.from),
        ("text", &msg.text),
    ] {
        if v.trim().is_empty() {
            return Err(ApiError::field(field, "must not be empty"));
        }
    }
    let id = msg
        .message_id
        .clone()
        .unwrap_or_else(|| hex::encode(Sha256::digest(&body)));
    let key = format!("chat:{subchannel}:{}:{id}", msg.channel_id);
    let envelope = InboundEnvelope {
        v: ENVELOPE_VERSION,
        key: key.clone(),
        received_at: Utc::now(),
        reply: None,
        ticket: InboundTicket {
            channel: Some(Channel::Chat),
            from: Some(msg.from),
            from_name: msg.from_name,
            subchannel_id: Some(subchannel),
            channel_id: Some(msg.channel_id.clone()),
            subject: None,
            body: Some(msg.text),
            // One conversation, one ticket: later messages are added to it.
            external_ticket_id: Some(format!("chat:{subchannel}:{}", msg.channel_id)),
            ..Default::default()
        },
    };
    state
        .bus
        .publish_json("inbound.chat", &key, &envelope)
        .await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(Accepted { success: true, key }),
    ))
}
