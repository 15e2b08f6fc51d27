//! The grid TOML (`configs/grids/*.toml`): plain serde structs with `deny_unknown_fields`, and
//! `[scale.<name>]` override tables deep-merged onto the file before it is parsed, so a scale
//! can change any key and every change is recorded. The keys a grid passes on to `stilts run`
//! (`data`, the recipes, a multitask sampler) are the experiment file's own types
//! ([`stilts_schema::experiment`]), so a typo in them fails when the grid is loaded, naming
//! the key, not when a worker starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stilts_schema::experiment::{DataFile, RecipeFile, SamplerKind};

use super::GridError;

mod methods;

pub use methods::{FULL_METHOD, FuseFile, MethodFile};

/// A grid file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Where runs, results and reports go; default `runs/grids/<name>` (relative paths are
    /// relative to the current directory).
    pub output_dir: Option<String>,
    /// Seed of restart 0; restart `r` uses `seed + r`. Intermediate runs use `seed`.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Passed to every run's `[data]`.
    #[serde(default)]
    pub data: DataFile,
    pub encoders: Vec<EncoderFile>,
    /// Include the no-intermediate baseline (the paper's plain "BERT" row).
    #[serde(default = "yes")]
    pub baseline: bool,
    #[serde(default)]
    pub intermediates: Vec<IntermediateFile>,
    pub targets: Vec<String>,
    /// `full`, `5k`, `1k`, or a number of examples.
    #[serde(default = "default_regimes")]
    pub regimes: Vec<String>,
    /// Restarts of every target (the paper: 20 for the small tasks).
    #[serde(default = "one")]
    pub restarts: usize,
    /// Per-target restarts, overriding `restarts`.
    #[serde(default)]
    pub restarts_for: BTreeMap<String, usize>,
    /// Recipe keys of every phase (`stilts run`'s `[recipe]`).
    #[serde(default)]
    pub recipe: RecipeFile,
    /// Recipe keys of intermediate (and multitask) phases, over `recipe`.
    #[serde(default)]
    pub intermediate_recipe: RecipeFile,
    /// Predict the test sets of target runs (for GLUE submission bundles).
    #[serde(default = "yes")]
    pub predict_test: bool,
    /// Table 3's comparison: `{A,B}` and `{A,B} -> B` for each pair.
    #[serde(default)]
    pub multitask: Vec<MultitaskFile>,
    /// Training methods beside full fine-tuning (`adapters`, `lora`): each trains the grid's
    /// intermediates and targets again, or the subsets it names, with its recipe keys over
    /// every phase's. The runs of full fine-tuning are those of a grid without methods.
    #[serde(default)]
    pub methods: Vec<MethodFile>,
    /// Named override tables, e.g. `[scale.cpu]`.
    #[serde(default)]
    pub scale: BTreeMap<String, toml::Table>,
    #[serde(default)]
    pub slurm: SlurmFile,
    /// Figure 1 and Table 2 options.
    #[serde(default)]
    pub report: ReportFile,
}

/// One encoder: a pretrained model (directory or hub id) or a random BERT for tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderFile {
    /// The row label in tables ("BERT", "MiniLM").
    pub name: String,
    /// The encoder family (`bert`), passed to `[model] encoder`; by default `stilts run` reads
    /// it from the model.
    pub encoder: Option<String>,
    pub pretrained: Option<String>,
    pub random: Option<toml::Table>,
    pub tokenizer: Option<String>,
    /// Recipe keys for this encoder only (e.g. GPT's lr), over the grid's.
    #[serde(default)]
    pub recipe: RecipeFile,
}

