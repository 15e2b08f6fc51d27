//! A custom task definition (TOML).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = common::write(common::scratch(), "task.toml", data);
    let _ = stilts_train::data::custom::load_task_file(&path);
});
