//! GLUE metrics: accuracy, binary F1, Matthews correlation, Pearson and Spearman correlation, the
//! per-task score and the GLUE average.
//!
//! Values match scikit-learn (`accuracy_score`, `f1_score`, `matthews_corrcoef`) and SciPy
//! (`pearsonr`, `spearmanr`) to within 1e-9, checked against golden fixtures made by
//! `scripts/make_metric_fixtures.py`. The edge cases are defined rather than NaN:
//!
//! - empty input and a length mismatch between predictions and gold are errors;
//! - MCC is 0 when either the predictions or the gold labels are a single class (as sklearn);
//! - F1 is 0 when there are no positive predictions and no positive labels (as sklearn's
//!   default `zero_division`);
//! - Pearson and Spearman are 0 when either vector is constant (including `n = 1`). SciPy returns
//!   NaN there; 0 keeps a degenerate model from poisoning averages and restart selection;
//! - non-finite scores and class indices outside `0..num_classes` are errors.
//!
//! Scores are fractions in `[0, 1]` (correlations in `[-1, 1]`); the leaderboard shows them
//! multiplied by 100.
//!
//! ```
//! use stilts_data::BuiltinTask;
//! use stilts_data::metrics::{Metric, Predictions, evaluate, glue_average, mnli_score};
//!
//! # fn main() -> Result<(), stilts_data::metrics::MetricError> {
//! let mrpc = Predictions::Classes { pred: &[1, 1, 0, 1], gold: &[1, 0, 0, 1], num_classes: 2 };
//! let scores = evaluate(&[Metric::F1, Metric::Accuracy], &mrpc)?;
//! assert_eq!(scores.get(Metric::Accuracy), Some(0.75));
//! assert!((scores.get(Metric::F1).unwrap() - 0.8).abs() < 1e-12);
//! assert!((scores.task_score() - 0.775).abs() < 1e-12);
//!
//! let per_task = [
//!     (BuiltinTask::Cola, 0.5),
//!     (BuiltinTask::Sst2, 0.9),
//!     (BuiltinTask::Mrpc, scores.task_score()),
//!     (BuiltinTask::Qqp, 0.8),
//!     (BuiltinTask::Stsb, 0.85),
//!     (BuiltinTask::Mnli, mnli_score(0.84, 0.83)),
//!     (BuiltinTask::Qnli, 0.9),
//!     (BuiltinTask::Rte, 0.65),
//!     (BuiltinTask::Wnli, 0.65),
//! ];
//! let glue = glue_average(&per_task)?;
//! assert!((glue - 6.86 / 9.0).abs() < 1e-12);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::glue::BuiltinTask;

/// A metric a task reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Metric {
    /// Fraction of predictions equal to the gold label.
    Accuracy,
    /// Binary F1 of the positive class (GLUE: label `1`, i.e. paraphrase / duplicate).
    F1,
    /// Matthews correlation coefficient (binary or multiclass, as sklearn's `matthews_corrcoef`).
    Mcc,
    /// Pearson correlation of predicted and gold scores.
    Pearson,
    /// Spearman rank correlation, ties given average ranks.
    Spearman,
}

impl Metric {
    /// Every metric, in declaration order.
    pub const ALL: [Metric; 5] = [
        Metric::Accuracy,
        Metric::F1,
        Metric::Mcc,
        Metric::Pearson,
        Metric::Spearman,
    ];

