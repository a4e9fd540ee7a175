//! Ticket search with the reference product's filter language: `{key, comparator, value |
//! values | from, to}` over a fixed set of keys. Keys and comparators come from a whitelist;
//! every value is a bound parameter, typed by its key, so a filter can only ever be data.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use switchyard_domain::time::parse_time;
use utoipa::ToSchema;

use crate::{Result, StoreError};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    /// e.g. `t.status`, `t.createdAt`, `tt.tagId`, `i.aiAgentId`.
    pub key: String,
    /// `=`, `!=`, `>`, `<`, `>=`, `<=`, `in`, `between`, `like`.
    pub comparator: String,
    pub value: Option<Value>,
    pub values: Option<Vec<Value>>,
    pub from: Option<Value>,
    pub to: Option<Value>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Int,
    Text,
    Time,
    /// Text restricted to the listed values.
    Enum(&'static [&'static str]),
}

/// Every filter key: (key, SQL expression over `t`, kind). The one table both the query builder
/// and the OpenAPI document (`filter_schema`) read.
const COLUMNS: &[(&str, &str, Kind)] = {
    use switchyard_domain::{
        AiSupportLevel, Channel, Direction, Priority, Sentiment, TicketStatus,
    };
    use Kind::*;
    &[
        ("t.id", "t.id", Int),
        ("t.status", "t.status", Enum(TicketStatus::NAMES)),
        ("t.channel", "t.channel", Enum(Channel::NAMES)),
        ("t.direction", "t.direction", Enum(Direction::NAMES)),
        ("t.priority", "t.priority", Enum(Priority::NAMES)),
        (
            "t.aiSupportLevel",
            "t.ai_support_level",
            Enum(AiSupportLevel::NAMES),
        ),
        ("t.sentiment", "t.sentiment", Enum(Sentiment::NAMES)),
        ("t.spamStatus", "t.spam_status", Text),
        ("t.from", "t.from_addr", Text),
        ("t.languageCode", "t.language_code", Text),
        ("t.createdAt", "t.created_at", Time),
        ("t.modifiedAt", "t.modified_at", Time),
        ("t.dueBy", "t.due_by", Time),
        ("t.lastMessageAt", "t.last_customer_message_at", Time),
        (
            "t.lastCustomerMessageAt",
            "t.last_customer_message_at",
            Time,
        ),
        ("t.agentId", "t.agent_id", Int),
        ("t.contractId", "t.contract_id", Int),
        ("t.customerId", "t.customer_id", Int),
        ("t.subchannelId", "t.subchannel_id", Int),
        ("tt.tagId", "tt.tagId", Int),
        ("i.aiAgentId", "i.aiAgentId", Int),
    ]
};

/// key → (SQL expression over `t`, kind)
fn column(key: &str) -> Option<(&'static str, Kind)> {
    COLUMNS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, col, kind)| (*col, *kind))
}

use switchyard_domain::time::STORABLE_UNIX_SECONDS as UNIX_SECONDS;

