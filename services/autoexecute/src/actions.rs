//! What an AI agent can do, in the reference product's two phases: phase 1 shows the options
//! (no side effects, run on every preview and gate check), phase 2 carries out the chosen one.
//!
//! Executors are `settings.executor[]` entries of the agent:
//! - `{"type": "builtin", "action": "storeMeterReading" | "changeIban" | "changeDeposit" |
//!   "registerMove" | "cancelContract"}`: writes to the ERP mirror;
//! - `{"type": "apiCall", "action": "...", "request": {"method", "url", "headers", "body"}}`: a
//!   Handlebars-templated HTTP call to an external ERP, signed (HMAC-SHA256 over
//!   `<timestamp>.<body>` with the `erpSigningSecret` setting), retried with backoff, with an
//!   `Idempotency-Key` per intent;
//! - `{"type": "sourceCode", "language": "rhai", "action": "...", "code": "..."}`: a sandboxed
//!   script (time and memory limits), given `input` = the parameters with `_action` and
//!   `_metadata`; in phase 1 it may return `{options, infos}`, in phase 2 its result.
//!
//! Every executor answering to the same `action` runs for it (a builtin write and an ERP call
//! can go together). An agent without executors has one option: reply.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use switchyard_domain::AiAgent;
use switchyard_store::execution::{
    self, ContractChange, ContractFacts, IntentRow, Origin, TicketFacts,
};
use switchyard_store::PgConnection;

use crate::gates::MIN_LEGITIMATION;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The action cannot run on this ticket (no contract, implausible value…): a person decides.
    #[error("{0}")]
    Refused(String),
    #[error("ERP call failed: {0}")]
    Http(String),
    #[error("script failed: {0}")]
    Script(String),
    #[error(transparent)]
    Store(#[from] switchyard_store::StoreError),
}

/// An ERP-mirror write built into Switchyard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    StoreMeterReading,
    ChangeIban,
    ChangeDeposit,
    RegisterMove,
    CancelContract,
}

impl Builtin {
    const ALL: [Builtin; 5] = [
        Builtin::StoreMeterReading,
        Builtin::ChangeIban,
        Builtin::ChangeDeposit,
        Builtin::RegisterMove,
        Builtin::CancelContract,
    ];

    fn parse(s: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == s)
    }

    /// The option type (`_action`) it answers to.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::StoreMeterReading => "storeMeterReading",
            Builtin::ChangeIban => "changeIban",
            Builtin::ChangeDeposit => "changeDeposit",
            Builtin::RegisterMove => "registerMove",
            Builtin::CancelContract => "cancelContract",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Builtin::StoreMeterReading => "Zählerstand speichern",
            Builtin::ChangeIban => "Bankverbindung ändern",
            Builtin::ChangeDeposit => "Abschlag anpassen",
            Builtin::RegisterMove => "Umzug erfassen",
            Builtin::CancelContract => "Kündigung erfassen",
        }
    }
}

/// One executor of an agent.
#[derive(Debug, Clone, PartialEq)]
pub enum Executor {
    Builtin(Builtin),
    ApiCall { action: String, request: Value },
    Script { action: String, code: String },
}

impl Executor {
    pub fn action(&self) -> String {
        match self {
            Executor::Builtin(b) => b.name().to_owned(),
            Executor::ApiCall { action, .. } | Executor::Script { action, .. } => action.clone(),
        }
    }
}

/// The agent's executors; entries we cannot run are named in the error.
pub fn executors(agent: &AiAgent) -> Result<Vec<Executor>, ActionError> {
    let mut out = Vec::new();
    for (i, e) in agent.settings.executor.iter().enumerate() {
        let ty = e.get("type").and_then(Value::as_str).unwrap_or_default();
        let action = e.get("action").and_then(Value::as_str);
        let ex = match ty {
            "builtin" => {
                let b = action.and_then(Builtin::parse).ok_or_else(|| {
                    ActionError::Refused(format!("executor {i}: unknown builtin action {action:?}"))
                })?;
                Executor::Builtin(b)
            }
            "apiCall" => Executor::ApiCall {
                action: action.unwrap_or("apiCall").to_owned(),
                request: e.get("request").cloned().unwrap_or(Value::Null),
            },
            "sourceCode" => {
                let lang = e.get("language").and_then(Value::as_str).unwrap_or("rhai");
                if lang != "rhai" {
                    return Err(ActionError::Refused(format!(
                        "executor {i}: language {lang} is not available (rhai is)"
                    )));
                }
                Executor::Script {
                    action: action.unwrap_or("script").to_owned(),
                    code: e
                        .get("code")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                }
            }
            other => {
                return Err(ActionError::Refused(format!(
                    "executor {i}: unknown type {other:?}"
                )))
            }
        };
        out.push(ex);
    }
    Ok(out)
}

