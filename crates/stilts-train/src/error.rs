//! Errors of the training engine. Every variant names the file (and key) it concerns where
//! there is one.

use std::path::PathBuf;

use stilts_data::DataError;
use stilts_data::metrics::MetricError;
use stilts_data::sample::SampleError;
use stilts_data::tokenize::TokenizeError;
use stilts_models::ModelError;

/// Everything that can go wrong while configuring or running training.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The device asked for cannot be opened.
    #[error("device `{device}` is not usable")]
    Device {
        /// The device, as written (`cuda:0`).
        device: String,
        /// The backend's error.
        #[source]
        source: Box<stilts_models::device::DeviceError>,
    },
    /// The experiment file is not valid TOML or has unknown keys / wrong types.
    #[error("{}: {source}", path.display())]
    Toml {
        /// The experiment file.
        path: PathBuf,
        /// The parser's error (names the key and line).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A value is invalid or values contradict each other.
    #[error("{}: `{key}`: {message}", path.display())]
    Config {
        /// The experiment file (or `<flags>` for command-line phases).
        path: PathBuf,
        /// The dotted key, e.g. `phases[1].head`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value names something that cannot be read (a task file, a model directory); the cause
    /// is the source.
    #[error("{}: `{key}`: {what}", path.display())]
    ConfigCause {
        /// The experiment file (or `<flags>`).
        path: PathBuf,
        /// The dotted key.
        key: String,
        /// What could not be read.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `model.pretrained` names a hub model that cannot be fetched (or, offline, is not cached).
    #[error("{}: `model.pretrained`: cannot get {model} from the hub", path.display())]
    Hub {
        /// The experiment file.
        path: PathBuf,
        /// The hub id as written.
        model: String,
        /// What failed (names the URL or the cache folder).
        #[source]
        source: Box<stilts_models::hub::HubError>,
    },
    /// A file could not be read or written.
    #[error("cannot access {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file or directory could not be written atomically.
    #[error(transparent)]
    Fs(#[from] stilts_io::fs::FsError),
    /// A JSON file could not be read or written.
    #[error("invalid JSON in {}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// Loading task data failed.
    #[error("task {task}: cannot load data")]
    Data {
        /// The task.
        task: String,
        /// The underlying error.
        #[source]
        source: Box<DataError>,
    },
    /// A built-in task no data root holds could not be downloaded into the stilts cache.
    #[error("task {task}: cannot download it into {}", root.display())]
    Download {
        /// The task.
        task: String,
        /// The data root it was downloaded into.
        root: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<DataError>,
    },
    /// Downsampling failed.
    #[error("task {task}: cannot downsample")]
    Sample {
        /// The task.
        task: String,
        /// The underlying error.
        #[source]
        source: Box<SampleError>,
    },
    /// Tokenization failed.
    #[error("tokenizer")]
    Tokenize(#[source] Box<TokenizeError>),
    /// Building, loading or saving a model failed.
    #[error("model")]
    Model(#[source] Box<ModelError>),
    /// A metric could not be computed.
    #[error("task {task}: metric")]
    Metric {
        /// The task.
        task: String,
        /// The underlying error.
        #[source]
        source: MetricError,
    },
    /// burn could not write or read tensors (weights, optimizer state).
    #[error("cannot {action} {}", path.display())]
    Store {
        /// `save the weights to`, `load the optimizer state from`, ...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// burn's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A saved model directory whose files do not match its manifest.
    #[error("{}: the saved model is damaged and not used: {message}", path.display())]
    Damaged {
        /// The model directory.
        path: PathBuf,
        /// The file that does not match, and how.
        message: String,
    },
    /// A checkpoint or saved model is not what this run can use.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Another process is running an experiment in this output directory.
    #[error("{} is in use by another stilts run{}; wait for it to finish or use another output_dir",
        dir.display(), stilts_io::lock::holder_text(*holder))]
    Locked {
        /// The output directory.
        dir: PathBuf,
        /// The holder's process id, when its lock file names one.
        holder: Option<u32>,
    },
    /// A run's curves could not be drawn.
    #[error("cannot draw {}: {message}", path.display())]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// plotters' error.
        message: String,
    },
    /// The head policy cannot be applied to the previous phase's model.
    #[error("phase {phase}: head policy: {message}")]
    Head {
        /// The phase name.
        phase: String,
        /// What does not match.
        message: String,
    },
    /// Training diverged (non-finite loss).
    #[error("phase {phase}, seed {seed}: loss became {loss} at step {step}")]
    Diverged {
        /// The phase name.
        phase: String,
        /// The restart seed.
        seed: u64,
        /// The optimizer step.
        step: u64,
        /// The loss value.
        loss: f32,
    },
}

impl From<ModelError> for TrainError {
    fn from(e: ModelError) -> Self {
        TrainError::Model(Box::new(e))
    }
}

impl From<TokenizeError> for TrainError {
    fn from(e: TokenizeError) -> Self {
        TrainError::Tokenize(Box::new(e))
    }
}

impl From<stilts_schema::SchemaError> for TrainError {
    fn from(e: stilts_schema::SchemaError) -> Self {
        use stilts_schema::SchemaError;
        match e {
            SchemaError::Io { path, source } => TrainError::Io { path, source },
            SchemaError::Toml { path, source } => TrainError::Toml { path, source },
            SchemaError::Json { path, source } => TrainError::Json { path, source },
            SchemaError::Override { path, key, message } => {
                TrainError::config(path, format!("--set {key}"), message)
            }
            other => TrainError::config(PathBuf::new(), "", other.to_string()),
        }
    }
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(path: impl Into<PathBuf>, source: serde_json::Error) -> Self {
        TrainError::Json {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config_cause(
        path: impl Into<PathBuf>,
        key: impl Into<String>,
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TrainError::ConfigCause {
            path: path.into(),
            key: key.into(),
            what: what.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn store(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TrainError::Store {
            action,
            path: path.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn config(
        path: impl Into<PathBuf>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        TrainError::Config {
            path: path.into(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Result with [`TrainError`].
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
