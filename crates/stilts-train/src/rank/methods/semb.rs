//! SEmb (Poth et al., EMNLP 2021, "What to Pre-Train on? Efficient Intermediate Task
//! Selection", section 3): a dataset is the mean of its examples' sentence embeddings; a
//! candidate scores the cosine of its mean to the target's. Checked against NumPy by
//! `scripts/make_rank_fixtures.py`.

use super::{Input, RankMethod};
use crate::rank::{RankError, RankInput, TaskFeatures};

/// Cosine similarity of mean embeddings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Semb;

/// The cosine of two vectors (`NaN` when either is zero).
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// SEmb of two encoded datasets.
pub fn semb(target: &TaskFeatures, candidate: &TaskFeatures) -> f64 {
    cosine(&target.mean(), &candidate.mean())
}

impl RankMethod for Semb {
    fn name(&self) -> &'static str {
        "semb"
    }

    fn inputs(&self) -> &'static [Input] {
        &[Input::TargetFeatures, Input::CandidateFeatures]
    }

    fn scores(&self, input: &RankInput<'_>) -> Result<Vec<f64>, RankError> {
        input
            .candidates
            .iter()
            .map(|c| {
                let features = c.features.as_ref().ok_or_else(|| {
                    RankError::Options(format!("semb: {} was not encoded", c.name))
                })?;
                if features.dim != input.target.dim {
                    return Err(RankError::Options(format!(
                        "semb: {} has {}-wide features, the target {}",
                        c.name, features.dim, input.target.dim
                    )));
                }
                Ok(semb(input.target, features))
            })
            .collect()
    }
}
