//! The seam between the encoders and everything that trains them.
//!
//! Every encoder family (BERT, OpenAI GPT and ELMo, the paper's three) implements
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
use crate::elmo::{ElmoBiLm, ElmoConfig, ElmoEncoder};
use crate::gpt::{GptConfig, GptModel};
use crate::peft::PeftConfig;

/// An encoder family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderKind {
    /// BERT (Devlin et al. 2019) and BERT-shaped models (MiniLM, ...).
    Bert,
    /// OpenAI GPT (Radford et al. 2018).
    Gpt,
    /// ELMo (Peters et al. 2018).
    Elmo,
}

impl EncoderKind {
    /// Every family, in the order of the paper's tables.
    pub const ALL: [EncoderKind; 3] = [EncoderKind::Elmo, EncoderKind::Gpt, EncoderKind::Bert];

    /// The name used in files and on the command line (`bert`, `gpt`).
    pub fn name(self) -> &'static str {
        match self {
            EncoderKind::Bert => "bert",
            EncoderKind::Gpt => "gpt",
            EncoderKind::Elmo => "elmo",
        }
    }

    /// The family of a Hugging Face `config.json` `model_type`.
    pub fn from_model_type(model_type: &str) -> Option<EncoderKind> {
        match model_type {
            "bert" => Some(EncoderKind::Bert),
            "openai-gpt" => Some(EncoderKind::Gpt),
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
    /// 1 for tokens, 0 for padding, `[batch, seq]` (padding on the right).
    pub attention_mask: Tensor<2, Int>,
    /// Whether the encoder should compute its auxiliary loss (only families that have one do;
    /// it costs a forward pass of the language-model head).
    pub with_aux_loss: bool,
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
    /// The mask of `tokens` (1 for a token, 0 for padding), `[batch, seq]`, where it is not the
    /// input's attention mask (ELMo: its words, over a character input); `None` where it is.
    pub token_mask: Option<Tensor<2>>,
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

    /// Language-model logits of hidden states, for families with a language-model head (GPT).
    ///
    /// # Shapes
    ///
    /// - states: `[n, hidden]`
    /// - output: `[n, vocab_size]`
    fn lm_logits(&self, _states: Tensor<2>) -> Option<Tensor<2>> {
        None
    }
}

/// The configuration of an encoder of any family. Saved as
/// `{"encoder": "bert", "config": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoder", content = "config", rename_all = "snake_case")]
pub enum EncoderConfig {
    /// A BERT encoder.
    Bert(BertConfig),
    /// An OpenAI GPT.
    Gpt(GptConfig),
    /// An ELMo.
    Elmo(ElmoConfig),
}

impl EncoderConfig {
    /// The family.
    pub fn kind(&self) -> EncoderKind {
        match self {
            EncoderConfig::Bert(_) => EncoderKind::Bert,
            EncoderConfig::Gpt(_) => EncoderKind::Gpt,
            EncoderConfig::Elmo(_) => EncoderKind::Elmo,
        }
    }

    /// Width of the representation heads read.
    pub fn hidden_size(&self) -> usize {
        match self {
            EncoderConfig::Bert(c) => c.hidden_size,
            EncoderConfig::Gpt(c) => c.n_embd,
            EncoderConfig::Elmo(c) => c.pool_dim,
        }
    }

    /// Standard deviation of the normal initialiser of fresh weights (heads use it too).
    pub fn initializer_range(&self) -> f64 {
        match self {
            EncoderConfig::Bert(c) => c.initializer_range,
            EncoderConfig::Gpt(c) => c.initializer_range,
            EncoderConfig::Elmo(c) => c.initializer_range,
        }
    }

    /// Dropout before a task head (BERT: `hidden_dropout_prob`, as Hugging Face's
    /// `classifier_dropout` defaults to).
    pub fn classifier_dropout(&self) -> f64 {
        match self {
            EncoderConfig::Bert(c) => c.hidden_dropout_prob,
            EncoderConfig::Gpt(c) => c.resid_pdrop,
            EncoderConfig::Elmo(c) => c.dropout,
        }
    }

    /// The longest input, in tokens, the encoder can take.
    pub fn max_positions(&self) -> usize {
        match self {
            EncoderConfig::Bert(c) => c.max_position_embeddings,
            EncoderConfig::Gpt(c) => c.n_positions,
            // LSTMs have no positions; a sentence is bounded by memory alone.
            EncoderConfig::Elmo(_) => 1 << 20,
        }
    }

    /// Number of token ids the embeddings cover.
    pub fn vocab_size(&self) -> usize {
        match self {
            EncoderConfig::Bert(c) => c.vocab_size,
            EncoderConfig::Gpt(c) => c.vocab_size,
            EncoderConfig::Elmo(c) => c.n_characters,
        }
    }

    /// The same configuration with every dropout probability set to `p`.
    pub fn with_dropout(self, p: f64) -> Self {
        match self {
            EncoderConfig::Bert(c) => EncoderConfig::Bert(
                c.with_hidden_dropout_prob(p)
                    .with_attention_probs_dropout_prob(p),
            ),
            EncoderConfig::Gpt(c) => {
                EncoderConfig::Gpt(c.with_resid_pdrop(p).with_embd_pdrop(p).with_attn_pdrop(p))
            }
            EncoderConfig::Elmo(c) => EncoderConfig::Elmo(c.with_dropout(p)),
        }
    }

    /// The parameter groups of an encoder of this configuration (what
    /// [`SentenceEncoder::freeze_params`] takes, besides `all`).
    pub fn param_groups(&self) -> Vec<String> {
        match self {
            EncoderConfig::Bert(c) => crate::bert::param_groups(c.num_hidden_layers),
            EncoderConfig::Gpt(c) => crate::gpt::param_groups(c.n_layer),
            EncoderConfig::Elmo(c) => crate::elmo::param_groups(c.n_layers),
        }
    }

    /// Checks sizes and probabilities; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            EncoderConfig::Bert(c) => c.validate(),
            EncoderConfig::Gpt(c) => c.validate(),
            EncoderConfig::Elmo(c) => c.validate(),
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
            EncoderConfig::Gpt(c) => Encoder::Gpt(c.init(device)),
            EncoderConfig::Elmo(c) => Encoder::Elmo(c.init_encoder(device)),
        }
    }

    /// The configuration of a model directory: a Hugging Face `config.json`, by its
    /// `model_type` (a file without one is read as BERT, as Google's `bert_config.json` is), or
    /// else OpenAI's original GPT release (`params_shapes.json` and `params_N.npy`), or a
    /// released ELMo (an options file and HDF5 weights).
    pub fn from_hf_dir(dir: &Path) -> Result<EncoderConfig, ModelError> {
        let path = dir.join("config.json");
        if !path.is_file() && crate::gpt::original::is_original_release(dir) {
            return Ok(EncoderConfig::Gpt(GptConfig::from_original_dir(dir)?));
        }
        if !path.is_file()
            && let Some((options, _)) = crate::elmo::weights::release_files(dir)?
        {
            return Ok(EncoderConfig::Elmo(ElmoConfig::from_options_file(options)?));
        }
        let value: serde_json::Value = crate::error::read_json(&path)?;
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
            EncoderKind::Gpt => Ok(EncoderConfig::Gpt(GptConfig::from_hf_file(&path)?)),
            EncoderKind::Elmo => Err(ModelError::UnsupportedConfig {
                path,
                message: "ELMo is read from its options file and HDF5 weights, not a config.json"
                    .into(),
            }),
        }
    }
}

