//! ELMo (Peters et al. 2018) as AllenNLP's `allennlp/modules/elmo.py` and bilm-tf define it: a
//! character CNN with highway layers and a projection gives context-free token
//! representations, stacked forward and backward LSTMs with projections contextualise them,
//! and a [`ScalarMix`] weights the layers for a task. Released weights (`options.json` and an
//! HDF5 file) load with [`ElmoBiLm::from_files`]; character ids come from
//! `stilts_data::chars`, sentence boundaries included.

mod bilm;
mod char_cnn;
mod config;
mod encoder;
mod lstm;
mod mix;
pub mod weights;

pub use bilm::{ElmoBiLm, ElmoLayers, carry_state, initial_state, remove_sentence_boundaries};
pub use char_cnn::{ElmoCharacterEncoder, Highway};
pub use config::{CharActivation, ElmoConfig, MAX_CHARACTERS_PER_TOKEN, RELEASED_FILTERS};
pub use encoder::{ElmoEncoder, param_groups};
pub use lstm::{CellState, ElmoLstm, ElmoLstmState, LstmCellWithProjection};
pub use mix::ScalarMix;
