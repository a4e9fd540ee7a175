//! End-to-end tests of the whole pipeline: the real binary as separate processes, real NATS
//! JetStream and real PostgreSQL. Each test has its own database and stream prefix.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::{mail, seed_mail, Stack, STAGES};

async fn start_all(stack: &mut Stack) {
    for s in ["api", "ingest", "ai", "router", "autoexecute"] {
        stack.start(s).await;
    }
}

#[tokio::test]
async fn seed_mail_passes_every_stage_in_order() {
    let mut stack = Stack::new("seed").await;
    start_all(&mut stack).await;

    let post = || {
        stack
            .http()
            .post(stack.url("/api/mind/ticket"))
            .bearer_auth(&stack.admin_token)
            .header("Idempotency-Key", "seed-1")
            .json(&seed_mail())
            .send()
    };
    let resp = post().await.expect("POST");
    assert_eq!(resp.status(), 200);
    let ticket: Value = resp.json().await.expect("ticket JSON");
    let id = ticket["id"].as_i64().expect("ticket id");
    // A client's retry with the same Idempotency-Key gets the same ticket, not a second one.
    let again: Value = post()
        .await
        .expect("POST")
        .json()
        .await
        .expect("ticket JSON");
    assert_eq!(again["id"], id);
    assert_eq!(stack.count("SELECT count(*) FROM tickets").await, 1);
    // Readable right after the POST returned.
    let (status, got) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.agent_token)
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["fromName"], "Tom Mustermann");
    assert_eq!(got["channel"], "email");
    assert_eq!(got["status"], "open");
    assert!(got["bodyPlain"]
        .as_str()
        .is_some_and(|b| b.contains("Hugo-Junkers-Str. 5") && !b.contains("<p>")));

    let stages = stack.wait_done(id, Duration::from_secs(30)).await;
    assert_eq!(stages, STAGES);
    let (_, t) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.admin_token)
        .await;
    assert_eq!(t["languageCode"], "de");
    assert_eq!(t["language"], "German");
    assert_eq!(t["aiSupportLevel"], "human");
    assert!(t["dueBy"].as_str().is_some(), "router sets dueBy: {t}");
    let (_, activity) = stack
        .get_json(
            &format!("/api/mind/ticket/{id}/activity"),
            &stack.admin_token,
        )
        .await;
    let last = &activity["activity"][3];
    assert_eq!(last["outcome"]["result"], "handedToHuman");
    assert_eq!(last["outcome"]["gate"], "intentsPresent");
    stack.shutdown().await;
}

