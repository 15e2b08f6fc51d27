//! BERT behind the encoder seam ([`SentenceEncoder`]).

use burn::module::Module;

use super::model::{BertInput, BertModel};
use crate::encoder::{EncoderInput, EncoderOutput, SentenceEncoder};

impl SentenceEncoder for BertModel {
    /// The pooled `[CLS]` (`tanh(dense(h_[CLS]))`) is the representation heads read, as in
    /// `BertForSequenceClassification`; `summary` is the last layer's raw `[CLS]` state.
    ///
    /// # Shapes
    ///
    /// - input: `[batch, seq]` each
    /// - output.pooled, output.summary: `[batch, hidden]`
    /// - output.tokens: `[batch, seq, hidden]`
    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        let out = self.forward(BertInput::new(
            input.input_ids,
            input.token_type_ids,
            input.attention_mask,
        ));
        let [batch, _, width] = out.last_hidden_state.dims();
        let summary = out
            .last_hidden_state
            .clone()
            .narrow(1, 0, 1) // [batch, 1, hidden]
            .reshape([batch, width]); // [batch, hidden]
        EncoderOutput {
            pooled: out.pooled_output,
            summary,
            tokens: out.last_hidden_state,
            token_mask: None,
            aux_loss: None,
        }
    }

    /// Embeddings, attention probabilities and every sub-layer output.
    fn set_dropout(&mut self, p: f64) {
        self.embeddings.dropout.prob = p;
        for layer in &mut self.encoder.layers {
            layer.attention.self_attention.dropout.prob = p;
            layer.attention.output.dropout.prob = p;
            layer.output.dropout.prob = p;
        }
    }

    /// `embeddings`, `layer.0` ... `layer.{L-1}`, `pooler`.
    fn param_groups(&self) -> Vec<String> {
        param_groups(self.encoder.layers.len())
    }

    fn freeze_params(self, group: &str) -> Result<Self, String> {
        self.set_group_grad(group, false)
    }
}

impl BertModel {
    /// Sets whether a parameter group (see [`SentenceEncoder::param_groups`], or `all`)
    /// trains; an unknown name is an error listing the groups.
    pub fn set_group_grad(mut self, group: &str, require_grad: bool) -> Result<Self, String> {
        let layer = group
            .strip_prefix("layer.")
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < self.encoder.layers.len());
        match (group, layer) {
            ("all", _) => return Ok(self.set_require_grad(require_grad)),
            ("embeddings", _) => {
                self.embeddings = self.embeddings.set_require_grad(require_grad);
            }
            ("pooler", _) => self.pooler = self.pooler.set_require_grad(require_grad),
            (_, Some(i)) => {
                let l = self.encoder.layers.remove(i);
                self.encoder
                    .layers
                    .insert(i, l.set_require_grad(require_grad));
            }
            _ => {
                return Err(format!(
                    "BERT has no parameter group `{group}` (groups: all, {})",
                    self.param_groups().join(", ")
                ));
            }
        }
        Ok(self)
    }
}

/// Whether a parameter path of a model holding a BERT (`...embeddings.*`, `...layers.N.*`,
/// `...pooler.*`) belongs to the parameter group `group`.
pub fn in_param_group(path: &str, group: &str) -> bool {
    match group.strip_prefix("layer.") {
        Some(i) => path.contains(&format!(".layers.{i}.")),
        None => path.contains(&format!(".{group}.")) || path.starts_with(&format!("{group}.")),
    }
}

/// The parameter groups of a BERT of `layers` layers.
pub fn param_groups(layers: usize) -> Vec<String> {
    let mut groups = vec!["embeddings".to_owned()];
    groups.extend((0..layers).map(|i| format!("layer.{i}")));
    groups.push("pooler".to_owned());
    groups
}
