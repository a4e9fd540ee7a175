//! What one message says, computed without I/O: sentiment, spam status, summary and, per
//! detected agent, the parameters and the intent's status. The stage, the preview endpoint and
//! the evaluation command all call this, so they cannot disagree.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};
use switchyard_domain::AiAgent;
use switchyard_nlp::params::{self, Candidate, Context, Kind};
use switchyard_nlp::sentiment::{self, Sentiment};
use switchyard_nlp::spam::{self, MailFacts, SpamStatus};
use switchyard_nlp::{summary, text};

/// One agent's detection score on a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub slug: String,
    /// Calibrated 0..1.
    pub confidence: f32,
    /// Above the agent's threshold: the agent applies.
    pub detected: bool,
    /// The parts of the message that made the agent apply; parameters are looked for there first.
    pub evidence: Vec<String>,
}

/// Detects which agents a message wants. Implemented by the embedding detector; the stage swaps
/// in a new one whenever an agent changes.
pub trait Detector: Send + Sync {
    fn detect(&self, subject: &str, body: &str) -> Result<Vec<Scored>, String>;
}

/// The message as the analysis needs it.
#[derive(Debug, Clone)]
pub struct MessageInput<'a> {
    pub subject: &'a str,
    /// Plain text (HTML already converted).
    pub body: &'a str,
    pub from: Option<&'a str>,
    /// The mail's own date: relative dates resolve against it.
    pub date: DateTime<Utc>,
    pub channel: &'a str,
    /// `de`, `en`, …; number formats depend on it.
    pub language: &'a str,
    /// Marked as machine-sent by ingest (Auto-Submitted and the like).
    pub auto_submitted: bool,
}

impl<'a> MessageInput<'a> {
    /// The input for a stored message whose subject and plain body the caller holds.
    pub fn of(
        message: &'a switchyard_store::tickets::MessageText,
        subject: &'a str,
        body: &'a str,
        language: &'a str,
    ) -> Self {
        MessageInput {
            subject,
            body,
            from: message.from_addr.as_deref(),
            date: message.created_at,
            channel: &message.channel,
            language,
            auto_submitted: message.auto_reply.is_some(),
        }
    }
}

/// A value read from an attachment (a meter photo) that the text may lack.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentReading {
    pub attachment_id: i64,
    pub meter_value: f64,
    pub confidence: f32,
}

/// One detected agent with what was extracted for it.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentFound {
    pub agent_id: i64,
    pub slug: String,
    pub name: String,
    pub confidence: f32,
    pub data: Map<String, Value>,
    /// `ready` when every required parameter is present and valid, else `preview`.
    pub status: &'static str,
    /// Why the intent is not ready, and where values came from: `[{type, message}]`.
    pub infos: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub own_words: String,
    pub sentiment: Sentiment,
    pub spam: SpamStatus,
    pub summary: String,
    pub intents: Vec<IntentFound>,
}

/// Thresholds of the analysis an operator can set.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// A meter reading read from a photo below this confidence is never used for a `ready` intent.
    pub meter_ocr_confidence: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            meter_ocr_confidence: 0.8,
        }
    }
}

/// The local date of the mail in the service centre's time zone (a mail written at 00:30 in
/// Berlin means that day, not the UTC day before).
pub fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&chrono_tz::Europe::Berlin).date_naive()
}

/// Analyses a message against the agents, given the detector's scores.
pub fn analyze(
    input: &MessageInput,
    agents: &[AiAgent],
    scores: &[Scored],
    readings: &[AttachmentReading],
    thresholds: Thresholds,
) -> Analysis {
    let own_words = text::own_words(input.body);
    let spam = spam::classify(&MailFacts {
        from: input.from,
        subject: input.subject,
        body: input.body,
        auto_submitted: input.auto_submitted,
        list_unsubscribe: false,
    });
    let text = format!("{}\n{}", input.subject, own_words);
    let sentiment = sentiment::sentiment(&text);
    let cx = Context {
        reference: local_date(input.date),
        language: input.language,
    };
    let mut intents = Vec::new();
    // Machine-sent mail and spam want nothing: an out-of-office quoting our reply is no request.
    if spam == SpamStatus::Clean {
        for score in scores.iter().filter(|s| s.detected) {
            let Some(agent) = agents
                .iter()
                .find(|a| a.slug == score.slug && a.active && a.serves(input.channel))
            else {
                continue;
            };
            intents.push(extract(agent, score, &text, &cx, readings, thresholds));
        }
    }
    intents.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let names: Vec<&str> = intents.iter().map(|i| i.name.as_str()).collect();
    let summary = summary::summary(input.subject, &own_words, &names);
    Analysis {
        own_words,
        sentiment,
        spam,
        summary,
        intents,
    }
}

