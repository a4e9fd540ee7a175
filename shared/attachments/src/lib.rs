//! Attachment extraction for the ai worker.
//!
//! - Meter photos: [`MeterReader::read_meter`] finds the register with the PP-OCRv4
//!   detector and recogniser (ONNX, run by pure-Rust tract, models from the PyPI package
//!   `rapidocr-onnxruntime`, fetched by `ensure_ocr_models` in `deploy/local/lib.sh`) and
//!   returns the digits with a calibrated confidence. Below [`CONFIDENCE_THRESHOLD`] a
//!   human has to confirm the value.
//! - PDFs: [`pdf_text`] runs poppler's `pdftotext` in a child process with a timeout, so a
//!   hostile or broken PDF cannot crash or hang the worker.
//! - [`ExtractionPool`] runs both on bounded lanes of blocking threads, separate from the
//!   async runtime and from each other.

mod meter;
mod ocr;
mod pdf;
mod pool;
mod segments;

pub use meter::{
    default_models_dir, MeterReader, MeterReading, MeterUnit, CONFIDENCE_THRESHOLD, DET_MODEL,
    REC_MODEL,
};
pub use pdf::{pdf_text, pdf_text_with_timeout, DEFAULT_PDF_TIMEOUT};
pub use pool::{ExtractionPool, PoolConfig};

use std::time::Duration;

/// Why an attachment could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a decodable JPEG/PNG (or exceed the decoder limits).
    #[error("cannot decode image: {0}")]
    Image(#[from] image::ImageError),
    /// Too small to hold a readable register.
    #[error("image too small to read")]
    ImageTooSmall,
    /// A model file is missing or unusable; run `ensure_ocr_models` (deploy/local/lib.sh).
    #[error("OCR model {path}: {message}")]
    Model {
        /// The file that failed.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The network failed on this input.
    #[error("OCR inference failed: {0}")]
    Inference(String),
    /// No `%PDF-` header.
    #[error("not a PDF")]
    NotPdf,
    /// The extractor rejected the PDF.
    #[error("PDF text extraction failed: {0}")]
    Pdf(String),
    /// `pdftotext` is not installed (Debian poppler-utils).
    #[error("pdftotext not found (install poppler-utils or set PDFTOTEXT)")]
    PdfToolMissing,
    /// The extractor took too long and was killed.
    #[error("extraction timed out after {0:?}")]
    Timeout(Duration),
    /// The lane's queue is full; retry later (back-pressure).
    #[error("extraction queue full")]
    Busy,
    /// The job panicked or its thread was lost; the worker itself is unaffected.
    #[error("extraction worker failed: {0}")]
    Worker(String),
    /// Reading or spawning failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
