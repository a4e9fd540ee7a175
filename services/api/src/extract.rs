//! Request extractors: the authenticated caller, and JSON bodies whose errors name the field.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;
use switchyard_domain::Permission;
use switchyard_store::auth::{self, AuthUser};

use crate::error::{ApiError, FieldError};
use crate::ApiState;

/// The caller, authenticated by `Authorization: Bearer <token>` or the session cookie.
pub struct Auth(pub AuthUser);

impl Auth {
    /// Fails with 403 unless the caller's role grants `p`.
    pub fn require(&self, p: Permission) -> Result<&AuthUser, ApiError> {
        if self.0.role.can(p) {
            Ok(&self.0)
        } else {
            Err(ApiError::Forbidden(p.as_str()))
        }
    }
}

impl<S> FromRequestParts<S> for Auth
where
    ApiState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = ApiState::from_ref(state);
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let (token, is_session) = match bearer {
            Some(t) => (t, false),
            None => (
                crate::auth::session_token(&parts.headers).ok_or(ApiError::Unauthorized)?,
                true,
            ),
        };
        let user = match state.auth_cache.get(&token) {
            Some(user) => user,
            None => {
                let mut conn = state.store.pool().acquire().await?;
                let user = if is_session {
                    auth::session_user(&mut conn, &token).await?
                } else {
                    auth::authenticate(&mut conn, &token).await?
                }
                .ok_or(ApiError::Unauthorized)?;
                state.auth_cache.put(&token, user.clone());
                user
            }
        };
        tracing::Span::current().record("user_id", user.id);
        Ok(Auth(user))
    }
}

/// A JSON body; a malformed one is a 400 problem naming the offending field.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
        if !is_json {
            return Err(ApiError::BadRequest(
                "expected a JSON body (content-type: application/json)".into(),
                Vec::new(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("cannot read body: {e}"), Vec::new()))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Query parameters; a malformed one is a 400 problem naming the parameter (axum's `Query`
/// answers text/plain, outside the documented error shape).
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut pairs: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), no_nul(&v)))
                .collect();
        // Each round may turn one whole float ("-5.0", JSON Schema's integer -5) of the field
        // serde refused into an integer; string parameters are never touched.
        for _ in 0..=pairs.len() {
            let (field, message) = match parse_query(&pairs) {
                Ok(v) => return Ok(ApiQuery(v)),
                Err(e) => e,
            };
            let mut retry = false;
            for (_, v) in pairs.iter_mut().filter(|(k, _)| *k == field) {
                if let Some(n) = whole_number(v) {
                    *v = n;
                    retry = true;
                }
            }
            if !retry {
                return Err(ApiError::BadRequest(
                    format!("invalid query parameter {field}: {message}"),
                    vec![FieldError { field, message }],
                ));
            }
        }
        Err(ApiError::field("query", "cannot be read"))
    }
}

/// The query as `T`, or the parameter serde refused and why.
fn parse_query<T: DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, (String, String)> {
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(encoded.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // A missing parameter has no path; serde names it in the message.
        let field = if path == "." {
            message
                .strip_prefix("missing field `")
                .and_then(|m| m.split('`').next())
                .unwrap_or("query")
                .to_owned()
        } else {
            path
        };
        (field, message)
    })
}

/// `"-5.0"` → `"-5"`: a number without a fractional part, written as an integer.
fn whole_number(v: &str) -> Option<String> {
    if v.parse::<i64>().is_ok() {
        return None;
    }
    whole(v.trim().parse().ok()?).map(|n| n.to_string())
}

/// A float without a fractional part as the integer it is, up to 2^53 (beyond it a float no
/// longer names one integer).
fn whole(f: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    (f.is_finite() && f.fract() == 0.0 && f.abs() <= EXACT).then_some(f as i64)
}

/// PostgreSQL text cannot hold U+0000; it becomes U+FFFD, as undecodable bytes do elsewhere,
/// instead of failing the whole request in the database.
pub(crate) fn no_nul(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// Parses a JSON body; an error is a 400 problem naming the offending field. For handlers that
/// need the raw bytes first (a signature check, an optional body).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::BadRequest(
            format!("invalid field body: {e}"),
            vec![FieldError {
                field: "body".into(),
                message: e.to_string(),
            }],
        )
    })?;
    integral_floats_to_integers(&mut value);
    strip_nul(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        let message = e.into_inner().to_string();
        ApiError::BadRequest(
            format!("invalid field {field}: {message}"),
            vec![FieldError { field, message }],
        )
    })
}

