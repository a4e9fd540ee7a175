//! OCR benchmark over a generated meter-photo set (see `testdata/gen_meter_photos.py`):
//! exact-read rate on readable photos, accuracy and share above the confidence threshold,
//! and CPU milliseconds per photo, per meter kind.
//!
//!     switchyard-bench-ocr SET_DIR [--threshold T] [--sweep] [--verbose] [--models DIR]
//!
//! Reproduce the figures in shared/attachments/README.md:
//!
//!     source deploy/local/lib.sh && ensure_ocr_models
//!     pip install Pillow
//!     python3 shared/attachments/testdata/gen_meter_photos.py /tmp/meters-dev --seed 1 --count 180
//!     python3 shared/attachments/testdata/gen_meter_photos.py /tmp/meters-test11 --seed 11 --count 180
//!     cargo run --release -p switchyard-attachments --bin switchyard-bench-ocr -- /tmp/meters-test11
//!
//! CPU time is the reading thread's own (Linux schedstat), one thread per photo.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use switchyard_attachments::{default_models_dir, MeterReader, CONFIDENCE_THRESHOLD};

struct Row {
    kind: String,
    readable: bool,
    correct: bool,
    confidence: f32,
    cpu_ms: f64,
}

/// CPU time of the calling thread in ns (Linux schedstat), so other load on the machine
/// does not inflate the figure; falls back to `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Compares readings as shown: leading zeros ignored, decimal digits must all match.
fn same_reading(truth: &str, read: &str) -> bool {
    fn norm(s: &str) -> (String, String) {
        let (i, d) = s.split_once('.').unwrap_or((s, ""));
        let i = i.trim_start_matches('0');
        (if i.is_empty() { "0".into() } else { i.into() }, d.into())
    }
    norm(truth) == norm(read)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut set: Option<PathBuf> = None;
    let mut threshold = CONFIDENCE_THRESHOLD;
    let mut sweep = false;
    let mut verbose = false;
    let mut models = default_models_dir();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threshold" => threshold = args.next().ok_or("--threshold needs a value")?.parse()?,
            "--models" => models = args.next().ok_or("--models needs a value")?.into(),
            "--sweep" => sweep = true,
            "--verbose" => verbose = true,
            _ => set = Some(a.into()),
        }
    }
    let set =
        set.ok_or("usage: switchyard-bench-ocr SET_DIR [--threshold T] [--sweep] [--verbose]")?;
    let t0 = Instant::now();
    let reader = MeterReader::load(&models)?;
    eprintln!("models loaded in {:.1} s", t0.elapsed().as_secs_f64());

    let labels = std::fs::read_to_string(set.join("labels.tsv"))?;
    let mut rows = Vec::new();
    for line in labels.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let [file, kind, readable, truth, ..] = f.as_slice() else {
            continue;
        };
        let bytes = std::fs::read(set.join(file))?;
        let (c0, w0) = (thread_cpu_ns(), Instant::now());
        let result = reader.read_meter(&bytes);
        let cpu_ms = match (c0, thread_cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e6,
            _ => w0.elapsed().as_secs_f64() * 1e3,
        };
        let readable = *readable == "1";
        let (read, confidence) = match &result {
            Ok(Some(r)) => (r.digits.clone(), r.confidence),
            Ok(None) => ("-".into(), 0.0),
            Err(e) => (format!("error: {e}"), 0.0),
        };
        let correct = readable && same_reading(truth, &read);
        if verbose {
            let mark = if correct { "ok " } else { "BAD" };
            println!("{mark} {file} {kind:8} truth={truth:12} read={read:12} conf={confidence:.3} cpu={cpu_ms:.0}ms");
            if !correct {
                for l in reader.recognised_lines(&bytes).unwrap_or_default() {
                    println!("      | {l}");
                }
            }
        }
        rows.push(Row {
            kind: kind.to_string(),
            readable,
            correct,
            confidence,
            cpu_ms,
        });
    }

    println!(
        "set {} ({} photos), threshold {threshold:.2}",
        set.display(),
        rows.len()
    );
    println!(
        "{:8} {:>5} {:>9} {:>10} {:>12} {:>12} {:>13} {:>8} {:>8}",
        "kind",
        "read.",
        "exact",
        "above-thr",
        "acc>=thr",
        "unread.",
        "unread>=thr",
        "cpu-ms",
        "p95-ms"
    );
    let mut kinds: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        kinds.entry(r.kind.clone()).or_default().push(r);
        kinds.entry("all".into()).or_default().push(r);
    }
    for (kind, rs) in &kinds {
        let readable: Vec<_> = rs.iter().filter(|r| r.readable).collect();
        let unreadable = rs.len() - readable.len();
        let exact = readable.iter().filter(|r| r.correct).count();
        let above: Vec<_> = rs.iter().filter(|r| r.confidence >= threshold).collect();
        let above_readable = readable
            .iter()
            .filter(|r| r.confidence >= threshold)
            .count();
        let above_right = above.iter().filter(|r| r.correct).count();
        let unread_above = rs
            .iter()
            .filter(|r| !r.readable && r.confidence >= threshold)
            .count();
        let mut cpu: Vec<f64> = rs.iter().map(|r| r.cpu_ms).collect();
        cpu.sort_by(f64::total_cmp);
        let mean = cpu.iter().sum::<f64>() / cpu.len().max(1) as f64;
        let p95 = cpu
            .get((cpu.len() * 95 / 100).min(cpu.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0);
        let pct = |a: usize, b: usize| {
            if b == 0 {
                f64::NAN
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        println!(
            "{kind:8} {:>5} {:>8.1}% {:>9.1}% {:>11.1}% {:>12} {:>13} {:>8.0} {:>8.0}",
            readable.len(),
            pct(exact, readable.len()),
            pct(above_readable, readable.len()),
            pct(above_right, above.len()),
            unreadable,
            unread_above,
            mean,
            p95
        );
    }
    println!(
        "\nconfidence bin   photos  exact  (calibration: a calibrated score matches the rate)"
    );
    let edges = [0.0f32, 0.2, 0.4, 0.6, 0.8, 0.9, 1.01];
    for w in edges.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        let bin: Vec<_> = rows
            .iter()
            .filter(|r| r.confidence >= lo && r.confidence < hi)
            .collect();
        let right = bin.iter().filter(|r| r.correct).count();
        println!(
            "  {lo:.1}..{:.1} {:>9} {:>5.0}%",
            hi.min(1.0),
            bin.len(),
            100.0 * right as f64 / bin.len().max(1) as f64
        );
    }
    if sweep {
        println!("\nthreshold  share-above  accuracy-above  (all photos)");
        for i in 0..20 {
            let t = i as f32 * 0.05;
            let above: Vec<_> = rows
                .iter()
                .filter(|r| r.confidence >= t && r.confidence > 0.0)
                .collect();
            let right = above.iter().filter(|r| r.correct).count();
            println!(
                "{t:9.2} {:>11.1}% {:>14.1}%",
                100.0 * above.len() as f64 / rows.len().max(1) as f64,
                100.0 * right as f64 / above.len().max(1) as f64
            );
        }
    }
    Ok(())
}