    /// The metric's name, as serialized: `accuracy`, `f1`, `mcc`, `pearson`, `spearman`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::F1 => "f1",
            Metric::Mcc => "mcc",
            Metric::Pearson => "pearson",
            Metric::Spearman => "spearman",
        }
    }

    /// Whether the metric takes real-valued scores ([`Predictions::Scores`]) rather than classes.
    pub fn takes_scores(self) -> bool {
        matches!(self, Metric::Pearson | Metric::Spearman)
    }

    /// Computes the metric. Class metrics need [`Predictions::Classes`] (F1 with
    /// `num_classes == 2`), correlations need [`Predictions::Scores`].
    pub fn compute(self, predictions: &Predictions<'_>) -> Result<f64, MetricError> {
        match (self, predictions) {
            (
                Metric::Accuracy | Metric::F1 | Metric::Mcc,
                &Predictions::Classes {
                    pred,
                    gold,
                    num_classes,
                },
            ) => {
                check_classes(pred, gold, num_classes)?;
                match self {
                    Metric::Accuracy => Ok(accuracy_unchecked(pred, gold)),
                    Metric::F1 if num_classes != 2 => Err(MetricError::NotBinary { num_classes }),
                    Metric::F1 => Ok(f1_unchecked(pred, gold)),
                    _ => Ok(mcc_unchecked(pred, gold)),
                }
            }
            (Metric::Pearson, &Predictions::Scores { pred, gold }) => pearson(pred, gold),
            (Metric::Spearman, &Predictions::Scores { pred, gold }) => spearman(pred, gold),
            (metric, _) => Err(MetricError::WrongKind {
                metric,
                expected: if metric.takes_scores() {
                    "real-valued score"
                } else {
                    "class"
                },
            }),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricError {
    /// There are no predictions.
    #[error("no examples to score")]
    Empty,
    /// Predictions and gold labels differ in number.
    #[error("{pred} predictions but {gold} gold labels")]
    LengthMismatch {
        /// Number of predictions.
        pred: usize,
        /// Number of gold labels.
        gold: usize,
    },
    /// A class index is not below the number of classes.
    #[error("{side} class {class} at position {index} is out of range for {num_classes} classes")]
    ClassOutOfRange {
        /// `"predicted"` or `"gold"`.
        side: &'static str,
        /// 0-based position of the example.
        index: usize,
        /// The class index found.
        class: usize,
        /// The number of classes.
        num_classes: usize,
    },
    /// A regression score is NaN or infinite.
    #[error("{side} score at position {index} is not finite ({value})")]
    NonFinite {
        /// `"predicted"` or `"gold"`.
        side: &'static str,
        /// 0-based position of the example.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// F1 asked of a task with other than two classes.
    #[error("F1 is binary, but the task has {num_classes} classes")]
    NotBinary {
        /// The number of classes.
        num_classes: usize,
    },
    /// A classification metric given scores, or a correlation given classes.
    #[error("{metric} needs {expected} predictions")]
    WrongKind {
        /// The metric.
        metric: Metric,
        /// `"class"` or `"real-valued score"`.
        expected: &'static str,
    },
    /// Scores built from no metric values.
    #[error("no metrics to report")]
    NoMetrics,
    /// Scores built from a NaN or infinite metric value.
    #[error("{metric} value {value} is not finite")]
    NonFiniteMetric {
        /// The metric.
        metric: Metric,
        /// The value.
        value: f64,
    },
    /// The GLUE average was given a task outside the nine GLUE tasks (AX, SNLI).
    #[error("{task} is not one of the nine GLUE tasks")]
    NotGlue {
        /// The task.
        task: BuiltinTask,
    },
    /// The GLUE average was given a task twice.
    #[error("{task} appears more than once")]
    DuplicateTask {
        /// The task.
        task: BuiltinTask,
    },
    /// The GLUE average was not given every GLUE task.
    #[error("GLUE average needs all nine tasks; missing: {}", join(missing))]
    MissingTasks {
        /// The tasks without a score.
        missing: Vec<BuiltinTask>,
    },
    /// The GLUE average was given a NaN or infinite task score.
    #[error("{task} score {value} is not finite")]
    NonFiniteTaskScore {
        /// The task.
        task: BuiltinTask,
        /// The score.
        value: f64,
    },
}

fn join(tasks: &[BuiltinTask]) -> String {
    tasks
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Model outputs with their gold values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Predictions<'a> {
    /// Class indices in `0..num_classes` (GLUE label order; for binary tasks `1` is positive).
    Classes {
        /// Predicted classes.
        pred: &'a [usize],
        /// Gold classes, aligned with `pred`.
        gold: &'a [usize],
        /// Number of classes of the task.
        num_classes: usize,
    },
    /// Real-valued scores (STS-B similarity).
    Scores {
        /// Predicted scores.
        pred: &'a [f64],
        /// Gold scores, aligned with `pred`.
        gold: &'a [f64],
    },
}

/// The class a row of logits predicts: the first index of the largest value; NaN never wins (a
/// row of NaN predicts class 0). The one tie rule of the workspace (training, evaluation, GLUE
/// export and the bootstrap all call this).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

/// Fraction of positions where `preds` equals `gold`.
pub fn accuracy(preds: &[usize], gold: &[usize]) -> Result<f64, MetricError> {
    check_lengths(preds.len(), gold.len())?;
    Ok(accuracy_unchecked(preds, gold))
}

/// F1 of the positive class `1`: `2·tp / (2·tp + fp + fn)`. Labels must be `0` or `1`. With no
/// positive predictions and no positive labels the result is 0, as sklearn's `f1_score` with
/// its default `zero_division`.
pub fn f1_binary(preds: &[usize], gold: &[usize]) -> Result<f64, MetricError> {
    check_classes(preds, gold, 2)?;
    Ok(f1_unchecked(preds, gold))
}

/// Matthews correlation coefficient over `num_classes` classes (Gorodkin's multiclass
/// generalisation, as sklearn's `matthews_corrcoef`; for two classes it is the usual
/// `(tp·tn − fp·fn) / sqrt(...)`). Returns 0 when the predictions or the gold labels are a single
/// class.
pub fn mcc(preds: &[usize], gold: &[usize], num_classes: usize) -> Result<f64, MetricError> {
    check_classes(preds, gold, num_classes)?;
    Ok(mcc_unchecked(preds, gold))
}

/// Pearson correlation coefficient, computed with a two-pass mean/deviation sum and clamped to
/// `[-1, 1]`. Returns 0 when either vector is constant (SciPy returns NaN).
pub fn pearson(preds: &[f64], gold: &[f64]) -> Result<f64, MetricError> {
    check_scores(preds, gold)?;
    Ok(pearson_unchecked(preds, gold))
}

/// Spearman rank correlation: Pearson correlation of the ranks, tied values sharing their average
/// rank (as `scipy.stats.spearmanr`). Returns 0 when either vector is constant (SciPy returns
/// NaN).
pub fn spearman(preds: &[f64], gold: &[f64]) -> Result<f64, MetricError> {
    check_scores(preds, gold)?;
    Ok(pearson_unchecked(
        &average_ranks(preds),
        &average_ranks(gold),
    ))
}

/// The GLUE score of MNLI: the mean of matched and mismatched accuracy.
pub fn mnli_score(matched: f64, mismatched: f64) -> f64 {
    (matched + mismatched) / 2.0
}

/// The metric values of one evaluation, keyed by metric. Never empty and always finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<Metric, f64>", into = "BTreeMap<Metric, f64>")]
pub struct Scores(BTreeMap<Metric, f64>);

impl Scores {
    /// Wraps metric values; errors if there are none or one is not finite.
    pub fn new(values: BTreeMap<Metric, f64>) -> Result<Self, MetricError> {
        if values.is_empty() {
            return Err(MetricError::NoMetrics);
        }
        if let Some((&metric, &value)) = values.iter().find(|(_, v)| !v.is_finite()) {
            return Err(MetricError::NonFiniteMetric { metric, value });
        }
        Ok(Scores(values))
    }

    /// The value of `metric`, if it was computed.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        self.0.get(&metric).copied()
    }

    /// The values in metric order.
    pub fn iter(&self) -> impl Iterator<Item = (Metric, f64)> + '_ {
        self.0.iter().map(|(&m, &v)| (m, v))
    }

    /// The values as a map.
    pub fn as_map(&self) -> &BTreeMap<Metric, f64> {
        &self.0
    }

    /// The task's GLUE score: the unweighted mean of its metrics (MRPC and QQP: F1 and accuracy;
    /// STS-B: Pearson and Spearman).
    pub fn task_score(&self) -> f64 {
        self.0.values().sum::<f64>() / self.0.len() as f64
    }
}

impl TryFrom<BTreeMap<Metric, f64>> for Scores {
    type Error = MetricError;
    fn try_from(values: BTreeMap<Metric, f64>) -> Result<Self, Self::Error> {
        Scores::new(values)
    }
}

impl From<Scores> for BTreeMap<Metric, f64> {
    fn from(scores: Scores) -> Self {
        scores.0
    }
}

/// Computes each of `metrics` (at least one) on `predictions`.
pub fn evaluate(metrics: &[Metric], predictions: &Predictions<'_>) -> Result<Scores, MetricError> {
    let values = metrics
        .iter()
        .map(|&m| Ok((m, m.compute(predictions)?)))
        .collect::<Result<BTreeMap<_, _>, MetricError>>()?;
    Scores::new(values)
}

/// The task's GLUE score: the mean of its metrics. Same as [`Scores::task_score`].
pub fn task_score(scores: &Scores) -> f64 {
    scores.task_score()
}

/// The GLUE average as the leaderboard computes it: the unweighted mean of the nine task scores
/// ([`BuiltinTask::GLUE`]; AX excluded). Each score is the task's [`task_score`]; MNLI's is
/// [`mnli_score`] of matched and mismatched accuracy. Every GLUE task must appear exactly once.
pub fn glue_average(per_task: &[(BuiltinTask, f64)]) -> Result<f64, MetricError> {
    let mut seen = BTreeMap::new();
    for &(task, value) in per_task {
        if !BuiltinTask::GLUE.contains(&task) {
            return Err(MetricError::NotGlue { task });
        }
        if !value.is_finite() {
            return Err(MetricError::NonFiniteTaskScore { task, value });
        }
        if seen.insert(task, value).is_some() {
            return Err(MetricError::DuplicateTask { task });
        }
    }
    let missing: Vec<BuiltinTask> = BuiltinTask::GLUE
        .into_iter()
        .filter(|t| !seen.contains_key(t))
        .collect();
    if !missing.is_empty() {
        return Err(MetricError::MissingTasks { missing });
    }
    Ok(seen.values().sum::<f64>() / BuiltinTask::GLUE.len() as f64)
}

fn check_lengths(pred: usize, gold: usize) -> Result<(), MetricError> {
    if pred != gold {
        return Err(MetricError::LengthMismatch { pred, gold });
    }
    if pred == 0 {
        return Err(MetricError::Empty);
    }
    Ok(())
}

fn check_classes(pred: &[usize], gold: &[usize], num_classes: usize) -> Result<(), MetricError> {
    check_lengths(pred.len(), gold.len())?;
    for (side, values) in [("predicted", pred), ("gold", gold)] {
        if let Some((index, &class)) = values.iter().enumerate().find(|(_, c)| **c >= num_classes) {
            return Err(MetricError::ClassOutOfRange {
                side,
                index,
                class,
                num_classes,
            });
        }
    }
    Ok(())
}

fn check_scores(pred: &[f64], gold: &[f64]) -> Result<(), MetricError> {
    check_lengths(pred.len(), gold.len())?;
    for (side, values) in [("predicted", pred), ("gold", gold)] {
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(MetricError::NonFinite { side, index, value });
        }
    }
    Ok(())
}

