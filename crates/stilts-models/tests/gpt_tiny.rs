//! The tiny random OpenAI GPT against transformers 5 (`scripts/make_gpt_fixtures.py`): hidden
//! states and language-model logits of a padded batch, the Hugging Face and the original-release
//! loaders giving the same model, and the loaders' errors.

mod common;

use burn::tensor::{Device, Int, Tensor};
use common::{Fixture, fixtures, max_abs, max_abs_diff, named_params};
use stilts_models::gpt::{GptActivation, GptConfig, GptModel};
use stilts_models::{
    Encoder, EncoderConfig, EncoderInput, EncoderKind, ModelError, SentenceEncoder,
};

const TOL: f32 = 1e-5;

fn hf_model(device: &Device) -> (GptModel, GptConfig) {
    let dir = fixtures().join("tiny-gpt");
    let config = GptConfig::from_hf_file(dir.join("config.json")).unwrap();
    let (model, report) =
        GptModel::from_hf_weights(&config, dir.join("model.safetensors"), device).unwrap();
    assert!(
        report.missing.is_empty() && report.unused.is_empty(),
        "{report}"
    );
    (model, config)
}

#[test]
fn config_reads_hf_and_gelu_is_the_tanh_form() {
    let (_, config) = hf_model(&Device::flex());
    assert_eq!(
        (
            config.vocab_size,
            config.n_embd,
            config.n_layer,
            config.n_head
        ),
        (2477, 32, 2, 4)
    );
    assert_eq!(config.n_positions, 64);
    assert_eq!(config.layer_norm_epsilon, 1e-5);
    // transformers' modeling_openai.py maps "gelu" to NewGELUActivation.
    assert_eq!(config.afn, GptActivation::GeluTanh);
    let kind = EncoderConfig::from_hf_dir(&fixtures().join("tiny-gpt")).unwrap();
    assert_eq!(kind.kind(), EncoderKind::Gpt);
}

#[test]
fn hidden_states_and_lm_logits_match_transformers() {
    let device = Device::flex();
    let (model, _) = hf_model(&device);
    let forward = Fixture::open(fixtures().join("tiny-gpt/forward.safetensors"));
    let ids = forward.int::<2>("input_ids", &device);
    let mask = forward.int::<2>("attention_mask", &device);
    let out = model.forward(ids.clone(), mask.clone());
    // Padded positions attend only to their prefix: every position is comparable.
    let d = max_abs_diff(
        out.last_hidden_state,
        &forward.f32("last_hidden_state"),
        "hidden",
    );
    println!("tiny GPT: max abs diff of hidden states {d:e}");
    assert!(d < TOL, "hidden states differ by {d:e}");

    let input = EncoderInput {
        input_ids: ids.clone(),
        token_type_ids: ids.zeros_like(),
        attention_mask: mask,
        with_aux_loss: false,
    };
    let encoded = model.encode(input);
    let lm = SentenceEncoder::lm_logits(&model, encoded.summary).unwrap();
    let expected = forward.f32("lm_logits_last");
    let d = max_abs_diff(lm, &expected, "lm logits");
    println!(
        "tiny GPT: max abs diff of LM logits at the last token {d:e} (scale {})",
        max_abs(&expected.0)
    );
    assert!(d < TOL, "LM logits differ by {d:e}");
}

#[test]
fn original_release_and_hf_loaders_give_the_same_model() {
    let device = Device::flex();
    let (hf, _) = hf_model(&device);
    let dir = fixtures().join("tiny-gpt-original");
    let config = EncoderConfig::from_hf_dir(&dir).unwrap();
    let (encoder, report) = Encoder::from_hf_dir(&dir, &config, &device).unwrap();
    assert_eq!(report.loaded.len(), 2 + 12 * 2, "{report}");
    let Encoder::Gpt(original) = encoder else {
        panic!("not a GPT")
    };
    let (a, b) = (named_params(&hf), named_params(&original));
    assert_eq!(a.len(), b.len());
    for ((pa, _, va), (pb, _, vb)) in a.iter().zip(&b) {
        assert_eq!(pa, pb);
        assert_eq!(va, vb, "{pa}");
    }
}

