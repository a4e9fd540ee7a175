//! Tickets and their conversation.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, QueryBuilder};
use switchyard_domain::*;

use crate::{audit, Result, StoreError};

/// What ingest stored for one inbound item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub ticket_id: i64,
    pub message_id: i64,
    /// False when the item was a follow-up on an existing ticket (same `externalTicketId`).
    pub new_ticket: bool,
}

/// The message already stored under an inbound key, if any.
pub async fn find_by_inbound_key(conn: &mut PgConnection, key: &str) -> Result<Option<Stored>> {
    let row: Option<(i64, i64, bool)> = sqlx::query_as(
        "SELECT m.ticket_id, m.id, m.id = (SELECT min(id) FROM messages WHERE ticket_id = m.ticket_id)
           FROM messages m WHERE m.inbound_key = $1",
    )
    .bind(key)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(ticket_id, message_id, new_ticket)| Stored {
        ticket_id,
        message_id,
        new_ticket,
    }))
}

/// Stores an inbound item as a new ticket with its first message, or as a further message of the
/// ticket with the same `externalTicketId` (the reference product updates instead of creating).
pub async fn insert_inbound(
    conn: &mut PgConnection,
    key: &str,
    t: &InboundTicket,
    body_plain: Option<&str>,
    received_at: DateTime<Utc>,
    actor: audit::Actor<'_>,
) -> Result<Stored> {
    let created_at = t.created_at.unwrap_or(received_at);
    let channel = t.channel.unwrap_or(Channel::Email);
    let direction = t.direction.unwrap_or(Direction::In);

    let existing: Option<i64> = match &t.external_ticket_id {
        Some(ext) => {
            sqlx::query_scalar("SELECT id FROM tickets WHERE external_ticket_id = $1 FOR UPDATE")
                .bind(ext)
                .fetch_optional(&mut *conn)
                .await?
        }
        None => None,
    };
    let contract_id: Option<i64> = match &t.contract_id {
        Some(c) => Some(
            c.parse()
                .map_err(|_| StoreError::invalid("contractId", "must be a number"))?,
        ),
        None => None,
    };

    let (ticket_id, new_ticket) = match existing {
        Some(id) => {
            sqlx::query("UPDATE tickets SET modified_at = now() WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            (id, false)
        }
        None => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO tickets (direction, from_addr, from_name, to_addrs, cc_emails, subchannel_id,
                    external_ticket_id, interface, priority, channel, channel_id, status, subject, body,
                    body_plain, created_at, contract_id, additional_data)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'api', $8, $9, $10, $11, $12, $13, $14, $15,
                    (SELECT id FROM contracts WHERE id = $16), $17)
                 RETURNING id",
            )
            .bind(direction.as_str())
            .bind(&t.from)
            .bind(&t.from_name)
            .bind(&t.to)
            .bind(&t.cc)
            .bind(t.subchannel_id)
            .bind(&t.external_ticket_id)
            .bind(t.priority.unwrap_or(Priority::Medium).as_str())
            .bind(channel.as_str())
            .bind(&t.channel_id)
            .bind(t.status.unwrap_or(TicketStatus::Open).as_str())
            .bind(&t.subject)
            .bind(&t.body)
            .bind(body_plain)
            .bind(created_at)
            .bind(contract_id)
            .bind(t.additional_data.clone().unwrap_or_else(|| json!({})))
            .fetch_one(&mut *conn)
            .await?;
            (id, true)
        }
    };

    let message_id: i64 = sqlx::query_scalar(
        "INSERT INTO messages (ticket_id, direction, inbound_key, from_addr, from_name, to_addrs,
            subject, body, body_plain, created_at, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(ticket_id)
    .bind(direction.as_str())
    .bind(key)
    .bind(&t.from)
    .bind(&t.from_name)
    .bind(&t.to)
    .bind(&t.subject)
    .bind(&t.body)
    .bind(body_plain)
    .bind(created_at)
    .bind(received_at)
    .fetch_one(&mut *conn)
    .await?;

    let action = if new_ticket {
        "created"
    } else {
        "messageAdded"
    };
    audit::record(
        conn,
        actor,
        "ticket",
        &ticket_id.to_string(),
        action,
        &json!({"messageId": message_id, "channel": channel}),
    )
    .await?;
    Ok(Stored {
        ticket_id,
        message_id,
        new_ticket,
    })
}

