//! Routing data: tags, agents' skills and teams, the queue (`getLatest`), pings and statistics.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgConnection;
use utoipa::ToSchema;

use crate::{audit, Result, StoreError};

/// A tag as the API shows it (the seed's tag object).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub id: i64,
    pub name: String,
    /// "Parent: Child" for display outside the tree.
    #[sqlx(default)]
    pub full_name: String,
    pub parent: Option<i64>,
    pub reference: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub kind: String,
    pub visibility: String,
    pub color: String,
    pub properties: Vec<String>,
    pub complexity: Option<String>,
    /// In business hours; `null` = no SLA.
    pub sla: Option<f64>,
    pub priority: String,
    pub channels: Vec<String>,
    pub subchannels: Vec<i64>,
    pub detection_details: Value,
    pub assignment: Vec<String>,
    pub routing_relevant: bool,
    pub test_case: Value,
    pub modified_by: Option<String>,
    #[schema(value_type = String, example = "2024-08-29 14:38:12")]
    #[serde(with = "switchyard_domain::time::ticket_time")]
    pub modified_at: DateTime<Utc>,
}

/// Closed lists of a tag's fields, shared by validation and the OpenAPI document.
pub const TAG_REFERENCES: &[&str] = &["ticket", "contract", "customer"];
pub const TAG_TYPES: &[&str] = &[
    "skill",
    "product",
    "brand",
    "customerProperty",
    "contractProperty",
    "other",
];
pub const TAG_VISIBILITIES: &[&str] = &["public", "private", "disabled"];
pub const TAG_COLORS: &[&str] = &[
    "grey", "green", "red", "blue", "yellow", "purple", "orange", "teal",
];
pub const TAG_PRIORITIES: &[&str] = &["do-not-change", "low", "medium", "high", "urgent"];

mod tag_schema {
    use switchyard_domain::schema::{optional_string_enum, string_enum_array};
    use utoipa::openapi::{schema::Array, Object};
    pub fn reference() -> Object {
        optional_string_enum(super::TAG_REFERENCES)
    }
    pub fn kind() -> Object {
        optional_string_enum(super::TAG_TYPES)
    }
    pub fn visibility() -> Object {
        optional_string_enum(super::TAG_VISIBILITIES)
    }
    pub fn color() -> Object {
        optional_string_enum(super::TAG_COLORS)
    }
    pub fn priority() -> Object {
        optional_string_enum(super::TAG_PRIORITIES)
    }
    pub fn properties() -> Array {
        string_enum_array(&["defaultSkill"])
    }
    pub fn channels() -> Array {
        string_enum_array(switchyard_domain::Channel::NAMES)
    }
    pub fn assignment() -> Array {
        string_enum_array(super::ASSIGNMENTS)
    }
}

/// The fields of a tag an operator sets (`POST /api/mind/tag`).
#[derive(Debug, Clone, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagInput {
    /// Given: update that tag; absent: create one.
    #[schema(minimum = 1)]
    pub id: Option<i64>,
    #[schema(min_length = 1, pattern = "\\S")]
    pub name: String,
    #[schema(minimum = 1)]
    pub parent: Option<i64>,
    #[schema(schema_with = tag_schema::reference)]
    pub reference: Option<String>,
    #[serde(rename = "type")]
    #[schema(schema_with = tag_schema::kind)]
    pub kind: Option<String>,
    #[schema(schema_with = tag_schema::visibility)]
    pub visibility: Option<String>,
    #[schema(schema_with = tag_schema::color)]
    pub color: Option<String>,
    #[serde(default)]
    #[schema(schema_with = tag_schema::properties)]
    pub properties: Vec<String>,
    pub complexity: Option<String>,
    /// Business hours.
    #[schema(exclusive_minimum = 0, maximum = 8760)]
    pub sla: Option<f64>,
    #[schema(schema_with = tag_schema::priority)]
    pub priority: Option<String>,
    #[serde(default)]
    #[schema(schema_with = tag_schema::channels)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub subchannels: Vec<i64>,
    pub detection_details: Option<Value>,
    #[serde(default)]
    #[schema(schema_with = tag_schema::assignment)]
    pub assignment: Vec<String>,
    pub routing_relevant: Option<bool>,
    pub test_case: Option<Value>,
}

