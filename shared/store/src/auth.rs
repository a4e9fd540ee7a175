//! Users and their Bearer API tokens (stored hashed; the plain token is shown once).

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use switchyard_domain::Role;

use crate::{Result, StoreError};

/// An authenticated caller.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthUser {
    pub id: i64,
    pub email: String,
    pub role: Role,
}

impl AuthUser {
    /// How this user appears in the audit log.
    pub fn actor(&self) -> String {
        format!("user:{}", self.id)
    }
}

/// A new random token: `sy_` and 256 bits in hex.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("sy_{}", hex::encode(bytes))
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub async fn create_user(
    conn: &mut PgConnection,
    email: &str,
    role: Role,
    first_name: &str,
    last_name: &str,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO users (email, role, first_name, last_name) VALUES ($1, $2, $3, $4)
         ON CONFLICT (email) DO UPDATE SET role = EXCLUDED.role RETURNING id",
    )
    .bind(email)
    .bind(role.as_str())
    .bind(first_name)
    .bind(last_name)
    .fetch_one(conn)
    .await?)
}

/// Issues a token for a user and returns it in plain text (the only time it exists so).
pub async fn create_token(conn: &mut PgConnection, user_id: i64, name: &str) -> Result<String> {
    let token = generate_token();
    sqlx::query("INSERT INTO api_tokens (user_id, name, token_hash) VALUES ($1, $2, $3)")
        .bind(user_id)
        .bind(name)
        .bind(hash_token(&token))
        .execute(conn)
        .await?;
    Ok(token)
}

/// Revokes a token; it stops working at once.
pub async fn revoke_token(conn: &mut PgConnection, token: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash_token(token))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A token as listed: never the token itself.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Tokens of one user, or of everyone; newest first.
pub async fn list_tokens(conn: &mut PgConnection, user_id: Option<i64>) -> Result<Vec<TokenInfo>> {
    Ok(sqlx::query_as(
        "SELECT id, user_id, name, created_at, last_used_at, revoked_at FROM api_tokens
          WHERE ($1::bigint IS NULL OR user_id = $1) ORDER BY id DESC",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

/// Revokes a token by id (of `owner` only, when given); `false` when there was no such live token.
pub async fn revoke_token_id(conn: &mut PgConnection, id: i64, owner: Option<i64>) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now()
          WHERE id = $1 AND ($2::bigint IS NULL OR user_id = $2) AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The user a credential (API token or session token) belongs to: `sql` selects
/// `id, email, role` for the token hash in `$1`.
async fn user_by_token(
    conn: &mut PgConnection,
    sql: &str,
    token: &str,
) -> Result<Option<AuthUser>> {
    let row: Option<(i64, String, String)> = sqlx::query_as(sql)
        .bind(hash_token(token))
        .fetch_optional(conn)
        .await?;
    row.map(|(id, email, role)| {
        let role = Role::parse(&role).ok_or_else(|| StoreError::invalid("role", role))?;
        Ok(AuthUser { id, email, role })
    })
    .transpose()
}

/// The user a token belongs to, if the token is known and not revoked.
pub async fn authenticate(conn: &mut PgConnection, token: &str) -> Result<Option<AuthUser>> {
    user_by_token(
        conn,
        "SELECT u.id, u.email, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
          WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        token,
    )
    .await
}

/// The user the workers' own tokens belong to (hooks, scripts calling the API).
pub const SERVICE_USER_EMAIL: &str = "service@switchyard.local";

/// On first start (no user but the service user) creates the local admin and returns its
/// token; otherwise `None`. The service user does not count: in `switchyard all` the workers may
/// create it before the API starts, and the operator would then never get a token.
/// Serialized by an advisory lock so that two API replicas create one admin.
pub async fn ensure_admin(conn: &mut PgConnection) -> Result<Option<String>> {
    sqlx::query("SELECT pg_advisory_xact_lock(7411001)")
        .execute(&mut *conn)
        .await?;
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE email <> $1)")
        .bind(SERVICE_USER_EMAIL)
        .fetch_one(&mut *conn)
        .await?;
    if any {
        return Ok(None);
    }
    let id = create_user(conn, "admin@localhost", Role::Admin, "Local", "Admin").await?;
    Ok(Some(create_token(conn, id, "local admin").await?))
}

/// Sets a user's password (argon2id, salted). Passwords shorter than 10 characters are refused.
pub async fn set_password(conn: &mut PgConnection, user_id: i64, password: &str) -> Result<()> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    if password.chars().count() < 10 {
        return Err(StoreError::invalid(
            "password",
            "needs at least 10 characters",
        ));
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| StoreError::invalid("password", e.to_string()))?
        .to_string();
    let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(user_id)
        .bind(hash)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("user {user_id}")));
    }
    Ok(())
}

/// The user whose e-mail and password match. The hash is verified even for an unknown e-mail
/// (against a fixed dummy), so the answer time does not tell which e-mails exist.
pub async fn check_password(
    conn: &mut PgConnection,
    email: &str,
    password: &str,
) -> Result<Option<AuthUser>> {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let row: Option<(i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, email, role, password_hash FROM users WHERE lower(email) = lower($1)",
    )
    .bind(email)
    .fetch_optional(conn)
    .await?;
    let stored = row
        .as_ref()
        .and_then(|r| r.3.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    let ok = PasswordHash::new(&stored)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false);
    match row {
        Some((id, email, role, Some(_))) if ok => {
            let role = Role::parse(&role).ok_or_else(|| StoreError::invalid("role", role))?;
            Ok(Some(AuthUser { id, email, role }))
        }
        _ => Ok(None),
    }
}

/// Opens a session for a user; returns the session token (for the cookie only).
pub async fn create_session(
    conn: &mut PgConnection,
    user_id: i64,
    ttl_secs: i64,
) -> Result<String> {
    let token = generate_token();
    sqlx::query(
        "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(user_id)
    .bind(hash_token(&token))
    .bind(ttl_secs as f64)
    .execute(conn)
    .await?;
    Ok(token)
}

/// The user of a live session.
pub async fn session_user(conn: &mut PgConnection, token: &str) -> Result<Option<AuthUser>> {
    user_by_token(
        conn,
        "SELECT u.id, u.email, u.role FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()",
        token,
    )
    .await
}

pub async fn revoke_session(conn: &mut PgConnection, token: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash_token(token))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A real argon2 hash of nothing anyone knows, verified against for unknown e-mails.
fn dummy_hash() -> &'static str {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2::Argon2::default()
            .hash_password(generate_token().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_deterministically() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
    }
}
