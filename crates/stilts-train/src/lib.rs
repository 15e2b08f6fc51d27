//! Training phases, sequential transfer (STILTs), multitask sampling, restarts and checkpoints.
//!
//! Uses `stilts-data` for tasks and `stilts-models` for encoders (see `ARCHITECTURE.md`).
//!
//! - [`config`]: the experiment TOML (`stilts-schema`'s [`config::ExperimentFile`]) and its
//!   validated form ([`config::Experiment`]), with each encoder's preset recipe as defaults
//!   ([`config::Recipe`]).
//! - [`prepare`], [`batching`], [`sampler`]: data of a phase, its views per pair mode, batches
//!   as a function of `(seed, epoch)`, multitask sampling.
//! - [`model`]: one encoder of any family, one head per task, head policies between phases,
//!   the saved model directory.
//! - [`trainer`]: one run (a seed of a phase) as a `Trainer`, with [`checkpoint`]s and resume;
//!   [`optim`] and [`schedule`]: its optimizer and learning rate.
//! - [`eval`]: predictions, scores and baselines over a split.
//! - [`experiment`]: phases in sequence, restarts, best-on-dev, summaries.
//! - [`results`]: what runs write (the types are `stilts-schema`'s).
//! - [`predict`]: `stilts predict` over any saved or Hugging Face model.
//! - [`observer`]: progress events for front ends.
//!
//! ```no_run
//! use stilts_train::config::Experiment;
//! use stilts_train::experiment::run_experiment;
//! use stilts_train::observer::NoopObserver;
//! # fn main() -> Result<(), stilts_train::TrainError> {
//! let exp = Experiment::load("configs/experiments/quickstart_minilm_rte.toml")?;
//! let summary = run_experiment(&exp, &mut NoopObserver)?;
//! println!("best dev score {}", summary.phases[0].best_dev_score);
//! # Ok(()) }
//! ```

pub mod batching;
pub mod checkpoint;
pub mod config;
pub mod environment;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod export;
pub mod layers;
pub mod model;
pub mod observer;
pub mod optim;
pub mod predict;
pub mod prepare;
pub mod results;
pub mod sampler;
pub mod schedule;
pub mod trainer;

pub use error::{Result, TrainError};
pub use stilts_data as data;
pub use stilts_io as io;
pub use stilts_models as models;
pub use stilts_schema as schema;
