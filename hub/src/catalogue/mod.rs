//! The catalogue: everything anyone may read of the hub, answered as plain values. The
//! HTTP routes of 0-hub's public API, downloads and the web pages all read through it; it
//! checks the names it is given, and nothing it answers can change the namespace.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use chunkstore::{ChunkReader, ChunkStore};
use hubapi::changes::ChangeFeed;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::blobs::Digest256;
use crate::config::{Config, LimitsConfig};
use crate::error::{Error, Result};
use crate::formats::{AnyFlist, Format};
use crate::inspect::Stats;
use crate::inspect::{self, ContentsCache};
use crate::names::{self, Names, quote};
use crate::namespace::{
    Hit, Info, Listed, Namespace, Referrer, RepositoryFigures, Resolved, Share, Source, Target,
    Totals, shown,
};
use crate::renditions::Renditions;

mod diff;
mod files;
mod tree;
pub use diff::{Diff, DiffRow, Difference};
pub use files::InnerFile;
pub use tree::{BrowseQuery, Browsed, TreeEntry};

/// Change-feed records a page holds at most.
pub const FEED_PAGE_LIMIT: usize = 1_000;

/// 0-hub's `backend` metadata: where a node reads the chunks, as host, port, namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backend {
    pub host: String,
    pub port: u16,
    pub namespace: String,
}

/// Where the chunks of the flists this hub publishes can be read, as flists record it.
#[derive(Debug, Clone, Default)]
pub struct ChunkLocation {
    /// Store URLs recorded in the flists' `routes`.
    pub routes: Vec<String>,
    /// The first route as 0-hub's `backend`, when it is a 0-db.
    pub backend: Option<Backend>,
}

impl ChunkLocation {
    /// The metadata that tells a reader of an flist where its chunks are: `routes`, and
    /// 0-hub's `backend` for a 0-db.
    pub fn metadata(&self) -> flist::Metadata {
        let mut metadata = flist::Metadata::new();
        if !self.routes.is_empty() {
            metadata.set_routes(&self.routes);
        }
        if let Some(backend) = &self.backend {
            metadata.set(
                "backend",
                serde_json::to_string(backend).unwrap_or_default(),
            );
        }
        metadata
    }
}

/// A repository as `/api/repositories` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositoryView {
    pub name: String,
    pub official: bool,
    pub updated: i64,
}

/// What `.txt` and `.json` say of an flist.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub flist: String,
    pub uploader: String,
    pub source: String,
    pub storage: String,
    pub checksum: String,
    pub sha256: String,
    pub size: u64,
}

/// A repository on the home page: its figures, and whether it is official.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySummary {
    pub figures: RepositoryFigures,
    pub official: bool,
}

/// Everything the preview page of an flist shows.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The name as asked, and what it is.
    pub info: Info,
    /// The flist it resolves to.
    pub resolved: Resolved,
    /// Who made the entry.
    pub author: Option<String>,
    pub stats: Stats,
    /// Entries of every kind.
    pub entries: u64,
    /// The metadata as `/metadata` answers it.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// The symlinks and tag members naming the flist the name resolves to.
    pub referrers: Vec<Referrer>,
    /// The files made of it for Zero-OS nodes (0-flist, fl), once made.
    pub renditions: Vec<Digest256>,
    /// How the flist it resolves to came in, when the hub recorded it.
    pub source: Option<Source>,
    /// How much of its content other published files hold (native files only).
    pub share: Option<Share>,
}

/// A contents dump: kept whole (small ones are cached by the flist's sha256), or coming in
/// pieces while the flist is walked.
pub enum Contents {
    Whole(Bytes),
    Pieces(mpsc::Receiver<Bytes>),
}

/// Which file a download of a native flist's `.flist` name asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// What every 0-hub client expects: the 0-flist rendition where there is one.
    Default,
    /// flisthub's own format (`Accept: application/vnd.flisthub.flist`).
    Native,
}

pub struct Catalogue {
    names: Names,
    namespace: Arc<Namespace>,
    renditions: Arc<Renditions>,
    contents: Arc<ContentsCache>,
    /// The repositories marked official ([`Config::official_repositories`]).
    official: Vec<String>,
    public_url: String,
    location: ChunkLocation,
    /// What files the hub holds may be (their readers are bounded by them).
    limits: LimitsConfig,
    /// Reads the content of files inside flists, each chunk checked.
    reader: ChunkReader,
}

