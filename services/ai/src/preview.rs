//! `POST /api/mind/aiAgent/{id}/preview`, answered by the ai replicas over NATS request-reply:
//! the (possibly unsaved) agent is run on a ticket's latest message with nothing written.
//! The api process has no model; one ai replica of the queue group answers.

use std::sync::Arc;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_bus::Bus;
use switchyard_domain::AiAgent;
use switchyard_store::{tickets, Store};

use crate::analysis::{analyze, MessageInput, Thresholds};
use crate::{detect, Ai};

/// Subject of preview requests (prefixed like every subject).
pub const SUBJECT: &str = "rpc.ai.preview";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    agent: AiAgent,
    ticket_id: i64,
}

/// Answers preview requests until the bus connection closes.
pub async fn serve(
    bus: Bus,
    store: Store,
    ai: Arc<Ai>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut sub = bus
        .client()
        .queue_subscribe(bus.subject(SUBJECT), "ai-preview".to_owned())
        .await?;
    loop {
        let msg = tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return Ok(()),
            m = sub.next() => match m {
                Some(m) => m,
                None => return Ok(()),
            },
        };
        let Some(reply) = msg.reply.clone() else {
            continue;
        };
        let answer = match serde_json::from_slice::<Request>(&msg.payload) {
            Ok(req) => preview(&store, &ai, req)
                .await
                .unwrap_or_else(|e| json!({"success": false, "error": e.to_string()})),
            Err(e) => json!({"success": false, "error": format!("bad preview request: {e}")}),
        };
        let bytes = serde_json::to_vec(&answer).unwrap_or_default();
        if let Err(e) = bus.client().publish(reply, bytes.into()).await {
            tracing::warn!(error = %e, "preview answer not sent");
        }
    }
}

async fn preview(store: &Store, ai: &Ai, req: Request) -> anyhow::Result<Value> {
    let mut conn = store.pool().acquire().await?;
    let Some(message_id) = tickets::latest_inbound_message(&mut conn, req.ticket_id).await? else {
        return Ok(
            json!({"success": false, "error": format!("ticket {} has no inbound message", req.ticket_id)}),
        );
    };
    let message = tickets::message_text(&mut conn, message_id).await?;
    drop(conn);
    let set = ai.agents().get().await;
    let mut agents: Vec<AiAgent> = set
        .agents
        .iter()
        .filter(|a| a.slug != req.agent.slug && a.id != req.agent.id)
        .cloned()
        .collect();
    let mut agent = req.agent.clone();
    agent.active = true;
    agents.push(agent.clone());
    let detector = ai
        .agents()
        .build_for(agents.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let subject = message.subject.clone().unwrap_or_default();
    let body = message.body_plain.clone().unwrap_or_default();
    let own = switchyard_nlp::text::own_words(&body);
    let language = ai
        .language_of(&subject, &own)
        .await?
        .map_or("de".to_owned(), |d| d.code);
    let mut scores = detect(detector, &subject, &own).await?;
    // A preview shows the agent's result even below the threshold.
    let score = scores.iter().find(|s| s.slug == agent.slug).cloned();
    for s in scores.iter_mut().filter(|s| s.slug == agent.slug) {
        s.detected = true;
    }
    let analysis = analyze(
        &MessageInput::of(&message, &subject, &body, &language),
        &agents,
        &scores,
        &[],
        Thresholds::default(),
    );
    let intent = analysis.intents.iter().find(|i| i.slug == agent.slug);
    let outcome = intent
        .map(|i| switchyard_agents::outcome(&agent, &i.data, &language))
        .transpose()?
        .flatten();
    Ok(json!({
        "success": true,
        "error": null,
        "ticketId": req.ticket_id,
        "detected": score.as_ref().is_some_and(|s| s.detected),
        "confidence": score.as_ref().map(|s| s.confidence),
        "evidence": score.map(|s| s.evidence),
        "status": intent.map(|i| i.status),
        "detectedInputParameters": intent.map(|i| Value::Object(i.data.clone())),
        "dataOutcome": intent.map(|i| Value::Object(i.data.clone())),
        "dataOutcomeInfo": intent.map(|i| Value::Array(i.infos.clone())),
        "customerOutcome": outcome.as_ref().and_then(|o| o.text.clone()),
        "customerOutcomeType": outcome.as_ref().map(|o| o.ty.clone()),
        "customerOutcomeInfo": outcome.as_ref().map(|o| json!({"case": o.case, "description": o.description, "autoExecute": o.auto_execute, "language": o.language})),
        "executorOutput": null,
        "curlRequests": [],
    }))
}
