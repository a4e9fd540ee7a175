//! The hooks service: one durable consumer on `events.>`, shared by every replica (each event is
//! handled by one replica).
//!
//! For each event it
//! 1. records it in `event_records` (status `processing`), keyed by the message's `Nats-Msg-Id`
//!    (else its stream sequence), so a redelivery finds its row again and a finished event is not
//!    run twice;
//! 2. runs every enabled hook subscribed to the event's name, one after the other:
//!    - `webhook`: `POST {event, ticketId, data}` signed with the hook's secret
//!      (`X-Switchyard-Signature: sha256=<hex>` over `<timestamp>.<body>`,
//!      `X-Switchyard-Timestamp`), retried on network errors, 429 and 5xx with backoff;
//!    - `script`: Rhai in the sandbox (time, operation and size limits) on a blocking thread,
//!      with `input` = the event's data;
//! 3. stores each hook's outcome (`success` or `failed`, result or error, duration) and closes
//!    the record (`closed`, or `error` when a hook failed), then acknowledges the message.
//!
//! A failing hook never stops the consumer: its failure is its outcome. Only a database failure
//! leaves the message unacknowledged (redelivered later).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Map, Value};
use switchyard_bus::{AckKind, Bus, ConsumerSettings, Message, StreamKind};
use switchyard_domain::signing::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use switchyard_script::Sandbox;
use switchyard_store::hooks::{self, HookToRun};
use switchyard_store::Store;
use switchyard_telemetry::Health;
use tokio::sync::watch;

/// The durable consumer's name.
pub const CONSUMER: &str = "hooks";

/// Settings of the hooks service.
#[derive(Debug, Clone)]
pub struct HooksConfig {
    /// Events handled at once per replica.
    pub concurrency: usize,
    pub consumer: ConsumerSettings,
    /// Attempts per webhook call (network errors, 429 and 5xx are retried).
    pub webhook_attempts: u32,
    /// Time of one webhook attempt.
    pub webhook_timeout: Duration,
    /// First pause between attempts; doubled each time.
    pub webhook_backoff: Duration,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            concurrency: 16,
            consumer: ConsumerSettings {
                ack_wait: Duration::from_secs(120),
                max_deliver: 5,
                max_ack_pending: 1024,
            },
            webhook_attempts: 3,
            webhook_timeout: Duration::from_secs(10),
            webhook_backoff: Duration::from_millis(500),
        }
    }
}

/// What the hooks need: the store, the bus, the script sandbox (with its API host) and an HTTP
/// client for webhooks.
pub struct Hooks {
    pub store: Store,
    pub bus: Bus,
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    pub config: HooksConfig,
}