const TAG_COLUMNS: &str =
    "id, name, parent, reference, type, visibility, color, properties, complexity, sla,
    priority, channels, subchannels, detection_details, assignment, routing_relevant, test_case,
    modified_by, modified_at";

fn one_of(field: &str, v: &Option<String>, allowed: &[&str], default: &str) -> Result<String> {
    let v = v.clone().unwrap_or_else(|| default.to_owned());
    if allowed.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(StoreError::invalid(
            field,
            format!("must be one of {}", allowed.join(", ")),
        ))
    }
}

pub const ASSIGNMENTS: &[&str] = &[
    "assignBySubchannel",
    "assignByTicketProperty",
    "assignByContractProperty",
    "assignByCustomerProperty",
    "assignByCustomLogic",
    "assignByAI",
];

/// Validates and stores a tag; returns its id.
pub async fn save_tag(conn: &mut PgConnection, t: &TagInput, actor: &str) -> Result<i64> {
    if t.name.trim().is_empty() {
        return Err(StoreError::invalid("name", "must not be empty"));
    }
    let reference = one_of("reference", &t.reference, TAG_REFERENCES, "ticket")?;
    let kind = one_of("type", &t.kind, TAG_TYPES, "skill")?;
    let visibility = one_of("visibility", &t.visibility, TAG_VISIBILITIES, "public")?;
    let color = one_of("color", &t.color, TAG_COLORS, "grey")?;
    let priority = one_of("priority", &t.priority, TAG_PRIORITIES, "do-not-change")?;
    if t.sla.is_some_and(|s| !(s > 0.0 && s <= 24.0 * 365.0)) {
        return Err(StoreError::invalid(
            "sla",
            "must be a positive number of business hours",
        ));
    }
    for (i, p) in t.properties.iter().enumerate() {
        if p != "defaultSkill" {
            return Err(StoreError::invalid(
                &format!("properties[{i}]"),
                "only defaultSkill is known",
            ));
        }
    }
    for (i, c) in t.channels.iter().enumerate() {
        if switchyard_domain::Channel::parse(c).is_none() {
            return Err(StoreError::invalid(
                &format!("channels[{i}]"),
                "unknown channel",
            ));
        }
    }
    for (i, a) in t.assignment.iter().enumerate() {
        if !ASSIGNMENTS.contains(&a.as_str()) {
            return Err(StoreError::invalid(
                &format!("assignment[{i}]"),
                "unknown assignment",
            ));
        }
    }
    let details = t.detection_details.clone().unwrap_or_else(|| json!({}));
    if !details.is_object() {
        return Err(StoreError::invalid("detectionDetails", "must be an object"));
    }
    if let Some(conditions) = details.get("conditions") {
        crate::conditions::Condition::parse(conditions)
            .map_err(|m| StoreError::invalid("detectionDetails.conditions", m))?;
    }
    if let (Some(id), Some(parent)) = (t.id, t.parent) {
        if id == parent {
            return Err(StoreError::invalid(
                "parent",
                "a tag cannot be its own parent",
            ));
        }
    }
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO tags (id, name, parent, reference, type, visibility, color, properties, complexity, sla,
                priority, channels, subchannels, detection_details, assignment, routing_relevant, test_case,
                modified_by, modified_at)
         VALUES (coalesce($1, nextval('tags_id_seq')), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                 $15, $16, $17, $18, now())
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, parent = EXCLUDED.parent,
                reference = EXCLUDED.reference, type = EXCLUDED.type, visibility = EXCLUDED.visibility,
                color = EXCLUDED.color, properties = EXCLUDED.properties, complexity = EXCLUDED.complexity,
                sla = EXCLUDED.sla, priority = EXCLUDED.priority, channels = EXCLUDED.channels,
                subchannels = EXCLUDED.subchannels, detection_details = EXCLUDED.detection_details,
                assignment = EXCLUDED.assignment, routing_relevant = EXCLUDED.routing_relevant,
                test_case = EXCLUDED.test_case, modified_by = EXCLUDED.modified_by, modified_at = now()
         RETURNING id",
    )
    .bind(t.id)
    .bind(t.name.trim())
    .bind(t.parent)
    .bind(reference)
    .bind(kind)
    .bind(visibility)
    .bind(color)
    .bind(&t.properties)
    .bind(&t.complexity)
    .bind(t.sla)
    .bind(priority)
    .bind(&t.channels)
    .bind(&t.subchannels)
    .bind(&details)
    .bind(&t.assignment)
    .bind(t.routing_relevant.unwrap_or(true))
    .bind(t.test_case.clone().unwrap_or_else(|| json!({})))
    .bind(actor)
    .fetch_optional(&mut *conn)
    .await?;
    let id = id.ok_or_else(|| StoreError::NotFound("tag".into()))?;
    // A tag inserted with an explicit id must not collide with later generated ones.
    sqlx::query("SELECT setval('tags_id_seq', greatest((SELECT max(id) FROM tags), 1))")
        .execute(&mut *conn)
        .await?;
    audit::record(
        conn,
        actor,
        "tag",
        &id.to_string(),
        "saved",
        &json!({"name": t.name}),
    )
    .await?;
    Ok(id)
}

