//! The stage's handle on the world: the transaction, and every side effect, which a test run
//! records instead of applying.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchyard_domain::{InboundTicket, TicketStatus};
use switchyard_store::routing;
use switchyard_store::tickets::{self, Stored, TicketPatch};
use switchyard_store::{PgConnection, Postgres, Transaction};

use crate::StageError;

/// Whether effects happen or are only written down (AI quality check runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectMode {
    Apply,
    RecordOnly,
}

/// An event to publish on `events.<name>` once the transaction committed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PendingEvent {
    pub name: String,
    pub data: Value,
}

pub struct StageCx {
    pub(crate) tx: Transaction<'static, Postgres>,
    pub(crate) mode: EffectMode,
    pub(crate) actor: String,
    pub(crate) status: Option<TicketStatus>,
    pub(crate) recorded: Vec<Value>,
    pub(crate) events: Vec<PendingEvent>,
}

impl StageCx {
    pub(crate) fn new(tx: Transaction<'static, Postgres>, actor: String) -> Self {
        StageCx {
            tx,
            mode: EffectMode::Apply,
            actor,
            status: None,
            recorded: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Prepares for the next message in this transaction.
    pub(crate) fn begin_work(&mut self, mode: EffectMode, status: Option<TicketStatus>) {
        self.mode = mode;
        self.status = status;
        self.recorded.clear();
        self.events.clear();
    }

    /// The effects recorded and the events emitted by the message just processed.
    pub(crate) fn take_effects(&mut self) -> (Vec<Value>, Vec<PendingEvent>) {
        (
            std::mem::take(&mut self.recorded),
            std::mem::take(&mut self.events),
        )
    }

    /// For reads. Writes go through the effect methods below.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub fn mode(&self) -> &EffectMode {
        &self.mode
    }

    /// The ticket's status, read under its row lock at the start of this stage.
    pub fn ticket_status(&self) -> Option<TicketStatus> {
        self.status
    }

    /// The audit actor of this stage: `service:<stage>@<replica>`.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    pub async fn patch_ticket(
        &mut self,
        ticket_id: i64,
        patch: &TicketPatch,
    ) -> Result<(), StageError> {
        match self.mode {
            EffectMode::Apply => {
                tickets::apply_patch(&mut self.tx, ticket_id, patch, &self.actor).await?;
            }
            EffectMode::RecordOnly => self
                .recorded
                .push(json!({"effect": "patchTicket", "ticketId": ticket_id, "patch": patch})),
        }
        Ok(())
    }

    /// Records what was read out of an attachment (ai).
    pub async fn finish_extraction(
        &mut self,
        attachment_id: i64,
        success: bool,
        extracted_data: Option<&Value>,
        extraction_data: Option<&Value>,
    ) -> Result<(), StageError> {
        match self.mode {
            EffectMode::Apply => {
                switchyard_store::extraction::finish(
                    &mut self.tx,
                    attachment_id,
                    success,
                    extracted_data,
                    extraction_data,
                )
                .await?
            }
            EffectMode::RecordOnly => self.recorded.push(json!({
                "effect": "finishExtraction", "attachmentId": attachment_id, "success": success,
                "extractedData": extracted_data, "extractionData": extraction_data,
            })),
        }
        Ok(())
    }

    /// Records a detected intent (ai), or completes the active one of the same agent.
    pub async fn upsert_intent(
        &mut self,
        ticket_id: i64,
        message_id: i64,
        intent: &switchyard_store::intents::NewIntent,
    ) -> Result<(), StageError> {
        match self.mode {
            EffectMode::Apply => {
                switchyard_store::intents::upsert(&mut self.tx, ticket_id, message_id, intent)
                    .await?;
            }
            EffectMode::RecordOnly => self.recorded.push(json!({
                "effect": "upsertIntent", "ticketId": ticket_id, "code": intent.code,
                "confidence": intent.confidence, "data": intent.data, "status": intent.status,
            })),
        }
        Ok(())
    }

    /// Replaces the ticket's automatically assigned tags (router).
    pub async fn set_auto_tags(
        &mut self,
        ticket_id: i64,
        tags: &routing::TicketTagging,
    ) -> Result<(), StageError> {
        match self.mode {
            EffectMode::Apply => routing::set_auto_tags(&mut self.tx, ticket_id, tags).await?,
            EffectMode::RecordOnly => self
                .recorded
                .push(json!({"effect": "setTags", "ticketId": ticket_id, "tags": tags})),
        }
        Ok(())
    }

    /// Assigns the ticket to an agent (router: a follow-up goes back to the last agent).
    pub async fn assign_agent(
        &mut self,
        ticket_id: i64,
        agent: Option<i64>,
    ) -> Result<(), StageError> {
        match self.mode {
            EffectMode::Apply => routing::assign_agent(&mut self.tx, ticket_id, agent).await?,
            EffectMode::RecordOnly => self
                .recorded
                .push(json!({"effect": "assignAgent", "ticketId": ticket_id, "agentId": agent})),
        }
        Ok(())
    }

    /// Records when the customer last wrote (queue order by customer message).
    pub async fn touch_customer_message(
        &mut self,
        ticket_id: i64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StageError> {
        if self.mode == EffectMode::Apply {
            routing::touch_customer_message(&mut self.tx, ticket_id, at).await?;
        }
        Ok(())
    }

    /// Stores an inbound item as a ticket and message (ingest). Test runs replay stored tickets
    /// and never create one.
    pub async fn store_inbound(
        &mut self,
        key: &str,
        t: &InboundTicket,
        body_plain: Option<&str>,
        received_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Stored, StageError> {
        if self.mode == EffectMode::RecordOnly {
            return Err(StageError::Permanent(
                "a test run cannot create tickets".into(),
            ));
        }
        Ok(
            tickets::insert_inbound(&mut self.tx, key, t, body_plain, received_at, &self.actor)
                .await?,
        )
    }

    /// Stores a parsed mail as a new ticket or a message of `thread` (ingest), with its
    /// attachments and flags. Test runs never create tickets.
    pub async fn store_mail(
        &mut self,
        key: &str,
        thread: Option<i64>,
        mail: &switchyard_store::mail::MailRecord,
        received_at: chrono::DateTime<chrono::Utc>,
        reopen: bool,
    ) -> Result<Stored, StageError> {
        if self.mode == EffectMode::RecordOnly {
            return Err(StageError::Permanent(
                "a test run cannot create tickets".into(),
            ));
        }
        Ok(switchyard_store::mail::insert_mail(
            &mut self.tx,
            key,
            thread,
            mail,
            received_at,
            reopen,
            &self.actor,
        )
        .await?)
    }

    /// Emits `events.<name>` after commit (recorded only in a test run).
    pub fn emit(&mut self, name: &str, data: Value) {
        match self.mode {
            EffectMode::Apply => self.events.push(PendingEvent {
                name: name.to_owned(),
                data,
            }),
            EffectMode::RecordOnly => self
                .recorded
                .push(json!({"effect": "event", "name": name, "data": data})),
        }
    }
}