/// The fields a stage or a user may change on a ticket. `None` leaves a field as it is.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TicketPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Sentiment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ai_support_level: Option<AiSupportLevel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<TicketStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_by: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_response_due_by: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spam_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_legitimation: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_id: Option<i64>,
    /// The customer when no contract is known (with a contract, the contract's customer wins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<i64>,
    /// Merged into the ticket's `additionalData` (keys set to null are removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_data: Option<Value>,
}

impl TicketPatch {
    pub fn is_empty(&self) -> bool {
        *self == TicketPatch::default()
    }
}

/// Applies a patch and records it in the audit log.
pub async fn apply_patch(
    conn: &mut PgConnection,
    ticket_id: i64,
    patch: &TicketPatch,
    actor: audit::Actor<'_>,
) -> Result<()> {
    if patch.is_empty() {
        return Ok(());
    }
    let changes = serde_json::to_value(patch).unwrap_or(Value::Null);
    // One statement: the update and its audit entry.
    let mut q = QueryBuilder::new("WITH u AS (UPDATE tickets SET modified_at = now()");
    if let Some(v) = &patch.language {
        q.push(", language = ").push_bind(v);
    }
    if let Some(v) = &patch.language_code {
        q.push(", language_code = ").push_bind(v);
    }
    if let Some(v) = patch.sentiment {
        q.push(", sentiment = ").push_bind(v.as_str());
    }
    if let Some(v) = &patch.summary {
        q.push(", summary = ").push_bind(v);
    }
    if let Some(v) = patch.ai_support_level {
        q.push(", ai_support_level = ").push_bind(v.as_str());
    }
    if let Some(v) = patch.status {
        q.push(", status = ").push_bind(v.as_str());
        if matches!(v, TicketStatus::Closed | TicketStatus::Resolved) {
            q.push(", closed_at = coalesce(closed_at, now())");
        } else {
            q.push(", closed_at = NULL");
        }
    }
    if let Some(v) = patch.priority {
        q.push(", priority = ").push_bind(v.as_str());
    }
    if let Some(v) = patch.due_by {
        q.push(", due_by = ").push_bind(v);
    }
    if let Some(v) = patch.first_response_due_by {
        q.push(", first_response_due_by = ").push_bind(v);
    }
    if let Some(v) = &patch.spam_status {
        q.push(", spam_status = ").push_bind(v);
    }
    if let Some(v) = patch.customer_legitimation {
        q.push(", customer_legitimation = ").push_bind(v);
    }
    if let Some(v) = patch.contract_id {
        q.push(", contract_id = ").push_bind(v);
        q.push(", customer_id = (SELECT customer_id FROM contracts WHERE id = ")
            .push_bind(v)
            .push(")");
    }
    if let (Some(v), None) = (patch.customer_id, patch.contract_id) {
        q.push(", customer_id = ").push_bind(v);
    }
    if let Some(v) = &patch.additional_data {
        q.push(", additional_data = jsonb_strip_nulls(additional_data || ")
            .push_bind(v)
            .push(")");
    }
    q.push(" WHERE id = ").push_bind(ticket_id);
    q.push(
        " RETURNING id) INSERT INTO audit_log (actor, entity, entity_id, action, changes) SELECT ",
    )
    .push_bind(actor)
    .push(", 'ticket', u.id::text, 'updated', ")
    .push_bind(&changes)
    .push(" FROM u");
    let done = q.build().execute(&mut *conn).await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("ticket {ticket_id}")));
    }
    Ok(())
}

