//! The `token` and `config` fuzz targets' checks (`fuzz/checks/`), run here on their
//! committed corpora in the ordinary build, so that a change that breaks what the seeds
//! (and any finding added to a corpus) establish fails the suite even where nothing fuzzes.
//! The token corpus also goes through a real hub's `Authenticator`, which adds what the
//! light target leaves out: the revocation look-up and whether the identity can own a
//! repository.

#[path = "../../fuzz/checks/config.rs"]
mod config;
#[path = "../../fuzz/checks/token.rs"]
mod token;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use hub::{Class, Config, Credentials, Hub};

/// The committed inputs of one target, by file name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
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

/// Checks that `accepts` takes the seeds signed with the target's secret and seed, and
/// refuses the `alg: none` one.
fn accepts_the_signed_seeds(accepts: impl Fn(&[u8]) -> bool) {
    let accepted: Vec<String> = corpus("token")
        .into_iter()
        .filter(|(_, input)| accepts(input))
        .map(|(name, _)| name)
        .collect();
    for signed in ["jwt", "jwt-active-user", "zero-hub", "zero-hub-mapped"] {
        assert!(accepted.iter().any(|n| n == signed), "{signed} refused");
    }
    assert!(!accepted.iter().any(|name| name == "none-alg"));
}

#[test]
fn the_token_corpus_passes_the_targets_check() {
    accepts_the_signed_seeds(token::check);
}

#[test]
fn the_token_corpus_through_a_real_hub() {
    accepts_the_signed_seeds(through_hub);
}

#[test]
fn the_config_corpus_passes_the_targets_check() {
    for (_, input) in corpus("config") {
        config::check(&input);
    }
}

struct Scratch {
    runtime: tokio::runtime::Runtime,
    hub: Hub,
    /// A token of user `alice`, member of `team`, minted by this hub (a hub token is
    /// valid only while its id has a row in the hub that minted it).
    jwt: Vec<u8>,
    _dir: tempfile::TempDir,
}

/// A hub on a scratch data directory, with the target's 0-hub seed.
fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_toml(&format!(
            "[server]\ndata-dir = {:?}\n\
             [auth.zero-hub]\nseed = {:?}\nusers-map = {{ official = \"alice\" }}\n",
            dir.path().join("data"),
            hex::encode(token::ZERO_HUB_SEED),
        ))
        .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let hub = runtime.block_on(Hub::open(config)).unwrap();
        let (_, jwt) = hub
            .tokens()
            .create("alice", &["team".into()], Duration::from_secs(86_400), None)
            .unwrap();
        Scratch {
            runtime,
            hub,
            jwt: jwt.into_bytes(),
            _dir: dir,
        }
    })
}

/// Authenticates `input` as the target reads it (`@JWT@` standing for the scratch hub's
/// token): a refusal must be a 401 or 403, an accepted token must name a user that can own
/// a repository. Says whether it was accepted.
fn through_hub(input: &[u8]) -> bool {
    let scratch = scratch();
    let data = token::with_token(input, &scratch.jwt);
    let (authorization, active_user) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], std::str::from_utf8(&data[at + 1..]).ok()),
        None => (&data[..], None),
    };
    let credentials = Credentials {
        authorization: Some(authorization),
        active_user,
    };
    match scratch
        .runtime
        .block_on(scratch.hub.auth().authenticate(credentials))
    {
        Ok(caller) => {
            assert!(!caller.admin, "no administrator is configured");
            scratch
                .hub
                .names()
                .repository(&caller.user)
                .expect("an accepted user can own a repository");
            true
        }
        Err(error) => match error.class() {
            Class::Unauthenticated { .. } | Class::Forbidden => false,
            other => panic!("refused as {other:?}: {error}"),
        },
    }
}
