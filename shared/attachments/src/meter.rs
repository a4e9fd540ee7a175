//! Meter reading from a photo: detect text lines, read the tallest ones, pick the digit
//! run that looks like a register, split off red decimal rolls, and score the result.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageReader, Limits, RgbImage};

use crate::ocr::{merge_line_boxes, sample_box, Ocr, RecLine};
use crate::segments::{read_segments, SegReading};
use crate::Error;

/// Readings at or above this confidence may be used without a human looking at the photo.
/// Chosen on the dev split (seed 1): every reading above it was right there, and one step
/// lower (raw 0.7) already let a wrong one through; see the benchmark `switchyard-bench-ocr`.
pub const CONFIDENCE_THRESHOLD: f32 = 0.88;

/// Raw score (product of character probabilities with penalties) to observed exact-read
/// rate, fitted on the dev split (seed 1) per score bin, smoothed (k+1)/(n+2) and made
/// monotone. The raw score is over-cautious in the middle and too hopeful near zero.
const CALIBRATION: [(f32, f32); 8] = [
    (0.0, 0.0),
    (0.1, 0.21),
    (0.3, 0.77),
    (0.5, 0.77),
    (0.7, 0.80),
    (0.85, 0.92),
    (0.95, 0.985),
    (1.0, 0.99),
];

/// Maps a raw score through [`CALIBRATION`] (piecewise linear).
fn calibrate(raw: f32) -> f32 {
    let raw = raw.clamp(0.0, 1.0);
    for w in CALIBRATION.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if raw <= x1 {
            return y0 + (y1 - y0) * (raw - x0) / (x1 - x0);
        }
    }
    CALIBRATION[CALIBRATION.len() - 1].1
}

/// Probability of `.` at a step between two digits above which it counts as a decimal
/// point although greedy decoding dropped it. Tuned on the dev split.
const DOT_MIN_PROB: f32 = 0.05;

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
        let Some((first, line_idx)) = pick_reading(&lines) else {
            return Ok(None);
        };
        // Read the chosen line again from a crop widened on both ends: a roll the detector
        // cut off (often the red decimal) shows up, and two reads that agree are more
        // trustworthy than one.
        let line = &lines[line_idx];
        // Decimal rolls sit on the right, up to three of them: widen more on that side.
        let wider = line.bbox.extended(0.8 * line.bbox.h, 2.6 * line.bbox.h);
        let again = self.ocr.recognise(img, &wider)?;
        let max_h = lines.iter().map(|l| l.bbox.h).fold(0.0f32, f32::max);
        let second = candidates(&again, max_h, first.unit)
            .into_iter()
            .max_by(|a, b| a.score.total_cmp(&b.score));
        let mut reading = combine(first, second);
        // Red rolls right of what was read: decimals the recogniser dropped.
        if red_after_last_digit(&again) {
            reading.confidence *= 0.3;
        }
        // The red rolls counted by width must match the decimals read: a half-turned last
        // roll is often dropped by the recogniser.
        if let Some(expected) = red_roll_count(&again) {
            let n_dec = reading.digits.split_once('.').map_or(0, |(_, d)| d.len());
            if expected != n_dec {
                reading.confidence *= 0.3;
            }
        }
        // Segment displays: cross-check with the geometric seven-segment decoder, which
        // does not share the recogniser's 7/1 and ghost-0/8 confusions and sees small points.
        if dark_on_light(&line.crop) {
            // Taller than the detector box (it clips segment ends) and longer on the right
            // (it can miss the last digit); the decoder ignores the unit and other marks.
            let mut b = line.bbox.extended(0.3 * line.bbox.h, 0.9 * line.bbox.h);
            b.h *= 1.4;
            let seg_w = ((SEG_CROP_H as f32 * b.w / b.h.max(1.0)) as u32).clamp(16, 4000);
            let crop = sample_box(img, &b, seg_w, SEG_CROP_H);
            if let Some(seg) = read_segments(&crop) {
                tracing::debug!(ctc = %reading.digits, seg = %seg.text(), "segment cross-check");
                reading = cross_check(reading, &seg);
            }
        }
        reading.confidence = calibrate(reading.confidence);
        Ok(Some(reading))
    }

    /// The tallest text lines, recognised; exposed to the crate for diagnostics.
    pub(crate) fn read_lines(&self, img: &RgbImage) -> Result<Vec<RecLine>, Error> {
        let mut boxes = merge_line_boxes(self.ocr.detect(img)?);
        boxes.retain(|b| b.w >= b.h * 0.8);
        boxes.sort_by(|a, b| b.h.total_cmp(&a.h));
        boxes.truncate(MAX_LINES);
        boxes.iter().map(|b| self.ocr.recognise(img, b)).collect()
    }
}

