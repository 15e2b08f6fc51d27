use std::path::PathBuf;

use crate::bert::LoadReport;

/// Everything that can go wrong while building, loading or saving a model.
///
/// Each variant names the file it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be parsed or written.
    #[error("invalid JSON in {path}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A configuration asks for something this crate does not implement, or is inconsistent.
    #[error("unsupported model configuration in {path}: {message}")]
    UnsupportedConfig {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A safetensors file is malformed or cannot be read.
    #[error("cannot read tensors from {path}")]
    Safetensors {
        /// The weights file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: burn::store::SafetensorsStoreError,
    },
    /// A PyTorch pickle names a callable a weights file does not need (or cannot be walked):
    /// refused before anything reads it.
    #[error("refusing {path}: {message}")]
    UnsafePickle {
        /// The weights file.
        path: PathBuf,
        /// The callable named, and where; or why the pickle cannot be walked.
        message: String,
    },
    /// A PyTorch pickle checkpoint cannot be read.
    #[error("cannot read tensors from {path}")]
    Pytorch {
        /// The weights file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: burn::store::PytorchStoreError,
    },
    /// A safetensors header is not what the format specifies.
    #[error("malformed safetensors header in {path}: {message}")]
    Header {
        /// The weights file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file of a model release (`.npy`, `params_shapes.json`) is not what the format says.
    #[error("invalid model file {path}: {message}")]
    Release {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A model directory has no weights file this crate can read.
    #[error("no weights in {dir}: expected model.safetensors or pytorch_model.bin")]
    NoWeights {
        /// The model directory.
        dir: PathBuf,
    },
    /// A model named by a hub id could not be resolved or downloaded.
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    /// The checkpoint's tensors do not match the model built from its configuration.
    #[error("checkpoint {path} does not match the model: {report}")]
    Mismatch {
        /// The weights file.
        path: PathBuf,
        /// Which keys were loaded, missing, unused or of the wrong shape.
        report: Box<LoadReport>,
    },
}

/// Reads and parses a JSON file (a configuration, an options file, a shapes list); errors name
/// the file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> Result<T, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        source,
    })
}
