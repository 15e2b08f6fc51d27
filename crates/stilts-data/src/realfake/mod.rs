//! The Real/Fake task of the STILTs paper: is a sentence real, or a real sentence with 2–4 pairs
//! of its words swapped? Generated from a sentence-per-line corpus (BooksCorpus in the paper).
//!
//! Recipe `stilts-realfake/v1` ([`ALGORITHM`]), all randomness from [`Rng::derive`] streams of
//! the config's seed:
//!
//! 1. Read the corpus (one file, or the `.txt` / `.txt.gz` files of a directory in sorted path
//!    order). Each non-blank line is a sentence; its tokens are split on whitespace and re-joined
//!    with single spaces, real and fake alike, so spacing never gives the label away.
//! 2. Exclude, and count, sentences with fewer than `min_tokens` tokens (`too_short`), more than
//!    `max_tokens` (`too_long`), or where one word fills all positions but at most one
//!    (`too_few_distinct`: no two disjoint pairs of different words exist to swap).
//! 3. Shuffle the usable sentences (stream `["realfake", "select"]`) and walk them, drawing a fake
//!    for each (stream `["realfake", "swap"]`), until `num_examples` (rounded down to even) are
//!    kept. A fake swaps `k` disjoint pairs of positions: `k` is uniform in {2, 3, 4}, capped at
//!    the most disjoint pairs of different words the sentence holds (`min(tokens / 2, tokens -
//!    count of its most frequent word)`), and the pairs are redrawn until each swaps two
//!    *different* words, so a fake differs from its source in exactly `2k` positions and never
//!    equals it. After [`MAX_ATTEMPTS`] failed draws `k` is lowered by one; a sentence with no
//!    valid draw even at `k = 2` is excluded and counted (`unswappable`). Each kept sentence
//!    becomes one example, real or fake, never both.
//! 4. The first `dev` kept sentences (`2 * floor(kept * dev_fraction / 2)`) form the dev split,
//!    the rest train. In each split exactly half the examples are fake: a balanced label vector
//!    is shuffled (stream `["realfake", "labels", split]`) and a sentence labelled fake is
//!    written as its fake.
//!
//! Output, in a directory the task of [`realfake_task`] loads: `train.tsv` and `dev.tsv` (header
//! `index\tsentence\tlabel`, labels `real` / `fake`) and `report.json` ([`RealFakeReport`]), each
//! written atomically. Labels in canonical order are `["fake", "real"]` (alphabetical; class 1 is
//! `real`, the well-formed class, as `1` is acceptable in CoLA).
//!
//! ```
//! use stilts_data::realfake::{generate_examples, RealFakeConfig, RealFakeLabel};
//! let lines = ["the cat sat on the mat .", "a dog ran in the park today .", "", "too short"];
//! let cfg = RealFakeConfig { dev_fraction: 0.0, ..RealFakeConfig::default() };
//! let out = generate_examples(lines, &cfg)?;
//! assert_eq!(out.counts.too_short, 1);
//! assert_eq!(out.train.len(), 2);
//! assert_eq!(out.train.iter().filter(|e| e.label == RealFakeLabel::Fake).count(), 1);
//! # Ok::<(), stilts_data::realfake::RealFakeError>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dataset::{hex, read_bytes};
use crate::error::DataError;
use crate::metrics::Metric;
use crate::rng::Rng;
use crate::task::{InputKind, Layout, Source, SplitRole, SplitSpec, Target, Task};

mod swap;

use stilts_io::fs::write_atomic;
use swap::{apply_swaps, draw_swaps, max_pairs};

/// Name and version of the generation recipe, recorded in every report.
pub const ALGORITHM: &str = "stilts-realfake/v1";
/// Label names in canonical (class index) order.
pub const LABELS: [&str; 2] = ["fake", "real"];
/// File name of the generated training split.
pub const TRAIN_FILE: &str = "train.tsv";
/// File name of the generated dev split.
pub const DEV_FILE: &str = "dev.tsv";
/// File name of the generation report ([`RealFakeReport`]).
pub const REPORT_FILE: &str = "report.json";
/// Fewest pairs of words a fake swaps.
pub const MIN_SWAPS: usize = 2;
/// Most pairs of words a fake swaps.
pub const MAX_SWAPS: usize = 4;
/// Draws tried per number of swaps before a sentence falls back to fewer swaps, or, at
/// `MIN_SWAPS`, is counted as unswappable.
pub const MAX_ATTEMPTS: usize = 100;

