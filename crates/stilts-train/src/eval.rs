//! Evaluation: a head's outputs over a split, scored with the task's metrics, named as the
//! task's labels; the majority-class baselines runs are judged against. Training's dev scoring,
//! `stilts eval` and `stilts export` all go through here.

use burn::tensor::Device;
use stilts_data::metrics::{self, Predictions, argmax};
use stilts_data::{Label, Task};

use crate::batching::collate_views;
use crate::error::{Result, TrainError};
use crate::model::TaskModel;
use crate::prepare::{Split, TaskData};
use crate::results::{SplitPredictions, TaskScores};
use stilts_data::encoding::Tokenizer;

/// Head outputs for every example of `split`, in order (batches sorted by length internally,
/// so results do not depend on the batch size).
pub fn predict(
    model: &TaskModel,
    head: usize,
    split: &Split,
    tokenizer: &Tokenizer,
    batch_size: usize,
    device: &Device,
) -> Vec<Vec<f32>> {
    let mut out = vec![Vec::new(); split.data.len()];
    for chunk in &split.batches_by_length(batch_size) {
        let views = collate_views(tokenizer, &split.select(chunk), device, false);
        let logits = model.forward(views, head).logits; // [batch, outputs]
        let [_, outputs] = logits.dims();
        let values: Vec<f32> = logits.into_data().iter::<f32>().collect();
        for (row, &i) in chunk.iter().enumerate() {
            out[i] = values[row * outputs..(row + 1) * outputs].to_vec();
        }
    }
    out
}

/// Scores head outputs against a labelled split with the task's metrics. A metric that cannot
/// be computed (a non-finite prediction, say) is an error naming the task, never a score.
pub fn score_split(task: &Task, split: &Split, logits: &[Vec<f32>]) -> Result<TaskScores> {
    let examples = &split.data.examples;
    let predictions = if task.target.is_regression() {
        let pred: Vec<f64> = logits.iter().map(|l| f64::from(l[0])).collect();
        let gold: Vec<f64> = examples
            .iter()
            .map(|e| e.label.and_then(Label::score).unwrap_or(f64::NAN))
            .collect();
        metrics::evaluate(
            &task.metrics,
            &Predictions::Scores {
                pred: &pred,
                gold: &gold,
            },
        )
    } else {
        let pred: Vec<usize> = logits.iter().map(|l| argmax(l)).collect();
        let gold: Vec<usize> = examples
            .iter()
            .map(|e| e.label.and_then(Label::class).unwrap_or(0))
            .collect();
        metrics::evaluate(
            &task.metrics,
            &Predictions::Classes {
                pred: &pred,
                gold: &gold,
                num_classes: task.target.num_outputs(),
            },
        )
    };
    let scores = predictions.map_err(|source| TrainError::Metric {
        task: task.name.clone(),
        source,
    })?;
    Ok(TaskScores {
        task: task.name.clone(),
        split: split.data.split.clone(),
        metrics: scores
            .iter()
            .map(|(m, v)| (m.name().to_owned(), v))
            .collect(),
        score: scores.task_score(),
    })
}

/// Each task's dev score of predicting its training set's majority class (classification; 0
/// for correlations of a constant), in task order.
pub fn task_baselines(data: &[TaskData]) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::with_capacity(data.len());
    for d in data {
        let outputs = d.task.target.num_outputs();
        let s = if d.task.target.is_regression() {
            0.0
        } else {
            let counts = d.train.data.label_counts(outputs);
            let majority = counts
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
                .map(|(i, _)| i)
                .unwrap_or(0);
            let mut row = vec![0.0f32; outputs];
            row[majority] = 1.0;
            let logits = vec![row; d.dev.data.len()];
            score_split(&d.task, &d.dev, &logits)?.score
        };
        out.push((d.task.name.clone(), s));
    }
    Ok(out)
}

/// Outputs named as the task's labels (classification) or written as scores (regression).
pub fn named_predictions(task: &Task, split: &Split, logits: Vec<Vec<f32>>) -> SplitPredictions {
    let predictions = logits
        .iter()
        .map(|l| {
            if task.target.is_regression() {
                format!("{:.3}", l[0])
            } else {
                task.labels().get(argmax(l)).cloned().unwrap_or_default()
            }
        })
        .collect();
    SplitPredictions {
        task: task.name.clone(),
        split: split.data.split.clone(),
        ids: split.data.examples.iter().map(|e| e.id.clone()).collect(),
        predictions,
        logits,
    }
}

