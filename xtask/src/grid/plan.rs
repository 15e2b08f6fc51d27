//! Expanding a grid into runs. Each run is one `stilts run` experiment with one phase and one
//! seed; a target that continues from an intermediate depends on the intermediate's run, which
//! is trained once per encoder and shared by every target, regime and restart that needs it.
//!
//! A run's id is a hash of its resolved configuration (the experiment table without its name,
//! output directory and device, with the runs it reads from, its starting checkpoint and any
//! fused adapters, named by their run ids instead of their paths), so the same configuration
//! in any grid or directory has the same id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stilts_schema::experiment::{
    ExperimentFile, HeadKind, LoadMode, ModelFile, PhaseFile, RecipeFile, SamplerKind,
    TaskEntryFile, TaskTableFile,
};
use stilts_schema::peft::FusionFile;

use super::spec::{EncoderFile, FULL_METHOD, FuseFile, IntermediateFile, LoadedGrid, Regime};
use super::{GridError, write_atomic, write_json};

/// What a run is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// An intermediate task (or a multitask set), trained once and continued from.
    Intermediate,
    /// A target task, from the encoder or from an intermediate run.
    Target,
    /// `{A,B}`: A and B at once, scored on B.
    Multitask,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Intermediate => "intermediate",
            RunKind::Target => "target",
            RunKind::Multitask => "multitask",
        }
    }
    pub fn parse(s: &str) -> Option<RunKind> {
        match s {
            "intermediate" => Some(RunKind::Intermediate),
            "target" => Some(RunKind::Target),
            "multitask" => Some(RunKind::Multitask),
            _ => None,
        }
    }
}

/// A run's place in the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub grid: String,
    pub kind: RunKind,
    /// `full` (fine-tuning the whole encoder) or one of the grid's `methods`.
    #[serde(default = "full_method")]
    pub method: String,
    pub encoder: String,
    /// `none`, an intermediate's name, `{A,B}` or `{A,B}->B`.
    pub condition: String,
    /// The scored task; `None` for intermediate runs.
    pub target: Option<String>,
    pub regime: Regime,
    pub restart: usize,
    pub seed: u64,
    /// The scale the grid was loaded with.
    pub scale: Option<String>,
    /// The experiment's single phase name (its directory is `00-<phase>`).
    pub phase: String,
}

fn full_method() -> String {
    FULL_METHOD.to_string()
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunNode {
    pub id: String,
    pub meta: RunMeta,
    /// The runs this one reads from: the one it continues from, or the runs whose adapters
    /// it fuses.
    pub depends_on: Vec<String>,
    /// The `stilts run` experiment as planned: the paths into dependencies (`@run:<id>/...`)
    /// and generated data are placeholders and task files are as the grid names them, until
    /// [`Plan::worker_experiment`] fills them in.
    pub experiment: ExperimentFile,
}

impl RunNode {
    /// `00-<phase>`.
    pub fn phase_dir(&self) -> String {
        format!("00-{}", self.meta.phase)
    }

    /// The run whose model this one starts from, if it continues from one.
    pub fn model_dependency(&self) -> Option<&str> {
        let checkpoint = self.experiment.model.checkpoint.as_deref()?;
        placeholder_run(checkpoint)
    }

    /// `depends_on` as `run.json` and the registry have written it: `null`, one id, or a list.
    pub fn depends_on_json(&self) -> serde_json::Value {
        match self.depends_on.as_slice() {
            [] => serde_json::Value::Null,
            [one] => one.clone().into(),
            many => many.into(),
        }
    }
}

/// A grid's runs, dependencies first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub grid: String,
    pub output_dir: PathBuf,
    pub nodes: Vec<RunNode>,
}

/// A path into another run's directory, `@run:<id>/<path>`, inside the dependent's `[model]
/// checkpoint` or `fusion.adapters` until written.
const RUN_PLACEHOLDER: &str = "@run:";
/// The grid's output directory, inside a task's `data_root` until written.
const GRID_PLACEHOLDER: &str = "@grid";

/// Replaces a leading `placeholder` of `value` with `dir`.
fn fill_placeholder(value: &mut String, placeholder: &str, dir: &Path) {
    if let Some(rest) = value.strip_prefix(placeholder) {
        *value = format!("{}{rest}", dir.display());
    }
}

