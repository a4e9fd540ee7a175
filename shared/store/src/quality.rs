//! AI quality checks: test cases, test runs and their test tickets, and how a run's results are
//! scored per dimension against what was expected.
//!
//! A result (expected or actual) has the reference product's shape: `contractId`,
//! `intentDetection` (agent codes), `inputParameters` (`{code: {param: value}}`), `outcomeType`
//! (`{code: type}`), `sentiment`, `tags` (names), `aiSupportLevel`.

use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::Actor;
use crate::{Result, StoreError};

/// What the AI made of the ticket as it stands now: the expected result of a new test case.
pub async fn snapshot(conn: &mut PgConnection, ticket_id: i64) -> Result<Value> {
    let row: Option<(Option<i64>, Option<String>, String)> = sqlx::query_as(
        "SELECT contract_id, sentiment, ai_support_level FROM tickets WHERE id = $1",
    )
    .bind(ticket_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (contract, sentiment, level) =
        row.ok_or_else(|| StoreError::NotFound(format!("ticket {ticket_id}")))?;
    let intents: Vec<(String, Value)> = sqlx::query_as(
        "SELECT code, data FROM intents WHERE ticket_id = $1 AND status <> 'deleted' ORDER BY id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    let tags: Vec<String> = sqlx::query_scalar(
        "SELECT t.name FROM ticket_tags tt JOIN tags t ON t.id = tt.tag_id WHERE tt.ticket_id = $1 ORDER BY t.name",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut params = Map::new();
    let mut codes = Vec::new();
    for (code, data) in intents {
        if !codes.contains(&code) {
            codes.push(code.clone());
        }
        params.insert(code, data);
    }
    Ok(json!({
        "contractId": contract, "intentDetection": codes, "inputParameters": params,
        "sentiment": sentiment, "tags": tags, "aiSupportLevel": level,
    }))
}

/// What a test run's replay of a ticket produced, read from the effects the stages recorded.
/// `None` while the replay has not reached the last stage.
pub async fn actual(
    conn: &mut PgConnection,
    run_key: Uuid,
    ticket_id: i64,
) -> Result<Option<(Value, Value)>> {
    let rows: Vec<(String, Option<Value>, Value)> = sqlx::query_as(
        "SELECT stage, recorded_effects, outcome FROM stage_runs
          WHERE test_run_key = $1 AND ticket_id = $2 ORDER BY id",
    )
    .bind(run_key.to_string())
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    if !rows.iter().any(|(stage, _, _)| stage == "autoexecute") {
        return Ok(None);
    }
    let mut result = snapshot(conn, ticket_id).await?;
    // Start from the ticket's stored state; the replay's recorded effects override it.
    result["intentDetection"] = json!([]);
    result["inputParameters"] = json!({});
    let mut codes: Vec<String> = Vec::new();
    for (_, effects, _) in &rows {
        for e in effects
            .iter()
            .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        {
            match e.get("effect").and_then(Value::as_str) {
                Some("patchTicket") => {
                    let patch = &e["patch"];
                    for (from, to) in [
                        ("contractId", "contractId"),
                        ("sentiment", "sentiment"),
                        ("aiSupportLevel", "aiSupportLevel"),
                    ] {
                        if let Some(v) = patch.get(from).filter(|v| !v.is_null()) {
                            result[to] = v.clone();
                        }
                    }
                }
                Some("upsertIntent") => {
                    if let Some(code) = e.get("code").and_then(Value::as_str) {
                        if !codes.iter().any(|c| c == code) {
                            codes.push(code.to_owned());
                        }
                        result["inputParameters"][code] = e["data"].clone();
                    }
                }
                Some("setTags") => {
                    let ids: Vec<i64> = e["tags"]["all"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_i64).collect())
                        .unwrap_or_default();
                    let names: Vec<String> = sqlx::query_scalar(
                        "SELECT name FROM tags WHERE id = ANY($1) ORDER BY name",
                    )
                    .bind(&ids)
                    .fetch_all(&mut *conn)
                    .await?;
                    result["tags"] = json!(names);
                }
                _ => {}
            }
        }
    }
    result["intentDetection"] = json!(codes);
    let raw: Vec<Value> = rows
        .into_iter()
        .map(|(stage, effects, outcome)| json!({"stage": stage, "recordedEffects": effects, "outcome": outcome}))
        .collect();
    Ok(Some((result, Value::Array(raw))))
}

fn set_of(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

/// |A ∩ B| / |A ∪ B|, 1 when both are empty.
fn jaccard(a: &[String], b: &[String]) -> f64 {
    let union = a.iter().chain(b.iter().filter(|x| !a.contains(x))).count();
    if union == 0 {
        return 1.0;
    }
    a.iter().filter(|x| b.contains(x)).count() as f64 / union as f64
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        _ => {
            a == b
                || (a.as_str().is_some()
                    && a.as_str().map(str::to_lowercase) == b.as_str().map(str::to_lowercase))
        }
    }
}

/// Scores per dimension (0 to 1) and `overall`, their mean over the dimensions the expected
/// result names.
pub fn score(expected: &Value, actual: &Value) -> Value {
    let mut scores = Map::new();
    if let Some(e) = expected.get("contractId") {
        scores.insert(
            "contractId".into(),
            json!(if same(e, &actual["contractId"]) {
                1.0
            } else {
                0.0
            }),
        );
    }
    if expected.get("intentDetection").is_some() {
        scores.insert(
            "intents".into(),
            json!(jaccard(
                &set_of(&expected["intentDetection"]),
                &set_of(&actual["intentDetection"])
            )),
        );
    }
    if let Some(params) = expected.get("inputParameters").and_then(Value::as_object) {
        let mut n = 0;
        let mut ok = 0;
        for (code, values) in params {
            for (key, value) in values.as_object().into_iter().flatten() {
                n += 1;
                if same(value, &actual["inputParameters"][code][key]) {
                    ok += 1;
                }
            }
        }
        scores.insert(
            "parameters".into(),
            json!(if n == 0 { 1.0 } else { ok as f64 / n as f64 }),
        );
    }
    if let Some(types) = expected.get("outcomeType").and_then(Value::as_object) {
        let n = types.len();
        let ok = types
            .iter()
            .filter(|(c, t)| same(t, &actual["outcomeType"][c.as_str()]))
            .count();
        scores.insert(
            "outcome".into(),
            json!(if n == 0 { 1.0 } else { ok as f64 / n as f64 }),
        );
    }
    for key in ["sentiment", "aiSupportLevel"] {
        if let Some(e) = expected.get(key).filter(|v| !v.is_null()) {
            scores.insert(
                key.into(),
                json!(if same(e, &actual[key]) { 1.0 } else { 0.0 }),
            );
        }
    }
    if expected.get("tags").is_some() {
        scores.insert(
            "tags".into(),
            json!(jaccard(
                &set_of(&expected["tags"]),
                &set_of(&actual["tags"])
            )),
        );
    }
    let values: Vec<f64> = scores.values().filter_map(Value::as_f64).collect();
    let overall = if values.is_empty() {
        1.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    };
    scores.insert("overall".into(), json!(overall));
    Value::Object(scores)
}

const CASE_JSON: &str =
    "jsonb_build_object('id', c.id, 'ticketId', c.ticket_id, 'aiAgentId', c.ai_agent_id,
        'channel', c.channel, 'summary', c.summary, 'description', c.description,
        'expectedResult', c.expected_result, 'modifiedBy', c.modified_by,
        'modifiedAt', to_char(c.modified_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))";

