//! LoRA on OpenAI GPT ([`crate::peft`]), as `peft` adapts GPT's `Conv1D` projections
//! (`fan_in_fan_out`): adding the updates, training only them, loading `peft`'s files and
//! folding the updates into the weights. Query, key and value are one projection here
//! (`c_attn`), so naming any of them adapts it, as `peft`'s GPT default (`c_attn`) does.

use std::path::Path;
use std::sync::LazyLock;

use burn::module::Module;
use burn::tensor::Device;

use super::model::{Block, GptModel};
use crate::ModelError;
use crate::bert::is_peft_path;
use crate::hf::{KeyMap, KeyRouting, LoadReport, load_hf_checkpoint};
use crate::peft::{Lora, LoraConfig, LoraTarget, PeftConfig};

/// `peft` keys of LoRA on a GPT (`adapter_model.safetensors`) and our module paths: regex
/// pattern (anchored) and replacement.
pub const GPT_PEFT_KEY_MAP: &[(&str, &str)] = &[
    (
        r"^(?:base_model\.model\.)?(?:transformer\.)?h\.(\d+)\.(attn|mlp)\.(c_attn|c_proj|c_fc)\.lora_A(?:\.default)?\.weight$",
        "h.${1}.${2}.lora_${3}.a.weight",
    ),
    (
        r"^(?:base_model\.model\.)?(?:transformer\.)?h\.(\d+)\.(attn|mlp)\.(c_attn|c_proj|c_fc)\.lora_B(?:\.default)?\.weight$",
        "h.${1}.${2}.lora_${3}.b.weight",
    ),
];

static PEFT_KEY_MAP: LazyLock<KeyMap> =
    LazyLock::new(|| KeyMap::new(GPT_PEFT_KEY_MAP, "GPT_PEFT_KEY_MAP"));

/// Our module path of a `peft` key of LoRA on a GPT, through [`GPT_PEFT_KEY_MAP`].
pub fn map_gpt_peft_key(key: &str) -> Option<String> {
    PEFT_KEY_MAP.map(key)
}

/// The projections of a GPT block LoRA adapts (`peft`'s module names inside `h.<i>`), with the
/// targets that name each: query, key and value are one projection, `c_attn`.
pub const GPT_LORA_PROJECTIONS: [(&str, &[LoraTarget]); 4] = [
    (
        "attn.c_attn",
        &[LoraTarget::Query, LoraTarget::Key, LoraTarget::Value],
    ),
    ("attn.c_proj", &[LoraTarget::AttentionOutput]),
    ("mlp.c_fc", &[LoraTarget::Intermediate]),
    ("mlp.c_proj", &[LoraTarget::Output]),
];

/// Whether LoRA adapts the block's `projection` ([`GPT_LORA_PROJECTIONS`]).
fn adapts(config: &LoraConfig, projection: &str) -> bool {
    GPT_LORA_PROJECTIONS
        .iter()
        .find(|(name, _)| *name == projection)
        .is_some_and(|(_, targets)| targets.iter().any(|t| config.targets(*t)))
}

impl GptModel {
    /// The model with fresh LoRA updates as `config` asks for, in every block: `c_attn` for
    /// query, key or value, the attention's `c_proj` for `attention_output`, `c_fc` for
    /// `intermediate` and the feed-forward `c_proj` for `output`. Adapters and fusions are
    /// BERT's only ([`crate::peft::supported_by`]); an update already present is replaced.
    pub fn add_peft(mut self, config: &PeftConfig, device: &Device) -> Self {
        let Some(l) = &config.lora else { return self };
        for block in &mut self.h {
            let [width, qkv] = block.attn.c_attn.weight.dims();
            let inner = block.mlp.c_fc.weight.dims()[1];
            let fresh = |projection, d_input, d_output| {
                adapts(l, projection).then(|| l.init(d_input, d_output, device))
            };
            block.attn.lora_c_attn = fresh("attn.c_attn", width, qkv);
            block.attn.lora_c_proj = fresh("attn.c_proj", width, width);
            block.mlp.lora_c_fc = fresh("mlp.c_fc", width, inner);
            block.mlp.lora_c_proj = fresh("mlp.c_proj", inner, width);
        }
        self
    }

    /// Every parameter frozen but the LoRA updates when `which` has LoRA.
    pub fn train_peft_only(self, which: &PeftConfig) -> Self {
        let mut model = self.no_grad();
        if which.lora.is_some() {
            model.h = model.h.into_iter().map(thaw_lora).collect();
        }
        model
    }

    /// The model with every LoRA update folded into its projection's weight.
    pub fn merge_lora(mut self) -> Self {
        for block in &mut self.h {
            let attn = &mut block.attn;
            attn.c_attn = attn.c_attn.clone().merge(attn.lora_c_attn.take());
            attn.c_proj = attn.c_proj.clone().merge(attn.lora_c_proj.take());
            let mlp = &mut block.mlp;
            mlp.c_fc = mlp.c_fc.clone().merge(mlp.lora_c_fc.take());
            mlp.c_proj = mlp.c_proj.clone().merge(mlp.lora_c_proj.take());
        }
        self
    }

    /// Loads the LoRA updates this model carries from a `peft` file
    /// (`adapter_model.safetensors`, [`GPT_PEFT_KEY_MAP`]); every update must be filled and
    /// every LoRA key used; the other weights stay.
    pub fn load_peft_weights(&mut self, path: impl AsRef<Path>) -> Result<LoadReport, ModelError> {
        load_hf_checkpoint(
            self,
            path.as_ref(),
            &KeyRouting {
                map: &map_gpt_peft_key,
                ignored: &|key| !key.contains("lora_"),
                route: &Some,
                may_be_fresh: &|path, _| !is_peft_path(path),
            },
        )
    }
}

fn thaw(lora: Option<Lora>) -> Option<Lora> {
    lora.map(|l| l.set_require_grad(true))
}

fn thaw_lora(mut block: Block) -> Block {
    block.attn.lora_c_attn = thaw(block.attn.lora_c_attn.take());
    block.attn.lora_c_proj = thaw(block.attn.lora_c_proj.take());
    block.mlp.lora_c_fc = thaw(block.mlp.lora_c_fc.take());
    block.mlp.lora_c_proj = thaw(block.mlp.lora_c_proj.take());
    block
}
