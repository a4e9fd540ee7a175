//! AI quality checks (`/api/mind/aiQualityCheck/…`): test cases, test runs that replay the
//! cases' tickets through the real pipeline with every effect recorded instead of applied (no
//! ERP write, no mail out, no ticket changed), and scores per dimension.
//!
//! A run publishes each case's latest message with the run's `testRunId`; the collector (a
//! background task of every api process, coordinated by row locks) scores each test ticket once
//! its replay passed the last stage.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_bus::Bus;
use switchyard_domain::{AiAgent, Envelope, Permission, Stage, ENVELOPE_VERSION};
use switchyard_store::{ai_agents, quality, Store};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth};
use crate::{path_id, ApiState, Page};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_runs, schedule_run))
        .routes(routes!(get_run, delete_run))
        .routes(routes!(update_expected))
        .routes(routes!(accept_expected))
        .routes(routes!(accept_all))
        .routes(routes!(agents_with_cases))
        .routes(routes!(list_cases, create_case))
        // One path, two meanings (as in the reference product): `{id}` is the agent for GET and
        // POST, the test case for PATCH and DELETE.
        .routes(routes!(cases_of_agent, add_cases, update_case, delete_case))
}

/// Adds `outcomeType` (`{code: type}`): the response case each detected agent's data leads to.
fn with_outcome_types(agents: &[AiAgent], result: &mut Value) {
    let mut types = serde_json::Map::new();
    for code in result["intentDetection"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let Some(code) = code.as_str() else { continue };
        let Some(agent) = agents.iter().find(|a| a.slug == code) else {
            continue;
        };
        let data = result["inputParameters"][code]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let ty = switchyard_agents::outcome(agent, &data, "de")
            .ok()
            .flatten()
            .map(|o| Value::String(o.ty));
        types.insert(code.to_owned(), ty.unwrap_or(Value::Null));
    }
    result["outcomeType"] = Value::Object(types);
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RunList {
    success: bool,
    total: i64,
    limit: i64,
    offset: i64,
    #[schema(value_type = Vec<Object>)]
    test_runs: Vec<Value>,
}

/// Get all test runs with pagination
#[utoipa::path(get, path = "/api/mind/aiQualityCheck/testRun", tag = "aiQualityCheck", params(Page),
    responses((status = 200, body = RunList), (status = 403, body = crate::Problem)))]
