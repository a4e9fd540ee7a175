//! Domain types of Switchyard.
//!
//! Field names and enum values are the seeds' (`../shared/seeds/000_*.txt`), so that clients of the
//! reference product read our JSON unchanged. Everything here is plain data: no I/O.

pub mod agents;
pub mod enums;
pub mod envelope;
pub mod mail;
pub mod schema;
pub mod signing;
pub mod ticket;
pub mod time;

pub use agents::{
    AgentParameter, AgentSettings, AiAgent, DetectionDetails, ResponseCase, ResponseOutput,
};
pub use enums::*;
pub use envelope::{Envelope, InboundEnvelope, InboundTicket, ReplyPoint, Stage, ENVELOPE_VERSION};
pub use mail::{mail_key, IngestInput, RawMail};
pub use ticket::{ProcessingFlag, Ticket};
