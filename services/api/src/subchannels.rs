//! Subchannels: `GET/POST /api/mind/settings/subchannel`, `DELETE /api/mind/settings/subchannel/{id}`.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use switchyard_domain::Permission;
use switchyard_store::subchannels::{self, Subchannel, SubchannelInput};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth};
use crate::ApiState;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_subchannels, create_subchannel))
        .routes(routes!(delete_subchannel))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Filter {
    /// Comma-separated channels (`email,chat`); `all` or absent for every channel.
    #[param(schema_with = channels_schema)]
    channels: Option<String>,
    #[param(minimum = 1)]
    id: Option<i64>,
}

/// The channel list as a pattern: known channel names or `all`, separated by commas, with
/// spaces around them (what [`parse_channels`] accepts).
fn channels_schema() -> utoipa::openapi::Object {
    let names = channel_names().join("|");
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(format!("^ *({names})? *(, *({names})? *)*$")))
        .build()
}

fn channel_names() -> Vec<&'static str> {
    let mut names = switchyard_domain::Channel::NAMES.to_vec();
    names.push("all");
    names
}

/// `"email, chat"` → `["email", "chat"]`; `all` and empty items mean every channel; an unknown
/// name is a 400 (a typo must not silently list nothing).
fn parse_channels(raw: Option<&str>) -> Result<Vec<String>, crate::error::ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let known = channel_names();
    let mut channels = Vec::new();
    // A pattern's `$` also matches before one final newline.
    for item in raw.strip_suffix('\n').unwrap_or(raw).split(',') {
        let item = item.trim_matches(' ');
        if item.is_empty() || item == "all" {
            continue;
        }
        if !known.contains(&item) {
            return Err(crate::error::ApiError::field(
                "channels",
                format!("unknown channel {item:?}; one of {}", known.join(", ")),
            ));
        }
        channels.push(item.to_owned());
    }
    Ok(channels)
}

#[derive(Serialize, ToSchema)]
struct List {
    success: bool,
    subchannels: Vec<Subchannel>,
}

/// Get Subchannels (secrets are never returned; `secretsSet` names the ones that have a value)
#[utoipa::path(get, path = "/api/mind/settings/subchannel", tag = "settings", params(Filter),
    responses((status = 200, body = List)))]
async fn list_subchannels(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(f): crate::extract::ApiQuery<Filter>,
) -> ApiResult<Json<List>> {
    auth.require(Permission::ReadTickets)?;
    if f.id.is_some_and(|id| id < 1) {
        return Err(crate::error::ApiError::field(
            "id",
            "must be a positive integer",
        ));
    }
    let channels = parse_channels(f.channels.as_deref())?;
    let mut conn = state.store.pool().acquire().await?;
    Ok(Json(List {
        success: true,
        subchannels: subchannels::list(&mut conn, &channels, f.id).await?,
    }))
}

#[derive(Serialize, ToSchema)]
struct Created {
    success: bool,
    id: i64,
}

/// Add a new Subchannel
#[utoipa::path(post, path = "/api/mind/settings/subchannel", tag = "settings", request_body = SubchannelInput,
    responses((status = 200, body = Created), (status = 403, body = crate::Problem)))]
async fn create_subchannel(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(body): ApiJson<SubchannelInput>,
) -> ApiResult<Json<Created>> {
    let user = auth.require(Permission::UpdateClientSettings)?;
    let mut tx = state.store.begin().await?;
    let id = subchannels::create(&mut tx, &body, &user.actor()).await?;
    tx.commit().await?;
    Ok(Json(Created { success: true, id }))
}

#[derive(Serialize, ToSchema)]
struct Deleted {
    success: bool,
}

/// Delete a Subchannel
#[utoipa::path(delete, path = "/api/mind/settings/subchannel/{id}", tag = "settings", params(("id" = i64, Path)),
    responses((status = 200, body = Deleted), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn delete_subchannel(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Deleted>> {
    let user = auth.require(Permission::UpdateClientSettings)?;
    let id = crate::path_id("id", &id)?;
    let mut tx = state.store.begin().await?;
    subchannels::delete(&mut tx, id, &user.actor()).await?;
    tx.commit().await?;
    Ok(Json(Deleted { success: true }))
}
