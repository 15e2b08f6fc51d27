//! The tiny random ELMo against AllenNLP 2.10.1 (`scripts/make_elmo_fixtures.py`): the
//! character CNN's token representations, every biLM layer (stateless and stateful), the scalar
//! mix with and without its layer norm, one training step, the pure-Rust HDF5 reader and the
//! loader's errors.

mod common;

use burn::module::Param;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{Fixture, fixtures, max_abs, max_abs_diff};
use stilts_models::ModelError;
use stilts_models::elmo::{
    ElmoBiLm, ElmoConfig, ScalarMix, carry_state, initial_state, remove_sentence_boundaries,
};

const TOL: f32 = 1e-5;

fn load(dir: &str, device: &Device) -> (ElmoBiLm, ElmoConfig) {
    let dir = fixtures().join(dir);
    let (model, config, report) =
        ElmoBiLm::from_files(&dir.join("options.json"), &dir.join("weights.hdf5"), device).unwrap();
    assert!(report.is_ok() && report.ignored.is_empty(), "{report}");
    (model, config)
}

/// AllenNLP's `batch_to_ids` rows with `<S>` and `</S>` around each sentence, as
/// `stilts_data::chars` builds them (the data crate's test checks that it does).
fn with_boundaries(fixture: &Fixture, batch: &str, device: &Device) -> Tensor<3, Int> {
    let (ids, shape) = fixture.i64(&format!("{batch}.char_ids"));
    let (mask, _) = fixture.i64(&format!("{batch}.mask_with_bos_eos"));
    let [rows, words, chars] = [shape[0], shape[1], shape[2]];
    let boundary = |c: i64| {
        let mut row = vec![261i64; chars];
        row[..3].copy_from_slice(&[259, c, 260]);
        row
    };
    let mut out = vec![0i64; rows * (words + 2) * chars];
    for i in 0..rows {
        let len: i64 = mask[i * (words + 2)..(i + 1) * (words + 2)].iter().sum();
        let at = |j: usize| (i * (words + 2) + j) * chars;
        out[at(0)..at(1)].copy_from_slice(&boundary(257));
        let n = (len - 2) as usize;
        out[at(1)..at(1 + n)].copy_from_slice(&ids[i * words * chars..(i * words + n) * chars]);
        out[at(n + 1)..at(n + 2)].copy_from_slice(&boundary(258));
    }
    Tensor::from_data(TensorData::new(out, [rows, words + 2, chars]), device)
}

fn reference(dir: &str) -> Fixture {
    Fixture::open(fixtures().join(dir).join("reference.safetensors"))
}

fn check(actual: Tensor<3>, fixture: &Fixture, name: &str, tol: f32) {
    let expected = fixture.f32(name);
    let diff = max_abs_diff(actual, &expected, name);
    println!(
        "{name}: max abs diff {diff:e} (values up to {})",
        max_abs(&expected.0)
    );
    assert!(diff < tol, "{name}: max abs diff {diff:e}");
}

#[test]
fn options_are_read_as_published() {
    let config = ElmoConfig::from_options_file(fixtures().join("tiny-elmo/options.json")).unwrap();
    assert_eq!(
        (config.projection_dim, config.cell_size, config.n_layers),
        (8, 16, 2)
    );
    assert_eq!(config.filters, vec![[1, 4], [2, 8], [3, 16]]);
    assert_eq!(
        (
            config.n_highway,
            config.n_filters(),
            config.char_embedding_dim
        ),
        (2, 28, 4)
    );
    assert_eq!((config.cell_clip, config.proj_clip), (Some(3.0), Some(3.0)));
    assert!(config.use_skip_connections);
    // The small released model's options (no weights are reachable here).
    let small = std::env::var_os("STILTS_MODELS_DIR").map(std::path::PathBuf::from);
    if let Some(dir) = small {
        let path = dir.join("elmo_small_2x1024_128_2048cnn_1xhighway/elmo_2x1024_128_2048cnn_1xhighway_options.json");
        let config = ElmoConfig::from_options_file(path).unwrap();
        assert_eq!(
            (config.projection_dim, config.cell_size, config.n_filters()),
            (128, 1024, 2048)
        );
        assert_eq!(config.n_highway, 1);
    }
}

