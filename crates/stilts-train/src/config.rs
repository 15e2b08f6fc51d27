//! Experiment configuration: the TOML file a user writes ([`ExperimentFile`], plain serde
//! structs that reject unknown keys) and the resolved, validated form the engine runs
//! ([`Experiment`]). Strings become enums here; every error names the file and the key.
//!
//! ```toml
//! name = "mnli_rte"
//! output_dir = "runs/mnli_rte"
//! seed = 1
//!
//! [model]
//! pretrained = "${STILTS_MINILM_DIR}"     # a Hugging Face BERT directory or hub id
//!
//! [recipe]                                 # defaults for every phase (the BERT recipe)
//! max_seq_len = 128
//!
//! [[phases]]
//! name = "mnli"
//! tasks = ["configs/tasks/mnli_subset.toml"]
//!
//! [[phases]]
//! name = "rte"
//! tasks = ["RTE"]
//! head = "new"                             # new | reuse | map
//! restarts = 3
//! recipe = { epochs = 3 }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stilts_data::custom::{TaskRef, load_task_file};
use stilts_data::env::expand_env;
use stilts_data::{BuiltinTask, SplitRole, Task};
use stilts_io::progress::LogProgress;
use stilts_models::device::{DeviceChoice, DeviceError};
use stilts_models::hub::{self, HubOptions, ModelName};

use crate::error::{Result, TrainError};

/// Environment variable naming the GLUE data root (holding `RTE/`, `MRPC/`, ...).
pub const GLUE_DIR_ENV: &str = "GLUE_DIR";
/// Environment variable naming the root of custom task data (`mnli/`, `snli/`, ...).
pub const EXTRA_DIR_ENV: &str = "STILTS_EXTRA_DIR";

/// The experiment TOML document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    /// Name of the experiment; defaults to the file stem.
    pub name: Option<String>,
    /// Where runs, checkpoints and results go; defaults to `runs/<name>`.
    pub output_dir: Option<String>,
    /// `cpu` (burn's flex backend).
    pub device: Option<String>,
    /// Base seed; restart `i` of a phase uses `seed + i` unless the phase lists `seeds`.
    pub seed: Option<u64>,
    /// The starting model.
    pub model: ModelFile,
    /// Data roots.
    #[serde(default)]
    pub data: DataFile,
    /// Recipe defaults for every phase.
    #[serde(default)]
    pub recipe: RecipeFile,
    /// The phases, run in order; each starts from the previous one's encoder.
    #[serde(default)]
    pub phases: Vec<PhaseFile>,
}

/// `[model]`: exactly one of `pretrained`, `random`, `checkpoint`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// A Hugging Face BERT directory (`config.json` + `model.safetensors`), or a hub id
    /// `org/name[@revision]` downloaded into the Hugging Face cache.
    pub pretrained: Option<String>,
    /// A freshly initialised BERT of this size (tests, ablations).
    pub random: Option<RandomBertFile>,
    /// A model saved by a previous stilts phase (`.../model`).
    pub checkpoint: Option<String>,
    /// With `checkpoint`: `encoder` (default) or `encoder_head`.
    pub load: Option<LoadMode>,
    /// `vocab.txt` or `tokenizer.json`; defaults to the one in the model directory.
    pub tokenizer: Option<String>,
}

/// Size of a randomly initialised BERT.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RandomBertFile {
    /// Width of hidden states.
    pub hidden_size: usize,
    /// Number of layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Longest sequence; default 512.
    pub max_position_embeddings: Option<usize>,
}

/// `[data]`: roots the task directories live under.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFile {
    /// Root of built-in (GLUE) tasks; default `$GLUE_DIR`.
    pub glue_dir: Option<String>,
    /// Root of custom (TOML) tasks; default `$STILTS_EXTRA_DIR`.
    pub extra_dir: Option<String>,
}

