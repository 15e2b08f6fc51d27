//! BERT WordPiece tokenization on top of the `tokenizers` crate.
//!
//! A [`BertTokenizer`] is built either from a BERT `vocab.txt` with an explicit [`Casing`]
//! (the same normalizer, pre-tokenizer and WordPiece model as Hugging Face's `BertTokenizerFast`)
//! or from a Hugging Face `tokenizer.json`, whose own padding and truncation are switched off.
//! Special tokens, truncation and padding are always ours:
//!
//! * a single text becomes `[CLS] a [SEP]`, a pair `[CLS] a [SEP] b [SEP]` with token type 0 for
//!   `[CLS] a [SEP]` and 1 for `b [SEP]`;
//! * an empty second text (`Some("")`) is a single sequence, as in BERT's `run_classifier.py`
//!   (`if example.text_b:`) and in `transformers`;
//! * sequences longer than [`EncodeOptions::max_seq_len`] are cut with BERT's `_truncate_seq_pair`
//!   ([`TruncationStyle::Bert`], the default) or with the arithmetic of Hugging Face's
//!   `longest_first` ([`TruncationStyle::HuggingFace`]); the two differ only when the token
//!   budget of a pair is odd, both parts must be cut and the second part is at least as long as
//!   the first: BERT leaves the extra token to the first part, Hugging Face to the second;
//! * a [`Batch`] is padded with `[PAD]` to its longest row, or to a fixed length.
//!
//! ```no_run
//! use stilts_data::tokenize::{BertTokenizer, Casing, EncodeOptions};
//! # fn main() -> Result<(), stilts_data::tokenize::TokenizeError> {
//! let tokenizer = BertTokenizer::from_vocab("models/bert-base-uncased/vocab.txt", Casing::Uncased)?
//!     .with_options(EncodeOptions { max_seq_len: 128, ..EncodeOptions::default() })?;
//! let batch = tokenizer.encode_batch(&[
//!     ("The cat sat on the mat.", Some("A cat was sitting.")),
//!     ("A single sentence.", None),
//! ])?;
//! assert_eq!(batch.input_ids.len(), batch.batch_size * batch.seq_len);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs;
use std::path::{Path, PathBuf};

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{AddedToken, NormalizerWrapper, Tokenizer};

pub use crate::batch::{
    Batch, BatchRow, EncodeOptions, Encoding, Padding, TruncationStyle, pad_batch,
};

/// The classification token that starts every sequence.
pub const CLS: &str = "[CLS]";
/// The separator after each part.
pub const SEP: &str = "[SEP]";
/// The padding token.
pub const PAD: &str = "[PAD]";
/// The token for words WordPiece cannot split.
pub const UNK: &str = "[UNK]";
/// The masked-language-model token; optional in a vocabulary.
pub const MASK: &str = "[MASK]";
/// The prefix WordPiece puts on word continuations.
pub const CONTINUING_SUBWORD_PREFIX: &str = "##";
/// Words longer than this many characters become `[UNK]`, as in BERT.
pub const MAX_INPUT_CHARS_PER_WORD: usize = 100;
/// BERT's default `max_seq_length` for fine-tuning.
pub const DEFAULT_MAX_SEQ_LEN: usize = 128;

/// Errors from building a tokenizer or encoding text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizeError {
    /// The vocabulary or `tokenizer.json` could not be read (for instance, it does not exist).
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The `vocab.txt` is not valid UTF-8, is empty, or has blank or repeated tokens.
    #[error("{}: malformed vocabulary: {reason}", path.display())]
    MalformedVocab {
        /// The vocabulary file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The `tokenizer.json` could not be parsed as a tokenizer.
    #[error("{}: malformed tokenizer.json: {reason}", path.display())]
    MalformedTokenizerJson {
        /// The `tokenizer.json`.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// One of `[CLS]`, `[SEP]`, `[PAD]`, `[UNK]` is not in the vocabulary.
    #[error("{}: special token {token} is missing from the vocabulary", path.display())]
    MissingSpecialToken {
        /// The vocabulary or `tokenizer.json`.
        path: PathBuf,
        /// The missing token.
        token: &'static str,
    },
    /// `max_seq_len` cannot hold `[CLS] [SEP] [SEP]`.
    #[error("max_seq_len {max_seq_len} is too small: it must be at least 3")]
    MaxSeqLenTooSmall {
        /// The length asked for.
        max_seq_len: usize,
    },
    /// A fixed padding length shorter than `max_seq_len` could not hold every encoding.
    #[error("fixed padding length {len} is shorter than max_seq_len {max_seq_len}")]
    FixedPaddingTooShort {
        /// The fixed padding length.
        len: usize,
        /// The most tokens in an encoding.
        max_seq_len: usize,
    },
    /// No tokenizer file where one was looked for.
    #[error("{}: no tokenizer (tokenizer.json or vocab.txt)", path.display())]
    Missing {
        /// The directory or file looked at.
        path: PathBuf,
    },
    /// The `tokenizers` pipeline failed on a text.
    #[error("tokenization failed: {source}")]
    Encode {
        /// The pipeline's error.
        #[source]
        source: tokenizers::Error,
    },
}

/// Whether the vocabulary keeps case (and accents) or was built from lowercased,
/// accent-stripped text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Casing {
    /// Keep case and accents (`bert-base-cased`, `do_lower_case=False`).
    Cased,
    /// Lowercase and strip accents (`bert-base-uncased`, `do_lower_case=True`).
    Uncased,
}

