use std::collections::BTreeSet;
use std::path::Path;
use std::sync::LazyLock;

use burn::tensor::Device;
use regex::Regex;

use super::config::GptConfig;
use super::model::GptModel;
use crate::ModelError;
use crate::hf::{KeyMap, KeyRouting, LoadReport, load_hf_checkpoint};

/// How Hugging Face OpenAI GPT checkpoint keys map onto our module paths (relative to
/// [`GptModel`]), as `(key pattern, path)`; the first match wins. The `transformer.` prefix
/// (`OpenAIGPTLMHeadModel`, `OpenAIGPTDoubleHeadsModel`) is optional. `Conv1D` weights are
/// stored `[in, out]` on both sides and read as they are; LayerNorm `weight`/`bias` (or the
/// TF-era `g`/`b`) become `gamma`/`beta`.
pub const GPT_KEY_MAP: &[(&str, &str)] = &[
    (
        r"^(?:transformer\.)?(tokens_embed|positions_embed)\.weight$",
        "${1}.weight",
    ),
    (
        r"^(?:transformer\.)?h\.(\d+)\.attn\.(c_attn|c_proj)\.(weight|bias)$",
        "h.${1}.attn.${2}.${3}",
    ),
    (
        r"^(?:transformer\.)?h\.(\d+)\.mlp\.(c_fc|c_proj)\.(weight|bias)$",
        "h.${1}.mlp.${2}.${3}",
    ),
    (
        r"^(?:transformer\.)?h\.(\d+)\.(ln_1|ln_2)\.(?:weight|g)$",
        "h.${1}.${2}.gamma",
    ),
    (
        r"^(?:transformer\.)?h\.(\d+)\.(ln_1|ln_2)\.(?:bias|b)$",
        "h.${1}.${2}.beta",
    ),
];

/// Checkpoint keys with no counterpart, skipped on load and listed in [`LoadReport::ignored`]:
/// the causal-mask buffers of older checkpoints (`h.N.attn.bias`), the `position_ids` buffer,
/// the LM head (tied to the token embeddings), and task heads of Hugging Face's GPT classes.
pub const GPT_IGNORED_KEYS: &[&str] = &[
    r"^(?:transformer\.)?h\.\d+\.attn\.(?:bias|masked_bias)$",
    r"^(?:transformer\.)?position_ids$",
    r"^lm_head\.weight$",
    r"^multiple_choice_head\.",
    r"^score\.",
];

static KEY_MAP: LazyLock<KeyMap> = LazyLock::new(|| KeyMap::new(GPT_KEY_MAP, "GPT_KEY_MAP"));

static IGNORED: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    GPT_IGNORED_KEYS
        .iter()
        .map(|pattern| Regex::new(pattern).expect("GPT_IGNORED_KEYS pattern"))
        .collect()
});

/// Our module path of a Hugging Face GPT key, through [`GPT_KEY_MAP`].
pub fn map_gpt_key(key: &str) -> Option<String> {
    KEY_MAP.map(key)
}

impl GptModel {
    /// Builds the model `config` describes and loads a Hugging Face checkpoint file into it;
    /// every parameter must be there, every key accounted for (see [`LoadReport`]).
    pub fn from_hf_weights(
        config: &GptConfig,
        weights: impl AsRef<Path>,
        device: &Device,
    ) -> Result<(Self, LoadReport), ModelError> {
        let mut model = config.init(device);
        let report = load_hf_checkpoint(
            &mut model,
            weights.as_ref(),
            &KeyRouting {
                map: &map_gpt_key,
                ignored: &|key| IGNORED.iter().any(|re| re.is_match(key)),
                route: &|relative| Some(relative),
                may_be_fresh: &|_: &str, _: &BTreeSet<&str>| false,
            },
        )?;
        Ok((model, report))
    }
}
