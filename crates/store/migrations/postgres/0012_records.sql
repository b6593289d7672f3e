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
    sealed    BYTEA NOT NULL,
    key_check TEXT NOT NULL,
    size      BIGINT NOT NULL,
    created   BIGINT NOT NULL,
    PRIMARY KEY (owner, id)
);

-- The pseudonym a transaction runs under (set with the tenant, from the server's pepper).
CREATE FUNCTION enc_pseudonym() RETURNS TEXT LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.pseudonym', true), '') $$;

-- A caller sees only the records of their own pseudonym, and only inside a tenant's scope
-- (the pseudonym is set with the user it stands for, never alone).
ALTER TABLE records ENABLE ROW LEVEL SECURITY;
ALTER TABLE records FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON records
    USING (enc_system() OR (enc_user() IS NOT NULL AND owner = enc_pseudonym()));
GRANT SELECT, INSERT, DELETE ON records TO enc_app;

ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_kind_check;
ALTER TABLE access_tokens ADD CONSTRAINT access_tokens_kind_check
    CHECK (kind IN ('restic', 'mercury', 'backups', 'records'));
