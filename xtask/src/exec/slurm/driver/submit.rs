//! The driver's submissions: candidates sorted by where their dependency stands, laid out in
//! plain and slot arrays, list files written and arrays submitted, in rounds (a dependent goes
//! in the round after its dependency).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt::Write as _;

use super::Driver;
use crate::exec::slurm::SlurmError;
use crate::exec::slurm::arrays::{
    ArrayLayout, array_spec, list_path, next_array_name, plain_arrays, slot_arrays,
};
use crate::exec::slurm::events::{Event, append_events, submitted_runs};
use crate::exec::slurm::report::StepReport;
use crate::exec::slurm::snapshot::{RunStatus, Snapshot};
use crate::grid::write_atomic;

/// `(array job, index)` of every run's task in the queue: what a dependent's slot array waits
/// for (`aftercorr`).
type TaskRefs = HashMap<String, (u64, u32)>;

/// One round's candidates, by where their dependency stands.
#[derive(Default)]
struct Sorted {
    /// No dependency, or a finished one: plain arrays.
    plain: Vec<String>,
    /// A queued dependency: (run, its dependency's array job and index), for slot arrays.
    slotted: Vec<(String, u64, u32)>,
    /// A dependency not queued yet (deferred, or submitted this round): a later round.
    later: Vec<String>,
}

impl Driver<'_> {
    /// Submits `candidates` in rounds: those whose dependency is finished or queued, then
    /// their dependents after them, until none is left; records arrays, blocked and deferred
    /// runs in `step`.
    pub(super) fn submit_runs(
        &mut self,
        mut candidates: Vec<String>,
        snap: &Snapshot,
        failed: &BTreeSet<String>,
        events: &[Event],
        step: &mut StepReport,
    ) -> Result<(), SlurmError> {
        // Queued dependencies: (array job, index) of every run in the queue.
        let mut refs: TaskRefs = HashMap::new();
        for (id, st) in &snap.runs {
            if let RunStatus::Queued(t) | RunStatus::Running(t) = st {
                refs.insert(id.clone(), (t.job, t.index));
            }
        }
        let mut blocked: BTreeMap<String, String> = BTreeMap::new();
        let mut deferred = BTreeSet::new();
        let mut ever = submitted_runs(events);
        loop {
            let sorted = self.sort_candidates(candidates, &refs, failed, &mut blocked);
            let mut layouts = Vec::new();
            if !sorted.plain.is_empty() {
                let chunk = self.chunk()?;
                layouts.extend(plain_arrays(&sorted.plain, chunk));
            }
            layouts.extend(slot_arrays(&sorted.slotted));
            if layouts.is_empty() {
                break;
            }
            for layout in layouts {
                match self.submit_array(&layout) {
                    Ok((name, job)) => {
                        self.record_array(&layout, name, job, &mut refs, &mut ever, step)?;
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
            candidates = sorted.later;
            if candidates.is_empty() {
                break;
            }
        }
        step.blocked = blocked.into_iter().collect();
        step.deferred = deferred.into_iter().collect();
        Ok(())
    }

    /// Sorts `candidates` by their dependency; those whose dependency failed, is blocked or
    /// is not in the plan go in `blocked` (run → dependency).
    fn sort_candidates(
        &self,
        candidates: Vec<String>,
        refs: &TaskRefs,
        failed: &BTreeSet<String>,
        blocked: &mut BTreeMap<String, String>,
    ) -> Sorted {
        let plan = self.plan;
        let mut sorted = Sorted::default();
        for id in candidates {
            let waiting = plan
                .node(&id)
                .map(|n| plan.waiting_on(n))
                .unwrap_or_default();
            let lost = waiting.iter().find(|d| {
                failed.contains(**d) || blocked.contains_key(**d) || plan.node(d).is_none()
            });
            if let Some(d) = lost {
                let d = d.to_string();
                blocked.insert(id, d);
                continue;
            }
            match waiting.as_slice() {
                [] => sorted.plain.push(id),
                // A slot array waits for one array task; a run that reads from several
                // unfinished runs (a fusion) waits in the driver until one is left.
                [d] => match refs.get(*d) {
                    Some(&(job, index)) => sorted.slotted.push((id, job, index)),
                    None => sorted.later.push(id),
                },
                _ => sorted.later.push(id),
            }
        }
        sorted
    }

    /// Records the array `name` (job `job`) just submitted: its submit events, its tasks as
    /// dependencies of later rounds, and its runs in `step`.
    fn record_array(
        &mut self,
        layout: &ArrayLayout,
        name: String,
        job: u64,
        refs: &mut TaskRefs,
        ever: &mut BTreeSet<String>,
        step: &mut StepReport,
    ) -> Result<(), SlurmError> {
        let mut runs = Vec::new();
        let mut events = Vec::new();
        for (&k, id) in &layout.tasks {
            refs.insert(id.clone(), (job, k));
            self.unstranded.remove(id);
            events.push(Event::Submit {
                run: id.clone(),
                array: name.clone(),
                job,
                index: k,
            });
            runs.push(id.clone());
            if ever.insert(id.clone()) {
                step.submitted.push(id.clone());
            } else {
                step.resubmitted.push(id.clone());
            }
        }
        append_events(&self.dir, &events)?;
        step.arrays.push((name, job, runs));
        Ok(())
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
    fn submit_array(&self, layout: &ArrayLayout) -> Result<(String, u64), SlurmError> {
        let name = next_array_name(&self.dir)?;
        let list = list_path(&self.dir, &name);
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
}
