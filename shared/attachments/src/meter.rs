//! Meter reading from a photo: detect text lines, read the tallest ones, pick the digit
//! run that looks like a register, split off red decimal rolls, and score the result.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageReader, Limits, RgbImage};

use crate::ocr::{merge_line_boxes, Ocr, RecLine};
use crate::Error;

/// Readings at or above this confidence may be used without a human looking at the photo.
/// Chosen on the dev split (seed 1) so that accepted readings are right in at least 98 %
/// of cases there; see the benchmark `switchyard-bench-ocr`.
pub const CONFIDENCE_THRESHOLD: f32 = 0.80;

/// Largest photo side we decode; bigger photos are refused rather than risking memory.
const MAX_DECODE_SIDE: u32 = 12_000;
/// Photos are scaled down to this side before OCR; more resolution only costs time.
const WORK_SIDE: u32 = 1600;
/// How many of the tallest text lines are read (the register is among the largest text).
const MAX_LINES: usize = 6;

/// The unit printed next to the register, when the OCR saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeterUnit {
    /// Electricity.
    KilowattHours,
    /// Gas (or water).
    CubicMetres,
}

/// A register value read from a photo.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterReading {
    /// The digits as shown, with a `.` before the decimal digits (e.g. `"012345.6"`), so
    /// leading zeros and the number of decimals survive for display and auditing.
    pub digits: String,
    /// The numeric value of `digits`.
    pub value: f64,
    /// Estimated probability that `digits` is exactly right (0..1). Compare it with
    /// [`CONFIDENCE_THRESHOLD`]; below it, a human has to confirm the value.
    pub confidence: f32,
    /// The unit, if `kWh` or `m³` was read next to the register.
    pub unit: Option<MeterUnit>,
}

impl MeterReading {
    /// Whether the reading is trustworthy enough to become part of a `ready` intent.
    pub fn is_confident(&self) -> bool {
        self.confidence >= CONFIDENCE_THRESHOLD
    }
}

/// Reads meter registers from photos with the PP-OCRv4 models. Loading optimises the
/// models (a few seconds), so keep one per process; reading takes `&self` and is thread-safe.
pub struct MeterReader {
    ocr: Ocr,
}

/// File names of the models inside the models directory (see `deploy/local/lib.sh`,
/// `ensure_ocr_models`).
pub const DET_MODEL: &str = "ch_PP-OCRv4_det_infer.onnx";
/// See [`DET_MODEL`].
pub const REC_MODEL: &str = "ch_PP-OCRv4_rec_infer.onnx";

