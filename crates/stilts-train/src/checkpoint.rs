//! Training checkpoints: model, optimizer state, schedule position and data-order/dropout
//! position, written atomically at each epoch end (and every K steps if asked).
//!
//! Data order is a pure function of `(seed, epoch)` and dropout masks of
//! `(seed, phase, step, micro-batch)`, so the RNG state is fully described by the position
//! stored in [`TrainState`]. A checkpoint is written to `checkpoint.tmp/`, synced, and renamed
//! over `checkpoint/` (the previous one is kept as `checkpoint.old/` during the swap), so a
//! process killed at any moment leaves a complete checkpoint behind.
//!
//! Each checkpoint ends with `manifest.json`: the size and SHA-256 of every other file, checked
//! when the checkpoint is loaded. A file that does not match (a torn copy, a bad disk, an edit)
//! is named in a warning and the checkpoint is not used: the previous one is, when a crash left
//! it (`checkpoint.old/`); otherwise the damaged directory is kept as `checkpoint.corrupt/` for
//! inspection and the run starts over, which reproduces the same results (training is a
//! function of the seed). Checkpoints written before manifests existed load unchecked.

use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use stilts_io::fs::{self, complete_dir, remove_replaced_dir, replace_dir, sibling};

use crate::error::{Result, TrainError};
use crate::model::store::{load_weights, read_meta, save_weights};
use crate::model::{
    Carried, META_FILE as MODEL_META_FILE, ModelMeta, TaskModel, load_model, save_model, skeleton,
};
use crate::results::{EpochRecord, EpochTime, LossPoint};

const STATE_FILE: &str = "state.json";
const META_FILE: &str = "meta.json";
const MODEL_FILE: &str = "model.bpk";
const OPTIM_FILE: &str = "optimizer.bpk";
/// Where a run's training is: everything besides weights and optimizer moments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Hash of the configuration and starting model.
    pub fingerprint: String,
    /// The phase's name.
    pub phase: String,
    /// The restart's seed.
    pub seed: u64,
    /// The epoch to run next (0-based); equals the number of finished epochs.
    pub next_epoch: usize,
    /// Optimizer steps of `next_epoch` already done (mid-epoch checkpoints).
    pub group_in_epoch: usize,
    /// Optimizer steps done: the schedule position.
    pub step: u64,
    /// Sum of the current epoch's training losses so far.
    pub epoch_loss_sum: f64,
    /// Sum of the epoch's auxiliary losses (absent in checkpoints written before it existed).
    #[serde(default)]
    pub epoch_aux_loss_sum: f64,
    /// Steps summed in `epoch_loss_sum`.
    pub epoch_loss_steps: u64,
    /// Training examples seen over the run.
    pub examples_seen: u64,
    /// Dev scores of the finished epochs.
    pub history: Vec<EpochRecord>,
    /// Wall time of the run so far, over every process that worked on it, in seconds.
    pub wall_s: f64,
    /// The part of `wall_s` spent in training steps.
    pub train_s: f64,
    /// The training-loss curve so far (absent in checkpoints written before it existed).
    #[serde(default)]
    pub loss_curve: Vec<LossPoint>,
    /// The open window of the curve: loss sum, auxiliary loss sum and steps since the last
    /// point.
    #[serde(default)]
    pub loss_window: (f64, f64, u64),
    /// Seconds of training steps in the current epoch so far.
    #[serde(default)]
    pub epoch_train_s: f64,
    /// Training examples of the current epoch so far.
    #[serde(default)]
    pub epoch_examples: u64,
    /// The finished epochs' times.
    #[serde(default)]
    pub epoch_times: Vec<EpochTime>,
}

impl TrainState {
    /// The state of a run that has not trained yet.
    pub fn new(fingerprint: String, phase: &str, seed: u64) -> Self {
        TrainState {
            fingerprint,
            phase: phase.to_owned(),
            seed,
            next_epoch: 0,
            group_in_epoch: 0,
            step: 0,
            epoch_loss_sum: 0.0,
            epoch_aux_loss_sum: 0.0,
            epoch_loss_steps: 0,
            examples_seen: 0,
            history: Vec::new(),
            wall_s: 0.0,
            train_s: 0.0,
            loss_curve: Vec::new(),
            epoch_train_s: 0.0,
            epoch_examples: 0,
            epoch_times: Vec::new(),
            loss_window: (0.0, 0.0, 0),
        }
    }
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// The directory it was read from (`checkpoint/`, or `checkpoint.old/` after a crash).
    pub dir: PathBuf,
    /// The model as it was.
    pub model: TaskModel,
    /// Its heads and encoder description.
    pub meta: ModelMeta,
    /// Where training was.
    pub state: TrainState,
}

/// The checkpoint directory of a run.
pub fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoint")
}

/// Writes `bytes` to `path` atomically ([`stilts_io::fs::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(fs::write_atomic(path, bytes)?)
}

