//! The small versioned JSON body of every bus message. The ticket itself lives in Postgres; the
//! broker carries pointers, because JetStream only fsyncs every two minutes by default.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::enums::*;

pub const ENVELOPE_VERSION: u32 = 1;

/// The pipeline stages, in order. Their names are what `GET …/activity` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Ingest,
    Ai,
    Router,
    Autoexecute,
    /// Sends the replies autoexecute (or a person) queued.
    Outbound,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Ingest,
        Stage::Ai,
        Stage::Router,
        Stage::Autoexecute,
        Stage::Outbound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Ai => "ai",
            Stage::Router => "router",
            Stage::Autoexecute => "autoexecute",
            Stage::Outbound => "outbound",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The pipeline subject (without prefix) a stage publishes its result on, if it hands on.
    pub fn output_subject(self) -> Option<&'static str> {
        match self {
            Stage::Ingest => Some("pipeline.ingested"),
            Stage::Ai => Some("pipeline.analyzed"),
            Stage::Router => Some("pipeline.routed"),
            Stage::Autoexecute => Some("pipeline.reply"),
            Stage::Outbound => None,
        }
    }

    /// The subject (without prefix) a stage consumes.
    pub fn input_subject(self) -> &'static str {
        match self {
            Stage::Ingest => "inbound.>",
            Stage::Ai => "pipeline.ingested",
            Stage::Router => "pipeline.analyzed",
            Stage::Autoexecute => "pipeline.routed",
            Stage::Outbound => "pipeline.reply",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a waiting API request wants to hear about its ticket, and after which stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyPoint {
    pub subject: String,
    pub after: Stage,
}

/// A message on `pipeline.*`: one message of one ticket moving to the next stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub v: u32,
    pub ticket_id: i64,
    pub message_id: i64,
    /// Set when an AI quality check replays the message: every effect is recorded, none applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_run_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyPoint>,
}

impl Envelope {
    /// The de-duplication id of this envelope when published for `next`: stable across retries.
    pub fn msg_id(&self, next: Stage) -> String {
        match self.test_run_id {
            Some(run) => format!("{next}:{}:{run}", self.message_id),
            None => format!("{next}:{}", self.message_id),
        }
    }
}

/// A message on `inbound.*`: something a customer sent, not yet a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundEnvelope {
    pub v: u32,
    /// Unique per inbound item and stable across re-publishes (`api:<uuid>`, later
    /// `<subchannel>:<Message-ID>`): the key ingest de-duplicates on, in the database.
    pub key: String,
    pub received_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyPoint>,
    pub ticket: InboundTicket,
}

/// The fields of `POST /api/mind/ticket` that ingest needs (validated by the API before publish).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboundTicket {
    #[serde(default)]
    pub channel: Option<Channel>,
    #[serde(default)]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub from_name: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
    #[serde(default)]
    pub subchannel_id: Option<i64>,
    #[serde(default)]
    pub subject: Option<String>,
    /// HTML or plain text.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub status: Option<TicketStatus>,
    #[serde(default)]
    pub external_ticket_id: Option<String>,
    #[serde(default)]
    pub contract_id: Option<String>,
    #[serde(default)]
    pub channel_id: Option<String>,
    /// When the customer sent it; defaults to when it was received.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub additional_data: Option<Value>,
}

impl InboundTicket {
    /// Drops NUL characters from every text field: PostgreSQL cannot store them and they carry
    /// no meaning in a mail, so the rest of the message is kept rather than rejected.
    pub fn without_nul(mut self) -> Self {
        let clean = |s: &mut String| {
            if s.contains('\0') {
                *s = s.replace('\0', "");
            }
        };
        for s in [
            &mut self.from,
            &mut self.from_name,
            &mut self.subject,
            &mut self.body,
            &mut self.external_ticket_id,
            &mut self.contract_id,
            &mut self.channel_id,
        ]
        .into_iter()
        .flatten()
        {
            clean(s);
        }
        self.to
            .iter_mut()
            .chain(&mut self.cc)
            .chain(&mut self.bcc)
            .for_each(clean);
        self
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nul_characters_are_dropped_from_every_text_field() {
        let t = InboundTicket {
            subject: Some("Z\0ähler".into()),
            to: vec!["a\0@b.de".into()],
            ..Default::default()
        }
        .without_nul();
        assert_eq!(t.subject.as_deref(), Some("Zähler"));
        assert_eq!(t.to, vec!["a@b.de".to_owned()]);
    }

    use super::*;

    #[test]
    fn msg_id_is_stable_and_separates_test_runs() {
        let mut e = Envelope {
            v: ENVELOPE_VERSION,
            ticket_id: 7,
            message_id: 11,
            test_run_id: None,
            reply: None,
        };
        assert_eq!(e.msg_id(Stage::Ai), "ai:11");
        let run = Uuid::nil();
        e.test_run_id = Some(run);
        assert_eq!(e.msg_id(Stage::Ai), format!("ai:11:{run}"));
    }

    #[test]
    fn envelope_json_is_camel_case_and_versioned() {
        let e = Envelope {
            v: ENVELOPE_VERSION,
            ticket_id: 1,
            message_id: 2,
            test_run_id: None,
            reply: None,
        };
        let json = serde_json::to_value(&e).expect("serialize");
        assert_eq!(
            json,
            serde_json::json!({"v": 1, "ticketId": 1, "messageId": 2})
        );
    }
}
