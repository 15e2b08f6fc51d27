//! Matrix products for the default CPU backend, written once into their output: linear layers
//! with the bias as the product's starting value, and attention's products with the scale
//! applied by gemm ([`cpu::matmul`]). Each is a [`ProductOps`] backend extension whose graph node
//! computes its gradients with the same products (and the bias's as one column-sum pass).
//!
//! burn-flex runs a product as a zeroed allocation, a copy of it into an aligned buffer, gemm,
//! and then a pass each for a bias or a scale; BERT-base's products write about 40 MB a layer,
//! so those passes cost as much as a few matrix products do.
//!
//! The functions below ([`linear`], [`linear_rows`], [`matmul`], [`matmul_div`]) are what
//! models call: the fused path for `f32` tensors on flex (trained or not) with
//! [`super::enabled`], burn's own operations everywhere else.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Flex, TensorMetadata, backend_extension};
use burn::nn::Linear;
use burn::tensor::{DType, Tensor};

use super::flex::{dims, flex_tensor, with_f32};
use super::{cpu, fused};

/// The fused products, on every backend that implements them (flex, and autodiff over it).
///
/// Shapes: `lhs` `[..., m, k]` and `rhs` `[..., k, n]` with the same leading dimensions;
/// `x` `[rows, d_input]`, `weight` `[d_input, d_output]`, `bias` `[d_output]`.
#[backend_extension(Flex, Autodiff)]
pub trait ProductOps: Backend {
    /// `alpha * lhs @ rhs`, batched over the leading dimensions: `[..., m, n]`.
    fn fused_matmul(
        lhs: FloatTensor<Self>,
        rhs: FloatTensor<Self>,
        alpha: f32,
    ) -> FloatTensor<Self>;
    /// `x @ weight + bias`: `[rows, d_output]`.
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// The sum of the rows of `x` `[rows, n]`: `[n]` (a bias's gradient).
    fn fused_sum_rows(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// A flex tensor as a [`cpu::Operand`] over its last two dimensions: the storage, each leading
/// index's offset, and the strides. A layout with a negative stride is copied first.
fn operand<R>(t: &FlexTensor, f: impl FnOnce(cpu::Operand) -> R) -> R {
    if t.layout().strides().iter().any(|&s| s < 0) {
        return operand(&t.to_contiguous(), f);
    }
    let layout = t.layout();
    let (shape, strides) = (layout.shape(), layout.strides());
    let rank = shape.num_dims();
    let mut offsets = vec![layout.start_offset()];
    for d in 0..rank - 2 {
        let step = strides[d] as usize;
        offsets = offsets
            .iter()
            .flat_map(|&o| (0..shape[d]).map(move |i| o + i * step))
            .collect();
    }
    f(cpu::Operand {
        data: t.storage::<f32>(),
        offsets: &offsets,
        row_stride: strides[rank - 2] as usize,
        col_stride: strides[rank - 1] as usize,
    })
}

/// `[m, k, n]` and the output's shape of `lhs @ rhs`.
fn product_dims(lhs: &FlexTensor, rhs: &FlexTensor) -> ([usize; 3], Vec<usize>) {
    let (l, r) = (dims(lhs), dims(rhs));
    let rank = l.len();
    assert!(
        rank >= 2
            && r.len() == rank
            && l[..rank - 2] == r[..rank - 2]
            && l[rank - 1] == r[rank - 2],
        "fused matmul: shapes {l:?} and {r:?}"
    );
    let (m, k, n) = (l[rank - 2], l[rank - 1], r[rank - 1]);
    let mut out = l[..rank - 2].to_vec();
    out.extend([m, n]);
    ([m, k, n], out)
}

impl ProductOps for Flex {
    fn fused_matmul(lhs: FlexTensor, rhs: FlexTensor, alpha: f32) -> FlexTensor {
        let (mkn, shape) = product_dims(&lhs, &rhs);
        let out = operand(&lhs, |l| {
            operand(&rhs, |r| cpu::matmul(l, r, mkn, alpha, cpu::Start::Empty))
        });
        flex_tensor(out, shape)
    }

    fn fused_linear(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let (mkn, shape) = product_dims(&x, &weight);
        let out = with_f32(&bias, |bias| {
            operand(&x, |l| {
                operand(&weight, |r| {
                    cpu::matmul(l, r, mkn, 1.0, cpu::Start::Bias(bias))
                })
            })
        });
        flex_tensor(out, shape)
    }

    fn fused_sum_rows(x: FlexTensor) -> FlexTensor {
        let shape = dims(&x);
        let n = shape[shape.len() - 1];
        flex_tensor(with_f32(&x, |x| cpu::sum_rows(x, n)), vec![n])
    }
}

/// `t` with its last two dimensions swapped (a view on flex).
fn transposed<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let rank = t.shape().num_dims();
    B::float_swap_dims(t, rank - 2, rank - 1)
}

/// The graph node of [`ProductOps::fused_matmul`]: keeps both operands and the scale.
#[derive(Debug)]
struct MatmulBackward;

impl<B: Backend + ProductOps> Backward<B, 2> for MatmulBackward {
    type State = (B::FloatTensorPrimitive, B::FloatTensorPrimitive, f32);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (lhs, rhs, alpha) = ops.state;
        let [lhs_node, rhs_node] = ops.parents;
        if let Some(node) = lhs_node {
            let d = B::fused_matmul(grad.clone(), transposed::<B>(rhs), alpha);
            grads.register::<B>(node.id, d);
        }
        if let Some(node) = rhs_node {
            grads.register::<B>(node.id, B::fused_matmul(transposed::<B>(lhs), grad, alpha));
        }
    }
}

