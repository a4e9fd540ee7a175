//! Pending OAuth authorizations (connecting an M365 mailbox subchannel) and the tokens they yield.
//! The callback carries nothing but `state`, so a state is random, stored hashed, single-use and
//! expires after a few minutes.

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::{audit, Result, StoreError};

/// What the callback needs from the authorization that started it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub provider: String,
    pub subchannel_id: i64,
    pub user_id: Option<i64>,
    pub redirect_uri: String,
    pub code_verifier: String,
}

fn random_urlsafe() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    // RFC 7636 verifiers are 43..128 characters of [A-Za-z0-9-._~]; hex qualifies.
    hex::encode(bytes)
}

/// Starts an authorization for an e-mail subchannel; returns `(state, code_verifier)`.
pub async fn begin(
    conn: &mut PgConnection,
    provider: &str,
    subchannel_id: i64,
    user_id: i64,
    redirect_uri: &str,
    ttl_seconds: i64,
) -> Result<(String, String)> {
    let channel: Option<String> =
        sqlx::query_scalar("SELECT channel FROM subchannels WHERE id = $1")
            .bind(subchannel_id)
            .fetch_optional(&mut *conn)
            .await?;
    match channel.as_deref() {
        None => return Err(StoreError::NotFound(format!("subchannel {subchannel_id}"))),
        Some("email") => {}
        Some(_) => {
            return Err(StoreError::invalid(
                "subchannelId",
                "must be an email subchannel",
            ))
        }
    }
    sqlx::query("DELETE FROM oauth_states WHERE expires_at < now()")
        .execute(&mut *conn)
        .await?;
    let state = random_urlsafe();
    let verifier = random_urlsafe();
    sqlx::query(
        "INSERT INTO oauth_states (state_hash, provider, subchannel_id, user_id, redirect_uri, code_verifier, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7::double precision))",
    )
    .bind(Sha256::digest(state.as_bytes()).to_vec())
    .bind(provider)
    .bind(subchannel_id)
    .bind(user_id)
    .bind(redirect_uri)
    .bind(&verifier)
    .bind(ttl_seconds as f64)
    .execute(&mut *conn)
    .await?;
    Ok((state, verifier))
}

/// Takes a pending authorization by its state: `None` when unknown, used or expired.
pub async fn consume(conn: &mut PgConnection, state: &str) -> Result<Option<Pending>> {
    Ok(sqlx::query_as(
        "DELETE FROM oauth_states WHERE state_hash = $1
         RETURNING provider, subchannel_id, user_id, redirect_uri, code_verifier,
                   expires_at > now() AS fresh",
    )
    .bind(Sha256::digest(state.as_bytes()).to_vec())
    .fetch_optional(conn)
    .await?
    .and_then(|row: PendingRow| row.fresh.then_some(row.pending)))
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    #[sqlx(flatten)]
    pending: Pending,
    fresh: bool,
}

/// Tokens of a connected mailbox.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// The mailbox account, when the provider named it (the id token's `preferred_username`).
    pub account: Option<String>,
}

/// Stores tokens on the subchannel: the tokens with its secrets (never returned by reads), the
/// fact of the connection in its data. A (re)connection clears a refresh failure recorded by
/// [`mark_broken`], and counts as a change of the subchannel, so the connectors pick it up.
pub async fn store_tokens(
    conn: &mut PgConnection,
    subchannel_id: i64,
    provider: &str,
    tokens: &Tokens,
    actor: &str,
) -> Result<()> {
    let mut secrets = json!({
        "oauthAccessToken": tokens.access_token,
        "oauthTokenExpiresAt": tokens.expires_at.to_rfc3339(),
    });
    if let Some(r) = &tokens.refresh_token {
        secrets["oauthRefreshToken"] = Value::String(r.clone());
    }
    let mut data = json!({
        "authType": "oauth2",
        "oauthProvider": provider,
        "oauthConnectedAt": Utc::now().to_rfc3339(),
    });
    if let Some(a) = &tokens.account {
        data["oauthAccount"] = Value::String(a.clone());
    }
    let done = sqlx::query(
        "UPDATE subchannels
            SET secrets = secrets || $2,
                data = (data - 'oauthError' - 'oauthErrorAt') || $3,
                modified_at = now()
          WHERE id = $1",
    )
    .bind(subchannel_id)
    .bind(&secrets)
    .bind(&data)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("subchannel {subchannel_id}")));
    }
    audit::record(
        conn,
        actor,
        "subchannel",
        &subchannel_id.to_string(),
        "oauthConnected",
        &json!({"provider": provider, "account": tokens.account}),
    )
    .await
}

