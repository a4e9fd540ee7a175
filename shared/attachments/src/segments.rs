//! Geometric seven-segment decoder for dark-on-light LCD registers.
//!
//! The CTC recogniser was trained on print, not on segment displays: it reads a 7 as a 1
//! and a 0 with faint unlit ("ghost") segments as an 8, and misses small decimal points.
//! This decoder looks at the segments themselves: local thresholding (so ghost segments,
//! a few per cent darker than the field, stay background), de-slanting, one cell per
//! full-height blob (every digit lights segment b or c, so a cell's right edge is inked),
//! and the seven segment zones sampled per cell. Its reading cross-checks the CTC one.

use image::RgbImage;

/// Segments a..g lit for each digit, bit 0 = a … bit 6 = g.
const PATTERNS: [(char, u8); 10] = [
    ('0', 0b011_1111),
    ('1', 0b000_0110),
    ('2', 0b101_1011),
    ('3', 0b100_1111),
    ('4', 0b110_0110),
    ('5', 0b110_1101),
    ('6', 0b111_1101),
    ('7', 0b000_0111),
    ('8', 0b111_1111),
    ('9', 0b110_1111),
];

/// One decoded digit cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SegDigit {
    pub digit: char,
    /// How clearly every segment was on or off (0 = a coin toss, 0.5 = clean).
    pub margin: f32,
}

/// A segment display line as decoded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SegReading {
    pub digits: Vec<SegDigit>,
    /// Number of digits before a decimal point, when one was seen at the baseline.
    pub point_after: Option<usize>,
}

impl SegReading {
    /// The digits with a `.` where the point was seen.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for (i, d) in self.digits.iter().enumerate() {
            if self.point_after == Some(i) {
                s.push('.');
            }
            s.push(d.digit);
        }
        s
    }

    /// The weakest segment decision over all cells.
    pub fn min_margin(&self) -> f32 {
        self.digits.iter().map(|d| d.margin).fold(0.5, f32::min)
    }
}

/// Binary ink mask of a crop: dark against the local light level, with a contrast floor
/// taken from the whole crop so strips holding only ghost segments stay empty.
struct Ink {
    w: usize,
    h: usize,
    ink: Vec<bool>,
}

impl Ink {
    fn new(crop: &RgbImage) -> Option<Self> {
        let (w, h) = (crop.width() as usize, crop.height() as usize);
        if w < 16 || h < 16 {
            return None;
        }
        let lum: Vec<f32> = crop
            .pixels()
            .map(|p| 0.3 * p.0[0] as f32 + 0.6 * p.0[1] as f32 + 0.1 * p.0[2] as f32)
            .collect();
        let pct = |v: &mut Vec<f32>, q: f32| -> f32 {
            v.sort_unstable_by(f32::total_cmp);
            v[((v.len() - 1) as f32 * q) as usize]
        };
        let mut all = lum.clone();
        let global = pct(&mut all, 0.95) - pct(&mut all, 0.03);
        if global < 30.0 {
            return None;
        }
        // Strips half a line high: narrow enough to follow glare, wide enough to hold ink.
        let strip = (h / 2).max(4);
        let n_strips = w.div_ceil(strip);
        let mut levels = Vec::with_capacity(n_strips);
        for s in 0..n_strips {
            let (x0, x1) = (s * strip, ((s + 1) * strip).min(w));
            let mut v: Vec<f32> = (0..h)
                .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                .map(|(x, y)| lum[y * w + x])
                .collect();
            let light = pct(&mut v, 0.9);
            let dark = pct(&mut v, 0.03);
            levels.push((light, (light - dark).max(0.3 * global)));
        }
        let mut ink = vec![false; w * h];
        for x in 0..w {
            // Interpolate the strip levels between strip centres.
            let f = (x as f32 + 0.5) / strip as f32 - 0.5;
            let i0 = (f.floor().max(0.0) as usize).min(n_strips - 1);
            let i1 = (i0 + 1).min(n_strips - 1);
            let t = (f - i0 as f32).clamp(0.0, 1.0);
            let light = levels[i0].0 * (1.0 - t) + levels[i1].0 * t;
            let range = levels[i0].1 * (1.0 - t) + levels[i1].1 * t;
            let cut = light - 0.5 * range;
            for y in 0..h {
                ink[y * w + x] = lum[y * w + x] < cut;
            }
        }
        Some(Self { w, h, ink })
    }

