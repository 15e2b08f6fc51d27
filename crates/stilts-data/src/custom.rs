//! Custom tasks declared in TOML: a user's own intermediate or target task, loaded exactly like a
//! built-in one. Strings become enums at this boundary and unknown keys are errors.
//!
//! ```toml
//! name = "SICK-E"
//! dir = "sick"                       # directory under a data root
//! input = "pair"                     # single | pair
//! labels = ["contradiction", "entailment", "neutral"]
//!
//! [format]
//! format = "tsv"                     # tsv | csv | jsonl | json
//! header = true
//! text_a = "sentence_A"
//! text_b = "sentence_B"
//! label = "entailment_label"
//! id = "pair_ID"
//!
//! [format.label_map]
//! ENTAILMENT = "entailment"
//!
//! [[splits]]
//! name = "train"
//! file = "SICK.txt"
//! select = { column = "SemEval_set", values = ["TRAIN"] }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::error::{DataError, Result};
use crate::metrics::Metric;
use crate::task::{
    Column, FileFormat, InputKind, Layout, Select, Source, SplitRole, SplitSpec, Target, Task,
};

/// The TOML document of a custom task.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFile {
    /// The task's name, as results and heads record it.
    pub name: String,
    /// Directory of the task's files under a data root; defaults to `name`.
    pub dir: Option<String>,
    /// `single` (one text) or `pair` (two texts).
    pub input: InputKind,
    /// Label names in canonical (head) order. Omit for a regression task.
    pub labels: Option<Vec<String>>,
    /// `true` for a real-valued target (no `labels`).
    #[serde(default)]
    pub regression: bool,
    /// Defaults: `["accuracy"]` for classification, `["pearson", "spearman"]` for regression.
    pub metrics: Option<Vec<Metric>>,
    /// A pair task whose two texts play the same role (paraphrase, similarity).
    #[serde(default)]
    pub symmetric: bool,
    /// The layout every split uses unless it gives its own `format`.
    pub format: FormatFile,
    /// The task's splits.
    pub splits: Vec<SplitFile>,
}

/// How a file is laid out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatFile {
    /// `tsv`, `csv`, `jsonl` or `json`.
    pub format: FileFormat,
    /// TSV/CSV: whether line 1 is a header. Defaults to true.
    pub header: Option<bool>,
    /// Header-less TSV/CSV: the number of columns every row must have.
    pub columns: Option<usize>,
    /// The field of the first (or only) text.
    pub text_a: Column,
    /// The field of the second text (pair tasks).
    pub text_b: Option<Column>,
    /// The field of the label; absent for unlabelled files.
    pub label: Option<Column>,
    /// The field of the example id; absent: the 0-based row number.
    pub id: Option<Column>,
    /// File value -> label name, for values that are not label names themselves.
    #[serde(default)]
    pub label_map: BTreeMap<String, String>,
    /// Label values whose rows are skipped and counted (SNLI's `-`).
    #[serde(default)]
    pub skip_labels: Vec<String>,
}

/// One split of a custom task.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitFile {
    /// Split name (`train`, `dev`, `test`, or any other).
    pub name: String,
    /// Defaults from the name: `train*` is train, `test*` is test, anything else is dev.
    pub role: Option<SplitRole>,
    /// Path relative to the task directory (`.gz` is found automatically).
    pub file: String,
    /// A test split without labels.
    #[serde(default)]
    pub unlabelled: bool,
    /// Keep only rows whose column has one of the values (several splits in one file).
    pub select: Option<Select>,
    /// Replaces the task-level `format` for this split.
    pub format: Option<FormatFile>,
}

/// Read and validate a custom task definition.
pub fn load_task_file(path: &Path) -> Result<Task> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::MissingFile {
                path: path.to_owned(),
                hint: Some("task definition".into()),
            }
        } else {
            DataError::io(path, e)
        }
    })?;
    parse_task(&text, path)
}

/// Parse a custom task definition; `origin` names it in errors.
pub fn parse_task(text: &str, origin: &Path) -> Result<Task> {
    let file: TaskFile = toml::from_str(text).map_err(|e| DataError::Toml {
        path: origin.to_owned(),
        source: Box::new(e),
    })?;
    file.into_task().map_err(|message| DataError::TaskConfig {
        path: origin.to_owned(),
        message,
    })
}

