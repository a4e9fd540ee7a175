//! Ticket endpoints.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchyard_domain::*;
use switchyard_store::{audit, stage_runs, tickets};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{ApiJson, Auth};
use crate::ApiState;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_ticket))
        .routes(routes!(get_ticket, update_ticket))
        .routes(routes!(bulk_update))
        .routes(routes!(ticket_history))
        .routes(routes!(ticket_variables))
        .routes(routes!(search_tickets))
        .routes(routes!(ticket_activity))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateParams {
    /// `realtime`: also wait for the ai stage; `batch` (default) or `false`: answer once stored.
    #[param(pattern = "^(realtime|batch|false)$")]
    pub process: Option<String>,
}

/// Body of `POST /api/mind/ticket`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTicket {
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub from: Option<String>,
    pub from_name: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
    pub subchannel_id: Option<i64>,
    pub subject: Option<String>,
    /// HTML or plain text.
    pub body: Option<String>,
    pub priority: Option<Priority>,
    pub status: Option<TicketStatus>,
    pub external_ticket_id: Option<String>,
    /// Accepted as a string or a number.
    pub contract_id: Option<Value>,
    pub channel_id: Option<String>,
    /// The seed's format, ISO 8601 or unix seconds (years 1 to 9999).
    #[schema(schema_with = created_at_schema)]
    pub created_at: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub additional_data: Option<Value>,
}

use switchyard_domain::time::STORABLE_UNIX_SECONDS as UNIX_SECONDS;

fn created_at_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{
        AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
    };
    Schema::AnyOf(
        AnyOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(*UNIX_SECONDS.start()))
                    .maximum(Some(*UNIX_SECONDS.end())),
            )
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}

/// Largest body accepted on the API (larger mails arrive through the mail connector).
const MAX_BODY_BYTES: usize = 1 << 20;

impl CreateTicket {
    fn validate(self) -> Result<InboundTicket, ApiError> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: &str| {
            errors.push(FieldError {
                field: field.to_owned(),
                message: message.to_owned(),
            })
        };
        let channel = self.channel.unwrap_or(Channel::Email);
        // NUL characters were already replaced when the body was read (`extract::parse_json`).
        let (subject, body, from_name) = (self.subject, self.body, self.from_name);
        let from = self
            .from
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty());
        if from.is_none() && channel != Channel::System {
            bad("from", "required unless channel is system");
        }
        if channel == Channel::Email {
            if let Some(f) = &from {
                if !looks_like_email(f) {
                    bad("from", "must be an e-mail address for channel email");
                }
            }
        }
        for (i, t) in self.to.iter().enumerate() {
            if t.trim().is_empty() {
                bad(&format!("to[{i}]"), "must not be empty");
            }
        }
        let has_text = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
        if !has_text(&subject) && !has_text(&body) {
            bad("body", "a ticket needs a subject or a body");
        }
        if body.as_ref().is_some_and(|b| b.len() > MAX_BODY_BYTES) {
            bad("body", "larger than 1 MiB");
        }
        let contract_id = match self.contract_id {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
            Some(Value::String(s)) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => {
                Some(s)
            }
            Some(_) => {
                bad("contractId", "must be a numeric id");
                None
            }
        };
        let created_at = match self.created_at {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let t = time::parse_time(&s);
                if t.is_none() {
                    bad(
                        "createdAt",
                        "not a timestamp (YYYY-MM-DD HH:MM:SS, ISO 8601 or unix seconds)",
                    );
                }
                t
            }
            Some(Value::Number(n)) => {
                let t = n
                    .as_i64()
                    .filter(|s| UNIX_SECONDS.contains(s))
                    .and_then(|s| chrono::DateTime::from_timestamp(s, 0));
                if t.is_none() {
                    bad("createdAt", "not a unix timestamp");
                }
                t
            }
            Some(_) => {
                bad("createdAt", "must be a string or a number");
                None
            }
        };
        if self
            .additional_data
            .as_ref()
            .is_some_and(|d| !d.is_object())
        {
            bad("additionalData", "must be an object");
        }
        if !errors.is_empty() {
            let summary = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ApiError::BadRequest(
                format!("invalid ticket: {summary}"),
                errors,
            ));
        }
        Ok(InboundTicket {
            channel: Some(channel),
            direction: self.direction,
            from,
            from_name,
            to: self.to,
            cc: self.cc,
            bcc: self.bcc,
            subchannel_id: self.subchannel_id,
            subject,
            body,
            priority: self.priority,
            status: self.status,
            external_ticket_id: self.external_ticket_id,
            contract_id,
            channel_id: self.channel_id,
            created_at,
            additional_data: self.additional_data,
        })
    }
}