impl Catalogue {
    pub(crate) fn new(
        config: &Config,
        names: Names,
        namespace: Arc<Namespace>,
        renditions: Arc<Renditions>,
        location: ChunkLocation,
        store: Arc<dyn ChunkStore>,
    ) -> Catalogue {
        Catalogue {
            names,
            namespace,
            renditions,
            contents: Arc::default(),
            official: config.official_repositories(),
            public_url: config.public_url(),
            location,
            limits: config.limits.clone(),
            reader: ChunkReader::new(store),
        }
    }

    /// Whether repository `name` is marked official.
    pub fn official(&self, name: &str) -> bool {
        self.official.iter().any(|r| r == name)
    }

    /// A number that changes with every change of the namespace (what was read under one
    /// value may be shown until it changes).
    pub fn generation(&self) -> u64 {
        self.namespace.generation()
    }

    /// Every repository with its figures, by name.
    pub async fn repository_summaries(&self) -> Result<Vec<RepositorySummary>> {
        Ok(self
            .namespace
            .repository_figures()
            .await?
            .into_iter()
            .map(|figures| RepositorySummary {
                official: self.official(&figures.name),
                figures,
            })
            .collect())
    }

    /// Figures of the whole hub.
    pub async fn totals(&self) -> Result<Totals> {
        self.namespace.totals().await
    }

    /// Repositories, names and tags containing `text`: `limit` hits from `offset`. The text
    /// is bounded by the longest name a hub accepts.
    pub async fn search(&self, text: &str, offset: u64, limit: u64) -> Result<Vec<Hit>> {
        if text.len() > self.names.max_len {
            return Err(Error::BadRequest("search text longer than any name".into()));
        }
        self.namespace.search(text, offset, limit).await
    }

    /// What the preview page shows of a name: two reads, run together (the entry's
    /// answer is usually cached).
    pub async fn preview(&self, repository: &str, name: &str) -> Result<Preview> {
        let (repo, flist) = (self.names.repository(repository)?, self.names.flist(name)?);
        let info = self.namespace.info(&repo, &flist).await?;
        let resolved = info
            .resolved
            .clone()
            .ok_or_else(|| Error::NotFound("source not found".into()))?;
        let (page, renditions) = tokio::try_join!(
            self.namespace.page((&repo, &flist), &resolved),
            self.renditions(&resolved)
        )?;
        Ok(Preview {
            renditions,
            info,
            author: page.author,
            stats: page.facts.stats,
            entries: page.facts.entries,
            metadata: inspect::metadata_json(&page.facts.metadata, self.location.backend.as_ref()),
            resolved,
            referrers: page.referrers,
            source: page.source,
            share: page.share,
        })
    }

    /// Every repository with its last change, by name.
    pub async fn repositories(&self) -> Result<Vec<RepositoryView>> {
        Ok(self
            .namespace
            .repositories()
            .await?
            .into_iter()
            .map(|(name, updated)| RepositoryView {
                official: self.official(&name),
                name,
                updated,
            })
            .collect())
    }

    /// `repo/entry` for every entry of every repository (ZOS's health check).
    pub async fn all_entries(&self) -> Result<Vec<String>> {
        self.namespace.all_entries().await
    }

    /// Every repository's listing.
    pub async fn files_list(&self) -> Result<Vec<(String, Vec<Listed>)>> {
        self.namespace.list_all().await
    }

    /// A repository's listing; 404 `user not found` if there is none.
    pub async fn repository(&self, repository: &str) -> Result<Vec<Listed>> {
        let repository = self.names.repository(repository)?;
        self.namespace
            .list(&repository)
            .await?
            .ok_or_else(|| Error::NotFound("user not found".into()))
    }

    /// The members of a tag.
    pub async fn tag(&self, repository: &str, tag: &str) -> Result<Vec<Listed>> {
        let (repository, tag) = (self.names.repository(repository)?, self.names.tag(tag)?);
        self.namespace.list_tag(&repository, &tag).await
    }

    /// What `light` shows of a name (`.flist` appended if missing).
    pub async fn info(&self, repository: &str, name: &str) -> Result<Info> {
        let (repository, name) = (self.names.repository(repository)?, self.names.flist(name)?);
        self.namespace.info(&repository, &name).await
    }

    /// The flist a name resolves to. Errors are 0-hub's: `user not found`, `source not
    /// found`.
    pub async fn resolve(&self, repository: &str, name: &str) -> Result<Resolved> {
        let (repository, name) = (self.names.repository(repository)?, self.names.flist(name)?);
        self.namespace.resolve(&repository, &name).await
    }

