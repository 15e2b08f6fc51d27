//! Fused kernels for the default CPU backend: GELU (erf form), softmax over the last dimension
//! and LayerNorm, each one pass over the data with its own backward pass.
//!
//! burn-flex runs GELU as a single-threaded scalar loop over libm's `erff` (forward and
//! backward), and burn's autodiff runs softmax and LayerNorm as chains of elementwise and
//! reduction operations, each a pass over memory with a graph node and a saved tensor. Here each
//! is a [`FusedOps`] backend extension: flex gets row- or chunk-parallel vectorised kernels
//! ([`cpu`]) and autodiff gets one graph node per call whose backward is one fused kernel too.
//!
//! The functions below ([`gelu`], [`softmax_last`], [`layer_norm`]) are what models call. They
//! take the fused path for `f32` tensors on flex (trained or not) and fall back to burn's own
//! operations on every other backend and precision, so `wgpu`, `cuda` and `tch` builds compute
//! what they computed before. [`products`] does the same for matrix products: linear layers
//! with their bias and attention's scaled scores, each written once. [`set_enabled`]
//! (or `STILTS_FUSED_KERNELS=0`) turns all of this off, for the benchmark's comparison and the
//! tests that check one against the other.

pub mod cpu;
pub mod entropy;
pub mod products;

pub use entropy::{EntropyOps, cross_entropy};
pub use products::{ProductOps, linear, linear_rows, matmul, matmul_div};

use std::sync::atomic::{AtomicU8, Ordering};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, DispatchDevice, Flex, backend_extension};
use burn::nn::{Dropout, LayerNorm};
use burn::tensor::activation;
use burn::tensor::{DType, Distribution, FloatDType, Tensor, TensorData};

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

/// A flex tensor this function owns alone, contiguous from offset 0 (copied when it is not).
fn exclusive(t: FlexTensor) -> FlexTensor {
    let n = t.layout().num_elements();
    if t.is_unique() && t.layout().contiguous_offsets() == Some((0, n)) {
        return t;
    }
    let values = with_f32(&t, <[f32]>::to_vec);
    flex_tensor(values, dims(&t))
}

/// `f` over the elements of `t` (row-major) in its own buffer, which it usually holds alone (an
/// op's fresh output, a gradient passed on): no output buffer to allocate and fill.
fn in_place(t: FlexTensor, f: impl FnOnce(&mut [f32])) -> FlexTensor {
    let n = t.layout().num_elements();
    let mut t = exclusive(t);
    f(&mut t.storage_mut::<f32>()[..n]);
    t
}

/// Runs `f` on a flex tensor's elements in row-major order (copying only a strided tensor).
fn with_f32<R>(t: &FlexTensor, f: impl FnOnce(&[f32]) -> R) -> R {
    let contiguous;
    let t = if t.layout().contiguous_offsets().is_some() {
        t
    } else {
        contiguous = t.to_contiguous();
        &contiguous
    };
    let (start, end) = t
        .layout()
        .contiguous_offsets()
        .expect("a contiguous flex tensor has contiguous offsets");
    f(&t.storage::<f32>()[start..end])
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().to_vec()
}

fn flex_tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn last_dim(shape: &[usize]) -> usize {
    *shape
        .last()
        .expect("fused kernels need a tensor of rank >= 1")
}

impl FusedOps for Flex {
    fn fused_dropout(x: FlexTensor, seed: u64, prob: f64) -> FlexTensor {
        let mask = cpu::DropoutMask::new(seed, prob);
        in_place(x, |x| cpu::dropout_in_place(x, &mask))
    }

    fn fused_adamw(
        w: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        lr: f32,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        decay: f32,
        correction_1: f32,
        correction_2: f32,
        first: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let step = cpu::AdamWStep {
            lr,
            beta_1,
            beta_2,
            epsilon,
            decay,
            correction_1,
            correction_2,
            first,
        };
        let (mut w, mut m, mut v) = (exclusive(w), exclusive(moment_1), exclusive(moment_2));
        with_f32(&grad, |g| {
            cpu::adamw(
                w.storage_mut::<f32>(),
                g,
                m.storage_mut::<f32>(),
                v.storage_mut::<f32>(),
                &step,
            )
        });
        (w, m, v)
    }

