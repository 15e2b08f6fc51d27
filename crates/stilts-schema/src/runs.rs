//! The runs an output directory holds, finished or not, as `stilts show` lists them: an
//! experiment's `output_dir` (`NN-<phase>/seed-<s>/`), one phase directory, or one run
//! directory. A finished run is read from its `result.json`; a run in progress from the
//! epochs its checkpoint (`checkpoint/state.json`) or its `val_history.json` record, whichever
//! holds more (a run stopped between writing the two has one epoch more in the first); a run
//! that has not finished an epoch is listed as started.
//!
//! A process training a run keeps a [`Heartbeat`] in its directory (rewritten every
//! [`HEARTBEAT_INTERVAL_S`] seconds, removed when the run ends or fails), so an unfinished run
//! can be told live from dead: dead when the heartbeat's process is gone from this host, or,
//! for a process on another host, when the heartbeat is older than [`HEARTBEAT_STALE_S`].

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::SchemaError;
use crate::results::{EpochRecord, RunResult, first_best};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// `result.json` is written.
    Finished,
    /// Epochs are done but the run is not (or was stopped before it finished).
    InProgress,
    /// The directory exists; no epoch has finished.
    Started,
}

/// The heartbeat file of a run directory.
pub const HEARTBEAT_FILE: &str = "heartbeat.json";
/// Seconds between heartbeats.
pub const HEARTBEAT_INTERVAL_S: u64 = 30;
/// A heartbeat older than this (seconds) is a dead process's.
pub const HEARTBEAT_STALE_S: f64 = 300.0;

/// `heartbeat.json`: which process is training a run, and when it last said so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The process.
    pub pid: u32,
    /// Its host name.
    pub host: String,
    /// When it wrote this, in seconds since the Unix epoch.
    pub time_s: f64,
}

/// This machine's host name (empty when unknown).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// Seconds since the Unix epoch, now.
pub fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Heartbeat {
    /// This process's heartbeat, now.
    pub fn now() -> Heartbeat {
        Heartbeat {
            pid: std::process::id(),
            host: host_name(),
            time_s: now_s(),
        }
    }

    /// Whether its process is alive: on this host (with `/proc`), whether the process exists;
    /// elsewhere, whether the heartbeat is fresher than [`HEARTBEAT_STALE_S`].
    pub fn is_live(&self) -> bool {
        let proc_root = Path::new("/proc");
        if self.host == host_name() && proc_root.join("self").exists() {
            return proc_root.join(self.pid.to_string()).exists();
        }
        now_s() - self.time_s <= HEARTBEAT_STALE_S
    }
}

/// One run as `stilts show` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunStatus {
    /// The phase directory's name (`00-mnli`).
    pub phase: String,
    /// The restart seed.
    pub seed: u64,
    /// The run's directory.
    pub dir: PathBuf,
    /// Where it stands.
    pub state: RunState,
    /// Dev score per finished epoch, in order.
    pub dev_scores: Vec<f64>,
    /// Mean training loss per finished epoch.
    pub train_losses: Vec<f64>,
    /// The epoch (1-based) whose model the run keeps: `result.json`'s, or for a run in progress
    /// the best so far.
    pub kept_epoch: Option<usize>,
    /// The kept epoch's dev score.
    pub dev_score: Option<f64>,
    /// At or below the majority-class baseline (finished runs).
    pub degenerate: Option<bool>,
    /// Wall time (finished runs).
    pub wall_s: Option<f64>,
    /// Training throughput (finished runs).
    pub examples_per_s: Option<f64>,
    /// Unfinished runs with a heartbeat: whether a process is training it now.
    pub live: Option<bool>,
    /// Seconds since that heartbeat was written.
    pub last_seen_s: Option<f64>,
}

fn seed_of(name: &str) -> Option<u64> {
    name.strip_prefix("seed-")?.parse().ok()
}

fn is_phase_dir(name: &str) -> bool {
    name.len() > 3
        && name.as_bytes()[..2].iter().all(u8::is_ascii_digit)
        && name.as_bytes()[2] == b'-'
}

fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, SchemaError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SchemaError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    Ok(out)
}

