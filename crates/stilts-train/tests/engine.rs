//! End-to-end runs of the engine on a tiny random BERT: training learns, restarts are
//! summarised, phases chain with head policies, multitask phases run.

mod common;

use std::sync::Mutex;

use stilts_train::experiment::run_experiment;
use stilts_train::observer::NoopObserver;

/// burn's flex RNG is process-global: runs that compare numbers must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn single_phase_learns_and_writes_outputs() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 240, 60);
    let text = common::experiment_toml(
        &root,
        "out",
        "[[phases]]\ntasks = [\"RTE\"]\nrestarts = 2\npredict_test = true\nrecipe = { epochs = 8, lr = 3e-3, warmup_proportion = 0.05 }\n",
    );
    let exp = common::resolve(&text).unwrap();
    let t = std::time::Instant::now();
    let summary = run_experiment(&exp, &mut NoopObserver).unwrap();
    println!("{:#?} in {:?}", summary, t.elapsed());
    let phase = &summary.phases[0];
    assert_eq!(phase.runs.len(), 2);
    assert!(phase.best_dev_score > 0.8, "{phase:?}");
    let run = tmp.path().join("out/00-RTE/seed-7");
    for f in [
        "result.json",
        "val_history.json",
        "model/stilts-model.json",
        "model/model.bpk",
    ] {
        assert!(run.join(f).exists(), "{f}");
    }
    assert!(!run.join("checkpoint").exists());
    let result: stilts_train::phase::RunResult =
        serde_json::from_str(&std::fs::read_to_string(run.join("result.json")).unwrap()).unwrap();
    assert_eq!(result.history.len(), 8);
    assert_eq!(result.dev_predictions[0].ids.len(), 60);
    assert_eq!(result.test_predictions[0].ids.len(), 60);
    assert_eq!(result.steps, 8 * 30);
    assert!(!result.degenerate && result.baseline < 0.6);
}
