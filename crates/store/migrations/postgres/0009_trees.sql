-- Vault trees (issue 15): a vault's signed commits and the blobs its tree references.
-- A commit is kept whole as the client signed it (header and signature); the columns beside
-- them are what the server checked it against. Commits are never pruned.
CREATE TABLE tree_commits (
    vault_id  TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL,
    prev      TEXT NOT NULL,
    header    BYTEA NOT NULL,
    signature BYTEA NOT NULL,
    author_id TEXT NOT NULL,
    created   BIGINT NOT NULL,
    PRIMARY KEY (vault_id, seq),
    UNIQUE (vault_id, hash)
);

-- Blobs a vault's commits added and have not released (packs of small pieces, large files'
-- own blobs, nodes and bodies); charged to the vault's owner by their size.
CREATE TABLE tree_blobs (
    vault_id  TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    id        TEXT NOT NULL,
    blob_key  TEXT NOT NULL,
    size      BIGINT NOT NULL,
    added_seq BIGINT NOT NULL,
    PRIMARY KEY (vault_id, id)
);

-- A vault's tree is seen only through a membership, as its objects are.
ALTER TABLE tree_commits ENABLE ROW LEVEL SECURITY;
ALTER TABLE tree_commits FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON tree_commits USING (enc_system() OR enc_member_of(vault_id));

ALTER TABLE tree_blobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE tree_blobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON tree_blobs USING (enc_system() OR enc_member_of(vault_id));

-- Commits are appended, never changed; blobs are added and released.
GRANT SELECT, INSERT, DELETE ON tree_commits TO enc_app;
GRANT SELECT, INSERT, DELETE ON tree_blobs TO enc_app;
