//! [`FusedOps`] on flex: the tensors' `f32` storage handed to the [`cpu`] kernels, in place
//! where the tensor is held alone; and the storage helpers the other extensions share.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

use super::{FusedOps, cpu};

/// A flex tensor this function owns alone, contiguous from offset 0 (copied when it is not).
pub(super) fn exclusive(t: FlexTensor) -> FlexTensor {
    let n = t.layout().num_elements();
    if t.is_unique() && t.layout().contiguous_offsets() == Some((0, n)) {
        return t;
    }
    let values = with_f32(&t, <[f32]>::to_vec);
    flex_tensor(values, dims(&t))
}

/// `f` over the elements of `t` (row-major) in its own buffer, which it usually holds alone (an
/// op's fresh output, a gradient passed on): no output buffer to allocate and fill.
pub(super) fn in_place(t: FlexTensor, f: impl FnOnce(&mut [f32])) -> FlexTensor {
    let n = t.layout().num_elements();
    let mut t = exclusive(t);
    f(&mut t.storage_mut::<f32>()[..n]);
    t
}

/// Runs `f` on a flex tensor's elements in row-major order (copying only a strided tensor).
pub(super) fn with_f32<R>(t: &FlexTensor, f: impl FnOnce(&[f32]) -> R) -> R {
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

pub(super) fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().to_vec()
}

pub(super) fn flex_tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
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