/// Training hyper-parameters; every field optional, phase values override experiment values,
/// which override [`Recipe::default`] (the BERT recipe).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecipeFile {
    pub batch_size: Option<usize>,
    pub eval_batch_size: Option<usize>,
    pub lr: Option<f64>,
    pub beta_1: Option<f32>,
    pub beta_2: Option<f32>,
    pub epsilon: Option<f32>,
    pub weight_decay: Option<f32>,
    pub warmup_proportion: Option<f64>,
    /// `adamw` (default) or `bert_adam` (the original BERT optimizer, for exact replications).
    pub optimizer: Option<OptimizerKind>,
    /// Gradient-norm clip (global for `adamw`, per parameter for `bert_adam`); 0 disables.
    pub max_grad_norm: Option<f64>,
    pub dropout: Option<f64>,
    pub max_seq_len: Option<usize>,
    pub epochs: Option<usize>,
    pub grad_accum_steps: Option<usize>,
    pub bucket_by_length: Option<bool>,
    /// Also checkpoint every this many optimizer steps (0: only at epoch ends).
    pub checkpoint_every_steps: Option<u64>,
    /// The model a run ends with: `last` (default, the paper's) or `best_epoch` (the epoch
    /// with the best dev score, as jiant keeps it).
    pub keep: Option<Keep>,
}

/// Which epoch's model a run ends with (and reports, predicts with and passes on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// The model after the last epoch.
    #[default]
    Last,
    /// The model after the epoch with the best dev score (the first of equal scores).
    BestEpoch,
}

impl Keep {
    fn is_last(&self) -> bool {
        *self == Keep::Last
    }
}

/// One `[[phases]]` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseFile {
    /// Name (directory name of its runs); defaults to the task names joined by `+`.
    pub name: Option<String>,
    /// Tasks: built-in names (`RTE`) or custom task files (`configs/tasks/x.toml`); several
    /// tasks make a multitask phase.
    pub tasks: Vec<TaskEntryFile>,
    /// Multitask only: `proportional` (default), `uniform` or `temperature`.
    pub sampler: Option<SamplerKind>,
    /// With `sampler = "temperature"`: T in p_i ∝ n_i^(1/T).
    pub temperature: Option<f64>,
    /// `new` (default), `reuse` or `map`.
    pub head: Option<HeadKind>,
    /// With `head = "map"`: new label -> label of the previous head.
    pub label_map: Option<BTreeMap<String, String>>,
    /// Number of restarts (seeds `seed`, `seed+1`, ...); the best on dev continues.
    pub restarts: Option<usize>,
    /// Explicit seeds instead of `restarts`.
    pub seeds: Option<Vec<u64>>,
    /// Write test-split predictions.
    pub predict_test: Option<bool>,
    /// Multitask: rank restarts, and judge degenerate runs, on this task's dev score (the
    /// paper's `{MNLI,RTE}` is read on RTE) instead of the mean over the phase's tasks.
    pub select_on: Option<String>,
    /// Recipe overrides for this phase.
    #[serde(default)]
    pub recipe: RecipeFile,
}

/// A task of a phase: a name/path, or a table with options.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum TaskEntryFile {
    /// A built-in name or a `.toml` task file.
    Name(String),
    /// `{ task = "RTE", train_examples = 1000 }`.
    Table(TaskTableFile),
}

/// A task with options.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskTableFile {
    /// A built-in name or a `.toml` task file.
    pub task: String,
    /// Directory holding the task's directory (overrides `[data]`).
    pub data_root: Option<String>,
    /// Downsample the training set to this many examples (seeded by the restart seed).
    pub train_examples: Option<usize>,
    /// The dev split to evaluate (default: the task's first dev split).
    pub dev_split: Option<String>,
}

/// How a phase's model is loaded from a stilts checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadMode {
    /// The encoder only; heads are created by the first phase's head policy.
    Encoder,
    /// Encoder and heads (the first phase may `reuse` or `map` them).
    EncoderHead,
}

/// Multitask example sampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// p_i ∝ n_i (the paper).
    Proportional,
    /// p_i = 1/T.
    Uniform,
    /// p_i ∝ n_i^(1/T).
    Temperature,
}

/// Head policy keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    New,
    Reuse,
    Map,
}

/// The optimizer of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// `torch.optim.AdamW` as in Hugging Face's recipe: bias correction, clipping on the global
    /// gradient norm.
    #[serde(rename = "adamw")]
    AdamW,
    /// `pytorch_pretrained_bert`'s BertAdam: no bias correction, clipping per parameter.
    BertAdam,
}

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
    Proportional,
    Uniform,
    Temperature { temperature: f64 },
}

