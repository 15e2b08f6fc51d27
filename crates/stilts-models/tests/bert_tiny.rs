//! Parity of the tiny random BERTs with Hugging Face (fixtures from
//! `scripts/make_bert_fixtures.py`), loader variants and our own checkpoints.

mod common;

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use common::{Fixture, fixtures, max_abs_diff, values};
use safetensors::SafeTensors;
use stilts_models::ModelError;
use stilts_models::bert::{
    BertClassifierConfig, BertConfig, BertForSequenceClassification, BertInput, BertModel, Labels,
    map_hf_key,
};

const TOL: f32 = 1e-5;

fn input(fixture: &Fixture, device: &Device) -> BertInput {
    BertInput::new(
        fixture.int("input_ids", device),
        fixture.int("token_type_ids", device),
        fixture.int("attention_mask", device),
    )
}

fn tiny() -> (BertForSequenceClassification, Fixture, Device) {
    let device = Device::flex();
    let (model, report) =
        BertForSequenceClassification::from_pretrained(fixtures().join("tiny-bert"), 3, &device)
            .expect("tiny-bert loads");
    assert_eq!(report.loaded.len(), 2 * 16 + 5 + 2 + 2, "{report}");
    assert!(report.initialized.is_empty(), "{report}");
    (
        model,
        Fixture::open(fixtures().join("tiny-bert/forward.safetensors")),
        device,
    )
}

#[test]
fn tiny_forward_matches_hf() {
    let (model, fixture, device) = tiny();
    let out = model.bert.forward(input(&fixture, &device));
    let hidden = max_abs_diff(
        out.last_hidden_state,
        &fixture.f32("last_hidden_state"),
        "hidden",
    );
    let pooled = max_abs_diff(out.pooled_output, &fixture.f32("pooled_output"), "pooled");
    let logits = max_abs_diff(
        model.forward(input(&fixture, &device)),
        &fixture.f32("logits"),
        "logits",
    );
    println!("tiny-bert max abs diff: hidden {hidden:e}, pooled {pooled:e}, logits {logits:e}");
    assert!(hidden < TOL && pooled < TOL && logits < TOL);
}

#[test]
fn tiny_regression_head_matches_hf() {
    let (mut model, fixture, device) = tiny();
    let weight: Tensor<2> = fixture.float("reg.weight", &device);
    model.classifier = Linear {
        weight: Param::from_tensor(weight.transpose()),
        bias: Some(Param::from_tensor(fixture.float("reg.bias", &device))),
    };
    assert_eq!(model.num_labels(), 1);
    let scores = model.forward(input(&fixture, &device));
    let loss = model.loss(
        scores.clone(),
        Labels::Scores(fixture.float("reg.labels", &device)),
    );
    let scores = max_abs_diff(scores, &fixture.f32("reg.scores"), "scores");
    let loss = max_abs_diff(loss, &fixture.f32("reg.loss"), "loss");
    println!("tiny-bert regression max abs diff: scores {scores:e}, mse {loss:e}");
    assert!(scores < TOL && loss < TOL);
}

#[test]
fn legacy_bin_with_gamma_beta_and_no_pooler() {
    let device = Device::flex();
    let dir = fixtures().join("tiny-bert-legacy");
    let (model, report) = BertModel::from_pretrained(&dir, &device).expect("legacy loads");
    assert_eq!(
        report.initialized,
        ["pooler.dense.bias", "pooler.dense.weight"],
        "{report}"
    );
    assert_eq!(
        report.ignored,
        ["cls.predictions.bias", "embeddings.position_ids"]
    );
    assert_eq!(report.loaded.len(), 16 + 5);
    let fixture = Fixture::open(dir.join("forward.safetensors"));
    let hidden = max_abs_diff(
        model.forward(input(&fixture, &device)).last_hidden_state,
        &fixture.f32("last_hidden_state"),
        "hidden",
    );
    println!("tiny-bert-legacy max abs diff: hidden {hidden:e}");
    assert!(hidden < TOL);
}

#[test]
fn key_map_covers_hf_names() {
    for (hf, ours) in [
        (
            "bert.embeddings.word_embeddings.weight",
            "embeddings.word_embeddings.weight",
        ),
        ("embeddings.LayerNorm.gamma", "embeddings.layer_norm.gamma"),
        (
            "bert.encoder.layer.11.attention.self.value.bias",
            "encoder.layers.11.attention.self_attention.value.bias",
        ),
        (
            "encoder.layer.3.attention.output.LayerNorm.weight",
            "encoder.layers.3.attention.output.layer_norm.gamma",
        ),
        (
            "encoder.layer.3.output.LayerNorm.beta",
            "encoder.layers.3.output.layer_norm.beta",
        ),
        (
            "encoder.layer.0.intermediate.dense.weight",
            "encoder.layers.0.intermediate.dense.weight",
        ),
        ("bert.pooler.dense.weight", "pooler.dense.weight"),
        ("classifier.bias", "classifier.bias"),
    ] {
        assert_eq!(map_hf_key(hf).as_deref(), Some(ours), "{hf}");
    }
    for unknown in [
        "cls.predictions.decoder.weight",
        "bert.embeddings.position_ids",
        "bert.encoder.layer.0.attention.self.distance_embedding.weight",
        "xbert.pooler.dense.weight",
    ] {
        assert_eq!(map_hf_key(unknown), None, "{unknown}");
    }
}