    /// The flist a member of a tag resolves to.
    pub async fn resolve_in_tag(
        &self,
        repository: &str,
        tag: &str,
        name: &str,
    ) -> Result<Resolved> {
        let repository = self.names.repository(repository)?;
        let (tag, name) = (self.names.tag(tag)?, self.names.flist(name)?);
        self.namespace
            .resolve_in_tag(&repository, &tag, &name)
            .await
    }

    /// The tag a taglink points at.
    pub async fn taglink(&self, repository: &str, name: &str) -> Result<Target> {
        let (repository, name) = (
            self.names.repository(repository)?,
            self.names.taglink(name)?,
        );
        self.namespace.taglink(&repository, &name).await
    }

    /// The file a download name (`<name>.flist` or `<name>.fl`) serves: `x.fl` is the fl
    /// file `x` is, or the fl rendition of the native flist `x`; `x.flist` is the 0-flist
    /// `x` is, or for a native flist its 0-flist rendition (what every Zero-OS reader
    /// expects there), or the native file itself when asked for ([`Wanted::Native`]) or
    /// when its renditions are not made (yet, or at all: the gateway is off).
    pub async fn resolve_download(
        &self,
        repository: &str,
        file: &str,
        wanted: Wanted,
    ) -> Result<Resolved> {
        let resolved = self.resolve(repository, file).await?;
        self.served(file, resolved, wanted).await
    }

    /// [`Catalogue::resolve_download`] through a tag.
    pub async fn resolve_download_in_tag(
        &self,
        repository: &str,
        tag: &str,
        file: &str,
        wanted: Wanted,
    ) -> Result<Resolved> {
        let resolved = self.resolve_in_tag(repository, tag, file).await?;
        self.served(file, resolved, wanted).await
    }

    /// Opens the file a download name serves: the file stays readable whatever happens
    /// to the name afterwards.
    pub async fn open(
        &self,
        repository: &str,
        file: &str,
        wanted: Wanted,
    ) -> Result<(Resolved, File)> {
        self.namespace
            .open_file(
                || self.resolve_download(repository, file, wanted),
                open_file,
            )
            .await
    }

    /// [`Catalogue::open`] through a tag.
    pub async fn open_in_tag(
        &self,
        repository: &str,
        tag: &str,
        file: &str,
        wanted: Wanted,
    ) -> Result<(Resolved, File)> {
        self.namespace
            .open_file(
                || self.resolve_download_in_tag(repository, tag, file, wanted),
                open_file,
            )
            .await
    }

    /// The renditions made of the flist `resolved` is (none for a hosted legacy file).
    pub async fn renditions(&self, resolved: &Resolved) -> Result<Vec<Digest256>> {
        if resolved.digest.format != Format::Native {
            return Ok(Vec::new());
        }
        self.renditions.of(&resolved.digest.sha256).await
    }

    /// The file a download of `file` serves, `resolved` being what its name means.
    async fn served(&self, file: &str, mut resolved: Resolved, wanted: Wanted) -> Result<Resolved> {
        let format = resolved.digest.format;
        let rendition = match (format, file.ends_with(names::FL_SUFFIX)) {
            (Format::Fl, true) | (Format::ZeroFlist, false) => return Ok(resolved),
            (Format::Native, false) if wanted == Wanted::Native => return Ok(resolved),
            (Format::Native, false) => Format::ZeroFlist,
            (Format::Native, true) => Format::Fl,
            (Format::Fl, false) | (Format::ZeroFlist, true) => {
                return Err(Error::NotFound(format!(
                    "source not found: this flist is served as {}",
                    quote(&shown(&resolved.name, Some(format)))
                )));
            }
        };
        match self
            .renditions
            .rendition(&resolved.digest.sha256, rendition)
            .await?
        {
            Some(digest) => {
                resolved.digest = digest;
                Ok(resolved)
            }
            None if rendition == Format::ZeroFlist => Ok(resolved),
            None => Err(Error::NotFound(format!(
                "source not found: {} has no fl rendition (yet, or the hub's 0-db gateway is off)",
                quote(&shown(&resolved.name, Some(format)))
            ))),
        }
    }

