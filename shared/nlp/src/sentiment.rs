//! Sentiment of a customer's mail from a hand-written German and English cue list.
//!
//! What matters to a service centre is finding the annoyed customer (negative recall drives
//! escalation), not telling mild from strong praise. Utility mails are mostly neutral requests
//! with polite thanks, so routine politeness ("vielen Dank", "thanks") is not positive. The cue
//! lists are our own (no SentiWS-derived lexicon: its licence is non-commercial).

use std::sync::LazyLock;

use regex::Regex;

/// The seeds' sentiment values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sentiment {
    Positive,
    Neutral,
    Negative,
}

impl Sentiment {
    pub fn as_str(self) -> &'static str {
        match self {
            Sentiment::Positive => "positive",
            Sentiment::Neutral => "neutral",
            Sentiment::Negative => "negative",
        }
    }
}

/// Word stems (matched at a word start) and phrases; weight 2 for unmistakable anger.
const NEGATIVE: &[(&str, f32)] = &[
    // German
    ("frechheit", 2.0),
    ("unverschämt", 2.0),
    ("unverschaemt", 2.0),
    ("skandal", 2.0),
    ("katastroph", 2.0),
    ("zumutung", 2.0),
    ("betrug", 2.0),
    ("abzocke", 2.0),
    ("abgezockt", 2.0),
    ("anwalt", 2.0),
    ("rechtliche schritte", 2.0),
    ("verbraucherzentrale", 2.0),
    ("bundesnetzagentur", 1.5),
    ("schlichtungsstelle", 1.5),
    ("beschwerde", 1.5),
    ("beschwere", 1.5),
    ("ärger", 1.5),
    ("verärgert", 2.0),
    ("sauer", 1.5),
    ("wütend", 2.0),
    ("enttäusch", 1.5),
    ("inakzeptabel", 2.0),
    ("nicht akzeptabel", 2.0),
    ("unmöglich", 1.0),
    ("unzumutbar", 2.0),
    ("lächerlich", 2.0),
    ("schon wieder", 1.5),
    ("zum wiederholten", 2.0),
    ("unprofessionell", 2.0),
    ("nicht zu rechtfertigen", 2.0),
    ("dauerbesetzt", 1.5),
    ("wieder nicht", 1.5),
    ("zweite mal", 1.0),
    ("dritte mal", 1.5),
    ("völlig falsch", 1.5),
    ("überlege ernsthaft", 1.0),
    ("zum dritten mal", 2.0),
    ("zum zweiten mal", 1.5),
    ("immer noch nicht", 1.5),
    ("immer noch keine", 1.5),
    ("noch immer nicht", 1.5),
    ("noch immer keine", 1.5),
    ("bis heute nicht", 1.5),
    ("bis heute keine", 1.5),
    ("keine antwort", 1.5),
    ("keine reaktion", 1.5),
    ("niemand meldet", 1.5),
    ("ignoriert", 1.5),
    ("miserabel", 2.0),
    ("schlecht", 1.0),
    ("schlechtest", 2.0),
    ("unfähig", 2.0),
    ("inkompetent", 2.0),
    ("chaos", 1.5),
    ("mahnung", 1.0),
    ("unberechtigt", 1.5),
    ("falsch berechnet", 1.5),
    ("viel zu hoch", 1.5),
    ("horrend", 1.5),
    ("wucher", 2.0),
    ("nie wieder", 2.0),
    ("reicht mir", 2.0),
    ("reicht jetzt", 2.0),
    ("geduld", 1.0),
    ("endlich", 1.0),
    ("leider", 0.5),
    ("unzufrieden", 1.5),
    ("ärgerlich", 1.5),
    ("verstehe nicht, warum", 1.0),
    ("kann doch nicht sein", 2.0),
    ("darf doch nicht wahr", 2.0),
    ("fristlos", 1.0),
    ("stinksauer", 2.0),
    ("unglaublich", 1.0),
    ("wochenlang", 1.0),
    ("monatelang", 1.5),
    ("vertröstet", 1.5),
    ("hingehalten", 1.5),
    ("schlamperei", 2.0),
    ("dreist", 2.0),
    ("reicht es mir", 2.0),
    ("mir reicht es", 2.0),
    ("es reicht", 1.5),
    ("warteschleife", 1.5),
    ("ohne antwort", 1.5),
    ("nicht zuständig", 1.5),
    ("niemand fühlt sich", 2.0),
    ("frustrier", 1.5),
    ("unseriös", 2.0),
    ("untergejubelt", 2.0),
    ("was soll das", 2.0),
    ("verstehe diese", 1.0),
    ("verstehe nicht", 1.0),
    ("beschädigt", 1.0),
    ("schaden", 0.75),
    ("sperre", 1.0),
    ("sperrandrohung", 1.5),
    ("androh", 1.5),
    ("drohen", 1.5),
    ("verlange", 1.5),
    ("nachweislich", 1.0),
    ("doppelt abgerechnet", 1.5),
    ("falsch", 0.75),
    ("fehlerhaft", 0.75),
    ("danke für nichts", 2.0),
    ("großartige arbeit", 1.5),
    ("herzlichen glückwunsch, sie", 1.5),
    ("keinerlei", 1.0),
    ("kein einziger", 1.0),
    ("keinen einzigen", 1.0),
    ("ehrlich gesagt", 0.75),
    ("seit tagen", 1.0),
    ("seit wochen", 1.0),
    ("seit monaten", 1.5),
    ("seit drei monaten", 1.5),
    ("funktioniert nicht", 1.0),
    ("kommt nie", 1.0),
    ("nie an", 0.5),
    ("unverständlich", 1.0),
    ("mehr zahlen", 0.75),
    ("wechsle", 0.75),
    ("zum anbieter", 0.5),
    ("rückgewinnung", 1.0),
    ("kulanz", 0.75),
    ("erwarte", 0.75),
    ("fordere", 1.0),
    ("umgehend", 0.75),
    ("sofort", 0.5),
    ("trotzdem", 0.5),
    // English
    ("unacceptable", 2.0),
    ("seriously", 1.5),
    ("in a row", 1.5),
    ("threat", 1.5),
    ("cut off", 1.0),
    ("don't you dare", 2.0),
    ("couldn't manage", 1.5),
    ("without asking", 1.5),
    ("don't touch", 1.5),
    ("i'm out", 1.5),
    ("i am out of here", 1.5),
    ("mistake", 1.0),
    ("wrong", 0.75),
    ("charged me", 1.0),
    ("unreachable", 1.5),
    ("what is going on", 1.5),
    ("what's going on", 1.5),
    ("in vain", 1.5),
    ("regret", 1.0),
    ("no electricity", 0.75),
    ("demand", 1.0),
    ("expect you to", 1.5),
    ("immediately", 0.75),
    ("lovely.", 1.0),
    ("thanks for nothing", 2.0),
    ("not acceptable", 2.0),
    ("nightmare", 2.0),
    ("joke", 1.5),
    ("hours on hold", 1.5),
    ("on hold", 1.0),
    ("no one", 1.0),
    ("keep getting", 1.0),
    ("doesn't work", 1.0),
    ("does not work", 1.0),
    ("not working", 1.0),
    ("outrageous", 2.0),
    ("ridiculous", 2.0),
    ("disgrace", 2.0),
    ("scandal", 2.0),
    ("rip-off", 2.0),
    ("rip off", 2.0),
    ("scam", 2.0),
    ("fraud", 2.0),
    ("lawyer", 2.0),
    ("legal action", 2.0),
    ("ombudsman", 2.0),
    ("complain", 1.5),
    ("angry", 2.0),
    ("furious", 2.0),
    ("annoyed", 1.5),
    ("frustrat", 1.5),
    ("disappoint", 1.5),
    ("fed up", 2.0),
    ("sick of", 2.0),
    ("sick and tired", 2.0),
    ("terrible", 2.0),
    ("awful", 2.0),
    ("horrible", 2.0),
    ("worst", 2.0),
    ("useless", 2.0),
    ("incompetent", 2.0),
    ("poor service", 2.0),
    ("again and again", 1.5),
    ("yet again", 1.5),
    ("once again", 1.0),
    ("third time", 1.5),
    ("second time", 1.0),
    ("still not", 1.5),
    ("still no ", 1.5),
    ("still haven't", 1.5),
    ("still hasn't", 1.5),
    ("no response", 1.5),
    ("no reply", 1.5),
    ("nobody", 1.0),
    ("ignored", 1.5),
    ("overcharg", 2.0),
    ("way too high", 1.5),
    ("absurd", 1.5),
    ("never again", 2.0),
    ("unhappy", 1.5),
    ("not happy", 1.5),
    ("dissatisfied", 1.5),
    ("waste of time", 2.0),
    ("shocking", 2.0),
    ("appalling", 2.0),
    ("unbelievable", 1.0),
    ("finally", 0.5),
    ("for weeks", 1.0),
    ("for months", 1.5),
    ("how hard can", 2.0),
    ("shouldn't be this hard", 2.0),
    ("makes no sense", 1.5),
    ("even possible", 1.0),
    ("not another", 1.0),
    ("third attempt", 1.5),
    ("second attempt", 1.0),
    ("hold music", 1.0),
    ("hangs up", 1.0),
    ("line dropped", 1.0),
    ("reminder", 0.5),
    ("unfortunately", 0.5),
];

