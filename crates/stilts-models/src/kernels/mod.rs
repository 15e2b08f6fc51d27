//! Fused kernels for the default CPU backend: GELU (erf form), softmax over the last dimension
//! and LayerNorm, each one pass over the data with its own backward pass.
//!
//! burn-flex runs GELU as a single-threaded scalar loop over libm's `erff` (forward and
//! backward), and burn's autodiff runs softmax and LayerNorm as chains of elementwise and
//! reduction operations, each a pass over memory with a graph node and a saved tensor. Here each
//! is a [`FusedOps`] backend extension: flex gets row- or chunk-parallel vectorised kernels
//! ([`cpu`]; `flex.rs` maps the tensors onto them) and autodiff gets one graph node per call
//! whose backward is one fused kernel too (`autodiff.rs`).
//!
//! The functions below ([`gelu`], [`softmax_last`], [`layer_norm`]) are what models call. They
//! take the fused path for `f32` tensors on flex (trained or not) and fall back to burn's own
//! operations on every other backend and precision, so `wgpu`, `cuda` and `tch` builds compute
//! what they computed before. [`products`] does the same for matrix products: linear layers
//! with their bias and attention's scaled scores, each written once. [`set_enabled`]
//! (or `STILTS_FUSED_KERNELS=0`) turns all of this off, for the benchmark's comparison and the
//! tests that check one against the other.

mod autodiff;
pub mod cpu;
pub mod entropy;
mod flex;
pub mod products;

pub use entropy::{EntropyOps, cross_entropy};
pub use products::{ProductOps, linear, linear_rows, matmul, matmul_div};

use std::sync::atomic::{AtomicU8, Ordering};

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, DispatchDevice, backend_extension};
use burn::nn::{Dropout, LayerNorm};
use burn::tensor::activation;
use burn::tensor::{DType, Distribution, FloatDType, Tensor};

/// The fused operations, on every backend that implements them (flex, and autodiff over it).
///
/// Shapes: `x` is any rank with the reduced dimension last; `gamma`, `beta` are `[last]`;
/// `mean`, `rstd` are `[rows]` where `rows` is the product of the other dimensions.
#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: Backend {
    /// `x Φ(x)` (with `tanh`, its tanh approximation), elementwise.
    fn fused_gelu(x: FloatTensor<Self>, tanh: bool) -> FloatTensor<Self>;
    /// `grad * d/dx gelu(x)`, elementwise.
    fn fused_gelu_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        tanh: bool,
    ) -> FloatTensor<Self>;
    /// Softmax over the last dimension.
    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Softmax of `x + mask` over the last dimension, `x` `[batch, ..., n]` and `mask`
    /// `[batch, n]` (any shape with those elements), the mask row broadcast over the middle
    /// dimensions. The mask gets no gradient.
    fn fused_masked_softmax(x: FloatTensor<Self>, mask: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The input's gradient from softmax's output `y` and its gradient.
    fn fused_softmax_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    /// LayerNorm over the last dimension: the output, each row's mean and `1 / sqrt(var + eps)`.
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// `LayerNorm(x + residual)` for a forward pass alone (no statistics kept): on flex one pass
    /// over `x`'s own buffer.
    fn fused_add_layer_norm(
        x: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
    /// LayerNorm's gradients (input, gamma, beta) from the forward's input, gamma and statistics.
    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// Dropout with the mask `seed` and `prob` draw ([`cpu::DropoutMask`]); on a gradient, its
    /// backward pass.
    fn fused_dropout(x: FloatTensor<Self>, seed: u64, prob: f64) -> FloatTensor<Self>;
    /// One AdamW step ([`cpu::adamw`]): the updated parameter, first and second moments.
    #[allow(clippy::too_many_arguments)]
    fn fused_adamw(
        w: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        lr: f32,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        decay: f32,
        correction_1: f32,
        correction_2: f32,
        first: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

const UNSET: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

static ENABLED: AtomicU8 = AtomicU8::new(UNSET);

/// Whether the fused path is taken where it applies: `STILTS_FUSED_KERNELS=0` turns it off
/// for the process, [`set_enabled`] overrides either.
pub fn enabled() -> bool {
    match ENABLED.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => {
            let on = std::env::var("STILTS_FUSED_KERNELS").map_or(true, |v| v != "0");
            ENABLED.store(if on { ON } else { OFF }, Ordering::Relaxed);
            on
        }
    }
}

/// Turns the fused path on or off for the whole process (tests and benchmarks compare them).
pub fn set_enabled(on: bool) {
    ENABLED.store(if on { ON } else { OFF }, Ordering::Relaxed);
}

/// Whether `x` takes the fused path: `f32` on flex (autodiff or not), with the path enabled.
pub fn applies<const D: usize>(x: &Tensor<D>) -> bool {
    fused(x)
}

fn fused<const D: usize>(x: &Tensor<D>) -> bool {
    enabled()
        && x.dtype() == DType::F32
        && matches!(x.device().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// `gelu(x) = x Φ(x)`, the erf form (BERT's `"gelu"`).
///
/// # Shapes
///
/// - x: any; the output has its shape.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    gelu_form(x, false)
}

/// `gelu(x)`'s tanh approximation, `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (OpenAI
/// GPT's, and `transformers`' `gelu_new`).
///
/// # Shapes
///
/// - x: any; the output has its shape.
pub fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    gelu_form(x, true)
}

fn gelu_form<const D: usize>(x: Tensor<D>, tanh: bool) -> Tensor<D> {
    if !fused(&x) {
        return if tanh {
            activation::gelu_approximate(x)
        } else {
            activation::gelu(x)
        };
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::fused_gelu(
        x.into_dispatch(),
        tanh,
    ))
}

/// Softmax over the last dimension; a bf16 or f16 input is computed in fp32 and returned in its
/// type ([`crate::mixed`]).
///
/// # Shapes
///
/// - x: `[..., n]`; the output has its shape.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if crate::mixed::reduced(&x).is_some() {
        return crate::mixed::in_f32(x, softmax_last);
    }
    if !fused(&x) {
        return activation::softmax(x, D - 1);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::fused_softmax(
        x.into_dispatch(),
    ))
}

