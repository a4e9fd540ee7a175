//! The API as a client sees it, through the real API process on real Postgres and NATS: every
//! route's authentication and the agent role's limits, read from the served OpenAPI document;
//! erasing a customer, retention of closed tickets, API tokens, and connecting an M365 mailbox by
//! OAuth against a local OAuth server (single-use state, PKCE).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, State};
use axum::routing::post;
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{send_as as send, Stack};

async fn ticket(stack: &Stack, mail: &Value) -> i64 {
    let r = stack.post_ticket(mail).await;
    assert!(r.status().is_success(), "{}", r.status());
    let t: Value = r.json().await.expect("ticket");
    let id = t["id"].as_i64().expect("ticket id");
    stack.wait_done(id, Duration::from_secs(60)).await;
    id
}

#[tokio::test]
async fn erasing_a_customer_removes_their_data_and_keeps_the_fact() {
    let mut stack = Stack::new("erase").await;
    for s in ["api", "ingest", "ai", "router"] {
        stack.start(s).await;
    }
    let admin = stack.admin_token.clone();
    let agent = stack.agent_token.clone();
    let customers: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/local/erp/customers.json"
        ))
        .expect("customers.json"),
    )
    .expect("customers JSON");
    let (status, v) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/customer/import",
        Some(&admin),
        Some(&customers),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    // Tom writes twice; someone else once.
    let tom = json!({"channel": "email", "from": "tom@mustermann.de", "fromName": "Tom Mustermann",
        "subject": "Neue Bankverbindung", "body": "Bitte buchen Sie ab sofort von DE89370400440532013000 ab. Tom Mustermann, Hugo-Junkers-Str. 5"});
    let t1 = ticket(&stack, &tom).await;
    let t2 = ticket(
        &stack,
        &json!({"channel": "email", "from": "Tom@Mustermann.de", "subject": "Zählerstand",
        "body": "Mein Zählerstand: 1ESY1160669167, 4711 kWh"}),
    )
    .await;
    let other = ticket(&stack, &support::mail(1)).await;

    let (status, _) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/customer/83771/erase",
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(status, 403, "an agent may not erase");
    let (status, _) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/customer/83771/erase",
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, v) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/customer/999999/erase",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 404, "{v}");

    let (status, v) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/customer/83771/erase",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["erased"]["tickets"], 2, "{v}");
    assert!(v["erased"]["messages"].as_i64().unwrap_or(0) >= 2, "{v}");

    for id in [t1, t2] {
        let (status, t) = stack
            .get_json(&format!("/api/mind/ticket/{id}"), &admin)
            .await;
        assert_eq!(status, 200);
        let text = t.to_string();
        for personal in ["mustermann", "DE8937", "Hugo-Junkers", "4711"] {
            assert!(
                !text.to_lowercase().contains(&personal.to_lowercase()),
                "ticket {id} still holds {personal}: {text}"
            );
        }
        let (_, conv) = stack
            .get_json(&format!("/api/mind/ticket/{id}/conversation"), &admin)
            .await;
        assert!(
            !conv.to_string().to_lowercase().contains("mustermann"),
            "{conv}"
        );
    }
    let leftovers = stack
        .count(
            "SELECT count(*) FROM messages WHERE body_plain ILIKE '%DE89370400440532013000%'
                OR from_addr ILIKE '%mustermann%'",
        )
        .await;
    assert_eq!(leftovers, 0);
    let intents_with_data = stack
        .count(&format!(
            "SELECT count(*) FROM intents WHERE ticket_id IN ({t1}, {t2}) AND data <> '{{}}'"
        ))
        .await;
    assert_eq!(intents_with_data, 0);
    let contract = stack
        .count("SELECT count(*) FROM contracts WHERE customer_id = 83771 AND iban IS NULL AND email IS NULL AND counter_number IS NULL")
        .await;
    assert_eq!(contract, 1);
    let customer = stack
        .count("SELECT count(*) FROM customers WHERE id = 83771 AND lastname IS NULL AND email IS NULL AND erased_at IS NOT NULL")
        .await;
    assert_eq!(customer, 1);
    // The fact stays, without the data.
    let audit = stack
        .count("SELECT count(*) FROM audit_log WHERE entity = 'customer' AND entity_id = '83771' AND action = 'erased' AND changes::text NOT ILIKE '%mustermann%'")
        .await;
    assert_eq!(audit, 1);
    // Another customer's ticket is untouched.
    let (_, o) = stack
        .get_json(&format!("/api/mind/ticket/{other}"), &admin)
        .await;
    assert!(o.to_string().contains("kunde1@example.org"), "{o}");
    // Repeating is harmless.
    let (status, _) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/customer/83771/erase",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200);
    stack.shutdown().await;
}

