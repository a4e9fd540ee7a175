//! The part of a mail the customer actually wrote now: without quoted history, greetings and
//! signatures, split into sentences. Everything downstream reads this, so a quoted earlier mail
//! or a footer with the utility's own bank details never counts as the customer's request.

use std::sync::LazyLock;

use regex::Regex;

#[allow(clippy::expect_used)]
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("text pattern compiles")
}

/// Lines that start quoted history: everything after them is an earlier mail.
static QUOTE_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^\s*(am .{4,80}schrieb.*:|on .{4,80}wrote:?|-{2,}\s*(ursprüngliche nachricht|original message|weitergeleitete nachricht|forwarded message)\s*-{2,}|von:\s.+|from:\s.+@.+|_{10,})\s*$",
    )
});
/// Lines that end the text the customer wrote: sign-offs and signature separators.
static SIGN_OFF: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^\s*(-- ?|mit freundlichen grüßen|mit freundlichen gruessen|mit freundlichem gruß|freundliche grüße|viele grüße|beste grüße|liebe grüße|lg|mfg|gruß|grüße|best regards|kind regards|regards|best wishes|many thanks|thanks in advance|cheers|yours sincerely|yours faithfully|sincerely|sent from my \w+|von meinem \w+ gesendet)[,.!]?\s*$",
    )
});
/// Greeting lines that carry no request.
static GREETING: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^\s*(sehr geehrte.*|hallo.*|guten (tag|morgen|abend).*|liebe[s]? .*|moin.*|servus.*|dear .*|hello.*|hi\b.*|good (morning|afternoon|evening).*)[,!]?\s*$",
    )
});
const ABBREVIATIONS: &[&str] = &[
    "str", "nr", "z.b", "bzw", "ca", "tel", "dr", "hr", "fr", "st", "inkl", "ggf", "u.a", "usw",
    "etc", "no", "vgl", "mr", "mrs", "ms", "abs", "evtl", "d.h", "z.h", "zzgl", "max", "min",
];
static SENTENCE_END: LazyLock<Regex> = LazyLock::new(|| re(r"[.!?]+(\s+|$)"));

/// The customer's own words: quoted history, greetings and everything from the sign-off on
/// removed. Falls back to the whole text when that would leave nothing.
pub fn own_words(body: &str) -> String {
    let mut lines = Vec::new();
    for line in body.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('>') {
            continue;
        }
        if QUOTE_HEADER.is_match(trimmed) || SIGN_OFF.is_match(trimmed) {
            break;
        }
        if GREETING.is_match(trimmed) && trimmed.len() < 60 {
            continue;
        }
        lines.push(trimmed);
    }
    let text = lines.join("\n").trim().to_owned();
    if text.is_empty() {
        body.trim().to_owned()
    } else {
        text
    }
}

/// A sentence and where it starts in the text it was cut from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence<'a> {
    pub start: usize,
    pub text: &'a str,
}

/// Sentences and lines of `text`. Abbreviations with a dot ("Str. 5", "z.B.", "Nr. 3") and
/// dates ("1. November") are not sentence ends.
pub fn sentences(text: &str) -> Vec<Sentence<'_>> {
    let mut out = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let mut start = 0;
        for m in SENTENCE_END.find_iter(line) {
            let before = &line[..m.start()];
            let last_word = before
                .rsplit(|c: char| c.is_whitespace())
                .next()
                .unwrap_or_default();
            let next = line[m.end()..].chars().next();
            let is_abbreviation = last_word.chars().all(|c| c.is_ascii_digit())
                || m.as_str().trim() == "."
                    && ABBREVIATIONS.contains(&last_word.to_lowercase().as_str())
                || next.is_some_and(|c| c.is_lowercase() || c.is_ascii_digit());
            if is_abbreviation && m.end() < line.len() {
                continue;
            }
            push_sentence(&mut out, line_start + start, &line[start..m.end()]);
            start = m.end();
        }
        push_sentence(&mut out, line_start + start, &line[start..]);
        line_start += line.len();
    }
    out
}

fn push_sentence<'a>(out: &mut Vec<Sentence<'a>>, start: usize, raw: &'a str) {
    let text = raw.trim();
    if text.chars().any(char::is_alphanumeric) {
        let offset = raw.len() - raw.trim_start().len();
        out.push(Sentence {
            start: start + offset,
            text,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_greetings_and_signatures_go() {
        let body = "Sehr geehrte Damen und Herren,\n\nmein Zählerstand ist 1234 kWh.\n\nMit freundlichen Grüßen\nTom Mustermann\nIBAN DE89370400440532013000\n\nAm 12.10.2026 schrieb Stadtwerke:\n> Bitte senden Sie uns Ihren Zählerstand.";
        assert_eq!(own_words(body), "mein Zählerstand ist 1234 kWh.");
    }

    #[test]
    fn english_reply_headers_cut_history() {
        let body = "Hi,\nI moved out yesterday.\nOn Mon, 12 Oct 2026 at 10:00, Service <a@b.de> wrote:\n> old";
        assert_eq!(own_words(body), "I moved out yesterday.");
    }

    #[test]
    fn nothing_left_keeps_the_text() {
        assert_eq!(own_words("Hallo!"), "Hallo!");
    }

    #[test]
    fn sentences_keep_abbreviations_and_dates_together() {
        let text =
            "Ich ziehe zum 1. November in die Hugo-Junkers-Str. 5 um. Bitte kündigen Sie! Danke";
        let s: Vec<&str> = sentences(text).into_iter().map(|s| s.text).collect();
        assert_eq!(
            s,
            vec![
                "Ich ziehe zum 1. November in die Hugo-Junkers-Str. 5 um.",
                "Bitte kündigen Sie!",
                "Danke"
            ]
        );
    }
}
