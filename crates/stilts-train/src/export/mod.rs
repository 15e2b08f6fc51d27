//! GLUE leaderboard submissions: test predictions of finished runs written as the files the
//! GLUE server expects, and a validator for a directory of such files.
//!
//! A submission is eleven TSV files, each with the header `index\tprediction` and one row per
//! test example: `CoLA.tsv`, `SST-2.tsv`, `MRPC.tsv`, `STS-B.tsv`, `QQP.tsv`, `MNLI-m.tsv`,
//! `MNLI-mm.tsv`, `QNLI.tsv`, `RTE.tsv`, `WNLI.tsv` and `AX.tsv`. Labels are spelled as GLUE
//! spells them ([`stilts_data::Task::submission_labels`]): `0`/`1` for CoLA, SST-2, MRPC, QQP
//! and WNLI, `entailment`/`not_entailment` for QNLI and RTE, `contradiction`/`entailment`/
//! `neutral` for MNLI and AX, and a score in `[0, 5]` for STS-B (regression outputs are clipped
//! to that range; clipping is monotone, so Spearman is unchanged and Pearson can only gain).
//!
//! Predictions come from the `test_predictions` of a run's `result.json` (written when the
//! phase sets `predict_test = true`). `AX.tsv` is scored with the MNLI model: it needs
//! predictions for the task `AX` (split `test`, `diagnostic.tsv`) made by an MNLI model. A
//! training run never has them (AX has no training data), so they must be supplied as an extra
//! [`PredictionSource`] (`stilts export glue --mnli-model` makes them from an MNLI run's model).
//! A run records predictions for every test split present on disk, so an MNLI run gives both
//! `MNLI-m.tsv` and `MNLI-mm.tsv` when both test files are there; `--mnli-model` fills in what
//! runs made before that lack.
//!
//! ```no_run
//! use std::path::Path;
//! use stilts_train::export::{ExportOptions, export_glue, load_source, validate_dir, ValidateOptions};
//! # fn main() -> Result<(), stilts_train::export::ExportError> {
//! let sources = vec![load_source(Path::new("runs/rte/00-rte/seed-1"))?];
//! let options = ExportOptions { partial: true };
//! let report = export_glue(&sources, Path::new("submission"), &options)?;
//! println!("wrote {:?}, missing {:?}", report.written, report.missing);
//! let issues = validate_dir(Path::new("submission"), &ValidateOptions { partial: true, ..ValidateOptions::default() })?;
//! assert!(issues.is_empty());
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use stilts_data::{BuiltinTask, Task};

use crate::results::{RunResult, SplitPredictions, result_file};

#[cfg(test)]
mod tests;
mod validate;

pub use validate::{ValidateOptions, check_dir, validate_dir, validate_file};

/// The header line of every submission file.
pub const HEADER: &str = "index\tprediction";

/// Rows of each submission file: the sizes of the official GLUE test sets.
pub const OFFICIAL_TEST_SIZES: [(&str, usize); 11] = [
    ("CoLA.tsv", 1063),
    ("SST-2.tsv", 1821),
    ("MRPC.tsv", 1725),
    ("STS-B.tsv", 1379),
    ("QQP.tsv", 390965),
    ("MNLI-m.tsv", 9796),
    ("MNLI-mm.tsv", 9847),
    ("QNLI.tsv", 5463),
    ("RTE.tsv", 3000),
    ("WNLI.tsv", 146),
    ("AX.tsv", 1104),
];

/// STS-B scores are clipped to this range.
pub const STSB_RANGE: (f64, f64) = (0.0, 5.0);

/// Most problems reported per file by [`validate_dir`] (a wrong file would otherwise give one
/// per row).
pub const MAX_ISSUES_PER_FILE: usize = 20;

/// Everything that can go wrong while exporting or validating.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file or directory could not be read or written.
    #[error("cannot access {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `result.json` is not a run result.
    #[error("{}: not a run result", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A prediction cannot be written in GLUE's form.
    #[error("{}: {task} {split}, row {row}: {message}", origin.display())]
    Prediction {
        /// The `result.json` (or other source) it came from.
        origin: PathBuf,
        /// The task.
        task: String,
        /// The split.
        split: String,
        /// 0-based row of the split's predictions.
        row: usize,
        /// What is wrong.
        message: String,
    },
    /// Two sources give predictions for the same submission file.
    #[error("{file}: predictions in both {} and {}; pass only one", first.display(), second.display())]
    Duplicate {
        /// The submission file.
        file: String,
        /// The first source.
        first: PathBuf,
        /// The second source.
        second: PathBuf,
    },
    /// Submission files without predictions (a complete submission needs all of them).
    #[error("no predictions for {}", describe_missing(.0))]
    Missing(Vec<Missing>),
    /// The written or given submission files do not pass validation.
    #[error("invalid submission:\n{}", describe_issues(.0))]
    Invalid(Vec<Issue>),
}

