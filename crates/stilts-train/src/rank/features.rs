//! A task's training examples as the base encoder sees them: a seeded sample, tokenized as
//! training would feed it (the encoder family's pair mode), one pooled vector per example.

use std::str::FromStr;
use std::time::Instant;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stilts_data::sample::downsample;
use stilts_data::{Dataset, Label, LoadOptions};
use stilts_models::SentenceEncoder;

use super::RankError;
use super::logme::Targets;
use crate::TrainError;
use crate::batching::collate_views;
use crate::config::TaskSpec;
use crate::config::tasks::default_pair;
use crate::predict::Predictor;
use crate::prepare::Split;

/// How an example's token states become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The mean of the last layer's states over the example's tokens (sentence-transformers'
    /// pooling, which all-MiniLM-L6-v2 was trained with; what hf-dataset-selector uses for it).
    #[default]
    Mean,
    /// What a task head reads (BERT: the pooler's `tanh(W [CLS])`; hf-dataset-selector's
    /// choice for other BERTs).
    Pooled,
    /// The last layer's state at the summary token (BERT: `[CLS]`; GPT: the extract token).
    Summary,
}

impl Pooling {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Pooled => "pooled",
            Pooling::Summary => "summary",
        }
    }
}

impl FromStr for Pooling {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mean" => Ok(Pooling::Mean),
            "pooled" => Ok(Pooling::Pooled),
            "summary" => Ok(Pooling::Summary),
            other => Err(format!(
                "unknown pooling `{other}` (expected mean, pooled or summary)"
            )),
        }
    }
}

/// How a task's examples are sampled and encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureOptions {
    /// Most training examples encoded per task (a seeded sample when the split is larger).
    pub max_examples: usize,
    /// How token states are pooled.
    pub pooling: Pooling,
    /// Examples per forward pass.
    pub batch_size: usize,
}

impl Default for FeatureOptions {
    fn default() -> Self {
        FeatureOptions {
            max_examples: 1000,
            pooling: Pooling::Mean,
            batch_size: 32,
        }
    }
}

/// A task's sampled training examples, encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFeatures {
    /// The task.
    pub task: String,
    /// Examples in the whole training split.
    pub train_size: usize,
    /// Examples encoded.
    pub rows: usize,
    /// Width of a vector.
    pub dim: usize,
    /// `[rows, dim]`, row-major, in the split's order.
    pub values: Vec<f32>,
    /// The examples' labels.
    pub targets: Targets,
    /// Seconds spent reading, tokenizing and encoding.
    pub seconds: f64,
}

impl TaskFeatures {
    /// The mean vector over examples, `[dim]`, accumulated in `f64`.
    pub fn mean(&self) -> Vec<f64> {
        let mut sum = vec![0.0f64; self.dim];
        for row in self.values.chunks(self.dim.max(1)) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
        let n = self.rows.max(1) as f64;
        sum.iter().map(|s| s / n).collect()
    }
}

fn read_train(spec: &TaskSpec) -> Result<Dataset, RankError> {
    let data = spec
        .task
        .load(&spec.dir, &spec.train_split, LoadOptions::default())
        .map_err(|source| TrainError::Data {
            task: spec.task.name.clone(),
            source: Box::new(source),
        })?;
    if data.is_empty() || !data.is_labelled() {
        return Err(RankError::Features {
            task: spec.task.name.clone(),
            message: format!(
                "the train split {} has no labelled examples",
                data.path.display()
            ),
        });
    }
    Ok(data)
}

/// A task's seeded sample of training examples, not yet encoded.
#[derive(Debug, Clone)]
pub struct TaskSample {
    /// The task.
    pub task: String,
    /// Examples in the whole training split.
    pub train_size: usize,
    /// The sampled examples, in file order.
    pub data: Dataset,
    /// SHA-256 over the task's name and the sampled examples' ids, texts and labels: what an
    /// Embedding Space Map fitted on them is keyed by.
    pub sha256: String,
}

