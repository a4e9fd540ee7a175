//! `switchyard-eval-intents`: the default agents on a labelled mail corpus (JSON lines with
//! `subject`, `body`, `intents[]` and `split`), for tuning thresholds and examples.
//!
//! Only lines of the tuning splits `train` and `test` are used (`TUNING_SPLITS`): the frozen
//! evaluation split `test2`, and any other, is filtered out here, before anything else reads it,
//! so tuning never sees it. Prints intent top-1 (the best agent is one of
//! the gold intents, on mails with at least one), multi-label micro-F1, "no agent" recall, and a
//! sweep of the detection threshold.
//!
//! ```text
//! cargo run --release -p switchyard-intents --bin switchyard-eval-intents -- --corpus PATH [--errors]
//!     [--threshold T] [--no-whole-text] [--sentence-penalty P] [--second-view]
//! ```

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use switchyard_intents::{defaults, Encoder, IntentModel, PreparedMail};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Corpus splits that may be tuned on. `test2` is the frozen evaluation split (see
/// tests/eval/corpus/README.md) and must never be added here.
const TUNING_SPLITS: &[&str] = &["train", "test"];

#[derive(Deserialize)]
struct Mail {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    intents: Vec<serde_json::Value>,
    #[serde(default)]
    split: String,
}

/// Gold slugs: `intents` may hold slugs or objects with a `code`/`slug`.
fn gold(m: &Mail) -> BTreeSet<String> {
    m.intents
        .iter()
        .filter_map(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(o) => o
                .get("code")
                .or_else(|| o.get("slug"))
                .and_then(|s| s.as_str())
                .map(str::to_string),
            _ => None,
        })
        .collect()
}

struct Scores {
    top1: f64,
    f1: f64,
    none_recall: f64,
    precision: f64,
    recall: f64,
}

