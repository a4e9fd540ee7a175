//! Tags, teams and agents, the queue (`getLatest`), pings, the agent queue status and ticket
//! statistics.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchyard_domain::Permission;
use switchyard_store::routing::{self, MatchingMode, Ordering, Tag, TagInput};
use switchyard_store::users::{self, Team, User, UserPatch};
use switchyard_store::{auth, tickets};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth};
use crate::tickets::parse_ticket_id;
use crate::ApiState;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_tags, save_tag))
        .routes(routes!(tag_tree))
        .routes(routes!(get_tag, delete_tag))
        .routes(routes!(list_teams, save_team))
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user))
        .routes(routes!(get_latest))
        .routes(routes!(ping_ticket))
        .routes(routes!(agent_queue))
        .routes(routes!(ticket_stats))
}

#[derive(Serialize, ToSchema)]
struct TagList {
    success: bool,
    tags: Vec<Tag>,
}

/// List all tags
#[utoipa::path(get, path = "/api/mind/tag", tag = "tag",
    responses((status = 200, body = TagList), (status = 401, body = crate::Problem)))]
async fn list_tags(State(state): State<ApiState>, auth: Auth) -> ApiResult<Json<TagList>> {
    auth.require(Permission::ReadTickets)?;
    let mut conn = state.store.pool().acquire().await?;
    Ok(Json(TagList {
        success: true,
        tags: routing::list_tags(&mut conn).await?,
    }))
}

#[derive(Serialize, ToSchema)]
struct Saved {
    success: bool,
    id: i64,
}

/// Create a tag (or update it, when the body has an `id`)
#[utoipa::path(post, path = "/api/mind/tag", tag = "tag", request_body = TagInput,
    responses((status = 200, body = Saved), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem),
        (status = 404, description = "`id` or `parent` names no tag", body = crate::Problem)))]
async fn save_tag(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(body): ApiJson<TagInput>,
) -> ApiResult<Json<Saved>> {
    let user = auth.require(Permission::UpdateClientSettings)?;
    let mut tx = state.store.begin().await?;
    if let Some(parent) = body.parent {
        let tags = routing::list_tags(&mut tx).await?;
        if !tags.iter().any(|t| t.id == parent) {
            return Err(ApiError::unknown_reference("parent", "no such tag"));
        }
        // No cycles: the new parent must not descend from this tag.
        if let Some(id) = body.id {
            let mut cur = Some(parent);
            while let Some(c) = cur {
                if c == id {
                    return Err(ApiError::field("parent", "would make the tree a cycle"));
                }
                cur = tags.iter().find(|t| t.id == c).and_then(|t| t.parent);
            }
        }
    }
    let id = routing::save_tag(&mut tx, &body, &user.actor()).await?;
    tx.commit().await?;
    Ok(Json(Saved { success: true, id }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TagNode {
    #[serde(flatten)]
    tag: Tag,
    #[schema(no_recursion)]
    children: Vec<TagNode>,
}

#[derive(Serialize, ToSchema)]
struct TagTree {
    success: bool,
    tags: Vec<TagNode>,
}

/// Tags as a tree (by `parent`)
#[utoipa::path(get, path = "/api/mind/tag/tree", tag = "tag",
    responses((status = 200, body = TagTree), (status = 401, body = crate::Problem)))]
async fn tag_tree(State(state): State<ApiState>, auth: Auth) -> ApiResult<Json<TagTree>> {
    auth.require(Permission::ReadTickets)?;
    let mut conn = state.store.pool().acquire().await?;
    let tags = routing::list_tags(&mut conn).await?;
    fn build(parent: Option<i64>, tags: &[Tag], depth: usize) -> Vec<TagNode> {
        tags.iter()
            .filter(|t| t.parent == parent && depth < 32)
            .map(|t| TagNode {
                tag: t.clone(),
                children: build(Some(t.id), tags, depth + 1),
            })
            .collect()
    }
    let ids: Vec<i64> = tags.iter().map(|t| t.id).collect();
    // Roots: no parent, or a parent that no longer exists.
    let mut roots = build(None, &tags, 0);
    for t in tags
        .iter()
        .filter(|t| t.parent.is_some_and(|p| !ids.contains(&p)))
    {
        roots.push(TagNode {
            tag: t.clone(),
            children: build(Some(t.id), &tags, 1),
        });
    }
    Ok(Json(TagTree {
        success: true,
        tags: roots,
    }))
}

/// Get a tag
#[utoipa::path(get, path = "/api/mind/tag/{id}", tag = "tag", params(("id" = i64, Path)),
    responses((status = 200, body = Tag), (status = 404, body = crate::Problem)))]