/// `softmax_last(scores + mask)`, attention's masked softmax: on the fused path one pass that
/// adds each batch's mask row and normalises, over the scores' own buffer. The mask gets no
/// gradient there (it is built from token masks); a mask that requires one takes burn's path.
///
/// # Shapes
///
/// - scores: `[batch, heads, query, key]`; the output has its shape.
/// - mask: `[batch, 1, 1, key]`
pub fn masked_softmax(scores: Tensor<4>, mask: Tensor<4>) -> Tensor<4> {
    let [batch, _, _, key] = scores.dims();
    let fits = key > 0
        && mask.dims() == [batch, 1, 1, key]
        && mask.dtype() == DType::F32
        && !mask.is_require_grad();
    if !fused(&scores) || !fits {
        return softmax_last(scores + mask);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::fused_masked_softmax(
        scores.into_dispatch(),
        mask.into_dispatch(),
    ))
}

/// LayerNorm over the last dimension with a scale and a shift (biased variance, as PyTorch); a
/// bf16 or f16 input is normalised in fp32 and returned in its type ([`crate::mixed`]).
///
/// # Shapes
///
/// - x: `[..., n]`; the output has its shape.
/// - gamma, beta: `[n]`.
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> Tensor<D> {
    if crate::mixed::reduced(&x).is_some() {
        let (gamma, beta) = (gamma.cast(FloatDType::F32), beta.cast(FloatDType::F32));
        return crate::mixed::in_f32(x, |x| layer_norm(x, gamma, beta, epsilon));
    }
    if !fused(&x) || gamma.dtype() != DType::F32 || beta.dtype() != DType::F32 {
        return burn::tensor::module::layer_norm(x, gamma, Some(beta), epsilon);
    }
    let (y, _, _) = <burn::backend::Dispatch as FusedOps>::fused_layer_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    Tensor::from_dispatch(y)
}

/// A LayerNorm module with its epsilon, which burn's [`LayerNorm`] keeps to itself: the module
/// whose parameters are loaded and trained, normalising through [`layer_norm`] where the fused
/// path applies and through the module's own forward elsewhere.
#[derive(Debug, Clone, Copy)]
pub struct Norm<'a> {
    /// The parameters.
    pub module: &'a LayerNorm,
    /// The epsilon the module was built with.
    pub epsilon: f64,
}

