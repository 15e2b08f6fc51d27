//! `stilts-models` alone: sentence embeddings from a Hugging Face BERT directory, as
//! sentence-transformers computes them for all-MiniLM-L6-v2 (mean of the last hidden states
//! over the attention mask), and their cosine similarities.
//!
//! ```sh
//! cargo run -p stilts-models --example embed -- path/to/all-MiniLM-L6-v2
//! STILTS_MINILM_DIR=path/to/all-MiniLM-L6-v2 cargo run -p stilts-models --example embed
//! ```
//!
//! The directory needs `config.json`, `model.safetensors` (or `pytorch_model.bin`) and a
//! `tokenizer.json`; `stilts-models` has no tokenizer, so the ids come from the `tokenizers`
//! crate (`stilts-data` has BERT's tokenizer too, `stilts_data::encoding::Tokenizer`).

use std::error::Error;
use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use stilts_models::bert::{BertInput, BertModel};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

const SENTENCES: [&str; 5] = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "A man is riding a horse.",
    "Someone is riding a horse in the field.",
    "The new movie is awesome.",
];

/// all-MiniLM-L6-v2's `max_seq_length` (sentence_bert_config.json).
const MAX_TOKENS: usize = 256;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        let mut source = e.source();
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}

/// `tokenizers` errors are `Box<dyn Error + Send + Sync>`, so this is the error type.
fn run() -> Result<(), Box<dyn Error + Send + Sync>> {
    let dir = std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os("STILTS_MINILM_DIR"))
        .map(PathBuf::from)
        .ok_or("usage: embed MODEL_DIR (or set STILTS_MINILM_DIR to a BERT directory)")?;

    let device = Device::flex();
    // The encoder without a task head; a checkpoint's head (if any) is ignored.
    let (model, report) = BertModel::from_pretrained(&dir, &device)?;
    println!("{}: {} tensors loaded", dir.display(), report.loaded.len());

    // Pad to the longest sentence of the batch; the file's own padding may be a fixed length.
    let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
        .map_err(|e| format!("{}: {e}", dir.join("tokenizer.json").display()))?;
    tokenizer.with_padding(Some(PaddingParams::default()));
    tokenizer.with_truncation(Some(TruncationParams {
        max_length: MAX_TOKENS,
        ..TruncationParams::default()
    }))?;
    let encodings = tokenizer.encode_batch(SENTENCES.to_vec(), true)?;
    let (n, len) = (encodings.len(), encodings[0].len());
    let column = |get: fn(&tokenizers::Encoding) -> &[u32]| -> Tensor<2, Int> {
        let values: Vec<i64> = encodings
            .iter()
            .flat_map(|e| get(e).iter().map(|&v| i64::from(v)))
            .collect();
        Tensor::from_data(TensorData::new(values, [n, len]), &device)
    };
    let mask = column(tokenizers::Encoding::get_attention_mask); // [n, len]
    let input = BertInput::new(
        column(tokenizers::Encoding::get_ids),
        column(tokenizers::Encoding::get_type_ids),
        mask.clone(),
    );

    let hidden = model.forward(input).last_hidden_state; // [n, len, hidden]
    let mask = mask.float().reshape([n, len, 1]); // [n, len, 1]
    let summed = (hidden * mask.clone()).sum_dim(1); // [n, 1, hidden]
    let counts = mask.sum_dim(1).clamp_min(1e-9); // [n, 1, 1]
    let width = summed.dims()[2];
    let embeddings = (summed / counts).reshape([n, width]); // [n, hidden]
    let norms = embeddings.clone().powf_scalar(2.0).sum_dim(1).sqrt(); // [n, 1]
    let unit = embeddings / norms; // [n, hidden]
    let similarity = unit.clone().matmul(unit.transpose()); // [n, n]
    let values: Vec<f32> = similarity
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| format!("reading the similarities: {e:?}"))?;

    println!("{n} sentences, {width}-dimensional embeddings; cosine similarity:");
    for (i, sentence) in SENTENCES.iter().enumerate() {
        let row: Vec<String> = (0..n)
            .map(|j| format!("{:5.2}", values[i * n + j]))
            .collect();
        println!("  [{i}] {}  {sentence}", row.join(" "));
    }
    Ok(())
}
