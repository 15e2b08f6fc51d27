//! Array layout: which run is which task of which array, the `--array` specs, and the list
//! files (`a0001.list`) that map an array's task indices to run ids.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::SlurmError;

/// `0-3,5,7-8` (`--array` syntax) of sorted, distinct indices.
pub fn array_spec(indices: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// One array to submit: task index → run id, and the array its tasks correspond to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayLayout {
    pub tasks: BTreeMap<u32, String>,
    /// `aftercorr:` this array job.
    pub after: Option<u64>,
}

impl ArrayLayout {
    /// The list file: line `k` is task `k`'s run id, `-` where there is no task `k`.
    pub fn list_file(&self) -> String {
        let Some(&last) = self.tasks.keys().next_back() else {
            return String::new();
        };
        let mut s = String::new();
        for k in 0..=last {
            s.push_str(self.tasks.get(&k).map(String::as_str).unwrap_or("-"));
            s.push('\n');
        }
        s
    }
    pub fn indices(&self) -> Vec<u32> {
        self.tasks.keys().copied().collect()
    }
}

/// Plain arrays of at most `chunk` tasks (indices `0..chunk`), in the order given.
pub fn plain_arrays(runs: &[String], chunk: usize) -> Vec<ArrayLayout> {
    runs.chunks(chunk.max(1))
        .map(|c| ArrayLayout {
            tasks: c
                .iter()
                .enumerate()
                .map(|(k, r)| (k as u32, r.clone()))
                .collect(),
            after: None,
        })
        .collect()
}

/// Slot arrays of runs whose dependency is queued as task `index` of array job `job`: slot
/// `s`'s task `index` is the `s`-th dependent (in the order given) of that dependency.
pub fn slot_arrays(runs: &[(String, u64, u32)]) -> Vec<ArrayLayout> {
    let mut by_dep: BTreeMap<u64, BTreeMap<u32, Vec<&String>>> = BTreeMap::new();
    for (run, job, index) in runs {
        by_dep
            .entry(*job)
            .or_default()
            .entry(*index)
            .or_default()
            .push(run);
    }
    let mut out = Vec::new();
    for (job, deps) in by_dep {
        let slots = deps.values().map(Vec::len).max().unwrap_or(0);
        for s in 0..slots {
            let tasks: BTreeMap<u32, String> = deps
                .iter()
                .filter_map(|(&k, v)| v.get(s).map(|r| (k, (*r).clone())))
                .collect();
            out.push(ArrayLayout {
                tasks,
                after: Some(job),
            });
        }
    }
    out
}

/// `<dir>/<array>.list`: the list file of array `array` (`a0001`).
pub(super) fn list_path(dir: &Path, array: &str) -> PathBuf {
    dir.join(format!("{array}.list"))
}

/// Whether `s` is one of our array names (`a0001`).
pub(super) fn is_array_name(s: &str) -> bool {
    s.len() > 1 && s.starts_with('a') && s[1..].chars().all(|c| c.is_ascii_digit())
}

/// `a0001`, `a0002`, ...: one more than the largest list file's number in `dir`.
pub(super) fn next_array_name(dir: &Path) -> Result<String, SlurmError> {
    let mut max = 0u64;
    let entries = std::fs::read_dir(dir).map_err(|e| SlurmError::io(dir, e))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".list")
            && is_array_name(stem)
            && let Ok(n) = stem[1..].parse::<u64>()
        {
            max = max.max(n);
        }
    }
    Ok(format!("a{:04}", max + 1))
}

/// Reads list files on demand: array name → its task → run id (`None`: no such list file or
/// not an array name; `Some(None)`: the list has no run for that task).
pub(super) fn list_lookup(dir: &Path) -> impl FnMut(&str, u32) -> Option<Option<String>> + '_ {
    let mut cache: HashMap<String, Option<Vec<String>>> = HashMap::new();
    move |array: &str, index: u32| {
        let lines = cache.entry(array.to_string()).or_insert_with(|| {
            if !is_array_name(array) {
                return None;
            }
            std::fs::read_to_string(list_path(dir, array))
                .ok()
                .map(|t| t.lines().map(str::to_string).collect())
        });
        let lines = lines.as_ref()?;
        Some(
            lines
                .get(index as usize)
                .filter(|id| id.as_str() != "-")
                .cloned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_compress_ranges() {
        assert_eq!(array_spec(&[0, 1, 2, 3]), "0-3");
        assert_eq!(array_spec(&[0, 2, 3, 5, 7, 8, 9]), "0,2-3,5,7-9");
        assert_eq!(array_spec(&[4]), "4");
        assert_eq!(array_spec(&[]), "");
    }

    #[test]
    fn plain_arrays_chunk_below_the_limit() {
        let runs: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
        let a = plain_arrays(&runs, 2);
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].indices(), vec![0, 1]);
        assert_eq!(a[2].indices(), vec![0]);
        assert_eq!(a[2].tasks[&0], "r4");
        assert_eq!(a[1].list_file(), "r2\nr3\n");
        assert!(a.iter().all(|l| l.after.is_none()));
    }

    #[test]
    fn slot_arrays_follow_their_dependencies_tasks() {
        // Dependency 0 of array 7 has three dependents, dependency 2 one, dependency 1 of
        // array 8 two.
        let runs = vec![
            ("t0a".to_string(), 7, 0),
            ("t2a".to_string(), 7, 2),
            ("t0b".to_string(), 7, 0),
            ("t0c".to_string(), 7, 0),
            ("u1a".to_string(), 8, 1),
            ("u1b".to_string(), 8, 1),
        ];
        let a = slot_arrays(&runs);
        assert_eq!(a.len(), 5);
        assert_eq!(a[0].after, Some(7));
        assert_eq!(a[0].indices(), vec![0, 2]);
        assert_eq!(a[0].list_file(), "t0a\n-\nt2a\n");
        assert_eq!(a[1].indices(), vec![0]);
        assert_eq!(a[1].tasks[&0], "t0b");
        assert_eq!(a[2].tasks[&0], "t0c");
        assert_eq!(a[3].after, Some(8));
        assert_eq!(a[3].list_file(), "-\nu1a\n");
        assert_eq!(a[4].tasks[&1], "u1b");
    }

    #[test]
    fn array_names_count_up_from_the_list_files() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(next_array_name(tmp.path()).unwrap(), "a0001");
        for name in ["a0001.list", "a0012.list", "b0099.list", "a0050.txt"] {
            std::fs::write(tmp.path().join(name), "r\n").unwrap();
        }
        assert_eq!(next_array_name(tmp.path()).unwrap(), "a0013");
        assert_eq!(
            list_path(tmp.path(), "a0012"),
            tmp.path().join("a0012.list")
        );
    }
}
