//! 0-hub's public directory read as it laid it out (reference section 3): a directory per
//! repository holding flist files, symlinks (`x.flist`, `../repo/x.flist`), taglinks
//! (`../repo/.tag-t`) and `.tag-<name>` directories of member links; with the times 0-hub
//! showed, which are file times (`lstat` of the repository directory, of each link and tag
//! directory; the file's own mtime).
//!
//! Nothing is read beyond names, link texts and times here; what a name or link cannot
//! become in flisthub's namespace is set aside with the reason.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::names::{FL_SUFFIX, FLIST_SUFFIX, FlistName, Names, RepoName, TagName, TaglinkName};

/// What the tree holds, by repository name.
#[derive(Debug, Default)]
pub struct Tree {
    pub repositories: Vec<Repository>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug)]
pub struct Repository {
    pub name: RepoName,
    /// `lstat` of its directory.
    pub updated: i64,
    pub files: Vec<FileEntry>,
    pub links: Vec<Link>,
    pub taglinks: Vec<Taglink>,
    pub tags: Vec<Tag>,
}

/// A regular file named as an flist.
#[derive(Debug, Clone)]
pub struct FileEntry {
    pub name: FlistName,
    /// Whether its name ends in `.fl` (an rfs fl file's) rather than `.flist`.
    pub fl_name: bool,
    pub path: PathBuf,
    pub mtime: i64,
}

/// A symlink to an flist, or a tag member.
#[derive(Debug, Clone)]
pub struct Link {
    pub name: FlistName,
    /// The link's own place, for messages.
    pub path: PathBuf,
    /// The link text, for messages.
    pub text: String,
    /// The flist it names: `None` for a plain `x.flist` (its own repository, made by
    /// 0-hub's `link`), else the repository of a `../repo/x.flist`.
    pub repository: Option<RepoName>,
    pub target: FlistName,
    /// `lstat` of the link.
    pub linktime: i64,
}

#[derive(Debug, Clone)]
pub struct Taglink {
    pub name: TaglinkName,
    pub path: PathBuf,
    pub repository: RepoName,
    pub tag: TagName,
    pub linktime: i64,
}

#[derive(Debug, Clone)]
pub struct Tag {
    pub name: TagName,
    /// `lstat` of the `.tag-<name>` directory.
    pub mtime: i64,
    pub members: Vec<Link>,
}

/// Something of the tree that is not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