/// A choice phase 1 offers (the reference product's `options[]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Choice {
    #[serde(rename = "type")]
    pub ty: String,
    pub name: String,
    pub recommended: bool,
    pub order: usize,
}

/// A message for the person looking at the intent (`infos[]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Info {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub message: String,
}

/// Phase 1's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Interaction {
    pub options: Vec<Choice>,
    pub infos: Vec<Info>,
}

impl Interaction {
    pub fn recommended(&self) -> Option<&str> {
        self.options
            .iter()
            .find(|o| o.recommended)
            .map(|o| o.ty.as_str())
    }
}

/// What an execution works on.
pub struct Subject<'a> {
    pub facts: &'a TicketFacts,
    pub contract: Option<&'a ContractFacts>,
    pub intent: &'a IntentRow,
    pub data: &'a Map<String, Value>,
}

fn normalize_meter(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_uppercase()
}

fn date_param(data: &Map<String, Value>, key: &str) -> Option<NaiveDate> {
    data.get(key)
        .and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok())
}

fn number_param(data: &Map<String, Value>, key: &str) -> Option<f64> {
    match data.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.replace(',', ".").parse().ok(),
        _ => None,
    }
}

fn text_param<'a>(data: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    data.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Why a builtin write cannot run here, if it cannot. Writes to a contract need one, and a
/// legitimated sender: the same rule for a person's click and for dark processing.
fn builtin_refusal(b: Builtin, s: &Subject<'_>) -> Option<String> {
    let Some(c) = s.contract else {
        return Some("no contract is identified on the ticket".into());
    };
    if s.facts.customer_legitimation < MIN_LEGITIMATION {
        return Some(format!(
            "the sender's legitimation {} is below {MIN_LEGITIMATION}",
            s.facts.customer_legitimation
        ));
    }
    let d = s.data;
    match b {
        Builtin::StoreMeterReading => {
            let Some(meter) = text_param(d, "meterNumber") else {
                return Some("the meter number is missing".into());
            };
            if let Some(known) = &c.counter_number {
                if normalize_meter(known) != normalize_meter(meter) {
                    return Some(format!("meter {meter} is not the contract's meter {known}"));
                }
            }
            let Some(value) = number_param(d, "meterReading") else {
                return Some("the reading is missing".into());
            };
            if let Some((last, date)) = c.last_reading {
                if value < last {
                    return Some(format!(
                        "implausible: {value} is lower than the reading {last} of {date}"
                    ));
                }
            }
            None
        }
        Builtin::ChangeIban => match text_param(d, "iban") {
            Some(iban) if iban.parse::<iban::Iban>().is_ok() => None,
            Some(_) => Some("the IBAN's checksum is wrong".into()),
            None => Some("the IBAN is missing".into()),
        },
        Builtin::ChangeDeposit => match number_param(d, "newDeposit") {
            Some(a) if (1.0..=10_000.0).contains(&a) => None,
            Some(a) => Some(format!("a monthly deposit of {a} is implausible")),
            None => Some("the new deposit is missing".into()),
        },
        Builtin::RegisterMove => {
            if date_param(d, "moveDate").is_none() {
                Some("the move date is missing".into())
            } else if text_param(d, "newAddress").is_none() {
                Some("the new address is missing".into())
            } else {
                None
            }
        }
        Builtin::CancelContract => {
            if c.status == "cancelled" {
                Some("the contract is already cancelled".into())
            } else if date_param(d, "cancellationDate").is_none() {
                Some("the cancellation date is missing".into())
            } else {
                None
            }
        }
    }
}

/// Phase 1 for the built-in and HTTP executors (scripts are asked by the caller, which owns
/// the sandbox). No side effects.
pub fn phase1(executors: &[Executor], s: &Subject<'_>) -> Interaction {
    let mut out = Interaction::default();
    if executors.is_empty() {
        out.options.push(Choice {
            ty: "reply".into(),
            name: "Antworten".into(),
            recommended: true,
            order: 0,
        });
        return out;
    }
    let mut seen: Vec<String> = Vec::new();
    for ex in executors {
        let action = ex.action();
        if seen.contains(&action) {
            continue;
        }
        seen.push(action.clone());
        // Every executor of this action must agree.
        let refusals: Vec<String> = executors
            .iter()
            .filter(|e| e.action() == action)
            .filter_map(|e| match e {
                Executor::Builtin(b) => builtin_refusal(*b, s),
                _ => None,
            })
            .collect();
        let name = match ex {
            Executor::Builtin(b) => b.label().to_owned(),
            _ => action.clone(),
        };
        for r in &refusals {
            out.infos.push(Info {
                ty: "danger",
                message: r.clone(),
            });
        }
        out.options.push(Choice {
            ty: action,
            name,
            recommended: refusals.is_empty(),
            order: out.options.len(),
        });
    }
    // Exactly one recommended option, as auto-processing expects.
    let mut first = true;
    for o in out.options.iter_mut() {
        if o.recommended {
            o.recommended = first;
            first = false;
        }
    }
    out
}

