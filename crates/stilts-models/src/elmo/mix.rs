use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

// allennlp/modules/scalar_mix.py: ScalarMix
/// `gamma * sum_k softmax(s)_k * layer_k`: the task's layer weights and scale of Peters et al.
/// (2018), optionally over layers each normalised by one mean and variance over the batch's
/// unmasked values (AllenNLP's `do_layer_norm`).
#[derive(Module, Debug)]
pub struct ScalarMix {
    /// Unnormalised layer weights, `[layers]`.
    pub scalar_parameters: Param<Tensor<1>>,
    /// Scale, `[1]`.
    pub gamma: Param<Tensor<1>>,
    /// Whether each layer is normalised before mixing.
    pub do_layer_norm: bool,
}

/// What AllenNLP's `tiny_value_of_dtype` gives for float32, added to the variance.
const TINY: f64 = 1e-13;

impl ScalarMix {
    /// Equal weights (zeros before the softmax) and a scale of 1, as AllenNLP starts.
    pub fn new(layers: usize, do_layer_norm: bool, device: &Device) -> Self {
        ScalarMix {
            scalar_parameters: Param::from_tensor(Tensor::zeros([layers], device)),
            gamma: Param::from_tensor(Tensor::ones([1], device)),
            do_layer_norm,
        }
    }

    /// The mixture of `layers`; `mask` marks the positions that count for the layer norm.
    ///
    /// # Shapes
    ///
    /// - layers: each `[batch, seq, dim]`
    /// - mask: `[batch, seq]`
    /// - output: `[batch, seq, dim]`
    pub fn forward(&self, layers: Vec<Tensor<3>>, mask: Tensor<2>) -> Tensor<3> {
        let weights = softmax(self.scalar_parameters.val(), 0); // [layers]
        let [batch, seq, dim] = layers[0].dims();
        let broadcast = mask.clone().reshape([batch, seq, 1]);
        let count = mask.sum() * (dim as f64); // [1]
        let mixed = layers
            .into_iter()
            .enumerate()
            .map(|(k, layer)| {
                let layer = if self.do_layer_norm {
                    let masked = layer.clone() * broadcast.clone();
                    let mean = masked.clone().sum().div(count.clone()); // [1]
                    let centred = (masked - mean.clone().reshape([1, 1, 1])) * broadcast.clone();
                    let variance = centred.powi_scalar(2).sum().div(count.clone());
                    (layer - mean.reshape([1, 1, 1])) / (variance + TINY).sqrt().reshape([1, 1, 1])
                } else {
                    layer
                };
                layer * weights.clone().narrow(0, k, 1).reshape([1, 1, 1])
            })
            .reduce(|a, b| a + b)
            .expect("a scalar mix has at least one layer");
        mixed * self.gamma.val().reshape([1, 1, 1])
    }
}
