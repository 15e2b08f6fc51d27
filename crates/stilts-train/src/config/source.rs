//! Where an experiment's starting model comes from (`[model]`), which encoder family it is, and
//! fetching a hub model before training.
//!
//! Resolution never downloads weights: a hub id stays [`ModelSource::Hub`] until
//! `fetch` (called by the engine before anything trains) brings it into the Hugging Face cache
//! and turns it into a [`ModelSource::Pretrained`] directory, so `stilts run --check` and grid
//! validation are fast. The family of a hub model is read from its `config.json` in the cache,
//! fetched alone when it is not there yet (a few kilobytes), unless `[model] encoder` names it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stilts_data::env::expand_env;
use stilts_io::files::TokenizerFiles;
use stilts_io::hub::{self, HubModel, HubOptions, ModelName};
use stilts_io::progress::{NoProgress, Progress};
use stilts_models::bert::BertConfig;
use stilts_models::elmo::{ElmoConfig, RELEASED_FILTERS};
use stilts_models::gpt::GptConfig;
use stilts_models::{EncoderConfig, EncoderKind};

use super::{Experiment, LoadMode, ModelFile};
use crate::error::{Result, TrainError};
use crate::model::store::{META_FILE, read_meta};

/// Size of a randomly initialised BERT (`[model] random` of a BERT experiment).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RandomBertFile {
    /// Width of hidden states.
    pub hidden_size: usize,
    /// Number of layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Longest sequence; default 512.
    pub max_position_embeddings: Option<usize>,
}

/// Size of a randomly initialised GPT (`[model] random` of a GPT experiment).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RandomGptFile {
    /// Width of hidden states.
    pub n_embd: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Number of attention heads.
    pub n_head: usize,
    /// Longest sequence; default 512.
    pub n_positions: Option<usize>,
}

/// Size of a randomly initialised ELMo (`[model] random` of an ELMo experiment); the other
/// settings are the small released model's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RandomElmoFile {
    /// Width of the token representation and of each LSTM's output (`lstm.projection_dim`).
    pub projection_dim: usize,
    /// Memory cells of each LSTM (`lstm.dim`).
    pub cell_size: usize,
    /// LSTM layers per direction.
    pub n_layers: usize,
    /// `[width, number]` of each character convolution; default the small model's seven.
    pub filters: Option<Vec<[usize; 2]>>,
    /// Highway layers; default 1.
    pub n_highway: Option<usize>,
    /// Width of the projection before max-pooling; default 512.
    pub pool_dim: Option<usize>,
}

/// The size of a random encoder, by family (serialized as the family's own table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RandomSize {
    /// A BERT.
    Bert(RandomBertFile),
    /// A GPT.
    Gpt(RandomGptFile),
    /// An ELMo.
    Elmo(RandomElmoFile),
}

impl RandomSize {
    /// The encoder configuration of this size over a vocabulary of `vocab_size` ids.
    pub fn config(&self, vocab_size: usize) -> EncoderConfig {
        match self {
            RandomSize::Bert(size) => EncoderConfig::Bert(
                BertConfig::new(
                    vocab_size,
                    size.hidden_size,
                    size.num_hidden_layers,
                    size.num_attention_heads,
                    size.intermediate_size,
                )
                .with_max_position_embeddings(size.max_position_embeddings.unwrap_or(512)),
            ),
            RandomSize::Gpt(size) => EncoderConfig::Gpt(
                GptConfig::new(vocab_size)
                    .with_n_embd(size.n_embd)
                    .with_n_layer(size.n_layer)
                    .with_n_head(size.n_head)
                    .with_n_positions(size.n_positions.unwrap_or(512)),
            ),
            RandomSize::Elmo(size) => EncoderConfig::Elmo(
                ElmoConfig::new(
                    size.filters
                        .clone()
                        .unwrap_or_else(|| RELEASED_FILTERS.to_vec()),
                    size.projection_dim,
                    size.cell_size,
                )
                .with_n_layers(size.n_layers)
                .with_n_highway(size.n_highway.unwrap_or(1))
                .with_pool_dim(size.pool_dim.unwrap_or(512)),
            ),
        }
    }

    /// The family.
    pub fn kind(&self) -> EncoderKind {
        match self {
            RandomSize::Bert(_) => EncoderKind::Bert,
            RandomSize::Gpt(_) => EncoderKind::Gpt,
            RandomSize::Elmo(_) => EncoderKind::Elmo,
        }
    }
}

/// Where the starting model comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ModelSource {
    /// A Hugging Face model directory.
    Pretrained {
        /// The directory.
        dir: PathBuf,
    },
    /// A Hugging Face hub id `org/name[@revision]`, fetched before training (`Experiment::fetch_model`).
    Hub {
        /// The id as written.
        id: String,
    },
    /// A freshly initialised encoder of this size (vocabulary from the tokenizer).
    Random {
        /// Its size.
        size: RandomSize,
    },
    /// A stilts model directory.
    Checkpoint {
        /// The directory.
        dir: PathBuf,
        /// Whether its heads come along.
        load: LoadMode,
    },
}

