//! Few-shot, multi-label intent detection: which AI agents a customer's mail is for.
//!
//! AI agents are operator data: a key (slug), a description and a dozen example phrases in any
//! language. There is no training step to run: [`IntentModel::build`] embeds the examples
//! (cached by text, so a rebuild after one agent changed only embeds that agent's new phrases)
//! and fits a small head in well under a second, so every `ai` replica can rebuild on
//! `events.AiAgentChanged`.
//!
//! Detection splits a mail into sentences ([`segment`]), scores each sentence against each agent
//! (nearest examples in a multilingual embedding space, a softmax head over the same embeddings,
//! and char n-gram TF-IDF similarity to the examples for domain keywords), and keeps per agent
//! the best sentence. Several agents per mail are normal; when nothing is close enough, none is
//! detected. [`Config::default`] holds the variant and thresholds chosen on the benchmarks
//! described in `README.md` of this crate.

pub mod cpu;
pub mod defaults;
mod head;
mod lexical;
pub mod segment;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
pub use switchyard_embed::{Encoder, Kind};

pub use head::HeadParams;
use head::SoftmaxHead;
use lexical::LexicalIndex;
use segment::Segment;

/// One agent as the detector sees it (the API's AI agent: slug, description and
/// `settings.detectionDetails.examples`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSpec {
    /// The agent's slug, reported back in detections.
    pub key: String,
    /// What the agent is for; used as one more example when [`Config::use_description`] is set.
    pub description: String,
    /// Phrases customers write for this agent, any language.
    pub examples: Vec<String>,
}

/// Why a model could not be built or a mail not be scored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The encoder failed (model missing, engine error).
    #[error(transparent)]
    Embed(#[from] switchyard_embed::Error),
    /// Two agents share a key, so detections would be ambiguous.
    #[error("duplicate agent key {0:?}")]
    DuplicateKey(String),
    /// The shipped default agents do not parse (a build defect, tested).
    #[error("default agents: {0}")]
    Defaults(#[from] serde_json::Error),
}

/// How sentences are scored and when an agent counts as detected.
///
/// A sentence's score for an agent is
/// `knn_weight · (mean cosine to its knn_k nearest examples, or to the prototype when knn_k = 0)
///  + head_weight · (softmax head probability) + lexical_weight · (best char n-gram cosine)`.
/// `confidence = sigmoid((score − threshold) / temperature)`, detected at ≥ 0.5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Nearest examples averaged; 0 scores against the agent's prototype (mean of examples).
    pub knn_k: usize,
    /// Weight of the embedding similarity.
    pub knn_weight: f32,
    /// Softmax head over the embeddings; `None` skips training it.
    pub head: Option<HeadParams>,
    /// Weight of the head's probability.
    pub head_weight: f32,
    /// Weight of the char n-gram TF-IDF similarity.
    pub lexical_weight: f32,
    /// Prefix the examples are embedded with (mails always get "query: ").
    pub example_kind: Kind,
    /// Whether the head also trains on a second view of every example, embedded with the other
    /// prefix ("passage: " when `example_kind` is query) and centred on that view's own mean:
    /// twice the training points for the same phrases, at no cost per mail (the build embeds
    /// every phrase twice and the head trains on twice the samples). Off by default: on
    /// Banking77's dev split it gained 0.2 points, and on the domain corpus's train split it
    /// was no better (README).
    pub second_view: bool,
    /// Whether the agent's description counts as one more example.
    pub use_description: bool,
    /// Whether the whole mail is scored as one more segment (helps two-sentence requests).
    pub whole_text: bool,
    /// Subtracted from a sentence's scores when the whole (short) text is scored too: a short
    /// request is best read whole, and a fragment of it ("I have a question.") must not
    /// outrank the whole text for another agent. A sentence that carries a second request on
    /// its own still clears the threshold. 0 lets every sentence compete equally.
    pub sentence_penalty: f32,
    /// Whether vectors are centred on the mean example vector before comparing: e5 vectors
    /// share a large common direction, and removing it spreads the cosines out.
    pub center: bool,
    /// How strongly a sentence closer to the background ("none") phrases than to an agent is
    /// pushed down: `score −= background_penalty · max(0, background − score)`.
    pub background_penalty: f32,
    /// Score at which confidence is 0.5 (the detection threshold).
    pub threshold: f32,
    /// Slope of the confidence curve around the threshold.
    pub temperature: f32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            knn_k: 3,
            knn_weight: 1.0,
            head: Some(HeadParams::default()),
            head_weight: 0.3,
            lexical_weight: 0.3,
            example_kind: Kind::Query,
            second_view: false,
            use_description: true,
            whole_text: true,
            sentence_penalty: 0.0,
            center: true,
            background_penalty: 1.0,
            threshold: 0.73,
            temperature: 0.08,
        }
    }
}

