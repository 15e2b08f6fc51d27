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
//! `squeue` lists a task that maps to it; stranded when that task waits on a dependency task
//! that failed or was replaced by a resubmission (the driver cancels it and resubmits the run
//! after the dependency's new task, or without a dependency once that finished); lost when it was submitted, is neither listed nor finished for
//! `lost_after` reconciles in a row (a shared filesystem may show a result late). A lost run is
//! resubmitted until it has been lost `max_retries + 1` times through its own fault (a run lost
//! while its dependency was unfinished never started, and is not charged); then it is failed,
//! and its dependents are blocked. A pending task of a finished run (one requeued after it
//! finished) is cancelled. The job script skips a finished run and records every start
//! in the run's `attempts.log`; a requeued task resumes from the run's checkpoints, because
//! `stilts run` does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{DriverLock, WorkerCommand};
use crate::grid::plan::slug;
use crate::grid::spec::SlurmFile;
use crate::grid::{GridError, LoadedGrid, Plan, RunNode, write_atomic};

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
    #[error("another Slurm driver holds {path}; wait for it or stop it")]
    Locked { path: PathBuf },
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

/// The one way Slurm's commands are run: errors name the command line and carry its stderr.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandRunner {
    /// Directory of Slurm's binaries (`None`: found on `PATH`).
    pub bin_dir: Option<PathBuf>,
}

impl CommandRunner {
    /// Runs `program args...` and returns its stdout.
    pub fn run(&self, program: &str, args: &[OsString]) -> Result<String, SlurmError> {
        let exe = match &self.bin_dir {
            Some(d) => d.join(program),
            None => PathBuf::from(program),
        };
        let command = std::iter::once(program.to_string())
            .chain(args.iter().map(|a| shell_quote(&a.to_string_lossy())))
            .collect::<Vec<_>>()
            .join(" ");
        let out = Command::new(&exe)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| SlurmError::Spawn {
                command: command.clone(),
                source,
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if stderr.is_empty() {
                stderr = stdout.trim().to_string();
            }
            return Err(SlurmError::Command {
                command,
                status: out.status.to_string(),
                stderr,
            });
        }
        Ok(stdout)
    }

    fn run_str(&self, program: &str, args: &[&str]) -> Result<String, SlurmError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        self.run(program, &args)
    }

    /// `MaxArraySize` from `scontrol show config`: array indices must be below it.
    pub fn max_array_size(&self) -> Result<usize, SlurmError> {
        let out = self.run_str("scontrol", &["show", "config"])?;
        parse_config_value(&out, "MaxArraySize")
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| SlurmError::Output {
                command: "scontrol show config".into(),
                output: out.lines().take(3).collect::<Vec<_>>().join("\n"),
                message: "no `MaxArraySize = <n>` line".into(),
            })
    }

    /// This user's jobs, one entry per array task (`squeue -r`).
    pub fn squeue(&self) -> Result<Vec<QueueEntry>, SlurmError> {
        let out = self.run_str("squeue", &["--me", "-h", "-r", "-o", SQUEUE_FORMAT])?;
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                parse_squeue_line(l).ok_or_else(|| SlurmError::Output {
                    command: format!("squeue --me -h -r -o '{SQUEUE_FORMAT}'"),
                    output: l.to_string(),
                    message:
                        "expected `<array job>|<task index>|<state>|<reason>|<dependency>|<name>`"
                            .into(),
                })
            })
            .collect()
    }

    /// Submits and returns the job id (`sbatch --parsable`).
    pub fn sbatch(&self, args: &[OsString]) -> Result<u64, SlurmError> {
        let mut all: Vec<OsString> = vec!["--parsable".into()];
        all.extend(args.iter().cloned());
        let out = self.run("sbatch", &all)?;
        let first = out.trim().split(';').next().unwrap_or("").trim();
        first.parse::<u64>().map_err(|_| SlurmError::Output {
            command: "sbatch --parsable".into(),
            output: out.clone(),
            message: "expected a job id".into(),
        })
    }

    /// `scancel` of job ids or `<array job>_<task>` ids.
    pub fn scancel(&self, ids: &[String]) -> Result<(), SlurmError> {
        if ids.is_empty() {
            return Ok(());
        }
        let args: Vec<OsString> = ids.iter().map(OsString::from).collect();
        self.run("scancel", &args).map(|_| ())
    }
}

const SQUEUE_FORMAT: &str = "%F|%K|%T|%r|%E|%j";

/// One line of `squeue -r`: one job, or one task of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The array's job id (`%F`; the job id for a job that is not an array).
    pub job: u64,
    /// The array task index (`%K`).
    pub index: Option<u32>,
    /// `PENDING`, `RUNNING`, `COMPLETING`, ...
    pub state: String,
    /// Why it is in that state (`Dependency`, `DependencyNeverSatisfied`, `BeginTime`, ...).
    pub reason: String,
    /// Its remaining dependencies (`%E`: `aftercorr:812_*(unfulfilled)`, `(null)`).
    pub dependency: String,
    pub name: String,
}

impl QueueEntry {
    /// The array job of an `aftercorr` dependency still listed.
    pub fn after(&self) -> Option<u64> {
        let rest = &self.dependency[self.dependency.find("aftercorr:")? + "aftercorr:".len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    }

    /// `<job>_<index>` (or `<job>`), as `scancel` and `scontrol` take it.
    pub fn slurm_id(&self) -> String {
        match self.index {
            Some(i) => format!("{}_{i}", self.job),
            None => self.job.to_string(),
        }
    }
}

fn parse_squeue_line(line: &str) -> Option<QueueEntry> {
    let mut parts = line.trim().splitn(6, '|');
    let job = parts.next()?.trim().parse().ok()?;
    let index = match parts.next()?.trim() {
        "N/A" | "" => None,
        k => Some(k.parse().ok()?),
    };
    Some(QueueEntry {
        job,
        index,
        state: parts.next()?.trim().to_string(),
        reason: parts.next()?.trim().to_string(),
        dependency: parts.next()?.trim().to_string(),
        name: parts.next()?.trim().to_string(),
    })
}

fn parse_config_value<'a>(config: &'a str, key: &str) -> Option<&'a str> {
    config.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
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

