-- Small restic files (locks, keys, snapshots, small indexes) keep their bytes in their row:
-- one group commit makes them durable, with no blob, reservation or fsync of their own.
-- `blob_key` is empty for them, and nothing queues it for collection.
ALTER TABLE restic_objects ADD COLUMN data BLOB;