/// What a sender on channel `email` must contain: `local@domain.tld`, bare or as
/// `Name <local@domain.tld>`. The OpenAPI document carries the same pattern.
pub(crate) const EMAIL_PATTERN: &str = r"[^ \t\r\n@<>]@[^ \t\r\n@<>]*\.[^ \t\r\n@<>]";

fn looks_like_email(s: &str) -> bool {
    static EMAIL: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(EMAIL_PATTERN).ok());
    EMAIL.as_ref().is_some_and(|re| re.is_match(s))
}

/// Answer when ingest has not confirmed in time: the ticket still appears.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    success: bool,
    request_id: String,
    message: String,
}

/// Create a ticket
///
/// The ticket goes through ingest like every other channel; the answer is the stored ticket. An
/// `Idempotency-Key` header makes retries of the same request return the same ticket.
#[utoipa::path(
    post,
    path = "/api/mind/ticket",
    tag = "ticket",
    params(CreateParams),
    request_body = CreateTicket,
    responses(
        (status = 200, description = "The stored ticket", body = Ticket),
        (status = 202, description = "Accepted; not confirmed in time", body = Accepted),
        (status = 400, description = "Invalid fields", body = crate::Problem),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 403, description = "Missing permission", body = crate::Problem),
    )
)]
async fn create_ticket(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(params): crate::extract::ApiQuery<CreateParams>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateTicket>,
) -> ApiResult<Response> {
    auth.require(Permission::UpdateTickets)?;
    let after = match params.process.as_deref() {
        None | Some("batch") | Some("false") => Stage::Ingest,
        Some("realtime") => Stage::Ai,
        Some(_) => {
            return Err(ApiError::field(
                "process",
                "must be realtime, batch or false",
            ))
        }
    };
    let ticket = body.validate()?;
    let request_id = match headers.get("idempotency-key").map(|v| v.to_str()) {
        Some(Ok(k)) if !k.is_empty() && k.len() <= 200 => k.to_owned(),
        Some(_) => {
            return Err(ApiError::field(
                "Idempotency-Key",
                "must be 1 to 200 visible characters",
            ))
        }
        None => uuid::Uuid::now_v7().to_string(),
    };
    let key = format!("api:{}:{request_id}", auth.0.id);
    let wait_id = uuid::Uuid::new_v4().simple().to_string();
    let (reply_subject, waiting) = state.waiters.register(&wait_id);
    let envelope = InboundEnvelope {
        v: ENVELOPE_VERSION,
        key: key.clone(),
        received_at: Utc::now(),
        reply: Some(ReplyPoint {
            subject: reply_subject,
            after,
        }),
        ticket,
    };
    // The de-duplication id is per request, not per key: a client's retry with the same
    // Idempotency-Key must reach ingest (which finds the stored ticket and answers), not be
    // swallowed by JetStream's window. The database keeps the effect single.
    state
        .bus
        .publish_json("inbound.api", &format!("{key}:{wait_id}"), &envelope)
        .await?;

    let answer = waiting.wait(state.reply_timeout).await;
    let ticket_id = answer
        .as_ref()
        .and_then(|a| a.get("ticketId"))
        .and_then(Value::as_i64);
    match ticket_id {
        Some(id) => {
            let mut conn = state.store.pool().acquire().await?;
            let t = tickets::load(&mut conn, id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("ticket {id}")))?;
            Ok(Json(t).into_response())
        }
        None => Ok((
            StatusCode::ACCEPTED,
            Json(Accepted {
                success: true,
                request_id,
                message: "accepted; the ticket will appear once ingest has stored it".into(),
            }),
        )
            .into_response()),
    }
}