/// `@run:<id>/<path>`.
fn run_path(id: &str, path: &str) -> String {
    format!("{RUN_PLACEHOLDER}{id}/{path}")
}

/// The run id of a `@run:<id>/...` value.
fn placeholder_run(value: &str) -> Option<&str> {
    let rest = value.strip_prefix(RUN_PLACEHOLDER)?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// Every value of `exp` that may name a path into another run: the starting checkpoint and
/// the fused adapters.
fn run_paths(exp: &mut ExperimentFile) -> impl Iterator<Item = &mut String> {
    let fused = exp
        .phases
        .iter_mut()
        .filter_map(|p| p.recipe.fusion.as_mut())
        .flat_map(|f| f.adapters.iter_mut());
    exp.model.checkpoint.as_mut().into_iter().chain(fused)
}

/// A relative task file (`configs/tasks/x.toml`) as an absolute path under `cwd`; built-in
/// task names and absolute paths are left alone.
fn absolute_task_file(task: &mut String, cwd: &Path) {
    if task.ends_with(".toml") && Path::new(task.as_str()).is_relative() {
        *task = cwd.join(task.as_str()).display().to_string();
    }
}

impl Plan {
    /// Expands a loaded grid; `output_dir` overrides the grid's.
    pub fn expand(grid: &LoadedGrid, output_dir: Option<&Path>) -> Result<Plan, GridError> {
        let f = &grid.file;
        let out = output_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| grid.output_dir());
        let out = absolute(&out);
        let mut nodes = Vec::new();
        // Full fine-tuning, then each method over its own view of the grid.
        for method in grid.method_names() {
            let Some(view) = grid.for_method(&method) else {
                continue;
            };
            for enc in &view.file.encoders {
                let e = Expander {
                    grid: &view,
                    method: &method,
                    enc,
                    regimes: view.regimes(),
                };
                if let Some(fuse) = view.fusion() {
                    e.fusion_targets(grid, fuse, &mut nodes);
                    continue;
                }
                // Intermediates (trained once per encoder), then {A,B}, then the targets that
                // continue from them.
                let intermediates = e.intermediates(&mut nodes);
                let multitask = e.multitask(&mut nodes);
                e.targets(&intermediates, &multitask, &mut nodes);
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        nodes.retain(|n| seen.insert(n.id.clone()));
        Ok(Plan {
            grid: f.name.clone(),
            output_dir: out,
            nodes,
        })
    }

    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.output_dir.join("runs").join(id)
    }

    pub fn node(&self, id: &str) -> Option<&RunNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Whether a run's result file exists (`stilts run` writes it atomically when done).
    pub fn is_finished(&self, id: &str) -> bool {
        self.run_dir(id).join("summary.json").exists()
    }

    /// The dependencies of `node` not finished yet.
    pub fn waiting_on<'n>(&self, node: &'n RunNode) -> Vec<&'n str> {
        node.depends_on
            .iter()
            .map(String::as_str)
            .filter(|d| !self.is_finished(d))
            .collect()
    }

    /// The experiment of `node` as the worker reads it: the dependency's model path, the grid
    /// directory and task files filled in as absolute paths (the identity uses them as
    /// written, so moving a grid or a checkout keeps run ids), and named after the grid and run.
    pub fn worker_experiment(&self, node: &RunNode) -> ExperimentFile {
        let mut exp = node.experiment.clone();
        for value in run_paths(&mut exp) {
            if let Some(id) = placeholder_run(value).map(str::to_string) {
                fill_placeholder(value, &format!("{RUN_PLACEHOLDER}{id}"), &self.run_dir(&id));
            }
        }
        let cwd = std::env::current_dir().unwrap_or_default();
        for task in exp.phases.iter_mut().flat_map(|p| p.tasks.iter_mut()) {
            match task {
                TaskEntryFile::Name(name) => absolute_task_file(name, &cwd),
                TaskEntryFile::Table(t) => {
                    absolute_task_file(&mut t.task, &cwd);
                    if let Some(root) = t.data_root.as_mut() {
                        fill_placeholder(root, GRID_PLACEHOLDER, &self.output_dir);
                    }
                }
            }
        }
        exp.name = Some(format!("{}-{}", self.grid, node.id));
        exp
    }

    /// [`Plan::worker_experiment`] as the text of the run's `experiment.toml`.
    pub fn experiment_toml(&self, node: &RunNode) -> String {
        let exp = self.worker_experiment(node);
        let mut text = format!(
            "# Generated by `cargo xtask reproduce {}`: run {} ({} / {} / {} / {} / restart {}).\n",
            self.grid,
            node.id,
            node.meta.encoder,
            node.meta.condition,
            node.meta.target.as_deref().unwrap_or("-"),
            node.meta.regime.label(),
            node.meta.restart,
        );
        // Written from the table (keys sorted), as grids planned before the typed experiment
        // were, so their files are left as they are.
        text.push_str(&toml::to_string(&exp.to_table()).unwrap_or_default());
        text
    }

    /// Writes `grid.json` and every run's `experiment.toml` and `run.json` (unchanged files are
    /// left alone, so a running worker never sees its file replaced by a different one).
    pub fn write(&self, grid: &LoadedGrid) -> Result<(), GridError> {
        std::fs::create_dir_all(&self.output_dir)
            .map_err(|e| GridError::io(&self.output_dir, e))?;
        write_json(
            &self.output_dir.join("grid.json"),
            &serde_json::json!({ "grid": grid, "runs": self.nodes.len() }),
        )?;
        for node in &self.nodes {
            let dir = self.run_dir(&node.id);
            let toml_path = dir.join("experiment.toml");
            let text = self.experiment_toml(node);
            if std::fs::read_to_string(&toml_path).ok().as_deref() != Some(text.as_str()) {
                write_atomic(&toml_path, text.as_bytes())?;
            }
            let meta_path = dir.join("run.json");
            let meta = serde_json::to_string_pretty(&serde_json::json!({
                "id": node.id,
                "meta": node.meta,
                "depends_on": node.depends_on_json(),
            }))
            .map_err(|e| GridError::json(&meta_path, e))?;
            if std::fs::read_to_string(&meta_path).ok().as_deref() != Some(meta.as_str()) {
                write_atomic(&meta_path, meta.as_bytes())?;
            }
        }
        Ok(())
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// `Real/Fake` -> `real-fake`, `STS-B` -> `sts-b`.
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_string()
}

