//! What executing an AI agent reads and writes: the ticket's facts the dark-processing gates
//! check, the intents to execute, and the ERP mirror's writes (meter readings, contract
//! changes), each traceable to the intent that made it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, Row};

use crate::{audit, Result, StoreError};

/// The ticket as the gates see it, read under its row lock.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketFacts {
    pub id: i64,
    pub status: String,
    pub spam_status: Option<String>,
    pub channel: String,
    pub direction: String,
    pub contract_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub customer_legitimation: i32,
    pub ai_support_level: String,
    pub language_code: Option<String>,
    pub from_addr: Option<String>,
    /// Inbound customer messages on the ticket (the first mail counts).
    pub inbound_messages: i64,
    pub last_customer_message_at: Option<DateTime<Utc>>,
}

/// Locks the ticket's row for the transaction and reads its facts: executions on one ticket
/// run one after the other, and each sees what the one before it changed.
pub async fn lock_facts(conn: &mut PgConnection, ticket_id: i64) -> Result<Option<TicketFacts>> {
    let row = sqlx::query(
        "SELECT t.id, t.status, t.spam_status, t.channel, t.direction, t.contract_id, t.customer_id,
                t.customer_legitimation, t.language_code, t.from_addr, t.ai_support_level,
                (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id AND m.direction = 'in'),
                coalesce(t.last_customer_message_at, t.created_at)
           FROM tickets t WHERE t.id = $1 FOR UPDATE OF t",
    )
    .bind(ticket_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| TicketFacts {
        id: r.get(0),
        status: r.get(1),
        spam_status: r.get(2),
        channel: r.get(3),
        direction: r.get(4),
        contract_id: r.get(5),
        customer_id: r.get(6),
        customer_legitimation: r.get(7),
        language_code: r.get(8),
        from_addr: r.get(9),
        ai_support_level: r.get(10),
        inbound_messages: r.get(11),
        last_customer_message_at: r.get(12),
    }))
}

/// An intent as execution needs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentRow {
    pub id: i64,
    pub ticket_id: i64,
    pub ai_agent_id: Option<i64>,
    pub code: String,
    pub name: Option<String>,
    pub confidence: f32,
    pub data: Value,
    pub status: String,
    pub contract_id: Option<i64>,
}

const INTENT_COLUMNS: &str =
    "id, ticket_id, ai_agent_id, code, name, confidence, data, status, contract_id";

fn intent_row(r: &sqlx::postgres::PgRow) -> IntentRow {
    IntentRow {
        id: r.get(0),
        ticket_id: r.get(1),
        ai_agent_id: r.get(2),
        code: r.get(3),
        name: r.get(4),
        confidence: r.get(5),
        data: r.get(6),
        status: r.get(7),
        contract_id: r.get(8),
    }
}

/// The ticket's active intents (`preview`, `ready`, `invalidated`), oldest first.
pub async fn active_intents(conn: &mut PgConnection, ticket_id: i64) -> Result<Vec<IntentRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {INTENT_COLUMNS} FROM intents
          WHERE ticket_id = $1 AND status IN ('preview', 'ready', 'invalidated') ORDER BY id"
    ))
    .bind(ticket_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(intent_row).collect())
}

pub async fn intent(conn: &mut PgConnection, id: i64) -> Result<Option<IntentRow>> {
    let row = sqlx::query(&format!(
        "SELECT {INTENT_COLUMNS} FROM intents WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(intent_row))
}

/// Phase 1's result on the intent: what a person sees and may choose.
pub async fn set_options(
    conn: &mut PgConnection,
    intent_id: i64,
    options: &Value,
    infos: &Value,
) -> Result<()> {
    sqlx::query("UPDATE intents SET options = $2, infos = $3, modified_at = now() WHERE id = $1")
        .bind(intent_id)
        .bind(options)
        .bind(infos)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks the intent executed with its outcome (history: a later message starts a new intent).
pub async fn mark_executed(
    conn: &mut PgConnection,
    intent_id: i64,
    data: &Value,
    outcome: &Value,
    actor: audit::Actor<'_>,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE intents SET status = 'executed', data = $2, outcome = $3, executed_at = now(),
                executed_by = $4, modified_at = now()
          WHERE id = $1 AND status IN ('preview', 'ready', 'invalidated')",
    )
    .bind(intent_id)
    .bind(data)
    .bind(outcome)
    .bind(actor)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::invalid(
            "intentId",
            format!("intent {intent_id} is not active (already executed or deleted)"),
        ));
    }
    audit::record(
        conn,
        actor,
        "intent",
        &intent_id.to_string(),
        "executed",
        outcome,
    )
    .await
}

