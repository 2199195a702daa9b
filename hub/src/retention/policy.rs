//! Where each repository's retention policy comes from, and the policies set through the
//! admin API (`retention_policy`). The policy itself is the configuration's
//! ([`hubconfig::Policy`]).

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

pub use hubconfig::Policy;

use crate::error::Result;

/// Where a repository's policy comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Set through the admin API.
    Api,
    /// `[retention.repositories]`.
    Config,
    /// `[retention] default`.
    Default,
}

impl Origin {
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Api => "set through the API",
            Origin::Config => "configured",
            Origin::Default => "the configured default",
        }
    }
}

/// A repository's policy and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assigned {
    pub repository: String,
    pub policy: Policy,
    pub origin: Origin,
}

impl Assigned {
    /// What the change log records as the reason of a deletion.
    pub fn reason(&self) -> String {
        format!(
            "retention policy of {} ({}): {}",
            self.repository,
            self.origin.describe(),
            self.policy
        )
    }
}

/// The policy set through the API for `repository`.
pub(super) fn read(c: &Connection, repository: &str) -> Result<Option<Policy>> {
    let json: Option<String> = c
        .prepare_cached("SELECT policy FROM retention_policy WHERE repository = ?1")?
        .query_row([repository], |r| r.get(0))
        .optional()?;
    json.map(|json| decode(&json)).transpose()
}

/// Every policy set through the API, by repository.
pub(super) fn read_all(c: &Connection) -> Result<Vec<(String, Policy)>> {
    let mut stmt =
        c.prepare_cached("SELECT repository, policy FROM retention_policy ORDER BY repository")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    rows.map(|row| {
        let (repository, json) = row?;
        Ok((repository, decode(&json)?))
    })
    .collect()
}

pub(super) fn write(
    c: &Connection,
    repository: &str,
    policy: &Policy,
    actor: &str,
    t: i64,
) -> Result<()> {
    let json =
        serde_json::to_string(policy).map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    c.execute(
        "INSERT OR REPLACE INTO retention_policy (repository, policy, set_by, updated)
         VALUES (?1, ?2, ?3, ?4)",
        params![repository, json, actor, t],
    )?;
    Ok(())
}

/// Whether there was one.
pub(super) fn remove(c: &Connection, repository: &str) -> Result<bool> {
    Ok(c.execute(
        "DELETE FROM retention_policy WHERE repository = ?1",
        [repository],
    )? > 0)
}

fn decode(json: &str) -> Result<Policy> {
    serde_json::from_str(json)
        .map_err(|e| crate::error::Error::Internal(format!("a kept retention policy: {e}")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse(json: &str) -> std::result::Result<Policy, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn policies_are_checked_and_written_back_alike() {
        let policy = parse(r#"{"keep": 10, "max-age": "30d"}"#).unwrap();
        assert_eq!(policy.keep, Some(10));
        assert_eq!(policy.max_age, Some(Duration::from_secs(30 * 86_400)));
        let back = serde_json::to_string(&policy).unwrap();
        assert_eq!(parse(&back).unwrap(), policy);
        for (bad, says) in [
            ("{}", "needs keep, max-age or both"),
            (r#"{"keep": 0}"#, "between 1 and"),
            (r#"{"max-age": "soon"}"#, "not a duration"),
            (r#"{"max-age": "1s"}"#, "between a minute"),
            (r#"{"keep": 1, "kept": 2}"#, "unknown field"),
            (r#"{"keep": -1}"#, "invalid value"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn an_flist_goes_when_no_rule_keeps_it() {
        let now = 1_000_000;
        let day = 86_400;
        let keep = Policy {
            keep: Some(2),
            max_age: None,
        };
        assert!(!keep.expires(1, 0, now));
        assert!(keep.expires(2, now, now));
        let age = Policy {
            keep: None,
            max_age: Some(Duration::from_secs(day as u64)),
        };
        assert!(!age.expires(99, now - day + 1, now));
        assert!(age.expires(0, now - day - 1, now));
        let both = Policy {
            keep: Some(2),
            max_age: Some(Duration::from_secs(day as u64)),
        };
        assert!(!both.expires(5, now, now), "young: kept");
        assert!(!both.expires(0, 0, now), "among the newest: kept");
        assert!(both.expires(2, 0, now));
    }
}
