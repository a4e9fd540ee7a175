//! The consumer loop and the per-message protocol.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backoff::ExponentialBackoff;
use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use serde_json::{json, Value};
use switchyard_bus::{AckKind, Bus, ConsumerSettings, Message, StreamKind};
use switchyard_domain::{Envelope, ProcessingFlag, Stage, TicketStatus};
use switchyard_store::{dead_letters, stage_runs, tickets, Store, StoreError};
use switchyard_telemetry::Health;
use tokio::sync::watch;
use tracing::{field, Instrument};

use crate::context::{EffectMode, PendingEvent, StageCx};
use crate::{StageError, StageHandler, StageOutput, WorkKey};

/// Tuning of one stage's consumer and retries.
#[derive(Debug, Clone)]
pub struct StageConfig {
    /// Messages in flight in this replica.
    pub concurrency: usize,
    /// Messages that arrived together are done in one transaction, up to this many.
    pub batch_size: usize,
    pub consumer: ConsumerSettings,
    /// Delay before redelivery after the n-th failed delivery (the last entry repeats).
    pub retry_delays: Vec<Duration>,
    /// How long in-process retries of one delivery may take before it is nak'ed.
    pub in_process_retry: Duration,
}

impl Default for StageConfig {
    fn default() -> Self {
        StageConfig {
            concurrency: 64,
            batch_size: 16,
            consumer: ConsumerSettings {
                ack_wait: Duration::from_secs(30),
                max_deliver: 5,
                max_ack_pending: 4096,
            },
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120),
            ],
            in_process_retry: Duration::from_secs(2),
        }
    }
}

/// What every stage needs from the process.
#[derive(Clone)]
pub struct StageDeps {
    pub bus: Bus,
    pub store: Store,
    /// Names this process in markers and the audit log (`REPLICA_ID`, or host and pid).
    pub replica: String,
    pub health: Health,
}

/// Runs a stage until `shutdown` turns true: stops pulling, finishes what is in flight, returns.
pub async fn run_stage<H: StageHandler>(
    handler: Arc<H>,
    deps: StageDeps,
    config: StageConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), StageError> {
    let stage = H::STAGE;
    let input = stage.input_subject();
    let kind = StreamKind::for_subject(input)
        .ok_or_else(|| StageError::Permanent(format!("no stream holds {input}")))?;
    deps.bus.ensure_streams().await?;
    let lag_task = tokio::spawn(report_lag(
        deps.bus.clone(),
        kind,
        stage.as_str(),
        shutdown.clone(),
    ));

    let reconnect = backoff::backoff::Backoff::next_backoff;
    let mut retry = ExponentialBackoff {
        max_elapsed_time: None,
        max_interval: Duration::from_secs(30),
        ..Default::default()
    };
    while !*shutdown.borrow() {
        let consumer = match deps
            .bus
            .durable_consumer(kind, stage.as_str(), input, &config.consumer)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, stage = %stage, "consumer unavailable; retrying");
                let wait = reconnect(&mut retry).unwrap_or(Duration::from_secs(30));
                wait_or_shutdown(wait, &mut shutdown).await;
                continue;
            }
        };
        let messages = match consumer
            .stream()
            .max_messages_per_batch(config.concurrency.max(1))
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, stage = %stage, "cannot pull; retrying");
                let wait = reconnect(&mut retry).unwrap_or(Duration::from_secs(30));
                wait_or_shutdown(wait, &mut shutdown).await;
                continue;
            }
        };
        deps.health.set_ready(true);
        backoff::backoff::Backoff::reset(&mut retry);
        tracing::info!(stage = %stage, replica = %deps.replica, "consuming");

        let batches_in_flight = (config.concurrency / config.batch_size.max(1)).max(4);
        let mut stop = shutdown.clone();
        let stream_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let failed = stream_failed.clone();
        messages
            .take_until(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .take_while(|m| {
                let ok = m.is_ok();
                if let Err(e) = m {
                    tracing::warn!(error = %e, stage = %stage, "pull stream failed; recreating");
                    failed.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                futures::future::ready(ok)
            })
            .filter_map(|m| futures::future::ready(m.ok()))
            .ready_chunks(config.batch_size.max(1))
            .for_each_concurrent(batches_in_flight, |msgs| {
                let handler = handler.clone();
                let deps = deps.clone();
                let config = config.clone();
                async move { handle_batch(&*handler, &deps, &config, msgs).await }
            })
            .await;
        if stream_failed.load(std::sync::atomic::Ordering::SeqCst) {
            let wait = reconnect(&mut retry).unwrap_or(Duration::from_secs(30));
            wait_or_shutdown(wait, &mut shutdown).await;
        }
    }
    deps.health.set_ready(false);
    lag_task.abort();
    tracing::info!(stage = %stage, "stopped");
    Ok(())
}

