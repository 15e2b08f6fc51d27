//! Load + tokenize throughput for SST-2 train (67,349 single sentences), in examples/s.
//!
//! `cargo xtask bench data` runs it together with the Python anchor
//! (`scripts/bench_data_python.py`: csv + HF `BertTokenizerFast`) and prints the ratio.
//! Needs `GLUE_DIR` and `STILTS_MODELS_DIR` (see README.md); without them it says so and exits.

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stilts_data::tokenize::{BertTokenizer, Casing};
use stilts_data::{BuiltinTask, Dataset, LoadOptions};

struct Inputs {
    dir: PathBuf,
    vocab: PathBuf,
}

fn inputs() -> Option<Inputs> {
    let glue = std::env::var_os("GLUE_DIR")?;
    let models = std::env::var_os("STILTS_MODELS_DIR")?;
    Some(Inputs {
        dir: BuiltinTask::Sst2
            .task()
            .dir_in(PathBuf::from(glue).as_path()),
        vocab: PathBuf::from(models).join("bert-base-uncased/vocab.txt"),
    })
}

fn pairs(data: &Dataset) -> Vec<(&str, Option<&str>)> {
    data.examples
        .iter()
        .map(|e| (e.text_a.as_str(), e.text_b.as_deref()))
        .collect()
}

fn bench(c: &mut Criterion) {
    let Some(inputs) = inputs() else {
        eprintln!("load_tokenize: set GLUE_DIR and STILTS_MODELS_DIR to run this benchmark");
        return;
    };
    let task = BuiltinTask::Sst2.task();
    let load = || {
        task.load(&inputs.dir, "train", LoadOptions::default())
            .expect("SST-2 train loads")
    };
    let tokenizer =
        BertTokenizer::from_vocab(&inputs.vocab, Casing::Uncased).expect("vocab.txt loads");
    let data = load();
    let texts = pairs(&data);

    let mut group = c.benchmark_group("sst2_train");
    group.sample_size(10);
    group.throughput(Throughput::Elements(data.len() as u64));
    group.bench_function("load", |b| b.iter(load));
    group.bench_function("tokenize", |b| {
        b.iter(|| tokenizer.encode_all(&texts).expect("encodes"))
    });
    group.bench_function("load_tokenize", |b| {
        b.iter(|| {
            let data = load();
            tokenizer.encode_all(&pairs(&data)).expect("encodes").len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
