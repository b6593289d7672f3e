-- The deployment's server secret (keys fake salts and client-address hashes), shared by every
-- replica. Not tenant data: no policy; the server's role reads it and sets it once.
CREATE TABLE server_secret (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value BYTEA NOT NULL
);
GRANT SELECT, INSERT ON server_secret TO enc_app;