const POSITIVE: &[(&str, f32)] = &[
    ("sehr zufrieden", 2.0),
    ("super", 1.0),
    ("toll", 1.0),
    ("klasse", 1.0),
    ("hervorragend", 2.0),
    ("ausgezeichnet", 2.0),
    ("großartig", 2.0),
    ("begeistert", 2.0),
    ("schnelle hilfe", 1.5),
    ("schnelle bearbeitung", 1.5),
    ("schnelle antwort", 1.5),
    ("freundliche beratung", 1.5),
    ("top service", 2.0),
    ("weiter so", 2.0),
    ("lob", 1.5),
    ("herzlichen dank für", 1.0),
    ("vielen herzlichen dank", 1.0),
    ("freue mich", 1.0),
    ("gerne weiterempfehlen", 2.0),
    ("empfehle", 1.0),
    ("great", 1.0),
    ("excellent", 2.0),
    ("fantastic", 2.0),
    ("wonderful", 2.0),
    ("amazing", 2.0),
    ("very happy", 2.0),
    ("very satisfied", 2.0),
    ("really appreciate", 1.5),
    ("quick response", 1.5),
    ("quick help", 1.5),
    ("fast response", 1.5),
    ("keep it up", 2.0),
    ("well done", 2.0),
    ("thank you so much", 1.0),
    ("pleased", 1.0),
    ("delighted", 2.0),
    ("recommend", 1.0),
    ("helpful", 1.0),
    ("hilfsbereit", 1.0),
    ("perfekt", 1.0),
    ("perfect", 1.0),
];

