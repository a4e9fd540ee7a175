//! Event hooks, the event records the hooks service writes, and user-defined functions (UDFs).
//!
//! A webhook hook's signing secret is stored apart from its executor and never read back by the
//! API: lists show `secretSet` instead.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgConnection;
use utoipa::ToSchema;

use crate::{audit, Result, StoreError};

/// The event names a hook may subscribe to (the reference product's, product-spec 1.13).
pub const EVENT_TYPES: &[&str] = &[
    "TicketCreated",
    "TicketResponse",
    "TicketUpdated",
    "TicketRouted",
    "TicketForwarded",
    "TicketClosedDueToInactivity",
    "TicketDueByOverdue",
    "TicketDeleted",
    "NonAiTicketCreated",
    "ConversationCreated",
    "AutoProcessIntent",
    "EmailAutoresponder",
    "SendEmail",
    "SendLetter",
    "NotifySurroundingSystems",
    "TestTicketAiQuality",
    "OcrScanCompleted",
    "ProfileCreated",
    "ProfileUpdated",
    "ProfileDeleted",
    "CallStarted",
    "CallCompleted",
    "SettingChanged",
    "AiAgentChanged",
    "SurveySubmitted",
    "CronMinute",
    "CronHour",
    "CronDay",
    "CronWeek",
];

/// What runs for a hook.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookExecutorInput {
    /// `webhook` (a signed POST of `{event, data}`) or `script` (Rhai, `input` = the event data).
    #[serde(rename = "type")]
    pub kind: String,
    /// The webhook's URL (http or https).
    pub url: Option<String>,
    /// The webhook's signing secret (HMAC-SHA256); stored, never returned.
    pub secret: Option<String>,
    /// The script (Rhai).
    pub code: Option<String>,
    /// The script's language; only `rhai`.
    pub language: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookInput {
    #[schema(min_length = 1, pattern = "\\S")]
    pub name: String,
    /// Event names, e.g. `["TicketCreated", "TicketResponse"]`; absent: the hook's `name`.
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub description: String,
    #[serde(alias = "eventHookExecutor")]
    pub executor: HookExecutorInput,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct EventHook {
    pub id: i64,
    pub name: String,
    pub events: Vec<String>,
    pub description: String,
    /// `{type, url}` or `{type, language, code}`; never the secret.
    pub executor: Value,
    /// Whether a signing secret is set.
    pub secret_set: bool,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// A hook as the hooks service runs it, secret included.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HookToRun {
    pub id: i64,
    pub name: String,
    pub executor: Value,
    pub secret: Option<String>,
}

/// Checks a hook's fields; each error names its field.
pub fn validate_hook(h: &HookInput) -> Result<Vec<String>> {
    if h.name.trim().is_empty() {
        return Err(StoreError::invalid("name", "must not be empty"));
    }
    let events = if h.events.is_empty() {
        vec![h.name.trim().to_owned()]
    } else {
        h.events.clone()
    };
    for (i, e) in events.iter().enumerate() {
        if !EVENT_TYPES.contains(&e.as_str()) {
            let field = if h.events.is_empty() {
                "name".to_owned()
            } else {
                format!("events[{i}]")
            };
            return Err(StoreError::invalid(
                &field,
                format!("unknown event {e:?} (see GET /api/mind/event/getEventTypes)"),
            ));
        }
    }
    let x = &h.executor;
    match x.kind.as_str() {
        "webhook" => {
            let url = x.url.as_deref().unwrap_or_default();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(StoreError::invalid(
                    "executor.url",
                    "a webhook needs an http or https URL",
                ));
            }
        }
        "script" => {
            if x.code.as_deref().unwrap_or_default().trim().is_empty() {
                return Err(StoreError::invalid(
                    "executor.code",
                    "a script hook needs code",
                ));
            }
            if x.language.as_deref().is_some_and(|l| l != "rhai") {
                return Err(StoreError::invalid(
                    "executor.language",
                    "only rhai is available",
                ));
            }
        }
        _ => {
            return Err(StoreError::invalid(
                "executor.type",
                "must be webhook or script",
            ))
        }
    }
    Ok(events)
}

