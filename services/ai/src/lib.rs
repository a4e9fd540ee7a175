//! The ai stage: reads each inbound message and records what it understood: language,
//! sentiment, spam status, summary, the customer and contract, and the AI agents the customer
//! wants with their parameters (intents). Everything runs offline on the CPU.
//!
//! The agents are data: the detector is rebuilt from them whenever one changes
//! (`events.AiAgentChanged`) and every few seconds, so an operator's new agent is detected by
//! every replica without a restart.

pub mod analysis;
pub mod embedding;
pub mod identify;
pub mod llm;
pub mod preview;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_domain::{AiAgent, Envelope, Sentiment as WireSentiment, Stage};
use switchyard_nlp::identify::identifiers;
use switchyard_nlp::params::Context;
use switchyard_nlp::sentiment::Sentiment;
pub use switchyard_nlp::LanguageDetector;
use switchyard_stage::{envelope_key, StageCx, StageError, StageHandler, StageOutput, WorkKey};
use switchyard_store::intents::NewIntent;
use switchyard_store::reloading::Reloading;
use switchyard_store::settings::SettingsCache;
use switchyard_store::tickets::{self, TicketPatch};
use switchyard_store::{ai_agents, Store};

pub use analysis::{analyze, AttachmentReading, Detector, MessageInput, Scored, Thresholds};

/// Builds a detector for a set of agents (the embedding model in production).
pub type DetectorBuilder =
    Arc<dyn Fn(&[AiAgent]) -> Result<Arc<dyn Detector>, String> + Send + Sync>;

/// The agents and the detector built from them, swapped as one.
pub struct AgentSet {
    pub agents: Vec<AiAgent>,
    pub detector: Arc<dyn Detector>,
}

/// The current agents, reloaded in the background and at once on `events.AiAgentChanged`.
#[derive(Clone)]
pub struct Agents {
    current: Reloading<AgentSet>,
    build: DetectorBuilder,
}

impl Agents {
    pub async fn start(
        store: Store,
        build: DetectorBuilder,
        every: Duration,
    ) -> switchyard_store::Result<Self> {
        let builder = build.clone();
        let current = Reloading::start("ai agents", every, move || {
            let store = store.clone();
            let build = builder.clone();
            async move {
                let mut conn = store.pool().acquire().await?;
                let agents: Vec<AiAgent> = ai_agents::all(&mut conn)
                    .await?
                    .into_iter()
                    .filter(|a| a.active)
                    .collect();
                drop(conn);
                let for_build = agents.clone();
                // Embedding the examples is CPU work: off the async threads.
                let detector = tokio::task::spawn_blocking(move || build(&for_build))
                    .await
                    .map_err(|e| switchyard_store::StoreError::invalid("aiAgents", e.to_string()))?
                    .map_err(|e| switchyard_store::StoreError::invalid("aiAgents", e))?;
                tracing::debug!(agents = agents.len(), "AI agents loaded");
                // What operators (and the demo) watch to know the detector knows every agent.
                metrics::gauge!("switchyard_ai_agents").set(agents.len() as f64);
                Ok(AgentSet { agents, detector })
            }
        })
        .await?;
        Ok(Agents { current, build })
    }

    pub async fn get(&self) -> Arc<AgentSet> {
        self.current.get().await
    }

    pub async fn reload(&self) -> switchyard_store::Result<()> {
        self.current.reload().await
    }

    /// A detector over `agents` (a preview of an unsaved agent), built off the async threads.
    pub async fn build_for(&self, agents: Vec<AiAgent>) -> Result<Arc<dyn Detector>, String> {
        let build = self.build.clone();
        tokio::task::spawn_blocking(move || build(&agents))
            .await
            .map_err(|e| e.to_string())?
    }
}

/// Rebuilds the detector whenever an agent changes anywhere (`events.AiAgentChanged`).
pub async fn follow_changes(
    bus: switchyard_bus::Bus,
    agents: Agents,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    let mut sub = bus
        .client()
        .subscribe(bus.subject("events.AiAgentChanged"))
        .await?;
    loop {
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return Ok(()),
            m = sub.next() => {
                if m.is_none() {
                    return Ok(());
                }
                // Loading defaults changes several agents at once: one rebuild for the burst.
                while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {}
                tracing::info!("an AI agent changed; rebuilding the detector");
                if let Err(e) = agents.reload().await {
                    tracing::warn!(error = %e, "AI agents not reloaded; the periodic reload will retry");
                }
            }
        }
    }
}

/// Reading attachments: the object store they are in, the bounded OCR/PDF lanes, and a pool
/// for showing `inProgress` outside the stage's transaction.
#[derive(Clone)]
pub struct Extraction {
    pub objects: switchyard_objects::Objects,
    pub lanes: Arc<switchyard_attachments::ExtractionPool>,
    pub store: Store,
}