/// Errors from Real/Fake generation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RealFakeError {
    /// A [`RealFakeConfig`] value out of range (the message names it).
    #[error("invalid Real/Fake config: {0}")]
    Config(String),
    /// Reading a corpus file failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A corpus line is not UTF-8.
    #[error("{}:{line}: invalid UTF-8", path.display())]
    InvalidUtf8 {
        /// The corpus file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
    },
    /// A corpus directory without `.txt` or `.txt.gz` files.
    #[error("{}: no .txt or .txt.gz files in the directory", path.display())]
    NoCorpusFiles {
        /// The directory.
        path: PathBuf,
    },
    /// No corpus sentence passed the length and distinct-word filters.
    #[error("{}: no usable sentences ({counts})", path.display())]
    NoSentences {
        /// The corpus file or directory.
        path: PathBuf,
        /// Why sentences were excluded.
        counts: Box<SentenceCounts>,
    },
    /// The report could not be written as JSON.
    #[error("{}: {source}", path.display())]
    Json {
        /// The report file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

/// How to generate the task. Every field has a default; unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealFakeConfig {
    /// Examples to emit over train and dev together (rounded down to even); `None`: one per
    /// usable sentence.
    pub num_examples: Option<usize>,
    /// Share of the examples that form the dev split, in `[0, 1)`. Default 0.1.
    pub dev_fraction: f64,
    /// Shortest usable sentence, in tokens; at least `2 * MIN_SWAPS` = 4 (the default).
    pub min_tokens: usize,
    /// Longest usable sentence, in tokens; no limit when `None` (the default).
    pub max_tokens: Option<usize>,
    /// Seed of every random choice (which sentences, which are faked, which words swap).
    pub seed: u64,
}

impl Default for RealFakeConfig {
    fn default() -> Self {
        RealFakeConfig {
            num_examples: None,
            dev_fraction: 0.1,
            min_tokens: 2 * MIN_SWAPS,
            max_tokens: None,
            seed: 0,
        }
    }
}

impl RealFakeConfig {
    /// Checks the ranges: `min_tokens >= 2 * MIN_SWAPS`, `max_tokens >= min_tokens`,
    /// `dev_fraction` in `[0, 1)`, `num_examples >= 2`.
    pub fn validate(&self) -> Result<(), RealFakeError> {
        let bad = |m: String| Err(RealFakeError::Config(m));
        if self.min_tokens < 2 * MIN_SWAPS {
            return bad(format!(
                "min_tokens is {}, but a fake needs at least {} tokens",
                self.min_tokens,
                2 * MIN_SWAPS
            ));
        }
        if let Some(max) = self.max_tokens
            && max < self.min_tokens
        {
            return bad(format!(
                "max_tokens {max} is below min_tokens {}",
                self.min_tokens
            ));
        }
        if !(self.dev_fraction.is_finite() && (0.0..1.0).contains(&self.dev_fraction)) {
            return bad(format!(
                "dev_fraction must be in [0, 1), got {}",
                self.dev_fraction
            ));
        }
        if let Some(n) = self.num_examples
            && n < 2
        {
            return bad(format!(
                "num_examples must be at least 2 (one real, one fake), got {n}"
            ));
        }
        Ok(())
    }
}

/// Whether an example is a corpus sentence or a word-swapped one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RealFakeLabel {
    /// A corpus sentence with pairs of its words swapped.
    Fake,
    /// A corpus sentence as it is.
    Real,
}

impl RealFakeLabel {
    /// `fake` or `real`, as written in the label column.
    pub fn name(self) -> &'static str {
        LABELS[self.index()]
    }

    /// The class index in [`LABELS`] order.
    pub fn index(self) -> usize {
        match self {
            RealFakeLabel::Fake => 0,
            RealFakeLabel::Real => 1,
        }
    }
}

/// One generated example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealFakeExample {
    /// The text written to the file: `source`, or its fake.
    pub sentence: String,
    /// Whether `sentence` is `source` or its fake.
    pub label: RealFakeLabel,
    /// The corpus sentence, whitespace-normalised.
    pub source: String,
    /// Token positions swapped (`a < b`, all disjoint); empty for a real example.
    pub swaps: Vec<(usize, usize)>,
}

