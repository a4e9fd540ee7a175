//! Outbound end to end on real NATS, PostgreSQL, the real binary and a real SMTP server
//! (aiosmtpd, `tests/support/smtp_sink.py`): a dark-processed reply reaches the customer threaded
//! to her mail; a person's reply and a forward go out; an SMTP server that is down is retried
//! until it comes up, a 550 fails the reply and flags (and reopens) the ticket; and 500 replies
//! sent while the outbound worker is SIGKILLed again and again reach the server once each, a
//! resend carrying the Message-ID of the first.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::{SmtpSink, Stack, WORKERS};
use switchyard_bus::StreamKind;
use switchyard_domain::{
    mail_key, Channel, InboundEnvelope, InboundTicket, IngestInput, RawMail, ENVELOPE_VERSION,
};
use switchyard_objects::Objects;

const MAILBOX: &str = "service@stadtwerke.example";

async fn send(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    support::send(stack, method, path, &stack.admin_token, body).await
}

async fn post(stack: &Stack, path: &str, body: &Value) -> (u16, Value) {
    send(stack, reqwest::Method::POST, path, Some(body)).await
}

async fn set(stack: &Stack, name: &str, value: Value) {
    let (status, v) = send(
        stack,
        reqwest::Method::PUT,
        &format!("/api/mind/settings/{name}"),
        Some(&value),
    )
    .await;
    assert_eq!(status, 200, "{name}: {v}");
}

/// A mailbox subchannel whose mail goes out through the SMTP sink.
async fn mailbox(stack: &Stack, smtp_port: u16) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO subchannels (channel, name, data) VALUES ('email', 'Kundenservice', $1) RETURNING id",
    )
    .bind(json!({"email": MAILBOX, "smtpHost": "127.0.0.1", "smtpPort": smtp_port, "smtpTls": "none"}))
    .fetch_one(stack.store.pool())
    .await
    .expect("mailbox subchannel")
}

/// Hands a raw mail to ingest as the mailbox connector does: raw MIME in the object store,
/// `inbound.email` with its key.
struct Inbox {
    objects: Objects,
    subchannel: i64,
}

impl Inbox {
    fn new(stack: &Stack, subchannel: i64) -> Inbox {
        let objects = Objects::open(&stack.log_dir().join("objects").to_string_lossy())
            .expect("object store");
        Inbox {
            objects,
            subchannel,
        }
    }

    /// Delivers a plain-text mail; `message_id` without angle brackets.
    async fn deliver(
        &self,
        stack: &Stack,
        uid: u32,
        message_id: &str,
        from: (&str, &str),
        body: &str,
    ) {
        self.deliver_with(stack, uid, message_id, from, "", body)
            .await
    }

    /// Delivers a plain-text mail with extra header lines (each ending in `\r\n`).
    async fn deliver_with(
        &self,
        stack: &Stack,
        uid: u32,
        message_id: &str,
        from: (&str, &str),
        headers: &str,
        body: &str,
    ) {
        let raw = format!(
            "From: {} <{}>\r\nTo: {MAILBOX}\r\nSubject: =?utf-8?q?Z=C3=A4hlerstand?=\r\n\
             Message-ID: <{message_id}>\r\nDate: {}\r\n{headers}MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
            from.1,
            from.0,
            chrono::Utc::now().to_rfc2822(),
            body.replace('\n', "\r\n")
        );
        let sub = self.subchannel;
        let key = mail_key(sub, message_id);
        let object_key = format!("raw/{sub}/1/{uid}.eml");
        let size = raw.len() as u64;
        self.objects
            .put(&object_key, raw.into_bytes().into())
            .await
            .expect("raw mail stored");
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
                object_key,
                size,
                folder: "INBOX".into(),
                uid_validity: 1,
                uid,
            }),
        };
        stack
            .bus
            .publish_json("inbound.email", &key, &input)
            .await
            .expect("publish inbound.email");
    }
}

fn meter_text(meter: &str, reading: u64, name: &str) -> String {
    format!(
        "Guten Tag,\n\nmein Zählerstand für den Zähler {meter} ist heute {reading} kWh.\n\nViele Grüße\n{name}"
    )
}