/// An encoder of any family, as one burn module.
// The variant name is part of every parameter path (`encoder.Bert.embeddings...`). The variants
// differ in size; an encoder is moved a few times per phase, never in a loop, so they are not
// boxed (burn's Module is not implemented for boxes).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Encoder {
    /// BERT.
    Bert(BertModel),
    /// OpenAI GPT.
    Gpt(GptModel),
    /// ELMo.
    Elmo(ElmoEncoder),
}

impl Encoder {
    /// The family.
    pub fn kind(&self) -> EncoderKind {
        match self {
            Encoder::Bert(_) => EncoderKind::Bert,
            Encoder::Gpt(_) => EncoderKind::Gpt,
            Encoder::Elmo(_) => EncoderKind::Elmo,
        }
    }

    /// Loads the encoder of a model directory (`config.json` and its weights, or GPT's original
    /// release) with the configuration `config` (read by [`EncoderConfig::from_hf_dir`],
    /// possibly with its dropout changed); a task head or pre-training head in the weights is
    /// ignored and listed in the report.
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
            EncoderConfig::Gpt(c) if crate::gpt::original::is_original_release(dir) => {
                let (model, report) = GptModel::from_original_release(dir, c, device)?;
                Ok((Encoder::Gpt(model), report))
            }
            EncoderConfig::Gpt(c) => {
                let (model, report) =
                    GptModel::from_hf_weights(c, crate::bert::weights_file(dir)?, device)?;
                Ok((Encoder::Gpt(model), report))
            }
            EncoderConfig::Elmo(c) => {
                let (_, weights) = crate::elmo::weights::release_files(dir)?.ok_or_else(|| {
                    ModelError::NoWeights {
                        dir: dir.to_path_buf(),
                    }
                })?;
                let (bilm, report) = ElmoBiLm::from_hdf5(c, &weights, device)?;
                Ok((Encoder::Elmo(c.encoder(bilm, device)), report))
            }
        }
    }

    /// The encoder with fresh parameter-efficient modules ([`crate::peft`]) as `config` asks
    /// for. BERT carries every one, GPT LoRA; otherwise an error saying what is missing.
    pub fn add_peft(self, config: &PeftConfig, device: &Device) -> Result<Encoder, String> {
        config.validate()?;
        crate::peft::supported_by(self.kind(), config)?;
        match self {
            Encoder::Bert(m) => Ok(Encoder::Bert(m.add_peft(config, device))),
            Encoder::Gpt(m) => Ok(Encoder::Gpt(m.add_peft(config, device))),
            other => Ok(other),
        }
    }

    /// Every encoder parameter frozen but the parameter-efficient modules `which` names (see
    /// [`BertModel::train_peft_only`]).
    pub fn train_peft_only(self, which: &PeftConfig) -> Encoder {
        match self {
            Encoder::Bert(m) => Encoder::Bert(m.train_peft_only(which)),
            Encoder::Gpt(m) => Encoder::Gpt(m.train_peft_only(which)),
            other => other.no_grad(),
        }
    }

    /// The encoder with the parameter group `group` training (beside parameter-efficient
    /// modules: `peft`'s `modules_to_save`). BERT only.
    pub fn train_group(self, group: &str) -> Result<Encoder, String> {
        match self {
            Encoder::Bert(m) => m.set_group_grad(group, true).map(Encoder::Bert),
            other => Err(format!(
                "modules_to_save (encoder groups training beside the modules) is implemented \
                 for BERT; the {} encoder does not take it",
                other.kind()
            )),
        }
    }

    /// Loads the weights of the modules the encoder carries from a `peft` file (BERT: or an
    /// `adapters` one; see [`BertModel::load_peft_weights`], [`GptModel::load_peft_weights`]).
    pub fn load_peft_weights(&mut self, path: &Path) -> Result<LoadReport, ModelError> {
        match self {
            Encoder::Bert(m) => m.load_peft_weights(path),
            Encoder::Gpt(m) => m.load_peft_weights(path),
            other => Err(ModelError::UnsupportedConfig {
                path: path.to_path_buf(),
                message: crate::peft::supported_by(other.kind(), &PeftConfig::default())
                    .err()
                    .unwrap_or_default(),
            }),
        }
    }

    /// The encoder with its LoRA updates folded into the weights (adapters stay).
    pub fn merge_lora(self) -> Encoder {
        match self {
            Encoder::Bert(m) => Encoder::Bert(m.merge_lora()),
            Encoder::Gpt(m) => Encoder::Gpt(m.merge_lora()),
            other => other,
        }
    }

    /// Makes the token embeddings cover a tokenizer of `vocab_size` ids: GPT appends rows
    /// drawn from normal(0, `initializer_range`) for its fine-tuning tokens; a BERT's
    /// vocabulary is fixed, so a tokenizer with more ids is an error. Returns the configuration
    /// with the new size.
    pub fn fit_vocab(
        self,
        config: EncoderConfig,
        vocab_size: usize,
        device: &Device,
    ) -> Result<(Encoder, EncoderConfig), String> {
        let have = config.vocab_size();
        if vocab_size <= have {
            return Ok((self, config));
        }
        match (self, config) {
            (Encoder::Gpt(m), EncoderConfig::Gpt(c)) => {
                let std = c.initializer_range;
                let model = m.extend_vocab(vocab_size - have, std, device);
                let config = GptConfig { vocab_size, ..c };
                Ok((Encoder::Gpt(model), EncoderConfig::Gpt(config)))
            }
            (_, c) => Err(format!(
                "the tokenizer has {vocab_size} ids but the {} model only {have}",
                c.kind()
            )),
        }
    }
}

