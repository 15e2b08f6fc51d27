//! ELMo from the command line: `stilts predict --layers` on a directory holding only a released
//! ELMo's options and HDF5 weights (the tiny random model of `scripts/make_elmo_fixtures.py`,
//! named as AllenNLP names its files), against AllenNLP's layers, stateless and stateful across
//! two batches; `stilts train` fine-tuning that directory and building a random ELMo, and
//! `stilts predict` on the saved model.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::mrpc_world;
use safetensors::SafeTensors;

fn stilts(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stilts"))
        .args(args)
        .output()
        .expect("run stilts")
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stilts-models/tests/fixtures/tiny-elmo")
}

/// A model directory as a user has one: nothing but the two released files.
fn release(tmp: &Path) -> PathBuf {
    let dir = tmp.join("elmo");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixture_dir().join("options.json"),
        dir.join("elmo_tiny_options.json"),
    )
    .unwrap();
    std::fs::copy(
        fixture_dir().join("weights.hdf5"),
        dir.join("elmo_tiny_weights.hdf5"),
    )
    .unwrap();
    dir
}

fn sentences(batch: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(fixture_dir().join("sentences.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(value[batch].clone()).unwrap()
}

fn write_input(path: &Path, sentences: &[Vec<String>]) {
    let lines: Vec<String> = sentences
        .iter()
        .map(|s| serde_json::json!({ "text_a": s.join(" ") }).to_string())
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// AllenNLP's `[rows, words + 2, width]` layer, per row its words' vectors (boundaries dropped).
fn reference(name: &str, lengths: &[usize]) -> Vec<Vec<Vec<f32>>> {
    let bytes = std::fs::read(fixture_dir().join("reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor(name).unwrap();
    let [_, seq, width] = [view.shape()[0], view.shape()[1], view.shape()[2]];
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    lengths
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            (1..=len)
                .map(|j| values[(i * seq + j) * width..(i * seq + j + 1) * width].to_vec())
                .collect()
        })
        .collect()
}

fn parse(output: &Output) -> Vec<serde_json::Value> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn assert_close(line: &serde_json::Value, layer: usize, expected: &[Vec<f32>], what: &str) {
    let got: Vec<Vec<f32>> = serde_json::from_value(line["layers"][layer].clone()).unwrap();
    assert_eq!(got.len(), expected.len(), "{what}: words");
    let diff = got
        .iter()
        .flatten()
        .zip(expected.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "{what}: max abs diff {diff:e}");
}

#[test]
fn layers_of_a_released_elmo_match_allennlp_stateless_and_stateful() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = release(tmp.path());
    let (a, b) = (sentences("a"), sentences("b"));
    let input = tmp.path().join("in.jsonl");
    let both: Vec<Vec<String>> = a.iter().chain(&b).cloned().collect();
    write_input(&input, &both);
    let lens = |s: &[Vec<String>]| s.iter().map(Vec::len).collect::<Vec<_>>();
    let (lens_a, lens_b) = (lens(&a), lens(&b));

    // Stateless, one record per batch: each sentence as AllenNLP runs it in its own batch.
    let args = [
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--layers",
        "--pretokenized",
    ];
    let lines = parse(&stilts(&[&args[..], &["--batch-size", "1"]].concat()));
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["words"], serde_json::json!(a[0]));
    for layer in 0..3 {
        let ra = reference(&format!("a.layer_{layer}"), &lens_a);
        let rb = reference(&format!("b.layer_{layer}"), &lens_b);
        for (i, expected) in ra.iter().chain(&rb).enumerate() {
            assert_close(
                &lines[i],
                layer,
                expected,
                &format!("record {i} layer {layer}"),
            );
        }
    }

    // Stateful: batch A (3 records), then batch B starts from A's state.
    let lines = parse(&stilts(
        &[&args[..], &["--batch-size", "3", "--stateful"]].concat(),
    ));
    for layer in 1..3 {
        let rb = reference(&format!("b.stateful.layer_{layer}"), &lens_b);
        for (i, expected) in rb.iter().enumerate() {
            assert_close(
                &lines[3 + i],
                layer,
                expected,
                &format!("stateful record {i} layer {layer}"),
            );
        }
    }
}

#[test]
fn layers_errors_name_the_line_or_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = release(tmp.path());
    let input = tmp.path().join("pairs.jsonl");
    std::fs::write(
        &input,
        "{\"text_a\": \"one\"}\n\n{\"text_a\": \"a\", \"text_b\": \"b\"}\n",
    )
    .unwrap();
    let out = stilts(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--layers",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("pairs.jsonl:3") && err.contains("text_b"),
        "{err}"
    );

    std::fs::write(&input, "{\"text_a\": \"one\"}\n").unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = stilts(&[
        "predict",
        "--model",
        empty.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--layers",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("options"), "{err}");
}

#[test]
fn train_fine_tunes_a_released_elmo_and_builds_a_random_one() {
    let tmp = tempfile::tempdir().unwrap();
    let records = mrpc_world(tmp.path());
    let glue = tmp.path().join("glue");
    let common = |out: &Path| -> Vec<String> {
        let mut v: Vec<String> = [
            "train",
            "--task",
            "MRPC",
            "--glue-dir",
            glue.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec();
        v.extend(
            [
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--output-dir",
                out.to_str().unwrap(),
                "--quiet",
            ]
            .map(str::to_owned),
        );
        v
    };
    let run = |a: Vec<String>| stilts(&a.iter().map(String::as_str).collect::<Vec<_>>());

    let released = release(tmp.path());
    let out = tmp.path().join("released");
    let mut args = common(&out);
    args.extend(["--model".to_owned(), released.to_str().unwrap().to_owned()]);
    let o = run(args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model = out.join("00-MRPC/seed-1/model");
    let o = stilts(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--input",
        records.to_str().unwrap(),
    ]);
    let lines = parse(&o);
    assert_eq!(lines.len(), 16);
    assert_eq!(lines[0]["logits"].as_array().unwrap().len(), 2);
    // The saved model's logits are the run's dev logits, and eval scores what the run kept.
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("00-MRPC/seed-1/result.json")).unwrap(),
    )
    .unwrap();
    let logged = result["dev_predictions"][0]["logits"].as_array().unwrap();
    for (p, r) in lines.iter().zip(logged) {
        let (p, r): (Vec<f32>, Vec<f32>) = (
            serde_json::from_value(p["logits"].clone()).unwrap(),
            serde_json::from_value(r.clone()).unwrap(),
        );
        assert!(
            p.iter().zip(&r).all(|(a, b)| (a - b).abs() < 1e-4),
            "{p:?} vs {r:?}"
        );
    }
    let o = stilts(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--task",
        "MRPC",
        "--glue-dir",
        glue.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let scores: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(scores["score"], result["dev_score"]);
    // The tokenizer the model carries spells each word back.
    let o = stilts(&[
        "data",
        "tokenize",
        "--tokenizer",
        model.to_str().unwrap(),
        "--input",
        records.to_str().unwrap(),
    ]);
    let first = &parse(&o)[0];
    let record: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&records)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let words: Vec<&str> = [&record["text_a"], &record["text_b"]]
        .iter()
        .flat_map(|t| t.as_str().unwrap().split_whitespace())
        .collect();
    let mut want = vec!["<S>"];
    want.extend(&words);
    want.push("</S>");
    assert_eq!(first["tokens"], serde_json::json!(want));
    assert_eq!(first["ids"].as_array().unwrap().len(), 50 * want.len());

    let out = tmp.path().join("random");
    let options = fixture_dir().join("options.json");
    let mut args = common(&out);
    args.extend(["--encoder", "elmo", "--random", "8,16"].map(str::to_owned));
    args.extend([
        "--tokenizer".to_owned(),
        options.to_str().unwrap().to_owned(),
    ]);
    let o = run(args.clone());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("3 integers (projection_dim,cell_size,n_layers)"),
        "{err}"
    );
    let last = args.iter().position(|a| a == "8,16").unwrap();
    args[last] = "8,16,1".to_owned();
    let o = run(args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("00-MRPC/seed-1/model/stilts-model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["encoder"], "elmo");
    assert_eq!(meta["config"]["projection_dim"], 8);
}
