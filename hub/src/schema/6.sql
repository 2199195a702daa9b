-- Renditions: the files Zero-OS nodes read (0-flist, rfs fl), made by the hub from the native
-- flists it publishes, with blocks the 0-db gateway encodes from the native chunks when a
-- node reads them (hub::renditions).

-- The 512 KiB windows of a file's content, by content id (BLAKE3 of its size and chunk
-- list): the chunks that hold it and each window's keys. Shared by every flist holding the
-- same content; kept while a published flist holds it (`released` is set when the last
-- one goes, and the row removed a grace period later).
CREATE TABLE content_windows (
    content BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    -- Per chunk, in order: its 32-byte key and its 4-byte big-endian length.
    chunks BLOB NOT NULL,
    -- Per window, in order: legacy::window::WindowKeys::to_bytes.
    windows BLOB NOT NULL,
    released INTEGER
) STRICT, WITHOUT ROWID;

-- Where the window each block id names lives (16-byte ids: 0-flist, 32-byte: fl): equal
-- windows of different contents share an id, and a row per content keeps the id readable
-- while any of them is held.
CREATE TABLE window_block (
    id BLOB NOT NULL,
    content BLOB NOT NULL,
    window INTEGER NOT NULL,
    PRIMARY KEY (id, content)
) STRICT, WITHOUT ROWID;

CREATE INDEX window_block_by_content ON window_block (content);

-- The contents a published native file holds.
CREATE TABLE blob_content (
    sha256 TEXT NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (sha256, content)
) STRICT, WITHOUT ROWID;

CREATE INDEX blob_content_by_content ON blob_content (content);

-- The renditions of a native file for one gateway address: files of their own (blob rows).
CREATE TABLE rendition (
    native TEXT NOT NULL,
    format TEXT NOT NULL CHECK (format IN ('0-flist', 'fl')),
    public_url TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (native, format, public_url)
) STRICT, WITHOUT ROWID;

CREATE INDEX rendition_by_file ON rendition (sha256);
