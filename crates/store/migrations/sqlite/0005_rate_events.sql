-- Events counted against a sliding-window allowance (Mercury's uploads per hour), shared by
-- every process that uses this database.
CREATE TABLE rate_events (
    key TEXT NOT NULL,
    at  INTEGER NOT NULL
);
CREATE INDEX rate_events_key_at ON rate_events (key, at);
