//! Dark processing end to end on real NATS and Postgres with the real binary: the gates, AI agent
//! execution against the ERP mirror, replies queued for outbound, the autoexecute and intent
//! execute endpoints, legitimation, follow-ups and one-click approval.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{send, Stack};

async fn post(stack: &Stack, path: &str, body: Option<&Value>) -> (u16, Value) {
    send(stack, reqwest::Method::POST, path, &stack.admin_token, body).await
}

async fn set(stack: &Stack, name: &str, value: Value) {
    let (status, v) = send(
        stack,
        reqwest::Method::PUT,
        &format!("/api/mind/settings/{name}"),
        &stack.admin_token,
        Some(&value),
    )
    .await;
    assert_eq!(status, 200, "{name}: {v}");
}

async fn dark_stack(name: &str) -> Stack {
    let mut stack = Stack::new(name).await;
    // The API first: its address was chosen with the stack, before other processes pick ports.
    for s in ["api"].into_iter().chain(support::STAGES) {
        stack.start(s).await;
    }
    stack.load_demo_customers_and_agents().await;
    set(&stack, "enableAiAutoProcessing", json!(true)).await;
    set(
        &stack,
        "immediateAiAgents",
        json!([
            "meter_reading",
            "bank_data_agent",
            "relocation",
            "cancel_contract"
        ]),
    )
    .await;
    // The settings cache of every worker refreshes every two seconds.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stack
}

/// Posts a mail and waits until autoexecute decided; returns the ticket id.
async fn ticket(stack: &Stack, mail: &Value) -> i64 {
    let r = stack.post_ticket(mail).await;
    assert!(r.status().is_success(), "{}", r.status());
    let t: Value = r.json().await.expect("ticket");
    let id = t["id"].as_i64().expect("ticket id");
    let stages = stack.wait_done(id, Duration::from_secs(60)).await;
    assert!(
        stages.iter().any(|s| s == "autoexecute"),
        "ticket {id}: {stages:?}"
    );
    id
}

async fn ticket_json(stack: &Stack, id: i64) -> Value {
    let (status, t) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.admin_token)
        .await;
    assert_eq!(status, 200, "{t}");
    t
}

/// The autoexecute decisions on the ticket's activity, oldest first.
async fn decisions(stack: &Stack, id: i64) -> Vec<Value> {
    let (_, a) = stack
        .get_json(
            &format!("/api/mind/ticket/{id}/activity"),
            &stack.admin_token,
        )
        .await;
    a["activity"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|e| e["stage"] == "autoexecute")
                .map(|e| e["outcome"].clone())
                .collect()
        })
        .unwrap_or_default()
}

async fn intents(stack: &Stack, id: i64) -> Vec<Value> {
    let (_, v) = stack
        .get_json(
            &format!("/api/mind/intent/byTicketId/{id}"),
            &stack.admin_token,
        )
        .await;
    v["intents"].as_array().cloned().unwrap_or_default()
}

fn code<'a>(list: &'a [Value], code: &str) -> Option<&'a Value> {
    list.iter().find(|i| i["code"] == code)
}

/// Replies queued (or sent) to the customer on the ticket.
async fn replies(stack: &Stack, id: i64) -> Vec<(String, Vec<String>, String)> {
    sqlx::query_as("SELECT body, to_addrs, subject FROM messages WHERE ticket_id = $1 AND direction = 'out' ORDER BY id")
        .bind(id)
        .fetch_all(stack.store.pool())
        .await
        .expect("replies")
}

fn meter_mail(from: &str, meter: &str, reading: u32) -> Value {
    json!({"channel": "email", "from": from, "subject": "Zählerstand",
           "body": format!("Guten Tag,\n\nmein Zählerstand für den Zähler {meter} ist heute {reading} kWh.\n\nViele Grüße\nSarah Miller")})
}

