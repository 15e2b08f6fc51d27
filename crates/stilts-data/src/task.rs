//! What a task is: its input shape, its targets, its metrics, its splits and how each split's file
//! is laid out. Built-in GLUE/SNLI tasks and custom TOML tasks are the same [`Task`] value; the
//! built-in ones come from the table in [`crate::glue`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::Metric;

/// One sentence or a sentence pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// One text per example.
    Single,
    /// Two texts per example (`text_a`, `text_b`).
    Pair,
}

/// What a model predicts for the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Target {
    /// Class indices into `labels`, in the task's canonical order (the order a classifier head
    /// uses: index `i` of the logits is `labels[i]`).
    Classification {
        /// The label names, in head order.
        labels: Vec<String>,
    },
    /// One real-valued score (STS-B).
    Regression,
}

impl Target {
    /// The label names of a classification task; empty for regression.
    pub fn labels(&self) -> &[String] {
        match self {
            Target::Classification { labels } => labels,
            Target::Regression => &[],
        }
    }

    /// Whether the target is a real-valued score.
    pub fn is_regression(&self) -> bool {
        matches!(self, Target::Regression)
    }

    /// Outputs of a head for this task: the number of classes, or 1 for regression.
    pub fn num_outputs(&self) -> usize {
        match self {
            Target::Classification { labels } => labels.len(),
            Target::Regression => 1,
        }
    }
}

/// The on-disk encoding of a split file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FileFormat {
    /// Tab-separated, no quoting (as GLUE's readers: `csv.reader(delimiter="\t", quotechar=None)`).
    Tsv,
    /// RFC 4180 comma-separated with quoting.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// A JSON object whose values are records (`{"0": {...}, "1": {...}}`), or an array of records.
    Json,
}

/// A field of a record: a header/key name, or a 0-based column index for header-less files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Column {
    /// 0-based column of a header-less TSV/CSV file.
    Index(usize),
    /// A header name or JSON key.
    Name(String),
}

impl Column {
    /// A [`Column::Name`].
    pub fn name(name: &str) -> Self {
        Column::Name(name.to_owned())
    }
}

impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Column::Index(i) => write!(f, "column {i}"),
            Column::Name(n) => f.write_str(n),
        }
    }
}

/// How to read one split file into examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// How the file is encoded.
    pub format: FileFormat,
    /// Whether the first line of a TSV/CSV file is a header (ignored for JSON formats).
    pub header: bool,
    /// Number of columns every row must have when there is no header (with a header, every row
    /// must have as many columns as the header).
    pub columns: Option<usize>,
    /// The field of the first (or only) text.
    pub text_a: Column,
    /// The field of the second text (pair tasks).
    pub text_b: Option<Column>,
    /// `None` for unlabelled splits (GLUE test sets).
    pub label: Option<Column>,
    /// `None`: ids are the 0-based row numbers.
    pub id: Option<Column>,
    /// File value -> canonical label name (e.g. SICK's `ENTAILMENT` -> `entailment`). Values not
    /// in the map must be label names themselves.
    pub label_map: BTreeMap<String, String>,
    /// Label values that mark a row to be skipped and counted (SNLI's `-`: no annotator majority).
    pub skip_labels: Vec<String>,
    /// Keep only rows whose field has one of these values (SICK keeps all splits in one file and
    /// names each row's split in `SemEval_set`). Other rows belong to other splits: not counted.
    pub select: Option<Select>,
}

/// A row filter: `column` must equal one of `values`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Select {
    /// The field compared.
    pub column: Column,
    /// The values a kept row may have.
    pub values: Vec<String>,
}

impl Layout {
    /// A TSV layout with a header, columns read by name.
    pub fn tsv_header(
        text_a: &str,
        text_b: Option<&str>,
        label: Option<&str>,
        id: Option<&str>,
    ) -> Self {
        Layout {
            format: FileFormat::Tsv,
            header: true,
            columns: None,
            text_a: Column::name(text_a),
            text_b: text_b.map(Column::name),
            label: label.map(Column::name),
            id: id.map(Column::name),
            label_map: BTreeMap::new(),
            skip_labels: Vec::new(),
            select: None,
        }
    }
}

