//! Data for STILTs, and nothing about models: every GLUE task in its official layout, SNLI,
//! custom tasks declared in TOML, seeded downsampling with manifests, the Real/Fake word-swap
//! task, the tokenizers of the paper's encoders (BERT's WordPiece, GPT's BPE, ELMo's
//! characters), GLUE metrics, and fetching GLUE. It links no tensor library, so it serves data
//! pipelines and evaluation scripts as well as `stilts-train`.
//!
//! - [`task`], [`glue`], [`custom`]: what a task is ([`Task`]: input kind, labels, metrics,
//!   splits and their file layouts), the built-in ones ([`BuiltinTask`]) and TOML ones
//!   ([`custom::TaskRef`] names either).
//! - [`dataset`]: [`Task::load`] reads a split into a [`Dataset`]; a malformed row is a
//!   [`DataError`] naming file, line and field.
//! - [`sample`], [`rng`]: the paper's 1k/5k regimes as seeded subsets with a
//!   [`sample::SampleManifest`] that re-selects them exactly; streams stable across platforms.
//! - [`encoding`]: [`encoding::Tokenizer`], any family found in a model directory, turning
//!   texts into unpadded [`batch::Encoding`]s and padded [`batch::Batch`]es.
//! - [`metrics`]: accuracy, F1, MCC, Pearson, Spearman, task scores and the GLUE average.
//! - [`realfake`], [`download`]: generating Real/Fake from a corpus; fetching GLUE.
//!
//! Load RTE, draw the 1k regime, tokenize it for BERT and score a constant guess (the crate's
//! `examples/rte_sample.rs` does this on real data):
//!
//! ```no_run
//! use stilts_data::encoding::{InputEncoder, Tokenizer};
//! use stilts_data::metrics::{Predictions, evaluate};
//! use stilts_data::sample::downsample;
//! use stilts_data::{BuiltinTask, Label, LoadOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rte = BuiltinTask::Rte.task();
//! let train = rte.load(&rte.dir_in("glue_data".as_ref()), "train", LoadOptions::default())?;
//! let (subset, manifest) = downsample(&train, 1000, 0, 0)?; // seed 0, restart (stream) 0
//! manifest.write("rte-1k-s0.json".as_ref())?;
//! println!("{:?} per label {:?}", rte.labels(), subset.label_counts(rte.labels().len()));
//!
//! let tokenizer = Tokenizer::at("models/bert-base-uncased".as_ref())?.with_max_seq_len(128)?;
//! let texts: Vec<(&str, Option<&str>)> =
//!     subset.examples.iter().map(|e| (e.text_a.as_str(), e.text_b.as_deref())).collect();
//! let encodings = tokenizer.encode_all(&texts)?;
//! let batch = tokenizer.collate(&encodings[..8]); // `[8, longest]` ids, types and mask
//!
//! let gold: Vec<usize> =
//!     subset.examples.iter().filter_map(|e| e.label.and_then(Label::class)).collect();
//! let pred = vec![0; gold.len()]; // always `entailment`
//! let guess = Predictions::Classes { pred: &pred, gold: &gold, num_classes: 2 };
//! let scores = evaluate(&rte.metrics, &guess)?;
//! println!("batch {}x{}", batch.batch_size, batch.seq_len);
//! println!("constant guess: accuracy {:.3}", scores.task_score());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod batch;
pub mod bpe;
pub mod chars;
pub mod custom;
pub mod dataset;
pub mod download;
pub mod encoding;
pub mod error;
pub mod glue;
pub mod metrics;
pub mod realfake;
pub mod rng;
pub mod sample;
pub mod task;
pub mod tokenize;

/// `${VAR}` expansion of path strings (from `stilts-io`).
pub use stilts_io::env;

pub use dataset::{Dataset, Example, Label, LoadOptions};
pub use error::{DataError, Location, Result, RowProblem};
pub use glue::BuiltinTask;
pub use metrics::Metric;
pub use task::{Column, FileFormat, InputKind, Layout, SplitRole, SplitSpec, Target, Task};
