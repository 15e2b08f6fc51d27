//! Progress reporting. The library reports through [`Observer`]; the CLI draws progress bars
//! from it, tests and library users can ignore it ([`NoopObserver`]).

use crate::results::{EpochRecord, RunResult};

/// One optimizer step.
#[derive(Debug, Clone, Copy)]
pub struct StepEvent {
    /// Optimizer steps done in this run (1-based after the step).
    pub step: u64,
    /// Steps in the whole run.
    pub total_steps: u64,
    /// Step within the current epoch (1-based).
    pub step_in_epoch: u64,
    /// Steps in the current epoch.
    pub steps_in_epoch: u64,
    /// Mean training loss of this step's batches.
    pub loss: f32,
    /// Learning rate used by this step.
    pub lr: f64,
    /// Training examples in this step.
    pub examples: usize,
}

/// Receives training events; every method has an empty default.
pub trait Observer {
    /// A run (one seed of one phase) starts, or resumes at `first_epoch`.
    fn run_start(&mut self, _phase: &str, _seed: u64, _epochs: usize, _first_epoch: usize) {}
    /// An epoch starts (`epoch` is 0-based); `done` of its `steps` are already done (resume).
    fn epoch_start(&mut self, _epoch: usize, _steps: u64, _done: u64) {}
    /// An optimizer step finished.
    fn step(&mut self, _event: &StepEvent) {}
    /// Dev evaluation starts for `examples` examples.
    fn eval_start(&mut self, _examples: usize) {}
    /// An epoch ended and was evaluated on dev.
    fn epoch_end(&mut self, _record: &EpochRecord) {}
    /// A run finished (or was found finished on disk).
    fn run_end(&mut self, _result: &RunResult) {}
}

/// Ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl Observer for NoopObserver {}
