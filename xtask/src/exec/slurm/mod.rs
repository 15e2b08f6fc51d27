//! The Slurm executor: a grid's runs as `sbatch` job arrays, reconciled against `squeue` and the
//! runs' result files by the driver (no `sacct`: clusters without slurmdbd have none).
//!
//! The grid's output directory and the `stilts` binary must be visible at the same paths on
//! the compute nodes (a shared filesystem). Everything of the executor lives under
//! `<grid output>/slurm/`:
//!
//! ```text
//! job.sh             the job script every array runs (resources as #SBATCH lines)
//! a0001.list         array a0001: line k is the run id of array task k ("-": no task k)
//! logs/a0001_7.out   Slurm's output of task 7 (the worker's own output: runs/<id>/worker.log)
//! events.tsv         what the driver did: submit, lost, cancel, reset (one line each)
//! driver.lock        held while a driver runs, so two drivers never submit the same run
//! ```
//!
//! **Identity.** Runs are matched by *our* run ids, never by Slurm job ids (a controller that
//! loses its state reuses them): an array's job name is `stilts-<grid>-<tag>-<array>` (`tag`:
//! a hash of the grid's output directory), and its list file maps task indices to run ids. A
//! list file is written once, atomically, before its array is submitted, and never changed.
//!
//! **Dependencies.** Runs without a dependency, or whose dependency is finished, go in plain
//! arrays (chunked below the cluster's `MaxArraySize`). Runs whose dependency is queued go in
//! *slot* arrays with `--dependency=aftercorr:<dependency's array>`: the dependency is task `k`
//! of its array, so each of its dependents is task `k` of a slot array (the `s`-th dependent in
//! slot `s`; slot arrays are sparse where a dependency has fewer dependents).
//!
//! **Reconciling.** A run is finished when its `summary.json` exists; queued or running when
//! `squeue` lists a task that maps to it; stranded when that task waits on a dependency task that
//! failed or was replaced by a resubmission (the driver cancels it and resubmits the run after the
//! dependency's new task, or without a dependency once that finished); lost when it was submitted,
//! is neither listed nor finished for `lost_after` reconciles in a row (a shared filesystem may
//! show a result late). A lost run is resubmitted until it has been lost `max_retries + 1` times
//! through its own fault (a run lost while its dependency was unfinished never started, and is not
//! charged); then it is failed, and its dependents are blocked. A pending task of a finished run
//! (one requeued after it finished) is cancelled. The job script skips a finished run and records
//! every start in the run's `attempts.log`; a requeued task resumes from the run's checkpoints,
//! because `stilts run` does.
//!
//! **Files.** This module holds the errors, the options and the entry points; the rest is one
//! concern a file:
//!
//! ```text
//! command.rs        CommandRunner: running sbatch, squeue, scancel, scontrol; config values
//! queue.rs          squeue's output format and its parsing (QueueEntry)
//! script.rs         the job script (job.sh), the job's device, shell quoting
//! arrays.rs         array layout: --array specs, plain and slot arrays, list files
//! events.rs         the event log (events.tsv): the typed Event, its only writer and reader
//! snapshot.rs       reconciling: every run's status from squeue, list files and result files
//! report.rs         what a step and a driver did, and the progress line
//! driver.rs         Driver: a step reconciles, cancels stale tasks, marks lost and failed runs
//! driver/submit.rs  the driver's submissions: plain and slot arrays, round by round
//! ```

mod arrays;
mod command;
mod driver;
mod events;
mod queue;
mod report;
mod script;
mod snapshot;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use self::arrays::{ArrayLayout, array_spec, plain_arrays, slot_arrays};
pub use self::command::CommandRunner;
pub use self::driver::Driver;
pub use self::queue::QueueEntry;
pub use self::report::{Progress, SlurmReport, StepReport};
pub use self::script::{job_device, job_script};
pub use self::snapshot::{QueuedTask, RunStatus, Snapshot};

use super::WorkerCommand;
use crate::grid::plan::slug;
use crate::grid::{GridError, LoadedGrid, Plan};

/// Errors of the Slurm executor. Errors of Slurm's commands name the command and its stderr.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("could not run `{command}`: {source} (is Slurm installed and on PATH?)")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}`: unexpected output {output:?}: {message}")]
    Output {
        command: String,
        output: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Grid(#[from] GridError),
    #[error("another Slurm driver{holder} holds {path}; wait for it or stop it")]
    Locked { path: PathBuf, holder: String },
    #[error("Slurm: {0}")]
    Config(String),
    #[error("gave up waiting after {waited:?}: {progress}")]
    Timeout { waited: Duration, progress: String },
}

impl SlurmError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        SlurmError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the error is likely to go away on its own: the controller is down or
    /// restarting, or a dependency's job left the controller between `squeue` and `sbatch`.
    pub fn is_transient(&self) -> bool {
        let SlurmError::Command { stderr, .. } = self else {
            return false;
        };
        let s = stderr.to_ascii_lowercase();
        [
            "unable to contact slurm controller",
            "socket timed out",
            "connection refused",
            "connection reset",
            "transport endpoint",
            "slurm_receive_msg",
            "slurmctld not responding",
            "temporarily unavailable",
            "job dependency problem",
            "invalid job id specified",
            "resource temporarily",
            "zero bytes were transmitted",
        ]
        .iter()
        .any(|p| s.contains(p))
    }
}

