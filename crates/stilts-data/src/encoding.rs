//! Input encodings: how an example's texts become the ids an encoder reads.
//!
//! Each tokenizer family implements [`InputEncoder`]: BERT's WordPiece pairs with segment ids,
//! GPT's BPE with start/delimiter/extract tokens, ELMo's character ids per word
//! ([`crate::chars::ElmoTokenizer`], 50 ids a word, flattened). [`Tokenizer`] is the closed set of families as one value, found in a
//! model directory or named by a file through [`stilts_io::files::TokenizerFiles`], the one
//! discovery of tokenizer files.
//!
//! A pair of texts is fed to the encoder as its [`PairMode`] says: jointly (one sequence, the
//! default), separately (two sequences, for the head's `[u; v; |u-v|; u*v]`), or jointly in
//! both orders (two sequences, summed by the head). [`Tokenizer::encode_views`] makes the
//! sequences (the *views*) of every example.
//!
//! ```no_run
//! use stilts_data::encoding::{PairMode, Tokenizer};
//! # fn main() -> Result<(), stilts_data::tokenize::TokenizeError> {
//! let tokenizer = Tokenizer::at("models/all-MiniLM-L6-v2".as_ref())?.with_max_seq_len(128)?;
//! let views = tokenizer.encode_views(&[("A cat sat.", Some("A cat was sitting."))], PairMode::Joint)?;
//! assert_eq!(views.len(), 1);
//! # Ok(()) }
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use stilts_io::files::TokenizerFiles;

use crate::bpe::GptTokenizer;
use crate::chars::{ElmoTokenizer, N_CHARACTERS};
use crate::tokenize::{Batch, BertTokenizer, Casing, EncodeOptions, Encoding, TokenizeError};

/// How the two texts of a pair are fed to the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairMode {
    /// One sequence holding both texts (BERT's `[CLS] a [SEP] b [SEP]`).
    #[default]
    Joint,
    /// Each text alone; the head reads `[u; v; |u - v|; u * v]` of the two representations
    /// (the paper's ELMo setup, after Conneau et al. 2017).
    Separate,
    /// Both orders, `(a, b)` and `(b, a)`, each jointly; the head reads the sum of the two
    /// representations (Radford et al. 2018 for similarity tasks).
    BothOrders,
}

impl PairMode {
    /// Sequences per pair example.
    pub fn views(self) -> usize {
        match self {
            PairMode::Joint => 1,
            PairMode::Separate | PairMode::BothOrders => 2,
        }
    }

    /// Whether this is the default ([`PairMode::Joint`]).
    pub fn is_joint(&self) -> bool {
        *self == PairMode::Joint
    }
}

/// The contract of a tokenizer family: texts to unpadded encodings, encodings to a padded
/// batch.
pub trait InputEncoder {
    /// Encodes each `(a, b)` with the family's special tokens, truncated to
    /// [`InputEncoder::max_seq_len`]; `b` absent (or empty) is a single text.
    fn encode_all(&self, inputs: &[(&str, Option<&str>)]) -> Result<Vec<Encoding>, TokenizeError>;

    /// Pads encodings to the longest into one batch.
    fn collate(&self, encodings: &[Encoding]) -> Batch;

    /// Number of token ids (the embedding table must cover them).
    fn vocab_size(&self) -> usize;

    /// The most tokens in an encoding, special tokens included.
    fn max_seq_len(&self) -> usize;

    /// The fewest tokens `max_seq_len` may be: the special tokens of a pair.
    fn min_seq_len(&self) -> usize;
}

impl InputEncoder for BertTokenizer {
    fn encode_all(&self, inputs: &[(&str, Option<&str>)]) -> Result<Vec<Encoding>, TokenizeError> {
        BertTokenizer::encode_all(self, inputs)
    }

    fn collate(&self, encodings: &[Encoding]) -> Batch {
        BertTokenizer::collate(self, encodings)
    }

    fn vocab_size(&self) -> usize {
        BertTokenizer::vocab_size(self)
    }

