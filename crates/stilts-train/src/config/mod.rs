//! Experiment configuration. The TOML a user writes is `stilts-schema`'s
//! [`ExperimentFile`] (re-exported here); this module holds its resolved, validated form, the
//! one the engine runs ([`Experiment`]): strings have become enums, paths are expanded and
//! checked, every default is filled in.
//!
//! - [`recipe`]: the training recipe, its per-encoder presets and range checks;
//! - [`peft`]: the recipe's `lora` and `adapter` tables as module configurations;
//! - [`source`]: where the starting model comes from (a directory, a hub id, a random encoder,
//!   a saved stilts model), which encoder family it is, and fetching hub models;
//! - [`tasks`]: the tasks of a phase, their data roots and splits;
//! - [`resolve`]: the file to [`Experiment`], with an error naming the file and the key.

pub mod peft;
pub mod recipe;
pub mod resolve;
pub mod source;
pub mod tasks;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stilts_data::Task;
use stilts_models::EncoderKind;
use stilts_models::device::{DeviceChoice, DeviceError};
pub use stilts_schema::experiment::{
    DataFile, ExperimentFile, HeadKind, Keep, LoadMode, ModelFile, OptimizerKind, PairMode,
    PhaseFile, RecipeFile, SamplerKind, ScheduleKind, TaskEntryFile, TaskTableFile, TrainPrecision,
};

pub use recipe::Recipe;
pub use source::{ModelSource, RandomBertFile, RandomElmoFile, RandomGptFile, RandomSize};
pub use stilts_schema::overrides::{Override, apply_overrides, read_experiment};

use crate::error::{Result, TrainError};

/// Environment variable naming the GLUE data root (holding `RTE/`, `MRPC/`, ...).
pub const GLUE_DIR_ENV: &str = "GLUE_DIR";
/// Environment variable naming the root of custom task data (`mnli/`, `snli/`, ...).
pub const EXTRA_DIR_ENV: &str = "STILTS_EXTRA_DIR";

/// Compute device: `cpu` (burn-flex, the default), or with the matching cargo feature of
/// `stilts-models`, `wgpu`, `wgpu:N`, `wgpu:cpu`, `cuda:N`, `tch-cpu`, `tch-cuda:N`. Written to
/// `experiment.json` as that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceKind(pub DeviceChoice);

impl DeviceKind {
    /// Parses a device string; an unknown name or a device whose cargo feature was not compiled
    /// in is an error message.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let choice: DeviceChoice = s.parse().map_err(|e: DeviceError| e.to_string())?;
        if !choice.is_compiled() {
            return Err(format!(
                "device `{choice}` needs stilts built with `--features stilts-models/{}`",
                choice.feature().unwrap_or("?")
            ));
        }
        Ok(DeviceKind(choice))
    }

    /// The burn device (plain; training uses `.autodiff()` of it).
    pub fn device(self) -> Result<burn::tensor::Device> {
        self.0.device().map_err(|source| TrainError::Device {
            device: self.0.to_string(),
            source: Box::new(source),
        })
    }
}

impl Serialize for DeviceKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

/// Resolved sampler.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Sampler {
    /// p_i ∝ n_i (the paper).
    Proportional,
    /// p_i = 1/T.
    Uniform,
    /// p_i ∝ n_i^(1/T).
    Temperature {
        /// T.
        temperature: f64,
    },
}

/// Resolved head policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HeadPolicy {
    /// Fresh heads.
    New,
    /// The previous head, only if its labels (and pair mode) match.
    Reuse,
    /// New label -> previous label; the head's rows are copied.
    Map {
        /// New label -> label of the previous head.
        label_map: BTreeMap<String, String>,
    },
}

/// A resolved task of a phase.
#[derive(Debug, Clone, Serialize)]
pub struct TaskSpec {
    /// What the user wrote (`RTE`, `configs/tasks/x.toml`).
    pub reference: String,
    /// The task.
    pub task: Task,
    /// The task's own directory (`$GLUE_DIR/RTE`).
    pub dir: PathBuf,
    /// Downsampling of the train split.
    pub train_examples: Option<usize>,
    /// The dev split evaluated after each epoch.
    pub dev_split: String,
    /// The train split.
    pub train_split: String,
    /// The test splits present on disk (MNLI has two: matched and mismatched).
    pub test_splits: Vec<String>,
    /// How a pair reaches the encoder. Left out of the JSON when `joint` (fingerprints of
    /// earlier runs stay valid).
    #[serde(skip_serializing_if = "PairMode::is_joint")]
    pub pair: PairMode,
    /// The data root a built-in task found in no root is downloaded into before training (the
    /// stilts cache; see [`Experiment::fetch_data`]); `None` once the task is on disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_root: Option<PathBuf>,
}

