//! Inference with a BERT sequence classifier over JSON lines, for `stilts predict`.
//!
//! Each input line is an object with a string `text_a` and an optional string (or `null`)
//! `text_b`; other fields are ignored. Each prediction holds the logits (the regression score
//! when `num_labels == 1`) and, on request, the last hidden state of the `[CLS]` token.
//!
//! The model directory is a Hugging Face BERT directory (`config.json`, `model.safetensors` or
//! `pytorch_model.bin`, and `tokenizer.json` or `vocab.txt`) or a checkpoint saved by
//! [`BertForSequenceClassification::save_checkpoint`] (`stilts-bert.json`) with a tokenizer
//! beside it. Batches are padded to their longest row (a `tokenizer.json`'s own padding to a
//! fixed length is switched off), so results do not depend on the batch size.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use stilts_train::predict::{PredictOptions, Predictor, read_jsonl};
//! # fn main() -> Result<(), stilts_train::predict::PredictError> {
//! let (predictor, _report) =
//!     Predictor::load("models/all-MiniLM-L6-v2", &PredictOptions::default(), &Device::flex())?;
//! let records = read_jsonl("pairs.jsonl")?;
//! for prediction in predictor.predict(&records)? {
//!     println!("{}", prediction.to_json_line());
//! }
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::Value;
use stilts_data::tokenize::{BertTokenizer, Casing, EncodeOptions, Padding, TokenizeError};
use stilts_models::ModelError;
use stilts_models::bert::{
    BertClassifierConfig, BertForSequenceClassification, BertInput, CONFIG_FILE, LoadReport,
};

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
    /// The model directory has no `tokenizer.json` or `vocab.txt`.
    #[error("{}: no tokenizer.json or vocab.txt beside the model", dir.display())]
    NoTokenizer {
        /// The model directory.
        dir: PathBuf,
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
    /// Outputs of the head; `None` takes the model's own (`stilts-bert.json`, or
    /// `id2label`/`num_labels` of `config.json`), else 2.
    pub num_labels: Option<usize>,
    /// Most tokens per example, special tokens included (pairs are cut as BERT does).
    pub max_seq_len: usize,
    /// Examples per forward pass.
    pub batch_size: usize,
    /// Also return the `[CLS]` hidden state.
    pub hidden: bool,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            num_labels: None,
            max_seq_len: 128,
            batch_size: 32,
            hidden: false,
        }
    }
}

/// The output for one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// `[num_labels]` logits (the score for regression).
    pub logits: Vec<f32>,
    /// `[hidden]` last hidden state of `[CLS]`, when asked for.
    pub hidden: Option<Vec<f32>>,
}

impl Prediction {
    /// One JSON line, `{"logits":[...]}` with `"hidden":[...]` when present; floats are
    /// written in the shortest form that reads back as the same `f32` (non-finite as `null`).
    pub fn to_json_line(&self) -> String {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            logits: &'a [f32],
            #[serde(skip_serializing_if = "Option::is_none")]
            hidden: Option<&'a [f32]>,
        }
        let line = Line {
            logits: &self.logits,
            hidden: self.hidden.as_deref(),
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
        records.push(parse_record(path, i + 1, &line)?);
    }
    Ok(records)
}

/// A loaded classifier, its tokenizer and the device it runs on.
#[derive(Debug)]
pub struct Predictor {
    model: BertForSequenceClassification,
    tokenizer: BertTokenizer,
    device: Device,
    options: PredictOptions,
}

