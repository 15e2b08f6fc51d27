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
        // The tokenizer travels with the model, so `model.checkpoint` needs nothing else.
        "model/vocab.txt",
        "curves.svg",
    ] {
        assert!(run.join(f).exists(), "{f}");
    }
    assert!(!run.join("checkpoint").exists());
    let result: stilts_train::results::RunResult =
        serde_json::from_str(&std::fs::read_to_string(run.join("result.json")).unwrap()).unwrap();
    assert_eq!(result.history.len(), 8);
    assert_eq!(result.dev_predictions[0].ids.len(), 60);
    assert_eq!(result.test_predictions[0].ids.len(), 60);
    assert_eq!(result.steps, 8 * 30);
    assert!(!result.degenerate && result.baseline < 0.6);
    // Each epoch's training time and rate; together they are the run's.
    let times = &result.epoch_times;
    assert_eq!(
        times.iter().map(|t| t.epoch).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    assert_eq!(
        times.iter().map(|t| t.examples).sum::<u64>(),
        result.train_examples_seen
    );
    for t in times {
        assert!(t.train_s > 0.0 && t.train_s < result.wall_s, "{t:?}");
        assert!((t.examples_per_s - t.examples as f64 / t.train_s).abs() < 1e-6 * t.examples_per_s);
    }
    // 240 steps: a point every 2 steps, each the mean of its window; the windows' losses
    // average to each epoch's mean loss.
    let curve = &result.loss_curve;
    assert_eq!(curve.len(), 120);
    assert_eq!(curve.last().map(|p| p.step), Some(240));
    for (epoch, record) in result.history.iter().enumerate() {
        let points: Vec<f64> = curve[epoch * 15..(epoch + 1) * 15]
            .iter()
            .map(|p| p.loss)
            .collect();
        let mean = points.iter().sum::<f64>() / 15.0;
        assert!(
            (mean - record.train_loss).abs() < 1e-9,
            "{mean} {}",
            record.train_loss
        );
    }
    assert!(curve[0].loss > curve[119].loss, "{curve:?}");
    let svg = std::fs::read_to_string(run.join("curves.svg")).unwrap();
    assert!(svg.contains("RTE · seed 7: dev score"));
    assert_eq!(svg.matches("<circle").count(), 8, "one dot per epoch");
}

#[derive(Default)]
struct Recorder {
    lrs: Vec<f64>,
    total: u64,
}

impl stilts_train::observer::Observer for Recorder {
    fn step(&mut self, e: &stilts_train::observer::StepEvent) {
        self.lrs.push(e.lr);
        self.total = e.total_steps;
    }
}

#[test]
fn schedule_and_accumulation_in_a_real_run() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 100, 20);
    // 100 examples / batch 8 = 13 batches; accumulation 2 -> 7 steps per epoch, 14 in all;
    // warmup floor(0.25 * 14) = 3 steps.
    let text = common::experiment_toml(
        &root,
        "out",
        "[[phases]]\ntasks = [\"RTE\"]\nrecipe = { grad_accum_steps = 2, warmup_proportion = 0.25, lr = 1e-3 }\n",
    );
    let exp = common::resolve(&text).unwrap();
    let mut rec = Recorder::default();
    let summary = run_experiment(&exp, &mut rec).unwrap();
    assert_eq!(rec.total, 14);
    assert_eq!(rec.lrs.len(), 14);
    let want: Vec<f64> = (0..14u64)
        .map(|s| {
            if s < 3 {
                1e-3 * s as f64 / 3.0
            } else {
                1e-3 * (14 - s) as f64 / 11.0
            }
        })
        .collect();
    for (g, w) in rec.lrs.iter().zip(&want) {
        assert!((g - w).abs() < 1e-15, "{:?} vs {want:?}", rec.lrs);
    }
    assert_eq!(summary.phases[0].runs.len(), 1);
}