impl Casing {
    /// Whether text is lowercased (and accents stripped) before WordPiece.
    pub fn lowercase(self) -> bool {
        matches!(self, Casing::Uncased)
    }

    /// Guesses the casing of a `vocab.txt`; see [`Casing::guess_from_tokens`].
    pub fn guess_from_vocab(path: impl AsRef<Path>) -> Result<Casing, TokenizeError> {
        let text = read_vocab(path.as_ref())?;
        Ok(Casing::guess_from_tokens(text.lines().map(str::trim_end)))
    }

    /// Guesses the casing of a vocabulary: [`Casing::Cased`] when at least one in a thousand of
    /// its ordinary tokens (those not written `[LIKE_THIS]`) changes under lowercasing.
    pub fn guess_from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Casing {
        let (mut ordinary, mut with_upper) = (0usize, 0usize);
        for token in tokens {
            if token.len() > 2 && token.starts_with('[') && token.ends_with(']') {
                continue;
            }
            ordinary += 1;
            if token.to_lowercase() != token {
                with_upper += 1;
            }
        }
        if with_upper > 0 && with_upper * 1000 >= ordinary {
            Casing::Cased
        } else {
            Casing::Uncased
        }
    }
}

/// The ids of the special tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `[CLS]`, first of every encoding.
    pub cls: u32,
    /// `[SEP]`, after each text.
    pub sep: u32,
    /// `[PAD]`, filling rows up to the batch's length.
    pub pad: u32,
    /// `[UNK]`, for words WordPiece cannot split.
    pub unk: u32,
    /// `[MASK]`, when the vocabulary has it.
    pub mask: Option<u32>,
}

/// A BERT tokenizer: WordPiece from the `tokenizers` crate, BERT's special tokens, truncation
/// and padding.
#[derive(Debug, Clone)]
pub struct BertTokenizer {
    inner: Tokenizer,
    special: SpecialTokens,
    casing: Option<Casing>,
    options: EncodeOptions,
}

impl BertTokenizer {
    /// Builds BERT's pipeline over a `vocab.txt` (one token per line, id = line number): the
    /// BERT normalizer (clean text, space around CJK characters, and for [`Casing::Uncased`]
    /// lowercasing and accent stripping), the BERT pre-tokenizer, and WordPiece with `[UNK]`,
    /// the `##` prefix and words of at most 100 characters. `[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`
    /// and `[MASK]` (when present) are matched whole in the input text, as by `BertTokenizerFast`.
    pub fn from_vocab(path: impl AsRef<Path>, casing: Casing) -> Result<Self, TokenizeError> {
        let path = path.as_ref();
        let text = read_vocab(path)?;
        let vocab =
            WordPiece::read_bytes(text.as_bytes()).map_err(|e| TokenizeError::MalformedVocab {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let lookup = |token: &'static str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| TokenizeError::MissingSpecialToken {
                    path: path.to_path_buf(),
                    token,
                })
        };
        let special = SpecialTokens {
            cls: lookup(CLS)?,
            sep: lookup(SEP)?,
            pad: lookup(PAD)?,
            unk: lookup(UNK)?,
            mask: vocab.get(MASK).copied(),
        };
        let added: Vec<AddedToken> = [PAD, UNK, CLS, SEP, MASK]
            .into_iter()
            .filter(|token| vocab.contains_key(*token))
            .map(|token| AddedToken::from(token, true))
            .collect();
        let model = WordPiece::builder()
            .vocab(vocab)
            .unk_token(UNK.to_string())
            .continuing_subword_prefix(CONTINUING_SUBWORD_PREFIX.to_string())
            .max_input_chars_per_word(MAX_INPUT_CHARS_PER_WORD)
            .build()
            .map_err(|e| TokenizeError::MalformedVocab {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let mut inner = Tokenizer::new(model);
        inner
            .with_normalizer(Some(BertNormalizer::new(
                true,
                true,
                None,
                casing.lowercase(),
            )))
            .with_pre_tokenizer(Some(BertPreTokenizer))
            .with_decoder(Some(WordPieceDecoder::new(
                CONTINUING_SUBWORD_PREFIX.to_string(),
                true,
            )));
        inner.add_special_tokens(&added);
        Ok(BertTokenizer {
            inner,
            special,
            casing: Some(casing),
            options: EncodeOptions::default(),
        })
    }

    /// Loads a Hugging Face `tokenizer.json` and keeps its normalizer, pre-tokenizer, model and
    /// added tokens, but disables its padding and truncation (MiniLM's, for one, pads to 128)
    /// and never runs its post-processor: special tokens, truncation and padding follow
    /// [`EncodeOptions`].
    pub fn from_tokenizer_json(path: impl AsRef<Path>) -> Result<Self, TokenizeError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|source| TokenizeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let malformed = |e: tokenizers::Error| TokenizeError::MalformedTokenizerJson {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut inner = Tokenizer::from_bytes(&bytes).map_err(malformed)?;
        inner.with_padding(None);
        inner.with_truncation(None).map_err(malformed)?;
        let lookup = |token: &'static str| {
            inner
                .token_to_id(token)
                .ok_or_else(|| TokenizeError::MissingSpecialToken {
                    path: path.to_path_buf(),
                    token,
                })
        };
        let special = SpecialTokens {
            cls: lookup(CLS)?,
            sep: lookup(SEP)?,
            pad: lookup(PAD)?,
            unk: lookup(UNK)?,
            mask: inner.token_to_id(MASK),
        };
        let casing = match inner.get_normalizer() {
            Some(NormalizerWrapper::BertNormalizer(n)) if n.lowercase => Some(Casing::Uncased),
            Some(NormalizerWrapper::BertNormalizer(_)) => Some(Casing::Cased),
            _ => None,
        };
        Ok(BertTokenizer {
            inner,
            special,
            casing,
            options: EncodeOptions::default(),
        })
    }

