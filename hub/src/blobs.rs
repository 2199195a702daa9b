//! Published flist files, stored once each under their sha256.
//!
//! A new file is written in the private staging directory (`tmp/`), hashed, synced, and
//! only then moved to `flists/sha256/<first 2 hex>/<hex>` by a rename, while the database
//! writer lock is held (see `namespace`). A file in `flists/` never changes: a reader that
//! opened one keeps reading the same bytes whatever is published after, and a name points
//! at the old file or at the new one, never at a partial one.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256};
use tempfile::TempPath;

use crate::error::{Error, Result};
use crate::formats::Format;

pub struct Blobs {
    root: PathBuf,
    staging: PathBuf,
}

/// A file in the staging area, hashed and synced, ready to publish. Dropping it deletes
/// the file.
#[derive(Debug)]
pub struct Staged {
    file: TempPath,
    pub digest: Digest256,
}

impl Staged {
    /// Where the staged file is, until it is placed.
    pub fn path(&self) -> &Path {
        &self.file
    }
}

/// What is stored about each published file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest256 {
    pub sha256: String,
    pub md5: String,
    pub size: u64,
    pub format: Format,
}

impl Blobs {
    /// Uses `root` for published files and `staging` for files being made; both are
    /// created if missing, and whatever an earlier run left in `staging` is removed.
    pub fn open(root: PathBuf, staging: PathBuf) -> Result<Blobs> {
        for dir in [&root, &staging] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        }
        let blobs = Blobs { root, staging };
        blobs.clear_staging()?;
        Ok(blobs)
    }

    fn clear_staging(&self) -> Result<()> {
        let entries =
            std::fs::read_dir(&self.staging).map_err(|e| Error::io(self.staging.display(), e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = removed {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a staging leftover");
            }
        }
        Ok(())
    }

    /// The private staging directory (also where image exports are spooled).
    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }

    /// A new, empty, private file in the staging area, deleted when dropped.
    pub fn new_staging_file(&self, prefix: &str) -> Result<TempPath> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempfile_in(&self.staging)
            .map(|f| f.into_temp_path())
            .map_err(|e| Error::io(self.staging.display(), e))
    }

    /// Hashes and syncs a finished staging file, and tells its format. Blocking.
    pub fn stage(&self, file: TempPath) -> Result<Staged> {
        let digest = digest_file(&file)?;
        File::open(&file)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(file.display(), e))?;
        Ok(Staged { file, digest })
    }

    pub fn path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("00");
        self.root.join("sha256").join(prefix).join(sha256)
    }

    /// Moves a staged file to its place, unless the same content is already there. Call
    /// with the database writer lock held, before committing the rows that name it.
    /// Blocking.
    pub(crate) fn place(&self, staged: Staged) -> Result<()> {
        let path = self.path(&staged.digest.sha256);
        if path.exists() {
            return Ok(()); // dropping `staged` removes the duplicate
        }
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        staged
            .file
            .persist(&path)
            .map_err(|e| Error::io(path.display(), e.error))?;
        sync_dir(dir)
    }

    /// Removes the file of a blob no entry names any more. Call with the database writer
    /// lock held, after the commit that dropped its row. Blocking.
    pub(crate) fn remove(&self, sha256: &str) {
        let path = self.path(sha256);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove an unused flist file");
        }
    }

    /// Every stored file's sha256, to find files without a row after a crash. Blocking.
    pub(crate) fn list(&self) -> Result<Vec<String>> {
        let dir = self.root.join("sha256");
        let mut found = Vec::new();
        let Ok(prefixes) = std::fs::read_dir(&dir) else {
            return Ok(found);
        };
        for prefix in prefixes.flatten() {
            let files = std::fs::read_dir(prefix.path())
                .map_err(|e| Error::io(prefix.path().display(), e))?;
            for file in files.flatten() {
                found.push(file.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(found)
    }
}

/// sha256, md5, size and format of a file.
pub fn digest_file(path: &Path) -> Result<Digest256> {
    let format = Format::detect(path)?;
    let mut file = File::open(path).map_err(|e| Error::io(path.display(), e))?;
    let (mut sha, mut md5) = (Sha256::new(), Md5::new());
    let mut buf = vec![0u8; 256 << 10];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path.display(), e)),
        };
        sha.update(&buf[..n]);
        md5.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Digest256 {
        sha256: hex::encode(sha.finalize()),
        md5: hex::encode(md5.finalize()),
        size,
        format,
    })
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_files_are_placed_once_and_staging_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path().join("flists"), dir.path().join("tmp")).unwrap();
        let write = |data: &[u8]| {
            let tmp = blobs.new_staging_file("t").unwrap();
            std::fs::write(&tmp, data).unwrap();
            blobs.stage(tmp).unwrap()
        };
        // A gzip stream, as 0-flists are: staging tells the format from the bytes.
        let content = b"\x1f\x8bhello";
        let staged = write(content);
        assert_eq!(staged.digest.md5, hex::encode(Md5::digest(content)));
        assert_eq!(staged.digest.size, 7);
        assert_eq!(staged.digest.format, Format::ZeroFlist);
        let sha = staged.digest.sha256.clone();
        blobs.place(staged).unwrap();
        blobs.place(write(content)).unwrap();
        assert_eq!(std::fs::read(blobs.path(&sha)).unwrap(), content);
        let tmp = blobs.new_staging_file("t").unwrap();
        std::fs::write(&tmp, b"hello").unwrap();
        assert!(blobs.stage(tmp).is_err(), "not an flist of any format");
        assert_eq!(blobs.list().unwrap(), vec![sha.clone()]);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );

        let leftover = blobs.new_staging_file("t").unwrap().keep().unwrap();
        drop(blobs);
        assert!(leftover.exists());
        let blobs = Blobs::open(dir.path().join("flists"), dir.path().join("tmp")).unwrap();
        assert!(!leftover.exists(), "a restart clears the staging area");
        blobs.remove(&sha);
        assert!(blobs.list().unwrap().is_empty());
    }
}
