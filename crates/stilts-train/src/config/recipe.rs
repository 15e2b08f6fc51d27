//! The training recipe: one definition of each hyper-parameter and its default (the encoder's
//! preset), merged with the experiment's and the phase's `[recipe]` keys, and range-checked.

use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};
use stilts_data::tokenize::DEFAULT_MAX_SEQ_LEN;
use stilts_models::EncoderKind;
use stilts_models::device::Precision;
use stilts_models::peft::{BottleneckConfig, FusionConfig, LoraConfig, PeftConfig};

use super::{Keep, OptimizerKind, RecipeFile, ScheduleKind, TrainPrecision};

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// The fewest tokens an encoder family's inputs can have: the special tokens of a pair
/// (BERT: `[CLS] [SEP] [SEP]`).
pub fn min_seq_len(kind: EncoderKind) -> usize {
    match kind {
        EncoderKind::Bert | EncoderKind::Gpt | EncoderKind::Elmo => 3,
    }
}

/// The most a count setting (batch sizes, `max_seq_len`, `grad_accum_steps`) may be: larger is
/// a typo, refused before it allocates or overflows.
const MAX_COUNT: usize = 1 << 20;
/// The most epochs a phase may have.
const MAX_EPOCHS: usize = 100_000;

/// The training recipe of a phase: every hyper-parameter, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Examples per training batch (per optimizer step with `grad_accum_steps = 1`).
    pub batch_size: usize,
    /// Examples per evaluation batch.
    pub eval_batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Adam's first-moment decay.
    pub beta_1: f32,
    /// Adam's second-moment decay.
    pub beta_2: f32,
    /// Adam's epsilon.
    pub epsilon: f32,
    /// Decoupled weight decay (not on biases and LayerNorm weights).
    pub weight_decay: f32,
    /// Share of the steps spent warming the learning rate up linearly.
    pub warmup_proportion: f64,
    /// AdamW, or BERT's Adam without bias correction.
    pub optimizer: OptimizerKind,
    /// Left out of the JSON when `linear`, so that earlier runs keep their fingerprints.
    #[serde(default, skip_serializing_if = "ScheduleKind::is_linear")]
    pub schedule: ScheduleKind,
    /// `None`: every epoch runs; left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop_patience: Option<usize>,
    /// `None`: no clipping.
    pub max_grad_norm: Option<f64>,
    /// `None`: the model's own dropout.
    pub dropout: Option<f64>,
    /// Tokens per sequence (words for ELMo), special tokens included; longer inputs are cut.
    pub max_seq_len: usize,
    /// Passes over the training data.
    pub epochs: usize,
    /// Batches whose gradients are summed into one optimizer step.
    pub grad_accum_steps: usize,
    /// Batches of similar lengths (less padding); the order stays a function of the seed.
    pub bucket_by_length: bool,
    /// `None`: checkpoints at epoch ends only.
    pub checkpoint_every_steps: Option<u64>,
    /// Left out of the JSON when `last`, so that runs configured before it existed keep their
    /// fingerprints (and resume).
    #[serde(default, skip_serializing_if = "Keep::is_last")]
    pub keep: Keep,
    /// Weight of the encoder's auxiliary loss (0: off); left out of the JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub aux_lm_weight: f64,
    /// Encoder parameter groups that do not train; left out of the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<String>,
    /// LoRA updates train instead of the encoder; left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraConfig>,
    /// Bottleneck adapters train instead of the encoder; left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<BottleneckConfig>,
    /// An AdapterFusion over adapters trained before trains instead of the encoder; left out
    /// of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionRecipe>,
    /// Encoder parameter groups that train beside the modules; left out of the JSON when
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules_to_save: Vec<String>,
    /// The float type the forward and backward passes compute in (the weights and optimizer
    /// state stay f32); left out of the JSON when `f32`.
    #[serde(default, skip_serializing_if = "TrainPrecision::is_f32")]
    pub precision: TrainPrecision,
}

/// The recipe's `fusion` table: the module directories of the adapters to fuse (paths
/// expanded) and the fusion layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusionRecipe {
    /// The module directories, in fusion order.
    pub adapters: Vec<String>,
    /// The fusion layers (one input per directory).
    pub fusion: FusionConfig,
}

impl Recipe {
    /// The preset of an encoder family: the recipe its paper fine-tuned with. Every value can
    /// be changed by a recipe key.
    pub fn preset(kind: EncoderKind) -> Recipe {
        match kind {
            EncoderKind::Bert => Recipe::bert(),
            EncoderKind::Gpt => Recipe::gpt(),
            EncoderKind::Elmo => Recipe::elmo(),
        }
    }

