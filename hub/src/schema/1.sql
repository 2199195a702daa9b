-- The hub's namespace and bookkeeping. Times are seconds since the epoch.

-- A repository is named after the identity that writes to it (0-hub's "user").
CREATE TABLE repository (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    -- Last change of anything in the repository, tags included.
    updated INTEGER NOT NULL
) STRICT;

-- A published flist file, stored once under its sha256 (flists/sha256/<2 hex>/<hex>).
CREATE TABLE blob (
    sha256 TEXT PRIMARY KEY,
    md5 TEXT NOT NULL,
    size INTEGER NOT NULL,
    created INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The flists, symlinks and taglinks of a repository. `name` is what 0-hub lists:
-- `<name>.flist` for flists and symlinks, the bare name for taglinks.
CREATE TABLE entry (
    repository INTEGER NOT NULL REFERENCES repository(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('regular', 'symlink', 'taglink')),
    -- regular: the file.
    blob TEXT REFERENCES blob(sha256),
    -- symlink: the flist `target_name` of `target_repository`, NULL for this repository
    -- (a symlink made by `link`; `crosslink` always names the repository);
    -- taglink: the tag `target_name` of `target_repository`.
    -- Links name their target, like a filesystem symlink: they may dangle.
    target_repository TEXT,
    target_name TEXT,
    -- regular: when it was published (promote and upload); links: when linked.
    mtime INTEGER NOT NULL,
    -- The identity that made it.
    author TEXT NOT NULL,
    PRIMARY KEY (repository, name),
    CHECK ((kind = 'regular') = (blob IS NOT NULL)),
    CHECK ((kind = 'regular') = (target_name IS NULL)),
    CHECK (kind <> 'taglink' OR target_repository IS NOT NULL)
) STRICT, WITHOUT ROWID;

CREATE INDEX entry_by_blob ON entry (blob) WHERE blob IS NOT NULL;

-- A tag: a named set of links (0-hub's `.tag-<name>` directory). It exists while it has
-- members.
CREATE TABLE tag (
    id INTEGER PRIMARY KEY,
    repository INTEGER NOT NULL REFERENCES repository(id),
    name TEXT NOT NULL,
    mtime INTEGER NOT NULL,
    UNIQUE (repository, name)
) STRICT;

CREATE TABLE tag_member (
    tag INTEGER NOT NULL REFERENCES tag(id) ON DELETE CASCADE,
    -- `<link>.flist`
    name TEXT NOT NULL,
    target_repository TEXT NOT NULL,
    target_name TEXT NOT NULL,
    linktime INTEGER NOT NULL,
    author TEXT NOT NULL,
    PRIMARY KEY (tag, name)
) STRICT, WITHOUT ROWID;

-- Tokens this hub minted. A token is valid only while its row exists, is not revoked and
-- has not expired.
CREATE TABLE token (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    -- JSON array of the repositories the token may act as besides its subject's.
    memberof TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    revoked INTEGER,
    note TEXT
) STRICT;

-- Revocations of tokens minted elsewhere: one token (`<iss> <jti>` of a JWT, or
-- `zero-hub:<sha256 of the token>`), or every token of a subject issued up to `before`.
CREATE TABLE revoked_token (
    id TEXT PRIMARY KEY,
    revoked INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE revoked_subject (
    subject TEXT PRIMARY KEY,
    before INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Long work (uploads converted in the background): state, and the outcome once finished.
CREATE TABLE job (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    repository TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    created INTEGER NOT NULL,
    started INTEGER,
    finished INTEGER,
    -- JSON: the 0-hub `info` event of a success.
    result TEXT,
    error TEXT
) STRICT;

CREATE INDEX job_by_finished ON job (finished) WHERE finished IS NOT NULL;

-- Who changed what.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    repository TEXT NOT NULL,
    name TEXT,
    detail TEXT
) STRICT;
