//! ELMo's character ids against AllenNLP's `batch_to_ids` (the fixture
//! `scripts/make_elmo_fixtures.py` wrote beside the model's parity fixtures): multi-byte UTF-8,
//! a word over 48 bytes, punctuation.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use stilts_data::chars::{MAX_CHARACTERS_PER_TOKEN, batch_char_ids};

#[test]
fn batches_match_allennlp_batch_to_ids_with_boundaries() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../stilts-models/tests/fixtures/tiny-elmo");
    let sentences: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sentences.json")).unwrap())
            .unwrap();
    let bytes = std::fs::read(dir.join("reference.safetensors")).unwrap();
    let reference = SafeTensors::deserialize(&bytes).unwrap();
    for batch in ["a", "b"] {
        let words: Vec<Vec<String>> = serde_json::from_value(sentences[batch].clone()).unwrap();
        let view = reference.tensor(&format!("{batch}.char_ids")).unwrap();
        assert_eq!(view.dtype(), Dtype::I64);
        let expected: Vec<i64> = view
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let longest = view.shape()[1];
        let (ids, len) = batch_char_ids(&words);
        assert_eq!(len, longest + 2);
        let row = |v: &[i64], width: usize, i: usize, j: usize| {
            let at = (i * width + j) * MAX_CHARACTERS_PER_TOKEN;
            v[at..at + MAX_CHARACTERS_PER_TOKEN].to_vec()
        };
        for (i, sentence) in words.iter().enumerate() {
            for j in 0..longest {
                // Our row j + 1 is AllenNLP's word j; its padding rows are ours too.
                let ours = row(&ids, len, i, j + 1);
                let theirs = row(&expected, longest, i, j);
                if j < sentence.len() {
                    assert_eq!(ours, theirs, "{batch}: sentence {i} word {j}");
                } else {
                    assert!(theirs.iter().all(|&c| c == 0));
                }
            }
            assert_eq!(&row(&ids, len, i, 0)[..3], &[259, 257, 260], "<S>");
            assert_eq!(
                &row(&ids, len, i, sentence.len() + 1)[..3],
                &[259, 258, 260],
                "</S>"
            );
        }
    }
}
