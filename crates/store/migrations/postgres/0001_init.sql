-- enc metadata, PostgreSQL. The same tables as the SQLite schema (migrations/sqlite, all
-- three files folded into one), plus row-level security as a second wall behind the
-- application's own checks. Everything here is ciphertext, hashes or public keys.
--
-- Roles: this migration runs as the schema's owner (a superuser, or a role with CREATEROLE
-- that owns the tables). The server connects as a login role that is a member of `enc_app`:
-- not a superuser, without BYPASSRLS, owning no table, so every policy below binds it.
--
-- The tenant is set per transaction by the server (`set_config(..., true)`, i.e. SET LOCAL):
--   app.user_id  the enc user the request is authenticated as;
--   app.system   'on' for the server's own work that spans tenants (authentication lookups,
--                account administration, the blob collector, the audit chain).
-- With neither set, a tenant table shows no rows at all.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'enc_app') THEN
        CREATE ROLE enc_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created at the same moment by a migration of another database
END
$$;

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    role             TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('invited', 'active')),
    salt             BYTEA NOT NULL,
    kdf_m            BIGINT NOT NULL,
    kdf_t            BIGINT NOT NULL,
    kdf_p            BIGINT NOT NULL,
    invite_hash      TEXT,
    invite_expires   BIGINT,
    auth_hash        TEXT,
    x25519_recipient TEXT,
    ed25519_public   TEXT,
    wrapped_keys     TEXT,
    recipient_sig    TEXT,
    created          BIGINT NOT NULL,
    usage_bytes      BIGINT NOT NULL DEFAULT 0,
    quota_bytes      BIGINT
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    method     TEXT NOT NULL,
    created    BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE ssh_keys (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint  TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    comment      TEXT NOT NULL,
    wrapped_keys TEXT,
    created      BIGINT NOT NULL,
    PRIMARY KEY (user_id, fingerprint)
);

CREATE TABLE ssh_challenges (
    id        TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    challenge BYTEA NOT NULL,
    expires   BIGINT NOT NULL
);

CREATE TABLE throttle (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    next_allowed BIGINT NOT NULL,
    updated      BIGINT NOT NULL
);

CREATE TABLE vaults (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created    BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE vault_members (
    vault_id     TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    wrapped_keys TEXT NOT NULL,
    signature    TEXT NOT NULL,
    PRIMARY KEY (vault_id, user_id)
);
CREATE INDEX vault_members_user ON vault_members (user_id);

CREATE TABLE objects (
    id       TEXT PRIMARY KEY,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    enc_name TEXT NOT NULL,
    created  BIGINT NOT NULL,
    UNIQUE (vault_id, enc_name)
);

CREATE TABLE versions (
    id         TEXT PRIMARY KEY,
    object_id  TEXT NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    version    BIGINT NOT NULL,
    blob_key   TEXT NOT NULL,
    size       BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    generation BIGINT NOT NULL,
    signature  TEXT NOT NULL,
    author_id  TEXT NOT NULL,
    author     TEXT NOT NULL,
    author_key TEXT NOT NULL,
    created    BIGINT NOT NULL,
    UNIQUE (object_id, version)
);

CREATE TABLE uploads (
    id       TEXT PRIMARY KEY,
    vault_id TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL,
    blob_key TEXT NOT NULL,
    size     BIGINT NOT NULL,
    hash     TEXT NOT NULL,
    created  BIGINT NOT NULL
);

CREATE TABLE blob_gc (
    blob_key TEXT PRIMARY KEY,
    queued   BIGINT NOT NULL
);
CREATE INDEX blob_gc_queued ON blob_gc (queued);

CREATE TABLE audit (
    seq       BIGINT PRIMARY KEY,
    ts        BIGINT NOT NULL,
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

CREATE TABLE access_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('restic', 'mercury')),
    scope       TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('full', 'append-only', 'read-only')),
    label       TEXT NOT NULL,
    created     BIGINT NOT NULL,
    expires     BIGINT,
    last_used   BIGINT
);
CREATE INDEX access_tokens_user ON access_tokens (user_id);

