use std::path::Path;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;

use super::config::{BertClassifierConfig, BertConfig};
use super::hf::{LoadReport, Target, load_hf_weights, weights_file};
use super::model::{BertForSequenceClassification, BertModel};
use crate::ModelError;

/// File name of our own configuration JSON in a saved checkpoint directory.
pub const CONFIG_FILE: &str = "stilts-bert.json";
/// File name of the weights in a saved checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

impl BertModel {
    /// Builds an encoder from a Hugging Face model directory: `config.json` and
    /// `model.safetensors` (or `pytorch_model.bin`).
    ///
    /// A pooler absent from the checkpoint keeps its fresh initialisation; a task head in the
    /// checkpoint is ignored. Every other key must match (see [`LoadReport`]).
    pub fn from_pretrained(
        dir: impl AsRef<Path>,
        device: &Device,
    ) -> Result<(Self, LoadReport), ModelError> {
        let dir = dir.as_ref();
        let config = BertConfig::from_hf_file(dir.join("config.json"))?;
        Self::from_hf_weights(&config, weights_file(dir)?, device)
    }

    /// Builds the encoder described by `config` and loads a Hugging Face checkpoint file into
    /// it; a task head in the checkpoint (of any width) is ignored.
    pub fn from_hf_weights(
        config: &BertConfig,
        weights: impl AsRef<Path>,
        device: &Device,
    ) -> Result<(Self, LoadReport), ModelError> {
        let mut model = config.init(device);
        let report = load_hf_weights(&mut model, weights.as_ref(), Target::Encoder)?;
        Ok((model, report))
    }
}

impl BertForSequenceClassification {
    /// Builds a classifier (or regressor, `num_labels == 1`) from a Hugging Face model
    /// directory: `config.json` and `model.safetensors` (or `pytorch_model.bin`), with or
    /// without the `bert.` key prefix.
    ///
    /// Only the task head (and a pooler the checkpoint lacks) may be missing; they keep their
    /// fresh initialisation and are listed in [`LoadReport::initialized`].
    pub fn from_pretrained(
        dir: impl AsRef<Path>,
        num_labels: usize,
        device: &Device,
    ) -> Result<(Self, LoadReport), ModelError> {
        let dir = dir.as_ref();
        let config = BertClassifierConfig::from_hf_file(dir.join("config.json"), num_labels)?;
        Self::from_hf_weights(&config, weights_file(dir)?, device)
    }

    /// Builds the model described by `config` and loads a Hugging Face checkpoint file into it.
    pub fn from_hf_weights(
        config: &BertClassifierConfig,
        weights: impl AsRef<Path>,
        device: &Device,
    ) -> Result<(Self, LoadReport), ModelError> {
        let mut model = config.init(device);
        let report = load_hf_weights(&mut model, weights.as_ref(), Target::Classifier)?;
        Ok((model, report))
    }

    /// Saves the model as `dir/model.safetensors` (our module paths, burn layout) and its
    /// configuration as `dir/stilts-bert.json`, creating `dir` if needed.
    pub fn save_checkpoint(
        &self,
        config: &BertClassifierConfig,
        dir: impl AsRef<Path>,
    ) -> Result<(), ModelError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        config.save_json(dir.join(CONFIG_FILE))?;
        let path = dir.join(WEIGHTS_FILE);
        let mut store = SafetensorsStore::from_file(&path).overwrite(true);
        self.save_into(&mut store)
            .map_err(|source| ModelError::Safetensors { path, source })
    }

    /// Loads a checkpoint written by [`Self::save_checkpoint`]; every parameter must be there.
    pub fn load_checkpoint(
        dir: impl AsRef<Path>,
        device: &Device,
    ) -> Result<(Self, BertClassifierConfig), ModelError> {
        let dir = dir.as_ref();
        let config = BertClassifierConfig::load_json(dir.join(CONFIG_FILE))?;
        let mut model = config.init(device);
        let path = dir.join(WEIGHTS_FILE);
        let mut store = SafetensorsStore::from_file(&path)
            .allow_partial(true)
            .validate(false);
        let result = model
            .load_from(&mut store)
            .map_err(|source| ModelError::Safetensors {
                path: path.clone(),
                source,
            })?;
        let report = LoadReport {
            loaded: result.applied.clone(),
            missing: result.missing.iter().map(|(p, _)| p.clone()).collect(),
            unused: result.unused.clone(),
            errors: result.errors.iter().map(ToString::to_string).collect(),
            ..LoadReport::default()
        };
        if !report.is_ok() {
            return Err(ModelError::Mismatch {
                path,
                report: Box::new(report),
            });
        }
        Ok((model, config))
    }
}
