//! A LoRA directory saved by Hugging Face `peft` (`adapter_config.json`) read as a
//! [`LoraConfig`] for BERT or OpenAI GPT: which of the family's projections its
//! `target_modules` select, by `peft`'s own matching rule over the family's module names, and
//! every setting stilts does not implement refused by name.

use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::peft::{LoraConfig, LoraTarget};
use crate::{EncoderKind, ModelError};

/// The file `peft`'s `save_pretrained` writes beside `adapter_model.safetensors`.
pub const PEFT_CONFIG_FILE: &str = "adapter_config.json";

/// How one family's Hugging Face modules look to `peft`'s `target_modules`.
struct Layout {
    /// The first layer's module name (the base model's).
    block: &'static str,
    /// The projections inside a layer, with the targets each is.
    projections: &'static [(&'static str, &'static [LoraTarget])],
    /// The prefix of the base model inside a task model (`BertFor*`, `OpenAIGPTLMHeadModel`).
    prefix: &'static str,
    /// The first layer's part of a name, and the last layer's of a 12-layer model.
    layers: (&'static str, &'static str),
    /// Other linear modules an entry could select (LoRA on them is not implemented).
    others: &'static [&'static str],
    /// `fan_in_fan_out`: whether the projections store `[in, out]` weights (GPT's `Conv1D`).
    fan_in_fan_out: bool,
    /// `peft`'s default `target_modules` for the family.
    default_targets: &'static [&'static str],
}

// transformers/models/bert/modeling_bert.py: BertModel
const BERT: Layout = Layout {
    block: "encoder.layer.0.",
    projections: &[
        ("attention.self.query", &[LoraTarget::Query]),
        ("attention.self.key", &[LoraTarget::Key]),
        ("attention.self.value", &[LoraTarget::Value]),
        ("attention.output.dense", &[LoraTarget::AttentionOutput]),
        ("intermediate.dense", &[LoraTarget::Intermediate]),
        ("output.dense", &[LoraTarget::Output]),
    ],
    prefix: "bert.",
    layers: ("layer.0.", "layer.11."),
    others: &["pooler.dense", "classifier"],
    fan_in_fan_out: false,
    default_targets: &["query", "value"],
};

// transformers/models/openai/modeling_openai.py: OpenAIGPTModel (query, key and value are one
// Conv1D; peft has no default for openai-gpt and uses gpt2's, c_attn)
const GPT: Layout = Layout {
    block: "h.0.",
    projections: &crate::gpt::GPT_LORA_PROJECTIONS,
    prefix: "transformer.",
    layers: ("h.0.", "h.11."),
    others: &["lm_head", "multiple_choice_head.summary"],
    fan_in_fan_out: true,
    default_targets: &["c_attn"],
};

// peft/tuners/lora/config.py: LoraConfig (the keys read; the rest must be at their defaults)
#[derive(Deserialize)]
struct PeftLoraFile {
    peft_type: String,
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    lora_dropout: f64,
    target_modules: Option<Value>,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default = "none")]
    bias: String,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    layers_to_transform: Option<Value>,
    #[serde(default)]
    rank_pattern: Option<Value>,
    #[serde(default)]
    alpha_pattern: Option<Value>,
    #[serde(default)]
    modules_to_save: Option<Value>,
}

fn none() -> String {
    "none".to_owned()
}

/// Whether `peft` would adapt the module `name`: an entry of a list matches the name or its
/// last dotted parts; a string is a regular expression the whole name must match.
// peft/tuners/tuners_utils.py: check_target_module_exists
fn selects(targets: &Value, name: &str) -> Result<bool, String> {
    match targets {
        Value::String(pattern) => {
            let re = Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| format!("target_modules is not a regular expression: {e}"))?;
            Ok(re.is_match(name))
        }
        Value::Array(entries) => Ok(entries.iter().any(|e| {
            e.as_str()
                .is_some_and(|t| name == t || name.ends_with(&format!(".{t}")))
        })),
        other => Err(format!(
            "target_modules is neither a list nor a string: {other}"
        )),
    }
}

