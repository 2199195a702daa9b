//! What a request for an image names, and why one failed: the platform, the registry
//! credentials and the failure kinds. Outside the `images` feature, so that a crate that
//! only checks such values (the hub's configuration) links no registry client.

use std::str::FromStr;

use crate::error::{Error, Result};

/// Why an image could not be converted, for callers that answer differently to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFailure {
    /// The image reference cannot be parsed.
    Reference,
    /// No such image, tag or digest.
    NotFound,
    /// Access refused: by the registry (or daemon), which wants other credentials or
    /// some; or by the request's egress rule ([`Egress`]), before anything was fetched.
    Denied,
    /// The registry or daemon does not answer, or failed.
    Unreachable,
    /// What it sent is not a valid image (a digest that does not match, a bad manifest).
    Invalid,
    /// The image exists, but not for the platform asked.
    Platform,
}

/// An operating system and CPU architecture: `linux/amd64`, `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn linux_amd64() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    /// Whether an image for `other` serves a request for this platform (a request without
    /// a variant takes any).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(text: &str) -> Result<Platform> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, architecture] | [os, architecture, _]
                if !os.is_empty() && !architecture.is_empty() =>
            {
                Ok(Platform {
                    os: (*os).to_owned(),
                    architecture: (*architecture).to_owned(),
                    variant: parts
                        .get(2)
                        .map(|v| (*v).to_owned())
                        .filter(|v| !v.is_empty()),
                })
            }
            _ => Err(Error::image(
                ImageFailure::Platform,
                format!("{text:?} is not a platform such as linux/amd64 or linux/arm64/v8"),
            )),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Registry credentials. Never shown, logged or recorded in an flist.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}
