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
//! Fine-tune with [`bert::AdamWGroupsConfig`], which leaves biases and LayerNorm weights
//! undecayed as Hugging Face's recipe does.
//!
//! # Models on the Hugging Face hub
//!
//! [`resolve_model`] accepts a local directory or a hub id (`org/name[@revision]`) and returns
//! a directory for `from_pretrained`, downloading into the standard Hugging Face cache when
//! needed (see [`hub`]; `HF_ENDPOINT`, `HF_HUB_OFFLINE`, `HF_HOME` are honoured):
//!
//! ```no_run
//! # use burn::prelude::*;
//! # use stilts_models::bert::BertForSequenceClassification;
//! # fn main() -> Result<(), stilts_models::ModelError> {
//! let dir = stilts_models::resolve_model("sentence-transformers/all-MiniLM-L6-v2")?;
//! let (model, _) = BertForSequenceClassification::from_pretrained(dir, 2, &Device::flex())?;
//! # Ok(())
//! # }
//! ```
//!
//! # Backends and features
//!
//! The default build runs on burn's `flex` backend (pure Rust, rayon and SIMD through burn's
//! default features) and needs no system library. Its default `x86-v4` feature adds AVX-512
//! matrix kernels to flex (gemm's `x86-v4`): gemm picks them at run time only where `avx512f`
//! is detected and falls back to its FMA/AVX2 or scalar kernels elsewhere, so a binary built
//! with it still runs on older CPUs (the parity tests pass on AVX2-only and on AVX-512 CPUs).
//! On a Sapphire Rapids core pair they double peak f32 GEMM (437 against 230 GFLOP/s) and take
//! MiniLM training from 0.76x to 1.03x PyTorch's rate (docs/benchmarks.md); on the AMD EPYC
//! measured before, gemm's AVX2 kernels already ran at PyTorch's rate. `default-features =
//! false` leaves them out.
//!
//! Other backends are cargo features, chosen at run time with [`device::DeviceChoice`]
//! (`"cpu"`, `"wgpu"`, `"cuda:0"`, `"tch-cpu"`, `"tch-cuda:0"`); a choice whose feature is
//! missing fails with an error naming the feature:
//!
//! - `wgpu`: burn's wgpu backend (Vulkan/Metal/DX12; software Vulkan through Mesa works, slowly);
//! - `cuda`: burn's native CUDA backend (needs the CUDA toolkit);
//! - `tch`: libtorch through `tch`. The build never downloads libtorch: point `LIBTORCH` at an
//!   unpacked libtorch, or set `LIBTORCH_USE_PYTORCH=1` to use the pip `torch` of the active
//!   Python (the version tch 0.22 expects).
//!
//! [`device::Precision`] (`bf16`, `f16`) sets a device's default float type before the model
//! is built, where the backend supports it. Each feature changes burn's feature set (a full
//! rebuild); `cargo xtask check-backends` builds and tests them.

#![warn(missing_docs)]

pub mod bert;
pub mod device;
pub mod elmo;
pub mod encoder;
mod error;
pub mod gpt;
pub mod hf;
pub mod kernels;
pub mod loss;
pub mod mixed;
pub mod peft;
pub mod pickle_guard;

/// The burn this crate is built on, so dependents use the same version and features.
pub use burn;
pub use encoder::{
    Encoder, EncoderConfig, EncoderInput, EncoderKind, EncoderOutput, SentenceEncoder,
};
pub use error::ModelError;
/// Hub ids and the Hugging Face cache (from `stilts-io`).
pub use stilts_io::hub;
pub use stilts_io::hub::resolve_model;
