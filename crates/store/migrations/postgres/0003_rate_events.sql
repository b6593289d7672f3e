-- Events counted against a sliding-window allowance (Mercury's uploads per hour), shared by
-- every replica. Keys are client or space names, not tenant rows: no policy, like throttle.
CREATE TABLE rate_events (
    key TEXT NOT NULL,
    at  BIGINT NOT NULL
);
CREATE INDEX rate_events_key_at ON rate_events (key, at);
GRANT SELECT, INSERT, DELETE ON rate_events TO enc_app;
