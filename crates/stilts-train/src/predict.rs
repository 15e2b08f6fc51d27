//! Inference over JSON lines, for `stilts predict`, with any model a user has: a stilts model
//! directory (`stilts-model.json`: what `stilts run` saves, of this format or the one before),
//! a Hugging Face directory (`config.json` and its weights; the encoder family from its
//! `model_type`), or a single-head checkpoint of `stilts-models`' classifier
//! (`stilts-bert.json`, the `classifier/` of models saved before the encoder seam).
//!
//! Each input line is an object with a string `text_a` and an optional string (or `null`)
//! `text_b`; other fields are ignored. Each prediction holds the head's logits (the regression
//! score for a one-output head) and, on request, the encoder's summary state (BERT: the last
//! hidden state of `[CLS]`). The tokenizer is the model directory's own (a classifier
//! checkpoint's is looked for beside it and in the directory above). Batches are padded to
//! their longest row, so results do not depend on the batch size.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use stilts_train::predict::{PredictOptions, Predictor, read_jsonl};
//! # fn main() -> Result<(), stilts_train::predict::PredictError> {
//! let (predictor, _report) =
//!     Predictor::load("runs/quickstart/00-RTE/seed-1/model".as_ref(), &PredictOptions::default(), &Device::flex())?;
//! let records = read_jsonl("pairs.jsonl")?;
//! for prediction in predictor.predict(&records)? {
//!     println!("{}", prediction.to_json_line());
//! }
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use serde_json::Value;
use stilts_data::encoding::Tokenizer;
use stilts_data::tokenize::{DEFAULT_MAX_SEQ_LEN, TokenizeError};
use stilts_io::files::TokenizerFiles;
use stilts_models::bert::{BertForSequenceClassification, CONFIG_FILE, LoadReport};
use stilts_models::{Encoder, EncoderConfig, EncoderKind, ModelError, SentenceEncoder};

use crate::batching::collate_views;
use crate::model::peft_file::{ADAPTER_META_FILE, attach_adapter, is_peft_dir};
use crate::model::store::{META_FILE, check_max_seq_len};
use crate::model::{Carried, HeadInfo, ModelMeta, TaskHead, TaskModel, load_model};

/// Everything that can go wrong in [`Predictor::load`], [`read_jsonl`] and
/// [`Predictor::predict`].
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A line of the input is not a JSON object.
    #[error("{}:{line}: not a JSON object: {message}", path.display())]
    Json {
        /// The input file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A field of an input record is missing or has the wrong type.
    #[error("{}:{line}: field `{field}`: {message}", path.display())]
    Field {
        /// The input file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The model directory has no tokenizer.
    #[error("{}: no tokenizer (tokenizer.json or vocab.txt) in the model directory{}", dir.display(), if *searched_parent { " or the one above" } else { "" })]
    NoTokenizer {
        /// The model directory.
        dir: PathBuf,
        /// Whether the directory above was searched too.
        searched_parent: bool,
    },
    /// A stilts model directory could not be read.
    #[error("{}: cannot load the model", dir.display())]
    Saved {
        /// The model directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: Box<crate::TrainError>,
    },
    /// An option does not fit the model.
    #[error("{0}")]
    Options(String),
    /// The model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The tokenizer could not be built or failed on a text.
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    /// A tensor could not be read back (an unexpected element type).
    #[error("cannot read the model output: {0}")]
    Output(String),
}

/// One input: a text or a pair of texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictRecord {
    /// The first (or only) text.
    pub text_a: String,
    /// The second text of a pair.
    pub text_b: Option<String>,
}

