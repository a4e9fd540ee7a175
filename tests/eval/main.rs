//! The evaluation command: runs the offline ai path (the same `analyze` the ai stage runs, with
//! the default agents and the embedding detector) over the labelled corpus and prints one figure
//! per capability.
//!
//!   switchyard-eval [--corpus tests/eval/corpus/mails.jsonl] [--split test2|test|train|tuning|all] [--verbose]
//!                   [--oracle-intents]   (gold intents: parameter extraction alone)
//!                   [--api http://127.0.0.1:8080 --token-file .local/admin-token]
//!                                        (score a running system through its API)
//!
//! `test2` (the default) is the split to report: frozen on 2026-12-04 before any tuning on it, while
//! `train` and the older `test` split are tuned on (tests/eval/corpus/README.md). `tuning` is
//! `train` + `test` (use it while tuning), `all` is every split, `test2` included. `--verbose`
//! prints every miss. In process it also prints the CPU time of one text-only mail's whole
//! analysis (thread CPU time, so other load on the machine does not inflate it).

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_ai::analysis::{analyze, MessageInput, Scored, Thresholds};
use switchyard_domain::AiAgent;
use switchyard_nlp::LanguageDetector;

/// The splits that may be tuned on (`--split tuning`); `test2` is the frozen evaluation split.
const TUNING_SPLITS: &[&str] = &["train", "test"];

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

/// What the system made of one mail: language, intents (slug, status, data) best first,
/// sentiment, and whether it was flagged as spam or machine-sent.
struct Prediction {
    lang: String,
    intents: Vec<(String, String, Map<String, Value>)>,
    sentiment: String,
    flagged: bool,
}

/// A running Switchyard, scored through its API like any client would.
struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
    run: String,
}

