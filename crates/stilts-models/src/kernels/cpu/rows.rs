//! Row kernels: softmax and LayerNorm over the last dimension, with their backward passes.

use rayon::prelude::*;

use super::{LANES, exp, rows_per_task};

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

#[inline(always)]
fn softmax_row(x: &mut [f32]) {
    let m = max_of(x);
    for v in x.iter_mut() {
        *v = exp(*v - m);
    }
    let inv = 1.0 / sum_by(x.len(), |i| x[i]);
    for v in x.iter_mut() {
        *v *= inv;
    }
}

simd! {
    fn softmax_rows(x: &mut [f32], row: usize) {
        for x in x.chunks_exact_mut(row) {
            softmax_row(x);
        }
    }
}

simd! {
    /// Rows `first..` of a masked softmax: row `r` adds mask row `r / group` first.
    fn masked_softmax_rows(x: &mut [f32], row: usize, mask: &[f32], group: usize, first: usize) {
        for (r, x) in x.chunks_exact_mut(row).enumerate() {
            let at = (first + r) / group * row;
            for (v, &b) in x.iter_mut().zip(&mask[at..at + row]) {
                *v += b;
            }
            softmax_row(x);
        }
    }
}

simd! {
    fn softmax_backward_rows(y: &[f32], grad: &mut [f32], row: usize) {
        for (y, g) in y.chunks_exact(row).zip(grad.chunks_exact_mut(row)) {
            let dot = sum_by(row, |i| y[i] * g[i]);
            for (g, &y) in g.iter_mut().zip(y) {
                *g = y * (*g - dot);
            }
        }
    }
}

/// Softmax of every row of `row` elements (`x.len()` a multiple of `row`).
pub fn softmax(x: &[f32], row: usize) -> Vec<f32> {
    let mut out = x.to_vec();
    softmax_in_place(&mut out, row);
    out
}

/// [`softmax`] over `x` itself: no output buffer to allocate and fill.
pub fn softmax_in_place(x: &mut [f32], row: usize) {
    assert!(
        row > 0 && x.len() % row == 0,
        "softmax: {} elements in rows of {row}",
        x.len()
    );
    let chunk = rows_per_task(row) * row;
    x.par_chunks_mut(chunk).for_each(|x| softmax_rows(x, row));
}

/// `softmax(x + mask)` over `x` itself, each row of `row` elements adding a row of `mask`:
/// rows `0..group` the first, the next `group` rows the second, and so on (attention's scores
/// `[batch, heads, query, key]` with a `[batch, key]` mask: `group = heads * query`). The same
/// bits as adding the broadcast mask and then [`softmax_in_place`].
pub fn masked_softmax_in_place(x: &mut [f32], row: usize, mask: &[f32], group: usize) {
    assert!(
        row > 0 && group > 0 && x.len().is_multiple_of(row * group),
        "masked_softmax: {} elements in groups of {group} rows of {row}",
        x.len()
    );
    assert_eq!(
        mask.len() * group,
        x.len(),
        "masked_softmax: one mask row per group of {group} rows"
    );
    let per_task = rows_per_task(row);
    x.par_chunks_mut(per_task * row)
        .enumerate()
        .for_each(|(t, x)| masked_softmax_rows(x, row, mask, group, t * per_task));
}

/// The gradient of softmax's input from its output `y` and the output's gradient:
/// `y * (grad - sum(grad * y))` per row, over `grad` itself.
pub fn softmax_backward_in_place(y: &[f32], grad: &mut [f32], row: usize) {
    assert_eq!(
        y.len(),
        grad.len(),
        "softmax_backward: output and gradient lengths"
    );
    assert!(
        row > 0 && y.len().is_multiple_of(row),
        "softmax_backward: {} elements in rows of {row}",
        y.len()
    );
    let chunk = rows_per_task(row) * row;
    grad.par_chunks_mut(chunk)
        .zip(y.par_chunks(chunk))
        .for_each(|(g, y)| softmax_backward_rows(y, g, row));
}

/// [`softmax_backward_in_place`] into a new buffer.
pub fn softmax_backward(y: &[f32], grad: &[f32], row: usize) -> Vec<f32> {
    let mut out = grad.to_vec();
    softmax_backward_in_place(y, &mut out, row);
    out
}

