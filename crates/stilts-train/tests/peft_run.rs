//! Parameter-efficient phases on the tiny random BERT: LoRA and adapters train alone (the
//! encoder's weights stay, the heads train), carry from an intermediate phase to the target
//! phase, save and load with the model, and resume exactly.

mod common;

use std::path::Path;
use std::sync::Mutex;

use burn::module::Module;
use burn::tensor::Device;
use stilts_models::bert::{BertModel, BertOutput};
use stilts_models::{Encoder, SentenceEncoder};
use stilts_train::experiment::run_experiment;
use stilts_train::model::peft_file::{ADAPTER_WEIGHTS_FILE, attach_adapter};
use stilts_train::model::store::weights_sha256;
use stilts_train::model::{Carried, META_FILE, load_model, param_counts};
use stilts_train::observer::NoopObserver;

static SERIAL: Mutex<()> = Mutex::new(());

fn bert(carried: &Carried) -> &BertModel {
    match &carried.model.encoder {
        Encoder::Bert(m) => m,
        _ => panic!("the tiny world's encoder is a BERT"),
    }
}

/// Hashes of the encoder's own weights (no LoRA, no adapters), LayerNorms apart.
fn base_hashes(m: &BertModel) -> (Vec<String>, Vec<String>) {
    let mut weights = vec![weights_sha256(&m.embeddings), weights_sha256(&m.pooler)];
    let mut norms = Vec::new();
    for l in &m.encoder.layers {
        let a = &l.attention.self_attention;
        for linear in [
            &a.query,
            &a.key,
            &a.value,
            &l.attention.output.dense,
            &l.intermediate.dense,
            &l.output.dense,
        ] {
            weights.push(weights_sha256(linear));
        }
        norms.push(weights_sha256(&l.attention.output.layer_norm));
        norms.push(weights_sha256(&l.output.layer_norm));
    }
    (weights, norms)
}

/// The last layer's feed-forward output block.
fn out(c: &Carried) -> &BertOutput {
    &bert(c).encoder.layers[1].output
}

fn model(out: &Path, phase: &str) -> Carried {
    load_model(&out.join(phase).join("seed-7/model"), &Device::flex()).unwrap()
}

