//! The ai stage: reads each inbound message and records what it understood. This first version
//! detects the language (lingua, restricted to the configured languages); the AI processing issue
//! adds sentiment, intents, parameters, identification and attachments.

pub use switchyard_nlp::LanguageDetector;

use serde_json::json;
use switchyard_domain::{Envelope, Stage};
use switchyard_stage::{envelope_key, StageCx, StageError, StageHandler, StageOutput, WorkKey};
use switchyard_store::settings::SettingsCache;
use switchyard_store::tickets::{self, TicketPatch};

pub struct Ai {
    settings: SettingsCache,
    languages: LanguageDetector,
}

impl Ai {
    pub fn new(settings: SettingsCache) -> Self {
        Ai {
            settings,
            languages: LanguageDetector::default(),
        }
    }
}

impl StageHandler for Ai {
    const STAGE: Stage = Stage::Ai;
    type Input = Envelope;

    fn key(input: &Envelope) -> WorkKey {
        envelope_key(input)
    }

    async fn process(&self, cx: &mut StageCx, input: &Envelope) -> Result<StageOutput, StageError> {
        let message = tickets::message_text(cx.conn(), input.message_id).await?;
        let allowed = self.settings.get_strings("languages").await?;
        let text = format!(
            "{}\n{}",
            message.subject.as_deref().unwrap_or_default(),
            message.body_plain.as_deref().unwrap_or_default()
        );
        let detected = self.languages.detect(&text, &allowed);

        let mut patch = TicketPatch::default();
        let outcome = match &detected {
            Some(d) => {
                patch.language = Some(d.name.clone());
                patch.language_code = Some(d.code.clone());
                json!({"result": "analyzed", "languageCode": d.code, "languageConfidence": d.confidence})
            }
            None => {
                json!({"result": "analyzed", "languageCode": null, "reason": "no text to detect a language in"})
            }
        };
        cx.patch_ticket(input.ticket_id, &patch).await?;
        let event = if message.is_first {
            "TicketCreated"
        } else {
            "TicketResponse"
        };
        cx.emit(
            event,
            json!({"ticketId": input.ticket_id, "messageId": input.message_id}),
        );
        Ok(StageOutput {
            ticket_id: input.ticket_id,
            message_id: input.message_id,
            outcome,
            next: Some(Envelope {
                reply: input.reply.clone().filter(|r| r.after != Stage::Ai),
                ..input.clone()
            }),
        })
    }
}
