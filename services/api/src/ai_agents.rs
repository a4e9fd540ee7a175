//! AI agents (`/api/mind/aiAgents…`, `/api/mind/aiAgent…`) and the intents detected on a ticket
//! (`/api/mind/intent/byTicketId/{ticketId}`).
//!
//! Every change is announced as `events.AiAgentChanged`; the ai replicas rebuild their detector
//! from it, so a new agent is detected without a restart or a training step.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchyard_domain::{AiAgent, Channel, Permission};
use switchyard_store::{ai_agents, intents, tickets};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_json, ApiJson, Auth};
use crate::{path_id, ApiState, Page};

/// The default agents `loadDefaults` installs (German and English templates).
pub const DEFAULT_AGENTS: &str = include_str!("../../../shared/store/defaults/ai_agents.json");

/// Subject the ai replicas answer previews on (request-reply, one replica answers).
pub const PREVIEW_SUBJECT: &str = "rpc.ai.preview";

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_agents))
        .routes(routes!(agent_tree))
        .routes(routes!(load_defaults))
        .routes(routes!(available_defaults))
        .routes(routes!(create_agent))
        .routes(routes!(get_agent, update_agent, delete_agent))
        .routes(routes!(preview_agent))
        .routes(routes!(agent_outcome))
        .routes(routes!(similar_tickets))
        .routes(routes!(intents_by_ticket))
}

/// The default agents, parsed.
pub fn default_agents() -> Result<Vec<AiAgent>, serde_json::Error> {
    serde_json::from_str(DEFAULT_AGENTS)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `short` (id, name, slug), `medium` (plus description, channels, tag, intelligence,
    /// active) or `full` (everything, the default).
    #[param(pattern = "^(short|medium|full)$")]
    format: Option<String>,
    /// Part of the name, slug or description.
    q: Option<String>,
    /// `rulebased` or `smart`.
    #[param(pattern = "^(rulebased|smart)$")]
    intelligence: Option<String>,
    /// Only agents serving this channel.
    channel: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AgentList {
    success: bool,
    total: i64,
    #[schema(value_type = Vec<Object>)]
    ai_agents: Vec<Value>,
}

fn shaped(agent: Value, format: &str) -> Value {
    let keep: &[&str] = match format {
        "short" => &["id", "name", "slug"],
        "medium" => &[
            "id",
            "name",
            "slug",
            "description",
            "channels",
            "tagId",
            "intelligence",
            "active",
        ],
        _ => return agent,
    };
    match agent {
        Value::Object(mut o) => {
            o.retain(|k, _| keep.contains(&k.as_str()));
            Value::Object(o)
        }
        other => other,
    }
}

fn format_of(f: Option<&str>) -> ApiResult<&str> {
    match f.unwrap_or("full") {
        f @ ("short" | "medium" | "full") => Ok(f),
        _ => Err(ApiError::field("format", "must be short, medium or full")),
    }
}

/// List of all available AI agents as an array
#[utoipa::path(get, path = "/api/mind/aiAgents", tag = "aiAgent", params(ListQuery, Page),
    responses((status = 200, body = AgentList)))]
