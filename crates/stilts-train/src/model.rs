//! The model a phase trains: one BERT encoder and one linear head per task, the head policies
//! that carry a model from one phase to the next, and the stilts model directory format
//! (`stilts-model.json` + `model.bpk`, burn's burnpack, which keeps parameter ids so optimizer
//! state can be resumed).

use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use stilts_data::Task;
use stilts_models::bert::{
    BertClassifierConfig, BertConfig, BertForSequenceClassification, BertInput, BertModel, Labels,
    weights_file,
};

use crate::config::{HeadPolicy, LoadMode, ModelSource, RandomBertFile};
use crate::error::{Result, TrainError};

/// Metadata file of a stilts model directory.
pub const META_FILE: &str = "stilts-model.json";
/// Weights file of a stilts model directory.
pub const WEIGHTS_FILE: &str = "model.bpk";

/// What a head predicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadInfo {
    /// The task it was trained on.
    pub task: String,
    /// Its label names in output order (empty for regression).
    pub labels: Vec<String>,
    /// Whether it is a one-output regression head.
    pub regression: bool,
}

impl HeadInfo {
    /// The head a task needs.
    pub fn for_task(task: &Task) -> Self {
        HeadInfo {
            task: task.name.clone(),
            labels: task.labels().to_vec(),
            regression: task.target.is_regression(),
        }
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        if self.regression {
            1
        } else {
            self.labels.len()
        }
    }

    fn describe(&self) -> String {
        if self.regression {
            format!("{} (regression)", self.task)
        } else {
            format!("{} [{}]", self.task, self.labels.join(", "))
        }
    }
}

/// Metadata of a [`TaskModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// The encoder.
    pub bert: BertConfig,
    /// One entry per head, in head order.
    pub heads: Vec<HeadInfo>,
}

/// A BERT encoder with one linear head per task on the dropped-out pooled `[CLS]` state.
#[derive(Module, Debug)]
pub struct TaskModel {
    /// The encoder (carried from phase to phase).
    pub bert: BertModel,
    /// Dropout before the heads.
    pub dropout: Dropout,
    /// `[hidden, outputs]` each.
    pub heads: Vec<Linear>,
}

impl TaskModel {
    /// Logits (or regression scores) of head `head`.
    ///
    /// # Shapes
    ///
    /// - input: `[batch, seq]` each
    /// - output: `[batch, outputs]`
    ///
    /// # Panics
    ///
    /// If `head` is out of range.
    pub fn forward(&self, input: BertInput, head: usize) -> Tensor<2> {
        let pooled = self.bert.forward(input).pooled_output; // [batch, hidden]
        self.heads[head].forward(self.dropout.forward(pooled)) // [batch, outputs]
    }

    /// Sets every dropout probability (embeddings, attention, sub-layer outputs, head).
    pub fn set_dropout(&mut self, p: f64) {
        self.dropout.prob = p;
        self.bert.embeddings.dropout.prob = p;
        for layer in &mut self.bert.encoder.layers {
            layer.attention.self_attention.dropout.prob = p;
            layer.attention.output.dropout.prob = p;
            layer.output.dropout.prob = p;
        }
    }

    /// The model of head `head` as a [`BertForSequenceClassification`] (for `stilts-models`
    /// users and the prediction tools).
    pub fn classifier(&self, head: usize) -> BertForSequenceClassification {
        BertForSequenceClassification {
            bert: self.bert.clone(),
            dropout: self.dropout.clone(),
            classifier: self.heads[head].clone(),
        }
    }
}

/// Mean loss of a batch: cross-entropy for classes, mean squared error for scores.
///
/// # Shapes
///
/// - logits: `[batch, outputs]`
/// - labels: `[batch]`
/// - output: `[1]`
pub fn loss(logits: Tensor<2>, labels: Labels) -> Tensor<1> {
    let [batch, _] = logits.dims();
    match labels {
        Labels::Classes(classes) => log_softmax(logits, 1) // [batch, outputs]
            .gather(1, classes.reshape([batch, 1])) // [batch, 1]
            .mean()
            .neg(),
        Labels::Scores(scores) => (logits.reshape([batch]) - scores).square().mean(),
    }
}

/// A fresh head with BERT's initialisation (normal(0, `std`) weights, zero bias).
pub fn new_head(hidden: usize, outputs: usize, std: f64, device: &Device) -> Linear {
    let mut linear = LinearConfig::new(hidden, outputs)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    linear.bias = Some(Initializer::Zeros.init([outputs], device));
    linear
}

/// A model and its metadata.
#[derive(Debug, Clone)]
pub struct Carried {
    /// The model on the plain (inference) device.
    pub model: TaskModel,
    /// Its metadata.
    pub meta: ModelMeta,
}

