//! Parameters of an AI agent read out of the customer's words: every candidate of a kind (IBANs,
//! dates, amounts, meter numbers and readings, addresses…) with its position and whether it is
//! valid, then the one nearest the parameter's cue words.
//!
//! A value that looks right but fails validation (an IBAN with a wrong checksum) is returned as
//! an invalid candidate rather than dropped, so the intent can say why it is not ready.

use std::str::FromStr;
use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dates::find_dates;

#[allow(clippy::expect_used)]
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("parameter pattern compiles")
}

/// What a parameter holds; decides how it is found and validated. Wire names are the
/// `validation` values of an agent's parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    Iban,
    Date,
    Amount,
    MeterNumber,
    MeterReading,
    Address,
    PostalCode,
    Email,
    Number,
}

impl Kind {
    /// The kind an agent parameter asks for: its `validation`, else its `type`.
    pub fn of(validation: Option<&str>, ty: Option<&str>) -> Option<Kind> {
        let from_validation = validation
            .and_then(|v| serde_json::from_value::<Kind>(Value::String(v.to_owned())).ok());
        from_validation.or(match ty {
            Some("date") | Some("datetime") => Some(Kind::Date),
            Some("int") | Some("float") => Some(Kind::Number),
            _ => None,
        })
    }
}

/// One value of a kind found in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub start: usize,
    pub end: usize,
    pub value: Value,
    /// Why the value cannot be used (bad checksum, impossible date…); `None` when valid.
    pub problem: Option<String>,
}

/// What extraction needs to know about the mail.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The mail's own date: relative dates resolve against it.
    pub reference: NaiveDate,
    /// `de` or `en`; decides whether "12.345" is twelve thousand or twelve.
    pub language: &'a str,
}

static IBAN_LIKE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?i:[A-Z]{2})\s?\d{2}(?:\s?[A-Z0-9]){10,30}"));
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\b[A-Z0-9._%+\-]+@[A-Z0-9.\-]+\.[A-Z]{2,}\b"));
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(€|eur\b|euro\b)?\s*(\d{1,3}(?:[.\s]\d{3})+(?:,\d{1,2})?|\d+(?:[.,]\d{1,2})?)(?:,-)?\s*(€|eur\b|euros?\b)?",
    )
});
static METER_DIN: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d[A-Z]{3}[A-Z0-9]{6,12}\b"));
static METER_LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:zählernummer|zaehlernummer|zählernr|zähler-nr|zähler\s+nr|zähler|meter\s+number|meter\s+no|meter\s+id|meter\s+serial(?:\s+number)?|meter|counter\s+number)\b\.?\s*[:#(]?\s*(?:ist|is|lautet|mit\s+der\s+nummer|with\s+(?:the\s+)?number|nummer|number|nr\.?|no\.?)?\s*[:#]?\s*([A-Z0-9][A-Z0-9\-/]{3,24})",
    )
});
static NUMBER_WITH_UNIT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(\d{1,3}(?:[.,\s]\d{3})+(?:[.,]\d{1,3})?|\d+(?:[.,]\d{1,3})?)\s*(kwh|m³|m3|cbm|kubikmeter|cubic\s+met(?:er|re)s?)\b",
    )
});
static READING_LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:zählerstand|zaehlerstand|stand|reading|meter\s+reading|beträgt|lautet|zeigt|shows|is\s+at)\b[^\d\n]{0,25}(\d{1,3}(?:[.,]\d{3})+(?:[.,]\d{1,3})?|\d+(?:[.,]\d{1,3})?)",
    )
});
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"((?:[A-ZÄÖÜ][\w.\-]*\s){0,3}[\w.\-]*?(?i:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|pfad|markt|street|road|avenue|lane)\s*\d{1,4}\s?[a-zA-Z]?|(?:Am|An\sder|An\sden|Im|In\sder|In\sden|Auf\sdem|Auf\sder|Zum|Zur|Unter\sden|Hinter\sder|Vor\sdem|Beim)\s[A-ZÄÖÜ][\w\-]+(?:\s[A-ZÄÖÜ][\w\-]+)?\s\d{1,4}\s?[a-zA-Z]?)\s*,?\s*(?:in\s+)?(\d{5})\s+([A-ZÄÖÜ][\w\-]+(?:\s(?:am|an\sder|im|bei|ob\sder)\s[A-ZÄÖÜ][\w\-]+)?)",
    )
});
static POSTAL_CODE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{5})\s+[A-ZÄÖÜ]"));
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(\d{1,3}(?:[.,]\d{3})+(?:[.,]\d{1,3})?|\d+(?:[.,]\d{1,3})?)\b"));

