use std::path::PathBuf;

use stilts_data::sample::{
    ALGORITHM, SampleError, SampleManifest, apply_manifest, downsample, ids_sha256,
};
use stilts_data::{BuiltinTask, Dataset, Example, Label, LoadOptions};

fn synthetic(n: usize) -> Dataset {
    Dataset {
        task: "Toy".into(),
        split: "train".into(),
        path: PathBuf::from("toy/train.tsv"),
        examples: (0..n)
            .map(|i| Example {
                id: format!("ex-{i}"),
                text_a: format!("sentence {i}"),
                text_b: None,
                label: Some(Label::Class(i % 2)),
            })
            .collect(),
        skipped_unlabelled: 0,
        skipped_malformed: Vec::new(),
        sha256: "ab".repeat(32),
    }
}

fn ids(d: &Dataset) -> Vec<String> {
    d.examples.iter().map(|e| e.id.clone()).collect()
}

#[test]
fn known_subset_and_hash_are_pinned() {
    let (subset, manifest) = downsample(&synthetic(100), 10, 42, 0).unwrap();
    let expected = [
        "ex-2", "ex-5", "ex-17", "ex-27", "ex-57", "ex-78", "ex-85", "ex-97", "ex-98", "ex-99",
    ];
    assert_eq!(ids(&subset), expected);
    assert_eq!(manifest.ids, expected);
    assert_eq!(
        manifest.ids_sha256,
        "1bd987ccb89ea2ce445657d411220ebbaf9b66419a6dc00fc93e13582dc08eb3"
    );
    let (_, other) = downsample(&synthetic(100), 10, 42, 1).unwrap();
    assert_eq!(
        other.ids_sha256,
        "5aa88b84eb122b99404f5b8f477bcc400c44a21a6d8880af900d0b73c96d51d8"
    );
    assert_eq!(manifest.algorithm, ALGORITHM);
    assert_eq!(manifest.population, 100);
    assert_eq!(manifest.requested, 10);
    assert!(!manifest.kept_all);
    assert_eq!((manifest.seed, manifest.stream), (42, 0));
    assert_eq!(manifest.source_sha256, "ab".repeat(32));
}

#[test]
fn deterministic_and_in_original_order() {
    let data = synthetic(1000);
    let (a, ma) = downsample(&data, 100, 7, 3).unwrap();
    let (b, mb) = downsample(&data, 100, 7, 3).unwrap();
    assert_eq!(a.examples, b.examples);
    assert_eq!(ma, mb);
    let positions: Vec<usize> = a
        .examples
        .iter()
        .map(|e| data.examples.iter().position(|d| d == e).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    assert_eq!((a.task.as_str(), a.split.as_str()), ("Toy", "train"));
    assert_eq!(a.sha256, data.sha256);
}

#[test]
fn streams_and_seeds_give_different_subsets() {
    let data = synthetic(1000);
    let subsets: Vec<Vec<String>> = (0..5)
        .map(|k| ids(&downsample(&data, 100, 7, k).unwrap().0))
        .collect();
    for i in 0..subsets.len() {
        for j in i + 1..subsets.len() {
            assert_ne!(subsets[i], subsets[j], "streams {i} and {j}");
        }
    }
    assert_ne!(ids(&downsample(&data, 100, 8, 0).unwrap().0), subsets[0]);
}

#[test]
fn n_at_least_population_keeps_everything() {
    let data = synthetic(30);
    for n in [30, 31, 1000] {
        let (all, m) = downsample(&data, n, 1, 0).unwrap();
        assert_eq!(all.examples, data.examples);
        assert!(m.kept_all);
        assert_eq!(m.ids.len(), 30);
        assert_eq!(m.ids_sha256, ids_sha256(&ids(&data)));
    }
    assert!(!downsample(&data, 29, 1, 0).unwrap().1.kept_all);
}

#[test]
fn zero_size_and_duplicate_ids_are_errors() {
    assert!(matches!(
        downsample(&synthetic(5), 0, 1, 0),
        Err(SampleError::ZeroSize)
    ));
    let mut data = synthetic(5);
    data.examples[3].id = "ex-1".into();
    let err = downsample(&data, 2, 1, 0).unwrap_err();
    assert!(matches!(err, SampleError::DuplicateId { ref id, .. } if id == "ex-1"));
    assert!(err.to_string().contains("toy/train.tsv"), "{err}");
}

#[test]
fn manifest_round_trips_and_reapplies() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(200);
    let (subset, manifest) = downsample(&data, 50, 11, 2).unwrap();
    let path = dir.path().join("sample.json");
    manifest.write(&path).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["sample.json"]);
    let back = SampleManifest::read(&path).unwrap();
    assert_eq!(back, manifest);
    let again = apply_manifest(&data, &back).unwrap();
    assert_eq!(again.examples, subset.examples);
}