/// Get a ticket
#[utoipa::path(
    get,
    path = "/api/mind/ticket/{ticketId}",
    tag = "ticket",
    params(("ticketId" = i64, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The ticket", body = Ticket),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 404, description = "No such ticket", body = crate::Problem),
    )
)]
async fn get_ticket(
    State(state): State<ApiState>,
    auth: Auth,
    Path(ticket_id): Path<String>,
) -> ApiResult<Json<Ticket>> {
    auth.require(Permission::ReadTickets)?;
    let id = parse_ticket_id(&ticket_id)?;
    let mut conn = state.store.pool().acquire().await?;
    let t = tickets::load(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("ticket {id}")))?;
    Ok(Json(t))
}

/// Body of `PATCH /api/mind/ticket/{ticketId}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTicket {
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    /// `auto_spam`, `auto_programmatic`, `manual_spam`, `auto_clean`, `manual_clean`.
    #[schema(pattern = "^(auto_spam|auto_programmatic|manual_spam|auto_clean|manual_clean)$")]
    pub spam_status: Option<String>,
    /// 30 (confirmed by an agent) or 40 (stricter verification).
    #[schema(minimum = 30, maximum = 40, multiple_of = 10)]
    pub customer_legitimation: Option<i32>,
    /// Accepted as a string or a number.
    pub contract_id: Option<Value>,
    /// Merged into the ticket's additionalData; a key set to null is removed.
    #[schema(value_type = Option<Object>)]
    pub additional_data: Option<Value>,
}

#[derive(Serialize, ToSchema)]
struct Updated {
    success: bool,
    ticket: Ticket,
}

/// Update a ticket
///
/// Changes status, priority, spam status, the contract, the customer's legitimation (30/40 by
/// an agent) or additional data; recorded in the audit log with the user, announced as
/// `events.TicketUpdated`. A ticket closed here is never handed out by getLatest.
#[utoipa::path(
    patch,
    path = "/api/mind/ticket/{ticketId}",
    tag = "ticket",
    params(("ticketId" = i64, Path, description = "Ticket id")),
    request_body = UpdateTicket,
    responses(
        (status = 200, description = "The updated ticket", body = Updated),
        (status = 400, description = "Invalid fields", body = crate::Problem),
        (status = 403, description = "Missing updateTickets", body = crate::Problem),
        (status = 404, description = "No such ticket", body = crate::Problem),
    )
)]
async fn update_ticket(
    State(state): State<ApiState>,
    auth: Auth,
    Path(ticket_id): Path<String>,
    ApiJson(body): ApiJson<UpdateTicket>,
) -> ApiResult<Json<Updated>> {
    let user = auth.require(Permission::UpdateTickets)?;
    let id = parse_ticket_id(&ticket_id)?;
    let patch = body.into_patch("")?;
    let mut tx = state.store.begin().await?;
    let ticket = apply_update(&mut tx, id, &patch, &user.actor(), "").await?;
    tx.commit().await?;
    announce_update(&state, id, &patch, &user.actor()).await;
    Ok(Json(Updated {
        success: true,
        ticket,
    }))
}

impl UpdateTicket {
    /// Validates the fields (`prefix` names them in a bulk request, e.g. `[2].`).
    fn into_patch(self, prefix: &str) -> Result<tickets::TicketPatch, ApiError> {
        const SPAM: [&str; 5] = [
            "auto_spam",
            "auto_programmatic",
            "manual_spam",
            "auto_clean",
            "manual_clean",
        ];
        let field = |f: &str| format!("{prefix}{f}");
        if self
            .spam_status
            .as_deref()
            .is_some_and(|s| !SPAM.contains(&s))
        {
            return Err(ApiError::field(
                &field("spamStatus"),
                format!("must be one of {}", SPAM.join(", ")),
            ));
        }
        if self
            .customer_legitimation
            .is_some_and(|l| l != 30 && l != 40)
        {
            return Err(ApiError::field(
                &field("customerLegitimation"),
                "an agent sets 30 or 40",
            ));
        }
        if self
            .additional_data
            .as_ref()
            .is_some_and(|d| !d.is_object())
        {
            return Err(ApiError::field(
                &field("additionalData"),
                "must be an object",
            ));
        }
        let contract_id = match &self.contract_id {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .or_else(|| {
                        // Digits only, at most 18 significant ones (the document's pattern).
                        v.as_str()
                            .filter(|s| {
                                !s.is_empty()
                                    && s.bytes().all(|b| b.is_ascii_digit())
                                    && s.trim_start_matches('0').len() <= 18
                            })
                            .and_then(|s| s.parse().ok())
                    })
                    .filter(|c| *c > 0)
                    .ok_or_else(|| ApiError::field(&field("contractId"), "must be a numeric id"))?,
            ),
        };
        let patch = tickets::TicketPatch {
            status: self.status,
            priority: self.priority,
            spam_status: self.spam_status,
            customer_legitimation: self.customer_legitimation,
            contract_id,
            additional_data: self.additional_data,
            ..Default::default()
        };
        // An empty patch changes nothing and answers with the ticket, like a form sent
        // unchanged.
        Ok(patch)
    }
}