/// Rewrites the tiny checkpoint's tensors into `dir/model.safetensors`, with its config.json.
fn rewrite(dir: &Path, edit: impl Fn(&str) -> Option<String>, extra: Option<(&str, Vec<usize>)>) {
    let src = fixtures().join("tiny-bert");
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter_map(|(name, view)| edit(&name).map(|name| (name, view)))
        .collect();
    let extra_data;
    if let Some((name, shape)) = extra {
        extra_data = vec![0u8; 4 * shape.iter().product::<usize>()];
        tensors.push((
            name.to_owned(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, &extra_data)
                .unwrap(),
        ));
    }
    safetensors::serialize_to_file(tensors, None, &dir.join("model.safetensors")).unwrap();
}

fn logits_of(model: &BertForSequenceClassification, device: &Device) -> (Vec<f32>, Vec<usize>) {
    let fixture = Fixture::open(fixtures().join("tiny-bert/forward.safetensors"));
    values(model.forward(input(&fixture, device)))
}

#[test]
fn loads_without_prefix_with_gamma_beta_and_fresh_head() {
    let device = Device::flex();
    let (reference, _, _) = tiny();
    let dir = tempfile::tempdir().unwrap();
    rewrite(
        dir.path(),
        |name| {
            if name.starts_with("classifier.") {
                return None;
            }
            let name = name.strip_prefix("bert.").unwrap_or(name);
            Some(
                name.replace("LayerNorm.weight", "LayerNorm.gamma")
                    .replace("LayerNorm.bias", "LayerNorm.beta"),
            )
        },
        None,
    );
    let (model, report) =
        BertForSequenceClassification::from_pretrained(dir.path(), 3, &device).unwrap();
    assert_eq!(report.initialized, ["classifier.bias", "classifier.weight"]);
    let fixture = Fixture::open(fixtures().join("tiny-bert/forward.safetensors"));
    let pooled = max_abs_diff(
        model.bert.forward(input(&fixture, &device)).pooled_output,
        &values(
            reference
                .bert
                .forward(input(&fixture, &device))
                .pooled_output,
        ),
        "pooled",
    );
    assert_eq!(pooled, 0.0);
}

#[test]
fn mismatches_are_reported() {
    let device = Device::flex();

    let dir = tempfile::tempdir().unwrap();
    rewrite(
        dir.path(),
        |name| (name != "bert.encoder.layer.1.output.dense.bias").then(|| name.to_owned()),
        Some((
            "bert.encoder.layer.0.attention.self.rotary.weight",
            vec![2, 2],
        )),
    );
    let err = BertForSequenceClassification::from_pretrained(dir.path(), 3, &device).unwrap_err();
    let ModelError::Mismatch { path, report } = &err else {
        panic!("expected a mismatch, got {err:?}");
    };
    assert_eq!(path, &dir.path().join("model.safetensors"));
    assert_eq!(report.missing, ["bert.encoder.layers.1.output.dense.bias"]);
    assert_eq!(
        report.unused,
        ["bert.encoder.layer.0.attention.self.rotary.weight"]
    );
    let message = err.to_string();
    assert!(
        message.contains("rotary") && message.contains("model.safetensors"),
        "{message}"
    );

    let err =
        BertForSequenceClassification::from_pretrained(fixtures().join("tiny-bert"), 5, &device)
            .unwrap_err();
    let ModelError::Mismatch { report, .. } = &err else {
        panic!("expected a mismatch, got {err:?}");
    };
    assert_eq!(report.errors.len(), 2, "{report}");
    assert!(report.errors[0].contains("classifier"), "{report}");

    let dir = tempfile::tempdir().unwrap();
    rewrite(
        dir.path(),
        |name| Some(name.replace("layer.1.", "layer.2.")),
        None,
    );
    let err = BertForSequenceClassification::from_pretrained(dir.path(), 3, &device).unwrap_err();
    let ModelError::Mismatch { report, .. } = &err else {
        panic!("expected a mismatch, got {err:?}");
    };
    assert_eq!(report.missing.len(), 16, "{report}");
    assert_eq!(report.unused.len(), 16, "{report}");

    let err = BertModel::from_pretrained(fixtures().join("no-such-dir"), &device).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err:?}");
    let empty = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("tiny-bert/config.json"),
        empty.path().join("config.json"),
    )
    .unwrap();
    let err = BertModel::from_pretrained(empty.path(), &device).unwrap_err();
    assert!(matches!(err, ModelError::NoWeights { .. }), "{err:?}");
    std::fs::write(
        empty.path().join("model.safetensors"),
        b"\xff\xff\xff\xff\xff\xff\xff\xff{}",
    )
    .unwrap();
    let err = BertModel::from_pretrained(empty.path(), &device).unwrap_err();
    assert!(matches!(err, ModelError::Header { .. }), "{err:?}");
}