async fn get_tag(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Tag>> {
    auth.require(Permission::ReadTickets)?;
    let id = crate::path_id("id", &id)?;
    let mut conn = state.store.pool().acquire().await?;
    routing::list_tags(&mut conn)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("tag {id}")))
}

#[derive(Serialize, ToSchema)]
struct Success {
    success: bool,
}

/// Delete a tag (its children move up to its parent)
#[utoipa::path(delete, path = "/api/mind/tag/{id}", tag = "tag", params(("id" = i64, Path)),
    responses((status = 200, body = Success), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn delete_tag(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Success>> {
    let user = auth.require(Permission::UpdateClientSettings)?;
    let id = crate::path_id("id", &id)?;
    let mut tx = state.store.begin().await?;
    routing::delete_tag(&mut tx, id, &user.actor()).await?;
    tx.commit().await?;
    Ok(Json(Success { success: true }))
}

#[derive(Serialize, ToSchema)]
struct TeamList {
    success: bool,
    teams: Vec<Team>,
}

/// List teams
#[utoipa::path(get, path = "/api/mind/team", tag = "team", responses((status = 200, body = TeamList)))]
async fn list_teams(State(state): State<ApiState>, auth: Auth) -> ApiResult<Json<TeamList>> {
    auth.require(Permission::ReadTickets)?;
    let mut conn = state.store.pool().acquire().await?;
    Ok(Json(TeamList {
        success: true,
        teams: users::list_teams(&mut conn).await?,
    }))
}

/// Create or update a team (skills and backlog restrictions its members share)
#[utoipa::path(post, path = "/api/mind/team", tag = "team", request_body = Team,
    responses((status = 200, body = Saved), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem),
        (status = 404, description = "`id` names no team, or a skill no tag", body = crate::Problem)))]
async fn save_team(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(team): ApiJson<Team>,
) -> ApiResult<Json<Saved>> {
    let user = auth.require(Permission::ManageUsers)?;
    let mut tx = state.store.begin().await?;
    let id = users::save_team(&mut tx, &team, &user.actor()).await?;
    tx.commit().await?;
    Ok(Json(Saved { success: true, id }))
}

#[derive(Serialize, ToSchema)]
struct UserList {
    success: bool,
    users: Vec<User>,
}

/// List users with their skills, teams and status
#[utoipa::path(get, path = "/api/mind/user", tag = "team", responses((status = 200, body = UserList)))]
async fn list_users(State(state): State<ApiState>, auth: Auth) -> ApiResult<Json<UserList>> {
    auth.require(Permission::ReadTickets)?;
    let mut conn = state.store.pool().acquire().await?;
    Ok(Json(UserList {
        success: true,
        users: users::list_users(&mut conn).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewUser {
    #[schema(format = Email)]
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    /// `admin` or `agent`.
    #[schema(pattern = "^(admin|agent)$")]
    role: String,
}

#[derive(Serialize, ToSchema)]
struct CreatedUser {
    success: bool,
    id: i64,
    /// The user's first API token, shown once.
    token: String,
}

/// Create a user and their first API token
#[utoipa::path(post, path = "/api/mind/user", tag = "team", request_body = NewUser,
    responses((status = 200, body = CreatedUser), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem)))]
async fn create_user(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(u): ApiJson<NewUser>,
) -> ApiResult<Json<CreatedUser>> {
    let me = auth.require(Permission::ManageUsers)?;
    let role = switchyard_domain::Role::parse(&u.role)
        .ok_or_else(|| ApiError::field("role", "must be admin or agent"))?;
    if !u.email.contains('@') {
        return Err(ApiError::field("email", "must be an e-mail address"));
    }
    let mut tx = state.store.begin().await?;
    let id = auth::create_user(&mut tx, &u.email, role, &u.first_name, &u.last_name).await?;
    let token = auth::create_token(&mut tx, id, "created by API").await?;
    switchyard_store::audit::record(
        &mut tx,
        &me.actor(),
        "user",
        &id.to_string(),
        "created",
        &json!({"role": u.role}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(CreatedUser {
        success: true,
        id,
        token,
    }))
}

/// Update a user's skills, teams, status and backlog restrictions
///
/// Users may change their own `status` (e.g. `absent`); everything else needs `manageUsers`.
#[utoipa::path(patch, path = "/api/mind/user/{id}", tag = "team", params(("id" = i64, Path)), request_body = UserPatch,
    responses((status = 200, body = User), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem)))]