/// Each row's cross-entropy against its target class: `(nll, lse)`, where
/// `lse = ln(sum(exp(row)))` (kept for the backward pass) and `nll = lse - row[target]`.
///
/// # Panics
///
/// If a target is not below `classes`.
pub fn cross_entropy(logits: &[f32], classes: usize, targets: &[usize]) -> (Vec<f32>, Vec<f32>) {
    assert!(
        classes > 0 && logits.len() == targets.len() * classes,
        "cross_entropy: {} logits for {} rows of {classes}",
        logits.len(),
        targets.len()
    );
    if let Some(t) = targets.iter().find(|&&t| t >= classes) {
        panic!("cross_entropy: target {t} outside {classes} classes");
    }
    let per_task = rows_per_task(classes);
    let mut nll = vec![0.0; targets.len()];
    let mut lse = vec![0.0; targets.len()];
    nll.par_chunks_mut(per_task)
        .zip(lse.par_chunks_mut(per_task))
        .zip(logits.par_chunks(per_task * classes))
        .zip(targets.par_chunks(per_task))
        .for_each(|(((nll, lse), x), t)| cross_entropy_rows(x, t, nll, lse));
    (nll, lse)
}

simd! {
    fn cross_entropy_rows(x: &[f32], targets: &[usize], nll: &mut [f32], lse: &mut [f32]) {
        let classes = x.len() / targets.len();
        for (((x, &t), nll), lse) in x.chunks_exact(classes).zip(targets).zip(nll).zip(lse) {
            let m = max_of(x);
            let s = sum_by(classes, |i| exp(x[i] - m));
            *lse = m + s.ln();
            *nll = *lse - x[t];
        }
    }
}

/// The logits' gradient of [`cross_entropy`] under `grad` (one value per row), written over
/// the logits: `grad * (softmax(row) - onehot(target))`.
pub fn cross_entropy_backward_in_place(
    logits: &mut [f32],
    classes: usize,
    targets: &[usize],
    lse: &[f32],
    grad: &[f32],
) {
    assert!(
        classes > 0 && logits.len() == targets.len() * classes,
        "cross_entropy_backward: {} logits for {} rows of {classes}",
        logits.len(),
        targets.len()
    );
    assert!(
        lse.len() == targets.len() && grad.len() == targets.len(),
        "cross_entropy_backward: one lse and one gradient per row"
    );
    let per_task = rows_per_task(classes);
    logits
        .par_chunks_mut(per_task * classes)
        .zip(targets.par_chunks(per_task))
        .zip(lse.par_chunks(per_task).zip(grad.par_chunks(per_task)))
        .for_each(|((x, t), (l, g))| cross_entropy_backward_rows(x, t, l, g));
}

simd! {
    fn cross_entropy_backward_rows(x: &mut [f32], targets: &[usize], lse: &[f32], grad: &[f32]) {
        let classes = x.len() / targets.len();
        for (((x, &t), &l), &g) in x.chunks_exact_mut(classes).zip(targets).zip(lse).zip(grad) {
            for v in x.iter_mut() {
                *v = exp(*v - l) * g;
            }
            x[t] -= g;
        }
    }
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
        let rows = x.chunks_exact(row).zip(out.chunks_exact_mut(row));
        for (((x, o), mu), rs) in rows.zip(mean.iter_mut()).zip(rstd.iter_mut()) {
            let (m, r) = row_stats(x, eps);
            for (((o, &x), &g), &b) in o.iter_mut().zip(x).zip(gamma).zip(beta) {
                *o = (x - m) * r * g + b;
            }
            *mu = m;
            *rs = r;
        }
    }
}

/// A row's mean and `1 / sqrt(var + eps)` (biased variance).
#[inline(always)]
fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let m = sum_by(x.len(), |i| x[i]) / n;
    let var = sum_by(x.len(), |i| (x[i] - m) * (x[i] - m)) / n;
    (m, 1.0 / (var + eps).sqrt())
}

simd! {
    fn add_layer_norm_rows(x: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let row = gamma.len();
        for (x, res) in x.chunks_exact_mut(row).zip(residual.chunks_exact(row)) {
            for (v, &r) in x.iter_mut().zip(res) {
                *v += r;
            }
            let (m, r) = row_stats(x, eps);
            for ((v, &g), &b) in x.iter_mut().zip(gamma).zip(beta) {
                *v = (*v - m) * r * g + b;
            }
        }
    }
}

/// `LayerNorm(x + residual)` over rows of `gamma.len()` elements, over `x` itself and without
/// the statistics (a forward pass with no backward): the same bits as adding and then
/// [`layer_norm`].
pub fn add_layer_norm_in_place(
    x: &mut [f32],
    residual: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let row = gamma.len();
    assert_eq!(beta.len(), row, "add_layer_norm: gamma and beta lengths");
    assert_eq!(
        x.len(),
        residual.len(),
        "add_layer_norm: input and residual lengths"
    );
    assert!(
        row > 0 && x.len().is_multiple_of(row),
        "add_layer_norm: {} elements in rows of {row}",
        x.len()
    );
    let chunk = rows_per_task(row) * row;
    x.par_chunks_mut(chunk)
        .zip(residual.par_chunks(chunk))
        .for_each(|(x, res)| add_layer_norm_rows(x, res, gamma, beta, eps));
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
