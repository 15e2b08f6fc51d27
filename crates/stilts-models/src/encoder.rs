//! The seam between the encoders and everything that trains them.
//!
//! Every encoder family (BERT today; OpenAI GPT and ELMo are the paper's other two) implements
//! [`SentenceEncoder`]: it maps an [`EncoderInput`] to an [`EncoderOutput`] (a per-example
//! representation for task heads, the per-token states, an optional auxiliary loss), owns its
//! dropout settings, and names the parameter groups that can be frozen. [`Encoder`] is the
//! closed set of families as one burn module, and [`EncoderConfig`] its configuration, tagged
//! by [`EncoderKind`] (`encoder = "bert"`) wherever it is saved.
//!
//! Why an enum and not a boxed trait object: burn's `Module` is not object safe (its visitors
//! and mappers are generic), a saved model must name a closed set of parameter layouts, and an
//! enum with `#[derive(Module)]` gives one concrete type for checkpoints, optimizers and
//! `fork`/`valid`, with each family's code in its own module behind the trait. A new family is
//! a variant here and an implementation of the trait in its module.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::bert::{BertConfig, BertModel, LoadReport};

/// An encoder family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderKind {
    /// BERT (Devlin et al. 2019) and BERT-shaped models (MiniLM, ...).
    Bert,
}

impl EncoderKind {
    /// Every family, in the order of the paper's tables.
    pub const ALL: [EncoderKind; 1] = [EncoderKind::Bert];

    /// The name used in files and on the command line (`bert`).
    pub fn name(self) -> &'static str {
        match self {
            EncoderKind::Bert => "bert",
        }
    }

    /// The family of a Hugging Face `config.json` `model_type`.
    pub fn from_model_type(model_type: &str) -> Option<EncoderKind> {
        match model_type {
            "bert" => Some(EncoderKind::Bert),
            _ => None,
        }
    }
}

impl fmt::Display for EncoderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EncoderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EncoderKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = EncoderKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown encoder `{s}` (encoders: {})", names.join(", "))
            })
    }
}

/// The input of any encoder: token ids, segment ids (zeros where a family has none) and the
/// padding mask.
#[derive(Debug, Clone)]
pub struct EncoderInput {
    /// Token ids, `[batch, seq]`.
    pub input_ids: Tensor<2, Int>,
    /// Segment ids, `[batch, seq]`.
    pub token_type_ids: Tensor<2, Int>,
    /// 1 for tokens, 0 for padding, `[batch, seq]`.
    pub attention_mask: Tensor<2, Int>,
}

/// What an encoder gives a task head.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// The per-example representation heads read, `[batch, hidden]` (BERT: the pooled `[CLS]`).
    pub pooled: Tensor<2>,
    /// The last layer's state at the summary token, before any pooling, `[batch, hidden]`
    /// (BERT: `[CLS]`): what `stilts predict --hidden` prints.
    pub summary: Tensor<2>,
    /// The last layer's per-token states, `[batch, seq, hidden]`.
    pub tokens: Tensor<3>,
    /// A loss the encoder adds to the task's in training (GPT's language model), `[1]`.
    pub aux_loss: Option<Tensor<1>>,
}

/// The contract of an encoder family.
pub trait SentenceEncoder: Module + Sized {
    /// Encodes a padded batch. Dropout is active only on an autodiff device.
    ///
    /// # Shapes
    ///
    /// - input: `[batch, seq]` each
    /// - output.pooled, output.summary: `[batch, hidden]`
    /// - output.tokens: `[batch, seq, hidden]`
    fn encode(&self, input: EncoderInput) -> EncoderOutput;

    /// Sets every dropout probability the family has.
    fn set_dropout(&mut self, p: f64);

    /// The names of the parameter groups [`SentenceEncoder::freeze_params`] takes, in module order.
    fn param_groups(&self) -> Vec<String>;

    /// Stops gradients for a group (no gradient is kept and the optimizer never updates it);
    /// `all` freezes the whole encoder. An unknown name is an error listing the groups.
    fn freeze_params(self, group: &str) -> Result<Self, String>;
}

/// The configuration of an encoder of any family. Saved as
/// `{"encoder": "bert", "config": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoder", content = "config", rename_all = "snake_case")]
pub enum EncoderConfig {
    /// A BERT encoder.
    Bert(BertConfig),
}

impl EncoderConfig {
    /// The family.
    pub fn kind(&self) -> EncoderKind {
        match self {
            EncoderConfig::Bert(_) => EncoderKind::Bert,
        }
    }

    /// Width of the representation heads read.
    pub fn hidden_size(&self) -> usize {
        match self {
            EncoderConfig::Bert(c) => c.hidden_size,
        }
    }

