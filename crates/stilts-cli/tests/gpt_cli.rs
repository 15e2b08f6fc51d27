//! The inspection commands on a Hugging Face GPT directory that holds only `config.json`,
//! `model.safetensors`, `vocab.json` and `merges.txt` (the tiny random GPT of
//! `scripts/make_gpt_fixtures.py`), against transformers' outputs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::mrpc_world;
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

/// Fine-tuning the Hugging Face directory: the encoder family comes from its `config.json`,
/// MRPC's pairs are read in both orders, and the saved model (BPE tables beside it) is what
/// `predict` and `eval` read, with the run's own dev logits and score.
#[test]
fn a_fine_tuned_gpt_is_read_back_by_predict_and_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let records = mrpc_world(tmp.path());
    let experiment = tmp.path().join("gpt-mrpc.toml");
    std::fs::write(
        &experiment,
        format!(
            "output_dir = \"{out}\"\nseed = 3\n[model]\npretrained = \"{model}\"\n\
             [data]\nglue_dir = \"{glue}\"\n\
             [recipe]\nbatch_size = 8\nmax_seq_len = 32\nepochs = 2\n\
             [[phases]]\ntasks = [\"MRPC\"]\n",
            out = tmp.path().join("out").display(),
            model = hf_dir(tmp.path()).display(),
            glue = tmp.path().join("glue").display(),
        ),
    )
    .unwrap();
    let check = stilts(&["run", "--check", experiment.to_str().unwrap()]);
    let resolved: Value = serde_json::from_slice(&check.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&check.stderr));
    });
    assert_eq!(resolved["encoder"], "gpt");
    assert_eq!(resolved["phases"][0]["tasks"][0]["pair"], "both_orders");
    assert_eq!(resolved["phases"][0]["recipe"]["aux_lm_weight"], 0.5);

    let o = stilts(&["run", experiment.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = tmp.path().join("out/00-MRPC/seed-3");
    let model = run.join("model");
    for f in ["vocab.json", "merges.txt"] {
        assert!(model.join(f).is_file(), "{f} is saved with the model");
    }
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("result.json")).unwrap()).unwrap();
    assert!(result["history"][0]["aux_loss"].as_f64().unwrap() > 0.0);

    let predicted = lines(&stilts(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--input",
        records.to_str().unwrap(),
    ]));
    let logged = result["dev_predictions"][0]["logits"].as_array().unwrap();
    assert_eq!(predicted.len(), logged.len());
    for (p, r) in predicted.iter().zip(logged) {
        for (a, b) in floats(&p["logits"]).iter().zip(floats(r)) {
            assert!((a - b).abs() < TOL, "predict {a} vs the run's {b}");
        }
    }
    let o = stilts(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--task",
        "MRPC",
        "--glue-dir",
        tmp.path().join("glue").to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let scores: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(scores["score"], result["dev_score"]);
}

/// `stilts train` takes GPT's three sizes under `--encoder gpt`, and `--aux-lm-weight`.
#[test]
fn train_flags_build_a_random_gpt() {
    let tmp = tempfile::tempdir().unwrap();
    mrpc_world(tmp.path());
    let out = tmp.path().join("out");
    let args = |random: &'static str| -> Vec<String> {
        [
            "train",
            "--task",
            "MRPC",
            "--encoder",
            "gpt",
            "--random",
            random,
            "--tokenizer",
            fixture().to_str().unwrap(),
            "--glue-dir",
            tmp.path().join("glue").to_str().unwrap(),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--max-seq-len",
            "32",
            "--aux-lm-weight",
            "0",
            "--output-dir",
            out.to_str().unwrap(),
            "--quiet",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let run = |a: Vec<String>| stilts(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args("16,1"));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("3 integers (n_embd,n_layer,n_head)"), "{err}");

    let o = run(args("16,1,2"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let result: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("00-MRPC/seed-1/result.json")).unwrap(),
    )
    .unwrap();
    assert!(
        result["history"][0]
            .get("aux_loss")
            .is_none_or(Value::is_null)
    );
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("00-MRPC/seed-1/model/stilts-model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["encoder"], "gpt");
    assert_eq!(meta["config"]["n_embd"], 16);
}
