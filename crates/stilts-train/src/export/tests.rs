//! Export and validation of GLUE submission files.

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
    let err = export_glue(&[one, two], dir.path(), &ExportOptions { partial: true }).unwrap_err();
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