#[test]
fn multitask_then_target_with_reuse_and_stilts_with_map() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 120, 40);
    let nli = common::nli3(tmp.path(), 240, 40);
    // {NLI3, RTE} -> RTE (reusing the multitask phase's RTE head), the paper's Table 3 regime.
    let text = common::experiment_toml(
        &root,
        "mt",
        &format!(
            "[[phases]]\nname = \"mt\"\ntasks = [\"{}\", \"RTE\"]\nsampler = \"proportional\"\nrecipe = {{ epochs = 4 }}\n\
             [[phases]]\nname = \"rte\"\ntasks = [\"RTE\"]\nhead = \"reuse\"\nrestarts = 2\nrecipe = {{ epochs = 1 }}\n",
            nli.display()
        ),
    );
    let exp = common::resolve(&text).unwrap();
    let summary = run_experiment(&exp, &mut NoopObserver).unwrap();
    assert_eq!(summary.phases.len(), 2);
    let mt: stilts_train::results::RunResult = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("mt/00-mt/seed-7/result.json")).unwrap(),
    )
    .unwrap();
    let dev = &mt.history.last().unwrap().dev;
    assert_eq!(dev.len(), 2);
    assert_eq!(
        (dev[0].task.as_str(), dev[1].task.as_str()),
        ("NLI3", "RTE")
    );
    // Each task is judged against its own majority-class baseline; the run's is their mean.
    let names: Vec<&str> = mt.task_baselines.keys().map(String::as_str).collect();
    assert_eq!(names, ["NLI3", "RTE"]);
    assert!(
        mt.task_baselines.values().all(|b| *b > 0.2 && *b < 0.8),
        "{:?}",
        mt.task_baselines
    );
    let mean = mt.task_baselines.values().sum::<f64>() / 2.0;
    assert!((mt.baseline - mean).abs() < 1e-12);
    // 240 + 120 examples at batch 8: 30 + 15 batches per epoch.
    assert_eq!(mt.steps, 4 * 45);
    assert_eq!(summary.phases[1].runs.len(), 2);
    assert_eq!(
        summary.phases[1]
            .runs
            .iter()
            .map(|r| r.seed)
            .collect::<Vec<_>>(),
        vec![7, 8]
    );

    // NLI3 -> RTE with a declared label mapping (entailment -> entailment,
    // not_entailment -> contradiction), downsampled target.
    let text = common::experiment_toml(
        &root,
        "map",
        &format!(
            "[[phases]]\nname = \"nli\"\ntasks = [\"{}\"]\nrecipe = {{ epochs = 1 }}\n\
             [[phases]]\nname = \"rte\"\ntasks = [{{ task = \"RTE\", train_examples = 50 }}]\nhead = \"map\"\n\
             label_map = {{ entailment = \"entailment\", not_entailment = \"contradiction\" }}\nrecipe = {{ epochs = 1 }}\n",
            nli.display()
        ),
    );
    let exp = common::resolve(&text).unwrap();
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let rte: stilts_train::results::RunResult = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("map/01-rte/seed-7/result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rte.manifests.len(), 1);
    assert_eq!(rte.manifests[0].ids.len(), 50);
    assert_eq!(rte.steps, 7);

    // {NLI3, RTE} read on RTE: restarts are ranked, and judged degenerate, on RTE alone.
    let text = common::experiment_toml(
        &root,
        "on_rte",
        &format!(
            "[[phases]]\nname = \"mt\"\ntasks = [\"{}\", \"RTE\"]\nselect_on = \"RTE\"\nrestarts = 2\nrecipe = {{ epochs = 1 }}\n",
            nli.display()
        ),
    );
    let exp = common::resolve(&text).unwrap();
    assert_eq!(exp.phases[0].select_on, Some(1));
    let summary = run_experiment(&exp, &mut NoopObserver).unwrap();
    assert_eq!(summary.phases[0].runs.len(), 2);
    let mut rte_scores = Vec::new();
    for seed in [7, 8] {
        let path = tmp
            .path()
            .join(format!("on_rte/00-mt/seed-{seed}/result.json"));
        let r: stilts_train::results::RunResult =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let last = r.history.last().unwrap();
        assert_eq!(last.dev[1].task, "RTE");
        assert_eq!(r.dev_score, last.dev[1].score);
        assert_eq!(last.dev_score, last.dev[1].score);
        assert_eq!(r.baseline, r.task_baselines["RTE"]);
        assert_eq!(
            r.degenerate,
            stilts_train::results::is_degenerate(r.dev_score, r.baseline)
        );
        rte_scores.push((last.dev[1].score, r.seed));
    }
    let best = if rte_scores[1].0 > rte_scores[0].0 {
        rte_scores[1].1
    } else {
        rte_scores[0].1
    };
    assert_eq!(summary.phases[0].best_seed, best);
}

/// The `bert_adam` faithfulness mode trains as well, and the run records which optimizer it used.
#[test]
fn bert_adam_mode_learns() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 240, 60);
    let text = common::experiment_toml(
        &root,
        "out",
        "[[phases]]\ntasks = [\"RTE\"]\nrecipe = { optimizer = \"bert_adam\", epochs = 8, lr = 1e-3, warmup_proportion = 0.05 }\n",
    );
    let exp = common::resolve(&text).unwrap();
    assert_eq!(
        exp.phases[0].recipe.optimizer,
        stilts_train::config::OptimizerKind::BertAdam
    );
    let summary = run_experiment(&exp, &mut NoopObserver).unwrap();
    assert!(summary.phases[0].best_dev_score > 0.8, "{summary:?}");
    let resolved = std::fs::read_to_string(tmp.path().join("out/experiment.json")).unwrap();
    let resolved: serde_json::Value = serde_json::from_str(&resolved).unwrap();
    assert_eq!(resolved["phases"][0]["recipe"]["optimizer"], "bert_adam");
}