/// Adds a test case for the ticket with `expected` as its expected result.
pub async fn create_case(
    conn: &mut PgConnection,
    ticket_id: i64,
    ai_agent_id: Option<i64>,
    expected: &Value,
    description: &str,
    actor: Actor<'_>,
) -> Result<Value> {
    sqlx::query_scalar(&format!(
        "WITH c AS (INSERT INTO ai_test_cases (ticket_id, ai_agent_id, channel, summary, description,
                                             expected_result, modified_by)
                    SELECT t.id, $2, t.channel, t.summary, $3, $4, $5 FROM tickets t WHERE t.id = $1
                    RETURNING *)
         SELECT {CASE_JSON} FROM c"
    ))
    .bind(ticket_id)
    .bind(ai_agent_id)
    .bind(description)
    .bind(expected)
    .bind(actor)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("ticket {ticket_id}")))
}

/// Test cases, of one agent or all.
pub async fn cases(
    conn: &mut PgConnection,
    ai_agent_id: Option<i64>,
    channel: Option<&str>,
    q: Option<&str>,
) -> Result<Vec<Value>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT {CASE_JSON} FROM ai_test_cases c
          WHERE ($1::bigint IS NULL OR c.ai_agent_id = $1) AND ($2::text IS NULL OR c.channel = $2)
            AND ($3::text IS NULL OR c.summary ILIKE '%' || $3 || '%' OR c.description ILIKE '%' || $3 || '%')
          ORDER BY c.id"
    ))
    .bind(ai_agent_id)
    .bind(channel)
    .bind(q)
    .fetch_all(conn)
    .await?)
}

