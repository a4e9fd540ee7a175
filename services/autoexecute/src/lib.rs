//! The autoexecute stage: decides whether a ticket is answered without a person (the
//! dark-processing gates, in the reference product's order) and executes AI agents — in the
//! pipeline, on a schedule (a delay in business hours), and on request of the API
//! (`POST /ticket/{id}/autoexecute`, `POST /intent/{id}/execute`, answered over NATS).
//! Every decision lands on the ticket's activity with the gate that stopped it.

pub mod actions;
pub mod engine;
pub mod gates;
pub mod rpc;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_bus::Bus;
use switchyard_domain::{AiSupportLevel, Envelope, Stage, ENVELOPE_VERSION};
use switchyard_stage::{
    envelope_key, EffectMode, StageCx, StageError, StageHandler, StageOutput, WorkKey,
};
use switchyard_store::execution::{self, TicketFacts};
use switchyard_store::tickets::TicketPatch;
use switchyard_store::{stage_runs, PgConnection, Store};

pub use engine::{Automation, Engine, ExecMode, Executed, ScriptRunner};
use gates::{Relax, Verdict};

pub struct Autoexecute {
    engine: Arc<Engine>,
}

impl Autoexecute {
    pub fn new(engine: Arc<Engine>) -> Self {
        Autoexecute { engine }
    }
}

impl From<engine::EngineError> for StageError {
    fn from(e: engine::EngineError) -> Self {
        if e.is_transient() {
            StageError::Transient(e.to_string())
        } else {
            StageError::Permanent(e.to_string())
        }
    }
}

