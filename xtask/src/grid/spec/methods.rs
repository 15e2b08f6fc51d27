//! A grid's training methods (`[[methods]]`): full fine-tuning and the methods beside it, each
//! seeing the grid through [`LoadedGrid::for_method`], and AdapterFusion methods (`fuse`) over
//! another method's intermediate adapters.

use serde::{Deserialize, Serialize};
use stilts_schema::experiment::RecipeFile;
use stilts_schema::peft::FusionKind;

use super::LoadedGrid;
use crate::grid::GridError;

/// A training method (a parameter-efficient one, say) run beside full fine-tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodFile {
    /// The label in tables and report files (`adapters`, `lora`); not `full`.
    pub name: String,
    /// Recipe keys of every phase of the method's runs (`adapter`, `lora`, `lr`, `epochs`),
    /// over the grid's and the encoder's.
    #[serde(default)]
    pub recipe: RecipeFile,
    /// Recipe keys of the method's intermediate phases, over the grid's `intermediate_recipe`.
    #[serde(default)]
    pub intermediate_recipe: RecipeFile,
    /// The intermediates it trains (names of `intermediates`); default all.
    pub intermediates: Option<Vec<String>>,
    /// The targets it trains (entries of `targets`); default all.
    pub targets: Option<Vec<String>>,
    /// AdapterFusion: this method trains no intermediates of its own; each of its target runs
    /// fuses the adapters another method trained on several intermediates.
    pub fuse: Option<FuseFile>,
}

/// `fuse = { adapters = "pfeiffer", over = ["MNLI", "QQP"] }`: a target run that trains an
/// AdapterFusion (the recipe's `fusion`) on the base encoder, over the adapters the method
/// `adapters` trained on the intermediates `over`. It depends on all of those runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuseFile {
    /// The method whose intermediate adapters are fused: its recipe trains `adapter` with
    /// `train_layer_norms = false` and no `modules_to_save`.
    pub adapters: String,
    /// The intermediates whose adapters are fused (at least two); default every intermediate
    /// of that method.
    pub over: Option<Vec<String>>,
    /// The fusion's form (`dynamic` by default, or `static`).
    pub kind: Option<FusionKind>,
    /// Dropout on the fusion's attention scores (default 0.1).
    pub dropout: Option<f64>,
}

/// The name of full fine-tuning, the method every grid has.
pub const FULL_METHOD: &str = "full";

impl LoadedGrid {
    pub(super) fn validate_methods(&self) -> Result<(), GridError> {
        let f = &self.file;
        let mut names = std::collections::BTreeSet::from([FULL_METHOD]);
        for (i, m) in f.methods.iter().enumerate() {
            stilts_io::names::check_component(&m.name)
                .map_err(|e| self.err(format!("methods[{i}].name"), e))?;
            if !names.insert(m.name.as_str()) {
                return Err(self.err(
                    format!("methods[{i}].name"),
                    format!(
                        "`{}` is taken (`{FULL_METHOD}` is full fine-tuning, and names are unique)",
                        m.name
                    ),
                ));
            }
            for (j, x) in m.intermediates.iter().flatten().enumerate() {
                if !f.intermediates.iter().any(|y| y.name == *x) {
                    return Err(self.err(
                        format!("methods[{i}].intermediates[{j}]"),
                        format!("`{x}` is not an intermediate of this grid"),
                    ));
                }
            }
            for (j, t) in m.targets.iter().flatten().enumerate() {
                if !f.targets.contains(t) {
                    return Err(self.err(
                        format!("methods[{i}].targets[{j}]"),
                        format!("`{t}` is not one of the targets ({})", f.targets.join(", ")),
                    ));
                }
            }
        }
        for (i, m) in f.methods.iter().enumerate() {
            if let Some(fuse) = &m.fuse {
                self.validate_fuse(i, m, fuse)?;
            }
        }
        Ok(())
    }