/// A number as a customer writes it: "12.345,6" and "12,345.6" are both 12345.6; "12.345" is
/// twelve thousand in German text and twelve point three in English.
pub fn parse_number(raw: &str, language: &str) -> Option<f64> {
    let s: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let last_dot = s.rfind('.');
    let last_comma = s.rfind(',');
    let normalized = match (last_dot, last_comma) {
        (Some(d), Some(c)) if d > c => s.replace(',', ""),
        (Some(_), Some(_)) => s.replace('.', "").replace(',', "."),
        (None, Some(c)) => {
            let decimals = s.len() - c - 1;
            let groups = s.matches(',').count();
            if groups > 1 || (decimals == 3 && language == "en") {
                s.replace(',', "")
            } else {
                s.replace(',', ".")
            }
        }
        (Some(d), None) => {
            let decimals = s.len() - d - 1;
            let groups = s.matches('.').count();
            if groups > 1 || (decimals == 3 && language != "en") {
                s.replace('.', "")
            } else {
                s
            }
        }
        (None, None) => s,
    };
    f64::from_str(&normalized).ok().filter(|n| n.is_finite())
}

/// A JSON number: whole values as integers ("53", not "53.0").
pub fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn candidate(start: usize, end: usize, value: Value) -> Candidate {
    Candidate {
        start,
        end,
        value,
        problem: None,
    }
}

/// IBAN lengths of the countries a German utility's customers bank in most.
fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "DE" => 22,
        "AT" => 20,
        "CH" | "LI" => 21,
        "NL" => 18,
        "DK" | "FI" => 18,
        "BE" => 16,
        "LU" => 20,
        "FR" | "IT" | "MC" => 27,
        "ES" | "CZ" | "SK" | "SE" => 24,
        "PL" | "HU" => 28,
        "GB" | "IE" => 22,
        _ => return None,
    })
}

fn ibans(text: &str) -> Vec<Candidate> {
    IBAN_LIKE
        .find_iter(text)
        .filter_map(|m| {
            let compact: String = m
                .as_str()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_uppercase();
            // A reference like "DE12 3456" with too few characters is not an account number.
            if compact.len() < 15 || !compact[2..4].chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            // A following upper-case word can run into the match ("… 00 BITTE"): take the
            // longest valid prefix, else the country's length.
            let valid = (15..=compact.len())
                .rev()
                .find(|&n| iban::Iban::from_str(&compact[..n]).is_ok());
            let (value, problem) = match valid {
                Some(n) => (compact[..n].to_owned(), None),
                None => {
                    let n =
                        iban_length(&compact[..2]).map_or(compact.len(), |n| n.min(compact.len()));
                    let value = compact[..n].to_owned();
                    let problem = iban::Iban::from_str(&value)
                        .err()
                        .map_or("not a valid IBAN".to_owned(), |e| {
                            format!("not a valid IBAN ({e})")
                        });
                    (value, Some(problem))
                }
            };
            Some(Candidate {
                start: m.start(),
                end: m.end(),
                value: Value::String(value),
                problem,
            })
        })
        .collect()
}

fn dates(text: &str, cx: &Context) -> Vec<Candidate> {
    find_dates(text, cx.reference)
        .into_iter()
        .map(|f| {
            candidate(
                f.start,
                f.end,
                Value::String(f.date.format("%Y-%m-%d").to_string()),
            )
        })
        .collect()
}

fn amounts(text: &str, cx: &Context) -> Vec<Candidate> {
    AMOUNT
        .captures_iter(text)
        .filter_map(|c| {
            let m = c.get(0)?;
            c.get(1).or(c.get(3))?;
            let n = parse_number(c.get(2)?.as_str(), cx.language)?;
            Some(candidate(m.start(), m.end(), number_value(n)))
        })
        .collect()
}

fn meter_numbers(text: &str) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = METER_DIN
        .find_iter(text)
        .map(|m| candidate(m.start(), m.end(), Value::String(m.as_str().to_owned())))
        .collect();
    for c in METER_LABELLED.captures_iter(text) {
        let Some(v) = c.get(1) else { continue };
        let value = v.as_str().trim_end_matches(['-', '/']);
        // A meter number has digits, and is not a reading with its unit or a date.
        let digits = value.chars().filter(char::is_ascii_digit).count();
        let tail = text[v.end()..].trim_start().to_lowercase();
        if digits < 4
            || tail.starts_with("kwh")
            || tail.starts_with("m³")
            || tail.starts_with("m3")
            || value.contains(',')
            || out
                .iter()
                .any(|o| o.start <= v.start() && v.start() < o.end)
        {
            continue;
        }
        out.push(candidate(
            v.start(),
            v.start() + value.len(),
            Value::String(value.to_owned()),
        ));
    }
    out.sort_by_key(|c| c.start);
    out
}

