//! ELMo behind the encoder seam ([`SentenceEncoder`]), set up as the paper's Appendix A (after
//! jiant): the biLM's layers mixed by a [`ScalarMix`], dropout, every word projected, then
//! max-pooled over time. Token ids are ELMo's character ids, 50 per word with the sentence
//! boundaries, flattened (`stilts_data::chars::ElmoTokenizer` makes them).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::bilm::{ElmoBiLm, remove_sentence_boundaries};
use super::config::{ElmoConfig, MAX_CHARACTERS_PER_TOKEN};
use super::mix::ScalarMix;
use crate::encoder::{EncoderInput, EncoderOutput, SentenceEncoder};
use crate::kernels;

/// ELMo as a sentence encoder.
#[derive(Module, Debug)]
pub struct ElmoEncoder {
    /// The biLM.
    pub bilm: ElmoBiLm,
    /// The task's layer weights and scale.
    pub scalar_mix: ScalarMix,
    /// Dropout on the mixed representation.
    pub dropout: Dropout,
    /// Applied to every word before max-pooling, `[2 projection, pool_dim]`.
    pub pool_projection: Linear,
}

impl ElmoConfig {
    /// The encoder around a biLM (fresh mix, equal weights; fresh pooling projection).
    pub fn encoder(&self, bilm: ElmoBiLm, device: &Device) -> ElmoEncoder {
        ElmoEncoder {
            scalar_mix: ScalarMix::new(bilm.num_layers(), self.do_layer_norm, device),
            bilm,
            dropout: DropoutConfig::new(self.dropout).init(),
            pool_projection: LinearConfig::new(self.output_dim(), self.pool_dim)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: self.initializer_range,
                })
                .init(device),
        }
    }

    /// A freshly initialised encoder.
    pub fn init_encoder(&self, device: &Device) -> ElmoEncoder {
        self.encoder(self.init(device), device)
    }
}

impl ElmoEncoder {
    /// The mixed representation of every word (boundaries removed) and the word mask.
    ///
    /// # Shapes
    ///
    /// - input.input_ids: `[batch, 50 (words + 2)]`
    /// - output: `[batch, words, 2 projection]` and `[batch, words]`
    pub fn words(&self, input: &EncoderInput) -> (Tensor<3>, Tensor<2>) {
        let [batch, flat] = input.input_ids.dims();
        let chars = input.input_ids.clone().reshape([
            batch,
            flat / MAX_CHARACTERS_PER_TOKEN,
            MAX_CHARACTERS_PER_TOKEN,
        ]);
        let out = self.bilm.forward(chars);
        let mixed = self.scalar_mix.forward(out.layers, out.mask.clone());
        remove_sentence_boundaries(mixed, out.mask)
    }
}

impl SentenceEncoder for ElmoEncoder {
    /// `pooled` (and `summary`) is the max over a sentence's words of the projected, mixed
    /// representation; `tokens` the mixed representation of each word (zero at padding).
    ///
    /// # Shapes
    ///
    /// - input.input_ids: `[batch, 50 (words + 2)]` (right-padded with 0)
    /// - output.pooled, output.summary: `[batch, pool_dim]`
    /// - output.tokens: `[batch, words, 2 projection]`
    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        let (words, mask) = self.words(&input);
        let words = kernels::dropout(&self.dropout, words);
        let [batch, seq, _] = words.dims();
        let width = self.pool_projection.weight.dims()[1];
        let pooled = if seq == 0 {
            Tensor::zeros([batch, width], &words.device())
        } else {
            let projected = self.pool_projection.forward(words.clone()); // [batch, words, pool_dim]
            // Padding gets a very negative value so the max is over words only; a sentence
            // without words (an empty text) pools to zero.
            let padding = (mask.clone().neg() + 1.0).reshape([batch, seq, 1]) * -1e9;
            let any_word = mask.clone().sum_dim(1).clamp_max(1.0); // [batch, 1]
            (projected + padding).max_dim(1).reshape([batch, width]) * any_word
        };
        EncoderOutput {
            pooled: pooled.clone(),
            summary: pooled,
            tokens: words,
            token_mask: Some(mask),
            aux_loss: None,
        }
    }

    fn set_dropout(&mut self, p: f64) {
        self.dropout.prob = p;
    }

    /// `char_cnn` (character embedding, convolutions, highways, projection), `lstm.0` ...
    /// `lstm.{L-1}` (both directions), and `bilm` (all of those: frozen, only the scalar mix,
    /// the pooling projection and the heads train, the original ELMo papers' setup).
    fn param_groups(&self) -> Vec<String> {
        param_groups(self.bilm.elmo_lstm.forward_layers.len())
    }

    fn freeze_params(mut self, group: &str) -> Result<Self, String> {
        let layer = group
            .strip_prefix("lstm.")
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < self.bilm.elmo_lstm.forward_layers.len());
        match (group, layer) {
            ("all", _) => return Ok(self.no_grad()),
            ("bilm", _) => self.bilm = self.bilm.no_grad(),
            ("char_cnn", _) => self.bilm.token_embedder = self.bilm.token_embedder.no_grad(),
            (_, Some(i)) => {
                let lstm = &mut self.bilm.elmo_lstm;
                let f = lstm.forward_layers.remove(i);
                lstm.forward_layers.insert(i, f.no_grad());
                let b = lstm.backward_layers.remove(i);
                lstm.backward_layers.insert(i, b.no_grad());
            }
            _ => {
                return Err(format!(
                    "ELMo has no parameter group `{group}` (groups: all, {})",
                    self.param_groups().join(", ")
                ));
            }
        }
        Ok(self)
    }
}

/// The parameter groups of an ELMo of `layers` LSTM layers.
pub fn param_groups(layers: usize) -> Vec<String> {
    let mut groups = vec!["bilm".to_owned(), "char_cnn".to_owned()];
    groups.extend((0..layers).map(|i| format!("lstm.{i}")));
    groups
}
