use std::path::Path;

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Characters per word row the character CNN reads (AllenNLP and bilm-tf fix it at 50).
pub const MAX_CHARACTERS_PER_TOKEN: usize = 50;

/// The character filters `(width, number)` of the released models (2,048 in all).
pub const RELEASED_FILTERS: [[usize; 2]; 7] = [
    [1, 32],
    [2, 32],
    [3, 64],
    [4, 128],
    [5, 256],
    [6, 512],
    [7, 1024],
];

/// The activation after each convolution's max over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CharActivation {
    /// `max(0, x)` (every published model).
    Relu,
    /// `tanh(x)`.
    Tanh,
}

/// Hyper-parameters of an ELMo biLM, as its `options.json` gives them (`char_cnn` and `lstm`
/// sections), flattened. Any size works.
// allennlp/modules/elmo.py: _ElmoCharacterEncoder and _ElmoBiLm read these from the options file
#[derive(Config, Debug, PartialEq)]
pub struct ElmoConfig {
    /// Rows of the character embedding, padding row 0 included (`char_cnn.n_characters`).
    #[config(default = 262)]
    pub n_characters: usize,
    /// Width of a character embedding (`char_cnn.embedding.dim`).
    #[config(default = 16)]
    pub char_embedding_dim: usize,
    /// `(width, number)` of each convolution over characters (`char_cnn.filters`).
    pub filters: Vec<[usize; 2]>,
    /// Highway layers after the convolutions (`char_cnn.n_highway`).
    #[config(default = 2)]
    pub n_highway: usize,
    /// The convolutions' activation (`char_cnn.activation`).
    #[config(default = "CharActivation::Relu")]
    pub activation: CharActivation,
    /// Width of the token representation and of every LSTM's output (`lstm.projection_dim`).
    pub projection_dim: usize,
    /// Memory cells of each LSTM (`lstm.dim`).
    pub cell_size: usize,
    /// Layers of each direction (`lstm.n_layers`).
    #[config(default = 2)]
    pub n_layers: usize,
    /// The memory cell is clipped to `[-c, c]` (`lstm.cell_clip`; none or 0: no clipping).
    #[config(default = "Some(3.0)")]
    pub cell_clip: Option<f64>,
    /// The projected output is clipped to `[-c, c]` (`lstm.proj_clip`).
    #[config(default = "Some(3.0)")]
    pub proj_clip: Option<f64>,
    /// Each LSTM layer after the first adds its input to its output
    /// (`lstm.use_skip_connections`).
    #[config(default = true)]
    pub use_skip_connections: bool,
    /// Whether the scalar mix normalises each layer first (AllenNLP's `do_layer_norm`).
    #[config(default = false)]
    pub do_layer_norm: bool,
    /// Dropout on the mixed representation in training (jiant's sentence-encoder dropout; its
    /// ELMo embedder itself has none).
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Width of the projection applied to every word before max-pooling over time (jiant's
    /// pooler `d_proj`).
    #[config(default = 512)]
    pub pool_dim: usize,
    /// Standard deviation of the normal initialiser of fresh weights.
    #[config(default = 0.02)]
    pub initializer_range: f64,
}

#[derive(Deserialize)]
struct OptionsFile {
    lstm: LstmOptions,
    char_cnn: CharCnnOptions,
}

// Published options files carry training settings besides these (bilm-tf writes `n_epochs`,
// `dropout`, `bidirectional`, ...), so unknown keys are ignored, as in a Hugging Face config.
#[derive(Deserialize)]
struct LstmOptions {
    #[serde(default)]
    use_skip_connections: bool,
    projection_dim: usize,
    #[serde(default)]
    cell_clip: Option<f64>,
    #[serde(default)]
    proj_clip: Option<f64>,
    dim: usize,
    n_layers: usize,
}

#[derive(Deserialize)]
struct CharCnnOptions {
    activation: String,
    filters: Vec<[usize; 2]>,
    n_highway: usize,
    embedding: EmbeddingOptions,
    n_characters: usize,
    max_characters_per_token: usize,
}

#[derive(Deserialize)]
struct EmbeddingOptions {
    dim: usize,
}

impl ElmoConfig {
    /// Reads an ELMo `options.json` as AllenNLP and bilm-tf publish it.
    pub fn from_options_file(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let options: OptionsFile = crate::error::read_json(path)?;
        let unsupported = |message: String| ModelError::UnsupportedConfig {
            path: path.to_path_buf(),
            message,
        };
        let activation = match options.char_cnn.activation.as_str() {
            "relu" => CharActivation::Relu,
            "tanh" => CharActivation::Tanh,
            other => {
                return Err(unsupported(format!(
                    "char_cnn.activation `{other}`: expected relu or tanh"
                )));
            }
        };
        if options.char_cnn.max_characters_per_token != MAX_CHARACTERS_PER_TOKEN {
            return Err(unsupported(format!(
                "char_cnn.max_characters_per_token is {}; ELMo's character ids have {MAX_CHARACTERS_PER_TOKEN}",
                options.char_cnn.max_characters_per_token
            )));
        }
        let lstm = options.lstm;
        // The options describe the biLM; the task-side settings keep their defaults.
        let config = ElmoConfig::new(options.char_cnn.filters, lstm.projection_dim, lstm.dim)
            .with_n_characters(options.char_cnn.n_characters)
            .with_char_embedding_dim(options.char_cnn.embedding.dim)
            .with_n_highway(options.char_cnn.n_highway)
            .with_activation(activation)
            .with_n_layers(lstm.n_layers)
            .with_cell_clip(lstm.cell_clip.filter(|c| *c != 0.0))
            .with_proj_clip(lstm.proj_clip.filter(|c| *c != 0.0))
            .with_use_skip_connections(lstm.use_skip_connections);
        config.validate().map_err(unsupported)?;
        Ok(config)
    }

