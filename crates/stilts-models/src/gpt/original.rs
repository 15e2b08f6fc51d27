//! OpenAI's original release of GPT (`finetune-transformer-lm`'s `model/`): `params_shapes.json`
//! lists every tensor's shape, and `params_0.npy` ... `params_9.npy` hold one flat float32 array
//! split in ten. The array is the tensors, in the order of the shapes list, concatenated:
//! position embeddings, token embeddings, then twelve tensors a block (`c_attn` w and b, the
//! attention `c_proj` w and b, `ln_1` g and b, `c_fc` w and b, the MLP `c_proj` w and b, `ln_2`
//! g and b); the `[1, in, out]` convolution weights lose their leading 1. The `.npy` files are
//! read here in plain Rust (format 1.0-3.0, little-endian `<f4`, C order).

use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};

use super::config::GptConfig;
use super::model::GptModel;
use crate::ModelError;
use crate::hf::LoadReport;

/// The shapes file of a release.
pub const SHAPES_FILE: &str = "params_shapes.json";
/// Tensors a block has in the release.
const PER_BLOCK: usize = 12;

/// The `params_N.npy` files of a release directory, in order.
pub fn param_files(dir: &Path) -> Vec<PathBuf> {
    (0..10)
        .map(|i| dir.join(format!("params_{i}.npy")))
        .collect()
}

/// Whether `dir` holds an original release.
pub fn is_original_release(dir: &Path) -> bool {
    dir.join(SHAPES_FILE).is_file() && param_files(dir).iter().all(|p| p.is_file())
}

