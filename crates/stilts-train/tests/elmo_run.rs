//! ELMo through the whole engine on the tiny world: the tiny released biLM of
//! `stilts-models/tests/fixtures/tiny-elmo` (an options file and HDF5 weights, random values:
//! no pretrained ELMo is reachable here) learns RTE with each sentence encoded alone and
//! `[u; v; |u-v|; u*v]` read by the head; a killed run resumes to the same result; the saved
//! model predicts; the frozen-ELMo mode trains the scalar mix and the head only.

mod common;

use common::{KillAt, comparable, result};

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::tensor::Device;
use serde_json::Value;
use stilts_data::encoding::PairMode;
use stilts_train::experiment::run_experiment;
use stilts_train::model::load_model;
use stilts_train::model::store::weights_sha256;
use stilts_train::observer::{NoopObserver, Observer, StepEvent};
use stilts_train::predict::{PredictOptions, PredictRecord, Predictor};

/// burn's flex RNG is process-global: runs that compare numbers must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

fn elmo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../stilts-models/tests/fixtures/tiny-elmo")
}

/// An ELMo experiment over the tiny world; `phases` is appended verbatim.
fn elmo_toml(root: &Path, out: &str, phases: &str) -> String {
    format!(
        r#"
name = "tiny-elmo"
output_dir = "{out}"
seed = 5

[model]
pretrained = "{elmo}"

[data]
glue_dir = "{glue}"
extra_dir = "{extra}"

[recipe]
batch_size = 8
lr = 3e-3
max_seq_len = 16
{phases}
"#,
        out = root.join(out).display(),
        elmo = elmo_dir().display(),
        glue = root.join("glue").display(),
        extra = root.join("extra").display(),
    )
}

const RTE_PHASE: &str = "[[phases]]\ntasks = [\"RTE\"]\npredict_test = true\n\
                         recipe = { epochs = 6, checkpoint_every_steps = 7 }\n";

#[test]
fn elmo_learns_rte_from_separate_sentences_resumes_and_predicts() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 160, 40);

    let exp = common::resolve(&elmo_toml(&root, "straight", RTE_PHASE)).unwrap();
    assert_eq!(exp.encoder, stilts_models::EncoderKind::Elmo);
    assert_eq!(
        exp.phases[0].tasks[0].pair,
        PairMode::Separate,
        "ELMo's pair default"
    );
    let recipe = &exp.phases[0].recipe;
    assert_eq!(
        (recipe.batch_size, recipe.max_grad_norm, recipe.weight_decay),
        (8, Some(5.0), 0.0)
    );
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let straight = result(&tmp.path().join("straight"), "00-RTE/seed-5");
    let best = straight["dev_score"].as_f64().unwrap();
    assert!(
        best > 0.8,
        "dev accuracy {best}: {:#?}",
        straight["history"]
    );
    assert_eq!(
        straight["test_predictions"][0]["ids"]
            .as_array()
            .unwrap()
            .len(),
        40
    );
    let model = tmp.path().join("straight/00-RTE/seed-5/model");
    assert!(
        model.join("elmo_options.json").is_file(),
        "the characters travel with the model"
    );

    // The saved model predicts what the run scored: the dev set's first records, read back.
    let (predictor, _) =
        Predictor::load(&model, &PredictOptions::default(), &Device::flex()).unwrap();
    let records = [
        PredictRecord {
            text_a: "the cat sat".into(),
            text_b: Some("yes it did".into()),
        },
        PredictRecord {
            text_a: "the cat sat".into(),
            text_b: Some("no it did".into()),
        },
    ];
    let out = predictor.predict(&records).unwrap();
    let argmax = |l: &[f32]| if l[0] > l[1] { 0 } else { 1 };
    assert_ne!(argmax(&out[0].logits), argmax(&out[1].logits), "{out:?}");

    let exp = common::resolve(&elmo_toml(&root, "resumed", RTE_PHASE)).unwrap();
    let killed = catch_unwind(AssertUnwindSafe(|| {
        let _ = run_experiment(&exp, &mut KillAt { at: 30, seen: 0 });
    }));
    assert!(killed.is_err(), "the run should have been killed");
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let resumed = result(&tmp.path().join("resumed"), "00-RTE/seed-5");
    assert_eq!(resumed["resumed"], Value::Bool(true));
    assert_eq!(comparable(resumed), comparable(straight));
}

#[test]
fn frozen_elmo_trains_the_mix_and_the_head_only() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 48, 16);
    let phases = "[[phases]]\nname = \"a\"\ntasks = [\"RTE\"]\nrecipe = { epochs = 1 }\n\
                  [[phases]]\nname = \"b\"\ntasks = [\"RTE\"]\nrecipe = { epochs = 1, freeze = [\"bilm\"] }\n";
    let exp = common::resolve(&elmo_toml(&root, "out", phases)).unwrap();
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let out = tmp.path().join("out");
    let load = |p: &str| load_model(&out.join(p).join("seed-5/model"), &Device::flex()).unwrap();
    let (a, b) = (load("00-a"), load("01-b"));
    let (stilts_models::Encoder::Elmo(ea), stilts_models::Encoder::Elmo(eb)) =
        (&a.model.encoder, &b.model.encoder)
    else {
        panic!("an ELMo experiment saves an ELMo")
    };
    assert_eq!(
        weights_sha256(&ea.bilm),
        weights_sha256(&eb.bilm),
        "the biLM is frozen"
    );
    assert_ne!(
        weights_sha256(&ea.scalar_mix),
        weights_sha256(&eb.scalar_mix),
        "the mix trains"
    );

    let text = elmo_toml(
        &root,
        "bad",
        "[[phases]]\ntasks = [\"RTE\"]\nrecipe = { freeze = [\"layer.0\"] }\n",
    );
    let err = run_experiment(&common::resolve(&text).unwrap(), &mut NoopObserver)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bilm, char_cnn, lstm.0, lstm.1"), "{err}");
}

