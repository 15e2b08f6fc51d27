//! The fused kernels on `f32` slices: GELU (erf form) and its derivative, softmax over rows and
//! its backward (and with an attention mask added), LayerNorm over rows and its backward,
//! dropout, an AdamW step, and matrix products with a bias or a scale (through gemm).
//!
//! Each kernel is a plain loop that LLVM vectorises; a macro (`simd!`) compiles it three times,
//! for the baseline target, with AVX2 + FMA and with AVX-512F, and picks at run time. No
//! `mul_add` is written and Rust never contracts `a * b + c` on its own, so both versions round
//! identically: results do not depend on the CPU. Reductions keep eight partial sums in a fixed
//! order for the same reason, and rows are split into fixed-size chunks for rayon, so the thread count
//! does not change a result either.

pub use adamw::{AdamWStep, adamw};
pub use elementwise::{
    DropoutMask, dropout, dropout_in_place, gelu, gelu_backward, gelu_backward_in_place,
    gelu_in_place, gelu_tanh, gelu_tanh_backward, gelu_tanh_backward_in_place, gelu_tanh_in_place,
};
pub use products::{Operand, Start, matmul, sum_rows};
pub use rows::{
    LayerNormForward, LayerNormGrads, add_layer_norm_in_place, cross_entropy,
    cross_entropy_backward_in_place, layer_norm, layer_norm_backward, masked_softmax_in_place,
    softmax, softmax_backward, softmax_backward_in_place, softmax_in_place,
};

/// Partial sums per reduction (one AVX2 register of `f32`).
const LANES: usize = 8;

/// Elements per rayon task for elementwise kernels.
const ELEMENTS_PER_TASK: usize = 16 * 1024;

/// Compiles `$body` as a baseline function, one with AVX2 + FMA and one with AVX-512F, choosing at
/// run time.
macro_rules! simd {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                let widest = $crate::kernels::cpu::widest();
                if widest >= 2
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features `avx512` was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if widest >= 1
                    && std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features `avx2` was compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

mod adamw;
mod elementwise;
mod products;
mod rows;

/// The widest variant the kernels may pick (0 baseline, 1 AVX2, 2 AVX-512), where the CPU has it;
/// the tests lower it to check that every variant computes the same bits.
static WIDEST: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(2);

fn widest() -> u8 {
    WIDEST.load(std::sync::atomic::Ordering::Relaxed)
}

/// `2^23 * 1.5`: adding and subtracting it rounds an `f32` below `2^22` to the nearest integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x` in `f32`, within 2 ulp of `f32::exp` on `[-87.3, 88]` (0 below, clamped above), branch-free so that it vectorises.
///
/// Cephes' `expf`: `x = n ln 2 + r` with `|r| <= ln 2 / 2` (ln 2 split in two for the
/// reduction), a degree-6 polynomial for `e^r`, and `2^n` written into the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let below = x < -87.3;
    let x = x.clamp(-87.3, 88.0);
    let t = x * LOG2E + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    let bits = t.to_bits().wrapping_sub(ROUND_MAGIC.to_bits()) as i32;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    let y = e * f32::from_bits(((bits + 127) as u32) << 23);
    // Below the smallest normal result, 0 (as `expf` reaches soon after): a masked score
    // (`-1e4`, the lowest `f32`) must give an exact 0, not a tiny value that softmax's scaling
    // turns subnormal, which slows every product it enters on Intel cores.
    if below { 0.0 } else { y }
}

/// `erf(x)` in `f32`, within 1e-6 of `erf`, branch-free so that it vectorises.
///
/// The rational approximation of Eigen's `generic_fast_erf_float` (also XLA's `EmitErfF32`):
/// an odd degree-13 numerator over an even degree-8 denominator on `[-4, 4]`, where `erf`
/// reaches `±1` in `f32`.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    x * p / q
}

/// `tanh(z)` as `1 - 2 / (e^{2z} + 1)` with [`exp`] (within 2e-7 of `f32::tanh`), branch-free.
#[inline(always)]
pub(crate) fn tanh(z: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * z) + 1.0)
}

