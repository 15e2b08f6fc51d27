//! Bottleneck adapters (Houlsby et al. 2019, "Parameter-Efficient Transfer Learning for NLP";
//! Pfeiffer et al. 2021, "AdapterFusion") as AdapterHub `adapters` defines them: inside a
//! transformer sub-layer's output block, a down-projection, an activation and an
//! up-projection with a skip connection, between the block's dense projection and its
//! residual LayerNorm.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::{relu, silu};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::kernels::{self, Norm};

/// The bottleneck's non-linearity (`adapters`' `non_linearity`, through transformers'
/// `get_activation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterActivation {
    /// `max(0, x)`.
    Relu,
    /// `x * sigmoid(x)` (`swish`, Houlsby's preset in `adapters`).
    Swish,
    /// Exact (erf) GELU.
    Gelu,
    /// `tanh(x)`.
    Tanh,
}

impl AdapterActivation {
    fn apply(self, x: Tensor<3>) -> Tensor<3> {
        match self {
            AdapterActivation::Relu => relu(x),
            AdapterActivation::Swish => silu(x),
            AdapterActivation::Gelu => kernels::gelu(x),
            AdapterActivation::Tanh => x.tanh(),
        }
    }
}

/// How fresh adapter weights are drawn (`adapters`' `init_weights`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterInit {
    /// Both projections normal(0, 0.02), biases zero (`adapters`' default): near the identity.
    Bert,
    /// The down-projection like a fresh `nn.Linear`, the up-projection zero (`mam_adapter`):
    /// exactly the identity.
    Mam,
}

/// Hyper-parameters of bottleneck adapters. [`BottleneckConfig::houlsby`] and
/// [`BottleneckConfig::pfeiffer`] are `adapters`' `double_seq_bn` and `seq_bn`.
// adapters/configuration/adapter_config.py: BnConfig, DoubleSeqBnConfig, SeqBnConfig
#[derive(Config, Debug, PartialEq)]
pub struct BottleneckConfig {
    /// Hidden width divided by the bottleneck width.
    #[config(default = 16)]
    pub reduction_factor: usize,
    /// The non-linearity between the projections.
    #[config(default = "AdapterActivation::Swish")]
    pub non_linearity: AdapterActivation,
    /// An adapter after the attention output projection (`mh_adapter`).
    #[config(default = true)]
    pub mh_adapter: bool,
    /// An adapter after the feed-forward output projection (`output_adapter`).
    #[config(default = true)]
    pub output_adapter: bool,
    /// The block's LayerNorm (and residual) before the adapter (`original_ln_before`).
    #[config(default = false)]
    pub original_ln_before: bool,
    /// The adapter's skip connection starts from the projection's output rather than from
    /// the adapter's input (`residual_before_ln`).
    #[config(default = true)]
    pub residual_before_ln: bool,
    /// The block's LayerNorm (and residual) after the adapter (`original_ln_after`).
    #[config(default = true)]
    pub original_ln_after: bool,
    /// Multiplier of the up-projection's output (`scaling`).
    #[config(default = 1.0)]
    pub scaling: f64,
    /// How fresh weights are drawn.
    #[config(default = "AdapterInit::Bert")]
    pub init: AdapterInit,
    /// The encoder's LayerNorms train with the adapters (Houlsby et al.'s recipe).
    #[config(default = true)]
    pub train_layer_norms: bool,
}

impl BottleneckConfig {
    /// Houlsby et al.: adapters after attention and after the feed-forward block, swish
    /// (`adapters`' `double_seq_bn`).
    pub fn houlsby() -> Self {
        BottleneckConfig::new()
    }

    /// Pfeiffer et al.: one adapter after the feed-forward block, ReLU, the block's LayerNorm
    /// before and after it (`adapters`' `seq_bn`).
    pub fn pfeiffer() -> Self {
        BottleneckConfig::new()
            .with_non_linearity(AdapterActivation::Relu)
            .with_mh_adapter(false)
            .with_original_ln_before(true)
    }

    /// Checks the values are in range.
    pub fn validate(&self) -> Result<(), String> {
        if self.reduction_factor == 0 {
            return Err("adapter.reduction_factor must be at least 1".into());
        }
        if !self.mh_adapter && !self.output_adapter {
            return Err("adapter: neither mh_adapter nor output_adapter is set".into());
        }
        Ok(())
    }

