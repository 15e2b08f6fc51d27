//! Head policies, samplers, gradient clipping and restart selection, without training.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use stilts_data::BuiltinTask;
use stilts_models::EncoderConfig;
use stilts_models::bert::BertConfig;
use stilts_train::batching::plan_epoch;
use stilts_train::config::PairMode;
use stilts_train::config::{HeadPolicy, Sampler};
use stilts_train::experiment::summarize;
use stilts_train::model::{Carried, HeadInfo, ModelMeta, apply_head_policy, skeleton};
use stilts_train::optim::clip_global_norm;
use stilts_train::results::{RunResult, best_of, is_degenerate};

fn mnli_model(device: &Device) -> Carried {
    let meta = ModelMeta::new(
        EncoderConfig::Bert(BertConfig::new(30, 8, 1, 2, 16)),
        vec![HeadInfo::for_task(
            &BuiltinTask::Mnli.task(),
            PairMode::Joint,
        )],
    );
    Carried {
        model: skeleton(&meta, device).expect("a BERT skeleton"),
        meta,
    }
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

#[test]
fn reuse_needs_same_labels_in_same_order() {
    let device = Device::flex();
    let prev = mnli_model(&device);
    let mnli = BuiltinTask::Mnli.task();
    let ok = apply_head_policy(
        "p",
        &HeadPolicy::Reuse,
        &prev,
        &[(&mnli, PairMode::Joint)],
        &device,
    )
    .unwrap();
    assert_eq!(
        values(ok.model.heads[0].classifier.weight.val()),
        values(prev.model.heads[0].classifier.weight.val())
    );
    let rte = BuiltinTask::Rte.task();
    let err = apply_head_policy(
        "p",
        &HeadPolicy::Reuse,
        &prev,
        &[(&rte, PairMode::Joint)],
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no previous head has the labels of RTE"),
        "{err}"
    );
    assert!(
        err.contains("MNLI [contradiction, entailment, neutral]"),
        "{err}"
    );
    let mut reordered = mnli.clone();
    reordered.name = "MNLI-reordered".into();
    reordered.target = stilts_data::Target::Classification {
        labels: vec![
            "entailment".into(),
            "contradiction".into(),
            "neutral".into(),
        ],
    };
    assert!(
        apply_head_policy(
            "p",
            &HeadPolicy::Reuse,
            &prev,
            &[(&reordered, PairMode::Joint)],
            &device
        )
        .is_err()
    );
    let stsb = BuiltinTask::Stsb.task();
    assert!(
        apply_head_policy(
            "p",
            &HeadPolicy::Reuse,
            &prev,
            &[(&stsb, PairMode::Joint)],
            &device
        )
        .is_err()
    );
}

#[test]
fn map_copies_the_mapped_outputs() {
    let device = Device::flex();
    let prev = mnli_model(&device);
    let rte = BuiltinTask::Rte.task();
    let map: BTreeMap<String, String> = [
        ("entailment".to_owned(), "entailment".to_owned()),
        ("not_entailment".to_owned(), "contradiction".to_owned()),
    ]
    .into();
    let policy = HeadPolicy::Map {
        label_map: map.clone(),
    };
    let got = apply_head_policy("p", &policy, &prev, &[(&rte, PairMode::Joint)], &device).unwrap();
    let old = prev.model.heads[0].classifier.weight.val(); // [8, 3]
    let new = got.model.heads[0].classifier.weight.val(); // [8, 2]
    assert_eq!(new.dims(), [8, 2]);
    assert_eq!(
        values(new.clone().narrow(1, 0, 1)),
        values(old.clone().narrow(1, 1, 1))
    );
    assert_eq!(values(new.narrow(1, 1, 1)), values(old.narrow(1, 0, 1)));
    assert_eq!(got.meta.heads[0].labels, rte.labels());

    let mut bad = map;
    bad.insert("not_entailment".into(), "neutrall".into());
    let err = apply_head_policy(
        "p",
        &HeadPolicy::Map { label_map: bad },
        &prev,
        &[(&rte, PairMode::Joint)],
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`neutrall`, which is not a label of MNLI"),
        "{err}"
    );
}

#[test]
fn new_heads_fit_each_task() {
    let device = Device::flex();
    let prev = mnli_model(&device);
    let (rte, stsb) = (BuiltinTask::Rte.task(), BuiltinTask::Stsb.task());
    let got = apply_head_policy(
        "p",
        &HeadPolicy::New,
        &prev,
        &[(&rte, PairMode::Joint), (&stsb, PairMode::Joint)],
        &device,
    )
    .unwrap();
    assert_eq!(got.model.heads.len(), 2);
    assert_eq!(got.model.heads[0].classifier.weight.dims(), [8, 2]);
    assert_eq!(got.model.heads[1].classifier.weight.dims(), [8, 1]);
}

#[test]
fn sampler_empirical_proportions() {
    let lengths = vec![vec![5; 6000], vec![5; 2000]];
    let count = |sampler| {
        let mut n = [0usize; 2];
        for epoch in 0..2 {
            for b in plan_epoch(&lengths, 1, false, sampler, 11, epoch) {
                n[b.task] += 1;
            }
        }
        n[0] as f64 / (n[0] + n[1]) as f64
    };
    let p = count(Sampler::Proportional);
    assert!((p - 0.75).abs() < 0.01, "proportional {p}");
    let p = count(Sampler::Uniform);
    assert!((p - 0.5).abs() < 0.01, "uniform {p}");
    let p = count(Sampler::Temperature { temperature: 2.0 });
    let want = 6000f64.sqrt() / (6000f64.sqrt() + 2000f64.sqrt());
    assert!((p - want).abs() < 0.01, "temperature {p} vs {want}");
    // An epoch has as many batches as one pass over every task.
    assert_eq!(
        plan_epoch(&lengths, 10, false, Sampler::Uniform, 1, 0).len(),
        800
    );
}

#[test]
fn global_norm_clipping() {
    let device = Device::flex().autodiff();
    let model = burn::nn::LinearConfig::new(4, 3).init(&device);
    let x = Tensor::<2>::ones([2, 4], &device).mul_scalar(10.0);
    let loss = model.forward(x).sum();
    let mut grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
    let before = clip_global_norm(&model, &mut grads, 1.0);
    assert!(before > 1.0);
    let after = clip_global_norm(&model, &mut grads, 1e9);
    assert!((after - 1.0).abs() < 1e-4, "{after}");
    assert_eq!(model.num_params(), 15);
}

fn result(seed: u64, dev: f64, baseline: f64) -> RunResult {
    RunResult {
        phase: "p".into(),
        seed,
        history: vec![],
        kept_epoch: 0,
        dev_score: dev,
        baseline,
        task_baselines: Default::default(),
        degenerate: is_degenerate(dev, baseline),
        data: vec![],
        manifests: vec![],
        weights_sha256: String::new(),
        dev_predictions: vec![],
        test_predictions: vec![],
        steps: 0,
        train_examples_seen: 0,
        wall_s: 1.0,
        examples_per_s: 0.0,
        resumed: false,
        loss_curve: Vec::new(),
        epoch_times: Vec::new(),
        sizes: None,
    }
}

#[test]
fn best_of_n_and_degenerate_flags() {
    let runs = vec![
        result(1, 0.527, 0.527),
        result(2, 0.70, 0.527),
        result(3, f64::NAN, 0.527),
        result(4, 0.70, 0.527),
        result(5, 0.40, 0.527),
    ];
    assert_eq!(best_of(&runs), Some(1));
    let s = summarize("p", &runs[..2], &[]).unwrap();
    assert_eq!(s.best_seed, 2);
    assert_eq!(s.degenerate, 1);
    assert_eq!(s.runs.len(), 2);
    assert!(s.runs[0].degenerate && !s.runs[1].degenerate);
    assert!((s.mean - 0.6135).abs() < 1e-12);
    assert_eq!((s.min, s.max), (0.527, 0.70));
    assert!(runs[2].degenerate && runs[4].degenerate);
    let all = summarize("p", &runs, &[]).unwrap();
    assert_eq!(all.degenerate, 3);
    assert_eq!(all.best_seed, 2);
}

#[test]
fn checkpoint_survives_a_crash_between_renames() {
    use stilts_train::checkpoint::{self, TrainState};
    let device = Device::flex();
    let carried = mnli_model(&device);
    let tmp = tempfile::tempdir().unwrap();
    let dir = checkpoint::dir(tmp.path());
    let optimizer = stilts_models::bert::AdamWGroupsConfig::new().init();
    let state = TrainState {
        fingerprint: "f".into(),
        phase: "p".into(),
        seed: 1,
        next_epoch: 1,
        group_in_epoch: 0,
        step: 10,
        epoch_loss_sum: 0.0,
        epoch_aux_loss_sum: 0.0,
        epoch_loss_steps: 0,
        examples_seen: 80,
        history: vec![],
        wall_s: 1.0,
        train_s: 1.0,
        loss_curve: Vec::new(),
        loss_window: (0.0, 0.0, 0),
        epoch_train_s: 0.0,
        epoch_examples: 0,
        epoch_times: Vec::new(),
    };
    checkpoint::save(&dir, &carried.model, &carried.meta, &optimizer, &state).unwrap();
    let mut later = state.clone();
    later.step = 20;
    checkpoint::save(&dir, &carried.model, &carried.meta, &optimizer, &later).unwrap();
    assert!(!tmp.path().join("checkpoint.old").exists());
    // A crash after `checkpoint` was moved aside and before the new one was moved in.
    std::fs::rename(&dir, tmp.path().join("checkpoint.old")).unwrap();
    let ck = checkpoint::load(&dir, &device).unwrap().unwrap();
    assert_eq!(ck.state, later);
    assert_eq!(
        stilts_train::model::store::weights_sha256(&ck.model),
        stilts_train::model::store::weights_sha256(&carried.model)
    );
    checkpoint::load_optimizer(&dir, optimizer).unwrap();
    checkpoint::remove(&dir).unwrap();
    assert!(checkpoint::load(&dir, &device).unwrap().is_none());
}

/// A checkpoint whose files do not match its manifest is named and not used: the previous one
/// is, when a crash left it; otherwise it is set aside and the run starts over.
#[test]
fn damaged_checkpoints_are_named_and_never_resumed_from() {
    use stilts_train::checkpoint::{self, TrainState};
    let device = Device::flex();
    let carried = mnli_model(&device);
    let tmp = tempfile::tempdir().unwrap();
    let dir = checkpoint::dir(tmp.path());
    let old = tmp.path().join("checkpoint.old");
    let optimizer = stilts_models::bert::AdamWGroupsConfig::new().init();
    let mut state = TrainState::new("f".into(), "p", 1);
    state.step = 10;
    checkpoint::save(&dir, &carried.model, &carried.meta, &optimizer, &state).unwrap();
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    for file in ["model.bpk", "optimizer.bpk", "meta.json", "state.json"] {
        assert!(manifest.contains(file), "{manifest}");
    }
    let previous = tmp.path().join("previous");
    copy_dir(&dir, &previous);
    let mut later = state.clone();
    later.step = 20;
    checkpoint::save(&dir, &carried.model, &carried.meta, &optimizer, &later).unwrap();
    // As a crash leaves it after the new checkpoint was moved in, before the previous one was
    // removed.
    std::fs::rename(&previous, &old).unwrap();
    assert_eq!(
        checkpoint::load(&dir, &device).unwrap().unwrap().state,
        later
    );

    // The newest model file damaged in place: the previous checkpoint is used.
    let model = dir.join("model.bpk");
    let mut bytes = std::fs::read(&model).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&model, &bytes).unwrap();
    let ck = checkpoint::load(&dir, &device).unwrap().unwrap();
    assert_eq!(ck.state, state);
    assert_eq!(ck.dir, old);
    checkpoint::load_optimizer(&ck.dir, optimizer.clone()).unwrap();

    // Damaged with nothing to fall back on (the file cut short): set aside, the run starts over.
    std::fs::remove_dir_all(&old).unwrap();
    bytes.truncate(mid);
    std::fs::write(&model, &bytes).unwrap();
    assert!(checkpoint::load(&dir, &device).unwrap().is_none());
    assert!(!dir.exists());
    assert!(tmp.path().join("checkpoint.corrupt/model.bpk").is_file());

    // A checkpoint written before manifests loads unchecked.
    checkpoint::save(&dir, &carried.model, &carried.meta, &optimizer, &later).unwrap();
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    assert_eq!(
        checkpoint::load(&dir, &device).unwrap().unwrap().state,
        later
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A saved model directory carries a manifest: a damaged file is named when it is loaded,
/// never read as weights.
#[test]
fn a_damaged_saved_model_is_named() {
    use stilts_train::model::store::{load_model, write_model_dir};
    let device = Device::flex();
    let carried = mnli_model(&device);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    write_model_dir(&carried, &dir, None).unwrap();
    assert!(dir.join("manifest.json").is_file());
    load_model(&dir, &device).unwrap();
    let weights = dir.join("model.bpk");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    std::fs::write(&weights, &bytes).unwrap();
    let err = load_model(&dir, &device).unwrap_err().to_string();
    assert!(
        err.contains("damaged") && err.contains("model.bpk") && err.contains("SHA-256"),
        "{err}"
    );
}