/// Every tag, with `fullName` filled in.
pub async fn list_tags(conn: &mut PgConnection) -> Result<Vec<Tag>> {
    let mut tags: Vec<Tag> = sqlx::query_as(&format!("SELECT {TAG_COLUMNS} FROM tags ORDER BY id"))
        .fetch_all(conn)
        .await?;
    let names: std::collections::HashMap<i64, (String, Option<i64>)> = tags
        .iter()
        .map(|t| (t.id, (t.name.clone(), t.parent)))
        .collect();
    for t in &mut tags {
        let mut parts = vec![t.name.clone()];
        let mut cur = t.parent;
        let mut depth = 0;
        while let (Some(p), true) = (cur, depth < 16) {
            match names.get(&p) {
                Some((name, parent)) => {
                    parts.push(name.clone());
                    cur = *parent;
                }
                None => break,
            }
            depth += 1;
        }
        parts.reverse();
        t.full_name = parts.join(": ");
    }
    Ok(tags)
}

/// Deletes a tag; its children move up to its parent.
pub async fn delete_tag(conn: &mut PgConnection, id: i64, actor: &str) -> Result<()> {
    sqlx::query(
        "UPDATE tags SET parent = (SELECT parent FROM tags WHERE id = $1) WHERE parent = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query("DELETE FROM tags WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("tag {id}")));
    }
    refresh_ticket_tag_arrays_for_tag(conn, id).await?;
    audit::record(conn, actor, "tag", &id.to_string(), "deleted", &json!({})).await
}

async fn refresh_ticket_tag_arrays_for_tag(conn: &mut PgConnection, tag_id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE tickets SET tag_ids = array_remove(tag_ids, $1), routing_tag_ids = array_remove(routing_tag_ids, $1)
          WHERE tag_ids @> ARRAY[$1]::bigint[]",
    )
    .bind(tag_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// What the router knows about a ticket when it assigns tags.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoutingFacts {
    pub channel: String,
    pub subchannel_id: Option<i64>,
    pub spam_status: Option<String>,
    pub last_agent_id: Option<i64>,
    pub last_agent_absent: bool,
    /// The ticket as JSON (seed field names), for property conditions.
    pub ticket: Value,
    pub contract: Option<Value>,
    pub customer: Option<Value>,
    /// Codes of the AI agents detected on the ticket (intents not deleted or invalidated).
    pub intent_codes: Vec<String>,
    pub manual_tag_ids: Vec<i64>,
}

pub async fn routing_facts(conn: &mut PgConnection, ticket_id: i64) -> Result<RoutingFacts> {
    sqlx::query_as(
        "SELECT t.channel, t.subchannel_id, t.spam_status, t.last_agent_id,
                coalesce((SELECT u.status = 'absent' FROM users u WHERE u.id = t.last_agent_id), false)
                    AS last_agent_absent,
                jsonb_build_object('channel', t.channel, 'subchannelId', t.subchannel_id, 'from', t.from_addr,
                    'subject', t.subject, 'bodyPlain', t.body_plain, 'priority', t.priority,
                    'languageCode', t.language_code, 'sentiment', t.sentiment, 'direction', t.direction,
                    'additionalData', t.additional_data) AS ticket,
                (SELECT to_jsonb(c) - 'data' || c.data FROM contracts c WHERE c.id = t.contract_id) AS contract,
                (SELECT to_jsonb(cu) - 'data' || cu.data FROM customers cu WHERE cu.id = t.customer_id) AS customer,
                coalesce((SELECT array_agg(DISTINCT i.code) FROM intents i
                           WHERE i.ticket_id = t.id AND i.status NOT IN ('deleted', 'invalidated')), '{}')
                    AS intent_codes,
                coalesce((SELECT array_agg(tt.tag_id) FROM ticket_tags tt
                           WHERE tt.ticket_id = t.id AND tt.source = 'manual'), '{}') AS manual_tag_ids
           FROM tickets t WHERE t.id = $1",
    )
    .bind(ticket_id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("ticket {ticket_id}")))
}