/// The tokenizer of a model directory: `tokenizer.json` when present (its padding and
/// truncation off), else `vocab.txt` with the casing of `tokenizer_config.json`'s
/// `do_lower_case`, or guessed from the vocabulary.
pub fn load_tokenizer(dir: &Path, max_seq_len: usize) -> Result<BertTokenizer, PredictError> {
    let json = dir.join("tokenizer.json");
    let vocab = dir.join("vocab.txt");
    let tokenizer = if json.is_file() {
        BertTokenizer::from_tokenizer_json(&json)?
    } else if vocab.is_file() {
        let casing = match read_json(&dir.join("tokenizer_config.json"))
            .and_then(|c| c.get("do_lower_case").and_then(Value::as_bool))
        {
            Some(true) => Casing::Uncased,
            Some(false) => Casing::Cased,
            None => Casing::guess_from_vocab(&vocab)?,
        };
        BertTokenizer::from_vocab(&vocab, casing)?
    } else {
        return Err(PredictError::NoTokenizer {
            dir: dir.to_path_buf(),
        });
    };
    Ok(tokenizer.with_options(EncodeOptions {
        max_seq_len,
        padding: Padding::Longest,
        ..EncodeOptions::default()
    })?)
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

impl Predictor {
    /// Loads the model and tokenizer of `dir` onto `device`. The report lists what the
    /// checkpoint lacked (a fresh head gives arbitrary logits: callers should say so).
    pub fn load(
        dir: impl AsRef<Path>,
        options: &PredictOptions,
        device: &Device,
    ) -> Result<(Self, LoadReport), PredictError> {
        let dir = dir.as_ref();
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
        let (model, config, report) = if dir.join(CONFIG_FILE).is_file() {
            let (model, config) = BertForSequenceClassification::load_checkpoint(dir, device)?;
            if let Some(n) = options.num_labels
                && n != config.num_labels
            {
                return Err(PredictError::Options(format!(
                    "{} has a head of {} labels, not {n}",
                    dir.join(CONFIG_FILE).display(),
                    config.num_labels
                )));
            }
            (model, config, LoadReport::default())
        } else {
            let config_path = dir.join("config.json");
            let num_labels = options
                .num_labels
                .or_else(|| hf_num_labels(&config_path))
                .unwrap_or(2);
            let config = BertClassifierConfig::from_hf_file(&config_path, num_labels)?;
            let (model, report) =
                BertForSequenceClassification::from_pretrained(dir, num_labels, device)?;
            (model, config, report)
        };
        let positions = config.bert.max_position_embeddings;
        if options.max_seq_len > positions {
            return Err(PredictError::Options(format!(
                "max_seq_len {} exceeds the model's max_position_embeddings {positions}",
                options.max_seq_len
            )));
        }
        let tokenizer = load_tokenizer(dir, options.max_seq_len)?;
        let vocab = config.bert.vocab_size;
        if tokenizer.vocab_size() > vocab {
            return Err(PredictError::Options(format!(
                "the tokenizer of {} has {} ids but the model only {vocab}",
                dir.display(),
                tokenizer.vocab_size()
            )));
        }
        let predictor = Predictor {
            model,
            tokenizer,
            device: device.clone(),
            options: options.clone(),
        };
        Ok((predictor, report))
    }

    /// The loaded model.
    pub fn model(&self) -> &BertForSequenceClassification {
        &self.model
    }

    /// The tokenizer (with this predictor's `max_seq_len`).
    pub fn tokenizer(&self) -> &BertTokenizer {
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
        let batch = self.tokenizer.encode_batch(&pairs)?;
        let shape = [batch.batch_size, batch.seq_len];
        let tensor = |values: Vec<i64>| {
            Tensor::<2, Int>::from_data(TensorData::new(values, shape), &self.device)
        };
        let input = BertInput::new(
            tensor(batch.input_ids_i64()),
            tensor(batch.token_type_ids_i64()),
            tensor(batch.attention_mask_i64()),
        );
        let out = self.model.bert.forward(input);
        // As `BertForSequenceClassification::forward`; dropout is off outside autodiff.
        let logits = self.model.classifier.forward(out.pooled_output); // [batch, num_labels]
        let logits = rows(logits)?;
        let hidden = if self.options.hidden {
            let [b, _, width] = out.last_hidden_state.dims();
            let cls = out.last_hidden_state.narrow(1, 0, 1).reshape([b, width]); // [batch, hidden]
            Some(rows(cls)?)
        } else {
            None
        };
        let mut hidden = hidden.map(Vec::into_iter);
        Ok(logits
            .into_iter()
            .map(|logits| Prediction {
                logits,
                hidden: hidden.as_mut().and_then(Iterator::next),
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
        };
        assert_eq!(
            p.to_json_line(),
            r#"{"logits":[0.1,-1.25],"hidden":[1.0,null]}"#
        );
        let p = Prediction {
            logits: vec![2.0],
            hidden: None,
        };
        assert_eq!(p.to_json_line(), r#"{"logits":[2.0]}"#);
    }
}