/// Negations that turn the next few words around ("nicht zufrieden", "not happy").
const NEGATIONS: &[&str] = &[
    "nicht", "kein", "keine", "keinen", "nie", "not", "never", "no", "n't",
];

#[allow(clippy::expect_used)]
static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\p{L}']+").expect("word pattern compiles"));

/// The text up to `at`, at most `n` bytes back, cut at a character boundary.
fn before(s: &str, at: usize, n: usize) -> &str {
    let mut start = at.saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    let window = s.get(start..at).unwrap_or_default();
    // Only the same clause: "no answer. Unacceptable" is not a negated "unacceptable".
    match window.rfind(['.', '!', '?', ';', ',', '\n']) {
        Some(cut) => &window[cut + 1..],
        None => window,
    }
}

fn cue_score(lower: &str, cues: &[(&str, f32)]) -> f32 {
    let mut score = 0.0;
    for (cue, weight) in cues {
        for (at, _) in lower.match_indices(cue) {
            // Stems match at a word start only ("lob" not inside "global").
            let word_start = lower[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
            if !word_start {
                continue;
            }
            let before: Vec<&str> = WORD
                .find_iter(before(lower, at, 24))
                .map(|m| m.as_str())
                .collect();
            let negated = before
                .iter()
                .rev()
                .take(2)
                .any(|w| NEGATIONS.contains(w) || w.ends_with("n't"));
            score += if negated { -weight } else { *weight };
        }
    }
    score
}

/// The sentiment of the customer's own words (quotes and signatures already removed).
pub fn sentiment(text: &str) -> Sentiment {
    let lower = text.to_lowercase();
    let mut negative = cue_score(&lower, NEGATIVE);
    // A negated praise word ("nicht zufrieden", "not happy") counts against.
    let positive_raw = cue_score(&lower, POSITIVE);
    let (mut positive, flipped) = if positive_raw < 0.0 {
        (0.0, -positive_raw)
    } else {
        (positive_raw, 0.0)
    };
    negative += flipped;
    for word in ["zufrieden", "happy", "satisfied", "gut gelöst", "okay"] {
        for (at, _) in lower.match_indices(word) {
            let before: Vec<&str> = WORD
                .find_iter(before(&lower, at, 16))
                .map(|m| m.as_str())
                .collect();
            if before.iter().rev().take(2).any(|w| NEGATIONS.contains(w)) {
                negative += 1.5;
            }
        }
    }
    let exclamations = text.matches("!!").count() as f32
        + text.matches("?!").count() as f32
        + text.matches("??").count() as f32;
    negative += exclamations.min(3.0) * 0.75;
    let shouted = WORD
        .find_iter(text)
        .filter(|w| w.as_str().chars().count() >= 4 && w.as_str().chars().all(char::is_uppercase))
        .count();
    if shouted >= 2 {
        negative += 1.0;
    }
    if negative > 0.0 && positive > 0.0 && negative >= positive {
        positive = 0.0;
    }
    if negative >= 1.5 && negative >= positive {
        Sentiment::Negative
    } else if positive >= 1.5 && positive > negative {
        Sentiment::Positive
    } else {
        Sentiment::Neutral
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angry_customers_are_negative() {
        for text in [
            "Das ist eine Frechheit! Ich warte seit Wochen auf meine Abrechnung.",
            "Zum wiederholten Mal schreibe ich Ihnen wegen der falschen Rechnung.",
            "Ich bin mit Ihrem Service überhaupt nicht zufrieden.",
            "This is the third time I am writing and I still have no answer. Unacceptable.",
            "I'm not happy with how this was handled.",
            "WARUM bekomme ich KEINE Antwort?!",
            "Der Ableser kam wieder nicht. Ich finde das ziemlich unprofessionell.",
            "My invoice makes no sense. How is that even possible?",
        ] {
            assert_eq!(sentiment(text), Sentiment::Negative, "{text}");
        }
    }

    #[test]
    fn routine_requests_are_neutral() {
        for text in [
            "Anbei mein Zählerstand: 12345 kWh. Vielen Dank!",
            "Please change my IBAN to DE89370400440532013000. Thanks!",
            "Ich ziehe um und möchte meinen Vertrag mitnehmen.",
        ] {
            assert_eq!(sentiment(text), Sentiment::Neutral, "{text}");
        }
    }

    #[test]
    fn praise_is_positive() {
        assert_eq!(
            sentiment("Vielen Dank für die schnelle Hilfe, ich bin sehr zufrieden!"),
            Sentiment::Positive
        );
        assert_eq!(
            sentiment("Excellent service, thank you so much for the quick response."),
            Sentiment::Positive
        );
    }
}
