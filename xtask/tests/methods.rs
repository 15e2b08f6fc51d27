//! A grid's training methods as a user runs them: `cargo xtask reproduce` on a tiny real grid
//! with LoRA and bottleneck adapters beside full fine-tuning. Full fine-tuning's runs are the
//! runs of the same grid without methods; each method's target continues from its own
//! intermediate with its modules; the report compares the methods with each run's trained
//! parameters, saved size and wall time.

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::grid::{Plan, Registry, RunKind, spec};

mod common;

use common::{stilts_bin, world};

const GRID: &str = r#"
name = "methods"
seed = 5
targets = ["RTE"]
restarts = 2
predict_test = false
recipe = { batch_size = 8, lr = 2e-3, max_seq_len = 32, epochs = 2 }
intermediate_recipe = { epochs = 1 }
data = { glue_dir = "@GLUE" }

[[encoders]]
name = "Tiny"
random = { hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64, max_position_embeddings = 64 }
tokenizer = "@VOCAB"

[[intermediates]]
name = "SST-2"
task = "SST-2"
"#;

const METHODS: &str = r#"
[[methods]]
name = "lora"
recipe = { lr = 5e-3, lora = { r = 2, alpha = 4 } }

[[methods]]
name = "adapters"
recipe = { adapter = { preset = "pfeiffer", reduction_factor = 4 } }
intermediate_recipe = { epochs = 2 }
targets = ["RTE"]
"#;

