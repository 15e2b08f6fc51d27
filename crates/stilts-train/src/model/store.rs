//! The stilts model directory: one saved model that every command reads (`stilts run` phases,
//! `eval`, `predict`, `export`).
//!
//! ```text
//! stilts-model.json   format_version, the encoder ("encoder": "bert", "config": {...}), the
//!                     heads (task, labels, pair mode) and the max_seq_len it was trained with
//! model.bpk           weights (burn's burnpack, which keeps parameter ids for optimizer resume)
//! tokenizer files     the tokenizer it was trained with (tokenizer.json, or vocab.txt and
//!                     tokenizer_config.json)
//! ```
//!
//! Directories written before the encoder seam (format 0: a top-level `bert` config, parameter
//! paths `bert.*` and `heads.N.*`, a `classifier/` copy beside them) still load: their metadata
//! is converted and their parameter paths remapped on load.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Device;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stilts_io::files::TokenizerFiles;
use stilts_io::fs::replace_dir;
use stilts_models::EncoderConfig;
use stilts_models::bert::BertConfig;
use stilts_models::peft::PeftConfig;

use super::{Carried, HeadInfo, TaskHead, TaskModel};
use crate::error::{Result, TrainError};

/// Metadata file of a stilts model directory.
pub const META_FILE: &str = "stilts-model.json";
/// Weights file of a stilts model directory.
pub const WEIGHTS_FILE: &str = "model.bpk";
/// The format this version writes. 1: the encoder seam (issue 11).
pub const FORMAT_VERSION: u32 = 1;

/// Metadata of a [`TaskModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The encoder: `"encoder": "bert", "config": {...}`.
    #[serde(flatten)]
    pub encoder: EncoderConfig,
    /// One entry per head, in head order.
    pub heads: Vec<HeadInfo>,
    /// The longest input (in tokens) the model was trained with: what `eval`, `predict` and
    /// `export` use unless told otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seq_len: Option<usize>,
    /// The parameter-efficient modules the encoder carries (LoRA, adapters); left out when
    /// there are none.
    #[serde(default, skip_serializing_if = "PeftConfig::is_empty")]
    pub peft: PeftConfig,
}

impl ModelMeta {
    /// Metadata of a model with `encoder` and `heads`, in this version's format.
    pub fn new(encoder: EncoderConfig, heads: Vec<HeadInfo>) -> Self {
        ModelMeta {
            format_version: FORMAT_VERSION,
            encoder,
            heads,
            max_seq_len: None,
            peft: PeftConfig::default(),
        }
    }

    /// The head for `task`: the one trained on it, else the only head. The error lists the
    /// heads.
    pub fn head_for(&self, task: &str) -> std::result::Result<usize, String> {
        match self.heads.iter().position(|h| h.task == task) {
            Some(h) => Ok(h),
            None if self.heads.len() == 1 => Ok(0),
            None => Err(format!(
                "the model has no head for {task} (heads: {})",
                self.heads
                    .iter()
                    .map(|h| h.task.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Checks that inputs of `max_seq_len` tokens fit the encoder's positions; the message
    /// names both numbers.
    pub fn check_max_seq_len(&self, max_seq_len: usize) -> std::result::Result<(), String> {
        check_max_seq_len(&self.encoder, max_seq_len)
    }
}

/// Checks that inputs of `max_seq_len` tokens fit `encoder`'s positions (the one place this is
/// checked: phases, `eval`, `predict`, `export`).
pub fn check_max_seq_len(
    encoder: &EncoderConfig,
    max_seq_len: usize,
) -> std::result::Result<(), String> {
    let positions = encoder.max_positions();
    if max_seq_len > positions {
        return Err(format!(
            "max_seq_len {max_seq_len} exceeds the {} model's {positions} positions",
            encoder.kind()
        ));
    }
    Ok(())
}

/// The layout of a saved model's parameter paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Format 0 (before the encoder seam): `bert.*`, `heads.N.{weight,bias}`.
    V0,
    /// Format 1: `encoder.Bert.*`, `heads.N.classifier.*`.
    V1,
}

/// Format 0's metadata.
#[derive(Deserialize)]
struct MetaV0 {
    bert: BertConfig,
    heads: Vec<HeadInfo>,
}

/// Reads a `stilts-model.json` (or a checkpoint's `meta.json`) of any format this version
/// reads, with the layout of the weights beside it.
pub fn read_meta(path: &Path) -> Result<(ModelMeta, Layout)> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| TrainError::json(path, e))?;
    let version = value.get("format_version").and_then(|v| v.as_u64());
    match version {
        Some(v) if v > u64::from(FORMAT_VERSION) => Err(TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: format!(
                "format {v} was written by a newer stilts (this one reads up to {FORMAT_VERSION})"
            ),
        }),
        Some(_) => {
            let meta = serde_json::from_value(value).map_err(|e| TrainError::json(path, e))?;
            Ok((meta, Layout::V1))
        }
        None => {
            let v0: MetaV0 =
                serde_json::from_value(value).map_err(|e| TrainError::json(path, e))?;
            Ok((
                ModelMeta::new(EncoderConfig::Bert(v0.bert), v0.heads),
                Layout::V0,
            ))
        }
    }
}

/// Writes `dir/stilts-model.json`, `dir/model.bpk` and, when given, the tokenizer's files into
/// an existing directory, then `manifest.json` over them (see [`write_model_dir`] for the
/// atomic form).
pub fn save_model(carried: &Carried, dir: &Path, tokenizer: Option<&TokenizerFiles>) -> Result<()> {
    let meta_path = dir.join(META_FILE);
    let text =
        serde_json::to_vec_pretty(&carried.meta).map_err(|e| TrainError::json(&meta_path, e))?;
    stilts_io::fs::write_atomic(&meta_path, &text)?;
    save_weights(&carried.model, &dir.join(WEIGHTS_FILE))?;
    let mut written = vec![META_FILE.to_owned(), WEIGHTS_FILE.to_owned()];
    if let Some(files) = tokenizer {
        let copied = files.copy_into(dir)?;
        written.extend(
            copied
                .files()
                .iter()
                .filter_map(|(_, p)| p.file_name().map(|n| n.to_string_lossy().into_owned())),
        );
    }
    Ok(stilts_io::fs::write_manifest(dir, &written)?)
}

/// Writes a whole model directory atomically: a crash leaves the previous one or the new one.
pub fn write_model_dir(
    carried: &Carried,
    dir: &Path,
    tokenizer: Option<&TokenizerFiles>,
) -> Result<()> {
    replace_dir(dir, |tmp| save_model(carried, tmp, tokenizer))
}

/// Reads a model directory written by [`save_model`] (or by a stilts of format 0), its files
/// checked against its manifest first (a damaged file is named; directories saved before
/// manifests load unchecked).
pub fn load_model(dir: &Path, device: &Device) -> Result<Carried> {
    stilts_io::fs::verify_manifest(dir).map_err(|message| TrainError::Damaged {
        path: dir.to_path_buf(),
        message,
    })?;
    let (meta, layout) = read_meta(&dir.join(META_FILE))?;
    let mut model = skeleton(&meta, device).map_err(|message| TrainError::Checkpoint {
        path: dir.join(META_FILE),
        message,
    })?;
    load_weights(&mut model, &dir.join(WEIGHTS_FILE), layout)?;
    Ok(Carried { model, meta })
}

/// The tokenizer saved in a model directory, if it has one.
pub fn model_tokenizer(dir: &Path) -> Option<TokenizerFiles> {
    TokenizerFiles::find(dir)
}

/// A model of the shape `meta` describes, its weights freshly initialised (to be loaded over);
/// an error when `meta` names modules its encoder cannot carry.
pub fn skeleton(meta: &ModelMeta, device: &Device) -> std::result::Result<TaskModel, String> {
    let hidden = meta.encoder.hidden_size();
    let std = meta.encoder.initializer_range();
    let encoder = meta.encoder.init(device);
    let encoder = if meta.peft.is_empty() {
        encoder
    } else {
        encoder.add_peft(&meta.peft, device)?
    };
    Ok(TaskModel {
        encoder,
        dropout: burn::nn::DropoutConfig::new(meta.encoder.classifier_dropout()).init(),
        heads: meta
            .heads
            .iter()
            .map(|h| TaskHead::new(h, hidden, std, device))
            .collect(),
    })
}

/// Saves weights (with parameter ids) as burnpack.
pub fn save_weights(model: &TaskModel, path: &Path) -> Result<()> {
    let mut store = BurnpackStore::from_file(path).overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| TrainError::store("save the weights to", path, e))
}

