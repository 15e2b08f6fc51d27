//! The runs an output directory holds, finished or not, as `stilts show` lists them: an
//! experiment's `output_dir` (`NN-<phase>/seed-<s>/`), one phase directory, or one run
//! directory. A finished run is read from its `result.json`; a run in progress from the
//! epochs its checkpoint (`checkpoint/state.json`) or its `val_history.json` record, whichever
//! holds more (a run stopped between writing the two has one epoch more in the first); a run
//! that has not finished an epoch is listed as started.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::SchemaError;
use crate::results::{EpochRecord, RunResult, first_best};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// `result.json` is written.
    Finished,
    /// Epochs are done but the run is not (or was stopped before it finished).
    InProgress,
    /// The directory exists; no epoch has finished.
    Started,
}

/// One run as `stilts show` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunStatus {
    /// The phase directory's name (`00-mnli`).
    pub phase: String,
    /// The restart seed.
    pub seed: u64,
    /// The run's directory.
    pub dir: PathBuf,
    /// Where it stands.
    pub state: RunState,
    /// Dev score per finished epoch, in order.
    pub dev_scores: Vec<f64>,
    /// Mean training loss per finished epoch.
    pub train_losses: Vec<f64>,
    /// The epoch (1-based) whose model the run keeps: `result.json`'s, or for a run in progress
    /// the best so far.
    pub kept_epoch: Option<usize>,
    /// The kept epoch's dev score.
    pub dev_score: Option<f64>,
    /// At or below the majority-class baseline (finished runs).
    pub degenerate: Option<bool>,
    /// Wall time (finished runs).
    pub wall_s: Option<f64>,
    /// Training throughput (finished runs).
    pub examples_per_s: Option<f64>,
}

fn seed_of(name: &str) -> Option<u64> {
    name.strip_prefix("seed-")?.parse().ok()
}

fn is_phase_dir(name: &str) -> bool {
    name.len() > 3
        && name.as_bytes()[..2].iter().all(u8::is_ascii_digit)
        && name.as_bytes()[2] == b'-'
}

fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, SchemaError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SchemaError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    Ok(out)
}

/// The epochs an unfinished run has recorded: the longer of its checkpoint's history and its
/// `val_history.json`.
fn epochs_so_far(dir: &Path) -> Result<Vec<EpochRecord>, SchemaError> {
    #[derive(serde::Deserialize)]
    struct CheckpointState {
        history: Vec<EpochRecord>,
    }
    let mut best = Vec::new();
    let state = dir.join("checkpoint").join("state.json");
    if state.is_file() {
        best = crate::read_json::<CheckpointState>(&state)?.history;
    }
    let history = dir.join("val_history.json");
    if history.is_file() {
        let h: Vec<EpochRecord> = crate::read_json(&history)?;
        if h.len() > best.len() {
            best = h;
        }
    }
    Ok(best)
}

/// One run directory's status.
pub fn run_status(phase: &str, seed: u64, dir: &Path) -> Result<RunStatus, SchemaError> {
    let result = dir.join("result.json");
    let (state, history, result) = if result.is_file() {
        let r = RunResult::read(&result)?;
        (RunState::Finished, r.history.clone(), Some(r))
    } else {
        let history = epochs_so_far(dir)?;
        let state = if history.is_empty() {
            RunState::Started
        } else {
            RunState::InProgress
        };
        (state, history, None)
    };
    let dev_scores: Vec<f64> = history.iter().map(|e| e.dev_score).collect();
    let kept_epoch = match &result {
        Some(r) if r.kept_epoch > 0 => Some(r.kept_epoch),
        Some(_) => (!dev_scores.is_empty()).then_some(dev_scores.len()),
        None => first_best(dev_scores.iter().copied()).map(|i| i + 1),
    };
    Ok(RunStatus {
        phase: phase.to_owned(),
        seed,
        dir: dir.to_path_buf(),
        state,
        train_losses: history.iter().map(|e| e.train_loss).collect(),
        dev_score: kept_epoch.and_then(|k| dev_scores.get(k - 1).copied()),
        dev_scores,
        kept_epoch,
        degenerate: result.as_ref().map(|r| r.degenerate),
        wall_s: result.as_ref().map(|r| r.wall_s),
        examples_per_s: result.as_ref().map(|r| r.examples_per_s),
    })
}

/// Every run under `dir`, in phase then seed order: `dir` may be an experiment's output
/// directory, a phase directory (`NN-<phase>`) or a run directory (`seed-<s>`). A directory
/// holding none of them is an empty list.
pub fn collect_runs(dir: &Path) -> Result<Vec<RunStatus>, SchemaError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(seed) = seed_of(&name) {
        let phase = dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![run_status(&phase, seed, dir)?]);
    }
    let phases: Vec<(String, PathBuf)> = if is_phase_dir(&name) {
        vec![(name, dir.to_path_buf())]
    } else {
        subdirs(dir)?
            .into_iter()
            .filter(|(n, _)| is_phase_dir(n))
            .collect()
    };
    let mut runs = Vec::new();
    for (phase, path) in phases {
        let mut seeds: Vec<(u64, PathBuf)> = subdirs(&path)?
            .into_iter()
            .filter_map(|(n, p)| seed_of(&n).map(|s| (s, p)))
            .collect();
        seeds.sort();
        for (seed, run) in seeds {
            runs.push(run_status(&phase, seed, &run)?);
        }
    }
    Ok(runs)
}
