//! LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") as Hugging Face
//! `peft` defines it: beside a frozen projection `W`, a trained update `B A` of rank `r`,
//! `y = W x + (alpha / r) B A dropout(x)`, with `A` drawn like a fresh `nn.Linear` weight and
//! `B` zero, so a fresh update changes nothing.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::kernels;

/// A projection of a BERT layer LoRA can adapt. `peft`'s `target_modules` for each: `query`,
/// `key`, `value`, `attention.output.dense`, `intermediate.dense` and the layer's last
/// `output.dense`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoraTarget {
    /// The attention query projection.
    Query,
    /// The attention key projection.
    Key,
    /// The attention value projection.
    Value,
    /// The projection of the attention output (`attention.output.dense`).
    AttentionOutput,
    /// The first feed-forward projection (`intermediate.dense`).
    Intermediate,
    /// The second feed-forward projection (`output.dense`).
    Output,
}

impl LoraTarget {
    /// Every target, in layer order.
    pub const ALL: [LoraTarget; 6] = [
        LoraTarget::Query,
        LoraTarget::Key,
        LoraTarget::Value,
        LoraTarget::AttentionOutput,
        LoraTarget::Intermediate,
        LoraTarget::Output,
    ];

    /// The name in configuration files.
    pub fn name(self) -> &'static str {
        match self {
            LoraTarget::Query => "query",
            LoraTarget::Key => "key",
            LoraTarget::Value => "value",
            LoraTarget::AttentionOutput => "attention_output",
            LoraTarget::Intermediate => "intermediate",
            LoraTarget::Output => "output",
        }
    }

    /// The target named `name` (see [`LoraTarget::name`]).
    pub fn from_name(name: &str) -> Option<LoraTarget> {
        LoraTarget::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Hyper-parameters of LoRA, with `peft`'s defaults.
// peft/tuners/lora/config.py: LoraConfig
#[derive(Config, Debug, PartialEq)]
pub struct LoraConfig {
    /// The rank of the update.
    #[config(default = 8)]
    pub r: usize,
    /// `lora_alpha`: the update is scaled by `alpha / r` (`alpha / sqrt(r)` with `use_rslora`).
    #[config(default = 8.0)]
    pub alpha: f64,
    /// Dropout on the update's input.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// The projections adapted in every layer (`peft`'s BERT default: query and value).
    #[config(default = "vec![LoraTarget::Query, LoraTarget::Value]")]
    pub target_modules: Vec<LoraTarget>,
    /// Rank-stabilised scaling (Kalajdzievski 2023), `alpha / sqrt(r)`.
    #[config(default = false)]
    pub use_rslora: bool,
}

impl LoraConfig {
    /// Checks the values are in range.
    pub fn validate(&self) -> Result<(), String> {
        if self.r == 0 {
            return Err("lora.r must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!(
                "lora.dropout must be in [0, 1), not {}",
                self.dropout
            ));
        }
        if self.target_modules.is_empty() {
            return Err("lora.target_modules is empty".into());
        }
        Ok(())
    }

    /// The factor the update is multiplied by.
    pub fn scaling(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.r as f64).sqrt()
        } else {
            self.alpha / self.r as f64
        }
    }

    /// Whether `target` is adapted.
    pub fn targets(&self, target: LoraTarget) -> bool {
        self.target_modules.contains(&target)
    }

    /// A fresh update of a `d_input -> d_output` projection: `A` uniform in
    /// `±1/sqrt(d_input)` (PyTorch's `kaiming_uniform_(a=sqrt(5))`, as `peft` draws it), `B`
    /// zero.
    pub fn init(&self, d_input: usize, d_output: usize, device: &Device) -> Lora {
        let bound = 1.0 / (d_input as f64).sqrt();
        Lora {
            a: LinearConfig::new(d_input, self.r)
                .with_bias(false)
                .with_initializer(Initializer::Uniform {
                    min: -bound,
                    max: bound,
                })
                .init(device),
            b: LinearConfig::new(self.r, d_output)
                .with_bias(false)
                .with_initializer(Initializer::Zeros)
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            scaling: self.scaling(),
        }
    }
}

/// The low-rank update of one projection.
// peft/tuners/lora/layer.py: Linear (lora_A, lora_B, lora_dropout, scaling)
#[derive(Module, Debug)]
pub struct Lora {
    /// `peft`'s `lora_A`, `[d_input, r]`.
    pub a: Linear,
    /// `peft`'s `lora_B`, `[r, d_output]`.
    pub b: Linear,
    /// Dropout on the input.
    pub dropout: Dropout,
    /// `alpha / r`.
    pub scaling: f64,
}

impl Lora {
    /// The update `scaling * B A dropout(x)`.
    ///
    /// # Shapes
    ///
    /// - x: `[batch, seq, d_input]`
    /// - output: `[batch, seq, d_output]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let down = kernels::linear(&self.a, kernels::dropout(&self.dropout, x)); // [batch, seq, r]
        kernels::linear(&self.b, down).mul_scalar(self.scaling)
    }

    /// The update as a weight matrix in burn's layout, `scaling * A B`.
    ///
    /// # Shapes
    ///
    /// - output: `[d_input, d_output]`
    pub fn delta(&self) -> Tensor<2> {
        self.a
            .weight
            .val()
            .matmul(self.b.weight.val())
            .mul_scalar(self.scaling)
    }
}

/// `base(x)` plus the update when there is one.
///
/// # Shapes
///
/// - x: `[batch, seq, d_input]`
/// - output: `[batch, seq, d_output]`
pub fn forward(base: &Linear, lora: Option<&Lora>, x: Tensor<3>) -> Tensor<3> {
    match lora {
        None => kernels::linear(base, x),
        Some(l) => kernels::linear(base, x.clone()) + l.forward(x),
    }
}

/// `base` with the update folded into its weight (what `peft`'s `merge_and_unload` does).
pub fn merge(base: Linear, lora: Option<Lora>) -> Linear {
    let Some(l) = lora else { return base };
    let delta = l.delta(); // [d_input, d_output]
    Linear {
        weight: base.weight.map(|w| w + delta),
        ..base
    }
}