/// How to run predictions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictOptions {
    /// Outputs of the head; `None` takes the model's own (its saved heads, `stilts-bert.json`,
    /// or `id2label`/`num_labels` of `config.json`), else 2.
    pub num_labels: Option<usize>,
    /// The head of a multi-head stilts model, by task name.
    pub task: Option<String>,
    /// Most tokens per example, special tokens included; `None`: the length the model was
    /// trained with when it says, else 128 or the model's positions if fewer.
    pub max_seq_len: Option<usize>,
    /// Examples per forward pass.
    pub batch_size: usize,
    /// Also return the encoder's summary state (BERT: `[CLS]`; GPT: the last token's).
    pub hidden: bool,
    /// Frame texts with the encoder's special tokens (`false`: the pieces alone, as Hugging
    /// Face's `add_special_tokens=False`).
    pub special_tokens: bool,
    /// Also return the language-model logits at the summary position (GPT).
    pub lm_logits: bool,
    /// A module directory (`<run>/adapter`: LoRA, adapters and heads saved on their own) to
    /// attach to the model's encoder, which must be the base it was trained on.
    pub adapter: Option<PathBuf>,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            num_labels: None,
            task: None,
            max_seq_len: None,
            batch_size: 32,
            hidden: false,
            special_tokens: true,
            lm_logits: false,
            adapter: None,
        }
    }
}

/// The output for one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// `[num_labels]` logits (the score for regression).
    pub logits: Vec<f32>,
    /// `[hidden]` the encoder's summary state (BERT: the last hidden state of `[CLS]`; GPT: the
    /// last token's), when asked for.
    pub hidden: Option<Vec<f32>>,
    /// `[vocab_size]` language-model logits at the summary position (GPT), when asked for.
    pub lm_logits: Option<Vec<f32>>,
}

impl Prediction {
    /// One JSON line, `{"logits":[...]}` with `"hidden":[...]` and `"lm_logits":[...]` when
    /// present; floats are written in the shortest form that reads back as the same `f32`
    /// (non-finite as `null`).
    pub fn to_json_line(&self) -> String {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            logits: &'a [f32],
            #[serde(skip_serializing_if = "Option::is_none")]
            hidden: Option<&'a [f32]>,
            #[serde(skip_serializing_if = "Option::is_none")]
            lm_logits: Option<&'a [f32]>,
        }
        let line = Line {
            logits: &self.logits,
            hidden: self.hidden.as_deref(),
            lm_logits: self.lm_logits.as_deref(),
        };
        // Serializing slices of f32 into a string cannot fail.
        serde_json::to_string(&line).unwrap_or_default()
    }
}

/// Parses one line of a JSON-lines input (`line` is 1-based, for messages).
pub fn parse_record(path: &Path, line: usize, text: &str) -> Result<PredictRecord, PredictError> {
    let value: Value = serde_json::from_str(text).map_err(|e| PredictError::Json {
        path: path.to_path_buf(),
        line,
        message: e.to_string(),
    })?;
    let Value::Object(object) = value else {
        return Err(PredictError::Json {
            path: path.to_path_buf(),
            line,
            message: format!("found {}", kind(&value)),
        });
    };
    let field_error = |field: &'static str, message: String| PredictError::Field {
        path: path.to_path_buf(),
        line,
        field,
        message,
    };
    let text_a = match object.get("text_a") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(field_error(
                "text_a",
                format!("expected a string, found {}", kind(other)),
            ));
        }
        None => return Err(field_error("text_a", "missing".to_owned())),
    };
    let text_b = match object.get("text_b") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(field_error(
                "text_b",
                format!("expected a string or null, found {}", kind(other)),
            ));
        }
    };
    Ok(PredictRecord { text_a, text_b })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads a JSON-lines file of records; blank lines are skipped.
pub fn read_jsonl(path: impl AsRef<Path>) -> Result<Vec<PredictRecord>, PredictError> {
    Ok(read_jsonl_numbered(path)?
        .into_iter()
        .map(|(_, record)| record)
        .collect())
}

/// As [`read_jsonl`], each record with its 1-based line number.
pub fn read_jsonl_numbered(
    path: impl AsRef<Path>,
) -> Result<Vec<(usize, PredictRecord)>, PredictError> {
    let path = path.as_ref();
    let io = |source| PredictError::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(io)?);
    let mut records = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        records.push((i + 1, parse_record(path, i + 1, &line)?));
    }
    Ok(records)
}

/// A loaded model, the head it predicts with, its tokenizer and the device it runs on.
#[derive(Debug)]
pub struct Predictor {
    carried: Carried,
    head: usize,
    tokenizer: Tokenizer,
    device: Device,
    options: PredictOptions,
}