/// Flags a ticket for a person: adds the flag (once per code and stage) and sets
/// `aiSupportLevel: human`.
pub async fn add_processing_flag(
    conn: &mut PgConnection,
    ticket_id: i64,
    flag: &ProcessingFlag,
    actor: audit::Actor<'_>,
) -> Result<()> {
    let flag_json = serde_json::to_value(flag).unwrap_or(Value::Null);
    sqlx::query(
        "UPDATE tickets
            SET processing_flags = (
                    SELECT coalesce(jsonb_agg(f), '[]'::jsonb) FROM jsonb_array_elements(processing_flags) f
                     WHERE NOT (f->>'code' = $2->>'code' AND f->>'stage' IS NOT DISTINCT FROM $2->>'stage')
                ) || jsonb_build_array($2),
                ai_support_level = 'human',
                modified_at = now()
          WHERE id = $1",
    )
    .bind(ticket_id)
    .bind(&flag_json)
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        actor,
        "ticket",
        &ticket_id.to_string(),
        "flagged",
        &flag_json,
    )
    .await
}

/// Removes the flags of one code raised by one stage (after the cause was handled).
pub async fn clear_processing_flag(
    conn: &mut PgConnection,
    ticket_id: i64,
    code: &str,
    stage: Option<&str>,
    actor: audit::Actor<'_>,
) -> Result<()> {
    sqlx::query(
        "UPDATE tickets
            SET processing_flags = (
                SELECT coalesce(jsonb_agg(f), '[]'::jsonb) FROM jsonb_array_elements(processing_flags) f
                 WHERE NOT (f->>'code' = $2 AND f->>'stage' IS NOT DISTINCT FROM $3)),
                modified_at = now()
          WHERE id = $1",
    )
    .bind(ticket_id)
    .bind(code)
    .bind(stage)
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        actor,
        "ticket",
        &ticket_id.to_string(),
        "flagCleared",
        &json!({"code": code, "stage": stage}),
    )
    .await
}

#[derive(sqlx::FromRow)]
struct TicketRow {
    id: i64,
    direction: String,
    from_addr: Option<String>,
    from_name: Option<String>,
    to_addrs: Vec<String>,
    cc_emails: Vec<String>,
    reply_cc_emails: Vec<String>,
    subchannel_id: Option<i64>,
    external_ticket_id: Option<String>,
    sentiment: Option<String>,
    language: Option<String>,
    language_code: Option<String>,
    auto_execute_at: Option<DateTime<Utc>>,
    ai_support_level: String,
    spam_status: Option<String>,
    is_customer_active: bool,
    interface: String,
    priority: String,
    channel: String,
    channel_id: Option<String>,
    status: String,
    summary: Option<String>,
    subject: Option<String>,
    body_plain: Option<String>,
    body: Option<String>,
    body_clean: Option<String>,
    is_escalated: bool,
    created_at: DateTime<Utc>,
    modified_at: Option<DateTime<Utc>>,
    first_response_due_by: Option<DateTime<Utc>>,
    due_by: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    customer_id: Option<i64>,
    contract_id: Option<i64>,
    partner_id: Option<i64>,
    customer_legitimation: i32,
    responder_id: Option<i64>,
    agent_id: Option<i64>,
    additional_data: Value,
    template: Option<String>,
    processing_flags: Value,
}

fn parse_enum<T>(field: &str, v: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(v).ok_or_else(|| StoreError::invalid(field, v.to_owned()))
}