#[tokio::test]
async fn closed_tickets_are_deleted_after_the_retention_period() {
    let mut stack = Stack::new("retention").await;
    stack
        .extra_env
        .insert("RETENTION_SCAN_SECS".into(), "1".into());
    for s in ["api", "ingest"] {
        stack.start(s).await;
    }
    let admin = stack.admin_token.clone();
    let old = ticket(&stack, &support::mail(1)).await;
    let recent = ticket(&stack, &support::mail(2)).await;
    let open = ticket(&stack, &support::mail(3)).await;
    for id in [old, recent] {
        let (status, v) = send(
            &stack,
            reqwest::Method::PATCH,
            &format!("/api/mind/ticket/{id}"),
            Some(&admin),
            Some(&json!({"status": "closed"})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
    }
    stack
        .count(&format!(
            "WITH u AS (UPDATE tickets SET closed_at = now() - interval '40 days' WHERE id IN ({old}, {open}) RETURNING 1) SELECT count(*) FROM u"
        ))
        .await;
    let (status, v) = send(
        &stack,
        reqwest::Method::PUT,
        "/api/mind/settings/retentionDaysClosedTickets",
        Some(&admin),
        Some(&json!(30)),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = stack
            .get_json(&format!("/api/mind/ticket/{old}"), &admin)
            .await;
        if status == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old closed ticket was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM messages WHERE ticket_id = {old}"
            ))
            .await,
        0
    );
    for id in [recent, open] {
        let (status, _) = stack
            .get_json(&format!("/api/mind/ticket/{id}"), &admin)
            .await;
        assert_eq!(status, 200, "ticket {id} must stay");
    }
    stack.shutdown().await;
}

