//! Parameter-efficient modules on BERT ([`crate::peft`]): adding them to a pretrained encoder,
//! training only them, and folding LoRA into the weights.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;

use super::encoder::in_param_group;
use super::hf::{LoadReport, is_peft_path, load_peft_weights};
use super::model::{BertLayer, BertModel};
use crate::ModelError;
use crate::peft::{Bottleneck, Fusion, Lora, LoraTarget, PeftConfig, lora};

impl BertModel {
    /// The encoder with fresh modules as `config` asks for, in every layer: LoRA updates of
    /// the configured projections, and bottleneck adapters after the attention output and
    /// after the feed-forward block. A module already present is replaced.
    pub fn add_peft(mut self, config: &PeftConfig, device: &Device) -> Self {
        for layer in &mut self.encoder.layers {
            let hidden = layer.attention.self_attention.query.weight.dims()[0];
            let inner = layer.intermediate.dense.weight.dims()[1];
            if let Some(l) = &config.lora {
                let fresh = |target, d_input, d_output| {
                    l.targets(target).then(|| l.init(d_input, d_output, device))
                };
                let attention = &mut layer.attention.self_attention;
                attention.lora_query = fresh(LoraTarget::Query, hidden, hidden);
                attention.lora_key = fresh(LoraTarget::Key, hidden, hidden);
                attention.lora_value = fresh(LoraTarget::Value, hidden, hidden);
                layer.attention.output.lora_dense =
                    fresh(LoraTarget::AttentionOutput, hidden, hidden);
                layer.intermediate.lora_dense = fresh(LoraTarget::Intermediate, hidden, inner);
                layer.output.lora_dense = fresh(LoraTarget::Output, inner, hidden);
            }
            if let Some(a) = &config.adapter {
                layer.attention.output.adapter = a.mh_adapter.then(|| a.init(hidden, device));
                layer.output.adapter = a.output_adapter.then(|| a.init(hidden, device));
            }
            if let Some(f) = &config.fusion {
                let fused = |on: bool| -> (Vec<Bottleneck>, Option<Fusion>) {
                    if !on {
                        return (Vec::new(), None);
                    }
                    let adapters = (0..f.fusion.adapters)
                        .map(|_| f.adapter.init(hidden, device))
                        .collect();
                    (adapters, Some(f.fusion.init(hidden, device)))
                };
                let output = &mut layer.attention.output;
                (output.fused, output.fusion) = fused(f.adapter.mh_adapter);
                (layer.output.fused, layer.output.fusion) = fused(f.adapter.output_adapter);
            }
        }
        self
    }

    /// Loads the weights of the modules this encoder carries from a `peft` adapter file
    /// (`adapter_model.safetensors`) or `adapters` weights ([`super::BERT_PEFT_KEY_MAP`]);
    /// the other weights stay. Every module must be filled and every key used.
    pub fn load_peft_weights(&mut self, path: impl AsRef<Path>) -> Result<LoadReport, ModelError> {
        load_peft_weights(self, path.as_ref())
    }

    /// Every parameter frozen but the modules `which` names (its LoRA updates, its adapters,
    /// and with the adapters' `train_layer_norms` the layers' LayerNorms): what trains when
    /// only those modules do. Modules the encoder carries but `which` leaves out stay frozen.
    pub fn train_peft_only(self, which: &PeftConfig) -> Self {
        let mut model = self.no_grad();
        model.encoder.layers = model
            .encoder
            .layers
            .into_iter()
            .map(|layer| thaw_peft(layer, which))
            .collect();
        model
    }

    /// The encoder with every LoRA update folded into its projection's weight (`peft`'s
    /// `merge_and_unload`): the same function with no extra matrix products. Adapters stay.
    pub fn merge_lora(mut self) -> Self {
        self.encoder.layers = self
            .encoder
            .layers
            .into_iter()
            .map(|mut layer| {
                let attention = &mut layer.attention.self_attention;
                attention.query = lora::merge(attention.query.clone(), attention.lora_query.take());
                attention.key = lora::merge(attention.key.clone(), attention.lora_key.take());
                attention.value = lora::merge(attention.value.clone(), attention.lora_value.take());
                let output = &mut layer.attention.output;
                output.dense = lora::merge(output.dense.clone(), output.lora_dense.take());
                let inter = &mut layer.intermediate;
                inter.dense = lora::merge(inter.dense.clone(), inter.lora_dense.take());
                layer.output.dense =
                    lora::merge(layer.output.dense.clone(), layer.output.lora_dense.take());
                layer
            })
            .collect();
        self
    }
}

fn thaw(lora: Option<Lora>) -> Option<Lora> {
    lora.map(|l| l.set_require_grad(true))
}

fn thaw_peft(mut layer: BertLayer, which: &PeftConfig) -> BertLayer {
    if which.lora.is_some() {
        let attention = &mut layer.attention.self_attention;
        attention.lora_query = thaw(attention.lora_query.take());
        attention.lora_key = thaw(attention.lora_key.take());
        attention.lora_value = thaw(attention.lora_value.take());
        let output = &mut layer.attention.output;
        output.lora_dense = thaw(output.lora_dense.take());
        layer.intermediate.lora_dense = thaw(layer.intermediate.lora_dense.take());
        layer.output.lora_dense = thaw(layer.output.lora_dense.take());
    }
    if which.adapter.is_some() {
        let output = &mut layer.attention.output;
        output.adapter = output.adapter.take().map(|a| a.set_require_grad(true));
        layer.output.adapter = layer
            .output
            .adapter
            .take()
            .map(|a| a.set_require_grad(true));
    }
    if which.fusion.is_some() {
        let output = &mut layer.attention.output;
        output.fusion = output.fusion.take().map(|f| f.set_require_grad(true));
        layer.output.fusion = layer.output.fusion.take().map(|f| f.set_require_grad(true));
    }
    if which.trains_layer_norms() {
        layer.attention.output.layer_norm =
            layer.attention.output.layer_norm.set_require_grad(true);
        layer.output.layer_norm = layer.output.layer_norm.set_require_grad(true);
    }
    layer
}

/// Whether a parameter path of a model holding a BERT that carries the modules of `peft` and
/// trained the parameter groups `groups` beside them is no longer the base encoder's: every
/// module (fused adapters included, though frozen), the layers' LayerNorms when the adapters
/// train them, and the groups. What a module file holds, and what its base hash leaves out.
pub fn beside_base(path: &str, peft: &PeftConfig, groups: &[String]) -> bool {
    is_peft_path(path)
        || (peft.trains_layer_norms() && path.contains(".layers.") && path.contains(".layer_norm."))
        || groups.iter().any(|g| in_param_group(path, g))
}