#[test]
fn lora_trains_only_its_updates_and_the_head_and_resumes_exactly() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 64, 16);
    let phases = "[[phases]]\nname = \"full\"\ntasks = [\"RTE\"]\nrecipe = { epochs = 1 }\n\
         [[phases]]\nname = \"lora\"\ntasks = [\"RTE\"]\n\
         recipe = { epochs = 2, lr = 1e-2, lora = { r = 4, alpha = 8, target_modules = [\"query\", \"value\", \"output\"] } }\n";
    let exp = common::resolve(&common::experiment_toml(&root, "out", phases)).unwrap();
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let out = tmp.path().join("out");
    let (full, lora) = (model(&out, "00-full"), model(&out, "01-lora"));
    assert_eq!(
        base_hashes(bert(&full)),
        base_hashes(bert(&lora)),
        "the encoder's weights and LayerNorms stay"
    );
    let layer = &bert(&lora).encoder.layers[1];
    let b = layer.attention.self_attention.lora_query.as_ref().unwrap();
    assert!(
        b.b.weight.val().abs().max().into_scalar::<f32>() > 0.0,
        "B trains from zero"
    );
    assert!(layer.output.lora_dense.is_some() && layer.attention.self_attention.lora_key.is_none());
    // What trains: per layer query and value (2 x (32x4 + 4x32)) and output (64x4 + 4x32),
    // and the head (32x2 + 2); everything else is frozen.
    let trained = lora
        .model
        .clone()
        .freeze(&[], &lora.meta.peft, &[])
        .unwrap()
        .fork(&Device::flex().autodiff())
        .train();
    let (trainable, total) = param_counts(&trained);
    assert_eq!(trainable, 2 * (2 * 256 + 384) + 66, "of {total}");
    let meta = std::fs::read_to_string(out.join("01-lora/seed-7/model").join(META_FILE)).unwrap();
    assert!(
        meta.contains("\"lora\"") && meta.contains("\"r\": 4"),
        "{meta}"
    );

    // The modules alone, attached to the base they trained on, predict as the whole model.
    let adapter = out.join("01-lora/seed-7/adapter");
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(
        size(&adapter.join(ADAPTER_WEIGHTS_FILE)) * 4
            < size(&out.join("01-lora/seed-7/model/model.bpk")),
        "the module file holds the updates and the head only"
    );
    let full_dir = out.join("00-full/seed-7/model");
    assert_eq!(
        common::logits(&full_dir, Some(&adapter)),
        common::logits(&out.join("01-lora/seed-7/model"), None)
    );
    // On another base, the modules are refused, naming both hashes.
    let mut other = load_model(&full_dir, &Device::flex()).unwrap();
    if let Encoder::Bert(m) = &mut other.model.encoder {
        m.pooler.dense.weight = m.pooler.dense.weight.clone().map(|w| w.add_scalar(1e-3));
    }
    let err = attach_adapter(other, &adapter, &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("trained on base weights with SHA-256"),
        "{err}"
    );

    // Killed mid-phase and run again: the same result as the uninterrupted run.
    let killed = common::resolve(&common::experiment_toml(&root, "killed", phases)).unwrap();
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = run_experiment(&killed, &mut common::KillAt { at: 20, seen: 0 });
    }));
    assert!(stopped.is_err());
    // The optimizer keeps state for what trains only: the updates and the head. (Adam's two
    // moments of the whole model would take twice the weights' bytes; here ~3,000 values.)
    let checkpoint = killed.output_dir.join("01-lora/seed-7/checkpoint");
    let optimizer = size(&checkpoint.join("optimizer.bpk"));
    let weights = size(&checkpoint.join("model.bpk"));
    assert!(
        optimizer * 4 < weights,
        "optimizer state {optimizer} bytes, weights {weights} bytes"
    );
    run_experiment(&killed, &mut NoopObserver).unwrap();
    let result = |out: &Path| common::comparable(common::result(out, "01-lora/seed-7"));
    assert_eq!(result(&killed.output_dir), result(&out));
}

#[test]
fn adapters_carry_from_the_intermediate_to_the_target_phase() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 64, 16);
    let nli3 = common::nli3(&root, 64, 16);
    let adapter = "adapter = { reduction_factor = 4 }";
    let text = common::experiment_toml(
        &root,
        "out",
        &format!(
            "[[phases]]\nname = \"inter\"\ntasks = [\"{}\"]\nrecipe = {{ epochs = 1, {adapter} }}\n\
             [[phases]]\nname = \"target\"\ntasks = [\"RTE\"]\nrecipe = {{ epochs = 1, {adapter} }}\n",
            nli3.display()
        ),
    );
    let exp = common::resolve(&text).unwrap();
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let out = tmp.path().join("out");
    let (inter, target) = (model(&out, "00-inter"), model(&out, "01-target"));
    let (inter_weights, inter_norms) = base_hashes(bert(&inter));
    let (target_weights, target_norms) = base_hashes(bert(&target));
    assert_eq!(inter_weights, target_weights, "the encoder stays frozen");
    assert_ne!(inter_norms, target_norms, "the LayerNorms train (Houlsby)");
    let adapter_of = |c: &Carried| {
        weights_sha256(
            bert(c).encoder.layers[0]
                .attention
                .output
                .adapter
                .as_ref()
                .unwrap(),
        )
    };
    assert_ne!(
        adapter_of(&inter),
        adapter_of(&target),
        "the adapter trains on"
    );
    assert_eq!(target.meta.peft, inter.meta.peft);

    // Another experiment starting from the intermediate's saved model (a grid's target run)
    // continues its adapters too: the same modules, with the intermediate's weights.
    use stilts_train::config::LoadMode;
    use stilts_train::config::source::ModelSource;
    let start = stilts_train::model::build::build_initial(
        &ModelSource::Checkpoint {
            dir: out.join("00-inter/seed-7/model"),
            load: LoadMode::Encoder,
        },
        0,
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(start.meta.peft, inter.meta.peft);
    let start = start.with_peft(&inter.meta.peft, &Device::flex()).unwrap();
    assert_eq!(
        adapter_of(&start),
        adapter_of(&inter),
        "the intermediate's adapters, not fresh ones"
    );

    // A phase asking for other adapters than the model carries is refused, naming both.
    let text = common::experiment_toml(
        &root,
        "other",
        &format!(
            "[[phases]]\nname = \"a\"\ntasks = [\"RTE\"]\nrecipe = {{ epochs = 1, {adapter} }}\n\
             [[phases]]\nname = \"b\"\ntasks = [\"RTE\"]\nrecipe = {{ epochs = 1, adapter = {{ preset = \"pfeiffer\" }} }}\n"
        ),
    );
    let err = run_experiment(&common::resolve(&text).unwrap(), &mut NoopObserver)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("phases[1].recipe.adapter") && err.contains("already carries adapters"),
        "{err}"
    );
}

