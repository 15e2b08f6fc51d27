//! Fetch GLUE and SNLI into the official layout, as the standard `download_glue_data.py` does: one
//! zip per task unpacked into the data directory, the AX diagnostic saved as
//! `diagnostic/diagnostic.tsv`, and MRPC built from the SentEval copies of the Microsoft Research
//! Paraphrase Corpus with the GLUE dev ids ([`format_mrpc`]).
//!
//! Where each task comes from is data ([`SOURCES`]); every URL can be redirected to a mirror
//! ([`DownloadConfig::base_url`], [`DownloadConfig::urls`]). Downloads stream to a temporary file
//! and are renamed into place; zips are checked for unsafe entry paths and unpacked into a staging
//! folder inside the data directory, whose task folder is then renamed into place. A task whose
//! folder is already complete is left alone unless [`DownloadConfig::force`] is set. One task is
//! fetched by one process at a time: a lock file (`.stilts-locks/RTE.lock` beside `RTE/`) is held from the
//! completeness check to the install, so a second process waits and then finds the task there. Every task is
//! then verified: each present split is loaded and its row count compared with the official
//! release ([`TaskSource::official`]).
//!
//! ```no_run
//! use stilts_data::BuiltinTask;
//! use stilts_data::download::{DownloadConfig, NoProgress, download};
//! # fn main() -> Result<(), stilts_data::DataError> {
//! let mut cfg = DownloadConfig::new("glue_data");
//! cfg.tasks = vec![BuiltinTask::Rte, BuiltinTask::Mrpc];
//! for report in download(&cfg, &NoProgress)? {
//!     println!("{}: {} bytes, {:?}", report.task, report.bytes, report.verification);
//! }
//! # Ok(()) }
//! ```

mod mrpc;
mod sources;
mod verify;
mod zip;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stilts_io::http::{Expect, Http, HttpConfig, HttpError};
use stilts_io::lock::FileLock;
pub use stilts_io::progress::{NoProgress, Progress};

pub use self::mrpc::format_mrpc;
pub use self::sources::{
    DEFAULT_TASKS, Finish, MRPC_DEV_IDS_FILE, MRPC_TEST_FILE, MRPC_TRAIN_FILE, OfficialSplit,
    Resource, SOURCES, TaskSource, Unpack, source,
};
pub use self::verify::{SplitRows, Verification, compare_official, count_rows, is_complete};
use crate::error::{DataError, Result};
use crate::glue::BuiltinTask;

/// What to download, where from and how carefully.
#[derive(Debug, Clone)]
pub struct DownloadConfig {
    /// The GLUE data root; task folders (`RTE`, `diagnostic`, `SNLI`, ...) are created in it.
    pub data_dir: PathBuf,
    /// Tasks to fetch, in order; duplicates are fetched once.
    pub tasks: Vec<BuiltinTask>,
    /// Fetch every resource from `{base_url}/{name}` ([`Resource::name`]) instead of its official
    /// URL.
    pub base_url: Option<String>,
    /// URLs for single resources, keyed by [`Resource::name`] (`"RTE.zip"`,
    /// `"mrpc_dev_ids.tsv"`); these win over [`DownloadConfig::base_url`].
    pub urls: BTreeMap<String, String>,
    /// Fetch even when the task folder is already complete.
    pub force: bool,
    /// Load every split after unpacking and compare row counts with the official release.
    pub verify: bool,
    /// Make a count mismatch an error ([`DataError::Verify`]) instead of a warning in the report.
    pub strict: bool,
    /// Extra attempts after a transient failure (connection errors, timeouts, HTTP 408, 429, 5xx).
    pub retries: u32,
    /// Wait before the first retry; doubled after each, up to 30 seconds.
    pub retry_delay: Duration,
    /// Limit for connecting, for the response to start and for each read of the body.
    pub timeout: Duration,
}

