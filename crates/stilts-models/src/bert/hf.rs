use std::collections::BTreeSet;
use std::path::Path;
use std::sync::LazyLock;

use burn::module::Module;
use regex::Regex;

use crate::ModelError;
use crate::hf::{KeyMap, KeyRouting, load_hf_checkpoint};
pub use crate::hf::{LoadReport, weights_file};

/// How Hugging Face BERT checkpoint keys map onto our module paths, as `(key pattern, path)`.
///
/// Paths are relative to [`BertModel`](super::BertModel), except `classifier.*` which is
/// relative to [`BertForSequenceClassification`](super::BertForSequenceClassification) (whose
/// encoder paths gain a `bert.` prefix). The first matching pattern wins. The `bert.` prefix of
/// task checkpoints is optional, and TF-era `LayerNorm.gamma`/`beta` names are accepted beside
/// `weight`/`bias`. Linear weights are transposed on load (PyTorch stores `[out, in]`).
pub const BERT_KEY_MAP: &[(&str, &str)] = &[
    (
        r"^(?:bert\.)?embeddings\.(word_embeddings|position_embeddings|token_type_embeddings)\.weight$",
        "embeddings.${1}.weight",
    ),
    (
        r"^(?:bert\.)?embeddings\.LayerNorm\.(?:weight|gamma)$",
        "embeddings.layer_norm.gamma",
    ),
    (
        r"^(?:bert\.)?embeddings\.LayerNorm\.(?:bias|beta)$",
        "embeddings.layer_norm.beta",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)$",
        "encoder.layers.${1}.attention.self_attention.${2}.${3}",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$",
        "encoder.layers.${1}.attention.output.dense.${2}",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(?:weight|gamma)$",
        "encoder.layers.${1}.attention.output.layer_norm.gamma",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(?:bias|beta)$",
        "encoder.layers.${1}.attention.output.layer_norm.beta",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)$",
        "encoder.layers.${1}.intermediate.dense.${2}",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)$",
        "encoder.layers.${1}.output.dense.${2}",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.(?:weight|gamma)$",
        "encoder.layers.${1}.output.layer_norm.gamma",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.(?:bias|beta)$",
        "encoder.layers.${1}.output.layer_norm.beta",
    ),
    (
        r"^(?:bert\.)?pooler\.dense\.(weight|bias)$",
        "pooler.dense.${1}",
    ),
    (r"^classifier\.(weight|bias)$", "classifier.${1}"),
];

/// Checkpoint keys with no counterpart in our models, skipped on load and listed in
/// [`LoadReport::ignored`]: the `position_ids` buffer and the pre-training heads (masked LM,
/// next sentence prediction; the MLM decoder is tied to the word embeddings).
pub const BERT_IGNORED_KEYS: &[&str] = &[r"^(?:bert\.)?embeddings\.position_ids$", r"^cls\."];

static KEY_MAP: LazyLock<KeyMap> = LazyLock::new(|| KeyMap::new(BERT_KEY_MAP, "BERT_KEY_MAP"));

static IGNORED: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    BERT_IGNORED_KEYS
        .iter()
        .map(|pattern| Regex::new(pattern).expect("BERT_IGNORED_KEYS pattern"))
        .collect()
});

/// Maps a Hugging Face checkpoint key to our module path through [`BERT_KEY_MAP`]
/// (paths relative to [`BertModel`](super::BertModel), `classifier.*` for the head).
pub fn map_hf_key(key: &str) -> Option<String> {
    KEY_MAP.map(key)
}

fn is_ignored(key: &str) -> bool {
    IGNORED.iter().any(|re| re.is_match(key))
}

/// Which of our models a checkpoint is loaded into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// [`BertModel`](super::BertModel): a task head in the checkpoint is ignored.
    Encoder,
    /// [`BertForSequenceClassification`](super::BertForSequenceClassification).
    Classifier,
}

impl Target {
    fn path(self, relative: String) -> Option<String> {
        let head = relative.starts_with("classifier.");
        match (self, head) {
            (Target::Encoder, true) => None,
            (Target::Encoder, false) => Some(relative),
            (Target::Classifier, true) => Some(relative),
            (Target::Classifier, false) => Some(format!("bert.{relative}")),
        }
    }

    fn pooler_prefix(self) -> &'static str {
        match self {
            Target::Encoder => "pooler.",
            Target::Classifier => "bert.pooler.",
        }
    }
}