#[test]
fn bad_lora_and_adapter_tables_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 8, 8);
    for (recipe, wanted) in [
        ("lora = { rank = 4 }", "unknown field `rank`"),
        (
            "lora = { target_modules = [\"qkv\"] }",
            "unknown variant `qkv`",
        ),
        ("adapter = { preset = \"lora\" }", "unknown variant `lora`"),
        ("lora = { r = 0 }", "phases[0].recipe.lora"),
        ("adapter = { placement = [] }", "phases[0].recipe.adapter"),
        (
            "modules_to_save = [\"pooler\"]",
            "names groups that train beside LoRA",
        ),
    ] {
        let text = common::experiment_toml(
            &root,
            "out",
            &format!("[[phases]]\ntasks = [\"RTE\"]\nrecipe = {{ {recipe} }}\n"),
        );
        let err = common::resolve(&text).unwrap_err().to_string();
        assert!(err.contains(wanted), "{recipe}: {err}");
    }
}

#[test]
fn a_fusion_mixes_adapters_trained_before_and_trains_alone() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 64, 16);
    let nli3 = common::nli3(&root, 64, 16);
    // The base every run starts from: the random encoder, saved by a run that trains only a
    // head (so that the base is a file, as a pretrained encoder is).
    let text = common::experiment_toml(
        &root,
        "plain",
        "[[phases]]\nname = \"p\"\ntasks = [\"RTE\"]\nrecipe = { epochs = 1, freeze = [\"all\"] }\n",
    );
    run_experiment(&common::resolve(&text).unwrap(), &mut NoopObserver).unwrap();
    let base_dir = root.join("plain/00-p/seed-7/model");
    let from_base = |out: &str, phases: &str| {
        let text = common::experiment_toml(&root, out, phases);
        let start = text.lines().find(|l| l.starts_with("random = ")).unwrap();
        let text = text.replace(start, &format!("checkpoint = \"{}\"", base_dir.display()));
        run_experiment(&common::resolve(&text).unwrap(), &mut NoopObserver)
    };
    let adapter = "adapter = { reduction_factor = 4, train_layer_norms = false }";
    for (out, task) in [
        ("rte-adapter", "RTE".to_owned()),
        ("nli-adapter", nli3.display().to_string()),
    ] {
        from_base(
            out,
            &format!(
                "[[phases]]\nname = \"a\"\ntasks = [\"{task}\"]\nrecipe = {{ epochs = 1, {adapter} }}\n"
            ),
        )
        .unwrap();
    }
    let module = |out: &str| root.join(out).join("00-a/seed-7/adapter");
    let fusion = |dirs: &[&str]| {
        let list: Vec<String> = dirs
            .iter()
            .map(|d| format!("\"{}\"", module(d).display()))
            .collect();
        format!("fusion = {{ adapters = [{}] }}", list.join(", "))
    };
    from_base(
        "fused",
        &format!(
            "[[phases]]\nname = \"f\"\ntasks = [\"RTE\"]\nrecipe = {{ epochs = 2, lr = 1e-2, {} }}\n",
            fusion(&["rte-adapter", "nli-adapter"])
        ),
    )
    .unwrap();
    let fused = model(&root.join("fused"), "00-f");
    let rte = model(&root.join("rte-adapter"), "00-a");
    let nli = model(&root.join("nli-adapter"), "00-a");
    assert_eq!(
        base_hashes(bert(&fused)),
        base_hashes(bert(&rte)),
        "the encoder and its LayerNorms stay"
    );
    for (i, source) in [&rte, &nli].into_iter().enumerate() {
        assert_eq!(
            weights_sha256(&out(&fused).fused[i]),
            weights_sha256(out(source).adapter.as_ref().unwrap()),
            "fused adapter {i} is its source, frozen"
        );
    }
    // The value projection starts at a fixed matrix (the identity, 1e-6 off the diagonal):
    // that it moved shows the fusion trained.
    let fusion_layer = out(&fused).fusion.as_ref().unwrap();
    let start = stilts_models::peft::FusionConfig::new(2).init(32, &Device::flex());
    assert_ne!(
        weights_sha256(fusion_layer.value.as_ref().unwrap()),
        weights_sha256(start.value.as_ref().unwrap()),
        "the fusion trains"
    );
    // Its modules alone, on the base, predict as the whole model.
    let fused_dir = root.join("fused/00-f/seed-7");
    assert_eq!(
        common::logits(&base_dir, Some(&fused_dir.join("adapter"))),
        common::logits(&fused_dir.join("model"), None)
    );

    // Adapters that trained the LayerNorms cannot be fused; the error names the fix.
    from_base(
        "ln",
        "[[phases]]\nname = \"a\"\ntasks = [\"RTE\"]\nrecipe = { epochs = 1, adapter = { reduction_factor = 4 } }\n",
    )
    .unwrap();
    let err = from_base(
        "bad",
        &format!(
            "[[phases]]\ntasks = [\"RTE\"]\nrecipe = {{ {} }}\n",
            fusion(&["rte-adapter", "ln"])
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("phases[0].recipe.fusion.adapters")
            && err.contains("train_layer_norms = false"),
        "{err}"
    );
}

