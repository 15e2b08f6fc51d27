//! The training engine of STILTs (Phang et al. 2018, *Sentence Encoders on STILTs*): an
//! experiment is a chain of phases, each fine-tuning the previous phase's encoder on an
//! intermediate or a target task (or a multitask set) with a fresh optimizer, over restart seeds
//! whose best on dev continues; runs checkpoint, resume, and write their results as files.
//! `stilts run` is a thin front end over [`experiment::run_experiment`].
//!
//! Uses `stilts-data` for tasks and `stilts-models` for encoders, and re-exports both (and
//! `stilts-io`, `stilts-schema`) as [`data`], [`models`], [`io`] and [`schema`] (see
//! `ARCHITECTURE.md`).
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
//! - [`rank`]: `stilts rank`, which intermediate task to train on: candidates scored before
//!   any fine-tuning (SEmb, LogME, baselines).
//! - [`observer`]: progress events for front ends.
//!
//! An experiment file, as `stilts run` reads it:
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
//!
//! The same structure built in Rust: MNLI as the intermediate task, then RTE with a new head
//! and three restarts (`examples/two_phase.rs` runs a small version of it on real data):
//!
//! ```no_run
//! use stilts_train::config::{Experiment, ExperimentFile, HeadKind, ModelFile, PhaseFile};
//! use stilts_train::config::{RecipeFile, TaskEntryFile};
//! use stilts_train::experiment::run_experiment;
//! use stilts_train::observer::NoopObserver;
//! # fn main() -> Result<(), stilts_train::TrainError> {
//! let phase = |task: &str| PhaseFile {
//!     tasks: vec![TaskEntryFile::Name(task.into())],
//!     ..PhaseFile::default()
//! };
//! let one_epoch = RecipeFile { epochs: Some(1), ..RecipeFile::default() };
//! let file = ExperimentFile {
//!     model: ModelFile {
//!         pretrained: Some("${STILTS_MINILM_DIR}".into()),
//!         ..ModelFile::default()
//!     },
//!     recipe: RecipeFile { max_seq_len: Some(64), ..RecipeFile::default() },
//!     phases: vec![
//!         PhaseFile { recipe: one_epoch, ..phase("MNLI") },
//!         PhaseFile { head: Some(HeadKind::New), restarts: Some(3), ..phase("RTE") },
//!     ],
//!     ..ExperimentFile::default()
//! };
//! let exp = Experiment::from_file(&file, "<code>".as_ref(), "mnli_rte")?;
//! for phase in run_experiment(&exp, &mut NoopObserver)?.phases {
//!     println!("{}: best seed {}, dev {:.4}", phase.phase, phase.best_seed, phase.best_dev_score);
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod batching;
pub mod checkpoint;
pub mod config;
pub mod curves;
pub mod environment;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod export;
pub mod heartbeat;
pub mod layers;
pub mod model;
pub mod observer;
pub mod optim;
pub mod predict;
pub mod prepare;
pub mod rank;
pub mod replicas;
pub mod results;
pub mod sampler;
pub mod schedule;
pub mod trainer;

pub use error::{Result, TrainError};
pub use stilts_data as data;
pub use stilts_io as io;
pub use stilts_models as models;
pub use stilts_schema as schema;
