//! `stilts rank`'s methods against their references on the same features: LogME, the
//! Embedding Space Map and its training against hf-dataset-selector's own code, SEmb against
//! NumPy (`scripts/make_rank_fixtures.py` wrote `fixtures/rank/reference.json`).

use nalgebra::DMatrix;
use serde::Deserialize;
use stilts_train::rank::esm::{Esm, EsmTraining};
use stilts_train::rank::logme::{Targets, logme};
use stilts_train::rank::methods::semb;
use stilts_train::rank::{Pooling, TaskFeatures, esm_file};

#[derive(Deserialize)]
struct Fixture {
    logme: Vec<LogmeCase>,
    semb: Vec<SembCase>,
    esm: Vec<EsmCase>,
    eval: Vec<EvalCase>,
}

#[derive(Deserialize)]
struct EvalCase {
    name: String,
    stilts: Vec<f64>,
    scores: Vec<f64>,
    spearman: f64,
    ndcg_at_3: f64,
    regret_at_1: f64,
    regret_at_3: f64,
}

#[derive(Deserialize)]
struct EsmCase {
    d: usize,
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    weight_decay: f64,
    base: Vec<f32>,
    tuned: Vec<f32>,
    init_weight: Vec<f32>,
    init_bias: Vec<f32>,
    weight: Vec<f32>,
    bias: Vec<f32>,
    losses: Vec<f64>,
    target: Vec<f32>,
    labels: Vec<usize>,
    mapped: Vec<f32>,
    esm_logme: f64,
}

#[derive(Deserialize)]
struct LogmeCase {
    name: String,
    n: usize,
    d: usize,
    regression: bool,
    features: Vec<f32>,
    labels: Vec<f64>,
    logme: f64,
}

#[derive(Deserialize)]
struct SembCase {
    d: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    semb: f64,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rank/reference.json"
    );
    let text = std::fs::read_to_string(path).expect("the rank fixture");
    serde_json::from_str(&text).expect("the rank fixture parses")
}

#[test]
fn logme_matches_hf_dataset_selector() {
    let cases = fixture().logme;
    assert_eq!(cases.len(), 5);
    for case in cases {
        let targets = if case.regression {
            Targets::Scores(case.labels.clone())
        } else {
            Targets::Classes(case.labels.iter().map(|&v| v as usize).collect())
        };
        assert_eq!(targets.len(), case.n);
        let ours = logme(&case.features, case.d, &targets);
        let diff = (ours - case.logme).abs();
        assert!(
            diff <= 1e-6 * case.logme.abs().max(1.0),
            "{}: LogME {ours} vs hfselect {} (diff {diff:e})",
            case.name,
            case.logme
        );
    }
}

fn features(values: Vec<f32>, d: usize) -> TaskFeatures {
    let rows = values.len() / d;
    TaskFeatures {
        task: "t".into(),
        train_size: rows,
        rows,
        dim: d,
        values,
        targets: Targets::Classes(vec![0; rows]),
        seconds: 0.0,
    }
}

#[test]
fn semb_matches_numpy() {
    for case in fixture().semb {
        let ours = semb(&features(case.a, case.d), &features(case.b, case.d));
        assert!(
            (ours - case.semb).abs() <= 1e-9,
            "SEmb {ours} vs NumPy {}",
            case.semb
        );
    }
}

fn assert_close(what: &str, ours: &[f32], theirs: &[f32], tol: f32) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!((a - b).abs() <= tol, "{what}[{i}]: {a} vs hfselect {b}");
    }
}

