-- Retention policies set through the admin API (hub::retention), one per repository; each
-- takes the place of what the configuration says for that repository.
CREATE TABLE retention_policy (
    repository TEXT PRIMARY KEY,
    -- hub::retention::Policy as JSON.
    policy TEXT NOT NULL,
    -- The administrator who set it, and when.
    set_by TEXT NOT NULL,
    updated INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
