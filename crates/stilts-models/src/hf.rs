//! Loading Hugging Face checkpoints (`model.safetensors`, or a PyTorch `pytorch_model.bin`) into
//! our modules, for every encoder family: each family gives its name map as data (key pattern to
//! module path) and which absent parameters may keep their fresh initialisation; the loader
//! checks every key and every shape and reports what it loaded, ignored and missed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{
    ApplyResult, KeyRemapper, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore,
};

use crate::ModelError;

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
    /// Checkpoint keys skipped on purpose (see the family's ignored keys; a `classifier.*` head when
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

/// How a family's checkpoint keys become module paths.
pub(crate) struct KeyRouting<'a> {
    /// Our module path of a checkpoint key; `None` when no pattern matches.
    pub map: &'a dyn Fn(&str) -> Option<String>,
    /// Keys skipped on purpose (buffers, pre-training heads).
    pub ignored: &'a dyn Fn(&str) -> bool,
    /// Where a mapped path goes in the module being loaded; `None` skips it (listed as ignored).
    pub route: &'a dyn Fn(String) -> Option<String>,
    /// Whether a module path absent from the checkpoint may keep its fresh initialisation, given
    /// every path the checkpoint does fill.
    pub may_be_fresh: &'a dyn Fn(&str, &BTreeSet<&str>) -> bool,
}

/// A name map kept as data (anchored regex pattern, replacement with `${n}` groups), compiled
/// once: the first pattern that matches a key gives its path.
pub(crate) struct KeyMap(Vec<(regex::Regex, &'static str)>);

impl KeyMap {
    /// Compiles `rules`; `name` says which map a bad pattern is in.
    pub(crate) fn new(rules: &[(&str, &'static str)], name: &str) -> KeyMap {
        KeyMap(
            rules
                .iter()
                .map(|(pattern, path)| {
                    let re = regex::Regex::new(pattern)
                        .unwrap_or_else(|e| panic!("{name} pattern {pattern}: {e}"));
                    (re, *path)
                })
                .collect(),
        )
    }

    /// The path of `key`, if a rule matches it.
    pub(crate) fn map(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(re, _)| re.is_match(key))
            .map(|(re, path)| re.replace(key, *path).into_owned())
    }
}

/// Loads a Hugging Face checkpoint (`.safetensors`, or a PyTorch pickle otherwise) into
/// `module`, routing every key through `routing`. PyTorch `Linear` weights are transposed and
/// LayerNorm `weight`/`bias` read as `gamma`/`beta` (burn's adapter); modules that store
/// `[in, out]` weights (GPT's `Conv1D`) are read as they are.
pub(crate) fn load_hf_checkpoint<M: Module>(
    module: &mut M,
    path: &Path,
    routing: &KeyRouting<'_>,
) -> Result<LoadReport, ModelError> {
    let safetensors = path.extension().is_some_and(|ext| ext == "safetensors");
    let keys = if safetensors {
        safetensors_keys(path)?
    } else {
        crate::pickle_guard::check_weights_file(path)?;
        let mut store = PytorchStore::from_file(path);
        store.keys().map_err(|source| ModelError::Pytorch {
            path: path.to_path_buf(),
            source,
        })?
    };

    let mut report = LoadReport::default();
    let mut renames: BTreeMap<String, String> = BTreeMap::new();
    for key in keys {
        match (routing.map)(&key) {
            Some(relative) => match (routing.route)(relative) {
                Some(ours) => {
                    renames.insert(key, ours);
                }
                None => report.ignored.push(key),
            },
            None if (routing.ignored)(&key) => report.ignored.push(key),
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
    report.loaded = result.applied.clone();
    for (path, _) in &result.missing {
        if (routing.may_be_fresh)(path, &targets) {
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
