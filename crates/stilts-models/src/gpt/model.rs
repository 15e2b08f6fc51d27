use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
};
use burn::tensor::activation::{relu, silu};
use burn::tensor::{Device, FloatDType, Int, Tensor};

use super::config::{GptActivation, GptConfig};
use crate::kernels::{self, Norm};
use crate::mixed;
use crate::peft::Lora;

fn normal(std: f64) -> Initializer {
    Initializer::Normal { mean: 0.0, std }
}

// transformers/pytorch_utils.py: Conv1D
/// A linear map whose weight is stored `[in, out]`, as OpenAI's code and Hugging Face's GPT
/// store it (burn's `Linear` would be transposed on import from PyTorch).
#[derive(Module, Debug)]
pub struct Conv1D {
    /// `[in, out]`.
    pub weight: Param<Tensor<2>>,
    /// `[out]`.
    pub bias: Param<Tensor<1>>,
}

impl Conv1D {
    /// normal(0, `std`) weights and zero bias, as `transformers`' `_init_weights`.
    pub fn new(d_input: usize, d_output: usize, std: f64, device: &Device) -> Self {
        Conv1D {
            weight: normal(std).init([d_input, d_output], device),
            bias: Initializer::Zeros.init([d_output], device),
        }
    }

    /// `x W + b`.
    ///
    /// # Shapes
    ///
    /// - input: `[..., in]`
    /// - output: `[..., out]`
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        kernels::linear_rows(input, self.weight.val(), Some(self.bias.val()))
    }

    /// `x W + b`, plus the LoRA update of this projection when there is one (`peft`'s LoRA on
    /// a `Conv1D`, `fan_in_fan_out`).
    ///
    /// # Shapes
    ///
    /// - input: `[batch, seq, in]`
    /// - output: `[batch, seq, out]`
    pub fn forward_lora(&self, lora: Option<&Lora>, input: Tensor<3>) -> Tensor<3> {
        match lora {
            None => self.forward(input),
            Some(l) => self.forward(input.clone()) + l.forward(input),
        }
    }

    /// The projection with `lora`'s update folded into its weight (`peft`'s
    /// `merge_and_unload`); the `[in, out]` layout is the update's own.
    pub fn merge(self, lora: Option<Lora>) -> Conv1D {
        let Some(l) = lora else { return self };
        let delta = l.delta(); // [in, out]
        Conv1D {
            weight: self.weight.map(|w| w + delta),
            ..self
        }
    }
}

fn layer_norm(config: &GptConfig, device: &Device) -> LayerNorm {
    LayerNormConfig::new(config.n_embd)
        .with_epsilon(config.layer_norm_epsilon)
        .init(device)
}

// transformers/models/openai/modeling_openai.py: Attention
/// Causal multi-head self-attention with a padding mask.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query, key and value projections together, `[n_embd, 3 n_embd]`.
    pub c_attn: Conv1D,
    /// Output projection, `[n_embd, n_embd]`.
    pub c_proj: Conv1D,
    /// LoRA update of `c_attn` (query, key and value together, as `peft` adapts GPT).
    pub lora_c_attn: Option<Lora>,
    /// LoRA update of `c_proj`.
    pub lora_c_proj: Option<Lora>,
    /// Dropout on attention probabilities.
    pub attn_dropout: Dropout,
    /// Dropout on the output.
    pub resid_dropout: Dropout,
    /// Number of heads.
    pub n_head: usize,
}

impl Attention {
    /// Builds fresh projections.
    pub fn init(config: &GptConfig, device: &Device) -> Self {
        let e = config.n_embd;
        let std = config.initializer_range;
        Attention {
            c_attn: Conv1D::new(e, 3 * e, std, device),
            c_proj: Conv1D::new(e, e, std, device),
            lora_c_attn: None,
            lora_c_proj: None,
            attn_dropout: DropoutConfig::new(config.attn_pdrop).init(),
            resid_dropout: DropoutConfig::new(config.resid_pdrop).init(),
            n_head: config.n_head,
        }
    }

