//! PP-OCRv4 text detection (DB) and recognition (CTC) on tract, with fixed input shapes so
//! each model is optimised once at load time rather than per photo.

use std::path::Path;
use std::sync::Arc;

use image::RgbImage;
use tract_onnx::prelude::*;

use crate::Error;

/// Side of the square detector input; photos are scaled to fit and padded.
pub(crate) const DET_SIDE: usize = 640;
/// Height of the recogniser input (fixed by the model).
pub(crate) const REC_H: usize = 48;
/// Width of the recogniser input; longer lines are squeezed to fit.
pub(crate) const REC_W: usize = 480;
/// Horizontal down-sampling of the recogniser: one CTC step per 8 input columns.
const REC_STRIDE: f32 = 8.0;

type Plan = Arc<TypedRunnableModel>;

/// A detected text line as a rotated rectangle in original-image pixels.
#[derive(Debug, Clone)]
pub(crate) struct TextBox {
    pub cx: f32,
    pub cy: f32,
    /// Unit vector along the text line (x component >= 0).
    pub ux: f32,
    pub uy: f32,
    /// Extent along the line and across it.
    pub w: f32,
    pub h: f32,
    pub score: f32,
}

impl TextBox {
    /// The same box, longer by `left` and `right` at its ends along the line.
    pub fn extended(&self, left: f32, right: f32) -> TextBox {
        let shift = (right - left) / 2.0;
        TextBox {
            cx: self.cx + shift * self.ux,
            cy: self.cy + shift * self.uy,
            w: self.w + left + right,
            ..self.clone()
        }
    }

    /// Coordinates of a point in this box's frame (along, across) relative to its centre.
    fn local(&self, x: f32, y: f32) -> (f32, f32) {
        let dx = x - self.cx;
        let dy = y - self.cy;
        (dx * self.ux + dy * self.uy, -dx * self.uy + dy * self.ux)
    }
}

/// One recognised character with its probability and horizontal position in the crop (0..1).
#[derive(Debug, Clone)]
pub(crate) struct RecChar {
    pub ch: char,
    pub prob: f32,
    pub pos: f32,
}

/// A recognised line: the characters and the crop they were read from (for colour checks).
#[derive(Debug, Clone)]
pub(crate) struct RecLine {
    pub chars: Vec<RecChar>,
    /// Per CTC step: (position 0..1, probability of `.` or `,`). Decimal points on
    /// segment displays are tiny; the recogniser often sees them without emitting them.
    pub dots: Vec<(f32, f32)>,
    /// The same box at twice the resolution, for small marks such as decimal points.
    pub crop_hi: RgbImage,
    pub crop: RgbImage,
    pub bbox: TextBox,
}

impl RecLine {
    pub fn text(&self) -> String {
        self.chars.iter().map(|c| c.ch).collect()
    }
}

/// The two PP-OCRv4 models and the recogniser's character table.
pub(crate) struct Ocr {
    det: Plan,
    rec: Plan,
    charset: Vec<char>,
}

