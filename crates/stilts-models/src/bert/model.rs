use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::tensor::{Device, Int, Tensor};

use super::config::{BertClassifierConfig, BertConfig};
use crate::kernels::{self, Norm};
use crate::loss::{Labels, sequence_loss};
use crate::mixed;
use crate::peft::{Bottleneck, Fusion, Lora, fusion, lora};

/// The three id tensors a BERT forward pass reads.
#[derive(Debug, Clone)]
pub struct BertInput {
    /// Word-piece ids, `[batch, seq]`.
    pub input_ids: Tensor<2, Int>,
    /// Segment ids (0 for the first sentence, 1 for the second), `[batch, seq]`.
    pub token_type_ids: Tensor<2, Int>,
    /// 1 for real tokens, 0 for padding, `[batch, seq]`.
    pub attention_mask: Tensor<2, Int>,
}

impl BertInput {
    /// Bundles the three tensors.
    ///
    /// # Shapes
    ///
    /// - input_ids: `[batch, seq]`
    /// - token_type_ids: `[batch, seq]`
    /// - attention_mask: `[batch, seq]`
    pub fn new(
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
    ) -> Self {
        Self {
            input_ids,
            token_type_ids,
            attention_mask,
        }
    }
}

/// Hidden states of the encoder.
#[derive(Debug, Clone)]
pub struct BertModelOutput {
    /// The last layer's hidden states, `[batch, seq, hidden]`.
    pub last_hidden_state: Tensor<3>,
    /// `tanh(dense(h_[CLS]))`, `[batch, hidden]`.
    pub pooled_output: Tensor<2>,
}

fn normal(std: f64) -> Initializer {
    Initializer::Normal { mean: 0.0, std }
}

fn dense(d_input: usize, d_output: usize, std: f64, device: &Device) -> Linear {
    let mut linear = LinearConfig::new(d_input, d_output)
        .with_initializer(normal(std))
        .init(device);
    linear.bias = Some(Initializer::Zeros.init([d_output], device));
    linear
}

/// The output block both `BertSelfOutput` and `BertOutput` are, with their optional
/// parameter-efficient modules: `LayerNorm(dropout(dense(hidden)) + residual)`, the dense
/// projection with its LoRA update, and a bottleneck adapter between it and the LayerNorm.
struct OutputBlock<'a> {
    dense: &'a Linear,
    lora: Option<&'a Lora>,
    adapter: Option<&'a Bottleneck>,
    fused: &'a [Bottleneck],
    fusion: Option<&'a Fusion>,
    dropout: &'a Dropout,
    layer_norm: Norm<'a>,
}

impl OutputBlock<'_> {
    /// # Shapes
    ///
    /// - hidden: `[batch, seq, input]`
    /// - residual: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    fn forward(&self, hidden: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        let projected =
            kernels::dropout(self.dropout, lora::forward(self.dense, self.lora, hidden)); // [batch, seq, hidden]
        match (self.adapter, self.fusion) {
            (Some(a), _) => a.forward_block(projected, residual, self.layer_norm),
            (None, Some(f)) => {
                fusion::forward_fused(self.fused, f, projected, residual, self.layer_norm)
            }
            (None, None) => self.layer_norm.forward_residual(projected, residual),
        }
    }
}

fn layer_norm(config: &BertConfig, device: &Device) -> LayerNorm {
    LayerNormConfig::new(config.hidden_size)
        .with_epsilon(config.layer_norm_eps)
        .init(device)
}

// transformers/models/bert/modeling_bert.py: BertEmbeddings
/// Sum of word, absolute position and token type embeddings, then LayerNorm and dropout.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    /// `[vocab_size, hidden]`.
    pub word_embeddings: Embedding,
    /// `[max_position_embeddings, hidden]`.
    pub position_embeddings: Embedding,
    /// `[type_vocab_size, hidden]`.
    pub token_type_embeddings: Embedding,
    /// Hugging Face's `LayerNorm`.
    pub layer_norm: LayerNorm,
    /// Its epsilon (`layer_norm_eps`).
    pub layer_norm_eps: f64,
    /// Hidden dropout.
    pub dropout: Dropout,
}

