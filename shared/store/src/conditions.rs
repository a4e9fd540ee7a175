//! Property conditions of tags (`detectionDetails.conditions`): a small boolean language over the
//! ticket, its contract and its customer, e.g.
//! `{"operator": "and", "operands": [{"field": "contract.energy", "operator": "equals", "value": "gas"}]}`.
//! Parsed once when a tag is saved, so a bad condition is a 400 and never a routing failure.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Test { field: String, op: Op, value: Value },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equals,
    NotEquals,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    In,
    NotIn,
    GreaterThan,
    LessThan,
    Exists,
    NotExists,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "equals" | "=" | "==" => Op::Equals,
            "notEquals" | "!=" => Op::NotEquals,
            "contains" => Op::Contains,
            "notContains" => Op::NotContains,
            "startsWith" => Op::StartsWith,
            "endsWith" => Op::EndsWith,
            "in" => Op::In,
            "notIn" => Op::NotIn,
            "greaterThan" | ">" => Op::GreaterThan,
            "lessThan" | "<" => Op::LessThan,
            "exists" => Op::Exists,
            "notExists" => Op::NotExists,
            _ => return None,
        })
    }
}

const ROOTS: [&str; 3] = ["ticket", "contract", "customer"];

impl Condition {
    pub fn parse(v: &Value) -> Result<Condition, String> {
        let op = v
            .get("operator")
            .and_then(Value::as_str)
            .ok_or("every condition needs an \"operator\"")?;
        match op {
            "and" | "or" => {
                let operands = v
                    .get("operands")
                    .and_then(Value::as_array)
                    .ok_or(format!("\"{op}\" needs an \"operands\" array"))?;
                let parsed = operands
                    .iter()
                    .map(Condition::parse)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if op == "and" {
                    Condition::All(parsed)
                } else {
                    Condition::Any(parsed)
                })
            }
            "not" => {
                let inner = v
                    .get("operands")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .ok_or("\"not\" needs one operand")?;
                Ok(Condition::Not(Box::new(Condition::parse(inner)?)))
            }
            other => {
                let op = Op::parse(other).ok_or(format!("unknown operator \"{other}\""))?;
                let field = v
                    .get("field")
                    .and_then(Value::as_str)
                    .ok_or("a comparison needs a \"field\" such as \"contract.energy\"")?;
                if !ROOTS.iter().any(|r| field.split('.').next() == Some(*r))
                    || !field.contains('.')
                {
                    return Err(format!(
                        "field \"{field}\" must start with ticket., contract. or customer."
                    ));
                }
                let value = v.get("value").cloned().unwrap_or(Value::Null);
                if matches!(op, Op::In | Op::NotIn) && !value.is_array() {
                    return Err(format!("\"{other}\" needs an array value"));
                }
                Ok(Condition::Test {
                    field: field.to_owned(),
                    op,
                    value,
                })
            }
        }
    }

    /// Which of `ticket`, `contract`, `customer` the condition reads (for the assignment source).
    pub fn roots(&self) -> Vec<&str> {
        match self {
            Condition::All(c) | Condition::Any(c) => c.iter().flat_map(Condition::roots).collect(),
            Condition::Not(c) => c.roots(),
            Condition::Test { field, .. } => field.split('.').next().into_iter().collect(),
        }
    }

    /// Evaluates against `{"ticket": …, "contract": …, "customer": …}`; a missing field is
    /// neither equal to nor greater than anything.
    pub fn eval(&self, ctx: &Value) -> bool {
        match self {
            Condition::All(c) => c.iter().all(|x| x.eval(ctx)),
            Condition::Any(c) => c.iter().any(|x| x.eval(ctx)),
            Condition::Not(c) => !c.eval(ctx),
            Condition::Test { field, op, value } => {
                let actual = field
                    .split('.')
                    .try_fold(ctx, |v, k| v.get(k))
                    .filter(|v| !v.is_null());
                test(actual, *op, value)
            }
        }
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_lowercase(),
        other => other.to_string().to_lowercase(),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => as_text(a) == as_text(b),
    }
}

fn test(actual: Option<&Value>, op: Op, expected: &Value) -> bool {
    match op {
        Op::Exists => return actual.is_some(),
        Op::NotExists => return actual.is_none(),
        Op::NotEquals => return !actual.is_some_and(|a| same(a, expected)),
        Op::NotContains => return !test(actual, Op::Contains, expected),
        Op::NotIn => return !test(actual, Op::In, expected),
        _ => {}
    }
    let Some(a) = actual else { return false };
    match op {
        Op::Equals => same(a, expected),
        Op::Contains => match a {
            Value::Array(items) => items.iter().any(|i| same(i, expected)),
            _ => as_text(a).contains(&as_text(expected)),
        },
        Op::StartsWith => as_text(a).starts_with(&as_text(expected)),
        Op::EndsWith => as_text(a).ends_with(&as_text(expected)),
        Op::In => expected
            .as_array()
            .is_some_and(|opts| opts.iter().any(|o| same(a, o))),
        Op::GreaterThan => matches!((a.as_f64(), expected.as_f64()), (Some(x), Some(y)) if x > y),
        Op::LessThan => matches!((a.as_f64(), expected.as_f64()), (Some(x), Some(y)) if x < y),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_conditions_evaluate_against_ticket_contract_and_customer() {
        let c = Condition::parse(&json!({"operator": "and", "operands": [
            {"field": "contract.energy", "operator": "equals", "value": "GAS"},
            {"operator": "or", "operands": [
                {"field": "ticket.subject", "operator": "contains", "value": "abschlag"},
                {"field": "customer.business", "operator": "equals", "value": true}
            ]}
        ]}))
        .expect("parse");
        let ctx = json!({"ticket": {"subject": "Abschlag anpassen"}, "contract": {"energy": "gas"}, "customer": null});
        assert!(c.eval(&ctx));
        let ctx = json!({"ticket": {"subject": "Umzug"}, "contract": {"energy": "gas"}, "customer": {"business": false}});
        assert!(!c.eval(&ctx));
        assert_eq!(c.roots(), vec!["contract", "ticket", "customer"]);
    }

    #[test]
    fn missing_fields_and_numbers() {
        let gt = Condition::parse(
            &json!({"field": "contract.monthlyDeposit", "operator": "greaterThan", "value": 50}),
        )
        .expect("parse");
        assert!(gt.eval(&json!({"contract": {"monthlyDeposit": 53}})));
        assert!(!gt.eval(&json!({"contract": null})));
        let ne = Condition::parse(
            &json!({"field": "ticket.channel", "operator": "notEquals", "value": "chat"}),
        )
        .expect("parse");
        assert!(ne.eval(&json!({"ticket": {}})));
        let inn = Condition::parse(
            &json!({"field": "ticket.channel", "operator": "in", "value": ["email", "letter"]}),
        )
        .expect("parse");
        assert!(inn.eval(&json!({"ticket": {"channel": "letter"}})));
    }

    #[test]
    fn bad_conditions_are_rejected_with_a_reason() {
        for bad in [
            json!({"field": "ticket.x"}),
            json!({"operator": "like", "field": "ticket.x", "value": 1}),
            json!({"operator": "equals", "field": "invoice.x", "value": 1}),
            json!({"operator": "in", "field": "ticket.channel", "value": "email"}),
            json!({"operator": "and"}),
        ] {
            assert!(Condition::parse(&bad).is_err(), "{bad}");
        }
    }
}
