//! The fused kernels (`stilts_models::kernels::cpu`) on their own, against burn-flex's
//! operations on the same data: a benchmark, not a test. Shapes are MiniLM's at seq 128, batch 8
//! (attention scores `[8, 12, 128, 128]`, FFN activations `[1024, 1536]`, hidden
//! `[1024, 384]`). Threads: `RAYON_NUM_THREADS`. Prints one line per kernel: median ms of the
//! fused kernel, of burn's operation, and elements per nanosecond of the fused one.

mod common;

use std::time::Instant;

use burn::tensor::activation;
use burn::tensor::{Device, Distribution, Tensor};
use common::{median, sync};
use stilts_models::kernels::{self, cpu};

fn time(iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times = Vec::new();
    for _ in 0..iters {
        let start = Instant::now();
        f();
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    median(times)
}

fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 10007) as f32 / 1000.0 - 5.0)
        .collect()
}

fn report(name: &str, n: usize, fused: f64, burn: f64) {
    println!(
        "{name:<28} fused {fused:8.2} ms   burn {burn:8.2} ms   {:.2}x   {:.2} elements/ns",
        burn / fused,
        n as f64 / (fused * 1e6)
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let device = Device::flex();
    let iters = 20;

    let (rows, row) = (8 * 12 * 128, 128);
    let x = values(rows * row);
    let t = Tensor::<4>::random([8, 12, 128, 128], Distribution::Normal(0.0, 2.0), &device);
    let fused = time(iters, || drop(cpu::softmax(&x, row)));
    let burn = time(iters, || sync(&activation::softmax(t.clone(), 3)));
    report("softmax [8,12,128,128]", x.len(), fused, burn);
    let fused = time(iters, || sync(&kernels::softmax_last(t.clone())));
    report("  as a tensor operation", x.len(), fused, burn);
    // Heads split from `[batch, seq, hidden]` as BERT does: strided views.
    let split = |x: Tensor<3>| x.reshape([8, 128, 12, 32]).swap_dims(1, 2);
    let q = split(Tensor::random(
        [8, 128, 384],
        Distribution::Normal(0.0, 1.0),
        &device,
    ));
    let k = split(Tensor::random(
        [8, 128, 384],
        Distribution::Normal(0.0, 1.0),
        &device,
    ));
    let mask = Tensor::<4>::zeros([8, 1, 1, 128], &device);
    let scores = q.matmul(k.swap_dims(2, 3)).div_scalar(8.0) + mask;
    let fused = time(iters, || sync(&kernels::softmax_last(scores.clone())));
    let burn = time(iters, || sync(&activation::softmax(scores.clone(), 3)));
    report("  on attention scores", x.len(), fused, burn);
    let contiguous = time(iters, || sync(&(scores.clone() * 1.0)));
    report("  (a scale of the scores)", x.len(), contiguous, f64::NAN);
    let y = cpu::softmax(&x, row);
    let fused = time(iters, || drop(cpu::softmax_backward(&y, &x, row)));
    report("softmax backward", x.len(), fused, f64::NAN);

    let x = values(1024 * 1536);
    let t = Tensor::<2>::random([1024, 1536], Distribution::Normal(0.0, 2.0), &device);
    let fused = time(iters, || drop(cpu::gelu(&x)));
    let burn = time(iters, || sync(&activation::gelu(t.clone())));
    report("gelu [1024,1536]", x.len(), fused, burn);
    let fused = time(iters, || sync(&kernels::gelu(t.clone())));
    report("  as a tensor operation", x.len(), fused, burn);
    let fused = time(iters, || drop(cpu::gelu_backward(&x, &x)));
    report("gelu backward", x.len(), fused, f64::NAN);

    let x = values(1024 * 384);
    let (gamma, beta) = (vec![1.1f32; 384], vec![0.1f32; 384]);
    let t = Tensor::<2>::random([1024, 384], Distribution::Normal(0.0, 2.0), &device);
    let (g, b) = (
        Tensor::<1>::ones([384], &device),
        Tensor::<1>::zeros([384], &device),
    );
    let fused = time(iters, || drop(cpu::layer_norm(&x, &gamma, &beta, 1e-12)));
    let burn = time(iters, || {
        sync(&burn::tensor::module::layer_norm(
            t.clone(),
            g.clone(),
            Some(b.clone()),
            1e-12,
        ))
    });
    report("layer norm [1024,384]", x.len(), fused, burn);
    let f = cpu::layer_norm(&x, &gamma, &beta, 1e-12);
    let fused = time(iters, || {
        drop(cpu::layer_norm_backward(&x, &gamma, &f.mean, &f.rstd, &x))
    });
    report("layer norm backward", x.len(), fused, f64::NAN);

    let ad = device.clone().autodiff();
    let dropout = burn::nn::DropoutConfig::new(0.1).init();
    let scores = Tensor::<4>::random([8, 12, 128, 128], Distribution::Normal(0.0, 1.0), &ad);
    let burn = time(iters, || sync(&dropout.forward(scores.clone())));
    report(
        "dropout [8,12,128,128] (burn)",
        8 * 12 * 128 * 128,
        burn,
        burn,
    );
    let burn = time(iters, || {
        sync(&scores.random_like(Distribution::Bernoulli(0.9)))
    });
    report("  its Bernoulli draw", 8 * 12 * 128 * 128, burn, burn);

    let n = 384 * 1536;
    let (mut w, g, mut m, mut v) = (values(n), values(n), values(n), values(n));
    let step = cpu::AdamWStep {
        lr: 1e-3,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-6,
        decay: 0.99999,
        correction_1: 0.1,
        correction_2: 0.001,
        first: false,
    };
    let fused = time(iters, || cpu::adamw(&mut w, &g, &mut m, &mut v, &step));
    report("adamw [384,1536]", n, fused, f64::NAN);
    let _ = kernels::enabled();
}