/// Phase 2 of one built-in executor: the write, in the caller's transaction.
pub async fn run_builtin(
    conn: &mut PgConnection,
    b: Builtin,
    s: &Subject<'_>,
    actor: &str,
) -> Result<Value, ActionError> {
    if let Some(r) = builtin_refusal(b, s) {
        return Err(ActionError::Refused(r));
    }
    let contract = s
        .contract
        .ok_or_else(|| ActionError::Refused("no contract".into()))?;
    let origin = Origin {
        ticket_id: s.facts.id,
        intent_id: s.intent.id,
        actor,
    };
    let d = s.data;
    let today = Utc::now().date_naive();
    Ok(match b {
        Builtin::StoreMeterReading => {
            let meter = text_param(d, "meterNumber").unwrap_or_default();
            let value = number_param(d, "meterReading").unwrap_or_default();
            let date = date_param(d, "readingDate").unwrap_or(today);
            let id = execution::store_meter_reading(conn, contract.id, meter, value, date, origin)
                .await?;
            json!({"meterReadingId": id, "contractId": contract.id, "meterNumber": meter,
                   "meterReading": value, "readingDate": date})
        }
        Builtin::ChangeIban => {
            let iban: String = text_param(d, "iban")
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_uppercase();
            execution::change_contract(conn, contract.id, &ContractChange::Iban(iban), origin)
                .await?
        }
        Builtin::ChangeDeposit => {
            let amount = number_param(d, "newDeposit").unwrap_or_default();
            execution::change_contract(
                conn,
                contract.id,
                &ContractChange::MonthlyDeposit(amount),
                origin,
            )
            .await?
        }
        Builtin::RegisterMove => {
            let change = ContractChange::Move {
                date: date_param(d, "moveDate").unwrap_or(today),
                new_address: text_param(d, "newAddress").unwrap_or_default().to_owned(),
            };
            execution::change_contract(conn, contract.id, &change, origin).await?
        }
        Builtin::CancelContract => {
            let change = ContractChange::Cancellation {
                date: date_param(d, "cancellationDate").unwrap_or(today),
            };
            execution::change_contract(conn, contract.id, &change, origin).await?
        }
    })
}

/// The signature header value of an outgoing call: `sha256=<hex>` over `<timestamp>.<body>`
/// (shared with outbound's chat replies).
pub use switchyard_domain::signing::sign;

fn render(template: &str, data: &Value) -> Result<String, ActionError> {
    let mut hb = handlebars::Handlebars::new();
    hb.register_escape_fn(handlebars::no_escape);
    hb.render_template(template, data)
        .map_err(|e| ActionError::Http(format!("template: {e}")))
}

/// Renders every string in a JSON body template.
fn render_json(template: &Value, data: &Value) -> Result<Value, ActionError> {
    Ok(match template {
        Value::String(s) => Value::String(render(s, data)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|v| render_json(v, data))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, data)?)))
                .collect::<Result<_, ActionError>>()?,
        ),
        other => other.clone(),
    })
}

