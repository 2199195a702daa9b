-- Garbage collection (hub::gc): when the hub last saw each chunk or block (stored, or found
-- present by an existence check), in milliseconds since the epoch; a chunk's 32-byte key, or
-- `b` and a block's id.
CREATE TABLE chunk_seen (
    key BLOB PRIMARY KEY,
    seen INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The reports of the last collections (hub::gc::Report as JSON).
CREATE TABLE gc_run (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started INTEGER NOT NULL,
    report TEXT NOT NULL
) STRICT;