pub async fn create_hook(conn: &mut PgConnection, h: &HookInput, actor: &str) -> Result<i64> {
    let events = validate_hook(h)?;
    let x = &h.executor;
    let executor = if x.kind == "webhook" {
        json!({"type": "webhook", "url": x.url})
    } else {
        json!({"type": "script", "language": "rhai", "code": x.code})
    };
    let secret = x.secret.clone().filter(|s| !s.is_empty());
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO event_hooks (name, events, description, executor, secret, enabled, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(h.name.trim())
    .bind(&events)
    .bind(&h.description)
    .bind(&executor)
    .bind(&secret)
    .bind(h.enabled.unwrap_or(true))
    .bind(actor)
    .fetch_one(&mut *conn)
    .await?;
    audit::record(
        conn,
        actor,
        "eventHook",
        &id.to_string(),
        "created",
        &json!({"name": h.name, "events": events, "type": x.kind, "secretSet": secret.is_some()}),
    )
    .await?;
    Ok(id)
}

pub async fn list_hooks(conn: &mut PgConnection) -> Result<Vec<EventHook>> {
    Ok(sqlx::query_as(
        "SELECT id, name, events, description, executor, secret IS NOT NULL AS secret_set, enabled,
                created_by, created_at
           FROM event_hooks ORDER BY id",
    )
    .fetch_all(conn)
    .await?)
}

pub async fn delete_hook(conn: &mut PgConnection, id: i64, actor: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM event_hooks WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("event hook {id}")));
    }
    audit::record(
        conn,
        actor,
        "eventHook",
        &id.to_string(),
        "deleted",
        &json!({}),
    )
    .await
}

/// The enabled hooks subscribed to an event, oldest first.
pub async fn hooks_for(conn: &mut PgConnection, event: &str) -> Result<Vec<HookToRun>> {
    Ok(sqlx::query_as(
        "SELECT id, name, executor, secret FROM event_hooks
          WHERE enabled AND $1 = ANY(events) ORDER BY id",
    )
    .bind(event)
    .fetch_all(conn)
    .await?)
}

/// An event as recorded.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub ticket_id: Option<i64>,
    /// `open`, `processing`, `closed` (every hook succeeded) or `error` (one failed).
    pub status: String,
    pub data: Value,
    pub outcome: Option<Value>,
    /// One entry per hook: `{hookId, name, type, status: success|failed, result|error,
    /// durationMs, attempts?, logs?}`.
    pub hook_outcome: Value,
    pub created_at: DateTime<Utc>,
    /// Milliseconds the hooks took.
    #[serde(rename = "duration")]
    pub duration_ms: Option<i64>,
}

/// Records an event (status `processing`) or finds it again on a redelivery. `None`: it was
/// finished before, nothing to do.
pub async fn begin_record(
    conn: &mut PgConnection,
    source_key: &str,
    kind: &str,
    ticket_id: Option<i64>,
    data: &Value,
) -> Result<Option<i64>> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "INSERT INTO event_records (source_key, type, ticket_id, data, status)
         VALUES ($1, $2, $3, $4, 'processing')
         ON CONFLICT (source_key) DO UPDATE SET source_key = EXCLUDED.source_key
         RETURNING id, status",
    )
    .bind(source_key)
    .bind(kind)
    .bind(ticket_id)
    .bind(data)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(|(id, status)| (status == "processing" || status == "open").then_some(id)))
}

/// Stores the hooks' outcomes and closes the record.
pub async fn finish_record(
    conn: &mut PgConnection,
    id: i64,
    failed: bool,
    hook_outcome: &Value,
    duration_ms: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE event_records SET status = $2, hook_outcome = $3, duration_ms = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(if failed { "error" } else { "closed" })
    .bind(hook_outcome)
    .bind(duration_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Newest first; `(page, total)`.
pub async fn search_events(
    conn: &mut PgConnection,
    kind: Option<&str>,
    ticket_id: Option<i64>,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<EventRecord>, i64)> {
    let filter = "($1::text IS NULL OR type = $1) AND ($2::bigint IS NULL OR ticket_id = $2)
                  AND ($3::text IS NULL OR status = $3)";
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM event_records WHERE {filter}"
    ))
    .bind(kind)
    .bind(ticket_id)
    .bind(status)
    .fetch_one(&mut *conn)
    .await?;
    let rows = sqlx::query_as(&format!(
        "SELECT id, type AS kind, ticket_id, status, data, outcome, hook_outcome, created_at,
                duration_ms
           FROM event_records WHERE {filter} ORDER BY id DESC LIMIT $4 OFFSET $5"
    ))
    .bind(kind)
    .bind(ticket_id)
    .bind(status)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?;
    Ok((rows, total))
}

