//! The audit log: every change, with who made it (a user or a service replica).

use serde_json::Value;
use sqlx::PgConnection;

use crate::Result;

/// Who changed something: `user:<id>` or `service:<stage>@<replica>`.
pub type Actor<'a> = &'a str;

pub async fn record(
    conn: &mut PgConnection,
    actor: Actor<'_>,
    entity: &str,
    entity_id: &str,
    action: &str,
    changes: &Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (actor, entity, entity_id, action, changes) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(actor)
    .bind(entity)
    .bind(entity_id)
    .bind(action)
    .bind(changes)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub action: String,
    pub changes: Value,
}

pub async fn for_entity(
    conn: &mut PgConnection,
    entity: &str,
    entity_id: &str,
) -> Result<Vec<AuditEntry>> {
    Ok(sqlx::query_as(
        "SELECT at, actor, action, changes FROM audit_log WHERE entity = $1 AND entity_id = $2 ORDER BY at, id",
    )
    .bind(entity)
    .bind(entity_id)
    .fetch_all(conn)
    .await?)
}
