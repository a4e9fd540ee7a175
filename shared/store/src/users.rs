//! Users (agents) and teams as routing sees them: skills, team membership, status, backlog
//! restrictions.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;

use crate::{audit, Result, StoreError};

pub const STATUSES: &[&str] = &["active", "busy", "offwork", "away", "absent"];

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    pub lang: String,
    pub status: String,
    /// Tag ids the user handles (team skills add to these).
    pub skills: Vec<i64>,
    pub team_ids: Vec<i64>,
    /// Backlog restriction: tickets must carry all of these tags.
    pub required_tag_ids: Vec<i64>,
    /// Backlog restriction: tickets with any of these tags are not offered.
    pub excluded_tag_ids: Vec<i64>,
}

const USER_COLUMNS: &str = "id, email, first_name, last_name, role, lang, status, skills, team_ids,
    required_tag_ids, excluded_tag_ids";

pub async fn list_users(conn: &mut PgConnection) -> Result<Vec<User>> {
    Ok(
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
            .fetch_all(conn)
            .await?,
    )
}

pub async fn get_user(conn: &mut PgConnection, id: i64) -> Result<User> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("user {id}")))
}

fn status_schema() -> utoipa::openapi::Object {
    switchyard_domain::schema::optional_string_enum(STATUSES)
}

/// The routing fields of a user an admin (or, for `status`, the user) may change.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    #[schema(schema_with = status_schema)]
    pub status: Option<String>,
    pub skills: Option<Vec<i64>>,
    pub team_ids: Option<Vec<i64>>,
    pub required_tag_ids: Option<Vec<i64>>,
    pub excluded_tag_ids: Option<Vec<i64>>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub lang: Option<String>,
}

impl UserPatch {
    /// Only the status: what users may change about themselves.
    pub fn is_status_only(&self) -> bool {
        self.skills.is_none()
            && self.team_ids.is_none()
            && self.required_tag_ids.is_none()
            && self.excluded_tag_ids.is_none()
    }
}

async fn check_ids(conn: &mut PgConnection, field: &str, table: &str, ids: &[i64]) -> Result<()> {
    let known: i64 = sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT id) FROM {table} WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_one(conn)
    .await?;
    let mut distinct = ids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if known != distinct.len() as i64 {
        return Err(StoreError::UnknownReference {
            field: field.to_owned(),
            message: format!("contains ids that are not {table}"),
        });
    }
    Ok(())
}

pub async fn update_user(
    conn: &mut PgConnection,
    id: i64,
    p: &UserPatch,
    actor: &str,
) -> Result<User> {
    if let Some(s) = &p.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(StoreError::invalid(
                "status",
                format!("must be one of {}", STATUSES.join(", ")),
            ));
        }
    }
    for (field, ids) in [
        ("skills", &p.skills),
        ("requiredTagIds", &p.required_tag_ids),
        ("excludedTagIds", &p.excluded_tag_ids),
    ] {
        if let Some(ids) = ids {
            check_ids(conn, field, "tags", ids).await?;
        }
    }
    if let Some(ids) = &p.team_ids {
        check_ids(conn, "teamIds", "teams", ids).await?;
    }
    let done = sqlx::query(
        "UPDATE users SET status = coalesce($2, status), skills = coalesce($3, skills),
                team_ids = coalesce($4, team_ids), required_tag_ids = coalesce($5, required_tag_ids),
                excluded_tag_ids = coalesce($6, excluded_tag_ids), first_name = coalesce($7, first_name),
                last_name = coalesce($8, last_name), lang = coalesce($9, lang)
          WHERE id = $1",
    )
    .bind(id)
    .bind(&p.status)
    .bind(&p.skills)
    .bind(&p.team_ids)
    .bind(&p.required_tag_ids)
    .bind(&p.excluded_tag_ids)
    .bind(&p.first_name)
    .bind(&p.last_name)
    .bind(&p.lang)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("user {id}")));
    }
    audit::record(
        conn,
        actor,
        "user",
        &id.to_string(),
        "updated",
        &serde_json::to_value(p).unwrap_or_default(),
    )
    .await?;
    get_user(conn, id).await
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    /// Given: update that team.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub id: Option<i64>,
    #[schema(min_length = 1, pattern = "\\S")]
    pub name: String,
    #[serde(default)]
    pub skills: Vec<i64>,
    #[serde(default)]
    pub required_tag_ids: Vec<i64>,
    #[serde(default)]
    pub excluded_tag_ids: Vec<i64>,
}

pub async fn list_teams(conn: &mut PgConnection) -> Result<Vec<Team>> {
    Ok(sqlx::query_as(
        "SELECT id, name, skills, required_tag_ids, excluded_tag_ids FROM teams ORDER BY id",
    )
    .fetch_all(conn)
    .await?)
}

/// Creates a team, or updates it when `id` is given.
pub async fn save_team(conn: &mut PgConnection, t: &Team, actor: &str) -> Result<i64> {
    if t.name.trim().is_empty() {
        return Err(StoreError::invalid("name", "must not be empty"));
    }
    for (field, ids) in [
        ("skills", &t.skills),
        ("requiredTagIds", &t.required_tag_ids),
        ("excludedTagIds", &t.excluded_tag_ids),
    ] {
        check_ids(conn, field, "tags", ids).await?;
    }
    let id: Option<i64> = match t.id {
        Some(id) => sqlx::query_scalar(
            "UPDATE teams SET name = $2, skills = $3, required_tag_ids = $4, excluded_tag_ids = $5
              WHERE id = $1 RETURNING id",
        )
        .bind(id),
        None => sqlx::query_scalar(
            "INSERT INTO teams (name, skills, required_tag_ids, excluded_tag_ids) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET skills = EXCLUDED.skills,
                required_tag_ids = EXCLUDED.required_tag_ids, excluded_tag_ids = EXCLUDED.excluded_tag_ids
             RETURNING id",
        ),
    }
    .bind(t.name.trim())
    .bind(&t.skills)
    .bind(&t.required_tag_ids)
    .bind(&t.excluded_tag_ids)
    .fetch_optional(&mut *conn)
    .await?;
    let id = id.ok_or_else(|| StoreError::NotFound("team".into()))?;
    audit::record(
        conn,
        actor,
        "team",
        &id.to_string(),
        "saved",
        &json!({"name": t.name}),
    )
    .await?;
    Ok(id)
}

/// Agents who can take chats now, per channel (for the agent queue status).
pub async fn available_agents(conn: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE status = 'active' AND role IN ('agent', 'admin')",
    )
    .fetch_one(conn)
    .await?)
}
