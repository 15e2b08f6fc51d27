//! Checking a directory of GLUE submission files: names, header, rows, indices, labels.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{
    ExportError, HEADER, Issue, MAX_ISSUES_PER_FILE, OFFICIAL_TEST_SIZES, SubmissionSpec,
    submission_specs,
};

/// How to validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateOptions {
    /// Accept a directory that lacks some of the eleven files.
    pub partial: bool,
    /// Expected rows per file; defaults to [`OFFICIAL_TEST_SIZES`].
    pub sizes: BTreeMap<String, usize>,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            partial: false,
            sizes: OFFICIAL_TEST_SIZES
                .iter()
                .map(|(f, n)| (f.to_string(), *n))
                .collect(),
        }
    }
}

/// Checks a directory of submission files: names, headers, row counts, indices `0..n-1` each
/// exactly once, and label strings. Returns every problem found (empty: valid); at most
/// [`MAX_ISSUES_PER_FILE`] per file. Fails only when the directory cannot be read.
pub fn validate_dir(dir: &Path, options: &ValidateOptions) -> Result<Vec<Issue>, ExportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    let specs = submission_specs();
    let mut issues = Vec::new();
    let mut present = BTreeSet::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Some(spec) = specs.iter().find(|s| s.file == name) else {
            let known: Vec<_> = specs.iter().map(|s| s.file.as_str()).collect();
            issues.push(Issue {
                file: name,
                line: None,
                field: None,
                message: format!("not a GLUE submission file (expected {})", known.join(", ")),
            });
            continue;
        };
        present.insert(name.clone());
        let path = entry.path();
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let expected = options.sizes.get(&name).copied();
        issues.extend(validate_file(spec, &name, &bytes, expected));
    }
    if !options.partial {
        for spec in &specs {
            if !present.contains(&spec.file) {
                issues.push(Issue {
                    file: spec.file.clone(),
                    line: None,
                    field: None,
                    message: "missing".to_owned(),
                });
            }
        }
    }
    Ok(issues)
}

/// Checks one file's contents (see [`validate_dir`]); `name` is used in the issues.
pub fn validate_file(
    spec: &SubmissionSpec,
    name: &str,
    bytes: &[u8],
    expected_rows: Option<usize>,
) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut push = |line: Option<usize>, field: Option<&str>, message: String| {
        if issues.len() < MAX_ISSUES_PER_FILE {
            issues.push(Issue {
                file: name.to_owned(),
                line,
                field: field.map(str::to_owned),
                message,
            });
        }
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            push(None, None, format!("not UTF-8: {e}"));
            return issues;
        }
    };
    let mut lines = text.split('\n').collect::<Vec<_>>();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    match lines.first() {
        None => {
            push(Some(1), Some("header"), "empty file".to_owned());
            return issues;
        }
        Some(h) if *h != HEADER => push(
            Some(1),
            Some("header"),
            format!("`{}`, expected `index<TAB>prediction`", h.escape_debug()),
        ),
        Some(_) => {}
    }
    let rows = lines.len() - 1;
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate().skip(1) {
        let n = i + 1;
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != 2 {
            push(
                Some(n),
                None,
                format!("{} fields, expected 2 (index, prediction)", fields.len()),
            );
            continue;
        }
        match fields[0].parse::<usize>() {
            Err(_) => push(
                Some(n),
                Some("index"),
                format!(
                    "`{}` is not a non-negative integer",
                    fields[0].escape_debug()
                ),
            ),
            Ok(index) => {
                if let Some(first) = seen.insert(index, n) {
                    push(
                        Some(n),
                        Some("index"),
                        format!("{index} already on line {first}"),
                    );
                } else if let Some(expected) = expected_rows
                    && index >= expected
                {
                    push(
                        Some(n),
                        Some("index"),
                        format!("{index} is out of range 0..{}", expected),
                    );
                }
            }
        }
        if !spec.accepts(fields[1]) {
            push(
                Some(n),
                Some("prediction"),
                format!("`{}` is not {}", fields[1].escape_debug(), spec.expected()),
            );
        }
    }
    if let Some(expected) = expected_rows
        && rows != expected
    {
        push(
            Some(lines.len()),
            None,
            format!("{rows} rows, expected {expected} (the official test set)"),
        );
    }
    issues
}

/// Validates and fails with [`ExportError::Invalid`] when there is any problem.
pub fn check_dir(dir: &Path, options: &ValidateOptions) -> Result<(), ExportError> {
    let issues = validate_dir(dir, options)?;
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ExportError::Invalid(issues))
    }
}
