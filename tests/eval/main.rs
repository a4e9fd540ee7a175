//! The evaluation command: runs the offline ai path (the same `analyze` the ai stage runs, with
//! the default agents and the embedding detector) over the labelled corpus and prints one figure
//! per capability.
//!
//!   switchyard-eval [--corpus tests/eval/corpus/mails.jsonl] [--split test|train|all] [--verbose]
//!                   [--oracle-intents]   (gold intents: parameter extraction alone)
//!
//! The test split was frozen before any tuning; report it. `--verbose` prints every miss.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_ai::analysis::{analyze, MessageInput, Scored, Thresholds};
use switchyard_domain::AiAgent;
use switchyard_nlp::sentiment::Sentiment;
use switchyard_nlp::LanguageDetector;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    id: String,
    split: String,
    lang: String,
    date: DateTime<Utc>,
    #[serde(default)]
    from: Option<String>,
    subject: String,
    body: String,
    intents: Vec<String>,
    #[serde(default)]
    params: Map<String, Value>,
    sentiment: String,
    #[serde(default)]
    invalid_iban: bool,
    #[serde(default)]
    spam: bool,
    #[serde(default)]
    auto_reply: bool,
}

#[derive(Default)]
struct Counts {
    language_ok: usize,
    mails: usize,
    top1_ok: usize,
    top1_n: usize,
    tp: usize,
    fp: usize,
    fn_: usize,
    none_ok: usize,
    none_n: usize,
    params_ok: usize,
    params_n: usize,
    neg_ok: usize,
    neg_n: usize,
    neg_predicted: usize,
    sentiment_ok: usize,
    invalid_iban_ready: usize,
    invalid_iban_n: usize,
    machine_ok: usize,
    machine_n: usize,
    clean_flagged: usize,
    clean_n: usize,
    millis: Vec<f64>,
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "n/a".to_owned()
    } else {
        format!("{:.1} % ({a}/{b})", 100.0 * a as f64 / b as f64)
    }
}

/// Parameter values compare as numbers when both are numbers, else as text without case and
/// spaces.
fn same_value(gold: &Value, got: &Value) -> bool {
    match (gold.as_f64(), got.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-6,
        _ => {
            let norm = |v: &Value| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
                    .to_lowercase()
                    .split_whitespace()
                    .collect::<String>()
            };
            norm(gold) == norm(got)
        }
    }
}