/// Spans of the evidence in the text, to prefer values the agent's own sentences hold.
fn evidence_spans(text: &str, evidence: &[String]) -> Vec<(usize, usize)> {
    evidence
        .iter()
        .filter_map(|e| text.find(e.as_str()).map(|at| (at, at + e.len())))
        .collect()
}

/// Whether the sentence holding the candidate has one of the (positive) cue words.
fn cue_in_sentence(text: &str, c: &Candidate, keywords: &[String]) -> bool {
    let start = text[..c.start]
        .rfind(['.', '!', '?', '\n'])
        .map_or(0, |i| i + 1);
    let end = text[c.end..]
        .find(['.', '!', '?', '\n'])
        .map_or(text.len(), |i| c.end + i);
    let sentence = text[start..end].to_lowercase();
    keywords
        .iter()
        .filter(|k| !k.starts_with('!'))
        .any(|k| sentence.contains(&k.to_lowercase()))
}

fn within(c: &Candidate, spans: &[(usize, usize)]) -> bool {
    spans.iter().any(|(a, b)| c.start >= *a && c.end <= *b)
}

/// The parameters of one detected agent, and whether the intent is ready.
fn extract(
    agent: &AiAgent,
    score: &Scored,
    text: &str,
    cx: &Context,
    readings: &[AttachmentReading],
    thresholds: Thresholds,
) -> IntentFound {
    let spans = evidence_spans(text, &score.evidence);
    let mut data = Map::new();
    let mut infos = Vec::new();
    let mut missing = Vec::new();
    for p in &agent.settings.parameters {
        if p.source != "message" {
            continue;
        }
        let kind = Kind::of(p.validation.as_deref(), Some(p.ty.as_str()));
        let found = kind
            .map(|k| params::candidates(k, text, cx))
            .unwrap_or_default();
        // The agent's own sentences have a head start: in "moving next Thursday; cancel by 1
        // November" each agent takes the date of its sentence.
        let mut picked = params::pick_favouring(&found, text, &p.keywords, &spans).cloned();
        let in_evidence = picked.as_ref().is_some_and(|c| within(c, &spans));
        // An optional value is taken only where its sentence says what it is: a reading date
        // must not be the move date of the next sentence.
        if !p.required && !in_evidence && !p.keywords.is_empty() {
            picked = picked.filter(|c| cue_in_sentence(text, c, &p.keywords));
        }
        match picked {
            Some(c) if c.problem.is_none() => {
                data.insert(p.key.clone(), c.value);
            }
            Some(c) => {
                infos.push(json!({"type": "danger", "parameter": p.key,
                    "message": format!("{}: {}", p.key, c.problem.unwrap_or_default())}));
                if p.required {
                    missing.push(p.key.clone());
                }
            }
            None => {
                if kind == Some(Kind::MeterReading) {
                    if let Some(r) = readings
                        .iter()
                        .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
                    {
                        if r.confidence >= thresholds.meter_ocr_confidence {
                            data.insert(p.key.clone(), params::number_value(r.meter_value));
                            infos.push(json!({"type": "neutral", "parameter": p.key,
                                "message": format!("{} read from attachment {} (confidence {:.2})", p.key, r.attachment_id, r.confidence)}));
                            continue;
                        }
                        infos.push(json!({"type": "warning", "parameter": p.key,
                            "message": format!("{} read from attachment {} with low confidence {:.2}: a person must confirm it", p.key, r.attachment_id, r.confidence)}));
                    }
                }
                if p.required {
                    missing.push(p.key.clone());
                }
            }
        }
    }
    if !missing.is_empty() {
        infos.push(json!({"type": "warning", "message": format!("missing or invalid: {}", missing.join(", "))}));
    }
    IntentFound {
        agent_id: agent.id,
        slug: agent.slug.clone(),
        name: agent.name.clone(),
        confidence: score.confidence,
        data,
        status: if missing.is_empty() {
            "ready"
        } else {
            "preview"
        },
        infos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents() -> Vec<AiAgent> {
        let mut list: Vec<AiAgent> =
            serde_json::from_str(switchyard_api_defaults()).unwrap_or_default();
        for (i, a) in list.iter_mut().enumerate() {
            a.id = i as i64 + 1;
        }
        list
    }

    /// The default agents as the API installs them.
    fn switchyard_api_defaults() -> &'static str {
        include_str!("../../../shared/store/defaults/ai_agents.json")
    }

    fn scored(slug: &str, evidence: &[&str]) -> Scored {
        Scored {
            slug: slug.to_owned(),
            confidence: 0.9,
            detected: true,
            evidence: evidence.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn input<'a>(subject: &'a str, body: &'a str) -> MessageInput<'a> {
        MessageInput {
            subject,
            body,
            from: Some("tom@mustermann.de"),
            // Tuesday 2022-12-13, the seed's ticket date.
            date: DateTime::parse_from_rfc3339("2022-12-13T22:18:06+01:00")
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or_default(),
            channel: "email",
            language: "de",
            auto_submitted: false,
        }
    }

    const TOM: &str = "Sehr geehrter Kundenservice,\n\nkönnten Sie bitte den beiliegenden Zählerstand meines Zählers in Ihr System eintragen und mir eine Zwischenrechnung zukommen lassen? Außerdem würde ich gerne zu meiner neuen Adresse Hugo-Junkers-Str. 5 in 82031 Grünwald wechseln. Ich ziehe nächsten Donnerstag ein. Können Sie meinen alten Vertrag zum 1. November für mich kündigen?\n\nIch danke Ihnen, Tom";

    #[test]
    fn the_seed_mail_gives_move_date_address_and_the_photo_reading() {
        let scores = vec![
            scored("meter_reading", &["könnten Sie bitte den beiliegenden Zählerstand meines Zählers in Ihr System eintragen und mir eine Zwischenrechnung zukommen lassen?"]),
            scored("relocation", &["Außerdem würde ich gerne zu meiner neuen Adresse Hugo-Junkers-Str. 5 in 82031 Grünwald wechseln.", "Ich ziehe nächsten Donnerstag ein."]),
        ];
        let readings = [AttachmentReading {
            attachment_id: 7,
            meter_value: 87870.5,
            confidence: 0.9,
        }];
        let a = analyze(
            &input("I want to relocate and send you a meter reading", TOM),
            &agents(),
            &scores,
            &readings,
            Thresholds::default(),
        );
        let relocation = a
            .intents
            .iter()
            .find(|i| i.slug == "relocation")
            .map(|i| i.data.clone());
        assert_eq!(
            relocation,
            Some(
                json!({"moveDate": "2022-12-22", "newAddress": "Hugo-Junkers-Str. 5, 82031 Grünwald"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            )
        );
        let meter = a.intents.iter().find(|i| i.slug == "meter_reading");
        assert_eq!(
            meter.and_then(|m| m.data.get("meterReading").cloned()),
            Some(json!(87870.5))
        );
        // No meter number in the mail: the intent waits for a person.
        assert_eq!(meter.map(|m| m.status), Some("preview"));
        assert_eq!(a.sentiment, Sentiment::Neutral);
        assert_eq!(a.spam, SpamStatus::Clean);
    }

    #[test]
    fn an_invalid_iban_never_makes_a_ready_intent() {
        let scores = vec![scored("bank_data_agent", &[])];
        let bad = analyze(
            &input(
                "Neue Bankverbindung",
                "Meine neue IBAN: DE89 3704 0044 0532 0130 01",
            ),
            &agents(),
            &scores,
            &[],
            Thresholds::default(),
        );
        assert_eq!(bad.intents[0].status, "preview");
        assert!(bad.intents[0].data.get("iban").is_none());
        let good = analyze(
            &input(
                "Neue Bankverbindung",
                "Meine neue IBAN: DE89 3704 0044 0532 0130 00",
            ),
            &agents(),
            &scores,
            &[],
            Thresholds::default(),
        );
        assert_eq!(good.intents[0].status, "ready");
        assert_eq!(
            good.intents[0].data.get("iban"),
            Some(&json!("DE89370400440532013000"))
        );
    }

    #[test]
    fn a_low_confidence_photo_reading_is_not_used() {
        let scores = vec![scored("meter_reading", &[])];
        let a = analyze(
            &input("Zählerstand", "Zählernummer 1ESY1160669167, Foto anbei."),
            &agents(),
            &scores,
            &[AttachmentReading {
                attachment_id: 1,
                meter_value: 123.0,
                confidence: 0.4,
            }],
            Thresholds::default(),
        );
        assert_eq!(a.intents[0].status, "preview");
        assert!(a.intents[0].data.get("meterReading").is_none());
    }

    #[test]
    fn auto_replies_get_no_intents() {
        let scores = vec![scored("meter_reading", &[])];
        let a = analyze(
            &input(
                "Abwesenheitsnotiz",
                "Ich bin bis zum 3.1. nicht im Büro. Zählerstand 123 kWh",
            ),
            &agents(),
            &scores,
            &[],
            Thresholds::default(),
        );
        assert_eq!(a.spam, SpamStatus::Programmatic);
        assert!(a.intents.is_empty());
    }
}
