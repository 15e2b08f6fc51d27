//! Fetch GLUE and SNLI into the official layout, as the standard `download_glue_data.py` does: one
//! zip per task unpacked into the data directory, the AX diagnostic saved as
//! `diagnostic/diagnostic.tsv`, and MRPC built from the SentEval copies of the Microsoft Research
//! Paraphrase Corpus with the GLUE dev ids ([`format_mrpc`]).
//!
//! Where each task comes from is data ([`SOURCES`]); every URL can be redirected to a mirror
//! ([`DownloadConfig::base_url`], [`DownloadConfig::urls`]). Downloads stream to a temporary file
//! and are renamed into place; zips are checked for unsafe entry paths and unpacked into a staging
//! folder inside the data directory, whose task folder is then renamed into place. A task whose
//! folder is already complete is left alone unless [`DownloadConfig::force`] is set. Every task is
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

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::dataset::LoadOptions;
use crate::error::{DataError, Result, RowProblem};
use crate::glue::BuiltinTask;

/// What becomes of a fetched file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpack {
    /// A zip holding the folder `folder` (`RTE/train.tsv`, ...). The folder becomes the task's
    /// directory; other top-level entries (`__MACOSX/`) are ignored.
    ZipFolder { folder: &'static str },
    /// Saved as `file` in the task's directory, next to whatever else is there.
    File { file: &'static str },
}

/// One file to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// The file's name on a mirror (`RTE.zip`, `AX.tsv`) and its key in [`DownloadConfig::urls`].
    pub name: &'static str,
    /// The official URL.
    pub url: &'static str,
    pub unpack: Unpack,
}

/// A step run once every resource of a task is in its staged directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Nothing,
    /// [`format_mrpc`] on the staged MRPC directory (raw files in, `train/dev/test.tsv` out).
    FormatMrpc,
}

/// Row counts of one split of the official release, as [`crate::Task::load`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfficialSplit {
    pub split: &'static str,
    /// Examples loaded.
    pub examples: usize,
    /// Rows skipped for having no gold label (SNLI's `-`).
    pub unlabelled: usize,
}

/// Where a built-in task comes from and what the official release holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSource {
    pub task: BuiltinTask,
    pub resources: &'static [Resource],
    pub finish: Finish,
    /// The splits the download produces, with their official row counts. A task directory is
    /// complete when all of them are present.
    pub official: &'static [OfficialSplit],
}

/// The tasks `download_glue_data.py` fetches by default: the nine GLUE tasks and the diagnostic.
pub const DEFAULT_TASKS: [BuiltinTask; 10] = [
    BuiltinTask::Cola,
    BuiltinTask::Sst2,
    BuiltinTask::Mrpc,
    BuiltinTask::Qqp,
    BuiltinTask::Stsb,
    BuiltinTask::Mnli,
    BuiltinTask::Qnli,
    BuiltinTask::Rte,
    BuiltinTask::Wnli,
    BuiltinTask::Ax,
];

/// Name of the MRPC training file as SentEval serves it and [`format_mrpc`] reads it.
pub const MRPC_TRAIN_FILE: &str = "msr_paraphrase_train.txt";
/// Name of the MRPC test file as SentEval serves it and [`format_mrpc`] reads it.
pub const MRPC_TEST_FILE: &str = "msr_paraphrase_test.txt";
/// Name of the GLUE MRPC dev id list (`id1<TAB>id2` per line) as [`format_mrpc`] reads it.
pub const MRPC_DEV_IDS_FILE: &str = "dev_ids.tsv";

const fn zip(name: &'static str, url: &'static str, folder: &'static str) -> Resource {
    Resource {
        name,
        url,
        unpack: Unpack::ZipFolder { folder },
    }
}

const fn file(name: &'static str, url: &'static str, file: &'static str) -> Resource {
    Resource {
        name,
        url,
        unpack: Unpack::File { file },
    }
}

const fn split(split: &'static str, examples: usize) -> OfficialSplit {
    OfficialSplit {
        split,
        examples,
        unlabelled: 0,
    }
}

const fn tdt(train: usize, dev: usize, test: usize) -> [OfficialSplit; 3] {
    [
        split("train", train),
        split("dev", dev),
        split("test", test),
    ]
}

