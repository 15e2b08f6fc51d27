//! GLUE metrics. (Computation lands with the metrics work; the enum is shared with the task table.)

use serde::{Deserialize, Serialize};

/// A metric a task reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    /// Binary F1 of the positive class (GLUE: label `1`, i.e. paraphrase / duplicate).
    F1,
    /// Matthews correlation coefficient.
    Mcc,
    Pearson,
    /// Spearman rank correlation, ties given average ranks.
    Spearman,
}