    /// Replaces the encoding options after checking them with [`EncodeOptions::validate`].
    pub fn with_options(mut self, options: EncodeOptions) -> Result<Self, TokenizeError> {
        options.validate()?;
        self.options = options;
        Ok(self)
    }

    /// The encoding options.
    pub fn options(&self) -> &EncodeOptions {
        &self.options
    }

    /// The casing the tokenizer was built with; for a `tokenizer.json`, read from its BERT
    /// normalizer (`None` when it has another normalizer).
    pub fn casing(&self) -> Option<Casing> {
        self.casing
    }

    /// The ids of `[CLS]`, `[SEP]`, `[PAD]`, `[UNK]` and `[MASK]`.
    pub fn special_tokens(&self) -> SpecialTokens {
        self.special
    }

    /// The number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a token, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token with an id, if any.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The underlying `tokenizers` pipeline (without padding or truncation).
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// The WordPiece tokens of a text, without special tokens or truncation.
    pub fn tokenize(&self, text: &str) -> Result<Vec<String>, TokenizeError> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|source| TokenizeError::Encode { source })?;
        Ok(encoding.get_tokens().to_vec())
    }

    /// The WordPiece ids of a text, without special tokens or truncation.
    pub fn wordpiece_ids(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|source| TokenizeError::Encode { source })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Encodes `[CLS] a [SEP]`, or `[CLS] a [SEP] b [SEP]` when `b` is a non-empty text,
    /// truncated to `max_seq_len`.
    pub fn encode(&self, a: &str, b: Option<&str>) -> Result<Encoding, TokenizeError> {
        let ids_a = self.wordpiece_ids(a)?;
        let ids_b = match b.filter(|b| !b.is_empty()) {
            Some(b) => Some(self.wordpiece_ids(b)?),
            None => None,
        };
        Ok(self.assemble(ids_a, ids_b))
    }

    /// Encodes many examples (in parallel, through `tokenizers`), each as [`BertTokenizer::encode`].
    pub fn encode_all(
        &self,
        inputs: &[(&str, Option<&str>)],
    ) -> Result<Vec<Encoding>, TokenizeError> {
        encode_pairs(&self.inner, inputs, |a, b| self.assemble(a, b))
    }

    /// Encodes many examples and pads them into a [`Batch`].
    pub fn encode_batch(&self, inputs: &[(&str, Option<&str>)]) -> Result<Batch, TokenizeError> {
        Ok(self.collate(&self.encode_all(inputs)?))
    }

    /// Pads encodings with `[PAD]` (type 0, attention 0) to the longest one, or to the fixed
    /// length of [`Padding::Fixed`] (or the longest encoding, if that is longer).
    pub fn collate(&self, encodings: &[Encoding]) -> Batch {
        let fixed = match self.options.padding {
            Padding::Longest => None,
            Padding::Fixed(len) => Some(len),
        };
        pad_batch(encodings, self.special.pad, fixed)
    }

    fn assemble(&self, mut a: Vec<u32>, b: Option<Vec<u32>>) -> Encoding {
        let SpecialTokens { cls, sep, .. } = self.special;
        let max_seq_len = self.options.max_seq_len;
        if !self.options.special_tokens {
            return self.assemble_plain(a, b);
        }
        match b {
            None => {
                let budget = max_seq_len.saturating_sub(2);
                let tokens_removed = a.len().saturating_sub(budget);
                a.truncate(budget);
                let mut ids = Vec::with_capacity(a.len() + 2);
                ids.push(cls);
                ids.extend_from_slice(&a);
                ids.push(sep);
                Encoding {
                    type_ids: vec![0; ids.len()],
                    ids,
                    tokens_removed,
                }
            }
            Some(mut b) => {
                let budget = max_seq_len.saturating_sub(3);
                let tokens_removed = self
                    .options
                    .truncation
                    .truncate_pair(&mut a, &mut b, budget);
                let mut ids = Vec::with_capacity(a.len() + b.len() + 3);
                ids.push(cls);
                ids.extend_from_slice(&a);
                ids.push(sep);
                ids.extend_from_slice(&b);
                ids.push(sep);
                let mut type_ids = vec![0; a.len() + 2];
                type_ids.resize(ids.len(), 1);
                Encoding {
                    ids,
                    type_ids,
                    tokens_removed,
                }
            }
        }
    }
}