#[tokio::test]
async fn a_meter_reading_from_a_known_customer_is_answered_in_the_dark() {
    let stack = dark_stack("dark_meter").await;
    let started = Instant::now();
    let id = ticket(
        &stack,
        &meter_mail("sarah.miller@example.com", "1ESY1160700001", 4321),
    )
    .await;
    let t = ticket_json(&stack, id).await;
    assert_eq!(
        t["status"],
        "closed",
        "{t} {:?}",
        decisions(&stack, id).await
    );
    assert_eq!(t["aiSupportLevel"], "automated", "{t}");
    let d = decisions(&stack, id).await;
    assert_eq!(
        d.last().map(|o| o["result"].clone()),
        Some(json!("executed")),
        "{d:?}"
    );
    // The reading is in the ERP mirror, on the customer's contract.
    let stored: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT contract_id, value::float8 FROM meter_readings WHERE ticket_id = $1",
    )
    .bind(id)
    .fetch_all(stack.store.pool())
    .await
    .expect("readings");
    assert_eq!(stored, vec![(746843, 4321.0)]);
    // Answered in German, to the sender, with the ticket reference.
    let r = replies(&stack, id).await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].1, vec!["sarah.miller@example.com".to_owned()]);
    assert!(
        r[0].0.contains("4321") && r[0].0.contains("Zählerstand"),
        "{}",
        r[0].0
    );
    assert!(r[0].2.contains(&format!("[#{id}]")), "{}", r[0].2);
    let list = intents(&stack, id).await;
    let meter = code(&list, "meter_reading").expect("meter intent");
    assert_eq!(meter["status"], "executed", "{meter}");
    assert_eq!(meter["outcome"]["sent"], true, "{meter}");
    assert_eq!(meter["outcome"]["ticketClosed"], true, "{meter}");
    println!(
        "dark processing: mail to queued reply in {:?}",
        started.elapsed()
    );
    // Executed once: a second request finds nothing ready.
    let (status, again) = post(&stack, &format!("/api/mind/ticket/{id}/autoexecute"), None).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["success"], false, "{again}");
    stack.shutdown().await;
}