async fn list_agents(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<ListQuery>,
    crate::extract::ApiQuery(page): crate::extract::ApiQuery<Page>,
) -> ApiResult<Json<AgentList>> {
    auth.require(Permission::ReadTickets)?;
    let format = format_of(q.format.as_deref())?;
    let (limit, offset) = page.resolve()?;
    if let Some(i) = q.intelligence.as_deref() {
        if !["rulebased", "smart"].contains(&i) {
            return Err(ApiError::field(
                "intelligence",
                "must be rulebased or smart",
            ));
        }
    }
    let mut conn = state.store.pool().acquire().await?;
    let (agents, total) = ai_agents::list(
        &mut conn,
        q.q.as_deref().filter(|s| !s.is_empty()),
        q.channel
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "all"),
        q.intelligence.as_deref(),
        limit,
        offset,
    )
    .await?;
    Ok(Json(AgentList {
        success: true,
        total,
        ai_agents: agents.into_iter().map(|a| shaped(a, format)).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AgentTree {
    success: bool,
    /// The agents detected most often in the last 30 days.
    #[schema(value_type = Vec<Object>)]
    top_candidates: Vec<Value>,
    /// Agents grouped by their tag: `[{tagId, tagName, aiAgents[]}]`; agents without a tag
    /// under `tagId: null`.
    #[schema(value_type = Vec<Object>)]
    ai_agents_tree: Vec<Value>,
}

/// List of all available AI agents as a tree based on the associated tag
#[utoipa::path(get, path = "/api/mind/aiAgents/tree", tag = "aiAgent", params(ListQuery),
    responses((status = 200, body = AgentTree)))]
async fn agent_tree(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<ListQuery>,
) -> ApiResult<Json<AgentTree>> {
    auth.require(Permission::ReadTickets)?;
    let format = format_of(q.format.as_deref().or(Some("short")))?;
    if q.intelligence
        .as_deref()
        .is_some_and(|i| !["rulebased", "smart"].contains(&i))
    {
        return Err(ApiError::field(
            "intelligence",
            "must be rulebased or smart",
        ));
    }
    let mut conn = state.store.pool().acquire().await?;
    let (agents, _) = ai_agents::list(&mut conn, None, None, None, 1000, 0).await?;
    let tags: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM tags")
        .fetch_all(&mut *conn)
        .await
        .map_err(switchyard_store::StoreError::from)?;
    let top: Vec<(String, i64)> = sqlx::query_as(
        "SELECT code, count(*) FROM intents WHERE created_at > now() - interval '30 days'
          GROUP BY code ORDER BY count(*) DESC, code LIMIT 5",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(switchyard_store::StoreError::from)?;
    let mut groups: Vec<(Option<i64>, Vec<Value>)> = Vec::new();
    for agent in &agents {
        let tag = agent.get("tagId").and_then(Value::as_i64);
        match groups.iter_mut().find(|(t, _)| *t == tag) {
            Some((_, list)) => list.push(shaped(agent.clone(), format)),
            None => groups.push((tag, vec![shaped(agent.clone(), format)])),
        }
    }
    groups.sort_by_key(|(t, _)| (t.is_none(), *t));
    let tree = groups
        .into_iter()
        .map(|(tag, list)| {
            let name =
                tag.and_then(|t| tags.iter().find(|(id, _)| *id == t).map(|(_, n)| n.clone()));
            json!({"tagId": tag, "tagName": name, "aiAgents": list})
        })
        .collect();
    let top_candidates = top
        .into_iter()
        .filter_map(|(code, count)| {
            let agent = agents
                .iter()
                .find(|a| a.get("slug").and_then(Value::as_str) == Some(code.as_str()))?;
            let mut a = shaped(agent.clone(), "short");
            a["detectedLast30Days"] = json!(count);
            Some(a)
        })
        .collect();
    Ok(Json(AgentTree {
        success: true,
        top_candidates,
        ai_agents_tree: tree,
    }))
}

/// Checks what serde cannot: identifiers, channels, parameter keys and the references of the
/// response cases.
fn validate(agent: &AiAgent) -> ApiResult<()> {
    let slug_ok = !agent.slug.is_empty()
        && agent.slug.len() <= 64
        && agent
            .slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !slug_ok {
        return Err(ApiError::field(
            "slug",
            "1 to 64 characters of a-z, 0-9, _ and -",
        ));
    }
    if agent.name.trim().is_empty() {
        return Err(ApiError::field("name", "must not be empty"));
    }
    for (i, c) in agent.channels.iter().enumerate() {
        if c != "all" && Channel::parse(c).is_none() {
            return Err(ApiError::field(
                &format!("channels[{i}]"),
                "must be all or a channel (email, portal, phone, letter, system, chat, walkIn)",
            ));
        }
    }
    if !["rulebased", "smart"].contains(&agent.intelligence.as_str()) {
        return Err(ApiError::field(
            "intelligence",
            "must be rulebased or smart",
        ));
    }
    let mut keys = HashSet::new();
    for (i, p) in agent.settings.parameters.iter().enumerate() {
        let field = format!("settings.parameters[{i}]");
        if p.key.trim().is_empty() {
            return Err(ApiError::field(
                &format!("{field}.key"),
                "must not be empty",
            ));
        }
        if !keys.insert(p.key.as_str()) {
            return Err(ApiError::field(&format!("{field}.key"), "is used twice"));
        }
        if let Some(j) = p.options.iter().position(|o| !o.is_object()) {
            return Err(ApiError::field(
                &format!("{field}.options[{j}]"),
                "must be an object",
            ));
        }
        if let Some(v) = p.validation.as_deref() {
            if switchyard_nlp::params::Kind::of(Some(v), None).is_none() {
                return Err(ApiError::field(
                    &format!("{field}.validation"),
                    "must be iban, date, amount, meterNumber, meterReading, address, postalCode, email or number",
                ));
            }
        }
    }
    for name in ["keywords", "excludeKeywords"] {
        let Some(k) = agent.settings.detection_details.extra.get(name) else {
            continue;
        };
        let list = k.as_array().ok_or_else(|| {
            ApiError::field(
                &format!("settings.detectionDetails.{name}"),
                "must be an array of regular expressions",
            )
        })?;
        for (i, p) in list.iter().enumerate() {
            let field = format!("settings.detectionDetails.{name}[{i}]");
            let p = p
                .as_str()
                .ok_or_else(|| ApiError::field(&field, "must be a string"))?;
            regex::Regex::new(p)
                .map_err(|e| ApiError::field(&field, format!("not a regular expression: {e}")))?;
        }
    }
    let ids: HashSet<String> = agent
        .settings
        .parameters
        .iter()
        .filter_map(|p| p.id.map(|id| id.to_string()))
        .collect();
    if !(agent.appearance.is_object() || agent.appearance.is_null()) {
        return Err(ApiError::field("appearance", "must be an object"));
    }
    for (i, step) in agent.settings.executor.iter().enumerate() {
        if !step.is_object() {
            return Err(ApiError::field(
                &format!("settings.executor[{i}]"),
                "must be an object",
            ));
        }
    }
    for (i, case) in agent.settings.response_cases.iter().enumerate() {
        if !(case.condition.is_object() || case.condition.is_null()) {
            return Err(ApiError::field(
                &format!("settings.responseCases[{i}].condition"),
                "must be an object (null or {} always holds)",
            ));
        }
        let operands = case
            .condition
            .get("operands")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (j, op) in operands.iter().enumerate() {
            let reference = match op.get("operand") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => continue,
            };
            if !keys.contains(reference.as_str())
                && !ids.contains(&reference)
                && !reference.starts_with('_')
            {
                return Err(ApiError::field(
                    &format!("settings.responseCases[{i}].condition.operands[{j}].operand"),
                    format!("refers to an unknown parameter {reference}"),
                ));
            }
        }
    }
    Ok(())
}

/// Tells every ai replica to rebuild its detector.
async fn announce(state: &ApiState, id: i64, slug: &str, action: &str, actor: &str) {
    let msg_id = format!("AiAgentChanged:{id}:{}", uuid::Uuid::now_v7());
    let body = json!({"event": "AiAgentChanged", "data": {"aiAgentId": id, "slug": slug, "action": action, "modifiedBy": actor}});
    if let Err(e) = state
        .bus
        .publish_json("events.AiAgentChanged", &msg_id, &body)
        .await
    {
        // The replicas also reload on their own every few seconds.
        tracing::warn!(error = %e, ai_agent_id = id, "AiAgentChanged not published");
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AgentSaved {
    success: bool,
    #[schema(value_type = Object)]
    ai_agent: Value,
}

/// Create a new aiAgent
#[utoipa::path(post, path = "/api/mind/aiAgent", tag = "aiAgent", request_body = AiAgent,
    responses((status = 200, body = AgentSaved), (status = 403, body = crate::Problem), (status = 409, body = crate::Problem)))]
async fn create_agent(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(agent): ApiJson<AiAgent>,
) -> ApiResult<Json<AgentSaved>> {
    let user = auth.require(Permission::UpdateAiAgent)?;
    validate(&agent)?;
    let mut tx = state.store.begin().await?;
    let saved = ai_agents::create(&mut tx, &agent, &user.actor()).await?;
    tx.commit().await?;
    let id = saved.get("id").and_then(Value::as_i64).unwrap_or_default();
    announce(&state, id, &agent.slug, "created", &user.actor()).await;
    Ok(Json(AgentSaved {
        success: true,
        ai_agent: saved,
    }))
}

/// Get an AI Agent by id
#[utoipa::path(get, path = "/api/mind/aiAgent/{id}", tag = "aiAgent", params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 404, body = crate::Problem)))]
async fn get_agent(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require(Permission::ReadTickets)?;
    let id = path_id("id", &id)?;
    let mut conn = state.store.pool().acquire().await?;
    ai_agents::get(&mut conn, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("aiAgent {id}")))
}

