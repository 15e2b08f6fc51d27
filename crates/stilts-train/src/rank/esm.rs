//! Embedding Space Maps (Schulte et al. 2024, "Less is More: Parameter-Efficient Selection of
//! Intermediate Tasks"): a linear map from the base encoder's embedding of an example to the
//! embedding the encoder gives after intermediate training on a candidate, fitted on the
//! candidate's own examples. Applied to the target's base embeddings, it stands in for the
//! tuned encoder, and LogME scores the result (ESM-LogME) without running the tuned encoder on
//! the target.
//!
//! Port of `hfselect/esm.py` `ESM` (the linear architecture, as `nn.Linear`) and
//! `hfselect/trainers.py` `ESMTrainer.train_with_embeddings` (hf-dataset-selector 0.2.1): MSE,
//! AdamW (learning rate 0.01, weight decay 0.01), a linear decay without warm-up, the gradient
//! norm clipped to 1, 10 epochs of batches of 32. Checked against that code by
//! `scripts/make_rank_fixtures.py`.

use nalgebra::DMatrix;
use stilts_data::rng::Rng;

use crate::schedule::LinearWarmupDecay;

/// How an ESM is trained (hfselect's `ESMTrainer` defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct EsmTraining {
    /// Passes over the examples.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// AdamW's peak learning rate, decayed linearly to 0.
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay (on the weight and the bias, as `model.parameters()`).
    pub weight_decay: f64,
    /// The gradients' global norm is clipped to this.
    pub max_grad_norm: f64,
}

impl Default for EsmTraining {
    fn default() -> Self {
        EsmTraining {
            epochs: 10,
            batch_size: 32,
            learning_rate: 0.01,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
        }
    }
}

/// A linear map `y = x W^T + b` between embedding spaces of the same width.
#[derive(Debug, Clone, PartialEq)]
pub struct Esm {
    /// `[dim, dim]`, output by input (torch's `nn.Linear.weight`).
    pub weight: DMatrix<f32>,
    /// `[dim]`.
    pub bias: Vec<f32>,
}

/// AdamW's moments and step count.
struct AdamW {
    m_w: DMatrix<f32>,
    v_w: DMatrix<f32>,
    m_b: Vec<f32>,
    v_b: Vec<f32>,
    step: i32,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

/// `[n, d]` rows as a matrix.
fn matrix(values: &[f32], n: usize, d: usize) -> DMatrix<f32> {
    DMatrix::from_row_slice(n, d, values)
}

impl Esm {
    /// The width it maps.
    pub fn dim(&self) -> usize {
        self.bias.len()
    }

    /// A fresh map initialised as torch initialises `nn.Linear(dim, dim)`: weight and bias
    /// uniform in `±1/sqrt(dim)`, drawn from `seed`.
    pub fn init(dim: usize, seed: u64) -> Esm {
        let bound = 1.0 / (dim.max(1) as f64).sqrt();
        let mut rng = Rng::derive(seed, &["esm-init".into()]);
        let mut draw = || ((rng.next_f64() * 2.0 - 1.0) * bound) as f32;
        let weight = DMatrix::from_fn(dim, dim, |_, _| draw());
        let bias = (0..dim).map(|_| draw()).collect();
        Esm { weight, bias }
    }

    /// Maps `[n, dim]` row-major embeddings.
    ///
    /// # Shapes
    ///
    /// - x: `[n, dim]`
    /// - output: `[n, dim]`
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let d = self.dim();
        let n = x.len() / d.max(1);
        let y = self.forward(&matrix(x, n, d));
        // Row-major out of column-major storage.
        let mut out = Vec::with_capacity(n * d);
        for i in 0..n {
            out.extend(y.row(i).iter());
        }
        out
    }

    /// # Shapes
    ///
    /// - x: `[batch, dim]`
    /// - output: `[batch, dim]`
    fn forward(&self, x: &DMatrix<f32>) -> DMatrix<f32> {
        let mut y = x * self.weight.transpose();
        for mut row in y.row_iter_mut() {
            for (v, b) in row.iter_mut().zip(&self.bias) {
                *v += b;
            }
        }
        y
    }

