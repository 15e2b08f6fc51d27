//! Expanding a grid into runs. Each run is one `stilts run` experiment with one phase and one
//! seed; a target that continues from an intermediate depends on the intermediate's run, which
//! is trained once per encoder and shared by every target, regime and restart that needs it.
//!
//! A run's id is a hash of its resolved configuration (the experiment table without its name,
//! output directory and device, with the starting checkpoint named by its run id instead of
//! its path), so the same configuration in any grid or directory has the same id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::spec::{EncoderFile, IntermediateFile, LoadedGrid, Regime};
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

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunNode {
    pub id: String,
    pub meta: RunMeta,
    /// The run this one continues from.
    pub depends_on: Option<String>,
    /// The `stilts run` experiment, as a TOML table (paths of dependencies filled in by
    /// [`Plan::write`]).
    pub experiment: toml::Table,
}

impl RunNode {
    /// `00-<phase>`.
    pub fn phase_dir(&self) -> String {
        format!("00-{}", self.meta.phase)
    }
}

/// A grid's runs, dependencies first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub grid: String,
    pub output_dir: PathBuf,
    pub nodes: Vec<RunNode>,
}

/// Where a dependency's model lies, inside the dependent's experiment table until written.
const DEP_PLACEHOLDER: &str = "@dependency";
/// The grid's output directory, inside experiment tables until written.
const GRID_PLACEHOLDER: &str = "@grid";