/// A run's task in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedTask {
    /// Our array name (`a0001`).
    pub array: String,
    pub job: u64,
    pub index: u32,
    pub state: String,
    pub reason: String,
    /// The array job whose corresponding task it waits for (`aftercorr`), while it waits.
    pub after: Option<u64>,
}

impl QueuedTask {
    pub fn slurm_id(&self) -> String {
        format!("{}_{}", self.job, self.index)
    }
    fn is_running(&self) -> bool {
        matches!(
            self.state.as_str(),
            "RUNNING" | "COMPLETING" | "CONFIGURING" | "SUSPENDED" | "STOPPED" | "SIGNALING"
        )
    }
    fn never_satisfied(&self) -> bool {
        self.state == "PENDING" && self.reason == "DependencyNeverSatisfied"
    }
}

/// Where a run stands, from `squeue` and its result file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// `summary.json` exists.
    Finished,
    Queued(QueuedTask),
    Running(QueuedTask),
    /// Pending on a dependency that can never be satisfied: the dependency's task failed
    /// (Slurm says `DependencyNeverSatisfied`), or the dependency was resubmitted since (its
    /// task there left the queue unfinished) and Slurm has not noticed yet.
    Stranded(QueuedTask),
    /// Submitted before, neither in the queue nor finished.
    Missing,
    /// Never submitted.
    Unsubmitted,
}

/// A reconcile: every run's status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub runs: BTreeMap<String, RunStatus>,
    /// Runs listed by more than one queued task (never submitted twice by a driver; a person
    /// may have).
    pub duplicates: Vec<String>,
    /// Tasks named like this grid's whose list file is missing.
    pub unknown_tasks: usize,
    /// Pending tasks of finished runs (e.g. requeued after the run finished): (run, task).
    pub redundant: Vec<(String, QueuedTask)>,
}

/// What one step (a reconcile and its submissions) did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepReport {
    pub snapshot: Snapshot,
    /// Arrays submitted: (our name, job id, run ids).
    pub arrays: Vec<(String, u64, Vec<String>)>,
    /// Runs submitted for the first time.
    pub submitted: Vec<String>,
    /// Lost or stranded runs submitted again.
    pub resubmitted: Vec<String>,
    /// Runs found lost in this step.
    pub lost: Vec<String>,
    /// Runs whose stranded task was cancelled in this step.
    pub cancelled: Vec<String>,
    /// Runs lost more often than the retry limit.
    pub failed: Vec<String>,
    /// Runs not submitted because their dependency failed or is blocked: (run, dependency).
    pub blocked: Vec<(String, String)>,
    /// Submissions that failed transiently (retried at the next step).
    pub deferred: Vec<String>,
    pub progress: Progress,
}

/// Counts of a step, as the progress line shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub total: usize,
    pub done: usize,
    pub running: usize,
    pub queued: usize,
    /// Submitted, out of the queue, no result yet (not yet lost).
    pub missing: usize,
    pub failed: usize,
    pub blocked: usize,
    /// Neither queued nor finished, waiting for a later step.
    pub waiting: usize,
}

impl Progress {
    /// Every run finished, failed or blocked.
    pub fn complete(&self) -> bool {
        self.done + self.failed + self.blocked >= self.total
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} done, {} running, {} queued, {} failed",
            self.done, self.total, self.running, self.queued, self.failed
        )?;
        if self.blocked > 0 {
            write!(f, ", {} blocked", self.blocked)?;
        }
        if self.missing + self.waiting > 0 {
            write!(f, ", {} waiting", self.missing + self.waiting)?;
        }
        Ok(())
    }
}

/// What a driver did in all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlurmReport {
    pub finished: Vec<String>,
    pub failed: Vec<String>,
    pub blocked: Vec<(String, String)>,
    /// Runs submitted (first submissions) and resubmitted by this driver.
    pub submitted: usize,
    pub resubmitted: usize,
    /// Arrays submitted by this driver: (our name, job id, run ids).
    pub arrays: Vec<(String, u64, Vec<String>)>,
    pub progress: Progress,
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
    Ok(snapshot(plan, &dir, &queue, &read_events(&dir)?))
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

/// The device `stilts run --device` gets inside jobs: the worker's, the grid's
/// `[slurm] device`, or `cuda:0` when `gres` asks for a GPU.
pub fn job_device(worker: &WorkerCommand, slurm: &SlurmFile) -> Option<String> {
    worker
        .device
        .clone()
        .or_else(|| slurm.device.clone())
        .or_else(|| {
            slurm
                .gres
                .as_deref()
                .filter(|g| g.contains("gpu"))
                .map(|_| "cuda:0".to_string())
        })
}

