//! What several CLI tests build: small GLUE-layout worlds.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

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
