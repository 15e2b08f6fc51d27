use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use burn::module::Module;
use burn::store::{
    ApplyResult, KeyRemapper, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore,
};
use regex::Regex;

use crate::ModelError;

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

static KEY_MAP: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    BERT_KEY_MAP
        .iter()
        .map(|(pattern, path)| (Regex::new(pattern).expect("BERT_KEY_MAP pattern"), *path))
        .collect()
});

static IGNORED: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    BERT_IGNORED_KEYS
        .iter()
        .map(|pattern| Regex::new(pattern).expect("BERT_IGNORED_KEYS pattern"))
        .collect()
});

/// Maps a Hugging Face checkpoint key to our module path through [`BERT_KEY_MAP`]
/// (paths relative to [`BertModel`](super::BertModel), `classifier.*` for the head).
pub fn map_hf_key(key: &str) -> Option<String> {
    KEY_MAP
        .iter()
        .find(|(re, _)| re.is_match(key))
        .map(|(re, path)| re.replace(key, *path).into_owned())
}

fn is_ignored(key: &str) -> bool {
    IGNORED.iter().any(|re| re.is_match(key))
}

/// What loading a checkpoint did, key by key.
///
/// A load succeeds only when `missing`, `unused` and `errors` are all empty; otherwise the
/// report travels in [`ModelError::Mismatch`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Module paths that received a tensor from the checkpoint.
    pub loaded: Vec<String>,
    /// Module paths absent from the checkpoint but allowed to be: a task head (`classifier.*`)
    /// or a pooler the checkpoint does not have. They keep their fresh initialisation.
    pub initialized: Vec<String>,
    /// Module paths absent from the checkpoint that must be there.
    pub missing: Vec<String>,
    /// Checkpoint keys that match no module path.
    pub unused: Vec<String>,
    /// Checkpoint keys skipped on purpose (see [`BERT_IGNORED_KEYS`]; a `classifier.*` head when
    /// loading an encoder alone).
    pub ignored: Vec<String>,
    /// Tensors found but unusable (wrong shape or dtype), one message each.
    pub errors: Vec<String>,
}

impl LoadReport {
    /// Whether the checkpoint matched the model.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.unused.is_empty() && self.errors.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} loaded, {} initialised fresh, {} ignored",
            self.loaded.len(),
            self.initialized.len(),
            self.ignored.len()
        )?;
        for (what, list) in [
            ("missing", &self.missing),
            ("unused", &self.unused),
            ("errors", &self.errors),
        ] {
            if !list.is_empty() {
                write!(f, "; {} {what}: {}", list.len(), list.join(", "))?;
            }
        }
        Ok(())
    }
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

/// The weights file of a Hugging Face model directory: `model.safetensors`, else
/// `pytorch_model.bin`.
pub fn weights_file(dir: &Path) -> Result<PathBuf, ModelError> {
    ["model.safetensors", "pytorch_model.bin"]
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| ModelError::NoWeights {
            dir: dir.to_path_buf(),
        })
}

/// Loads a Hugging Face BERT checkpoint (`.safetensors`, or a PyTorch pickle otherwise) into
/// `module`, checking every key against [`BERT_KEY_MAP`].
pub(crate) fn load_hf_weights<M: Module>(
    module: &mut M,
    path: &Path,
    target: Target,
) -> Result<LoadReport, ModelError> {
    let safetensors = path.extension().is_some_and(|ext| ext == "safetensors");
    let keys = if safetensors {
        safetensors_keys(path)?
    } else {
        let mut store = PytorchStore::from_file(path);
        store.keys().map_err(|source| ModelError::Pytorch {
            path: path.to_path_buf(),
            source,
        })?
    };

    let mut report = LoadReport::default();
    let mut renames: BTreeMap<String, String> = BTreeMap::new();
    for key in keys {
        match map_hf_key(&key) {
            Some(relative) => match target.path(relative) {
                Some(ours) => {
                    renames.insert(key, ours);
                }
                None => report.ignored.push(key),
            },
            None if is_ignored(&key) => report.ignored.push(key),
            None => report.unused.push(key),
        }
    }
    let mut targets = BTreeSet::new();
    if let Some((hf, ours)) = renames
        .iter()
        .find(|(_, ours)| !targets.insert(ours.as_str()))
    {
        report.errors.push(format!(
            "{hf} maps to {ours}, which another key also maps to"
        ));
    }
    let patterns = renames
        .iter()
        .map(|(hf, ours)| (format!("^{}$", regex::escape(hf)), ours.clone()))
        .collect::<Vec<_>>();
    let remapper = KeyRemapper::from_patterns(patterns).map_err(|e| ModelError::Header {
        path: path.to_path_buf(),
        message: format!("key cannot be matched: {e}"),
    })?;

    let result: ApplyResult = if safetensors {
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .remap(remapper)
            .allow_partial(true)
            .validate(false);
        module
            .load_from(&mut store)
            .map_err(|source| ModelError::Safetensors {
                path: path.to_path_buf(),
                source,
            })?
    } else {
        let mut store = PytorchStore::from_file(path)
            .remap(remapper)
            .allow_partial(true)
            .validate(false);
        module
            .load_from(&mut store)
            .map_err(|source| ModelError::Pytorch {
                path: path.to_path_buf(),
                source,
            })?
    };

    let originals: BTreeMap<&str, &str> = renames
        .iter()
        .map(|(hf, ours)| (ours.as_str(), hf.as_str()))
        .collect();
    let has_head = targets.iter().any(|p| p.starts_with("classifier."));
    let has_pooler = targets
        .iter()
        .any(|p| p.starts_with(target.pooler_prefix()));
    report.loaded = result.applied.clone();
    for (path, _) in &result.missing {
        let fresh = (path.starts_with("classifier.") && !has_head)
            || (path.starts_with(target.pooler_prefix()) && !has_pooler);
        if fresh {
            report.initialized.push(path.clone());
        } else {
            report.missing.push(path.clone());
        }
    }
    for ours in &result.unused {
        let hf = originals.get(ours.as_str()).copied().unwrap_or(ours);
        if !report.ignored.iter().any(|key| key == hf) && !report.unused.iter().any(|k| k == hf) {
            report.unused.push(hf.to_owned());
        }
    }
    report
        .errors
        .extend(result.errors.iter().map(ToString::to_string));
    report.unused.sort();
    report.ignored.sort();
    if report.is_ok() {
        Ok(report)
    } else {
        Err(ModelError::Mismatch {
            path: path.to_path_buf(),
            report: Box::new(report),
        })
    }
}

/// The tensor names in a safetensors header, without reading the tensors.
fn safetensors_keys(path: &Path) -> Result<Vec<String>, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let header_error = |message: String| ModelError::Header {
        path: path.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes)
        .map_err(|e| header_error(format!("cannot read the header length: {e}")))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > file_len.saturating_sub(8) || header_len > 100_000_000 {
        return Err(header_error(format!(
            "header length {header_len} does not fit a file of {file_len} bytes"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|e| header_error(format!("cannot read the header: {e}")))?;
    let entries: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|source| ModelError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(entries
        .into_keys()
        .filter(|key| key != "__metadata__")
        .collect())
}