/// The job script every array of a grid runs: `job.sh <list file>`; task `k` runs the run on
/// line `k` of the list. Requeue-safe: a finished run is skipped, an interrupted one resumes.
pub fn job_script(plan: &Plan, slurm: &SlurmFile, worker: &WorkerCommand) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(
        s,
        "# Generated by the stilts Slurm executor for grid `{}`: runs one task of an array.",
        plan.grid
    );
    let _ = writeln!(s, "#SBATCH --requeue");
    let _ = writeln!(s, "#SBATCH --open-mode=append");
    if let Some(p) = &slurm.partition {
        let _ = writeln!(s, "#SBATCH --partition={p}");
    }
    if let Some(g) = &slurm.gres {
        let _ = writeln!(s, "#SBATCH --gres={g}");
    }
    if let Some(c) = slurm.cpus_per_task {
        let _ = writeln!(s, "#SBATCH --cpus-per-task={c}");
    }
    if let Some(m) = &slurm.mem {
        let _ = writeln!(s, "#SBATCH --mem={m}");
    }
    if let Some(t) = &slurm.time {
        let _ = writeln!(s, "#SBATCH --time={t}");
    }
    for line in &slurm.extra {
        let line = line.trim();
        if line.starts_with("#SBATCH") {
            let _ = writeln!(s, "{line}");
        } else {
            let _ = writeln!(s, "#SBATCH {line}");
        }
    }
    let runs = plan.output_dir.join("runs");
    // Jobs start in the grid's output directory: a relative binary path would not resolve.
    let stilts = if worker.stilts.is_relative() && worker.stilts.components().count() > 1 {
        std::path::absolute(&worker.stilts).unwrap_or_else(|_| worker.stilts.clone())
    } else {
        worker.stilts.clone()
    };
    let mut cmd = vec![shell_quote(&stilts.to_string_lossy())];
    let mut w = worker.clone();
    w.device = job_device(worker, slurm);
    for a in w.args(Path::new("@RUN@")) {
        let a = a.to_string_lossy().into_owned();
        cmd.push(match a.strip_prefix("@RUN@") {
            Some(rest) => format!("\"$run\"{}", shell_quote_tail(rest)),
            None => shell_quote(&a),
        });
    }
    let _ = write!(
        s,
        r#"set -u
list=${{1:?usage: job.sh <list file>}}
task=${{SLURM_ARRAY_TASK_ID:?not an array task}}
id=$(sed -n "$((task + 1))p" "$list")
if [ -z "$id" ] || [ "$id" = "-" ]; then
    echo "stilts: $list has no run for task $task" >&2
    exit 3
fi
run={runs}/"$id"
if [ -f "$run/summary.json" ]; then
    echo "stilts: run $id is finished; nothing to do"
    exit 0
fi
printf '%s\tslurm\t%s\n' "$(date +%s)" "${{SLURM_JOB_ID:-?}}/${{SLURM_ARRAY_JOB_ID:-?}}_${{task}}" >>"$run/attempts.log"
echo "stilts: run $id: job ${{SLURM_JOB_ID:-?}} (${{SLURM_ARRAY_JOB_ID:-?}}_$task) on ${{SLURMD_NODENAME:-?}}, restart ${{SLURM_RESTART_COUNT:-0}}"
exec {cmd} >>"$run/worker.log" 2>&1
"#,
        runs = shell_quote(&runs.to_string_lossy()),
        cmd = cmd.join(" "),
    );
    s
}

/// `'...'` for the shell, unless the word needs no quoting.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn shell_quote_tail(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        shell_quote(s)
    }
}

/// `0-3,5,7-8` (`--array` syntax) of sorted, distinct indices.
pub fn array_spec(indices: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// One array to submit: task index → run id, and the array its tasks correspond to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayLayout {
    pub tasks: BTreeMap<u32, String>,
    /// `aftercorr:` this array job.
    pub after: Option<u64>,
}

impl ArrayLayout {
    /// The list file: line `k` is task `k`'s run id, `-` where there is no task `k`.
    pub fn list_file(&self) -> String {
        let Some(&last) = self.tasks.keys().next_back() else {
            return String::new();
        };
        let mut s = String::new();
        for k in 0..=last {
            s.push_str(self.tasks.get(&k).map(String::as_str).unwrap_or("-"));
            s.push('\n');
        }
        s
    }
    pub fn indices(&self) -> Vec<u32> {
        self.tasks.keys().copied().collect()
    }
}

/// Plain arrays of at most `chunk` tasks (indices `0..chunk`), in the order given.
pub fn plain_arrays(runs: &[String], chunk: usize) -> Vec<ArrayLayout> {
    runs.chunks(chunk.max(1))
        .map(|c| ArrayLayout {
            tasks: c
                .iter()
                .enumerate()
                .map(|(k, r)| (k as u32, r.clone()))
                .collect(),
            after: None,
        })
        .collect()
}

/// Slot arrays of runs whose dependency is queued as task `index` of array job `job`: slot
/// `s`'s task `index` is the `s`-th dependent (in the order given) of that dependency.
pub fn slot_arrays(runs: &[(String, u64, u32)]) -> Vec<ArrayLayout> {
    let mut by_dep: BTreeMap<u64, BTreeMap<u32, Vec<&String>>> = BTreeMap::new();
    for (run, job, index) in runs {
        by_dep
            .entry(*job)
            .or_default()
            .entry(*index)
            .or_default()
            .push(run);
    }
    let mut out = Vec::new();
    for (job, deps) in by_dep {
        let slots = deps.values().map(Vec::len).max().unwrap_or(0);
        for s in 0..slots {
            let tasks: BTreeMap<u32, String> = deps
                .iter()
                .filter_map(|(&k, v)| v.get(s).map(|r| (k, (*r).clone())))
                .collect();
            out.push(ArrayLayout {
                tasks,
                after: Some(job),
            });
        }
    }
    out
}

/// The driver's event log (`events.tsv`), one line per event: `<unix time>\t<event>\t<run>...`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// `submit <run> <array> <job> <index>`
    Submit { run: String, job: u64 },
    /// `lost <run> charged|uncharged`
    Lost { run: String, charged: bool },
    /// `cancel <run> <job>_<index> <reason>`
    Cancel,
    /// `reset <run>`: earlier losses no longer count.
    Reset { run: String },
}

fn read_events(dir: &Path) -> Result<Vec<Event>, SlurmError> {
    let path = dir.join("events.tsv");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SlurmError::io(&path, e)),
    };
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let run = f.get(2)?.to_string();
            match *f.get(1)? {
                "submit" => Some(Event::Submit {
                    run,
                    job: f.get(4)?.parse().ok()?,
                }),
                "lost" => Some(Event::Lost {
                    run,
                    charged: f.get(3) == Some(&"charged"),
                }),
                "cancel" => Some(Event::Cancel),
                "reset" => Some(Event::Reset { run }),
                _ => None,
            }
        })
        .collect())
}

