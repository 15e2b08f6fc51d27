//! What a driver did: one step's report, the whole driver's, and the progress line.

use std::collections::BTreeSet;

use super::snapshot::{RunStatus, Snapshot};
use crate::grid::Plan;

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

/// A step's counts, as the progress line shows them.
pub(super) fn progress(plan: &Plan, snap: &Snapshot, step: &StepReport) -> Progress {
    let submitted_now: BTreeSet<&String> = step.submitted.iter().chain(&step.resubmitted).collect();
    let failed: BTreeSet<&String> = step.failed.iter().collect();
    let blocked: BTreeSet<&String> = step.blocked.iter().map(|(r, _)| r).collect();
    let mut p = Progress {
        total: plan.nodes.len(),
        ..Progress::default()
    };
    for (id, st) in &snap.runs {
        match st {
            RunStatus::Finished => p.done += 1,
            _ if failed.contains(id) => p.failed += 1,
            _ if blocked.contains(id) => p.blocked += 1,
            RunStatus::Running(_) => p.running += 1,
            RunStatus::Queued(_) => p.queued += 1,
            _ if submitted_now.contains(id) => p.queued += 1,
            RunStatus::Missing => p.missing += 1,
            _ => p.waiting += 1,
        }
    }
    p
}
