//! LoRA against HF `peft` and bottleneck adapters against AdapterHub `adapters`, on the tiny
//! BERT: hidden states, pooled output and the gradient of every module parameter, from the
//! modules' own saved files (scripts/make_peft_fixtures.py).

mod common;

use std::path::Path;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use common::{Fixture, check_module_grads, fixtures, max_abs, max_abs_diff, named_params, values};
use stilts_models::bert::{BertConfig, BertInput, BertModel, is_peft_path, map_peft_key};
use stilts_models::peft::{
    BottleneckConfig, FusedAdapters, FusionConfig, LoraConfig, LoraTarget, PeftConfig,
};

const TOL: f32 = 1e-5;
const GRAD_REL_TOL: f32 = 1e-4;

fn base(device: &Device) -> BertModel {
    let dir = fixtures().join("tiny-bert");
    let mut config = BertConfig::from_hf_file(dir.join("config.json")).unwrap();
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    BertModel::from_hf_weights(&config, dir.join("model.safetensors"), device)
        .unwrap()
        .0
}

fn input(device: &Device) -> BertInput {
    let f = Fixture::open(fixtures().join("tiny-bert/forward.safetensors"));
    BertInput::new(
        f.int("input_ids", device),
        f.int("token_type_ids", device),
        f.int("attention_mask", device),
    )
}

/// A model with the modules of `peft`, their weights read from `file`.
fn with_modules(peft: &PeftConfig, file: &Path, device: &Device) -> BertModel {
    let mut model = base(device).add_peft(peft, device);
    let report = model.load_peft_weights(file).unwrap();
    assert!(report.loaded.iter().all(|p| is_peft_path(p)), "{report}");
    let modules = named_params(&model)
        .into_iter()
        .filter(|(p, ..)| is_peft_path(p))
        .count();
    assert_eq!(report.loaded.len(), modules, "{report}");
    model
}

/// Forward values and the gradient of `sum(h * projection)` for every module parameter.
fn check(case: &str, peft: &PeftConfig, file: &str) -> BertModel {
    let device = Device::flex().autodiff();
    let dir = fixtures().join("peft").join(case);
    let expected = Fixture::open(dir.join("expected.safetensors"));
    let model = with_modules(peft, &dir.join(file), &device).train_peft_only(peft);
    let out = model.forward(input(&device));
    let hidden = max_abs_diff(
        out.last_hidden_state.clone(),
        &expected.f32("last_hidden_state"),
        "hidden",
    );
    let pooled = max_abs_diff(out.pooled_output, &expected.f32("pooled_output"), "pooled");
    let projection: Tensor<3> = expected.float("projection", &device);
    let loss = (out.last_hidden_state * projection).sum();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    // The fusion key's bias has a zero gradient in exact arithmetic (softmax ignores a shift
    // shared by all adapters): both sides give rounding noise, judged on the largest gradient.
    let largest = expected
        .names()
        .filter(|n| n.starts_with("grad."))
        .map(|n| max_abs(&expected.f32(n).0))
        .fold(0.0, f32::max);
    let worst = check_module_grads(
        case,
        &model,
        &grads,
        &expected,
        map_peft_key,
        |path, want| {
            if path.ends_with("fusion.key.bias") {
                largest
            } else {
                max_abs(want)
            }
        },
        GRAD_REL_TOL,
    );
    println!("{case}: hidden {hidden:e}, pooled {pooled:e}, gradients (relative) {worst:e}");
    assert!(hidden < TOL && pooled < TOL, "{case}");
    model
}

fn lora(config: LoraConfig) -> PeftConfig {
    PeftConfig {
        lora: Some(config),
        ..PeftConfig::default()
    }
}

fn adapter(config: BottleneckConfig) -> PeftConfig {
    PeftConfig {
        adapter: Some(
            config
                .with_reduction_factor(8)
                .with_train_layer_norms(false),
        ),
        ..PeftConfig::default()
    }
}

#[test]
fn lora_query_value_matches_peft() {
    check(
        "lora-qv",
        &lora(LoraConfig::new().with_r(4).with_alpha(8.0)),
        "adapter_model.safetensors",
    );
}