impl TaskFile {
    /// Validate and turn into a [`Task`]; the error is a message for the user.
    pub fn into_task(self) -> std::result::Result<Task, String> {
        stilts_io::names::check_component(&self.name).map_err(|e| format!("`name`: {e}"))?;
        if let Some(dir) = &self.dir {
            stilts_io::names::check_relative(dir).map_err(|e| format!("`dir`: {e}"))?;
        }
        let target = match (self.regression, self.labels) {
            (true, Some(_)) => return Err("a regression task has no `labels`".into()),
            (true, None) => Target::Regression,
            (false, None) => return Err("`labels` is required (or set `regression = true`)".into()),
            (false, Some(labels)) => {
                if labels.len() < 2 {
                    return Err(format!(
                        "`labels` needs at least two labels, got {labels:?}"
                    ));
                }
                let mut seen = BTreeSet::new();
                if let Some(dup) = labels.iter().find(|l| !seen.insert(l.as_str())) {
                    return Err(format!("label `{dup}` is listed twice"));
                }
                Target::Classification { labels }
            }
        };
        let metrics = match self.metrics {
            Some(m) if m.is_empty() => return Err("`metrics` is empty".into()),
            Some(m) => m,
            None if target.is_regression() => vec![Metric::Pearson, Metric::Spearman],
            None => vec![Metric::Accuracy],
        };
        for m in &metrics {
            let ok = match m {
                Metric::Pearson | Metric::Spearman => target.is_regression(),
                Metric::F1 => target.labels().len() == 2,
                Metric::Accuracy | Metric::Mcc => !target.is_regression(),
            };
            if !ok {
                return Err(format!(
                    "metric `{}` does not apply to this task ({})",
                    serde_json::to_value(m)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    match &target {
                        Target::Regression => "regression".to_owned(),
                        Target::Classification { labels } => format!("{} labels", labels.len()),
                    }
                ));
            }
        }
        if self.splits.is_empty() {
            return Err("no `[[splits]]`".into());
        }
        let mut names = BTreeSet::new();
        let mut splits = Vec::with_capacity(self.splits.len());
        for s in self.splits {
            if !names.insert(s.name.clone()) {
                return Err(format!("split `{}` is declared twice", s.name));
            }
            let role = s.role.unwrap_or(if s.name.starts_with("train") {
                SplitRole::Train
            } else if s.name.starts_with("test") {
                SplitRole::Test
            } else {
                SplitRole::Dev
            });
            let format = s.format.as_ref().unwrap_or(&self.format);
            let mut layout = format
                .to_layout(self.input, &target)
                .map_err(|e| format!("split `{}`: {e}", s.name))?;
            if s.unlabelled {
                layout.label = None;
            } else if layout.label.is_none() {
                return Err(format!(
                    "split `{}` has no `label` field; mark it `unlabelled = true` if it has no labels",
                    s.name
                ));
            }
            if let Some(sel) = &s.select {
                if sel.values.is_empty() {
                    return Err(format!("split `{}`: `select.values` is empty", s.name));
                }
                if matches!(sel.column, Column::Index(_))
                    && matches!(layout.format, FileFormat::Json | FileFormat::Jsonl)
                {
                    return Err(format!(
                        "split `{}`: JSON fields are selected by name",
                        s.name
                    ));
                }
            }
            layout.select = s.select;
            splits.push(SplitSpec {
                name: s.name,
                role,
                sources: vec![Source {
                    file: s.file,
                    layout,
                }],
            });
        }
        Ok(Task {
            dir: self.dir.unwrap_or_else(|| self.name.clone()),
            name: self.name,
            input: self.input,
            target,
            metrics,
            splits,
            submission: Vec::new(),
            submission_labels: Vec::new(),
            symmetric: self.symmetric,
        })
    }
}