/// The business calendar of the delay (validated when the setting was saved).
async fn delay_until(
    engine: &Engine,
    facts: &TicketFacts,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, StageError> {
    if !engine
        .settings
        .get_bool("autoProcessingDelayEnabled")
        .await?
    {
        return Ok(None);
    }
    let hours = engine.settings.get_f64("autoProcessingDelay").await?;
    if hours <= 0.0 {
        return Ok(None);
    }
    let cal: switchyard_calendar::BusinessCalendar =
        serde_json::from_value(engine.settings.get("businessHours").await?)
            .map_err(StageError::permanent)?;
    let from = facts
        .last_customer_message_at
        .unwrap_or_else(chrono::Utc::now);
    let at = cal
        .add_business_hours(from, hours)
        .map_err(StageError::permanent)?;
    Ok((at > chrono::Utc::now()).then_some(at))
}

/// What dark processing did with one ticket.
pub struct DarkResult {
    pub outcome: Value,
    pub executed: Option<Executed>,
}

/// The gates and, when they pass for an agent that may run at once, the execution. Used by the
/// pipeline stage and by the schedule.
pub async fn dark_process(
    engine: &Engine,
    conn: &mut PgConnection,
    facts: &TicketFacts,
    actor: &str,
    apply: bool,
    scheduled: bool,
) -> Result<DarkResult, StageError> {
    let (verdict, prepared) = engine.decide(conn, facts, None, Relax::default()).await?;
    if apply {
        for p in &prepared {
            let options = serde_json::to_value(&p.interaction.options).unwrap_or_default();
            let infos = serde_json::to_value(&p.interaction.infos).unwrap_or_default();
            execution::set_options(conn, p.intent.id, &options, &infos).await?;
        }
    }
    let candidates: Vec<_> = prepared.iter().map(|p| &p.candidate).collect();
    let intent_id = match verdict {
        Verdict::Stop { gate, reason } => {
            return Ok(DarkResult {
                outcome: json!({"result": "handedToHuman", "gate": gate, "reason": reason, "candidates": candidates}),
                executed: None,
            })
        }
        Verdict::Pass { intent_id } => intent_id,
    };
    let Some(p) = prepared.iter().find(|p| p.intent.id == intent_id) else {
        return Err(StageError::Permanent(format!(
            "intent {intent_id} vanished"
        )));
    };
    let Some(agent) = &p.agent else {
        return Err(StageError::Permanent(format!(
            "intent {intent_id} has no agent"
        )));
    };
    match engine.automation(agent).await? {
        Automation::Approval => {
            return Ok(DarkResult {
                outcome: json!({"result": "awaitingApproval", "gate": "approval", "intentId": intent_id,
                                "reason": format!("{} needs a one-click approval (manualAiAgents)", agent.slug),
                                "candidates": candidates}),
                executed: None,
            })
        }
        Automation::Manual => {
            return Ok(DarkResult {
                outcome: json!({"result": "autoProcessingPossible", "gate": "immediateAiAgents", "intentId": intent_id,
                                "reason": format!("{} may be auto-processed, triggered manually (not in immediateAiAgents)", agent.slug),
                                "candidates": candidates}),
                executed: None,
            })
        }
        Automation::Immediate => {}
    }
    if !scheduled {
        if let Some(at) = delay_until(engine, facts).await? {
            if apply {
                execution::set_auto_execute_at(conn, facts.id, Some(at)).await?;
            }
            return Ok(DarkResult {
                outcome: json!({"result": "scheduled", "intentId": intent_id, "autoExecuteAt": at.to_rfc3339(),
                                "candidates": candidates}),
                executed: None,
            });
        }
    }
    let mode = ExecMode {
        dark: true,
        inform_customer: true,
        dry_run: !apply,
        action: None,
        actor: actor.to_owned(),
        user_id: 0,
    };
    let done = engine.execute(conn, facts, p, &mode, None).await?;
    Ok(DarkResult {
        outcome: json!({"result": if apply { "executed" } else { "wouldExecute" }, "intentId": intent_id,
                        "aiAgentId": p.intent.ai_agent_id, "code": p.intent.code, "action": done.action,
                        "replyMessageId": done.reply.as_ref().map(|r| r.id), "ticketClosed": done.ticket_closed}),
        executed: Some(done),
    })
}

impl StageHandler for Autoexecute {
    const STAGE: Stage = Stage::Autoexecute;
    type Input = Envelope;

    fn key(input: &Envelope) -> WorkKey {
        envelope_key(input)
    }

    async fn process(&self, cx: &mut StageCx, input: &Envelope) -> Result<StageOutput, StageError> {
        let (ticket_id, message_id) = (input.ticket_id, input.message_id);
        let apply = *cx.mode() == EffectMode::Apply;
        let facts = execution::lock_facts(cx.conn(), ticket_id)
            .await?
            .ok_or_else(|| StageError::Permanent(format!("ticket {ticket_id} does not exist")))?;
        let actor = cx.actor().to_owned();
        let result = dark_process(&self.engine, cx.conn(), &facts, &actor, apply, false).await?;
        let mut next = None;
        match &result.executed {
            Some(done) => {
                for (name, data) in &done.events {
                    cx.emit(name, data.clone());
                }
                next = done.reply.as_ref().map(|r| Envelope {
                    v: ENVELOPE_VERSION,
                    ticket_id,
                    message_id: r.id,
                    test_run_id: None,
                    reply: None,
                });
            }
            None => {
                // A closed ticket stays as it is; everything else waits for a person.
                if facts.status == "open" {
                    cx.patch_ticket(
                        ticket_id,
                        &TicketPatch {
                            ai_support_level: Some(AiSupportLevel::Human),
                            ..Default::default()
                        },
                    )
                    .await?;
                }
            }
        }
        tracing::info!(ticket_id, outcome = %result.outcome["result"], gate = %result.outcome["gate"], "autoexecute");
        Ok(StageOutput {
            ticket_id,
            message_id,
            outcome: result.outcome,
            next,
        })
    }
}

/// Publishes what a committed execution owes the bus: the reply for outbound and the events.
/// A reply lost here is found by outbound's sweep of queued replies.
pub async fn publish_after_commit(bus: &Bus, key: &str, ticket_id: i64, done: &[Executed]) {
    for d in done {
        if let Some(r) = &d.reply {
            let env = Envelope {
                v: ENVELOPE_VERSION,
                ticket_id,
                message_id: r.id,
                test_run_id: None,
                reply: None,
            };
            if let Err(e) = bus
                .publish_json("pipeline.reply", &env.msg_id(Stage::Outbound), &env)
                .await
            {
                tracing::warn!(error = %e, ticket_id, "reply not handed to outbound; its sweep will");
            }
        }
        for (name, data) in &d.events {
            let body = json!({"event": name, "ticketId": ticket_id, "data": data});
            let msg_id = format!("{name}:autoexecute:{key}:{}", d.intent_id);
            if let Err(e) = bus
                .publish_json(&format!("events.{name}"), &msg_id, &body)
                .await
            {
                tracing::warn!(error = %e, ticket_id, event = %name, "event not published");
            }
        }
    }
}

/// Records a decision made outside the pipeline on the ticket's activity.
pub async fn record_activity(
    conn: &mut PgConnection,
    key: &str,
    ticket_id: i64,
    replica: &str,
    outcome: &Value,
) -> Result<(), switchyard_store::StoreError> {
    stage_runs::insert_completed(
        conn,
        &stage_runs::MarkerKey {
            stage: Stage::Autoexecute.as_str(),
            input_key: key,
            test_run_key: "",
        },
        &stage_runs::Completion {
            ticket_id: Some(ticket_id),
            replica: replica.to_owned(),
            outcome: outcome.clone(),
            events: json!([]),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

/// Runs scheduled dark processing (a delay in business hours) when it falls due. Several
/// replicas share the work: each locks the due tickets it takes (SKIP LOCKED).
pub async fn run_schedule(
    engine: Arc<Engine>,
    store: Store,
    bus: Bus,
    replica: String,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = schedule_once(&engine, &store, &bus, &replica).await {
            tracing::warn!(error = %e, "scheduled auto-processing failed; next round retries");
        }
        if tokio::time::timeout(every, stop.wait_for(|s| *s))
            .await
            .is_ok()
        {
            return;
        }
    }
}

async fn schedule_once(
    engine: &Engine,
    store: &Store,
    bus: &Bus,
    replica: &str,
) -> anyhow::Result<()> {
    let actor = format!("service:autoexecute@{replica}");
    let mut tx = store.begin().await?;
    let due = execution::due_auto_executions(&mut tx, 20).await?;
    if due.is_empty() {
        return Ok(());
    }
    let mut published = Vec::new();
    for ticket_id in due {
        let key = format!("schedule:{}", uuid::Uuid::new_v4());
        execution::set_auto_execute_at(&mut tx, ticket_id, None).await?;
        let Some(facts) = execution::lock_facts(&mut tx, ticket_id).await? else {
            continue;
        };
        let result = dark_process(engine, &mut tx, &facts, &actor, true, true)
            .await
            .map_err(|e| anyhow::anyhow!("ticket {ticket_id}: {e}"))?;
        record_activity(&mut tx, &key, ticket_id, replica, &result.outcome).await?;
        if let Some(done) = result.executed {
            published.push((key, ticket_id, done));
        }
    }
    tx.commit().await?;
    for (key, ticket_id, done) in published {
        publish_after_commit(bus, &key, ticket_id, std::slice::from_ref(&done)).await;
    }
    Ok(())
}
