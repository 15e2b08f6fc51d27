//! Every staged GLUE split and every `configs/tasks` definition loads from the real data with the
//! official row counts. Data is found through `GLUE_DIR` and `STILTS_EXTRA_DIR`; a test skips
//! only when its variable is unset, and fails when the variable is set but data is missing.

use std::path::{Path, PathBuf};

use stilts_data::custom::load_task_file;
use stilts_data::{BuiltinTask, Dataset, Label, LoadOptions, Task};

fn data_dir(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        None => {
            eprintln!("skipped: set {var} to run the real-data tests");
            None
        }
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(dir.is_dir(), "{var}={} is not a directory", dir.display());
            Some(dir)
        }
    }
}

fn load(task: &Task, root: &Path, split: &str) -> Dataset {
    task.load(&task.dir_in(root), split, LoadOptions::default())
        .unwrap_or_else(|e| panic!("{} {split}: {e}", task.name))
}

fn class_counts(task: &Task, ds: &Dataset) -> Vec<(String, usize)> {
    task.labels()
        .iter()
        .cloned()
        .zip(ds.label_counts(task.labels().len()))
        .collect()
}

#[test]
fn glue_splits_have_official_row_counts() {
    let Some(root) = data_dir("GLUE_DIR") else {
        return;
    };
    let expected: &[(BuiltinTask, &[(&str, usize)])] = &[
        (
            BuiltinTask::Cola,
            &[("train", 8551), ("dev", 1043), ("test", 1063)],
        ),
        (
            BuiltinTask::Sst2,
            &[("train", 67349), ("dev", 872), ("test", 1821)],
        ),
        (
            BuiltinTask::Mrpc,
            &[("train", 3668), ("dev", 408), ("test", 1725)],
        ),
        (
            BuiltinTask::Stsb,
            &[("train", 5749), ("dev", 1500), ("test", 1379)],
        ),
        (BuiltinTask::Qnli, &[("dev", 5463), ("test", 5463)]),
        (
            BuiltinTask::Rte,
            &[("train", 2490), ("dev", 277), ("test", 3000)],
        ),
        (BuiltinTask::Wnli, &[("train", 635), ("dev", 71)]),
        (BuiltinTask::Ax, &[("full", 1104)]),
    ];
    for (builtin, splits) in expected {
        let task = builtin.task();
        let present = task.present_splits(&task.dir_in(&root));
        let wanted: Vec<String> = splits.iter().map(|(s, _)| s.to_string()).collect();
        assert_eq!(present, wanted, "{builtin}: splits found on disk");
        for (split, rows) in *splits {
            let ds = load(&task, &root, split);
            assert_eq!(ds.len(), *rows, "{builtin} {split}");
            assert!(ds.skipped_malformed.is_empty());
            let labelled = task.split(split).unwrap().role != stilts_data::SplitRole::Test;
            assert_eq!(ds.is_labelled(), labelled, "{builtin} {split} labels");
            for ex in &ds.examples {
                assert!(
                    !ex.text_a.is_empty(),
                    "{builtin} {split} id {}: empty text_a",
                    ex.id
                );
                assert_eq!(
                    ex.text_b.is_some(),
                    task.input == stilts_data::InputKind::Pair
                );
                if let Some(Label::Score(s)) = ex.label {
                    assert!((0.0..=5.0).contains(&s), "STS-B score {s}");
                }
            }
        }
    }
}

