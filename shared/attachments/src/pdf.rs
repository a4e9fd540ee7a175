//! PDF text through poppler's `pdftotext` in a child process: a PDF that crashes or hangs
//! the parser kills only that process, never the worker, and a timeout bounds the wait.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// How long one PDF may take before its process is killed.
pub const DEFAULT_PDF_TIMEOUT: Duration = Duration::from_secs(20);
/// Text beyond this many bytes is cut off; bills are a few kB, anything huge is junk.
const MAX_TEXT: usize = 4 * 1024 * 1024;

/// Extracts the text of a PDF with [`DEFAULT_PDF_TIMEOUT`].
pub fn pdf_text(bytes: &[u8]) -> Result<String, Error> {
    pdf_text_with_timeout(bytes, DEFAULT_PDF_TIMEOUT)
}

/// Extracts the text of a PDF, killing the extractor after `timeout`. Blocks; call it
/// from a blocking thread (the [`crate::ExtractionPool`] does).
pub fn pdf_text_with_timeout(bytes: &[u8], timeout: Duration) -> Result<String, Error> {
    // The header may be preceded by junk, but only within the first kilobyte.
    let head = &bytes[..bytes.len().min(1024)];
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(Error::NotPdf);
    }
    let mut child = Command::new(pdftotext_bin())
        .args(["-q", "-enc", "UTF-8", "-layout", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::PdfToolMissing,
            _ => Error::Io(e),
        })?;

    // Feed stdin and drain stdout/stderr on their own threads so no pipe can fill up.
    let mut stdin = child.stdin.take();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            // A parser that stops reading early closes the pipe; that is not our error.
            let _ = s.write_all(&input);
        }
    });
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout {
            let _ = s.take(MAX_TEXT as u64).read_to_end(&mut buf);
        }
        buf
    });
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr {
            let _ = s.take(64 * 1024).read_to_end(&mut buf);
        }
        buf
    });

    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout(timeout));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        let msg = String::from_utf8_lossy(&err).trim().to_string();
        return Err(Error::Pdf(if msg.is_empty() {
            format!("pdftotext failed ({status})")
        } else {
            msg
        }));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `$PDFTOTEXT`, else `pdftotext` on the PATH (Debian poppler-utils).
fn pdftotext_bin() -> std::ffi::OsString {
    std::env::var_os("PDFTOTEXT").unwrap_or_else(|| "pdftotext".into())
}
