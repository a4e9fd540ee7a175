//! The typed settings store: every setting has a type, a default, a category and a validation;
//! secrets are only shown to callers with `readSecretSettings`.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::reloading::Reloading;
use crate::{audit, Result, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SettingType {
    Bool,
    Number,
    String,
    StringList,
    Json,
}

/// The definition of one known setting.
#[derive(Debug, Clone)]
pub struct SettingDef {
    pub name: &'static str,
    pub category: &'static str,
    pub kind: SettingType,
    pub secret: bool,
    pub description: &'static str,
    pub default: fn() -> Value,
    /// Extra bounds beyond the type; `Err` names what is wrong.
    pub check: fn(&Value) -> Result<(), String>,
    /// JSON Schema of the value, so the OpenAPI document tells clients (and fuzzers) the same
    /// bounds `check` enforces, as far as JSON Schema can say them.
    pub schema: fn() -> Value,
}

fn no_check(_: &Value) -> Result<(), String> {
    Ok(())
}

/// AI agents named by id or slug.
fn agent_list(v: &Value) -> Result<(), String> {
    match v.as_array() {
        Some(items) if items.iter().all(|i| i.is_string() || i.is_i64()) => Ok(()),
        _ => Err("must be an array of AI agent ids or slugs".into()),
    }
}

fn positive_hours(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(h) if h > 0.0 && h <= 24.0 * 365.0 => Ok(()),
        _ => Err("must be a number of hours between 0 and 8760".into()),
    }
}

fn one_of(v: &Value, allowed: &[&str]) -> Result<(), String> {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok(()),
        _ => Err(format!("must be one of {}", allowed.join(", "))),
    }
}

fn hours_by_channel(v: &Value) -> Result<(), String> {
    let map = v
        .as_object()
        .ok_or("must be an object of channel to hours")?;
    for (channel, hours) in map {
        if switchyard_domain::Channel::parse(channel).is_none() {
            return Err(format!("unknown channel {channel}"));
        }
        positive_hours(hours).map_err(|e| format!("{channel}: {e}"))?;
    }
    Ok(())
}

fn business_hours(v: &Value) -> Result<(), String> {
    let cal: switchyard_calendar::BusinessCalendar =
        serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    cal.validate().map_err(|e| e.to_string())
}

fn fraction(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(f) if (0.0..=1.0).contains(&f) => Ok(()),
        _ => Err("must be a number from 0 to 1".into()),
    }
}

fn language_codes(v: &Value) -> Result<(), String> {
    let ok = v.as_array().is_some_and(|a| {
        !a.is_empty()
            && a.iter().all(|c| {
                c.as_str()
                    .is_some_and(|s| s.len() == 2 && s.chars().all(|ch| ch.is_ascii_lowercase()))
            })
    });
    if ok {
        Ok(())
    } else {
        Err("must be a non-empty list of ISO 639-1 codes such as \"de\"".into())
    }
}

const TAG_MATCHING_MODES: &[&str] = &["matchAny", "matchAll"];
const ORDERING_SEQUENCES: &[&str] = &["slaDue", "prioritySla", "priorityNewest", "priorityOldest"];

fn bool_schema() -> Value {
    json!({"type": "boolean"})
}

fn string_schema() -> Value {
    json!({"type": "string"})
}

fn url_schema() -> Value {
    json!({"type": "string", "pattern": "^https?://"})
}

fn hours_schema() -> Value {
    json!({"type": "number", "exclusiveMinimum": 0, "maximum": 8760})
}

fn fraction_schema() -> Value {
    json!({"type": "number", "minimum": 0, "maximum": 1})
}

fn agent_list_schema() -> Value {
    json!({"type": "array", "items": {"anyOf": [
        {"type": "string"},
        {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}
    ]}})
}

fn hours_by_channel_schema() -> Value {
    let channels: serde_json::Map<String, Value> = switchyard_domain::Channel::NAMES
        .iter()
        .map(|c| ((*c).to_owned(), hours_schema()))
        .collect();
    json!({"type": "object", "properties": channels, "additionalProperties": false})
}

