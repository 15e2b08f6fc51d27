//! The library behind `cargo xtask`: experiment grids (`grid`), their executors (`exec`) and
//! reports (`report`) and GLUE submission bundles (`bundle`). The binary in `main.rs` is a thin command-line layer over it.

pub mod bundle;
pub mod exec;
pub mod grid;
pub mod report;