#[test]
fn lora_every_projection_with_rslora_matches_peft_and_merges() {
    let config = LoraConfig::new()
        .with_r(2)
        .with_alpha(6.0)
        .with_use_rslora(true)
        .with_target_modules(LoraTarget::ALL.to_vec());
    let model = check("lora-all", &lora(config), "adapter_model.safetensors");
    let device = Device::flex();
    let merged = model.valid().merge_lora();
    assert!(
        named_params(&merged).iter().all(|(p, ..)| !is_peft_path(p)),
        "merging removes the updates"
    );
    let expected = Fixture::open(fixtures().join("peft/lora-all/expected.safetensors"));
    let diff = max_abs_diff(
        merged.forward(input(&device)).last_hidden_state,
        &expected.f32("merged.last_hidden_state"),
        "merged",
    );
    println!("lora-all merged: hidden {diff:e}");
    assert!(diff < TOL);
}

#[test]
fn houlsby_adapters_match_adapters() {
    check(
        "houlsby",
        &adapter(BottleneckConfig::houlsby()),
        "adapter.safetensors",
    );
}

#[test]
fn pfeiffer_adapter_matches_adapters_and_reads_its_pickle() {
    let config = adapter(BottleneckConfig::pfeiffer());
    check("pfeiffer", &config, "adapter.safetensors");
    let device = Device::flex();
    let dir = fixtures().join("peft/pfeiffer");
    let model = with_modules(&config, &dir.join("pytorch_adapter.bin"), &device);
    let diff = max_abs_diff(
        model.forward(input(&device)).last_hidden_state,
        &Fixture::open(dir.join("expected.safetensors")).f32("last_hidden_state"),
        "pickle",
    );
    assert!(diff < TOL, "pytorch_adapter.bin: {diff:e}");
}

#[test]
fn fresh_modules_start_at_or_near_the_base_model() {
    let device = Device::flex();
    let plain = base(&device).forward(input(&device)).last_hidden_state;
    let lora_all = lora(LoraConfig::new().with_target_modules(LoraTarget::ALL.to_vec()));
    let exact = base(&device)
        .add_peft(&lora_all, &device)
        .forward(input(&device))
        .last_hidden_state;
    assert_eq!(
        values(exact),
        values(plain.clone()),
        "LoRA's B starts at zero"
    );
    let mam = adapter(BottleneckConfig::houlsby().with_init(stilts_models::peft::AdapterInit::Mam));
    let identity = base(&device)
        .add_peft(&mam, &device)
        .forward(input(&device))
        .last_hidden_state;
    assert!(max_abs_diff(identity, &values(plain), "mam") < 1e-6);
}

#[test]
fn only_the_modules_train() {
    let device = Device::flex().autodiff();
    let both = PeftConfig {
        lora: Some(LoraConfig::new()),
        adapter: Some(BottleneckConfig::houlsby().with_train_layer_norms(false)),
        fusion: None,
    };
    for (which, layer_norms, lora, adapters) in [
        (both.clone(), false, true, true),
        (
            PeftConfig {
                adapter: Some(BottleneckConfig::houlsby()),
                ..both.clone()
            },
            true,
            true,
            true,
        ),
        (
            PeftConfig {
                lora: None,
                ..both.clone()
            },
            false,
            false,
            true,
        ),
    ] {
        let model = base(&device)
            .add_peft(&both, &device)
            .train_peft_only(&which);
        let loss = model.forward(input(&device)).last_hidden_state.sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        for (path, id, value) in named_params(&model) {
            let has = match value.1.len() {
                1 => grads.get::<1>(id).is_some(),
                2 => grads.get::<2>(id).is_some(),
                _ => false,
            };
            let layer_norm = path.contains("layers.") && path.contains("layer_norm");
            let trains = (lora && path.contains(".lora_"))
                || (adapters && path.contains(".adapter."))
                || (layer_norms && layer_norm);
            assert_eq!(has, trains, "{path} ({which:?})");
        }
    }
}

#[test]
fn adapter_fusion_matches_adapters() {
    let fused = BottleneckConfig::pfeiffer()
        .with_reduction_factor(8)
        .with_train_layer_norms(false);
    let peft = PeftConfig {
        fusion: Some(FusedAdapters {
            adapter: fused,
            fusion: FusionConfig::new(2).with_dropout(0.0),
        }),
        ..PeftConfig::default()
    };
    check("fusion", &peft, "adapter.safetensors");
}