/// One file of a split, with its layout. A split may list several sources (SNLI's `.jsonl` and
/// `.txt`); the first one present on disk (plain or `.gz`) is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Path relative to the task directory.
    pub file: String,
    /// How to read the file.
    pub layout: Layout,
}

/// Whether a split has labels and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitRole {
    /// The training split.
    Train,
    /// A labelled evaluation split.
    Dev,
    /// An unlabelled split predicted for a submission.
    Test,
}

/// One split of a task: its name, role and the files that may hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSpec {
    /// `train`, `dev`, `dev_matched`, `test_mismatched`, ...
    pub name: String,
    /// What the split is for.
    pub role: SplitRole,
    /// Candidate files, in order of preference; the first present is read.
    pub sources: Vec<Source>,
}

/// A GLUE leaderboard submission file produced from one test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionFile {
    /// The test split whose predictions go in the file.
    pub split: String,
    /// File name in the submission zip (`RTE.tsv`, `MNLI-m.tsv`, `AX.tsv`).
    pub file: String,
    /// When set, predictions come from this other task's model (AX is scored with the MNLI model).
    pub model_task: Option<String>,
}

/// Everything stilts knows about a task, in one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Canonical name (`RTE`, `SST-2`, `MNLI`, or a custom task's name).
    pub name: String,
    /// Directory name under a GLUE data root (`RTE`, `SST-2`, `diagnostic`).
    pub dir: String,
    /// One text or a pair.
    pub input: InputKind,
    /// What a model predicts: label names in head order, or a score.
    pub target: Target,
    /// Metrics reported for the task; the first is the one restarts select on. GLUE's per-task
    /// score is the mean of all of them.
    pub metrics: Vec<Metric>,
    /// The splits, in declaration order.
    pub splits: Vec<SplitSpec>,
    /// Files this task contributes to a GLUE submission; empty for non-GLUE tasks.
    pub submission: Vec<SubmissionFile>,
    /// Labels as GLUE test submissions spell them, index-aligned with `target.labels()`.
    pub submission_labels: Vec<String>,
    /// Whether a pair's two texts play the same role (paraphrase and similarity: MRPC, QQP,
    /// STS-B), so that their order carries no information: GPT reads such pairs in both orders
    /// (Radford et al.). Not written with the task: its effect, the pair mode, is recorded in
    /// a run's resolved configuration.
    #[serde(skip)]
    pub symmetric: bool,
}

impl Task {
    /// The split named `name`.
    pub fn split(&self, name: &str) -> Option<&SplitSpec> {
        self.splits.iter().find(|s| s.name == name)
    }

    /// Names of every split, in declaration order.
    pub fn split_names(&self) -> Vec<String> {
        self.splits.iter().map(|s| s.name.clone()).collect()
    }

    /// The split used for training.
    pub fn train_split(&self) -> Option<&SplitSpec> {
        self.splits.iter().find(|s| s.role == SplitRole::Train)
    }

    /// Labelled evaluation splits (dev, or MNLI's dev_matched and dev_mismatched).
    pub fn dev_splits(&self) -> impl Iterator<Item = &SplitSpec> {
        self.splits.iter().filter(|s| s.role == SplitRole::Dev)
    }

    /// The label names in head order; empty for regression.
    pub fn labels(&self) -> &[String] {
        self.target.labels()
    }

    /// Index of a label name in the canonical order.
    pub fn label_index(&self, name: &str) -> Option<usize> {
        self.labels().iter().position(|l| l == name)
    }

    /// The primary metric (restarts select on it).
    pub fn primary_metric(&self) -> Metric {
        self.metrics[0]
    }
}