fn meter_readings(text: &str, cx: &Context) -> Vec<Candidate> {
    let taken = blocked_spans(text, cx);
    let free = |s: usize, e: usize| !taken.iter().any(|(a, b)| s < *b && *a < e);
    let mut out = Vec::new();
    for c in NUMBER_WITH_UNIT.captures_iter(text) {
        let (Some(n), Some(unit)) = (c.get(1), c.get(2)) else {
            continue;
        };
        if !free(n.start(), n.end()) {
            continue;
        }
        if let Some(v) = parse_number(n.as_str(), cx.language) {
            // Units mark the reading itself; yearly consumption ("3.500 kWh im Jahr") is not one.
            let after = text[unit.end()..].to_lowercase();
            let yearly = [
                "im jahr",
                "pro jahr",
                "jährlich",
                "per year",
                "a year",
                "/jahr",
                "p.a.",
            ]
            .iter()
            .any(|w| after.trim_start().starts_with(w));
            if !yearly {
                out.push(candidate(n.start(), unit.end(), number_value(v)));
            }
        }
    }
    for c in READING_LABELLED.captures_iter(text) {
        let Some(n) = c.get(1) else { continue };
        if !free(n.start(), n.end()) || out.iter().any(|o: &Candidate| o.start == n.start()) {
            continue;
        }
        if let Some(v) = parse_number(n.as_str(), cx.language) {
            out.push(candidate(n.start(), n.end(), number_value(v)));
        }
    }
    out.sort_by_key(|c| c.start);
    out
}

/// Spans that hold other kinds of numbers: a reading is never part of a date, meter number,
/// IBAN or postal code.
fn blocked_spans(text: &str, cx: &Context) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    spans.extend(dates(text, cx).iter().map(|c| (c.start, c.end)));
    spans.extend(meter_numbers(text).iter().map(|c| (c.start, c.end)));
    spans.extend(ibans(text).iter().map(|c| (c.start, c.end)));
    spans.extend(
        POSTAL_CODE
            .captures_iter(text)
            .filter_map(|c| c.get(1))
            .map(|m| (m.start(), m.end())),
    );
    spans
}

fn addresses(text: &str) -> Vec<Candidate> {
    ADDRESS
        .captures_iter(text)
        .filter_map(|c| {
            let m = c.get(0)?;
            let street = c.get(1)?;
            let street = street_name(street.as_str())?;
            let plz = c.get(2)?.as_str();
            let city = c.get(3)?.as_str();
            let start = street
                .split_whitespace()
                .next()
                .and_then(|w| text[m.start()..].find(w))
                .map_or(m.start(), |o| m.start() + o);
            Some(candidate(
                start,
                m.end(),
                Value::String(format!("{street}, {plz} {city}")),
            ))
        })
        .collect()
}

/// Words before a street name that the pattern may catch: "neue Adresse Lindenstraße 5".
const NOT_STREET: &[&str] = &[
    "adresse",
    "anschrift",
    "address",
    "neue",
    "neuen",
    "meine",
    "meiner",
    "new",
    "my",
    "the",
    "in",
    "nach",
    "die",
    "der",
    "zur",
    "zum",
    "wohnung",
    "umzug",
    "haus",
    "to",
    "at",
    "ab",
    "wohne",
    "ich",
    "wir",
    "i",
    "we",
    "live",
    "lautet",
    "is",
    "ist",
    "jetzt",
    "now",
    "künftig",
];