impl BertEmbeddings {
    /// Builds fresh embeddings with Hugging Face's initialisation.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        let table = |n: usize| {
            EmbeddingConfig::new(n, config.hidden_size)
                .with_initializer(normal(config.initializer_range))
                .init(device)
        };
        Self {
            word_embeddings: table(config.vocab_size),
            position_embeddings: table(config.max_position_embeddings),
            token_type_embeddings: table(config.type_vocab_size),
            layer_norm: layer_norm(config, device),
            layer_norm_eps: config.layer_norm_eps,
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    /// Embeds token ids; positions are `0..seq`.
    ///
    /// # Shapes
    ///
    /// - input_ids: `[batch, seq]`
    /// - token_type_ids: `[batch, seq]`
    /// - output: `[batch, seq, hidden]`
    ///
    /// # Panics
    ///
    /// If `seq` exceeds `max_position_embeddings` or an id is out of its table.
    pub fn forward(&self, input_ids: Tensor<2, Int>, token_type_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = input_ids.dims();
        let [max_positions, _] = self.position_embeddings.weight.dims();
        assert!(
            seq <= max_positions,
            "sequence length {seq} exceeds max_position_embeddings {max_positions}"
        );
        let words = self.word_embeddings.forward(input_ids); // [batch, seq, hidden]
        let types = self.token_type_embeddings.forward(token_type_ids); // [batch, seq, hidden]
        let positions = self
            .position_embeddings
            .weight
            .val()
            .narrow(0, 0, seq) // [seq, hidden]
            .unsqueeze::<3>(); // [1, seq, hidden]
        let embeddings = words + types + positions; // [batch, seq, hidden]
        let norm = Norm {
            module: &self.layer_norm,
            epsilon: self.layer_norm_eps,
        };
        kernels::dropout(&self.dropout, norm.forward(embeddings))
    }
}

// transformers/models/bert/modeling_bert.py: BertSelfAttention
/// Multi-head scaled dot-product self-attention with a padding mask.
#[derive(Module, Debug)]
pub struct BertSelfAttention {
    /// `[hidden, hidden]`.
    pub query: Linear,
    /// `[hidden, hidden]`.
    pub key: Linear,
    /// `[hidden, hidden]`.
    pub value: Linear,
    /// Dropout on attention probabilities.
    pub dropout: Dropout,
    /// Number of heads.
    pub num_heads: usize,
    /// LoRA update of `query` (`peft`'s `query.lora_A`/`lora_B`).
    pub lora_query: Option<Lora>,
    /// LoRA update of `key`.
    pub lora_key: Option<Lora>,
    /// LoRA update of `value`.
    pub lora_value: Option<Lora>,
}

impl BertSelfAttention {
    /// Builds fresh projections.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        let std = config.initializer_range;
        Self {
            query: dense(h, h, std, device),
            key: dense(h, h, std, device),
            value: dense(h, h, std, device),
            dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
            num_heads: config.num_attention_heads,
            lora_query: None,
            lora_key: None,
            lora_value: None,
        }
    }

    /// Attends every position to the unmasked positions of its sequence.
    ///
    /// `mask_bias` is 0 for tokens and the lowest `f32` for padding, added to the scores.
    ///
    /// # Shapes
    ///
    /// - hidden: `[batch, seq, hidden]`
    /// - mask_bias: `[batch, 1, 1, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, hidden: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let [batch, seq, width] = hidden.dims();
        let heads = self.num_heads;
        let head_size = width / heads;
        let split = |x: Tensor<3>| {
            x.reshape([batch, seq, heads, head_size]) // [batch, seq, heads, head_size]
                .swap_dims(1, 2) // [batch, heads, seq, head_size]
        };
        let query = split(lora::forward(
            &self.query,
            self.lora_query.as_ref(),
            hidden.clone(),
        ));
        let key = split(lora::forward(
            &self.key,
            self.lora_key.as_ref(),
            hidden.clone(),
        ));
        let value = split(lora::forward(&self.value, self.lora_value.as_ref(), hidden));

        let scores = kernels::matmul_div(query, key.swap_dims(2, 3), (head_size as f64).sqrt()); // [batch, heads, seq, seq]
        let probs = kernels::masked_softmax(scores, mask_bias); // [batch, heads, seq, seq]
        let probs = kernels::dropout(&self.dropout, probs);
        kernels::matmul(probs, value) // [batch, heads, seq, head_size]
            .swap_dims(1, 2) // [batch, seq, heads, head_size]
            .reshape([batch, seq, width])
    }
}