/// Applies a validated patch in the caller's transaction and returns the updated ticket.
async fn apply_update(
    conn: &mut switchyard_store::PgConnection,
    id: i64,
    patch: &tickets::TicketPatch,
    actor: &str,
    prefix: &str,
) -> ApiResult<Ticket> {
    if let Some(c) = patch.contract_id {
        if switchyard_store::customers::contract(&mut *conn, c)
            .await?
            .is_none()
        {
            return Err(ApiError::unknown_reference(
                &format!("{prefix}contractId"),
                "no such contract",
            ));
        }
    }
    tickets::apply_patch(&mut *conn, id, patch, actor).await?;
    tickets::load(conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("ticket {id}")))
}

/// `events.TicketUpdated`, after the commit.
async fn announce_update(state: &ApiState, id: i64, patch: &tickets::TicketPatch, actor: &str) {
    if patch.is_empty() {
        return;
    }
    let event = json!({"event": "TicketUpdated", "ticketId": id,
                       "data": {"ticketId": id, "changes": patch, "by": actor}});
    let msg_id = format!("TicketUpdated:{id}:{}", uuid::Uuid::now_v7());
    if let Err(e) = state
        .bus
        .publish_json("events.TicketUpdated", &msg_id, &event)
        .await
    {
        tracing::warn!(error = %e, ticket_id = id, "TicketUpdated not published");
    }
}

/// One element of `PATCH /api/mind/ticket`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkUpdate {
    #[schema(minimum = 1)]
    pub id: i64,
    #[serde(flatten)]
    pub changes: UpdateTicket,
}

#[derive(Serialize, ToSchema)]
struct BulkUpdated {
    success: bool,
    /// The updated tickets' ids.
    updated: Vec<i64>,
}

