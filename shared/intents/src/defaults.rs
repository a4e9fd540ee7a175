//! The default AI agents and the background phrases, shipped as data.
//!
//! The agents live in one file, `shared/store/defaults/ai_agents.json`, which the API's
//! `loadDefaults` installs; the detector needs only slug, description and examples
//! (`settings.detectionDetails.examples`). The background phrases are sentences no agent should
//! take: they teach the model what "none" looks like and are not an agent.

use serde::Deserialize;

use crate::{AgentSpec, Error};

/// The default agents in the API's shape (one file for the API and the detector).
pub const AGENTS_JSON: &str = include_str!("../../store/defaults/ai_agents.json");
/// Phrases that belong to no agent.
pub const BACKGROUND_JSON: &str = include_str!("../defaults/background.json");

/// One default agent, as the detector reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultAgent {
    /// The agent's slug (`meter_reading`, …).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// What the agent is for.
    pub description: String,
    /// Detection phrases (`settings.detectionDetails.examples`).
    pub examples: Vec<String>,
}

impl DefaultAgent {
    /// The detector's view of this agent.
    pub fn spec(&self) -> AgentSpec {
        AgentSpec {
            key: self.slug.clone(),
            description: self.description.clone(),
            examples: self.examples.clone(),
        }
    }
}

#[derive(Deserialize)]
struct ApiAgent {
    slug: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    settings: ApiSettings,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ApiSettings {
    #[serde(default)]
    detection_details: ApiDetection,
}

#[derive(Deserialize, Default)]
struct ApiDetection {
    #[serde(default)]
    examples: Vec<String>,
}

#[derive(Deserialize)]
struct Background {
    background: Vec<String>,
}

/// The default agents, in file order.
pub fn agents() -> Result<Vec<DefaultAgent>, Error> {
    let list: Vec<ApiAgent> = serde_json::from_str(AGENTS_JSON)?;
    Ok(list
        .into_iter()
        .map(|a| DefaultAgent {
            slug: a.slug,
            name: a.name,
            description: a.description,
            examples: a.settings.detection_details.examples,
        })
        .collect())
}

/// The default agents as detector specs.
pub fn specs() -> Result<Vec<AgentSpec>, Error> {
    Ok(agents()?.iter().map(DefaultAgent::spec).collect())
}

/// The detection examples of one default agent (empty for an unknown slug).
pub fn default_examples(slug: &str) -> Result<Vec<String>, Error> {
    Ok(agents()?
        .into_iter()
        .find(|a| a.slug == slug)
        .map(|a| a.examples)
        .unwrap_or_default())
}

/// Phrases that belong to no agent.
pub fn background() -> Result<Vec<String>, Error> {
    Ok(serde_json::from_str::<Background>(BACKGROUND_JSON)?.background)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_with_the_issue_slugs_and_enough_examples() -> Result<(), Error> {
        let agents = agents()?;
        let slugs: Vec<&str> = agents.iter().map(|a| a.slug.as_str()).collect();
        assert_eq!(
            slugs,
            [
                "meter_reading",
                "relocation",
                "cancel_contract",
                "revocation_agent",
                "bank_data_agent",
                "deposit_agent",
                "invoice_question",
                "payment_plan"
            ]
        );
        for a in &agents {
            assert!((20..=40).contains(&a.examples.len()), "{}", a.slug);
            assert!(!a.name.is_empty(), "{}", a.slug);
            assert!(!a.description.is_empty(), "{}", a.slug);
        }
        assert!(background()?.len() >= 20);
        assert_eq!(
            default_examples("relocation")?.len(),
            agents[1].examples.len()
        );
        assert!(default_examples("nope")?.is_empty());
        Ok(())
    }
}
