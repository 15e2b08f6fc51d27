//! The training-set-size baseline: more intermediate data first (the paper's intuition that
//! data-rich tasks make the best intermediates). A method worth its cost must beat it.

use super::{Input, RankMethod};
use crate::rank::{RankError, RankInput};

/// Ranks candidates by the size of their training split.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainSize;

impl RankMethod for TrainSize {
    fn name(&self) -> &'static str {
        "size"
    }

    fn inputs(&self) -> &'static [Input] {
        &[]
    }

    fn scores(&self, input: &RankInput<'_>) -> Result<Vec<f64>, RankError> {
        Ok(input
            .candidates
            .iter()
            .map(|c| c.train_size as f64)
            .collect())
    }
}