/// What happened to the corpus lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentenceCounts {
    /// Non-blank lines read.
    pub sentences: usize,
    /// Blank lines skipped.
    pub blank_lines: usize,
    /// Fewer than `min_tokens` tokens.
    pub too_short: usize,
    /// More than `max_tokens` tokens.
    pub too_long: usize,
    /// One word fills every position but at most one: no fake with two swaps of different words.
    pub too_few_distinct: usize,
    /// Sentences left after the three exclusions above.
    pub usable: usize,
    /// Usable sentences looked at (in shuffled order) before enough examples were kept.
    pub examined: usize,
    /// Examined sentences with no valid fake in [`MAX_ATTEMPTS`] draws per `k`, excluded.
    pub unswappable: usize,
    /// Examples emitted (train + dev).
    pub used: usize,
}

impl std::fmt::Display for SentenceCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sentences, {} too short, {} too long, {} too few distinct words, {} unswappable",
            self.sentences, self.too_short, self.too_long, self.too_few_distinct, self.unswappable
        )
    }
}

/// The generated splits, in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The training split.
    pub train: Vec<RealFakeExample>,
    /// The dev split.
    pub dev: Vec<RealFakeExample>,
    /// What happened to the corpus lines.
    pub counts: SentenceCounts,
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// The file, as found under the corpus path.
    pub path: String,
    /// SHA-256 (hex) of the (decompressed) bytes.
    pub sha256: String,
    /// Lines in the file, blank ones included.
    pub lines: usize,
}

/// One output split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitReport {
    /// File name ([`TRAIN_FILE`] or [`DEV_FILE`]).
    pub file: String,
    /// Examples written.
    pub examples: usize,
    /// Real examples among them.
    pub real: usize,
    /// Fake examples among them.
    pub fake: usize,
    /// Number of fakes per number of swapped pairs.
    pub fakes_by_swaps: BTreeMap<usize, usize>,
}

/// Everything about one generation run; written as `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealFakeReport {
    /// [`ALGORITHM`] at the time of generation.
    pub algorithm: String,
    /// The configuration used.
    pub config: RealFakeConfig,
    /// The corpus files read, in reading order.
    pub sources: Vec<SourceFile>,
    /// What happened to the corpus lines.
    pub counts: SentenceCounts,
    /// The training split written.
    pub train: SplitReport,
    /// The dev split written.
    pub dev: SplitReport,
}

/// The generated task: single sentences, labels `["fake", "real"]`, accuracy, `train.tsv` and
/// `dev.tsv` under the directory `RealFake`.
pub fn realfake_task() -> Task {
    let labels: Vec<String> = LABELS.iter().map(|s| s.to_string()).collect();
    let layout = Layout::tsv_header("sentence", None, Some("label"), Some("index"));
    let split = |name: &str, role, file: &str| SplitSpec {
        name: name.to_owned(),
        role,
        sources: vec![Source {
            file: file.to_owned(),
            layout: layout.clone(),
        }],
    };
    Task {
        name: "RealFake".to_owned(),
        dir: "RealFake".to_owned(),
        input: InputKind::Single,
        target: Target::Classification {
            labels: labels.clone(),
        },
        metrics: vec![Metric::Accuracy],
        splits: vec![
            split("train", SplitRole::Train, TRAIN_FILE),
            split("dev", SplitRole::Dev, DEV_FILE),
        ],
        submission: Vec::new(),
        submission_labels: labels,
        symmetric: false,
    }
}

/// Generate the splits from corpus lines, in memory (the core of [`generate`]).
pub fn generate_examples<'a, I>(lines: I, cfg: &RealFakeConfig) -> Result<Generated, RealFakeError>
where
    I: IntoIterator<Item = &'a str>,
{
    cfg.validate()?;
    let mut pool = Pool::default();
    for line in lines {
        pool.push(line, cfg);
    }
    Ok(pool.finish(cfg))
}

