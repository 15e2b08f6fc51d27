//! OpenAI GPT (Radford et al. 2018) as in Hugging Face `transformers/models/openai/modeling_openai.py`,
//! with loaders for Hugging Face checkpoints ([`GptModel::from_hf_weights`]) and OpenAI's original
//! release ([`GptModel::from_original_release`]).

mod config;
mod encoder;
mod hf;
mod model;
pub mod original;
mod peft;

pub use config::{GptActivation, GptConfig};
pub use encoder::param_groups;
pub use hf::{GPT_IGNORED_KEYS, GPT_KEY_MAP, map_gpt_key};
pub use model::{Attention, Block, Conv1D, GptModel, GptOutput, Mlp};
pub use peft::{GPT_LORA_PROJECTIONS, GPT_PEFT_KEY_MAP, map_gpt_peft_key};
