//! Writing to a ticket's conversation: a person's reply (sent by outbound through the ticket's
//! subchannel, threaded like the autoexecute replies), an internal note (`private`, never sent)
//! and a forward to someone outside. Each is stored and queued in one transaction; the
//! outbound worker's sweep sends a queued mail whose hand-over here was lost.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::{Envelope, Permission, Stage, ENVELOPE_VERSION};
use switchyard_store::replies::{self, NewForward, NewReply, QueuedReply};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth};
use crate::{path_id, ApiState};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(reply))
        .routes(routes!(forward))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReplyRequest {
    /// The text of the reply (or of the note).
    #[schema(min_length = 1, pattern = "\\S")]
    body: String,
    /// An internal note: stored on the conversation for agents, never sent.
    #[serde(default)]
    private: bool,
    /// Drafts are not stored by Switchyard; only `false` is accepted.
    #[serde(default)]
    #[schema(schema_with = only_false)]
    is_draft: bool,
    /// Intents this reply answers (named in the `ConversationCreated` event).
    #[serde(default)]
    intent_ids: Vec<i64>,
}

/// `isDraft` as the document states it: the reference product's field, with the one value we
/// accept.
fn only_false() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Boolean)
        .enum_values(Some([false]))
        .description(Some(
            "Drafts are not stored by Switchyard; only `false` is accepted.",
        ))
        .build()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ForwardRequest {
    /// Where to: one address.
    #[schema(format = Email)]
    to_email: String,
    /// The note above the forwarded message.
    #[serde(default)]
    body: Option<String>,
    /// Default: `Fwd: <ticket subject> [#<ticketId>]`.
    #[serde(default)]
    subject: Option<String>,
}

async fn hand_to_outbound(state: &ApiState, ticket_id: i64, q: &QueuedReply) {
    let env = Envelope {
        v: ENVELOPE_VERSION,
        ticket_id,
        message_id: q.id,
        test_run_id: None,
        reply: None,
    };
    if let Err(e) = state
        .bus
        .publish_json("pipeline.reply", &env.msg_id(Stage::Outbound), &env)
        .await
    {
        tracing::warn!(error = %e, ticket_id, "reply not handed to outbound; its sweep will send it");
    }
}

async fn emit(state: &ApiState, name: &str, ticket_id: i64, data: Value, key: i64) {
    let body = json!({"event": name, "ticketId": ticket_id, "data": data});
    if let Err(e) = state
        .bus
        .publish_json(
            &format!("events.{name}"),
            &format!("{name}:api:{key}"),
            &body,
        )
        .await
    {
        tracing::warn!(error = %e, ticket_id, event = name, "event not published");
    }
}

/// Reply to the customer, or add an internal note
///
/// The reply goes out through the ticket's subchannel (e-mail threaded to the customer's last
/// message, chat back to its conversation) with a Message-ID fixed now; `private: true` stores
/// an internal note that is never sent.
#[utoipa::path(post, path = "/api/mind/ticket/{ticketId}/conversation/reply", tag = "ticket",
    params(("ticketId" = i64, Path, description = "Ticket id")),
    request_body = ReplyRequest,
    responses((status = 200, description = "Stored (and queued for sending)", body = Object),
              (status = 400, body = crate::Problem), (status = 401, body = crate::Problem),
              (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn reply(
    State(state): State<ApiState>,
    auth: Auth,
    Path(ticket_id): Path<String>,
    ApiJson(req): ApiJson<ReplyRequest>,
) -> ApiResult<Json<Value>> {
    let user = auth.require(Permission::UpdateTickets)?;
    let ticket_id = path_id("ticketId", &ticket_id)?;
    if req.body.trim().is_empty() {
        return Err(ApiError::field("body", "must not be empty"));
    }
    if req.is_draft {
        return Err(ApiError::field(
            "isDraft",
            "drafts are not stored; send or keep it in the client",
        ));
    }
    let actor = user.actor();
    let mut tx = state.store.begin().await?;
    if req.private {
        let id = replies::add_note(&mut tx, ticket_id, &req.body, &actor).await?;
        tx.commit()
            .await
            .map_err(switchyard_store::StoreError::from)?;
        emit(
            &state,
            "ConversationCreated",
            ticket_id,
            json!({"messageId": id, "direction": "internal"}),
            id,
        )
        .await;
        return Ok(Json(
            json!({"success": true, "id": id, "private": true, "sendStatus": null}),
        ));
    }
    let intent = req.intent_ids.first().copied();
    let q = replies::queue(
        &mut tx,
        &NewReply {
            ticket_id,
            intent_id: None,
            body: &req.body,
            created_by: &actor,
        },
    )
    .await?;
    tx.commit()
        .await
        .map_err(switchyard_store::StoreError::from)?;
    hand_to_outbound(&state, ticket_id, &q).await;
    emit(
        &state,
        "ConversationCreated",
        ticket_id,
        json!({"messageId": q.id, "direction": "out", "intentId": intent}),
        q.id,
    )
    .await;
    Ok(Json(
        json!({"success": true, "id": q.id, "private": false, "messageId": q.mail_message_id, "sendStatus": "queued"}),
    ))
}

/// Forward a ticket
///
/// Sends the customer's latest message, below the agent's note, to `toEmail` through the
/// ticket's mailbox; recorded on the conversation; emits `TicketForwarded`.
#[utoipa::path(post, path = "/api/mind/ticket/{ticketId}/forward", tag = "ticket",
    params(("ticketId" = i64, Path, description = "Ticket id")),
    request_body = ForwardRequest,
    responses((status = 200, description = "Queued for sending", body = Object),
              (status = 400, body = crate::Problem), (status = 401, body = crate::Problem),
              (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn forward(
    State(state): State<ApiState>,
    auth: Auth,
    Path(ticket_id): Path<String>,
    ApiJson(req): ApiJson<ForwardRequest>,
) -> ApiResult<Json<Value>> {
    let user = auth.require(Permission::UpdateTickets)?;
    let ticket_id = path_id("ticketId", &ticket_id)?;
    let to = req.to_email.trim();
    let valid = to.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty() && d.contains('.') && !to.contains(char::is_whitespace)
    });
    if !valid {
        return Err(ApiError::field("toEmail", "must be an e-mail address"));
    }
    let actor = user.actor();
    let mut tx = state.store.begin().await?;
    let (subject, quoted) = replies::forwarded_text(&mut tx, ticket_id).await?;
    let subject = req
        .subject
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| format!("Fwd: {} [#{ticket_id}]", subject.unwrap_or_default().trim()));
    let body = match req.body.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        Some(note) => format!("{note}\n\n{quoted}"),
        None => quoted,
    };
    let recipients = vec![to.to_owned()];
    let q = replies::queue_forward(
        &mut tx,
        &NewForward {
            ticket_id,
            to: &recipients,
            subject: &subject,
            body: &body,
            created_by: &actor,
        },
    )
    .await?;
    tx.commit()
        .await
        .map_err(switchyard_store::StoreError::from)?;
    hand_to_outbound(&state, ticket_id, &q).await;
    emit(
        &state,
        "TicketForwarded",
        ticket_id,
        json!({"messageId": q.id, "toEmail": to}),
        q.id,
    )
    .await;
    Ok(Json(
        json!({"success": true, "id": q.id, "messageId": q.mail_message_id, "sendStatus": "queued"}),
    ))
}