/// Generate the task from `corpus` (a sentence-per-line file, or a directory of them) into
/// `out_dir`: `train.tsv`, `dev.tsv` and `report.json`. `progress` is called after each corpus
/// file with (bytes read, total bytes) on disk.
pub fn generate(
    corpus: &Path,
    out_dir: &Path,
    cfg: &RealFakeConfig,
    progress: Option<&dyn Fn(u64, u64)>,
) -> Result<RealFakeReport, RealFakeError> {
    cfg.validate()?;
    let files = corpus_files(corpus)?;
    let sizes: Vec<u64> = files
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .collect();
    let total: u64 = sizes.iter().sum();
    let mut done = 0u64;
    let mut pool = Pool::default();
    let mut sources = Vec::with_capacity(files.len());
    for (path, size) in files.iter().zip(&sizes) {
        let bytes = read_bytes(path)?;
        let sha256 = hex(&Sha256::digest(&bytes));
        let text = std::str::from_utf8(&bytes).map_err(|e| RealFakeError::InvalidUtf8 {
            path: path.clone(),
            line: bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64
                + 1,
        })?;
        let mut lines = 0;
        for line in text.lines() {
            lines += 1;
            pool.push(line, cfg);
        }
        sources.push(SourceFile {
            path: path.display().to_string(),
            sha256,
            lines,
        });
        done += size;
        if let Some(report) = progress {
            report(done, total);
        }
    }
    let generated = pool.finish(cfg);
    if generated.counts.used == 0 {
        return Err(RealFakeError::NoSentences {
            path: corpus.to_owned(),
            counts: Box::new(generated.counts),
        });
    }
    if let Some(n) = cfg.num_examples
        && generated.counts.used < n
    {
        tracing::warn!(
            "{}: asked for {n} Real/Fake examples, the corpus gave {}",
            corpus.display(),
            generated.counts.used
        );
    }
    std::fs::create_dir_all(out_dir).map_err(|source| RealFakeError::Io {
        path: out_dir.to_owned(),
        source,
    })?;
    let train = write_split(&out_dir.join(TRAIN_FILE), &generated.train)?;
    let dev = write_split(&out_dir.join(DEV_FILE), &generated.dev)?;
    let report = RealFakeReport {
        algorithm: ALGORITHM.to_owned(),
        config: cfg.clone(),
        sources,
        counts: generated.counts,
        train,
        dev,
    };
    let report_path = out_dir.join(REPORT_FILE);
    let mut json = serde_json::to_vec_pretty(&report).map_err(|source| RealFakeError::Json {
        path: report_path.clone(),
        source,
    })?;
    json.push(b'\n');
    write_atomic(&report_path, &json).map_err(|e| RealFakeError::Io {
        path: e.path,
        source: e.source,
    })?;
    Ok(report)
}

fn corpus_files(corpus: &Path) -> Result<Vec<PathBuf>, RealFakeError> {
    let meta = std::fs::metadata(corpus).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            RealFakeError::Data(DataError::MissingFile {
                path: corpus.to_owned(),
                hint: Some("the Real/Fake corpus: a sentence-per-line file or directory".into()),
            })
        } else {
            RealFakeError::Io {
                path: corpus.to_owned(),
                source: e,
            }
        }
    })?;
    if meta.is_file() {
        return Ok(vec![corpus.to_owned()]);
    }
    let io = |source| RealFakeError::Io {
        path: corpus.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(corpus).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if (name.ends_with(".txt") || name.ends_with(".txt.gz")) && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(RealFakeError::NoCorpusFiles {
            path: corpus.to_owned(),
        });
    }
    files.sort();
    Ok(files)
}

fn write_split(path: &Path, examples: &[RealFakeExample]) -> Result<SplitReport, RealFakeError> {
    let mut out = String::with_capacity(examples.iter().map(|e| e.sentence.len() + 16).sum());
    out.push_str("index\tsentence\tlabel\n");
    let mut fakes_by_swaps = BTreeMap::new();
    let mut fake = 0;
    for (i, ex) in examples.iter().enumerate() {
        out.push_str(&format!("{i}\t{}\t{}\n", ex.sentence, ex.label.name()));
        if ex.label == RealFakeLabel::Fake {
            fake += 1;
            *fakes_by_swaps.entry(ex.swaps.len()).or_insert(0) += 1;
        }
    }
    write_atomic(path, out.as_bytes()).map_err(|e| RealFakeError::Io {
        path: e.path,
        source: e.source,
    })?;
    Ok(SplitReport {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        examples: examples.len(),
        real: examples.len() - fake,
        fake,
        fakes_by_swaps,
    })
}

/// Usable sentences, whitespace-normalised, in corpus order, with the exclusion counts.
#[derive(Default)]
struct Pool {
    sentences: Vec<String>,
    counts: SentenceCounts,
}

