//! The `lora` and `adapter` recipe tables: parameter-efficient training, where a phase trains
//! small modules added to a frozen encoder (and its heads) instead of the whole encoder.
//! Every key is optional; absent keys take the defaults of `stilts_models::peft`
//! (`peft`'s for LoRA, `adapters`' for the adapter presets).

use serde::{Deserialize, Serialize};

/// `lora = { r = 8, alpha = 16, dropout = 0.1, target_modules = ["query", "value"] }`: LoRA
/// (Hu et al. 2021) as Hugging Face `peft` defines it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraFile {
    /// Rank of the update (default 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r: Option<usize>,
    /// `lora_alpha`: the update is scaled by `alpha / r` (default 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Dropout on the update's input (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// The projections adapted in every layer (default `["query", "value"]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_modules: Option<Vec<LoraTargetName>>,
    /// Scale by `alpha / sqrt(r)` (rank-stabilised LoRA; default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_rslora: Option<bool>,
}

/// A projection LoRA adapts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoraTargetName {
    /// Attention query.
    Query,
    /// Attention key.
    Key,
    /// Attention value.
    Value,
    /// The attention output's projection.
    AttentionOutput,
    /// The first feed-forward projection.
    Intermediate,
    /// The second feed-forward projection.
    Output,
}

/// `adapter = { preset = "houlsby", reduction_factor = 16 }`: bottleneck adapters in every
/// layer, as AdapterHub `adapters` defines them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterFile {
    /// `houlsby` (default: after attention and after the feed-forward block, swish) or
    /// `pfeiffer` (after the feed-forward block, ReLU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<AdapterPreset>,
    /// Hidden width over bottleneck width (default 16).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reduction_factor: Option<usize>,
    /// `relu`, `swish`, `gelu` or `tanh` (default: the preset's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub non_linearity: Option<AdapterNonLinearity>,
    /// Where adapters go: `attention` (after the attention output projection) and/or `output`
    /// (after the feed-forward output projection); default: the preset's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Vec<AdapterPlacement>>,
    /// `bert` (default: normal(0, 0.02), near the identity) or `mam` (up-projection zero: the
    /// identity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<AdapterInitName>,
    /// The encoder's LayerNorms train with the adapters (default true, Houlsby et al.).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_layer_norms: Option<bool>,
}

/// An adapter architecture of `adapters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterPreset {
    /// `double_seq_bn`.
    Houlsby,
    /// `seq_bn`.
    Pfeiffer,
}

/// The bottleneck's non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterNonLinearity {
    /// ReLU.
    Relu,
    /// `x * sigmoid(x)`.
    Swish,
    /// Exact GELU.
    Gelu,
    /// tanh.
    Tanh,
}

/// Where in a layer an adapter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterPlacement {
    /// After the attention output projection (`mh_adapter`).
    Attention,
    /// After the feed-forward output projection (`output_adapter`).
    Output,
}

/// How fresh adapter weights are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterInitName {
    /// Normal(0, 0.02) for both projections.
    Bert,
    /// The up-projection zero.
    Mam,
}

/// `fusion = { adapters = ["runs/mnli/.../adapter", "runs/qqp/.../adapter"] }`: AdapterFusion
/// (Pfeiffer et al. 2021) over adapters trained before, each a module directory written by a
/// run with `adapter` (and `train_layer_norms = false`) on the same base encoder; the fusion
/// layers and the heads train, the adapters stay frozen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionFile {
    /// The module directories (`<run>/adapter`) of the adapters to fuse, at least two.
    pub adapters: Vec<String>,
    /// `dynamic` (default: query, key and a value projection started at the identity) or
    /// `static` (no value projection), as `adapters` names them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<FusionKind>,
    /// Dropout on the fusion's attention scores (default 0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
}

/// The fusion layer's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FusionKind {
    /// With a value projection.
    Dynamic,
    /// Without one.
    Static,
}
