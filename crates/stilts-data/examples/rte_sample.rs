//! `stilts-data` alone: load RTE, draw the paper's 1k regime as a seeded sample recorded in a
//! manifest, re-select it from the manifest, and tokenize it for BERT.
//!
//! ```sh
//! export GLUE_DIR=path/to/glue_data STILTS_MODELS_DIR=path/to/models  # models/bert-base-uncased/vocab.txt
//! cargo run -p stilts-data --example rte_sample [-- MANIFEST.json]
//! ```
//!
//! Prints the label counts of the full training split and of the sample, and the token lengths
//! of the sample's `[CLS] a [SEP] b [SEP]` encodings.

use std::error::Error;
use std::path::PathBuf;

use stilts_data::encoding::{InputEncoder, Tokenizer};
use stilts_data::sample::{SampleManifest, apply_manifest, downsample};
use stilts_data::{BuiltinTask, Dataset, LoadOptions};

const SAMPLE_SIZE: usize = 1000;
const SEED: u64 = 0;
/// The restart the sample belongs to (each restart of the paper's 1k regime draws its own).
const STREAM: u64 = 0;
/// BERT's fine-tuning length; longer pairs would be truncated to it.
const MAX_SEQ_LEN: usize = 128;

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

/// The directory an environment variable names, or an error saying what to set.
fn dir_from_env(var: &str, holds: &str) -> Result<PathBuf, String> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{var} is not set: point it at the directory holding {holds}"))
}

fn run() -> Result<(), Box<dyn Error>> {
    let glue_dir = dir_from_env(
        "GLUE_DIR",
        "GLUE in its official layout (RTE/train.tsv, ...)",
    )?;
    let models_dir = dir_from_env("STILTS_MODELS_DIR", "bert-base-uncased/vocab.txt")?;
    let manifest_path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("rte-1k-s0-r0.json"));

    let rte = BuiltinTask::Rte.task();
    let train = rte.load(&rte.dir_in(&glue_dir), "train", LoadOptions::default())?;
    let (sample, manifest) = downsample(&train, SAMPLE_SIZE, SEED, STREAM)?;
    manifest.write(&manifest_path)?;
    // The manifest re-selects exactly these examples later (and refuses a changed file).
    let again = apply_manifest(&train, &SampleManifest::read(&manifest_path)?)?;
    assert_eq!(again.examples, sample.examples);

    println!(
        "{} train: {} examples from {}",
        rte.name,
        train.len(),
        train.path.display()
    );
    print_label_counts("full train", &train, rte.labels());
    print_label_counts("sample", &sample, rte.labels());
    println!(
        "sample: seed {SEED}, stream {STREAM}, ids sha256 {}..., manifest {}",
        &manifest.ids_sha256[..16],
        manifest_path.display()
    );

    // A generous limit, so that the lengths are the untruncated ones.
    let tokenizer = Tokenizer::at(&models_dir.join("bert-base-uncased"))?.with_max_seq_len(512)?;
    let texts: Vec<(&str, Option<&str>)> = sample
        .examples
        .iter()
        .map(|e| (e.text_a.as_str(), e.text_b.as_deref()))
        .collect();
    let encodings = tokenizer.encode_all(&texts)?;
    let mut lengths: Vec<usize> = encodings.iter().map(|e| e.len()).collect();
    lengths.sort_unstable();
    let quantile = |q: f64| lengths[((lengths.len() - 1) as f64 * q).round() as usize];
    let mean = lengths.iter().sum::<usize>() as f64 / lengths.len() as f64;
    let over = lengths.iter().filter(|&&l| l > MAX_SEQ_LEN).count();
    println!(
        "tokens per pair (WordPiece, vocabulary of {}): min {} median {} mean {mean:.1} p95 {} max {}",
        tokenizer.vocab_size(),
        lengths[0],
        quantile(0.5),
        quantile(0.95),
        lengths[lengths.len() - 1],
    );
    println!(
        "{over} of {} pairs are longer than {MAX_SEQ_LEN} tokens",
        lengths.len()
    );
    let batch = tokenizer.collate(&encodings[..4]);
    println!(
        "a batch of the first 4: {} x {} ids, {} of them padding",
        batch.batch_size,
        batch.seq_len,
        batch.attention_mask.iter().filter(|&&m| m == 0).count()
    );
    Ok(())
}

fn print_label_counts(what: &str, data: &Dataset, labels: &[String]) {
    let counts = data.label_counts(labels.len());
    let parts: Vec<String> = labels
        .iter()
        .zip(&counts)
        .map(|(label, n)| {
            format!(
                "{label} {n} ({:.1}%)",
                100.0 * *n as f64 / data.len() as f64
            )
        })
        .collect();
    println!("{what:>10}: {}", parts.join(", "));
}
