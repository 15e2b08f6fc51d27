//! One AdamW step over a parameter buffer, in one pass.

use rayon::prelude::*;

use super::ELEMENTS_PER_TASK;

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
