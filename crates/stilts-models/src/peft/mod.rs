//! Parameter-efficient modules added beside a pretrained encoder's weights: LoRA ([`lora`], as
//! Hugging Face `peft` defines it) and bottleneck adapters ([`bottleneck`], as AdapterHub
//! `adapters` defines them). An encoder carries them as optional sub-modules, so a model with
//! none has exactly the parameters (and parameter paths) it had before; [`PeftConfig`] says
//! which are present and is saved with the model so that its skeleton can be rebuilt.

pub mod bottleneck;
pub mod fusion;
pub mod lora;
mod peft_dir;

use serde::{Deserialize, Serialize};

use crate::EncoderKind;

pub use bottleneck::{AdapterActivation, AdapterInit, Bottleneck, BottleneckConfig};
pub use fusion::{Fusion, FusionConfig};
pub use lora::{Lora, LoraConfig, LoraTarget};
pub use peft_dir::{PEFT_CONFIG_FILE, lora_config_from_peft};

/// The parameter-efficient modules an encoder carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeftConfig {
    /// Low-rank updates of the chosen projections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraConfig>,
    /// Bottleneck adapters in every layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<BottleneckConfig>,
    /// Several frozen adapters in every layer, mixed by AdapterFusion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusedAdapters>,
}

/// The adapters a fusion mixes (all of one configuration) and the fusion layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusedAdapters {
    /// The configuration every fused adapter has.
    pub adapter: BottleneckConfig,
    /// The fusion layers.
    pub fusion: FusionConfig,
}

impl PeftConfig {
    /// Whether no module is asked for.
    pub fn is_empty(&self) -> bool {
        self.lora.is_none() && self.adapter.is_none() && self.fusion.is_none()
    }

    /// Checks every value is in range.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(l) = &self.lora {
            l.validate()?;
        }
        if let Some(a) = &self.adapter {
            a.validate()?;
        }
        if let Some(f) = &self.fusion {
            if self.adapter.is_some() {
                return Err("adapters and a fusion of adapters cannot share a model".into());
            }
            f.adapter.validate()?;
            f.fusion.validate()?;
        }
        Ok(())
    }

    /// Whether the encoder's LayerNorms train beside the modules (the adapters' recipe,
    /// Houlsby et al.; LoRA and fusion leave them frozen, as `peft` and `adapters` do).
    pub fn trains_layer_norms(&self) -> bool {
        self.adapter.as_ref().is_some_and(|a| a.train_layer_norms)
    }
}

/// Whether an encoder family carries the modules `config` asks for: BERT every one, GPT LoRA;
/// the error names what the family lacks.
pub fn supported_by(kind: EncoderKind, config: &PeftConfig) -> Result<(), String> {
    match kind {
        EncoderKind::Bert => Ok(()),
        EncoderKind::Gpt if config.adapter.is_none() && config.fusion.is_none() => Ok(()),
        EncoderKind::Gpt => Err(
            "adapters and AdapterFusion are implemented for BERT; the GPT encoder takes LoRA only"
                .into(),
        ),
        other => Err(format!(
            "LoRA and adapters are implemented for BERT and LoRA for GPT; the {other} encoder \
             does not take them yet"
        )),
    }
}
