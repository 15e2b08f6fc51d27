//! `cargo xtask reproduce` checks every run with the worker binary (`stilts run --check`)
//! before it starts anything: a grid with runs the engine refuses stops the driver, naming each
//! invalid run and why, with no worker started and no result written.

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::grid::{Plan, spec};

mod common;

use common::{stilts_bin, world};

/// The tiny world's grid: a valid encoder and one whose recipe the engine refuses (`lr`
/// negative), an intermediate that continues to the target (its dependents are checked before
/// it has trained) and one whose task file does not exist.
fn grid_file(root: &Path) -> PathBuf {
    let text = format!(
        r#"
name = "invalid"
seed = 3
targets = ["RTE"]
restarts = 2
recipe = {{ batch_size = 8, max_seq_len = 32, epochs = 1 }}
data = {{ glue_dir = "{glue}" }}

[[encoders]]
name = "Tiny"
random = {{ hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64, max_position_embeddings = 64 }}
tokenizer = "{vocab}"

[[encoders]]
name = "Negative"
random = {{ hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64, max_position_embeddings = 64 }}
tokenizer = "{vocab}"
recipe = {{ lr = -1.0 }}

[[intermediates]]
name = "SST-2"
task = "SST-2"

[[intermediates]]
name = "Missing"
task = "{missing}"
"#,
        glue = root.join("glue").display(),
        vocab = root.join("vocab.txt").display(),
        missing = root.join("missing.toml").display(),
    );
    let path = root.join("invalid.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `cargo xtask reproduce` on `grid` into `out`; returns whether it succeeded and its
/// output.
fn reproduce(grid: &Path, out: &Path, stilts: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("reproduce")
        .arg(grid)
        .arg("--output-dir")
        .arg(out)
        .arg("--stilts")
        .arg(stilts)
        .env("STILTS_LOG", "warn")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Nothing of a worker is in `plan`'s run directories, and the driver left no registry.
fn assert_nothing_started(plan: &Plan, text: &str) {
    for n in &plan.nodes {
        let dir = plan.run_dir(&n.id);
        for file in ["worker.pid", "attempts.log", "worker.log", "summary.json"] {
            assert!(!dir.join(file).exists(), "{}/{file} exists:\n{text}", n.id);
        }
        assert!(
            !dir.join(n.phase_dir()).exists(),
            "{} started:\n{text}",
            n.id
        );
    }
    assert!(!plan.output_dir.join("registry.sqlite").exists());
    assert!(
        !plan.output_dir.join("check").exists(),
        "stand-ins are removed"
    );
}

#[test]
fn invalid_runs_stop_the_driver_before_anything_starts() {
    let Some(stilts) = stilts_bin() else {
        panic!("no stilts binary: run through `cargo test --workspace` or set STILTS_BIN");
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    world(root, 40, 10);
    let grid_path = grid_file(root);
    let out = root.join("out");
    let plan = Plan::expand(&spec::load(&grid_path, None).unwrap(), Some(&out)).unwrap();

    let (ok, text) = reproduce(&grid_path, &out, &stilts);
    assert!(!ok, "the driver must fail:\n{text}");
    assert!(text.contains("nothing was submitted"), "{text}");
    // Every run of the refused encoder (its targets too, checked before their intermediate has
    // trained) and the intermediate without a task file are named, with why; nothing else is.
    let invalid: Vec<_> = plan
        .nodes
        .iter()
        .filter(|n| {
            n.meta.encoder == "Negative" || n.meta.condition == "Missing" && n.meta.target.is_none()
        })
        .collect();
    assert_eq!(invalid.len(), 2 + 2 * 3 + 1);
    assert!(
        text.contains(&format!(
            "{} of {} runs are invalid",
            invalid.len(),
            plan.nodes.len()
        )),
        "{text}"
    );
    for n in &plan.nodes {
        let named = text.contains(&format!("run {} (", n.id));
        assert_eq!(
            named,
            invalid.iter().any(|i| i.id == n.id),
            "run {}:\n{text}",
            n.id
        );
    }
    let line = |id: &str| {
        text.lines()
            .find(|l| l.contains(&format!("run {id} (")))
            .unwrap()
    };
    let negative = invalid
        .iter()
        .find(|n| n.meta.encoder == "Negative")
        .unwrap();
    assert!(
        line(&negative.id).contains("lr") && line(&negative.id).contains("-1"),
        "{text}"
    );
    let missing = invalid
        .iter()
        .find(|n| n.meta.condition == "Missing" && n.meta.encoder == "Tiny")
        .unwrap();
    assert!(line(&missing.id).contains("missing.toml"), "{text}");
    assert_nothing_started(&plan, &text);
}

#[test]
fn a_single_invalid_run_is_named_too() {
    let Some(stilts) = stilts_bin() else {
        panic!("no stilts binary: run through `cargo test --workspace` or set STILTS_BIN");
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    world(root, 40, 10);
    // One run: `stilts run --check` with one file reports differently than with several.
    let text = format!(
        r#"
name = "one"
targets = ["RTE"]
recipe = {{ epochs = 1, warmup_proportion = 2.0 }}
data = {{ glue_dir = "{glue}" }}

[[encoders]]
name = "Tiny"
random = {{ hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64 }}
tokenizer = "{vocab}"
"#,
        glue = root.join("glue").display(),
        vocab = root.join("vocab.txt").display(),
    );
    let grid_path = root.join("one.toml");
    std::fs::write(&grid_path, text).unwrap();
    let out = root.join("out");
    let plan = Plan::expand(&spec::load(&grid_path, None).unwrap(), Some(&out)).unwrap();
    assert_eq!(plan.nodes.len(), 1);

    let (ok, text) = reproduce(&grid_path, &out, &stilts);
    assert!(!ok, "the driver must fail:\n{text}");
    assert!(text.contains("1 of 1 runs are invalid"), "{text}");
    let id = &plan.nodes[0].id;
    let line = text
        .lines()
        .find(|l| l.contains(&format!("run {id} (")))
        .unwrap_or_default();
    assert!(line.contains("warmup_proportion"), "{text}");
    assert!(
        !line.contains("experiment.toml"),
        "the file is not repeated: {line}"
    );
    assert_nothing_started(&plan, &text);
}
