//! The tiny BERT against Hugging Face's fixture on every backend this build has: flex always,
//! and wgpu / cuda / libtorch when their features are on (`cargo xtask check-backends`).
//! `STILTS_TEST_DEVICES` (comma-separated, e.g. `wgpu:cpu,tch-cpu`) overrides the list.

mod common;

use common::{Fixture, fixtures, max_abs_diff};
use stilts_models::bert::{BertForSequenceClassification, BertInput};
use stilts_models::device::DeviceChoice;

/// GPU kernels reorder sums (and may use TF32-free but fused math): looser than the 1e-5 of
/// the flex parity tests.
const TOL: f32 = 1e-4;

fn devices() -> Vec<DeviceChoice> {
    if let Ok(list) = std::env::var("STILTS_TEST_DEVICES") {
        return list
            .split(',')
            .map(|s| s.parse().unwrap_or_else(|e| panic!("{e}")))
            .collect();
    }
    let mut devices = vec![DeviceChoice::Cpu];
    if cfg!(feature = "wgpu") {
        devices.push(DeviceChoice::Wgpu);
    }
    if cfg!(feature = "cuda") {
        devices.push(DeviceChoice::Cuda(0));
    }
    if cfg!(feature = "tch") {
        devices.push(DeviceChoice::TchCpu);
    }
    devices
}

#[test]
fn tiny_bert_matches_hf_on_every_backend() {
    let dir = fixtures().join("tiny-bert");
    let fixture = Fixture::open(dir.join("forward.safetensors"));
    for choice in devices() {
        let device = choice.device().expect("compiled in");
        let start = std::time::Instant::now();
        let (model, _) =
            BertForSequenceClassification::from_pretrained(&dir, 3, &device).expect("loads");
        let input = BertInput::new(
            fixture.int("input_ids", &device),
            fixture.int("token_type_ids", &device),
            fixture.int("attention_mask", &device),
        );
        let diff = max_abs_diff(model.forward(input), &fixture.f32("logits"), "logits");
        println!(
            "{choice}: logits max abs diff {diff:e} ({:.1} s including kernel compilation)",
            start.elapsed().as_secs_f64()
        );
        assert!(diff < TOL, "{choice}: logits differ by {diff:e}");
    }
}
