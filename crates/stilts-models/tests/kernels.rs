//! The fused kernels against burn's unfused compositions on the same inputs: values and the
//! gradients of every input, through autodiff, within 1e-5; and a BERT forward and backward
//! through the model with and without them.

use std::sync::Mutex;

use burn::tensor::{Distribution, Tensor, activation};
use stilts_models::kernels;

/// The fused switch is process-wide: tests that flip it run one at a time.
static SWITCH: Mutex<()> = Mutex::new(());

fn device() -> burn::tensor::Device {
    burn::tensor::Device::flex().autodiff()
}

fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<D> {
    let device = device();
    device.seed(seed);
    Tensor::random(shape, Distribution::Normal(0.0, 2.0), &device)
}

fn close<const D: usize>(got: Tensor<D>, want: Tensor<D>, tol: f32, what: &str) {
    let got: Vec<f32> = got.into_data().try_to_vec::<f32>().unwrap();
    let want: Vec<f32> = want.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let worst = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
        .fold(0.0f32, f32::max);
    assert!(
        worst <= tol,
        "{what}: worst scaled difference {worst:e} > {tol:e}"
    );
}

/// The output and the input's gradient under a fixed upstream gradient `w` (loss = sum(y * w)).
fn value_and_grad<const D: usize>(
    x: &Tensor<D>,
    w: &Tensor<D>,
    f: impl Fn(Tensor<D>) -> Tensor<D>,
) -> (Tensor<D>, Tensor<D>) {
    let x = x.clone().detach().require_grad();
    let y = f(x.clone());
    let grads = (y.clone() * w.clone()).sum().backward();
    (y.inner(), x.grad(&grads).expect("the input has a gradient"))
}

#[test]
fn gelu_matches_burns_with_its_gradient() {
    let _guard = SWITCH.lock().unwrap();
    // Covers the tails, where erf saturates, and a non-contiguous input.
    let x = random([4, 33, 70], 1);
    let w = random([4, 33, 70], 2);
    let (y, g) = value_and_grad(&x, &w, kernels::gelu);
    let (y0, g0) = value_and_grad(&x, &w, activation::gelu);
    close(y, y0, 1e-6, "gelu");
    close(g, g0, 1e-6, "gelu gradient");

    let xt = x.clone().swap_dims(1, 2);
    let wt = w.clone().swap_dims(1, 2);
    let (y, g) = value_and_grad(&xt, &wt, kernels::gelu);
    let (y0, g0) = value_and_grad(&xt, &wt, activation::gelu);
    close(y, y0, 1e-6, "gelu, transposed input");
    close(g, g0, 1e-6, "gelu gradient, transposed input");
}

#[test]
fn gelu_tanh_matches_burns_with_its_gradient() {
    let _guard = SWITCH.lock().unwrap();
    let x = random([4, 33, 70], 12);
    let w = random([4, 33, 70], 13);
    let (y, g) = value_and_grad(&x, &w, kernels::gelu_tanh);
    let (y0, g0) = value_and_grad(&x, &w, activation::gelu_approximate);
    close(y, y0, 1e-6, "gelu_tanh");
    close(g, g0, 1e-5, "gelu_tanh gradient");
}

#[test]
fn softmax_matches_burns_with_its_gradient() {
    let _guard = SWITCH.lock().unwrap();
    let x = random([2, 3, 17, 129], 3);
    let w = random([2, 3, 17, 129], 4);
    let (y, g) = value_and_grad(&x, &w, kernels::softmax_last);
    let (y0, g0) = value_and_grad(&x, &w, |x| activation::softmax(x, 3));
    close(y, y0, 1e-6, "softmax");
    close(g, g0, 1e-5, "softmax gradient");
    // With a large additive mask, as attention uses.
    let masked = x
        .clone()
        .slice_fill([0..2, 0..3, 0..17, 100..129], -10_000.0);
    let (y, g) = value_and_grad(&masked, &w, kernels::softmax_last);
    let (y0, g0) = value_and_grad(&masked, &w, |x| activation::softmax(x, 3));
    close(y, y0, 1e-6, "masked softmax");
    close(g, g0, 1e-5, "masked softmax gradient");
}

#[test]
fn layer_norm_matches_burns_with_every_gradient() {
    let _guard = SWITCH.lock().unwrap();
    let x = random([3, 21, 96], 5) + 3.0;
    let w = random([3, 21, 96], 6);
    let gamma = random([96], 7) * 0.3 + 1.0;
    let beta = random([96], 8) * 0.1;
    let eps = 1e-12;

    let run = |fused: bool| {
        let (x, gamma, beta) = (
            x.clone().detach().require_grad(),
            gamma.clone().detach().require_grad(),
            beta.clone().detach().require_grad(),
        );
        let y = if fused {
            kernels::layer_norm(x.clone(), gamma.clone(), beta.clone(), eps)
        } else {
            burn::tensor::module::layer_norm(x.clone(), gamma.clone(), Some(beta.clone()), eps)
        };
        let grads = (y.clone() * w.clone()).sum().backward();
        (
            y.inner(),
            x.grad(&grads).unwrap(),
            gamma.grad(&grads).unwrap(),
            beta.grad(&grads).unwrap(),
        )
    };
    let (y, gx, gg, gb) = run(true);
    let (y0, gx0, gg0, gb0) = run(false);
    close(y, y0, 1e-5, "layer norm");
    close(gx, gx0, 1e-5, "layer norm: input gradient");
    close(gg, gg0, 1e-5, "layer norm: gamma gradient");
    close(gb, gb0, 1e-5, "layer norm: beta gradient");
}