/// One agent's result for one mail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentDetection {
    /// The agent's key.
    pub key: String,
    /// Calibrated 0..1; 0.5 is the detection threshold.
    pub confidence: f32,
    /// Whether the agent applies to this mail.
    pub detected: bool,
    /// The raw combined score (for tuning and debugging).
    pub score: f32,
    /// The sentence that scored best for this agent.
    pub evidence: Option<String>,
}

/// All agents' results for one mail, best first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Detection {
    /// Every agent, sorted by descending confidence.
    pub agents: Vec<AgentDetection>,
}

impl Detection {
    /// The agents that apply, best first.
    pub fn detected(&self) -> impl Iterator<Item = &AgentDetection> {
        self.agents.iter().filter(|a| a.detected)
    }

    /// The best-scoring agent, detected or not.
    pub fn top(&self) -> Option<&AgentDetection> {
        self.agents.first()
    }
}

/// The whole text is scored as one more segment only for mails of at most this many segments.
/// It is what helps a two- or three-sentence request (Banking77's queries: 82.2 % dev top-1
/// with it, 81.6 % when only two-segment texts get it); in longer mails every request has a
/// sentence of its own, and there it changed no detection on the domain corpus while costing
/// as many tokens as all the sentences together.
pub const MAX_WHOLE_SEGMENTS: usize = 3;

/// A mail's segments and their embeddings: the expensive, model-independent part of detection,
/// so it can run in `spawn_blocking` and be scored against a model rebuilt meanwhile.
#[derive(Debug, Clone)]
pub struct PreparedMail {
    segments: Vec<Segment>,
    /// One unit vector per segment (plus the whole text last, when it was added).
    vectors: Vec<Vec<f32>>,
    /// The whole text, scored last when [`Config::whole_text`] applies.
    whole: String,
}

impl PreparedMail {
    /// The sentences that were scored.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

type Cache = Arc<Mutex<HashMap<(bool, String), Arc<[f32]>>>>;

/// A trained detector for one set of agents. Cheap to share (`Arc`), immutable; rebuild it with
/// [`IntentModel::rebuild`] when agents change.
pub struct IntentModel {
    encoder: Arc<Encoder>,
    config: Config,
    keys: Vec<String>,
    /// Example and description vectors, row-major; `doc_agent` says whose (background = keys.len()).
    docs: Vec<Arc<[f32]>>,
    doc_agent: Vec<usize>,
    /// Normalised mean vector per agent (and the background last, if any).
    prototypes: Vec<Vec<f32>>,
    /// Subtracted from every vector before comparing ([`Config::center`]); zeros otherwise.
    mean: Vec<f32>,
    head: Option<SoftmaxHead>,
    lexical: LexicalIndex,
    has_background: bool,
    background: Vec<String>,
    cache: Cache,
}

impl std::fmt::Debug for IntentModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntentModel")
            .field("agents", &self.keys)
            .field("docs", &self.docs.len())
            .field("config", &self.config)
            .finish()
    }
}

