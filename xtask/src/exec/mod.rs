//! Executors: where a grid's runs execute. Every executor runs the same worker command,
//! `stilts run <run>/experiment.toml --output-dir <run>`, whose `summary.json` (written
//! atomically when the run is finished) is the run's result file; the driver alone ingests
//! result files into the registry.

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

/// One driver per grid directory at a time: `<grid out>/driver.lock` holds the driver's pid;
/// a lock whose process is gone is taken over. Removed on drop.
pub struct DriverLock {
    path: PathBuf,
}

impl DriverLock {
    pub fn acquire(grid_dir: &Path) -> anyhow::Result<DriverLock> {
        std::fs::create_dir_all(grid_dir)?;
        let path = grid_dir.join("driver.lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    writeln!(f, "{}", std::process::id())?;
                    return Ok(DriverLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid = pid.trim();
                    if !pid.is_empty() && Path::new("/proc").join(pid).exists() {
                        anyhow::bail!(
                            "another driver (pid {pid}) is running this grid ({}); wait for it or stop it",
                            path.display()
                        );
                    }
                    std::fs::remove_file(&path)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("could not take {}", path.display())
    }
}

impl Drop for DriverLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
