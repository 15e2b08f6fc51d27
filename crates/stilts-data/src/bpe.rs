//! OpenAI GPT's byte-pair encoding (Radford et al. 2018) on top of the `tokenizers` crate, with
//! the same ids as `transformers`' `OpenAIGPTTokenizer`: BERT's normaliser with lowercasing (and
//! accent stripping), BERT's pre-tokeniser, BPE with the `</w>` end-of-word suffix and `<unk>`
//! for characters outside the vocabulary.
//!
//! The vocabulary and merges come as OpenAI's original release names them
//! (`encoder_bpe_40000.json` + `vocab_40000.bpe`), as Hugging Face names them (`vocab.json` +
//! `merges.txt`, the same contents), or as one `tokenizer.json`.
//!
//! The original release tokenised with ftfy's `fix_text` and spaCy's English tokenizer before
//! BPE (`finetune-transformer-lm`'s `text_utils.py`); `transformers` replaced that with BERT's
//! basic tokenizer, and so does this module. The two agree on plain ASCII text split at spaces
//! and punctuation; they differ where spaCy keeps a token whole that BERT's splitter cuts (`n't`,
//! `'s`, URLs, e-mail addresses, hyphenated words) and on the Unicode repairs of ftfy (curly
//! quotes, mojibake). Models fine-tuned here read the ids this module makes.
//!
//! Fine-tuning inputs use three tokens appended to the vocabulary ([`GPT_SPECIAL_TOKENS`]): a
//! single text is `start a extract`, a pair `start a delimiter b extract`.

use std::path::{Path, PathBuf};

use tokenizers::decoders::bpe::BPEDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{AddedToken, Tokenizer};

use crate::tokenize::{Batch, Encoding, TokenizeError, TruncationStyle};

/// The unknown token of the released vocabulary (id 0).
pub const GPT_UNK: &str = "<unk>";
/// The suffix BPE puts on the last piece of a word.
pub const END_OF_WORD_SUFFIX: &str = "</w>";
/// The start, delimiter and extract tokens of Radford et al., appended to the vocabulary in
/// this order (ids `base`, `base + 1`, `base + 2`).
pub const GPT_SPECIAL_TOKENS: [&str; 3] = ["_start_", "_delimiter_", "_classify_"];

/// The ids of the fine-tuning tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GptSpecialTokens {
    /// Before the first text.
    pub start: u32,
    /// Between the two texts of a pair.
    pub delimiter: u32,
    /// Last: the position whose state a head reads.
    pub extract: u32,
}

/// A GPT tokenizer: BPE plus the fine-tuning tokens, truncation and padding.
#[derive(Debug, Clone)]
pub struct GptTokenizer {
    inner: Tokenizer,
    special: GptSpecialTokens,
    max_seq_len: usize,
    special_tokens: bool,
}