/// Re-publishes every stage's input with a new `Nats-Msg-Id` (so JetStream's de-duplication
/// does not hide it) and checks that no stage did anything twice.
#[tokio::test]
async fn each_stage_has_its_effect_once_when_a_message_is_delivered_twice() {
    let mut stack = Stack::new("dup").await;
    start_all(&mut stack).await;
    let ticket: Value = stack
        .post_ticket(&mail(1))
        .await
        .json()
        .await
        .expect("ticket");
    let id = ticket["id"].as_i64().expect("id");
    assert_eq!(stack.wait_done(id, Duration::from_secs(30)).await, STAGES);
    stack.wait_drained(Duration::from_secs(30)).await;
    let audit_before = stack
        .count(&format!(
            "SELECT count(*) FROM audit_log WHERE entity_id = '{id}'"
        ))
        .await;

    let runs: Vec<(String, Option<Value>)> = sqlx::query_as(
        "SELECT stage, next_envelope FROM stage_runs WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(stack.store.pool())
    .await
    .expect("runs");
    let inbound_key: String =
        sqlx::query_scalar("SELECT inbound_key FROM messages WHERE ticket_id = $1")
            .bind(id)
            .fetch_one(stack.store.pool())
            .await
            .expect("key");
    let inbound = json!({
        "v": 1, "key": inbound_key, "receivedAt": "2026-01-01T00:00:00Z",
        "ticket": {"channel": "email", "from": "kunde1@example.org", "subject": "dup"}
    });
    stack
        .bus
        .publish(
            "inbound.api",
            "redelivery-ingest",
            Bytes::from(inbound.to_string()),
        )
        .await
        .expect("publish");
    let subjects = ["pipeline.ingested", "pipeline.analyzed", "pipeline.routed"];
    for ((stage, next), subject) in runs.iter().zip(subjects) {
        let env = next
            .clone()
            .unwrap_or_else(|| panic!("{stage} handed nothing on"));
        let body = Bytes::from(env.to_string());
        let published = stack
            .bus
            .publish(subject, &format!("redelivery-{stage}"), body)
            .await
            .expect("publish");
        assert!(!published.duplicate);
    }
    stack.wait_drained(Duration::from_secs(30)).await;

    assert_eq!(stack.count("SELECT count(*) FROM tickets").await, 1);
    assert_eq!(stack.count("SELECT count(*) FROM messages").await, 1);
    for stage in STAGES {
        let n = stack
            .count(&format!(
                "SELECT count(*) FROM stage_runs WHERE stage = '{stage}'"
            ))
            .await;
        assert_eq!(n, 1, "stage {stage} ran {n} times");
    }
    let audit_after = stack
        .count(&format!(
            "SELECT count(*) FROM audit_log WHERE entity_id = '{id}'"
        ))
        .await;
    assert_eq!(
        audit_before, audit_after,
        "a duplicate changed the ticket again"
    );
    assert_eq!(stack.count("SELECT count(*) FROM dead_letters").await, 0);
    stack.shutdown().await;
}

/// SIGKILLs one worker at a random point while 500 tickets flow, restarts it, and checks that
/// every ticket passed every stage exactly once, in one trace across the four processes.
#[tokio::test]
async fn a_worker_killed_mid_stream_loses_no_ticket() {
    let seed: u64 = std::env::var("SWITCHYARD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("kill test seed: {seed} (replay with SWITCHYARD_TEST_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let victim = STAGES[rng.gen_range(0..STAGES.len())];
    let kill_after = rng.gen_range(50..400);
    println!("killing {victim} once {kill_after} tickets passed it");

    let mut stack = Stack::new("kill").await;
    stack
        .extra_env
        .insert("API_REPLY_TIMEOUT_MS".into(), "1000".into());
    stack
        .extra_env
        .insert("STAGE_ACK_WAIT_SECS".into(), "5".into());
    start_all(&mut stack).await;

    const N: usize = 500;
    let sender = {
        let client = stack.http();
        let url = stack.url("/api/mind/ticket");
        let token = stack.admin_token.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            futures::stream::iter(0..N)
                .map(|i| {
                    let (client, url, token) = (client.clone(), url.clone(), token.clone());
                    async move {
                        let r = client
                            .post(&url)
                            .bearer_auth(&token)
                            .header("Idempotency-Key", format!("kill-{i}"))
                            .json(&mail(i))
                            .send()
                            .await
                            .expect("POST");
                        assert!(
                            r.status() == 200 || r.status() == 202,
                            "POST {i}: {}",
                            r.status()
                        );
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<()>>()
                .await;
        })
    };

    let start = Instant::now();
    loop {
        let passed = stack
            .count(&format!(
                "SELECT count(*) FROM stage_runs WHERE stage = '{victim}'"
            ))
            .await;
        if passed >= kill_after {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "only {passed} passed {victim}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stack.kill(victim).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stack.start(victim).await;
    sender.await.expect("sender");

    let start = Instant::now();
    loop {
        let done = stack
            .count("SELECT count(*) FROM stage_runs WHERE stage = 'autoexecute'")
            .await;
        if done >= N as i64 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "only {done} of {N} tickets completed (seed {seed}); logs in {}",
            stack.log_dir().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.wait_drained(Duration::from_secs(60)).await;
    assert_eq!(
        stack.count("SELECT count(*) FROM tickets").await,
        N as i64,
        "seed {seed}"
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM messages").await,
        N as i64,
        "seed {seed}"
    );
    for stage in STAGES {
        let n = stack
            .count(&format!(
                "SELECT count(DISTINCT ticket_id) FROM stage_runs WHERE stage = '{stage}'"
            ))
            .await;
        let rows = stack
            .count(&format!(
                "SELECT count(*) FROM stage_runs WHERE stage = '{stage}'"
            ))
            .await;
        assert_eq!(
            (n, rows),
            (N as i64, N as i64),
            "stage {stage} (seed {seed})"
        );
    }
    // One trace per ticket across the four worker processes.
    let split = stack
        .count(
            "SELECT count(*) FROM (SELECT ticket_id FROM stage_runs GROUP BY ticket_id
              HAVING count(DISTINCT trace_id) <> 1 OR count(trace_id) <> 4) t",
        )
        .await;
    assert_eq!(split, 0, "tickets whose stages are not in one trace");
    let replicas = stack
        .count("SELECT count(DISTINCT replica) FROM stage_runs")
        .await;
    assert!(
        replicas >= 5,
        "expected the four workers plus the restarted one, got {replicas}"
    );
    assert_eq!(stack.count("SELECT count(*) FROM dead_letters").await, 0);
    stack.shutdown().await;
}

/// A stage that always fails (a database guard an operator installed) dead-letters the message
/// after MaxDeliver, flags the ticket, and a replay through the API completes it once the guard
/// is gone.
#[tokio::test]
async fn a_message_that_keeps_failing_is_dead_lettered_and_replayable() {
    let mut stack = Stack::new("dlq").await;
    stack
        .extra_env
        .insert("STAGE_MAX_DELIVER".into(), "3".into());
    stack
        .extra_env
        .insert("STAGE_RETRY_DELAYS_MS".into(), "100".into());
    sqlx::raw_sql(
        "CREATE FUNCTION block_router() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN IF NEW.stage = 'router' THEN RAISE EXCEPTION 'router blocked by the test'; END IF;
           RETURN NEW; END $$;
         CREATE TRIGGER block_router BEFORE INSERT ON stage_runs FOR EACH ROW EXECUTE FUNCTION block_router();",
    )
    .execute(stack.store.pool())
    .await
    .expect("install guard");
    start_all(&mut stack).await;

    let ticket: Value = stack
        .post_ticket(&mail(7))
        .await
        .json()
        .await
        .expect("ticket");
    let id = ticket["id"].as_i64().expect("id");

    let start = Instant::now();
    let list = loop {
        let (status, list) = stack
            .get_json("/api/mind/dlq?stage=router", &stack.admin_token)
            .await;
        assert_eq!(status, 200);
        if list["total"] == 1 {
            break list;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not dead-lettered: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let dl = &list["deadLetters"][0];
    assert_eq!(dl["ticketId"], id);
    assert_eq!(dl["deliveries"], 3);
    assert!(dl["error"]
        .as_str()
        .is_some_and(|e| e.contains("router blocked")));
    let (_, t) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.admin_token)
        .await;
    assert_eq!(t["aiSupportLevel"], "human");
    assert_eq!(t["processingFlags"][0]["code"], "deadLettered");
    assert_eq!(t["processingFlags"][0]["stage"], "router");
    assert_eq!(stack.stages_of(id).await, ["ingest", "ai"]);

    // The DLQ stream has the copy.
    let stream = stack
        .bus
        .jetstream()
        .get_stream(stack.bus.stream_name(switchyard_bus::StreamKind::Dlq))
        .await
        .expect("DLQ stream");
    let copy = stream
        .get_last_raw_message_by_subject(&stack.bus.subject("dlq.router"))
        .await
        .expect("copy on dlq.router");
    let copy: Value = serde_json::from_slice(&copy.payload).expect("copy JSON");
    assert_eq!(copy["ticketId"], id);

    // Agents may not replay.
    let r = stack
        .http()
        .post(stack.url(&format!("/api/mind/dlq/{}/replay", dl["id"])))
        .bearer_auth(&stack.agent_token)
        .send()
        .await
        .expect("replay");
    assert_eq!(r.status(), 403);

    sqlx::raw_sql("DROP TRIGGER block_router ON stage_runs")
        .execute(stack.store.pool())
        .await
        .expect("lift guard");
    let r = stack
        .http()
        .post(stack.url(&format!("/api/mind/dlq/{}/replay", dl["id"])))
        .bearer_auth(&stack.admin_token)
        .send()
        .await
        .expect("replay");
    assert_eq!(r.status(), 200);
    assert_eq!(stack.wait_done(id, Duration::from_secs(30)).await, STAGES);
    let (_, t) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.admin_token)
        .await;
    assert_eq!(t["processingFlags"], json!([]));
    let (_, list) = stack.get_json("/api/mind/dlq", &stack.admin_token).await;
    assert_eq!(list["total"], 0, "replayed letters leave the open list");
    stack.shutdown().await;
}

#[tokio::test]
async fn authentication_roles_and_field_errors() {
    let mut stack = Stack::new("auth").await;
    stack.start("api").await;
    let http = stack.http();

    // Anonymous: 401 problem+json everywhere but health.
    for path in [
        "/api/mind/ticket/1",
        "/api/mind/settings",
        "/api/mind/dlq",
        "/api/mind/docs/open-api",
        "/api/mind/ticket/1/activity",
    ] {
        let r = http.get(stack.url(path)).send().await.expect("GET");
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    let r = http
        .get(stack.url("/api/mind/ticket/1"))
        .bearer_auth("sy_forged")
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 401);
    assert_eq!(
        http.get(stack.url("/healthz"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );

    // Agents cannot change settings; admins can, and secrets stay hidden from agents.
    let put = |token: &str, value: Value| {
        http.put(stack.url("/api/mind/settings/defaultSlaHours"))
            .bearer_auth(token.to_owned())
            .json(&value)
            .send()
    };
    assert_eq!(
        put(&stack.agent_token, json!(8))
            .await
            .expect("PUT")
            .status(),
        403
    );
    let r = http
        .post(stack.url("/api/mind/settings"))
        .bearer_auth(&stack.agent_token)
        .json(&json!({"erpApiToken": "s3cret"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 403);
    assert_eq!(
        put(&stack.admin_token, json!(8))
            .await
            .expect("PUT")
            .status(),
        200
    );
    let r = http
        .post(stack.url("/api/mind/settings"))
        .bearer_auth(&stack.admin_token)
        .json(&json!({"erpApiToken": "s3cret", "enableAiAutoProcessing": true}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    let (_, s) = stack
        .get_json("/api/mind/settings?category=erp", &stack.agent_token)
        .await;
    assert_eq!(s["settings"][0]["name"], "erpApiToken");
    assert_eq!(
        s["settings"][0]["value"],
        Value::Null,
        "secret shown to an agent"
    );
    let (_, s) = stack
        .get_json(
            "/api/mind/settings?names=erpApiToken,defaultSlaHours&showSecrets=true",
            &stack.admin_token,
        )
        .await;
    let values: Vec<&Value> = s["settings"]
        .as_array()
        .expect("list")
        .iter()
        .map(|x| &x["value"])
        .collect();
    assert_eq!(values, [&json!(8), &json!("s3cret")]);
    // The audit log names who changed it, without the secret.
    let audit: Vec<(String, Value)> =
        sqlx::query_as("SELECT actor, changes FROM audit_log WHERE entity = 'setting' AND entity_id = 'erpApiToken'")
            .fetch_all(stack.store.pool())
            .await
            .expect("audit");
    assert_eq!(audit.len(), 1);
    assert!(audit[0].0.starts_with("user:"));
    assert!(!audit[0].1.to_string().contains("s3cret"));

    // Bad fields: 400 problem+json naming each field.
    let r = http
        .put(stack.url("/api/mind/settings/defaultSlaHours"))
        .bearer_auth(&stack.admin_token)
        .json(&json!("eight"))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 400);
    let p: Value = r.json().await.expect("problem");
    assert_eq!(p["errors"][0]["field"], "defaultSlaHours");
    assert_eq!(p["success"], false);

    let r = stack
        .post_ticket(&json!({"channel": "fax", "from": "a@b.de", "body": "x"}))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.expect("problem");
    assert_eq!(p["errors"][0]["field"], "channel");
    let r = stack
        .post_ticket(&json!({"from": "not-an-address", "body": ""}))
        .await;
    let p: Value = r.json().await.expect("problem");
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["from", "body"]);
    let (status, _) = stack
        .get_json("/api/mind/ticket/abc", &stack.admin_token)
        .await;
    assert_eq!(status, 404, "a path id that is not a number names nothing");
    let (status, _) = stack
        .get_json("/api/mind/ticket/999999", &stack.admin_token)
        .await;
    assert_eq!(status, 404);

    // Passwords and cookie sessions; failed logins are rate-limited.
    let agent_id = stack
        .count("SELECT id FROM users WHERE email = 'agent@test'")
        .await;
    let admin_id = stack
        .count("SELECT id FROM users WHERE email = 'admin@test'")
        .await;
    let set_pw = |id: i64, token: &str, pw: &str| {
        http.put(stack.url(&format!("/api/mind/user/{id}/password")))
            .bearer_auth(token.to_owned())
            .json(&json!({"password": pw}))
            .send()
    };
    assert_eq!(
        set_pw(agent_id, &stack.agent_token, "short")
            .await
            .expect("PUT")
            .status(),
        400
    );
    assert_eq!(
        set_pw(admin_id, &stack.agent_token, "correct horse battery")
            .await
            .expect("PUT")
            .status(),
        403
    );
    assert_eq!(
        set_pw(agent_id, &stack.agent_token, "correct horse battery")
            .await
            .expect("PUT")
            .status(),
        200
    );
    assert_eq!(
        set_pw(admin_id, &stack.admin_token, "staple battery horse")
            .await
            .expect("PUT")
            .status(),
        200
    );
    let login = |email: &str, pw: &str| {
        http.post(stack.url("/api/mind/auth/login"))
            .json(&json!({"email": email, "password": pw}))
            .send()
    };
    let r = login("agent@test", "correct horse battery")
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(
        cookie.starts_with("connect.sid=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().expect("pair").to_owned();
    let with_cookie = || {
        http.get(stack.url("/api/mind/settings"))
            .header("cookie", session.clone())
            .send()
    };
    assert_eq!(with_cookie().await.expect("GET").status(), 200);
    let r = http
        .put(stack.url("/api/mind/settings/defaultSlaHours"))
        .header("cookie", session.clone())
        .json(&json!(12))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 403, "a session has its user's role");
    let r = http
        .post(stack.url("/api/mind/auth/logout"))
        .header("cookie", session.clone())
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 200);
    assert_eq!(
        with_cookie().await.expect("GET").status(),
        401,
        "logged out"
    );
    for _ in 0..5 {
        assert_eq!(
            login("admin@test", "wrong password!")
                .await
                .expect("login")
                .status(),
            401
        );
    }
    let r = login("admin@test", "staple battery horse")
        .await
        .expect("login");
    assert_eq!(
        r.status(),
        429,
        "even the right password waits after five failures"
    );
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        login("nobody@test", "whatever you like")
            .await
            .expect("login")
            .status(),
        401
    );

    // The OpenAPI document lists what is served.
    let (status, doc) = stack
        .get_json("/api/mind/docs/open-api", &stack.agent_token)
        .await;
    assert_eq!(status, 200);
    for path in [
        "/api/mind/ticket",
        "/api/mind/ticket/{ticketId}",
        "/api/mind/ticket/{ticketId}/activity",
        "/api/mind/settings",
        "/api/mind/settings/{name}",
        "/api/mind/dlq",
        "/api/mind/dlq/{id}/replay",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    stack.shutdown().await;
}

/// Without the ingest worker the API cannot confirm in time: it answers 202, and the ticket
/// appears once ingest runs. Nothing is lost.
#[tokio::test]
async fn a_ticket_posted_while_ingest_is_down_still_appears() {
    let mut stack = Stack::new("late").await;
    stack
        .extra_env
        .insert("API_REPLY_TIMEOUT_MS".into(), "300".into());
    stack.start("api").await;
    let r = stack.post_ticket(&mail(3)).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.expect("body");
    assert!(body["requestId"].as_str().is_some());
    assert_eq!(stack.count("SELECT count(*) FROM tickets").await, 0);
    for s in ["ingest", "ai", "router", "autoexecute"] {
        stack.start(s).await;
    }
    let start = Instant::now();
    while stack
        .count("SELECT count(*) FROM stage_runs WHERE stage = 'autoexecute'")
        .await
        < 1
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "ticket never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.shutdown().await;
}

/// An AI quality check replays a message with a `testRunId`: the stages run for real, but every
/// effect is recorded on the run's markers instead of applied, and no event leaves.
#[tokio::test]
async fn a_test_run_records_effects_without_applying_them() {
    let mut stack = Stack::new("testrun").await;
    start_all(&mut stack).await;
    let ticket: Value = stack
        .post_ticket(&seed_mail())
        .await
        .json()
        .await
        .expect("ticket");
    let id = ticket["id"].as_i64().expect("id");
    assert_eq!(stack.wait_done(id, Duration::from_secs(30)).await, STAGES);
    stack.wait_drained(Duration::from_secs(30)).await;
    let (_, before) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.admin_token)
        .await;
    let audit_before = stack.count("SELECT count(*) FROM audit_log").await;
    let events = stack
        .bus
        .jetstream()
        .get_stream(stack.bus.stream_name(switchyard_bus::StreamKind::Events))
        .await
        .expect("events stream");
    let events_before = events.get_info().await.expect("info").state.messages;

    let message_id: i64 = sqlx::query_scalar("SELECT id FROM messages WHERE ticket_id = $1")
        .bind(id)
        .fetch_one(stack.store.pool())
        .await
        .expect("message");
    let run = uuid::Uuid::new_v4();
    let env = json!({"v": 1, "ticketId": id, "messageId": message_id, "testRunId": run});
    stack
        .bus
        .publish(
            "pipeline.ingested",
            &format!("ai:{message_id}:{run}"),
            Bytes::from(env.to_string()),
        )
        .await
        .expect("publish");

    let start = Instant::now();
    let sql = format!("SELECT count(*) FROM stage_runs WHERE test_run_key = '{run}'");
    while stack.count(&sql).await < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "test run did not reach autoexecute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.wait_drained(Duration::from_secs(30)).await;

    let (_, after) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.admin_token)
        .await;
    assert_eq!(before, after, "a test run changed the ticket");
    assert_eq!(
        audit_before,
        stack.count("SELECT count(*) FROM audit_log").await
    );
    let mut events = events;
    assert_eq!(
        events_before,
        events.info().await.expect("info").state.messages,
        "a test run emitted events"
    );
    let recorded: Vec<(String, Value)> = sqlx::query_as(
        "SELECT stage, recorded_effects FROM stage_runs WHERE test_run_key = $1 ORDER BY id",
    )
    .bind(run.to_string())
    .fetch_all(stack.store.pool())
    .await
    .expect("recorded");
    let stages: Vec<&str> = recorded.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(stages, ["ai", "router", "autoexecute"]);
    let ai = recorded[0].1.to_string();
    assert!(
        ai.contains("patchTicket") && ai.contains("\"languageCode\":\"de\""),
        "{ai}"
    );
    assert!(
        ai.contains("TicketCreated"),
        "the event is recorded, not sent: {ai}"
    );
    // The ticket's own timeline does not show test runs.
    assert_eq!(stack.stages_of(id).await, STAGES);
    stack.shutdown().await;
}

/// A worker that hangs on a message (SIGSTOP) never acknowledges it nor dead-letters it itself:
/// after MaxDeliver the server's advisory makes another process store it as a dead letter, flag
/// the ticket and take it off the stream; a replay completes it once a healthy worker runs.
#[tokio::test]
async fn a_message_a_hung_worker_never_finishes_is_dead_lettered_by_the_advisory() {
    let mut stack = Stack::new("hung").await;
    stack
        .extra_env
        .insert("STAGE_MAX_DELIVER".into(), "2".into());
    stack
        .extra_env
        .insert("STAGE_ACK_WAIT_SECS".into(), "1".into());
    start_all(&mut stack).await;
    stack.signal("router", "STOP");

    let ticket: Value = stack
        .post_ticket(&mail(9))
        .await
        .json()
        .await
        .expect("ticket");
    let id = ticket["id"].as_i64().expect("id");
    let start = Instant::now();
    let dl = loop {
        let (_, list) = stack
            .get_json("/api/mind/dlq?stage=router", &stack.admin_token)
            .await;
        if list["total"] == 1 {
            break list["deadLetters"][0].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no dead letter from the advisory: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dl["ticketId"], id);
    assert!(
        dl["error"]
            .as_str()
            .is_some_and(|e| e.contains("no worker acknowledged")),
        "{dl}"
    );
    let (_, t) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.admin_token)
        .await;
    assert_eq!(t["processingFlags"][0]["code"], "deadLettered");
    assert_eq!(t["aiSupportLevel"], "human");
    assert_eq!(stack.stages_of(id).await, ["ingest", "ai"]);

    // A healthy router replaces the hung one; the replay completes the ticket once.
    stack.kill("router").await;
    stack.start("router").await;
    let r = stack
        .http()
        .post(stack.url(&format!("/api/mind/dlq/{}/replay", dl["id"])))
        .bearer_auth(&stack.admin_token)
        .send()
        .await
        .expect("replay");
    assert_eq!(r.status(), 200);
    assert_eq!(stack.wait_done(id, Duration::from_secs(30)).await, STAGES);
    stack.wait_drained(Duration::from_secs(30)).await;
    assert_eq!(stack.count("SELECT count(*) FROM dead_letters").await, 1);
    stack.shutdown().await;
}

/// The ERP mirror's look-ups and a ticket's conversation, on the demo customers.
#[tokio::test]
async fn customers_contracts_and_the_conversation() {
    let mut stack = Stack::new("customers").await;
    start_all(&mut stack).await;
    let customers: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/local/erp/customers.json"
        ))
        .expect("customers.json"),
    )
    .expect("customers JSON");
    let imported = stack
        .http()
        .post(stack.url("/api/mind/customer/import"))
        .bearer_auth(&stack.admin_token)
        .json(&customers)
        .send()
        .await
        .expect("import");
    assert_eq!(imported.status(), 200);
    let imported: Value = imported.json().await.expect("import answer");
    assert_eq!(imported["customers"], 4, "{imported}");
    assert_eq!(imported["contracts"], 5, "{imported}");
    // An agent may read the mirror but not load it.
    let denied = stack
        .http()
        .post(stack.url("/api/mind/customer/import"))
        .bearer_auth(&stack.agent_token)
        .json(&customers)
        .send()
        .await
        .expect("import");
    assert_eq!(denied.status(), 403);
    let bad = stack
        .http()
        .post(stack.url("/api/mind/customer/import"))
        .bearer_auth(&stack.admin_token)
        .json(&serde_json::json!([{"id": 1, "contracts": [{"id": "x"}]}]))
        .send()
        .await
        .expect("import");
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.expect("problem");
    assert_eq!(bad["errors"][0]["field"], "[0].contracts[0].id", "{bad}");
    let token = stack.agent_token.clone();

    let (status, c) = stack
        .get_json("/api/mind/customer/byCustomerId/83771", &token)
        .await;
    assert_eq!(status, 200);
    assert_eq!(c["lastname"], "Mustermann");
    assert_eq!(c["emailMatches"], Value::Null);
    assert_eq!(c["contracts"][0]["id"], 746839);
    assert_eq!(
        c["contracts"][0]["startDate"], 1661990400,
        "contract dates are unix seconds"
    );
    assert_eq!(c["contracts"][0]["productName"], "Flex 24");
    let (_, c) = stack
        .get_json("/api/mind/customer/byContractId/746840", &token)
        .await;
    assert_eq!(c["id"], 83772);
    let (_, k) = stack.get_json("/api/mind/contract/746839", &token).await;
    assert_eq!(k["counterNumber"], "1ESY1160669167");
    assert_eq!(stack.get_json("/api/mind/contract/1", &token).await.0, 404);
    assert_eq!(stack.get_json("/api/mind/contract/x", &token).await.0, 404);

    let (_, found) = stack
        .get_json("/api/mind/customer/search?q=muster", &token)
        .await;
    assert_eq!(found["total"], 2, "Mustermann and Musterfrau: {found}");
    let (_, found) = stack
        .get_json("/api/mind/customer/search?q=MUSTERMANN", &token)
        .await;
    assert_eq!(found["total"], 1, "{found}");
    let (_, found) = stack
        .get_json("/api/mind/customer/search?q=1ESY1160669167", &token)
        .await;
    assert_eq!(found["customers"][0]["id"], 83771);
    // Filter values are data, never SQL.
    let (status, found) = stack
        .get_json(
            "/api/mind/customer/search?q=x'%20OR%201=1;%20DROP%20TABLE%20customers;--",
            &token,
        )
        .await;
    assert_eq!((status, found["total"].clone()), (200, json!(0)));
    assert_eq!(stack.count("SELECT count(*) FROM customers").await, 4);

    let mut mail = seed_mail();
    mail["contractId"] = json!("746839");
    let t: Value = stack.post_ticket(&mail).await.json().await.expect("ticket");
    let id = t["id"].as_i64().expect("id");
    assert_eq!(t["contractId"], "746839");
    let (_, c) = stack
        .get_json(&format!("/api/mind/customer/byTicketId/{id}"), &token)
        .await;
    assert_eq!(c["id"], 83771);
    assert_eq!(c["emailMatches"], true);
    let (_, conv) = stack
        .get_json(&format!("/api/mind/ticket/{id}/conversation"), &token)
        .await;
    assert_eq!(conv["conversation"][0]["fromName"], "Tom Mustermann");
    assert_eq!(conv["conversation"][0]["direction"], "in");
    assert_eq!(
        stack
            .get_json("/api/mind/ticket/99999/conversation", &token)
            .await
            .0,
        404
    );

    // History: the customer's other tickets; variables: what conditions can refer to.
    let t2: Value = stack.post_ticket(&mail).await.json().await.expect("ticket");
    let id2 = t2["id"].as_i64().expect("id");
    let (_, h) = stack
        .get_json(&format!("/api/mind/ticket/{id}/history"), &token)
        .await;
    assert_eq!(
        (h["total"].clone(), h["history"][0]["id"].clone()),
        (json!(1), json!(id2)),
        "{h}"
    );
    assert_eq!(h["totalOpenedTickets"], 1);
    let (_, v) = stack
        .get_json(&format!("/api/mind/ticket/{id}/variables"), &token)
        .await;
    assert_eq!(v["variables"]["contract"]["energy"], "electricity");
    assert_eq!(v["variables"]["ticket"]["channel"], "email");
    assert_eq!(
        v["variables"]["settings"]["erpApiToken"],
        Value::Null,
        "no secrets: {v}"
    );

    // Bulk update: all or none, bad fields named with their index.
    let bulk = |body: Value| {
        stack
            .http()
            .patch(stack.url("/api/mind/ticket"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let r = bulk(json!([{"id": id, "priority": "high"}, {"id": id2, "customerLegitimation": 5}]))
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 400);
    let p: Value = r.json().await.expect("problem");
    assert_eq!(p["errors"][0]["field"], "[1].customerLegitimation");
    let r = bulk(json!([{"id": id, "priority": "high"}, {"id": 999999, "priority": "high"}]))
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 404);
    let (_, t) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &token)
        .await;
    assert_eq!(t["priority"], "medium", "nothing applied when one fails");
    let r = bulk(json!([{"id": id, "priority": "high"}, {"id": id2, "priority": "high", "status": "pending"}])).await.expect("PATCH");
    assert_eq!(r.status(), 200);
    let (_, t) = stack
        .get_json(&format!("/api/mind/ticket/{id2}"), &token)
        .await;
    assert_eq!(
        (t["priority"].clone(), t["status"].clone()),
        (json!("high"), json!("pending"))
    );
    stack.shutdown().await;
}

/// `POST /api/mind/ticket/search`: the filter language, and SQL injection strings in every
/// filter come back as data or a 4xx.
#[tokio::test]
async fn ticket_search_filters_and_injection_strings() {
    let mut stack = Stack::new("search").await;
    start_all(&mut stack).await;
    let mut ids = Vec::new();
    for (channel, from, subject) in [
        ("email", "anna@example.org", "Zählerstand März"),
        ("email", "bernd@example.org", "Umzug nach Berlin"),
        ("chat", "carla@example.org", "Abschlag senken"),
    ] {
        let t: Value = stack
            .post_ticket(
                &json!({"channel": channel, "from": from, "subject": subject, "body": "Hallo"}),
            )
            .await
            .json()
            .await
            .expect("ticket");
        ids.push(t["id"].as_i64().expect("id"));
    }
    let search = |body: Value| {
        let stack = &stack;
        async move {
            let r = stack
                .http()
                .post(stack.url("/api/mind/ticket/search"))
                .bearer_auth(&stack.agent_token)
                .json(&body)
                .send()
                .await
                .expect("search");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let total = |v: &Value| v["total"].as_i64().unwrap_or(-1);

    let (s, r) =
        search(json!({"filters": [{"key": "t.channel", "comparator": "=", "value": "chat"}]}))
            .await;
    assert_eq!((s, total(&r)), (200, 1), "{r}");
    assert_eq!(r["tickets"][0]["subject"], "Abschlag senken");
    assert!(
        r["tickets"][0].get("body").is_none(),
        "compact tickets carry no body"
    );
    let (_, r) = search(
        json!({"filters": [{"key": "t.channel", "comparator": "in", "values": ["email", "chat"]}],
                               "orderByField": "t.id", "orderByDirection": "asc"}),
    )
    .await;
    let got: Vec<i64> = r["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .filter_map(|t| t["id"].as_i64())
        .collect();
    assert_eq!(got, ids);
    let (_, r) = search(json!({"filters": [{"key": "t.createdAt", "comparator": "between",
                                             "from": "2020-01-01 00:00:00", "to": "2099-01-01T00:00:00Z"}]})).await;
    assert_eq!(total(&r), 3);
    let (_, r) = search(json!({"q": "umzug berlin"})).await;
    assert_eq!(total(&r), 1);
    let (_, r) = search(json!({"filters": [{"key": "t.from", "comparator": "like", "value": "example.org"}], "limit": 2})).await;
    assert_eq!(
        (total(&r), r["tickets"].as_array().map(Vec::len)),
        (3, Some(2))
    );

    let (s, r) =
        search(json!({"filters": [{"key": "t.nope", "comparator": "=", "value": 1}]})).await;
    assert_eq!(
        (s, r["errors"][0]["field"].clone()),
        (400, json!("filters[0].key"))
    );
    let (s, r) =
        search(json!({"filters": [{"key": "t.status", "comparator": "=", "value": "gone"}]})).await;
    assert_eq!(
        (s, r["errors"][0]["field"].clone()),
        (400, json!("filters[0].value"))
    );

    let evil = "x' OR '1'='1'; DROP TABLE tickets; --";
    for (key, comparator) in [
        ("t.from", "="),
        ("t.spamStatus", "!="),
        ("t.languageCode", "like"),
        ("t.from", "in"),
    ] {
        let f = if comparator == "in" {
            json!({"key": key, "comparator": comparator, "values": [evil]})
        } else {
            json!({"key": key, "comparator": comparator, "value": evil})
        };
        let (s, r) = search(json!({"filters": [f]})).await;
        let expected = if comparator == "!=" { 3 } else { 0 };
        assert_eq!((s, total(&r)), (200, expected), "{key} {comparator}: {r}");
    }
    for f in [
        json!({"key": "t.status", "comparator": "=", "value": evil}),
        json!({"key": "t.agentId", "comparator": "=", "value": evil}),
        json!({"key": "t.createdAt", "comparator": ">", "value": evil}),
        json!({"key": "tt.tagId", "comparator": "in", "values": [evil]}),
        json!({"key": evil, "comparator": "=", "value": 1}),
        json!({"key": "t.from", "comparator": evil, "value": 1}),
    ] {
        let (s, _) = search(json!({"filters": [f.clone()]})).await;
        assert_eq!(s, 400, "{f}");
    }
    assert_eq!(search(json!({"q": evil})).await.0, 200);
    assert_eq!(search(json!({"orderByField": evil})).await.0, 400);
    assert_eq!(search(json!({"orderByDirection": evil})).await.0, 400);
    assert_eq!(stack.count("SELECT count(*) FROM tickets").await, 3);

    // NUL characters (which PostgreSQL text cannot hold) become U+FFFD in a ticket and in a
    // search alike, so the search finds the ticket; never a 500.
    let r = stack
        .post_ticket(&json!({"channel": "email", "from": "nul@example.org", "subject": "Z\0ähler", "body": "a\0b"}))
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.expect("ticket");
    assert_eq!(
        (t["subject"].clone(), t["bodyPlain"].clone()),
        (json!("Z\u{FFFD}ähler"), json!("a\u{FFFD}b"))
    );
    let (status, found) = search(json!({"q": "a\0b"})).await;
    assert_eq!((status, found["total"].clone()), (200, json!(1)), "{found}");
    let team = |name: &str| {
        stack
            .http()
            .post(stack.url("/api/mind/team"))
            .bearer_auth(&stack.admin_token)
            .json(&json!({"name": name}))
            .send()
    };
    let first: Value = team("Eins")
        .await
        .expect("team")
        .json()
        .await
        .expect("team");
    team("Zwei").await.expect("team");
    let r = stack
        .http()
        .post(stack.url("/api/mind/team"))
        .bearer_auth(&stack.admin_token)
        .json(&json!({"id": first["id"], "name": "Zwei"}))
        .send()
        .await
        .expect("rename");
    assert_eq!(
        r.status(),
        409,
        "renaming onto another team's name is a conflict"
    );
    stack.shutdown().await;
}

/// A chat subchannel's endpoint: signed messages of one conversation become one ticket; a wrong
/// signature is refused; a re-sent message is stored once.
#[tokio::test]
async fn chat_messages_are_signed_and_one_conversation_is_one_ticket() {
    use hmac::{Hmac, Mac};
    let mut stack = Stack::new("chat").await;
    start_all(&mut stack).await;
    let (status, created): (u16, Value) = {
        let r = stack
            .http()
            .post(stack.url("/api/mind/settings/subchannel"))
            .bearer_auth(&stack.admin_token)
            .json(&json!({"channel": "chat", "name": "Website", "data": {"signingSecret": "chat-secret-1"}}))
            .send()
            .await
            .expect("subchannel");
        (r.status().as_u16(), r.json().await.expect("json"))
    };
    assert_eq!(status, 200);
    let sub = created["id"].as_i64().expect("id");
    let send = |body: Value, secret: &str| {
        let raw = body.to_string();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(raw.as_bytes());
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        stack
            .http()
            .post(stack.url(&format!("/api/mind/chat/{sub}/message")))
            .header("content-type", "application/json")
            .header("x-switchyard-signature", sig)
            .body(raw)
            .send()
    };
    let first = json!({"channelId": "conv-1", "from": "kim@example.org", "text": "Hallo, mein Zählerstand ist 4711.", "messageId": "m1"});
    assert_eq!(
        send(first.clone(), "wrong").await.expect("POST").status(),
        401
    );
    assert_eq!(
        send(first.clone(), "chat-secret-1")
            .await
            .expect("POST")
            .status(),
        202
    );
    assert_eq!(
        send(first, "chat-secret-1").await.expect("POST").status(),
        202,
        "a re-send is accepted"
    );
    let second = json!({"channelId": "conv-1", "from": "kim@example.org", "text": "Und noch eine Frage.", "messageId": "m2"});
    assert_eq!(
        send(second, "chat-secret-1").await.expect("POST").status(),
        202
    );
    let start = Instant::now();
    while stack
        .count("SELECT count(*) FROM stage_runs WHERE stage = 'autoexecute'")
        .await
        < 2
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "chat messages not processed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.wait_drained(Duration::from_secs(30)).await;
    assert_eq!(
        stack.count("SELECT count(*) FROM tickets").await,
        1,
        "one conversation, one ticket"
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM messages").await,
        2,
        "the re-sent message is stored once"
    );
    let (_, t) = stack
        .get_json("/api/mind/ticket/1", &stack.admin_token)
        .await;
    assert_eq!(
        (t["channel"].clone(), t["channelId"].clone()),
        (json!("chat"), json!("conv-1"))
    );
    assert_eq!(t["languageCode"], "de");
    stack.shutdown().await;
}
