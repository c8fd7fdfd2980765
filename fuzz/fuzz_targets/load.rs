//! Fuzz target: the scenario loader (TOML + manifests -> validated
//! scenario) must never panic, and every refusal names the file.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = common::load(data);
});
