//! The ai stage end to end on real NATS, Postgres and the embedding model: the default agents,
//! the seed mail's intents and parameters, identification against the ERP mirror, an operator's
//! new agent detected without a restart, preview, and the agent API's errors and roles.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{send, Stack};

async fn ai_stack(name: &str) -> Stack {
    let mut stack = Stack::new(name).await;
    for s in ["api", "ingest", "ai", "router", "autoexecute"] {
        stack.start(s).await;
    }
    stack.load_demo_customers_and_agents().await;
    stack
}

/// Posts a mail and waits until the pipeline is through; returns the ticket id.
async fn ticket(stack: &Stack, mail: &Value) -> i64 {
    let r = stack.post_ticket(mail).await;
    assert!(r.status().is_success(), "{}", r.status());
    let t: Value = r.json().await.expect("ticket");
    let id = t["id"].as_i64().expect("ticket id");
    let stages = stack.wait_done(id, Duration::from_secs(60)).await;
    assert_eq!(stages, support::STAGES, "ticket {id}");
    id
}

async fn intents(stack: &Stack, id: i64) -> Value {
    let (status, v) = stack
        .get_json(
            &format!("/api/mind/intent/byTicketId/{id}"),
            &stack.agent_token,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

fn intent<'a>(list: &'a Value, code: &str) -> Option<&'a Value> {
    list["intents"]
        .as_array()?
        .iter()
        .find(|i| i["code"] == code)
}

