-- The format of each published flist file: the hub's own, or a 0-flist or rfs fl hosted
-- byte for byte (hub::formats).
ALTER TABLE blob ADD COLUMN format TEXT NOT NULL DEFAULT 'native'
    CHECK (format IN ('native', '0-flist', 'fl'));

-- What the hub learns of each published flist file at publish time (its metadata and
-- counts, as JSON: hub::facts::Facts), so that reads never open the file for them. Kept
-- while the file's row is; rows of files published before this table existed are filled
-- when the hub starts.
CREATE TABLE blob_facts (
    sha256 TEXT PRIMARY KEY REFERENCES blob(sha256),
    facts TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Repository names must differ by more than case or Unicode form (hub::names::fold): the
-- folded name is unique. Rows made before this column existed are filled when the hub
-- starts.
ALTER TABLE repository ADD COLUMN fold TEXT;
CREATE UNIQUE INDEX repository_by_fold ON repository (fold);
