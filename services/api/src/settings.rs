//! The typed settings store: `GET/POST /api/mind/settings`, `PUT /api/mind/settings/{name}`.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchyard_domain::Permission;
use switchyard_store::settings;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{ApiJson, Auth};
use crate::ApiState;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_settings, update_settings))
        .routes(routes!(put_setting))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SettingsFilter {
    /// Only this category.
    pub category: Option<String>,
    /// Only these names, comma-separated.
    pub names: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct SettingsList {
    success: bool,
    #[schema(value_type = Vec<Object>)]
    settings: Vec<settings::SettingView>,
}

/// Get settings of a client
///
/// Secret values are `null` unless the caller has `readSecretSettings`.
#[utoipa::path(
    get,
    path = "/api/mind/settings",
    tag = "settings",
    params(SettingsFilter),
    responses(
        (status = 200, description = "Settings with their values", body = SettingsList),
        (status = 401, description = "Not authenticated", body = crate::Problem),
    )
)]
async fn list_settings(
    State(state): State<ApiState>,
    auth: Auth,
    Query(filter): Query<SettingsFilter>,
) -> ApiResult<Json<SettingsList>> {
    let show_secrets = auth.0.role.can(Permission::ReadSecretSettings);
    let mut conn = state.store.pool().acquire().await?;
    let names: Option<Vec<&str>> = filter
        .names
        .as_deref()
        .map(|n| n.split(',').map(str::trim).collect());
    let all = settings::list(&mut conn, show_secrets)
        .await?
        .into_iter()
        .filter(|s| filter.category.as_deref().is_none_or(|c| c == s.category))
        .filter(|s| names.as_ref().is_none_or(|n| n.contains(&s.name)))
        .collect();
    Ok(Json(SettingsList {
        success: true,
        settings: all,
    }))
}

#[derive(Serialize, ToSchema)]
struct Updated {
    success: bool,
    /// The names that were changed.
    updated: Vec<String>,
}

/// Update multiple settings at once
///
/// Body: an object of setting names to new values. All are validated first; either all are
/// stored or none.
#[utoipa::path(
    post,
    path = "/api/mind/settings",
    tag = "settings",
    request_body(content = Object, description = "{\"name\": value, ...}"),
    responses(
        (status = 200, description = "Stored", body = Updated),
        (status = 400, description = "Unknown setting or invalid value", body = crate::Problem),
        (status = 403, description = "Missing updateClientSettings", body = crate::Problem),
    )
)]
async fn update_settings(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(body): ApiJson<BTreeMap<String, Value>>,
) -> ApiResult<Json<Updated>> {
    let user = auth.require(Permission::UpdateClientSettings)?;
    if body.is_empty() {
        return Err(ApiError::field("body", "no settings given"));
    }
    let errors: Vec<FieldError> = body
        .iter()
        .filter_map(|(name, value)| match settings::validate(name, value) {
            Ok(_) => None,
            Err(switchyard_store::StoreError::Invalid { field, message }) => {
                Some(FieldError { field, message })
            }
            Err(e) => Some(FieldError {
                field: name.clone(),
                message: e.to_string(),
            }),
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::BadRequest("invalid settings".into(), errors));
    }
    let mut tx = state.store.begin().await?;
    for (name, value) in &body {
        settings::set(&mut tx, name, value, &user.actor()).await?;
    }
    tx.commit().await?;
    announce(&state, body.keys().map(String::as_str), &user.actor()).await;
    Ok(Json(Updated {
        success: true,
        updated: body.into_keys().collect(),
    }))
}

/// Update setting
#[utoipa::path(
    put,
    path = "/api/mind/settings/{name}",
    tag = "settings",
    params(("name" = String, Path, description = "Setting name")),
    request_body(content = Object, description = "The new value as raw JSON (a number, string, boolean, list or object), as in the reference product"),
    responses(
        (status = 200, description = "Stored", body = Updated),
        (status = 400, description = "Unknown setting or invalid value", body = crate::Problem),
        (status = 403, description = "Missing updateClientSettings", body = crate::Problem),
    )
)]
async fn put_setting(
    State(state): State<ApiState>,
    auth: Auth,
    Path(name): Path<String>,
    ApiJson(value): ApiJson<Value>,
) -> ApiResult<Json<Updated>> {
    let user = auth.require(Permission::UpdateClientSettings)?;
    let mut tx = state.store.begin().await?;
    settings::set(&mut tx, &name, &value, &user.actor()).await?;
    tx.commit().await?;
    announce(&state, std::iter::once(name.as_str()), &user.actor()).await;
    Ok(Json(Updated {
        success: true,
        updated: vec![name],
    }))
}

/// Emits `events.SettingChanged` per name (values stay out of the event: they may be secret)
/// and refreshes this process's cache at once; other processes reload within two seconds.
async fn announce<'a>(state: &ApiState, names: impl Iterator<Item = &'a str>, actor: &str) {
    if let Err(e) = state.settings.refresh().await {
        tracing::warn!(error = %e, "settings cache not refreshed");
    }
    for name in names {
        let id = format!("SettingChanged:{name}:{}", uuid::Uuid::now_v7());
        let body = json!({"event": "SettingChanged", "data": {"name": name, "modifiedBy": actor}});
        if let Err(e) = state
            .bus
            .publish_json("events.SettingChanged", &id, &body)
            .await
        {
            tracing::warn!(error = %e, setting = name, "SettingChanged not published");
        }
    }
}