/// The full ticket in the seed's shape.
pub async fn load(conn: &mut PgConnection, ticket_id: i64) -> Result<Option<Ticket>> {
    let row: Option<TicketRow> = sqlx::query_as("SELECT * FROM tickets WHERE id = $1")
        .bind(ticket_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let attachments: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('id', id::text, 'url', '/api/mind/attachment/' || id, 'name', name,
                'size', size, 'width', width, 'height', height, 'inline', inline,
                'fileEnding', file_ending, 'contentType', content_type, 'originalUrl', original_url,
                'extractedData', extracted_data, 'extractionStatus', extraction_status,
                'extractionData', extraction_data)
           FROM attachments WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    let customer: Option<Value> = match r.customer_id {
        Some(cid) => {
            sqlx::query_scalar(
                "SELECT jsonb_build_object('id', id, 'email', email, 'firstname', firstname,
                    'lastname', lastname, 'company', company, 'business', business,
                    'address', address, 'phone', phone) || data
               FROM customers WHERE id = $1",
            )
            .bind(cid)
            .fetch_optional(&mut *conn)
            .await?
        }
        None => None,
    };
    let worked = crate::routing::worked_on_by(&mut *conn, ticket_id).await?;
    Ok(Some(Ticket {
        id: r.id,
        direction: parse_enum("direction", &r.direction, Direction::parse)?,
        from: r.from_addr,
        from_name: r.from_name,
        to: r.to_addrs,
        cc_emails: r.cc_emails,
        reply_cc_emails: r.reply_cc_emails,
        subchannel_id: r.subchannel_id,
        external_ticket_id: r.external_ticket_id,
        sentiment: r.sentiment.as_deref().and_then(Sentiment::parse),
        language: r.language,
        language_code: r.language_code,
        auto_execute_at: r.auto_execute_at,
        ai_support_level: parse_enum("aiSupportLevel", &r.ai_support_level, AiSupportLevel::parse)?,
        spam_status: r.spam_status,
        is_customer_active: r.is_customer_active,
        interface: parse_enum("interface", &r.interface, Interface::parse)?,
        priority: parse_enum("priority", &r.priority, Priority::parse)?,
        channel: parse_enum("channel", &r.channel, Channel::parse)?,
        channel_id: r.channel_id,
        status: parse_enum("status", &r.status, TicketStatus::parse)?,
        summary: r.summary,
        subject: r.subject,
        body_plain: r.body_plain,
        body: r.body,
        body_clean: r.body_clean,
        is_escalated: r.is_escalated,
        created_at: Some(r.created_at),
        modified_at: r.modified_at,
        first_response_due_by: r.first_response_due_by,
        due_by: r.due_by,
        closed_at: r.closed_at,
        customer,
        customer_id: r.customer_id.map(|v| v.to_string()),
        contract_id: r.contract_id.map(|v| v.to_string()),
        partner_id: r.partner_id,
        customer_legitimation: r.customer_legitimation,
        responder_id: r.responder_id,
        agent_id: r.agent_id,
        agent: None,
        assigned_agent_ids: r.agent_id.into_iter().collect(),
        assigned_agents: Vec::new(),
        worked_on_by_ids: worked.iter().filter_map(|u| u["id"].as_i64()).collect(),
        worked_on_by: worked,
        attachments,
        additional_data: r.additional_data,
        template: r.template,
        tags: crate::routing::ticket_tags(&mut *conn, ticket_id)
            .await?
            .into_iter()
            .filter_map(|t| serde_json::to_value(t).ok())
            .collect(),
        processing_flags: serde_json::from_value(r.processing_flags).unwrap_or_default(),
    }))
}

/// What the ai stage reads of a message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageText {
    pub ticket_id: i64,
    /// The ticket's first message (a new ticket) rather than a follow-up.
    pub is_first: bool,
    pub subject: Option<String>,
    pub body_plain: Option<String>,
    pub created_at: DateTime<Utc>,
    pub from_addr: Option<String>,
    pub channel: String,
    /// The ticket's legitimation now: 30 and above was confirmed by a person and is kept.
    pub customer_legitimation: i32,
    pub spam_status: Option<String>,
    /// Set by ingest for machine-sent mail (`autoReply`, `outOfOffice`, `bounce`, `bulk`).
    pub auto_reply: Option<String>,
}

