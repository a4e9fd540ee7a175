//! Routing end to end: tags assigned by the router, SLA in business hours, the agent queue
//! (`getLatest`) under concurrency, skills, ordering, pings, follow-ups, overdue events, stats.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use support::Stack;

async fn routed_stack(name: &str) -> Stack {
    let mut stack = Stack::new(name).await;
    stack
        .extra_env
        .insert("OVERDUE_SCAN_SECS".into(), "1".into());
    for s in ["api", "ingest", "ai", "router", "autoexecute"] {
        stack.start(s).await;
    }
    stack
}

async fn post(stack: &Stack, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let r = stack
        .http()
        .post(stack.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn create_tag(stack: &Stack, body: Value) -> i64 {
    let (status, r) = post(stack, "/api/mind/tag", &stack.admin_token, &body).await;
    assert_eq!(status, 200, "{r}");
    r["id"].as_i64().expect("tag id")
}

async fn put_setting(stack: &Stack, name: &str, value: Value) {
    let r = stack
        .http()
        .put(stack.url(&format!("/api/mind/settings/{name}")))
        .bearer_auth(&stack.admin_token)
        .json(&value)
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 200, "{name}");
}

/// An agent with skills; returns (user id, token).
async fn agent(stack: &Stack, email: &str, skills: &[i64]) -> (i64, String) {
    let (status, u) = post(
        stack,
        "/api/mind/user",
        &stack.admin_token,
        &json!({"email": email, "role": "agent", "firstName": email}),
    )
    .await;
    assert_eq!(status, 200, "{u}");
    let id = u["id"].as_i64().expect("user id");
    let r = stack
        .http()
        .patch(stack.url(&format!("/api/mind/user/{id}")))
        .bearer_auth(&stack.admin_token)
        .json(&json!({"skills": skills}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 200);
    (id, u["token"].as_str().expect("token").to_owned())
}

/// Posts a ticket and waits until the router has routed it.
async fn routed_ticket(stack: &Stack, body: Value) -> Value {
    let r = stack.post_ticket(&body).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.expect("ticket");
    let id = t["id"].as_i64().expect("id");
    let stages = stack.wait_done(id, Duration::from_secs(30)).await;
    assert!(stages.iter().any(|s| s == "router"), "{stages:?}");
    stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.admin_token)
        .await
        .1
}

fn mail(subject: &str, created_at: &str) -> Value {
    json!({"channel": "email", "from": "kunde@example.org", "subject": subject,
           "body": "Bitte um Rückmeldung.", "createdAt": created_at})
}

async fn get_latest(stack: &Stack, token: &str) -> Option<i64> {
    let (status, r) = post(stack, "/api/mind/ticket/getLatest", token, &json!({})).await;
    assert_eq!(status, 200, "{r}");
    r["ticketId"].as_i64()
}

#[tokio::test]
async fn sla_is_counted_in_business_hours_with_holidays() {
    let stack = routed_stack("sla").await;
    put_setting(
        &stack,
        "businessHours",
        json!({"timezone": "Europe/Berlin",
               "hours": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "wed": [["09:00", "17:00"]],
                         "thu": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]], "sat": [], "sun": []},
               "holidayState": "BY", "extraHolidays": ["2026-12-07"]}),
    )
    .await;
    let sla = create_tag(
        &stack,
        json!({"name": "Complaint", "sla": 8, "priority": "high", "assignment": ["assignByTicketProperty"],
               "detectionDetails": {"conditions": {"field": "ticket.subject", "operator": "contains", "value": "Beschwerde"}}}),
    )
    .await;
    // Let the router's tag cache pick up the new tag.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Friday 16:00 in Berlin (15:00 UTC): one hour on Friday, seven on Monday.
    let t = routed_ticket(&stack, mail("Beschwerde", "2026-11-20 15:00:00")).await;
    assert_eq!(
        t["dueBy"], "2026-11-23 15:00:00",
        "Monday 16:00 Berlin: {t}"
    );
    assert_eq!(t["priority"], "high");
    assert_eq!(t["tags"][0]["id"], sla);
    // The Friday before Whit Monday (a holiday everywhere): due Tuesday 16:00 (CEST, 14:00 UTC).
    let t = routed_ticket(&stack, mail("Beschwerde", "2026-05-22 14:00:00")).await;
    assert_eq!(t["dueBy"], "2026-05-26 14:00:00", "{t}");
    // An operator's extra holiday on Monday 7 December: due Tuesday 8 December 16:00.
    let t = routed_ticket(&stack, mail("Beschwerde", "2026-12-04 15:00:00")).await;
    assert_eq!(t["dueBy"], "2026-12-08 15:00:00", "{t}");
    // No tag with an SLA: the default (16 business hours), first response per channel (email 8 h).
    let t = routed_ticket(&stack, mail("Frage", "2026-11-20 15:00:00")).await;
    assert_eq!(t["dueBy"], "2026-11-24 15:00:00", "{t}");
    assert_eq!(t["firstResponseDueBy"], "2026-11-23 15:00:00", "{t}");
    assert_eq!(t["tags"], json!([]));
    stack.shutdown().await;
}