impl TaskSpec {
    /// Downloads the task into [`TaskSpec::download_root`] (the stilts cache) when no data root
    /// held it, and fills in its test splits; a no-op for a task on disk.
    pub fn fetch(&mut self, progress: &dyn stilts_io::Progress) -> Result<()> {
        tasks::fetch(self, progress)
    }
}

/// A resolved phase.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// Directory name of its runs.
    pub name: String,
    /// Its tasks (several: a multitask phase).
    pub tasks: Vec<TaskSpec>,
    /// Multitask batch sampling.
    pub sampler: Sampler,
    /// How heads come from the previous phase.
    pub head: HeadPolicy,
    /// One run per seed.
    pub seeds: Vec<u64>,
    /// Hyper-parameters.
    pub recipe: Recipe,
    /// Whether runs predict the test splits.
    pub predict_test: bool,
    /// The task (index into `tasks`) restarts are ranked on; `None`: the mean over tasks.
    /// Left out of the JSON when `None` (fingerprints of earlier runs stay valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select_on: Option<usize>,
}

impl Phase {
    /// The score restarts are ranked on, from per-task scores in task order: the
    /// `select_on` task's, else the mean.
    pub fn selection_score(&self, scores: &[f64]) -> f64 {
        match self.select_on {
            Some(t) => scores.get(t).copied().unwrap_or(f64::NAN),
            None => scores.iter().sum::<f64>() / scores.len() as f64,
        }
    }
}

/// A resolved, validated experiment.
#[derive(Debug, Clone, Serialize)]
pub struct Experiment {
    /// Its name.
    pub name: String,
    /// The file it came from (`<flags>` for `stilts train`).
    pub source: PathBuf,
    /// Where runs, checkpoints and results go.
    pub output_dir: PathBuf,
    /// Where it trains.
    pub device: DeviceKind,
    /// Data-parallel training over these devices (`devices`; the first is `device`); empty for
    /// one device. Left out of a run's fingerprint: a run may resume on other hardware.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<DeviceKind>,
    /// Base seed.
    pub seed: u64,
    /// The encoder family.
    pub encoder: EncoderKind,
    /// The starting model.
    pub model: ModelSource,
    /// The tokenizer's file (a `tokenizer.json` or `vocab.txt`), or the model directory holding
    /// it; `None` until a hub model is fetched.
    pub tokenizer: Option<PathBuf>,
    /// The phases, in order.
    pub phases: Vec<Phase>,
}

impl Experiment {
    /// Reads and validates an experiment file.
    pub fn load(path: impl AsRef<Path>) -> Result<Experiment> {
        let path = path.as_ref();
        Experiment::load_with(path, &[])
    }

    /// Reads an experiment file with `--set key.path=value` overrides applied (see
    /// [`stilts_schema::overrides`]), and validates it.
    pub fn load_with(path: impl AsRef<Path>, overrides: &[Override]) -> Result<Experiment> {
        let path = path.as_ref();
        let file = read_experiment(path, overrides)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "experiment".into());
        Experiment::from_file(&file, path, &stem)
    }

    /// Validates and resolves a parsed file; `origin` names the file in errors, `default_name`
    /// is used when the file has no `name`. Checks files exist before anything is trained; a
    /// hub model and missing built-in tasks are not downloaded here (see
    /// [`Experiment::fetch_model`] and [`Experiment::fetch_data`]).
    pub fn from_file(
        file: &ExperimentFile,
        origin: &Path,
        default_name: &str,
    ) -> Result<Experiment> {
        resolve::resolve(file, origin, default_name)
    }

    /// Downloads a hub model into the Hugging Face cache (once; later calls find it there) and
    /// points [`Experiment::model`] and [`Experiment::tokenizer`] at the snapshot. A no-op for
    /// local models.
    pub fn fetch_model(&mut self, progress: &dyn stilts_io::Progress) -> Result<()> {
        source::fetch(self, progress)
    }

    /// Downloads every built-in task that no data root holds into the stilts cache (once; later
    /// runs find it there) and fills in its test splits. A no-op when every task is on disk.
    pub fn fetch_data(&mut self, progress: &dyn stilts_io::Progress) -> Result<()> {
        for phase in &mut self.phases {
            for spec in &mut phase.tasks {
                spec.fetch(progress)?;
            }
        }
        Ok(())
    }
}