/// The ticket of an inbound mail, once ingest stored it.
async fn ticket_of(stack: &Stack, message_id: &str, timeout: Duration) -> i64 {
    let start = Instant::now();
    loop {
        let t: Option<i64> =
            sqlx::query_scalar("SELECT ticket_id FROM messages WHERE mail_message_id = $1")
                .bind(message_id)
                .fetch_optional(stack.store.pool())
                .await
                .expect("query");
        if let Some(t) = t {
            return t;
        }
        assert!(
            start.elapsed() < timeout,
            "mail {message_id} was not ingested"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Debug, sqlx::FromRow)]
struct Out {
    id: i64,
    mail_message_id: String,
    send_status: String,
    send_attempts: i32,
    send_error: Option<String>,
}

/// The outbound messages of a ticket, oldest first.
async fn outs(stack: &Stack, ticket: i64) -> Vec<Out> {
    sqlx::query_as(
        "SELECT id, mail_message_id, send_status, send_attempts, send_error FROM messages
          WHERE ticket_id = $1 AND direction = 'out' ORDER BY id",
    )
    .bind(ticket)
    .fetch_all(stack.store.pool())
    .await
    .expect("outbound rows")
}

/// Waits until the ticket's `n`-th outbound message (from 1) has left `queued`.
async fn settled(stack: &Stack, ticket: i64, n: usize, timeout: Duration) -> Out {
    let start = Instant::now();
    loop {
        let mut o = outs(stack, ticket).await;
        if o.len() >= n && o[n - 1].send_status != "queued" {
            return o.swap_remove(n - 1);
        }
        assert!(
            start.elapsed() < timeout,
            "ticket {ticket}: outbound message {n} not settled: {o:?}; logs in {}",
            stack.log_dir().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ticket_json(stack: &Stack, id: i64) -> Value {
    let (status, t) = stack
        .get_json(&format!("/api/mind/ticket/{id}"), &stack.admin_token)
        .await;
    assert_eq!(status, 200, "{t}");
    t
}

fn flagged(t: &Value, code: &str) -> bool {
    t["processingFlags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f["code"] == code))
}

/// api and every worker, the demo customers and agents, dark processing on for meter readings.
async fn dark_stack(name: &str, outbound_env: &[(&str, &str)]) -> Stack {
    let mut stack = Stack::new(name).await;
    stack.start("api").await;
    for w in WORKERS.iter().filter(|w| **w != "outbound") {
        stack.start(w).await;
    }
    for (k, v) in outbound_env {
        stack.extra_env.insert((*k).into(), (*v).into());
    }
    stack.start("outbound").await;
    stack.load_demo_customers_and_agents().await;
    set(&stack, "enableAiAutoProcessing", json!(true)).await;
    set(&stack, "immediateAiAgents", json!(["meter_reading"])).await;
    // Workers read the settings every two seconds.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stack
}

#[tokio::test]
async fn dark_replies_person_replies_and_forwards_reach_the_smtp_server() {
    let dir = std::env::temp_dir();
    let mut sink = SmtpSink::new(
        &dir,
        &format!("outbound-sink-{}", uuid::Uuid::new_v4().simple()),
        &["reject.me@example.org"],
    );
    sink.start().await;
    let stack = dark_stack("outbound_e2e", &[]).await;
    let sub = mailbox(&stack, sink.port).await;
    let inbox = Inbox::new(&stack, sub);
    let (status, v) = post(
        &stack,
        "/api/mind/customer/import",
        &json!([{"id": 990001, "email": "reject.me@example.org", "firstname": "Rita", "lastname": "Reject",
                 "contracts": [{"id": 990001, "email": "reject.me@example.org", "energy": "electricity",
                                "counterNumber": "1REJ0000000001"}]}]),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    // a) A German meter reading from a known customer is answered in the dark.
    let arrived = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    inbox
        .deliver(
            &stack,
            1,
            "meter-sarah@example.com",
            ("sarah.miller@example.com", "Sarah Miller"),
            &meter_text("1ESY1160700001", 4321, "Sarah Miller"),
        )
        .await;
    let mails = sink.wait_for(1, Duration::from_secs(90)).await;
    let smtp_latency = mails[0]["receivedAt"].as_f64().expect("receivedAt") - arrived;
    println!("mail arrival to SMTP receipt of the dark reply: {smtp_latency:.2} s");
    let id = ticket_of(&stack, "meter-sarah@example.com", Duration::from_secs(10)).await;
    let row = settled(&stack, id, 1, Duration::from_secs(10)).await;
    assert_eq!(row.send_status, "sent", "{row:?}");
    let m = &mails[0];
    assert_eq!(m["messageId"], json!(row.mail_message_id), "{m}");
    assert_eq!(m["inReplyTo"], "<meter-sarah@example.com>", "{m}");
    assert!(
        m["references"]
            .as_str()
            .is_some_and(|r| r.contains("<meter-sarah@example.com>")),
        "{m}"
    );
    assert_eq!(m["autoSubmitted"], "auto-replied", "{m}");
    assert_eq!(m["rcpt"], json!(["sarah.miller@example.com"]), "{m}");
    assert_eq!(m["from"], MAILBOX, "{m}");
    assert!(
        m["subject"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("[#{id}]"))),
        "{m}"
    );
    let body = m["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("Zählerstand") && body.contains("4321"),
        "not the German reply: {body}"
    );
    let sent_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT sent_at FROM messages WHERE id = $1")
            .bind(row.id)
            .fetch_one(stack.store.pool())
            .await
            .expect("sent_at");
    assert!(sent_at.is_some());
    assert!(stack.stages_of(id).await.iter().any(|s| s == "outbound"));
    // events.SendEmail, on the EVENTS stream.
    let events = stack
        .bus
        .jetstream()
        .get_stream(stack.bus.stream_name(StreamKind::Events))
        .await
        .expect("EVENTS stream");
    let start = Instant::now();
    let event: Value = loop {
        if let Ok(msg) = events
            .get_last_raw_message_by_subject(&stack.bus.subject("events.SendEmail"))
            .await
        {
            break serde_json::from_slice(&msg.payload).expect("event JSON");
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no SendEmail event"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(event["ticketId"], id, "{event}");
    assert_eq!(event["data"]["messageId"], row.id, "{event}");
    assert_eq!(
        event["data"]["to"],
        json!(["sarah.miller@example.com"]),
        "{event}"
    );

    // b) A person's reply and a forward.
    let (status, r) = post(
        &stack,
        &format!("/api/mind/ticket/{id}/conversation/reply"),
        &json!({"body": "Guten Tag Frau Miller,\n\nwir haben Ihren Zählerstand auch im neuen Tarif hinterlegt."}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let mails = sink.wait_for(2, Duration::from_secs(30)).await;
    let m = &mails[1];
    assert_eq!(m["messageId"], r["messageId"], "{m} {r}");
    assert_eq!(m["inReplyTo"], "<meter-sarah@example.com>", "{m}");
    assert_eq!(m["autoSubmitted"], Value::Null, "a person wrote it: {m}");
    assert_eq!(m["rcpt"], json!(["sarah.miller@example.com"]), "{m}");
    assert!(m["body"]
        .as_str()
        .is_some_and(|b| b.contains("im neuen Tarif")));
    let (status, f) = post(
        &stack,
        &format!("/api/mind/ticket/{id}/forward"),
        &json!({"toEmail": "zaehlerwesen@netzbetreiber.example", "body": "Bitte prüfen."}),
    )
    .await;
    assert_eq!(status, 200, "{f}");
    let mails = sink.wait_for(3, Duration::from_secs(30)).await;
    let m = &mails[2];
    assert_eq!(m["messageId"], f["messageId"], "{m} {f}");
    assert_eq!(
        m["rcpt"],
        json!(["zaehlerwesen@netzbetreiber.example"]),
        "{m}"
    );
    assert!(
        m["subject"].as_str().is_some_and(|s| s.starts_with("Fwd:")),
        "{m}"
    );
    assert!(m["body"]
        .as_str()
        .is_some_and(|b| b.contains("Bitte prüfen.") && b.contains("4321")));
    assert_eq!(
        settled(&stack, id, 3, Duration::from_secs(5))
            .await
            .send_status,
        "sent"
    );

    // Her answer to our reply (In-Reply-To our Message-ID, no ticket number in the subject)
    // lands on her ticket.
    inbox
        .deliver_with(
            &stack,
            3,
            "answer-sarah@example.com",
            ("sarah.miller@example.com", "Sarah Miller"),
            &format!("In-Reply-To: {}\r\n", row.mail_message_id),
            "Danke für die schnelle Antwort!",
        )
        .await;
    assert_eq!(
        ticket_of(&stack, "answer-sarah@example.com", Duration::from_secs(30)).await,
        id,
        "the customer's answer to our reply is threaded onto her ticket"
    );

    // A dark reply the server refuses for good (550): failed, flagged, the closed ticket reopened.
    inbox
        .deliver(
            &stack,
            2,
            "meter-rita@example.org",
            ("reject.me@example.org", "Rita Reject"),
            &meter_text("1REJ0000000001", 777, "Rita Reject"),
        )
        .await;
    let rita = ticket_of(&stack, "meter-rita@example.org", Duration::from_secs(30)).await;
    let row = settled(&stack, rita, 1, Duration::from_secs(90)).await;
    assert_eq!(row.send_status, "failed", "{row:?}");
    assert!(
        row.send_error.as_deref().is_some_and(|e| e.contains("550")),
        "{row:?}"
    );
    let t = ticket_json(&stack, rita).await;
    assert!(flagged(&t, "replyNotSent"), "{t}");
    assert_eq!(
        t["status"], "open",
        "dark processing closed it, the failure reopens it: {t}"
    );
    assert_eq!(t["aiSupportLevel"], "human", "{t}");
    assert_eq!(sink.mails().len(), 3, "nothing more reached the server");
    sink.stop().await;
    stack.shutdown().await;
}

#[tokio::test]
async fn a_down_smtp_server_is_retried_and_a_550_fails_the_reply() {
    let dir = std::env::temp_dir();
    // Not started yet: its port is closed.
    let mut sink = SmtpSink::new(
        &dir,
        &format!("outbound-retry-{}", uuid::Uuid::new_v4().simple()),
        &["blocked@example.org"],
    );
    let mut stack = Stack::new("outbound_retry").await;
    stack.extra_env.extend([
        ("SMTP_URL".to_owned(), sink.url()),
        ("SMTP_FROM".to_owned(), MAILBOX.to_owned()),
        (
            "STAGE_RETRY_DELAYS_MS".to_owned(),
            "300,600,1000".to_owned(),
        ),
        ("STAGE_MAX_DELIVER".to_owned(), "30".to_owned()),
        // The other tests' ai stages may keep the cores busy: wait for ingest's answer.
        ("API_REPLY_TIMEOUT_MS".to_owned(), "30000".to_owned()),
    ]);
    for s in ["api", "ingest", "outbound"] {
        stack.start(s).await;
    }
    let ticket = |from: &str| json!({"channel": "email", "from": from, "subject": "Abschlag", "body": "Bitte senken Sie meinen Abschlag."});
    let r: Value = stack
        .post_ticket(&ticket("kunde@example.org"))
        .await
        .json()
        .await
        .expect("ticket");
    let id = r["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no ticket id: {r}"));
    let (status, reply) = post(
        &stack,
        &format!("/api/mind/ticket/{id}/conversation/reply"),
        &json!({"body": "Wir haben Ihren Abschlag angepasst."}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");

    // Refused connections: the reply stays queued and is tried again.
    let start = Instant::now();
    loop {
        let o = outs(&stack, id).await;
        if o[0].send_attempts >= 3 {
            assert_eq!(o[0].send_status, "queued", "{o:?}");
            assert!(o[0].send_error.is_some(), "{o:?}");
            println!(
                "SMTP down: {} attempts so far, last error: {:?}",
                o[0].send_attempts, o[0].send_error
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not retried: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sink.start().await;
    let mails = sink.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(mails[0]["messageId"], reply["messageId"]);
    let row = settled(&stack, id, 1, Duration::from_secs(10)).await;
    assert_eq!(row.send_status, "sent", "{row:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.mails().len(), 1, "sent once");

    // 550: failed at once, flagged for a person.
    let r: Value = stack
        .post_ticket(&ticket("blocked@example.org"))
        .await
        .json()
        .await
        .expect("ticket");
    let blocked = r["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no ticket id: {r}"));
    let (status, v) = post(
        &stack,
        &format!("/api/mind/ticket/{blocked}/conversation/reply"),
        &json!({"body": "Wir haben Ihren Abschlag angepasst."}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let row = settled(&stack, blocked, 1, Duration::from_secs(30)).await;
    assert_eq!(row.send_status, "failed", "{row:?}");
    assert_eq!(
        row.send_attempts, 1,
        "a permanent failure is not retried: {row:?}"
    );
    assert!(
        row.send_error.as_deref().is_some_and(|e| e.contains("550")),
        "{row:?}"
    );
    let t = ticket_json(&stack, blocked).await;
    assert!(flagged(&t, "replyNotSent"), "{t}");
    assert_eq!(t["aiSupportLevel"], "human", "{t}");
    assert_eq!(sink.mails().len(), 1);
    sink.stop().await;
    stack.shutdown().await;
}

/// SIGKILLs the outbound worker at random points (seed printed) while 500 replies are dark
/// processed and sent; restarts it at once. Every reply reaches the SMTP server, each ticket's
/// mails carry one Message-ID.
#[tokio::test]
async fn outbound_killed_again_and_again_sends_each_reply_with_one_message_id() {
    const N: u64 = 500;
    let seed: u64 = std::env::var("SWITCHYARD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("outbound kill test seed: {seed} (replay with SWITCHYARD_TEST_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let dir = std::env::temp_dir();
    let mut sink = SmtpSink::new(
        &dir,
        &format!("outbound-kill-{}", uuid::Uuid::new_v4().simple()),
        &[],
    );
    sink.start().await;
    // A killed worker's messages come back after the ack wait.
    let mut stack = dark_stack(
        "outbound_kill",
        &[
            ("STAGE_ACK_WAIT_SECS", "2"),
            ("STAGE_MAX_DELIVER", "100"),
            ("OUTBOUND_MAX_ATTEMPTS", "100"),
        ],
    )
    .await;
    let sub = mailbox(&stack, sink.port).await;
    let inbox = Inbox::new(&stack, sub);
    let customers: Vec<Value> = (0..N)
        .map(|i| {
            json!({"id": 900_000_000 + i, "email": format!("last{i}@example.org"), "firstname": "Last",
                   "lastname": format!("Kunde {i}"),
                   "contracts": [{"id": 900_000_000 + i, "email": format!("last{i}@example.org"),
                                  "energy": "electricity", "counterNumber": format!("1LDG{i:010}")}]})
        })
        .collect();
    let (status, v) = post(&stack, "/api/mind/customer/import", &json!(customers)).await;
    assert_eq!(status, 200, "{v}");

    let started = Instant::now();
    for i in 0..N {
        inbox
            .deliver(
                &stack,
                i as u32 + 1,
                &format!("kill-{i}@example.org"),
                (&format!("last{i}@example.org"), &format!("Last Kunde {i}")),
                &meter_text(
                    &format!("1LDG{i:010}"),
                    1_000 + (i * 7_919) % 89_000,
                    "Last Kunde",
                ),
            )
            .await;
    }
    let mut kills = 0;
    let deadline = Duration::from_secs(240);
    loop {
        let sent = stack
            .count("SELECT count(*) FROM messages WHERE direction = 'out' AND send_status = 'sent'")
            .await;
        if sent == N as i64 {
            break;
        }
        assert!(
            started.elapsed() < deadline,
            "only {sent} of {N} replies sent after {deadline:?} (seed {seed}); logs in {}",
            stack.log_dir().display()
        );
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1500))).await;
        stack.kill("outbound").await;
        kills += 1;
        stack.start("outbound").await;
    }
    println!(
        "{N} replies sent in {:?} with the outbound worker SIGKILLed {kills} times",
        started.elapsed()
    );
    // A delivery the last kill interrupted may still come back after the ack wait.
    tokio::time::sleep(Duration::from_secs(4)).await;

    assert_eq!(
        stack
            .count(
                "SELECT count(*) FROM messages WHERE direction = 'out' AND send_status <> 'sent'"
            )
            .await,
        0,
        "seed {seed}"
    );
    let stored: HashMap<i64, String> = sqlx::query_as::<_, (i64, String)>(
        "SELECT ticket_id, mail_message_id FROM messages WHERE direction = 'out'",
    )
    .fetch_all(stack.store.pool())
    .await
    .expect("rows")
    .into_iter()
    .collect();
    assert_eq!(
        stored.len(),
        N as usize,
        "one reply per ticket (seed {seed})"
    );
    let mails = sink.mails();
    let mut per_ticket: HashMap<i64, Vec<String>> = HashMap::new();
    for m in &mails {
        let subject = m["subject"].as_str().unwrap_or_default();
        let ticket: i64 = subject
            .rsplit_once("[#")
            .and_then(|(_, r)| r.split(']').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no ticket reference in {subject:?}"));
        per_ticket
            .entry(ticket)
            .or_default()
            .push(m["messageId"].as_str().unwrap_or_default().to_owned());
    }
    let distinct: HashSet<&str> = mails
        .iter()
        .filter_map(|m| m["messageId"].as_str())
        .collect();
    assert_eq!(
        distinct.len(),
        N as usize,
        "distinct Message-IDs at the server (seed {seed})"
    );
    assert_eq!(
        per_ticket.len(),
        N as usize,
        "tickets answered (seed {seed})"
    );
    for (ticket, ids) in &per_ticket {
        assert!(
            ids.iter().all(|i| i == &ids[0]),
            "ticket {ticket}: a resend changed the Message-ID: {ids:?} (seed {seed})"
        );
        assert_eq!(
            stored.get(ticket),
            Some(&ids[0]),
            "ticket {ticket} (seed {seed})"
        );
    }
    let duplicates = mails.len() - N as usize;
    let extra_attempts = stack
        .count("SELECT coalesce(sum(send_attempts - 1), 0)::bigint FROM messages WHERE direction = 'out'")
        .await;
    println!(
        "kill test: {kills} kills, {} mails received for {N} replies: {duplicates} resent with the same Message-ID; {extra_attempts} attempts beyond the first",
        mails.len()
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM stage_runs WHERE stage = 'outbound'")
            .await,
        N as i64,
        "one outbound marker per reply (seed {seed})"
    );
    sink.stop().await;
    stack.shutdown().await;
}

/// A local chat system: keeps each callback's timestamp, signature and body.
async fn chat_system() -> (
    String,
    std::sync::Arc<tokio::sync::Mutex<Vec<(String, String, String)>>>,
) {
    use axum::{extract::State, http::HeaderMap, routing::post, Router};
    type Seen = std::sync::Arc<tokio::sync::Mutex<Vec<(String, String, String)>>>;
    let seen: Seen = Default::default();
    async fn callback(State(seen): State<Seen>, headers: HeaderMap, body: String) -> &'static str {
        let h = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        seen.lock().await.push((
            h("x-switchyard-timestamp"),
            h("x-switchyard-signature"),
            body,
        ));
        "ok"
    }
    let app = Router::new()
        .route("/callback", post(callback))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/callback"), seen)
}

#[tokio::test]
async fn a_reply_on_a_chat_ticket_is_posted_signed_to_the_chat_callback() {
    use hmac::{Hmac, Mac};
    let (url, seen) = chat_system().await;
    let mut stack = Stack::new("outbound_chat").await;
    stack
        .extra_env
        .insert("API_REPLY_TIMEOUT_MS".into(), "30000".into());
    for s in ["api", "ingest", "outbound"] {
        stack.start(s).await;
    }
    let secret = "chat-signing-secret";
    let sub: i64 = sqlx::query_scalar(
        "INSERT INTO subchannels (channel, name, data, secrets) VALUES ('chat', 'Webchat', $1, $2) RETURNING id",
    )
    .bind(json!({"callbackUrl": url}))
    .bind(json!({"signingSecret": secret}))
    .fetch_one(stack.store.pool())
    .await
    .expect("chat subchannel");
    let t: Value = stack
        .post_ticket(
            &json!({"channel": "chat", "from": "carla@example.org", "subchannelId": sub,
                             "channelId": "conv-17", "body": "Wann kommt meine Rechnung?"}),
        )
        .await
        .json()
        .await
        .expect("ticket");
    let id = t["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no ticket id: {t}"));
    let (status, r) = post(
        &stack,
        &format!("/api/mind/ticket/{id}/conversation/reply"),
        &json!({"body": "Ihre Rechnung kommt nächste Woche."}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let row = settled(&stack, id, 1, Duration::from_secs(30)).await;
    assert_eq!(row.send_status, "sent", "{row:?}");
    let seen = seen.lock().await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (ts, signature, body) = &seen[0];
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{ts}.{body}").as_bytes());
    assert_eq!(
        signature,
        &format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        "signed over <timestamp>.<body>"
    );
    let body: Value = serde_json::from_str(body).expect("callback JSON");
    assert_eq!(body["channelId"], "conv-17", "{body}");
    assert_eq!(body["ticketId"], id, "{body}");
    assert_eq!(body["text"], "Ihre Rechnung kommt nächste Woche.", "{body}");
    assert_eq!(body["automated"], false, "{body}");
    stack.shutdown().await;
}
