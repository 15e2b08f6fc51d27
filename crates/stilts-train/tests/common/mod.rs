//! A tiny world for fast training tests: a 40-token vocabulary, RTE-layout TSV files of a
//! learnable synthetic task (entailment iff the hypothesis says "yes"), and a 2-layer,
//! 32-wide random BERT.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use stilts_train::config::{Experiment, ExperimentFile};

pub const WORDS: &[&str] = &[
    "the", "cat", "dog", "sat", "on", "mat", "ran", "far", "big", "small", "red", "blue", "a",
    "house", "tree", "bird", "sky", "sun", "moon", "star", "car", "road", "fast", "slow", "up",
    "down", "yes", "no", "maybe", "ok",
];

/// Writes `vocab.txt` and `glue/RTE/{train,dev,test}.tsv` under `root`.
pub fn world(root: &Path, train: usize, dev: usize) -> PathBuf {
    let mut vocab = String::from("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for w in WORDS {
        writeln!(vocab, "{w}").unwrap();
    }
    std::fs::write(root.join("vocab.txt"), vocab).unwrap();
    let rte = root.join("glue/RTE");
    std::fs::create_dir_all(&rte).unwrap();
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let mut split = |name: &str, n: usize, labelled: bool| {
        let mut text = if labelled {
            String::from("index\tsentence1\tsentence2\tlabel\n")
        } else {
            String::from("index\tsentence1\tsentence2\n")
        };
        for i in 0..n {
            let len_a = 3 + next() % 8;
            let a: Vec<&str> = (0..len_a).map(|_| WORDS[next() % 26]).collect();
            let yes = next() % 2 == 0;
            let len_b = 1 + next() % 4;
            let mut b: Vec<&str> = (0..len_b).map(|_| WORDS[next() % 26]).collect();
            b.insert(next() % (b.len() + 1), if yes { "yes" } else { "no" });
            let label = if yes { "entailment" } else { "not_entailment" };
            if labelled {
                writeln!(text, "{i}\t{}\t{}\t{label}", a.join(" "), b.join(" ")).unwrap();
            } else {
                writeln!(text, "{i}\t{}\t{}", a.join(" "), b.join(" ")).unwrap();
            }
        }
        std::fs::write(rte.join(format!("{name}.tsv")), text).unwrap();
    };
    split("train", train, true);
    split("dev", dev, true);
    split("test", dev, false);
    root.to_path_buf()
}

/// An experiment TOML over the tiny world; `phases` is appended verbatim.
pub fn experiment_toml(root: &Path, out: &str, phases: &str) -> String {
    format!(
        r#"
name = "tiny"
output_dir = "{out}"
seed = 7

[model]
random = {{ hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64, max_position_embeddings = 64 }}
tokenizer = "{vocab}"

[data]
glue_dir = "{glue}"
extra_dir = "{extra}"

[recipe]
batch_size = 8
lr = 1e-3
max_seq_len = 32
epochs = 2
{phases}
"#,
        out = root.join(out).display(),
        vocab = root.join("vocab.txt").display(),
        glue = root.join("glue").display(),
        extra = root.join("extra").display(),
    )
}

/// Parses and resolves a TOML experiment.
pub fn resolve(text: &str) -> stilts_train::Result<Experiment> {
    let file: ExperimentFile =
        toml::from_str(text).map_err(|e| stilts_train::TrainError::Toml {
            path: "test.toml".into(),
            source: Box::new(e),
        })?;
    Experiment::from_file(&file, Path::new("test.toml"), "test")
}

/// Adds a 3-label custom task `NLI3` (jsonl, under `extra/nli3`) whose label follows the
/// hypothesis word yes/no/maybe; returns the task file.
pub fn nli3(root: &Path, train: usize, dev: usize) -> PathBuf {
    let dir = root.join("extra/nli3");
    std::fs::create_dir_all(&dir).unwrap();
    let mut state = 777u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    for (name, n) in [("train", train), ("dev", dev)] {
        let mut text = String::new();
        for _ in 0..n {
            let a: Vec<&str> = (0..3 + next() % 6).map(|_| WORDS[next() % 26]).collect();
            let (word, label) = match next() % 3 {
                0 => ("no", "contradiction"),
                1 => ("yes", "entailment"),
                _ => ("maybe", "neutral"),
            };
            let b = format!("{} {word}", WORDS[next() % 26]);
            writeln!(
                text,
                r#"{{"p": "{}", "h": "{b}", "l": "{label}"}}"#,
                a.join(" ")
            )
            .unwrap();
        }
        std::fs::write(dir.join(format!("{name}.jsonl")), text).unwrap();
    }
    let file = root.join("nli3.toml");
    std::fs::write(
        &file,
        r#"
name = "NLI3"
dir = "nli3"
input = "pair"
labels = ["contradiction", "entailment", "neutral"]
[format]
format = "jsonl"
text_a = "p"
text_b = "h"
label = "l"
[[splits]]
name = "train"
file = "train.jsonl"
[[splits]]
name = "dev"
file = "dev.jsonl"
"#,
    )
    .unwrap();
    file
}

/// A run's `result.json` under an experiment's output directory (`dir`: `NN-<phase>/seed-<s>`).
pub fn result(out: &Path, dir: &str) -> serde_json::Value {
    let path = out.join(dir).join("result.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Each epoch's training loss of a run's result.
pub fn train_losses(result: &serde_json::Value) -> Vec<f64> {
    result["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["train_loss"].as_f64().unwrap())
        .collect()
}

/// The result without what differs between an uninterrupted and a resumed run.
pub fn comparable(mut v: serde_json::Value) -> serde_json::Value {
    let o = v.as_object_mut().unwrap();
    for k in ["wall_s", "examples_per_s", "resumed", "epoch_times"] {
        o.remove(k);
    }
    v
}

/// Panics (as a kill would stop the process) at the `at`-th optimizer step it sees.
pub struct KillAt {
    pub at: u64,
    pub seen: u64,
}

impl stilts_train::observer::Observer for KillAt {
    fn step(&mut self, _e: &stilts_train::observer::StepEvent) {
        self.seen += 1;
        if self.seen == self.at {
            panic!("killed at step {}", self.seen);
        }
    }
}

/// The logits of two fixed pairs from a model directory, with a module directory attached
/// when one is given.
pub fn logits(dir: &Path, adapter: Option<&Path>) -> Vec<Vec<f32>> {
    use stilts_train::predict::{PredictOptions, PredictRecord, Predictor};
    let records = [("cats sing", "dogs yes"), ("a b c", "no")].map(|(a, b)| PredictRecord {
        text_a: a.into(),
        text_b: Some(b.into()),
    });
    let options = PredictOptions {
        adapter: adapter.map(Path::to_path_buf),
        ..PredictOptions::default()
    };
    let (p, _) = Predictor::load(dir, &options, &burn::tensor::Device::flex()).unwrap();
    p.predict(&records)
        .unwrap()
        .into_iter()
        .map(|p| p.logits)
        .collect()
}
