-- Version 5: which of its parent's secrets a derived token was derived under
-- (`TokenRecord::parent_secret_set_at`), so that renewing the parent after that secret
-- ends the child.
--
-- MySQL 8 has no ADD COLUMN IF NOT EXISTS: when a run a crash cut short added the
-- column already, Rust takes the "duplicate column" error (1060) as done.
ALTER TABLE feedkey_tokens ADD COLUMN parent_secret_set_at BIGINT NULL;
