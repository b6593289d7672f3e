-- Records (issue 17): values sealed under keys their callers keep.
--
-- `owner` is the HMAC-SHA256 pseudonym of the user's id under the records pepper (kept
-- outside this database), so this table names no user; `key_check` is SHA-256 of the proof
-- of the key (HMAC of the id under the key): a wrong key is refused without decrypting.
-- `sealed` is version, nonce, AES-256-GCM ciphertext and tag; `size` its length, charged to
-- the user's usage.
CREATE TABLE records (
    owner     TEXT NOT NULL,
    id        TEXT NOT NULL,
    sealed    BLOB NOT NULL,
    key_check TEXT NOT NULL,
    size      INTEGER NOT NULL,
    created   INTEGER NOT NULL,
    PRIMARY KEY (owner, id)
);

-- SQLite cannot widen a CHECK in place: access_tokens is made again with the new kind
-- (`records`, an app's credential for /records). Nothing references it.
CREATE TABLE access_tokens_new (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('restic', 'mercury', 'backups', 'records')),
    scope       TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('full', 'append-only', 'read-only')),
    label       TEXT NOT NULL,
    created     INTEGER NOT NULL,
    expires     INTEGER,
    last_used   INTEGER,
    device_id   TEXT
);
INSERT INTO access_tokens_new (id, user_id, token_hash, kind, scope, mode, label, created,
    expires, last_used, device_id)
    SELECT id, user_id, token_hash, kind, scope, mode, label, created, expires, last_used,
        device_id
    FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE INDEX access_tokens_user ON access_tokens (user_id);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);
