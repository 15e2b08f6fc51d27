//! Multitask sampling: which task each batch of a multitask phase comes from.
//!
//! ```
//! use stilts_train::config::Sampler;
//! use stilts_train::sampler::task_probabilities;
//! let p = task_probabilities(Sampler::Proportional, &[300, 100]);
//! assert_eq!(p, vec![0.75, 0.25]);
//! let p = task_probabilities(Sampler::Temperature { temperature: 1e9 }, &[300, 100]);
//! assert!((p[0] - 0.5).abs() < 1e-6);
//! ```

use stilts_data::rng::Rng;

use crate::config::Sampler;

/// Probability of drawing each task, from the training-set sizes `sizes`:
/// proportional `n_i / Σn`, uniform `1/T`, temperature `n_i^(1/T) / Σ n_j^(1/T)`.
pub fn task_probabilities(sampler: Sampler, sizes: &[usize]) -> Vec<f64> {
    let weights: Vec<f64> = sizes
        .iter()
        .map(|&n| match sampler {
            Sampler::Proportional => n as f64,
            Sampler::Uniform => 1.0,
            Sampler::Temperature { temperature } => (n as f64).powf(1.0 / temperature),
        })
        .collect();
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return vec![1.0 / sizes.len().max(1) as f64; sizes.len()];
    }
    weights.iter().map(|w| w / total).collect()
}

/// Draws `draws` task indices with probabilities `probs` (inverse-CDF over `rng`).
pub fn draw_tasks(probs: &[f64], draws: usize, rng: &mut Rng) -> Vec<usize> {
    let mut cdf = Vec::with_capacity(probs.len());
    let mut acc = 0.0;
    for p in probs {
        acc += p;
        cdf.push(acc);
    }
    (0..draws)
        .map(|_| {
            let u = rng.next_f64() * acc;
            cdf.iter()
                .position(|&c| u < c)
                .unwrap_or(probs.len().saturating_sub(1))
        })
        .collect()
}