    /// Standard deviation of the normal initialiser of fresh weights (heads use it too).
    pub fn initializer_range(&self) -> f64 {
        match self {
            EncoderConfig::Bert(c) => c.initializer_range,
        }
    }

    /// Dropout before a task head (BERT: `hidden_dropout_prob`, as Hugging Face's
    /// `classifier_dropout` defaults to).
    pub fn classifier_dropout(&self) -> f64 {
        match self {
            EncoderConfig::Bert(c) => c.hidden_dropout_prob,
        }
    }

    /// The longest input, in tokens, the encoder can take.
    pub fn max_positions(&self) -> usize {
        match self {
            EncoderConfig::Bert(c) => c.max_position_embeddings,
        }
    }

    /// Number of token ids the embeddings cover.
    pub fn vocab_size(&self) -> usize {
        match self {
            EncoderConfig::Bert(c) => c.vocab_size,
        }
    }

    /// The same configuration with every dropout probability set to `p`.
    pub fn with_dropout(self, p: f64) -> Self {
        match self {
            EncoderConfig::Bert(c) => EncoderConfig::Bert(
                c.with_hidden_dropout_prob(p)
                    .with_attention_probs_dropout_prob(p),
            ),
        }
    }

    /// The parameter groups of an encoder of this configuration (what
    /// [`SentenceEncoder::freeze_params`] takes, besides `all`).
    pub fn param_groups(&self) -> Vec<String> {
        match self {
            EncoderConfig::Bert(c) => crate::bert::param_groups(c.num_hidden_layers),
        }
    }

    /// Checks sizes and probabilities; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            EncoderConfig::Bert(c) => c.validate(),
        }
    }

    /// A freshly initialised encoder.
    ///
    /// # Panics
    ///
    /// If [`EncoderConfig::validate`] fails.
    pub fn init(&self, device: &Device) -> Encoder {
        match self {
            EncoderConfig::Bert(c) => Encoder::Bert(c.init(device)),
        }
    }

    /// The configuration of a Hugging Face model directory, by its `config.json` `model_type`
    /// (a file without one is read as BERT, as Google's `bert_config.json` is).
    pub fn from_hf_dir(dir: &Path) -> Result<EncoderConfig, ModelError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| ModelError::Json {
                path: path.clone(),
                source,
            })?;
        let kind = match value.get("model_type").and_then(|t| t.as_str()) {
            None => EncoderKind::Bert,
            Some(t) => {
                EncoderKind::from_model_type(t).ok_or_else(|| ModelError::UnsupportedConfig {
                    path: path.clone(),
                    message: format!(
                        "model_type `{t}` is not an encoder stilts has (encoders: {})",
                        EncoderKind::ALL.map(EncoderKind::name).join(", ")
                    ),
                })?
            }
        };
        match kind {
            EncoderKind::Bert => Ok(EncoderConfig::Bert(BertConfig::from_hf_file(&path)?)),
        }
    }
}

/// An encoder of any family, as one burn module.
// The variant name is part of every parameter path (`encoder.Bert.embeddings...`).
#[derive(Module, Debug)]
pub enum Encoder {
    /// BERT.
    Bert(BertModel),
}

impl Encoder {
    /// The family.
    pub fn kind(&self) -> EncoderKind {
        match self {
            Encoder::Bert(_) => EncoderKind::Bert,
        }
    }

    /// Loads the encoder of a Hugging Face model directory (`config.json` and its weights)
    /// with the configuration `config` (read by [`EncoderConfig::from_hf_dir`], possibly with
    /// its dropout changed); a task head or pre-training head in the weights is ignored and
    /// listed in the report.
    pub fn from_hf_dir(
        dir: &Path,
        config: &EncoderConfig,
        device: &Device,
    ) -> Result<(Encoder, LoadReport), ModelError> {
        match config {
            EncoderConfig::Bert(c) => {
                let (model, report) =
                    BertModel::from_hf_weights(c, crate::bert::weights_file(dir)?, device)?;
                Ok((Encoder::Bert(model), report))
            }
        }
    }
}

impl SentenceEncoder for Encoder {
    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        match self {
            Encoder::Bert(m) => m.encode(input),
        }
    }

    fn set_dropout(&mut self, p: f64) {
        match self {
            Encoder::Bert(m) => m.set_dropout(p),
        }
    }

    fn param_groups(&self) -> Vec<String> {
        match self {
            Encoder::Bert(m) => m.param_groups(),
        }
    }

    fn freeze_params(self, group: &str) -> Result<Self, String> {
        match self {
            Encoder::Bert(m) => m.freeze_params(group).map(Encoder::Bert),
        }
    }
}
