//! Executing AI agents: `POST /ticket/{ticketId}/autoexecute` (dark processing on request, as
//! the seed's hook calls it) and `POST /intent/{id}/execute` (a person runs, approves or
//! previews an intent). The API has no executor of its own: one autoexecute replica answers
//! over NATS request-reply and executes under the ticket's row lock.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use switchyard_domain::Permission;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_json, Auth};
use crate::{path_id, ApiState};

/// Subject the autoexecute replicas answer on.
pub const EXECUTE_SUBJECT: &str = "rpc.autoexecute";

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(autoexecute_ticket))
        .routes(routes!(execute_intent))
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct AutoexecuteParams {
    /// The one AI agent to execute (numeric id); absent: the ticket's single auto-executable one.
    execute_agent_id: Option<i64>,
    /// Execute even though several AI agents were detected on the ticket.
    allow_multiple_intents: Option<bool>,
    /// Execute even though the customer has replied on the ticket.
    allow_with_replies: Option<bool>,
}

async fn ask(state: &ApiState, request: Value) -> ApiResult<Response> {
    let payload = serde_json::to_vec(&request).map_err(|e| ApiError::Internal(e.into()))?;
    let pending = state
        .bus
        .client()
        .request(state.bus.subject(EXECUTE_SUBJECT), payload.into());
    let reply = tokio::time::timeout(Duration::from_secs(60), pending)
        .await
        .map_err(|_| ApiError::Unavailable("no autoexecute worker answered in time".into()))?
        .map_err(|e| ApiError::Unavailable(format!("no autoexecute worker answered: {e}")))?;
    let answer: Value =
        serde_json::from_slice(&reply.payload).map_err(|e| ApiError::Internal(e.into()))?;
    let status = answer.get("status").and_then(Value::as_u64).unwrap_or(500);
    let body = answer.get("body").cloned().unwrap_or(Value::Null);
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("execution failed")
        .to_owned();
    let field = body.get("field").and_then(Value::as_str).unwrap_or("id");
    match status {
        200 => Ok(Json(body).into_response()),
        400 => Err(ApiError::field(field, message)),
        404 => Err(ApiError::NotFound(message)),
        409 => Err(ApiError::Conflict(message)),
        503 => Err(ApiError::Unavailable(message)),
        _ => Err(ApiError::Internal(anyhow::anyhow!(message))),
    }
}

/// Auto-execute a ticket's AI agent (dark processing on request)
///
/// The dark-processing gates in the reference order; `allowMultipleIntents` and
/// `allowWithReplies` relax only their own gate, `executeAgentId` picks one agent per call.
/// After execution the reply goes to the customer, the ticket is closed and marked `automated`,
/// the intent becomes `executed`. A rejection is `200` with `success: false` and the `gate`
/// that stopped it (also on the ticket's activity). Parameters are read from the query or a
/// JSON body.
#[utoipa::path(post, path = "/api/mind/ticket/{ticketId}/autoexecute", tag = "ticket",
    params(("ticketId" = i64, Path, description = "Ticket id"), AutoexecuteParams),
    request_body(content = Option<AutoexecuteParams>, description = "The same parameters as JSON (optional)"),
    responses((status = 200, description = "Executed, or rejected with the gate", body = Object),
              (status = 400, body = crate::Problem), (status = 401, body = crate::Problem),
              (status = 403, body = crate::Problem), (status = 404, body = crate::Problem),
              (status = 409, body = crate::Problem), (status = 503, body = crate::Problem)))]
async fn autoexecute_ticket(
    State(state): State<ApiState>,
    auth: Auth,
    Path(ticket_id): Path<String>,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<AutoexecuteParams>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let user = auth.require(Permission::UpdateTickets)?;
    let ticket_id = path_id("ticketId", &ticket_id)?;
    let from_body: AutoexecuteParams = crate::extract::parse_optional_json(&body)?;
    let agent = query.execute_agent_id.or(from_body.execute_agent_id);
    if agent.is_some_and(|a| a <= 0) {
        return Err(ApiError::field(
            "executeAgentId",
            "must be a positive AI agent id",
        ));
    }
    ask(
        &state,
        json!({
            "kind": "ticket", "ticketId": ticket_id, "executeAgentId": agent,
            "allowMultipleIntents": query.allow_multiple_intents.or(from_body.allow_multiple_intents).unwrap_or(false),
            "allowWithReplies": query.allow_with_replies.or(from_body.allow_with_replies).unwrap_or(false),
            "userId": user.id,
        }),
    )
    .await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExecuteIntent {
    /// Parameters to use instead of the extracted ones; `_action` picks the option.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    data: Option<Map<String, Value>>,
    /// Send the reply and close the ticket when the response case says so (default true).
    #[serde(default)]
    inform_customer: Option<bool>,
    /// Only show the options and the reply; change nothing.
    #[serde(default)]
    dry_run: Option<bool>,
}

/// Execute an intent (agent assist, one-click approval)
///
/// A person runs the intent's AI agent: phase 1 (options, infos), then the chosen `_action` (or
/// the recommended option), the reply from the matching response case, the intent `executed`.
/// With `dryRun` nothing is changed. An intent already executed is a 409.
#[utoipa::path(post, path = "/api/mind/intent/{id}/execute", tag = "intent",
    params(("id" = i64, Path, description = "Intent id")),
    request_body = ExecuteIntent,
    responses((status = 200, description = "Executed (or previewed)", body = Object),
              (status = 400, body = crate::Problem), (status = 401, body = crate::Problem),
              (status = 403, body = crate::Problem), (status = 404, body = crate::Problem),
              (status = 409, body = crate::Problem), (status = 503, body = crate::Problem)))]
async fn execute_intent(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let user = auth.require(Permission::UpdateTickets)?;
    let id = path_id("id", &id)?;
    let req: ExecuteIntent = if body.iter().all(u8::is_ascii_whitespace) {
        ExecuteIntent::default()
    } else {
        parse_json(&body)?
    };
    ask(
        &state,
        json!({
            "kind": "intent", "intentId": id, "data": req.data,
            "dryRun": req.dry_run.unwrap_or(false),
            "informCustomer": req.inform_customer.unwrap_or(true),
            "userId": user.id,
        }),
    )
    .await
}