impl SentenceEncoder for Encoder {
    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        match self {
            Encoder::Bert(m) => m.encode(input),
            Encoder::Gpt(m) => m.encode(input),
            Encoder::Elmo(m) => m.encode(input),
        }
    }

    fn set_dropout(&mut self, p: f64) {
        match self {
            Encoder::Bert(m) => m.set_dropout(p),
            Encoder::Gpt(m) => m.set_dropout(p),
            Encoder::Elmo(m) => m.set_dropout(p),
        }
    }

    fn param_groups(&self) -> Vec<String> {
        match self {
            Encoder::Bert(m) => m.param_groups(),
            Encoder::Gpt(m) => m.param_groups(),
            Encoder::Elmo(m) => m.param_groups(),
        }
    }

    fn freeze_params(self, group: &str) -> Result<Self, String> {
        match self {
            Encoder::Bert(m) => m.freeze_params(group).map(Encoder::Bert),
            Encoder::Gpt(m) => m.freeze_params(group).map(Encoder::Gpt),
            Encoder::Elmo(m) => m.freeze_params(group).map(Encoder::Elmo),
        }
    }

    fn lm_logits(&self, states: Tensor<2>) -> Option<Tensor<2>> {
        match self {
            Encoder::Bert(m) => SentenceEncoder::lm_logits(m, states),
            Encoder::Gpt(m) => SentenceEncoder::lm_logits(m, states),
            Encoder::Elmo(m) => SentenceEncoder::lm_logits(m, states),
        }
    }
}

