use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use stilts_data::realfake::{
    ALGORITHM, DEV_FILE, Generated, REPORT_FILE, RealFakeConfig, RealFakeError, RealFakeExample,
    RealFakeLabel, RealFakeReport, TRAIN_FILE, generate, generate_examples, realfake_task,
};
use stilts_data::{Label, LoadOptions};

/// 300 usable sentences of 4..=23 tokens with some repeated words, plus lines that must be
/// excluded: 3 blank, 4 too short, 2 with too few distinct words.
fn corpus() -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..300 {
        let len = 4 + i % 20;
        let words: Vec<String> = (0..len)
            .map(|j| match (i + j) % 7 {
                0 => "the".to_owned(),
                1 => ",".to_owned(),
                _ => format!("w{}", (i * 31 + j * 17) % 97),
            })
            .collect();
        lines.push(format!("  {}\t", words.join("  ")));
        match i {
            10 | 20 | 30 => lines.push("   ".into()),
            40 => lines.push("one".into()),
            50 => lines.push("two words".into()),
            60 => lines.push("three more words".into()),
            70 => lines.push("x".into()),
            80 => lines.push("a a a a a a".into()),
            90 => lines.push("b b b c b".into()),
            _ => {}
        }
    }
    lines
}

fn gen_lines(lines: &[String], cfg: &RealFakeConfig) -> Generated {
    generate_examples(lines.iter().map(String::as_str), cfg).unwrap()
}

fn assert_balanced(split: &[RealFakeExample]) {
    let fake = split
        .iter()
        .filter(|e| e.label == RealFakeLabel::Fake)
        .count();
    assert_eq!(2 * fake, split.len());
}

fn assert_valid_example(ex: &RealFakeExample) {
    let src: Vec<&str> = ex.source.split(' ').collect();
    let out: Vec<&str> = ex.sentence.split(' ').collect();
    assert!(src.iter().all(|t| !t.is_empty()), "{:?}", ex.source);
    match ex.label {
        RealFakeLabel::Real => {
            assert_eq!(ex.sentence, ex.source);
            assert!(ex.swaps.is_empty());
        }
        RealFakeLabel::Fake => {
            assert_ne!(ex.sentence, ex.source);
            assert!((2..=4).contains(&ex.swaps.len()), "{:?}", ex.swaps);
            assert_eq!(src.len(), out.len());
            let mut a = src.clone();
            let mut b = out.clone();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "token multisets differ");
            let changed: HashSet<usize> = (0..src.len()).filter(|&i| src[i] != out[i]).collect();
            let swapped: HashSet<usize> = ex.swaps.iter().flat_map(|&(x, y)| [x, y]).collect();
            assert_eq!(swapped.len(), 2 * ex.swaps.len(), "pairs overlap");
            assert_eq!(changed, swapped);
            for &(x, y) in &ex.swaps {
                assert_eq!((out[x], out[y]), (src[y], src[x]));
            }
        }
    }
}

#[test]
fn splits_are_balanced_and_fakes_are_valid_swaps() {
    let cfg = RealFakeConfig::default();
    let g = gen_lines(&corpus(), &cfg);
    assert_eq!(g.counts.used, 300);
    assert_eq!(g.dev.len(), 30);
    assert_eq!(g.train.len(), 270);
    assert_balanced(&g.train);
    assert_balanced(&g.dev);
    let mut by_k = [0usize; 5];
    for ex in g.train.iter().chain(&g.dev) {
        assert_valid_example(ex);
        if ex.label == RealFakeLabel::Fake {
            by_k[ex.swaps.len()] += 1;
        }
    }
    assert!(by_k[2] > 0 && by_k[3] > 0 && by_k[4] > 0, "{by_k:?}");
    let sources: HashSet<&str> = g.train.iter().chain(&g.dev).map(|e| &*e.source).collect();
    assert_eq!(sources.len(), 300, "each source sentence is used once");
}

