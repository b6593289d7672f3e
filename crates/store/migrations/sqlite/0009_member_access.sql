-- A member's right in a shared vault: 'write' (push, rm) or 'read' (pull and ls only).
ALTER TABLE vault_members ADD COLUMN access TEXT NOT NULL DEFAULT 'write';