/// The tags the router decided on for a ticket.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketTagging {
    /// Automatically assigned tags with their source.
    pub auto: Vec<(i64, String)>,
    /// Every tag of the ticket, manual ones included (backlog restrictions, stats).
    pub all: Vec<i64>,
    /// The enabled, routing-relevant ones (skill matching).
    pub routing: Vec<i64>,
}

/// Replaces the ticket's automatically assigned tags (manual ones stay) and its tag arrays, in
/// one statement.
pub async fn set_auto_tags(
    conn: &mut PgConnection,
    ticket_id: i64,
    t: &TicketTagging,
) -> Result<()> {
    let ids: Vec<i64> = t.auto.iter().map(|(id, _)| *id).collect();
    let sources: Vec<&str> = t.auto.iter().map(|(_, s)| s.as_str()).collect();
    // The deleted and the inserted rows never overlap, so one statement can do both.
    sqlx::query(
        "WITH gone AS (DELETE FROM ticket_tags
                        WHERE ticket_id = $1 AND source <> 'manual' AND NOT (tag_id = ANY($2))),
              added AS (INSERT INTO ticket_tags (ticket_id, tag_id, source)
                        SELECT $1, tag, source FROM unnest($2::bigint[], $3::text[]) AS x(tag, source)
                        ON CONFLICT DO NOTHING)
         UPDATE tickets SET tag_ids = $4, routing_tag_ids = $5 WHERE id = $1",
    )
    .bind(ticket_id)
    .bind(&ids)
    .bind(&sources)
    .bind(&t.all)
    .bind(&t.routing)
    .execute(conn)
    .await?;
    Ok(())
}

/// The tags of a ticket in the seed's shape.
pub async fn ticket_tags(conn: &mut PgConnection, ticket_id: i64) -> Result<Vec<Tag>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {} FROM tags g JOIN ticket_tags tt ON tt.tag_id = g.id WHERE tt.ticket_id = $1 ORDER BY g.id",
        TAG_COLUMNS
            .split(',')
            .map(|c| format!("g.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(ticket_id)
    .fetch_all(conn)
    .await?)
}

/// Sets the assigned agent (a customer's follow-up goes back to the last agent).
pub async fn assign_agent(
    conn: &mut PgConnection,
    ticket_id: i64,
    agent: Option<i64>,
) -> Result<()> {
    sqlx::query("UPDATE tickets SET agent_id = $2 WHERE id = $1")
        .bind(ticket_id)
        .bind(agent)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the customer's latest message time (queue ordering by customer message).
pub async fn touch_customer_message(
    conn: &mut PgConnection,
    ticket_id: i64,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE tickets SET last_customer_message_at = greatest(coalesce(last_customer_message_at, $2), $2)
          WHERE id = $1",
    )
    .bind(ticket_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// An agent's effective routing profile: own and teams' skills and backlog restrictions.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentProfile {
    pub id: i64,
    pub status: String,
    pub skills: Vec<i64>,
    pub required_tag_ids: Vec<i64>,
    pub excluded_tag_ids: Vec<i64>,
}

pub async fn agent_profile(conn: &mut PgConnection, user_id: i64) -> Result<AgentProfile> {
    sqlx::query_as(
        "SELECT u.id, u.status,
                ARRAY(SELECT DISTINCT s FROM unnest(u.skills || coalesce(
                    (SELECT array_agg(s2) FROM teams tm, unnest(tm.skills) s2 WHERE tm.id = ANY(u.team_ids)), '{}')) s)
                    AS skills,
                ARRAY(SELECT DISTINCT s FROM unnest(u.required_tag_ids || coalesce(
                    (SELECT array_agg(s2) FROM teams tm, unnest(tm.required_tag_ids) s2 WHERE tm.id = ANY(u.team_ids)), '{}')) s)
                    AS required_tag_ids,
                ARRAY(SELECT DISTINCT s FROM unnest(u.excluded_tag_ids || coalesce(
                    (SELECT array_agg(s2) FROM teams tm, unnest(tm.excluded_tag_ids) s2 WHERE tm.id = ANY(u.team_ids)), '{}')) s)
                    AS excluded_tag_ids
           FROM users u WHERE u.id = $1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("user {user_id}")))
}

