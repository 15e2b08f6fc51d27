//! An experiment file, parsed (resolution is range-checked by tests/config_ranges.rs).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = common::write(common::scratch(), "experiment.toml", data);
    let _ = stilts_train::schema::experiment::ExperimentFile::read(&path);
});