    /// A fusion method: what it fuses exists and can be fused, and it sets nothing a fusion
    /// run would not use.
    fn validate_fuse(&self, i: usize, m: &MethodFile, fuse: &FuseFile) -> Result<(), GridError> {
        let key = |k: &str| format!("methods[{i}].{k}");
        if m.intermediates.is_some() || m.intermediate_recipe != RecipeFile::default() {
            return Err(self.err(
                key("fuse"),
                "a fusion method trains no intermediates of its own: leave out `intermediates` \
                 and `intermediate_recipe` (`fuse.over` names the fused ones)",
            ));
        }
        if m.recipe.adapter.is_some() || m.recipe.lora.is_some() || m.recipe.fusion.is_some() {
            return Err(self.err(
                key("recipe"),
                "a fusion method's modules are its fusion layers: no `adapter`, `lora` or \
                 `fusion` here (`fuse` sets the fusion)",
            ));
        }
        let source = self
            .file
            .methods
            .iter()
            .find(|s| s.name == fuse.adapters && s.fuse.is_none())
            .ok_or_else(|| {
                self.err(
                    key("fuse.adapters"),
                    format!(
                        "`{}` is not an adapter method of this grid (one of `methods`, without \
                         `fuse`)",
                        fuse.adapters
                    ),
                )
            })?;
        let view = self
            .for_method(&source.name)
            .ok_or_else(|| self.err(key("fuse.adapters"), "no such method".to_string()))?;
        let vf = &view.file;
        for enc in &vf.encoders {
            // What an intermediate phase of the method trains with this encoder.
            let trained = vf
                .recipe
                .overridden_by(&enc.recipe)
                .overridden_by(&vf.intermediate_recipe);
            let problem = match &trained.adapter {
                None => Some("trains no `adapter`".to_string()),
                Some(a) if a.train_layer_norms != Some(false) => Some(
                    "trains the encoder's LayerNorms with its adapters, so they cannot share one \
                     encoder: give it `adapter.train_layer_norms = false`"
                        .to_string(),
                ),
                Some(_) if trained.modules_to_save.is_some() => Some(
                    "also trains encoder parameters (`modules_to_save`), so its adapters cannot \
                     share one encoder"
                        .to_string(),
                ),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                return Err(self.err(
                    key("fuse.adapters"),
                    format!("method `{}` {problem} (encoder {})", source.name, enc.name),
                ));
            }
        }
        let over = self.fused_intermediates(fuse);
        for (j, x) in over.iter().enumerate() {
            if over[..j].contains(x) {
                return Err(self.err(
                    key(&format!("fuse.over[{j}]")),
                    format!("`{x}` is fused twice"),
                ));
            }
            if !vf.intermediates.iter().any(|y| y.name == *x) {
                return Err(self.err(
                    key(&format!("fuse.over[{j}]")),
                    format!("method `{}` trains no intermediate `{x}`", source.name),
                ));
            }
        }
        if over.len() < 2 {
            return Err(self.err(key("fuse.over"), "a fusion needs two adapters or more"));
        }
        Ok(())
    }

    /// The intermediates a fusion fuses: `over`, else every intermediate of the method that
    /// trained the adapters.
    pub fn fused_intermediates(&self, fuse: &FuseFile) -> Vec<String> {
        match &fuse.over {
            Some(over) => over.clone(),
            None => self
                .for_method(&fuse.adapters)
                .map(|v| {
                    v.file
                        .intermediates
                        .iter()
                        .map(|m| m.name.clone())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The fusion of this grid if it is a fusion method's view ([`LoadedGrid::for_method`]).
    pub fn fusion(&self) -> Option<&FuseFile> {
        match self.file.methods.as_slice() {
            [m] => m.fuse.as_ref(),
            _ => None,
        }
    }

    /// Every method's name: `full`, then the grid's `methods` in order.
    pub fn method_names(&self) -> Vec<String> {
        std::iter::once(FULL_METHOD.to_string())
            .chain(self.file.methods.iter().map(|m| m.name.clone()))
            .collect()
    }

    /// The grid as one method sees it: full fine-tuning is the grid itself; another method's
    /// grid has only its intermediates and targets, no multitask pairs, no methods, and its
    /// recipe keys over the grid's. A fusion method's grid has no intermediates and no
    /// baseline, and keeps its own method entry ([`LoadedGrid::fusion`]). Its runs are the
    /// method's runs of [`crate::grid::Plan::expand`].
    pub fn for_method(&self, name: &str) -> Option<LoadedGrid> {
        if name == FULL_METHOD {
            let mut grid = self.clone();
            grid.file.methods.clear();
            return Some(grid);
        }
        let m = self.file.methods.iter().find(|m| m.name == name)?;
        let mut grid = self.clone();
        let f = &mut grid.file;
        if let Some(keep) = &m.intermediates {
            f.intermediates.retain(|x| keep.contains(&x.name));
        }
        if let Some(keep) = &m.targets {
            f.targets.retain(|t| keep.contains(t));
            f.restarts_for.retain(|t, _| keep.contains(t));
        }
        // The method's keys win everywhere: over the grid's and each encoder's keys, and in
        // intermediate phases over the grid's `intermediate_recipe` (its own
        // `intermediate_recipe` over them).
        f.recipe = f.recipe.overridden_by(&m.recipe);
        for e in &mut f.encoders {
            e.recipe = e.recipe.overridden_by(&m.recipe);
        }
        f.intermediate_recipe = f
            .intermediate_recipe
            .overridden_by(&m.recipe)
            .overridden_by(&m.intermediate_recipe);
        f.multitask.clear();
        f.methods.clear();
        if let Some(fuse) = &m.fuse {
            // The fused intermediates are named, as the view has no other method to ask.
            let mut m = m.clone();
            m.fuse = Some(FuseFile {
                over: Some(self.fused_intermediates(fuse)),
                ..fuse.clone()
            });
            f.intermediates.clear();
            f.baseline = false;
            f.methods.push(m);
        }
        Some(grid)
    }
}