#[test]
fn excluded_lines_are_counted() {
    let g = gen_lines(&corpus(), &RealFakeConfig::default());
    let c = &g.counts;
    assert_eq!(c.blank_lines, 3);
    assert_eq!(c.sentences, 306);
    assert_eq!(c.too_short, 4);
    assert_eq!(c.too_few_distinct, 2);
    assert_eq!(c.too_long, 0);
    assert_eq!(c.usable, 300);
    assert_eq!(c.unswappable, 0);
    assert_eq!(c.examined, 300);

    let capped = RealFakeConfig {
        max_tokens: Some(10),
        min_tokens: 6,
        ..RealFakeConfig::default()
    };
    let g = gen_lines(&corpus(), &capped);
    assert_eq!(g.counts.too_long, 13 * 15);
    assert_eq!(g.counts.too_short, 4 + 2 * 15 + 1);
    assert_eq!(g.counts.too_few_distinct, 1);
    assert_eq!(g.counts.used, (300 - 13 * 15 - 2 * 15) & !1);
}

#[test]
fn generation_is_deterministic_and_seeded() {
    let lines = corpus();
    let cfg = RealFakeConfig {
        seed: 17,
        ..RealFakeConfig::default()
    };
    assert_eq!(gen_lines(&lines, &cfg), gen_lines(&lines, &cfg));
    let other = gen_lines(
        &lines,
        &RealFakeConfig {
            seed: 18,
            ..cfg.clone()
        },
    );
    assert_ne!(gen_lines(&lines, &cfg).train, other.train);
}

#[test]
fn num_examples_and_dev_fraction_shape_the_splits() {
    let lines = corpus();
    let cfg = RealFakeConfig {
        num_examples: Some(101),
        dev_fraction: 0.25,
        ..RealFakeConfig::default()
    };
    let g = gen_lines(&lines, &cfg);
    assert_eq!(g.counts.used, 100);
    assert_eq!(g.counts.examined, 100);
    assert_eq!((g.train.len(), g.dev.len()), (76, 24));
    assert_balanced(&g.train);
    assert_balanced(&g.dev);

    let no_dev = RealFakeConfig {
        dev_fraction: 0.0,
        ..RealFakeConfig::default()
    };
    let g = gen_lines(&lines, &no_dev);
    assert!(g.dev.is_empty());
    assert_eq!(g.train.len(), 300);
}

#[test]
fn odd_pool_drops_one_sentence_to_stay_balanced() {
    let lines: Vec<String> = (0..7).map(|i| format!("s{i} a b c d")).collect();
    let g = gen_lines(
        &lines,
        &RealFakeConfig {
            dev_fraction: 0.0,
            ..RealFakeConfig::default()
        },
    );
    assert_eq!(g.train.len(), 6);
    assert_balanced(&g.train);
}

fn write_corpus_dir(dir: &Path, lines: &[String]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let (first, second) = lines.split_at(lines.len() / 2);
    let b = dir.join("b.txt");
    let a = dir.join("a.txt");
    std::fs::write(&b, second.join("\r\n") + "\r\n").unwrap();
    std::fs::write(&a, first.join("\n")).unwrap();
    std::fs::write(dir.join("notes.md"), "ignored because not .txt\n").unwrap();
    vec![a, b]
}