#[test]
fn lora_learns_what_the_head_alone_cannot() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 160, 40);
    let mut best = Vec::new();
    for (name, recipe) in [
        (
            "lora",
            "lora = { r = 8, alpha = 16, target_modules = [\"query\", \"value\", \"intermediate\", \"output\"] }",
        ),
        ("head", "freeze = [\"all\"]"),
    ] {
        let text = common::experiment_toml(
            &root,
            name,
            &format!(
                "[[phases]]\ntasks = [\"RTE\"]\nrecipe = {{ epochs = 6, lr = 1e-2, {recipe} }}\n"
            ),
        );
        let summary = run_experiment(&common::resolve(&text).unwrap(), &mut NoopObserver).unwrap();
        best.push(summary.phases[0].best_dev_score);
    }
    // The answer is in the hypothesis word (yes/no): the frozen random encoder's [CLS] does not
    // carry it (the head alone stays at the majority class), the updates to its attention
    // learn to route it there.
    assert!(
        best[0] > 0.9 && best[1] < 0.6,
        "LoRA {}, head alone {}",
        best[0],
        best[1]
    );
}

#[test]
fn modules_to_save_train_beside_lora_and_travel_with_it() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = common::world(tmp.path(), 64, 16);
    let phases = "[[phases]]\nname = \"full\"\ntasks = [\"RTE\"]\nrecipe = { epochs = 1 }\n\
         [[phases]]\nname = \"lora\"\ntasks = [\"RTE\"]\n\
         recipe = { lr = 1e-2, lora = { r = 2 }, modules_to_save = [\"pooler\"] }\n";
    let exp = common::resolve(&common::experiment_toml(&root, "out", phases)).unwrap();
    run_experiment(&exp, &mut NoopObserver).unwrap();
    let out = root.join("out");
    let (full, lora) = (model(&out, "00-full"), model(&out, "01-lora"));
    let (mut before, _) = base_hashes(bert(&full));
    let (mut after, _) = base_hashes(bert(&lora));
    assert_ne!(before.remove(1), after.remove(1), "the pooler trains");
    assert_eq!(before, after, "the rest of the encoder stays");
    // The module directory holds the pooler, and attached to the base gives the model.
    assert_eq!(
        common::logits(
            &out.join("00-full/seed-7/model"),
            Some(&out.join("01-lora/seed-7/adapter"))
        ),
        common::logits(&out.join("01-lora/seed-7/model"), None)
    );
    // An unknown group is refused by key before training.
    let text = common::experiment_toml(
        &root,
        "bad",
        "[[phases]]\ntasks = [\"RTE\"]\nrecipe = { lora = {}, modules_to_save = [\"head\"] }\n",
    );
    let err = run_experiment(&common::resolve(&text).unwrap(), &mut NoopObserver)
        .unwrap_err()
        .to_string();
    assert!(err.contains("phases[0].recipe.modules_to_save"), "{err}");
}

