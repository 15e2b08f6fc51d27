//! LoRA on the tiny OpenAI GPT against HF `peft` (its Conv1D projections, `fan_in_fan_out`):
//! hidden states, the gradient of every LoRA matrix, and the merged model, from `peft`'s own
//! saved files (scripts/make_peft_fixtures.py, cases `gpt-lora-attn` and `gpt-lora-all`).

mod common;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use common::{Fixture, check_module_grads, fixtures, max_abs, max_abs_diff, named_params};
use stilts_models::bert::is_peft_path;
use stilts_models::gpt::{GptConfig, GptModel, map_gpt_peft_key};
use stilts_models::peft::{BottleneckConfig, LoraConfig, LoraTarget, PeftConfig};
use stilts_models::{Encoder, EncoderConfig};

const TOL: f32 = 1e-5;
const GRAD_REL_TOL: f32 = 1e-4;

fn base(device: &Device) -> GptModel {
    let dir = fixtures().join("tiny-gpt");
    let mut config = GptConfig::from_hf_file(dir.join("config.json")).unwrap();
    config.attn_pdrop = 0.0;
    config.resid_pdrop = 0.0;
    config.embd_pdrop = 0.0;
    GptModel::from_hf_weights(&config, dir.join("model.safetensors"), device)
        .unwrap()
        .0
}

fn lora(config: LoraConfig) -> PeftConfig {
    PeftConfig {
        lora: Some(config),
        ..PeftConfig::default()
    }
}

/// The model with `peft`'s updates of `case`, trained: hidden states and every LoRA gradient
/// against `peft`'s.
fn check(case: &str, peft: &PeftConfig) -> GptModel {
    let device = Device::flex().autodiff();
    let dir = fixtures().join("peft").join(case);
    let expected = Fixture::open(dir.join("expected.safetensors"));
    let forward = Fixture::open(fixtures().join("tiny-gpt/forward.safetensors"));
    let mut model = base(&device).add_peft(peft, &device);
    let report = model
        .load_peft_weights(dir.join("adapter_model.safetensors"))
        .unwrap();
    let modules = named_params(&model)
        .into_iter()
        .filter(|(p, ..)| is_peft_path(p))
        .count();
    assert!(report.loaded.iter().all(|p| is_peft_path(p)), "{report}");
    assert_eq!(report.loaded.len(), modules, "{report}");
    let model = model.train_peft_only(peft);
    let out = model.forward(
        forward.int("input_ids", &device),
        forward.int("attention_mask", &device),
    );
    let hidden = max_abs_diff(
        out.last_hidden_state.clone(),
        &expected.f32("last_hidden_state"),
        "hidden",
    );
    let projection: Tensor<3> = expected.float("projection", &device);
    let loss = (out.last_hidden_state * projection).sum();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let worst = check_module_grads(
        case,
        &model,
        &grads,
        &expected,
        map_gpt_peft_key,
        |_, want| max_abs(want),
        GRAD_REL_TOL,
    );
    println!("{case}: hidden {hidden:e}, gradients (relative) {worst:e}");
    assert!(hidden < TOL, "{case}");
    model
}

#[test]
fn lora_on_c_attn_matches_peft_gpt_default() {
    // stilts' default targets (query and value) name GPT's fused c_attn, peft's GPT default.
    let model = check(
        "gpt-lora-attn",
        &lora(LoraConfig::new().with_r(4).with_alpha(8.0)),
    );
    let paths: Vec<String> = named_params(&model)
        .into_iter()
        .map(|(p, ..)| p)
        .filter(|p| is_peft_path(p))
        .collect();
    assert!(
        paths.iter().all(|p| p.contains(".attn.lora_c_attn.")),
        "{paths:?}"
    );
}

#[test]
fn lora_on_every_projection_with_rslora_matches_peft_and_merges() {
    let config = LoraConfig::new()
        .with_r(2)
        .with_alpha(6.0)
        .with_use_rslora(true)
        .with_target_modules(LoraTarget::ALL.to_vec());
    let model = check("gpt-lora-all", &lora(config)).valid().merge_lora();
    assert!(
        named_params(&model).iter().all(|(p, ..)| !is_peft_path(p)),
        "merging removes the updates"
    );
    let device = Device::flex();
    let forward = Fixture::open(fixtures().join("tiny-gpt/forward.safetensors"));
    let expected = Fixture::open(fixtures().join("peft/gpt-lora-all/expected.safetensors"));
    let merged = model.forward(
        forward.int("input_ids", &device),
        forward.int("attention_mask", &device),
    );
    let diff = max_abs_diff(
        merged.last_hidden_state,
        &expected.f32("merged.last_hidden_state"),
        "merged",
    );
    println!("gpt-lora-all merged: hidden {diff:e}");
    assert!(diff < TOL);
}

#[test]
fn gpt_takes_lora_only() {
    let device = Device::flex();
    let encoder = Encoder::Gpt(base(&device));
    let adapters = PeftConfig {
        adapter: Some(BottleneckConfig::pfeiffer()),
        ..PeftConfig::default()
    };
    let err = encoder.add_peft(&adapters, &device).unwrap_err();
    assert!(err.contains("GPT encoder takes LoRA only"), "{err}");
    let _ = EncoderConfig::from_hf_dir(&fixtures().join("tiny-gpt")).unwrap();
}
