//! One training step of the tiny BERT against PyTorch: loss, every gradient, and every
//! parameter after one AdamW step (lr 1e-3, betas 0.9/0.999, eps 1e-6, weight decay 0.01
//! except on biases and LayerNorm weights). Dropout is off (probabilities 0 in the config).

mod common;

use std::collections::BTreeMap;

use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use common::{Fixture, fixtures, max_abs, named_params, values};
use stilts_models::bert::{
    AdamWGroupsConfig, BertClassifierConfig, BertForSequenceClassification, BertInput, Labels,
    map_hf_key,
};

const REL_TOL: f32 = 1e-4;
/// Differences are relative to the largest expected magnitude, but not below this: the key
/// biases' gradients are zero in exact arithmetic (softmax ignores a shift shared by all keys),
/// so both frameworks return rounding noise of order 1e-11 there.
const SCALE_FLOOR: f32 = 1e-6;

/// Our module path for each Hugging Face parameter name, and whether its tensor is transposed.
fn hf_names(fixture: &Fixture, prefix: &str) -> BTreeMap<String, (String, bool)> {
    fixture
        .names()
        .filter_map(|name| name.strip_prefix(prefix))
        .map(|hf| {
            let relative = map_hf_key(hf).unwrap_or_else(|| panic!("{hf} has no mapping"));
            let ours = if relative.starts_with("classifier.") {
                relative
            } else {
                format!("bert.{relative}")
            };
            let linear =
                hf.ends_with(".weight") && !hf.contains("embeddings") && !hf.contains("LayerNorm");
            (ours, (hf.to_owned(), linear))
        })
        .collect()
}

fn expected(fixture: &Fixture, name: &str, transposed: bool) -> (Vec<f32>, Vec<usize>) {
    let (values, shape) = fixture.f32(name);
    if !transposed {
        return (values, shape);
    }
    let [rows, cols] = [shape[0], shape[1]];
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    (out, vec![cols, rows])
}

fn relative_diff(actual: &(Vec<f32>, Vec<usize>), expected: &(Vec<f32>, Vec<usize>)) -> (f32, f32) {
    assert_eq!(actual.1, expected.1);
    let diff = actual
        .0
        .iter()
        .zip(&expected.0)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    (diff, diff / max_abs(&expected.0).max(SCALE_FLOOR))
}

#[test]
fn one_adamw_step_matches_pytorch() {
    let device = Device::flex().autodiff();
    let dir = fixtures().join("tiny-bert");
    let mut config = BertClassifierConfig::from_hf_file(dir.join("config.json"), 3).unwrap();
    config.bert.hidden_dropout_prob = 0.0;
    config.bert.attention_probs_dropout_prob = 0.0;
    let (model, _) = BertForSequenceClassification::from_hf_weights(
        &config,
        dir.join("model.safetensors"),
        &device,
    )
    .unwrap();

    let forward = Fixture::open(dir.join("forward.safetensors"));
    let grads_fixture = Fixture::open(dir.join("train_grads.safetensors"));
    let after_fixture = Fixture::open(dir.join("train_after.safetensors"));
    let input = BertInput::new(
        forward.int("input_ids", &device),
        forward.int("token_type_ids", &device),
        forward.int("attention_mask", &device),
    );
    let labels = grads_fixture.int::<1>("labels", &device);
    let logits = model.forward(input);
    let loss: Tensor<1> = model.loss(logits, Labels::Classes(labels));
    let (loss_value, _) = values(loss.clone());
    let (hf_loss, _) = grads_fixture.f32("loss");
    let loss_rel = (loss_value[0] - hf_loss[0]).abs() / hf_loss[0].abs();
    println!(
        "loss {} vs {}, relative diff {loss_rel:e}",
        loss_value[0], hf_loss[0]
    );
    assert!(loss_rel < REL_TOL);

    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let grad_names = hf_names(&grads_fixture, "grad.");
    let params = named_params(&model);
    assert_eq!(params.len(), grad_names.len(), "parameter count");
    let mut worst_grad = (0.0f32, String::new());
    for (path, id, value) in &params {
        let (hf, transposed) = grad_names
            .get(path)
            .unwrap_or_else(|| panic!("no gradient fixture for {path}"));
        let grad = match value.1.len() {
            1 => grads.get::<1>(*id).map(values),
            2 => grads.get::<2>(*id).map(values),
            rank => panic!("{path} has rank {rank}"),
        }
        .unwrap_or_else(|| panic!("no gradient for {path}"));
        let (abs, rel) = relative_diff(
            &grad,
            &expected(&grads_fixture, &format!("grad.{hf}"), *transposed),
        );
        assert!(
            rel < REL_TOL,
            "gradient of {path}: max abs diff {abs:e}, relative {rel:e}"
        );
        if rel > worst_grad.0 && !path.ends_with("key.bias") {
            worst_grad = (rel, path.clone());
        }
    }
    println!(
        "worst gradient relative diff, key biases aside: {:e} ({})",
        worst_grad.0, worst_grad.1
    );

    let mut optimizer = AdamWGroupsConfig::new().init();
    let model = optimizer.step(1e-3, model, grads);
    let after_names = hf_names(&after_fixture, "after.");
    let mut worst = (0.0f32, 0.0f32, String::new());
    for (path, _, value) in named_params(&model) {
        let (hf, transposed) = &after_names[&path];
        let (abs, rel) = relative_diff(
            &value,
            &expected(&after_fixture, &format!("after.{hf}"), *transposed),
        );
        assert!(
            abs < 1e-6,
            "{path} after the step: max abs diff {abs:e}, relative {rel:e}"
        );
        if abs > worst.0 {
            worst = (abs, rel, path);
        }
    }
    println!(
        "worst parameter after AdamW: max abs diff {:e}, relative {:e} ({})",
        worst.0, worst.1, worst.2
    );
}

#[test]
fn weight_decay_groups() {
    let device = Device::flex().autodiff();
    let config = BertClassifierConfig::new(
        stilts_models::bert::BertConfig::new(20, 8, 1, 2, 12)
            .with_hidden_dropout_prob(0.0)
            .with_attention_probs_dropout_prob(0.0),
        2,
    );
    let model = config.init(&device);
    let before = named_params(&model);
    let grads = GradientsParams::new();
    let mut optimizer = AdamWGroupsConfig::new().with_weight_decay(0.5).init();
    // Zero gradients: only weight decay moves a parameter.
    let mut zero = grads;
    for (_, id, (_, shape)) in &before {
        match shape.len() {
            1 => zero.register::<1>(*id, Tensor::zeros([shape[0]], &device.clone().inner())),
            _ => zero.register::<2>(
                *id,
                Tensor::zeros([shape[0], shape[1]], &device.clone().inner()),
            ),
        }
    }
    let model = optimizer.step(0.1, model, zero);
    for ((path, _, a), (_, _, b)) in before.iter().zip(named_params(&model)) {
        let decays = !(path.ends_with("bias") || path.contains("layer_norm"));
        let changed = a.0 != b.0;
        assert_eq!(changed, decays, "{path}");
    }
}