#[test]
fn token_embeddings_and_every_layer_match_allennlp() {
    let device = Device::flex();
    let (model, _) = load("tiny-elmo", &device);
    let fixture = reference("tiny-elmo");
    for batch in ["a", "b"] {
        let chars = with_boundaries(&fixture, batch, &device);
        let tokens = model.token_embedder.forward(chars.clone());
        check(tokens, &fixture, &format!("{batch}.token_embedding"), TOL);
        let out = model.forward(chars);
        let (mask, _) = fixture.i64(&format!("{batch}.mask_with_bos_eos"));
        let ours: Vec<i64> = out
            .mask
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|&m| m as i64)
            .collect();
        assert_eq!(ours, mask, "{batch}: mask");
        assert_eq!(out.layers.len(), 3);
        for (k, layer) in out.layers.into_iter().enumerate() {
            check(layer, &fixture, &format!("{batch}.layer_{k}"), TOL);
        }
    }
}

#[test]
fn without_skip_connections_layers_match() {
    let device = Device::flex();
    let (model, config) = load("tiny-elmo-noskip", &device);
    assert!(!config.use_skip_connections);
    let fixture = reference("tiny-elmo-noskip");
    let chars = with_boundaries(&reference("tiny-elmo"), "a", &device);
    for (k, layer) in model.forward(chars).layers.into_iter().enumerate() {
        check(layer, &fixture, &format!("a.layer_{k}"), TOL);
    }
}

#[test]
fn stateful_mode_carries_the_state_as_allennlp_does() {
    let device = Device::flex();
    let (model, _) = load("tiny-elmo", &device);
    let fixture = reference("tiny-elmo");
    let first = model.forward(with_boundaries(&fixture, "a", &device));
    let kept = carry_state(None, first.state);
    let chars = with_boundaries(&fixture, "b", &device);
    let second = model.forward_from(chars.clone(), initial_state(&kept, chars.dims()[0]));
    for k in 1..3 {
        check(
            second.layers[k].clone(),
            &fixture,
            &format!("b.stateful.layer_{k}"),
            TOL,
        );
    }
    // And the stateless run of the same batch differs from it.
    let stateless = model.forward(chars);
    let diff = max_abs_diff(
        stateless.layers[2].clone(),
        &fixture.f32("b.stateful.layer_2"),
        "b",
    );
    assert!(diff > 1e-3, "the state made no difference ({diff:e})");
}

fn mix(fixture: &Fixture, layer_norm: bool, device: &Device) -> ScalarMix {
    let mut mix = ScalarMix::new(3, layer_norm, device);
    mix.scalar_parameters = Param::from_tensor(fixture.float::<1>("mix.weights", device));
    mix.gamma = Param::from_tensor(fixture.float::<1>("mix.gamma", device));
    mix
}

#[test]
fn scalar_mix_matches_with_and_without_layer_norm() {
    let device = Device::flex();
    let (model, _) = load("tiny-elmo", &device);
    let fixture = reference("tiny-elmo");
    let out = model.forward(with_boundaries(&fixture, "a", &device));
    for (layer_norm, name) in [(false, "a.mix"), (true, "a.mix_layer_norm")] {
        let mixed =
            mix(&fixture, layer_norm, &device).forward(out.layers.clone(), out.mask.clone());
        let (words, mask) = remove_sentence_boundaries(mixed, out.mask.clone());
        check(words, &fixture, name, TOL);
        let (expected, _) = fixture.i64("a.mask");
        let ours: Vec<i64> = mask
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|&m| m as i64)
            .collect();
        assert_eq!(ours, expected);
    }
}

