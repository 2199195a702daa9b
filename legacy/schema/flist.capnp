# The Cap'n Proto objects of the 0-flist format (zflist's `flistdb.sqlite3`, table `entries`).
#
# Written for flisthub from the format's published interface: the file id, and each field's
# ordinal and type, are what make a message readable by zflist and g8ufs, so they must never
# change. Names are only for the generated Rust code. See docs/formats.md.
@0xae9223e76351538a;

# One block of a regular file: where it is stored and how to decrypt it.
struct FileBlock {
  hash @0 :Data;    # id: BLAKE2b-128 of the encrypted block (its key in the store)
  key @1 :Data;     # BLAKE2b-128 of the plaintext block (the XXTEA key)
}

struct File {
  blockSize @0 :UInt16;           # written as 128 (x 4 KiB); readers ignore it
  blocks @1 :List(FileBlock);     # in file order, 512 KiB of plaintext each
}

struct Link {
  target @0 :Text;
}

struct Special {
  type @0 :Type;
  data @1 :Data;    # "major,minor" for devices
  enum Type {
    socket @0;
    block @1;
    chardev @2;
    fifopipe @3;
    unknown @4;
  }
}

struct SubDir {
  key @0 :Text;     # row key of the sub-directory's Dir
}

# One name in a directory.
struct Inode {
  name @0 :Text;
  size @1 :UInt64;
  attributes :union {
    dir @2 :SubDir;
    file @3 :File;
    link @4 :Link;
    special @5 :Special;
  }
  aclkey @6 :Text;
  modificationTime @7 :UInt32;
  creationTime @8 :UInt32;
}

# One directory: a row of `entries` keyed by BLAKE2b-128 of `location`.
struct Dir {
  name @0 :Text;
  location @1 :Text;            # path from the root, no leading or trailing slash
  contents @2 :List(Inode);
  parent @3 :Text;              # row key of the parent (the root names itself)
  size @4 :UInt64;
  aclkey @5 :Text;
  modificationTime @6 :UInt32;
  creationTime @7 :UInt32;
}

# Declared by the format, never written.
struct UserGroup {
  name @0 :Text;
  iyoId @1 :Text;
  iyoInt @2 :UInt64;
}

# Owner and permissions: a row of `entries` keyed by BLAKE2b-64 of its text form.
struct ACI {
  uname @0 :Text;
  gname @1 :Text;
  mode @2 :UInt16;
  rights @3 :List(Right);
  id @4 :UInt32;
  uid @5 :Int64 = -1;
  gid @6 :Int64 = -1;
  struct Right {
    right @0 :Text;
    usergroupid @1 :UInt16;
  }
}