/// The street and house number out of the words the pattern caught: the street word and at
/// most two capitalised words before it ("Karl-Marx-Allee 3", "Am Alten Markt 4").
fn street_name(raw: &str) -> Option<String> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    let number_at = words
        .iter()
        .position(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    if number_at == 0 {
        return None;
    }
    let mut first = number_at - 1;
    // "Am Stadtgarten 12", "An der Alster 3": the preposition belongs to the name.
    const LEADS: &[&str] = &[
        "am", "an", "im", "in", "auf", "zum", "zur", "unter", "hinter", "vor", "beim", "der",
        "den", "dem",
    ];
    if let Some(lead) = words[..number_at].iter().position(|w| {
        w.starts_with(char::is_uppercase) && LEADS.contains(&w.to_lowercase().as_str())
    }) {
        return Some(words[lead..].join(" "));
    }
    // A compound street word ("Hauptstraße", "Hugo-Junkers-Str.") is the whole name; a bare
    // suffix ("Kölner Straße", "Baker Street") takes the words before it.
    const BARE: &[&str] = &[
        "straße", "strasse", "str.", "weg", "allee", "platz", "gasse", "ring", "damm", "ufer",
        "chaussee", "street", "road", "avenue", "lane", "markt",
    ];
    if !BARE.contains(&words[first].to_lowercase().as_str()) {
        // A place adjective before it belongs to the name ("Weender Landstraße").
        if first > 0 {
            let before = words[first - 1];
            if before.starts_with(char::is_uppercase)
                && before.ends_with("er")
                && !NOT_STREET.contains(&before.to_lowercase().as_str())
            {
                first -= 1;
            }
        }
        return Some(words[first..].join(" "));
    }
    while first > 0 && number_at - first < 3 {
        let w = words[first - 1];
        let capitalised = w.starts_with(char::is_uppercase);
        if !capitalised || NOT_STREET.contains(&w.to_lowercase().as_str()) {
            break;
        }
        first -= 1;
    }
    Some(words[first..].join(" "))
}

fn postal_codes(text: &str) -> Vec<Candidate> {
    POSTAL_CODE
        .captures_iter(text)
        .filter_map(|c| c.get(1))
        .map(|m| candidate(m.start(), m.end(), Value::String(m.as_str().to_owned())))
        .collect()
}

fn emails(text: &str) -> Vec<Candidate> {
    EMAIL
        .find_iter(text)
        .map(|m| candidate(m.start(), m.end(), Value::String(m.as_str().to_lowercase())))
        .collect()
}

fn numbers(text: &str, cx: &Context) -> Vec<Candidate> {
    NUMBER
        .captures_iter(text)
        .filter_map(|c| {
            let m = c.get(1)?;
            Some(candidate(
                m.start(),
                m.end(),
                number_value(parse_number(m.as_str(), cx.language)?),
            ))
        })
        .collect()
}

/// Every value of `kind` in `text`, in text order.
pub fn candidates(kind: Kind, text: &str, cx: &Context) -> Vec<Candidate> {
    match kind {
        Kind::Iban => ibans(text),
        Kind::Date => dates(text, cx),
        Kind::Amount => amounts(text, cx),
        Kind::MeterNumber => meter_numbers(text),
        Kind::MeterReading => meter_readings(text, cx),
        Kind::Address => addresses(text),
        Kind::PostalCode => postal_codes(text),
        Kind::Email => emails(text),
        Kind::Number => numbers(text, cx),
    }
}

/// The candidate that belongs to the parameter: nearest a cue word (`keywords`; a leading `!`
/// marks a cue against, e.g. "!alte Adresse"), preferring values after the cue within the same
/// sentence. Without cues the first candidate wins.
pub fn pick<'c>(
    candidates: &'c [Candidate],
    text: &str,
    keywords: &[String],
) -> Option<&'c Candidate> {
    pick_favouring(candidates, text, keywords, &[])
}