#[tokio::test]
async fn the_seed_mail_is_understood_and_its_sender_identified() {
    let stack = ai_stack("ai_seed").await;
    let id = ticket(&stack, &support::seed_mail()).await;
    let found = intents(&stack, id).await;
    assert_eq!(found["ticketId"], id);
    let relocation =
        intent(&found, "relocation").unwrap_or_else(|| panic!("no relocation intent: {found}"));
    assert_eq!(
        relocation["data"]["newAddress"], "Hugo-Junkers-Str. 5, 82031 Grünwald",
        "{relocation}"
    );
    assert!(relocation["data"]["moveDate"].is_string(), "{relocation}");
    assert_eq!(relocation["status"], "ready");
    assert!(relocation["aiAgentId"].is_i64());
    let c = relocation["confidence"].as_f64().unwrap_or_default();
    assert!((0.0..=1.0).contains(&c));
    let meter = intent(&found, "meter_reading")
        .unwrap_or_else(|| panic!("no meter_reading intent: {found}"));
    // The reading is on a photo this API mail does not carry: a person must complete it.
    assert_eq!(meter["status"], "preview", "{meter}");
    assert_eq!(found["aiOutcome"], "agentAssist");
    // The reply the relocation agent would send, in the ticket's language, nothing executed.
    let (status, o) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/aiAgent/outcome",
        &stack.agent_token,
        Some(&json!({"aiAgentId": relocation["aiAgentId"], "ticketId": id})),
    )
    .await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["outcome"]["language"], "de", "{o}");
    assert!(
        o["outcome"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Hugo-Junkers-Str. 5, 82031 Grünwald")),
        "{o}"
    );
    let (status, o) = send(&stack, reqwest::Method::POST, "/api/mind/aiAgent/outcome", &stack.agent_token,
        Some(&json!({"aiAgentId": relocation["aiAgentId"], "data": {"moveDate": "2026-12-01", "newAddress": "Lindenstraße 5, 10115 Berlin"}, "language": "en"}))).await;
    assert_eq!(status, 200, "{o}");
    assert!(
        o["outcome"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("on 2026-12-01 to Lindenstraße 5")),
        "{o}"
    );

    let (_, t) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.agent_token)
        .await;
    assert_eq!(
        t["customerId"]
            .as_i64()
            .or_else(|| t["customerId"].as_str().and_then(|s| s.parse().ok())),
        Some(83771),
        "{t}"
    );
    assert_eq!(
        t["contractId"]
            .as_i64()
            .or_else(|| t["contractId"].as_str().and_then(|s| s.parse().ok())),
        Some(746839),
        "{t}"
    );
    assert_eq!(
        t["customerLegitimation"], 20,
        "the sender's address is the contract's"
    );
    assert_eq!(t["languageCode"], "de");
    assert_eq!(t["sentiment"], "neutral");
    assert_eq!(t["spamStatus"], "auto_clean");
    assert!(t["summary"].as_str().is_some_and(|s| !s.is_empty()));

    // AI quality check: the ticket becomes a test case; a run replays it with nothing written
    // and scores it per dimension.
    let agent_id = relocation["aiAgentId"].as_i64().expect("agent id");
    let (status, cases) = send(
        &stack,
        reqwest::Method::POST,
        &format!("/api/mind/aiQualityCheck/testCase/{agent_id}"),
        &stack.admin_token,
        Some(&json!({"ticketIds": [id]})),
    )
    .await;
    assert_eq!(status, 200, "{cases}");
    assert_eq!(
        cases["testCases"][0]["expectedResult"]["contractId"], 746839,
        "{cases}"
    );
    let (status, _) = send(
        &stack,
        reqwest::Method::POST,
        &format!("/api/mind/aiQualityCheck/testCase/{agent_id}"),
        &stack.agent_token,
        Some(&json!({"ticketIds": [id]})),
    )
    .await;
    assert_eq!(
        status, 403,
        "quality checks need the aiQualityCheck permission"
    );
    let (_, agents) = stack
        .get_json("/api/mind/aiQualityCheck/testAiAgent", &stack.admin_token)
        .await;
    assert_eq!(agents["aiAgents"][0]["id"], agent_id, "{agents}");
    let modified = stack
        .count(&format!(
            "SELECT extract(epoch FROM modified_at)::bigint FROM tickets WHERE id = {id}"
        ))
        .await;
    let intents_before = stack.count("SELECT count(*) FROM intents").await;
    let (status, run) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/aiQualityCheck/testRun",
        &stack.admin_token,
        Some(&json!({"aiAgentId": agent_id, "description": "nightly"})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    let run_id = run["testRun"]["id"].as_i64().expect("run id");
    let mut detail = Value::Null;
    for _ in 0..120 {
        detail = stack
            .get_json(
                &format!("/api/mind/aiQualityCheck/testRun/{run_id}"),
                &stack.admin_token,
            )
            .await
            .1;
        if detail["testRun"]["state"] == "finished" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(detail["testRun"]["state"], "finished", "{detail}");
    assert_eq!(
        detail["scores"]["overall"], 1.0,
        "the replay reproduces the ticket: {detail}"
    );
    assert_eq!(
        detail["tickets"][0]["actualResult"]["inputParameters"]["relocation"]["newAddress"],
        "Hugo-Junkers-Str. 5, 82031 Grünwald"
    );
    assert_eq!(
        stack
            .count(&format!(
                "SELECT extract(epoch FROM modified_at)::bigint FROM tickets WHERE id = {id}"
            ))
            .await,
        modified,
        "a test run changed the ticket"
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM intents").await,
        intents_before,
        "a test run wrote intents"
    );
    // A wrong expectation scores lower; accepting the observed result restores it.
    let mut wrong = detail["tickets"][0]["expectedResult"].clone();
    wrong["sentiment"] = json!("negative");
    let (status, t) = send(
        &stack,
        reqwest::Method::PATCH,
        &format!("/api/mind/aiQualityCheck/testRun/{run_id}/updateExpectedResult/{id}"),
        &stack.admin_token,
        Some(&wrong),
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["testTicket"]["scores"]["sentiment"], 0.0, "{t}");
    let (status, t) = send(
        &stack,
        reqwest::Method::PATCH,
        &format!("/api/mind/aiQualityCheck/testRun/{run_id}/acceptExpectedResult/{id}"),
        &stack.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["testTicket"]["scores"]["overall"], 1.0, "{t}");
    let (_, runs) = stack
        .get_json(
            "/api/mind/aiQualityCheck/testRun?limit=10",
            &stack.admin_token,
        )
        .await;
    assert_eq!(runs["total"], 1);
    assert_eq!(runs["testRuns"][0]["ticketsTested"], 1, "{runs}");

    // A stranger quoting Tom's contract number is found, but not legitimated for dark processing.
    let id = ticket(
        &stack,
        &json!({
            "channel": "email", "from": "someone@else.example", "subject": "Zählerstand",
            "body": "Vertragsnummer 746839, Zählerstand 12.345 kWh, Zähler 1ESY1160669167"
        }),
    )
    .await;
    let (_, t) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.agent_token)
        .await;
    assert!(
        t["customerLegitimation"].as_i64().is_some_and(|l| l < 20),
        "{t}"
    );
    let found = intents(&stack, id).await;
    let meter =
        intent(&found, "meter_reading").unwrap_or_else(|| panic!("no meter_reading: {found}"));
    assert_eq!(meter["data"]["meterReading"], 12345, "{meter}");
    assert_eq!(meter["data"]["meterNumber"], "1ESY1160669167", "{meter}");
    assert_eq!(meter["status"], "ready");

    // An invalid IBAN never yields a ready intent.
    let id = ticket(&stack, &json!({
        "channel": "email", "from": "erika@example.org", "subject": "Neue Bankverbindung",
        "body": "Bitte buchen Sie den Abschlag künftig von meinem neuen Konto ab: IBAN DE02 1203 0000 0000 2020 52"
    })).await;
    let found = intents(&stack, id).await;
    let bank =
        intent(&found, "bank_data_agent").unwrap_or_else(|| panic!("no bank_data_agent: {found}"));
    assert_eq!(bank["status"], "preview", "{bank}");
    assert!(bank["data"].get("iban").is_none(), "{bank}");
    stack.shutdown().await;
}

