//! ELMo speed and memory on the CPU backend (burn-flex): the stilts side of `cargo xtask bench
//! elmo`, which runs this binary and `scripts/bench_elmo_torch.py` (AllenNLP's modules) in
//! alternation and puts the two side by side.
//!
//! A custom harness (`harness = false`). `--child <what> <shape> <iters>` runs one measurement in
//! this process and prints one JSON line, so its peak RSS (`VmHWM`) is its own:
//!
//! - `infer`: the paper's ELMo classifier in eval mode: the biLM (stateless), the scalar mix,
//!   a projection to 512 of every word, max-pooling over the words, a linear classifier;
//! - `train`: the same in training (dropout 0.2 on the mix, every parameter trained):
//!   cross-entropy, backward, Adam (lr 1e-4, eps 1e-8, no weight decay).
//!
//! Random weights; 32 sentences of 20 words (word `j` of sentence `i` has
//! `3 + (7i + 3j) % 8` lowercase letters), `<S>` and `</S>` added, 50 character ids a word.
//! Threads: `RAYON_NUM_THREADS`. Without `--child` it measures every (shape, what) once.

mod common;

use std::time::Instant;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{bench_main, median, peak_rss_mib, sync, train_measurement};
use serde_json::{Value, json};
use stilts_models::bert::AdamWGroupsConfig;
use stilts_models::elmo::{ElmoConfig, ElmoEncoder, RELEASED_FILTERS};
use stilts_models::loss::{Labels, sequence_loss};
use stilts_models::{EncoderInput, SentenceEncoder};

const BATCH: usize = 32;
const WORDS: usize = 20;
const CHARS: usize = 50;

/// `small`: the published small ELMo's options. `cpu`: the random ELMo of the CPU-scale grids.
const SHAPES: [&str; 2] = ["small", "cpu"];
const WHATS: [&str; 2] = ["infer", "train"];

fn config(shape: &str) -> Option<ElmoConfig> {
    let (filters, projection, cells) = match shape {
        "small" => (RELEASED_FILTERS.to_vec(), 128, 1024),
        "cpu" => (RELEASED_FILTERS[..4].to_vec(), 64, 256),
        _ => return None,
    };
    Some(
        ElmoConfig::new(filters, projection, cells)
            .with_n_highway(1)
            .with_pool_dim(512)
            .with_dropout(0.2),
    )
}

#[derive(Module, Debug)]
struct Classifier {
    elmo: ElmoEncoder,
    head: Linear,
}

impl Classifier {
    fn forward(&self, input: EncoderInput) -> Tensor<2> {
        self.head.forward(self.elmo.encode(input).pooled)
    }
}

/// The batch: `<S>`, the words, `</S>` per sentence, 50 ids a word, flattened.
fn input(device: &Device) -> EncoderInput {
    let boundary = |c: i64| {
        let mut row = vec![261i64; CHARS];
        row[..3].copy_from_slice(&[259, c, 260]);
        row
    };
    let mut ids = Vec::with_capacity(BATCH * (WORDS + 2) * CHARS);
    for i in 0..BATCH {
        ids.extend(boundary(257));
        for j in 0..WORDS {
            let len = 3 + (7 * i + 3 * j) % 8;
            let mut row = vec![261i64; CHARS];
            row[0] = 259;
            for (k, slot) in row[1..=len].iter_mut().enumerate() {
                *slot = i64::from(b'a') + ((i * 31 + j * 17 + k * 7) % 26) as i64 + 1;
            }
            row[len + 1] = 260;
            ids.extend(row);
        }
        ids.extend(boundary(258));
    }
    let ids =
        Tensor::<2, Int>::from_data(TensorData::new(ids, [BATCH, (WORDS + 2) * CHARS]), device);
    EncoderInput {
        token_type_ids: ids.zeros_like(),
        attention_mask: ids.ones_like(),
        input_ids: ids,
        with_aux_loss: false,
    }
}

fn model(config: &ElmoConfig, device: &Device) -> Classifier {
    Classifier {
        elmo: config.init_encoder(device),
        head: LinearConfig::new(config.pool_dim, 2).init(device),
    }
}

fn child_infer(config: &ElmoConfig, iters: usize) -> Value {
    let device = Device::flex();
    let model = model(config, &device);
    let input = input(&device);
    let mut times = Vec::new();
    for i in 0..=iters {
        let start = Instant::now();
        let logits = model.forward(input.clone());
        sync(&logits);
        if i > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    let secs = median(times);
    json!({"secs": secs, "examples_per_s": BATCH as f64 / secs, "peak_rss_mib": peak_rss_mib()})
}

fn child_train(config: &ElmoConfig, iters: usize) -> Value {
    let device = Device::flex().autodiff();
    // In an Option so that each step can hand the model to the optimizer by value.
    let mut model = Some(model(config, &device));
    let mut optimizer = AdamWGroupsConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(0.0)
        .init();
    let input = input(&device);
    let labels = Tensor::<1, Int>::from_data(
        TensorData::new(
            (0..BATCH as i64).map(|i| i % 2).collect::<Vec<_>>(),
            [BATCH],
        ),
        &device,
    );
    train_measurement(iters, BATCH, "optimizer", || {
        let m = model
            .take()
            .expect("the model is put back after every step");
        let t0 = Instant::now();
        let loss = sequence_loss(m.forward(input.clone()), Labels::Classes(labels.clone()));
        sync(&loss);
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let t2 = Instant::now();
        let m = optimizer.step(1e-4, m, grads);
        sync(&m.head.weight.val());
        model = Some(m);
        [t0, t1, t2, Instant::now()]
    })
}

fn child(what: &str, shape: &str, iters: usize) -> Result<Value, String> {
    let config =
        config(shape).ok_or_else(|| format!("unknown shape `{shape}` (known: {SHAPES:?})"))?;
    match what {
        "infer" => Ok(child_infer(&config, iters)),
        "train" => Ok(child_train(&config, iters)),
        other => Err(format!("unknown measurement `{other}` (known: {WHATS:?})")),
    }
}

fn main() {
    bench_main(&SHAPES, &WHATS, child);
}
