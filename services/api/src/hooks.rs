//! Event hooks, events and user-defined functions:
//! - `GET/POST /api/mind/settings/event-hook`, `DELETE /api/mind/settings/event-hook/{id}`;
//! - `POST /api/mind/event/search`, `GET /api/mind/event/getEventTypes`;
//! - `GET/POST /api/mind/settings/user-defined-function`, `DELETE …/{id}`;
//! - `POST /api/mind/executor/execute/{name}`: runs a UDF's Rhai code with `input` = the body.
//!
//! Hooks run in the hooks service; the API only stores them. UDFs run here, in the script
//! sandbox on a blocking thread; their API calls (`api_get`, `udf`, …) carry the caller's token,
//! so a UDF can do no more than its caller.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchyard_domain::Permission;
use switchyard_script::{Host, Limits, Sandbox, DEPTH_HEADER, MAX_UDF_DEPTH};
use switchyard_store::hooks::{self, EventHook, EventRecord, HookInput, Udf, UdfInput};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_json, ApiJson, Auth};
use crate::{path_id, ApiState};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_hooks, create_hook))
        .routes(routes!(delete_hook))
        .routes(routes!(search_events))
        .routes(routes!(event_types))
        .routes(routes!(list_udfs, create_udf))
        .routes(routes!(delete_udf))
        .routes(routes!(execute_udf))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct HookList {
    success: bool,
    event_hooks: Vec<EventHook>,
}

#[derive(Serialize, ToSchema)]
struct Created {
    success: bool,
    id: i64,
}

#[derive(Serialize, ToSchema)]
struct Deleted {
    success: bool,
}

/// A compile error of a script is a 400 naming the field that holds the code.
fn check_code(field: &str, code: &str) -> ApiResult<()> {
    Sandbox::default()
        .check(code)
        .map_err(|e| ApiError::field(field, e.to_string()))
}

/// Get Event Hooks (webhook secrets are never returned; `secretSet` says whether one is set)
#[utoipa::path(get, path = "/api/mind/settings/event-hook", tag = "events",
    responses((status = 200, body = HookList), (status = 403, body = crate::Problem)))]
async fn list_hooks(State(state): State<ApiState>, auth: Auth) -> ApiResult<Json<HookList>> {
    auth.require(Permission::EventHooks)?;
    let mut conn = state.store.pool().acquire().await?;
    Ok(Json(HookList {
        success: true,
        event_hooks: hooks::list_hooks(&mut conn).await?,
    }))
}

/// Add an Event Hook
///
/// `events` are event names (`GET /api/mind/event/getEventTypes`); an unknown one is a 400. The
/// executor is a webhook (`{type: "webhook", url, secret}`: a signed POST of the event) or a
/// script (`{type: "script", code}`: Rhai with `input` = the event's data).
#[utoipa::path(post, path = "/api/mind/settings/event-hook", tag = "events", request_body = HookInput,
    responses((status = 200, body = Created), (status = 403, body = crate::Problem)))]
async fn create_hook(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(body): ApiJson<HookInput>,
) -> ApiResult<Json<Created>> {
    let user = auth.require(Permission::EventHooks)?;
    hooks::validate_hook(&body)?;
    if let Some(code) = body
        .executor
        .code
        .as_deref()
        .filter(|_| body.executor.kind == "script")
    {
        check_code("executor.code", code)?;
    }
    let mut tx = state.store.begin().await?;
    let id = hooks::create_hook(&mut tx, &body, &user.actor()).await?;
    tx.commit().await?;
    Ok(Json(Created { success: true, id }))
}

