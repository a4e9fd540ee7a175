//! Login with a password and a cookie session (`connect.sid`, as the reference product names
//! it), logout, and passwords. Failed logins are rate-limited per e-mail and client address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use switchyard_domain::Permission;
use switchyard_store::auth;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth};
use crate::ApiState;

pub const SESSION_COOKIE: &str = "connect.sid";
const SESSION_SECS: i64 = 8 * 3600;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(set_password))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// Lower-cased e-mail and client address.
type LoginKey = (String, String);

/// Failed logins per (e-mail, client address): at most `MAX` within `WINDOW`.
#[derive(Clone, Default)]
pub struct LoginLimiter {
    failures: Arc<Mutex<HashMap<LoginKey, Vec<Instant>>>>,
}

impl LoginLimiter {
    const MAX: usize = 5;
    const WINDOW: Duration = Duration::from_secs(300);

    /// Seconds to wait, when the caller already failed too often.
    fn blocked_for(&self, key: &LoginKey) -> Option<u64> {
        let mut map = self.failures.lock().ok()?;
        let list = map.get_mut(key)?;
        list.retain(|t| t.elapsed() < Self::WINDOW);
        (list.len() >= Self::MAX).then(|| {
            let oldest = list.iter().min().copied().unwrap_or_else(Instant::now);
            Self::WINDOW
                .saturating_sub(oldest.elapsed())
                .as_secs()
                .max(1)
        })
    }

    fn failed(&self, key: LoginKey) {
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 100_000 {
                map.clear(); // a flood of distinct keys cannot grow memory without bound
            }
            map.entry(key).or_default().push(Instant::now());
        }
    }

    fn succeeded(&self, key: &LoginKey) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
struct LoggedIn {
    success: bool,
    #[schema(value_type = Object)]
    user: auth::AuthUser,
}

/// Log in
///
/// Sets the session cookie (`connect.sid`, HttpOnly, SameSite=Strict, eight hours). Five failed
/// attempts for an e-mail from one address within five minutes answer 429 until the window
/// passes.
#[utoipa::path(post, path = "/api/mind/auth/login", tag = "auth", request_body = Login, security(()),
    responses((status = 200, body = LoggedIn), (status = 401, body = crate::Problem), (status = 429, body = crate::Problem)))]
async fn login(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<Login>,
) -> ApiResult<Response> {
    let key = (body.email.to_lowercase(), peer.ip().to_string());
    if let Some(wait) = state.login_limiter.blocked_for(&key) {
        return Err(ApiError::TooManyRequests(wait));
    }
    let mut tx = state.store.begin().await?;
    let Some(user) = auth::check_password(&mut tx, &body.email, &body.password).await? else {
        state.login_limiter.failed(key);
        return Err(ApiError::Unauthorized);
    };
    state.login_limiter.succeeded(&key);
    let token = auth::create_session(&mut tx, user.id, SESSION_SECS).await?;
    switchyard_store::audit::record(
        &mut tx,
        &user.actor(),
        "user",
        &user.id.to_string(),
        "loggedIn",
        &serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{secure}");
    let mut resp = Json(LoggedIn {
        success: true,
        user,
    })
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(resp)
}

/// The session token from the request's cookies, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

#[derive(Serialize, ToSchema)]
struct Success {
    success: bool,
}

/// Log out: ends the session of the cookie sent
#[utoipa::path(post, path = "/api/mind/auth/logout", tag = "auth",
    responses((status = 200, body = Success), (status = 401, body = crate::Problem)))]
async fn logout(
    State(state): State<ApiState>,
    _auth: Auth,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(token) = session_token(&headers) {
        let mut conn = state.store.pool().acquire().await?;
        auth::revoke_session(&mut conn, &token).await?;
        state.auth_cache.forget(&token);
    }
    let mut resp = (StatusCode::OK, Json(Success { success: true })).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("connect.sid=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    /// At least 10 characters.
    #[schema(min_length = 10)]
    password: String,
}

/// Set a user's password (your own, or anyone's with `manageUsers`)
#[utoipa::path(put, path = "/api/mind/user/{id}/password", tag = "auth", params(("id" = i64, Path)),
    request_body = NewPassword,
    responses((status = 200, body = Success), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem)))]
