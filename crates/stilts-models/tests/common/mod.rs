#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Int, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

/// The fixtures directory: `STILTS_FIXTURES_DIR` where a test binary runs away from its
/// checkout (`scripts/device-check.sh`), else this crate's `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    match std::env::var_os("STILTS_FIXTURES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
    }
}

/// The all-MiniLM-L6-v2 directory named by `STILTS_MINILM_DIR`; `None` (the test skips) when
/// the variable is unset, a panic when it names no directory.
pub fn minilm_dir() -> Option<PathBuf> {
    match std::env::var_os("STILTS_MINILM_DIR") {
        None => {
            println!("skipped: set STILTS_MINILM_DIR");
            None
        }
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join("config.json").is_file() && dir.join("model.safetensors").is_file(),
                "STILTS_MINILM_DIR={} has no config.json and model.safetensors",
                dir.display()
            );
            Some(dir)
        }
    }
}

/// Tensors of a safetensors fixture file.
pub struct Fixture {
    tensors: BTreeMap<String, (Vec<usize>, Dtype, Vec<u8>)>,
}

impl Fixture {
    pub fn open(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let st =
            SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                (
                    name,
                    (view.shape().to_vec(), view.dtype(), view.data().to_vec()),
                )
            })
            .collect();
        Self { tensors }
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }

    pub fn shape(&self, name: &str) -> Vec<usize> {
        self.get(name).0.clone()
    }

    fn get(&self, name: &str) -> &(Vec<usize>, Dtype, Vec<u8>) {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no tensor {name}"))
    }

    pub fn f32(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let (shape, dtype, data) = self.get(name);
        assert_eq!(*dtype, Dtype::F32, "{name}");
        let values = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        (values, shape.clone())
    }

    pub fn i64(&self, name: &str) -> (Vec<i64>, Vec<usize>) {
        let (shape, dtype, data) = self.get(name);
        assert_eq!(*dtype, Dtype::I64, "{name}");
        let values = data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (values, shape.clone())
    }

    pub fn float<const D: usize>(&self, name: &str, device: &Device) -> Tensor<D> {
        let (values, shape) = self.f32(name);
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    pub fn int<const D: usize>(&self, name: &str, device: &Device) -> Tensor<D, Int> {
        let (values, shape) = self.i64(name);
        Tensor::from_data(TensorData::new(values, shape), device)
    }
}

pub fn values<const D: usize>(tensor: Tensor<D>) -> (Vec<f32>, Vec<usize>) {
    let shape = tensor.dims().to_vec();
    let values = tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 tensor");
    (values, shape)
}

/// Largest absolute difference, after checking the shapes agree.
pub fn max_abs_diff<const D: usize>(
    actual: Tensor<D>,
    expected: &(Vec<f32>, Vec<usize>),
    what: &str,
) -> f32 {
    let (actual, shape) = values(actual);
    assert_eq!(shape, expected.1, "{what}: shape");
    actual
        .iter()
        .zip(&expected.0)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

pub fn max_abs(values: &[f32]) -> f32 {
    values.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Every float parameter of a module: path, id and value.
pub type NamedParam = (String, ParamId, (Vec<f32>, Vec<usize>));

pub fn named_params<M: Module>(module: &M) -> Vec<NamedParam> {
    struct Collect {
        path: Vec<String>,
        out: Vec<NamedParam>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_owned());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.out
                .push((self.path.join("."), param.id, values(param.val())));
        }
    }
    let mut collect = Collect {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut collect);
    collect.out
}

/// Compares the gradients of a module's trained parameters with a reference fixture's
/// `grad.<reference key>` tensors (PyTorch `Linear` weights, `[out, in]`, transposed to burn's
/// layout): every parameter `map` names must have a gradient within `tolerance` relative to
/// the reference's largest value (`scale` may widen that for a parameter), every other one none.
/// Returns the worst relative difference.
pub fn check_module_grads<M: Module>(
    case: &str,
    model: &M,
    grads: &burn::optim::GradientsParams,
    expected: &Fixture,
    map: impl Fn(&str) -> Option<String>,
    scale: impl Fn(&str, &[f32]) -> f32,
    tolerance: f32,
) -> f32 {
    let ours: BTreeMap<String, String> = expected
        .names()
        .filter_map(|n| n.strip_prefix("grad."))
        .map(|hf| (map(hf).expect("mapped"), hf.to_owned()))
        .collect();
    let mut worst = 0.0f32;
    let mut checked = 0;
    for (path, id, value) in named_params(model) {
        let grad = match value.1.len() {
            1 => grads.get::<1>(id).map(values),
            2 => grads.get::<2>(id).map(values),
            rank => panic!("{path} has rank {rank}"),
        };
        let Some(hf) = ours.get(&path) else {
            assert!(
                grad.is_none(),
                "{case}: {path} is frozen but has a gradient"
            );
            continue;
        };
        let (grad, shape) = grad.unwrap_or_else(|| panic!("{case}: no gradient for {path}"));
        let (want, want_shape) = expected.f32(&format!("grad.{hf}"));
        let want = if shape.len() == 2 {
            assert_eq!(shape, [want_shape[1], want_shape[0]], "{path}");
            transpose(&want, want_shape[0], want_shape[1])
        } else {
            want
        };
        let diff = grad
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        let rel = diff / scale(&path, &want).max(1e-6);
        assert!(
            rel < tolerance,
            "{case}: gradient of {path}: relative {rel:e}"
        );
        worst = worst.max(rel);
        checked += 1;
    }
    assert_eq!(checked, ours.len(), "{case}: every module gradient checked");
    worst
}

/// A `rows x cols` row-major matrix transposed.
pub fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}
