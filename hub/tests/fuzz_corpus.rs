//! The hub's fuzz targets (`fuzz/hub/`: tokens, the configuration file) build the hub's
//! whole dependency tree instrumented, which is beyond the budget of CI's fuzzing step (the
//! README's Fuzzing section has the figures), so CI does not fuzz them; `scripts/fuzz-long`
//! does. What CI does run is each target's own check on its committed corpus, here, in the
//! ordinary build: a change that breaks what the seeds (and any finding added to the
//! corpus) establish fails the suite.

#[path = "../../fuzz/hub/checks/config.rs"]
mod config;
#[path = "../../fuzz/hub/checks/token.rs"]
mod token;

use std::path::{Path, PathBuf};

/// The committed inputs of one target, by file name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/hub/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no seeds", dir.display());
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

#[test]
fn the_token_corpus_passes_the_targets_check() {
    let mut accepted = Vec::new();
    for (name, input) in corpus("token") {
        if token::check(&input) {
            accepted.push(name);
        }
    }
    // The seeds minted with the target's secret and seed verify; `alg: none` does not.
    for minted in ["jwt", "jwt-active-user", "zero-hub", "zero-hub-mapped"] {
        assert!(
            accepted.iter().any(|name| name == minted),
            "{minted} refused"
        );
    }
    assert!(!accepted.iter().any(|name| name == "none-alg"));
}

#[test]
fn the_config_corpus_passes_the_targets_check() {
    for (_, input) in corpus("config") {
        config::check(&input);
    }
}
