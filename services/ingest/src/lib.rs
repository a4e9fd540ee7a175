//! The ingest stage: stores each inbound item as a ticket with its first message (or as a
//! further message of a known ticket) and hands it to the ai stage.
//!
//! Mail (`inbound.email`) arrives as a pointer to the raw MIME in the object store. Ingest parses
//! it, threads it (In-Reply-To/References against stored Message-IDs first, then a `[#id]` in
//! the subject only when the sender is the ticket's), stores attachments, and flags what a person
//! must look at. Nothing is dropped: a mail that cannot be parsed, or is too large, still becomes
//! a ticket with the raw mail attached.

pub mod clean;
pub mod mail;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use switchyard_domain::{
    Channel, Envelope, InboundTicket, IngestInput, ProcessingFlag, RawMail, Stage, ENVELOPE_VERSION,
};
use switchyard_objects::{Objects, ObjectsError};
use switchyard_stage::{StageCx, StageError, StageHandler, StageOutput, WorkKey};
use switchyard_store::mail::{self as store_mail, AttachmentRecord, MailRecord};
use switchyard_store::settings::SettingsCache;
use switchyard_store::tickets::Stored;

/// Size limits: larger mails and attachments are kept and flagged for a person rather than
/// processed automatically.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_mail_bytes: u64,
    pub max_attachment_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_mail_bytes: 50 * 1024 * 1024,
            max_attachment_bytes: 25 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// From `MAIL_MAX_BYTES` and `ATTACHMENT_MAX_BYTES`; unset or unreadable values keep the
    /// defaults (50 MiB, 25 MiB).
    pub fn from_env() -> Limits {
        let d = Limits::default();
        let read = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        Limits {
            max_mail_bytes: read("MAIL_MAX_BYTES", d.max_mail_bytes),
            max_attachment_bytes: read("ATTACHMENT_MAX_BYTES", d.max_attachment_bytes),
        }
    }
}

pub struct Ingest {
    objects: Objects,
    settings: SettingsCache,
    limits: Limits,
}

impl Ingest {
    pub fn new(objects: Objects, settings: SettingsCache, limits: Limits) -> Self {
        Ingest {
            objects,
            settings,
            limits,
        }
    }
}

fn objects_error(e: ObjectsError) -> StageError {
    if e.is_transient() {
        StageError::Transient(e.to_string())
    } else {
        StageError::Permanent(e.to_string())
    }
}

impl StageHandler for Ingest {
    const STAGE: Stage = Stage::Ingest;
    type Input = IngestInput;

    fn key(input: &IngestInput) -> WorkKey {
        WorkKey {
            input_key: input.inbound.key.clone(),
            test_run_key: String::new(),
            ticket_id: None,
            reply: input.inbound.reply.clone(),
        }
    }

