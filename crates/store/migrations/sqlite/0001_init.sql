-- enc metadata, SQLite. Everything here is ciphertext, hashes or public keys: no plaintext
-- names, contents or secrets (invariant 1).

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    role             TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('invited', 'active')),
    salt             BLOB NOT NULL,
    kdf_m            INTEGER NOT NULL,
    kdf_t            INTEGER NOT NULL,
    kdf_p            INTEGER NOT NULL,
    invite_hash      TEXT,
    invite_expires   INTEGER,
    auth_hash        TEXT,
    x25519_recipient TEXT,
    ed25519_public   TEXT,
    wrapped_keys     TEXT,
    recipient_sig    TEXT,
    created          INTEGER NOT NULL
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    method     TEXT NOT NULL,
    created    INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE ssh_keys (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint  TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    comment      TEXT NOT NULL,
    wrapped_keys TEXT,
    created      INTEGER NOT NULL,
    PRIMARY KEY (user_id, fingerprint)
);

CREATE TABLE ssh_challenges (
    id        TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    challenge BLOB NOT NULL,
    expires   INTEGER NOT NULL
);

CREATE TABLE throttle (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    next_allowed INTEGER NOT NULL,
    updated      INTEGER NOT NULL
);

CREATE TABLE vaults (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    generation INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE vault_members (
    vault_id     TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    wrapped_keys TEXT NOT NULL,
    -- The owner's Ed25519 signature over (vault, member, generation, wrapped_keys).
    signature    TEXT NOT NULL,
    PRIMARY KEY (vault_id, user_id)
);
CREATE INDEX vault_members_user ON vault_members (user_id);

CREATE TABLE objects (
    id       TEXT PRIMARY KEY,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    enc_name TEXT NOT NULL,
    created  INTEGER NOT NULL,
    UNIQUE (vault_id, enc_name)
);

CREATE TABLE versions (
    id         TEXT PRIMARY KEY,
    object_id  TEXT NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    blob_key   TEXT NOT NULL,
    size       INTEGER NOT NULL,
    hash     TEXT NOT NULL,
    generation INTEGER NOT NULL,
    signature  TEXT NOT NULL,
    author_id  TEXT NOT NULL,
    -- Snapshots, so versions stay verifiable after the author's account is removed.
    author     TEXT NOT NULL,
    author_key TEXT NOT NULL,
    created    INTEGER NOT NULL,
    UNIQUE (object_id, version)
);

-- Streamed but not yet committed uploads; swept when stale.
CREATE TABLE uploads (
    id       TEXT PRIMARY KEY,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL,
    blob_key TEXT NOT NULL,
    size     INTEGER NOT NULL,
    hash   TEXT NOT NULL,
    created  INTEGER NOT NULL
);

-- Blobs no longer referenced, queued in the same transaction that unreferenced them and
-- deleted after it commits (again at start-up after a crash).
CREATE TABLE blob_gc (
    blob_key TEXT PRIMARY KEY,
    queued   INTEGER NOT NULL
);

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    ts        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    actor_id  TEXT,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    client    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_actor ON audit (actor_id);
