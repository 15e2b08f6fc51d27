//! The driver: one reconcile-and-submit step at a time, holding `slurm/driver.lock`. A step
//! cancels stale tasks, marks lost and failed runs, and submits (`submit.rs`) what needs it.

mod submit;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::events::{CancelReason, Event, append_events, charged_losses, read_events};
use super::report::{SlurmReport, StepReport, progress};
use super::script::job_script;
use super::snapshot::{RunStatus, Snapshot, snapshot};
use super::{SlurmError, SlurmOptions, cancel, job_prefix, slurm_dir};
use crate::exec::{WorkerCommand, driver_lock};
use crate::grid::spec::SlurmFile;
use crate::grid::{LoadedGrid, Plan, write_atomic};

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
    _lock: stilts_io::lock::FileLock,
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
        let lock = driver_lock(&dir)
            .map_err(|e| SlurmError::io(&lock_path, e))?
            .map_err(|pid| SlurmError::Locked {
                path: lock_path,
                holder: stilts_io::lock::holder_text(pid),
            })?;
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
            let resets: Vec<Event> = losses
                .iter()
                .filter(|&(_, &n)| n > opts.max_retries)
                .map(|(run, _)| Event::Reset { run: run.clone() })
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
        let snap = self.reconcile()?;
        let mut events = read_events(&self.dir)?;
        let mut step = StepReport::default();
        // Stranded tasks, and pending tasks of finished runs, are cancelled.
        let mut new_events = self.cancel_stale_tasks(&snap, &mut step)?;
        // Missing runs become lost after `lost_after` reconciles in a row.
        let lost = self.count_misses(&snap);
        let mut failed = self.mark_lost(&lost, &events, &mut new_events, &mut step);
        append_events(&self.dir, &new_events)?;
        // The losses just recorded count below.
        events.extend(
            new_events
                .into_iter()
                .filter(|e| matches!(e, Event::Lost { .. })),
        );
        // Runs that failed earlier (in this driver or before) and are not back in the queue.
        let losses = charged_losses(&events);
        for (id, st) in &snap.runs {
            if matches!(st, RunStatus::Missing)
                && losses.get(id).copied().unwrap_or(0) > self.opts.max_retries
            {
                failed.insert(id.clone());
            }
        }
        let candidates = self.candidates(&snap, &lost, &failed);
        self.submit_runs(candidates, &snap, &failed, &events, &mut step)?;
        step.failed = failed.into_iter().collect();
        step.progress = progress(self.plan, &snap, &step);
        step.snapshot = snap;
        self.record(&step);
        Ok(step)
    }

    /// Cancels stranded tasks (their runs are resubmitted with the new dependency) and pending
    /// tasks of finished runs (they would only find the run finished); returns the events.
    fn cancel_stale_tasks(
        &mut self,
        snap: &Snapshot,
        step: &mut StepReport,
    ) -> Result<Vec<Event>, SlurmError> {
        let mut events = Vec::new();
        let mut stranded = BTreeSet::new();
        let mut cancel_ids = Vec::new();
        for (id, st) in &snap.runs {
            if let RunStatus::Stranded(t) = st {
                cancel_ids.push(t.slurm_id());
                let reason = if t.never_satisfied() {
                    CancelReason::DependencyNeverSatisfied
                } else {
                    CancelReason::DependencyResubmitted
                };
                events.push(Event::Cancel {
                    run: id.clone(),
                    job: t.job,
                    index: t.index,
                    reason,
                });
                stranded.insert(id.clone());
            }
        }
        for (id, t) in &snap.redundant {
            cancel_ids.push(t.slurm_id());
            events.push(Event::Cancel {
                run: id.clone(),
                job: t.job,
                index: t.index,
                reason: CancelReason::Finished,
            });
        }
        if !cancel_ids.is_empty() {
            self.opts.runner.scancel(&cancel_ids)?;
            step.cancelled = stranded.iter().cloned().collect();
            self.unstranded.extend(stranded);
        }
        Ok(events)
    }

    /// Counts each missing run's reconciles in a row; returns those missing `lost_after` times.
    fn count_misses(&mut self, snap: &Snapshot) -> BTreeSet<String> {
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
        lost
    }

    /// Records the `lost` runs' losses in `new_events` (charged when their dependency is
    /// finished); returns those lost more often than the retry limit.
    fn mark_lost(
        &mut self,
        lost: &BTreeSet<String>,
        events: &[Event],
        new_events: &mut Vec<Event>,
        step: &mut StepReport,
    ) -> BTreeSet<String> {
        let plan = self.plan;
        let losses_before = charged_losses(events);
        let mut failed = BTreeSet::new();
        for id in lost {
            let before = losses_before.get(id).copied().unwrap_or(0);
            if before > self.opts.max_retries {
                // Failed earlier: not charged again.
                failed.insert(id.clone());
                continue;
            }
            let charged = plan.node(id).is_none_or(|n| plan.waiting_on(n).is_empty());
            new_events.push(Event::Lost {
                run: id.clone(),
                charged,
            });
            self.misses.remove(id);
            step.lost.push(id.clone());
            if charged && before + 1 > self.opts.max_retries {
                failed.insert(id.clone());
            }
        }
        failed
    }

    /// The runs to submit, in plan order: unsubmitted, stranded, and lost (not failed) ones.
    fn candidates(
        &self,
        snap: &Snapshot,
        lost: &BTreeSet<String>,
        failed: &BTreeSet<String>,
    ) -> Vec<String> {
        let mut candidates: Vec<String> = Vec::new();
        for node in &self.plan.nodes {
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
        candidates
    }

    /// Adds a finished step to what this driver did.
    fn record(&mut self, step: &StepReport) {
        self.report.submitted += step.submitted.len();
        self.report.resubmitted += step.resubmitted.len();
        self.report.arrays.extend(step.arrays.iter().cloned());
        self.report.progress = step.progress;
        self.report.failed = step.failed.clone();
        self.report.blocked = step.blocked.clone();
        self.report.finished = step
            .snapshot
            .runs
            .iter()
            .filter(|(_, s)| **s == RunStatus::Finished)
            .map(|(id, _)| id.clone())
            .collect();
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
                        self.print_step(&step, &mut last_line);
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

    /// Prints what a step did on stderr, and the progress line when it differs from
    /// `last_line`.
    fn print_step(&self, step: &StepReport, last_line: &mut String) {
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
        if line != *last_line {
            eprintln!("slurm: {line}");
            *last_line = line;
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
}
