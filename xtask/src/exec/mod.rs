//! Executors: where a grid's runs execute. Every executor runs the same worker command,
//! `stilts run <run>/experiment.toml --output-dir <run>`, whose `summary.json` (written
//! atomically when the run is finished) is the run's result file; the driver alone ingests
//! result files into the registry. Before either executor starts anything, [`check`] has the
//! same binary validate every unfinished run's file.

pub mod check;
pub mod local;
pub mod slurm;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// How to start one run.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerCommand {
    /// The `stilts` binary.
    pub stilts: PathBuf,
    /// `--device` for `stilts run` (`None`: the experiment's own, i.e. cpu).
    pub device: Option<String>,
}

impl WorkerCommand {
    /// The arguments after the binary for the run in `run_dir`.
    pub fn args(&self, run_dir: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "run".into(),
            run_dir.join("experiment.toml").into(),
            "--output-dir".into(),
            run_dir.into(),
            "--quiet".into(),
        ];
        if let Some(d) = &self.device {
            args.push("--device".into());
            args.push(d.into());
        }
        args
    }
}

/// Appends one line to `<run_dir>/attempts.log`: every start of a worker is recorded, so a
/// test (or a person) can tell how often a run was started and by what.
pub fn record_attempt(run_dir: &Path, executor: &str, detail: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(run_dir)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run_dir.join("attempts.log"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    writeln!(f, "{now}\t{executor}\t{detail}")
}

/// Number of lines in `<run_dir>/attempts.log`.
pub fn attempts(run_dir: &Path) -> usize {
    std::fs::read_to_string(run_dir.join("attempts.log"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// One driver per directory at a time: an exclusive OS lock on `<dir>/driver.lock`, released
/// when the holder exits however it exits (no stale lock files, no pid reuse).
pub struct DriverLock {
    _file: std::fs::File,
}

impl DriverLock {
    /// Takes the lock; `Ok(None)` when another process holds it.
    pub fn try_acquire(dir: &Path) -> std::io::Result<Option<DriverLock>> {
        std::fs::create_dir_all(dir)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("driver.lock"))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DriverLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DriverLock;

    #[test]
    fn a_second_driver_is_refused_until_the_first_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let first = DriverLock::try_acquire(tmp.path()).unwrap();
        assert!(first.is_some());
        assert!(DriverLock::try_acquire(tmp.path()).unwrap().is_none());
        drop(first);
        assert!(DriverLock::try_acquire(tmp.path()).unwrap().is_some());
    }
}
