//! The ingest stage: stores each inbound item as a ticket with its first message (or as a
//! further message of a known ticket) and hands it to the ai stage.

use switchyard_domain::{Envelope, InboundEnvelope, Stage, ENVELOPE_VERSION};
use switchyard_stage::{StageCx, StageError, StageHandler, StageOutput, WorkKey};

pub struct Ingest;

impl StageHandler for Ingest {
    const STAGE: Stage = Stage::Ingest;
    type Input = InboundEnvelope;

    fn key(input: &InboundEnvelope) -> WorkKey {
        WorkKey {
            input_key: input.key.clone(),
            test_run_key: String::new(),
            ticket_id: None,
            reply: input.reply.clone(),
        }
    }

    async fn process(
        &self,
        cx: &mut StageCx,
        input: &InboundEnvelope,
    ) -> Result<StageOutput, StageError> {
        if input.v != ENVELOPE_VERSION {
            return Err(StageError::Permanent(format!(
                "unsupported envelope version {}",
                input.v
            )));
        }
        let ticket = input.ticket.clone().without_nul();
        let plain = ticket.body.as_deref().map(body_plain);
        let stored = cx
            .store_inbound(&input.key, &ticket, plain.as_deref(), input.received_at)
            .await?;
        tracing::debug!(
            ticket_id = stored.ticket_id,
            message_id = stored.message_id,
            "stored"
        );
        // Ingest answers the API itself when asked to; later reply points travel on.
        let reply = input.reply.clone().filter(|r| r.after != Stage::Ingest);
        Ok(StageOutput {
            ticket_id: stored.ticket_id,
            message_id: stored.message_id,
            outcome: serde_json::json!({
                "result": if stored.new_ticket { "ticketCreated" } else { "messageAdded" },
                "messageId": stored.message_id,
            }),
            next: Some(Envelope {
                v: ENVELOPE_VERSION,
                ticket_id: stored.ticket_id,
                message_id: stored.message_id,
                test_run_id: None,
                reply,
            }),
        })
    }
}

/// Plain text of a body that may be HTML: what the AI reads and agents search.
pub fn body_plain(body: &str) -> String {
    let looks_like_html = body.contains('<') && body.contains('>');
    if !looks_like_html {
        return body.trim().to_owned();
    }
    match html2text::config::plain()
        .no_link_wrapping()
        .string_from_read(body.as_bytes(), 10_000)
    {
        Ok(text) => text.trim().to_owned(),
        // Malformed HTML still yields its text rather than nothing.
        Err(_) => body.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_bodies_become_paragraphs_of_text() {
        let plain = body_plain("<p>Sehr geehrter Kundenservice,</p><p>Ich danke Ihnen, Tom</p>");
        assert!(plain.starts_with("Sehr geehrter Kundenservice,"), "{plain}");
        assert!(plain.contains("\n"), "{plain}");
        assert!(plain.ends_with("Ich danke Ihnen, Tom"), "{plain}");
        assert!(!plain.contains("<p>"));
    }

    #[test]
    fn plain_bodies_stay_as_they_are() {
        assert_eq!(body_plain("  5 < 7 is true  "), "5 < 7 is true");
    }
}
