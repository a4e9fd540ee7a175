//! Mail: mailboxes to poll, their IMAP progress, threading look-ups and storing a parsed mail
//! with its attachments and flags in the stage's transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgConnection;
use switchyard_domain::{InboundTicket, ProcessingFlag};

use crate::tickets::{self, Stored};
use crate::{audit, Result, StoreError};

/// An enabled mailbox subchannel with its settings and secrets (for the connector only: never
/// logged, never returned by the API).
#[derive(Clone, sqlx::FromRow)]
pub struct MailboxRow {
    pub id: i64,
    pub data: Value,
    pub secrets: Value,
    pub modified_at: DateTime<Utc>,
}

impl std::fmt::Debug for MailboxRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxRow")
            .field("id", &self.id)
            .field("data", &self.data)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

/// Enabled e-mail subchannels that name an IMAP host, or were connected by OAuth (whose
/// provider implies one).
pub async fn mailboxes(conn: &mut PgConnection) -> Result<Vec<MailboxRow>> {
    Ok(sqlx::query_as(
        "SELECT id, data, secrets, modified_at FROM subchannels
          WHERE channel = 'email' AND enabled
            AND (coalesce(data->>'host', data->>'imapHost', '') <> ''
                 OR data->>'authType' = 'oauth2')
          ORDER BY id",
    )
    .fetch_all(conn)
    .await?)
}

/// Where a connector stands in a folder: `(uid_validity, last_uid)`.
pub async fn progress(
    conn: &mut PgConnection,
    subchannel_id: i64,
    folder: &str,
) -> Result<Option<(i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT uid_validity, last_uid FROM imap_progress WHERE subchannel_id = $1 AND folder = $2",
    )
    .bind(subchannel_id)
    .bind(folder)
    .fetch_optional(conn)
    .await?)
}

/// Records progress. A UID never goes back within one UIDVALIDITY (a slow, stale writer cannot
/// undo a newer one); a new UIDVALIDITY replaces the old state.
pub async fn set_progress(
    conn: &mut PgConnection,
    subchannel_id: i64,
    folder: &str,
    uid_validity: i64,
    last_uid: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO imap_progress (subchannel_id, folder, uid_validity, last_uid)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (subchannel_id, folder) DO UPDATE
            SET last_uid = CASE WHEN imap_progress.uid_validity = EXCLUDED.uid_validity
                                THEN GREATEST(imap_progress.last_uid, EXCLUDED.last_uid)
                                ELSE EXCLUDED.last_uid END,
                uid_validity = EXCLUDED.uid_validity,
                modified_at = now()",
    )
    .bind(subchannel_id)
    .bind(folder)
    .bind(uid_validity)
    .bind(last_uid)
    .execute(conn)
    .await?;
    Ok(())
}

/// The ticket of the newest stored message whose Message-ID is one of `ids` (In-Reply-To and
/// References of a reply), preferring the reply's own subchannel. Inbound Message-IDs are stored
/// without angle brackets, the ones outbound fixes for its replies with them (`<reply.…@…>`):
/// both forms match.
pub async fn find_thread(
    conn: &mut PgConnection,
    subchannel_id: Option<i64>,
    ids: &[String],
) -> Result<Option<i64>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let ids: Vec<String> = ids
        .iter()
        .flat_map(|i| [i.clone(), format!("<{i}>")])
        .collect();
    Ok(sqlx::query_scalar(
        "SELECT ticket_id FROM messages WHERE mail_message_id = ANY($1)
          ORDER BY (subchannel_id IS NOT DISTINCT FROM $2) DESC, id DESC LIMIT 1",
    )
    .bind(&ids)
    .bind(subchannel_id)
    .fetch_optional(conn)
    .await?)
}

/// Whether `sender` is the ticket's sender or its customer's address: only then may a ticket
/// number in a subject attach a mail to that ticket.
pub async fn sender_matches(conn: &mut PgConnection, ticket_id: i64, sender: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (
            SELECT 1 FROM tickets t LEFT JOIN customers c ON c.id = t.customer_id
             WHERE t.id = $1 AND (lower(t.from_addr) = lower($2) OR lower(c.email) = lower($2)))",
    )
    .bind(ticket_id)
    .bind(sender)
    .fetch_one(conn)
    .await?)
}

/// One attachment as stored: metadata here, bytes in the object store under `object_key`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentRecord {
    pub name: String,
    pub size: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub inline: bool,
    pub file_ending: Option<String>,
    pub content_type: Option<String>,
    pub object_key: String,
}

