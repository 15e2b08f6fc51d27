//! ELMo's character ids: each word becomes a fixed row of
//! [`MAX_CHARACTERS_PER_TOKEN`] ids, its UTF-8 bytes (at most 48) between begin-of-word and
//! end-of-word markers, padded; a sentence gets `<S>` and `</S>` rows around its words, as
//! bilm-tf's `Batcher` adds them. Every id is one more than the character's, so that 0 is left
//! for padding rows; these are the ids AllenNLP's `batch_to_ids` and bilm-tf feed the
//! character CNN.

use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

use crate::batch::{Batch, Encoding, TruncationStyle, pad_batch};
use crate::tokenize::{DEFAULT_MAX_SEQ_LEN, TokenizeError};

// allennlp/data/token_indexers/elmo_indexer.py: ELMoCharacterMapper

/// Characters per word row, begin/end-of-word markers included.
pub const MAX_CHARACTERS_PER_TOKEN: usize = 50;

const BEGINNING_OF_SENTENCE: u16 = 256;
const END_OF_SENTENCE: u16 = 257;
const BEGINNING_OF_WORD: u16 = 258;
const END_OF_WORD: u16 = 259;
const PADDING: u16 = 260;

/// The text of the sentence-start token (a word spelled so is read as the boundary itself, as
/// AllenNLP reads it).
pub const BOS_TOKEN: &str = "<S>";
/// The text of the sentence-end token.
pub const EOS_TOKEN: &str = "</S>";

/// The character ids of one word (or sentence boundary), shifted by one.
pub type CharIds = [u16; MAX_CHARACTERS_PER_TOKEN];

fn boundary(character: u16) -> CharIds {
    let mut ids = [PADDING + 1; MAX_CHARACTERS_PER_TOKEN];
    ids[0] = BEGINNING_OF_WORD + 1;
    ids[1] = character + 1;
    ids[2] = END_OF_WORD + 1;
    ids
}

/// The ids of a word: its first 48 UTF-8 bytes (a multi-byte character may be cut) between the
/// word markers; `<S>` and `</S>` give the boundary rows.
pub fn word_char_ids(word: &str) -> CharIds {
    match word {
        BOS_TOKEN => return boundary(BEGINNING_OF_SENTENCE),
        EOS_TOKEN => return boundary(END_OF_SENTENCE),
        _ => {}
    }
    let bytes = &word.as_bytes()[..word.len().min(MAX_CHARACTERS_PER_TOKEN - 2)];
    let mut ids = [PADDING + 1; MAX_CHARACTERS_PER_TOKEN];
    ids[0] = BEGINNING_OF_WORD + 1;
    for (slot, &b) in ids[1..].iter_mut().zip(bytes) {
        *slot = u16::from(b) + 1;
    }
    ids[bytes.len() + 1] = END_OF_WORD + 1;
    ids
}

/// The rows of a sentence of `words`: `<S>`, one row per word, `</S>`.
pub fn sentence_char_ids<S: AsRef<str>>(words: &[S]) -> Vec<CharIds> {
    let mut rows = Vec::with_capacity(words.len() + 2);
    rows.push(boundary(BEGINNING_OF_SENTENCE));
    rows.extend(words.iter().map(|w| word_char_ids(w.as_ref())));
    rows.push(boundary(END_OF_SENTENCE));
    rows
}

/// Sentences as one right-padded batch, `[batch, longest + 2, 50]` flattened row-major, with
/// the padded length (padding rows are all 0).
pub fn batch_char_ids<S: AsRef<str>>(sentences: &[Vec<S>]) -> (Vec<i64>, usize) {
    let len = sentences.iter().map(|s| s.len() + 2).max().unwrap_or(2);
    let mut out = vec![0i64; sentences.len() * len * MAX_CHARACTERS_PER_TOKEN];
    for (i, sentence) in sentences.iter().enumerate() {
        for (j, row) in sentence_char_ids(sentence).iter().enumerate() {
            let at = (i * len + j) * MAX_CHARACTERS_PER_TOKEN;
            for (slot, &id) in out[at..at + MAX_CHARACTERS_PER_TOKEN].iter_mut().zip(row) {
                *slot = i64::from(id);
            }
        }
    }
    (out, len)
}

/// The words of a text, as ELMo reads them: split at whitespace, every punctuation character
/// a word of its own (BERT's pre-tokenizer, without lowercasing or accent stripping). jiant fed
/// ELMo Moses tokens, which split a few things differently (`can't` stays one word here).
pub fn split_words(text: &str) -> Vec<String> {
    let mut pieces = PreTokenizedString::from(text);
    // BERT's pre-tokenizer only splits; it has no failure path on a string.
    if BertPreTokenizer.pre_tokenize(&mut pieces).is_err() {
        return text.split_whitespace().map(str::to_owned).collect();
    }
    pieces
        .get_splits(OffsetReferential::Original, OffsetType::Byte)
        .into_iter()
        .map(|(word, _, _)| word.to_owned())
        .collect()
}

