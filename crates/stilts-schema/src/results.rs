//! What a run writes: `result.json` for each restart of a phase ([`RunResult`]), `summary.json`
//! for each phase and for the experiment ([`PhaseSummary`], [`ExperimentSummary`]). The grid
//! registry reads these same types.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stilts_data::sample::SampleManifest;

use crate::{SchemaError, read_json};

/// Identity of a data file used by a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataFileInfo {
    /// Task name.
    pub task: String,
    /// Split name (`train`, `dev`, ...).
    pub split: String,
    /// The file read, as given (not canonicalized).
    pub path: String,
    /// SHA-256 (hex) of the file's decompressed bytes.
    pub sha256: String,
    /// Examples loaded from the file (before any downsampling).
    pub examples: usize,
}

impl DataFileInfo {
    /// The identity of a loaded split.
    pub fn of(d: &stilts_data::Dataset) -> Self {
        DataFileInfo {
            task: d.task.clone(),
            split: d.split.clone(),
            path: d.path.display().to_string(),
            sha256: d.sha256.clone(),
            examples: d.len(),
        }
    }
}

/// Dev scores of one task after one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScores {
    /// Task name.
    pub task: String,
    /// The dev split scored.
    pub split: String,
    /// Every metric of the task, by name.
    pub metrics: BTreeMap<String, f64>,
    /// The task's GLUE score (mean of its metrics).
    pub score: f64,
}

/// One point of a run's training-loss curve: the mean loss over the optimizer steps since the
/// previous point (a fixed number of steps, fewer at the end of an epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// The optimizer step the window ends at (1-based, counted over the run).
    pub step: u64,
    /// Mean training (task) loss over the window.
    pub loss: f64,
    /// Mean auxiliary loss over the window, when the run adds one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux_loss: Option<f64>,
}

/// One entry of the validation history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Optimizer steps done at the end of this epoch.
    pub step: u64,
    /// Mean training (task) loss over the epoch's steps.
    pub train_loss: f64,
    /// Mean auxiliary loss over the epoch's steps (GPT's language model), when the run adds
    /// one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux_loss: Option<f64>,
    /// Dev scores per task.
    pub dev: Vec<TaskScores>,
    /// What restarts are selected on: the mean of the tasks' scores, or the phase's
    /// `select_on` task's score.
    pub dev_score: f64,
}

/// Predictions on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitPredictions {
    /// Task name.
    pub task: String,
    /// Split name.
    pub split: String,
    /// Example ids, in the split's order; the other lists are aligned with them.
    pub ids: Vec<String>,
    /// Predicted label names (classification) or scores as strings (regression).
    pub predictions: Vec<String>,
    /// Raw head outputs, one row per example.
    pub logits: Vec<Vec<f32>>,
}

/// Everything recorded about a finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Name of the phase the run belongs to.
    pub phase: String,
    /// The restart's seed (governs sampling, data order and initialisation).
    pub seed: u64,
    /// Validation history, one record per epoch.
    pub history: Vec<EpochRecord>,
    /// The epoch (1-based) whose model the run ended with: the last, or with
    /// `keep = "best_epoch"` the best on dev.
    #[serde(default)]
    pub kept_epoch: usize,
    /// Dev score of the kept model.
    pub dev_score: f64,
    /// The majority-class (classification) or constant (regression) baseline's dev score,
    /// taken over the tasks as `dev_score` is (the mean, or the `select_on` task's).
    pub baseline: f64,
    /// Each task's baseline dev score, by task name (what a multitask run's tasks are judged
    /// against one by one).
    #[serde(default)]
    pub task_baselines: BTreeMap<String, f64>,
    /// Whether the dev score is at or below the baseline.
    pub degenerate: bool,
    /// The data files (paths, SHA-256, sizes).
    pub data: Vec<DataFileInfo>,
    /// Downsampling manifests (which examples).
    pub manifests: Vec<SampleManifest>,
    /// SHA-256 of the final weights' values (`stilts_train::model::store::weights_sha256`).
    pub weights_sha256: String,
    /// Predictions of the kept model on each task's dev split.
    pub dev_predictions: Vec<SplitPredictions>,
    /// Predictions on test splits (when the phase sets `predict_test`).
    pub test_predictions: Vec<SplitPredictions>,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Training examples processed, counting repeats over epochs.
    pub train_examples_seen: u64,
    /// Training and evaluation time, summed over resumptions.
    pub wall_s: f64,
    /// Training examples per second of training time.
    pub examples_per_s: f64,
    /// Whether the run was resumed from a checkpoint.
    pub resumed: bool,
    /// The training loss through the run, about 200 points ([`LossPoint`]); empty in results
    /// written before it was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_curve: Vec<LossPoint>,
    /// Each epoch's training time and rate (kept apart from `history`, which a resumed run
    /// reproduces exactly; times differ from run to run). Empty in results written before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epoch_times: Vec<EpochTime>,
    /// What the run trained and what it saved; `None` in results written before they were
    /// recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<RunSizes>,
}

