//! Seeded downsampling of a training split to at most `n` examples (the paper's 1k and 5k
//! regimes), recorded in a [`SampleManifest`] so that the exact subset can be re-selected later.
//!
//! Algorithm `stilts-downsample/v1` ([`ALGORITHM`]): the generator is
//! [`Rng::derive`]`(seed, ["downsample", stream])`; [`Rng::sample_indices`] (partial Fisher–Yates)
//! draws `n` distinct row positions of the split; the chosen examples are returned **in their
//! original file order**, so a subset reads like the file it came from and its order does not
//! depend on the draw. When `n` is at least the split's size, every example is kept and no
//! numbers are drawn.
//!
//! ```
//! use stilts_data::{Dataset, Example};
//! use stilts_data::sample::downsample;
//! let data = Dataset {
//!     task: "Toy".into(),
//!     split: "train".into(),
//!     path: "toy/train.tsv".into(),
//!     examples: (0..20)
//!         .map(|i| Example { id: i.to_string(), text_a: "s".into(), text_b: None, label: None })
//!         .collect(),
//!     skipped_unlabelled: 0,
//!     skipped_malformed: Vec::new(),
//!     sha256: "00".into(),
//! };
//! let (subset, manifest) = downsample(&data, 5, 1234, 0)?;
//! assert_eq!(subset.len(), 5);
//! assert_eq!(manifest.ids.len(), 5);
//! # Ok::<(), stilts_data::sample::SampleError>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dataset::{Dataset, Example, hex};
use crate::rng::Rng;

/// Name and version of the downsampling algorithm, recorded in every manifest.
pub const ALGORITHM: &str = "stilts-downsample/v1";

/// The purpose label of the downsampling stream: `derive(seed, ["downsample", stream])`.
pub const STREAM_PURPOSE: &str = "downsample";

/// Errors from downsampling and from sample manifests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SampleError {
    /// A sample of 0 examples was asked for.
    #[error("sample size must be at least 1")]
    ZeroSize,
    /// The split repeats an id, so a manifest of ids could not name the sample.
    #[error("{}: duplicate id `{id}`; a sample can only be recorded over unique ids", path.display())]
    DuplicateId {
        /// The split's file.
        path: PathBuf,
        /// The repeated id.
        id: String,
    },
    /// A manifest could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The manifest file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A manifest is not the JSON this version writes.
    #[error("{}: not a valid sample manifest: {source}", path.display())]
    Json {
        /// The manifest file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest's counts or id hash disagree with its ids.
    #[error("{}: inconsistent sample manifest: {message}", path.display())]
    Inconsistent {
        /// The manifest file, or the data file it was applied to.
        path: PathBuf,
        /// Which fields disagree.
        message: String,
    },
    /// The data file's hash is not the one the sample was drawn from.
    #[error(
        "{}: the data file differs from the one the sample was drawn from (sha256 {found}, manifest expects {expected})",
        path.display()
    )]
    SourceChanged {
        /// The data file.
        path: PathBuf,
        /// SHA-256 in the manifest.
        expected: String,
        /// SHA-256 of the file now.
        found: String,
    },
    /// The split loaded with another number of examples than the sample was drawn from.
    #[error(
        "{}: {found} examples loaded, but the sample was drawn from {expected} (were different load options used?)",
        path.display()
    )]
    PopulationChanged {
        /// The data file.
        path: PathBuf,
        /// The manifest's population.
        expected: usize,
        /// Examples loaded now.
        found: usize,
    },
    /// A manifest names an id the split does not have.
    #[error("{}: id `{id}` of the sample manifest is not in the data", path.display())]
    MissingId {
        /// The data file.
        path: PathBuf,
        /// The id.
        id: String,
    },
}

/// Which examples a downsampled split holds, and how they were chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleManifest {
    /// [`ALGORITHM`] at the time of drawing.
    pub algorithm: String,
    /// Name of the task the split belongs to.
    pub task: String,
    /// Name of the downsampled split.
    pub split: String,
    /// Where the split was read from; informational, never checked.
    pub source_path: String,
    /// SHA-256 of the split file's (decompressed) bytes, as in [`Dataset::sha256`].
    pub source_sha256: String,
    /// Number of examples in the split.
    pub population: usize,
    /// The `n` asked for.
    pub requested: usize,
    /// True when `requested >= population`: every example is kept.
    pub kept_all: bool,
    /// The seed of the draw.
    pub seed: u64,
    /// The restart index (or other stream number) the subset belongs to.
    pub stream: u64,
    /// SHA-256 (hex) of the chosen ids joined by `"\n"`.
    pub ids_sha256: String,
    /// The chosen ids, in original file order.
    pub ids: Vec<String>,
}

/// SHA-256 (hex) of `ids` joined by `"\n"`: the canonical fingerprint of a subset.
pub fn ids_sha256<S: AsRef<str>>(ids: &[S]) -> String {
    let mut h = Sha256::new();
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            h.update(b"\n");
        }
        h.update(id.as_ref().as_bytes());
    }
    hex(&h.finalize())
}

/// The row positions kept when drawing `n` of `population` rows with `(seed, stream)`, ascending.
/// Every position when `n >= population`.
pub fn downsample_indices(population: usize, n: usize, seed: u64, stream: u64) -> Vec<usize> {
    if n >= population {
        return (0..population).collect();
    }
    let mut rng = Rng::derive(seed, &[STREAM_PURPOSE.into(), stream.into()]);
    let mut chosen = rng.sample_indices(population, n);
    chosen.sort_unstable();
    chosen
}

