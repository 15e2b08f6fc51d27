use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use stilts_data::tokenize::{
    Batch, BertTokenizer, Casing, EncodeOptions, Encoding, Padding, TokenizeError, TruncationStyle,
};

const MODELS_ENV: &str = "STILTS_MODELS_DIR";
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tokenizer_bert_uncased.json"
);

/// The bert-base-uncased `vocab.txt` under `$STILTS_MODELS_DIR`; `None` (the test is skipped)
/// only when the variable is unset. A set variable with the file missing fails the test.
fn uncased_vocab() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os(MODELS_ENV) else {
        eprintln!(
            "skipped: set {MODELS_ENV} to the directory holding bert-base-uncased/vocab.txt \
             (e.g. ../shared/data/models beside the checkout)"
        );
        return None;
    };
    let path = PathBuf::from(dir)
        .join("bert-base-uncased")
        .join("vocab.txt");
    assert!(
        path.is_file(),
        "{MODELS_ENV} is set but {} does not exist",
        path.display()
    );
    Some(path)
}

#[derive(Deserialize)]
struct Fixture {
    transformers_version: String,
    tokenizers_version: String,
    vocab_sha256: String,
    vocab_size: usize,
    num_cases: usize,
    num_truncated: usize,
    num_hf_divergent: usize,
    cases: Vec<Case>,
    batches: Vec<FixtureBatch>,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    source: String,
    casing: String,
    max_seq_len: usize,
    a: String,
    b: Option<String>,
    input_ids: Vec<u32>,
    token_type_ids: Vec<u32>,
    attention_mask: Vec<u32>,
    tokens_removed: usize,
    hf_input_ids: Option<Vec<u32>>,
    hf_token_type_ids: Option<Vec<u32>>,
}

impl Case {
    fn casing(&self) -> Casing {
        match self.casing.as_str() {
            "cased" => Casing::Cased,
            "uncased" => Casing::Uncased,
            other => panic!("case {}: unknown casing {other}", self.id),
        }
    }

    fn input(&self) -> (&str, Option<&str>) {
        (self.a.as_str(), self.b.as_deref())
    }

    fn hf_ids(&self) -> (&[u32], &[u32]) {
        match (&self.hf_input_ids, &self.hf_token_type_ids) {
            (Some(ids), Some(types)) => (ids, types),
            _ => (&self.input_ids, &self.token_type_ids),
        }
    }
}

#[derive(Deserialize)]
struct FixtureBatch {
    case_ids: Vec<String>,
    max_seq_len: usize,
    padding: String,
    input_ids: Vec<Vec<u32>>,
    token_type_ids: Vec<Vec<u32>>,
    attention_mask: Vec<Vec<u32>>,
}

fn load_fixture() -> Fixture {
    let text = std::fs::read_to_string(FIXTURE).expect("fixture is readable");
    let fixture: Fixture = serde_json::from_str(&text).expect("fixture parses");
    assert_eq!(fixture.cases.len(), fixture.num_cases);
    fixture
}

fn options(max_seq_len: usize, truncation: TruncationStyle, padding: Padding) -> EncodeOptions {
    EncodeOptions {
        max_seq_len,
        truncation,
        padding,
        ..EncodeOptions::default()
    }
}

/// Tokenizers keyed by casing, `max_seq_len` and truncation style, built from one base per casing.
struct Tokenizers {
    base: HashMap<Casing, BertTokenizer>,
    built: HashMap<(Casing, usize, TruncationStyle), BertTokenizer>,
}

impl Tokenizers {
    fn new(base: HashMap<Casing, BertTokenizer>) -> Self {
        Tokenizers {
            base,
            built: HashMap::new(),
        }
    }

    fn get(&mut self, casing: Casing, msl: usize, style: TruncationStyle) -> &BertTokenizer {
        let base = &self.base;
        self.built.entry((casing, msl, style)).or_insert_with(|| {
            base[&casing]
                .clone()
                .with_options(options(msl, style, Padding::Longest))
                .expect("valid options")
        })
    }
}

