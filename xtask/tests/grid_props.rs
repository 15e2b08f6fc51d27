//! The grid file's parser (and the planner behind it), fed arbitrary bytes and mutations of
//! every shipped grid at each of its scales: `Ok`, or an error naming the file, never a panic.
//! Bounded and seeded as `crates/stilts-train/tests/parsers.rs`, whose checker this shares.

use std::path::Path;

use xtask::grid::plan::Plan;
use xtask::grid::spec;

#[path = "../../crates/stilts-train/tests/common/mutate.rs"]
mod mutate;

#[test]
fn grid_files_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("grid.toml");
    let grids = root.join("configs/grids");
    let mut names: Vec<_> = std::fs::read_dir(&grids)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 6);
    for path in names {
        let seed = std::fs::read(&path).unwrap();
        for scale in [None, Some("cpu")] {
            mutate::check(40, seed.clone(), &file, |p| {
                let grid = spec::load(p, scale)?;
                Plan::expand(&grid, Some(Path::new("/out"))).map(|_| ())
            });
        }
    }
}