const COLA_COUNTS: [OfficialSplit; 3] = tdt(8551, 1043, 1063);
const SST2_COUNTS: [OfficialSplit; 3] = tdt(67349, 872, 1821);
const MRPC_COUNTS: [OfficialSplit; 3] = tdt(3668, 408, 1725);
const QQP_COUNTS: [OfficialSplit; 3] = tdt(363846, 40430, 390965);
const STSB_COUNTS: [OfficialSplit; 3] = tdt(5749, 1500, 1379);
const QNLI_COUNTS: [OfficialSplit; 3] = tdt(104743, 5463, 5463);
const RTE_COUNTS: [OfficialSplit; 3] = tdt(2490, 277, 3000);
const WNLI_COUNTS: [OfficialSplit; 3] = tdt(635, 71, 146);

/// Every built-in task's source, in [`BuiltinTask::ALL`] order. QQP is the cleaned release
/// (`QQP-clean.zip`, as the current script and the GLUE site use), whose counts these are.
pub const SOURCES: [TaskSource; 11] = [
    TaskSource {
        task: BuiltinTask::Cola,
        resources: &[zip(
            "CoLA.zip",
            "https://dl.fbaipublicfiles.com/glue/data/CoLA.zip",
            "CoLA",
        )],
        finish: Finish::Nothing,
        official: &COLA_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Sst2,
        resources: &[zip(
            "SST-2.zip",
            "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
            "SST-2",
        )],
        finish: Finish::Nothing,
        official: &SST2_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Mrpc,
        resources: &[
            file(
                MRPC_TRAIN_FILE,
                "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt",
                MRPC_TRAIN_FILE,
            ),
            file(
                MRPC_TEST_FILE,
                "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt",
                MRPC_TEST_FILE,
            ),
            file(
                "mrpc_dev_ids.tsv",
                "https://firebasestorage.googleapis.com/v0/b/mtl-sentence-representations.appspot.com/o/data%2Fmrpc_dev_ids.tsv?alt=media&token=ec5c0836-31d5-48f4-b431-7480817f1adc",
                MRPC_DEV_IDS_FILE,
            ),
        ],
        finish: Finish::FormatMrpc,
        official: &MRPC_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Qqp,
        resources: &[zip(
            "QQP-clean.zip",
            "https://dl.fbaipublicfiles.com/glue/data/QQP-clean.zip",
            "QQP",
        )],
        finish: Finish::Nothing,
        official: &QQP_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Stsb,
        resources: &[zip(
            "STS-B.zip",
            "https://dl.fbaipublicfiles.com/glue/data/STS-B.zip",
            "STS-B",
        )],
        finish: Finish::Nothing,
        official: &STSB_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Mnli,
        resources: &[zip(
            "MNLI.zip",
            "https://dl.fbaipublicfiles.com/glue/data/MNLI.zip",
            "MNLI",
        )],
        finish: Finish::Nothing,
        official: &[
            split("train", 392702),
            split("dev_matched", 9815),
            split("dev_mismatched", 9832),
            split("test_matched", 9796),
            split("test_mismatched", 9847),
        ],
    },
    TaskSource {
        task: BuiltinTask::Qnli,
        resources: &[zip(
            "QNLIv2.zip",
            "https://dl.fbaipublicfiles.com/glue/data/QNLIv2.zip",
            "QNLI",
        )],
        finish: Finish::Nothing,
        official: &QNLI_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Rte,
        resources: &[zip(
            "RTE.zip",
            "https://dl.fbaipublicfiles.com/glue/data/RTE.zip",
            "RTE",
        )],
        finish: Finish::Nothing,
        official: &RTE_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Wnli,
        resources: &[zip(
            "WNLI.zip",
            "https://dl.fbaipublicfiles.com/glue/data/WNLI.zip",
            "WNLI",
        )],
        finish: Finish::Nothing,
        official: &WNLI_COUNTS,
    },
    TaskSource {
        task: BuiltinTask::Ax,
        resources: &[file(
            "AX.tsv",
            "https://dl.fbaipublicfiles.com/glue/data/AX.tsv",
            "diagnostic.tsv",
        )],
        finish: Finish::Nothing,
        official: &[split("test", 1104)],
    },
    TaskSource {
        task: BuiltinTask::Snli,
        resources: &[zip(
            "snli_1.0.zip",
            "https://nlp.stanford.edu/projects/snli/snli_1.0.zip",
            "snli_1.0",
        )],
        finish: Finish::Nothing,
        official: &[
            OfficialSplit {
                split: "train",
                examples: 549367,
                unlabelled: 785,
            },
            OfficialSplit {
                split: "dev",
                examples: 9842,
                unlabelled: 158,
            },
            OfficialSplit {
                split: "test",
                examples: 9824,
                unlabelled: 176,
            },
        ],
    },
];