pub async fn update_case(
    conn: &mut PgConnection,
    id: i64,
    description: Option<&str>,
    expected: Option<&Value>,
    actor: Actor<'_>,
) -> Result<Value> {
    sqlx::query_scalar(&format!(
        "WITH c AS (UPDATE ai_test_cases SET description = coalesce($2, description),
                        expected_result = coalesce($3, expected_result), modified_by = $4, modified_at = now()
                     WHERE id = $1 RETURNING *)
         SELECT {CASE_JSON} FROM c"
    ))
    .bind(id)
    .bind(description)
    .bind(expected)
    .bind(actor)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("test case {id}")))
}

pub async fn delete_case(conn: &mut PgConnection, id: i64) -> Result<()> {
    let done = sqlx::query("DELETE FROM ai_test_cases WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("test case {id}")));
    }
    Ok(())
}

/// The agents that have test cases, with how many.
pub async fn agents_with_cases(conn: &mut PgConnection) -> Result<Vec<Value>> {
    Ok(sqlx::query_scalar(
        "SELECT jsonb_build_object('id', a.id, 'name', a.name, 'slug', a.slug, 'testCases', count(c.id))
           FROM ai_test_cases c JOIN ai_agents a ON a.id = c.ai_agent_id
          WHERE a.deleted_at IS NULL GROUP BY a.id ORDER BY a.name",
    )
    .fetch_all(conn)
    .await?)
}

/// A new run over the given test cases (all of the agent, or all when no agent is given, up to
/// `limit`); returns the run id, its key and the (ticket, message) pairs to replay.
pub async fn create_run(
    conn: &mut PgConnection,
    ai_agent_id: Option<i64>,
    case_ids: &[i64],
    description: &str,
    config: &Value,
    limit: i64,
    actor: Actor<'_>,
) -> Result<(i64, Uuid, Vec<(i64, i64)>)> {
    let key = Uuid::new_v4();
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO ai_test_runs (run_key, ai_agent_id, description, config, created_by)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(key)
    .bind(ai_agent_id)
    .bind(description)
    .bind(config)
    .bind(actor)
    .fetch_one(&mut *conn)
    .await?;
    // Each case replays its ticket's latest inbound message.
    let scheduled: Vec<(i64, i64)> = sqlx::query_as(
        "INSERT INTO ai_test_tickets (test_run_id, test_case_id, ticket_id, message_id, ai_agent_id, expected_result)
         SELECT $1, c.id, c.ticket_id, m.id, c.ai_agent_id, c.expected_result
           FROM ai_test_cases c
           JOIN LATERAL (SELECT id FROM messages WHERE ticket_id = c.ticket_id AND direction = 'in'
                          ORDER BY id DESC LIMIT 1) m ON true
          WHERE ($2::bigint IS NULL OR c.ai_agent_id = $2)
            AND (cardinality($3::bigint[]) = 0 OR c.id = ANY($3))
          ORDER BY c.id LIMIT $4
         RETURNING ticket_id, message_id",
    )
    .bind(run_id)
    .bind(ai_agent_id)
    .bind(case_ids)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok((run_id, key, scheduled))
}

