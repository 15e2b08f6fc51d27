//! Parameter-efficient runs from the command line: `stilts run` with a `lora` phase writes the
//! modules alone beside the model; `stilts predict --adapter` attaches them to their base;
//! `stilts export merged` folds LoRA into the weights.

mod common;

use std::path::Path;
use std::process::Output;

use common::{stilts, text};

/// Each record's logits.
fn logits(out: &Output) -> Vec<Vec<f64>> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn predict(model: &Path, adapter: Option<&Path>, records: &Path) -> Vec<Vec<f64>> {
    let mut args = vec![
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--input",
        records.to_str().unwrap(),
    ];
    if let Some(a) = adapter {
        args.extend(["--adapter", a.to_str().unwrap()]);
    }
    logits(&stilts(&args))
}

#[test]
fn lora_modules_attach_to_their_base_and_merge_into_it() {
    let tmp = tempfile::tempdir().unwrap();
    let records = common::rte_world(tmp.path());
    let experiment = tmp.path().join("exp.toml");
    std::fs::write(
        &experiment,
        format!(
            r#"
name = "peft"
output_dir = "{out}"
seed = 3
[model]
random = {{ hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64, max_position_embeddings = 32 }}
tokenizer = "{vocab}"
[data]
glue_dir = "{glue}"
[recipe]
batch_size = 8
max_seq_len = 24
epochs = 1
[[phases]]
name = "full"
tasks = ["RTE"]
[[phases]]
name = "lora"
tasks = ["RTE"]
recipe = {{ lr = 1e-2, lora = {{ r = 2, alpha = 4, target_modules = ["query", "value", "intermediate"] }} }}
"#,
            out = tmp.path().join("out").display(),
            vocab = tmp.path().join("vocab.txt").display(),
            glue = tmp.path().join("glue").display(),
        ),
    )
    .unwrap();
    let o = stilts(&["run", experiment.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let base = tmp.path().join("out/00-full/seed-3/model");
    let tuned = tmp.path().join("out/01-lora/seed-3/model");
    let adapter = tmp.path().join("out/01-lora/seed-3/adapter");
    let want = predict(&tuned, None, &records);
    assert_eq!(predict(&base, Some(&adapter), &records), want);

    // `eval` reads them the same way: the run's score.
    let glue = tmp.path().join("glue");
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--task",
            "RTE",
            "--glue-dir",
            glue.to_str().unwrap(),
            "--json",
        ];
        args.extend(extra);
        let o = stilts(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["score"].clone()
    };
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("out/01-lora/seed-3/result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        eval(&["--model", tuned.to_str().unwrap()]),
        result["dev_score"]
    );
    assert_eq!(
        eval(&[
            "--model",
            base.to_str().unwrap(),
            "--adapter",
            adapter.to_str().unwrap()
        ]),
        result["dev_score"]
    );

    // Merged, from the model or from its base and modules: the same logits, no LoRA left.
    for (name, model, modules) in [
        ("merged", &tuned, None),
        ("merged-from-modules", &base, Some(&adapter)),
    ] {
        let out = tmp.path().join(name);
        let mut args = vec![
            "export",
            "merged",
            "--model",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(m) = modules {
            args.extend(["--adapter", m.to_str().unwrap()]);
        }
        let o = stilts(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let meta = std::fs::read_to_string(out.join("stilts-model.json")).unwrap();
        assert!(!meta.contains("lora"), "{meta}");
        for (a, b) in predict(&out, None, &records).iter().zip(&want) {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-5, "{name}: {x} vs {y}");
            }
        }
    }

    // Nothing to merge, and modules on the wrong base, are errors that say so.
    let o = stilts(&[
        "export",
        "merged",
        "--model",
        base.to_str().unwrap(),
        "--out",
        tmp.path().join("nothing").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("no LoRA"), "{}", text(&o.stderr));
    let o = stilts(&[
        "predict",
        "--model",
        tuned.to_str().unwrap(),
        "--adapter",
        adapter.to_str().unwrap(),
        "--input",
        records.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("already carries"),
        "{}",
        text(&o.stderr)
    );
}
