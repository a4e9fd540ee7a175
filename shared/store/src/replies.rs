//! Replies to customers, queued in the same transaction as whatever caused them (an executed
//! intent, a person's answer) and sent by the outbound worker. The Message-ID is fixed here, at
//! queue time, so a resend after a crash is recognisably the same mail.

use serde::Serialize;
use sqlx::Row;

use crate::{PgConnection, Result, StoreError};

/// What to say; everything about where it goes is read from the ticket.
#[derive(Debug, Clone)]
pub struct NewReply<'a> {
    pub ticket_id: i64,
    /// The executed intent this reply answers (at most one reply per intent).
    pub intent_id: Option<i64>,
    pub body: &'a str,
    pub created_by: &'a str,
}

/// A mail to someone other than the customer (a forward): own recipients and subject, not
/// threaded into the customer's conversation.
#[derive(Debug, Clone)]
pub struct NewForward<'a> {
    pub ticket_id: i64,
    pub to: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
    pub created_by: &'a str,
}

/// A reply waiting for (or done by) the outbound worker.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedReply {
    pub id: i64,
    pub ticket_id: i64,
    /// `<…@…>`, stable across resends.
    pub mail_message_id: String,
    /// Whether this call queued it (false: the intent's reply existed already).
    pub created: bool,
}

/// The subject of a reply: the ticket's, with `Re:` and the ticket reference that threading
/// of the customer's answer accepts.
pub fn reply_subject(ticket_id: i64, subject: Option<&str>) -> String {
    let subject = subject.unwrap_or("").trim();
    let reference = format!("[#{ticket_id}]");
    let base = if subject.is_empty() {
        "Ihre Nachricht".to_owned()
    } else if subject.to_lowercase().starts_with("re:") || subject.to_lowercase().starts_with("aw:")
    {
        subject.to_owned()
    } else {
        format!("Re: {subject}")
    };
    if base.contains(&reference) {
        base
    } else {
        format!("{base} {reference}")
    }
}

/// Queues a reply to the ticket's customer, threaded to the customer's last message: sent to
/// its sender (or the ticket's), `In-Reply-To` its Message-ID, `References` its chain. Idempotent
/// per intent.
pub async fn queue(conn: &mut PgConnection, r: &NewReply<'_>) -> Result<QueuedReply> {
    if let Some(intent) = r.intent_id {
        let existing =
            sqlx::query("SELECT id, ticket_id, mail_message_id FROM messages WHERE intent_id = $1")
                .bind(intent)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(row) = existing {
            return Ok(QueuedReply {
                id: row.get(0),
                ticket_id: row.get(1),
                mail_message_id: row.get::<Option<String>, _>(2).unwrap_or_default(),
                created: false,
            });
        }
    }
    let ticket = sqlx::query(
        "SELECT t.subject, t.from_addr, t.channel, t.subchannel_id, t.cc_emails,
                m.from_addr, m.mail_message_id, m.mail_references, m.subchannel_id,
                coalesce(s.data->>'fromAddress', s.data->>'email')
           FROM tickets t
           LEFT JOIN LATERAL (SELECT from_addr, mail_message_id, mail_references, subchannel_id
                                FROM messages WHERE ticket_id = t.id AND direction = 'in'
                               ORDER BY id DESC LIMIT 1) m ON true
           LEFT JOIN subchannels s ON s.id = coalesce(m.subchannel_id, t.subchannel_id)
          WHERE t.id = $1",
    )
    .bind(r.ticket_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("ticket {}", r.ticket_id)))?;
    let subject: Option<String> = ticket.get(0);
    let ticket_from: Option<String> = ticket.get(1);
    let channel: String = ticket.get(2);
    let ticket_subchannel: Option<i64> = ticket.get(3);
    let cc: Vec<String> = ticket.get(4);
    let last_from: Option<String> = ticket.get(5);
    let in_reply_to: Option<String> = ticket.get(6);
    let mut references: Vec<String> = ticket.get::<Option<Vec<String>>, _>(7).unwrap_or_default();
    let subchannel: Option<i64> = ticket.get::<Option<i64>, _>(8).or(ticket_subchannel);
    let mailbox: Option<String> = ticket.get(9);
    let to: Vec<String> = last_from.or(ticket_from).into_iter().collect();
    if let Some(parent) = &in_reply_to {
        if !references.contains(parent) {
            references.push(parent.clone());
        }
    }
    let domain = mailbox
        .as_deref()
        .and_then(|m| m.rsplit_once('@'))
        .map(|(_, d)| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "switchyard.local".to_owned());
    let mail_message_id = format!("<reply.{}@{domain}>", uuid::Uuid::new_v4().simple());
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO messages (ticket_id, direction, from_addr, to_addrs, cc_addrs, subject, body,
                               body_plain, subchannel_id, mail_message_id, in_reply_to,
                               mail_references, send_status, channel, intent_id, created_by)
         VALUES ($1, 'out', $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, 'queued', $11, $12, $13)
         RETURNING id",
    )
    .bind(r.ticket_id)
    .bind(&mailbox)
    .bind(&to)
    .bind(&cc)
    .bind(reply_subject(r.ticket_id, subject.as_deref()))
    .bind(r.body)
    .bind(subchannel)
    .bind(&mail_message_id)
    .bind(&in_reply_to)
    .bind(&references)
    .bind(&channel)
    .bind(r.intent_id)
    .bind(r.created_by)
    .fetch_one(&mut *conn)
    .await?;
    Ok(QueuedReply {
        id,
        ticket_id: r.ticket_id,
        mail_message_id,
        created: true,
    })
}

