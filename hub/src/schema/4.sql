-- The change log (the audit table becomes it): every change of the namespace as a
-- self-contained JSON event, numbered by a sequence that never repeats, so that the feed
-- (/api/v1/changes) can be paged and replayed.
CREATE TABLE change_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    actor TEXT NOT NULL,
    -- The repository the change is made in, for per-repository reads.
    repository TEXT NOT NULL,
    -- hubapi::changes::ChangeEvent as JSON.
    body TEXT NOT NULL
) STRICT;

CREATE INDEX change_log_by_repository ON change_log (repository, seq);

-- What the audit table recorded is kept, as `audit` events: a record of who did what,
-- not enough to replay.
INSERT INTO change_log (time, actor, repository, body)
    SELECT time, actor, repository,
           json_object('kind', 'audit', 'action', action, 'repository', repository,
                       'name', name, 'detail', detail)
    FROM audit ORDER BY id;
DROP TABLE audit;