async fn update_user(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> ApiResult<Json<User>> {
    let id = crate::path_id("id", &id)?;
    if !(auth.0.id == id && patch.is_status_only()) {
        auth.require(Permission::ManageUsers)?;
    }
    let mut tx = state.store.begin().await?;
    let user = users::update_user(&mut tx, id, &patch, &auth.0.actor()).await?;
    tx.commit().await?;
    Ok(Json(user))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
struct GetLatestBody {
    /// `earliest` (default): the next ticket of the queue.
    #[schema(pattern = "^earliest$")]
    preferred_direction: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Latest {
    success: bool,
    /// `null` when nothing is waiting for this agent.
    ticket_id: Option<i64>,
    /// Held for the agent until then, unless pinged.
    #[schema(value_type = Option<String>)]
    held_until: Option<String>,
}

/// Get next ticket id to work on
///
/// Hands the caller the next open ticket their skills match (mode `autopilotTagMatchingMode`),
/// within their backlog restrictions, in the order `autopilotOrderingSequence`; tickets assigned
/// to them come first. The ticket is held for `queueHoldSeconds` (pings extend it); no other agent
/// gets it meanwhile.
#[utoipa::path(post, path = "/api/mind/ticket/getLatest", tag = "ticket", request_body(content = Option<GetLatestBody>, description = "optional"),
    responses((status = 200, body = Latest), (status = 401, body = crate::Problem)))]
async fn get_latest(
    State(state): State<ApiState>,
    auth: Auth,
    body: axum::body::Bytes,
) -> ApiResult<Json<Latest>> {
    let user = auth.require(Permission::UpdateTickets)?;
    // The body is optional.
    if !crate::extract::is_empty_body(&body) {
        let b: GetLatestBody = crate::extract::parse_json(&body)?;
        if b.preferred_direction
            .as_deref()
            .is_some_and(|d| d != "earliest")
        {
            return Err(ApiError::field(
                "preferredDirection",
                "only earliest is supported",
            ));
        }
    }
    let matching: MatchingMode =
        serde_json::from_value(state.settings.get("autopilotTagMatchingMode").await?)
            .unwrap_or(MatchingMode::MatchAny);
    let ordering: Ordering =
        serde_json::from_value(state.settings.get("autopilotOrderingSequence").await?)
            .unwrap_or(Ordering::SlaDue);
    let hold = state.settings.get_f64("queueHoldSeconds").await?.round() as i64;
    let mut tx = state.store.begin().await?;
    let profile = routing::agent_profile(&mut tx, user.id).await?;
    let ticket_id = routing::get_latest(&mut tx, &profile, matching, ordering, hold).await?;
    tx.commit().await?;
    Ok(Json(Latest {
        success: true,
        ticket_id,
        held_until: ticket_id.map(|_| {
            switchyard_domain::time::format_ticket_time(
                chrono::Utc::now() + chrono::Duration::seconds(hold),
            )
        }),
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Pinged {
    success: bool,
    #[schema(value_type = Vec<Object>)]
    worked_on_by: Vec<Value>,
}

/// Ping a ticket
///
/// The agent works on the ticket now (the UI pings every 30 s): extends the agent's hold and
/// returns who works on it.
#[utoipa::path(get, path = "/api/mind/ticket/{ticketId}/ping", tag = "ticket", params(("ticketId" = i64, Path)),
    responses((status = 200, body = Pinged), (status = 404, body = crate::Problem)))]
async fn ping_ticket(
    State(state): State<ApiState>,
    auth: Auth,
    Path(ticket_id): Path<String>,
) -> ApiResult<Json<Pinged>> {
    let user = auth.require(Permission::ReadTickets)?;
    let id = parse_ticket_id(&ticket_id)?;
    let ttl = state.settings.get_f64("queueHoldSeconds").await?.round() as i64;
    let mut tx = state.store.begin().await?;
    let worked_on_by = routing::ping(&mut tx, id, user.id, ttl).await?;
    tx.commit().await?;
    Ok(Json(Pinged {
        success: true,
        worked_on_by,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AgentQueue {
    success: bool,
    /// Waiting chats per available agent; -1 when no agent is available.
    #[schema(value_type = Object)]
    agent_queue: Value,
    #[schema(value_type = Object)]
    live_conversation_possible: Value,
    /// Expected wait in seconds; -1 when no agent is available.
    #[schema(value_type = Object)]
    expected_waiting_time: Value,
}

/// Get agent queue status
#[utoipa::path(get, path = "/api/mind/agents/queue", tag = "ticket", responses((status = 200, body = AgentQueue)))]
async fn agent_queue(State(state): State<ApiState>, auth: Auth) -> ApiResult<Json<AgentQueue>> {
    auth.require(Permission::ReadTickets)?;
    let mut conn = state.store.pool().acquire().await?;
    let agents = users::available_agents(&mut conn).await?;
    let waiting = tickets::open_count(&mut conn, "chat").await?;
    // About three minutes per chat and agent, until handling times are measured.
    let (per_agent, wait) = if agents == 0 {
        (-1.0, -1)
    } else {
        let q = waiting as f64 / agents as f64;
        (q, (q * 180.0).round() as i64)
    };
    Ok(Json(AgentQueue {
        success: true,
        agent_queue: json!({"chat": per_agent}),
        live_conversation_possible: json!({"chat": agents > 0}),
        expected_waiting_time: json!({"chat": wait}),
    }))
}

#[derive(Serialize, ToSchema)]
struct Stats {
    success: bool,
    #[schema(value_type = Object)]
    stats: Value,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StatsParams {
    /// Compute now instead of answering from the snapshot (slower on large installations).
    fresh: Option<bool>,
}

/// Get ticket stats
///
/// Open tickets (all but closed and resolved) by status, channel, tag, agent and AI support level,
/// how many are overdue and untagged. Answered from a snapshot the API recomputes in the
/// database every few seconds (`asOf` says when; `STATS_REFRESH_SECS`), so dashboards polling it
/// never load the database; `fresh=true` computes it now.
#[utoipa::path(get, path = "/api/mind/ticket/stats", tag = "ticket", params(StatsParams), responses((status = 200, body = Stats)))]
async fn ticket_stats(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<StatsParams>,
) -> ApiResult<Json<Stats>> {
    auth.require(Permission::ReadTickets)?;
    let stats = if q.fresh.unwrap_or(false) {
        compute_stats(&state.store).await?
    } else {
        (*state.stats.get().await).clone()
    };
    Ok(Json(Stats {
        success: true,
        stats,
    }))
}

/// Computes the statistics in the database (one transaction, so `jit` is set for it only).
pub async fn compute_stats(store: &switchyard_store::Store) -> switchyard_store::Result<Value> {
    let mut tx = store.begin().await?;
    let stats = routing::stats(&mut tx).await?;
    tx.commit().await?;
    Ok(stats)
}