/// Slurm executor settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmOptions {
    /// Largest array to submit, below the cluster's `MaxArraySize`.
    pub max_array_size: Option<usize>,
    /// At most this many tasks of an array run at once (`--array=...%N`).
    pub array_throttle: Option<usize>,
    /// `wait`: seconds between reconciles.
    pub poll: Duration,
    /// Reconciles in a row a submitted run must be missing from the queue without a result
    /// file before it is lost.
    pub lost_after: u32,
    /// Resubmissions of a run lost through its own fault before it is failed.
    pub max_retries: u32,
    /// Forget earlier failures (a new round of retries for failed runs).
    pub retry_failed: bool,
    /// `run`: wait for every run to finish or fail, instead of returning after submitting.
    pub wait: bool,
    /// `wait`: give up after this long.
    pub timeout: Option<Duration>,
    /// `wait`: how long Slurm may fail transiently (controller down) before giving up.
    pub controller_grace: Duration,
    /// Print a progress line on stderr when it changes.
    pub progress: bool,
    pub runner: CommandRunner,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        SlurmOptions {
            max_array_size: None,
            array_throttle: None,
            poll: Duration::from_secs(30),
            lost_after: 2,
            max_retries: 2,
            retry_failed: false,
            wait: true,
            timeout: None,
            controller_grace: Duration::from_secs(600),
            progress: true,
            runner: CommandRunner::default(),
        }
    }
}

/// Submits the runs of `plan` that need it and, with `opts.wait`, waits for all of them.
pub fn run(
    plan: &Plan,
    grid: &LoadedGrid,
    worker: &WorkerCommand,
    opts: &SlurmOptions,
) -> Result<SlurmReport, SlurmError> {
    let mut driver = Driver::new(plan, grid, worker, opts)?;
    if opts.wait {
        driver.wait(|_| {})
    } else {
        driver.submit()?;
        Ok(driver.report())
    }
}

/// One reconcile-and-submit step: submits unsubmitted and lost runs, never a queued or
/// finished one.
pub fn submit(
    plan: &Plan,
    grid: &LoadedGrid,
    worker: &WorkerCommand,
    opts: &SlurmOptions,
) -> Result<StepReport, SlurmError> {
    Driver::new(plan, grid, worker, opts)?.submit()
}

/// Where every run of `plan` stands (read-only).
pub fn reconcile(plan: &Plan, opts: &SlurmOptions) -> Result<Snapshot, SlurmError> {
    let dir = slurm_dir(plan);
    let queue = opts.runner.squeue()?;
    Ok(snapshot::snapshot(
        plan,
        &dir,
        &queue,
        &events::read_events(&dir)?,
    ))
}

/// Reconciles and resubmits until every run finished or failed.
pub fn wait(
    plan: &Plan,
    grid: &LoadedGrid,
    worker: &WorkerCommand,
    opts: &SlurmOptions,
) -> Result<SlurmReport, SlurmError> {
    Driver::new(plan, grid, worker, opts)?.wait(|_| {})
}

/// Cancels every queued task of `plan`'s grid (by job name); returns how many.
pub fn cancel(plan: &Plan, runner: &CommandRunner) -> Result<usize, SlurmError> {
    let prefix = job_prefix(plan);
    let ids: Vec<String> = runner
        .squeue()?
        .into_iter()
        .filter(|e| e.name.starts_with(&prefix))
        .map(|e| e.slurm_id())
        .collect();
    runner.scancel(&ids)?;
    Ok(ids.len())
}

/// `<grid output>/slurm`.
pub fn slurm_dir(plan: &Plan) -> PathBuf {
    plan.output_dir.join("slurm")
}

/// `stilts-<grid>-<tag>-`: every array of the grid in this output directory is named so.
pub fn job_prefix(plan: &Plan) -> String {
    let mut h = Sha256::new();
    h.update(plan.output_dir.to_string_lossy().as_bytes());
    let tag = format!("{:x}", h.finalize());
    format!("stilts-{}-{}-", slug(&plan.grid), &tag[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_outages_are_transient() {
        let err = |stderr: &str| SlurmError::Command {
            command: "squeue".into(),
            status: "exit status: 1".into(),
            stderr: stderr.into(),
        };
        assert!(
            err("slurm_load_jobs error: Unable to contact slurm controller (connect failure)")
                .is_transient()
        );
        assert!(
            err("sbatch: error: Batch job submission failed: Job dependency problem")
                .is_transient()
        );
        assert!(!err("sbatch: error: invalid partition specified: gpu").is_transient());
        assert!(!SlurmError::Config("x".into()).is_transient());
    }
}
