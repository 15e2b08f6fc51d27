//! GPT through the whole engine on the tiny world: a random 2-block GPT over the BPE tables
//! of `stilts-models/tests/fixtures/tiny-gpt` learns RTE with Radford et al.'s auxiliary
//! language-model loss, a killed run resumes to the same result, and pair tasks get GPT's
//! pair defaults.

mod common;

use common::{KillAt, comparable, result};

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;
use stilts_data::encoding::PairMode;
use stilts_train::experiment::run_experiment;
use stilts_train::observer::NoopObserver;

/// burn's flex RNG is process-global: runs that compare numbers must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

fn bpe_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../stilts-models/tests/fixtures/tiny-gpt")
}

/// A GPT experiment over the tiny world; `phases` is appended verbatim.
fn gpt_toml(root: &Path, out: &str, phases: &str) -> String {
    format!(
        r#"
name = "tiny-gpt"
output_dir = "{out}"
seed = 11

[model]
encoder = "gpt"
random = {{ n_embd = 32, n_layer = 2, n_head = 4, n_positions = 64 }}
tokenizer = "{bpe}"

[data]
glue_dir = "{glue}"
extra_dir = "{extra}"

[recipe]
batch_size = 8
lr = 2e-3
max_seq_len = 40
epochs = 3
warmup_proportion = 0.1
{phases}
"#,
        out = root.join(out).display(),
        bpe = bpe_dir().display(),
        glue = root.join("glue").display(),
        extra = root.join("extra").display(),
    )
}

const RTE_PHASE: &str = "[[phases]]\ntasks = [\"RTE\"]\npredict_test = true\n\
                         recipe = { epochs = 24, checkpoint_every_steps = 5 }\n";

#[test]
fn gpt_learns_rte_with_its_lm_loss_and_resumes_to_the_same_result() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 160, 40);

    let exp = common::resolve(&gpt_toml(&root, "straight", RTE_PHASE)).unwrap();
    assert_eq!(exp.encoder, stilts_models::EncoderKind::Gpt);
    assert_eq!(exp.phases[0].recipe.aux_lm_weight, 0.5, "the GPT preset");
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let straight = result(&tmp.path().join("straight"), "00-RTE/seed-11");
    let history = straight["history"].as_array().unwrap();
    assert_eq!(history.len(), 24);
    let aux: Vec<f64> = history
        .iter()
        .map(|e| e["aux_loss"].as_f64().expect("aux_loss logged every epoch"))
        .collect();
    // A language model over a 2480-token vocabulary starts near ln(2480) = 7.8 and learns
    // the 30 words of the tiny world. From random weights the language model takes the first
    // epochs (the classifier's loss stays at ln 2 until its loss falls near 3.1); a pretrained
    // GPT starts there.
    assert!(aux[0] < 7.9 && aux[23] < aux[0] - 3.0, "{aux:?}");
    let best = straight["dev_score"].as_f64().unwrap();
    assert!(best > 0.75, "dev accuracy {best}: {history:#?}");
    assert_eq!(
        straight["test_predictions"][0]["ids"]
            .as_array()
            .unwrap()
            .len(),
        40
    );
    let model = tmp.path().join("straight/00-RTE/seed-11/model");
    for f in ["vocab.json", "merges.txt", "stilts-model.json"] {
        assert!(model.join(f).exists(), "{f} travels with the model");
    }

    let exp = common::resolve(&gpt_toml(&root, "resumed", RTE_PHASE)).unwrap();
    let killed = catch_unwind(AssertUnwindSafe(|| {
        let _ = run_experiment(&exp, &mut KillAt { at: 8, seen: 0 });
    }));
    assert!(killed.is_err(), "the run should have been killed");
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let resumed = result(&tmp.path().join("resumed"), "00-RTE/seed-11");
    assert_eq!(resumed["resumed"], Value::Bool(true));
    assert_eq!(comparable(resumed), comparable(straight));
}

#[test]
fn without_the_aux_objective_no_lm_loss_is_logged() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 40, 16);
    let exp = common::resolve(&gpt_toml(
        &root,
        "out",
        "[[phases]]\ntasks = [\"RTE\"]\nrecipe = { epochs = 1, aux_lm_weight = 0.0 }\n",
    ))
    .unwrap();
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let r = result(&tmp.path().join("out"), "00-RTE/seed-11");
    assert!(r["history"][0].get("aux_loss").is_none_or(Value::is_null));
}