fn accuracy_unchecked(pred: &[usize], gold: &[usize]) -> f64 {
    let correct = pred.iter().zip(gold).filter(|(p, g)| p == g).count();
    correct as f64 / pred.len() as f64
}

fn f1_unchecked(pred: &[usize], gold: &[usize]) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&p, &g) in pred.iter().zip(gold) {
        match (p == 1, g == 1) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    let denominator = 2 * tp + fp + fn_;
    if denominator == 0 {
        0.0
    } else {
        (2 * tp) as f64 / denominator as f64
    }
}

/// With `t_k`/`p_k` the gold/predicted counts of class `k`, `c` the correct count and `s = n`:
/// `(c·s − Σ t_k p_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²))`. The sums are exact integers (`n` is
/// below 2^60, so `n²` fits in `i128`).
fn mcc_unchecked(pred: &[usize], gold: &[usize]) -> f64 {
    let mut counts: BTreeMap<usize, (u128, u128)> = BTreeMap::new();
    let mut correct: u128 = 0;
    for (&p, &g) in pred.iter().zip(gold) {
        counts.entry(g).or_default().0 += 1;
        counts.entry(p).or_default().1 += 1;
        correct += u128::from(p == g);
    }
    let s = pred.len() as u128;
    let (mut tp_dot, mut pp_dot, mut tt_dot) = (0u128, 0u128, 0u128);
    for &(t, p) in counts.values() {
        tp_dot += t * p;
        pp_dot += p * p;
        tt_dot += t * t;
    }
    let cov_pp = s * s - pp_dot;
    let cov_tt = s * s - tt_dot;
    if cov_pp == 0 || cov_tt == 0 {
        return 0.0;
    }
    let cov_tp = (correct * s) as i128 - tp_dot as i128;
    (cov_tp as f64 / (cov_pp as f64 * cov_tt as f64).sqrt()).clamp(-1.0, 1.0)
}