fn evaluate(
    detected: &[BTreeSet<String>],
    tops: &[Option<String>],
    golds: &[BTreeSet<String>],
) -> Scores {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    let (mut top_ok, mut top_n, mut none_ok, mut none_n) = (0usize, 0usize, 0usize, 0usize);
    for ((d, t), g) in detected.iter().zip(tops).zip(golds) {
        tp += d.intersection(g).count();
        fp += d.difference(g).count();
        fn_ += g.difference(d).count();
        if g.is_empty() {
            none_n += 1;
            none_ok += usize::from(d.is_empty());
        } else {
            top_n += 1;
            top_ok += usize::from(t.as_ref().is_some_and(|t| g.contains(t)));
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    Scores {
        top1: top_ok as f64 / top_n.max(1) as f64,
        f1: if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        },
        none_recall: none_ok as f64 / none_n.max(1) as f64,
        precision,
        recall,
    }
}

fn run() -> Result<ExitCode, BoxError> {
    let mut corpus = PathBuf::from("../wt-corpus/tests/eval/corpus/mails.jsonl");
    let mut show_errors = false;
    let mut show_segments = false;
    let mut threshold: Option<f32> = None;
    let mut whole_text: Option<bool> = None;
    let mut sentence_penalty: Option<f32> = None;
    let mut second_view: Option<bool> = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--corpus" => corpus = PathBuf::from(it.next().ok_or("--corpus needs a path")?),
            "--errors" => show_errors = true,
            "--no-whole-text" => whole_text = Some(false),
            "--segments" => show_segments = true,
            "--second-view" => second_view = Some(true),
            "--sentence-penalty" => {
                sentence_penalty = Some(
                    it.next()
                        .ok_or("--sentence-penalty needs a value")?
                        .parse()?,
                )
            }
            "--threshold" => {
                threshold = Some(it.next().ok_or("--threshold needs a value")?.parse()?)
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let text =
        std::fs::read_to_string(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let mut mails = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let m: Mail = serde_json::from_str(line)?;
        if TUNING_SPLITS.contains(&m.split.as_str()) {
            mails.push(m);
        }
    }
    drop(text);
    let golds: Vec<BTreeSet<String>> = mails.iter().map(gold).collect();
    println!(
        "{} tuning mails (train + test) ({} with no intent, {} with several)",
        mails.len(),
        golds.iter().filter(|g| g.is_empty()).count(),
        golds.iter().filter(|g| g.len() > 1).count()
    );

    let encoder = Arc::new(Encoder::from_env()?.with_batch_threads(2));
    let encoder_ref = encoder.clone();
    let agents = defaults::specs()?;
    let t = Instant::now();
    let mut model = IntentModel::build(encoder, &agents)?;
    if threshold.is_some()
        || whole_text.is_some()
        || sentence_penalty.is_some()
        || second_view.is_some()
    {
        let base = *model.config();
        let config = switchyard_intents::Config {
            threshold: threshold.unwrap_or(base.threshold),
            whole_text: whole_text.unwrap_or(base.whole_text),
            sentence_penalty: sentence_penalty.unwrap_or(base.sentence_penalty),
            second_view: second_view.unwrap_or(base.second_view),
            ..base
        };
        model = model.with_config(config, &agents)?;
    }
    println!(
        "build (cold, embeds the examples): {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    // What an operator's edit costs: one agent gets two new phrases, the model is rebuilt.
    let mut changed = agents.clone();
    if let Some(a) = changed.first_mut() {
        a.examples
            .push("Neuer Zählerstand für meine Wohnung".into());
        a.examples
            .push("Here's the reading from my gas meter".into());
    }
    let t = Instant::now();
    let _ = model.rebuild(&changed)?;
    println!(
        "rebuild after one agent changed (2 new phrases): {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    // The encoder's cache holds the examples now; count only what the mails add.
    let (hits0, misses0) = encoder_ref.cache_stats();
    let mut prepared: Vec<PreparedMail> = Vec::with_capacity(mails.len());
    let (t, cpu) = (Instant::now(), switchyard_intents::cpu::thread_cpu_secs());
    let mut segments = 0;
    for m in &mails {
        let p = model.prepare(&m.subject, &m.body)?;
        segments += p.segments().len();
        prepared.push(p);
    }
    let cpu_prepare = switchyard_intents::cpu::thread_cpu_secs() - cpu;
    let (hits, misses) = encoder_ref.cache_stats();
    let (hits, misses) = (hits - hits0, misses - misses0);
    let mut tokens = 0usize;
    for m in &mails {
        let texts = model.embedding_texts(&m.subject, &m.body);
        let counts: Vec<usize> = texts
            .iter()
            .map(|t| encoder_ref.token_count(t, switchyard_intents::Kind::Query))
            .collect();
        tokens += counts.iter().sum::<usize>();
        if show_segments {
            println!("--- {}", m.subject);
            for (t, c) in texts.iter().zip(&counts) {
                println!("  [{c:>3}] {t}");
            }
        }
    }
    let wall_prepare = t.elapsed().as_secs_f64();
    let cpu = switchyard_intents::cpu::thread_cpu_secs();
    for p in &prepared {
        let _ = model.score(p);
    }
    let cpu_score = switchyard_intents::cpu::thread_cpu_secs() - cpu;
    let n = mails.len().max(1) as f64;
    println!(
        "per mail: {:.1} ms CPU to split and embed ({:.1} sentences, {:.1} tokens to embed on \
         average; wall {:.1} ms), {:.2} ms CPU to score; engine {}, {} of {} texts from the cache",
        cpu_prepare * 1e3 / n,
        segments as f64 / n,
        tokens as f64 / n,
        wall_prepare * 1e3 / n,
        cpu_score * 1e3 / n,
        encoder_ref.isa().name(),
        hits,
        hits + misses
    );

    let config = *model.config();
    let sweep: Vec<f32> = (0..=24).map(|i| 0.40 + 0.025 * i as f32).collect();
    println!(
        "\n{:>9} {:>7} {:>9} {:>8} {:>8} {:>8}",
        "threshold", "top-1", "micro-F1", "P", "R", "none-R"
    );
    let detections: Vec<_> = prepared.iter().map(|p| model.score(p)).collect();
    for th in sweep
        .iter()
        .copied()
        .chain(std::iter::once(config.threshold))
    {
        let detected: Vec<BTreeSet<String>> = detections
            .iter()
            .map(|d| {
                d.agents
                    .iter()
                    .filter(|a| a.score >= th)
                    .map(|a| a.key.clone())
                    .collect()
            })
            .collect();
        let tops: Vec<Option<String>> = detections
            .iter()
            .map(|d| d.top().map(|a| a.key.clone()))
            .collect();
        let s = evaluate(&detected, &tops, &golds);
        let mark = if (th - config.threshold).abs() < 1e-6 {
            " ← Config::default"
        } else {
            ""
        };
        println!(
            "{:>9.3} {:>7.3} {:>9.3} {:>8.3} {:>8.3} {:>8.3}{mark}",
            th, s.top1, s.f1, s.precision, s.recall, s.none_recall
        );
    }
    if show_errors {
        println!("\nerrors at threshold {}:", config.threshold);
        for ((m, d), g) in mails.iter().zip(&detections).zip(&golds) {
            let got: BTreeSet<String> = d.detected().map(|a| a.key.clone()).collect();
            if &got != g {
                println!(
                    "- gold {:?} got {:?} | {} | {}",
                    g,
                    got,
                    m.subject,
                    m.body
                        .replace('\n', " ")
                        .chars()
                        .take(160)
                        .collect::<String>()
                );
                for a in d.agents.iter().take(3) {
                    println!(
                        "    {:<18} {:.3} {:?}",
                        a.key,
                        a.score,
                        a.evidence.as_deref().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
