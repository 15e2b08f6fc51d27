//! BERT speed and memory on the CPU backend (burn-flex), for `cargo xtask bench bert`, and on
//! any device (`STILTS_BENCH_DEVICE`, `STILTS_BENCH_PRECISION`: [`common::bench_device`]) for
//! `scripts/device-check.sh`; the shapes are BERT-base, BERT-large (the device check's) and
//! MiniLM.
//!
//! A custom harness (`harness = false`). The parent process runs one child process per
//! (shape, measurement), so each child's peak RSS (`VmHWM` of `/proc/self/status`) is its own:
//!
//! - `gemm`: the machine's peak f32 GEMM rate through flex (a 2048^3 matmul, best of 5);
//! - `infer`: forward passes of `BertForSequenceClassification` (random weights, full
//!   `seq`-token rows, batch `batch`), examples/s, plus one instrumented forward that times
//!   each op class (projections, attention, softmax, LayerNorm, GELU, ...) over all layers;
//! - `train`: forward + cross-entropy + backward + AdamW (weight decay groups), examples/s,
//!   split into forward / backward / optimizer.
//!
//! `--child <what> <shape> <iters>` runs one and prints its JSON line; `cargo xtask bench bert`
//! runs them against `scripts/bench_bert_torch.py`, interleaved ([`common::bench_main`]).
//! Threads: `RAYON_NUM_THREADS`. `STILTS_FUSED_KERNELS=0` measures burn's unfused GELU,
//! softmax and LayerNorm instead of `stilts_models::kernels`.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, FloatDType, Int, Tensor, TensorData};
use common::{bench_device, bench_main, median, peak_rss_mib, random_ids, sync, train_measurement};
use serde_json::{Value, json};
use stilts_models::bert::{
    AdamWGroupsConfig, BertClassifierConfig, BertConfig, BertForSequenceClassification, BertInput,
    Labels,
};
use stilts_models::kernels::{self, Norm};
use stilts_models::mixed;

const SEQ: usize = 128;
const BATCH: usize = 8;
const VOCAB: usize = 30522;
const GEMM_N: usize = 2048;

#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    layers: usize,
    hidden: usize,
    heads: usize,
    intermediate: usize,
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "base",
        layers: 12,
        hidden: 768,
        heads: 12,
        intermediate: 3072,
    },
    Shape {
        name: "large",
        layers: 24,
        hidden: 1024,
        heads: 16,
        intermediate: 4096,
    },
    Shape {
        name: "minilm",
        layers: 6,
        hidden: 384,
        heads: 12,
        intermediate: 1536,
    },
];

impl Shape {
    fn config(&self) -> BertClassifierConfig {
        let bert = BertConfig::new(
            VOCAB,
            self.hidden,
            self.layers,
            self.heads,
            self.intermediate,
        );
        BertClassifierConfig::new(bert, 2)
    }

    /// Multiply-adds x2 of one forward pass over `BATCH x SEQ` tokens: the dense layers of
    /// every encoder layer, the two attention matmuls, pooler and head (embeddings are lookups).
    fn forward_flops(&self) -> f64 {
        let (h, i, l) = (
            self.hidden as f64,
            self.intermediate as f64,
            self.layers as f64,
        );
        let tokens = (BATCH * SEQ) as f64;
        let dense = 2.0 * tokens * (4.0 * h * h + 2.0 * h * i) * l;
        let attention = 2.0 * 2.0 * BATCH as f64 * (SEQ * SEQ) as f64 * h * l;
        let head = 2.0 * BATCH as f64 * (h * h + 2.0 * h);
        dense + attention + head
    }
}

fn input(device: &Device) -> BertInput {
    let ids = random_ids(BATCH, SEQ, VOCAB, device);
    let types = Tensor::<2, Int>::from_data(
        TensorData::new(
            (0..BATCH * SEQ)
                .map(|i| i64::from(i % SEQ >= SEQ / 2))
                .collect::<Vec<_>>(),
            [BATCH, SEQ],
        ),
        device,
    );
    BertInput::new(ids.clone(), types, ids.ones_like())
}

