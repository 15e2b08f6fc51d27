//! Every parser of a user's file, fed arbitrary bytes and mutations of a real file (cuts,
//! flipped bytes, inserted bytes): the result is `Ok` or an error that names the file, never a
//! panic. Bounded case counts and a fixed seed keep CI quick and reproducible
//! (`STILTS_PROPTEST_SEED=<n>` tries other inputs); `cargo fuzz` (fuzz/) runs the same parsers
//! longer.
//!
//! Seeds are real files: GLUE's RTE (`GLUE_DIR`, else a few committed rows), the shipped task
//! and experiment files, and the committed model fixtures (BERT safetensors and a torch-written
//! `.bin`, GPT's original `.npy` release and its BPE tables, an ELMo HDF5 file).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
// The mutation strategy and the checker, shared with xtask's grid-file property test.
#[path = "common/mutate.rs"]
mod mutate;
use mutate::check;
use stilts_train::data::custom::load_task_file;
use stilts_train::data::encoding::Tokenizer;
use stilts_train::data::{BuiltinTask, LoadOptions};
use stilts_train::models::{Encoder, EncoderConfig};
use stilts_train::schema::experiment::ExperimentFile;
use stilts_train::schema::results::RunResult;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_fixture(name: &str) -> PathBuf {
    repo()
        .join("crates/stilts-models/tests/fixtures")
        .join(name)
}

/// A copy of a fixture directory to mutate one file of.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

const RTE_ROWS: &str = "index\tsentence1\tsentence2\tlabel\n\
0\tNo Weapons of Mass Destruction Found in Iraq Yet.\tWeapons of Mass Destruction Found in Iraq.\tnot_entailment\n\
1\tHerceptin was already approved to treat the sickest breast cancer patients.\tHerceptin can be used to treat breast cancer.\tentailment\n";

#[test]
fn glue_tsv() {
    let seed = std::env::var_os("GLUE_DIR")
        .map(|d| {
            let mut bytes = std::fs::read(Path::new(&d).join("RTE/train.tsv")).unwrap();
            bytes.truncate(4096);
            bytes
        })
        .unwrap_or_else(|| RTE_ROWS.as_bytes().to_vec());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("RTE");
    std::fs::create_dir_all(&dir).unwrap();
    let task = BuiltinTask::Rte.task();
    check(256, seed, &dir.join("train.tsv"), |_| {
        task.load(&dir, "train", LoadOptions::default())
    });
}

#[test]
fn custom_task_toml_and_its_jsonl_data() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = std::fs::read(repo().join("configs/tasks/sick_entailment.toml")).unwrap();
    check(256, seed, &tmp.path().join("task.toml"), load_task_file);

    let task_file = tmp.path().join("nli.toml");
    std::fs::write(
        &task_file,
        "name = \"NLI\"\ninput = \"pair\"\nlabels = [\"yes\", \"no\"]\n\
         [format]\nformat = \"jsonl\"\ntext_a = \"a\"\ntext_b = \"b\"\nlabel = \"label\"\n\
         [[splits]]\nname = \"train\"\nfile = \"train.jsonl\"\n\
         [[splits]]\nname = \"dev\"\nfile = \"train.jsonl\"\n",
    )
    .unwrap();
    let task = load_task_file(&task_file).unwrap();
    let dir = tmp.path().join("NLI");
    std::fs::create_dir_all(&dir).unwrap();
    let seed = b"{\"a\": \"It rains.\", \"b\": \"It is wet.\", \"label\": \"yes\"}\n\
{\"a\": \"It is dry.\", \"b\": \"It rains.\", \"label\": \"no\"}\n"
        .to_vec();
    check(256, seed, &dir.join("train.jsonl"), |_| {
        task.load(&dir, "train", LoadOptions::default())
    });
}