#[test]
fn lora_on_gpt_trains_its_updates_and_heads_and_its_module_attaches_to_the_base() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 40, 16);
    let phases = "[[phases]]\nname = \"full\"\ntasks = [\"RTE\"]\nrecipe = { epochs = 1 }\n\
                  [[phases]]\nname = \"lora\"\ntasks = [\"RTE\"]\n\
                  recipe = { epochs = 2, lr = 1e-2, lora = { r = 4, alpha = 8, target_modules = [\"query\", \"output\"] } }\n";
    let exp = common::resolve(&gpt_toml(&root, "out", phases)).unwrap();
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let out = tmp.path().join("out");
    let r = result(&out, "01-lora/seed-11");
    let sizes = &r["sizes"];
    let (trained, total) = (
        sizes["trained_params"].as_u64().unwrap(),
        sizes["total_params"].as_u64().unwrap(),
    );
    // Per block c_attn (32x4 + 4x96) and the feed-forward c_proj (128x4 + 4x32), and the
    // classifier head (32x2 + 2); the language-model head is the frozen token embedding.
    assert_eq!(trained, 2 * (512 + 640) + 66, "of {total}");
    let meta =
        std::fs::read_to_string(out.join("01-lora/seed-11/model/stilts-model.json")).unwrap();
    assert!(meta.contains("\"lora\""), "{meta}");
    // The module directory on the model it started from predicts as the whole model.
    let base = out.join("00-full/seed-11/model");
    let adapter = out.join("01-lora/seed-11/adapter");
    assert_eq!(
        common::logits(&base, Some(&adapter)),
        common::logits(&out.join("01-lora/seed-11/model"), None)
    );
    // Adapters are BERT's only: a GPT phase with them is refused, naming the key.
    let refused =
        "[[phases]]\ntasks = [\"RTE\"]\nrecipe = { adapter = { preset = \"pfeiffer\" } }\n";
    let exp = common::resolve(&gpt_toml(&root, "refused", refused)).unwrap();
    let err = run_experiment(&exp, &mut NoopObserver)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("recipe.adapter") && err.contains("LoRA only"),
        "{err}"
    );
}

/// A custom copy of the `NLI3` data marked symmetric.
fn symmetric_task(root: &Path) -> PathBuf {
    let nli = common::nli3(root, 48, 16);
    let text = std::fs::read_to_string(nli).unwrap();
    let file = root.join("sym.toml");
    let sym = text.replace("name = \"NLI3\"", "name = \"SYM\"\nsymmetric = true");
    assert_ne!(sym, text, "the NLI3 task file names its task");
    std::fs::write(&file, sym).unwrap();
    file
}

#[test]
fn gpt_reads_symmetric_pairs_in_both_orders_unless_told() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 40, 16);
    let sym = symmetric_task(tmp.path());
    let phases = format!(
        "[[phases]]\ntasks = [\"{s}\", \"RTE\"]\n\
         [[phases]]\ntasks = [{{ task = \"{s}\", pair = \"joint\" }}]\n",
        s = sym.display()
    );
    let pairs = |text: &str| -> Vec<PairMode> {
        let exp = common::resolve(text).unwrap();
        exp.phases
            .iter()
            .flat_map(|p| p.tasks.iter().map(|t| t.pair))
            .collect()
    };
    assert_eq!(
        pairs(&gpt_toml(&root, "gpt", &phases)),
        [PairMode::BothOrders, PairMode::Joint, PairMode::Joint]
    );
    assert_eq!(
        pairs(&common::experiment_toml(&root, "bert", &phases)),
        [PairMode::Joint, PairMode::Joint, PairMode::Joint],
        "BERT reads every pair jointly"
    );

    let exp = common::resolve(&gpt_toml(
        &root,
        "gpt",
        &format!(
            "[[phases]]\ntasks = [\"{}\"]\nrecipe = {{ epochs = 1 }}\n",
            sym.display()
        ),
    ))
    .unwrap();
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let r = result(&tmp.path().join("gpt"), "00-SYM/seed-11");
    assert!(r["dev_score"].as_f64().unwrap().is_finite());
}

/// GPT in bf16 mixed precision: its language-model loss (computed in f32 from bf16 logits)
/// and its task loss follow the f32 run of the same seed within bf16's rounding.
#[test]
fn gpt_trains_in_bf16_as_in_f32() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 96, 24);
    let losses = |precision: &str| -> (Vec<f64>, Vec<f64>) {
        let phase = format!(
            "[[phases]]\ntasks = [\"RTE\"]\nrecipe = {{ dropout = 0.0, precision = \"{precision}\" }}\n"
        );
        let exp = common::resolve(&gpt_toml(&root, precision, &phase)).unwrap();
        run_experiment(&exp, &mut NoopObserver).unwrap();
        let r = result(&tmp.path().join(precision), "00-RTE/seed-11");
        let history = r["history"].as_array().unwrap().clone();
        let get =
            |k: &str| -> Vec<f64> { history.iter().map(|e| e[k].as_f64().unwrap()).collect() };
        (get("train_loss"), get("aux_loss"))
    };
    let (task_32, aux_32) = losses("f32");
    let (task_16, aux_16) = losses("bf16");
    eprintln!("f32 {task_32:?} {aux_32:?}\nbf16 {task_16:?} {aux_16:?}");
    assert!(
        aux_16[2] < aux_16[0] - 0.5,
        "the bf16 language model learns: {aux_16:?}"
    );
    for (a, b) in aux_32
        .iter()
        .zip(&aux_16)
        .chain(task_32.iter().zip(&task_16))
    {
        assert!((a - b).abs() <= 0.05, "f32 {a} vs bf16 {b}");
    }
}
