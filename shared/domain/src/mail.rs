//! The `inbound.email` envelope: the inbound envelope plus where the raw mail is. The raw MIME
//! stays in the object store; the bus carries its key, because JetStream is not the system of
//! record and mails can be large.

use serde::{Deserialize, Serialize};

use crate::InboundEnvelope;

/// Where a fetched mail came from and where its raw MIME is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMail {
    /// Object store key of the raw RFC 5322 message.
    pub object_key: String,
    /// Bytes of the raw message.
    pub size: u64,
    pub folder: String,
    pub uid_validity: u32,
    pub uid: u32,
}

/// What ingest consumes on `inbound.>`: every inbound envelope, and for mail the raw message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestInput {
    #[serde(flatten)]
    pub inbound: InboundEnvelope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<RawMail>,
}

/// The inbound key of a mail: one per subchannel and Message-ID, so the same mail fetched twice
/// is one message and the same mail in two mailboxes is two.
pub fn mail_key(subchannel_id: i64, message_id: &str) -> String {
    format!("email:{subchannel_id}:{message_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InboundTicket, ENVELOPE_VERSION};

    #[test]
    fn api_envelopes_read_as_ingest_input_without_mail() {
        let e = InboundEnvelope {
            v: ENVELOPE_VERSION,
            key: "api:1".into(),
            received_at: chrono::Utc::now(),
            reply: None,
            ticket: InboundTicket::default(),
        };
        let json = serde_json::to_string(&e).expect("serialize");
        let read: IngestInput = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(read.inbound, e);
        assert!(read.mail.is_none());
    }
}