impl BertTokenizer {
    /// The pieces alone, `a` then `b` (types 0 and 1), cut to `max_seq_len` as pairs are cut.
    fn assemble_plain(&self, mut a: Vec<u32>, b: Option<Vec<u32>>) -> Encoding {
        let budget = self.options.max_seq_len;
        match b {
            None => {
                let tokens_removed = a.len().saturating_sub(budget);
                a.truncate(budget);
                Encoding {
                    type_ids: vec![0; a.len()],
                    ids: a,
                    tokens_removed,
                }
            }
            Some(mut b) => {
                let tokens_removed = self
                    .options
                    .truncation
                    .truncate_pair(&mut a, &mut b, budget);
                let mut type_ids = vec![0; a.len()];
                type_ids.resize(a.len() + b.len(), 1);
                a.extend_from_slice(&b);
                Encoding {
                    ids: a,
                    type_ids,
                    tokens_removed,
                }
            }
        }
    }
}

/// Runs every text of `inputs` through `inner` in one parallel batch (no special tokens, no
/// truncation) and hands each example's pieces, `a` and `b` (absent for a missing or empty
/// second text), to `assemble`: the family's special tokens and truncation.
pub(crate) fn encode_pairs(
    inner: &Tokenizer,
    inputs: &[(&str, Option<&str>)],
    assemble: impl Fn(Vec<u32>, Option<Vec<u32>>) -> Encoding,
) -> Result<Vec<Encoding>, TokenizeError> {
    let mut texts = Vec::with_capacity(inputs.len() * 2);
    for &(a, b) in inputs {
        texts.push(a);
        if let Some(b) = b.filter(|b| !b.is_empty()) {
            texts.push(b);
        }
    }
    let mut pieces = inner
        .encode_batch_fast(texts, false)
        .map_err(|source| TokenizeError::Encode { source })?
        .into_iter()
        .map(|encoding| encoding.get_ids().to_vec());
    let mut encodings = Vec::with_capacity(inputs.len());
    for &(_, b) in inputs {
        let ids_a = pieces.next().unwrap_or_default();
        let ids_b = b
            .filter(|b| !b.is_empty())
            .map(|_| pieces.next().unwrap_or_default());
        encodings.push(assemble(ids_a, ids_b));
    }
    Ok(encodings)
}

fn read_vocab(path: &Path) -> Result<String, TokenizeError> {
    let bytes = fs::read(path).map_err(|source| TokenizeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let malformed = |reason: String| TokenizeError::MalformedVocab {
        path: path.to_path_buf(),
        reason,
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        malformed(format!(
            "not valid UTF-8 at byte {}",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let mut count = 0usize;
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let token = line.trim_end();
        if token.is_empty() {
            return Err(malformed(format!("line {} is blank", index + 1)));
        }
        match first_line.entry(token) {
            Entry::Occupied(first) => {
                return Err(malformed(format!(
                    "token `{token}` on line {} repeats line {}",
                    index + 1,
                    first.get()
                )));
            }
            Entry::Vacant(slot) => {
                slot.insert(index + 1);
            }
        }
        count += 1;
    }
    if count == 0 {
        return Err(malformed("no tokens".to_string()));
    }
    if u32::try_from(count).is_err() {
        return Err(malformed(format!("{count} tokens do not fit u32 ids")));
    }
    Ok(text)
}