    /// Attends every position to itself and the earlier unmasked positions: scores scaled by
    /// `1/sqrt(head_size)`, `w * causal - 1e4 * (1 - causal)` as `transformers` computes it, then
    /// the padding bias added.
    ///
    /// # Shapes
    ///
    /// - hidden: `[batch, seq, n_embd]`
    /// - causal: `[1, 1, seq, seq]` (1 at and below the diagonal, else 0)
    /// - mask_bias: `[batch, 1, 1, seq]` (0 for tokens, the lowest `f32` for padding)
    /// - output: `[batch, seq, n_embd]`
    pub fn forward(&self, hidden: Tensor<3>, causal: Tensor<4>, mask_bias: Tensor<4>) -> Tensor<3> {
        let [batch, seq, width] = hidden.dims();
        let heads = self.n_head;
        let head_size = width / heads;
        let qkv = self.c_attn.forward_lora(self.lora_c_attn.as_ref(), hidden); // [batch, seq, 3 * width]
        let split = |i: usize| {
            qkv.clone()
                .narrow(2, i * width, width) // [batch, seq, width]
                .reshape([batch, seq, heads, head_size])
                .swap_dims(1, 2) // [batch, heads, seq, head_size]
        };
        let (query, key, value) = (split(0), split(1), split(2));
        let scores = kernels::matmul_div(query, key.swap_dims(2, 3), (head_size as f64).sqrt()); // [batch, heads, seq, seq]
        let outside = causal.clone().neg().add_scalar(1.0).mul_scalar(-1e4); // [1, 1, seq, seq]
        let scores = scores * causal + outside + mask_bias; // [batch, heads, seq, seq]
        let probs = kernels::dropout(&self.attn_dropout, kernels::softmax_last(scores));
        let attended = kernels::matmul(probs, value) // [batch, heads, seq, head_size]
            .swap_dims(1, 2) // [batch, seq, heads, head_size]
            .reshape([batch, seq, width]);
        let projected = self
            .c_proj
            .forward_lora(self.lora_c_proj.as_ref(), attended);
        kernels::dropout(&self.resid_dropout, projected)
    }
}

// transformers/models/openai/modeling_openai.py: MLP
/// The feed-forward block: `c_proj(act(c_fc(x)))`, with dropout.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `[n_embd, 4 n_embd]`.
    pub c_fc: Conv1D,
    /// `[4 n_embd, n_embd]`.
    pub c_proj: Conv1D,
    /// LoRA update of `c_fc`.
    pub lora_c_fc: Option<Lora>,
    /// LoRA update of `c_proj`.
    pub lora_c_proj: Option<Lora>,
    /// Residual dropout.
    pub dropout: Dropout,
    /// The activation.
    #[module(skip)]
    pub afn: GptActivation,
}

impl Mlp {
    /// Builds fresh projections.
    pub fn init(config: &GptConfig, device: &Device) -> Self {
        let e = config.n_embd;
        let std = config.initializer_range;
        Mlp {
            c_fc: Conv1D::new(e, 4 * e, std, device),
            c_proj: Conv1D::new(4 * e, e, std, device),
            lora_c_fc: None,
            lora_c_proj: None,
            dropout: DropoutConfig::new(config.resid_pdrop).init(),
            afn: config.afn,
        }
    }

    /// # Shapes
    ///
    /// - hidden: `[batch, seq, n_embd]`
    /// - output: `[batch, seq, n_embd]`
    pub fn forward(&self, hidden: Tensor<3>) -> Tensor<3> {
        let inner = self.c_fc.forward_lora(self.lora_c_fc.as_ref(), hidden); // [batch, seq, 4 n_embd]
        let inner = match self.afn {
            GptActivation::GeluTanh => kernels::gelu_tanh(inner),
            GptActivation::GeluErf => kernels::gelu(inner),
            GptActivation::Relu => relu(inner),
            GptActivation::Silu => silu(inner),
        };
        let projected = self.c_proj.forward_lora(self.lora_c_proj.as_ref(), inner);
        kernels::dropout(&self.dropout, projected)
    }
}

