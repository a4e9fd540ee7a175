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
