//! The inspection commands on a Hugging Face GPT directory that holds only `config.json`,
//! `model.safetensors`, `vocab.json` and `merges.txt` (the tiny random GPT of
//! `scripts/make_gpt_fixtures.py`), against transformers' outputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const TOL: f64 = 1e-5;

fn stilts(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stilts"))
        .args(args)
        .env("STILTS_LOG", "warn")
        .output()
        .expect("run stilts")
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stilts-models/tests/fixtures/tiny-gpt")
}

/// The four files a user has, alone in a directory.
fn hf_dir(tmp: &Path) -> PathBuf {
    let dir = tmp.join("gpt");
    std::fs::create_dir(&dir).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "vocab.json",
        "merges.txt",
    ] {
        std::fs::copy(fixture().join(f), dir.join(f)).unwrap();
    }
    dir
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A safetensors tensor as f64 values (f32 or i64).
fn tensor(name: &str) -> (Vec<f64>, Vec<usize>) {
    let bytes = std::fs::read(fixture().join("forward.safetensors")).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let info = &header[name];
    let [s, e] = [0, 1].map(|i| info["data_offsets"][i].as_u64().unwrap() as usize);
    let data = &bytes[8 + len + s..8 + len + e];
    let shape = info["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let values = match info["dtype"].as_str().unwrap() {
        "F32" => data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
            .collect(),
        _ => data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
    };
    (values, shape)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn tokenize_and_predict_match_transformers_on_a_plain_hf_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = hf_dir(tmp.path());
    let records = fixture().join("records.jsonl");
    let (ids, shape) = tensor("input_ids");
    let (mask, _) = tensor("attention_mask");
    let [rows, width] = [shape[0], shape[1]];
    let lengths: Vec<usize> = (0..rows)
        .map(|r| mask[r * width..(r + 1) * width].iter().sum::<f64>() as usize)
        .collect();

    let tokenized = lines(&stilts(&[
        "data",
        "tokenize",
        "--tokenizer",
        dir.to_str().unwrap(),
        "--input",
        records.to_str().unwrap(),
        "--no-special-tokens",
    ]));
    assert_eq!(tokenized.len(), rows);
    for (r, line) in tokenized.iter().enumerate() {
        let got = floats(&line["ids"]);
        assert_eq!(got, ids[r * width..r * width + lengths[r]], "record {r}");
        assert_eq!(line["tokens"].as_array().unwrap().len(), lengths[r]);
    }
    // With the fine-tuning frame: start a delimiter b extract, the three ids after the vocabulary.
    let framed = lines(&stilts(&[
        "data",
        "tokenize",
        "--tokenizer",
        dir.join("vocab.json").to_str().unwrap(),
        "--input",
        records.to_str().unwrap(),
    ]));
    let tokens = framed[0]["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), lengths[0] + 3);
    assert_eq!(tokens[0], "_start_");
    assert_eq!(tokens.last().unwrap(), "_classify_");
    assert!(tokens.iter().any(|t| t == "_delimiter_"));

    let predicted = lines(&stilts(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--input",
        records.to_str().unwrap(),
        "--no-special-tokens",
        "--hidden",
        "--lm-logits",
        "--batch-size",
        "3",
    ]));
    let (hidden, hidden_shape) = tensor("last_hidden_state");
    let embd = hidden_shape[2];
    let (lm, lm_shape) = tensor("lm_logits_last");
    let vocab = lm_shape[1];
    let (mut d_hidden, mut d_lm) = (0.0f64, 0.0f64);
    for (r, line) in predicted.iter().enumerate() {
        let at = (r * width + lengths[r] - 1) * embd;
        for (g, w) in floats(&line["hidden"]).iter().zip(&hidden[at..at + embd]) {
            d_hidden = d_hidden.max((g - w).abs());
        }
        for (g, w) in floats(&line["lm_logits"])
            .iter()
            .zip(&lm[r * vocab..(r + 1) * vocab])
        {
            d_lm = d_lm.max((g - w).abs());
        }
        assert_eq!(line["lm_logits"].as_array().unwrap().len(), vocab + 3);
    }
    println!("stilts predict on a GPT: max diff hidden {d_hidden:e}, LM logits {d_lm:e}");
    assert!(d_hidden < TOL && d_lm < TOL);
}