/// Loads weights saved by [`save_weights`] (remapping format 0's paths); every parameter must
/// be present.
pub fn load_weights(model: &mut TaskModel, path: &Path, layout: Layout) -> Result<()> {
    let mut store = BurnpackStore::from_file(path);
    if layout == Layout::V0 {
        let prefix = format!("encoder.{:?}.", model.encoder.kind());
        store = store
            .with_remap_pattern(r"^bert\.", prefix.as_str())
            .with_remap_pattern(r"^heads\.(\d+)\.(weight|bias)$", "heads.$1.classifier.$2");
    }
    let result = model
        .load_from(&mut store)
        .map_err(|e| TrainError::store("load the weights from", path, e))?;
    if !result.missing.is_empty() || !result.errors.is_empty() {
        return Err(TrainError::Checkpoint {
            path: PathBuf::from(path),
            message: format!(
                "missing {:?}, errors {:?}",
                result.missing.iter().map(|m| &m.0).collect::<Vec<_>>(),
                result
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ),
        });
    }
    Ok(())
}

/// SHA-256 over every float parameter's shape and little-endian `f32` values, in module order:
/// equal for equal weights whatever the parameter ids or file layout.
pub fn weights_sha256<M: Module>(model: &M) -> String {
    weights_sha256_where(model, |_| true)
}

/// [`weights_sha256`] over the parameters whose path (`encoder.Bert.embeddings...`, as burn's
/// stores name them) `keep` accepts.
pub fn weights_sha256_where<M: Module>(model: &M, keep: impl Fn(&str) -> bool) -> String {
    let mut h = Sha256::new();
    visit_params(model, |path, param| {
        if keep(path) {
            let t = param();
            for d in t.shape().iter() {
                h.update((*d as u64).to_le_bytes());
            }
            for v in t.iter::<f32>() {
                h.update(v.to_le_bytes());
            }
        }
    });
    format!("{:x}", h.finalize())
}

/// The paths of the float parameters that `keep` accepts, in module order.
pub fn param_paths<M: Module>(model: &M, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut paths = Vec::new();
    visit_params(model, |path, _| {
        if keep(path) {
            paths.push(path.to_owned());
        }
    });
    paths
}

/// Calls `f` with each float parameter's path and a function giving its value.
fn visit_params<M: Module>(model: &M, f: impl FnMut(&str, &dyn Fn() -> TensorData)) {
    struct Paths<F> {
        path: Vec<String>,
        f: F,
    }
    impl<F: FnMut(&str, &dyn Fn() -> TensorData)> ModuleVisitor for Paths<F> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_owned());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            (self.f)(&self.path.join("."), &|| param.val().into_data());
        }
    }
    model.visit(&mut Paths {
        path: Vec::new(),
        f,
    });
}