    /// A fresh adapter for hidden states of width `hidden`.
    pub fn init(&self, hidden: usize, device: &Device) -> Bottleneck {
        let width = (hidden / self.reduction_factor).max(1);
        let bias = |n: usize| Some(Initializer::Zeros.init([n], device));
        let normal = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let (down_init, up_init) = match self.init {
            AdapterInit::Bert => (normal.clone(), normal),
            AdapterInit::Mam => {
                let bound = 1.0 / (hidden as f64).sqrt();
                (
                    Initializer::Uniform {
                        min: -bound,
                        max: bound,
                    },
                    Initializer::Zeros,
                )
            }
        };
        let mut down = LinearConfig::new(hidden, width)
            .with_initializer(down_init)
            .init(device);
        down.bias = bias(width);
        let mut up = LinearConfig::new(width, hidden)
            .with_initializer(up_init)
            .init(device);
        up.bias = bias(hidden);
        Bottleneck {
            down,
            up,
            activation: self.non_linearity,
            scaling: self.scaling,
            original_ln_before: self.original_ln_before,
            residual_before_ln: self.residual_before_ln,
            original_ln_after: self.original_ln_after,
        }
    }
}

/// One sequential bottleneck adapter.
// adapters/methods/modeling.py: Adapter (pre_forward, forward, post_forward)
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// `adapter_down.0`, `[hidden, width]`.
    pub down: Linear,
    /// `adapter_up`, `[width, hidden]`.
    pub up: Linear,
    /// The non-linearity.
    #[module(skip)]
    pub activation: AdapterActivation,
    /// Multiplier of the up-projection's output.
    pub scaling: f64,
    /// See [`BottleneckConfig::original_ln_before`].
    pub original_ln_before: bool,
    /// See [`BottleneckConfig::residual_before_ln`].
    pub residual_before_ln: bool,
    /// See [`BottleneckConfig::original_ln_after`].
    pub original_ln_after: bool,
}

impl Bottleneck {
    /// The output block with the adapter inside: `projected` is the block's dense output
    /// after dropout, `input` the sub-layer's input (the block's residual).
    ///
    /// # Shapes
    ///
    /// - projected: `[batch, seq, hidden]`
    /// - input: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward_block(
        &self,
        projected: Tensor<3>,
        input: Tensor<3>,
        layer_norm: Norm<'_>,
    ) -> Tensor<3> {
        let (hidden, skip) = self.pre(projected, input.clone(), layer_norm);
        self.post(self.up(hidden) + skip, input, layer_norm)
    }

    /// `adapters`' `pre_forward`: the adapter's input (after the block's LayerNorm when
    /// `original_ln_before`) and its skip connection.
    ///
    /// # Shapes
    ///
    /// - projected, input: `[batch, seq, hidden]`
    /// - output: `([batch, seq, hidden], [batch, seq, hidden])`
    pub fn pre(
        &self,
        projected: Tensor<3>,
        input: Tensor<3>,
        layer_norm: Norm<'_>,
    ) -> (Tensor<3>, Tensor<3>) {
        let hidden = if self.original_ln_before {
            layer_norm.forward(projected.clone() + input)
        } else {
            projected.clone()
        };
        let skip = if self.residual_before_ln {
            projected
        } else {
            hidden.clone()
        };
        (hidden, skip)
    }

    /// The bottleneck: `scaling * up(activation(down(x)))`.
    ///
    /// # Shapes
    ///
    /// - x: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn up(&self, x: Tensor<3>) -> Tensor<3> {
        let down = self.activation.apply(self.down.forward(x)); // [batch, seq, width]
        self.up.forward(down).mul_scalar(self.scaling)
    }

    /// `adapters`' `post_forward`: the block's residual and LayerNorm when
    /// `original_ln_after`.
    ///
    /// # Shapes
    ///
    /// - adapted, input: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn post(&self, adapted: Tensor<3>, input: Tensor<3>, layer_norm: Norm<'_>) -> Tensor<3> {
        if self.original_ln_after {
            layer_norm.forward(adapted + input)
        } else {
            adapted
        }
    }
}
