use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Device, Tensor};

use super::config::ElmoConfig;

/// The hidden and memory state of one LSTM.
#[derive(Debug, Clone)]
pub struct CellState {
    /// Projected output, `[batch, projection_dim]`.
    pub hidden: Tensor<2>,
    /// Memory cell, `[batch, cell_size]`.
    pub memory: Tensor<2>,
}

// allennlp/modules/lstm_cell_with_projection.py: LstmCellWithProjection
/// An LSTM whose output is projected to a smaller width, with the memory cell and the
/// projection clipped. Gates are in PyTorch's order (input, forget, cell, output); bilm-tf's
/// (input, cell, forget, output) with its forget bias of 1 are converted on load.
#[derive(Module, Debug)]
pub struct LstmCellWithProjection {
    /// `[input, 4 cell]`, no bias.
    pub input_linearity: Linear,
    /// `[projection, 4 cell]`, with the gates' bias.
    pub state_linearity: Linear,
    /// `[cell, projection]`, no bias.
    pub state_projection: Linear,
    /// Whether this LSTM reads the sequence left to right.
    pub go_forward: bool,
    /// Clip of the memory cell.
    pub cell_clip: Option<f64>,
    /// Clip of the projected output.
    pub proj_clip: Option<f64>,
}

impl LstmCellWithProjection {
    /// A fresh LSTM of the sizes `config` gives, reading `input` wide rows.
    pub fn init(config: &ElmoConfig, input: usize, go_forward: bool, device: &Device) -> Self {
        let (cell, proj) = (config.cell_size, config.projection_dim);
        LstmCellWithProjection {
            input_linearity: LinearConfig::new(input, 4 * cell)
                .with_bias(false)
                .init(device),
            state_linearity: LinearConfig::new(proj, 4 * cell).init(device),
            state_projection: LinearConfig::new(cell, proj).with_bias(false).init(device),
            go_forward,
            cell_clip: config.cell_clip,
            proj_clip: config.proj_clip,
        }
    }

    fn cell_size(&self) -> usize {
        self.state_projection.weight.dims()[0]
    }

    /// Runs over a right-padded batch. A row's state changes only at its own positions (a
    /// backward LSTM starts at the row's last token), so padding never touches it; outputs at
    /// padding are zero.
    ///
    /// # Shapes
    ///
    /// - inputs: `[batch, seq, input]`
    /// - mask: `[batch, seq]` (1 for tokens, 0 for padding)
    /// - state, returned state: `[batch, projection]` and `[batch, cell]`
    /// - output: `[batch, seq, projection]`
    pub fn forward(
        &self,
        inputs: Tensor<3>,
        mask: Tensor<2>,
        state: CellState,
    ) -> (Tensor<3>, CellState) {
        let [batch, seq, _] = inputs.dims();
        let cell = self.cell_size();
        let projected_inputs = self.input_linearity.forward(inputs); // [batch, seq, 4 cell]
        let CellState {
            mut hidden,
            mut memory,
        } = state;
        let mut outputs = Vec::with_capacity(seq);
        for step in 0..seq {
            let index = if self.go_forward {
                step
            } else {
                seq - 1 - step
            };
            let active = mask.clone().narrow(1, index, 1); // [batch, 1]
            let gates = projected_inputs
                .clone()
                .narrow(1, index, 1)
                .reshape([batch, 4 * cell])
                + self.state_linearity.forward(hidden.clone()); // [batch, 4 cell]
            let gate = |i: usize| gates.clone().narrow(1, i * cell, cell);
            let input_gate = sigmoid(gate(0));
            let forget_gate = sigmoid(gate(1));
            let memory_init = tanh(gate(2));
            let output_gate = sigmoid(gate(3));
            let mut new_memory = input_gate * memory_init + forget_gate * memory.clone();
            if let Some(c) = self.cell_clip {
                new_memory = new_memory.clamp(-c, c);
            }
            let mut output = self
                .state_projection
                .forward(output_gate * tanh(new_memory.clone()));
            if let Some(c) = self.proj_clip {
                output = output.clamp(-c, c);
            }
            let keep = active.clone().neg() + 1.0;
            memory = new_memory * active.clone() + memory * keep.clone();
            hidden = output.clone() * active.clone() + hidden * keep;
            outputs.push(output * active);
        }
        if !self.go_forward {
            outputs.reverse();
        }
        (Tensor::stack(outputs, 1), CellState { hidden, memory })
    }
}