const RUN_JSON: &str = "jsonb_build_object('id', r.id, 'aiAgentId', r.ai_agent_id, 'aiAgentName', a.name,
        'description', r.description, 'state', r.state, 'config', r.config, 'scores', r.scores,
        'createdBy', r.created_by,
        'createdAt', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
        'endDate', to_char(r.end_date AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
        'ticketsScheduledForTesting', (SELECT count(*) FROM ai_test_tickets x WHERE x.test_run_id = r.id),
        'ticketsTested', (SELECT count(*) FROM ai_test_tickets x WHERE x.test_run_id = r.id AND x.state <> 'scheduled'),
        'successfulTests', (SELECT count(*) FROM ai_test_tickets x WHERE x.test_run_id = r.id
                             AND (x.scores->>'overall')::float8 >= 0.999))";

pub async fn runs(conn: &mut PgConnection, limit: i64, offset: i64) -> Result<(Vec<Value>, i64)> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM ai_test_runs")
        .fetch_one(&mut *conn)
        .await?;
    let rows = sqlx::query_scalar(&format!(
        "SELECT {RUN_JSON} FROM ai_test_runs r LEFT JOIN ai_agents a ON a.id = r.ai_agent_id
          ORDER BY r.id DESC LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?;
    Ok((rows, total))
}

const TICKET_JSON: &str = "jsonb_build_object('id', x.id, 'testRunId', x.test_run_id, 'testCaseId', x.test_case_id,
        'ticketId', x.ticket_id, 'aiAgentId', x.ai_agent_id, 'state', x.state,
        'expectedResult', x.expected_result, 'actualResult', x.actual_result, 'rawResult', x.raw_result,
        'scores', x.scores)";

/// The run with its scores and test tickets.
pub async fn run(conn: &mut PgConnection, id: i64) -> Result<Option<(Value, Vec<Value>)>> {
    let run: Option<Value> = sqlx::query_scalar(&format!(
        "SELECT {RUN_JSON} FROM ai_test_runs r LEFT JOIN ai_agents a ON a.id = r.ai_agent_id WHERE r.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(run) = run else { return Ok(None) };
    let tickets = sqlx::query_scalar(&format!(
        "SELECT {TICKET_JSON} FROM ai_test_tickets x WHERE x.test_run_id = $1 ORDER BY x.id"
    ))
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(Some((run, tickets)))
}

pub async fn delete_run(conn: &mut PgConnection, id: i64) -> Result<()> {
    let done = sqlx::query("DELETE FROM ai_test_runs WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("test run {id}")));
    }
    Ok(())
}

/// Sets a test ticket's expected result (`accept`: to what was observed), rescoring it and its
/// run; the test case takes the same expectation for future runs.
pub async fn set_expected(
    conn: &mut PgConnection,
    run_id: i64,
    ticket_id: i64,
    expected: Option<&Value>,
    actor: Actor<'_>,
) -> Result<Vec<Value>> {
    let rows: Vec<(i64, Option<i64>, Value, Option<Value>)> = sqlx::query_as(
        "SELECT id, test_case_id, expected_result, actual_result FROM ai_test_tickets
          WHERE test_run_id = $1 AND ($2::bigint IS NULL OR ticket_id = $2) FOR UPDATE",
    )
    .bind(run_id)
    .bind((ticket_id > 0).then_some(ticket_id))
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound(format!(
            "ticket {ticket_id} in test run {run_id}"
        )));
    }
    let mut out = Vec::new();
    for (id, case, _, actual) in rows {
        let new_expected = match (expected, &actual) {
            (Some(e), _) => e.clone(),
            (None, Some(a)) => a.clone(),
            // Not tested yet: nothing observed to accept.
            (None, None) => continue,
        };
        let scores = actual.as_ref().map(|a| score(&new_expected, a));
        let t: Value = sqlx::query_scalar(&format!(
            "WITH x AS (UPDATE ai_test_tickets SET expected_result = $2, scores = $3 WHERE id = $1 RETURNING *)
             SELECT {TICKET_JSON} FROM x"
        ))
        .bind(id)
        .bind(&new_expected)
        .bind(&scores)
        .fetch_one(&mut *conn)
        .await?;
        if let Some(case) = case {
            update_case(conn, case, None, Some(&new_expected), actor).await?;
        }
        out.push(t);
    }
    refresh_run_scores(conn, run_id).await?;
    Ok(out)
}

