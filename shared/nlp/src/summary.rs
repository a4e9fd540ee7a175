//! A one-line summary for the ticket list: what the customer wants, in their own words.

use crate::text::sentences;

/// At most this many characters: the ticket list shows one line.
pub const MAX_CHARS: usize = 160;

/// The subject when it says something, else the first sentence of the customer's own words;
/// prefixed with the names of the detected agents, so a multi-request mail shows all of them.
pub fn summary(subject: &str, own_words: &str, agent_names: &[&str]) -> String {
    let subject = subject
        .trim()
        .trim_start_matches(|c: char| c.is_whitespace())
        .to_owned();
    let generic = {
        let s = subject.to_lowercase();
        let s = s
            .trim_start_matches("re:")
            .trim_start_matches("aw:")
            .trim_start_matches("fwd:")
            .trim();
        s.len() < 6
            || [
                "anfrage",
                "frage",
                "hallo",
                "hello",
                "request",
                "question",
                "kein betreff",
                "no subject",
            ]
            .contains(&s)
    };
    let text = if generic {
        sentences(own_words)
            .into_iter()
            .map(|s| s.text.to_owned())
            .find(|s| s.split_whitespace().count() >= 3)
            .unwrap_or(subject)
    } else {
        subject
    };
    let text = if agent_names.is_empty() {
        text
    } else {
        format!("{}: {}", agent_names.join(", "), text)
    };
    truncate(&text.replace('\n', " "), MAX_CHARS)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_or_first_sentence() {
        assert_eq!(
            summary("Zählerstand", "Hier ist er: 123 kWh.", &[]),
            "Zählerstand"
        );
        assert_eq!(
            summary(
                "Anfrage",
                "Hallo. Ich ziehe am 1.11. um und brauche Hilfe.",
                &["Umzug"]
            ),
            "Umzug: Ich ziehe am 1.11. um und brauche Hilfe."
        );
        assert!(summary(&"x".repeat(500), "", &[]).chars().count() <= MAX_CHARS);
    }
}