/// `switchyard all` starts the workers before the API; the hooks worker's service user must not
/// stop the first start from creating the operator's admin (it once did: no token file).
#[tokio::test]
async fn the_local_admin_is_created_even_when_the_service_user_came_first() {
    use switchyard_store::auth;
    let stack = Stack::new("firstadmin").await;
    let mut tx = stack.store.begin().await.expect("tx");
    for sql in ["DELETE FROM api_tokens", "DELETE FROM users"] {
        sqlx::query(sql).execute(&mut *tx).await.expect(sql);
    }
    let service = auth::create_user(
        &mut tx,
        auth::SERVICE_USER_EMAIL,
        switchyard_domain::Role::Admin,
        "Switchyard",
        "Service",
    )
    .await
    .expect("service user");
    auth::create_token(&mut tx, service, "hooks@1")
        .await
        .expect("service token");
    let token = auth::ensure_admin(&mut tx)
        .await
        .expect("ensure_admin")
        .expect("a first start creates the local admin");
    let user = auth::authenticate(&mut tx, &token)
        .await
        .expect("authenticate")
        .expect("the admin token is valid");
    assert_eq!(user.email, "admin@localhost");
    assert!(
        auth::ensure_admin(&mut tx)
            .await
            .expect("ensure_admin")
            .is_none(),
        "a second start creates no second admin"
    );
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn api_tokens_are_listed_without_secrets_and_revocable() {
    let mut stack = Stack::new("tokens").await;
    stack.start("api").await;
    let agent = stack.agent_token.clone();
    let (status, v) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/auth/token",
        Some(&agent),
        Some(&json!({"name": "my script"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let token = v["token"].as_str().expect("token").to_owned();
    let id = v["id"].as_i64().expect("id");
    let (status, list) = send(
        &stack,
        reqwest::Method::GET,
        "/api/mind/auth/token",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "the new token works");
    assert!(list["tokens"]
        .as_array()
        .is_some_and(|l| l.iter().any(|t| t["id"] == id && t["name"] == "my script")));
    assert!(!list.to_string().contains(&token), "never the token itself");
    // An agent cannot create tokens for others nor list theirs.
    let (status, _) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/auth/token",
        Some(&agent),
        Some(&json!({"name": "x", "userId": 1})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(
        &stack,
        reqwest::Method::GET,
        "/api/mind/auth/token?userId=1",
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, v) = send(
        &stack,
        reqwest::Method::GET,
        "/api/mind/auth/token?userId=abc",
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["errors"][0]["field"], "userId", "{v}");

    let (status, _) = send(
        &stack,
        reqwest::Method::DELETE,
        &format!("/api/mind/auth/token/{id}"),
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &stack,
        reqwest::Method::GET,
        "/api/mind/auth/token",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 401, "a revoked token stops working");
    stack.shutdown().await;
}

/// What the local OAuth server saw and answers.
#[derive(Default)]
struct OAuthServer {
    token_requests: Vec<Vec<(String, String)>>,
}

async fn token_endpoint(
    State(seen): State<Arc<Mutex<OAuthServer>>>,
    Path(tenant): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> (axum::http::StatusCode, Json<Value>) {
    assert_eq!(tenant, "contoso.example");
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let ok = get("grant_type") == "authorization_code"
        && get("code") == "the-code"
        && get("client_id") == "client-1"
        && get("client_secret") == "s3cret";
    seen.lock().expect("lock").token_requests.push(form);
    if !ok {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        );
    }
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"preferred_username":"service@contoso.example"}"#);
    (
        axum::http::StatusCode::OK,
        Json(
            json!({"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600,
            "token_type": "Bearer", "id_token": format!("e30.{claims}.c2ln")}),
        ),
    )
}

#[tokio::test]
async fn an_m365_mailbox_is_connected_by_oauth_with_a_single_use_state() {
    let seen = Arc::new(Mutex::new(OAuthServer::default()));
    let app = axum::Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_endpoint))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let authority = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut stack = Stack::new("oauth").await;
    stack.start("api").await;
    let admin = stack.admin_token.clone();
    let public_base = stack.url("");
    for (name, value) in [
        ("microsoftClientId", json!("client-1")),
        ("microsoftClientSecret", json!("s3cret")),
        ("microsoftTenant", json!("contoso.example")),
        ("microsoftAuthorityUrl", json!(authority)),
        ("publicBaseUrl", json!(public_base)),
    ] {
        let (status, v) = send(
            &stack,
            reqwest::Method::PUT,
            &format!("/api/mind/settings/{name}"),
            Some(&admin),
            Some(&value),
        )
        .await;
        assert_eq!(status, 200, "{name}: {v}");
    }
    let (status, v) = send(
        &stack,
        reqwest::Method::POST,
        "/api/mind/settings/subchannel",
        Some(&admin),
        Some(&json!({"channel": "email", "name": "M365 Kundenservice", "data": {"imapHost": "outlook.office365.com"}})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let subchannel = v["id"].as_i64().expect("id");

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let authorize = |token: Option<String>| {
        let mut r = no_redirects.get(stack.url(&format!(
            "/api/mind/settings/mailbox/microsoft/authorization?subchannelId={subchannel}"
        )));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(authorize(None).await.expect("GET").status(), 401);
    assert_eq!(
        authorize(Some(stack.agent_token.clone()))
            .await
            .expect("GET")
            .status(),
        403
    );
    let r = authorize(Some(admin.clone())).await.expect("GET");
    assert_eq!(r.status(), 302);
    let location = reqwest::Url::parse(
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("Location"),
    )
    .expect("URL");
    assert_eq!(
        location.as_str().split('?').next(),
        Some(format!("{authority}/contoso.example/oauth2/v2.0/authorize").as_str())
    );
    let q: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "client-1");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].contains("IMAP.AccessAsUser.All"), "{q:?}");
    let callback = format!("{public_base}/api/mind/settings/mailbox/microsoft/callback");
    assert_eq!(q["redirect_uri"], callback);
    let state = q["state"].clone();

    // A forged state is refused and calls nobody.
    let (status, _) = send(
        &stack,
        reqwest::Method::GET,
        "/api/mind/settings/mailbox/microsoft/callback?code=the-code&state=forged",
        None,
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, v) = send(
        &stack,
        reqwest::Method::GET,
        "/api/mind/settings/mailbox/microsoft/callback?code=the-code",
        None,
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["errors"][0]["field"], "state", "{v}");
    assert!(seen.lock().expect("lock").token_requests.is_empty());

    // The browser comes back: no credentials but the state.
    let (status, v) = send(
        &stack,
        reqwest::Method::GET,
        &format!("/api/mind/settings/mailbox/microsoft/callback?code=the-code&state={state}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["subchannelId"], subchannel);
    assert_eq!(v["account"], "service@contoso.example");
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.token_requests.len(), 1);
        let form = &seen.token_requests[0];
        let get = |k: &str| {
            form.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        // PKCE: the verifier sent now matches the challenge of the redirect.
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(get("code_verifier").as_bytes()));
        assert_eq!(challenge, q["code_challenge"]);
        assert_eq!(get("redirect_uri"), callback);
    }
    let (_, list) = stack
        .get_json(
            &format!("/api/mind/settings/subchannel?id={subchannel}"),
            &admin,
        )
        .await;
    let sc = &list["subchannels"][0];
    assert_eq!(sc["data"]["authType"], "oauth2", "{sc}");
    assert_eq!(sc["data"]["oauthAccount"], "service@contoso.example");
    let secrets = sc["secretsSet"].to_string();
    assert!(
        secrets.contains("oauthAccessToken") && secrets.contains("oauthRefreshToken"),
        "{sc}"
    );
    assert!(
        !list.to_string().contains("at-1"),
        "tokens are never returned"
    );

    // The state was used: a replay is refused.
    let (status, _) = send(
        &stack,
        reqwest::Method::GET,
        &format!("/api/mind/settings/mailbox/microsoft/callback?code=the-code&state={state}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(seen.lock().expect("lock").token_requests.len(), 1);
    stack.shutdown().await;
}

/// Every operation of the served document with its path parameters filled in.
async fn operations(stack: &Stack) -> Vec<(reqwest::Method, String, bool)> {
    let (status, doc) = stack
        .get_json("/api/mind/docs/open-api", &stack.admin_token)
        .await;
    assert_eq!(status, 200);
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Ok(m) = method.to_uppercase().parse::<reqwest::Method>() else {
                continue;
            };
            // `security: [{}]` marks a public operation.
            let public = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .all(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            let concrete = regex_lite_fill(path);
            ops.push((m, concrete, public));
        }
    }
    assert!(ops.len() > 50, "{} operations", ops.len());
    ops
}

/// `/ticket/{ticketId}` → `/ticket/1`, `/settings/{name}` → `/settings/defaultSlaHours`.
fn regex_lite_fill(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .unwrap_or(rest.len() - 1);
        let name = &rest[start + 1..end];
        out.push_str(match name {
            "name" => "defaultSlaHours",
            "category" => "routing",
            _ => "1",
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn every_route_but_login_and_health_needs_authentication_and_agents_cannot_configure() {
    let mut stack = Stack::new("routes").await;
    stack.start("api").await;
    let http = stack.http();
    let ops = operations(&stack).await;
    let public: Vec<String> = ops
        .iter()
        .filter(|(_, _, p)| *p)
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    // Login, the chat webhook (signed per subchannel) and the OAuth callback (its state).
    assert_eq!(public.len(), 3, "public operations: {public:?}");
    for (method, path, is_public) in &ops {
        if *is_public {
            continue;
        }
        let r = http
            .request(method.clone(), stack.url(path))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401, "anonymous {method} {path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(
        http.get(stack.url("/api/mind/health"))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );

    // What configures the system: settings, subchannels, AI agents, hooks, UDFs, users, teams,
    // tags, dead letters, erasure. An agent's token is refused before anything is read.
    let configuring = [
        "/api/mind/settings",
        "/api/mind/aiAgent",
        "/api/mind/tag",
        "/api/mind/team",
        "/api/mind/dlq",
        "/api/mind/customer/1/erase",
        "/api/mind/customer/import",
        "/api/mind/aiQualityCheck",
    ];
    let (mut checked, mut forbidden) = (0, 0);
    for (method, path, is_public) in &ops {
        if *is_public
            || *method == reqwest::Method::GET
            || !configuring.iter().any(|c| path.starts_with(c))
        {
            continue;
        }
        let r = http
            .request(method.clone(), stack.url(path))
            .bearer_auth(&stack.agent_token)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("request");
        // Refused either way: for permission, or (bodies with required fields) for `{}` first.
        let status = r.status().as_u16();
        assert!(
            status == 403 || status == 400,
            "agent {method} {path}: {status}"
        );
        forbidden += usize::from(status == 403);
        checked += 1;
    }
    assert!(checked >= 20, "{checked} configuring operations");
    assert!(
        forbidden * 2 >= checked,
        "{forbidden} of {checked} answered 403"
    );
    // With valid bodies, what an agent must not change answers 403 and stays unchanged.
    let agent_body = json!({"name": "Agentenwerk", "slug": "agent_made", "description": "x",
        "settings": {"detectionDetails": {"examples": ["a", "b"]}}});
    let hook_body = json!({"name": "h", "events": ["TicketCreated"],
        "executor": {"type": "webhook", "url": "http://127.0.0.1:9/h", "secret": "s"}});
    for (method, path, body) in [
        (reqwest::Method::POST, "/api/mind/aiAgent", agent_body),
        (
            reqwest::Method::POST,
            "/api/mind/settings/event-hook",
            hook_body,
        ),
        (
            reqwest::Method::PUT,
            "/api/mind/settings/defaultSlaHours",
            json!(8),
        ),
        (
            reqwest::Method::POST,
            "/api/mind/settings",
            json!({"erpApiToken": "s3cret"}),
        ),
    ] {
        let r = http
            .request(method.clone(), stack.url(path))
            .bearer_auth(&stack.agent_token)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 403, "agent {method} {path} with a valid body");
    }
    assert_eq!(
        stack
            .count("SELECT count(*) FROM ai_agents WHERE slug = 'agent_made'")
            .await,
        0
    );
    // Secrets: agents cannot ask for them.
    let (status, _) = stack
        .get_json("/api/mind/settings?showSecrets=true", &stack.agent_token)
        .await;
    assert_eq!(status, 403);
    stack.shutdown().await;
}

/// A schema of the document with `$ref`s resolved against its components.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => r
            .strip_prefix("#/components/schemas/")
            .map(|name| resolve(doc, &doc["components"]["schemas"][name]))
            .unwrap_or(&Value::Null),
        None => schema,
    }
}

/// A value for `schema` with `evil` in every string it can hold (enums, formats and patterns
/// ignored on purpose: the server must refuse those with a 4xx, not pass them to SQL).
fn fill(doc: &Value, schema: &Value, evil: &str, depth: usize) -> Value {
    let schema = resolve(doc, schema);
    if depth > 4 {
        return Value::Null;
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = schema[key].as_array().and_then(|a| a.first()) {
            return fill(doc, first, evil, depth + 1);
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"object") || schema["properties"].is_object() {
        let mut out = serde_json::Map::new();
        if let Some(props) = schema["properties"].as_object() {
            for (k, s) in props {
                out.insert(k.clone(), fill(doc, s, evil, depth + 1));
            }
        }
        Value::Object(out)
    } else if types.contains(&"array") {
        json!([fill(doc, &schema["items"], evil, depth + 1)])
    } else if types.contains(&"string") {
        json!(evil)
    } else if types.contains(&"integer") || types.contains(&"number") {
        json!(1)
    } else if types.contains(&"boolean") {
        json!(true)
    } else {
        json!(evil)
    }
}

#[tokio::test]
async fn sql_injection_strings_in_every_filter_come_back_as_data_or_a_4xx() {
    let mut stack = Stack::new("inject").await;
    stack.start("api").await;
    stack.start("ingest").await;
    let admin = stack.admin_token.clone();
    let customers: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/local/erp/customers.json"
        ))
        .expect("customers.json"),
    )
    .expect("customers JSON");
    for (path, body) in [
        ("/api/mind/customer/import", Some(&customers)),
        ("/api/mind/aiAgents/loadDefaults", None),
    ] {
        let (s, v) = send(&stack, reqwest::Method::POST, path, Some(&admin), body).await;
        assert_eq!(s, 200, "{path}: {v}");
    }
    let tables = [
        "tickets",
        "customers",
        "contracts",
        "settings",
        "users",
        "ai_agents",
    ];
    let mut before = Vec::new();
    for t in tables {
        before.push(stack.count(&format!("SELECT count(*) FROM {t}")).await);
    }
    let (_, doc) = stack.get_json("/api/mind/docs/open-api", &admin).await;
    let evils = [
        "x' OR '1'='1",
        "1; DROP TABLE tickets; --",
        "\") OR 1=1 --",
        "%' UNION SELECT token_hash FROM api_tokens --",
    ];
    let (mut gets, mut searches) = (0, 0);
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let concrete = regex_lite_fill(path);
        // Every query parameter of every read.
        if let Some(params) = item["get"]["parameters"].as_array() {
            let names: Vec<&str> = params
                .iter()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            if !names.is_empty() {
                for evil in evils {
                    let mut url = reqwest::Url::parse(&stack.url(&concrete)).expect("url");
                    for n in &names {
                        url.query_pairs_mut().append_pair(n, evil);
                    }
                    let r = stack
                        .http()
                        .get(url.clone())
                        .bearer_auth(&admin)
                        .send()
                        .await
                        .expect("GET");
                    let s = r.status().as_u16();
                    assert!(s < 500, "GET {url}: {s}");
                    gets += 1;
                }
            }
        }
        // Every search body, every string in it.
        if path.contains("search") {
            if let Some(schema) =
                item["post"]["requestBody"]["content"]["application/json"]["schema"].as_object()
            {
                let schema = Value::Object(schema.clone());
                for evil in evils {
                    let body = fill(&doc, &schema, evil, 0);
                    let (s, v) = send(
                        &stack,
                        reqwest::Method::POST,
                        &concrete,
                        Some(&admin),
                        Some(&body),
                    )
                    .await;
                    assert!(s < 500, "POST {concrete} {body}: {s} {v}");
                    if s >= 400 {
                        assert!(v["title"].is_string(), "POST {concrete}: problem+json: {v}");
                    }
                    searches += 1;
                }
            }
        }
    }
    assert!(gets >= 40, "{gets} GETs with query parameters");
    assert!(searches >= 8, "{searches} search bodies");
    // As data: a ticket whose sender is such a string is found by it, and only it.
    let evil = evils[0];
    let r = stack
        .post_ticket(&json!({"channel": "email", "from": "quote@example.org",
            "subject": format!("Frage {evil}"), "body": "b"}))
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, v) = send(
            &stack,
            reqwest::Method::POST,
            "/api/mind/ticket/search",
            Some(&admin),
            Some(&json!({"q": evil})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        if v["total"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the ticket was never found: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut after = Vec::new();
    for t in tables {
        after.push(stack.count(&format!("SELECT count(*) FROM {t}")).await);
    }
    before[0] += 1;
    assert_eq!(before, after, "{tables:?}");
    stack.shutdown().await;
}