impl DownloadConfig {
    /// Official URLs, [`DEFAULT_TASKS`], verification on but not strict, 3 retries from 1 s,
    /// 60 s timeouts.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        DownloadConfig {
            data_dir: data_dir.into(),
            tasks: DEFAULT_TASKS.to_vec(),
            base_url: None,
            urls: BTreeMap::new(),
            force: false,
            verify: true,
            strict: false,
            retries: 3,
            retry_delay: Duration::from_secs(1),
            timeout: Duration::from_secs(60),
        }
    }

    /// The URL `resource` is fetched from under this configuration.
    pub fn url_for(&self, resource: &Resource) -> String {
        if let Some(url) = self.urls.get(resource.name) {
            url.clone()
        } else if let Some(base) = &self.base_url {
            format!("{}/{}", base.trim_end_matches('/'), resource.name)
        } else {
            resource.url.to_owned()
        }
    }

    fn http(&self) -> Http {
        Http::new(HttpConfig {
            timeout: self.timeout,
            retries: self.retries,
            retry_delay: self.retry_delay,
        })
    }
}

/// One file fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where it came from.
    pub url: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What [`download`] did for one task.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadReport {
    /// The task.
    pub task: BuiltinTask,
    /// The task's directory (`<data_dir>/RTE`).
    pub dir: PathBuf,
    /// `false` when the directory was already complete and left alone.
    pub downloaded: bool,
    /// Files fetched, in order.
    pub fetched: Vec<Fetched>,
    /// Files written into the task directory, relative to it, sorted.
    pub files: Vec<PathBuf>,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Rows of every split present after the download (empty when not verified).
    pub splits: Vec<SplitRows>,
    /// How the splits compare with the official release.
    pub verification: Verification,
}

/// Fetch, unpack and verify `cfg.tasks` into `cfg.data_dir`, one task after the other. Stops at
/// the first error; tasks finished before it stay in place.
pub fn download(cfg: &DownloadConfig, progress: &dyn Progress) -> Result<Vec<DownloadReport>> {
    fs::create_dir_all(&cfg.data_dir).map_err(|e| DataError::io(&cfg.data_dir, e))?;
    let http = cfg.http();
    let mut seen = HashSet::new();
    let mut reports = Vec::new();
    for &task in &cfg.tasks {
        if seen.insert(task) {
            reports.push(download_task(cfg, &http, task, progress)?);
        }
    }
    Ok(reports)
}

fn download_task(
    cfg: &DownloadConfig,
    http: &Http,
    task: BuiltinTask,
    progress: &dyn Progress,
) -> Result<DownloadReport> {
    let spec = task.task();
    let src = source(task);
    let dir = spec.dir_in(&cfg.data_dir);
    let mut report = DownloadReport {
        task,
        dir: dir.clone(),
        downloaded: false,
        fetched: Vec::new(),
        files: Vec::new(),
        bytes: 0,
        splits: Vec::new(),
        verification: Verification::NotChecked,
    };
    let lock_path = cfg
        .data_dir
        .join(format!(".stilts-locks/{}.lock", spec.dir));
    let _lock = FileLock::acquire(&lock_path, |holder| {
        let by = stilts_io::lock::holder_text(holder);
        tracing::info!(%task, "waiting for another download of {task}{by}");
        progress.note(&format!(
            "{task}: another process{by} is downloading it; waiting"
        ));
    })
    .map_err(|e| DataError::io(&lock_path, e.source))?;
    if !cfg.force && is_complete(task, &dir) {
        tracing::info!(%task, dir = %dir.display(), "already present, skipped");
        progress.note(&format!("{task}: already in {}, skipped", dir.display()));
    } else {
        tracing::info!(%task, dir = %dir.display(), "downloading");
        let staging = Staging::new(&cfg.data_dir, &spec.dir)?;
        let staged = staging.path.join(&spec.dir);
        for resource in src.resources {
            let url = cfg.url_for(resource);
            let bytes = match resource.unpack {
                Unpack::ZipFolder { folder } => {
                    let archive = staging.path.join(resource.name);
                    let bytes = fetch(http, &url, &archive, resource.name, progress)?;
                    zip::extract_folder(&archive, folder, &staged, progress)?;
                    fs::remove_file(&archive).map_err(|e| DataError::io(&archive, e))?;
                    bytes
                }
                Unpack::File { file } => {
                    fs::create_dir_all(&staged).map_err(|e| DataError::io(&staged, e))?;
                    fetch(http, &url, &staged.join(file), resource.name, progress)?
                }
            };
            report.bytes += bytes;
            report.fetched.push(Fetched { url, bytes });
        }
        match src.finish {
            Finish::Nothing => {}
            Finish::FormatMrpc => format_mrpc(&staged, &staged)?,
        }
        report.files = files_under(&staged)?;
        let merge = src
            .resources
            .iter()
            .all(|r| matches!(r.unpack, Unpack::File { .. }));
        install(&staged, &dir, merge, &staging.path, &report.files)?;
        report.downloaded = true;
    }
    if cfg.verify {
        report.splits = count_rows(task, &cfg.data_dir)?;
        report.verification = compare_official(task, &report.splits);
        if let Verification::Mismatch(problems) = &report.verification {
            if cfg.strict {
                return Err(DataError::Verify {
                    task: task.name().to_owned(),
                    problems: problems.clone(),
                });
            }
            for problem in problems {
                tracing::warn!(%task, "{problem}");
                progress.note(&format!("warning: {task} {problem}"));
            }
        }
    }
    Ok(report)
}

