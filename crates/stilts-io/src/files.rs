//! Which files of a model directory hold its tokenizer: the one place that knows the names
//! (training, prediction, evaluation, the hub download and the GLUE bundle all ask here).
//!
//! A directory's tokenizer is, in order of preference, a Hugging Face `tokenizer.json`, else a
//! WordPiece `vocab.txt` (with `tokenizer_config.json` beside it when present, for its casing),
//! else a BPE vocabulary and its merges: Hugging Face's `vocab.json` + `merges.txt`, or OpenAI's
//! original `encoder_bpe_40000.json` + `vocab_40000.bpe` (GPT). A single file names its kind by
//! its name: `*.json` is a `tokenizer.json` (or, named as a BPE vocabulary, that vocabulary with
//! its merges beside it, or an ELMo options file), anything else a WordPiece vocabulary.
//!
//! ELMo has no vocabulary: its character ids are fixed. Its options file (`options.json` or
//! `*_options.json` with a `char_cnn` section) stands for its tokenizer, so that a released ELMo
//! directory, and a stilts model trained from one, name theirs like every other model.

use std::path::{Path, PathBuf};

use crate::fs::{FsError, write_atomic};

/// A Hugging Face fast-tokenizer file.
pub const TOKENIZER_JSON: &str = "tokenizer.json";
/// A WordPiece vocabulary, one token per line.
pub const WORDPIECE_VOCAB: &str = "vocab.txt";
/// Hugging Face's tokenizer settings (`do_lower_case`, ...).
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
/// A BPE vocabulary (token to id), as Hugging Face names it.
pub const BPE_VOCAB: &str = "vocab.json";
/// BPE merges, as Hugging Face names them.
pub const BPE_MERGES: &str = "merges.txt";
/// OpenAI GPT's original vocabulary and merges (`finetune-transformer-lm`'s `model/`).
pub const OPENAI_BPE: (&str, &str) = ("encoder_bpe_40000.json", "vocab_40000.bpe");
/// The name an ELMo options file gets in a stilts model directory.
pub const ELMO_OPTIONS: &str = "elmo_options.json";

/// Every tokenizer file name a model directory may hold (what a hub download fetches when the
/// repository has it).
pub const TOKENIZER_FILES: &[&str] = &[
    WORDPIECE_VOCAB,
    TOKENIZER_JSON,
    TOKENIZER_CONFIG,
    BPE_VOCAB,
    BPE_MERGES,
];

/// The files of one tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerFiles {
    /// A Hugging Face `tokenizer.json`.
    TokenizerJson(PathBuf),
    /// A WordPiece `vocab.txt`, and `tokenizer_config.json` when one is beside it.
    WordPiece {
        /// The vocabulary.
        vocab: PathBuf,
        /// The settings file, for `do_lower_case`.
        config: Option<PathBuf>,
    },
    /// A BPE vocabulary (token to id) and its merges.
    Bpe {
        /// `vocab.json` or `encoder_bpe_40000.json`.
        vocab: PathBuf,
        /// `merges.txt` or `vocab_40000.bpe`.
        merges: PathBuf,
    },
    /// ELMo's character ids, described by the model's options file.
    ElmoCharacters(PathBuf),
}

/// Whether `path` is an ELMo options file: named `options.json` or `*_options.json`, with a
/// `char_cnn` section.
pub fn is_elmo_options(path: &Path) -> bool {
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "options.json" || n.ends_with("_options.json"));
    named
        && std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v.get("char_cnn").is_some())
}

/// No tokenizer where one was looked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: no tokenizer ({TOKENIZER_JSON}, {WORDPIECE_VOCAB}, {BPE_VOCAB} with {BPE_MERGES}, or an ELMo options file)", path.display())]
pub struct NoTokenizer {
    /// The directory or file looked at.
    pub path: PathBuf,
}

