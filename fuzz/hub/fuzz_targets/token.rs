//! The `Authorization` header of every authenticated request, through the hub's own
//! `Authenticator` (bearer parsing, JWT header and claims, HS256 tokens of this hub, 0-hub
//! tokens, revocation), with the `active-user` cookie after the first newline. The hub is
//! real, opened once on a scratch data directory with a fixed secret and 0-hub seed, so
//! that the seed corpus's tokens verify. A refusal must be a 401 or 403, and an accepted
//! token must name a user that can own a repository.

#![no_main]

use std::sync::OnceLock;

use hub::{Class, Config, Credentials, Hub};
use libfuzzer_sys::fuzz_target;

/// The hub's HS256 secret and 0-hub seed (`examples/seeds.rs` mints with the same).
const SECRET: &[u8; 32] = b"flisthub fuzzing secret, public!";
const ZERO_HUB_SEED: [u8; 32] = [7; 32];

struct Scratch {
    runtime: tokio::runtime::Runtime,
    hub: Hub,
    _dir: tempfile::TempDir,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("scratch directory");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, SECRET).expect("writing the secret");
        let config = Config::from_toml(&format!(
            "[server]\ndata-dir = {:?}\n[auth]\nsecret-file = {:?}\n\
             [auth.zero-hub]\nseed = {:?}\nusers-map = {{ official = \"alice\" }}\n",
            dir.path().join("data"),
            secret,
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
        Scratch {
            runtime,
            hub,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let scratch = scratch();
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
        }
        Err(error) => match error.class() {
            Class::Unauthenticated { .. } | Class::Forbidden => {}
            other => panic!("refused as {other:?}: {error}"),
        },
    }
});