#[tokio::test]
async fn an_operators_new_agent_is_detected_without_a_restart() {
    let stack = ai_stack("ai_new_agent").await;
    let mail = json!({
        "channel": "email", "from": "kunde@example.org", "subject": "Solaranlage",
        "body": "Guten Tag, ich habe eine Photovoltaikanlage auf dem Dach installiert und möchte den überschüssigen Strom einspeisen. Wie melde ich die Einspeisung an?"
    });
    let before = ticket(&stack, &mail).await;
    assert!(intent(&intents(&stack, before).await, "solar_feed_in").is_none());

    let agent = json!({
        "name": "Einspeisung", "slug": "solar_feed_in",
        "description": "Der Kunde möchte Strom aus seiner Photovoltaikanlage einspeisen oder eine Solaranlage anmelden.",
        "settings": {"detectionDetails": {"examples": [
            "Ich möchte meine Solaranlage anmelden.",
            "Wir haben eine PV-Anlage installiert und wollen einspeisen.",
            "Wie bekomme ich eine Einspeisevergütung?",
            "Anmeldung einer Photovoltaikanlage",
            "Ich speise Strom aus meiner Solaranlage ins Netz ein.",
            "Balkonkraftwerk anmelden",
            "I installed solar panels and want to feed electricity into the grid.",
            "How do I register my photovoltaic system?",
            "Feed-in tariff for my rooftop solar",
            "We want to sell surplus solar power.",
            "Our new PV system needs to be registered with you.",
            "Ich habe ein Balkonkraftwerk und möchte es melden."
        ]}}
    });
    // Agents need the permission updateAiAgent: an agent user may not create one.
    let (status, _) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/aiAgent",
        &stack.agent_token,
        Some(&agent),
    )
    .await;
    assert_eq!(status, 403);
    let (status, created) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/aiAgent",
        &stack.admin_token,
        Some(&agent),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let agent_id = created["aiAgent"]["id"].as_i64().expect("agent id");
    let (status, _) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/aiAgent",
        &stack.admin_token,
        Some(&agent),
    )
    .await;
    assert_eq!(status, 409, "a slug is unique");

    // Detected by the running ai replica once AiAgentChanged arrived (no restart).
    let mut detected = false;
    for _ in 0..20 {
        let id = ticket(&stack, &mail).await;
        if intent(&intents(&stack, id).await, "solar_feed_in").is_some() {
            detected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(detected, "the new agent was never detected");

    // Preview: a dry run of an unsaved change on the first ticket; nothing is written.
    let intents_before = stack.count("SELECT count(*) FROM intents").await;
    let (status, preview) = send(
        &stack,
        reqwest::Method::POST,
        &format!("/api/mind/aiAgent/{agent_id}/preview"),
        &stack.admin_token,
        Some(&json!({"ticketId": before, "name": "Einspeisung (neu)"})),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["success"], true, "{preview}");
    assert_eq!(preview["detected"], true, "{preview}");
    assert_eq!(
        stack.count("SELECT count(*) FROM intents").await,
        intents_before
    );

    // The API: list formats, tree, get, patch (deep merge), similar tickets, delete.
    let (_, list) = stack
        .get_json("/api/mind/aiAgents?format=short", &stack.agent_token)
        .await;
    assert_eq!(list["total"], 9);
    let first = &list["aiAgents"][0];
    assert!(
        first.get("settings").is_none() && first.get("slug").is_some(),
        "{first}"
    );
    let (_, tree) = stack
        .get_json("/api/mind/aiAgents/tree", &stack.agent_token)
        .await;
    assert!(
        tree["aiAgentsTree"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{tree}"
    );
    let (status, patched) = send(&stack, reqwest::Method::PATCH, &format!("/api/mind/aiAgent/{agent_id}"),
        &stack.admin_token, Some(&json!({"description": "PV und Balkonkraftwerke", "settings": {"personality": {"style": "kurz"}}}))).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["aiAgent"]["settings"]["detectionDetails"]["examples"]
            .as_array()
            .map(Vec::len),
        Some(12),
        "deep merge keeps examples"
    );
    assert_eq!(
        patched["aiAgent"]["settings"]["personality"]["style"],
        "kurz"
    );
    let (status, bad) = send(
        &stack,
        reqwest::Method::PATCH,
        &format!("/api/mind/aiAgent/{agent_id}"),
        &stack.admin_token,
        Some(&json!({"settings": {"parameters": [{"key": "a", "validation": "zodiac"}]}})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        bad["errors"][0]["field"], "settings.parameters[0].validation",
        "{bad}"
    );
    let (status, similar) = stack
        .get_json(
            &format!("/api/mind/aiAgent/{agent_id}/similarTickets"),
            &stack.agent_token,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        similar["tickets"].as_array().is_some_and(|t| !t.is_empty()),
        "{similar}"
    );
    let (status, _) = send(
        &stack,
        reqwest::Method::DELETE,
        &format!("/api/mind/aiAgent/{agent_id}"),
        &stack.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        stack
            .get_json(&format!("/api/mind/aiAgent/{agent_id}"), &stack.agent_token)
            .await
            .0,
        404
    );
    assert_eq!(
        stack
            .get_json("/api/mind/intent/byTicketId/999999", &stack.agent_token)
            .await
            .0,
        404
    );
    stack.shutdown().await;
}

/// A local server speaking the OpenAI-compatible chat API: answers every question with
/// `{"intents": ["payment_plan"]}` and keeps the requests it got.
async fn fake_llm() -> (
    String,
    std::sync::Arc<tokio::sync::Mutex<Vec<(Option<String>, Value)>>>,
) {
    use axum::{extract::State, http::HeaderMap, routing::post, Json, Router};
    type Seen = std::sync::Arc<tokio::sync::Mutex<Vec<(Option<String>, Value)>>>;
    let seen: Seen = Default::default();
    async fn complete(
        State(seen): State<Seen>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> Json<Value> {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        seen.lock().await.push((auth, body));
        Json(
            json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "{\"intents\": [\"payment_plan\"]}"}}]}),
        )
    }
    let app = Router::new()
        .route("/v1/chat/completions", post(complete))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1"), seen)
}