/// Builds the starting model. Heads are only present when loading a stilts checkpoint with
/// [`LoadMode::EncoderHead`].
pub fn build_initial(
    source: &ModelSource,
    vocab_size: usize,
    dropout: Option<f64>,
    device: &Device,
) -> Result<Carried> {
    let with_dropout = |mut c: BertConfig| {
        if let Some(p) = dropout {
            c.hidden_dropout_prob = p;
            c.attention_probs_dropout_prob = p;
        }
        c
    };
    let (bert, config, heads, meta_heads) = match source {
        ModelSource::Pretrained { dir } => {
            // The encoder only: a task head in the checkpoint (a hub model fine-tuned on
            // MNLI, say) is ignored, whatever its width; phases add their own heads.
            let config = with_dropout(BertConfig::from_hf_file(dir.join("config.json"))?);
            let (bert, report) = BertModel::from_hf_weights(&config, weights_file(dir)?, device)?;
            tracing::info!(
                loaded = report.loaded.len(),
                initialized = ?report.initialized,
                ignored = ?report.ignored,
                "loaded pretrained encoder from {}",
                dir.display()
            );
            (bert, config, Vec::new(), Vec::new())
        }
        ModelSource::Random { size } => {
            let config = with_dropout(random_config(size, vocab_size));
            (config.init(device), config, Vec::new(), Vec::new())
        }
        ModelSource::Checkpoint { dir, load } => {
            let carried = load_model(dir, device)?;
            let mut meta = carried.meta;
            meta.bert = with_dropout(meta.bert);
            match load {
                LoadMode::Encoder => (carried.model.bert, meta.bert, Vec::new(), Vec::new()),
                LoadMode::EncoderHead => (
                    carried.model.bert,
                    meta.bert,
                    carried.model.heads,
                    meta.heads,
                ),
            }
        }
    };
    let mut model = TaskModel {
        bert,
        dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        heads,
    };
    if let Some(p) = dropout {
        model.set_dropout(p);
    }
    Ok(Carried {
        model,
        meta: ModelMeta {
            bert: config,
            heads: meta_heads,
        },
    })
}

fn random_config(size: &RandomBertFile, vocab_size: usize) -> BertConfig {
    BertConfig::new(
        vocab_size,
        size.hidden_size,
        size.num_hidden_layers,
        size.num_attention_heads,
        size.intermediate_size,
    )
    .with_max_position_embeddings(size.max_position_embeddings.unwrap_or(512))
}