async fn list_runs(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(page): crate::extract::ApiQuery<Page>,
) -> ApiResult<Json<RunList>> {
    auth.require(Permission::AiQualityCheck)?;
    let (limit, offset) = page.resolve()?;
    let mut conn = state.store.pool().acquire().await?;
    let (test_runs, total) = quality::runs(&mut conn, limit, offset).await?;
    Ok(Json(RunList {
        success: true,
        total,
        limit,
        offset,
        test_runs,
    }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScheduleRequest {
    /// Only this agent's test cases; absent: every test case.
    ai_agent_id: Option<i64>,
    #[serde(default)]
    description: String,
    /// Only these test cases.
    #[serde(default)]
    test_case_ids: Vec<i64>,
    /// Accepted for compatibility; cases keep their ticket's channel.
    channel: Option<String>,
    /// `{limit}`: at most this many test tickets (default 500).
    #[serde(default)]
    #[schema(schema_with = run_config_schema)]
    config: Value,
}

/// `config` is kept as sent (other keys are accepted for the reference product's clients); only
/// `limit` is read.
fn run_config_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .property(
            "limit",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
                .minimum(Some(1))
                .maximum(Some(10_000)),
        )
        .build()
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Scheduled {
    success: bool,
    #[schema(value_type = Object)]
    test_run: Value,
}

/// Schedule a new AI quality check (a dry run: every write action is suppressed)
#[utoipa::path(post, path = "/api/mind/aiQualityCheck/testRun", tag = "aiQualityCheck", request_body(content = Option<ScheduleRequest>, description = "optional"),
    responses((status = 200, body = Scheduled), (status = 403, body = crate::Problem)))]
async fn schedule_run(
    State(state): State<ApiState>,
    auth: Auth,
    body: axum::body::Bytes,
) -> ApiResult<Json<Scheduled>> {
    let user = auth.require(Permission::AiQualityCheck)?;
    // Every field is optional, the body too.
    let req: ScheduleRequest = crate::extract::parse_optional_json(&body)?;
    let _ = req.channel;
    if !(req.config.is_object() || req.config.is_null()) {
        return Err(ApiError::field("config", "must be an object"));
    }
    let limit = match req.config.get("limit") {
        None | Some(Value::Null) => 500,
        Some(v) => v
            .as_i64()
            .filter(|l| (1..=10_000).contains(l))
            .ok_or_else(|| ApiError::field("config.limit", "must be between 1 and 10000"))?,
    };
    let mut tx = state.store.begin().await?;
    let (run_id, key, scheduled) = quality::create_run(
        &mut tx,
        req.ai_agent_id,
        &req.test_case_ids,
        &req.description,
        &req.config,
        limit,
        &user.actor(),
    )
    .await?;
    tx.commit().await?;
    for (ticket_id, message_id) in scheduled {
        let env = Envelope {
            v: ENVELOPE_VERSION,
            ticket_id,
            message_id,
            test_run_id: Some(key),
            reply: None,
        };
        let subject = Stage::Ai.input_subject();
        state
            .bus
            .publish_json(subject, &env.msg_id(Stage::Ai), &env)
            .await
            .map_err(|e| ApiError::Unavailable(format!("test run not published: {e}")))?;
    }
    let mut conn = state.store.pool().acquire().await?;
    let (run, _) = quality::run(&mut conn, run_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("test run {run_id}")))?;
    Ok(Json(Scheduled {
        success: true,
        test_run: run,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RunDetail {
    success: bool,
    /// Mean score per dimension (0 to 1) and `overall`; null until a ticket was tested.
    #[schema(value_type = Option<Object>)]
    scores: Value,
    #[schema(value_type = Object)]
    test_run: Value,
    #[schema(value_type = Vec<Object>)]
    tickets: Vec<Value>,
}

/// Get a specific test run by ID
#[utoipa::path(get, path = "/api/mind/aiQualityCheck/testRun/{testRunId}", tag = "aiQualityCheck",
    params(("testRunId" = i64, Path)),
    responses((status = 200, body = RunDetail), (status = 404, body = crate::Problem)))]
async fn get_run(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RunDetail>> {
    auth.require(Permission::AiQualityCheck)?;
    let id = path_id("testRunId", &id)?;
    let mut conn = state.store.pool().acquire().await?;
    let (run, tickets) = quality::run(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("test run {id}")))?;
    Ok(Json(RunDetail {
        success: true,
        scores: run["scores"].clone(),
        test_run: run,
        tickets,
    }))
}

#[derive(Serialize, ToSchema)]
struct Done {
    success: bool,
}

/// Delete a specific test run by ID
#[utoipa::path(delete, path = "/api/mind/aiQualityCheck/testRun/{testRunId}", tag = "aiQualityCheck",
    params(("testRunId" = i64, Path)),
    responses((status = 200, body = Done), (status = 404, body = crate::Problem)))]
async fn delete_run(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Done>> {
    auth.require(Permission::AiQualityCheck)?;
    let id = path_id("testRunId", &id)?;
    let mut conn = state.store.pool().acquire().await?;
    quality::delete_run(&mut conn, id).await?;
    Ok(Json(Done { success: true }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TicketUpdated {
    success: bool,
    message: String,
    #[schema(value_type = Object)]
    test_ticket: Value,
}

/// Update the expected result of a test ticket (the test case keeps it for future runs)
#[utoipa::path(patch, path = "/api/mind/aiQualityCheck/testRun/{testRunId}/updateExpectedResult/{ticketId}",
    tag = "aiQualityCheck", params(("testRunId" = i64, Path), ("ticketId" = i64, Path)), request_body = Object,
    responses((status = 200, body = TicketUpdated), (status = 404, body = crate::Problem)))]
async fn update_expected(
    State(state): State<ApiState>,
    auth: Auth,
    Path((run, ticket)): Path<(String, String)>,
    ApiJson(expected): ApiJson<Value>,
) -> ApiResult<Json<TicketUpdated>> {
    let user = auth.require(Permission::AiQualityCheck)?;
    let (run, ticket) = (path_id("testRunId", &run)?, path_id("ticketId", &ticket)?);
    if !expected.is_object() {
        return Err(ApiError::field("body", "the expected result is an object"));
    }
    let mut tx = state.store.begin().await?;
    let mut updated =
        quality::set_expected(&mut tx, run, ticket, Some(&expected), &user.actor()).await?;
    tx.commit().await?;
    Ok(Json(TicketUpdated {
        success: true,
        message: "expected result updated".into(),
        test_ticket: updated.pop().unwrap_or(Value::Null),
    }))
}

/// Accept the observed result of a test ticket as its expected result
#[utoipa::path(patch, path = "/api/mind/aiQualityCheck/testRun/{testRunId}/acceptExpectedResult/{ticketId}",
    tag = "aiQualityCheck", params(("testRunId" = i64, Path), ("ticketId" = i64, Path)),
    responses((status = 200, body = TicketUpdated), (status = 404, body = crate::Problem)))]