impl IntentModel {
    /// Builds a model with [`Config::default`] and the shipped background ("none") phrases.
    pub fn build(encoder: Arc<Encoder>, agents: &[AgentSpec]) -> Result<Self, Error> {
        let background = defaults::background()?;
        Self::build_with(encoder, agents, Config::default(), &background)
    }

    /// Builds a model with explicit settings and background phrases (sentences that belong to no
    /// agent: thanks, small talk, generic questions), which teach it what "none" looks like.
    pub fn build_with(
        encoder: Arc<Encoder>,
        agents: &[AgentSpec],
        config: Config,
        background: &[String],
    ) -> Result<Self, Error> {
        Self::build_inner(encoder, agents, config, background, Cache::default())
    }

    /// A model for changed agents that reuses this one's embedding cache (only new example
    /// texts are embedded) and settings; entries no agent uses any more are dropped.
    pub fn rebuild(&self, agents: &[AgentSpec]) -> Result<Self, Error> {
        Self::build_inner(
            self.encoder.clone(),
            agents,
            self.config,
            &self.background,
            self.cache.clone(),
        )
    }

    /// The same examples scored with other settings (for benchmarks and tuning).
    pub fn with_config(&self, config: Config, agents: &[AgentSpec]) -> Result<Self, Error> {
        Self::build_inner(
            self.encoder.clone(),
            agents,
            config,
            &self.background,
            self.cache.clone(),
        )
    }

    fn build_inner(
        encoder: Arc<Encoder>,
        agents: &[AgentSpec],
        config: Config,
        background: &[String],
        cache: Cache,
    ) -> Result<Self, Error> {
        let mut keys: Vec<String> = Vec::with_capacity(agents.len());
        for a in agents {
            if keys.contains(&a.key) {
                return Err(Error::DuplicateKey(a.key.clone()));
            }
            keys.push(a.key.clone());
        }
        // (agent index, text) for every example, the description, and the background.
        let mut texts: Vec<(usize, String)> = Vec::new();
        for (i, a) in agents.iter().enumerate() {
            let mut seen = std::collections::HashSet::new();
            let desc = config
                .use_description
                .then(|| a.description.trim())
                .filter(|d| !d.is_empty());
            for t in a.examples.iter().map(|e| e.trim()).chain(desc) {
                if !t.is_empty() && seen.insert(t.to_string()) {
                    texts.push((i, t.to_string()));
                }
            }
        }
        let n_agents = agents.len();
        let has_background = !background.is_empty();
        texts.extend(
            background
                .iter()
                .map(|b| b.trim())
                .filter(|b| !b.is_empty())
                .map(|b| (n_agents, b.to_string())),
        );

        let is_query = config.example_kind == Kind::Query;
        let raw = embed_cached(&encoder, &cache, is_query, &texts)?;

        let dim = encoder.dim();
        let mut mean = vec![0f32; dim];
        if config.center && !raw.is_empty() {
            for v in &raw {
                for (m, x) in mean.iter_mut().zip(v.iter()) {
                    *m += x;
                }
            }
            let n = raw.len() as f32;
            mean.iter_mut().for_each(|m| *m /= n);
        }
        let vectors: Vec<Arc<[f32]>> = raw.iter().map(|v| Arc::from(centered(v, &mean))).collect();
        let groups = n_agents + usize::from(has_background);
        let mut prototypes = vec![vec![0f32; dim]; groups];
        for ((agent, _), v) in texts.iter().zip(&vectors) {
            if let Some(p) = prototypes.get_mut(*agent) {
                for (a, b) in p.iter_mut().zip(v.iter()) {
                    *a += b;
                }
            }
        }
        for p in &mut prototypes {
            normalize(p);
        }
        // The other prefix's view of the same texts, for the head only (see Config::second_view).
        let second: Vec<Vec<f32>> = if config.second_view && config.head.is_some() {
            let raw2 = embed_cached(&encoder, &cache, !is_query, &texts)?;
            let mut mean2 = vec![0f32; dim];
            if config.center && !raw2.is_empty() {
                for v in &raw2 {
                    for (m, x) in mean2.iter_mut().zip(v.iter()) {
                        *m += x;
                    }
                }
                let n = raw2.len() as f32;
                mean2.iter_mut().for_each(|m| *m /= n);
            }
            raw2.iter().map(|v| centered(v, &mean2)).collect()
        } else {
            Vec::new()
        };
        let head = config.head.filter(|_| groups >= 2).map(|params| {
            let samples: Vec<(usize, &[f32])> = texts
                .iter()
                .zip(&vectors)
                .map(|((a, _), v)| (*a, &v[..]))
                .chain(texts.iter().zip(&second).map(|((a, _), v)| (*a, &v[..])))
                .collect();
            SoftmaxHead::train(&samples, groups, dim, params)
        });
        let lexical_docs: Vec<(usize, &str)> = texts
            .iter()
            .filter(|(a, _)| *a < n_agents)
            .map(|(a, t)| (*a, t.as_str()))
            .collect();
        let lexical = LexicalIndex::build(&lexical_docs);
        Ok(Self {
            encoder,
            config,
            keys,
            doc_agent: texts.iter().map(|(a, _)| *a).collect(),
            docs: vectors,
            prototypes,
            mean,
            head,
            lexical,
            has_background,
            background: background.to_vec(),
            cache,
        })
    }