/// Calls `f(key, value)` on every string value of `table`, recursively (array items get their
/// array's key).
fn rewrite_strings(table: &mut toml::Table, f: &mut dyn FnMut(&str, &mut String)) {
    fn visit(key: &str, v: &mut toml::Value, f: &mut dyn FnMut(&str, &mut String)) {
        match v {
            toml::Value::String(s) => f(key, s),
            toml::Value::Array(items) => items.iter_mut().for_each(|i| visit(key, i, f)),
            toml::Value::Table(t) => t.iter_mut().for_each(|(k, v)| visit(k, v, f)),
            _ => {}
        }
    }
    table.iter_mut().for_each(|(k, v)| visit(k, v, f));
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
        let regimes = grid.regimes();
        for enc in &f.encoders {
            let meta = |kind,
                        condition: &str,
                        target: Option<&str>,
                        regime,
                        restart: usize,
                        phase: &str| RunMeta {
                grid: f.name.clone(),
                kind,
                encoder: enc.name.clone(),
                condition: condition.to_string(),
                target: target.map(str::to_string),
                regime,
                restart,
                seed: grid.restart_seed(restart),
                scale: grid.scale.clone(),
                phase: phase.to_string(),
            };
            // Intermediates: trained once per encoder.
            let mut inter_ids: BTreeMap<&str, (String, String)> = BTreeMap::new();
            for m in &f.intermediates {
                let phase = slug(&m.name);
                let exp = experiment(
                    grid,
                    enc,
                    None,
                    grid.restart_seed(0),
                    phase_table(
                        &phase,
                        vec![intermediate_task(m)],
                        None,
                        grid.restart_seed(0),
                        &f.intermediate_recipe,
                        false,
                    ),
                );
                let node = node(
                    meta(
                        RunKind::Intermediate,
                        &m.name,
                        None,
                        Regime::Full,
                        0,
                        &phase,
                    ),
                    None,
                    exp,
                );
                inter_ids.insert(m.name.as_str(), (node.id.clone(), node.phase_dir()));
                nodes.push(node);
            }
            // Multitask {A,B}, per regime and restart; {A,B}->B continues from restart 0.
            let mut multi_ids: BTreeMap<(usize, Regime), (String, String)> = BTreeMap::new();
            for (mi, mt) in f.multitask.iter().enumerate() {
                let Some(a) = f.intermediates.iter().find(|m| m.name == mt.a) else {
                    continue;
                };
                let cond = format!("{{{},{}}}", mt.a, mt.b);
                for &regime in &regimes {
                    for restart in 0..grid.restarts(&mt.b) {
                        let seed = grid.restart_seed(restart);
                        let phase = "multitask".to_string();
                        let tasks = vec![intermediate_task(a), target_task(&mt.b, regime)];
                        let exp = experiment(
                            grid,
                            enc,
                            None,
                            seed,
                            phase_table(
                                &phase,
                                tasks,
                                Some(&mt.sampler),
                                seed,
                                &f.intermediate_recipe,
                                false,
                            ),
                        );
                        let node = node(
                            meta(
                                RunKind::Multitask,
                                &cond,
                                Some(&mt.b),
                                regime,
                                restart,
                                &phase,
                            ),
                            None,
                            exp,
                        );
                        if restart == 0 {
                            multi_ids.insert((mi, regime), (node.id.clone(), node.phase_dir()));
                        }
                        nodes.push(node);
                    }
                }
            }
            // Targets.
            for target in &f.targets {
                let phase = slug(target);
                for &regime in &regimes {
                    for restart in 0..grid.restarts(target) {
                        let seed = grid.restart_seed(restart);
                        let mut add = |condition: &str, dep: Option<&(String, String)>| {
                            let exp = experiment(
                                grid,
                                enc,
                                dep.map(|(id, dir)| {
                                    (id.as_str(), dir.as_str(), grid.restart_seed(0))
                                }),
                                seed,
                                phase_table(
                                    &phase,
                                    vec![target_task(target, regime)],
                                    None,
                                    seed,
                                    &toml::Table::new(),
                                    f.predict_test,
                                ),
                            );
                            nodes.push(node(
                                meta(
                                    RunKind::Target,
                                    condition,
                                    Some(target),
                                    regime,
                                    restart,
                                    &phase,
                                ),
                                dep.map(|(id, _)| id.clone()),
                                exp,
                            ));
                        };
                        if f.baseline {
                            add("none", None);
                        }
                        for m in &f.intermediates {
                            if is_same_task(m, target) {
                                continue;
                            }
                            add(&m.name, inter_ids.get(m.name.as_str()));
                        }
                        for (mi, mt) in f.multitask.iter().enumerate() {
                            if &mt.b == target {
                                let cond = format!("{{{},{}}}->{}", mt.a, mt.b, mt.b);
                                add(&cond, multi_ids.get(&(mi, regime)));
                            }
                        }
                    }
                }
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

    /// The experiment of `node` as the worker reads it: the dependency's model path, the grid
    /// directory and task files filled in as absolute paths (the identity uses them as
    /// written, so moving a grid or a checkout keeps run ids).
    pub fn experiment_toml(&self, node: &RunNode) -> String {
        let mut exp = node.experiment.clone();
        let dep_dir = node.depends_on.as_deref().map(|d| self.run_dir(d));
        let cwd = std::env::current_dir().unwrap_or_default();
        rewrite_strings(&mut exp, &mut |key, s| {
            if let (Some(rest), Some(dep)) = (s.strip_prefix(DEP_PLACEHOLDER), &dep_dir) {
                *s = format!("{}{rest}", dep.display());
            } else if let Some(rest) = s.strip_prefix(GRID_PLACEHOLDER) {
                *s = format!("{}{rest}", self.output_dir.display());
            } else if key == "task" && s.ends_with(".toml") && Path::new(s.as_str()).is_relative() {
                *s = cwd.join(s.as_str()).display().to_string();
            }
        });
        exp.insert(
            "name".into(),
            toml::Value::String(format!("{}-{}", self.grid, node.id)),
        );
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
        text.push_str(&toml::to_string(&exp).unwrap_or_default());
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
                "depends_on": node.depends_on,
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

fn intermediate_task(m: &IntermediateFile) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("task".into(), toml::Value::String(m.task.clone()));
    let generated = m.realfake.as_ref().map(|_| GENERATED_DATA.to_string());
    if let Some(root) = m.data_root.clone().or(generated) {
        t.insert("data_root".into(), toml::Value::String(root));
    }
    if let Some(n) = m.train_examples {
        t.insert("train_examples".into(), toml::Value::Integer(n as i64));
    }
    toml::Value::Table(t)
}

fn target_task(target: &str, regime: Regime) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("task".into(), toml::Value::String(target.to_string()));
    if let Some(n) = regime.train_examples() {
        t.insert("train_examples".into(), toml::Value::Integer(n as i64));
    }
    toml::Value::Table(t)
}

fn phase_table(
    name: &str,
    tasks: Vec<toml::Value>,
    sampler: Option<&str>,
    seed: u64,
    recipe: &toml::Table,
    predict_test: bool,
) -> toml::Table {
    let mut p = toml::Table::new();
    p.insert("name".into(), toml::Value::String(name.to_string()));
    p.insert("tasks".into(), toml::Value::Array(tasks));
    if let Some(s) = sampler {
        p.insert("sampler".into(), toml::Value::String(s.to_string()));
    }
    p.insert("head".into(), toml::Value::String("new".into()));
    p.insert(
        "seeds".into(),
        toml::Value::Array(vec![toml::Value::Integer(seed as i64)]),
    );
    p.insert("predict_test".into(), toml::Value::Boolean(predict_test));
    if !recipe.is_empty() {
        p.insert("recipe".into(), toml::Value::Table(recipe.clone()));
    }
    p
}

/// A one-phase experiment. `from`: (dependency id, its phase dir, its seed).
fn experiment(
    grid: &LoadedGrid,
    enc: &EncoderFile,
    from: Option<(&str, &str, u64)>,
    seed: u64,
    phase: toml::Table,
) -> toml::Table {
    let f = &grid.file;
    let mut model = toml::Table::new();
    match from {
        Some((_, phase_dir, dep_seed)) => {
            model.insert(
                "checkpoint".into(),
                toml::Value::String(format!(
                    "{DEP_PLACEHOLDER}/{phase_dir}/seed-{dep_seed}/model"
                )),
            );
            model.insert("load".into(), toml::Value::String("encoder".into()));
        }
        None => {
            if let Some(p) = &enc.pretrained {
                model.insert("pretrained".into(), toml::Value::String(p.clone()));
            }
            if let Some(r) = &enc.random {
                model.insert("random".into(), toml::Value::Table(r.clone()));
            }
        }
    }
    if let Some(t) = &enc.tokenizer {
        model.insert("tokenizer".into(), toml::Value::String(t.clone()));
    }
    let mut recipe = f.recipe.clone();
    for (k, v) in &enc.recipe {
        recipe.insert(k.clone(), v.clone());
    }
    let mut exp = toml::Table::new();
    exp.insert("seed".into(), toml::Value::Integer(seed as i64));
    exp.insert("model".into(), toml::Value::Table(model));
    if !f.data.is_empty() {
        exp.insert("data".into(), toml::Value::Table(f.data.clone()));
    }
    if !recipe.is_empty() {
        exp.insert("recipe".into(), toml::Value::Table(recipe));
    }
    exp.insert(
        "phases".into(),
        toml::Value::Array(vec![toml::Value::Table(phase)]),
    );
    exp
}

fn node(meta: RunMeta, depends_on: Option<String>, experiment: toml::Table) -> RunNode {
    let mut identity = experiment.clone();
    if let (Some(dep), Some(model)) = (
        depends_on.as_deref(),
        identity.get_mut("model").and_then(|m| m.as_table_mut()),
    ) && let Some(toml::Value::String(ck)) = model.get_mut("checkpoint")
    {
        *ck = ck.replacen(DEP_PLACEHOLDER, &format!("run:{dep}"), 1);
    }
    // serde_json's maps are sorted, so equal tables hash equally.
    let canonical = serde_json::to_vec(&identity).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(b"stilts-grid-run-v1\0");
    h.update(&canonical);
    let hex = format!("{:x}", h.finalize());
    RunNode {
        id: hex[..16].to_string(),
        meta,
        depends_on,
        experiment,
    }
}
