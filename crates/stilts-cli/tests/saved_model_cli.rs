//! One saved model, read by every command: what `stilts train` writes is what `stilts predict`
//! and `stilts eval` take, with the tokenizer saved beside it, and a model saved before the
//! encoder seam (`stilts-train/tests/fixtures/model-v0`) still works with both.

use std::path::Path;
use std::process::Output;

mod common;

use common::{rte_world as world, stilts, text};

fn lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_trained_model_is_read_by_predict_and_eval_without_more_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let records = world(tmp.path());
    let out = tmp.path().join("run");
    let o = stilts(&[
        "train",
        "--task",
        "RTE",
        "--random",
        "32,2,2,64",
        "--tokenizer",
        tmp.path().join("vocab.txt").to_str().unwrap(),
        "--glue-dir",
        tmp.path().join("glue").to_str().unwrap(),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--max-seq-len",
        "24",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let model = out.join("00-RTE/seed-1/model");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("stilts-model.json")).unwrap())
            .unwrap();
    assert_eq!(meta["format_version"], 1);
    assert_eq!(meta["encoder"], "bert");
    assert_eq!(meta["max_seq_len"], 24);
    assert!(model.join("vocab.txt").is_file());
    assert!(!model.join("classifier").exists());

    // `predict` takes the model directory as it is: its tokenizer and trained length.
    let predicted = lines(&stilts(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--input",
        records.to_str().unwrap(),
        "--hidden",
    ]));
    assert_eq!(predicted.len(), 16);
    assert_eq!(predicted[0]["logits"].as_array().unwrap().len(), 2);
    assert_eq!(predicted[0]["hidden"].as_array().unwrap().len(), 32);

    // `eval` needs no --tokenizer; its predictions are predict's.
    let o = stilts(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--task",
        "RTE",
        "--glue-dir",
        tmp.path().join("glue").to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let scores: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("00-RTE/seed-1/result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(scores["score"], result["dev_score"]);
    for (p, r) in predicted
        .iter()
        .zip(result["dev_predictions"][0]["logits"].as_array().unwrap())
    {
        for (a, b) in p["logits"]
            .as_array()
            .unwrap()
            .iter()
            .zip(r.as_array().unwrap())
        {
            assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-5);
        }
    }
}

#[test]
fn a_model_saved_before_the_seam_predicts_from_its_directory_and_its_classifier() {
    let tmp = tempfile::tempdir().unwrap();
    let records = world(tmp.path());
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../stilts-train/tests/fixtures/model-v0");
    let whole = lines(&stilts(&[
        "predict",
        "--model",
        fixture.to_str().unwrap(),
        "--input",
        records.to_str().unwrap(),
        "--max-seq-len",
        "32",
    ]));
    // Its `classifier/` copy has no tokenizer of its own: the one above it is used.
    let classifier = lines(&stilts(&[
        "predict",
        "--model",
        fixture.join("classifier").to_str().unwrap(),
        "--input",
        records.to_str().unwrap(),
        "--max-seq-len",
        "32",
    ]));
    assert_eq!(whole, classifier);
    assert_eq!(whole.len(), 16);
}

#[test]
fn impossible_random_sizes_are_errors_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    world(tmp.path());
    let o = stilts(&[
        "train",
        "--task",
        "RTE",
        "--random",
        "32,2,2,0",
        "--tokenizer",
        tmp.path().join("vocab.txt").to_str().unwrap(),
        "--glue-dir",
        tmp.path().join("glue").to_str().unwrap(),
        "--output-dir",
        tmp.path().join("o").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("`model.random`") && err.contains("intermediate_size must be positive"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