/// `keep = "best_epoch"` trains exactly as `last` does and ends with the epoch best on dev: its
/// score, its predictions, its weights; the held best-epoch model is removed at the end.
#[test]
fn keep_best_epoch_ends_with_the_best_dev_model() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 120, 40);
    let run = |out: &str, keep: &str| -> stilts_train::results::RunResult {
        let text = common::experiment_toml(
            &root,
            out,
            &format!(
                "[[phases]]\ntasks = [\"RTE\"]\nrecipe = {{ epochs = 6, lr = 3e-3, warmup_proportion = 0.0, keep = \"{keep}\" }}\n"
            ),
        );
        let exp = common::resolve(&text).unwrap();
        run_experiment(&exp, &mut NoopObserver).unwrap();
        let dir = tmp.path().join(out).join("00-RTE/seed-7");
        assert!(!dir.join("best-epoch").exists());
        serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
    };
    let last = run("last", "last");
    let best = run("best", "best_epoch");
    assert_eq!(best.history, last.history, "keep must not change training");
    let scores: Vec<f64> = last.history.iter().map(|r| r.dev_score).collect();
    println!("dev by epoch: {scores:?}; kept epoch {}", best.kept_epoch);
    assert_eq!((last.kept_epoch, last.dev_score), (6, scores[5]));
    let i = stilts_train::results::first_best(scores.iter().copied()).unwrap();
    // This task is solved (dev 1.0) before the last epoch: the first of the equal best is kept.
    assert!(i < 5, "{scores:?}");
    assert_eq!(best.kept_epoch, i + 1);
    assert_eq!(best.dev_score, scores[i]);
    assert!(scores.iter().all(|s| *s <= best.dev_score));
    assert_eq!(best.weights_sha256 == last.weights_sha256, i == 5);

    // The predictions are the kept model's: re-scored against the gold labels they give its
    // dev score.
    let gold: std::collections::BTreeMap<String, String> =
        std::fs::read_to_string(root.join("glue/RTE/dev.tsv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_owned(), f[3].to_owned())
            })
            .collect();
    for r in [&best, &last] {
        let p = &r.dev_predictions[0];
        let right = p
            .ids
            .iter()
            .zip(&p.predictions)
            .filter(|(id, label)| gold[*id] == **label)
            .count();
        assert_eq!(right as f64 / p.ids.len() as f64, r.dev_score);
    }
}

#[test]
fn a_second_run_on_one_output_directory_is_refused_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 16, 8);
    let text = common::experiment_toml(&root, "out", "[[phases]]\ntasks = [\"RTE\"]\n");
    let exp = common::resolve(&text).unwrap();
    let held = stilts_train::experiment::lock_output_dir(&tmp.path().join("out")).unwrap();
    let err = run_experiment(&exp, &mut NoopObserver)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("in use by another stilts run")
            && err.contains(&format!("process {}", std::process::id())),
        "{err}"
    );
    assert!(
        !tmp.path().join("out/experiment.json").exists(),
        "nothing written"
    );
    drop(held);
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert!(run_experiment(&exp, &mut NoopObserver).is_ok());
}

/// A run killed after a checkpoint whose model file is then damaged (a torn copy, a bad disk)
/// does not resume from it: the damage is named, the checkpoint set aside, and the run starts
/// over to the results of an uninterrupted run.
#[test]
fn a_damaged_checkpoint_costs_the_run_not_its_results() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 96, 24);
    let phases = "[[phases]]\ntasks = [\"RTE\"]\nrecipe = { epochs = 2, lr = 3e-3, checkpoint_every_steps = 4 }\n";
    let run = |out: &str| {
        let out = tmp.path().join(out);
        common::resolve(&common::experiment_toml(
            &root,
            out.to_str().unwrap(),
            phases,
        ))
        .unwrap()
    };
    let straight = run("straight");
    run_experiment(&straight, &mut NoopObserver).unwrap();

    let damaged = run("damaged");
    let killed = catch_unwind(AssertUnwindSafe(|| {
        let _ = run_experiment(&damaged, &mut common::KillAt { at: 7, seen: 0 });
    }));
    assert!(killed.is_err());
    let run_dir = damaged.output_dir.join("00-RTE/seed-7");
    let model = run_dir.join("checkpoint/model.bpk");
    let mut bytes = std::fs::read(&model).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&model, bytes).unwrap();
    run_experiment(&damaged, &mut NoopObserver).unwrap();
    assert!(run_dir.join("checkpoint.corrupt/model.bpk").is_file());
    let result = |exp: &stilts_train::config::Experiment| {
        common::comparable(common::result(&exp.output_dir, "00-RTE/seed-7"))
    };
    assert_eq!(result(&damaged), result(&straight));
}