CREATE TABLE restic_repos (
    id      TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    created BIGINT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE restic_objects (
    repo_id  TEXT NOT NULL REFERENCES restic_repos (id) ON DELETE CASCADE,
    kind     TEXT NOT NULL,
    name     TEXT NOT NULL,
    size     BIGINT NOT NULL,
    blob_key TEXT NOT NULL,
    created  BIGINT NOT NULL,
    PRIMARY KEY (repo_id, kind, name)
);

CREATE TABLE mercury_files (
    space    TEXT NOT NULL,
    name     TEXT NOT NULL,
    state    TEXT NOT NULL CHECK (state IN ('pending', 'stored')),
    size     BIGINT NOT NULL,
    blob_key TEXT NOT NULL,
    user_id  TEXT REFERENCES users (id) ON DELETE CASCADE,
    created  BIGINT NOT NULL,
    PRIMARY KEY (space, name)
);
CREATE INDEX mercury_files_pending ON mercury_files (created) WHERE state = 'pending';
CREATE INDEX mercury_files_user ON mercury_files (user_id) WHERE user_id IS NOT NULL;

-- ---- row-level security

CREATE FUNCTION enc_user() RETURNS TEXT LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.user_id', true), '') $$;

CREATE FUNCTION enc_system() RETURNS BOOLEAN LANGUAGE sql STABLE
    AS $$ SELECT COALESCE(current_setting('app.system', true), '') = 'on' $$;

-- Membership tests the policies need about other tables. They run as the owner with
-- app.system on, so a policy never recurses into itself, whatever the owner's attributes.
CREATE FUNCTION enc_member_of(vault TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE
    SECURITY DEFINER SET search_path = public SET app.system = 'on'
    AS $$ SELECT EXISTS (SELECT 1 FROM vault_members
                         WHERE vault_id = vault AND user_id = enc_user()) $$;

CREATE FUNCTION enc_object_visible(object TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE
    SECURITY DEFINER SET search_path = public SET app.system = 'on'
    AS $$ SELECT EXISTS (SELECT 1 FROM objects o JOIN vault_members m ON m.vault_id = o.vault_id
                         WHERE o.id = object AND m.user_id = enc_user()) $$;

CREATE FUNCTION enc_shares_vault_with(other TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE
    SECURITY DEFINER SET search_path = public SET app.system = 'on'
    AS $$ SELECT EXISTS (SELECT 1 FROM vault_members a JOIN vault_members b
                         ON a.vault_id = b.vault_id
                         WHERE a.user_id = enc_user() AND b.user_id = other) $$;

CREATE FUNCTION enc_owns_repo(repo TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE
    SECURITY DEFINER SET search_path = public SET app.system = 'on'
    AS $$ SELECT EXISTS (SELECT 1 FROM restic_repos WHERE id = repo AND user_id = enc_user()) $$;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON users
    USING (enc_system() OR id = enc_user() OR enc_shares_vault_with(id));

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON sessions USING (enc_system() OR user_id = enc_user());

ALTER TABLE ssh_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE ssh_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON ssh_keys USING (enc_system() OR user_id = enc_user());

ALTER TABLE vaults ENABLE ROW LEVEL SECURITY;
ALTER TABLE vaults FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON vaults
    USING (enc_system() OR owner_id = enc_user() OR enc_member_of(id));

ALTER TABLE vault_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE vault_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON vault_members
    USING (enc_system() OR user_id = enc_user() OR enc_member_of(vault_id));

ALTER TABLE objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE objects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON objects USING (enc_system() OR enc_member_of(vault_id));

ALTER TABLE versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON versions USING (enc_system() OR enc_object_visible(object_id));

ALTER TABLE uploads ENABLE ROW LEVEL SECURITY;
ALTER TABLE uploads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON uploads
    USING (enc_system() OR user_id = enc_user() OR enc_member_of(vault_id));

ALTER TABLE audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON audit USING (enc_system() OR actor_id = enc_user());

ALTER TABLE access_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE access_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON access_tokens USING (enc_system() OR user_id = enc_user());

ALTER TABLE restic_repos ENABLE ROW LEVEL SECURITY;
ALTER TABLE restic_repos FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON restic_repos USING (enc_system() OR user_id = enc_user());

ALTER TABLE restic_objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE restic_objects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON restic_objects USING (enc_system() OR enc_owns_repo(repo_id));

ALTER TABLE mercury_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE mercury_files FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON mercury_files USING (enc_system() OR user_id = enc_user());

-- ---- what the server's role may do: rows, never the schema.
GRANT USAGE ON SCHEMA public TO enc_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO enc_app;
REVOKE ALL ON _sqlx_migrations FROM enc_app;
GRANT SELECT ON _sqlx_migrations TO enc_app;
