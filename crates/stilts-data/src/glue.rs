//! The built-in tasks: GLUE in the layout the standard `download_glue_data.py` writes, the AX
//! diagnostic, and SNLI 1.0. Each entry is data: labels, metrics, files and columns.

use crate::error::{DataError, Result};
use crate::metrics::Metric;
use crate::task::{
    Column, FileFormat, InputKind, Layout, Source, SplitRole, SplitSpec, SubmissionFile, Target,
    Task,
};

/// The built-in tasks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[non_exhaustive]
pub enum BuiltinTask {
    /// The Corpus of Linguistic Acceptability (single sentence; MCC).
    #[serde(rename = "CoLA")]
    Cola,
    /// Stanford Sentiment Treebank, binary (single sentence; accuracy).
    #[serde(rename = "SST-2")]
    Sst2,
    /// Microsoft Research Paraphrase Corpus (pair; F1 and accuracy).
    #[serde(rename = "MRPC")]
    Mrpc,
    /// Quora Question Pairs (pair; accuracy and F1).
    #[serde(rename = "QQP")]
    Qqp,
    /// Semantic Textual Similarity Benchmark (pair; regression, Pearson and Spearman).
    #[serde(rename = "STS-B")]
    Stsb,
    /// Multi-Genre NLI (pair; three classes; matched and mismatched dev).
    #[serde(rename = "MNLI")]
    Mnli,
    /// Question-answering NLI (pair; accuracy).
    #[serde(rename = "QNLI")]
    Qnli,
    /// Recognizing Textual Entailment (pair; accuracy).
    #[serde(rename = "RTE")]
    Rte,
    /// Winograd NLI (pair; accuracy).
    #[serde(rename = "WNLI")]
    Wnli,
    /// The GLUE diagnostic set (pair; MCC; its test split is predicted with the MNLI model).
    #[serde(rename = "AX")]
    Ax,
    /// Stanford NLI 1.0 (pair; three classes; an intermediate task).
    #[serde(rename = "SNLI")]
    Snli,
}

impl BuiltinTask {
    /// Every built-in task, GLUE's in leaderboard order, then AX and SNLI.
    pub const ALL: [BuiltinTask; 11] = [
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
        BuiltinTask::Snli,
    ];

    /// The nine tasks whose scores make up the GLUE average (AX and SNLI excluded).
    pub const GLUE: [BuiltinTask; 9] = [
        BuiltinTask::Cola,
        BuiltinTask::Sst2,
        BuiltinTask::Mrpc,
        BuiltinTask::Qqp,
        BuiltinTask::Stsb,
        BuiltinTask::Mnli,
        BuiltinTask::Qnli,
        BuiltinTask::Rte,
        BuiltinTask::Wnli,
    ];

