//! The `Authorization` header to an [`Identity`]: bearer parsing, then a JWT (this hub's
//! or a pinned issuer's) or a 0-hub token.

use hubconfig::{AuthConfig, IssuerAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::zero_hub::ZeroHub;
use crate::{HUB_ISSUER, unverified_claims};

/// Seconds of clock difference tolerated on `exp` and on 0-hub token times.
pub const LEEWAY: u64 = 60;

/// Who a valid token names. Not yet checked against revocations: that is the hub's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Who the token names (never empty).
    pub user: String,
    /// The other identities it may act as: `memberof` (JWT) or the virtual users mapped to
    /// its user (0-hub).
    pub accounts: Vec<String>,
    /// When it was issued, if it says.
    pub issued: Option<i64>,
    /// What to look up to know whether it was revoked.
    pub revocation: Revocable,
}

/// How a token is revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocable {
    /// A token minted by this hub, by its id (`jti`).
    Minted(String),
    /// A token from elsewhere, by its revocation id if it has one (see
    /// [`crate::foreign_token_id`]).
    Foreign(Option<String>),
}

impl Identity {
    /// The identity to act as: `active_user` (0-hub's cookie) if the token holds it, else
    /// its user. Asking for one the token does not hold is refused, not 0-hub's silent
    /// fallback.
    pub fn act_as<'a>(&'a self, active_user: Option<&'a str>) -> Result<&'a str> {
        match active_user {
            None => Ok(&self.user),
            Some(wanted) if wanted == self.user || self.accounts.iter().any(|a| a == wanted) => {
                Ok(wanted)
            }
            Some(wanted) => Err(Error::NotAnIdentity {
                wanted: wanted.to_owned(),
                held: std::iter::once(&self.user)
                    .chain(&self.accounts)
                    .cloned()
                    .collect(),
            }),
        }
    }
}

struct Issuer {
    issuer: String,
    algorithm: Algorithm,
    key: DecodingKey,
    audience: Option<String>,
}

/// Verifies tokens with this hub's secret and the keys of `[auth]`.
pub struct Verifier {
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

impl Verifier {
    /// The verifier of `config`'s issuers and 0-hub seed (their key files read now), and of
    /// this hub's tokens signed with `secret`.
    pub fn new(config: &AuthConfig, secret: &[u8]) -> Result<Verifier> {
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
        let zero_hub = config.zero_hub.as_ref().map(ZeroHub::new).transpose()?;
        Ok(Verifier {
            hub_key: DecodingKey::from_secret(secret),
            issuers,
            zero_hub,
        })
    }

    /// The identity of the token of an `Authorization` header.
    pub fn verify(&self, header: &[u8]) -> Result<Identity> {
        let token = bearer(header)
            .ok_or_else(|| Error::Malformed("invalid authorization header".into()))?;
        if token.contains('.') {
            self.verify_jwt(token)
        } else {
            match &self.zero_hub {
                Some(zero_hub) => zero_hub.verify(token),
                None => Err(Error::unauthenticated(
                    "invalid token: not a JWT, and 0-hub tokens are not accepted here",
                )),
            }
        }
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
                .ok_or_else(|| Error::UnknownIssuer(iss.to_owned()))?;
            (issuer.algorithm, &issuer.key, issuer.audience.as_deref())
        };
        if header.alg != algorithm {
            return Err(Error::WrongAlgorithm {
                issuer: iss.to_owned(),
                used: format!("{:?}", header.alg),
                expected: format!("{algorithm:?}"),
            });
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
        let revocation = if iss == HUB_ISSUER {
            Revocable::Minted(claims.jti.ok_or_else(|| invalid("no jti claim"))?)
        } else {
            Revocable::Foreign(claims.jti.map(|jti| format!("{iss} {jti}")))
        };
        Ok(Identity {
            user,
            accounts,
            issued: claims.iat,
            revocation,
        })
    }
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
}
