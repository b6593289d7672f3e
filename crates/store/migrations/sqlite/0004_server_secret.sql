-- The deployment's server secret (keys fake salts and client-address hashes), kept with the
-- metadata so every replica of a deployment uses the same one.
CREATE TABLE server_secret (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value BLOB NOT NULL
);