/// The models directory: `$MODELS_DIR`, else `models/` at the repository root.
pub fn default_models_dir() -> PathBuf {
    std::env::var_os("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

impl MeterReader {
    /// Loads the detector and recogniser from `models_dir` (see [`default_models_dir`]).
    pub fn load(models_dir: &Path) -> Result<Self, Error> {
        let ocr = Ocr::load(
            &models_dir.join("ocr").join(DET_MODEL),
            &models_dir.join("ocr").join(REC_MODEL),
        )?;
        Ok(Self { ocr })
    }

    /// Reads the register from an encoded photo (JPEG or PNG). `Ok(None)` means no
    /// register-like number was found; an undecodable image is an error.
    pub fn read_meter(&self, image_bytes: &[u8]) -> Result<Option<MeterReading>, Error> {
        let img = decode(image_bytes)?;
        self.read_image(&img)
    }

    /// The text of the lines the reader looked at, tallest first; for diagnostics and
    /// the benchmark, so a wrong reading can be traced to detection or recognition.
    pub fn recognised_lines(&self, image_bytes: &[u8]) -> Result<Vec<String>, Error> {
        let img = decode(image_bytes)?;
        Ok(self
            .read_lines(&img)?
            .iter()
            .map(|l| {
                let t = l.text();
                let pmin = l.chars.iter().map(|c| c.prob).fold(1.0f32, f32::min);
                format!("{t} (h={:.0}, pmin={pmin:.2})", l.bbox.h)
            })
            .collect())
    }

    fn read_image(&self, img: &RgbImage) -> Result<Option<MeterReading>, Error> {
        let lines = self.read_lines(img)?;
        Ok(pick_reading(&lines))
    }

    /// The tallest text lines, recognised; exposed to the crate for diagnostics.
    pub(crate) fn read_lines(&self, img: &RgbImage) -> Result<Vec<RecLine>, Error> {
        let mut boxes = merge_line_boxes(self.ocr.detect(img)?);
        boxes.retain(|b| b.w >= b.h * 0.8);
        boxes.sort_by(|a, b| b.h.total_cmp(&a.h));
        boxes.truncate(MAX_LINES);
        boxes
            .iter()
            .map(|b| self.ocr.recognise(img, b))
            .collect()
    }
}

/// Decodes with size limits and scales big photos down to [`WORK_SIDE`].
fn decode(bytes: &[u8]) -> Result<RgbImage, Error> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODE_SIDE);
    limits.max_image_height = Some(MAX_DECODE_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode()?.to_rgb8();
    if img.width() < 16 || img.height() < 16 {
        return Err(Error::ImageTooSmall);
    }
    let side = img.width().max(img.height());
    if side <= WORK_SIDE {
        return Ok(img);
    }
    let s = WORK_SIDE as f32 / side as f32;
    Ok(image::imageops::resize(
        &img,
        ((img.width() as f32 * s) as u32).max(1),
        ((img.height() as f32 * s) as u32).max(1),
        image::imageops::FilterType::Triangle,
    ))
}

/// Characters the recogniser confuses with digits on drum and segment displays.
fn as_digit(c: char) -> Option<(char, bool)> {
    match c {
        '0'..='9' => Some((c, false)),
        'O' | 'o' | 'D' | 'Q' => Some(('0', true)),
        'I' | 'l' | '|' | 'i' | '!' => Some(('1', true)),
        'Z' | 'z' => Some(('2', true)),
        'S' | 's' => Some(('5', true)),
        'B' => Some(('8', true)),
        'G' | 'b' => Some(('6', true)),
        'q' | 'g' => Some(('9', true)),
        _ => None,
    }
}

/// A digit run inside one line.
#[derive(Debug)]
struct Candidate {
    digits: String,
    value: f64,
    confidence: f32,
    unit: Option<MeterUnit>,
    score: f32,
}

/// Chooses the register among the recognised lines.
fn pick_reading(lines: &[RecLine]) -> Option<MeterReading> {
    let max_h = lines.iter().map(|l| l.bbox.h).fold(0.0f32, f32::max);
    let unit_anywhere = lines.iter().find_map(|l| unit_of(&l.text()));
    let mut cands: Vec<Candidate> = lines
        .iter()
        .flat_map(|l| candidates(l, max_h, unit_anywhere))
        .collect();
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut it = cands.into_iter();
    let best = it.next()?;
    let mut confidence = best.confidence;
    // A rival of similar standing with another value makes the choice itself uncertain.
    if let Some(second) = it.find(|c| c.digits != best.digits) {
        if second.score > 0.8 * best.score {
            confidence *= 0.5;
        }
    }
    Some(MeterReading {
        digits: best.digits,
        value: best.value,
        confidence,
        unit: best.unit,
    })
}

fn unit_of(text: &str) -> Option<MeterUnit> {
    let t = text.to_lowercase();
    if t.contains("kwh") || t.contains("kw h") {
        Some(MeterUnit::KilowattHours)
    } else if t.contains("m³") || t.contains("m3") || t.contains("m²") {
        Some(MeterUnit::CubicMetres)
    } else {
        None
    }
}

/// Labels that mark a number as something other than the register (serial numbers,
/// ratings, constants).
fn is_label_line(text: &str) -> bool {
    let t = text.to_lowercase();
    [
        "nr", "no.", "u/kwh", "imp", "qmax", "qmin", "pmax", "bar", "hz", "esy", "/h", "dm",
    ]
    .iter()
    .any(|k| t.contains(k))
}

fn candidates(line: &RecLine, max_h: f32, unit_anywhere: Option<MeterUnit>) -> Vec<Candidate> {
    let text = line.text();
    let unit = unit_of(&text).or(unit_anywhere);
    let label_line = is_label_line(&text);
    let chars = &line.chars;
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if as_digit(chars[i].ch).is_none_or(|(_, sub)| sub) {
            i += 1;
            continue;
        }
        // Extend over digits, look-alikes and in-register separators.
        let mut j = i;
        let mut last_digit = i;
        while j < chars.len() {
            let c = chars[j].ch;
            if as_digit(c).is_some() {
                last_digit = j;
            } else if !matches!(c, ' ' | '.' | ',' | '\'' | '-' | '_') {
                break;
            }
            j += 1;
        }
        if let Some(c) = build_candidate(line, &chars[i..=last_digit], i, max_h, unit, label_line)
        {
            out.push(c);
        }
        i = last_digit + 1;
    }
    out
}

