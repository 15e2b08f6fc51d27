//! A phase's parameter-efficient modules saved on their own: only what trained (LoRA updates,
//! adapters, the LayerNorms when the adapters trained them, the heads), so a task costs a few
//! hundred kilobytes beside one shared encoder, as AdapterHub and `peft` keep them. The file
//! names the encoder it belongs to and the SHA-256 of the base weights it was trained on;
//! attaching it to any other base is an error naming both hashes.
//!
//! ```text
//! stilts-adapter.json   format_version, the encoder ("encoder": "bert", "config": {...}),
//!                       base_weights_sha256, the modules' configuration (peft), the heads and
//!                       the max_seq_len the run used
//! adapter.safetensors   the tensors, by their stilts parameter paths (burn layout)
//! manifest.json         size and SHA-256 of each file
//! ```

use std::path::{Path, PathBuf};

use burn::store::{KeyRemapper, ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use stilts_io::fs::replace_dir;
use stilts_models::EncoderConfig;
use stilts_models::bert::beside_base;
use stilts_models::peft::{BottleneckConfig, FusedAdapters, PeftConfig};
use stilts_models::peft::{PEFT_CONFIG_FILE, lora_config_from_peft};

use super::store::{param_paths, weights_sha256_where};
use super::{Carried, HeadInfo, TaskHead};
use crate::config::recipe::FusionRecipe;
use crate::error::{Result, TrainError};
use crate::results::write_json;

/// Metadata file of a module directory.
pub const ADAPTER_META_FILE: &str = "stilts-adapter.json";
/// Tensor file of a module directory.
pub const ADAPTER_WEIGHTS_FILE: &str = "adapter.safetensors";
/// The format this version writes.
pub const ADAPTER_FORMAT_VERSION: u32 = 1;

/// The module directory of a run (beside `model/`).
pub fn adapter_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("adapter")
}

/// Metadata of a module directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterMeta {
    /// [`ADAPTER_FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The encoder the modules belong to.
    #[serde(flatten)]
    pub encoder: EncoderConfig,
    /// SHA-256 of the base encoder's weights that the file does not hold (see
    /// [`base_weights_sha256`]).
    pub base_weights_sha256: String,
    /// The modules.
    pub peft: PeftConfig,
    /// Encoder parameter groups that trained beside the modules (held in the file too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules_to_save: Vec<String>,
    /// One entry per head, in head order.
    pub heads: Vec<HeadInfo>,
    /// The longest input the run trained with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seq_len: Option<usize>,
}

/// Whether a parameter path of a [`super::TaskModel`] trains with `peft` and the encoder
/// groups `groups` (and so is saved in the module file): the modules, the layers' LayerNorms
/// when the adapters train them, the groups, and the heads.
pub fn is_module_param(path: &str, peft: &PeftConfig, groups: &[String]) -> bool {
    path.starts_with("heads.") || beside_base(path, peft, groups)
}

/// SHA-256 of the encoder's parameters that a module file of `peft` and `groups` does not
/// hold: equal for the base encoder and for the encoder after a phase that trained only those.
pub fn base_weights_sha256(carried: &Carried, peft: &PeftConfig, groups: &[String]) -> String {
    weights_sha256_where(&carried.model, |path| {
        path.starts_with("encoder.") && !is_module_param(path, peft, groups)
    })
}

/// Writes the modules of a model trained with them (and the encoder groups `groups` that
/// trained beside them) into `dir` atomically.
pub fn save_adapter(carried: &Carried, dir: &Path, groups: &[String]) -> Result<()> {
    let peft = &carried.meta.peft;
    let meta = AdapterMeta {
        format_version: ADAPTER_FORMAT_VERSION,
        encoder: carried.meta.encoder.clone(),
        base_weights_sha256: base_weights_sha256(carried, peft, groups),
        peft: peft.clone(),
        modules_to_save: groups.to_vec(),
        heads: carried.meta.heads.clone(),
        max_seq_len: carried.meta.max_seq_len,
    };
    replace_dir(dir, |tmp| {
        write_json(&tmp.join(ADAPTER_META_FILE), &meta)?;
        let path = tmp.join(ADAPTER_WEIGHTS_FILE);
        let held = param_paths(&carried.model, |p| is_module_param(p, peft, groups));
        let mut store = SafetensorsStore::from_file(&path)
            .with_full_paths(held)
            .overwrite(true);
        carried
            .model
            .save_into(&mut store)
            .map_err(|e| TrainError::store("save the modules to", &path, e))?;
        Ok(stilts_io::fs::write_manifest(
            tmp,
            &[
                ADAPTER_META_FILE.to_owned(),
                ADAPTER_WEIGHTS_FILE.to_owned(),
            ],
        )?)
    })
}