    /// Devlin et al.'s recipe: batch 24, lr 2e-5, AdamW (0.9, 0.999, 1e-6), weight decay 0.01,
    /// 10% linear warmup then linear decay, clip 1.0, dropout 0.1, 128 tokens, 3 epochs.
    pub fn bert() -> Recipe {
        Recipe {
            batch_size: 24,
            eval_batch_size: 64,
            lr: 2e-5,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-6,
            weight_decay: 0.01,
            warmup_proportion: 0.1,
            optimizer: OptimizerKind::AdamW,
            schedule: ScheduleKind::Linear,
            early_stop_patience: None,
            max_grad_norm: Some(1.0),
            dropout: Some(0.1),
            max_seq_len: DEFAULT_MAX_SEQ_LEN,
            epochs: 3,
            grad_accum_steps: 1,
            bucket_by_length: false,
            checkpoint_every_steps: None,
            keep: Keep::Last,
            aux_lm_weight: 0.0,
            freeze: Vec::new(),
            lora: None,
            adapter: None,
            fusion: None,
            modules_to_save: Vec::new(),
            precision: TrainPrecision::F32,
        }
    }

    /// Radford et al.'s fine-tuning recipe (`finetune-transformer-lm`'s `train.py`): batch 32,
    /// lr 6.25e-5, Adam (0.9, 0.999, 1e-8) with decoupled weight decay 0.01 on matrices only
    /// (not on biases and LayerNorm gains), linear warmup over 0.2% of the steps then linear
    /// decay, global-norm clip 1, dropout 0.1 everywhere (residual, attention, embeddings,
    /// classifier), the language-model loss added with weight 0.5, 3 epochs, 128 tokens.
    pub fn gpt() -> Recipe {
        Recipe {
            batch_size: 32,
            lr: 6.25e-5,
            epsilon: 1e-8,
            warmup_proportion: 0.002,
            aux_lm_weight: 0.5,
            ..Recipe::bert()
        }
    }

    /// The paper's ELMo setup (its Appendix A, run with jiant's defaults of the time,
    /// `config/defaults.conf` at nyu-mll/jiant 0f04f2c): Adam (0.9, 0.999, 1e-8) without weight
    /// decay, lr 1e-4, batch 32, gradient-norm clip 5, dropout 0.2, 40 words a sentence
    /// (boundaries included), the rate halved when the dev score plateaus, early stopping after
    /// 5 checks without improvement (jiant's `patience`), the best dev epoch's model kept, at
    /// most 20 epochs. jiant checked dev every 1000 steps
    /// (100 on small targets); stilts checks at epoch ends.
    pub fn elmo() -> Recipe {
        Recipe {
            batch_size: 32,
            lr: 1e-4,
            epsilon: 1e-8,
            weight_decay: 0.0,
            warmup_proportion: 0.0,
            schedule: ScheduleKind::Plateau,
            early_stop_patience: Some(5),
            max_grad_norm: Some(5.0),
            dropout: Some(0.2),
            max_seq_len: 40,
            epochs: 20,
            keep: Keep::BestEpoch,
            ..Recipe::bert()
        }
    }

    /// The LoRA and adapters the phase trains instead of the encoder (a fusion's adapters
    /// are read from their directories at the phase's start: [`Recipe::fusion`]).
    pub fn peft(&self) -> PeftConfig {
        PeftConfig {
            lora: self.lora.clone(),
            adapter: self.adapter.clone(),
            fusion: None,
        }
    }

    /// The float type the forward and backward passes compute in.
    pub fn compute_dtype(&self) -> FloatDType {
        self.compute_precision().dtype()
    }

    /// [`Recipe::precision`] as a device precision.
    pub fn compute_precision(&self) -> Precision {
        match self.precision {
            TrainPrecision::F32 => Precision::F32,
            TrainPrecision::Bf16 => Precision::Bf16,
            TrainPrecision::F16 => Precision::F16,
        }
    }

