//! Bad experiment files are rejected before any training, naming the file and the key.

mod common;

#[test]
fn errors_name_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 8, 4);
    let nli = common::nli3(tmp.path(), 8, 4);
    let nli = nli.display();
    let ok = "[[phases]]\ntasks = [\"RTE\"]\n";
    // Sanity: the base resolves.
    let exp = common::resolve(&common::experiment_toml(&root, "o", ok)).unwrap();
    assert_eq!(exp.phases[0].recipe.batch_size, 8);
    assert_eq!(exp.phases[0].recipe.weight_decay, 0.01);
    assert_eq!(exp.phases[0].recipe.max_grad_norm, Some(1.0));
    assert_eq!(exp.phases[0].seeds, vec![7]);

    let cases: Vec<(String, &str)> = vec![
        ("[[phases]]\ntasks = [\"RTE\"]\nepoch = 3\n".into(), "unknown field `epoch`"),
        ("[[phases]]\ntasks = [\"RTE\"]\nrecipe = { lrr = 1.0 }\n".into(), "unknown field `lrr`"),
        ("[[phases]]\ntasks = [\"RTE\"]\nsampler = \"uniform\"\n".into(), "phases[0].sampler"),
        (format!("[[phases]]\ntasks = [\"RTE\", \"{nli}\"]\nsampler = \"temperature\"\n"), "phases[0].temperature"),
        (format!("[[phases]]\ntasks = [\"RTE\", \"{nli}\"]\nsampler = \"softmax\"\n"), "unknown variant `softmax`"),
        ("[[phases]]\ntasks = [\"RTE\"]\nhead = \"reuse\"\n".into(), "phases[0].head"),
        ("[[phases]]\ntasks = [\"RTE\"]\n[[phases]]\ntasks = [\"RTE\"]\nlabel_map = { entailment = \"x\" }\n".into(), "phases[1].label_map"),
        ("[[phases]]\ntasks = [\"RTE\"]\n[[phases]]\nname = \"t\"\ntasks = [\"RTE\"]\nhead = \"map\"\nlabel_map = { entailment = \"x\" }\n".into(), "label `not_entailment` of RTE is not mapped"),
        ("[[phases]]\ntasks = [\"RTE\"]\nseeds = [1]\nrestarts = 2\n".into(), "phases[0].seeds"),
        ("[[phases]]\ntasks = [\"RTE\"]\nrestarts = 0\n".into(), "phases[0].restarts"),
        ("[[phases]]\ntasks = [\"RTE\"]\nrecipe = { keep = \"best\" }\n".into(), "unknown variant `best`, expected `last` or `best_epoch`"),
        (format!("[[phases]]\ntasks = [\"RTE\", \"{nli}\"]\nselect_on = \"CoLA\"\n"), "phases[0].select_on`: `CoLA` is not a task of this phase (tasks: RTE, NLI3)"),
        ("[[phases]]\ntasks = [\"RTE\"]\n[[phases]]\ntasks = [\"RTE\"]\n".into(), "phase name `RTE` is used twice"),
        ("[[phases]]\ntasks = [\"QQQ\"]\n".into(), "unknown task `QQQ`"),
        // A task's own `data_root` is the one place it is looked for (a task missing from the
        // GLUE root is looked for, then downloaded, in the stilts cache: tests/first_hour.rs).
        (format!("[[phases]]\ntasks = [{{ task = \"MRPC\", data_root = \"{}\" }}]\n", root.join("glue").display()), "split `train` not found"),
        ("[[phases]]\ntasks = [\"nope.toml\"]\n".into(), "task file nope.toml does not exist"),
        ("[[phases]]\ntasks = [{ task = \"RTE\", dev_split = \"dev_x\" }]\n".into(), "dev_split"),
        ("[[phases]]\ntasks = [\"RTE\"]\nrecipe = { lr = -1.0 }\n".into(), "phases[0].recipe.lr"),
        ("[[phases]]\ntasks = [\"RTE\"]\nrecipe = { warmup_proportion = 1.5 }\n".into(), "recipe.warmup_proportion"),
        ("[[phases]]\ntasks = [\"RTE\"]\nrecipe = { grad_accum_steps = 0 }\n".into(), "recipe.grad_accum_steps"),
        ("".into(), "`phases`: no phases"),
    ];
    for (phases, want) in cases {
        let text = common::experiment_toml(&root, "o", &phases);
        let err = common::resolve(&text).expect_err(want).to_string();
        assert!(err.contains(want), "{err:?} should contain {want:?}");
        assert!(err.starts_with("test.toml"), "{err:?} should name the file");
    }

    // Names that become paths stay inside their directory.
    for bad in ["../up", "/abs", "a/b", ".."] {
        let text = common::experiment_toml(&root, "o", ok)
            .replace("name = \"tiny\"", &format!("name = \"{bad}\""));
        let err = common::resolve(&text).expect_err(bad).to_string();
        assert!(
            err.contains("`name`") && err.contains("cannot name a file or directory"),
            "{err}"
        );
        let phase = format!("[[phases]]\nname = \"{bad}\"\ntasks = [\"RTE\"]\n");
        let err = common::resolve(&common::experiment_toml(&root, "o", &phase))
            .expect_err(bad)
            .to_string();
        assert!(err.contains("phases[0].name"), "{err}");
    }
    let evil = tmp.path().join("evil.toml");
    let task = std::fs::read_to_string(common::nli3(tmp.path(), 8, 4)).unwrap();
    for (key, value) in [("name", "../../etc"), ("dir", "/etc")] {
        let text = task
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{key} =")) {
                    format!("{key} = \"{value}\"")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let text = if text.contains(&format!("{key} =")) {
            text
        } else {
            format!("{key} = \"{value}\"\n{text}")
        };
        std::fs::write(&evil, text).unwrap();
        let phase = format!("[[phases]]\ntasks = [\"{}\"]\n", evil.display());
        let err = format!(
            "{:#}",
            anyhow_chain(
                common::resolve(&common::experiment_toml(&root, "o", &phase)).expect_err(key)
            )
        );
        assert!(
            err.contains(&format!("`{key}`")) && err.contains(value),
            "{err}"
        );
    }

    // Model section errors.
    let base = common::experiment_toml(&root, "o", ok);
    let bad = [
        (
            base.replace("tokenizer = ", "pretrained = \"/nowhere\"\ntokenizer = "),
            "exactly one of",
        ),
        (
            base.replace(
                &format!("{}", root.join("vocab.txt").display()),
                "/nowhere/vocab.txt",
            ),
            "tokenizer /nowhere/vocab.txt does not exist",
        ),
        (
            base.replace("seed = 7", "seed = 7\ndevice = \"tpu\""),
            "unknown device \"tpu\": expected cpu, wgpu",
        ),
        (
            base.replace("tokenizer = ", "load = \"encoder\"\ntokenizer = "),
            "model.load",
        ),
        (
            base.replace("num_attention_heads = 2", "num_attention_heads = 3"),
            "model.random",
        ),
        (
            base.replace(
                "output_dir = ",
                "output_dir = \"${STILTS_SURELY_UNSET_VAR}\"\n#",
            ),
            "STILTS_SURELY_UNSET_VAR is not set",
        ),
    ];
    for (text, want) in bad {
        let err = common::resolve(&text).expect_err(want).to_string();
        assert!(err.contains(want), "{err:?} should contain {want:?}");
    }

    // A backend this binary was built without is refused before training, naming the feature.
    let wgpu = base.replace("seed = 7", "seed = 7\ndevice = \"wgpu:0\"");
    if stilts_train::models::device::DeviceChoice::WgpuGpu(0).is_compiled() {
        let exp = common::resolve(&wgpu).unwrap();
        assert_eq!(serde_json::to_value(&exp).unwrap()["device"], "wgpu:0");
    } else {
        let err = common::resolve(&wgpu).unwrap_err().to_string();
        let want =
            "device`: device `wgpu:0` needs stilts built with `--features stilts-models/wgpu`";
        assert!(err.contains(want), "{err}");
    }
}