    /// Fits the map from `base` to `tuned` embeddings (`[n, dim]` each, row-major; the same
    /// examples in the same order): the batches of each epoch are a permutation drawn from
    /// `seed`. Returns the mean loss of each epoch.
    pub fn train(
        &mut self,
        base: &[f32],
        tuned: &[f32],
        options: &EsmTraining,
        seed: u64,
    ) -> Vec<f64> {
        let n = base.len() / self.dim().max(1);
        let orders: Vec<Vec<usize>> = (0..options.epochs)
            .map(|epoch| {
                let mut order: Vec<usize> = (0..n).collect();
                Rng::derive(seed, &["esm-order".into(), (epoch as u64).into()]).shuffle(&mut order);
                order
            })
            .collect();
        self.train_in_order(base, tuned, &orders, options)
    }

    /// [`Esm::train`] with each epoch's example order given (`orders.len()` epochs; the
    /// schedule spans them all).
    pub fn train_in_order(
        &mut self,
        base: &[f32],
        tuned: &[f32],
        orders: &[Vec<usize>],
        options: &EsmTraining,
    ) -> Vec<f64> {
        let d = self.dim();
        assert_eq!(
            tuned.len(),
            base.len(),
            "base and tuned embeddings differ in shape"
        );
        let batch = options.batch_size.max(1);
        let total: usize = orders.iter().map(|o| o.len().div_ceil(batch)).sum();
        // transformers' get_linear_schedule_with_warmup without warm-up, as ESMTrainer uses.
        let schedule = LinearWarmupDecay::new(options.learning_rate, total as u64, 0.0);
        let mut adam = AdamW {
            m_w: DMatrix::zeros(d, d),
            v_w: DMatrix::zeros(d, d),
            m_b: vec![0.0; d],
            v_b: vec![0.0; d],
            step: 0,
        };
        let mut losses = Vec::with_capacity(orders.len());
        for order in orders {
            let (mut sum, mut steps) = (0.0, 0usize);
            for chunk in order.chunks(batch) {
                let rows = |v: &[f32]| -> Vec<f32> {
                    chunk
                        .iter()
                        .flat_map(|&i| v[i * d..(i + 1) * d].iter().copied())
                        .collect()
                };
                let x = matrix(&rows(base), chunk.len(), d);
                let t = matrix(&rows(tuned), chunk.len(), d);
                let lr = schedule.lr(adam.step as u64);
                sum += self.step(&mut adam, &x, &t, lr, options);
                steps += 1;
            }
            losses.push(sum / steps.max(1) as f64);
        }
        losses
    }

    fn step(
        &mut self,
        adam: &mut AdamW,
        x: &DMatrix<f32>,
        t: &DMatrix<f32>,
        lr: f64,
        options: &EsmTraining,
    ) -> f64 {
        let (n, d) = x.shape();
        let diff = self.forward(x) - t; // [n, d]
        let count = (n * d) as f32;
        let loss = f64::from(diff.iter().map(|v| v * v).sum::<f32>() / count);
        let g_y = diff * (2.0 / count); // [n, d]
        let mut g_w = g_y.transpose() * x; // [d, d]
        let mut g_b: Vec<f32> = (0..d).map(|j| g_y.column(j).sum()).collect();
        let norm = (g_w.iter().map(|g| f64::from(g * g)).sum::<f64>()
            + g_b.iter().map(|g| f64::from(g * g)).sum::<f64>())
        .sqrt();
        let coef = (options.max_grad_norm / (norm + 1e-6)).min(1.0) as f32;
        g_w *= coef;
        g_b.iter_mut().for_each(|g| *g *= coef);

        adam.step += 1;
        let bc1 = 1.0 - BETA1.powi(adam.step);
        let bc2_sqrt = (1.0 - BETA2.powi(adam.step)).sqrt();
        let (lr, decay) = (lr as f32, (lr * options.weight_decay) as f32);
        let update = |p: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
            *p *= 1.0 - decay;
            *m = BETA1 * *m + (1.0 - BETA1) * g;
            *v = BETA2 * *v + (1.0 - BETA2) * g * g;
            *p -= lr / bc1 * *m / (v.sqrt() / bc2_sqrt + EPS);
        };
        for (((p, &g), m), v) in self
            .weight
            .iter_mut()
            .zip(g_w.iter())
            .zip(adam.m_w.iter_mut())
            .zip(adam.v_w.iter_mut())
        {
            update(p, g, m, v);
        }
        for (((p, &g), m), v) in self
            .bias
            .iter_mut()
            .zip(&g_b)
            .zip(adam.m_b.iter_mut())
            .zip(adam.v_b.iter_mut())
        {
            update(p, g, m, v);
        }
        loss
    }
}
