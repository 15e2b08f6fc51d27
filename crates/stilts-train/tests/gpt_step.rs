//! One training step of a GPT task model against PyTorch (`scripts/make_gpt_fixtures.py`,
//! `tiny-gpt/train.safetensors`): the engine's forward (the head on the last token's state), its
//! loss (cross-entropy plus 0.5 times Radford et al.'s language-model loss), global-norm
//! clipping and AdamW with decay on matrices only, dropout off. Losses within 1e-4 relative,
//! every parameter after the step within 1e-4 of its largest value.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{DropoutConfig, Linear};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use stilts_data::encoding::PairMode;
use stilts_models::bert::AdamWGroupsConfig;
use stilts_models::gpt::{GptConfig, GptModel, map_gpt_key};
use stilts_models::loss::{Labels, sequence_loss};
use stilts_models::{Encoder, EncoderInput};
use stilts_train::model::{TaskHead, TaskModel};
use stilts_train::optim::clip_global_norm;

const REL_TOL: f32 = 1e-4;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../stilts-models/tests/fixtures/tiny-gpt")
}

/// A safetensors file's f32 and i64 tensors, by name.
struct Tensors(BTreeMap<String, (Vec<u8>, Vec<usize>, String)>);

impl Tensors {
    fn open(path: PathBuf) -> Self {
        let bytes = std::fs::read(&path).unwrap();
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&bytes[8..8 + len]).unwrap();
        let data = &bytes[8 + len..];
        Tensors(
            header
                .into_iter()
                .filter(|(k, _)| k != "__metadata__")
                .map(|(k, v)| {
                    let shape = v["shape"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_u64().unwrap() as usize)
                        .collect();
                    let [s, e] = [0, 1].map(|i| v["data_offsets"][i].as_u64().unwrap() as usize);
                    (
                        k,
                        (
                            data[s..e].to_vec(),
                            shape,
                            v["dtype"].as_str().unwrap().to_owned(),
                        ),
                    )
                })
                .collect(),
        )
    }

    fn f32(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let (bytes, shape, dtype) = &self.0[name];
        assert_eq!(dtype, "F32", "{name}");
        let v = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (v, shape.clone())
    }

    fn i64(&self, name: &str) -> (Vec<i64>, Vec<usize>) {
        let (bytes, shape, _) = &self.0[name];
        let v = bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (v, shape.clone())
    }
}

fn transposed((values, shape): (Vec<f32>, Vec<usize>)) -> (Vec<f32>, Vec<usize>) {
    let [rows, cols] = [shape[0], shape[1]];
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    (out, vec![cols, rows])
}

/// A parameter's values and shape.
type Values = (Vec<f32>, Vec<usize>);

fn params<M: Module>(module: &M) -> Vec<(String, Values)> {
    struct Collect(Vec<String>, Vec<(String, Values)>);
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.to_owned());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let shape = t.dims().to_vec();
            let v = t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            self.1.push((self.0.join("."), (v, shape)));
        }
    }
    let mut c = Collect(Vec::new(), Vec::new());
    module.visit(&mut c);
    c.1
}

#[test]
fn one_step_with_the_auxiliary_lm_loss_matches_pytorch() {
    let device = Device::flex().autodiff();
    let dir = fixture_dir();
    let config = GptConfig::from_hf_file(dir.join("config.json"))
        .unwrap()
        .with_resid_pdrop(0.0)
        .with_embd_pdrop(0.0)
        .with_attn_pdrop(0.0);
    let (gpt, _) =
        GptModel::from_hf_weights(&config, dir.join("model.safetensors"), &device).unwrap();
    let forward = Tensors::open(dir.join("forward.safetensors"));
    let train = Tensors::open(dir.join("train.safetensors"));
    let tensor2 = |(v, s): (Vec<f32>, Vec<usize>)| {
        Tensor::<2>::from_data(TensorData::new(v, [s[0], s[1]]), &device)
    };
    let (bias, _) = train.f32("before.bias");
    let head = TaskHead {
        classifier: Linear {
            weight: Param::from_tensor(tensor2(transposed(train.f32("before.weight")))),
            bias: Some(Param::from_tensor(Tensor::<1>::from_data(
                TensorData::new(bias, [2]),
                &device,
            ))),
        },
        pair: PairMode::Joint,
    };
    let model = TaskModel {
        encoder: Encoder::Gpt(gpt),
        dropout: DropoutConfig::new(0.0).init(),
        heads: vec![head],
    };
    let int2 = |name: &str| {
        let (v, s) = forward.i64(name);
        Tensor::<2, Int>::from_data(TensorData::new(v, [s[0], s[1]]), &device)
    };
    let ids = int2("input_ids");
    let input = EncoderInput {
        token_type_ids: ids.zeros_like(),
        input_ids: ids,
        attention_mask: int2("attention_mask"),
        with_aux_loss: true,
    };
    let (labels, _) = train.i64("labels");
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [4]), &device);
    let out = model.forward(vec![input], 0);
    let task = sequence_loss(out.logits, Labels::Classes(labels));
    let lm = out.aux_loss.expect("GPT computes its LM loss when asked");
    let value = |t: &Tensor<1>| t.clone().into_data().try_to_vec::<f32>().unwrap()[0];
    for (name, got) in [("loss.task", value(&task)), ("loss.lm", value(&lm))] {
        let want = train.f32(name).0[0];
        let rel = (got - want).abs() / want.abs();
        println!("{name}: {got} vs {want} (relative {rel:e})");
        assert!(rel < REL_TOL, "{name}: {got} vs {want}");
    }
    let total = task + lm.mul_scalar(0.5);
    let mut grads = GradientsParams::from_grads(total.backward(), &model);
    clip_global_norm(&model, &mut grads, 1.0);
    let mut optimizer = AdamWGroupsConfig::new().with_epsilon(1e-8).init();
    let model = optimizer.step(1e-3, model, grads);

    let mut worst = (0.0f32, String::new());
    let after = params(&model);
    assert_eq!(after.len(), 2 + 12 * 2 + 2);
    for (path, (got, shape)) in after {
        let (want, want_shape) = match path.strip_prefix("encoder.Gpt.") {
            Some(ours) => {
                let hf = train
                    .0
                    .keys()
                    .filter_map(|k| k.strip_prefix("after.transformer."))
                    .find(|k| map_gpt_key(k).as_deref() == Some(ours))
                    .unwrap_or_else(|| panic!("no fixture for {path}"))
                    .to_owned();
                train.f32(&format!("after.transformer.{hf}"))
            }
            None if path == "heads.0.classifier.weight" => {
                transposed(train.f32("after.head.weight"))
            }
            None => train.f32("after.head.bias"),
        };
        assert_eq!(shape, want_shape, "{path}");
        let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            diff / scale < REL_TOL,
            "{path}: max diff {diff:e} (scale {scale})"
        );
        if diff / scale > worst.0 {
            worst = (diff / scale, path);
        }
    }
    println!(
        "worst parameter after the step: relative {:e} ({})",
        worst.0, worst.1
    );
}
