//! BERT speed and memory on the CPU backend (burn-flex), for `cargo xtask bench bert`.
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
//! Children use `STILTS_BENCH_THREADS` rayon threads (default 2). When
//! `STILTS_BENCH_TORCH_JSON` names the JSON written by `scripts/bench_bert_torch.py`, the tables
//! put PyTorch beside us; with `STILTS_BENCH_OUT` the Markdown tables are also written there.
//!
//! Arguments: `--shapes base,minilm` (default both), `--iters N` (scales the iteration counts).

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use common::{median, peak_rss_mib, random_ids, sync};
use serde_json::{Value, json};
use stilts_models::bert::{
    AdamWGroupsConfig, BertClassifierConfig, BertConfig, BertForSequenceClassification, BertInput,
    Labels,
};

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
    /// Timed iterations of inference and training (after one warm-up).
    infer_iters: usize,
    train_iters: usize,
}

const SHAPES: [Shape; 2] = [
    Shape {
        name: "base",
        layers: 12,
        hidden: 768,
        heads: 12,
        intermediate: 3072,
        infer_iters: 3,
        train_iters: 2,
    },
    Shape {
        name: "minilm",
        layers: 6,
        hidden: 384,
        heads: 12,
        intermediate: 1536,
        infer_iters: 10,
        train_iters: 5,
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

    fn label(&self) -> String {
        format!(
            "{} ({}x{}, seq {SEQ}, batch {BATCH})",
            self.name, self.layers, self.hidden
        )
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
    for layer in &bert.encoder.layers {
        let sa = &layer.attention.self_attention;
        let width = hidden.dims()[2];
        let heads = sa.num_heads;
        let head_size = width / heads;
        let (q, k, v) = ops.time("Q/K/V projections", || {
            let q = sa.query.forward(hidden.clone());
            let k = sa.key.forward(hidden.clone());
            let v = sa.value.forward(hidden.clone());
            sync(&v);
            (q, k, v)
        });
        let split = |x: Tensor<3>| x.reshape([batch, seq, heads, head_size]).swap_dims(1, 2);
        let scores = ops.time("QK^T + scale + mask", || {
            let s = split(q)
                .matmul(split(k).swap_dims(2, 3))
                .div_scalar((head_size as f64).sqrt())
                + mask_bias.clone();
            sync(&s);
            s
        });
        let probs = ops.time("softmax", || {
            let p = softmax(scores, 3);
            sync(&p);
            p
        });
        let context = ops.time("PV + merge heads", || {
            let c = probs
                .matmul(split(v))
                .swap_dims(1, 2)
                .reshape([batch, seq, width]);
            sync(&c);
            c
        });
        let projected = ops.time("attention output dense", || {
            let o = layer.attention.output.dense.forward(context);
            sync(&o);
            o
        });
        let attended = ops.time("residual + LayerNorm", || {
            let a = layer
                .attention
                .output
                .layer_norm
                .forward(projected + hidden.clone());
            sync(&a);
            a
        });
        let inner = ops.time("FFN up dense", || {
            let i = layer.intermediate.dense.forward(attended.clone());
            sync(&i);
            i
        });
        let activated = ops.time("GELU", || {
            let g = gelu(inner);
            sync(&g);
            g
        });
        let down = ops.time("FFN down dense", || {
            let d = layer.output.dense.forward(activated);
            sync(&d);
            d
        });
        hidden = ops.time("residual + LayerNorm", || {
            let h = layer.output.layer_norm.forward(down + attended);
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
    let device = Device::flex();
    let a = Tensor::<2>::random([GEMM_N, GEMM_N], Distribution::Default, &device);
    let b = Tensor::<2>::random([GEMM_N, GEMM_N], Distribution::Default, &device);
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
    let device = Device::flex();
    let model = shape.config().init(&device);
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
    let device = Device::flex().autodiff();
    let mut model = shape.config().init(&device);
    let mut optimizer = AdamWGroupsConfig::new().init();
    let input = input(&device);
    let labels = Tensor::<1, Int>::from_data(
        TensorData::new(
            (0..BATCH as i64).map(|i| i % 2).collect::<Vec<_>>(),
            [BATCH],
        ),
        &device,
    );
    let (mut fwd, mut bwd, mut opt, mut total) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..=iters {
        let t0 = Instant::now();
        let logits = model.forward(input.clone());
        let loss = model.loss(logits, Labels::Classes(labels.clone()));
        sync(&loss);
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let t2 = Instant::now();
        model = optimizer.step(2e-5, model, grads);
        // Make sure the update has happened before stopping the clock.
        sync(&model.classifier.weight.val());
        let t3 = Instant::now();
        if i > 0 {
            fwd.push((t1 - t0).as_secs_f64());
            bwd.push((t2 - t1).as_secs_f64());
            opt.push((t3 - t2).as_secs_f64());
            total.push((t3 - t0).as_secs_f64());
        }
    }
    let secs = median(total);
    json!({
        "secs": secs,
        "examples_per_s": BATCH as f64 / secs,
        "gflops": 3.0 * shape.forward_flops() / secs / 1e9,
        "peak_rss_mib": peak_rss_mib(),
        "phases_ms": {
            "forward + loss": median(fwd) * 1e3,
            "backward": median(bwd) * 1e3,
            "optimizer (AdamW)": median(opt) * 1e3,
        },
    })
}

fn run_child(what: &str, shape: &str, scale: f64, threads: &str) -> Value {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .args(["--child", what, shape, &scale.to_string()])
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("spawn the benchmark child");
    if !out.status.success() {
        panic!(
            "child {what} {shape} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("child prints JSON");
    serde_json::from_str(line).expect("child JSON")
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_owned(),
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let what = args[i + 1].as_str();
        let shape = SHAPES.iter().find(|s| s.name == args[i + 2]).copied();
        let scale: f64 = args[i + 3].parse().unwrap_or(1.0);
        let iters = |n: usize| ((n as f64 * scale).round() as usize).max(1);
        let result = match (what, shape) {
            ("gemm", _) => child_gemm(),
            ("infer", Some(s)) => child_infer(s, iters(s.infer_iters)),
            ("train", Some(s)) => child_train(s, iters(s.train_iters)),
            _ => panic!("unknown child {what}"),
        };
        println!("{result}");
        return;
    }
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let shapes: Vec<Shape> = match value_of("--shapes") {
        Some(list) => list
            .split(',')
            .filter_map(|n| SHAPES.iter().find(|s| s.name == n).copied())
            .collect(),
        None => SHAPES.to_vec(),
    };
    let scale: f64 = value_of("--iters-scale")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let threads = std::env::var("STILTS_BENCH_THREADS").unwrap_or_else(|_| "2".to_owned());
    let torch: Value = std::env::var("STILTS_BENCH_TORCH_JSON")
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);

    eprintln!(
        "bench bert: {threads} threads, shapes {:?}",
        shapes.iter().map(|s| s.name).collect::<Vec<_>>()
    );
    let gemm = run_child("gemm", "-", 1.0, &threads);
    let peak = f(&gemm["gflops"]);
    let torch_peak = f(&torch["gemm"]["gflops"]);
    eprintln!(
        "peak GEMM: flex {} GFLOP/s, torch {}",
        num(peak, 1),
        num(torch_peak, 1)
    );

    let mut md = String::new();
    let _ = writeln!(
        md,
        "Peak f32 GEMM ({GEMM_N}^3, best of 5): flex {} GFLOP/s, PyTorch {} GFLOP/s.\n",
        num(peak, 1),
        num(torch_peak, 1)
    );
    let _ = writeln!(
        md,
        "| model | phase | stilts ex/s | PyTorch ex/s | stilts / PyTorch | stilts GFLOP/s (% flex peak) | PyTorch GFLOP/s (% torch peak) | stilts peak RSS MiB | PyTorch peak RSS MiB |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut details = String::new();
    for shape in &shapes {
        for phase in ["infer", "train"] {
            eprintln!("running {phase} {}", shape.name);
            let ours = run_child(phase, shape.name, scale, &threads);
            let theirs = &torch[shape.name][phase];
            let pct = |g: Option<f64>, p: Option<f64>| match (g, p) {
                (Some(g), Some(p)) => format!("{g:.1} ({:.0}%)", 100.0 * g / p),
                (Some(g), None) => format!("{g:.1}"),
                _ => "-".to_owned(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                shape.label(),
                if phase == "infer" {
                    "inference"
                } else {
                    "train step"
                },
                num(f(&ours["examples_per_s"]), 2),
                num(f(&theirs["examples_per_s"]), 2),
                ratio(f(&ours["examples_per_s"]), f(&theirs["examples_per_s"])),
                pct(f(&ours["gflops"]), peak),
                pct(f(&theirs["gflops"]), torch_peak),
                num(f(&ours["peak_rss_mib"]), 0),
                num(f(&theirs["peak_rss_mib"]), 0),
            );
            if phase == "infer" {
                let _ = writeln!(
                    details,
                    "\nInference, {}: time per op class over all layers, one forward (ms)\n",
                    shape.label()
                );
                let _ = writeln!(
                    details,
                    "| op | stilts ms | PyTorch ms | stilts / PyTorch time |"
                );
                let _ = writeln!(details, "|---|---:|---:|---:|");
                let order: Vec<String> = ours["ops_order"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                for op in &order {
                    let a = f(&ours["ops_ms"][op]);
                    let b = f(&theirs["ops_ms"][op]);
                    let _ = writeln!(
                        details,
                        "| {op} | {} | {} | {} |",
                        num(a, 1),
                        num(b, 1),
                        ratio(a, b)
                    );
                }
                let _ = writeln!(
                    details,
                    "| total (instrumented) | {} | {} | {} |",
                    num(f(&ours["ops_total_ms"]), 1),
                    num(f(&theirs["ops_total_ms"]), 1),
                    ratio(f(&ours["ops_total_ms"]), f(&theirs["ops_total_ms"]))
                );
            } else {
                let _ = writeln!(
                    details,
                    "\nTrain step, {}: phases (ms, median)\n",
                    shape.label()
                );
                let _ = writeln!(
                    details,
                    "| phase | stilts ms | PyTorch ms | stilts / PyTorch time |"
                );
                let _ = writeln!(details, "|---|---:|---:|---:|");
                for p in ["forward + loss", "backward", "optimizer (AdamW)"] {
                    let a = f(&ours["phases_ms"][p]);
                    let b = f(&theirs["phases_ms"][p]);
                    let _ = writeln!(
                        details,
                        "| {p} | {} | {} | {} |",
                        num(a, 1),
                        num(b, 1),
                        ratio(a, b)
                    );
                }
            }
        }
    }
    md.push_str(&details);
    println!("{md}");
    if let Ok(path) = std::env::var("STILTS_BENCH_OUT") {
        if let Err(e) = std::fs::write(&path, &md) {
            eprintln!("cannot write {path}: {e}");
        } else {
            eprintln!("tables written to {path}");
        }
    }
}
