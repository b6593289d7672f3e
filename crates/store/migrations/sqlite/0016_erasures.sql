-- Erasure jobs (issue 17): a user's data taken off the server in steps, each committed with
-- the number of the next, so a restart resumes where the job stopped. `user_id` is emptied
-- by the step that deletes the user's row (the audit chain's tombstone entry keeps it);
-- `counts` holds `what=n` pairs, space-separated, one per thing removed.
CREATE TABLE erasures (
    id       TEXT PRIMARY KEY,
    user_id  TEXT UNIQUE,
    label    TEXT NOT NULL,
    -- The user's records pseudonym (the server's pepper may be elsewhere when a job
    -- resumes); emptied with user_id.
    pseudonym TEXT,
    step     INTEGER NOT NULL,
    counts   TEXT NOT NULL,
    by_admin INTEGER NOT NULL,
    started  INTEGER NOT NULL,
    finished INTEGER
);