/// Update a few tickets at once
///
/// An array of partial tickets with their `id`; all are validated first and applied in one
/// transaction (all or none).
#[utoipa::path(
    patch,
    path = "/api/mind/ticket",
    tag = "ticket",
    request_body = Vec<BulkUpdate>,
    responses(
        (status = 200, description = "Updated", body = BulkUpdated),
        (status = 400, description = "Invalid fields, named with their index", body = crate::Problem),
        (status = 404, description = "A ticket does not exist", body = crate::Problem),
    )
)]
async fn bulk_update(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(body): ApiJson<Vec<BulkUpdate>>,
) -> ApiResult<Json<BulkUpdated>> {
    let user = auth.require(Permission::UpdateTickets)?;
    if body.len() > 1000 {
        return Err(ApiError::field("body", "send at most 1000 tickets"));
    }
    let patches = body
        .into_iter()
        .enumerate()
        .map(|(i, b)| Ok((b.id, b.changes.into_patch(&format!("[{i}]."))?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let mut tx = state.store.begin().await?;
    for (i, (id, patch)) in patches.iter().enumerate() {
        apply_update(&mut tx, *id, patch, &user.actor(), &format!("[{i}].")).await?;
    }
    tx.commit().await?;
    for (id, patch) in &patches {
        announce_update(&state, *id, patch, &user.actor()).await;
    }
    Ok(Json(BulkUpdated {
        success: true,
        updated: patches.iter().map(|(id, _)| *id).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct History {
    success: bool,
    total: i64,
    total_opened_tickets: i64,
    #[schema(value_type = Vec<Object>)]
    history: Vec<Value>,
}

/// Get a ticket's history
///
/// The other tickets of the same customer (or contract), newest first.
#[utoipa::path(
    get,
    path = "/api/mind/ticket/{ticketId}/history",
    tag = "ticket",
    params(("ticketId" = i64, Path, description = "Ticket id"), crate::Page),
    responses((status = 200, body = History), (status = 404, body = crate::Problem))
)]
async fn ticket_history(
    State(state): State<ApiState>,
    auth: Auth,
    Path(ticket_id): Path<String>,
    crate::extract::ApiQuery(page): crate::extract::ApiQuery<crate::Page>,
) -> ApiResult<Json<History>> {
    auth.require(Permission::ReadTickets)?;
    let id = parse_ticket_id(&ticket_id)?;
    let (limit, offset) = page.resolve()?;
    let mut conn = state.store.pool().acquire().await?;
    let (history, total, open) = tickets::history(&mut conn, id, limit, offset)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("ticket {id}")))?;
    Ok(Json(History {
        success: true,
        total,
        total_opened_tickets: open,
        history,
    }))
}

#[derive(Serialize, ToSchema)]
struct Variables {
    success: bool,
    /// What each parameter source resolves to for this ticket: `ticket`, `customer`,
    /// `contract`, `settings` (non-secret).
    #[schema(value_type = Object)]
    variables: Value,
}

/// Get ticket variables
///
/// What conditions and templates can refer to for this ticket, by source, with the values they
/// resolve to now (e.g. `contract.energy`, `ticket.channel`).
#[utoipa::path(
    get,
    path = "/api/mind/ticket/{ticketId}/variables",
    tag = "ticket",
    params(("ticketId" = i64, Path, description = "Ticket id")),
    responses((status = 200, body = Variables), (status = 404, body = crate::Problem))
)]
async fn ticket_variables(
    State(state): State<ApiState>,
    auth: Auth,
    Path(ticket_id): Path<String>,
) -> ApiResult<Json<Variables>> {
    auth.require(Permission::ReadTickets)?;
    let id = parse_ticket_id(&ticket_id)?;
    let mut conn = state.store.pool().acquire().await?;
    let facts = switchyard_store::routing::routing_facts(&mut conn, id).await?;
    let settings: serde_json::Map<String, Value> =
        switchyard_store::settings::list(&mut conn, false)
            .await?
            .into_iter()
            .filter(|s| !s.secret)
            .map(|s| (s.name.to_owned(), s.value))
            .collect();
    Ok(Json(Variables {
        success: true,
        variables: json!({
            "ticket": facts.ticket,
            "customer": facts.customer,
            "contract": facts.contract,
            "intents": facts.intent_codes,
            "settings": settings,
        }),
    }))
}

#[derive(Serialize, ToSchema)]
struct SearchResult {
    success: bool,
    /// Compact tickets: no bodies, attachments or template.
    #[schema(value_type = Vec<Object>)]
    tickets: Vec<Value>,
    total: i64,
    offset: i64,
    limit: i64,
}

/// Get a list of tickets
///
/// Filters `[{key, comparator, value | values | from, to}]` over `t.status`, `t.channel`,
/// `t.direction`, `t.priority`, `t.createdAt`, `t.modifiedAt`, `t.dueBy`, `t.lastMessageAt`,
/// `t.lastCustomerMessageAt`, `t.agentId`, `t.contractId`, `t.customerId`, `t.aiSupportLevel`,
/// `t.spamStatus`, `t.sentiment`, `t.from`, `t.languageCode`, `t.subchannelId`, `t.id`,
/// `tt.tagId`, `i.aiAgentId`; comparators `= != > < >= <= in between like`; `q` for words;
/// ordering and `limit`/`offset`.
#[utoipa::path(
    post,
    path = "/api/mind/ticket/search",
    tag = "ticket",
    request_body = switchyard_store::search::SearchRequest,
    responses(
        (status = 200, description = "Matching tickets", body = SearchResult),
        (status = 400, description = "Invalid filter", body = crate::Problem),
    )
)]
async fn search_tickets(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(body): ApiJson<switchyard_store::search::SearchRequest>,
) -> ApiResult<Json<SearchResult>> {
    auth.require(Permission::ReadTickets)?;
    let mut conn = state.store.pool().acquire().await?;
    let (tickets, total, limit, offset) =
        switchyard_store::search::search(&mut conn, &body).await?;
    Ok(Json(SearchResult {
        success: true,
        tickets,
        total,
        offset,
        limit,
    }))
}