/// Phase 2 of an HTTP executor: the templated request, signed, retried with backoff on
/// connection errors, 429 and 5xx (the `Idempotency-Key` lets the ERP drop a repeat).
pub async fn run_api_call(
    http: &reqwest::Client,
    request: &Value,
    input: &Value,
    secret: &str,
    idempotency_key: &str,
) -> Result<Value, ActionError> {
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("POST")
        .to_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| ActionError::Http(format!("bad method {method}")))?;
    let url = render(
        request
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        input,
    )?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ActionError::Http(format!("bad URL {url:?}")));
    }
    let body = match request.get("body") {
        Some(Value::String(t)) => render(t, input)?,
        Some(v) => render_json(v, input)?.to_string(),
        None => input.to_string(),
    };
    let headers: Vec<(String, String)> = request
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.clone(), render(v.as_str()?, input).ok()?)))
                .collect()
        })
        .unwrap_or_default();
    let policy = backoff::ExponentialBackoff {
        initial_interval: Duration::from_millis(200),
        max_interval: Duration::from_secs(2),
        max_elapsed_time: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    let attempt = || async {
        let ts = Utc::now().timestamp();
        let mut req = http
            .request(method.clone(), &url)
            .timeout(Duration::from_secs(10))
            .header("content-type", "application/json")
            .header("idempotency-key", idempotency_key)
            .header("x-switchyard-timestamp", ts.to_string())
            .body(body.clone());
        if !secret.is_empty() {
            req = req.header("x-switchyard-signature", sign(secret, ts, body.as_bytes()));
        }
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.map_err(|e| {
            backoff::Error::transient(ActionError::Http(e.without_url().to_string()))
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(backoff::Error::transient(ActionError::Http(format!(
                "{url} answered {status}"
            ))));
        }
        if !status.is_success() {
            return Err(backoff::Error::permanent(ActionError::Http(format!(
                "{url} answered {status}"
            ))));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    };
    backoff::future::retry(policy, attempt).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_store::execution::IntentRow;

    fn facts(legitimation: i32) -> TicketFacts {
        TicketFacts {
            id: 1,
            status: "open".into(),
            spam_status: None,
            channel: "email".into(),
            direction: "in".into(),
            contract_id: Some(5),
            customer_id: Some(2),
            customer_legitimation: legitimation,
            ai_support_level: "unprocessed".into(),
            language_code: Some("de".into()),
            from_addr: None,
            inbound_messages: 1,
            last_customer_message_at: None,
        }
    }

    fn contract(last: Option<f64>) -> ContractFacts {
        ContractFacts {
            id: 5,
            customer_id: 2,
            status: "active".into(),
            counter_number: Some("1ESY-1161-2292".into()),
            iban: None,
            monthly_deposit: Some(80.0),
            delivery_address: None,
            end_date: None,
            last_reading: last
                .map(|v| (v, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default())),
        }
    }

    fn intent() -> IntentRow {
        IntentRow {
            id: 9,
            ticket_id: 1,
            ai_agent_id: Some(1),
            code: "meter_reading".into(),
            name: None,
            confidence: 0.9,
            data: Value::Null,
            status: "ready".into(),
            contract_id: None,
        }
    }

    fn reading(meter: &str, value: f64) -> Map<String, Value> {
        json!({"meterNumber": meter, "meterReading": value})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn a_matching_plausible_reading_is_recommended() {
        let (f, c, i, d) = (
            facts(20),
            contract(Some(1000.0)),
            intent(),
            reading("1esy 1161 2292", 1200.0),
        );
        let s = Subject {
            facts: &f,
            contract: Some(&c),
            intent: &i,
            data: &d,
        };
        let ex = [Executor::Builtin(Builtin::StoreMeterReading)];
        assert_eq!(phase1(&ex, &s).recommended(), Some("storeMeterReading"));
    }

    #[test]
    fn writes_need_a_contract_a_legitimated_sender_and_plausible_values() {
        let ex = [Executor::Builtin(Builtin::StoreMeterReading)];
        let (i, d) = (intent(), reading("1ESY11612292", 1200.0));
        let f = facts(20);
        let none = Subject {
            facts: &f,
            contract: None,
            intent: &i,
            data: &d,
        };
        assert_eq!(phase1(&ex, &none).recommended(), None);
        let low = facts(15);
        let c = contract(None);
        let s = Subject {
            facts: &low,
            contract: Some(&c),
            intent: &i,
            data: &d,
        };
        assert_eq!(phase1(&ex, &s).recommended(), None);
        let c = contract(Some(1500.0));
        let s = Subject {
            facts: &f,
            contract: Some(&c),
            intent: &i,
            data: &d,
        };
        let p = phase1(&ex, &s);
        assert_eq!(p.recommended(), None);
        assert!(p.infos[0].message.contains("implausible"), "{p:?}");
        let other = reading("9XX-000", 1200.0);
        let s = Subject {
            facts: &f,
            contract: Some(&c),
            intent: &i,
            data: &other,
        };
        assert_eq!(phase1(&ex, &s).recommended(), None);
    }

    #[test]
    fn an_agent_without_executors_replies() {
        let (f, i, d) = (facts(0), intent(), Map::new());
        let s = Subject {
            facts: &f,
            contract: None,
            intent: &i,
            data: &d,
        };
        assert_eq!(phase1(&[], &s).recommended(), Some("reply"));
    }

    #[test]
    fn builtin_actions_keep_their_reference_names() {
        assert_eq!(
            Executor::Builtin(Builtin::StoreMeterReading).action(),
            "storeMeterReading"
        );
        assert_eq!(
            Executor::Builtin(Builtin::ChangeIban).action(),
            "changeIban"
        );
    }
}
