//! A retention policy (`[retention]`'s `default` and `repositories`, and the admin API's),
//! as written and as checked; the hub applies it (`hub::retention`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

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

    fn try_from(written: Written) -> Result<Policy, String> {
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
