//! Deciding and executing: the gates over a ticket's intents, then one intent's two phases, the
//! reply from the agent's response case, and what the seed says follows a dark execution (reply
//! sent, ticket closed, `aiSupportLevel: automated`, intent `executed`). Everything happens in the
//! caller's transaction, under the ticket's row lock, so executions on one ticket run one after
//! the other and an intent is never executed twice.

use serde::Serialize;
use serde_json::{json, Map, Value};
use switchyard_domain::{AiAgent, AiSupportLevel, TicketStatus};
use switchyard_store::execution::{self, ContractFacts, IntentRow, TicketFacts};
use switchyard_store::replies::{self, NewReply, QueuedReply};
use switchyard_store::settings::SettingsCache;
use switchyard_store::tickets::{self, TicketPatch};
use switchyard_store::{ai_agents, PgConnection, StoreError};

use crate::actions::{self, ActionError, Executor, Interaction, Subject};
use crate::gates::{self, Candidate, GateInput, Relax, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("response case: {0}")]
    Agent(#[from] switchyard_agents::AgentError),
}

impl EngineError {
    /// A database hiccup is worth retrying; a refused action or a broken agent is not.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Store(e) | EngineError::Action(ActionError::Store(e)) => e.is_transient(),
            _ => false,
        }
    }
}

/// Runs a script executor (the hooks' sandbox); absent, agents with scripts are not executed.
pub trait ScriptRunner: Send + Sync {
    fn run(&self, code: &str, input: Value) -> Result<Value, String>;
}

/// The hooks' Rhai sandbox runs agents' `sourceCode` executors (called in `spawn_blocking`).
impl ScriptRunner for switchyard_script::Sandbox {
    fn run(&self, code: &str, input: Value) -> Result<Value, String> {
        switchyard_script::Sandbox::run(self, code, input).map_err(|e| e.to_string())
    }
}

pub struct Engine {
    pub settings: SettingsCache,
    pub http: reqwest::Client,
    pub scripts: Option<std::sync::Arc<dyn ScriptRunner>>,
}

/// One ready intent after phase 1.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub intent: IntentRow,
    pub agent: Option<AiAgent>,
    pub executors: Vec<Executor>,
    pub contract: Option<ContractFacts>,
    pub interaction: Interaction,
    pub candidate: Candidate,
}

/// How an execution was asked for.
#[derive(Debug, Clone)]
pub struct ExecMode {
    /// Dark processing (the pipeline, the schedule or the autoexecute endpoint): close and mark
    /// automated afterwards.
    pub dark: bool,
    /// Send the rendered reply (a person may execute without informing the customer).
    pub inform_customer: bool,
    /// Phase 1 and the rendered reply only; nothing is written.
    pub dry_run: bool,
    /// The option to run; absent: the recommended one.
    pub action: Option<String>,
    /// Who executes (audit actor, `service:autoexecute@…` or `user:<id>`).
    pub actor: String,
    /// 0 for the system, as the reference product's `outcome.userId`.
    pub user_id: i64,
}

/// What an execution did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Executed {
    pub intent_id: i64,
    pub ai_agent_id: Option<i64>,
    pub code: String,
    pub action: String,
    /// The intent's `outcome` (reference shape).
    pub outcome: Value,
    #[serde(skip)]
    pub reply: Option<QueuedReply>,
    pub ticket_closed: bool,
    #[serde(skip)]
    pub events: Vec<(String, Value)>,
}

fn as_map(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Whether an agent id or slug is in a settings list.
fn listed(list: &Value, agent: &AiAgent) -> bool {
    list.as_array().is_some_and(|items| {
        items.iter().any(|i| {
            i.as_i64() == Some(agent.id)
                || i.as_str()
                    .is_some_and(|s| s == agent.slug || s == agent.id.to_string())
        })
    })
}

/// How dark processing may run an agent, from the settings (reference levels L4 and L5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Automation {
    /// L5: in `immediateAiAgents`, answered without a person.
    Immediate,
    /// L4: in `manualAiAgents`, prepared and approved by a person with one click.
    Approval,
    /// Neither: a person triggers it (agent assist).
    Manual,
}

impl Engine {
    pub async fn automation(&self, agent: &AiAgent) -> Result<Automation, StoreError> {
        if listed(&self.settings.get("immediateAiAgents").await?, agent) {
            Ok(Automation::Immediate)
        } else if listed(&self.settings.get("manualAiAgents").await?, agent) {
            Ok(Automation::Approval)
        } else {
            Ok(Automation::Manual)
        }
    }

