//! LogME of the target's features from each candidate's encoder after intermediate training
//! (You et al. 2021, used as the costly reference by Schulte et al. 2024): what ESM-LogME
//! approximates without running the tuned encoders on the target.

use super::{Input, RankMethod};
use crate::rank::logme::logme;
use crate::rank::{RankError, RankInput};

/// LogME of tuned-encoder target features.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogmeTuned;

impl RankMethod for LogmeTuned {
    fn name(&self) -> &'static str {
        "logme-tuned"
    }

    fn inputs(&self) -> &'static [Input] {
        &[Input::TunedTargetFeatures]
    }

    fn scores(&self, input: &RankInput<'_>) -> Result<Vec<f64>, RankError> {
        input
            .candidates
            .iter()
            .map(|c| {
                let f = c.tuned_target.as_ref().ok_or_else(|| {
                    RankError::Options(format!("logme-tuned: {} has no tuned features", c.name))
                })?;
                Ok(logme(&f.values, f.dim, &f.targets))
            })
            .collect()
    }
}
