//! Which files of a model directory hold its tokenizer: the one place that knows the names
//! (training, prediction, evaluation, the hub download and the GLUE bundle all ask here).
//!
//! A directory's tokenizer is, in order of preference, a Hugging Face `tokenizer.json`, else a
//! WordPiece `vocab.txt` (with `tokenizer_config.json` beside it when present, for its casing).
//! A single file names its kind by its name: `*.json` is a `tokenizer.json`, anything else a
//! WordPiece vocabulary.

use std::path::{Path, PathBuf};

use crate::fs::{FsError, write_atomic};

/// A Hugging Face fast-tokenizer file.
pub const TOKENIZER_JSON: &str = "tokenizer.json";
/// A WordPiece vocabulary, one token per line.
pub const WORDPIECE_VOCAB: &str = "vocab.txt";
/// Hugging Face's tokenizer settings (`do_lower_case`, ...).
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";

/// Every tokenizer file name a model directory may hold (what a hub download fetches when the
/// repository has it).
pub const TOKENIZER_FILES: &[&str] = &[WORDPIECE_VOCAB, TOKENIZER_JSON, TOKENIZER_CONFIG];

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
}

/// No tokenizer where one was looked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: no tokenizer ({} or {})", path.display(), TOKENIZER_JSON, WORDPIECE_VOCAB)]
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
        vocab.is_file().then(|| TokenizerFiles::WordPiece {
            vocab,
            config: Some(dir.join(TOKENIZER_CONFIG)).filter(|c| c.is_file()),
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
        if path.extension().is_some_and(|e| e == "json") {
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

    /// The file the tokenizer is built from (`tokenizer.json` or `vocab.txt`).
    pub fn main_file(&self) -> &Path {
        match self {
            TokenizerFiles::TokenizerJson(p) => p,
            TokenizerFiles::WordPiece { vocab, .. } => vocab,
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
}
