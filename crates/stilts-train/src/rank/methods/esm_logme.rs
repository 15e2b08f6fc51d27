//! ESM-LogME (Schulte et al. 2024, "Less is More: Parameter-Efficient Selection of
//! Intermediate Tasks"): the target's base features mapped by a candidate's Embedding Space
//! Map, scored with LogME against the target's labels; as `hfselect.compute_scores`.

use super::{Input, RankMethod};
use crate::rank::logme::logme;
use crate::rank::{RankError, RankInput};

/// LogME of ESM-mapped target features.
#[derive(Debug, Clone, Copy, Default)]
pub struct EsmLogme;

impl RankMethod for EsmLogme {
    fn name(&self) -> &'static str {
        "esm-logme"
    }

    fn inputs(&self) -> &'static [Input] {
        &[Input::TargetFeatures, Input::Esm]
    }

    fn scores(&self, input: &RankInput<'_>) -> Result<Vec<f64>, RankError> {
        let target = input.target;
        input
            .candidates
            .iter()
            .map(|c| {
                let esm = c.esm.as_ref().ok_or_else(|| {
                    RankError::Options(format!("esm-logme: {} has no Embedding Space Map", c.name))
                })?;
                if esm.dim() != target.dim {
                    return Err(RankError::Options(format!(
                        "esm-logme: the map of {} is {}-wide, the target's features {}",
                        c.name,
                        esm.dim(),
                        target.dim
                    )));
                }
                Ok(logme(
                    &esm.apply(&target.values),
                    target.dim,
                    &target.targets,
                ))
            })
            .collect()
    }
}
