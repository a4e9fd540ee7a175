//! Character n-gram TF-IDF similarity between a sentence and an agent's examples.
//!
//! Embeddings blur domain keywords ("Abschlag" vs "Rechnung" are close in meaning), while the
//! exact words customers use for a request are very telling; char n-grams inside word
//! boundaries also match German compounds and inflections ("Zählerstand", "Zählerstände",
//! "Zählerstandsmeldung") and typos. Built from the examples alone, so it retrains with them.

use std::collections::HashMap;

/// n-gram lengths, within word boundaries (like scikit-learn's `char_wb`).
const N_MIN: usize = 3;
const N_MAX: usize = 5;

/// A sparse, L2-normalised TF-IDF vector: (n-gram hash, weight), sorted by hash.
pub type Sparse = Vec<(u64, f32)>;

/// IDF table and the example vectors of every agent, with an inverted index for fast scoring.
#[derive(Debug, Clone, Default)]
pub struct LexicalIndex {
    idf: HashMap<u64, f32>,
    /// The idf of an n-gram no example has: rare, so informative, but it matches nothing.
    default_idf: f32,
    /// Per n-gram: (document, weight) for every document that has it.
    postings: HashMap<u64, Vec<(u32, f32)>>,
    /// Which agent each document belongs to.
    doc_agent: Vec<u32>,
}

impl LexicalIndex {
    /// Indexes `docs` (agent index, text).
    pub fn build(docs: &[(usize, &str)]) -> Self {
        let grams: Vec<HashMap<u64, f32>> = docs.iter().map(|(_, t)| counts(t)).collect();
        let mut df: HashMap<u64, u32> = HashMap::new();
        for g in &grams {
            for k in g.keys() {
                *df.entry(*k).or_default() += 1;
            }
        }
        let n = docs.len() as f32;
        let idf: HashMap<u64, f32> = df
            .into_iter()
            .map(|(k, d)| (k, ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0))
            .collect();
        let default_idf = (1.0 + n).ln() + 1.0;
        let mut index = Self {
            idf,
            default_idf,
            postings: HashMap::new(),
            doc_agent: docs.iter().map(|(a, _)| *a as u32).collect(),
        };
        for (doc, g) in grams.into_iter().enumerate() {
            for (k, w) in index.weigh(g) {
                index.postings.entry(k).or_default().push((doc as u32, w));
            }
        }
        index
    }

    fn weigh(&self, counts: HashMap<u64, f32>) -> Sparse {
        let mut v: Sparse = counts
            .into_iter()
            .map(|(k, c)| {
                let idf = self.idf.get(&k).copied().unwrap_or(self.default_idf);
                (k, (1.0 + c.ln()) * idf)
            })
            .collect();
        let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, w) in &mut v {
                *w /= norm;
            }
        }
        v
    }

    /// The query's TF-IDF vector under this index's IDF.
    pub fn vectorize(&self, text: &str) -> Sparse {
        self.weigh(counts(text))
    }

    /// Per agent (`n_agents` long): the highest cosine between `query` and one of its documents.
    pub fn max_per_agent(&self, query: &Sparse, n_agents: usize) -> Vec<f32> {
        let mut per_doc: HashMap<u32, f32> = HashMap::new();
        for (k, w) in query {
            if let Some(list) = self.postings.get(k) {
                for (doc, dw) in list {
                    *per_doc.entry(*doc).or_default() += w * dw;
                }
            }
        }
        let mut best = vec![0f32; n_agents];
        for (doc, s) in per_doc {
            if let Some(agent) = self.doc_agent.get(doc as usize) {
                if let Some(b) = best.get_mut(*agent as usize) {
                    *b = b.max(s);
                }
            }
        }
        best
    }
}

/// Normalises for matching: lower case, umlauts kept (the n-grams of "ä" and "ae" differ, so
/// both spellings are folded to the "ae" form), punctuation to spaces.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            c if c.is_alphanumeric() => out.push(c),
            _ => out.push(' '),
        }
    }
    out
}

/// Counts of the char n-grams of each word padded with spaces (" zaehler ").
fn counts(text: &str) -> HashMap<u64, f32> {
    let mut counts: HashMap<u64, f32> = HashMap::new();
    for word in normalize(text).split_whitespace() {
        // Digits vary per mail (readings, dates); one token class for all numbers.
        let word: String = if word.chars().all(|c| c.is_ascii_digit()) {
            "0".to_string()
        } else {
            word.to_string()
        };
        let padded: Vec<char> = std::iter::once(' ')
            .chain(word.chars())
            .chain(std::iter::once(' '))
            .collect();
        for n in N_MIN..=N_MAX {
            if padded.len() < n {
                if n == N_MIN {
                    *counts.entry(hash(&padded)).or_default() += 1.0;
                }
                break;
            }
            for w in padded.windows(n) {
                *counts.entry(hash(w)).or_default() += 1.0;
            }
        }
    }
    counts
}

/// FNV-1a over the chars; collisions among a few thousand n-grams are negligible.
fn hash(chars: &[char]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in chars {
        for b in (*c as u32).to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compounds_and_inflections_match_their_agent() {
        let docs = [
            (0, "Hier ist mein Zählerstand"),
            (1, "Ich möchte meinen Vertrag kündigen"),
        ];
        let index = LexicalIndex::build(&docs);
        let q = index.vectorize("Zählerstände für 2026");
        let s = index.max_per_agent(&q, 2);
        assert!(s[0] > 0.2 && s[0] > s[1] * 2.0, "{s:?}");
        let q = index.vectorize("Kündigung meines Vertrags");
        let s = index.max_per_agent(&q, 2);
        assert!(s[1] > s[0], "{s:?}");
    }

    #[test]
    fn empty_query_scores_zero() {
        let index = LexicalIndex::build(&[(0, "abc def")]);
        assert_eq!(index.max_per_agent(&index.vectorize(""), 1), vec![0.0]);
        assert_eq!(index.max_per_agent(&index.vectorize("!!!"), 1), vec![0.0]);
    }

    #[test]
    fn normalize_folds_umlauts_and_punctuation() {
        assert_eq!(normalize("Zähler-Stand: Größe!"), "zaehler stand  groesse ");
    }
}