/// Delete an Event Hook
#[utoipa::path(delete, path = "/api/mind/settings/event-hook/{id}", tag = "events", params(("id" = i64, Path)),
    responses((status = 200, body = Deleted), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn delete_hook(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Deleted>> {
    let user = auth.require(Permission::EventHooks)?;
    let id = path_id("id", &id)?;
    let mut tx = state.store.begin().await?;
    hooks::delete_hook(&mut tx, id, &user.actor()).await?;
    tx.commit().await?;
    Ok(Json(Deleted { success: true }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventSearch {
    /// An event name, e.g. `TicketCreated`.
    #[serde(rename = "type")]
    kind: Option<String>,
    ticket_id: Option<i64>,
    /// `open`, `processing`, `closed` or `error`.
    #[schema(schema_with = event_status_schema)]
    status: Option<String>,
    /// 1 to 1000, default 50.
    #[schema(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    #[schema(minimum = 0)]
    offset: Option<i64>,
}

fn event_status_schema() -> utoipa::openapi::Object {
    switchyard_domain::schema::optional_string_enum(&["open", "processing", "closed", "error"])
}

#[derive(Serialize, ToSchema)]
struct EventPage {
    success: bool,
    events: Vec<EventRecord>,
    total: i64,
}

/// Search events (newest first), with each hook's outcome
#[utoipa::path(post, path = "/api/mind/event/search", tag = "events",
    request_body(content = Option<EventSearch>, description = "optional: every event"),
    responses((status = 200, body = EventPage), (status = 403, body = crate::Problem)))]
async fn search_events(
    State(state): State<ApiState>,
    auth: Auth,
    body: axum::body::Bytes,
) -> ApiResult<Json<EventPage>> {
    auth.require(Permission::EventHooks)?;
    let f: EventSearch = crate::extract::parse_optional_json(&body)?;
    let (limit, offset) = crate::Page {
        limit: f.limit,
        offset: f.offset,
    }
    .resolve()?;
    if let Some(s) = f.status.as_deref() {
        if !["open", "processing", "closed", "error"].contains(&s) {
            return Err(ApiError::field(
                "status",
                "must be open, processing, closed or error",
            ));
        }
    }
    let mut conn = state.store.pool().acquire().await?;
    let (events, total) = hooks::search_events(
        &mut conn,
        f.kind.as_deref(),
        f.ticket_id,
        f.status.as_deref(),
        limit,
        offset,
    )
    .await?;
    Ok(Json(EventPage {
        success: true,
        events,
        total,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EventTypes {
    success: bool,
    event_types: Vec<String>,
}

/// Get the event types a hook can subscribe to
#[utoipa::path(get, path = "/api/mind/event/getEventTypes", tag = "events",
    responses((status = 200, body = EventTypes)))]
async fn event_types(auth: Auth) -> ApiResult<Json<EventTypes>> {
    auth.require(Permission::ReadTickets)?;
    Ok(Json(EventTypes {
        success: true,
        event_types: hooks::EVENT_TYPES.iter().map(|s| (*s).to_owned()).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UdfFilter {
    /// `udf` or `tool`; absent, empty or `all`: both.
    #[param(schema_with = udf_filter_schema)]
    filter: Option<String>,
}

fn udf_filter_schema() -> utoipa::openapi::Object {
    switchyard_domain::schema::string_enum(&["udf", "tool", "all", ""])
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct UdfList {
    success: bool,
    user_defined_functions: Vec<Udf>,
}

/// Get User Defined Functions (private ones only for admins)
#[utoipa::path(get, path = "/api/mind/settings/user-defined-function", tag = "settings", params(UdfFilter),
    responses((status = 200, body = UdfList)))]
async fn list_udfs(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(f): crate::extract::ApiQuery<UdfFilter>,
) -> ApiResult<Json<UdfList>> {
    let user = auth.require(Permission::ReadTickets)?;
    let filter = f.filter.as_deref().filter(|s| !s.is_empty() && *s != "all");
    if filter.is_some_and(|s| s != "udf" && s != "tool") {
        return Err(ApiError::field("filter", "must be udf or tool"));
    }
    let mut conn = state.store.pool().acquire().await?;
    let admin = user.role.can(Permission::RunExecutors);
    let list = hooks::list_udfs(&mut conn, filter)
        .await?
        .into_iter()
        .filter(|u| admin || !u.is_private)
        .collect();
    Ok(Json(UdfList {
        success: true,
        user_defined_functions: list,
    }))
}

/// Add a new User Defined Function
///
/// Body `{name, udfType, description?, parameters?, isPrivate?, data?{udfExecutor{type,
/// language: "rhai", code}}}`; the code must compile.
#[utoipa::path(post, path = "/api/mind/settings/user-defined-function", tag = "settings", request_body = UdfInput,
    responses((status = 200, body = Created), (status = 403, body = crate::Problem), (status = 409, body = crate::Problem)))]
async fn create_udf(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(body): ApiJson<UdfInput>,
) -> ApiResult<Json<Created>> {
    let user = auth.require(Permission::UpdateClientSettings)?;
    if let Some(code) = body
        .data
        .as_ref()
        .and_then(|d| d.pointer("/udfExecutor/code"))
        .and_then(Value::as_str)
    {
        check_code("data.udfExecutor.code", code)?;
    }
    let mut tx = state.store.begin().await?;
    let id = hooks::create_udf(&mut tx, &body, &user.actor()).await?;
    tx.commit().await?;
    Ok(Json(Created { success: true, id }))
}

/// Delete a User Defined Function
#[utoipa::path(delete, path = "/api/mind/settings/user-defined-function/{id}", tag = "settings", params(("id" = i64, Path)),
    responses((status = 200, body = Deleted), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn delete_udf(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Deleted>> {
    let user = auth.require(Permission::UpdateClientSettings)?;
    let id = path_id("id", &id)?;
    let mut tx = state.store.begin().await?;
    hooks::delete_udf(&mut tx, id, &user.actor()).await?;
    tx.commit().await?;
    Ok(Json(Deleted { success: true }))
}

#[derive(Serialize, ToSchema)]
struct Executed {
    success: bool,
    /// The script's value.
    result: Value,
    /// What the script logged.
    logs: Vec<String>,
}

/// Execute a User Defined Function
///
/// The body is the UDF's parameters, given to its code as `input`. A script that fails (an
/// error it throws, a time or size limit) is a 422 with the reason.
#[utoipa::path(post, path = "/api/mind/executor/execute/{name}", tag = "settings", params(("name" = String, Path)),
    request_body = Object,
    responses((status = 200, body = Executed), (status = 403, body = crate::Problem),
              (status = 404, body = crate::Problem), (status = 422, body = crate::Problem)))]
async fn execute_udf(
    State(state): State<ApiState>,
    auth: Auth,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<Executed>> {
    auth.require(Permission::ReadTickets)?;
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_json(&body)?
    };
    let mut conn = state.store.pool().acquire().await?;
    let udf = hooks::udf_by_name(&mut conn, &name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user-defined function {name}")))?;
    drop(conn);
    if udf.is_private {
        auth.require(Permission::RunExecutors)?;
    }
    let code = udf
        .code()
        .ok_or_else(|| ApiError::Unprocessable(format!("{name} has no code")))?
        .to_owned();
    // Nested UDF calls (a UDF calling `udf()`) say how deep they are.
    let depth = match headers.get(DEPTH_HEADER).and_then(|v| v.to_str().ok()) {
        Some(d) => d.parse::<u32>().unwrap_or(MAX_UDF_DEPTH) + 1,
        None => 0,
    };
    if depth > MAX_UDF_DEPTH {
        return Err(ApiError::Unprocessable(format!(
            "more than {MAX_UDF_DEPTH} nested UDF calls"
        )));
    }
    let mut sandbox = Sandbox::new(Limits::default());
    if let Some(token) = bearer(&headers) {
        let host = Host::new(&state.self_url, token, tokio::runtime::Handle::current())
            .map_err(|e| ApiError::Internal(e.into()))?;
        sandbox = sandbox.with_host(host.at_depth(depth));
    }
    let outcome = tokio::task::spawn_blocking(move || sandbox.run_logged(&code, input))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::Unprocessable(format!("{name}: {e}")))?;
    Ok(Json(Executed {
        success: true,
        result: outcome.result,
        logs: outcome.logs,
    }))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}