    async fn process(
        &self,
        cx: &mut StageCx,
        input: &IngestInput,
    ) -> Result<StageOutput, StageError> {
        let inbound = &input.inbound;
        if inbound.v != ENVELOPE_VERSION {
            return Err(StageError::Permanent(format!(
                "unsupported envelope version {}",
                inbound.v
            )));
        }
        let (stored, outcome) = match &input.mail {
            Some(raw) => self.store_mail(cx, input, raw).await?,
            None => {
                let ticket = inbound.ticket.clone().without_nul();
                let plain = ticket.body.as_deref().map(body_plain);
                let stored = cx
                    .store_inbound(&inbound.key, &ticket, plain.as_deref(), inbound.received_at)
                    .await?;
                (stored, serde_json::json!({}))
            }
        };
        tracing::debug!(
            ticket_id = stored.ticket_id,
            message_id = stored.message_id,
            "stored"
        );
        let mut outcome = outcome;
        outcome["result"] = serde_json::json!(if stored.new_ticket {
            "ticketCreated"
        } else {
            "messageAdded"
        });
        outcome["messageId"] = serde_json::json!(stored.message_id);
        // Ingest answers the API itself when asked to; later reply points travel on.
        let reply = inbound.reply.clone().filter(|r| r.after != Stage::Ingest);
        Ok(StageOutput {
            ticket_id: stored.ticket_id,
            message_id: stored.message_id,
            outcome,
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

impl Ingest {
    /// Parses, threads and stores one mail; the outcome says how it was threaded and flagged.
    async fn store_mail(
        &self,
        cx: &mut StageCx,
        input: &IngestInput,
        raw_ref: &RawMail,
    ) -> Result<(Stored, serde_json::Value), StageError> {
        let inbound = &input.inbound;
        let subchannel = inbound.ticket.subchannel_id;
        let raw = self
            .objects
            .get(&raw_ref.object_key)
            .await
            .map_err(objects_error)?;
        let mut flags = Vec::new();
        let flag = |code: &str, message: String| ProcessingFlag {
            code: code.to_owned(),
            message,
            stage: Some(Stage::Ingest.as_str().to_owned()),
            at: Some(chrono::Utc::now()),
        };
        let oversized = raw.len() as u64 > self.limits.max_mail_bytes;
        let parsed = if oversized {
            flags.push(flag(
                "oversizedMail",
                format!(
                    "the mail has {} bytes, more than the limit of {}; the raw mail is attached",
                    raw.len(),
                    self.limits.max_mail_bytes
                ),
            ));
            mail::parse_headers(&raw)
        } else {
            mail::parse(&raw)
        };
        let attach_raw = parsed.is_none() || oversized;
        let parsed = match parsed {
            Some(p) => p,
            None => {
                flags.push(flag(
                    "unparseableMail",
                    "the mail could not be parsed; the raw mail is attached".into(),
                ));
                mail::ParsedMail::default()
            }
        };

        // Threading: the mail's own thread headers first, then a ticket number in the subject,
        // and that only when the sender is the ticket's own (else anyone could write into
        // someone else's ticket by quoting its number).
        let mut thread_ids: Vec<String> = parsed.in_reply_to.clone();
        thread_ids.extend(parsed.references.iter().rev().cloned());
        let mut threaded_by = None;
        let mut thread = store_mail::find_thread(cx.conn(), subchannel, &thread_ids).await?;
        if thread.is_some() {
            threaded_by = Some("inReplyTo");
        } else if let (Some(id), Some(sender)) = (
            parsed.subject.as_deref().and_then(mail::subject_ticket_ref),
            parsed.from.as_deref(),
        ) {
            if store_mail::sender_matches(cx.conn(), id, sender).await? {
                thread = Some(id);
                threaded_by = Some("subjectReference");
            }
        }

        // Attachments: bytes to the object store under keys derived from the inbound key, so a
        // retried delivery overwrites rather than duplicates.
        let key_hash = hex::encode(&Sha256::digest(inbound.key.as_bytes())[..12]);
        let mut attachments = Vec::with_capacity(parsed.parts.len() + 1);
        if attach_raw {
            attachments.push(AttachmentRecord {
                name: "message.eml".into(),
                size: raw.len() as i64,
                width: None,
                height: None,
                inline: false,
                file_ending: Some("eml".into()),
                content_type: Some("message/rfc822".into()),
                object_key: raw_ref.object_key.clone(),
            });
        }
        for (i, part) in parsed.parts.iter().enumerate() {
            let size = part.bytes.len() as u64;
            if size > self.limits.max_attachment_bytes {
                flags.push(flag(
                    "oversizedAttachment",
                    format!(
                        "attachment {:?} has {size} bytes, more than the limit of {}",
                        part.name, self.limits.max_attachment_bytes
                    ),
                ));
            }
            let object_key = format!("attachments/{key_hash}/{i}");
            self.objects
                .put(&object_key, Bytes::from(part.bytes.clone()))
                .await
                .map_err(objects_error)?;
            let is_image = part
                .content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("image/"));
            let dims = is_image
                .then(|| imagesize::blob_size(&part.bytes).ok())
                .flatten();
            attachments.push(AttachmentRecord {
                name: part.name.replace('\0', ""),
                size: size as i64,
                width: dims.and_then(|d| i32::try_from(d.width).ok()),
                height: dims.and_then(|d| i32::try_from(d.height).ok()),
                inline: part.inline,
                file_ending: mail::file_ending(&part.name, part.content_type.as_deref()),
                content_type: part.content_type.clone(),
                object_key,
            });
        }

        let body = parsed.html.clone().or_else(|| parsed.text.clone());
        let plain = match (&parsed.text, &parsed.html) {
            (Some(t), _) => Some(t.trim().to_owned()),
            (None, Some(h)) => Some(body_plain(h)),
            (None, None) => None,
        };
        let ticket = InboundTicket {
            channel: Some(Channel::Email),
            from: parsed.from.clone(),
            from_name: parsed.from_name.clone(),
            to: parsed.to.clone(),
            cc: parsed.cc.clone(),
            subchannel_id: subchannel,
            subject: match (&parsed.subject, attach_raw && !oversized) {
                (Some(s), _) => Some(s.clone()),
                (None, true) => Some("(unreadable mail)".into()),
                (None, false) => None,
            },
            body,
            created_at: parsed.date.or(inbound.ticket.created_at),
            ..Default::default()
        }
        .without_nul();
        let plain = plain.map(|p| p.replace('\0', ""));
        let record = MailRecord {
            body_clean: plain.as_deref().map(clean::body_clean),
            body_plain: plain,
            ticket,
            mail_message_id: parsed.message_id.clone().map(|s| s.replace('\0', "")),
            in_reply_to: parsed.in_reply_to.first().map(|s| s.replace('\0', "")),
            references: parsed
                .references
                .iter()
                .map(|s| s.replace('\0', ""))
                .collect(),
            raw_object_key: raw_ref.object_key.clone(),
            auto_reply: parsed.auto_reply.map(str::to_owned),
            attachments,
            flags,
        };
        let reopen = self
            .settings
            .get_bool("reopenClosedTicketOnReply")
            .await
            .unwrap_or(true);
        let stored = cx
            .store_mail(&inbound.key, thread, &record, inbound.received_at, reopen)
            .await?;
        let outcome = serde_json::json!({
            "threadedBy": threaded_by,
            "autoReply": record.auto_reply,
            "attachments": record.attachments.len(),
            "flags": record.flags.iter().map(|f| f.code.clone()).collect::<Vec<_>>(),
        });
        Ok((stored, outcome))
    }
}

/// Plain text of a body that may be HTML: what the AI reads and agents search.
pub fn body_plain(body: &str) -> String {
    let looks_like_html = body.contains('<') && body.contains('>');
    if !looks_like_html {
        return body.trim().to_owned();
    }
    // Raw mode reads tables cell by cell: better text for the AI, and it avoids html2text's
    // table layout, which overflowed on real mails of the SpamAssassin corpus. Should the
    // renderer still panic on some input, the mail keeps a crude text rather than failing ingest.
    let rendered = std::panic::catch_unwind(|| {
        html2text::config::plain()
            .raw_mode(true)
            .no_link_wrapping()
            .string_from_read(body.as_bytes(), 10_000)
    });
    match rendered {
        Ok(Ok(text)) => text.trim().to_owned(),
        // Malformed HTML still yields its text rather than nothing.
        Ok(Err(_)) | Err(_) => strip_tags(body),
    }
}

/// Text without tags, for HTML the renderer cannot handle.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
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
    fn tables_are_read_cell_by_cell_and_tags_can_be_stripped() {
        let plain = body_plain("<table><tr><td>Zähler</td><td>12345</td></tr></table>");
        assert!(
            plain.contains("Zähler") && plain.contains("12345"),
            "{plain}"
        );
        assert_eq!(strip_tags("<p>a</p><br>b"), "a b");
    }

    #[test]
    fn plain_bodies_stay_as_they_are() {
        assert_eq!(body_plain("  5 < 7 is true  "), "5 < 7 is true");
    }
}