fn build_candidate(
    line: &RecLine,
    run: &[crate::ocr::RecChar],
    _start: usize,
    max_h: f32,
    unit: Option<MeterUnit>,
    label_line: bool,
) -> Option<Candidate> {
    let mut digits = Vec::new(); // (digit, prob, substituted, pos)
    let mut sep_after: Option<usize> = None; // index in `digits` of the last digit before a '.'/','
    for rc in run {
        if let Some((d, sub)) = as_digit(rc.ch) {
            digits.push((d, rc.prob, sub, rc.pos));
        } else if matches!(rc.ch, '.' | ',') && !digits.is_empty() {
            sep_after = Some(digits.len());
        }
    }
    let n = digits.len();
    if !(4..=10).contains(&n) {
        return None;
    }
    // Decimal split: an explicit separator wins, else trailing red rolls.
    let mut n_dec = match sep_after {
        Some(k) if k < n && n - k <= 3 => n - k,
        _ => 0,
    };
    if n_dec == 0 {
        let reds: Vec<bool> = digits
            .iter()
            .map(|d| is_red_at(&line.crop, d.3))
            .collect();
        n_dec = reds.iter().rev().take_while(|&&r| r).count();
        if n_dec >= n - 1 || n_dec > 3 {
            n_dec = 0;
        }
    }
    let int_part: String = digits[..n - n_dec].iter().map(|d| d.0).collect();
    let dec_part: String = digits[n - n_dec..].iter().map(|d| d.0).collect();
    let text = if n_dec > 0 {
        format!("{int_part}.{dec_part}")
    } else {
        int_part.clone()
    };
    let value: f64 = text.parse().ok()?;

    // Confidence: probability that every character is right (product of the per-character
    // probabilities), lowered for look-alike substitutions and implausible lengths.
    let mut conf: f32 = digits.iter().map(|d| d.1).product();
    let subs = digits.iter().filter(|d| d.2).count();
    conf *= 0.6f32.powi(subs as i32);
    if !(5..=9).contains(&n) {
        conf *= 0.7;
    }
    if label_line {
        conf *= 0.3;
    }
    let rel_h = line.bbox.h / max_h.max(1.0);
    // Score for choosing among candidates: tall lines with a plausible digit count.
    let mut score = rel_h * rel_h;
    if (5..=9).contains(&n) {
        score *= 1.5;
    }
    if label_line {
        score *= 0.2;
    }
    if unit_of(&line.text()).is_some() {
        score *= 1.2;
    }
    score *= 0.5 + 0.5 * conf;
    Some(Candidate {
        digits: text,
        value,
        confidence: conf.clamp(0.0, 1.0),
        unit,
        score,
    })
}

/// Whether the crop is red (a decimal roll) around horizontal position `pos` (0..1).
fn is_red_at(crop: &RgbImage, pos: f32) -> bool {
    let w = crop.width();
    let h = crop.height();
    if w == 0 || h == 0 {
        return false;
    }
    let cx = (pos * w as f32) as i64;
    let half = (h as i64 / 5).max(2);
    let (mut red, mut total) = (0u32, 0u32);
    for x in (cx - half).max(0)..(cx + half).min(w as i64) {
        for y in h / 4..h * 3 / 4 {
            let p = crop.get_pixel(x as u32, y).0;
            let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
            total += 1;
            if r > 70 && r - g.max(b) > 35 && (r as f32) > 1.5 * (g.max(b) as f32) {
                red += 1;
            }
        }
    }
    total > 0 && red as f32 / total as f32 > 0.2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_map_to_digits() {
        assert_eq!(as_digit('O'), Some(('0', true)));
        assert_eq!(as_digit('7'), Some(('7', false)));
        assert_eq!(as_digit('k'), None);
    }

    #[test]
    fn units_are_recognised() {
        assert_eq!(unit_of("0123 kWh"), Some(MeterUnit::KilowattHours));
        assert_eq!(unit_of("12345 m³"), Some(MeterUnit::CubicMetres));
        assert_eq!(unit_of("12345"), None);
    }
}