#[test]
fn apply_manifest_rejects_changed_data() {
    let data = synthetic(100);
    let (_, manifest) = downsample(&data, 10, 42, 0).unwrap();

    let mut changed = data.clone();
    changed.sha256 = "cd".repeat(32);
    let err = apply_manifest(&changed, &manifest).unwrap_err();
    assert!(matches!(err, SampleError::SourceChanged { .. }), "{err}");
    assert!(err.to_string().contains("toy/train.tsv"), "{err}");

    let mut missing = data.clone();
    missing.examples[57].id = "renamed".into();
    let err = apply_manifest(&missing, &manifest).unwrap_err();
    assert!(matches!(err, SampleError::MissingId { ref id, .. } if id == "ex-57"));

    let mut fewer = data.clone();
    fewer.examples.pop();
    assert!(matches!(
        apply_manifest(&fewer, &manifest),
        Err(SampleError::PopulationChanged {
            expected: 100,
            found: 99,
            ..
        })
    ));

    let mut tampered = manifest.clone();
    tampered.ids[0] = "ex-3".into();
    assert!(matches!(
        apply_manifest(&data, &tampered),
        Err(SampleError::Inconsistent { .. })
    ));
}

#[test]
fn read_rejects_bad_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, "{ not json").unwrap();
    let err = SampleManifest::read(&path).unwrap_err();
    assert!(matches!(err, SampleError::Json { .. }));
    assert!(err.to_string().contains("bad.json"), "{err}");

    let (_, manifest) = downsample(&synthetic(20), 5, 1, 0).unwrap();
    let mut value = serde_json::to_value(&manifest).unwrap();
    value["ids_sha256"] = serde_json::Value::String("00".into());
    std::fs::write(&path, value.to_string()).unwrap();
    assert!(matches!(
        SampleManifest::read(&path),
        Err(SampleError::Inconsistent { .. })
    ));

    let mut value = serde_json::to_value(&manifest).unwrap();
    value["extra"] = serde_json::Value::Bool(true);
    std::fs::write(&path, value.to_string()).unwrap();
    assert!(matches!(
        SampleManifest::read(&path),
        Err(SampleError::Json { .. })
    ));

    let missing = dir.path().join("absent.json");
    assert!(matches!(
        SampleManifest::read(&missing),
        Err(SampleError::Io { .. })
    ));
}

#[test]
fn sst2_train_samples_are_deterministic_and_distinct() {
    let Some(root) = std::env::var_os("GLUE_DIR") else {
        println!("skipped: set GLUE_DIR");
        return;
    };
    let task = BuiltinTask::Sst2.task();
    let dir = task.dir_in(root.as_ref());
    assert!(
        dir.is_dir(),
        "GLUE_DIR is set but {} is missing",
        dir.display()
    );
    let train = task
        .load(&dir, "train", LoadOptions::default())
        .expect("SST-2 train loads");
    assert!(
        train.len() > 60_000,
        "SST-2 train has {} examples",
        train.len()
    );
    for n in [1_000, 5_000] {
        let (a, ma) = downsample(&train, n, 1234, 0).unwrap();
        let (b, mb) = downsample(&train, n, 1234, 0).unwrap();
        assert_eq!(a.len(), n);
        assert_eq!(a.examples, b.examples);
        assert_eq!(ma, mb);
        let (_, m1) = downsample(&train, n, 1234, 1).unwrap();
        assert_ne!(ma.ids_sha256, m1.ids_sha256);
        assert_eq!(ma.source_sha256, train.sha256);
        assert_eq!(apply_manifest(&train, &ma).unwrap().examples, a.examples);
        let counts = a.label_counts(2);
        assert!(counts.iter().all(|&c| c > n / 4), "{counts:?}");
        println!("SST-2 {n}: ids_sha256 {} labels {counts:?}", ma.ids_sha256);
    }
}
