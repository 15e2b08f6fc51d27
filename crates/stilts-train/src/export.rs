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

/// How to validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateOptions {
    /// Accept a directory that lacks some of the eleven files.
    pub partial: bool,
    /// Expected rows per file; defaults to [`OFFICIAL_TEST_SIZES`].
    pub sizes: BTreeMap<String, usize>,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            partial: false,
            sizes: OFFICIAL_TEST_SIZES
                .iter()
                .map(|(f, n)| (f.to_string(), *n))
                .collect(),
        }
    }
}

/// Checks a directory of submission files: names, headers, row counts, indices `0..n-1` each
/// exactly once, and label strings. Returns every problem found (empty: valid); at most
/// [`MAX_ISSUES_PER_FILE`] per file. Fails only when the directory cannot be read.
pub fn validate_dir(dir: &Path, options: &ValidateOptions) -> Result<Vec<Issue>, ExportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    let specs = submission_specs();
    let mut issues = Vec::new();
    let mut present = BTreeSet::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Some(spec) = specs.iter().find(|s| s.file == name) else {
            let known: Vec<_> = specs.iter().map(|s| s.file.as_str()).collect();
            issues.push(Issue {
                file: name,
                line: None,
                field: None,
                message: format!("not a GLUE submission file (expected {})", known.join(", ")),
            });
            continue;
        };
        present.insert(name.clone());
        let path = entry.path();
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let expected = options.sizes.get(&name).copied();
        issues.extend(validate_file(spec, &name, &bytes, expected));
    }
    if !options.partial {
        for spec in &specs {
            if !present.contains(&spec.file) {
                issues.push(Issue {
                    file: spec.file.clone(),
                    line: None,
                    field: None,
                    message: "missing".to_owned(),
                });
            }
        }
    }
    Ok(issues)
}

/// Checks one file's contents (see [`validate_dir`]); `name` is used in the issues.
pub fn validate_file(
    spec: &SubmissionSpec,
    name: &str,
    bytes: &[u8],
    expected_rows: Option<usize>,
) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut push = |line: Option<usize>, field: Option<&str>, message: String| {
        if issues.len() < MAX_ISSUES_PER_FILE {
            issues.push(Issue {
                file: name.to_owned(),
                line,
                field: field.map(str::to_owned),
                message,
            });
        }
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            push(None, None, format!("not UTF-8: {e}"));
            return issues;
        }
    };
    let mut lines = text.split('\n').collect::<Vec<_>>();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    match lines.first() {
        None => {
            push(Some(1), Some("header"), "empty file".to_owned());
            return issues;
        }
        Some(h) if *h != HEADER => push(
            Some(1),
            Some("header"),
            format!("`{}`, expected `index<TAB>prediction`", h.escape_debug()),
        ),
        Some(_) => {}
    }
    let rows = lines.len() - 1;
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate().skip(1) {
        let n = i + 1;
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != 2 {
            push(
                Some(n),
                None,
                format!("{} fields, expected 2 (index, prediction)", fields.len()),
            );
            continue;
        }
        match fields[0].parse::<usize>() {
            Err(_) => push(
                Some(n),
                Some("index"),
                format!(
                    "`{}` is not a non-negative integer",
                    fields[0].escape_debug()
                ),
            ),
            Ok(index) => {
                if let Some(first) = seen.insert(index, n) {
                    push(
                        Some(n),
                        Some("index"),
                        format!("{index} already on line {first}"),
                    );
                } else if let Some(expected) = expected_rows
                    && index >= expected
                {
                    push(
                        Some(n),
                        Some("index"),
                        format!("{index} is out of range 0..{}", expected),
                    );
                }
            }
        }
        if !spec.accepts(fields[1]) {
            push(
                Some(n),
                Some("prediction"),
                format!("`{}` is not {}", fields[1].escape_debug(), spec.expected()),
            );
        }
    }
    if let Some(expected) = expected_rows
        && rows != expected
    {
        push(
            Some(lines.len()),
            None,
            format!("{rows} rows, expected {expected} (the official test set)"),
        );
    }
    issues
}