fn write_grid(root: &Path, name: &str, methods: bool) -> PathBuf {
    let text = GRID
        .replace("@GLUE", &root.join("glue").display().to_string())
        .replace("@VOCAB", &root.join("vocab.txt").display().to_string());
    let text = if methods { text + METHODS } else { text };
    let path = root.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A JSON file of a grid run's one seed directory.
fn seed_json(plan: &Plan, id: &str, file: &str) -> serde_json::Value {
    let node = plan.node(id).unwrap();
    let path = plan
        .run_dir(id)
        .join(node.phase_dir())
        .join(format!("seed-{}", node.meta.seed))
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// `cargo xtask reproduce GRID --output-dir OUT` with two workers, to the end.
fn reproduce(grid: &Path, out: &Path, stilts: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["reproduce"])
        .arg(grid)
        .arg("--output-dir")
        .arg(out)
        .arg("--stilts")
        .arg(stilts)
        .args(["--jobs", "2"])
        .env("STILTS_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn methods_train_beside_full_fine_tuning_and_the_report_compares_their_costs() {
    let Some(stilts) = stilts_bin() else {
        panic!("no stilts binary: run through `cargo test --workspace` or set STILTS_BIN");
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    world(root, 96, 24);
    let out = root.join("out");
    let grid_path = write_grid(root, "methods.toml", true);
    let grid = spec::load(&grid_path, None).unwrap();
    let plan = Plan::expand(&grid, Some(&out)).unwrap();

    // Full fine-tuning is the grid without methods, run for run (same ids: a grid keeps its
    // finished runs when methods are added).
    let plain = spec::load(&write_grid(root, "plain.toml", false), None).unwrap();
    let plain = Plan::expand(&plain, Some(&out)).unwrap();
    let full: Vec<&str> = plan
        .nodes
        .iter()
        .filter(|n| n.meta.method == "full")
        .map(|n| n.id.as_str())
        .collect();
    let plain_ids: Vec<&str> = plain.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(full, plain_ids);
    // Each method: one intermediate and 2 restarts x (baseline, SST-2) targets.
    assert_eq!(plan.nodes.len(), 3 * (1 + 2 * 2));

    let lora_target = plan
        .nodes
        .iter()
        .find(|n| {
            n.meta.method == "lora" && n.meta.kind == RunKind::Target && n.meta.condition == "SST-2"
        })
        .unwrap();
    let dep = plan.node(lora_target.model_dependency().unwrap()).unwrap();
    assert_eq!(
        (dep.meta.method.as_str(), dep.meta.kind),
        ("lora", RunKind::Intermediate),
        "a method's target continues from the method's own intermediate"
    );
    let toml = plan.experiment_toml(lora_target);
    assert!(toml.contains("[recipe.lora]"), "{toml}");
    let adapters_dep = plan
        .nodes
        .iter()
        .find(|n| n.meta.method == "adapters" && n.meta.kind == RunKind::Intermediate)
        .unwrap();
    let phase = &adapters_dep.experiment.phases[0].recipe;
    assert_eq!(
        phase.epochs,
        Some(2),
        "the method's intermediate_recipe wins"
    );

    reproduce(&grid_path, &out, &stilts);
    let registry = Registry::open(&out.join("registry.sqlite")).unwrap();
    let rows = registry.rows("methods").unwrap();
    assert!(
        rows.iter().all(|r| r.outcome.is_some()),
        "every run finished"
    );

    // Sizes: the LoRA target trains a small part of the model and saves only that.
    let sizes = |id: &str| seed_json(&plan, id, "result.json")["sizes"].clone();
    let lora = sizes(&lora_target.id);
    let full_target = plan
        .nodes
        .iter()
        .find(|n| n.meta.method == "full" && n.meta.kind == RunKind::Target)
        .unwrap();
    let full = sizes(&full_target.id);
    assert_eq!(full["trained_params"], full["total_params"], "{full}");
    assert!(full["adapter_bytes"].is_null());
    let (trained, total) = (
        lora["trained_params"].as_u64().unwrap(),
        lora["total_params"].as_u64().unwrap(),
    );
    assert!(trained > 0 && trained * 5 < total, "{lora}");
    assert!(
        lora["adapter_bytes"].as_u64().unwrap() * 3 < lora["model_bytes"].as_u64().unwrap(),
        "{lora}"
    );
    // The LoRA target carries the intermediate's modules (kept, not re-drawn): its model
    // has one LoRA configuration, the intermediate's.
    let model_meta = |id: &str| seed_json(&plan, id, "model/stilts-model.json")["peft"].clone();
    assert_eq!(model_meta(&lora_target.id), model_meta(&dep.id));
    assert!(!model_meta(&dep.id)["lora"].is_null());

    let reports = out.join("reports");
    let md = std::fs::read_to_string(reports.join("methods.md")).unwrap();
    if std::env::var_os("SHOW_METHODS").is_some() {
        eprintln!("{md}");
    }
    for needle in ["| full |", "| lora |", "| adapters |", "saved per task"] {
        assert!(md.contains(needle), "{needle} in\n{md}");
    }
    let csv = std::fs::read_to_string(reports.join("methods.csv")).unwrap();
    // Header, then 3 methods x 2 conditions x 1 target.
    assert_eq!(csv.lines().count(), 1 + 3 * 2, "{csv}");
    let line = csv
        .lines()
        .find(|l| l.starts_with("lora,") && l.contains(",SST-2,"))
        .unwrap();
    assert!(line.contains(&format!(",{trained},{total},")), "{line}");
    for file in [
        "table-full-lora.md",
        "bootstrap-adapters.md",
        "table-full.md",
    ] {
        assert!(reports.join(file).is_file(), "{file}");
    }
}

/// The tiny BERT of the parity fixtures: a pretrained encoder on disk, so that every run starts
/// from the same base weights (adapters fuse only onto the base they were trained on).
fn tiny_bert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/stilts-models/tests/fixtures/tiny-bert")
}

const FUSION_GRID: &str = r#"
name = "fusion"
seed = 3
targets = ["RTE"]
restarts = 1
predict_test = false
recipe = { batch_size = 8, lr = 2e-3, max_seq_len = 32, epochs = 1 }
data = { glue_dir = "@GLUE" }

[[encoders]]
name = "Tiny"
pretrained = "@BERT"
tokenizer = "@VOCAB"

[[intermediates]]
name = "SST-2"
task = "SST-2"

[[intermediates]]
name = "SST-2/48"
task = "SST-2"
train_examples = 48

[[methods]]
name = "fusion"
recipe = { lr = 5e-3, epochs = 2 }
fuse = { adapters = "pfeiffer" }

[[methods]]
name = "pfeiffer"
recipe = { adapter = { preset = "pfeiffer", reduction_factor = 4, train_layer_norms = false } }
"#;

#[test]
fn a_fusion_method_trains_over_the_adapters_another_method_trained() {
    let Some(stilts) = stilts_bin() else {
        panic!("no stilts binary: run through `cargo test --workspace` or set STILTS_BIN");
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    world(root, 96, 24);
    let out = root.join("out");
    let grid_path = root.join("fusion.toml");
    let text = FUSION_GRID
        .replace("@GLUE", &root.join("glue").display().to_string())
        .replace("@BERT", &tiny_bert().display().to_string())
        .replace("@VOCAB", &root.join("vocab.txt").display().to_string());
    std::fs::write(&grid_path, text).unwrap();
    let grid = spec::load(&grid_path, None).unwrap();
    let plan = Plan::expand(&grid, Some(&out)).unwrap();
    // The fusion is listed before the method it fuses: the adapters' runs still come first.
    let fusion = plan
        .nodes
        .iter()
        .find(|n| n.meta.method == "fusion")
        .unwrap();
    let pos = |id: &str| plan.nodes.iter().position(|n| n.id == id).unwrap();
    assert_eq!(fusion.depends_on.len(), 2);
    assert!(fusion.depends_on.iter().all(|d| pos(d) < pos(&fusion.id)));
    assert_eq!(
        plan.nodes
            .iter()
            .filter(|n| n.meta.method == "fusion")
            .count(),
        1
    );

    reproduce(&grid_path, &out, &stilts);
    let registry = Registry::open(&out.join("registry.sqlite")).unwrap();
    let rows = registry.rows("fusion").unwrap();
    assert!(
        rows.iter().all(|r| r.outcome.is_some()),
        "every run finished"
    );
    let row = rows.iter().find(|r| r.run_id == fusion.id).unwrap();
    assert_eq!(row.depends_on, fusion.depends_on);

    // The fusion run trained the fusion layers and heads over the two frozen adapters, and
    // saved only those.
    let peft = seed_json(&plan, &fusion.id, "model/stilts-model.json")["peft"].clone();
    assert_eq!(peft["fusion"]["fusion"]["adapters"], 2, "{peft}");
    assert_eq!(
        peft["fusion"]["adapter"]["train_layer_norms"], false,
        "{peft}"
    );
    let sizes = seed_json(&plan, &fusion.id, "result.json")["sizes"].clone();
    let adapter_run = plan.node(&fusion.depends_on[0]).unwrap();
    let adapter_sizes = seed_json(&plan, &adapter_run.id, "result.json")["sizes"].clone();
    let trained = sizes["trained_params"].as_u64().unwrap();
    assert!(
        trained > 0 && trained * 3 < sizes["total_params"].as_u64().unwrap(),
        "{sizes}"
    );
    assert!(sizes["adapter_bytes"].as_u64().unwrap() > 0, "{sizes}");
    assert!(
        sizes["total_params"].as_u64() > adapter_sizes["total_params"].as_u64(),
        "the fused model holds both adapters and the fusion: {sizes} vs {adapter_sizes}"
    );

    let md = std::fs::read_to_string(out.join("reports/methods.md")).unwrap();
    if std::env::var_os("SHOW_METHODS").is_some() {
        eprintln!("{md}");
    }
    assert!(md.contains("| fusion | SST-2+SST-2/48 |"), "{md}");
    assert!(md.contains("| pfeiffer | SST-2/48 |"), "{md}");
    assert!(out.join("reports/table-full-fusion.md").is_file());
}