fn malformed(path: &Path) -> impl Fn(tokenizers::Error) -> TokenizeError + '_ {
    move |e| TokenizeError::MalformedTokenizerJson {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl GptTokenizer {
    /// Builds the tokenizer from a vocabulary (`encoder_bpe_40000.json` / `vocab.json`: token
    /// to id) and merges (`vocab_40000.bpe` / `merges.txt`, a `#version` header line, then one
    /// merge per line).
    pub fn from_files(vocab: &Path, merges: &Path) -> Result<Self, TokenizeError> {
        for path in [vocab, merges] {
            if !path.is_file() {
                return Err(TokenizeError::Missing {
                    path: path.to_path_buf(),
                });
            }
        }
        let as_str = |p: &Path| -> Result<String, TokenizeError> {
            p.to_str()
                .map(str::to_owned)
                .ok_or_else(|| TokenizeError::MalformedVocab {
                    path: p.to_path_buf(),
                    reason: "the path is not UTF-8".into(),
                })
        };
        let model = BPE::from_file(&as_str(vocab)?, &as_str(merges)?)
            .unk_token(GPT_UNK.to_owned())
            .end_of_word_suffix(END_OF_WORD_SUFFIX.to_owned())
            .build()
            .map_err(|e| TokenizeError::MalformedVocab {
                path: merges.to_path_buf(),
                reason: format!("with {}: {e}", vocab.display()),
            })?;
        let mut inner = Tokenizer::new(model);
        inner
            .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
            .with_pre_tokenizer(Some(BertPreTokenizer))
            .with_decoder(Some(BPEDecoder::new(END_OF_WORD_SUFFIX.to_owned())));
        Self::with_special_tokens(inner, vocab)
    }

    /// Loads a `tokenizer.json` of a GPT (its padding and truncation switched off).
    pub fn from_tokenizer_json(path: &Path) -> Result<Self, TokenizeError> {
        let bytes = std::fs::read(path).map_err(|source| TokenizeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut inner = Tokenizer::from_bytes(&bytes).map_err(malformed(path))?;
        inner.with_padding(None);
        inner.with_truncation(None).map_err(malformed(path))?;
        Self::with_special_tokens(inner, path)
    }

    /// Appends the fine-tuning tokens (or finds them, in a tokenizer that has them).
    fn with_special_tokens(mut inner: Tokenizer, path: &Path) -> Result<Self, TokenizeError> {
        let missing: Vec<AddedToken> = GPT_SPECIAL_TOKENS
            .iter()
            .filter(|t| inner.token_to_id(t).is_none())
            .map(|t| AddedToken::from(*t, true))
            .collect();
        inner.add_special_tokens(&missing);
        let id = |t: &'static str| {
            inner
                .token_to_id(t)
                .ok_or_else(|| TokenizeError::MissingSpecialToken {
                    path: PathBuf::from(path),
                    token: t,
                })
        };
        let special = GptSpecialTokens {
            start: id(GPT_SPECIAL_TOKENS[0])?,
            delimiter: id(GPT_SPECIAL_TOKENS[1])?,
            extract: id(GPT_SPECIAL_TOKENS[2])?,
        };
        if inner.token_to_id(GPT_UNK).is_none() {
            return Err(TokenizeError::MissingSpecialToken {
                path: path.to_path_buf(),
                token: GPT_UNK,
            });
        }
        Ok(GptTokenizer {
            inner,
            special,
            max_seq_len: crate::tokenize::DEFAULT_MAX_SEQ_LEN,
            special_tokens: true,
        })
    }

    /// The same tokenizer with another `max_seq_len` (at least 3: `start delimiter extract`).
    pub fn with_max_seq_len(mut self, max_seq_len: usize) -> Result<Self, TokenizeError> {
        if max_seq_len < 3 {
            return Err(TokenizeError::MaxSeqLenTooSmall { max_seq_len });
        }
        self.max_seq_len = max_seq_len;
        Ok(self)
    }

    /// Without the fine-tuning tokens: plain BPE, as `transformers` encodes
    /// (`add_special_tokens=False` and its default alike: the GPT tokenizer adds none).
    pub fn without_special_tokens(mut self) -> Self {
        self.special_tokens = false;
        self
    }

    /// Whether encodings carry the fine-tuning tokens.
    pub fn adds_special_tokens(&self) -> bool {
        self.special_tokens
    }

    /// The ids of the fine-tuning tokens.
    pub fn special_tokens(&self) -> GptSpecialTokens {
        self.special
    }

    /// The most tokens in an encoding.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// Number of ids, the fine-tuning tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The number of ids of the released vocabulary (before the fine-tuning tokens).
    pub fn base_vocab_size(&self) -> usize {
        self.special.start as usize
    }

    /// The token of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The BPE ids of a text, without fine-tuning tokens or truncation.
    pub fn bpe_ids(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        Ok(self
            .inner
            .encode_fast(text, false)
            .map_err(|source| TokenizeError::Encode { source })?
            .get_ids()
            .to_vec())
    }

    /// Encodes each `(a, b)`: `start a extract`, or `start a delimiter b extract` when `b` is a
    /// non-empty text, cut to `max_seq_len` as BERT cuts pairs (the longer text loses its last
    /// token first). Without fine-tuning tokens: `a`, or `a b`, cut to `max_seq_len`.
    pub fn encode_all(
        &self,
        inputs: &[(&str, Option<&str>)],
    ) -> Result<Vec<Encoding>, TokenizeError> {
        crate::tokenize::encode_pairs(&self.inner, inputs, |a, b| self.assemble(a, b))
    }

    fn assemble(&self, mut a: Vec<u32>, b: Option<Vec<u32>>) -> Encoding {
        let GptSpecialTokens {
            start,
            delimiter,
            extract,
        } = self.special;
        let added = match (&b, self.special_tokens) {
            (_, false) => 0,
            (None, true) => 2,
            (Some(_), true) => 3,
        };
        let budget = self.max_seq_len.saturating_sub(added);
        let (ids, tokens_removed) = match b {
            None => {
                let removed = a.len().saturating_sub(budget);
                a.truncate(budget);
                let ids = if self.special_tokens {
                    [vec![start], a, vec![extract]].concat()
                } else {
                    a
                };
                (ids, removed)
            }
            Some(mut b) => {
                let removed = TruncationStyle::Bert.truncate_pair(&mut a, &mut b, budget);
                let ids = if self.special_tokens {
                    [vec![start], a, vec![delimiter], b, vec![extract]].concat()
                } else {
                    [a, b].concat()
                };
                (ids, removed)
            }
        };
        Encoding {
            type_ids: vec![0; ids.len()],
            ids,
            tokens_removed,
        }
    }

    /// Pads encodings to the longest with id 0 (`<unk>`, masked out).
    pub fn collate(&self, encodings: &[Encoding]) -> Batch {
        crate::tokenize::pad_batch(encodings, 0, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> (PathBuf, PathBuf) {
        let vocab = r#"{"<unk>": 0, "t": 1, "h": 2, "e": 3, "c": 4, "a": 5, "t</w>": 6, "e</w>": 7, "th": 8, "the</w>": 9, "ca": 10, "cat</w>": 11, ".</w>": 12, "a</w>": 13}"#;
        let merges = "#version: 0.2\nt h\nth e</w>\nc a\nca t</w>\n";
        std::fs::write(dir.join("vocab.json"), vocab).unwrap();
        std::fs::write(dir.join("merges.txt"), merges).unwrap();
        (dir.join("vocab.json"), dir.join("merges.txt"))
    }

    #[test]
    fn bpe_lowercases_and_frames_inputs_with_the_fine_tuning_tokens() {
        let tmp = tempfile::tempdir().unwrap();
        let (v, m) = files(tmp.path());
        let t = GptTokenizer::from_files(&v, &m).unwrap();
        assert_eq!(t.base_vocab_size(), 14);
        assert_eq!(t.vocab_size(), 17);
        assert_eq!(t.bpe_ids("The CAT.").unwrap(), [9, 11, 12]);
        // A character outside the vocabulary is `<unk>`.
        assert_eq!(t.bpe_ids("the z").unwrap(), [9, 0]);
        let e = t
            .clone()
            .with_max_seq_len(6)
            .unwrap()
            .encode_all(&[("the cat", Some("the cat .")), ("cat", None)])
            .unwrap();
        // start the cat delim the [cat .] extract: the longer text loses its last tokens first.
        assert_eq!(e[0].ids, [14, 9, 11, 15, 9, 16]);
        assert_eq!(e[0].tokens_removed, 2);
        assert_eq!(e[1].ids, [14, 11, 16]);
        let plain = t.without_special_tokens();
        let e = plain.encode_all(&[("the cat", Some("a"))]).unwrap();
        assert_eq!(e[0].ids, [9, 11, 13]);
    }
}