fn model_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Model {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn infer_err(e: impl std::fmt::Display) -> Error {
    Error::Inference(e.to_string())
}

impl Ocr {
    /// Loads and optimises both models; this takes a few seconds, so do it once per process.
    pub fn load(det_path: &Path, rec_path: &Path) -> Result<Self, Error> {
        let det = tract_onnx::onnx()
            .model_for_path(det_path)
            .and_then(|m| {
                m.with_input_fact(0, f32::fact([1, 3, DET_SIDE, DET_SIDE]).into())?
                    .into_optimized()?
                    .into_runnable()
            })
            .map_err(|e| model_err(det_path, e))?;

        let onnx = tract_onnx::onnx();
        let proto = onnx
            .proto_model_for_path(rec_path)
            .map_err(|e| model_err(rec_path, e))?;
        let table = proto
            .metadata_props
            .iter()
            .find(|p| p.key == "character")
            .map(|p| p.value.clone())
            .ok_or_else(|| model_err(rec_path, "no `character` table in the model metadata"))?;
        // Index 0 is the CTC blank, then the table, then a space.
        let mut charset = vec!['\u{0}'];
        charset.extend(table.lines().map(|l| l.chars().next().unwrap_or(' ')));
        charset.push(' ');
        let rec = onnx
            .model_for_proto_model(&proto)
            .and_then(|m| {
                m.with_input_fact(0, f32::fact([1, 3, REC_H, REC_W]).into())?
                    .into_optimized()?
                    .into_runnable()
            })
            .map_err(|e| model_err(rec_path, e))?;
        Ok(Self { det, rec, charset })
    }

    /// Text line boxes, found by the DB detector on a scaled, padded copy of `img`.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<TextBox>, Error> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let scale = DET_SIDE as f32 / w.max(h) as f32;
        let sw = ((w as f32 * scale).round() as usize).clamp(1, DET_SIDE);
        let sh = ((h as f32 * scale).round() as usize).clamp(1, DET_SIDE);
        let small = image::imageops::resize(
            img,
            sw as u32,
            sh as u32,
            image::imageops::FilterType::Triangle,
        );
        let plane = DET_SIDE * DET_SIDE;
        let mut data = vec![0f32; 3 * plane];
        for (x, y, p) in small.enumerate_pixels() {
            let i = y as usize * DET_SIDE + x as usize;
            // BGR order, (v/255 - 0.5) / 0.5; padding stays 0 (mid grey).
            for c in 0..3 {
                data[c * plane + i] = p.0[2 - c] as f32 / 127.5 - 1.0;
            }
        }
        let input = Tensor::from_shape(&[1, 3, DET_SIDE, DET_SIDE], &data).map_err(infer_err)?;
        let out = self.det.run(tvec!(input.into())).map_err(infer_err)?;
        let first = out
            .first()
            .ok_or_else(|| infer_err("detector returned nothing"))?;
        let view = first.to_plain_array_view::<f32>().map_err(infer_err)?;
        let prob: Vec<f32> = view.iter().copied().collect();
        if prob.len() != plane {
            return Err(infer_err("unexpected detector output shape"));
        }
        let mut boxes = db_boxes(&prob, DET_SIDE, DET_SIDE, sw, sh);
        for b in &mut boxes {
            b.cx /= scale;
            b.cy /= scale;
            b.w /= scale;
            b.h /= scale;
        }
        Ok(boxes)
    }

    /// Reads one line: samples the rotated box to a 48-pixel-high strip and CTC-decodes it.
    pub fn recognise(&self, img: &RgbImage, b: &TextBox) -> Result<RecLine, Error> {
        let ratio = (b.w / b.h.max(1.0)).max(0.5);
        let cw = ((REC_H as f32 * ratio).round() as usize).clamp(8, REC_W);
        let crop = sample_box(img, b, cw as u32, REC_H as u32);
        let plane = REC_H * REC_W;
        let mut data = vec![0f32; 3 * plane];
        for (x, y, p) in crop.enumerate_pixels() {
            let i = y as usize * REC_W + x as usize;
            for c in 0..3 {
                data[c * plane + i] = p.0[2 - c] as f32 / 127.5 - 1.0;
            }
        }
        let input = Tensor::from_shape(&[1, 3, REC_H, REC_W], &data).map_err(infer_err)?;
        let out = self.rec.run(tvec!(input.into())).map_err(infer_err)?;
        let first = out
            .first()
            .ok_or_else(|| infer_err("recogniser returned nothing"))?;
        let view = first.to_plain_array_view::<f32>().map_err(infer_err)?;
        let shape = view.shape().to_vec();
        let (steps, classes) = match shape.as_slice() {
            [1, t, c] => (*t, *c),
            _ => return Err(infer_err("unexpected recogniser output shape")),
        };
        let probs: Vec<f32> = view.iter().copied().collect();
        let chars = ctc_decode(&probs, steps, classes, &self.charset, cw as f32);
        let dot_ids: Vec<usize> = self
            .charset
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c, '.' | ','))
            .map(|(i, _)| i)
            .collect();
        let dots = (0..steps)
            .map(|t| {
                let p: f32 = dot_ids
                    .iter()
                    .filter_map(|&i| probs.get(t * classes + i))
                    .sum();
                (((t as f32 + 0.5) * REC_STRIDE / cw as f32).min(1.0), p)
            })
            .collect();
        let crop_hi = sample_box(img, b, 2 * cw as u32, 2 * REC_H as u32);
        Ok(RecLine {
            chars,
            dots,
            crop_hi,
            crop,
            bbox: b.clone(),
        })
    }
}

