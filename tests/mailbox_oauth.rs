//! A mailbox connected by OAuth, end to end on real servers: a private Dovecot that accepts only
//! SASL XOAUTH2 (its `oauth2` passdb asks a local OAuth server's introspection endpoint), the
//! real `switchyard connectors`, `ingest`, `api` and `outbound` processes, and the aiosmtpd sink
//! requiring AUTH XOAUTH2 against the same OAuth server. The OAuth server's refresh tokens are
//! single-use and rotate, as Microsoft's do.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::oauth::{imap_session, OAuthDovecot, OAuthServer, CLIENT_ID, CLIENT_SECRET, TENANT};
use support::{SmtpSink, Stack};
use switchyard_store::oauth::{self, Tokens};

const ACCOUNT: &str = "service@contoso.example";

/// The Microsoft settings pointing at the local OAuth server, written straight to the store.
async fn microsoft_settings(stack: &Stack, server: &OAuthServer) {
    let mut tx = stack.store.begin().await.expect("tx");
    for (name, value) in [
        ("microsoftClientId", json!(CLIENT_ID)),
        ("microsoftClientSecret", json!(CLIENT_SECRET)),
        ("microsoftTenant", json!(TENANT)),
        ("microsoftAuthorityUrl", json!(server.authority)),
    ] {
        switchyard_store::settings::set(&mut tx, name, &value, "test")
            .await
            .expect("setting");
    }
    tx.commit().await.expect("commit");
}

/// An e-mail subchannel on the OAuth Dovecot's INBOX, its replies through the SMTP sink, then
/// connected by OAuth as the API's callback does, with the given tokens.
async fn oauth_mailbox(
    stack: &Stack,
    imap: Option<&OAuthDovecot>,
    smtp_port: u16,
    tokens: Tokens,
) -> i64 {
    let mut data = json!({"email": ACCOUNT, "smtpHost": "127.0.0.1", "smtpPort": smtp_port,
        "smtpTls": "none", "pollIntervalSecs": 1});
    if let Some(d) = imap {
        data["host"] = json!(d.host);
        data["port"] = json!(d.port);
        data["tls"] = json!(false);
    }
    let input: switchyard_store::subchannels::SubchannelInput =
        serde_json::from_value(json!({"channel": "email", "name": "M365", "data": data}))
            .expect("subchannel input");
    let mut tx = stack.store.begin().await.expect("tx");
    let id = switchyard_store::subchannels::create(&mut tx, &input, "test")
        .await
        .expect("subchannel");
    oauth::store_tokens(&mut tx, id, "microsoft", &tokens, "user:1")
        .await
        .expect("tokens");
    tx.commit().await.expect("commit");
    id
}