/// A parsed mail ready to store: the ticket fields, the mail's identity and thread, attachments
/// and the flags it raised.
#[derive(Debug, Clone)]
pub struct MailRecord {
    pub ticket: InboundTicket,
    pub body_plain: Option<String>,
    pub body_clean: Option<String>,
    pub mail_message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub raw_object_key: String,
    /// `autoReply`, `outOfOffice`, `bounce` or `bulk`: never answered automatically.
    pub auto_reply: Option<String>,
    pub attachments: Vec<AttachmentRecord>,
    pub flags: Vec<ProcessingFlag>,
}

/// Stores a mail: as a further message of `thread` (reopening it when closed and `reopen`, unless
/// the mail is automatic) or as a new ticket. Automatic mail opening a ticket gets
/// `spamStatus: auto_programmatic`.
pub async fn insert_mail(
    conn: &mut PgConnection,
    key: &str,
    thread: Option<i64>,
    m: &MailRecord,
    received_at: DateTime<Utc>,
    reopen: bool,
    actor: audit::Actor<'_>,
) -> Result<Stored> {
    let t = &m.ticket;
    let stored = match thread {
        Some(ticket_id) => {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM tickets WHERE id = $1 FOR UPDATE")
                    .bind(ticket_id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let status =
                status.ok_or_else(|| StoreError::NotFound(format!("ticket {ticket_id}")))?;
            let closed = status == "closed" || status == "resolved";
            if closed && reopen && m.auto_reply.is_none() {
                sqlx::query(
                    "UPDATE tickets SET status = 'open', closed_at = NULL, modified_at = now() WHERE id = $1",
                )
                .bind(ticket_id)
                .execute(&mut *conn)
                .await?;
                audit::record(
                    conn,
                    actor,
                    "ticket",
                    &ticket_id.to_string(),
                    "reopened",
                    &json!({"reason": "customer reply", "previousStatus": status}),
                )
                .await?;
            } else {
                sqlx::query("UPDATE tickets SET modified_at = now() WHERE id = $1")
                    .bind(ticket_id)
                    .execute(&mut *conn)
                    .await?;
            }
            let message_id: i64 = sqlx::query_scalar(
                "INSERT INTO messages (ticket_id, direction, inbound_key, from_addr, from_name, to_addrs,
                    subject, body, body_plain, created_at, received_at)
                 VALUES ($1, 'in', $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(ticket_id)
            .bind(key)
            .bind(&t.from)
            .bind(&t.from_name)
            .bind(&t.to)
            .bind(&t.subject)
            .bind(&t.body)
            .bind(&m.body_plain)
            .bind(t.created_at.unwrap_or(received_at))
            .bind(received_at)
            .fetch_one(&mut *conn)
            .await?;
            audit::record(
                conn,
                actor,
                "ticket",
                &ticket_id.to_string(),
                "messageAdded",
                &json!({"messageId": message_id, "channel": "email"}),
            )
            .await?;
            Stored {
                ticket_id,
                message_id,
                new_ticket: false,
            }
        }
        None => {
            let stored =
                tickets::insert_inbound(conn, key, t, m.body_plain.as_deref(), received_at, actor)
                    .await?;
            sqlx::query(
                "UPDATE tickets SET body_clean = $2, interface = 'internal',
                        spam_status = CASE WHEN $3::text IS NULL THEN spam_status ELSE 'auto_programmatic' END
                  WHERE id = $1",
            )
            .bind(stored.ticket_id)
            .bind(&m.body_clean)
            .bind(&m.auto_reply)
            .execute(&mut *conn)
            .await?;
            stored
        }
    };
    sqlx::query(
        "UPDATE messages SET subchannel_id = $2, mail_message_id = $3, in_reply_to = $4,
                mail_references = $5, body_clean = $6, raw_object_key = $7, auto_reply = $8
          WHERE id = $1",
    )
    .bind(stored.message_id)
    .bind(t.subchannel_id)
    .bind(&m.mail_message_id)
    .bind(&m.in_reply_to)
    .bind(&m.references)
    .bind(&m.body_clean)
    .bind(&m.raw_object_key)
    .bind(&m.auto_reply)
    .execute(&mut *conn)
    .await?;
    for a in &m.attachments {
        sqlx::query(
            "INSERT INTO attachments (ticket_id, message_id, name, size, width, height, inline,
                file_ending, content_type, object_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(stored.ticket_id)
        .bind(stored.message_id)
        .bind(&a.name)
        .bind(a.size)
        .bind(a.width)
        .bind(a.height)
        .bind(a.inline)
        .bind(&a.file_ending)
        .bind(&a.content_type)
        .bind(&a.object_key)
        .execute(&mut *conn)
        .await?;
    }
    for flag in &m.flags {
        tickets::add_processing_flag(conn, stored.ticket_id, flag, actor).await?;
    }
    Ok(stored)
}

/// An attachment's object key, name and content type, for serving it.
pub async fn attachment_object(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<(String, String, Option<String>)>> {
    Ok(
        sqlx::query_as("SELECT object_key, name, content_type FROM attachments WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}