impl Norm<'_> {
    /// In training the fused kernel (one graph node, a fused backward); at inference burn-flex's
    /// own fused LayerNorm, which is faster forward-only (one pass; ours keeps the statistics
    /// for backward).
    ///
    /// # Shapes
    ///
    /// - x: `[..., d_model]`; the output has its shape.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let training = x.device().is_autodiff();
        match &self.module.beta {
            Some(beta) if crate::mixed::reduced(&x).is_some() => {
                layer_norm(x, self.module.gamma.val(), beta.val(), self.epsilon)
            }
            Some(beta)
                if training && fused(&x) && self.module.gamma.val().dtype() == DType::F32 =>
            {
                layer_norm(x, self.module.gamma.val(), beta.val(), self.epsilon)
            }
            _ => self.module.forward(x),
        }
    }

    /// `forward(x + residual)`; without autodiff on the fused path, one pass over `x`'s buffer
    /// ([`FusedOps::fused_add_layer_norm`]).
    ///
    /// # Shapes
    ///
    /// - x, residual: `[..., d_model]`; the output has their shape.
    pub fn forward_residual<const D: usize>(&self, x: Tensor<D>, residual: Tensor<D>) -> Tensor<D> {
        let gamma = self.module.gamma.val();
        let plain = !x.device().is_autodiff()
            && fused(&x)
            && residual.dtype() == DType::F32
            && gamma.dtype() == DType::F32
            && x.dims() == residual.dims();
        match &self.module.beta {
            Some(beta) if plain && beta.val().dtype() == DType::F32 => {
                Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::fused_add_layer_norm(
                    x.into_dispatch(),
                    residual.into_dispatch(),
                    gamma.into_dispatch(),
                    beta.val().into_dispatch(),
                    self.epsilon,
                ))
            }
            _ => self.forward(x + residual),
        }
    }
}

/// One AdamW step on flex ([`cpu::adamw`]; the caller checks [`applies`]): the updated
/// parameter, first and second moments. On the first step the moments passed are only shapes.
///
/// # Shapes
///
/// - w, grad, moment_1, moment_2: any, all the same; the outputs have it.
pub fn adamw<const D: usize>(
    w: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    step: &cpu::AdamWStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (w, m, v) = <burn::backend::Dispatch as FusedOps>::fused_adamw(
        w.into_dispatch(),
        grad.into_dispatch(),
        moment_1.into_dispatch(),
        moment_2.into_dispatch(),
        step.lr,
        step.beta_1,
        step.beta_2,
        step.epsilon,
        step.decay,
        step.correction_1,
        step.correction_2,
        step.first,
    );
    (
        Tensor::from_dispatch(w),
        Tensor::from_dispatch(m),
        Tensor::from_dispatch(v),
    )
}

/// `dropout.forward(x)`: in training (an autodiff device, the layer not frozen, `prob > 0`)
/// each element is dropped with probability `prob` and the rest scaled by `1 / (1 - prob)`;
/// otherwise `x` as it is.
///
/// On flex the mask is a counter-based hash of each element's index under a 64-bit seed drawn
/// from burn's seeded random stream (so a seeded run draws the same masks), and the backward
/// pass regenerates it from the seed: nothing but the seed is stored. burn's own dropout draws
/// a Bernoulli tensor one element at a time (about 12 ns an element here) and keeps it for
/// backward as `f32`.
///
/// # Shapes
///
/// - x: any; the output has its shape.
pub fn dropout<const D: usize>(dropout: &Dropout, x: Tensor<D>) -> Tensor<D> {
    if !dropout.training.is_enabled() || !x.device().is_autodiff() || dropout.prob == 0.0 {
        return x;
    }
    if !fused(&x) {
        return dropout.forward(x);
    }
    let seed = seed_from(&x.device());
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedOps>::fused_dropout(
        x.into_dispatch(),
        seed,
        dropout.prob,
    ))
}

/// 64 bits from burn's random stream on `device` (four uniform `f32` draws, 16 bits each).
fn seed_from(device: &burn::tensor::Device) -> u64 {
    let draw = Tensor::<1>::random([4], Distribution::Default, &device.clone().inner());
    let values = draw.into_data().try_to_vec::<f32>().unwrap_or_default();
    values.iter().fold(0u64, |acc, v| {
        (acc << 16) | ((v * 65_536.0) as u64 & 0xffff)
    })
}