/// Consumes `events.>` until `stop`.
pub async fn run(
    hooks: Arc<Hooks>,
    health: Health,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut pause = Duration::from_millis(500);
    while !*stop.borrow() {
        let consumer = match hooks
            .bus
            .durable_consumer(
                StreamKind::Events,
                CONSUMER,
                "events.>",
                &hooks.config.consumer,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "hooks consumer unavailable; retrying");
                let _ = tokio::time::timeout(pause, stop.wait_for(|s| *s)).await;
                pause = (pause * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        let messages = match consumer
            .stream()
            .max_messages_per_batch(hooks.config.concurrency.max(1))
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot pull events; retrying");
                let _ = tokio::time::timeout(pause, stop.wait_for(|s| *s)).await;
                pause = (pause * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        health.set_ready(true);
        pause = Duration::from_millis(500);
        tracing::info!("hooks consuming events");
        let mut until = stop.clone();
        messages
            .take_until(async move {
                let _ = until.wait_for(|s| *s).await;
            })
            .take_while(|m| {
                if let Err(e) = m {
                    tracing::warn!(error = %e, "event stream failed; recreating");
                }
                futures::future::ready(m.is_ok())
            })
            .filter_map(|m| futures::future::ready(m.ok()))
            .for_each_concurrent(hooks.config.concurrency.max(1), |msg| {
                let hooks = hooks.clone();
                async move { hooks.handle(msg).await }
            })
            .await;
        if !*stop.borrow() {
            let _ = tokio::time::timeout(pause, stop.wait_for(|s| *s)).await;
        }
    }
    health.set_ready(false);
    tracing::info!("hooks stopped");
    Ok(())
}

/// The parts of an event message.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub ticket_id: Option<i64>,
    /// The hook's input: the event's `data`, with `ticketId` (and the event's name as `event`)
    /// added when missing.
    pub data: Value,
}

/// Decodes `{event, ticketId, data}` published on `events.<name>`.
pub fn decode_event(subject_name: &str, payload: &[u8]) -> Event {
    let body: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let name = body
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or(subject_name)
        .to_owned();
    let mut data = match body.get("data") {
        Some(Value::Object(m)) => m.clone(),
        Some(other) if !other.is_null() => {
            let mut m = Map::new();
            m.insert("value".into(), other.clone());
            m
        }
        _ => Map::new(),
    };
    let ticket_id = body
        .get("ticketId")
        .and_then(Value::as_i64)
        .or_else(|| data.get("ticketId").and_then(Value::as_i64));
    if let Some(t) = ticket_id {
        data.entry("ticketId").or_insert(json!(t));
    }
    data.entry("event").or_insert(json!(name));
    Event {
        name,
        ticket_id,
        data: Value::Object(data),
    }
}

impl Hooks {
    async fn handle(&self, msg: Message) {
        let subject = self.bus.unprefixed(msg.subject.as_str()).to_owned();
        let subject_name = subject.strip_prefix("events.").unwrap_or(&subject);
        let sequence = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
        let key = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| format!("seq:{sequence}"));
        let event = decode_event(subject_name, &msg.payload);
        match self.process(&key, &event).await {
            Ok(()) => {
                if let Err(e) = msg.ack().await {
                    tracing::warn!(error = %e, "event ack failed; it comes again and is skipped");
                }
            }
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), event = %event.name, "event not recorded; retrying later");
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                    .await;
            }
        }
    }

    /// Records the event and runs its hooks; an error only for the database.
    pub async fn process(&self, key: &str, event: &Event) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut conn = self.store.pool().acquire().await?;
        let Some(record) =
            hooks::begin_record(&mut conn, key, &event.name, event.ticket_id, &event.data).await?
        else {
            return Ok(());
        };
        let list = hooks::hooks_for(&mut conn, &event.name).await?;
        drop(conn);
        let mut outcomes = Vec::with_capacity(list.len());
        let mut failed = false;
        for hook in &list {
            let outcome = self.run_hook(hook, record, event).await;
            failed |= outcome["status"] != "success";
            metrics::counter!("switchyard_hooks_runs_total",
                "type" => hook_type(hook).to_owned(),
                "result" => outcome["status"].as_str().unwrap_or("failed").to_owned())
            .increment(1);
            outcomes.push(outcome);
        }
        let mut conn = self.store.pool().acquire().await?;
        hooks::finish_record(
            &mut conn,
            record,
            failed,
            &Value::Array(outcomes),
            started.elapsed().as_millis() as i64,
        )
        .await?;
        metrics::counter!("switchyard_hooks_events_total").increment(1);
        Ok(())
    }

    async fn run_hook(&self, hook: &HookToRun, record: i64, event: &Event) -> Value {
        let started = Instant::now();
        let mut out = json!({"hookId": hook.id, "name": hook.name, "type": hook_type(hook)});
        let result = match hook_type(hook) {
            "webhook" => {
                let url = hook.executor["url"].as_str().unwrap_or_default();
                let body =
                    json!({"event": event.name, "ticketId": event.ticket_id, "data": event.data});
                let idem = format!("switchyard-event-{record}-hook-{}", hook.id);
                let (res, attempts) = self
                    .webhook(url, hook.secret.as_deref(), &body, &idem)
                    .await;
                out["attempts"] = json!(attempts);
                res
            }
            "script" => {
                let code = hook.executor["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let sandbox = self.sandbox.clone();
                let input = event.data.clone();
                match tokio::task::spawn_blocking(move || sandbox.run_logged(&code, input)).await {
                    Ok(Ok(o)) => {
                        if !o.logs.is_empty() {
                            out["logs"] = json!(o.logs);
                        }
                        Ok(o.result)
                    }
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("script aborted: {e}")),
                }
            }
            other => Err(format!("unknown hook type {other:?}")),
        };
        match result {
            Ok(v) => {
                out["status"] = json!("success");
                out["result"] = v;
            }
            Err(e) => {
                // The hook's id and the reason; never its secret or the event's data.
                tracing::info!(hook_id = hook.id, event = %event.name, error = %e, "hook failed");
                out["status"] = json!("failed");
                out["error"] = json!(e);
            }
        }
        out["durationMs"] = json!(started.elapsed().as_millis() as u64);
        out
    }

    /// POSTs the body, signed; retries network errors, 429 and 5xx. The answer (JSON, or text
    /// cut to 2000 characters) and the number of attempts.
    async fn webhook(
        &self,
        url: &str,
        secret: Option<&str>,
        body: &Value,
        idempotency_key: &str,
    ) -> (Result<Value, String>, u32) {
        let body = body.to_string();
        let attempts = self.config.webhook_attempts.max(1);
        let mut pause = self.config.webhook_backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            let ts = chrono::Utc::now().timestamp();
            let mut req = self
                .http
                .post(url)
                .timeout(self.config.webhook_timeout)
                .header("content-type", "application/json")
                .header("idempotency-key", idempotency_key)
                .header(TIMESTAMP_HEADER, ts.to_string())
                .body(body.clone());
            if let Some(s) = secret {
                req = req.header(SIGNATURE_HEADER, sign(s, ts, body.as_bytes()));
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let answer = serde_json::from_str::<Value>(&text)
                        .unwrap_or_else(|_| json!(text.chars().take(2000).collect::<String>()));
                    if status.is_success() {
                        return (
                            Ok(json!({"status": status.as_u16(), "body": answer})),
                            attempt,
                        );
                    }
                    last = format!("answered {status}");
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        return (Err(last), attempt);
                    }
                }
                // Without the URL: it may carry credentials.
                Err(e) => last = e.without_url().to_string(),
            }
            if attempt < attempts {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        (Err(last), attempts)
    }
}

fn hook_type(h: &HookToRun) -> &str {
    h.executor["type"].as_str().unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_give_their_data_with_the_ticket_id() {
        let e = decode_event(
            "TicketCreated",
            br#"{"event":"TicketCreated","ticketId":42,"data":{"ticketId":42,"messageId":7}}"#,
        );
        assert_eq!(e.name, "TicketCreated");
        assert_eq!(e.ticket_id, Some(42));
        assert_eq!(
            e.data,
            json!({"ticketId": 42, "messageId": 7, "event": "TicketCreated"})
        );
        let e = decode_event(
            "SettingChanged",
            br#"{"event":"SettingChanged","data":{"name":"x"}}"#,
        );
        assert_eq!(e.ticket_id, None);
        assert_eq!(e.data["name"], "x");
        let e = decode_event("TicketUpdated", b"not json");
        assert_eq!(e.name, "TicketUpdated");
    }
}
