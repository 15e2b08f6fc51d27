//! OpenAI GPT behind the encoder seam ([`SentenceEncoder`]).

use burn::module::Module;
use burn::tensor::Tensor;

use super::model::GptModel;
use crate::encoder::{EncoderInput, EncoderOutput, SentenceEncoder};

impl SentenceEncoder for GptModel {
    /// The representation heads read (and the summary) is the last block's state at each row's
    /// last token: the extract token of a fine-tuning input (Radford et al.), the last BPE token
    /// of plain text. With `input.with_aux_loss`, the language-model loss of the batch
    /// ([`GptModel::lm_loss`]) comes along.
    ///
    /// # Shapes
    ///
    /// - input: `[batch, seq]` each (right-padded)
    /// - output.pooled, output.summary: `[batch, n_embd]`
    /// - output.tokens: `[batch, seq, n_embd]`
    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        let out = self.forward(input.input_ids.clone(), input.attention_mask.clone());
        let hidden = out.last_hidden_state; // [batch, seq, n_embd]
        let [batch, _, width] = hidden.dims();
        let last = input
            .attention_mask
            .clone()
            .sum_dim(1) // [batch, 1]
            .sub_scalar(1)
            .clamp_min(0)
            .reshape([batch, 1, 1])
            .repeat_dim(2, width); // [batch, 1, n_embd]
        let summary = hidden.clone().gather(1, last).reshape([batch, width]); // [batch, n_embd]
        let aux_loss = input
            .with_aux_loss
            .then(|| self.lm_loss(hidden.clone(), input.input_ids, input.attention_mask));
        EncoderOutput {
            pooled: summary.clone(),
            summary,
            tokens: hidden,
            token_mask: None,
            aux_loss,
        }
    }

    /// Embeddings, attention probabilities and every residual branch.
    fn set_dropout(&mut self, p: f64) {
        self.drop.prob = p;
        for block in &mut self.h {
            block.attn.attn_dropout.prob = p;
            block.attn.resid_dropout.prob = p;
            block.mlp.dropout.prob = p;
        }
    }

    /// `embeddings` (tokens and positions), `layer.0` ... `layer.{L-1}`.
    fn param_groups(&self) -> Vec<String> {
        param_groups(self.h.len())
    }

    fn freeze_params(mut self, group: &str) -> Result<Self, String> {
        let layer = group
            .strip_prefix("layer.")
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < self.h.len());
        match (group, layer) {
            ("all", _) => return Ok(self.no_grad()),
            ("embeddings", _) => {
                self.tokens_embed = self.tokens_embed.no_grad();
                self.positions_embed = self.positions_embed.no_grad();
            }
            (_, Some(i)) => {
                let block = self.h.remove(i);
                self.h.insert(i, block.no_grad());
            }
            _ => {
                return Err(format!(
                    "GPT has no parameter group `{group}` (groups: all, {})",
                    self.param_groups().join(", ")
                ));
            }
        }
        Ok(self)
    }

    fn lm_logits(&self, states: Tensor<2>) -> Option<Tensor<2>> {
        Some(GptModel::lm_logits(self, states))
    }
}

/// The parameter groups of a GPT of `layers` blocks.
pub fn param_groups(layers: usize) -> Vec<String> {
    let mut groups = vec!["embeddings".to_owned()];
    groups.extend((0..layers).map(|i| format!("layer.{i}")));
    groups
}
