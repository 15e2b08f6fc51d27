//! The experiment TOML a user writes (and `cargo xtask` generates): plain serde structs that
//! reject unknown keys. Every field is optional where the engine has a default; the defaults,
//! the checks and the resolution into what runs are `stilts-train`'s (`stilts run --check`
//! prints the resolved form).
//!
//! ```toml
//! name = "mnli_rte"
//! output_dir = "runs/mnli_rte"
//! seed = 1
//!
//! [model]
//! pretrained = "${STILTS_MINILM_DIR}"     # a Hugging Face directory or hub id
//!
//! [recipe]                                 # defaults for every phase (the encoder's preset)
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
//!
//! Optional fields that are unset are left out when a value is written back as TOML, so a file
//! generated from these types holds only the keys that were set.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
pub use stilts_data::encoding::PairMode;

use crate::SchemaError;
use crate::peft::{AdapterFile, FusionFile, LoraFile};

/// The experiment TOML document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    /// Name of the experiment; defaults to the file stem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where runs, checkpoints and results go; defaults to `runs/<name>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_dir: Option<String>,
    /// `cpu` (burn's flex backend).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Data-parallel training: one model replica per device (the first holds the model), each
    /// step's batches split between them and their gradients summed. Exclusive with `device`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<String>>,
    /// Base seed; restart `i` of a phase uses `seed + i` unless the phase lists `seeds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The starting model.
    pub model: ModelFile,
    /// Data roots.
    #[serde(default, skip_serializing_if = "DataFile::is_empty")]
    pub data: DataFile,
    /// Recipe defaults for every phase.
    #[serde(default, skip_serializing_if = "RecipeFile::is_empty")]
    pub recipe: RecipeFile,
    /// The phases, run in order; each starts from the previous one's encoder.
    #[serde(default)]
    pub phases: Vec<PhaseFile>,
}

/// `[model]`: exactly one of `pretrained`, `random`, `checkpoint`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// The encoder family (`bert`). Read from the model's `config.json` (`model_type`) or saved
    /// model when absent; `bert` for a random model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder: Option<String>,
    /// A Hugging Face model directory (`config.json` + `model.safetensors`), or a hub id
    /// `org/name[@revision]` downloaded into the Hugging Face cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<String>,
    /// A freshly initialised encoder of this size (tests, ablations); the keys are the
    /// encoder's (BERT: `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
    /// `intermediate_size`, `max_position_embeddings`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random: Option<toml::Table>,
    /// A model saved by a previous stilts phase (`.../model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// With `checkpoint`: `encoder` (default) or `encoder_head`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadMode>,
    /// `vocab.txt` or `tokenizer.json`; defaults to the one in the model directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
}

/// `[data]`: roots the task directories live under.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFile {
    /// Root of built-in (GLUE) tasks; default `$GLUE_DIR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub glue_dir: Option<String>,
    /// Root of custom (TOML) tasks; default `$STILTS_EXTRA_DIR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_dir: Option<String>,
}