/// Whether intermediate `m` is the task `target` itself (the paper substitutes the baseline).
pub fn is_same_task(m: &IntermediateFile, target: &str) -> bool {
    m.same_as.as_deref() == Some(target) || m.task.eq_ignore_ascii_case(target)
}

/// Where generated task data (Real/Fake) goes.
pub fn generated_data_root(output_dir: &Path) -> PathBuf {
    output_dir.join("data")
}

const GENERATED_DATA: &str = "@grid/data";

fn intermediate_task(m: &IntermediateFile) -> TaskEntryFile {
    let generated = m.realfake.as_ref().map(|_| GENERATED_DATA.to_string());
    TaskEntryFile::Table(TaskTableFile {
        task: m.task.clone(),
        data_root: m.data_root.clone().or(generated),
        train_examples: m.train_examples,
        dev_split: None,
        pair: None,
    })
}

fn target_task(target: &str, regime: Regime) -> TaskEntryFile {
    TaskEntryFile::Table(TaskTableFile {
        task: target.to_string(),
        data_root: None,
        train_examples: regime.train_examples(),
        dev_split: None,
        pair: None,
    })
}

/// The one phase of a run: a new head, one seed.
fn phase(
    name: &str,
    tasks: Vec<TaskEntryFile>,
    sampler: Option<SamplerKind>,
    seed: u64,
    recipe: &RecipeFile,
    predict_test: bool,
) -> PhaseFile {
    PhaseFile {
        name: Some(name.to_string()),
        tasks,
        sampler,
        head: Some(HeadKind::New),
        seeds: Some(vec![seed]),
        predict_test: Some(predict_test),
        recipe: recipe.clone(),
        ..PhaseFile::default()
    }
}

/// A one-phase experiment. `from`: (dependency id, its phase dir, its seed).
fn experiment(
    grid: &LoadedGrid,
    enc: &EncoderFile,
    from: Option<(&str, &str, u64)>,
    seed: u64,
    phase: PhaseFile,
) -> ExperimentFile {
    let f = &grid.file;
    let mut model = match from {
        Some((id, phase_dir, dep_seed)) => ModelFile {
            checkpoint: Some(run_path(id, &format!("{phase_dir}/seed-{dep_seed}/model"))),
            load: Some(LoadMode::Encoder),
            ..ModelFile::default()
        },
        None => ModelFile {
            pretrained: enc.pretrained.clone(),
            random: enc.random.clone(),
            ..ModelFile::default()
        },
    };
    model.encoder = enc.encoder.clone();
    model.tokenizer = enc.tokenizer.clone();
    ExperimentFile {
        seed: Some(seed),
        model,
        data: f.data.clone(),
        recipe: f.recipe.overridden_by(&enc.recipe),
        phases: vec![phase],
        ..ExperimentFile::default()
    }
}