/// Resolved head policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HeadPolicy {
    /// Fresh heads.
    New,
    /// The previous head, only if its labels match by name and order.
    Reuse,
    /// New label -> previous label; the head's rows are copied.
    Map { label_map: BTreeMap<String, String> },
}

/// The BERT fine-tuning recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub lr: f64,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
    pub warmup_proportion: f64,
    pub optimizer: OptimizerKind,
    /// `None`: no clipping.
    pub max_grad_norm: Option<f64>,
    /// `None`: the model's own dropout.
    pub dropout: Option<f64>,
    pub max_seq_len: usize,
    pub epochs: usize,
    pub grad_accum_steps: usize,
    pub bucket_by_length: bool,
    /// `None`: checkpoints at epoch ends only.
    pub checkpoint_every_steps: Option<u64>,
    /// Left out of the JSON when `last`, so that runs configured before it existed keep their
    /// fingerprints (and resume).
    #[serde(default, skip_serializing_if = "Keep::is_last")]
    pub keep: Keep,
}

impl Default for Recipe {
    /// Devlin et al.'s recipe: batch 24, lr 2e-5, AdamW (0.9, 0.999, 1e-6), weight decay 0.01,
    /// 10% linear warmup then linear decay, clip 1.0, dropout 0.1, 128 tokens, 3 epochs.
    fn default() -> Self {
        Recipe {
            batch_size: 24,
            eval_batch_size: 64,
            lr: 2e-5,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-6,
            weight_decay: 0.01,
            warmup_proportion: 0.1,
            optimizer: OptimizerKind::AdamW,
            max_grad_norm: Some(1.0),
            dropout: Some(0.1),
            max_seq_len: 128,
            epochs: 3,
            grad_accum_steps: 1,
            bucket_by_length: false,
            checkpoint_every_steps: None,
            keep: Keep::Last,
        }
    }
}

