//! Elementwise kernels: GELU in both forms with its derivative, and dropout.

use rayon::prelude::*;

use super::{ELEMENTS_PER_TASK, erf, exp, tanh};

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `1 / sqrt(2 pi)`.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

simd! {
    fn gelu_chunk(x: &mut [f32]) {
        for v in x.iter_mut() {
            let x = *v;
            *v = 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2));
        }
    }
}

simd! {
    fn gelu_backward_chunk(x: &[f32], grad: &mut [f32]) {
        for (g, &x) in grad.iter_mut().zip(x) {
            let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
            let pdf = FRAC_1_SQRT_2PI * exp(-0.5 * x * x);
            *g *= cdf + x * pdf;
        }
    }
}

/// `sqrt(2 / pi)`.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// The cubic coefficient of GELU's tanh form.
const GELU_TANH_CUBIC: f32 = 0.044_715;

simd! {
    fn gelu_tanh_chunk(x: &mut [f32]) {
        for v in x.iter_mut() {
            let x = *v;
            let t = tanh(SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x));
            *v = 0.5 * x * (1.0 + t);
        }
    }
}

simd! {
    fn gelu_tanh_backward_chunk(x: &[f32], grad: &mut [f32]) {
        for (g, &x) in grad.iter_mut().zip(x) {
            let inner = SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x);
            let t = tanh(inner);
            let d_inner = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_CUBIC * x * x);
            *g *= 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * d_inner;
        }
    }
}

/// `f` over `x` in place, in parallel chunks of [`ELEMENTS_PER_TASK`].
fn map_in_place(x: &mut [f32], f: impl Fn(&mut [f32]) + Send + Sync) {
    x.par_chunks_mut(ELEMENTS_PER_TASK).for_each(f);
}

/// `f(x_chunk, grad_chunk)` over `x` and `grad` in parallel chunks, `f` overwriting the
/// gradient with the input's.
fn map_into_grad(x: &[f32], grad: &mut [f32], what: &str, f: impl Fn(&[f32], &mut [f32]) + Sync) {
    assert_eq!(x.len(), grad.len(), "{what}: input and gradient lengths");
    grad.par_chunks_mut(ELEMENTS_PER_TASK)
        .zip(x.par_chunks(ELEMENTS_PER_TASK))
        .for_each(|(g, x)| f(x, g));
}

/// `gelu(x) = x Φ(x)` (the erf form) of every element, over `x` itself.
pub fn gelu_in_place(x: &mut [f32]) {
    map_in_place(x, gelu_chunk);
}

/// [`gelu_in_place`] into a new buffer.
pub fn gelu(x: &[f32]) -> Vec<f32> {
    let mut out = x.to_vec();
    gelu_in_place(&mut out);
    out
}

/// `grad * gelu'(x)`, elementwise, over `grad` itself.
pub fn gelu_backward_in_place(x: &[f32], grad: &mut [f32]) {
    map_into_grad(x, grad, "gelu_backward", gelu_backward_chunk);
}

/// [`gelu_backward_in_place`] into a new buffer.
pub fn gelu_backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    let mut out = grad.to_vec();
    gelu_backward_in_place(x, &mut out);
    out
}

/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (GELU's tanh form, OpenAI GPT's) of every
/// element, over `x` itself.
pub fn gelu_tanh_in_place(x: &mut [f32]) {
    map_in_place(x, gelu_tanh_chunk);
}

/// [`gelu_tanh_in_place`] into a new buffer.
pub fn gelu_tanh(x: &[f32]) -> Vec<f32> {
    let mut out = x.to_vec();
    gelu_tanh_in_place(&mut out);
    out
}

/// `grad * d/dx gelu_tanh(x)`, elementwise, over `grad` itself.
pub fn gelu_tanh_backward_in_place(x: &[f32], grad: &mut [f32]) {
    map_into_grad(x, grad, "gelu_tanh_backward", gelu_tanh_backward_chunk);
}

/// [`gelu_tanh_backward_in_place`] into a new buffer.
pub fn gelu_tanh_backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    let mut out = grad.to_vec();
    gelu_tanh_backward_in_place(x, &mut out);
    out
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
    fn dropout_chunk(x: &mut [f32], start: u32, mask: &DropoutMask, scale: f32) {
        for (k, v) in x.iter_mut().enumerate() {
            *v = if mask.keeps(start.wrapping_add(k as u32)) { *v * scale } else { 0.0 };
        }
    }
}

/// `x` with the elements `mask` drops zeroed and the rest scaled by `1 / (1 - prob)`, over `x`
/// itself; applied to an output's gradient it is dropout's backward pass.
pub fn dropout_in_place(x: &mut [f32], mask: &DropoutMask) {
    assert!(
        x.len() <= u32::MAX as usize,
        "dropout: more than 2^32 elements"
    );
    let scale = mask.scale();
    x.par_chunks_mut(ELEMENTS_PER_TASK)
        .enumerate()
        .for_each(|(c, x)| dropout_chunk(x, (c * ELEMENTS_PER_TASK) as u32, mask, scale));
}

/// [`dropout_in_place`] into a new buffer.
pub fn dropout(x: &[f32], mask: &DropoutMask) -> Vec<f32> {
    let mut out = x.to_vec();
    dropout_in_place(&mut out, mask);
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::grid;
    use super::*;

    #[test]
    fn the_avx2_and_baseline_versions_agree_bit_for_bit() {
        let x = grid(4099, -9.0, 9.0);
        let mut baseline = x.clone();
        gelu_chunk(&mut baseline);
        // The baseline body, called directly.
        let mut plain = vec![0.0; x.len()];
        for (o, &x) in plain.iter_mut().zip(&x) {
            *o = 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2));
        }
        assert_eq!(baseline, plain);
    }
}