/// Height of the crop the segment decoder reads; more only costs time.
const SEG_CROP_H: u32 = 96;
/// Weakest segment decision (0..0.5) for the decoder's reading to stand against the
/// recogniser's; below it a cell is a guess. Tuned on the dev split.
const SEG_CLEAN_MARGIN: f32 = 0.15;
/// Raw confidence of a reading on which recogniser and segment decoder agree exactly;
/// the two fail in different ways, so agreement is strong evidence. Tuned on the dev split.
const SEG_AGREE_CONF: f32 = 0.9;

/// Merges the recogniser's reading of an LCD line with the segment decoder's. Agreement
/// raises the confidence; disagreement lowers it, and a clean segment reading (every cell
/// a valid pattern, read clearly) replaces the recogniser's digits.
fn cross_check(mut reading: MeterReading, seg: &SegReading) -> MeterReading {
    let ctc_plain = reading.digits.replace('.', "");
    let ctc_point = reading.digits.find('.');
    let seg_plain: String = seg.digits.iter().map(|d| d.digit).collect();
    // A decoder reading of another length is no segment display at all (white drum rolls
    // look dark-on-light too) or a different line: nothing to compare.
    if seg_plain.len() < 4 || seg_plain.len().abs_diff(ctc_plain.len()) > 1 {
        return reading;
    }
    let clean = seg.min_margin() >= SEG_CLEAN_MARGIN && (4..=10).contains(&seg.digits.len());
    let mut text = reading.digits.clone();
    if ctc_plain == seg_plain {
        match (ctc_point, seg.point_after) {
            (a, b) if a == b => {
                if clean {
                    reading.confidence = reading.confidence.max(SEG_AGREE_CONF);
                }
            }
            (None, Some(_)) => {
                // The recogniser often misses a segment display's point; the decoder saw it.
                text = seg.text();
                if clean {
                    reading.confidence = reading.confidence.max(SEG_AGREE_CONF);
                }
            }
            // A point only the recogniser saw: the decoder may have missed it.
            (Some(_), None) => {}
            _ => reading.confidence *= 0.3,
        }
    } else if clean {
        text = match (seg.point_after, ctc_point) {
            (None, Some(k)) if seg_plain.len() == ctc_plain.len() => {
                format!("{}.{}", &seg_plain[..k], &seg_plain[k..])
            }
            _ => seg.text(),
        };
        reading.confidence *= 0.3;
    } else {
        reading.confidence *= 0.3;
    }
    if text != reading.digits {
        if let Ok(value) = text.parse() {
            reading.digits = text;
            reading.value = value;
        }
    }
    reading
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
    /// Letters read as digits (O as 0 and the like).
    substitutions: usize,
}

/// Merges the first read with the re-read of the widened crop.
fn combine(first: Candidate, second: Option<Candidate>) -> MeterReading {
    let reading = |c: Candidate, confidence: f32| MeterReading {
        digits: c.digits,
        value: c.value,
        confidence: confidence.clamp(0.0, 1.0),
        unit: c.unit,
    };
    let Some(second) = second else {
        let conf = first.confidence * 0.5;
        return reading(first, conf);
    };
    let plain = |s: &str| s.replace('.', "");
    let (a, b) = (plain(&first.digits), plain(&second.digits));
    if first.digits == second.digits {
        let conf = first.confidence.max(second.confidence);
        reading(first, conf)
    } else if b.len() > a.len()
        && b.len() - a.len() <= 3
        && b.starts_with(a.as_str())
        && second.substitutions <= first.substitutions
    {
        // The wider crop found rolls the detector had cut off (often the decimals or a
        // half-turned last roll); look-alike letters from the frame don't count.
        let conf = second.confidence * 0.9;
        reading(second, conf)
    } else if a == b {
        // Same digits, decimal split differs.
        let conf = first.confidence.min(second.confidence) * 0.5;
        reading(first, conf)
    } else {
        let conf = first.confidence.min(second.confidence) * 0.3;
        reading(first, conf)
    }
}

/// Chooses the register among the recognised lines; returns it and its line's index.
fn pick_reading(lines: &[RecLine]) -> Option<(Candidate, usize)> {
    let max_h = lines.iter().map(|l| l.bbox.h).fold(0.0f32, f32::max);
    let unit_anywhere = lines.iter().find_map(|l| unit_of(&l.text()));
    let mut cands: Vec<(Candidate, usize)> = lines
        .iter()
        .enumerate()
        .flat_map(|(i, l)| {
            candidates(l, max_h, unit_anywhere)
                .into_iter()
                .map(move |c| (c, i))
        })
        .collect();
    cands.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
    let mut it = cands.into_iter();
    let (mut best, idx) = it.next()?;
    // A rival of similar standing with another value makes the choice itself uncertain.
    if let Some((second, _)) = it.find(|c| c.0.digits != best.digits) {
        if second.score > 0.8 * best.score {
            best.confidence *= 0.5;
        }
    }
    Some((best, idx))
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
        if let Some(c) = build_candidate(line, &chars[i..=last_digit], max_h, unit, label_line) {
            out.push(c);
        }
        i = last_digit + 1;
    }
    out
}

