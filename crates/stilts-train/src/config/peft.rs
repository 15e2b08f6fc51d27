//! The recipe's `lora` and `adapter` tables ([`stilts_schema::peft`]) as the modules'
//! configurations: absent keys take `stilts_models::peft`'s defaults.

use stilts_models::peft::{
    AdapterActivation, AdapterInit, BottleneckConfig, FusionConfig, LoraConfig, LoraTarget,
};
use stilts_schema::peft::{
    AdapterFile, AdapterInitName, AdapterNonLinearity, AdapterPlacement, AdapterPreset, FusionFile,
    FusionKind, LoraFile, LoraTargetName,
};

use super::recipe::FusionRecipe;

/// LoRA as a `lora` table sets it.
pub fn lora_config(file: &LoraFile) -> LoraConfig {
    let mut c = LoraConfig::new();
    if let Some(v) = file.r {
        c.r = v;
    }
    if let Some(v) = file.alpha {
        c.alpha = v;
    }
    if let Some(v) = file.dropout {
        c.dropout = v;
    }
    if let Some(v) = file.use_rslora {
        c.use_rslora = v;
    }
    if let Some(targets) = &file.target_modules {
        c.target_modules = targets.iter().map(|t| lora_target(*t)).collect();
    }
    c
}

fn lora_target(name: LoraTargetName) -> LoraTarget {
    match name {
        LoraTargetName::Query => LoraTarget::Query,
        LoraTargetName::Key => LoraTarget::Key,
        LoraTargetName::Value => LoraTarget::Value,
        LoraTargetName::AttentionOutput => LoraTarget::AttentionOutput,
        LoraTargetName::Intermediate => LoraTarget::Intermediate,
        LoraTargetName::Output => LoraTarget::Output,
    }
}

/// Bottleneck adapters as an `adapter` table sets them: the preset, then the keys.
pub fn adapter_config(file: &AdapterFile) -> BottleneckConfig {
    let mut c = match file.preset.unwrap_or(AdapterPreset::Houlsby) {
        AdapterPreset::Houlsby => BottleneckConfig::houlsby(),
        AdapterPreset::Pfeiffer => BottleneckConfig::pfeiffer(),
    };
    if let Some(v) = file.reduction_factor {
        c.reduction_factor = v;
    }
    if let Some(v) = file.non_linearity {
        c.non_linearity = match v {
            AdapterNonLinearity::Relu => AdapterActivation::Relu,
            AdapterNonLinearity::Swish => AdapterActivation::Swish,
            AdapterNonLinearity::Gelu => AdapterActivation::Gelu,
            AdapterNonLinearity::Tanh => AdapterActivation::Tanh,
        };
    }
    if let Some(places) = &file.placement {
        c.mh_adapter = places.contains(&AdapterPlacement::Attention);
        c.output_adapter = places.contains(&AdapterPlacement::Output);
    }
    if let Some(v) = file.init {
        c.init = match v {
            AdapterInitName::Bert => AdapterInit::Bert,
            AdapterInitName::Mam => AdapterInit::Mam,
        };
    }
    if let Some(v) = file.train_layer_norms {
        c.train_layer_norms = v;
    }
    c
}

/// A fusion as a `fusion` table sets it: `adapters`' dynamic fusion (or static), one input per
/// module directory.
pub fn fusion_recipe(file: &FusionFile) -> FusionRecipe {
    let n = file.adapters.len();
    let mut fusion = match file.kind.unwrap_or(FusionKind::Dynamic) {
        FusionKind::Dynamic => FusionConfig::new(n),
        FusionKind::Static => FusionConfig::fixed(n),
    };
    if let Some(v) = file.dropout {
        fusion.dropout = v;
    }
    FusionRecipe {
        adapters: file.adapters.clone(),
        fusion,
    }
}
