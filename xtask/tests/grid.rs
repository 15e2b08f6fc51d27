//! Grid files and their expansion into runs: what a user relies on when a grid of hundreds of
//! runs is planned from one file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use xtask::grid::spec::{self, Regime};
use xtask::grid::{GridError, Plan, RunKind};

const GRID: &str = r#"
name = "g"
seed = 1
targets = ["CoLA", "MNLI", "RTE"]
regimes = ["full", "1k"]
restarts = 1
restarts_for = { RTE = 3 }

[[encoders]]
name = "BERT"
pretrained = "/models/bert"

[[intermediates]]
name = "MNLI"
task = "MNLI"

[[intermediates]]
name = "Real/Fake"
task = "configs/tasks/realfake.toml"
realfake = { corpus = "/corpus" }

[[multitask]]
a = "MNLI"
b = "RTE"

[scale.cpu]
targets = ["RTE"]
regimes = ["1k"]
restarts_for = { RTE = 2 }
recipe = { max_seq_len = 64 }
encoders = [{ name = "MiniLM", pretrained = "/models/minilm" }]
"#;

fn parse(text: &str, scale: Option<&str>) -> Result<spec::LoadedGrid, GridError> {
    spec::parse(Path::new("grid.toml"), text, scale)
}

fn plan(text: &str, scale: Option<&str>, out: &str) -> Plan {
    let grid = parse(text, scale).expect("grid parses");
    Plan::expand(&grid, Some(Path::new(out))).expect("grid expands")
}

#[test]
fn expansion_counts_every_condition_regime_and_restart() {
    let p = plan(GRID, None, "/out");
    let count = |k: RunKind| p.nodes.iter().filter(|n| n.meta.kind == k).count();
    // Intermediates once per encoder.
    assert_eq!(count(RunKind::Intermediate), 2);
    // {MNLI,RTE}: 2 regimes x 3 restarts.
    assert_eq!(count(RunKind::Multitask), 6);
    // Targets per regime: CoLA 1 x (none, MNLI, Real/Fake); MNLI 1 x (none, Real/Fake: MNLI ->
    // MNLI is the baseline, struck through); RTE 3 x (none, MNLI, Real/Fake, {MNLI,RTE}->RTE).
    assert_eq!(count(RunKind::Target), 2 * (3 + 2 + 3 * 4));
    assert!(
        !p.nodes
            .iter()
            .any(|n| n.meta.condition == "MNLI" && n.meta.target.as_deref() == Some("MNLI")),
        "intermediate = target is not trained"
    );
    let ids: BTreeSet<_> = p.nodes.iter().map(|n| &n.id).collect();
    assert_eq!(ids.len(), p.nodes.len(), "run ids are unique");
}

#[test]
fn intermediates_are_shared_by_every_target_and_restart() {
    let p = plan(GRID, None, "/out");
    let mnli = p
        .nodes
        .iter()
        .find(|n| n.meta.kind == RunKind::Intermediate && n.meta.condition == "MNLI")
        .unwrap();
    let dependents: Vec<_> = p
        .nodes
        .iter()
        .filter(|n| n.depends_on == [mnli.id.clone()])
        .collect();
    // CoLA 1 + RTE 3, per regime.
    assert_eq!(dependents.len(), 2 * 4);
    // Dependencies come first in the plan.
    let pos = |id: &str| p.nodes.iter().position(|n| n.id == id).unwrap();
    for n in &p.nodes {
        for d in &n.depends_on {
            assert!(pos(d) < pos(&n.id));
        }
    }
    // A dependent's experiment continues from the intermediate's saved model.
    let text = p.experiment_toml(dependents[0]);
    let exp: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(
        exp["model"]["checkpoint"].as_str().unwrap(),
        format!("/out/runs/{}/00-mnli/seed-1/model", mnli.id)
    );
    assert_eq!(exp["model"]["load"].as_str().unwrap(), "encoder");
}

