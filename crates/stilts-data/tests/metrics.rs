use std::collections::BTreeMap;

use serde::Deserialize;
use stilts_data::BuiltinTask;
use stilts_data::metrics::{
    Metric, MetricError, Predictions, Scores, accuracy, evaluate, f1_binary, glue_average, mcc,
    mnli_score, pearson, spearman, task_score,
};

const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct Fixture {
    versions: BTreeMap<String, String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Case {
    Classes {
        name: String,
        num_classes: usize,
        pred: Vec<usize>,
        gold: Vec<usize>,
        expected: BTreeMap<Metric, f64>,
    },
    Scores {
        name: String,
        #[serde(deserialize_with = "decimal_strings")]
        pred: Vec<f64>,
        #[serde(deserialize_with = "decimal_strings")]
        gold: Vec<f64>,
        expected: BTreeMap<Metric, Option<f64>>,
    },
}

/// Float inputs are stored as decimal strings: `str::parse` rounds correctly, so the test sees the
/// same `f64`s SciPy saw (serde_json's default float parsing can be one ulp off).
fn decimal_strings<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| s.parse::<f64>().map_err(serde::de::Error::custom))
        .collect()
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/metrics.json")).expect("fixture parses")
}

fn assert_close(name: &str, metric: Metric, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOLERANCE,
        "{name}: {metric} = {got}, reference {want} (diff {:e})",
        (got - want).abs()
    );
}