#[test]
fn without_autodiff_the_fused_path_gives_the_same_values() {
    let _guard = SWITCH.lock().unwrap();
    let device = burn::tensor::Device::flex();
    device.seed(9);
    let x = Tensor::<3>::random([2, 5, 64], Distribution::Normal(0.0, 1.0), &device);
    close(
        kernels::gelu(x.clone()),
        activation::gelu(x.clone()),
        1e-6,
        "gelu",
    );
    close(
        kernels::softmax_last(x.clone()),
        activation::softmax(x.clone(), 2),
        1e-6,
        "softmax",
    );
    let gamma = Tensor::<1>::ones([64], &device);
    let beta = Tensor::<1>::zeros([64], &device);
    close(
        kernels::layer_norm(x.clone(), gamma.clone(), beta.clone(), 1e-5),
        burn::tensor::module::layer_norm(x, gamma, Some(beta), 1e-5),
        1e-5,
        "layer norm",
    );
}

#[test]
fn the_switch_turns_the_fused_path_off() {
    let _guard = SWITCH.lock().unwrap();
    let x = random([8, 40], 10);
    kernels::set_enabled(false);
    let off: Vec<f32> = kernels::gelu(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    kernels::set_enabled(true);
    let on: Vec<f32> = kernels::gelu(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let burn: Vec<f32> = activation::gelu(x).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(off, burn, "off means burn's own operation, bit for bit");
    assert_ne!(
        on, burn,
        "on means the fused kernel (its erf rounds differently)"
    );
}

/// The fused AdamW step is burn's `AdamW`, bit for bit, over several steps and both decay
/// groups (the weight decays, the bias does not).
#[test]
fn fused_adamw_steps_as_burns_adamw_bit_for_bit() {
    use burn::nn::LinearConfig;
    use burn::optim::GradientsParams;
    use stilts_models::bert::AdamWGroupsConfig;

    let _guard = SWITCH.lock().unwrap();
    let run = |fused: bool| {
        kernels::set_enabled(fused);
        let device = device();
        device.seed(11);
        let mut model = LinearConfig::new(37, 19).init(&device);
        let mut optimizer = AdamWGroupsConfig::new().with_weight_decay(0.1).init();
        for _ in 0..4 {
            let x = Tensor::<2>::random([5, 37], Distribution::Normal(0.0, 1.0), &device);
            let loss = model.forward(x).powf_scalar(2.0).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(1e-2, model, grads);
        }
        kernels::set_enabled(true);
        let bias = model.bias.expect("a bias").val();
        (
            model.weight.val().into_data().try_to_vec::<f32>().unwrap(),
            bias.into_data().try_to_vec::<f32>().unwrap(),
        )
    };
    let (fused, burn) = (run(true), run(false));
    assert_eq!(fused, burn);
}

/// Dropout drops about `prob` of the elements in training, scales the rest, gives the gradient
/// through the same mask, draws the same masks from the same seed, and is the identity at
/// inference.
#[test]
fn dropout_trains_through_its_own_mask_and_follows_the_seed() {
    let _guard = SWITCH.lock().unwrap();
    let layer = burn::nn::DropoutConfig::new(0.25).init();
    let draw = |seed: u64| {
        let device = device();
        device.seed(seed);
        let x = Tensor::<3>::ones([4, 50, 60], &device).require_grad();
        let y = kernels::dropout(&layer, x.clone());
        let grads = y.clone().sum().backward();
        let y: Vec<f32> = y.into_data().try_to_vec::<f32>().unwrap();
        let g: Vec<f32> = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        (y, g)
    };
    let (y, g) = draw(3);
    assert_eq!(
        y, g,
        "the gradient of sum(dropout(1)) is the mask times the scale"
    );
    let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
    assert!((dropped - 0.25).abs() < 0.02, "dropped {dropped}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    assert_eq!(draw(3).0, y, "the same seed, the same mask");
    assert_ne!(draw(4).0, y, "another seed, another mask");

    let plain = burn::tensor::Device::flex();
    let x = Tensor::<2>::ones([3, 5], &plain);
    let out: Vec<f32> = kernels::dropout(&layer, x)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(out.iter().all(|&v| v == 1.0), "no dropout at inference");
}

/// The gradients of `inputs` under a fixed upstream gradient `w` of `f`'s output.
fn grads_of<const D: usize, const N: usize>(
    inputs: [Tensor<D>; N],
    w: &Tensor<D>,
    f: impl Fn([Tensor<D>; N]) -> Tensor<D>,
) -> (Tensor<D>, [Tensor<D>; N]) {
    let inputs = inputs.map(|x| x.detach().require_grad());
    let y = f(inputs.clone());
    let grads = (y.clone() * w.clone()).sum().backward();
    let each = inputs.map(|x| x.grad(&grads).expect("every input has a gradient"));
    (y.inner(), each)
}

#[test]
fn linear_with_its_bias_matches_burns_with_every_gradient() {
    let _guard = SWITCH.lock().unwrap();
    let weight = random([40, 24], 30);
    let bias = random([24], 31);
    let w = random([3, 17, 24], 32);
    // A contiguous input, and one that is a transposed view.
    for x in [
        random([3, 17, 40], 33),
        random([3, 40, 17], 34).swap_dims(1, 2),
    ] {
        let run = |fused: bool| {
            kernels::set_enabled(fused);
            let out = grads_of(
                [
                    x.clone(),
                    weight.clone().unsqueeze(),
                    bias.clone().unsqueeze(),
                ],
                &w,
                |[x, wt, b]| {
                    let (wt, b) = (wt.squeeze_dim::<2>(0), b.squeeze_dims::<1>(&[0, 1]));
                    kernels::linear_rows(x, wt, Some(b))
                },
            );
            kernels::set_enabled(true);
            out
        };
        let ((y, [gx, gw, gb]), (y0, [gx0, gw0, gb0])) = (run(true), run(false));
        close(y, y0, 1e-5, "linear");
        close(gx, gx0, 1e-5, "linear: input gradient");
        close(gw, gw0, 1e-5, "linear: weight gradient");
        close(gb, gb0, 1e-5, "linear: bias gradient");
    }
}

#[test]
fn attention_products_match_burns_with_both_gradients() {
    let _guard = SWITCH.lock().unwrap();
    // Heads split out of `[batch, seq, heads, head]` as attention does: strided operands.
    let q = random([2, 17, 3, 8], 40).swap_dims(1, 2);
    let k = random([2, 17, 3, 8], 41).swap_dims(1, 2);
    let v = random([2, 3, 17, 8], 42);
    let w = random([2, 3, 17, 8], 43);
    let attend = |[q, k, v]: [Tensor<4>; 3]| {
        let scores = kernels::matmul_div(q, k.swap_dims(2, 3), 8f64.sqrt());
        kernels::matmul(scores, v)
    };
    kernels::set_enabled(false);
    let (y0, [gq0, gk0, gv0]) = grads_of([q.clone(), k.clone(), v.clone()], &w, attend);
    kernels::set_enabled(true);
    let (y, [gq, gk, gv]) = grads_of([q, k, v], &w, attend);
    close(y, y0, 1e-5, "scaled scores times values");
    close(gq, gq0, 1e-5, "query gradient");
    close(gk, gk0, 1e-5, "key gradient");
    close(gv, gv0, 1e-5, "value gradient");
}

#[test]
fn masked_softmax_is_softmax_after_adding_the_mask() {
    let _guard = SWITCH.lock().unwrap();
    let scores = random([2, 3, 5, 129], 50);
    let w = random([2, 3, 5, 129], 51);
    // Padding at the end of the second sequence, as BERT's mask bias writes it.
    let mask = Tensor::<4>::zeros([2, 1, 1, 129], &device())
        .slice_fill([1..2, 0..1, 0..1, 90..129], f32::MIN);
    let (y, g) = value_and_grad(&scores, &w, |s| kernels::masked_softmax(s, mask.clone()));
    let (y0, g0) = value_and_grad(&scores, &w, |s| activation::softmax(s + mask.clone(), 3));
    close(y, y0, 1e-6, "masked softmax");
    close(g, g0, 1e-5, "masked softmax gradient");
}

#[test]
fn cross_entropy_matches_log_softmax_and_gather_with_its_gradient() {
    let _guard = SWITCH.lock().unwrap();
    let [rows, classes] = [37, 1003];
    let logits = random([rows, classes], 60);
    let targets = Tensor::<1, burn::tensor::Int>::from_data(
        burn::tensor::TensorData::new(
            (0..rows as i64)
                .map(|r| (r * 97) % classes as i64)
                .collect::<Vec<_>>(),
            [rows],
        ),
        &device(),
    );
    let w = random([rows], 61);
    let run = |fused: bool| {
        kernels::set_enabled(fused);
        let x = logits.clone().detach().require_grad();
        let nll = kernels::cross_entropy(x.clone(), targets.clone());
        let grads = (nll.clone() * w.clone()).sum().backward();
        kernels::set_enabled(true);
        (
            nll.inner(),
            x.grad(&grads).expect("the logits have a gradient"),
        )
    };
    let ((nll, g), (nll0, g0)) = (run(true), run(false));
    close(nll, nll0, 1e-5, "cross-entropy");
    close(g, g0, 1e-5, "cross-entropy gradient");
}
