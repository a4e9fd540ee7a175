//! The router stage: sets the ticket's due dates and hands it on. This first version applies the
//! default SLA in wall-clock hours; the routing issue adds tags, skills, business hours and queues.

use chrono::Duration;
use serde_json::json;
use switchyard_domain::{Envelope, Stage, TicketStatus};
use switchyard_stage::{envelope_key, StageCx, StageError, StageHandler, StageOutput, WorkKey};
use switchyard_store::settings::SettingsCache;
use switchyard_store::tickets::{self, TicketPatch};

pub struct Router {
    settings: SettingsCache,
}

impl Router {
    pub fn new(settings: SettingsCache) -> Self {
        Router { settings }
    }
}

fn hours(h: f64) -> Duration {
    Duration::seconds((h * 3600.0).round() as i64)
}

impl StageHandler for Router {
    const STAGE: Stage = Stage::Router;
    type Input = Envelope;

    fn key(input: &Envelope) -> WorkKey {
        envelope_key(input)
    }

    async fn process(&self, cx: &mut StageCx, input: &Envelope) -> Result<StageOutput, StageError> {
        let next = Some(input.clone());
        // A ticket closed meanwhile (by a hook or an agent) is never queued.
        if matches!(
            cx.ticket_status(),
            Some(TicketStatus::Closed | TicketStatus::Resolved)
        ) {
            return Ok(StageOutput {
                ticket_id: input.ticket_id,
                message_id: input.message_id,
                outcome: json!({"result": "skipped", "reason": "ticket is closed"}),
                next,
            });
        }
        let created = tickets::created_at(cx.conn(), input.ticket_id).await?;
        let sla = self.settings.get_f64("defaultSlaHours").await?;
        let first = self.settings.get_f64("firstResponseHours").await?;
        let patch = TicketPatch {
            due_by: Some(created + hours(sla)),
            first_response_due_by: Some(created + hours(first)),
            ..Default::default()
        };
        cx.patch_ticket(input.ticket_id, &patch).await?;
        cx.emit(
            "TicketRouted",
            json!({"ticketId": input.ticket_id, "dueBy": patch.due_by, "firstResponseDueBy": patch.first_response_due_by}),
        );
        Ok(StageOutput {
            ticket_id: input.ticket_id,
            message_id: input.message_id,
            outcome: json!({
                "result": "routed",
                "slaHours": sla,
                "dueBy": patch.due_by,
                "firstResponseDueBy": patch.first_response_due_by,
            }),
            next,
        })
    }
}