/// Reads a module directory's metadata (its files checked against the manifest first).
pub fn read_adapter_meta(dir: &Path) -> Result<AdapterMeta> {
    stilts_io::fs::verify_manifest(dir).map_err(|message| TrainError::Damaged {
        path: dir.to_path_buf(),
        message,
    })?;
    let path = dir.join(ADAPTER_META_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    let meta: AdapterMeta = serde_json::from_str(&text).map_err(|e| TrainError::json(&path, e))?;
    if meta.format_version > ADAPTER_FORMAT_VERSION {
        return Err(TrainError::Checkpoint {
            path,
            message: format!(
                "format {} was written by a newer stilts (this one reads up to {ADAPTER_FORMAT_VERSION})",
                meta.format_version
            ),
        });
    }
    Ok(meta)
}

/// The weights file Hugging Face `peft` writes beside [`PEFT_CONFIG_FILE`].
pub const PEFT_WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// Whether `dir` was written by Hugging Face `peft` (an `adapter_config.json`, no stilts
/// metadata).
pub fn is_peft_dir(dir: &Path) -> bool {
    !dir.join(ADAPTER_META_FILE).is_file() && dir.join(PEFT_CONFIG_FILE).is_file()
}

/// `base` with the LoRA of a Hugging Face `peft` directory (BERT or GPT): the configuration from its
/// `adapter_config.json` ([`lora_config_from_peft`]), the weights from
/// `adapter_model.safetensors`; `base` keeps its heads. `peft` records only the base's name,
/// not its weights, so the base cannot be checked as a stilts module directory's is: a
/// warning names what `peft` recorded.
pub fn attach_peft_dir(base: Carried, dir: &Path, device: &Device) -> Result<Carried> {
    let refuse = |message: String| TrainError::Checkpoint {
        path: dir.to_path_buf(),
        message,
    };
    if !base.meta.peft.is_empty() {
        return Err(refuse(
            "the base model already carries LoRA or adapters; attach modules to a plain encoder"
                .into(),
        ));
    }
    let lora = lora_config_from_peft(dir, base.meta.encoder.kind())?;
    let peft = PeftConfig {
        lora: Some(lora),
        ..PeftConfig::default()
    };
    let mut carried = base.with_peft(&peft, device).map_err(refuse)?;
    carried
        .model
        .encoder
        .load_peft_weights(&dir.join(PEFT_WEIGHTS_FILE))?;
    let recorded = std::fs::read_to_string(dir.join(PEFT_CONFIG_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["base_model_name_or_path"].as_str().map(str::to_owned))
        .unwrap_or_default();
    tracing::warn!(
        adapter = %dir.display(),
        recorded_base = %recorded,
        "a peft directory does not record its base's weights: make sure this base is the one it was trained on"
    );
    Ok(carried)
}

/// `base` (its encoder; its heads are dropped) with the modules and heads of the module
/// directory `dir`. The base must be the encoder the modules were trained on: same
/// configuration, same weights where the file holds none. A Hugging Face `peft` directory
/// goes to [`attach_peft_dir`].
pub fn attach_adapter(base: Carried, dir: &Path, device: &Device) -> Result<Carried> {
    if is_peft_dir(dir) {
        return attach_peft_dir(base, dir, device);
    }
    let meta = read_adapter_meta(dir)?;
    let refuse = |message: String| TrainError::Checkpoint {
        path: dir.to_path_buf(),
        message,
    };
    if !same_architecture(&base.meta.encoder, &meta.encoder) {
        return Err(refuse(format!(
            "the modules belong to a {} encoder configured as {}, not to this {} base ({})",
            meta.encoder.kind(),
            serde_json::to_string(&meta.encoder).unwrap_or_default(),
            base.meta.encoder.kind(),
            serde_json::to_string(&base.meta.encoder).unwrap_or_default(),
        )));
    }
    if !base.meta.peft.is_empty() {
        return Err(refuse(
            "the base model already carries LoRA or adapters; attach modules to a plain encoder"
                .into(),
        ));
    }
    let have = base_weights_sha256(&base, &meta.peft, &meta.modules_to_save);
    if have != meta.base_weights_sha256 {
        return Err(refuse(format!(
            "the modules were trained on base weights with SHA-256 {}, and this base's are {have}: \
             attach them to the encoder they were trained on",
            meta.base_weights_sha256
        )));
    }
    let mut carried = base.with_peft(&meta.peft, device).map_err(refuse)?;
    let hidden = meta.encoder.hidden_size();
    let std = meta.encoder.initializer_range();
    carried.model.heads = meta
        .heads
        .iter()
        .map(|h| TaskHead::new(h, hidden, std, device))
        .collect();
    carried.meta.heads = meta.heads.clone();
    carried.meta.max_seq_len = meta.max_seq_len;
    let path = dir.join(ADAPTER_WEIGHTS_FILE);
    let mut store = SafetensorsStore::from_file(&path).allow_partial(true);
    let result = carried
        .model
        .load_from(&mut store)
        .map_err(|e| TrainError::store("load the modules from", &path, e))?;
    let missing: Vec<&String> = result
        .missing
        .iter()
        .map(|m| &m.0)
        .filter(|p| is_module_param(p, &meta.peft, &meta.modules_to_save))
        .collect();
    if !missing.is_empty() || !result.errors.is_empty() || !result.unused.is_empty() {
        return Err(refuse(format!(
            "{ADAPTER_WEIGHTS_FILE} does not match its metadata: missing {missing:?}, unused {:?}, \
             errors {:?}",
            result.unused,
            messages(&result.errors)
        )));
    }
    Ok(carried)
}

/// The model with its LoRA updates folded into the encoder's weights (`peft`'s
/// `merge_and_unload`): the same function without the extra products. Adapters stay (they
/// are not linear).
pub fn merge_lora(mut carried: Carried) -> Carried {
    carried.model.encoder = carried.model.encoder.merge_lora();
    carried.meta.peft.lora = None;
    carried
}

/// Whether two encoder configurations describe the same function, dropout aside (a run may
/// have trained with another dropout than the base's file says).
fn same_architecture(a: &EncoderConfig, b: &EncoderConfig) -> bool {
    let strip = |c: &EncoderConfig| {
        let mut v = serde_json::to_value(c).unwrap_or_default();
        if let Some(config) = v.get_mut("config").and_then(|c| c.as_object_mut()) {
            config.retain(|k, _| !k.contains("dropout"));
        }
        v
    };
    strip(a) == strip(b)
}

/// The fusion a recipe's `fusion` table asks for, its adapters' configuration read from their
/// module directories: each must hold adapters alone (no LoRA, no fusion), trained with the
/// encoder's LayerNorms frozen, all of one configuration. The error names the directory.
pub fn fusion_of(recipe: &FusionRecipe) -> std::result::Result<FusedAdapters, String> {
    let mut adapter: Option<BottleneckConfig> = None;
    for dir in &recipe.adapters {
        let meta = read_adapter_meta(Path::new(dir)).map_err(|e| format!("{dir}: {e}"))?;
        let this = match (&meta.peft.adapter, &meta.peft.lora, &meta.peft.fusion) {
            (Some(a), None, None) => a.clone(),
            _ => {
                return Err(format!(
                    "{dir} holds {}, not adapters alone",
                    serde_json::to_string(&meta.peft).unwrap_or_default()
                ));
            }
        };
        if !meta.modules_to_save.is_empty() {
            return Err(format!(
                "{dir}: its run also trained the encoder's {}, so its adapters cannot share one \
                 encoder with others; train them without modules_to_save",
                meta.modules_to_save.join(", ")
            ));
        }
        if this.train_layer_norms {
            return Err(format!(
                "{dir}: its adapters trained the encoder's LayerNorms, so they cannot share one \
                 encoder with others; train them with adapter.train_layer_norms = false"
            ));
        }
        match &adapter {
            Some(first) if *first != this => {
                return Err(format!(
                    "{dir}: its adapters are configured as {}, the first directory's as {}; \
                     fused adapters share one configuration",
                    serde_json::to_string(&this).unwrap_or_default(),
                    serde_json::to_string(first).unwrap_or_default()
                ));
            }
            _ => adapter = Some(this),
        }
    }
    let adapter = adapter.ok_or("fusion.adapters is empty")?;
    Ok(FusedAdapters {
        adapter,
        fusion: recipe.fusion.clone(),
    })
}

/// Fills the fused adapters of `carried` (freshly added for `recipe`) with the weights of
/// their module directories, each checked to belong to this base encoder.
pub fn load_fused(mut carried: Carried, recipe: &FusionRecipe) -> Result<Carried> {
    // Every directory holds adapters alone, of one configuration, without encoder groups
    // ([`fusion_of`]): one hash of the base serves them all.
    let mut have: Option<String> = None;
    for (i, dir) in recipe.adapters.iter().enumerate() {
        let dir = Path::new(dir);
        let meta = read_adapter_meta(dir)?;
        let have = have.get_or_insert_with(|| base_weights_sha256(&carried, &meta.peft, &[]));
        if *have != meta.base_weights_sha256 {
            return Err(TrainError::Checkpoint {
                path: dir.to_path_buf(),
                message: format!(
                    "the adapters were trained on base weights with SHA-256 {}, and this phase's \
                     encoder has {have}: fuse adapters trained on the encoder the phase starts from",
                    meta.base_weights_sha256
                ),
            });
        }
        let path = dir.join(ADAPTER_WEIGHTS_FILE);
        let slot = format!(".fused.{i}.");
        let expected = param_paths(&carried.model, |p| p.contains(&slot));
        let mut store = SafetensorsStore::from_file(&path)
            .with_regex(slot.replace('.', r"\."))
            .remap(
                KeyRemapper::new()
                    .add_pattern(r"\.adapter\.", slot.as_str())
                    .map_err(|e| TrainError::store("read the adapters of", &path, e))?,
            )
            .allow_partial(true);
        let result = carried
            .model
            .load_from(&mut store)
            .map_err(|e| TrainError::store("load the adapters from", &path, e))?;
        if result.applied.len() != expected.len() || !result.errors.is_empty() {
            return Err(TrainError::Checkpoint {
                path,
                message: format!(
                    "filled {} of the {} tensors of fused adapter {i} (errors {:?})",
                    result.applied.len(),
                    expected.len(),
                    messages(&result.errors)
                ),
            });
        }
    }
    Ok(carried)
}

/// A store's errors as messages.
fn messages(errors: &[impl ToString]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}
