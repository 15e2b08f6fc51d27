//! RTE's TSV layout (header, columns, labels): any bytes load or fail with an error.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use stilts_train::data::{BuiltinTask, LoadOptions};

fuzz_target!(|data: &[u8]| {
    let dir = common::scratch().join("RTE");
    common::write(&dir, "train.tsv", data);
    let _ = BuiltinTask::Rte
        .task()
        .load(&dir, "train", LoadOptions::default());
});
