-- Audit entries of version 2 (issue 17): the hash covers commitments to the actor, target
-- and client (SHA-256 of a field name, a random salt and the value) instead of the values,
-- so an erased user's name can leave the log (values and salt deleted, commitments kept)
-- while the chain still verifies. NULL commitments: an entry of version 1.
ALTER TABLE audit ADD COLUMN salt TEXT;
ALTER TABLE audit ADD COLUMN actor_commit TEXT;
ALTER TABLE audit ADD COLUMN target_commit TEXT;
ALTER TABLE audit ADD COLUMN client_commit TEXT;