/// How skills must match a ticket's routing tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MatchingMode {
    /// At least one of the ticket's routing tags (default).
    MatchAny,
    /// Every routing tag of the ticket.
    MatchAll,
}

/// The queue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Ordering {
    /// SLA due date first (overdue first; no SLA last).
    SlaDue,
    /// Priority, then SLA due date.
    PrioritySla,
    /// Priority, then the newest customer message first.
    PriorityNewest,
    /// Priority, then the oldest customer message first.
    PriorityOldest,
}

impl Ordering {
    fn sql(self) -> &'static str {
        match self {
            Ordering::SlaDue => "due_by ASC NULLS LAST, id",
            Ordering::PrioritySla => "priority_rank DESC, due_by ASC NULLS LAST, id",
            Ordering::PriorityNewest => {
                "priority_rank DESC, last_customer_message_at DESC NULLS LAST, id"
            }
            Ordering::PriorityOldest => {
                "priority_rank DESC, last_customer_message_at ASC NULLS LAST, id"
            }
        }
    }
}

/// Hands the next ticket to an agent and holds it for `hold_secs`: tickets already assigned to
/// the agent first, then the queue in `ordering`, among open tickets the agent's skills match and
/// the backlog restrictions allow, not held by anyone else. `FOR UPDATE SKIP LOCKED` plus the
/// hold on the ticket row means two agents asking at once never get the same ticket.
pub async fn get_latest(
    conn: &mut PgConnection,
    agent: &AgentProfile,
    matching: MatchingMode,
    ordering: Ordering,
    hold_secs: i64,
) -> Result<Option<i64>> {
    let skill_match = match matching {
        MatchingMode::MatchAny => "(routing_tag_ids = '{}' OR routing_tag_ids && $2)",
        MatchingMode::MatchAll => "routing_tag_ids <@ $2",
    };
    // Eligible for this agent: open, not held (a ticket handed out stays with its agent until the
    // hold lapses, so each call hands out another one), not assigned to someone else, not spam;
    // skills and backlog restrictions apply unless the ticket is assigned to them.
    let eligible = format!(
        "status = 'open'
         AND (held_until IS NULL OR held_until < now())
         AND (agent_id IS NULL OR agent_id = $1)
         AND (spam_status IS NULL OR spam_status NOT IN ('auto_spam', 'manual_spam'))
         AND (agent_id = $1 OR ({skill_match}
              AND (cardinality($3::bigint[]) = 0 OR tag_ids @> $3)
              AND NOT (tag_ids && $4)))"
    );
    let order = ordering.sql();
    // Tickets assigned to this agent (a customer's follow-up) come first, then the queue.
    for scope in ["agent_id = $1", "true"] {
        let sql = format!(
            "UPDATE tickets SET held_by = $1, held_until = now() + make_interval(secs => $5)
              WHERE id = (SELECT id FROM tickets WHERE {scope} AND {eligible}
                           ORDER BY {order} LIMIT 1 FOR UPDATE SKIP LOCKED)
                AND {eligible}
              RETURNING id"
        );
        let got: Option<i64> = sqlx::query_scalar(&sql)
            .bind(agent.id)
            .bind(&agent.skills)
            .bind(&agent.required_tag_ids)
            .bind(&agent.excluded_tag_ids)
            .bind(hold_secs as f64)
            .fetch_optional(&mut *conn)
            .await?;
        if got.is_some() {
            return Ok(got);
        }
    }
    Ok(None)
}

/// Records that an agent works on a ticket now (the UI pings every 30 s), extends their hold,
/// and returns who works on it.
pub async fn ping(
    conn: &mut PgConnection,
    ticket_id: i64,
    user_id: i64,
    ttl_secs: i64,
) -> Result<Vec<Value>> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tickets WHERE id = $1)")
        .bind(ticket_id)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Err(StoreError::NotFound(format!("ticket {ticket_id}")));
    }
    sqlx::query(
        "INSERT INTO ticket_agent (ticket_id, user_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
         ON CONFLICT (ticket_id, user_id) DO UPDATE SET expires_at = EXCLUDED.expires_at",
    )
    .bind(ticket_id)
    .bind(user_id)
    .bind(ttl_secs as f64)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE tickets SET held_by = $2, held_until = now() + make_interval(secs => $3), last_agent_id = $2
          WHERE id = $1 AND (held_by = $2 OR held_until IS NULL OR held_until < now())",
    )
    .bind(ticket_id)
    .bind(user_id)
    .bind(ttl_secs as f64)
    .execute(&mut *conn)
    .await?;
    worked_on_by(conn, ticket_id).await
}

