use std::path::Path;

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// The activation of GPT's feed-forward block.
///
/// `transformers`' `modeling_openai.py` maps `config.json`'s `afn = "gelu"` to its
/// `NewGELUActivation`, the tanh approximation (checked against transformers 5.25), which is also
/// what OpenAI's original code computes; so both loaders pick [`GptActivation::GeluTanh`] for
/// `"gelu"`. The exact (erf) form is available as `"gelu_erf"` for configurations that ask for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GptActivation {
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    GeluTanh,
    /// `x Phi(x)`, with the error function.
    GeluErf,
    /// `max(0, x)`.
    Relu,
    /// `x sigmoid(x)` (`silu`, `swish`).
    Silu,
}

impl GptActivation {
    /// The activation a Hugging Face `afn` names, as `modeling_openai.py`'s `ACT_FNS` maps it.
    pub fn from_hf(afn: &str) -> Option<GptActivation> {
        match afn {
            "gelu" | "gelu_new" | "gelu_pytorch_tanh" => Some(GptActivation::GeluTanh),
            "gelu_erf" => Some(GptActivation::GeluErf),
            "relu" => Some(GptActivation::Relu),
            "silu" | "swish" => Some(GptActivation::Silu),
            _ => None,
        }
    }
}

/// Hyper-parameters of an OpenAI GPT, named as in Hugging Face's `OpenAIGPTConfig`. Any size
/// works. `vocab_size` counts every id the token embeddings cover, the fine-tuning tokens
/// included once they are appended ([`super::GptModel::extend_vocab`]).
// transformers/models/openai/configuration_openai.py: OpenAIGPTConfig
#[derive(Config, Debug, PartialEq)]
pub struct GptConfig {
    /// Number of token ids.
    pub vocab_size: usize,
    /// Longest sequence the position embeddings cover.
    #[config(default = 512)]
    pub n_positions: usize,
    /// Width of every hidden state.
    #[config(default = 768)]
    pub n_embd: usize,
    /// Number of blocks.
    #[config(default = 12)]
    pub n_layer: usize,
    /// Number of attention heads; must divide `n_embd`.
    #[config(default = 12)]
    pub n_head: usize,
    /// The feed-forward activation.
    #[config(default = "GptActivation::GeluTanh")]
    pub afn: GptActivation,
    /// Dropout on every residual branch.
    #[config(default = 0.1)]
    pub resid_pdrop: f64,
    /// Dropout on the embeddings.
    #[config(default = 0.1)]
    pub embd_pdrop: f64,
    /// Dropout on attention probabilities.
    #[config(default = 0.1)]
    pub attn_pdrop: f64,
    /// Epsilon of every LayerNorm.
    #[config(default = 1e-5)]
    pub layer_norm_epsilon: f64,
    /// Standard deviation of the normal initialiser of fresh weights.
    #[config(default = 0.02)]
    pub initializer_range: f64,
}

#[derive(Deserialize)]
struct HfGptConfig {
    #[serde(default = "default_vocab")]
    vocab_size: usize,
    #[serde(default = "default_positions")]
    n_positions: usize,
    #[serde(default = "default_embd")]
    n_embd: usize,
    #[serde(default = "default_layers")]
    n_layer: usize,
    #[serde(default = "default_layers")]
    n_head: usize,
    #[serde(default = "default_afn")]
    afn: String,
    #[serde(default = "default_dropout")]
    resid_pdrop: f64,
    #[serde(default = "default_dropout")]
    embd_pdrop: f64,
    #[serde(default = "default_dropout")]
    attn_pdrop: f64,
    #[serde(default = "default_eps")]
    layer_norm_epsilon: f64,
    #[serde(default = "default_init")]
    initializer_range: f64,
}

fn default_vocab() -> usize {
    40478
}
fn default_positions() -> usize {
    512
}
fn default_embd() -> usize {
    768
}
fn default_layers() -> usize {
    12
}
fn default_afn() -> String {
    "gelu".to_owned()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_eps() -> f64 {
    1e-5
}
fn default_init() -> f64 {
    0.02
}

impl GptConfig {
    /// Reads a Hugging Face `config.json` of an `openai-gpt` model (missing fields take
    /// `OpenAIGPTConfig`'s defaults). An activation `modeling_openai.py` does not know is
    /// [`ModelError::UnsupportedConfig`].
    pub fn from_hf_file(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let hf: HfGptConfig = crate::error::read_json(path)?;
        let afn = GptActivation::from_hf(&hf.afn).ok_or_else(|| ModelError::UnsupportedConfig {
            path: path.to_path_buf(),
            message: format!(
                "afn `{}`: expected gelu (the tanh form, as transformers computes it), gelu_erf, relu, silu or swish",
                hf.afn
            ),
        })?;
        let config = GptConfig {
            vocab_size: hf.vocab_size,
            n_positions: hf.n_positions,
            n_embd: hf.n_embd,
            n_layer: hf.n_layer,
            n_head: hf.n_head,
            afn,
            resid_pdrop: hf.resid_pdrop,
            embd_pdrop: hf.embd_pdrop,
            attn_pdrop: hf.attn_pdrop,
            layer_norm_epsilon: hf.layer_norm_epsilon,
            initializer_range: hf.initializer_range,
        };
        config
            .validate()
            .map_err(|message| ModelError::UnsupportedConfig {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(config)
    }

    /// Checks the sizes are positive and consistent and the probabilities in `[0, 1)`.
    pub fn validate(&self) -> Result<(), String> {
        crate::encoder::check_layers("n_layer", self.n_layer)?;
        crate::encoder::validate_transformer(
            &[
                ("vocab_size", self.vocab_size),
                ("n_positions", self.n_positions),
                ("n_embd", self.n_embd),
                ("n_layer", self.n_layer),
                ("n_head", self.n_head),
            ],
            ("n_embd", self.n_embd),
            ("n_head", self.n_head),
            &[
                ("resid_pdrop", self.resid_pdrop),
                ("embd_pdrop", self.embd_pdrop),
                ("attn_pdrop", self.attn_pdrop),
            ],
            ("layer_norm_epsilon", self.layer_norm_epsilon),
        )?;
        if !(self.initializer_range.is_finite() && self.initializer_range >= 0.0) {
            return Err("initializer_range must be finite and non-negative".into());
        }
        Ok(())
    }
}