fn build_candidate(
    line: &RecLine,
    run: &[crate::ocr::RecChar],
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
    // Decimal split: an explicit separator wins, then trailing red rolls, then (on
    // dark-on-light segment displays only) a point the recogniser saw weakly.
    let lcd_like = dark_on_light(&line.crop);
    let mut dot_prob = 1.0f32;
    let mut n_dec = match sep_after {
        Some(k) if k < n && n - k <= 3 => n - k,
        _ => 0,
    };
    if sep_after.is_none() {
        let reds = digits
            .iter()
            .rev()
            .take_while(|d| is_red_at(&line.crop, d.3))
            .count();
        if reds < n - 1 && reds <= 3 {
            n_dec = reds;
        }
    }
    if sep_after.is_none() && n_dec == 0 && lcd_like {
        let pos: Vec<f32> = digits.iter().map(|d| d.3).collect();
        if let Some(k) = segment_point(&line.crop_hi, &pos) {
            if k >= n.saturating_sub(3).max(1) && k < n {
                sep_after = Some(k);
                n_dec = n - k;
            }
        }
    }
    if sep_after.is_none() && n_dec == 0 && lcd_like {
        let mut best: Option<(usize, f32)> = None;
        for k in n.saturating_sub(3).max(1)..n {
            let (lo, hi) = (digits[k - 1].3, digits[k].3);
            let p = line
                .dots
                .iter()
                .filter(|(pos, _)| *pos > lo && *pos < hi)
                .map(|d| d.1)
                .fold(0.0f32, f32::max);
            if p > best.map_or(0.0, |b| b.1) {
                best = Some((k, p));
            }
        }
        if let Some((k, p)) = best {
            if p >= DOT_MIN_PROB {
                sep_after = Some(k);
                n_dec = n - k;
                dot_prob = p;
            }
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
    if dot_prob < 1.0 {
        // A point inferred from a weak signal: trust it only as far as it was seen.
        conf *= (dot_prob * 2.0).min(1.0);
    }
    let subs = digits.iter().filter(|d| d.2).count();
    conf *= 0.6f32.powi(subs as i32);
    if !(5..=9).contains(&n) {
        conf *= 0.7;
    }
    if label_line {
        conf *= 0.3;
    }
    // Segment displays show decimals with a small point the recogniser often misses, so
    // an LCD-like line (dark digits on a light field) without one is not trusted fully.
    if sep_after.is_none() && lcd_like {
        conf *= 0.5;
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
        substitutions: subs,
    })
}

/// Finds a decimal point on a dark-on-light segment display: a small, compact dark blob
/// sitting on the digits' baseline between two digits. Returns how many digits precede
/// it, given the digits' horizontal positions (0..1).
fn segment_point(crop: &RgbImage, pos: &[f32]) -> Option<usize> {
    let (w, h) = (crop.width() as usize, crop.height() as usize);
    if w < 8 || h < 8 || pos.len() < 2 {
        return None;
    }
    let lum: Vec<u8> = crop
        .pixels()
        .map(|p| ((p.0[0] as u32 * 3 + p.0[1] as u32 * 6 + p.0[2] as u32) / 10) as u8)
        .collect();
    let mut sorted = lum.clone();
    sorted.sort_unstable();
    let (dark, light) = (sorted[sorted.len() / 20], sorted[sorted.len() * 19 / 20]);
    if light < dark + 40 {
        return None;
    }
    let cut = ((dark as u32 + light as u32) / 2) as u8;
    let is_dark: Vec<bool> = lum.iter().map(|&v| v < cut).collect();
    // Connected dark components: (x0, y0, x1, y1, pixel count).
    let mut seen = vec![false; w * h];
    let mut comps: Vec<(usize, usize, usize, usize, usize)> = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !is_dark[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1, mut n) = (w, h, 0, 0, 0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            (x0, y0, x1, y1, n) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y), n + 1);
            let nb = [
                (x > 0).then(|| i - 1),
                (x + 1 < w).then(|| i + 1),
                (y > 0).then(|| i - w),
                (y + 1 < h).then(|| i + w),
            ];
            for j in nb.into_iter().flatten() {
                if is_dark[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        comps.push((x0, y0, x1, y1, n));
    }
    // Digit band: from the tall components (segments or whole digits).
    let tall: Vec<_> = comps
        .iter()
        .filter(|c| c.3 - c.1 + 1 > h / 5 && c.2 - c.0 + 1 < w / 3)
        .collect();
    if tall.len() < 2 {
        return None;
    }
    let top = tall.iter().map(|c| c.1).min()?;
    let bottom = tall.iter().map(|c| c.3).max()?;
    let dh = (bottom - top + 1) as f32;
    let lo = pos.first()? * w as f32;
    let hi = pos.last()? * w as f32;
    let point = comps.iter().find(|c| {
        let (cw, ch) = ((c.2 - c.0 + 1) as f32, (c.3 - c.1 + 1) as f32);
        let cx = (c.0 + c.2) as f32 / 2.0;
        cw <= 0.22 * dh
            && ch <= 0.22 * dh
            && cw >= 0.04 * dh
            && ch >= 0.04 * dh
            && (0.5..=2.0).contains(&(cw / ch))
            && c.4 as f32 >= 0.5 * cw * ch
            && (c.3 as f32) >= bottom as f32 - 0.12 * dh
            && c.1 as f32 >= top as f32 + 0.7 * dh
            && cx > lo
            && cx < hi
    })?;
    let px = (point.0 + point.2) as f32 / 2.0 / w as f32;
    Some(pos.iter().filter(|&&p| p < px).count())
}

/// Whether the middle band of the crop is mostly light with dark strokes (LCD style),
/// rather than light digits on dark rolls.
fn dark_on_light(crop: &RgbImage) -> bool {
    let h = crop.height();
    let mut lum: Vec<u32> = crop
        .enumerate_pixels()
        .filter(|(_, y, _)| *y >= h / 4 && *y < h * 3 / 4)
        .map(|(_, _, p)| (p.0[0] as u32 * 3 + p.0[1] as u32 * 6 + p.0[2] as u32) / 10)
        .collect();
    if lum.is_empty() {
        return false;
    }
    lum.sort_unstable();
    let median = lum[lum.len() / 2];
    let dark = lum[lum.len() / 10];
    let light = lum[lum.len() * 9 / 10];
    // Light field: the median sits nearer the light end than the dark one.
    light > dark + 40 && median > (dark + light) / 2
}

/// How many red rolls the line shows: the width of the red stretch over the digit pitch.
/// `None` when there is no red or too few digits to know the pitch.
fn red_roll_count(line: &RecLine) -> Option<usize> {
    let (w, h) = (line.crop.width(), line.crop.height());
    let pos: Vec<f32> = line
        .chars
        .iter()
        .filter(|c| c.ch.is_ascii_digit())
        .map(|c| c.pos)
        .collect();
    if pos.len() < 4 || w == 0 || h < 4 {
        return None;
    }
    let pitch = (pos[pos.len() - 1] - pos[0]) / (pos.len() - 1) as f32 * w as f32;
    if pitch < 2.0 {
        return None;
    }
    let red_col = |x: u32| {
        let red = (h / 4..h * 3 / 4)
            .filter(|&y| {
                let p = line.crop.get_pixel(x, y).0;
                let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
                r > 70 && r - g.max(b) > 30 && r * 4 > g.max(b) * 5
            })
            .count();
        red as f32 > 0.3 * (h / 2) as f32
    };
    let first = (0..w).find(|&x| red_col(x))?;
    let last = (0..w).rev().find(|&x| red_col(x))?;
    let count = ((last - first + 1) as f32 / pitch).round() as usize;
    (count > 0).then_some(count)
}

/// Whether red appears right of the last digit the line's reading used.
fn red_after_last_digit(line: &RecLine) -> bool {
    let Some(last) = line
        .chars
        .iter()
        .filter(|c| c.ch.is_ascii_digit())
        .map(|c| c.pos)
        .reduce(f32::max)
    else {
        return false;
    };
    let step = 0.6 * line.crop.height() as f32 / line.crop.width().max(1) as f32;
    let mut p = last + 1.2 * step;
    while p < 1.0 {
        if is_red_at(&line.crop, p) {
            return true;
        }
        p += step;
    }
    false
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
            // Glare turns red rolls pink, so ask for a red cast rather than pure red.
            if r > 70 && r - g.max(b) > 30 && r * 4 > g.max(b) * 5 {
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
    fn calibration_is_monotone_and_bounded() {
        let mut last = -1.0;
        for i in 0..=100 {
            let c = calibrate(i as f32 / 100.0);
            assert!((0.0..=1.0).contains(&c) && c >= last);
            last = c;
        }
        assert!((calibrate(0.8) - CONFIDENCE_THRESHOLD).abs() < 0.01);
    }

    #[test]
    fn units_are_recognised() {
        assert_eq!(unit_of("0123 kWh"), Some(MeterUnit::KilowattHours));
        assert_eq!(unit_of("12345 m³"), Some(MeterUnit::CubicMetres));
        assert_eq!(unit_of("12345"), None);
    }
}