/// A run's id: the SHA-256 of its experiment as a table (unset keys left out), with the paths
/// into other runs as `run:<id>/<path>`. serde_json writes the table's keys in their (sorted)
/// order, so equal experiments hash equally.
fn run_id(experiment: &ExperimentFile) -> String {
    let mut identity = experiment.clone();
    for value in run_paths(&mut identity) {
        if let Some(rest) = value.strip_prefix('@') {
            *value = rest.to_string();
        }
    }
    let canonical = serde_json::to_vec(&identity.to_table()).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(b"stilts-grid-run-v1\0");
    h.update(&canonical);
    let hex = format!("{:x}", h.finalize());
    hex[..16].to_string()
}

/// A run; its dependencies are the runs its experiment names paths into.
fn node(meta: RunMeta, mut experiment: ExperimentFile) -> RunNode {
    let id = run_id(&experiment);
    let mut depends_on: Vec<String> = Vec::new();
    for value in run_paths(&mut experiment) {
        if let Some(id) = placeholder_run(value)
            && !depends_on.iter().any(|d| d == id)
        {
            depends_on.push(id.to_string());
        }
    }
    RunNode {
        id,
        meta,
        depends_on,
        experiment,
    }
}

/// A run that others continue from: its id and phase directory.
type Source = (String, String);

/// Expands one encoder's runs.
struct Expander<'a> {
    /// The grid as the method sees it ([`LoadedGrid::for_method`]).
    grid: &'a LoadedGrid,
    method: &'a str,
    enc: &'a EncoderFile,
    regimes: Vec<Regime>,
}