async fn wait_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) {
    let _ = tokio::time::timeout(d, shutdown.wait_for(|s| *s)).await;
}

/// Publishes the consumer's lag as a gauge (what autoscaling reads).
async fn report_lag(
    bus: Bus,
    kind: StreamKind,
    stage: &'static str,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if let Ok(lag) = bus.consumer_lag(kind, stage).await {
            metrics::gauge!("switchyard_consumer_lag", "stage" => stage).set(lag as f64);
        }
        wait_or_shutdown(Duration::from_secs(5), &mut shutdown).await;
        if *shutdown.borrow() {
            return;
        }
    }
}

/// What a marker records for handing on.
struct Recorded {
    stage: Stage,
    ticket_id: Option<i64>,
    next_envelope: Option<Value>,
    events: Value,
}

/// A received message, decoded, with the span its work runs in.
struct Delivery<I> {
    msg: Message,
    input: I,
    key: WorkKey,
    span: tracing::Span,
    deliveries: i64,
    sequence: u64,
    received: Instant,
}

/// Decodes a message; an unreadable one is dead-lettered at once.
async fn decode<H: StageHandler>(deps: &StageDeps, msg: Message) -> Option<Delivery<H::Input>> {
    let stage = H::STAGE.as_str();
    let (deliveries, sequence) = match msg.info() {
        Ok(i) => (i.delivered, i.stream_sequence),
        Err(_) => (1, 0),
    };
    let span = tracing::info_span!(
        "stage",
        otel.name = stage,
        stage,
        ticket_id = field::Empty,
        message_id = field::Empty,
        deliveries,
    );
    switchyard_telemetry::extract_context(&span, &switchyard_bus::header_pairs(&msg));
    match serde_json::from_slice::<H::Input>(&msg.payload) {
        Ok(input) => {
            let key = H::key(&input);
            if let Some(t) = key.ticket_id {
                span.record("ticket_id", t);
            }
            Some(Delivery {
                msg,
                input,
                key,
                span,
                deliveries,
                sequence,
                received: Instant::now(),
            })
        }
        Err(e) => {
            let err = StageError::Permanent(format!("unreadable envelope: {e}"));
            dead_letter(deps, stage, &msg, None, &err, deliveries, sequence)
                .instrument(span)
                .await;
            None
        }
    }
}

/// Handles the messages that arrived together. Several are done in one transaction (one commit
/// for all: the database's per-commit cost is what limits throughput); if anything in that
/// transaction fails, each message is retried in a transaction of its own, so one bad message
/// never holds up the others.
async fn handle_batch<H: StageHandler>(
    handler: &H,
    deps: &StageDeps,
    config: &StageConfig,
    msgs: Vec<Message>,
) {
    let mut items = Vec::with_capacity(msgs.len());
    for msg in msgs {
        if let Some(d) = decode::<H>(deps, msg).await {
            items.push(d);
        }
    }
    if items.len() > 1 {
        // One lock order for every batch: two batches never deadlock on each other's tickets.
        items.sort_by_key(|d| d.key.ticket_id);
        match run_batch(handler, deps, &items).await {
            Ok(dones) => {
                metrics::histogram!("switchyard_stage_batch_size", "stage" => H::STAGE.as_str())
                    .record(items.len() as f64);
                let finishing = items
                    .into_iter()
                    .zip(dones)
                    .map(|(d, done)| finish::<H>(deps, config, d, Ok(done)));
                futures::future::join_all(finishing).await;
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "batch failed; one transaction per message instead");
            }
        }
    }
    let singles = items
        .into_iter()
        .map(|d| handle_single(handler, deps, config, d));
    futures::future::join_all(singles).await;
}