/// Per-op-class seconds, in first-seen order.
#[derive(Default)]
struct Ops(Vec<(&'static str, f64)>);

impl Ops {
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        let secs = start.elapsed().as_secs_f64();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += secs,
            None => self.0.push((name, secs)),
        }
        out
    }
}

/// [`BertForSequenceClassification::forward`] without dropout, timing each op class.
fn instrumented_forward(
    model: &BertForSequenceClassification,
    input: BertInput,
    ops: &mut Ops,
) -> Tensor<2> {
    let bert = &model.bert;
    let [batch, seq] = input.input_ids.dims();
    let mask_bias = ops.time("embeddings + mask", || {
        input
            .attention_mask
            .clone()
            .float()
            .neg()
            .add_scalar(1.0)
            .mul_scalar(f32::MIN)
            .reshape([batch, 1, 1, seq])
    });
    let mut hidden = ops.time("embeddings + mask", || {
        let e = bert
            .embeddings
            .forward(input.input_ids.clone(), input.token_type_ids.clone());
        sync(&e);
        e
    });
    let mask_bias = mixed::like(mask_bias, &hidden);
    for layer in &bert.encoder.layers {
        let sa = &layer.attention.self_attention;
        let width = hidden.dims()[2];
        let heads = sa.num_heads;
        let head_size = width / heads;
        let (q, k, v) = ops.time("Q/K/V projections", || {
            let q = kernels::linear(&sa.query, hidden.clone());
            let k = kernels::linear(&sa.key, hidden.clone());
            let v = kernels::linear(&sa.value, hidden.clone());
            sync(&v);
            (q, k, v)
        });
        let split = |x: Tensor<3>| x.reshape([batch, seq, heads, head_size]).swap_dims(1, 2);
        let scores = ops.time("QK^T + scale", || {
            let s = kernels::matmul_div(
                split(q),
                split(k).swap_dims(2, 3),
                (head_size as f64).sqrt(),
            );
            sync(&s);
            s
        });
        let probs = ops.time("mask + softmax", || {
            let p = kernels::masked_softmax(scores, mask_bias.clone());
            sync(&p);
            p
        });
        let context = ops.time("PV + merge heads", || {
            let c = kernels::matmul(probs, split(v))
                .swap_dims(1, 2)
                .reshape([batch, seq, width]);
            sync(&c);
            c
        });
        let projected = ops.time("attention output dense", || {
            let o = kernels::linear(&layer.attention.output.dense, context);
            sync(&o);
            o
        });
        let attended = ops.time("residual + LayerNorm", || {
            let out = &layer.attention.output;
            let norm = Norm {
                module: &out.layer_norm,
                epsilon: out.layer_norm_eps,
            };
            let a = norm.forward_residual(projected, hidden.clone());
            sync(&a);
            a
        });
        let inner = ops.time("FFN up dense", || {
            let i = kernels::linear(&layer.intermediate.dense, attended.clone());
            sync(&i);
            i
        });
        let activated = ops.time("GELU", || {
            let g = kernels::gelu(inner);
            sync(&g);
            g
        });
        let down = ops.time("FFN down dense", || {
            let d = kernels::linear(&layer.output.dense, activated);
            sync(&d);
            d
        });
        hidden = ops.time("residual + LayerNorm", || {
            let norm = Norm {
                module: &layer.output.layer_norm,
                epsilon: layer.output.layer_norm_eps,
            };
            let h = norm.forward_residual(down, attended);
            sync(&h);
            h
        });
    }
    ops.time("pooler + classifier", || {
        let pooled = bert.pooler.forward(hidden);
        let logits = model.classifier.forward(pooled);
        sync(&logits);
        logits
    })
}

