//! A small slice of the real RTE (`$GLUE_DIR`) through the whole engine with a tiny random BERT
//! and the bert-base-uncased vocabulary (`$STILTS_MODELS_DIR`); skipped when either is unset.

use std::path::PathBuf;

use stilts_train::config::ExperimentFile;
use stilts_train::experiment::run_experiment;
use stilts_train::observer::NoopObserver;

#[test]
fn real_rte_slice_end_to_end() {
    let (Some(glue), Some(models)) = (
        std::env::var_os("GLUE_DIR").map(PathBuf::from),
        std::env::var_os("STILTS_MODELS_DIR").map(PathBuf::from),
    ) else {
        println!("skipped: set GLUE_DIR and STILTS_MODELS_DIR");
        return;
    };
    let vocab = models.join("bert-base-uncased/vocab.txt");
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
seed = 3
output_dir = "{out}"
[model]
random = {{ hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64 }}
tokenizer = "{vocab}"
[data]
glue_dir = "{glue}"
[recipe]
batch_size = 16
max_seq_len = 64
epochs = 1
bucket_by_length = true
[[phases]]
tasks = [{{ task = "RTE", train_examples = 96 }}]
restarts = 2
"#,
        out = tmp.path().join("out").display(),
        vocab = vocab.display(),
        glue = glue.display(),
    );
    let file: ExperimentFile = toml::from_str(&text).unwrap();
    let exp =
        stilts_train::config::Experiment::from_file(&file, "real.toml".as_ref(), "real").unwrap();
    let summary = run_experiment(&exp, &mut NoopObserver).unwrap();
    let phase = &summary.phases[0];
    assert_eq!(phase.runs.len(), 2);
    // The majority class of RTE dev is 131/277 or 146/277 depending on the train majority.
    assert!(phase.baseline > 0.45 && phase.baseline < 0.55, "{phase:?}");
    let result: stilts_train::results::RunResult = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("out/00-RTE/seed-3/result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(result.manifests[0].ids.len(), 96);
    assert_eq!(result.manifests[0].population, 2490);
    assert_eq!(result.dev_predictions[0].ids.len(), 277);
    assert_eq!(result.data[0].examples, 96);
    assert_eq!(result.data[1].examples, 277);
    assert_eq!(result.steps, 6);
}
