//! The typed settings store: `GET/POST /api/mind/settings`, `GET /api/mind/settings/compact`,
//! `GET /api/mind/settings/category/{category}`, `GET /api/mind/settings/search`,
//! `PUT /api/mind/settings/{name}`. `POST` also takes the reference product's nested keys for
//! tags (`_tag[3].sla`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
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
        .routes(routes!(compact_settings))
        .routes(routes!(category_settings))
        .routes(routes!(search_settings))
        .routes(routes!(put_setting))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SettingsFilter {
    /// Only this category (also `category`).
    pub filter_by_category: Option<String>,
    /// Only these names, comma-separated (also `names`).
    pub filter_by_name: Option<String>,
    pub category: Option<String>,
    pub names: Option<String>,
    /// Show secret values (needs `readSecretSettings`); without it they are `null`.
    pub show_secrets: Option<bool>,
}

impl SettingsFilter {
    fn matches(&self, s: &settings::SettingView) -> bool {
        let category = self
            .filter_by_category
            .as_deref()
            .or(self.category.as_deref());
        let names = self.filter_by_name.as_deref().or(self.names.as_deref());
        category.is_none_or(|c| c == s.category)
            && names.is_none_or(|n| n.split(',').map(str::trim).any(|n| n == s.name))
    }
}