/// An optional body that was left out: nothing, whitespace or JSON `null`.
pub(crate) fn is_empty_body(body: &[u8]) -> bool {
    let trimmed = body.trim_ascii();
    trimmed.is_empty() || trimmed == b"null"
}

/// An optional JSON body: its default when left out (see [`is_empty_body`]), else parsed as
/// [`parse_json`] does.
pub(crate) fn parse_optional_json<T: DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if is_empty_body(body) {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}

/// JSON Schema's `integer` includes `3.0`; serde's integers do not. Whole floats become integers
/// so that such a value is read as the integer it is.
fn integral_floats_to_integers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(i) = n.as_f64().and_then(whole) {
                *v = Value::from(i);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// Replaces U+0000 in every string and key of a body (see [`no_nul`]).
fn strip_nul(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('\0') => *s = no_nul(s),
        Value::Array(items) => items.iter_mut().for_each(strip_nul),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (no_nul(&k), v))
                    .collect();
            }
            map.values_mut().for_each(strip_nul);
        }
        _ => {}
    }
}

/// SHA-256 of a bearer token.
type TokenHash = Vec<u8>;

/// Recently verified tokens, keyed by their hash, so that a busy client does not cost a database
/// query per request. A revoked token stops working within `ttl`.
#[derive(Clone)]
pub struct AuthCache {
    ttl: Duration,
    entries: Arc<Mutex<HashMap<TokenHash, (AuthUser, Instant)>>>,
}

impl AuthCache {
    /// Entries beyond this are dropped wholesale (a flood of distinct tokens cannot grow memory).
    const MAX_ENTRIES: usize = 10_000;

    pub fn new(ttl: Duration) -> Self {
        AuthCache {
            ttl,
            entries: Default::default(),
        }
    }

    fn get(&self, token: &str) -> Option<AuthUser> {
        let key = auth::hash_token(token);
        let entries = self.entries.lock().ok()?;
        entries
            .get(&key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(u, _)| u.clone())
    }

    /// Drops a token at once (logout): no grace period for a session that was ended.
    pub fn forget(&self, token: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&auth::hash_token(token));
        }
    }

    /// Drops every entry (a token revoked by id: its plain text is not known here).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    fn put(&self, token: &str, user: AuthUser) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(auth::hash_token(token), (user, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Page {
        limit: Option<i64>,
        q: Option<String>,
    }

    fn query(uri: &str) -> Result<Page, ApiError> {
        let (mut parts, ()) = axum::http::Request::builder()
            .uri(uri)
            .body(())
            .map(|r| r.into_parts())
            .expect("request");
        futures::executor::block_on(ApiQuery::<Page>::from_request_parts(&mut parts, &()))
            .map(|ApiQuery(p)| p)
    }

    #[test]
    fn whole_floats_are_integers_in_integer_parameters_only() {
        let p = query("/x?limit=-5.0&q=5.0").expect("accepted");
        assert_eq!(p.limit, Some(-5));
        assert_eq!(
            p.q.as_deref(),
            Some("5.0"),
            "a string parameter is left as sent"
        );
        let big = query("/x?limit=-9007199254740991.0").expect("2^53 - 1 is exact");
        assert_eq!(big.limit, Some(-9_007_199_254_740_991));
        match query("/x?limit=5.5") {
            Err(ApiError::BadRequest(_, fields)) => assert_eq!(fields[0].field, "limit"),
            other => panic!("expected a 400 naming limit, got {other:?}"),
        }
    }

    #[test]
    fn nul_becomes_the_replacement_character_in_queries_and_bodies() {
        let p = query("/x?q=a%00b").expect("accepted");
        assert_eq!(p.q.as_deref(), Some("a\u{FFFD}b"));
        let v: serde_json::Value = parse_json(br#"{"k\u0000": ["x\u0000"]}"#).expect("accepted");
        assert_eq!(v, serde_json::json!({"k\u{FFFD}": ["x\u{FFFD}"]}));
    }
}