#[test]
fn glue_label_distributions_and_ids() {
    let Some(root) = data_dir("GLUE_DIR") else {
        return;
    };
    let rte = BuiltinTask::Rte.task();
    let dev = load(&rte, &root, "dev");
    assert_eq!(
        class_counts(&rte, &dev),
        vec![("entailment".into(), 146), ("not_entailment".into(), 131)]
    );
    assert_eq!(dev.examples[0].id, "0");
    let test = load(&rte, &root, "test");
    assert_eq!(test.examples.last().unwrap().id, "2999");

    let cola = BuiltinTask::Cola.task();
    let dev = load(&cola, &root, "dev");
    assert_eq!(
        class_counts(&cola, &dev),
        vec![("0".into(), 322), ("1".into(), 721)]
    );
    assert_eq!(
        dev.examples[0].text_a,
        "The sailors rode the breeze clear of the rocks."
    );

    let mrpc = BuiltinTask::Mrpc.task();
    let train = load(&mrpc, &root, "train");
    assert_eq!(
        class_counts(&mrpc, &train),
        vec![("0".into(), 1194), ("1".into(), 2474)]
    );
    let test = load(&mrpc, &root, "test");
    assert_eq!(test.examples[0].id, "0");

    let ax = BuiltinTask::Ax.task();
    let full = load(&ax, &root, "full");
    let total: usize = full.label_counts(3).iter().sum();
    assert_eq!(total, 1104);
    assert_eq!(
        full.examples[0].text_b.as_deref(),
        Some("The cat did not sit on the mat.")
    );
    assert_eq!(full.examples[0].label, Some(Label::Class(0)));

    let stsb = BuiltinTask::Stsb.task();
    let train = load(&stsb, &root, "train");
    assert_eq!(train.examples[0].label, Some(Label::Score(5.0)));
    assert_eq!(train.examples[1].label, Some(Label::Score(3.8)));
}

#[test]
fn gzipped_split_reads_the_same() {
    let Some(root) = data_dir("GLUE_DIR") else {
        return;
    };
    let rte = BuiltinTask::Rte.task();
    let plain = load(&rte, &root, "dev");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("RTE");
    std::fs::create_dir(&dir).unwrap();
    let bytes = std::fs::read(root.join("RTE/dev.tsv")).unwrap();
    let mut enc = flate2_writer(std::fs::File::create(dir.join("dev.tsv.gz")).unwrap());
    std::io::Write::write_all(&mut enc, &bytes).unwrap();
    enc.finish().unwrap();
    let gz = load(&rte, tmp.path(), "dev");
    assert_eq!(gz.examples, plain.examples);
    assert_eq!(gz.sha256, plain.sha256);
}

fn flate2_writer(f: std::fs::File) -> flate2::write::GzEncoder<std::fs::File> {
    flate2::write::GzEncoder::new(f, flate2::Compression::fast())
}

fn task_config(name: &str) -> Task {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs/tasks")
        .join(name);
    load_task_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn extra_datasets_load_through_their_task_files() {
    let Some(root) = data_dir("STILTS_EXTRA_DIR") else {
        return;
    };
    let nli = |counts: Vec<(String, usize)>| counts.iter().map(|(_, n)| *n).sum::<usize>();

    let mnli = task_config("mnli_subset.toml");
    for (split, rows) in [("train", 8999), ("dev", 1000), ("dev_matched", 9815)] {
        let ds = load(&mnli, &root, split);
        assert_eq!(ds.len(), rows, "MNLI-subset {split}");
        assert_eq!(nli(class_counts(&mnli, &ds)), rows);
    }
    let dm = load(&mnli, &root, "dev_matched");
    assert_eq!(
        class_counts(&mnli, &dm),
        vec![
            ("contradiction".into(), 3213),
            ("entailment".into(), 3479),
            ("neutral".into(), 3123)
        ]
    );

    let snli = task_config("snli_subset.toml");
    for (split, rows) in [("train", 8999), ("dev", 1000), ("dev_official", 9842)] {
        assert_eq!(load(&snli, &root, split).len(), rows, "SNLI-subset {split}");
    }

    let qqp = task_config("qqp_subset.toml");
    for (split, rows) in [("train", 8999), ("dev", 1000)] {
        let ds = load(&qqp, &root, split);
        assert_eq!(ds.len(), rows, "QQP-subset {split}");
        assert!(ds.label_counts(2).iter().all(|&n| n > 0));
    }

    let sick_e = task_config("sick_entailment.toml");
    let sick_r = task_config("sick_relatedness.toml");
    for (split, rows) in [("train", 4439), ("dev", 495), ("test", 4906)] {
        let e = load(&sick_e, &root, split);
        let r = load(&sick_r, &root, split);
        assert_eq!((e.len(), r.len()), (rows, rows), "SICK {split}");
        assert_eq!(nli(class_counts(&sick_e, &e)), rows);
        assert!(
            r.examples
                .iter()
                .all(|x| matches!(x.label, Some(Label::Score(s)) if (1.0..=5.0).contains(&s)))
        );
    }
    let train = load(&sick_e, &root, "train");
    assert_eq!(train.examples[0].id, "1");
    assert_eq!(train.examples[0].label, Some(Label::Class(2)));
}