    /// Phase 1 of one intent: its options and whether it may run in the dark.
    pub async fn prepare(
        &self,
        conn: &mut PgConnection,
        facts: &TicketFacts,
        intent: IntentRow,
    ) -> Result<Prepared, EngineError> {
        let agent = match intent.ai_agent_id {
            Some(id) => ai_agents::get_typed(conn, id).await?,
            None => None,
        };
        let contract = match intent.contract_id.or(facts.contract_id) {
            Some(id) => execution::contract_facts(conn, id).await?,
            None => None,
        };
        let data = as_map(&intent.data);
        let mut executors_found = Vec::new();
        let mut interaction = Interaction::default();
        let mut blocked: Option<String> = None;
        match &agent {
            None => blocked = Some("the AI agent no longer exists".into()),
            Some(a) => match actions::executors(a) {
                Ok(ex) => {
                    let subject = Subject {
                        facts,
                        contract: contract.as_ref(),
                        intent: &intent,
                        data: &data,
                    };
                    interaction = actions::phase1(&ex, &subject);
                    if ex.iter().any(|e| matches!(e, Executor::Script { .. }))
                        && self.scripts.is_none()
                    {
                        blocked = Some("script executors are not available in this process".into());
                    }
                    executors_found = ex;
                }
                Err(e) => blocked = Some(e.to_string()),
            },
        }
        let candidate = {
            let reason = if let Some(b) = blocked.clone() {
                Some(b)
            } else if intent.status != "ready" {
                Some(format!("the intent is {}", intent.status))
            } else {
                match (interaction.recommended(), &agent) {
                    (None, _) => Some(
                        interaction
                            .infos
                            .first()
                            .map(|i| i.message.clone())
                            .unwrap_or_else(|| "no option is recommended".into()),
                    ),
                    (Some(action), Some(agent)) => {
                        let mut d = data.clone();
                        d.insert("_action".into(), json!(action));
                        let lang = facts.language_code.as_deref().unwrap_or("de");
                        match switchyard_agents::outcome(agent, &d, lang)? {
                            None => Some("no response case applies".into()),
                            Some(o) if !o.auto_execute => Some(format!(
                                "response case \"{}\" is not auto-executable",
                                o.description
                            )),
                            Some(o) if o.ty == "interaction" => {
                                Some("the response case needs a person (interaction)".into())
                            }
                            Some(_) => None,
                        }
                    }
                    (Some(_), None) => Some("the AI agent no longer exists".into()),
                }
            };
            Candidate {
                intent_id: intent.id,
                ai_agent_id: intent.ai_agent_id,
                code: intent.code.clone(),
                auto_executable: reason.is_none(),
                reason,
            }
        };
        Ok(Prepared {
            intent,
            agent,
            executors: executors_found,
            contract,
            interaction,
            candidate,
        })
    }

    /// The gates over the ticket's ready intents (or only `target`'s).
    pub async fn decide(
        &self,
        conn: &mut PgConnection,
        facts: &TicketFacts,
        target: Option<i64>,
        relax: Relax,
    ) -> Result<(Verdict, Vec<Prepared>), EngineError> {
        let active = execution::active_intents(conn, facts.id).await?;
        let active_count = active.len();
        let mut prepared = Vec::new();
        for intent in active {
            if intent.status != "ready" {
                continue;
            }
            if target.is_some_and(|t| intent.ai_agent_id != Some(t)) {
                continue;
            }
            prepared.push(self.prepare(conn, facts, intent).await?);
        }
        let candidates: Vec<Candidate> = prepared.iter().map(|p| p.candidate.clone()).collect();
        let verdict = gates::evaluate(&GateInput {
            facts,
            active_intents: active_count,
            candidates: &candidates,
            targeted: target.is_some(),
            auto_processing_enabled: self.settings.get_bool("enableAiAutoProcessing").await?,
            relax,
        });
        Ok((verdict, prepared))
    }

