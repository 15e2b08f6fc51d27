//! The fused kernels on `f32` slices: GELU (erf form) and its derivative, softmax over rows and
//! its backward, LayerNorm over rows and its backward, dropout, and an AdamW step.
//!
//! Each kernel is a plain loop that LLVM vectorises; a macro (`simd!`) compiles it twice, once
//! for the baseline target and once with AVX2 + FMA enabled, and picks at run time. No
//! `mul_add` is written and Rust never contracts `a * b + c` on its own, so both versions round
//! identically: results do not depend on the CPU. Reductions keep eight partial sums in a fixed
//! order for the same reason, and rows are split into fixed-size chunks for rayon, so the thread count
//! does not change a result either.

use rayon::prelude::*;

/// Partial sums per reduction (one AVX2 register of `f32`).
const LANES: usize = 8;

/// Elements per rayon task for elementwise kernels.
const ELEMENTS_PER_TASK: usize = 16 * 1024;

/// Compiles `$body` as a baseline function and as one with AVX2 + FMA, choosing at run time.
macro_rules! simd {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `avx2` was compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// `2^23 * 1.5`: adding and subtracting it rounds an `f32` below `2^22` to the nearest integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x` in `f32`, within 2 ulp of `f32::exp` on `[-87.3, 88]` (clamped outside), branch-free so that it vectorises.
///
/// Cephes' `expf`: `x = n ln 2 + r` with `|r| <= ln 2 / 2` (ln 2 split in two for the
/// reduction), a degree-6 polynomial for `e^r`, and `2^n` written into the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.0);
    let t = x * LOG2E + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    let bits = t.to_bits().wrapping_sub(ROUND_MAGIC.to_bits()) as i32;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((bits + 127) as u32) << 23)
}

/// `erf(x)` in `f32`, within 1e-6 of `erf`, branch-free so that it vectorises.
///
/// The rational approximation of Eigen's `generic_fast_erf_float` (also XLA's `EmitErfF32`):
/// an odd degree-13 numerator over an even degree-8 denominator on `[-4, 4]`, where `erf`
/// reaches `±1` in `f32`.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    x * p / q
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `1 / sqrt(2 pi)`.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

simd! {
    fn gelu_chunk(x: &[f32], out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2));
        }
    }
}

simd! {
    fn gelu_backward_chunk(x: &[f32], grad: &[f32], out: &mut [f32]) {
        for ((o, &x), &g) in out.iter_mut().zip(x).zip(grad) {
            let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
            let pdf = FRAC_1_SQRT_2PI * exp(-0.5 * x * x);
            *o = g * (cdf + x * pdf);
        }
    }
}

/// `sqrt(2 / pi)`.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// The cubic coefficient of GELU's tanh form.
const GELU_TANH_CUBIC: f32 = 0.044_715;

/// `tanh(z)` as `1 - 2 / (e^{2z} + 1)` with [`exp`] (within 2e-7 of `f32::tanh`), branch-free.
#[inline(always)]
pub(crate) fn tanh(z: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * z) + 1.0)
}

simd! {
    fn gelu_tanh_chunk(x: &[f32], out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(x) {
            let t = tanh(SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x));
            *o = 0.5 * x * (1.0 + t);
        }
    }
}

simd! {
    fn gelu_tanh_backward_chunk(x: &[f32], grad: &[f32], out: &mut [f32]) {
        for ((o, &x), &g) in out.iter_mut().zip(x).zip(grad) {
            let inner = SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x);
            let t = tanh(inner);
            let d_inner = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_CUBIC * x * x);
            *o = g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * d_inner);
        }
    }
}

/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (GELU's tanh form, OpenAI GPT's) of every
/// element.
pub fn gelu_tanh(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(ELEMENTS_PER_TASK)
        .zip(x.par_chunks(ELEMENTS_PER_TASK))
        .for_each(|(o, x)| gelu_tanh_chunk(x, o));
    out
}