/// Training hyper-parameters; every field optional, phase values override experiment values,
/// which override the encoder's preset recipe (BERT's: Devlin et al.).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecipeFile {
    /// Examples per training batch (one forward and backward pass); an optimizer step takes
    /// `grad_accum_steps` of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Examples per batch when evaluating and predicting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_batch_size: Option<usize>,
    /// Peak learning rate (reached at the end of warmup).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Adam's β₁ (decay of the first-moment estimate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta_1: Option<f64>,
    /// Adam's β₂ (decay of the second-moment estimate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta_2: Option<f64>,
    /// Adam's ε (added to the denominator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// Weight decay, decoupled from the gradient; biases and LayerNorm weights (Hugging Face's
    /// no-decay group) are exempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// Fraction of the phase's optimizer steps spent warming the rate up linearly from 0, in
    /// `[0, 1]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup_proportion: Option<f64>,
    /// `adamw` (default) or `bert_adam` (the original BERT optimizer, for exact replications).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<OptimizerKind>,
    /// `linear` (warmup then linear decay to 0; BERT's and GPT's), `constant` (warmup then the
    /// peak rate throughout), or `plateau` (the peak rate, halved when the dev score stops
    /// improving; ELMo's preset, after jiant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleKind>,
    /// Stop a run once its dev score has not beaten its best at `early_stop_patience + 1` epoch
    /// ends in a row (jiant's `patience` rule); absent or 0: run every epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stop_patience: Option<usize>,
    /// Gradient-norm clip (global for `adamw`, per parameter for `bert_adam`); 0 disables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_grad_norm: Option<f64>,
    /// Dropout probability in `[0, 1)` in the encoder and before the heads (presets: 0.1 for
    /// BERT and GPT, 0.2 for ELMo).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// The most tokens in an input, special tokens included (ELMo: words); longer inputs are
    /// truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_seq_len: Option<usize>,
    /// Passes over the training data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// Batches whose gradients are averaged into one optimizer step (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_accum_steps: Option<usize>,
    /// Batch examples of similar length together (less padding; the order stays seeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_by_length: Option<bool>,
    /// Also checkpoint every this many optimizer steps (0: only at epoch ends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_every_steps: Option<u64>,
    /// The model a run ends with: `last` (default, the paper's) or `best_epoch` (the epoch
    /// with the best dev score, as jiant keeps it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<Keep>,
    /// Weight of the encoder's auxiliary loss in the training loss (GPT's language-model
    /// objective; 0 turns it off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux_lm_weight: Option<f64>,
    /// Encoder parameter groups that do not train (no gradient, no optimizer update): `all`,
    /// or the encoder's groups (BERT: `embeddings`, `layer.0` ..., `pooler`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeze: Option<Vec<String>>,
    /// Train LoRA updates instead of the encoder ([`crate::peft::LoraFile`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraFile>,
    /// Train bottleneck adapters instead of the encoder ([`crate::peft::AdapterFile`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<AdapterFile>,
    /// Train an AdapterFusion over adapters trained before ([`crate::peft::FusionFile`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionFile>,
    /// With `lora`, `adapter` or `fusion`: encoder parameter groups that train beside the
    /// modules (`peft`'s `modules_to_save`; BERT: `pooler`, `embeddings`, `layer.N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modules_to_save: Option<Vec<String>>,
    /// The float type training computes in: `f32` (default) or `bf16` (mixed precision: fp32
    /// master weights and optimizer state, the forward and backward passes in bf16, softmax,
    /// LayerNorm and the losses in fp32).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<TrainPrecision>,
}

/// The float type a phase trains in (`precision` in `[recipe]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainPrecision {
    /// 32-bit floats throughout.
    #[default]
    #[serde(alias = "fp32", alias = "float32")]
    F32,
    /// Mixed precision in bfloat16 (fp32's exponent range: no loss scaling).
    #[serde(alias = "bfloat16")]
    Bf16,
    /// Half precision: accepted by the parser so that the refusal can say why (its range needs
    /// loss scaling, which stilts does not do).
    #[serde(alias = "fp16", alias = "float16", alias = "half")]
    F16,
}

impl TrainPrecision {
    /// Whether this is the default ([`TrainPrecision::F32`]).
    pub fn is_f32(&self) -> bool {
        *self == TrainPrecision::F32
    }
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
    /// Whether this is the default ([`Keep::Last`]).
    pub fn is_last(&self) -> bool {
        *self == Keep::Last
    }
}

/// One `[[phases]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseFile {
    /// Name (directory name of its runs); defaults to the task names joined by `+`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tasks: built-in names (`RTE`) or custom task files (`configs/tasks/x.toml`); several
    /// tasks make a multitask phase.
    pub tasks: Vec<TaskEntryFile>,
    /// Multitask only: `proportional` (default), `uniform` or `temperature`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampler: Option<SamplerKind>,
    /// With `sampler = "temperature"`: T in p_i ∝ n_i^(1/T).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// `new` (default), `reuse` or `map`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadKind>,
    /// With `head = "map"`: new label -> label of the previous head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_map: Option<BTreeMap<String, String>>,
    /// Number of restarts (seeds `seed`, `seed+1`, ...); the best on dev continues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<usize>,
    /// Explicit seeds instead of `restarts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seeds: Option<Vec<u64>>,
    /// Write test-split predictions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predict_test: Option<bool>,
    /// Multitask: rank restarts, and judge degenerate runs, on this task's dev score (the
    /// paper's `{MNLI,RTE}` is read on RTE) instead of the mean over the phase's tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select_on: Option<String>,
    /// Recipe overrides for this phase.
    #[serde(default, skip_serializing_if = "RecipeFile::is_empty")]
    pub recipe: RecipeFile,
}

/// A task of a phase: a name/path, or a table with options.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum TaskEntryFile {
    /// A built-in name or a `.toml` task file.
    Name(String),
    /// `{ task = "RTE", train_examples = 1000 }`.
    Table(TaskTableFile),
}

