//! The ranking methods, one file each behind [`RankMethod`]; [`MethodName`] is the list a user
//! picks from.

mod esm_logme;
mod logme_tuned;
mod random;
mod semb;
mod size;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{RankError, RankInput};

pub use esm_logme::EsmLogme;
pub use logme_tuned::LogmeTuned;
pub use random::RandomOrder;
pub use semb::{Semb, cosine, semb};
pub use size::TrainSize;

/// What a method reads; each is computed only when some method asks for it, and what it took
/// is charged to the cost of every method that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The base encoder's features of the target's sample.
    TargetFeatures,
    /// The base encoder's features of each candidate's sample.
    CandidateFeatures,
    /// Each candidate's tuned encoder's features of the target's sample.
    TunedTargetFeatures,
    /// Each candidate's Embedding Space Map (loaded, or fitted from the base and tuned
    /// encoders' features of the candidate's sample).
    Esm,
}

/// A way to score candidate intermediate tasks for a target.
pub trait RankMethod {
    /// The method's name (as on the command line).
    fn name(&self) -> &'static str;

    /// What it reads.
    fn inputs(&self) -> &'static [Input];

    /// One score per candidate of `input`, in order; higher ranks first.
    fn scores(&self, input: &RankInput<'_>) -> Result<Vec<f64>, RankError>;
}

/// The methods `stilts rank` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum MethodName {
    /// [`Semb`]: cosine of mean sentence embeddings (Poth et al. 2021).
    Semb,
    /// [`TrainSize`]: the larger training set first (a baseline).
    Size,
    /// [`RandomOrder`]: a seeded random order (a baseline).
    Random,
    /// [`EsmLogme`]: LogME of the target's features mapped by each candidate's Embedding Space
    /// Map (Schulte et al. 2024).
    EsmLogme,
    /// [`LogmeTuned`]: LogME of the target's features from each candidate's tuned encoder (the
    /// costly ceiling).
    LogmeTuned,
}

impl MethodName {
    /// The methods that need no tuned encoder, in the order they are reported by default.
    pub const DEFAULT: [MethodName; 3] = [MethodName::Semb, MethodName::Size, MethodName::Random];

    /// Every method.
    pub const ALL: [MethodName; 5] = [
        MethodName::Semb,
        MethodName::EsmLogme,
        MethodName::LogmeTuned,
        MethodName::Size,
        MethodName::Random,
    ];

    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodName::Semb => "semb",
            MethodName::Size => "size",
            MethodName::Random => "random",
            MethodName::EsmLogme => "esm-logme",
            MethodName::LogmeTuned => "logme-tuned",
        }
    }

    /// The method itself.
    pub fn method(self) -> Box<dyn RankMethod> {
        match self {
            MethodName::Semb => Box::new(Semb),
            MethodName::Size => Box::new(TrainSize),
            MethodName::Random => Box::new(RandomOrder),
            MethodName::EsmLogme => Box::new(EsmLogme),
            MethodName::LogmeTuned => Box::new(LogmeTuned),
        }
    }
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MethodName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MethodName::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = MethodName::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown method `{s}` (known: {})", known.join(", "))
            })
    }
}