fn child_gemm() -> Value {
    let (device, dtype) = bench_device();
    let a = Tensor::<2>::random([GEMM_N, GEMM_N], Distribution::Default, &device).cast(dtype);
    let b = Tensor::<2>::random([GEMM_N, GEMM_N], Distribution::Default, &device).cast(dtype);
    let mut best = f64::INFINITY;
    for _ in 0..6 {
        let start = Instant::now();
        let c = a.clone().matmul(b.clone());
        sync(&c);
        best = best.min(start.elapsed().as_secs_f64());
    }
    let flops = 2.0 * (GEMM_N as f64).powi(3);
    json!({"gflops": flops / best / 1e9, "n": GEMM_N})
}

fn child_infer(shape: Shape, iters: usize) -> Value {
    let (device, dtype) = bench_device();
    let model = mixed::compute_copy(shape.config().init(&device), dtype);
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
    let mut ops = Ops::default();
    let mut ops_total = 0.0;
    for _ in 0..2 {
        ops = Ops::default();
        let start = Instant::now();
        instrumented_forward(&model, input.clone(), &mut ops);
        ops_total = start.elapsed().as_secs_f64();
    }
    json!({
        "secs": secs,
        "examples_per_s": BATCH as f64 / secs,
        "gflops": shape.forward_flops() / secs / 1e9,
        "peak_rss_mib": peak_rss_mib(),
        "ops_ms": ops.0.iter().map(|(n, s)| (n.to_string(), s * 1e3)).collect::<BTreeMap<_, _>>(),
        "ops_order": ops.0.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(),
        "ops_total_ms": ops_total * 1e3,
    })
}

fn child_train(shape: Shape, iters: usize) -> Value {
    let (device, dtype) = bench_device();
    let device = device.autodiff();
    let model = shape.config().init(&device);
    let mut optimizer = AdamWGroupsConfig::new().init();
    let input = input(&device);
    let labels = Tensor::<1, Int>::from_data(
        TensorData::new(
            (0..BATCH as i64).map(|i| i % 2).collect::<Vec<_>>(),
            [BATCH],
        ),
        &device,
    );
    // In an Option so that each step can hand the model to the optimizer by value (a clone
    // would share the weights, and the fused AdamW step would copy them to update them).
    let mut model = Some(model);
    let mut measured = train_measurement(iters, BATCH, "optimizer (AdamW)", || {
        let m = model
            .take()
            .expect("the model is put back after every step");
        let t0 = Instant::now();
        let logits = mixed::compute_copy(m.clone(), dtype).forward(input.clone());
        let loss = m.loss(
            logits.cast(FloatDType::F32),
            Labels::Classes(labels.clone()),
        );
        sync(&loss);
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let t2 = Instant::now();
        let m = optimizer.step(2e-5, m, grads);
        // Make sure the update has happened before stopping the clock.
        sync(&m.classifier.weight.val());
        model = Some(m);
        [t0, t1, t2, Instant::now()]
    });
    let secs = measured["secs"].as_f64().unwrap_or(f64::NAN);
    measured["gflops"] = json!(3.0 * shape.forward_flops() / secs / 1e9);
    measured
}

fn child(what: &str, shape: &str, iters: usize) -> Result<Value, String> {
    if what == "gemm" {
        return Ok(child_gemm());
    }
    let shape = SHAPES
        .iter()
        .find(|s| s.name == shape)
        .copied()
        .ok_or_else(|| format!("unknown shape `{shape}` (known: base, large, minilm)"))?;
    match what {
        "infer" => Ok(child_infer(shape, iters)),
        "train" => Ok(child_train(shape, iters)),
        other => Err(format!(
            "unknown measurement `{other}` (known: gemm, infer, train)"
        )),
    }
}

fn main() {
    // BERT-large is the device check's (one train step takes minutes on two cores).
    let shapes: Vec<&str> = SHAPES
        .iter()
        .map(|s| s.name)
        .filter(|&n| n != "large")
        .collect();
    bench_main(&shapes, &["gemm", "infer", "train"], child);
}
