-- The erasure job a queued blob belongs to (issue 17): a job waits for its own blobs only,
-- so a blob of someone else's that the store keeps refusing does not hold it.
ALTER TABLE blob_gc ADD COLUMN erasure TEXT;
CREATE INDEX blob_gc_erasure ON blob_gc (erasure) WHERE erasure IS NOT NULL;
