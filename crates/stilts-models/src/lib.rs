//! Sentence encoders for STILTs on burn: BERT, GPT and ELMo, and loaders for the weight formats
//! users have. Models know nothing about GLUE: they map token ids to hidden states and logits.
//!
//! This crate is a leaf of the workspace (see `ARCHITECTURE.md`).
//!
//! # BERT
//!
//! ```no_run
//! use burn::prelude::*;
//! use stilts_models::bert::{BertForSequenceClassification, BertInput};
//!
//! # fn main() -> Result<(), stilts_models::ModelError> {
//! let device = Device::flex();
//! let (model, report) =
//!     BertForSequenceClassification::from_pretrained("models/bert-base-uncased", 2, &device)?;
//! assert!(report.missing.is_empty());
//! let ids = Tensor::<2, Int>::from_data([[101, 7592, 102]], &device);
//! let input = BertInput::new(ids.clone(), ids.zeros_like(), ids.ones_like());
//! let logits = model.forward(input); // [batch, num_labels]
//! # Ok(())
//! # }
//! ```
//!
//! Dropout is active only when the model lives on an autodiff device
//! (`Device::flex().autodiff()`); on a plain device every forward pass is deterministic.

pub mod bert;
mod error;

pub use error::ModelError;