#[test]
fn esm_training_and_esm_logme_match_hf_dataset_selector() {
    for case in fixture().esm {
        let d = case.d;
        let mut esm = Esm {
            weight: DMatrix::from_row_slice(d, d, &case.init_weight),
            bias: case.init_bias.clone(),
        };
        let n = case.base.len() / d;
        // hfselect's batches were taken in file order for the fixture.
        let orders = vec![(0..n).collect::<Vec<_>>(); case.epochs];
        let options = EsmTraining {
            epochs: case.epochs,
            batch_size: case.batch_size,
            learning_rate: case.learning_rate,
            weight_decay: case.weight_decay,
            ..EsmTraining::default()
        };
        assert_eq!(
            options,
            EsmTraining {
                epochs: case.epochs,
                ..EsmTraining::default()
            }
        );
        let epoch_losses = esm.train_in_order(&case.base, &case.tuned, &orders, &options);
        let steps = n.div_ceil(case.batch_size);
        for (epoch, loss) in epoch_losses.iter().enumerate() {
            let theirs: f64 = case.losses[epoch * steps..(epoch + 1) * steps]
                .iter()
                .sum::<f64>()
                / steps as f64;
            assert!(
                (loss - theirs).abs() < 1e-5,
                "epoch {epoch} loss {loss} vs {theirs}"
            );
        }
        let weight: Vec<f32> = (0..d)
            .flat_map(|i| esm.weight.row(i).iter().copied().collect::<Vec<_>>())
            .collect();
        assert_close("weight", &weight, &case.weight, 1e-5);
        assert_close("bias", &esm.bias, &case.bias, 1e-5);
        // The trained map applied to the target, and ESM-LogME on it.
        let mapped = esm.apply(&case.target);
        assert_close("mapped", &mapped, &case.mapped, 1e-4);
        let targets = Targets::Classes(case.labels.clone());
        let on_theirs = logme(&case.mapped, d, &targets);
        assert!(
            (on_theirs - case.esm_logme).abs() < 1e-6,
            "{on_theirs} vs {}",
            case.esm_logme
        );
        let on_ours = logme(&mapped, d, &targets);
        assert!(
            (on_ours - case.esm_logme).abs() < 1e-4,
            "{on_ours} vs {}",
            case.esm_logme
        );
    }
}

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rank")
}

#[test]
fn reads_an_esm_hf_dataset_selector_saved_and_round_trips_its_own() {
    let case = fixture().esm.remove(0);
    let (esm, config) = esm_file::load(&fixture_dir().join("esm-hfselect")).unwrap();
    assert_eq!(config.esm_embedding_dim, case.d);
    assert_eq!(config.task_id.as_deref(), Some("fixture"));
    assert!(config.stilts.is_none());
    let weight: Vec<f32> = (0..case.d)
        .flat_map(|i| esm.weight.row(i).iter().copied().collect::<Vec<_>>())
        .collect();
    assert_eq!(weight, case.weight);
    assert_eq!(esm.bias, case.bias);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("esm");
    let provenance = esm_file::EsmProvenance {
        base_weights_sha256: "a".repeat(64),
        tuned_weights_sha256: "b".repeat(64),
        sample_sha256: "c".repeat(64),
        pooling: Pooling::Mean,
        max_seq_len: 128,
        losses: vec![1.0, 0.5],
    };
    let config =
        esm_file::EsmConfig::new(case.d, "MNLI", 70, 1, &EsmTraining::default(), provenance);
    esm_file::save(&dir, &esm, &config).unwrap();
    let (again, read) = esm_file::load(&dir).unwrap();
    assert_eq!(again, esm);
    assert_eq!(read, config);

    // A map of another architecture, or with a tensor of the wrong shape, is named.
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        text.replace("\"linear\"", "\"mlp\""),
    )
    .unwrap();
    let err = esm_file::load(&dir).unwrap_err().to_string();
    assert!(
        err.contains("config.json") && err.contains("only `linear`"),
        "{err}"
    );
    std::fs::write(
        dir.join("config.json"),
        text.replace(
            &format!("\"esm_embedding_dim\": {}", case.d),
            "\"esm_embedding_dim\": 7",
        ),
    )
    .unwrap();
    let err = esm_file::load(&dir).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("model.weight"),
        "{err}"
    );
}

#[test]
fn ranking_quality_matches_scipy_and_scikit_learn() {
    use stilts_train::rank::MethodRanking;
    use stilts_train::rank::evaluate::{ndcg, regret, spearman};
    for case in fixture().eval {
        let close = |what: &str, ours: f64, theirs: f64| {
            assert!(
                (ours - theirs).abs() < 1e-9,
                "{}: {what} {ours} vs {theirs}",
                case.name
            );
        };
        close(
            "spearman",
            spearman(&case.scores, &case.stilts),
            case.spearman,
        );
        close(
            "ndcg@3",
            ndcg(&case.stilts, &case.scores, 3),
            case.ndcg_at_3,
        );
        let names: Vec<String> = (0..case.scores.len()).map(|i| i.to_string()).collect();
        let ranked = MethodRanking::from_scores("m", 0.0, &names, &case.scores);
        let order: Vec<usize> = ranked.order().iter().map(|n| n.parse().unwrap()).collect();
        close(
            "regret@1",
            regret(&case.stilts, &order, 1),
            case.regret_at_1,
        );
        close(
            "regret@3",
            regret(&case.stilts, &order, 3),
            case.regret_at_3,
        );
    }
}