/// The contract fields agents read and change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractFacts {
    pub id: i64,
    pub customer_id: i64,
    pub status: String,
    pub counter_number: Option<String>,
    pub iban: Option<String>,
    pub monthly_deposit: Option<f64>,
    pub delivery_address: Option<String>,
    pub end_date: Option<DateTime<Utc>>,
    /// The latest stored meter reading: (value, date).
    pub last_reading: Option<(f64, NaiveDate)>,
}

pub async fn contract_facts(conn: &mut PgConnection, id: i64) -> Result<Option<ContractFacts>> {
    let row = sqlx::query(
        "SELECT c.id, c.customer_id, c.status, c.counter_number, c.iban, c.monthly_deposit::float8,
                c.delivery_address, c.end_date, r.value::float8, r.reading_date
           FROM contracts c
           LEFT JOIN LATERAL (SELECT value, reading_date FROM meter_readings
                               WHERE contract_id = c.id ORDER BY reading_date DESC, id DESC LIMIT 1) r
                  ON true
          WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| {
        let value: Option<f64> = r.get(8);
        let date: Option<NaiveDate> = r.get(9);
        ContractFacts {
            id: r.get(0),
            customer_id: r.get(1),
            status: r.get(2),
            counter_number: r.get(3),
            iban: r.get(4),
            monthly_deposit: r.get(5),
            delivery_address: r.get(6),
            end_date: r.get(7),
            last_reading: value.zip(date),
        }
    }))
}

/// Where a write came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub ticket_id: i64,
    pub intent_id: i64,
    pub actor: audit::Actor<'a>,
}

/// Stores a meter reading (once per intent). Returns the reading's id.
pub async fn store_meter_reading(
    conn: &mut PgConnection,
    contract_id: i64,
    meter_number: &str,
    value: f64,
    date: NaiveDate,
    origin: Origin<'_>,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO meter_readings (contract_id, meter_number, value, reading_date, ticket_id,
                                     intent_id, created_by)
         VALUES ($1, $2, $3::float8::numeric, $4, $5, $6, $7)
         ON CONFLICT (intent_id) DO UPDATE SET intent_id = EXCLUDED.intent_id
         RETURNING id",
    )
    .bind(contract_id)
    .bind(meter_number)
    .bind(value)
    .bind(date)
    .bind(origin.ticket_id)
    .bind(origin.intent_id)
    .bind(origin.actor)
    .fetch_one(&mut *conn)
    .await?;
    audit::record(
        conn,
        origin.actor,
        "contract",
        &contract_id.to_string(),
        "meterReadingStored",
        &json!({"meterNumber": meter_number, "value": value, "readingDate": date, "intentId": origin.intent_id}),
    )
    .await?;
    Ok(id)
}

/// The meter readings of a contract, newest first.
pub async fn meter_readings(conn: &mut PgConnection, contract_id: i64) -> Result<Vec<Value>> {
    Ok(sqlx::query_scalar(
        "SELECT jsonb_build_object('id', id, 'contractId', contract_id, 'meterNumber', meter_number,
                'value', value::float8, 'readingDate', to_char(reading_date, 'YYYY-MM-DD'),
                'ticketId', ticket_id, 'intentId', intent_id, 'createdBy', created_by)
           FROM meter_readings WHERE contract_id = $1 ORDER BY reading_date DESC, id DESC",
    )
    .bind(contract_id)
    .fetch_all(conn)
    .await?)
}

