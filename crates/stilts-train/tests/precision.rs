//! Mixed-precision training (`recipe.precision = "bf16"`) on the default CPU backend: the
//! forward and backward passes in bf16, the weights and optimizer state in f32. A bf16 run
//! follows the f32 run of the same seed within bf16's rounding, saves f32 weights, resumes to
//! identical results, and the precisions it cannot train in are refused by name.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{DType, Device, Tensor};
use common::{KillAt, comparable, result, train_losses};
use serde_json::Value;
use stilts_train::experiment::run_experiment;
use stilts_train::observer::NoopObserver;

/// burn's flex RNG is process-global: runs that compare numbers must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

fn phases(precision: &str, extra: &str) -> String {
    format!(
        "[[phases]]\ntasks = [\"RTE\"]\n\
         recipe = {{ epochs = 4, lr = 3e-3, dropout = 0.0, precision = \"{precision}\"{extra} }}\n"
    )
}

fn experiment(root: &Path, out: &str, phases: &str) -> stilts_train::config::Experiment {
    let out = root.join(out);
    common::resolve(&common::experiment_toml(
        root,
        out.to_str().unwrap(),
        phases,
    ))
    .unwrap()
}

fn dev_logits(r: &Value) -> Vec<f64> {
    r["dev_predictions"][0]["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect()
}

/// The float type of every parameter of the model saved in `dir`.
fn saved_dtypes(dir: &Path) -> Vec<DType> {
    struct Dtypes(Vec<DType>);
    impl ModuleVisitor for Dtypes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().dtype());
        }
    }
    let carried = stilts_train::model::load_model(dir, &Device::flex()).unwrap();
    let mut v = Dtypes(Vec::new());
    carried.model.visit(&mut v);
    v.0
}

#[test]
fn bf16_training_follows_f32_training_and_keeps_f32_weights() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 200, 40);
    let f32_exp = experiment(&root, "f32", &phases("f32", ""));
    let bf16_exp = experiment(&root, "bf16", &phases("bf16", ""));
    assert_eq!(
        f32_exp.phases[0].recipe.precision,
        stilts_train::config::TrainPrecision::F32
    );
    run_experiment(&f32_exp, &mut NoopObserver).unwrap();
    run_experiment(&bf16_exp, &mut NoopObserver).unwrap();
    let full = result(&root.join("f32"), "00-RTE/seed-7");
    let mixed = result(&root.join("bf16"), "00-RTE/seed-7");
    assert_eq!(full["steps"], mixed["steps"]);

    let (a, b) = (train_losses(&full), train_losses(&mixed));
    eprintln!(
        "f32 {a:?}\nbf16 {b:?}\ndev {} vs {}",
        full["dev_score"], mixed["dev_score"]
    );
    assert!(a[3] < a[0] - 0.05, "the f32 run learns: {a:?}");
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 0.02, "train loss f32 {x} vs bf16 {y}");
    }
    // Every gradient reaches the f32 weights: the run learns as much as the f32 run.
    assert!(b[3] < b[0] - 0.05, "the bf16 run learns: {b:?}");
    let (la, lb) = (dev_logits(&full), dev_logits(&mixed));
    let worst = la
        .iter()
        .zip(&lb)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    eprintln!("dev logits differ by at most {worst}");
    assert!(worst > 0.0, "bf16 computes differently from f32");
    assert!(worst <= 0.15, "dev logits differ by {worst}");

    let dtypes = saved_dtypes(&root.join("bf16/00-RTE/seed-7/model"));
    assert!(dtypes.len() > 10);
    assert!(dtypes.iter().all(|d| *d == DType::F32), "{dtypes:?}");
    let recorded = |out: &str| -> Value {
        let text = std::fs::read_to_string(root.join(out).join("experiment.json")).unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["phases"][0]["recipe"].clone()
    };
    assert_eq!(recorded("bf16")["precision"], "bf16");
    assert!(
        recorded("f32").get("precision").is_none(),
        "f32 stays unwritten"
    );
}

#[test]
fn a_killed_bf16_run_resumes_to_the_same_result() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 96, 24);
    let p = phases("bf16", ", checkpoint_every_steps = 3, dropout = 0.1")
        .replace("dropout = 0.0, ", "");
    let straight = experiment(&root, "straight", &p);
    run_experiment(&straight, &mut NoopObserver).unwrap();
    let resumed = experiment(&root, "resumed", &p);
    let killed = catch_unwind(AssertUnwindSafe(|| {
        let _ = run_experiment(&resumed, &mut KillAt { at: 5, seen: 0 });
    }));
    assert!(killed.is_err(), "the run should have been killed");
    run_experiment(&resumed, &mut NoopObserver).unwrap();
    let (a, b) = (
        result(&root.join("straight"), "00-RTE/seed-7"),
        result(&root.join("resumed"), "00-RTE/seed-7"),
    );
    assert_eq!(b["resumed"], Value::Bool(true));
    assert_eq!(comparable(a), comparable(b));
}

#[test]
fn precisions_that_cannot_train_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 20, 10);
    let resolve = |p: &str| {
        common::resolve(&common::experiment_toml(&root, "x", p))
            .unwrap_err()
            .to_string()
    };
    let err = resolve(&phases("f16", ""));
    assert!(
        err.contains("phases[0].recipe.precision") && err.contains("loss scaling"),
        "{err}"
    );
    let err = resolve(&phases("f64", ""));
    assert!(err.contains("precision") && err.contains("bf16"), "{err}");
}