impl FormatFile {
    fn to_layout(&self, input: InputKind, target: &Target) -> std::result::Result<Layout, String> {
        let json = matches!(self.format, FileFormat::Json | FileFormat::Jsonl);
        let header = self.header.unwrap_or(true);
        match (input, &self.text_b) {
            (InputKind::Pair, None) => return Err("a pair task needs `text_b`".into()),
            (InputKind::Single, Some(_)) => {
                return Err("a single-sentence task has no `text_b`".into());
            }
            _ => {}
        }
        let cols = [
            Some(&self.text_a),
            self.text_b.as_ref(),
            self.label.as_ref(),
            self.id.as_ref(),
        ];
        for col in cols.into_iter().flatten() {
            match col {
                Column::Index(i) if json => {
                    return Err(format!("JSON fields are named, not numbered (got {i})"));
                }
                Column::Index(_) if header => {
                    return Err("columns are given by number, so set `header = false`".into());
                }
                Column::Name(n) if !json && !header => {
                    return Err(format!(
                        "column `{n}` is named but the file has no header: use a column number"
                    ));
                }
                _ => {}
            }
        }
        if json && self.header.is_some() {
            return Err("`header` applies to tsv/csv only".into());
        }
        if header && self.columns.is_some() {
            return Err(
                "`columns` applies to header-less files (the header gives the count)".into(),
            );
        }
        let labels = target.labels();
        if target.is_regression() && !self.label_map.is_empty() {
            return Err("a regression task has no `label_map`".into());
        }
        for (from, to) in &self.label_map {
            if !labels.contains(to) {
                return Err(format!(
                    "label_map maps `{from}` to `{to}`, which is not in `labels` {labels:?}"
                ));
            }
        }
        Ok(Layout {
            format: self.format,
            header: header && !json,
            columns: self.columns,
            text_a: self.text_a.clone(),
            text_b: self.text_b.clone(),
            label: self.label.clone(),
            id: self.id.clone(),
            label_map: self.label_map.clone(),
            skip_labels: self.skip_labels.clone(),
            select: None,
        })
    }
}

/// A task named either by a built-in name or by a TOML definition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskRef {
    /// A built-in task.
    Builtin(crate::BuiltinTask),
    /// A custom task's TOML file.
    File(std::path::PathBuf),
}

impl TaskRef {
    /// The task: the built-in's, or the file's, read and validated.
    pub fn resolve(&self) -> Result<Task> {
        match self {
            TaskRef::Builtin(t) => Ok(t.task()),
            TaskRef::File(p) => load_task_file(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Task> {
        parse_task(text, Path::new("t.toml"))
    }

    const BASE: &str = r#"
name = "T"
input = "pair"
labels = ["no", "yes"]
[format]
format = "jsonl"
text_a = "a"
text_b = "b"
label = "l"
[[splits]]
name = "train"
file = "train.jsonl"
"#;

    #[test]
    fn minimal_task_parses_with_defaults() {
        let t = parse(BASE).unwrap();
        assert_eq!(t.dir, "T");
        assert_eq!(t.metrics, vec![Metric::Accuracy]);
        assert_eq!(t.splits[0].role, SplitRole::Train);
        assert!(!t.splits[0].sources[0].layout.header);
    }

    #[test]
    fn typos_and_contradictions_are_errors() {
        let cases = [
            (
                BASE.replace("input = \"pair\"", "input = \"pair\"\nlabelz = 1"),
                "unknown field `labelz`",
            ),
            (
                BASE.replace("\"pair\"", "\"triple\""),
                "unknown variant `triple`",
            ),
            (
                BASE.replace("labels = [\"no\", \"yes\"]", "labels = [\"no\", \"no\"]"),
                "listed twice",
            ),
            (
                BASE.replace(
                    "labels = [\"no\", \"yes\"]",
                    "regression = true\nlabels = [\"a\", \"b\"]",
                ),
                "regression task has no `labels`",
            ),
            (
                BASE.replace("text_b = \"b\"\n", ""),
                "pair task needs `text_b`",
            ),
            (
                BASE.replace("label = \"l\"", "label = \"l\"\nheader = true"),
                "`header` applies to tsv/csv only",
            ),
            (
                BASE.replace("text_a = \"a\"", "text_a = 0"),
                "JSON fields are named",
            ),
            (BASE.replace("label = \"l\"\n", ""), "no `label` field"),
            (
                format!("{BASE}\n[format.label_map]\nY = \"maybe\"\n")
                    .replace("[[splits]]", "[[splits]]"),
                "not in `labels`",
            ),
            (
                BASE.replace(
                    "labels = [\"no\", \"yes\"]",
                    "labels = [\"a\", \"b\", \"c\"]\nmetrics = [\"f1\"]",
                ),
                "metric `f1` does not apply",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text).expect_err(want).to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
            assert!(err.starts_with("t.toml"), "{err:?} should name the file");
        }
    }
}