/// The word a row of character ids spells (`<S>` and `</S>` for the boundaries; bytes that are
/// not UTF-8, as a cut multi-byte character, shown as U+FFFD).
pub fn decode_word(row: &[u32]) -> String {
    let raw: Vec<u32> = row.iter().map(|&c| c.saturating_sub(1)).collect();
    let marked = raw.first() == Some(&u32::from(BEGINNING_OF_WORD))
        && raw.get(2) == Some(&u32::from(END_OF_WORD));
    match raw.get(1).copied() {
        // Bytes stop at 255: 256 and 257 only ever mark the boundaries.
        Some(c) if marked && c == u32::from(BEGINNING_OF_SENTENCE) => BOS_TOKEN.to_owned(),
        Some(c) if marked && c == u32::from(END_OF_SENTENCE) => EOS_TOKEN.to_owned(),
        _ => {
            let bytes: Vec<u8> = raw
                .iter()
                .skip(1)
                .take_while(|&&c| c != u32::from(END_OF_WORD))
                .filter_map(|&c| u8::try_from(c).ok())
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }
}

/// Character ids a model over ELMo's characters embeds (ids 1..=261 and padding 0).
pub const N_CHARACTERS: usize = 262;

/// ELMo's input encoding: the words of a text (or of both texts of a pair, the first's then the
/// second's) as character-id rows with `<S>` and `</S>`, flattened into one
/// [`Encoding`] of `50 * (words + 2)` ids, so that batching pads whole words with 0 as ELMo
/// expects. `max_seq_len` counts words, the boundaries included; a pair longer than that loses
/// words from the end of its longer text first (BERT's rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElmoTokenizer {
    max_seq_len: usize,
}

impl Default for ElmoTokenizer {
    fn default() -> Self {
        ElmoTokenizer {
            max_seq_len: DEFAULT_MAX_SEQ_LEN,
        }
    }
}

impl ElmoTokenizer {
    /// The same encoding with another word budget (at least 3: `<S> w </S>`).
    pub fn with_max_seq_len(self, max_seq_len: usize) -> Result<Self, TokenizeError> {
        if max_seq_len < 3 {
            return Err(TokenizeError::MaxSeqLenTooSmall { max_seq_len });
        }
        Ok(ElmoTokenizer { max_seq_len })
    }

    /// The most words in an encoding, boundaries included.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// Encodes each `(a, b)`.
    pub fn encode_all(&self, inputs: &[(&str, Option<&str>)]) -> Vec<Encoding> {
        inputs
            .iter()
            .map(|&(a, b)| {
                let mut first = split_words(a);
                let mut second = b.map(split_words).unwrap_or_default();
                let removed = TruncationStyle::Bert.truncate_pair(
                    &mut first,
                    &mut second,
                    self.max_seq_len - 2,
                );
                first.extend(second);
                let ids: Vec<u32> = sentence_char_ids(&first)
                    .iter()
                    .flatten()
                    .map(|&c| u32::from(c))
                    .collect();
                Encoding {
                    type_ids: vec![0; ids.len()],
                    ids,
                    tokens_removed: removed,
                }
            })
            .collect()
    }

    /// Pads with whole padding words (id 0).
    pub fn collate(&self, encodings: &[Encoding]) -> Batch {
        pad_batch(encodings, 0, None)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn words_split_at_spaces_and_punctuation() {
        assert_eq!(
            super::split_words("Hi, café-owner!  ok"),
            ["Hi", ",", "café", "-", "owner", "!", "ok"]
        );
    }

    use super::*;

    #[test]
    fn rows_decode_back_to_words() {
        let rows = sentence_char_ids(&["café", "x"]);
        let words: Vec<String> = rows
            .iter()
            .map(|r| decode_word(&r.map(u32::from)))
            .collect();
        assert_eq!(words, ["<S>", "café", "x", "</S>"]);
    }

    #[test]
    fn a_word_is_its_bytes_between_markers() {
        let ids = word_char_ids("é!");
        assert_eq!(&ids[..5], &[259, 0xC3 + 1, 0xA9 + 1, 34, 260]);
        assert!(ids[5..].iter().all(|&c| c == 261));
    }

    #[test]
    fn long_words_keep_48_bytes() {
        let ids = word_char_ids(&"x".repeat(60));
        assert_eq!(ids[48], u16::from(b'x') + 1);
        assert_eq!(ids[49], 260);
    }

    #[test]
    fn sentences_get_boundaries_and_batches_pad_with_zero() {
        let (ids, len) = batch_char_ids(&[vec!["a"], vec!["a", "b", "<S>"]]);
        assert_eq!(len, 5);
        let row = |i: usize, j: usize| &ids[(i * len + j) * 50..(i * len + j + 1) * 50];
        assert_eq!(&row(0, 0)[..3], &[259, 257, 260]);
        assert_eq!(&row(0, 2)[..3], &[259, 258, 260]);
        assert!(row(0, 3).iter().all(|&c| c == 0));
        assert_eq!(row(1, 3), row(1, 0), "the word <S> is the boundary");
    }
}