impl Pool {
    fn push(&mut self, line: &str, cfg: &RealFakeConfig) {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.is_empty() {
            self.counts.blank_lines += 1;
            return;
        }
        self.counts.sentences += 1;
        if tokens.len() < cfg.min_tokens {
            self.counts.too_short += 1;
        } else if cfg.max_tokens.is_some_and(|m| tokens.len() > m) {
            self.counts.too_long += 1;
        } else if max_pairs(&tokens) < MIN_SWAPS {
            self.counts.too_few_distinct += 1;
        } else {
            self.sentences.push(tokens.join(" "));
        }
    }

    fn finish(self, cfg: &RealFakeConfig) -> Generated {
        let Pool {
            sentences,
            mut counts,
        } = self;
        counts.usable = sentences.len();
        let target = cfg.num_examples.map_or(usize::MAX, |n| n & !1);
        let mut order: Vec<usize> = (0..sentences.len()).collect();
        Rng::derive(cfg.seed, &["realfake".into(), "select".into()]).shuffle(&mut order);
        let mut swap_rng = Rng::derive(cfg.seed, &["realfake".into(), "swap".into()]);
        let mut kept: Vec<(usize, Vec<(usize, usize)>)> = Vec::new();
        for i in order {
            if kept.len() >= target {
                break;
            }
            counts.examined += 1;
            let tokens: Vec<&str> = sentences[i].split(' ').collect();
            match draw_swaps(&tokens, &mut swap_rng) {
                Some(swaps) => kept.push((i, swaps)),
                None => counts.unswappable += 1,
            }
        }
        kept.truncate(kept.len() & !1);
        counts.used = kept.len();
        let dev_len = 2 * ((kept.len() as f64 * cfg.dev_fraction / 2.0).floor() as usize);
        let train_part = kept.split_off(dev_len);
        let build = |part: Vec<(usize, Vec<(usize, usize)>)>, split: &str| {
            let half = part.len() / 2;
            let mut labels: Vec<RealFakeLabel> = std::iter::repeat_n(RealFakeLabel::Fake, half)
                .chain(std::iter::repeat_n(RealFakeLabel::Real, part.len() - half))
                .collect();
            Rng::derive(
                cfg.seed,
                &["realfake".into(), "labels".into(), split.into()],
            )
            .shuffle(&mut labels);
            part.into_iter()
                .zip(labels)
                .map(|((i, swaps), label)| {
                    let source = sentences[i].clone();
                    match label {
                        RealFakeLabel::Real => RealFakeExample {
                            sentence: source.clone(),
                            label,
                            source,
                            swaps: Vec::new(),
                        },
                        RealFakeLabel::Fake => RealFakeExample {
                            sentence: apply_swaps(&source, &swaps),
                            label,
                            source,
                            swaps,
                        },
                    }
                })
                .collect::<Vec<_>>()
        };
        let dev = build(kept, "dev");
        let train = build(train_part, "train");
        Generated { train, dev, counts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked() {
        let ok = RealFakeConfig::default();
        assert!(ok.validate().is_ok());
        for bad in [
            RealFakeConfig {
                min_tokens: 3,
                ..ok.clone()
            },
            RealFakeConfig {
                dev_fraction: 1.0,
                ..ok.clone()
            },
            RealFakeConfig {
                dev_fraction: f64::NAN,
                ..ok.clone()
            },
            RealFakeConfig {
                max_tokens: Some(3),
                ..ok.clone()
            },
            RealFakeConfig {
                num_examples: Some(1),
                ..ok.clone()
            },
        ] {
            assert!(matches!(bad.validate(), Err(RealFakeError::Config(_))));
        }
        let parsed: Result<RealFakeConfig, _> = serde_json::from_str(r#"{"seeed": 1}"#);
        assert!(parsed.is_err());
        let parsed: RealFakeConfig = serde_json::from_str(r#"{"seed": 7}"#).unwrap();
        assert_eq!(parsed.seed, 7);
        assert_eq!(parsed.min_tokens, 4);
    }

    #[test]
    fn task_labels_match_label_enum() {
        let task = realfake_task();
        assert_eq!(task.label_index("fake"), Some(RealFakeLabel::Fake.index()));
        assert_eq!(task.label_index("real"), Some(RealFakeLabel::Real.index()));
    }
}