#[test]
fn one_training_step_matches_allennlp() {
    let device = Device::flex().autodiff();
    let (model, _) = load("tiny-elmo", &device);
    let fixture = reference("tiny-elmo");
    let chars = with_boundaries(&fixture, "a", &device);
    let scalar_mix = mix(&fixture, false, &device);
    let r = fixture.float::<3>("train.r", &device);
    let forward = |model: &ElmoBiLm, scalar_mix: &ScalarMix| {
        let out = model.forward(chars.clone());
        let mixed = scalar_mix.forward(out.layers, out.mask.clone());
        remove_sentence_boundaries(mixed, out.mask).0
    };
    let loss = (forward(&model, &scalar_mix) * r).sum();
    let (value, _) = common::values(loss.clone().reshape([1]));
    let (expected, _) = fixture.f32("train.loss");
    println!("loss {} vs {}", value[0], expected[0]);
    assert!((value[0] - expected[0]).abs() < 1e-4 * expected[0].abs().max(1.0));
    let mut grads = loss.backward();
    for (param, name) in [
        (&scalar_mix.scalar_parameters, "train.grad.mix_weights"),
        (&scalar_mix.gamma, "train.grad.gamma"),
    ] {
        let grad = param.grad(&grads).expect("the mix has a gradient");
        let expected = fixture.f32(name);
        let diff = max_abs_diff(grad, &expected, name);
        assert!(diff < 1e-4, "{name}: {diff:e}");
    }
    let model_grads = GradientsParams::from_module(&mut grads, &model);
    let mix_grads = GradientsParams::from_module(&mut grads, &scalar_mix);
    let mut sgd = SgdConfig::new().init();
    let model = sgd.step(0.05, model, model_grads);
    let mut sgd_mix = SgdConfig::new().init();
    let scalar_mix = sgd_mix.step(0.05, scalar_mix, mix_grads);
    let after = forward(&model, &scalar_mix);
    check(after, &fixture, "train.mix_after", 1e-4);
}

#[test]
fn bad_weight_files_are_named_errors() {
    let device = Device::flex();
    let dir = fixtures().join("tiny-elmo");
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(dir.join("weights.hdf5")).unwrap();
    let cut = tmp.path().join("cut.hdf5");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = ElmoBiLm::from_files(&dir.join("options.json"), &cut, &device).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("cut.hdf5"), "{message}");
    std::fs::write(&cut, b"not hdf5").unwrap();
    assert!(ElmoBiLm::from_files(&dir.join("options.json"), &cut, &device).is_err());

    // Options asking for another highway layer and wider LSTMs than the file holds.
    let options = std::fs::read_to_string(dir.join("options.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&options).unwrap();
    value["char_cnn"]["n_highway"] = 3.into();
    value["lstm"]["dim"] = 32.into();
    let other = tmp.path().join("options.json");
    std::fs::write(&other, value.to_string()).unwrap();
    match ElmoBiLm::from_files(&other, &dir.join("weights.hdf5"), &device) {
        Err(ModelError::Mismatch { path, report }) => {
            assert!(path.ends_with("weights.hdf5"));
            assert!(
                report.missing.iter().any(|m| m == "CNN_high_2/W_carry"),
                "{report}"
            );
            assert!(
                report
                    .errors
                    .iter()
                    .any(|e| e.starts_with("RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/W_0")),
                "{report}"
            );
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    // The same options with one highway layer: the file's second is unused.
    value["char_cnn"]["n_highway"] = 1.into();
    value["lstm"]["dim"] = 16.into();
    std::fs::write(&other, value.to_string()).unwrap();
    match ElmoBiLm::from_files(&other, &dir.join("weights.hdf5"), &device) {
        Err(ModelError::Mismatch { report, .. }) => {
            assert!(
                report.unused.iter().any(|m| m == "CNN_high_1/W_carry"),
                "{report}"
            );
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    value["char_cnn"]["activation"] = "gelu".into();
    std::fs::write(&other, value.to_string()).unwrap();
    let err = ElmoConfig::from_options_file(&other)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("options.json") && err.contains("gelu"),
        "{err}"
    );
}

/// Found by tests/parsers.rs: a mutated file whose dataset declares [28, 28] but yields 785
/// values panicked inside burn; now a named error.
#[test]
fn a_dataset_with_more_values_than_its_shape_is_an_error() {
    let device = Device::flex();
    let options = fixtures().join("tiny-elmo/options.json");
    let weights = fixtures().join("regressions/elmo-count-mismatch.hdf5");
    let err = ElmoBiLm::from_files(&options, &weights, &device).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("elmo-count-mismatch.hdf5"), "{message}");
}
