//! Bearer tokens, parsed and verified without a database (reference section 4, with the
//! holes of section 13 items 1 to 6 closed).
//!
//! `Authorization: bearer <token>` (`bearer` in any case). A token with a `.` is a JWT:
//! either minted by this hub (HS256, `iss = "flisthub"`), or by a configured issuer whose
//! public key and algorithm are pinned; `exp` is required, and a token whose header names
//! another algorithm than its issuer's (`none` included) is refused. A token without a `.`
//! is a 0-hub API token, accepted when the hub is configured with 0-hub's seed, and refused
//! once older than `max-age`.
//!
//! What the [`Verifier`] returns is an [`Identity`]: who the token names, the other
//! identities it may act as, and what to look up to know whether it was revoked. The
//! look-up, and whether a name may own a repository, are the hub's (`hub::auth`).

#![forbid(unsafe_code)]

mod error;
mod verify;
mod zero_hub;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

pub use error::{Error, Result};
pub use verify::{Identity, LEEWAY, Revocable, Verifier};
pub use zero_hub::zero_hub_token;

/// The `iss` of tokens this hub mints.
pub const HUB_ISSUER: &str = "flisthub";

/// The claims of a token this hub mints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    #[serde(default)]
    pub memberof: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// Signs this hub's tokens (HS256) with its secret.
pub struct Signer {
    key: EncodingKey,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Signer {
        Signer {
            key: EncodingKey::from_secret(secret),
        }
    }

    /// The token carrying `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
            .map_err(|e| Error::Signing(e.to_string()))
    }
}

/// The revocation id of a token presented whole: `<iss> <jti>` for a JWT with both,
/// `zero-hub:<sha256>` for a 0-hub token.
pub fn foreign_token_id(token: &str) -> Option<String> {
    if token.contains('.') {
        let payload = token.split('.').nth(1)?;
        let claims = unverified_claims(payload)?;
        let iss = claims.get("iss")?.as_str()?;
        let jti = claims.get("jti")?.as_str()?;
        return Some(format!("{iss} {jti}"));
    }
    let bytes = zero_hub::decode(token).filter(|b| b.len() > 64)?;
    Some(zero_hub::revocation_id(&bytes))
}

/// The claims of a JWT payload segment, not verified: only to pick the key that verifies.
fn unverified_claims(payload: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
