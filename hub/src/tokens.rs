//! The tokens this hub mints (HS256 JWTs signed with the secret in the data directory) and
//! the revocation of any token, minted here or not.
//!
//! A minted token carries `iss = "flisthub"`, `sub` (the user), `memberof` (the
//! repositories it may also act as), `iat`, `exp` and `jti`. It is valid only while its
//! `jti` has a row in `token` that is neither revoked nor expired, so a stolen or leaked
//! token can be switched off one by one (0-hub could only rotate its single seed).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use hubtokens::{Claims, HUB_ISSUER, Signer, foreign_token_id};
use rand::RngCore;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::db::{Db, now};
use crate::error::{Error, Result};
use crate::names::{Names, quote};

/// Bytes of a generated secret; a configured one must have at least this many.
const SECRET_LEN: usize = 32;

/// A minted token as `token list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub user: String,
    pub memberof: Vec<String>,
    pub created: i64,
    pub expires: i64,
    pub revoked: Option<i64>,
    pub note: Option<String>,
}

/// Reads the signing secret at `path`, creating it (private to the owner) on first use.
pub fn load_or_create_secret(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(secret) if secret.len() >= SECRET_LEN => return Ok(secret),
        Ok(secret) => {
            return Err(Error::Config(format!(
                "{}: a token secret needs at least {SECRET_LEN} bytes, this one has {}",
                path.display(),
                secret.len()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path.display(), e)),
    }
    let mut secret = vec![0u8; SECRET_LEN];
    rand::rng().fill_bytes(&mut secret);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
    // Written under a temporary name, then linked into place: two processes starting at
    // once end up with the same secret (the loser reads the winner's).
    let mut tmp = tempfile::Builder::new()
        .prefix(".token-secret")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir.display(), e))?;
    tmp.write_all(&secret)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io(tmp.path().display(), e))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            tracing::info!(path = %path.display(), "created the token signing secret");
            Ok(secret)
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(path).map_err(|e| Error::io(path.display(), e))
        }
        Err(e) => Err(Error::io(path.display(), e.error)),
    }
}

/// Minting, listing and revoking tokens.
pub struct Tokens {
    db: Db,
    signer: Signer,
    names: Names,
    max_ttl: Duration,
}

impl Tokens {
    pub fn new(db: Db, secret: &[u8], names: Names, max_ttl: Duration) -> Tokens {
        Tokens {
            db,
            signer: Signer::new(secret),
            names,
            max_ttl,
        }
    }

    /// Mints a token for `user`, also allowed to act as the `memberof` repositories.
    /// Returns its record and the token itself. Blocking.
    pub fn create(
        &self,
        user: &str,
        memberof: &[String],
        ttl: Duration,
        note: Option<&str>,
    ) -> Result<(TokenRecord, String)> {
        let user = self.names.repository(user)?.to_string();
        for repository in memberof {
            self.names.repository(repository)?;
        }
        if ttl.is_zero() || ttl > self.max_ttl {
            return Err(Error::BadRequest(format!(
                "a token lives between 1 second and {} (auth.max-token-ttl)",
                humantime::format_duration(self.max_ttl)
            )));
        }
        let created = now();
        let claims = Claims {
            iss: HUB_ISSUER.into(),
            sub: user,
            memberof: memberof.to_vec(),
            iat: created,
            exp: created.saturating_add(ttl.as_secs() as i64),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let token = self.signer.sign(&claims)?;
        let record = TokenRecord {
            id: claims.jti,
            user: claims.sub,
            memberof: claims.memberof,
            created,
            expires: claims.exp,
            revoked: None,
            note: note.map(str::to_owned),
        };
        let memberof_json = serde_json::to_string(&record.memberof).unwrap_or_default();
        self.db.write_now(|c| {
            c.execute(
                "INSERT INTO token (id, subject, memberof, created, expires, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![record.id, record.user, memberof_json, record.created, record.expires, record.note],
            )?;
            Ok(())
        })?;
        Ok((record, token))
    }

    /// How many tokens were minted here (revoked and expired ones included). Blocking.
    pub fn minted(&self) -> Result<u64> {
        self.db.read_now(|c| {
            Ok(c.query_row("SELECT count(*) FROM token", [], |r| r.get::<_, i64>(0))? as u64)
        })
    }

    /// Every minted token, newest first. Blocking.
    pub fn list(&self) -> Result<Vec<TokenRecord>> {
        self.db.read_now(|c| {
            let mut stmt = c.prepare(
                "SELECT id, subject, memberof, created, expires, revoked, note FROM token ORDER BY created DESC, id",
            )?;
            let rows = stmt.query_map([], |r| {
                let memberof: String = r.get(2)?;
                Ok(TokenRecord {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    memberof: serde_json::from_str(&memberof).unwrap_or_default(),
                    created: r.get(3)?,
                    expires: r.get(4)?,
                    revoked: r.get(5)?,
                    note: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Revokes one token: a minted token's id, or any token given whole (a JWT of an
    /// issuer, a 0-hub token). Returns what was revoked. Blocking.
    pub fn revoke(&self, id_or_token: &str) -> Result<String> {
        let t = now();
        let minted = self.db.write_now(|c| {
            Ok(c.execute(
                "UPDATE token SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
                params![id_or_token, t],
            )? > 0
                || c.query_row("SELECT 1 FROM token WHERE id = ?1", [id_or_token], |_| {
                    Ok(())
                })
                .optional()?
                .is_some())
        })?;
        if minted {
            return Ok(format!("token {id_or_token}"));
        }
        let id = foreign_token_id(id_or_token).ok_or_else(|| {
            Error::NotFound(format!(
                "{} is neither the id of a token minted here nor a token",
                quote(id_or_token.get(..40).unwrap_or(id_or_token))
            ))
        })?;
        if let Some(jti) = id.strip_prefix(&format!("{HUB_ISSUER} ")) {
            // A whole token minted here: revoke it by its id.
            return self.revoke(jti);
        }
        self.db.write_now(|c| {
            c.execute(
                "INSERT OR IGNORE INTO revoked_token (id, revoked) VALUES (?1, ?2)",
                params![id, t],
            )?;
            Ok(())
        })?;
        Ok(format!("token {id}"))
    }

    /// Revokes every token of `user` issued until now, minted here (each by its id, so a
    /// token minted afterwards, even in the same second, is valid) or elsewhere (by issue
    /// time: one issued up to the current second is refused). Returns how many minted
    /// tokens that revoked. Blocking.
    pub fn revoke_user(&self, user: &str) -> Result<usize> {
        let t = now();
        self.db.write_now(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE token SET revoked = ?2 WHERE subject = ?1 AND revoked IS NULL",
                params![user, t],
            )?;
            tx.execute(
                "INSERT INTO revoked_subject (subject, before) VALUES (?1, ?2)
                 ON CONFLICT (subject) DO UPDATE SET before = excluded.before",
                params![user, t],
            )?;
            tx.commit()?;
            Ok(n)
        })
    }
}