fn submitted_runs(events: &[Event]) -> BTreeSet<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Submit { run, .. } => Some(run.clone()),
            _ => None,
        })
        .collect()
}

/// Charged losses of each run since its last reset.
fn charged_losses(events: &[Event]) -> HashMap<String, u32> {
    let mut n: HashMap<String, u32> = HashMap::new();
    for e in events {
        match e {
            Event::Lost { run, charged: true } => *n.entry(run.clone()).or_default() += 1,
            Event::Reset { run } => {
                n.remove(run);
            }
            _ => {}
        }
    }
    n
}

fn append_events(dir: &Path, lines: &[String]) -> Result<(), SlurmError> {
    if lines.is_empty() {
        return Ok(());
    }
    let path = dir.join("events.tsv");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| SlurmError::io(&path, e))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut text = String::new();
    for l in lines {
        let _ = writeln!(text, "{now}\t{l}");
    }
    f.write_all(text.as_bytes())
        .map_err(|e| SlurmError::io(&path, e))
}

/// Reads list files on demand: array name → its task → run id.
fn list_lookup(dir: &Path) -> impl FnMut(&str, u32) -> Option<Option<String>> + '_ {
    let mut cache: HashMap<String, Option<Vec<String>>> = HashMap::new();
    move |array: &str, index: u32| {
        let lines = cache.entry(array.to_string()).or_insert_with(|| {
            if !is_array_name(array) {
                return None;
            }
            std::fs::read_to_string(dir.join(format!("{array}.list")))
                .ok()
                .map(|t| t.lines().map(str::to_string).collect())
        });
        let lines = lines.as_ref()?;
        Some(
            lines
                .get(index as usize)
                .filter(|id| id.as_str() != "-")
                .cloned(),
        )
    }
}

fn is_array_name(s: &str) -> bool {
    s.len() > 1 && s.starts_with('a') && s[1..].chars().all(|c| c.is_ascii_digit())
}

/// Every run's status from a queue listing and the result files. The queue must be read
/// before the result files: a run that finishes in between is then seen as finished.
fn snapshot(plan: &Plan, dir: &Path, queue: &[QueueEntry], events: &[Event]) -> Snapshot {
    let submitted = submitted_runs(events);
    let mut latest: HashMap<&str, u64> = HashMap::new();
    for e in events {
        if let Event::Submit { run, job } = e {
            latest.insert(run, *job);
        }
    }
    let prefix = job_prefix(plan);
    let mut lookup = list_lookup(dir);
    let mut queued: BTreeMap<String, Vec<QueuedTask>> = BTreeMap::new();
    let mut unknown = 0;
    for e in queue {
        let Some(array) = e.name.strip_prefix(&prefix) else {
            continue;
        };
        let Some(index) = e.index else {
            unknown += 1;
            continue;
        };
        match lookup(array, index) {
            Some(Some(run)) => queued.entry(run).or_default().push(QueuedTask {
                array: array.to_string(),
                job: e.job,
                index,
                state: e.state.clone(),
                reason: e.reason.clone(),
                after: e.after(),
            }),
            _ => unknown += 1,
        }
    }
    let mut snap = Snapshot {
        unknown_tasks: unknown,
        ..Snapshot::default()
    };
    // The array job of each run's live task, else of its latest submission.
    let current = |run: &str| -> Option<u64> {
        queued
            .get(run)
            .and_then(|ts| ts.iter().find(|t| !t.never_satisfied()))
            .map(|t| t.job)
            .or_else(|| latest.get(run).copied())
    };
    let stranded = |node: &RunNode, t: &QueuedTask| -> bool {
        if t.never_satisfied() {
            return true;
        }
        match (t.state.as_str(), t.after, node.depends_on.as_deref()) {
            ("PENDING", Some(job), Some(dep)) => current(dep).is_some_and(|j| j != job),
            _ => false,
        }
    };
    for node in &plan.nodes {
        let id = &node.id;
        let status = if plan.is_finished(id) {
            for t in queued.get(id).into_iter().flatten() {
                if t.state == "PENDING" {
                    snap.redundant.push((id.clone(), t.clone()));
                }
            }
            RunStatus::Finished
        } else if let Some(tasks) = queued.get(id) {
            if tasks.len() > 1 {
                snap.duplicates.push(id.clone());
            }
            // A live task wins over a stranded one.
            let best = tasks
                .iter()
                .find(|t| t.is_running())
                .or_else(|| tasks.iter().find(|t| !stranded(node, t)))
                .unwrap_or(&tasks[0])
                .clone();
            if best.is_running() {
                RunStatus::Running(best)
            } else if stranded(node, &best) {
                RunStatus::Stranded(best)
            } else {
                RunStatus::Queued(best)
            }
        } else if submitted.contains(id) {
            RunStatus::Missing
        } else {
            RunStatus::Unsubmitted
        };
        snap.runs.insert(id.clone(), status);
    }
    snap
}

/// A driver: reconciles and submits the runs of one plan, holding `slurm/driver.lock`.
pub struct Driver<'a> {
    plan: &'a Plan,
    slurm: SlurmFile,
    opts: SlurmOptions,
    dir: PathBuf,
    prefix: String,
    /// Reconciles in a row each submitted run was missing.
    misses: HashMap<String, u32>,
    /// Runs whose stranded task this driver cancelled, not yet resubmitted.
    unstranded: BTreeSet<String>,
    chunk: Option<usize>,
    report: SlurmReport,
    _lock: DriverLock,
}

