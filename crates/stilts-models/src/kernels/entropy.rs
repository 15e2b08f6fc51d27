//! Cross-entropy of logits rows against target classes in one pass, with its backward pass
//! written over the logits: GPT's language-model loss, whose `[tokens, vocab]` logits (166 MB
//! for a batch of 8 x 128 over 40,481 tokens) burn's log-softmax and gather cross six times
//! each way.
//!
//! [`cross_entropy`] is what models call: the fused path for `f32` logits on flex (trained or
//! not) with [`super::enabled`], burn's `log_softmax` and `gather` everywhere else.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, AutodiffBackend, Backend, Flex, backend_extension};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use super::flex::{dims, flex_tensor, in_place, with_f32};
use super::{cpu, fused};

/// The fused cross-entropy, on every backend that implements it (flex, and autodiff over it).
///
/// Shapes: `logits` `[rows, classes]`, `targets` `[rows]`; `nll`, `lse` and `grad` `[rows]`.
#[backend_extension(Flex, Autodiff)]
pub trait EntropyOps: Backend {
    /// Each row's negative log-likelihood of its target and its log-sum-exp.
    fn fused_cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
    /// The logits' gradient from the forward's logits, log-sum-exps and targets and the
    /// rows' gradient.
    fn fused_cross_entropy_backward(
        logits: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The targets as indices (flex stores ids as `i64` or `i32`); a negative one becomes
/// `usize::MAX`, which the kernels refuse.
fn indices(targets: FlexTensor) -> Vec<usize> {
    let data = targets.into_data().convert::<i64>();
    data.iter::<i64>()
        .map(|t| usize::try_from(t).unwrap_or(usize::MAX))
        .collect()
}

impl EntropyOps for Flex {
    fn fused_cross_entropy(logits: FlexTensor, targets: FlexTensor) -> (FlexTensor, FlexTensor) {
        let shape = dims(&logits);
        let (rows, classes) = (shape[0], shape[1]);
        let targets = indices(targets);
        let (nll, lse) = with_f32(&logits, |x| cpu::cross_entropy(x, classes, &targets));
        (flex_tensor(nll, vec![rows]), flex_tensor(lse, vec![rows]))
    }

    fn fused_cross_entropy_backward(
        logits: FlexTensor,
        lse: FlexTensor,
        targets: FlexTensor,
        grad: FlexTensor,
    ) -> FlexTensor {
        let classes = dims(&logits)[1];
        let targets = indices(targets);
        with_f32(&lse, |lse| {
            with_f32(&grad, |g| {
                in_place(logits, |x| {
                    cpu::cross_entropy_backward_in_place(x, classes, &targets, lse, g)
                })
            })
        })
    }
}

/// The graph node of the cross-entropy: keeps the logits, their log-sum-exps and the targets.
#[derive(Debug)]
struct CrossEntropyBackward;

impl<B: Backend + EntropyOps> Backward<B, 1> for CrossEntropyBackward {
    type State = (
        B::FloatTensorPrimitive,
        B::FloatTensorPrimitive,
        B::IntTensorPrimitive,
    );

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (logits, lse, targets) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::fused_cross_entropy_backward(logits, lse, targets, grad)
        });
    }
}

impl<B: Backend + EntropyOps, C: CheckpointStrategy> EntropyOps for Autodiff<B, C> {
    fn fused_cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let node = logits.node();
        let logits = logits.into_primitive();
        let (nll, lse) = B::fused_cross_entropy(logits.clone(), targets.clone());
        let lse_out = Self::from_inner(lse.clone());
        let nll = match CrossEntropyBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((logits, lse, targets), nll),
            OpsKind::UnTracked(prep) => prep.finish(nll),
        };
        (nll, lse_out)
    }

    fn fused_cross_entropy_backward(
        logits: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        // A second derivative is not needed by anything here: computed on the inner backend.
        let out = B::fused_cross_entropy_backward(
            logits.into_primitive(),
            lse.into_primitive(),
            targets,
            grad.into_primitive(),
        );
        Self::from_inner(out)
    }
}

/// Each row's negative log-likelihood of its target class, `-log_softmax(logits)[target]`.
///
/// # Shapes
///
/// - logits: `[rows, classes]`
/// - targets: `[rows]`, each below `classes`
/// - output: `[rows]`
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [rows, _] = logits.dims();
    if !fused(&logits) {
        return log_softmax(logits, 1)
            .gather(1, targets.reshape([rows, 1]))
            .neg()
            .reshape([rows]);
    }
    let (nll, _) = <burn::backend::Dispatch as EntropyOps>::fused_cross_entropy(
        logits.into_dispatch(),
        targets.into_dispatch(),
    );
    Tensor::from_dispatch(nll)
}