    fn fused_gelu(x: FlexTensor, tanh: bool) -> FlexTensor {
        let f = if tanh {
            cpu::gelu_tanh_in_place
        } else {
            cpu::gelu_in_place
        };
        in_place(x, f)
    }

    fn fused_gelu_backward(x: FlexTensor, grad: FlexTensor, tanh: bool) -> FlexTensor {
        let f = if tanh {
            cpu::gelu_tanh_backward_in_place
        } else {
            cpu::gelu_backward_in_place
        };
        with_f32(&x, |x| in_place(grad, |g| f(x, g)))
    }

    fn fused_softmax(x: FlexTensor) -> FlexTensor {
        let row = last_dim(&dims(&x));
        in_place(x, |x| cpu::softmax_in_place(x, row))
    }

    fn fused_masked_softmax(x: FlexTensor, mask: FlexTensor) -> FlexTensor {
        let shape = dims(&x);
        let row = last_dim(&shape);
        let group = shape.iter().product::<usize>() / row / shape[0].max(1);
        with_f32(&mask, |mask| {
            in_place(x, |x| cpu::masked_softmax_in_place(x, row, mask, group))
        })
    }

    fn fused_softmax_backward(y: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let row = last_dim(&dims(&y));
        with_f32(&y, |y| {
            in_place(grad, |g| cpu::softmax_backward_in_place(y, g, row))
        })
    }

    fn fused_layer_norm(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = dims(&x);
        let rows = shape.iter().product::<usize>() / last_dim(&shape).max(1);
        let f = with_f32(&x, |x| {
            with_f32(&gamma, |g| {
                with_f32(&beta, |b| cpu::layer_norm(x, g, b, epsilon as f32))
            })
        });
        (
            flex_tensor(f.output, shape),
            flex_tensor(f.mean, vec![rows]),
            flex_tensor(f.rstd, vec![rows]),
        )
    }

    fn fused_add_layer_norm(
        x: FlexTensor,
        residual: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> FlexTensor {
        with_f32(&residual, |res| {
            with_f32(&gamma, |g| {
                with_f32(&beta, |b| {
                    in_place(x, |x| {
                        cpu::add_layer_norm_in_place(x, res, g, b, epsilon as f32)
                    })
                })
            })
        })
    }

    fn fused_layer_norm_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        rstd: FlexTensor,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = dims(&x);
        let row = last_dim(&shape);
        let g = with_f32(&x, |x| {
            with_f32(&gamma, |gm| {
                with_f32(&mean, |m| {
                    with_f32(&rstd, |r| {
                        with_f32(&grad, |g| cpu::layer_norm_backward(x, gm, m, r, g))
                    })
                })
            })
        });
        (
            flex_tensor(g.x, shape),
            flex_tensor(g.gamma, vec![row]),
            flex_tensor(g.beta, vec![row]),
        )
    }
}

/// What a one-input fused node keeps for its backward pass.
#[derive(Debug, Clone)]
enum Saved<P> {
    /// GELU's input, and which form.
    GeluInput { x: P, tanh: bool },
    /// Softmax's output.
    SoftmaxOutput(P),
    /// Dropout's mask, as the seed and probability that regenerate it.
    DropoutMask { seed: u64, prob: f64 },
}

/// The graph node of GELU, softmax and dropout: its backward pass is the fused backward kernel.
#[derive(Debug)]
struct OneInputBackward;

impl<B: Backend + FusedOps> Backward<B, 1> for OneInputBackward {
    type State = Saved<B::FloatTensorPrimitive>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let saved = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| match saved {
            Saved::GeluInput { x, tanh } => B::fused_gelu_backward(x, grad, tanh),
            Saved::SoftmaxOutput(y) => B::fused_softmax_backward(y, grad),
            Saved::DropoutMask { seed, prob } => B::fused_dropout(grad, seed, prob),
        });
    }
}