/// All messages of a batch in one transaction.
async fn run_batch<H: StageHandler>(
    handler: &H,
    deps: &StageDeps,
    items: &[Delivery<H::Input>],
) -> Result<Vec<Recorded>, StageError> {
    let tx = deps.store.begin().await?;
    let mut cx = StageCx::new(tx, format!("service:{}@{}", H::STAGE, deps.replica));
    let mut dones = Vec::with_capacity(items.len());
    for d in items {
        let done = work_in(&mut cx, handler, deps, &d.key, &d.input)
            .instrument(d.span.clone())
            .await?;
        dones.push(done);
    }
    cx.tx.commit().await.map_err(StoreError::from)?;
    Ok(dones)
}

/// One message in its own transaction, retried in process while the failure is transient.
async fn handle_single<H: StageHandler>(
    handler: &H,
    deps: &StageDeps,
    config: &StageConfig,
    d: Delivery<H::Input>,
) {
    let attempt = || async {
        attempt_once(handler, deps, &d.key, &d.input)
            .await
            .map_err(|e| {
                if e.is_transient() {
                    backoff::Error::transient(e)
                } else {
                    backoff::Error::permanent(e)
                }
            })
    };
    let policy = ExponentialBackoff {
        initial_interval: Duration::from_millis(50),
        max_interval: Duration::from_millis(500),
        max_elapsed_time: Some(config.in_process_retry),
        ..Default::default()
    };
    let result = backoff::future::retry(policy, attempt)
        .instrument(d.span.clone())
        .await;
    finish::<H>(deps, config, d, result).await;
}

/// Hands on the committed result and acknowledges; on failure, naks with a delay or
/// dead-letters.
async fn finish<H: StageHandler>(
    deps: &StageDeps,
    config: &StageConfig,
    d: Delivery<H::Input>,
    result: Result<Recorded, StageError>,
) {
    let stage = H::STAGE.as_str();
    let span = d.span.clone();
    async move {
        let result = match result {
            Ok(done) => hand_on(deps, &d.key, done).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                if let Err(e) = d.msg.ack().await {
                    tracing::warn!(error = %e, "ack failed; the redelivery will find the marker");
                }
                metrics::counter!("switchyard_stage_processed_total", "stage" => stage, "result" => "ok").increment(1);
                metrics::histogram!("switchyard_stage_duration_seconds", "stage" => stage)
                    .record(d.received.elapsed().as_secs_f64());
            }
            Err(e) if e.is_transient() && d.deliveries < config.consumer.max_deliver => {
                let idx = (d.deliveries.max(1) - 1) as usize;
                let delay = config
                    .retry_delays
                    .get(idx)
                    .or(config.retry_delays.last())
                    .copied()
                    .unwrap_or(Duration::from_secs(5));
                tracing::warn!(error = %e, ?delay, "transient failure; will be redelivered");
                metrics::counter!("switchyard_stage_processed_total", "stage" => stage, "result" => "retry").increment(1);
                if let Err(e) = d.msg.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::warn!(error = %e, "nak failed; AckWait will redeliver");
                }
            }
            Err(e) => {
                dead_letter(deps, stage, &d.msg, d.key.ticket_id, &e, d.deliveries, d.sequence).await;
            }
        }
    }
    .instrument(span)
    .await
}

/// One message in its own transaction.
async fn attempt_once<H: StageHandler>(
    handler: &H,
    deps: &StageDeps,
    key: &WorkKey,
    input: &H::Input,
) -> Result<Recorded, StageError> {
    let tx = deps.store.begin().await?;
    let mut cx = StageCx::new(tx, format!("service:{}@{}", H::STAGE, deps.replica));
    let done = work_in(&mut cx, handler, deps, key, input).await?;
    cx.tx.commit().await.map_err(StoreError::from)?;
    Ok(done)
}

