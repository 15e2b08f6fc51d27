//! Comparing a task's data on disk with the official release.

use std::path::{Path, PathBuf};

use super::sources::source;
use crate::dataset::LoadOptions;
use crate::error::Result;
use crate::glue::BuiltinTask;

/// Rows loaded from one split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRows {
    /// The split's name.
    pub split: String,
    /// The file read.
    pub path: PathBuf,
    /// Examples loaded.
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
    /// an error instead under [`DownloadConfig::strict`](super::DownloadConfig::strict).
    Mismatch(Vec<String>),
    /// [`DownloadConfig::verify`](super::DownloadConfig::verify) was off.
    NotChecked,
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
