//! BERT (Devlin et al. 2019) as in Hugging Face `transformers/models/bert/modeling_bert.py`.

mod checkpoint;
mod config;
mod encoder;
mod hf;
mod model;
mod optim;
mod peft;

pub use crate::loss::Labels;
pub use checkpoint::{CONFIG_FILE, WEIGHTS_FILE};
pub use config::{BertClassifierConfig, BertConfig};
pub use encoder::{in_param_group, param_groups};
pub use hf::{
    BERT_IGNORED_KEYS, BERT_KEY_MAP, BERT_PEFT_KEY_MAP, LoadReport, is_peft_path, map_hf_key,
    map_peft_key, weights_file,
};
pub use model::{
    BertAttention, BertEmbeddings, BertEncoder, BertForSequenceClassification, BertInput,
    BertIntermediate, BertLayer, BertModel, BertModelOutput, BertOutput, BertPooler,
    BertSelfAttention, BertSelfOutput,
};
pub use optim::{AdamWGroupsConfig, BertAdam, BertAdamGroupsConfig, FusedAdamW, NO_DECAY_PATTERN};
pub use peft::beside_base;