/// The source of a built-in task.
pub fn source(task: BuiltinTask) -> &'static TaskSource {
    SOURCES
        .iter()
        .find(|s| s.task == task)
        .expect("SOURCES has an entry for every BuiltinTask")
}

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

    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(self.timeout))
            .timeout_recv_response(Some(self.timeout))
            .timeout_per_read(Some(self.timeout))
            .user_agent(format!("stilts/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into()
    }
}

/// Progress of downloads and unpacking. Each item is announced by `start`, grows by `advance`
/// and ends with `finish` (also when it failed).
pub trait Progress {
    /// A new item: a download (`RTE.zip`) or an unpacking; `total` in bytes when known.
    fn start(&self, what: &str, total: Option<u64>);
    /// `bytes` more of the current item are done.
    fn advance(&self, bytes: u64);
    /// The current item is over.
    fn finish(&self);
    /// A one-line status message (a skipped task, a retry, a verification warning).
    fn note(&self, _message: &str) {}
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: Option<u64>) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// One file fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub url: String,
    pub bytes: u64,
}

/// Rows loaded from one split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRows {
    pub split: String,
    pub path: PathBuf,
    pub examples: usize,
    /// Rows skipped for having no gold label (SNLI's `-`).
    pub unlabelled: usize,
}

/// How a task's data compares with the official release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every official split is present with the official row counts.
    Matched,
    /// Splits missing or counts differing, one line each. Expected for mirrors serving subsets;
    /// an error instead under [`DownloadConfig::strict`].
    Mismatch(Vec<String>),
    /// [`DownloadConfig::verify`] was off.
    NotChecked,
}

/// What [`download`] did for one task.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadReport {
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
    pub verification: Verification,
}

/// Fetch, unpack and verify `cfg.tasks` into `cfg.data_dir`, one task after the other. Stops at
/// the first error; tasks finished before it stay in place.
pub fn download(cfg: &DownloadConfig, progress: &dyn Progress) -> Result<Vec<DownloadReport>> {
    fs::create_dir_all(&cfg.data_dir).map_err(|e| DataError::io(&cfg.data_dir, e))?;
    let agent = cfg.agent();
    let mut seen = HashSet::new();
    let mut reports = Vec::new();
    for &task in &cfg.tasks {
        if seen.insert(task) {
            reports.push(download_task(cfg, &agent, task, progress)?);
        }
    }
    Ok(reports)
}

/// Whether `dir` holds every split the download of `task` produces.
pub fn is_complete(task: BuiltinTask, dir: &Path) -> bool {
    let spec = task.task();
    source(task)
        .official
        .iter()
        .all(|s| matches!(spec.locate(dir, s.split), Ok(Some(_))))
}

/// Load every split of `task` present under `data_dir` and count its rows.
pub fn count_rows(task: BuiltinTask, data_dir: &Path) -> Result<Vec<SplitRows>> {
    let spec = task.task();
    let dir = spec.dir_in(data_dir);
    spec.present_splits(&dir)
        .into_iter()
        .map(|split| {
            let ds = spec.load(&dir, &split, LoadOptions::default())?;
            Ok(SplitRows {
                split,
                path: ds.path,
                examples: ds.examples.len(),
                unlabelled: ds.skipped_unlabelled,
            })
        })
        .collect()
}

/// Compare counted rows with the official release of `task`. Splits outside the official table
/// (AX's labelled `diagnostic-full.tsv`) are not compared.
pub fn compare_official(task: BuiltinTask, rows: &[SplitRows]) -> Verification {
    let mut problems = Vec::new();
    for official in source(task).official {
        let Some(got) = rows.iter().find(|r| r.split == official.split) else {
            problems.push(format!(
                "{}: missing (official release: {} examples)",
                official.split, official.examples
            ));
            continue;
        };
        if got.examples != official.examples {
            problems.push(format!(
                "{}: {} examples, official release has {}",
                official.split, got.examples, official.examples
            ));
        }
        if got.unlabelled != official.unlabelled {
            problems.push(format!(
                "{}: {} rows without a gold label, official release has {}",
                official.split, got.unlabelled, official.unlabelled
            ));
        }
    }
    if problems.is_empty() {
        Verification::Matched
    } else {
        Verification::Mismatch(problems)
    }
}

