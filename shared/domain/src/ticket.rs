//! The ticket as the API returns it: the seed's JSON, plus `processingFlags` (our addition).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::enums::*;
use crate::time::ticket_time_opt;

/// Why a ticket needs a person although nothing about its content asked for one: an unparseable
/// mail, an oversized part, a dead-lettered stage. Codes are stable; messages are for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessingFlag {
    /// Stable code, e.g. `deadLettered`.
    pub code: String,
    pub message: String,
    /// The stage that raised the flag, when a stage did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(with = "ticket_time_opt", default)]
    #[schema(value_type = Option<String>, example = "2022-12-13 22:18:06")]
    pub at: Option<DateTime<Utc>>,
}

/// The full ticket (`GET /api/mind/ticket/{ticketId}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub id: i64,
    pub direction: Direction,
    pub from: Option<String>,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub cc_emails: Vec<String>,
    pub reply_cc_emails: Vec<String>,
    pub subchannel_id: Option<i64>,
    pub external_ticket_id: Option<String>,
    pub sentiment: Option<Sentiment>,
    pub language: Option<String>,
    pub language_code: Option<String>,
    /// ISO 8601, unlike the other ticket timestamps (as in the seed).
    pub auto_execute_at: Option<DateTime<Utc>>,
    pub ai_support_level: AiSupportLevel,
    pub spam_status: Option<String>,
    pub is_customer_active: bool,
    pub interface: Interface,
    pub priority: Priority,
    pub channel: Channel,
    pub channel_id: Option<String>,
    pub status: TicketStatus,
    pub summary: Option<String>,
    pub subject: Option<String>,
    pub body_plain: Option<String>,
    pub body: Option<String>,
    pub body_clean: Option<String>,
    pub is_escalated: bool,
    #[serde(with = "ticket_time_opt")]
    #[schema(value_type = Option<String>, example = "2022-12-13 22:18:06")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(with = "ticket_time_opt")]
    #[schema(value_type = Option<String>, example = "2022-12-13 22:18:06")]
    pub modified_at: Option<DateTime<Utc>>,
    #[serde(with = "ticket_time_opt")]
    #[schema(value_type = Option<String>, example = "2022-12-14 22:18:06")]
    pub first_response_due_by: Option<DateTime<Utc>>,
    #[serde(with = "ticket_time_opt")]
    #[schema(value_type = Option<String>, example = "2022-12-15 22:18:06")]
    pub due_by: Option<DateTime<Utc>>,
    #[serde(with = "ticket_time_opt")]
    #[schema(value_type = Option<String>)]
    pub closed_at: Option<DateTime<Utc>>,
    /// The customer record (ERP mirror), when identified.
    pub customer: Option<Value>,
    pub customer_id: Option<String>,
    pub contract_id: Option<String>,
    pub partner_id: Option<i64>,
    pub customer_legitimation: i32,
    pub responder_id: Option<i64>,
    pub agent_id: Option<i64>,
    pub agent: Option<Value>,
    pub assigned_agent_ids: Vec<i64>,
    pub assigned_agents: Vec<Value>,
    pub worked_on_by_ids: Vec<i64>,
    pub worked_on_by: Vec<Value>,
    pub attachments: Vec<Value>,
    pub additional_data: Value,
    pub template: Option<String>,
    pub tags: Vec<Value>,
    /// Why this ticket needs a person regardless of its content (our addition to the seed).
    pub processing_flags: Vec<ProcessingFlag>,
}