/// The work of one message inside the caller's transaction: check the marker under the ticket's
/// row lock, do the stage's work, write the marker with the results.
async fn work_in<H: StageHandler>(
    cx: &mut StageCx,
    handler: &H,
    deps: &StageDeps,
    key: &WorkKey,
    input: &H::Input,
) -> Result<Recorded, StageError> {
    let stage = H::STAGE.as_str();
    let started_at = Utc::now();
    let marker_key = stage_runs::MarkerKey {
        stage,
        input_key: &key.input_key,
        test_run_key: &key.test_run_key,
    };
    // Lock the ticket: stages and executions on one ticket run one after the other, every stage
    // sees the current status, and a duplicate delivery waits here and then sees the marker.
    let (status, done) = match key.ticket_id {
        Some(t) => {
            let (status, done) = stage_runs::lock_ticket_and_check(cx.conn(), t, &marker_key)
                .await?
                .ok_or_else(|| StageError::Permanent(format!("ticket {t} does not exist")))?;
            let status = TicketStatus::parse(&status)
                .ok_or_else(|| StageError::Permanent(format!("ticket {t} has status {status}")))?;
            (Some(status), done)
        }
        None => (None, stage_runs::exists(cx.conn(), &marker_key).await?),
    };
    if done {
        return already_done(cx, &marker_key).await;
    }
    let mode = if key.test_run_key.is_empty() {
        EffectMode::Apply
    } else {
        EffectMode::RecordOnly
    };
    cx.begin_work(mode, status);
    let out: StageOutput = handler.process(cx, input).await?;
    let span = tracing::Span::current();
    span.record("ticket_id", out.ticket_id);
    span.record("message_id", out.message_id);

    let (recorded, events) = cx.take_effects();
    let completion = stage_runs::Completion {
        ticket_id: Some(out.ticket_id),
        message_id: Some(out.message_id),
        replica: deps.replica.clone(),
        trace_id: switchyard_telemetry::current_trace_id(),
        started_at: Some(started_at),
        outcome: out.outcome,
        next_envelope: out
            .next
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(StageError::permanent)?,
        events: serde_json::to_value(&events).map_err(StageError::permanent)?,
        recorded_effects: (cx.mode == EffectMode::RecordOnly).then_some(Value::Array(recorded)),
    };
    if stage_runs::insert_completed(cx.conn(), &marker_key, &completion)
        .await?
        .is_none()
    {
        // A concurrent delivery of the same input committed first (only possible before a
        // ticket exists, i.e. in ingest): this attempt is rolled back, the retry hands theirs on.
        return Err(StageError::Transient(
            "a concurrent delivery recorded this input first".into(),
        ));
    }
    Ok(Recorded {
        stage: H::STAGE,
        ticket_id: completion.ticket_id,
        next_envelope: completion.next_envelope,
        events: completion.events,
    })
}

async fn already_done(
    cx: &mut StageCx,
    key: &stage_runs::MarkerKey<'_>,
) -> Result<Recorded, StageError> {
    let run = stage_runs::find(cx.conn(), key)
        .await?
        .ok_or_else(|| StageError::Transient("marker not visible yet".into()))?;
    tracing::info!("already processed; handing on the recorded result");
    let stage = Stage::parse(&run.stage)
        .ok_or_else(|| StageError::Permanent(format!("unknown stage {}", run.stage)))?;
    Ok(Recorded {
        stage,
        ticket_id: run.ticket_id,
        next_envelope: run.next_envelope,
        events: run.events,
    })
}

/// Publishes what the committed work hands on, then answers a waiting API request.
async fn hand_on(deps: &StageDeps, key: &WorkKey, marker: Recorded) -> Result<(), StageError> {
    let stage = marker.stage;
    if let (Some(next), Some(subject)) = (&marker.next_envelope, stage.output_subject()) {
        let env: Envelope = serde_json::from_value(next.clone()).map_err(StageError::permanent)?;
        let next_stage = Stage::ALL
            .into_iter()
            .find(|s| s.input_subject() == subject)
            .unwrap_or(stage);
        deps.bus
            .publish_json(subject, &env.msg_id(next_stage), &env)
            .await?;
    }
    let events: Vec<PendingEvent> =
        serde_json::from_value(marker.events.clone()).unwrap_or_default();
    for ev in events {
        let msg_id = format!("{}:{stage}:{}", ev.name, key.input_key);
        let body = json!({"event": ev.name, "ticketId": marker.ticket_id, "data": ev.data});
        deps.bus
            .publish_json(&format!("events.{}", ev.name), &msg_id, &body)
            .await?;
    }
    if let Some(reply) = &key.reply {
        if reply.after == stage {
            let body = json!({"ticketId": marker.ticket_id, "stage": stage});
            // A lost answer only makes the API answer 202; the ticket is stored either way.
            let _ = deps
                .bus
                .notify(&reply.subject, Bytes::from(body.to_string()))
                .await;
        }
    }
    Ok(())
}