async fn accept_expected(
    State(state): State<ApiState>,
    auth: Auth,
    Path((run, ticket)): Path<(String, String)>,
) -> ApiResult<Json<TicketUpdated>> {
    let user = auth.require(Permission::AiQualityCheck)?;
    let (run, ticket) = (path_id("testRunId", &run)?, path_id("ticketId", &ticket)?);
    let mut tx = state.store.begin().await?;
    let mut updated = quality::set_expected(&mut tx, run, ticket, None, &user.actor()).await?;
    tx.commit().await?;
    let test_ticket = updated.pop().ok_or_else(|| {
        ApiError::Conflict(format!(
            "ticket {ticket} of test run {run} is not tested yet"
        ))
    })?;
    Ok(Json(TicketUpdated {
        success: true,
        message: "observed result accepted".into(),
        test_ticket,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AllAccepted {
    success: bool,
    message: String,
    #[schema(value_type = Vec<Object>)]
    test_tickets: Vec<Value>,
}

/// Accept ALL the observed results of a test run as expected results
#[utoipa::path(post, path = "/api/mind/aiQualityCheck/testRun/{testRunId}/acceptAllExpectedResults",
    tag = "aiQualityCheck", params(("testRunId" = i64, Path)),
    responses((status = 200, body = AllAccepted), (status = 404, body = crate::Problem)))]
async fn accept_all(
    State(state): State<ApiState>,
    auth: Auth,
    Path(run): Path<String>,
) -> ApiResult<Json<AllAccepted>> {
    let user = auth.require(Permission::AiQualityCheck)?;
    let run = path_id("testRunId", &run)?;
    let mut tx = state.store.begin().await?;
    let updated = quality::set_expected(&mut tx, run, 0, None, &user.actor()).await?;
    tx.commit().await?;
    Ok(Json(AllAccepted {
        success: true,
        message: format!("{} observed results accepted", updated.len()),
        test_tickets: updated,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AgentsWithCases {
    success: bool,
    #[schema(value_type = Vec<Object>)]
    ai_agents: Vec<Value>,
}

/// Get all AI agents for which test runs can be triggered (those with test cases)
#[utoipa::path(get, path = "/api/mind/aiQualityCheck/testAiAgent", tag = "aiQualityCheck",
    responses((status = 200, body = AgentsWithCases)))]
async fn agents_with_cases(
    State(state): State<ApiState>,
    auth: Auth,
) -> ApiResult<Json<AgentsWithCases>> {
    auth.require(Permission::AiQualityCheck)?;
    let mut conn = state.store.pool().acquire().await?;
    Ok(Json(AgentsWithCases {
        success: true,
        ai_agents: quality::agents_with_cases(&mut conn).await?,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct CaseFilter {
    ai_agent_id: Option<i64>,
    channel: Option<String>,
    q: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CaseList {
    success: bool,
    #[schema(value_type = Vec<Object>)]
    test_cases: Vec<Value>,
}

/// Get test cases (filter by agent, channel, text)
#[utoipa::path(get, path = "/api/mind/aiQualityCheck/testCase", tag = "aiQualityCheck", params(CaseFilter),
    responses((status = 200, body = CaseList)))]
async fn list_cases(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(f): crate::extract::ApiQuery<CaseFilter>,
) -> ApiResult<Json<CaseList>> {
    auth.require(Permission::AiQualityCheck)?;
    let mut conn = state.store.pool().acquire().await?;
    Ok(Json(CaseList {
        success: true,
        test_cases: quality::cases(
            &mut conn,
            f.ai_agent_id,
            f.channel.as_deref(),
            f.q.as_deref(),
        )
        .await?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NewCase {
    ticket_id: i64,
    ai_agent_id: Option<i64>,
    #[serde(default)]
    description: String,
    /// Absent: what the AI currently makes of the ticket.
    #[schema(value_type = Option<Object>)]
    expected_result: Option<Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CaseSaved {
    success: bool,
    #[schema(value_type = Vec<Object>)]
    test_cases: Vec<Value>,
}

async fn add(
    state: &ApiState,
    actor: &str,
    ticket_id: i64,
    agent: Option<i64>,
    description: &str,
    expected: Option<Value>,
    agents: &[AiAgent],
) -> ApiResult<Value> {
    let mut tx = state.store.begin().await?;
    let expected = match expected {
        Some(e) if e.is_object() => e,
        Some(_) => return Err(ApiError::field("expectedResult", "must be an object")),
        None => {
            let mut e = quality::snapshot(&mut tx, ticket_id).await?;
            with_outcome_types(agents, &mut e);
            e
        }
    };
    let case =
        quality::create_case(&mut tx, ticket_id, agent, &expected, description, actor).await?;
    tx.commit().await?;
    Ok(case)
}

/// Add a test case (a ticket with its expected result)
#[utoipa::path(post, path = "/api/mind/aiQualityCheck/testCase", tag = "aiQualityCheck", request_body = NewCase,
    responses((status = 200, body = CaseSaved), (status = 404, body = crate::Problem)))]
async fn create_case(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(c): ApiJson<NewCase>,
) -> ApiResult<Json<CaseSaved>> {
    let user = auth.require(Permission::AiQualityCheck)?;
    // Agents are needed only to snapshot the expected outcome types.
    let agents = match c.expected_result {
        Some(_) => Vec::new(),
        None => ai_agents::all(&mut *state.store.pool().acquire().await?).await?,
    };
    let case = add(
        &state,
        &user.actor(),
        c.ticket_id,
        c.ai_agent_id,
        &c.description,
        c.expected_result,
        &agents,
    )
    .await?;
    Ok(Json(CaseSaved {
        success: true,
        test_cases: vec![case],
    }))
}

fn agent_param(raw: &str) -> ApiResult<Option<i64>> {
    if raw == "all" {
        Ok(None)
    } else {
        path_id("aiAgentId", raw).map(Some)
    }
}

/// Get test cases by AI agent ID (`all` for every agent)
#[utoipa::path(get, path = "/api/mind/aiQualityCheck/testCase/{id}", tag = "aiQualityCheck",
    params(("id" = String, Path, description = "an AI agent id or `all`", pattern = "^(all|[1-9][0-9]{0,17})$")),
    responses((status = 200, body = CaseList)))]
async fn cases_of_agent(
    State(state): State<ApiState>,
    auth: Auth,
    Path(agent): Path<String>,
) -> ApiResult<Json<CaseList>> {
    auth.require(Permission::AiQualityCheck)?;
    let agent = agent_param(&agent)?;
    let mut conn = state.store.pool().acquire().await?;
    Ok(Json(CaseList {
        success: true,
        test_cases: quality::cases(&mut conn, agent, None, None).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TicketIds {
    #[schema(min_items = 1, max_items = 1000)]
    ticket_ids: Vec<i64>,
}

/// Add test cases for an AI agent from ticket ids (each expects what the AI makes of it now)
#[utoipa::path(post, path = "/api/mind/aiQualityCheck/testCase/{id}", tag = "aiQualityCheck",
    params(("id" = i64, Path, description = "the AI agent id")), request_body = TicketIds,
    responses((status = 200, body = CaseSaved), (status = 404, body = crate::Problem)))]
async fn add_cases(
    State(state): State<ApiState>,
    auth: Auth,
    Path(agent): Path<String>,
    ApiJson(body): ApiJson<TicketIds>,
) -> ApiResult<Json<CaseSaved>> {
    let user = auth.require(Permission::AiQualityCheck)?;
    let agent = path_id("aiAgentId", &agent)?;
    let agents = ai_agents::all(&mut *state.store.pool().acquire().await?).await?;
    if !agents.iter().any(|a| a.id == agent) {
        return Err(ApiError::NotFound(format!("aiAgent {agent}")));
    }
    if body.ticket_ids.is_empty() || body.ticket_ids.len() > 1000 {
        return Err(ApiError::field("ticketIds", "1 to 1000 ticket ids"));
    }
    let mut cases = Vec::new();
    for t in body.ticket_ids {
        cases.push(add(&state, &user.actor(), t, Some(agent), "", None, &agents).await?);
    }
    Ok(Json(CaseSaved {
        success: true,
        test_cases: cases,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CaseChange {
    description: Option<String>,
    #[schema(value_type = Option<Object>)]
    expected_result: Option<Value>,
}

/// Update a test case by ID
#[utoipa::path(patch, path = "/api/mind/aiQualityCheck/testCase/{id}", tag = "aiQualityCheck",
    params(("id" = i64, Path, description = "the test case id")), request_body = CaseChange,
    responses((status = 200, body = CaseSaved), (status = 404, body = crate::Problem)))]
async fn update_case(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(c): ApiJson<CaseChange>,
) -> ApiResult<Json<CaseSaved>> {
    let user = auth.require(Permission::AiQualityCheck)?;
    let id = path_id("testCaseId", &id)?;
    if c.expected_result.as_ref().is_some_and(|e| !e.is_object()) {
        return Err(ApiError::field("expectedResult", "must be an object"));
    }
    let mut conn = state.store.pool().acquire().await?;
    let case = quality::update_case(
        &mut conn,
        id,
        c.description.as_deref(),
        c.expected_result.as_ref(),
        &user.actor(),
    )
    .await?;
    Ok(Json(CaseSaved {
        success: true,
        test_cases: vec![case],
    }))
}

/// Delete a test case by ID
#[utoipa::path(delete, path = "/api/mind/aiQualityCheck/testCase/{id}", tag = "aiQualityCheck",
    params(("id" = i64, Path, description = "the test case id")),
    responses((status = 200, body = Done), (status = 404, body = crate::Problem)))]
async fn delete_case(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Done>> {
    auth.require(Permission::AiQualityCheck)?;
    let id = path_id("testCaseId", &id)?;
    let mut conn = state.store.pool().acquire().await?;
    quality::delete_case(&mut conn, id).await?;
    Ok(Json(Done { success: true }))
}

/// Scores test tickets whose replay is through, every `every`, until `stop`.
pub async fn run_collector(
    store: Store,
    _bus: Bus,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = collect_once(&store).await {
            tracing::warn!(error = %e, "quality check results not collected; retrying");
        }
        if tokio::time::timeout(every, stop.wait_for(|s| *s))
            .await
            .is_ok()
        {
            return;
        }
    }
}

async fn collect_once(store: &Store) -> ApiResult<()> {
    let mut tx = store.begin().await?;
    let waiting = quality::scheduled(&mut tx, 100).await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let agents = ai_agents::all(&mut tx).await?;
    let mut runs = Vec::new();
    for (id, run_id, key, ticket_id, expected, overdue) in waiting {
        match quality::actual(&mut tx, key, ticket_id).await? {
            Some((mut actual, raw)) => {
                with_outcome_types(&agents, &mut actual);
                let scores = quality::score(&expected, &actual);
                quality::record_result(&mut tx, id, Some(&actual), Some(&raw), Some(&scores))
                    .await?;
            }
            None if overdue => quality::record_result(&mut tx, id, None, None, None).await?,
            None => continue,
        }
        if !runs.contains(&run_id) {
            runs.push(run_id);
        }
    }
    for run in runs {
        quality::refresh_run_scores(&mut tx, run).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schedule_body_fields_are_optional() -> Result<(), serde_json::Error> {
        let r: ScheduleRequest = serde_json::from_value(json!({}))?;
        assert!(r.ai_agent_id.is_none() && r.test_case_ids.is_empty());
        assert!(serde_json::from_value::<ScheduleRequest>(json!({"bogus": 1})).is_err());
        Ok(())
    }
}
