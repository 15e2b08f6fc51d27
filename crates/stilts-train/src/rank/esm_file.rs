//! An Embedding Space Map on disk, in hf-dataset-selector's layout (what `ESM.save_pretrained`
//! writes and `ESM.from_pretrained` reads): a directory with `config.json` (an `ESMConfig`:
//! `esm_architecture = "linear"`, `esm_embedding_dim`, the task and training settings) and
//! `model.safetensors` (`model.weight` `[dim, dim]`, `model.bias` `[dim]`, f32). stilts adds a
//! `stilts` object to the config naming the base encoder's and the tuned encoder's weights
//! (SHA-256), the sample's hash and the pooling, so an ESM is never applied to another encoder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nalgebra::DMatrix;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use stilts_io::fs::{FsError, complete_dir, replace_dir, write_atomic};

use super::RankError;
use super::esm::{Esm, EsmTraining};
use super::features::Pooling;

/// The config file of an ESM directory.
pub const CONFIG_FILE: &str = "config.json";
/// The weights file of an ESM directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// What stilts records about an ESM beyond hfselect's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsmProvenance {
    /// `weights_sha256` of the base encoder whose embeddings the map reads.
    pub base_weights_sha256: String,
    /// `weights_sha256` of the encoder after intermediate training, whose embeddings it writes.
    pub tuned_weights_sha256: String,
    /// The candidate sample's hash ([`super::features::TaskSample::sha256`]).
    pub sample_sha256: String,
    /// How token states were pooled.
    pub pooling: Pooling,
    /// Most tokens per example.
    pub max_seq_len: usize,
    /// The mean loss of each training epoch.
    pub losses: Vec<f64>,
}

/// `config.json`: hfselect's `ESMConfig` fields that stilts fills, plus `stilts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsmConfig {
    /// Only `linear` is read.
    pub esm_architecture: String,
    /// The embedding width.
    pub esm_embedding_dim: usize,
    /// The candidate (intermediate) task.
    #[serde(default)]
    pub task_id: Option<String>,
    /// The split the map was fitted on.
    #[serde(default)]
    pub task_split: Option<String>,
    /// Examples it was fitted on.
    #[serde(default)]
    pub num_examples: Option<usize>,
    /// The sampling seed.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The base model as the user named it.
    #[serde(default)]
    pub base_model_name: Option<String>,
    /// Training epochs.
    #[serde(default)]
    pub esm_num_epochs: Option<usize>,
    /// Training batch size.
    #[serde(default)]
    pub esm_batch_size: Option<usize>,
    /// Peak learning rate.
    #[serde(default)]
    pub esm_learning_rate: Option<f64>,
    /// Weight decay.
    #[serde(default)]
    pub esm_weight_decay: Option<f64>,
    /// The optimizer.
    #[serde(default)]
    pub esm_optimizer: Option<String>,
    /// stilts' provenance; absent in ESMs made by hfselect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stilts: Option<EsmProvenance>,
}

impl EsmConfig {
    /// The config of a map stilts trained.
    pub fn new(
        dim: usize,
        task: &str,
        examples: usize,
        seed: u64,
        training: &EsmTraining,
        provenance: EsmProvenance,
    ) -> Self {
        EsmConfig {
            esm_architecture: "linear".to_owned(),
            esm_embedding_dim: dim,
            task_id: Some(task.to_owned()),
            task_split: Some("train".to_owned()),
            num_examples: Some(examples),
            seed: Some(seed),
            base_model_name: None,
            esm_num_epochs: Some(training.epochs),
            esm_batch_size: Some(training.batch_size),
            esm_learning_rate: Some(training.learning_rate),
            esm_weight_decay: Some(training.weight_decay),
            esm_optimizer: Some("AdamW".to_owned()),
            stilts: Some(provenance),
        }
    }
}

fn bad(path: &Path, message: impl Into<String>) -> RankError {
    RankError::Esm {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Writes an ESM directory (replaced whole: a killed write leaves the previous one or none).
pub fn save(dir: &Path, esm: &Esm, config: &EsmConfig) -> Result<(), RankError> {
    let d = esm.dim();
    let weight: Vec<u8> = (0..d)
        .flat_map(|i| esm.weight.row(i).iter().copied().collect::<Vec<f32>>())
        .flat_map(f32::to_le_bytes)
        .collect();
    let bias: Vec<u8> = esm
        .bias
        .iter()
        .copied()
        .flat_map(f32::to_le_bytes)
        .collect();
    let views = [
        (
            "model.weight",
            TensorView::new(Dtype::F32, vec![d, d], &weight)
                .map_err(|e| bad(dir, e.to_string()))?,
        ),
        (
            "model.bias",
            TensorView::new(Dtype::F32, vec![d], &bias).map_err(|e| bad(dir, e.to_string()))?,
        ),
    ];
    let metadata = HashMap::from([("format".to_owned(), "pt".to_owned())]);
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| bad(dir, e.to_string()))?;
    let json = serde_json::to_vec_pretty(config).map_err(|e| bad(dir, e.to_string()))?;
    replace_dir(dir, |tmp| -> Result<(), FsError> {
        write_atomic(&tmp.join(WEIGHTS_FILE), &bytes)?;
        write_atomic(&tmp.join(CONFIG_FILE), &json)
    })?;
    Ok(())
}

fn tensor_f32(
    path: &Path,
    tensors: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, RankError> {
    let view = tensors
        .tensor(name)
        .map_err(|e| bad(path, format!("tensor `{name}`: {e}")))?;
    if view.dtype() != Dtype::F32 || view.shape() != shape {
        return Err(bad(
            path,
            format!(
                "tensor `{name}` is {:?} {:?}, expected F32 {shape:?}",
                view.dtype(),
                view.shape()
            ),
        ));
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Reads an ESM directory, stilts' or hfselect's.
pub fn load(dir: &Path) -> Result<(Esm, EsmConfig), RankError> {
    let found = complete_dir(dir, WEIGHTS_FILE).unwrap_or_else(|| dir.to_path_buf());
    let config_path = found.join(CONFIG_FILE);
    let text =
        std::fs::read_to_string(&config_path).map_err(|e| bad(&config_path, e.to_string()))?;
    let config: EsmConfig =
        serde_json::from_str(&text).map_err(|e| bad(&config_path, e.to_string()))?;
    if config.esm_architecture != "linear" {
        return Err(bad(
            &config_path,
            format!(
                "esm_architecture `{}`: only `linear` maps are supported",
                config.esm_architecture
            ),
        ));
    }
    let d = config.esm_embedding_dim;
    if d == 0 || d > 1 << 16 {
        return Err(bad(
            &config_path,
            format!("esm_embedding_dim {d} is out of range"),
        ));
    }
    let path = found.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).map_err(|e| bad(&path, e.to_string()))?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(&path, e.to_string()))?;
    let weight = tensor_f32(&path, &tensors, "model.weight", &[d, d])?;
    let bias = tensor_f32(&path, &tensors, "model.bias", &[d])?;
    let esm = Esm {
        weight: DMatrix::from_row_slice(d, d, &weight),
        bias,
    };
    Ok((esm, config))
}

/// Where stilts keeps the ESM of `key` (a SHA-256 in hex) under `root`.
pub fn cached_dir(root: &Path, key: &str) -> PathBuf {
    root.join(&key[..32.min(key.len())])
}
