-- Version 3: which of its parent's secrets a derived token was derived under
-- (`TokenRecord::parent_secret_set_at`), so that renewing the parent after that secret
-- ends the child.
ALTER TABLE feedkey_tokens ADD COLUMN IF NOT EXISTS parent_secret_set_at BIGINT;