/// Validates and fails with [`ExportError::Invalid`] when there is any problem.
pub fn check_dir(dir: &Path, options: &ValidateOptions) -> Result<(), ExportError> {
    let issues = validate_dir(dir, options)?;
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ExportError::Invalid(issues))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(file: &str) -> SubmissionSpec {
        submission_specs()
            .into_iter()
            .find(|s| s.file == file)
            .expect("known file")
    }

    fn preds(task: &str, split: &str, labels: &[&str]) -> SplitPredictions {
        SplitPredictions {
            task: task.into(),
            split: split.into(),
            ids: (0..labels.len()).rev().map(|i| i.to_string()).collect(),
            predictions: labels.iter().rev().map(|s| s.to_string()).collect(),
            logits: vec![],
        }
    }

    /// A full, correct bundle at the official sizes.
    fn full_sources() -> Vec<PredictionSource> {
        let mut predictions = Vec::new();
        for s in submission_specs() {
            let label = if s.task.target.is_regression() {
                "6.2".to_owned() // clipped to 5
            } else {
                s.task.labels()[s.rows % s.task.labels().len()].clone()
            };
            let labels: Vec<&str> = (0..s.rows).map(|_| label.as_str()).collect();
            predictions.push(preds(&s.task.name, &s.split, &labels));
        }
        vec![PredictionSource {
            origin: "result.json".into(),
            predictions,
        }]
    }

    #[test]
    fn specs_cover_the_eleven_files() {
        let specs = submission_specs();
        let files: Vec<_> = specs.iter().map(|s| s.file.as_str()).collect();
        let official: Vec<_> = OFFICIAL_TEST_SIZES.iter().map(|(f, _)| *f).collect();
        assert_eq!(files, official);
        assert!(specs.iter().all(|s| s.rows > 0));
        let ax = spec("AX.tsv");
        assert_eq!(ax.model_task.as_deref(), Some("MNLI"));
    }

    #[test]
    fn full_bundle_exports_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        let report = export_glue(&full_sources(), dir.path(), &ExportOptions::default()).unwrap();
        assert_eq!(report.written.len(), 11);
        assert!(report.missing.is_empty());
        let issues = validate_dir(dir.path(), &ValidateOptions::default()).unwrap();
        assert!(issues.is_empty(), "{issues:?}");
        let stsb = std::fs::read_to_string(dir.path().join("STS-B.tsv")).unwrap();
        assert!(stsb.starts_with("index\tprediction\n0\t5.000\n1\t5.000\n"));
        // No temporary files are left behind.
        assert!(
            std::fs::read_dir(dir.path()).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.'))
        );
    }

    #[test]
    fn rte_and_mnli_labels_in_glue_form() {
        let dir = tempfile::tempdir().unwrap();
        let source = PredictionSource {
            origin: "r.json".into(),
            predictions: vec![
                preds("RTE", "test", &["entailment", "not_entailment"]),
                preds(
                    "MNLI",
                    "test_matched",
                    &["neutral", "contradiction", "entailment"],
                ),
                preds("MNLI", "test_mismatched", &["entailment"]),
                preds("diagnostic", "test", &["contradiction"]),
                preds("my-custom-task", "test", &["x"]),
            ],
        };
        let report = export_glue(&[source], dir.path(), &ExportOptions { partial: true }).unwrap();
        assert_eq!(report.written.len(), 4);
        assert_eq!(report.missing.len(), 7);
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(
            read("RTE.tsv"),
            "index\tprediction\n0\tentailment\n1\tnot_entailment\n"
        );
        assert_eq!(
            read("MNLI-m.tsv"),
            "index\tprediction\n0\tneutral\n1\tcontradiction\n2\tentailment\n"
        );
        assert_eq!(read("MNLI-mm.tsv"), "index\tprediction\n0\tentailment\n");
        assert_eq!(read("AX.tsv"), "index\tprediction\n0\tcontradiction\n");
    }

    #[test]
    fn missing_ax_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let mut sources = full_sources();
        sources[0].predictions.retain(|p| p.task != "AX");
        let err = export_glue(&sources, dir.path(), &ExportOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("AX.tsv"), "{msg}");
        assert!(msg.contains("MNLI model"), "{msg}");
        assert!(msg.contains("--mnli-model"), "{msg}");
        // Nothing was written.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn bad_predictions_and_duplicates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bad = PredictionSource {
            origin: "a/result.json".into(),
            predictions: vec![preds("RTE", "test", &["entailment", "maybe"])],
        };
        let err = export_glue(&[bad], dir.path(), &ExportOptions { partial: true }).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("a/result.json") && msg.contains("row 0") && msg.contains("`maybe`"),
            "{msg}"
        );
        let one = PredictionSource {
            origin: "a/result.json".into(),
            predictions: vec![preds("RTE", "test", &["entailment"])],
        };
        let two = PredictionSource {
            origin: "b/result.json".into(),
            ..one.clone()
        };
        let err =
            export_glue(&[one, two], dir.path(), &ExportOptions { partial: true }).unwrap_err();
        assert!(matches!(err, ExportError::Duplicate { .. }), "{err}");
    }

    fn issues_for(file: &str, text: &str, rows: usize) -> Vec<Issue> {
        validate_file(&spec(file), file, text.as_bytes(), Some(rows))
    }

    #[test]
    fn validator_reports_file_line_and_field() {
        let ok = "index\tprediction\n0\tentailment\n1\tnot_entailment\n";
        assert!(issues_for("RTE.tsv", ok, 2).is_empty());

        let count = issues_for("RTE.tsv", ok, 3);
        assert_eq!(count.len(), 1);
        assert_eq!(
            count[0].to_string(),
            "RTE.tsv:3: 2 rows, expected 3 (the official test set)"
        );

        let label = issues_for("RTE.tsv", "index\tprediction\n0\tentailment\n1\t1\n", 2);
        assert_eq!(label.len(), 1);
        assert_eq!(
            (label[0].line, label[0].field.as_deref()),
            (Some(3), Some("prediction"))
        );
        assert!(
            label[0]
                .to_string()
                .starts_with("RTE.tsv:3: prediction: `1` is not one of")
        );

        let dup = issues_for("CoLA.tsv", "index\tprediction\n0\t1\n0\t0\n", 2);
        assert_eq!(dup.len(), 1);
        assert_eq!(dup[0].to_string(), "CoLA.tsv:3: index: 0 already on line 2");

        let header = issues_for("MNLI-m.tsv", "id\tlabel\n0\tneutral\n", 1);
        assert_eq!(header.len(), 1);
        assert_eq!(
            (header[0].line, header[0].field.as_deref()),
            (Some(1), Some("header"))
        );
        assert!(header[0].to_string().starts_with("MNLI-m.tsv:1: header:"));

        let stsb = issues_for("STS-B.tsv", "index\tprediction\n0\t5.1\n1\tx\n2\t2.5\n", 3);
        assert_eq!(stsb.len(), 2);
        assert_eq!(stsb[0].line, Some(2));
        assert_eq!(stsb[1].line, Some(3));

        let fields = issues_for("WNLI.tsv", "index\tprediction\n0\n", 1);
        assert_eq!(fields[0].line, Some(2));
    }

    #[test]
    fn validator_checks_names_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("RTE.tsv"),
            "index\tprediction\n0\tentailment\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("rte.tsv"), "").unwrap();
        let issues = validate_dir(dir.path(), &ValidateOptions::default()).unwrap();
        let text: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
        assert!(
            text.iter().any(|t| t.starts_with("rte.tsv: not a GLUE")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t == "AX.tsv: missing"), "{text:?}");
        assert!(
            text.iter()
                .any(|t| t == "RTE.tsv:2: 1 rows, expected 3000 (the official test set)"),
            "{text:?}"
        );
        let err = check_dir(dir.path(), &ValidateOptions::default()).unwrap_err();
        assert!(matches!(err, ExportError::Invalid(_)));
    }
}
