//! `switchyard-bench-banking77`: Banking77 10-shot top-1 through the intent detector.
//!
//! 77 agents, each with the first 10 training phrases of its category as examples
//! (`few-shot.json`), scored top-1 on the test set (3,080 rows; `--split sample` for the 770-row
//! sample, `--split dev` for rows 11–30 of each category in `train.csv`, which the variants were
//! compared on before the test set was run). Prints, per scoring variant, the accuracy, the
//! model build time and the scoring time, plus the embedding time per query (one core).
//!
//! ```text
//! deploy/local/fetch-models
//! cargo run --release -p switchyard-intents --bin switchyard-bench-banking77 -- [--split test|sample|dev] [--variants all|default|new] [--threads 2] [--data DIR]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use switchyard_intents::{AgentSpec, Config, Encoder, HeadParams, IntentModel, Kind, PreparedMail};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    data: PathBuf,
    split: String,
    variants: String,
    threads: usize,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        data: default_data_dir(),
        split: "test".into(),
        variants: "all".into(),
        threads: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--data" => args.data = PathBuf::from(value()?),
            "--split" => args.split = value()?,
            "--variants" => args.variants = value()?,
            "--threads" => args.threads = value()?.parse()?,
            "-h" | "--help" => {
                println!("usage: switchyard-bench-banking77 [--split test|sample|dev] [--variants all|default|new] [--threads N] [--data DIR]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(args)
}

/// `../shared/benchmarks/banking77` beside the repository (where the team's shared data lives).
fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BANKING77_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/benchmarks/banking77")
}

/// Minimal RFC 4180 reader for `text,category` rows (quoted fields, doubled quotes, CRLF).
fn read_csv(path: &Path) -> Result<Vec<(String, String)>, BoxError> {
    let data = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    let mut field = String::new();
    let mut record: Vec<String> = Vec::new();
    let mut in_quotes = false;
    let mut chars = data.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_quotes, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => in_quotes = false,
            (true, c) => field.push(c),
            (false, '"') => in_quotes = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                if let [text, cat] = &record[..] {
                    rows.push((text.clone(), cat.clone()));
                }
                record.clear();
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        if let [text, cat] = &record[..] {
            rows.push((text.clone(), cat.clone()));
        }
    }
    if rows
        .first()
        .is_some_and(|(t, c)| t == "text" && c == "category")
    {
        rows.remove(0);
    }
    Ok(rows)
}

fn variants(which: &str) -> Vec<(&'static str, Config)> {
    let base = Config {
        knn_k: 0,
        knn_weight: 1.0,
        head: None,
        head_weight: 0.0,
        lexical_weight: 0.0,
        example_kind: Kind::Query,
        second_view: false,
        use_description: false,
        whole_text: true,
        center: false,
        background_penalty: 0.0,
        ..Config::default()
    };
    let head = Some(HeadParams::default());
    let all = vec![
        ("prototype", base),
        (
            "prototype, passage: examples",
            Config {
                example_kind: Kind::Passage,
                ..base
            },
        ),
        (
            "prototype, sentences only",
            Config {
                whole_text: false,
                ..base
            },
        ),
        (
            "prototype, centred",
            Config {
                center: true,
                ..base
            },
        ),
        (
            "kNN k=1 (nearest example), centred",
            Config {
                knn_k: 1,
                center: true,
                ..base
            },
        ),
        (
            "kNN k=3, centred",
            Config {
                knn_k: 3,
                center: true,
                ..base
            },
        ),
        (
            "softmax head, centred",
            Config {
                knn_weight: 0.0,
                head,
                head_weight: 1.0,
                center: true,
                ..base
            },
        ),
        (
            "kNN k=3 + head, centred",
            Config {
                knn_k: 3,
                head,
                head_weight: 1.0,
                center: true,
                ..base
            },
        ),
        (
            "kNN k=3 + head + TF-IDF 0.3",
            Config {
                knn_k: 3,
                head,
                head_weight: 1.0,
                lexical_weight: 0.3,
                center: true,
                ..base
            },
        ),
        (
            "kNN k=3 + head + description",
            Config {
                knn_k: 3,
                head,
                head_weight: 1.0,
                use_description: true,
                center: true,
                ..base
            },
        ),
        (
            "default + second view",
            Config {
                second_view: true,
                ..Config::default()
            },
        ),
        (
            "head only, second view",
            Config {
                knn_weight: 0.0,
                head,
                head_weight: 1.0,
                center: true,
                second_view: true,
                ..base
            },
        ),
        (
            "default + 2nd view, sentence penalty 0.05",
            Config {
                second_view: true,
                sentence_penalty: 0.05,
                ..Config::default()
            },
        ),
        (
            "default + 2nd view, sentence penalty 0.1",
            Config {
                second_view: true,
                sentence_penalty: 0.1,
                ..Config::default()
            },
        ),
        (
            "default + 2nd view, whole text only",
            Config {
                second_view: true,
                sentence_penalty: 1.0,
                ..Config::default()
            },
        ),
        ("default Config", Config::default()),
    ];
    if which == "new" {
        let n = all.len();
        all.into_iter().skip(n.saturating_sub(6)).collect()
    } else if which == "default" {
        all.into_iter()
            .filter(|(_, c)| *c == Config::default())
            .collect()
    } else {
        all
    }
}