/// A JSON file if it exists and parses; `None` otherwise (for optional metadata).
fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The head size a Hugging Face `config.json` declares (`id2label`, else `num_labels`).
fn hf_num_labels(config: &Path) -> Option<usize> {
    let value = read_json(config)?;
    if let Some(labels) = value.get("id2label").and_then(Value::as_object) {
        return Some(labels.len());
    }
    value
        .get("num_labels")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
}

/// A head of `n` unnamed outputs (a checkpoint that names no labels).
fn unnamed_head(n: usize) -> HeadInfo {
    HeadInfo {
        task: String::new(),
        labels: (0..n).map(|i| format!("LABEL_{i}")).collect(),
        regression: n == 1,
        pair: Default::default(),
    }
}

/// A `BertForSequenceClassification` as a one-head [`TaskModel`].
fn from_bert_classifier(model: BertForSequenceClassification, config: EncoderConfig) -> Carried {
    let n = model.num_labels();
    Carried {
        model: TaskModel {
            encoder: Encoder::Bert(model.bert),
            dropout: model.dropout,
            heads: vec![TaskHead {
                classifier: model.classifier,
                pair: Default::default(),
            }],
        },
        meta: ModelMeta::new(config, vec![unnamed_head(n)]),
    }
}

fn check_num_labels(want: Option<usize>, have: usize, file: &Path) -> Result<(), PredictError> {
    match want {
        Some(n) if n != have => Err(PredictError::Options(format!(
            "{} has a head of {have} labels, not {n}",
            file.display()
        ))),
        _ => Ok(()),
    }
}

