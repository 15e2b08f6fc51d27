//! Data for STILTs: every GLUE task in its official layout, SNLI, custom tasks declared in TOML,
//! seeded downsampling with manifests, the Real/Fake word-swap task, BERT tokenization and the
//! GLUE metrics.
//!
//! ```no_run
//! use stilts_data::{BuiltinTask, LoadOptions};
//! # fn main() -> Result<(), stilts_data::DataError> {
//! let rte = BuiltinTask::Rte.task();
//! let dev = rte.load(&rte.dir_in("glue_data".as_ref()), "dev", LoadOptions::default())?;
//! println!("{} dev examples, labels {:?}", dev.len(), rte.labels());
//! # Ok(()) }
//! ```

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
