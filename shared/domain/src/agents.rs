//! AI agents as data, in the reference product's shape (`settings.parameters`,
//! `settings.responseCases`, …) plus our detection phrases at `settings.detectionDetails.examples`.
//! Fields we do not interpret yet are kept as they came (`extra`), so a client's agent survives
//! a round trip unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

fn all_channels() -> Vec<String> {
    vec!["all".to_owned()]
}
fn rulebased() -> String {
    "rulebased".to_owned()
}
fn yes() -> bool {
    true
}
fn str_type() -> String {
    "str".to_owned()
}
fn message_source() -> String {
    "message".to_owned()
}
fn visible() -> String {
    "visible".to_owned()
}

/// A channel an agent applies to (documentation of `AiAgent.channels`).
#[derive(ToSchema)]
#[schema(as = AgentChannel)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
enum AgentChannel {
    All,
    Email,
    Portal,
    Phone,
    Letter,
    System,
    Chat,
    WalkIn,
}

/// An AI agent: what a customer may want, how to recognise it and what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiAgent {
    /// Assigned by the server; ignored on create.
    #[serde(default)]
    #[schema(read_only)]
    pub id: i64,
    #[schema(min_length = 1, pattern = "\\S")]
    pub name: String,
    /// Portable identity: defaults and exports match agents by slug.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub slug: String,
    #[serde(default)]
    pub tag_id: Option<i64>,
    /// Channels the agent applies to; `all` for every channel.
    #[serde(default = "all_channels")]
    #[schema(inline, value_type = Vec<AgentChannel>)]
    pub channels: Vec<String>,
    /// What the agent is for; detection reads it beside the examples.
    #[serde(default)]
    pub description: String,
    /// `rulebased` or `smart`.
    #[serde(default = "rulebased")]
    #[schema(pattern = "^(rulebased|smart)$")]
    pub intelligence: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub appearance: Value,
    #[serde(default)]
    pub example_ticket_ids: Vec<i64>,
    #[serde(default)]
    pub settings: AgentSettings,
    /// Inactive agents are kept but never detected.
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentSettings {
    #[serde(default)]
    pub parameters: Vec<AgentParameter>,
    #[serde(default)]
    pub response_cases: Vec<ResponseCase>,
    /// Steps run when the agent executes: objects such as `{"type": "apiCall", …}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub executor: Vec<Value>,
    #[serde(default)]
    pub detection_details: DetectionDetails,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

/// The validations the parameter extractor knows (see `switchyard_nlp::params::Kind`).
pub const PARAMETER_VALIDATIONS: &[&str] = &[
    "iban",
    "date",
    "amount",
    "meterNumber",
    "meterReading",
    "address",
    "postalCode",
    "email",
    "number",
];

fn validation_schema() -> utoipa::openapi::Object {
    crate::schema::optional_string_enum(PARAMETER_VALIDATIONS)
}

/// A value the agent needs, read from the message (or the ticket, contract, customer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentParameter {
    #[serde(default)]
    pub id: Option<i64>,
    /// Unique within the agent.
    #[schema(min_length = 1, pattern = "\\S")]
    pub key: String,
    #[serde(default)]
    pub name: String,
    /// `str`, `int`, `float`, `bool`, `date`, `datetime`, `enum`, `list`, `dict`.
    #[serde(rename = "type", default = "str_type")]
    pub ty: String,
    /// `message` (read from the customer's words), `ticket`, `contract`, `customer`, `manual`…
    #[serde(default = "message_source")]
    pub source: String,
    #[serde(default)]
    pub source_key: Option<String>,
    #[serde(default)]
    pub description: String,
    /// The intent is `ready` only when every required parameter is present and valid.
    #[serde(default)]
    pub required: bool,
    /// How the value is found and checked: `iban`, `date`, `amount`, `meterNumber`,
    /// `meterReading`, `address`, `postalCode`, `email`, `number`.
    #[serde(default)]
    #[schema(schema_with = validation_schema)]
    pub validation: Option<String>,
    /// Cue words near the value (ours); a leading `!` marks a cue against ("!alte Adresse").
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default = "visible")]
    pub visibility: String,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub options: Vec<Value>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

/// What the agent answers in one situation (`condition` over the parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseCase {
    #[serde(default)]
    pub id: Option<i64>,
    /// An object over the parameters; null or `{}` always holds.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub condition: Value,
    #[serde(default)]
    pub output: ResponseOutput,
    /// Whether dark processing may run this case without a person.
    #[serde(default)]
    pub auto_execute: bool,
    #[serde(default)]
    pub description: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseOutput {
    /// `interaction`, `textTemplate`, `llm`, `textTemplateAndClose`, `closeTicket`.
    #[serde(rename = "type", default)]
    pub ty: String,
    /// The template when there is one language.
    #[serde(default)]
    pub text: Option<String>,
    /// The template per language code (`de`, `en`): the reply goes out in the ticket's language.
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectionDetails {
    /// Phrases a customer would write when they want this agent, in any language.
    #[serde(default)]
    pub examples: Vec<String>,
    // `keywords` (in `extra`): regular expressions that make the agent apply whatever the
    // embedding says (the reference product's condition-matched agents).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

impl AiAgent {
    /// Whether the agent applies to a ticket of `channel`.
    pub fn serves(&self, channel: &str) -> bool {
        self.channels.iter().any(|c| c == "all" || c == channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() -> Result<(), serde_json::Error> {
        let raw = serde_json::json!({
            "name": "Zählerstand", "slug": "meter_reading",
            "settings": {"parameters": [{"key": "meterNumber", "required": true, "sourceKey": "x", "custom": 1}],
                         "personality": {"style": "formal"},
                         "detectionDetails": {"examples": ["Mein Zählerstand"], "threshold": 0.5}}
        });
        let agent: AiAgent = serde_json::from_value(raw)?;
        assert_eq!(agent.channels, vec!["all"]);
        assert_eq!(agent.settings.parameters[0].ty, "str");
        let back = serde_json::to_value(&agent)?;
        assert_eq!(back["settings"]["personality"]["style"], "formal");
        assert_eq!(back["settings"]["parameters"][0]["custom"], 1);
        assert_eq!(back["settings"]["detectionDetails"]["threshold"], 0.5);
        Ok(())
    }
}