#[test]
fn restarts_have_their_own_seed_and_regime_subsets() {
    let p = plan(GRID, None, "/out");
    let rte_1k: Vec<_> = p
        .nodes
        .iter()
        .filter(|n| {
            n.meta.kind == RunKind::Target
                && n.meta.condition == "none"
                && n.meta.target.as_deref() == Some("RTE")
                && n.meta.regime == Regime::Examples(1000)
        })
        .collect();
    let seeds: Vec<u64> = rte_1k.iter().map(|n| n.meta.seed).collect();
    assert_eq!(seeds, vec![1, 2, 3]);
    let exp: toml::Table = toml::from_str(&p.experiment_toml(rte_1k[2])).unwrap();
    let phase = &exp["phases"].as_array().unwrap()[0];
    assert_eq!(phase["seeds"].as_array().unwrap()[0].as_integer(), Some(3));
    assert_eq!(
        phase["tasks"].as_array().unwrap()[0]["train_examples"].as_integer(),
        Some(1000)
    );
}

#[test]
fn run_ids_depend_on_the_configuration_not_the_location() {
    let a = plan(GRID, None, "/out-a");
    let b = plan(GRID, None, "/elsewhere/out-b");
    let ids = |p: &Plan| p.nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    // Changing the recipe changes every id.
    let changed = GRID.replace("restarts = 1\n", "restarts = 1\nrecipe = { lr = 3e-5 }\n");
    let c = plan(&changed, None, "/out-a");
    let a_ids: BTreeSet<_> = ids(&a).into_iter().collect();
    assert!(ids(&c).iter().all(|id| !a_ids.contains(id)));
}

#[test]
fn scale_overrides_apply_and_are_recorded() {
    let g = parse(GRID, Some("cpu")).unwrap();
    assert_eq!(g.file.targets, vec!["RTE".to_string()]);
    assert_eq!(g.file.encoders[0].name, "MiniLM");
    assert_eq!(g.restarts("RTE"), 2);
    let keys: Vec<&str> = g.overrides.iter().map(|(k, _)| k.as_str()).collect();
    assert!(keys.contains(&"targets"));
    assert!(keys.contains(&"restarts_for.RTE"));
    assert!(keys.contains(&"recipe.max_seq_len"));
    let p = Plan::expand(&g, Some(Path::new("/out"))).unwrap();
    let exp: toml::Table = toml::from_str(&p.experiment_toml(p.nodes.last().unwrap())).unwrap();
    assert_eq!(exp["recipe"]["max_seq_len"].as_integer(), Some(64));
    let err = parse(GRID, Some("gpu")).unwrap_err().to_string();
    assert!(err.contains("scale.gpu") && err.contains("cpu"), "{err}");
}

#[test]
fn generated_data_and_task_files_become_absolute_paths() {
    let p = plan(GRID, None, "/out");
    let rf = p
        .nodes
        .iter()
        .find(|n| n.meta.kind == RunKind::Intermediate && n.meta.condition == "Real/Fake")
        .unwrap();
    let exp: toml::Table = toml::from_str(&p.experiment_toml(rf)).unwrap();
    let task = &exp["phases"].as_array().unwrap()[0]["tasks"]
        .as_array()
        .unwrap()[0];
    assert_eq!(task["data_root"].as_str(), Some("/out/data"));
    let file = PathBuf::from(task["task"].as_str().unwrap());
    assert!(file.is_absolute());
    assert!(file.ends_with("configs/tasks/realfake.toml"));
}