/// As [`pick`], with a head start for candidates inside `favoured` spans (the sentences that
/// made the agent apply).
pub fn pick_favouring<'c>(
    candidates: &'c [Candidate],
    text: &str,
    keywords: &[String],
    favoured: &[(usize, usize)],
) -> Option<&'c Candidate> {
    let is_favoured = |c: &Candidate| favoured.iter().any(|(a, b)| c.start >= *a && c.end <= *b);
    let first = || {
        candidates
            .iter()
            .find(|c| is_favoured(c))
            .or(candidates.first())
    };
    if candidates.len() <= 1 || keywords.is_empty() {
        return first();
    }
    let lower = text.to_lowercase();
    let mut cues: Vec<(usize, bool)> = Vec::new();
    for k in keywords {
        let (word, positive) = match k.strip_prefix('!') {
            Some(w) => (w.to_lowercase(), false),
            None => (k.to_lowercase(), true),
        };
        if word.is_empty() {
            continue;
        }
        cues.extend(lower.match_indices(&word).map(|(i, _)| (i, positive)));
    }
    if cues.is_empty() {
        return first();
    }
    candidates
        .iter()
        .map(|c| {
            let score = cues
                .iter()
                .map(|&(at, positive)| {
                    let distance = if at <= c.start {
                        (c.start - at) as f64
                    } else {
                        // A cue after the value counts too, but less.
                        1.5 * (at - c.end.min(at)) as f64
                    };
                    let crosses_sentence = {
                        let (a, b) = if at <= c.start {
                            (at, c.start)
                        } else {
                            (c.end.min(at), at)
                        };
                        lower
                            .get(a..b)
                            .is_some_and(|s| s.contains(['.', '!', '?', '\n']))
                    };
                    let weight =
                        1.0 / (1.0 + distance / 20.0) * if crosses_sentence { 0.3 } else { 1.0 };
                    if positive {
                        weight
                    } else {
                        -1.2 * weight
                    }
                })
                .sum::<f64>()
                + if is_favoured(c) { 0.6 } else { 0.0 };
            (c, score)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context<'static> {
        Context {
            reference: NaiveDate::from_ymd_opt(2026, 10, 14).unwrap_or_default(),
            language: "de",
        }
    }

    fn values(kind: Kind, text: &str) -> Vec<Value> {
        candidates(kind, text, &cx())
            .into_iter()
            .map(|c| c.value)
            .collect()
    }

    #[test]
    fn ibans_are_checked() {
        let found = candidates(
            Kind::Iban,
            "neue IBAN: DE89 3704 0044 0532 0130 00 bitte",
            &cx(),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].value, "DE89370400440532013000");
        assert_eq!(found[0].problem, None);
        let bad = candidates(Kind::Iban, "IBAN DE89370400440532013001", &cx());
        assert!(bad[0].problem.is_some(), "{bad:?}");
    }

    #[test]
    fn numbers_in_both_conventions() {
        assert_eq!(parse_number("12.345,6", "de"), Some(12345.6));
        assert_eq!(parse_number("12,345.6", "en"), Some(12345.6));
        assert_eq!(parse_number("12.345", "de"), Some(12345.0));
        assert_eq!(parse_number("53,50", "de"), Some(53.5));
        assert_eq!(parse_number("53.50", "en"), Some(53.5));
        assert_eq!(number_value(53.0), serde_json::json!(53));
    }

    #[test]
    fn meter_numbers_and_readings() {
        let text = "Zählernummer 1ESY1160612345, Zählerstand 12.345,6 kWh am 13.10.2026";
        assert_eq!(
            values(Kind::MeterNumber, text),
            vec![Value::from("1ESY1160612345")]
        );
        assert_eq!(
            values(Kind::MeterReading, text),
            vec![serde_json::json!(12345.6)]
        );
        let plain = "mein Zähler Nr. 7147192 zeigt 4711 m³";
        assert_eq!(
            values(Kind::MeterNumber, plain),
            vec![Value::from("7147192")]
        );
        assert_eq!(
            values(Kind::MeterReading, plain),
            vec![serde_json::json!(4711)]
        );
        let yearly = "Verbrauch 3.500 kWh im Jahr";
        assert!(values(Kind::MeterReading, yearly).is_empty());
    }

    #[test]
    fn addresses_with_postal_code() {
        let text = "zu meiner neuen Adresse Hugo-Junkers-Str. 5 in 82031 Grünwald wechseln";
        assert_eq!(
            values(Kind::Address, text),
            vec![Value::from("Hugo-Junkers-Str. 5, 82031 Grünwald")]
        );
        assert_eq!(
            values(
                Kind::Address,
                "Ab 1.11. wohne ich in der Lindenstraße 5, 10115 Berlin."
            ),
            vec![Value::from("Lindenstraße 5, 10115 Berlin")]
        );
    }

    #[test]
    fn amounts_need_a_currency() {
        assert_eq!(
            values(Kind::Amount, "Abschlag von 80 € auf 95,50 EUR, Kunde 12345"),
            vec![serde_json::json!(80), serde_json::json!(95.5)]
        );
    }

    #[test]
    fn cue_words_pick_the_right_value() {
        let text = "Ich ziehe nächsten Donnerstag ein. Können Sie meinen alten Vertrag zum 1. November kündigen?";
        let found = candidates(Kind::Date, text, &cx());
        let move_date = pick(&found, text, &["ziehe".into(), "einzug".into()]);
        assert_eq!(
            move_date.map(|c| c.value.clone()),
            Some(Value::from("2026-10-22"))
        );
        let cancel = pick(&found, text, &["kündig".into(), "vertrag".into()]);
        assert_eq!(
            cancel.map(|c| c.value.clone()),
            Some(Value::from("2026-11-01"))
        );
        let amounts = candidates(Kind::Amount, "von 80 € auf 95 € ändern", &cx());
        let new = pick(
            &amounts,
            "von 80 € auf 95 € ändern",
            &["auf".into(), "!von".into()],
        );
        assert_eq!(new.map(|c| c.value.clone()), Some(serde_json::json!(95)));
    }
}
