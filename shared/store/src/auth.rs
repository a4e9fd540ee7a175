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

/// The user a token belongs to, if the token is known and not revoked.
pub async fn authenticate(conn: &mut PgConnection, token: &str) -> Result<Option<AuthUser>> {
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT u.id, u.email, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
          WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
    )
    .bind(hash_token(token))
    .fetch_optional(conn)
    .await?;
    row.map(|(id, email, role)| {
        let role = Role::parse(&role).ok_or_else(|| StoreError::invalid("role", role))?;
        Ok(AuthUser { id, email, role })
    })
    .transpose()
}

/// On first start (no user at all) creates the local admin and returns its token; otherwise
/// `None`. Serialized by an advisory lock so that two API replicas create one admin.
pub async fn ensure_admin(conn: &mut PgConnection) -> Result<Option<String>> {
    sqlx::query("SELECT pg_advisory_xact_lock(7411001)")
        .execute(&mut *conn)
        .await?;
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(&mut *conn)
        .await?;
    if any {
        return Ok(None);
    }
    let id = create_user(conn, "admin@localhost", Role::Admin, "Local", "Admin").await?;
    Ok(Some(create_token(conn, id, "local admin").await?))
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
