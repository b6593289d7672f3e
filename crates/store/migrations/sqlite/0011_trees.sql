-- Vault trees (issue 15): a vault's signed commits and the blobs its tree references.
-- A commit is kept whole as the client signed it (header and signature); the columns beside
-- them are what the server checked it against. Commits are never pruned.
CREATE TABLE tree_commits (
    vault_id  TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL,
    prev      TEXT NOT NULL,
    header    BLOB NOT NULL,
    signature BLOB NOT NULL,
    author_id TEXT NOT NULL,
    created   INTEGER NOT NULL,
    PRIMARY KEY (vault_id, seq),
    UNIQUE (vault_id, hash)
);

-- Blobs a vault's commits added and have not released (packs of small pieces, large files'
-- own blobs, nodes and bodies); charged to the vault's owner by their size.
CREATE TABLE tree_blobs (
    vault_id  TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    id        TEXT NOT NULL,
    blob_key  TEXT NOT NULL,
    size      INTEGER NOT NULL,
    added_seq INTEGER NOT NULL,
    PRIMARY KEY (vault_id, id)
);
