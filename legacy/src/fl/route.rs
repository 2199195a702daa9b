//! The `route` table of an fl file: which store holds the blocks whose id starts with a
//! byte in `start..=end`.

use crate::error::{Error, Result};

/// One row of `route`. Overlapping ranges are replicas; rfs tries them in random order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub start: u8,
    pub end: u8,
    /// A store URL rfs 2.0.6 reads: `zdb://[user[:password]@]host[:port][/namespace]`, or
    /// `s3://`, `s3s://`, `s3s+tls://`.
    pub url: String,
}

impl Route {
    /// A route for every block.
    pub fn all(url: impl Into<String>) -> Route {
        Route {
            start: 0,
            end: 255,
            url: url.into(),
        }
    }

    /// Checks that the route names a store another machine can read: a `dir://` route (or a
    /// `zdb://` one without a host, which is a local socket) is [`Error::LocalRoute`]; an
    /// unparsable URL, a scheme rfs 2.0.6 does not know or an empty range is
    /// [`Error::Route`].
    pub fn check(&self) -> Result<()> {
        let refuse = |reason: String| Error::Route {
            url: self.url.clone(),
            reason,
        };
        if self.start > self.end {
            return Err(refuse(format!(
                "the range {}-{} is empty",
                self.start, self.end
            )));
        }
        let url = url::Url::parse(&self.url).map_err(|e| refuse(e.to_string()))?;
        let local = || Error::LocalRoute {
            url: self.url.clone(),
        };
        match url.scheme() {
            "dir" => Err(local()),
            "zdb" if url.host().is_none() => Err(local()),
            "zdb" | "s3" | "s3s" | "s3s+tls" => Ok(()),
            other => Err(refuse(format!("{other:?} is not a store rfs 2.0.6 reads"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_unknown_stores_are_refused() {
        assert!(Route::all("zdb://hub.example:9900/ns").check().is_ok());
        assert!(Route::all("zdb://user:pw@10.0.0.1").check().is_ok());
        assert!(
            Route::all("s3s://key:secret@s3.example/bucket")
                .check()
                .is_ok()
        );
        for local in ["dir:///var/lib/blocks", "zdb:///run/zdb.sock"] {
            assert!(matches!(
                Route::all(local).check(),
                Err(Error::LocalRoute { .. })
            ));
        }
        for bad in ["http://hub.example/blocks", "not a url", "file:///etc"] {
            assert!(matches!(Route::all(bad).check(), Err(Error::Route { .. })));
        }
        let backwards = Route {
            start: 9,
            end: 3,
            url: "zdb://h".into(),
        };
        assert!(backwards.check().is_err());
    }
}
