-- Local accounts for people, who log in on the web pages, and the web's sessions.
CREATE TABLE account (
    name TEXT PRIMARY KEY,
    -- argon2id, as a PHC string (algorithm, parameters, salt and hash).
    password TEXT NOT NULL,
    -- JSON array of the repositories the account may act as besides its own.
    memberof TEXT NOT NULL DEFAULT '[]',
    admin INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A logged-in browser. The cookie holds a random value; the row is found by its sha256, so
-- the table alone does not give sessions away. Every request re-authenticates `token` (a
-- token minted at login, or the one the person pasted), so its expiry and revocation end
-- the session.
CREATE TABLE web_session (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    token TEXT NOT NULL,
    -- The token was minted for the session (revoked at logout), not pasted.
    owned INTEGER NOT NULL,
    -- The synchronizer token every form of the session carries.
    csrf TEXT NOT NULL,
    -- The identity chosen with the account switcher (0-hub's `active-user`).
    active TEXT,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX web_session_by_user ON web_session (user);