/// A user-defined function as created over the API.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UdfInput {
    /// Letters, digits, `_` and `-`, starting with a letter; unique. Called by this name.
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
    pub name: String,
    /// `udf` (default) or `tool` (offered to smart agents).
    #[serde(alias = "type")]
    #[schema(schema_with = udf_type_schema)]
    pub udf_type: Option<String>,
    #[serde(default)]
    pub description: String,
    /// The parameters it expects (free form, e.g. `[{"name": "contractId", "type": "int"}]`).
    pub parameters: Option<Value>,
    /// Only admins may run it (default true).
    pub is_private: Option<bool>,
    /// `{udfExecutor: {type: "sourceCode", language: "rhai", code}}`.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Udf {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub udf_type: String,
    pub description: String,
    pub parameters: Value,
    pub is_private: bool,
    pub data: Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl Udf {
    /// The Rhai code of its executor (`data.udfExecutor.code`).
    pub fn code(&self) -> Option<&str> {
        self.data
            .pointer("/udfExecutor/code")
            .and_then(Value::as_str)
            .filter(|c| !c.trim().is_empty())
    }
}

fn udf_type_schema() -> utoipa::openapi::Object {
    switchyard_domain::schema::optional_string_enum(&["udf", "tool"])
}

fn valid_udf_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub async fn create_udf(conn: &mut PgConnection, u: &UdfInput, actor: &str) -> Result<i64> {
    if !valid_udf_name(&u.name) {
        return Err(StoreError::invalid(
            "name",
            "letters, digits, _ and -, starting with a letter, at most 64",
        ));
    }
    let udf_type = u.udf_type.clone().unwrap_or_else(|| "udf".into());
    if !["udf", "tool"].contains(&udf_type.as_str()) {
        return Err(StoreError::invalid("udfType", "must be udf or tool"));
    }
    let data = u.data.clone().unwrap_or_else(|| json!({}));
    if !data.is_object() {
        return Err(StoreError::invalid("data", "must be an object"));
    }
    if let Some(lang) = data
        .pointer("/udfExecutor/language")
        .and_then(Value::as_str)
    {
        if lang != "rhai" {
            return Err(StoreError::invalid(
                "data.udfExecutor.language",
                "only rhai is available",
            ));
        }
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO user_defined_functions
                (name, slug, udf_type, description, parameters, is_private, data, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(&u.name)
    .bind(u.name.to_lowercase().replace('_', "-"))
    .bind(&udf_type)
    .bind(&u.description)
    .bind(u.parameters.clone().unwrap_or_else(|| json!([])))
    .bind(u.is_private.unwrap_or(true))
    .bind(&data)
    .bind(actor)
    .fetch_one(&mut *conn)
    .await?;
    audit::record(
        conn,
        actor,
        "userDefinedFunction",
        &id.to_string(),
        "created",
        &json!({"name": u.name, "udfType": udf_type}),
    )
    .await?;
    Ok(id)
}

const UDF_COLUMNS: &str = "id, name, slug, udf_type, description, parameters, is_private, data,
                           created_by, created_at";

pub async fn list_udfs(conn: &mut PgConnection, udf_type: Option<&str>) -> Result<Vec<Udf>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {UDF_COLUMNS} FROM user_defined_functions
          WHERE $1::text IS NULL OR udf_type = $1 ORDER BY id"
    ))
    .bind(udf_type)
    .fetch_all(conn)
    .await?)
}

pub async fn udf_by_name(conn: &mut PgConnection, name: &str) -> Result<Option<Udf>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {UDF_COLUMNS} FROM user_defined_functions WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await?)
}

pub async fn delete_udf(conn: &mut PgConnection, id: i64, actor: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM user_defined_functions WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("user-defined function {id}")));
    }
    audit::record(
        conn,
        actor,
        "userDefinedFunction",
        &id.to_string(),
        "deleted",
        &json!({}),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(events: &[&str], executor: Value) -> HookInput {
        serde_json::from_value(json!({"name": "h", "events": events, "executor": executor}))
            .expect("hook input")
    }

    #[test]
    fn unknown_events_and_bad_executors_name_their_field() {
        let e = validate_hook(&hook(
            &["TicketCreated", "TicketExploded"],
            json!({"type": "script", "code": "1"}),
        ))
        .expect_err("unknown event");
        assert!(matches!(e, StoreError::Invalid { ref field, .. } if field == "events[1]"));
        let e = validate_hook(&hook(
            &["TicketCreated"],
            json!({"type": "webhook", "url": "ftp://x"}),
        ))
        .expect_err("bad url");
        assert!(matches!(e, StoreError::Invalid { ref field, .. } if field == "executor.url"));
        assert_eq!(
            validate_hook(&hook(
                &["TicketCreated", "TicketResponse"],
                json!({"type": "webhook", "url": "https://example.org/h", "secret": "s"})
            ))
            .expect("valid"),
            vec!["TicketCreated", "TicketResponse"]
        );
        assert!(valid_udf_name("getBalance_2"));
        assert!(!valid_udf_name("../x"));
    }
}
