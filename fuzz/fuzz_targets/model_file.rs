//! One file of a model directory replaced by the input, then the whole encoder loaded: the
//! first byte picks which (config.json or safetensors of BERT, a torch .bin, GPT's .npy
//! release, ELMo's options or HDF5 weights).
#![no_main]

#[path = "common.rs"]
mod common;

use burn::tensor::Device;
use libfuzzer_sys::fuzz_target;
use stilts_train::models::{Encoder, EncoderConfig};

const CASES: &[(&str, &str)] = &[
    ("tiny-bert", "config.json"),
    ("tiny-bert", "model.safetensors"),
    ("tiny-bert-legacy", "pytorch_model.bin"),
    ("tiny-gpt-original", "params_0.npy"),
    ("tiny-gpt-original", "params_shapes.json"),
    ("tiny-elmo", "options.json"),
    ("tiny-elmo", "weights.hdf5"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (fixture, file) = CASES[usize::from(pick) % CASES.len()];
    let dir = common::scratch().join(fixture);
    if !dir.exists() {
        std::fs::create_dir_all(&dir).expect("scratch");
        for entry in std::fs::read_dir(common::fixtures().join(fixture)).expect("fixture") {
            let path = entry.expect("entry").path();
            std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let original = std::fs::read(common::fixtures().join(fixture).join(file)).expect("fixture");
    common::write(&dir, file, rest);
    let device = Device::flex();
    if let Ok(config) = EncoderConfig::from_hf_dir(&dir) {
        let _ = Encoder::from_hf_dir(&dir, &config, &device);
    }
    common::write(&dir, file, &original);
});
