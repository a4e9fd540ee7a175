//! Subchannels (mailboxes, chat channels, phone lines). Secrets in a subchannel's data are split
//! off when stored and never returned: reads show which secrets are set, not their values.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use utoipa::ToSchema;

use crate::{audit, Result, StoreError};

/// Keys of `data` that hold credentials.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_lowercase();
    [
        "password",
        "secret",
        "token",
        "apikey",
        "api_key",
        "credential",
    ]
    .iter()
    .any(|s| k.contains(s))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubchannelInput {
    #[schema(pattern = "^(email|portal|phone|letter|system|chat|walkIn)$")]
    pub channel: String,
    #[schema(min_length = 1, pattern = "\\S")]
    pub name: String,
    #[serde(default)]
    pub is_default: bool,
    #[schema(pattern = "^(internal|Freshdesk|webhook|api)$")]
    pub interface: Option<String>,
    pub enabled: Option<bool>,
    /// Channel-specific settings, e.g. IMAP host, port, user, password, folder.
    #[serde(default)]
    pub data: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Subchannel {
    pub id: i64,
    pub channel: String,
    pub name: String,
    pub is_default: bool,
    pub interface: String,
    pub enabled: bool,
    /// Without secrets; see `secretsSet`.
    pub data: Value,
    /// Which secret keys have a value (never the values).
    #[sqlx(default)]
    pub secrets_set: Vec<String>,
}

pub async fn create(conn: &mut PgConnection, s: &SubchannelInput, actor: &str) -> Result<i64> {
    if switchyard_domain::Channel::parse(&s.channel).is_none() {
        return Err(StoreError::invalid("channel", "unknown channel"));
    }
    if s.name.trim().is_empty() {
        return Err(StoreError::invalid("name", "must not be empty"));
    }
    let interface = s.interface.clone().unwrap_or_else(|| "internal".into());
    if !["internal", "Freshdesk", "webhook", "api"].contains(&interface.as_str()) {
        return Err(StoreError::invalid(
            "interface",
            "must be internal, Freshdesk, webhook or api",
        ));
    }
    let (secrets, public): (Map<String, Value>, Map<String, Value>) = s
        .data
        .clone()
        .into_iter()
        .partition(|(k, _)| is_secret_key(k));
    if s.is_default {
        sqlx::query("UPDATE subchannels SET is_default = false WHERE channel = $1 AND is_default")
            .bind(&s.channel)
            .execute(&mut *conn)
            .await?;
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO subchannels (channel, name, is_default, interface, enabled, data, secrets)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&s.channel)
    .bind(s.name.trim())
    .bind(s.is_default)
    .bind(&interface)
    .bind(s.enabled.unwrap_or(true))
    .bind(Value::Object(public))
    .bind(Value::Object(secrets.clone()))
    .fetch_one(&mut *conn)
    .await?;
    let keys: Vec<&String> = secrets.keys().collect();
    audit::record(
        conn,
        actor,
        "subchannel",
        &id.to_string(),
        "created",
        &json!({"channel": s.channel, "name": s.name, "secretsSet": keys}),
    )
    .await?;
    Ok(id)
}

pub async fn list(
    conn: &mut PgConnection,
    channels: &[String],
    id: Option<i64>,
) -> Result<Vec<Subchannel>> {
    Ok(sqlx::query_as(
        "SELECT id, channel, name, is_default, interface, enabled, data,
                ARRAY(SELECT jsonb_object_keys(secrets) ORDER BY 1) AS secrets_set
           FROM subchannels
          WHERE (cardinality($1::text[]) = 0 OR channel = ANY($1)) AND ($2::bigint IS NULL OR id = $2)
          ORDER BY id",
    )
    .bind(channels)
    .bind(id)
    .fetch_all(conn)
    .await?)
}

pub async fn delete(conn: &mut PgConnection, id: i64, actor: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM subchannels WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("subchannel {id}")));
    }
    audit::record(
        conn,
        actor,
        "subchannel",
        &id.to_string(),
        "deleted",
        &json!({}),
    )
    .await
}

/// A chat subchannel's signing secret (`data.signingSecret` when it was created), if it is an
/// enabled chat subchannel.
pub async fn chat_signing_secret(conn: &mut PgConnection, id: i64) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT secrets->>'signingSecret' FROM subchannels WHERE id = $1 AND channel = 'chat' AND enabled",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_recognised_by_name() {
        for k in [
            "password",
            "smtpPassword",
            "signingSecret",
            "accessToken",
            "apiKey",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["host", "port", "user", "folder", "tls"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}
