//! An optional large language model for the cases the offline detector is unsure about. Any
//! server speaking the OpenAI-compatible chat API with JSON output will do (a local Ollama or
//! vLLM, a hosted one). Off unless `LLM_BASE_URL` is set; the offline path never needs it, and a
//! failing or slow model only means the offline decision stands.
//!
//! Environment: `LLM_BASE_URL` (e.g. `http://127.0.0.1:11434/v1`), `LLM_MODEL`, `LLM_API_KEY`
//! (sent as a bearer token, never logged), `LLM_TIMEOUT_MS` (default 10000) and
//! `LLM_UNSURE_BAND` (default `0.2,0.8`: agents whose confidence lies in it are asked about).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_domain::AiAgent;

use crate::analysis::Scored;

#[derive(Clone)]
pub struct Llm {
    http: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
    band: (f32, f32),
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of every log line.
        f.debug_struct("Llm")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("band", &self.band)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("LLM configuration: {0}")]
    Config(String),
    #[error("LLM request: {0}")]
    Request(#[from] reqwest::Error),
    #[error("LLM answer: {0}")]
    Answer(String),
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Llm {
    /// The configured model, or `None` when `LLM_BASE_URL` is not set.
    pub fn from_env() -> Result<Option<Llm>, LlmError> {
        let Some(base) = env("LLM_BASE_URL") else {
            return Ok(None);
        };
        let timeout: u64 = env("LLM_TIMEOUT_MS")
            .map(|v| {
                v.parse()
                    .map_err(|_| LlmError::Config("LLM_TIMEOUT_MS must be milliseconds".into()))
            })
            .transpose()?
            .unwrap_or(10_000);
        let band = match env("LLM_UNSURE_BAND") {
            Some(v) => {
                let parts: Vec<f32> = v.split(',').filter_map(|p| p.trim().parse().ok()).collect();
                match parts.as_slice() {
                    [lo, hi] if lo <= hi => (*lo, *hi),
                    _ => return Err(LlmError::Config("LLM_UNSURE_BAND must be low,high".into())),
                }
            }
            None => (0.2, 0.8),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(timeout))
            .build()?;
        Ok(Some(Llm {
            http,
            url: format!("{}/chat/completions", base.trim_end_matches('/')),
            model: env("LLM_MODEL").unwrap_or_else(|| "default".to_owned()),
            api_key: env("LLM_API_KEY"),
            band,
        }))
    }

    /// The agents the offline detector is unsure about.
    pub fn unsure<'a>(&self, scores: &'a [Scored]) -> Vec<&'a Scored> {
        scores
            .iter()
            .filter(|s| s.confidence >= self.band.0 && s.confidence <= self.band.1)
            .collect()
    }

    /// Asks the model which of the unsure agents the message wants, and settles them in
    /// `scores`. Agents outside the band keep the offline decision.
    pub async fn settle(
        &self,
        agents: &[AiAgent],
        scores: &mut [Scored],
        subject: &str,
        body: &str,
    ) -> Result<(), LlmError> {
        let unsure: Vec<String> = self.unsure(scores).iter().map(|s| s.slug.clone()).collect();
        if unsure.is_empty() {
            return Ok(());
        }
        let catalogue: Vec<Value> = agents
            .iter()
            .filter(|a| unsure.contains(&a.slug))
            .map(|a| json!({"slug": a.slug, "name": a.name, "description": a.description}))
            .collect();
        let request = json!({
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": "You classify customer mails to an energy utility. \
                    Given candidate request types, answer with JSON {\"intents\": [slugs]} listing \
                    every candidate the customer actually asks for in this mail (none if none). \
                    Quoted earlier mails and signatures do not count."},
                {"role": "user", "content": json!({"candidates": catalogue, "subject": subject, "body": body}).to_string()},
            ],
        });
        let mut req = self.http.post(&self.url).json(&request);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let answer: Value = req.send().await?.error_for_status()?.json().await?;
        let chosen = parse_answer(&answer)?;
        for s in scores.iter_mut().filter(|s| unsure.contains(&s.slug)) {
            s.detected = chosen.iter().any(|c| c == &s.slug);
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Choice {
    intents: Vec<String>,
}

/// The slugs out of a chat completion; the content may come wrapped in a Markdown fence.
pub fn parse_answer(answer: &Value) -> Result<Vec<String>, LlmError> {
    let content = answer
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| LlmError::Answer("no choices[0].message.content".into()))?;
    let trimmed = content
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    let choice: Choice = serde_json::from_str(trimmed)
        .map_err(|e| LlmError::Answer(format!("not the asked JSON: {e}")))?;
    Ok(choice.intents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_and_without_fences() -> Result<(), LlmError> {
        let plain =
            json!({"choices": [{"message": {"content": "{\"intents\": [\"relocation\"]}"}}]});
        assert_eq!(parse_answer(&plain)?, vec!["relocation"]);
        let fenced =
            json!({"choices": [{"message": {"content": "```json\n{\"intents\": []}\n```"}}]});
        assert!(parse_answer(&fenced)?.is_empty());
        assert!(parse_answer(&json!({"choices": []})).is_err());
        assert!(parse_answer(&json!({"choices": [{"message": {"content": "yes"}}]})).is_err());
        Ok(())
    }
}