    /// The contents dump of `GET /api/flist/<repo>/<flist>`.
    pub async fn contents(&self, repository: &str, name: &str) -> Result<Contents> {
        let resolved = self.resolve(repository, name).await?;
        if let Some(cached) = self.contents.get(&resolved.digest.sha256) {
            return Ok(Contents::Whole(cached));
        }
        let format = resolved.digest.format;
        let limits = self.limits.clone();
        let open = move |path: &Path| AnyFlist::open(path, format, &limits);
        let (resolved, flist) = self
            .namespace
            .open_file(|| self.resolve(repository, name), open)
            .await?;
        let (tx, rx) = mpsc::channel(4);
        let cache = Arc::clone(&self.contents);
        tokio::task::spawn_blocking(move || {
            let mut out = inspect::PieceWriter::new(tx, cache.entry_limit());
            match inspect::write_contents(&flist, &mut out).and_then(|()| out.finish()) {
                Ok(Some(whole)) => cache.put(&resolved.digest.sha256, whole.into()),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "contents dump not finished"),
            }
        });
        Ok(Contents::Pieces(rx))
    }

    /// The metadata of `GET /api/flist/<repo>/<flist>/metadata`, as recorded when the file
    /// was published (bounded then by the limits).
    pub async fn metadata(
        &self,
        repository: &str,
        name: &str,
    ) -> Result<BTreeMap<String, serde_json::Value>> {
        let resolved = self.resolve(repository, name).await?;
        let facts = self.namespace.facts(&resolved.digest.sha256).await?;
        Ok(inspect::metadata_json(
            &facts.metadata,
            self.location.backend.as_ref(),
        ))
    }

    /// What `.txt` and `.json` say of a name.
    /// Its checksum is the md5 of what a `.flist` download serves by default.
    pub async fn summary(&self, repository: &str, name: &str) -> Result<Summary> {
        let mut resolved = self.resolve(repository, name).await?;
        if resolved.digest.format == Format::Native
            && let Some(rendition) = self
                .renditions
                .rendition(&resolved.digest.sha256, Format::ZeroFlist)
                .await?
        {
            resolved.digest = rendition;
        }
        let storage = match (&self.location.backend, self.location.routes.first()) {
            (Some(b), _) => format!("zdb://{}:{}", b.host, b.port),
            (None, Some(route)) => route.clone(),
            (None, None) => "this hub's own store".into(),
        };
        Ok(Summary {
            flist: resolved.name.clone(),
            uploader: repository.to_owned(),
            source: self.url_of(&resolved.repository, &resolved.name),
            storage,
            checksum: resolved.digest.md5.clone(),
            sha256: resolved.digest.sha256.clone(),
            size: resolved.digest.size,
        })
    }

    /// A page of the change feed: up to `limit` changes after `after`; who made them only
    /// for administrators.
    pub async fn changes(&self, after: u64, limit: usize, admin: bool) -> Result<ChangeFeed> {
        let limit = limit.clamp(1, FEED_PAGE_LIMIT);
        let mut changes = self.namespace.changes(after, limit).await?;
        if !admin {
            for change in &mut changes {
                change.actor = None;
            }
        }
        let next = changes.last().map_or(after, |c| c.seq);
        Ok(ChangeFeed { changes, next })
    }

    /// Where the chunks of the flists published here can be read.
    pub fn chunk_location(&self) -> &ChunkLocation {
        &self.location
    }

    /// The public URL of a download.
    pub fn url_of(&self, repository: &str, name: &str) -> String {
        format!(
            "{}/{}/{}",
            self.public_url,
            encode_segment(repository),
            encode_segment(name)
        )
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }
}

fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io(path.display(), e))
}

/// Percent-encodes a path segment (names may hold spaces, `#`, `?`, `%`, unicode).
pub fn encode_segment(segment: &str) -> String {
    encode_bytes(segment.as_bytes())
}

/// Percent-encodes bytes as a path segment: every byte but the unreserved and a few
/// sub-delimiters, so `/` too (names inside flists need not be UTF-8).
pub fn encode_bytes(segment: &[u8]) -> String {
    let mut out = String::with_capacity(segment.len());
    for &byte in segment {
        if byte.is_ascii_alphanumeric() || b"-._~:@!$()*+,;=".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The bytes a percent-encoded path segment (or path) stands for.
pub fn decode_bytes(encoded: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(encoded).collect()
}

/// The text a percent-encoded segment stands for, if it is UTF-8.
pub fn decode_text(encoded: &str) -> Option<String> {
    String::from_utf8(decode_bytes(encoded)).ok()
}
