//! `key.path=value` assignments over an experiment file, applied before it is parsed
//! (`stilts run exp.toml --set recipe.epochs=1`), as jiant's `--overrides` and Hydra's
//! `key=value` arguments do. A key path names tables by key and arrays by index
//! (`phases.0.tasks`); the value is a TOML value (`1`, `2e-5`, `true`, `"RTE"`,
//! `[{ task = "RTE", train_examples = 64 }]`), and a bare word that is not one is a string
//! (`device=cpu`). Tables on the path are created when missing; array elements must exist.
//! The result is parsed as the file is, so an unknown key is the same error.
//!
//! ```
//! use stilts_schema::overrides::{Override, read_experiment};
//! let o: Override = "phases.0.recipe.epochs=1".parse().unwrap();
//! assert_eq!(o.key, "phases.0.recipe.epochs");
//! # let _ = read_experiment;
//! ```

use std::path::Path;
use std::str::FromStr;

use crate::SchemaError;
use crate::experiment::ExperimentFile;

/// One `key.path=value` assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The dotted key path, as written.
    pub key: String,
    /// The value.
    pub value: toml::Value,
}

impl FromStr for Override {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}`: expected key.path=value"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(|s| s.trim().is_empty()) {
            return Err(format!("`{text}`: empty key in the path `{key}`"));
        }
        let value = value.trim();
        let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_owned()));
        Ok(Override {
            key: key.to_owned(),
            value,
        })
    }
}

impl Override {
    /// Sets the value in `doc`; an error names the part of the path that does not fit.
    pub fn apply(&self, doc: &mut toml::Table) -> Result<(), String> {
        let parts: Vec<&str> = self.key.split('.').map(str::trim).collect();
        let (last, path) = parts.split_last().ok_or("empty key")?;
        let mut node = Node::Table(doc);
        for (i, part) in path.iter().enumerate() {
            let here = parts[..=i].join(".");
            node = node.child(part, &here)?;
        }
        node.set(last, self.value.clone(), &self.key)
    }
}

enum Node<'a> {
    Table(&'a mut toml::Table),
    Array(&'a mut Vec<toml::Value>),
}

impl<'a> Node<'a> {
    fn child(self, part: &str, here: &str) -> Result<Node<'a>, String> {
        let value = match self {
            Node::Table(t) => t
                .entry(part.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new())),
            Node::Array(a) => {
                let len = a.len();
                index(part, len, here).map(|i| &mut a[i])?
            }
        };
        match value {
            toml::Value::Table(t) => Ok(Node::Table(t)),
            toml::Value::Array(a) => Ok(Node::Array(a)),
            other => Err(format!(
                "`{here}` is a {}, not a table or an array",
                other.type_str()
            )),
        }
    }

    fn set(self, part: &str, value: toml::Value, key: &str) -> Result<(), String> {
        match self {
            Node::Table(t) => {
                t.insert(part.to_owned(), value);
            }
            Node::Array(a) => {
                let i = index(part, a.len(), key)?;
                a[i] = value;
            }
        }
        Ok(())
    }
}

fn index(part: &str, len: usize, here: &str) -> Result<usize, String> {
    let i: usize = part
        .parse()
        .map_err(|_| format!("`{here}`: `{part}` indexes an array, so it must be a number"))?;
    if i >= len {
        return Err(format!(
            "`{here}`: index {i} is past the array's {len} entries"
        ));
    }
    Ok(i)
}

/// Reads an experiment file, applies `overrides` in order, then parses it; an override that
/// does not fit is [`SchemaError::Override`], one whose result is not a valid file is
/// [`SchemaError::Toml`].
pub fn read_experiment(path: &Path, overrides: &[Override]) -> Result<ExperimentFile, SchemaError> {
    if overrides.is_empty() {
        return ExperimentFile::read(path);
    }
    let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let toml_error = |source| SchemaError::Toml {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let mut doc: toml::Table = toml::from_str(&text).map_err(toml_error)?;
    for o in overrides {
        o.apply(&mut doc).map_err(|message| SchemaError::Override {
            path: path.to_path_buf(),
            key: o.key.clone(),
            message,
        })?;
    }
    serde::Deserialize::deserialize(toml::Value::Table(doc)).map_err(toml_error)
}

/// Applies `overrides` in order to an experiment built in code (`origin` names it in errors, as
/// a file's path would): what [`read_experiment`] does to a file.
pub fn apply_overrides(
    file: &ExperimentFile,
    overrides: &[Override],
    origin: &Path,
) -> Result<ExperimentFile, SchemaError> {
    if overrides.is_empty() {
        return Ok(file.clone());
    }
    let fail = |key: &str, message: String| SchemaError::Override {
        path: origin.to_path_buf(),
        key: key.to_owned(),
        message,
    };
    let mut doc = toml::Table::try_from(file).map_err(|e| fail("", e.to_string()))?;
    for o in overrides {
        o.apply(&mut doc).map_err(|message| fail(&o.key, message))?;
    }
    serde::Deserialize::deserialize(toml::Value::Table(doc)).map_err(|source| SchemaError::Toml {
        path: origin.to_path_buf(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> toml::Table {
        toml::from_str(
            r#"
name = "x"
[model]
pretrained = "m"
[recipe]
epochs = 3
[[phases]]
tasks = ["RTE"]
"#,
        )
        .unwrap()
    }

    fn set(doc: &mut toml::Table, text: &str) -> Result<(), String> {
        text.parse::<Override>()?.apply(doc)
    }

    #[test]
    fn values_are_toml_else_strings() {
        let o: Override = "recipe.lr = 2e-5".parse().unwrap();
        assert_eq!(o.value, toml::Value::Float(2e-5));
        let o: Override = "device=cpu".parse().unwrap();
        assert_eq!(o.value, toml::Value::String("cpu".into()));
        let o: Override = "a.b=[{ task = \"RTE\", train_examples = 64 }]"
            .parse()
            .unwrap();
        assert!(o.value.is_array());
        assert!("no-equals".parse::<Override>().is_err());
        assert!("a..b=1".parse::<Override>().is_err());
    }

    #[test]
    fn paths_reach_tables_and_array_entries() {
        let mut d = doc();
        set(&mut d, "recipe.epochs=1").unwrap();
        set(&mut d, "phases.0.recipe.max_seq_len=64").unwrap();
        set(
            &mut d,
            "phases.0.tasks.0={ task = \"RTE\", train_examples = 32 }",
        )
        .unwrap();
        set(&mut d, "data.glue_dir=/data/glue").unwrap();
        let file: ExperimentFile =
            serde::Deserialize::deserialize(toml::Value::Table(d.clone())).unwrap();
        assert_eq!(file.recipe.epochs, Some(1));
        assert_eq!(file.phases[0].recipe.max_seq_len, Some(64));
        assert_eq!(file.data.glue_dir.as_deref(), Some("/data/glue"));
        let e = set(&mut d, "phases.1.recipe.epochs=1").unwrap_err();
        assert!(e.contains("index 1 is past the array's 1 entries"), "{e}");
        let e = set(&mut d, "name.first=1").unwrap_err();
        assert!(e.contains("`name` is a string"), "{e}");
        let e = set(&mut d, "phases.x=1").unwrap_err();
        assert!(e.contains("must be a number"), "{e}");
    }

    #[test]
    fn a_misspelt_key_is_the_files_own_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.toml");
        std::fs::write(
            &path,
            "[model]\npretrained = \"m\"\n[[phases]]\ntasks = [\"RTE\"]\n",
        )
        .unwrap();
        let e = read_experiment(&path, &["recipe.epoch=1".parse().unwrap()]).unwrap_err();
        assert!(e.to_string().contains("epoch"), "{e}");
        let file = read_experiment(&path, &["recipe.epochs=2".parse().unwrap()]).unwrap();
        assert_eq!(file.recipe.epochs, Some(2));
    }
}
