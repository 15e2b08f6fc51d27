//! Task heads: what each predicts ([`HeadInfo`]), the head module ([`TaskHead`]), and the head
//! policies that carry heads from one phase to the next.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use stilts_data::Task;
use stilts_data::encoding::PairMode;

use super::{Carried, ModelMeta};
use crate::config::HeadPolicy;
use crate::error::{Result, TrainError};

/// What a head predicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadInfo {
    /// The task it was trained on.
    pub task: String,
    /// Its label names in output order (empty for regression).
    pub labels: Vec<String>,
    /// Whether it is a one-output regression head.
    pub regression: bool,
    /// How a pair reaches the encoder for this head (left out of the file when `joint`).
    #[serde(default, skip_serializing_if = "PairMode::is_joint")]
    pub pair: PairMode,
}

impl HeadInfo {
    /// The head a task needs, fed as `pair` says.
    pub fn for_task(task: &Task, pair: PairMode) -> Self {
        HeadInfo {
            task: task.name.clone(),
            labels: task.labels().to_vec(),
            regression: task.target.is_regression(),
            pair,
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

    /// Width of the head's input for an encoder of width `hidden`: `4 * hidden` for
    /// [`PairMode::Separate`] (`[u; v; |u-v|; u*v]`), else `hidden`.
    pub fn input_width(&self, hidden: usize) -> usize {
        match self.pair {
            PairMode::Separate => 4 * hidden,
            PairMode::Joint | PairMode::BothOrders => hidden,
        }
    }

    pub(crate) fn describe(&self) -> String {
        let pair = if self.pair.is_joint() {
            String::new()
        } else {
            format!(" ({:?} pairs)", self.pair).to_lowercase()
        };
        if self.regression {
            format!("{} (regression){pair}", self.task)
        } else {
            format!("{} [{}]{pair}", self.task, self.labels.join(", "))
        }
    }
}

// transformers/models/bert/modeling_bert.py: BertForSequenceClassification.classifier
/// A linear head on the (dropped-out) representation of an example.
#[derive(Module, Debug)]
pub struct TaskHead {
    /// `[input, outputs]`.
    pub classifier: Linear,
    /// How the encoder's views of a pair are combined before the classifier.
    #[module(skip)]
    pub pair: PairMode,
}

impl TaskHead {
    /// A fresh head for `info` on an encoder of width `hidden`: normal(0, `std`) weights, zero
    /// bias (BERT's initialisation).
    pub fn new(info: &HeadInfo, hidden: usize, std: f64, device: &Device) -> Self {
        let (input, outputs) = (info.input_width(hidden), info.outputs());
        let mut linear = LinearConfig::new(input, outputs)
            .with_initializer(Initializer::Normal { mean: 0.0, std })
            .init(device);
        linear.bias = Some(Initializer::Zeros.init([outputs], device));
        TaskHead {
            classifier: linear,
            pair: info.pair,
        }
    }

    /// The head's outputs keeping only `rows` (in that order).
    fn select_outputs(&self, rows: &[i64], device: &Device) -> TaskHead {
        let idx = Tensor::<1, Int>::from_data(TensorData::new(rows.to_vec(), [rows.len()]), device);
        let weight = self.classifier.weight.val().select(1, idx.clone()); // [input, new_outputs]
        let bias = self
            .classifier
            .bias
            .as_ref()
            .map(|b| Param::from_tensor(b.val().select(0, idx)));
        TaskHead {
            classifier: Linear {
                weight: Param::from_tensor(weight),
                bias,
            },
            pair: self.pair,
        }
    }
}

/// Chooses the heads of a phase from the previous model's heads by `policy`; `pairs` gives each
/// task's pair mode.
///
/// - `New`: fresh heads.
/// - `Reuse`: for each task, the previous head with the same labels (by name and order) and pair
///   mode, preferring the head of the same task; an error when none matches or the choice is
///   ambiguous.
/// - `Map`: single task; the previous head's rows for the mapped labels.
pub fn apply_head_policy(
    phase: &str,
    policy: &HeadPolicy,
    previous: &Carried,
    tasks: &[(&Task, PairMode)],
    device: &Device,
) -> Result<Carried> {
    let hidden = previous.meta.encoder.hidden_size();
    let std = previous.meta.encoder.initializer_range();
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
    for &(task, pair) in tasks {
        let info = HeadInfo::for_task(task, pair);
        let head = match policy {
            HeadPolicy::New => TaskHead::new(&info, hidden, std, device),
            HeadPolicy::Reuse => {
                let i = reuse_index(prev, &info).map_err(|ambiguous| {
                    err(if ambiguous {
                        format!(
                            "reuse: several previous heads match {} and none is for that task; {}",
                            info.describe(),
                            listing()
                        )
                    } else {
                        format!(
                            "reuse: no previous head has the labels of {} in that order; {}",
                            info.describe(),
                            listing()
                        )
                    })
                })?;
                previous.model.heads[i].clone()
            }
            HeadPolicy::Map { label_map } => {
                let (source, rows) = map_rows(prev, &info, label_map).map_err(|m| {
                    err(match m {
                        None => format!("map: {}", listing()),
                        Some(m) => format!("map: {m}; {}", listing()),
                    })
                })?;
                previous.model.heads[source].select_outputs(&rows, device)
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
            heads: infos,
            ..previous.meta.clone()
        },
    })
}

/// The previous head `reuse` picks for `info`; `Err(true)` when ambiguous, `Err(false)` when
/// none matches.
fn reuse_index(prev: &[HeadInfo], info: &HeadInfo) -> std::result::Result<usize, bool> {
    let same: Vec<usize> = (0..prev.len())
        .filter(|&i| {
            prev[i].labels == info.labels
                && prev[i].regression == info.regression
                && prev[i].pair == info.pair
        })
        .collect();
    if let Some(i) = same.iter().copied().find(|&i| prev[i].task == info.task) {
        return Ok(i);
    }
    match same.as_slice() {
        [only] => Ok(*only),
        [] => Err(false),
        _ => Err(true),
    }
}

/// The previous head `map` reads and the rows it keeps, in `info`'s label order. `Err(None)`:
/// there is no previous head (the caller lists them).
fn map_rows(
    prev: &[HeadInfo],
    info: &HeadInfo,
    label_map: &std::collections::BTreeMap<String, String>,
) -> std::result::Result<(usize, Vec<i64>), Option<String>> {
    let source = match prev.len() {
        0 => return Err(None),
        1 => 0,
        _ => prev
            .iter()
            .position(|h| h.task == info.task)
            .ok_or_else(|| {
                Some(format!(
                    "the previous model has several heads and none is for {}",
                    info.task
                ))
            })?,
    };
    let from = &prev[source];
    if from.regression {
        return Err(Some(format!("{} is a regression head", from.describe())));
    }
    if from.pair != info.pair {
        return Err(Some(format!(
            "{} reads pairs otherwise than {}",
            from.describe(),
            info.describe()
        )));
    }
    let mut rows = Vec::new();
    for label in &info.labels {
        let target = label_map
            .get(label)
            .ok_or_else(|| Some(format!("label `{label}` of {} is not mapped", info.task)))?;
        let idx = from
            .labels
            .iter()
            .position(|l| l == target)
            .ok_or_else(|| {
                Some(format!(
                    "`{label}` maps to `{target}`, which is not a label of {}",
                    from.describe()
                ))
            })?;
        rows.push(idx as i64);
    }
    Ok((source, rows))
}