    fn at(&self, x: i64, y: i64) -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < self.w
            && (y as usize) < self.h
            && self.ink[y as usize * self.w + x as usize]
    }

    /// The mask sheared by `s` (x shift per row, top to the right) around the middle row,
    /// so slanted segment digits stand upright.
    fn sheared(&self, s: f32) -> Ink {
        let yc = self.h as f32 / 2.0;
        let mut ink = vec![false; self.w * self.h];
        for y in 0..self.h {
            let dx = (s * (yc - y as f32)).round() as i64;
            for x in 0..self.w {
                ink[y * self.w + x] = self.at(x as i64 + dx, y as i64);
            }
        }
        Ink {
            w: self.w,
            h: self.h,
            ink,
        }
    }

    fn column_counts(&self, y0: usize, y1: usize) -> Vec<usize> {
        (0..self.w)
            .map(|x| (y0..y1).filter(|&y| self.ink[y * self.w + x]).count())
            .collect()
    }
}

/// A run of inked columns: [x0, x1) and the rows its ink spans.
#[derive(Debug, Clone, Copy)]
struct Blob {
    x0: usize,
    x1: usize,
    top: usize,
    bottom: usize,
}

/// Decodes the segment digits of a dark-on-light line crop (deskewed, text horizontal).
/// `None` when no regular row of segment digits is found.
pub(crate) fn read_segments(crop: &RgbImage) -> Option<SegReading> {
    let raw = Ink::new(crop)?;
    // Slant: the shear that makes vertical strokes sharpest in the column profile.
    let ink = (-4..=14)
        .map(|i| raw.sheared(i as f32 * 0.02))
        .max_by_key(|m| {
            m.column_counts(0, m.h)
                .iter()
                .map(|&c| (c * c) as u64)
                .sum::<u64>()
        })?;
    let (w, h) = (ink.w, ink.h);
    // Digit band: the longest run of rows with a fair share of ink. Long horizontal runs
    // (the display frame, a glare edge) are no segment and are not counted.
    let max_run = h * 4 / 5;
    let rows: Vec<usize> = (0..h)
        .map(|y| {
            let mut count = 0;
            let mut run = 0;
            for x in 0..=w {
                if x < w && ink.ink[y * w + x] {
                    run += 1;
                } else {
                    if run <= max_run {
                        count += run;
                    }
                    run = 0;
                }
            }
            count
        })
        .collect();
    let max_row = *rows.iter().max()?;
    let (top, bottom) = longest_run(&rows, (max_row as f32 * 0.15).max(2.0) as usize)?;
    let band = bottom - top;
    if band < 10 {
        return None;
    }
    // Columns above the baseline only, so a decimal point does not widen a digit's blob.
    let cols = ink.column_counts(top, bottom - band * 15 / 100);
    let min_col = ((band as f32 * 0.08) as usize).max(1);
    let mut blobs: Vec<Blob> = Vec::new();
    let mut x = 0;
    while x < w {
        if cols[x] < min_col {
            x += 1;
            continue;
        }
        let x0 = x;
        while x < w && cols[x] >= min_col {
            x += 1;
        }
        let (mut bt, mut bb) = (bottom, top);
        for yy in top..bottom {
            if (x0..x).any(|xx| ink.ink[yy * w + xx]) {
                bt = bt.min(yy);
                bb = bb.max(yy + 1);
            }
        }
        blobs.push(Blob {
            x0,
            x1: x,
            top: bt,
            bottom: bb,
        });
    }
    // Digits span the whole band; units, points and specks do not.
    let full: Vec<Blob> = blobs
        .iter()
        .copied()
        .filter(|b| b.bottom.saturating_sub(b.top) as f32 >= 0.75 * band as f32)
        .collect();
    if full.len() < 3 {
        return None;
    }
    // Digit width: the typical full blob (a 1 is a narrow one, merged digits a wide one).
    let mut widths: Vec<usize> = full.iter().map(|b| b.x1 - b.x0).collect();
    widths.sort_unstable();
    let typical = *widths.get(widths.len() / 2)?;
    let mut wide: Vec<usize> = widths
        .iter()
        .copied()
        .filter(|&bw| bw * 5 >= typical * 3 && bw * 5 <= typical * 8)
        .collect();
    wide.sort_unstable();
    let dw = *wide.get(wide.len() / 2)? as f32;
    // Pitch: right edges of neighbouring cells (every digit lights b or c).
    let mut diffs: Vec<f32> = full
        .windows(2)
        .map(|p| (p[1].x1 - p[0].x1) as f32)
        .filter(|&d| d > 1.1 * dw && d < 2.0 * dw)
        .collect();
    diffs.sort_unstable_by(f32::total_cmp);
    let pitch = diffs.get(diffs.len() / 2).copied().unwrap_or(1.3 * dw);
    // Cell right edges; blobs of several digits run together by blur are split by pitch.
    let mut rights: Vec<f32> = Vec::new();
    for b in &full {
        let bw = (b.x1 - b.x0) as f32;
        let k = ((bw + pitch - dw) / pitch).round().max(1.0) as usize;
        for i in (0..k).rev() {
            rights.push(b.x1 as f32 - i as f32 * pitch);
        }
    }
    // Digits of a register sit at one pitch (blank cells only lead); keep the longest
    // such chain, dropping the frame edge, unit letters or a neighbouring code.
    let mut best = (0, 0);
    let mut start = 0;
    for i in 1..=rights.len() {
        let on_pitch = i < rights.len() && {
            let d = rights[i] - rights[i - 1];
            d >= 0.8 * pitch && d <= 1.25 * pitch
        };
        if !on_pitch {
            if i - start > best.1 - best.0 {
                best = (start, i);
            }
            start = i;
        }
    }
    let rights = &rights[best.0..best.1];
    let mut digits = Vec::new();
    for &right in rights {
        let left = right - dw;
        let d = decode_cell(&ink, left, right, top as f32, bottom as f32)?;
        digits.push(SegDigit {
            digit: d.0,
            margin: d.1,
        });
    }
    let point_after = find_point(&ink, rights, dw, top, bottom);
    Some(SegReading {
        digits,
        point_after,
    })
}

