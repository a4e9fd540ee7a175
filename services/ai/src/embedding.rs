//! The production detector: the few-shot embedding model of `switchyard-intents` over the
//! agents' descriptions and detection examples.

use std::sync::{Arc, Mutex};

use switchyard_domain::AiAgent;
use switchyard_intents::{AgentSpec, Encoder, IntentModel};

use crate::analysis::{Detector, Scored};
use crate::DetectorBuilder;

struct EmbeddingDetector {
    model: Arc<IntentModel>,
    rules: KeywordRules,
}

impl Detector for EmbeddingDetector {
    fn detect(&self, subject: &str, body: &str) -> Result<Vec<Scored>, String> {
        let detection = self
            .model
            .detect(subject, body)
            .map_err(|e| e.to_string())?;
        let mut scores: Vec<Scored> = detection
            .agents
            .into_iter()
            .map(|a| Scored {
                slug: a.key,
                confidence: a.confidence,
                detected: a.detected,
                evidence: a.evidence.into_iter().collect(),
            })
            .collect();
        self.rules.apply(&mut scores, subject, body);
        Ok(scores)
    }
}

/// Confidence of an agent whose keyword matched: sure enough to act on, below a perfect 1.
const KEYWORD_CONFIDENCE: f32 = 0.9;

/// An agent's `settings.detectionDetails.keywords`: case-insensitive regular expressions that
/// make it apply whatever the embedding says, as the reference product's condition-matched
/// agents always run. For phrases that are unambiguous in the operator's domain.
/// `excludeKeywords` do the opposite: the agent does not apply to a message they match
/// ("Newsletter kündigen" is no contract cancellation), unless one of its keywords matched too.
#[derive(Default)]
pub struct KeywordRules(Vec<AgentRules>);

struct AgentRules {
    slug: String,
    keywords: Vec<regex::Regex>,
    exclude: Vec<regex::Regex>,
}

fn patterns(agent: &AiAgent, field: &str) -> Vec<regex::Regex> {
    agent
        .settings
        .detection_details
        .extra
        .get(field)
        .and_then(serde_json::Value::as_array)
        .map(|k| {
            k.iter()
                .filter_map(|p| p.as_str())
                // The API validates them; a bad one is skipped, not fatal.
                .filter_map(|p| regex::Regex::new(&format!("(?i){p}")).ok())
                .collect()
        })
        .unwrap_or_default()
}

impl KeywordRules {
    pub fn new(agents: &[AiAgent]) -> Self {
        KeywordRules(
            agents
                .iter()
                .map(|a| AgentRules {
                    slug: a.slug.clone(),
                    keywords: patterns(a, "keywords"),
                    exclude: patterns(a, "excludeKeywords"),
                })
                .filter(|r| !r.keywords.is_empty() || !r.exclude.is_empty())
                .collect(),
        )
    }

    /// Raises the agents whose keywords occur in the message, with the sentence as evidence;
    /// drops those an exclusion matches.
    pub fn apply(&self, scores: &mut Vec<Scored>, subject: &str, body: &str) {
        let text = format!("{subject}\n{body}");
        for rules in &self.0 {
            let slug = &rules.slug;
            let Some(m) = rules.keywords.iter().find_map(|p| p.find(&text)) else {
                if rules.exclude.iter().any(|p| p.is_match(&text)) {
                    for s in scores.iter_mut().filter(|s| &s.slug == slug) {
                        s.detected = false;
                        s.confidence = s.confidence.min(0.49);
                    }
                }
                continue;
            };
            let start = text[..m.start()]
                .rfind(['.', '!', '?', '\n'])
                .map_or(0, |i| i + 1);
            let end = text[m.end()..]
                .find(['.', '!', '?', '\n'])
                .map_or(text.len(), |i| m.end() + i + 1);
            let sentence = text[start..end.min(text.len())].trim().to_owned();
            match scores.iter_mut().find(|s| &s.slug == slug) {
                Some(s) => {
                    s.confidence = s.confidence.max(KEYWORD_CONFIDENCE);
                    s.detected = true;
                    if !s.evidence.contains(&sentence) {
                        s.evidence.push(sentence);
                    }
                }
                None => scores.push(Scored {
                    slug: slug.clone(),
                    confidence: KEYWORD_CONFIDENCE,
                    detected: true,
                    evidence: vec![sentence],
                }),
            }
        }
        scores.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    }
}

fn spec(agent: &AiAgent) -> AgentSpec {
    AgentSpec {
        key: agent.slug.clone(),
        description: agent.description.clone(),
        examples: agent.settings.detection_details.examples.clone(),
    }
}

