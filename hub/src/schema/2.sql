-- Chunks stored through the chunk API (/api/v1/chunks), by the identity (a token's user)
-- that uploaded them: what quotas are checked against.
CREATE TABLE chunk_usage (
    identity TEXT PRIMARY KEY,
    -- Chunks it stored that the store did not have, and their stored bytes.
    chunks INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    -- Bytes of chunks it sent, stored or not.
    received INTEGER NOT NULL,
    updated INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