/// Saves a checkpoint atomically; `model` is the plain-device (`valid()`) model.
pub fn save(
    dir: &Path,
    model: &TaskModel,
    meta: &ModelMeta,
    optimizer: &ModuleOptimizer,
    state: &TrainState,
) -> Result<()> {
    replace_dir(dir, |tmp| -> Result<()> {
        save_weights(model, &tmp.join(MODEL_FILE))?;
        let optim_path = tmp.join(OPTIM_FILE);
        optimizer
            .save(&optim_path)
            .map_err(|e| TrainError::store("save the optimizer state to", &optim_path, e))?;
        for (file, value) in [
            (META_FILE, serde_json::to_vec_pretty(meta)),
            (STATE_FILE, serde_json::to_vec_pretty(state)),
        ] {
            let path = tmp.join(file);
            let bytes = value.map_err(|e| TrainError::json(&path, e))?;
            std::fs::write(&path, bytes).map_err(|e| TrainError::io(&path, e))?;
        }
        Ok(fs::write_manifest(
            tmp,
            &[MODEL_FILE, OPTIM_FILE, META_FILE, STATE_FILE],
        )?)
    })?;
    tracing::debug!(
        step = state.step,
        epoch = state.next_epoch,
        "checkpoint written to {}",
        dir.display()
    );
    Ok(())
}

/// Where a `keep = "best_epoch"` run holds its best epoch's model until the run ends.
pub fn best_epoch_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("best-epoch")
}

/// Saves the best epoch's model (written before the checkpoint that records the epoch, so a
/// resumed run that redoes the epoch writes it again).
pub fn save_best_epoch(run_dir: &Path, carried: &Carried) -> Result<()> {
    replace_dir(&best_epoch_dir(run_dir), |tmp| {
        save_model(carried, tmp, None)
    })
}

/// Loads the model saved by [`save_best_epoch`].
pub fn load_best_epoch(run_dir: &Path, device: &Device) -> Result<Carried> {
    let dir = best_epoch_dir(run_dir);
    let found = complete_dir(&dir, MODEL_META_FILE).ok_or_else(|| TrainError::Checkpoint {
        path: dir.clone(),
        message: "the best epoch's model is missing".into(),
    })?;
    load_model(&found, device)
}

/// Loads the checkpoint in `dir`, or the previous one (`checkpoint.old/`) when a crash
/// interrupted the swap or `dir` fails its manifest; `None` when there is none. A damaged
/// checkpoint with no previous one is moved to `checkpoint.corrupt/` and `None` returned: the
/// run starts over. The model is on `device` (plain).
pub fn load(dir: &Path, device: &Device) -> Result<Option<Checkpoint>> {
    let old = sibling(dir, ".old");
    let mut damaged = Vec::new();
    for candidate in [dir.to_path_buf(), old] {
        if !candidate.join(STATE_FILE).exists() {
            continue;
        }
        match fs::verify_manifest(&candidate) {
            Ok(()) => {
                if !damaged.is_empty() {
                    tracing::warn!(
                        "resuming from the previous checkpoint, {}",
                        candidate.display()
                    );
                }
                return read_checkpoint(&candidate, device).map(Some);
            }
            Err(why) => {
                tracing::warn!(
                    "checkpoint {} is damaged and not used: {why}",
                    candidate.display()
                );
                damaged.push(candidate);
            }
        }
    }
    if let Some(first) = damaged.first() {
        let quarantine = sibling(dir, ".corrupt");
        let _ = std::fs::remove_dir_all(&quarantine);
        std::fs::rename(first, &quarantine).map_err(|e| TrainError::io(first, e))?;
        for other in &damaged[1..] {
            std::fs::remove_dir_all(other).map_err(|e| TrainError::io(other, e))?;
        }
        tracing::warn!(
            "no usable checkpoint: the run starts over (the damaged one is kept as {})",
            quarantine.display()
        );
    }
    Ok(None)
}

fn read_checkpoint(dir: &Path, device: &Device) -> Result<Checkpoint> {
    let read = |file: &str| -> Result<Vec<u8>> {
        let path = dir.join(file);
        std::fs::read(&path).map_err(|e| TrainError::io(&path, e))
    };
    let (meta, layout) = read_meta(&dir.join(META_FILE))?;
    let state: TrainState = serde_json::from_slice(&read(STATE_FILE)?)
        .map_err(|e| TrainError::json(dir.join(STATE_FILE), e))?;
    let mut model = skeleton(&meta, device).map_err(|message| TrainError::Checkpoint {
        path: dir.join(META_FILE),
        message,
    })?;
    load_weights(&mut model, &dir.join(MODEL_FILE), layout)?;
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        model,
        meta,
        state,
    })
}

/// Loads the optimizer state saved next to a checkpoint loaded by [`load`] (pass its
/// [`Checkpoint::dir`]; a run's checkpoint directory also works when it is complete).
pub fn load_optimizer(dir: &Path, optimizer: ModuleOptimizer) -> Result<ModuleOptimizer> {
    let dir = complete_dir(dir, STATE_FILE).unwrap_or_else(|| sibling(dir, ".old"));
    let path = dir.join(OPTIM_FILE);
    optimizer
        .load(&path)
        .map_err(|e| TrainError::store("load the optimizer state from", &path, e))
}

/// Removes a run's checkpoint, or its best-epoch model (after its final outputs are written).
pub fn remove(dir: &Path) -> Result<()> {
    Ok(remove_replaced_dir(dir)?)
}