/// Update an existing AI Agent (objects are merged deeply, arrays replaced)
#[utoipa::path(patch, path = "/api/mind/aiAgent/{id}", tag = "aiAgent", params(("id" = i64, Path)),
    request_body = Object,
    responses((status = 200, body = AgentSaved), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn update_agent(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<AgentSaved>> {
    let user = auth.require(Permission::UpdateAiAgent)?;
    let id = path_id("id", &id)?;
    if !patch.is_object() {
        return Err(ApiError::field("body", "must be an object"));
    }
    let mut tx = state.store.begin().await?;
    let mut current = ai_agents::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("aiAgent {id}")))?;
    ai_agents::deep_merge(&mut current, &patch);
    let merged = serde_json::to_vec(&current).map_err(|e| ApiError::Internal(e.into()))?;
    let agent: AiAgent = parse_json(&merged)?;
    validate(&agent)?;
    let changed_keys: Vec<&String> = patch
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    let saved = ai_agents::replace(
        &mut tx,
        id,
        &agent,
        &user.actor(),
        &json!({"fields": changed_keys}),
    )
    .await?;
    tx.commit().await?;
    announce(&state, id, &agent.slug, "updated", &user.actor()).await;
    Ok(Json(AgentSaved {
        success: true,
        ai_agent: saved,
    }))
}

