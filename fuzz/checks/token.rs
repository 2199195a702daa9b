//! The check of the `token` fuzz target, which `hub/tests/fuzz_corpus.rs` also runs on the
//! committed corpus: the `Authorization` header through `hubtokens`' `Verifier` (bearer
//! parsing, JWT header and claims, this hub's HS256 tokens, 0-hub tokens), then the
//! `active-user` cookie (after the first newline) through `Identity::act_as`, as the hub's
//! `Authenticator` does before it asks its database about revocations.
//!
//! The verifier has a fixed secret and a fixed 0-hub seed, so that the corpus's 0-hub tokens
//! verify; `@JWT@` in an input stands for a token signed with the secret (for user `alice`,
//! member of `team`). A refusal must be one of a token's refusals (400, 401 or 403 in the
//! hub, never a configuration or signing error). An accepted token must name a user and
//! say what revokes it; since no other issuer is configured and the fuzzer cannot sign,
//! an accepted JWT is exactly the token signed here, and an accepted 0-hub token carries
//! its issue time and exactly the virtual users mapped to its user. The identity acted as
//! is always one the token holds.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use hubtokens::{Claims, Error, HUB_ISSUER, Identity, Revocable, Signer, Verifier};

/// The 0-hub seed (`tests/fuzz_seeds.rs` mints the corpus's 0-hub tokens with it).
pub const ZERO_HUB_SEED: [u8; 32] = [7; 32];

/// What an input says where it means the token signed with the target's secret.
const PLACEHOLDER: &[u8] = b"@JWT@";

/// The `jti` of that token.
const JTI: &str = "fuzz-token";

struct Scratch {
    verifier: Verifier,
    /// A token of user `alice`, member of `team`, signed with the verifier's secret.
    jwt: Vec<u8>,
    /// `[auth.zero-hub] users-map`, virtual user to real user.
    users_map: Vec<(String, String)>,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let secret = [42u8; 32];
        let config = hubconfig::Config::from_toml(&format!(
            "[auth.zero-hub]\nseed = {:?}\nusers-map = {{ official = \"alice\" }}\n",
            ZERO_HUB_SEED
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ))
        .expect("configuration");
        let verifier = Verifier::new(&config.auth, &secret).expect("verifier");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs() as i64;
        let jwt = Signer::new(&secret)
            .sign(&Claims {
                iss: HUB_ISSUER.into(),
                sub: "alice".into(),
                memberof: vec!["team".into()],
                iat: now,
                exp: now + 86_400,
                jti: JTI.into(),
            })
            .expect("signing");
        let users_map = config
            .auth
            .zero_hub
            .expect("[auth.zero-hub]")
            .users_map
            .into_iter()
            .collect();
        Scratch {
            verifier,
            jwt: jwt.into_bytes(),
            users_map,
        }
    })
}

/// Verifies `data` (the header, then the cookie after the first newline, `@JWT@` standing
/// for the signed token), checks the outcome and says whether the token was accepted and
/// the identity asked for granted.
pub fn check(data: &[u8]) -> bool {
    let scratch = scratch();
    let data = with_token(data, &scratch.jwt);
    let (authorization, active_user) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], std::str::from_utf8(&data[at + 1..]).ok()),
        None => (&data[..], None),
    };
    let identity = match scratch.verifier.verify(authorization) {
        Ok(identity) => identity,
        Err(
            Error::Malformed(_)
            | Error::Unauthenticated(_)
            | Error::UnknownIssuer(_)
            | Error::WrongAlgorithm { .. },
        ) => return false,
        Err(other) => panic!("refused as {other:?}"),
    };
    check_identity(scratch, &identity);
    match identity.act_as(active_user) {
        Ok(acting) => {
            assert!(
                acting == identity.user || identity.accounts.iter().any(|a| a == acting),
                "acting as {acting:?}, which {identity:?} does not hold"
            );
            true
        }
        Err(Error::NotAnIdentity { wanted, .. }) => {
            assert_eq!(Some(wanted.as_str()), active_user);
            false
        }
        Err(other) => panic!("active-user refused as {other:?}"),
    }
}

/// What an accepted token must be.
fn check_identity(scratch: &Scratch, identity: &Identity) {
    assert!(!identity.user.is_empty(), "no user: {identity:?}");
    match &identity.revocation {
        Revocable::Minted(jti) => {
            assert_eq!(jti, JTI, "a hub token the fuzzer signed: {identity:?}");
            assert_eq!(identity.user, "alice");
            assert_eq!(identity.accounts, ["team"]);
        }
        Revocable::Foreign(Some(id)) => {
            assert!(id.starts_with("zero-hub:"), "{identity:?}");
            assert!(identity.issued.is_some(), "{identity:?}");
            let mapped: Vec<&str> = scratch
                .users_map
                .iter()
                .filter(|(_, real)| *real == identity.user)
                .map(|(virtual_user, _)| virtual_user.as_str())
                .collect();
            assert_eq!(identity.accounts, mapped);
        }
        Revocable::Foreign(None) => panic!("a JWT of no configured issuer: {identity:?}"),
    }
}

/// `data` with every [`PLACEHOLDER`] replaced by `jwt`.
pub fn with_token(data: &[u8], jwt: &[u8]) -> Vec<u8> {
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