#[test]
fn typos_and_impossible_grids_are_errors_naming_the_key() {
    let cases = [
        (GRID.replace("restarts_for", "restart_for"), "restart_for"),
        (
            GRID.replace(
                "regimes = [\"full\", \"1k\"]",
                "regimes = [\"full\", \"lots\"]",
            ),
            "regimes[1]",
        ),
        (
            GRID.replace("b = \"RTE\"", "b = \"SST-2\""),
            "multitask[0].b",
        ),
        (
            GRID.replace("restarts_for = { RTE = 3 }", "restarts_for = { WNLI = 3 }"),
            "restarts_for.WNLI",
        ),
        (
            GRID.replace("pretrained = \"/models/bert\"", ""),
            "encoders[0]",
        ),
        // The keys passed on to `stilts run` are its own types: typos fail here.
        (
            GRID.replace("restarts = 1\n", "restarts = 1\nrecipe = { lrr = 3e-5 }\n"),
            "recipe.lrr",
        ),
        (
            GRID.replace(
                "pretrained = \"/models/bert\"",
                "pretrained = \"/models/bert\"\nrecipe = { optimizer = \"adam\" }",
            ),
            "encoders[0].recipe.optimizer",
        ),
        (
            GRID.replace("b = \"RTE\"\n", "b = \"RTE\"\nsampler = \"uniformm\"\n"),
            "multitask[0].sampler",
        ),
        (
            GRID.replace("restarts = 1\n", "restarts = 1\ndata = { glue = \"/g\" }\n"),
            "data.glue",
        ),
        (
            GRID.replace(
                "restarts = 1\n",
                "restarts = 1\nintermediate_recipe = { epochs = 1.5 }\n",
            ),
            "intermediate_recipe.epochs",
        ),
        (
            format!("{GRID}\n[[methods]]\nname = \"lora\"\nrecipe = {{ lora = {{ rank = 8 }} }}\n"),
            "methods[0].recipe.lora",
        ),
        (
            format!("{GRID}\n[[methods]]\nname = \"full\"\n"),
            "methods[0].name",
        ),
        (
            format!("{GRID}\n[[methods]]\nname = \"a\"\nintermediates = [\"SNLI\"]\n"),
            "methods[0].intermediates[0]",
        ),
        (
            format!("{GRID}\n[[methods]]\nname = \"a\"\ntargets = [\"RTE\", \"QQP\"]\n"),
            "methods[0].targets[1]",
        ),
    ];
    for (text, key) in cases {
        let err = parse(&text, None).unwrap_err().to_string();
        assert!(
            err.contains(key),
            "expected an error naming `{key}`, got: {err}"
        );
        assert!(err.contains("grid.toml"), "{err}");
    }
}

#[test]
fn a_method_trains_its_subset_with_its_keys_winning() {
    let text = format!(
        "{}\n[[methods]]\nname = \"adapters\"\nrecipe = {{ lr = 1e-3, adapter = {{ preset = \"pfeiffer\" }} }}\nintermediate_recipe = {{ epochs = 4 }}\nintermediates = [\"MNLI\"]\ntargets = [\"RTE\"]\n",
        GRID.replace("restarts = 1\n", "restarts = 1\nrecipe = { lr = 2e-5 }\nintermediate_recipe = { epochs = 1, lr = 3e-5 }\n")
    );
    let plain = plan(&GRID.replace("restarts = 1\n", "restarts = 1\nrecipe = { lr = 2e-5 }\nintermediate_recipe = { epochs = 1, lr = 3e-5 }\n"), None, "/out");
    let p = plan(&text, None, "/out");
    let (full, adapters): (Vec<_>, Vec<_>) = p.nodes.iter().partition(|n| n.meta.method == "full");
    assert_eq!(
        full.iter().map(|n| &n.id).collect::<Vec<_>>(),
        plain.nodes.iter().map(|n| &n.id).collect::<Vec<_>>()
    );
    // MNLI once; RTE in two regimes x 3 restarts from the encoder and from MNLI; no multitask.
    assert_eq!(adapters.len(), 1 + 2 * 3 * 2);
    for n in &adapters {
        let exp = &n.experiment;
        let recipe = exp.recipe.overridden_by(&exp.phases[0].recipe);
        assert_eq!(recipe.lr, Some(1e-3), "the method's lr wins in every phase");
        assert!(recipe.adapter.is_some());
        if n.meta.kind == RunKind::Intermediate {
            assert_eq!(recipe.epochs, Some(4));
        }
        for dep in &n.depends_on {
            assert_eq!(p.node(dep).unwrap().meta.method, "adapters");
        }
    }
}

/// `GRID` with adapters on both intermediates (method `pfeiffer`), and a method `fusion` made
/// of the lines `fusion` when given.
fn fusion_grid(adapter: &str, fusion: &str) -> String {
    let fusion = match fusion {
        "" => String::new(),
        lines => format!("\n[[methods]]\nname = \"fusion\"\n{lines}\n"),
    };
    format!(
        "{GRID}\n[[methods]]\nname = \"pfeiffer\"\nrecipe = {{ lr = 1e-3, adapter = {{ {adapter} }} }}\ntargets = [\"RTE\"]\n{fusion}"
    )
}

const FUSABLE: &str = "preset = \"pfeiffer\", train_layer_norms = false";