/// Records the rate of each epoch's first step.
#[derive(Default)]
struct Rates {
    epoch: Vec<f64>,
    fresh: bool,
}

impl Observer for Rates {
    fn epoch_start(&mut self, _epoch: usize, _steps: u64, _done: u64) {
        self.fresh = true;
    }
    fn step(&mut self, e: &StepEvent) {
        if std::mem::take(&mut self.fresh) {
            self.epoch.push(e.lr);
        }
    }
}

/// The ELMo preset's plateau schedule halves the rate after two epoch ends without a dev
/// improvement, and early stopping ends the run `patience + 1` epoch ends after its best,
/// keeping the best epoch's model (here no epoch learns anything: the rate is negligible); the
/// second cut takes the rate below the floor of 1e-6, which also stops the run.
#[test]
fn plateau_halves_the_rate_and_early_stopping_ends_the_run() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 32, 16);
    let phases = "[[phases]]\ntasks = [\"RTE\"]\nrecipe = { epochs = 10, lr = 2e-6, early_stop_patience = 3 }\n";
    let exp = common::resolve(&elmo_toml(&root, "out", phases)).unwrap();
    let mut rates = Rates::default();
    run_experiment(&exp, &mut rates).unwrap();
    let r = result(&tmp.path().join("out"), "00-RTE/seed-5");
    let history = r["history"].as_array().unwrap();
    let scores: Vec<f64> = history
        .iter()
        .map(|e| e["dev_score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] == w[1]), "{scores:?}");
    assert_eq!(history.len(), 5, "stopped 4 epoch ends after the best");
    assert_eq!(r["kept_epoch"], 1);
    assert_eq!(rates.epoch, [2e-6, 2e-6, 2e-6, 1e-6, 1e-6]);

    // Without early stopping, the floor alone ends it at the same epoch.
    let phases = "[[phases]]\ntasks = [\"RTE\"]\nrecipe = { epochs = 10, lr = 2e-6 }\n";
    let exp = common::resolve(&elmo_toml(&root, "floor", phases)).unwrap();
    assert_eq!(
        exp.phases[0].recipe.early_stop_patience,
        Some(5),
        "the ELMo preset"
    );
    let exp = common::resolve(&elmo_toml(
        &root,
        "floor",
        &phases.replace("lr = 2e-6", "lr = 2e-6, early_stop_patience = 0"),
    ))
    .unwrap();
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let r = result(&tmp.path().join("floor"), "00-RTE/seed-5");
    assert_eq!(r["history"].as_array().unwrap().len(), 5);
}

/// The paper's Table 3 regime with ELMo: a multitask phase {NLI3, RTE} (three-way NLI and RTE,
/// both read as separate sentences), then RTE reusing the multitask phase's RTE head, two
/// restarts; the second phase starts from the first's encoder, scalar mix included.
#[test]
fn elmo_multitask_then_target_reuses_its_head() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 64, 16);
    let nli = common::nli3(tmp.path(), 64, 16);
    let phases = format!(
        "[[phases]]\nname = \"mt\"\ntasks = [\"{}\", \"RTE\"]\nrecipe = {{ epochs = 2 }}\n\
         [[phases]]\nname = \"rte\"\ntasks = [\"RTE\"]\nhead = \"reuse\"\nrestarts = 2\nrecipe = {{ epochs = 1 }}\n",
        nli.display()
    );
    let exp = common::resolve(&elmo_toml(&root, "mt", &phases)).unwrap();
    assert!(
        exp.phases[0]
            .tasks
            .iter()
            .all(|t| t.pair == PairMode::Separate)
    );
    let summary = run_experiment(&exp, &mut NoopObserver).unwrap();
    assert_eq!(summary.phases.len(), 2);
    assert_eq!(summary.phases[1].runs.len(), 2);
    let mt = result(&tmp.path().join("mt"), "00-mt/seed-5");
    let dev = mt["history"][1]["dev"].as_array().unwrap();
    assert_eq!(
        (dev[0]["task"].as_str(), dev[1]["task"].as_str()),
        (Some("NLI3"), Some("RTE"))
    );
    let out = tmp.path().join("mt");
    let load = |p: &str| load_model(&out.join(p), &Device::flex()).unwrap();
    let (a, b) = (load("00-mt/seed-5/model"), load("01-rte/seed-5/model"));
    assert_eq!(a.meta.heads.len(), 2);
    assert_eq!(b.meta.heads.len(), 1);
    assert_eq!(b.meta.heads[0].task, "RTE");
}