/// A string or a table, each with its own error (an untagged enum would say only that neither
/// matched, hiding which key of the table is wrong).
impl<'de> Deserialize<'de> for TaskEntryFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match toml::Value::deserialize(d)? {
            toml::Value::String(name) => Ok(TaskEntryFile::Name(name)),
            table @ toml::Value::Table(_) => TaskTableFile::deserialize(table.clone())
                .map(TaskEntryFile::Table)
                .map_err(|e| D::Error::custom(format!("task entry {table}: {}", e.message()))),
            other => Err(D::Error::custom(format!(
                "a task entry is a name or a table, not a {}",
                other.type_str()
            ))),
        }
    }
}

/// A task with options.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskTableFile {
    /// A built-in name or a `.toml` task file.
    pub task: String,
    /// Directory holding the task's directory (overrides `[data]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_root: Option<String>,
    /// Downsample the training set to this many examples (seeded by the restart seed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_examples: Option<usize>,
    /// The dev split to evaluate (default: the task's first dev split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_split: Option<String>,
    /// How a pair task's texts reach the encoder: `joint` (default), `separate` (the head reads
    /// `[u; v; |u-v|; u*v]`) or `both_orders` (the head reads the sum of both orders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair: Option<PairMode>,
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
    /// Fresh heads for the phase's tasks.
    New,
    /// The previous phase's head with the same labels (by name and order) and pair mode.
    Reuse,
    /// The previous head's rows for the labels `label_map` names (single-task phases).
    Map,
}

/// The learning-rate schedule of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Linear warmup, then linear decay to 0 at the last step.
    #[default]
    Linear,
    /// Linear warmup, then the peak rate to the end.
    Constant,
    /// Linear warmup, then the peak rate, halved whenever the dev score has failed to beat its
    /// best by more than 1e-4 at two epoch ends in a row; a run stops once the rate falls below
    /// 1e-6 (PyTorch's `ReduceLROnPlateau` as jiant configured it).
    Plateau,
}

impl ScheduleKind {
    /// Whether this is the default ([`ScheduleKind::Linear`]).
    pub fn is_linear(&self) -> bool {
        *self == ScheduleKind::Linear
    }
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

impl DataFile {
    /// Whether no root is set.
    pub fn is_empty(&self) -> bool {
        *self == DataFile::default()
    }
}

impl RecipeFile {
    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        *self == RecipeFile::default()
    }

    /// `self` with the keys `over` sets replaced by `over`'s.
    pub fn overridden_by(&self, over: &RecipeFile) -> RecipeFile {
        macro_rules! pick {
            ($($f:ident),*) => { RecipeFile { $( $f: over.$f.clone().or_else(|| self.$f.clone()), )* } };
        }
        pick!(
            batch_size,
            eval_batch_size,
            lr,
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            warmup_proportion,
            optimizer,
            schedule,
            early_stop_patience,
            max_grad_norm,
            dropout,
            max_seq_len,
            epochs,
            grad_accum_steps,
            bucket_by_length,
            checkpoint_every_steps,
            keep,
            aux_lm_weight,
            freeze,
            lora,
            adapter,
            fusion,
            modules_to_save,
            precision
        )
    }
}

impl ExperimentFile {
    /// Reads and parses an experiment file (no validation: see `stilts-train`).
    pub fn read(path: &Path) -> Result<ExperimentFile, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| SchemaError::Toml {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// The file as a TOML table (unset keys left out).
    pub fn to_table(&self) -> toml::Table {
        // Every field serializes to TOML (no `None`, no non-string map keys), so this cannot fail.
        toml::Table::try_from(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_keys_are_left_out_and_unknown_keys_refused() {
        let file: ExperimentFile = toml::from_str(
            r#"
seed = 3
[model]
pretrained = "/m"
[[phases]]
tasks = ["RTE", { task = "x.toml", train_examples = 10, pair = "separate" }]
recipe = { lr = 1e-5, beta_1 = 0.9, freeze = ["embeddings"] }
"#,
        )
        .unwrap();
        let table = file.to_table();
        let text = toml::to_string(&table).unwrap();
        let back: ExperimentFile = toml::from_str(&text).unwrap();
        assert_eq!(back, file);
        assert!(!table.contains_key("recipe") && !table.contains_key("data"));
        let phase = table["phases"].as_array().unwrap()[0].as_table().unwrap();
        assert_eq!(phase["recipe"]["beta_1"].as_float(), Some(0.9));
        assert_eq!(phase.len(), 2, "{phase:?}");
        let err = toml::from_str::<ExperimentFile>(
            "[model]
pretrained = \"/m\"
randm = {}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("randm"), "{err}");
    }
}
