//! Who is calling, and which repository the call acts on (reference section 4, with the
//! holes of section 13 items 1 to 6 closed).
//!
//! `Authorization: bearer <token>` (`bearer` in any case). A token with a `.` is a JWT:
//! either minted here (HS256, `iss = "flisthub"`), or by a configured issuer whose public
//! key and algorithm are pinned; `exp` is required, and a token whose header names another
//! algorithm than its issuer's (`none` included) is refused. A token without a `.` is a
//! 0-hub API token, accepted when the hub is configured with 0-hub's seed, and refused
//! once older than `max-age`. Every token can be revoked (see `tokens`).
//!
//! The `active-user` cookie picks the repository to act as among the token's identities:
//! its user, its `memberof` repositories (JWT) or the virtual users mapped to it (0-hub).
//! Asking for one the token does not hold is a 403, not 0-hub's silent fallback.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rusqlite::OptionalExtension;
use serde::Deserialize;

use crate::config::{AuthConfig, IssuerAlgorithm, ZeroHubConfig};
use crate::db::{Db, now};
use crate::error::{Error, Result};
use crate::names::{Names, RepoName, quote};
use crate::tokens::{HUB_ISSUER, unverified_claims};

/// The identity of every caller when authentication is off (0-hub's).
pub const ADMINISTRATOR: &str = "Administrator";

/// Seconds of clock difference tolerated on `exp` and on 0-hub token times.
const LEEWAY: u64 = 60;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who the token names.
    pub user: String,
    /// The repository the call acts on ("me").
    pub repository: RepoName,
    /// The other repositories the token may act as (`memberof`), for account switchers.
    pub accounts: Vec<String>,
    /// Whether the caller has administrator rights (`auth.administrators`, or every caller
    /// when authentication is off): the one predicate every admin-only route checks.
    pub admin: bool,
}

/// What a request carries to be authenticated, as the HTTP layer read it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The `Authorization` header, as sent.
    pub authorization: Option<&'a [u8]>,
    /// The identity to act as (0-hub's `active-user` cookie).
    pub active_user: Option<&'a str>,
}

struct Issuer {
    issuer: String,
    algorithm: Algorithm,
    key: DecodingKey,
    audience: Option<String>,
}

struct ZeroHub {
    key: VerifyingKey,
    max_age: Duration,
    users_map: BTreeMap<String, String>,
}

pub struct Authenticator {
    enabled: bool,
    administrators: Vec<String>,
    /// Local accounts with administrator rights (the first account added).
    local_administrators: std::sync::RwLock<Vec<String>>,
    db: Db,
    names: Names,
    hub_key: DecodingKey,
    issuers: Vec<Issuer>,
    zero_hub: Option<ZeroHub>,
}