#[derive(Clone)]
pub struct Ai {
    settings: SettingsCache,
    languages: LanguageDetector,
    agents: Agents,
    llm: Option<llm::Llm>,
    extraction: Option<Extraction>,
    /// Detection is CPU-bound: at most one per core at a time, however many messages the stage
    /// has in flight.
    cpu: Arc<tokio::sync::Semaphore>,
}

impl Ai {
    pub fn new(
        settings: SettingsCache,
        agents: Agents,
        llm: Option<llm::Llm>,
        extraction: Option<Extraction>,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ai {
            settings,
            languages: LanguageDetector::default(),
            agents,
            llm,
            extraction,
            cpu: Arc::new(tokio::sync::Semaphore::new(cores)),
        }
    }

    /// Reads the message's photos and PDFs (once; a redelivery finds them done) and returns
    /// the meter readings.
    async fn read_attachments(
        &self,
        cx: &mut StageCx,
        message_id: i64,
    ) -> Result<Vec<AttachmentReading>, StageError> {
        use switchyard_store::extraction;
        let Some(x) = &self.extraction else {
            return Ok(Vec::new());
        };
        let pending = extraction::pending(cx.conn(), message_id).await?;
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        if *cx.mode() == switchyard_stage::EffectMode::Apply {
            // Best effort and never waiting long: the status is for people watching.
            let ids: Vec<i64> = pending.iter().map(|a| a.id).collect();
            if let Ok(Ok(mut c)) =
                tokio::time::timeout(Duration::from_secs(1), x.store.pool().acquire()).await
            {
                let _ = extraction::mark_in_progress(&mut c, &ids).await;
            }
        }
        let mut readings = Vec::new();
        for a in pending {
            let bytes = match x.objects.get(&a.object_key).await {
                Ok(b) => b.to_vec(),
                Err(e) if e.is_transient() => {
                    return Err(StageError::Transient(format!("attachment {}: {e}", a.id)))
                }
                Err(e) => {
                    let info = json!({"error": e.to_string()});
                    cx.finish_extraction(a.id, false, None, Some(&info)).await?;
                    continue;
                }
            };
            if a.is_image() {
                match x.lanes.meter(bytes).await {
                    Ok(Some(r)) => {
                        let data = json!({"meterValue": r.value, "confidence": (r.confidence * 1000.0).round() / 1000.0,
                                          "digits": r.digits, "confident": r.is_confident()});
                        cx.finish_extraction(a.id, true, None, Some(&data)).await?;
                        readings.push(AttachmentReading {
                            attachment_id: a.id,
                            meter_value: r.value,
                            confidence: r.confidence,
                        });
                    }
                    Ok(None) => {
                        let data = json!({"meterValue": null, "confidence": 0.0});
                        cx.finish_extraction(a.id, true, None, Some(&data)).await?;
                    }
                    Err(switchyard_attachments::Error::Busy) => {
                        return Err(StageError::Transient("OCR lane full".into()))
                    }
                    Err(e) => {
                        let info = json!({"error": e.to_string()});
                        cx.finish_extraction(a.id, false, None, Some(&info)).await?;
                    }
                }
            } else if a.is_pdf() {
                match x.lanes.pdf(bytes).await {
                    Ok(text) => {
                        cx.finish_extraction(a.id, true, Some(&Value::String(text)), None)
                            .await?;
                    }
                    Err(switchyard_attachments::Error::Busy) => {
                        return Err(StageError::Transient("PDF lane full".into()))
                    }
                    Err(e) => {
                        let info = json!({"error": e.to_string()});
                        cx.finish_extraction(a.id, false, None, Some(&info)).await?;
                    }
                }
            }
        }
        Ok(readings)
    }

    /// The language of the customer's own words, among the configured ones.
    pub async fn language_of(
        &self,
        subject: &str,
        own_words: &str,
    ) -> switchyard_store::Result<Option<switchyard_nlp::Detected>> {
        let allowed = self.settings.get_strings("languages").await?;
        Ok(self
            .languages
            .detect(&format!("{subject}\n{own_words}"), &allowed))
    }

    pub fn agents(&self) -> &Agents {
        &self.agents
    }
}

fn wire_sentiment(s: Sentiment) -> WireSentiment {
    match s {
        Sentiment::Positive => WireSentiment::Positive,
        Sentiment::Neutral => WireSentiment::Neutral,
        Sentiment::Negative => WireSentiment::Negative,
    }
}

/// Runs the detector off the async threads.
pub async fn detect(
    detector: Arc<dyn Detector>,
    subject: &str,
    body: &str,
) -> Result<Vec<Scored>, StageError> {
    let (subject, body) = (subject.to_owned(), body.to_owned());
    tokio::task::spawn_blocking(move || detector.detect(&subject, &body))
        .await
        .map_err(|e| StageError::Transient(format!("detector task failed: {e}")))?
        .map_err(|e| StageError::Transient(format!("intent detection failed: {e}")))
}

