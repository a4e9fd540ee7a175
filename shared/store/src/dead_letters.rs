//! Dead letters: messages a stage gave up on. Postgres keeps them (the `DLQ` stream has a copy
//! for subscribers) until an operator replays them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone)]
pub struct NewDeadLetter<'a> {
    pub stage: &'a str,
    pub subject: &'a str,
    pub msg_id: Option<&'a str>,
    pub payload: &'a [u8],
    pub error: &'a str,
    pub deliveries: i64,
    pub stream_sequence: Option<i64>,
    pub ticket_id: Option<i64>,
}

/// Stores a dead letter; the same stream message dead-lettered twice (a crash between storing
/// and acknowledging) is stored once. Returns its id.
pub async fn insert(conn: &mut PgConnection, d: &NewDeadLetter<'_>) -> Result<i64> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO dead_letters (stage, subject, msg_id, payload, error, deliveries, stream_sequence, ticket_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (stage, stream_sequence) DO NOTHING RETURNING id",
    )
    .bind(d.stage)
    .bind(d.subject)
    .bind(d.msg_id)
    .bind(d.payload)
    .bind(d.error)
    .bind(d.deliveries)
    .bind(d.stream_sequence)
    .bind(d.ticket_id)
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        Some(id) => Ok(id),
        None => Ok(sqlx::query_scalar(
            "SELECT id FROM dead_letters WHERE stage = $1 AND stream_sequence = $2",
        )
        .bind(d.stage)
        .bind(d.stream_sequence)
        .fetch_one(conn)
        .await?),
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub id: i64,
    pub stage: String,
    pub subject: String,
    pub msg_id: Option<String>,
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub error: String,
    pub deliveries: i64,
    pub ticket_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub replay_count: i32,
    pub replayed_at: Option<DateTime<Utc>>,
    pub replayed_by: Option<String>,
}

const COLUMNS: &str =
    "id, stage, subject, msg_id, payload, error, deliveries, ticket_id, created_at,
    replay_count, replayed_at, replayed_by";

/// A page of dead letters, newest first; `open_only` hides replayed ones.
pub async fn list(
    conn: &mut PgConnection,
    stage: Option<&str>,
    open_only: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DeadLetter>, i64)> {
    let filter = "($1::text IS NULL OR stage = $1) AND (NOT $2 OR replayed_at IS NULL)";
    let total: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM dead_letters WHERE {filter}"))
            .bind(stage)
            .bind(open_only)
            .fetch_one(&mut *conn)
            .await?;
    let rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM dead_letters WHERE {filter} ORDER BY id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(stage)
    .bind(open_only)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?;
    Ok((rows, total))
}

pub async fn get_for_update(conn: &mut PgConnection, id: i64) -> Result<DeadLetter> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM dead_letters WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("dead letter {id}")))
}

pub async fn mark_replayed(conn: &mut PgConnection, id: i64, by: &str) -> Result<()> {
    sqlx::query(
        "UPDATE dead_letters SET replay_count = replay_count + 1, replayed_at = now(), replayed_by = $2
          WHERE id = $1",
    )
    .bind(id)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}
