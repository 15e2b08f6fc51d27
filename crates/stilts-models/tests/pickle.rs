//! A PyTorch checkpoint whose pickle runs code when Python loads it (made by
//! `scripts/make_pickle_fixtures.py`, which proves the payload runs) is refused before its
//! tensors are read, naming the callable; the torch-written checkpoints of the other tests
//! (`tiny-bert-legacy`, `tiny-gpt-legacy`) pass the same check and load.

mod common;

use burn::tensor::Device;
use common::fixtures;
use stilts_models::ModelError;
use stilts_models::bert::BertModel;
use stilts_models::pickle_guard::check_weights_file;

#[test]
fn code_executing_pickles_are_refused() {
    let device = Device::flex();
    for layout in ["evil-pickle-zip", "evil-pickle-legacy"] {
        let dir = fixtures().join(layout);
        let err = BertModel::from_pretrained(&dir, &device).unwrap_err();
        assert!(
            matches!(err, ModelError::UnsafePickle { .. }),
            "{layout}: {err}"
        );
        let text = err.to_string();
        assert!(text.contains("pytorch_model.bin"), "{text}");
        assert!(text.contains("`posix.system`"), "{text}");
        assert!(text.contains("safetensors"), "{text}");
    }
}

#[test]
fn torch_written_checkpoints_pass() {
    for dir in ["tiny-bert-legacy", "tiny-gpt-legacy"] {
        let file = fixtures().join(dir).join("pytorch_model.bin");
        check_weights_file(&file).unwrap_or_else(|e| panic!("{dir}: {e}"));
    }
}

#[test]
fn a_cut_checkpoint_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = std::fs::read(fixtures().join("tiny-bert-legacy/pytorch_model.bin")).unwrap();
    for cut in [0, 10, 100, whole.len() / 2] {
        let file = tmp.path().join(format!("cut-{cut}.bin"));
        std::fs::write(&file, &whole[..cut]).unwrap();
        assert!(check_weights_file(&file).is_err(), "{cut}");
    }
}
