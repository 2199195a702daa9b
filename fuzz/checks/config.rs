//! The check of the `config` fuzz target, which `hub/tests/fuzz_corpus.rs` also runs on the
//! committed corpus: the configuration file (`hubconfig::Config::from_toml`: the embedded
//! defaults overlaid with the text, unknown keys refused, then the cross-key checks). A
//! refusal must be a configuration error (never an I/O one: `from_toml` reads no file of
//! its own), and an accepted text must give the same configuration again.

use hubconfig::{Config, Error};

/// Reads `data` as a configuration file and checks the outcome.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text) {
        Ok(config) => {
            let again = Config::from_toml(text).expect("accepted once, accepted again");
            assert_eq!(format!("{again:?}"), format!("{config:?}"));
        }
        Err(Error::Config(_)) => {}
        Err(other) => panic!("not a configuration error: {other:?}"),
    }
}
