//! AI agents at work: which of an agent's response cases applies to the parameters extracted
//! from a message, and the reply rendered from that case's template in the ticket's language.
//! The preview, `POST /aiAgent/outcome` and the autoexecute worker share this, so what an
//! operator previews is what a customer gets.
//!
//! Conditions use the reference product's operators (`Equal`, `NotEqual`, `Like`, `NotLike`,
//! `In`, `NotIn`, `GreaterThan`, `GreaterThanEqual`, `LessThan`, `LessThanEqual`, `IsNull`,
//! `IsNotNull`, `RegEx`) over `{operator: And|Or, operands: [{operand, operator, value}]}`;
//! templates are Handlebars, as the reference product's `textTemplate`.

use handlebars::Handlebars;
use serde::Serialize;
use serde_json::{Map, Value};
use switchyard_domain::{AiAgent, ResponseCase};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("response case {case}: unknown operator {operator}")]
    Operator { case: usize, operator: String },
    #[error("response case {case}: bad regular expression: {message}")]
    Regex { case: usize, message: String },
    #[error("response case {case}: template: {message}")]
    Template { case: usize, message: String },
}

/// The case that applies and what the customer would read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// Index of the response case in the agent's `settings.responseCases`.
    pub case: usize,
    pub description: String,
    /// `interaction`, `textTemplate`, `llm`, `textTemplateAndClose`, `closeTicket`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether dark processing may send it without a person.
    pub auto_execute: bool,
    /// The rendered reply (`None` for a case without text).
    pub text: Option<String>,
    /// The language the text is in.
    pub language: Option<String>,
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => Some(as_text(a).cmp(&as_text(b))),
    }
}

/// SQL-like `%` wildcard match, case-insensitive.
fn like(text: &str, pattern: &str) -> bool {
    let escaped = regex::escape(&pattern.to_lowercase()).replace('%', ".*");
    regex::Regex::new(&format!("^{escaped}$")).is_ok_and(|r| r.is_match(&text.to_lowercase()))
}

/// Whether the condition holds for `data`. An empty condition always holds.
pub fn holds(
    case_index: usize,
    condition: &Value,
    data: &Map<String, Value>,
) -> Result<bool, AgentError> {
    let Some(operands) = condition.get("operands").and_then(Value::as_array) else {
        return Ok(true);
    };
    if operands.is_empty() {
        return Ok(true);
    }
    let any = condition
        .get("operator")
        .and_then(Value::as_str)
        .is_some_and(|o| o.eq_ignore_ascii_case("or"));
    let mut results = Vec::with_capacity(operands.len());
    for op in operands {
        // Nested groups are conditions themselves.
        if op.get("operands").is_some() {
            results.push(holds(case_index, op, data)?);
            continue;
        }
        let key = match op.get("operand") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => continue,
        };
        let actual = data.get(&key).cloned().unwrap_or(Value::Null);
        let expected = op.get("value").cloned().unwrap_or(Value::Null);
        let operator = op
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or("IsNotNull");
        let present = !actual.is_null() && !as_text(&actual).is_empty();
        let r = match operator {
            "IsNull" => !present,
            "IsNotNull" => present,
            "Equal" => present && compare(&actual, &expected) == Some(std::cmp::Ordering::Equal),
            "NotEqual" => compare(&actual, &expected) != Some(std::cmp::Ordering::Equal),
            "GreaterThan" => {
                present && compare(&actual, &expected) == Some(std::cmp::Ordering::Greater)
            }
            "GreaterThanEqual" => present && compare(&actual, &expected).is_some_and(|o| o.is_ge()),
            "LessThan" => present && compare(&actual, &expected) == Some(std::cmp::Ordering::Less),
            "LessThanEqual" => present && compare(&actual, &expected).is_some_and(|o| o.is_le()),
            "Like" => like(&as_text(&actual), &as_text(&expected)),
            "NotLike" => !like(&as_text(&actual), &as_text(&expected)),
            "In" | "NotIn" => {
                let list: Vec<String> = match &expected {
                    Value::Array(a) => a.iter().map(as_text).collect(),
                    other => as_text(other)
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .collect(),
                };
                let inside = list.contains(&as_text(&actual));
                if operator == "In" {
                    inside
                } else {
                    !inside
                }
            }
            "RegEx" => {
                let re = regex::Regex::new(&as_text(&expected)).map_err(|e| AgentError::Regex {
                    case: case_index,
                    message: e.to_string(),
                })?;
                re.is_match(&as_text(&actual))
            }
            other => {
                return Err(AgentError::Operator {
                    case: case_index,
                    operator: other.to_owned(),
                })
            }
        };
        results.push(r);
    }
    Ok(if any {
        results.iter().any(|r| *r)
    } else {
        results.iter().all(|r| *r)
    })
}

fn template_for<'a>(case: &'a ResponseCase, language: &str) -> Option<(&'a str, String)> {
    let t = &case.output.templates;
    t.get(language)
        .map(|s| (s.as_str(), language.to_owned()))
        .or_else(|| {
            case.output
                .text
                .as_deref()
                .map(|s| (s, language.to_owned()))
        })
        .or_else(|| t.get("en").map(|s| (s.as_str(), "en".to_owned())))
        .or_else(|| t.get("de").map(|s| (s.as_str(), "de".to_owned())))
        .or_else(|| t.iter().next().map(|(l, s)| (s.as_str(), l.clone())))
}