/// The settings the caller may see: secrets only when asked for and permitted.
async fn visible(
    state: &ApiState,
    auth: &Auth,
    show_secrets: bool,
) -> ApiResult<Vec<settings::SettingView>> {
    if show_secrets {
        auth.require(Permission::ReadSecretSettings)?;
    }
    let mut conn = state.store.pool().acquire().await?;
    Ok(settings::list(&mut conn, show_secrets).await?)
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
    crate::extract::ApiQuery(filter): crate::extract::ApiQuery<SettingsFilter>,
) -> ApiResult<Json<SettingsList>> {
    let all = visible(&state, &auth, filter.show_secrets.unwrap_or(false)).await?;
    Ok(Json(SettingsList {
        success: true,
        settings: all.into_iter().filter(|s| filter.matches(s)).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
struct Compact {
    success: bool,
    /// Name to value.
    #[schema(value_type = Object)]
    settings: BTreeMap<&'static str, Value>,
}

/// Get settings of a client and return the results in a compact form
#[utoipa::path(get, path = "/api/mind/settings/compact", tag = "settings", params(SettingsFilter),
    responses((status = 200, body = Compact), (status = 403, body = crate::Problem)))]
async fn compact_settings(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(filter): crate::extract::ApiQuery<SettingsFilter>,
) -> ApiResult<Json<Compact>> {
    let all = visible(&state, &auth, filter.show_secrets.unwrap_or(false)).await?;
    Ok(Json(Compact {
        success: true,
        settings: all
            .into_iter()
            .filter(|s| filter.matches(s))
            .map(|s| (s.name, s.value))
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
struct Group {
    name: String,
    #[schema(value_type = Vec<Object>)]
    settings: Vec<settings::SettingView>,
}

#[derive(Serialize, ToSchema)]
struct Grouped {
    success: bool,
    groups: Vec<Group>,
}

/// Get settings of a client in a grouped way for a category
#[utoipa::path(get, path = "/api/mind/settings/category/{category}", tag = "settings",
    params(("category" = String, Path)),
    responses((status = 200, body = Grouped), (status = 404, body = crate::Problem)))]
async fn category_settings(
    State(state): State<ApiState>,
    auth: Auth,
    Path(category): Path<String>,
) -> ApiResult<Json<Grouped>> {
    let in_category: Vec<_> = visible(&state, &auth, false)
        .await?
        .into_iter()
        .filter(|s| s.category == category)
        .collect();
    if in_category.is_empty() {
        return Err(ApiError::NotFound(format!("settings category {category}")));
    }
    Ok(Json(Grouped {
        success: true,
        groups: vec![Group {
            name: category,
            settings: in_category,
        }],
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchParams {
    /// Words to find in a setting's name, category or description (case-insensitive).
    #[param(min_length = 1)]
    q: String,
}

/// Search settings
#[utoipa::path(get, path = "/api/mind/settings/search", tag = "settings", params(SearchParams),
    responses((status = 200, body = SettingsList), (status = 400, body = crate::Problem)))]
async fn search_settings(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(p): crate::extract::ApiQuery<SearchParams>,
) -> ApiResult<Json<SettingsList>> {
    let words: Vec<String> = p.q.split_whitespace().map(str::to_lowercase).collect();
    if words.is_empty() {
        return Err(ApiError::field("q", "must not be empty"));
    }
    let found = visible(&state, &auth, false)
        .await?
        .into_iter()
        .filter(|s| {
            let text = format!("{} {} {}", s.name, s.category, s.description).to_lowercase();
            words.iter().all(|w| text.contains(w))
        })
        .collect();
    Ok(Json(SettingsList {
        success: true,
        settings: found,
    }))
}

#[derive(Serialize, ToSchema)]
struct SettingsUpdated {
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
        (status = 200, description = "Stored", body = SettingsUpdated),
        (status = 400, description = "Unknown setting or invalid value", body = crate::Problem),
        (status = 403, description = "Missing updateClientSettings", body = crate::Problem),
    )
)]
async fn update_settings(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(body): ApiJson<BTreeMap<String, Value>>,
) -> ApiResult<Json<SettingsUpdated>> {
    let user = auth.require(Permission::UpdateClientSettings)?;
    if body.is_empty() {
        // Nothing to change is not an error (a client sending its unchanged form).
        return Ok(Json(SettingsUpdated {
            success: true,
            updated: Vec::new(),
        }));
    }
    let (nested, plain): (BTreeMap<String, Value>, BTreeMap<String, Value>) =
        body.into_iter().partition(|(k, _)| k.starts_with('_'));
    let nested = nested
        .into_iter()
        .map(|(k, v)| parse_nested(&k).map(|n| (n, v)))
        .collect::<Result<Vec<_>, _>>()?;
    let body = plain;
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
    let mut updated: Vec<String> = body.keys().cloned().collect();
    for ((entity, id, prop), value) in nested {
        set_tag_property(&mut tx, id, &prop, value, &user.actor())
            .await
            .map_err(|e| match e {
                ApiError::BadRequest(m, _) => {
                    ApiError::field(&format!("_{entity}[{id}].{prop}"), m)
                }
                other => other,
            })?;
        updated.push(format!("_{entity}[{id}].{prop}"));
    }
    tx.commit().await?;
    announce(&state, updated.iter().map(String::as_str), &user.actor()).await;
    Ok(Json(SettingsUpdated {
        success: true,
        updated,
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
        (status = 200, description = "Stored", body = SettingsUpdated),
        (status = 400, description = "Unknown setting or invalid value", body = crate::Problem),
        (status = 403, description = "Missing updateClientSettings", body = crate::Problem),
    )
)]
async fn put_setting(
    State(state): State<ApiState>,
    auth: Auth,
    Path(name): Path<String>,
    ApiJson(value): ApiJson<Value>,
) -> ApiResult<Json<SettingsUpdated>> {
    let user = auth.require(Permission::UpdateClientSettings)?;
    let mut tx = state.store.begin().await?;
    settings::set(&mut tx, &name, &value, &user.actor()).await?;
    tx.commit().await?;
    announce(&state, std::iter::once(name.as_str()), &user.actor()).await;
    Ok(Json(SettingsUpdated {
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

/// `_tag[3].sla` → ("tag", 3, "sla"). Only tags so far; other entities come with their issues.
fn parse_nested(key: &str) -> Result<(String, i64, String), ApiError> {
    let bad = || ApiError::field(key, "nested keys look like _tag[3].sla");
    let rest = key.strip_prefix('_').ok_or_else(bad)?;
    let (entity, rest) = rest.split_once('[').ok_or_else(bad)?;
    let (id, prop) = rest.split_once("].").ok_or_else(bad)?;
    let id: i64 = id.parse().map_err(|_| bad())?;
    if entity != "tag" {
        return Err(ApiError::field(
            key,
            "only _tag[id].property can be set here",
        ));
    }
    if prop.is_empty() || prop.contains(['.', '[']) {
        return Err(bad());
    }
    Ok((entity.to_owned(), id, prop.to_owned()))
}

/// Changes one property of a tag, validated like `POST /api/mind/tag`.
async fn set_tag_property(
    conn: &mut switchyard_store::PgConnection,
    id: i64,
    prop: &str,
    value: Value,
    actor: &str,
) -> ApiResult<()> {
    use switchyard_store::routing;
    let tag = routing::list_tags(conn)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("tag {id}")))?;
    let mut input = serde_json::to_value(&tag).map_err(|e| ApiError::Internal(e.into()))?;
    let obj = input
        .as_object_mut()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("tag is not an object")))?;
    // What TagInput does not take.
    for k in ["fullName", "modifiedBy", "modifiedAt"] {
        obj.remove(k);
    }
    if !obj.contains_key(prop) || prop == "id" {
        return Err(ApiError::BadRequest(
            format!("tags have no settable property {prop}"),
            Vec::new(),
        ));
    }
    obj.insert(prop.to_owned(), value);
    let input: routing::TagInput = serde_json::from_value(input)
        .map_err(|e| ApiError::BadRequest(e.to_string(), Vec::new()))?;
    match routing::save_tag(conn, &input, actor).await {
        Ok(_) => Ok(()),
        Err(switchyard_store::StoreError::Invalid { message, .. }) => {
            Err(ApiError::BadRequest(message, Vec::new()))
        }
        Err(e) => Err(e.into()),
    }
}