/// JSON Schema of one filter: for each kind of key, the comparators it takes and the values
/// `typed` accepts, so the document states the filter language the server enforces.
pub fn filter_schema() -> Value {
    use serde_json::json;
    let int = json!({"anyOf": [
        {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX},
        {"type": "string", "pattern": "^-?[0-9]{1,18}$"}
    ]});
    let text = json!({"anyOf": [
        {"type": "string"},
        {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}
    ]});
    let time = json!({"anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "integer", "minimum": UNIX_SECONDS.start(), "maximum": UNIX_SECONDS.end()}
    ]});
    // One variant: these keys, these comparators, the value fields it reads.
    let variant = |keys: Vec<&str>, comparators: &[&str], fields: &[(&str, Value)]| {
        // Fields a comparator does not read may be sent with any value (`values` as a list).
        let mut props = serde_json::Map::new();
        for f in ["value", "from", "to"] {
            props.insert(f.to_owned(), json!({}));
        }
        props.insert("values".into(), json!({"type": ["array", "null"]}));
        props.insert("key".into(), json!({"type": "string", "enum": keys}));
        props.insert(
            "comparator".into(),
            json!({"type": "string", "enum": comparators}),
        );
        let mut required = vec!["key", "comparator"];
        for (f, schema) in fields {
            props.insert((*f).to_owned(), schema.clone());
            required.push(f);
        }
        json!({"type": "object", "properties": props, "required": required,
               "additionalProperties": false})
    };
    let list = |item: &Value, min: usize| json!({"type": "array", "items": item, "minItems": min});
    let mut variants = Vec::new();
    let mut by_kind: Vec<(Vec<&str>, Kind)> = Vec::new();
    for (key, col, kind) in COLUMNS.iter().copied() {
        if col == "tt.tagId" || col == "i.aiAgentId" {
            variants.push(variant(vec![key], &["=", "!="], &[("value", int.clone())]));
            variants.push(variant(vec![key], &["in"], &[("values", list(&int, 0))]));
            continue;
        }
        match by_kind.iter_mut().find(|(_, k)| *k == kind) {
            Some((keys, _)) => keys.push(key),
            None => by_kind.push((vec![key], kind)),
        }
    }
    for (keys, kind) in by_kind {
        let value = match kind {
            Kind::Int => int.clone(),
            Kind::Text => text.clone(),
            Kind::Time => time.clone(),
            Kind::Enum(allowed) => json!({"type": "string", "enum": allowed}),
        };
        let compare = ["=", "!=", ">", "<", ">=", "<="];
        variants.push(variant(keys.clone(), &compare, &[("value", value.clone())]));
        variants.push(variant(
            keys.clone(),
            &["in"],
            &[("values", list(&value, 1))],
        ));
        variants.push(variant(
            keys.clone(),
            &["between"],
            &[("from", value.clone()), ("to", value)],
        ));
        if matches!(kind, Kind::Text | Kind::Enum(_)) {
            variants.push(variant(keys, &["like"], &[("value", text.clone())]));
        }
    }
    json!({"anyOf": variants})
}

enum Bound {
    Int(i64),
    Text(String),
    Time(DateTime<Utc>),
}