/// The model of a directory, with the head to predict with and what its checkpoint lacked.
/// The head `task` names, else the only one.
fn pick_head(meta: &ModelMeta, task: Option<&str>, dir: &Path) -> Result<usize, PredictError> {
    match task {
        Some(task) => meta.head_for(task).map_err(PredictError::Options),
        None if meta.heads.len() == 1 => Ok(0),
        None => Err(PredictError::Options(format!(
            "{} has {} heads: name one with --task ({})",
            dir.display(),
            meta.heads.len(),
            meta.heads
                .iter()
                .map(|h| h.task.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The base model of `dir` with the module directory `adapter` attached.
fn load_with_adapter(
    dir: &Path,
    adapter: &Path,
    options: &PredictOptions,
    device: &Device,
) -> Result<(Carried, usize, LoadReport), PredictError> {
    let base_options = PredictOptions {
        task: None,
        num_labels: None,
        adapter: None,
        ..options.clone()
    };
    let (base, _, _) = load_any(dir, &base_options, device)?;
    let saved = |e| PredictError::Saved {
        dir: adapter.to_path_buf(),
        source: Box::new(e),
    };
    let carried = attach_adapter(base, adapter, device).map_err(saved)?;
    let head = pick_head(&carried.meta, options.task.as_deref(), adapter)?;
    let heads_file = if is_peft_dir(adapter) {
        dir.join("config.json")
    } else {
        adapter.join(ADAPTER_META_FILE)
    };
    check_num_labels(
        options.num_labels,
        carried.meta.heads[head].outputs(),
        &heads_file,
    )?;
    Ok((carried, head, LoadReport::default()))
}

fn load_any(
    dir: &Path,
    options: &PredictOptions,
    device: &Device,
) -> Result<(Carried, usize, LoadReport), PredictError> {
    if dir.join(META_FILE).is_file() {
        let carried = load_model(dir, device).map_err(|e| PredictError::Saved {
            dir: dir.to_path_buf(),
            source: Box::new(e),
        })?;
        let head = pick_head(&carried.meta, options.task.as_deref(), dir)?;
        let file = dir.join(META_FILE);
        check_num_labels(
            options.num_labels,
            carried.meta.heads[head].outputs(),
            &file,
        )?;
        return Ok((carried, head, LoadReport::default()));
    }
    if dir.join(CONFIG_FILE).is_file() {
        let (model, config) = BertForSequenceClassification::load_checkpoint(dir, device)?;
        check_num_labels(
            options.num_labels,
            config.num_labels,
            &dir.join(CONFIG_FILE),
        )?;
        let carried = from_bert_classifier(model, EncoderConfig::Bert(config.bert));
        return Ok((carried, 0, LoadReport::default()));
    }
    let config_path = dir.join("config.json");
    let num_labels = options
        .num_labels
        .or_else(|| hf_num_labels(&config_path))
        .unwrap_or(2);
    let config = EncoderConfig::from_hf_dir(dir)?;
    match config.kind() {
        EncoderKind::Bert => {
            let (model, report) =
                BertForSequenceClassification::from_pretrained(dir, num_labels, device)?;
            Ok((from_bert_classifier(model, config), 0, report))
        }
        EncoderKind::Gpt | EncoderKind::Elmo => {
            // Hugging Face and released ELMo have no head of ours: a fresh one, reported as such.
            let (encoder, mut report) = Encoder::from_hf_dir(dir, &config, device)?;
            let head = unnamed_head(num_labels);
            let task_head = TaskHead::new(
                &head,
                config.hidden_size(),
                config.initializer_range(),
                device,
            );
            report
                .initialized
                .extend(["classifier.weight", "classifier.bias"].map(str::to_owned));
            let carried = Carried {
                model: TaskModel {
                    encoder,
                    dropout: burn::nn::DropoutConfig::new(config.classifier_dropout()).init(),
                    heads: vec![task_head],
                },
                meta: ModelMeta::new(config, vec![head]),
            };
            Ok((carried, 0, report))
        }
    }
}

/// The tokenizer of a model directory (or, for a classifier checkpoint saved inside a stilts
/// model directory, of the directory above), its padding off.
pub fn load_tokenizer(dir: &Path) -> Result<Tokenizer, PredictError> {
    let searched_parent = dir.join(CONFIG_FILE).is_file();
    let files = TokenizerFiles::find(dir)
        .or_else(|| {
            searched_parent
                .then(|| dir.parent().and_then(TokenizerFiles::find))
                .flatten()
        })
        .ok_or_else(|| PredictError::NoTokenizer {
            dir: dir.to_path_buf(),
            searched_parent,
        })?;
    Ok(Tokenizer::load(&files)?)
}

impl Predictor {
    /// Loads the model and tokenizer of `dir` onto `device`. The report lists what the
    /// checkpoint lacked (a fresh head gives arbitrary logits: callers should say so).
    pub fn load(
        dir: &Path,
        options: &PredictOptions,
        device: &Device,
    ) -> Result<(Self, LoadReport), PredictError> {
        if options.batch_size == 0 {
            return Err(PredictError::Options(
                "batch size must be positive".to_owned(),
            ));
        }
        if options.num_labels == Some(0) {
            return Err(PredictError::Options(
                "num_labels must be positive".to_owned(),
            ));
        }
        let (mut carried, head, report) = match &options.adapter {
            Some(adapter) => load_with_adapter(dir, adapter, options, device)?,
            None => load_any(dir, options, device)?,
        };
        let max_seq_len = options
            .max_seq_len
            .or(carried.meta.max_seq_len)
            .unwrap_or(DEFAULT_MAX_SEQ_LEN.min(carried.meta.encoder.max_positions()));
        check_max_seq_len(&carried.meta.encoder, max_seq_len).map_err(PredictError::Options)?;
        let mut tokenizer = load_tokenizer(dir)?.with_max_seq_len(max_seq_len)?;
        if !options.special_tokens {
            tokenizer = tokenizer.without_special_tokens();
        }
        // A released GPT gets rows for the fine-tuning tokens (random: only a model saved by
        // stilts has trained ones).
        let ids = stilts_data::encoding::InputEncoder::vocab_size(&tokenizer);
        let (encoder, config) = carried
            .model
            .encoder
            .fit_vocab(carried.meta.encoder.clone(), ids, device)
            .map_err(|m| PredictError::Options(format!("{}: {m}", dir.display())))?;
        carried.model.encoder = encoder;
        carried.meta.encoder = config;
        let predictor = Predictor {
            carried,
            head,
            tokenizer,
            device: device.clone(),
            options: options.clone(),
        };
        Ok((predictor, report))
    }

    /// The loaded model and its metadata.
    pub fn model(&self) -> &Carried {
        &self.carried
    }

    /// The loaded model and its metadata, owned.
    pub fn into_model(self) -> Carried {
        self.carried
    }

    /// The loaded model and the tokenizer (with this predictor's `max_seq_len`), owned.
    pub fn into_parts(self) -> (Carried, Tokenizer) {
        (self.carried, self.tokenizer)
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The tokenizer (with this predictor's `max_seq_len`).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Predicts every record, in order, in batches of [`PredictOptions::batch_size`].
    pub fn predict(&self, records: &[PredictRecord]) -> Result<Vec<Prediction>, PredictError> {
        let mut out = Vec::with_capacity(records.len());
        for chunk in records.chunks(self.options.batch_size) {
            out.extend(self.predict_batch(chunk)?);
        }
        Ok(out)
    }

    /// Predicts one batch (padded to its longest row).
    pub fn predict_batch(
        &self,
        records: &[PredictRecord],
    ) -> Result<Vec<Prediction>, PredictError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let pairs: Vec<(&str, Option<&str>)> = records
            .iter()
            .map(|r| (r.text_a.as_str(), r.text_b.as_deref()))
            .collect();
        let pair = self.carried.meta.heads[self.head].pair;
        let views = self.tokenizer.encode_views(&pairs, pair)?;
        let inputs = collate_views(&self.tokenizer, &views, &self.device, false);
        // Dropout is off outside autodiff.
        let out = self.carried.model.forward(inputs, self.head);
        let logits = rows(out.logits)?; // [batch, num_labels]
        let lm = if self.options.lm_logits {
            let lm = self.carried.model.encoder.lm_logits(out.summary.clone());
            let lm = lm.ok_or_else(|| {
                PredictError::Options(format!(
                    "the {} encoder has no language-model head",
                    self.carried.meta.encoder.kind()
                ))
            })?;
            Some(rows(lm)?) // [batch, vocab_size]
        } else {
            None
        };
        let hidden = if self.options.hidden {
            Some(rows(out.summary)?) // [batch, hidden]
        } else {
            None
        };
        let mut hidden = hidden.map(Vec::into_iter);
        let mut lm = lm.map(Vec::into_iter);
        Ok(logits
            .into_iter()
            .map(|logits| Prediction {
                logits,
                hidden: hidden.as_mut().and_then(Iterator::next),
                lm_logits: lm.as_mut().and_then(Iterator::next),
            })
            .collect())
    }
}

/// The rows of a `[batch, width]` tensor as `f32` vectors.
fn rows(tensor: Tensor<2>) -> Result<Vec<Vec<f32>>, PredictError> {
    let [_, width] = tensor.dims();
    let values = tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| PredictError::Output(format!("{e:?}")))?;
    Ok(values.chunks(width.max(1)).map(<[f32]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_errors_name_line_and_field() {
        let path = Path::new("in.jsonl");
        assert_eq!(
            parse_record(path, 1, r#"{"text_a": "a", "text_b": null, "label": 1}"#).unwrap(),
            PredictRecord {
                text_a: "a".into(),
                text_b: None
            }
        );
        assert_eq!(
            parse_record(path, 1, r#"{"text_a": "a", "text_b": "b"}"#)
                .unwrap()
                .text_b
                .as_deref(),
            Some("b")
        );
        let err = parse_record(path, 7, r#"{"text_b": "b"}"#).unwrap_err();
        assert_eq!(err.to_string(), "in.jsonl:7: field `text_a`: missing");
        let err = parse_record(path, 3, r#"{"text_a": "a", "text_b": 5}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.jsonl:3: field `text_b`: expected a string or null, found a number"
        );
        let err = parse_record(path, 2, r#"["text_a"]"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.jsonl:2: not a JSON object: found an array"
        );
        let err = parse_record(path, 9, "{oops").unwrap_err();
        assert!(
            err.to_string().starts_with("in.jsonl:9: not a JSON object"),
            "{err}"
        );
    }

    #[test]
    fn prediction_json() {
        let p = Prediction {
            logits: vec![0.1, -1.25],
            hidden: Some(vec![1.0, f32::NAN]),
            lm_logits: None,
        };
        assert_eq!(
            p.to_json_line(),
            r#"{"logits":[0.1,-1.25],"hidden":[1.0,null]}"#
        );
        let p = Prediction {
            logits: vec![2.0],
            hidden: None,
            lm_logits: None,
        };
        assert_eq!(p.to_json_line(), r#"{"logits":[2.0]}"#);
    }
}