#[test]
fn fixture_matches_sklearn_and_scipy() {
    let fixture = fixture();
    for library in ["numpy", "scipy", "scikit-learn"] {
        assert!(fixture.versions.contains_key(library), "{library} version");
    }
    assert!(fixture.cases.len() >= 60, "{} cases", fixture.cases.len());
    let (mut checked, mut nan_cases) = (0, 0);
    for case in &fixture.cases {
        match case {
            Case::Classes {
                name,
                num_classes,
                pred,
                gold,
                expected,
            } => {
                let p = Predictions::Classes {
                    pred,
                    gold,
                    num_classes: *num_classes,
                };
                let wanted: Vec<Metric> = if *num_classes == 2 {
                    vec![Metric::Accuracy, Metric::F1, Metric::Mcc]
                } else {
                    vec![Metric::Accuracy, Metric::Mcc]
                };
                assert_eq!(
                    expected.keys().copied().collect::<Vec<_>>(),
                    wanted,
                    "{name}"
                );
                for (&metric, &want) in expected {
                    let direct = match metric {
                        Metric::Accuracy => accuracy(pred, gold),
                        Metric::F1 => f1_binary(pred, gold),
                        Metric::Mcc => mcc(pred, gold, *num_classes),
                        other => panic!("{name}: unexpected {other}"),
                    }
                    .unwrap();
                    assert_close(name, metric, direct, want);
                    assert_eq!(metric.compute(&p).unwrap(), direct, "{name}: {metric}");
                    checked += 1;
                }
            }
            Case::Scores {
                name,
                pred,
                gold,
                expected,
            } => {
                let p = Predictions::Scores { pred, gold };
                assert_eq!(
                    expected.keys().copied().collect::<Vec<_>>(),
                    vec![Metric::Pearson, Metric::Spearman],
                    "{name}"
                );
                for (&metric, &want) in expected {
                    let direct = match metric {
                        Metric::Pearson => pearson(pred, gold),
                        Metric::Spearman => spearman(pred, gold),
                        other => panic!("{name}: unexpected {other}"),
                    }
                    .unwrap();
                    match want {
                        Some(want) => assert_close(name, metric, direct, want),
                        None => {
                            assert_eq!(direct, 0.0, "{name}: {metric} where SciPy gives NaN");
                            nan_cases += 1;
                        }
                    }
                    assert_eq!(metric.compute(&p).unwrap(), direct, "{name}: {metric}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 150, "{checked} values checked");
    assert_eq!(
        nan_cases, 6,
        "constant-input cases (pearson and spearman each)"
    );
}

#[test]
fn empty_and_mismatched_inputs_are_errors() {
    assert_eq!(accuracy(&[], &[]), Err(MetricError::Empty));
    assert_eq!(f1_binary(&[], &[]), Err(MetricError::Empty));
    assert_eq!(mcc(&[], &[], 3), Err(MetricError::Empty));
    assert_eq!(pearson(&[], &[]), Err(MetricError::Empty));
    assert_eq!(spearman(&[], &[]), Err(MetricError::Empty));
    let mismatch = MetricError::LengthMismatch { pred: 2, gold: 3 };
    assert_eq!(accuracy(&[0, 1], &[0, 1, 1]), Err(mismatch.clone()));
    assert_eq!(f1_binary(&[0, 1], &[0, 1, 1]), Err(mismatch.clone()));
    assert_eq!(mcc(&[0, 1], &[0, 1, 1], 2), Err(mismatch.clone()));
    assert_eq!(
        pearson(&[0.0, 1.0], &[0.0, 1.0, 2.0]),
        Err(mismatch.clone())
    );
    assert_eq!(spearman(&[0.0, 1.0], &[0.0, 1.0, 2.0]), Err(mismatch));
    assert_eq!(
        mcc(&[0, 1], &[0, 1, 1], 2).unwrap_err().to_string(),
        "2 predictions but 3 gold labels"
    );
}

#[test]
fn out_of_range_classes_and_non_finite_scores_are_errors() {
    assert_eq!(
        f1_binary(&[0, 2, 1], &[0, 1, 1]),
        Err(MetricError::ClassOutOfRange {
            side: "predicted",
            index: 1,
            class: 2,
            num_classes: 2
        })
    );
    assert_eq!(
        mcc(&[0, 1, 2], &[0, 3, 1], 3),
        Err(MetricError::ClassOutOfRange {
            side: "gold",
            index: 1,
            class: 3,
            num_classes: 3
        })
    );
    assert!(matches!(
        pearson(&[0.0, f64::NAN], &[0.0, 1.0]),
        Err(MetricError::NonFinite {
            side: "predicted",
            index: 1,
            ..
        })
    ));
    assert!(matches!(
        spearman(&[0.0, 1.0], &[f64::INFINITY, 1.0]),
        Err(MetricError::NonFinite {
            side: "gold",
            index: 0,
            ..
        })
    ));
    assert_eq!(
        mcc(&[0, 1], &[0, 1], usize::MAX),
        Ok(1.0),
        "num_classes only bounds the indices"
    );
}

#[test]
fn degenerate_inputs_give_zero_not_nan() {
    assert_eq!(mcc(&[1, 1, 1, 1], &[0, 1, 0, 1], 2), Ok(0.0));
    assert_eq!(mcc(&[0, 1, 2, 1], &[2, 2, 2, 2], 3), Ok(0.0));
    assert_eq!(mcc(&[0], &[0], 2), Ok(0.0));
    assert_eq!(f1_binary(&[0, 0, 0], &[0, 0, 0]), Ok(0.0));
    assert_eq!(f1_binary(&[0, 0, 0], &[0, 1, 0]), Ok(0.0));
    assert_eq!(f1_binary(&[1, 1], &[1, 1]), Ok(1.0));
    assert_eq!(pearson(&[2.0, 2.0, 2.0], &[1.0, 2.0, 3.0]), Ok(0.0));
    assert_eq!(pearson(&[1.0, 2.0, 3.0], &[0.1, 0.1, 0.1]), Ok(0.0));
    assert_eq!(spearman(&[0.1, 0.1, 0.1], &[1.0, 2.0, 3.0]), Ok(0.0));
    assert_eq!(pearson(&[4.0], &[5.0]), Ok(0.0));
    assert_eq!(spearman(&[4.0], &[5.0]), Ok(0.0));
    assert_eq!(pearson(&[0.1; 7], &[0.3; 7]), Ok(0.0));
}

#[test]
fn hand_computed_values() {
    assert_eq!(accuracy(&[0, 1, 2, 2], &[0, 2, 2, 1]), Ok(0.5));
    // tp = 2, fp = 1, fn = 1: F1 = 4 / 6.
    assert_eq!(f1_binary(&[1, 1, 1, 0, 0], &[1, 1, 0, 1, 0]), Ok(4.0 / 6.0));
    // Gorodkin: c = 2, s = 4, t = (1, 1, 2), p = (1, 1, 2), t·p = 6: (8 - 6) / (16 - 6) = 0.2.
    let m = mcc(&[0, 2, 1, 2], &[0, 1, 2, 2], 3).unwrap();
    assert!((m - 0.2).abs() < 1e-15, "{m}");
    let r = pearson(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]).unwrap();
    assert!((r - 0.5).abs() < 1e-15, "{r}");
    // Ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): r = 4.5 / sqrt(4.5 * 5).
    let rho = spearman(&[0.1, 0.7, 0.7, 0.9], &[10.0, 20.0, 30.0, 40.0]).unwrap();
    assert!((rho - 4.5 / (4.5f64 * 5.0).sqrt()).abs() < 1e-15, "{rho}");
}

#[test]
fn metric_kinds_must_match_predictions() {
    let classes = Predictions::Classes {
        pred: &[0, 1, 2],
        gold: &[0, 2, 2],
        num_classes: 3,
    };
    let scores = Predictions::Scores {
        pred: &[0.1, 0.4, 0.2],
        gold: &[1.0, 2.0, 3.0],
    };
    assert_eq!(
        Metric::F1.compute(&classes),
        Err(MetricError::NotBinary { num_classes: 3 })
    );
    assert_eq!(
        Metric::Pearson.compute(&classes),
        Err(MetricError::WrongKind {
            metric: Metric::Pearson,
            expected: "real-valued score"
        })
    );
    assert_eq!(
        Metric::Accuracy.compute(&scores),
        Err(MetricError::WrongKind {
            metric: Metric::Accuracy,
            expected: "class"
        })
    );
    assert_eq!(
        Metric::Accuracy.compute(&Predictions::Classes {
            pred: &[0, 3],
            gold: &[0, 1],
            num_classes: 3
        }),
        Err(MetricError::ClassOutOfRange {
            side: "predicted",
            index: 1,
            class: 3,
            num_classes: 3
        })
    );
}

#[test]
fn evaluate_and_task_scores() {
    let mrpc = BuiltinTask::Mrpc.task();
    let pred = [1, 1, 0, 1, 0, 1, 1, 0];
    let gold = [1, 0, 0, 1, 1, 1, 1, 0];
    let scores = evaluate(
        &mrpc.metrics,
        &Predictions::Classes {
            pred: &pred,
            gold: &gold,
            num_classes: 2,
        },
    )
    .unwrap();
    // tp = 4, fp = 1, fn = 1, tn = 2.
    assert_eq!(scores.get(Metric::Accuracy), Some(0.75));
    assert_eq!(scores.get(Metric::F1), Some(0.8));
    assert_eq!(scores.get(Metric::Mcc), None);
    assert!((task_score(&scores) - 0.775).abs() < 1e-15);

    let stsb = BuiltinTask::Stsb.task();
    let scores = evaluate(
        &stsb.metrics,
        &Predictions::Scores {
            pred: &[1.0, 2.0, 3.0],
            gold: &[1.0, 3.0, 2.0],
        },
    )
    .unwrap();
    assert!((scores.get(Metric::Pearson).unwrap() - 0.5).abs() < 1e-15);
    assert!((scores.get(Metric::Spearman).unwrap() - 0.5).abs() < 1e-15);
    assert!((scores.task_score() - 0.5).abs() < 1e-15);

    assert_eq!(
        evaluate(
            &[],
            &Predictions::Scores {
                pred: &[1.0],
                gold: &[1.0]
            }
        ),
        Err(MetricError::NoMetrics)
    );
}

#[test]
fn scores_serialize_as_a_metric_map() {
    let scores = Scores::new(BTreeMap::from([
        (Metric::F1, 0.5),
        (Metric::Accuracy, 0.25),
    ]))
    .unwrap();
    let json = serde_json::to_string(&scores).unwrap();
    assert_eq!(json, r#"{"accuracy":0.25,"f1":0.5}"#);
    assert_eq!(serde_json::from_str::<Scores>(&json).unwrap(), scores);
    assert!(serde_json::from_str::<Scores>("{}").is_err());
    assert_eq!(
        Scores::new(BTreeMap::from([(Metric::Mcc, f64::NAN)])).map_err(|e| e.to_string()),
        Err("mcc value NaN is not finite".to_string())
    );
}

fn glue_example() -> Vec<(BuiltinTask, f64)> {
    vec![
        (BuiltinTask::Cola, 0.60),
        (BuiltinTask::Sst2, 0.93),
        (BuiltinTask::Mrpc, (0.90 + 0.86) / 2.0),
        (BuiltinTask::Qqp, (0.71 + 0.89) / 2.0),
        (BuiltinTask::Stsb, (0.87 + 0.86) / 2.0),
        (BuiltinTask::Mnli, mnli_score(0.86, 0.85)),
        (BuiltinTask::Qnli, 0.92),
        (BuiltinTask::Rte, 0.70),
        (BuiltinTask::Wnli, 0.65),
    ]
}

#[test]
fn glue_average_is_the_unweighted_mean_of_nine_tasks() {
    assert_eq!(mnli_score(0.86, 0.85), 0.855);
    // 0.60 + 0.93 + 0.88 + 0.80 + 0.865 + 0.855 + 0.92 + 0.70 + 0.65 = 7.2 over 9 tasks.
    let avg = glue_average(&glue_example()).unwrap();
    assert!((avg - 0.8).abs() < 1e-12, "{avg}");

    let mut reversed = glue_example();
    reversed.reverse();
    assert!((glue_average(&reversed).unwrap() - avg).abs() < 1e-15);
}

#[test]
fn glue_average_needs_exactly_the_nine_tasks() {
    let mut with_ax = glue_example();
    with_ax.push((BuiltinTask::Ax, 0.4));
    assert_eq!(
        glue_average(&with_ax),
        Err(MetricError::NotGlue {
            task: BuiltinTask::Ax
        })
    );

    let mut duplicated = glue_example();
    duplicated.push((BuiltinTask::Rte, 0.7));
    assert_eq!(
        glue_average(&duplicated),
        Err(MetricError::DuplicateTask {
            task: BuiltinTask::Rte
        })
    );

    let missing: Vec<_> = glue_example()
        .into_iter()
        .filter(|(t, _)| !matches!(t, BuiltinTask::Wnli | BuiltinTask::Cola))
        .collect();
    let err = glue_average(&missing).unwrap_err();
    assert_eq!(
        err,
        MetricError::MissingTasks {
            missing: vec![BuiltinTask::Cola, BuiltinTask::Wnli]
        }
    );
    assert_eq!(
        err.to_string(),
        "GLUE average needs all nine tasks; missing: CoLA, WNLI"
    );

    let mut nan = glue_example();
    nan[0].1 = f64::NAN;
    assert!(matches!(
        glue_average(&nan),
        Err(MetricError::NonFiniteTaskScore {
            task: BuiltinTask::Cola,
            ..
        })
    ));
    assert!(matches!(
        glue_average(&[]),
        Err(MetricError::MissingTasks { missing }) if missing.len() == 9
    ));
}