fn typed(field: &str, kind: Kind, v: &Value) -> Result<Bound> {
    let bad = |m: &str| StoreError::invalid(field, m);
    match kind {
        Kind::Int => v
            .as_i64()
            .or_else(|| {
                v.as_str()
                    .filter(|s| {
                        let digits = s.strip_prefix('-').unwrap_or(s);
                        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|s| s.parse().ok())
            })
            .map(Bound::Int)
            .ok_or_else(|| bad("must be an integer")),
        Kind::Time => v
            .as_str()
            .and_then(parse_time)
            .or_else(|| {
                v.as_i64()
                    .filter(|s| UNIX_SECONDS.contains(s))
                    .and_then(|s| DateTime::from_timestamp(s, 0))
            })
            .map(Bound::Time)
            .ok_or_else(|| {
                bad("must be a timestamp (YYYY-MM-DD HH:MM:SS, ISO 8601 or unix seconds)")
            }),
        Kind::Text => v
            .as_str()
            .map(|s| Bound::Text(s.to_owned()))
            .or_else(|| v.as_i64().map(|n| Bound::Text(n.to_string())))
            .ok_or_else(|| bad("must be a string")),
        Kind::Enum(allowed) => match v.as_str() {
            Some(s) if allowed.contains(&s) => Ok(Bound::Text(s.to_owned())),
            _ => Err(bad(&format!("must be one of {}", allowed.join(", ")))),
        },
    }
}

fn push(q: &mut QueryBuilder<'_, Postgres>, b: Bound) {
    match b {
        Bound::Int(v) => q.push_bind(v),
        Bound::Text(v) => q.push_bind(v),
        Bound::Time(v) => q.push_bind(v),
    };
}

/// Appends ` AND <condition>` for one filter (`field` names it in errors, e.g. `filters[2]`).
fn push_filter(q: &mut QueryBuilder<'_, Postgres>, f: &Filter, field: &str) -> Result<()> {
    let (col, kind) = column(&f.key)
        .ok_or_else(|| StoreError::invalid(&format!("{field}.key"), "unknown key"))?;
    let vfield = format!("{field}.value");
    let single = || -> Result<Bound> {
        let v = f
            .value
            .as_ref()
            .ok_or_else(|| StoreError::invalid(&vfield, "missing"))?;
        typed(&vfield, kind, v)
    };
    // Array-valued keys: the ticket's tag ids, the AI agents of its intents.
    if col == "tt.tagId" || col == "i.aiAgentId" {
        let ids: Vec<i64> = match f.comparator.as_str() {
            "=" | "!=" => vec![match single()? {
                Bound::Int(v) => v,
                _ => return Err(StoreError::invalid(&vfield, "must be an integer")),
            }],
            "in" => f
                .values
                .as_ref()
                .ok_or_else(|| StoreError::invalid(&format!("{field}.values"), "missing"))?
                .iter()
                .map(|v| match typed(&format!("{field}.values"), Kind::Int, v)? {
                    Bound::Int(i) => Ok(i),
                    _ => Err(StoreError::invalid(
                        &format!("{field}.values"),
                        "must be integers",
                    )),
                })
                .collect::<Result<_>>()?,
            _ => {
                return Err(StoreError::invalid(
                    &format!("{field}.comparator"),
                    "use =, != or in for this key",
                ))
            }
        };
        let negate = if f.comparator == "!=" { "NOT " } else { "" };
        if col == "tt.tagId" {
            q.push(format!(" AND {negate}(t.tag_ids && "))
                .push_bind(ids)
                .push(")");
        } else {
            q.push(format!(" AND {negate}EXISTS (SELECT 1 FROM intents i WHERE i.ticket_id = t.id AND i.ai_agent_id = ANY("))
                .push_bind(ids)
                .push("))");
        }
        return Ok(());
    }
    match f.comparator.as_str() {
        op @ ("=" | "!=" | ">" | "<" | ">=" | "<=") => {
            let op = if op == "!=" { "IS DISTINCT FROM" } else { op };
            q.push(format!(" AND {col} {op} "));
            push(q, single()?);
        }
        "like" => {
            if matches!(kind, Kind::Int | Kind::Time) {
                return Err(StoreError::invalid(
                    &format!("{field}.comparator"),
                    "like needs a text key",
                ));
            }
            let Bound::Text(v) = typed(
                &vfield,
                Kind::Text,
                f.value.as_ref().unwrap_or(&Value::Null),
            )?
            else {
                return Err(StoreError::invalid(&vfield, "must be a string"));
            };
            q.push(format!(" AND {col} ILIKE "))
                .push_bind(format!("%{v}%"));
        }
        "in" => {
            let values = f.values.as_ref().filter(|v| !v.is_empty()).ok_or_else(|| {
                StoreError::invalid(&format!("{field}.values"), "needs a non-empty list")
            })?;
            q.push(format!(" AND {col} IN ("));
            let mut sep = q.separated(", ");
            for v in values {
                match typed(&format!("{field}.values"), kind, v)? {
                    Bound::Int(x) => sep.push_bind(x),
                    Bound::Text(x) => sep.push_bind(x),
                    Bound::Time(x) => sep.push_bind(x),
                };
            }
            q.push(")");
        }
        "between" => {
            let from = f
                .from
                .as_ref()
                .ok_or_else(|| StoreError::invalid(&format!("{field}.from"), "missing"))?;
            let to =
                f.to.as_ref()
                    .ok_or_else(|| StoreError::invalid(&format!("{field}.to"), "missing"))?;
            q.push(format!(" AND {col} BETWEEN "));
            push(q, typed(&format!("{field}.from"), kind, from)?);
            q.push(" AND ");
            push(q, typed(&format!("{field}.to"), kind, to)?);
        }
        _ => {
            return Err(StoreError::invalid(
                &format!("{field}.comparator"),
                "must be one of = != > < >= <= in between like",
            ))
        }
    }
    Ok(())
}

/// A search request (`POST /api/mind/ticket/search`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchRequest {
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Words in the subject, the plain body or the sender.
    pub q: Option<String>,
    /// 1 to 1000, default 50.
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    #[schema(minimum = 0)]
    pub offset: Option<i64>,
    /// A `t.*` key; default `t.createdAt`.
    #[schema(
        pattern = "^t\\.(id|status|channel|direction|priority|aiSupportLevel|sentiment|spamStatus|from|languageCode|createdAt|modifiedAt|dueBy|lastCustomerMessageAt|agentId|contractId|customerId|subchannelId)$"
    )]
    pub order_by_field: Option<String>,
    /// `asc` or `desc` (default).
    #[schema(pattern = "^(asc|desc|ASC|DESC)$")]
    pub order_by_direction: Option<String>,
}