// transformers/models/bert/modeling_bert.py: BertSelfOutput
/// Projection of the attention output, dropout, residual and post-LayerNorm.
#[derive(Module, Debug)]
pub struct BertSelfOutput {
    /// `[hidden, hidden]`.
    pub dense: Linear,
    /// Hugging Face's `LayerNorm`.
    pub layer_norm: LayerNorm,
    /// Its epsilon (`layer_norm_eps`).
    pub layer_norm_eps: f64,
    /// Hidden dropout.
    pub dropout: Dropout,
    /// LoRA update of `dense`.
    pub lora_dense: Option<Lora>,
    /// A bottleneck adapter between `dense` and `layer_norm` (`adapters`' `adapters.<name>`).
    pub adapter: Option<Bottleneck>,
    /// Frozen adapters mixed by `fusion` (`adapters`' `Fuse`), in their place.
    pub fused: Vec<Bottleneck>,
    /// AdapterFusion over `fused` (`adapters`' `adapter_fusion_layer.<names>`).
    pub fusion: Option<Fusion>,
}

impl BertSelfOutput {
    /// Builds a fresh block.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            dense: dense(h, h, config.initializer_range, device),
            layer_norm: layer_norm(config, device),
            layer_norm_eps: config.layer_norm_eps,
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            lora_dense: None,
            adapter: None,
            fused: Vec::new(),
            fusion: None,
        }
    }

    /// `LayerNorm(dropout(dense(hidden)) + residual)`.
    ///
    /// # Shapes
    ///
    /// - hidden: `[batch, seq, hidden]`
    /// - residual: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, hidden: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        OutputBlock {
            dense: &self.dense,
            lora: self.lora_dense.as_ref(),
            adapter: self.adapter.as_ref(),
            fused: &self.fused,
            fusion: self.fusion.as_ref(),
            dropout: &self.dropout,
            layer_norm: Norm {
                module: &self.layer_norm,
                epsilon: self.layer_norm_eps,
            },
        }
        .forward(hidden, residual)
    }
}

// transformers/models/bert/modeling_bert.py: BertAttention
/// Self-attention and its output block.
#[derive(Module, Debug)]
pub struct BertAttention {
    /// Hugging Face's `self`.
    pub self_attention: BertSelfAttention,
    /// Hugging Face's `output`.
    pub output: BertSelfOutput,
}

impl BertAttention {
    /// Builds a fresh block.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        Self {
            self_attention: BertSelfAttention::init(config, device),
            output: BertSelfOutput::init(config, device),
        }
    }

    /// Attention sub-layer with its residual connection.
    ///
    /// # Shapes
    ///
    /// - hidden: `[batch, seq, hidden]`
    /// - mask_bias: `[batch, 1, 1, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, hidden: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let attended = self.self_attention.forward(hidden.clone(), mask_bias);
        self.output.forward(attended, hidden)
    }
}

// transformers/models/bert/modeling_bert.py: BertIntermediate
/// First feed-forward projection with exact (erf) GELU.
#[derive(Module, Debug)]
pub struct BertIntermediate {
    /// `[hidden, intermediate]`.
    pub dense: Linear,
    /// LoRA update of `dense`.
    pub lora_dense: Option<Lora>,
}

impl BertIntermediate {
    /// Builds a fresh projection.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        Self {
            dense: dense(
                config.hidden_size,
                config.intermediate_size,
                config.initializer_range,
                device,
            ),
            lora_dense: None,
        }
    }

    /// `gelu(dense(hidden))`.
    ///
    /// # Shapes
    ///
    /// - hidden: `[batch, seq, hidden]`
    /// - output: `[batch, seq, intermediate]`
    pub fn forward(&self, hidden: Tensor<3>) -> Tensor<3> {
        kernels::gelu(lora::forward(&self.dense, self.lora_dense.as_ref(), hidden))
    }
}

// transformers/models/bert/modeling_bert.py: BertOutput
/// Second feed-forward projection, dropout, residual and post-LayerNorm.
#[derive(Module, Debug)]
pub struct BertOutput {
    /// `[intermediate, hidden]`.
    pub dense: Linear,
    /// Hugging Face's `LayerNorm`.
    pub layer_norm: LayerNorm,
    /// Its epsilon (`layer_norm_eps`).
    pub layer_norm_eps: f64,
    /// Hidden dropout.
    pub dropout: Dropout,
    /// LoRA update of `dense`.
    pub lora_dense: Option<Lora>,
    /// A bottleneck adapter between `dense` and `layer_norm` (`adapters`' `adapters.<name>`).
    pub adapter: Option<Bottleneck>,
    /// Frozen adapters mixed by `fusion` (`adapters`' `Fuse`), in their place.
    pub fused: Vec<Bottleneck>,
    /// AdapterFusion over `fused` (`adapters`' `adapter_fusion_layer.<names>`).
    pub fusion: Option<Fusion>,
}