fn is_constant(values: &[f64]) -> bool {
    values.iter().all(|&v| v == values[0])
}

/// Two passes (mean, then centred sums) over inputs rescaled by a power of two so that the largest
/// magnitude is below 1: the rescaling is exact and keeps the sums of squares from overflowing.
fn pearson_unchecked(x: &[f64], y: &[f64]) -> f64 {
    if is_constant(x) || is_constant(y) {
        return 0.0;
    }
    let (kx, ky) = (unit_scale(x), unit_scale(y));
    let n = x.len() as f64;
    let mean_x = x.iter().map(|&a| a * kx).sum::<f64>() / n;
    let mean_y = y.iter().map(|&b| b * ky).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (dx, dy) = (a * kx - mean_x, b * ky - mean_y);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    let denominator = (sxx * syy).sqrt();
    if denominator == 0.0 {
        return 0.0;
    }
    (sxy / denominator).clamp(-1.0, 1.0)
}

/// `2^-e` with `2^(e-1) <= max |v| < 2^e` (1 for all zeros); multiplying by it is exact.
fn unit_scale(values: &[f64]) -> f64 {
    let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if max == 0.0 {
        return 1.0;
    }
    let biased = ((max.to_bits() >> 52) & 0x7ff) as i32;
    let k = 1022 - biased.max(1);
    if k >= -1022 {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (k + 1074))
    }
}