    fn max_seq_len(&self) -> usize {
        self.options().max_seq_len
    }

    /// `[CLS] [SEP] [SEP]`.
    fn min_seq_len(&self) -> usize {
        3
    }
}

impl InputEncoder for ElmoTokenizer {
    fn encode_all(&self, inputs: &[(&str, Option<&str>)]) -> Result<Vec<Encoding>, TokenizeError> {
        Ok(ElmoTokenizer::encode_all(self, inputs))
    }

    fn collate(&self, encodings: &[Encoding]) -> Batch {
        ElmoTokenizer::collate(self, encodings)
    }

    fn vocab_size(&self) -> usize {
        N_CHARACTERS
    }

    fn max_seq_len(&self) -> usize {
        ElmoTokenizer::max_seq_len(self)
    }

    /// `<S> word </S>`.
    fn min_seq_len(&self) -> usize {
        3
    }
}

impl InputEncoder for GptTokenizer {
    fn encode_all(&self, inputs: &[(&str, Option<&str>)]) -> Result<Vec<Encoding>, TokenizeError> {
        GptTokenizer::encode_all(self, inputs)
    }

    fn collate(&self, encodings: &[Encoding]) -> Batch {
        GptTokenizer::collate(self, encodings)
    }

    fn vocab_size(&self) -> usize {
        GptTokenizer::vocab_size(self)
    }

    fn max_seq_len(&self) -> usize {
        GptTokenizer::max_seq_len(self)
    }

    /// `start delimiter extract`.
    fn min_seq_len(&self) -> usize {
        3
    }
}

/// A tokenizer of any family.
#[derive(Debug, Clone)]
pub enum Tokenizer {
    /// BERT's WordPiece (a `vocab.txt`, or a `tokenizer.json` with BERT's special tokens).
    WordPiece(BertTokenizer),
    /// OpenAI GPT's BPE (a vocabulary and merges, or a `tokenizer.json` with a BPE model).
    Bpe(GptTokenizer),
    /// ELMo's character ids per word (named by the model's options file).
    Chars(ElmoTokenizer),
}

impl Tokenizer {
    /// Builds the tokenizer of `files`: a `tokenizer.json`, or a WordPiece `vocab.txt` lowercased
    /// as its `tokenizer_config.json`'s `do_lower_case` says, else as its vocabulary suggests
    /// ([`Casing::guess_from_vocab`]).
    pub fn load(files: &TokenizerFiles) -> Result<Tokenizer, TokenizeError> {
        Ok(match files {
            TokenizerFiles::TokenizerJson(path)
                if json_model_type(path).as_deref() == Some("BPE") =>
            {
                Tokenizer::Bpe(GptTokenizer::from_tokenizer_json(path)?)
            }
            TokenizerFiles::TokenizerJson(path) => {
                Tokenizer::WordPiece(BertTokenizer::from_tokenizer_json(path)?)
            }
            TokenizerFiles::WordPiece { vocab, config } => {
                let casing = match config.as_deref().and_then(do_lower_case) {
                    Some(true) => Casing::Uncased,
                    Some(false) => Casing::Cased,
                    None => Casing::guess_from_vocab(vocab)?,
                };
                Tokenizer::WordPiece(BertTokenizer::from_vocab(vocab, casing)?)
            }
            TokenizerFiles::Bpe { vocab, merges } => {
                Tokenizer::Bpe(GptTokenizer::from_files(vocab, merges)?)
            }
            TokenizerFiles::ElmoCharacters(_) => Tokenizer::Chars(ElmoTokenizer::default()),
        })
    }

    /// The tokenizer a path names: a model directory's, or a single tokenizer file.
    pub fn at(path: &Path) -> Result<Tokenizer, TokenizeError> {
        let files =
            TokenizerFiles::at(path).map_err(|e| TokenizeError::Missing { path: e.path })?;
        Tokenizer::load(&files)
    }

