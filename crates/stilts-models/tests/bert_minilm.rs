//! Parity of all-MiniLM-L6-v2 with Hugging Face on real RTE pairs. Needs the model directory
//! in `STILTS_MINILM_DIR` (skips when unset, fails when set but missing).

mod common;

use burn::module::Param;
use burn::tensor::{Device, Tensor};
use common::{Fixture, fixtures, max_abs_diff, minilm_dir};
use stilts_models::bert::{BertForSequenceClassification, BertInput, BertModel};

const TOL: f32 = 1e-5;

#[test]
fn minilm_matches_hf() {
    let Some(dir) = minilm_dir() else {
        return;
    };
    let device = Device::flex();
    let fixture = Fixture::open(fixtures().join("minilm/expected.safetensors"));
    let input = || {
        BertInput::new(
            fixture.int("input_ids", &device),
            fixture.int("token_type_ids", &device),
            fixture.int("attention_mask", &device),
        )
    };

    let (encoder, report) = BertModel::from_pretrained(&dir, &device).expect("MiniLM loads");
    assert_eq!(report.loaded.len(), 5 + 6 * 16 + 2, "{report}");
    assert_eq!(report.ignored, ["embeddings.position_ids"]);
    let start = std::time::Instant::now();
    let out = encoder.forward(input());
    common::values(out.pooled_output.clone());
    println!(
        "MiniLM forward, batch {:?}: {:.1} ms",
        fixture.shape("input_ids"),
        start.elapsed().as_secs_f64() * 1e3
    );
    let hidden = max_abs_diff(
        out.last_hidden_state,
        &fixture.f32("last_hidden_state"),
        "hidden",
    );
    let pooled = max_abs_diff(out.pooled_output, &fixture.f32("pooled_output"), "pooled");

    let (mut model, report) =
        BertForSequenceClassification::from_pretrained(&dir, 2, &device).expect("MiniLM loads");
    assert_eq!(report.initialized, ["classifier.bias", "classifier.weight"]);
    let weight: Tensor<2> = fixture.float("classifier.weight", &device);
    model.classifier.weight = Param::from_tensor(weight.transpose());
    model.classifier.bias = Some(Param::from_tensor(
        fixture.float("classifier.bias", &device),
    ));
    let logits = max_abs_diff(model.forward(input()), &fixture.f32("logits"), "logits");

    println!("MiniLM max abs diff: hidden {hidden:e}, pooled {pooled:e}, logits {logits:e}");
    assert!(hidden < TOL, "hidden {hidden:e}");
    assert!(pooled < TOL, "pooled {pooled:e}");
    assert!(logits < TOL, "logits {logits:e}");
}
