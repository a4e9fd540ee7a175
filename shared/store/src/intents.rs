//! Intents: the AI agents detected on a ticket, with their extracted parameters and status.

use serde_json::Value;
use sqlx::PgConnection;

use crate::Result;

/// One detected agent, as the ai stage records it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIntent {
    pub ai_agent_id: i64,
    pub code: String,
    pub name: String,
    pub confidence: f32,
    pub data: Value,
    /// `preview` or `ready`.
    pub status: &'static str,
    pub infos: Value,
    pub contract_id: Option<i64>,
}

const INTENT_JSON: &str = "jsonb_build_object('id', i.id, 'ticketId', i.ticket_id, 'messageId', i.message_id,
        'code', i.code, 'name', i.name, 'aiAgentId', i.ai_agent_id, 'contractId', i.contract_id,
        'confidence', round(i.confidence::numeric, 3), 'data', i.data, 'status', i.status, 'infos', i.infos,
        'outcome', i.outcome,
        'createdAt', to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
        'modifiedAt', to_char(i.modified_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))";

/// Records an intent: a new one, or an update of the active one of the same agent and contract
/// (a follow-up message completes the parameters of the first). Executed intents stay history.
pub async fn upsert(
    conn: &mut PgConnection,
    ticket_id: i64,
    message_id: i64,
    intent: &NewIntent,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO intents (ticket_id, message_id, ai_agent_id, code, name, confidence, data, status,
                              infos, contract_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (ticket_id, code, coalesce(contract_id, 0))
             WHERE status IN ('preview', 'ready', 'invalidated')
         DO UPDATE SET message_id = EXCLUDED.message_id,
                       confidence = greatest(intents.confidence, EXCLUDED.confidence),
                       data = intents.data || EXCLUDED.data,
                       status = EXCLUDED.status, infos = EXCLUDED.infos, modified_at = now()
         RETURNING id",
    )
    .bind(ticket_id)
    .bind(message_id)
    .bind(intent.ai_agent_id)
    .bind(&intent.code)
    .bind(&intent.name)
    .bind(intent.confidence)
    .bind(&intent.data)
    .bind(intent.status)
    .bind(&intent.infos)
    .bind(intent.contract_id)
    .fetch_one(conn)
    .await?)
}

/// The data an active intent of the agent already holds on the ticket (from earlier messages).
pub async fn active_data(
    conn: &mut PgConnection,
    ticket_id: i64,
    code: &str,
) -> Result<Option<Value>> {
    Ok(sqlx::query_scalar(
        "SELECT data FROM intents WHERE ticket_id = $1 AND code = $2
            AND status IN ('preview', 'ready', 'invalidated') ORDER BY id DESC LIMIT 1",
    )
    .bind(ticket_id)
    .bind(code)
    .fetch_optional(conn)
    .await?)
}

/// The ticket's intents, not deleted, oldest first.
pub async fn by_ticket(conn: &mut PgConnection, ticket_id: i64) -> Result<Vec<Value>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT {INTENT_JSON} FROM intents i WHERE i.ticket_id = $1 AND i.status <> 'deleted' ORDER BY i.id"
    ))
    .bind(ticket_id)
    .fetch_all(conn)
    .await?)
}

/// Whether the ticket exists (an unknown ticket is a 404, not an empty list).
pub async fn ticket_exists(conn: &mut PgConnection, ticket_id: i64) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tickets WHERE id = $1)")
            .bind(ticket_id)
            .fetch_one(conn)
            .await?,
    )
}
