//! `stilts predict` as a user runs it, checked against Hugging Face's outputs in the committed
//! parity fixtures of `stilts-models` (made by `scripts/make_bert_fixtures.py` on RTE dev rows
//! 0, 4, 8, 2, the records of `tests/fixtures/rte_dev_0_4_8_2.jsonl`).
//!
//! The tiny random BERT runs everywhere; the all-MiniLM-L6-v2 test needs `STILTS_MINILM_DIR`
//! (skips when unset).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const TOL: f32 = 1e-5;

fn stilts(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stilts"))
        .args(args)
        .env("STILTS_LOG", "warn")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run stilts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn records() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rte_dev_0_4_8_2.jsonl")
}

fn model_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stilts-models/tests/fixtures")
}

/// A safetensors file read by hand: name -> (dtype, shape, raw little-endian bytes).
type Tensors = BTreeMap<String, (String, Vec<usize>, Vec<u8>)>;

fn read_safetensors(path: &Path) -> Tensors {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: BTreeMap<String, Value> = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let data = &bytes[8 + len..];
    header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, info)| {
            let dtype = info["dtype"].as_str().unwrap().to_owned();
            let shape = info["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let [start, end] = [0, 1].map(|i| info["data_offsets"][i].as_u64().unwrap() as usize);
            (name, (dtype, shape, data[start..end].to_vec()))
        })
        .collect()
}

fn write_safetensors(path: &Path, tensors: &Tensors) {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, (dtype, shape, data)) in tensors {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + data.len()]}),
        );
        offset += data.len();
    }
    let mut header = serde_json::to_vec(&Value::Object(header)).unwrap();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    for (_, _, data) in tensors.values() {
        out.extend_from_slice(data);
    }
    std::fs::write(path, out).unwrap();
}

fn f32s(tensors: &Tensors, name: &str) -> (Vec<f32>, Vec<usize>) {
    let (dtype, shape, data) = tensors
        .get(name)
        .unwrap_or_else(|| panic!("fixture has no {name}"));
    assert_eq!(dtype, "F32", "{name}");
    let values = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (values, shape.clone())
}

/// The JSON lines of a successful `stilts predict`.
fn predict(args: &[&str]) -> Vec<Value> {
    let out = stilts(args);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect()
}

/// Largest difference between each line's `field` and the rows of `expected`.
fn max_diff(lines: &[Value], field: &str, expected: &[f32], width: usize) -> f32 {
    assert_eq!(lines.len() * width, expected.len(), "{field}: row count");
    lines
        .iter()
        .zip(expected.chunks(width))
        .flat_map(|(line, row)| {
            let got = floats(&line[field]);
            assert_eq!(got.len(), width, "{field}: width");
            got.into_iter().zip(row).map(|(a, b)| (a - b).abs())
        })
        .fold(0.0, f32::max)
}

/// `[batch, seq, hidden]` -> the `[batch, hidden]` rows of position 0.
fn cls_rows((values, shape): &(Vec<f32>, Vec<usize>)) -> Vec<f32> {
    let [batch, seq, hidden] = [shape[0], shape[1], shape[2]];
    (0..batch)
        .flat_map(|b| values[b * seq * hidden..b * seq * hidden + hidden].to_vec())
        .collect()
}

