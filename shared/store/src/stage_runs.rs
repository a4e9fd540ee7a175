//! Stage markers: one row per (stage, input, test run), written in the stage's own transaction so
//! that a redelivered message finds its work done and has no second effect.

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

/// Claims the marker inside the caller's transaction. `None`: another delivery already did (or is
/// doing) this work; a concurrent duplicate waits here until the first one commits.
pub async fn claim(
    conn: &mut PgConnection,
    key: &MarkerKey<'_>,
    replica: &str,
    trace_id: Option<&str>,
    started_at: DateTime<Utc>,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO stage_runs (stage, input_key, test_run_key, replica, trace_id, started_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (stage, input_key, test_run_key) DO NOTHING
         RETURNING id",
    )
    .bind(key.stage)
    .bind(key.input_key)
    .bind(key.test_run_key)
    .bind(replica)
    .bind(trace_id)
    .bind(started_at)
    .fetch_optional(conn)
    .await?)
}

/// What a finished stage leaves on its marker.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub ticket_id: Option<i64>,
    pub message_id: Option<i64>,
    pub outcome: Value,
    pub next_envelope: Option<Value>,
    pub events: Value,
    pub recorded_effects: Option<Value>,
}

pub async fn complete(conn: &mut PgConnection, marker_id: i64, c: &Completion) -> Result<()> {
    sqlx::query(
        "UPDATE stage_runs SET ticket_id = $2, message_id = $3, outcome = $4, next_envelope = $5,
                recorded_effects = $6, events = $7, finished_at = clock_timestamp()
          WHERE id = $1",
    )
    .bind(marker_id)
    .bind(c.ticket_id)
    .bind(c.message_id)
    .bind(&c.outcome)
    .bind(&c.next_envelope)
    .bind(&c.recorded_effects)
    .bind(&c.events)
    .execute(conn)
    .await?;
    Ok(())
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
