//! GPT speed and memory on the CPU backend (burn-flex): the stilts side of `cargo xtask bench
//! gpt`, which runs this binary and `scripts/bench_gpt_torch.py` alternately (A B B A ...) and
//! puts the two side by side.
//!
//! A custom harness (`harness = false`). `--child <what> <shape> <iters>` runs one measurement in
//! this process and prints one JSON line, so its peak RSS (`VmHWM`) is its own:
//!
//! - `infer`: forward passes of the encoder and a classifier on the last token (eval, no
//!   gradients), examples/s;
//! - `train`: the fine-tuning step of Radford et al.: forward, cross-entropy plus 0.5 times the
//!   language-model loss over the input tokens, backward, AdamW (decay on matrices only);
//! - `train-noaux`: the same step without the language-model loss (Tables 3 and 4 of Phang et
//!   al.).
//!
//! Random weights, full `seq`-token rows, batch `batch`. Threads: `RAYON_NUM_THREADS`. Without
//! `--child` it measures every (shape, what) once, stilts alone, and prints the JSON lines.

mod common;

use std::time::Instant;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{bench_main, median, peak_rss_mib, random_ids, sync, train_measurement};
use serde_json::{Value, json};
use stilts_models::bert::AdamWGroupsConfig;
use stilts_models::gpt::{GptConfig, GptModel};
use stilts_models::loss::{Labels, sequence_loss};
use stilts_models::{EncoderInput, SentenceEncoder};

const SEQ: usize = 128;
const BATCH: usize = 8;
/// The original release's 40,478 BPE tokens plus the three fine-tuning tokens.
const VOCAB: usize = 40_481;
const AUX_LM_WEIGHT: f64 = 0.5;

#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    layers: usize,
    width: usize,
    heads: usize,
}

/// `gpt`: the released model (12 x 768). `small`: the random GPT of the CPU-scale grids.
const SHAPES: [Shape; 2] = [
    Shape {
        name: "gpt",
        layers: 12,
        width: 768,
        heads: 12,
    },
    Shape {
        name: "small",
        layers: 4,
        width: 256,
        heads: 4,
    },
];

const WHATS: [&str; 3] = ["infer", "train", "train-noaux"];

#[derive(Module, Debug)]
struct Classifier {
    gpt: GptModel,
    head: Linear,
}

impl Classifier {
    fn new(shape: Shape, device: &Device) -> Self {
        let config = GptConfig::new(VOCAB)
            .with_n_embd(shape.width)
            .with_n_layer(shape.layers)
            .with_n_head(shape.heads);
        Classifier {
            gpt: config.init(device),
            head: LinearConfig::new(shape.width, 2).init(device),
        }
    }

    /// Logits `[batch, 2]` and, with `aux`, the language-model loss `[1]`.
    fn forward(&self, input: EncoderInput) -> (Tensor<2>, Option<Tensor<1>>) {
        let out = self.gpt.encode(input);
        (self.head.forward(out.pooled), out.aux_loss)
    }
}

fn input(device: &Device, with_aux_loss: bool) -> EncoderInput {
    let ids = random_ids(BATCH, SEQ, VOCAB, device);
    EncoderInput {
        token_type_ids: ids.zeros_like(),
        attention_mask: ids.ones_like(),
        input_ids: ids,
        with_aux_loss,
    }
}

fn child_infer(shape: Shape, iters: usize) -> Value {
    let device = Device::flex();
    let model = Classifier::new(shape, &device);
    let input = input(&device, false);
    let mut times = Vec::new();
    for i in 0..=iters {
        let start = Instant::now();
        let (logits, _) = model.forward(input.clone());
        sync(&logits);
        if i > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    let secs = median(times);
    json!({"secs": secs, "examples_per_s": BATCH as f64 / secs, "peak_rss_mib": peak_rss_mib()})
}

fn child_train(shape: Shape, iters: usize, aux: bool) -> Value {
    let device = Device::flex().autodiff();
    // In an Option so that each step can hand the model to the optimizer by value.
    let mut model = Some(Classifier::new(shape, &device));
    let mut optimizer = AdamWGroupsConfig::new().with_epsilon(1e-8).init();
    let input = input(&device, aux);
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
        let (logits, lm) = m.forward(input.clone());
        let mut loss = sequence_loss(logits, Labels::Classes(labels.clone()));
        if let Some(lm) = lm {
            loss = loss + lm.mul_scalar(AUX_LM_WEIGHT);
        }
        sync(&loss);
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let t2 = Instant::now();
        let m = optimizer.step(6.25e-5, m, grads);
        sync(&m.head.weight.val());
        model = Some(m);
        [t0, t1, t2, Instant::now()]
    })
}

fn child(what: &str, shape: &str, iters: usize) -> Result<Value, String> {
    let shape = SHAPES
        .iter()
        .find(|s| s.name == shape)
        .copied()
        .ok_or_else(|| format!("unknown shape `{shape}` (known: gpt, small)"))?;
    match what {
        "infer" => Ok(child_infer(shape, iters)),
        "train" => Ok(child_train(shape, iters, true)),
        "train-noaux" => Ok(child_train(shape, iters, false)),
        other => Err(format!("unknown measurement `{other}` (known: {WHATS:?})")),
    }
}

fn main() {
    let shapes: Vec<&str> = SHAPES.iter().map(|s| s.name).collect();
    bench_main(&shapes, &WHATS, child);
}
