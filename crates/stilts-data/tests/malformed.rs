//! The corpus in `tests/data/malformed/`: each bad file gives an error naming the file, the line
//! and (where one field is at fault) the field; `skip_malformed` drops and counts instead.

use std::path::{Path, PathBuf};

use stilts_data::custom::load_task_file;
use stilts_data::dataset::read_file;
use stilts_data::{BuiltinTask, DataError, Label, LoadOptions, RowProblem, Task};

fn corpus(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/malformed")
        .join(file)
}

fn mnli_subset() -> Task {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/tasks/mnli_subset.toml");
    load_task_file(&path).unwrap()
}

fn read(
    task: &Task,
    split: &str,
    file: &str,
    opts: LoadOptions,
) -> Result<stilts_data::dataset::FileContents, DataError> {
    let layout = &task.split(split).unwrap().sources[0].layout;
    read_file(&corpus(file), layout, &task.target, opts)
}

/// (task, split whose layout reads the file, file, line, field, message fragment)
type Case = (
    Task,
    &'static str,
    &'static str,
    u64,
    Option<&'static str>,
    &'static str,
);

fn cases() -> Vec<Case> {
    let rte = BuiltinTask::Rte.task();
    let stsb = BuiltinTask::Stsb.task();
    let cola = BuiltinTask::Cola.task();
    let mnli = mnli_subset();
    vec![
        (
            rte.clone(),
            "train",
            "rte_column_count.tsv",
            3,
            None,
            "expected 4 columns, found 3",
        ),
        (
            rte.clone(),
            "train",
            "rte_unknown_label.tsv",
            4,
            Some("label"),
            "unknown label `entailed` (expected one of: entailment, not_entailment)",
        ),
        (
            rte.clone(),
            "train",
            "rte_invalid_utf8.tsv",
            3,
            None,
            "invalid UTF-8",
        ),
        (
            rte.clone(),
            "train",
            "rte_duplicate_id.tsv",
            3,
            Some("index"),
            "duplicate id `7` (first seen on line 2)",
        ),
        (
            stsb.clone(),
            "train",
            "stsb_bad_score.tsv",
            3,
            Some("score"),
            "cannot parse `four` as a number",
        ),
        (
            stsb,
            "train",
            "stsb_nan_score.tsv",
            2,
            Some("score"),
            "score NaN is not finite",
        ),
        (
            cola.clone(),
            "train",
            "cola_column_count.tsv",
            2,
            None,
            "expected 4 columns, found 3",
        ),
        (
            cola,
            "train",
            "cola_unknown_label.tsv",
            2,
            Some("column 1"),
            "unknown label `2`",
        ),
        (
            mnli.clone(),
            "dev_matched",
            "mnli_missing_text.jsonl",
            2,
            Some("hypothesis"),
            "missing",
        ),
        (
            mnli.clone(),
            "dev_matched",
            "mnli_bad_json.jsonl",
            2,
            None,
            "invalid JSON",
        ),
        (
            mnli.clone(),
            "dev_matched",
            "mnli_not_object.jsonl",
            2,
            None,
            "expected a JSON object, found array",
        ),
        (
            mnli.clone(),
            "train",
            "records_wrong_label.json",
            7,
            Some("label"),
            "unknown label `ENTAILMENT`",
        ),
        (
            mnli.clone(),
            "train",
            "records_nested.json",
            2,
            Some("text_b"),
            "expected a string or number, found array",
        ),
        (
            mnli,
            "train",
            "records_truncated.json",
            4,
            None,
            "invalid JSON",
        ),
    ]
}

#[test]
fn each_malformed_file_names_file_line_and_field() {
    for (task, split, file, line, field, fragment) in cases() {
        let err = read(&task, split, file, LoadOptions::default())
            .err()
            .unwrap_or_else(|| panic!("{file}: loaded without error"));
        let loc = err
            .location()
            .unwrap_or_else(|| panic!("{file}: no row location in {err}"));
        assert_eq!(loc.path, corpus(file), "{file}");
        assert_eq!(
            (loc.line, loc.field.as_deref()),
            (line, field),
            "{file}: {err}"
        );
        let msg = err.to_string();
        assert!(msg.contains(fragment), "{file}: {msg:?} lacks {fragment:?}");
        let prefix = format!("{}:{line}", corpus(file).display());
        assert!(
            msg.starts_with(&prefix),
            "{file}: {msg:?} should start with {prefix:?}"
        );
    }
}

#[test]
fn skip_malformed_drops_and_counts_bad_rows() {
    let rte = BuiltinTask::Rte.task();
    let opts = LoadOptions {
        skip_malformed: true,
    };
    let got = read(&rte, "train", "rte_unknown_label.tsv", opts).unwrap();
    assert_eq!(got.examples.len(), 2);
    assert_eq!(got.skipped_malformed.len(), 1);
    assert_eq!(got.skipped_malformed[0].location.line, 4);
    assert!(matches!(
        got.skipped_malformed[0].problem,
        RowProblem::UnknownLabel { .. }
    ));

    let got = read(&rte, "train", "rte_invalid_utf8.tsv", opts).unwrap();
    assert_eq!((got.examples.len(), got.skipped_malformed.len()), (1, 1));
    let got = read(&rte, "train", "rte_column_count.tsv", opts).unwrap();
    assert_eq!((got.examples.len(), got.skipped_malformed.len()), (1, 1));
}

#[test]
fn file_level_problems_name_the_file() {
    let rte = BuiltinTask::Rte.task();
    let err = read(
        &rte,
        "train",
        "rte_missing_column.tsv",
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, DataError::MissingColumn { column, .. } if column == "label"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("rte_missing_column.tsv: header lacks column `label`"),
        "{err}"
    );

    let err = read(&rte, "train", "rte_empty.tsv", LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::EmptyFile { .. }), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    let err = rte
        .load(tmp.path(), "dev", LoadOptions::default())
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::MissingFile { .. }), "{msg}");
    assert!(
        msg.contains("dev.tsv: file not found") && msg.contains("split `dev` of RTE"),
        "{msg}"
    );

    let err = rte
        .load(tmp.path(), "validation", LoadOptions::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("task RTE has no split `validation` (splits: train, dev, test)"),
        "{err}"
    );
}

#[test]
fn crlf_bom_and_missing_final_newline_are_read() {
    let rte = BuiltinTask::Rte.task();
    let got = read(&rte, "train", "rte_crlf_bom.tsv", LoadOptions::default()).unwrap();
    assert_eq!(got.examples.len(), 2);
    assert_eq!(got.examples[1].label, Some(Label::Class(1)));
    assert_eq!(got.examples[1].text_b.as_deref(), Some("D."));
}

#[test]
fn snli_rows_without_gold_label_are_counted_not_loaded() {
    let snli = BuiltinTask::Snli.task();
    let got = read(
        &snli,
        "train",
        "snli_dash_labels.jsonl",
        LoadOptions::default(),
    )
    .unwrap();
    let ids: Vec<&str> = got.examples.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["p1", "p3"]);
    assert_eq!(got.skipped_unlabelled, 1);
}
