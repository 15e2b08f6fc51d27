//! AdapterFusion (Pfeiffer et al. 2021, "AdapterFusion: Non-Destructive Task Composition for
//! Transfer Learning") as AdapterHub `adapters` defines it: in each output block, several
//! frozen bottleneck adapters read the same input, and an attention over their outputs, keyed
//! by the block's state, mixes them.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use super::Bottleneck;
use crate::kernels::{self, Norm};

/// Hyper-parameters of a fusion layer; the defaults are `adapters`' `dynamic` fusion.
// adapters/configuration/adapter_fusion_config.py: AdapterFusionConfig, DynamicAdapterFusionConfig
#[derive(Config, Debug, PartialEq)]
pub struct FusionConfig {
    /// How many adapters are fused.
    pub adapters: usize,
    /// A trained query projection of the block's state.
    #[config(default = true)]
    pub query: bool,
    /// A trained key projection of each adapter's output.
    #[config(default = true)]
    pub key: bool,
    /// A trained value projection (no bias), started at the identity.
    #[config(default = true)]
    pub value: bool,
    /// The value projection applies to each adapter's output (else to the mixture).
    #[config(default = true)]
    pub value_before_softmax: bool,
    /// The block's residual is added to every adapter output before mixing (else to the
    /// mixture).
    #[config(default = false)]
    pub residual_before: bool,
    /// Dropout on the attention scores (`adapters` uses the encoder's attention dropout).
    #[config(default = 0.1)]
    pub dropout: f64,
}

impl FusionConfig {
    /// `adapters`' `static` fusion: no value projection.
    pub fn fixed(adapters: usize) -> Self {
        FusionConfig::new(adapters).with_value(false)
    }

    /// Checks the values are in range.
    pub fn validate(&self) -> Result<(), String> {
        if self.adapters < 2 {
            return Err(format!(
                "fusion needs at least 2 adapters, got {}",
                self.adapters
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!(
                "fusion.dropout must be in [0, 1), not {}",
                self.dropout
            ));
        }
        Ok(())
    }

    /// A fresh fusion layer for states of width `hidden`: query and key normal(0, 0.02) with
    /// zero biases, the value the identity plus 1e-6 off the diagonal (as `adapters` starts
    /// them).
    pub fn init(&self, hidden: usize, device: &Device) -> Fusion {
        let projection = || {
            let mut l = LinearConfig::new(hidden, hidden)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device);
            l.bias = Some(Initializer::Zeros.init([hidden], device));
            l
        };
        let value = self.value.then(|| {
            let mut l = LinearConfig::new(hidden, hidden)
                .with_bias(false)
                .init(device);
            let eye: Tensor<2> = Tensor::eye(hidden, device);
            l.weight = Param::from_tensor(eye.clone() + (eye.neg() + 1.0) * 1e-6);
            l
        });
        Fusion {
            query: self.query.then(projection),
            key: self.key.then(projection),
            value,
            dropout: DropoutConfig::new(self.dropout).init(),
            value_before_softmax: self.value_before_softmax,
            residual_before: self.residual_before,
        }
    }
}

/// One fusion layer.
// adapters/methods/modeling.py: BertFusion
#[derive(Module, Debug)]
pub struct Fusion {
    /// `[hidden, hidden]` with bias.
    pub query: Option<Linear>,
    /// `[hidden, hidden]` with bias.
    pub key: Option<Linear>,
    /// `[hidden, hidden]`, no bias.
    pub value: Option<Linear>,
    /// Dropout on the scores.
    pub dropout: Dropout,
    /// See [`FusionConfig::value_before_softmax`].
    pub value_before_softmax: bool,
    /// See [`FusionConfig::residual_before`].
    pub residual_before: bool,
}

impl Fusion {
    /// Mixes the adapters' outputs by attention from `query`.
    ///
    /// # Shapes
    ///
    /// - query: `[batch, seq, hidden]`
    /// - outputs: `[batch, seq, adapters, hidden]` (each adapter's up-projection)
    /// - residual: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, query: Tensor<3>, outputs: Tensor<4>, residual: Tensor<3>) -> Tensor<3> {
        let [batch, seq, _, hidden] = outputs.dims();
        let outputs = if self.residual_before {
            outputs + residual.clone().unsqueeze_dim::<4>(2)
        } else {
            outputs
        };
        let query = match &self.query {
            Some(q) => q.forward(query),
            None => query,
        }; // [batch, seq, hidden]
        let keys = match &self.key {
            Some(k) => k.forward(outputs.clone()),
            None => outputs.clone(),
        }; // [batch, seq, adapters, hidden]
        let values = match (&self.value, self.value_before_softmax) {
            (Some(v), true) => v.forward(outputs),
            _ => outputs,
        }; // [batch, seq, adapters, hidden]
        let scores = query
            .unsqueeze_dim::<4>(2) // [batch, seq, 1, hidden]
            .matmul(keys.swap_dims(2, 3)); // [batch, seq, 1, adapters]
        let probs = softmax(kernels::dropout(&self.dropout, scores), 3);
        let mixed = probs.matmul(values).reshape([batch, seq, hidden]); // [batch, seq, hidden]
        let mixed = match (&self.value, self.value_before_softmax) {
            (Some(v), false) => v.forward(mixed),
            _ => mixed,
        };
        if self.residual_before {
            mixed
        } else {
            mixed + residual
        }
    }
}

/// An output block with `adapters` fused: the last adapter's `pre`, every adapter's bottleneck
/// on the same input, the fusion over their outputs with the last adapter's skip as residual,
/// and the last adapter's `post` (`adapters`' `compose_fuse`).
///
/// # Shapes
///
/// - projected, input: `[batch, seq, hidden]`
/// - output: `[batch, seq, hidden]`
///
/// # Panics
///
/// If `adapters` is empty.
pub fn forward_fused(
    adapters: &[Bottleneck],
    fusion: &Fusion,
    projected: Tensor<3>,
    input: Tensor<3>,
    layer_norm: Norm<'_>,
) -> Tensor<3> {
    let last = adapters.last().expect("fusion over at least one adapter");
    let (hidden, skip) = last.pre(projected, input.clone(), layer_norm);
    let outputs: Vec<Tensor<3>> = adapters.iter().map(|a| a.up(hidden.clone())).collect();
    let outputs = Tensor::stack::<4>(outputs, 2); // [batch, seq, adapters, hidden]
    let mixed = fusion.forward(hidden, outputs, skip);
    last.post(mixed, input, layer_norm)
}
