//! Stage markers: one row per (stage, input, test run), written with the stage's results in the
//! stage's own transaction, so that a redelivered message finds its work done and has no second
//! effect.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;

use crate::Result;

/// Identifies one piece of work of one stage.
#[derive(Debug, Clone)]
pub struct MarkerKey<'a> {
    pub stage: &'a str,
    pub input_key: &'a str,
    /// Empty outside AI quality check runs.
    pub test_run_key: &'a str,
}

/// Locks the ticket's row for the rest of the transaction and tells its status and whether this
/// work is already recorded, in one round trip. Under the row lock a concurrent duplicate of the
/// same message waits for the first delivery to commit, then sees its marker.
pub async fn lock_ticket_and_check(
    conn: &mut PgConnection,
    ticket_id: i64,
    key: &MarkerKey<'_>,
) -> Result<Option<(String, bool)>> {
    Ok(sqlx::query_as(
        "SELECT t.status, EXISTS (SELECT 1 FROM stage_runs r
                                   WHERE r.stage = $2 AND r.input_key = $3 AND r.test_run_key = $4)
           FROM tickets t WHERE t.id = $1 FOR UPDATE OF t",
    )
    .bind(ticket_id)
    .bind(key.stage)
    .bind(key.input_key)
    .bind(key.test_run_key)
    .fetch_optional(conn)
    .await?)
}

/// Whether this work is already recorded (for inputs without a ticket yet, i.e. ingest).
pub async fn exists(conn: &mut PgConnection, key: &MarkerKey<'_>) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM stage_runs WHERE stage = $1 AND input_key = $2 AND test_run_key = $3)",
    )
    .bind(key.stage)
    .bind(key.input_key)
    .bind(key.test_run_key)
    .fetch_one(conn)
    .await?)
}

/// What a finished stage leaves on its marker.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub ticket_id: Option<i64>,
    pub message_id: Option<i64>,
    pub replica: String,
    pub trace_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub outcome: Value,
    pub next_envelope: Option<Value>,
    pub events: Value,
    pub recorded_effects: Option<Value>,
}

/// Writes the marker with the stage's results, in the stage's transaction. `None` when another
/// delivery recorded the same work first (the caller rolls back and hands on that one's result).
pub async fn insert_completed(
    conn: &mut PgConnection,
    key: &MarkerKey<'_>,
    c: &Completion,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO stage_runs (stage, input_key, test_run_key, ticket_id, message_id, replica, trace_id,
                started_at, outcome, next_envelope, events, recorded_effects)
         VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, clock_timestamp()), $9, $10, $11, $12)
         ON CONFLICT (stage, input_key, test_run_key) DO NOTHING
         RETURNING id",
    )
    .bind(key.stage)
    .bind(key.input_key)
    .bind(key.test_run_key)
    .bind(c.ticket_id)
    .bind(c.message_id)
    .bind(&c.replica)
    .bind(&c.trace_id)
    .bind(c.started_at)
    .bind(&c.outcome)
    .bind(&c.next_envelope)
    .bind(&c.events)
    .bind(&c.recorded_effects)
    .fetch_optional(conn)
    .await?)
}

/// A finished stage, as the activity timeline shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StageRun {
    pub id: i64,
    pub stage: String,
    pub ticket_id: Option<i64>,
    pub message_id: Option<i64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub test_run_key: String,
    pub replica: String,
    pub trace_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: Value,
    #[serde(skip)]
    pub next_envelope: Option<Value>,
    #[serde(skip)]
    pub events: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_effects: Option<Value>,
}

const COLUMNS: &str =
    "id, stage, ticket_id, message_id, test_run_key, replica, trace_id, started_at,
    finished_at, outcome, next_envelope, events, recorded_effects";

pub async fn find(conn: &mut PgConnection, key: &MarkerKey<'_>) -> Result<Option<StageRun>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM stage_runs WHERE stage = $1 AND input_key = $2 AND test_run_key = $3"
    ))
    .bind(key.stage)
    .bind(key.input_key)
    .bind(key.test_run_key)
    .fetch_optional(conn)
    .await?)
}

/// The ticket's timeline of real (not test-run) stage work, oldest first.
pub async fn for_ticket(conn: &mut PgConnection, ticket_id: i64) -> Result<Vec<StageRun>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM stage_runs WHERE ticket_id = $1 AND test_run_key = ''
          ORDER BY finished_at, id"
    ))
    .bind(ticket_id)
    .fetch_all(conn)
    .await?)
}
