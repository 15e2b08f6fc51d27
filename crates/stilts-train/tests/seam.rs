//! What the encoder seam lets a user do, on the tiny random BERT: freeze parameter groups,
//! feed pair tasks separately or in both orders, and rely on the saved-model format.

mod common;

use std::sync::Mutex;

use burn::tensor::Device;
use stilts_train::experiment::run_experiment;
use stilts_train::model::store::weights_sha256;
use stilts_train::model::{META_FILE, load_model};
use stilts_train::observer::NoopObserver;

static SERIAL: Mutex<()> = Mutex::new(());

/// The encoder of a saved model, hashed.
fn encoder_hash(dir: &std::path::Path) -> String {
    let carried = load_model(dir, &Device::flex()).unwrap();
    weights_sha256(&carried.model.encoder)
}

#[test]
fn frozen_groups_do_not_train_and_the_rest_does() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 64, 16);
    // Phase 1 trains everything; phase 2 starts from it with the whole encoder frozen (only
    // the new head trains); phase 3 freezes the embeddings and layer 0 only.
    let text = common::experiment_toml(
        &root,
        "out",
        "[[phases]]\nname = \"a\"\ntasks = [\"RTE\"]\nrecipe = { epochs = 1 }\n\
         [[phases]]\nname = \"b\"\ntasks = [\"RTE\"]\nrecipe = { epochs = 1, freeze = [\"all\"] }\n\
         [[phases]]\nname = \"c\"\ntasks = [\"RTE\"]\nrecipe = { epochs = 1, freeze = [\"embeddings\", \"layer.0\"] }\n",
    );
    let exp = common::resolve(&text).unwrap();
    assert_eq!(exp.phases[1].recipe.freeze, ["all"]);
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let out = tmp.path().join("out");
    let model = |p: &str| out.join(p).join("seed-7/model");
    let a = load_model(&model("00-a"), &Device::flex()).unwrap();
    let b = load_model(&model("01-b"), &Device::flex()).unwrap();
    let c = load_model(&model("02-c"), &Device::flex()).unwrap();
    assert_eq!(encoder_hash(&model("00-a")), encoder_hash(&model("01-b")));
    assert_ne!(
        weights_sha256(&a.model.heads[0]),
        weights_sha256(&b.model.heads[0]),
        "the head trains"
    );
    let (stilts_models::Encoder::Bert(bb), stilts_models::Encoder::Bert(cb)) =
        (&b.model.encoder, &c.model.encoder)
    else {
        panic!("the tiny world's encoder is a BERT")
    };
    assert_eq!(
        weights_sha256(&bb.embeddings),
        weights_sha256(&cb.embeddings)
    );
    assert_eq!(
        weights_sha256(&bb.encoder.layers[0]),
        weights_sha256(&cb.encoder.layers[0])
    );
    assert_ne!(
        weights_sha256(&bb.encoder.layers[1]),
        weights_sha256(&cb.encoder.layers[1]),
        "an unfrozen layer trains"
    );

    // An unknown group is refused before training, naming the groups there are.
    let text = common::experiment_toml(
        &root,
        "bad",
        "[[phases]]\ntasks = [\"RTE\"]\nrecipe = { freeze = [\"layer.9\"] }\n",
    );
    let exp = common::resolve(&text).unwrap();
    let err = run_experiment(&exp, &mut NoopObserver)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("phases[0].recipe.freeze") && err.contains("layer.1, pooler"),
        "{err}"
    );
}

#[test]
fn pair_tasks_train_separately_or_in_both_orders() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 160, 40);
    for (name, pair, width) in [("sep", "separate", 4 * 32), ("both", "both_orders", 32)] {
        let text = common::experiment_toml(
            &root,
            name,
            &format!(
                "[[phases]]\ntasks = [{{ task = \"RTE\", pair = \"{pair}\" }}]\nrecipe = {{ epochs = 6, lr = 3e-3 }}\n\
                 [[phases]]\nname = \"again\"\ntasks = [{{ task = \"RTE\", pair = \"{pair}\" }}]\nhead = \"reuse\"\nrecipe = {{ epochs = 1 }}\n"
            ),
        );
        let exp = common::resolve(&text).unwrap();
        let summary = run_experiment(&exp, &mut NoopObserver).unwrap();
        let dir = tmp.path().join(name).join("00-RTE/seed-7/model");
        let carried = load_model(&dir, &Device::flex()).unwrap();
        assert_eq!(
            carried.model.heads[0].classifier.weight.dims(),
            [width, 2],
            "{pair}"
        );
        let meta = std::fs::read_to_string(dir.join(META_FILE)).unwrap();
        assert!(meta.contains(&format!("\"pair\": \"{pair}\"")), "{meta}");
        // The task is learnable either way: the answer is in the hypothesis alone.
        assert!(
            summary.phases[0].best_dev_score > 0.7,
            "{pair}: {summary:?}"
        );
        assert_eq!(summary.phases[1].runs.len(), 1, "reuse keeps the pair mode");
    }

    // A head trained on joint pairs is not reused for separate ones.
    let text = common::experiment_toml(
        &root,
        "mixed",
        "[[phases]]\ntasks = [\"RTE\"]\nrecipe = { epochs = 1 }\n\
         [[phases]]\nname = \"sep\"\ntasks = [{ task = \"RTE\", pair = \"separate\" }]\nhead = \"reuse\"\n",
    );
    let exp = common::resolve(&text).unwrap();
    let err = run_experiment(&exp, &mut NoopObserver)
        .unwrap_err()
        .to_string();
    assert!(err.contains("reuse: no previous head"), "{err}");
}

#[test]
fn a_model_of_a_newer_format_is_refused_by_name() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model-v0");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(fixture.join("model.bpk"), dir.join("model.bpk")).unwrap();
    std::fs::write(
        dir.join(META_FILE),
        r#"{"format_version": 99, "encoder": "bert", "config": {}, "heads": []}"#,
    )
    .unwrap();
    let err = load_model(&dir, &Device::flex()).unwrap_err().to_string();
    assert!(
        err.contains("format 99") && err.contains("newer stilts"),
        "{err}"
    );
}

#[test]
fn a_metric_that_cannot_be_computed_is_an_error_not_a_score() {
    use stilts_train::data::encoding::{PairMode, Tokenizer};
    use stilts_train::data::{BuiltinTask, Dataset, Example, Label};
    use stilts_train::prepare::Split;

    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 4, 4);
    let stsb = BuiltinTask::Stsb.task();
    let examples = (0..3)
        .map(|i| Example {
            id: i.to_string(),
            text_a: "the cat".into(),
            text_b: Some("a dog".into()),
            label: Some(Label::Score(i as f64)),
        })
        .collect();
    let data = Dataset {
        task: "STS-B".into(),
        split: "dev".into(),
        path: "dev.tsv".into(),
        examples,
        skipped_unlabelled: 0,
        skipped_malformed: Vec::new(),
        sha256: String::new(),
    };
    let tokenizer = Tokenizer::at(&root.join("vocab.txt")).unwrap();
    let split = Split::encode(data, &tokenizer, PairMode::Joint).unwrap();
    let err =
        stilts_train::eval::score_split(&stsb, &split, &[vec![0.1], vec![f32::NAN], vec![0.3]])
            .unwrap_err()
            .to_string();
    assert!(err.contains("STS-B"), "{err}");
    // Constant predictions are a defined case (correlation 0), not an error.
    let s = stilts_train::eval::score_split(&stsb, &split, &vec![vec![0.5]; 3]).unwrap();
    assert_eq!(s.score, 0.0);
}
