//! What several CLI tests build: small GLUE-layout worlds.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const WORDS: &[&str] = &[
    "the", "cat", "dog", "sat", "on", "mat", "ran", "far", "big", "red",
];

/// `glue/MRPC/{train,dev}.tsv` (a paraphrase iff the second sentence repeats the first word
/// of the first) and the dev pairs as prediction records.
pub fn mrpc_world(root: &Path) -> PathBuf {
    let dir = root.join("glue/MRPC");
    std::fs::create_dir_all(&dir).unwrap();
    let mut records = String::new();
    for (name, n) in [("train", 48), ("dev", 16)] {
        let mut tsv = String::from("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n");
        for i in 0..n {
            let w = |k: usize| WORDS[(i * 7 + k * 3 + i / 5) % WORDS.len()];
            let a = format!("{} {} {}", w(0), w(1), w(2));
            let same = (i + i / 3) % 2 == 0;
            let b = format!("{} {}", if same { w(0) } else { w(4) }, w(5));
            tsv.push_str(&format!(
                "{}\t{}\t{}\t{a}\t{b}\n",
                u8::from(same),
                2 * i,
                2 * i + 1
            ));
            if name == "dev" {
                records.push_str(&format!("{{\"text_a\": \"{a}\", \"text_b\": \"{b}\"}}\n"));
            }
        }
        std::fs::write(dir.join(format!("{name}.tsv")), tsv).unwrap();
    }
    std::fs::write(root.join("dev.jsonl"), records).unwrap();
    root.join("dev.jsonl")
}

const RTE_WORDS: &[&str] = &["the", "cat", "dog", "sat", "on", "mat", "ran", "yes", "no"];

/// vocab.txt, glue/RTE/{train,dev}.tsv (entailment iff the hypothesis says yes) and the same
/// dev pairs as prediction records.
pub fn rte_world(root: &Path) -> PathBuf {
    let mut vocab = String::from("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for w in RTE_WORDS {
        writeln!(vocab, "{w}").unwrap();
    }
    std::fs::write(root.join("vocab.txt"), vocab).unwrap();
    let rte = root.join("glue/RTE");
    std::fs::create_dir_all(&rte).unwrap();
    let mut records = String::new();
    for (name, n) in [("train", 64), ("dev", 16)] {
        let mut tsv = String::from("index\tsentence1\tsentence2\tlabel\n");
        for i in 0..n {
            let a = format!(
                "{} {} {}",
                RTE_WORDS[i % 7],
                RTE_WORDS[(i / 7) % 7],
                RTE_WORDS[(i * 3) % 7]
            );
            let yes = (i * 7 + i / 3) % 2 == 0;
            let b = format!(
                "{} {}",
                RTE_WORDS[(i + 2) % 7],
                if yes { "yes" } else { "no" }
            );
            let label = if yes { "entailment" } else { "not_entailment" };
            writeln!(tsv, "{i}\t{a}\t{b}\t{label}").unwrap();
            if name == "dev" {
                writeln!(records, r#"{{"text_a": "{a}", "text_b": "{b}"}}"#).unwrap();
            }
        }
        std::fs::write(rte.join(format!("{name}.tsv")), tsv).unwrap();
    }
    std::fs::write(root.join("dev.jsonl"), records).unwrap();
    root.join("dev.jsonl")
}

/// Runs the `stilts` binary (logging at `warn`).
pub fn stilts(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stilts"))
        .args(args)
        .env("STILTS_LOG", "warn")
        .output()
        .expect("run stilts")
}

/// Bytes of a process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