fn main() -> Result<()> {
    let mut corpus = "tests/eval/corpus/mails.jsonl".to_owned();
    let mut split = "test".to_owned();
    let mut verbose = false;
    // Gold intents instead of the detector: measures parameter extraction alone.
    let mut oracle = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--corpus" => corpus = args.next().context("--corpus needs a path")?,
            "--split" => split = args.next().context("--split needs test, train or all")?,
            "--verbose" => verbose = true,
            "--oracle-intents" => oracle = true,
            other => bail!("unknown argument {other}"),
        }
    }
    let raw = std::fs::read_to_string(&corpus).with_context(|| format!("reading {corpus}"))?;
    let mails: Vec<Mail> = raw
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{corpus}:{}", i + 1)))
        .collect::<Result<_>>()?;
    let mails: Vec<&Mail> = mails
        .iter()
        .filter(|m| split == "all" || m.split == split)
        .collect();

    let mut agents: Vec<AiAgent> = switchyard_api::ai_agents::default_agents()?;
    for (i, a) in agents.iter_mut().enumerate() {
        a.id = i as i64 + 1;
    }
    let detector = if oracle {
        None
    } else {
        let build = switchyard_ai::embedding::builder()
            .map_err(anyhow::Error::msg)
            .context("loading the intent model (run deploy/local/fetch-models)")?;
        Some(build(&agents).map_err(anyhow::Error::msg)?)
    };
    let languages = LanguageDetector::default();
    let allowed = vec!["de".to_owned(), "en".to_owned()];

    let mut c = Counts::default();
    for m in &mails {
        c.mails += 1;
        let started = Instant::now();
        let own = switchyard_nlp::text::own_words(&m.body);
        let lang = languages
            .detect(&format!("{}\n{own}", m.subject), &allowed)
            .map_or("de".to_owned(), |d| d.code);
        let scores = match &detector {
            Some(d) => d.detect(&m.subject, &own).map_err(anyhow::Error::msg)?,
            None => m
                .intents
                .iter()
                .map(|slug| Scored {
                    slug: slug.clone(),
                    confidence: 1.0,
                    detected: true,
                    evidence: Vec::new(),
                })
                .collect(),
        };
        let a = analyze(
            &MessageInput {
                subject: &m.subject,
                body: &m.body,
                from: m.from.as_deref(),
                date: m.date,
                channel: "email",
                language: &lang,
                auto_submitted: false,
            },
            &agents,
            &scores,
            &[],
            Thresholds::default(),
        );
        c.millis.push(started.elapsed().as_secs_f64() * 1000.0);

        if lang == m.lang {
            c.language_ok += 1;
        } else if verbose {
            println!("{}: language {lang}, expected {}", m.id, m.lang);
        }
        let gold: BTreeSet<&str> = m.intents.iter().map(String::as_str).collect();
        let got: BTreeSet<&str> = a.intents.iter().map(|i| i.slug.as_str()).collect();
        c.tp += gold.intersection(&got).count();
        c.fp += got.difference(&gold).count();
        c.fn_ += gold.difference(&got).count();
        if gold.len() == 1 {
            c.top1_n += 1;
            let top = a.intents.first().map(|i| i.slug.as_str());
            if top.is_some_and(|t| gold.contains(t)) {
                c.top1_ok += 1;
            } else if verbose {
                println!("{}: top-1 {top:?}, expected {gold:?}", m.id);
            }
        }
        if gold.is_empty() {
            c.none_n += 1;
            if got.is_empty() {
                c.none_ok += 1;
            } else if verbose {
                println!("{}: no agent expected, got {got:?}", m.id);
            }
        } else if verbose && gold != got {
            println!("{}: intents {got:?}, expected {gold:?}", m.id);
        }
        for (slug, params) in &m.params {
            let Some(params) = params.as_object() else {
                continue;
            };
            let found = a.intents.iter().find(|i| i.slug == *slug);
            for (key, value) in params {
                c.params_n += 1;
                let got = found.and_then(|i| i.data.get(key));
                if got.is_some_and(|g| same_value(value, g)) {
                    c.params_ok += 1;
                } else if verbose {
                    println!("{}: {slug}.{key} = {got:?}, expected {value}", m.id);
                }
            }
        }
        let predicted = a.sentiment.as_str();
        if predicted == m.sentiment {
            c.sentiment_ok += 1;
        }
        if a.sentiment == Sentiment::Negative {
            c.neg_predicted += 1;
        }
        if m.sentiment == "negative" {
            c.neg_n += 1;
            if a.sentiment == Sentiment::Negative {
                c.neg_ok += 1;
            } else if verbose {
                println!("{}: sentiment {predicted}, expected negative", m.id);
            }
        }
        let flagged = a.spam != switchyard_nlp::spam::SpamStatus::Clean;
        if m.spam || m.auto_reply {
            c.machine_n += 1;
            if flagged {
                c.machine_ok += 1;
            } else if verbose {
                println!("{}: spam/auto-reply not recognised", m.id);
            }
        } else {
            c.clean_n += 1;
            if flagged {
                c.clean_flagged += 1;
                if verbose {
                    println!("{}: a customer's mail flagged {}", m.id, a.spam.as_str());
                }
            }
        }
        if m.invalid_iban {
            c.invalid_iban_n += 1;
            if a.intents
                .iter()
                .any(|i| i.slug == "bank_data_agent" && i.status == "ready")
            {
                c.invalid_iban_ready += 1;
                println!("{}: an invalid IBAN made a ready intent", m.id);
            }
        }
    }

    let precision = c.tp as f64 / (c.tp + c.fp).max(1) as f64;
    let recall = c.tp as f64 / (c.tp + c.fn_).max(1) as f64;
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    c.millis.sort_by(f64::total_cmp);
    let mean = c.millis.iter().sum::<f64>() / c.millis.len().max(1) as f64;
    let p95 = c
        .millis
        .get((c.millis.len() as f64 * 0.95) as usize)
        .copied()
        .unwrap_or_default();
    println!("corpus {corpus}, split {split}: {} mails", c.mails);
    println!("  language accuracy       {}", pct(c.language_ok, c.mails));
    println!("  intent top-1            {}", pct(c.top1_ok, c.top1_n));
    println!("  intent micro-F1         {f1:.3} (precision {precision:.3}, recall {recall:.3})");
    println!("  \"no agent\" recall       {}", pct(c.none_ok, c.none_n));
    println!("  parameter exact match   {}", pct(c.params_ok, c.params_n));
    println!("  sentiment neg. recall   {}", pct(c.neg_ok, c.neg_n));
    println!(
        "  sentiment neg. precision {}",
        pct(c.neg_ok, c.neg_predicted)
    );
    println!("  sentiment 3-class acc.  {}", pct(c.sentiment_ok, c.mails));
    println!(
        "  invalid IBAN → ready    {} of {}",
        c.invalid_iban_ready, c.invalid_iban_n
    );
    println!(
        "  spam/auto-reply recall  {}",
        pct(c.machine_ok, c.machine_n)
    );
    println!(
        "  customer mail flagged   {}",
        pct(c.clean_flagged, c.clean_n)
    );
    println!("  ms per mail (wall, one thread): mean {mean:.1}, p95 {p95:.1}");
    Ok(())
}
