//! The random baseline: a seeded random order, each candidate's score drawn from a stream named
//! by the candidate, so it does not depend on which other candidates are ranked.

use stilts_data::rng::Rng;

use super::{Input, RankMethod};
use crate::rank::{RankError, RankInput};

/// Ranks candidates in a random order fixed by the seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomOrder;

impl RankMethod for RandomOrder {
    fn name(&self) -> &'static str {
        "random"
    }

    fn inputs(&self) -> &'static [Input] {
        &[]
    }

    fn scores(&self, input: &RankInput<'_>) -> Result<Vec<f64>, RankError> {
        Ok(input
            .candidates
            .iter()
            .map(|c| Rng::derive(input.seed, &["rank-random".into(), (&c.name).into()]).next_f64())
            .collect())
    }
}
