//! [`FusedOps`] on autodiff: one graph node per fused call, whose backward pass is the inner
//! backend's fused backward kernel.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend};

use super::FusedOps;

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
