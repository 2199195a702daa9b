-- Where each flist came from, as the hub saw it when it was published (hub::Source as
-- JSON: the archive's name, the image and its digest, the merged sources, ...). NULL for
-- entries published before it was kept, and for links.
ALTER TABLE entry ADD COLUMN source TEXT;

-- The contents of every published native file are recorded when it is published (not only
-- when its renditions are made), with their sizes, so that how much of an flist other
-- flists hold is known whatever the gateway setting.
ALTER TABLE blob_content ADD COLUMN size INTEGER;
UPDATE blob_content
    SET size = (SELECT w.size FROM content_windows w WHERE w.content = blob_content.content);

-- Per published native file: the bytes of its distinct contents, and the bytes of those
-- that at least one other published file also holds. Kept right at every publish and
-- release (hub::namespace::share); files published before this table existed are filled
-- when the hub starts.
CREATE TABLE blob_share (
    sha256 TEXT PRIMARY KEY REFERENCES blob(sha256),
    content_bytes INTEGER NOT NULL,
    shared_bytes INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- What points at an flist, found from the flist (its page lists its links and tag members)
-- without reading every entry of the hub.
CREATE INDEX entry_by_target ON entry (target_name, target_repository, repository)
    WHERE target_name IS NOT NULL;
CREATE INDEX tag_member_by_target ON tag_member (target_repository, target_name);