/// The run's scores: the mean per dimension over its tested tickets; finished when none waits.
pub async fn refresh_run_scores(conn: &mut PgConnection, run_id: i64) -> Result<()> {
    let scores: Vec<Value> = sqlx::query_scalar(
        "SELECT scores FROM ai_test_tickets WHERE test_run_id = $1 AND scores IS NOT NULL",
    )
    .bind(run_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut sums: Map<String, Value> = Map::new();
    let mut counts: std::collections::HashMap<String, f64> = Default::default();
    for s in &scores {
        for (k, v) in s.as_object().into_iter().flatten() {
            let Some(v) = v.as_f64() else { continue };
            let sum = sums.get(k).and_then(Value::as_f64).unwrap_or_default() + v;
            sums.insert(k.clone(), json!(sum));
            *counts.entry(k.clone()).or_default() += 1.0;
        }
    }
    let means: Map<String, Value> = sums
        .into_iter()
        .map(|(k, v)| {
            let n = counts.get(&k).copied().unwrap_or(1.0);
            (k, json!(v.as_f64().unwrap_or_default() / n))
        })
        .collect();
    sqlx::query(
        "UPDATE ai_test_runs SET scores = $2,
                state = CASE WHEN state = 'processing' AND NOT EXISTS
                    (SELECT 1 FROM ai_test_tickets WHERE test_run_id = $1 AND state = 'scheduled')
                    THEN 'finished' ELSE state END,
                end_date = CASE WHEN end_date IS NULL AND NOT EXISTS
                    (SELECT 1 FROM ai_test_tickets WHERE test_run_id = $1 AND state = 'scheduled')
                    THEN now() ELSE end_date END
          WHERE id = $1",
    )
    .bind(run_id)
    .bind(Value::Object(means))
    .execute(conn)
    .await?;
    Ok(())
}

/// Test tickets waiting for their replay, locked so one collector handles each.
pub async fn scheduled(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<(i64, i64, Uuid, i64, Value, bool)>> {
    Ok(sqlx::query_as(
        "SELECT x.id, x.test_run_id, r.run_key, x.ticket_id, x.expected_result,
                x.scheduled_at < now() - interval '10 minutes' AS overdue
           FROM ai_test_tickets x JOIN ai_test_runs r ON r.id = x.test_run_id
          WHERE x.state = 'scheduled' ORDER BY x.id LIMIT $1 FOR UPDATE OF x SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Records a test ticket's result.
pub async fn record_result(
    conn: &mut PgConnection,
    id: i64,
    actual: Option<&Value>,
    raw: Option<&Value>,
    scores: Option<&Value>,
) -> Result<()> {
    sqlx::query(
        "UPDATE ai_test_tickets SET state = CASE WHEN $2::jsonb IS NULL THEN 'timedOut' ELSE 'tested' END,
                actual_result = $2, raw_result = $3, scores = $4, tested_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(actual)
    .bind(raw)
    .bind(scores)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_per_dimension() {
        let expected = json!({"contractId": 7, "intentDetection": ["a", "b"],
            "inputParameters": {"a": {"x": 1, "y": "Berlin"}}, "sentiment": "neutral", "tags": ["T"],
            "aiSupportLevel": "human"});
        let actual = json!({"contractId": 7, "intentDetection": ["a"],
            "inputParameters": {"a": {"x": 1.0, "y": "berlin"}}, "sentiment": "negative", "tags": ["T"],
            "aiSupportLevel": "human"});
        let s = score(&expected, &actual);
        assert_eq!(s["contractId"], 1.0);
        assert_eq!(s["intents"], 0.5);
        assert_eq!(s["parameters"], 1.0);
        assert_eq!(s["sentiment"], 0.0);
        assert_eq!(s["tags"], 1.0);
        assert_eq!(s["aiSupportLevel"], 1.0);
        let overall = s["overall"].as_f64().unwrap_or_default();
        assert!((overall - 4.5 / 6.0).abs() < 1e-9, "{s}");
        assert_eq!(score(&expected, &expected)["overall"], 1.0);
    }
}