    /// The agents' keys, in build order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The settings this model was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The texts [`IntentModel::prepare`] embeds for a mail (after the digit shortening): the
    /// segments, then the whole text when it is scored too. For benchmarks (token counts).
    pub fn embedding_texts(&self, subject: &str, body: &str) -> Vec<String> {
        self.split(subject, body).2
    }

    /// The segments, the whole text, and what is embedded: the segments plus the whole text
    /// when [`Config::whole_text`] is set and the mail has two or three segments
    /// ([`MAX_WHOLE_SEGMENTS`]) within 300 bytes.
    fn split(&self, subject: &str, body: &str) -> (Vec<Segment>, String, Vec<String>) {
        let segments = segment::segments(subject, body);
        let whole = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let has_whole = self.config.whole_text
            && (2..=MAX_WHOLE_SEGMENTS).contains(&segments.len())
            && whole.len() <= 300;
        let mut texts: Vec<String> = segments.iter().map(|s| for_embedding(&s.text)).collect();
        if has_whole {
            texts.push(for_embedding(&whole));
        }
        (segments, whole, texts)
    }

    /// Splits and embeds a mail on the calling thread (one core; the expensive part).
    pub fn prepare(&self, subject: &str, body: &str) -> Result<PreparedMail, Error> {
        let (segments, whole, texts) = self.split(subject, body);
        let vectors = self
            .encoder
            .embed_batch_on_this_thread(&texts, Kind::Query)?;
        Ok(PreparedMail {
            segments,
            vectors,
            whole,
        })
    }

    /// Detects the agents of a mail: [`IntentModel::prepare`] then [`IntentModel::score`].
    pub fn detect(&self, subject: &str, body: &str) -> Result<Detection, Error> {
        let prepared = self.prepare(subject, body)?;
        Ok(self.score(&prepared))
    }