    /// The same tokenizer with another `max_seq_len` (checked against the family's minimum).
    pub fn with_max_seq_len(self, max_seq_len: usize) -> Result<Tokenizer, TokenizeError> {
        match self {
            Tokenizer::WordPiece(t) => {
                let options = EncodeOptions {
                    max_seq_len,
                    ..*t.options()
                };
                Ok(Tokenizer::WordPiece(t.with_options(options)?))
            }
            Tokenizer::Bpe(t) => Ok(Tokenizer::Bpe(t.with_max_seq_len(max_seq_len)?)),
            Tokenizer::Chars(t) => Ok(Tokenizer::Chars(t.with_max_seq_len(max_seq_len)?)),
        }
    }

    /// The same tokenizer without the family's special tokens (`[CLS]`/`[SEP]`, GPT's
    /// start/delimiter/extract): the pieces alone, as Hugging Face's
    /// `add_special_tokens=False` gives them. ELMo's sentence boundaries are part of its input
    /// and stay.
    pub fn without_special_tokens(self) -> Tokenizer {
        match self {
            Tokenizer::WordPiece(t) => {
                let options = EncodeOptions {
                    special_tokens: false,
                    ..*t.options()
                };
                // Only the flag changes; the options were valid before.
                match t.clone().with_options(options) {
                    Ok(plain) => Tokenizer::WordPiece(plain),
                    Err(_) => Tokenizer::WordPiece(t),
                }
            }
            Tokenizer::Bpe(t) => Tokenizer::Bpe(t.without_special_tokens()),
            Tokenizer::Chars(t) => Tokenizer::Chars(t),
        }
    }

    /// The tokens of an encoding, one per token: the id's token, or for ELMo one word per 50
    /// character ids (`<S>` and `</S>` included).
    pub fn tokens(&self, encoding: &Encoding) -> Vec<String> {
        match self {
            Tokenizer::Chars(_) => encoding
                .ids
                .chunks(crate::chars::MAX_CHARACTERS_PER_TOKEN)
                .map(crate::chars::decode_word)
                .collect(),
            _ => encoding
                .ids
                .iter()
                .map(|&id| self.id_to_token(id).unwrap_or_default())
                .collect(),
        }
    }

    /// The token of an id (ELMo's ids are characters, not tokens: `None`).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        match self {
            Tokenizer::WordPiece(t) => t.id_to_token(id),
            Tokenizer::Bpe(t) => t.id_to_token(id),
            Tokenizer::Chars(_) => None,
        }
    }

    /// The BERT tokenizer, for WordPiece-specific settings.
    pub fn as_wordpiece(&self) -> Option<&BertTokenizer> {
        match self {
            Tokenizer::WordPiece(t) => Some(t),
            Tokenizer::Bpe(_) | Tokenizer::Chars(_) => None,
        }
    }

    /// The GPT tokenizer, for BPE-specific settings.
    pub fn as_bpe(&self) -> Option<&GptTokenizer> {
        match self {
            Tokenizer::Bpe(t) => Some(t),
            Tokenizer::WordPiece(_) | Tokenizer::Chars(_) => None,
        }
    }

    fn encoder(&self) -> &dyn InputEncoder {
        match self {
            Tokenizer::WordPiece(t) => t,
            Tokenizer::Bpe(t) => t,
            Tokenizer::Chars(t) => t,
        }
    }

    /// The encodings of every example, one list per view (see [`PairMode`]): one view for
    /// [`PairMode::Joint`]; for the two-view modes, examples without a second text give the
    /// same single-text encoding in both views.
    pub fn encode_views(
        &self,
        inputs: &[(&str, Option<&str>)],
        mode: PairMode,
    ) -> Result<Vec<Vec<Encoding>>, TokenizeError> {
        match mode {
            PairMode::Joint => Ok(vec![self.encode_all(inputs)?]),
            PairMode::Separate => {
                let first: Vec<(&str, Option<&str>)> =
                    inputs.iter().map(|&(a, _)| (a, None)).collect();
                let second: Vec<(&str, Option<&str>)> = inputs
                    .iter()
                    .map(|&(a, b)| (b.filter(|b| !b.is_empty()).unwrap_or(a), None))
                    .collect();
                Ok(vec![self.encode_all(&first)?, self.encode_all(&second)?])
            }
            PairMode::BothOrders => {
                let swapped: Vec<(&str, Option<&str>)> = inputs
                    .iter()
                    .map(|&(a, b)| match b.filter(|b| !b.is_empty()) {
                        Some(b) => (b, Some(a)),
                        None => (a, None),
                    })
                    .collect();
                Ok(vec![self.encode_all(inputs)?, self.encode_all(&swapped)?])
            }
        }
    }
}