/// A change to a contract's own fields.
#[derive(Debug, Clone, PartialEq)]
pub enum ContractChange {
    Iban(String),
    MonthlyDeposit(f64),
    /// The customer moves: the new delivery address from the date.
    Move {
        date: NaiveDate,
        new_address: String,
    },
    /// The contract ends on the date.
    Cancellation {
        date: NaiveDate,
    },
}

impl ContractChange {
    pub fn kind(&self) -> &'static str {
        match self {
            ContractChange::Iban(_) => "iban",
            ContractChange::MonthlyDeposit(_) => "monthlyDeposit",
            ContractChange::Move { .. } => "move",
            ContractChange::Cancellation { .. } => "cancellation",
        }
    }
}

/// Applies a change to the contract and records before and after (once per intent and kind).
pub async fn change_contract(
    conn: &mut PgConnection,
    contract_id: i64,
    change: &ContractChange,
    origin: Origin<'_>,
) -> Result<Value> {
    let before: Value = sqlx::query_scalar(
        "SELECT jsonb_build_object('iban', iban, 'monthlyDeposit', monthly_deposit::float8,
                'deliveryAddress', delivery_address, 'status', status,
                'endDate', to_char(end_date AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'move', data->'move')
           FROM contracts WHERE id = $1 FOR UPDATE",
    )
    .bind(contract_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("contract {contract_id}")))?;
    let after = match change {
        ContractChange::Iban(iban) => {
            sqlx::query("UPDATE contracts SET iban = $2, modified_at = now() WHERE id = $1")
                .bind(contract_id)
                .bind(iban)
                .execute(&mut *conn)
                .await?;
            json!({"iban": iban})
        }
        ContractChange::MonthlyDeposit(amount) => {
            sqlx::query(
                "UPDATE contracts SET monthly_deposit = $2::float8::numeric, modified_at = now() WHERE id = $1",
            )
            .bind(contract_id)
            .bind(amount)
            .execute(&mut *conn)
            .await?;
            json!({"monthlyDeposit": amount})
        }
        ContractChange::Move { date, new_address } => {
            let mv = json!({"date": date, "newAddress": new_address});
            sqlx::query(
                "UPDATE contracts SET data = jsonb_set(data, '{move}', $2), modified_at = now() WHERE id = $1",
            )
            .bind(contract_id)
            .bind(&mv)
            .execute(&mut *conn)
            .await?;
            json!({"move": mv})
        }
        ContractChange::Cancellation { date } => {
            sqlx::query(
                "UPDATE contracts SET status = 'cancelled', end_date = $2::date::timestamptz,
                        modified_at = now() WHERE id = $1",
            )
            .bind(contract_id)
            .bind(date)
            .execute(&mut *conn)
            .await?;
            json!({"status": "cancelled", "endDate": date})
        }
    };
    sqlx::query(
        "INSERT INTO contract_changes (contract_id, kind, before, after, ticket_id, intent_id, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (intent_id, kind) DO NOTHING",
    )
    .bind(contract_id)
    .bind(change.kind())
    .bind(&before)
    .bind(&after)
    .bind(origin.ticket_id)
    .bind(origin.intent_id)
    .bind(origin.actor)
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        origin.actor,
        "contract",
        &contract_id.to_string(),
        change.kind(),
        &json!({"before": before, "after": after, "intentId": origin.intent_id}),
    )
    .await?;
    Ok(after)
}

/// Tickets whose scheduled dark processing is due, locked for this worker (others skip them).
pub async fn due_auto_executions(conn: &mut PgConnection, limit: i64) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM tickets
          WHERE auto_execute_at <= now() AND status = 'open'
          ORDER BY auto_execute_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Sets or clears when dark processing runs the ticket.
pub async fn set_auto_execute_at(
    conn: &mut PgConnection,
    ticket_id: i64,
    at: Option<DateTime<Utc>>,
) -> Result<()> {
    sqlx::query("UPDATE tickets SET auto_execute_at = $2 WHERE id = $1")
        .bind(ticket_id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}