    /// Scores a prepared mail against every agent (cheap: no embedding).
    pub fn score(&self, mail: &PreparedMail) -> Detection {
        let n = self.keys.len();
        let mut best = vec![f32::NEG_INFINITY; n];
        let mut best_sentence: Vec<Option<usize>> = vec![None; n];
        let mut best_any_sentence = vec![(f32::NEG_INFINITY, None::<usize>); n];
        for (i, v) in mail.vectors.iter().enumerate() {
            if i >= mail.segments.len() && !self.config.whole_text {
                break;
            }
            let text = match mail.segments.get(i) {
                Some(s) => s.text.as_str(),
                None => mail.whole.as_str(),
            };
            let mut scores = self.segment_scores(&centered(v, &self.mean), text);
            let is_sentence = i < mail.segments.len();
            let has_whole = self.config.whole_text && mail.vectors.len() > mail.segments.len();
            if is_sentence && has_whole && self.config.sentence_penalty != 0.0 {
                scores
                    .iter_mut()
                    .for_each(|s| *s -= self.config.sentence_penalty);
            }
            for (a, s) in scores.into_iter().enumerate().take(n) {
                if s > best[a] {
                    best[a] = s;
                    best_sentence[a] = is_sentence.then_some(i);
                }
                if is_sentence && s > best_any_sentence[a].0 {
                    best_any_sentence[a] = (s, Some(i));
                }
            }
        }
        let mut agents: Vec<AgentDetection> = self
            .keys
            .iter()
            .enumerate()
            .map(|(a, key)| {
                let score = if best[a].is_finite() { best[a] } else { 0.0 };
                let confidence = sigmoid((score - self.config.threshold) / self.config.temperature);
                let evidence = best_sentence[a]
                    .or(best_any_sentence[a].1)
                    .and_then(|i| mail.segments.get(i))
                    .map(|s| s.text.clone());
                AgentDetection {
                    key: key.clone(),
                    confidence,
                    detected: confidence >= 0.5 && best[a].is_finite(),
                    score,
                    evidence,
                }
            })
            .collect();
        agents.sort_by(|a, b| b.score.total_cmp(&a.score));
        Detection { agents }
    }

    /// Combined score of one segment for every agent (background excluded).
    fn segment_scores(&self, v: &[f32], text: &str) -> Vec<f32> {
        let n = self.keys.len();
        let groups = self.prototypes.len();
        let c = &self.config;
        let mut sim = vec![0f32; groups];
        if c.knn_weight != 0.0 || c.background_penalty != 0.0 {
            if c.knn_k == 0 {
                for (g, p) in self.prototypes.iter().enumerate() {
                    sim[g] = dot(v, p);
                }
            } else {
                let mut per_group: Vec<Vec<f32>> = vec![Vec::new(); groups];
                for (d, a) in self.docs.iter().zip(&self.doc_agent) {
                    if let Some(list) = per_group.get_mut(*a) {
                        list.push(dot(v, d));
                    }
                }
                for (g, list) in per_group.iter_mut().enumerate() {
                    sim[g] = top_k_mean(list, c.knn_k);
                }
            }
        }
        let mut probs = vec![0f32; groups];
        if let (Some(head), true) = (&self.head, c.head_weight != 0.0) {
            head.probabilities_into(v, &mut probs);
        }
        let lex = if c.lexical_weight != 0.0 {
            self.lexical.max_per_agent(&self.lexical.vectorize(text), n)
        } else {
            vec![0.0; n]
        };
        let combined = |g: usize, lex: f32| {
            c.knn_weight * sim[g] + c.head_weight * probs[g] + c.lexical_weight * lex
        };
        let background = if self.has_background {
            // The background has no lexical part: its phrases are generic by design, so an
            // agent's keyword match is what lifts a sentence above it.
            Some(combined(n, 0.0))
        } else {
            None
        };
        (0..n)
            .map(|a| {
                let s = combined(a, lex.get(a).copied().unwrap_or(0.0));
                match background {
                    Some(b) if c.background_penalty != 0.0 => {
                        s - c.background_penalty * (b - s).max(0.0)
                    }
                    _ => s,
                }
            })
            .collect()
    }
}

/// The model a worker uses now, swapped whole when agents change: readers take an `Arc` (never
/// blocked by a rebuild), and [`LiveModel::update`] rebuilds from the current model's embedding
/// cache, so an `events.AiAgentChanged` costs only the changed agent's new phrases.
#[derive(Debug)]
pub struct LiveModel {
    current: std::sync::RwLock<Arc<IntentModel>>,
}