fn business_hours_schema() -> Value {
    let time = json!({"type": "string", "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"});
    let day = json!({"type": "array", "items": {
        "type": "array", "items": time, "minItems": 2, "maxItems": 2
    }});
    let days: serde_json::Map<String, Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| ((*d).to_owned(), day.clone()))
        .collect();
    // Some day must have working time (a present day with at least one interval).
    let some_day: Vec<Value> = days
        .keys()
        .map(|d| json!({"required": [d], "properties": {d.as_str(): {"minItems": 1}}}))
        .collect();
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    json!({
        "type": "object",
        "description": "Intervals must end after they start and must not overlap.",
        "properties": {
            "timezone": {"type": "string", "enum": zones},
            "hours": {"type": "object", "properties": days, "additionalProperties": false, "anyOf": some_day},
            "holidayState": {"type": ["string", "null"], "enum": switchyard_calendar::STATES.iter().map(|s| Value::from(*s)).chain([Value::Null]).collect::<Vec<_>>()},
            "extraHolidays": {"type": "array", "items": {"type": "string", "format": "date"}}
        },
        "additionalProperties": false
    })
}

fn language_codes_schema() -> Value {
    json!({"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[a-z]{2}$"}})
}

/// Every setting Switchyard knows. Unknown names are rejected, so a typo never silently
/// configures nothing.
pub static DEFINITIONS: &[SettingDef] = &[
    SettingDef {
        name: "languages",
        category: "ai",
        kind: SettingType::StringList,
        secret: false,
        description: "Languages the ai stage chooses from (ISO 639-1).",
        default: || json!(["de", "en"]),
        check: language_codes,
        schema: language_codes_schema,
    },
    SettingDef {
        name: "meterReadingConfidenceThreshold",
        category: "ai",
        kind: SettingType::Number,
        secret: false,
        description: "A meter reading read from a photo below this confidence (0 to 1) is shown to a person and never makes an intent ready.",
        default: || json!(0.88),
        check: fraction,
        schema: fraction_schema,
    },
    SettingDef {
        name: "defaultSlaHours",
        category: "routing",
        kind: SettingType::Number,
        secret: false,
        description: "Business hours until dueBy when no tag of the ticket sets an SLA.",
        default: || json!(16),
        check: positive_hours,
        schema: hours_schema,
    },
    SettingDef {
        name: "firstResponseHours",
        category: "routing",
        kind: SettingType::Number,
        secret: false,
        description: "Business hours until firstResponseDueBy, for channels without their own value.",
        default: || json!(8),
        check: positive_hours,
        schema: hours_schema,
    },
    SettingDef {
        name: "firstResponseHoursByChannel",
        category: "routing",
        kind: SettingType::Json,
        secret: false,
        description: "Business hours until firstResponseDueBy per channel, e.g. {\"chat\": 0.25}.",
        default: || json!({"email": 8, "portal": 8, "letter": 40, "chat": 0.25, "phone": 0.25}),
        check: hours_by_channel,
        schema: hours_by_channel_schema,
    },
    SettingDef {
        name: "businessHours",
        category: "routing",
        kind: SettingType::Json,
        secret: false,
        description: "Working hours per weekday, time zone and public holidays (German state) for SLA clocks.",
        default: || serde_json::to_value(switchyard_calendar::BusinessCalendar::default()).unwrap_or_default(),
        check: business_hours,
        schema: business_hours_schema,
    },
    SettingDef {
        name: "autopilotTagMatchingMode",
        category: "routing",
        kind: SettingType::String,
        secret: false,
        description: "matchAny: an agent needs one of the ticket's routing tags as a skill; matchAll: all of them.",
        default: || json!("matchAny"),
        check: |v| one_of(v, TAG_MATCHING_MODES),
        schema: || json!({"type": "string", "enum": TAG_MATCHING_MODES}),
    },
    SettingDef {
        name: "autopilotOrderingSequence",
        category: "routing",
        kind: SettingType::String,
        secret: false,
        description: "Queue order: slaDue, prioritySla, priorityNewest or priorityOldest.",
        default: || json!("slaDue"),
        check: |v| one_of(v, ORDERING_SEQUENCES),
        schema: || json!({"type": "string", "enum": ORDERING_SEQUENCES}),
    },
    SettingDef {
        name: "lastAgentRouting",
        category: "routing",
        kind: SettingType::Bool,
        secret: false,
        description: "A customer's follow-up goes back to the agent who last worked the ticket, unless absent.",
        default: || json!(true),
        check: no_check,
        schema: bool_schema,
    },
    SettingDef {
        name: "queueHoldSeconds",
        category: "routing",
        kind: SettingType::Number,
        secret: false,
        description: "How long a ticket handed out by getLatest stays with the agent without a ping.",
        default: || json!(60),
        check: |v| match v.as_f64() {
            Some(s) if (5.0..=3600.0).contains(&s) => Ok(()),
            _ => Err("must be between 5 and 3600 seconds".into()),
        },
        schema: || json!({"type": "number", "minimum": 5, "maximum": 3600}),
    },
    SettingDef {
        name: "enableAiAutoProcessing",
        category: "autoProcessing",
        kind: SettingType::Bool,
        secret: false,
        description: "Whether tickets may be answered without a person (dark processing).",
        default: || json!(false),
        check: no_check,
        schema: bool_schema,
    },
    SettingDef {
        name: "immediateAiAgents",
        category: "autoProcessing",
        kind: SettingType::Json,
        secret: false,
        description: "AI agents (ids or slugs) whose tickets are answered in the dark without approval (L5), once every gate passes.",
        default: || json!([]),
        check: agent_list,
        schema: agent_list_schema,
    },
    SettingDef {
        name: "manualAiAgents",
        category: "autoProcessing",
        kind: SettingType::Json,
        secret: false,
        description: "AI agents (ids or slugs) that dark processing prepares but a person approves with one click (L4, POST /intent/{id}/execute).",
        default: || json!([]),
        check: agent_list,
        schema: agent_list_schema,
    },
    SettingDef {
        name: "autoProcessingDelayEnabled",
        category: "autoProcessing",
        kind: SettingType::Bool,
        secret: false,
        description: "Wait autoProcessingDelay business hours after the customer's last message before answering in the dark.",
        default: || json!(false),
        check: no_check,
        schema: bool_schema,
    },
    SettingDef {
        name: "autoProcessingDelay",
        category: "autoProcessing",
        kind: SettingType::Number,
        secret: false,
        description: "Business hours between the customer's last message and the dark reply, when the delay is enabled.",
        default: || json!(0),
        check: |v| match v.as_f64() {
            Some(h) if (0.0..=720.0).contains(&h) => Ok(()),
            _ => Err("must be between 0 and 720 hours".into()),
        },
        schema: || json!({"type": "number", "minimum": 0, "maximum": 720}),
    },
    SettingDef {
        name: "reopenClosedTicketOnReply",
        category: "email",
        kind: SettingType::Bool,
        secret: false,
        description: "A customer's reply to a closed or resolved ticket reopens it (else the message is only added).",
        default: || json!(true),
        check: no_check,
        schema: bool_schema,
    },
    SettingDef {
        name: "erpApiToken",
        category: "erp",
        kind: SettingType::String,
        secret: true,
        description: "Credential for the ERP's HTTP API.",
        default: || json!(""),
        check: no_check,
        schema: string_schema,
    },
    SettingDef {
        name: "erpSigningSecret",
        category: "erp",
        kind: SettingType::String,
        secret: true,
        description: "Key of the HMAC-SHA256 signature on AI agents' HTTP calls to the ERP (X-Switchyard-Signature).",
        default: || json!(""),
        check: no_check,
        schema: string_schema,
    },
    SettingDef {
        name: "retentionDaysClosedTickets",
        category: "privacy",
        kind: SettingType::Number,
        secret: false,
        description: "Closed tickets are deleted with their messages and attachments this many days after closing; 0 keeps them. Test-case tickets are kept.",
        default: || json!(0),
        check: |v| match v.as_i64() {
            Some(d) if (0..=36500).contains(&d) => Ok(()),
            _ => Err("must be a whole number of days from 0 to 36500".into()),
        },
        schema: || json!({"type": "integer", "minimum": 0, "maximum": 36500}),
    },
    SettingDef {
        name: "publicBaseUrl",
        category: "general",
        kind: SettingType::String,
        secret: false,
        description: "Where browsers reach this API (e.g. https://service.example.com); OAuth redirect URIs are built from it.",
        default: || json!("http://127.0.0.1:8080"),
        check: |v| match v.as_str() {
            Some(s) if s.starts_with("http://") || s.starts_with("https://") => Ok(()),
            _ => Err("must be an http(s) URL".into()),
        },
        schema: url_schema,
    },
    SettingDef {
        name: "microsoftClientId",
        category: "mailbox",
        kind: SettingType::String,
        secret: false,
        description: "Application (client) id of the Entra ID app through which M365 mailboxes are connected by OAuth.",
        default: || json!(""),
        check: no_check,
        schema: string_schema,
    },
    SettingDef {
        name: "microsoftClientSecret",
        category: "mailbox",
        kind: SettingType::String,
        secret: true,
        description: "Client secret of that Entra ID app.",
        default: || json!(""),
        check: no_check,
        schema: string_schema,
    },
    SettingDef {
        name: "microsoftTenant",
        category: "mailbox",
        kind: SettingType::String,
        secret: false,
        description: "Entra ID tenant of the mailboxes (a tenant id, a domain, or \"organizations\").",
        default: || json!("organizations"),
        check: |v| match v.as_str() {
            Some(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)) => Ok(()),
            _ => Err("must be a tenant id or domain".into()),
        },
        schema: || json!({"type": "string", "pattern": "^[A-Za-z0-9.-]+$"}),
    },
    SettingDef {
        name: "microsoftAuthorityUrl",
        category: "mailbox",
        kind: SettingType::String,
        secret: false,
        description: "The Microsoft identity platform; changed only for national clouds (or a test server).",
        default: || json!("https://login.microsoftonline.com"),
        check: |v| match v.as_str() {
            Some(s) if s.starts_with("http://") || s.starts_with("https://") => Ok(()),
            _ => Err("must be an http(s) URL".into()),
        },
        schema: url_schema,
    },
];