#[derive(Serialize, ToSchema)]
struct Done {
    success: bool,
}

/// Delete an existing AI Agent (soft: intents on old tickets keep it)
#[utoipa::path(delete, path = "/api/mind/aiAgent/{id}", tag = "aiAgent", params(("id" = i64, Path)),
    responses((status = 200, body = Done), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn delete_agent(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Done>> {
    let user = auth.require(Permission::UpdateAiAgent)?;
    let id = path_id("id", &id)?;
    let mut tx = state.store.begin().await?;
    if !ai_agents::delete(&mut tx, id, &user.actor()).await? {
        return Err(ApiError::NotFound(format!("aiAgent {id}")));
    }
    tx.commit().await?;
    announce(&state, id, "", "deleted", &user.actor()).await;
    Ok(Json(Done { success: true }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DefaultsLoaded {
    success: bool,
    /// The installed agents (short format).
    #[schema(value_type = Vec<Object>)]
    ai_agents: Vec<Value>,
}

/// Load the default AI agents (overwrites agents with the same slug)
#[utoipa::path(post, path = "/api/mind/aiAgents/loadDefaults", tag = "aiAgent",
    responses((status = 200, body = DefaultsLoaded), (status = 403, body = crate::Problem)))]
async fn load_defaults(
    State(state): State<ApiState>,
    auth: Auth,
) -> ApiResult<Json<DefaultsLoaded>> {
    let user = auth.require(Permission::UpdateAiAgent)?;
    let agents = default_agents().map_err(|e| ApiError::Internal(e.into()))?;
    let mut tx = state.store.begin().await?;
    let mut saved = Vec::new();
    for agent in &agents {
        saved.push(ai_agents::upsert_by_slug(&mut tx, agent, &user.actor()).await?);
    }
    tx.commit().await?;
    for a in &saved {
        let id = a.get("id").and_then(Value::as_i64).unwrap_or_default();
        let slug = a.get("slug").and_then(Value::as_str).unwrap_or_default();
        announce(&state, id, slug, "loadedDefault", &user.actor()).await;
    }
    Ok(Json(DefaultsLoaded {
        success: true,
        ai_agents: saved.into_iter().map(|a| shaped(a, "short")).collect(),
    }))
}

/// The default AI agents that loadDefaults installs
#[utoipa::path(get, path = "/api/mind/aiAgents/availableDefaults", tag = "aiAgent",
    responses((status = 200, body = AgentList)))]
async fn available_defaults(auth: Auth) -> ApiResult<Json<AgentList>> {
    auth.require(Permission::ReadTickets)?;
    let agents = default_agents().map_err(|e| ApiError::Internal(e.into()))?;
    let list: Vec<Value> = agents
        .iter()
        .filter_map(|a| serde_json::to_value(a).ok())
        .map(|a| shaped(a, "medium"))
        .collect();
    Ok(Json(AgentList {
        success: true,
        total: list.len() as i64,
        ai_agents: list,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PreviewRequest {
    /// The ticket to try the agent on.
    ticket_id: i64,
    /// Unsaved changes to the agent, merged over the stored one.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    changes: serde_json::Map<String, Value>,
}

/// Preview an AI Agent: a dry run on a ticket (detection, parameters, status), nothing is changed
#[utoipa::path(post, path = "/api/mind/aiAgent/{id}/preview", tag = "aiAgent", params(("id" = i64, Path)),
    request_body = PreviewRequest,
    responses((status = 200, body = Object), (status = 404, body = crate::Problem), (status = 503, body = crate::Problem)))]
async fn preview_agent(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> ApiResult<Json<Value>> {
    auth.require(Permission::UpdateAiAgent)?;
    let id = path_id("id", &id)?;
    let mut conn = state.store.pool().acquire().await?;
    let mut agent = ai_agents::get(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("aiAgent {id}")))?;
    if !intents::ticket_exists(&mut conn, req.ticket_id).await? {
        return Err(ApiError::NotFound(format!("ticket {}", req.ticket_id)));
    }
    drop(conn);
    ai_agents::deep_merge(&mut agent, &Value::Object(req.changes));
    let merged = serde_json::to_vec(&agent).map_err(|e| ApiError::Internal(e.into()))?;
    let agent: AiAgent = parse_json(&merged)?;
    validate(&agent)?;
    let payload = serde_json::to_vec(&json!({"agent": agent, "ticketId": req.ticket_id}))
        .map_err(|e| ApiError::Internal(e.into()))?;
    let request = state
        .bus
        .client()
        .request(state.bus.subject(PREVIEW_SUBJECT), payload.into());
    let reply = tokio::time::timeout(Duration::from_secs(30), request)
        .await
        .map_err(|_| ApiError::Unavailable("no ai worker answered the preview in time".into()))?
        .map_err(|e| ApiError::Unavailable(format!("no ai worker answered the preview: {e}")))?;
    let value: Value =
        serde_json::from_slice(&reply.payload).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(value))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct OutcomeRequest {
    /// A stored agent…
    #[schema(minimum = 1)]
    ai_agent_id: Option<i64>,
    /// …or an unsaved definition.
    ai_agent: Option<AiAgent>,
    /// The parameters; absent: the data of the agent's intent on `ticketId`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    data: Option<serde_json::Map<String, Value>>,
    /// Language of the reply (`de`, `en`); absent: the ticket's, else `de`.
    language: Option<String>,
    ticket_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct OutcomeAnswer {
    success: bool,
    /// The response case that applies and the reply rendered from it; null when none applies.
    #[schema(value_type = Option<Object>)]
    outcome: Option<switchyard_agents::Outcome>,
    #[schema(value_type = Object)]
    data: serde_json::Map<String, Value>,
}

/// Get the outcome of an AI Agent: the response case that applies to the parameters and the
/// customer reply rendered from it, without executing anything
#[utoipa::path(post, path = "/api/mind/aiAgent/outcome", tag = "aiAgent", request_body = OutcomeRequest,
    responses((status = 200, body = OutcomeAnswer), (status = 404, body = crate::Problem)))]
async fn agent_outcome(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(req): ApiJson<OutcomeRequest>,
) -> ApiResult<Json<OutcomeAnswer>> {
    auth.require(Permission::ReadTickets)?;
    if req.ai_agent_id.is_some_and(|id| id < 1) {
        return Err(ApiError::field("aiAgentId", "must be a positive id"));
    }
    let mut conn = state.store.pool().acquire().await?;
    let agent = match (req.ai_agent, req.ai_agent_id) {
        (Some(a), _) => {
            validate(&a)?;
            a
        }
        (None, Some(id)) => ai_agents::get_typed(&mut conn, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("aiAgent {id}")))?,
        (None, None) => return Err(ApiError::field("aiAgentId", "give aiAgentId or aiAgent")),
    };
    let mut language = req.language;
    let mut data = req.data;
    if let Some(ticket_id) = req.ticket_id {
        if !intents::ticket_exists(&mut conn, ticket_id).await? {
            return Err(ApiError::NotFound(format!("ticket {ticket_id}")));
        }
        if language.is_none() {
            language = sqlx::query_scalar("SELECT language_code FROM tickets WHERE id = $1")
                .bind(ticket_id)
                .fetch_one(&mut *conn)
                .await
                .map_err(switchyard_store::StoreError::from)?;
        }
        if data.is_none() {
            data = intents::active_data(&mut conn, ticket_id, &agent.slug)
                .await?
                .and_then(|d| d.as_object().cloned());
        }
    }
    let data = data.unwrap_or_default();
    let language = language.unwrap_or_else(|| "de".to_owned());
    let outcome = switchyard_agents::outcome(&agent, &data, &language)
        .map_err(|e| ApiError::field("aiAgent.settings.responseCases", e.to_string()))?;
    Ok(Json(OutcomeAnswer {
        success: true,
        outcome,
        data,
    }))
}

#[derive(Serialize, ToSchema)]
struct SimilarTickets {
    success: bool,
    #[schema(value_type = Vec<Object>)]
    tickets: Vec<Value>,
}

/// Get similar tickets for an AI Agent: its example tickets, then the tickets it was detected on
/// with the highest confidence
#[utoipa::path(get, path = "/api/mind/aiAgent/{id}/similarTickets", tag = "aiAgent", params(("id" = i64, Path)),
    responses((status = 200, body = SimilarTickets), (status = 404, body = crate::Problem)))]