/// Loads a Hugging Face BERT checkpoint into `module` (a [`BertModel`](super::BertModel) or a
/// [`BertForSequenceClassification`](super::BertForSequenceClassification), as `target` says),
/// checking every key against [`BERT_KEY_MAP`]. A task head or a pooler the checkpoint lacks
/// keeps its fresh initialisation.
pub(crate) fn load_hf_weights<M: Module>(
    module: &mut M,
    path: &Path,
    target: Target,
) -> Result<LoadReport, ModelError> {
    let may_be_fresh = |path: &str, filled: &BTreeSet<&str>| {
        let has = |prefix: &str| filled.iter().any(|p| p.starts_with(prefix));
        (path.starts_with("classifier.") && !has("classifier."))
            || (path.starts_with(target.pooler_prefix()) && !has(target.pooler_prefix()))
    };
    load_hf_checkpoint(
        module,
        path,
        &KeyRouting {
            map: &map_hf_key,
            ignored: &is_ignored,
            route: &|relative| target.path(relative),
            may_be_fresh: &may_be_fresh,
        },
    )
}

/// How the keys of parameter-efficient modules map onto our module paths (relative to
/// [`BertModel`](super::BertModel)), as `(key pattern, path)`: LoRA as `peft` saves it
/// (`adapter_model.safetensors`: `base_model.model.` then the module, `lora_A`/`lora_B`, with
/// or without the adapter name `default`), and bottleneck adapters as `adapters` names them
/// (`attention.output.adapters.<name>.adapter_down.0`, `output.adapters.<name>.adapter_up`;
/// adapters named by a number are the fused ones, in that order, and
/// `adapter_fusion_layer.<names>` is the fusion).
pub const BERT_PEFT_KEY_MAP: &[(&str, &str)] = &[
    (
        r"^(?:base_model\.model\.)?(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.lora_A(?:\.default)?\.weight$",
        "encoder.layers.${1}.attention.self_attention.lora_${2}.a.weight",
    ),
    (
        r"^(?:base_model\.model\.)?(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.lora_B(?:\.default)?\.weight$",
        "encoder.layers.${1}.attention.self_attention.lora_${2}.b.weight",
    ),
    (
        r"^(?:base_model\.model\.)?(?:bert\.)?encoder\.layer\.(\d+)\.(attention\.output|intermediate|output)\.dense\.lora_A(?:\.default)?\.weight$",
        "encoder.layers.${1}.${2}.lora_dense.a.weight",
    ),
    (
        r"^(?:base_model\.model\.)?(?:bert\.)?encoder\.layer\.(\d+)\.(attention\.output|intermediate|output)\.dense\.lora_B(?:\.default)?\.weight$",
        "encoder.layers.${1}.${2}.lora_dense.b.weight",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.(attention\.output|output)\.adapters\.(\d+)\.adapter_down\.0\.(weight|bias)$",
        "encoder.layers.${1}.${2}.fused.${3}.down.${4}",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.(attention\.output|output)\.adapters\.(\d+)\.adapter_up\.(weight|bias)$",
        "encoder.layers.${1}.${2}.fused.${3}.up.${4}",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.(attention\.output|output)\.adapter_fusion_layer\.[^.]+\.(query|key|value)\.(weight|bias)$",
        "encoder.layers.${1}.${2}.fusion.${3}.${4}",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.(attention\.output|output)\.adapters\.[^.]+\.adapter_down\.0\.(weight|bias)$",
        "encoder.layers.${1}.${2}.adapter.down.${3}",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.(\d+)\.(attention\.output|output)\.adapters\.[^.]+\.adapter_up\.(weight|bias)$",
        "encoder.layers.${1}.${2}.adapter.up.${3}",
    ),
];

static PEFT_KEY_MAP: LazyLock<KeyMap> =
    LazyLock::new(|| KeyMap::new(BERT_PEFT_KEY_MAP, "BERT_PEFT_KEY_MAP"));

/// Maps a `peft` or `adapters` key to our module path through [`BERT_PEFT_KEY_MAP`].
pub fn map_peft_key(key: &str) -> Option<String> {
    PEFT_KEY_MAP.map(key)
}

/// Whether a module path of [`BertModel`](super::BertModel) belongs to a parameter-efficient
/// module.
pub fn is_peft_path(path: &str) -> bool {
    [".lora_", ".adapter.", ".fused.", ".fusion."]
        .iter()
        .any(|m| path.contains(m))
}

/// Loads the weights of parameter-efficient modules (a `peft` `adapter_model.safetensors`, or
/// `adapters` weights) into an encoder that carries those modules; every module must be
/// filled, and the rest of the encoder keeps its weights. Heads and saved base weights in the
/// file are ignored.
pub(crate) fn load_peft_weights<M: Module>(
    module: &mut M,
    path: &Path,
) -> Result<LoadReport, ModelError> {
    load_hf_checkpoint(
        module,
        path,
        &KeyRouting {
            map: &map_peft_key,
            ignored: &|key| {
                !key.contains("lora_")
                    && !key.contains(".adapters.")
                    && !key.contains("adapter_fusion_layer")
            },
            route: &Some,
            may_be_fresh: &|path, _| !is_peft_path(path),
        },
    )
}
