//! Every number an experiment can carry, set to 0, -1, NaN and a huge value: resolution either
//! accepts it (where the value is legal) or refuses it with an error naming the key, and never
//! panics or allocates what the value asks for.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use stilts_train::config::{Experiment, ExperimentFile, Override};

const INTS: &[&str] = &["0", "-1", "nan", "9223372036854775807"];
const FLOATS: &[&str] = &["0.0", "-1.0", "nan", "1e300"];

/// Key path, the values to try, and those among them that are legal.
const KEYS: &[(&str, &[&str], &[&str])] = &[
    ("seed", INTS, &["0", "9223372036854775807"]),
    ("recipe.batch_size", INTS, &[]),
    ("recipe.eval_batch_size", INTS, &[]),
    ("recipe.lr", FLOATS, &["1e300"]),
    ("recipe.beta_1", FLOATS, &["0.0"]),
    ("recipe.beta_2", FLOATS, &["0.0"]),
    // f32 settings: 1e300 is infinite there.
    ("recipe.epsilon", FLOATS, &[]),
    ("recipe.weight_decay", FLOATS, &["0.0"]),
    ("recipe.warmup_proportion", FLOATS, &["0.0"]),
    // 0 turns clipping, extra checkpoints and early stopping off.
    ("recipe.max_grad_norm", FLOATS, &["0.0", "1e300"]),
    ("recipe.dropout", FLOATS, &["0.0"]),
    ("recipe.max_seq_len", INTS, &[]),
    ("recipe.epochs", INTS, &[]),
    ("recipe.grad_accum_steps", INTS, &[]),
    (
        "recipe.checkpoint_every_steps",
        INTS,
        &["0", "9223372036854775807"],
    ),
    ("recipe.aux_lm_weight", FLOATS, &["0.0", "1e300"]),
    (
        "recipe.early_stop_patience",
        INTS,
        &["0", "9223372036854775807"],
    ),
    ("phases.0.recipe.epochs", INTS, &[]),
    ("phases.0.restarts", INTS, &[]),
    (
        "phases.0.tasks.0.train_examples",
        INTS,
        &["9223372036854775807"],
    ),
    ("model.random.hidden_size", INTS, &[]),
    ("model.random.num_hidden_layers", INTS, &[]),
    ("model.random.num_attention_heads", INTS, &[]),
    ("model.random.intermediate_size", INTS, &[]),
    ("model.random.max_position_embeddings", INTS, &[]),
];

/// The other families' size keys (the BERT ones are above).
const GPT_KEYS: &[&str] = &["n_embd", "n_layer", "n_head", "n_positions"];
const ELMO_KEYS: &[&str] = &["projection_dim", "cell_size", "n_layers", "pool_dim"];

/// What an error about `key` of `model.random` names: the key, or for ELMo's cell the
/// AllenNLP option it sets (`lstm.dim`).
fn named(key: &str) -> &str {
    if key == "cell_size" { "lstm.dim" } else { key }
}

fn resolve_with(base: &toml::Table, key: &str, value: &str) -> Result<Experiment, String> {
    let mut doc = base.clone();
    let o: Override = format!("{key}={value}").parse().unwrap();
    o.apply(&mut doc).unwrap();
    let text = toml::to_string(&doc).unwrap();
    let file: ExperimentFile = toml::from_str(&text).map_err(|e| e.to_string())?;
    Experiment::from_file(&file, Path::new("test.toml"), "test").map_err(|e| e.to_string())
}

#[test]
fn every_number_is_range_checked_where_it_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 8, 4);
    let text = common::experiment_toml(
        &root,
        "o",
        "[[phases]]\ntasks = [{ task = \"RTE\", train_examples = 4 }]\nrecipe = { epochs = 1 }\n",
    );
    let base: toml::Table = toml::from_str(&text).unwrap();
    assert!(resolve_with(&base, "seed", "1").is_ok());
    let mut failures = Vec::new();
    for &(key, values, legal) in KEYS {
        let leaf = key.rsplit('.').next().unwrap();
        for &value in values {
            let outcome = catch_unwind(AssertUnwindSafe(|| resolve_with(&base, key, value)));
            match (outcome, legal.contains(&value)) {
                (Err(_), _) => failures.push(format!("{key} = {value}: panicked")),
                (Ok(Ok(_)), true) => {}
                (Ok(Ok(_)), false) => failures.push(format!("{key} = {value}: accepted")),
                (Ok(Err(e)), false) if e.contains(leaf) => {}
                (Ok(Err(e)), _) => failures.push(format!("{key} = {value}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_size_of_a_random_gpt_and_elmo_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 8, 4);
    let text = common::experiment_toml(&root, "o", "[[phases]]\ntasks = [\"RTE\"]\n");
    let mut failures = Vec::new();
    for (encoder, random, keys) in [
        (
            "gpt",
            "{ n_embd = 32, n_layer = 2, n_head = 2, n_positions = 64 }",
            GPT_KEYS,
        ),
        (
            "elmo",
            "{ projection_dim = 16, cell_size = 32, n_layers = 2, pool_dim = 16 }",
            ELMO_KEYS,
        ),
    ] {
        let mut base: toml::Table = toml::from_str(&text).unwrap();
        for o in [
            format!("model.encoder={encoder}"),
            format!("model.random={random}"),
        ] {
            o.parse::<Override>().unwrap().apply(&mut base).unwrap();
        }
        for key in keys {
            for value in INTS {
                let path = format!("model.random.{key}");
                let outcome = catch_unwind(AssertUnwindSafe(|| resolve_with(&base, &path, value)));
                match outcome {
                    Err(_) => failures.push(format!("{encoder} {key} = {value}: panicked")),
                    Ok(Ok(_)) => failures.push(format!("{encoder} {key} = {value}: accepted")),
                    Ok(Err(e))
                        if e.contains("model.random")
                            && (e.contains(&format!("{key} =")) || e.contains(named(key))) => {}
                    Ok(Err(e)) => failures.push(format!("{encoder} {key} = {value}: {e}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