async fn similar_tickets(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<SimilarTickets>> {
    auth.require(Permission::ReadTickets)?;
    let id = path_id("id", &id)?;
    let mut conn = state.store.pool().acquire().await?;
    let agent = ai_agents::get_typed(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("aiAgent {id}")))?;
    let detected: Vec<i64> = sqlx::query_scalar(
        "SELECT ticket_id FROM intents WHERE code = $1 AND status <> 'deleted'
          GROUP BY ticket_id ORDER BY max(confidence) DESC, ticket_id DESC LIMIT 20",
    )
    .bind(&agent.slug)
    .fetch_all(&mut *conn)
    .await
    .map_err(switchyard_store::StoreError::from)?;
    let mut ids: Vec<i64> = agent.example_ticket_ids.clone();
    for t in detected {
        if !ids.contains(&t) {
            ids.push(t);
        }
    }
    let mut out = Vec::new();
    for t in ids.into_iter().take(20) {
        if let Some(ticket) = tickets::load(&mut conn, t).await? {
            out.push(serde_json::to_value(ticket).map_err(|e| ApiError::Internal(e.into()))?);
        }
    }
    Ok(Json(SimilarTickets {
        success: true,
        tickets: out,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TicketIntents {
    success: bool,
    ticket_id: i64,
    intents_found: usize,
    /// `noDetection`, `customerDetected` (a contract, no intents), `agentAssist` (intents for a
    /// person to confirm) or `full` (an intent ready with confidence 1).
    ai_outcome: String,
    #[schema(value_type = Vec<Object>)]
    intents: Vec<Value>,
}

/// Get the intents detected on a ticket
#[utoipa::path(get, path = "/api/mind/intent/byTicketId/{ticketId}", tag = "intent", params(("ticketId" = i64, Path)),
    responses((status = 200, body = TicketIntents), (status = 404, body = crate::Problem)))]
async fn intents_by_ticket(
    State(state): State<ApiState>,
    auth: Auth,
    Path(ticket_id): Path<String>,
) -> ApiResult<Json<TicketIntents>> {
    auth.require(Permission::ReadTickets)?;
    let ticket_id = path_id("ticketId", &ticket_id)?;
    let mut conn = state.store.pool().acquire().await?;
    if !intents::ticket_exists(&mut conn, ticket_id).await? {
        return Err(ApiError::NotFound(format!("ticket {ticket_id}")));
    }
    let list = intents::by_ticket(&mut conn, ticket_id).await?;
    let contract: Option<i64> = sqlx::query_scalar("SELECT contract_id FROM tickets WHERE id = $1")
        .bind(ticket_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(switchyard_store::StoreError::from)?;
    let full = list.iter().any(|i| {
        i.get("status").and_then(Value::as_str) == Some("ready")
            && i.get("confidence")
                .and_then(Value::as_f64)
                .is_some_and(|c| c >= 0.999)
    });
    let outcome = if full {
        "full"
    } else if !list.is_empty() {
        "agentAssist"
    } else if contract.is_some() {
        "customerDetected"
    } else {
        "noDetection"
    };
    Ok(Json(TicketIntents {
        success: true,
        ticket_id,
        intents_found: list.len(),
        ai_outcome: outcome.to_owned(),
        intents: list,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_agents_are_valid() -> Result<(), Box<dyn std::error::Error>> {
        let agents = default_agents()?;
        let slugs: Vec<&str> = agents.iter().map(|a| a.slug.as_str()).collect();
        for slug in [
            "meter_reading",
            "relocation",
            "cancel_contract",
            "revocation_agent",
            "bank_data_agent",
            "deposit_agent",
            "invoice_question",
            "payment_plan",
        ] {
            assert!(slugs.contains(&slug), "{slug} missing");
        }
        for a in &agents {
            assert!(validate(a).is_ok(), "{} invalid", a.slug);
            assert!(
                !a.settings.detection_details.examples.is_empty(),
                "{} has no examples",
                a.slug
            );
        }
        Ok(())
    }

    #[test]
    fn broken_references_are_named() -> Result<(), Box<dyn std::error::Error>> {
        let agent: AiAgent = serde_json::from_value(json!({
            "name": "x", "slug": "x",
            "settings": {"parameters": [{"key": "a"}],
                         "responseCases": [{"condition": {"operator": "And", "operands": [{"operand": "b", "operator": "IsNotNull"}]}}]}
        }))?;
        match validate(&agent) {
            Err(ApiError::BadRequest(_, errors)) => {
                assert_eq!(
                    errors[0].field,
                    "settings.responseCases[0].condition.operands[0].operand"
                )
            }
            other => panic!("expected a field error, got {other:?}"),
        }
        Ok(())
    }
}