impl BertOutput {
    /// Builds a fresh block.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        Self {
            dense: dense(
                config.intermediate_size,
                config.hidden_size,
                config.initializer_range,
                device,
            ),
            layer_norm: layer_norm(config, device),
            layer_norm_eps: config.layer_norm_eps,
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            lora_dense: None,
            adapter: None,
            fused: Vec::new(),
            fusion: None,
        }
    }

    /// `LayerNorm(dropout(dense(hidden)) + residual)`.
    ///
    /// # Shapes
    ///
    /// - hidden: `[batch, seq, intermediate]`
    /// - residual: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, hidden: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        OutputBlock {
            dense: &self.dense,
            lora: self.lora_dense.as_ref(),
            adapter: self.adapter.as_ref(),
            fused: &self.fused,
            fusion: self.fusion.as_ref(),
            dropout: &self.dropout,
            layer_norm: Norm {
                module: &self.layer_norm,
                epsilon: self.layer_norm_eps,
            },
        }
        .forward(hidden, residual)
    }
}

// transformers/models/bert/modeling_bert.py: BertLayer
/// One transformer encoder layer (post-LN).
#[derive(Module, Debug)]
pub struct BertLayer {
    /// Attention sub-layer.
    pub attention: BertAttention,
    /// Feed-forward first half.
    pub intermediate: BertIntermediate,
    /// Feed-forward second half.
    pub output: BertOutput,
}

impl BertLayer {
    /// Builds a fresh layer.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        Self {
            attention: BertAttention::init(config, device),
            intermediate: BertIntermediate::init(config, device),
            output: BertOutput::init(config, device),
        }
    }

    /// Attention then feed-forward.
    ///
    /// # Shapes
    ///
    /// - hidden: `[batch, seq, hidden]`
    /// - mask_bias: `[batch, 1, 1, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, hidden: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let attended = self.attention.forward(hidden, mask_bias); // [batch, seq, hidden]
        let inner = self.intermediate.forward(attended.clone()); // [batch, seq, intermediate]
        self.output.forward(inner, attended)
    }
}

// transformers/models/bert/modeling_bert.py: BertEncoder
/// A stack of encoder layers.
#[derive(Module, Debug)]
pub struct BertEncoder {
    /// Hugging Face's `layer`.
    pub layers: Vec<BertLayer>,
}

impl BertEncoder {
    /// Builds `num_hidden_layers` fresh layers.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        Self {
            layers: (0..config.num_hidden_layers)
                .map(|_| BertLayer::init(config, device))
                .collect(),
        }
    }

    /// Runs every layer in turn.
    ///
    /// # Shapes
    ///
    /// - hidden: `[batch, seq, hidden]`
    /// - mask_bias: `[batch, 1, 1, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, hidden: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        self.layers.iter().fold(hidden, |hidden, layer| {
            layer.forward(hidden, mask_bias.clone())
        })
    }
}

// transformers/models/bert/modeling_bert.py: BertPooler
/// `tanh(dense(h_[CLS]))`.
#[derive(Module, Debug)]
pub struct BertPooler {
    /// `[hidden, hidden]`.
    pub dense: Linear,
}

impl BertPooler {
    /// Builds a fresh pooler.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            dense: dense(h, h, config.initializer_range, device),
        }
    }

    /// Pools the first token's hidden state.
    ///
    /// # Shapes
    ///
    /// - hidden: `[batch, seq, hidden]`
    /// - output: `[batch, hidden]`
    pub fn forward(&self, hidden: Tensor<3>) -> Tensor<2> {
        let [batch, _, width] = hidden.dims();
        let first = hidden.narrow(1, 0, 1).reshape([batch, width]); // [batch, hidden]
        self.dense.forward(first).tanh()
    }
}

// transformers/models/bert/modeling_bert.py: BertModel
/// The BERT encoder: embeddings, layers and pooler.
#[derive(Module, Debug)]
pub struct BertModel {
    /// Input embeddings.
    pub embeddings: BertEmbeddings,
    /// Encoder layers.
    pub encoder: BertEncoder,
    /// `[CLS]` pooler.
    pub pooler: BertPooler,
}