#[test]
fn a_fusion_method_fuses_another_methods_intermediate_adapters() {
    let text = fusion_grid(
        FUSABLE,
        "recipe = { lr = 5e-4 }\nfuse = { adapters = \"pfeiffer\", kind = \"static\" }\ntargets = [\"RTE\"]",
    );
    let p = plan(&text, None, "/out");
    let without = plan(&fusion_grid(FUSABLE, ""), None, "/out");
    assert_eq!(
        method_ids(&p, "pfeiffer"),
        method_ids(&without, "pfeiffer"),
        "the fused method's runs are its own"
    );
    let adapters: Vec<_> = p
        .nodes
        .iter()
        .filter(|n| n.meta.method == "pfeiffer" && n.meta.kind == RunKind::Intermediate)
        .collect();
    assert_eq!(adapters.len(), 2);
    let fusion: Vec<_> = p
        .nodes
        .iter()
        .filter(|n| n.meta.method == "fusion")
        .collect();
    // RTE only: two regimes x 3 restarts, one condition, no intermediates and no baseline.
    assert_eq!(fusion.len(), 2 * 3);
    let pos = |id: &str| p.nodes.iter().position(|n| n.id == id).unwrap();
    for n in &fusion {
        assert_eq!(n.meta.kind, RunKind::Target);
        assert_eq!(n.meta.condition, "MNLI+Real/Fake");
        assert_eq!(
            n.depends_on,
            adapters.iter().map(|a| a.id.clone()).collect::<Vec<_>>()
        );
        assert!(n.depends_on.iter().all(|d| pos(d) < pos(&n.id)));
        assert_eq!(
            n.model_dependency(),
            None,
            "a fusion starts from the base encoder"
        );
        assert_eq!(
            n.experiment.model.pretrained.as_deref(),
            Some("/models/bert")
        );
        let exp = p.worker_experiment(n);
        let recipe = exp.recipe.overridden_by(&exp.phases[0].recipe);
        assert_eq!(recipe.lr, Some(5e-4));
        assert!(
            recipe.adapter.is_none(),
            "the fused method's keys stay its own"
        );
        let fused = recipe.fusion.unwrap();
        assert_eq!(fused.kind, Some(stilts_schema::peft::FusionKind::Static));
        let want: Vec<String> = adapters
            .iter()
            .map(|a| {
                p.run_dir(&a.id)
                    .join(format!("{}/seed-1/adapter", a.phase_dir()))
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(fused.adapters, want);
    }
    // Restarts differ; the same fusion in another directory has the same ids.
    let ids: BTreeSet<_> = fusion.iter().map(|n| n.id.clone()).collect();
    assert_eq!(ids.len(), fusion.len());
    let moved = plan(&text, None, "/elsewhere");
    assert_eq!(method_ids(&moved, "fusion"), method_ids(&p, "fusion"));
    // `over` picks the fused intermediates, in its order.
    let one_over = fusion_grid(
        FUSABLE,
        "fuse = { adapters = \"pfeiffer\", over = [\"Real/Fake\", \"MNLI\"] }",
    );
    let p = plan(&one_over, None, "/out");
    let n = p.nodes.iter().find(|n| n.meta.method == "fusion").unwrap();
    assert_eq!(n.meta.condition, "Real/Fake+MNLI");
}

fn method_ids(p: &Plan, method: &str) -> Vec<String> {
    p.nodes
        .iter()
        .filter(|n| n.meta.method == method)
        .map(|n| n.id.clone())
        .collect()
}

#[test]
fn a_fusion_that_cannot_work_is_an_error_naming_the_key() {
    let fuse = "fuse = { adapters = \"pfeiffer\" }";
    let cases = [
        (
            fusion_grid("preset = \"pfeiffer\"", fuse),
            "methods[1].fuse.adapters",
            "train_layer_norms = false",
        ),
        (
            fusion_grid(FUSABLE, "fuse = { adapters = \"lora\" }"),
            "methods[1].fuse.adapters",
            "not an adapter method",
        ),
        (
            fusion_grid(
                FUSABLE,
                "fuse = { adapters = \"pfeiffer\", over = [\"MNLI\"] }",
            ),
            "methods[1].fuse.over",
            "two adapters",
        ),
        (
            fusion_grid(
                FUSABLE,
                "fuse = { adapters = \"pfeiffer\", over = [\"MNLI\", \"SNLI\"] }",
            ),
            "methods[1].fuse.over[1]",
            "no intermediate `SNLI`",
        ),
        (
            fusion_grid(
                FUSABLE,
                "fuse = { adapters = \"pfeiffer\", over = [\"MNLI\", \"MNLI\"] }",
            ),
            "methods[1].fuse.over[1]",
            "fused twice",
        ),
        (
            fusion_grid(
                FUSABLE,
                "fuse = { adapters = \"pfeiffer\" }\nintermediates = [\"MNLI\"]",
            ),
            "methods[1].fuse",
            "trains no intermediates",
        ),
        (
            fusion_grid(
                FUSABLE,
                "fuse = { adapters = \"pfeiffer\" }\nrecipe = { lora = { r = 2 } }",
            ),
            "methods[1].recipe",
            "no `adapter`, `lora` or `fusion`",
        ),
        (
            fusion_grid(
                &format!("{FUSABLE} }}, modules_to_save = [\"pooler\"], x = {{"),
                fuse,
            )
            .replace(", x = { }", ""),
            "methods[1].fuse.adapters",
            "modules_to_save",
        ),
        (
            fusion_grid(
                FUSABLE,
                "fuse = { adapters = \"pfeiffer\", dropout = \"a\" }",
            ),
            "methods.fuse.dropout",
            "expected f64",
        ),
    ];
    for (text, key, why) in cases {
        let err = parse(&text, None).unwrap_err().to_string();
        assert!(
            err.contains(key) && err.contains(why),
            "expected `{key}` and `{why}`: {err}"
        );
    }
}

#[test]
fn a_scale_is_checked_when_it_is_applied() {
    let typo = GRID.replace(
        "recipe = { max_seq_len = 64 }",
        "recipe = { max_seq_ln = 64 }",
    );
    assert!(
        parse(&typo, None).is_ok(),
        "the default scale does not read it"
    );
    let err = parse(&typo, Some("cpu")).unwrap_err().to_string();
    assert!(err.contains("recipe.max_seq_ln"), "{err}");
}

#[test]
fn encoder_keys_reach_every_run_of_the_encoder() {
    let text = GRID.replace(
        "pretrained = \"/models/bert\"",
        "pretrained = \"/models/bert\"\nencoder = \"bert\"\nrecipe = { lr = 1e-5 }",
    );
    let text = text.replace(
        "restarts = 1\n",
        "restarts = 1\nrecipe = { lr = 3e-5, epochs = 2 }\n",
    );
    let p = plan(&text, None, "/out");
    for n in &p.nodes {
        let exp: toml::Table = toml::from_str(&p.experiment_toml(n)).unwrap();
        assert_eq!(exp["model"]["encoder"].as_str(), Some("bert"), "{}", n.id);
        // The encoder's recipe over the grid's.
        assert_eq!(exp["recipe"]["lr"].as_float(), Some(1e-5));
        assert_eq!(exp["recipe"]["epochs"].as_integer(), Some(2));
    }
    // The family is part of the configuration: it changes the ids.
    let without = plan(&text.replace("encoder = \"bert\"\n", ""), None, "/out");
    assert_ne!(p.nodes[0].id, without.nodes[0].id);
}

#[test]
fn shipped_grids_parse_and_expand() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for name in [
        "table1", "table2", "table3", "table4", "figure1", "transfer",
    ] {
        let path = root.join("configs/grids").join(format!("{name}.toml"));
        let extra = (name == "table1").then_some(Some("cpu-elmo"));
        for scale in [None, Some("cpu")].into_iter().chain(extra) {
            let g = spec::load(&path, scale).unwrap_or_else(|e| panic!("{name} {scale:?}: {e}"));
            let p = Plan::expand(&g, Some(Path::new("/out"))).unwrap();
            assert!(!p.nodes.is_empty(), "{name}");
        }
    }
    // The transfer matrix: every intermediate once; each target from each intermediate and
    // from the encoder alone, per restart, except from itself. Full scale: adapters, LoRA and
    // Pfeiffer adapters over the whole matrix too, and a fusion per target and restart; CPU
    // scale: adapters and LoRA over RTE from MNLI and from the encoder alone, Pfeiffer
    // adapters over MRPC from three intermediates and the encoder, their fusion on MRPC.
    let transfer = root.join("configs/grids/transfer.toml");
    let matrix = |intermediates: usize, restarts: usize| {
        intermediates + (intermediates + 1) * 4 * restarts - 4 * restarts
    };
    let full_methods = [
        ("adapters", matrix(11, 10)),
        ("lora", matrix(11, 10)),
        ("pfeiffer", matrix(11, 10)),
        ("fusion", 4 * 10),
    ];
    let cpu_methods = [
        ("adapters", 1 + 2 * 2),
        ("lora", 1 + 2 * 2),
        ("pfeiffer", 3 + 4 * 2),
        ("fusion", 2),
    ];
    for (scale, matrix_runs, methods) in [
        (None, matrix(11, 10), full_methods),
        (Some("cpu"), matrix(10, 2), cpu_methods),
    ] {
        let g = spec::load(&transfer, scale).unwrap();
        let p = Plan::expand(&g, Some(Path::new("/out"))).unwrap();
        let method_runs: usize = methods.iter().map(|(_, n)| n).sum();
        assert_eq!(p.nodes.len(), matrix_runs + method_runs, "{scale:?}");
        for (method, runs) in methods {
            let n = p.nodes.iter().filter(|n| n.meta.method == method).count();
            assert_eq!(n, runs, "{scale:?} {method}");
        }
    }
    let t1 = spec::load(&root.join("configs/grids/table1.toml"), None).unwrap();
    let p = Plan::expand(&t1, Some(Path::new("/out"))).unwrap();
    // 5 x 20 small-task restarts + 5 one-restart tasks, x (baseline + 4 intermediates), less the
    // intermediate = target runs (QQP -> QQP, MNLI -> MNLI), plus the 4 intermediates; for
    // each of BERT, GPT and ELMo.
    assert_eq!(p.nodes.len(), 3 * ((4 * 20 + 5) * 5 - 2 + 4));
    let elmo: Vec<_> = p
        .nodes
        .iter()
        .filter(|n| n.meta.encoder == "ELMo")
        .collect();
    assert_eq!(elmo.len(), (4 * 20 + 5) * 5 - 2 + 4);
    assert!(elmo.iter().all(
        |n| n.experiment.model.pretrained.as_deref() == Some("${ELMO_DIR}")
            || !n.depends_on.is_empty()
    ));
    let gpt: Vec<_> = p.nodes.iter().filter(|n| n.meta.encoder == "GPT").collect();
    assert!(
        gpt.iter()
            .all(|n| n.experiment.model.encoder.as_deref() == Some("gpt")
                || n.experiment.model.pretrained.as_deref() == Some("openai-community/openai-gpt")
                || !n.depends_on.is_empty())
    );

    // Tables 3 and 4 fine-tune GPT without its auxiliary objective; Table 1 keeps it.
    for (name, weight) in [
        ("table1", None),
        ("table3", Some(0.0)),
        ("table4", Some(0.0)),
    ] {
        let g = spec::load(&root.join(format!("configs/grids/{name}.toml")), None).unwrap();
        let p = Plan::expand(&g, Some(Path::new("/out"))).unwrap();
        for n in p.nodes.iter().filter(|n| n.meta.encoder == "GPT") {
            let w = n.experiment.recipe.aux_lm_weight;
            let w = n.experiment.phases[0].recipe.aux_lm_weight.or(w);
            assert_eq!(w, weight, "{name} {}", n.id);
        }
    }
}

/// Run ids hash each run's configuration: they are how a grid finds its finished runs again, so
/// a refactor of the planner must leave them as they are. The hash is over the run ids of the
/// shipped grids (default and `cpu` scales) and the test grid, in plan order; the BERT-family
/// rows (`BERT`, `MiniLM`) are pinned at commit 0fe4718, before GPT rows joined the grids, the
/// GPT rows and `table4` since they were added, and the ELMo rows since they were.
/// `STILTS_PRINT_IDS=1` prints the current values.
#[test]
fn run_ids_of_the_shipped_grids_are_pinned() {
    use sha2::{Digest, Sha256};
    const PINNED: &[(&str, &str)] = &[
        (
            "table1/default",
            "dc1e0875061bb8e14cbecc9e5d83f791f9253f582279f23b53a635c1eb071c32",
        ),
        (
            "table1/default+gpt",
            "f6a27d859f0140f93b5820cc7ce8f81e2b3676912ad39f4ebb2810c95fe20bf2",
        ),
        (
            "table1/default+elmo",
            "b9822b84ce8b4f8a66d41b424c4794c046b989ca1906103a8f68b92d6274ba4a",
        ),
        (
            "table1/cpu",
            "d04c325d355fe1c1807c2096372181e141e9a28eda22afa3be660259ba3870e8",
        ),
        (
            "table2/default",
            "4ede5969a9fbea0afc556e17d259021a5f97ac352fb9a63559eba965703cbbca",
        ),
        (
            "table2/cpu",
            "6d1ea02d85726cf60cf35182b97168300d086f3a1c92056df8d6bb8c800f86a4",
        ),
        (
            "table3/default",
            "a84295fec946ed96942b702f3c0ba37ff8a86cb1d2c6a2d1ea4b50df3a1a4054",
        ),
        (
            "table3/default+gpt",
            "de2ad599404dec990a60d332e83ac2c73f2168e267f5a35969eab82e0dd27b6b",
        ),
        (
            "table3/cpu",
            "16b5b7c3b55cfc4622c71959aec6851bf89e53481b383d9a677ba088a56146e8",
        ),
        (
            "table3/cpu+gpt",
            "0839d6182b37c86896623a2f3a4e896c6f65cd27288aa7b4c3b0b1d4222d9eb2",
        ),
        (
            "table4/default+gpt",
            "35bed898ac76d71fb4680d462b2478fddf501752067e9d3e7e5f8c3842593a3b",
        ),
        (
            "table4/cpu",
            "c2bcb5671076914ac8df006974ba30509f5101dcc15e8bf25fb6bc57e5b737f3",
        ),
        (
            "table4/cpu+gpt",
            "0094bc7420cad3c0dac98076691efc8cbbc1006b070392730e62590ea1de0b10",
        ),
        (
            "figure1/default",
            "ca35f4975b38a05e54158256b6750a5725b1f929e16a9e5bd5cb8f8f3bdd9c6c",
        ),
        (
            "figure1/cpu",
            "06726db1fbb3c2fdf3a24c5537a8abdfc4c8ef8aca50555b8d6814ee04625347",
        ),
        (
            "test/default",
            "9a9983de604a1529266149b55fae96dae9a3fb72c61b2c34348956da784d6591",
        ),
        (
            "test/cpu",
            "eec83ffb260e132d62a9836a3e0ee3f46626e52563eecbe79f05d2c5d57be6be",
        ),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut got = Vec::new();
    for name in ["table1", "table2", "table3", "table4", "figure1"] {
        let path = root.join("configs/grids").join(format!("{name}.toml"));
        for scale in [None, Some("cpu")] {
            let g = spec::load(&path, scale).unwrap();
            let p = Plan::expand(&g, Some(Path::new("/out"))).unwrap();
            let (bert, rest): (Vec<_>, Vec<_>) = p
                .nodes
                .iter()
                .partition(|n| ["BERT", "MiniLM"].contains(&n.meta.encoder.as_str()));
            let (elmo, gpt): (Vec<_>, Vec<_>) = rest
                .into_iter()
                .partition(|n| n.meta.encoder.starts_with("ELMo"));
            let key = format!("{name}/{}", scale.unwrap_or("default"));
            for (family, nodes) in [("", bert), ("+gpt", gpt), ("+elmo", elmo)] {
                if nodes.is_empty() {
                    continue;
                }
                let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
                got.push((
                    format!("{key}{family}"),
                    format!("{:x}", Sha256::digest(ids.join("\n"))),
                ));
            }
        }
    }
    for scale in [None, Some("cpu")] {
        let p = plan(GRID, scale, "/out");
        let ids: Vec<&str> = p.nodes.iter().map(|n| n.id.as_str()).collect();
        let key = format!("test/{}", scale.unwrap_or("default"));
        got.push((key, format!("{:x}", Sha256::digest(ids.join("\n")))));
    }
    if std::env::var_os("STILTS_PRINT_IDS").is_some() {
        for (k, h) in &got {
            println!("        ({k:?}, {h:?}),");
        }
    }
    assert_eq!(
        got.len(),
        PINNED.len(),
        "pins missing: run with STILTS_PRINT_IDS=1"
    );
    for ((k, h), (pk, ph)) in got.iter().zip(PINNED) {
        assert_eq!(
            (k.as_str(), h.as_str()),
            (*pk, *ph),
            "run ids of {k} changed"
        );
    }
}