/// `grad * d/dx gelu_tanh(x)`, elementwise.
pub fn gelu_tanh_backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    assert_eq!(
        x.len(),
        grad.len(),
        "gelu_tanh_backward: input and gradient lengths"
    );
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(ELEMENTS_PER_TASK)
        .zip(x.par_chunks(ELEMENTS_PER_TASK))
        .zip(grad.par_chunks(ELEMENTS_PER_TASK))
        .for_each(|((o, x), g)| gelu_tanh_backward_chunk(x, g, o));
    out
}

/// `gelu(x) = x Φ(x)` (the erf form) of every element.
pub fn gelu(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(ELEMENTS_PER_TASK)
        .zip(x.par_chunks(ELEMENTS_PER_TASK))
        .for_each(|(o, x)| gelu_chunk(x, o));
    out
}

/// `grad * gelu'(x)`, elementwise.
pub fn gelu_backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    assert_eq!(
        x.len(),
        grad.len(),
        "gelu_backward: input and gradient lengths"
    );
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(ELEMENTS_PER_TASK)
        .zip(x.par_chunks(ELEMENTS_PER_TASK))
        .zip(grad.par_chunks(ELEMENTS_PER_TASK))
        .for_each(|((o, x), g)| gelu_backward_chunk(x, g, o));
    out
}

/// Rows per rayon task for a row length: about [`ELEMENTS_PER_TASK`] elements, at least one row.
fn rows_per_task(row: usize) -> usize {
    (ELEMENTS_PER_TASK / row.max(1)).max(1)
}

#[inline(always)]
fn lane_sum(lanes: [f32; LANES]) -> f32 {
    ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))
}

/// `sum(f(i))` over `0..n` with [`LANES`] partial sums, in a fixed order.
#[inline(always)]
fn sum_by(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let full = n / LANES * LANES;
    let mut i = 0;
    while i < full {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(i + l);
        }
        i += LANES;
    }
    let mut total = lane_sum(acc);
    for j in full..n {
        total += f(j);
    }
    total
}

#[inline(always)]
fn max_of(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.max(v);
        }
    }
    let mut m = acc.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for &v in tail {
        m = m.max(v);
    }
    m
}

simd! {
    fn softmax_rows(x: &[f32], out: &mut [f32], row: usize) {
        for (x, o) in x.chunks_exact(row).zip(out.chunks_exact_mut(row)) {
            let m = max_of(x);
            for (o, &x) in o.iter_mut().zip(x) {
                *o = exp(x - m);
            }
            let inv = 1.0 / sum_by(row, |i| o[i]);
            for o in o.iter_mut() {
                *o *= inv;
            }
        }
    }
}

simd! {
    fn softmax_backward_rows(y: &[f32], grad: &[f32], out: &mut [f32], row: usize) {
        let rows = y.chunks_exact(row).zip(grad.chunks_exact(row));
        for ((y, g), o) in rows.zip(out.chunks_exact_mut(row)) {
            let dot = sum_by(row, |i| y[i] * g[i]);
            for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                *o = y * (g - dot);
            }
        }
    }
}

/// Softmax of every row of `row` elements (`x.len()` a multiple of `row`).
pub fn softmax(x: &[f32], row: usize) -> Vec<f32> {
    assert!(
        row > 0 && x.len() % row == 0,
        "softmax: {} elements in rows of {row}",
        x.len()
    );
    let mut out = vec![0.0; x.len()];
    let chunk = rows_per_task(row) * row;
    out.par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .for_each(|(o, x)| softmax_rows(x, o, row));
    out
}

/// The gradient of softmax's input from its output `y` and the output's gradient:
/// `y * (grad - sum(grad * y))` per row.
pub fn softmax_backward(y: &[f32], grad: &[f32], row: usize) -> Vec<f32> {
    assert_eq!(
        y.len(),
        grad.len(),
        "softmax_backward: output and gradient lengths"
    );
    assert!(
        row > 0 && y.len() % row == 0,
        "softmax_backward: {} elements in rows of {row}",
        y.len()
    );
    let mut out = vec![0.0; y.len()];
    let chunk = rows_per_task(row) * row;
    out.par_chunks_mut(chunk)
        .zip(y.par_chunks(chunk))
        .zip(grad.par_chunks(chunk))
        .for_each(|((o, y), g)| softmax_backward_rows(y, g, o, row));
    out
}

