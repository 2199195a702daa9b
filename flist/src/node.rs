use serde::Serialize;

/// The type of an inode, as stored in the `inode.kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Directory = 1,
    Regular = 2,
    Symlink = 3,
    CharDevice = 4,
    BlockDevice = 5,
    Fifo = 6,
    Socket = 7,
}

impl Kind {
    pub(crate) fn from_code(code: i64) -> Option<Kind> {
        Some(match code {
            1 => Kind::Directory,
            2 => Kind::Regular,
            3 => Kind::Symlink,
            4 => Kind::CharDevice,
            5 => Kind::BlockDevice,
            6 => Kind::Fifo,
            7 => Kind::Socket,
            _ => return None,
        })
    }

    pub(crate) fn code(self) -> i64 {
        self as i64
    }
}

/// Modification time with nanosecond precision (seconds may be negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

/// What an inode is, with the data that only that kind carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Directory,
    /// `size` is the content length; the content is the inode's chunk list.
    Regular {
        size: u64,
    },
    /// The target is stored as given and never followed by the format.
    Symlink {
        target: Vec<u8>,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
    Socket,
}

impl NodeKind {
    pub fn kind(&self) -> Kind {
        match self {
            NodeKind::Directory => Kind::Directory,
            NodeKind::Regular { .. } => Kind::Regular,
            NodeKind::Symlink { .. } => Kind::Symlink,
            NodeKind::CharDevice { .. } => Kind::CharDevice,
            NodeKind::BlockDevice { .. } => Kind::BlockDevice,
            NodeKind::Fifo => Kind::Fifo,
            NodeKind::Socket => Kind::Socket,
        }
    }
}

/// An inode's kind and attributes (everything but its names, chunks and xattrs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// Permission bits with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
}

impl Node {
    pub fn directory(mode: u32) -> Node {
        Node {
            kind: NodeKind::Directory,
            mode,
            uid: 0,
            gid: 0,
            mtime: Timestamp::default(),
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == NodeKind::Directory
    }

    /// The type and mode as `ls -l` writes them: `drwxr-xr-x`, `-rwsr-xr-x`, `drwxrwxrwt`.
    pub fn ls_mode(&self) -> String {
        let mut out = String::with_capacity(10);
        out.push(match self.kind {
            NodeKind::Directory => 'd',
            NodeKind::Regular { .. } => '-',
            NodeKind::Symlink { .. } => 'l',
            NodeKind::CharDevice { .. } => 'c',
            NodeKind::BlockDevice { .. } => 'b',
            NodeKind::Fifo => 'p',
            NodeKind::Socket => 's',
        });
        // Owner, group, others; each with its special bit shown in the execute place.
        for (shift, special, set, unset) in [
            (6, 0o4000, 's', 'S'),
            (3, 0o2000, 's', 'S'),
            (0, 0o1000, 't', 'T'),
        ] {
            let bits = (self.mode >> shift) & 7;
            out.push(if bits & 4 != 0 { 'r' } else { '-' });
            out.push(if bits & 2 != 0 { 'w' } else { '-' });
            out.push(match (bits & 1 != 0, self.mode & special != 0) {
                (true, true) => set,
                (false, true) => unset,
                (true, false) => 'x',
                (false, false) => '-',
            });
        }
        out
    }

    /// `size` as `ls -l` shows it: content bytes, or the target length for symlinks.
    pub fn size(&self) -> u64 {
        match &self.kind {
            NodeKind::Regular { size } => *size,
            NodeKind::Symlink { target } => target.len() as u64,
            _ => 0,
        }
    }
}

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl Xattr {
    /// Whether the name is one an xattr can have: not empty, no NUL byte (the kernel's
    /// interface takes it as a C string). Writers refuse others and readers report them.
    pub(crate) fn has_valid_name(&self) -> bool {
        !self.name.is_empty() && !self.name.contains(&0)
    }
}

/// A name in a directory, with the inode it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name within its directory (empty for the root).
    pub name: Vec<u8>,
    /// Inode number; names sharing an inode are hardlinks. The root is inode 1.
    pub ino: u64,
    /// Number of names referring to this inode.
    pub nlink: u32,
    pub node: Node,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.node.is_dir()
    }
}

/// One piece of a regular file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    /// BLAKE3-256 of the plaintext chunk: its address in the chunk store.
    pub key: [u8; 32],
    /// Byte offset of the chunk within the file.
    pub offset: u64,
    /// Plaintext length in bytes.
    pub length: u32,
}

/// Counts over a whole flist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Regular-file inodes.
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    /// Devices, FIFOs and sockets.
    pub specials: u64,
    /// Names beyond the first for inodes with several names.
    pub hardlinks: u64,
    /// Content bytes of all regular-file inodes.
    pub bytes: u64,
    /// Chunk references, and the distinct chunk keys among them.
    pub chunks: u64,
    pub unique_chunks: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_as_ls_writes_them() {
        let node = |kind, mode| Node {
            kind,
            ..Node::directory(mode)
        };
        assert_eq!(node(NodeKind::Directory, 0o755).ls_mode(), "drwxr-xr-x");
        assert_eq!(
            node(NodeKind::Regular { size: 0 }, 0o4755).ls_mode(),
            "-rwsr-xr-x"
        );
        assert_eq!(node(NodeKind::Directory, 0o1777).ls_mode(), "drwxrwxrwt");
        assert_eq!(node(NodeKind::Fifo, 0o2640).ls_mode(), "prw-r-S---");
    }
}
