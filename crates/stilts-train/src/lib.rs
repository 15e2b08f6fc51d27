//! Training phases, sequential transfer (STILTs), multitask sampling, restarts and checkpoints.
//!
//! Uses `stilts-data` for tasks and `stilts-models` for encoders (see `ARCHITECTURE.md`).
//!
//! - [`config`]: the experiment TOML ([`config::ExperimentFile`]) and its validated form
//!   ([`config::Experiment`]), with the BERT recipe as defaults ([`config::Recipe`]).
//! - [`batching`]: dynamic padding, length bucketing, data order as a function of
//!   `(seed, epoch)`; [`sampler`]: multitask task sampling.
//! - [`schedule`]: linear warmup then linear decay.
//! - [`model`]: one encoder, one head per task, head policies between phases.
//! - [`phase`]: one run (a seed of a phase), with [`checkpoint`]s and resume.
//! - [`experiment`]: phases in sequence, restarts, best-on-dev, summaries.
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
pub mod error;
pub mod experiment;
pub mod export;
pub mod model;
pub mod observer;
pub mod phase;
pub mod predict;
pub mod prepare;
pub mod sampler;
pub mod schedule;

pub use error::{Result, TrainError};
pub use stilts_data as data;
pub use stilts_io as io;
pub use stilts_models as models;