fn bad(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Release {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The values of a one-dimensional little-endian float32 `.npy` file.
pub fn read_npy_f32(path: &Path) -> Result<Vec<f32>, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad(path, "not a .npy file (no \\x93NUMPY magic)"));
    }
    let (header_len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(path, format!("unsupported .npy version {v}"))),
    };
    let data_start = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad(path, "the header is longer than the file"))?;
    let header = std::str::from_utf8(&bytes[start..data_start])
        .map_err(|_| bad(path, "the header is not text"))?;
    if !header.contains("'descr': '<f4'") {
        return Err(bad(
            path,
            format!("expected little-endian float32 ('<f4'): {header}"),
        ));
    }
    if !header.contains("'fortran_order': False") {
        return Err(bad(path, "Fortran-ordered arrays are not read"));
    }
    let shape = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .map(|s| s.trim().trim_start_matches('('))
        .ok_or_else(|| bad(path, format!("no shape in the header: {header}")))?;
    let count = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .try_fold(1usize, |n, d| {
            d.parse::<usize>().ok().and_then(|d| n.checked_mul(d))
        })
        .ok_or_else(|| bad(path, format!("unreadable shape ({shape})")))?;
    let data = &bytes[data_start..];
    if data.len() != count * 4 {
        return Err(bad(
            path,
            format!("{} data bytes for {count} float32 values", data.len()),
        ));
    }
    Ok(data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The shapes of a release, checked: two embeddings, then whole blocks.
fn read_shapes(dir: &Path) -> Result<Vec<Vec<usize>>, ModelError> {
    let path = dir.join(SHAPES_FILE);
    let shapes: Vec<Vec<usize>> = crate::error::read_json(&path)?;
    if shapes.len() < 2 || !(shapes.len() - 2).is_multiple_of(PER_BLOCK) {
        return Err(bad(
            &path,
            format!(
                "{} shapes: expected the two embeddings and {PER_BLOCK} per block",
                shapes.len()
            ),
        ));
    }
    if shapes[0].len() != 2 || shapes[1].len() != 2 || shapes[0][1] != shapes[1][1] {
        return Err(bad(
            &path,
            "the first two shapes must be the position and token embeddings, [n, n_embd] each",
        ));
    }
    Ok(shapes)
}

impl GptConfig {
    /// The configuration of an original release: sizes from `params_shapes.json`, the number of
    /// heads from a `config.json` beside it when there is one, else the released model's 12;
    /// the activation is the original code's tanh GELU.
    pub fn from_original_dir(dir: &Path) -> Result<GptConfig, ModelError> {
        let shapes = read_shapes(dir)?;
        let hf = dir.join("config.json");
        let n_head = if hf.is_file() {
            GptConfig::from_hf_file(&hf)?.n_head
        } else {
            12
        };
        let config = GptConfig::new(shapes[1][0])
            .with_n_positions(shapes[0][0])
            .with_n_embd(shapes[1][1])
            .with_n_layer((shapes.len() - 2) / PER_BLOCK)
            .with_n_head(n_head);
        config
            .validate()
            .map_err(|m| bad(&dir.join(SHAPES_FILE), m))?;
        Ok(config)
    }
}

/// Where each released tensor goes, in release order (block tensors for block `i`), with the
/// shape it must have.
fn targets(config: &GptConfig) -> Vec<(String, Vec<usize>)> {
    let e = config.n_embd;
    let mut out = vec![
        (
            "positions_embed.weight".to_owned(),
            vec![config.n_positions, e],
        ),
        ("tokens_embed.weight".to_owned(), vec![config.vocab_size, e]),
    ];
    for i in 0..config.n_layer {
        let p = |s: &str| format!("h.{i}.{s}");
        out.extend([
            (p("attn.c_attn.weight"), vec![e, 3 * e]),
            (p("attn.c_attn.bias"), vec![3 * e]),
            (p("attn.c_proj.weight"), vec![e, e]),
            (p("attn.c_proj.bias"), vec![e]),
            (p("ln_1.gamma"), vec![e]),
            (p("ln_1.beta"), vec![e]),
            (p("mlp.c_fc.weight"), vec![e, 4 * e]),
            (p("mlp.c_fc.bias"), vec![4 * e]),
            (p("mlp.c_proj.weight"), vec![4 * e, e]),
            (p("mlp.c_proj.bias"), vec![e]),
            (p("ln_2.gamma"), vec![e]),
            (p("ln_2.beta"), vec![e]),
        ]);
    }
    out
}

impl GptModel {
    /// Loads OpenAI's original release from `dir` into the model `config` describes (see the
    /// module doc). Every shape is checked against the model's; the report lists what was
    /// loaded.
    pub fn from_original_release(
        dir: &Path,
        config: &GptConfig,
        device: &Device,
    ) -> Result<(Self, LoadReport), ModelError> {
        let shapes = read_shapes(dir)?;
        let mut flat = Vec::new();
        for file in param_files(dir) {
            flat.extend(read_npy_f32(&file)?);
        }
        let total: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
        if flat.len() != total {
            return Err(bad(
                &dir.join(SHAPES_FILE),
                format!(
                    "the shapes hold {total} values, params_0..9.npy {}",
                    flat.len()
                ),
            ));
        }
        let wanted = targets(config);
        let mut report = LoadReport::default();
        if shapes.len() != wanted.len() {
            report.errors.push(format!(
                "{} released tensors, the model has {}",
                shapes.len(),
                wanted.len()
            ));
        }
        let mut model = config.init(device);
        let mut offset = 0;
        for (shape, (path, want)) in shapes.iter().zip(&wanted) {
            let n: usize = shape.iter().product();
            let values = flat[offset..offset + n].to_vec();
            offset += n;
            // Convolution weights are released as [1, in, out].
            let squeezed: Vec<usize> = match shape.as_slice() {
                [1, rest @ ..] if rest.len() == 2 => rest.to_vec(),
                other => other.to_vec(),
            };
            if &squeezed != want {
                report.errors.push(format!(
                    "{path}: released {shape:?}, the model wants {want:?}"
                ));
                continue;
            }
            set_param(&mut model, path, values, want, device);
            report.loaded.push(path.clone());
        }
        if !report.is_ok() {
            return Err(ModelError::Mismatch {
                path: dir.join(SHAPES_FILE),
                report: Box::new(report),
            });
        }
        Ok((model, report))
    }
}

/// Puts `values` (of `shape`) into the parameter at `path` (one of [`targets`]).
fn set_param(model: &mut GptModel, path: &str, values: Vec<f32>, shape: &[usize], device: &Device) {
    let data = TensorData::new(values, shape.to_vec());
    let t2 = || Param::from_tensor(Tensor::<2>::from_data(data.clone(), device));
    let t1 = || Param::from_tensor(Tensor::<1>::from_data(data.clone(), device));
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["positions_embed", "weight"] => model.positions_embed.weight = t2(),
        ["tokens_embed", "weight"] => model.tokens_embed.weight = t2(),
        ["h", i, rest @ ..] => {
            let Some(block) = i.parse::<usize>().ok().and_then(|i| model.h.get_mut(i)) else {
                return;
            };
            match rest {
                ["attn", "c_attn", "weight"] => block.attn.c_attn.weight = t2(),
                ["attn", "c_attn", "bias"] => block.attn.c_attn.bias = t1(),
                ["attn", "c_proj", "weight"] => block.attn.c_proj.weight = t2(),
                ["attn", "c_proj", "bias"] => block.attn.c_proj.bias = t1(),
                ["mlp", "c_fc", "weight"] => block.mlp.c_fc.weight = t2(),
                ["mlp", "c_fc", "bias"] => block.mlp.c_fc.bias = t1(),
                ["mlp", "c_proj", "weight"] => block.mlp.c_proj.weight = t2(),
                ["mlp", "c_proj", "bias"] => block.mlp.c_proj.bias = t1(),
                ["ln_1", "gamma"] => block.ln_1.gamma = t1(),
                ["ln_1", "beta"] => block.ln_1.beta = Some(t1()),
                ["ln_2", "gamma"] => block.ln_2.gamma = t1(),
                ["ln_2", "beta"] => block.ln_2.beta = Some(t1()),
                _ => {}
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(values: &[f32]) -> Vec<u8> {
        let mut header = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
            values.len()
        );
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        for v in values {
            out.extend(v.to_le_bytes());
        }
        out
    }

    #[test]
    fn npy_files_are_read_and_bad_ones_named() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.npy");
        std::fs::write(&path, npy(&[1.5, -2.0, 3.25])).unwrap();
        assert_eq!(read_npy_f32(&path).unwrap(), [1.5, -2.0, 3.25]);
        let mut cut = npy(&[1.0, 2.0]);
        cut.pop();
        std::fs::write(&path, cut).unwrap();
        let err = read_npy_f32(&path).unwrap_err().to_string();
        assert!(err.contains("a.npy"), "{err}");
        std::fs::write(&path, b"not numpy at all").unwrap();
        assert!(read_npy_f32(&path).is_err());
    }
}
