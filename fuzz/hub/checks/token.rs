//! The check of the `token` fuzz target, which `hub/tests/fuzz_corpus.rs` also runs on the
//! committed corpus: the `Authorization` header of every authenticated request, through the
//! hub's own `Authenticator` (bearer parsing, JWT header and claims, HS256 tokens of this
//! hub, 0-hub tokens, revocation), with the `active-user` cookie after the first newline.
//! The hub is real, opened once on a scratch data directory with a fixed 0-hub seed, so that
//! the corpus's 0-hub tokens verify. A hub token is valid only while its id has a row in the
//! hub that minted it, so no committed token can verify in a fresh hub: the scratch hub mints
//! one, and `@JWT@` in an input stands for it. A refusal must be a 401 or 403, and an
//! accepted token must name a user that can own a repository.

use std::sync::OnceLock;
use std::time::Duration;

use hub::{Class, Config, Credentials, Hub};

/// The hub's 0-hub seed (`tests/fuzz_seeds.rs` mints the corpus's 0-hub tokens with it).
const ZERO_HUB_SEED: [u8; 32] = [7; 32];

/// What an input says where it means the scratch hub's own token.
const PLACEHOLDER: &[u8] = b"@JWT@";

struct Scratch {
    runtime: tokio::runtime::Runtime,
    hub: Hub,
    /// A token of user `alice`, member of `team`, minted by this hub.
    jwt: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("scratch directory");
        let config = Config::from_toml(&format!(
            "[server]\ndata-dir = {:?}\n\
             [auth.zero-hub]\nseed = {:?}\nusers-map = {{ official = \"alice\" }}\n",
            dir.path().join("data"),
            ZERO_HUB_SEED
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ))
        .expect("configuration");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let hub = runtime.block_on(Hub::open(config)).expect("hub");
        let (_, jwt) = hub
            .tokens()
            .create("alice", &["team".into()], Duration::from_secs(86_400), None)
            .expect("minting a token");
        Scratch {
            runtime,
            hub,
            jwt: jwt.into_bytes(),
            _dir: dir,
        }
    })
}

/// Authenticates `data` (the header, then the cookie after the first newline, `@JWT@`
/// standing for the scratch hub's token), checks the outcome and says whether the token was
/// accepted.
pub fn check(data: &[u8]) -> bool {
    let scratch = scratch();
    let data = with_token(data, &scratch.jwt);
    let data = data.as_slice();
    let (authorization, active_user) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], std::str::from_utf8(&data[at + 1..]).ok()),
        None => (data, None),
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

/// `data` with every [`PLACEHOLDER`] replaced by `jwt`.
fn with_token(data: &[u8], jwt: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some(at) = rest
        .windows(PLACEHOLDER.len())
        .position(|w| w == PLACEHOLDER)
    {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(jwt);
        rest = &rest[at + PLACEHOLDER.len()..];
    }
    out.extend_from_slice(rest);
    out
}