/// A folder in the data directory for one task's download, removed when dropped.
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn new(data_dir: &Path, label: &str) -> Result<Self> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for attempt in 0..64 {
            let path = data_dir.join(format!(
                ".stilts-download-{label}-{}-{stamp}-{attempt}",
                std::process::id()
            ));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Staging { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(DataError::io(&path, e)),
            }
        }
        Err(DataError::Invalid(format!(
            "cannot create a staging folder for {label} in {}",
            data_dir.display()
        )))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Put the staged task directory in place: renamed as a whole when `dest` is absent; otherwise
/// file by file (`merge`) or by swapping the old directory out into the staging folder.
fn install(
    staged: &Path,
    dest: &Path,
    merge: bool,
    staging: &Path,
    files: &[PathBuf],
) -> Result<()> {
    if !dest.exists() {
        return fs::rename(staged, dest).map_err(|e| DataError::io(dest, e));
    }
    if merge {
        for rel in files {
            let to = dest.join(rel);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
            }
            fs::rename(staged.join(rel), &to).map_err(|e| DataError::io(&to, e))?;
        }
        return Ok(());
    }
    let old = staging.join(".previous");
    fs::rename(dest, &old).map_err(|e| DataError::io(dest, e))?;
    if let Err(e) = fs::rename(staged, dest) {
        let _ = fs::rename(&old, dest);
        return Err(DataError::io(dest, e));
    }
    Ok(())
}

fn files_under(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let dir = root.join(&rel);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound && rel.as_os_str().is_empty() => {
                return Ok(out);
            }
            Err(e) => return Err(DataError::io(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| DataError::io(&dir, e))?;
            let kind = entry
                .file_type()
                .map_err(|e| DataError::io(entry.path(), e))?;
            let child = rel.join(entry.file_name());
            if kind.is_dir() {
                pending.push(child);
            } else {
                out.push(child);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Download `url` to `dest` atomically, retrying transient failures.
fn fetch(http: &Http, url: &str, dest: &Path, what: &str, progress: &dyn Progress) -> Result<u64> {
    http.download(url, &[], dest, what, &Expect::default(), progress)
        .map_err(|e| match e {
            HttpError::Fs(e) => DataError::io(e.path, e.source),
            other => DataError::Download {
                url: url.to_owned(),
                message: other.detail(),
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_has_one_source() {
        for (task, src) in BuiltinTask::ALL.iter().zip(SOURCES.iter()) {
            assert_eq!(*task, src.task);
            let spec = task.task();
            for official in src.official {
                assert!(spec.split(official.split).is_some(), "{task} {official:?}");
            }
        }
    }

    #[test]
    fn urls_follow_overrides_then_base_then_official() {
        let mut cfg = DownloadConfig::new("d");
        let rte = &source(BuiltinTask::Rte).resources[0];
        assert_eq!(cfg.url_for(rte), rte.url);
        cfg.base_url = Some("http://127.0.0.1:9/glue/".into());
        assert_eq!(cfg.url_for(rte), "http://127.0.0.1:9/glue/RTE.zip");
        cfg.urls.insert("RTE.zip".into(), "http://m/x.zip".into());
        assert_eq!(cfg.url_for(rte), "http://m/x.zip");
    }
}