/// One intermediate condition: one task, trained once per encoder and shared by its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntermediateFile {
    /// Row label ("MNLI", "Real/Fake").
    pub name: String,
    /// A built-in task name or a task TOML (as in experiments).
    pub task: String,
    /// The data root for a task TOML (its `data_root`).
    pub data_root: Option<String>,
    /// Downsample the intermediate's training set (CPU-scale grids).
    pub train_examples: Option<usize>,
    /// The GLUE task this intermediate *is*, if any: where it equals the target the paper
    /// substitutes the baseline (struck through) instead of training.
    pub same_as: Option<String>,
    /// Generate this task's data with `stilts data realfake` into `<grid out>/data/<dir>`
    /// before any run starts (the task TOML's `dir`, e.g. `RealFake`); `data_root` then
    /// defaults to `<grid out>/data`.
    pub realfake: Option<RealFakeFile>,
}

/// Inputs of the Real/Fake generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealFakeFile {
    /// A sentence-per-line file or directory (e.g. BooksCorpus; the paper used 600k sentences).
    pub corpus: String,
    /// Examples over train and dev together (default: one per usable sentence).
    pub examples: Option<usize>,
    /// The generated directory's name under `<grid out>/data` (the task TOML's `dir`).
    #[serde(default = "realfake_dir")]
    pub dir: String,
}

fn realfake_dir() -> String {
    "RealFake".into()
}

/// `{a, b}` multitask then `{a, b} -> b`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultitaskFile {
    /// The intermediate (an `intermediates` name).
    pub a: String,
    /// The target (a `targets` entry).
    pub b: String,
    /// `proportional` (the paper), `uniform` or `temperature`.
    #[serde(default = "proportional")]
    pub sampler: SamplerKind,
}

/// Slurm resources for every run of the grid.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmFile {
    pub partition: Option<String>,
    /// `--gres`, e.g. `gpu:1`.
    pub gres: Option<String>,
    pub cpus_per_task: Option<u32>,
    /// `--mem`, e.g. `32G`.
    pub mem: Option<String>,
    /// `--time`, e.g. `12:00:00`.
    pub time: Option<String>,
    /// Device passed to `stilts run --device` inside the job (default `cpu`, `cuda:0` with gres).
    pub device: Option<String>,
    /// Extra `#SBATCH` lines.
    #[serde(default)]
    pub extra: Vec<String>,
}

/// Report options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportFile {
    /// Bootstrap resamples for the STILTs-minus-baseline intervals (default 1000).
    pub bootstrap: Option<usize>,
}

fn default_seed() -> u64 {
    1
}
fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn default_regimes() -> Vec<String> {
    vec!["full".into()]
}
fn proportional() -> SamplerKind {
    SamplerKind::Proportional
}

/// A grid file read from disk, with the chosen scale applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadedGrid {
    pub source: PathBuf,
    pub file: GridFile,
    /// The scale applied, if any.
    pub scale: Option<String>,
    /// Every key the scale overrode, as dotted paths with their new values.
    pub overrides: Vec<(String, String)>,
}

/// Reads `path` and applies `[scale.<scale>]`.
pub fn load(path: &Path, scale: Option<&str>) -> Result<LoadedGrid, GridError> {
    let text = std::fs::read_to_string(path).map_err(|e| GridError::io(path, e))?;
    parse(path, &text, scale)
}

/// Parses grid text (see [`load`]).
pub fn parse(path: &Path, text: &str, scale: Option<&str>) -> Result<LoadedGrid, GridError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| GridError::Toml {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    let mut overrides = Vec::new();
    if let Some(name) = scale {
        stilts_io::names::check_component(name)
            .map_err(|m| GridError::config(path, format!("scale.{name}"), m))?;
        let scales = table.get("scale").and_then(|s| s.as_table());
        let Some(over) = scales.and_then(|s| s.get(name)).and_then(|v| v.as_table()) else {
            let known: Vec<String> = scales
                .map(|s| s.keys().cloned().collect())
                .unwrap_or_default();
            return Err(GridError::config(
                path,
                format!("scale.{name}"),
                format!("no such scale; this grid has: {}", list_or_none(&known)),
            ));
        };
        let over = over.clone();
        merge(&mut table, &over, "", &mut overrides);
    }
    let file: GridFile = match GridFile::deserialize(toml::Value::Table(table.clone())) {
        Ok(file) => file,
        // A merged table has lost its line numbers: name the key of an experiment value
        // instead, where one is the culprit.
        Err(e) => {
            return Err(match refused_experiment_key(&table) {
                Some((key, message)) => GridError::config(path, key, message),
                None => GridError::Toml {
                    path: path.to_path_buf(),
                    source: Box::new(e),
                },
            });
        }
    };
    let grid = LoadedGrid {
        source: path.to_path_buf(),
        file,
        scale: scale.map(str::to_string),
        overrides,
    };
    grid.validate()?;
    Ok(grid)
}