/// Reads a task's training split and draws at most `options.max_examples` examples with `seed`.
pub fn sample_task(
    spec: &TaskSpec,
    options: &FeatureOptions,
    seed: u64,
) -> Result<TaskSample, RankError> {
    if options.max_examples == 0 || options.batch_size == 0 {
        return Err(RankError::Options(
            "the number of examples and the batch size must be positive".to_owned(),
        ));
    }
    let full = read_train(spec)?;
    let (data, _) =
        downsample(&full, options.max_examples, seed, 0).map_err(|source| TrainError::Sample {
            task: spec.task.name.clone(),
            source: Box::new(source),
        })?;
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field(spec.task.name.as_bytes());
    for e in &data.examples {
        field(e.id.as_bytes());
        field(e.text_a.as_bytes());
        field(e.text_b.as_deref().unwrap_or("\0").as_bytes());
        field(format!("{:?}", e.label).as_bytes());
    }
    Ok(TaskSample {
        task: spec.task.name.clone(),
        train_size: full.len(),
        data,
        sha256: format!("{:x}", hash.finalize()),
    })
}

fn targets(regression: bool, data: &Dataset) -> Targets {
    if regression {
        Targets::Scores(
            data.examples
                .iter()
                .map(|e| e.label.and_then(Label::score).unwrap_or(f64::NAN))
                .collect(),
        )
    } else {
        Targets::Classes(
            data.examples
                .iter()
                .map(|e| e.label.and_then(Label::class).unwrap_or(0))
                .collect(),
        )
    }
}

/// Tokenizes and encodes a sample with the predictor's encoder, as training would feed the
/// task (the family's pair mode). A pair read in several views (GPT's both orders, ELMo's two
/// sentences) is the mean of its views' vectors. Rows keep the sample's order.
pub fn encode_sample(
    predictor: &Predictor,
    spec: &TaskSpec,
    sample: &TaskSample,
    options: &FeatureOptions,
) -> Result<TaskFeatures, RankError> {
    let started = Instant::now();
    let name = sample.task.clone();
    let failed = |message: String| RankError::Features {
        task: name.clone(),
        message,
    };
    let targets = targets(spec.task.target.is_regression(), &sample.data);
    let kind = predictor.model().meta.encoder.kind();
    let split = Split::encode(
        sample.data.clone(),
        predictor.tokenizer(),
        default_pair(kind, &spec.task),
    )?;
    let rows = split.data.len();
    let mut dim = 0;
    let mut values = Vec::new();
    for chunk in &split.batches_by_length(options.batch_size) {
        let inputs = collate_views(
            predictor.tokenizer(),
            &split.select(chunk),
            predictor.device(),
            false,
        );
        let views = inputs.len() as f32;
        let mut sum: Option<Tensor<2>> = None;
        for input in inputs {
            let mask = input.attention_mask.clone();
            let out = predictor.model().model.encoder.encode(input);
            let pooled = match options.pooling {
                Pooling::Mean => {
                    let mask = out.token_mask.unwrap_or_else(|| mask.float());
                    mean_pool(out.tokens, mask).map_err(&failed)?
                }
                Pooling::Pooled => out.pooled,
                Pooling::Summary => out.summary,
            };
            sum = Some(match sum {
                Some(s) => s + pooled,
                None => pooled,
            });
        }
        let batch = sum.ok_or_else(|| failed("the encoder gave no view".to_owned()))? / views;
        let [_, width] = batch.dims();
        dim = width;
        let flat = batch
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| failed(format!("{e:?}")))?;
        if values.is_empty() {
            values = vec![0.0; rows * width];
        }
        for (row, &i) in chunk.iter().enumerate() {
            values[i * width..(i + 1) * width]
                .copy_from_slice(&flat[row * width..(row + 1) * width]);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        "{name}: {rows} of {} training examples encoded in {seconds:.1} s",
        sample.train_size
    );
    Ok(TaskFeatures {
        task: name,
        train_size: sample.train_size,
        rows,
        dim,
        values,
        targets,
        seconds,
    })
}

/// The mean of token states over their mask (the encoder's token mask, else the input's).
///
/// # Shapes
///
/// - tokens: `[batch, seq, hidden]`
/// - mask: `[batch, seq]`
/// - output: `[batch, hidden]`
fn mean_pool(tokens: Tensor<3>, mask: Tensor<2>) -> Result<Tensor<2>, String> {
    let [batch, seq, hidden] = tokens.dims();
    if mask.dims() != [batch, seq] {
        return Err(format!(
            "the encoder's token states are [{batch}, {seq}, {hidden}] but the mask is {:?}: \
             use pooling `summary` or `pooled`",
            mask.dims()
        ));
    }
    let mask = mask.reshape([batch, seq, 1]);
    let sum = (tokens * mask.clone()).sum_dim(1).reshape([batch, hidden]);
    let count = mask.sum_dim(1).reshape([batch, 1]).clamp_min(1e-9);
    Ok(sum / count)
}