const COMPACT: &str = "jsonb_build_object('id', t.id, 'from', t.from_addr, 'fromName', t.from_name,
    'subject', t.subject, 'summary', t.summary, 'status', t.status, 'channel', t.channel,
    'direction', t.direction, 'priority', t.priority, 'aiSupportLevel', t.ai_support_level,
    'languageCode', t.language_code, 'sentiment', t.sentiment, 'spamStatus', t.spam_status,
    'agentId', t.agent_id, 'customerId', t.customer_id::text, 'contractId', t.contract_id::text,
    'tagIds', to_jsonb(t.tag_ids), 'processingFlags', t.processing_flags,
    'createdAt', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
    'modifiedAt', to_char(t.modified_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
    'dueBy', to_char(t.due_by AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
    'firstResponseDueBy', to_char(t.first_response_due_by AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
    'closedAt', to_char(t.closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))";

fn push_where(q: &mut QueryBuilder<'_, Postgres>, r: &SearchRequest) -> Result<()> {
    q.push(" FROM tickets t WHERE true");
    for (i, f) in r.filters.iter().enumerate() {
        push_filter(q, f, &format!("filters[{i}]"))?;
    }
    if let Some(text) = r.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        for word in text.split_whitespace().take(8) {
            let pattern = format!("%{word}%");
            q.push(" AND (t.subject ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR t.body_plain ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR t.from_addr ILIKE ")
                .push_bind(pattern)
                .push(")");
        }
    }
    Ok(())
}

/// Compact tickets matching the request, and how many match in all.
pub async fn search(
    conn: &mut PgConnection,
    r: &SearchRequest,
) -> Result<(Vec<Value>, i64, i64, i64)> {
    let limit = r.limit.unwrap_or(50);
    let offset = r.offset.unwrap_or(0);
    if !(1..=1000).contains(&limit) {
        return Err(StoreError::invalid("limit", "must be between 1 and 1000"));
    }
    if offset < 0 {
        return Err(StoreError::invalid("offset", "must not be negative"));
    }
    let order_key = r.order_by_field.as_deref().unwrap_or("t.createdAt");
    let order_col = match column(order_key) {
        Some((c, _)) if c.starts_with("t.") => c,
        _ => return Err(StoreError::invalid("orderByField", "must be a t.* key")),
    };
    let dir = match r.order_by_direction.as_deref().unwrap_or("desc") {
        d if d.eq_ignore_ascii_case("asc") => "ASC",
        d if d.eq_ignore_ascii_case("desc") => "DESC",
        _ => {
            return Err(StoreError::invalid(
                "orderByDirection",
                "must be asc or desc",
            ))
        }
    };

    let mut count = QueryBuilder::new("SELECT count(*)");
    push_where(&mut count, r)?;
    let total: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;

    let mut q = QueryBuilder::new(format!("SELECT {COMPACT}"));
    push_where(&mut q, r)?;
    q.push(format!(
        " ORDER BY {order_col} {dir} NULLS LAST, t.id {dir} LIMIT "
    ))
    .push_bind(limit)
    .push(" OFFSET ")
    .push_bind(offset);
    let rows: Vec<Value> = q.build_query_scalar().fetch_all(conn).await?;
    Ok((rows, total, limit, offset))
}
