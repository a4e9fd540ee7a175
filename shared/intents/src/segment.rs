//! Splits a mail into the sentences that may carry an intent.
//!
//! Intents live in single sentences ("Hier mein Zählerstand: …", "Außerdem ziehe ich um"), and a
//! mail often carries several, so each sentence is scored on its own. Greetings, sign-offs,
//! signatures and quoted history would only add noise (a quoted old mail must not trigger its
//! old intent again), so they are dropped here.

/// At most this many sentences of one mail are scored; the rest of a very long mail is rarely
/// where the request is, and the cap bounds the CPU per mail.
pub const MAX_SEGMENTS: usize = 24;

/// A sentence shorter than this (in chars) carries no intent of its own ("Hallo!", "Danke.").
const MIN_CHARS: usize = 8;

/// Lines that start the quoted history or a forwarded mail: everything after them is dropped.
const HISTORY_MARKERS: &[&str] = &[
    "-----original message-----",
    "----- original message -----",
    "-----ursprüngliche nachricht-----",
    "----- ursprüngliche nachricht -----",
    "---------- forwarded message",
    "---------- weitergeleitete nachricht",
    "-------- weitergeleitete nachricht",
    "-------- original message",
    "-------- ursprüngliche nachricht",
];

/// Sign-offs: the line and everything after it (name, signature, disclaimer) are dropped.
const SIGN_OFFS: &[&str] = &[
    "mit freundlichen grüßen",
    "mit freundlichen grüssen",
    "mit freundlichem gruß",
    "mit freundlichem gruss",
    "freundliche grüße",
    "freundliche grüsse",
    "viele grüße",
    "viele grüsse",
    "beste grüße",
    "beste grüsse",
    "liebe grüße",
    "liebe grüsse",
    "herzliche grüße",
    "herzliche grüsse",
    "schöne grüße",
    "gruß",
    "gruss",
    "grüße",
    "grüsse",
    "mfg",
    "lg",
    "vg",
    "best regards",
    "kind regards",
    "warm regards",
    "regards",
    "best wishes",
    "best,",
    "cheers",
    "sincerely",
    "yours sincerely",
    "yours faithfully",
    "thanks and regards",
    "many thanks and best regards",
    "von meinem iphone gesendet",
    "sent from my iphone",
    "sent from my",
    "gesendet von",
];

/// Salutations that open a mail; dropped when they make up the start of a line.
const GREETINGS: &[&str] = &[
    "sehr geehrte damen und herren",
    "sehr geehrter herr",
    "sehr geehrte frau",
    "sehr geehrte",
    "sehr geehrter",
    "liebes team",
    "liebe damen und herren",
    "hallo zusammen",
    "hallo",
    "guten tag",
    "guten morgen",
    "guten abend",
    "moin",
    "servus",
    "dear sir or madam",
    "dear sir/madam",
    "dear sirs",
    "dear team",
    "dear",
    "hello",
    "hi",
    "good morning",
    "good afternoon",
    "to whom it may concern",
];

/// Words before a full stop that do not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "nr", "str", "z.b", "zb", "ca", "bzw", "ggf", "u.a", "usw", "hr", "fr", "dr", "prof", "inkl",
    "evtl", "bspw", "vgl", "tel", "d.h", "z.t", "u.u", "etc", "mr", "mrs", "ms", "no", "st", "e.g",
    "i.e", "vs", "abs", "kto", "kd", "kdnr", "vert", "mio", "tsd", "jan", "feb", "mär", "apr",
    "jun", "jul", "aug", "sep", "sept", "okt", "oct", "nov", "dez", "dec",
];

/// Subject starts of auto-replies and bounces: such mails quote someone else's request, and no
/// agent should act on them (the spam/auto-reply status is set elsewhere; this only keeps the
/// detector from reacting to the quoted subject).
const AUTOMATIC_SUBJECTS: &[&str] = &[
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto:",
    "automatische antwort",
    "abwesenheitsnotiz",
    "out of office",
    "out-of-office",
    "unzustellbar",
    "undeliverable",
    "delivery status notification",
    "mail delivery failed",
    "returned mail",
    "nicht zustellbar",
];

