-- Per-user usage and quota, access tokens, restic repositories.

-- Bytes of committed content a user owns (vault versions of vaults they own plus restic
-- objects), kept up to date in the transactions that change it, so start-up never scans.
ALTER TABLE users ADD COLUMN usage_bytes INTEGER NOT NULL DEFAULT 0;
-- NULL: the role's default quota from the policy (if any).
ALTER TABLE users ADD COLUMN quota_bytes INTEGER;

UPDATE users SET usage_bytes = (
    SELECT COALESCE(SUM(ve.size), 0) FROM versions ve
    JOIN objects ob ON ve.object_id = ob.id JOIN vaults v ON v.id = ob.vault_id
    WHERE v.owner_id = users.id
);

-- Access tokens for protocols that cannot hold a session (restic's HTTP Basic, Mercury).
-- The token is `enc_<id>_<secret>`; only SHA-256(token) is stored.
CREATE TABLE access_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('restic', 'mercury')),
    scope       TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('full', 'append-only', 'read-only')),
    label       TEXT NOT NULL,
    created     INTEGER NOT NULL,
    expires     INTEGER,
    last_used   INTEGER
);
CREATE INDEX access_tokens_user ON access_tokens (user_id);

CREATE TABLE restic_repos (
    id      TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    created INTEGER NOT NULL,
    UNIQUE (user_id, name)
);

-- One row per stored restic file; `kind` is config, data, index, keys, locks or snapshots.
-- Listings are answered from here, never from a walk of the blob store.
CREATE TABLE restic_objects (
    repo_id  TEXT NOT NULL REFERENCES restic_repos (id) ON DELETE CASCADE,
    kind     TEXT NOT NULL,
    name     TEXT NOT NULL,
    size     INTEGER NOT NULL,
    blob_key TEXT NOT NULL,
    created  INTEGER NOT NULL,
    PRIMARY KEY (repo_id, kind, name)
) WITHOUT ROWID;

-- A blob queued with a future time is a reservation: an upload in flight claims it back
-- (deletes the row) in the transaction that references the blob; a crash leaves it to GC.
CREATE INDEX blob_gc_queued ON blob_gc (queued);
