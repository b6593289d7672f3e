-- Erasure jobs (issue 17): a user's data taken off the server in steps, each committed with
-- the number of the next, so a restart (of any replica) resumes where the job stopped.
-- `user_id` is emptied by the step that deletes the user's row (the audit chain's tombstone
-- entry keeps it); `counts` holds `what=n` pairs, space-separated, one per thing removed.
CREATE TABLE erasures (
    id       TEXT PRIMARY KEY,
    user_id  TEXT UNIQUE,
    label    TEXT NOT NULL,
    -- The user's records pseudonym (the server's pepper may be elsewhere when a job
    -- resumes); emptied with user_id.
    pseudonym TEXT,
    step     BIGINT NOT NULL,
    counts   TEXT NOT NULL,
    by_admin BIGINT NOT NULL,
    started  BIGINT NOT NULL,
    finished BIGINT
);

-- Only the server's own housekeeping (system scope) reads or runs them.
ALTER TABLE erasures ENABLE ROW LEVEL SECURITY;
ALTER TABLE erasures FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON erasures USING (enc_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON erasures TO enc_app;

-- An erased user's commits in others' vaults keep their signed bytes; only the author's id
-- column is relabelled (the one column of those rows the server's role may change).
GRANT UPDATE (author_id) ON tree_commits TO enc_app;
