//! The autoexecute stage: decides whether a ticket is answered without a person. Until AI agents
//! can execute (the dark-processing issue), every ticket is handed to a person, and the gate that
//! stopped it is recorded.

use serde_json::json;
use switchyard_domain::{AiSupportLevel, Envelope, Stage, TicketStatus};
use switchyard_stage::{envelope_key, StageCx, StageError, StageHandler, StageOutput, WorkKey};
use switchyard_store::settings::SettingsCache;
use switchyard_store::tickets::{self, TicketPatch};

pub struct Autoexecute {
    settings: SettingsCache,
}

impl Autoexecute {
    pub fn new(settings: SettingsCache) -> Self {
        Autoexecute { settings }
    }
}

impl StageHandler for Autoexecute {
    const STAGE: Stage = Stage::Autoexecute;
    type Input = Envelope;

    fn key(input: &Envelope) -> WorkKey {
        envelope_key(input)
    }

    async fn process(&self, cx: &mut StageCx, input: &Envelope) -> Result<StageOutput, StageError> {
        let (ticket_id, message_id) = (input.ticket_id, input.message_id);
        let done = |outcome| {
            Ok(StageOutput {
                ticket_id,
                message_id,
                outcome,
                next: None,
            })
        };
        if matches!(
            cx.ticket_status(),
            Some(TicketStatus::Closed | TicketStatus::Resolved)
        ) {
            return done(
                json!({"result": "skipped", "gate": "ticketOpen", "reason": "ticket is closed"}),
            );
        }
        let ready = tickets::ready_intent_count(cx.conn(), ticket_id).await?;
        let (gate, reason) = if ready == 0 {
            ("intentsPresent", "no AI agent is ready")
        } else if !self.settings.get_bool("enableAiAutoProcessing").await? {
            (
                "autoProcessingEnabled",
                "automatic processing is switched off",
            )
        } else {
            ("executorAvailable", "AI agents cannot be executed yet")
        };
        cx.patch_ticket(
            ticket_id,
            &TicketPatch {
                ai_support_level: Some(AiSupportLevel::Human),
                ..Default::default()
            },
        )
        .await?;
        done(json!({
            "result": "handedToHuman",
            "gate": gate,
            "reason": reason,
            "readyIntents": ready,
        }))
    }
}