#[test]
fn generated_files_load_back_through_the_task() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = corpus();
    let corpus_dir = tmp.path().join("corpus");
    let files = write_corpus_dir(&corpus_dir, &lines);
    let out = tmp.path().join("RealFake");
    let cfg = RealFakeConfig {
        seed: 3,
        ..RealFakeConfig::default()
    };
    let calls = std::cell::RefCell::new(Vec::new());
    let progress = |done: u64, total: u64| calls.borrow_mut().push((done, total));
    let report = generate(&corpus_dir, &out, &cfg, Some(&progress)).unwrap();
    let calls = calls.into_inner();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].0, calls[1].1);

    let expected = gen_lines(&lines, &cfg);
    let task = realfake_task();
    assert_eq!(task.labels(), ["fake", "real"]);
    for (split, want) in [("train", &expected.train), ("dev", &expected.dev)] {
        let data = task.load(&out, split, LoadOptions::default()).unwrap();
        assert_eq!(data.len(), want.len());
        for (i, (got, want)) in data.examples.iter().zip(want.iter()).enumerate() {
            assert_eq!(got.id, i.to_string());
            assert_eq!(got.text_a, want.sentence);
            assert_eq!(got.label, Some(Label::Class(want.label.index())));
        }
        assert_eq!(data.label_counts(2), [want.len() / 2, want.len() / 2]);
    }

    assert_eq!(report.algorithm, ALGORITHM);
    assert_eq!(report.counts, expected.counts);
    assert_eq!(report.config, cfg);
    assert_eq!(report.train.file, TRAIN_FILE);
    assert_eq!(report.dev.file, DEV_FILE);
    assert_eq!(
        (report.train.real, report.train.fake),
        (expected.train.len() / 2, expected.train.len() / 2)
    );
    assert_eq!(
        report.train.fakes_by_swaps.values().sum::<usize>(),
        report.train.fake
    );
    let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let got: Vec<String> = report.sources.iter().map(|s| s.path.clone()).collect();
    assert_eq!(got, paths);
    assert!(report.sources.iter().all(|s| s.sha256.len() == 64));
    let on_disk: RealFakeReport =
        serde_json::from_slice(&std::fs::read(out.join(REPORT_FILE)).unwrap()).unwrap();
    assert_eq!(on_disk, report);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [DEV_FILE, REPORT_FILE, TRAIN_FILE].map(String::from));

    let single = tmp.path().join("single");
    let report2 = generate(&files[0], &single, &cfg, None).unwrap();
    assert_eq!(report2.sources.len(), 1);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cfg = RealFakeConfig::default();

    let err = generate(&tmp.path().join("nope"), &out, &cfg, None).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        generate(&empty, &out, &cfg, None),
        Err(RealFakeError::NoCorpusFiles { .. })
    ));

    let short = tmp.path().join("short.txt");
    std::fs::write(&short, "a b\nc d e\n\n").unwrap();
    let err = generate(&short, &out, &cfg, None).unwrap_err();
    assert!(matches!(err, RealFakeError::NoSentences { .. }), "{err}");
    assert!(err.to_string().contains("2 too short"), "{err}");

    let bad = tmp.path().join("bad.txt");
    std::fs::write(&bad, b"fine line here ok\nbad \xff byte here\n").unwrap();
    let err = generate(&bad, &out, &cfg, None).unwrap_err();
    assert!(
        matches!(err, RealFakeError::InvalidUtf8 { line: 2, .. }),
        "{err}"
    );

    let bad_cfg = RealFakeConfig {
        min_tokens: 2,
        ..cfg
    };
    assert!(matches!(
        generate(&short, &out, &bad_cfg, None),
        Err(RealFakeError::Config(_))
    ));
    assert!(!out.exists());
}

#[test]
fn real_corpus() {
    let Some(extra) = std::env::var_os("STILTS_EXTRA_DIR") else {
        println!("skipped: set STILTS_EXTRA_DIR");
        return;
    };
    let corpus = Path::new(&extra).join("books_gutenberg/sentence_per_line_tokenized");
    assert!(
        corpus.is_dir(),
        "STILTS_EXTRA_DIR is set but {} is missing",
        corpus.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("RealFake");
    let cfg = RealFakeConfig {
        seed: 1,
        ..RealFakeConfig::default()
    };
    let start = Instant::now();
    let report = generate(&corpus, &out, &cfg, None).unwrap();
    let elapsed = start.elapsed();
    let c = &report.counts;
    println!(
        "real corpus: {} files, {c}, {} usable, {} used (train {}, dev {}), fakes by swaps {:?}, {:.2?}",
        report.sources.len(),
        c.usable,
        c.used,
        report.train.examples,
        report.dev.examples,
        report.train.fakes_by_swaps,
        elapsed
    );
    assert!(c.sentences > 50_000, "{c}");
    assert!(c.too_short > 0, "{c}");
    assert_eq!(c.used % 2, 0);
    assert_eq!(
        c.sentences,
        c.too_short + c.too_long + c.too_few_distinct + c.usable
    );
    assert_eq!(report.train.real, report.train.fake);
    assert_eq!(report.dev.real, report.dev.fake);
    assert_eq!(report.train.examples + report.dev.examples, c.used);

    let task = realfake_task();
    let train = task.load(&out, "train", LoadOptions::default()).unwrap();
    let dev = task.load(&out, "dev", LoadOptions::default()).unwrap();
    assert_eq!(train.len(), report.train.examples);
    assert_eq!(dev.len(), report.dev.examples);
    assert_eq!(train.label_counts(2), [train.len() / 2, train.len() / 2]);

    let again = tmp.path().join("again");
    generate(&corpus, &again, &cfg, None).unwrap();
    for file in [TRAIN_FILE, DEV_FILE, REPORT_FILE] {
        let a = std::fs::read(out.join(file)).unwrap();
        let b = std::fs::read(again.join(file)).unwrap();
        assert!(a == b, "{file} differs between two runs with the same seed");
    }
}
