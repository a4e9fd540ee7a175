//! Event hooks and user-defined functions end to end on real NATS and Postgres with the real
//! binary: a signed webhook, scripts that loop or allocate without end (failed, the pipeline goes
//! on), the seed's example hook executing each ready agent, and the hook and UDF endpoints.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{send, Stack};

async fn post(stack: &Stack, path: &str, body: &Value) -> (u16, Value) {
    send(
        stack,
        reqwest::Method::POST,
        path,
        &stack.admin_token,
        Some(body),
    )
    .await
}

async fn add_hook(stack: &Stack, hook: Value) -> i64 {
    let (status, r) = post(stack, "/api/mind/settings/event-hook", &hook).await;
    assert_eq!(status, 200, "{r}");
    r["id"].as_i64().expect("hook id")
}

/// The processes a hook test needs: the pipeline and the hooks service.
async fn hooks_stack(name: &str) -> Stack {
    let mut stack = Stack::new(name).await;
    for s in ["api"].into_iter().chain(support::STAGES).chain(["hooks"]) {
        stack.start(s).await;
    }
    stack
}

/// Posts a mail and waits until it passed autoexecute; its ticket id.
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

/// Waits until the ticket's `event` record is finished (closed or error) and returns it.
async fn finished_event(stack: &Stack, event: &str, ticket_id: i64, timeout: Duration) -> Value {
    let start = Instant::now();
    loop {
        let (status, r) = post(
            stack,
            "/api/mind/event/search",
            &json!({"type": event, "ticketId": ticket_id}),
        )
        .await;
        assert_eq!(status, 200, "{r}");
        if let Some(e) = r["events"]
            .as_array()
            .and_then(|l| l.first())
            .filter(|e| e["status"] == "closed" || e["status"] == "error")
        {
            return e.clone();
        }
        assert!(
            start.elapsed() < timeout,
            "no finished {event} record for ticket {ticket_id}: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type Calls = std::sync::Arc<tokio::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A receiver of webhooks that records each call and answers 200.
async fn receiver() -> (String, Calls) {
    use axum::{extract::State, http::HeaderMap, routing::post, Json, Router};
    let calls: Calls = Default::default();
    async fn hook(State(calls): State<Calls>, headers: HeaderMap, body: String) -> Json<Value> {
        calls.lock().await.push((headers, body));
        Json(json!({"received": true}))
    }
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), calls)
}

fn mail(subject: &str) -> Value {
    json!({"channel": "email", "from": "kunde@example.org", "subject": subject,
           "body": "Guten Tag, ich habe eine Frage zu meiner Rechnung."})
}

#[tokio::test]
async fn a_webhook_receives_the_event_signed() {
    use hmac::{Hmac, Mac};
    let stack = hooks_stack("hooks_webhook").await;
    let (url, calls) = receiver().await;
    add_hook(
        &stack,
        json!({"name": "CRM", "events": ["TicketCreated"],
               "executor": {"type": "webhook", "url": url, "secret": "hook-secret"}}),
    )
    .await;
    // The secret is stored, never shown.
    let (_, list) = stack
        .get_json("/api/mind/settings/event-hook", &stack.admin_token)
        .await;
    assert_eq!(list["eventHooks"][0]["secretSet"], true, "{list}");
    assert!(!list.to_string().contains("hook-secret"), "{list}");

    let id = ticket(&stack, &mail("Rechnung")).await;
    let event = finished_event(&stack, "TicketCreated", id, Duration::from_secs(30)).await;
    assert_eq!(event["status"], "closed", "{event}");
    let outcome = &event["hookOutcome"][0];
    assert_eq!(outcome["status"], "success", "{event}");
    assert_eq!(outcome["result"]["body"]["received"], true, "{event}");

    let seen = calls.lock().await.clone();
    let (headers, body) = seen
        .iter()
        .find(|(_, b)| serde_json::from_str::<Value>(b).is_ok_and(|v| v["data"]["ticketId"] == id))
        .expect("the ticket's event was posted");
    let ts = headers["x-switchyard-timestamp"]
        .to_str()
        .expect("timestamp");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").expect("key");
    mac.update(format!("{ts}.{body}").as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        headers["x-switchyard-signature"].to_str().ok(),
        Some(expected.as_str())
    );
    let sent: Value = serde_json::from_str(body).expect("JSON body");
    assert_eq!(sent["event"], "TicketCreated");
    assert!(headers["idempotency-key"]
        .to_str()
        .is_ok_and(|k| k.starts_with("switchyard-event-")));
    stack.shutdown().await;
}

#[tokio::test]
async fn runaway_scripts_fail_and_the_pipeline_goes_on() {
    let stack = hooks_stack("hooks_runaway").await;
    for (name, code) in [
        ("endless", "loop { }"),
        ("hungry", r#"let a = []; loop { a.push("xxxxxxxxxx") }"#),
        ("doubling", r#"let s = "xx"; loop { s += s; }"#),
        ("fine", "#{ ticket: input.ticketId, ok: true }"),
    ] {
        add_hook(
            &stack,
            json!({"name": name, "events": ["TicketCreated"],
                   "executor": {"type": "script", "code": code}}),
        )
        .await;
    }
    let started = Instant::now();
    let id = ticket(&stack, &mail("Erste Frage")).await;
    let event = finished_event(&stack, "TicketCreated", id, Duration::from_secs(60)).await;
    println!("four hooks, three runaway, done in {:?}", started.elapsed());
    assert_eq!(event["status"], "error", "{event}");
    let outcomes = event["hookOutcome"].as_array().cloned().unwrap_or_default();
    assert_eq!(outcomes.len(), 4, "{event}");
    for o in &outcomes[..3] {
        assert_eq!(o["status"], "failed", "{o}");
        assert!(
            o["durationMs"].as_u64().is_some_and(|d| d < 10_000),
            "stopped within the limit: {o}"
        );
    }
    let err = |i: usize| outcomes[i]["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        err(0).contains("longer than") || err(0).contains("operations"),
        "{}",
        err(0)
    );
    assert!(err(1).contains("size limit"), "{}", err(1));
    assert!(err(2).contains("size limit"), "{}", err(2));
    assert_eq!(outcomes[3]["status"], "success");
    assert_eq!(outcomes[3]["result"], json!({"ticket": id, "ok": true}));

    // The next ticket is processed and its event handled too: nothing got stuck.
    let next = ticket(&stack, &mail("Zweite Frage")).await;
    let stages = stack.stages_of(next).await;
    assert!(stages.iter().any(|s| s == "router"), "{stages:?}");
    let event = finished_event(&stack, "TicketCreated", next, Duration::from_secs(60)).await;
    assert_eq!(event["hookOutcome"][3]["status"], "success", "{event}");
    stack.shutdown().await;
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

async fn intents(stack: &Stack, id: i64) -> Vec<Value> {
    let (_, v) = stack
        .get_json(
            &format!("/api/mind/intent/byTicketId/{id}"),
            &stack.admin_token,
        )
        .await;
    v["intents"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_seed_hook_executes_each_ready_agent_one_after_the_other() {
    let stack = hooks_stack("hooks_seed").await;
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
    // The operator allows the move and the cancellation to be answered without a person.
    support::make_auto_executable(&stack, &["relocation", "cancel_contract"]).await;
    let code = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/examples/hooks/autoexecute-ready-intents.rhai"
    ))
    .expect("example hook");
    add_hook(
        &stack,
        json!({"name": "Autoexecute ready intents", "events": ["TicketCreated", "TicketResponse"],
               "executor": {"type": "script", "code": code}}),
    )
    .await;
    // The settings cache of every worker refreshes every two seconds.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let id = ticket(&stack, &support::seed_mail()).await;
    let event = finished_event(&stack, "TicketCreated", id, Duration::from_secs(60)).await;
    let outcome = &event["hookOutcome"][0];
    assert_eq!(outcome["status"], "success", "{event}");
    assert_eq!(outcome["result"]["autoExecute"], true, "{event}");
    let results = outcome["result"]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(results.len() >= 2, "several concerns: {event}");

    // Every allow-listed agent the hook saw ready is executed once (by the hook, or by the
    // pipeline when only one was left), with one reply each; the ticket is closed in the dark.
    let after = intents(&stack, id).await;
    for r in &results {
        let i = after
            .iter()
            .find(|i| i["aiAgentId"] == r["agentId"])
            .unwrap_or_else(|| panic!("{r} {after:?}"));
        assert_eq!(i["status"], "executed", "{i}");
    }
    assert!(
        results.iter().any(|r| r["result"]["executed"] == true),
        "{results:?}"
    );
    let replies: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages WHERE ticket_id = $1 AND direction = 'out'",
    )
    .bind(id)
    .fetch_one(stack.store.pool())
    .await
    .expect("replies");
    assert_eq!(replies as usize, results.len(), "one reply per agent");
    let (_, t) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.admin_token)
        .await;
    assert_eq!(
        (t["status"].as_str(), t["aiSupportLevel"].as_str()),
        (Some("closed"), Some("automated")),
        "{t}"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn hook_and_udf_endpoints() {
    let mut stack = Stack::new("hooks_api").await;
    stack.start("api").await;
    // An unknown event is a 400 naming the field; an agent may not manage hooks.
    let (status, r) = post(
        &stack,
        "/api/mind/settings/event-hook",
        &json!({"name": "x", "events": ["TicketCreated", "TicketExploded"],
                "executor": {"type": "script", "code": "1"}}),
    )
    .await;
    assert_eq!(
        (status, r["errors"][0]["field"].as_str()),
        (400, Some("events[1]")),
        "{r}"
    );
    let (status, r) = post(
        &stack,
        "/api/mind/settings/event-hook",
        &json!({"name": "x", "events": ["TicketCreated"],
                "executor": {"type": "script", "code": "let x = ;"}}),
    )
    .await;
    assert_eq!(
        (status, r["errors"][0]["field"].as_str()),
        (400, Some("executor.code")),
        "{r}"
    );
    let hook = json!({"name": "x", "events": ["TicketRouted"],
                      "executor": {"type": "webhook", "url": "http://127.0.0.1:9/x"}});
    let (status, _) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/settings/event-hook",
        &stack.agent_token,
        Some(&hook),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = stack
        .get_json("/api/mind/settings/event-hook", &stack.agent_token)
        .await;
    assert_eq!(status, 403);
    let id = add_hook(&stack, hook).await;
    let (status, r) = send(
        &stack,
        reqwest::Method::DELETE,
        &format!("/api/mind/settings/event-hook/{id}"),
        &stack.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let (_, list) = stack
        .get_json("/api/mind/settings/event-hook", &stack.admin_token)
        .await;
    assert_eq!(list["eventHooks"], json!([]), "{list}");
    let (_, types) = stack
        .get_json("/api/mind/event/getEventTypes", &stack.agent_token)
        .await;
    assert!(
        types["eventTypes"]
            .as_array()
            .is_some_and(|l| l.contains(&json!("TicketCreated"))),
        "{types}"
    );

    // UDFs: create, list, run (its API calls carry the caller's token), fail, delete.
    let udf = json!({"name": "addVat", "udfType": "udf", "description": "net to gross",
        "parameters": [{"name": "net", "type": "float"}],
        "data": {"udfExecutor": {"type": "sourceCode", "language": "rhai",
            "code": "let types = api_get(\"/api/mind/event/getEventTypes\").eventTypes; #{ gross: input.net * 1.19, eventTypes: types.len() }"}}});
    let (status, r) = post(&stack, "/api/mind/settings/user-defined-function", &udf).await;
    assert_eq!(status, 200, "{r}");
    let udf_id = r["id"].as_i64().expect("id");
    let (status, r) = post(&stack, "/api/mind/settings/user-defined-function", &udf).await;
    assert_eq!(status, 409, "the name is taken: {r}");
    let (status, r) = post(
        &stack,
        "/api/mind/settings/user-defined-function",
        &json!({"name": "tool1", "udfType": "tool", "isPrivate": false,
                "data": {"udfExecutor": {"code": "throw \"no contract for \" + input.id"}}}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let (_, tools) = stack
        .get_json(
            "/api/mind/settings/user-defined-function?filter=tool",
            &stack.admin_token,
        )
        .await;
    let names: Vec<&str> = tools["userDefinedFunctions"]
        .as_array()
        .map(|l| l.iter().filter_map(|u| u["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["tool1"], "{tools}");
    let (_, all) = stack
        .get_json(
            "/api/mind/settings/user-defined-function",
            &stack.admin_token,
        )
        .await;
    assert_eq!(
        all["userDefinedFunctions"].as_array().map(Vec::len),
        Some(2)
    );

    let (status, r) = post(
        &stack,
        "/api/mind/executor/execute/addVat",
        &json!({"net": 100.0}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["success"], true);
    assert!(
        (r["result"]["gross"].as_f64().unwrap_or_default() - 119.0).abs() < 1e-9,
        "{r}"
    );
    assert!(
        r["result"]["eventTypes"].as_i64().is_some_and(|n| n > 10),
        "{r}"
    );
    // A private UDF is for admins only; a failing one is a 422 with its reason.
    let (status, _) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/executor/execute/addVat",
        &stack.agent_token,
        Some(&json!({"net": 1})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, r) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/executor/execute/tool1",
        &stack.agent_token,
        Some(&json!({"id": 7})),
    )
    .await;
    assert_eq!(status, 422, "{r}");
    assert!(
        r["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no contract for 7")),
        "{r}"
    );
    let (status, _) = post(&stack, "/api/mind/executor/execute/nothing", &json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = send(
        &stack,
        reqwest::Method::DELETE,
        &format!("/api/mind/settings/user-defined-function/{udf_id}"),
        &stack.agent_token,
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(
        &stack,
        reqwest::Method::DELETE,
        &format!("/api/mind/settings/user-defined-function/{udf_id}"),
        &stack.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(&stack, "/api/mind/executor/execute/addVat", &json!({})).await;
    assert_eq!(status, 404);
    stack.shutdown().await;
}

#[tokio::test]
async fn an_agents_source_code_executor_runs_in_the_sandbox() {
    let stack = hooks_stack("hooks_agent_script").await;
    stack.load_demo_customers_and_agents().await;
    set(&stack, "enableAiAutoProcessing", json!(true)).await;
    set(&stack, "immediateAiAgents", json!(["meter_reading"])).await;
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
    // The builtin write, and a script that checks the value and asks the API (service token).
    let code = r#"let kinds = api_get("/api/mind/event/getEventTypes").eventTypes.len();
                  #{ plausible: parse_float(input.meterReading.to_string()) > 0.0, eventTypes: kinds }"#;
    let executor = json!([
        {"type": "builtin", "action": "storeMeterReading"},
        {"type": "sourceCode", "language": "rhai", "action": "storeMeterReading", "code": code}
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
        &json!({"channel": "email", "from": "sarah.miller@example.com", "subject": "Zählerstand",
                "body": "Guten Tag,\n\nmein Zählerstand für den Zähler 1ESY1160700001 ist heute 4800 kWh.\n\nViele Grüße\nSarah Miller"}),
    )
    .await;
    let list = intents(&stack, id).await;
    let i = list
        .iter()
        .find(|i| i["code"] == "meter_reading")
        .unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(i["status"], "executed", "{i}");
    let script = &i["outcome"]["internalData"]["sourceCode"];
    assert_eq!(script["plausible"], true, "{i}");
    assert!(script["eventTypes"].as_i64().is_some_and(|n| n > 10), "{i}");
    stack.shutdown().await;
}