async fn set_password(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewPassword>,
) -> ApiResult<Json<Success>> {
    let id = crate::path_id("id", &id)?;
    if auth.0.id != id {
        auth.require(Permission::ManageUsers)?;
    }
    let mut tx = state.store.begin().await?;
    auth::set_password(&mut tx, id, &body.password).await?;
    switchyard_store::audit::record(
        &mut tx,
        &auth.0.actor(),
        "user",
        &id.to_string(),
        "passwordSet",
        &serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Success { success: true }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct TokenFilter {
    /// Whose tokens (needs `manageUsers` for anyone but yourself); absent: yours, or everyone's
    /// for a user manager.
    #[param(minimum = 1)]
    user_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct TokenList {
    success: bool,
    tokens: Vec<auth::TokenInfo>,
}

/// List API tokens (never the tokens themselves)
#[utoipa::path(get, path = "/api/mind/auth/token", tag = "auth", params(TokenFilter),
    responses((status = 200, body = TokenList), (status = 403, body = crate::Problem)))]
async fn list_tokens(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(f): crate::extract::ApiQuery<TokenFilter>,
) -> ApiResult<Json<TokenList>> {
    if f.user_id.is_some_and(|id| id < 1) {
        return Err(ApiError::field("userId", "must be a positive integer"));
    }
    let manager = auth.0.role.can(Permission::ManageUsers);
    let user = match f.user_id {
        Some(id) if id != auth.0.id => {
            auth.require(Permission::ManageUsers)?;
            Some(id)
        }
        Some(id) => Some(id),
        None if manager => None,
        None => Some(auth.0.id),
    };
    let mut conn = state.store.pool().acquire().await?;
    Ok(Json(TokenList {
        success: true,
        tokens: auth::list_tokens(&mut conn, user).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewToken {
    /// What the token is for (a script, an integration).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    name: String,
    /// For another user (needs `manageUsers`); default yourself.
    #[schema(minimum = 1)]
    user_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct CreatedToken {
    success: bool,
    id: i64,
    /// Shown this once; only its hash is stored.
    token: String,
}

/// Create an API token
#[utoipa::path(post, path = "/api/mind/auth/token", tag = "auth", request_body = NewToken,
    responses((status = 200, body = CreatedToken), (status = 403, body = crate::Problem),
        (status = 404, description = "userId names no user", body = crate::Problem)))]
async fn create_token(
    State(state): State<ApiState>,
    auth: Auth,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<Json<CreatedToken>> {
    if body.user_id.is_some_and(|id| id < 1) {
        return Err(ApiError::field("userId", "must be a positive integer"));
    }
    let user_id = body.user_id.unwrap_or(auth.0.id);
    if user_id != auth.0.id {
        auth.require(Permission::ManageUsers)?;
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::field("name", "must be 1 to 200 characters"));
    }
    let mut tx = state.store.begin().await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    if !exists {
        return Err(ApiError::unknown_reference("userId", "no such user"));
    }
    let token = auth::create_token(&mut tx, user_id, name).await?;
    let id: i64 = sqlx::query_scalar("SELECT id FROM api_tokens WHERE token_hash = $1")
        .bind(auth::hash_token(&token))
        .fetch_one(&mut *tx)
        .await?;
    switchyard_store::audit::record(
        &mut tx,
        &auth.0.actor(),
        "apiToken",
        &id.to_string(),
        "created",
        &serde_json::json!({"userId": user_id, "name": name}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(CreatedToken {
        success: true,
        id,
        token,
    }))
}

/// Revoke an API token (yours, or anyone's with `manageUsers`); other replicas stop accepting
/// it within five seconds
#[utoipa::path(delete, path = "/api/mind/auth/token/{id}", tag = "auth", params(("id" = i64, Path)),
    responses((status = 200, body = Success), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn revoke_token(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Success>> {
    let id = crate::path_id("id", &id)?;
    let owner = (!auth.0.role.can(Permission::ManageUsers)).then_some(auth.0.id);
    let mut tx = state.store.begin().await?;
    if !auth::revoke_token_id(&mut tx, id, owner).await? {
        return Err(ApiError::NotFound(format!("token {id}")));
    }
    switchyard_store::audit::record(
        &mut tx,
        &auth.0.actor(),
        "apiToken",
        &id.to_string(),
        "revoked",
        &serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    state.auth_cache.clear();
    Ok(Json(Success { success: true }))
}