#[test]
fn hf_config_defaults_and_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bert_config.json");
    std::fs::write(
        &path,
        r#"{"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
            "max_position_embeddings": 512, "num_attention_heads": 12, "num_hidden_layers": 12,
            "type_vocab_size": 2, "vocab_size": 30522}"#,
    )
    .unwrap();
    let config = BertConfig::from_hf_file(&path).unwrap();
    assert_eq!(config, BertConfig::new(30522, 768, 12, 12, 3072));
    assert_eq!(config.layer_norm_eps, 1e-12);

    for (edit, needle) in [
        (
            r#""num_attention_heads": 4, "hidden_act": "gelu_new""#,
            "gelu_new",
        ),
        (r#""num_attention_heads": 5"#, "multiple"),
        (
            r#""num_attention_heads": 4, "position_embedding_type": "relative_key""#,
            "relative_key",
        ),
    ] {
        let text = format!(
            r#"{{"hidden_size": 32, "num_hidden_layers": 1,
                "intermediate_size": 8, "vocab_size": 10, {edit}}}"#
        );
        std::fs::write(&path, text).unwrap();
        let err = BertConfig::from_hf_file(&path).unwrap_err();
        assert!(
            matches!(err, ModelError::UnsupportedConfig { .. }) && err.to_string().contains(needle),
            "{err}"
        );
    }
    std::fs::write(&path, "{").unwrap();
    assert!(matches!(
        BertConfig::from_hf_file(&path).unwrap_err(),
        ModelError::Json { .. }
    ));
}

#[test]
fn own_checkpoint_round_trips_exactly() {
    let (model, _, device) = tiny();
    let config =
        BertClassifierConfig::from_hf_file(fixtures().join("tiny-bert/config.json"), 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    model.save_checkpoint(&config, dir.path()).unwrap();
    let (reloaded, reloaded_config) =
        BertForSequenceClassification::load_checkpoint(dir.path(), &device).unwrap();
    assert_eq!(reloaded_config, config);
    let before = common::named_params(&model);
    let after = common::named_params(&reloaded);
    assert_eq!(before.len(), after.len());
    for ((path, _, a), (path_b, _, b)) in before.iter().zip(&after) {
        assert_eq!(path, path_b);
        assert!(a == b, "{path} changed");
    }
    assert_eq!(logits_of(&model, &device), logits_of(&reloaded, &device));

    let again = tempfile::tempdir().unwrap();
    reloaded.save_checkpoint(&config, again.path()).unwrap();
    let tensors = |dir: &Path| {
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut all: Vec<_> = st
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, view.shape().to_vec(), view.data().to_vec()))
            .collect();
        all.sort();
        all
    };
    let first = tensors(dir.path());
    assert_eq!(first.len(), 2 * 16 + 5 + 2 + 2);
    assert!(first == tensors(again.path()), "saved tensors differ");
}

#[test]
fn dropout_only_on_autodiff_devices() {
    let (model, fixture, device) = tiny();
    let eval_a = values(model.forward(input(&fixture, &device)));
    let eval_b = values(model.forward(input(&fixture, &device)));
    assert_eq!(eval_a, eval_b);

    let train_device = device.clone().autodiff();
    let train = model.fork(&train_device);
    let train_a = values(train.forward(input(&fixture, &train_device)));
    let train_b = values(train.forward(input(&fixture, &train_device)));
    assert_ne!(train_a, train_b);
    assert_ne!(train_a, eval_a);

    let valid = train.valid();
    assert_eq!(values(valid.forward(input(&fixture, &device))), eval_a);
}

#[test]
fn any_size_from_config() {
    let (h, i, layers, vocab) = (256, 1024, 4, 30522);
    let config = BertClassifierConfig::new(BertConfig::new(vocab, h, layers, 4, i), 2);
    let device = Device::flex();
    let model = config.init(&device);
    let layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h;
    let embeddings = (vocab + 512 + 2) * h + 2 * h;
    assert_eq!(
        model.num_params(),
        embeddings + layers * layer + (h * h + h) + (h * 2 + 2)
    );
    let ids = Tensor::<2, burn::tensor::Int>::from_data(
        [[101, 2023, 102, 0], [101, 7592, 2088, 102]],
        &device,
    );
    let mask = Tensor::<2, burn::tensor::Int>::from_data([[1, 1, 1, 0], [1, 1, 1, 1]], &device);
    let types = Tensor::<2, burn::tensor::Int>::zeros([2, 4], &device);
    let out = model
        .bert
        .forward(BertInput::new(ids.clone(), types.clone(), mask.clone()));
    assert_eq!(out.last_hidden_state.dims(), [2, 4, h]);
    assert_eq!(out.pooled_output.dims(), [2, h]);
    assert_eq!(
        model.forward(BertInput::new(ids, types, mask)).dims(),
        [2, 2]
    );
}