#[tokio::test]
async fn low_legitimation_and_missing_contracts_are_never_written_in_the_dark() {
    let stack = dark_stack("dark_legit").await;
    // A stranger naming Sarah's meter: the contract is found, the sender is not legitimated.
    let id = ticket(
        &stack,
        &meter_mail("someone.else@example.net", "1ESY1160700001", 5000),
    )
    .await;
    let t = ticket_json(&stack, id).await;
    assert_eq!(t["status"], "open", "{t}");
    assert_eq!(t["aiSupportLevel"], "human", "{t}");
    let d = decisions(&stack, id).await;
    let last = d.last().cloned().unwrap_or_default();
    assert_eq!(last["result"], "handedToHuman", "{d:?}");
    assert!(
        matches!(
            last["gate"].as_str(),
            Some("legitimation" | "autoExecutable")
        ),
        "{last}"
    );
    // Not even the endpoint with every flag set executes it.
    let everything = "allowMultipleIntents=true&allowWithReplies=true";
    let (status, r) = post(
        &stack,
        &format!("/api/mind/ticket/{id}/autoexecute?{everything}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM meter_readings WHERE ticket_id = {id}"
            ))
            .await,
        0
    );
    assert!(replies(&stack, id).await.is_empty());

    // A meter no contract has: no contract, so no agent writes, not even a person's click.
    let id = ticket(
        &stack,
        &meter_mail("new.customer@example.net", "9ZZZ0000000001", 777),
    )
    .await;
    assert_eq!(ticket_json(&stack, id).await["status"], "open");
    let list = intents(&stack, id).await;
    let meter = code(&list, "meter_reading").unwrap_or_else(|| panic!("no meter intent: {list:?}"));
    let intent_id = meter["id"].as_i64().expect("intent id");
    let (status, r) = send(
        &stack,
        reqwest::Method::POST,
        &format!("/api/mind/intent/{intent_id}/execute"),
        &stack.agent_token,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 409, "{r}");
    assert!(
        r["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("contract")
            || r["message"]
                .as_str()
                .unwrap_or_default()
                .contains("contract"),
        "{r}"
    );
    // A dry run shows the options and infos and changes nothing.
    let (status, r) = send(
        &stack,
        reqwest::Method::POST,
        &format!("/api/mind/intent/{intent_id}/execute"),
        &stack.agent_token,
        Some(&json!({"dryRun": true, "data": {"_action": "reply"}})),
    )
    .await;
    assert!(status == 409 || status == 200, "{r}");
    assert_eq!(stack.count("SELECT count(*) FROM meter_readings").await, 0);
    assert_eq!(
        intents(&stack, id)
            .await
            .iter()
            .filter(|i| i["status"] == "executed")
            .count(),
        0
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn several_concerns_wait_for_a_person_and_the_hook_runs_each_ready_agent() {
    let stack = dark_stack("dark_seed").await;
    // The operator allows the move and the cancellation to be answered without a person.
    support::make_auto_executable(&stack, &["relocation", "cancel_contract"]).await;
    let id = ticket(&stack, &support::seed_mail()).await;
    let t = ticket_json(&stack, id).await;
    assert_eq!(
        (t["status"].as_str(), t["aiSupportLevel"].as_str()),
        (Some("open"), Some("human")),
        "{t}"
    );
    let d = decisions(&stack, id).await;
    assert_eq!(
        d.last().map(|o| o["gate"].clone()),
        Some(json!("singleIntent")),
        "{d:?}"
    );

    // What the seed's hook does: every ready intent, one call each, one after the other.
    let list = intents(&stack, id).await;
    let ready: Vec<&Value> = list.iter().filter(|i| i["status"] == "ready").collect();
    assert!(ready.len() >= 2, "{list:?}");
    for i in &ready {
        let (status, r) = post(&stack, &format!("/api/mind/ticket/{id}/autoexecute?executeAgentId={}&allowMultipleIntents=true&allowWithReplies=true", i["aiAgentId"]), None).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["executed"], true, "{} {r}", i["code"]);
    }
    let after = intents(&stack, id).await;
    for i in &ready {
        assert_eq!(
            code(&after, i["code"].as_str().unwrap_or_default()).map(|x| x["status"].clone()),
            Some(json!("executed"))
        );
    }
    let t = ticket_json(&stack, id).await;
    assert_eq!(
        (t["status"].as_str(), t["aiSupportLevel"].as_str()),
        (Some("closed"), Some("automated")),
        "{t}"
    );
    assert_eq!(replies(&stack, id).await.len(), ready.len());
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM contract_changes WHERE ticket_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(stack.store.pool())
            .await
            .expect("changes");
    assert!(kinds.contains(&"move".to_owned()), "{kinds:?}");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_follow_up_needs_allow_with_replies_and_approval_is_one_click() {
    let stack = dark_stack("dark_reply").await;
    set(&stack, "enableAiAutoProcessing", json!(false)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut first = meter_mail("sarah.miller@example.com", "1ESY1160700001", 4400);
    first["externalTicketId"] = json!("crm-4711");
    let id = ticket(&stack, &first).await;
    assert_eq!(
        decisions(&stack, id)
            .await
            .last()
            .map(|o| o["gate"].clone()),
        Some(json!("autoProcessingEnabled"))
    );
    set(&stack, "enableAiAutoProcessing", json!(true)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // The customer writes again on the same ticket.
    let mut again = meter_mail("sarah.miller@example.com", "1ESY1160700001", 4410);
    again["externalTicketId"] = json!("crm-4711");
    let r = stack.post_ticket(&again).await;
    assert!(r.status().is_success());
    let start = Instant::now();
    while decisions(&stack, id).await.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the follow-up never reached autoexecute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        decisions(&stack, id)
            .await
            .last()
            .map(|o| o["gate"].clone()),
        Some(json!("noCustomerReply"))
    );
    let agent = code(&intents(&stack, id).await, "meter_reading")
        .map(|i| i["aiAgentId"].clone())
        .expect("meter intent");
    let (_, r) = post(
        &stack,
        &format!("/api/mind/ticket/{id}/autoexecute?executeAgentId={agent}"),
        None,
    )
    .await;
    assert_eq!(
        (r["success"].clone(), r["gate"].clone()),
        (json!(false), json!("noCustomerReply")),
        "{r}"
    );
    let (_, r) = post(
        &stack,
        &format!("/api/mind/ticket/{id}/autoexecute?executeAgentId={agent}&allowWithReplies=true"),
        None,
    )
    .await;
    assert_eq!(r["executed"], true, "{r}");
    assert_eq!(ticket_json(&stack, id).await["status"], "closed");

    // L4: the agent needs a one-click approval; a person's click executes it.
    set(&stack, "immediateAiAgents", json!([])).await;
    set(&stack, "manualAiAgents", json!(["meter_reading"])).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let id = ticket(
        &stack,
        &meter_mail("sarah.miller@example.com", "1ESY1160700001", 4500),
    )
    .await;
    let d = decisions(&stack, id).await;
    assert_eq!(
        d.last().map(|o| o["result"].clone()),
        Some(json!("awaitingApproval")),
        "{d:?}"
    );
    assert_eq!(ticket_json(&stack, id).await["status"], "open");
    let intent_id = code(&intents(&stack, id).await, "meter_reading")
        .and_then(|i| i["id"].as_i64())
        .expect("intent");
    let (status, r) = send(
        &stack,
        reqwest::Method::POST,
        &format!("/api/mind/intent/{intent_id}/execute"),
        &stack.agent_token,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["outcome"]["sent"], true, "{r}");
    assert_eq!(ticket_json(&stack, id).await["status"], "closed");
    let (status, r) = send(
        &stack,
        reqwest::Method::POST,
        &format!("/api/mind/intent/{intent_id}/execute"),
        &stack.agent_token,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 409, "executed twice: {r}");
    stack.shutdown().await;
}

type Calls = std::sync::Arc<tokio::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A local ERP: refuses the first call with 503, then accepts and records each call.
async fn fake_erp() -> (String, Calls) {
    use axum::{extract::State, http::HeaderMap, http::StatusCode, routing::post, Json, Router};
    let calls: Calls = Default::default();
    async fn reading(
        State(calls): State<Calls>,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, Json<Value>) {
        let mut seen = calls.lock().await;
        seen.push((headers, body));
        if seen.len() == 1 {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "busy"})),
            );
        }
        (StatusCode::OK, Json(json!({"erpReadingId": "R-1"})))
    }
    let app = Router::new()
        .route("/readings", post(reading))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), calls)
}