/// Agents with a live ping on the ticket, in the seed's user shape.
pub async fn worked_on_by(conn: &mut PgConnection, ticket_id: i64) -> Result<Vec<Value>> {
    Ok(sqlx::query_scalar(
        "SELECT jsonb_build_object('id', u.id, 'firstName', u.first_name, 'lastName', u.last_name,
                'email', u.email, 'type', 'switchyard', 'lang', u.lang, 'isSsoOnly', false,
                'lastSeen', to_char(ta.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
           FROM ticket_agent ta JOIN users u ON u.id = ta.user_id
          WHERE ta.ticket_id = $1 AND ta.expires_at > now() ORDER BY u.id",
    )
    .bind(ticket_id)
    .fetch_all(conn)
    .await?)
}

/// Open-ticket statistics, computed in the database over the open tickets. Call it inside a
/// transaction (it sets `jit` for that transaction only).
pub async fn stats(conn: &mut PgConnection) -> Result<Value> {
    // The plan is cheap to build but estimated expensive: JIT compiling it costs more than it saves.
    sqlx::query("SET LOCAL jit = off")
        .execute(&mut *conn)
        .await?;
    let row: (Value,) = sqlx::query_as(
        "WITH open AS MATERIALIZED (
             SELECT id, status, channel, agent_id, ai_support_level, tag_ids, due_by
               FROM tickets WHERE status NOT IN ('closed', 'resolved')),
         by_status AS (SELECT coalesce(jsonb_object_agg(status, n), '{}') j FROM
             (SELECT status, count(*) n FROM open GROUP BY status) x),
         by_channel AS (SELECT coalesce(jsonb_object_agg(channel, n), '{}') j FROM
             (SELECT channel, count(*) n FROM open GROUP BY channel) x),
         by_level AS (SELECT coalesce(jsonb_object_agg(ai_support_level, n), '{}') j FROM
             (SELECT ai_support_level, count(*) n FROM open GROUP BY ai_support_level) x),
         by_agent AS (SELECT coalesce(jsonb_object_agg(coalesce(agent_id::text, 'unassigned'), n), '{}') j FROM
             (SELECT agent_id, count(*) n FROM open GROUP BY agent_id) x),
         by_tag AS (SELECT coalesce(jsonb_agg(jsonb_build_object('tagId', tag, 'name', g.name, 'count', n)
                                              ORDER BY n DESC), '[]') j FROM
             (SELECT tag, count(*) n FROM open, unnest(tag_ids) tag GROUP BY tag) x
             LEFT JOIN tags g ON g.id = x.tag),
         totals AS (SELECT count(*) total, count(*) FILTER (WHERE due_by < now()) overdue,
                           count(*) FILTER (WHERE cardinality(tag_ids) = 0) untagged FROM open)
         SELECT jsonb_build_object(
             'total', totals.total, 'overdue', totals.overdue, 'untagged', totals.untagged,
             'byStatus', by_status.j, 'byChannel', by_channel.j, 'byAiSupportLevel', by_level.j,
             'byAgent', by_agent.j, 'byTag', by_tag.j,
             'asOf', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
           FROM totals, by_status, by_channel, by_level, by_agent, by_tag",
    )
    .fetch_one(conn)
    .await?;
    Ok(row.0)
}

/// Marks open tickets whose due time passed (once per due time) and returns them, for
/// `TicketDueByOverdue`. `SKIP LOCKED`: several router replicas share the work.
pub async fn take_overdue(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<(i64, DateTime<Utc>)>> {
    Ok(sqlx::query_as(
        "UPDATE tickets SET overdue_notified_for = due_by
          WHERE id IN (SELECT id FROM tickets
                        WHERE status = 'open' AND overdue_notified_for IS DISTINCT FROM due_by AND due_by < now()
                        ORDER BY due_by LIMIT $1 FOR UPDATE SKIP LOCKED)
          RETURNING id, due_by",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