/// LayerNorm's output and the per-row statistics its backward pass needs.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNormForward {
    /// `(x - mean) * rstd * gamma + beta`, the input's shape.
    pub output: Vec<f32>,
    /// Each row's mean.
    pub mean: Vec<f32>,
    /// Each row's `1 / sqrt(var + eps)` (biased variance, as PyTorch).
    pub rstd: Vec<f32>,
}

simd! {
    fn layer_norm_rows(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        out: &mut [f32],
        mean: &mut [f32],
        rstd: &mut [f32],
    ) {
        let row = gamma.len();
        let n = row as f32;
        let rows = x.chunks_exact(row).zip(out.chunks_exact_mut(row));
        for (((x, o), mu), rs) in rows.zip(mean.iter_mut()).zip(rstd.iter_mut()) {
            let m = sum_by(row, |i| x[i]) / n;
            let var = sum_by(row, |i| (x[i] - m) * (x[i] - m)) / n;
            let r = 1.0 / (var + eps).sqrt();
            for (((o, &x), &g), &b) in o.iter_mut().zip(x).zip(gamma).zip(beta) {
                *o = (x - m) * r * g + b;
            }
            *mu = m;
            *rs = r;
        }
    }
}

/// LayerNorm over rows of `gamma.len()` elements, with the statistics kept for backward.
pub fn layer_norm(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32) -> LayerNormForward {
    let row = gamma.len();
    assert_eq!(beta.len(), row, "layer_norm: gamma and beta lengths");
    assert!(
        row > 0 && x.len() % row == 0,
        "layer_norm: {} elements in rows of {row}",
        x.len()
    );
    let rows = x.len() / row;
    let mut output = vec![0.0; x.len()];
    let mut mean = vec![0.0; rows];
    let mut rstd = vec![0.0; rows];
    let per_task = rows_per_task(row);
    output
        .par_chunks_mut(per_task * row)
        .zip(x.par_chunks(per_task * row))
        .zip(mean.par_chunks_mut(per_task))
        .zip(rstd.par_chunks_mut(per_task))
        .for_each(|(((o, x), m), r)| layer_norm_rows(x, gamma, beta, eps, o, m, r));
    LayerNormForward { output, mean, rstd }
}

/// LayerNorm's gradients: the input's, gamma's and beta's.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNormGrads {
    /// The input's gradient, its shape.
    pub x: Vec<f32>,
    /// Gamma's gradient, `[row]`.
    pub gamma: Vec<f32>,
    /// Beta's gradient, `[row]`.
    pub beta: Vec<f32>,
}

simd! {
    /// One task's rows: writes `dx` and adds this task's sums into `dgamma` and `dbeta`.
    fn layer_norm_backward_rows(
        x: &[f32],
        gamma: &[f32],
        mean: &[f32],
        rstd: &[f32],
        grad: &[f32],
        dx: &mut [f32],
        dgamma: &mut [f32],
        dbeta: &mut [f32],
    ) {
        let row = gamma.len();
        let n = row as f32;
        let rows = x.chunks_exact(row).zip(grad.chunks_exact(row)).zip(dx.chunks_exact_mut(row));
        for (((x, g), dx), (&m, &r)) in rows.zip(mean.iter().zip(rstd)) {
            // x̂ = (x - m) r and ĝ = g γ; dx = r (ĝ - mean(ĝ) - x̂ mean(ĝ x̂)).
            let sum_g = sum_by(row, |i| g[i] * gamma[i]);
            let sum_gx = sum_by(row, |i| g[i] * gamma[i] * ((x[i] - m) * r));
            let mean_g = sum_g / n;
            let mean_gx = sum_gx / n;
            for i in 0..row {
                let xhat = (x[i] - m) * r;
                dx[i] = r * (g[i] * gamma[i] - mean_g - xhat * mean_gx);
                dgamma[i] += g[i] * xhat;
                dbeta[i] += g[i];
            }
        }
    }
}