/// The state of a whole biLM LSTM stack: per layer, the forward and backward states side by
/// side (`[batch, 2 projection]` and `[batch, 2 cell]`), as AllenNLP keeps it between batches.
#[derive(Debug, Clone)]
pub struct ElmoLstmState {
    /// Per layer, `[batch, 2 projection]`.
    pub hidden: Vec<Tensor<2>>,
    /// Per layer, `[batch, 2 cell]`.
    pub memory: Vec<Tensor<2>>,
}

// allennlp/modules/elmo_lstm.py: ElmoLstm
/// The stacked forward and backward LSTMs of the biLM. Each layer's output is
/// `[forward; backward]`; with skip connections, layers after the first add their input.
#[derive(Module, Debug)]
pub struct ElmoLstm {
    /// Left-to-right LSTMs, one per layer.
    pub forward_layers: Vec<LstmCellWithProjection>,
    /// Right-to-left LSTMs, one per layer.
    pub backward_layers: Vec<LstmCellWithProjection>,
    /// Whether layers after the first add their input to their output.
    pub use_skip_connections: bool,
}

impl ElmoLstm {
    /// Fresh LSTMs.
    pub fn init(config: &ElmoConfig, device: &Device) -> Self {
        let layers = |go_forward| {
            (0..config.n_layers)
                .map(|_| {
                    LstmCellWithProjection::init(config, config.projection_dim, go_forward, device)
                })
                .collect()
        };
        ElmoLstm {
            forward_layers: layers(true),
            backward_layers: layers(false),
            use_skip_connections: config.use_skip_connections,
        }
    }

    /// A zero state for `batch` rows.
    pub fn zero_state(&self, batch: usize, device: &Device) -> ElmoLstmState {
        let (proj, cell) = self.sizes();
        let layers = self.forward_layers.len();
        ElmoLstmState {
            hidden: vec![Tensor::zeros([batch, 2 * proj], device); layers],
            memory: vec![Tensor::zeros([batch, 2 * cell], device); layers],
        }
    }

    fn sizes(&self) -> (usize, usize) {
        let [cell, proj] = self.forward_layers[0].state_projection.weight.dims();
        (proj, cell)
    }

    /// Runs every layer from `state`.
    ///
    /// # Shapes
    ///
    /// - inputs: `[batch, seq, projection]`
    /// - mask: `[batch, seq]`
    /// - output: one `[batch, seq, 2 projection]` per layer, and the final state
    pub fn forward(
        &self,
        inputs: Tensor<3>,
        mask: Tensor<2>,
        state: ElmoLstmState,
    ) -> (Vec<Tensor<3>>, ElmoLstmState) {
        let (proj, cell) = self.sizes();
        let split =
            |t: &Tensor<2>, width: usize, half: usize| t.clone().narrow(1, half * width, width);
        let mut forward_sequence = inputs.clone();
        let mut backward_sequence = inputs;
        let mut outputs = Vec::with_capacity(self.forward_layers.len());
        let mut finals = ElmoLstmState {
            hidden: Vec::new(),
            memory: Vec::new(),
        };
        for (i, (fwd, bwd)) in self
            .forward_layers
            .iter()
            .zip(&self.backward_layers)
            .enumerate()
        {
            let start = |half| CellState {
                hidden: split(&state.hidden[i], proj, half),
                memory: split(&state.memory[i], cell, half),
            };
            let (mut f_out, f_state) =
                fwd.forward(forward_sequence.clone(), mask.clone(), start(0));
            let (mut b_out, b_state) =
                bwd.forward(backward_sequence.clone(), mask.clone(), start(1));
            if i != 0 && self.use_skip_connections {
                f_out = f_out + forward_sequence;
                b_out = b_out + backward_sequence;
            }
            outputs.push(Tensor::cat(vec![f_out.clone(), b_out.clone()], 2));
            finals
                .hidden
                .push(Tensor::cat(vec![f_state.hidden, b_state.hidden], 1));
            finals
                .memory
                .push(Tensor::cat(vec![f_state.memory, b_state.memory], 1));
            forward_sequence = f_out;
            backward_sequence = b_out;
        }
        (outputs, finals)
    }
}
