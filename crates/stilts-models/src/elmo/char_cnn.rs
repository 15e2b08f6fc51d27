use burn::module::{Module, Param};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid, tanh};
use burn::tensor::{Device, Int, Tensor};

use super::config::{CharActivation, ElmoConfig, MAX_CHARACTERS_PER_TOKEN};

// allennlp/modules/highway.py: Highway
/// Highway layers: `y = g x + (1 - g) relu(W_t x + b_t)` with `g = sigmoid(W_g x + b_g)`. One
/// linear map per layer gives the transform half and the gate half, as AllenNLP stores it
/// (bilm-tf's carry weights enter negated: its gate multiplies the transform).
#[derive(Module, Debug)]
pub struct Highway {
    /// One map per layer, `[width, 2 width]`: transform, then gate.
    pub layers: Vec<Linear>,
}

impl Highway {
    /// Fresh layers of `width`.
    pub fn init(width: usize, layers: usize, device: &Device) -> Self {
        Highway {
            layers: (0..layers)
                .map(|_| LinearConfig::new(width, 2 * width).init(device))
                .collect(),
        }
    }

    /// # Shapes
    ///
    /// - input: `[n, width]`
    /// - output: `[n, width]`
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let width = input.dims()[1];
        self.layers.iter().fold(input, |x, layer| {
            let projected = layer.forward(x.clone()); // [n, 2 width]
            let nonlinear = relu(projected.clone().narrow(1, 0, width));
            let gate = sigmoid(projected.narrow(1, width, width));
            gate.clone() * x + (gate.neg() + 1.0) * nonlinear
        })
    }
}

// allennlp/modules/elmo.py: _ElmoCharacterEncoder
/// The context-free token representation of ELMo: character embeddings, one convolution per
/// filter width with max over time and the activation, highway layers, and a projection.
#[derive(Module, Debug)]
pub struct ElmoCharacterEncoder {
    /// `[n_characters, dim]`; row 0 is for padding (zero in released weights).
    pub char_embedding: Param<Tensor<2>>,
    /// One convolution per `filters` entry, weights `[number, dim, width]`.
    pub convolutions: Vec<Conv1d>,
    /// Highway layers over the concatenated filters.
    pub highways: Highway,
    /// `[n_filters, projection_dim]`.
    pub projection: Linear,
    /// The convolutions' activation.
    #[module(skip)]
    pub activation: CharActivation,
}

impl ElmoCharacterEncoder {
    /// Fresh weights (a random model; released ones come from [`super::ElmoBiLm::from_files`]).
    pub fn init(config: &ElmoConfig, device: &Device) -> Self {
        let dim = config.char_embedding_dim;
        let n_filters = config.n_filters();
        let mut embedding: Tensor<2> = Initializer::Normal {
            mean: 0.0,
            std: 1.0,
        }
        .init([config.n_characters, dim], device)
        .val();
        embedding = embedding.slice_assign([0..1, 0..dim], Tensor::zeros([1, dim], device));
        ElmoCharacterEncoder {
            char_embedding: Param::from_tensor(embedding.detach()),
            convolutions: config
                .filters
                .iter()
                .map(|&[width, number]| Conv1dConfig::new(dim, number, width).init(device))
                .collect(),
            highways: Highway::init(n_filters, config.n_highway, device),
            projection: LinearConfig::new(n_filters, config.projection_dim).init(device),
            activation: config.activation,
        }
    }

    /// Token representations of character ids (0 for padding rows).
    ///
    /// # Shapes
    ///
    /// - chars: `[batch, seq, 50]`
    /// - output: `[batch, seq, projection_dim]`
    pub fn forward(&self, chars: Tensor<3, Int>) -> Tensor<3> {
        let [batch, seq, _] = chars.dims();
        let ids = chars.reshape([batch * seq, MAX_CHARACTERS_PER_TOKEN]);
        let embedded = burn::tensor::module::embedding(self.char_embedding.val(), ids); // [n, 50, dim]
        let embedded = embedded.swap_dims(1, 2); // [n, dim, 50]
        let pooled: Vec<Tensor<2>> = self
            .convolutions
            .iter()
            .map(|conv| {
                let convolved = conv.forward(embedded.clone()); // [n, number, 50 - width + 1]
                let [n, number, _] = convolved.dims();
                let max = convolved.max_dim(2).reshape([n, number]);
                match self.activation {
                    CharActivation::Relu => relu(max),
                    CharActivation::Tanh => tanh(max),
                }
            })
            .collect();
        let tokens = self.highways.forward(Tensor::cat(pooled, 1)); // [n, n_filters]
        let projected = self.projection.forward(tokens); // [n, projection_dim]
        let width = projected.dims()[1];
        projected.reshape([batch, seq, width])
    }
}