    /// Applies the values set in `file`.
    pub fn merged(&self, file: &RecipeFile) -> Recipe {
        let mut r = self.clone();
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = file.$f { r.$f = v; } )* };
        }
        set!(
            batch_size,
            eval_batch_size,
            lr,
            warmup_proportion,
            aux_lm_weight,
            optimizer,
            schedule,
            max_seq_len,
            epochs,
            grad_accum_steps,
            bucket_by_length,
            keep,
            precision
        );
        for (v, f) in [
            (&mut r.beta_1, file.beta_1),
            (&mut r.beta_2, file.beta_2),
            (&mut r.epsilon, file.epsilon),
            (&mut r.weight_decay, file.weight_decay),
        ] {
            if let Some(f) = f {
                *v = f as f32;
            }
        }
        if let Some(groups) = &file.freeze {
            r.freeze = groups.clone();
        }
        if let Some(l) = &file.lora {
            r.lora = Some(super::peft::lora_config(l));
        }
        if let Some(a) = &file.adapter {
            r.adapter = Some(super::peft::adapter_config(a));
        }
        if let Some(groups) = &file.modules_to_save {
            r.modules_to_save = groups.clone();
        }
        if let Some(f) = &file.fusion {
            r.fusion = Some(super::peft::fusion_recipe(f));
        }
        if let Some(v) = file.max_grad_norm {
            r.max_grad_norm = (v != 0.0).then_some(v);
        }
        if let Some(v) = file.dropout {
            r.dropout = Some(v);
        }
        if let Some(v) = file.checkpoint_every_steps {
            r.checkpoint_every_steps = (v > 0).then_some(v);
        }
        if let Some(v) = file.early_stop_patience {
            r.early_stop_patience = (v > 0).then_some(v);
        }
        r
    }

    /// Checks every value's range; `key` prefixes the key path in the error (`phases[1].recipe`),
    /// `encoder` the family it trains (its fewest tokens, [`min_seq_len`], and what it supports).
    pub fn validate(
        &self,
        key: &str,
        encoder: EncoderKind,
    ) -> std::result::Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((format!("{key}.{k}"), m));
        let min_seq_len = min_seq_len(encoder);
        for (k, v, max) in [
            ("batch_size", self.batch_size, MAX_COUNT),
            ("eval_batch_size", self.eval_batch_size, MAX_COUNT),
            ("max_seq_len", self.max_seq_len, MAX_COUNT),
            ("epochs", self.epochs, MAX_EPOCHS),
            ("grad_accum_steps", self.grad_accum_steps, MAX_COUNT),
        ] {
            if v == 0 {
                return err(k, "must be at least 1".into());
            }
            if v > max {
                return err(k, format!("must be at most {max}, got {v}"));
            }
        }

        if !(self.lr.is_finite() && self.lr > 0.0) {
            return err("lr", format!("must be positive, got {}", self.lr));
        }
        for (k, b) in [("beta_1", self.beta_1), ("beta_2", self.beta_2)] {
            if !(0.0..1.0).contains(&b) {
                return err(k, format!("must be in [0, 1), got {b}"));
            }
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return err("epsilon", "must be positive".into());
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return err("weight_decay", "must be finite and non-negative".into());
        }
        if !(0.0..=1.0).contains(&self.warmup_proportion) {
            return err(
                "warmup_proportion",
                format!("must be in [0, 1], got {}", self.warmup_proportion),
            );
        }
        if let Some(n) = self.max_grad_norm
            && !(n.is_finite() && n > 0.0)
        {
            return err(
                "max_grad_norm",
                format!("must be positive (0 turns clipping off), got {n}"),
            );
        }

        if let Some(p) = self.dropout
            && !(0.0..1.0).contains(&p)
        {
            return err("dropout", format!("must be in [0, 1), got {p}"));
        }
        if self.max_seq_len < min_seq_len {
            return err(
                "max_seq_len",
                format!("must be at least {min_seq_len} (the special tokens of a pair)"),
            );
        }
        if let Some(l) = &self.lora
            && let Err(m) = l.validate()
        {
            return err("lora", m);
        }
        if let Some(a) = &self.adapter
            && let Err(m) = a.validate()
        {
            return err("adapter", m);
        }
        if let Some(f) = &self.fusion {
            if let Err(m) = f.fusion.validate() {
                return err("fusion", m);
            }
            if self.adapter.is_some() {
                return err(
                    "fusion",
                    "a phase trains adapters or a fusion of adapters, not both".into(),
                );
            }
        }
        if !self.modules_to_save.is_empty()
            && self.lora.is_none()
            && self.adapter.is_none()
            && self.fusion.is_none()
        {
            return err(
                "modules_to_save",
                "names groups that train beside LoRA, adapters or a fusion, and the phase has none (without them the whole encoder trains)".into(),
            );
        }
        match (self.precision, encoder) {
            (TrainPrecision::F16, _) => {
                return err(
                    "precision",
                    "f16 training is not supported: its range needs loss scaling, which stilts \
                     does not do; use bf16 (mixed precision with f32's range)"
                        .into(),
                );
            }
            (TrainPrecision::Bf16, EncoderKind::Elmo) => {
                return err(
                    "precision",
                    "bf16 training is for the transformer encoders (BERT, GPT); ELMo trains in f32"
                        .into(),
                );
            }
            _ => {}
        }
        if !(self.aux_lm_weight.is_finite() && self.aux_lm_weight >= 0.0) {
            return err(
                "aux_lm_weight",
                format!(
                    "must be finite and non-negative, got {}",
                    self.aux_lm_weight
                ),
            );
        }
        Ok(())
    }
}