/// Greedy CTC decoding: argmax per step, repeats and blanks collapsed. A character's
/// probability is the best over the steps that emitted it; its position is the middle of
/// those steps, relative to the used crop width.
fn ctc_decode(
    probs: &[f32],
    steps: usize,
    classes: usize,
    charset: &[char],
    used_w: f32,
) -> Vec<RecChar> {
    let mut out: Vec<RecChar> = Vec::new();
    let mut prev = 0usize;
    let mut run_start = 0usize;
    for t in 0..steps {
        let row = &probs[t * classes..(t + 1) * classes];
        let (best, p) =
            row.iter().enumerate().fold(
                (0usize, f32::MIN),
                |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
            );
        if best != 0 && best == prev {
            if let Some(last) = out.last_mut() {
                last.prob = last.prob.max(p);
                let mid = (run_start + t) as f32 / 2.0 + 0.5;
                last.pos = (mid * REC_STRIDE / used_w).min(1.0);
            }
        } else if best != 0 {
            run_start = t;
            let ch = charset.get(best).copied().unwrap_or('?');
            out.push(RecChar {
                ch,
                prob: p,
                pos: ((t as f32 + 0.5) * REC_STRIDE / used_w).min(1.0),
            });
        }
        prev = best;
    }
    out
}

/// Bilinear sample of the rotated rectangle `b` into an `ow` x `oh` image.
pub(crate) fn sample_box(img: &RgbImage, b: &TextBox, ow: u32, oh: u32) -> RgbImage {
    let (iw, ih) = (img.width() as f32, img.height() as f32);
    let (vx, vy) = (-b.uy, b.ux);
    let mut out = RgbImage::new(ow, oh);
    for (x, y, p) in out.enumerate_pixels_mut() {
        let a = ((x as f32 + 0.5) / ow as f32 - 0.5) * b.w;
        let c = ((y as f32 + 0.5) / oh as f32 - 0.5) * b.h;
        let sx = (b.cx + a * b.ux + c * vx - 0.5).clamp(0.0, iw - 1.0);
        let sy = (b.cy + a * b.uy + c * vy - 0.5).clamp(0.0, ih - 1.0);
        let x0 = sx.floor() as u32;
        let y0 = sy.floor() as u32;
        let x1 = (x0 + 1).min(img.width() - 1);
        let y1 = (y0 + 1).min(img.height() - 1);
        let fx = sx - x0 as f32;
        let fy = sy - y0 as f32;
        let g = |xx: u32, yy: u32, ch: usize| img.get_pixel(xx, yy).0[ch] as f32;
        for ch in 0..3 {
            let v = g(x0, y0, ch) * (1.0 - fx) * (1.0 - fy)
                + g(x1, y0, ch) * fx * (1.0 - fy)
                + g(x0, y1, ch) * (1.0 - fx) * fy
                + g(x1, y1, ch) * fx * fy;
            p.0[ch] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// DB post-processing: threshold the probability map, dilate, label connected regions,
/// fit a rotated rectangle to each (principal axes of its pixels) and grow it by the
/// DB unclip distance. Only the valid `vw` x `vh` corner of the map is used.
fn db_boxes(prob: &[f32], mw: usize, _mh: usize, vw: usize, vh: usize) -> Vec<TextBox> {
    const THRESH: f32 = 0.3;
    const BOX_THRESH: f32 = 0.5;
    const UNCLIP: f32 = 1.6;
    let idx = |x: usize, y: usize| y * mw + x;
    // 2x2 dilation, as PaddleOCR's use_dilation.
    let mut bin = vec![false; vw * vh];
    for y in 0..vh {
        for x in 0..vw {
            let hit = prob[idx(x, y)] > THRESH
                || (x > 0 && prob[idx(x - 1, y)] > THRESH)
                || (y > 0 && prob[idx(x, y - 1)] > THRESH)
                || (x > 0 && y > 0 && prob[idx(x - 1, y - 1)] > THRESH);
            bin[y * vw + x] = hit;
        }
    }
    let mut seen = vec![false; vw * vh];
    let mut boxes = Vec::new();
    let mut stack = Vec::new();
    let mut pix: Vec<(usize, usize)> = Vec::new();
    for start in 0..vw * vh {
        if !bin[start] || seen[start] {
            continue;
        }
        pix.clear();
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % vw, i / vw);
            pix.push((x, y));
            let mut push = |nx: usize, ny: usize| {
                let j = ny * vw + nx;
                if bin[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                push(x - 1, y);
            }
            if x + 1 < vw {
                push(x + 1, y);
            }
            if y > 0 {
                push(x, y - 1);
            }
            if y + 1 < vh {
                push(x, y + 1);
            }
        }
        if pix.len() < 12 {
            continue;
        }
        let n = pix.len() as f32;
        let score = pix.iter().map(|&(x, y)| prob[idx(x, y)]).sum::<f32>() / n;
        if score < BOX_THRESH {
            continue;
        }
        let mx = pix.iter().map(|p| p.0 as f32).sum::<f32>() / n;
        let my = pix.iter().map(|p| p.1 as f32).sum::<f32>() / n;
        let (mut sxx, mut syy, mut sxy) = (0f32, 0f32, 0f32);
        for &(x, y) in &pix {
            let dx = x as f32 - mx;
            let dy = y as f32 - my;
            sxx += dx * dx;
            syy += dy * dy;
            sxy += dx * dy;
        }
        let theta = 0.5 * (2.0 * sxy).atan2(sxx - syy);
        let (mut ux, mut uy) = (theta.cos(), theta.sin());
        // Text on a meter is roughly horizontal: take the axis closer to the x axis.
        if uy.abs() > ux.abs() {
            (ux, uy) = (-uy, ux);
        }
        if ux < 0.0 {
            (ux, uy) = (-ux, -uy);
        }
        let mut b = TextBox {
            cx: mx,
            cy: my,
            ux,
            uy,
            w: 0.0,
            h: 0.0,
            score,
        };
        let (mut a0, mut a1, mut c0, mut c1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for &(x, y) in &pix {
            let (a, c) = b.local(x as f32 + 0.5, y as f32 + 0.5);
            a0 = a0.min(a);
            a1 = a1.max(a);
            c0 = c0.min(c);
            c1 = c1.max(c);
        }
        let w = a1 - a0 + 1.0;
        let h = c1 - c0 + 1.0;
        let (am, cm) = ((a0 + a1) / 2.0, (c0 + c1) / 2.0);
        b.cx += am * ux - cm * uy;
        b.cy += am * uy + cm * ux;
        let d = w * h * UNCLIP / (2.0 * (w + h));
        b.w = w + 2.0 * d;
        b.h = h + 2.0 * d;
        if b.h.min(b.w) < 3.0 {
            continue;
        }
        boxes.push(b);
    }
    boxes
}

/// Joins boxes that continue one another along the same line (drum windows and red
/// decimal rolls are often detected as separate pieces).
pub(crate) fn merge_line_boxes(mut boxes: Vec<TextBox>) -> Vec<TextBox> {
    loop {
        let mut merged = false;
        'outer: for i in 0..boxes.len() {
            for j in 0..boxes.len() {
                if i == j {
                    continue;
                }
                let (a, b) = (&boxes[i], &boxes[j]);
                let hr = a.h / b.h.max(1.0);
                if !(0.7..=1.45).contains(&hr) {
                    continue;
                }
                // A single digit's own orientation is unreliable; only lines must agree.
                let both_lines = a.w > 1.8 * a.h && b.w > 1.8 * b.h;
                if both_lines && (a.ux * b.ux + a.uy * b.uy) < 0.97 {
                    continue;
                }
                // Work in the frame of the longer box.
                if b.w > a.w && !both_lines {
                    let (_, across) = b.local(a.cx, a.cy);
                    if across.abs() > 0.35 * b.h {
                        continue;
                    }
                }
                let (along, across) = a.local(b.cx, b.cy);
                if across.abs() > 0.35 * a.h.max(b.h) || along <= 0.0 {
                    continue;
                }
                let gap = along - a.w / 2.0 - b.w / 2.0;
                if gap > 0.9 * a.h.max(b.h) {
                    continue;
                }
                // Union in a's frame.
                let lo = (-a.w / 2.0).min(along - b.w / 2.0);
                let hi = (a.w / 2.0).max(along + b.w / 2.0);
                let h = a.h.max(b.h);
                let mid = (lo + hi) / 2.0;
                let nb = TextBox {
                    cx: a.cx + mid * a.ux,
                    cy: a.cy + mid * a.uy,
                    ux: a.ux,
                    uy: a.uy,
                    w: hi - lo,
                    h,
                    score: a.score.min(b.score),
                };
                let (hi_i, lo_i) = if i > j { (i, j) } else { (j, i) };
                boxes.swap_remove(hi_i);
                boxes.swap_remove(lo_i);
                boxes.push(nb);
                merged = true;
                break 'outer;
            }
        }
        if !merged {
            return boxes;
        }
    }
}
