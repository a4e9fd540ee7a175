//! Bounded pools for attachment work. OCR and PDFs each get their own lane with a fixed
//! number of workers and a queue limit, so a burst of photos can neither starve PDFs nor
//! occupy the async runtime, and text-only mails (which never enter a lane) never wait.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::meter::{MeterReader, MeterReading};
use crate::pdf::{pdf_text_with_timeout, DEFAULT_PDF_TIMEOUT};
use crate::Error;

/// Sizes of the lanes. The defaults suit a 2-core machine: one OCR worker (a photo costs
/// a core for about a second), one PDF worker (mostly waiting on a child process).
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Photos read at the same time.
    pub ocr_workers: usize,
    /// Photos waiting or running before [`Error::Busy`] is returned.
    pub ocr_queue: usize,
    /// PDFs extracted at the same time.
    pub pdf_workers: usize,
    /// PDFs waiting or running before [`Error::Busy`] is returned.
    pub pdf_queue: usize,
    /// Time limit per PDF.
    pub pdf_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            ocr_workers: 1,
            ocr_queue: 64,
            pdf_workers: 1,
            pdf_queue: 64,
            pdf_timeout: DEFAULT_PDF_TIMEOUT,
        }
    }
}

struct Lane {
    workers: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    max_queued: usize,
}

/// Decrements the lane's queue count however the job ends (including cancellation).
struct QueueSlot(Arc<AtomicUsize>);

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Lane {
    fn new(workers: usize, max_queued: usize) -> Self {
        Self {
            workers: Arc::new(Semaphore::new(workers.max(1))),
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued: max_queued.max(1),
        }
    }

    async fn run<T, F>(&self, job: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, Error> + Send + 'static,
    {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Busy);
        }
        let _slot = QueueSlot(self.queued.clone());
        let permit = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Worker("pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|panic| {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                Err(Error::Worker(msg))
            })
        })
        .await
        .map_err(|e| Error::Worker(e.to_string()))?
    }

    fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

/// The attachment extraction pool the ai worker calls: `pool.meter(bytes).await`,
/// `pool.pdf(bytes).await`. Cheap to share behind an `Arc`.
pub struct ExtractionPool {
    reader: Arc<MeterReader>,
    ocr: Lane,
    pdf: Lane,
    pdf_timeout: Duration,
}

impl ExtractionPool {
    /// A pool around a loaded reader.
    pub fn new(reader: Arc<MeterReader>, config: PoolConfig) -> Self {
        Self {
            reader,
            ocr: Lane::new(config.ocr_workers, config.ocr_queue),
            pdf: Lane::new(config.pdf_workers, config.pdf_queue),
            pdf_timeout: config.pdf_timeout,
        }
    }

    /// Reads a meter photo on the OCR lane. See [`MeterReader::read_meter`].
    pub async fn meter(&self, image_bytes: Vec<u8>) -> Result<Option<MeterReading>, Error> {
        let reader = self.reader.clone();
        self.ocr.run(move || reader.read_meter(&image_bytes)).await
    }

    /// Extracts PDF text on the PDF lane. See [`crate::pdf_text`].
    pub async fn pdf(&self, pdf_bytes: Vec<u8>) -> Result<String, Error> {
        let timeout = self.pdf_timeout;
        self.pdf
            .run(move || pdf_text_with_timeout(&pdf_bytes, timeout))
            .await
    }

    /// Photos waiting or being read, for metrics and back-pressure decisions.
    pub fn ocr_queued(&self) -> usize {
        self.ocr.queued()
    }

    /// PDFs waiting or being extracted.
    pub fn pdf_queued(&self) -> usize {
        self.pdf.queued()
    }
}
