//! The outbound worker's view of a queued reply: what to send, where, and its send status.
//!
//! The attempt counter is written on a connection of its own and committed before the mail
//! leaves, so a crash between the SMTP server's acceptance and the commit of `sent` is seen on
//! redelivery (attempts > 0, no recorded error) and counted as a resend with the same Message-ID.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Row};

use crate::{PgConnection, Result};

/// One outbound message with what is needed to send it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: i64,
    pub ticket_id: i64,
    pub direction: String,
    pub send_status: Option<String>,
    pub send_attempts: i32,
    /// The error of the last attempt, if it ended with one (cleared when an attempt starts).
    pub send_error: Option<String>,
    pub from_addr: Option<String>,
    pub to_addrs: Vec<String>,
    pub cc_addrs: Vec<String>,
    pub subject: Option<String>,
    pub body: String,
    pub mail_message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// `email` or `chat` (the ticket's channel when it was queued).
    pub channel: Option<String>,
    pub subchannel_id: Option<i64>,
    pub intent_id: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The ticket's chat conversation (`channelId`).
    pub ticket_channel_id: Option<String>,
    pub ticket_status: String,
    pub ticket_spam_status: Option<String>,
    /// `messages.auto_reply` of the customer's message this one answers (the last inbound
    /// message before it).
    pub answers_auto_reply: Option<String>,
}

impl Outgoing {
    /// Queued by a service (dark processing), not by a person.
    pub fn is_automated(&self) -> bool {
        self.created_by
            .as_deref()
            .is_some_and(|c| c.starts_with("service:"))
    }

    /// A forward goes to someone other than the customer and is not threaded.
    pub fn is_forward(&self) -> bool {
        self.mail_message_id
            .as_deref()
            .is_some_and(|m| m.starts_with("<forward."))
    }
}

/// Loads an outbound message and its ticket's facts.
pub async fn load(conn: &mut PgConnection, id: i64) -> Result<Option<Outgoing>> {
    let row = sqlx::query(
        "SELECT m.id, m.ticket_id, m.direction, m.send_status, m.send_attempts, m.send_error,
                m.from_addr, m.to_addrs, m.cc_addrs, m.subject, coalesce(m.body_plain, m.body, ''),
                m.mail_message_id, m.in_reply_to, m.mail_references, m.channel, m.subchannel_id,
                m.intent_id, m.created_by, m.created_at, t.channel_id, t.status, t.spam_status,
                (SELECT i.auto_reply FROM messages i
                  WHERE i.ticket_id = m.ticket_id AND i.direction = 'in' AND i.id < m.id
                  ORDER BY i.id DESC LIMIT 1)
           FROM messages m JOIN tickets t ON t.id = m.ticket_id
          WHERE m.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Outgoing {
        id: r.get(0),
        ticket_id: r.get(1),
        direction: r.get(2),
        send_status: r.get(3),
        send_attempts: r.get(4),
        send_error: r.get(5),
        from_addr: r.get(6),
        to_addrs: r.get(7),
        cc_addrs: r.get(8),
        subject: r.get(9),
        body: r.get(10),
        mail_message_id: r.get(11),
        in_reply_to: r.get(12),
        references: r.get::<Option<Vec<String>>, _>(13).unwrap_or_default(),
        channel: r.get(14),
        subchannel_id: r.get(15),
        intent_id: r.get(16),
        created_by: r.get(17),
        created_at: r.get(18),
        ticket_channel_id: r.get(19),
        ticket_status: r.get(20),
        ticket_spam_status: r.get(21),
        answers_auto_reply: r.get(22),
    }))
}

/// Counts an attempt and commits it (autocommit on `pool`) before anything is sent. Returns the
/// attempt number, or `None` when the message is no longer queued.
pub async fn begin_attempt(pool: &PgPool, id: i64) -> Result<Option<i32>> {
    Ok(sqlx::query_scalar(
        "UPDATE messages SET send_attempts = send_attempts + 1, send_error = NULL,
                             send_attempted_at = now()
          WHERE id = $1 AND send_status = 'queued'
         RETURNING send_attempts",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Records why an attempt failed while the message stays queued for a retry (autocommit: the
/// stage's transaction is rolled back for the retry).
pub async fn note_failed_attempt(pool: &PgPool, id: i64, error: &str) -> Result<()> {
    sqlx::query("UPDATE messages SET send_error = $2 WHERE id = $1 AND send_status = 'queued'")
        .bind(id)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}

/// The message was accepted by the SMTP server (or the chat endpoint).
pub async fn mark_sent(conn: &mut PgConnection, id: i64) -> Result<()> {
    sqlx::query(
        "UPDATE messages SET send_status = 'sent', sent_at = now(), send_error = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The message will not be sent: a person has to look at it.
pub async fn mark_failed(conn: &mut PgConnection, id: i64, error: &str) -> Result<()> {
    sqlx::query("UPDATE messages SET send_status = 'failed', send_error = $2 WHERE id = $1")
        .bind(id)
        .bind(error)
        .execute(conn)
        .await?;
    Ok(())
}

/// A subchannel's channel, settings and secrets (for sending; never returned by the API).
#[derive(Debug, Clone)]
pub struct SendingChannel {
    pub channel: String,
    pub enabled: bool,
    pub data: Value,
    pub secrets: Value,
}

pub async fn subchannel(conn: &mut PgConnection, id: i64) -> Result<Option<SendingChannel>> {
    let row = sqlx::query("SELECT channel, enabled, data, secrets FROM subchannels WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| SendingChannel {
        channel: r.get(0),
        enabled: r.get(1),
        data: r.get(2),
        secrets: r.get(3),
    }))
}

/// Replies still queued `older_than` after they were queued whose last attempt (if any) started
/// before `retry_quiet`: their hand-over to outbound was probably lost.
pub async fn stale_queued(
    pool: &PgPool,
    older_than: chrono::Duration,
    retry_quiet: chrono::Duration,
    limit: i64,
) -> Result<Vec<(i64, i64)>> {
    let now = Utc::now();
    Ok(sqlx::query_as(
        "SELECT id, ticket_id FROM messages
          WHERE send_status = 'queued' AND created_at < $1
            AND (send_attempted_at IS NULL OR send_attempted_at < $2)
          ORDER BY created_at LIMIT $3",
    )
    .bind(now - older_than)
    .bind(now - retry_quiet)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