/// `y`, the output of a one-input fused operation on `x`'s node, with its graph node keeping
/// `saved` when `x` is tracked.
fn one_input<B: Backend + FusedOps, C: CheckpointStrategy>(
    node: burn::backend::autodiff::ops::NodeGuard,
    saved: impl FnOnce() -> Saved<B::FloatTensorPrimitive>,
    y: B::FloatTensorPrimitive,
) -> FloatTensor<Autodiff<B, C>> {
    match OneInputBackward
        .prepare::<C>([node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(saved(), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// LayerNorm's graph node: keeps the input, gamma and the row statistics.
#[derive(Debug)]
struct LayerNormBackward;

/// What LayerNorm's backward pass reads: input, gamma, mean, rstd.
type LayerNormState<P> = (P, P, P, P);

impl<B: Backend + FusedOps> Backward<B, 3> for LayerNormBackward {
    type State = LayerNormState<B::FloatTensorPrimitive>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, mean, rstd) = ops.state;
        let (dx, dgamma, dbeta) = B::fused_layer_norm_backward(x, gamma, mean, rstd, grad);
        let [x_node, gamma_node, beta_node] = ops.parents;
        for (node, grad) in [(x_node, dx), (gamma_node, dgamma), (beta_node, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + FusedOps, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn fused_dropout(x: FloatTensor<Self>, seed: u64, prob: f64) -> FloatTensor<Self> {
        let node = x.node();
        let y = B::fused_dropout(x.into_primitive(), seed, prob);
        one_input::<B, C>(node, || Saved::DropoutMask { seed, prob }, y)
    }

    fn fused_gelu(x: FloatTensor<Self>, tanh: bool) -> FloatTensor<Self> {
        let node = x.node();
        let x = x.into_primitive();
        let y = B::fused_gelu(x.clone(), tanh);
        one_input::<B, C>(node, || Saved::GeluInput { x, tanh }, y)
    }

    fn fused_gelu_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        tanh: bool,
    ) -> FloatTensor<Self> {
        // A second derivative is not needed by anything here: computed on the inner backend.
        let out = B::fused_gelu_backward(x.into_primitive(), grad.into_primitive(), tanh);
        Self::from_inner(out)
    }

    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let node = x.node();
        let y = B::fused_softmax(x.into_primitive());
        let kept = y.clone();
        one_input::<B, C>(node, || Saved::SoftmaxOutput(kept), y)
    }

    fn fused_masked_softmax(x: FloatTensor<Self>, mask: FloatTensor<Self>) -> FloatTensor<Self> {
        let node = x.node();
        let y = B::fused_masked_softmax(x.into_primitive(), mask.into_primitive());
        let kept = y.clone();
        one_input::<B, C>(node, || Saved::SoftmaxOutput(kept), y)
    }

    fn fused_softmax_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = B::fused_softmax_backward(y.into_primitive(), grad.into_primitive());
        Self::from_inner(out)
    }

    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let nodes = [x.node(), gamma.node(), beta.node()];
        let (x, gamma) = (x.into_primitive(), gamma.into_primitive());
        let (y, mean, rstd) =
            B::fused_layer_norm(x.clone(), gamma.clone(), beta.into_primitive(), epsilon);
        let stats = (
            Self::from_inner(mean.clone()),
            Self::from_inner(rstd.clone()),
        );
        let y = match LayerNormBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, gamma, mean, rstd), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (y, stats.0, stats.1)
    }

    fn fused_add_layer_norm(
        x: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        // Callers take this path without autodiff; tracked, it is the sum and the fused node.
        let sum = <Self as FloatTensorOps<Self>>::float_add(x, residual);
        Self::fused_layer_norm(sum, gamma, beta, epsilon).0
    }

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
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // Optimizers step the inner tensors; this path only keeps the trait total.
        let (w, m, v) = B::fused_adamw(
            w.into_primitive(),
            grad.into_primitive(),
            moment_1.into_primitive(),
            moment_2.into_primitive(),
            lr,
            beta_1,
            beta_2,
            epsilon,
            decay,
            correction_1,
            correction_2,
            first,
        );
        (
            Self::from_inner(w),
            Self::from_inner(m),
            Self::from_inner(v),
        )
    }

    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dgamma, dbeta) = B::fused_layer_norm_backward(
            x.into_primitive(),
            gamma.into_primitive(),
            mean.into_primitive(),
            rstd.into_primitive(),
            grad.into_primitive(),
        );
        (
            Self::from_inner(dx),
            Self::from_inner(dgamma),
            Self::from_inner(dbeta),
        )
    }
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
