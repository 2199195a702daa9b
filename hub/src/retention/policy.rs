//! A retention policy, where each repository's comes from, and the policies set through
//! the admin API (`retention_policy`).

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Flists kept at most by `keep` (a bound on what a policy can say, not a limit anyone
/// should meet).
const KEEP_AT_MOST: u64 = 1_000_000;
/// Longest `max-age`: a hundred years.
const AGE_AT_MOST: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Which flists of a repository stay: the newest `keep`, and those published within
/// `max-age`. An flist goes when no rule keeps it (and nothing links to it). At least one
/// rule is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Written", into = "Written")]
pub struct Policy {
    pub keep: Option<u64>,
    pub max_age: Option<Duration>,
}

/// A policy as configuration files and the API write it: `{"keep": 10, "max-age": "30d"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Written {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keep: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age: Option<String>,
}

impl TryFrom<Written> for Policy {
    type Error = String;

    fn try_from(written: Written) -> std::result::Result<Policy, String> {
        if written.keep.is_none() && written.max_age.is_none() {
            return Err("a retention policy needs keep, max-age or both".into());
        }
        if let Some(keep) = written.keep
            && !(1..=KEEP_AT_MOST).contains(&keep)
        {
            return Err(format!(
                "keep = {keep}: must be between 1 and {KEEP_AT_MOST}"
            ));
        }
        let max_age = match written.max_age {
            None => None,
            Some(text) => {
                let age = humantime::parse_duration(&text).map_err(|e| {
                    format!("max-age {text:?} is not a duration such as 12h or 30d: {e}")
                })?;
                if age < Duration::from_secs(60) || age > AGE_AT_MOST {
                    return Err(format!(
                        "max-age {text:?}: must be between a minute and a hundred years"
                    ));
                }
                Some(age)
            }
        };
        Ok(Policy {
            keep: written.keep,
            max_age,
        })
    }
}

impl From<Policy> for Written {
    fn from(policy: Policy) -> Written {
        Written {
            keep: policy.keep,
            max_age: policy
                .max_age
                .map(|age| humantime::format_duration(age).to_string()),
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rules = Vec::new();
        if let Some(keep) = self.keep {
            rules.push(format!("keep {keep}"));
        }
        if let Some(age) = self.max_age {
            rules.push(format!("max-age {}", humantime::format_duration(age)));
        }
        f.write_str(&rules.join(", "))
    }
}

impl Policy {
    /// Whether the flist at `rank` (0: the newest) published at `mtime` goes at `now`,
    /// links aside.
    pub fn expires(&self, rank: usize, mtime: i64, now: i64) -> bool {
        let beyond_keep = self.keep.is_none_or(|keep| rank as u64 >= keep);
        let too_old = self.max_age.is_none_or(|age| {
            mtime < now.saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX))
        });
        beyond_keep && too_old
    }
}

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