impl TokenizerFiles {
    /// The tokenizer of a model directory, if it has one.
    pub fn find(dir: &Path) -> Option<TokenizerFiles> {
        let json = dir.join(TOKENIZER_JSON);
        if json.is_file() {
            return Some(TokenizerFiles::TokenizerJson(json));
        }
        let vocab = dir.join(WORDPIECE_VOCAB);
        if vocab.is_file() {
            return Some(TokenizerFiles::WordPiece {
                vocab,
                config: Some(dir.join(TOKENIZER_CONFIG)).filter(|c| c.is_file()),
            });
        }
        let bpe = [(BPE_VOCAB, BPE_MERGES), OPENAI_BPE]
            .into_iter()
            .map(|(v, m)| (dir.join(v), dir.join(m)))
            .find(|(v, m)| v.is_file() && m.is_file())
            .map(|(vocab, merges)| TokenizerFiles::Bpe { vocab, merges });
        bpe.or_else(|| {
            let mut options: Vec<PathBuf> = std::fs::read_dir(dir)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| is_elmo_options(p))
                .collect();
            options.sort();
            options
                .into_iter()
                .next()
                .map(TokenizerFiles::ElmoCharacters)
        })
    }

    /// The tokenizer a path names: a directory's (see [`TokenizerFiles::find`]), or a single
    /// existing file by its name.
    pub fn at(path: &Path) -> Result<TokenizerFiles, NoTokenizer> {
        let missing = || NoTokenizer {
            path: path.to_path_buf(),
        };
        if path.is_dir() {
            return TokenizerFiles::find(path).ok_or_else(missing);
        }
        if !path.is_file() {
            return Err(missing());
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let merges = [(BPE_VOCAB, BPE_MERGES), OPENAI_BPE]
            .into_iter()
            .find(|(v, _)| *v == name)
            .and_then(|(_, m)| path.parent().map(|d| d.join(m)))
            .filter(|m| m.is_file());
        if let Some(merges) = merges {
            Ok(TokenizerFiles::Bpe {
                vocab: path.to_path_buf(),
                merges,
            })
        } else if is_elmo_options(path) {
            Ok(TokenizerFiles::ElmoCharacters(path.to_path_buf()))
        } else if path.extension().is_some_and(|e| e == "json") {
            Ok(TokenizerFiles::TokenizerJson(path.to_path_buf()))
        } else {
            let config = path
                .parent()
                .map(|d| d.join(TOKENIZER_CONFIG))
                .filter(|c| c.is_file());
            Ok(TokenizerFiles::WordPiece {
                vocab: path.to_path_buf(),
                config,
            })
        }
    }

    /// The file the tokenizer is built from (`tokenizer.json`, or the vocabulary).
    pub fn main_file(&self) -> &Path {
        match self {
            TokenizerFiles::TokenizerJson(p) | TokenizerFiles::ElmoCharacters(p) => p,
            TokenizerFiles::WordPiece { vocab, .. } | TokenizerFiles::Bpe { vocab, .. } => vocab,
        }
    }

    /// Each file with the name it has in a model directory.
    pub fn files(&self) -> Vec<(&'static str, &Path)> {
        match self {
            TokenizerFiles::TokenizerJson(p) => vec![(TOKENIZER_JSON, p.as_path())],
            TokenizerFiles::WordPiece { vocab, config } => {
                let mut v = vec![(WORDPIECE_VOCAB, vocab.as_path())];
                v.extend(config.as_deref().map(|c| (TOKENIZER_CONFIG, c)));
                v
            }
            TokenizerFiles::Bpe { vocab, merges } => {
                vec![(BPE_VOCAB, vocab.as_path()), (BPE_MERGES, merges.as_path())]
            }
            TokenizerFiles::ElmoCharacters(p) => vec![(ELMO_OPTIONS, p.as_path())],
        }
    }

    /// Copies the files into `dir` under their model-directory names (atomically; a file
    /// already there is left alone) and returns the copy.
    pub fn copy_into(&self, dir: &Path) -> Result<TokenizerFiles, FsError> {
        for (name, from) in self.files() {
            let dest = dir.join(name);
            if dest.exists() {
                continue;
            }
            let bytes = std::fs::read(from).map_err(FsError::on("read", from))?;
            write_atomic(&dest, &bytes)?;
        }
        Ok(TokenizerFiles::find(dir).unwrap_or_else(|| self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_prefers_json_and_copies_under_canonical_names() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        assert_eq!(TokenizerFiles::find(d), None);
        assert!(TokenizerFiles::at(&d.join("nope")).is_err());
        std::fs::write(d.join("my-vocab.txt"), "[PAD]\n").unwrap();
        std::fs::write(d.join(TOKENIZER_CONFIG), "{}").unwrap();
        let files = TokenizerFiles::at(&d.join("my-vocab.txt")).unwrap();
        assert_eq!(
            files,
            TokenizerFiles::WordPiece {
                vocab: d.join("my-vocab.txt"),
                config: Some(d.join(TOKENIZER_CONFIG)),
            }
        );
        let out = d.join("model");
        let copy = files.copy_into(&out).unwrap();
        assert_eq!(copy.main_file(), out.join(WORDPIECE_VOCAB));
        assert!(out.join(TOKENIZER_CONFIG).is_file());
        std::fs::write(d.join(TOKENIZER_JSON), "{}").unwrap();
        assert_eq!(
            TokenizerFiles::at(d).unwrap(),
            TokenizerFiles::TokenizerJson(d.join(TOKENIZER_JSON))
        );
    }

    #[test]
    fn an_elmo_options_file_stands_for_its_characters() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("elmo_2x1024_options.json"), r#"{"lstm": {}}"#).unwrap();
        assert_eq!(TokenizerFiles::find(d), None, "no char_cnn section");
        std::fs::write(d.join("elmo_2x1024_options.json"), r#"{"char_cnn": {}}"#).unwrap();
        let want = TokenizerFiles::ElmoCharacters(d.join("elmo_2x1024_options.json"));
        assert_eq!(TokenizerFiles::find(d), Some(want.clone()));
        assert_eq!(
            TokenizerFiles::at(&d.join("elmo_2x1024_options.json")).unwrap(),
            want
        );
        let copy = want.copy_into(&d.join("model")).unwrap();
        assert_eq!(copy.main_file(), d.join("model").join(ELMO_OPTIONS));
    }

    #[test]
    fn bpe_files_come_in_pairs_under_either_name() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join(OPENAI_BPE.0), "{}").unwrap();
        assert_eq!(TokenizerFiles::find(d), None, "merges are needed");
        std::fs::write(d.join(OPENAI_BPE.1), "#version: 0.2\n").unwrap();
        let want = TokenizerFiles::Bpe {
            vocab: d.join(OPENAI_BPE.0),
            merges: d.join(OPENAI_BPE.1),
        };
        assert_eq!(TokenizerFiles::find(d), Some(want.clone()));
        assert_eq!(TokenizerFiles::at(&d.join(OPENAI_BPE.0)).unwrap(), want);
        let copy = want.copy_into(&d.join("model")).unwrap();
        assert_eq!(copy.main_file(), d.join("model").join(BPE_VOCAB));
    }
}