impl ModelSource {
    /// A local model directory the source reads (none for random and hub sources).
    pub fn dir(&self) -> Option<&Path> {
        match self {
            ModelSource::Pretrained { dir } | ModelSource::Checkpoint { dir, .. } => Some(dir),
            ModelSource::Hub { .. } | ModelSource::Random { .. } => None,
        }
    }
}

fn config_error(origin: &Path, key: &str, message: impl Into<String>) -> TrainError {
    TrainError::config(origin, key, message)
}

/// Expands `${VAR}` in a path string.
pub(super) fn expand(origin: &Path, key: &str, value: &str) -> Result<PathBuf> {
    expand_env(value)
        .map(PathBuf::from)
        .map_err(|e| config_error(origin, key, e.to_string()))
}

pub(super) fn must_exist(origin: &Path, key: &str, path: &Path, what: &str) -> Result<()> {
    if path.exists() {
        Ok(())
    } else {
        Err(config_error(
            origin,
            key,
            format!("{what} {} does not exist", path.display()),
        ))
    }
}

/// A resolved `[model]`.
pub(super) struct ResolvedModel {
    pub source: ModelSource,
    pub encoder: EncoderKind,
    /// The encoder's configuration, when it is known without downloading.
    pub config: Option<EncoderConfig>,
    pub tokenizer: Option<PathBuf>,
}

/// Resolves `[model]`: exactly one source, the family, the tokenizer.
pub(super) fn resolve_model(origin: &Path, m: &ModelFile) -> Result<ResolvedModel> {
    let set = [
        m.pretrained.is_some(),
        m.random.is_some(),
        m.checkpoint.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        return Err(config_error(
            origin,
            "model",
            "give exactly one of `pretrained`, `random`, `checkpoint`",
        ));
    }
    if m.load.is_some() && m.checkpoint.is_none() {
        return Err(config_error(
            origin,
            "model.load",
            "`load` applies to `checkpoint` only",
        ));
    }
    let named = m
        .encoder
        .as_deref()
        .map(|e| {
            e.parse::<EncoderKind>()
                .map_err(|message| config_error(origin, "model.encoder", message))
        })
        .transpose()?;
    let tokenizer = m
        .tokenizer
        .as_deref()
        .map(|t| expand(origin, "model.tokenizer", t))
        .transpose()?;
    let (source, config) = if let Some(name) = &m.pretrained {
        pretrained(origin, name, named)?
    } else if let Some(dir) = &m.checkpoint {
        let dir = expand(origin, "model.checkpoint", dir)?;
        must_exist(
            origin,
            "model.checkpoint",
            &dir.join(META_FILE),
            "stilts model",
        )?;
        let (meta, _) = read_meta(&dir.join(META_FILE)).map_err(|e| {
            TrainError::config_cause(origin, "model.checkpoint", "cannot read the saved model", e)
        })?;
        let load = m.load.unwrap_or(LoadMode::Encoder);
        (ModelSource::Checkpoint { dir, load }, Some(meta.encoder))
    } else if let Some(table) = &m.random {
        let size = random_size(origin, named.unwrap_or(EncoderKind::Bert), table)?;
        (ModelSource::Random { size }, None)
    } else {
        unreachable!("exactly one model source is set")
    };
    let encoder = match (&config, &source) {
        (Some(c), _) => c.kind(),
        (None, ModelSource::Random { size }) => size.kind(),
        (None, _) => named.unwrap_or(EncoderKind::Bert),
    };
    if let Some(named) = named
        && named != encoder
    {
        return Err(config_error(
            origin,
            "model.encoder",
            format!("`{named}` was asked for, but the model is a {encoder}"),
        ));
    }
    let tokenizer = match (tokenizer, source.dir()) {
        (Some(t), _) => Some(t),
        (None, Some(dir)) => Some(dir.to_path_buf()),
        (None, None) if matches!(source, ModelSource::Hub { .. }) => None,
        (None, None) => {
            return Err(config_error(
                origin,
                "model.tokenizer",
                "a random model needs a `tokenizer` (a tokenizer file or a directory holding one)",
            ));
        }
    };
    if let Some(t) = &tokenizer {
        must_exist(origin, "model.tokenizer", t, "tokenizer")?;
        TokenizerFiles::at(t)
            .map_err(|e| config_error(origin, "model.tokenizer", e.to_string()))?;
    }
    Ok(ResolvedModel {
        source,
        encoder,
        config,
        tokenizer,
    })
}

