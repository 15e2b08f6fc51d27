//! What the encoder benchmarks share: the peak RSS of this process, forcing pending work, the
//! median, and the deterministic random token ids every side (stilts and PyTorch) feeds.

#![allow(dead_code)]

use burn::tensor::{Device, Int, Tensor, TensorData};

/// This process's peak resident set (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The device a child measures on: `STILTS_BENCH_DEVICE` (a `--device` spelling: `cpu`,
/// `wgpu`, `tch-cuda:0`, ...; default `cpu`) in the precision `STILTS_BENCH_PRECISION` (`f32`,
/// default, or `bf16`: the weights stay f32 and each pass runs on a bf16 copy,
/// [`stilts_models::mixed`]). Exits 2 with the reason when the device cannot be opened.
pub fn bench_device() -> (Device, burn::tensor::FloatDType) {
    use stilts_models::device::{DeviceChoice, Precision};
    let fail = |e: String| -> ! {
        eprintln!("{e}");
        std::process::exit(2)
    };
    let choice: DeviceChoice = std::env::var("STILTS_BENCH_DEVICE")
        .unwrap_or_else(|_| "cpu".into())
        .parse()
        .unwrap_or_else(|e: stilts_models::device::DeviceError| fail(e.to_string()));
    let precision: Precision = std::env::var("STILTS_BENCH_PRECISION")
        .unwrap_or_else(|_| "f32".into())
        .parse()
        .unwrap_or_else(|e: stilts_models::device::DeviceError| fail(e.to_string()));
    let device = choice.device().unwrap_or_else(|e| fail(e.to_string()));
    precision
        .check(&device)
        .unwrap_or_else(|e| fail(e.to_string()));
    (device, precision.dtype())
}

/// Waits for `t`: flex computes eagerly; reading one element makes sure nothing is pending.
pub fn sync<const D: usize>(t: &Tensor<D>) {
    let _ = t.clone().flatten::<1>(0, D - 1).narrow(0, 0, 1).into_data();
}

/// The median (upper for an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// `[batch, seq]` ids in `1000..vocab` from a fixed xorshift stream.
pub fn random_ids(batch: usize, seq: usize, vocab: usize, device: &Device) -> Tensor<2, Int> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let ids: Vec<i64> = (0..batch * seq)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % (vocab as u64 - 1000)) as i64 + 1000
        })
        .collect();
    Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, seq]), device)
}

/// A benchmark binary's entry point: `--child <what> <shape> <iters>` runs `child` and prints
/// its JSON line (exit 2 on a bad argument); `cargo bench` (no arguments, `--bench` or
/// `--quick`) measures every (shape, what) once in a child process of its own, stilts alone
/// (the comparison with PyTorch is `cargo xtask bench`'s).
pub fn bench_main(
    shapes: &[&str],
    whats: &[&str],
    child: impl Fn(&str, &str, usize) -> Result<serde_json::Value, String>,
) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        // As the `stilts` binary runs.
        stilts_models::device::keep_freed_memory();
        let [what, shape, iters] = [1, 2, 3].map(|k| args.get(i + k).cloned().unwrap_or_default());
        match child(&what, &shape, iters.parse().unwrap_or(2)) {
            Ok(v) => println!("{v}"),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
        return;
    }
    if args.iter().any(|a| a == "--bench" || a == "--quick") || args.is_empty() {
        let exe = std::env::current_exe().expect("the benchmark's own path");
        for shape in shapes {
            for what in whats {
                let out = std::process::Command::new(&exe)
                    .args(["--child", what, shape, "1"])
                    .output()
                    .expect("spawn the benchmark child");
                println!(
                    "{shape} {what}: {}",
                    String::from_utf8_lossy(&out.stdout).trim()
                );
            }
        }
    }
}

/// Runs one training step `iters + 1` times (the first a warm-up) and returns the measurement:
/// median seconds per step, examples/s for `batch` examples a step, peak RSS, and the median of
/// each phase (the optimizer's under the name the anchor script gives it). `step` returns the instants at its start, after the forward pass and loss, after
/// the backward pass, and after the optimizer.
pub fn train_measurement(
    iters: usize,
    batch: usize,
    optimizer: &str,
    mut step: impl FnMut() -> [std::time::Instant; 4],
) -> serde_json::Value {
    let (mut fwd, mut bwd, mut opt, mut total) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..=iters {
        let [t0, t1, t2, t3] = step();
        if i > 0 {
            fwd.push((t1 - t0).as_secs_f64());
            bwd.push((t2 - t1).as_secs_f64());
            opt.push((t3 - t2).as_secs_f64());
            total.push((t3 - t0).as_secs_f64());
        }
    }
    let secs = median(total);
    serde_json::json!({
        "secs": secs,
        "examples_per_s": batch as f64 / secs,
        "peak_rss_mib": peak_rss_mib(),
        "phases_ms": {
            "forward + loss": median(fwd) * 1e3,
            "backward": median(bwd) * 1e3,
            optimizer: median(opt) * 1e3,
        },
    })
}