/// Parameter counts and saved sizes of a run (`peft`'s `print_trainable_parameters`, and what
/// a user stores per task).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSizes {
    /// Parameter values the optimizer updated (the heads included).
    pub trained_params: u64,
    /// Parameter values of the whole model.
    pub total_params: u64,
    /// Bytes of the saved model directory (`model/`).
    pub model_bytes: u64,
    /// Bytes of the module directory (`adapter/`) a parameter-efficient run also writes: what
    /// a task costs beside the shared encoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter_bytes: Option<u64>,
}

impl RunSizes {
    /// What the run adds to storage: the module directory when there is one, else the model.
    pub fn saved_bytes(&self) -> u64 {
        self.adapter_bytes.unwrap_or(self.model_bytes)
    }
}

/// The time one epoch spent in training steps (evaluation excluded), summed over every process
/// that worked on it, and the training examples it processed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochTime {
    /// 1-based.
    pub epoch: usize,
    /// Seconds in training steps.
    pub train_s: f64,
    /// Training examples processed.
    pub examples: u64,
    /// `examples / train_s` (Hugging Face's Trainer calls it `train_samples_per_second`).
    pub examples_per_s: f64,
    /// CPU threads of the process that finished the epoch (`--threads`, `STILTS_THREADS`).
    pub threads: usize,
}

/// The index of the first highest score; NaN never wins. `None` when every score is NaN.
pub fn first_best(scores: impl IntoIterator<Item = f64>) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, s) in scores.into_iter().enumerate() {
        if !s.is_nan() && best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

/// A run is degenerate when its dev score is at or below the baseline's (or not a number).
pub fn is_degenerate(dev_score: f64, baseline: f64) -> bool {
    dev_score.is_nan() || dev_score <= baseline + 1e-12
}

/// The score of one restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedScore {
    /// The restart's seed.
    pub seed: u64,
    /// Dev score of the restart's kept model.
    pub dev_score: f64,
    /// Whether the dev score is at or below the baseline ([`is_degenerate`]).
    pub degenerate: bool,
    /// Training and evaluation time in seconds.
    pub wall_s: f64,
}

/// The restarts of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSummary {
    /// Phase name.
    pub phase: String,
    /// Every restart's score, in seed order.
    pub runs: Vec<SeedScore>,
    /// The seed whose model continues to the next phase.
    pub best_seed: u64,
    /// Dev score of `best_seed`.
    pub best_dev_score: f64,
    /// Mean dev score over the restarts.
    pub mean: f64,
    /// Sample standard deviation (0 for one run).
    pub std: f64,
    /// Lowest dev score over the restarts.
    pub min: f64,
    /// Highest dev score over the restarts.
    pub max: f64,
    /// Majority-class / constant baseline on dev.
    pub baseline: f64,
    /// Number of degenerate runs.
    pub degenerate: usize,
    /// Run directory of the best run.
    pub best_run_dir: PathBuf,
}

/// The whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentSummary {
    /// Experiment name.
    pub name: String,
    /// One summary per phase, in run order.
    pub phases: Vec<PhaseSummary>,
    /// Wall time of this invocation.
    pub wall_s: f64,
}

/// Picks the best run on dev (the first of equal scores; NaN never wins).
pub fn best_of(results: &[RunResult]) -> Option<usize> {
    first_best(results.iter().map(|r| r.dev_score)).or(if results.is_empty() {
        None
    } else {
        Some(0)
    })
}

impl RunResult {
    /// Reads a `result.json`.
    pub fn read(path: &Path) -> Result<RunResult, SchemaError> {
        read_json(path)
    }

    /// The record of the epoch whose model the run ended with (`kept_epoch`; the last epoch in
    /// results written before `keep` existed).
    pub fn kept_record(&self) -> Option<&EpochRecord> {
        match self.kept_epoch {
            0 => self.history.last(),
            k => self.history.get(k - 1),
        }
    }
}

impl ExperimentSummary {
    /// Reads a `summary.json`.
    pub fn read(path: &Path) -> Result<ExperimentSummary, SchemaError> {
        read_json(path)
    }
}
