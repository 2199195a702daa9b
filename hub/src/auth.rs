//! Who is calling, and which repository the call acts on (reference section 4, with the
//! holes of section 13 items 1 to 6 closed).
//!
//! The token of the `Authorization` header is parsed and verified by `hubtokens` (JWTs of
//! this hub and of pinned issuers, 0-hub tokens), which builds without the server so that
//! its fuzz target stays cheap. Here, what needs the hub: every token can be revoked (see
//! `tokens`), checked in the database, and the identity acted as must be able to own a
//! repository.
//!
//! The `active-user` cookie picks the repository to act as among the token's identities:
//! its user, its `memberof` repositories (JWT) or the virtual users mapped to it (0-hub).
//! Asking for one the token does not hold is a 403, not 0-hub's silent fallback.

use hubtokens::{Identity, LEEWAY, Revocable, Verifier};
use rusqlite::OptionalExtension;

pub use hubconfig::ADMINISTRATOR;

use crate::config::AuthConfig;
use crate::db::{Db, now};
use crate::error::{Error, Result};
use crate::names::{Names, RepoName, quote};

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

pub struct Authenticator {
    enabled: bool,
    administrators: Vec<String>,
    /// Local accounts with administrator rights (the first account added).
    local_administrators: std::sync::RwLock<Vec<String>>,
    db: Db,
    names: Names,
    verifier: Verifier,
}

impl Authenticator {
    pub fn new(
        config: &AuthConfig,
        enabled: bool,
        secret: &[u8],
        db: Db,
        names: Names,
    ) -> Result<Authenticator> {
        Ok(Authenticator {
            enabled,
            administrators: config.administrators.clone(),
            local_administrators: std::sync::RwLock::default(),
            db,
            names,
            verifier: Verifier::new(config, secret)?,
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
        let identity = self.verifier.verify(header)?;
        self.check_revocation(&identity).await?;
        let repository = identity.act_as(credentials.active_user)?;
        let repository = self
            .names
            .repository(repository)
            .map_err(|e| Error::Forbidden(format!("this identity cannot own a repository: {e}")))?;
        Ok(Caller {
            admin: self.is_administrator(&identity.user),
            user: identity.user,
            accounts: identity.accounts,
            repository,
        })
    }

    async fn check_revocation(&self, identity: &Identity) -> Result<()> {
        let revocation_id = identity.revocation.clone();
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

impl From<hubtokens::Error> for Error {
    /// A token's refusal as the hub answers it; the names a token carries are quoted here,
    /// as every name the hub shows.
    fn from(e: hubtokens::Error) -> Error {
        use hubtokens::Error as Token;
        match e {
            Token::Malformed(message) => Error::Unauthenticated {
                message,
                malformed: true,
            },
            Token::Unauthenticated(message) => Error::unauthenticated(message),
            Token::UnknownIssuer(issuer) => {
                Error::unauthenticated(format!("invalid token: unknown issuer {}", quote(&issuer)))
            }
            Token::WrongAlgorithm {
                issuer,
                used,
                expected,
            } => Error::unauthenticated(format!(
                "invalid token: signed with {used}, but {} signs with {expected}",
                quote(&issuer)
            )),
            Token::NotAnIdentity { wanted, held } => Error::Forbidden(format!(
                "active-user {} is not an identity of this token (it may act as {})",
                quote(&wanted),
                held.iter().map(|a| quote(a)).collect::<Vec<_>>().join(", ")
            )),
            Token::Config(message) => Error::Config(message),
            Token::Io { path, source } => Error::Io { path, source },
            Token::Signing(message) => Error::Internal(format!("signing a token: {message}")),
        }
    }
}