/// A submission file that could not be written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The file name (`AX.tsv`).
    pub file: String,
    /// Why, and how to get it.
    pub reason: String,
}

fn describe_missing(missing: &[Missing]) -> String {
    missing
        .iter()
        .map(|m| format!("{} ({})", m.file, m.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe_issues(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| format!("  {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One problem found by [`validate_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The file name within the directory.
    pub file: String,
    /// 1-based line number, when the problem is on one line.
    pub line: Option<usize>,
    /// The field (`header`, `index`, `prediction`), when the problem is in one.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What a submission file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmissionSpec {
    /// File name (`MNLI-m.tsv`).
    pub file: String,
    /// The task whose test split it holds (`MNLI`, `AX`).
    pub task: Task,
    /// The test split (`test_matched`).
    pub split: String,
    /// The task whose model must make the predictions (`MNLI` for AX).
    pub model_task: Option<String>,
    /// Rows of the official test set.
    pub rows: usize,
}

impl SubmissionSpec {
    /// Whether `value` is a valid prediction for this file.
    pub fn accepts(&self, value: &str) -> bool {
        if self.task.target.is_regression() {
            value
                .parse::<f64>()
                .is_ok_and(|v| v.is_finite() && (STSB_RANGE.0..=STSB_RANGE.1).contains(&v))
        } else {
            self.task.submission_labels.iter().any(|l| l == value)
        }
    }

    fn expected(&self) -> String {
        if self.task.target.is_regression() {
            format!("a number in [{}, {}]", STSB_RANGE.0, STSB_RANGE.1)
        } else {
            format!("one of {}", self.task.submission_labels.join(", "))
        }
    }
}

/// The eleven files of a GLUE submission, in [`OFFICIAL_TEST_SIZES`] order.
pub fn submission_specs() -> Vec<SubmissionSpec> {
    let mut specs = Vec::new();
    for builtin in BuiltinTask::ALL {
        let task = builtin.task();
        for s in &task.submission {
            let rows = OFFICIAL_TEST_SIZES
                .iter()
                .find(|(f, _)| *f == s.file)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            specs.push(SubmissionSpec {
                file: s.file.clone(),
                task: task.clone(),
                split: s.split.clone(),
                model_task: s.model_task.clone(),
                rows,
            });
        }
    }
    specs.sort_by_key(|s| {
        OFFICIAL_TEST_SIZES
            .iter()
            .position(|(f, _)| *f == s.file)
            .unwrap_or(usize::MAX)
    });
    specs
}

/// Test predictions from one place (a run's `result.json`, or predictions made for AX).
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionSource {
    /// Where they came from (named in errors).
    pub origin: PathBuf,
    /// Predictions per task and split.
    pub predictions: Vec<SplitPredictions>,
}

/// Reads the test predictions of a run directory (its `result.json`) or of a `result.json`.
pub fn load_source(path: &Path) -> Result<PredictionSource, ExportError> {
    let file = if path.is_dir() {
        result_file(path)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|source| ExportError::Io {
        path: file.clone(),
        source,
    })?;
    let result: RunResult = serde_json::from_str(&text).map_err(|source| ExportError::Json {
        path: file.clone(),
        source,
    })?;
    Ok(PredictionSource {
        origin: file,
        predictions: result.test_predictions,
    })
}

/// How to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Write the files there are predictions for instead of failing on missing ones.
    pub partial: bool,
}

/// What [`export_glue`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// `(file name, rows)` of every file written.
    pub written: Vec<(String, usize)>,
    /// Files without predictions (only with [`ExportOptions::partial`]).
    pub missing: Vec<Missing>,
}

/// Why a file has no predictions, and how to get them.
fn missing_reason(spec: &SubmissionSpec) -> String {
    match &spec.model_task {
        Some(model) => format!(
            "{} must be predicted on {}'s `{}` split (diagnostic.tsv) with the {model} model; \
             no source has {} {} predictions: pass `--mnli-model <{model} run dir>` to \
             `stilts export glue`, or supply them",
            spec.file, spec.task.name, spec.split, spec.task.name, spec.split
        ),
        None if spec.task.submission.len() > 1 => format!(
            "no run has test predictions for {} split `{}` (was its test file missing when the run \
             ran? pass `--mnli-model <{} run dir>` to `stilts export glue` to predict it)",
            spec.task.name, spec.split, spec.task.name
        ),
        None => format!(
            "no run has test predictions for {} split `{}` (train it with `predict_test = true`)",
            spec.task.name, spec.split
        ),
    }
}

/// One file's rows in GLUE's form: `(index, prediction)`.
fn convert(
    spec: &SubmissionSpec,
    origin: &Path,
    preds: &SplitPredictions,
) -> Result<Vec<(usize, String)>, ExportError> {
    let err = |row: usize, message: String| ExportError::Prediction {
        origin: origin.to_path_buf(),
        task: preds.task.clone(),
        split: preds.split.clone(),
        row,
        message,
    };
    if preds.ids.len() != preds.predictions.len() {
        return Err(err(
            0,
            format!(
                "{} ids but {} predictions",
                preds.ids.len(),
                preds.predictions.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut rows = Vec::with_capacity(preds.ids.len());
    for (row, (id, value)) in preds.ids.iter().zip(&preds.predictions).enumerate() {
        let index: usize = id
            .trim()
            .parse()
            .map_err(|_| err(row, format!("id `{id}` is not a GLUE test index")))?;
        if !seen.insert(index) {
            return Err(err(row, format!("index {index} appears twice")));
        }
        let label = if spec.task.target.is_regression() {
            let v: f64 = value
                .trim()
                .parse()
                .map_err(|_| err(row, format!("score `{value}` is not a number")))?;
            if !v.is_finite() {
                return Err(err(row, format!("score `{value}` is not finite")));
            }
            format!("{:.3}", v.clamp(STSB_RANGE.0, STSB_RANGE.1))
        } else {
            let i = spec.task.label_index(value).ok_or_else(|| {
                err(
                    row,
                    format!(
                        "label `{value}` is not one of {}",
                        spec.task.labels().join(", ")
                    ),
                )
            })?;
            spec.task
                .submission_labels
                .get(i)
                .cloned()
                .ok_or_else(|| err(row, format!("no GLUE spelling for label `{value}`")))?
        };
        rows.push((index, label));
    }
    rows.sort_by_key(|(i, _)| *i);
    Ok(rows)
}

/// Writes `contents` to `path` atomically ([`stilts_io::fs::write_atomic`]).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), ExportError> {
    stilts_io::fs::write_atomic(path, contents).map_err(|e| ExportError::Io {
        path: e.path,
        source: e.source,
    })
}

/// The text of a submission file.
pub fn render(rows: &[(usize, String)]) -> String {
    let mut out = String::with_capacity(rows.len() * 16 + HEADER.len() + 1);
    out.push_str(HEADER);
    out.push('\n');
    for (i, p) in rows {
        out.push_str(&format!("{i}\t{p}\n"));
    }
    out
}

/// Writes the GLUE submission files for the test predictions in `sources` into `out` (created
/// if needed). Fails before writing anything when a prediction cannot be converted, when two
/// sources give the same file, or (unless [`ExportOptions::partial`]) when a file has no
/// predictions. Row counts are not checked here: run [`validate_dir`] on `out` for that.
pub fn export_glue(
    sources: &[PredictionSource],
    out: &Path,
    options: &ExportOptions,
) -> Result<ExportReport, ExportError> {
    let specs = submission_specs();
    let mut chosen: BTreeMap<String, (&Path, &SplitPredictions)> = BTreeMap::new();
    for source in sources {
        for preds in &source.predictions {
            let Ok(builtin) = BuiltinTask::parse(&preds.task) else {
                continue; // a custom task: not part of GLUE
            };
            let name = builtin.name();
            for spec in specs
                .iter()
                .filter(|s| s.task.name == name && s.split == preds.split)
            {
                if let Some((first, _)) = chosen.get(&spec.file) {
                    return Err(ExportError::Duplicate {
                        file: spec.file.clone(),
                        first: first.to_path_buf(),
                        second: source.origin.clone(),
                    });
                }
                chosen.insert(spec.file.clone(), (&source.origin, preds));
            }
        }
    }
    let missing: Vec<Missing> = specs
        .iter()
        .filter(|s| !chosen.contains_key(&s.file))
        .map(|s| Missing {
            file: s.file.clone(),
            reason: missing_reason(s),
        })
        .collect();
    if !missing.is_empty() && (!options.partial || chosen.is_empty()) {
        return Err(ExportError::Missing(missing));
    }
    let mut files = Vec::new();
    for spec in &specs {
        if let Some((origin, preds)) = chosen.get(&spec.file) {
            files.push((spec.file.clone(), convert(spec, origin, preds)?));
        }
    }
    std::fs::create_dir_all(out).map_err(|source| ExportError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let mut report = ExportReport {
        written: Vec::new(),
        missing,
    };
    for (file, rows) in files {
        write_atomic(&out.join(&file), render(&rows).as_bytes())?;
        report.written.push((file, rows.len()));
    }
    Ok(report)
}
