//! Examples, datasets, and the one reader behind every task: TSV, CSV, JSON lines and JSON
//! records, plain or gzipped, with every bad row reported by file, line and field.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Location, Result, RowProblem};
use crate::task::{Layout, Task};

mod read;

pub use read::read_file;

/// A gold label: a class index into the task's label list, or a regression score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Label {
    /// Index into the task's labels.
    Class(usize),
    /// A regression target.
    Score(f64),
}

impl Label {
    /// The class index; `None` for a score.
    pub fn class(self) -> Option<usize> {
        match self {
            Label::Class(c) => Some(c),
            Label::Score(_) => None,
        }
    }

    /// The score; `None` for a class.
    pub fn score(self) -> Option<f64> {
        match self {
            Label::Score(s) => Some(s),
            Label::Class(_) => None,
        }
    }
}

/// One example of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The file's id (GLUE `index`, QQP `id`, ...) or, when the file has none, the 0-based row.
    pub id: String,
    /// The first (or only) text.
    pub text_a: String,
    /// The second text of a pair task.
    pub text_b: Option<String>,
    /// `None` in unlabelled (test) splits.
    pub label: Option<Label>,
}

/// A row that was not turned into an example, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedRow {
    /// Where the row is.
    pub location: Location,
    /// What is wrong with it.
    pub problem: RowProblem,
}

/// The examples of one split, with where they came from.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Name of the task.
    pub task: String,
    /// Name of the split.
    pub split: String,
    /// The file read.
    pub path: PathBuf,
    /// The examples, in file order.
    pub examples: Vec<Example>,
    /// Rows whose label is one of the layout's `skip_labels` (SNLI `-`), counted.
    pub skipped_unlabelled: usize,
    /// Malformed rows dropped because [`LoadOptions::skip_malformed`] was set.
    pub skipped_malformed: Vec<SkippedRow>,
    /// SHA-256 of the file's (decompressed) bytes, hex.
    pub sha256: String,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Number of examples per class index (classification) for a labelled split.
    pub fn label_counts(&self, num_labels: usize) -> Vec<usize> {
        let mut counts = vec![0; num_labels];
        for ex in &self.examples {
            if let Some(Label::Class(c)) = ex.label {
                counts[c] += 1;
            }
        }
        counts
    }

    /// Whether any example has a label (false for GLUE test splits).
    pub fn is_labelled(&self) -> bool {
        self.examples.iter().any(|e| e.label.is_some())
    }
}

/// How strict loading is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Drop (and count, in [`Dataset::skipped_malformed`]) rows that would otherwise be an error.
    /// Off by default: some official files are ragged (QQP train), and users must opt in.
    pub skip_malformed: bool,
}

impl Task {
    /// The directory of this task under a GLUE-style data root (`<root>/RTE`).
    pub fn dir_in(&self, root: &Path) -> PathBuf {
        root.join(&self.dir)
    }

    /// The file backing `split` in `task_dir`, plain or `.gz`, and the layout to read it with.
    /// `None` when no source of the split is present.
    pub fn locate(&self, task_dir: &Path, split: &str) -> Result<Option<(PathBuf, &Layout)>> {
        let spec = self.split(split).ok_or_else(|| DataError::UnknownSplit {
            task: self.name.clone(),
            split: split.to_owned(),
            known: self.split_names(),
        })?;
        for source in &spec.sources {
            let plain = task_dir.join(&source.file);
            let gz = task_dir.join(format!("{}.gz", source.file));
            for candidate in [plain, gz] {
                if candidate.is_file() {
                    return Ok(Some((candidate, &source.layout)));
                }
            }
        }
        Ok(None)
    }

    /// Names of the splits whose files exist in `task_dir`.
    pub fn present_splits(&self, task_dir: &Path) -> Vec<String> {
        self.split_names()
            .into_iter()
            .filter(|s| matches!(self.locate(task_dir, s), Ok(Some(_))))
            .collect()
    }

    /// Read one split from `task_dir` (e.g. `$GLUE_DIR/RTE`).
    pub fn load(&self, task_dir: &Path, split: &str, opts: LoadOptions) -> Result<Dataset> {
        let Some((path, layout)) = self.locate(task_dir, split)? else {
            let spec = self.split(split).expect("locate checked the split exists");
            let tried: Vec<String> = spec.sources.iter().map(|s| s.file.clone()).collect();
            return Err(DataError::MissingFile {
                path: task_dir.join(&spec.sources[0].file),
                hint: Some(format!(
                    "split `{split}` of {} looks for {} (plain or .gz)",
                    self.name,
                    tried.join(" or ")
                )),
            });
        };
        let read = read_file(&path, layout, &self.target, opts)?;
        Ok(Dataset {
            task: self.name.clone(),
            split: split.to_owned(),
            path,
            examples: read.examples,
            skipped_unlabelled: read.skipped_unlabelled,
            skipped_malformed: read.skipped_malformed,
            sha256: read.sha256,
        })
    }
}

/// What [`read_file`] produced.
#[derive(Debug, Clone)]
pub struct FileContents {
    /// The examples, in file order.
    pub examples: Vec<Example>,
    /// Rows skipped for a `skip_labels` label.
    pub skipped_unlabelled: usize,
    /// Malformed rows dropped under [`LoadOptions::skip_malformed`].
    pub skipped_malformed: Vec<SkippedRow>,
    /// SHA-256 (hex) of the file's decompressed bytes.
    pub sha256: String,
}

/// Read the bytes of a file, decompressing gzip (by `.gz` suffix or magic bytes).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::MissingFile {
                path: path.to_owned(),
                hint: None,
            }
        } else {
            DataError::io(path, e)
        }
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| DataError::io(path, e))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
