//! End-to-end checks with the real PP-OCRv4 models and the real `pdftotext`
//! (run `ensure_ocr_models` from deploy/local/lib.sh first; tests/run does).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use switchyard_attachments::{
    default_models_dir, pdf_text, pdf_text_with_timeout, Error, ExtractionPool, MeterReader,
    PoolConfig,
};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn reader() -> Arc<MeterReader> {
    static READER: OnceLock<Arc<MeterReader>> = OnceLock::new();
    READER
        .get_or_init(|| match MeterReader::load(&default_models_dir()) {
            Ok(r) => Arc::new(r),
            Err(e) => panic!("{e} (run: source deploy/local/lib.sh && ensure_ocr_models)"),
        })
        .clone()
}

/// The committed sample photos and their labels (generated with
/// `gen_meter_photos.py testdata/photos --seed 3 --count 9`).
fn samples() -> Vec<(PathBuf, bool, String)> {
    let dir = testdata("photos");
    let labels = std::fs::read_to_string(dir.join("labels.tsv")).unwrap_or_default();
    labels
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((
                dir.join(f.first()?),
                *f.get(2)? == "1",
                f.get(3)?.to_string(),
            ))
        })
        .collect()
}

fn same_reading(truth: &str, read: &str) -> bool {
    let norm = |s: &str| {
        let (i, d) = s.split_once('.').unwrap_or((s, ""));
        let i = i.trim_start_matches('0');
        (
            if i.is_empty() { "0" } else { i }.to_string(),
            d.to_string(),
        )
    };
    norm(truth) == norm(read)
}

#[test]
fn generated_photos_are_read_exactly() {
    let reader = reader();
    let sample: Vec<_> = samples().into_iter().filter(|s| s.1).collect();
    assert!(sample.len() >= 6, "sample photos missing");
    let mut exact = 0;
    for (path, _, truth) in &sample {
        let bytes = std::fs::read(path).unwrap_or_default();
        let got = reader.read_meter(&bytes);
        let Ok(Some(r)) = got else {
            eprintln!("{}: {got:?}", path.display());
            continue;
        };
        let right = same_reading(truth, &r.digits);
        eprintln!(
            "{}: truth {truth} read {} conf {:.2}",
            path.display(),
            r.digits,
            r.confidence
        );
        if right {
            exact += 1;
        } else {
            assert!(
                !r.is_confident(),
                "confident wrong reading {} for {truth}",
                r.digits
            );
        }
    }
    assert!(
        exact * 4 >= sample.len() * 3,
        "{exact} of {} read exactly",
        sample.len()
    );
}

#[test]
fn unreadable_photo_is_not_confident() {
    let reader = reader();
    let unreadable: Vec<_> = samples().into_iter().filter(|s| !s.1).collect();
    assert!(!unreadable.is_empty(), "no unreadable sample");
    for (path, _, _) in unreadable {
        let bytes = std::fs::read(&path).unwrap_or_default();
        match reader.read_meter(&bytes) {
            Ok(None) => {}
            Ok(Some(r)) => assert!(!r.is_confident(), "{}: {r:?}", path.display()),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

#[test]
fn corrupt_image_is_an_error() {
    let reader = reader();
    let mut bytes = std::fs::read(testdata("photos/0000.jpg")).unwrap_or_default();
    bytes.truncate(200);
    assert!(reader.read_meter(&bytes).is_err());
    assert!(reader.read_meter(b"definitely not an image").is_err());
    assert!(reader.read_meter(&[]).is_err());
}

#[test]
fn pdf_text_is_extracted() {
    let bytes = std::fs::read(testdata("invoice.pdf")).unwrap_or_default();
    let text = match pdf_text(&bytes) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    assert!(text.contains("Rechnung Nr. 4711"), "{text}");
    assert!(text.contains("Zählerstand 12345,6 kWh"), "{text}");
}

#[test]
fn malformed_pdf_is_an_error() {
    let bytes = std::fs::read(testdata("broken.pdf")).unwrap_or_default();
    assert!(matches!(pdf_text(&bytes), Err(Error::Pdf(_))));
    assert!(matches!(pdf_text(b"hello"), Err(Error::NotPdf)));
}

#[test]
fn slow_pdf_is_killed_at_the_timeout() {
    let bytes = std::fs::read(testdata("invoice.pdf")).unwrap_or_default();
    let got = pdf_text_with_timeout(&bytes, Duration::ZERO);
    assert!(matches!(got, Err(Error::Timeout(_))), "{got:?}");
}

#[tokio::test]
async fn pool_runs_both_lanes_and_bounds_the_queue() {
    let pool = Arc::new(ExtractionPool::new(
        reader(),
        PoolConfig {
            ocr_queue: 1,
            ..PoolConfig::default()
        },
    ));
    let photo = std::fs::read(testdata("photos/0000.jpg")).unwrap_or_default();
    let pdf = std::fs::read(testdata("invoice.pdf")).unwrap_or_default();

    // One photo occupies the single OCR slot; a second is refused, a PDF is not held up.
    let busy_pool = pool.clone();
    let first = tokio::spawn(async move { busy_pool.meter(photo).await });
    while pool.ocr_queued() == 0 {
        tokio::task::yield_now().await;
    }
    assert!(matches!(pool.meter(vec![1, 2, 3]).await, Err(Error::Busy)));
    let text = pool.pdf(pdf).await;
    assert!(text.is_ok_and(|t| t.contains("4711")));
    assert!(first.await.is_ok_and(|r| r.is_ok()));
    assert_eq!(pool.ocr_queued(), 0);
}
