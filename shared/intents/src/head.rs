//! A softmax-regression head over the example embeddings, trained in place when agents change.
//!
//! Nearest-example similarity treats every dimension alike; a linear head learns which
//! directions separate the agents at hand (Casanueva et al. 2020: a small classifier on frozen
//! sentence encodings is the strong few-shot baseline). Started from the class prototypes, a few
//! dozen full-batch steps suffice, so training stays in the sub-second budget of a rebuild.

/// Linear weights: `classes × dim`, plus a bias per class.
#[derive(Debug, Clone)]
pub struct SoftmaxHead {
    dim: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// Training settings; the defaults were chosen on Banking77's few-shot examples (not its test
/// set) and on the domain corpus's train split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadParams {
    /// Norm of the prototype initialisation (a cosine classifier's inverse temperature:
    /// normalised embeddings of one model all have cosines in a narrow band).
    pub scale: f32,
    /// Full-batch gradient steps.
    pub epochs: usize,
    /// Step size.
    pub learning_rate: f32,
    /// L2 penalty towards the prototype initialisation (keeps the head near the prototypes).
    pub l2: f32,
}

impl Default for HeadParams {
    fn default() -> Self {
        Self {
            scale: 10.0,
            epochs: 300,
            learning_rate: 10.0,
            l2: 0.0,
        }
    }
}

impl SoftmaxHead {
    /// Trains on `(class, embedding)` pairs with `classes` classes; embeddings are unit vectors.
    pub fn train(samples: &[(usize, &[f32])], classes: usize, dim: usize, p: HeadParams) -> Self {
        // Prototype initialisation: each class's normalised mean, times the scale.
        let mut weights = vec![0f32; classes * dim];
        for (c, x) in samples {
            if let Some(row) = weights.get_mut(c * dim..(c + 1) * dim) {
                for (w, v) in row.iter_mut().zip(x.iter()) {
                    *w += v;
                }
            }
        }
        for row in weights.chunks_mut(dim) {
            let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if n > 0.0 {
                for v in row.iter_mut() {
                    *v *= p.scale / n;
                }
            }
        }
        let init = weights.clone();
        let mut head = Self {
            dim,
            weights,
            bias: vec![0.0; classes],
        };
        if samples.is_empty() || classes < 2 {
            return head;
        }
        let n = samples.len() as f32;
        let mut grad_w = vec![0f32; classes * dim];
        let mut grad_b = vec![0f32; classes];
        let mut probs = vec![0f32; classes];
        for _ in 0..p.epochs {
            grad_w.iter_mut().for_each(|g| *g = 0.0);
            grad_b.iter_mut().for_each(|g| *g = 0.0);
            for (c, x) in samples {
                head.probabilities_into(x, &mut probs);
                for (k, pk) in probs.iter().enumerate() {
                    let err = pk - if k == *c { 1.0 } else { 0.0 };
                    if err.abs() < 1e-6 {
                        continue;
                    }
                    grad_b[k] += err;
                    let g = &mut grad_w[k * dim..(k + 1) * dim];
                    for (gi, xi) in g.iter_mut().zip(x.iter()) {
                        *gi += err * xi;
                    }
                }
            }
            for ((w, g), w0) in head.weights.iter_mut().zip(&grad_w).zip(&init) {
                *w -= p.learning_rate * (g / n + p.l2 * (*w - w0));
            }
            // The bias lives on the logit scale already; it moves `scale` times slower.
            for (b, g) in head.bias.iter_mut().zip(&grad_b) {
                *b -= p.learning_rate / p.scale.max(1e-6) * g / n;
            }
        }
        head
    }

    /// Logits for one unit embedding.
    pub fn logits_into(&self, x: &[f32], out: &mut [f32]) {
        for (k, o) in out.iter_mut().enumerate() {
            let row = &self.weights[k * self.dim..(k + 1) * self.dim];
            *o = crate::dot(row, x) + self.bias[k];
        }
    }

    /// Softmax probabilities for one unit embedding.
    pub fn probabilities_into(&self, x: &[f32], out: &mut [f32]) {
        self.logits_into(x, out);
        let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for o in out.iter_mut() {
            *o = (*o - max).exp();
            sum += *o;
        }
        if sum > 0.0 {
            for o in out.iter_mut() {
                *o /= sum;
            }
        }
    }
}