/// The LoRA configuration of a `peft` directory's `adapter_config.json`, for an encoder of the
/// family `kind` (BERT or GPT).
///
/// Refused, naming the key: another `peft_type`; `fan_in_fan_out` on BERT, `use_dora`, a
/// `bias` other than `"none"`, per-layer (`layers_to_transform`) or per-module ranks
/// (`rank_pattern`, `alpha_pattern`), `modules_to_save`; targets that select some of a
/// projection kind's layers only, or modules other than the family's projections.
pub fn lora_config_from_peft(dir: &Path, kind: EncoderKind) -> Result<LoraConfig, ModelError> {
    let path = dir.join(PEFT_CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    let file: PeftLoraFile = serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.clone(),
        source,
    })?;
    let refuse = |message: String| ModelError::UnsupportedConfig {
        path: path.clone(),
        message,
    };
    let layout = match kind {
        EncoderKind::Bert => &BERT,
        EncoderKind::Gpt => &GPT,
        other => return Err(refuse(format!("LoRA is not implemented for {other}"))),
    };
    if file.peft_type != "LORA" {
        return Err(refuse(format!(
            "peft_type {:?}: only LORA directories are read",
            file.peft_type
        )));
    }
    let set = |v: &Option<Value>| {
        v.as_ref()
            .is_some_and(|v| !v.is_null() && v != &Value::Object(Default::default()))
    };
    for (key, unsupported) in [
        // peft sets it for Conv1D projections by itself, and refuses it on Linear ones.
        (
            "fan_in_fan_out",
            file.fan_in_fan_out && !layout.fan_in_fan_out,
        ),
        ("use_dora", file.use_dora),
        ("bias", file.bias != "none"),
        ("layers_to_transform", set(&file.layers_to_transform)),
        ("rank_pattern", set(&file.rank_pattern)),
        ("alpha_pattern", set(&file.alpha_pattern)),
        ("modules_to_save", set(&file.modules_to_save)),
    ] {
        if unsupported {
            return Err(refuse(format!("{key} is set: not implemented for {kind}")));
        }
    }
    let targets = file.target_modules.unwrap_or_else(|| {
        Value::Array(
            layout
                .default_targets
                .iter()
                .map(|t| Value::from(*t))
                .collect(),
        )
    });
    let chosen = |name: &str| -> Result<bool, String> {
        Ok(selects(&targets, name)? || selects(&targets, &format!("{}{name}", layout.prefix))?)
    };
    let mut target_modules = Vec::new();
    for (projection, these) in layout.projections {
        let name = format!("{}{projection}", layout.block);
        let last_layer = name.replace(layout.layers.0, layout.layers.1);
        let (first, last) = (
            chosen(&name).map_err(&refuse)?,
            chosen(&last_layer).map_err(&refuse)?,
        );
        if first != last {
            return Err(refuse(format!(
                "target_modules selects {name} but not {last_layer} (or the reverse): LoRA on some \
                 layers only is not implemented"
            )));
        }
        if first {
            target_modules.extend_from_slice(these);
        }
    }
    for other in layout.others {
        if chosen(other).map_err(&refuse)? {
            return Err(refuse(format!(
                "target_modules selects {other}: LoRA on {kind}'s {other} is not implemented"
            )));
        }
    }
    let config = LoraConfig {
        r: file.r,
        alpha: file.lora_alpha,
        dropout: file.lora_dropout,
        target_modules,
        use_rslora: file.use_rslora,
    };
    config.validate().map_err(refuse)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(json: &str) -> (tempfile::TempDir, Result<LoraConfig, ModelError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PEFT_CONFIG_FILE), json).unwrap();
        let config = lora_config_from_peft(dir.path(), EncoderKind::Bert);
        (dir, config)
    }

    #[test]
    fn lists_and_patterns_select_as_peft_does() {
        let (_d, c) = write(
            r#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["query", "value"]}"#,
        );
        assert_eq!(
            c.unwrap().target_modules,
            vec![LoraTarget::Query, LoraTarget::Value]
        );
        let (_d, c) = write(
            r#"{"peft_type": "LORA", "r": 2, "lora_alpha": 6, "use_rslora": true,
                "target_modules": ".*encoder\\.layer\\.\\d+\\.(attention\\.output\\.dense|intermediate\\.dense)"}"#,
        );
        let c = c.unwrap();
        assert_eq!(
            c.target_modules,
            vec![LoraTarget::AttentionOutput, LoraTarget::Intermediate]
        );
        assert!(c.use_rslora);
    }

    #[test]
    fn gpt_names_select_its_conv1d_projections() {
        let dir = tempfile::tempdir().unwrap();
        let read = |json: &str| {
            std::fs::write(dir.path().join(PEFT_CONFIG_FILE), json).unwrap();
            lora_config_from_peft(dir.path(), EncoderKind::Gpt)
        };
        let all = read(
            r#"{"peft_type": "LORA", "r": 2, "lora_alpha": 6, "fan_in_fan_out": true,
                "target_modules": ["c_attn", "c_proj", "c_fc"]}"#,
        )
        .unwrap();
        assert_eq!(all.target_modules, LoraTarget::ALL.to_vec());
        let mlp = read(
            r#"{"peft_type": "LORA", "r": 2, "lora_alpha": 6, "target_modules": ["mlp.c_proj"]}"#,
        )
        .unwrap();
        assert_eq!(mlp.target_modules, vec![LoraTarget::Output]);
        let default = read(r#"{"peft_type": "LORA", "r": 2, "lora_alpha": 6}"#).unwrap();
        assert_eq!(
            default.target_modules,
            vec![LoraTarget::Query, LoraTarget::Key, LoraTarget::Value]
        );
        let err = read(
            r#"{"peft_type": "LORA", "r": 2, "lora_alpha": 6, "target_modules": ["lm_head"]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("lm_head"), "{err}");
        let (_d, bert) =
            write(r#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "fan_in_fan_out": true}"#);
        assert!(bert.unwrap_err().to_string().contains("fan_in_fan_out"));
    }

    #[test]
    fn what_stilts_lacks_is_refused_by_key() {
        for (json, key) in [
            (
                r#"{"peft_type": "IA3", "r": 1, "lora_alpha": 1}"#,
                "peft_type",
            ),
            (
                r#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_dora": true}"#,
                "use_dora",
            ),
            (
                r#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "modules_to_save": ["classifier"]}"#,
                "modules_to_save",
            ),
            (
                r#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["dense"]}"#,
                "pooler.dense",
            ),
            (
                r#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": "encoder\\.layer\\.0\\.attention\\.self\\.query"}"#,
                "some layers only",
            ),
        ] {
            let (_d, c) = write(json);
            let message = c.unwrap_err().to_string();
            assert!(message.contains(key), "{json}: {message}");
        }
    }
}
