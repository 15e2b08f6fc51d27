//! Reconciling: where every run stands, from a queue listing, the list files, the event log
//! and the runs' result files.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::arrays::list_lookup;
use super::events::{Event, submitted_runs};
use super::job_prefix;
use super::queue::QueueEntry;
use crate::grid::{Plan, RunNode};

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
    pub(super) fn is_running(&self) -> bool {
        matches!(
            self.state.as_str(),
            "RUNNING" | "COMPLETING" | "CONFIGURING" | "SUSPENDED" | "STOPPED" | "SIGNALING"
        )
    }
    pub(super) fn never_satisfied(&self) -> bool {
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

/// Every run's status from a queue listing and the result files. The queue must be read
/// before the result files: a run that finishes in between is then seen as finished.
pub(super) fn snapshot(
    plan: &Plan,
    dir: &Path,
    queue: &[QueueEntry],
    events: &[Event],
) -> Snapshot {
    let submitted = submitted_runs(events);
    let mut latest: HashMap<&str, u64> = HashMap::new();
    for e in events {
        if let Event::Submit { run, job, .. } = e {
            latest.insert(run, *job);
        }
    }
    let (queued, unknown) = queued_tasks(plan, dir, queue);
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
        // Pending behind an array job that none of its dependencies is in any more.
        let currents: Vec<u64> = node.depends_on.iter().filter_map(|d| current(d)).collect();
        match (t.state.as_str(), t.after) {
            ("PENDING", Some(job)) => !currents.is_empty() && !currents.contains(&job),
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

/// The grid's tasks in `queue`, by run id, and how many of its tasks map to no run.
fn queued_tasks(
    plan: &Plan,
    dir: &Path,
    queue: &[QueueEntry],
) -> (BTreeMap<String, Vec<QueuedTask>>, usize) {
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
    (queued, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::slurm::queue::parse_squeue_line;
    use crate::exec::slurm::slurm_dir;

    fn node(id: &str, depends_on: Option<&str>) -> RunNode {
        RunNode {
            id: id.into(),
            meta: crate::grid::RunMeta {
                grid: "g".into(),
                kind: crate::grid::RunKind::Target,
                method: "full".into(),
                encoder: "E".into(),
                condition: "none".into(),
                target: Some("RTE".into()),
                regime: crate::grid::Regime::Full,
                restart: 0,
                seed: 1,
                scale: None,
                phase: "rte".into(),
            },
            depends_on: depends_on.map(str::to_string).into_iter().collect(),
            experiment: Default::default(),
        }
    }

    fn submit(run: &str, array: &str, job: u64, index: u32) -> Event {
        Event::Submit {
            run: run.into(),
            array: array.into(),
            job,
            index,
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
            submit("i", "a0001", 88, 0),
            submit("b", "a0001", 88, 1),
            submit("f", "a0001", 88, 2),
            submit("t", "a0002", 90, 0),
            submit("u", "a0003", 91, 0),
            Event::Lost {
                run: "i".into(),
                charged: true,
            },
            submit("i", "a0004", 92, 0),
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
}