/// Queues a forward of the ticket: sent through the ticket's mailbox with a new Message-ID.
pub async fn queue_forward(conn: &mut PgConnection, f: &NewForward<'_>) -> Result<QueuedReply> {
    let row = sqlx::query(
        "SELECT t.channel, coalesce(m.subchannel_id, t.subchannel_id),
                coalesce(s.data->>'fromAddress', s.data->>'email')
           FROM tickets t
           LEFT JOIN LATERAL (SELECT subchannel_id FROM messages
                               WHERE ticket_id = t.id AND direction = 'in' ORDER BY id DESC LIMIT 1) m ON true
           LEFT JOIN subchannels s ON s.id = coalesce(m.subchannel_id, t.subchannel_id)
          WHERE t.id = $1",
    )
    .bind(f.ticket_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("ticket {}", f.ticket_id)))?;
    let subchannel: Option<i64> = row.get(1);
    let mailbox: Option<String> = row.get(2);
    let domain = mailbox
        .as_deref()
        .and_then(|m| m.rsplit_once('@'))
        .map(|(_, d)| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "switchyard.local".to_owned());
    let mail_message_id = format!("<forward.{}@{domain}>", uuid::Uuid::new_v4().simple());
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO messages (ticket_id, direction, from_addr, to_addrs, subject, body, body_plain,
                               subchannel_id, mail_message_id, send_status, channel, created_by)
         VALUES ($1, 'out', $2, $3, $4, $5, $5, $6, $7, 'queued', 'email', $8)
         RETURNING id",
    )
    .bind(f.ticket_id)
    .bind(&mailbox)
    .bind(f.to)
    .bind(f.subject)
    .bind(f.body)
    .bind(subchannel)
    .bind(&mail_message_id)
    .bind(f.created_by)
    .fetch_one(&mut *conn)
    .await?;
    Ok(QueuedReply {
        id,
        ticket_id: f.ticket_id,
        mail_message_id,
        created: true,
    })
}

/// Stores an internal note on the ticket's conversation: seen by agents, never sent.
pub async fn add_note(
    conn: &mut PgConnection,
    ticket_id: i64,
    body: &str,
    created_by: &str,
) -> Result<i64> {
    let id = sqlx::query_scalar(
        "INSERT INTO messages (ticket_id, direction, body, body_plain, created_by)
         SELECT id, 'internal', $2, $2, $3 FROM tickets WHERE id = $1
         RETURNING id",
    )
    .bind(ticket_id)
    .bind(body)
    .bind(created_by)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("ticket {ticket_id}")))?;
    Ok(id)
}

/// The text a forward carries below the agent's note: the customer's latest message.
pub async fn forwarded_text(
    conn: &mut PgConnection,
    ticket_id: i64,
) -> Result<(Option<String>, String)> {
    let row = sqlx::query(
        "SELECT t.subject, coalesce(m.from_addr, t.from_addr), coalesce(m.body_plain, m.body, t.body_plain, '')
           FROM tickets t
           LEFT JOIN LATERAL (SELECT from_addr, body_plain, body FROM messages
                               WHERE ticket_id = t.id AND direction = 'in' ORDER BY id DESC LIMIT 1) m ON true
          WHERE t.id = $1",
    )
    .bind(ticket_id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("ticket {ticket_id}")))?;
    let from: Option<String> = row.get(1);
    let text: String = row.get(2);
    Ok((
        row.get(0),
        format!(
            "---------- Weitergeleitete Nachricht / Forwarded message ----------\nVon/From: {}\n\n{text}",
            from.unwrap_or_default()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::reply_subject;

    #[test]
    fn reply_subject_keeps_one_reference_and_one_re() {
        assert_eq!(
            reply_subject(7, Some("Zählerstand")),
            "Re: Zählerstand [#7]"
        );
        assert_eq!(
            reply_subject(7, Some("AW: Zählerstand [#7]")),
            "AW: Zählerstand [#7]"
        );
        assert_eq!(reply_subject(7, None), "Ihre Nachricht [#7]");
    }
}