/// Rows per rayon task for a row length: about [`ELEMENTS_PER_TASK`] elements, at least one row.
fn rows_per_task(row: usize) -> usize {
    (ELEMENTS_PER_TASK / row.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` evenly spaced values from `lo` to `hi`.
    pub(super) fn grid(n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n)
            .map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32)
            .collect()
    }

    fn erf_f64(x: f64) -> f64 {
        // Abramowitz & Stegun 7.1.26 is too coarse for a reference; integrate instead.
        let steps = 2_000;
        let h = x / steps as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(0.0) + f(x);
        for k in 1..steps {
            s += f(k as f64 * h) * if k % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_within_two_ulp_of_std() {
        for x in grid(20_001, -87.0, 88.0) {
            let (got, want) = (exp(x), x.exp());
            let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
            assert!(ulp <= 2, "exp({x}) = {got}, std {want} ({ulp} ulp)");
        }
        assert_eq!(exp(-87.4), 0.0);
        assert_eq!(exp(-1e4), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn erf_is_within_1e6_of_the_integral() {
        for x in grid(4001, -6.0, 6.0) {
            let want = erf_f64(x as f64);
            let got = erf(x) as f64;
            assert!(
                (got - want).abs() < 1e-6,
                "erf({x}) = {got}, integral {want}"
            );
        }
    }

    #[test]
    fn gelu_and_its_derivative_match_f64() {
        let x = grid(10_007, -10.0, 10.0);
        let y = gelu(&x);
        let ones = vec![1.0; x.len()];
        let d = gelu_backward(&x, &ones);
        for ((&x, &y), &d) in x.iter().zip(&y).zip(&d) {
            let xd = x as f64;
            let cdf = 0.5 * (1.0 + erf_f64(xd / 2f64.sqrt()));
            let pdf = (-0.5 * xd * xd).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (y as f64 - xd * cdf).abs() <= 2e-6 * xd.abs().max(1.0),
                "gelu({x})"
            );
            assert!((d as f64 - (cdf + xd * pdf)).abs() <= 2e-6, "gelu'({x})");
        }
    }

    #[test]
    fn the_tanh_form_and_its_derivative_match_f64() {
        let x = grid(10_007, -10.0, 10.0);
        let y = gelu_tanh(&x);
        let d = gelu_tanh_backward(&x, &vec![1.0; x.len()]);
        let c = (2.0 / std::f64::consts::PI).sqrt();
        for ((&x, &y), &d) in x.iter().zip(&y).zip(&d) {
            let xd = x as f64;
            let t = (c * (xd + 0.044715 * xd.powi(3))).tanh();
            let want = 0.5 * xd * (1.0 + t);
            let dwant =
                0.5 * (1.0 + t) + 0.5 * xd * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * xd * xd);
            assert!(
                (y as f64 - want).abs() <= 2e-6 * xd.abs().max(1.0),
                "gelu_tanh({x})"
            );
            assert!(
                (d as f64 - dwant).abs() <= 2e-6 * dwant.abs().max(1.0),
                "gelu_tanh'({x})"
            );
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_match_f64() {
        let row = 37;
        let x: Vec<f32> = (0..row * 50)
            .map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 10.0)
            .collect();
        let y = softmax(&x, row);
        for (x, y) in x.chunks(row).zip(y.chunks(row)) {
            let m = x.iter().copied().fold(f32::MIN, f32::max) as f64;
            let z: f64 = x.iter().map(|&v| (v as f64 - m).exp()).sum();
            for (&x, &y) in x.iter().zip(y) {
                let want = (x as f64 - m).exp() / z;
                assert!(
                    (y as f64 - want).abs() <= 1e-6 * want.max(1e-3),
                    "{y} vs {want}"
                );
            }
        }
    }

    #[test]
    fn dropout_keeps_the_right_share_and_its_backward_uses_the_same_mask() {
        let x = vec![1.0f32; 200_000];
        let mask = DropoutMask::new(0x1234_5678_9abc_def0, 0.1);
        let y = dropout(&x, &mask);
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64;
        assert!((kept - 0.9).abs() < 0.003, "kept {kept}");
        assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        let again = dropout(&x, &mask);
        assert_eq!(y, again, "the same seed draws the same mask");
        let other = dropout(&x, &DropoutMask::new(0x1234_5678_9abc_def1, 0.1));
        assert_ne!(y, other, "another seed draws another mask");
        // Neighbouring elements are not correlated (a counter hash, not a stream).
        let pairs = y
            .windows(2)
            .filter(|w| (w[0] == 0.0) && (w[1] == 0.0))
            .count() as f64;
        assert!((pairs / x.len() as f64 - 0.01).abs() < 0.002, "{pairs}");
        assert!(
            dropout(&x, &DropoutMask::new(7, 0.0))
                .iter()
                .all(|&v| v == 1.0)
        );
    }

    /// `rows` rows of 384 deterministic values, and a LayerNorm scale and shift for them.
    fn row_inputs(rows: usize) -> (usize, Vec<f32>, Vec<f32>, Vec<f32>) {
        let row = 384;
        let x: Vec<f32> = (0..row * rows)
            .map(|i| ((i * 7919) % 977) as f32 / 97.0 - 5.0)
            .collect();
        let gamma: Vec<f32> = (0..row).map(|i| 1.0 + i as f32 / 1000.0).collect();
        let beta: Vec<f32> = (0..row).map(|i| i as f32 / 500.0).collect();
        (row, x, gamma, beta)
    }

    #[test]
    fn masked_scores_get_exact_zeros_never_subnormal_ones() {
        let row = 64;
        let x: Vec<f32> = (0..row)
            .map(|i| if i % 3 == 0 { -1e4 } else { i as f32 / 10.0 })
            .collect();
        let mask: Vec<f32> = (0..row)
            .map(|i| if i % 5 == 0 { f32::MIN } else { 0.0 })
            .collect();
        let mut masked = x.clone();
        masked_softmax_in_place(&mut masked, row, &mask, 1);
        for (i, (p, q)) in softmax(&x, row).iter().zip(&masked).enumerate() {
            assert!(*p == 0.0 || p.is_normal(), "{i}: {p}");
            assert!(*q == 0.0 || q.is_normal(), "{i}: {q}");
            assert_eq!(*p == 0.0, i % 3 == 0, "{i}: {p}");
            assert_eq!(*q == 0.0, i % 3 == 0 || i % 5 == 0, "{i}: {q}");
        }
    }

    #[test]
    fn the_inference_variants_give_the_bits_of_the_training_kernels() {
        let (row, x, gamma, beta) = row_inputs(70);
        let residual: Vec<f32> = x.iter().rev().map(|v| v * 0.5).collect();
        let sum: Vec<f32> = x.iter().zip(&residual).map(|(a, b)| a + b).collect();
        let mut fused = x.clone();
        add_layer_norm_in_place(&mut fused, &residual, &gamma, &beta, 1e-12);
        assert_eq!(fused, layer_norm(&sum, &gamma, &beta, 1e-12).output);

        // Two sequences, each mask row shared by half the rows (as heads x queries share it).
        let mask: Vec<f32> = (0..2 * row)
            .map(|i| if i % 7 == 0 { f32::MIN } else { 0.0 })
            .collect();
        let group = x.len() / row / 2;
        let masked: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, v)| v + mask[(i / row / group) * row + i % row])
            .collect();
        let mut fused = x.clone();
        masked_softmax_in_place(&mut fused, row, &mask, group);
        assert_eq!(fused, softmax(&masked, row));
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let (row, x, gamma, beta) = row_inputs(300);
        let run = || {
            let f = layer_norm(&x, &gamma, &beta, 1e-12);
            let b = layer_norm_backward(&x, &gamma, &f.mean, &f.rstd, &x);
            let d = dropout(&x, &DropoutMask::new(99, 0.3));
            (f, b, softmax(&x, row), gelu(&x), d)
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(run);
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap()
            .install(run);
        assert_eq!(one, three);
    }

    #[test]
    fn every_instruction_set_variant_computes_the_same_bits() {
        let (row, x, gamma, beta) = row_inputs(40);
        let run = || {
            let f = layer_norm(&x, &gamma, &beta, 1e-12);
            let b = layer_norm_backward(&x, &gamma, &f.mean, &f.rstd, &x);
            let y = softmax(&x, row);
            let s = softmax_backward(&y, &x, row);
            let g = (gelu(&x), gelu_backward(&x, &x), gelu_tanh(&x));
            let (mut w, mut m, mut v) = (x.clone(), vec![0.0; x.len()], vec![0.0; x.len()]);
            let step = AdamWStep {
                lr: 1e-3,
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-6,
                decay: 1.0 - 1e-5,
                correction_1: 0.1,
                correction_2: 0.001,
                first: true,
            };
            adamw(&mut w, &x, &mut m, &mut v, &step);
            let step = AdamWStep {
                first: false,
                correction_1: 0.19,
                correction_2: 0.002,
                ..step
            };
            adamw(&mut w, &x, &mut m, &mut v, &step);
            (f, b, y, s, g, w, m, v)
        };
        let at = |level: u8| {
            WIDEST.store(level, std::sync::atomic::Ordering::Relaxed);
            let out = run();
            WIDEST.store(2, std::sync::atomic::Ordering::Relaxed);
            out
        };
        let (baseline, avx2, avx512) = (at(0), at(1), at(2));
        assert!(baseline == avx2, "AVX2 differs from the baseline");
        assert!(baseline == avx512, "AVX-512 differs from the baseline");
    }
}
