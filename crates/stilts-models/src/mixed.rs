//! Mixed-precision computation: fp32 master weights, a reduced-precision copy that computes,
//! and the operations that stay in fp32 whatever the inputs' type.
//!
//! A training step takes [`compute_copy`] of the fp32 model in bf16: every float parameter
//! cast, each cast a node of the autodiff graph, so the gradients flow back through it and
//! arrive in fp32 on the master parameters, where the optimizer and its state live (torch's
//! autocast keeps fp32 weights the same way). Inside the copy, activations are in the
//! parameters' type, except where [`in_f32`] lifts them: the softmax and LayerNorm statistics
//! ([`crate::kernels::softmax_last`], [`crate::kernels::layer_norm`],
//! [`crate::kernels::Norm`]), and the losses, as autocast's fp32 list does. Tensors a forward
//! builds itself (attention-mask biases, zero states) are cast with [`like`] to the type of the
//! activations they meet.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{DType, FloatDType, Tensor};

/// `module` with every float parameter cast to `dtype`, keeping parameter ids. On an autodiff
/// device the casts are graph nodes, so a backward pass through the copy leaves the gradients
/// on `module`'s own (fp32) parameters: read them with `GradientsParams::from_grads(grads,
/// &module)`. `F32` returns `module` unchanged.
pub fn compute_copy<M: Module>(module: M, dtype: FloatDType) -> M {
    struct Cast(FloatDType);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dtype = self.0;
            param.map(|t| t.cast(dtype))
        }
    }
    if dtype == FloatDType::F32 {
        return module;
    }
    module.map(&mut Cast(dtype))
}

/// `f(x)` computed in fp32 and returned in `x`'s type (`f(x)` itself when `x` is fp32 or
/// wider).
///
/// # Shapes
///
/// - x: any; the output has the shape `f` gives.
pub fn in_f32<const D: usize, const E: usize>(
    x: Tensor<D>,
    f: impl FnOnce(Tensor<D>) -> Tensor<E>,
) -> Tensor<E> {
    match reduced(&x) {
        Some(dtype) => f(x.cast(FloatDType::F32)).cast(dtype),
        None => f(x),
    }
}

/// `t` cast to the float type of `reference` (a no-op when they agree).
///
/// # Shapes
///
/// - t: any; the output has its shape.
pub fn like<const D: usize, const E: usize>(t: Tensor<D>, reference: &Tensor<E>) -> Tensor<D> {
    t.cast(FloatDType::from(reference.dtype()))
}

/// `x`'s type when it is narrower than fp32 (bf16, f16), else `None`.
pub fn reduced<const D: usize>(x: &Tensor<D>) -> Option<FloatDType> {
    match x.dtype() {
        DType::BF16 => Some(FloatDType::BF16),
        DType::F16 => Some(FloatDType::F16),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::{DType, Device, FloatDType, Tensor};

    use super::*;

    #[test]
    fn the_copy_computes_in_bf16_and_the_gradients_reach_the_f32_master() {
        let device = Device::flex().autodiff();
        let master: Linear = LinearConfig::new(3, 2).init(&device);
        let copy = compute_copy(master.clone(), FloatDType::BF16);
        assert_eq!(copy.weight.val().dtype(), DType::BF16);
        assert_eq!(master.weight.val().dtype(), DType::F32);
        let x = Tensor::<2>::from_floats([[1.0, -2.0, 0.5], [0.25, 1.5, -1.0]], &device);
        let y = copy.forward(x.clone().cast(FloatDType::BF16)); // [2, 2]
        assert_eq!(y.dtype(), DType::BF16);
        let loss = y.cast(FloatDType::F32).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &master);
        let g = grads
            .get::<2>(master.weight.id)
            .expect("the master weight has a gradient");
        assert_eq!(g.dtype(), DType::F32);
        // d(sum(xW + b))/dW[i][j] = sum over rows of x[.][i]: 1.25, -0.5, -0.5 (exact in bf16).
        let g: Vec<f32> = g.into_data().iter::<f32>().collect();
        assert_eq!(g, vec![1.25, 1.25, -0.5, -0.5, -0.5, -0.5]);
        assert_eq!(master.num_params(), copy.num_params());
    }

    #[test]
    fn in_f32_returns_the_input_type() {
        let device = Device::flex();
        let x = Tensor::<1>::from_floats([1.0, 2.0], &device).cast(FloatDType::BF16);
        let y = in_f32(x, |x| {
            assert_eq!(x.dtype(), DType::F32);
            x.exp()
        });
        assert_eq!(y.dtype(), DType::BF16);
        let z = in_f32(Tensor::<1>::from_floats([1.0], &device), |x| x);
        assert_eq!(z.dtype(), DType::F32);
    }
}