/// Whether the subject marks an auto-reply or a bounce.
pub fn is_automatic(subject: &str) -> bool {
    let lower = subject.trim().to_lowercase();
    AUTOMATIC_SUBJECTS.iter().any(|m| lower.starts_with(m))
}

/// One scored piece of a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The text as written (whitespace collapsed), shown as evidence.
    pub text: String,
    /// Whether this is the subject line.
    pub is_subject: bool,
}

/// The sentences of a mail worth scoring: the subject (unless empty or only "Re:/AW:"), then
/// the body's sentences without salutation, sign-off, signature and quoted lines.
pub fn segments(subject: &str, body: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    if is_automatic(subject) {
        return out;
    }
    // A reply's or forward's subject names the old thread's topic, not this mail's request
    // ("Re: Ihre Kündigung" answering a confirmation), so only a fresh subject is scored.
    let stripped = strip_reply_prefixes(subject);
    let is_reply = stripped.len() != subject.trim().len();
    let subject = if is_reply { "" } else { stripped };
    if subject.chars().count() >= 3 {
        out.push(Segment {
            text: collapse_ws(subject),
            is_subject: true,
        });
    }
    let paragraphs = body_paragraphs(body);
    for paragraph in &paragraphs {
        for sentence in split_sentences(paragraph) {
            let sentence = strip_greeting(&sentence);
            if sentence.chars().filter(|c| c.is_alphanumeric()).count() < MIN_CHARS {
                continue;
            }
            if out.len() >= MAX_SEGMENTS {
                return out;
            }
            out.push(Segment {
                text: sentence.to_string(),
                is_subject: false,
            });
        }
    }
    drop_closing(&mut out);
    // A very short request ("Top up?", "Kündigung!") is still the request: score it whole
    // rather than nothing.
    if out.is_empty() {
        let text = collapse_ws(&paragraphs.join(" "));
        if text.chars().filter(|c| c.is_alphanumeric()).count() >= 2 {
            out.push(Segment {
                text: text.chars().take(300).collect(),
                is_subject: false,
            });
        }
    }
    out
}

/// The body without quoted history and signature, as paragraphs with lines joined (mail
/// clients wrap lines mid-sentence; a blank line or a list item starts a new paragraph).
fn body_paragraphs(body: &str) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let mut current = String::new();
    for raw in body.lines() {
        let line = raw.trim();
        let lower = line.to_lowercase();
        if line == "--" || line == "-- " || raw == "-- " || line == "__" || line.starts_with("___")
        {
            break; // signature delimiter
        }
        if HISTORY_MARKERS.iter().any(|m| lower.starts_with(m)) || is_reply_header(&lower) {
            break;
        }
        if is_sign_off(&lower) {
            break;
        }
        if line.starts_with('>') || line.starts_with('|') {
            continue; // quoted line
        }
        let starts_item = line.starts_with("- ")
            || line.starts_with("* ")
            || line.starts_with("• ")
            || line.chars().next().is_some_and(|c| c.is_ascii_digit()) && line.contains(") ");
        if line.is_empty() || starts_item {
            if !current.trim().is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            current.clear();
            if line.is_empty() {
                continue;
            }
        }
        // A salutation line ends with a comma and stands alone.
        if is_greeting_line(&lower) {
            continue;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(line);
    }
    if !current.trim().is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

/// Thanks that close a mail, possibly with a name after them ("Danke, Ralf Zimmermann",
/// "thx julia", "Vielen Dank Behrouz Ahmadi"); a greeting word may follow ("Danke und viele Grüße").
const CLOSING_THANKS: &[&str] = &[
    "vielen dank",
    "besten dank",
    "herzlichen dank",
    "danke",
    "many thanks",
    "thank you",
    "thanks",
    "thx",
    "cheers",
    "saludos",
];

/// Words that may sit between the thanks and the name without making it a request.
const CLOSING_FILLERS: &[&str] = &[
    "und",
    "and",
    "viele",
    "liebe",
    "beste",
    "freundliche",
    "grüße",
    "grüsse",
    "gruesse",
    "gruß",
    "gruss",
    "so",
    "much",
    "a",
    "lot",
    "again",
    "in",
    "advance",
    "im",
    "voraus",
    "schön",
    "schöne",
    "schönen",
    "tag",
    "noch",
    "best",
    "regards",
    "&",
    "/",
    "-",
];

/// Drops the closing remains at the end of a body that sign-off detection let through: a
/// thanks with a name, or a name alone ("Maren Wagner-Lenz", "N. Akbulut"). They carry no
/// intent and each costs an encoder pass. Only trailing body segments are dropped, and never
/// the only one; the subject is never dropped.
fn drop_closing(out: &mut Vec<Segment>) {
    while out.len() >= 2 {
        let Some(last) = out.last() else { break };
        if last.is_subject || !(is_thanks_with_name(&last.text) || is_name_line(&last.text)) {
            break;
        }
        out.pop();
    }
}

/// Words of a short line, without the punctuation around them.
fn bare_words(text: &str) -> Vec<&str> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| matches!(c, ',' | '!' | '.' | ';')))
        .filter(|w| !w.is_empty())
        .collect()
}

