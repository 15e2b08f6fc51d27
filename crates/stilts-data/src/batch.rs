//! Encoded rows and padded batches, the same for every tokenizer family: how a pair is cut to
//! its budget ([`TruncationStyle`]), the encoding options, one unpadded [`Encoding`], and the one
//! padding ([`pad_batch`]) into a [`Batch`]. The families (`tokenize.rs` for BERT's WordPiece,
//! `bpe.rs` for GPT's BPE) build [`Encoding`]s with their own special tokens.

use crate::tokenize::{DEFAULT_MAX_SEQ_LEN, TokenizeError};

/// How a pair longer than the budget is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TruncationStyle {
    /// BERT's `_truncate_seq_pair`: pop the last token of the longer part until the pair fits;
    /// on a tie, pop from the second part.
    #[default]
    Bert,
    /// Hugging Face `tokenizers`' `longest_first`: keep the shorter part whole if the longer can
    /// absorb the cut, otherwise give each part half the budget, the odd token to the longer part
    /// (to the second on a tie).
    HuggingFace,
}

impl TruncationStyle {
    /// Cuts `a` and `b` from the end until together they hold at most `budget` items, and returns
    /// how many were removed.
    pub fn truncate_pair<T>(self, a: &mut Vec<T>, b: &mut Vec<T>, budget: usize) -> usize {
        let total = a.len() + b.len();
        if total <= budget {
            return 0;
        }
        match self {
            TruncationStyle::Bert => {
                while a.len() + b.len() > budget {
                    if a.len() > b.len() {
                        a.pop();
                    } else {
                        b.pop();
                    }
                }
            }
            TruncationStyle::HuggingFace => {
                let swap = a.len() > b.len();
                let mut n1 = a.len().min(b.len());
                let mut n2 = if n1 > budget { n1 } else { n1.max(budget - n1) };
                if n1 + n2 > budget {
                    n1 = budget / 2;
                    n2 = n1 + budget % 2;
                }
                if swap {
                    std::mem::swap(&mut n1, &mut n2);
                }
                a.truncate(n1);
                b.truncate(n2);
            }
        }
        total - a.len() - b.len()
    }
}

/// How a [`Batch`] is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Padding {
    /// To the longest row of the batch (dynamic padding).
    #[default]
    Longest,
    /// To this many tokens; must be at least `max_seq_len`.
    Fixed(usize),
}

/// Sequence length, truncation and padding for encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncodeOptions {
    /// The most tokens in an encoding, special tokens included (at least 3).
    pub max_seq_len: usize,
    /// How pairs are truncated.
    pub truncation: TruncationStyle,
    /// How batches are padded.
    pub padding: Padding,
    /// Whether `[CLS]` and `[SEP]` frame the texts (`false`: Hugging Face's
    /// `add_special_tokens=False`, the pieces alone, cut to `max_seq_len`).
    pub special_tokens: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            max_seq_len: DEFAULT_MAX_SEQ_LEN,
            truncation: TruncationStyle::default(),
            padding: Padding::default(),
            special_tokens: true,
        }
    }
}

impl EncodeOptions {
    /// Checks that `max_seq_len` holds `[CLS] [SEP] [SEP]` and a fixed padding length holds
    /// `max_seq_len` tokens.
    pub fn validate(&self) -> Result<(), TokenizeError> {
        if self.max_seq_len < 3 {
            return Err(TokenizeError::MaxSeqLenTooSmall {
                max_seq_len: self.max_seq_len,
            });
        }
        if let Padding::Fixed(len) = self.padding
            && len < self.max_seq_len
        {
            return Err(TokenizeError::FixedPaddingTooShort {
                len,
                max_seq_len: self.max_seq_len,
            });
        }
        Ok(())
    }
}

