//! OpenAI GPT's BPE against transformers 5's `OpenAIGPTTokenizer` on 307 GLUE dev texts and
//! pairs plus hard cases (accents, CJK, control characters, empty text), built from the released
//! tables under `$STILTS_MODELS_DIR/openai-gpt` (`scripts/make_gpt_fixtures.py` wrote the
//! expected ids). Also the fine-tuning frame around them.

use std::path::PathBuf;

use serde::Deserialize;
use stilts_data::bpe::{GPT_SPECIAL_TOKENS, GptTokenizer};
use stilts_data::encoding::Tokenizer;

const MODELS_ENV: &str = "STILTS_MODELS_DIR";

#[derive(Deserialize)]
struct Record {
    task: String,
    text_a: String,
    text_b: Option<String>,
    ids: Vec<u32>,
    tokens: Vec<String>,
}

fn tables() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os(MODELS_ENV) else {
        eprintln!("skipped: set {MODELS_ENV} to the directory holding openai-gpt/");
        return None;
    };
    let dir = PathBuf::from(dir).join("openai-gpt");
    assert!(
        dir.is_dir(),
        "{MODELS_ENV} is set but {} does not exist",
        dir.display()
    );
    Some(dir)
}

fn records() -> Vec<Record> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tokenizer_openai_gpt.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn ids_match_transformers_on_glue_text() {
    let Some(dir) = tables() else { return };
    let tokenizer = Tokenizer::at(&dir).unwrap();
    let Tokenizer::Bpe(gpt) = tokenizer else {
        panic!("the released tables are BPE")
    };
    let plain = gpt
        .clone()
        .with_max_seq_len(4096)
        .unwrap()
        .without_special_tokens();
    let records = records();
    assert!(records.len() >= 300);
    let mut checked = 0;
    for r in &records {
        let got = plain
            .encode_all(&[(r.text_a.as_str(), r.text_b.as_deref())])
            .unwrap()
            .remove(0);
        assert_eq!(got.ids, r.ids, "{} {:?} / {:?}", r.task, r.text_a, r.text_b);
        let tokens: Vec<String> = got
            .ids
            .iter()
            .map(|&id| plain.id_to_token(id).unwrap())
            .collect();
        assert_eq!(tokens, r.tokens);
        checked += 1;
    }
    println!("{checked} texts and pairs: same ids as transformers");
}

#[test]
fn fine_tuning_inputs_frame_the_bpe_pieces() {
    let Some(dir) = tables() else { return };
    // The original names of the tables.
    let gpt = GptTokenizer::from_files(
        &dir.join("encoder_bpe_40000.json"),
        &dir.join("vocab_40000.bpe"),
    )
    .unwrap();
    assert_eq!(gpt.base_vocab_size(), 40478);
    assert_eq!(gpt.vocab_size(), 40481);
    let special = gpt.special_tokens();
    assert_eq!(
        (special.start, special.delimiter, special.extract),
        (40478, 40479, 40480)
    );
    assert_eq!(
        gpt.id_to_token(40480).as_deref(),
        Some(GPT_SPECIAL_TOKENS[2])
    );
    let r = &records()[0];
    let framed = gpt
        .clone()
        .with_max_seq_len(4096)
        .unwrap()
        .encode_all(&[(r.text_a.as_str(), r.text_b.as_deref())])
        .unwrap()
        .remove(0);
    let a = gpt.bpe_ids(&r.text_a).unwrap();
    let b = gpt.bpe_ids(r.text_b.as_deref().unwrap()).unwrap();
    let want = [vec![40478], a.clone(), vec![40479], b.clone(), vec![40480]].concat();
    assert_eq!(framed.ids, want);
    // Cut to 16 tokens: both texts keep a share, the frame stays whole.
    let cut = gpt
        .with_max_seq_len(16)
        .unwrap()
        .encode_all(&[(r.text_a.as_str(), r.text_b.as_deref())])
        .unwrap()
        .remove(0);
    assert_eq!(cut.ids.len(), 16);
    assert_eq!(cut.ids[0], 40478);
    assert_eq!(*cut.ids.last().unwrap(), 40480);
    assert!(cut.ids.contains(&40479));
    assert_eq!(cut.tokens_removed, a.len() + b.len() + 3 - 16);
}