#[test]
fn experiment_toml_and_result_json() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = std::fs::read(repo().join("configs/experiments/minilm_mnli_rte.toml")).unwrap();
    check(256, seed, &tmp.path().join("e.toml"), ExperimentFile::read);
    let seed = br#"{"phase":"rte","seed":1,"history":[{"epoch":1,"step":10,"train_loss":0.69,"dev":[{"task":"RTE","split":"dev","metrics":{"accuracy":0.5},"score":0.5}],"dev_score":0.5}],"kept_epoch":1,"dev_score":0.5,"baseline":0.52,"task_baselines":{"RTE":0.52},"degenerate":true,"data":[],"manifests":[],"weights_sha256":"00","dev_predictions":[],"test_predictions":[],"steps":10,"train_examples_seen":80,"wall_s":1.0,"examples_per_s":80.0,"resumed":false,"loss_curve":[{"step":10,"loss":0.69}]}"#;
    assert!(serde_json::from_slice::<RunResult>(seed).is_ok());
    check(
        96,
        seed.to_vec(),
        &tmp.path().join("result.json"),
        RunResult::read,
    );
}

#[test]
fn tokenizer_files() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = std::fs::read(model_fixture("tiny-bert/vocab.txt")).unwrap();
    check(192, seed, &tmp.path().join("vocab.txt"), Tokenizer::at);
    let gpt = tmp.path().join("gpt");
    std::fs::create_dir_all(&gpt).unwrap();
    std::fs::copy(model_fixture("tiny-gpt/merges.txt"), gpt.join("merges.txt")).unwrap();
    let seed = std::fs::read(model_fixture("tiny-gpt/vocab.json")).unwrap();
    check(128, seed, &gpt.join("vocab.json"), |_| Tokenizer::at(&gpt));
}

/// Mutates `file` of a copy of fixture `name` and loads the whole encoder from the directory.
fn model_file(name: &str, file: &str, cases: u32) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_dir(&model_fixture(name), &dir);
    let seed = std::fs::read(dir.join(file)).unwrap();
    let device = Device::flex();
    check(cases, seed, &dir.join(file), |_| {
        let config = EncoderConfig::from_hf_dir(&dir)?;
        Encoder::from_hf_dir(&dir, &config, &device).map(|_| ())
    });
}

#[test]
fn hf_config_json() {
    model_file("tiny-bert", "config.json", 192);
}

#[test]
fn safetensors_weights() {
    model_file("tiny-bert", "model.safetensors", 128);
}

#[test]
fn pytorch_pickle_weights() {
    model_file("tiny-bert-legacy", "pytorch_model.bin", 128);
}

#[test]
fn gpt_original_release_npy_and_shapes() {
    model_file("tiny-gpt-original", "params_0.npy", 128);
    model_file("tiny-gpt-original", "params_shapes.json", 128);
}

#[test]
fn elmo_options_and_hdf5_weights() {
    model_file("tiny-elmo", "options.json", 128);
    model_file("tiny-elmo", "weights.hdf5", 128);
}

#[test]
fn saved_model_meta() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = repo().join("crates/stilts-train/tests/fixtures/model-v0/stilts-model.json");
    check(
        192,
        std::fs::read(fixture).unwrap(),
        &tmp.path().join("stilts-model.json"),
        stilts_train::model::store::read_meta,
    );
}

/// A checkpoint's `state.json`, and its model description, mutated (without a manifest, so they
/// are parsed rather than refused by it): a checkpoint that loads, or an error naming the file.
#[test]
fn checkpoint_state_and_meta() {
    use stilts_train::checkpoint::{self, TrainState};
    use stilts_train::config::PairMode;
    use stilts_train::model::{HeadInfo, ModelMeta, skeleton};
    use stilts_train::models::bert::BertConfig;
    let device = Device::flex();
    let meta = ModelMeta::new(
        EncoderConfig::Bert(BertConfig::new(30, 8, 1, 2, 16)),
        vec![HeadInfo::for_task(
            &BuiltinTask::Rte.task(),
            PairMode::Joint,
        )],
    );
    let model = skeleton(&meta, &device).expect("a BERT skeleton");
    let tmp = tempfile::tempdir().unwrap();
    let dir = checkpoint::dir(tmp.path());
    let optimizer = stilts_train::models::bert::AdamWGroupsConfig::new().init();
    let state = TrainState::new("f".into(), "p", 1);
    checkpoint::save(&dir, &model, &meta, &optimizer, &state).unwrap();
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    for file in ["state.json", "meta.json"] {
        let seed = std::fs::read(dir.join(file)).unwrap();
        check(96, seed.clone(), &dir.join(file), |_| {
            checkpoint::load(&dir, &device).map(|_| ())
        });
        std::fs::write(dir.join(file), seed).unwrap();
    }
}
