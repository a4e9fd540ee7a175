//! Executions the API asks for over NATS request-reply (a queue group: one replica answers):
//! `POST /ticket/{id}/autoexecute` (the gates, two of them relaxable, for one agent per call) and
//! `POST /intent/{id}/execute` (a person runs or approves an intent, or previews it with
//! `dryRun`). Each runs in one transaction under the ticket's row lock; the reply and the events
//! are published after commit.

use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use switchyard_bus::Bus;
use switchyard_store::{execution, Store};
use tracing::Instrument;

use crate::engine::{EngineError, ExecMode};
use crate::gates::{Relax, Verdict};
use crate::{publish_after_commit, record_activity, Engine};

/// Subject of execution requests (prefixed like every subject).
pub const SUBJECT: &str = "rpc.autoexecute";

/// What the API asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Request {
    #[serde(rename_all = "camelCase")]
    Ticket {
        ticket_id: i64,
        #[serde(default)]
        execute_agent_id: Option<i64>,
        #[serde(default)]
        allow_multiple_intents: bool,
        #[serde(default)]
        allow_with_replies: bool,
        user_id: i64,
    },
    #[serde(rename_all = "camelCase")]
    Intent {
        intent_id: i64,
        #[serde(default)]
        data: Option<Map<String, Value>>,
        #[serde(default)]
        dry_run: bool,
        #[serde(default = "yes")]
        inform_customer: bool,
        user_id: i64,
    },
}

fn yes() -> bool {
    true
}

/// The answer: an HTTP status for the API and the body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

fn answer(status: u16, body: Value) -> Answer {
    Answer { status, body }
}

fn problem(status: u16, field: &str, message: String) -> Answer {
    answer(
        status,
        json!({"success": false, "message": message, "field": field}),
    )
}

/// Answers execution requests until `stop`.
pub async fn serve(
    bus: Bus,
    store: Store,
    engine: Arc<Engine>,
    replica: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut sub = bus
        .client()
        .queue_subscribe(bus.subject(SUBJECT), "autoexecute".to_owned())
        .await?;
    loop {
        let msg = tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return Ok(()),
            m = sub.next() => match m {
                Some(m) => m,
                None => return Ok(()),
            },
        };
        let Some(reply_to) = msg.reply.clone() else {
            continue;
        };
        let (bus, store, engine, replica) =
            (bus.clone(), store.clone(), engine.clone(), replica.clone());
        tokio::spawn(async move {
            let ans = match serde_json::from_slice::<Request>(&msg.payload) {
                Ok(req) => handle(&bus, &store, &engine, &replica, req).await,
                Err(e) => problem(400, "body", format!("bad execution request: {e}")),
            };
            let bytes = serde_json::to_vec(&ans).unwrap_or_default();
            if let Err(e) = bus.client().publish(reply_to, bytes.into()).await {
                tracing::warn!(error = %e, "execution answer not sent");
            }
        });
    }
}

fn engine_answer(e: EngineError) -> Answer {
    match e {
        EngineError::Action(crate::actions::ActionError::Refused(m)) => problem(409, "intent", m),
        EngineError::Store(switchyard_store::StoreError::Invalid { field, message }) => {
            problem(409, &field, message)
        }
        other => problem(
            if other.is_transient() { 503 } else { 500 },
            "intent",
            other.to_string(),
        ),
    }
}

/// One request in one transaction. Public for tests of the service in-process.
pub async fn handle(
    bus: &Bus,
    store: &Store,
    engine: &Engine,
    replica: &str,
    req: Request,
) -> Answer {
    let span = match &req {
        Request::Ticket {
            ticket_id,
            execute_agent_id,
            ..
        } => {
            tracing::info_span!("autoexecute_request", ticket_id, agent = execute_agent_id)
        }
        Request::Intent { intent_id, .. } => tracing::info_span!("execute_intent", intent_id),
    };
    match run(bus, store, engine, replica, req).instrument(span).await {
        Ok(a) => a,
        Err(e) => engine_answer(e),
    }
}