pub fn definition(name: &str) -> Option<&'static SettingDef> {
    DEFINITIONS.iter().find(|d| d.name == name)
}

/// Checks a value against its definition.
pub fn validate(name: &str, value: &Value) -> Result<&'static SettingDef> {
    let def = definition(name).ok_or_else(|| StoreError::invalid(name, "unknown setting"))?;
    let type_ok = match def.kind {
        SettingType::Bool => value.is_boolean(),
        SettingType::Number => value.is_number(),
        SettingType::String => value.is_string(),
        SettingType::StringList => value
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string)),
        SettingType::Json => true,
    };
    if !type_ok {
        return Err(StoreError::invalid(
            name,
            format!("expected a value of type {:?}", def.kind),
        ));
    }
    (def.check)(value).map_err(|m| StoreError::invalid(name, m))?;
    Ok(def)
}

/// One setting as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingView {
    pub name: &'static str,
    pub value: Value,
    pub category: &'static str,
    #[serde(rename = "type")]
    pub kind: SettingType,
    pub secret: bool,
    pub description: &'static str,
    pub is_default: bool,
    pub modified_by: Option<String>,
    pub modified_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// All settings with their current values; secret values are replaced by `null` unless
/// `show_secrets`.
pub async fn list(conn: &mut PgConnection, show_secrets: bool) -> Result<Vec<SettingView>> {
    let rows: Vec<(String, Value, String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT name, value, modified_by, modified_at FROM settings")
            .fetch_all(conn)
            .await?;
    let stored: HashMap<String, (Value, String, chrono::DateTime<chrono::Utc>)> = rows
        .into_iter()
        .map(|(n, v, by, at)| (n, (v, by, at)))
        .collect();
    Ok(DEFINITIONS
        .iter()
        .map(|d| {
            let s = stored.get(d.name);
            let value = s.map(|(v, _, _)| v.clone()).unwrap_or_else(d.default);
            SettingView {
                name: d.name,
                value: if d.secret && !show_secrets {
                    Value::Null
                } else {
                    value
                },
                category: d.category,
                kind: d.kind,
                secret: d.secret,
                description: d.description,
                is_default: s.is_none(),
                modified_by: s.map(|(_, by, _)| by.clone()),
                modified_at: s.map(|(_, _, at)| *at),
            }
        })
        .collect())
}

/// Validates and stores a setting, recording who changed it. Returns the previous value.
pub async fn set(conn: &mut PgConnection, name: &str, value: &Value, actor: &str) -> Result<Value> {
    let def = validate(name, value)?;
    let old: Option<Value> =
        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    sqlx::query(
        "INSERT INTO settings (name, value, modified_by, modified_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, modified_by = EXCLUDED.modified_by,
                modified_at = now()",
    )
    .bind(name)
    .bind(value)
    .bind(actor)
    .execute(&mut *conn)
    .await?;
    // Secrets never reach the audit log in clear.
    let logged = if def.secret {
        json!("***")
    } else {
        value.clone()
    };
    audit::record(
        conn,
        actor,
        "setting",
        name,
        "updated",
        &json!({"value": logged}),
    )
    .await?;
    Ok(old.unwrap_or_else(def.default))
}

/// Settings as the workers read them: from memory, reloaded every `refresh_every` (see
/// [`Reloading`]), so a change reaches every replica within that time.
#[derive(Clone)]
pub struct SettingsCache {
    values: Reloading<HashMap<String, Value>>,
}

impl SettingsCache {
    pub async fn start(store: Store, refresh_every: Duration) -> Result<Self> {
        let values = Reloading::start("settings", refresh_every, move || {
            let store = store.clone();
            async move {
                let rows: Vec<(String, Value)> = sqlx::query_as("SELECT name, value FROM settings")
                    .fetch_all(store.pool())
                    .await?;
                Ok(rows.into_iter().collect())
            }
        })
        .await?;
        Ok(SettingsCache { values })
    }

    /// Reloads every stored setting now (after this process changed one).
    pub async fn refresh(&self) -> Result<()> {
        self.values.reload().await
    }

    /// The current value, or the definition's default.
    pub async fn get(&self, name: &str) -> Result<Value> {
        Ok(lookup(&*self.values.get().await, name))
    }

    pub async fn get_f64(&self, name: &str) -> Result<f64> {
        let v = self.get(name).await?;
        v.as_f64()
            .ok_or_else(|| StoreError::invalid(name, "not a number"))
    }

    pub async fn get_bool(&self, name: &str) -> Result<bool> {
        Ok(self.get(name).await?.as_bool().unwrap_or(false))
    }

    /// A string setting; empty when unset without a default or not a string.
    pub async fn get_string(&self, name: &str) -> Result<String> {
        Ok(self
            .get(name)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    pub async fn get_strings(&self, name: &str) -> Result<Vec<String>> {
        Ok(serde_json::from_value(self.get(name).await?).unwrap_or_default())
    }
}

fn lookup(map: &HashMap<String, Value>, name: &str) -> Value {
    map.get(name)
        .cloned()
        .or_else(|| definition(name).map(|d| (d.default)()))
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_checks_type_bounds_and_names() {
        assert!(validate("defaultSlaHours", &json!(8)).is_ok());
        assert!(validate("defaultSlaHours", &json!("8")).is_err());
        assert!(validate("defaultSlaHours", &json!(-1)).is_err());
        assert!(validate("languages", &json!(["de", "en"])).is_ok());
        assert!(validate("languages", &json!(["german"])).is_err());
        assert!(validate("noSuchSetting", &json!(1)).is_err());
    }

    #[test]
    fn every_default_passes_its_own_validation() {
        for d in DEFINITIONS {
            assert!(validate(d.name, &(d.default)()).is_ok(), "{}", d.name);
        }
    }
}