impl StageHandler for Ai {
    const STAGE: Stage = Stage::Ai;
    type Input = Envelope;

    fn key(input: &Envelope) -> WorkKey {
        envelope_key(input)
    }

    async fn process(&self, cx: &mut StageCx, input: &Envelope) -> Result<StageOutput, StageError> {
        let message = tickets::message_text(cx.conn(), input.message_id).await?;
        let threshold = self
            .settings
            .get_f64("meterReadingConfidenceThreshold")
            .await?;
        let subject = message.subject.clone().unwrap_or_default();
        let body = message.body_plain.clone().unwrap_or_default();
        let own = switchyard_nlp::text::own_words(&body);
        let detected = self.language_of(&subject, &own).await?;
        let language = detected
            .as_ref()
            .map_or("de", |d| d.code.as_str())
            .to_owned();

        let readings = self.read_attachments(cx, input.message_id).await?;
        let set = self.agents.get().await;
        let mut scores = {
            let _core = self
                .cpu
                .acquire()
                .await
                .map_err(|e| StageError::Transient(e.to_string()))?;
            detect(set.detector.clone(), &subject, &own).await?
        };
        let mut llm_asked = 0;
        if let Some(llm) = &self.llm {
            llm_asked = llm.unsure(&scores).len();
            if let Err(e) = llm.settle(&set.agents, &mut scores, &subject, &own).await {
                tracing::warn!(error = %e, "LLM not consulted; the offline decision stands");
                llm_asked = 0;
            }
        }
        let analysis = analyze(
            &MessageInput::of(&message, &subject, &body, &language),
            &set.agents,
            &scores,
            &readings,
            Thresholds {
                meter_ocr_confidence: threshold as f32,
            },
        );

        let text = format!("{subject}\n{}", analysis.own_words);
        let ids = identifiers(
            &text,
            &Context {
                reference: analysis::local_date(message.created_at),
                language: &language,
            },
        );
        // A legitimation of 30 or more was confirmed by a person: keep their contract.
        let identified = if message.customer_legitimation >= 30 {
            None
        } else {
            Some(identify::identify(cx.conn(), message.from_addr.as_deref(), &text, &ids).await?)
        };

        let mut patch = TicketPatch {
            sentiment: Some(wire_sentiment(analysis.sentiment)),
            summary: Some(analysis.summary.clone()),
            ..TicketPatch::default()
        };
        if let Some(d) = &detected {
            patch.language = Some(d.name.clone());
            patch.language_code = Some(d.code.clone());
        }
        // A person's spam verdict (manual_*) stands.
        if !message
            .spam_status
            .as_deref()
            .is_some_and(|s| s.starts_with("manual"))
        {
            patch.spam_status = Some(analysis.spam.as_str().to_owned());
        }
        if let Some(id) = &identified {
            if id.contract_id.is_some() || id.customer_id.is_some() {
                patch.contract_id = id.contract_id;
                patch.customer_id = id.customer_id;
                patch.customer_legitimation = Some(id.legitimation);
            }
        }
        cx.patch_ticket(input.ticket_id, &patch).await?;

        let contract_id = identified.as_ref().and_then(|i| i.contract_id);
        for intent in &analysis.intents {
            cx.upsert_intent(
                input.ticket_id,
                input.message_id,
                &NewIntent {
                    ai_agent_id: intent.agent_id,
                    code: intent.slug.clone(),
                    name: intent.name.clone(),
                    confidence: intent.confidence,
                    data: Value::Object(intent.data.clone()),
                    status: intent.status,
                    infos: Value::Array(intent.infos.clone()),
                    contract_id,
                },
            )
            .await?;
        }

        let event = if message.is_first {
            "TicketCreated"
        } else {
            "TicketResponse"
        };
        cx.emit(
            event,
            json!({"ticketId": input.ticket_id, "messageId": input.message_id}),
        );
        let outcome = json!({
            "result": "analyzed",
            "languageCode": detected.as_ref().map(|d| d.code.clone()),
            "sentiment": analysis.sentiment.as_str(),
            "spamStatus": analysis.spam.as_str(),
            "intents": analysis.intents.iter().map(|i| json!({"code": i.slug, "confidence": i.confidence, "status": i.status})).collect::<Vec<_>>(),
            "customerId": identified.as_ref().and_then(|i| i.customer_id),
            "contractId": contract_id,
            "legitimation": identified.as_ref().map(|i| i.legitimation),
            "identifiedBy": identified.as_ref().map(|i| i.how),
            "llmAsked": llm_asked,
        });
        Ok(StageOutput {
            ticket_id: input.ticket_id,
            message_id: input.message_id,
            outcome,
            next: Some(Envelope {
                reply: input.reply.clone().filter(|r| r.after != Stage::Ai),
                ..input.clone()
            }),
        })
    }
}