/// LayerNorm's backward pass from the forward's input, gamma and statistics.
///
/// Gamma's and beta's gradients sum over rows: each rayon task sums its rows, then the tasks'
/// sums are added in task order.
pub fn layer_norm_backward(
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    rstd: &[f32],
    grad: &[f32],
) -> LayerNormGrads {
    let row = gamma.len();
    assert!(
        row > 0 && x.len() % row == 0,
        "layer_norm_backward: {} elements in rows of {row}",
        x.len()
    );
    assert_eq!(
        x.len(),
        grad.len(),
        "layer_norm_backward: input and gradient lengths"
    );
    assert_eq!(
        mean.len(),
        x.len() / row,
        "layer_norm_backward: one mean per row"
    );
    assert_eq!(
        rstd.len(),
        x.len() / row,
        "layer_norm_backward: one rstd per row"
    );
    let per_task = rows_per_task(row);
    let mut dx = vec![0.0; x.len()];
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(per_task * row)
        .zip(x.par_chunks(per_task * row))
        .zip(grad.par_chunks(per_task * row))
        .zip(mean.par_chunks(per_task).zip(rstd.par_chunks(per_task)))
        .map(|(((dx, x), g), (m, r))| {
            let mut dgamma = vec![0.0; row];
            let mut dbeta = vec![0.0; row];
            layer_norm_backward_rows(x, gamma, m, r, g, dx, &mut dgamma, &mut dbeta);
            (dgamma, dbeta)
        })
        .collect();
    let mut dgamma = vec![0.0; row];
    let mut dbeta = vec![0.0; row];
    for (pg, pb) in partials {
        for ((a, b), (pa, pb)) in dgamma
            .iter_mut()
            .zip(dbeta.iter_mut())
            .zip(pg.iter().zip(&pb))
        {
            *a += pa;
            *b += pb;
        }
    }
    LayerNormGrads {
        x: dx,
        gamma: dgamma,
        beta: dbeta,
    }
}

/// The draw of one dropout call: which elements it keeps, from a seed and the element's
/// row-major index, so that the backward pass regenerates the mask instead of storing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropoutMask {
    /// Two 32-bit keys from the caller's random stream.
    pub seed: (u32, u32),
    /// An element is dropped when its hash falls below this (`prob * 2^32`).
    pub threshold: u32,
}

impl DropoutMask {
    /// The mask of a call dropping with probability `prob` (in `[0, 1)`).
    pub fn new(seed: u64, prob: f64) -> Self {
        let threshold = (prob.clamp(0.0, 1.0) * 4_294_967_296.0).min(u32::MAX as f64) as u32;
        DropoutMask {
            seed: (seed as u32, (seed >> 32) as u32),
            threshold,
        }
    }

    /// `1 / (1 - prob)`, what a kept element is scaled by.
    pub fn scale(&self) -> f32 {
        (1.0 / (1.0 - self.threshold as f64 / 4_294_967_296.0)) as f32
    }

    /// Whether element `i` is kept: two rounds of MurmurHash3's 32-bit finaliser over the index
    /// and the keys (a counter-based draw; it vectorises).
    #[inline(always)]
    pub fn keeps(&self, i: u32) -> bool {
        fmix32(fmix32(i ^ self.seed.0) ^ self.seed.1) >= self.threshold
    }
}

#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

simd! {
    fn dropout_chunk(x: &[f32], out: &mut [f32], start: u32, mask: &DropoutMask, scale: f32) {
        for (k, (o, &x)) in out.iter_mut().zip(x).enumerate() {
            *o = if mask.keeps(start.wrapping_add(k as u32)) { x * scale } else { 0.0 };
        }
    }
}

/// `x` with the elements `mask` drops zeroed and the rest scaled by `1 / (1 - prob)`; applied to
/// an output's gradient it is dropout's backward pass.
pub fn dropout(x: &[f32], mask: &DropoutMask) -> Vec<f32> {
    assert!(
        x.len() <= u32::MAX as usize,
        "dropout: more than 2^32 elements"
    );
    let scale = mask.scale();
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(ELEMENTS_PER_TASK)
        .zip(x.par_chunks(ELEMENTS_PER_TASK))
        .enumerate()
        .for_each(|(c, (o, x))| dropout_chunk(x, o, (c * ELEMENTS_PER_TASK) as u32, mask, scale));
    out
}

