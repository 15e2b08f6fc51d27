use std::path::Path;

use burn::config::Config;
use serde::Deserialize;

use crate::ModelError;

/// Hyper-parameters of a BERT encoder, named as in Hugging Face's `BertConfig`.
///
/// Any size works: bert-base/large, MiniLM-style small models, tiny test models.
// transformers/models/bert/configuration_bert.py: BertConfig
#[derive(Config, Debug, PartialEq)]
pub struct BertConfig {
    /// Number of word-piece ids.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads; must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Longest sequence the position embeddings cover.
    #[config(default = 512)]
    pub max_position_embeddings: usize,
    /// Number of segment (token type) ids.
    #[config(default = 2)]
    pub type_vocab_size: usize,
    /// Dropout on embeddings and on every sub-layer output.
    #[config(default = 0.1)]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    #[config(default = 0.1)]
    pub attention_probs_dropout_prob: f64,
    /// Epsilon of every LayerNorm.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
    /// Standard deviation of the normal initialiser of fresh weights.
    #[config(default = 0.02)]
    pub initializer_range: f64,
}

/// A BERT encoder with a sequence-level head: classification over `num_labels` classes, or
/// regression when `num_labels == 1` (as Hugging Face decides for STS-B).
// transformers/models/bert/modeling_bert.py: BertForSequenceClassification (config part)
#[derive(Config, Debug, PartialEq)]
pub struct BertClassifierConfig {
    /// The encoder.
    pub bert: BertConfig,
    /// Number of outputs of the head; 1 means regression with a mean squared error loss.
    pub num_labels: usize,
    /// Dropout before the head; `None` means `bert.hidden_dropout_prob`.
    #[config(default = "None")]
    pub classifier_dropout: Option<f64>,
}

#[derive(Deserialize)]
struct HfBertConfig {
    #[serde(default)]
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default = "default_dropout")]
    hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    attention_probs_dropout_prob: f64,
    #[serde(default = "default_positions")]
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_init")]
    initializer_range: f64,
    #[serde(default)]
    position_embedding_type: Option<String>,
    #[serde(default)]
    is_decoder: bool,
    #[serde(default)]
    add_cross_attention: bool,
    #[serde(default)]
    classifier_dropout: Option<f64>,
}

fn default_act() -> String {
    "gelu".to_owned()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_positions() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_init() -> f64 {
    0.02
}

impl BertConfig {
    /// Reads a Hugging Face `config.json` (or Google's original `bert_config.json`).
    ///
    /// Missing optional fields take Hugging Face's defaults (`layer_norm_eps` 1e-12, ...).
    /// Returns [`ModelError::UnsupportedConfig`] for features this port does not implement:
    /// activations other than exact `gelu`, relative position embeddings, decoders.
    pub fn from_hf_file(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        Ok(read_hf(path.as_ref())?.0)
    }

    /// Checks the sizes are positive and consistent.
    pub fn validate(&self) -> Result<(), String> {
        crate::encoder::check_layers("num_hidden_layers", self.num_hidden_layers)?;
        crate::encoder::validate_transformer(
            &[
                ("vocab_size", self.vocab_size),
                ("hidden_size", self.hidden_size),
                ("num_attention_heads", self.num_attention_heads),
                ("intermediate_size", self.intermediate_size),
                ("max_position_embeddings", self.max_position_embeddings),
                ("type_vocab_size", self.type_vocab_size),
            ],
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            &[
                ("hidden_dropout_prob", self.hidden_dropout_prob),
                (
                    "attention_probs_dropout_prob",
                    self.attention_probs_dropout_prob,
                ),
            ],
            ("layer_norm_eps", self.layer_norm_eps),
        )?;
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

impl BertClassifierConfig {
    /// Reads a Hugging Face `config.json` and adds a head with `num_labels` outputs.
    ///
    /// `classifier_dropout` is taken from the file when it sets one.
    pub fn from_hf_file(path: impl AsRef<Path>, num_labels: usize) -> Result<Self, ModelError> {
        let path = path.as_ref();
        if num_labels == 0 {
            return Err(ModelError::UnsupportedConfig {
                path: path.to_path_buf(),
                message: "num_labels must be positive".to_owned(),
            });
        }
        let (bert, classifier_dropout) = read_hf(path)?;
        Ok(Self {
            bert,
            num_labels,
            classifier_dropout,
        })
    }

    /// Reads our own JSON form of this configuration (as written by [`Self::save_json`]).
    pub fn load_json(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let config: Self = crate::error::read_json(path)?;
        config
            .validate()
            .map_err(|message| ModelError::UnsupportedConfig {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(config)
    }

    /// Writes this configuration as pretty JSON.
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(self).map_err(|source| ModelError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        std::fs::write(path, text).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Checks the encoder sizes and the head.
    pub fn validate(&self) -> Result<(), String> {
        self.bert.validate()?;
        if self.num_labels == 0 {
            return Err("num_labels must be positive".to_owned());
        }
        if let Some(p) = self.classifier_dropout
            && !(0.0..1.0).contains(&p)
        {
            return Err(format!("classifier_dropout must be in [0, 1), got {p}"));
        }
        Ok(())
    }
}

fn read_hf(path: &Path) -> Result<(BertConfig, Option<f64>), ModelError> {
    let hf: HfBertConfig = crate::error::read_json(path)?;
    let unsupported = |message: String| ModelError::UnsupportedConfig {
        path: path.to_path_buf(),
        message,
    };
    if let Some(model_type) = &hf.model_type
        && model_type != "bert"
    {
        return Err(unsupported(format!(
            "model_type {model_type:?} is not \"bert\""
        )));
    }
    if hf.hidden_act != "gelu" {
        return Err(unsupported(format!(
            "hidden_act {:?}: only exact (erf) \"gelu\" is implemented",
            hf.hidden_act
        )));
    }
    if let Some(kind) = &hf.position_embedding_type
        && kind != "absolute"
    {
        return Err(unsupported(format!(
            "position_embedding_type {kind:?}: only \"absolute\" is implemented"
        )));
    }
    if hf.is_decoder || hf.add_cross_attention {
        return Err(unsupported(
            "decoder and cross-attention BERT are not implemented".to_owned(),
        ));
    }
    let config = BertConfig {
        vocab_size: hf.vocab_size,
        hidden_size: hf.hidden_size,
        num_hidden_layers: hf.num_hidden_layers,
        num_attention_heads: hf.num_attention_heads,
        intermediate_size: hf.intermediate_size,
        max_position_embeddings: hf.max_position_embeddings,
        type_vocab_size: hf.type_vocab_size,
        hidden_dropout_prob: hf.hidden_dropout_prob,
        attention_probs_dropout_prob: hf.attention_probs_dropout_prob,
        layer_norm_eps: hf.layer_norm_eps,
        initializer_range: hf.initializer_range,
    };
    config.validate().map_err(unsupported)?;
    if let Some(p) = hf.classifier_dropout
        && !(0.0..1.0).contains(&p)
    {
        return Err(unsupported(format!(
            "classifier_dropout must be in [0, 1), got {p}"
        )));
    }
    Ok((config, hf.classifier_dropout))
}