impl Skipped {
    pub fn new(path: &Path, reason: impl Into<String>) -> Skipped {
        Skipped {
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }
}

/// The `users/` directory of `public`: `public/users` when it exists, else `public`
/// itself (given the users directory).
pub fn users_dir(public: &Path) -> PathBuf {
    let users = public.join("users");
    if users.is_dir() {
        users
    } else {
        public.to_owned()
    }
}

/// Reads the tree under `users` (0-hub's `public/users`).
pub fn scan(users: &Path, names: &Names) -> Result<Tree> {
    let mut tree = Tree::default();
    for (name, path, meta) in sorted_entries(users)? {
        if !meta.is_dir() {
            tree.skipped.push(Skipped::new(
                &path,
                "not a directory: 0-hub lists no such repository",
            ));
            continue;
        }
        let Some(name) = name.to_str() else {
            tree.skipped
                .push(Skipped::new(&path, "a name that is not UTF-8"));
            continue;
        };
        match names.repository(name) {
            Ok(repo) => {
                let repository = scan_repository(repo, &path, meta.mtime(), names, &mut tree)?;
                tree.repositories.push(repository);
            }
            Err(e) => tree.skipped.push(Skipped::new(&path, e.to_string())),
        }
    }
    Ok(tree)
}

fn scan_repository(
    name: RepoName,
    dir: &Path,
    updated: i64,
    names: &Names,
    tree: &mut Tree,
) -> Result<Repository> {
    let mut repository = Repository {
        name,
        updated,
        files: Vec::new(),
        links: Vec::new(),
        taglinks: Vec::new(),
        tags: Vec::new(),
    };
    for (entry, path, meta) in sorted_entries(dir)? {
        let Some(entry) = entry.to_str() else {
            tree.skipped
                .push(Skipped::new(&path, "a name that is not UTF-8"));
            continue;
        };
        let kind = meta.file_type();
        let outcome = if kind.is_symlink() {
            scan_link(entry, &path, meta.mtime(), names, &mut repository)
        } else if kind.is_file() {
            scan_file(entry, &path, meta.mtime(), names, &mut repository)
        } else if kind.is_dir() {
            match entry.strip_prefix(".tag-") {
                Some(tag) => scan_tag(tag, &path, meta.mtime(), names, tree)
                    .map(|tag| repository.tags.push(tag)),
                None => Err("a directory that is not a tag: 0-hub showed it in no listing".into()),
            }
        } else {
            Err("neither a file, a link nor a directory".into())
        };
        if let Err(reason) = outcome {
            tree.skipped.push(Skipped::new(&path, reason));
        }
    }
    // `x.fl` and `x.flist` are one name here: the first (by name on disk) keeps it.
    let mut taken = std::collections::HashSet::new();
    let mut one_name = |name: &str, path: &Path| {
        let fresh = taken.insert(name.to_owned());
        if !fresh {
            tree.skipped.push(Skipped::new(
                path,
                "another entry of this repository has the same name once .fl or .flist is set aside",
            ));
        }
        fresh
    };
    repository.files.retain(|f| one_name(&f.name, &f.path));
    repository.links.retain(|l| one_name(&l.name, &l.path));
    Ok(repository)
}

/// An flist name (`x.flist` or `x.fl`), checked.
fn flist_name(raw: &str, names: &Names) -> std::result::Result<(FlistName, bool), String> {
    let fl = raw.ends_with(FL_SUFFIX);
    if !fl && !raw.ends_with(FLIST_SUFFIX) {
        return Err("not named as an flist (.flist or .fl): not a file of a known format".into());
    }
    names
        .flist(raw)
        .map(|name| (name, fl))
        .map_err(|e| e.to_string())
}

fn scan_file(
    name: &str,
    path: &Path,
    mtime: i64,
    names: &Names,
    repository: &mut Repository,
) -> std::result::Result<(), String> {
    let (name, fl_name) = flist_name(name, names)?;
    repository.files.push(FileEntry {
        name,
        fl_name,
        path: path.to_owned(),
        mtime,
    });
    Ok(())
}

fn scan_link(
    name: &str,
    path: &Path,
    linktime: i64,
    names: &Names,
    repository: &mut Repository,
) -> std::result::Result<(), String> {
    let text = read_link(path)?;
    if let Some((tag_repository, tag)) = tag_target(&text) {
        if name.ends_with(FLIST_SUFFIX) {
            return Err("a link to a tag named like an flist (0-hub's crosstag refuses it)".into());
        }
        let taglink = Taglink {
            name: names.taglink(name).map_err(|e| e.to_string())?,
            path: path.to_owned(),
            repository: names
                .repository(tag_repository)
                .map_err(|e| e.to_string())?,
            tag: names.tag(tag).map_err(|e| e.to_string())?,
            linktime,
        };
        repository.taglinks.push(taglink);
        return Ok(());
    }
    let (name, _) = flist_name(name, names)?;
    let link = flist_link(name, path, text, linktime, names, 1)?;
    repository.links.push(link);
    Ok(())
}

/// A link to an flist: `x.flist` beside it, or `<ups>/<repo>/x.flist` with `ups` times
/// `../` (one from a repository, two from a tag directory).
fn flist_link(
    name: FlistName,
    path: &Path,
    text: String,
    linktime: i64,
    names: &Names,
    ups: usize,
) -> std::result::Result<Link, String> {
    let outside = || format!("a link to {text:?}, which is no flist of the users tree");
    let (repository, target) = if ups == 1 && !text.contains('/') {
        (None, text.as_str())
    } else {
        let mut rest = text.as_str();
        for _ in 0..ups {
            rest = rest.strip_prefix("../").ok_or_else(outside)?;
        }
        match rest.split_once('/') {
            Some((repository, target)) if !target.contains('/') => (Some(repository), target),
            _ => return Err(outside()),
        }
    };
    let (target, _) = flist_name(target, names).map_err(|e| format!("its target: {e}"))?;
    let repository = match repository {
        Some(r) => Some(names.repository(r).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(Link {
        name,
        path: path.to_owned(),
        text,
        repository,
        target,
        linktime,
    })
}

fn scan_tag(
    tag: &str,
    dir: &Path,
    mtime: i64,
    names: &Names,
    tree: &mut Tree,
) -> std::result::Result<Tag, String> {
    let name = names.tag(tag).map_err(|e| e.to_string())?;
    let mut members = Vec::new();
    for (member, path, meta) in sorted_entries(dir).map_err(|e| e.to_string())? {
        let outcome = match member.to_str() {
            None => Err("a name that is not UTF-8".to_owned()),
            Some(_) if !meta.file_type().is_symlink() => {
                Err("a tag member that is not a link (0-hub lists only links)".to_owned())
            }
            Some(member) => flist_name(member, names).and_then(|(member, _)| {
                let text = read_link(&path)?;
                flist_link(member, &path, text, meta.mtime(), names, 2)
            }),
        };
        match outcome {
            Ok(link) if link.repository.is_some() => members.push(link),
            Ok(_) => tree.skipped.push(Skipped::new(
                &path,
                "a tag member must name ../../<repository>/<flist>",
            )),
            Err(reason) => tree.skipped.push(Skipped::new(&path, reason)),
        }
    }
    Ok(Tag {
        name,
        mtime,
        members,
    })
}

/// `(repository, tag)` of a link text `../<repository>/.tag-<tag>`.
fn tag_target(text: &str) -> Option<(&str, &str)> {
    let (repository, tag) = text.strip_prefix("../")?.split_once("/.tag-")?;
    (!repository.contains('/') && !tag.contains('/')).then_some((repository, tag))
}

fn read_link(path: &Path) -> std::result::Result<String, String> {
    let text = std::fs::read_link(path).map_err(|e| format!("reading the link: {e}"))?;
    text.into_os_string()
        .into_string()
        .map_err(|_| "a link text that is not UTF-8".to_owned())
}

/// A directory's entries with their `lstat`, by name (bytes), as 0-hub's sorted listings.
fn sorted_entries(dir: &Path) -> Result<Vec<(std::ffi::OsString, PathBuf, std::fs::Metadata)>> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir.display(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir.display(), e))?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(|e| Error::io(path.display(), e))?;
        found.push((entry.file_name(), path, meta));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}