// transformers/models/openai/modeling_openai.py: Block
/// One post-LN transformer block: `n = ln_1(x + attn(x))`, `h = ln_2(n + mlp(n))`.
#[derive(Module, Debug)]
pub struct Block {
    /// Causal self-attention.
    pub attn: Attention,
    /// LayerNorm after the attention residual.
    pub ln_1: LayerNorm,
    /// Feed-forward block.
    pub mlp: Mlp,
    /// LayerNorm after the feed-forward residual.
    pub ln_2: LayerNorm,
    /// Their epsilon (`layer_norm_epsilon`).
    pub layer_norm_epsilon: f64,
}

impl Block {
    /// Builds a fresh block.
    pub fn init(config: &GptConfig, device: &Device) -> Self {
        Block {
            attn: Attention::init(config, device),
            ln_1: layer_norm(config, device),
            mlp: Mlp::init(config, device),
            ln_2: layer_norm(config, device),
            layer_norm_epsilon: config.layer_norm_epsilon,
        }
    }

    /// # Shapes
    ///
    /// - hidden: `[batch, seq, n_embd]`
    /// - causal: `[1, 1, seq, seq]`
    /// - mask_bias: `[batch, 1, 1, seq]`
    /// - output: `[batch, seq, n_embd]`
    pub fn forward(&self, hidden: Tensor<3>, causal: Tensor<4>, mask_bias: Tensor<4>) -> Tensor<3> {
        let attended = self.attn.forward(hidden.clone(), causal, mask_bias);
        let norm = |module| Norm {
            module,
            epsilon: self.layer_norm_epsilon,
        };
        let n = norm(&self.ln_1).forward_residual(attended, hidden); // [batch, seq, n_embd]
        let m = self.mlp.forward(n.clone());
        norm(&self.ln_2).forward_residual(m, n)
    }
}

// transformers/models/openai/modeling_openai.py: OpenAIGPTModel (the LM head of
// OpenAIGPTLMHeadModel is its token embedding, tied)
/// OpenAI GPT: token and position embeddings, `n_layer` blocks, no final LayerNorm; the language
/// model head is the token embedding matrix.
#[derive(Module, Debug)]
pub struct GptModel {
    /// `[vocab_size, n_embd]`.
    pub tokens_embed: Embedding,
    /// `[n_positions, n_embd]`.
    pub positions_embed: Embedding,
    /// Dropout on the embeddings.
    pub drop: Dropout,
    /// The blocks.
    pub h: Vec<Block>,
}

impl GptConfig {
    /// A freshly initialised model (normal(0, `initializer_range`) weights, zero biases, unit
    /// LayerNorms).
    ///
    /// # Panics
    ///
    /// If the configuration fails [`GptConfig::validate`].
    pub fn init(&self, device: &Device) -> GptModel {
        if let Err(message) = self.validate() {
            panic!("invalid GptConfig: {message}");
        }
        let table = |n: usize| {
            EmbeddingConfig::new(n, self.n_embd)
                .with_initializer(normal(self.initializer_range))
                .init(device)
        };
        GptModel {
            tokens_embed: table(self.vocab_size),
            positions_embed: table(self.n_positions),
            drop: DropoutConfig::new(self.embd_pdrop).init(),
            h: (0..self.n_layer)
                .map(|_| Block::init(self, device))
                .collect(),
        }
    }
}

/// What [`GptModel::forward`] gives.
#[derive(Debug, Clone)]
pub struct GptOutput {
    /// The last block's states, `[batch, seq, n_embd]`.
    pub last_hidden_state: Tensor<3>,
}

impl GptModel {
    /// Number of token ids the embeddings cover.
    pub fn vocab_size(&self) -> usize {
        self.tokens_embed.weight.dims()[0]
    }

    /// Appends `n` token rows drawn from normal(0, `std`) (the fine-tuning tokens of Radford
    /// et al.); the positions and blocks are unchanged.
    pub fn extend_vocab(mut self, n: usize, std: f64, device: &Device) -> Self {
        if n == 0 {
            return self;
        }
        let [_, width] = self.tokens_embed.weight.dims();
        let extra: Tensor<2> = normal(std).init([n, width], device).val(); // [n, n_embd]
        let weight = Tensor::cat(vec![self.tokens_embed.weight.val(), extra], 0);
        self.tokens_embed.weight = Param::from_tensor(weight);
        self
    }