/// A message a stage gives up on.
pub(crate) struct Letter<'a> {
    pub stage: &'static str,
    /// Without the bus prefix.
    pub subject: String,
    pub payload: &'a [u8],
    pub msg_id: Option<String>,
    pub deliveries: i64,
    pub sequence: u64,
    pub ticket_id: Option<i64>,
}

/// Stores a dead letter (once per stream message), flags its ticket for a person and copies it
/// to `dlq.<stage>`. `Err` only when Postgres stayed unreachable: the caller must keep the
/// message.
pub(crate) async fn store_dead_letter(
    deps: &StageDeps,
    letter: &Letter<'_>,
    error: &str,
) -> Result<i64, StoreError> {
    let stage = letter.stage;
    metrics::counter!("switchyard_stage_processed_total", "stage" => stage, "result" => "dead_letter").increment(1);
    let store_it = || async {
        let mut tx = deps.store.begin().await?;
        let id = dead_letters::insert(
            &mut tx,
            &dead_letters::NewDeadLetter {
                stage,
                subject: &letter.subject,
                msg_id: letter.msg_id.as_deref(),
                payload: letter.payload,
                error,
                deliveries: letter.deliveries,
                stream_sequence: Some(letter.sequence as i64),
                ticket_id: letter.ticket_id,
            },
        )
        .await?;
        if let Some(t) = letter.ticket_id {
            let flag = ProcessingFlag {
                code: "deadLettered".into(),
                message: format!(
                    "{stage} gave up after {} deliveries: {error}",
                    letter.deliveries
                ),
                stage: Some(stage.to_owned()),
                at: Some(Utc::now()),
            };
            tickets::add_processing_flag(
                &mut tx,
                t,
                &flag,
                &format!("service:{stage}@{}", deps.replica),
            )
            .await?;
        }
        tx.commit().await?;
        Ok::<i64, StoreError>(id)
    };
    let policy = ExponentialBackoff {
        max_elapsed_time: Some(Duration::from_secs(20)),
        ..Default::default()
    };
    let id = backoff::future::retry(policy, || async {
        store_it().await.map_err(backoff::Error::transient)
    })
    .await?;
    let copy = json!({
        "deadLetterId": id,
        "stage": stage,
        "subject": letter.subject,
        "error": error,
        "deliveries": letter.deliveries,
        "ticketId": letter.ticket_id,
        "payload": String::from_utf8_lossy(letter.payload),
    });
    if let Err(e) = deps
        .bus
        .publish_json(
            &format!("dlq.{stage}"),
            &format!("dlq:{stage}:{}", letter.sequence),
            &copy,
        )
        .await
    {
        // Postgres holds it; the stream copy is for subscribers only.
        tracing::warn!(error = %e, "dead letter stored but not copied to the DLQ stream");
    }
    Ok(id)
}

/// Stores the message as a dead letter, then acknowledges it. If Postgres is unreachable the
/// message is nak'ed instead: never dropped.
async fn dead_letter(
    deps: &StageDeps,
    stage: &'static str,
    msg: &Message,
    ticket_id: Option<i64>,
    error: &StageError,
    deliveries: i64,
    sequence: u64,
) {
    tracing::error!(error = %error, deliveries, "giving up; dead-lettering");
    let letter = Letter {
        stage,
        subject: deps.bus.unprefixed(msg.subject.as_str()).to_owned(),
        payload: &msg.payload,
        msg_id: msg
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned()),
        deliveries,
        sequence,
        ticket_id,
    };
    if let Err(e) = store_dead_letter(deps, &letter, &error.to_string()).await {
        tracing::error!(error = %e, "cannot store the dead letter; leaving the message for redelivery");
        let _ = msg
            .ack_with(AckKind::Nak(Some(Duration::from_secs(30))))
            .await;
        return;
    }
    if let Err(e) = msg.ack().await {
        tracing::warn!(error = %e, "ack of dead letter failed; a redelivery stores it once");
    }
}
