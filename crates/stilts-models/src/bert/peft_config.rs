//! A LoRA directory saved by Hugging Face `peft` (`adapter_config.json`) read as a
//! [`LoraConfig`] for BERT: which of BERT's projections its `target_modules` select, by `peft`'s
//! own matching rule over BERT's module names, and every setting stilts does not implement
//! refused by name.

use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::ModelError;
use crate::peft::{LoraConfig, LoraTarget};

/// The file `peft`'s `save_pretrained` writes beside `adapter_model.safetensors`.
pub const PEFT_CONFIG_FILE: &str = "adapter_config.json";

/// The module names of one Hugging Face BERT layer's projections (`BertModel`'s; a
/// `BertFor*` model prefixes them with `bert.`), with the target each is.
const BERT_PROJECTIONS: [(&str, LoraTarget); 6] = [
    ("encoder.layer.0.attention.self.query", LoraTarget::Query),
    ("encoder.layer.0.attention.self.key", LoraTarget::Key),
    ("encoder.layer.0.attention.self.value", LoraTarget::Value),
    (
        "encoder.layer.0.attention.output.dense",
        LoraTarget::AttentionOutput,
    ),
    (
        "encoder.layer.0.intermediate.dense",
        LoraTarget::Intermediate,
    ),
    ("encoder.layer.0.output.dense", LoraTarget::Output),
];

/// Other BERT modules a `target_modules` entry could also select (LoRA on them is not
/// implemented).
const OTHER_LINEAR_MODULES: [&str; 2] = ["pooler.dense", "classifier"];

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

/// The LoRA configuration of a `peft` directory's `adapter_config.json`, for BERT.
///
/// Refused, naming the key: another `peft_type`; `fan_in_fan_out`, `use_dora`, a `bias` other
/// than `"none"`, per-layer (`layers_to_transform`) or per-module ranks (`rank_pattern`,
/// `alpha_pattern`), `modules_to_save`; targets that select some of a projection kind's
/// layers only, or modules other than the six projections.
pub fn lora_config_from_peft(dir: &Path) -> Result<LoraConfig, ModelError> {
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
        ("fan_in_fan_out", file.fan_in_fan_out),
        ("use_dora", file.use_dora),
        ("bias", file.bias != "none"),
        ("layers_to_transform", set(&file.layers_to_transform)),
        ("rank_pattern", set(&file.rank_pattern)),
        ("alpha_pattern", set(&file.alpha_pattern)),
        ("modules_to_save", set(&file.modules_to_save)),
    ] {
        if unsupported {
            return Err(refuse(format!("{key} is set: not implemented for BERT")));
        }
    }
    let targets = file.target_modules.unwrap_or(Value::Array(vec![
        Value::from("query"),
        Value::from("value"),
    ]));
    let chosen = |name: &str| -> Result<bool, String> {
        Ok(selects(&targets, name)? || selects(&targets, &format!("bert.{name}"))?)
    };
    let mut target_modules = Vec::new();
    for (name, target) in BERT_PROJECTIONS {
        let last_layer = name.replace("layer.0.", "layer.11.");
        let (first, last) = (
            chosen(name).map_err(&refuse)?,
            chosen(&last_layer).map_err(&refuse)?,
        );
        if first != last {
            return Err(refuse(format!(
                "target_modules selects {name} but not {last_layer} (or the reverse): LoRA on some \
                 layers only is not implemented"
            )));
        }
        if first {
            target_modules.push(target);
        }
    }
    for other in OTHER_LINEAR_MODULES {
        if chosen(other).map_err(&refuse)? {
            return Err(refuse(format!(
                "target_modules selects {other}: LoRA on BERT's {other} is not implemented"
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
        let config = lora_config_from_peft(dir.path());
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
