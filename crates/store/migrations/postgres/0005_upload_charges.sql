-- What an upload in flight has been charged to its vault's owner (quota while streaming).
ALTER TABLE uploads ADD COLUMN charged BIGINT NOT NULL DEFAULT 0;