#[tokio::test]
async fn an_agent_calls_the_erp_signed_and_retried() {
    use hmac::{Hmac, Mac};
    let stack = dark_stack("dark_erp").await;
    let (erp, calls) = fake_erp().await;
    set(&stack, "erpSigningSecret", json!("erp-shared-secret")).await;
    let (_, agents) = stack
        .get_json(
            "/api/mind/aiAgents?format=full&limit=100",
            &stack.admin_token,
        )
        .await;
    let meter = agents["aiAgents"]
        .as_array()
        .and_then(|l| l.iter().find(|a| a["slug"] == "meter_reading"))
        .cloned()
        .expect("meter agent");
    let executor = json!([
        {"id": 1, "type": "builtin", "action": "storeMeterReading"},
        {"id": 2, "type": "apiCall", "action": "storeMeterReading", "request": {
            "method": "POST", "url": format!("{erp}/readings"),
            "body": {"contract": "{{_metadata.contractId}}", "meter": "{{meterNumber}}", "value": "{{meterReading}}"}}}
    ]);
    let (status, v) = send(
        &stack,
        reqwest::Method::PATCH,
        &format!("/api/mind/aiAgent/{}", meter["id"]),
        &stack.admin_token,
        Some(&json!({"settings": {"executor": executor}})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let id = ticket(
        &stack,
        &meter_mail("sarah.miller@example.com", "1ESY1160700001", 4600),
    )
    .await;
    assert_eq!(
        ticket_json(&stack, id).await["status"],
        "closed",
        "{:?}",
        decisions(&stack, id).await
    );
    let seen = calls.lock().await.clone();
    assert_eq!(seen.len(), 2, "one refused call, one retry");
    for (headers, body) in &seen {
        let ts = headers["x-switchyard-timestamp"]
            .to_str()
            .expect("timestamp");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"erp-shared-secret").expect("key");
        mac.update(format!("{ts}.{body}").as_bytes());
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(
            headers["x-switchyard-signature"].to_str().ok(),
            Some(expected.as_str())
        );
        assert!(headers["idempotency-key"]
            .to_str()
            .is_ok_and(|k| k.starts_with("switchyard-intent-")));
        let b: Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(
            b,
            json!({"contract": "746843", "meter": "1ESY1160700001", "value": "4600"})
        );
    }
    let meter_intent = code(&intents(&stack, id).await, "meter_reading")
        .cloned()
        .expect("intent");
    assert_eq!(
        meter_intent["outcome"]["internalData"]["apiCall"]["erpReadingId"], "R-1",
        "{meter_intent}"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_person_replies_notes_and_forwards() {
    let mut stack = Stack::new("dark_conversation").await;
    for s in ["api", "ingest", "ai", "router", "autoexecute"] {
        stack.start(s).await;
    }
    let id = ticket(
        &stack,
        &json!({"channel": "email", "from": "kunde@example.org", "subject": "Frage zur Rechnung",
        "body": "Warum ist meine Rechnung so hoch?"}),
    )
    .await;
    let path = format!("/api/mind/ticket/{id}/conversation/reply");
    let (status, r) = send(
        &stack,
        reqwest::Method::POST,
        &path,
        &stack.agent_token,
        Some(&json!({"body": "Guten Tag, wir prüfen das."})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["sendStatus"], "queued");
    let (status, note) = send(
        &stack,
        reqwest::Method::POST,
        &path,
        &stack.agent_token,
        Some(&json!({"body": "Kunde ruft oft an", "private": true})),
    )
    .await;
    assert_eq!(status, 200, "{note}");
    let (status, fwd) = send(
        &stack,
        reqwest::Method::POST,
        &format!("/api/mind/ticket/{id}/forward"),
        &stack.agent_token,
        Some(&json!({"toEmail": "abrechnung@stadtwerke.example", "body": "Bitte prüfen."})),
    )
    .await;
    assert_eq!(status, 200, "{fwd}");
    let (_, conv) = stack
        .get_json(
            &format!("/api/mind/ticket/{id}/conversation"),
            &stack.agent_token,
        )
        .await;
    let msgs = conv["conversation"].as_array().cloned().unwrap_or_default();
    assert_eq!(msgs.len(), 4, "{conv}");
    let reply = &msgs[1];
    assert_eq!(
        (reply["direction"].as_str(), reply["to"][0].as_str()),
        (Some("out"), Some("kunde@example.org")),
        "{reply}"
    );
    assert!(
        reply["subject"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("[#{id}]"))),
        "{reply}"
    );
    assert_eq!(
        (
            msgs[2]["private"].as_bool(),
            msgs[2]["sendStatus"].is_null()
        ),
        (Some(true), true),
        "{}",
        msgs[2]
    );
    assert_eq!(msgs[3]["to"][0], "abrechnung@stadtwerke.example");
    assert!(
        msgs[3]["body"].as_str().is_some_and(
            |b| b.starts_with("Bitte prüfen.") && b.contains("Warum ist meine Rechnung")
        ),
        "{}",
        msgs[3]
    );
    // Bad input names the field; no token is a 401.
    let (status, bad) = send(
        &stack,
        reqwest::Method::POST,
        &path,
        &stack.agent_token,
        Some(&json!({"body": " "})),
    )
    .await;
    assert_eq!(
        (status, bad["errors"][0]["field"].as_str()),
        (400, Some("body")),
        "{bad}"
    );
    let (status, bad) = send(
        &stack,
        reqwest::Method::POST,
        &format!("/api/mind/ticket/{id}/forward"),
        &stack.agent_token,
        Some(&json!({"toEmail": "nobody"})),
    )
    .await;
    assert_eq!(
        (status, bad["errors"][0]["field"].as_str()),
        (400, Some("toEmail")),
        "{bad}"
    );
    let r = stack
        .http()
        .post(stack.url(&path))
        .json(&json!({"body": "x"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 401);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_delay_in_business_hours_schedules_the_dark_reply() {
    let stack = dark_stack("dark_delay").await;
    set(&stack, "autoProcessingDelayEnabled", json!(true)).await;
    set(&stack, "autoProcessingDelay", json!(2)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let id = ticket(
        &stack,
        &meter_mail("sarah.miller@example.com", "1ESY1160700001", 4700),
    )
    .await;
    let d = decisions(&stack, id).await;
    let last = d.last().cloned().unwrap_or_default();
    assert_eq!(last["result"], "scheduled", "{d:?}");
    let at =
        chrono::DateTime::parse_from_rfc3339(last["autoExecuteAt"].as_str().unwrap_or_default())
            .expect("autoExecuteAt");
    assert!(
        at > chrono::Utc::now() + chrono::Duration::minutes(119),
        "two business hours from now at the earliest: {at}"
    );
    assert_eq!(ticket_json(&stack, id).await["status"], "open");
    // Time passes: the schedule finds the ticket due and answers it.
    sqlx::query("UPDATE tickets SET auto_execute_at = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(stack.store.pool())
        .await
        .expect("move the schedule");
    let start = Instant::now();
    while ticket_json(&stack, id).await["status"] != "closed" {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the due ticket was never executed: {:?}",
            decisions(&stack, id).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        decisions(&stack, id)
            .await
            .last()
            .map(|o| o["result"].clone()),
        Some(json!("executed"))
    );
    assert_eq!(replies(&stack, id).await.len(), 1);
    stack.shutdown().await;
}