async fn stored(stack: &Stack, id: i64) -> oauth::Stored {
    let mut conn = stack.store.pool().acquire().await.expect("conn");
    oauth::tokens(&mut conn, id)
        .await
        .expect("query")
        .expect("subchannel")
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ticket_of(stack: &Stack, message_id: &str) -> i64 {
    let start = Instant::now();
    loop {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT ticket_id FROM messages WHERE mail_message_id = $1")
                .bind(message_id)
                .fetch_optional(stack.store.pool())
                .await
                .expect("query");
        if let Some(t) = found {
            return t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "mail {message_id} was not ingested; logs in {}",
            stack.log_dir().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ticket's outbound messages: (send_status, send_error), oldest first.
async fn outs(stack: &Stack, ticket: i64) -> Vec<(String, Option<String>)> {
    sqlx::query_as(
        "SELECT send_status, send_error FROM messages
          WHERE ticket_id = $1 AND direction = 'out' ORDER BY id",
    )
    .bind(ticket)
    .fetch_all(stack.store.pool())
    .await
    .expect("outbound rows")
}

fn mail(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Sarah Miller <sarah.miller@example.com>\r\nTo: {ACCOUNT}\r\nSubject: {subject}\r\n\
         Message-ID: <{id}>\r\nDate: {}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nMein Zählerstand ist 4711.\r\n",
        chrono::Utc::now().to_rfc2822()
    )
    .into_bytes()
}

/// The mailbox's access token expired before the connector first starts: it is refreshed (the
/// rotated refresh token stored too) before the IMAP login, the mail is ingested, and a
/// person's reply goes out through SMTP with the same kind of token. Then every token is
/// revoked: the connector's login is refused, its refresh is refused, and the subchannel says so
/// (`data.oauthError`) instead of the connector retrying; outbound refuses to send through it.
/// No token reaches a log.
#[tokio::test]
async fn an_expired_token_is_refreshed_mail_is_ingested_and_replies_go_out_by_xoauth2() {
    let server = OAuthServer::start().await;
    let dovecot = OAuthDovecot::start(&server.introspect_url()).await;
    let mut sink = SmtpSink::new(
        &std::env::temp_dir(),
        &format!("oauth-sink-{}", uuid::Uuid::new_v4().simple()),
        &[],
    )
    .with_xoauth2(&server.introspect_url());
    sink.start().await;

    // The test's own mail client: a token of its own, and XOAUTH2 is all Dovecot accepts.
    let (client_token, _) = server.issue(ACCOUNT, 3600);
    let mut imap = imap_session(&dovecot.addr(), ACCOUNT, &client_token)
        .await
        .unwrap_or_else(|e| panic!("XOAUTH2 login of the test client: {e}\n{}", dovecot.log()));
    assert!(
        imap_session(&dovecot.addr(), ACCOUNT, "not-a-token")
            .await
            .is_err(),
        "Dovecot refuses an unknown token"
    );

    let mut stack = Stack::new("mailbox_oauth").await;
    stack
        .extra_env
        .insert("CONNECTORS_RELOAD_SECS".into(), "1".into());
    stack
        .extra_env
        .insert("STAGE_ACK_WAIT_SECS".into(), "3".into());
    microsoft_settings(&stack, &server).await;
    let (stale, refresh0) = server.issue(ACCOUNT, -600);
    let sub = oauth_mailbox(
        &stack,
        Some(&dovecot),
        sink.port,
        Tokens {
            access_token: stale.clone(),
            refresh_token: Some(refresh0.clone()),
            expires_at: chrono::Utc::now() - chrono::Duration::minutes(10),
            account: Some(ACCOUNT.into()),
        },
    )
    .await;
    for s in ["api", "ingest", "outbound", "connectors"] {
        stack.start(s).await;
    }

    // Connected: the connector recorded where it starts in INBOX.
    wait_until("the connector logged in", Duration::from_secs(60), || {
        let stack = &stack;
        async move {
            stack
                .count(&format!(
                    "SELECT count(*) FROM imap_progress WHERE subchannel_id = {sub}"
                ))
                .await
                > 0
        }
    })
    .await;
    let requests = server.token_requests();
    assert_eq!(requests.len(), 1, "one refresh: {requests:?}");
    assert_eq!(requests[0]["grant_type"], "refresh_token");
    assert_eq!(requests[0]["refresh_token"], refresh0);
    assert_eq!(requests[0]["client_id"], CLIENT_ID);
    assert!(requests[0]["scope"].contains("IMAP.AccessAsUser.All"));
    assert!(
        !server.introspected().contains(&stale),
        "the expired token was refreshed before the login, not tried first"
    );
    let t = stored(&stack, sub).await;
    let fresh = t.access_token.clone().expect("access token");
    assert_ne!(fresh, stale);
    assert!(server.introspected().contains(&fresh), "Dovecot checked it");
    assert!(
        t.refresh_token.as_deref().is_some_and(|r| r != refresh0),
        "the rotated refresh token is stored"
    );
    assert!(
        t.expires_at
            .is_some_and(|e| e > chrono::Utc::now() + chrono::Duration::minutes(50)),
        "{t:?}"
    );

    imap.append(
        "INBOX",
        None,
        None,
        mail("oauth-1@example.com", "Zählerstand"),
    )
    .await
    .expect("APPEND");
    let ticket = ticket_of(&stack, "oauth-1@example.com").await;

    // A person's reply leaves through SMTP, logged in with XOAUTH2.
    let (status, r) = support::send(
        &stack,
        reqwest::Method::POST,
        &format!("/api/mind/ticket/{ticket}/conversation/reply"),
        &stack.admin_token,
        Some(&json!({"body": "Vielen Dank, wir haben Ihren Zählerstand erhalten."})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let mails = sink.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(mails[0]["authMechanism"], "XOAUTH2", "{}", mails[0]);
    assert_eq!(mails[0]["authUser"], ACCOUNT);
    assert_eq!(mails[0]["rcpt"], json!(["sarah.miller@example.com"]));
    assert_eq!(server.token_requests().len(), 1, "the stored token served");

    // Every token revoked. The running IMAP session is not asked again, so a new connector
    // process logs in: refused, its refresh refused, and the subchannel flagged.
    server.revoke_all();
    stack.kill("connectors").await;
    stack.start("connectors").await;
    let start = Instant::now();
    let data = loop {
        let data: Value = sqlx::query_scalar("SELECT data FROM subchannels WHERE id = $1")
            .bind(sub)
            .fetch_one(stack.store.pool())
            .await
            .expect("data");
        if !data["oauthError"].is_null() {
            break data;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the subchannel was not flagged: {data}; logs in {}",
            stack.log_dir().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let error = data["oauthError"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains("invalid_grant") && error.contains("connect the mailbox again"),
        "{data}"
    );
    let refreshes = server.token_requests().len();
    assert_eq!(refreshes, 2, "one refused refresh");
    // No crash loop: the connector leaves the mailbox alone until it is connected again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(server.token_requests().len(), refreshes);
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM audit_log WHERE entity = 'subchannel' AND entity_id = '{sub}' AND action = 'oauthRefreshFailed'"
            ))
            .await,
        1
    );
    let (_, list) = stack
        .get_json(
            &format!("/api/mind/settings/subchannel?id={sub}"),
            &stack.admin_token,
        )
        .await;
    assert_eq!(
        list["subchannels"][0]["data"]["oauthError"], error,
        "operators see why: {list}"
    );

    // Outbound refuses to send through the broken connection, and says why.
    let (status, r) = support::send(
        &stack,
        reqwest::Method::POST,
        &format!("/api/mind/ticket/{ticket}/conversation/reply"),
        &stack.admin_token,
        Some(&json!({"body": "Noch eine Frage ..."})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let start = Instant::now();
    let o = loop {
        let o = outs(&stack, ticket).await;
        if o.len() == 2 && o[1].0 != "queued" {
            break o;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the second reply did not settle: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(o[1].0, "failed", "{o:?}");
    assert!(
        o[1].1
            .as_deref()
            .is_some_and(|e| e.contains("connect the mailbox again")),
        "{o:?}"
    );
    assert_eq!(sink.mails().len(), 1);

    // No token in any log.
    let tokens = server.all_tokens();
    for entry in std::fs::read_dir(stack.log_dir()).expect("log dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "log") {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            for t in &tokens {
                assert!(
                    !log.contains(t.as_str()),
                    "{} holds a token",
                    path.display()
                );
            }
        }
    }
    imap.logout().await.ok();
    sink.stop().await;
    stack.shutdown().await;
}

/// Replicas that find the token expired at the same moment refresh it once: the refresh token
/// is single-use, so a second refresh with it would be refused and break the mailbox.
#[tokio::test]
async fn replicas_refreshing_at_once_spend_the_refresh_token_once() {
    let server = OAuthServer::start().await;
    server.set_delay(Duration::from_millis(300));
    let stack = Stack::new("oauth_race").await;
    microsoft_settings(&stack, &server).await;
    let (stale, refresh0) = server.issue(ACCOUNT, -60);
    let sub = oauth_mailbox(
        &stack,
        None,
        25,
        Tokens {
            access_token: stale,
            refresh_token: Some(refresh0),
            expires_at: chrono::Utc::now() - chrono::Duration::minutes(1),
            account: Some(ACCOUNT.into()),
        },
    )
    .await;
    let settings = switchyard_store::settings::SettingsCache::start(
        stack.store.clone(),
        Duration::from_secs(60),
    )
    .await
    .expect("settings");
    let http = reqwest::Client::new();
    // Each with a pool of its own, like separate processes.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let store = switchyard_store::Store::connect(&stack.db_url, 2)
            .await
            .expect("store");
        let (settings, http) = (settings.clone(), http.clone());
        tasks.spawn(async move {
            switchyard_oauth::access_token(
                &store,
                &http,
                &settings,
                sub,
                None,
                &format!("service:replica-{i}"),
            )
            .await
        });
    }
    let mut got = Vec::new();
    while let Some(r) = tasks.join_next().await {
        got.push(r.expect("task").expect("access token").token);
    }
    assert_eq!(server.token_requests().len(), 1, "one refresh for all");
    got.dedup();
    assert_eq!(got.len(), 1, "every replica got the same token");
    let t = stored(&stack, sub).await;
    assert_eq!(t.access_token.as_deref(), Some(got[0].as_str()));
    assert!(t.error.is_none(), "{t:?}");
    stack.shutdown().await;
}