/// Renders a template with the parameters (and anything else in `data`). Missing values render
/// empty; HTML escaping is off because replies are plain text.
pub fn render(
    case_index: usize,
    template: &str,
    data: &Map<String, Value>,
) -> Result<String, AgentError> {
    let mut hb = Handlebars::new();
    hb.register_escape_fn(handlebars::no_escape);
    hb.render_template(template, data)
        .map_err(|e| AgentError::Template {
            case: case_index,
            message: e.to_string(),
        })
}

/// The first response case whose condition holds, rendered in `language` (`de`, `en`, …).
pub fn outcome(
    agent: &AiAgent,
    data: &Map<String, Value>,
    language: &str,
) -> Result<Option<Outcome>, AgentError> {
    for (i, case) in agent.settings.response_cases.iter().enumerate() {
        if !holds(i, &case.condition, data)? {
            continue;
        }
        let (text, lang) = match template_for(case, language) {
            Some((t, lang)) => (Some(render(i, t, data)?), Some(lang)),
            None => (None, None),
        };
        return Ok(Some(Outcome {
            case: i,
            description: case.description.clone(),
            ty: case.output.ty.clone(),
            auto_execute: case.auto_execute,
            text,
            language: lang,
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn agent() -> Result<AiAgent, serde_json::Error> {
        serde_json::from_value(json!({
            "name": "Zählerstand", "slug": "meter_reading",
            "settings": {"responseCases": [
                {"description": "complete", "autoExecute": true,
                 "condition": {"operator": "And", "operands": [
                    {"operand": "meterNumber", "operator": "IsNotNull"},
                    {"operand": "meterReading", "operator": "GreaterThan", "value": 0}]},
                 "output": {"type": "textTemplateAndClose", "templates": {
                    "de": "Danke, Stand {{meterReading}} für {{meterNumber}} erfasst.",
                    "en": "Thanks, reading {{meterReading}} for {{meterNumber}} recorded."}}},
                {"description": "ask", "output": {"type": "interaction", "text": "Bitte senden Sie Zählernummer und Stand."}}
            ]}
        }))
    }

    #[test]
    fn the_first_case_that_holds_renders_in_the_language() -> Result<(), Box<dyn std::error::Error>>
    {
        let a = agent()?;
        let o = outcome(
            &a,
            &data(json!({"meterNumber": "1ESY1", "meterReading": 12345.6})),
            "en",
        )?;
        let o = o.ok_or("no outcome")?;
        assert_eq!(o.case, 0);
        assert!(o.auto_execute);
        assert_eq!(
            o.text.as_deref(),
            Some("Thanks, reading 12345.6 for 1ESY1 recorded.")
        );
        let o = outcome(&a, &data(json!({"meterNumber": "1ESY1"})), "de")?.ok_or("no outcome")?;
        assert_eq!(o.case, 1);
        assert_eq!(o.ty, "interaction");
        assert!(!o.auto_execute);
        Ok(())
    }

    #[test]
    fn operators() -> Result<(), AgentError> {
        let d = data(json!({"a": "Berlin", "n": 5, "e": ""}));
        let c = |op: &str, operand: &str, v: Value| json!({"operands": [{"operand": operand, "operator": op, "value": v}]});
        assert!(holds(0, &c("Like", "a", json!("ber%")), &d)?);
        assert!(holds(0, &c("NotLike", "a", json!("ham%")), &d)?);
        assert!(holds(0, &c("In", "a", json!(["Hamburg", "Berlin"])), &d)?);
        assert!(holds(0, &c("NotIn", "a", json!("Hamburg, Köln")), &d)?);
        assert!(holds(0, &c("LessThanEqual", "n", json!(5)), &d)?);
        assert!(!holds(0, &c("GreaterThan", "n", json!(5)), &d)?);
        assert!(holds(0, &c("IsNull", "e", Value::Null), &d)?);
        assert!(holds(0, &c("IsNull", "missing", Value::Null), &d)?);
        assert!(holds(0, &c("RegEx", "a", json!("^B.*n$")), &d)?);
        assert!(holds(
            0,
            &json!({"operator": "Or", "operands": [
            {"operand": "n", "operator": "Equal", "value": 1},
            {"operand": "n", "operator": "Equal", "value": "5"}]}),
            &d
        )?);
        assert!(matches!(
            holds(0, &c("Sometimes", "a", Value::Null), &d),
            Err(AgentError::Operator { .. })
        ));
        Ok(())
    }

    #[test]
    fn replies_are_not_html_escaped() -> Result<(), AgentError> {
        assert_eq!(
            render(
                0,
                "{{a}} & {{b}}",
                &data(json!({"a": "<x>", "b": "Müller & Söhne"}))
            )?,
            "<x> & Müller & Söhne"
        );
        assert_eq!(
            render(0, "{{#if a}}yes{{/if}}{{missing}}", &data(json!({"a": 1})))?,
            "yes"
        );
        Ok(())
    }
}