/// Loads the encoder once (MODELS_DIR) and builds a model per agent set; the last model is
/// kept so a rebuild after one agent changed embeds only that agent's examples.
pub fn builder() -> Result<DetectorBuilder, switchyard_intents::Error> {
    let encoder = Arc::new(Encoder::from_env()?);
    let last: Arc<Mutex<Option<Built>>> = Arc::new(Mutex::new(None));
    Ok(Arc::new(move |agents: &[AiAgent]| {
        let previous = last.lock().ok().and_then(|l| l.clone());
        // The periodic reload finds the same agents most of the time: nothing to rebuild.
        if let Some(p) = previous.as_ref().filter(|p| p.agents == agents) {
            return Ok(p.detector.clone());
        }
        let specs: Vec<AgentSpec> = agents.iter().map(spec).collect();
        let model = match previous {
            Some(p) => p.model.rebuild(&specs),
            None => IntentModel::build(encoder.clone(), &specs),
        }
        .map_err(|e| e.to_string())?;
        let model = Arc::new(model);
        let detector: Arc<dyn Detector> = Arc::new(EmbeddingDetector {
            model: model.clone(),
            rules: KeywordRules::new(agents),
        });
        if let Ok(mut l) = last.lock() {
            *l = Some(Built {
                agents: agents.to_vec(),
                model,
                detector: detector.clone(),
            });
        }
        Ok(detector)
    }))
}

/// The last agent set and what was built from it.
#[derive(Clone)]
struct Built {
    agents: Vec<AiAgent>,
    model: Arc<IntentModel>,
    detector: Arc<dyn Detector>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(slug: &str, description: &str, examples: &[&str]) -> AiAgent {
        let mut a: AiAgent =
            serde_json::from_value(serde_json::json!({"name": slug, "slug": slug}))
                .unwrap_or_else(|e| panic!("{e}"));
        a.description = description.to_owned();
        a.settings.detection_details.examples = examples.iter().map(|s| s.to_string()).collect();
        a
    }

    /// Needs the model (deploy/local/fetch-models; tests/run fetches it).
    #[test]
    fn an_operators_agent_with_a_dozen_examples_is_detected() -> Result<(), String> {
        let build = builder().map_err(|e| e.to_string())?;
        let mut agents: Vec<AiAgent> = serde_json::from_str(include_str!(
            "../../../shared/store/defaults/ai_agents.json"
        ))
        .map_err(|e| e.to_string())?;
        agents.push(agent(
            "solar_feed_in",
            "Der Kunde möchte Strom aus seiner Photovoltaikanlage einspeisen oder eine Solaranlage anmelden.",
            &[
                "Ich möchte meine Solaranlage anmelden.",
                "Wir haben eine PV-Anlage installiert und wollen einspeisen.",
                "Wie bekomme ich eine Einspeisevergütung?",
                "Anmeldung einer Photovoltaikanlage",
                "Ich speise Strom aus meiner Solaranlage ins Netz ein.",
                "Balkonkraftwerk anmelden",
                "I installed solar panels and want to feed electricity into the grid.",
                "How do I register my photovoltaic system?",
                "Feed-in tariff for my rooftop solar",
                "We want to sell surplus solar power.",
                "Our new PV system needs to be registered with you.",
                "Ich habe ein Balkonkraftwerk und möchte es melden.",
            ],
        ));
        let detector = build(&agents)?;
        let scores = detector.detect(
            "Solaranlage",
            "Guten Tag, ich habe eine Photovoltaikanlage auf dem Dach installiert und möchte den überschüssigen Strom einspeisen. Wie melde ich die Einspeisung an?",
        )?;
        let solar = scores.iter().find(|s| s.slug == "solar_feed_in");
        assert!(solar.is_some_and(|s| s.detected), "{scores:#?}");
        let seed = detector.detect(
            "Zählerstand und Umzug",
            "könnten Sie bitte den beiliegenden Zählerstand meines Zählers in Ihr System eintragen und mir eine Zwischenrechnung zukommen lassen? Außerdem würde ich gerne zu meiner neuen Adresse Hugo-Junkers-Str. 5 in 82031 Grünwald wechseln. Ich ziehe nächsten Donnerstag ein. Können Sie meinen alten Vertrag zum 1. November für mich kündigen?",
        )?;
        for slug in ["meter_reading", "relocation"] {
            assert!(
                seed.iter().any(|s| s.slug == slug && s.detected),
                "{slug}: {seed:#?}"
            );
        }
        Ok(())
    }
}