/// The checks every transformer configuration shares: `sizes` positive, the width a multiple
/// of the number of heads, dropout probabilities in `[0, 1)` and the LayerNorm epsilon
/// positive; each message names the family's own key.
/// The largest size an encoder dimension may have.
pub(crate) const MAX_SIZE: usize = 1 << 24;
/// The most elements one weight matrix of an encoder may have (64 GiB of `f32`): a size past it
/// is a typo or a corrupt file, refused before anything is allocated.
pub(crate) const MAX_MATRIX: usize = 1 << 34;

/// The most layers an encoder may have.
pub(crate) const MAX_LAYERS: usize = 1024;

/// A layer count in `1..=MAX_LAYERS`.
pub(crate) fn check_layers(key: &str, n: usize) -> Result<(), String> {
    if n == 0 || n > MAX_LAYERS {
        return Err(format!("{key} must be in 1..={MAX_LAYERS}, got {n}"));
    }
    Ok(())
}

/// Every size at most [`MAX_SIZE`], and each times the model width at most [`MAX_MATRIX`].
pub(crate) fn check_sizes(
    sizes: &[(&str, usize)],
    (width_key, width): (&str, usize),
) -> Result<(), String> {
    for &(name, v) in sizes {
        if v > MAX_SIZE {
            return Err(format!("{name} {v} is larger than {MAX_SIZE}"));
        }
        if v.saturating_mul(width) > MAX_MATRIX {
            return Err(format!(
                "{name} {v} times {width_key} {width} is more than {MAX_MATRIX} weights in one matrix"
            ));
        }
    }
    Ok(())
}

pub(crate) fn validate_transformer(
    sizes: &[(&str, usize)],
    (width_key, width): (&str, usize),
    (heads_key, heads): (&str, usize),
    dropouts: &[(&str, f64)],
    (eps_key, eps): (&str, f64),
) -> Result<(), String> {
    if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
        return Err(format!("{name} must be positive"));
    }
    check_sizes(sizes, (width_key, width))?;
    if heads == 0 || !width.is_multiple_of(heads) {
        return Err(format!(
            "{width_key} {width} is not a multiple of {heads_key} {heads}"
        ));
    }
    for (name, p) in dropouts {
        if !(0.0..1.0).contains(p) {
            return Err(format!("{name} must be in [0, 1), got {p}"));
        }
    }
    if !(eps.is_finite() && eps > 0.0) {
        return Err(format!("{eps_key} must be positive, got {eps}"));
    }
    Ok(())
}