/// The ticket's latest inbound message (what a preview runs on).
pub async fn latest_inbound_message(
    conn: &mut PgConnection,
    ticket_id: i64,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM messages WHERE ticket_id = $1 AND direction = 'in' ORDER BY id DESC LIMIT 1",
    )
    .bind(ticket_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn message_text(conn: &mut PgConnection, message_id: i64) -> Result<MessageText> {
    sqlx::query_as(
        "SELECT m.ticket_id, m.subject, m.body_plain, m.created_at, m.from_addr, t.channel,
                t.customer_legitimation, t.spam_status, m.auto_reply,
                NOT EXISTS (SELECT 1 FROM messages p WHERE p.ticket_id = m.ticket_id AND p.id < m.id) AS is_first
           FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE m.id = $1",
    )
    .bind(message_id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("message {message_id}")))
}

/// When the ticket was created (SLA clocks start there).
pub async fn created_at(conn: &mut PgConnection, ticket_id: i64) -> Result<DateTime<Utc>> {
    sqlx::query_scalar("SELECT created_at FROM tickets WHERE id = $1")
        .bind(ticket_id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {ticket_id}")))
}

/// Intents of a ticket that are ready to run.
pub async fn ready_intent_count(conn: &mut PgConnection, ticket_id: i64) -> Result<i64> {
    Ok(
        sqlx::query_scalar(
            "SELECT count(*) FROM intents WHERE ticket_id = $1 AND status = 'ready'",
        )
        .bind(ticket_id)
        .fetch_one(conn)
        .await?,
    )
}

/// The ticket's processing flags; `None` if there is no such ticket.
pub async fn processing_flags(
    conn: &mut PgConnection,
    ticket_id: i64,
) -> Result<Option<Vec<ProcessingFlag>>> {
    let v: Option<Value> = sqlx::query_scalar("SELECT processing_flags FROM tickets WHERE id = $1")
        .bind(ticket_id)
        .fetch_optional(conn)
        .await?;
    Ok(v.map(|v| serde_json::from_value(v).unwrap_or_default()))
}

/// Open tickets of a channel (the waiting chats of the agent queue status).
pub async fn open_count(conn: &mut PgConnection, channel: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM tickets WHERE status = 'open' AND channel = $1")
            .bind(channel)
            .fetch_one(conn)
            .await?,
    )
}

/// The other tickets of the ticket's customer (or contract), newest first: the history page,
/// its size, and how many of them are not closed. `None` if there is no such ticket.
pub async fn history(
    conn: &mut PgConnection,
    ticket_id: i64,
    limit: i64,
    offset: i64,
) -> Result<Option<(Vec<Value>, i64, i64)>> {
    let owner: Option<(Option<i64>, Option<i64>)> =
        sqlx::query_as("SELECT customer_id, contract_id FROM tickets WHERE id = $1")
            .bind(ticket_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((customer, contract)) = owner else {
        return Ok(None);
    };
    let same = "t.id <> $1 AND (($2::bigint IS NOT NULL AND t.customer_id = $2)
                               OR ($3::bigint IS NOT NULL AND t.contract_id = $3))";
    let (total, open): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*), count(*) FILTER (WHERE t.status NOT IN ('closed', 'resolved')) FROM tickets t WHERE {same}"
    ))
    .bind(ticket_id)
    .bind(customer)
    .bind(contract)
    .fetch_one(&mut *conn)
    .await?;
    let rows = sqlx::query_scalar(&format!(
        "SELECT jsonb_build_object('id', t.id, 'type', 'ticket', 'channel', t.channel,
                'subChannel', t.subchannel_id, 'status', t.status, 'subject', t.subject,
                'url', '/api/mind/ticket/' || t.id,
                'createdAt', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
           FROM tickets t WHERE {same} ORDER BY t.created_at DESC, t.id DESC LIMIT $4 OFFSET $5"
    ))
    .bind(ticket_id)
    .bind(customer)
    .bind(contract)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?;
    Ok(Some((rows, total, open)))
}