impl Api {
    fn new(url: String, token: String) -> Result<Api> {
        Ok(Api {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            url: url.trim_end_matches('/').to_owned(),
            token,
            run: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("GET {path}: {status} {v}");
        }
        Ok(v)
    }

    async fn predict(&self, m: &Mail) -> Result<Prediction> {
        let body = serde_json::json!({
            "channel": "email", "from": m.from, "subject": m.subject, "body": m.body,
            "createdAt": m.date.to_rfc3339(),
        });
        let r = self
            .http
            .post(format!("{}/api/mind/ticket", self.url))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", format!("eval-{}-{}", self.run, m.id))
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let t: Value = r.json().await.unwrap_or(Value::Null);
        let id = t["id"]
            .as_i64()
            .with_context(|| format!("POST ticket for {}: {status} {t}", m.id))?;
        let started = Instant::now();
        loop {
            let a = self.get(&format!("/api/mind/ticket/{id}/activity")).await?;
            let analysed = a["activity"]
                .as_array()
                .is_some_and(|l| l.iter().any(|e| e["stage"] == "ai"));
            if analysed {
                break;
            }
            if started.elapsed() > std::time::Duration::from_secs(60) {
                bail!("ticket {id} ({}) not analysed within a minute", m.id);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let ticket = self.get(&format!("/api/mind/ticket/{id}")).await?;
        let found = self
            .get(&format!("/api/mind/intent/byTicketId/{id}"))
            .await?;
        let mut intents: Vec<(f64, String, String, Map<String, Value>)> = found["intents"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|i| {
                        (
                            i["confidence"].as_f64().unwrap_or_default(),
                            i["code"].as_str().unwrap_or_default().to_owned(),
                            i["status"].as_str().unwrap_or_default().to_owned(),
                            i["data"].as_object().cloned().unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        intents.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(Prediction {
            lang: ticket["languageCode"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            intents: intents.into_iter().map(|(_, c, s, d)| (c, s, d)).collect(),
            sentiment: ticket["sentiment"].as_str().unwrap_or_default().to_owned(),
            flagged: ticket["spamStatus"]
                .as_str()
                .is_some_and(|s| s != "auto_clean" && s != "manual_clean"),
        })
    }
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
    /// CPU time of this thread per mail (in-process runs only).
    cpu_millis: Vec<f64>,
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
    let mut split = "test2".to_owned();
    let mut verbose = false;
    // Gold intents instead of the detector: measures parameter extraction alone.
    let mut oracle = false;
    // Through a running system's API instead of in process (the held-out set is scored so).
    let mut api_url: Option<String> = None;
    let mut token_file: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--corpus" => corpus = args.next().context("--corpus needs a path")?,
            "--split" => {
                split = args
                    .next()
                    .context("--split needs test2, test, train, tuning or all")?
            }
            "--verbose" => verbose = true,
            "--oracle-intents" => oracle = true,
            "--api" => api_url = Some(args.next().context("--api needs the API's base URL")?),
            "--token-file" => token_file = Some(args.next().context("--token-file needs a path")?),
            other => bail!("unknown argument {other}"),
        }
    }
    // An unknown split would silently score zero mails.
    if !["test2", "test", "train", "tuning", "all"].contains(&split.as_str()) {
        bail!("--split must be test2, test, train, tuning or all, not {split}");
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
        .filter(|m| match split.as_str() {
            "all" => true,
            "tuning" => TUNING_SPLITS.contains(&m.split.as_str()),
            s => m.split == s,
        })
        .collect();

    let mut agents: Vec<AiAgent> = switchyard_api::ai_agents::default_agents()?;
    for (i, a) in agents.iter_mut().enumerate() {
        a.id = i as i64 + 1;
    }
    let api = match (api_url, token_file) {
        (Some(url), Some(file)) => Some((
            url,
            std::fs::read_to_string(&file)
                .with_context(|| format!("reading {file}"))?
                .trim()
                .to_owned(),
        )),
        (Some(_), None) => bail!("--api needs --token-file"),
        _ => None,
    };
    let detector = if oracle || api.is_some() {
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
    let api = api.map(|(url, token)| Api::new(url, token)).transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for m in &mails {
        c.mails += 1;
        let started = Instant::now();
        let cpu_started = switchyard_intents::cpu::thread_cpu_secs();
        let p = match &api {
            Some(api) => runtime.block_on(api.predict(m))?,
            None => {
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
                Prediction {
                    lang,
                    intents: a
                        .intents
                        .iter()
                        .map(|i| (i.slug.clone(), i.status.to_owned(), i.data.clone()))
                        .collect(),
                    sentiment: a.sentiment.as_str().to_owned(),
                    flagged: a.spam != switchyard_nlp::spam::SpamStatus::Clean,
                }
            }
        };
        c.millis.push(started.elapsed().as_secs_f64() * 1000.0);
        if api.is_none() {
            c.cpu_millis
                .push((switchyard_intents::cpu::thread_cpu_secs() - cpu_started) * 1000.0);
        }
        let lang = p.lang.clone();
        if lang == m.lang {
            c.language_ok += 1;
        } else if verbose {
            println!("{}: language {lang}, expected {}", m.id, m.lang);
        }
        let gold: BTreeSet<&str> = m.intents.iter().map(String::as_str).collect();
        let got: BTreeSet<&str> = p.intents.iter().map(|i| i.0.as_str()).collect();
        c.tp += gold.intersection(&got).count();
        c.fp += got.difference(&gold).count();
        c.fn_ += gold.difference(&got).count();
        if gold.len() == 1 {
            c.top1_n += 1;
            let top = p.intents.first().map(|i| i.0.as_str());
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
            let found = p.intents.iter().find(|i| i.0 == *slug);
            for (key, value) in params {
                c.params_n += 1;
                let got = found.and_then(|i| i.2.get(key));
                if got.is_some_and(|g| same_value(value, g)) {
                    c.params_ok += 1;
                } else if verbose {
                    println!("{}: {slug}.{key} = {got:?}, expected {value}", m.id);
                }
            }
        }
        let predicted = p.sentiment.as_str();
        if predicted == m.sentiment {
            c.sentiment_ok += 1;
        }
        if predicted == "negative" {
            c.neg_predicted += 1;
        }
        if m.sentiment == "negative" {
            c.neg_n += 1;
            if predicted == "negative" {
                c.neg_ok += 1;
            } else if verbose {
                println!("{}: sentiment {predicted}, expected negative", m.id);
            }
        }
        let flagged = p.flagged;
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
                    println!(
                        "{}: a customer's mail flagged as machine-sent or spam",
                        m.id
                    );
                }
            }
        }
        if m.invalid_iban {
            c.invalid_iban_n += 1;
            if p.intents
                .iter()
                .any(|i| i.0 == "bank_data_agent" && i.1 == "ready")
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
    if !c.cpu_millis.is_empty() {
        // The whole offline analysis of a text-only mail (language, intents with the encoder,
        // parameters, sentiment, spam) on one thread: CPU time, unaffected by other processes
        // on a shared machine. The encoder's one-time model build is not in it.
        c.cpu_millis.sort_by(f64::total_cmp);
        let n = c.cpu_millis.len();
        let mean = c.cpu_millis.iter().sum::<f64>() / n as f64;
        let p95 = c.cpu_millis[(n as f64 * 0.95) as usize % n];
        let median = c.cpu_millis[n / 2];
        println!(
            "  CPU ms per text-only mail (one core): mean {mean:.1}, median {median:.1}, p95 {p95:.1}"
        );
    }
    Ok(())
}