    /// Phase 2 and what follows: the chosen action, the reply from the matching response case,
    /// closing and marking the ticket, the intent executed. Nothing is written on a dry run.
    pub async fn execute(
        &self,
        conn: &mut PgConnection,
        facts: &TicketFacts,
        p: &Prepared,
        mode: &ExecMode,
        data_override: Option<&Map<String, Value>>,
    ) -> Result<Executed, EngineError> {
        let agent = p
            .agent
            .as_ref()
            .ok_or_else(|| ActionError::Refused("the AI agent no longer exists".into()))?;
        let mut data = as_map(&p.intent.data);
        if let Some(extra) = data_override {
            for (k, v) in extra {
                data.insert(k.clone(), v.clone());
            }
        }
        let requested = mode
            .action
            .clone()
            .or_else(|| {
                data.get("_action")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .filter(|a| !a.is_empty());
        // A person's override of parameters gets a fresh phase 1.
        let interaction = if data_override.is_some() {
            actions::phase1(
                &p.executors,
                &Subject {
                    facts,
                    contract: p.contract.as_ref(),
                    intent: &p.intent,
                    data: &data,
                },
            )
        } else {
            p.interaction.clone()
        };
        let action = match requested.or_else(|| interaction.recommended().map(str::to_owned)) {
            Some(a) => a,
            None => {
                let why = interaction
                    .infos
                    .first()
                    .map(|i| i.message.clone())
                    .unwrap_or_else(|| "no option is recommended".into());
                return Err(ActionError::Refused(why).into());
            }
        };
        if !interaction.options.iter().any(|o| o.ty == action) {
            return Err(ActionError::Refused(format!(
                "{action} is not an option of {}",
                agent.slug
            ))
            .into());
        }
        data.insert("_action".into(), json!(action));
        let subject = Subject {
            facts,
            contract: p.contract.as_ref(),
            intent: &p.intent,
            data: &data,
        };
        let mut results = Map::new();
        if !mode.dry_run {
            let secret = self
                .settings
                .get("erpSigningSecret")
                .await?
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let metadata = json!({
                "ticketId": facts.id, "contractId": p.contract.as_ref().map(|c| c.id),
                "customerId": facts.customer_id, "channel": facts.channel, "intentId": p.intent.id,
                "userIdOfRequester": mode.user_id,
            });
            for ex in p.executors.iter().filter(|e| e.action() == action) {
                let mut input = Value::Object(data.clone());
                input["_metadata"] = metadata.clone();
                let result = match ex {
                    Executor::Builtin(b) => {
                        actions::run_builtin(conn, *b, &subject, &mode.actor).await?
                    }
                    Executor::ApiCall { request, .. } => {
                        let key = format!("switchyard-intent-{}", p.intent.id);
                        actions::run_api_call(&self.http, request, &input, &secret, &key).await?
                    }
                    Executor::Script { code, .. } => {
                        let runner = self.scripts.clone().ok_or_else(|| {
                            ActionError::Script("no script engine in this process".into())
                        })?;
                        let code = code.clone();
                        tokio::task::spawn_blocking(move || runner.run(&code, input))
                            .await
                            .map_err(|e| ActionError::Script(e.to_string()))?
                            .map_err(ActionError::Script)?
                    }
                };
                let kind = match ex {
                    Executor::Builtin(_) => "builtin",
                    Executor::ApiCall { .. } => "apiCall",
                    Executor::Script { .. } => "sourceCode",
                };
                results.insert(kind.into(), result);
            }
        }
        let mut rendered = data.clone();
        rendered.insert("_result".into(), Value::Object(results.clone()));
        let language = facts.language_code.as_deref().unwrap_or("de");
        let outcome = switchyard_agents::outcome(agent, &rendered, language)?;
        let text = outcome
            .as_ref()
            .filter(|o| {
                matches!(
                    o.ty.as_str(),
                    "textTemplate" | "textTemplateAndClose" | "llm"
                )
            })
            .and_then(|o| o.text.clone())
            .filter(|t| !t.trim().is_empty());
        let closes = outcome
            .as_ref()
            .is_some_and(|o| matches!(o.ty.as_str(), "textTemplateAndClose" | "closeTicket"));
        let send = mode.inform_customer && text.is_some();
        let close = mode.inform_customer && (mode.dark || closes);
        let mut reply = None;
        if !mode.dry_run {
            if let (true, Some(body)) = (send, text.as_deref()) {
                reply = Some(
                    replies::queue(
                        conn,
                        &NewReply {
                            ticket_id: facts.id,
                            intent_id: Some(p.intent.id),
                            body,
                            created_by: &mode.actor,
                        },
                    )
                    .await?,
                );
            }
            let patch = TicketPatch {
                status: close.then_some(TicketStatus::Closed),
                ai_support_level: mode.dark.then_some(AiSupportLevel::Automated),
                ..Default::default()
            };
            tickets::apply_patch(conn, facts.id, &patch, &mode.actor).await?;
        }
        let outcome_json = json!({
            "aiAgentId": p.intent.ai_agent_id,
            "success": true,
            "action": action,
            "messageLocalized": text,
            "message": text,
            "responseCase": outcome.as_ref().map(|o| json!({"index": o.case, "description": o.description, "type": o.ty})),
            "internalData": results,
            "executedAt": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            "userId": mode.user_id,
            "sent": send,
            "ticketClosed": close,
            "recipient": facts.from_addr,
            "txId": reply.as_ref().map(|r| r.id),
            "dryRun": mode.dry_run,
        });
        let mut events = Vec::new();
        if !mode.dry_run {
            execution::mark_executed(
                conn,
                p.intent.id,
                &Value::Object(data.clone()),
                &outcome_json,
                &mode.actor,
            )
            .await?;
            if mode.dark {
                events.push((
                    "AutoProcessIntent".to_owned(),
                    json!({"ticketId": facts.id, "intentId": p.intent.id, "aiAgentId": p.intent.ai_agent_id,
                           "code": p.intent.code, "action": action, "outcome": outcome_json}),
                ));
            }
            events.push((
                "TicketUpdated".to_owned(),
                json!({"ticketId": facts.id, "reason": "intentExecuted", "intentId": p.intent.id,
                       "status": if close { "closed" } else { facts.status.as_str() }}),
            ));
        }
        Ok(Executed {
            intent_id: p.intent.id,
            ai_agent_id: p.intent.ai_agent_id,
            code: p.intent.code.clone(),
            action,
            outcome: outcome_json,
            reply,
            ticket_closed: close,
            events,
        })
    }
}