/// A decimal point: a compact blob at the baseline in the gap between two cells, with
/// nothing at the same place near the top (blur bleeding from the digits would show
/// there too). Returns how many cells precede it.
fn find_point(ink: &Ink, rights: &[f32], dw: f32, top: usize, bottom: usize) -> Option<usize> {
    let band = (bottom - top) as f32;
    let share = |x0: f32, x1: f32, y0: f32, y1: f32| -> f32 {
        let (xa, xb) = (x0.round() as i64, x1.round() as i64);
        let (ya, yb) = (y0.round() as i64, y1.round() as i64);
        if xb <= xa || yb <= ya {
            return 0.0;
        }
        let n = (xa..xb)
            .flat_map(|x| (ya..yb).map(move |y| (x, y)))
            .filter(|&(x, y)| ink.at(x, y))
            .count();
        n as f32 / ((xb - xa) * (yb - ya)) as f32
    };
    let mut best: Option<(usize, f32)> = None;
    for (i, p) in rights.windows(2).enumerate() {
        let (gap0, gap1) = (p[0], p[1] - dw);
        if gap1 - gap0 < 2.0 {
            continue;
        }
        let (x0, x1) = (gap0 + 0.1 * (gap1 - gap0), gap1 - 0.1 * (gap1 - gap0));
        let low = share(x0, x1, bottom as f32 - 0.14 * band, bottom as f32);
        let high = share(x0, x1, top as f32, top as f32 + 0.14 * band);
        let s = low - high;
        if s > 0.3 && best.is_none_or(|b| s > b.1) {
            best = Some((i + 1, s));
        }
    }
    best.map(|b| b.0)
}

