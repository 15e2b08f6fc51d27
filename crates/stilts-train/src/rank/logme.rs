//! LogME (You et al., ICML 2021, "LogME: Practical Assessment of Pre-trained Models for Transfer
//! Learning"): the log marginal evidence of a Bayesian linear model from features to labels,
//! per example, averaged over label columns. Its fixed-point form (You et al. 2021, "Ranking and
//! Tuning Pre-trained Models", arXiv:2110.10545).
//!
//! Port of `hfselect/logme.py` (hf-dataset-selector 0.2.1), `LogME._fit_fixed_point` and
//! `truncated_svd`, which ESM-LogME (Schulte et al. 2024) scores with; checked against that code
//! by `scripts/make_rank_fixtures.py`.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// The labels LogME fits: classes (one evidence per class, each a 0/1 column, up to the largest
/// class seen) or real-valued targets (one column).
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Class indices.
    Classes(Vec<usize>),
    /// Regression targets.
    Scores(Vec<f64>),
}

impl Targets {
    /// The number of examples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes(c) => c.len(),
            Targets::Scores(s) => s.len(),
        }
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label columns LogME fits, each `[n]`.
    fn columns(&self) -> Vec<DVector<f64>> {
        match self {
            Targets::Scores(s) => vec![DVector::from_column_slice(s)],
            Targets::Classes(c) => {
                let classes = c.iter().max().map_or(0, |&m| m + 1);
                (0..classes)
                    .map(|k| DVector::from_iterator(c.len(), c.iter().map(|&y| f64::from(y == k))))
                    .collect()
            }
        }
    }
}

/// The squared singular values of the feature matrix and a projection of label columns onto its
/// left singular vectors.
struct Spectrum {
    /// `sigma = s^2`, one per kept singular value.
    sigma: Vec<f64>,
    /// `[k, n]`: `u^T`, the left singular vectors as rows.
    ut: DMatrix<f64>,
}

impl Spectrum {
    /// As hfselect: with more rows than columns, the eigenvectors of `f^T f` give the right
    /// singular vectors and `u = f v / s` for the singular values that count toward the rank
    /// (`truncated_svd`); otherwise the thin SVD of `f` keeps all `n` values (the
    /// eigen-decomposition of `f f^T`).
    ///
    /// hfselect counts the rank as the singular values above an absolute 1e-10; here, as the
    /// eigenvalues of `f^T f` above `max(n, d) * eps` times the largest. They agree on features
    /// of full rank; with a repeated feature the null direction's eigenvalue is rounding noise
    /// whose square root (~1e-7) hfselect keeps, making its score a function of that noise.
    fn of(f: &DMatrix<f64>) -> Spectrum {
        let (n, d) = f.shape();
        if n > d {
            let eig = SymmetricEigen::new(f.transpose() * f); // [d, d]
            let largest = eig.eigenvalues.iter().copied().fold(0.0, f64::max);
            let tolerance = largest * n.max(d) as f64 * f64::EPSILON;
            let mut sigma = Vec::new();
            let mut rows = Vec::new();
            for (k, &lambda) in eig.eigenvalues.iter().enumerate() {
                let s = lambda.max(0.0).sqrt();
                if lambda > tolerance && s > 1e-10 {
                    let u = (f * eig.eigenvectors.column(k)) / s; // [n]
                    sigma.push(s * s);
                    rows.push(u.transpose());
                }
            }
            let ut = if rows.is_empty() {
                DMatrix::zeros(0, n)
            } else {
                DMatrix::from_rows(&rows)
            };
            Spectrum { sigma, ut }
        } else {
            let eig = SymmetricEigen::new(f * f.transpose()); // [n, n]
            let sigma = eig.eigenvalues.iter().map(|&l| l.max(0.0)).collect();
            Spectrum {
                sigma,
                ut: eig.eigenvectors.transpose(),
            }
        }
    }
}

/// The evidence of one label column (`_fit_fixed_point`'s loop body).
fn column_evidence(spectrum: &Spectrum, y: &DVector<f64>, n: usize, d: usize) -> f64 {
    let x = &spectrum.ut * y; // [k]
    let x2: Vec<f64> = x.iter().map(|v| v * v).collect();
    let res_x2 = y.dot(y) - x2.iter().sum::<f64>();
    let sigma = &spectrum.sigma;
    let n_f = n as f64;
    let (mut alpha, mut beta) = (1.0f64, 1.0f64);
    let (mut m2, mut res2) = (0.0, 0.0);
    for _ in 0..50 {
        let t = alpha / beta;
        let gamma: f64 = sigma.iter().map(|&s| s / (s + t)).sum();
        m2 = sigma
            .iter()
            .zip(&x2)
            .map(|(&s, &x2)| s * x2 / ((t + s) * (t + s)))
            .sum();
        res2 = sigma
            .iter()
            .zip(&x2)
            .map(|(&s, &x2)| x2 / ((1.0 + s / t) * (1.0 + s / t)))
            .sum::<f64>()
            + res_x2;
        alpha = gamma / (m2 + 1e-5);
        beta = (n_f - gamma) / (res2 + 1e-5);
        let t_new = alpha / beta;
        if (t_new - t).abs() / t <= 1e-3 {
            break;
        }
    }
    let log_det: f64 = sigma.iter().map(|&s| (alpha + beta * s).ln()).sum();
    let evidence = d as f64 / 2.0 * alpha.ln() + n_f / 2.0 * beta.ln()
        - 0.5 * log_det
        - beta / 2.0 * res2
        - alpha / 2.0 * m2
        - n_f / 2.0 * (2.0 * std::f64::consts::PI).ln();
    evidence / n_f
}

/// LogME of `features` (`[n, d]`, row-major) for `targets`: the mean over label columns of the
/// per-example log evidence. Higher means the features fit the labels better.
///
/// # Panics
///
/// If `features.len()` is not `targets.len() * d`.
pub fn logme(features: &[f32], d: usize, targets: &Targets) -> f64 {
    let n = targets.len();
    assert_eq!(features.len(), n * d, "features are not [{n}, {d}]");
    let f = DMatrix::from_row_iterator(n, d, features.iter().map(|&v| f64::from(v)));
    logme_f64(&f, targets)
}

/// [`logme`] of an `f64` matrix `[n, d]`.
pub fn logme_f64(f: &DMatrix<f64>, targets: &Targets) -> f64 {
    let (n, d) = f.shape();
    let spectrum = Spectrum::of(f);
    let columns = targets.columns();
    if columns.is_empty() {
        return f64::NAN;
    }
    let total: f64 = columns
        .iter()
        .map(|y| column_evidence(&spectrum, y, n, d))
        .sum();
    total / columns.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Features that carry the label score higher than noise does.
    #[test]
    fn informative_features_score_higher() {
        let n = 200;
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let mut state = 7u64;
        let mut noise = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) as f32
        };
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for &y in &labels {
            for j in 0..8 {
                let signal = if j == 0 { y as f32 * 2.0 - 1.0 } else { 0.0 };
                good.push(signal + 0.3 * noise());
                bad.push(noise());
            }
        }
        let t = Targets::Classes(labels);
        assert!(logme(&good, 8, &t) > logme(&bad, 8, &t) + 0.1);
    }
}