async fn run(
    bus: &Bus,
    store: &Store,
    engine: &Engine,
    replica: &str,
    req: Request,
) -> Result<Answer, EngineError> {
    let key = format!("request:{}", uuid::Uuid::new_v4());
    let mut tx = store.begin().await?;
    match req {
        Request::Ticket {
            ticket_id,
            execute_agent_id,
            allow_multiple_intents,
            allow_with_replies,
            user_id,
        } => {
            let Some(facts) = execution::lock_facts(&mut tx, ticket_id).await? else {
                return Ok(problem(
                    404,
                    "ticketId",
                    format!("ticket {ticket_id} not found"),
                ));
            };
            let relax = Relax {
                multiple_intents: allow_multiple_intents,
                with_replies: allow_with_replies,
            };
            let (verdict, prepared) = engine
                .decide(&mut tx, &facts, execute_agent_id, relax)
                .await?;
            let intent_id = match verdict {
                Verdict::Stop { gate, reason } => {
                    let outcome = json!({"result": "rejected", "gate": gate, "reason": reason,
                                         "request": "autoexecute", "executeAgentId": execute_agent_id,
                                         "userId": user_id});
                    record_activity(&mut tx, &key, ticket_id, replica, &outcome).await?;
                    tx.commit()
                        .await
                        .map_err(switchyard_store::StoreError::from)?;
                    return Ok(answer(
                        200,
                        json!({"success": false, "executed": false, "ticketId": ticket_id,
                               "gate": gate, "reason": reason}),
                    ));
                }
                Verdict::Pass { intent_id } => intent_id,
            };
            let Some(p) = prepared.iter().find(|p| p.intent.id == intent_id) else {
                return Ok(problem(
                    409,
                    "executeAgentId",
                    format!("intent {intent_id} vanished"),
                ));
            };
            let mode = ExecMode {
                dark: true,
                inform_customer: true,
                dry_run: false,
                action: None,
                actor: format!("service:autoexecute@{replica}"),
                user_id,
            };
            let done = engine.execute(&mut tx, &facts, p, &mode, None).await?;
            let outcome = json!({"result": "executed", "request": "autoexecute", "intentId": done.intent_id,
                                 "aiAgentId": done.ai_agent_id, "code": done.code, "action": done.action,
                                 "replyMessageId": done.reply.as_ref().map(|r| r.id),
                                 "ticketClosed": done.ticket_closed, "userId": user_id});
            record_activity(&mut tx, &key, ticket_id, replica, &outcome).await?;
            tx.commit()
                .await
                .map_err(switchyard_store::StoreError::from)?;
            publish_after_commit(bus, &key, ticket_id, std::slice::from_ref(&done)).await;
            Ok(answer(
                200,
                json!({"success": true, "executed": true, "ticketId": ticket_id, "intentId": done.intent_id,
                       "aiAgentId": done.ai_agent_id, "code": done.code, "outcome": done.outcome}),
            ))
        }
        Request::Intent {
            intent_id,
            data,
            dry_run,
            inform_customer,
            user_id,
        } => {
            let Some(intent) = execution::intent(&mut tx, intent_id).await? else {
                return Ok(problem(404, "id", format!("intent {intent_id} not found")));
            };
            let ticket_id = intent.ticket_id;
            let Some(facts) = execution::lock_facts(&mut tx, ticket_id).await? else {
                return Ok(problem(
                    404,
                    "ticketId",
                    format!("ticket {ticket_id} not found"),
                ));
            };
            // Re-read under the ticket's lock: a concurrent execution may have finished it.
            let intent = execution::intent(&mut tx, intent_id)
                .await?
                .ok_or_else(|| {
                    switchyard_store::StoreError::NotFound(format!("intent {intent_id}"))
                })?;
            if !matches!(intent.status.as_str(), "ready" | "preview" | "invalidated") {
                return Ok(problem(
                    409,
                    "id",
                    format!(
                        "intent {intent_id} is {} and cannot be executed again",
                        intent.status
                    ),
                ));
            }
            let p = engine.prepare(&mut tx, &facts, intent).await?;
            let mode = ExecMode {
                dark: false,
                inform_customer,
                dry_run,
                action: None,
                actor: format!("user:{user_id}"),
                user_id,
            };
            let done = engine
                .execute(&mut tx, &facts, &p, &mode, data.as_ref())
                .await?;
            let body = json!({"success": true, "dryRun": dry_run, "intentId": intent_id, "ticketId": ticket_id,
                              "code": done.code, "action": done.action, "options": p.interaction.options,
                              "infos": p.interaction.infos, "outcome": done.outcome});
            if dry_run {
                return Ok(answer(200, body));
            }
            let outcome = json!({"result": "executed", "request": "intentExecute", "intentId": intent_id,
                                 "code": done.code, "action": done.action, "userId": user_id,
                                 "replyMessageId": done.reply.as_ref().map(|r| r.id),
                                 "ticketClosed": done.ticket_closed});
            record_activity(&mut tx, &key, ticket_id, replica, &outcome).await?;
            tx.commit()
                .await
                .map_err(switchyard_store::StoreError::from)?;
            publish_after_commit(bus, &key, ticket_id, std::slice::from_ref(&done)).await;
            Ok(answer(200, body))
        }
    }
}