/// Keep at most `n` examples of `data`, drawn without replacement with `(seed, stream)` (the
/// stream is typically the restart index), in original file order, with the manifest that
/// records the choice.
pub fn downsample(
    data: &Dataset,
    n: usize,
    seed: u64,
    stream: u64,
) -> Result<(Dataset, SampleManifest), SampleError> {
    if n == 0 {
        return Err(SampleError::ZeroSize);
    }
    let mut seen = HashSet::with_capacity(data.examples.len());
    for ex in &data.examples {
        if !seen.insert(ex.id.as_str()) {
            return Err(SampleError::DuplicateId {
                path: data.path.clone(),
                id: ex.id.clone(),
            });
        }
    }
    let population = data.examples.len();
    let examples: Vec<Example> = downsample_indices(population, n, seed, stream)
        .into_iter()
        .map(|i| data.examples[i].clone())
        .collect();
    let ids: Vec<String> = examples.iter().map(|e| e.id.clone()).collect();
    let manifest = SampleManifest {
        algorithm: ALGORITHM.to_owned(),
        task: data.task.clone(),
        split: data.split.clone(),
        source_path: data.path.display().to_string(),
        source_sha256: data.sha256.clone(),
        population,
        requested: n,
        kept_all: n >= population,
        seed,
        stream,
        ids_sha256: ids_sha256(&ids),
        ids,
    };
    Ok((with_examples(data, examples), manifest))
}

/// Re-select exactly the manifest's examples from `data`, in the manifest's order. Fails when the
/// file's hash or size differs from the manifest's, or when an id is missing.
pub fn apply_manifest(data: &Dataset, manifest: &SampleManifest) -> Result<Dataset, SampleError> {
    manifest
        .check()
        .map_err(|message| SampleError::Inconsistent {
            path: data.path.clone(),
            message,
        })?;
    if data.sha256 != manifest.source_sha256 {
        return Err(SampleError::SourceChanged {
            path: data.path.clone(),
            expected: manifest.source_sha256.clone(),
            found: data.sha256.clone(),
        });
    }
    if data.examples.len() != manifest.population {
        return Err(SampleError::PopulationChanged {
            path: data.path.clone(),
            expected: manifest.population,
            found: data.examples.len(),
        });
    }
    let by_id: HashMap<&str, &Example> = data.examples.iter().map(|e| (e.id.as_str(), e)).collect();
    let examples = manifest
        .ids
        .iter()
        .map(|id| {
            by_id
                .get(id.as_str())
                .map(|e| (*e).clone())
                .ok_or_else(|| SampleError::MissingId {
                    path: data.path.clone(),
                    id: id.clone(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(with_examples(data, examples))
}

impl SampleManifest {
    /// Write the manifest as pretty JSON, atomically (a temporary file in the same directory,
    /// then a rename).
    pub fn write(&self, path: &Path) -> Result<(), SampleError> {
        let mut json = serde_json::to_vec_pretty(self).map_err(|source| SampleError::Json {
            path: path.to_owned(),
            source,
        })?;
        json.push(b'\n');
        stilts_io::fs::write_atomic(path, &json).map_err(|e| SampleError::Io {
            path: e.path,
            source: e.source,
        })
    }

    /// Read a manifest and check that its counts and id hash agree with its ids.
    pub fn read(path: &Path) -> Result<Self, SampleError> {
        let bytes = std::fs::read(path).map_err(|source| SampleError::Io {
            path: path.to_owned(),
            source,
        })?;
        let manifest: SampleManifest =
            serde_json::from_slice(&bytes).map_err(|source| SampleError::Json {
                path: path.to_owned(),
                source,
            })?;
        manifest
            .check()
            .map_err(|message| SampleError::Inconsistent {
                path: path.to_owned(),
                message,
            })?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), String> {
        let hash = ids_sha256(&self.ids);
        if hash != self.ids_sha256 {
            return Err(format!(
                "ids hash to {hash}, but ids_sha256 is {}",
                self.ids_sha256
            ));
        }
        let expected = self.requested.min(self.population);
        if self.ids.len() != expected {
            return Err(format!(
                "{} ids, expected min(requested {}, population {}) = {expected}",
                self.ids.len(),
                self.requested,
                self.population
            ));
        }
        if self.kept_all != (self.requested >= self.population) {
            return Err(format!(
                "kept_all is {}, but requested {} and population {}",
                self.kept_all, self.requested, self.population
            ));
        }
        Ok(())
    }
}

fn with_examples(data: &Dataset, examples: Vec<Example>) -> Dataset {
    Dataset {
        task: data.task.clone(),
        split: data.split.clone(),
        path: data.path.clone(),
        examples,
        skipped_unlabelled: data.skipped_unlabelled,
        skipped_malformed: data.skipped_malformed.clone(),
        sha256: data.sha256.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_hash_is_sha256_of_newline_joined_ids() {
        assert_eq!(ids_sha256(&["a", "b"]), hex(&Sha256::digest(b"a\nb")),);
        assert_eq!(
            ids_sha256::<&str>(&[]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn indices_known_answer_and_order() {
        let got = downsample_indices(100, 10, 42, 0);
        assert_eq!(got, [2, 5, 17, 27, 57, 78, 85, 97, 98, 99]);
        assert_eq!(downsample_indices(3, 10, 42, 0), [0, 1, 2]);
    }
}