/// Chooses the heads of a phase from the previous model's heads by `policy`.
///
/// - `New`: fresh heads.
/// - `Reuse`: for each task, the previous head with the same labels (by name and order),
///   preferring the head of the same task; an error when none matches or the choice is
///   ambiguous.
/// - `Map`: single task; the previous head's rows for the mapped labels.
pub fn apply_head_policy(
    phase: &str,
    policy: &HeadPolicy,
    previous: &Carried,
    tasks: &[&Task],
    device: &Device,
) -> Result<Carried> {
    let hidden = previous.meta.bert.hidden_size;
    let std = previous.meta.bert.initializer_range;
    let err = |message: String| TrainError::Head {
        phase: phase.to_owned(),
        message,
    };
    let prev = &previous.meta.heads;
    let listing = || {
        if prev.is_empty() {
            "the previous model has no heads".to_owned()
        } else {
            format!(
                "previous heads: {}",
                prev.iter()
                    .map(HeadInfo::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
    };
    let mut heads = Vec::new();
    let mut infos = Vec::new();
    for task in tasks {
        let info = HeadInfo::for_task(task);
        let head = match policy {
            HeadPolicy::New => new_head(hidden, info.outputs(), std, device),
            HeadPolicy::Reuse => {
                let same: Vec<usize> = (0..prev.len())
                    .filter(|&i| {
                        prev[i].labels == info.labels && prev[i].regression == info.regression
                    })
                    .collect();
                let pick = same
                    .iter()
                    .copied()
                    .find(|&i| prev[i].task == info.task)
                    .or(match same.as_slice() {
                        [only] => Some(*only),
                        _ => None,
                    });
                match pick {
                    Some(i) => previous.model.heads[i].clone(),
                    None if same.len() > 1 => {
                        return Err(err(format!(
                            "reuse: several previous heads match {} and none is for that task; {}",
                            info.describe(),
                            listing()
                        )));
                    }
                    None => {
                        return Err(err(format!(
                            "reuse: no previous head has the labels of {} in that order; {}",
                            info.describe(),
                            listing()
                        )));
                    }
                }
            }
            HeadPolicy::Map { label_map } => {
                let source = match prev.len() {
                    0 => return Err(err(format!("map: {}", listing()))),
                    1 => 0,
                    _ => prev
                        .iter()
                        .position(|h| h.task == info.task)
                        .ok_or_else(|| {
                            err(format!(
                                "map: the previous model has several heads and none is for {}; {}",
                                info.task,
                                listing()
                            ))
                        })?,
                };
                let from = &prev[source];
                if from.regression {
                    return Err(err(format!(
                        "map: {} is a regression head",
                        from.describe()
                    )));
                }
                let mut rows = Vec::new();
                for label in &info.labels {
                    let target = label_map.get(label).ok_or_else(|| {
                        err(format!(
                            "map: label `{label}` of {} is not mapped",
                            info.task
                        ))
                    })?;
                    let idx = from
                        .labels
                        .iter()
                        .position(|l| l == target)
                        .ok_or_else(|| {
                            err(format!(
                                "map: `{label}` maps to `{target}`, which is not a label of {}",
                                from.describe()
                            ))
                        })?;
                    rows.push(idx as i64);
                }
                select_outputs(&previous.model.heads[source], &rows, device)
            }
        };
        heads.push(head);
        infos.push(info);
    }
    let mut model = previous.model.clone();
    model.heads = heads;
    Ok(Carried {
        model,
        meta: ModelMeta {
            bert: previous.meta.bert.clone(),
            heads: infos,
        },
    })
}

fn select_outputs(head: &Linear, rows: &[i64], device: &Device) -> Linear {
    let idx = Tensor::<1, Int>::from_data(TensorData::new(rows.to_vec(), [rows.len()]), device);
    let weight = head.weight.val().select(1, idx.clone()); // [hidden, new_outputs]
    let bias = head
        .bias
        .as_ref()
        .map(|b| Param::from_tensor(b.val().select(0, idx)));
    Linear {
        weight: Param::from_tensor(weight),
        bias,
    }
}

/// Writes `dir/stilts-model.json` and `dir/model.bpk`, and for single-head models also the
/// `stilts-models` classifier checkpoint in `dir/classifier` (readable by
/// [`BertForSequenceClassification::load_checkpoint`]).
pub fn save_model(carried: &Carried, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let meta_path = dir.join(META_FILE);
    let text =
        serde_json::to_string_pretty(&carried.meta).map_err(|e| TrainError::json(&meta_path, e))?;
    std::fs::write(&meta_path, text).map_err(|e| TrainError::io(&meta_path, e))?;
    save_weights(&carried.model, &dir.join(WEIGHTS_FILE))?;
    if carried.meta.heads.len() == 1 {
        let config =
            BertClassifierConfig::new(carried.meta.bert.clone(), carried.meta.heads[0].outputs());
        carried
            .model
            .classifier(0)
            .save_checkpoint(&config, dir.join("classifier"))
            .map_err(TrainError::from)?;
    }
    Ok(())
}

/// Reads a directory written by [`save_model`].
pub fn load_model(dir: &Path, device: &Device) -> Result<Carried> {
    let meta_path = dir.join(META_FILE);
    let text = std::fs::read_to_string(&meta_path).map_err(|e| TrainError::io(&meta_path, e))?;
    let meta: ModelMeta =
        serde_json::from_str(&text).map_err(|e| TrainError::json(&meta_path, e))?;
    let mut model = skeleton(&meta, device);
    load_weights(&mut model, &dir.join(WEIGHTS_FILE))?;
    Ok(Carried { model, meta })
}

/// An uninitialised-weights model of the shape `meta` describes (weights to be loaded).
pub fn skeleton(meta: &ModelMeta, device: &Device) -> TaskModel {
    TaskModel {
        bert: meta.bert.init(device),
        dropout: DropoutConfig::new(meta.bert.hidden_dropout_prob).init(),
        heads: meta
            .heads
            .iter()
            .map(|h| {
                new_head(
                    meta.bert.hidden_size,
                    h.outputs(),
                    meta.bert.initializer_range,
                    device,
                )
            })
            .collect(),
    }
}

/// Saves weights (with parameter ids) as burnpack.
pub fn save_weights(model: &TaskModel, path: &Path) -> Result<()> {
    let mut store = BurnpackStore::from_file(path).overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Loads weights saved by [`save_weights`]; every parameter must be present.
pub fn load_weights(model: &mut TaskModel, path: &Path) -> Result<()> {
    let mut store = BurnpackStore::from_file(path);
    let result = model
        .load_from(&mut store)
        .map_err(|e| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
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
