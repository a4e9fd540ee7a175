//! Language detection with lingua, limited to the languages an operator configured (fewer
//! candidates: better accuracy on short mails, and less memory).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use lingua::{IsoCode639_1, Language, LanguageDetectorBuilder};

/// A detected language.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    /// ISO 639-1, e.g. `de`.
    pub code: String,
    /// English name, e.g. `German` (as the seed's `language`).
    pub name: String,
    pub confidence: f64,
}

/// Detectors per configured language set, built once (building loads the models).
#[derive(Default, Clone)]
pub struct LanguageDetector {
    detectors: Arc<RwLock<HashMap<Vec<String>, Arc<lingua::LanguageDetector>>>>,
}

impl LanguageDetector {
    fn detector(&self, allowed: &[String]) -> Option<Arc<lingua::LanguageDetector>> {
        let mut key: Vec<String> = allowed.to_vec();
        key.sort();
        key.dedup();
        if let Ok(map) = self.detectors.read() {
            if let Some(d) = map.get(&key) {
                return Some(d.clone());
            }
        }
        let languages: Vec<Language> = key
            .iter()
            .filter_map(|c| IsoCode639_1::from_str(c).ok())
            .map(|iso| Language::from_iso_code_639_1(&iso))
            .collect();
        let detector = match languages.len() {
            0 => return None,
            // lingua needs two candidates; with one configured language there is nothing to choose.
            1 => Arc::new(
                LanguageDetectorBuilder::from_languages(&[
                    languages[0],
                    fallback_partner(languages[0]),
                ])
                .build(),
            ),
            _ => Arc::new(LanguageDetectorBuilder::from_languages(&languages).build()),
        };
        if let Ok(mut map) = self.detectors.write() {
            map.insert(key, detector.clone());
        }
        Some(detector)
    }

    /// The most likely configured language of `text`, `None` for text without letters.
    pub fn detect(&self, text: &str, allowed: &[String]) -> Option<Detected> {
        if !text.chars().any(char::is_alphabetic) {
            return None;
        }
        let detector = self.detector(allowed)?;
        let values = detector.compute_language_confidence_values(text);
        let (language, confidence) = values.into_iter().next()?;
        let code = language.iso_code_639_1().to_string();
        if !allowed.iter().any(|a| a == &code) {
            return None;
        }
        Some(Detected {
            code,
            name: language.to_string(),
            confidence,
        })
    }
}

fn fallback_partner(l: Language) -> Language {
    if l == Language::English {
        Language::German
    } else {
        Language::English
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn langs(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tells_german_from_english() {
        let d = LanguageDetector::default();
        let de = d
            .detect(
                "Könnten Sie bitte den beiliegenden Zählerstand meines Zählers eintragen?",
                &langs(&["de", "en"]),
            )
            .expect("german");
        assert_eq!(de.code, "de");
        assert_eq!(de.name, "German");
        let en = d
            .detect(
                "I would like to cancel my contract at the end of January.",
                &langs(&["de", "en"]),
            )
            .expect("english");
        assert_eq!(en.code, "en");
    }

    #[test]
    fn no_letters_no_language() {
        let d = LanguageDetector::default();
        assert_eq!(d.detect("12345 !!", &langs(&["de", "en"])), None);
    }
}
