-- Devices and signed backups (issue 16).
--
-- The account chain: each link signed by the account's Ed25519 key, in sequence, each naming
-- the previous link's hash. A device is added (certified) and revoked only by a link.
CREATE TABLE account_links (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL,
    prev        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    device_name TEXT NOT NULL,
    device_key  TEXT NOT NULL,
    created     BIGINT NOT NULL,
    signature   TEXT NOT NULL,
    -- A revocation's end of the device's backup chain (0 and empty in an addition).
    last_counter BIGINT NOT NULL,
    last_entry  TEXT NOT NULL,
    PRIMARY KEY (user_id, seq)
);

-- A user's devices: the key the chain certified, the link that added it and the one that
-- revoked it. `name` is the label shown (a rename changes it; the certificate keeps the
-- name it was certified with).
CREATE TABLE devices (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    created     BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    added_seq   BIGINT NOT NULL,
    revoked_seq BIGINT,
    revoked_at  BIGINT,
    PRIMARY KEY (user_id, id)
);

-- Sessions and tokens belong to the device that made them; revoking it ends them.
ALTER TABLE sessions ADD COLUMN device_id TEXT;
ALTER TABLE access_tokens ADD COLUMN device_id TEXT;
ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_kind_check;
ALTER TABLE access_tokens ADD CONSTRAINT access_tokens_kind_check
    CHECK (kind IN ('restic', 'mercury', 'backups'));
CREATE INDEX sessions_device ON sessions (user_id, device_id);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);

-- Each device's chain of backups and tombstones, as the device signed them, numbered per
-- user in the order the server accepted them (`seq`: what "newest first" means). A deleted
-- backup keeps its signed metadata (so the chain has no gap) and loses its content.
-- Content up to 32 KiB is kept in `data`; larger content in the blob at `blob_key`.
CREATE TABLE backups (
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id             TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    device_id      TEXT NOT NULL,
    kind           TEXT NOT NULL,
    counter        BIGINT NOT NULL,
    prev           TEXT NOT NULL,
    classification TEXT NOT NULL,
    size           BIGINT NOT NULL,
    content_hash   TEXT NOT NULL,
    target         TEXT NOT NULL,
    created        BIGINT NOT NULL,
    signature      TEXT NOT NULL,
    received       BIGINT NOT NULL,
    chain_seq      BIGINT NOT NULL,
    deleted        BIGINT,
    blob_key       TEXT,
    data           BYTEA,
    PRIMARY KEY (user_id, id),
    UNIQUE (user_id, device_id, counter),
    UNIQUE (user_id, seq)
);

-- A user sees only their own chain, devices and backups.
ALTER TABLE account_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_links FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON account_links USING (enc_system() OR user_id = enc_user());

ALTER TABLE devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE devices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON devices USING (enc_system() OR user_id = enc_user());

ALTER TABLE backups ENABLE ROW LEVEL SECURITY;
ALTER TABLE backups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON backups USING (enc_system() OR user_id = enc_user());

-- Links are appended, never changed; devices are renamed and revoked; backups are deleted.
GRANT SELECT, INSERT, DELETE ON account_links TO enc_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON devices TO enc_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON backups TO enc_app;