/// Every shipped experiment parses (keys and types); paths are checked when it is run.
#[test]
fn shipped_experiments_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/experiments");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let file: Result<stilts_train::config::ExperimentFile, _> = toml::from_str(&text);
            assert!(file.is_ok(), "{}: {:?}", path.display(), file.err());
            n += 1;
        }
    }
    assert!(n >= 3);
}

/// A task with two test splits (as MNLI's matched/mismatched) keeps both, in task order, and
/// only those present on disk.
#[test]
fn every_present_test_split_is_predicted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 8, 4);
    let nli = common::nli3(tmp.path(), 8, 4);
    let dir = tmp.path().join("extra/nli3");
    let test_line = "{\"p\": \"the cat\", \"h\": \"a dog\"}\n";
    std::fs::write(dir.join("test_m.jsonl"), test_line).unwrap();
    std::fs::write(dir.join("test_mm.jsonl"), test_line).unwrap();
    let mut task = std::fs::read_to_string(&nli).unwrap();
    for name in ["test_m", "test_mm", "test_x"] {
        task.push_str(&format!(
            "[[splits]]\nname = \"{name}\"\nfile = \"{name}.jsonl\"\nunlabelled = true\n"
        ));
    }
    std::fs::write(&nli, task).unwrap();
    let phases = format!("[[phases]]\ntasks = [\"{}\"]\n", nli.display());
    let exp = common::resolve(&common::experiment_toml(&root, "o", &phases)).unwrap();
    assert_eq!(exp.phases[0].tasks[0].test_splits, ["test_m", "test_mm"]);
}

/// The error and its causes, one line.
fn anyhow_chain(e: stilts_train::TrainError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