/// The graph node of [`ProductOps::fused_linear`]: keeps the input where the weight needs a
/// gradient and the weight where the input does (as burn's linear node).
#[derive(Debug)]
struct LinearBackward;

impl<B: Backend + ProductOps> Backward<B, 3> for LinearBackward {
    type State = (
        Option<B::FloatTensorPrimitive>,
        Option<B::FloatTensorPrimitive>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight) = ops.state;
        let [x_node, weight_node, bias_node] = ops.parents;
        if let (Some(node), Some(weight)) = (x_node, weight) {
            let d = B::fused_matmul(grad.clone(), transposed::<B>(weight), 1.0);
            grads.register::<B>(node.id, d);
        }
        if let (Some(node), Some(x)) = (weight_node, x) {
            let d = B::fused_matmul(transposed::<B>(x), grad.clone(), 1.0);
            grads.register::<B>(node.id, d);
        }
        if let Some(node) = bias_node {
            grads.register::<B>(node.id, B::fused_sum_rows(grad));
        }
    }
}

impl<B: Backend + ProductOps, C: CheckpointStrategy> ProductOps for Autodiff<B, C> {
    fn fused_matmul(
        lhs: FloatTensor<Self>,
        rhs: FloatTensor<Self>,
        alpha: f32,
    ) -> FloatTensor<Self> {
        let nodes = [lhs.node(), rhs.node()];
        let (lhs, rhs) = (lhs.into_primitive(), rhs.into_primitive());
        let y = B::fused_matmul(lhs.clone(), rhs.clone(), alpha);
        match MatmulBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((lhs, rhs, alpha), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (x_tracked, weight_tracked) = (x.is_tracked(), weight.is_tracked());
        let nodes = [x.node(), weight.node(), bias.node()];
        let (x, weight) = (x.into_primitive(), weight.into_primitive());
        let y = B::fused_linear(x.clone(), weight.clone(), bias.into_primitive());
        match LinearBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = (weight_tracked.then_some(x), x_tracked.then_some(weight));
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn fused_sum_rows(x: FloatTensor<Self>) -> FloatTensor<Self> {
        // Only backward passes sum rows here: computed on the inner backend.
        Self::from_inner(B::fused_sum_rows(x.into_primitive()))
    }
}

/// `linear.forward(x)` with the batch folded into the rows ([`linear_rows`]).
///
/// # Shapes
///
/// - x: `[batch, seq, d_input]`
/// - output: `[batch, seq, d_output]`
pub fn linear(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
    linear_rows(
        x,
        linear.weight.val(),
        linear.bias.as_ref().map(|b| b.val()),
    )
}

/// `x W + b` with every leading dimension of `x` folded into the rows: one `[rows, d_input]`
/// by `[d_input, d_output]` product (and one for each gradient). burn keeps the batches apart
/// when `seq` already fills its row tiles (a multiple of 32), which on flex runs BERT's
/// projections at about half the rate of the folded product. On the fused path the product
/// starts from the bias rows ([`ProductOps::fused_linear`]).
///
/// # Shapes
///
/// - x: `[..., d_input]`
/// - weight: `[d_input, d_output]`
/// - bias: `[d_output]`
/// - output: `[..., d_output]`
pub fn linear_rows<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    if !super::enabled() || D < 2 {
        return burn::tensor::module::linear(x, weight, bias);
    }
    let mut dims = x.dims();
    let d_input = dims[D - 1];
    let rows = dims[..D - 1].iter().product::<usize>();
    let x = x.reshape([rows, d_input]);
    let all_f32 = fused(&x)
        && weight.dtype() == DType::F32
        && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
    let y = match bias {
        Some(bias) if all_f32 => {
            Tensor::from_dispatch(<burn::backend::Dispatch as ProductOps>::fused_linear(
                x.into_dispatch(),
                weight.into_dispatch(),
                bias.into_dispatch(),
            ))
        }
        None if all_f32 => matmul_scaled(x, weight, 1.0),
        bias => burn::tensor::module::linear(x, weight, bias),
    }; // [rows, d_output]
    dims[D - 1] = y.dims()[1];
    y.reshape(dims)
}

/// `lhs @ rhs`, batched over equal leading dimensions.
///
/// # Shapes
///
/// - lhs: `[..., m, k]`
/// - rhs: `[..., k, n]`
/// - output: `[..., m, n]`
pub fn matmul<const D: usize>(lhs: Tensor<D>, rhs: Tensor<D>) -> Tensor<D> {
    if !takes_fused_product(&lhs, &rhs) {
        return lhs.matmul(rhs);
    }
    matmul_scaled(lhs, rhs, 1.0)
}

/// `lhs @ rhs / divisor` (attention's scaled scores); on the fused path gemm scales the
/// product by `1 / divisor` as it writes it.
///
/// # Shapes
///
/// - lhs: `[..., m, k]`
/// - rhs: `[..., k, n]`
/// - output: `[..., m, n]`
pub fn matmul_div<const D: usize>(lhs: Tensor<D>, rhs: Tensor<D>, divisor: f64) -> Tensor<D> {
    if !takes_fused_product(&lhs, &rhs) {
        return lhs.matmul(rhs).div_scalar(divisor);
    }
    matmul_scaled(lhs, rhs, (1.0 / divisor) as f32)
}

fn takes_fused_product<const D: usize>(lhs: &Tensor<D>, rhs: &Tensor<D>) -> bool {
    let (l, r) = (lhs.dims(), rhs.dims());
    D >= 2
        && fused(lhs)
        && rhs.dtype() == DType::F32
        && l[..D - 2] == r[..D - 2]
        && l[D - 1] == r[D - 2]
}

fn matmul_scaled<const D: usize>(lhs: Tensor<D>, rhs: Tensor<D>, alpha: f32) -> Tensor<D> {
    Tensor::from_dispatch(<burn::backend::Dispatch as ProductOps>::fused_matmul(
        lhs.into_dispatch(),
        rhs.into_dispatch(),
        alpha,
    ))
}