/// One encoded example, unpadded: every position is attended to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoding {
    /// `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`.
    pub ids: Vec<u32>,
    /// 0 for `[CLS] a [SEP]`, 1 for `b [SEP]`.
    pub type_ids: Vec<u32>,
    /// How many WordPiece tokens truncation removed.
    pub tokens_removed: usize,
}

impl Encoding {
    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no tokens (never true for an encoding made by [`BertTokenizer`](crate::tokenize::BertTokenizer)).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether truncation removed any token.
    pub fn truncated(&self) -> bool {
        self.tokens_removed > 0
    }

    /// All ones, one per token.
    pub fn attention_mask(&self) -> Vec<u32> {
        vec![1; self.ids.len()]
    }
}

/// A padded batch in flat row-major buffers of `batch_size * seq_len` values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// Token ids, `[batch_size, seq_len]` row-major; padding is the tokenizer's pad id.
    pub input_ids: Vec<u32>,
    /// Segment ids (0 for the first text, 1 for the second), `[batch_size, seq_len]`.
    pub token_type_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<u32>,
    /// Number of rows.
    pub batch_size: usize,
    /// Tokens per row after padding.
    pub seq_len: usize,
    /// The unpadded length of each row.
    pub lengths: Vec<usize>,
    /// How many tokens truncation removed from each row.
    pub tokens_removed: Vec<usize>,
}

/// One row of a [`Batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRow<'a> {
    /// Token ids, padded.
    pub input_ids: &'a [u32],
    /// Segment ids, padded.
    pub token_type_ids: &'a [u32],
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: &'a [u32],
}

impl Batch {
    /// Row `i`, or `None` past the end.
    pub fn row(&self, i: usize) -> Option<BatchRow<'_>> {
        if i >= self.batch_size {
            return None;
        }
        let span = i * self.seq_len..(i + 1) * self.seq_len;
        Some(BatchRow {
            input_ids: &self.input_ids[span.clone()],
            token_type_ids: &self.token_type_ids[span.clone()],
            attention_mask: &self.attention_mask[span],
        })
    }

    /// `input_ids` widened to `i64`, as PyTorch-style models take them.
    pub fn input_ids_i64(&self) -> Vec<i64> {
        widen(&self.input_ids)
    }

    /// `token_type_ids` widened to `i64`.
    pub fn token_type_ids_i64(&self) -> Vec<i64> {
        widen(&self.token_type_ids)
    }

    /// `attention_mask` widened to `i64`.
    pub fn attention_mask_i64(&self) -> Vec<i64> {
        widen(&self.attention_mask)
    }
}

fn widen(values: &[u32]) -> Vec<i64> {
    values.iter().map(|&v| i64::from(v)).collect()
}

/// Pads encodings with `pad` (type 0, attention 0) to the longest one, or to `fixed` tokens
/// (or the longest encoding, if that is longer): the one padding of every tokenizer family.
pub fn pad_batch(encodings: &[Encoding], pad: u32, fixed: Option<usize>) -> Batch {
    let longest = encodings.iter().map(Encoding::len).max().unwrap_or(0);
    let seq_len = fixed.map_or(longest, |len| len.max(longest));
    let cells = encodings.len() * seq_len;
    let mut batch = Batch {
        input_ids: vec![pad; cells],
        token_type_ids: vec![0; cells],
        attention_mask: vec![0; cells],
        batch_size: encodings.len(),
        seq_len,
        lengths: Vec::with_capacity(encodings.len()),
        tokens_removed: Vec::with_capacity(encodings.len()),
    };
    for (row, encoding) in encodings.iter().enumerate() {
        let start = row * seq_len;
        let span = start..start + encoding.len();
        batch.input_ids[span.clone()].copy_from_slice(&encoding.ids);
        batch.token_type_ids[span.clone()].copy_from_slice(&encoding.type_ids);
        batch.attention_mask[span].fill(1);
        batch.lengths.push(encoding.len());
        batch.tokens_removed.push(encoding.tokens_removed);
    }
    batch
}
