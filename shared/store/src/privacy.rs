//! Personal data: erasing a customer on request (GDPR Art. 17) and the retention of closed
//! tickets. Both leave the rows that statistics and the ERP mirror need, without the person.

use serde::Serialize;
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;

use crate::{audit, Result, StoreError};

/// What an erasure touched; the audit log keeps these counts, never the data.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    pub customer_id: i64,
    pub tickets: i64,
    pub messages: i64,
    pub attachments: i64,
    pub contracts: i64,
    /// Objects (raw mails, attachment files) to delete from the object store once committed.
    #[serde(skip)]
    pub object_keys: Vec<String>,
}

const ERASED: &str = "[erased]";

/// Erases a customer's personal data: identifiers and contact data on the customer and its
/// contracts, and the content of every ticket that is theirs (by customer or by one of their
/// e-mail addresses): addresses, names, texts, intent parameters, attachments. The ticket rows,
/// their status and timestamps stay for the statistics. Idempotent.
pub async fn erase_customer(
    conn: &mut PgConnection,
    customer_id: i64,
    actor: &str,
) -> Result<Erasure> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM customers WHERE id = $1 FOR UPDATE")
            .bind(customer_id)
            .fetch_optional(&mut *conn)
            .await?;
    if found.is_none() {
        return Err(StoreError::NotFound(format!("customer {customer_id}")));
    }
    let emails: Option<Vec<String>> = sqlx::query_scalar(
        "SELECT array_remove(array_agg(DISTINCT lower(e)), NULL) FROM (
             SELECT email AS e FROM customers WHERE id = $1
             UNION ALL SELECT email FROM contracts WHERE customer_id = $1) x",
    )
    .bind(customer_id)
    .fetch_one(&mut *conn)
    .await?;
    let emails = emails.unwrap_or_default();
    let tickets: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM tickets
          WHERE customer_id = $1
             OR contract_id IN (SELECT id FROM contracts WHERE customer_id = $1)
             OR (cardinality($2::text[]) > 0 AND lower(from_addr) = ANY($2))
          ORDER BY id FOR UPDATE",
    )
    .bind(customer_id)
    .bind(&emails)
    .fetch_all(&mut *conn)
    .await?;

    let mut object_keys: Vec<String> = sqlx::query_scalar(
        "SELECT object_key FROM attachments WHERE ticket_id = ANY($1)
         UNION SELECT raw_object_key FROM messages WHERE ticket_id = ANY($1) AND raw_object_key IS NOT NULL",
    )
    .bind(&tickets)
    .fetch_all(&mut *conn)
    .await?;
    object_keys.sort();
    object_keys.dedup();

    sqlx::query(
        "UPDATE tickets SET from_addr = NULL, from_name = NULL, to_addrs = '{}', cc_emails = '{}',
                reply_cc_emails = '{}', subject = $2, summary = NULL, body_plain = $2, body = $2,
                body_clean = NULL, additional_data = '{}', erased_at = now(), modified_at = now()
          WHERE id = ANY($1)",
    )
    .bind(&tickets)
    .bind(ERASED)
    .execute(&mut *conn)
    .await?;
    let messages = sqlx::query(
        "UPDATE messages SET from_addr = NULL, from_name = NULL, to_addrs = '{}', cc_addrs = '{}',
                subject = $2, body = $2, body_plain = $2, body_clean = NULL, raw_object_key = NULL,
                send_error = NULL
          WHERE ticket_id = ANY($1)",
    )
    .bind(&tickets)
    .bind(ERASED)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let attachments = sqlx::query("DELETE FROM attachments WHERE ticket_id = ANY($1)")
        .bind(&tickets)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query(
        "UPDATE intents SET data = '{}', infos = '[]', outcome = NULL, options = '[]', modified_at = now()
          WHERE ticket_id = ANY($1)",
    )
    .bind(&tickets)
    .execute(&mut *conn)
    .await?;
    // Stage markers keep their keys (exactly-once) but not what the stages saw.
    sqlx::query(
        "UPDATE stage_runs SET outcome = '{}', recorded_effects = NULL WHERE ticket_id = ANY($1)",
    )
    .bind(&tickets)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE dead_letters SET payload = '\\x7b7d' WHERE ticket_id = ANY($1)")
        .bind(&tickets)
        .execute(&mut *conn)
        .await?;

    let contracts = sqlx::query(
        "UPDATE contracts SET email = NULL, delivery_address = NULL, billing_address = NULL,
                iban = NULL, counter_number = NULL, data = '{}', modified_at = now()
          WHERE customer_id = $1",
    )
    .bind(customer_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE contract_changes SET before = '{}', after = '{}'
          WHERE contract_id IN (SELECT id FROM contracts WHERE customer_id = $1)",
    )
    .bind(customer_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE customers SET email = NULL, firstname = NULL, lastname = NULL, company = NULL,
                address = NULL, phone = NULL, data = '{}', erased_at = coalesce(erased_at, now()),
                modified_at = now()
          WHERE id = $1",
    )
    .bind(customer_id)
    .execute(&mut *conn)
    .await?;

    let erasure = Erasure {
        customer_id,
        tickets: tickets.len() as i64,
        messages: messages as i64,
        attachments: attachments as i64,
        contracts: contracts as i64,
        object_keys,
    };
    audit::record(
        conn,
        actor,
        "customer",
        &customer_id.to_string(),
        "erased",
        &json!({"tickets": erasure.tickets, "messages": erasure.messages,
                "attachments": erasure.attachments, "contracts": erasure.contracts}),
    )
    .await?;
    Ok(erasure)
}

/// Deletes up to `limit` tickets closed more than `days` days ago, with everything that hangs off
/// them; tickets that are AI quality test cases are kept. Returns the deleted ticket count and the
/// object keys to delete. Replicas running this at once skip each other's rows.
pub async fn purge_closed_tickets(
    conn: &mut PgConnection,
    days: i64,
    limit: i64,
) -> Result<(i64, Vec<String>)> {
    if days <= 0 {
        return Ok((0, Vec::new()));
    }
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM tickets t
          WHERE status = 'closed' AND closed_at < now() - make_interval(days => $1::int)
            AND NOT EXISTS (SELECT 1 FROM ai_test_cases c WHERE c.ticket_id = t.id)
          ORDER BY closed_at LIMIT $2
          FOR UPDATE SKIP LOCKED",
    )
    .bind(days)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    if ids.is_empty() {
        return Ok((0, Vec::new()));
    }
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT object_key FROM attachments WHERE ticket_id = ANY($1)
         UNION SELECT raw_object_key FROM messages WHERE ticket_id = ANY($1) AND raw_object_key IS NOT NULL",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM stage_runs WHERE ticket_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM tickets WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    audit::record(
        conn,
        "retention",
        "ticket",
        "*",
        "purged",
        &json!({"tickets": ids, "olderThanDays": days}),
    )
    .await?;
    Ok((ids.len() as i64, keys))
}