/// `model.pretrained`: a directory (its family from `config.json`), or else a hub id
/// `org/name[@revision]` (its family from the cached `config.json`, fetched alone if needed,
/// or from `model.encoder`).
fn pretrained(
    origin: &Path,
    value: &str,
    named: Option<EncoderKind>,
) -> Result<(ModelSource, Option<EncoderConfig>)> {
    let dir = expand(origin, "model.pretrained", value)?;
    if dir.is_dir() {
        // GPT's original release and a released ELMo have no config.json.
        let released = stilts_models::gpt::original::is_original_release(&dir)
            || matches!(
                stilts_models::elmo::weights::release_files(&dir),
                Ok(Some(_))
            );
        if !released {
            must_exist(
                origin,
                "model.pretrained",
                &dir.join("config.json"),
                "model config",
            )?;
        }
        let config = EncoderConfig::from_hf_dir(&dir).map_err(|e| {
            TrainError::config_cause(
                origin,
                "model.pretrained",
                "cannot read the model config",
                e,
            )
        })?;
        return Ok((ModelSource::Pretrained { dir }, Some(config)));
    }
    let id = dir.to_string_lossy().into_owned();
    let Ok(ModelName::Hub(model)) = ModelName::parse(&id) else {
        return Err(config_error(
            origin,
            "model.pretrained",
            format!("{id} is neither a model directory nor a hub id (org/name[@revision])"),
        ));
    };
    let config = match named {
        Some(_) => None,
        None => Some(hub_config(origin, &id, &model)?),
    };
    Ok((ModelSource::Hub { id }, config))
}

/// The encoder configuration of a hub model from its `config.json` (cache first).
fn hub_config(origin: &Path, id: &str, model: &HubModel) -> Result<EncoderConfig> {
    let hub_error = |source| TrainError::Hub {
        path: origin.to_path_buf(),
        model: id.to_owned(),
        source: Box::new(source),
    };
    let options = HubOptions::from_env().map_err(hub_error)?;
    let file = hub::download_file(model, "config.json", &options, &NoProgress)
        .map_err(hub_error)?
        .ok_or_else(|| {
            config_error(
                origin,
                "model.pretrained",
                format!("{id} has no config.json: not a transformers model, or a wrong revision"),
            )
        })?;
    let dir = file.parent().unwrap_or(Path::new("."));
    EncoderConfig::from_hf_dir(dir).map_err(|e| {
        TrainError::config_cause(
            origin,
            "model.pretrained",
            "cannot read the model config",
            e,
        )
    })
}

/// `model.random` as the family's size table; the sizes are checked as the encoder checks them.
fn random_size(origin: &Path, kind: EncoderKind, table: &toml::Table) -> Result<RandomSize> {
    // Parsed from text, one key a line, so that a wrong value's error shows its key.
    let text = toml::to_string(table).unwrap_or_default();
    let parse = |e: toml::de::Error| config_error(origin, "model.random", e.to_string());
    let size = match kind {
        EncoderKind::Bert => RandomSize::Bert(toml::from_str(&text).map_err(parse)?),
        EncoderKind::Gpt => RandomSize::Gpt(toml::from_str(&text).map_err(parse)?),
        EncoderKind::Elmo => RandomSize::Elmo(toml::from_str(&text).map_err(parse)?),
    };
    // The vocabulary comes from the tokenizer; any positive size checks the rest.
    size.config(1)
        .validate()
        .map_err(|message| config_error(origin, "model.random", message))?;
    Ok(size)
}

/// Fetches a hub model into the Hugging Face cache and points the experiment at its snapshot
/// (see [`Experiment::fetch_model`]).
pub(super) fn fetch(exp: &mut Experiment, progress: &dyn Progress) -> Result<()> {
    let ModelSource::Hub { id } = &exp.model else {
        return Ok(());
    };
    let hub_error = |source| TrainError::Hub {
        path: exp.source.clone(),
        model: id.clone(),
        source: Box::new(source),
    };
    let Ok(ModelName::Hub(model)) = ModelName::parse(id) else {
        return Err(config_error(
            &exp.source,
            "model.pretrained",
            format!("{id} is not a hub id"),
        ));
    };
    let options = HubOptions::from_env().map_err(hub_error)?;
    let snapshot = hub::download_model(&model, &options, progress).map_err(hub_error)?;
    tracing::info!("{id} is {}", snapshot.display());
    let kind = EncoderConfig::from_hf_dir(&snapshot)?.kind();
    if kind != exp.encoder {
        return Err(config_error(
            &exp.source,
            "model.encoder",
            format!("`{}` was asked for, but {id} is a {kind}", exp.encoder),
        ));
    }
    if exp.tokenizer.is_none() {
        exp.tokenizer = Some(snapshot.clone());
    }
    exp.model = ModelSource::Pretrained { dir: snapshot };
    Ok(())
}