impl BertConfig {
    /// Builds a freshly initialised encoder (normal(0, `initializer_range`) weights, zero
    /// biases, unit LayerNorms, as Hugging Face's `_init_weights`).
    ///
    /// # Panics
    ///
    /// If the configuration fails [`BertConfig::validate`].
    pub fn init(&self, device: &Device) -> BertModel {
        if let Err(message) = self.validate() {
            panic!("invalid BertConfig: {message}");
        }
        BertModel {
            embeddings: BertEmbeddings::init(self, device),
            encoder: BertEncoder::init(self, device),
            pooler: BertPooler::init(self, device),
        }
    }
}

impl BertModel {
    /// Encodes a padded batch.
    ///
    /// # Shapes
    ///
    /// - input.input_ids: `[batch, seq]`
    /// - input.token_type_ids: `[batch, seq]`
    /// - input.attention_mask: `[batch, seq]`
    /// - output.last_hidden_state: `[batch, seq, hidden]`
    /// - output.pooled_output: `[batch, hidden]`
    ///
    /// # Panics
    ///
    /// If the three inputs differ in shape, `seq` exceeds `max_position_embeddings`, or an id is
    /// out of its embedding table.
    pub fn forward(&self, input: BertInput) -> BertModelOutput {
        let dims = input.input_ids.dims();
        assert_eq!(
            dims,
            input.token_type_ids.dims(),
            "input_ids and token_type_ids differ in shape"
        );
        assert_eq!(
            dims,
            input.attention_mask.dims(),
            "input_ids and attention_mask differ in shape"
        );
        let [batch, seq] = dims;
        let mask_bias = input
            .attention_mask
            .float() // [batch, seq]
            .neg()
            .add_scalar(1.0)
            .mul_scalar(f32::MIN)
            .reshape([batch, 1, 1, seq]); // [batch, 1, 1, seq]
        let embedded = self
            .embeddings
            .forward(input.input_ids, input.token_type_ids); // [batch, seq, hidden]
        let mask_bias = mixed::like(mask_bias, &embedded);
        let last_hidden_state = self.encoder.forward(embedded, mask_bias); // [batch, seq, hidden]
        let pooled_output = self.pooler.forward(last_hidden_state.clone()); // [batch, hidden]
        BertModelOutput {
            last_hidden_state,
            pooled_output,
        }
    }
}

// transformers/models/bert/modeling_bert.py: BertForSequenceClassification
/// BERT with dropout and a linear head on the pooled `[CLS]` state.
#[derive(Module, Debug)]
pub struct BertForSequenceClassification {
    /// The encoder.
    pub bert: BertModel,
    /// Dropout before the head.
    pub dropout: Dropout,
    /// `[hidden, num_labels]`.
    pub classifier: Linear,
}

impl BertClassifierConfig {
    /// Builds a freshly initialised encoder and head.
    ///
    /// # Panics
    ///
    /// If the configuration fails [`BertClassifierConfig::validate`].
    pub fn init(&self, device: &Device) -> BertForSequenceClassification {
        if let Err(message) = self.validate() {
            panic!("invalid BertClassifierConfig: {message}");
        }
        BertForSequenceClassification {
            bert: self.bert.init(device),
            dropout: DropoutConfig::new(
                self.classifier_dropout
                    .unwrap_or(self.bert.hidden_dropout_prob),
            )
            .init(),
            classifier: dense(
                self.bert.hidden_size,
                self.num_labels,
                self.bert.initializer_range,
                device,
            ),
        }
    }
}

impl BertForSequenceClassification {
    /// Number of outputs of the head.
    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// Logits (or regression scores when `num_labels == 1`).
    ///
    /// # Shapes
    ///
    /// - input: see [`BertModel::forward`]
    /// - output: `[batch, num_labels]`
    pub fn forward(&self, input: BertInput) -> Tensor<2> {
        let pooled = self.bert.forward(input).pooled_output; // [batch, hidden]
        self.classifier
            .forward(kernels::dropout(&self.dropout, pooled)) // [batch, num_labels]
    }

    /// Mean loss over the batch ([`sequence_loss`]): cross-entropy for [`Labels::Classes`],
    /// mean squared error for [`Labels::Scores`] (which needs `num_labels == 1`).
    ///
    /// # Shapes
    ///
    /// - logits: `[batch, num_labels]`
    /// - labels: `[batch]`
    /// - output: `[1]`
    ///
    /// # Panics
    ///
    /// If the batch sizes differ, or scores are given to a head with more than one output.
    pub fn loss(&self, logits: Tensor<2>, labels: Labels) -> Tensor<1> {
        sequence_loss(logits, labels)
    }
}