/// "Danke, Ralf Zimmermann", "thanks nico", "Thank you, Maria López": thanks, then at most
/// three name words (capitalised, or a single lower-case one), nothing that asks for anything.
fn is_thanks_with_name(text: &str) -> bool {
    let lower = text.to_lowercase();
    if lower.contains('?') || lower.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    let Some(thanks) = CLOSING_THANKS.iter().find(|t| starts_with_word(&lower, t)) else {
        return false;
    };
    let rest = &text[thanks.len().min(text.len())..];
    let words: Vec<&str> = bare_words(rest)
        .into_iter()
        .filter(|w| !CLOSING_FILLERS.contains(&w.to_lowercase().as_str()))
        .collect();
    let capitalised = words
        .iter()
        .all(|w| w.chars().next().is_some_and(char::is_uppercase));
    words.len() <= 3 && (capitalised || words.len() <= 1)
}

/// A name alone on the last line: one to three capitalised words of letters (hyphens,
/// apostrophes and an initial like "N." allowed), no digits, no closing punctuation.
fn is_name_line(text: &str) -> bool {
    let t = text.trim();
    if t.ends_with(['.', '!', '?', ':', ';', ',']) {
        return false;
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    (2..=3).contains(&words.len())
        && words.iter().all(|w| {
            let initial = w.chars().count() == 2 && w.ends_with('.');
            w.chars().next().is_some_and(char::is_uppercase)
                && (initial
                    || w.chars()
                        .all(|c| c.is_alphabetic() || c == '-' || c == '\''))
        })
}

/// "Am 3. Mai 2026 schrieb X:" / "On Mon, ... wrote:" start the quoted history.
fn is_reply_header(lower: &str) -> bool {
    let ends = lower.ends_with(':') || lower.ends_with(">:");
    ends && ((lower.starts_with("am ") && lower.contains("schrieb"))
        || (lower.starts_with("on ") && lower.contains("wrote"))
        || lower.starts_with("von:")
        || lower.starts_with("from:"))
        || lower.starts_with("von: ") && lower.contains('@')
        || lower.starts_with("from: ") && lower.contains('@')
}

/// `text` starts with the word(s) `word` (not just a prefix of a longer word: "hi" ≠ "his").
fn starts_with_word(text: &str, word: &str) -> bool {
    text.strip_prefix(word)
        .is_some_and(|rest| !rest.chars().next().is_some_and(char::is_alphanumeric))
}

fn is_sign_off(lower: &str) -> bool {
    let l = lower.trim_end_matches([',', '.', '!', ' ']);
    SIGN_OFFS.iter().any(|s| {
        let s = s.trim_end_matches(',');
        l == s || (starts_with_word(l, s) && l.len() <= s.len() + 25 && !l.contains(". "))
    })
}

fn is_greeting_line(lower: &str) -> bool {
    let l = lower.trim();
    (l.ends_with(',') || l.ends_with('!') || l.len() < 40)
        && GREETINGS.iter().any(|g| starts_with_word(l, g))
        && l.split_whitespace().count() <= 7
}

/// Drops a salutation that starts a sentence ("Hallo, ich ziehe um" → "ich ziehe um").
fn strip_greeting(sentence: &str) -> &str {
    let lower = sentence.to_lowercase();
    for g in GREETINGS {
        if starts_with_word(&lower, g) {
            if let Some(pos) = sentence.find([',', '!']) {
                if pos < 60 {
                    return sentence[pos + 1..].trim();
                }
            }
        }
    }
    sentence
}

/// Removes "Re:", "AW:", "Fwd:", "WG:" prefixes, repeatedly.
fn strip_reply_prefixes(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let lower = s.to_lowercase();
        let found = ["re:", "aw:", "fw:", "fwd:", "wg:", "antw:", "sv:"]
            .iter()
            .find(|p| lower.starts_with(*p));
        match found {
            Some(p) => s = s[p.len()..].trim_start(),
            None => return s,
        }
    }
}

fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits at '.', '!', '?' (and ';') followed by a space, unless the full stop ends a number
/// ("zum 1. November") or a known abbreviation ("z.B.", "Nr.").
fn split_sentences(paragraph: &str) -> Vec<String> {
    let text = collapse_ws(paragraph);
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next_is_space = chars.get(i + 1).is_some_and(|n| n.is_whitespace());
        if matches!(c, '.' | '!' | '?' | ';') && next_is_space {
            // A number after a full stop continues the sentence ("Nr. 5", "Abs. 3").
            let next_word_start = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            let continues = next_word_start.is_some_and(char::is_ascii_digit);
            let is_break = c != '.' || !(continues || ends_with_non_terminal(&chars[start..i]));
            if is_break {
                let s: String = chars[start..=i].iter().collect();
                let s = s.trim().to_string();
                if !s.is_empty() {
                    out.push(s);
                }
                start = i + 1;
            }
        }
        i += 1;
    }
    let rest: String = chars[start.min(chars.len())..].iter().collect();
    let rest = rest.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Whether the word before a full stop is a number or an abbreviation.
fn ends_with_non_terminal(before: &[char]) -> bool {
    let word: String = before
        .iter()
        .rev()
        .take_while(|c| !c.is_whitespace() && **c != '(')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if word.is_empty() {
        return false;
    }
    // "1." / "15." / "31.12." (ordinals, dates going on) continue; a year ("2026.") ends.
    if word.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let last_group = word.rsplit('.').next().unwrap_or("");
        return last_group.len() <= 2;
    }
    let lower = word.to_lowercase();
    ABBREVIATIONS.contains(&lower.as_str())
        || lower.ends_with("str")
        || (word.chars().count() == 1 && word.chars().all(char::is_alphabetic))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(subject: &str, body: &str) -> Vec<String> {
        segments(subject, body)
            .into_iter()
            .map(|s| s.text)
            .collect()
    }

    #[test]
    fn drops_greeting_signature_and_quotes() {
        let body = "Sehr geehrte Damen und Herren,\n\nich ziehe zum 1. November nach Köln um.\n\
                    Mein Zählerstand ist 12345 kWh. Bitte buchen Sie ihn.\n\n\
                    Mit freundlichen Grüßen\nTom Mustermann\nMusterstr. 5\n\n\
                    > Alte Nachricht: Ich kündige.\n";
        let t = texts("Umzug", body);
        assert_eq!(
            t,
            vec![
                "Umzug",
                "ich ziehe zum 1. November nach Köln um.",
                "Mein Zählerstand ist 12345 kWh.",
                "Bitte buchen Sie ihn.",
            ]
        );
    }

    #[test]
    fn quoted_history_after_reply_header_is_dropped() {
        let body = "Hi, please change my IBAN to the one below.\nThanks\n\n\
                    On Mon, 3 Nov 2026 at 10:00, Service <s@x.de> wrote:\n\
                    We have cancelled your contract as requested.";
        let t = texts("", body);
        assert_eq!(t, vec!["please change my IBAN to the one below."]);
    }

    #[test]
    fn abbreviations_and_numbers_do_not_split() {
        let t =
            split_sentences("Ich wohne in der Hauptstr. 5, z.B. seit dem 3. Mai. Danach nicht.");
        assert_eq!(
            t,
            vec![
                "Ich wohne in der Hauptstr. 5, z.B. seit dem 3. Mai.",
                "Danach nicht."
            ]
        );
    }

    #[test]
    fn a_year_or_a_closing_bracket_ends_a_sentence() {
        let t = split_sentences("Ich kündige zum 31.03.2026. Bitte überweisen Sie das Guthaben.");
        assert_eq!(
            t,
            vec![
                "Ich kündige zum 31.03.2026.",
                "Bitte überweisen Sie das Guthaben."
            ]
        );
        let t =
            split_sentences("meter is at 2,987 kWh (read yesterday). can you lower my payment?");
        assert_eq!(
            t,
            vec![
                "meter is at 2,987 kWh (read yesterday).",
                "can you lower my payment?"
            ]
        );
    }

    #[test]
    fn empty_and_garbage_inputs_give_no_segments() {
        assert!(segments("", "").is_empty());
        assert!(segments("Re:", "\n\n> quoted\n-- \nsig").is_empty());
        assert!(segments("", "!").is_empty());
        assert_eq!(texts("", "Top up?"), ["Top up?"]);
        assert_eq!(
            texts("", "his card was declined"),
            ["his card was declined"]
        );
    }

    #[test]
    fn auto_replies_have_no_segments() {
        assert!(segments(
            "Automatic reply: Your meter reading",
            "I am out of the office."
        )
        .is_empty());
        assert!(segments(
            "Unzustellbar: Zählerstand",
            "Die Zustellung ist fehlgeschlagen."
        )
        .is_empty());
        assert!(!segments("Zählerstand", "Mein Zählerstand ist 1234 kWh.").is_empty());
    }

    #[test]
    fn closing_thanks_and_names_are_dropped_requests_kept() {
        let body =
            "ich ziehe zum 1. Mai um.\nVielen Dank und ein schönes Wochenende!\nMaren Wagner-Lenz";
        assert_eq!(
            texts("Umzug", body),
            [
                "Umzug",
                "ich ziehe zum 1. Mai um.",
                "Vielen Dank und ein schönes Wochenende!"
            ]
        );
        for closing in [
            "Danke, Ralf Zimmermann",
            "thx julia",
            "Thank you, Maria López",
            "Thanks so much, Sarah & Ben",
            "Danke und viele Grüße Svenja Wolf",
            "N. Akbulut",
            "Patrick O'Neill",
        ] {
            let body = format!("Please lower my monthly payment to 40 euros.\n{closing}");
            assert_eq!(
                texts("", &body),
                ["Please lower my monthly payment to 40 euros."],
                "{closing}"
            );
        }
        for request in [
            "Thanks, please cancel my contract",
            "Danke, bitte buchen Sie den Zählerstand",
            "Thanks, is that possible?",
            "Neue IBAN: DE000",
            "Meter reading 12345",
            "Bitte Rückruf.",
        ] {
            let body = format!("Hallo, ich habe eine Frage zu meiner Rechnung.\n{request}");
            assert_eq!(texts("", &body).len(), 2, "{request}");
        }
        // Never the only segment, never the subject.
        assert_eq!(
            texts("", "Thank you, Maria López"),
            ["Thank you, Maria López"]
        );
        assert_eq!(
            texts("Kündigung Stromvertrag", "Jens Reuter"),
            ["Kündigung Stromvertrag"]
        );
    }

    #[test]
    fn long_mails_are_capped() {
        let body = "Dies ist ein langer Satz ohne Sinn. ".repeat(100);
        assert_eq!(segments("", &body).len(), MAX_SEGMENTS);
    }
}