impl Expander<'_> {
    fn meta(
        &self,
        kind: RunKind,
        condition: &str,
        target: Option<&str>,
        (regime, restart): (Regime, usize),
        phase: &str,
    ) -> RunMeta {
        RunMeta {
            grid: self.grid.file.name.clone(),
            kind,
            method: self.method.to_string(),
            encoder: self.enc.name.clone(),
            condition: condition.to_string(),
            target: target.map(str::to_string),
            regime,
            restart,
            seed: self.grid.restart_seed(restart),
            scale: self.grid.scale.clone(),
            phase: phase.to_string(),
        }
    }

    /// One run per intermediate; returns each one's id and phase directory by name.
    fn intermediates(&self, nodes: &mut Vec<RunNode>) -> BTreeMap<&str, Source> {
        let (grid, f) = (self.grid, &self.grid.file);
        let mut ids = BTreeMap::new();
        for m in &f.intermediates {
            let name = slug(&m.name);
            let seed = grid.restart_seed(0);
            let p = phase(
                &name,
                vec![intermediate_task(m)],
                None,
                seed,
                &f.intermediate_recipe,
                false,
            );
            let exp = experiment(grid, self.enc, None, seed, p);
            let meta = self.meta(
                RunKind::Intermediate,
                &m.name,
                None,
                (Regime::Full, 0),
                &name,
            );
            let n = node(meta, exp);
            ids.insert(m.name.as_str(), (n.id.clone(), n.phase_dir()));
            nodes.push(n);
        }
        ids
    }

    /// `{A,B}` per regime and restart; returns restart 0's run (which `{A,B}->B` continues
    /// from) by multitask index and regime.
    fn multitask(&self, nodes: &mut Vec<RunNode>) -> BTreeMap<(usize, Regime), Source> {
        let (grid, f) = (self.grid, &self.grid.file);
        let mut ids = BTreeMap::new();
        for (mi, mt) in f.multitask.iter().enumerate() {
            let Some(a) = f.intermediates.iter().find(|m| m.name == mt.a) else {
                continue;
            };
            let cond = format!("{{{},{}}}", mt.a, mt.b);
            for &regime in &self.regimes {
                for restart in 0..grid.restarts(&mt.b) {
                    let seed = grid.restart_seed(restart);
                    let name = "multitask";
                    let tasks = vec![intermediate_task(a), target_task(&mt.b, regime)];
                    let p = phase(
                        name,
                        tasks,
                        Some(mt.sampler),
                        seed,
                        &f.intermediate_recipe,
                        false,
                    );
                    let exp = experiment(grid, self.enc, None, seed, p);
                    let meta = self.meta(
                        RunKind::Multitask,
                        &cond,
                        Some(&mt.b),
                        (regime, restart),
                        name,
                    );
                    let n = node(meta, exp);
                    if restart == 0 {
                        ids.insert((mi, regime), (n.id.clone(), n.phase_dir()));
                    }
                    nodes.push(n);
                }
            }
        }
        ids
    }

    /// Every target run: per target, regime and restart, from the encoder (`none`), from each
    /// intermediate that is not the target itself, and from each `{A,B}` with B the target.
    fn targets(
        &self,
        intermediates: &BTreeMap<&str, Source>,
        multitask: &BTreeMap<(usize, Regime), Source>,
        nodes: &mut Vec<RunNode>,
    ) {
        let f = &self.grid.file;
        // A target phase's own keys: none (the grid's and the encoder's apply).
        let phase = RecipeFile::default();
        for target in &f.targets {
            for &regime in &self.regimes {
                for restart in 0..self.grid.restarts(target) {
                    let mut add = |condition: &str, dep: Option<&Source>| {
                        let n = self.target(target, condition, (regime, restart), dep, &phase);
                        nodes.push(n);
                    };
                    if f.baseline {
                        add("none", None);
                    }
                    for m in &f.intermediates {
                        if !is_same_task(m, target) {
                            add(&m.name, intermediates.get(m.name.as_str()));
                        }
                    }
                    for (mi, mt) in f.multitask.iter().enumerate() {
                        if &mt.b == target {
                            let cond = format!("{{{},{}}}->{}", mt.a, mt.b, mt.b);
                            add(&cond, multitask.get(&(mi, regime)));
                        }
                    }
                }
            }
        }
    }

    /// A fusion method's target runs: per target, regime and restart, the base encoder with an
    /// AdapterFusion over the intermediate adapters of the method `fuse.adapters` (whose runs
    /// are planned here too, so they come first whatever the methods' order).
    fn fusion_targets(&self, grid: &LoadedGrid, fuse: &FuseFile, nodes: &mut Vec<RunNode>) {
        let Some(source) = grid.for_method(&fuse.adapters) else {
            return;
        };
        let Some(enc) = source
            .file
            .encoders
            .iter()
            .find(|e| e.name == self.enc.name)
        else {
            return;
        };
        let from = Expander {
            grid: &source,
            method: &fuse.adapters,
            enc,
            regimes: source.regimes(),
        };
        let trained = from.intermediates(nodes);
        let over = grid.fused_intermediates(fuse);
        let seed = source.restart_seed(0);
        let adapters = over
            .iter()
            .filter_map(|m| trained.get(m.as_str()))
            .map(|(id, dir)| run_path(id, &format!("{dir}/seed-{seed}/adapter")))
            .collect();
        let recipe = RecipeFile {
            fusion: Some(FusionFile {
                adapters,
                kind: fuse.kind,
                dropout: fuse.dropout,
            }),
            ..RecipeFile::default()
        };
        let condition = over.join("+");
        for target in &self.grid.file.targets {
            for &regime in &self.regimes {
                for restart in 0..self.grid.restarts(target) {
                    nodes.push(self.target(target, &condition, (regime, restart), None, &recipe));
                }
            }
        }
    }

    /// One target run, continuing from `dep` when given; `recipe`: its phase's own keys.
    fn target(
        &self,
        target: &str,
        condition: &str,
        (regime, restart): (Regime, usize),
        dep: Option<&Source>,
        recipe: &RecipeFile,
    ) -> RunNode {
        let grid = self.grid;
        let name = slug(target);
        let seed = grid.restart_seed(restart);
        let p = phase(
            &name,
            vec![target_task(target, regime)],
            None,
            seed,
            recipe,
            grid.file.predict_test,
        );
        let from = dep.map(|(id, dir)| (id.as_str(), dir.as_str(), grid.restart_seed(0)));
        let exp = experiment(grid, self.enc, from, seed, p);
        let meta = self.meta(
            RunKind::Target,
            condition,
            Some(target),
            (regime, restart),
            &name,
        );
        node(meta, exp)
    }
}