impl InputEncoder for Tokenizer {
    fn encode_all(&self, inputs: &[(&str, Option<&str>)]) -> Result<Vec<Encoding>, TokenizeError> {
        self.encoder().encode_all(inputs)
    }

    fn collate(&self, encodings: &[Encoding]) -> Batch {
        self.encoder().collate(encodings)
    }

    fn vocab_size(&self) -> usize {
        self.encoder().vocab_size()
    }

    fn max_seq_len(&self) -> usize {
        self.encoder().max_seq_len()
    }

    fn min_seq_len(&self) -> usize {
        self.encoder().min_seq_len()
    }
}

/// The model type (`WordPiece`, `BPE`, ...) of a `tokenizer.json`, when it parses.
fn json_model_type(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(value.get("model")?.get("type")?.as_str()?.to_owned())
}

/// `do_lower_case` of a `tokenizer_config.json`, when the file parses and has it.
fn do_lower_case(config: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(config).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("do_lower_case")?.as_bool()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(dir: &Path) -> Tokenizer {
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\nsat\ndog\nran\n";
        std::fs::write(dir.join("vocab.txt"), vocab).unwrap();
        Tokenizer::at(dir).unwrap().with_max_seq_len(16).unwrap()
    }

    #[test]
    fn views_follow_the_pair_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tiny(tmp.path());
        let inputs = [("the cat", Some("dog ran")), ("sat", None)];
        let ids = |views: &[Vec<Encoding>]| -> Vec<Vec<Vec<u32>>> {
            views
                .iter()
                .map(|v| v.iter().map(|e| e.ids.clone()).collect())
                .collect()
        };
        let joint = t.encode_views(&inputs, PairMode::Joint).unwrap();
        assert_eq!(ids(&joint), [[vec![2, 5, 6, 3, 8, 9, 3], vec![2, 7, 3]]]);
        let separate = t.encode_views(&inputs, PairMode::Separate).unwrap();
        assert_eq!(
            ids(&separate),
            [
                [vec![2, 5, 6, 3], vec![2, 7, 3]],
                [vec![2, 8, 9, 3], vec![2, 7, 3]]
            ]
        );
        let both = t.encode_views(&inputs, PairMode::BothOrders).unwrap();
        assert_eq!(ids(&both)[1], [vec![2, 8, 9, 3, 5, 6, 3], vec![2, 7, 3]]);
        assert_eq!(both[1][0].type_ids, [0, 0, 0, 0, 1, 1, 1]);
        assert!(t.clone().with_max_seq_len(2).is_err());
    }

    #[test]
    fn casing_comes_from_the_config_beside_the_vocabulary() {
        let tmp = tempfile::tempdir().unwrap();
        // An all-lowercase vocabulary guesses uncased; the config says cased.
        tiny(tmp.path());
        std::fs::write(
            tmp.path().join("tokenizer_config.json"),
            r#"{"do_lower_case": false}"#,
        )
        .unwrap();
        let t = Tokenizer::at(tmp.path()).unwrap();
        assert_eq!(t.as_wordpiece().unwrap().casing(), Some(Casing::Cased));
        let err = Tokenizer::at(&tmp.path().join("none")).unwrap_err();
        assert!(err.to_string().contains("no tokenizer"), "{err}");
    }
}