fn run() -> Result<ExitCode, BoxError> {
    let args = parse_args()?;
    let few_shot: BTreeMap<String, Vec<String>> = serde_json::from_str(
        &std::fs::read_to_string(args.data.join("few-shot.json"))
            .map_err(|e| format!("{}: {e}", args.data.join("few-shot.json").display()))?,
    )?;
    let order: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(args.data.join("categories.json"))?)?;
    let agents: Vec<AgentSpec> = order
        .iter()
        .map(|c| AgentSpec {
            key: c.clone(),
            description: c.replace('_', " "),
            examples: few_shot.get(c).cloned().unwrap_or_default(),
        })
        .collect();
    let queries: Vec<(String, String)> = match args.split.as_str() {
        "test" => read_csv(&args.data.join("test.csv"))?,
        "sample" => {
            let rows: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(
                args.data.join("test-sample.json"),
            )?)?;
            rows.iter()
                .filter_map(|r| {
                    Some((
                        r.get("text")?.as_str()?.to_string(),
                        r.get("category")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        }
        "dev" => {
            // Rows 11–30 of each category in train.csv: training data the examples are not from.
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            read_csv(&args.data.join("train.csv"))?
                .into_iter()
                .filter(|(_, c)| {
                    let n = seen.entry(c.clone()).or_default();
                    *n += 1;
                    (11..=30).contains(n)
                })
                .collect()
        }
        other => return Err(format!("unknown split {other}").into()),
    };
    println!(
        "Banking77 10-shot: {} agents × {} examples, {} {} queries, {} thread(s) for building",
        agents.len(),
        agents.iter().map(|a| a.examples.len()).min().unwrap_or(0),
        queries.len(),
        args.split,
        args.threads
    );

    let encoder = Arc::new(Encoder::from_env()?.with_batch_threads(args.threads));
    let chosen = variants(&args.variants);
    let first = chosen.first().map(|(_, c)| *c).unwrap_or_default();
    let t = Instant::now();
    let base = IntentModel::build_with(encoder.clone(), &agents, first, &[])?;
    println!(
        "cold build (embeds {} texts): {:.0} ms",
        agents.len() * 10,
        t.elapsed().as_secs_f64() * 1e3
    );

    // Embed every query once (whole text included) on `threads` threads, one core each.
    let prep_model = base.with_config(
        Config {
            whole_text: true,
            ..first
        },
        &agents,
    )?;
    let per = queries.len().div_ceil(args.threads.max(1)).max(1);
    let results: Vec<Result<(Vec<PreparedMail>, f64), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .chunks(per)
            .map(|chunk| {
                let m = &prep_model;
                s.spawn(move || {
                    let t = switchyard_intents::cpu::thread_cpu_secs();
                    let mut out = Vec::with_capacity(chunk.len());
                    for (text, _) in chunk {
                        out.push(m.prepare("", text).map_err(|e| e.to_string())?);
                    }
                    Ok((out, switchyard_intents::cpu::thread_cpu_secs() - t))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("worker panicked".into())))
            .collect()
    });
    let mut prepared = Vec::with_capacity(queries.len());
    let mut busy = 0.0;
    for r in results {
        let (p, secs) = r?;
        prepared.extend(p);
        busy += secs;
    }
    println!(
        "embedding: {:.2} ms per query (one core; sentences + whole text)\n",
        busy * 1e3 / queries.len().max(1) as f64
    );

    println!(
        "{:<36} {:>9} {:>10} {:>12}",
        "variant", "top-1 %", "build ms", "score ms/q"
    );
    for (name, config) in chosen {
        let t = Instant::now();
        let model = base.with_config(config, &agents)?;
        let build_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let mut correct = 0usize;
        for (p, (_, want)) in prepared.iter().zip(&queries) {
            let d = model.score(p);
            if d.top().is_some_and(|a| &a.key == want) {
                correct += 1;
            }
        }
        let score_ms = t.elapsed().as_secs_f64() * 1e3 / queries.len().max(1) as f64;
        println!(
            "{:<36} {:>9.2} {:>10.0} {:>12.3}",
            name,
            100.0 * correct as f64 / queries.len().max(1) as f64,
            build_ms,
            score_ms
        );
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
