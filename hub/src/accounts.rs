//! Local accounts for people (argon2id passwords; the first account is an administrator)
//! and the web's sessions. A session acts with a bearer token, re-checked by the
//! [`crate::Authenticator`] on every request, so it has exactly the rights, expiry and
//! revocation of that token: the web is one more API client.

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::db::{Db, now};
use crate::error::{Error, Result};
use crate::names::{Names, quote};

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD: usize = 10;
/// Longer ones too (argon2 reads all of it).
pub const MAX_PASSWORD: usize = 1024;

/// A local account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub memberof: Vec<String>,
    pub admin: bool,
}

/// A web session, as found from its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    /// The bearer token the session acts with.
    pub token: String,
    /// The synchronizer token its forms carry.
    pub csrf: String,
    /// The identity chosen with the account switcher.
    pub active: Option<String>,
}

#[derive(Clone)]
pub struct Accounts {
    db: Db,
    names: Names,
}

impl Accounts {
    pub(crate) fn new(db: Db, names: Names) -> Accounts {
        Accounts { db, names }
    }

    /// Adds an account; the first one is an administrator. Blocking (argon2 takes tens of
    /// milliseconds on purpose).
    pub fn add(&self, name: &str, password: &str, memberof: &[String]) -> Result<Account> {
        let name = self.names.repository(name)?.to_string();
        for repository in memberof {
            self.names.repository(repository)?;
        }
        let hash = hash_password(password)?;
        let memberof_json = serde_json::to_string(memberof).unwrap_or_else(|_| "[]".into());
        self.db.write_now(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let first: bool = tx.query_row("SELECT count(*) = 0 FROM account", [], |r| r.get(0))?;
            let added = tx.execute(
                "INSERT OR IGNORE INTO account (name, password, memberof, admin, created)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, hash, memberof_json, first, now()],
            )?;
            if added == 0 {
                return Err(Error::Conflict(format!("account {} exists", quote(&name))));
            }
            tx.commit()?;
            Ok(Account {
                name: name.clone(),
                memberof: memberof.to_vec(),
                admin: first,
            })
        })
    }

    /// Changes an account's password and ends its sessions. Blocking.
    pub fn set_password(&self, name: &str, password: &str) -> Result<()> {
        let hash = hash_password(password)?;
        let name = name.to_owned();
        self.db.write_now(move |c| {
            if c.execute(
                "UPDATE account SET password = ?2 WHERE name = ?1",
                params![name, hash],
            )? == 0
            {
                return Err(no_account(&name));
            }
            c.execute("DELETE FROM web_session WHERE user = ?1", [&name])?;
            Ok(())
        })
    }

    /// Removes an account and ends its sessions (tokens it minted stay valid until
    /// revoked: `flisthub token revoke --user`). Blocking.
    pub fn delete(&self, name: &str) -> Result<()> {
        self.db.write_now(|c| {
            if c.execute("DELETE FROM account WHERE name = ?1", [name])? == 0 {
                return Err(no_account(name));
            }
            c.execute("DELETE FROM web_session WHERE user = ?1", [name])?;
            Ok(())
        })
    }

    /// The accounts with administrator rights.
    pub fn administrators(&self) -> Result<Vec<String>> {
        self.db.read_now(|c| {
            let mut stmt = c.prepare("SELECT name FROM account WHERE admin = 1")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The account `name` if `password` is its password. Takes as long for an unknown name.
    pub async fn verify(&self, name: &str, password: &str) -> Result<Option<Account>> {
        if password.len() > MAX_PASSWORD {
            return Ok(None);
        }
        let (name, password) = (name.to_owned(), password.to_owned());
        self.db
            .read(move |c| {
                let row: Option<(String, String, bool)> = c
                    .query_row(
                        "SELECT password, memberof, admin FROM account WHERE name = ?1",
                        [&name],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                // An unknown name is checked against a hash too: the time does not tell.
                let stored = row.as_ref().map_or(DUMMY_HASH, |r| r.0.as_str());
                let good = PasswordHash::new(stored).is_ok_and(|hash| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &hash)
                        .is_ok()
                });
                Ok(row.filter(|_| good).map(|(_, memberof, admin)| Account {
                    name,
                    memberof: serde_json::from_str(&memberof).unwrap_or_default(),
                    admin,
                }))
            })
            .await
    }

    /// Opens a session acting with `token`; the cookie value to give the browser.
    pub async fn open_session(
        &self,
        user: &str,
        token: &str,
        owned: bool,
        ttl: Duration,
    ) -> Result<String> {
        let cookie = random_hex();
        let (id, user, token) = (session_id(&cookie), user.to_owned(), token.to_owned());
        let csrf = random_hex();
        let t = now();
        self.db
            .write(move |c| {
                c.execute(
                    "INSERT INTO web_session (id, user, token, owned, csrf, created, expires)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        id,
                        user,
                        token,
                        owned,
                        csrf,
                        t,
                        t.saturating_add(ttl.as_secs() as i64)
                    ],
                )?;
                // Expired sessions go when new ones come.
                c.execute("DELETE FROM web_session WHERE expires < ?1", [t])?;
                Ok(())
            })
            .await?;
        Ok(cookie)
    }

    /// The live session of a cookie.
    pub async fn session(&self, cookie: &str) -> Result<Option<Session>> {
        let id = session_id(cookie);
        self.db
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT user, token, csrf, active FROM web_session
                     WHERE id = ?1 AND expires >= ?2",
                    params![id, now()],
                    |r| {
                        Ok(Session {
                            user: r.get(0)?,
                            token: r.get(1)?,
                            csrf: r.get(2)?,
                            active: r.get(3)?,
                        })
                    },
                )
                .optional()?)
            })
            .await
    }

    /// Ends a session; the token it minted, if any, to revoke.
    pub async fn end_session(&self, cookie: &str) -> Result<Option<String>> {
        let id = session_id(cookie);
        self.db
            .write(move |c| {
                let owned: Option<(String, bool)> = c
                    .query_row(
                        "DELETE FROM web_session WHERE id = ?1 RETURNING token, owned",
                        [&id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                Ok(owned.filter(|(_, owned)| *owned).map(|(token, _)| token))
            })
            .await
    }

    /// Sets the identity a session acts as (checked by the authenticator on each request).
    pub async fn set_active(&self, cookie: &str, active: Option<String>) -> Result<()> {
        let id = session_id(cookie);
        self.db
            .write(move |c| {
                c.execute(
                    "UPDATE web_session SET active = ?2 WHERE id = ?1",
                    params![id, active],
                )?;
                Ok(())
            })
            .await
    }
}

/// A hash of a password nobody has, checked when the name is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8t/2bWzrWbpRnj2tSP7KaE9WS6SgV+Qh1V8WFv5OuDs";

fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(Error::BadRequest(format!(
            "a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::Internal(format!("password salt: {e}")))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| Error::Internal(format!("password hash: {e}")))?
        .to_string())
}

fn no_account(name: &str) -> Error {
    Error::NotFound(format!("no account {}", quote(name)))
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn session_id(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