    /// Checks every size is positive and the character vocabulary covers ELMo's ids; the
    /// message names the options key.
    pub fn validate(&self) -> Result<(), String> {
        let sizes = [
            ("char_cnn.embedding.dim", self.char_embedding_dim),
            ("lstm.projection_dim", self.projection_dim),
            ("lstm.dim", self.cell_size),
            ("lstm.n_layers", self.n_layers),
            ("pool_dim", self.pool_dim),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be positive"));
        }
        crate::encoder::check_sizes(&sizes, ("lstm.dim", self.cell_size))?;
        crate::encoder::check_layers("lstm.n_layers", self.n_layers)?;
        let filters: usize = self
            .filters
            .iter()
            .map(|[_, n]| *n)
            .fold(0, usize::saturating_add);
        crate::encoder::check_sizes(
            &[("char_cnn.n_characters", self.n_characters)],
            ("char_cnn.embedding.dim", self.char_embedding_dim),
        )?;
        crate::encoder::check_sizes(
            &[("char_cnn.filters (their total)", filters)],
            ("lstm.projection_dim", self.projection_dim),
        )?;
        // Ids run to 261 (padding character 260, shifted by one).
        if self.n_characters < 262 {
            return Err(format!(
                "char_cnn.n_characters is {}; ELMo's character ids need 262",
                self.n_characters
            ));
        }
        if self.filters.is_empty() {
            return Err("char_cnn.filters is empty".into());
        }
        if let Some([w, n]) = self
            .filters
            .iter()
            .find(|[w, n]| *w == 0 || *n == 0 || *w > MAX_CHARACTERS_PER_TOKEN)
        {
            return Err(format!(
                "char_cnn.filters entry [{w}, {n}]: width must be 1..={MAX_CHARACTERS_PER_TOKEN} and the number positive"
            ));
        }
        for (name, clip) in [
            ("lstm.cell_clip", self.cell_clip),
            ("lstm.proj_clip", self.proj_clip),
        ] {
            if let Some(c) = clip.filter(|c| !(c.is_finite() && *c > 0.0)) {
                return Err(format!("{name} must be positive, got {c}"));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }

    /// Number of convolution outputs, the width the highway layers work at.
    pub fn n_filters(&self) -> usize {
        self.filters.iter().map(|[_, n]| n).sum()
    }

    /// Width of each layer's output, `[forward; backward]`.
    pub fn output_dim(&self) -> usize {
        2 * self.projection_dim
    }
}
