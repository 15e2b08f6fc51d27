//! Data-parallel training (`devices = [...]`, `stilts_train::replicas`) on two replicas of the
//! default CPU backend: the same training as one device with the same total batch (within
//! 1e-5 after two epochs of steps), reproducible with dropout on, and refused when `device` is
//! set beside it.

mod common;

use std::path::Path;
use std::sync::Mutex;

use serde_json::Value;
use stilts_train::experiment::run_experiment;
use stilts_train::observer::NoopObserver;

/// burn's flex RNG is process-global: runs that compare numbers must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

fn run(root: &Path, out: &str, devices: Option<&str>, dropout: f64) -> Value {
    let text = common::experiment_toml(
        root,
        out,
        &format!(
            "[[phases]]\ntasks = [{{ task = \"RTE\", train_examples = 60 }}]\n\
             recipe = {{ epochs = 2, lr = 3e-3, dropout = {dropout} }}\n"
        ),
    );
    let text = match devices {
        Some(d) => text.replacen("seed = 7\n", &format!("seed = 7\ndevices = {d}\n"), 1),
        None => text,
    };
    let exp = common::resolve(&text).unwrap();
    run_experiment(&exp, &mut NoopObserver).unwrap();
    common::result(&root.join(out), "00-RTE/seed-7")
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        _ => Vec::new(),
    }
}

#[test]
fn two_replicas_train_as_one_device_with_the_same_batch() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 200, 40);
    let one = run(&root, "one", None, 0.0);
    let two = run(&root, "two", Some("[\"cpu\", \"cpu\"]"), 0.0);
    assert_eq!(one["steps"], two["steps"]);
    assert!(one["steps"].as_u64().unwrap() >= 10, "several steps");
    let losses = common::train_losses;
    for (a, b) in losses(&one).iter().zip(losses(&two)) {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "train loss {a} vs {b}"
        );
    }
    // The dev logits read every weight of the final model.
    let (a, b) = (
        floats(&one["dev_predictions"][0]["logits"]),
        floats(&two["dev_predictions"][0]["logits"]),
    );
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(worst <= 1e-5, "dev logits differ by {worst}");
}

#[test]
fn replicas_with_dropout_are_reproducible() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 120, 20);
    let a = run(&root, "a", Some("[\"cpu\", \"cpu\"]"), 0.1);
    let b = run(&root, "b", Some("[\"cpu\", \"cpu\"]"), 0.1);
    assert_eq!(a["weights_sha256"], b["weights_sha256"]);
    assert_eq!(a["history"], b["history"]);
}

#[test]
fn device_and_devices_together_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 20, 10);
    let text = common::experiment_toml(&root, "x", "[[phases]]\ntasks = [\"RTE\"]\n").replacen(
        "seed = 7\n",
        "seed = 7\ndevice = \"cpu\"\ndevices = [\"cpu\", \"cpu\"]\n",
        1,
    );
    let err = common::resolve(&text).unwrap_err().to_string();
    assert!(err.contains("devices"), "{err}");
    let text = common::experiment_toml(&root, "x", "[[phases]]\ntasks = [\"RTE\"]\n").replacen(
        "seed = 7\n",
        "seed = 7\ndevices = [\"cpu\", \"gpu\"]\n",
        1,
    );
    let err = common::resolve(&text).unwrap_err().to_string();
    assert!(err.contains("devices[1]"), "{err}");
}