/// Longest run of consecutive entries >= `min`: (start, end exclusive).
fn longest_run(v: &[usize], min: usize) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < v.len() {
        if v[i] < min {
            i += 1;
            continue;
        }
        let s = i;
        while i < v.len() && v[i] >= min {
            i += 1;
        }
        if best.is_none_or(|(a, b)| i - s > b - a) {
            best = Some((s, i));
        }
    }
    best
}

/// Samples the seven segment zones of one cell and returns the nearest digit with its
/// margin (how far the least clear segment is from the on/off boundary).
fn decode_cell(ink: &Ink, left: f32, right: f32, top: f32, bottom: f32) -> Option<(char, f32)> {
    let (cw, ch) = (right - left, bottom - top);
    if cw < 3.0 || ch < 8.0 {
        return None;
    }
    let px = |u: f32| (left + u * cw).round() as i64;
    let py = |v: f32| (top + v * ch).round() as i64;
    // Horizontal segment: best row share of ink across the middle of the cell.
    let horiz = |v0: f32, v1: f32| -> f32 {
        let (xa, xb) = (px(0.3), px(0.7).max(px(0.3) + 1));
        (py(v0)..=py(v1))
            .map(|y| (xa..xb).filter(|&x| ink.at(x, y)).count() as f32 / (xb - xa) as f32)
            .fold(0.0, f32::max)
    };
    // Vertical segment: best column share of ink along its middle.
    let vert = |u0: f32, u1: f32, v0: f32, v1: f32| -> f32 {
        let (ya, yb) = (py(v0), py(v1).max(py(v0) + 1));
        (px(u0)..=px(u1))
            .map(|x| (ya..yb).filter(|&y| ink.at(x, y)).count() as f32 / (yb - ya) as f32)
            .fold(0.0, f32::max)
    };
    let scores = [
        horiz(0.0, 0.16),            // a
        vert(0.72, 1.0, 0.18, 0.38), // b
        vert(0.72, 1.0, 0.62, 0.82), // c
        horiz(0.84, 1.0),            // d
        vert(0.0, 0.28, 0.62, 0.82), // e
        vert(0.0, 0.28, 0.18, 0.38), // f
        horiz(0.4, 0.6),             // g
    ];
    let mut bits = 0u8;
    for (i, s) in scores.iter().enumerate() {
        if *s >= 0.5 {
            bits |= 1 << i;
        }
    }
    let margin = scores
        .iter()
        .map(|s| (s - 0.5).abs())
        .fold(0.5f32, f32::min);
    let (digit, dist) = PATTERNS
        .iter()
        .map(|&(d, p)| (d, (p ^ bits).count_ones()))
        .min_by_key(|&(_, n)| n)?;
    // A pattern that is no digit: its nearest digit is a guess, said so by the margin.
    Some((digit, if dist == 0 { margin } else { 0.0 }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    const FIELD: [u8; 3] = [190, 196, 180];
    const INK: [u8; 3] = [30, 34, 30];

    /// Draws a segment display the way the photo generator does: cells of `dw` x `dh`
    /// at a fixed pitch, slanted, unlit segments as faint ghosts, `.` as a baseline dot.
    /// A space is a blank cell (ghosts only).
    fn display(text: &str, slant: f32) -> RgbImage {
        let (dw, dh, gap, t) = (30.0f32, 56.0f32, 10.0f32, 6.0f32);
        let ghost = FIELD.map(|v| (v as f32 * 0.93) as u8);
        let cells: Vec<char> = text.chars().filter(|&c| c != '.').collect();
        let w = (cells.len() as f32 * (dw + gap) + 60.0) as u32;
        let mut img = RgbImage::from_pixel(w, 96, Rgb(FIELD));
        let (x0, y0) = (20.0f32, 20.0f32);
        // Segment rectangles in cell units: (x0, y0, x1, y1), order a..g.
        let h2 = dh / 2.0;
        let rects = [
            (t, 0.0, dw - t, t),
            (dw - t, t, dw, h2 - 1.0),
            (dw - t, h2 + 1.0, dw, dh - t),
            (t, dh - t, dw - t, dh),
            (0.0, h2 + 1.0, t, dh - t),
            (0.0, t, t, h2 - 1.0),
            (t, h2 - t / 2.0, dw - t, h2 + t / 2.0),
        ];
        let paint = |img: &mut RgbImage, cx: f32, r: (f32, f32, f32, f32), c: [u8; 3]| {
            for y in r.1 as u32..r.3 as u32 {
                let shift = slant * (dh - y as f32);
                for x in r.0 as u32..r.2 as u32 {
                    let px = (x0 + cx + x as f32 + shift) as u32;
                    img.put_pixel(px, (y0 + y as f32) as u32, Rgb(c));
                }
            }
        };
        let mut i = 0;
        for ch in text.chars() {
            if ch == '.' {
                let cx = i as f32 * (dw + gap) - gap / 2.0 - 3.0;
                paint(&mut img, cx, (0.0, dh - 6.0, 6.0, dh), INK);
                continue;
            }
            let lit = PATTERNS.iter().find(|p| p.0 == ch).map_or(0, |p| p.1);
            for (k, r) in rects.iter().enumerate() {
                let c = if lit & (1 << k) != 0 { INK } else { ghost };
                paint(&mut img, i as f32 * (dw + gap), *r, c);
            }
            i += 1;
        }
        img
    }

    #[test]
    fn reads_sevens_ghosted_zero_and_point() {
        // A lit 0 whose unlit g is a visible ghost must not become an 8, a 7 not a 1.
        let r = read_segments(&display("0712.5", 0.0));
        assert_eq!(r.map(|r| r.text()), Some("0712.5".to_string()));
    }

    #[test]
    fn blank_ghost_cells_are_skipped_and_slant_is_undone() {
        let r = read_segments(&display("  94017.38", 0.12));
        assert_eq!(r.map(|r| r.text()), Some("94017.38".to_string()));
    }

    #[test]
    fn every_digit_decodes_cleanly() {
        let r = read_segments(&display("1234567890", 0.08));
        let r = r.map(|r| (r.text(), r.min_margin() > 0.3));
        assert_eq!(r, Some(("1234567890".to_string(), true)));
    }

    #[test]
    fn reads_a_committed_lcd_photo() {
        // testdata/photos/0005.jpg (seed 3, label 072679.3, leading 0 blanked, rotated
        // -15°): the box the reader crops for the decoder, recorded from a run.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/photos/0005.jpg");
        let img = image::open(path).map(|i| i.to_rgb8());
        assert!(img.is_ok(), "cannot open {path}");
        let Ok(img) = img else { return };
        let b = crate::ocr::TextBox {
            cx: 454.9,
            cy: 285.4,
            ux: 0.970,
            uy: 0.2431,
            w: 469.5,
            h: 148.7,
            score: 1.0,
        };
        let crop = crate::ocr::sample_box(&img, &b, (96.0 * b.w / b.h) as u32, 96);
        let r = read_segments(&crop).map(|r| (r.text(), r.min_margin() >= 0.15));
        assert_eq!(r, Some(("72679.3".to_string(), true)));
    }

    #[test]
    fn a_flat_crop_has_no_digits() {
        assert_eq!(
            read_segments(&RgbImage::from_pixel(200, 96, Rgb(FIELD))),
            None
        );
    }
}
