-- Mercury (Hecate) archives. `space` says whose archives they are: `user:<id>` for an enc
-- user's access token, `client:<client_id>` for a client of the auth.json list, `psk` for the
-- preshared key. A row is reserved ('pending') when a name is accepted, so two uploads of one
-- name can never end under the same name; it becomes visible ('stored') only once its blob is
-- durable. Listings are answered from here, never from a walk of the blob store.
CREATE TABLE mercury_files (
    space    TEXT NOT NULL,
    name     TEXT NOT NULL,
    state    TEXT NOT NULL CHECK (state IN ('pending', 'stored')),
    size     INTEGER NOT NULL,
    blob_key TEXT NOT NULL,
    -- The enc user charged for the bytes (NULL for auth.json clients and the preshared key).
    user_id  TEXT REFERENCES users (id) ON DELETE CASCADE,
    created  INTEGER NOT NULL,
    PRIMARY KEY (space, name)
) WITHOUT ROWID;
CREATE INDEX mercury_files_pending ON mercury_files (created) WHERE state = 'pending';
CREATE INDEX mercury_files_user ON mercury_files (user_id) WHERE user_id IS NOT NULL;
