//! The dead-letter backstop. A stage dead-letters a message itself on its last delivery; but a
//! worker that crashes or hangs on every delivery never gets to, and after MaxDeliver JetStream
//! stops delivering the message without anyone noticing. The server announces that with a
//! MAX_DELIVERIES advisory: every worker process listens (no queue group: a hung member of a
//! group could swallow it; storing a dead letter is idempotent), fetches the message by its
//! sequence, stores it as a dead letter, flags its ticket and deletes it from the stream.

use futures::StreamExt;
use serde::Deserialize;
use switchyard_bus::StreamKind;
use switchyard_domain::{Envelope, Stage};
use tokio::sync::watch;

use crate::runner::{store_dead_letter, Letter};
use crate::StageDeps;

#[derive(Debug, Deserialize)]
struct MaxDeliveries {
    stream: String,
    consumer: String,
    stream_seq: u64,
    deliveries: i64,
}

/// Handles MAX_DELIVERIES advisories of the stage consumers until shutdown.
pub async fn run_backstop(deps: StageDeps, mut shutdown: watch::Receiver<bool>) {
    let subject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>";
    let mut sub = match deps.bus.client().subscribe(subject).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "dead-letter backstop not running");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => return,
            msg = sub.next() => {
                let Some(msg) = msg else { return };
                match serde_json::from_slice::<MaxDeliveries>(&msg.payload) {
                    Ok(a) => handle(&deps, a).await,
                    Err(e) => tracing::warn!(error = %e, "unreadable MAX_DELIVERIES advisory"),
                }
            }
        }
    }
}

async fn handle(deps: &StageDeps, a: MaxDeliveries) {
    let Some(stage) = Stage::parse(&a.consumer) else {
        return;
    };
    let kind = if stage == Stage::Ingest {
        StreamKind::Inbound
    } else {
        StreamKind::Pipeline
    };
    if a.stream != deps.bus.stream_name(kind) {
        return; // another installation's (or prefix's) consumer
    }
    let Ok(stream) = deps.bus.jetstream().get_stream(&a.stream).await else {
        return;
    };
    // Gone means a worker acknowledged it after all (it dead-lettered it itself, or finished).
    let Ok(raw) = stream.get_raw_message(a.stream_seq).await else {
        return;
    };
    let ticket_id = serde_json::from_slice::<Envelope>(&raw.payload)
        .ok()
        .map(|e| e.ticket_id);
    let letter = Letter {
        stage: stage.as_str(),
        subject: deps.bus.unprefixed(raw.subject.as_str()).to_owned(),
        payload: &raw.payload,
        msg_id: raw
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_owned()),
        deliveries: a.deliveries,
        sequence: a.stream_seq,
        ticket_id,
    };
    let error = format!(
        "no worker acknowledged it in {} deliveries (crashed or hung)",
        a.deliveries
    );
    tracing::error!(stage = %stage, sequence = a.stream_seq, ticket_id, "{error}; dead-lettering");
    match store_dead_letter(deps, &letter, &error).await {
        Ok(_) => {
            if let Err(e) = stream.delete_message(a.stream_seq).await {
                tracing::warn!(error = %e, "dead letter stored; stream message not deleted");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "dead letter not stored; the message stays in the stream")
        }
    }
}