impl Recipe {
    /// Applies the values set in `file`.
    pub fn merged(&self, file: &RecipeFile) -> Recipe {
        let mut r = self.clone();
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = file.$f { r.$f = v; } )* };
        }
        set!(
            batch_size,
            eval_batch_size,
            lr,
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            warmup_proportion,
            optimizer,
            max_seq_len,
            epochs,
            grad_accum_steps,
            bucket_by_length,
            keep
        );
        if let Some(v) = file.max_grad_norm {
            r.max_grad_norm = (v > 0.0).then_some(v);
        }
        if let Some(v) = file.dropout {
            r.dropout = Some(v);
        }
        if let Some(v) = file.checkpoint_every_steps {
            r.checkpoint_every_steps = (v > 0).then_some(v);
        }
        r
    }

    fn validate(&self, key: &str) -> std::result::Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((format!("{key}.{k}"), m));
        if self.batch_size == 0 {
            return err("batch_size", "must be at least 1".into());
        }
        if self.eval_batch_size == 0 {
            return err("eval_batch_size", "must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return err("lr", format!("must be positive, got {}", self.lr));
        }
        for (k, b) in [("beta_1", self.beta_1), ("beta_2", self.beta_2)] {
            if !(0.0..1.0).contains(&b) {
                return err(k, format!("must be in [0, 1), got {b}"));
            }
        }
        if self.epsilon.is_nan() || self.epsilon <= 0.0 {
            return err("epsilon", "must be positive".into());
        }
        if self.weight_decay.is_nan() || self.weight_decay < 0.0 {
            return err("weight_decay", "must be non-negative".into());
        }
        if !(0.0..=1.0).contains(&self.warmup_proportion) {
            return err(
                "warmup_proportion",
                format!("must be in [0, 1], got {}", self.warmup_proportion),
            );
        }
        if let Some(n) = self.max_grad_norm
            && !n.is_finite()
        {
            return err("max_grad_norm", "must be finite".into());
        }
        if let Some(p) = self.dropout
            && !(0.0..1.0).contains(&p)
        {
            return err("dropout", format!("must be in [0, 1), got {p}"));
        }
        if self.max_seq_len < 3 {
            return err(
                "max_seq_len",
                "must be at least 3 ([CLS] [SEP] [SEP])".into(),
            );
        }
        if self.epochs == 0 {
            return err("epochs", "must be at least 1".into());
        }
        if self.grad_accum_steps == 0 {
            return err("grad_accum_steps", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Where the starting model comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ModelSource {
    /// A Hugging Face BERT directory.
    Pretrained { dir: PathBuf },
    /// A fresh BERT of this size (vocabulary from the tokenizer).
    Random { size: RandomBertFile },
    /// A stilts model directory.
    Checkpoint { dir: PathBuf, load: LoadMode },
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
}

/// A resolved phase.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub tasks: Vec<TaskSpec>,
    pub sampler: Sampler,
    pub head: HeadPolicy,
    pub seeds: Vec<u64>,
    pub recipe: Recipe,
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
    pub name: String,
    /// The file it came from (`<flags>` for `stilts train`).
    pub source: PathBuf,
    pub output_dir: PathBuf,
    pub device: DeviceKind,
    pub seed: u64,
    pub model: ModelSource,
    pub tokenizer: PathBuf,
    pub phases: Vec<Phase>,
}

impl Experiment {
    /// Reads and validates an experiment file.
    pub fn load(path: impl AsRef<Path>) -> Result<Experiment> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let file: ExperimentFile = toml::from_str(&text).map_err(|e| TrainError::Toml {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "experiment".into());
        file.resolve(path, &stem)
    }
}

/// Expands `${VAR}` in a path string.
fn expand(origin: &Path, key: &str, value: &str) -> Result<PathBuf> {
    expand_env(value)
        .map(PathBuf::from)
        .map_err(|e| TrainError::config(origin, key, e.to_string()))
}

/// `model.pretrained`: a directory, or else a hub id `org/name[@revision]` fetched into the
/// Hugging Face cache as `huggingface_hub` does (`HF_ENDPOINT`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`,
/// `HF_TOKEN`); files already cached are not fetched again.
fn pretrained_dir(origin: &Path, value: &str) -> Result<PathBuf> {
    let dir = expand(origin, "model.pretrained", value)?;
    if dir.is_dir() {
        return Ok(dir);
    }
    let name = dir.to_string_lossy().into_owned();
    let Ok(ModelName::Hub(model)) = ModelName::parse(&name) else {
        return Err(TrainError::config(
            origin,
            "model.pretrained",
            format!("{name} is neither a model directory nor a hub id (org/name[@revision])"),
        ));
    };
    let hub_error = |source| TrainError::Hub {
        path: origin.to_path_buf(),
        model: name.clone(),
        source: Box::new(source),
    };
    let options = HubOptions::from_env().map_err(hub_error)?;
    let snapshot = hub::download_model(&model, &options, &LogProgress).map_err(hub_error)?;
    tracing::info!("{name} is {}", snapshot.display());
    Ok(snapshot)
}

fn must_exist(origin: &Path, key: &str, path: &Path, what: &str) -> Result<()> {
    if path.exists() {
        Ok(())
    } else {
        Err(TrainError::config(
            origin,
            key,
            format!("{what} {} does not exist", path.display()),
        ))
    }
}

impl ExperimentFile {
    /// Validates and resolves; `origin` names the file in errors, `default_name` is used when
    /// the file has no `name`. Checks files exist before anything is trained.
    pub fn resolve(&self, origin: &Path, default_name: &str) -> Result<Experiment> {
        let name = self.name.clone().unwrap_or_else(|| default_name.to_owned());
        let output_dir = match &self.output_dir {
            Some(d) => expand(origin, "output_dir", d)?,
            None => PathBuf::from("runs").join(&name),
        };
        let device = match &self.device {
            None => DeviceKind::default(),
            Some(d) => DeviceKind::parse(d).map_err(|m| TrainError::config(origin, "device", m))?,
        };
        let seed = self.seed.unwrap_or(1);
        let (model, tokenizer) = self.resolve_model(origin)?;
        let base = Recipe::default().merged(&self.recipe);
        base.validate("recipe")
            .map_err(|(k, m)| TrainError::config(origin, k, m))?;
        if self.phases.is_empty() {
            return Err(TrainError::config(origin, "phases", "no phases"));
        }
        let roots = (
            self.data
                .glue_dir
                .as_deref()
                .map(|d| expand(origin, "data.glue_dir", d))
                .transpose()?
                .or_else(|| std::env::var_os(GLUE_DIR_ENV).map(PathBuf::from)),
            self.data
                .extra_dir
                .as_deref()
                .map(|d| expand(origin, "data.extra_dir", d))
                .transpose()?
                .or_else(|| std::env::var_os(EXTRA_DIR_ENV).map(PathBuf::from)),
        );
        let mut phases = Vec::new();
        let mut names = BTreeSet::new();
        for (i, p) in self.phases.iter().enumerate() {
            let phase = p.resolve(origin, i, &base, seed, &roots)?;
            if !names.insert(phase.name.clone()) {
                return Err(TrainError::config(
                    origin,
                    format!("phases[{i}].name"),
                    format!("phase name `{}` is used twice", phase.name),
                ));
            }
            let first_without_head = i == 0
                && !matches!(
                    model,
                    ModelSource::Checkpoint {
                        load: LoadMode::EncoderHead,
                        ..
                    }
                );
            if first_without_head && phase.head != HeadPolicy::New {
                return Err(TrainError::config(
                    origin,
                    format!("phases[{i}].head"),
                    "the first phase has no previous head to reuse or map (load a checkpoint with `load = \"encoder_head\"`)",
                ));
            }
            phases.push(phase);
        }
        Ok(Experiment {
            name,
            source: origin.to_path_buf(),
            output_dir,
            device,
            seed,
            model,
            tokenizer,
            phases,
        })
    }

    fn resolve_model(&self, origin: &Path) -> Result<(ModelSource, PathBuf)> {
        let m = &self.model;
        let set = [
            m.pretrained.is_some(),
            m.random.is_some(),
            m.checkpoint.is_some(),
        ];
        if set.iter().filter(|s| **s).count() != 1 {
            return Err(TrainError::config(
                origin,
                "model",
                "give exactly one of `pretrained`, `random`, `checkpoint`",
            ));
        }
        if m.load.is_some() && m.checkpoint.is_none() {
            return Err(TrainError::config(
                origin,
                "model.load",
                "`load` applies to `checkpoint` only",
            ));
        }
        let tokenizer = m
            .tokenizer
            .as_deref()
            .map(|t| expand(origin, "model.tokenizer", t))
            .transpose()?;
        let (source, model_dir) = if let Some(name) = &m.pretrained {
            let dir = pretrained_dir(origin, name)?;
            must_exist(
                origin,
                "model.pretrained",
                &dir.join("config.json"),
                "model config",
            )?;
            (ModelSource::Pretrained { dir: dir.clone() }, Some(dir))
        } else if let Some(dir) = &m.checkpoint {
            let dir = expand(origin, "model.checkpoint", dir)?;
            must_exist(
                origin,
                "model.checkpoint",
                &dir.join(crate::model::META_FILE),
                "stilts model",
            )?;
            let load = m.load.unwrap_or(LoadMode::Encoder);
            (
                ModelSource::Checkpoint {
                    dir: dir.clone(),
                    load,
                },
                Some(dir),
            )
        } else if let Some(size) = &m.random {
            if size.hidden_size == 0
                || size.num_attention_heads == 0
                || !size.hidden_size.is_multiple_of(size.num_attention_heads)
            {
                return Err(TrainError::config(
                    origin,
                    "model.random",
                    "hidden_size must be a positive multiple of num_attention_heads",
                ));
            }
            (ModelSource::Random { size: size.clone() }, None)
        } else {
            unreachable!("exactly one model source is set")
        };
        let tokenizer = match (tokenizer, model_dir) {
            (Some(t), _) => t,
            (None, Some(dir)) => {
                let json = dir.join("tokenizer.json");
                if json.exists() {
                    json
                } else {
                    dir.join("vocab.txt")
                }
            }
            (None, None) => {
                return Err(TrainError::config(
                    origin,
                    "model.tokenizer",
                    "a random model needs a `tokenizer` (vocab.txt or tokenizer.json)",
                ));
            }
        };
        must_exist(origin, "model.tokenizer", &tokenizer, "tokenizer")?;
        Ok((source, tokenizer))
    }
}

type Roots = (Option<PathBuf>, Option<PathBuf>);

impl PhaseFile {
    fn resolve(
        &self,
        origin: &Path,
        index: usize,
        base: &Recipe,
        seed: u64,
        roots: &Roots,
    ) -> Result<Phase> {
        let key = |k: &str| format!("phases[{index}].{k}");
        let err = |k: &str, m: String| TrainError::config(origin, key(k), m);
        if self.tasks.is_empty() {
            return Err(err("tasks", "no tasks".into()));
        }
        let mut tasks = Vec::new();
        for (t, entry) in self.tasks.iter().enumerate() {
            tasks.push(resolve_task(
                origin,
                &key(&format!("tasks[{t}]")),
                entry,
                roots,
            )?);
        }
        let mut seen = BTreeSet::new();
        for t in &tasks {
            if !seen.insert(t.task.name.clone()) {
                return Err(err(
                    "tasks",
                    format!("task {} is listed twice", t.task.name),
                ));
            }
        }
        let multi = tasks.len() > 1;
        let sampler = match (self.sampler, self.temperature) {
            (Some(_), _) if !multi => {
                return Err(err(
                    "sampler",
                    "a sampler applies to multitask phases only".into(),
                ));
            }
            (Some(SamplerKind::Temperature), Some(t)) if t.is_finite() && t > 0.0 => {
                Sampler::Temperature { temperature: t }
            }
            (Some(SamplerKind::Temperature), Some(t)) => {
                return Err(err("temperature", format!("must be positive, got {t}")));
            }
            (Some(SamplerKind::Temperature), None) => {
                return Err(err(
                    "temperature",
                    "`sampler = \"temperature\"` needs `temperature`".into(),
                ));
            }
            (_, Some(_)) => {
                return Err(err(
                    "temperature",
                    "applies to `sampler = \"temperature\"` only".into(),
                ));
            }
            (Some(SamplerKind::Uniform), None) => Sampler::Uniform,
            (Some(SamplerKind::Proportional) | None, None) => Sampler::Proportional,
        };
        let head = match (self.head.unwrap_or(HeadKind::New), &self.label_map) {
            (HeadKind::Map, Some(map)) => {
                if multi {
                    return Err(err(
                        "head",
                        "`map` applies to single-task phases only".into(),
                    ));
                }
                let task = &tasks[0].task;
                if task.target.is_regression() {
                    return Err(err(
                        "label_map",
                        format!(
                            "{} is a regression task; it has no labels to map",
                            task.name
                        ),
                    ));
                }
                for label in task.labels() {
                    if !map.contains_key(label) {
                        return Err(err(
                            "label_map",
                            format!("label `{label}` of {} is not mapped", task.name),
                        ));
                    }
                }
                for label in map.keys() {
                    if task.label_index(label).is_none() {
                        return Err(err(
                            "label_map",
                            format!(
                                "`{label}` is not a label of {} (labels: {})",
                                task.name,
                                task.labels().join(", ")
                            ),
                        ));
                    }
                }
                HeadPolicy::Map {
                    label_map: map.clone(),
                }
            }
            (HeadKind::Map, None) => {
                return Err(err(
                    "label_map",
                    "`head = \"map\"` needs `label_map`".into(),
                ));
            }
            (_, Some(_)) => {
                return Err(err("label_map", "applies to `head = \"map\"` only".into()));
            }
            (HeadKind::New, None) => HeadPolicy::New,
            (HeadKind::Reuse, None) => HeadPolicy::Reuse,
        };
        let seeds = match (&self.seeds, self.restarts) {
            (Some(_), Some(_)) => {
                return Err(err("seeds", "give `seeds` or `restarts`, not both".into()));
            }
            (Some(s), None) if s.is_empty() => return Err(err("seeds", "no seeds".into())),
            (Some(s), None) => {
                let unique: BTreeSet<_> = s.iter().collect();
                if unique.len() != s.len() {
                    return Err(err("seeds", "a seed is listed twice".into()));
                }
                s.clone()
            }
            (None, Some(0)) => return Err(err("restarts", "must be at least 1".into())),
            (None, n) => (0..n.unwrap_or(1) as u64).map(|i| seed + i).collect(),
        };
        let recipe = base.merged(&self.recipe);
        recipe
            .validate(&key("recipe"))
            .map_err(|(k, m)| TrainError::config(origin, k, m))?;
        let name = self.name.clone().unwrap_or_else(|| {
            tasks
                .iter()
                .map(|t| t.task.name.clone())
                .collect::<Vec<_>>()
                .join("+")
        });
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(err("name", format!("`{name}` cannot name a directory")));
        }
        let select_on = match &self.select_on {
            None => None,
            Some(wanted) => Some(
                tasks
                    .iter()
                    .position(|t| t.task.name == *wanted || t.reference == *wanted)
                    .ok_or_else(|| {
                        let names: Vec<&str> = tasks.iter().map(|t| t.task.name.as_str()).collect();
                        err(
                            "select_on",
                            format!(
                                "`{wanted}` is not a task of this phase (tasks: {})",
                                names.join(", ")
                            ),
                        )
                    })?,
            ),
        };
        Ok(Phase {
            name,
            tasks,
            sampler,
            head,
            seeds,
            recipe,
            predict_test: self.predict_test.unwrap_or(false),
            select_on,
        })
    }
}

fn resolve_task(
    origin: &Path,
    key: &str,
    entry: &TaskEntryFile,
    roots: &Roots,
) -> Result<TaskSpec> {
    let (reference, data_root, train_examples, dev_split) = match entry {
        TaskEntryFile::Name(n) => (n.clone(), None, None, None),
        TaskEntryFile::Table(t) => (
            t.task.clone(),
            t.data_root.clone(),
            t.train_examples,
            t.dev_split.clone(),
        ),
    };
    let task_ref = if reference.ends_with(".toml") {
        let path = expand(origin, key, &reference)?;
        must_exist(origin, key, &path, "task file")?;
        TaskRef::File(path)
    } else {
        TaskRef::Builtin(
            BuiltinTask::parse(&reference)
                .map_err(|e| TrainError::config(origin, key, e.to_string()))?,
        )
    };
    let task = match &task_ref {
        TaskRef::Builtin(b) => b.task(),
        TaskRef::File(p) => {
            load_task_file(p).map_err(|e| TrainError::config(origin, key, e.to_string()))?
        }
    };
    let root = match data_root {
        Some(r) => Some(expand(origin, &format!("{key}.data_root"), &r)?),
        None => match task_ref {
            TaskRef::Builtin(_) => roots.0.clone(),
            TaskRef::File(_) => roots.1.clone(),
        },
    };
    let Some(root) = root else {
        let (k, env) = match task_ref {
            TaskRef::Builtin(_) => ("data.glue_dir", GLUE_DIR_ENV),
            TaskRef::File(_) => ("data.extra_dir", EXTRA_DIR_ENV),
        };
        return Err(TrainError::config(
            origin,
            key,
            format!("no data root for {}: set `{k}` or ${env}", task.name),
        ));
    };
    let dir = task.dir_in(&root);
    let train_split = task.train_split().map(|s| s.name.clone()).ok_or_else(|| {
        TrainError::config(origin, key, format!("{} has no train split", task.name))
    })?;
    let dev_split = match dev_split {
        Some(d) => {
            if task.split(&d).is_none() {
                return Err(TrainError::config(
                    origin,
                    format!("{key}.dev_split"),
                    format!(
                        "{} has no split `{d}` (splits: {})",
                        task.name,
                        task.split_names().join(", ")
                    ),
                ));
            }
            d
        }
        None => task
            .dev_splits()
            .next()
            .map(|s| s.name.clone())
            .ok_or_else(|| {
                TrainError::config(origin, key, format!("{} has no dev split", task.name))
            })?,
    };
    for split in [&train_split, &dev_split] {
        match task.locate(&dir, split) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                return Err(TrainError::config(
                    origin,
                    key,
                    format!(
                        "{}: split `{split}` not found under {}",
                        task.name,
                        dir.display()
                    ),
                ));
            }
        }
    }
    if train_examples == Some(0) {
        return Err(TrainError::config(
            origin,
            format!("{key}.train_examples"),
            "must be at least 1",
        ));
    }
    let test_splits = task
        .splits
        .iter()
        .filter(|s| s.role == SplitRole::Test && matches!(task.locate(&dir, &s.name), Ok(Some(_))))
        .map(|s| s.name.clone())
        .collect();
    Ok(TaskSpec {
        reference,
        task,
        dir,
        train_examples,
        dev_split,
        train_split,
        test_splits,
    })
}