fn download_task(
    cfg: &DownloadConfig,
    agent: &ureq::Agent,
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
                    let bytes = fetch(agent, &url, &archive, resource.name, cfg, progress)?;
                    extract_folder(&archive, folder, &staged, progress)?;
                    fs::remove_file(&archive).map_err(|e| DataError::io(&archive, e))?;
                    bytes
                }
                Unpack::File { file } => {
                    fs::create_dir_all(&staged).map_err(|e| DataError::io(&staged, e))?;
                    fetch(
                        agent,
                        &url,
                        &staged.join(file),
                        resource.name,
                        cfg,
                        progress,
                    )?
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

enum Attempt {
    Retry(String),
    Fail(DataError),
}

const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Download `url` to `dest` (through `dest.part`), retrying transient failures.
fn fetch(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    what: &str,
    cfg: &DownloadConfig,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut delay = cfg.retry_delay;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match fetch_once(agent, url, dest, what, progress) {
            Ok(bytes) => return Ok(bytes),
            Err(Attempt::Fail(e)) => return Err(e),
            Err(Attempt::Retry(message)) if attempt <= cfg.retries => {
                tracing::warn!(url, attempt, "{message}; retrying in {delay:?}");
                progress.note(&format!("{what}: {message}; retrying in {delay:?}"));
                std::thread::sleep(delay);
                delay = delay.saturating_mul(2).min(MAX_RETRY_DELAY);
            }
            Err(Attempt::Retry(message)) => {
                let message = if attempt > 1 {
                    format!("{message} (gave up after {attempt} attempts)")
                } else {
                    message
                };
                return Err(DataError::Download {
                    url: url.to_owned(),
                    message,
                });
            }
        }
    }
}

fn transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

fn transient_error(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_)
    )
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

fn fetch_once(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    what: &str,
    progress: &dyn Progress,
) -> std::result::Result<u64, Attempt> {
    let download_error = |message: String| DataError::Download {
        url: url.to_owned(),
        message,
    };
    let mut response = match agent.get(url).call() {
        Ok(response) => response,
        Err(e) if transient_error(&e) => return Err(Attempt::Retry(e.to_string())),
        Err(e) => return Err(Attempt::Fail(download_error(e.to_string()))),
    };
    let status = response.status();
    if !status.is_success() {
        let message = format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_owned();
        return Err(if transient_status(status.as_u16()) {
            Attempt::Retry(message)
        } else {
            Attempt::Fail(download_error(message))
        });
    }
    let total = response.body().content_length();
    let part = part_path(dest);
    let mut out = File::create(&part).map_err(|e| Attempt::Fail(DataError::io(&part, e)))?;
    progress.start(what, total);
    let copied = copy_counting(&mut response.body_mut().as_reader(), &mut out, progress);
    progress.finish();
    let result = match copied {
        Ok(bytes) => match total {
            Some(total) if total != bytes => {
                Err(Attempt::Retry(format!("received {bytes} of {total} bytes")))
            }
            _ => out
                .sync_all()
                .map(|()| bytes)
                .map_err(|e| Attempt::Fail(DataError::io(&part, e))),
        },
        Err(Copy::Read(e)) => Err(Attempt::Retry(format!("reading the response: {e}"))),
        Err(Copy::Write(e)) => Err(Attempt::Fail(DataError::io(&part, e))),
    };
    drop(out);
    match result {
        Ok(bytes) => {
            fs::rename(&part, dest).map_err(|e| Attempt::Fail(DataError::io(dest, e)))?;
            Ok(bytes)
        }
        Err(e) => {
            let _ = fs::remove_file(&part);
            Err(e)
        }
    }
}

enum Copy {
    Read(io::Error),
    Write(io::Error),
}

fn copy_counting(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    progress: &dyn Progress,
) -> std::result::Result<u64, Copy> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        writer.write_all(&buf[..n]).map_err(Copy::Write)?;
        total += n as u64;
        progress.advance(n as u64);
    }
    writer.flush().map_err(Copy::Write)?;
    Ok(total)
}