    /// The canonical name (`CoLA`, `SST-2`, `STS-B`, ...), as results and the command line spell
    /// it.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinTask::Cola => "CoLA",
            BuiltinTask::Sst2 => "SST-2",
            BuiltinTask::Mrpc => "MRPC",
            BuiltinTask::Qqp => "QQP",
            BuiltinTask::Stsb => "STS-B",
            BuiltinTask::Mnli => "MNLI",
            BuiltinTask::Qnli => "QNLI",
            BuiltinTask::Rte => "RTE",
            BuiltinTask::Wnli => "WNLI",
            BuiltinTask::Ax => "AX",
            BuiltinTask::Snli => "SNLI",
        }
    }

    /// Parse a task name, ignoring case, `-` and `_` (`sst2`, `STS_B`, `mnli`); `diagnostic` is AX.
    pub fn parse(name: &str) -> Result<Self> {
        let norm = |s: &str| {
            s.chars()
                .filter(|c| *c != '-' && *c != '_')
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let wanted = norm(name);
        if wanted == "diagnostic" {
            return Ok(BuiltinTask::Ax);
        }
        BuiltinTask::ALL
            .into_iter()
            .find(|t| norm(t.name()) == wanted)
            .ok_or_else(|| DataError::UnknownTask {
                name: name.to_owned(),
                known: BuiltinTask::ALL
                    .iter()
                    .map(|t| t.name().to_owned())
                    .collect(),
            })
    }

    /// The task's full description.
    pub fn task(self) -> Task {
        let binary = || strings(&["0", "1"]);
        let nli3 = || strings(&["contradiction", "entailment", "neutral"]);
        let nli2 = || strings(&["entailment", "not_entailment"]);
        let cls = |labels: Vec<String>| Target::Classification { labels };
        let name = self.name();
        let (dir, input, target, metrics, splits, submission): (
            &str,
            _,
            _,
            Vec<Metric>,
            Vec<SplitSpec>,
            Vec<SubmissionFile>,
        ) = match self {
            BuiltinTask::Cola => {
                // train/dev: no header; source, label, original label, sentence.
                let labelled = Layout {
                    header: false,
                    columns: Some(4),
                    text_a: Column::Index(3),
                    label: Some(Column::Index(1)),
                    ..Layout::tsv_header("sentence", None, None, None)
                };
                (
                    "CoLA",
                    InputKind::Single,
                    cls(binary()),
                    vec![Metric::Mcc],
                    vec![
                        split("train", SplitRole::Train, "train.tsv", labelled.clone()),
                        split("dev", SplitRole::Dev, "dev.tsv", labelled),
                        split(
                            "test",
                            SplitRole::Test,
                            "test.tsv",
                            Layout::tsv_header("sentence", None, None, Some("index")),
                        ),
                    ],
                    submit(name),
                )
            }
            BuiltinTask::Sst2 => (
                "SST-2",
                InputKind::Single,
                cls(binary()),
                vec![Metric::Accuracy],
                train_dev_test(
                    Layout::tsv_header("sentence", None, Some("label"), None),
                    Layout::tsv_header("sentence", None, None, Some("index")),
                ),
                submit(name),
            ),
            BuiltinTask::Mrpc => (
                "MRPC",
                InputKind::Pair,
                cls(binary()),
                vec![Metric::F1, Metric::Accuracy],
                train_dev_test(
                    Layout::tsv_header("#1 String", Some("#2 String"), Some("Quality"), None),
                    Layout::tsv_header("#1 String", Some("#2 String"), None, Some("index")),
                ),
                submit(name),
            ),
            BuiltinTask::Qqp => (
                "QQP",
                InputKind::Pair,
                cls(binary()),
                vec![Metric::Accuracy, Metric::F1],
                train_dev_test(
                    Layout::tsv_header(
                        "question1",
                        Some("question2"),
                        Some("is_duplicate"),
                        Some("id"),
                    ),
                    Layout::tsv_header("question1", Some("question2"), None, Some("id")),
                ),
                submit(name),
            ),
            BuiltinTask::Stsb => (
                "STS-B",
                InputKind::Pair,
                Target::Regression,
                vec![Metric::Pearson, Metric::Spearman],
                train_dev_test(
                    Layout::tsv_header(
                        "sentence1",
                        Some("sentence2"),
                        Some("score"),
                        Some("index"),
                    ),
                    Layout::tsv_header("sentence1", Some("sentence2"), None, Some("index")),
                ),
                submit(name),
            ),
            BuiltinTask::Mnli => {
                let labelled = Layout::tsv_header(
                    "sentence1",
                    Some("sentence2"),
                    Some("gold_label"),
                    Some("index"),
                );
                let test = Layout::tsv_header("sentence1", Some("sentence2"), None, Some("index"));
                (
                    "MNLI",
                    InputKind::Pair,
                    cls(nli3()),
                    vec![Metric::Accuracy],
                    vec![
                        split("train", SplitRole::Train, "train.tsv", labelled.clone()),
                        split(
                            "dev_matched",
                            SplitRole::Dev,
                            "dev_matched.tsv",
                            labelled.clone(),
                        ),
                        split(
                            "dev_mismatched",
                            SplitRole::Dev,
                            "dev_mismatched.tsv",
                            labelled,
                        ),
                        split(
                            "test_matched",
                            SplitRole::Test,
                            "test_matched.tsv",
                            test.clone(),
                        ),
                        split(
                            "test_mismatched",
                            SplitRole::Test,
                            "test_mismatched.tsv",
                            test,
                        ),
                    ],
                    vec![
                        SubmissionFile {
                            split: "test_matched".into(),
                            file: "MNLI-m.tsv".into(),
                            model_task: None,
                        },
                        SubmissionFile {
                            split: "test_mismatched".into(),
                            file: "MNLI-mm.tsv".into(),
                            model_task: None,
                        },
                    ],
                )
            }
            BuiltinTask::Qnli => (
                "QNLI",
                InputKind::Pair,
                cls(nli2()),
                vec![Metric::Accuracy],
                train_dev_test(
                    Layout::tsv_header("question", Some("sentence"), Some("label"), Some("index")),
                    Layout::tsv_header("question", Some("sentence"), None, Some("index")),
                ),
                submit(name),
            ),
            BuiltinTask::Rte | BuiltinTask::Wnli => (
                if self == BuiltinTask::Rte {
                    "RTE"
                } else {
                    "WNLI"
                },
                InputKind::Pair,
                cls(if self == BuiltinTask::Rte {
                    nli2()
                } else {
                    binary()
                }),
                vec![Metric::Accuracy],
                train_dev_test(
                    Layout::tsv_header(
                        "sentence1",
                        Some("sentence2"),
                        Some("label"),
                        Some("index"),
                    ),
                    Layout::tsv_header("sentence1", Some("sentence2"), None, Some("index")),
                ),
                submit(name),
            ),
            BuiltinTask::Ax => (
                "diagnostic",
                InputKind::Pair,
                cls(nli3()),
                vec![Metric::Mcc],
                vec![
                    // The labelled release (`diagnostic-full.tsv`) is the AX dev set in effect.
                    split(
                        "full",
                        SplitRole::Dev,
                        "diagnostic-full.tsv",
                        Layout::tsv_header("Premise", Some("Hypothesis"), Some("Label"), None),
                    ),
                    split(
                        "test",
                        SplitRole::Test,
                        "diagnostic.tsv",
                        Layout::tsv_header("sentence1", Some("sentence2"), None, Some("index")),
                    ),
                ],
                vec![SubmissionFile {
                    split: "test".into(),
                    file: "AX.tsv".into(),
                    model_task: Some("MNLI".into()),
                }],
            ),
            BuiltinTask::Snli => {
                let jsonl = Layout {
                    format: FileFormat::Jsonl,
                    skip_labels: vec!["-".into()],
                    ..Layout::tsv_header(
                        "sentence1",
                        Some("sentence2"),
                        Some("gold_label"),
                        Some("pairID"),
                    )
                };
                let txt = Layout {
                    skip_labels: vec!["-".into()],
                    ..Layout::tsv_header(
                        "sentence1",
                        Some("sentence2"),
                        Some("gold_label"),
                        Some("pairID"),
                    )
                };
                let snli = |name: &str, role| SplitSpec {
                    name: name.into(),
                    role,
                    sources: vec![
                        Source {
                            file: format!("snli_1.0_{name}.jsonl"),
                            layout: jsonl.clone(),
                        },
                        Source {
                            file: format!("snli_1.0_{name}.txt"),
                            layout: txt.clone(),
                        },
                    ],
                };
                (
                    "SNLI",
                    InputKind::Pair,
                    cls(nli3()),
                    vec![Metric::Accuracy],
                    vec![
                        snli("train", SplitRole::Train),
                        snli("dev", SplitRole::Dev),
                        snli("test", SplitRole::Test),
                    ],
                    vec![],
                )
            }
        };
        let submission_labels = target.labels().to_vec();
        Task {
            name: name.to_owned(),
            dir: dir.to_owned(),
            input,
            target,
            metrics,
            splits,
            submission,
            submission_labels,
            symmetric: matches!(
                self,
                BuiltinTask::Mrpc | BuiltinTask::Qqp | BuiltinTask::Stsb
            ),
        }
    }
}

impl std::fmt::Display for BuiltinTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BuiltinTask {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        BuiltinTask::parse(s)
    }
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

fn split(name: &str, role: SplitRole, file: &str, layout: Layout) -> SplitSpec {
    SplitSpec {
        name: name.into(),
        role,
        sources: vec![Source {
            file: file.into(),
            layout,
        }],
    }
}

fn train_dev_test(labelled: Layout, test: Layout) -> Vec<SplitSpec> {
    vec![
        split("train", SplitRole::Train, "train.tsv", labelled.clone()),
        split("dev", SplitRole::Dev, "dev.tsv", labelled),
        split("test", SplitRole::Test, "test.tsv", test),
    ]
}

fn submit(name: &str) -> Vec<SubmissionFile> {
    vec![SubmissionFile {
        split: "test".into(),
        file: format!("{name}.tsv"),
        model_task: None,
    }]
}
