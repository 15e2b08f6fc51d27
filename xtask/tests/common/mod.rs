//! The tiny world the executor tests train on: a random BERT's vocabulary and two learnable
//! synthetic tasks in GLUE layout, RTE (the target, with a test split) and SST-2 (the
//! intermediate); and the `stilts` binary the workers run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const WORDS: &[&str] = &[
    "the", "cat", "dog", "sat", "on", "mat", "ran", "far", "big", "small", "red", "blue", "a",
    "house", "tree", "bird", "sky", "sun", "moon", "star", "car", "road", "fast", "slow", "up",
    "down", "yes", "no",
];

/// The `stilts` binary: $STILTS_BIN, else the one `cargo test --workspace` builds beside this
/// test's directory (target/<profile>/stilts).
pub fn stilts_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("STILTS_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("stilts");
    candidate.exists().then_some(candidate)
}

/// vocab.txt, glue/RTE and glue/SST-2 with learnable labels.
pub fn world(root: &Path, train: usize, dev: usize) {
    let mut vocab = String::from("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for w in WORDS {
        writeln!(vocab, "{w}").unwrap();
    }
    std::fs::write(root.join("vocab.txt"), vocab).unwrap();
    let mut state = 7u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    for (task, header) in [
        ("RTE", "index\tsentence1\tsentence2\tlabel\n"),
        ("SST-2", "sentence\tlabel\n"),
    ] {
        let dir = root.join("glue").join(task);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, n) in [("train", train), ("dev", dev)] {
            let mut text = String::from(header);
            for i in 0..n {
                let a: Vec<&str> = (0..3 + next() % 8).map(|_| WORDS[next() % 26]).collect();
                let yes = next() % 2 == 0;
                let mut b: Vec<&str> = (0..1 + next() % 4).map(|_| WORDS[next() % 26]).collect();
                b.insert(next() % (b.len() + 1), if yes { "yes" } else { "no" });
                if task == "RTE" {
                    let label = if yes { "entailment" } else { "not_entailment" };
                    writeln!(text, "{i}\t{}\t{}\t{label}", a.join(" "), b.join(" ")).unwrap();
                } else {
                    writeln!(text, "{} {}\t{}", a.join(" "), b.join(" "), u8::from(yes)).unwrap();
                }
            }
            std::fs::write(dir.join(format!("{name}.tsv")), text).unwrap();
        }
    }
    let mut test = String::from("index\tsentence1\tsentence2\n");
    for i in 0..dev {
        writeln!(
            test,
            "{i}\t{} cat\tyes {}",
            WORDS[i % 26],
            WORDS[(i * 7) % 26]
        )
        .unwrap();
    }
    std::fs::write(root.join("glue/RTE/test.tsv"), test).unwrap();
}