#[tokio::test]
async fn agents_get_distinct_tickets_within_their_skills_in_queue_order() {
    let stack = routed_stack("queue").await;
    let gas = create_tag(
        &stack,
        json!({"name": "Gas", "assignment": ["assignByTicketProperty"],
               "detectionDetails": {"conditions": {"field": "ticket.subject", "operator": "startsWith", "value": "Gas"}}}),
    )
    .await;
    let power = create_tag(
        &stack,
        json!({"name": "Strom", "assignment": ["assignByTicketProperty"],
               "detectionDetails": {"conditions": {"field": "ticket.subject", "operator": "startsWith", "value": "Strom"}}}),
    )
    .await;
    let general = create_tag(
        &stack,
        json!({"name": "Allgemein", "properties": ["defaultSkill"]}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut gas_ids = HashSet::new();
    for i in 0..12 {
        let t = routed_ticket(
            &stack,
            mail(&format!("Gas {i}"), &format!("2026-11-2{} 10:00:00", i % 3)),
        )
        .await;
        assert_eq!(t["tags"][0]["id"], gas);
        gas_ids.insert(t["id"].as_i64().expect("id"));
    }
    let mut power_ids = HashSet::new();
    for i in 0..4 {
        let t = routed_ticket(&stack, mail(&format!("Strom {i}"), "2026-11-20 10:00:00")).await;
        assert_eq!(t["tags"][0]["id"], power);
        power_ids.insert(t["id"].as_i64().expect("id"));
    }
    let t = routed_ticket(&stack, mail("Sonstiges", "2026-11-20 10:00:00")).await;
    assert_eq!(t["tags"][0]["id"], general, "defaultSkill fallback");

    // Four gas agents ask at the same moment, again and again: every ticket goes to one of them.
    let mut gas_agents = Vec::new();
    for i in 0..4 {
        gas_agents.push(agent(&stack, &format!("gas{i}@test"), &[gas]).await);
    }
    let (_, power_token) = agent(&stack, "power@test", &[power]).await;
    let calls = gas_agents
        .iter()
        .flat_map(|(_, token)| std::iter::repeat_n(token.clone(), 5))
        .collect::<Vec<_>>();
    let handed: Vec<Option<i64>> = futures::stream::iter(calls)
        .map(|token| {
            let stack = &stack;
            async move { get_latest(stack, &token).await }
        })
        .buffer_unordered(20)
        .collect()
        .await;
    let got: Vec<i64> = handed.into_iter().flatten().collect();
    let distinct: HashSet<i64> = got.iter().copied().collect();
    assert_eq!(
        got.len(),
        distinct.len(),
        "a ticket went to two agents: {got:?}"
    );
    assert_eq!(distinct, gas_ids, "gas agents get exactly the gas tickets");

    // The power agent never gets a gas ticket.
    let mut power_got = HashSet::new();
    while let Some(id) = get_latest(&stack, &power_token).await {
        assert!(
            !gas_ids.contains(&id),
            "agent without the skill got ticket {id}"
        );
        power_got.insert(id);
        assert!(power_got.len() <= 4);
    }
    assert_eq!(power_got, power_ids);
    stack.shutdown().await;
}

#[tokio::test]
async fn ordering_modes_pings_follow_ups_and_closed_tickets() {
    let stack = routed_stack("order").await;
    let urgent = create_tag(
        &stack,
        json!({"name": "Störung", "priority": "urgent", "sla": 2,
               "detectionDetails": {"conditions": {"field": "ticket.subject", "operator": "contains", "value": "Störung"}}}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Oldest first by creation; the urgent one is newest but has the strictest SLA.
    let a = routed_ticket(&stack, mail("Frage A", "2026-11-16 10:00:00")).await["id"]
        .as_i64()
        .expect("a");
    let b = routed_ticket(&stack, mail("Frage B", "2026-11-17 10:00:00")).await["id"]
        .as_i64()
        .expect("b");
    let u = routed_ticket(&stack, mail("Störung C", "2026-11-18 10:00:00")).await;
    assert_eq!(u["tags"][0]["id"], urgent);
    let c = u["id"].as_i64().expect("c");
    let (agent_id, token) = agent(&stack, "order@test", &[urgent]).await;

    // slaDue: a is due Wed 11:00 (16 business hours), c Wed 13:00 (2 h SLA), b Thu 11:00.
    put_setting(&stack, "autopilotOrderingSequence", json!("slaDue")).await;
    put_setting(&stack, "queueHoldSeconds", json!(5)).await;
    let order: Vec<Option<i64>> = vec![
        get_latest(&stack, &token).await,
        get_latest(&stack, &token).await,
        get_latest(&stack, &token).await,
    ];
    // A handed-out ticket stays held: three calls hand out three tickets, earliest due first.
    assert_eq!(order, vec![Some(a), Some(c), Some(b)]);

    // priorityNewest once the holds lapsed: the urgent one, then the newest customer message.
    tokio::time::sleep(Duration::from_secs(6)).await;
    put_setting(&stack, "autopilotOrderingSequence", json!("priorityNewest")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(get_latest(&stack, &token).await, Some(c));
    assert_eq!(get_latest(&stack, &token).await, Some(b));
    assert_eq!(get_latest(&stack, &token).await, Some(a));

    // A ticket held by another agent's pings is not handed out; a closed ticket never.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (_, other) = agent(&stack, "other@test", &[]).await;
    let (status, p) = stack
        .get_json(&format!("/api/mind/ticket/{a}/ping"), &other)
        .await;
    assert_eq!(status, 200);
    assert_eq!(p["workedOnBy"].as_array().map(Vec::len), Some(1));
    // An agent closes b through the API; bad fields are named.
    let patch = |body: Value| {
        stack
            .http()
            .patch(stack.url(&format!("/api/mind/ticket/{b}")))
            .bearer_auth(&other)
            .json(&body)
            .send()
    };
    let r = patch(json!({"customerLegitimation": 20}))
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 400);
    let p: Value = r.json().await.expect("problem");
    assert_eq!(p["errors"][0]["field"], "customerLegitimation");
    assert_eq!(
        patch(json!({"colour": "red"}))
            .await
            .expect("PATCH")
            .status(),
        400
    );
    let r = patch(json!({"status": "closed", "additionalData": {"closedBy": "test"}}))
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 200);
    let closed: Value = r.json().await.expect("ticket");
    assert_eq!(closed["ticket"]["status"], "closed");
    assert!(closed["ticket"]["closedAt"].is_string());
    assert_eq!(closed["ticket"]["additionalData"]["closedBy"], "test");
    assert_eq!(get_latest(&stack, &token).await, Some(c));
    assert_eq!(
        get_latest(&stack, &token).await,
        None,
        "a is pinged by another agent, b is closed"
    );

    // The customer writes again on a (same externalTicketId): back to the agent who pinged it.
    sqlx::query("UPDATE tickets SET external_ticket_id = 'ext-a' WHERE id = $1")
        .bind(a)
        .execute(stack.store.pool())
        .await
        .expect("external id");
    let follow = json!({"channel": "email", "from": "kunde@example.org", "subject": "Re: Frage A",
                        "body": "Noch eine Frage.", "externalTicketId": "ext-a"});
    let r = stack.post_ticket(&follow).await;
    assert_eq!(r.status(), 200);
    let start = Instant::now();
    loop {
        let n = stack
            .count(&format!(
                "SELECT count(*) FROM stage_runs WHERE stage = 'router' AND ticket_id = {a}"
            ))
            .await;
        if n == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "follow-up not routed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, t) = stack
        .get_json(&format!("/api/mind/ticket/{a}"), &stack.admin_token)
        .await;
    let other_id = stack
        .count("SELECT id FROM users WHERE email = 'other@test'")
        .await;
    assert_eq!(
        t["agentId"], other_id,
        "follow-up goes back to the last agent: {t}"
    );
    assert_ne!(t["agentId"], agent_id);
    stack.shutdown().await;
}

#[tokio::test]
async fn overdue_tickets_emit_one_event_and_stats_count_them() {
    let stack = routed_stack("overdue").await;
    let mut events = stack
        .bus
        .client()
        .subscribe(stack.bus.subject("events.TicketDueByOverdue"))
        .await
        .expect("subscribe");
    let old = routed_ticket(&stack, mail("Alt", "2020-01-06 10:00:00")).await;
    let fresh = routed_ticket(&stack, mail("Neu", "2099-01-05 10:00:00")).await;
    let msg = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("TicketDueByOverdue within 10 s")
        .expect("event");
    let ev: Value = serde_json::from_slice(&msg.payload).expect("JSON");
    assert_eq!(ev["ticketId"], old["id"]);
    // Once per due time.
    assert!(tokio::time::timeout(Duration::from_secs(3), events.next())
        .await
        .is_err());

    let (status, s) = stack
        .get_json("/api/mind/ticket/stats?fresh=true", &stack.agent_token)
        .await;
    assert_eq!(status, 200);
    let s = &s["stats"];
    assert_eq!(s["total"], 2);
    assert_eq!(s["overdue"], 1);
    assert_eq!(s["byStatus"]["open"], 2);
    assert_eq!(s["byChannel"]["email"], 2);
    assert_eq!(s["byAiSupportLevel"]["human"], 2);
    assert_eq!(s["byAgent"]["unassigned"], 2);
    let _ = fresh;
    // The snapshot catches up within STATS_REFRESH_SECS.
    let start = Instant::now();
    loop {
        let (_, snap) = stack
            .get_json("/api/mind/ticket/stats", &stack.agent_token)
            .await;
        if snap["stats"]["total"] == 2 && snap["stats"]["overdue"] == 1 {
            assert!(snap["stats"]["asOf"].is_string());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "snapshot stale: {snap}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, q) = stack
        .get_json("/api/mind/agents/queue", &stack.agent_token)
        .await;
    assert_eq!(status, 200);
    assert!(q["agentQueue"]["chat"].is_number(), "{q}");
    stack.shutdown().await;
}

#[tokio::test]
async fn backlog_restrictions_limit_what_an_agent_is_offered() {
    let stack = routed_stack("backlog").await;
    let vip = create_tag(
        &stack,
        json!({"name": "VIP", "detectionDetails": {"conditions": {"field": "ticket.subject", "operator": "contains", "value": "VIP"}}}),
    )
    .await;
    let complaint = create_tag(
        &stack,
        json!({"name": "Beschwerde", "detectionDetails": {"conditions": {"field": "ticket.subject", "operator": "contains", "value": "Beschwerde"}}}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let vip_complaint = routed_ticket(&stack, mail("VIP Beschwerde", "2026-11-16 10:00:00")).await
        ["id"]
        .as_i64()
        .expect("id");
    let complaint_only = routed_ticket(&stack, mail("Beschwerde", "2026-11-17 10:00:00")).await
        ["id"]
        .as_i64()
        .expect("id");

    // Skilled for both, but VIP tickets are excluded from this agent's backlog.
    let (id, token) = agent(&stack, "novice@test", &[vip, complaint]).await;
    let r = stack
        .http()
        .patch(stack.url(&format!("/api/mind/user/{id}")))
        .bearer_auth(&stack.admin_token)
        .json(&json!({"excludedTagIds": [vip]}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 200);
    assert_eq!(get_latest(&stack, &token).await, Some(complaint_only));
    assert_eq!(get_latest(&stack, &token).await, None);

    // A VIP team: members only see tickets that carry the VIP tag.
    let (status, team) = post(
        &stack,
        "/api/mind/team",
        &stack.admin_token,
        &json!({"name": "VIP-Team", "skills": [vip, complaint], "requiredTagIds": [vip]}),
    )
    .await;
    assert_eq!(status, 200, "{team}");
    let (vip_agent, vip_token) = agent(&stack, "vip@test", &[]).await;
    let r = stack
        .http()
        .patch(stack.url(&format!("/api/mind/user/{vip_agent}")))
        .bearer_auth(&stack.admin_token)
        .json(&json!({"teamIds": [team["id"]]}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 200);
    assert_eq!(get_latest(&stack, &vip_token).await, Some(vip_complaint));
    assert_eq!(get_latest(&stack, &vip_token).await, None);

    // Agents may set their own status, not their skills.
    let r = stack
        .http()
        .patch(stack.url(&format!("/api/mind/user/{id}")))
        .bearer_auth(&token)
        .json(&json!({"status": "absent"}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 200);
    let r = stack
        .http()
        .patch(stack.url(&format!("/api/mind/user/{id}")))
        .bearer_auth(&token)
        .json(&json!({"skills": []}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 403);
    stack.shutdown().await;
}

#[tokio::test]
async fn settings_views_and_nested_tag_keys() {
    let mut stack = Stack::new("settings").await;
    stack.start("api").await;
    let tag = create_tag(&stack, json!({"name": "Umzug", "sla": 8})).await;
    put_setting(&stack, "erpApiToken", json!("s3cret")).await;

    let (_, c) = stack
        .get_json("/api/mind/settings/compact", &stack.agent_token)
        .await;
    assert_eq!(c["settings"]["erpApiToken"], Value::Null);
    assert_eq!(c["settings"]["defaultSlaHours"], 16);
    let (status, _) = stack
        .get_json(
            "/api/mind/settings/compact?showSecrets=true",
            &stack.agent_token,
        )
        .await;
    assert_eq!(status, 403, "agents may not ask for secrets");
    let (_, c) = stack
        .get_json(
            "/api/mind/settings/compact?showSecrets=true&filterByName=erpApiToken",
            &stack.admin_token,
        )
        .await;
    assert_eq!(c["settings"], json!({"erpApiToken": "s3cret"}));

    let (_, g) = stack
        .get_json("/api/mind/settings/category/routing", &stack.agent_token)
        .await;
    assert_eq!(g["groups"][0]["name"], "routing");
    let names: Vec<&str> = g["groups"][0]["settings"]
        .as_array()
        .expect("settings")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"businessHours") && !names.contains(&"erpApiToken"),
        "{names:?}"
    );
    let (status, _) = stack
        .get_json("/api/mind/settings/category/nope", &stack.agent_token)
        .await;
    assert_eq!(status, 404);
    let (_, found) = stack
        .get_json("/api/mind/settings/search?q=holidays", &stack.agent_token)
        .await;
    assert_eq!(found["settings"][0]["name"], "businessHours");

    // The reference product's nested keys update a tag's property.
    let (status, r) = post(
        &stack,
        "/api/mind/settings",
        &stack.admin_token,
        &json!({format!("_tag[{tag}].sla"): 4, "defaultSlaHours": 24}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let (_, t) = stack
        .get_json(&format!("/api/mind/tag/{tag}"), &stack.agent_token)
        .await;
    assert_eq!(t["sla"], 4.0);
    assert_eq!(t["name"], "Umzug");
    let key = format!("_tag[{tag}].priority");
    let (status, p) = post(
        &stack,
        "/api/mind/settings",
        &stack.admin_token,
        &json!({key.clone(): "extreme"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(p["errors"][0]["field"], key);
    let (status, _) = post(
        &stack,
        "/api/mind/settings",
        &stack.admin_token,
        &json!({"_user[1].x": 1}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(
        &stack,
        "/api/mind/settings",
        &stack.agent_token,
        &json!({format!("_tag[{tag}].sla"): 2}),
    )
    .await;
    assert_eq!(status, 403);
    // Subchannels: secrets are stored apart and never returned, nor written to the audit log.
    let mailbox = json!({"channel": "email", "name": "Kundenservice", "isDefault": true,
                         "data": {"host": "imap.example.org", "port": 993, "user": "service", "password": "pa55-w0rd!"}});
    let (status, _) = post(
        &stack,
        "/api/mind/settings/subchannel",
        &stack.agent_token,
        &mailbox,
    )
    .await;
    assert_eq!(status, 403);
    let (status, created) = post(
        &stack,
        "/api/mind/settings/subchannel",
        &stack.admin_token,
        &mailbox,
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let (_, list) = stack
        .get_json(
            "/api/mind/settings/subchannel?channels=email",
            &stack.admin_token,
        )
        .await;
    let sub = &list["subchannels"][0];
    assert_eq!(sub["id"], created["id"]);
    assert_eq!(sub["data"]["host"], "imap.example.org");
    assert!(sub["data"].get("password").is_none(), "{sub}");
    assert_eq!(sub["secretsSet"], json!(["password"]));
    assert!(!list.to_string().contains("pa55-w0rd!"));
    let audit: String = sqlx::query_scalar("SELECT string_agg(changes::text, ' ') FROM audit_log")
        .fetch_one(stack.store.pool())
        .await
        .expect("audit");
    assert!(!audit.contains("pa55-w0rd!"));
    let (_, none) = stack
        .get_json(
            "/api/mind/settings/subchannel?channels=chat",
            &stack.admin_token,
        )
        .await;
    assert_eq!(none["subchannels"], json!([]));
    let r = stack
        .http()
        .delete(stack.url(&format!("/api/mind/settings/subchannel/{}", created["id"])))
        .bearer_auth(&stack.admin_token)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 200);
    let logs = std::fs::read_to_string(stack.log_dir().join("api.log")).unwrap_or_default();
    assert!(!logs.contains("pa55-w0rd!"), "a secret in the log");
    stack.shutdown().await;
}
