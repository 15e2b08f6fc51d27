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

use stilts_io::lock::FileLock;

/// How to start one run.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerCommand {
    /// The `stilts` binary.
    pub stilts: PathBuf,
    /// `--device` for `stilts run` (`None`: the experiment's own, i.e. cpu).
    pub device: Option<String>,
    /// `--threads` for `stilts run` (`None`: its own default).
    pub threads: Option<usize>,
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
        if let Some(n) = self.threads {
            args.push("--threads".into());
            args.push(n.to_string().into());
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

/// One driver per directory at a time: an exclusive OS lock on `<dir>/driver.lock`
/// ([`FileLock`]), released when the holder exits however it exits (no stale lock files, no
/// pid reuse). `Ok(Err(pid))`: another process holds it (its pid when the file names one).
pub fn driver_lock(dir: &Path) -> std::io::Result<Result<FileLock, Option<u32>>> {
    std::fs::create_dir_all(dir)?;
    FileLock::try_acquire(&dir.join("driver.lock")).map_err(|e| e.source)
}

#[cfg(test)]
mod tests {
    use super::driver_lock;

    #[test]
    fn a_second_driver_is_refused_until_the_first_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let first = driver_lock(tmp.path()).unwrap();
        assert!(first.is_ok());
        assert_eq!(
            driver_lock(tmp.path()).unwrap().err(),
            Some(Some(std::process::id()))
        );
        drop(first);
        assert!(driver_lock(tmp.path()).unwrap().is_ok());
    }
}
