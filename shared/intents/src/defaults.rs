//! The default AI agents (German and English detection examples) shipped as data.
//!
//! The API's `loadDefaults` creates these agents; the detector needs only slug, description and
//! examples. The background phrases are sentences no agent should take: they teach the model
//! what "none" looks like and are not an agent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AgentSpec, Error};

/// The file itself, for callers that keep their own copy of the agents (the API's seeds).
pub const AGENTS_JSON: &str = include_str!("../defaults/agents.json");

/// One default agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultAgent {
    /// The agent's slug (`meter_reading`, …).
    pub slug: String,
    /// Display name per language code (`de`, `en`).
    pub name: BTreeMap<String, String>,
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

#[derive(Debug, Deserialize)]
struct File {
    agents: Vec<DefaultAgent>,
    background: Vec<String>,
}

fn file() -> Result<File, Error> {
    Ok(serde_json::from_str(AGENTS_JSON)?)
}

/// The default agents, in file order.
pub fn agents() -> Result<Vec<DefaultAgent>, Error> {
    Ok(file()?.agents)
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
    Ok(file()?.background)
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
            assert!(
                a.name.contains_key("de") && a.name.contains_key("en"),
                "{}",
                a.slug
            );
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