/// The components of a zip entry name, or `None` when it is unsafe to extract: absolute, with a
/// drive prefix or a `..` component, or containing NUL.
fn safe_components(name: &str) -> Option<Vec<&str>> {
    if name.is_empty() || name.contains('\0') || name.starts_with(['/', '\\']) {
        return None;
    }
    let parts: Vec<&str> = name
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") || parts.first().is_some_and(|p| p.contains(':')) {
        return None;
    }
    Some(parts)
}

/// Unpack the entries of `archive` under `folder/` into `dest`. The whole archive is rejected,
/// before anything is written, when any entry has an unsafe path or is a symbolic link.
fn extract_folder(
    archive: &Path,
    folder: &str,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    let archive_error = |message: String| DataError::Archive {
        path: archive.to_owned(),
        message,
    };
    let reader = File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(reader))
        .map_err(|e| archive_error(format!("not a readable zip archive: {e}")))?;
    let mut wanted: Vec<(usize, PathBuf, bool)> = Vec::new();
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = zip
            .by_index(i)
            .map_err(|e| archive_error(format!("entry {i}: {e}")))?;
        let name = entry.name().to_owned();
        let parts = safe_components(&name)
            .filter(|_| entry.enclosed_name().is_some())
            .ok_or_else(|| {
                archive_error(format!(
                    "entry `{name}` has an unsafe path (absolute or with `..`); refusing to unpack"
                ))
            })?;
        if entry.is_symlink() {
            return Err(archive_error(format!(
                "entry `{name}` is a symbolic link; refusing to unpack"
            )));
        }
        if parts.first() != Some(&folder) {
            continue;
        }
        let rel: PathBuf = parts[1..].iter().collect();
        if !entry.is_dir() {
            total += entry.size();
        }
        wanted.push((i, rel, entry.is_dir()));
    }
    if wanted.is_empty() {
        return Err(archive_error(format!("has no folder `{folder}/`")));
    }
    fs::create_dir_all(dest).map_err(|e| DataError::io(dest, e))?;
    let what = format!(
        "unpacking {}",
        archive.file_name().unwrap_or_default().to_string_lossy()
    );
    progress.start(&what, Some(total));
    let result = (|| {
        for (i, rel, is_dir) in wanted {
            let out_path = dest.join(&rel);
            if is_dir {
                fs::create_dir_all(&out_path).map_err(|e| DataError::io(&out_path, e))?;
                continue;
            }
            if let Some(parent) = out_path.parent() {
                fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
            }
            let mut entry = zip
                .by_index(i)
                .map_err(|e| archive_error(format!("entry {i}: {e}")))?;
            let mut out = File::create(&out_path).map_err(|e| DataError::io(&out_path, e))?;
            copy_counting(&mut entry, &mut out, progress).map_err(|e| match e {
                Copy::Read(e) => archive_error(format!("entry `{}`: {e}", rel.display())),
                Copy::Write(e) => DataError::io(&out_path, e),
            })?;
        }
        Ok(())
    })();
    progress.finish();
    result
}

/// Python's `str.isspace`, which `str.strip()` trims: Unicode White_Space plus the separators
/// U+001C..U+001F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// A text file as Python reads it in text mode: UTF-8, `\r\n` and `\r` turned into `\n`.
fn read_text_universal(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            DataError::MissingFile {
                path: path.to_owned(),
                hint: Some(
                    "MRPC needs msr_paraphrase_train.txt, msr_paraphrase_test.txt and dev_ids.tsv"
                        .into(),
                ),
            }
        } else {
            DataError::io(path, e)
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        DataError::row(path, line, None, RowProblem::InvalidUtf8)
    })?;
    if text.contains('\r') {
        Ok(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Ok(text)
    }
}

/// The five fields of an MRPC row (`Quality`, `#1 ID`, `#2 ID`, `#1 String`, `#2 String`), or
/// `None` for a blank line.
fn mrpc_fields<'a>(path: &Path, line_no: u64, line: &'a str) -> Result<Option<[&'a str; 5]>> {
    let line = py_strip(line);
    if line.is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split('\t').collect();
    <[&str; 5]>::try_from(fields.as_slice())
        .map(Some)
        .map_err(|_| {
            DataError::row(
                path,
                line_no,
                None,
                RowProblem::ColumnCount {
                    expected: 5,
                    found: fields.len(),
                },
            )
        })
}

fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    let part = part_path(path);
    let written = File::create(&part).and_then(|mut f| {
        f.write_all(contents.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&part);
        return Err(DataError::io(&part, e));
    }
    fs::rename(&part, path).map_err(|e| DataError::io(path, e))
}

/// Build `train.tsv`, `dev.tsv` and `test.tsv` of GLUE MRPC in `out_dir` from the raw files in
/// `raw_dir` ([`MRPC_TRAIN_FILE`], [`MRPC_TEST_FILE`], [`MRPC_DEV_IDS_FILE`]), byte for byte as
/// `format_mrpc` of `download_glue_data.py` does: the training file's header line (with its
/// UTF-8 BOM) heads train and dev; a row goes to dev when its `(#1 ID, #2 ID)` pair is in the dev
/// id list; test gets the header `index\t#1 ID\t#2 ID\t#1 String\t#2 String` and its rows lose the
/// label and gain a 0-based index. Rows are whitespace-stripped as Python's `str.strip` does and
/// every line ends in `\n`. Blank lines are skipped; a row without exactly five fields is an
/// error naming its line. `raw_dir` and `out_dir` may be the same.
pub fn format_mrpc(raw_dir: &Path, out_dir: &Path) -> Result<()> {
    let ids_path = raw_dir.join(MRPC_DEV_IDS_FILE);
    let train_path = raw_dir.join(MRPC_TRAIN_FILE);
    let test_path = raw_dir.join(MRPC_TEST_FILE);
    let ids_text = read_text_universal(&ids_path)?;
    let train_text = read_text_universal(&train_path)?;
    let test_text = read_text_universal(&test_path)?;

    let dev_ids: HashSet<(&str, &str)> = ids_text
        .lines()
        .filter_map(|line| {
            let mut fields = py_strip(line).split('\t');
            match (fields.next(), fields.next(), fields.next()) {
                (Some(a), Some(b), None) => Some((a, b)),
                _ => None,
            }
        })
        .collect();

    let mut lines = train_text.split_inclusive('\n');
    let header = lines.next().ok_or_else(|| DataError::EmptyFile {
        path: train_path.clone(),
    })?;
    let mut train = String::with_capacity(train_text.len());
    let mut dev = String::with_capacity(train_text.len() / 8);
    train.push_str(header);
    dev.push_str(header);
    for (i, line) in lines.enumerate() {
        let Some([label, id1, id2, s1, s2]) = mrpc_fields(&train_path, i as u64 + 2, line)? else {
            continue;
        };
        let out = if dev_ids.contains(&(id1, id2)) {
            &mut dev
        } else {
            &mut train
        };
        for field in [label, "\t", id1, "\t", id2, "\t", s1, "\t", s2, "\n"] {
            out.push_str(field);
        }
    }

    let mut lines = test_text.split_inclusive('\n');
    if lines.next().is_none() {
        return Err(DataError::EmptyFile { path: test_path });
    }
    let mut test = String::with_capacity(test_text.len() + test_text.len() / 16);
    test.push_str("index\t#1 ID\t#2 ID\t#1 String\t#2 String\n");
    let mut index = 0usize;
    for (i, line) in lines.enumerate() {
        let Some([_label, id1, id2, s1, s2]) = mrpc_fields(&test_path, i as u64 + 2, line)? else {
            continue;
        };
        test.push_str(&format!("{index}\t{id1}\t{id2}\t{s1}\t{s2}\n"));
        index += 1;
    }

    fs::create_dir_all(out_dir).map_err(|e| DataError::io(out_dir, e))?;
    write_atomically(&out_dir.join("train.tsv"), &train)?;
    write_atomically(&out_dir.join("dev.tsv"), &dev)?;
    write_atomically(&out_dir.join("test.tsv"), &test)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_entry_names_are_refused() {
        for name in [
            "../evil",
            "RTE/../../evil",
            "/etc/passwd",
            "\\evil",
            "C:/evil",
            "RTE\\..\\..\\x",
            "",
            "a\0b",
        ] {
            assert_eq!(safe_components(name), None, "{name:?}");
        }
        assert_eq!(
            safe_components("RTE/./train.tsv"),
            Some(vec!["RTE", "train.tsv"])
        );
        assert_eq!(safe_components("RTE/"), Some(vec!["RTE"]));
    }

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

    #[test]
    fn python_strip_includes_file_separators() {
        assert_eq!(py_strip("\u{1f} a\u{a0}\t\n"), "a");
    }
}