/// An older Hugging Face checkpoint: `pytorch_model.bin`, keys without `transformer.`, and the
/// causal-mask buffers `h.N.attn.bias` (skipped and listed as ignored).
#[test]
fn a_legacy_pytorch_checkpoint_loads_the_same_model() {
    let device = Device::flex();
    let (hf, _) = hf_model(&device);
    let dir = fixtures().join("tiny-gpt-legacy");
    let config = EncoderConfig::from_hf_dir(&dir).unwrap();
    let (encoder, report) = Encoder::from_hf_dir(&dir, &config, &device).unwrap();
    assert_eq!(report.loaded.len(), 2 + 12 * 2, "{report}");
    assert!(
        report.missing.is_empty() && report.unused.is_empty(),
        "{report}"
    );
    assert_eq!(
        report.ignored,
        ["h.0.attn.bias", "h.1.attn.bias"],
        "{report}"
    );
    let Encoder::Gpt(legacy) = encoder else {
        panic!("not a GPT")
    };
    let (a, b) = (named_params(&hf), named_params(&legacy));
    assert_eq!(a.len(), b.len());
    for ((pa, _, va), (pb, _, vb)) in a.iter().zip(&b) {
        assert_eq!(pa, pb);
        assert_eq!(va, vb, "{pa}");
    }
}

#[test]
fn a_broken_release_is_named_not_loaded() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let source = fixtures().join("tiny-gpt-original");
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let config = EncoderConfig::from_hf_dir(dir).unwrap();
    // A truncated part.
    let part = dir.join("params_3.npy");
    let bytes = std::fs::read(&part).unwrap();
    std::fs::write(&part, &bytes[..bytes.len() - 8]).unwrap();
    let err = Encoder::from_hf_dir(dir, &config, &device).unwrap_err();
    assert!(err.to_string().contains("params_3.npy"), "{err}");
    std::fs::write(&part, &bytes).unwrap();
    // Embeddings that disagree on their width are refused before anything is read.
    let shapes = std::fs::read_to_string(dir.join("params_shapes.json")).unwrap();
    std::fs::write(
        dir.join("params_shapes.json"),
        shapes.replacen("[64, 32]", "[32, 64]", 1),
    )
    .unwrap();
    let err = Encoder::from_hf_dir(dir, &config, &device).unwrap_err();
    assert!(err.to_string().contains("params_shapes.json"), "{err}");
    // A block tensor of the wrong shape (same total) is listed by its path.
    let swapped = shapes.replacen("[1, 32, 96]", "[1, 96, 32]", 1);
    std::fs::write(dir.join("params_shapes.json"), swapped).unwrap();
    match Encoder::from_hf_dir(dir, &config, &device).unwrap_err() {
        ModelError::Mismatch { report, .. } => {
            assert!(
                report
                    .errors
                    .iter()
                    .any(|e| e.contains("h.0.attn.c_attn.weight")),
                "{report}"
            )
        }
        other => panic!("expected a mismatch, got {other}"),
    }
}

#[test]
fn fine_tuning_tokens_extend_the_vocabulary() {
    let device = Device::flex();
    let (model, config) = hf_model(&device);
    device.seed(3);
    let (encoder, config) = Encoder::Gpt(model)
        .fit_vocab(EncoderConfig::Gpt(config), 2480, &device)
        .unwrap();
    assert_eq!(config.vocab_size(), 2480);
    let Encoder::Gpt(model) = encoder else {
        panic!("not a GPT")
    };
    assert_eq!(model.vocab_size(), 2480);
    let rows = model.tokens_embed.weight.val().narrow(0, 2477, 3);
    let (values, _) = common::values(rows);
    let std = (values.iter().map(|v| v * v).sum::<f32>() / values.len() as f32).sqrt();
    assert!(std > 0.01 && std < 0.04, "new rows ~ N(0, 0.02): std {std}");
    // The extract token (the last id) reads from its own row.
    let ids = Tensor::<2, Int>::from_data([[5, 2479]], &device);
    let out = model.forward(ids.clone(), ids.ones_like());
    assert_eq!(out.last_hidden_state.dims(), [1, 2, 32]);
}

#[test]
fn the_lm_loss_averages_each_rows_tokens_then_the_batch() {
    let device = Device::flex();
    let (model, _) = hf_model(&device);
    let ids = Tensor::<2, Int>::from_data([[5, 9, 12, 0], [7, 3, 0, 0]], &device);
    let mask = Tensor::<2, Int>::from_data([[1, 1, 1, 0], [1, 1, 0, 0]], &device);
    let hidden = model.forward(ids.clone(), mask.clone()).last_hidden_state;
    let loss = model.lm_loss(hidden.clone(), ids.clone(), mask.clone());
    // By hand: row 0 predicts 9 and 12, row 1 predicts 3.
    let logits = model.lm_logits(hidden); // [2, 4, V]
    let logp = burn::tensor::activation::log_softmax(logits, 2);
    let at = |r: usize, t: usize, id: usize| {
        common::values(
            logp.clone()
                .narrow(0, r, 1)
                .narrow(1, t, 1)
                .narrow(2, id, 1),
        )
        .0[0]
    };
    let row0 = -(at(0, 0, 9) + at(0, 1, 12)) / 2.0;
    let row1 = -at(1, 0, 3);
    let want = (row0 + row1) / 2.0;
    let got = common::values(loss).0[0];
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
}