/// NumPy's default (`linear`) percentile `q` (0..=100) of sorted values; NaN for none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q / 100.0;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// 1-based ranks; a run of tied values shares the mean of the ranks it spans.
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_largest_and_never_nan() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7]), 1);
        assert_eq!(argmax(&[f32::NAN, -3.0, f32::NAN]), 1);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 10.0, 30.0, 20.0, 10.0]),
            vec![2.0, 4.5, 2.0, 6.0, 4.5, 2.0]
        );
        assert_eq!(average_ranks(&[3.0, 1.0, 2.0]), vec![3.0, 1.0, 2.0]);
        assert_eq!(average_ranks(&[-0.0, 0.0]), vec![1.5, 1.5]);
    }

    #[test]
    fn mcc_binary_matches_closed_form() {
        let pred = [1, 1, 0, 0, 1, 0, 1, 1];
        let gold = [1, 0, 0, 1, 1, 0, 0, 1];
        let (tp, tn, fp, fn_) = (3.0, 2.0, 2.0, 1.0);
        let expected =
            (tp * tn - fp * fn_) / f64::sqrt((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_));
        assert!((mcc_unchecked(&pred, &gold) - expected).abs() < 1e-15);
    }

    #[test]
    fn metric_names_match_serde() {
        for metric in Metric::ALL {
            let json = serde_json::to_string(&metric).unwrap();
            assert_eq!(json, format!("\"{}\"", metric.name()));
        }
    }

    #[test]
    fn unit_scale_is_an_exact_power_of_two() {
        for v in [1.0, 0.75, 3.0, 1e-300, 5e-324, 1e300, f64::MAX] {
            let k = unit_scale(&[v, -v / 2.0]);
            let scaled = v * k;
            assert!(
                (0.5..1.0).contains(&scaled) || v < 1e-307,
                "{v} -> {scaled}"
            );
            assert_eq!(scaled / k, v);
        }
        assert_eq!(unit_scale(&[0.0, -0.0]), 1.0);
    }

    #[test]
    fn pearson_survives_extreme_magnitudes() {
        let reference = pearson_unchecked(&[1.0, 2.0, 4.0], &[1.0, 3.0, 2.0]);
        assert!(
            (reference - 0.3273268353539886).abs() < 1e-15,
            "{reference}"
        );
        for scale in [1e300, f64::MAX / 4.0, 1e-300, 5e-324] {
            let x = [scale, 2.0 * scale, 4.0 * scale];
            let r = pearson_unchecked(&x, &[1.0, 3.0, 2.0]);
            assert!((r - reference).abs() < 1e-14, "scale {scale}: {r}");
        }
    }

    #[test]
    fn pearson_is_shift_invariant_at_large_offsets() {
        let x = [1.0, 2.0, 4.0, 3.0, 5.0];
        let y = [2.0, 1.0, 4.0, 5.0, 3.0];
        let shifted: Vec<f64> = x.iter().map(|v| v + 1e9).collect();
        let a = pearson_unchecked(&x, &y);
        let b = pearson_unchecked(&shifted, &y);
        assert!((a - 0.5).abs() < 1e-12);
        assert!((a - b).abs() < 1e-12);
    }
}