/// Claims read from any JWT. `sub`, or `username` as ItsYou.Online issued them.
#[derive(Deserialize)]
struct JwtClaims {
    sub: Option<String>,
    username: Option<String>,
    #[serde(default)]
    memberof: Vec<String>,
    /// ItsYou.Online style grants: `user:memberof:<org>` gives `<org>`.
    #[serde(default)]
    scope: Scope,
    iat: Option<i64>,
    jti: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Scope {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Authenticator {
    pub fn new(
        config: &AuthConfig,
        enabled: bool,
        secret: &[u8],
        db: Db,
        names: Names,
    ) -> Result<Authenticator> {
        let issuers = config
            .issuers
            .iter()
            .map(|issuer| {
                let pem = std::fs::read(&issuer.public_key_file)
                    .map_err(|e| Error::io(issuer.public_key_file.display(), e))?;
                let bad = |e: jsonwebtoken::errors::Error| {
                    Error::Config(format!(
                        "auth.issuers {:?}: {}: not a {:?} public key in PEM: {e}",
                        issuer.issuer,
                        issuer.public_key_file.display(),
                        issuer.algorithm
                    ))
                };
                let (algorithm, key) = match issuer.algorithm {
                    IssuerAlgorithm::EdDSA => (
                        Algorithm::EdDSA,
                        DecodingKey::from_ed_pem(&pem).map_err(bad)?,
                    ),
                    IssuerAlgorithm::ES256 => (
                        Algorithm::ES256,
                        DecodingKey::from_ec_pem(&pem).map_err(bad)?,
                    ),
                    IssuerAlgorithm::ES384 => (
                        Algorithm::ES384,
                        DecodingKey::from_ec_pem(&pem).map_err(bad)?,
                    ),
                    IssuerAlgorithm::RS256 => (
                        Algorithm::RS256,
                        DecodingKey::from_rsa_pem(&pem).map_err(bad)?,
                    ),
                };
                if issuer.issuer == HUB_ISSUER {
                    return Err(Error::Config(format!(
                        "auth.issuers: {HUB_ISSUER:?} is the issuer name of this hub's own tokens"
                    )));
                }
                Ok(Issuer {
                    issuer: issuer.issuer.clone(),
                    algorithm,
                    key,
                    audience: issuer.audience.clone(),
                })
            })
            .collect::<Result<_>>()?;
        let zero_hub = config.zero_hub.as_ref().map(zero_hub).transpose()?;
        Ok(Authenticator {
            enabled,
            administrators: config.administrators.clone(),
            local_administrators: std::sync::RwLock::default(),
            db,
            names,
            hub_key: DecodingKey::from_secret(secret),
            issuers,
            zero_hub,
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `user` has administrator rights.
    pub fn is_administrator(&self, user: &str) -> bool {
        !self.enabled
            || self.administrators.iter().any(|a| a == user)
            || self
                .local_administrators
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|a| a == user)
    }

    /// Sets the local accounts with administrator rights (read from the accounts at start).
    pub(crate) fn set_local_administrators(&self, names: Vec<String>) {
        *self
            .local_administrators
            .write()
            .unwrap_or_else(|p| p.into_inner()) = names;
    }

    /// Authenticates a request to a `/api/flist/me...` route.
    pub async fn authenticate(&self, credentials: Credentials<'_>) -> Result<Caller> {
        if !self.enabled {
            return Ok(Caller {
                user: ADMINISTRATOR.into(),
                repository: RepoName::stored(ADMINISTRATOR),
                accounts: Vec::new(),
                admin: true,
            });
        }
        let header = credentials
            .authorization
            .ok_or_else(|| Error::unauthenticated("no authorization provided"))?;
        let token = bearer(header).ok_or(Error::Unauthenticated {
            message: "invalid authorization header".into(),
            malformed: true,
        })?;
        let identity = if token.contains('.') {
            self.verify_jwt(token)?
        } else {
            self.verify_zero_hub(token)?
        };
        self.check_revocation(&identity).await?;
        let repository = match credentials.active_user {
            None => identity.user.clone(),
            Some(wanted)
                if wanted == identity.user || identity.accounts.iter().any(|a| a == wanted) =>
            {
                wanted.to_owned()
            }
            Some(wanted) => {
                return Err(Error::Forbidden(format!(
                    "active-user {} is not an identity of this token (it may act as {})",
                    quote(wanted),
                    std::iter::once(&identity.user)
                        .chain(&identity.accounts)
                        .map(|a| quote(a))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        let repository = self
            .names
            .repository(&repository)
            .map_err(|e| Error::Forbidden(format!("this identity cannot own a repository: {e}")))?;
        Ok(Caller {
            admin: self.is_administrator(&identity.user),
            user: identity.user,
            accounts: identity.accounts,
            repository,
        })
    }

    fn verify_jwt(&self, token: &str) -> Result<Identity> {
        let invalid = |why: &str| Error::unauthenticated(format!("invalid token: {why}"));
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("not a JWT, or an algorithm that is never accepted"))?;
        let claims = token
            .split('.')
            .nth(1)
            .and_then(unverified_claims)
            .ok_or_else(|| invalid("not a JWT"))?;
        let iss = claims
            .get("iss")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let (algorithm, key, audience) = if iss == HUB_ISSUER {
            (Algorithm::HS256, &self.hub_key, None)
        } else {
            let issuer = self
                .issuers
                .iter()
                .find(|i| i.issuer == iss)
                .ok_or_else(|| invalid(&format!("unknown issuer {}", quote(iss))))?;
            (issuer.algorithm, &issuer.key, issuer.audience.as_deref())
        };
        if header.alg != algorithm {
            return Err(invalid(&format!(
                "signed with {:?}, but {} signs with {algorithm:?}",
                header.alg,
                quote(iss)
            )));
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(&[iss]);
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<JwtClaims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => Error::unauthenticated("token expired"),
                ErrorKind::InvalidSignature => Error::unauthenticated("invalid signature"),
                ErrorKind::InvalidAudience => invalid("not meant for this hub (aud)"),
                ErrorKind::MissingRequiredClaim(claim) => invalid(&format!("no {claim} claim")),
                _ => invalid(&e.to_string()),
            }
        })?;
        let claims = data.claims;
        let user = claims
            .sub
            .or(claims.username)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| invalid("no sub claim"))?;
        let mut accounts = claims.memberof;
        let scopes = match claims.scope {
            Scope::None => Vec::new(),
            Scope::One(s) => s.split([' ', ',']).map(str::to_owned).collect(),
            Scope::Many(v) => v,
        };
        accounts.extend(scopes.iter().filter_map(|s| {
            let parts: Vec<&str> = s.split(':').collect();
            (parts.len() >= 3 && parts[1] == "memberof").then(|| parts[2].to_owned())
        }));
        let revocation_id = if iss == HUB_ISSUER {
            Revocable::Minted(claims.jti.ok_or_else(|| invalid("no jti claim"))?)
        } else {
            Revocable::Foreign(claims.jti.map(|jti| format!("{iss} {jti}")))
        };
        Ok(Identity {
            user,
            accounts,
            issued: claims.iat,
            revocation_id,
        })
    }

    fn verify_zero_hub(&self, token: &str) -> Result<Identity> {
        let Some(zero_hub) = &self.zero_hub else {
            return Err(Error::unauthenticated(
                "invalid token: not a JWT, and 0-hub tokens are not accepted here",
            ));
        };
        let bytes = crate::tokens::decode_zero_hub(token)
            .ok_or_else(|| Error::unauthenticated("invalid token: not base64"))?;
        if bytes.len() <= Signature::BYTE_SIZE {
            return Err(Error::unauthenticated("invalid signature"));
        }
        let (signature, message) = bytes.split_at(Signature::BYTE_SIZE);
        let signature = Signature::from_slice(signature)
            .map_err(|_| Error::unauthenticated("invalid signature"))?;
        zero_hub
            .key
            .verify(message, &signature)
            .map_err(|_| Error::unauthenticated("invalid signature"))?;
        let (user, issued): (String, i64) = serde_json::from_slice(message)
            .map_err(|_| Error::unauthenticated("invalid token: unexpected content"))?;
        let age = now() - issued;
        if age < -(LEEWAY as i64) {
            return Err(Error::unauthenticated(
                "invalid token: issued in the future",
            ));
        }
        if !zero_hub.max_age.is_zero() && age > zero_hub.max_age.as_secs() as i64 {
            return Err(Error::unauthenticated("token expired"));
        }
        let accounts = zero_hub
            .users_map
            .iter()
            .filter(|(_, real)| **real == user)
            .map(|(virtual_user, _)| virtual_user.clone())
            .collect();
        Ok(Identity {
            user,
            accounts,
            issued: Some(issued),
            revocation_id: Revocable::Foreign(Some(crate::tokens::zero_hub_revocation_id(&bytes))),
        })
    }

    async fn check_revocation(&self, identity: &Identity) -> Result<()> {
        let revocation_id = identity.revocation_id.clone();
        let user = identity.user.clone();
        let issued = identity.issued;
        let valid = self
            .db
            .read(move |c| {
                let t = now();
                let token_ok = match &revocation_id {
                    Revocable::Minted(id) => c
                        .prepare_cached("SELECT 1 FROM token WHERE id = ?1 AND revoked IS NULL AND expires > ?2")?
                        .exists(rusqlite::params![id, t - LEEWAY as i64])?,
                    Revocable::Foreign(Some(id)) => !c
                        .prepare_cached("SELECT 1 FROM revoked_token WHERE id = ?1")?
                        .exists([id])?,
                    Revocable::Foreign(None) => true,
                };
                // A token minted here is valid exactly while its row is: `revoke --user`
                // marks every row of the user, so a token minted in the same second after it
                // is valid, as `token list` shows. A token from elsewhere is known only by
                // its issue time, in whole seconds: one issued in the second of the
                // revocation cannot be shown to be newer, nor one without an issue time.
                let subject_ok = match &revocation_id {
                    Revocable::Minted(_) => true,
                    Revocable::Foreign(_) => {
                        let before: Option<i64> = c
                            .prepare_cached(
                                "SELECT before FROM revoked_subject WHERE subject = ?1",
                            )?
                            .query_row([&user], |r| r.get(0))
                            .optional()?;
                        before.is_none_or(|before| issued.is_some_and(|i| i > before))
                    }
                };
                Ok(token_ok && subject_ok)
            })
            .await?;
        if valid {
            Ok(())
        } else {
            Err(Error::unauthenticated("token revoked"))
        }
    }
}

struct Identity {
    user: String,
    accounts: Vec<String>,
    issued: Option<i64>,
    revocation_id: Revocable,
}

#[derive(Clone)]
enum Revocable {
    /// A token minted here, by its id.
    Minted(String),
    /// A token from elsewhere, by its revocation id if it has one.
    Foreign(Option<String>),
}

/// The token of a `bearer <token>` header (0-hub's `^bearer (.*)$`, case-insensitive).
fn bearer(header: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(header).ok()?;
    let (scheme, token) = text.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case("bearer ") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

fn zero_hub(config: &ZeroHubConfig) -> Result<ZeroHub> {
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
    fn bearer_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer(b"bEaReR a.b.c"), Some("a.b.c"));
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearerabc"), None);
    }

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
