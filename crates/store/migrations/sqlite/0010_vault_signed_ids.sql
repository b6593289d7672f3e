-- Vault ids are unique per owner: the id a client chooses (and signs over) is kept in
-- signed_id; the row's id is derived from the owner and that id by the server, so another
-- tenant's id is simply free. Existing vaults keep theirs.
ALTER TABLE vaults ADD COLUMN signed_id TEXT NOT NULL DEFAULT '';
UPDATE vaults SET signed_id = id;
