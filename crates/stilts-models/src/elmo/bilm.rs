use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

use super::char_cnn::ElmoCharacterEncoder;
use super::config::ElmoConfig;
use super::lstm::{ElmoLstm, ElmoLstmState};

/// What the biLM gives for a batch.
#[derive(Debug, Clone)]
pub struct ElmoLayers {
    /// Layer 0 (the token representation, doubled) and each LSTM layer, `[forward; backward]`,
    /// each `[batch, seq, 2 projection]`, sentence boundaries included; zero at padding.
    pub layers: Vec<Tensor<3>>,
    /// 1 at the boundaries and words, 0 at padding, `[batch, seq]`.
    pub mask: Tensor<2>,
    /// The LSTMs' state after the batch (what the next batch starts from in stateful mode).
    pub state: ElmoLstmState,
}

// allennlp/modules/elmo.py: _ElmoBiLm
/// ELMo's bidirectional language model without its softmax: the character encoder and the
/// LSTM stack. Stateless by default: [`ElmoBiLm::forward`] starts every batch from a zero state,
/// so outputs do not depend on batch order; [`ElmoBiLm::forward_from`] takes a state, which
/// [`carry_state`] turns into AllenNLP's stateful mode.
#[derive(Module, Debug)]
pub struct ElmoBiLm {
    /// Context-free token representations.
    pub token_embedder: ElmoCharacterEncoder,
    /// The LSTM stack.
    pub elmo_lstm: ElmoLstm,
}

impl ElmoConfig {
    /// A freshly initialised biLM.
    ///
    /// # Panics
    ///
    /// If [`ElmoConfig::validate`] fails.
    pub fn init(&self, device: &Device) -> ElmoBiLm {
        if let Err(message) = self.validate() {
            panic!("invalid ELMo configuration: {message}");
        }
        ElmoBiLm {
            token_embedder: ElmoCharacterEncoder::init(self, device),
            elmo_lstm: ElmoLstm::init(self, device),
        }
    }
}

impl ElmoBiLm {
    /// The layers of a batch of character ids that carry their sentence boundaries (as
    /// `stilts_data::chars` builds them), from a zero state.
    ///
    /// # Shapes
    ///
    /// - chars: `[batch, seq, 50]` (padding rows all 0)
    /// - output.layers: each `[batch, seq, 2 projection]`; output.mask: `[batch, seq]`
    pub fn forward(&self, chars: Tensor<3, Int>) -> ElmoLayers {
        let batch = chars.dims()[0];
        let state = self.elmo_lstm.zero_state(batch, &chars.device());
        self.forward_from(chars, state)
    }

    /// As [`ElmoBiLm::forward`], with the LSTMs starting from `state` (`batch` rows).
    pub fn forward_from(&self, chars: Tensor<3, Int>, state: ElmoLstmState) -> ElmoLayers {
        let mask = chars
            .clone()
            .greater_elem(0)
            .int()
            .sum_dim(2)
            .greater_elem(0)
            .float(); // [batch, seq, 1]
        let [batch, seq, _] = mask.dims();
        let mask = mask.reshape([batch, seq]);
        let tokens = self.token_embedder.forward(chars); // [batch, seq, projection]
        let (lstm_layers, state) = self.elmo_lstm.forward(tokens.clone(), mask.clone(), state);
        let layer0 =
            Tensor::cat(vec![tokens.clone(), tokens], 2) * mask.clone().reshape([batch, seq, 1]);
        let mut layers = vec![layer0];
        layers.extend(lstm_layers);
        ElmoLayers {
            layers,
            mask,
            state,
        }
    }

    /// Number of layers the biLM gives (the token layer and one per LSTM layer).
    pub fn num_layers(&self) -> usize {
        self.elmo_lstm.forward_layers.len() + 1
    }
}

// allennlp/modules/encoder_base.py: _EncoderBase._get_initial_states and _update_states
/// The state a stateful biLM starts the next batch of `batch` rows from, given the state it kept
/// (`kept`, possibly of another batch size) and the batch's final state (`last`, of the
/// previous batch's size): a row takes the new state where the batch used it (its first
/// layer's hidden state is not all zero), keeps the old one otherwise; rows beyond either batch
/// start from zero. Returns the state to keep.
pub fn carry_state(kept: Option<ElmoLstmState>, last: ElmoLstmState) -> ElmoLstmState {
    let Some(kept) = kept else {
        return last;
    };
    let [new_rows, _] = last.hidden[0].dims();
    let [old_rows, _] = kept.hidden[0].dims();
    let used = last.hidden[0]
        .clone()
        .sum_dim(1)
        .not_equal_elem(0.0)
        .float(); // [new_rows, 1]
    let merge = |old: &Tensor<2>, new: &Tensor<2>| {
        let width = new.dims()[1];
        let head = old.clone().narrow(0, 0, new_rows.min(old_rows));
        let head = if new_rows > old_rows {
            Tensor::cat(
                vec![
                    head,
                    Tensor::zeros([new_rows - old_rows, width], &new.device()),
                ],
                0,
            )
        } else {
            head
        };
        let merged = new.clone() * used.clone() + head * (used.clone().neg() + 1.0);
        if old_rows > new_rows {
            Tensor::cat(
                vec![merged, old.clone().narrow(0, new_rows, old_rows - new_rows)],
                0,
            )
        } else {
            merged
        }
    };
    ElmoLstmState {
        hidden: kept
            .hidden
            .iter()
            .zip(&last.hidden)
            .map(|(o, n)| merge(o, n))
            .collect(),
        memory: kept
            .memory
            .iter()
            .zip(&last.memory)
            .map(|(o, n)| merge(o, n))
            .collect(),
    }
}

/// The first `batch` rows of a kept state, zero rows appended when it has fewer.
pub fn initial_state(kept: &ElmoLstmState, batch: usize) -> ElmoLstmState {
    let resize = |t: &Tensor<2>| {
        let [rows, width] = t.dims();
        if rows >= batch {
            t.clone().narrow(0, 0, batch)
        } else {
            Tensor::cat(
                vec![t.clone(), Tensor::zeros([batch - rows, width], &t.device())],
                0,
            )
        }
    };
    ElmoLstmState {
        hidden: kept.hidden.iter().map(resize).collect(),
        memory: kept.memory.iter().map(resize).collect(),
    }
}

// allennlp/nn/util.py: remove_sentence_boundaries
/// Drops the `<S>` and `</S>` positions of right-padded rows.
///
/// # Shapes
///
/// - tensor: `[batch, seq, dim]`; mask: `[batch, seq]` (boundaries included, so `seq >= 2`)
/// - output: `[batch, seq - 2, dim]` and its mask `[batch, seq - 2]`
pub fn remove_sentence_boundaries(tensor: Tensor<3>, mask: Tensor<2>) -> (Tensor<3>, Tensor<2>) {
    let [batch, seq, _] = tensor.dims();
    let words = mask.narrow(1, 2, seq - 2); // row i: 1 at j < len_i - 2
    let inner = tensor.narrow(1, 1, seq - 2) * words.clone().reshape([batch, seq - 2, 1]);
    (inner, words)
}
