//! The configuration file (the check is in `checks/config.rs`, shared with the ordinary
//! suite's replay of the corpus).

#![no_main]

#[path = "../checks/config.rs"]
mod config;

libfuzzer_sys::fuzz_target!(|data: &[u8]| config::check(data));
