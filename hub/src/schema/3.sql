-- Jobs for image conversions: a `cancelled` state, the live progress kept with the state
-- (so that a job seen after a restart says how far it got), and what was asked (the image
-- and platform; never credentials).
CREATE TABLE job_new (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    repository TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    created INTEGER NOT NULL,
    started INTEGER,
    finished INTEGER,
    -- JSON: the 0-hub `info` event of a success.
    result TEXT,
    error TEXT,
    progress INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    -- JSON: what the job was asked to do.
    request TEXT
) STRICT;

INSERT INTO job_new (id, kind, owner, repository, name, state, created, started, finished, result, error)
    SELECT id, kind, owner, repository, name, state, created, started, finished, result, error FROM job;
UPDATE job_new SET progress = 100 WHERE state = 'succeeded';
DROP TABLE job;
ALTER TABLE job_new RENAME TO job;
CREATE INDEX job_by_finished ON job (finished) WHERE finished IS NOT NULL;
CREATE INDEX job_by_owner ON job (owner, created);
