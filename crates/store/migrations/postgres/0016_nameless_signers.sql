-- Signers that outlive an erasure (issue 17).
--
-- Account links of version 2 sign the account key and a salted commitment to the device's
-- name (the name and salt are kept beside it for the owner, and deleted with the user); tree
-- commits of version 2 name their signer by the account key, kept here to find its chain.
-- An erased user who signed commits in others' vaults leaves their chain under the key, with
-- no name and no user id, so those vaults' readers still check the commits.
ALTER TABLE account_links ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE account_links ADD COLUMN name_salt TEXT NOT NULL DEFAULT '';
ALTER TABLE account_links ADD COLUMN name_commitment TEXT NOT NULL DEFAULT '';
ALTER TABLE tree_commits ADD COLUMN signer_key TEXT;
CREATE INDEX tree_commits_signer ON tree_commits (vault_id, signer_key);
CREATE INDEX tree_commits_signer_key ON tree_commits (signer_key);
-- An account key names one account.
CREATE UNIQUE INDEX users_ed25519_public ON users (ed25519_public)
    WHERE ed25519_public IS NOT NULL;

CREATE TABLE kept_links (
    account_key     TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    hash            TEXT NOT NULL,
    prev            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    name_commitment TEXT NOT NULL,
    device_key      TEXT NOT NULL,
    created         BIGINT NOT NULL,
    signature       TEXT NOT NULL,
    last_counter    BIGINT NOT NULL,
    last_entry      TEXT NOT NULL,
    commit_ends     TEXT NOT NULL,
    PRIMARY KEY (account_key, seq)
);
-- Written by an erasure, read to check a vault's commits, deleted once no commit needs it:
-- all in the system's scope.
ALTER TABLE kept_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE kept_links FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON kept_links USING (enc_system());
GRANT SELECT, INSERT, DELETE ON kept_links TO enc_app;