#[tokio::test]
async fn an_llm_settles_what_the_offline_path_is_unsure_about() {
    let (url, seen) = fake_llm().await;
    let mut stack = Stack::new("ai_llm").await;
    stack.extra_env.insert("LLM_BASE_URL".into(), url);
    stack
        .extra_env
        .insert("LLM_MODEL".into(), "local-test".into());
    stack
        .extra_env
        .insert("LLM_API_KEY".into(), "sk-test-secret".into());
    // Every agent counts as unsure here, so the model decides them all.
    stack
        .extra_env
        .insert("LLM_UNSURE_BAND".into(), "0,1".into());
    for s in ["api", "ingest", "ai", "router", "autoexecute"] {
        stack.start(s).await;
    }
    let (status, _) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/aiAgents/loadDefaults",
        &stack.admin_token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    // The agents are loaded once the model is asked about a probe mail.
    for _ in 0..60 {
        ticket(
            &stack,
            &json!({"channel": "email", "from": "probe@example.org",
            "subject": "Zählerstand", "body": "Zählerstand 1234 kWh"}),
        )
        .await;
        if !seen.lock().await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    seen.lock().await.clear();
    let id = ticket(
        &stack,
        &json!({
            "channel": "email", "from": "kunde@example.org", "subject": "Zählerstand",
            "body": "Mein Zählerstand ist 4711 kWh, Zähler 1ESY1160612345."
        }),
    )
    .await;
    let found = intents(&stack, id).await;
    let codes: Vec<&str> = found["intents"]
        .as_array()
        .map(|l| l.iter().filter_map(|i| i["code"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        codes,
        vec!["payment_plan"],
        "the model's answer stands: {found}"
    );
    let seen = seen.lock().await;
    assert!(!seen.is_empty(), "the model was never asked");
    let (auth, body) = &seen[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-test-secret"));
    assert_eq!(body["model"], "local-test");
    assert_eq!(body["response_format"]["type"], "json_object");
    assert!(
        body["messages"][1]["content"]
            .as_str()
            .is_some_and(|c| c.contains("meter_reading")),
        "{body}"
    );
    // The key never reaches a log.
    let logs = std::fs::read_dir(stack.log_dir())
        .expect("logs")
        .filter_map(|e| e.ok())
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(!logs.contains("sk-test-secret"));
    drop(seen);

    // A model that fails leaves the offline decision standing.
    stack.kill("ai").await;
    stack
        .extra_env
        .insert("LLM_BASE_URL".into(), "http://127.0.0.1:9/v1".into());
    stack
        .extra_env
        .insert("LLM_TIMEOUT_MS".into(), "500".into());
    stack.start("ai").await;
    let id = ticket(
        &stack,
        &json!({
            "channel": "email", "from": "kunde@example.org", "subject": "Zählerstand",
            "body": "Mein Zählerstand ist 4711 kWh, Zähler 1ESY1160612345."
        }),
    )
    .await;
    let found = intents(&stack, id).await;
    assert!(
        intent(&found, "meter_reading").is_some(),
        "offline decision: {found}"
    );
    stack.shutdown().await;
}