/// The scalars of one AdamW step, as burn's `AdamW` rounds them to `f32`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// The learning rate.
    pub lr: f32,
    /// First moment decay.
    pub beta_1: f32,
    /// Second moment decay.
    pub beta_2: f32,
    /// Added to the root of the corrected second moment.
    pub epsilon: f32,
    /// `1 - lr * weight_decay` (1 without decay, which leaves a weight exactly as it is).
    pub decay: f32,
    /// `1 - beta_1^t`.
    pub correction_1: f32,
    /// `1 - beta_2^t`.
    pub correction_2: f32,
    /// Whether this is the first step (the moments start from the gradient alone).
    pub first: bool,
}

simd! {
    fn adamw_chunk(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamWStep) {
        let (f1, f2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            if s.first {
                *m = g * f1;
                *v = (g * g) * f2;
            } else {
                *m = *m * s.beta_1 + g * f1;
                *v = *v * s.beta_2 + (g * g) * f2;
            }
            let m_hat = *m / s.correction_1;
            let v_hat = *v / s.correction_2;
            let delta = m_hat / (v_hat.sqrt() + s.epsilon);
            *w = *w * s.decay - delta * s.lr;
        }
    }
}

/// One AdamW step in place over a parameter buffer and its moments: burn's `AdamW` (decoupled
/// decay, bias correction) in one pass instead of a dozen, each element computed by the same
/// operations in the same order. `m` and `v` are ignored (overwritten) on the first step.
pub fn adamw(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step: &AdamWStep) {
    let n = w.len();
    assert!(
        g.len() == n && m.len() == n && v.len() == n,
        "adamw: buffer lengths differ"
    );
    w.par_chunks_mut(ELEMENTS_PER_TASK)
        .zip(g.par_chunks(ELEMENTS_PER_TASK))
        .zip(m.par_chunks_mut(ELEMENTS_PER_TASK))
        .zip(v.par_chunks_mut(ELEMENTS_PER_TASK))
        .for_each(|(((w, g), m), v)| adamw_chunk(w, g, m, v, step));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n)
            .map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32)
            .collect()
    }

    fn erf_f64(x: f64) -> f64 {
        // Abramowitz & Stegun 7.1.26 is too coarse for a reference; integrate instead.
        let steps = 2_000;
        let h = x / steps as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(0.0) + f(x);
        for k in 1..steps {
            s += f(k as f64 * h) * if k % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_within_two_ulp_of_std() {
        for x in grid(20_001, -87.0, 88.0) {
            let (got, want) = (exp(x), x.exp());
            let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
            assert!(ulp <= 2, "exp({x}) = {got}, std {want} ({ulp} ulp)");
        }
        assert!(exp(-1000.0) >= 0.0 && exp(-1000.0) < 1e-37);
        assert!(exp(1000.0).is_finite());
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn erf_is_within_1e6_of_the_integral() {
        for x in grid(4001, -6.0, 6.0) {
            let want = erf_f64(x as f64);
            let got = erf(x) as f64;
            assert!(
                (got - want).abs() < 1e-6,
                "erf({x}) = {got}, integral {want}"
            );
        }
    }

    #[test]
    fn gelu_and_its_derivative_match_f64() {
        let x = grid(10_007, -10.0, 10.0);
        let y = gelu(&x);
        let ones = vec![1.0; x.len()];
        let d = gelu_backward(&x, &ones);
        for ((&x, &y), &d) in x.iter().zip(&y).zip(&d) {
            let xd = x as f64;
            let cdf = 0.5 * (1.0 + erf_f64(xd / 2f64.sqrt()));
            let pdf = (-0.5 * xd * xd).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (y as f64 - xd * cdf).abs() <= 2e-6 * xd.abs().max(1.0),
                "gelu({x})"
            );
            assert!((d as f64 - (cdf + xd * pdf)).abs() <= 2e-6, "gelu'({x})");
        }
    }

    #[test]
    fn the_tanh_form_and_its_derivative_match_f64() {
        let x = grid(10_007, -10.0, 10.0);
        let y = gelu_tanh(&x);
        let d = gelu_tanh_backward(&x, &vec![1.0; x.len()]);
        let c = (2.0 / std::f64::consts::PI).sqrt();
        for ((&x, &y), &d) in x.iter().zip(&y).zip(&d) {
            let xd = x as f64;
            let t = (c * (xd + 0.044715 * xd.powi(3))).tanh();
            let want = 0.5 * xd * (1.0 + t);
            let dwant =
                0.5 * (1.0 + t) + 0.5 * xd * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * xd * xd);
            assert!(
                (y as f64 - want).abs() <= 2e-6 * xd.abs().max(1.0),
                "gelu_tanh({x})"
            );
            assert!(
                (d as f64 - dwant).abs() <= 2e-6 * dwant.abs().max(1.0),
                "gelu_tanh'({x})"
            );
        }
    }

    #[test]
    fn the_avx2_and_baseline_versions_agree_bit_for_bit() {
        let x = grid(4099, -9.0, 9.0);
        let mut baseline = vec![0.0; x.len()];
        gelu_chunk(&x, &mut baseline);
        // The baseline body, called directly.
        let mut plain = vec![0.0; x.len()];
        for (o, &x) in plain.iter_mut().zip(&x) {
            *o = 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2));
        }
        assert_eq!(baseline, plain);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_match_f64() {
        let row = 37;
        let x: Vec<f32> = (0..row * 50)
            .map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 10.0)
            .collect();
        let y = softmax(&x, row);
        for (x, y) in x.chunks(row).zip(y.chunks(row)) {
            let m = x.iter().copied().fold(f32::MIN, f32::max) as f64;
            let z: f64 = x.iter().map(|&v| (v as f64 - m).exp()).sum();
            for (&x, &y) in x.iter().zip(y) {
                let want = (x as f64 - m).exp() / z;
                assert!(
                    (y as f64 - want).abs() <= 1e-6 * want.max(1e-3),
                    "{y} vs {want}"
                );
            }
        }
    }

    #[test]
    fn dropout_keeps_the_right_share_and_its_backward_uses_the_same_mask() {
        let x = vec![1.0f32; 200_000];
        let mask = DropoutMask::new(0x1234_5678_9abc_def0, 0.1);
        let y = dropout(&x, &mask);
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64;
        assert!((kept - 0.9).abs() < 0.003, "kept {kept}");
        assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        let again = dropout(&x, &mask);
        assert_eq!(y, again, "the same seed draws the same mask");
        let other = dropout(&x, &DropoutMask::new(0x1234_5678_9abc_def1, 0.1));
        assert_ne!(y, other, "another seed draws another mask");
        // Neighbouring elements are not correlated (a counter hash, not a stream).
        let pairs = y
            .windows(2)
            .filter(|w| (w[0] == 0.0) && (w[1] == 0.0))
            .count() as f64;
        assert!((pairs / x.len() as f64 - 0.01).abs() < 0.002, "{pairs}");
        assert!(
            dropout(&x, &DropoutMask::new(7, 0.0))
                .iter()
                .all(|&v| v == 1.0)
        );
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let row = 384;
        let x: Vec<f32> = (0..row * 300)
            .map(|i| ((i * 7919) % 977) as f32 / 97.0 - 5.0)
            .collect();
        let gamma: Vec<f32> = (0..row).map(|i| 1.0 + i as f32 / 1000.0).collect();
        let beta: Vec<f32> = (0..row).map(|i| i as f32 / 500.0).collect();
        let run = || {
            let f = layer_norm(&x, &gamma, &beta, 1e-12);
            let b = layer_norm_backward(&x, &gamma, &f.mean, &f.rstd, &x);
            let d = dropout(&x, &DropoutMask::new(99, 0.3));
            (f, b, softmax(&x, row), gelu(&x), d)
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(run);
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap()
            .install(run);
        assert_eq!(one, three);
    }
}