/// The OAuth state of a subchannel, as the connectors and outbound need it. `Debug` never shows a
/// token.
#[derive(Clone, Default)]
pub struct Stored {
    pub provider: Option<String>,
    pub account: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Why the tokens can no longer be refreshed (set by [`mark_broken`]); a person must connect
    /// the mailbox again.
    pub error: Option<String>,
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("provider", &self.provider)
            .field("account", &self.account)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .field("error", &self.error)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct StoredRow {
    provider: Option<String>,
    account: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_at: Option<String>,
    error: Option<String>,
}

const STORED: &str = "SELECT data->>'oauthProvider' AS provider, data->>'oauthAccount' AS account,
        secrets->>'oauthAccessToken' AS access_token, secrets->>'oauthRefreshToken' AS refresh_token,
        secrets->>'oauthTokenExpiresAt' AS expires_at, data->>'oauthError' AS error
   FROM subchannels WHERE id = $1";

fn stored(row: Option<StoredRow>) -> Option<Stored> {
    row.map(|r| Stored {
        provider: r.provider,
        account: r.account,
        access_token: r.access_token.filter(|t| !t.is_empty()),
        refresh_token: r.refresh_token.filter(|t| !t.is_empty()),
        // An unreadable expiry counts as expired: the token is refreshed rather than trusted.
        expires_at: r
            .expires_at
            .and_then(|e| DateTime::parse_from_rfc3339(&e).ok())
            .map(|e| e.with_timezone(&Utc)),
        error: r.error.filter(|e| !e.is_empty()),
    })
}

/// The subchannel's OAuth state; `None` when the subchannel does not exist.
pub async fn tokens(conn: &mut PgConnection, subchannel_id: i64) -> Result<Option<Stored>> {
    let row = sqlx::query_as(STORED)
        .bind(subchannel_id)
        .fetch_optional(conn)
        .await?;
    Ok(stored(row))
}

/// As [`tokens`], locking the subchannel's row until the transaction ends: whoever refreshes
/// holds it, so two replicas never spend the same (single-use, rotating) refresh token.
pub async fn lock_tokens(conn: &mut PgConnection, subchannel_id: i64) -> Result<Option<Stored>> {
    let row = sqlx::query_as(&format!("{STORED} FOR UPDATE"))
        .bind(subchannel_id)
        .fetch_optional(conn)
        .await?;
    Ok(stored(row))
}

/// Stores refreshed tokens; the refresh token is kept when the provider did not rotate it.
/// Routine, so neither audited nor a change of the subchannel's settings.
pub async fn store_refreshed(
    conn: &mut PgConnection,
    subchannel_id: i64,
    tokens: &Tokens,
) -> Result<()> {
    let mut secrets = json!({
        "oauthAccessToken": tokens.access_token,
        "oauthTokenExpiresAt": tokens.expires_at.to_rfc3339(),
    });
    if let Some(r) = &tokens.refresh_token {
        secrets["oauthRefreshToken"] = Value::String(r.clone());
    }
    let done = sqlx::query(
        "UPDATE subchannels
            SET secrets = secrets || $2,
                data = data || jsonb_build_object('oauthRefreshedAt', $3::text)
          WHERE id = $1",
    )
    .bind(subchannel_id)
    .bind(&secrets)
    .bind(Utc::now().to_rfc3339())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("subchannel {subchannel_id}")));
    }
    Ok(())
}

/// Records that the subchannel's tokens can no longer be refreshed (the refresh token was
/// revoked or expired): `data.oauthError` says why, until the mailbox is connected again. The
/// connectors stop polling it and outbound refuses to send through it meanwhile.
pub async fn mark_broken(
    conn: &mut PgConnection,
    subchannel_id: i64,
    reason: &str,
    actor: &str,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE subchannels
            SET data = data || jsonb_build_object('oauthError', $2::text, 'oauthErrorAt', $3::text),
                modified_at = now()
          WHERE id = $1",
    )
    .bind(subchannel_id)
    .bind(reason)
    .bind(Utc::now().to_rfc3339())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("subchannel {subchannel_id}")));
    }
    audit::record(
        conn,
        actor,
        "subchannel",
        &subchannel_id.to_string(),
        "oauthRefreshFailed",
        &json!({"reason": reason}),
    )
    .await
}
