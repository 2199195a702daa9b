-- The integrity scrub (hub::scrub): what the last check of each published file found.
CREATE TABLE scrub_result (
    sha256 TEXT PRIMARY KEY,
    -- When (seconds since the epoch), and whether every chunk was read and verified.
    checked INTEGER NOT NULL,
    deep INTEGER NOT NULL,
    -- Chunks (or blocks) it names that the store lacks, or holds damaged, with no sound
    -- copy to repair from; both 0: verified complete.
    missing INTEGER NOT NULL,
    damaged INTEGER NOT NULL,
    -- JSON: the first of them, [{"key": ..., "fault": "missing" | "damaged"}, ...].
    problems TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- The last runs' reports (hub::scrub::Report as JSON).
CREATE TABLE scrub_run (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started INTEGER NOT NULL,
    report TEXT NOT NULL
) STRICT;