/// A LoRA directory written by Hugging Face `peft` attaches to its base as stilts' own do: the
/// encoder then gives `peft`'s hidden states (scripts/make_peft_fixtures.py, tiny BERT).
/// A `peft` fixture directory (`peft/<case>`) attached to its base fixture (`base`) gives
/// `peft`'s hidden states.
fn peft_directory_attaches(base: &str, case: &str, lora: (usize, f64)) {
    use safetensors::SafeTensors;
    use stilts_models::EncoderInput;
    use stilts_train::config::source::ModelSource;
    use stilts_train::model::build::build_initial;

    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stilts-models/tests/fixtures");
    let device = Device::flex();
    let start = build_initial(
        &ModelSource::Pretrained {
            dir: fixtures.join(base),
        },
        0,
        &device,
    )
    .unwrap();
    let carried = attach_adapter(start, &fixtures.join("peft").join(case), &device).unwrap();
    let attached = carried.meta.peft.lora.as_ref().expect("LoRA attached");
    assert_eq!((attached.r, attached.alpha), lora);

    let read = |file: String| std::fs::read(fixtures.join(file)).unwrap();
    let (forward, expected) = (
        read(format!("{base}/forward.safetensors")),
        read(format!("peft/{case}/expected.safetensors")),
    );
    let (forward, expected) = (
        SafeTensors::deserialize(&forward).unwrap(),
        SafeTensors::deserialize(&expected).unwrap(),
    );
    let ints = |name: &str| {
        let t = forward.tensor(name).unwrap();
        let values: Vec<i64> = t
            .data()
            .chunks(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        burn::tensor::Tensor::<2, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(values, [t.shape()[0], t.shape()[1]]),
            &device,
        )
    };
    let attention_mask = ints("attention_mask");
    let token_type_ids = match forward.tensor("token_type_ids") {
        Ok(_) => ints("token_type_ids"),
        Err(_) => attention_mask.zeros_like(),
    };
    let out = carried.model.valid().encoder.encode(EncoderInput {
        input_ids: ints("input_ids"),
        token_type_ids,
        attention_mask,
        with_aux_loss: false,
    });
    let ours: Vec<f32> = out.tokens.into_data().try_to_vec::<f32>().unwrap();
    let want: Vec<f32> = expected
        .tensor("last_hidden_state")
        .unwrap()
        .data()
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(ours.len(), want.len());
    let worst = ours
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst < 1e-5,
        "{case}: hidden states differ from peft's by {worst}"
    );
}

#[test]
fn a_peft_directory_attaches_to_its_base() {
    peft_directory_attaches("tiny-bert", "lora-qv", (4, 8.0));
    peft_directory_attaches("tiny-gpt", "gpt-lora-all", (2, 6.0));
}
