//! Dead letters: list them, replay them once the cause is gone.

use axum::extract::{Path, State};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchyard_domain::{Permission, Stage};
use switchyard_store::{dead_letters, tickets};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;
use crate::{ApiState, Page};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_dead_letters))
        .routes(routes!(replay_dead_letter))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DlqFilter {
    /// Only this stage (`ingest`, `ai`, `router`, `autoexecute`).
    #[param(pattern = "^(ingest|ai|router|autoexecute|outbound)$")]
    pub stage: Option<String>,
    /// Include replayed ones (default false).
    pub all: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeadLetterList {
    success: bool,
    total: i64,
    limit: i64,
    offset: i64,
    #[schema(value_type = Vec<Object>)]
    dead_letters: Vec<dead_letters::DeadLetter>,
}

/// List dead letters
#[utoipa::path(
    get,
    path = "/api/mind/dlq",
    tag = "operations",
    params(DlqFilter, Page),
    responses(
        (status = 200, description = "Newest first", body = DeadLetterList),
        (status = 403, description = "Missing manageDeadLetters", body = crate::Problem),
    )
)]
async fn list_dead_letters(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(filter): crate::extract::ApiQuery<DlqFilter>,
    crate::extract::ApiQuery(page): crate::extract::ApiQuery<Page>,
) -> ApiResult<Json<DeadLetterList>> {
    auth.require(Permission::ManageDeadLetters)?;
    let (limit, offset) = page.resolve()?;
    if let Some(s) = &filter.stage {
        Stage::parse(s)
            .ok_or_else(|| ApiError::field("stage", "must be ingest, ai, router or autoexecute"))?;
    }
    let mut conn = state.store.pool().acquire().await?;
    let (rows, total) = dead_letters::list(
        &mut conn,
        filter.stage.as_deref(),
        !filter.all.unwrap_or(false),
        limit,
        offset,
    )
    .await?;
    Ok(Json(DeadLetterList {
        success: true,
        total,
        limit,
        offset,
        dead_letters: rows,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Replayed {
    success: bool,
    id: i64,
    replay_count: i32,
}

/// Replay a dead letter
///
/// Publishes the message again to the subject it failed on and clears the ticket's
/// `deadLettered` flag for that stage. If it fails again it comes back as a new dead letter.
#[utoipa::path(
    post,
    path = "/api/mind/dlq/{id}/replay",
    tag = "operations",
    params(("id" = i64, Path, description = "Dead letter id")),
    responses(
        (status = 200, description = "Published again", body = Replayed),
        (status = 403, description = "Missing manageDeadLetters", body = crate::Problem),
        (status = 404, description = "No such dead letter", body = crate::Problem),
    )
)]
async fn replay_dead_letter(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Replayed>> {
    let user = auth.require(Permission::ManageDeadLetters)?;
    let id = crate::path_id("id", &id)?;
    let mut tx = state.store.begin().await?;
    let dl = dead_letters::get_for_update(&mut tx, id).await?;
    let count = dl.replay_count + 1;
    // The stage's marker was never written for a failed message, so the replay does the work;
    // the id differs per replay so JetStream's de-duplication does not swallow it.
    state
        .bus
        .publish(
            &dl.subject,
            &format!("replay:{id}:{count}"),
            Bytes::from(dl.payload.clone()),
        )
        .await?;
    if let Some(t) = dl.ticket_id {
        tickets::clear_processing_flag(&mut tx, t, "deadLettered", Some(&dl.stage), &user.actor())
            .await?;
    }
    dead_letters::mark_replayed(&mut tx, id, &user.actor()).await?;
    tx.commit().await?;
    Ok(Json(Replayed {
        success: true,
        id,
        replay_count: count,
    }))
}