/// The first value `stilts run` would refuse among the experiment keys of a grid table (`data`,
/// the recipes, the multitask samplers), as its dotted key and the parser's message.
fn refused_experiment_key(table: &toml::Table) -> Option<(String, String)> {
    /// `value` as a `T` (a type whose keys are all optional), else the error of the first key
    /// that fails alone, or of the whole value.
    fn bad<T: DeserializeOwned>(
        key: String,
        value: Option<&toml::Value>,
    ) -> Option<(String, String)> {
        let message = |e: toml::de::Error| e.message().trim().to_string();
        let value = value?;
        let err = T::deserialize(value.clone()).err()?;
        let alone = value.as_table().into_iter().flatten().find_map(|(k, v)| {
            let one = toml::Table::from_iter([(k.clone(), v.clone())]);
            T::deserialize(toml::Value::Table(one))
                .err()
                .map(|e| (format!("{key}.{k}"), message(e)))
        });
        Some(alone.unwrap_or((key, message(err))))
    }
    let items = |key: &str| {
        table
            .get(key)
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(toml::Value::as_table)
                    .enumerate()
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    bad::<DataFile>("data".into(), table.get("data"))
        .or_else(|| bad::<RecipeFile>("recipe".into(), table.get("recipe")))
        .or_else(|| {
            bad::<RecipeFile>(
                "intermediate_recipe".into(),
                table.get("intermediate_recipe"),
            )
        })
        .or_else(|| {
            items("encoders").into_iter().find_map(|(i, e)| {
                bad::<RecipeFile>(format!("encoders[{i}].recipe"), e.get("recipe"))
            })
        })
        .or_else(|| {
            items("methods").into_iter().find_map(|(i, m)| {
                bad::<RecipeFile>(format!("methods[{i}].recipe"), m.get("recipe")).or_else(|| {
                    bad::<RecipeFile>(
                        format!("methods[{i}].intermediate_recipe"),
                        m.get("intermediate_recipe"),
                    )
                })
            })
        })
        .or_else(|| {
            items("multitask").into_iter().find_map(|(i, m)| {
                bad::<SamplerKind>(format!("multitask[{i}].sampler"), m.get("sampler"))
            })
        })
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Deep-merges `over` into `base`: tables merge key by key, anything else replaces.
fn merge(
    base: &mut toml::Table,
    over: &toml::Table,
    prefix: &str,
    log: &mut Vec<(String, String)>,
) {
    for (key, value) in over {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let toml::Value::Table(o) = value
            && !base.contains_key(key)
        {
            base.insert(key.clone(), toml::Value::Table(toml::Table::new()));
            if let Some(toml::Value::Table(b)) = base.get_mut(key) {
                merge(b, o, &path, log);
            }
            continue;
        }
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o, &path, log),
            _ => {
                log.push((path, value.to_string()));
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

impl LoadedGrid {
    fn err(&self, key: impl Into<String>, msg: impl Into<String>) -> GridError {
        GridError::config(&self.source, key, msg)
    }

    fn validate(&self) -> Result<(), GridError> {
        let f = &self.file;
        use stilts_io::names::check_component;
        check_component(&f.name).map_err(|m| self.err("name", m))?;
        // Intermediate and encoder names label tables, not paths ("Real/Fake").
        for (i, m) in f.intermediates.iter().enumerate() {
            if let Some(r) = &m.realfake {
                check_component(&r.dir)
                    .map_err(|e| self.err(format!("intermediates[{i}].realfake.dir"), e))?;
            }
        }
        if f.encoders.is_empty() {
            return Err(self.err("encoders", "at least one encoder is needed"));
        }
        if f.targets.is_empty() {
            return Err(self.err("targets", "at least one target task is needed"));
        }
        for (i, e) in f.encoders.iter().enumerate() {
            if e.pretrained.is_some() == e.random.is_some() {
                return Err(self.err(
                    format!("encoders[{i}]"),
                    "give exactly one of `pretrained` and `random`",
                ));
            }
        }
        for (i, r) in f.regimes.iter().enumerate() {
            Regime::parse(r).map_err(|m| self.err(format!("regimes[{i}]"), m))?;
        }
        if f.restarts == 0 {
            return Err(self.err("restarts", "must be at least 1"));
        }
        for (t, &n) in &f.restarts_for {
            if !f.targets.contains(t) {
                return Err(self.err(
                    format!("restarts_for.{t}"),
                    format!("`{t}` is not one of the targets ({})", f.targets.join(", ")),
                ));
            }
            if n == 0 {
                return Err(self.err(format!("restarts_for.{t}"), "must be at least 1"));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, m) in f.intermediates.iter().enumerate() {
            if !names.insert(m.name.as_str()) {
                return Err(self.err(
                    format!("intermediates[{i}].name"),
                    format!("duplicate intermediate `{}`", m.name),
                ));
            }
        }
        self.validate_methods()?;
        for (i, m) in f.multitask.iter().enumerate() {
            if !f.intermediates.iter().any(|x| x.name == m.a) {
                return Err(self.err(
                    format!("multitask[{i}].a"),
                    format!("`{}` is not an intermediate of this grid", m.a),
                ));
            }
            if !f.targets.contains(&m.b) {
                return Err(self.err(
                    format!("multitask[{i}].b"),
                    format!("`{}` is not a target of this grid", m.b),
                ));
            }
        }
        Ok(())
    }

    /// Restarts of `target`.
    pub fn restarts(&self, target: &str) -> usize {
        self.file
            .restarts_for
            .get(target)
            .copied()
            .unwrap_or(self.file.restarts)
    }

    /// The seed of restart `restart` (0-based): `seed + restart`; intermediates use restart 0.
    pub fn restart_seed(&self, restart: usize) -> u64 {
        self.file.seed + restart as u64
    }

    /// Regimes, parsed (validated at load).
    pub fn regimes(&self) -> Vec<Regime> {
        self.file
            .regimes
            .iter()
            .filter_map(|r| Regime::parse(r).ok())
            .collect()
    }

    /// The output directory.
    pub fn output_dir(&self) -> PathBuf {
        match &self.file.output_dir {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from("runs/grids").join(match &self.scale {
                Some(s) => format!("{}-{s}", self.file.name),
                None => self.file.name.clone(),
            }),
        }
    }
}

/// A training-data regime: all of the target's training set, or at most `n` examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    Full,
    Examples(usize),
}

impl Regime {
    /// `full`, `5k`, `1k`, `1000`.
    pub fn parse(s: &str) -> Result<Regime, String> {
        let t = s.trim().to_ascii_lowercase();
        if t == "full" {
            return Ok(Regime::Full);
        }
        let (digits, mult) = match t.strip_suffix('k') {
            Some(d) => (d, 1000),
            None => (t.as_str(), 1),
        };
        match digits.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Regime::Examples(n * mult)),
            _ => Err(format!(
                "unknown regime `{s}`: expected `full`, a count such as `1000`, or `5k`"
            )),
        }
    }

    /// `full`, `5k`, `1k`, `1500`.
    pub fn label(self) -> String {
        match self {
            Regime::Full => "full".into(),
            Regime::Examples(n) if n % 1000 == 0 => format!("{}k", n / 1000),
            Regime::Examples(n) => n.to_string(),
        }
    }

    pub fn train_examples(self) -> Option<usize> {
        match self {
            Regime::Full => None,
            Regime::Examples(n) => Some(n),
        }
    }
}