/// A saved stilts model opened to score or predict task splits (`stilts eval`, the MNLI model
/// of `stilts export glue`): its tokenizer is the one saved with it unless another is named,
/// its `max_seq_len` the one it was trained with unless another is asked for.
#[derive(Debug)]
pub struct SavedModel {
    /// The model and its metadata.
    pub carried: crate::model::Carried,
    /// The tokenizer, with the model's `max_seq_len`.
    pub tokenizer: Tokenizer,
    device: Device,
}

impl SavedModel {
    /// Opens a stilts model directory (a run directory holding `model/` also works).
    pub fn open(
        dir: &std::path::Path,
        tokenizer: Option<&std::path::Path>,
        max_seq_len: Option<usize>,
        device: &Device,
    ) -> Result<SavedModel> {
        let dir = if dir.join(crate::model::META_FILE).is_file() {
            dir.to_path_buf()
        } else {
            crate::results::model_dir(dir)
        };
        let carried = crate::model::load_model(&dir, device)?;
        let max_seq_len = max_seq_len.or(carried.meta.max_seq_len).unwrap_or(
            stilts_data::tokenize::DEFAULT_MAX_SEQ_LEN.min(carried.meta.encoder.max_positions()),
        );
        carried
            .meta
            .check_max_seq_len(max_seq_len)
            .map_err(|message| TrainError::Checkpoint {
                path: dir.clone(),
                message,
            })?;
        let tokenizer = Tokenizer::at(tokenizer.unwrap_or(&dir))?.with_max_seq_len(max_seq_len)?;
        Ok(SavedModel {
            carried,
            tokenizer,
            device: device.clone(),
        })
    }

    /// A base model (a stilts or Hugging Face model directory) with a module directory
    /// (`<run>/adapter`) attached, read as `stilts predict --adapter` reads them.
    pub fn with_adapter(
        dir: &std::path::Path,
        adapter: &std::path::Path,
        max_seq_len: Option<usize>,
        device: &Device,
    ) -> Result<SavedModel> {
        let options = crate::predict::PredictOptions {
            adapter: Some(adapter.to_path_buf()),
            max_seq_len,
            ..crate::predict::PredictOptions::default()
        };
        let (predictor, _) =
            crate::predict::Predictor::load(dir, &options, device).map_err(|e| {
                TrainError::Checkpoint {
                    path: adapter.to_path_buf(),
                    message: e.to_string(),
                }
            })?;
        let (carried, tokenizer) = predictor.into_parts();
        Ok(SavedModel {
            carried,
            tokenizer,
            device: device.clone(),
        })
    }

    /// The head for `task` (trained on it, else the only head), checked to predict the task's
    /// labels.
    pub fn head_for(&self, task: &Task) -> Result<usize> {
        let meta = &self.carried.meta;
        let fail = |message: String| TrainError::Head {
            phase: "saved model".into(),
            message,
        };
        let head = meta.head_for(&task.name).map_err(fail)?;
        let info = &meta.heads[head];
        if info.labels != task.labels() || info.regression != task.target.is_regression() {
            return Err(fail(format!(
                "head {} predicts {:?} but {} has {:?}",
                info.task,
                info.labels,
                task.name,
                task.labels()
            )));
        }
        Ok(head)
    }

    /// Loads `split` of `task` from the task's directory `dir`, encodes it as head `head`
    /// reads pairs, and returns it with the head's outputs.
    pub fn predict_split(
        &self,
        head: usize,
        task: &Task,
        dir: &std::path::Path,
        split: &str,
        batch_size: usize,
    ) -> Result<(Split, Vec<Vec<f32>>)> {
        let data = task
            .load(dir, split, stilts_data::LoadOptions::default())
            .map_err(|source| TrainError::Data {
                task: task.name.clone(),
                source: Box::new(source),
            })?;
        let pair = self.carried.meta.heads[head].pair;
        let split = Split::encode(data, &self.tokenizer, pair)?;
        let logits = predict(
            &self.carried.model,
            head,
            &split,
            &self.tokenizer,
            batch_size,
            &self.device,
        );
        Ok((split, logits))
    }
}
