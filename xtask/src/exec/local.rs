//! The local executor: a queue over this machine's workers (CPU workers or GPUs), each running
//! one run at a time. Runs start when their dependency is finished; finished runs are skipped;
//! interrupted runs resume from their checkpoints (the worker does that); a run whose worker
//! failed is retried once per invocation, and its dependents wait for a later invocation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::{WorkerCommand, record_attempt};
use crate::grid::Plan;

/// Local execution settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalOptions {
    /// One entry per worker: its `--device` (`None` = the experiment's, i.e. cpu).
    pub workers: Vec<Option<String>>,
    /// Attempts per run per invocation.
    pub max_attempts: usize,
    /// Draw a progress bar.
    pub progress: bool,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            workers: vec![None],
            max_attempts: 2,
            progress: true,
        }
    }
}

/// What an invocation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalReport {
    /// Finished before this invocation (skipped).
    pub skipped: Vec<String>,
    /// Finished by this invocation.
    pub finished: Vec<String>,
    /// Still failing after every attempt.
    pub failed: Vec<String>,
    /// Not started because a dependency failed.
    pub blocked: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("starting {command} for run {run}: {source}")]
    Spawn {
        command: String,
        run: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

struct Running {
    id: String,
    worker: usize,
    child: Child,
}

/// Runs every unfinished run of `plan` (its files written by [`Plan::write`]).
pub fn run(
    plan: &Plan,
    worker: &WorkerCommand,
    opts: &LocalOptions,
) -> Result<LocalReport, LocalError> {
    let mut report = LocalReport::default();
    let dependency: HashMap<&str, &[String]> = plan
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), n.depends_on.as_slice()))
        .collect();
    // Runs whose result file exists (checked once here, then updated as workers finish), and
    // runs that cannot finish in this invocation (failed, or behind a failed dependency).
    let mut finished: HashSet<String> = HashSet::new();
    let mut unrunnable: HashSet<String> = HashSet::new();
    let mut pending: VecDeque<String> = VecDeque::new();
    for n in &plan.nodes {
        if plan.is_finished(&n.id) {
            report.skipped.push(n.id.clone());
            finished.insert(n.id.clone());
        } else {
            pending.push_back(n.id.clone());
        }
    }
    let deps_of = |id: &str| dependency.get(id).copied().unwrap_or_default();
    let total = pending.len();
    let bar = if opts.progress && total > 0 {
        let b = ProgressBar::new(total as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs  {msg}  eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(Duration::from_millis(500));
        b
    } else {
        ProgressBar::hidden()
    };
    let mut attempts: BTreeMap<String, usize> = BTreeMap::new();
    let mut running: Vec<Running> = Vec::new();
    let workers = opts.workers.len().max(1);
    loop {
        // Reap finished workers.
        let mut i = 0;
        while i < running.len() {
            let done = running[i].child.try_wait().map_err(|e| LocalError::Io {
                path: plan.run_dir(&running[i].id),
                source: e,
            })?;
            let Some(status) = done else {
                i += 1;
                continue;
            };
            let r = running.swap_remove(i);
            if plan.is_finished(&r.id) {
                finished.insert(r.id.clone());
                report.finished.push(r.id.clone());
                bar.inc(1);
                tracing_line(&bar, &format!("run {} finished ({status})", r.id));
            } else if attempts.get(&r.id).copied().unwrap_or(0) < opts.max_attempts {
                tracing_line(
                    &bar,
                    &format!(
                        "run {} failed ({status}), retrying; see {}",
                        r.id,
                        plan.run_dir(&r.id).join("worker.log").display()
                    ),
                );
                pending.push_front(r.id);
            } else {
                tracing_line(
                    &bar,
                    &format!(
                        "run {} failed ({status}); see {}",
                        r.id,
                        plan.run_dir(&r.id).join("worker.log").display()
                    ),
                );
                unrunnable.insert(r.id.clone());
                report.failed.push(r.id);
                bar.inc(1);
            }
        }
        // Drop runs whose dependency failed.
        pending.retain(|id| {
            let dep_failed = deps_of(id).iter().any(|d| unrunnable.contains(d));
            if dep_failed {
                unrunnable.insert(id.clone());
                report.blocked.push(id.clone());
                bar.inc(1);
            }
            !dep_failed
        });
        // Start ready runs on free workers.
        while running.len() < workers {
            let ready = pending
                .iter()
                .position(|id| deps_of(id).iter().all(|d| finished.contains(d)));
            let Some(pos) = ready else { break };
            let Some(id) = pending.remove(pos) else { break };
            let busy: BTreeSet<usize> = running.iter().map(|r| r.worker).collect();
            let slot = (0..workers).find(|w| !busy.contains(w)).unwrap_or(0);
            let mut cmd = worker.clone();
            if let Some(d) = opts.workers.get(slot).cloned().flatten() {
                cmd.device = Some(d);
            }
            let child = spawn(plan, &id, &cmd, slot)?;
            *attempts.entry(id.clone()).or_default() += 1;
            running.push(Running {
                id,
                worker: slot,
                child,
            });
        }
        let done = report.finished.len() + report.failed.len() + report.blocked.len();
        bar.set_message(format!(
            "done {} running {} failed {} blocked {}",
            report.finished.len(),
            running.len(),
            report.failed.len(),
            report.blocked.len()
        ));
        if running.is_empty() && (pending.is_empty() || done >= total) {
            break;
        }
        if running.is_empty() {
            // Nothing can start: the rest wait on runs outside this plan or on failures.
            report.blocked.extend(pending.drain(..));
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
    Ok(report)
}

fn tracing_line(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn spawn(plan: &Plan, id: &str, worker: &WorkerCommand, slot: usize) -> Result<Child, LocalError> {
    let dir = plan.run_dir(id);
    let io = |e| LocalError::Io {
        path: dir.clone(),
        source: e,
    };
    record_attempt(&dir, "local", &format!("worker {slot}")).map_err(io)?;
    let log_path = dir.join("worker.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| LocalError::Io {
            path: log_path.clone(),
            source: e,
        })?;
    let err = log.try_clone().map_err(|e| LocalError::Io {
        path: log_path.clone(),
        source: e,
    })?;
    let mut cmd = Command::new(&worker.stilts);
    cmd.args(worker.args(&dir))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    die_with_parent(&mut cmd);
    let child = cmd.spawn().map_err(|e| LocalError::Spawn {
        command: worker.stilts.display().to_string(),
        run: id.to_string(),
        source: e,
    })?;
    let pid_path = dir.join("worker.pid");
    std::fs::write(&pid_path, format!("{}\n", child.id())).map_err(|e| LocalError::Io {
        path: pid_path,
        source: e,
    })?;
    Ok(child)
}

/// A killed driver must not leave workers behind (the next driver would start a second worker
/// on the same run): on Linux the worker gets SIGTERM when the driver dies, and the next driver
/// resumes the run from its checkpoint.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child's own process state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}