fn describe(tokenizer: &BertTokenizer, ids: &[u32]) -> String {
    ids.iter()
        .map(|&id| {
            tokenizer
                .id_to_token(id)
                .unwrap_or_else(|| format!("<{id}>"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_case(
    tokenizer: &BertTokenizer,
    case: &Case,
    got: &Encoding,
    want: (&[u32], &[u32]),
    what: &str,
) -> Option<String> {
    let (want_ids, want_types) = want;
    if got.ids == want_ids
        && got.type_ids == want_types
        && got.attention_mask() == case.attention_mask
    {
        return None;
    }
    Some(format!(
        "{what} case {} ({}, {}, max_seq_len {}): a={:?} b={:?}\n  want {:?}\n   got {:?}\n  want types {:?}\n   got types {:?}",
        case.id,
        case.source,
        case.casing,
        case.max_seq_len,
        case.a,
        case.b,
        describe(tokenizer, want_ids),
        describe(tokenizer, &got.ids),
        want_types,
        got.type_ids,
    ))
}

fn json_with_hf_padding_and_truncation(tokenizer: &BertTokenizer) -> String {
    let json = tokenizer.inner().to_string(false).expect("serializes");
    let mut value: serde_json::Value = serde_json::from_str(&json).expect("valid json");
    value["padding"] = serde_json::json!({
        "strategy": {"Fixed": 128},
        "direction": "Right",
        "pad_to_multiple_of": null,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": "[PAD]"
    });
    value["truncation"] = serde_json::json!({
        "direction": "Right",
        "max_length": 8,
        "strategy": "LongestFirst",
        "stride": 0
    });
    let cls = tokenizer.special_tokens().cls;
    let sep = tokenizer.special_tokens().sep;
    value["post_processor"] = serde_json::json!({
        "type": "BertProcessing",
        "sep": ["[SEP]", sep],
        "cls": ["[CLS]", cls]
    });
    value.to_string()
}

#[test]
fn golden_cases_match_hf_bert_tokenizer_fast() {
    let Some(vocab) = uncased_vocab() else { return };
    let fixture = load_fixture();
    let digest = Sha256::digest(std::fs::read(&vocab).expect("vocab is readable"));
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        fixture.vocab_sha256,
        "{} is not the vocab the fixture was made from",
        vocab.display()
    );
    eprintln!(
        "fixture: {} cases ({} truncated, {} where HF longest_first differs) from transformers {} / tokenizers {}",
        fixture.num_cases,
        fixture.num_truncated,
        fixture.num_hf_divergent,
        fixture.transformers_version,
        fixture.tokenizers_version
    );

    let uncased = BertTokenizer::from_vocab(&vocab, Casing::Uncased).expect("uncased tokenizer");
    let cased = BertTokenizer::from_vocab(&vocab, Casing::Cased).expect("cased tokenizer");
    assert_eq!(uncased.vocab_size(), fixture.vocab_size);
    assert_eq!(cased.vocab_size(), fixture.vocab_size);

    let dir = tempfile::tempdir().expect("tempdir");
    let json_path = dir.path().join("tokenizer.json");
    std::fs::write(&json_path, json_with_hf_padding_and_truncation(&uncased)).expect("write");
    let from_json = BertTokenizer::from_tokenizer_json(&json_path).expect("loads tokenizer.json");

    let mut tokenizers = Tokenizers::new(HashMap::from([
        (Casing::Uncased, uncased),
        (Casing::Cased, cased),
    ]));
    let mut json_tokenizers = Tokenizers::new(HashMap::from([(Casing::Uncased, from_json)]));

    let mut failures = Vec::new();
    let mut compared = 0;
    for case in &fixture.cases {
        let (a, b) = case.input();
        let bert = tokenizers.get(case.casing(), case.max_seq_len, TruncationStyle::Bert);
        let got = bert.encode(a, b).expect("encodes");
        failures.extend(check_case(
            bert,
            case,
            &got,
            (&case.input_ids, &case.token_type_ids),
            "bert-truncation",
        ));
        if got.tokens_removed != case.tokens_removed {
            failures.push(format!(
                "case {}: removed {} tokens, want {}",
                case.id, got.tokens_removed, case.tokens_removed
            ));
        }

        let hf = tokenizers.get(
            case.casing(),
            case.max_seq_len,
            TruncationStyle::HuggingFace,
        );
        let got = hf.encode(a, b).expect("encodes");
        failures.extend(check_case(hf, case, &got, case.hf_ids(), "hf-truncation"));

        if case.casing() == Casing::Uncased {
            let json =
                json_tokenizers.get(Casing::Uncased, case.max_seq_len, TruncationStyle::Bert);
            let got = json.encode(a, b).expect("encodes");
            failures.extend(check_case(
                json,
                case,
                &got,
                (&case.input_ids, &case.token_type_ids),
                "tokenizer.json",
            ));
        }
        compared += 1;
    }

    let mut groups: HashMap<(Casing, usize), Vec<&Case>> = HashMap::new();
    for case in &fixture.cases {
        groups
            .entry((case.casing(), case.max_seq_len))
            .or_default()
            .push(case);
    }
    for ((casing, msl), cases) in &groups {
        let tokenizer = tokenizers.get(*casing, *msl, TruncationStyle::Bert);
        let inputs: Vec<_> = cases.iter().map(|c| c.input()).collect();
        let encodings = tokenizer.encode_all(&inputs).expect("encodes batch");
        for (case, got) in cases.iter().zip(&encodings) {
            failures.extend(check_case(
                tokenizer,
                case,
                got,
                (&case.input_ids, &case.token_type_ids),
                "encode_all",
            ));
        }
        let batch = tokenizer.encode_batch(&inputs).expect("encodes batch");
        for (i, case) in cases.iter().enumerate() {
            let row = batch.row(i).expect("row exists");
            let n = case.input_ids.len();
            assert_eq!(&row.input_ids[..n], &case.input_ids[..], "case {}", case.id);
            assert_eq!(&row.token_type_ids[..n], &case.token_type_ids[..]);
            assert_eq!(&row.attention_mask[..n], &case.attention_mask[..]);
            assert!(row.attention_mask[n..].iter().all(|&m| m == 0));
        }
    }

    assert_eq!(compared, fixture.num_cases);
    assert!(
        failures.is_empty(),
        "{} mismatches, first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn golden_batches_match_hf_padding() {
    let Some(vocab) = uncased_vocab() else { return };
    let fixture = load_fixture();
    let by_id: HashMap<&str, &Case> = fixture.cases.iter().map(|c| (c.id.as_str(), c)).collect();
    let base = BertTokenizer::from_vocab(&vocab, Casing::Uncased).expect("tokenizer");
    assert!(!fixture.batches.is_empty());
    for batch in &fixture.batches {
        let padding = match batch.padding.as_str() {
            "longest" => Padding::Longest,
            "max_length" => Padding::Fixed(batch.max_seq_len),
            other => panic!("unknown padding {other}"),
        };
        let tokenizer = base
            .clone()
            .with_options(options(batch.max_seq_len, TruncationStyle::Bert, padding))
            .expect("valid options");
        let inputs: Vec<_> = batch
            .case_ids
            .iter()
            .map(|id| by_id[id.as_str()].input())
            .collect();
        let got = tokenizer.encode_batch(&inputs).expect("encodes");
        assert_eq!(got.batch_size, batch.input_ids.len());
        assert_eq!(got.seq_len, batch.input_ids[0].len());
        assert_eq!(got.input_ids, batch.input_ids.concat());
        assert_eq!(got.token_type_ids, batch.token_type_ids.concat());
        assert_eq!(got.attention_mask, batch.attention_mask.concat());
    }
}

#[test]
fn hf_longest_first_differs_only_by_the_odd_token() {
    let fixture = load_fixture();
    let divergent: Vec<&Case> = fixture
        .cases
        .iter()
        .filter(|c| c.hf_input_ids.is_some())
        .collect();
    assert_eq!(divergent.len(), fixture.num_hf_divergent);
    assert!(
        divergent.len() >= 10,
        "the fixture should exercise the divergence"
    );
    for case in divergent {
        let (hf_ids, hf_types) = case.hf_ids();
        let budget = case.max_seq_len - 3;
        let first = |types: &[u32]| types.iter().filter(|&&t| t == 0).count() - 2;
        let second = |types: &[u32]| types.iter().filter(|&&t| t == 1).count() - 1;
        assert_eq!(hf_ids.len(), case.input_ids.len(), "case {}", case.id);
        assert_eq!(budget % 2, 1, "case {}: only odd budgets diverge", case.id);
        assert_eq!(
            first(&case.token_type_ids),
            budget / 2 + 1,
            "case {}",
            case.id
        );
        assert_eq!(second(&case.token_type_ids), budget / 2, "case {}", case.id);
        assert_eq!(first(hf_types), budget / 2, "case {}", case.id);
        assert_eq!(second(hf_types), budget / 2 + 1, "case {}", case.id);
    }
}

#[test]
fn uncased_vocab_is_guessed_uncased() {
    let Some(vocab) = uncased_vocab() else { return };
    assert_eq!(
        Casing::guess_from_vocab(&vocab).expect("reads"),
        Casing::Uncased
    );
}

const TOY_VOCAB: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", ".", "a",
    "dog", "##s", "run", "##ning", "cafe", "The", "b", "c", "d", "e", "f", "g", "h", "##b",
];

fn write_vocab(dir: &Path, tokens: &[&str]) -> PathBuf {
    let path = dir.join("vocab.txt");
    std::fs::write(&path, tokens.join("\n") + "\n").expect("write vocab");
    path
}

fn toy(casing: Casing, max_seq_len: usize) -> (tempfile::TempDir, BertTokenizer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_vocab(dir.path(), TOY_VOCAB);
    let tokenizer = BertTokenizer::from_vocab(&path, casing)
        .expect("toy tokenizer")
        .with_options(options(
            max_seq_len,
            TruncationStyle::Bert,
            Padding::Longest,
        ))
        .expect("valid options");
    (dir, tokenizer)
}

fn id(token: &str) -> u32 {
    TOY_VOCAB
        .iter()
        .position(|t| *t == token)
        .expect("toy token") as u32
}

fn ids(tokens: &str) -> Vec<u32> {
    tokens.split_whitespace().map(id).collect()
}

#[test]
fn single_and_pair_structure() {
    let (_dir, tokenizer) = toy(Casing::Uncased, 128);
    let special = tokenizer.special_tokens();
    assert_eq!(
        (
            special.pad,
            special.unk,
            special.cls,
            special.sep,
            special.mask
        ),
        (0, 1, 2, 3, Some(4))
    );

    let single = tokenizer.encode("The cats sat.", None).expect("encodes");
    assert_eq!(single.ids, ids("[CLS] the cat ##s sat . [SEP]"));
    assert_eq!(single.type_ids, vec![0; 7]);
    assert_eq!(single.attention_mask(), vec![1; 7]);
    assert!(!single.truncated());

    let pair = tokenizer
        .encode("The cat sat.", Some("A dog, running!"))
        .expect("encodes");
    assert_eq!(
        pair.ids,
        ids("[CLS] the cat sat . [SEP] a dog [UNK] run ##ning [UNK] [SEP]")
    );
    assert_eq!(pair.type_ids, [vec![0; 6], vec![1; 7]].concat());

    let empty_second = tokenizer.encode("the cat", Some("")).expect("encodes");
    assert_eq!(
        empty_second,
        tokenizer.encode("the cat", None).expect("encodes")
    );
    let blank_second = tokenizer.encode("the cat", Some("  ")).expect("encodes");
    assert_eq!(blank_second.ids, ids("[CLS] the cat [SEP] [SEP]"));
    assert_eq!(blank_second.type_ids, vec![0, 0, 0, 0, 1]);
    assert_eq!(
        tokenizer.encode("", None).expect("encodes").ids,
        ids("[CLS] [SEP]")
    );

    assert_eq!(
        tokenizer
            .encode("the [MASK] sat", None)
            .expect("encodes")
            .ids,
        ids("[CLS] the [MASK] sat [SEP]")
    );
    assert_eq!(
        tokenizer.tokenize("Café dogs").expect("tokenizes"),
        vec!["cafe", "dog", "##s"]
    );
}

#[test]
fn casing_controls_lowercasing_and_accents() {
    let (_d1, uncased) = toy(Casing::Uncased, 128);
    let (_d2, cased) = toy(Casing::Cased, 128);
    assert_eq!(uncased.casing(), Some(Casing::Uncased));
    assert_eq!(cased.casing(), Some(Casing::Cased));
    assert_eq!(
        uncased.tokenize("The Cat café").expect("tokenizes"),
        vec!["the", "cat", "cafe"]
    );
    assert_eq!(
        cased.tokenize("The Cat café").expect("tokenizes"),
        vec!["The", "[UNK]", "[UNK]"]
    );

    assert_eq!(
        Casing::guess_from_tokens(["[CLS]", "[SEP]", "the", "##s", "ℝ"]),
        Casing::Uncased
    );
    assert_eq!(
        Casing::guess_from_tokens(["[CLS]", "the", "The", "##s"]),
        Casing::Cased
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_vocab(dir.path(), &["[PAD]", "[UNK]", "Paris", "paris", "##S"]);
    assert_eq!(
        Casing::guess_from_vocab(&path).expect("reads"),
        Casing::Cased
    );
}

#[test]
fn long_words_become_unk() {
    let (_dir, tokenizer) = toy(Casing::Uncased, 128);
    let hundred = tokenizer.tokenize(&"b".repeat(100)).expect("tokenizes");
    assert_eq!(hundred.len(), 100);
    assert_eq!(hundred[..2], ["b", "##b"]);
    let longer = tokenizer.tokenize(&"b".repeat(101)).expect("tokenizes");
    assert_eq!(longer, vec!["[UNK]"]);
}

#[test]
fn single_truncation_keeps_the_head() {
    let (_dir, tokenizer) = toy(Casing::Uncased, 6);
    let enc = tokenizer.encode("a b c d e f g h", None).expect("encodes");
    assert_eq!(enc.ids, ids("[CLS] a b c d [SEP]"));
    assert_eq!(enc.tokens_removed, 4);
    assert!(enc.truncated());
    let exact = tokenizer.encode("a b c d", None).expect("encodes");
    assert_eq!(exact.len(), 6);
    assert!(!exact.truncated());
}

#[test]
fn pair_truncation_follows_bert() {
    let (_dir, tokenizer) = toy(Casing::Uncased, 10);
    let cases = [
        ("a b c d e f g h", "b", "[CLS] a b c d e f [SEP] b [SEP]", 2),
        ("a", "b c d e f g h", "[CLS] a [SEP] b c d e f g [SEP]", 1),
        (
            "a b c d e",
            "b c d e f g",
            "[CLS] a b c d [SEP] b c d [SEP]",
            4,
        ),
        (
            "a b c d e f g",
            "b c d e f",
            "[CLS] a b c d [SEP] b c d [SEP]",
            5,
        ),
        (
            "a b c d e",
            "b c d e f",
            "[CLS] a b c d [SEP] b c d [SEP]",
            3,
        ),
        ("a b c", "b c d e", "[CLS] a b c [SEP] b c d e [SEP]", 0),
    ];
    for (a, b, want, removed) in cases {
        let enc = tokenizer.encode(a, Some(b)).expect("encodes");
        assert_eq!(enc.ids, ids(want), "{a:?} / {b:?}");
        assert_eq!(enc.tokens_removed, removed, "{a:?} / {b:?}");
        assert_eq!(enc.len(), enc.type_ids.len());
        assert!(enc.len() <= 10);
    }

    let (_dir, small) = toy(Casing::Uncased, 3);
    let enc = small.encode("a b", Some("c d")).expect("encodes");
    assert_eq!(enc.ids, ids("[CLS] [SEP] [SEP]"));
    assert_eq!(enc.type_ids, vec![0, 0, 1]);
    assert_eq!(enc.tokens_removed, 4);
    assert_eq!(
        small.encode("a b", None).expect("encodes").ids,
        ids("[CLS] a [SEP]")
    );
}

#[test]
fn truncate_pair_styles() {
    let run = |style: TruncationStyle, la: usize, lb: usize, budget: usize| {
        let mut a: Vec<usize> = (0..la).collect();
        let mut b: Vec<usize> = (0..lb).collect();
        let removed = style.truncate_pair(&mut a, &mut b, budget);
        assert_eq!(removed, la + lb - a.len() - b.len());
        assert_eq!(a, (0..a.len()).collect::<Vec<_>>(), "keeps the head");
        (a.len(), b.len())
    };
    use TruncationStyle::{Bert, HuggingFace};
    assert_eq!(run(Bert, 10, 12, 7), (4, 3));
    assert_eq!(run(HuggingFace, 10, 12, 7), (3, 4));
    assert_eq!(run(Bert, 10, 10, 7), (4, 3));
    assert_eq!(run(HuggingFace, 10, 10, 7), (3, 4));
    for style in [Bert, HuggingFace] {
        assert_eq!(run(style, 12, 10, 7), (4, 3));
        assert_eq!(run(style, 10, 12, 8), (4, 4));
        assert_eq!(run(style, 2, 30, 7), (2, 5));
        assert_eq!(run(style, 30, 2, 7), (5, 2));
        assert_eq!(run(style, 3, 4, 7), (3, 4));
        assert_eq!(run(style, 5, 5, 0), (0, 0));
        assert_eq!(run(style, 0, 0, 0), (0, 0));
    }
    for la in 0..12 {
        for lb in 0..12 {
            for budget in 0..14 {
                let bert = run(Bert, la, lb, budget);
                let hf = run(HuggingFace, la, lb, budget);
                assert_eq!(bert.0 + bert.1, (la + lb).min(budget));
                let diverges = la + lb > budget && budget % 2 == 1 && lb >= la && la > budget / 2;
                if diverges {
                    assert_eq!((bert.0, bert.1), (hf.1, hf.0), "{la} {lb} {budget}");
                } else {
                    assert_eq!(bert, hf, "{la} {lb} {budget}");
                }
            }
        }
    }
}

#[test]
fn batch_padding_shapes() {
    let (_dir, tokenizer) = toy(Casing::Uncased, 8);
    let inputs = [
        ("the cat", None),
        ("a dog sat on the mat", Some("the cat")),
        ("cat", Some("dog")),
    ];
    let batch = tokenizer.encode_batch(&inputs).expect("encodes");
    assert_eq!(batch.batch_size, 3);
    assert_eq!(batch.seq_len, 8);
    assert_eq!(batch.lengths, vec![4, 8, 5]);
    assert_eq!(batch.tokens_removed, vec![0, 3, 0]);
    for buf in [
        &batch.input_ids,
        &batch.token_type_ids,
        &batch.attention_mask,
    ] {
        assert_eq!(buf.len(), 24);
    }
    let row = batch.row(0).expect("row 0");
    assert_eq!(
        row.input_ids,
        &ids("[CLS] the cat [SEP] [PAD] [PAD] [PAD] [PAD]")[..]
    );
    assert_eq!(row.token_type_ids, &[0; 8][..]);
    assert_eq!(row.attention_mask, &[1, 1, 1, 1, 0, 0, 0, 0][..]);
    let row = batch.row(2).expect("row 2");
    assert_eq!(
        row.input_ids,
        &ids("[CLS] cat [SEP] dog [SEP] [PAD] [PAD] [PAD]")[..]
    );
    assert_eq!(row.token_type_ids, &[0, 0, 0, 1, 1, 0, 0, 0][..]);
    assert_eq!(row.attention_mask, &[1, 1, 1, 1, 1, 0, 0, 0][..]);
    assert!(batch.row(3).is_none());
    assert_eq!(batch.input_ids_i64()[..4], [2, 5, 6, 3]);
    assert_eq!(batch.attention_mask_i64().iter().sum::<i64>(), 17);
    assert_eq!(batch.token_type_ids_i64().iter().sum::<i64>(), 5);

    let short = tokenizer
        .encode_batch(&[("cat", None), ("the cat", None)])
        .expect("encodes");
    assert_eq!((short.batch_size, short.seq_len), (2, 4));

    let fixed = tokenizer
        .clone()
        .with_options(options(8, TruncationStyle::Bert, Padding::Fixed(12)))
        .expect("valid options");
    let batch = fixed
        .encode_batch(&[("cat", None), ("the cat", None)])
        .expect("encodes");
    assert_eq!((batch.batch_size, batch.seq_len), (2, 12));
    assert_eq!(batch.input_ids.len(), 24);
    assert_eq!(batch.attention_mask.iter().sum::<u32>(), 7);

    let empty = tokenizer.encode_batch(&[]).expect("encodes");
    assert_eq!(empty, Batch::default());
    let empty_fixed = fixed.encode_batch(&[]).expect("encodes");
    assert_eq!((empty_fixed.batch_size, empty_fixed.seq_len), (0, 12));
    assert!(empty_fixed.input_ids.is_empty());

    let encodings = tokenizer.encode_all(&inputs).expect("encodes");
    for (encoding, (a, b)) in encodings.iter().zip(inputs) {
        assert_eq!(encoding, &tokenizer.encode(a, b).expect("encodes"));
    }
    assert_eq!(
        tokenizer.collate(&encodings),
        tokenizer.encode_batch(&inputs).expect("encodes")
    );
}

#[test]
fn tokenizer_json_padding_and_truncation_are_disabled() {
    let (dir, tokenizer) = toy(Casing::Uncased, 128);
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, json_with_hf_padding_and_truncation(&tokenizer)).expect("write");

    let raw = tokenizers::Tokenizer::from_file(&path).expect("raw load");
    let raw_enc = raw
        .encode("the cat sat on the mat .", true)
        .expect("encodes");
    assert_eq!(
        raw_enc.get_ids().len(),
        128,
        "the json pads to 128 on its own"
    );
    assert!(raw.get_truncation().is_some());

    let loaded = BertTokenizer::from_tokenizer_json(&path).expect("loads");
    assert!(loaded.inner().get_padding().is_none());
    assert!(loaded.inner().get_truncation().is_none());
    assert_eq!(loaded.casing(), Some(Casing::Uncased));
    assert_eq!(loaded.special_tokens(), tokenizer.special_tokens());
    assert_eq!(loaded.vocab_size(), tokenizer.vocab_size());
    assert_eq!(loaded.options(), &EncodeOptions::default());

    let inputs = [
        ("The cat sat on the mat. The dog sat on the mat.", None),
        ("the cat", Some("A dog, running!")),
        ("a b c d e f g h", Some("b c d e f g h")),
        ("The [MASK] sat", None),
    ];
    for (a, b) in inputs {
        assert_eq!(
            loaded.encode(a, b).expect("encodes"),
            tokenizer.encode(a, b).expect("encodes"),
            "{a:?} / {b:?}"
        );
    }
    let long = loaded.encode(inputs[0].0, None).expect("encodes");
    assert_eq!(long.len(), 16, "the json's truncation to 8 is not applied");
    let batch = loaded.encode_batch(&inputs).expect("encodes");
    assert_eq!(
        batch.seq_len, 18,
        "the json's padding to 128 is not applied"
    );
    assert_eq!(batch, tokenizer.encode_batch(&inputs).expect("encodes"));

    let small = loaded
        .with_options(options(6, TruncationStyle::Bert, Padding::Fixed(6)))
        .expect("valid options");
    let batch = small.encode_batch(&inputs).expect("encodes");
    assert_eq!((batch.batch_size, batch.seq_len), (4, 6));
}

#[test]
fn tokenizer_json_without_bert_normalizer_has_no_casing() {
    let (dir, tokenizer) = toy(Casing::Cased, 128);
    let json = tokenizer.inner().to_string(false).expect("serializes");
    let mut value: serde_json::Value = serde_json::from_str(&json).expect("valid json");
    value["normalizer"] = serde_json::Value::Null;
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, value.to_string()).expect("write");
    let loaded = BertTokenizer::from_tokenizer_json(&path).expect("loads");
    assert_eq!(loaded.casing(), None);
}

fn expect_err<T: std::fmt::Debug>(result: Result<T, TokenizeError>) -> TokenizeError {
    result.expect_err("should fail")
}

#[test]
fn missing_files_name_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope").join("vocab.txt");
    let err = expect_err(BertTokenizer::from_vocab(&missing, Casing::Uncased));
    assert!(matches!(err, TokenizeError::Io { ref path, .. } if path == &missing));
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let err = expect_err(Casing::guess_from_vocab(&missing));
    assert!(matches!(err, TokenizeError::Io { .. }));

    let missing_json = dir.path().join("tokenizer.json");
    let err = expect_err(BertTokenizer::from_tokenizer_json(&missing_json));
    assert!(matches!(err, TokenizeError::Io { ref path, .. } if path == &missing_json));
    assert!(
        err.to_string()
            .contains(&missing_json.display().to_string()),
        "{err}"
    );
}

#[test]
fn malformed_vocab_names_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vocab.txt");
    let bad: [(&[u8], &str); 4] = [
        (b"", "no tokens"),
        (b"[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n", "line 3 is blank"),
        (
            b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\nthe\n",
            "line 6 repeats line 5",
        ),
        (b"[PAD]\n[UNK]\n\xff\xfe\n[CLS]\n[SEP]\n", "not valid UTF-8"),
    ];
    for (bytes, reason) in bad {
        std::fs::write(&path, bytes).expect("write");
        let err = expect_err(BertTokenizer::from_vocab(&path, Casing::Uncased));
        assert!(
            matches!(err, TokenizeError::MalformedVocab { .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(reason), "{message}");
    }

    let json = dir.path().join("tokenizer.json");
    for bytes in [&b"{not json"[..], b"{\"version\": \"1.0\"}", b"\xff"] {
        std::fs::write(&json, bytes).expect("write");
        let err = expect_err(BertTokenizer::from_tokenizer_json(&json));
        assert!(
            matches!(err, TokenizeError::MalformedTokenizerJson { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&json.display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn missing_special_tokens_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    for missing in ["[CLS]", "[SEP]", "[PAD]", "[UNK]"] {
        let tokens: Vec<&str> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the"]
            .into_iter()
            .filter(|t| *t != missing)
            .collect();
        let path = write_vocab(dir.path(), &tokens);
        let err = expect_err(BertTokenizer::from_vocab(&path, Casing::Uncased));
        assert!(
            matches!(err, TokenizeError::MissingSpecialToken { token, .. } if token == missing),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(missing) && message.contains(&path.display().to_string()));
    }

    let path = write_vocab(dir.path(), &["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the"]);
    let tokenizer = BertTokenizer::from_vocab(&path, Casing::Uncased).expect("no [MASK] is fine");
    assert_eq!(tokenizer.special_tokens().mask, None);
    let json = tokenizer.inner().to_string(false).expect("serializes");
    let mut value: serde_json::Value = serde_json::from_str(&json).expect("valid json");
    value["model"]["vocab"]
        .as_object_mut()
        .expect("vocab object")
        .remove("[SEP]");
    value["added_tokens"]
        .as_array_mut()
        .expect("added tokens")
        .retain(|t| t["content"] != "[SEP]");
    let json_path = dir.path().join("tokenizer.json");
    std::fs::write(&json_path, value.to_string()).expect("write");
    let err = expect_err(BertTokenizer::from_tokenizer_json(&json_path));
    assert!(
        matches!(
            err,
            TokenizeError::MissingSpecialToken { token: "[SEP]", .. }
        ),
        "{err:?}"
    );
}

#[test]
fn invalid_options_are_rejected() {
    let (_dir, tokenizer) = toy(Casing::Uncased, 128);
    let err = expect_err(tokenizer.clone().with_options(options(
        2,
        TruncationStyle::Bert,
        Padding::Longest,
    )));
    assert!(matches!(
        err,
        TokenizeError::MaxSeqLenTooSmall { max_seq_len: 2 }
    ));
    let err = expect_err(tokenizer.clone().with_options(options(
        16,
        TruncationStyle::Bert,
        Padding::Fixed(10),
    )));
    assert!(matches!(
        err,
        TokenizeError::FixedPaddingTooShort {
            len: 10,
            max_seq_len: 16
        }
    ));
    assert!(
        tokenizer
            .with_options(options(3, TruncationStyle::HuggingFace, Padding::Fixed(3)))
            .is_ok()
    );
    assert_eq!(EncodeOptions::default().max_seq_len, 128);
}