/// The epochs an unfinished run has recorded: the longer of its checkpoint's history and its
/// `val_history.json`.
fn epochs_so_far(dir: &Path) -> Result<Vec<EpochRecord>, SchemaError> {
    #[derive(serde::Deserialize)]
    struct CheckpointState {
        history: Vec<EpochRecord>,
    }
    let mut best = Vec::new();
    let state = dir.join("checkpoint").join("state.json");
    if state.is_file() {
        best = crate::read_json::<CheckpointState>(&state)?.history;
    }
    let history = dir.join("val_history.json");
    if history.is_file() {
        let h: Vec<EpochRecord> = crate::read_json(&history)?;
        if h.len() > best.len() {
            best = h;
        }
    }
    Ok(best)
}

/// One run directory's status.
pub fn run_status(phase: &str, seed: u64, dir: &Path) -> Result<RunStatus, SchemaError> {
    let result = dir.join("result.json");
    let (state, history, result) = if result.is_file() {
        let r = RunResult::read(&result)?;
        (RunState::Finished, r.history.clone(), Some(r))
    } else {
        let history = epochs_so_far(dir)?;
        let state = if history.is_empty() {
            RunState::Started
        } else {
            RunState::InProgress
        };
        (state, history, None)
    };
    let heartbeat = if result.is_none() {
        // A heartbeat being rewritten may be read half-way: treated as absent.
        crate::read_json::<Heartbeat>(&dir.join(HEARTBEAT_FILE)).ok()
    } else {
        None
    };
    let dev_scores: Vec<f64> = history.iter().map(|e| e.dev_score).collect();
    let kept_epoch = match &result {
        Some(r) if r.kept_epoch > 0 => Some(r.kept_epoch),
        Some(_) => (!dev_scores.is_empty()).then_some(dev_scores.len()),
        None => first_best(dev_scores.iter().copied()).map(|i| i + 1),
    };
    Ok(RunStatus {
        phase: phase.to_owned(),
        seed,
        dir: dir.to_path_buf(),
        state,
        train_losses: history.iter().map(|e| e.train_loss).collect(),
        dev_score: kept_epoch.and_then(|k| dev_scores.get(k - 1).copied()),
        dev_scores,
        kept_epoch,
        degenerate: result.as_ref().map(|r| r.degenerate),
        wall_s: result.as_ref().map(|r| r.wall_s),
        examples_per_s: result.as_ref().map(|r| r.examples_per_s),
        live: heartbeat.as_ref().map(Heartbeat::is_live),
        last_seen_s: heartbeat.as_ref().map(|h| (now_s() - h.time_s).max(0.0)),
    })
}

/// Every run under `dir`, in phase then seed order: `dir` may be an experiment's output
/// directory, a phase directory (`NN-<phase>`) or a run directory (`seed-<s>`). A directory
/// holding none of them is an empty list.
pub fn collect_runs(dir: &Path) -> Result<Vec<RunStatus>, SchemaError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(seed) = seed_of(&name) {
        let phase = dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![run_status(&phase, seed, dir)?]);
    }
    let phases: Vec<(String, PathBuf)> = if is_phase_dir(&name) {
        vec![(name, dir.to_path_buf())]
    } else {
        subdirs(dir)?
            .into_iter()
            .filter(|(n, _)| is_phase_dir(n))
            .collect()
    };
    let mut runs = Vec::new();
    for (phase, path) in phases {
        let mut seeds: Vec<(u64, PathBuf)> = subdirs(&path)?
            .into_iter()
            .filter_map(|(n, p)| seed_of(&n).map(|s| (s, p)))
            .collect();
        seeds.sort();
        for (seed, run) in seeds {
            runs.push(run_status(&phase, seed, &run)?);
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_tell_live_from_dead() {
        let mine = Heartbeat::now();
        assert!(mine.is_live());
        // A process of this host that is gone (pids do not reach u32::MAX).
        let gone = Heartbeat {
            pid: u32::MAX - 1,
            ..mine.clone()
        };
        assert!(!gone.is_live());
        // Another host's: judged by age.
        let remote = Heartbeat {
            host: format!("{}-elsewhere", mine.host),
            ..mine.clone()
        };
        assert!(remote.is_live());
        let stale = Heartbeat {
            time_s: mine.time_s - HEARTBEAT_STALE_S - 1.0,
            ..remote
        };
        assert!(!stale.is_live());
    }
}
