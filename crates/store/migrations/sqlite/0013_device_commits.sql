-- Tree commits signed by device keys (issue 16).
--
-- The device whose key signed a commit (NULL: the account key, before devices signed), and a
-- revocation's end of the device's commits per vault (`vault seq` lines; empty for none).
ALTER TABLE tree_commits ADD COLUMN device_id TEXT;
ALTER TABLE account_links ADD COLUMN commit_ends TEXT NOT NULL DEFAULT '';
CREATE INDEX tree_commits_device ON tree_commits (device_id, vault_id, seq);