impl LiveModel {
    /// Starts with a built model.
    pub fn new(model: IntentModel) -> Self {
        Self {
            current: std::sync::RwLock::new(Arc::new(model)),
        }
    }

    /// The current model (cheap: an `Arc` clone).
    pub fn current(&self) -> Arc<IntentModel> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rebuilds for `agents` (blocking: call it from `spawn_blocking`) and swaps it in; on an
    /// error the old model stays.
    pub fn update(&self, agents: &[AgentSpec]) -> Result<(), Error> {
        let next = Arc::new(self.current().rebuild(agents)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }
}

/// Embeds `texts`, taking known ones from the cache; drops cache entries not used any more.
fn embed_cached(
    encoder: &Encoder,
    cache: &Cache,
    is_query: bool,
    texts: &[(usize, String)],
) -> Result<Vec<Arc<[f32]>>, Error> {
    let missing: Vec<&str> = {
        let map = cache.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = std::collections::HashSet::new();
        texts
            .iter()
            .map(|(_, t)| t.as_str())
            .filter(|t| !map.contains_key(&(is_query, t.to_string())) && seen.insert(*t))
            .collect()
    };
    let kind = if is_query { Kind::Query } else { Kind::Passage };
    let for_model: Vec<String> = missing.iter().map(|t| for_embedding(t)).collect();
    let fresh = encoder.embed_batch(&for_model, kind)?;
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    for (t, v) in missing.iter().zip(fresh) {
        map.insert((is_query, (*t).to_string()), Arc::from(v));
    }
    let mut out = Vec::with_capacity(texts.len());
    for (_, t) in texts {
        match map.get(&(is_query, t.clone())) {
            Some(v) => out.push(v.clone()),
            None => return Err(Error::Embed(switchyard_embed::Error::EmbedFailed(1))),
        }
    }
    // Bound the cache: once it holds far more than the agents use, drop what they don't (an
    // agent switched off and on again within that slack is not embedded twice).
    let used: std::collections::HashSet<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
    if map.len() > 2 * used.len() + 256 {
        map.retain(|(_, t), _| used.contains(t.as_str()));
    }
    Ok(out)
}

/// The text as the encoder gets it: long digit runs (IBANs, meter and customer numbers, dates)
/// become "000". They cost the encoder one token per one or two digits and say nothing about
/// the intent (the parameter extraction reads the original text).
fn for_embedding(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            // A run of digits with single separators between them.
            let mut j = i;
            let mut digits = 0;
            while j < chars.len() {
                if chars[j].is_ascii_digit() {
                    digits += 1;
                    j += 1;
                } else if matches!(chars[j], ' ' | '.' | ',' | '/' | '-')
                    && chars.get(j + 1).is_some_and(char::is_ascii_digit)
                {
                    j += 1;
                } else {
                    break;
                }
            }
            if digits >= 7 {
                out.push_str("000");
            } else {
                out.extend(&chars[i..j]);
            }
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// `v − mean`, normalised to unit length.
fn centered(v: &[f32], mean: &[f32]) -> Vec<f32> {
    let mut out: Vec<f32> = v.iter().zip(mean).map(|(x, m)| x - m).collect();
    normalize(&mut out);
    out
}

/// Dot product with eight independent accumulators, so the compiler can use SIMD (a plain
/// `sum()` must keep the sequential float order and stays scalar); the head's training is
/// mostly this.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks = n / 8;
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let mut tail = 0.0;
    for i in chunks * 8..n {
        tail += a[i] * b[i];
    }
    acc.iter().sum::<f32>() + tail
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Mean of the `k` largest values (all of them when fewer); 0 for an empty list.
fn top_k_mean(values: &mut [f32], k: usize) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let k = k.min(values.len()).max(1);
    values.sort_unstable_by(|a, b| b.total_cmp(a));
    values[..k].iter().sum::<f32>() / k as f32
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests;