#[test]
fn tiny_bert_matches_hf() {
    let dir = model_fixtures().join("tiny-bert");
    let expected = read_safetensors(&dir.join("forward.safetensors"));
    let (logits, shape) = f32s(&expected, "logits");
    assert_eq!(shape, [4, 3]);
    let hidden = cls_rows(&f32s(&expected, "last_hidden_state"));
    // Batch sizes 4 (one batch) and 3 (two batches, padded differently) must agree with HF.
    for batch in ["4", "3"] {
        let lines = predict(&[
            "predict",
            "--model",
            dir.to_str().unwrap(),
            "--input",
            records().to_str().unwrap(),
            "--max-seq-len",
            "64",
            "--batch-size",
            batch,
            "--hidden",
        ]);
        assert_eq!(lines.len(), 4);
        let d_logits = max_diff(&lines, "logits", &logits, 3);
        let d_hidden = max_diff(&lines, "hidden", &hidden, 32);
        assert!(
            d_logits < TOL,
            "batch {batch}: logits differ by {d_logits:e}"
        );
        assert!(
            d_hidden < TOL,
            "batch {batch}: hidden differs by {d_hidden:e}"
        );
    }
    // Without --hidden only logits are printed; the head size comes from config.json.
    let lines = predict(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--input",
        records().to_str().unwrap(),
        "--max-seq-len",
        "64",
    ]);
    assert!(lines.iter().all(|l| l.get("hidden").is_none()));
    assert_eq!(floats(&lines[0]["logits"]).len(), 3);
}

#[test]
fn bad_input_names_file_line_and_field() {
    let dir = model_fixtures().join("tiny-bert");
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("bad.jsonl");
    std::fs::write(
        &input,
        "{\"text_a\": \"fine\"}\n\n{\"text_b\": \"no first text\"}\n",
    )
    .unwrap();
    let out = stilts(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.jsonl:3: field `text_a`: missing"),
        "{stderr}"
    );

    std::fs::write(&input, "{\"text_a\": [1]}\n").unwrap();
    let out = stilts(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.jsonl:1: field `text_a`: expected a string, found an array"),
        "{stderr}"
    );

    // A model name that is neither a directory nor a hub id.
    std::fs::write(&input, "{\"text_a\": \"fine\"}\n").unwrap();
    let out = stilts(&[
        "predict",
        "--model",
        "no such model",
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no such model"));

    // A device this build lacks says which feature to enable.
    let out = stilts(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--device",
        "tch-cuda:0",
        "--max-seq-len",
        "64",
    ]);
    if !out.status.success() {
        assert!(text(&out.stderr).contains("tch"), "{}", text(&out.stderr));
    }
}

#[test]
fn minilm_matches_hf() {
    let Some(minilm) = std::env::var_os("STILTS_MINILM_DIR").map(PathBuf::from) else {
        eprintln!("STILTS_MINILM_DIR is unset: skipping");
        return;
    };
    let expected = read_safetensors(&model_fixtures().join("minilm/expected.safetensors"));
    let (logits, _) = f32s(&expected, "logits");
    let hidden = cls_rows(&f32s(&expected, "last_hidden_state"));

    // MiniLM with the fixture's seeded 2-label head added to its checkpoint.
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("minilm-with-head");
    std::fs::create_dir(&model).unwrap();
    for file in [
        "config.json",
        "tokenizer.json",
        "vocab.txt",
        "tokenizer_config.json",
    ] {
        std::fs::copy(minilm.join(file), model.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let mut weights = read_safetensors(&minilm.join("model.safetensors"));
    for name in ["classifier.weight", "classifier.bias"] {
        weights.insert(name.to_owned(), expected[name].clone());
    }
    write_safetensors(&model.join("model.safetensors"), &weights);

    let lines = predict(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--input",
        records().to_str().unwrap(),
        "--hidden",
        "--num-labels",
        "2",
        "--batch-size",
        "3",
    ]);
    let d_logits = max_diff(&lines, "logits", &logits, 2);
    let d_hidden = max_diff(&lines, "hidden", &hidden, 384);
    println!("MiniLM predict: max abs diff logits {d_logits:e}, [CLS] hidden {d_hidden:e}");
    assert!(d_logits < TOL, "logits differ by {d_logits:e}");
    assert!(d_hidden < TOL, "hidden differs by {d_hidden:e}");

    // The released directory itself (no head): hidden states still match, with a warning.
    let out = stilts(&[
        "predict",
        "--model",
        minilm.to_str().unwrap(),
        "--input",
        records().to_str().unwrap(),
        "--hidden",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("freshly initialised"),
        "{}",
        text(&out.stderr)
    );
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(max_diff(&lines, "hidden", &hidden, 384) < TOL);
}
