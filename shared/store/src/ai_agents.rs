//! AI agents: stored whole as their JSON definition (the shape clients send and read), with the
//! slug and name beside it for look-ups. Every change is audited.

use serde_json::{json, Value};
use sqlx::PgConnection;
use switchyard_domain::AiAgent;

use crate::audit::{self, Actor};
use crate::{Result, StoreError};

/// The agent as the API shows it: the definition plus id and timestamps.
const AGENT_JSON: &str = "a.definition || jsonb_build_object('id', a.id, 'active', a.active,
        'createdAt', to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
        'modifiedAt', to_char(a.modified_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
        'modifiedBy', a.modified_by)";

fn definition(agent: &AiAgent) -> Result<Value> {
    let mut v =
        serde_json::to_value(agent).map_err(|e| StoreError::invalid("aiAgent", e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("active");
    }
    Ok(v)
}

/// Agents matching the filters, by name, and how many match in all.
pub async fn list(
    conn: &mut PgConnection,
    q: Option<&str>,
    channel: Option<&str>,
    intelligence: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Value>, i64)> {
    let filter = "a.deleted_at IS NULL
        AND ($1::text IS NULL OR a.name ILIKE '%' || $1 || '%' OR a.slug ILIKE '%' || $1 || '%'
             OR a.definition->>'description' ILIKE '%' || $1 || '%')
        AND ($2::text IS NULL OR a.definition->'channels' ? 'all' OR a.definition->'channels' ? $2)
        AND ($3::text IS NULL OR a.definition->>'intelligence' = $3)";
    let total: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM ai_agents a WHERE {filter}"))
            .bind(q)
            .bind(channel)
            .bind(intelligence)
            .fetch_one(&mut *conn)
            .await?;
    let rows = sqlx::query_scalar(&format!(
        "SELECT {AGENT_JSON} FROM ai_agents a WHERE {filter} ORDER BY a.name, a.id LIMIT $4 OFFSET $5"
    ))
    .bind(q)
    .bind(channel)
    .bind(intelligence)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?;
    Ok((rows, total))
}

pub async fn get(conn: &mut PgConnection, id: i64) -> Result<Option<Value>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT {AGENT_JSON} FROM ai_agents a WHERE a.id = $1 AND a.deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The typed agent, for code that acts on it.
pub async fn get_typed(conn: &mut PgConnection, id: i64) -> Result<Option<AiAgent>> {
    get(conn, id).await?.map(parse).transpose()
}

fn parse(v: Value) -> Result<AiAgent> {
    serde_json::from_value(v).map_err(|e| StoreError::invalid("aiAgent", e.to_string()))
}

/// Every agent that is not deleted (active or not), for the ai worker's detector.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<AiAgent>> {
    let rows: Vec<Value> = sqlx::query_scalar(&format!(
        "SELECT {AGENT_JSON} FROM ai_agents a WHERE a.deleted_at IS NULL ORDER BY a.id"
    ))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(parse).collect()
}

/// Creates an agent; a slug already in use is a conflict (unique index).
pub async fn create(conn: &mut PgConnection, agent: &AiAgent, actor: Actor<'_>) -> Result<Value> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO ai_agents (slug, name, definition, active, modified_by)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&agent.slug)
    .bind(&agent.name)
    .bind(definition(agent)?)
    .bind(agent.active)
    .bind(actor)
    .fetch_one(&mut *conn)
    .await?;
    audit::record(
        conn,
        actor,
        "aiAgent",
        &id.to_string(),
        "create",
        &json!({"slug": agent.slug}),
    )
    .await?;
    get(conn, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("aiAgent {id}")))
}

/// Replaces an agent's definition (the caller merged the patch and validated the result).
pub async fn replace(
    conn: &mut PgConnection,
    id: i64,
    agent: &AiAgent,
    actor: Actor<'_>,
    changes: &Value,
) -> Result<Value> {
    let updated = sqlx::query(
        "UPDATE ai_agents SET slug = $2, name = $3, definition = $4, active = $5, modified_by = $6,
                modified_at = now()
          WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(&agent.slug)
    .bind(&agent.name)
    .bind(definition(agent)?)
    .bind(agent.active)
    .bind(actor)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("aiAgent {id}")));
    }
    audit::record(conn, actor, "aiAgent", &id.to_string(), "update", changes).await?;
    get(conn, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("aiAgent {id}")))
}

/// Soft delete: detected intents on old tickets keep their agent.
pub async fn delete(conn: &mut PgConnection, id: i64, actor: Actor<'_>) -> Result<bool> {
    let deleted = sqlx::query(
        "UPDATE ai_agents SET deleted_at = now(), modified_by = $2 WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(actor)
    .execute(&mut *conn)
    .await?;
    if deleted.rows_affected() > 0 {
        audit::record(
            conn,
            actor,
            "aiAgent",
            &id.to_string(),
            "delete",
            &json!({}),
        )
        .await?;
    }
    Ok(deleted.rows_affected() > 0)
}

/// Creates the agent, or overwrites the one with the same slug (loading defaults).
pub async fn upsert_by_slug(
    conn: &mut PgConnection,
    agent: &AiAgent,
    actor: Actor<'_>,
) -> Result<Value> {
    let existing: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM ai_agents WHERE slug = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(&agent.slug)
    .fetch_optional(&mut *conn)
    .await?;
    match existing {
        Some(id) => {
            replace(
                conn,
                id,
                agent,
                actor,
                &json!({"loadedDefault": agent.slug}),
            )
            .await
        }
        None => create(conn, agent, actor).await,
    }
}

/// Merges `patch` into `target` as the reference product does: objects deep, arrays replaced.
pub fn deep_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                deep_merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_deep_for_objects_and_replaces_arrays() {
        let mut t = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        deep_merge(&mut t, &json!({"a": {"c": [3]}, "e": true}));
        assert_eq!(t, json!({"a": {"b": 1, "c": [3]}, "d": 1, "e": true}));
    }
}
