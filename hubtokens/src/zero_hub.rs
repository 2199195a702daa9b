//! 0-hub's API tokens: PyNaCl signed messages, `["<user>", <issued>]` signed with the
//! Ed25519 key of 0-hub's seed, in URL-safe base64.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hubconfig::ZeroHubConfig;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::verify::{Identity, LEEWAY, Revocable};

/// What verifies 0-hub tokens: the public half of 0-hub's seed, and `[auth.zero-hub]`.
pub(crate) struct ZeroHub {
    key: VerifyingKey,
    max_age: Duration,
    users_map: BTreeMap<String, String>,
}

impl ZeroHub {
    pub(crate) fn new(config: &ZeroHubConfig) -> Result<ZeroHub> {
        let (text, origin) = match (&config.seed, &config.seed_file) {
            (Some(seed), _) => (seed.as_bytes().to_vec(), "auth.zero-hub.seed".to_owned()),
            (None, Some(file)) => (
                std::fs::read(file).map_err(|e| Error::io(file.display(), e))?,
                file.display().to_string(),
            ),
            (None, None) => {
                return Err(Error::Config(
                    "auth.zero-hub needs seed or seed-file".into(),
                ));
            }
        };
        let seed = parse_seed(&text).ok_or_else(|| {
            Error::Config(format!(
                "{origin}: not a 32-byte seed (64 hex digits, base64 of 32 bytes, or 32 bytes)"
            ))
        })?;
        if config.max_age.is_zero() {
            tracing::warn!(
                "auth.zero-hub: 0-hub tokens are accepted whatever their age, as 0-hub did; set max-age to refuse old ones (`flisthub token revoke` denies single tokens)"
            );
        }
        Ok(ZeroHub {
            key: SigningKey::from_bytes(&seed).verifying_key(),
            max_age: config.max_age,
            users_map: config.users_map.clone(),
        })
    }

    /// The identity of a 0-hub token (its user, and the virtual users mapped to it).
    pub(crate) fn verify(&self, token: &str) -> Result<Identity> {
        let bytes =
            decode(token).ok_or_else(|| Error::unauthenticated("invalid token: not base64"))?;
        if bytes.len() <= Signature::BYTE_SIZE {
            return Err(Error::unauthenticated("invalid signature"));
        }
        let (signature, message) = bytes.split_at(Signature::BYTE_SIZE);
        let signature = Signature::from_slice(signature)
            .map_err(|_| Error::unauthenticated("invalid signature"))?;
        self.key
            .verify(message, &signature)
            .map_err(|_| Error::unauthenticated("invalid signature"))?;
        let (user, issued): (String, i64) = serde_json::from_slice(message)
            .map_err(|_| Error::unauthenticated("invalid token: unexpected content"))?;
        let age = now().saturating_sub(issued);
        if age < -(LEEWAY as i64) {
            return Err(Error::unauthenticated(
                "invalid token: issued in the future",
            ));
        }
        if !self.max_age.is_zero() && age > self.max_age.as_secs() as i64 {
            return Err(Error::unauthenticated("token expired"));
        }
        let accounts = self
            .users_map
            .iter()
            .filter(|(_, real)| **real == user)
            .map(|(virtual_user, _)| virtual_user.clone())
            .collect();
        Ok(Identity {
            user,
            accounts,
            issued: Some(issued),
            revocation: Revocable::Foreign(Some(revocation_id(&bytes))),
        })
    }
}

/// Seconds since the epoch.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The bytes of a 0-hub token: URL-safe base64, padded as PyNaCl writes it or not.
pub(crate) fn decode(token: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()
}

/// A 0-hub token's revocation id, from its decoded bytes: the same token written with or
/// without padding is the same token.
pub(crate) fn revocation_id(bytes: &[u8]) -> String {
    format!("zero-hub:{}", hex::encode(Sha256::digest(bytes)))
}

/// A 32-byte seed written as 64 hex digits, as base64, or as the 32 bytes themselves
/// (0-hub's `threebot-seed`).
fn parse_seed(text: &[u8]) -> Option<[u8; 32]> {
    let trimmed = std::str::from_utf8(text).map(str::trim).ok();
    let decoded = trimmed.and_then(|t| {
        hex::decode(t)
            .ok()
            .filter(|b| b.len() == 32)
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .or_else(|| base64::engine::general_purpose::URL_SAFE.decode(t).ok())
    });
    decoded
        .filter(|b| b.len() == 32)
        .or_else(|| (text.len() == 32).then(|| text.to_vec()))
        .and_then(|b| b.try_into().ok())
}

/// Signs a 0-hub API token as 0-hub did (PyNaCl's signed message, URL-safe base64 with
/// padding). For tests and for operators checking a migration.
pub fn zero_hub_token(seed: &[u8; 32], user: &str, issued: i64) -> String {
    let key = SigningKey::from_bytes(seed);
    // Python's json.dumps of a list: `["user", 123]`.
    let message = format!("[{}, {issued}]", serde_json::Value::String(user.to_owned()));
    let signature = key.sign(message.as_bytes());
    let mut signed = signature.to_bytes().to_vec();
    signed.extend_from_slice(message.as_bytes());
    base64::engine::general_purpose::URL_SAFE.encode(signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_in_every_form() {
        let seed = [7u8; 32];
        assert_eq!(parse_seed(hex::encode(seed).as_bytes()), Some(seed));
        let b64 = base64::engine::general_purpose::STANDARD.encode(seed);
        assert_eq!(parse_seed(b64.as_bytes()), Some(seed));
        assert_eq!(parse_seed(&seed), Some(seed));
        assert_eq!(parse_seed(b"short"), None);
    }
}