    /// Runs the blocks over a right-padded batch.
    ///
    /// # Shapes
    ///
    /// - input_ids: `[batch, seq]`
    /// - attention_mask: `[batch, seq]` (1 for tokens, 0 for padding)
    /// - output.last_hidden_state: `[batch, seq, n_embd]`
    ///
    /// # Panics
    ///
    /// If `seq` exceeds `n_positions` or an id is out of the embedding table.
    pub fn forward(&self, input_ids: Tensor<2, Int>, attention_mask: Tensor<2, Int>) -> GptOutput {
        let [batch, seq] = input_ids.dims();
        let [max_positions, _] = self.positions_embed.weight.dims();
        assert!(
            seq <= max_positions,
            "sequence length {seq} exceeds n_positions {max_positions}"
        );
        let device = input_ids.device();
        let positions = self
            .positions_embed
            .weight
            .val()
            .narrow(0, 0, seq) // [seq, n_embd]
            .unsqueeze::<3>(); // [1, seq, n_embd]
        let tokens = self.tokens_embed.forward(input_ids); // [batch, seq, n_embd]
        let hidden = kernels::dropout(&self.drop, tokens + positions);
        let causal = Tensor::<2>::ones([seq, seq], &device)
            .tril(0)
            .reshape([1, 1, seq, seq]); // [1, 1, seq, seq]
        let causal = mixed::like(causal, &hidden);
        let mask_bias = attention_mask
            .float() // [batch, seq]
            .neg()
            .add_scalar(1.0)
            .mul_scalar(f32::MIN)
            .reshape([batch, 1, 1, seq]);
        let mask_bias = mixed::like(mask_bias, &hidden);
        let last_hidden_state = self.h.iter().fold(hidden, |h, block| {
            block.forward(h, causal.clone(), mask_bias.clone())
        });
        GptOutput { last_hidden_state }
    }

    /// Language-model logits of hidden states: the states times the token embeddings.
    ///
    /// # Shapes
    ///
    /// - hidden: `[..., n_embd]`
    /// - output: `[..., vocab_size]`
    pub fn lm_logits<const D: usize>(&self, hidden: Tensor<D>) -> Tensor<D> {
        let embeddings = self.tokens_embed.weight.val(); // [vocab, n_embd]
        kernels::linear_rows(hidden, embeddings.transpose(), None)
    }

    /// The language-model loss of Radford et al.'s fine-tuning: each example's mean
    /// next-token cross-entropy over its tokens (position `t` predicts token `t + 1`, padding
    /// excluded), averaged over the batch (`finetune-transformer-lm`'s `train.py`).
    ///
    /// # Shapes
    ///
    /// - hidden: `[batch, seq, n_embd]`
    /// - input_ids, attention_mask: `[batch, seq]`
    /// - output: `[1]`
    pub fn lm_loss(
        &self,
        hidden: Tensor<3>,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
    ) -> Tensor<1> {
        let [batch, seq, width] = hidden.dims();
        if seq < 2 {
            return Tensor::zeros([1], &hidden.device());
        }
        let states = hidden.narrow(1, 0, seq - 1); // [batch, seq - 1, n_embd]
        let logits = self.lm_logits(states.reshape([batch * (seq - 1), width])); // [B(S-1), V]
        let logits = logits.cast(FloatDType::F32); // the loss in fp32 under mixed precision
        let targets = input_ids.narrow(1, 1, seq - 1).reshape([batch * (seq - 1)]);
        let nll = kernels::cross_entropy(logits, targets).reshape([batch, seq - 1]);
        let mask = attention_mask.narrow(1, 1, seq - 1).float(); // [batch, seq - 1]
        let per_example = (nll * mask.clone()).sum_dim(1) / mask.sum_dim(1).clamp_min(1.0); // [batch, 1]
        per_example.mean() // [1]
    }
}