pub(crate) fn parse_ticket_id(s: &str) -> Result<i64, ApiError> {
    crate::path_id("ticketId", s)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ActivityParams {
    /// Also list every recorded change of the ticket (the audit log).
    pub show_technical_information: Option<bool>,
}

/// One stage a ticket passed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StageActivity {
    /// `ingest`, `ai`, `router` or `autoexecute`.
    stage: String,
    message_id: Option<i64>,
    #[schema(example = "2022-12-13 22:18:06")]
    at: String,
    started_at: chrono::DateTime<Utc>,
    finished_at: chrono::DateTime<Utc>,
    duration_ms: f64,
    /// The replica that did the work.
    replica: String,
    trace_id: Option<String>,
    outcome: Value,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Activity {
    success: bool,
    ticket_id: i64,
    processing_flags: Vec<ProcessingFlag>,
    activity: Vec<StageActivity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<Vec<Value>>,
}

/// Get ticket activity
///
/// The ticket's timeline: each stage it passed, when, by which replica, with the outcome.
#[utoipa::path(
    get,
    path = "/api/mind/ticket/{ticketId}/activity",
    tag = "ticket",
    params(("ticketId" = i64, Path, description = "Ticket id"), ActivityParams),
    responses(
        (status = 200, description = "Timeline, oldest first", body = Activity),
        (status = 401, description = "Not authenticated", body = crate::Problem),
        (status = 404, description = "No such ticket", body = crate::Problem),
    )
)]
async fn ticket_activity(
    State(state): State<ApiState>,
    auth: Auth,
    Path(ticket_id): Path<String>,
    crate::extract::ApiQuery(params): crate::extract::ApiQuery<ActivityParams>,
) -> ApiResult<Json<Activity>> {
    auth.require(Permission::ReadTickets)?;
    let id = parse_ticket_id(&ticket_id)?;
    let mut conn = state.store.pool().acquire().await?;
    let flags = tickets::processing_flags(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("ticket {id}")))?;
    let runs = stage_runs::for_ticket(&mut conn, id).await?;
    let activity = runs
        .into_iter()
        .map(|r| StageActivity {
            at: time::format_ticket_time(r.finished_at),
            duration_ms: (r.finished_at - r.started_at)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1000.0,
            stage: r.stage,
            message_id: r.message_id,
            started_at: r.started_at,
            finished_at: r.finished_at,
            replica: r.replica,
            trace_id: r.trace_id,
            outcome: r.outcome,
        })
        .collect();
    let changes = if params.show_technical_information.unwrap_or(false) {
        let entries = audit::for_entity(&mut conn, "ticket", &id.to_string()).await?;
        Some(
            entries
                .into_iter()
                .map(|e| json!({"at": time::format_ticket_time(e.at), "actor": e.actor, "action": e.action, "changes": e.changes}))
                .collect(),
        )
    } else {
        None
    };
    Ok(Json(Activity {
        success: true,
        ticket_id: id,
        processing_flags: flags,
        activity,
        changes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> CreateTicket {
        serde_json::from_value(v).expect("deserialize")
    }

    #[test]
    fn a_valid_mail_passes() {
        let t = body(json!({"from": "Tom <tom@mustermann.de>", "subject": "Zählerstand", "contractId": 746839}))
            .validate()
            .expect("valid");
        assert_eq!(t.contract_id.as_deref(), Some("746839"));
        assert_eq!(t.channel, Some(Channel::Email));
    }

    #[test]
    fn each_bad_field_is_named() {
        let err = body(json!({"from": "nobody", "contractId": "x1", "createdAt": "soon"}))
            .validate()
            .expect_err("invalid");
        let ApiError::BadRequest(_, errors) = err else {
            panic!("not a 400")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["from", "body", "contractId", "createdAt"]);
    }

    #[test]
    fn unknown_enum_values_are_rejected_by_serde() {
        let r: Result<CreateTicket, _> = serde_json::from_value(json!({"channel": "fax"}));
        assert!(r.is_err());
    }
}