impl<'a> Driver<'a> {
    /// Writes the job script and takes the driver lock (an error if another driver holds it).
    /// `plan`'s files must be written ([`Plan::write`]).
    pub fn new(
        plan: &'a Plan,
        grid: &LoadedGrid,
        worker: &WorkerCommand,
        opts: &SlurmOptions,
    ) -> Result<Driver<'a>, SlurmError> {
        let dir = slurm_dir(plan);
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| SlurmError::io(&logs, e))?;
        let lock_path = dir.join("driver.lock");
        let lock = DriverLock::try_acquire(&dir)
            .map_err(|e| SlurmError::io(&lock_path, e))?
            .ok_or(SlurmError::Locked { path: lock_path })?;
        let slurm = grid.file.slurm.clone();
        let script = job_script(plan, &slurm, worker);
        let script_path = dir.join("job.sh");
        if std::fs::read_to_string(&script_path).ok().as_deref() != Some(script.as_str()) {
            write_atomic(&script_path, script.as_bytes())?;
        }
        let driver = Driver {
            plan,
            slurm,
            opts: opts.clone(),
            prefix: job_prefix(plan),
            dir,
            misses: HashMap::new(),
            unstranded: BTreeSet::new(),
            chunk: None,
            report: SlurmReport::default(),
            _lock: lock,
        };
        if opts.retry_failed {
            let events = read_events(&driver.dir)?;
            let losses = charged_losses(&events);
            let resets: Vec<String> = losses
                .iter()
                .filter(|&(_, &n)| n > opts.max_retries)
                .map(|(run, _)| format!("reset\t{run}"))
                .collect();
            append_events(&driver.dir, &resets)?;
        }
        Ok(driver)
    }

    /// The grid's Slurm resources.
    pub fn resources(&self) -> &SlurmFile {
        &self.slurm
    }

    /// Where every run stands (read-only).
    pub fn reconcile(&self) -> Result<Snapshot, SlurmError> {
        let queue = self.opts.runner.squeue()?;
        let events = read_events(&self.dir)?;
        Ok(snapshot(self.plan, &self.dir, &queue, &events))
    }

    /// One step, retried while a run is missing but not yet lost (so that a single `submit`
    /// resubmits what an earlier driver left lost), at most `lost_after` reconciles.
    pub fn submit(&mut self) -> Result<StepReport, SlurmError> {
        let mut tries = 0;
        loop {
            let step = self.step()?;
            tries += 1;
            if step.progress.missing == 0 || tries >= self.opts.lost_after {
                return Ok(step);
            }
            std::thread::sleep(self.opts.poll.min(Duration::from_secs(5)));
        }
    }

    /// One reconcile and its actions: cancels stranded tasks, marks lost and failed runs, and
    /// submits every run that needs it (unsubmitted, lost, stranded) whose dependency is
    /// finished or queued.
    pub fn step(&mut self) -> Result<StepReport, SlurmError> {
        let plan = self.plan;
        let snap = self.reconcile()?;
        let mut events = read_events(&self.dir)?;
        let mut step = StepReport::default();
        let mut new_events = Vec::new();
        // Stranded tasks: cancel them; their runs are resubmitted with the new dependency.
        let mut stranded = BTreeSet::new();
        let mut cancel_ids = Vec::new();
        for (id, st) in &snap.runs {
            if let RunStatus::Stranded(t) = st {
                cancel_ids.push(t.slurm_id());
                let why = if t.never_satisfied() {
                    "DependencyNeverSatisfied"
                } else {
                    "dependency-resubmitted"
                };
                new_events.push(format!("cancel\t{id}\t{}\t{why}", t.slurm_id()));
                stranded.insert(id.clone());
            }
        }
        // Pending tasks of finished runs would only find the run finished.
        for (id, t) in &snap.redundant {
            cancel_ids.push(t.slurm_id());
            new_events.push(format!("cancel\t{id}\t{}\tfinished", t.slurm_id()));
        }
        if !cancel_ids.is_empty() {
            self.opts.runner.scancel(&cancel_ids)?;
            step.cancelled = stranded.iter().cloned().collect();
            self.unstranded.extend(stranded.iter().cloned());
        }
        // Missing runs become lost after `lost_after` reconciles in a row.
        let mut lost = BTreeSet::new();
        for (id, st) in &snap.runs {
            if *st != RunStatus::Missing || self.unstranded.contains(id) {
                self.misses.remove(id);
                continue;
            }
            let n = self.misses.entry(id.clone()).or_default();
            *n += 1;
            if *n >= self.opts.lost_after.max(1) {
                lost.insert(id.clone());
            }
        }
        let losses_before = charged_losses(&events);
        let mut failed = BTreeSet::new();
        for id in &lost {
            let before = losses_before.get(id).copied().unwrap_or(0);
            if before > self.opts.max_retries {
                // Failed earlier: not charged again.
                failed.insert(id.clone());
                continue;
            }
            let dep_finished = plan
                .node(id)
                .and_then(|n| n.depends_on.as_deref())
                .is_none_or(|d| plan.is_finished(d));
            let charged = dep_finished;
            new_events.push(format!(
                "lost\t{id}\t{}",
                if charged { "charged" } else { "uncharged" }
            ));
            self.misses.remove(id);
            step.lost.push(id.clone());
            if charged && before + 1 > self.opts.max_retries {
                failed.insert(id.clone());
            }
        }
        append_events(&self.dir, &new_events)?;
        events.extend(new_events.iter().filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0] == "lost").then(|| Event::Lost {
                run: f[1].to_string(),
                charged: f.get(2) == Some(&"charged"),
            })
        }));
        // Runs that failed earlier (in this driver or before) and are not back in the queue.
        let losses = charged_losses(&events);
        for (id, st) in &snap.runs {
            if matches!(st, RunStatus::Missing)
                && losses.get(id).copied().unwrap_or(0) > self.opts.max_retries
            {
                failed.insert(id.clone());
            }
        }
        // What to submit.
        let mut candidates: Vec<String> = Vec::new();
        for node in &plan.nodes {
            let id = &node.id;
            let st = &snap.runs[id];
            let wanted = match st {
                RunStatus::Unsubmitted => true,
                RunStatus::Stranded(_) => true,
                RunStatus::Missing => {
                    self.unstranded.contains(id) || (lost.contains(id) && !failed.contains(id))
                }
                _ => false,
            };
            if wanted {
                candidates.push(id.clone());
            }
        }
        // Queued dependencies: (array job, index) of every run in the queue.
        let mut refs: HashMap<String, (u64, u32)> = HashMap::new();
        for (id, st) in &snap.runs {
            if let RunStatus::Queued(t) | RunStatus::Running(t) = st {
                refs.insert(id.clone(), (t.job, t.index));
            }
        }
        let mut blocked: BTreeMap<String, String> = BTreeMap::new();
        let mut deferred = BTreeSet::new();
        let mut ever = submitted_runs(&events);
        loop {
            let mut plain = Vec::new();
            let mut slotted = Vec::new();
            let mut rest = Vec::new();
            for id in candidates {
                let dep = plan.node(&id).and_then(|n| n.depends_on.clone());
                match dep {
                    None => plain.push(id),
                    Some(d) if plan.is_finished(&d) => plain.push(id),
                    Some(d) => {
                        if let Some(&(job, index)) = refs.get(&d) {
                            slotted.push((id, job, index));
                        } else if failed.contains(&d)
                            || blocked.contains_key(&d)
                            || plan.node(&d).is_none()
                        {
                            blocked.insert(id, d);
                        } else {
                            rest.push(id);
                        }
                    }
                }
            }
            let mut layouts = Vec::new();
            if !plain.is_empty() {
                let chunk = self.chunk()?;
                layouts.extend(plain_arrays(&plain, chunk));
            }
            layouts.extend(slot_arrays(&slotted));
            if layouts.is_empty() {
                break;
            }
            for layout in layouts {
                match self.submit_array(&layout) {
                    Ok((name, job)) => {
                        let mut runs = Vec::new();
                        let mut lines = Vec::new();
                        for (&k, id) in &layout.tasks {
                            refs.insert(id.clone(), (job, k));
                            self.unstranded.remove(id);
                            lines.push(format!("submit\t{id}\t{name}\t{job}\t{k}"));
                            runs.push(id.clone());
                            if ever.insert(id.clone()) {
                                step.submitted.push(id.clone());
                            } else {
                                step.resubmitted.push(id.clone());
                            }
                        }
                        append_events(&self.dir, &lines)?;
                        step.arrays.push((name, job, runs));
                    }
                    Err(e) if e.is_transient() => {
                        if self.opts.progress {
                            eprintln!("slurm: submission deferred: {e}");
                        }
                        deferred.extend(layout.tasks.values().cloned());
                    }
                    Err(e) => return Err(e),
                }
            }
            // Dependents of runs deferred now wait for a later step.
            candidates = rest;
            if candidates.is_empty() {
                break;
            }
        }
        step.blocked = blocked.into_iter().collect();
        step.failed = failed.into_iter().collect();
        step.deferred = deferred.into_iter().collect();
        // Counts.
        let submitted_now: BTreeSet<&String> =
            step.submitted.iter().chain(&step.resubmitted).collect();
        let failed_set: BTreeSet<&String> = step.failed.iter().collect();
        let blocked_set: BTreeSet<&String> = step.blocked.iter().map(|(r, _)| r).collect();
        let mut p = Progress {
            total: plan.nodes.len(),
            ..Progress::default()
        };
        for (id, st) in &snap.runs {
            match st {
                RunStatus::Finished => p.done += 1,
                _ if failed_set.contains(id) => p.failed += 1,
                _ if blocked_set.contains(id) => p.blocked += 1,
                RunStatus::Running(_) => p.running += 1,
                RunStatus::Queued(_) => p.queued += 1,
                _ if submitted_now.contains(id) => p.queued += 1,
                RunStatus::Missing => p.missing += 1,
                _ => p.waiting += 1,
            }
        }
        step.progress = p;
        step.snapshot = snap;
        self.report.submitted += step.submitted.len();
        self.report.resubmitted += step.resubmitted.len();
        self.report.arrays.extend(step.arrays.iter().cloned());
        self.report.progress = p;
        self.report.failed = step.failed.clone();
        self.report.blocked = step.blocked.clone();
        self.report.finished = step
            .snapshot
            .runs
            .iter()
            .filter(|(_, s)| **s == RunStatus::Finished)
            .map(|(id, _)| id.clone())
            .collect();
        Ok(step)
    }

    /// Steps every `poll` until every run finished, failed or is blocked. `on_step` sees each
    /// step. Transient Slurm errors (the controller away) are retried for `controller_grace`.
    pub fn wait(
        &mut self,
        mut on_step: impl FnMut(&StepReport),
    ) -> Result<SlurmReport, SlurmError> {
        let start = Instant::now();
        let mut failing_since: Option<Instant> = None;
        let mut last_line = String::new();
        loop {
            match self.step() {
                Ok(step) => {
                    failing_since = None;
                    on_step(&step);
                    if self.opts.progress {
                        for id in &step.lost {
                            eprintln!(
                                "slurm: run {id} left the queue unfinished; see {}",
                                self.plan.run_dir(id).join("worker.log").display()
                            );
                        }
                        for id in &step.cancelled {
                            eprintln!(
                                "slurm: run {id}: cancelled its task, which waited on a failed or \
                                 resubmitted dependency"
                            );
                        }
                        if !step.resubmitted.is_empty() {
                            eprintln!("slurm: resubmitted {}", step.resubmitted.join(", "));
                        }
                        for id in &step.failed {
                            eprintln!(
                                "slurm: run {id} failed {} times; see {}",
                                self.opts.max_retries + 1,
                                self.plan.run_dir(id).join("worker.log").display()
                            );
                        }
                        let line = step.progress.to_string();
                        if line != last_line {
                            eprintln!("slurm: {line}");
                            last_line = line;
                        }
                    }
                    if step.progress.complete() {
                        return Ok(self.report());
                    }
                }
                Err(e) if e.is_transient() => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > self.opts.controller_grace {
                        return Err(e);
                    }
                    if self.opts.progress {
                        eprintln!("slurm: {e} (retrying)");
                    }
                }
                Err(e) => return Err(e),
            }
            if let Some(t) = self.opts.timeout
                && start.elapsed() > t
            {
                return Err(SlurmError::Timeout {
                    waited: start.elapsed(),
                    progress: self.report.progress.to_string(),
                });
            }
            std::thread::sleep(self.opts.poll);
        }
    }

    /// What this driver did so far.
    pub fn report(&self) -> SlurmReport {
        self.report.clone()
    }

    /// Cancels every queued task of the grid.
    pub fn cancel(&self) -> Result<usize, SlurmError> {
        cancel(self.plan, &self.opts.runner)
    }

    fn chunk(&mut self) -> Result<usize, SlurmError> {
        if let Some(c) = self.chunk {
            return Ok(c);
        }
        let max = self.opts.runner.max_array_size()?;
        if max == 0 {
            return Err(SlurmError::Config(
                "job arrays are disabled on this cluster (MaxArraySize = 0)".into(),
            ));
        }
        // Indices run from 0 to MaxArraySize - 1.
        let c = self.opts.max_array_size.map_or(max, |m| m.clamp(1, max));
        self.chunk = Some(c);
        Ok(c)
    }

    /// Writes the list file and submits the array; returns its name and job id.
    fn submit_array(&mut self, layout: &ArrayLayout) -> Result<(String, u64), SlurmError> {
        let name = self.next_array_name()?;
        let list = self.dir.join(format!("{name}.list"));
        write_atomic(&list, layout.list_file().as_bytes())?;
        let mut spec = array_spec(&layout.indices());
        if let Some(t) = self.opts.array_throttle {
            let _ = write!(spec, "%{t}");
        }
        let mut args: Vec<OsString> = vec![
            format!("--job-name={}{name}", self.prefix).into(),
            format!("--array={spec}").into(),
            {
                let mut o = OsString::from("--output=");
                o.push(self.dir.join("logs").join(format!("{name}_%a.out")));
                o
            },
            {
                let mut o = OsString::from("--chdir=");
                o.push(&self.plan.output_dir);
                o
            },
        ];
        if let Some(job) = layout.after {
            args.push(format!("--dependency=aftercorr:{job}").into());
        }
        args.push(self.dir.join("job.sh").into());
        args.push(list.into());
        let job = self.opts.runner.sbatch(&args)?;
        Ok((name, job))
    }

    /// `a0001`, `a0002`, ...: one more than the largest list file's number.
    fn next_array_name(&self) -> Result<String, SlurmError> {
        let mut max = 0u64;
        let entries = std::fs::read_dir(&self.dir).map_err(|e| SlurmError::io(&self.dir, e))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".list")
                && is_array_name(stem)
                && let Ok(n) = stem[1..].parse::<u64>()
            {
                max = max.max(n);
            }
        }
        Ok(format!("a{:04}", max + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_compress_ranges() {
        assert_eq!(array_spec(&[0, 1, 2, 3]), "0-3");
        assert_eq!(array_spec(&[0, 2, 3, 5, 7, 8, 9]), "0,2-3,5,7-9");
        assert_eq!(array_spec(&[4]), "4");
        assert_eq!(array_spec(&[]), "");
    }

    #[test]
    fn squeue_lines_parse() {
        let e = parse_squeue_line(
            "812|3|PENDING|Dependency|aftercorr:80_*(unfulfilled)|stilts-g-1a2b3c4d-a0002",
        )
        .unwrap();
        assert_eq!(e.job, 812);
        assert_eq!(e.after(), Some(80));
        assert_eq!(e.index, Some(3));
        assert_eq!(e.slurm_id(), "812_3");
        assert_eq!(e.name, "stilts-g-1a2b3c4d-a0002");
        let e = parse_squeue_line("9|N/A|RUNNING|None|(null)|a|b").unwrap();
        assert_eq!(e.index, None);
        assert_eq!(e.after(), None);
        assert_eq!(e.name, "a|b");
        assert!(parse_squeue_line("garbage").is_none());
    }

    #[test]
    fn config_values_parse() {
        let cfg =
            "Configuration data as of 2024\nMaxArraySize            = 1001\nMaxJobCount = 10000\n";
        assert_eq!(parse_config_value(cfg, "MaxArraySize"), Some("1001"));
        assert_eq!(parse_config_value(cfg, "MaxJobCount"), Some("10000"));
        assert_eq!(parse_config_value(cfg, "Nope"), None);
    }

    #[test]
    fn plain_arrays_chunk_below_the_limit() {
        let runs: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
        let a = plain_arrays(&runs, 2);
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].indices(), vec![0, 1]);
        assert_eq!(a[2].indices(), vec![0]);
        assert_eq!(a[2].tasks[&0], "r4");
        assert_eq!(a[1].list_file(), "r2\nr3\n");
        assert!(a.iter().all(|l| l.after.is_none()));
    }

    #[test]
    fn slot_arrays_follow_their_dependencies_tasks() {
        // Dependency 0 of array 7 has three dependents, dependency 2 one, dependency 1 of
        // array 8 two.
        let runs = vec![
            ("t0a".to_string(), 7, 0),
            ("t2a".to_string(), 7, 2),
            ("t0b".to_string(), 7, 0),
            ("t0c".to_string(), 7, 0),
            ("u1a".to_string(), 8, 1),
            ("u1b".to_string(), 8, 1),
        ];
        let a = slot_arrays(&runs);
        assert_eq!(a.len(), 5);
        assert_eq!(a[0].after, Some(7));
        assert_eq!(a[0].indices(), vec![0, 2]);
        assert_eq!(a[0].list_file(), "t0a\n-\nt2a\n");
        assert_eq!(a[1].indices(), vec![0]);
        assert_eq!(a[1].tasks[&0], "t0b");
        assert_eq!(a[2].tasks[&0], "t0c");
        assert_eq!(a[3].after, Some(8));
        assert_eq!(a[3].list_file(), "-\nu1a\n");
        assert_eq!(a[4].tasks[&1], "u1b");
    }

    fn node(id: &str, depends_on: Option<&str>) -> RunNode {
        RunNode {
            id: id.into(),
            meta: crate::grid::RunMeta {
                grid: "g".into(),
                kind: crate::grid::RunKind::Target,
                encoder: "E".into(),
                condition: "none".into(),
                target: Some("RTE".into()),
                regime: crate::grid::Regime::Full,
                restart: 0,
                seed: 1,
                scale: None,
                phase: "rte".into(),
            },
            depends_on: depends_on.map(str::to_string),
            experiment: toml::Table::new(),
        }
    }

    #[test]
    fn snapshots_find_stranded_and_redundant_tasks() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = Plan {
            grid: "g".into(),
            output_dir: tmp.path().to_path_buf(),
            nodes: vec![
                node("i", None),
                node("t", Some("i")),
                node("u", Some("i")),
                node("b", None),
                node("f", None),
                node("n", None),
            ],
        };
        let dir = slurm_dir(&plan);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [
            ("a0001", "i\nb\nf\n"),
            ("a0002", "t\n"),
            ("a0003", "u\n"),
            ("a0004", "i\n"),
        ] {
            std::fs::write(dir.join(format!("{name}.list")), text).unwrap();
        }
        std::fs::create_dir_all(plan.run_dir("f")).unwrap();
        std::fs::write(plan.run_dir("f").join("summary.json"), "{}").unwrap();
        let events = vec![
            Event::Submit {
                run: "i".into(),
                job: 88,
            },
            Event::Submit {
                run: "b".into(),
                job: 88,
            },
            Event::Submit {
                run: "f".into(),
                job: 88,
            },
            Event::Submit {
                run: "t".into(),
                job: 90,
            },
            Event::Submit {
                run: "u".into(),
                job: 91,
            },
            Event::Lost {
                run: "i".into(),
                charged: true,
            },
            Event::Submit {
                run: "i".into(),
                job: 92,
            },
        ];
        let p = job_prefix(&plan);
        let queue: Vec<QueueEntry> = [
            format!("92|0|RUNNING|None|(null)|{p}a0004"),
            // Waits on the intermediate's lost task (Slurm has not noticed).
            format!("90|0|PENDING|Dependency|aftercorr:88_*(unfulfilled)|{p}a0002"),
            format!("91|0|PENDING|DependencyNeverSatisfied|aftercorr:88_*(failed)|{p}a0003"),
            // Requeued after it finished.
            format!("88|2|PENDING|BeginTime|(null)|{p}a0001"),
            format!("77|0|PENDING|None|(null)|{p}a0099"),
            "5|N/A|RUNNING|None|(null)|someone-else".to_string(),
        ]
        .iter()
        .map(|l| parse_squeue_line(l).unwrap())
        .collect();
        let snap = snapshot(&plan, &dir, &queue, &events);
        assert!(matches!(snap.runs["i"], RunStatus::Running(ref t) if t.job == 92));
        assert!(matches!(snap.runs["t"], RunStatus::Stranded(_)));
        assert!(matches!(snap.runs["u"], RunStatus::Stranded(_)));
        assert_eq!(snap.runs["b"], RunStatus::Missing);
        assert_eq!(snap.runs["f"], RunStatus::Finished);
        assert_eq!(snap.runs["n"], RunStatus::Unsubmitted);
        assert_eq!(snap.redundant.len(), 1);
        assert_eq!(snap.redundant[0].1.slurm_id(), "88_2");
        assert_eq!(snap.unknown_tasks, 1);
        assert!(snap.duplicates.is_empty());
    }

    #[test]
    fn job_scripts_carry_resources_and_the_worker() {
        let plan = Plan {
            grid: "g".into(),
            output_dir: PathBuf::from("/grids/my grid"),
            nodes: vec![],
        };
        let slurm = SlurmFile {
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            cpus_per_task: Some(8),
            mem: Some("32G".into()),
            time: Some("12:00:00".into()),
            device: None,
            extra: vec!["--account=lab".into(), "#SBATCH --qos=high".into()],
        };
        let worker = WorkerCommand {
            stilts: PathBuf::from("/opt/stilts/bin/stilts"),
            device: None,
        };
        let s = job_script(&plan, &slurm, &worker);
        for line in [
            "#SBATCH --requeue",
            "#SBATCH --partition=gpu",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --mem=32G",
            "#SBATCH --time=12:00:00",
            "#SBATCH --account=lab",
            "#SBATCH --qos=high",
            "run='/grids/my grid/runs'/\"$id\"",
            "exec /opt/stilts/bin/stilts run \"$run\"/experiment.toml --output-dir \"$run\" \
             --quiet --device cuda:0 >>\"$run/worker.log\" 2>&1",
        ] {
            assert!(s.lines().any(|l| l == line), "no line {line:?} in\n{s}");
        }
        let cpu = job_script(&plan, &SlurmFile::default(), &worker);
        assert!(
            !cpu.contains("--device") && !cpu.contains("--gres"),
            "{cpu}"
        );
    }

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

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/a/b-c.toml"), "/a/b-c.toml");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn charged_losses_reset() {
        let ev = vec![
            Event::Lost {
                run: "a".into(),
                charged: true,
            },
            Event::Lost {
                run: "a".into(),
                charged: false,
            },
            Event::Lost {
                run: "b".into(),
                charged: true,
            },
            Event::Reset { run: "b".into() },
            Event::Cancel,
        ];
        let n = charged_losses(&ev);
        assert_eq!(n.get("a"), Some(&1));
        assert_eq!(n.get("b"), None);
    }
}
